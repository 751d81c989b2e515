/* test_recurrent.c: Blocks' recurrent bricks (compiler/bricks_recurrent.c).
**
** Every program here runs on the reference interpreter in float64
** (scanutil.c); the gradient cases also compile and check the C program's
** gradients by central differences. What is checked:
**   - Blocks' documented examples (checklist section 9, items 14 to 17):
**     SimpleRecurrent accumulating its input, the doubler before it, h0 =
**     ones, and the FeedbackRNN tutorial class written here through the
**     public API (a @recurrent step calling its children one step each);
**   - the call options: reverse (outputs in processing order, as Blocks),
**     return_initial_states (T+1 rows), one step (iterate=False);
**   - masks: a row whose mask is 0 keeps its state;
**   - LSTM and GatedRecurrent against Blocks' formulas written below as
**     plain C loops (forward to 1e-12; the gradient of a cost by every
**     parameter against central differences of the plain-C forward);
**   - the gradient through the scan by central differences for every
**     recurrent brick: masked, reversed, Bidirectional, RecurrentStack (one
**     scan per layer and low_memory_apply), initial states included;
**   - structure: parameter names, order and roles, GatedRecurrent's
**     state_to_gates drawn as Blocks draws it, Bidirectional's and
**     RecurrentStack's children, inputs and outputs; LookupTable;
**   - bad input: each error names the brick's path and what was wrong. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

#include "gradcheck.h"
#include "scanutil.h"
#include "testutil.h"

enum { D = 3 };

/* ---- helpers ------------------------------------------------------------------- */

static kiln_graph *graph64(void)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    ck_assert_ptr_nonnull(g);
    return g;
}

/* A time-major input (T, B, dim); T a constant when t > 0, else symbolic. */
static kiln_node seq_input(kiln_graph *g, const char *name, int64_t t, int64_t dim)
{
    kiln_node n = kiln_graph_input(g, name, KILN_DTYPE_F64, 3, (int64_t[]){t > 0 ? t : KILN_TIME, KILN_BATCH, dim});
    ck_assert_msg(kiln_node_ok(n), "%s", kiln_graph_errmsg(g));
    return n;
}

static kiln_node mask_input(kiln_graph *g, int64_t t)
{
    kiln_node n = kiln_graph_input(g, "mask", KILN_DTYPE_F64, 2, (int64_t[]){t > 0 ? t : KILN_TIME, KILN_BATCH});
    ck_assert_msg(kiln_node_ok(n), "%s", kiln_graph_errmsg(g));
    return n;
}

static void call_ok(kiln_brick *b, const char *app, kiln_graph *g, const kiln_node *in, int n_in,
                    const kiln_recurrent_options *o, kiln_node *out, int n_out)
{
    ck_assert_msg(kiln_recurrent_call(b, app, g, in, n_in, o, out, n_out) == KILN_OK, "%s", kiln_brick_errmsg(b));
}

static void set_values(kiln_param *p, const double *v)
{
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(kiln_param_set_values(p, v, kiln_param_size(p)), KILN_OK);
}

/* p = scale * identity. */
static void set_identity(kiln_param *p, double scale)
{
    int64_t n = kiln_param_dim(p, 0);
    double v[64] = {0};
    ck_assert_int_le(n * n, 64);
    for (int64_t i = 0; i < n; i++)
        v[i * n + i] = scale;
    set_values(p, v);
}

static void initialize_ok(kiln_brick *b, kiln_init weights, kiln_init biases)
{
    ck_assert_int_eq(kiln_brick_set_weights_init(b, weights), KILN_OK);
    if (biases.kind != KILN_INIT_NONE)
        ck_assert_int_eq(kiln_brick_set_biases_init(b, biases), KILN_OK);
    ck_assert_msg(kiln_brick_initialize(b) == KILN_OK, "%s", kiln_brick_errmsg(b));
}

/* A mask (T, B): ones, except the last steps of row 1 (a shorter sequence). */
static void short_second_row(double *m, int T, int B)
{
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            m[t * B + b] = b == 1 && t >= T - 2 ? 0 : 1;
}

/* Every parameter of b's tree by central differences through the
** interpreter (inputs bound already). */
static void check_tree_gradient(prog *p, kiln_param **ps, int n, int64_t batch, int64_t t)
{
    for (int k = 0; k < n; k++) {
        char what[160];
        snprintf(what, sizeof what, "%s of %s", kiln_param_name(ps[k]), kiln_brick_path(kiln_param_brick(ps[k])));
        check_gradient_near(p, k, what, batch, t, 1e-2);
    }
}

/* Fill every parameter of the list with distinct values in [-s, s]. */
static void fill_all(kiln_param **ps, int n, double s)
{
    for (int k = 0; k < n; k++)
        fill(ps[k], kiln_param_size(ps[k]), s, 100 + (unsigned)k);
}

static double sigm(double x) { return 1 / (1 + exp(-x)); }

/* ---- Blocks' examples 14 to 16 ------------------------------------------------- */

/* SimpleRecurrent(dim=3, activation=Identity(), weights_init=Identity()). */
static kiln_brick *accumulator(void)
{
    kiln_brick *rnn = kiln_simple_recurrent_create(NULL, D, kiln_identity_create(NULL));
    ck_assert_ptr_nonnull(rnn);
    initialize_ok(rnn, kiln_init_constant(0), (kiln_init){0});
    set_identity(kiln_brick_param_by_name(rnn, "W"), 1);
    return rnn;
}

/* h for x = ones(3, 1, 3), and h0 when given (an input (B, 3)). */
static void run_on_ones(kiln_graph *g, kiln_node h, const char *h0_name, double *got)
{
    prog p;
    kiln_node cost = kiln_expr_sum(g, h, KILN_ALL_AXES);
    prog_open(&p, g, cost, &h, 1, NULL, 0);
    double ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    prog_bind(&p, "x", ones);
    if (h0_name)
        prog_bind(&p, h0_name, ones);
    prog_run(&p, KILN_MODE_FORWARD, 1, 3);
    read_node(&p, p.outs[0], got, 9);
    prog_close(&p);
}

/* Example 14: [[[1,1,1]], [[2,2,2]], [[3,3,3]]]; the output is named as
** Blocks names it, and initial_state is a zero parameter. */
START_TEST(blocks_example_14_accumulates_the_input)
{
    kiln_graph *g = graph64();
    kiln_brick *rnn = accumulator();
    kiln_node x = seq_input(g, "x", 0, D), h;
    ck_assert_int_eq(kiln_brick_apply(rnn, g, x, &h), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, h), "simplerecurrent_apply_states");
    ck_assert_str_eq(kiln_graph_node_brick_path(g, h), "/simplerecurrent");
    ck_assert_int_eq(kiln_graph_node_rank(g, h), 3);
    double got[9];
    run_on_ones(g, h, NULL, got);
    assert_values(got, (const double[]){1, 1, 1, 2, 2, 2, 3, 3, 3}, 9, "example 14");
    ck_assert_int_eq(kiln_brick_param_count(rnn), 2);
    ck_assert_str_eq(kiln_param_name(kiln_brick_param(rnn, 0)), "W");
    ck_assert_str_eq(kiln_param_name(kiln_brick_param(rnn, 1)), "initial_state");
    double h0[D];
    ck_assert_int_eq(kiln_param_get_values(kiln_brick_param(rnn, 1), h0, D), KILN_OK);
    assert_values(h0, (const double[]){0, 0, 0}, D, "initial_state after initialize");
    kiln_graph_destroy(g);
    kiln_brick_destroy(rnn);
}
END_TEST

/* Example 15: a doubler Linear(3, 3, W = Identity(2), b = 0) before the
** RNN: [[[2,2,2]], [[4,4,4]], [[6,6,6]]]. kiln's Linear takes a matrix:
** time and batch are folded for it and unfolded after. */
START_TEST(blocks_example_15_doubler_then_rnn)
{
    kiln_graph *g = graph64();
    kiln_brick *rnn = accumulator();
    kiln_brick *doubler = kiln_linear_create("doubler", D, D);
    initialize_ok(doubler, kiln_init_constant(0), kiln_init_constant(0));
    set_identity(kiln_brick_param_by_name(doubler, "W"), 2);
    kiln_node x = seq_input(g, "x", 0, D), rows, doubled, h;
    rows = kiln_expr_reshape(g, x, 2, (int64_t[]){KILN_INFER, D});
    ck_assert_int_eq(kiln_brick_apply(doubler, g, rows, &doubled), KILN_OK);
    doubled = kiln_expr_reshape(g, doubled, 3, (int64_t[]){KILN_TIME, KILN_BATCH, D});
    ck_assert_int_eq(kiln_brick_apply(rnn, g, doubled, &h), KILN_OK);
    double got[9];
    run_on_ones(g, h, NULL, got);
    assert_values(got, (const double[]){2, 2, 2, 4, 4, 4, 6, 6, 6}, 9, "example 15");
    kiln_graph_destroy(g);
    kiln_brick_destroy(rnn);
    kiln_brick_destroy(doubler);
}
END_TEST

