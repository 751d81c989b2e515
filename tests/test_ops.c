/* test_ops.c: every op, through the whole pipeline (graph, rewrites,
** autodiff, fusion, memory plan, C codegen, JIT), checked two ways:
**  - forward: the program's output against a reference computed here in
**    plain C, independently of kiln;
**  - backward: autodiff gradients against central differences (float64).
** A new op adds rows here (see the checklist in compiler/graph.h). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"

#define MAX_ARGS 3
#define BATCH 3
#define MAX_ELEMS 256

enum arg_kind { ARG_PARAM, ARG_BATCH_INPUT, ARG_INDEX };

typedef struct arg {
    enum arg_kind kind;
    int rank;
    int64_t dims[3]; /* for ARG_BATCH_INPUT, the dims after B; ARG_INDEX: dims[0] = index range */
    double lo, hi, gap;
} arg;

typedef struct op_case {
    const char *name;
    int n_args;
    arg args[MAX_ARGS];
    kiln_node (*build)(kiln_graph *g, const kiln_node *a);
    /* reference: a[k] are the argument values (indices as doubles), out the result */
    void (*ref)(const double *const *a, double *out);
    bool differentiable;
    double tol;
} op_case;

/* ---- references (plain C, row-major) ---------------------------------- */

#define EW1(NAME, EXPR) \
    static void NAME(const double *const *a, double *o) { for (int i = 0; i < 12; i++) { double x = a[0][i]; o[i] = (EXPR); } }
#define EW2(NAME, EXPR) \
    static void NAME(const double *const *a, double *o) { for (int i = 0; i < 12; i++) { double x = a[0][i], y = a[1][i]; o[i] = (EXPR); } }
EW2(r_add, x + y)
EW2(r_sub, x - y)
EW2(r_mul, x * y)
EW2(r_div, x / y)
EW2(r_pow, pow(x, y))
EW2(r_maximum, x >= y ? x : y)
EW1(r_neg, -x)
EW1(r_square, x * x)
EW1(r_sqrt, sqrt(x))
EW1(r_exp, exp(x))
EW1(r_log, log(x))
EW1(r_abs, fabs(x))
EW1(r_tanh, tanh(x))
EW1(r_sigmoid, 1 / (1 + exp(-x)))
EW1(r_softplus, log(1 + exp(x)))
EW1(r_relu, x > 0 ? x : 0)

static void r_add_row(const double *const *a, double *o)
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) o[i * 4 + j] = a[0][i * 4 + j] + a[1][j];
}
static void r_add_col(const double *const *a, double *o)
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) o[i * 4 + j] = a[0][i * 4 + j] * a[1][i];
}
static void r_sum0(const double *const *a, double *o)
{
    for (int j = 0; j < 4; j++) { o[j] = 0; for (int i = 0; i < 3; i++) o[j] += a[0][i * 4 + j]; }
}
static void r_sum1(const double *const *a, double *o)
{
    for (int i = 0; i < 3; i++) { o[i] = 0; for (int j = 0; j < 4; j++) o[i] += a[0][i * 4 + j]; }
}
static void r_sumall(const double *const *a, double *o) { o[0] = 0; for (int i = 0; i < 12; i++) o[0] += a[0][i]; }
static void r_mean1(const double *const *a, double *o) { r_sum1(a, o); for (int i = 0; i < 3; i++) o[i] /= 4; }
static void r_meanall(const double *const *a, double *o) { r_sumall(a, o); o[0] /= 12; }
static void r_max1(const double *const *a, double *o)
{
    for (int i = 0; i < 3; i++) { o[i] = a[0][i * 4]; for (int j = 1; j < 4; j++) o[i] = fmax(o[i], a[0][i * 4 + j]); }
}
static void r_maxall(const double *const *a, double *o) { o[0] = a[0][0]; for (int i = 1; i < 12; i++) o[0] = fmax(o[0], a[0][i]); }
static void r_matmul(const double *const *a, double *o) /* (3,4) x (4,5) */
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++) { o[i * 5 + j] = 0; for (int k = 0; k < 4; k++) o[i * 5 + j] += a[0][i * 4 + k] * a[1][k * 5 + j]; }
}
static void r_transpose(const double *const *a, double *o)
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) o[j * 3 + i] = a[0][i * 4 + j];
}
static void r_copy12(const double *const *a, double *o) { memcpy(o, a[0], 12 * sizeof *o); }
static void softmax_row(const double *x, double *y, int n)
{
    double m = x[0], s = 0;
    for (int j = 1; j < n; j++) m = fmax(m, x[j]);
    for (int j = 0; j < n; j++) s += exp(x[j] - m);
    for (int j = 0; j < n; j++) y[j] = exp(x[j] - m) / s;
}
static void r_softmax(const double *const *a, double *o) { for (int i = 0; i < 3; i++) softmax_row(a[0] + 5 * i, o + 5 * i, 5); }
static void r_log_softmax(const double *const *a, double *o)
{
    r_softmax(a, o);
    for (int i = 0; i < 15; i++) o[i] = log(o[i]);
}
static void r_pick(const double *const *a, double *o) { for (int i = 0; i < 3; i++) o[i] = a[0][i * 5 + (int)a[1][i]]; }
static void r_xent(const double *const *a, double *o)
{
    double p[5];
    for (int i = 0; i < 3; i++) { softmax_row(a[0] + 5 * i, p, 5); o[i] = -log(p[(int)a[1][i]]); }
}
static void r_xent_mean(const double *const *a, double *o)
{
    double r[3];
    r_xent(a, r);
    o[0] = (r[0] + r[1] + r[2]) / 3;
}
static void r_misclass(const double *const *a, double *o)
{
    o[0] = 0;
    for (int i = 0; i < 3; i++) {
        int best = 0;
        for (int j = 1; j < 5; j++) if (a[0][i * 5 + j] > a[0][i * 5 + best]) best = j;
        o[0] += best != (int)a[1][i];
    }
    o[0] /= 3;
}
static void r_batch_affine(const double *const *a, double *o) /* x (B,4) W (4,5) + b (5), then mean */
{
    o[0] = 0;
    for (int i = 0; i < BATCH; i++)
        for (int j = 0; j < 5; j++) {
            double v = a[2][j];
            for (int k = 0; k < 4; k++) v += a[0][i * 4 + k] * a[1][k * 5 + j];
            o[0] += tanh(v);
        }
    o[0] /= BATCH * 5;
}

