/* test_brick_class.c: a brick class written here through the public API
** only (kiln/kiln.h), as a Blocks user subclasses Brick and decorates a
** method with @application, then applied, initialized, checked against
** finite differences, compiled and trained one step.
**
** Pair(input_dim, output_dim): parameters W (input_dim, output_dim, WEIGHT)
** and c (output_dim, BIAS); apply(x, y, shift=None) -> (u, v) with
**   u = x . W + c (+ shift when given),   v = y . W - c.
** Its data counts the calls of its application function. */
#include <check.h>
#include <math.h>
#include <string.h>

#include <kiln/kiln.h>

#include "gradcheck.h"
#include "testutil.h"

#define IN 4
#define OUT 3
#define ROWS 2

/* ---- the class -------------------------------------------------------------- */

typedef struct pair_data {
    int calls;
} pair_data;

static enum kiln_status pair_allocate(kiln_brick *b)
{
    int64_t in = 0, out = 0;
    enum kiln_status s = kiln_brick_require_dim(b, "input_dim", &in);
    if (s == KILN_OK)
        s = kiln_brick_require_dim(b, "output_dim", &out);
    if (s == KILN_OK)
        s = kiln_brick_add_param(b, "W", KILN_ROLE_WEIGHT, 2, (int64_t[]){in, out}, NULL);
    if (s == KILN_OK)
        s = kiln_brick_add_param(b, "c", KILN_ROLE_BIAS, 1, &out, NULL);
    return s;
}

/* The inputs were checked by the call; a failed builder needs no message. */
static enum kiln_status pair_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    pair_data *d = kiln_brick_data(b);
    d->calls++;
    kiln_node w = kiln_graph_param(g, kiln_brick_param_by_name(b, "W"));
    kiln_node c = kiln_graph_param(g, kiln_brick_param_by_name(b, "c"));
    kiln_node u = kiln_expr_add(g, kiln_expr_matmul(g, in[0], w), c);
    if (kiln_node_ok(in[2]))
        u = kiln_expr_add(g, u, in[2]);
    out[0] = u;
    out[1] = kiln_expr_sub(g, kiln_expr_matmul(g, in[1], w), c);
    return KILN_OK;
}

static const char *const PAIR_DIMS[] = {"input_dim", "output_dim", NULL};
static const kiln_brick_input PAIR_INPUTS[] = {
    {"x", KILN_INPUT_FLOAT, 2, "(batch, input_dim)", "input_dim"},
    {"y", KILN_INPUT_FLOAT, 2, "(batch, input_dim)", "input_dim"},
    {"shift", KILN_INPUT_OPTIONAL | KILN_INPUT_FLOAT, 2, "(batch, output_dim)", "output_dim"},
    {NULL},
};
static const char *const PAIR_OUTPUTS[] = {"u", "v", NULL};
static const kiln_brick_application PAIR_APPS[] = {
    {"apply", PAIR_INPUTS, PAIR_OUTPUTS, pair_apply, 0},
    {NULL},
};
static const kiln_brick_class PAIR = {
    .class_name = "Pair",
    .default_name = "pair",
    .flags = KILN_BRICK_INITIALIZABLE,
    .data_size = sizeof(pair_data),
    .dims = PAIR_DIMS,
    .applications = PAIR_APPS,
    .allocate = pair_allocate,
};

/* Gain(dim): an Activation with one parameter, gain (dim), neither WEIGHT
** nor BIAS, that the class initializes itself (ones): apply(x) = x * gain.
** RowSum claims to be an Activation but sums rows: the call refuses it. */
static enum kiln_status gain_allocate(kiln_brick *b)
{
    int64_t dim = 0;
    enum kiln_status s = kiln_brick_require_dim(b, "dim", &dim);
    return s == KILN_OK ? kiln_brick_add_param(b, "gain", 0, 1, &dim, NULL) : s;
}

static enum kiln_status gain_initialize(kiln_brick *b)
{
    return kiln_brick_fill_param(b, kiln_brick_param_by_name(b, "gain"), kiln_init_constant(1));
}

static enum kiln_status gain_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    out[0] = kiln_expr_mul(g, in[0], kiln_graph_param(g, kiln_brick_param(b, 0)));
    return KILN_OK;
}

static enum kiln_status row_sum_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    out[0] = kiln_expr_sum(g, in[0], 1);
    return KILN_OK;
}