/* Example 16: rnn.apply(inputs=x, states=h0) with h0 = ones(1, 3):
** [[[2,2,2]], [[3,3,3]], [[4,4,4]]]. */
START_TEST(blocks_example_16_given_initial_state)
{
    kiln_graph *g = graph64();
    kiln_brick *rnn = accumulator();
    kiln_node x = seq_input(g, "x", 0, D);
    kiln_node h0 = kiln_graph_input(g, "h0", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, D}), h;
    call_ok(rnn, "apply", g, (kiln_node[]){x, KILN_NODE_NONE, h0}, 3, NULL, &h, 1);
    double got[9];
    run_on_ones(g, h, "h0", got);
    assert_values(got, (const double[]){2, 2, 2, 3, 3, 3, 4, 4, 4}, 9, "example 16");
    kiln_graph_destroy(g);
    kiln_brick_destroy(rnn);
}
END_TEST

/* ---- Blocks' example 17: FeedbackRNN, a class written here ---------------------- */

/* The tutorial's FeedbackRNN: @recurrent(sequences=['inputs'],
** states=['first_states', 'second_states'], outputs=the same); one step:
**   first_h = first.apply(inputs, states=first_states + second_states, iterate=False)
**   second_h = second.apply(inputs=first_h, states=second_states, iterate=False) */
static enum kiln_status feedback_step(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    kiln_recurrent_options one = {.one_step = true};
    kiln_brick *first = kiln_brick_child(b, 0), *second = kiln_brick_child(b, 1);
    kiln_node both = kiln_expr_add(g, in[1], in[2]);
    if (kiln_recurrent_call(first, "apply", g, (kiln_node[]){in[0], KILN_NODE_NONE, both}, 3, &one, &out[0], 1))
        return kiln_brick_fail_from(b, first);
    if (kiln_recurrent_call(second, "apply", g, (kiln_node[]){out[0], KILN_NODE_NONE, in[2]}, 3, &one, &out[1], 1))
        return kiln_brick_fail_from(b, second);
    return KILN_OK;
}

static const char *const FEEDBACK_DIMS[] = {"dim", NULL};
static const kiln_brick_input FEEDBACK_INPUTS[] = {
    {"inputs", KILN_INPUT_SEQUENCE | KILN_INPUT_FLOAT, 2, "(batch, dim)", "dim"},
    {"first_states", KILN_INPUT_STATE | KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 2, "(batch, dim)", "dim"},
    {"second_states", KILN_INPUT_STATE | KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 2, "(batch, dim)", "dim"},
    {NULL},
};
static const char *const FEEDBACK_OUTPUTS[] = {"first_states", "second_states", NULL};
static const kiln_brick_application FEEDBACK_APPS[] = {
    {"apply", FEEDBACK_INPUTS, FEEDBACK_OUTPUTS, feedback_step, KILN_APPLICATION_RECURRENT},
    {NULL},
};
static const kiln_brick_class FEEDBACK = {
    .class_name = "FeedbackRNN",
    .default_name = "feedbackrnn",
    .flags = KILN_BRICK_INITIALIZABLE,
    .dims = FEEDBACK_DIMS,
    .applications = FEEDBACK_APPS,
};

static kiln_brick *feedback_create(void)
{
    kiln_brick *b = kiln_brick_create(&FEEDBACK, NULL);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(kiln_brick_set_dim(b, "dim", D), KILN_OK);
    const char *names[] = {"first_recurrent_layer", "second_recurrent_layer"};
    for (int i = 0; i < 2; i++) {
        kiln_brick *c = kiln_simple_recurrent_create(names[i], D, kiln_identity_create(NULL));
        ck_assert_int_eq(kiln_brick_add_child(b, c), KILN_OK);
    }
    initialize_ok(b, kiln_init_constant(0), (kiln_init){0});
    for (int i = 0; i < 2; i++)
        set_identity(kiln_brick_param_by_name(kiln_brick_child(b, i), "W"), 1);
    return b;
}

/* first [[[1,1,1]], [[3,3,3]], [[8,8,8]]], second [[[1,1,1]], [[4,4,4]],
** [[12,12,12]]]; missing states start at zero (BaseRecurrent's default). */
START_TEST(blocks_example_17_feedback_rnn)
{
    kiln_graph *g = graph64();
    kiln_brick *fb = feedback_create();
    kiln_node x = seq_input(g, "x", 0, D), hs[2];
    call_ok(fb, "apply", g, (kiln_node[]){x, KILN_NODE_NONE, KILN_NODE_NONE}, 3, NULL, hs, 2);
    ck_assert_str_eq(kiln_graph_node_name(g, hs[1]), "feedbackrnn_apply_second_states");
    prog p;
    prog_open(&p, g, kiln_expr_sum(g, hs[0], KILN_ALL_AXES), hs, 2, NULL, 0);
    double ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, got[9];
    prog_bind(&p, "x", ones);
    prog_run(&p, KILN_MODE_FORWARD, 1, 3);
    read_node(&p, p.outs[0], got, 9);
    assert_values(got, (const double[]){1, 1, 1, 3, 3, 3, 8, 8, 8}, 9, "first");
    read_node(&p, p.outs[1], got, 9);
    assert_values(got, (const double[]){1, 1, 1, 4, 4, 4, 12, 12, 12}, 9, "second");
    prog_close(&p);
    kiln_graph_destroy(g);
    kiln_brick_destroy(fb);
}
END_TEST

/* ---- options ------------------------------------------------------------------ */

/* x_t = (t + 1) ones on the accumulator: forwards h_t = 1, 3, 6; reversed,
** in processing order (Blocks' go_backwards): 3, 5, 6; with the initial
** state first: 0, 1, 3, 6 and 0, 3, 5, 6. */
START_TEST(reverse_and_return_initial_states)
{
    struct {
        kiln_recurrent_options o;
        int rows;
        double want[4];
    } cases[] = {
        {{0}, 3, {1, 3, 6}},
        {{.reverse = true}, 3, {3, 5, 6}},
        {{.return_initial_states = true}, 4, {0, 1, 3, 6}},
        {{.reverse = true, .return_initial_states = true}, 4, {0, 3, 5, 6}},
    };
    double x[9];
    for (int i = 0; i < 9; i++)
        x[i] = i / D + 1;
    for (size_t c = 0; c < KILN_ARRAY_LEN(cases); c++) {
        kiln_graph *g = graph64();
        kiln_brick *rnn = accumulator();
        kiln_node h, in = seq_input(g, "x", 3, D);
        call_ok(rnn, "apply", g, (kiln_node[]){in, KILN_NODE_NONE, KILN_NODE_NONE}, 3, &cases[c].o, &h, 1);
        ck_assert_int_eq(kiln_graph_node_dim(g, h, 0), cases[c].rows);
        prog p;
        prog_open(&p, g, kiln_expr_sum(g, h, KILN_ALL_AXES), &h, 1, NULL, 0);
        prog_bind(&p, "x", x);
        prog_run(&p, KILN_MODE_FORWARD, 1, 3);
        double got[12], want[12];
        read_node(&p, p.outs[0], got, cases[c].rows * D);
        for (int i = 0; i < cases[c].rows * D; i++)
            want[i] = cases[c].want[i / D];
        char what[32];
        snprintf(what, sizeof what, "case %zu", c);
        assert_values(got, want, cases[c].rows * D, what);
        prog_close(&p);
        kiln_graph_destroy(g);
        kiln_brick_destroy(rnn);
    }
}
END_TEST

