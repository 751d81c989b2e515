/* test_scan.c: recurrences in the IR (compiler/scan.c).
**
** A scan is one node holding a body graph. These tests build scans through
** the public kiln_expr_scan, run them through the reference interpreter
** (compiler/interp.c) and check: Blocks' example 14 (SimpleRecurrent with
** W = I on ones(3, 1, 3) gives 1, 2, 3), every kind of result (stacked and
** final states, stacked and summed outputs, the states at t-1) forwards
** and in reverse, nested scans, and the gradient (a reverse scan built by
** autodiff) against float64 central differences for parameters read in
** the step (contexts), trainable initial states and the sequences
** themselves, in the interpreter and in the compiled program (whose
** values tests/test_backends.c compares with the interpreter's on every
** entry point). Building errors name what was wrong. An LSTM in float32
** has the same cost and gradients with the fast paths (kiln's own GEMM
** kernels, W^T made once per backward scan) as without. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

#include "compiler/graph.h"
#include "gradcheck.h"
#include "scanutil.h"
#include "testutil.h"

enum { D = 3 };

/* ---- steps ----------------------------------------------------------------- */

/* SimpleRecurrent with the identity activation: h_t = x_t + h_{t-1} W;
** outputs: tanh(h_t) stacked and h_t summed. user: W's param. */
static enum kiln_status step_identity(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    kiln_node w = kiln_graph_param(body, user);
    res[0] = kiln_expr_add(body, args[0], kiln_expr_matmul(body, args[1], w));
    res[1] = kiln_expr_tanh(body, res[0]);
    res[2] = res[0];
    return KILN_OK;
}

/* Blocks' example 14 (SimpleRecurrent(dim=3, Identity, W=Identity()) on
** x = ones(3, 1, 3) gives [[[1,1,1]], [[2,2,2]], [[3,3,3]]]), with every
** result of the scan checked, forwards and in reverse. */
static void example_14(bool reverse)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_param *w = kiln_param_create("W", 2, (int64_t[]){D, D});
    double eye[D * D] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    ck_assert_int_eq(kiln_param_set_values(w, eye, D * D), KILN_OK);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F64, 3, (int64_t[]){KILN_TIME, KILN_BATCH, D});
    kiln_node h0 = kiln_expr_broadcast(g, kiln_expr_constant(g, 0), 2, (int64_t[]){KILN_BATCH, D});
    kiln_scan_spec spec = {.n_sequences = 1, .n_states = 1, .n_outputs = 2, .reverse = reverse, .sum_outputs = 2};
    kiln_node s = kiln_expr_scan(g, &spec, &x, &h0, NULL, step_identity, w);
    ck_assert_msg(kiln_node_ok(s), "%s", kiln_graph_errmsg(g));
    ck_assert_int_eq(kiln_graph_node_output_count(g, s), 5);
    kiln_node outs[5];
    for (int k = 0; k < 5; k++)
        outs[k] = kiln_expr_output(g, s, k);
    char buf[64];
    /* the shapes: (T, B, 3), (B, 3), (T, B, 3), (B, 3), (T, B, 3) */
    ck_assert_str_eq(kiln_graph_dim_str(g, kiln_graph_node_dim(g, outs[0], 0), buf, sizeof buf), "T");
    ck_assert_int_eq(kiln_graph_node_rank(g, outs[1]), 2);
    ck_assert_int_eq(kiln_graph_node_rank(g, outs[3]), 2);
    ck_assert_int_eq(kiln_graph_node_rank(g, outs[4]), 3);
    kiln_node cost = kiln_expr_sum(g, outs[1], KILN_ALL_AXES);
    ck_assert_msg(kiln_node_ok(cost), "%s", kiln_graph_errmsg(g));

    prog p;
    prog_open(&p, g, cost, outs, 5, NULL, 0);
    double ones[9];
    for (int i = 0; i < 9; i++)
        ones[i] = 1;
    ck_assert_int_eq(kiln_interp_bind_input(p.it, kiln_graph_input_by_name(p.pg, "x").id, ones), KILN_OK);
    prog_run(&p, KILN_MODE_FORWARD, 1, 3);
    double got[9], want[9];
    /* stacked states, in time order: t = 0, 1, 2 */
    read_node(&p, p.outs[0], got, 9);
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < D; i++)
            want[t * D + i] = reverse ? 3 - t : t + 1;
    assert_values(got, want, 9, "stacked states");
    double stacked[9];
    memcpy(stacked, want, sizeof stacked);
    /* the final state: the last one computed */
    read_node(&p, p.outs[1], got, 3);
    for (int i = 0; i < D; i++)
        want[i] = 3;
    assert_values(got, want, 3, "final state");
    /* tanh of each, stacked */
    read_node(&p, p.outs[2], got, 9);
    for (int i = 0; i < 9; i++)
        want[i] = tanh(stacked[i]);
    assert_values(got, want, 9, "stacked output");
    /* the sum of h over the steps: 1 + 2 + 3 */
    read_node(&p, p.outs[3], got, 3);
    for (int i = 0; i < D; i++)
        want[i] = 6;
    assert_values(got, want, 3, "summed output");
    /* the states each step read: h_{t-1} (h0 = 0 first) */
    read_node(&p, p.outs[4], got, 9);
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < D; i++)
            want[t * D + i] = reverse ? 2 - t : t;
    assert_values(got, want, 9, "states at t-1");
    prog_close(&p);
    kiln_graph_destroy(g);
    kiln_param_destroy(w);
}