/* ---- builders ---------------------------------------------------------------- */

static kiln_node b_add(kiln_graph *g, const kiln_node *a) { return kiln_expr_add(g, a[0], a[1]); }
static kiln_node b_sub(kiln_graph *g, const kiln_node *a) { return kiln_expr_sub(g, a[0], a[1]); }
static kiln_node b_mul(kiln_graph *g, const kiln_node *a) { return kiln_expr_mul(g, a[0], a[1]); }
static kiln_node b_div(kiln_graph *g, const kiln_node *a) { return kiln_expr_div(g, a[0], a[1]); }
static kiln_node b_pow(kiln_graph *g, const kiln_node *a) { return kiln_expr_pow(g, a[0], a[1]); }
static kiln_node b_maximum(kiln_graph *g, const kiln_node *a) { return kiln_expr_maximum(g, a[0], a[1]); }
static kiln_node b_neg(kiln_graph *g, const kiln_node *a) { return kiln_expr_neg(g, a[0]); }
static kiln_node b_square(kiln_graph *g, const kiln_node *a) { return kiln_expr_square(g, a[0]); }
static kiln_node b_sqrt(kiln_graph *g, const kiln_node *a) { return kiln_expr_sqrt(g, a[0]); }
static kiln_node b_exp(kiln_graph *g, const kiln_node *a) { return kiln_expr_exp(g, a[0]); }
static kiln_node b_log(kiln_graph *g, const kiln_node *a) { return kiln_expr_log(g, a[0]); }
static kiln_node b_abs(kiln_graph *g, const kiln_node *a) { return kiln_expr_abs(g, a[0]); }
static kiln_node b_tanh(kiln_graph *g, const kiln_node *a) { return kiln_expr_tanh(g, a[0]); }
static kiln_node b_sigmoid(kiln_graph *g, const kiln_node *a) { return kiln_expr_sigmoid(g, a[0]); }
static kiln_node b_softplus(kiln_graph *g, const kiln_node *a) { return kiln_expr_softplus(g, a[0]); }
static kiln_node b_relu(kiln_graph *g, const kiln_node *a) { return kiln_expr_relu(g, a[0]); }
static kiln_node b_sum0(kiln_graph *g, const kiln_node *a) { return kiln_expr_sum(g, a[0], 0); }
static kiln_node b_sum1(kiln_graph *g, const kiln_node *a) { return kiln_expr_sum(g, a[0], 1); }
static kiln_node b_sumall(kiln_graph *g, const kiln_node *a) { return kiln_expr_sum(g, a[0], KILN_ALL_AXES); }
static kiln_node b_mean1(kiln_graph *g, const kiln_node *a) { return kiln_expr_mean(g, a[0], 1); }
static kiln_node b_meanall(kiln_graph *g, const kiln_node *a) { return kiln_expr_mean(g, a[0], KILN_ALL_AXES); }
static kiln_node b_max1(kiln_graph *g, const kiln_node *a) { return kiln_expr_max(g, a[0], 1); }
static kiln_node b_maxall(kiln_graph *g, const kiln_node *a) { return kiln_expr_max(g, a[0], KILN_ALL_AXES); }
static kiln_node b_matmul(kiln_graph *g, const kiln_node *a) { return kiln_expr_matmul(g, a[0], a[1]); }
static kiln_node b_transpose(kiln_graph *g, const kiln_node *a) { return kiln_expr_transpose(g, a[0]); }
static kiln_node b_matmul_tt(kiln_graph *g, const kiln_node *a) /* (A^T)^T B via transposes folded into flags */
{
    return kiln_expr_matmul(g, kiln_expr_transpose(g, kiln_expr_transpose(g, a[0])), a[1]);
}
static kiln_node b_reshape(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_reshape(g, a[0], 2, (int64_t[]){2, 6});
}
static kiln_node b_flatten(kiln_graph *g, const kiln_node *a) { return kiln_expr_flatten(g, a[0], 2); }
static kiln_node b_softmax(kiln_graph *g, const kiln_node *a) { return kiln_expr_softmax(g, a[0]); }
static kiln_node b_log_softmax(kiln_graph *g, const kiln_node *a) { return kiln_expr_log_softmax(g, a[0]); }
static kiln_node b_pick(kiln_graph *g, const kiln_node *a) { return kiln_expr_pick(g, a[0], a[1]); }
static kiln_node b_xent_log_pick_softmax(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_neg(g, kiln_expr_log(g, kiln_expr_pick(g, kiln_expr_softmax(g, a[0]), a[1])));
}
static kiln_node b_xent_pick_log_softmax(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_mean(g, kiln_expr_neg(g, kiln_expr_pick(g, kiln_expr_log_softmax(g, a[0]), a[1])), 0);
}
static kiln_node b_misclass(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_mean(g, kiln_expr_not_equal(g, kiln_expr_argmax(g, a[0]), a[1]), KILN_ALL_AXES);
}
static kiln_node b_batch_affine(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_mean(g, kiln_expr_tanh(g, kiln_expr_add(g, kiln_expr_matmul(g, a[0], a[1]), a[2])), KILN_ALL_AXES);
}