/* iterate=False: one step on (batch, dim) arguments, on the graph itself
** (no scan): tanh(x + h W), h given. */
START_TEST(one_step_builds_the_step_on_the_graph)
{
    enum { B = 2 };
    kiln_graph *g = graph64();
    kiln_brick *rnn = kiln_simple_recurrent_create(NULL, D, kiln_tanh_create(NULL));
    initialize_ok(rnn, kiln_init_constant(0), (kiln_init){0});
    kiln_param *w = kiln_brick_param_by_name(rnn, "W");
    fill(w, D * D, 0.7, 3);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, D});
    kiln_node h0 = kiln_graph_input(g, "h0", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, D}), h;
    kiln_recurrent_options one = {.one_step = true};
    call_ok(rnn, "apply", g, (kiln_node[]){x, KILN_NODE_NONE, h0}, 3, &one, &h, 1);
    ck_assert_int_eq(kiln_graph_node_rank(g, h), 2);
    for (int i = 0; i < kiln_graph_node_count(g); i++)
        ck_assert_str_ne(kiln_graph_node_op(g, (kiln_node){i}), "scan");
    double xv[B * D], hv[B * D], wv[D * D], got[B * D], want[B * D];
    values(xv, B * D, -1, 1, 1);
    values(hv, B * D, -1, 1, 2);
    ck_assert_int_eq(kiln_param_get_values(w, wv, D * D), KILN_OK);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < D; j++) {
            double a = xv[b * D + j];
            for (int k = 0; k < D; k++)
                a += hv[b * D + k] * wv[k * D + j];
            want[b * D + j] = tanh(a);
        }
    prog p;
    prog_open(&p, g, kiln_expr_sum(g, h, KILN_ALL_AXES), &h, 1, NULL, 0);
    prog_bind(&p, "x", xv);
    prog_bind(&p, "h0", hv);
    prog_run(&p, KILN_MODE_FORWARD, B, 1);
    read_node(&p, p.outs[0], got, B * D);
    assert_values(got, want, B * D, "one step");
    prog_close(&p);
    kiln_graph_destroy(g);
    kiln_brick_destroy(rnn);
}
END_TEST

/* ---- SimpleRecurrent with a mask, against plain C ------------------------------- */

/* h_t = m_t * tanh(x_t + h_{t-1} W) + (1 - m_t) * h_{t-1}, h_0 = h0. */
static void simple_ref(int T, int B, const double *x, const double *m, const double *w, const double *h0,
                       double *hs)
{
    double h[8 * D], n[8 * D];
    for (int b = 0; b < B; b++)
        memcpy(h + b * D, h0, sizeof(double) * D);
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++)
            for (int j = 0; j < D; j++) {
                double a = x[(t * B + b) * D + j];
                for (int k = 0; k < D; k++)
                    a += h[b * D + k] * w[k * D + j];
                double mt = m ? m[t * B + b] : 1;
                n[b * D + j] = mt * tanh(a) + (1 - mt) * h[b * D + j];
            }
        memcpy(h, n, sizeof(double) * (size_t)B * D);
        memcpy(hs + (size_t)t * B * D, h, sizeof(double) * (size_t)B * D);
    }
}

/* A masked row keeps its state (Blocks' formula), values as plain C; and
** the gradient of every parameter (W, initial_state) by central
** differences through the scan. */
START_TEST(mask_keeps_the_state_where_it_is_zero)
{
    enum { T = 4, B = 2 };
    kiln_graph *g = graph64();
    kiln_brick *rnn = kiln_simple_recurrent_create(NULL, D, kiln_tanh_create(NULL));
    initialize_ok(rnn, kiln_init_constant(0), (kiln_init){0});
    kiln_param *ps[4];
    int np = tree_params(rnn, ps, 0, 4);
    fill_all(ps, np, 0.6);
    kiln_node x = seq_input(g, "x", 0, D), m = mask_input(g, 0), h;
    call_ok(rnn, "apply", g, (kiln_node[]){x, m, KILN_NODE_NONE}, 3, NULL, &h, 1);
    kiln_node cost = weighted_sum(g, h, "r"), wrt[4];
    wrt_nodes(g, ps, np, wrt);
    prog p;
    prog_open(&p, g, cost, &h, 1, wrt, np);
    double xv[T * B * D], mv[T * B], rv[T * B * D], wv[D * D], h0[D], got[T * B * D], want[T * B * D];
    values(xv, T * B * D, -1, 1, 5);
    values(rv, T * B * D, -1, 1, 6);
    short_second_row(mv, T, B);
    prog_bind(&p, "x", xv);
    prog_bind(&p, "mask", mv);
    prog_bind(&p, "r", rv);
    prog_run(&p, KILN_MODE_FORWARD, B, T);
    read_node(&p, p.outs[0], got, T * B * D);
    kiln_param_get_values(kiln_brick_param_by_name(rnn, "W"), wv, D * D);
    kiln_param_get_values(kiln_brick_param_by_name(rnn, "initial_state"), h0, D);
    simple_ref(T, B, xv, mv, wv, h0, want);
    assert_values(got, want, T * B * D, "masked states");
    for (int j = 0; j < D; j++) /* row 1's last two steps repeat its step 1 */
        ck_assert(got[(3 * B + 1) * D + j] == got[(1 * B + 1) * D + j]);
    check_tree_gradient(&p, ps, np, B, T);
    prog_close(&p);
    kiln_graph_destroy(g);
    kiln_brick_destroy(rnn);
}
END_TEST

/* ---- LSTM and GatedRecurrent against Blocks' formulas in plain C ----------------- */

enum { RT = 4, RB = 2 };

/* The parameters and data of a reference run; the cost is sum(r1 * h) +
** sum(r2 * c) over the steps. */
typedef struct ref_run {
    double x[RT * RB * 4 * D], gx[RT * RB * 2 * D], mask[RT * RB], r1[RT * RB * D], r2[RT * RB * D];
    double *par[8]; /* the brick's parameters, in its order */
    int64_t n[8];
    int n_par;
} ref_run;

/* Blocks' LSTM.apply over RT steps (W_state, W_cell_to_in, _forget, _out,
** initial_state, initial_cells); returns the cost, states and cells into hs,
** cs when not NULL. */
static double lstm_ref(const ref_run *r, double *hs, double *cs)
{
    const double *W = r->par[0], *wi = r->par[1], *wf = r->par[2], *wo = r->par[3];
    double h[RB * D], c[RB * D], hn[RB * D], cn[RB * D], cost = 0;
    for (int b = 0; b < RB; b++)
        for (int j = 0; j < D; j++) {
            h[b * D + j] = r->par[4][j];
            c[b * D + j] = r->par[5][j];
        }
    for (int t = 0; t < RT; t++) {
        for (int b = 0; b < RB; b++) {
            double a[4 * D];
            for (int q = 0; q < 4 * D; q++) {
                a[q] = 0;
                for (int k = 0; k < D; k++)
                    a[q] += h[b * D + k] * W[k * 4 * D + q];
                a[q] += r->x[(t * RB + b) * 4 * D + q];
            }
            double m = r->mask[t * RB + b];
            for (int j = 0; j < D; j++) {
                double cp = c[b * D + j];
                double in = sigm(a[j] + cp * wi[j]);
                double fg = sigm(a[D + j] + cp * wf[j]);
                double cc = fg * cp + in * tanh(a[2 * D + j]);
                double og = sigm(a[3 * D + j] + cc * wo[j]);
                double hh = og * tanh(cc);
                hn[b * D + j] = m * hh + (1 - m) * h[b * D + j];
                cn[b * D + j] = m * cc + (1 - m) * cp;
            }
        }
        memcpy(h, hn, sizeof h);
        memcpy(c, cn, sizeof c);
        for (int i = 0; i < RB * D; i++) {
            cost += r->r1[t * RB * D + i] * h[i] + r->r2[t * RB * D + i] * c[i];
            if (hs)
                hs[t * RB * D + i] = h[i];
            if (cs)
                cs[t * RB * D + i] = c[i];
        }
    }
    return cost;
}

/* Blocks' GatedRecurrent.apply (state_to_state, state_to_gates,
** initial_state); the cost is sum(r1 * h). */
static double gru_ref(const ref_run *r, double *hs, double *unused)
{
    (void)unused;
    const double *U = r->par[0], *Ug = r->par[1];
    double h[RB * D], hn[RB * D], cost = 0;
    for (int b = 0; b < RB; b++)
        memcpy(h + b * D, r->par[2], sizeof(double) * D);
    for (int t = 0; t < RT; t++) {
        for (int b = 0; b < RB; b++) {
            double gt[2 * D], reset[D];
            for (int q = 0; q < 2 * D; q++) {
                double a = r->gx[(t * RB + b) * 2 * D + q];
                for (int k = 0; k < D; k++)
                    a += h[b * D + k] * Ug[k * 2 * D + q];
                gt[q] = sigm(a);
            }
            for (int k = 0; k < D; k++)
                reset[k] = h[b * D + k] * gt[D + k];
            double m = r->mask[t * RB + b];
            for (int j = 0; j < D; j++) {
                double a = r->x[(t * RB + b) * D + j];
                for (int k = 0; k < D; k++)
                    a += reset[k] * U[k * D + j];
                double z = gt[j], hp = h[b * D + j];
                double nx = tanh(a) * z + hp * (1 - z);
                hn[b * D + j] = m * nx + (1 - m) * hp;
            }
        }
        memcpy(h, hn, sizeof h);
        for (int i = 0; i < RB * D; i++) {
            cost += r->r1[t * RB * D + i] * h[i];
            if (hs)
                hs[t * RB * D + i] = h[i];
        }
    }
    return cost;
}

