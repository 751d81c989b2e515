/* test_random.c: random nodes through the whole pipeline.
**
** Every value a compiled program draws is checked against kiln_philox
** (compiler/rng.c) computed here: element i of stream s at step n is
** Philox4x32-10 of (i, s, n) under the seed's key. Uniform and Bernoulli
** draws must be equal bit for bit; normal ones follow the Box-Muller form
** documented in kiln/graph.h and are compared within float rounding. Then
** the properties users rely on: the same seed draws the same numbers, a new
** step draws new ones in every entry point, two random nodes never share a
** stream, the moments are right over many draws, symbolic shapes draw the
** right count, and store_params keeps the advanced state. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/graph.h"
#include "compiler/rng.h"
#include "testutil.h"

#define SEED UINT64_C(0x123456789abc)

/* The state words of seed at step n: key low, key high, step low, step high. */
static void state_at(uint64_t seed, uint64_t step, int32_t st[4])
{
    st[0] = (int32_t)(uint32_t)seed;
    st[1] = (int32_t)(uint32_t)(seed >> 32);
    st[2] = (int32_t)(uint32_t)step;
    st[3] = (int32_t)(uint32_t)(step >> 32);
}

/* The stream a random node draws from (its attribute, graph.h). */
static int64_t stream_of(const kiln_graph *g, kiln_node n) { return kiln_graph_cnode(g, n.id)->attr.i[1]; }

/* Uniform unit k of element i of stream s at step n, as generated code makes it. */
static double ref_unit(uint64_t seed, uint64_t step, int64_t s, uint64_t i, int k, bool f64)
{
    int32_t st[4];
    uint32_t w[4];
    state_at(seed, step, st);
    kiln_philox(st, i, s, w);
    return kiln_philox_unit(w, k, f64);
}

/* The draws in float32 arithmetic, as generated code computes them. */
static double ref_uniform_f32(uint64_t seed, uint64_t step, int64_t s, uint64_t i, double lo, double hi)
{
    float u = (float)ref_unit(seed, step, s, i, 0, false);
    return (float)((float)lo + ((float)hi - (float)lo) * u);
}

static double ref_bernoulli(uint64_t seed, uint64_t step, int64_t s, uint64_t i, double p, bool f64)
{
    double u = ref_unit(seed, step, s, i, 0, f64);
    return f64 ? (u < p) : ((float)u < (float)p);
}

/* kiln/graph.h: mean + std * sqrt(-2 ln(1 - u1)) * cos(2 pi u2). */
static double ref_normal(uint64_t seed, uint64_t step, int64_t s, uint64_t i, double mean, double std, bool f64)
{
    double u1 = ref_unit(seed, step, s, i, 0, f64), u2 = ref_unit(seed, step, s, i, 1, f64);
    return mean + std * sqrt(-2 * log(1 - u1)) * cos(6.283185307179586 * u2);
}

static kiln_program *compile_outputs(kiln_graph *g, const kiln_node *outs, int n, int64_t max_batch)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "rnd";
    o.outputs = outs;
    o.n_outputs = n;
    o.max_batch = max_batch;
    o.max_size[KILN_SYMBOL_INDEX(KILN_TIME)] = 8;
    kiln_program *p;
    enum kiln_status st = kiln_compile(g, &o, &p);
    ck_assert_msg(st == KILN_OK, "compile: %s", kiln_program_errmsg(p));
    return p;
}

/* Index of the program's random state, checked to be the only one. */
static int random_state_index(kiln_program *p)
{
    int found = -1;
    for (int i = 0; i < kiln_program_state_count(p); i++)
        if (strcmp(kiln_program_state_name(p, i), "random_state") == 0) {
            ck_assert_int_eq(found, -1);
            found = i;
        }
    ck_assert_int_ge(found, 0);
    return found;
}

/* The step counter of the program's random state (words 2 and 3). */
static uint64_t counter_of(kiln_program *p)
{
    double v[4];
    ck_assert_int_eq(kiln_program_get_state(p, random_state_index(p), v, 4), KILN_OK);
    ck_assert_int_eq((int32_t)v[0], (int32_t)(uint32_t)SEED);
    ck_assert_int_eq((int32_t)v[1], (int32_t)(uint32_t)(SEED >> 32));
    return (uint64_t)(uint32_t)(int32_t)v[3] << 32 | (uint32_t)(int32_t)v[2];
}