#define P34(lo, hi, gap) {ARG_PARAM, 2, {3, 4}, lo, hi, gap}
#define P(r, d0, d1, d2, lo, hi) {ARG_PARAM, r, {d0, d1, d2}, lo, hi, 0}
#define X(d0, lo, hi) {ARG_BATCH_INPUT, 1, {d0}, lo, hi, 0}
#define IDX(k) {ARG_INDEX, 1, {k}, 0, 0, 0}
#define XPICK {ARG_BATCH_INPUT, 1, {5}, -2, 2, 0}

static const op_case OP_CASES[] = {
    /* name              args                                      build      ref         grad  tol */
    {"add", 2, {P34(-1, 1, 0), P34(-1, 1, 0)}, b_add, r_add, true, 1e-7},
    {"add_row_bcast", 2, {P34(-1, 1, 0), P(1, 4, 0, 0, -1, 1)}, b_add, r_add_row, true, 1e-7},
    {"mul_col_bcast", 2, {P34(-1, 1, 0), P(2, 3, 1, 0, -1, 1)}, b_mul, r_add_col, true, 1e-7},
    {"sub", 2, {P34(-1, 1, 0), P34(-1, 1, 0)}, b_sub, r_sub, true, 1e-7},
    {"mul", 2, {P34(-1, 1, 0), P34(-1, 1, 0)}, b_mul, r_mul, true, 1e-7},
    {"div", 2, {P34(-1, 1, 0), P34(0.5, 2, 0)}, b_div, r_div, true, 1e-7},
    {"pow", 2, {P34(0.5, 2, 0), P34(-1.5, 1.5, 0)}, b_pow, r_pow, true, 1e-7},
    {"maximum", 2, {P34(-1, 1, 0), P34(-1, 1, 0)}, b_maximum, r_maximum, true, 1e-7},
    {"neg", 1, {P34(-1, 1, 0)}, b_neg, r_neg, true, 1e-7},
    {"square", 1, {P34(-1, 1, 0)}, b_square, r_square, true, 1e-7},
    {"sqrt", 1, {P34(0.5, 2, 0)}, b_sqrt, r_sqrt, true, 1e-7},
    {"exp", 1, {P34(-1, 1, 0)}, b_exp, r_exp, true, 1e-7},
    {"log", 1, {P34(0.5, 2, 0)}, b_log, r_log, true, 1e-7},
    {"abs", 1, {P34(-1, 1, 0.1)}, b_abs, r_abs, true, 1e-7},
    {"tanh", 1, {P34(-2, 2, 0)}, b_tanh, r_tanh, true, 1e-7},
    {"sigmoid", 1, {P34(-3, 3, 0)}, b_sigmoid, r_sigmoid, true, 1e-7},
    {"softplus", 1, {P34(-3, 3, 0)}, b_softplus, r_softplus, true, 1e-7},
    {"relu", 1, {P34(-1, 1, 0.1)}, b_relu, r_relu, true, 1e-7},
    {"sum_axis0", 1, {P34(-1, 1, 0)}, b_sum0, r_sum0, true, 1e-7},
    {"sum_axis1", 1, {P34(-1, 1, 0)}, b_sum1, r_sum1, true, 1e-7},
    {"sum_all", 1, {P34(-1, 1, 0)}, b_sumall, r_sumall, true, 1e-7},
    {"mean_axis1", 1, {P34(-1, 1, 0)}, b_mean1, r_mean1, true, 1e-7},
    {"mean_all", 1, {P34(-1, 1, 0)}, b_meanall, r_meanall, true, 1e-7},
    {"max_axis1", 1, {P34(-1, 1, 0)}, b_max1, r_max1, true, 1e-7},
    {"max_all", 1, {P34(-1, 1, 0)}, b_maxall, r_maxall, true, 1e-7},
    {"matmul", 2, {P34(-1, 1, 0), P(2, 4, 5, 0, -1, 1)}, b_matmul, r_matmul, true, 1e-7},
    {"matmul_transposes", 2, {P34(-1, 1, 0), P(2, 4, 5, 0, -1, 1)}, b_matmul_tt, r_matmul, true, 1e-7},
    {"transpose", 1, {P34(-1, 1, 0)}, b_transpose, r_transpose, true, 1e-7},
    {"reshape", 1, {P34(-1, 1, 0)}, b_reshape, r_copy12, true, 1e-7},
    {"flatten", 1, {P(3, 2, 3, 2, -1, 1)}, b_flatten, r_copy12, true, 1e-7},
    {"softmax", 1, {P(2, 3, 5, 0, -2, 2)}, b_softmax, r_softmax, true, 1e-7},
    {"log_softmax", 1, {P(2, 3, 5, 0, -2, 2)}, b_log_softmax, r_log_softmax, true, 1e-7},
    {"pick", 2, {P(2, 3, 5, 0, -2, 2), IDX(5)}, b_pick, r_pick, true, 1e-7},
    {"xent_log_pick_softmax", 2, {P(2, 3, 5, 0, -2, 2), IDX(5)}, b_xent_log_pick_softmax, r_xent, true, 1e-7},
    {"xent_mean_pick_log_softmax", 2, {P(2, 3, 5, 0, -2, 2), IDX(5)}, b_xent_pick_log_softmax, r_xent_mean, true, 1e-7},
    {"misclassification", 2, {P(2, 3, 5, 0, -2, 2), IDX(5)}, b_misclass, r_misclass, false, 1e-12},
    {"batch_affine_tanh_mean", 3, {X(4, -1, 1), P(2, 4, 5, 0, -1, 1), P(1, 5, 0, 0, -1, 1)}, b_batch_affine,
     r_batch_affine, true, 1e-7},
};