typedef double (*ref_fn)(const ref_run *r, double *hs, double *cs);

/* The brick's outputs (states, cells when two) against ref's, and the
** interpreter's gradient of every parameter against central differences of
** ref's cost. */
static void compare_with_reference(kiln_brick *rnn, bool lstm, ref_fn ref)
{
    kiln_graph *g = graph64();
    ref_run r = {.n_par = 0};
    kiln_param *ps[8];
    int np = tree_params(rnn, ps, 0, 8);
    fill_all(ps, np, 0.8);
    for (int k = 0; k < np; k++) {
        r.n[k] = kiln_param_size(ps[k]);
        r.par[k] = malloc(sizeof(double) * (size_t)r.n[k]);
        kiln_param_get_values(ps[k], r.par[k], r.n[k]);
    }
    r.n_par = np;
    values(r.x, KILN_ARRAY_LEN(r.x), -1, 1, 11);
    values(r.gx, KILN_ARRAY_LEN(r.gx), -1, 1, 12);
    values(r.r1, KILN_ARRAY_LEN(r.r1), -1, 1, 13);
    values(r.r2, KILN_ARRAY_LEN(r.r2), -1, 1, 14);
    short_second_row(r.mask, RT, RB);
    kiln_node m = mask_input(g, 0), outs[2], cost;
    if (lstm) {
        kiln_node x = seq_input(g, "x", 0, 4 * D);
        call_ok(rnn, "apply", g, (kiln_node[]){x, m, KILN_NODE_NONE, KILN_NODE_NONE}, 4, NULL, outs, 2);
        cost = kiln_expr_add(g, weighted_sum(g, outs[0], "r1"), weighted_sum(g, outs[1], "r2"));
    } else {
        kiln_node x = seq_input(g, "x", 0, D), gx = seq_input(g, "gx", 0, 2 * D);
        call_ok(rnn, "apply", g, (kiln_node[]){m, x, gx, KILN_NODE_NONE}, 4, NULL, outs, 1);
        cost = weighted_sum(g, outs[0], "r1");
    }
    kiln_node wrt[8];
    wrt_nodes(g, ps, np, wrt);
    prog p;
    prog_open(&p, g, cost, outs, lstm ? 2 : 1, wrt, np);
    prog_bind(&p, "x", r.x);
    prog_bind(&p, "mask", r.mask);
    prog_bind(&p, "r1", r.r1);
    if (lstm)
        prog_bind(&p, "r2", r.r2);
    else
        prog_bind(&p, "gx", r.gx);
    /* forward */
    double hs[RT * RB * D], cs[RT * RB * D], got[RT * RB * D], c;
    double want_cost = ref(&r, hs, cs);
    prog_run(&p, KILN_MODE_FORWARD, RB, RT);
    read_node(&p, p.outs[0], got, RT * RB * D);
    assert_values(got, hs, RT * RB * D, "states");
    if (lstm) {
        read_node(&p, p.outs[1], got, RT * RB * D);
        assert_values(got, cs, RT * RB * D, "cells");
    }
    prog_run(&p, KILN_MODE_GRADIENTS, RB, RT);
    read_node(&p, p.cost, &c, 1);
    assert_values(&c, &want_cost, 1, "cost");
    /* gradients */
    for (int k = 0; k < np; k++) {
        double grad[4 * D * D];
        read_node(&p, p.grads[k], grad, r.n[k]);
        double worst = 0, scale = 1e-2 * fabs(want_cost); /* as check_gradient_near */
        for (int64_t i = 0; i < r.n[k]; i++) {
            const double step = 1e-6, keep = r.par[k][i];
            r.par[k][i] = keep + step;
            double up = ref(&r, NULL, NULL);
            r.par[k][i] = keep - step;
            double down = ref(&r, NULL, NULL);
            r.par[k][i] = keep;
            double fd = (up - down) / (2 * step);
            worst = fmax(worst, fabs(fd - grad[i]));
            scale = fmax(scale, fabs(fd));
        }
        ck_assert_msg(worst <= 1e-7 * scale, "%s: gradient off by %.3g (scale %.3g) from the plain-C reference",
                      kiln_param_name(ps[k]), worst, scale);
    }
    prog_close(&p);
    kiln_graph_destroy(g);
    for (int k = 0; k < np; k++)
        free(r.par[k]);
}

START_TEST(lstm_matches_blocks_formulas)
{
    kiln_brick *lstm = kiln_lstm_create(NULL, D, NULL);
    initialize_ok(lstm, kiln_init_isotropic_gaussian(0.5, 0), (kiln_init){0});
    const char *names[] = {"W_state", "W_cell_to_in", "W_cell_to_forget", "W_cell_to_out", "initial_state",
                           "initial_cells"};
    ck_assert_int_eq(kiln_brick_param_count(lstm), 6);
    for (int i = 0; i < 6; i++)
        ck_assert_str_eq(kiln_param_name(kiln_brick_param(lstm, i)), names[i]);
    ck_assert_int_eq(kiln_param_dim(kiln_brick_param(lstm, 0), 1), 4 * D);
    compare_with_reference(lstm, true, lstm_ref);
    kiln_brick_destroy(lstm);
}
END_TEST

START_TEST(gated_recurrent_matches_blocks_formulas)
{
    kiln_brick *gru = kiln_gated_recurrent_create(NULL, D, NULL, NULL);
    initialize_ok(gru, kiln_init_isotropic_gaussian(0.5, 0), (kiln_init){0});
    const char *names[] = {"state_to_state", "state_to_gates", "initial_state"};
    ck_assert_int_eq(kiln_brick_param_count(gru), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(kiln_param_name(kiln_brick_param(gru, i)), names[i]);
    ck_assert_str_eq(kiln_brick_name(kiln_brick_child(gru, 0)), "tanh");
    ck_assert_str_eq(kiln_brick_name(kiln_brick_child(gru, 1)), "logistic");
    compare_with_reference(gru, false, gru_ref);
    kiln_brick_destroy(gru);
}
END_TEST

/* Blocks' _initialize: state_to_state, then two (dim, dim) draws (update,
** reset) put side by side: the draws a (3 dim, dim) Linear makes from the
** same seed, laid out as numpy.hstack lays them. Initial states are zeros
** with role INITIAL_STATE (a PARAMETER). */
START_TEST(gated_recurrent_draws_as_blocks_and_initial_states_are_zero_parameters)
{
    enum { d = 2 };
    kiln_brick *gru = kiln_gated_recurrent_create(NULL, d, NULL, NULL);
    initialize_ok(gru, kiln_init_isotropic_gaussian(1, 0), (kiln_init){0});
    kiln_brick *lin = kiln_linear_create(NULL, 3 * d, d);
    ck_assert_int_eq(kiln_brick_set_use_bias(lin, false), KILN_OK);
    initialize_ok(lin, kiln_init_isotropic_gaussian(1, 0), (kiln_init){0});
    double v[3 * d * d], sts[d * d], gates[2 * d * d], h0[d];
    kiln_param_get_values(kiln_brick_param(lin, 0), v, 3 * d * d);
    kiln_param_get_values(kiln_brick_param_by_name(gru, "state_to_state"), sts, d * d);
    kiln_param_get_values(kiln_brick_param_by_name(gru, "state_to_gates"), gates, 2 * d * d);
    assert_values(sts, v, d * d, "state_to_state");
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            ck_assert(gates[i * 2 * d + j] == v[d * d + i * d + j]);
            ck_assert(gates[i * 2 * d + d + j] == v[2 * d * d + i * d + j]);
        }
    kiln_param *init = kiln_brick_param_by_name(gru, "initial_state");
    kiln_param_get_values(init, h0, d);
    assert_values(h0, (const double[]){0, 0}, d, "initial_state");
    /* the role, seen through a filter of the graph */
    kiln_graph *g = graph64();
    kiln_node x = seq_input(g, "x", 0, d), gx = seq_input(g, "gx", 0, 2 * d), h;
    call_ok(gru, "apply", g, (kiln_node[]){KILN_NODE_NONE, x, gx, KILN_NODE_NONE}, 4, NULL, &h, 1);
    kiln_filter f = {.roles = KILN_ROLE_INITIAL_STATE};
    kiln_node found[4];
    ck_assert_int_eq(kiln_graph_filter(g, &h, 1, &f, found, 4), 1);
    ck_assert_str_eq(kiln_graph_node_name(g, found[0]), "initial_state");
    ck_assert(kiln_graph_has_role(g, found[0], KILN_ROLE_PARAMETER));
    /* Blocks' initial_states, asked directly: the parameter per row */
    kiln_node s0;
    ck_assert_int_eq(kiln_recurrent_initial_state(gru, "apply", g, "states", KILN_BATCH, &s0), KILN_OK);
    ck_assert_int_eq(kiln_graph_node_dim(g, s0, 0), KILN_BATCH);
    ck_assert_int_eq(kiln_graph_node_dim(g, s0, 1), d);
    ck_assert_int_eq(kiln_recurrent_initial_state(gru, "apply", g, "gate_inputs", KILN_BATCH, &s0),
                     KILN_ERR_NOT_FOUND);
    ck_assert_str_eq(kiln_brick_errmsg(gru), "/gatedrecurrent: apply has no state 'gate_inputs'");
    ck_assert(!kiln_node_ok(s0));
    kiln_graph_destroy(g);
    kiln_brick_destroy(gru);
    kiln_brick_destroy(lin);
}
END_TEST

