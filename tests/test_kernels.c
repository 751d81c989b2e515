/* test_kernels.c: the runtime's vector kernels (runtime/kernels.c,
** runtime/gemm.c). Every sger_gemv variant this CPU runs gives the same bits
** as the plain C one, and the plain one matches a float64 reference, at
** sizes that leave vector remainders, with a row stride wider than a row
** (the gap untouched) and without the product (x NULL). kiln's own GEMM
** gives the bits of an fma loop in order, at sizes that leave partial row
** blocks, column tiles and k blocks, fewer than 16 columns (the narrow
** loop), with strides wider than rows. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/emit_c.h"
#include "runtime/kernels.h"
#include "testutil.h"

static float val(int64_t i, int salt) { return (float)(((i * 37 + salt * 11) % 23) - 11) / 8.0f; }

typedef struct shape_case {
    int m, n, ldw;
} shape_case;

static const shape_case CASES[] = {{1, 1, 1}, {3, 7, 9}, {5, 16, 16}, {17, 37, 40}, {64, 100, 100}, {9, 500, 503}};

/* Run f on a fresh W; with_x selects the fused product. */
static void run(kiln_sger_gemv_fn f, const shape_case *c, bool with_x, float *w, float *y)
{
    float *u = malloc(sizeof(float) * (size_t)c->m), *v = malloc(sizeof(float) * (size_t)c->n);
    float *x = malloc(sizeof(float) * (size_t)c->m);
    ck_assert(u && v && x);
    for (int i = 0; i < c->m; i++) {
        u[i] = val(i, 1);
        x[i] = val(i, 2);
    }
    for (int j = 0; j < c->n; j++)
        v[j] = val(j, 3) * 0.01f;
    for (int64_t k = 0; k < (int64_t)c->m * c->ldw; k++)
        w[k] = val(k, 4);
    for (int j = 0; j < c->n; j++)
        y[j] = 1e30f; /* must be overwritten, not accumulated into */
    f(c->m, c->n, w, c->ldw, u, v, with_x ? x : NULL, with_x ? y : NULL);
    free(u);
    free(v);
    free(x);
}

START_TEST(variants_agree_bit_for_bit_and_with_a_reference)
{
    kiln_sger_gemv_fn fns[4];
    const char *names[4];
    int nv = kiln_kernel_sger_gemv_variants(fns, names, 4);
    ck_assert_int_ge(nv, 1);
    ck_assert_str_eq(names[nv - 1], "plain");
    ck_assert_ptr_eq(kiln_kernel_sger_gemv(), fns[0]);
    for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
        const shape_case *c = &CASES[ci];
        size_t wn = (size_t)c->m * (size_t)c->ldw;
        float *w0 = malloc(sizeof(float) * wn), *w1 = malloc(sizeof(float) * wn);
        float *y0 = malloc(sizeof(float) * (size_t)c->n), *y1 = malloc(sizeof(float) * (size_t)c->n);
        ck_assert(w0 && w1 && y0 && y1);
        for (int with_x = 0; with_x < 2; with_x++) {
            run(fns[nv - 1], c, with_x, w0, y0);
            /* the plain variant against float64 */
            for (int i = 0; i < c->m; i++)
                for (int j = 0; j < c->ldw; j++) {
                    double want = val((int64_t)i * c->ldw + j, 4);
                    if (j < c->n)
                        want += (double)val(i, 1) * (double)(val(j, 3) * 0.01f);
                    ck_assert_msg(fabs(w0[(size_t)i * c->ldw + j] - want) <= 1e-5 * (1 + fabs(want)),
                                  "%dx%d: W[%d][%d] = %g, want %g", c->m, c->n, i, j, w0[(size_t)i * c->ldw + j], want);
                }
            if (with_x)
                for (int j = 0; j < c->n; j++) {
                    double want = 0;
                    for (int i = 0; i < c->m; i++)
                        want += (double)val(i, 2) * w0[(size_t)i * c->ldw + j];
                    ck_assert_msg(fabs(y0[j] - want) <= 1e-4 * (1 + fabs(want)), "%dx%d: y[%d] = %g, want %g", c->m,
                                  c->n, j, y0[j], want);
                }
            for (int k = 0; k < nv - 1; k++) {
                run(fns[k], c, with_x, w1, y1);
                ck_assert_msg(memcmp(w0, w1, sizeof(float) * wn) == 0, "%s: W differs at %dx%d", names[k], c->m, c->n);
                if (with_x)
                    ck_assert_msg(memcmp(y0, y1, sizeof(float) * (size_t)c->n) == 0, "%s: y differs at %dx%d",
                                  names[k], c->m, c->n);
            }
        }
        free(w0);
        free(w1);
        free(y0);
        free(y1);
    }
}
END_TEST

