/* test_brick_values.c: every brick of include/kiln/bricks.h, computed.
**
** test_bricks.c looks at the graphs bricks build; this suite runs them
** through the whole pipeline (graph, rewrites, autodiff, codegen, JIT) and
** checks two things per brick, as test_ops.c does per op:
**  - forward: the program's values against a reference computed here in
**    plain C from the same parameter values (1e-12 relative, float64);
**  - backward: the gradient of a scalar built from the brick's output (or
**    of the cost brick itself) with respect to every parameter, against
**    central differences in float64 (gc_check). Bricks without parameters
**    are applied to a free parameter (Theano's shared variable), so the
**    check is on d out / d input. Values stay away from kinks (relu and abs
**    at 0): a test asserts that as a precondition rather than trusting seeds.
** Blocks' definitions (blocks/bricks/cost.py): CostMatrix costs are
** cost_matrix(y, y_hat).sum(axis=1).mean(); CategoricalCrossEntropy is
** mean(-log(y_hat[i, y[i]])); MisclassificationRate(top_k=1) is
** mean(y != argmax(y_hat, axis=1)). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"

#define BATCH 3
#define MAX_BATCH 8
#define FWD_TOL 1e-12 /* |got - want| <= FWD_TOL * max(1, |want|) */
#define GC_EPS 1e-6
#define GC_TOL 1e-7
#define KINK_GAP 1e-3 /* pre-activations at least this far from a kink */

/* ---- references (plain C, row-major) --------------------------------------- */

/* y (rows, out) = x (rows, in) . W (in, out) + b (out; NULL: no bias) */
static void ref_linear(const double *x, int rows, int in, const double *w, const double *b, int out,
                       double *y)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < out; j++) {
            double s = b ? b[j] : 0;
            for (int k = 0; k < in; k++)
                s += x[i * in + k] * w[k * out + j];
            y[i * out + j] = s;
        }
}

/* log(sum exp(r[j])) over a row, computed stably. */
static double row_logsumexp(const double *r, int cols)
{
    double m = r[0], s = 0;
    for (int j = 1; j < cols; j++)
        m = fmax(m, r[j]);
    for (int j = 0; j < cols; j++)
        s += exp(r[j] - m);
    return m + log(s);
}

static void ref_softmax(const double *x, int rows, int cols, double *y)
{
    for (int i = 0; i < rows; i++) {
        double lse = row_logsumexp(x + i * cols, cols);
        for (int j = 0; j < cols; j++)
            y[i * cols + j] = exp(x[i * cols + j] - lse);
    }
}

static void ref_log_softmax(const double *x, int rows, int cols, double *y)
{
    for (int i = 0; i < rows; i++) {
        double lse = row_logsumexp(x + i * cols, cols);
        for (int j = 0; j < cols; j++)
            y[i * cols + j] = x[i * cols + j] - lse;
    }
}

static double f_identity(double x) { return x; }
static double f_relu(double x) { return x > 0 ? x : 0; }
static double f_tanh(double x) { return tanh(x); }
static double f_logistic(double x) { return 1 / (1 + exp(-x)); }
static double f_softplus(double x) { return log1p(exp(x)); }

static void ref_map(double (*f)(double), double *x, int n)
{
    for (int i = 0; i < n; i++)
        x[i] = f(x[i]);
}

/* mean over rows of -log(p[i, y[i]]) */
static double ref_cce(const double *p, const int32_t *y, int rows, int cols)
{
    double s = 0;
    for (int i = 0; i < rows; i++)
        s += -log(p[i * cols + y[i]]);
    return s / rows;
}

/* ---- helpers ------------------------------------------------------------------ */

static void assert_close(const char *what, const double *got, const double *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= FWD_TOL * fmax(1, fabs(want[i])),
                      "%s[%lld]: got %.17g, want %.17g", what, (long long)i, got[i], want[i]);
}

static kiln_node batch_input(kiln_graph *g, const char *name, int64_t dim)
{
    kiln_node x = kiln_graph_input(g, name, kiln_graph_floatx(g), 2, (int64_t[]){KILN_BATCH, dim});
    ck_assert_msg(kiln_node_ok(x), "input %s: %s", name, kiln_graph_errmsg(g));
    return x;
}

static kiln_node label_input(kiln_graph *g, const char *name)
{
    kiln_node y = kiln_graph_input(g, name, KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    ck_assert_msg(kiln_node_ok(y), "input %s: %s", name, kiln_graph_errmsg(g));
    return y;
}

static kiln_node apply(kiln_brick *b, kiln_graph *g, kiln_node x)
{
    kiln_node y;
    ck_assert_msg(kiln_brick_apply(b, g, x, &y) == KILN_OK, "apply %s: %s", kiln_brick_path(b),
                  kiln_brick_errmsg(b));
    return y;
}

static kiln_node cost_of(kiln_brick *b, kiln_graph *g, kiln_node y, kiln_node y_hat)
{
    kiln_node c;
    ck_assert_msg(kiln_cost_apply(b, g, y, y_hat, &c) == KILN_OK, "cost %s: %s", kiln_brick_path(b),
                  kiln_brick_errmsg(b));
    return c;
}

/* Set parameter `name` of b to seeded values in [lo, hi); v gets them. */
static void fill_param(kiln_brick *b, const char *name, double lo, double hi, unsigned seed, double *v,
                       int64_t cap)
{
    kiln_param *p = kiln_brick_param_by_name(b, name);
    ck_assert_msg(p != NULL, "%s has no parameter %s", kiln_brick_path(b), name);
    int64_t n = kiln_param_size(p);
    ck_assert_int_le(n, cap);
    gc_fill(v, n, lo, hi, 0, seed);
    ck_assert_int_eq(kiln_param_set_values(p, v, n), KILN_OK);
}

static void copy_param(kiln_brick *to, const kiln_brick *from, const char *name)
{
    const kiln_param *src = kiln_brick_param_by_name(from, name);
    kiln_param *dst = kiln_brick_param_by_name(to, name);
    ck_assert(src && dst);
    int64_t n = kiln_param_size(src);
    ck_assert_int_eq(kiln_param_size(dst), n);
    double *v = malloc((size_t)n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(kiln_param_get_values(src, v, n), KILN_OK);
    ck_assert_int_eq(kiln_param_set_values(dst, v, n), KILN_OK);
    free(v);
}

/* 0.5 * sum((out + 0.3)^2): a gradient that differs per element. */
static kiln_node half_square_cost(kiln_graph *g, kiln_node out)
{
    kiln_node c = kiln_expr_mul(
        g, kiln_expr_constant(g, 0.5),
        kiln_expr_sum(g, kiln_expr_square(g, kiln_expr_add(g, out, kiln_expr_constant(g, 0.3))), KILN_ALL_AXES));
    ck_assert_msg(kiln_node_ok(c), "%s", kiln_graph_errmsg(g));
    return c;
}

/* Elements of n's value for a batch of `batch` rows. */
static int64_t elems(const kiln_graph *g, kiln_node n, int64_t batch)
{
    int64_t c = 1;
    for (int d = 0; d < kiln_graph_node_rank(g, n); d++) {
        int64_t v = kiln_graph_node_dim(g, n, d);
        c *= v == KILN_BATCH ? batch : v;
    }
    return c;
}

static kiln_program *compile_ok(const char *what, kiln_graph *g, const kiln_compile_options *o,
                                const gc_input *in, int n_in)
{
    ck_assert_msg(kiln_graph_status(g) == KILN_OK, "%s: graph: %s", what, kiln_graph_errmsg(g));
    kiln_program *p = NULL;
    enum kiln_status s = kiln_compile(g, o, &p);
    ck_assert_msg(s == KILN_OK, "%s: compile: %s: %s", what, kiln_status_string(s),
                  p ? kiln_program_errmsg(p) : "(no program)");
    for (int i = 0; i < n_in; i++)
        ck_assert_msg(kiln_program_bind_input(p, in[i].name, in[i].data) == KILN_OK, "%s: bind %s: %s", what,
                      in[i].name, kiln_program_errmsg(p));
    return p;
}

/* Forward: compile outs as outputs, run `batch` rows, read outs[k] into dst[k]. */
static void run_forward(const char *what, kiln_graph *g, const kiln_node *outs, int n_outs, const gc_input *in,
                        int n_in, int64_t batch, double *const *dst)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "brick_values";
    o.outputs = outs;
    o.n_outputs = n_outs;
    o.max_batch = MAX_BATCH;
    kiln_program *p = compile_ok(what, g, &o, in, n_in);
    ck_assert_msg(kiln_program_forward(p, batch) == KILN_OK, "%s: forward: %s", what, kiln_program_errmsg(p));
    for (int k = 0; k < n_outs; k++)
        ck_assert_msg(kiln_program_read(p, outs[k], dst[k], elems(g, outs[k], batch)) == KILN_OK,
                      "%s: read output %d: %s", what, k, kiln_program_errmsg(p));
    kiln_program_destroy(p);
}

/* eval_step of a scalar cost; monitors[k] (scalars) into mon[k]. */
static double run_cost(const char *what, kiln_graph *g, kiln_node cost, const kiln_node *monitors, int n_mon,
                       double *mon, const gc_input *in, int n_in, int64_t batch)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "brick_cost";
    o.cost = cost;
    o.step_rule = kiln_step_scale(0);
    o.monitors = monitors;
    o.n_monitors = n_mon;
    o.max_batch = MAX_BATCH;
    kiln_program *p = compile_ok(what, g, &o, in, n_in);
    ck_assert_msg(kiln_program_eval_step(p, batch) == KILN_OK, "%s: eval_step: %s", what, kiln_program_errmsg(p));
    double c;
    ck_assert_msg(kiln_program_read_scalar(p, cost, &c) == KILN_OK, "%s: read cost: %s", what,
                  kiln_program_errmsg(p));
    for (int k = 0; k < n_mon; k++)
        ck_assert_msg(kiln_program_read_scalar(p, monitors[k], &mon[k]) == KILN_OK, "%s: read monitor %d: %s",
                      what, k, kiln_program_errmsg(p));
    kiln_program_destroy(p);
    return c;
}