/* ---- gradients through the scan, every brick ----------------------------------------- */

/* The gradient of sum(r_k * output_k) by every parameter of b's tree,
** central differences through the interpreter; in: the inputs of the call
** by position ("x", "gx", "mask", "x#1" made here as named). */
typedef struct grad_case {
    kiln_brick *b;
    const char *app;
    kiln_recurrent_options o;
    const char *in_names[12]; /* per input: "" omitted, else an input of this name */
    int64_t in_dims[12];      /* last dim (0: the mask) */
    int n_in, n_out;
} grad_case;

static void gradient_case(grad_case *c, int64_t T)
{
    enum { B = 2 };
    kiln_graph *g = graph64();
    kiln_param *ps[32];
    int np = tree_params(c->b, ps, 0, 32);
    fill_all(ps, np, 0.7);
    kiln_node in[12], outs[8], cost = KILN_NODE_NONE;
    for (int i = 0; i < c->n_in; i++)
        in[i] = !*c->in_names[i] ? KILN_NODE_NONE
                : c->in_dims[i] ? seq_input(g, c->in_names[i], T, c->in_dims[i])
                                : mask_input(g, T);
    call_ok(c->b, c->app, g, in, c->n_in, &c->o, outs, c->n_out);
    for (int k = 0; k < c->n_out; k++) {
        char rname[8];
        snprintf(rname, sizeof rname, "r%d", k);
        kiln_node term = weighted_sum(g, outs[k], rname);
        cost = k ? kiln_expr_add(g, cost, term) : term;
    }
    kiln_node wrt[32];
    wrt_nodes(g, ps, np, wrt);
    prog p;
    prog_open(&p, g, cost, NULL, 0, wrt, np);
    double data[12][256];
    int64_t tt = T > 0 ? T : 4;
    for (int i = 0; i < c->n_in; i++)
        if (*c->in_names[i]) {
            int64_t n = tt * B * (c->in_dims[i] ? c->in_dims[i] : 1);
            ck_assert_int_le(n, 256);
            if (c->in_dims[i])
                values(data[i], n, -1, 1, 20 + (unsigned)i);
            else
                short_second_row(data[i], (int)tt, B);
            prog_bind(&p, c->in_names[i], data[i]);
        }
    double r[8][256];
    for (int k = 0; k < c->n_out; k++) {
        char rname[8];
        snprintf(rname, sizeof rname, "r%d", k);
        values(r[k], 256, -1, 1, 40 + (unsigned)k);
        prog_bind(&p, rname, r[k]);
    }
    check_tree_gradient(&p, ps, np, B, tt);
    prog_close(&p);
    /* and compiled: the same gradients by central differences of the C program */
    gc_input gin[20];
    int n_gin = 0;
    for (int i = 0; i < c->n_in; i++)
        if (*c->in_names[i])
            gin[n_gin++] = (gc_input){c->in_names[i], data[i]};
    static const char *const rnames[8] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"};
    for (int k = 0; k < c->n_out; k++)
        gin[n_gin++] = (gc_input){rnames[k], r[k]};
    char why[512];
    int64_t sizes[KILN_MAX_SYMBOLS] = {B, T > 0 ? 0 : tt};
    double err = gc_check_sizes(g, cost, wrt, np, gin, n_gin, sizes, 1e-6, why, sizeof why);
    ck_assert_msg(err >= 0 && err < 1e-6, "%s, compiled: error %g: %s", kiln_brick_path(c->b), err, why);
    kiln_graph_destroy(g);
}

START_TEST(lstm_gradient_reversed_with_mask)
{
    kiln_brick *b = kiln_lstm_create(NULL, D, NULL);
    initialize_ok(b, kiln_init_constant(0), (kiln_init){0});
    grad_case c = {b, "apply", {.reverse = true}, {"x", "mask", "", ""}, {4 * D, 0}, 4, 2};
    gradient_case(&c, 0);
    kiln_brick_destroy(b);
}
END_TEST

START_TEST(gated_recurrent_gradient_reversed_with_mask)
{
    kiln_brick *b = kiln_gated_recurrent_create(NULL, D, NULL, NULL);
    initialize_ok(b, kiln_init_constant(0), (kiln_init){0});
    grad_case c = {b, "apply", {.reverse = true}, {"mask", "x", "gx", ""}, {0, D, 2 * D}, 4, 1};
    gradient_case(&c, 0);
    kiln_brick_destroy(b);
}
END_TEST

/* return_initial_states (a constant T): the initial state's own row gets
** its gradient too. */
START_TEST(simple_recurrent_gradient_with_initial_states_returned)
{
    kiln_brick *b = kiln_simple_recurrent_create(NULL, D, kiln_tanh_create(NULL));
    initialize_ok(b, kiln_init_constant(0), (kiln_init){0});
    grad_case c = {b, "apply", {.return_initial_states = true}, {"x", "mask", ""}, {D, 0}, 3, 1};
    gradient_case(&c, 3);
    kiln_brick_destroy(b);
}
END_TEST

/* ---- Bidirectional -------------------------------------------------------------------- */

/* forward and backward copies named as Blocks names them; the output is the
** forward states and the backward ones (run from the end, put back in time
** order) side by side: checked against two plain-C runs; then the
** gradient of every parameter of both copies. */
START_TEST(bidirectional_joins_forward_and_backward_in_time_order)
{
    enum { T = 4, B = 2 };
    kiln_brick *bi = kiln_bidirectional_create(NULL, kiln_simple_recurrent_create(NULL, D, kiln_tanh_create(NULL)));
    ck_assert_ptr_nonnull(bi);
    ck_assert_int_eq(kiln_brick_child_count(bi), 2);
    ck_assert_str_eq(kiln_brick_path(kiln_brick_child(bi, 0)), "/bidirectional/forward");
    ck_assert_str_eq(kiln_brick_path(kiln_brick_child(bi, 1)), "/bidirectional/backward");
    ck_assert_int_eq(kiln_brick_input_count(bi, "apply"), 3);
    ck_assert_str_eq(kiln_brick_input_name(bi, "apply", 1), "mask");
    ck_assert_str_eq(kiln_brick_output_name(bi, "apply", 0), "states");
    initialize_ok(bi, kiln_init_constant(0), (kiln_init){0});
    kiln_param *ps[8];
    int np = tree_params(bi, ps, 0, 8);
    ck_assert_int_eq(np, 4);
    fill_all(ps, np, 0.7);
    kiln_graph *g = graph64();
    kiln_node x = seq_input(g, "x", 0, D), m = mask_input(g, 0), h;
    call_ok(bi, "apply", g, (kiln_node[]){x, m, KILN_NODE_NONE}, 3, NULL, &h, 1);
    ck_assert_int_eq(kiln_graph_node_dim(g, h, 2), 2 * D);
    /* by hand: the backward copy sees the sequence reversed */
    double xv[T * B * D], mv[T * B], xr[T * B * D], mr[T * B], w[2][D * D], h0[2][D];
    double fw[T * B * D], bw[T * B * D], want[T * B * 2 * D], got[T * B * 2 * D];
    values(xv, T * B * D, -1, 1, 7);
    short_second_row(mv, T, B);
    for (int t = 0; t < T; t++) {
        memcpy(xr + t * B * D, xv + (T - 1 - t) * B * D, sizeof(double) * B * D);
        memcpy(mr + t * B, mv + (T - 1 - t) * B, sizeof(double) * B);
    }
    for (int c = 0; c < 2; c++) {
        kiln_param_get_values(kiln_brick_param_by_name(kiln_brick_child(bi, c), "W"), w[c], D * D);
        kiln_param_get_values(kiln_brick_param_by_name(kiln_brick_child(bi, c), "initial_state"), h0[c], D);
    }
    simple_ref(T, B, xv, mv, w[0], h0[0], fw);
    simple_ref(T, B, xr, mr, w[1], h0[1], bw);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            for (int j = 0; j < D; j++) {
                want[(t * B + b) * 2 * D + j] = fw[(t * B + b) * D + j];
                want[(t * B + b) * 2 * D + D + j] = bw[((T - 1 - t) * B + b) * D + j];
            }
    kiln_node cost = weighted_sum(g, h, "r"), wrt[4];
    wrt_nodes(g, ps, np, wrt);
    prog p;
    prog_open(&p, g, cost, &h, 1, wrt, np);
    double rv[T * B * 2 * D];
    values(rv, T * B * 2 * D, -1, 1, 9);
    prog_bind(&p, "x", xv);
    prog_bind(&p, "mask", mv);
    prog_bind(&p, "r", rv);
    prog_run(&p, KILN_MODE_FORWARD, B, T);
    read_node(&p, p.outs[0], got, T * B * 2 * D);
    assert_values(got, want, T * B * 2 * D, "bidirectional");
    check_tree_gradient(&p, ps, np, B, T);
    prog_close(&p);
    kiln_graph_destroy(g);
    kiln_brick_destroy(bi);
}
END_TEST

