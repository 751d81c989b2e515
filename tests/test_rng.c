/* test_rng.c: kiln_rng against numpy's legacy RandomState, and kiln_init_fill
** against Blocks' initialization schemes.
**
** Every expected value below was computed once with numpy 1.24
** (numpy.random.RandomState) and pasted here; the tests never run Python.
** The generator and derived draws are checked separately so a failure points
** at the layer that broke: raw words, doubles, gaussians, bounded integers. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/init.h"
#include "compiler/rng.h"
#include "testutil.h"

/* Doubles come from the same integer draws and glibc's log/sqrt as numpy;
** allow a few ulps so a different libm does not fail the suite. */
#define ULP_TOL 1e-15

static void assert_close(double got, double want, int i)
{
    double tol = ULP_TOL * (fabs(want) > 1 ? fabs(want) : 1);
    ck_assert_msg(fabs(got - want) <= tol, "element %d: got %.17g, want %.17g", i, got, want);
}

/* ---- raw MT19937 words ------------------------------------------------- */

START_TEST(u32_matches_mt19937ar_default_seed)
{
    /* mt19937ar.c's default seed 5489; RandomState(5489).randint(0, 2**32). */
    static const uint32_t want[] = {3499211612u, 581869302u, 3890346734u, 3586334585u,
                                    545404204u};
    kiln_rng r;
    kiln_rng_seed(&r, 5489);
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(kiln_rng_u32(&r), want[i]);
}
END_TEST

START_TEST(u32_crosses_state_regeneration)
{
    /* Word 700 lies in the second 624-word block. */
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    ck_assert_uint_eq(kiln_rng_u32(&r), 1791095845u);
    ck_assert_uint_eq(kiln_rng_u32(&r), 4282876139u);
    ck_assert_uint_eq(kiln_rng_u32(&r), 3093770124u);
    for (int i = 3; i < 700; i++)
        kiln_rng_u32(&r);
    ck_assert_uint_eq(kiln_rng_u32(&r), 3308150152u);
}
END_TEST

START_TEST(seed_array_matches_init_by_array)
{
    /* mt19937ar.c's test key; RandomState([0x123, 0x234, 0x345, 0x456]). */
    static const uint32_t key[] = {0x123, 0x234, 0x345, 0x456};
    kiln_rng r;
    kiln_rng_seed_array(&r, key, 4);
    ck_assert_uint_eq(kiln_rng_u32(&r), 1067595299u);
    ck_assert_uint_eq(kiln_rng_u32(&r), 955945823u);
    ck_assert_uint_eq(kiln_rng_u32(&r), 477289528u);
}
END_TEST

START_TEST(seed_u64_small_is_plain_seed_large_is_array)
{
    kiln_rng a, b;
    kiln_rng_seed_u64(&a, 7);
    kiln_rng_seed(&b, 7);
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(kiln_rng_u32(&a), kiln_rng_u32(&b));
    /* (1 << 32) | 5 -> RandomState([5, 1]). */
    kiln_rng_seed_u64(&a, (UINT64_C(1) << 32) | 5);
    ck_assert_uint_eq(kiln_rng_u32(&a), 675479763u);
    ck_assert_uint_eq(kiln_rng_u32(&a), 2085189291u);
    ck_assert_uint_eq(kiln_rng_u32(&a), 1213270837u);
}
END_TEST

START_TEST(state_is_a_value_copy_replays)
{
    kiln_rng a;
    kiln_rng_seed(&a, 99);
    (void)kiln_rng_gauss(&a); /* leave a cached gaussian in the state */
    kiln_rng b = a;
    for (int i = 0; i < 1000; i++)
        ck_assert(kiln_rng_gauss(&a) == kiln_rng_gauss(&b));
}
END_TEST

/* ---- doubles ------------------------------------------------------------ */

START_TEST(uniform_matches_random_sample)
{
    static const double want[] = {0.417022004702574, 0.7203244934421581, 0.00011437481734488664};
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    for (int i = 0; i < 3; i++)
        assert_close(kiln_rng_uniform(&r), want[i], i);
    kiln_rng_seed(&r, UINT32_MAX);
    assert_close(kiln_rng_uniform(&r), 0.0976320289940138, 0);
    assert_close(kiln_rng_uniform(&r), 0.9123828453026218, 1);
}
END_TEST