/* Param nodes in g of b and its descendants, parents' own first. */
static void collect_params(const kiln_brick *b, const kiln_graph *g, kiln_node *out, int *n, int cap)
{
    for (int i = 0; i < kiln_brick_param_count(b); i++) {
        ck_assert_int_lt(*n, cap);
        out[*n] = kiln_graph_param_node(g, kiln_brick_param(b, i));
        ck_assert_msg(kiln_node_ok(out[*n]), "%s.%s is not in the graph", kiln_brick_path(b),
                      kiln_param_name(kiln_brick_param(b, i)));
        (*n)++;
    }
    for (int i = 0; i < kiln_brick_child_count(b); i++)
        collect_params(kiln_brick_child(b, i), g, out, n, cap);
}

static void check_gradient(const char *what, kiln_graph *g, kiln_node cost, const kiln_node *params, int n_params,
                           const gc_input *in, int n_in, int64_t batch)
{
    ck_assert_msg(n_params > 0, "%s: nothing to check", what);
    char why[512];
    double err = gc_check(g, cost, params, n_params, in, n_in, batch, GC_EPS, why, sizeof why);
    ck_assert_msg(err >= 0 && err <= GC_TOL, "%s: gradient error %g (%s)", what, err, why);
}

/* Gradient of cost with respect to every parameter of bricks[0..n) (and
** their descendants), expect of them. */
static void check_brick_gradient(const char *what, kiln_graph *g, kiln_node cost, kiln_brick *const *bricks,
                                 int n, int expect, const gc_input *in, int n_in, int64_t batch)
{
    kiln_node params[16];
    int np = 0;
    for (int i = 0; i < n; i++)
        collect_params(bricks[i], g, params, &np, 16);
    ck_assert_msg(np == expect, "%s: %d parameters, expected %d", what, np, expect);
    check_gradient(what, g, cost, params, np, in, n_in, batch);
}

/* The common case: brick b applied to a (BATCH, 4) input x, cost half the
** sum of squares, `expect` parameters checked by finite differences. */
static void check_gradient_on_x(const char *what, kiln_brick *b, int expect, const double *x)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node cost = half_square_cost(g, apply(b, g, batch_input(g, "x", 4)));
    gc_input in[] = {{"x", x}};
    check_brick_gradient(what, g, cost, &b, 1, expect, in, 1, BATCH);
    kiln_graph_destroy(g);
}

static void assert_away_from_zero(const char *what, const double *v, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs(v[i]) >= KINK_GAP, "%s[%d] = %g is at a kink: pick other values", what, i, v[i]);
}

/* ---- Linear, Bias ------------------------------------------------------------------ */

START_TEST(linear_forward_is_x_w_plus_b)
{
    double x[BATCH * 4], w[12], b[3], want[BATCH * 3], got[BATCH * 3], got_nb[BATCH * 3];
    kiln_brick *lin = kiln_linear_create("lin", 4, 3);
    kiln_brick *nob = kiln_linear_create("nob", 4, 3);
    ck_assert_int_eq(kiln_brick_set_use_bias(nob, false), KILN_OK);
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    ck_assert_int_eq(kiln_brick_allocate(nob), KILN_OK);
    fill_param(lin, "W", -1, 1, 1, w, 12);
    fill_param(lin, "b", -1, 1, 2, b, 3);
    ck_assert_int_eq(kiln_param_set_values(kiln_brick_param_by_name(nob, "W"), w, 12), KILN_OK);
    gc_fill(x, BATCH * 4, -1, 1, 0, 3);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node xn = batch_input(g, "x", 4);
    kiln_node outs[2] = {apply(lin, g, xn), apply(nob, g, xn)};
    gc_input in[] = {{"x", x}};
    run_forward("linear", g, outs, 2, in, 1, BATCH, (double *[]){got, got_nb});
    ref_linear(x, BATCH, 4, w, b, 3, want);
    assert_close("linear", got, want, BATCH * 3);
    ref_linear(x, BATCH, 4, w, NULL, 3, want);
    assert_close("linear without bias", got_nb, want, BATCH * 3);
    kiln_graph_destroy(g);
    kiln_brick_destroy(lin);
    kiln_brick_destroy(nob);
}
END_TEST

START_TEST(linear_gradient_matches_finite_differences)
{
    double x[BATCH * 4], v[12];
    kiln_brick *lin = kiln_linear_create("lin", 4, 3);
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    fill_param(lin, "W", -1, 1, 1, v, 12);
    fill_param(lin, "b", -1, 1, 2, v, 3);
    gc_fill(x, BATCH * 4, -1, 1, 0, 3);
    check_gradient_on_x("linear", lin, 2, x);
    kiln_brick_destroy(lin);
}
END_TEST

START_TEST(bias_forward_adds_b_to_each_row)
{
    double x[BATCH * 4], b[4], want[BATCH * 4], got[BATCH * 4];
    kiln_brick *bias = kiln_bias_create(NULL, 4);
    ck_assert_int_eq(kiln_brick_allocate(bias), KILN_OK);
    fill_param(bias, "b", -1, 1, 4, b, 4);
    gc_fill(x, BATCH * 4, -1, 1, 0, 5);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node out = apply(bias, g, batch_input(g, "x", 4));
    gc_input in[] = {{"x", x}};
    run_forward("bias", g, &out, 1, in, 1, BATCH, (double *[]){got});
    for (int i = 0; i < BATCH; i++)
        for (int j = 0; j < 4; j++)
            want[i * 4 + j] = x[i * 4 + j] + b[j];
    assert_close("bias", got, want, BATCH * 4);
    kiln_graph_destroy(g);
    kiln_brick_destroy(bias);
}
END_TEST

START_TEST(bias_gradient_matches_finite_differences)
{
    double x[BATCH * 4], b[4];
    kiln_brick *bias = kiln_bias_create(NULL, 4);
    ck_assert_int_eq(kiln_brick_allocate(bias), KILN_OK);
    fill_param(bias, "b", -1, 1, 4, b, 4);
    gc_fill(x, BATCH * 4, -1, 1, 0, 5);
    check_gradient_on_x("bias", bias, 1, x);
    kiln_brick_destroy(bias);
}
END_TEST

/* ---- activations and Softmax.apply: a table ---------------------------------------- */

typedef struct act_case {
    const char *name;
    kiln_brick *(*make)(const char *);
    double (*f)(double); /* elementwise reference; NULL: row-wise softmax */
    double lo, hi, gap;  /* input values */
} act_case;

static const act_case ACT_CASES[] = {
    /* name        make                   reference    inputs */
    {"identity", kiln_identity_create, f_identity, -2, 2, 0},
    {"rectifier", kiln_rectifier_create, f_relu, -2, 2, 0.1},
    {"tanh", kiln_tanh_create, f_tanh, -2, 2, 0},
    {"logistic", kiln_logistic_create, f_logistic, -3, 3, 0},
    {"softplus", kiln_softplus_create, f_softplus, -3, 3, 0},
    {"softmax", kiln_softmax_create, NULL, -2, 2, 0},
};

START_TEST(activation_forward_matches_reference)
{
    const act_case *c = &ACT_CASES[_i];
    double x[BATCH * 5], want[BATCH * 5], got[BATCH * 5];
    gc_fill(x, BATCH * 5, c->lo, c->hi, c->gap, 11);
    kiln_brick *b = c->make(NULL);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node out = apply(b, g, batch_input(g, "x", 5));
    ck_assert_int_eq(kiln_brick_param_count(b), 0);
    gc_input in[] = {{"x", x}};
    run_forward(c->name, g, &out, 1, in, 1, BATCH, (double *[]){got});
    if (c->f) {
        memcpy(want, x, sizeof want);
        ref_map(c->f, want, BATCH * 5);
    } else {
        ref_softmax(x, BATCH, 5, want);
    }
    assert_close(c->name, got, want, BATCH * 5);
    kiln_graph_destroy(g);
    kiln_brick_destroy(b);
}
END_TEST