START_TEST(blocks_example_14_every_result)
{
    example_14(false);
}
END_TEST

START_TEST(blocks_example_14_reversed)
{
    example_14(true);
}
END_TEST

/* ---- gradients ---------------------------------------------------------------- */

typedef struct tanh_rnn {
    kiln_param *u, *w, *b;
} tanh_rnn;

/* h_t = tanh(x_t U + h_{t-1} W + b); outputs h_t * c (stacked, c a
** context) and sum(h_t^2) per row (summed). */
static enum kiln_status step_tanh(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    tanh_rnn *m = user;
    kiln_node u = kiln_graph_param(body, m->u), w = kiln_graph_param(body, m->w), b = kiln_graph_param(body, m->b);
    kiln_node pre = kiln_expr_add(body, kiln_expr_matmul(body, args[0], u), kiln_expr_matmul(body, args[1], w));
    res[0] = kiln_expr_tanh(body, kiln_expr_add(body, pre, b));
    res[1] = kiln_expr_mul(body, res[0], args[2]);
    res[2] = kiln_expr_sum(body, kiln_expr_square(body, res[0]), 1);
    return KILN_OK;
}

/* A tanh RNN whose sequence, initial state and step parameters are all
** parameters, every result of the scan in the cost with its own weight,
** forwards and reversed. */
static void gradient_case(bool reverse)
{
    enum { T = 4, B = 2 };
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    tanh_rnn m = {kiln_param_create("U", 2, (int64_t[]){D, D}), kiln_param_create("W", 2, (int64_t[]){D, D}),
                  kiln_param_create("b", 1, (int64_t[]){D})};
    kiln_param *px = kiln_param_create("x", 3, (int64_t[]){T, B, D});
    kiln_param *ph0 = kiln_param_create("h0", 1, (int64_t[]){D});
    kiln_param *pc = kiln_param_create("c", 2, (int64_t[]){B, D});
    kiln_param *pr[4];
    fill(m.u, D * D, 0.8, 1);
    fill(m.w, D * D, 0.8, 2);
    fill(m.b, D, 0.3, 3);
    fill(px, T * B * D, 1.0, 4);
    fill(ph0, D, 0.5, 5);
    fill(pc, B * D, 1.0, 6);
    kiln_node x = kiln_graph_param(g, px), c = kiln_graph_param(g, pc);
    kiln_node h0 = kiln_expr_broadcast(g, kiln_graph_param(g, ph0), 2, (int64_t[]){B, D});
    kiln_scan_spec spec = {.n_sequences = 1, .n_states = 1, .n_contexts = 1, .n_outputs = 2, .reverse = reverse,
                           .sum_outputs = 2};
    kiln_node s = kiln_expr_scan(g, &spec, &x, &h0, &c, step_tanh, &m);
    ck_assert_msg(kiln_node_ok(s), "%s", kiln_graph_errmsg(g));
    /* cost = sum_k sum(r_k * result_k), r_k fixed weights */
    kiln_node cost = KILN_NODE_NONE;
    for (int k = 0; k < 5; k++) {
        kiln_node out = kiln_expr_output(g, s, k);
        int rank = kiln_graph_node_rank(g, out);
        int64_t dims[3];
        int64_t n = 1;
        for (int a = 0; a < rank; a++)
            n *= dims[a] = kiln_graph_node_dim(g, out, a);
        char name[8];
        snprintf(name, sizeof name, "r%d", k);
        kiln_param *r = kiln_param_create(name, rank, dims);
        fill(r, n, 1.0, 10 + (unsigned)k);
        if (k < 4)
            pr[k] = r;
        kiln_node term = kiln_expr_sum(g, kiln_expr_mul(g, kiln_graph_param(g, r), out), KILN_ALL_AXES);
        cost = k ? kiln_expr_add(g, cost, term) : term;
        if (k == 4) {
            ck_assert_msg(kiln_node_ok(cost), "%s", kiln_graph_errmsg(g));
            /* r4 lives as long as the graph: keep it for destruction */
            kiln_node wrt[] = {kiln_graph_param_node(g, m.u), kiln_graph_param_node(g, m.w),
                               kiln_graph_param_node(g, m.b), x, kiln_graph_param_node(g, ph0), c};
            prog p;
            prog_open(&p, g, cost, NULL, 0, wrt, 6);
            const char *names[] = {"U", "W", "b", "x (the sequence)", "h0 (the initial state)", "c (a context)"};
            for (int q = 0; q < 6; q++)
                check_gradient(&p, q, names[q], B, T);
            prog_close(&p);
            /* and the compiled program: its body a C function, its loop over t */
            char why[256];
            double err = gc_check(g, cost, wrt, 6, NULL, 0, 1, 1e-6, why, sizeof why);
            ck_assert_msg(err >= 0 && err < 1e-7, "compiled: error %g: %s", err, why);
            kiln_graph_destroy(g);
            kiln_param_destroy(r);
        }
    }
    for (int k = 0; k < 4; k++)
        kiln_param_destroy(pr[k]);
    kiln_param_destroy(m.u);
    kiln_param_destroy(m.w);
    kiln_param_destroy(m.b);
    kiln_param_destroy(px);
    kiln_param_destroy(ph0);
    kiln_param_destroy(pc);
}