/* The own GEMM's contract: y[i][j] = fma over k in order, from 0. */
typedef struct gemm_case {
    int m, n, k, ldx, ldw, ldy;
} gemm_case;

static const gemm_case GEMM_CASES[] = {
    {1, 1, 1, 1, 1, 1},          {5, 13, 3, 3, 13, 13},     {31, 12, 128, 130, 14, 15},
    {32, 100, 300, 300, 100, 100}, {33, 25, 129, 129, 27, 26}, {64, 37, 257, 260, 40, 41},
    {70, 500, 784, 784, 500, 500}, {70, 10, 500, 500, 10, 12}, {9, 15, 33, 40, 15, 15},
};

typedef struct gemm_run {
    float *x, *w, *y;
} gemm_run;

/* Run f on fresh inputs; y starts at 1e30 (written, not accumulated into;
** the gap between n and ldy stays). Free with gemm_free. */
static gemm_run gemm_go(kiln_sgemm_nn_fn f, const gemm_case *c)
{
    gemm_run r = {malloc(sizeof(float) * (size_t)c->m * (size_t)c->ldx),
                  malloc(sizeof(float) * (size_t)c->k * (size_t)c->ldw),
                  malloc(sizeof(float) * (size_t)c->m * (size_t)c->ldy)};
    float *s = aligned_alloc(64, (sizeof(float) * (size_t)KILN_CODEGEN_GEMM_SCRATCH(c->n, c->k) + 63) / 64 * 64);
    ck_assert(r.x && r.w && r.y && s);
    for (int64_t i = 0; i < (int64_t)c->m * c->ldx; i++)
        r.x[i] = val(i, 5);
    for (int64_t i = 0; i < (int64_t)c->k * c->ldw; i++)
        r.w[i] = val(i, 6) * 0.125f;
    for (int64_t i = 0; i < (int64_t)c->m * c->ldy; i++)
        r.y[i] = 1e30f;
    f(c->m, c->n, c->k, r.x, c->ldx, r.w, c->ldw, r.y, c->ldy, s);
    free(s);
    return r;
}

static void gemm_free(gemm_run *r)
{
    free(r->x);
    free(r->w);
    free(r->y);
}