/* No parameters of their own: the input is a free parameter X (3, 5). */
START_TEST(activation_gradient_matches_finite_differences)
{
    const act_case *c = &ACT_CASES[_i];
    double x[15];
    gc_fill(x, 15, c->lo, c->hi, c->gap, 12);
    kiln_param *xp = kiln_param_create("X", 2, (int64_t[]){3, 5});
    ck_assert_ptr_nonnull(xp);
    ck_assert_int_eq(kiln_param_set_values(xp, x, 15), KILN_OK);
    kiln_brick *b = c->make(NULL);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node xn = kiln_graph_param(g, xp);
    kiln_node cost = half_square_cost(g, apply(b, g, xn));
    check_gradient(c->name, g, cost, &xn, 1, NULL, 0, 1);
    kiln_graph_destroy(g);
    kiln_brick_destroy(b);
    kiln_param_destroy(xp);
}
END_TEST

/* ---- Softmax's other applications ---------------------------------------------------- */

START_TEST(softmax_log_probabilities_forward_is_log_softmax)
{
    double x[BATCH * 5], want[BATCH * 5], got[BATCH * 5];
    gc_fill(x, BATCH * 5, -4, 4, 0, 13);
    kiln_brick *sm = kiln_softmax_create(NULL);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node out;
    ck_assert_int_eq(kiln_softmax_log_probabilities(sm, g, batch_input(g, "x", 5), &out), KILN_OK);
    gc_input in[] = {{"x", x}};
    run_forward("log_probabilities", g, &out, 1, in, 1, BATCH, (double *[]){got});
    ref_log_softmax(x, BATCH, 5, want);
    assert_close("log_probabilities", got, want, BATCH * 5);
    kiln_graph_destroy(g);
    kiln_brick_destroy(sm);
}
END_TEST

START_TEST(softmax_log_probabilities_gradient_matches_finite_differences)
{
    double x[15];
    gc_fill(x, 15, -2, 2, 0, 14);
    kiln_param *xp = kiln_param_create("X", 2, (int64_t[]){3, 5});
    ck_assert_int_eq(kiln_param_set_values(xp, x, 15), KILN_OK);
    kiln_brick *sm = kiln_softmax_create(NULL);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node xn = kiln_graph_param(g, xp), out;
    ck_assert_int_eq(kiln_softmax_log_probabilities(sm, g, xn, &out), KILN_OK);
    check_gradient("log_probabilities", g, half_square_cost(g, out), &xn, 1, NULL, 0, 1);
    kiln_graph_destroy(g);
    kiln_brick_destroy(sm);
    kiln_param_destroy(xp);
}
END_TEST

START_TEST(softmax_categorical_cross_entropy_forward_is_per_row)
{
    double x[BATCH * 5], ls[BATCH * 5], got[BATCH];
    int32_t y[BATCH] = {4, 0, 2};
    gc_fill(x, BATCH * 5, -4, 4, 0, 15);
    kiln_brick *sm = kiln_softmax_create(NULL);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node xn = batch_input(g, "x", 5), yn = label_input(g, "y"), out;
    ck_assert_int_eq(kiln_softmax_categorical_cross_entropy(sm, g, yn, xn, &out), KILN_OK);
    gc_input in[] = {{"x", x}, {"y", y}};
    run_forward("softmax categorical_cross_entropy", g, &out, 1, in, 2, BATCH, (double *[]){got});
    ref_log_softmax(x, BATCH, 5, ls);
    double want[BATCH];
    for (int i = 0; i < BATCH; i++)
        want[i] = -ls[i * 5 + y[i]];
    assert_close("softmax categorical_cross_entropy", got, want, BATCH);
    kiln_graph_destroy(g);
    kiln_brick_destroy(sm);
}
END_TEST

/* Pre-softmax x = Linear(x0): the gradient flows to W and b. */
START_TEST(softmax_categorical_cross_entropy_gradient_matches_finite_differences)
{
    double x[BATCH * 4], v[20];
    int32_t y[BATCH] = {4, 0, 2};
    gc_fill(x, BATCH * 4, -1, 1, 0, 16);
    kiln_brick *lin = kiln_linear_create(NULL, 4, 5);
    kiln_brick *sm = kiln_softmax_create(NULL);
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    fill_param(lin, "W", -1, 1, 17, v, 20);
    fill_param(lin, "b", -1, 1, 18, v, 5);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node h = apply(lin, g, batch_input(g, "x", 4)), out;
    ck_assert_int_eq(kiln_softmax_categorical_cross_entropy(sm, g, label_input(g, "y"), h, &out), KILN_OK);
    gc_input in[] = {{"x", x}, {"y", y}};
    check_brick_gradient("softmax categorical_cross_entropy", g, half_square_cost(g, out), &lin, 1, 2, in, 2, BATCH);
    kiln_graph_destroy(g);
    kiln_brick_destroy(lin);
    kiln_brick_destroy(sm);
}
END_TEST

/* ---- Sequence ------------------------------------------------------------------------- */

/* [Linear 4->5, Softplus, Bias 5, Tanh, Linear 5->3], values set; v gets
** W1 b1 shift W2 b2 at offsets 0, 20, 25, 30, 45. */
static kiln_brick *sequence_with_values(double *v)
{
    kiln_brick *kids[5] = {kiln_linear_create("l1", 4, 5), kiln_softplus_create(NULL), kiln_bias_create("shift", 5),
                           kiln_tanh_create(NULL), kiln_linear_create("l2", 5, 3)};
    kiln_brick *s = kiln_sequence_create(NULL, kids, 5);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(kiln_brick_allocate(s), KILN_OK);
    fill_param(kids[0], "W", -1, 1, 21, v, 20);
    fill_param(kids[0], "b", -1, 1, 22, v + 20, 5);
    fill_param(kids[2], "b", -1, 1, 23, v + 25, 5);
    fill_param(kids[4], "W", -1, 1, 24, v + 30, 15);
    fill_param(kids[4], "b", -1, 1, 25, v + 45, 3);
    return s;
}

START_TEST(sequence_forward_equals_children_in_order)
{
    double v[48], x[BATCH * 4], h[BATCH * 5], want[BATCH * 3], got[BATCH * 3], got_hand[BATCH * 3];
    kiln_brick *s = sequence_with_values(v);
    gc_fill(x, BATCH * 4, -1, 1, 0, 26);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node xn = batch_input(g, "x", 4);
    kiln_node out = apply(s, g, xn), hand = xn;
    /* the same children applied one by one */
    for (int i = 0; i < kiln_brick_child_count(s); i++)
        hand = apply(kiln_brick_child(s, i), g, hand);
    gc_input in[] = {{"x", x}};
    run_forward("sequence", g, (kiln_node[]){out, hand}, 2, in, 1, BATCH, (double *[]){got, got_hand});
    ref_linear(x, BATCH, 4, v, v + 20, 5, h);
    ref_map(f_softplus, h, BATCH * 5);
    for (int i = 0; i < BATCH; i++)
        for (int j = 0; j < 5; j++)
            h[i * 5 + j] = tanh(h[i * 5 + j] + v[25 + j]);
    ref_linear(h, BATCH, 5, v + 30, v + 45, 3, want);
    assert_close("sequence", got, want, BATCH * 3);
    assert_close("sequence vs children in order", got, got_hand, BATCH * 3);
    kiln_graph_destroy(g);
    kiln_brick_destroy(s);
}
END_TEST

START_TEST(sequence_gradient_matches_finite_differences)
{
    double v[48], x[BATCH * 4];
    kiln_brick *s = sequence_with_values(v);
    gc_fill(x, BATCH * 4, -1, 1, 0, 26);
    check_gradient_on_x("sequence", s, 5, x);
    kiln_brick_destroy(s);
}
END_TEST

/* ---- MLP ------------------------------------------------------------------------------ */

/* MLP(acts, [4, 5, 3]) with values set; v gets W0 b0 W1 b1 at 0, 20, 25, 40. */
static kiln_brick *mlp_with_values(kiln_brick *act0, kiln_brick *act1, double *v)
{
    kiln_brick *acts[2] = {act0, act1};
    kiln_brick *m = kiln_mlp_create(NULL, acts, 2, (int64_t[]){4, 5, 3});
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(kiln_brick_allocate(m), KILN_OK);
    kiln_brick *l0 = kiln_brick_child_by_name(m, "linear_0"), *l1 = kiln_brick_child_by_name(m, "linear_1");
    ck_assert(l0 && l1);
    fill_param(l0, "W", -1, 1, 31, v, 20);
    fill_param(l0, "b", -1, 1, 32, v + 20, 5);
    fill_param(l1, "W", -1, 1, 33, v + 25, 15);
    fill_param(l1, "b", -1, 1, 34, v + 40, 3);
    return m;
}