START_TEST(gradient_matches_central_differences)
{
    gradient_case(false);
}
END_TEST

START_TEST(gradient_of_a_reverse_scan_matches_central_differences)
{
    gradient_case(true);
}
END_TEST

/* ---- nesting ---------------------------------------------------------------- */

/* The inner step: a running sum of its sequence's rows, scaled by v. */
static enum kiln_status step_inner(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    res[0] = kiln_expr_add(body, args[1], kiln_expr_mul(body, args[0], kiln_graph_param(body, user)));
    return KILN_OK;
}

/* The outer step: x_t is (L, D); its inner scan's final state added to h. */
static enum kiln_status step_outer(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    kiln_node zero = kiln_expr_broadcast(body, kiln_expr_constant(body, 0), 1, (int64_t[]){D});
    kiln_scan_spec spec = {.n_sequences = 1, .n_states = 1};
    kiln_node inner = kiln_expr_scan(body, &spec, &args[0], &zero, NULL, step_inner, user);
    res[0] = kiln_expr_tanh(body, kiln_expr_add(body, args[1], kiln_expr_output(body, inner, 1)));
    return KILN_OK;
}

/* A scan inside a scan's step: values by hand, and the gradient of the
** inner step's parameter (read two bodies deep) by central differences. */
START_TEST(nested_scan_forward_and_gradient)
{
    enum { T = 3, L = 2 };
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_param *v = kiln_param_create("v", 1, (int64_t[]){D});
    kiln_param *px = kiln_param_create("x", 3, (int64_t[]){T, L, D});
    fill(v, D, 1.0, 7);
    fill(px, T * L * D, 1.0, 8);
    kiln_node x = kiln_graph_param(g, px);
    kiln_node h0 = kiln_expr_broadcast(g, kiln_expr_constant(g, 0.25), 1, (int64_t[]){D});
    kiln_scan_spec spec = {.n_sequences = 1, .n_states = 1};
    kiln_node s = kiln_expr_scan(g, &spec, &x, &h0, NULL, step_outer, v);
    ck_assert_msg(kiln_node_ok(s), "%s", kiln_graph_errmsg(g));
    kiln_node fin = kiln_expr_output(g, s, 1);
    kiln_node cost = kiln_expr_sum(g, kiln_expr_square(g, fin), KILN_ALL_AXES);
    kiln_node wrt[] = {kiln_graph_param_node(g, v), x};
    prog p;
    prog_open(&p, g, cost, &fin, 1, wrt, 2);
    prog_run(&p, KILN_MODE_FORWARD, 1, 1);
    /* by hand */
    const double *xv = kiln_param_data(px), *vv = kiln_param_data(v);
    double h[D], want[D], got[D];
    for (int i = 0; i < D; i++)
        h[i] = 0.25;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++) {
            double acc = 0;
            for (int l = 0; l < L; l++)
                acc += xv[(t * L + l) * D + i] * vv[i];
            h[i] = tanh(h[i] + acc);
        }
    memcpy(want, h, sizeof want);
    read_node(&p, p.outs[0], got, D);
    assert_values(got, want, D, "nested final state");
    check_gradient(&p, 0, "v (read by the inner step)", 1, 1);
    check_gradient(&p, 1, "x (the outer sequence)", 1, 1);
    prog_close(&p);
    kiln_graph_destroy(g);
    kiln_param_destroy(v);
    kiln_param_destroy(px);
}
END_TEST

/* ---- a scan through the graph tools ---------------------------------------------- */

/* x (T, B, 3) -> the scan of example 14; the stacked states. */
static kiln_node identity_scan(kiln_graph *g, kiln_param *w, kiln_node x)
{
    kiln_node h0 = kiln_expr_broadcast(g, kiln_expr_constant(g, 0), 2, (int64_t[]){KILN_BATCH, D});
    kiln_scan_spec spec = {.n_sequences = 1, .n_states = 1, .n_outputs = 2, .sum_outputs = 2};
    return kiln_expr_output(g, kiln_expr_scan(g, &spec, &x, &h0, NULL, step_identity, w), 0);
}

