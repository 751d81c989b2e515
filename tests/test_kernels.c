/* test_kernels.c: the runtime's vector kernels (runtime/kernels.c). Every
** variant this CPU runs gives the same bits as the plain C one, and the
** plain one matches a float64 reference, at sizes that leave vector
** remainders, with a row stride wider than a row (the gap untouched) and
** without the product (x NULL). */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/kernels.h"

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

int main(void)
{
    Suite *s = suite_create("kernels");
    TCase *t = tcase_create("core");
    tcase_add_test(t, variants_agree_bit_for_bit_and_with_a_reference);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