static void forward(kiln_program *p, int64_t batch)
{
    ck_assert_msg(kiln_program_forward(p, batch) == KILN_OK, "forward: %s", kiln_program_errmsg(p));
}

static void read_all(kiln_program *p, kiln_node n, double *dst, int64_t count)
{
    ck_assert_msg(kiln_program_read(p, n, dst, count) == KILN_OK, "read: %s", kiln_program_errmsg(p));
}

/* A graph whose one input only sets the batch (a random node needs no input
** for its values, but a step needs its batch from somewhere). */
static kiln_graph *graph_with_batch(enum kiln_dtype t, kiln_node *x)
{
    kiln_graph *g = kiln_graph_create(t);
    ck_assert_ptr_nonnull(g);
    *x = kiln_graph_input(g, "x", t, 2, (int64_t[]){KILN_BATCH, 3});
    ck_assert(kiln_node_ok(*x));
    return g;
}

/* ---- values equal philox's ---------------------------------------------------- */

START_TEST(uniform_matches_philox_step_by_step)
{
    kiln_node x;
    kiln_graph *g = graph_with_batch(KILN_DTYPE_F32, &x);
    kiln_node s = kiln_graph_random_state(g, SEED);
    kiln_node u = kiln_expr_random_uniform(g, s, 2, (int64_t[]){KILN_BATCH, 3}, -2, 3);
    kiln_node y = kiln_expr_add(g, x, u); /* drawn inside a computation, not only read out */
    ck_assert_int_eq(kiln_graph_status(g), KILN_OK);
    kiln_program *p = compile_outputs(g, (kiln_node[]){u, y}, 2, 8);
    float xs[8 * 3] = {0};
    ck_assert_int_eq(kiln_program_bind_input(p, "x", xs), KILN_OK);
    ck_assert_uint_eq(counter_of(p), 0);
    for (uint64_t step = 0; step < 3; step++) {
        double v[24], vy[24];
        forward(p, 8);
        ck_assert_uint_eq(counter_of(p), step + 1); /* the state shows each step */
        read_all(p, u, v, 24);
        read_all(p, y, vy, 24);
        for (int i = 0; i < 24; i++) {
            double want = ref_uniform_f32(SEED, step, stream_of(g, u), (uint64_t)i, -2, 3);
            ck_assert_msg(v[i] == want, "step %d element %d: %.9g, philox %.9g", (int)step, i, v[i], want);
            ck_assert(vy[i] == v[i]);
            ck_assert(v[i] >= -2 && v[i] < 3);
        }
    }
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
}
END_TEST

START_TEST(uniform_float64_takes_53_bits)
{
    kiln_node x;
    kiln_graph *g = graph_with_batch(KILN_DTYPE_F64, &x);
    kiln_node u = kiln_expr_random_uniform(g, kiln_graph_random_state(g, SEED), 2, (int64_t[]){KILN_BATCH, 3}, 0, 1);
    kiln_program *p = compile_outputs(g, &u, 1, 8);
    double v[15];
    forward(p, 5);
    read_all(p, u, v, 15);
    for (int i = 0; i < 15; i++)
        ck_assert_msg(v[i] == ref_unit(SEED, 0, stream_of(g, u), (uint64_t)i, 0, true), "element %d", i);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
}
END_TEST

