/* test_kernels.c: the runtime's vector kernels (runtime/kernels.c,
** runtime/gemm.c). Every sger_gemv variant this CPU runs gives the same bits
** as the plain C one, and the plain one matches a float64 reference, at
** sizes that leave vector remainders, with a row stride wider than a row
** (the gap untouched) and without the product (x NULL). kiln's own GEMM
** gives the bits of an fma loop in order, at sizes that leave partial row
** blocks, column tiles and k blocks, fewer than 16 columns (the narrow
** loop), with strides wider than rows. And for every ISA this CPU has
** (avx512, avx2; a missing one is skipped, saying so) and the blas set
** (#13): y = x W and the weight update c = alpha a^T b (+ c) give the bits
** of the fma loop at row, column and k tails and strides, the dispatchers
** give the product, and the batch-1 update is that ISA's variant. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
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
    float *add; /* the addend, or NULL */
    int ldadd;  /* its row stride, 0: one row to every row */
} gemm_run;

/* The addends of gemm_go_add. */
enum { ADD_NONE, ADD_ROW, ADD_MATRIX };

/* Run f (unless NULL) on fresh inputs with an addend (a row, or a matrix whose rows lie
** n + 3 apart); y starts at 1e30 (written, not accumulated into; the gap
** between n and ldy stays). Free with gemm_free. */
static gemm_run gemm_go_add(kiln_sgemm_nn_fn f, const gemm_case *c, int add)
{
    gemm_run r = {malloc(sizeof(float) * (size_t)c->m * (size_t)c->ldx),
                  malloc(sizeof(float) * (size_t)c->k * (size_t)c->ldw),
                  malloc(sizeof(float) * (size_t)c->m * (size_t)c->ldy), NULL, 0};
    float *s = aligned_alloc(64, (sizeof(float) * (size_t)KILN_CODEGEN_GEMM_SCRATCH(c->m, c->n, c->k) + 63) / 64 * 64);
    ck_assert(r.x && r.w && r.y && s);
    if (add != ADD_NONE) {
        r.ldadd = add == ADD_ROW ? 0 : c->n + 3;
        size_t na = add == ADD_ROW ? (size_t)c->n : (size_t)c->m * (size_t)r.ldadd;
        r.add = malloc(sizeof(float) * na);
        ck_assert(r.add);
        for (size_t i = 0; i < na; i++)
            r.add[i] = val((int64_t)i, 9) * 0.1f; /* not dyadic: sum + add rounds */
    }
    for (int64_t i = 0; i < (int64_t)c->m * c->ldx; i++)
        r.x[i] = val(i, 5);
    for (int64_t i = 0; i < (int64_t)c->k * c->ldw; i++)
        r.w[i] = val(i, 6) * 0.125f;
    for (int64_t i = 0; i < (int64_t)c->m * c->ldy; i++)
        r.y[i] = 1e30f;
    if (f) /* NULL: the inputs alone */
        f(c->m, c->n, c->k, r.x, c->ldx, r.w, c->ldw, r.y, c->ldy, s, r.add, r.ldadd);
    free(s);
    return r;
}

static gemm_run gemm_go(kiln_sgemm_nn_fn f, const gemm_case *c) { return gemm_go_add(f, c, ADD_NONE); }

static void gemm_free(gemm_run *r)
{
    free(r->x);
    free(r->w);
    free(r->y);
    free(r->add);
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

/* ---- every ISA this CPU has: avx512, avx2, blas (#13) ---------------------------------- */

static const char *const ISAS[] = {"avx512", "avx2", "blas"};

/* The kernels of ISAS[i], or false (saying so) where this CPU lacks them. */
static bool isa_set(int i, kiln_kernel_set *s)
{
    if (!kiln_kernel_set_of(ISAS[i], s)) {
        fprintf(stderr, "test_kernels: skipping %s: this CPU lacks it\n", ISAS[i]);
        return false;
    }
    ck_assert_str_eq(s->isa, ISAS[i]);
    return true;
}

/* y[i][j] of gemm_go against the fma loop in order, bit for bit, plus the
** addend if any (the sum rounded, then the addend added: the unfused
** add's bits), and the gap between n and ldy untouched. */
static void check_nn_bits(const char *isa, const gemm_case *c, const gemm_run *r)
{
    for (int i = 0; i < c->m; i++)
        for (int j = 0; j < c->ldy; j++) {
            float got = r->y[(size_t)i * c->ldy + j];
            if (j >= c->n) {
                ck_assert_msg(got == 1e30f, "%s %dx%dx%d: gap y[%d][%d] written", isa, c->m, c->n, c->k, i, j);
                continue;
            }
            float want = 0;
            for (int p = 0; p < c->k; p++)
                want = fmaf(r->w[(size_t)p * c->ldw + j], r->x[(size_t)i * c->ldx + p], want);
            if (r->add)
                want = want + r->add[(size_t)i * (size_t)r->ldadd + (size_t)j];
            ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "%s %dx%dx%d%s: y[%d][%d] = %a, fma loop %a", isa,
                          c->m, c->n, c->k, r->add ? (r->ldadd ? " + matrix" : " + row") : "", i, j, got, want);
        }
}