/* kiln_graph_replace copies a scan with its body: replacing the sequence
** by 2x doubles every state; the printed graph shows the body. */
START_TEST(replace_and_print_carry_the_body)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_param *w = kiln_param_create("W", 2, (int64_t[]){D, D});
    double eye[D * D] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    ck_assert_int_eq(kiln_param_set_values(w, eye, D * D), KILN_OK);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F64, 3, (int64_t[]){KILN_TIME, KILN_BATCH, D});
    kiln_node h = identity_scan(g, w, x);
    ck_assert_msg(kiln_node_ok(h), "%s", kiln_graph_errmsg(g));
    kiln_node twice = kiln_expr_mul(g, x, kiln_expr_constant(g, 2));
    kiln_graph *g2;
    kiln_node h2;
    ck_assert_msg(kiln_graph_replace(g, &h, 1, &x, &twice, 1, &g2, &h2) == KILN_OK, "%s", kiln_graph_errmsg(g));
    kiln_graph_destroy(g); /* the new graph stands alone */
    kiln_node cost = kiln_expr_sum(g2, h2, KILN_ALL_AXES);
    prog p;
    prog_open(&p, g2, cost, &h2, 1, NULL, 0);
    double ones[6] = {1, 1, 1, 1, 1, 1}, got[6];
    ck_assert_int_eq(kiln_interp_bind_input(p.it, kiln_graph_input_by_name(p.pg, "x").id, ones), KILN_OK);
    prog_run(&p, KILN_MODE_FORWARD, 1, 2);
    read_node(&p, p.outs[0], got, 6);
    assert_values(got, (const double[]){2, 2, 2, 4, 4, 4}, 6, "states of the replaced graph");
    prog_close(&p);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_int_eq(kiln_graph_write_text(g2, f), KILN_OK);
    fclose(f);
    ck_assert_msg(strstr(text, "= scan {float64 (T, B, 3); float64 (B, 3)"), "%s", text);
    ck_assert_msg(strstr(text, "body=0 sequences=1 states=1 contexts=1 outputs=2 summed=0x2"), "%s", text);
    ck_assert_msg(strstr(text, "body b0, results b0.n"), "%s", text);
    ck_assert_msg(strstr(text, "b0.n0 = arg float64 (B, 3) arg=0"), "%s", text);
    ck_assert_msg(strstr(text, "= matmul float64 (B, 3) (b0.n1, b0.n"), "%s", text);
    ck_assert_msg(strstr(text, "\nend b0\n"), "%s", text);
    free(text);
    kiln_graph_destroy(g2);
    kiln_param_destroy(w);
}
END_TEST

/* ---- random numbers in a step ---------------------------------------------------- */

/* y_t = m_t * x_t * w with m_t ~ Bernoulli(0.5) drawn in the step from a
** random state of the step's own (seed 7, which the outer graph also
** uses); outputs y_t and m_t. */
static enum kiln_status step_dropout(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    kiln_node m = kiln_expr_random_bernoulli(body, kiln_graph_random_state(body, 7), 2,
                                             (int64_t[]){KILN_BATCH, D}, 0.5);
    res[0] = kiln_expr_mul(body, m, kiln_expr_mul(body, args[0], kiln_graph_param(body, user)));
    res[1] = m;
    return KILN_OK;
}