START_TEST(bernoulli_matches_philox)
{
    for (int f64 = 0; f64 < 2; f64++) {
        kiln_node x;
        kiln_graph *g = graph_with_batch(f64 ? KILN_DTYPE_F64 : KILN_DTYPE_F32, &x);
        kiln_node b = kiln_expr_random_bernoulli(g, kiln_graph_random_state(g, SEED), 2,
                                                 (int64_t[]){KILN_BATCH, 50}, 0.3);
        kiln_program *p = compile_outputs(g, &b, 1, 8);
        double v[400];
        int ones = 0;
        for (uint64_t step = 0; step < 2; step++) {
            forward(p, 8);
            read_all(p, b, v, 400);
            for (int i = 0; i < 400; i++) {
                ck_assert_msg(v[i] == ref_bernoulli(SEED, step, stream_of(g, b), (uint64_t)i, 0.3, f64),
                              "%s step %d element %d: %g", f64 ? "float64" : "float32", (int)step, i, v[i]);
                ones += v[i] == 1;
            }
        }
        ck_assert(ones > 0 && ones < 800); /* both outcomes occur */
        kiln_program_destroy(p);
        kiln_graph_destroy(g);
    }
}
END_TEST

START_TEST(normal_is_box_muller_of_two_units)
{
    for (int f64 = 0; f64 < 2; f64++) {
        kiln_node x;
        kiln_graph *g = graph_with_batch(f64 ? KILN_DTYPE_F64 : KILN_DTYPE_F32, &x);
        kiln_node n = kiln_expr_random_normal(g, kiln_graph_random_state(g, SEED), 2, (int64_t[]){KILN_BATCH, 40},
                                              1.5, 2.0);
        kiln_program *p = compile_outputs(g, &n, 1, 8);
        double v[320];
        forward(p, 8);
        read_all(p, n, v, 320);
        double tol = f64 ? 1e-12 : 2e-6;
        for (int i = 0; i < 320; i++) {
            double want = ref_normal(SEED, 0, stream_of(g, n), (uint64_t)i, 1.5, 2.0, f64);
            ck_assert_msg(fabs(v[i] - want) <= tol * (1 + fabs(want)), "%s element %d: %.9g, Box-Muller %.9g",
                          f64 ? "float64" : "float32", i, v[i], want);
        }
        kiln_program_destroy(p);
        kiln_graph_destroy(g);
    }
}
END_TEST

/* ---- reproducible, and new numbers each step ---------------------------------------- */

/* The first draw of a program compiled from a graph with this seed. */
static void first_draw(uint64_t seed, double *v, int n)
{
    kiln_node x;
    kiln_graph *g = graph_with_batch(KILN_DTYPE_F32, &x);
    kiln_node u = kiln_expr_random_uniform(g, kiln_graph_random_state(g, seed), 2, (int64_t[]){KILN_BATCH, 3}, 0, 1);
    kiln_program *p = compile_outputs(g, &u, 1, 8);
    forward(p, n / 3);
    read_all(p, u, v, n);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
}

START_TEST(same_seed_same_numbers_other_seed_others)
{
    double a[24], b[24], c[24];
    first_draw(SEED, a, 24);
    first_draw(SEED, b, 24);
    first_draw(SEED + 1, c, 24);
    ck_assert_mem_eq(a, b, sizeof a);
    int same = 0;
    for (int i = 0; i < 24; i++)
        same += a[i] == c[i];
    ck_assert_int_le(same, 1);
}
END_TEST

START_TEST(two_programs_of_one_graph_draw_alike)
{
    kiln_node x;
    kiln_graph *g = graph_with_batch(KILN_DTYPE_F32, &x);
    kiln_node u = kiln_expr_random_uniform(g, kiln_graph_random_state(g, SEED), 2, (int64_t[]){KILN_BATCH, 3}, 0, 1);
    kiln_program *p = compile_outputs(g, &u, 1, 8), *q = compile_outputs(g, &u, 1, 8);
    for (int step = 0; step < 3; step++) {
        double a[12], b[12];
        forward(p, 4);
        forward(q, 4);
        read_all(p, u, a, 12);
        read_all(q, u, b, 12);
        ck_assert_mem_eq(a, b, sizeof a);
    }
    kiln_program_destroy(p);
    kiln_program_destroy(q);
    kiln_graph_destroy(g);
}
END_TEST

/* cost = sum((x * mask) W) over a Linear without bias: dcost/dW[i][j] is
** sum over the batch of (x * mask)[b][i], so the gradient shows which mask
** the step drew. */
typedef struct masked {
    kiln_graph *g;
    kiln_brick *lin;
    kiln_node x, mask, cost;
    kiln_program *p;
    float xs[4 * 3];
} masked;