/* y = x W: each ISA's kernel gives the fma loop's bits, at row, column and
** k tails (the AVX2 tile is 4 x 24, or 6 x 16 where W's rows lie on cache
** lines and the product is wide; k in blocks of 256) and strides. */
START_TEST(every_isa_gemm_nn_gives_the_bits_of_an_fma_loop)
{
    static const gemm_case more[] = {{4, 24, 256, 256, 24, 24}, {7, 17, 257, 259, 18, 19}, {13, 9, 600, 601, 9, 11},
                                     {2, 8, 5, 5, 8, 8},        {128, 100, 784, 784, 100, 100},
                                     {3, 40, 20, 20, 40, 40}, {11, 64, 300, 300, 64, 64},
                                     {37, 520, 300, 300, 528, 530}, {16, 1024, 256, 256, 1040, 1024}};
    int ran = 0;
    for (int i = 0; i < (int)(sizeof ISAS / sizeof ISAS[0]); i++) {
        kiln_kernel_set s;
        if (!isa_set(i, &s))
            continue;
        if (!s.sgemm_nn_own) {
            ck_assert_ptr_null(s.sgemm_nn); /* blas: the code calls the BLAS */
            continue;
        }
        for (size_t ci = 0; ci < sizeof GEMM_CASES / sizeof GEMM_CASES[0] + sizeof more / sizeof more[0]; ci++) {
            const gemm_case *c = ci < sizeof GEMM_CASES / sizeof GEMM_CASES[0]
                                     ? &GEMM_CASES[ci]
                                     : &more[ci - sizeof GEMM_CASES / sizeof GEMM_CASES[0]];
            gemm_run r = gemm_go(s.sgemm_nn_own, c);
            check_nn_bits(s.isa, c, &r);
            gemm_free(&r);
        }
        ran++;
    }
    ck_assert_int_ge(ran, 1);
}
END_TEST

/* y = x W + add (lower.c's addend epilogue: a bias row, ldadd 0, or a
** matrix with its own row stride): each ISA's kernel adds the addend to
** the finished sum, the bits of the fma loop then + add, at row, column
** and k tails (AVX2: the addend in the last block of k only); the
** dispatcher (the BLAS at some shapes: the addend copied in, beta 1) gives
** the same values within float tolerance. */
START_TEST(every_isa_gemm_nn_adds_an_addend)
{
    static const gemm_case cases[] = {{5, 13, 3, 3, 13, 13},      {31, 12, 128, 130, 14, 15},
                                      {33, 25, 129, 129, 27, 26}, {70, 10, 500, 500, 10, 12},
                                      {7, 17, 257, 259, 18, 19},  {13, 9, 600, 601, 9, 11},
                                      {32, 100, 300, 300, 100, 101}, {3, 40, 520, 520, 40, 40},
                                      {64, 100, 784, 784, 100, 100}, {1000, 64, 300, 300, 64, 64},
                                      {37, 520, 300, 300, 528, 530}};
    int ran = 0;
    for (int i = 0; i < (int)(sizeof ISAS / sizeof ISAS[0]); i++) {
        kiln_kernel_set s;
        if (!isa_set(i, &s) || !s.sgemm_nn_own)
            continue;
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
            for (int add = ADD_ROW; add <= ADD_MATRIX; add++) {
                const gemm_case *c = &cases[ci];
                gemm_run r = gemm_go_add(s.sgemm_nn_own, c, add);
                check_nn_bits(s.isa, c, &r);
                gemm_free(&r);
                r = gemm_go_add(s.sgemm_nn, c, add); /* the dispatcher: the kernel or the BLAS */
                for (int y = 0; y < c->m; y++)
                    for (int j = 0; j < c->n; j++) {
                        double ref = r.add[(size_t)y * (size_t)r.ldadd + (size_t)j];
                        for (int p = 0; p < c->k; p++)
                            ref += (double)r.x[(size_t)y * c->ldx + p] * r.w[(size_t)p * c->ldw + j];
                        ck_assert_msg(fabs(r.y[(size_t)y * c->ldy + j] - ref) <= 1e-4 * (1 + fabs(ref)),
                                      "%s dispatch %dx%dx%d: y[%d][%d] = %g, want %g", s.isa, c->m, c->n, c->k, y, j,
                                      r.y[(size_t)y * c->ldy + j], ref);
                    }
                gemm_free(&r);
            }
        ran++;
    }
    if (ran == 0)
        fprintf(stderr, "test_kernels: no kernel of kiln's on this CPU: the addend is the BLAS's\n");
}
END_TEST