START_TEST(bidirectional_lstm_gradient)
{
    kiln_brick *bi = kiln_bidirectional_create("bi", kiln_lstm_create(NULL, D, NULL));
    ck_assert_ptr_nonnull(bi);
    initialize_ok(bi, kiln_init_constant(0), (kiln_init){0});
    ck_assert_str_eq(kiln_brick_output_name(bi, "apply", 1), "cells");
    grad_case c = {bi, "apply", {0}, {"x", "mask", "", ""}, {4 * D, 0}, 4, 2};
    gradient_case(&c, 0);
    kiln_brick_destroy(bi);
}
END_TEST

/* ---- RecurrentStack ------------------------------------------------------------------- */

/* SimpleRecurrent under an LSTM under a GatedRecurrent. */
static kiln_brick *three_layers(bool skip)
{
    kiln_brick *layers[] = {kiln_simple_recurrent_create(NULL, D, kiln_tanh_create(NULL)),
                            kiln_lstm_create(NULL, 2, NULL), kiln_gated_recurrent_create(NULL, D, NULL, NULL)};
    kiln_brick *st = kiln_recurrent_stack_create(NULL, layers, 3, NULL, NULL, skip);
    ck_assert_ptr_nonnull(st);
    initialize_ok(st, kiln_init_constant(0), kiln_init_constant(0));
    return st;
}