/* The node brick c output under root out (role OUTPUT, tagged with c). */
static kiln_node output_of(kiln_graph *g, kiln_node out, const kiln_brick *c)
{
    kiln_filter f = {KILN_ROLE_OUTPUT, c, NULL};
    kiln_node n[4];
    int k = kiln_graph_filter(g, &out, 1, &f, n, 4);
    ck_assert_msg(k == 1, "%s: %d outputs", kiln_brick_path(c), k);
    return n[0];
}

START_TEST(mlp_tanh_none_forward_and_children_match_hand_composition)
{
    double v[43], x[BATCH * 4], h[BATCH * 5], want[BATCH * 3];
    double got[4][BATCH * 5], hand[3][BATCH * 5];
    kiln_brick *m = mlp_with_values(kiln_tanh_create(NULL), NULL, v);
    ck_assert_int_eq(kiln_brick_child_count(m), 3); /* linear_0, tanh_0, linear_1 */
    /* the same layers built by hand, with the MLP's values */
    kiln_brick *l0 = kiln_linear_create("hand_0", 4, 5), *t = kiln_tanh_create(NULL);
    kiln_brick *l1 = kiln_linear_create("hand_1", 5, 3);
    ck_assert_int_eq(kiln_brick_allocate(l0), KILN_OK);
    ck_assert_int_eq(kiln_brick_allocate(l1), KILN_OK);
    copy_param(l0, kiln_brick_child(m, 0), "W");
    copy_param(l0, kiln_brick_child(m, 0), "b");
    copy_param(l1, kiln_brick_child(m, 2), "W");
    copy_param(l1, kiln_brick_child(m, 2), "b");
    gc_fill(x, BATCH * 4, -1, 1, 0, 35);

    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node xn = batch_input(g, "x", 4);
    kiln_node out = apply(m, g, xn);
    kiln_node a0 = apply(l0, g, xn), a1 = apply(t, g, a0), a2 = apply(l1, g, a1);
    kiln_node outs[7] = {out, output_of(g, out, kiln_brick_child(m, 0)), output_of(g, out, kiln_brick_child(m, 1)),
                         output_of(g, out, kiln_brick_child(m, 2)), a0, a1, a2};
    ck_assert_str_eq(kiln_graph_node_name(g, outs[1]), "linear_0_apply_output");
    ck_assert_str_eq(kiln_graph_node_name(g, outs[2]), "tanh_0_apply_output");
    ck_assert_str_eq(kiln_graph_node_name(g, outs[3]), "linear_1_apply_output");
    gc_input in[] = {{"x", x}};
    run_forward("mlp [tanh, none]", g, outs, 7, in, 1, BATCH,
                (double *[]){got[0], got[1], got[2], got[3], hand[0], hand[1], hand[2]});

    ref_linear(x, BATCH, 4, v, v + 20, 5, h);
    ref_map(f_tanh, h, BATCH * 5);
    ref_linear(h, BATCH, 5, v + 25, v + 40, 3, want);
    assert_close("mlp [tanh, none]", got[0], want, BATCH * 3);
    assert_close("linear_0 vs hand", got[1], hand[0], BATCH * 5);
    assert_close("tanh_0 vs hand", got[2], hand[1], BATCH * 5);
    assert_close("linear_1 vs hand", got[3], hand[2], BATCH * 3);
    assert_close("mlp vs hand", got[0], hand[2], BATCH * 3);
    kiln_graph_destroy(g);
    kiln_brick_destroy(m);
    kiln_brick_destroy(l0);
    kiln_brick_destroy(t);
    kiln_brick_destroy(l1);
}
END_TEST