/* ---- the runner ------------------------------------------------------------ */

typedef struct built {
    kiln_graph *g;
    kiln_param *params[MAX_ARGS];
    kiln_node args[MAX_ARGS], pnodes[MAX_ARGS];
    int n_pnodes;
    double values[MAX_ARGS][MAX_ELEMS];
    int32_t idx[BATCH];
    gc_input in[MAX_ARGS];
    int n_in;
    kiln_node out;
} built;

static void build_case(const op_case *c, built *b)
{
    memset(b, 0, sizeof *b);
    b->g = kiln_graph_create(KILN_DTYPE_F64);
    for (int k = 0; k < c->n_args; k++) {
        const arg *a = &c->args[k];
        char name[16];
        snprintf(name, sizeof name, "a%d", k);
        if (a->kind == ARG_PARAM) {
            int64_t n = 1;
            for (int d = 0; d < a->rank; d++) n *= a->dims[d];
            b->params[k] = kiln_param_create(name, a->rank, a->dims);
            ck_assert_ptr_nonnull(b->params[k]);
            gc_fill(b->values[k], n, a->lo, a->hi, a->gap, (unsigned)(k * 7 + 1));
            ck_assert_int_eq(kiln_param_set_values(b->params[k], b->values[k], n), KILN_OK);
            b->args[k] = b->pnodes[b->n_pnodes++] = kiln_graph_param(b->g, b->params[k]);
        } else if (a->kind == ARG_BATCH_INPUT) {
            gc_fill(b->values[k], BATCH * a->dims[0], a->lo, a->hi, a->gap, (unsigned)(k * 7 + 3));
            b->args[k] = kiln_graph_input(b->g, name, KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, a->dims[0]});
            b->in[b->n_in++] = (gc_input){kiln_graph_node_name(b->g, b->args[k]), b->values[k]};
        } else {
            for (int i = 0; i < BATCH; i++) {
                b->idx[i] = (int32_t)((i * 3 + 1) % a->dims[0]);
                b->values[k][i] = b->idx[i];
            }
            /* a fixed-size integer input: three rows, like the (3, k) params */
            b->args[k] = kiln_graph_input(b->g, name, KILN_DTYPE_I32, 1, (int64_t[]){BATCH});
            b->in[b->n_in++] = (gc_input){kiln_graph_node_name(b->g, b->args[k]), b->idx};
        }
    }
    b->out = c->build(b->g, b->args);
    ck_assert_msg(kiln_node_ok(b->out), "%s: build failed: %s", c->name, kiln_graph_errmsg(b->g));
}

