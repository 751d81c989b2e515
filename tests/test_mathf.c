/* test_mathf.c: the float32 exp and tanh of generated code.
**
** Generated float code computes exp and tanh with its own inline
** functions (codegen/emit_c.c, KILN_MATHF), so that loops of them
** vectorise. These tests compile a float32 program whose outputs are
** exp(x), tanh(x) and the logistic of x over a sweep of x (every scale from
** the subnormals to the overflow thresholds, both signs) and compare each
** with the float nearest the float64 libm value: within 2 ulp (the
** logistic, a composition, within 3), and the special values exactly as
** libm gives them (exp(-inf) = 0, exp(inf) = inf, tanh(+-inf) = +-1,
** tanh(-0) = -0, NaN in, NaN out). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

#include "testutil.h"

enum { N = 24000 };

/* Distance in units in the last place between two floats of one sign (or
** zero); NaN vs NaN is 0, NaN vs a number huge. */
static int64_t ulps(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) ? 0 : INT64_MAX;
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0)
        ia = INT32_MIN - ia; /* order negative floats below the positive */
    if (ib < 0)
        ib = INT32_MIN - ib;
    return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}

static double logistic(double x) { return 1 / (1 + exp(-x)); }

START_TEST(exp_tanh_and_logistic_are_within_a_few_ulp)
{
    static float x[N];
    int n = 0;
    float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-45f, -1e-45f, 1e-30f, -1e-30f, 0.625f, -0.625f,
                       88.72283f, 88.7229f, 89.0f, -87.33f, -103.97f, -103.98f, -110.0f, 110.0f, 9.0f, -9.0f};
    for (size_t k = 0; k < sizeof special / sizeof *special; k++)
        x[n++] = special[k];
    for (int k = n; n < N; k++) { /* |x| from 2^-30 to 2^7, both signs, and a dense sweep of [-12, 12] */
        x[n] = n & 1 ? (k & 2 ? -1.0f : 1.0f) * ldexpf(1.0f + (float)(k % 997) / 997.0f, -30 + k % 37)
                     : -12.0f + 24.0f * (float)k / (float)N;
        n++;
    }
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node in = kiln_graph_input(g, "x", KILN_DTYPE_F32, 1, (int64_t[]){N});
    kiln_node outs[3] = {kiln_expr_exp(g, in), kiln_expr_tanh(g, in), kiln_expr_sigmoid(g, in)};
    kiln_compile_options o = kiln_compile_options_default();
    o.outputs = outs;
    o.n_outputs = 3;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    ck_assert_ptr_nonnull(strstr(kiln_program_source(p), "k_expf("));
    ck_assert_int_eq(kiln_program_bind_input(p, "x", x), KILN_OK);
    ck_assert_int_eq(kiln_program_forward(p, 1), KILN_OK);
    static double got[N];
    double (*exact[3])(double) = {exp, tanh, logistic};
    const char *names[3] = {"exp", "tanh", "logistic"};
    const int64_t allowed[3] = {2, 2, 3};
    for (int f = 0; f < 3; f++) {
        ck_assert_int_eq(kiln_program_read(p, outs[f], got, N), KILN_OK);
        int64_t worst = 0;
        int at = 0;
        for (int i = 0; i < N; i++) {
            int64_t u = ulps((float)got[i], (float)exact[f]((double)x[i]));
            if (u > worst)
                worst = u, at = i;
        }
        ck_assert_msg(worst <= allowed[f], "%s(%.9g): %.9g, libm %.9g: %lld ulp", names[f], (double)x[at], got[at],
                      (double)(float)exact[f]((double)x[at]), (long long)worst);
    }
    /* signs of zero and the infinities, exactly */
    ck_assert_int_eq(kiln_program_read(p, outs[1], got, N), KILN_OK);
    ck_assert(got[1] == 0 && signbit(got[1]));
    ck_assert(got[2] == 1 && got[3] == -1 && isnan(got[4]));
    ck_assert_int_eq(kiln_program_read(p, outs[0], got, N), KILN_OK);
    ck_assert(got[0] == 1 && got[2] == INFINITY && got[3] == 0 && isnan(got[4]) && got[17] == 0 && got[18] == INFINITY);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
}
END_TEST

/* Occurrences of needle in hay. */
static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *q = hay; (q = strstr(q, needle)); q++)
        n++;
    return n;
}

/* The float32 loops of these polynomials keep four vectors in flight
** (K_INTERLEAVE, emit_c.c): the tanh loop asks for it; a loop that calls
** libm (softplus's log1p; exp(x) log(x): an exp beside a log) does not, nor
** does float64 code. */
START_TEST(loops_of_the_polynomials_ask_for_interleaving)
{
    for (int f64 = 0; f64 < 2; f64++) {
        enum kiln_dtype t = f64 ? KILN_DTYPE_F64 : KILN_DTYPE_F32;
        kiln_graph *g = kiln_graph_create(t);
        kiln_node in = kiln_graph_input(g, "x", t, 1, (int64_t[]){100});
        kiln_node outs[3] = {kiln_expr_tanh(g, in), kiln_expr_softplus(g, in),
                             kiln_expr_mul(g, kiln_expr_exp(g, in), kiln_expr_log(g, in))};
        kiln_compile_options o = kiln_compile_options_default();
        o.outputs = outs;
        o.n_outputs = 3;
        kiln_program *p;
        ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
        const char *src = kiln_program_source(p);
        ck_assert_int_eq(count(src, "K_INTERLEAVE for"), f64 ? 0 : 1);
        const char *at = strstr(src, "K_INTERLEAVE for");
        if (!f64)
            ck_assert_msg(at && strstr(at, "k_tanh(") && strstr(at, "k_tanh(") < strstr(at, "}"), "%s", src);
        kiln_program_destroy(p);
        kiln_graph_destroy(g);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mathf");
    TCase *tc = tcase_create("mathf");
    tcase_add_test(tc, exp_tanh_and_logistic_are_within_a_few_ulp);
    tcase_add_test(tc, loops_of_the_polynomials_ask_for_interleaving);
    suite_add_tcase(s, tc);
    return kiln_test_run(s);
}