START_TEST(uniform_stays_in_half_open_unit_interval)
{
    kiln_rng r;
    kiln_rng_seed(&r, 3);
    for (int i = 0; i < 100000; i++) {
        double u = kiln_rng_uniform(&r);
        ck_assert(u >= 0.0 && u < 1.0);
    }
}
END_TEST

START_TEST(gauss_matches_randn)
{
    static const double want1[] = {1.6243453636632417, -0.6117564136500754, -0.5281717522634557,
                                   -1.0729686221561705};
    static const double want42[] = {0.4967141530112327, -0.13826430117118466, 0.6476885381006925,
                                    1.5230298564080254, -0.23415337472333597};
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    for (int i = 0; i < 4; i++)
        assert_close(kiln_rng_gauss(&r), want1[i], i);
    kiln_rng_seed(&r, 42);
    for (int i = 0; i < 5; i++)
        assert_close(kiln_rng_gauss(&r), want42[i], i);
}
END_TEST

START_TEST(gauss_far_into_the_stream)
{
    /* RandomState(1).randn(1001)[-2:]: rejections and regenerations on the way. */
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    for (int i = 0; i < 999; i++)
        kiln_rng_gauss(&r);
    assert_close(kiln_rng_gauss(&r), -0.18695501653274957, 999);
    assert_close(kiln_rng_gauss(&r), -0.15323616176709168, 1000);
}
END_TEST

START_TEST(gauss_cache_survives_other_draws)
{
    /* numpy: normal() then random_sample(): the cached second gaussian does
    ** not consume words, so the sample is random_sample's third value. */
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    assert_close(kiln_rng_gauss(&r), 1.6243453636632417, 0);
    assert_close(kiln_rng_uniform(&r), 0.00011437481734488664, 1);
    assert_close(kiln_rng_gauss(&r), -0.6117564136500754, 2);
}
END_TEST

START_TEST(seed_clears_cached_gauss)
{
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    kiln_rng_gauss(&r);
    ck_assert_int_eq(r.has_gauss, 1);
    kiln_rng_seed(&r, 1);
    assert_close(kiln_rng_gauss(&r), 1.6243453636632417, 0);
}
END_TEST

/* ---- bounded integers and shuffles -------------------------------------- */