/* Blocks' names: layers "<name>#<level>", forks "fork_<level>", inputs and
** outputs of the upper layers suffixed, the mask last among the sequences,
** shared. */
START_TEST(recurrent_stack_names_as_blocks)
{
    kiln_brick *st = three_layers(true);
    const char *children[] = {"simplerecurrent#0", "lstm#1", "gatedrecurrent#2", "fork_1", "fork_2"};
    ck_assert_int_eq(kiln_brick_child_count(st), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(kiln_brick_name(kiln_brick_child(st, i)), children[i]);
    const char *inputs[] = {"inputs", "inputs#1", "inputs#2", "gate_inputs#2", "mask", "states", "states#1",
                            "cells#1", "states#2"};
    ck_assert_int_eq(kiln_brick_input_count(st, "apply"), 9);
    for (int i = 0; i < 9; i++)
        ck_assert_str_eq(kiln_brick_input_name(st, "apply", i), inputs[i]);
    ck_assert(kiln_brick_input_optional(st, "apply", 1));
    ck_assert(!kiln_brick_input_optional(st, "apply", 0));
    const char *outputs[] = {"states", "states#1", "cells#1", "states#2"};
    ck_assert_int_eq(kiln_brick_output_count(st, "low_memory_apply"), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(kiln_brick_output_name(st, "low_memory_apply", i), outputs[i]);
    /* fork_2 feeds the GatedRecurrent's two sequences from the LSTM's states */
    kiln_brick *fork = kiln_brick_child(st, 4);
    ck_assert_str_eq(kiln_brick_output_name(fork, "apply", 1), "gate_inputs");
    int64_t dim;
    ck_assert_int_eq(kiln_brick_get_dim(fork, "input_dim", &dim), KILN_OK);
    ck_assert_int_eq(dim, 2);
    ck_assert_int_eq(kiln_brick_get_dim(fork, "output_dims.gate_inputs", &dim), KILN_OK);
    ck_assert_int_eq(dim, 2 * D);
    kiln_brick *fork1 = kiln_brick_child(st, 3);
    ck_assert_int_eq(kiln_brick_get_dim(fork1, "output_dims.inputs", &dim), KILN_OK);
    ck_assert_int_eq(dim, 4 * 2);
    /* skip connections: the internal forks have no bias */
    ck_assert_int_eq(kiln_brick_param_count(kiln_brick_child(fork1, 0)), 1);
    kiln_brick_destroy(st);
}
END_TEST

/* apply (a scan per layer, forks on whole sequences) and low_memory_apply
** (one scan, a step of every layer) agree, also returning the initial
** states (T+1 rows; the forks read the T steps); without skip
** connections only the bottom inputs are given and the forks have biases. */
START_TEST(recurrent_stack_apply_and_low_memory_apply_agree)
{
    enum { T = 4, B = 2 };
    kiln_brick *st = three_layers(false);
    ck_assert_int_eq(kiln_brick_input_count(st, "apply"), 6); /* inputs, mask, 4 states */
    ck_assert_int_eq(kiln_brick_param_count(kiln_brick_child(kiln_brick_child(st, 3), 0)), 2);
    kiln_param *ps[32];
    int np = tree_params(st, ps, 0, 32);
    fill_all(ps, np, 0.7);
    for (int ris = 0; ris < 2; ris++) {
        kiln_recurrent_options o = {.return_initial_states = ris};
        kiln_graph *g = graph64();
        kiln_node x = seq_input(g, "x", ris ? T : 0, D), m = mask_input(g, ris ? T : 0), a[4], l[4];
        kiln_node in[6] = {x, m, KILN_NODE_NONE, KILN_NODE_NONE, KILN_NODE_NONE, KILN_NODE_NONE};
        call_ok(st, "apply", g, in, 6, &o, a, 4);
        call_ok(st, "low_memory_apply", g, in, 6, &o, l, 4);
        ck_assert_int_eq(kiln_graph_node_dim(g, a[3], 0), ris ? T + 1 : KILN_TIME);
        kiln_node both[8] = {a[0], a[1], a[2], a[3], l[0], l[1], l[2], l[3]};
        prog p;
        prog_open(&p, g, kiln_expr_sum(g, a[3], KILN_ALL_AXES), both, 8, NULL, 0);
        double xv[T * B * D], mv[T * B];
        values(xv, T * B * D, -1, 1, 3);
        short_second_row(mv, T, B);
        prog_bind(&p, "x", xv);
        prog_bind(&p, "mask", mv);
        prog_run(&p, KILN_MODE_FORWARD, B, T);
        for (int k = 0; k < 4; k++) {
            double va[(T + 1) * B * D], vl[(T + 1) * B * D];
            int64_t n = kiln_interp_count(p.it, p.outs[k]);
            read_node(&p, p.outs[k], va, n);
            read_node(&p, p.outs[4 + k], vl, n);
            assert_values(vl, va, n, kiln_brick_output_name(st, "apply", k));
        }
        prog_close(&p);
        kiln_graph_destroy(g);
    }
    kiln_brick_destroy(st);
}
END_TEST

/* Two tanh SimpleRecurrent layers with skip connections, against plain C:
** layer 1 runs on fork(layer 0's states) + inputs#1, the fork a Linear
** without bias; the mask is shared. */
START_TEST(recurrent_stack_matches_its_layers_by_hand)
{
    enum { T = 4, B = 2 };
    kiln_brick *layers[] = {kiln_simple_recurrent_create(NULL, D, kiln_tanh_create(NULL)),
                            kiln_simple_recurrent_create(NULL, D, kiln_tanh_create(NULL))};
    kiln_brick *st = kiln_recurrent_stack_create(NULL, layers, 2, NULL, NULL, true);
    ck_assert_ptr_nonnull(st);
    initialize_ok(st, kiln_init_constant(0), kiln_init_constant(0));
    kiln_param *ps[8];
    int np = tree_params(st, ps, 0, 8);
    ck_assert_int_eq(np, 5); /* W, initial_state twice, the fork's W */
    fill_all(ps, np, 0.7);
    kiln_graph *g = graph64();
    kiln_node x = seq_input(g, "x", 0, D), x1 = seq_input(g, "x1", 0, D), m = mask_input(g, 0), h[2];
    call_ok(st, "apply", g, (kiln_node[]){x, x1, m, KILN_NODE_NONE, KILN_NODE_NONE}, 5, NULL, h, 2);
    double xv[T * B * D], x1v[T * B * D], mv[T * B], w[3][D * D], h0[2][D];
    double s0[T * B * D], f[T * B * D], s1[T * B * D], got[T * B * D];
    values(xv, T * B * D, -1, 1, 31);
    values(x1v, T * B * D, -1, 1, 32);
    short_second_row(mv, T, B);
    for (int l = 0; l < 2; l++) {
        kiln_param_get_values(kiln_brick_param_by_name(kiln_brick_child(st, l), "W"), w[l], D * D);
        kiln_param_get_values(kiln_brick_param_by_name(kiln_brick_child(st, l), "initial_state"), h0[l], D);
    }
    kiln_param_get_values(kiln_brick_param(kiln_brick_child(kiln_brick_child(st, 2), 0), 0), w[2], D * D);
    simple_ref(T, B, xv, mv, w[0], h0[0], s0);
    for (int r = 0; r < T * B; r++)
        for (int j = 0; j < D; j++) {
            f[r * D + j] = x1v[r * D + j];
            for (int k = 0; k < D; k++)
                f[r * D + j] += s0[r * D + k] * w[2][k * D + j];
        }
    simple_ref(T, B, f, mv, w[1], h0[1], s1);
    prog p;
    prog_open(&p, g, kiln_expr_sum(g, h[1], KILN_ALL_AXES), h, 2, NULL, 0);
    prog_bind(&p, "x", xv);
    prog_bind(&p, "x1", x1v);
    prog_bind(&p, "mask", mv);
    prog_run(&p, KILN_MODE_FORWARD, B, T);
    read_node(&p, p.outs[0], got, T * B * D);
    assert_values(got, s0, T * B * D, "layer 0");
    read_node(&p, p.outs[1], got, T * B * D);
    assert_values(got, s1, T * B * D, "layer 1");
    prog_close(&p);
    kiln_graph_destroy(g);
    kiln_brick_destroy(st);
}
END_TEST

START_TEST(recurrent_stack_gradient_with_skip_connections)
{
    kiln_brick *st = three_layers(true);
    /* inputs, inputs#1, inputs#2, gate_inputs#2, mask; states omitted */
    grad_case c = {st, "apply", {0}, {"x", "x1", "", "gx2", "mask", "", "", "", ""}, {D, 4 * 2, 0, 2 * D, 0}, 9, 4};
    gradient_case(&c, 0);
    kiln_brick_destroy(st);
}
END_TEST

START_TEST(recurrent_stack_low_memory_gradient_reversed)
{
    kiln_brick *st = three_layers(false);
    grad_case c = {st, "low_memory_apply", {.reverse = true}, {"x", "mask", "", "", "", ""}, {D, 0}, 6, 4};
    gradient_case(&c, 0);
    kiln_brick_destroy(st);
}
END_TEST

/* ---- LookupTable ------------------------------------------------------------------------ */

START_TEST(lookup_table_gathers_rows_of_w)
{
    enum { V = 5, E = 2, N = 4 };
    kiln_brick *lt = kiln_lookup_table_create(NULL, V, E);
    ck_assert_ptr_nonnull(lt);
    initialize_ok(lt, kiln_init_constant(0), (kiln_init){0});
    kiln_param *w = kiln_brick_param(lt, 0);
    ck_assert_str_eq(kiln_param_name(w), "W");
    ck_assert_int_eq(kiln_param_dim(w, 0), V);
    fill(w, V * E, 1, 4);
    kiln_graph *g = graph64();
    kiln_node idx = kiln_graph_input(g, "idx", KILN_DTYPE_I32, 2, (int64_t[]){KILN_TIME, KILN_BATCH}), y;
    ck_assert_int_eq(kiln_brick_apply(lt, g, idx, &y), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, y), "lookuptable_apply_output");
    ck_assert_int_eq(kiln_graph_node_rank(g, y), 3);
    kiln_node wrt = kiln_graph_param_node(g, w);
    prog p;
    prog_open(&p, g, weighted_sum(g, y, "r"), &y, 1, &wrt, 1);
    int32_t iv[N] = {3, 0, 3, 4};
    double rv[N * E], wv[V * E], got[N * E], want[N * E];
    values(rv, N * E, -1, 1, 8);
    prog_bind(&p, "idx", iv);
    prog_bind(&p, "r", rv);
    prog_run(&p, KILN_MODE_FORWARD, 2, 2);
    read_node(&p, p.outs[0], got, N * E);
    kiln_param_get_values(w, wv, V * E);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < E; j++)
            want[i * E + j] = wv[iv[i] * E + j];
    assert_values(got, want, N * E, "rows");
    check_gradient(&p, 0, "W", 2, 2);
    prog_close(&p);
    /* float indices are refused */
    kiln_node f = seq_input(g, "f", 0, 1);
    ck_assert_int_eq(kiln_brick_apply(lt, g, f, &y), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_brick_errmsg(lt), "/lookuptable: indices is float64 (T, B, 1), expected int32 indices");
    kiln_graph_destroy(g);
    kiln_brick_destroy(lt);
}
END_TEST

/* ---- bad input ----------------------------------------------------------------------------- */

/* Faulty(dim): a recurrent class whose step (data: mode) ignores its state
** (0), gives a state of another shape (1), or gives no node (2). */
typedef struct faulty_data {
    int mode;
} faulty_data;

static enum kiln_status faulty_step(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const faulty_data *d = kiln_brick_data(b);
    if (d->mode == 0)
        out[0] = kiln_expr_tanh(g, in[0]);
    else if (d->mode == 1)
        out[0] = kiln_expr_sum(g, kiln_expr_add(g, in[0], in[1]), 1);
    return KILN_OK;
}

static const kiln_brick_input FAULTY_INPUTS[] = {
    {"inputs", KILN_INPUT_SEQUENCE | KILN_INPUT_FLOAT, 2, "(batch, dim)", "dim"},
    {"states", KILN_INPUT_STATE | KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 2, "(batch, dim)", "dim"},
    {NULL},
};
static const char *const FAULTY_OUTPUTS[] = {"states", NULL};
static const kiln_brick_application FAULTY_APPS[] = {
    {"apply", FAULTY_INPUTS, FAULTY_OUTPUTS, faulty_step, KILN_APPLICATION_RECURRENT},
    {NULL},
};
static const kiln_brick_class FAULTY = {
    .class_name = "Faulty",
    .default_name = "faulty",
    .data_size = sizeof(faulty_data),
    .dims = FEEDBACK_DIMS,
    .applications = FAULTY_APPS,
};

/* The call fails with status st, the brick's message is want, and the
** graph's says the same. */
static void assert_refused(kiln_brick *b, const char *app, kiln_graph *g, const kiln_node *in, int n_in,
                           const kiln_recurrent_options *o, int n_out, enum kiln_status st, const char *want)
{
    kiln_node out[8];
    enum kiln_status got = kiln_recurrent_call(b, app, g, in, n_in, o, out, n_out);
    ck_assert_msg(got == st, "%s: status %d, expected %d (%s): %s", kiln_brick_path(b), (int)got, (int)st, want,
                  kiln_brick_errmsg(b));
    ck_assert_str_eq(kiln_brick_errmsg(b), want);
    ck_assert_str_eq(kiln_graph_errmsg(g), want);
    for (int i = 0; i < n_out; i++)
        ck_assert(!kiln_node_ok(out[i]));
    kiln_graph_clear_error(g);
}