/* Draws in a step: each step its own (the rows of the stacked masks
** differ), none equal to the outer graph's draws from the same seed, the
** same in the gradient's recomputed step as in the forward step (the
** gradient of sum(y) by w is sum(m x) read from the forward masks), and new
** ones at the next call (the outer graph advances the state). */
START_TEST(random_draws_in_a_step_are_per_step_and_the_gradient_sees_them)
{
    enum { T = 6, B = 4 };
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_param *w = kiln_param_create("w", 1, (int64_t[]){D});
    ck_assert_int_eq(kiln_param_set_values(w, (const double[]){1, 1, 1}, D), KILN_OK);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F64, 3, (int64_t[]){KILN_TIME, KILN_BATCH, D});
    kiln_scan_spec spec = {.n_sequences = 1, .n_outputs = 2};
    kiln_node s = kiln_expr_scan(g, &spec, &x, NULL, NULL, step_dropout, w);
    ck_assert_msg(kiln_node_ok(s), "%s", kiln_graph_errmsg(g));
    kiln_node y = kiln_expr_output(g, s, 0), m = kiln_expr_output(g, s, 1);
    kiln_node outer = kiln_expr_random_bernoulli(g, kiln_graph_random_state(g, 7), 2, (int64_t[]){KILN_BATCH, D}, 0.5);
    kiln_node cost = kiln_expr_sum(g, y, KILN_ALL_AXES);
    kiln_node mon = kiln_expr_sum(g, kiln_expr_mul(g, m, x), KILN_ALL_AXES);
    kiln_node outs[] = {m, outer};
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = cost;
    o.outputs = outs;
    o.n_outputs = 2;
    o.monitors = &mon;
    o.n_monitors = 1;
    o.max_size[0] = B;
    o.max_size[1] = T;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    double xv[T * B * D];
    for (int i = 0; i < T * B * D; i++)
        xv[i] = 1 + (i % 7);
    ck_assert_int_eq(kiln_program_set_size(p, KILN_TIME, T), KILN_OK);
    ck_assert_int_eq(kiln_program_bind_input(p, "x", xv), KILN_OK);
    double ms[2][T * B * D], first[B * D];
    for (int call = 0; call < 2; call++) {
        ck_assert_int_eq(kiln_program_forward(p, B), KILN_OK);
        ck_assert_int_eq(kiln_program_read(p, m, ms[call], T * B * D), KILN_OK);
        if (call == 0)
            ck_assert_int_eq(kiln_program_read(p, outer, first, B * D), KILN_OK);
    }
    int same_rows = 0, same_as_outer = 0, ones = 0;
    for (int t = 1; t < T; t++)
        same_rows += memcmp(ms[0], ms[0] + t * B * D, sizeof first) == 0;
    same_as_outer = memcmp(ms[0], first, sizeof first) == 0;
    for (int i = 0; i < T * B * D; i++)
        ones += ms[0][i] == 1;
    ck_assert_msg(same_rows == 0, "%d steps drew step 0's numbers", same_rows);
    ck_assert_msg(!same_as_outer, "step 0 drew the outer graph's numbers");
    ck_assert_msg(ones > T * B * D / 4 && ones < 3 * T * B * D / 4, "%d ones of %d", ones, T * B * D);
    ck_assert_msg(memcmp(ms[0], ms[1], sizeof ms[0]) != 0, "the next call drew the same numbers");
    /* the gradient's step recomputes the forward step's masks */
    ck_assert_int_eq(kiln_program_gradients(p, B), KILN_OK);
    double gw[D], total;
    ck_assert_int_eq(kiln_program_read_gradient(p, kiln_graph_param_node(g, w), gw, D), KILN_OK);
    ck_assert_int_eq(kiln_program_read_scalar(p, mon, &total), KILN_OK);
    ck_assert_msg(fabs(gw[0] + gw[1] + gw[2] - total) < 1e-9 * total, "gradient %g, masks give %g",
                  gw[0] + gw[1] + gw[2], total);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_param_destroy(w);
}
END_TEST

/* ---- what the gradient saves ------------------------------------------------------- */

/* Products in the C function `fn` of source src. */
static int products_in(const char *src, const char *fn)
{
    const char *at = strstr(src, fn);
    ck_assert_msg(at, "no function %s", fn);
    const char *end = strstr(at + 1, "\nstatic int64_t ");
    int n = 0;
    for (const char *q = at; (q = strstr(q, ":matmul ->")) && (!end || q < end); q++)
        n++;
    return n;
}

/* The tanh RNN's step has two products (x_t U, h W); its gradient's step
** computes neither again (it reads the saved tanh; the products' adjoints
** need only their operands, so the products are not stacked) and one
** product only, d W^T (x is an input: no adjoint); the forward scan's
** saved values are not among the results a user counts. */
START_TEST(the_gradient_step_reads_the_saved_products)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    tanh_rnn m = {kiln_param_create("U", 2, (int64_t[]){D, D}), kiln_param_create("W", 2, (int64_t[]){D, D}),
                  kiln_param_create("b", 1, (int64_t[]){D})};
    fill(m.u, D * D, 0.8, 1);
    fill(m.w, D * D, 0.8, 2);
    fill(m.b, D, 0.3, 3);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F64, 3, (int64_t[]){KILN_TIME, KILN_BATCH, D});
    kiln_node c = kiln_expr_broadcast(g, kiln_expr_constant(g, 1), 2, (int64_t[]){KILN_BATCH, D});
    kiln_node h0 = kiln_expr_broadcast(g, kiln_expr_constant(g, 0), 2, (int64_t[]){KILN_BATCH, D});
    kiln_scan_spec spec = {.n_sequences = 1, .n_states = 1, .n_contexts = 1, .n_outputs = 2, .sum_outputs = 2};
    kiln_node s = kiln_expr_scan(g, &spec, &x, &h0, &c, step_tanh, &m);
    ck_assert_msg(kiln_node_ok(s), "%s", kiln_graph_errmsg(g));
    ck_assert_int_eq(kiln_graph_node_output_count(g, s), 5);
    ck_assert(!kiln_node_ok(kiln_expr_output(g, s, 5)));
    kiln_graph_clear_error(g);
    kiln_node cost = kiln_expr_sum(g, kiln_expr_output(g, s, 1), KILN_ALL_AXES);
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "rnn";
    o.cost = cost;
    o.max_size[0] = 2;
    o.max_size[1] = 4;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    const char *src = kiln_program_source(p);
    ck_assert_int_eq(products_in(src, "static int64_t rnn_b0_run"), 2);
    ck_assert_int_eq(products_in(src, "static int64_t rnn_b1_run"), 1);
    /* the step's results the loops copy out (5): not the saved products,
    ** which nothing in the gradient's step reads (an add's adjoint needs no
    ** value) */
    int copied = 0, in_place = 0;
    for (const char *q = strstr(src, "static int64_t rnn_run"); q && (q = strstr(q, "= (const double *)k_res[")); q++)
        copied++;
    for (const char *q = strstr(src, "static int64_t rnn_run"); q && (q = strstr(q, "/* written in place */")); q++)
        in_place++;
    ck_assert_int_eq(copied + in_place, 5);
    /* the gradient scan's stacked result and its carried state (the
    ** adjoint of h) are written by its step straight where they go: row t,
    ** the carry the next step reads (lower.c, lower_results_in_place); the
    ** forward's saved tanh is also the carried state's storage, and stays a
    ** copy */
    ck_assert_int_eq(in_place, 2);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_param_destroy(m.u);
    kiln_param_destroy(m.w);
    kiln_param_destroy(m.b);
}
END_TEST