typedef struct tn_case {
    int m, n, k, lda, ldb, ldc;
} tn_case;

/* c = alpha a^T b + beta c by one ISA's kernel, against alpha * (fma loop)
** or fma(alpha, fma loop, c) bit for bit; the gap between n and ldc
** untouched. f NULL: check the dispatcher (sgemm_tn) against float64. */
static void tn_check(const char *isa, kiln_sgemm_tn_fn f, bool exact, const tn_case *c, float beta)
{
    float *a = malloc(sizeof(float) * (size_t)c->k * (size_t)c->lda);
    float *b = malloc(sizeof(float) * (size_t)c->k * (size_t)c->ldb);
    float *c0 = malloc(sizeof(float) * (size_t)c->m * (size_t)c->ldc);
    float *c1 = malloc(sizeof(float) * (size_t)c->m * (size_t)c->ldc);
    ck_assert(a && b && c0 && c1);
    for (int64_t i = 0; i < (int64_t)c->k * c->lda; i++)
        a[i] = val(i, 7);
    for (int64_t i = 0; i < (int64_t)c->k * c->ldb; i++)
        b[i] = val(i, 8) * 0.25f;
    for (int64_t i = 0; i < (int64_t)c->m * c->ldc; i++)
        c0[i] = c1[i] = beta != 0 ? val(i, 9) : 1e30f;
    const float alpha = -0.1f;
    f(c->m, c->n, c->k, alpha, a, c->lda, b, c->ldb, beta, c1, c->ldc);
    for (int i = 0; i < c->m; i++)
        for (int j = 0; j < c->ldc; j++) {
            float got = c1[(size_t)i * c->ldc + j], old = c0[(size_t)i * c->ldc + j];
            if (j >= c->n) {
                ck_assert_msg(got == old, "%s tn %dx%dx%d: gap c[%d][%d] written", isa, c->m, c->n, c->k, i, j);
                continue;
            }
            float sum = 0;
            double ref = 0;
            for (int p = 0; p < c->k; p++) {
                float av = a[(size_t)p * c->lda + i], bv = b[(size_t)p * c->ldb + j];
                sum = fmaf(bv, av, sum);
                ref += (double)av * bv;
            }
            float want = beta != 0 ? fmaf(alpha, sum, old) : alpha * sum;
            ref = alpha * ref + (beta != 0 ? old : 0);
            if (exact)
                ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                              "%s tn %dx%dx%d beta %g: c[%d][%d] = %a, fma loop %a", isa, c->m, c->n, c->k,
                              (double)beta, i, j, got, want);
            ck_assert_msg(fabs(got - ref) <= 1e-5 * (1 + fabs(ref)) * c->k, "%s tn %dx%dx%d: c[%d][%d] = %g, want %g",
                          isa, c->m, c->n, c->k, i, j, got, ref);
        }
    free(a);
    free(b);
    free(c0);
    free(c1);
}