START_TEST(bad_recurrent_calls_name_the_brick_and_what_is_wrong)
{
    kiln_graph *g = graph64();
    kiln_brick *rnn = accumulator();
    kiln_node x = seq_input(g, "x", 0, D), none = KILN_NODE_NONE;
    kiln_node m5 = kiln_graph_input(g, "m5", KILN_DTYPE_F64, 2, (int64_t[]){KILN_TIME, 5});
    kiln_node mb = kiln_graph_input(g, "mb", KILN_DTYPE_F64, 1, (int64_t[]){KILN_BATCH});
    kiln_node h4 = kiln_graph_input(g, "h4", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, 4});
    kiln_node h5 = kiln_graph_input(g, "h5", KILN_DTYPE_F64, 2, (int64_t[]){5, D});
    kiln_node x7 = seq_input(g, "x7", 0, 7), x1 = seq_input(g, "x1", 0, 1);
    /* masks of the wrong shape */
    assert_refused(rnn, "apply", g, (kiln_node[]){x, m5, none}, 3, NULL, 1, KILN_ERR_SHAPE,
                   "/simplerecurrent: mask is float64 (T, 5), expected (T, B): time and batch as inputs");
    assert_refused(rnn, "apply", g, (kiln_node[]){x, mb, none}, 3, NULL, 1, KILN_ERR_SHAPE,
                   "/simplerecurrent: mask is float64 (B,), expected (T, B): time and batch as inputs");
    /* states of another dim, or another batch */
    assert_refused(rnn, "apply", g, (kiln_node[]){x, none, h4}, 3, NULL, 1, KILN_ERR_SHAPE,
                   "/simplerecurrent: states has 4 features, expected 3");
    assert_refused(rnn, "apply", g, (kiln_node[]){x, none, h5}, 3, NULL, 1, KILN_ERR_SHAPE,
                   "/simplerecurrent: states is float64 (5, 3) but inputs is float64 (T, B, 3): a state's first "
                   "axis is the batch");
    /* inputs of one step given to the whole sequence's call */
    kiln_node row = kiln_graph_input(g, "row", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, D});
    kiln_node row2 = kiln_graph_input(g, "row2", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, D});
    assert_refused(rnn, "apply", g, (kiln_node[]){row, none, none}, 3, NULL, 1, KILN_ERR_SHAPE,
                   "/simplerecurrent: inputs is float64 (B, 3), expected rank 3 (time, batch, dim)");
    /* options that do not go together, or on what is not recurrent */
    kiln_recurrent_options bad = {.one_step = true, .reverse = true};
    assert_refused(rnn, "apply", g, (kiln_node[]){row, none, row}, 3, &bad, 1, KILN_ERR_ARG,
                   "/simplerecurrent: apply: one step (iterate=False) takes no reverse or return_initial_states");
    kiln_brick *lin = kiln_linear_create(NULL, D, D);
    kiln_recurrent_options rev = {.reverse = true};
    assert_refused(lin, "apply", g, &row, 1, &rev, 1, KILN_ERR_ARG,
                   "/linear: apply of Linear is not recurrent: it takes no iterate, reverse or return_initial_states");
    /* T+1 rows of a symbolic T */
    kiln_recurrent_options ris = {.return_initial_states = true};
    assert_refused(rnn, "apply", g, (kiln_node[]){x, none, none}, 3, &ris, 1, KILN_ERR_UNSUPPORTED,
                   "/simplerecurrent: apply: return_initial_states over T steps: T+1 rows of a symbolic T are not a "
                   "dim kiln can express yet; give the sequences a constant number of steps");
    /* an LSTM's inputs are 4 * dim wide; a GatedRecurrent's sequences share T */
    kiln_brick *lstm = kiln_lstm_create(NULL, D, NULL);
    initialize_ok(lstm, kiln_init_constant(0), (kiln_init){0});
    assert_refused(lstm, "apply", g, (kiln_node[]){x7, none, none, none}, 4, NULL, 2, KILN_ERR_SHAPE,
                   "/lstm: inputs has 7 features, expected 12");
    kiln_brick *gru = kiln_gated_recurrent_create(NULL, 1, NULL, NULL);
    initialize_ok(gru, kiln_init_constant(0), (kiln_init){0});
    kiln_node gx = kiln_graph_input(g, "gx", KILN_DTYPE_F64, 3, (int64_t[]){6, KILN_BATCH, 2});
    assert_refused(gru, "apply", g, (kiln_node[]){none, x1, gx, none}, 4, NULL, 1, KILN_ERR_SHAPE,
                   "/gatedrecurrent: gate_inputs is float64 (6, B, 2) but inputs is float64 (T, B, 1): sequences "
                   "share their first two axes (time, batch)");
    /* steps that are wrong: an unread state, a state changing shape, no node */
    kiln_brick *faulty = kiln_brick_create(&FAULTY, NULL);
    ck_assert_int_eq(kiln_brick_set_dim(faulty, "dim", D), KILN_OK);
    faulty_data *fd = kiln_brick_data(faulty);
    const char *says[] = {
        "/faulty: apply: the step never reads state states: no output depends on it (a state feeds the next step)",
        "/faulty: apply: the step's next states is float64 (B,) but the state is float64 (B, 3)",
        "/faulty: apply: the step gave no node for output states",
    };
    for (int mode = 0; mode < 3; mode++) {
        fd->mode = mode;
        assert_refused(faulty, "apply", g, (kiln_node[]){x, none}, 2, NULL, 1,
                       mode == 1 ? KILN_ERR_SHAPE : KILN_ERR_ARG, says[mode]);
        kiln_recurrent_options one = {.one_step = true}; /* the same checks for one step */
        assert_refused(faulty, "apply", g, (kiln_node[]){row, row2}, 2, &one, 1,
                       mode == 1 ? KILN_ERR_SHAPE : KILN_ERR_ARG, says[mode]);
    }
    /* a stack: reverse refused; a layer's error names the layer */
    kiln_brick *st = three_layers(false);
    kiln_node in6[6] = {x, none, none, none, none, none};
    assert_refused(st, "apply", g, in6, 6, &rev, 4, KILN_ERR_UNSUPPORTED,
                   "/recurrentstack: apply does not run in reverse (nor does Blocks'): use low_memory_apply");
    in6[4] = h4; /* cells#1 of a dim 2 LSTM */
    assert_refused(st, "apply", g, in6, 6, NULL, 4, KILN_ERR_SHAPE,
                   "/recurrentstack/lstm#1: cells has 4 features, expected 2");
    kiln_graph_destroy(g);
    kiln_brick_destroy(rnn);
    kiln_brick_destroy(lin);
    kiln_brick_destroy(lstm);
    kiln_brick_destroy(gru);
    kiln_brick_destroy(faulty);
    kiln_brick_destroy(st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recurrent");
    TCase *tc = tcase_create("recurrent");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, blocks_example_14_accumulates_the_input);
    tcase_add_test(tc, blocks_example_15_doubler_then_rnn);
    tcase_add_test(tc, blocks_example_16_given_initial_state);
    tcase_add_test(tc, blocks_example_17_feedback_rnn);
    tcase_add_test(tc, reverse_and_return_initial_states);
    tcase_add_test(tc, one_step_builds_the_step_on_the_graph);
    tcase_add_test(tc, mask_keeps_the_state_where_it_is_zero);
    tcase_add_test(tc, lstm_matches_blocks_formulas);
    tcase_add_test(tc, gated_recurrent_matches_blocks_formulas);
    tcase_add_test(tc, gated_recurrent_draws_as_blocks_and_initial_states_are_zero_parameters);
    tcase_add_test(tc, lstm_gradient_reversed_with_mask);
    tcase_add_test(tc, gated_recurrent_gradient_reversed_with_mask);
    tcase_add_test(tc, simple_recurrent_gradient_with_initial_states_returned);
    tcase_add_test(tc, bidirectional_joins_forward_and_backward_in_time_order);
    tcase_add_test(tc, bidirectional_lstm_gradient);
    tcase_add_test(tc, recurrent_stack_names_as_blocks);
    tcase_add_test(tc, recurrent_stack_apply_and_low_memory_apply_agree);
    tcase_add_test(tc, recurrent_stack_matches_its_layers_by_hand);
    tcase_add_test(tc, recurrent_stack_gradient_with_skip_connections);
    tcase_add_test(tc, recurrent_stack_low_memory_gradient_reversed);
    tcase_add_test(tc, lookup_table_gathers_rows_of_w);
    tcase_add_test(tc, bad_recurrent_calls_name_the_brick_and_what_is_wrong);
    suite_add_tcase(s, tc);
    return kiln_test_run(s);
}