START_TEST(mlp_tanh_none_gradient_matches_finite_differences)
{
    double v[43], x[BATCH * 4];
    kiln_brick *m = mlp_with_values(kiln_tanh_create(NULL), NULL, v);
    gc_fill(x, BATCH * 4, -1, 1, 0, 35);
    check_gradient_on_x("mlp [tanh, none]", m, 4, x);
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(mlp_rectifier_softmax_forward_matches_reference)
{
    double v[43], x[BATCH * 4], h[BATCH * 5], z[BATCH * 3], want[BATCH * 3], got[BATCH * 3];
    kiln_brick *m = mlp_with_values(kiln_rectifier_create(NULL), kiln_softmax_create(NULL), v);
    gc_fill(x, BATCH * 4, -1, 1, 0, 36);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node out = apply(m, g, batch_input(g, "x", 4));
    gc_input in[] = {{"x", x}};
    run_forward("mlp [rectifier, softmax]", g, &out, 1, in, 1, BATCH, (double *[]){got});
    ref_linear(x, BATCH, 4, v, v + 20, 5, h);
    ref_map(f_relu, h, BATCH * 5);
    ref_linear(h, BATCH, 5, v + 25, v + 40, 3, z);
    ref_softmax(z, BATCH, 3, want);
    assert_close("mlp [rectifier, softmax]", got, want, BATCH * 3);
    kiln_graph_destroy(g);
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(mlp_rectifier_softmax_gradient_matches_finite_differences)
{
    double v[43], x[BATCH * 4], pre[BATCH * 5];
    kiln_brick *m = mlp_with_values(kiln_rectifier_create(NULL), kiln_softmax_create(NULL), v);
    gc_fill(x, BATCH * 4, -1, 1, 0, 36);
    ref_linear(x, BATCH, 4, v, v + 20, 5, pre);
    assert_away_from_zero("relu pre-activation", pre, BATCH * 5);
    check_gradient_on_x("mlp [rectifier, softmax]", m, 4, x);
    kiln_brick_destroy(m);
}
END_TEST

/* ---- cost bricks ------------------------------------------------------------------------ */

/* Rows of positive values summing to 1. */
static void probabilities(double *p, int rows, int cols, unsigned seed)
{
    gc_fill(p, rows * cols, 0.05, 1, 0, seed);
    for (int i = 0; i < rows; i++) {
        double s = 0;
        for (int j = 0; j < cols; j++)
            s += p[i * cols + j];
        for (int j = 0; j < cols; j++)
            p[i * cols + j] /= s;
    }
}

START_TEST(categorical_cross_entropy_forward_is_mean_neg_log_p)
{
    /* 1. on probabilities given as an input */
    double p[BATCH * 5];
    int32_t y[BATCH] = {1, 4, 0};
    probabilities(p, BATCH, 5, 41);
    kiln_brick *cce = kiln_categorical_cross_entropy_create(NULL);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node c = cost_of(cce, g, label_input(g, "y"), batch_input(g, "p", 5));
    gc_input in[] = {{"p", p}, {"y", y}};
    double got = run_cost("cce on p", g, c, NULL, 0, NULL, in, 2, BATCH);
    double want = ref_cce(p, y, BATCH, 5);
    assert_close("cce on p", &got, &want, 1);
    kiln_graph_destroy(g);

    /* 2. on Softmax(Linear(x)): the program rewrites log(pick(softmax)) into
    ** the stable fused form; the value must not change. */
    double x[BATCH * 4], w[20], b[5], z[BATCH * 5], sm[BATCH * 5];
    kiln_brick *lin = kiln_linear_create(NULL, 4, 5), *smx = kiln_softmax_create(NULL);
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    fill_param(lin, "W", -2, 2, 42, w, 20);
    fill_param(lin, "b", -1, 1, 43, b, 5);
    gc_fill(x, BATCH * 4, -1, 1, 0, 44);
    g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node yhat = apply(smx, g, apply(lin, g, batch_input(g, "x", 4)));
    c = cost_of(cce, g, label_input(g, "y"), yhat);
    gc_input in2[] = {{"x", x}, {"y", y}};
    got = run_cost("cce on softmax", g, c, NULL, 0, NULL, in2, 2, BATCH);
    ref_linear(x, BATCH, 4, w, b, 5, z);
    ref_softmax(z, BATCH, 5, sm);
    want = ref_cce(sm, y, BATCH, 5);
    assert_close("cce on softmax", &got, &want, 1);
    kiln_graph_destroy(g);
    kiln_brick_destroy(lin);
    kiln_brick_destroy(smx);
    kiln_brick_destroy(cce);
}
END_TEST

START_TEST(categorical_cross_entropy_gradient_matches_finite_differences)
{
    double x[BATCH * 4], v[20];
    int32_t y[BATCH] = {1, 4, 0};
    kiln_brick *lin = kiln_linear_create(NULL, 4, 5), *smx = kiln_softmax_create(NULL);
    kiln_brick *cce = kiln_categorical_cross_entropy_create(NULL);
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    fill_param(lin, "W", -2, 2, 42, v, 20);
    fill_param(lin, "b", -1, 1, 43, v, 5);
    gc_fill(x, BATCH * 4, -1, 1, 0, 44);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node yhat = apply(smx, g, apply(lin, g, batch_input(g, "x", 4)));
    kiln_node c = cost_of(cce, g, label_input(g, "y"), yhat);
    gc_input in[] = {{"x", x}, {"y", y}};
    check_brick_gradient("cce", g, c, &lin, 1, 2, in, 2, BATCH);
    kiln_graph_destroy(g);
    kiln_brick_destroy(lin);
    kiln_brick_destroy(smx);
    kiln_brick_destroy(cce);
}
END_TEST

/* y and y_hat both (B, 4): targets y as an input, y_hat from Linear(x) or
** Logistic(Linear(x)) so that gradients reach W and b. */
typedef struct matrix_cost_case {
    const char *name;
    kiln_brick *(*make)(const char *);
    bool logistic;  /* y_hat = logistic(x W + b), in (0, 1) as BCE needs */
    double ylo, yhi; /* targets */
} matrix_cost_case;

static const matrix_cost_case MATRIX_COSTS[] = {
    {"binary_cross_entropy", kiln_binary_cross_entropy_create, true, 0, 1},
    {"squared_error", kiln_squared_error_create, false, -1, 1},
    {"absolute_error", kiln_absolute_error_create, false, -1, 1},
};

/* The per-element cost of row case c. */
static double matrix_cost_elem(const matrix_cost_case *c, double y, double yh)
{
    if (c->make == kiln_binary_cross_entropy_create)
        return -(y * log(yh) + (1 - y) * log(1 - yh));
    if (c->make == kiln_squared_error_create)
        return (y - yh) * (y - yh);
    return fabs(y - yh);
}

/* Blocks' CostMatrix: sum over axis 1, mean over rows. */
static double ref_matrix_cost(const matrix_cost_case *c, const double *y, const double *yh, int rows, int cols)
{
    double total = 0;
    for (int i = 0; i < rows; i++) {
        double row = 0;
        for (int j = 0; j < cols; j++)
            row += matrix_cost_elem(c, y[i * cols + j], yh[i * cols + j]);
        total += row;
    }
    return total / rows;
}

static void matrix_cost_targets(const matrix_cost_case *c, double *y)
{
    gc_fill(y, BATCH * 4, c->ylo, c->yhi, 0, 51);
    if (c->logistic) { /* hard labels too */
        y[0] = 0;
        y[5] = 1;
    }
}

START_TEST(matrix_cost_forward_sums_rows_then_averages)
{
    const matrix_cost_case *c = &MATRIX_COSTS[_i];
    double y[BATCH * 4], yh[BATCH * 4];
    matrix_cost_targets(c, y);
    gc_fill(yh, BATCH * 4, 0.05, 0.95, 0, 52);
    kiln_brick *b = c->make(NULL);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node cost = cost_of(b, g, batch_input(g, "y", 4), batch_input(g, "y_hat", 4));
    gc_input in[] = {{"y", y}, {"y_hat", yh}};
    double got = run_cost(c->name, g, cost, NULL, 0, NULL, in, 2, BATCH);
    double want = ref_matrix_cost(c, y, yh, BATCH, 4);
    assert_close(c->name, &got, &want, 1);
    kiln_graph_destroy(g);
    kiln_brick_destroy(b);
}
END_TEST

START_TEST(matrix_cost_gradient_matches_finite_differences)
{
    const matrix_cost_case *c = &MATRIX_COSTS[_i];
    double x[BATCH * 3], y[BATCH * 4], w[12], bv[4], yh[BATCH * 4];
    matrix_cost_targets(c, y);
    gc_fill(x, BATCH * 3, -1, 1, 0, 53);
    kiln_brick *lin = kiln_linear_create(NULL, 3, 4), *b = c->make(NULL);
    kiln_brick *lg = c->logistic ? kiln_logistic_create(NULL) : NULL;
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    fill_param(lin, "W", -1, 1, 54, w, 12);
    fill_param(lin, "b", -1, 1, 55, bv, 4);
    /* y - y_hat away from abs's kink */
    ref_linear(x, BATCH, 3, w, bv, 4, yh);
    if (c->logistic)
        ref_map(f_logistic, yh, BATCH * 4);
    for (int i = 0; i < BATCH * 4; i++)
        yh[i] -= y[i];
    assert_away_from_zero("y - y_hat", yh, BATCH * 4);

    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node yn = batch_input(g, "y", 4);
    kiln_node out = apply(lin, g, batch_input(g, "x", 3));
    if (c->logistic)
        out = apply(lg, g, out);
    kiln_node cost = cost_of(b, g, yn, out);
    gc_input in[] = {{"x", x}, {"y", y}};
    check_brick_gradient(c->name, g, cost, &lin, 1, 2, in, 2, BATCH);
    kiln_graph_destroy(g);
    kiln_brick_destroy(lin);
    kiln_brick_destroy(lg);
    kiln_brick_destroy(b);
}
END_TEST

/* Not differentiable: forward only. Ties: Blocks' MisclassificationRate with
** top_k = 1 computes neq(y, y_hat.argmax(axis=1)), and Theano's argmax (as
** numpy's) takes the FIRST of tied maxima; so a tie counts as correct when
** the target is the first tied class and as a mistake otherwise. (Its
** docstring's "ties are broken pessimistically" describes the top_k > 1
** branch, which uses >=.) kiln's code does the same as Blocks' code; the
** comment in include/kiln/bricks.h ("ties count as errors") does not hold
** for row 3 below. */
START_TEST(misclassification_rate_counts_argmax_mistakes)
{
    enum { ROWS = 6, K = 4 };
    static const double yh[ROWS * K] = {
        0.1, 0.7, 0.1, 0.1, /* argmax 1, y 1: correct */
        0.6, 0.2, 0.1, 0.1, /* argmax 0, y 3: mistake */
        0.1, 0.4, 0.1, 0.4, /* tie 1 and 3, y 1 (first): correct */
        0.1, 0.4, 0.1, 0.4, /* tie 1 and 3, y 3 (second): mistake */
        0.3, 0.3, 0.3, 0.1, /* three-way tie, y 0: correct */
        0.0, 0.0, 0.0, 0.9, /* argmax 3, y 3: correct */
    };
    static const int32_t y[ROWS] = {1, 3, 1, 3, 0, 3};
    /* reference: first maximum, as numpy.argmax */
    double want = 0;
    for (int i = 0; i < ROWS; i++) {
        int best = 0;
        for (int j = 1; j < K; j++)
            if (yh[i * K + j] > yh[i * K + best])
                best = j;
        want += best != y[i];
    }
    want /= ROWS;
    ck_assert_double_eq(want, 2.0 / 6.0);

    kiln_brick *mr = kiln_misclassification_rate_create(NULL);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node rate = cost_of(mr, g, label_input(g, "y"), batch_input(g, "y_hat", K));
    ck_assert_str_eq(kiln_graph_node_name(g, rate), "error_rate");
    gc_input in[] = {{"y", y}, {"y_hat", yh}};
    double got;
    run_forward("misclassification_rate", g, &rate, 1, in, 2, ROWS, (double *[]){&got});
    assert_close("misclassification_rate", &got, &want, 1);
    /* the first row alone: no mistake; the first two: one in two */
    run_forward("misclassification_rate batch 1", g, &rate, 1, in, 2, 1, (double *[]){&got});
    ck_assert_double_eq(got, 0);
    run_forward("misclassification_rate batch 2", g, &rate, 1, in, 2, 2, (double *[]){&got});
    ck_assert_double_eq(got, 0.5);
    kiln_graph_destroy(g);
    kiln_brick_destroy(mr);
}
END_TEST

/* ---- the Blocks tutorial -------------------------------------------------------------- */

/* Linear 784->100 'input_to_hidden', Rectifier, Linear 100->10
** 'hidden_to_output', Softmax, CategoricalCrossEntropy; IsotropicGaussian(0.01)
** weights, Constant(0) biases, each Linear initialized on its own (seed 1).
** With weights that small the output is near uniform: cost ~ ln 10. Loop:
** 0 float64, 1 float32 (Blocks' floatX). */
START_TEST(blocks_tutorial_initial_cost_is_near_ln_10)
{
    enum { B = 4, IN = 784, HID = 100, OUT = 10 };
    const enum kiln_dtype dt = _i == 0 ? KILN_DTYPE_F64 : KILN_DTYPE_F32;
    kiln_brick *l1 = kiln_linear_create("input_to_hidden", IN, HID), *relu = kiln_rectifier_create(NULL);
    kiln_brick *l2 = kiln_linear_create("hidden_to_output", HID, OUT), *sm = kiln_softmax_create(NULL);
    kiln_brick *cce = kiln_categorical_cross_entropy_create(NULL);
    kiln_brick *lins[2] = {l1, l2};
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(kiln_brick_set_weights_init(lins[k], kiln_init_isotropic_gaussian(0.01, 0)), KILN_OK);
        ck_assert_int_eq(kiln_brick_set_biases_init(lins[k], kiln_init_constant(0)), KILN_OK);
        ck_assert_int_eq(kiln_brick_initialize(lins[k]), KILN_OK);
    }
    double *w1 = malloc(sizeof(double) * IN * HID), *x = malloc(sizeof(double) * B * IN);
    float *xf = malloc(sizeof(float) * B * IN);
    double w2[HID * OUT], b1[HID], b2[OUT], h[B * HID], z[B * OUT], p[B * OUT];
    ck_assert(w1 && x && xf);
    ck_assert_int_eq(kiln_param_get_values(kiln_brick_param_by_name(l1, "W"), w1, IN * HID), KILN_OK);
    ck_assert_int_eq(kiln_param_get_values(kiln_brick_param_by_name(l1, "b"), b1, HID), KILN_OK);
    ck_assert_int_eq(kiln_param_get_values(kiln_brick_param_by_name(l2, "W"), w2, HID * OUT), KILN_OK);
    ck_assert_int_eq(kiln_param_get_values(kiln_brick_param_by_name(l2, "b"), b2, OUT), KILN_OK);
    /* the tutorial prints W1 starting [0.01624345, -0.00611756, -0.00528172] */
    ck_assert_double_eq_tol(w1[0], 0.01624345, 5e-9);
    ck_assert_double_eq_tol(w1[1], -0.00611756, 5e-9);
    ck_assert_double_eq_tol(w1[2], -0.00528172, 5e-9);
    for (int j = 0; j < HID; j++)
        ck_assert_double_eq(b1[j], 0);

    gc_fill(x, B * IN, 0, 1, 0, 61);
    for (int i = 0; i < B * IN; i++)
        xf[i] = (float)x[i];
    const int32_t y[B] = {3, 0, 9, 5};
    kiln_graph *g = kiln_graph_create(dt);
    kiln_node yhat = apply(sm, g, apply(l2, g, apply(relu, g, apply(l1, g, batch_input(g, "features", IN)))));
    kiln_node cost = cost_of(cce, g, label_input(g, "targets"), yhat);
    gc_input in[] = {{"features", dt == KILN_DTYPE_F64 ? (const void *)x : (const void *)xf}, {"targets", y}};
    double got = run_cost("blocks tutorial", g, cost, NULL, 0, NULL, in, 2, B);

    /* reference in double from the values the bricks hold (for float32,
    ** from the rounded inputs) */
    if (dt == KILN_DTYPE_F32)
        for (int i = 0; i < B * IN; i++)
            x[i] = xf[i];
    ref_linear(x, B, IN, w1, b1, HID, h);
    ref_map(f_relu, h, B * HID);
    ref_linear(h, B, HID, w2, b2, OUT, z);
    ref_softmax(z, B, OUT, p);
    double want = ref_cce(p, y, B, OUT);
    ck_assert_msg(fabs(want - log(10.0)) < 0.01, "reference cost %.9g is not near ln 10", want);
    ck_assert_msg(fabs(got - 2.302585) < 0.01, "%s cost %.9g is not near ln 10", kiln_dtype_name(dt), got);
    if (dt == KILN_DTYPE_F64)
        assert_close("blocks tutorial cost", &got, &want, 1);
    else
        ck_assert_msg(fabs(got - want) < 1e-5, "float32 cost %.9g, float64 reference %.9g", got, want);
    kiln_graph_destroy(g);
    free(w1);
    free(x);
    free(xf);
    for (int k = 0; k < 2; k++)
        kiln_brick_destroy(lins[k]);
    kiln_brick_destroy(relu);
    kiln_brick_destroy(sm);
    kiln_brick_destroy(cce);
}
END_TEST

/* ---- routing bricks (blocks.bricks.parallel) ---------------------------------------------- */

static void call_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, int n_in, kiln_node *out, int n_out)
{
    ck_assert_msg(kiln_brick_call(b, "apply", g, in, n_in, out, n_out) == KILN_OK, "apply %s: %s",
                  kiln_brick_path(b), kiln_brick_errmsg(b));
}