static void free_case(built *b)
{
    kiln_graph_destroy(b->g);
    for (int k = 0; k < MAX_ARGS; k++) kiln_param_destroy(b->params[k]);
}

/* Batch-dim cases use batch BATCH; others have fixed shapes and batch 1. */
static int64_t case_batch(const op_case *c)
{
    for (int k = 0; k < c->n_args; k++)
        if (c->args[k].kind == ARG_BATCH_INPUT) return BATCH;
    return 1;
}

START_TEST(op_forward_matches_reference)
{
    const op_case *c = &OP_CASES[_i];
    built b;
    build_case(c, &b);
    /* shapes in these cases have at most BATCH rows of fixed size */
    int64_t n = 1;
    for (int d = 0; d < kiln_graph_node_rank(b.g, b.out); d++) {
        int64_t dim = kiln_graph_node_dim(b.g, b.out, d);
        n *= dim == KILN_BATCH ? BATCH : dim;
    }
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "op_forward";
    o.outputs = &b.out;
    o.n_outputs = 1;
    o.max_batch = 8;
    kiln_program *p;
    ck_assert_msg(kiln_compile(b.g, &o, &p) == KILN_OK, "%s: %s", c->name, kiln_program_errmsg(p));
    for (int i = 0; i < b.n_in; i++) ck_assert_int_eq(kiln_program_bind_input(p, b.in[i].name, b.in[i].data), KILN_OK);
    ck_assert_msg(kiln_program_forward(p, case_batch(c)) == KILN_OK, "%s: %s", c->name, kiln_program_errmsg(p));
    double got[MAX_ELEMS], want[MAX_ELEMS];
    ck_assert_msg(kiln_program_read(p, b.out, got, n) == KILN_OK, "%s: %s", c->name, kiln_program_errmsg(p));
    const double *vals[MAX_ARGS] = {b.values[0], b.values[1], b.values[2]};
    c->ref(vals, want);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-12 * fmax(1, fabs(want[i])), "%s[%lld]: got %.17g, want %.17g",
                      c->name, (long long)i, got[i], want[i]);
    kiln_program_destroy(p);
    free_case(&b);
}
END_TEST