static void masked_make(masked *m)
{
    m->g = graph_with_batch(KILN_DTYPE_F32, &m->x);
    m->lin = kiln_linear_create("lin", 3, 2);
    kiln_brick_set_use_bias(m->lin, false);
    kiln_brick_set_weights_init(m->lin, kiln_init_constant(0.5));
    m->mask = kiln_expr_random_bernoulli(m->g, kiln_graph_random_state(m->g, SEED), 2, (int64_t[]){KILN_BATCH, 3}, 0.5);
    kiln_node h;
    ck_assert_int_eq(kiln_brick_apply(m->lin, m->g, kiln_expr_mul(m->g, m->x, m->mask), &h), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(m->lin), KILN_OK);
    m->cost = kiln_expr_sum(m->g, h, KILN_ALL_AXES);
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "masked";
    o.cost = m->cost;
    o.step_rule = kiln_step_scale(0.0); /* W stays, so every step's cost shows its mask alone */
    o.monitors = &m->cost;
    o.n_monitors = 1;
    o.outputs = &m->mask;
    o.n_outputs = 1;
    o.max_batch = 4;
    ck_assert_msg(kiln_compile(m->g, &o, &m->p) == KILN_OK, "compile: %s", kiln_program_errmsg(m->p));
    for (int i = 0; i < 12; i++)
        m->xs[i] = (float)(i + 1);
    ck_assert_int_eq(kiln_program_bind_input(m->p, "x", m->xs), KILN_OK);
}

static void masked_free(masked *m)
{
    kiln_program_destroy(m->p);
    kiln_graph_destroy(m->g);
    kiln_brick_destroy(m->lin);
}

/* The cost the mask of this step gives: sum(x * mask) * 2 columns * 0.5. */
static double masked_cost(const masked *m, uint64_t step)
{
    double c = 0;
    for (int i = 0; i < 12; i++)
        c += m->xs[i] * ref_bernoulli(SEED, step, stream_of(m->g, m->mask), (uint64_t)i, 0.5, false);
    return c;
}

START_TEST(every_entry_point_draws_and_advances)
{
    masked m;
    masked_make(&m);
    kiln_program *p = m.p;
    double v[12], cost;
    ck_assert_uint_eq(counter_of(p), 0);
    /* forward: step 0 */
    forward(p, 4);
    read_all(p, m.mask, v, 12);
    for (int i = 0; i < 12; i++)
        ck_assert(v[i] == ref_bernoulli(SEED, 0, stream_of(m.g, m.mask), (uint64_t)i, 0.5, false));
    ck_assert_uint_eq(counter_of(p), 1);
    /* eval_step: step 1 */
    ck_assert_int_eq(kiln_program_eval_step(p, 4), KILN_OK);
    ck_assert_int_eq(kiln_program_read_scalar(p, m.cost, &cost), KILN_OK);
    ck_assert_double_eq_tol(cost, masked_cost(&m, 1), 1e-4);
    ck_assert_uint_eq(counter_of(p), 2);
    /* gradients: step 2, and the gradient reads the same mask as the cost */
    ck_assert_int_eq(kiln_program_gradients(p, 4), KILN_OK);
    ck_assert_int_eq(kiln_program_read_scalar(p, m.cost, &cost), KILN_OK);
    ck_assert_double_eq_tol(cost, masked_cost(&m, 2), 1e-4);
    ck_assert_uint_eq(counter_of(p), 3);
    kiln_node w = kiln_graph_param_node(m.g, kiln_brick_param_by_name(m.lin, "W"));
    double dw[6];
    ck_assert_int_eq(kiln_program_read_gradient(p, w, dw, 6), KILN_OK);
    for (int i = 0; i < 3; i++) {
        double want = 0;
        for (int b = 0; b < 4; b++)
            want += m.xs[b * 3 + i] * ref_bernoulli(SEED, 2, stream_of(m.g, m.mask), (uint64_t)(b * 3 + i), 0.5, false);
        ck_assert_double_eq_tol(dw[i * 2], want, 1e-4);
        ck_assert_double_eq_tol(dw[i * 2 + 1], want, 1e-4);
    }
    /* train_step: steps 3 and 4 */
    for (uint64_t step = 3; step < 5; step++) {
        ck_assert_int_eq(kiln_program_train_step(p, 4), KILN_OK);
        ck_assert_int_eq(kiln_program_read_scalar(p, m.cost, &cost), KILN_OK);
        ck_assert_double_eq_tol(cost, masked_cost(&m, step), 1e-4);
        ck_assert_uint_eq(counter_of(p), step + 1);
    }
    masked_free(&m);
}
END_TEST