START_TEST(below_matches_numpy_randint)
{
    /* RandomState(3).randint(0, 7, 5) and .randint(0, 2**40, 3, uint64). */
    static const uint64_t want7[] = {2, 0, 1, 3, 0};
    static const uint64_t want40[] = {UINT64_C(455570294424), UINT64_C(1073054410371),
                                      UINT64_C(790795084744)};
    kiln_rng r;
    kiln_rng_seed(&r, 3);
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(kiln_rng_below(&r, 7), want7[i]);
    kiln_rng_seed(&r, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(kiln_rng_below(&r, UINT64_C(1) << 40), want40[i]);
}
END_TEST

START_TEST(below_one_and_zero_draw_nothing)
{
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    ck_assert_uint_eq(kiln_rng_below(&r, 0), 0);
    ck_assert_uint_eq(kiln_rng_below(&r, 1), 0);
    ck_assert_uint_eq(kiln_rng_u32(&r), 1791095845u);
}
END_TEST

START_TEST(below_is_unbiased)
{
    /* n = 3 wastes a quarter of the masked draws; each value must still get
    ** a third. 60000 draws: sd of a count is ~115, allow 5 sd. */
    enum { DRAWS = 60000 };
    int64_t count[3] = {0, 0, 0};
    kiln_rng r;
    kiln_rng_seed(&r, 11);
    for (int i = 0; i < DRAWS; i++) {
        uint64_t v = kiln_rng_below(&r, 3);
        ck_assert_uint_lt(v, 3);
        count[v]++;
    }
    for (int v = 0; v < 3; v++)
        ck_assert_msg(llabs(count[v] - DRAWS / 3) < 600, "value %d drawn %lld times of %d", v,
                      (long long)count[v], DRAWS);
}
END_TEST

/* Fisher-Yates as RandomState.shuffle does it. */
static void shuffle(kiln_rng *r, int64_t *x, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)kiln_rng_below(r, (uint64_t)i + 1);
        int64_t t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

static void assert_permutation(kiln_rng *r, const int64_t *want, int64_t n)
{
    int64_t x[32];
    ck_assert_int_le(n, 32);
    for (int64_t i = 0; i < n; i++)
        x[i] = i;
    shuffle(r, x, n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(x[i] == want[i], "position %lld: got %lld, want %lld", (long long)i,
                      (long long)x[i], (long long)want[i]);
}

START_TEST(shuffle_matches_numpy_permutation)
{
    static const int64_t p1a[] = {2, 9, 6, 4, 0, 3, 1, 7, 8, 5};
    static const int64_t p1b[] = {9, 5, 3, 0, 8, 4, 2, 1, 6, 7};
    static const int64_t p123[] = {14, 5, 4, 17, 8, 7, 19, 12, 0, 15,
                                   16, 9, 11, 10, 3,  1, 6,  18, 2, 13};
    kiln_rng r;
    kiln_rng_seed(&r, 1); /* RandomState(1).permutation(10) twice */
    assert_permutation(&r, p1a, 10);
    assert_permutation(&r, p1b, 10);
    kiln_rng_seed(&r, 123);
    assert_permutation(&r, p123, 20);
}
END_TEST

/* ---- initialization schemes --------------------------------------------- */

START_TEST(init_constant_fills_without_rng)
{
    double x[5];
    kiln_err err;
    kiln_init in = kiln_init_constant(0.25);
    ck_assert_int_eq(kiln_init_fill(&in, NULL, x, 5, &err), KILN_OK);
    for (int i = 0; i < 5; i++)
        ck_assert(x[i] == 0.25);
}
END_TEST

START_TEST(init_gaussian_matches_blocks_tutorial)
{
    /* Blocks: IsotropicGaussian(0.01) with seed 1 -> 0.01624345, -0.00611756, ... */
    static const double want[] = {0.01624345363663242, -0.006117564136500754,
                                  -0.005281717522634557};
    double x[3];
    kiln_err err;
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    kiln_init in = kiln_init_isotropic_gaussian(0.01, 0);
    ck_assert_int_eq(kiln_init_fill(&in, &r, x, 3, &err), KILN_OK);
    for (int i = 0; i < 3; i++)
        assert_close(x[i], want[i], i);
}
END_TEST

START_TEST(init_gaussian_with_mean_matches_numpy_normal)
{
    /* RandomState(1).normal(0.5, 2.0, 4) */
    static const double want[] = {3.7486907273264833, -0.7235128273001508, -0.5563435045269114,
                                  -1.645937244312341};
    double x[4];
    kiln_err err;
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    kiln_init in = kiln_init_isotropic_gaussian(2.0, 0.5);
    ck_assert_int_eq(kiln_init_fill(&in, &r, x, 4, &err), KILN_OK);
    for (int i = 0; i < 4; i++)
        assert_close(x[i], want[i], i);
}
END_TEST

START_TEST(init_uniform_matches_numpy_uniform)
{
    /* Uniform(mean=0.1, width=0.5) = RandomState(1).uniform(-0.15, 0.35, 4) */
    static const double want[] = {0.058511002351287006, 0.21016224672107905,
                                  -0.14994281259132755, 0.00116628631591989};
    double x[4];
    kiln_err err;
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    kiln_init in = kiln_init_uniform(0.1, 0.5);
    ck_assert_int_eq(kiln_init_fill(&in, &r, x, 4, &err), KILN_OK);
    for (int i = 0; i < 4; i++) {
        assert_close(x[i], want[i], i);
        ck_assert(x[i] >= -0.15 && x[i] < 0.35);
    }
}
END_TEST

START_TEST(init_zero_elements_is_ok)
{
    kiln_err err;
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    kiln_init in = kiln_init_isotropic_gaussian(1, 0);
    ck_assert_int_eq(kiln_init_fill(&in, &r, NULL, 0, &err), KILN_OK);
    ck_assert_uint_eq(kiln_rng_u32(&r), 1791095845u); /* nothing drawn */
}
END_TEST

/* A failing fill must leave dst and the rng untouched. */
static void assert_fill_fails(kiln_init in, enum kiln_status want, const char *needle)
{
    double x[3] = {7, 7, 7};
    kiln_err err;
    kiln_err_clear(&err);
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    ck_assert_int_eq(kiln_init_fill(&in, &r, x, 3, &err), want);
    ck_assert_int_eq(err.status, want);
    ck_assert_msg(strstr(err.msg, needle), "message \"%s\" lacks \"%s\"", err.msg, needle);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    for (int i = 0; i < 3; i++)
        ck_assert(x[i] == 7);
    ck_assert_uint_eq(kiln_rng_u32(&r), 1791095845u);
}

START_TEST(init_none_is_config_error)
{
    assert_fill_fails((kiln_init){KILN_INIT_NONE, 0, 0}, KILN_ERR_CONFIG, "None");
}
END_TEST

START_TEST(init_negative_std_is_config_error)
{
    assert_fill_fails(kiln_init_isotropic_gaussian(-0.5, 0), KILN_ERR_CONFIG, "std is -0.5");
    assert_fill_fails(kiln_init_isotropic_gaussian(NAN, 0), KILN_ERR_CONFIG, "std");
    assert_fill_fails(kiln_init_isotropic_gaussian(1, INFINITY), KILN_ERR_CONFIG, "mean");
}
END_TEST

START_TEST(init_negative_width_is_config_error)
{
    assert_fill_fails(kiln_init_uniform(0, -2), KILN_ERR_CONFIG, "Uniform: width is -2");
    assert_fill_fails(kiln_init_uniform(NAN, 1), KILN_ERR_CONFIG, "mean");
}
END_TEST

START_TEST(init_bad_constant_and_kind_are_config_errors)
{
    assert_fill_fails(kiln_init_constant(INFINITY), KILN_ERR_CONFIG, "Constant");
    assert_fill_fails((kiln_init){(enum kiln_init_kind)42, 0, 0}, KILN_ERR_CONFIG, "kind 42");
}
END_TEST

START_TEST(init_bad_arguments_are_arg_errors)
{
    double x[1];
    kiln_err err;
    kiln_init g = kiln_init_isotropic_gaussian(1, 0);
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    ck_assert_int_eq(kiln_init_fill(NULL, &r, x, 1, &err), KILN_ERR_ARG);
    ck_assert_int_eq(kiln_init_fill(&g, &r, x, -1, &err), KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "-1"));
    ck_assert_int_eq(kiln_init_fill(&g, &r, NULL, 1, &err), KILN_ERR_ARG);
    ck_assert_int_eq(kiln_init_fill(&g, NULL, x, 1, &err), KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "rng"));
}
END_TEST

static Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("mt19937");
    tcase_add_test(tc, u32_matches_mt19937ar_default_seed);
    tcase_add_test(tc, u32_crosses_state_regeneration);
    tcase_add_test(tc, seed_array_matches_init_by_array);
    tcase_add_test(tc, seed_u64_small_is_plain_seed_large_is_array);
    tcase_add_test(tc, state_is_a_value_copy_replays);
    suite_add_tcase(s, tc);

    tc = tcase_create("doubles");
    tcase_add_test(tc, uniform_matches_random_sample);
    tcase_add_test(tc, uniform_stays_in_half_open_unit_interval);
    tcase_add_test(tc, gauss_matches_randn);
    tcase_add_test(tc, gauss_far_into_the_stream);
    tcase_add_test(tc, gauss_cache_survives_other_draws);
    tcase_add_test(tc, seed_clears_cached_gauss);
    suite_add_tcase(s, tc);

    tc = tcase_create("integers");
    tcase_add_test(tc, below_matches_numpy_randint);
    tcase_add_test(tc, below_one_and_zero_draw_nothing);
    tcase_add_test(tc, below_is_unbiased);
    tcase_add_test(tc, shuffle_matches_numpy_permutation);
    suite_add_tcase(s, tc);

    tc = tcase_create("init");
    tcase_add_test(tc, init_constant_fills_without_rng);
    tcase_add_test(tc, init_gaussian_matches_blocks_tutorial);
    tcase_add_test(tc, init_gaussian_with_mean_matches_numpy_normal);
    tcase_add_test(tc, init_uniform_matches_numpy_uniform);
    tcase_add_test(tc, init_zero_elements_is_ok);
    tcase_add_test(tc, init_none_is_config_error);
    tcase_add_test(tc, init_negative_std_is_config_error);
    tcase_add_test(tc, init_negative_width_is_config_error);
    tcase_add_test(tc, init_bad_constant_and_kind_are_config_errors);
    tcase_add_test(tc, init_bad_arguments_are_arg_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kiln_test_run(rng_suite());
}