static void initialize_ok(kiln_brick *b)
{
    ck_assert_msg(kiln_brick_initialize(b) == KILN_OK, "initialize %s: %s", kiln_brick_path(b), kiln_brick_errmsg(b));
}

static void assert_all_equal(const char *what, const double *got, int64_t n, double want)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want, "%s[%lld]: got %.17g, want %.17g", what, (long long)i, got[i], want);
}

/* Blocks' documented examples (checklist section 9, example 13), one row. */
START_TEST(fork_example_13)
{
    /* Fork(output_names=['y', 'z'], input_dim=2, output_dims=[3, 4],
    ** weights_init=Constant(2), biases_init=Constant(1)); x = [[1, 1]] */
    kiln_brick *fork = kiln_fork_create(NULL, (const char *[]){"y", "z"}, 2, 2, (int64_t[]){3, 4}, NULL);
    ck_assert_ptr_nonnull(fork);
    ck_assert_int_eq(kiln_brick_set_weights_init(fork, kiln_init_constant(2)), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_biases_init(fork, kiln_init_constant(1)), KILN_OK);
    initialize_ok(fork);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node x = batch_input(g, "x", 2), yz[2];
    call_apply(fork, g, &x, 1, yz, 2);
    double xv[2] = {1, 1}, y[3], z[4];
    gc_input in[] = {{"x", xv}};
    run_forward("fork", g, yz, 2, in, 1, 1, (double *[]){y, z});
    assert_all_equal("fork y", y, 3, 5); /* [[5, 5, 5]] */
    assert_all_equal("fork z", z, 4, 5); /* [[5, 5, 5, 5]] */
    kiln_graph_destroy(g);
    kiln_brick_destroy(fork);
}
END_TEST

START_TEST(distribute_example_13)
{
    /* Distribute(target_names=['x', 'y'], source_name='z', target_dims=[2, 3],
    ** source_dim=3, weights_init=Constant(2)); x = [[2, 2]], y = [[1, 1, 1]],
    ** z = [[1, 1, 1]] */
    kiln_brick *d = kiln_distribute_create(NULL, (const char *[]){"x", "y"}, 2, "z", (int64_t[]){2, 3}, 3, NULL);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(kiln_brick_set_weights_init(d, kiln_init_constant(2)), KILN_OK);
    initialize_ok(d);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node in3[3] = {batch_input(g, "z", 3), batch_input(g, "x", 2), batch_input(g, "y", 3)}, xy[2];
    call_apply(d, g, in3, 3, xy, 2);
    double zv[3] = {1, 1, 1}, xv[2] = {2, 2}, yv[3] = {1, 1, 1}, new_x[2], new_y[3];
    gc_input in[] = {{"z", zv}, {"x", xv}, {"y", yv}};
    run_forward("distribute", g, xy, 2, in, 3, 1, (double *[]){new_x, new_y});
    assert_all_equal("distribute x", new_x, 2, 8); /* [[8, 8]] */
    assert_all_equal("distribute y", new_y, 3, 7); /* [[7, 7, 7]] */
    kiln_graph_destroy(g);
    kiln_brick_destroy(d);
}
END_TEST