START_TEST(op_gradient_matches_finite_differences)
{
    const op_case *c = &OP_CASES[_i];
    if (!c->differentiable)
        return;
    built b;
    build_case(c, &b);
    /* cost = 0.5 * sum((out + 0.3)^2): a gradient that differs per element */
    kiln_node cost = kiln_expr_mul(b.g, kiln_expr_constant(b.g, 0.5),
                                   kiln_expr_sum(b.g, kiln_expr_square(b.g, kiln_expr_add(b.g, b.out, kiln_expr_constant(b.g, 0.3))), KILN_ALL_AXES));
    ck_assert_msg(kiln_node_ok(cost), "%s: %s", c->name, kiln_graph_errmsg(b.g));
    char why[512];
    double err = gc_check(b.g, cost, b.pnodes, b.n_pnodes, b.in, b.n_in, case_batch(c), 1e-6, why, sizeof why);
    ck_assert_msg(err >= 0 && err <= c->tol, "%s: error %g (%s)", c->name, err, why);
    free_case(&b);
}
END_TEST

/* The analytic gradient against one known by hand: d/dw sum(w^2) = 2w. */
START_TEST(gradient_of_sum_of_squares_is_twice_w)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_param *w = kiln_param_create("w", 1, (int64_t[]){3});
    double v[3] = {0.5, -1, 2}, grad[3];
    kiln_param_set_values(w, v, 3);
    kiln_node wn = kiln_graph_param(g, w);
    kiln_node cost = kiln_expr_sum(g, kiln_expr_square(g, wn), KILN_ALL_AXES);
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = cost;
    kiln_program *p;
    ck_assert_int_eq(kiln_compile(g, &o, &p), KILN_OK);
    ck_assert_int_eq(kiln_program_gradients(p, 1), KILN_OK);
    ck_assert_int_eq(kiln_program_read_gradient(p, wn, grad, 3), KILN_OK);
    for (int i = 0; i < 3; i++) ck_assert_double_eq(grad[i], 2 * v[i]);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_param_destroy(w);
}
END_TEST

START_TEST(target_out_of_range_is_an_error_naming_the_input)
{
    built b;
    build_case(&OP_CASES[33], &b); /* xent_log_pick_softmax */
    kiln_node cost = kiln_expr_mean(b.g, b.out, KILN_ALL_AXES);
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = cost;
    o.max_batch = 4;
    kiln_program *p;
    ck_assert_int_eq(kiln_compile(b.g, &o, &p), KILN_OK);
    b.idx[1] = 9;
    kiln_program_bind_input(p, "a1", b.idx);
    ck_assert_int_eq(kiln_program_eval_step(p, BATCH), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(p), "a1: value 9 at row 1") != NULL, "%s", kiln_program_errmsg(p));
    kiln_program_destroy(p);
    free_case(&b);
}
END_TEST

/* A slice's count was (stop - start + step - 1) / step, which overflows
** for a huge step (a dim of 0 came out); a split's sizes were summed
** unchecked, so sizes that wrap around to the axis's length passed. */
START_TEST(regress_8_slice_and_split_sizes_do_not_overflow)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_param *w = kiln_param_create("w", 2, (int64_t[]){3, 5});
    kiln_node x = kiln_graph_param(g, w);
    kiln_node s = kiln_expr_slice(g, x, 1, 1, 5, INT64_MAX);
    ck_assert_msg(kiln_node_ok(s), "%s", kiln_graph_errmsg(g));
    ck_assert_int_eq(kiln_graph_node_dim(g, s, 1), 1);
    /* INT64_MAX + INT64_MAX + 7 wraps to 5, the axis's length */
    kiln_node t = kiln_expr_split(g, x, 1, 3, (int64_t[]){INT64_MAX, INT64_MAX, 7});
    ck_assert(!kiln_node_ok(t));
    ck_assert_int_eq(kiln_graph_status(g), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_graph_errmsg(g), "split of (3, 5) along axis 1: the sizes overflow at piece 1");
    kiln_graph_destroy(g);
    kiln_param_destroy(w);
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *t = tcase_create("ops");
    tcase_set_timeout(t, 600);
    int n = (int)(sizeof OP_CASES / sizeof OP_CASES[0]);
    tcase_add_loop_test(t, op_forward_matches_reference, 0, n);
    tcase_add_loop_test(t, op_gradient_matches_finite_differences, 0, n);
    tcase_add_test(t, gradient_of_sum_of_squares_is_twice_w);
    tcase_add_test(t, target_out_of_range_is_an_error_naming_the_input);
    tcase_add_test(t, regress_8_slice_and_split_sizes_do_not_overflow);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return kiln_test_run(ops_suite());
}