START_TEST(store_params_writes_the_state_back)
{
    masked m;
    masked_make(&m);
    kiln_param *sp = kiln_graph_node_param(m.g, kiln_graph_random_state(m.g, SEED));
    ck_assert_ptr_nonnull(sp);
    double sv[4];
    for (int k = 0; k < 3; k++)
        forward(m.p, 4);
    ck_assert_int_eq(kiln_param_get_values(sp, sv, 4), KILN_OK);
    ck_assert(sv[2] == 0 && sv[3] == 0); /* the store keeps its value until told */
    ck_assert_int_eq(kiln_program_store_params(m.p), KILN_OK);
    ck_assert_int_eq(kiln_param_get_values(sp, sv, 4), KILN_OK);
    ck_assert(sv[0] == (int32_t)(uint32_t)SEED && sv[1] == (int32_t)(uint32_t)(SEED >> 32));
    ck_assert(sv[2] == 3 && sv[3] == 0);
    /* a program compiled now goes on from step 3 */
    kiln_program *q = compile_outputs(m.g, &m.mask, 1, 4);
    ck_assert_uint_eq(counter_of(q), 3);
    double v[12];
    forward(q, 4);
    read_all(q, m.mask, v, 12);
    for (int i = 0; i < 12; i++)
        ck_assert(v[i] == ref_bernoulli(SEED, 3, stream_of(m.g, m.mask), (uint64_t)i, 0.5, false));
    /* and load_params puts the store's state back into a program */
    sv[2] = 1;
    ck_assert_int_eq(kiln_param_set_values(sp, sv, 4), KILN_OK);
    ck_assert_int_eq(kiln_program_load_params(q), KILN_OK);
    ck_assert_uint_eq(counter_of(q), 1);
    kiln_program_destroy(q);
    masked_free(&m);
}
END_TEST

/* ---- streams ------------------------------------------------------------------------- */

START_TEST(two_random_nodes_of_one_shape_differ)
{
    kiln_node x;
    kiln_graph *g = graph_with_batch(KILN_DTYPE_F32, &x);
    kiln_node s = kiln_graph_random_state(g, SEED);
    int64_t dims[2] = {KILN_BATCH, 3};
    kiln_node a = kiln_expr_random_uniform(g, s, 2, dims, 0, 1);
    kiln_node b = kiln_expr_random_uniform(g, s, 2, dims, 0, 1);
    ck_assert_int_ne(a.id, b.id);
    ck_assert(stream_of(g, a) != stream_of(g, b));
    kiln_program *p = compile_outputs(g, (kiln_node[]){a, b}, 2, 8);
    double va[24], vb[24];
    forward(p, 8);
    read_all(p, a, va, 24);
    read_all(p, b, vb, 24);
    int same = 0;
    for (int i = 0; i < 24; i++) {
        same += va[i] == vb[i];
        ck_assert(vb[i] == ref_unit(SEED, 0, stream_of(g, b), (uint64_t)i, 0, false));
    }
    ck_assert_int_le(same, 1);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);

    /* A program graph hash-conses every other node: two draws stay two. */
    kiln_graph *pg = kiln_graph_create_program(KILN_DTYPE_F32);
    s = kiln_graph_random_state(pg, SEED);
    a = kiln_expr_random_normal(pg, s, 2, dims, 0, 1);
    b = kiln_expr_random_normal(pg, s, 2, dims, 0, 1);
    kiln_node c1 = kiln_expr_mul(pg, a, kiln_expr_constant(pg, 2)), c2 = kiln_expr_mul(pg, a, kiln_expr_constant(pg, 2));
    ck_assert_int_eq(c1.id, c2.id); /* CSE is on */
    ck_assert_int_ne(a.id, b.id);
    ck_assert(stream_of(pg, a) != stream_of(pg, b));
    /* even a record equal to another in every field is a new draw */
    kiln_node_rec again = *kiln_graph_cnode(pg, a.id);
    int32_t again_id = kiln_graph_add(pg, &again);
    ck_assert_int_ge(again_id, 0);
    ck_assert_int_ne(again_id, a.id);
    kiln_graph_destroy(pg);
}
END_TEST