static const char *const GAIN_DIMS[] = {"dim|input_dim|output_dim", NULL};
static const kiln_brick_input ONE_INPUT[] = {{"input", KILN_INPUT_FLOAT, 0, NULL, "dim"}, {NULL}};
static const char *const ONE_OUTPUT[] = {"output", NULL};
static const kiln_brick_application GAIN_APPS[] = {{"apply", ONE_INPUT, ONE_OUTPUT, gain_apply, 0}, {NULL}};
static const kiln_brick_class GAIN = {
    .class_name = "Gain",
    .default_name = "gain",
    .flags = KILN_BRICK_ACTIVATION,
    .dims = GAIN_DIMS,
    .applications = GAIN_APPS,
    .allocate = gain_allocate,
    .initialize = gain_initialize,
};
static const kiln_brick_application ROW_SUM_APPS[] = {{"apply", ONE_INPUT, ONE_OUTPUT, row_sum_apply, 0}, {NULL}};
static const kiln_brick_class ROW_SUM = {
    .class_name = "RowSum",
    .default_name = "rowsum",
    .flags = KILN_BRICK_ACTIVATION,
    .dims = GAIN_DIMS,
    .applications = ROW_SUM_APPS,
};

/* ---- helpers ------------------------------------------------------------------ */

static kiln_brick *pair_create(int64_t in, int64_t out)
{
    kiln_brick *b = kiln_brick_create(&PAIR, NULL);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(kiln_brick_set_dim(b, "input_dim", in), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_dim(b, "output_dim", out), KILN_OK);
    return b;
}

static kiln_node input(kiln_graph *g, const char *name, int64_t dim)
{
    kiln_node n = kiln_graph_input(g, name, kiln_graph_floatx(g), 2, (int64_t[]){KILN_BATCH, dim});
    ck_assert_msg(kiln_node_ok(n), "%s", kiln_graph_errmsg(g));
    return n;
}

static void values(kiln_brick *b, const char *name, double *dst, int64_t n)
{
    ck_assert_int_eq(kiln_param_get_values(kiln_brick_param_by_name(b, name), dst, n), KILN_OK);
}

/* 0.5 * (sum(u^2) + sum(v^2)) */
static kiln_node half_squares(kiln_graph *g, kiln_node u, kiln_node v)
{
    kiln_node s = kiln_expr_add(g, kiln_expr_sum(g, kiln_expr_square(g, u), KILN_ALL_AXES),
                                kiln_expr_sum(g, kiln_expr_square(g, v), KILN_ALL_AXES));
    kiln_node c = kiln_expr_mul(g, kiln_expr_constant(g, 0.5), s);
    ck_assert_msg(kiln_node_ok(c), "%s", kiln_graph_errmsg(g));
    return c;
}

/* ---- tests -------------------------------------------------------------------------- */

START_TEST(user_class_has_metadata_dims_and_checked_inputs)
{
    kiln_brick *b = pair_create(IN, 0);
    ck_assert_str_eq(kiln_brick_name(b), "pair");
    ck_assert_ptr_eq(kiln_brick_class_of(b), &PAIR);
    ck_assert_int_eq(kiln_brick_input_count(b, "apply"), 3);
    ck_assert_str_eq(kiln_brick_input_name(b, "apply", 2), "shift");
    ck_assert(kiln_brick_input_optional(b, "apply", 2));
    ck_assert(!kiln_brick_input_optional(b, "apply", 0));
    ck_assert_int_eq(kiln_brick_output_count(b, "apply"), 2);
    ck_assert_str_eq(kiln_brick_output_name(b, "apply", 1), "v");
    int64_t d;
    ck_assert_int_eq(kiln_brick_get_dim(b, "hidden_dim", &d), KILN_ERR_NOT_FOUND);
    ck_assert_str_eq(kiln_brick_errmsg(b), "/pair: Pair has no dim 'hidden_dim'");

    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = input(g, "x", IN), x5 = input(g, "x5", 5), s2 = input(g, "s2", 2), out[2];
    /* lazy: output_dim not set */
    ck_assert_int_eq(kiln_brick_call(b, "apply", g, (kiln_node[]){x, x, KILN_NODE_NONE}, 3, out, 2),
                     KILN_ERR_CONFIG);
    ck_assert_str_eq(kiln_brick_errmsg(b), "/pair: allocation config not set: output_dim");
    ck_assert_int_eq(kiln_brick_set_dim(b, "output_dim", OUT), KILN_OK);
    kiln_graph_clear_error(g);
    ck_assert_int_eq(kiln_brick_apply(b, g, x, out), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_brick_errmsg(b), "/pair: apply takes 3 inputs (x, y, shift), 1 given");
    ck_assert_int_eq(kiln_brick_call(b, "apply", g, (kiln_node[]){x, x5, KILN_NODE_NONE}, 3, out, 2),
                     KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_brick_errmsg(b), "/pair: y has 5 features, expected 4");
    ck_assert_int_eq(kiln_brick_call(b, "apply", g, (kiln_node[]){x, x, s2}, 3, out, 2), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_brick_errmsg(b), "/pair: shift has 2 features, expected 3");
    kiln_graph_clear_error(g); /* else the message quotes the graph's last error */
    ck_assert_int_eq(kiln_brick_call(b, "apply", g, (kiln_node[]){x, KILN_NODE_NONE, x}, 3, out, 2), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_brick_errmsg(b), "/pair: y: node -1 is not a node of this graph (it has 3)");
    ck_assert_int_eq(kiln_brick_call(b, "swap", g, (kiln_node[]){x, x, x}, 3, out, 2), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_brick_errmsg(b), "/pair: Pair has no application 'swap' (it has: apply)");
    ck_assert_int_eq(((pair_data *)kiln_brick_data(b))->calls, 0); /* refused before building */
    kiln_graph_destroy(g);
    kiln_brick_destroy(b);
}
END_TEST