/* s_t = 2 s_{t-1} + x_t, then an output that reads s_{t-1} after s_t is
** made: o_t = s_t * s_{t-1}. */
static enum kiln_status step_reads_old_state(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    (void)user;
    res[0] = kiln_expr_add(body, kiln_expr_add(body, args[1], args[1]), args[0]);
    res[1] = kiln_expr_mul(body, res[0], args[1]);
    return KILN_OK;
}

/* A compiled step writes its new state into the carry it does not read
** (emit_c.c, kernel_scan): written over the old one, o_t would be s_t^2. */
START_TEST(regress_a_step_reads_its_old_state_after_making_the_new)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F64, 3, (int64_t[]){KILN_TIME, KILN_BATCH, 2});
    kiln_node s0 = kiln_expr_broadcast(g, kiln_expr_constant(g, 1), 2, (int64_t[]){KILN_BATCH, 2});
    kiln_scan_spec spec = {.n_sequences = 1, .n_states = 1, .n_outputs = 1};
    kiln_node s = kiln_expr_scan(g, &spec, &x, &s0, NULL, step_reads_old_state, NULL);
    kiln_node outs[2] = {kiln_expr_output(g, s, 1), kiln_expr_output(g, s, 2)}; /* final s, stacked o */
    ck_assert_msg(kiln_node_ok(outs[0]) && kiln_node_ok(outs[1]), "%s", kiln_graph_errmsg(g));
    kiln_compile_options o = kiln_compile_options_default();
    o.outputs = outs;
    o.n_outputs = 2;
    o.max_size[0] = 1;
    o.max_size[1] = 3;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    double xs[6] = {1, 2, 3, 4, 5, 6}, got[6];
    ck_assert_int_eq(kiln_program_set_size(p, KILN_TIME, 3), KILN_OK);
    ck_assert_int_eq(kiln_program_bind_input(p, "x", xs), KILN_OK);
    ck_assert_int_eq(kiln_program_forward(p, 1), KILN_OK);
    /* s: (3, 4), (9, 12), (23, 30); o: s_t * s_{t-1} from s_{-1} = 1 */
    ck_assert_int_eq(kiln_program_read(p, outs[0], got, 2), KILN_OK);
    assert_values(got, (const double[]){23, 30}, 2, "final state");
    ck_assert_int_eq(kiln_program_read(p, outs[1], got, 6), KILN_OK);
    assert_values(got, (const double[]){3, 4, 27, 48, 207, 360}, 6, "stacked output");
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
}
END_TEST

/* ---- errors ---------------------------------------------------------------- */

/* h_t = h_{t-1} + table[idx_t]: a lookup inside the step. */
static enum kiln_status step_lookup(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    res[0] = kiln_expr_add(body, args[1], kiln_expr_gather(body, kiln_graph_param(body, user), args[0]));
    return KILN_OK;
}

/* A compiled step that reads a bad index fails, naming the scan and the
** position; with good indices it sums the rows it looked up. */
START_TEST(an_index_out_of_range_in_a_step_names_the_scan)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_param *table = kiln_param_create("table", 2, (int64_t[]){4, 2});
    ck_assert_int_eq(kiln_param_set_values(table, (const double[]){0, 1, 10, 11, 20, 21, 30, 31}, 8), KILN_OK);
    kiln_node idx = kiln_graph_input(g, "idx", KILN_DTYPE_I32, 2, (int64_t[]){KILN_TIME, KILN_BATCH});
    kiln_node h0 = kiln_expr_broadcast(g, kiln_expr_constant(g, 0), 2, (int64_t[]){KILN_BATCH, 2});
    kiln_scan_spec spec = {.n_sequences = 1, .n_states = 1};
    kiln_node fin = kiln_expr_output(g, kiln_expr_scan(g, &spec, &idx, &h0, NULL, step_lookup, table), 1);
    ck_assert_msg(kiln_node_ok(fin), "%s", kiln_graph_errmsg(g));
    kiln_compile_options o = kiln_compile_options_default();
    o.outputs = &fin;
    o.n_outputs = 1;
    o.max_size[0] = 2;
    o.max_size[1] = 3;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    int32_t ids[6] = {1, 2, 3, 0, 2, 2}; /* (T 3, B 2) */
    ck_assert_int_eq(kiln_program_set_size(p, KILN_TIME, 3), KILN_OK);
    ck_assert_int_eq(kiln_program_bind_input(p, "idx", ids), KILN_OK);
    ck_assert_int_eq(kiln_program_forward(p, 2), KILN_OK);
    double got[4];
    ck_assert_int_eq(kiln_program_read(p, fin, got, 4), KILN_OK);
    assert_values(got, (const double[]){10 + 30 + 20, 11 + 31 + 21, 20 + 0 + 20, 21 + 1 + 21}, 4, "sums");
    ids[3] = 4;
    ck_assert_int_eq(kiln_program_forward(p, 2), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(p), "scan node") && strstr(kiln_program_errmsg(p), "position 1"),
                  "%s", kiln_program_errmsg(p));
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_param_destroy(table);
}
END_TEST