START_TEST(random_node_errors_name_the_problem)
{
    kiln_node x;
    kiln_graph *g = graph_with_batch(KILN_DTYPE_F32, &x);
    kiln_node s = kiln_graph_random_state(g, 1);
    ck_assert_int_eq(kiln_graph_random_state(g, 1).id, s.id); /* one state per seed */
    ck_assert_int_ne(kiln_graph_random_state(g, 2).id, s.id);
    ck_assert(!kiln_node_ok(kiln_expr_random_uniform(g, x, 1, (int64_t[]){3}, 0, 1)));
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(g), "not a random state"));
    kiln_graph_clear_error(g);
    ck_assert(!kiln_node_ok(kiln_expr_random_bernoulli(g, s, 1, (int64_t[]){3}, 1.5)));
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(g), "p 1.5"));
    kiln_graph_clear_error(g);
    ck_assert(!kiln_node_ok(kiln_expr_random_normal(g, s, 1, (int64_t[]){3}, 0, -1)));
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(g), "std -1"));
    kiln_graph_clear_error(g);
    ck_assert(!kiln_node_ok(kiln_expr_random_uniform(g, s, 1, (int64_t[]){0}, 0, 1)));
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(g), "dim 0 is 0"));
    kiln_graph_destroy(g);
}
END_TEST

/* ---- moments --------------------------------------------------------------------------- */

#define N_DRAW (256 * 1000)

/* Mean and variance of n values; also the mean product of neighbours. */
static void moments(const double *v, int64_t n, double *mean, double *var, double *lag)
{
    double s = 0, s2 = 0, sl = 0;
    for (int64_t i = 0; i < n; i++)
        s += v[i];
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) {
        s2 += (v[i] - *mean) * (v[i] - *mean);
        if (i + 1 < n)
            sl += (v[i] - *mean) * (v[i + 1] - *mean);
    }
    *var = s2 / (double)(n - 1);
    *lag = sl / (double)(n - 1); /* covariance of neighbours: 0 for independent draws */
}

/* Within k standard errors: the mean (sd / sqrt n), the variance (the
** sample variance's own standard error, sqrt((mu4 - sd^4) / n)) and the
** neighbour covariance (sd^2 / sqrt n). */
static void check_moments(const char *what, const double *v, int64_t n, double mu, double var, double mu4)
{
    double m, s2, lag, k = 4;
    moments(v, n, &m, &s2, &lag);
    double se_mean = sqrt(var / (double)n), se_var = sqrt((mu4 - var * var) / (double)n), se_lag = var / sqrt((double)n);
    ck_assert_msg(fabs(m - mu) <= k * se_mean, "%s: mean %.6f, expected %.6f +- %.6f", what, m, mu, k * se_mean);
    ck_assert_msg(fabs(s2 - var) <= k * se_var, "%s: variance %.6f, expected %.6f +- %.6f", what, s2, var, k * se_var);
    ck_assert_msg(fabs(lag) <= k * se_lag, "%s: neighbour covariance %.6f, expected 0 +- %.6f", what, lag, k * se_lag);
}