static const tn_case TN_CASES[] = {
    {1, 1, 1, 1, 1, 1},       {5, 13, 3, 7, 13, 14},      {4, 24, 32, 6, 24, 24},   {7, 17, 33, 9, 19, 18},
    {13, 33, 5, 13, 40, 35},  {100, 10, 32, 100, 10, 10}, {25, 48, 2, 30, 50, 49},  {12, 32, 128, 12, 32, 32},
    {784, 100, 32, 784, 100, 100}, {500, 10, 128, 500, 10, 12}, {9, 3, 70, 11, 3, 4}, {5, 40, 7, 5, 40, 41},
    {26, 64, 9, 26, 64, 64},
};

/* W += alpha x^T d (the weight update) and G = alpha x^T d: each ISA's
** kernel gives the fma loop's bits at row and column tails (tiles of 4 x 24
** and 12 x 32) and strides; the dispatcher gives the product. */
START_TEST(every_isa_gemm_tn_gives_the_bits_of_an_fma_loop)
{
    int ran = 0;
    for (int i = 0; i < (int)(sizeof ISAS / sizeof ISAS[0]); i++) {
        kiln_kernel_set s;
        if (!isa_set(i, &s))
            continue;
        if (!s.sgemm_tn_own) {
            ck_assert_ptr_null(s.sgemm_tn);
            ck_assert(!s.tn_wins(32, 100, 784) && !s.nn_wins(32, 100, 784));
            continue;
        }
        for (size_t ci = 0; ci < sizeof TN_CASES / sizeof TN_CASES[0]; ci++)
            for (int beta = 0; beta < 2; beta++) {
                tn_check(s.isa, s.sgemm_tn_own, true, &TN_CASES[ci], (float)beta);
                tn_check(s.isa, s.sgemm_tn, false, &TN_CASES[ci], (float)beta);
            }
        ran++;
    }
    ck_assert_int_ge(ran, 1);
}
END_TEST

/* The rules that pick the update's block kernel and, on AMD, y = x W's
** kernel for many rows. The update's kernels one by one (AVX-512: the tile
** and the block kernel for large k) and each ISA's sgemm_tn_own give the
** fma loop's bits at every case above, and at shapes that own_tn sends to
** the block kernel (kiln_kernel_avx512_tn_block_wins): k not a multiple of
** its 128-row blocks, rows not a multiple of 32 (a last block of 26),
** columns past a 256-column chunk with 8-, 2- and 1-column tails, strides
** wider than the widths, beta 0 and 1; the dispatcher gives the product. */
START_TEST(every_tn_kernel_gives_the_bits_of_an_fma_loop_at_large_k)
{
    static const tn_case big[] = {{250, 303, 1003, 260, 310, 305}, {64, 100, 1300, 64, 100, 100},
                                  {33, 17, 1000, 40, 17, 20}};
    ck_assert(kiln_kernel_avx512_tn_block_wins(250, 303, 1003)); /* the cases below take it */
    ck_assert(kiln_kernel_avx512_tn_block_wins(64, 100, 1300));
    ck_assert(!kiln_kernel_avx512_tn_block_wins(100, 1024, 1600)); /* partial blocks: the tile */
    ck_assert(!kiln_kernel_avx512_tn_block_wins(256, 1024, 512));  /* the tile up to k = 1000 */
    ck_assert(kiln_kernel_avx512_tn_wins(256, 1024, 1600));        /* the LSTM benchmark's */
    ck_assert(!kiln_kernel_avx512_tn_wins(1024, 1024, 4000) && kiln_kernel_avx512_tn_wins(1024, 256, 1600));
    ck_assert(kiln_kernel_avx512_nn_wins_amd(1600, 1024, 256)); /* many rows win on AMD, */
    ck_assert(!kiln_kernel_sgemm_nn_wins(1600, 1024, 256));     /* not on Intel */
    ck_assert(!kiln_kernel_avx512_nn_wins_amd(1000, 500, 100));
    ck_assert(kiln_kernel_avx512_nn_wins_amd(1000, 500, 784) && !kiln_kernel_avx512_nn_wins_amd(1000, 64, 784));
    ck_assert(kiln_kernel_avx512_nn_wins_amd(32, 500, 784) && !kiln_kernel_avx512_nn_wins_amd(48, 500, 784));
    int ran = 0;
    for (int i = 0; i < 2; i++) { /* avx512, avx2 */
        kiln_sgemm_tn_fn fns[4];
        const char *names[4];
        int np = i == 0 ? kiln_kernel_avx512_tn_parts(fns, names, 4) : 0;
        kiln_kernel_set s;
        if (!isa_set(i, &s))
            continue;
        char isa[64];
        for (int q = 0; q <= np; q++) {
            kiln_sgemm_tn_fn f = q < np ? fns[q] : s.sgemm_tn_own;
            snprintf(isa, sizeof isa, "%s %s", ISAS[i], q < np ? names[q] : "own_tn");
            for (size_t ci = 0; ci < sizeof TN_CASES / sizeof TN_CASES[0] + sizeof big / sizeof big[0]; ci++) {
                const tn_case *c = ci < sizeof TN_CASES / sizeof TN_CASES[0]
                                       ? &TN_CASES[ci]
                                       : &big[ci - sizeof TN_CASES / sizeof TN_CASES[0]];
                for (int beta = 0; beta < 2; beta++)
                    tn_check(isa, f, true, c, (float)beta);
            }
            ran++;
        }
        for (size_t ci = 0; ci < sizeof big / sizeof big[0]; ci++)
            tn_check(ISAS[i], s.sgemm_tn, false, &big[ci], 1);
    }
    if (!ran)
        fprintf(stderr, "test_kernels: no AVX-512 nor AVX2: no update kernels to check\n");
}
END_TEST