START_TEST(own_gemm_gives_the_bits_of_an_fma_loop)
{
    kiln_sgemm_nn_fn f = kiln_kernel_sgemm_nn_own();
    if (!f) { /* no AVX-512: nothing of kiln's to test, the BLAS is used */
        ck_assert_ptr_null(kiln_kernel_sgemm_nn());
        return;
    }
    for (size_t ci = 0; ci < sizeof GEMM_CASES / sizeof GEMM_CASES[0]; ci++) {
        const gemm_case *c = &GEMM_CASES[ci];
        gemm_run r = gemm_go(f, c);
        const float *x = r.x, *w = r.w, *y = r.y;
        for (int i = 0; i < c->m; i++)
            for (int j = 0; j < c->ldy; j++) {
                float got = y[(size_t)i * c->ldy + j];
                if (j >= c->n) {
                    ck_assert_msg(got == 1e30f, "%dx%dx%d: gap y[%d][%d] written", c->m, c->n, c->k, i, j);
                    continue;
                }
                float want = 0;
                double ref = 0;
                for (int p = 0; p < c->k; p++) {
                    float a = x[(size_t)i * c->ldx + p], b = w[(size_t)p * c->ldw + j];
                    want = fmaf(b, a, want);
                    ref += (double)a * b;
                }
                ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "%dx%dx%d: y[%d][%d] = %a, fma loop %a", c->m,
                              c->n, c->k, i, j, got, want);
                ck_assert_msg(fabs(got - ref) <= 1e-5 * (1 + fabs(ref)) * c->k, "%dx%dx%d: y[%d][%d] = %g, want %g",
                              c->m, c->n, c->k, i, j, got, ref);
            }
        gemm_free(&r);
    }
}
END_TEST

/* What the generated code calls takes the kernel where it wins and the BLAS
** elsewhere; both give the product. */
START_TEST(gemm_dispatch_gives_the_product_at_every_shape)
{
    ck_assert(kiln_kernel_sgemm_nn_wins(32, 500, 784));
    ck_assert(kiln_kernel_sgemm_nn_wins(64, 100, 784));
    ck_assert(!kiln_kernel_sgemm_nn_wins(0, 500, 784));
    ck_assert(!kiln_kernel_sgemm_nn_wins(1, 500, 784));   /* a block of 32 for one row */
    ck_assert(!kiln_kernel_sgemm_nn_wins(48, 500, 784));  /* the second block half empty */
    ck_assert(kiln_kernel_sgemm_nn_wins(128, 500, 784));
    ck_assert(!kiln_kernel_sgemm_nn_wins(1000, 500, 784)); /* OpenBLAS's packing pays */
    ck_assert(kiln_kernel_sgemm_nn_wins(32, 10, 500));    /* narrow: a classifier's last layer */
    ck_assert(kiln_kernel_sgemm_nn_wins(1000, 10, 500));
    ck_assert(!kiln_kernel_sgemm_nn_wins(4, 10, 500));    /* too few rows for eight chains */
    ck_assert(!kiln_kernel_sgemm_nn_wins(32, 3, 784));    /* three columns of sixteen lanes */
    ck_assert(!kiln_kernel_sgemm_nn_wins(32, 40, 784));   /* 16 to 63 columns: column tails */
    ck_assert(!kiln_kernel_sgemm_nn_wins(32, 500, 100));  /* short sums */
    kiln_sgemm_nn_fn f = kiln_kernel_sgemm_nn();
    if (!f)
        return;
    static const gemm_case cases[] = {{32, 100, 300, 300, 100, 101}, {8, 100, 300, 301, 100, 100}};
    for (size_t ci = 0; ci < 2; ci++) {
        const gemm_case *c = &cases[ci];
        gemm_run r = gemm_go(f, c);
        const float *x = r.x, *w = r.w, *y = r.y;
        for (int i = 0; i < c->m; i++)
            for (int j = 0; j < c->n; j++) {
                double ref = 0;
                for (int p = 0; p < c->k; p++)
                    ref += (double)x[(size_t)i * c->ldx + p] * w[(size_t)p * c->ldw + j];
                ck_assert_double_eq_tol(y[(size_t)i * c->ldy + j], ref, 1e-4 * (1 + fabs(ref)));
            }
        gemm_free(&r);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kernels");
    TCase *t = tcase_create("core");
    tcase_add_test(t, variants_agree_bit_for_bit_and_with_a_reference);
    tcase_add_test(t, own_gemm_gives_the_bits_of_an_fma_loop);
    tcase_add_test(t, gemm_dispatch_gives_the_product_at_every_shape);
    suite_add_tcase(s, t);
    return kiln_test_run(s);
}