START_TEST(user_class_applies_initializes_and_trains_one_step)
{
    kiln_brick *b = pair_create(IN, OUT);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node x = input(g, "x", IN), y = input(g, "y", IN), uv[2];
    ck_assert_int_eq(kiln_brick_call(b, "apply", g, (kiln_node[]){x, y, KILN_NODE_NONE}, 3, uv, 2), KILN_OK);
    ck_assert_int_eq(((pair_data *)kiln_brick_data(b))->calls, 1);
    /* Blocks' naming and tags on every output */
    ck_assert_str_eq(kiln_graph_node_name(g, uv[0]), "pair_apply_u");
    ck_assert_str_eq(kiln_graph_node_name(g, uv[1]), "pair_apply_v");
    for (int k = 0; k < 2; k++) {
        ck_assert(kiln_graph_has_role(g, uv[k], KILN_ROLE_OUTPUT));
        ck_assert_str_eq(kiln_graph_node_owner(g, uv[k]), "/pair");
        ck_assert_int_eq(kiln_graph_node_dim(g, uv[k], 1), OUT);
    }
    /* parameters in declaration order, NaN until initialized */
    ck_assert_int_eq(kiln_brick_param_count(b), 2);
    ck_assert_str_eq(kiln_param_name(kiln_brick_param(b, 0)), "W");
    ck_assert_str_eq(kiln_param_name(kiln_brick_param(b, 1)), "c");
    kiln_filter biases = {.roles = KILN_ROLE_BIAS};
    kiln_node found[2];
    ck_assert_int_eq(kiln_graph_filter(g, uv, 2, &biases, found, 2), 1);
    ck_assert_str_eq(kiln_graph_node_name(g, found[0]), "c");
    double w[IN * OUT], c[OUT];
    values(b, "c", c, OUT);
    ck_assert(isnan(c[0]));

    /* initialize: c from biases_init, then W from weights_init, drawn from
    ** RandomState(1) as Blocks draws (first normals 1.62434536, -0.61175641) */
    ck_assert_int_eq(kiln_brick_set_weights_init(b, kiln_init_isotropic_gaussian(0.5, 0)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(b), KILN_ERR_CONFIG);
    ck_assert_str_eq(kiln_brick_errmsg(b), "/pair: initialization config not set: biases_init");
    ck_assert_int_eq(kiln_brick_set_biases_init(b, kiln_init_constant(0.25)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(b), KILN_OK);
    values(b, "W", w, IN * OUT);
    values(b, "c", c, OUT);
    ck_assert_double_eq_tol(w[0], 0.5 * 1.62434536, 5e-9);
    ck_assert_double_eq_tol(w[1], 0.5 * -0.61175641, 5e-9);
    for (int j = 0; j < OUT; j++)
        ck_assert_double_eq(c[j], 0.25);

    /* compile and train one step of Scale(0.1) */
    kiln_node cost = half_squares(g, uv[0], uv[1]);
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "pair";
    o.cost = cost;
    o.step_rule = kiln_step_scale(0.1);
    o.max_batch = 4;
    kiln_program *p = NULL;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", p ? kiln_program_errmsg(p) : "no program");
    double xv[ROWS * IN], yv[ROWS * IN];
    gc_fill(xv, ROWS * IN, -1, 1, 0, 5);
    gc_fill(yv, ROWS * IN, -1, 1, 0, 6);
    ck_assert_int_eq(kiln_program_bind_input(p, "x", xv), KILN_OK);
    ck_assert_int_eq(kiln_program_bind_input(p, "y", yv), KILN_OK);
    ck_assert_msg(kiln_program_train_step(p, ROWS) == KILN_OK, "%s", kiln_program_errmsg(p));
    double got_cost;
    ck_assert_int_eq(kiln_program_read_scalar(p, cost, &got_cost), KILN_OK);
    ck_assert_int_eq(kiln_program_store_params(p), KILN_OK);

    /* reference: the cost and W - 0.1 dW, c - 0.1 dc with
    ** dW = x'u + y'v and dc = sum_rows(u) - sum_rows(v) */
    double dw[IN * OUT] = {0}, dc[OUT] = {0}, want_cost = 0;
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < OUT; j++) {
            double su = c[j], sv = -c[j];
            for (int k = 0; k < IN; k++) {
                su += xv[i * IN + k] * w[k * OUT + j];
                sv += yv[i * IN + k] * w[k * OUT + j];
            }
            want_cost += 0.5 * (su * su + sv * sv);
            dc[j] += su - sv;
            for (int k = 0; k < IN; k++)
                dw[k * OUT + j] += xv[i * IN + k] * su + yv[i * IN + k] * sv;
        }
    ck_assert_double_eq_tol(got_cost, want_cost, 1e-12 * fmax(1, want_cost));
    double w1[IN * OUT], c1[OUT];
    values(b, "W", w1, IN * OUT);
    values(b, "c", c1, OUT);
    for (int k = 0; k < IN * OUT; k++)
        ck_assert_msg(fabs(w1[k] - (w[k] - 0.1 * dw[k])) < 1e-12, "W[%d]: %.17g, want %.17g", k, w1[k],
                      w[k] - 0.1 * dw[k]);
    for (int j = 0; j < OUT; j++)
        ck_assert_msg(fabs(c1[j] - (c[j] - 0.1 * dc[j])) < 1e-12, "c[%d]: %.17g, want %.17g", j, c1[j],
                      c[j] - 0.1 * dc[j]);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_brick_destroy(b);
}
END_TEST

/* With the optional shift given: d cost / d W, c by central differences. */
START_TEST(user_class_gradient_matches_finite_differences)
{
    kiln_brick *b = pair_create(IN, OUT);
    ck_assert_int_eq(kiln_brick_allocate(b), KILN_OK);
    double w[IN * OUT], c[OUT], xv[ROWS * IN], yv[ROWS * IN], sv[ROWS * OUT];
    gc_fill(w, IN * OUT, -1, 1, 0, 11);
    gc_fill(c, OUT, -1, 1, 0, 12);
    gc_fill(xv, ROWS * IN, -1, 1, 0, 13);
    gc_fill(yv, ROWS * IN, -1, 1, 0, 14);
    gc_fill(sv, ROWS * OUT, -1, 1, 0, 15);
    ck_assert_int_eq(kiln_param_set_values(kiln_brick_param_by_name(b, "W"), w, IN * OUT), KILN_OK);
    ck_assert_int_eq(kiln_param_set_values(kiln_brick_param_by_name(b, "c"), c, OUT), KILN_OK);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node in[3] = {input(g, "x", IN), input(g, "y", IN), input(g, "shift", OUT)}, uv[2];
    ck_assert_int_eq(kiln_brick_call(b, "apply", g, in, 3, uv, 2), KILN_OK);
    kiln_node params[2] = {kiln_graph_param_node(g, kiln_brick_param(b, 0)),
                           kiln_graph_param_node(g, kiln_brick_param(b, 1))};
    gc_input data[] = {{"x", xv}, {"y", yv}, {"shift", sv}};
    char why[512];
    double err = gc_check(g, half_squares(g, uv[0], uv[1]), params, 2, data, 3, ROWS, 1e-6, why, sizeof why);
    ck_assert_msg(err >= 0 && err <= 1e-7, "pair: gradient error %g (%s)", err, why);
    kiln_graph_destroy(g);
    kiln_brick_destroy(b);
}
END_TEST

START_TEST(user_class_may_initialize_its_own_parameters)
{
    kiln_brick *b = kiln_brick_create(&GAIN, NULL);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(kiln_brick_set_dim(b, "input_dim", 3), KILN_OK); /* one dim, three names */
    ck_assert_int_eq(kiln_brick_allocate(b), KILN_OK);
    kiln_param *gain = kiln_brick_param(b, 0);
    ck_assert_int_eq(kiln_param_size(gain), 3);
    /* outside initialize there is no stream to draw from */
    ck_assert_int_eq(kiln_brick_fill_param(b, gain, kiln_init_constant(2)), KILN_ERR_STATE);
    ck_assert_int_eq(kiln_brick_initialize(b), KILN_OK); /* no weights_init needed */
    double v[3];
    values(b, "gain", v, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq(v[i], 1);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = input(g, "x", 3), y;
    ck_assert_int_eq(kiln_brick_apply(b, g, x, &y), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, y), "gain_apply_output");
    /* an Activation that changes the shape is named */
    kiln_brick *r = kiln_brick_create(&ROW_SUM, "bad");
    ck_assert_int_eq(kiln_brick_set_dim(r, "dim", 3), KILN_OK);
    ck_assert_int_eq(kiln_brick_apply(r, g, x, &y), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_brick_errmsg(r), "/bad: apply: output 'output' is float32 (B,) but input 'input' is "
                                           "float32 (B, 3): an Activation keeps its input's shape");
    ck_assert(!kiln_node_ok(y));
    kiln_graph_destroy(g);
    kiln_brick_destroy(r);
    kiln_brick_destroy(b);
}
END_TEST

/* regress_10: an application that hands back an int32 node (its input,
** a child's argmax) gets a copy named after it, as a float output does;
** the copy was x * 1.0, which arithmetic on int32 refused ("mul: operands
** are int32 and float64"). */
static enum kiln_status pass_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    out[0] = in[0];
    return KILN_OK;
}