/* The dispatcher y = x W of each ISA gives the product wherever it sends
** it; the update variant of an ISA is that ISA's; names are checked. */
START_TEST(every_isa_dispatch_gives_the_product)
{
    kiln_kernel_set s;
    ck_assert(!kiln_kernel_set_of("sse9", &s));
    ck_assert_str_eq(s.isa, "blas");
    ck_assert(kiln_kernel_set_of(NULL, &s));
    ck_assert(kiln_kernel_set_of("", &s));
    kiln_sger_gemv_fn fns[3];
    const char *names[3];
    int nv = kiln_kernel_sger_gemv_variants(fns, names, 3);
    ck_assert_str_eq(s.isa, strcmp(names[0], "plain") == 0 ? "blas" : names[0]); /* the best */
    static const gemm_case cases[] = {{32, 100, 300, 300, 100, 101}, {8, 100, 300, 301, 100, 100},
                                      {128, 10, 500, 500, 10, 10},   {3, 500, 784, 784, 500, 500}};
    for (int i = 0; i < (int)(sizeof ISAS / sizeof ISAS[0]); i++) {
        if (!isa_set(i, &s))
            continue;
        bool found = false;
        for (int v = 0; v < nv; v++)
            found |= s.sger_gemv == fns[v] && strcmp(names[v], strcmp(s.isa, "blas") == 0 ? "plain" : s.isa) == 0;
        ck_assert_msg(found, "%s: the batch-1 update is not that ISA's variant", s.isa);
        if (!s.sgemm_nn)
            continue;
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            const gemm_case *c = &cases[ci];
            gemm_run r = gemm_go(s.sgemm_nn, c);
            for (int y = 0; y < c->m; y++)
                for (int j = 0; j < c->n; j++) {
                    double ref = 0;
                    for (int p = 0; p < c->k; p++)
                        ref += (double)r.x[(size_t)y * c->ldx + p] * r.w[(size_t)p * c->ldw + j];
                    ck_assert_double_eq_tol(r.y[(size_t)y * c->ldy + j], ref, 1e-4 * (1 + fabs(ref)));
                }
            gemm_free(&r);
        }
    }
}
END_TEST