static enum kiln_status step_bad_shape(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    (void)user;
    res[0] = kiln_expr_sum(body, args[1], 1); /* (B,) for a (B, 3) state */
    return KILN_OK;
}

static enum kiln_status step_makes_input(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    (void)user;
    kiln_node y = kiln_graph_input(body, "y", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, D});
    res[0] = kiln_expr_add(body, args[1], y);
    return KILN_OK;
}

static enum kiln_status step_ignores_state(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    (void)user;
    res[0] = kiln_expr_tanh(body, args[0]); /* the new state never reads the old one */
    return KILN_OK;
}

static enum kiln_status step_fails(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    (void)args;
    (void)res;
    (void)user;
    (void)body;
    return KILN_ERR_ARG;
}

static enum kiln_status step_no_result(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    (void)body;
    (void)args;
    (void)res;
    (void)user;
    return KILN_OK;
}

START_TEST(bad_scans_are_errors_naming_what_was_wrong)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F64, 3, (int64_t[]){KILN_TIME, KILN_BATCH, D});
    kiln_node x5 = kiln_graph_input(g, "x5", KILN_DTYPE_F64, 3, (int64_t[]){5, KILN_BATCH, D});
    kiln_node h0 = kiln_expr_broadcast(g, kiln_expr_constant(g, 0), 2, (int64_t[]){KILN_BATCH, D});
    kiln_scan_spec spec = {.n_sequences = 1, .n_states = 1};
    struct {
        kiln_scan_step_fn fn;
        enum kiln_status st;
        const char *says;
    } cases[] = {
        {step_bad_shape, KILN_ERR_SHAPE, "state 0 is float64 (B, 3) but its new value is float64 (B,)"},
        {step_makes_input, KILN_ERR_UNSUPPORTED, "input 'y' made in the body"},
        {step_fails, KILN_ERR_ARG, "the step function failed"},
        {step_ignores_state, KILN_ERR_ARG, "state 0 is never read by the step"},
        {step_no_result, KILN_ERR_ARG, "result 0 is not a node of the body"},
    };
    for (size_t k = 0; k < KILN_ARRAY_LEN(cases); k++) {
        kiln_node s = kiln_expr_scan(g, &spec, &x, &h0, NULL, cases[k].fn, NULL);
        ck_assert(!kiln_node_ok(s));
        ck_assert_int_eq(kiln_graph_status(g), cases[k].st);
        ck_assert_msg(strstr(kiln_graph_errmsg(g), cases[k].says), "case %zu: %s", k, kiln_graph_errmsg(g));
        kiln_graph_clear_error(g);
    }
    /* sequences of two lengths */
    kiln_node seqs[] = {x, x5};
    kiln_scan_spec two = {.n_sequences = 2, .n_states = 1};
    ck_assert(!kiln_node_ok(kiln_expr_scan(g, &two, seqs, &h0, NULL, step_identity, NULL)));
    ck_assert_int_eq(kiln_graph_status(g), KILN_ERR_SHAPE);
    ck_assert_msg(strstr(kiln_graph_errmsg(g), "sequence 1 is (5, B, 3), sequence 0 (T, B, 3)"), "%s",
                  kiln_graph_errmsg(g));
    kiln_graph_clear_error(g);
    /* no step, no sequence */
    ck_assert(!kiln_node_ok(kiln_expr_scan(g, &spec, &x, &h0, NULL, NULL, NULL)));
    ck_assert_int_eq(kiln_graph_status(g), KILN_ERR_ARG);
    kiln_graph_clear_error(g);
    kiln_scan_spec none = {.n_sequences = 0, .n_states = 1};
    ck_assert(!kiln_node_ok(kiln_expr_scan(g, &none, &x, &h0, NULL, step_identity, NULL)));
    ck_assert_int_eq(kiln_graph_status(g), KILN_ERR_ARG);
    kiln_graph_destroy(g);
}
END_TEST