START_TEST(merge_example_13)
{
    /* Merge(input_names=['a', 'b'], input_dims=[3, 4], output_dim=2,
    ** weights_init=Constant(1.)); a = [[1, 1, 1]], b = [[2, 2, 2, 2]] */
    kiln_brick *m = kiln_merge_create(NULL, (const char *[]){"a", "b"}, 2, (int64_t[]){3, 4}, 2, NULL, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(kiln_brick_set_weights_init(m, kiln_init_constant(1)), KILN_OK);
    initialize_ok(m);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node ab[2] = {batch_input(g, "a", 3), batch_input(g, "b", 4)}, c;
    call_apply(m, g, ab, 2, &c, 1);
    double av[3] = {1, 1, 1}, bv[4] = {2, 2, 2, 2}, got[2];
    gc_input in[] = {{"a", av}, {"b", bv}};
    run_forward("merge", g, &c, 1, in, 2, 1, (double *[]){got});
    assert_all_equal("merge", got, 2, 11); /* [[11, 11]] */
    kiln_graph_destroy(g);
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(parallel_example_13)
{
    /* Parallel(prototype=Linear(use_bias=False), input_names=['x', 'y'],
    ** input_dims=[2, 3], output_dims=[4, 5], weights_init=Constant(2)) */
    kiln_brick *proto = kiln_linear_create(NULL, 0, 0);
    ck_assert_int_eq(kiln_brick_set_use_bias(proto, false), KILN_OK);
    kiln_brick *p = kiln_parallel_create(NULL, (const char *[]){"x", "y"}, 2, (int64_t[]){2, 3}, (int64_t[]){4, 5},
                                         proto, NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(kiln_brick_set_weights_init(p, kiln_init_constant(2)), KILN_OK);
    initialize_ok(p);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node xy[2] = {batch_input(g, "x", 2), batch_input(g, "y", 3)}, out[2];
    call_apply(p, g, xy, 2, out, 2);
    double xv[2] = {1, 1}, yv[3] = {1, 1, 1}, new_x[4], new_y[5];
    gc_input in[] = {{"x", xv}, {"y", yv}};
    run_forward("parallel", g, out, 2, in, 2, 1, (double *[]){new_x, new_y});
    assert_all_equal("parallel x", new_x, 4, 4); /* [[4, 4, 4, 4]] */
    assert_all_equal("parallel y", new_y, 5, 6); /* [[6, 6, 6, 6, 6]] */
    kiln_graph_destroy(g);
    kiln_brick_destroy(p);
}
END_TEST

/* Allocate b and give each parameter of its children seeded values in
** [-1, 1); v (cap values) gets them, child by child, in parameter order. */
static void fill_children(kiln_brick *b, double *v, int64_t cap, unsigned seed)
{
    ck_assert_msg(kiln_brick_allocate(b) == KILN_OK, "%s", kiln_brick_errmsg(b));
    int64_t off = 0;
    for (int i = 0; i < kiln_brick_child_count(b); i++) {
        kiln_brick *c = kiln_brick_child(b, i);
        for (int k = 0; k < kiln_brick_param_count(c); k++) {
            kiln_param *p = kiln_brick_param(c, k);
            int64_t n = kiln_param_size(p);
            ck_assert_int_le(off + n, cap);
            gc_fill(v + off, n, -1, 1, 0, seed++);
            ck_assert_int_eq(kiln_param_set_values(p, v + off, n), KILN_OK);
            off += n;
        }
    }
}

/* Random values against plain C: Distribute gives target i + source . W_i,
** Merge gives the sum of input i . W_i. */
START_TEST(distribute_and_merge_forward_match_reference)
{
    double w[15 + 15], z[BATCH * 3], x[BATCH * 2], y[BATCH * 3], got_x[BATCH * 2], got_y[BATCH * 3];
    double want_x[BATCH * 2], want_y[BATCH * 3], got_m[BATCH * 3], want_m[BATCH * 3], t[BATCH * 3];
    gc_fill(z, BATCH * 3, -1, 1, 0, 51);
    gc_fill(x, BATCH * 2, -1, 1, 0, 52);
    gc_fill(y, BATCH * 3, -1, 1, 0, 53);
    kiln_brick *d = kiln_distribute_create(NULL, (const char *[]){"x", "y"}, 2, "z", (int64_t[]){2, 3}, 3, NULL);
    kiln_brick *m = kiln_merge_create(NULL, (const char *[]){"x", "z"}, 2, (int64_t[]){2, 3}, 3, NULL, NULL);
    ck_assert(d && m);
    fill_children(d, w, 15, 54);      /* W_x (3, 2), W_y (3, 3) */
    fill_children(m, w + 15, 15, 56); /* W_x (2, 3), W_z (3, 3) */
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node zn = batch_input(g, "z", 3), xn = batch_input(g, "x", 2), yn = batch_input(g, "y", 3), outs[3];
    call_apply(d, g, (kiln_node[]){zn, xn, yn}, 3, outs, 2);
    call_apply(m, g, (kiln_node[]){xn, zn}, 2, &outs[2], 1);
    gc_input in[] = {{"z", z}, {"x", x}, {"y", y}};
    run_forward("distribute, merge", g, outs, 3, in, 3, BATCH, (double *[]){got_x, got_y, got_m});
    ref_linear(z, BATCH, 3, w, NULL, 2, want_x);
    for (int i = 0; i < BATCH * 2; i++)
        want_x[i] += x[i];
    ref_linear(z, BATCH, 3, w + 6, NULL, 3, want_y);
    for (int i = 0; i < BATCH * 3; i++)
        want_y[i] += y[i];
    ref_linear(x, BATCH, 2, w + 15, NULL, 3, want_m);
    ref_linear(z, BATCH, 3, w + 21, NULL, 3, t);
    for (int i = 0; i < BATCH * 3; i++)
        want_m[i] += t[i];
    assert_close("distribute x", got_x, want_x, BATCH * 2);
    assert_close("distribute y", got_y, want_y, BATCH * 3);
    assert_close("merge", got_m, want_m, BATCH * 3);
    kiln_graph_destroy(g);
    kiln_brick_destroy(d);
    kiln_brick_destroy(m);
}
END_TEST

/* 0.5 * sum((out_k + 0.3)^2), summed over outs[0..n). */
static kiln_node half_square_costs(kiln_graph *g, const kiln_node *outs, int n)
{
    kiln_node c = half_square_cost(g, outs[0]);
    for (int k = 1; k < n; k++)
        c = kiln_expr_add(g, c, half_square_cost(g, outs[k]));
    ck_assert_msg(kiln_node_ok(c), "%s", kiln_graph_errmsg(g));
    return c;
}

START_TEST(fork_gradient_matches_finite_differences)
{
    double v[4 * 3 + 3 + 4 * 2 + 2], x[BATCH * 4];
    kiln_brick *fork = kiln_fork_create(NULL, (const char *[]){"y", "z"}, 2, 4, (int64_t[]){3, 2}, NULL);
    fill_children(fork, v, 25, 61);
    gc_fill(x, BATCH * 4, -1, 1, 0, 65);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node xn = batch_input(g, "x", 4), yz[2];
    call_apply(fork, g, &xn, 1, yz, 2);
    gc_input in[] = {{"x", x}};
    check_brick_gradient("fork", g, half_square_costs(g, yz, 2), &fork, 1, 4, in, 1, BATCH);
    kiln_graph_destroy(g);
    kiln_brick_destroy(fork);
}
END_TEST

/* An affine prototype: four parameters, two per copy. */
START_TEST(parallel_gradient_matches_finite_differences)
{
    double v[4 * 3 + 3 + 2 * 5 + 5], x[BATCH * 4], y[BATCH * 2];
    kiln_brick *p = kiln_parallel_create(NULL, (const char *[]){"x", "y"}, 2, (int64_t[]){4, 2}, (int64_t[]){3, 5},
                                         kiln_linear_create(NULL, 0, 0), NULL);
    ck_assert_ptr_nonnull(p);
    fill_children(p, v, 30, 71);
    gc_fill(x, BATCH * 4, -1, 1, 0, 75);
    gc_fill(y, BATCH * 2, -1, 1, 0, 76);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node xy[2] = {batch_input(g, "x", 4), batch_input(g, "y", 2)}, out[2];
    call_apply(p, g, xy, 2, out, 2);
    gc_input in[] = {{"x", x}, {"y", y}};
    check_brick_gradient("parallel", g, half_square_costs(g, out, 2), &p, 1, 4, in, 2, BATCH);
    kiln_graph_destroy(g);
    kiln_brick_destroy(p);
}
END_TEST

/* Blocks' advice for one bias: children[0].use_bias = True. */
START_TEST(merge_gradient_matches_finite_differences)
{
    double v[4 * 3 + 3 + 2 * 3 + 3 * 3], a[BATCH * 4], b[BATCH * 2], c[BATCH * 3];
    kiln_brick *m = kiln_merge_create(NULL, (const char *[]){"a", "b", "c"}, 3, (int64_t[]){4, 2, 3}, 3, NULL, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(kiln_brick_set_use_bias(kiln_brick_child(m, 0), true), KILN_OK);
    fill_children(m, v, 30, 81);
    ck_assert_int_eq(kiln_brick_param_count(kiln_brick_child(m, 0)), 2);
    gc_fill(a, BATCH * 4, -1, 1, 0, 85);
    gc_fill(b, BATCH * 2, -1, 1, 0, 86);
    gc_fill(c, BATCH * 3, -1, 1, 0, 87);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node abc[3] = {batch_input(g, "a", 4), batch_input(g, "b", 2), batch_input(g, "c", 3)}, out;
    call_apply(m, g, abc, 3, &out, 1);
    gc_input in[] = {{"a", a}, {"b", b}, {"c", c}};
    check_brick_gradient("merge", g, half_square_cost(g, out), &m, 1, 4, in, 3, BATCH);
    kiln_graph_destroy(g);
    kiln_brick_destroy(m);
}
END_TEST

/* Source and targets are free parameters too, so that the check covers
** d out / d target and d out / d source as well as the copies' W. */
START_TEST(distribute_gradient_matches_finite_differences)
{
    double v[3 * 2 + 3 * 3], vz[9], vx[6], vy[9];
    kiln_brick *d = kiln_distribute_create(NULL, (const char *[]){"x", "y"}, 2, "z", (int64_t[]){2, 3}, 3, NULL);
    ck_assert_ptr_nonnull(d);
    fill_children(d, v, 15, 91);
    kiln_param *z = kiln_param_create("Z", 2, (int64_t[]){3, 3}), *x = kiln_param_create("X", 2, (int64_t[]){3, 2});
    kiln_param *y = kiln_param_create("Y", 2, (int64_t[]){3, 3});
    gc_fill(vz, 9, -1, 1, 0, 95);
    gc_fill(vx, 6, -1, 1, 0, 96);
    gc_fill(vy, 9, -1, 1, 0, 97);
    ck_assert_int_eq(kiln_param_set_values(z, vz, 9), KILN_OK);
    ck_assert_int_eq(kiln_param_set_values(x, vx, 6), KILN_OK);
    ck_assert_int_eq(kiln_param_set_values(y, vy, 9), KILN_OK);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node params[5] = {kiln_graph_param(g, z), kiln_graph_param(g, x), kiln_graph_param(g, y)}, out[2];
    call_apply(d, g, params, 3, out, 2);
    int np = 3;
    collect_params(d, g, params, &np, 5);
    ck_assert_int_eq(np, 5);
    check_gradient("distribute", g, half_square_costs(g, out, 2), params, np, NULL, 0, 1);
    kiln_graph_destroy(g);
    kiln_brick_destroy(d);
    kiln_param_destroy(z);
    kiln_param_destroy(x);
    kiln_param_destroy(y);
}
END_TEST

/* ---- numerical stability -------------------------------------------------------------- */

/* softplus and sigmoid computed stably in float64 (exp of -|x| only). */
static double stable_softplus(double x) { return fmax(x, 0) + log1p(exp(-fabs(x))); }
static double stable_sigmoid(double x)
{
    double e = exp(-fabs(x));
    return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/* Blocks' recipe for binary targets, BinaryCrossEntropy on Logistic(Linear),
** gave an infinite or NaN cost and NaN gradients once a logit passed ~37 in
** float64 (~17 in float32): sigmoid rounds to 1 and log(1 - 1) = -inf (#9,
** item 6). The program graph now takes log(sigmoid(h)) as -softplus(-h) and
** log(1 - sigmoid(h)) as -softplus(h). For each logit h (one example, a
** Linear with W = 1 and b = 0, so h = x) and target y, the cost is
** softplus(h) - y h = y ? softplus(-h) : softplus(h), d/db = sigmoid(h) - y
** = y ? -sigmoid(-h) : sigmoid(h), d/dW = h d/db: each to 1e-12 relative in
** float64, to float32's precision in float32 (with a few of the smallest
** subnormals as the absolute floor, times h for d/dW: e^-100 is a subnormal
** in float32). */
START_TEST(regress_9_binary_cross_entropy_on_logistic_is_stable)
{
    static const double logits[] = {0,   1,    -1,   5,    -5,   17,   -17,  30,   -30,  37,    -37,  40,
                                    -40, 88,   -88,  100,  -100, 700,  -700, 710,  -710, 740,   -740, 1000,
                                    -1000, 1e4, -1e4};
    enum kiln_dtype dt = _i ? KILN_DTYPE_F32 : KILN_DTYPE_F64;
    double rel = _i ? 2e-6 : 1e-12, floor_abs = _i ? 4 * 0x1p-149 : 4 * 0x1p-1074;
    kiln_graph *g = kiln_graph_create(dt);
    kiln_brick *lin = kiln_linear_create(NULL, 1, 1), *lg = kiln_logistic_create(NULL);
    kiln_brick *bce = kiln_binary_cross_entropy_create(NULL);
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    ck_assert_int_eq(kiln_param_set_values(kiln_brick_param(lin, 0), (double[]){1}, 1), KILN_OK);
    ck_assert_int_eq(kiln_param_set_values(kiln_brick_param(lin, 1), (double[]){0}, 1), KILN_OK);
    kiln_node yn = kiln_graph_input(g, "y", dt, 2, (int64_t[]){KILN_BATCH, 1});
    kiln_node cost = cost_of(bce, g, yn, apply(lg, g, apply(lin, g, kiln_graph_input(g, "x", dt, 2,
                                                                                      (int64_t[]){KILN_BATCH, 1}))));
    kiln_node w = kiln_graph_param_node(g, kiln_brick_param(lin, 0)), b = kiln_graph_param_node(g, kiln_brick_param(lin, 1));
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "bce_logistic";
    o.cost = cost;
    o.step_rule = kiln_step_scale(0);
    o.max_batch = 1;
    double xd, yd;
    float xf, yf;
    gc_input in[] = {{"x", _i ? (const void *)&xf : (const void *)&xd}, {"y", _i ? (const void *)&yf : (const void *)&yd}};
    kiln_program *p = compile_ok("bce_logistic", g, &o, in, 2);
    for (size_t k = 0; k < sizeof logits / sizeof logits[0]; k++)
        for (int y = 0; y <= 1; y++) {
            double h = logits[k];
            xf = (float)(xd = h);
            yf = (float)(yd = y);
            double want[3], got[3];
            want[0] = y ? stable_softplus(-h) : stable_softplus(h);
            want[1] = y ? -stable_sigmoid(-h) : stable_sigmoid(h);
            want[2] = h * want[1];
            ck_assert_msg(kiln_program_gradients(p, 1) == KILN_OK, "%s", kiln_program_errmsg(p));
            ck_assert_int_eq(kiln_program_read_scalar(p, cost, &got[0]), KILN_OK);
            ck_assert_int_eq(kiln_program_read_gradient(p, b, &got[1], 1), KILN_OK);
            ck_assert_int_eq(kiln_program_read_gradient(p, w, &got[2], 1), KILN_OK);
            static const char *const what[] = {"cost", "d/db", "d/dW"};
            for (int q = 0; q < 3; q++)
                ck_assert_msg(isfinite(got[q]) &&
                                  fabs(got[q] - want[q]) <= rel * fabs(want[q]) + floor_abs * (q == 2 ? fmax(1, fabs(h)) : 1),
                              "%s, logit %g, target %d: %s is %.17g, want %.17g", kiln_dtype_name(dt), h, y, what[q],
                              got[q], want[q]);
        }
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_brick_destroy(lin);
    kiln_brick_destroy(lg);
    kiln_brick_destroy(bce);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------ */

static Suite *brick_values_suite(void)
{
    Suite *s = suite_create("brick_values");
    TCase *t = tcase_create("brick_values");
    tcase_set_timeout(t, 600);
    int n_act = (int)(sizeof ACT_CASES / sizeof ACT_CASES[0]);
    int n_mat = (int)(sizeof MATRIX_COSTS / sizeof MATRIX_COSTS[0]);
    tcase_add_test(t, linear_forward_is_x_w_plus_b);
    tcase_add_test(t, linear_gradient_matches_finite_differences);
    tcase_add_test(t, bias_forward_adds_b_to_each_row);
    tcase_add_test(t, bias_gradient_matches_finite_differences);
    tcase_add_loop_test(t, activation_forward_matches_reference, 0, n_act);
    tcase_add_loop_test(t, activation_gradient_matches_finite_differences, 0, n_act);
    tcase_add_test(t, softmax_log_probabilities_forward_is_log_softmax);
    tcase_add_test(t, softmax_log_probabilities_gradient_matches_finite_differences);
    tcase_add_test(t, softmax_categorical_cross_entropy_forward_is_per_row);
    tcase_add_test(t, softmax_categorical_cross_entropy_gradient_matches_finite_differences);
    tcase_add_test(t, sequence_forward_equals_children_in_order);
    tcase_add_test(t, sequence_gradient_matches_finite_differences);
    tcase_add_test(t, mlp_tanh_none_forward_and_children_match_hand_composition);
    tcase_add_test(t, mlp_tanh_none_gradient_matches_finite_differences);
    tcase_add_test(t, mlp_rectifier_softmax_forward_matches_reference);
    tcase_add_test(t, mlp_rectifier_softmax_gradient_matches_finite_differences);
    tcase_add_test(t, categorical_cross_entropy_forward_is_mean_neg_log_p);
    tcase_add_test(t, categorical_cross_entropy_gradient_matches_finite_differences);
    tcase_add_loop_test(t, matrix_cost_forward_sums_rows_then_averages, 0, n_mat);
    tcase_add_loop_test(t, matrix_cost_gradient_matches_finite_differences, 0, n_mat);
    tcase_add_test(t, misclassification_rate_counts_argmax_mistakes);
    tcase_add_loop_test(t, blocks_tutorial_initial_cost_is_near_ln_10, 0, 2);
    tcase_add_test(t, fork_example_13);
    tcase_add_test(t, distribute_example_13);
    tcase_add_test(t, merge_example_13);
    tcase_add_test(t, parallel_example_13);
    tcase_add_test(t, distribute_and_merge_forward_match_reference);
    tcase_add_test(t, fork_gradient_matches_finite_differences);
    tcase_add_test(t, parallel_gradient_matches_finite_differences);
    tcase_add_test(t, merge_gradient_matches_finite_differences);
    tcase_add_test(t, distribute_gradient_matches_finite_differences);
    tcase_add_loop_test(t, regress_9_binary_cross_entropy_on_logistic_is_stable, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return kiln_test_run(brick_values_suite());
}