/* y = x W + add from W packed once (a scan's context, codegen/emit_c.c):
** an ISA has both pack_nn and sgemm_nn_packed or neither; where it has
** them, the product gives the fma loop's bits (then + add) at row, column
** and k tails, across blocks of rows (192 on AVX2) and of k (256), with
** the gap between n and ldy untouched, and the pack writes exactly
** KILN_CODEGEN_PACKED_FLOATS(k, n) floats and reads no padding of W. */
START_TEST(every_isa_packed_gemm_nn_gives_the_bits_of_an_fma_loop)
{
    static const gemm_case cases[] = {{32, 1024, 256, 256, 1040, 1024}, {1, 1, 1, 1, 1, 1},
                                      {7, 17, 257, 259, 18, 19},         {200, 40, 300, 300, 48, 41},
                                      {5, 13, 3, 3, 13, 13},             {37, 520, 300, 300, 528, 530},
                                      {2, 8, 5, 5, 8, 8},                {400, 64, 70, 72, 64, 64}};
    int ran = 0;
    for (int i = 0; i < (int)(sizeof ISAS / sizeof ISAS[0]); i++) {
        kiln_kernel_set s;
        if (!isa_set(i, &s))
            continue;
        ck_assert_msg(!s.pack_nn == !s.sgemm_nn_packed, "%s: pack_nn and sgemm_nn_packed come together", s.isa);
        if (!s.pack_nn)
            continue;
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
            for (int add = ADD_NONE; add <= ADD_MATRIX; add++) {
                const gemm_case *c = &cases[ci];
                gemm_run r = gemm_go_add(NULL, c, add); /* the inputs alone */
                for (int p = 0; p < c->k; p++) /* W's padding: never read */
                    for (int j = c->n; j < c->ldw; j++)
                        r.w[(size_t)p * (size_t)c->ldw + (size_t)j] = NAN;
                const size_t np = (size_t)KILN_CODEGEN_PACKED_FLOATS(c->k, c->n);
                float *packed = aligned_alloc(64, (sizeof(float) * (np + 16) + 63) / 64 * 64);
                ck_assert(packed);
                for (size_t q = 0; q < np + 16; q++)
                    packed[q] = 1e30f;
                s.pack_nn(c->k, c->n, r.w, c->ldw, packed);
                for (size_t q = np; q < np + 16; q++)
                    ck_assert_msg(packed[q] == 1e30f, "%s pack %dx%d: wrote past its %zu floats", s.isa, c->k, c->n,
                                  np);
                s.sgemm_nn_packed(c->m, c->n, c->k, r.x, c->ldx, packed, r.y, c->ldy, r.add, r.ldadd);
                check_nn_bits(s.isa, c, &r);
                free(packed);
                gemm_free(&r);
            }
        ran++;
    }
    fprintf(stderr, "test_kernels: packed products checked on %d instruction sets\n", ran);
}
END_TEST

/* The AVX2 set's y = x W for many rows packs W into the scratch's room
** (KILN_CODEGEN_GEMM_PACKED) and runs the packed kernel: the fma loop's
** bits, + a row or a matrix, across blocks of 192 rows; it writes nothing
** past KILN_CODEGEN_GEMM_SCRATCH(m, n, k) floats, and below
** KILN_CODEGEN_PACK_ROWS rows (no room) or where the rule says no, it
** does not pack (the scratch past the tile's part untouched). */
START_TEST(avx2_dispatch_packs_w_into_the_scratch_for_many_rows)
{
    static const gemm_case cases[] = {{300, 100, 200, 200, 100, 101}, {257, 70, 256, 260, 72, 70},
                                      {1600, 64, 40, 40, 64, 64},     {255, 100, 200, 200, 100, 100},
                                      {260, 64, 300, 300, 64, 64}};
    kiln_kernel_set s;
    if (!isa_set(1, &s))
        return;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int add = ADD_NONE; add <= ADD_MATRIX; add++) {
            const gemm_case *c = &cases[ci];
            const bool packs = c->m >= KILN_CODEGEN_PACK_ROWS && kiln_kernel_avx2_nn_packed_wins(c->m, c->n, c->k) &&
                               !kiln_kernel_avx2_nn_wins(c->m, c->n, c->k);
            ck_assert_int_eq(packs, ci < 3); /* the cases chosen for it, and two that are not */
            const size_t ns = (size_t)KILN_CODEGEN_GEMM_SCRATCH(c->m, c->n, c->k);
            ck_assert_int_eq(ns > (size_t)KILN_CODEGEN_GEMM_ROWS * (size_t)(c->n + c->k), c->m >= KILN_CODEGEN_PACK_ROWS);
            float *scr = aligned_alloc(64, (sizeof(float) * (ns + 16) + 63) / 64 * 64);
            ck_assert(scr);
            for (size_t q = 0; q < ns + 16; q++)
                scr[q] = 1e30f;
            gemm_run r = gemm_go_add(NULL, c, add);
            s.sgemm_nn(c->m, c->n, c->k, r.x, c->ldx, r.w, c->ldw, r.y, c->ldy, scr, r.add, r.ldadd);
            for (size_t q = ns; q < ns + 16; q++)
                ck_assert_msg(scr[q] == 1e30f, "%dx%dx%d: wrote past the scratch's %zu floats", c->m, c->n, c->k, ns);
            const size_t tile_part = (size_t)KILN_CODEGEN_GEMM_ROWS * (size_t)(c->n + c->k);
            bool packed = false;
            for (size_t q = tile_part; q < ns; q++)
                packed |= scr[q] != 1e30f;
            ck_assert_int_eq(packed, packs);
            if (packs)
                check_nn_bits("avx2 packed", c, &r);
            else
                for (int y = 0; y < c->m; y++) /* the BLAS: its own order */
                    for (int j = 0; j < c->n; j++) {
                        double ref = r.add ? r.add[(size_t)y * (size_t)r.ldadd + (size_t)j] : 0;
                        for (int p = 0; p < c->k; p++)
                            ref += (double)r.x[(size_t)y * c->ldx + p] * r.w[(size_t)p * c->ldw + j];
                        ck_assert_double_eq_tol(r.y[(size_t)y * c->ldy + j], ref, 1e-4 * (1 + fabs(ref)));
                    }
            free(scr);
            gemm_free(&r);
        }
}
END_TEST