/* An LSTM in float32 with the fast paths (kiln's own GEMM kernels, the
** backward step's x W^T reading a W^T made once before the loop in 16 x 16
** tiles, the products' fused paths) and with none: the same cost and
** gradients. Sizes where the own kernel takes the step's products: 32
** rows, 64 units (x W^T: n 64, k 256). */
static kiln_program *lstm_program(kiln_graph *g, kiln_node cost, bool plain)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.name = plain ? "lstm_plain" : "lstm_fast";
    o.cost = cost;
    o.max_batch = 32;
    o.max_size[KILN_SYMBOL_INDEX(KILN_TIME)] = 3;
    o.no_fast_paths = plain;
    kiln_program *p = NULL;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", p ? kiln_program_errmsg(p) : "no program");
    return p;
}

START_TEST(an_lstm_has_the_same_gradients_with_and_without_fast_paths)
{
    enum { T = 3, NB = 32, H = 64 };
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 3, (int64_t[]){KILN_TIME, KILN_BATCH, 4 * H});
    kiln_brick *lstm = kiln_lstm_create("lstm", H, NULL);
    kiln_brick_set_weights_init(lstm, kiln_init_isotropic_gaussian(0.2, 7));
    kiln_node outs[2];
    ck_assert_int_eq(kiln_recurrent_call(lstm, "apply", g, (kiln_node[]){x, KILN_NODE_NONE, KILN_NODE_NONE,
                                         KILN_NODE_NONE}, 4, NULL, outs, 2), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(lstm), KILN_OK);
    kiln_node cost = kiln_expr_sum(g, kiln_expr_mul(g, outs[0], outs[0]), KILN_ALL_AXES);
    ck_assert_msg(kiln_node_ok(cost), "%s", kiln_graph_errmsg(g));
    static float data[T * NB * 4 * H];
    for (int i = 0; i < T * NB * 4 * H; i++)
        data[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    kiln_program *p[2];
    double c[2];
    for (int k = 0; k < 2; k++) {
        p[k] = lstm_program(g, cost, k == 1);
        ck_assert_int_eq(kiln_program_set_size(p[k], KILN_TIME, T), KILN_OK);
        ck_assert_int_eq(kiln_program_bind_input(p[k], "x", data), KILN_OK);
        ck_assert_msg(kiln_program_gradients(p[k], NB) == KILN_OK, "%s", kiln_program_errmsg(p[k]));
        ck_assert_int_eq(kiln_program_read_scalar(p[k], cost, &c[k]), KILN_OK);
    }
    ck_assert_msg(fabs(c[0] - c[1]) <= 1e-5 * fabs(c[1]), "cost %.9g with fast paths, %.9g without", c[0], c[1]);
    for (int i = 0; i < kiln_brick_param_count(lstm); i++) {
        kiln_param *w = kiln_brick_param(lstm, i);
        int64_t n = kiln_param_size(w);
        double *got = malloc(sizeof(double) * (size_t)n), *want = malloc(sizeof(double) * (size_t)n);
        ck_assert_ptr_nonnull(got);
        ck_assert_ptr_nonnull(want);
        kiln_node pn = kiln_graph_param_node(g, w);
        ck_assert_int_eq(kiln_program_read_gradient(p[0], pn, got, n), KILN_OK);
        ck_assert_int_eq(kiln_program_read_gradient(p[1], pn, want, n), KILN_OK);
        double scale = 0;
        for (int64_t j = 0; j < n; j++)
            scale = fmax(scale, fabs(want[j]));
        for (int64_t j = 0; j < n; j++)
            ck_assert_msg(fabs(got[j] - want[j]) <= 1e-4 * scale, "d %s[%lld]: %.9g with fast paths, %.9g without",
                          kiln_param_name(w), (long long)j, got[j], want[j]);
        free(got);
        free(want);
    }
    kiln_program_destroy(p[0]);
    kiln_program_destroy(p[1]);
    kiln_graph_destroy(g);
    kiln_brick_destroy(lstm);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scan");
    TCase *tc = tcase_create("scan");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, blocks_example_14_every_result);
    tcase_add_test(tc, blocks_example_14_reversed);
    tcase_add_test(tc, gradient_matches_central_differences);
    tcase_add_test(tc, gradient_of_a_reverse_scan_matches_central_differences);
    tcase_add_test(tc, nested_scan_forward_and_gradient);
    tcase_add_test(tc, replace_and_print_carry_the_body);
    tcase_add_test(tc, bad_scans_are_errors_naming_what_was_wrong);
    tcase_add_test(tc, an_index_out_of_range_in_a_step_names_the_scan);
    tcase_add_test(tc, random_draws_in_a_step_are_per_step_and_the_gradient_sees_them);
    tcase_add_test(tc, the_gradient_step_reads_the_saved_products);
    tcase_add_test(tc, regress_a_step_reads_its_old_state_after_making_the_new);
    tcase_add_test(tc, an_lstm_has_the_same_gradients_with_and_without_fast_paths);
    suite_add_tcase(s, tc);
    return kiln_test_run(s);
}