static const kiln_brick_input PASS_INPUTS[] = {{"labels", 0, 0, NULL, NULL}, {NULL}};
static const char *const PASS_OUTPUTS[] = {"labels", NULL};
static const kiln_brick_application PASS_APPS[] = {{"apply", PASS_INPUTS, PASS_OUTPUTS, pass_apply, 0}, {NULL}};
static const kiln_brick_class PASS = {.class_name = "Pass", .default_name = "pass", .applications = PASS_APPS};

START_TEST(regress_10_int32_output_handed_back_is_copied)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node y = kiln_graph_input(g, "y", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH}), out;
    kiln_brick *b = kiln_brick_create(&PASS, NULL);
    ck_assert_msg(kiln_brick_apply(b, g, y, &out) == KILN_OK, "%s", kiln_brick_errmsg(b));
    ck_assert_int_ne(out.id, y.id);
    ck_assert_str_eq(kiln_graph_node_name(g, out), "pass_apply_labels");
    ck_assert_str_eq(kiln_graph_node_name(g, y), "y");
    ck_assert_int_eq(kiln_graph_node_dtype(g, out), KILN_DTYPE_I32);
    kiln_compile_options o = kiln_compile_options_default();
    o.outputs = &out;
    o.n_outputs = 1;
    o.max_batch = 3;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    int32_t yv[3] = {4, -1, 7};
    double got[3];
    ck_assert_int_eq(kiln_program_bind_input(p, "y", yv), KILN_OK);
    ck_assert_int_eq(kiln_program_forward(p, 3), KILN_OK);
    ck_assert_int_eq(kiln_program_read(p, out, got, 3), KILN_OK);
    for (int i = 0; i < 3; i++)
        ck_assert(got[i] == yv[i]);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_brick_destroy(b);
}
END_TEST

static Suite *brick_class_suite(void)
{
    Suite *s = suite_create("brick_class");
    TCase *tc = tcase_create("brick_class");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, user_class_has_metadata_dims_and_checked_inputs);
    tcase_add_test(tc, user_class_applies_initializes_and_trains_one_step);
    tcase_add_test(tc, user_class_gradient_matches_finite_differences);
    tcase_add_test(tc, user_class_may_initialize_its_own_parameters);
    tcase_add_test(tc, regress_10_int32_output_handed_back_is_copied);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kiln_test_run(brick_class_suite());
}