/* Each ISA's transpose (a scan context's W^T, once a run) writes in^T into
** the rows of out and nothing of the padding between them, at tile tails
** (16 x 16 tiles for AVX-512, 8 x 8 for AVX2) and strides; the one the
** program is handed is the ISA's own. */
START_TEST(every_isa_transpose_writes_the_transpose_and_not_the_padding)
{
    static const int shapes[][4] = {{256, 1024, 1024, 272}, {37, 53, 60, 40}, {1, 1, 1, 1}, {16, 8, 8, 16},
                                    {9, 17, 17, 25},        {100, 3, 5, 101}};
    for (int i = 0; i < (int)(sizeof ISAS / sizeof ISAS[0]); i++) {
        kiln_kernel_set s;
        if (!isa_set(i, &s))
            continue;
        ck_assert_ptr_nonnull(s.transpose);
        for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
            const int rows = shapes[c][0], cols = shapes[c][1], ldi = shapes[c][2], ldo = shapes[c][3];
            float *in = malloc(sizeof *in * (size_t)rows * (size_t)ldi);
            float *out = malloc(sizeof *out * (size_t)cols * (size_t)ldo);
            ck_assert(in && out);
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < ldi; j++)
                    in[(size_t)r * (size_t)ldi + (size_t)j] = j < cols ? (float)(r * 100003 + j) * 0.5f : NAN;
            for (size_t k = 0; k < (size_t)cols * (size_t)ldo; k++)
                out[k] = 1e30f;
            s.transpose(rows, cols, in, ldi, out, ldo);
            for (int j = 0; j < cols; j++)
                for (int r = 0; r < ldo; r++) {
                    float got = out[(size_t)j * (size_t)ldo + (size_t)r];
                    float want = r < rows ? in[(size_t)r * (size_t)ldi + (size_t)j] : 1e30f;
                    ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "%s transpose %dx%d (ldi %d, ldo %d): "
                                  "out[%d][%d] = %g, want %g", s.isa, rows, cols, ldi, ldo, j, r, got, want);
                }
            free(in);
            free(out);
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kernels");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 300); /* the float64 references at 784 x 500, under the sanitizers */
    tcase_add_test(t, variants_agree_bit_for_bit_and_with_a_reference);
    tcase_add_test(t, own_gemm_gives_the_bits_of_an_fma_loop);
    tcase_add_test(t, gemm_dispatch_gives_the_product_at_every_shape);
    tcase_add_test(t, every_isa_gemm_nn_gives_the_bits_of_an_fma_loop);
    tcase_add_test(t, every_isa_gemm_nn_adds_an_addend);
    tcase_add_test(t, every_isa_gemm_tn_gives_the_bits_of_an_fma_loop);
    tcase_add_test(t, every_tn_kernel_gives_the_bits_of_an_fma_loop_at_large_k);
    tcase_add_test(t, every_isa_dispatch_gives_the_product);
    tcase_add_test(t, every_isa_transpose_writes_the_transpose_and_not_the_padding);
    tcase_add_test(t, every_isa_packed_gemm_nn_gives_the_bits_of_an_fma_loop);
    tcase_add_test(t, avx2_dispatch_packs_w_into_the_scratch_for_many_rows);
    suite_add_tcase(s, t);
    return kiln_test_run(s);
}