START_TEST(moments_of_large_draws)
{
    kiln_node x;
    kiln_graph *g = graph_with_batch(KILN_DTYPE_F32, &x);
    kiln_node s = kiln_graph_random_state(g, SEED);
    int64_t dims[2] = {KILN_BATCH, 1000};
    kiln_node u = kiln_expr_random_uniform(g, s, 2, dims, -1, 3);
    kiln_node n = kiln_expr_random_normal(g, s, 2, dims, 0.5, 2);
    kiln_node b = kiln_expr_random_bernoulli(g, s, 2, dims, 0.2);
    kiln_program *p = compile_outputs(g, (kiln_node[]){u, n, b}, 3, 256);
    double *v = malloc(sizeof *v * N_DRAW);
    ck_assert_ptr_nonnull(v);
    for (int step = 0; step < 2; step++) {
        forward(p, 256);
        /* uniform on [-1, 3): mean 1, variance 16/12, fourth central moment 4^4/80 */
        read_all(p, u, v, N_DRAW);
        check_moments("uniform", v, N_DRAW, 1, 16.0 / 12, 256.0 / 80);
        /* normal(0.5, 2): variance 4, fourth central moment 3 * 16 */
        read_all(p, n, v, N_DRAW);
        check_moments("normal", v, N_DRAW, 0.5, 4, 48);
        /* bernoulli(0.2): variance pq, fourth central moment pq(1 - 3pq) */
        read_all(p, b, v, N_DRAW);
        double pq = 0.2 * 0.8;
        check_moments("bernoulli", v, N_DRAW, 0.2, pq, pq * (1 - 3 * pq));
    }
    free(v);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
}
END_TEST

/* ---- symbolic shapes ------------------------------------------------------------------ */

START_TEST(symbolic_time_and_batch_draw_the_right_count)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 3, (int64_t[]){KILN_TIME, KILN_BATCH, 3});
    kiln_node u = kiln_expr_random_uniform(g, kiln_graph_random_state(g, SEED), 3,
                                           (int64_t[]){KILN_TIME, KILN_BATCH, 3}, 0, 1);
    kiln_node y = kiln_expr_mul(g, x, u);
    kiln_program *p = compile_outputs(g, (kiln_node[]){u, y}, 2, 8);
    float xs[8 * 8 * 3];
    for (int i = 0; i < 8 * 8 * 3; i++)
        xs[i] = 1;
    ck_assert_int_eq(kiln_program_bind_input(p, "x", xs), KILN_OK);
    static const int64_t tb[3][2] = {{5, 4}, {2, 3}, {8, 8}};
    double v[8 * 8 * 3 + 1];
    for (int r = 0; r < 3; r++) {
        int64_t t = tb[r][0], b = tb[r][1], count = t * b * 3;
        ck_assert_int_eq(kiln_program_set_size(p, KILN_TIME, t), KILN_OK);
        forward(p, b);
        ck_assert_int_ne(kiln_program_read(p, u, v, count + 1), KILN_OK); /* the count is T*B*3 */
        read_all(p, u, v, count);
        for (int64_t i = 0; i < count; i++)
            ck_assert_msg(v[i] == ref_unit(SEED, (uint64_t)r, stream_of(g, u), (uint64_t)i, 0, false),
                          "T=%lld B=%lld element %lld", (long long)t, (long long)b, (long long)i);
        read_all(p, y, v, count);
        for (int64_t i = 0; i < count; i++)
            ck_assert(v[i] == ref_unit(SEED, (uint64_t)r, stream_of(g, u), (uint64_t)i, 0, false));
    }
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
}
END_TEST

static Suite *random_suite(void)
{
    Suite *s = suite_create("random");
    TCase *tc = tcase_create("random");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, uniform_matches_philox_step_by_step);
    tcase_add_test(tc, uniform_float64_takes_53_bits);
    tcase_add_test(tc, bernoulli_matches_philox);
    tcase_add_test(tc, normal_is_box_muller_of_two_units);
    tcase_add_test(tc, same_seed_same_numbers_other_seed_others);
    tcase_add_test(tc, two_programs_of_one_graph_draw_alike);
    tcase_add_test(tc, every_entry_point_draws_and_advances);
    tcase_add_test(tc, store_params_writes_the_state_back);
    tcase_add_test(tc, two_random_nodes_of_one_shape_differ);
    tcase_add_test(tc, random_node_errors_name_the_problem);
    tcase_add_test(tc, moments_of_large_draws);
    tcase_add_test(tc, symbolic_time_and_batch_draw_the_right_count);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return kiln_test_run(random_suite()); }
