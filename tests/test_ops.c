/* test_ops.c: every op, through the whole pipeline (graph, rewrites,
** autodiff, fusion, memory plan, C codegen, JIT), checked four ways:
**  - forward: the program's output against a reference computed here in
**    plain C, independently of kiln;
**  - backward: autodiff gradients against central differences (float64);
**  - the forward again in float32, with guard bytes after every stored
**    value (a kernel writing past its value fails the step);
**  - train_step with Scale moves each parameter by -lr times the gradient
**    that gradients() computes (float64 and float32, guard bytes).
** Shapes may hold symbols (KILN_BATCH, KILN_TIME, products from reshape):
** such rows run at B = BATCH and T = TIME, below the compiled maxima, so a
** step that used a maximum instead of the run-time size would fail.
** A new op adds rows here (see the checklist in compiler/graph.h). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"

#define MAX_ARGS 4
#define BATCH 3
#define MAX_BATCH 8 /* the compiled maximum: a step must use the run-time B */
#define TIME 4      /* the run-time T of rows with a time axis */
#define MAX_TIME 7  /* its compiled maximum */
#define MAX_ELEMS 256
#define ARG_RANK 4

/* ARG_PARAM: a parameter of constant dims, the gradient checked for it.
** ARG_BATCH_INPUT: a float input (B, dims[0]).
** ARG_INDEX: an int32 input (BATCH,) of values in [0, dims[0]).
** ARG_INPUT: a float input of any dims, symbols allowed (KILN_TIME, KILN_BATCH).
** ARG_INDICES: an int32 input of any dims, symbols allowed, values in [0, hi). */
enum arg_kind { ARG_PARAM, ARG_BATCH_INPUT, ARG_INDEX, ARG_INPUT, ARG_INDICES };

typedef struct arg {
    enum arg_kind kind;
    int rank;
    int64_t dims[ARG_RANK];
    double lo, hi, gap;
    double kink; /* > 0: values also at least gap away from -kink and kink (clip's bounds) */
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
    const char *shape; /* the output's shape as kiln prints dims, "(T*B, 5)"; NULL: not checked */
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

/* ---- references for the N-d rows ----------------------------------------
** Plain loops over row-major arrays, written from the ops' definitions
** (numpy's), sharing nothing with kiln. Rows with symbolic dims run at
** B = BATCH and T = TIME. */

static const int64_t D234[3] = {2, 3, 4};

static int64_t count_of(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int k = 0; k < rank; k++)
        n *= dims[k];
    return n;
}

static void unflat(int64_t i, int rank, const int64_t *dims, int64_t *ix)
{
    for (int k = rank - 1; k >= 0; k--) {
        ix[k] = i % dims[k];
        i /= dims[k];
    }
}

static int64_t flat(int rank, const int64_t *dims, const int64_t *ix)
{
    int64_t f = 0;
    for (int k = 0; k < rank; k++)
        f = f * dims[k] + ix[k];
    return f;
}

/* y = x * w, w broadcast along the last axis (f elements): a row's input
** times its parameter, so that gradients reach a parameter. */
static void scale_last(const double *x, int64_t n, const double *w, int64_t f, double *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * w[i % f];
}

enum red { RED_SUM, RED_MEAN, RED_MAX };

/* Reduce x (dims) over the axes in mask. */
static void ref_reduce(const double *x, int rank, const int64_t *dims, unsigned mask, enum red kind, double *o)
{
    int64_t odims[ARG_RANK], ix[ARG_RANK], oix[ARG_RANK];
    int orank = 0;
    for (int k = 0; k < rank; k++)
        if (!(mask >> k & 1))
            odims[orank++] = dims[k];
    int64_t no = count_of(orank, odims), nx = count_of(rank, dims);
    for (int64_t j = 0; j < no; j++)
        o[j] = kind == RED_MAX ? -INFINITY : 0;
    for (int64_t i = 0; i < nx; i++) {
        unflat(i, rank, dims, ix);
        int r = 0;
        for (int k = 0; k < rank; k++)
            if (!(mask >> k & 1))
                oix[r++] = ix[k];
        int64_t j = flat(orank, odims, oix);
        o[j] = kind == RED_MAX ? fmax(o[j], x[i]) : o[j] + x[i];
    }
    if (kind == RED_MEAN)
        for (int64_t j = 0; j < no; j++)
            o[j] /= (double)(nx / no);
}

/* Output axis k is x's axis perm[k]. */
static void ref_permute(const double *x, int rank, const int64_t *dims, const int *perm, double *o)
{
    int64_t odims[ARG_RANK], oix[ARG_RANK], ix[ARG_RANK];
    for (int k = 0; k < rank; k++)
        odims[k] = dims[perm[k]];
    for (int64_t j = 0; j < count_of(rank, dims); j++) {
        unflat(j, rank, odims, oix);
        for (int k = 0; k < rank; k++)
            ix[perm[k]] = oix[k];
        o[j] = x[flat(rank, dims, ix)];
    }
}

/* nb products op(A) (m, k) x op(B) (k, n); a_step, b_step: elements between
** one batch's matrix and the next (0: the same matrix for every batch). ta:
** A is stored (k, m); tb: B is stored (n, k). */
static void ref_matmul(const double *a, const double *b, double *o, int64_t nb, int64_t m, int64_t k, int64_t n,
                       int64_t a_step, int64_t b_step, bool ta, bool tb)
{
    for (int64_t q = 0; q < nb; q++) {
        const double *A = a + q * a_step, *Bm = b + q * b_step;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t p = 0; p < k; p++)
                    s += (ta ? A[p * m + i] : A[i * k + p]) * (tb ? Bm[j * k + p] : Bm[p * n + j]);
                o[(q * m + i) * n + j] = s;
            }
    }
}

/* Slice, reverse, concat on x viewed as (outer, len, inner). */
static void ref_slice(const double *x, int64_t outer, int64_t len, int64_t inner, int64_t start, int64_t step,
                      int64_t count, double *o)
{
    for (int64_t u = 0; u < outer; u++)
        for (int64_t k = 0; k < count; k++)
            for (int64_t i = 0; i < inner; i++)
                o[(u * count + k) * inner + i] = x[(u * len + start + k * step) * inner + i];
}

static void ref_reverse(const double *x, int64_t outer, int64_t len, int64_t inner, double *o)
{
    for (int64_t u = 0; u < outer; u++)
        for (int64_t k = 0; k < len; k++)
            for (int64_t i = 0; i < inner; i++)
                o[(u * len + k) * inner + i] = x[(u * len + len - 1 - k) * inner + i];
}

static void ref_concat(const double *const *parts, int n, const int64_t *lens, int64_t outer, int64_t inner,
                       double *o)
{
    int64_t total = 0;
    for (int p = 0; p < n; p++)
        total += lens[p];
    for (int64_t u = 0; u < outer; u++) {
        int64_t at = 0;
        for (int p = 0; p < n; p++) {
            for (int64_t k = 0; k < lens[p]; k++)
                for (int64_t i = 0; i < inner; i++)
                    o[(u * total + at + k) * inner + i] = parts[p][(u * lens[p] + k) * inner + i];
            at += lens[p];
        }
    }
}

/* Last-axis ops over rows of cols. */
enum rowop { ROW_SOFTMAX, ROW_LOG_SOFTMAX, ROW_ARGMAX };
static void ref_rows(const double *x, int64_t rows, int64_t cols, enum rowop op, double *o)
{
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = x + r * cols;
        if (op == ROW_ARGMAX) {
            int64_t best = 0;
            for (int64_t j = 1; j < cols; j++)
                if (xr[j] > xr[best])
                    best = j;
            o[r] = (double)best;
            continue;
        }
        softmax_row(xr, o + r * cols, (int)cols);
        if (op == ROW_LOG_SOFTMAX)
            for (int64_t j = 0; j < cols; j++)
                o[r * cols + j] = log(o[r * cols + j]);
    }
}

static void ref_pick(const double *x, const double *idx, int64_t rows, int64_t cols, double *o)
{
    for (int64_t r = 0; r < rows; r++)
        o[r] = x[r * cols + (int64_t)idx[r]];
}

/* -log softmax(x)[idx] per row. */
static void ref_xent(const double *x, const double *idx, int64_t rows, int64_t cols, double *o)
{
    double p[16];
    for (int64_t r = 0; r < rows; r++) {
        softmax_row(x + r * cols, p, (int)cols);
        o[r] = -log(p[(int64_t)idx[r]]);
    }
}

static void ref_gather(const double *table, const double *idx, int64_t n, int64_t inner, double *o)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < inner; i++)
            o[r * inner + i] = table[(int64_t)idx[r] * inner + i];
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
/* log/sigmoid compositions the builder rewrites to softplus (#9): the
** references are computed stably, so a program that took log(sigmoid(x))
** literally is -inf (or NaN) once sigmoid rounds to 0 or 1 */
static double stable_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
EW1(r_log_sigmoid, -stable_softplus(-x))
EW1(r_log_one_minus_sigmoid, -stable_softplus(x))
EW2(r_bce_logistic, (1 - y) * stable_softplus(x) + y * stable_softplus(-x))
static kiln_node b_log_sigmoid(kiln_graph *g, const kiln_node *a) { return kiln_expr_log(g, kiln_expr_sigmoid(g, a[0])); }
static kiln_node b_log_one_minus_sigmoid(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_log(g, kiln_expr_sub(g, kiln_expr_constant(g, 1), kiln_expr_sigmoid(g, a[0])));
}
static kiln_node b_log_one_plus_neg_sigmoid(kiln_graph *g, const kiln_node *a)
{
    kiln_node ns = kiln_expr_neg(g, kiln_expr_sigmoid(g, a[0]));
    return kiln_expr_log(g, kiln_expr_add(g, ns, kiln_expr_constant(g, 1)));
}
static kiln_node b_log_sigmoid_of_neg(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_log(g, kiln_expr_sigmoid(g, kiln_expr_neg(g, a[0])));
}
/* BinaryCrossEntropy's matrix on a Logistic output, soft targets y = a[1]:
** -(y log(s) + (1 - y) log(1 - s)), s = sigmoid(x), as bricks_cost.c builds it */
static kiln_node b_bce_logistic(kiln_graph *g, const kiln_node *a)
{
    kiln_node one = kiln_expr_constant(g, 1), s = kiln_expr_sigmoid(g, a[0]);
    kiln_node pos = kiln_expr_mul(g, a[1], kiln_expr_log(g, s));
    kiln_node neg = kiln_expr_mul(g, kiln_expr_sub(g, one, a[1]), kiln_expr_log(g, kiln_expr_sub(g, one, s)));
    return kiln_expr_neg(g, kiln_expr_add(g, pos, neg));
}
/* -log(pick(sigmoid(x), y)): CategoricalCrossEntropy on a Logistic output */
static kiln_node b_neg_log_pick_sigmoid(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_neg(g, kiln_expr_log(g, kiln_expr_pick(g, kiln_expr_sigmoid(g, a[0]), a[1])));
}
static void r_neg_log_pick_sigmoid(const double *const *a, double *o)
{
    for (int i = 0; i < 3; i++) o[i] = stable_softplus(-a[0][i * 5 + (int)a[1][i]]);
}
static kiln_node b_batch_affine(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_mean(g, kiln_expr_tanh(g, kiln_expr_add(g, kiln_expr_matmul(g, a[0], a[1]), a[2])), KILN_ALL_AXES);
}

/* ---- N-d rows: references and builders ------------------------------------ */

/* elementwise */
EW2(r_minimum, x <= y ? x : y)
EW1(r_sign, (double)((x > 0) - (x < 0)))
EW1(r_clip, x < -0.5 ? -0.5 : x > 0.5 ? 0.5 : x)
EW1(r_trunc, trunc(x))
static kiln_node b_minimum(kiln_graph *g, const kiln_node *a) { return kiln_expr_minimum(g, a[0], a[1]); }
static kiln_node b_sign(kiln_graph *g, const kiln_node *a) { return kiln_expr_sign(g, a[0]); }
static kiln_node b_clip(kiln_graph *g, const kiln_node *a) { return kiln_expr_clip(g, a[0], -0.5, 0.5); }
static kiln_node b_cast_i32(kiln_graph *g, const kiln_node *a) { return kiln_expr_cast(g, a[0], KILN_DTYPE_I32); }
static kiln_node b_cast_float(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_cast(g, a[0], kiln_graph_floatx(g));
}
static kiln_node b_mul_cast(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_mul(g, a[0], kiln_expr_cast(g, a[1], kiln_graph_floatx(g)));
}

/* comparisons of a (3, 4) and a (4) broadcast over its rows */
#define CMP_ROW(NAME, FN, EXPR)                                                                 \
    static kiln_node b_##NAME(kiln_graph *g, const kiln_node *a) { return FN(g, a[0], a[1]); } \
    static void r_##NAME(const double *const *a, double *o)                                    \
    {                                                                                          \
        for (int i = 0; i < 12; i++) {                                                         \
            double x = a[0][i], y = a[1][i % 4];                                               \
            o[i] = (EXPR);                                                                     \
        }                                                                                      \
    }
CMP_ROW(greater, kiln_expr_greater, x > y)
CMP_ROW(greater_equal, kiln_expr_greater_equal, x >= y)
CMP_ROW(less, kiln_expr_less, x < y)
CMP_ROW(less_equal, kiln_expr_less_equal, x <= y)
CMP_ROW(equal, kiln_expr_equal, x == y)
CMP_ROW(not_equal, kiln_expr_not_equal, x != y)

/* x == its row's maximum: floats compared, a one-hot of the argmax */
static kiln_node b_equal_rowmax(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_equal(g, a[0], kiln_expr_reshape(g, kiln_expr_max(g, a[0], 1), 2, (int64_t[]){3, 1}));
}
static void r_equal_rowmax(const double *const *a, double *o)
{
    double m[3];
    r_max1(a, m);
    for (int i = 0; i < 12; i++) o[i] = a[0][i] == m[i / 4];
}

/* select(cond (3, 1), a (3, 4), b (4)) */
static kiln_node b_select(kiln_graph *g, const kiln_node *a) { return kiln_expr_select(g, a[0], a[1], a[2]); }
static void r_select(const double *const *a, double *o)
{
    for (int i = 0; i < 12; i++) o[i] = a[0][i / 4] != 0 ? a[1][i] : a[2][i % 4];
}
static kiln_node b_select_greater(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_select(g, kiln_expr_greater(g, a[0], a[1]), a[0], a[1]);
}

/* reductions of a (2, 3, 4) over the axes of a mask */
#define REDUCE_ROW(NAME, FN, KIND, MASK)                                                             \
    static kiln_node b_##NAME(kiln_graph *g, const kiln_node *a) { return FN(g, a[0], MASK); }     \
    static void r_##NAME(const double *const *a, double *o) { ref_reduce(a[0], 3, D234, MASK, KIND, o); }
REDUCE_ROW(sum_axes_0, kiln_expr_sum_axes, RED_SUM, 1u)
REDUCE_ROW(sum_axes_1, kiln_expr_sum_axes, RED_SUM, 2u)
REDUCE_ROW(sum_axes_2, kiln_expr_sum_axes, RED_SUM, 4u)
REDUCE_ROW(sum_axes_01, kiln_expr_sum_axes, RED_SUM, 3u)
REDUCE_ROW(sum_axes_02, kiln_expr_sum_axes, RED_SUM, 5u)
REDUCE_ROW(sum_axes_12, kiln_expr_sum_axes, RED_SUM, 6u)
REDUCE_ROW(sum_axes_012, kiln_expr_sum_axes, RED_SUM, 7u)
REDUCE_ROW(mean_axes_1, kiln_expr_mean_axes, RED_MEAN, 2u)
REDUCE_ROW(mean_axes_02, kiln_expr_mean_axes, RED_MEAN, 5u)
REDUCE_ROW(mean_axes_012, kiln_expr_mean_axes, RED_MEAN, 7u)
REDUCE_ROW(max_axes_0, kiln_expr_max_axes, RED_MAX, 1u)
REDUCE_ROW(max_axes_02, kiln_expr_max_axes, RED_MAX, 5u)
REDUCE_ROW(max_axes_12, kiln_expr_max_axes, RED_MAX, 6u)
REDUCE_ROW(max_axes_012, kiln_expr_max_axes, RED_MAX, 7u)

/* Rows over a sequence batch x (T, B, f) of inputs times a parameter w (f)
** (or (1, f)): y = x * w, then the op. */
static kiln_node xw(kiln_graph *g, const kiln_node *a) { return kiln_expr_mul(g, a[0], a[1]); }
static void ref_xw(const double *const *a, int64_t f, double *y) { scale_last(a[0], TIME * BATCH * f, a[1], f, y); }
static const int64_t TB4[3] = {TIME, BATCH, 4};

#define SEQ_REDUCE_ROW(NAME, FN, KIND, MASK)                                                           \
    static kiln_node b_##NAME(kiln_graph *g, const kiln_node *a) { return FN(g, xw(g, a), MASK); }   \
    static void r_##NAME(const double *const *a, double *o)                                           \
    {                                                                                                 \
        double y[MAX_ELEMS];                                                                          \
        ref_xw(a, 4, y);                                                                              \
        ref_reduce(y, 3, TB4, MASK, KIND, o);                                                         \
    }
SEQ_REDUCE_ROW(seq_sum_t, kiln_expr_sum_axes, RED_SUM, 1u)
SEQ_REDUCE_ROW(seq_mean_t, kiln_expr_mean_axes, RED_MEAN, 1u)
SEQ_REDUCE_ROW(seq_mean_b, kiln_expr_mean_axes, RED_MEAN, 2u)
SEQ_REDUCE_ROW(seq_mean_tb, kiln_expr_mean_axes, RED_MEAN, 3u)
SEQ_REDUCE_ROW(seq_mean_all, kiln_expr_mean_axes, RED_MEAN, 7u)
SEQ_REDUCE_ROW(seq_max_t, kiln_expr_max_axes, RED_MAX, 1u)

/* permute and transpose */
#define PERMUTE_ROW(NAME, P0, P1, P2)                                                                  \
    static kiln_node b_##NAME(kiln_graph *g, const kiln_node *a)                                     \
    {                                                                                                 \
        return kiln_expr_permute(g, a[0], 3, (int[]){P0, P1, P2});                                    \
    }                                                                                                 \
    static void r_##NAME(const double *const *a, double *o) { ref_permute(a[0], 3, D234, (int[]){P0, P1, P2}, o); }
PERMUTE_ROW(permute_120, 1, 2, 0)
PERMUTE_ROW(permute_201, 2, 0, 1)
PERMUTE_ROW(permute_021, 0, 2, 1)
PERMUTE_ROW(permute_102, 1, 0, 2)
PERMUTE_ROW(permute_210, 2, 1, 0)
static void r_transpose3(const double *const *a, double *o) { ref_permute(a[0], 3, D234, (int[]){2, 1, 0}, o); }
static void r_transpose4(const double *const *a, double *o)
{
    ref_permute(a[0], 4, (int64_t[]){2, 3, 1, 4}, (int[]){3, 2, 1, 0}, o);
}
static kiln_node b_seq_permute(kiln_graph *g, const kiln_node *a) { return kiln_expr_permute(g, xw(g, a), 3, (int[]){1, 0, 2}); }
static void r_seq_permute(const double *const *a, double *o)
{
    double y[MAX_ELEMS];
    ref_xw(a, 4, y);
    ref_permute(y, 3, TB4, (int[]){1, 0, 2}, o);
}

/* batched products */
static kiln_node b_matmul_ta(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_matmul(g, kiln_expr_transpose(g, a[0]), a[1]);
}
static kiln_node b_matmul_tb(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_matmul(g, a[0], kiln_expr_transpose(g, a[1]));
}
static kiln_node b_matmul_last2(kiln_graph *g, const kiln_node *a) /* both operands' last two axes swapped */
{
    return kiln_expr_matmul(g, kiln_expr_permute(g, a[0], 3, (int[]){0, 2, 1}),
                            kiln_expr_permute(g, a[1], 3, (int[]){0, 2, 1}));
}
static void r_bmm_33(const double *const *a, double *o) { ref_matmul(a[0], a[1], o, 2, 3, 4, 5, 12, 20, false, false); }
static void r_bmm_32(const double *const *a, double *o) { ref_matmul(a[0], a[1], o, 2, 3, 4, 5, 12, 0, false, false); }
static void r_bmm_32t(const double *const *a, double *o) { ref_matmul(a[0], a[1], o, 2, 3, 4, 5, 12, 0, false, true); }
static void r_bmm_23(const double *const *a, double *o) { ref_matmul(a[0], a[1], o, 2, 3, 4, 5, 0, 20, false, false); }
static void r_bmm_2t3(const double *const *a, double *o) { ref_matmul(a[0], a[1], o, 2, 3, 4, 5, 0, 20, true, false); }
static void r_bmm_3t3t(const double *const *a, double *o) { ref_matmul(a[0], a[1], o, 2, 3, 4, 5, 12, 20, true, true); }
static void r_bmm_44(const double *const *a, double *o) { ref_matmul(a[0], a[1], o, 4, 3, 4, 5, 12, 20, false, false); }
static void r_bmm_42(const double *const *a, double *o) { ref_matmul(a[0], a[1], o, 4, 3, 4, 5, 12, 0, false, false); }
/* x (T, B, 4) x W (4, 5): the input projection of a sequence, one GEMM */
static void r_seq_proj(const double *const *a, double *o)
{
    ref_matmul(a[0], a[1], o, 1, TIME * BATCH, 4, 5, 0, 0, false, false);
}
/* W (3, 4) x x (B, 4, 5) */
static void r_bmm_w_xb(const double *const *a, double *o)
{
    ref_matmul(a[0], a[1], o, BATCH, 3, 4, 5, 0, 20, false, false);
}
/* (x (B, 3, 4) * w (1, 4)) x (y (B, 4, 5) * v (1, 5)): both sides batched over B */
static kiln_node b_bmm_xb_yb(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_matmul(g, kiln_expr_mul(g, a[0], a[1]), kiln_expr_mul(g, a[2], a[3]));
}
static void r_bmm_xb_yb(const double *const *a, double *o)
{
    double x[MAX_ELEMS], y[MAX_ELEMS];
    scale_last(a[0], BATCH * 12, a[1], 4, x);
    scale_last(a[2], BATCH * 20, a[3], 5, y);
    ref_matmul(x, y, o, BATCH, 3, 4, 5, 12, 20, false, false);
}

/* reshape and flatten */
static void r_copy24(const double *const *a, double *o) { memcpy(o, a[0], 24 * sizeof *o); }
static kiln_node b_reshape_infer_last(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_reshape(g, a[0], 2, (int64_t[]){4, KILN_INFER});
}
static kiln_node b_reshape_infer_first(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_reshape(g, a[0], 3, (int64_t[]){KILN_INFER, 2, 2});
}
static void r_seq_xw5(const double *const *a, double *o) { ref_xw(a, 5, o); }
static void r_seq_xw4(const double *const *a, double *o) { ref_xw(a, 4, o); }
/* Theano's flatten keeps the first axis: (T, B, 5) -> (T, B*5) */
static kiln_node b_seq_flatten(kiln_graph *g, const kiln_node *a) { return kiln_expr_flatten(g, xw(g, a), 2); }
/* (T, B, f) -> (T*B, f): time and batch folded into rows */
static kiln_node fold_tb(kiln_graph *g, kiln_node x, int64_t f)
{
    return kiln_expr_reshape(g, x, 2, (int64_t[]){KILN_INFER, f});
}
static kiln_node b_seq_fold(kiln_graph *g, const kiln_node *a) { return fold_tb(g, xw(g, a), 5); }
static kiln_node b_seq_reshape_infer(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_reshape(g, xw(g, a), 1, (int64_t[]){KILN_INFER});
}
/* (T, B, 4) -> (T*B, 4) x W (4, 3) -> (T, B, 3) */
static kiln_node b_seq_unflatten(kiln_graph *g, const kiln_node *a)
{
    kiln_node h = kiln_expr_matmul(g, fold_tb(g, a[0], 4), a[1]);
    return kiln_expr_reshape(g, h, 3, (int64_t[]){KILN_TIME, KILN_BATCH, 3});
}
static void r_seq_unflatten(const double *const *a, double *o)
{
    ref_matmul(a[0], a[1], o, 1, TIME * BATCH, 4, 3, 0, 0, false, false);
}
/* tanh on the folded (T*B, 4) view, then back to (T, B, 4) */
static kiln_node b_seq_flat_tanh(kiln_graph *g, const kiln_node *a)
{
    kiln_node h = kiln_expr_tanh(g, fold_tb(g, xw(g, a), 4));
    return kiln_expr_reshape(g, h, 3, (int64_t[]){KILN_TIME, KILN_BATCH, 4});
}
static void r_seq_flat_tanh(const double *const *a, double *o)
{
    ref_xw(a, 4, o);
    for (int i = 0; i < TIME * BATCH * 4; i++) o[i] = tanh(o[i]);
}

/* slices of a (4, 5, 6) */
#define SLICE_ROW(NAME, AXIS, START, STOP, STEP, OUTER, LEN, INNER, COUNT)                             \
    static kiln_node b_##NAME(kiln_graph *g, const kiln_node *a)                                     \
    {                                                                                                 \
        return kiln_expr_slice(g, a[0], AXIS, START, STOP, STEP);                                     \
    }                                                                                                 \
    static void r_##NAME(const double *const *a, double *o)                                           \
    {                                                                                                 \
        ref_slice(a[0], OUTER, LEN, INNER, START, STEP, COUNT, o);                                    \
    }
SLICE_ROW(slice_axis0, 0, 1, 3, 1, 1, 4, 30, 2)
SLICE_ROW(slice_axis0_step2, 0, 0, 4, 2, 1, 4, 30, 2)
SLICE_ROW(slice_axis1, 1, 1, 4, 1, 4, 5, 6, 3)
SLICE_ROW(slice_axis1_step2, 1, 1, 5, 2, 4, 5, 6, 2)
SLICE_ROW(slice_axis2, 2, 2, 5, 1, 20, 6, 1, 3)
SLICE_ROW(slice_axis2_step2, 2, 1, 6, 2, 20, 6, 1, 3)
SLICE_ROW(slice_axis2_stop_past_end, 2, 0, 99, 4, 20, 6, 1, 2)
SLICE_ROW(slice_axis1_huge_step, 1, 1, 5, INT64_MAX, 4, 5, 6, 1)
static kiln_node b_seq_slice(kiln_graph *g, const kiln_node *a) { return kiln_expr_slice(g, xw(g, a), 2, 1, 6, 2); }
static void r_seq_slice(const double *const *a, double *o)
{
    double y[MAX_ELEMS];
    ref_xw(a, 6, y);
    ref_slice(y, TIME * BATCH, 6, 1, 1, 2, 3, o);
}

/* concat */
static kiln_node b_concat2_0(kiln_graph *g, const kiln_node *a) { return kiln_expr_concat(g, a, 2, 0); }
static kiln_node b_concat3_0(kiln_graph *g, const kiln_node *a) { return kiln_expr_concat(g, a, 3, 0); }
static kiln_node b_concat2_1(kiln_graph *g, const kiln_node *a) { return kiln_expr_concat(g, a, 2, 1); }
static kiln_node b_concat3_1(kiln_graph *g, const kiln_node *a) { return kiln_expr_concat(g, a, 3, 1); }
static kiln_node b_concat2_2(kiln_graph *g, const kiln_node *a) { return kiln_expr_concat(g, a, 2, 2); }
static void r_concat2_0(const double *const *a, double *o) { ref_concat(a, 2, (int64_t[]){2, 1}, 1, 12, o); }
static void r_concat3_0(const double *const *a, double *o) { ref_concat(a, 3, (int64_t[]){1, 2, 1}, 1, 12, o); }
static void r_concat2_1(const double *const *a, double *o) { ref_concat(a, 2, (int64_t[]){3, 1}, 2, 4, o); }
static void r_concat3_1(const double *const *a, double *o) { ref_concat(a, 3, (int64_t[]){1, 2, 1}, 2, 4, o); }
static void r_concat2_2(const double *const *a, double *o) { ref_concat(a, 2, (int64_t[]){4, 2}, 6, 1, o); }
/* [y, tanh(y)] along the features of y = x * w (T, B, 3) */
static kiln_node b_seq_concat(kiln_graph *g, const kiln_node *a)
{
    kiln_node y = xw(g, a);
    return kiln_expr_concat(g, (kiln_node[]){y, kiln_expr_tanh(g, y)}, 2, 2);
}
static void r_seq_concat(const double *const *a, double *o)
{
    double y[MAX_ELEMS], t[MAX_ELEMS];
    ref_xw(a, 3, y);
    for (int i = 0; i < TIME * BATCH * 3; i++) t[i] = tanh(y[i]);
    ref_concat((const double *[]){y, t}, 2, (int64_t[]){3, 3}, TIME * BATCH, 1, o);
}

/* reverse */
#define REVERSE_ROW(NAME, AXIS, OUTER, LEN, INNER)                                                     \
    static kiln_node b_##NAME(kiln_graph *g, const kiln_node *a) { return kiln_expr_reverse(g, a[0], AXIS); } \
    static void r_##NAME(const double *const *a, double *o) { ref_reverse(a[0], OUTER, LEN, INNER, o); }
REVERSE_ROW(reverse_axis0, 0, 1, 2, 12)
REVERSE_ROW(reverse_axis1, 1, 2, 3, 4)
REVERSE_ROW(reverse_axis2, 2, 6, 4, 1)
static kiln_node b_seq_reverse_t(kiln_graph *g, const kiln_node *a) { return kiln_expr_reverse(g, xw(g, a), 0); }
static kiln_node b_seq_reverse_b(kiln_graph *g, const kiln_node *a) { return kiln_expr_reverse(g, xw(g, a), 1); }
static void r_seq_reverse_t(const double *const *a, double *o)
{
    double y[MAX_ELEMS];
    ref_xw(a, 4, y);
    ref_reverse(y, 1, TIME, BATCH * 4, o);
}
static void r_seq_reverse_b(const double *const *a, double *o)
{
    double y[MAX_ELEMS];
    ref_xw(a, 4, y);
    ref_reverse(y, TIME, BATCH, 4, o);
}

/* split: (2, 6, 3) along axis 1 into 1, 2, 3; the cost reads some pieces */
static kiln_node split_163(kiln_graph *g, kiln_node x) { return kiln_expr_split(g, x, 1, 3, (int64_t[]){1, 2, 3}); }
static kiln_node b_split_ends(kiln_graph *g, const kiln_node *a) /* [piece 2, piece 0]: piece 1 unused */
{
    kiln_node s = split_163(g, a[0]);
    return kiln_expr_concat(g, (kiln_node[]){kiln_expr_output(g, s, 2), kiln_expr_output(g, s, 0)}, 2, 1);
}
static void r_split_ends(const double *const *a, double *o)
{
    double p0[MAX_ELEMS], p2[MAX_ELEMS];
    ref_slice(a[0], 2, 6, 3, 0, 1, 1, p0);
    ref_slice(a[0], 2, 6, 3, 3, 1, 3, p2);
    ref_concat((const double *[]){p2, p0}, 2, (int64_t[]){3, 1}, 2, 3, o);
}
static kiln_node b_split_middle(kiln_graph *g, const kiln_node *a) { return kiln_expr_output(g, split_163(g, a[0]), 1); }
static void r_split_middle(const double *const *a, double *o) { ref_slice(a[0], 2, 6, 3, 1, 1, 2, o); }
/* (3, 2, 4) along axis 0 into 1, 1, 1: piece 0 + piece 2 */
static kiln_node b_split_axis0(kiln_graph *g, const kiln_node *a)
{
    kiln_node s = kiln_expr_split(g, a[0], 0, 3, (int64_t[]){1, 1, 1});
    return kiln_expr_add(g, kiln_expr_output(g, s, 0), kiln_expr_output(g, s, 2));
}
static void r_split_axis0(const double *const *a, double *o)
{
    for (int i = 0; i < 8; i++) o[i] = a[0][i] + a[0][16 + i];
}
/* y = x * w (T, B, 6) along the features into 2, 4: the second */
static kiln_node b_seq_split(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_output(g, kiln_expr_split(g, xw(g, a), 2, 2, (int64_t[]){2, 4}), 1);
}
static void r_seq_split(const double *const *a, double *o)
{
    double y[MAX_ELEMS];
    ref_xw(a, 6, y);
    ref_slice(y, TIME * BATCH, 6, 1, 2, 1, 4, o);
}

/* last-axis ops of a (2, 3, 5), and of y = x * w (T, B, 5) */
static void r_softmax3(const double *const *a, double *o) { ref_rows(a[0], 6, 5, ROW_SOFTMAX, o); }
static void r_log_softmax3(const double *const *a, double *o) { ref_rows(a[0], 6, 5, ROW_LOG_SOFTMAX, o); }
static void r_argmax3(const double *const *a, double *o) { ref_rows(a[0], 6, 5, ROW_ARGMAX, o); }
static void r_pick3(const double *const *a, double *o) { ref_pick(a[0], a[1], 6, 5, o); }
static void r_xent3(const double *const *a, double *o) { ref_xent(a[0], a[1], 6, 5, o); }
static kiln_node b_argmax(kiln_graph *g, const kiln_node *a) { return kiln_expr_argmax(g, a[0]); }
static kiln_node b_xent_neg_pick_log_softmax(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_neg(g, kiln_expr_pick(g, kiln_expr_log_softmax(g, a[0]), a[1]));
}
static kiln_node b_seq_softmax(kiln_graph *g, const kiln_node *a) { return kiln_expr_softmax(g, xw(g, a)); }
static kiln_node b_seq_argmax(kiln_graph *g, const kiln_node *a) { return kiln_expr_argmax(g, xw(g, a)); }
static void r_seq_softmax(const double *const *a, double *o)
{
    double y[MAX_ELEMS];
    ref_xw(a, 5, y);
    ref_rows(y, TIME * BATCH, 5, ROW_SOFTMAX, o);
}
static void r_seq_argmax(const double *const *a, double *o)
{
    double y[MAX_ELEMS];
    ref_xw(a, 5, y);
    ref_rows(y, TIME * BATCH, 5, ROW_ARGMAX, o);
}
/* a sequence classifier's cost: mean over T and B of -log softmax(y)[target] */
static kiln_node b_seq_xent_mean(kiln_graph *g, const kiln_node *a)
{
    kiln_node lp = kiln_expr_log_softmax(g, xw(g, a));
    return kiln_expr_mean(g, kiln_expr_neg(g, kiln_expr_pick(g, lp, a[2])), KILN_ALL_AXES);
}
static void r_seq_xent_mean(const double *const *a, double *o)
{
    double y[MAX_ELEMS], c[MAX_ELEMS];
    ref_xw(a, 5, y);
    ref_xent(y, a[2], TIME * BATCH, 5, c);
    o[0] = 0;
    for (int i = 0; i < TIME * BATCH; i++) o[0] += c[i];
    o[0] /= TIME * BATCH;
}

/* gather: rows of a table */
static kiln_node b_gather(kiln_graph *g, const kiln_node *a) { return kiln_expr_gather(g, a[0], a[1]); }
static void r_gather_b4(const double *const *a, double *o) { ref_gather(a[0], a[1], BATCH * 4, 3, o); }
static void r_gather_3d(const double *const *a, double *o) { ref_gather(a[0], a[1], 3, 6, o); }
/* an embedding and its projection: table (6, 4) by idx (T, B), times W (4, 3) */
static kiln_node b_seq_embed(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_matmul(g, kiln_expr_gather(g, a[0], a[1]), a[2]);
}
static void r_seq_embed(const double *const *a, double *o)
{
    double e[MAX_ELEMS];
    ref_gather(a[0], a[1], TIME * BATCH, 4, e);
    ref_matmul(e, a[2], o, 1, TIME * BATCH, 4, 3, 0, 0, false, false);
}

/* broadcasting against symbolic dims */
static void r_batch_xw(const double *const *a, double *o) { scale_last(a[0], BATCH * 4, a[1], 4, o); }
static kiln_node b_seq_add(kiln_graph *g, const kiln_node *a) { return kiln_expr_add(g, a[0], a[1]); }
static void r_seq_add(const double *const *a, double *o)
{
    for (int i = 0; i < TIME * BATCH * 4; i++) o[i] = a[0][i] + a[1][i % 4];
}
/* x (T, 1, 4) * w (4) + z (1, B, 4): both operands broadcast, along symbols */
static kiln_node b_add_t1f_1bf(kiln_graph *g, const kiln_node *a) { return kiln_expr_add(g, xw(g, a), a[2]); }
static void r_add_t1f_1bf(const double *const *a, double *o)
{
    for (int t = 0; t < TIME; t++)
        for (int b = 0; b < BATCH; b++)
            for (int f = 0; f < 4; f++) o[(t * BATCH + b) * 4 + f] = a[0][t * 4 + f] * a[1][f] + a[2][b * 4 + f];
}
/* (3, 1) + (1, 4) */
static void r_add_outer(const double *const *a, double *o)
{
    for (int i = 0; i < 12; i++) o[i] = a[0][i / 4] + a[1][i % 4];
}
static void r_mul_scalar(const double *const *a, double *o)
{
    for (int i = 0; i < 12; i++) o[i] = a[0][i] * a[1][0];
}
/* two permutes, composed into one by the builder */
static kiln_node b_permute_twice(kiln_graph *g, const kiln_node *a)
{
    kiln_node p = kiln_expr_permute(g, a[0], 3, (int[]){1, 2, 0});
    return kiln_expr_permute(g, kiln_expr_tanh(g, p), 3, (int[]){1, 2, 0});
}
static void r_permute_twice(const double *const *a, double *o)
{
    double t[24];
    ref_permute(a[0], 3, D234, (int[]){1, 2, 0}, t);
    for (int i = 0; i < 24; i++) t[i] = tanh(t[i]);
    ref_permute(t, 3, (int64_t[]){3, 4, 2}, (int[]){1, 2, 0}, o);
}
static kiln_node b_cast_roundtrip(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_cast(g, kiln_expr_cast(g, a[0], KILN_DTYPE_I32), kiln_graph_floatx(g));
}
/* attention scores y y^T for y = x * w (B, T, 4): (B, T, T), m and n symbolic */
static kiln_node b_bmm_scores(kiln_graph *g, const kiln_node *a)
{
    kiln_node y = xw(g, a);
    return kiln_expr_matmul(g, y, kiln_expr_permute(g, y, 3, (int[]){0, 2, 1}));
}
static void r_bmm_scores(const double *const *a, double *o)
{
    double y[MAX_ELEMS];
    scale_last(a[0], BATCH * TIME * 4, a[1], 4, y);
    ref_matmul(y, y, o, BATCH, TIME, 4, TIME, TIME * 4, TIME * 4, false, true);
}
/* softmax over time: (T, B, 4) -> (B, 4, T), rows of T (a symbolic length) */
static kiln_node b_softmax_over_time(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_softmax(g, kiln_expr_permute(g, xw(g, a), 3, (int[]){1, 2, 0}));
}
static void r_softmax_over_time(const double *const *a, double *o)
{
    double y[MAX_ELEMS], t[MAX_ELEMS];
    ref_xw(a, 4, y);
    ref_permute(y, 3, TB4, (int[]){1, 2, 0}, t);
    ref_rows(t, BATCH * 4, TIME, ROW_SOFTMAX, o);
}
/* (4, B, 3) * w along axis 0: the inner span B*3 is symbolic */
static kiln_node b_slice_batch_inner(kiln_graph *g, const kiln_node *a) { return kiln_expr_slice(g, xw(g, a), 0, 1, 4, 2); }
static void r_slice_batch_inner(const double *const *a, double *o)
{
    double y[MAX_ELEMS];
    scale_last(a[0], 4 * BATCH * 3, a[1], 3, y);
    ref_slice(y, 1, 4, BATCH * 3, 1, 2, 2, o);
}
static kiln_node b_split_batch_inner(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_output(g, kiln_expr_split(g, xw(g, a), 0, 2, (int64_t[]){1, 3}), 1);
}
static void r_split_batch_inner(const double *const *a, double *o)
{
    double y[MAX_ELEMS];
    scale_last(a[0], 4 * BATCH * 3, a[1], 3, y);
    ref_slice(y, 1, 4, BATCH * 3, 1, 1, 3, o);
}
/* [x * w (2, B, 3), z (1, B, 3)] along axis 0 */
static kiln_node b_concat_batch_inner(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_concat(g, (kiln_node[]){xw(g, a), a[2]}, 2, 0);
}
static void r_concat_batch_inner(const double *const *a, double *o)
{
    double y[MAX_ELEMS];
    scale_last(a[0], 2 * BATCH * 3, a[1], 3, y);
    ref_concat((const double *[]){y, a[2]}, 2, (int64_t[]){2, 1}, 1, BATCH * 3, o);
}
/* pick(y (T, B, 5), target (T, B)), not rewritten */
static kiln_node b_seq_pick(kiln_graph *g, const kiln_node *a) { return kiln_expr_pick(g, xw(g, a), a[2]); }
static void r_seq_pick(const double *const *a, double *o)
{
    double y[MAX_ELEMS];
    ref_xw(a, 5, y);
    ref_pick(y, a[2], TIME * BATCH, 5, o);
}
/* int32(x) == idx: an int32 temporary inside the comparison's loop */
static kiln_node b_equal_trunc_index(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_equal(g, kiln_expr_cast(g, a[0], KILN_DTYPE_I32), a[1]);
}
static void r_equal_trunc_index(const double *const *a, double *o)
{
    for (int i = 0; i < 12; i++) o[i] = trunc(a[0][i]) == a[1][i];
}
/* tanh(x W + b) over a sequence x (T, B, 4), W (4, 5), b (5): a Linear
** and Tanh at every step (the bias gradient is summed in the loop that
** writes the delta) */
static kiln_node b_seq_affine_tanh(kiln_graph *g, const kiln_node *a)
{
    return kiln_expr_tanh(g, kiln_expr_add(g, kiln_expr_matmul(g, a[0], a[1]), a[2]));
}
static void r_seq_affine_tanh(const double *const *a, double *o)
{
    ref_matmul(a[0], a[1], o, 1, TIME * BATCH, 4, 5, 0, 0, false, false);
    for (int i = 0; i < TIME * BATCH * 5; i++) o[i] = tanh(o[i] + a[2][i % 5]);
}
/* 2 * exp(0), folded to a constant by the builder: an output all the same */
static kiln_node b_folded_constant(kiln_graph *g, const kiln_node *a)
{
    (void)a;
    return kiln_expr_mul(g, kiln_expr_constant(g, 2), kiln_expr_exp(g, kiln_expr_constant(g, 0)));
}
static void r_folded_constant(const double *const *a, double *o)
{
    (void)a;
    o[0] = 2;
}
/* [y, y reversed in time] along the features: a bidirectional layer's input */
static kiln_node b_seq_bidirectional(kiln_graph *g, const kiln_node *a)
{
    kiln_node y = xw(g, a);
    return kiln_expr_concat(g, (kiln_node[]){y, kiln_expr_reverse(g, y, 0)}, 2, 2);
}
static void r_seq_bidirectional(const double *const *a, double *o)
{
    double y[MAX_ELEMS], r[MAX_ELEMS];
    ref_xw(a, 3, y);
    ref_reverse(y, 1, TIME, BATCH * 3, r);
    ref_concat((const double *[]){y, r}, 2, (int64_t[]){3, 3}, TIME * BATCH, 1, o);
}

#define P34(lo, hi, gap) {ARG_PARAM, 2, {3, 4}, lo, hi, gap}
#define P(r, d0, d1, d2, lo, hi) {ARG_PARAM, r, {d0, d1, d2}, lo, hi, 0}
#define X(d0, lo, hi) {ARG_BATCH_INPUT, 1, {d0}, lo, hi, 0}
#define IDX(k) {ARG_INDEX, 1, {k}, 0, 0, 0}
#define XPICK {ARG_BATCH_INPUT, 1, {5}, -2, 2, 0}
/* N-d rows: parameters of any rank (values in [-1, 1)), float inputs and
** int32 indices whose dims may be symbols (TB: the time-major T, B). */
#define PN(r, ...) {ARG_PARAM, r, {__VA_ARGS__}, -1, 1, 0, 0}
#define PK(gap, kink) {ARG_PARAM, 2, {3, 4}, -1, 1, gap, kink}
#define IN(r, ...) {ARG_INPUT, r, {__VA_ARGS__}, -1, 1, 0, 0}
#define IDXS(range, r, ...) {ARG_INDICES, r, {__VA_ARGS__}, 0, range, 0, 0}
#define TB KILN_TIME, KILN_BATCH
#define P4 P(1, 4, 0, 0, -1, 1)

/* Rows leave what they do not use zero: kink, and shape (unchecked). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
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
    /* ---- N-d rows: elementwise, comparisons, select ---- */
    {"minimum", 2, {P34(-1, 1, 0), P34(-1, 1, 0)}, b_minimum, r_minimum, true, 1e-7, "(3, 4)"},
    {"sign", 1, {P34(-1, 1, 0.1)}, b_sign, r_sign, true, 1e-7, "(3, 4)"},
    {"clip", 1, {PK(0.05, 0.5)}, b_clip, r_clip, true, 1e-7, "(3, 4)"},
    {"cast_float_to_int32", 1, {P34(-3, 3, 0.1)}, b_cast_i32, r_trunc, false, 0, "(3, 4)"},
    {"cast_int32_to_float", 1, {IDXS(7, 2, 3, 4)}, b_cast_float, r_copy12, false, 0, "(3, 4)"},
    {"mul_cast_index", 2, {P34(-1, 1, 0), IDXS(4, 2, 3, 4)}, b_mul_cast, r_mul, true, 1e-7, "(3, 4)"},
    {"greater_int32", 2, {IDXS(3, 2, 3, 4), IDXS(3, 1, 4)}, b_greater, r_greater, false, 0, "(3, 4)"},
    {"greater_equal_int32", 2, {IDXS(3, 2, 3, 4), IDXS(3, 1, 4)}, b_greater_equal, r_greater_equal, false, 0, "(3, 4)"},
    {"less_int32", 2, {IDXS(3, 2, 3, 4), IDXS(3, 1, 4)}, b_less, r_less, false, 0, "(3, 4)"},
    {"less_equal_int32", 2, {IDXS(3, 2, 3, 4), IDXS(3, 1, 4)}, b_less_equal, r_less_equal, false, 0, "(3, 4)"},
    {"equal_int32", 2, {IDXS(3, 2, 3, 4), IDXS(3, 1, 4)}, b_equal, r_equal, false, 0, "(3, 4)"},
    {"not_equal_int32", 2, {IDXS(3, 2, 3, 4), IDXS(3, 1, 4)}, b_not_equal, r_not_equal, false, 0, "(3, 4)"},
    {"greater_float", 2, {P34(-1, 1, 0), P4}, b_greater, r_greater, false, 0, "(3, 4)"},
    {"less_equal_float", 2, {P34(-1, 1, 0), P4}, b_less_equal, r_less_equal, false, 0, "(3, 4)"},
    {"equal_float_row_max", 1, {P34(-1, 1, 0)}, b_equal_rowmax, r_equal_rowmax, false, 0, "(3, 4)"},
    {"select_broadcast", 3, {IDXS(2, 2, 3, 1), P34(-1, 1, 0), P4}, b_select, r_select, true, 1e-7, "(3, 4)"},
    {"select_greater", 2, {P34(-1, 1, 0), P34(-1, 1, 0)}, b_select_greater, r_maximum, true, 1e-7, "(3, 4)"},
    /* ---- reductions over sets of axes; over symbolic axes ---- */
    {"sum_axes_0", 1, {PN(3, 2, 3, 4)}, b_sum_axes_0, r_sum_axes_0, true, 1e-7, "(3, 4)"},
    {"sum_axes_1", 1, {PN(3, 2, 3, 4)}, b_sum_axes_1, r_sum_axes_1, true, 1e-7, "(2, 4)"},
    {"sum_axes_2", 1, {PN(3, 2, 3, 4)}, b_sum_axes_2, r_sum_axes_2, true, 1e-7, "(2, 3)"},
    {"sum_axes_01", 1, {PN(3, 2, 3, 4)}, b_sum_axes_01, r_sum_axes_01, true, 1e-7, "(4,)"},
    {"sum_axes_02", 1, {PN(3, 2, 3, 4)}, b_sum_axes_02, r_sum_axes_02, true, 1e-7, "(3,)"},
    {"sum_axes_12", 1, {PN(3, 2, 3, 4)}, b_sum_axes_12, r_sum_axes_12, true, 1e-7, "(2,)"},
    {"sum_axes_012", 1, {PN(3, 2, 3, 4)}, b_sum_axes_012, r_sum_axes_012, true, 1e-7, "()"},
    {"mean_axes_1", 1, {PN(3, 2, 3, 4)}, b_mean_axes_1, r_mean_axes_1, true, 1e-7, "(2, 4)"},
    {"mean_axes_02", 1, {PN(3, 2, 3, 4)}, b_mean_axes_02, r_mean_axes_02, true, 1e-7, "(3,)"},
    {"mean_axes_012", 1, {PN(3, 2, 3, 4)}, b_mean_axes_012, r_mean_axes_012, true, 1e-7, "()"},
    {"max_axes_0", 1, {PN(3, 2, 3, 4)}, b_max_axes_0, r_max_axes_0, true, 1e-7, "(3, 4)"},
    {"max_axes_02", 1, {PN(3, 2, 3, 4)}, b_max_axes_02, r_max_axes_02, true, 1e-7, "(3,)"},
    {"max_axes_12", 1, {PN(3, 2, 3, 4)}, b_max_axes_12, r_max_axes_12, true, 1e-7, "(2,)"},
    {"max_axes_012", 1, {PN(3, 2, 3, 4)}, b_max_axes_012, r_max_axes_012, true, 1e-7, "()"},
    {"seq_sum_over_t", 2, {IN(3, TB, 4), PN(1, 4)}, b_seq_sum_t, r_seq_sum_t, true, 1e-7, "(B, 4)"},
    {"seq_mean_over_t", 2, {IN(3, TB, 4), PN(1, 4)}, b_seq_mean_t, r_seq_mean_t, true, 1e-7, "(B, 4)"},
    {"seq_mean_over_b", 2, {IN(3, TB, 4), PN(1, 4)}, b_seq_mean_b, r_seq_mean_b, true, 1e-7, "(T, 4)"},
    {"seq_mean_over_tb", 2, {IN(3, TB, 4), PN(1, 4)}, b_seq_mean_tb, r_seq_mean_tb, true, 1e-7, "(4,)"},
    {"seq_mean_all", 2, {IN(3, TB, 4), PN(1, 4)}, b_seq_mean_all, r_seq_mean_all, true, 1e-7, "()"},
    {"seq_max_over_t", 2, {IN(3, TB, 4), PN(1, 4)}, b_seq_max_t, r_seq_max_t, true, 1e-7, "(B, 4)"},
    /* ---- permute, transpose ---- */
    {"permute_120", 1, {PN(3, 2, 3, 4)}, b_permute_120, r_permute_120, true, 1e-7, "(3, 4, 2)"},
    {"permute_201", 1, {PN(3, 2, 3, 4)}, b_permute_201, r_permute_201, true, 1e-7, "(4, 2, 3)"},
    {"permute_021", 1, {PN(3, 2, 3, 4)}, b_permute_021, r_permute_021, true, 1e-7, "(2, 4, 3)"},
    {"permute_102", 1, {PN(3, 2, 3, 4)}, b_permute_102, r_permute_102, true, 1e-7, "(3, 2, 4)"},
    {"permute_210", 1, {PN(3, 2, 3, 4)}, b_permute_210, r_permute_210, true, 1e-7, "(4, 3, 2)"},
    {"transpose_3d", 1, {PN(3, 2, 3, 4)}, b_transpose, r_transpose3, true, 1e-7, "(4, 3, 2)"},
    {"transpose_4d", 1, {PN(4, 2, 3, 1, 4)}, b_transpose, r_transpose4, true, 1e-7, "(4, 1, 3, 2)"},
    {"seq_permute_to_batch_major", 2, {IN(3, TB, 4), PN(1, 4)}, b_seq_permute, r_seq_permute, true, 1e-7, "(B, T, 4)"},
    /* ---- batched products ---- */
    {"bmm_3d_3d", 2, {PN(3, 2, 3, 4), PN(3, 2, 4, 5)}, b_matmul, r_bmm_33, true, 1e-7, "(2, 3, 5)"},
    {"bmm_3d_2d_folded", 2, {PN(3, 2, 3, 4), PN(2, 4, 5)}, b_matmul, r_bmm_32, true, 1e-7, "(2, 3, 5)"},
    {"bmm_3d_2d_transposed_b", 2, {PN(3, 2, 3, 4), PN(2, 5, 4)}, b_matmul_tb, r_bmm_32t, true, 1e-7, "(2, 3, 5)"},
    {"bmm_2d_3d", 2, {PN(2, 3, 4), PN(3, 2, 4, 5)}, b_matmul, r_bmm_23, true, 1e-7, "(2, 3, 5)"},
    {"bmm_2d_transposed_a_3d", 2, {PN(2, 4, 3), PN(3, 2, 4, 5)}, b_matmul_ta, r_bmm_2t3, true, 1e-7, "(2, 3, 5)"},
    {"bmm_3d_3d_last_axes_swapped", 2, {PN(3, 2, 4, 3), PN(3, 2, 5, 4)}, b_matmul_last2, r_bmm_3t3t, true, 1e-7,
     "(2, 3, 5)"},
    {"bmm_4d_4d", 2, {PN(4, 2, 2, 3, 4), PN(4, 2, 2, 4, 5)}, b_matmul, r_bmm_44, true, 1e-7, "(2, 2, 3, 5)"},
    {"bmm_4d_2d_folded", 2, {PN(4, 2, 2, 3, 4), PN(2, 4, 5)}, b_matmul, r_bmm_42, true, 1e-7, "(2, 2, 3, 5)"},
    {"seq_projection", 2, {IN(3, TB, 4), PN(2, 4, 5)}, b_matmul, r_seq_proj, true, 1e-7, "(T, B, 5)"},
    {"bmm_2d_batch_3d", 2, {PN(2, 3, 4), IN(3, KILN_BATCH, 4, 5)}, b_matmul, r_bmm_w_xb, true, 1e-7, "(B, 3, 5)"},
    {"bmm_batch_3d_batch_3d", 4, {IN(3, KILN_BATCH, 3, 4), PN(2, 1, 4), IN(3, KILN_BATCH, 4, 5), PN(2, 1, 5)},
     b_bmm_xb_yb, r_bmm_xb_yb, true, 1e-7, "(B, 3, 5)"},
    /* ---- reshape, flatten ---- */
    {"reshape_infer_last", 1, {PN(3, 2, 3, 4)}, b_reshape_infer_last, r_copy24, true, 1e-7, "(4, 6)"},
    {"reshape_infer_first", 1, {PN(3, 2, 3, 4)}, b_reshape_infer_first, r_copy24, true, 1e-7, "(6, 2, 2)"},
    {"seq_flatten", 2, {IN(3, TB, 5), PN(2, 1, 5)}, b_seq_flatten, r_seq_xw5, true, 1e-7, "(T, B*5)"},
    {"seq_fold_time_batch", 2, {IN(3, TB, 5), PN(2, 1, 5)}, b_seq_fold, r_seq_xw5, true, 1e-7, "(T*B, 5)"},
    {"seq_reshape_infer", 2, {IN(3, TB, 4), PN(1, 4)}, b_seq_reshape_infer, r_seq_xw4, true, 1e-7, "(T*B*4,)"},
    {"seq_fold_matmul_unfold", 2, {IN(3, TB, 4), PN(2, 4, 3)}, b_seq_unflatten, r_seq_unflatten, true, 1e-7,
     "(T, B, 3)"},
    {"seq_fold_tanh_unfold", 2, {IN(3, TB, 4), PN(1, 4)}, b_seq_flat_tanh, r_seq_flat_tanh, true, 1e-7,
     "(T, B, 4)"},
    /* ---- slice, concat, reverse, split ---- */
    {"slice_axis0", 1, {PN(3, 4, 5, 6)}, b_slice_axis0, r_slice_axis0, true, 1e-7, "(2, 5, 6)"},
    {"slice_axis0_step2", 1, {PN(3, 4, 5, 6)}, b_slice_axis0_step2, r_slice_axis0_step2, true, 1e-7, "(2, 5, 6)"},
    {"slice_axis1", 1, {PN(3, 4, 5, 6)}, b_slice_axis1, r_slice_axis1, true, 1e-7, "(4, 3, 6)"},
    {"slice_axis1_step2", 1, {PN(3, 4, 5, 6)}, b_slice_axis1_step2, r_slice_axis1_step2, true, 1e-7, "(4, 2, 6)"},
    {"slice_axis2", 1, {PN(3, 4, 5, 6)}, b_slice_axis2, r_slice_axis2, true, 1e-7, "(4, 5, 3)"},
    {"slice_axis2_step2", 1, {PN(3, 4, 5, 6)}, b_slice_axis2_step2, r_slice_axis2_step2, true, 1e-7, "(4, 5, 3)"},
    {"slice_axis2_stop_past_end", 1, {PN(3, 4, 5, 6)}, b_slice_axis2_stop_past_end, r_slice_axis2_stop_past_end, true,
     1e-7, "(4, 5, 2)"},
    {"slice_axis1_huge_step", 1, {PN(3, 4, 5, 6)}, b_slice_axis1_huge_step, r_slice_axis1_huge_step, true, 1e-7,
     "(4, 1, 6)"},
    {"seq_slice_features_step2", 2, {IN(3, TB, 6), PN(1, 6)}, b_seq_slice, r_seq_slice, true, 1e-7, "(T, B, 3)"},
    {"concat2_axis0", 2, {PN(3, 2, 3, 4), PN(3, 1, 3, 4)}, b_concat2_0, r_concat2_0, true, 1e-7, "(3, 3, 4)"},
    {"concat3_axis0", 3, {PN(3, 1, 3, 4), PN(3, 2, 3, 4), PN(3, 1, 3, 4)}, b_concat3_0, r_concat3_0, true, 1e-7,
     "(4, 3, 4)"},
    {"concat2_axis1", 2, {PN(3, 2, 3, 4), PN(3, 2, 1, 4)}, b_concat2_1, r_concat2_1, true, 1e-7, "(2, 4, 4)"},
    {"concat3_axis1", 3, {PN(3, 2, 1, 4), PN(3, 2, 2, 4), PN(3, 2, 1, 4)}, b_concat3_1, r_concat3_1, true, 1e-7,
     "(2, 4, 4)"},
    {"concat2_axis2", 2, {PN(3, 2, 3, 4), PN(3, 2, 3, 2)}, b_concat2_2, r_concat2_2, true, 1e-7, "(2, 3, 6)"},
    {"seq_concat_features", 2, {IN(3, TB, 3), PN(1, 3)}, b_seq_concat, r_seq_concat, true, 1e-7, "(T, B, 6)"},
    {"reverse_axis0", 1, {PN(3, 2, 3, 4)}, b_reverse_axis0, r_reverse_axis0, true, 1e-7, "(2, 3, 4)"},
    {"reverse_axis1", 1, {PN(3, 2, 3, 4)}, b_reverse_axis1, r_reverse_axis1, true, 1e-7, "(2, 3, 4)"},
    {"reverse_axis2", 1, {PN(3, 2, 3, 4)}, b_reverse_axis2, r_reverse_axis2, true, 1e-7, "(2, 3, 4)"},
    {"seq_reverse_t", 2, {IN(3, TB, 4), PN(1, 4)}, b_seq_reverse_t, r_seq_reverse_t, true, 1e-7, "(T, B, 4)"},
    {"seq_reverse_b", 2, {IN(3, TB, 4), PN(1, 4)}, b_seq_reverse_b, r_seq_reverse_b, true, 1e-7, "(T, B, 4)"},
    {"split3_middle_unused", 1, {PN(3, 2, 6, 3)}, b_split_ends, r_split_ends, true, 1e-7, "(2, 4, 3)"},
    {"split3_middle_only", 1, {PN(3, 2, 6, 3)}, b_split_middle, r_split_middle, true, 1e-7, "(2, 2, 3)"},
    {"split3_axis0", 1, {PN(3, 3, 2, 4)}, b_split_axis0, r_split_axis0, true, 1e-7, "(1, 2, 4)"},
    {"seq_split_features", 2, {IN(3, TB, 6), PN(1, 6)}, b_seq_split, r_seq_split, true, 1e-7, "(T, B, 4)"},
    /* ---- last-axis ops, pick, cross-entropy ---- */
    {"softmax_3d", 1, {PN(3, 2, 3, 5)}, b_softmax, r_softmax3, true, 1e-7, "(2, 3, 5)"},
    {"log_softmax_3d", 1, {PN(3, 2, 3, 5)}, b_log_softmax, r_log_softmax3, true, 1e-7, "(2, 3, 5)"},
    {"argmax_3d", 1, {PN(3, 2, 3, 5)}, b_argmax, r_argmax3, false, 0, "(2, 3)"},
    {"pick_3d", 2, {PN(3, 2, 3, 5), IDXS(5, 2, 2, 3)}, b_pick, r_pick3, true, 1e-7, "(2, 3)"},
    {"xent_3d_neg_pick_log_softmax", 2, {PN(3, 2, 3, 5), IDXS(5, 2, 2, 3)}, b_xent_neg_pick_log_softmax, r_xent3,
     true, 1e-7, "(2, 3)"},
    {"xent_3d_log_pick_softmax", 2, {PN(3, 2, 3, 5), IDXS(5, 2, 2, 3)}, b_xent_log_pick_softmax, r_xent3, true, 1e-7,
     "(2, 3)"},
    {"seq_softmax", 2, {IN(3, TB, 5), PN(2, 1, 5)}, b_seq_softmax, r_seq_softmax, true, 1e-7, "(T, B, 5)"},
    {"seq_argmax", 2, {IN(3, TB, 5), PN(2, 1, 5)}, b_seq_argmax, r_seq_argmax, false, 0, "(T, B)"},
    {"seq_xent_mean", 3, {IN(3, TB, 5), PN(2, 1, 5), IDXS(5, 2, TB)}, b_seq_xent_mean, r_seq_xent_mean, true, 1e-7,
     "()"},
    /* ---- gather ---- */
    {"gather_batch", 2, {PN(2, 5, 3), IDXS(5, 2, KILN_BATCH, 4)}, b_gather, r_gather_b4, true, 1e-7, "(B, 4, 3)"},
    {"gather_3d_table", 2, {PN(3, 5, 2, 3), IDXS(5, 1, 3)}, b_gather, r_gather_3d, true, 1e-7, "(3, 2, 3)"},
    {"seq_embedding_projection", 3, {PN(2, 6, 4), IDXS(6, 2, TB), PN(2, 4, 3)}, b_seq_embed, r_seq_embed, true, 1e-7,
     "(T, B, 3)"},
    /* ---- broadcasting against symbolic dims ---- */
    {"mul_batch_by_row_param", 2, {IN(2, KILN_BATCH, 4), PN(2, 1, 4)}, b_mul, r_batch_xw, true, 1e-7, "(B, 4)"},
    {"add_seq_and_param", 2, {IN(3, TB, 4), PN(3, 1, 1, 4)}, b_seq_add, r_seq_add, true, 1e-7, "(T, B, 4)"},
    {"add_time_and_batch_broadcasts", 3, {IN(3, KILN_TIME, 1, 4), PN(1, 4), IN(3, 1, KILN_BATCH, 4)}, b_add_t1f_1bf,
     r_add_t1f_1bf, true, 1e-7, "(T, B, 4)"},
    {"add_outer_broadcast", 2, {PN(2, 3, 1), PN(2, 1, 4)}, b_add, r_add_outer, true, 1e-7, "(3, 4)"},
    {"mul_scalar_param", 2, {P34(-1, 1, 0), PN(0, 0)}, b_mul, r_mul_scalar, true, 1e-7, "(3, 4)"},
    /* ---- compositions ---- */
    {"permute_tanh_permute", 1, {PN(3, 2, 3, 4)}, b_permute_twice, r_permute_twice, true, 1e-7, "(4, 2, 3)"},
    {"cast_roundtrip_truncates", 1, {P34(-3, 3, 0.1)}, b_cast_roundtrip, r_trunc, false, 0, "(3, 4)"},
    {"bmm_attention_scores", 2, {IN(3, KILN_BATCH, KILN_TIME, 4), PN(1, 4)}, b_bmm_scores, r_bmm_scores, true, 1e-7,
     "(B, T, T)"},
    {"softmax_over_time", 2, {IN(3, TB, 4), PN(1, 4)}, b_softmax_over_time, r_softmax_over_time, true, 1e-7,
     "(B, 4, T)"},
    {"slice_axis0_batch_inner", 2, {IN(3, 4, KILN_BATCH, 3), PN(1, 3)}, b_slice_batch_inner, r_slice_batch_inner, true,
     1e-7, "(2, B, 3)"},
    {"split_axis0_batch_inner", 2, {IN(3, 4, KILN_BATCH, 3), PN(1, 3)}, b_split_batch_inner, r_split_batch_inner, true,
     1e-7, "(3, B, 3)"},
    {"concat_axis0_batch_inner", 3, {IN(3, 2, KILN_BATCH, 3), PN(1, 3), IN(3, 1, KILN_BATCH, 3)}, b_concat_batch_inner,
     r_concat_batch_inner, true, 1e-7, "(3, B, 3)"},
    {"seq_pick", 3, {IN(3, TB, 5), PN(1, 5), IDXS(5, 2, TB)}, b_seq_pick, r_seq_pick, true, 1e-7, "(T, B)"},
    {"equal_trunc_index", 2, {P34(-3, 3, 0.1), IDXS(3, 2, 3, 4)}, b_equal_trunc_index, r_equal_trunc_index, false, 0,
     "(3, 4)"},
    {"seq_affine_tanh", 3, {IN(3, TB, 4), PN(2, 4, 5), PN(1, 5)}, b_seq_affine_tanh, r_seq_affine_tanh, true, 1e-7,
     "(T, B, 5)"},
    {"output_folded_to_a_constant", 0, {{0}}, b_folded_constant, r_folded_constant, false, 0, "()"},
    /* ---- log/sigmoid compositions, rewritten to softplus: logits out to +-100, +-1000 (#9) ---- */
    {"log_sigmoid_wide", 1, {P34(-100, 100, 0)}, b_log_sigmoid, r_log_sigmoid, true, 1e-6, "(3, 4)"},
    {"log_sigmoid_of_neg_wide", 1, {P34(-100, 100, 0)}, b_log_sigmoid_of_neg, r_log_one_minus_sigmoid, true, 1e-6,
     "(3, 4)"},
    {"log_one_minus_sigmoid_wide", 1, {P34(-100, 100, 0)}, b_log_one_minus_sigmoid, r_log_one_minus_sigmoid, true,
     1e-6, "(3, 4)"},
    {"log_one_plus_neg_sigmoid_wide", 1, {P34(-100, 100, 0)}, b_log_one_plus_neg_sigmoid, r_log_one_minus_sigmoid,
     true, 1e-6, "(3, 4)"},
    {"bce_on_logistic_wide", 2, {P34(-100, 100, 0), P34(0, 1, 0)}, b_bce_logistic, r_bce_logistic, true, 1e-6,
     "(3, 4)"},
    {"neg_log_pick_sigmoid_wide", 2, {P(2, 3, 5, 0, -1000, 1000), IDX(5)}, b_neg_log_pick_sigmoid,
     r_neg_log_pick_sigmoid, true, 1e-6, "(3,)"},
    {"seq_bidirectional_concat", 2, {IN(3, TB, 3), PN(1, 3)}, b_seq_bidirectional, r_seq_bidirectional, true, 1e-7,
     "(T, B, 6)"},
};
#pragma GCC diagnostic pop

/* ---- the runner ------------------------------------------------------------ */

typedef struct built {
    kiln_graph *g;
    kiln_param *params[MAX_ARGS];
    kiln_node args[MAX_ARGS], pnodes[MAX_ARGS];
    int n_pnodes;
    int parg[MAX_ARGS]; /* the argument each parameter node is */
    double values[MAX_ARGS][MAX_ELEMS]; /* what the program sees, as doubles (the reference's input) */
    int32_t idx[BATCH];
    int32_t ints[MAX_ARGS][MAX_ELEMS];  /* ARG_INDICES */
    float floats[MAX_ARGS][MAX_ELEMS];  /* float inputs of a float32 graph */
    gc_input in[MAX_ARGS];
    int n_in;
    kiln_node out;
} built;

static int64_t dim_size(int64_t d) { return d == KILN_BATCH ? BATCH : d == KILN_TIME ? TIME : d; }

/* Elements of an argument at the rows' run-time sizes. */
static int64_t arg_count(const arg *a)
{
    if (a->kind == ARG_INDEX)
        return BATCH;
    int64_t n = a->kind == ARG_BATCH_INPUT ? BATCH : 1;
    for (int d = 0; d < a->rank; d++)
        n *= dim_size(a->dims[d]);
    return n;
}

/* Index values: a hash of (position, argument) in [0, range), so that
** there are repeats (a table row gathered twice, one never), ties between
** compared operands and both branches of a select. */
static int32_t index_value(int64_t i, int k, int64_t range)
{
    uint32_t h = (uint32_t)i * 0x9e3779b9u ^ (uint32_t)(k + 1) * 0x85ebca6bu;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    return (int32_t)(h % (uint32_t)range);
}

/* Keep values at least gap away from -kink and kink (clip's bounds), where
** central differences would straddle the kink. */
static void away_from_kinks(double *x, int64_t n, double kink, double gap)
{
    for (int64_t i = 0; i < n; i++)
        for (int s = -1; s <= 1; s += 2) {
            double d = x[i] - s * kink;
            if (fabs(d) < gap)
                x[i] = s * kink + (d < 0 ? -gap : gap);
        }
}

/* Build case c into g, a graph whose floats are floatx. Float values are
** rounded to floatx, so the reference sees what the program sees. The
** arguments are named a<k>, or r<row>_a<k> when row >= 0 (many rows in one
** graph, below). */
static void build_case_in(const op_case *c, built *b, kiln_graph *g, enum kiln_dtype floatx, int row)
{
    memset(b, 0, sizeof *b);
    b->g = g;
    ck_assert_ptr_nonnull(g);
    for (int k = 0; k < c->n_args; k++) {
        const arg *a = &c->args[k];
        char name[32];
        if (row < 0)
            snprintf(name, sizeof name, "a%d", k);
        else
            snprintf(name, sizeof name, "r%d_a%d", row, k);
        int64_t n = arg_count(a);
        ck_assert_int_le(n, MAX_ELEMS);
        if (a->kind == ARG_PARAM) {
            b->params[k] = kiln_param_create(name, a->rank, a->dims);
            ck_assert_ptr_nonnull(b->params[k]);
            gc_fill(b->values[k], n, a->lo, a->hi, a->gap, (unsigned)(k * 7 + 1));
            if (a->kink > 0)
                away_from_kinks(b->values[k], n, a->kink, a->gap);
            for (int64_t i = 0; floatx == KILN_DTYPE_F32 && i < n; i++)
                b->values[k][i] = (float)b->values[k][i];
            ck_assert_int_eq(kiln_param_set_values(b->params[k], b->values[k], n), KILN_OK);
            b->parg[b->n_pnodes] = k;
            b->args[k] = b->pnodes[b->n_pnodes++] = kiln_graph_param(b->g, b->params[k]);
        } else if (a->kind == ARG_BATCH_INPUT || a->kind == ARG_INPUT) {
            gc_fill(b->values[k], n, a->lo, a->hi, a->gap, (unsigned)(k * 7 + 3));
            int64_t dims[ARG_RANK + 1] = {KILN_BATCH, a->dims[0]};
            int rank = 2;
            if (a->kind == ARG_INPUT) {
                rank = a->rank;
                memcpy(dims, a->dims, sizeof a->dims);
            }
            b->args[k] = kiln_graph_input(b->g, name, floatx, rank, dims);
            const void *data = b->values[k];
            if (floatx == KILN_DTYPE_F32) {
                for (int64_t i = 0; i < n; i++)
                    b->values[k][i] = b->floats[k][i] = (float)b->values[k][i];
                data = b->floats[k];
            }
            b->in[b->n_in++] = (gc_input){kiln_graph_node_name(b->g, b->args[k]), data};
        } else if (a->kind == ARG_INDEX) {
            for (int i = 0; i < BATCH; i++) {
                b->idx[i] = (int32_t)((i * 3 + 1) % a->dims[0]);
                b->values[k][i] = b->idx[i];
            }
            /* a fixed-size integer input: three rows, like the (3, k) params */
            b->args[k] = kiln_graph_input(b->g, name, KILN_DTYPE_I32, 1, (int64_t[]){BATCH});
            b->in[b->n_in++] = (gc_input){kiln_graph_node_name(b->g, b->args[k]), b->idx};
        } else { /* ARG_INDICES */
            for (int64_t i = 0; i < n; i++)
                b->values[k][i] = b->ints[k][i] = index_value(i, k, (int64_t)a->hi);
            b->args[k] = kiln_graph_input(b->g, name, KILN_DTYPE_I32, a->rank, a->dims);
            b->in[b->n_in++] = (gc_input){kiln_graph_node_name(b->g, b->args[k]), b->ints[k]};
        }
        ck_assert_msg(kiln_node_ok(b->args[k]), "%s: argument %d: %s", c->name, k, kiln_graph_errmsg(b->g));
    }
    b->out = c->build(b->g, b->args);
    ck_assert_msg(kiln_node_ok(b->out), "%s: build failed: %s", c->name, kiln_graph_errmsg(b->g));
}

static void build_case_as(const op_case *c, built *b, enum kiln_dtype floatx)
{
    build_case_in(c, b, kiln_graph_create(floatx), floatx, -1);
}

static void build_case(const op_case *c, built *b) { build_case_as(c, b, KILN_DTYPE_F64); }

static void free_case(built *b)
{
    kiln_graph_destroy(b->g);
    for (int k = 0; k < MAX_ARGS; k++) kiln_param_destroy(b->params[k]);
}

/* Rows with a batch dim run batch BATCH; others have fixed shapes and batch 1. */
static int64_t case_batch(const op_case *c)
{
    for (int k = 0; k < c->n_args; k++) {
        if (c->args[k].kind == ARG_BATCH_INPUT)
            return BATCH;
        for (int d = 0; c->args[k].kind != ARG_PARAM && c->args[k].kind != ARG_INDEX && d < c->args[k].rank; d++)
            if (c->args[k].dims[d] == KILN_BATCH)
                return BATCH;
    }
    return 1;
}

/* KILN_TEST_OPS_ROW=<row> runs that row alone (every other test is
** skipped), to read its generated code with KILN_DUMP_SOURCE. */
static bool skipped(const char *row)
{
    const char *only = getenv("KILN_TEST_OPS_ROW");
    return only && *only && (!row || strcmp(only, row) != 0);
}

/* The value of a dim of g at the rows' run-time sizes: a dim prints as a
** product of symbols and a constant ("T*B*5"). */
static int64_t dim_value(const kiln_graph *g, int64_t d)
{
    char buf[64];
    int64_t v = 1;
    kiln_graph_dim_str(g, d, buf, sizeof buf);
    for (const char *s = buf; *s;) {
        v *= *s == 'B' ? BATCH : *s == 'T' ? TIME : strtoll(s, NULL, 10);
        s = strchr(s, '*');
        s = s ? s + 1 : "";
    }
    return v;
}

/* n's shape as the rows write it: "(T, B, 5)", "(4,)", "()". */
static void shape_text(const kiln_graph *g, kiln_node n, char *buf, size_t cap)
{
    int rank = kiln_graph_node_rank(g, n);
    size_t k = (size_t)snprintf(buf, cap, "(");
    for (int d = 0; d < rank && k < cap; d++) {
        char s[64];
        kiln_graph_dim_str(g, kiln_graph_node_dim(g, n, d), s, sizeof s);
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", d ? ", " : "", s);
    }
    if (k < cap)
        snprintf(buf + k, cap - k, rank == 1 ? ",)" : ")");
}

/* 0.5 * sum((out + 0.3)^2): a gradient that differs per element */
static kiln_node row_cost(kiln_graph *g, kiln_node out)
{
    kiln_node c = kiln_expr_add(g, out, kiln_expr_constant(g, 0.3));
    return kiln_expr_mul(g, kiln_expr_constant(g, 0.5), kiln_expr_sum(g, kiln_expr_square(g, c), KILN_ALL_AXES));
}

/* ---- rows compiled together ----------------------------------------------
** A JIT compile costs about 0.1 s, most of it clang's start, whatever the
** program's size; with five compiles per row this test was the suite's
** longest (#8). So each check compiles a group of rows into one program:
** every row of a group is built into one graph with arguments of its own
** (r<row>_a<k>), and the check reads each row's output, cost and gradients
** as it read them from the row's own program, with the same tolerances.
** Rows do not interact (no row reads another's values), so a row's values
** are what its own program computed. The gradient check perturbs one
** element of each row's parameters at once and reads each row's own cost (a
** monitor), so a row's finite difference is still its own cost's. A group
** is up to GROUP_ROWS rows, in table order, that run at one batch size
** (case_batch: 1 or BATCH): clang's time grows faster than a program's
** size, so groups stay small (GROUP_ROWS). When a group does not compile, each of its rows is compiled alone to name the one
** that fails. KILN_TEST_OPS_ROW=<row> makes a group of that row alone. */

#define N_CASES ((int)(sizeof OP_CASES / sizeof OP_CASES[0]))
#define GROUP_ROWS 16

/* The group of row i: the rows of batch 1 make groups 0, 2, 4, ..., those of
** batch BATCH groups 1, 3, 5, ..., GROUP_ROWS rows each in table order. */
static int group_of(int i)
{
    int before = 0;
    for (int k = 0; k < i; k++)
        before += case_batch(&OP_CASES[k]) == case_batch(&OP_CASES[i]);
    return 2 * (before / GROUP_ROWS) + (case_batch(&OP_CASES[i]) != 1);
}

static int n_groups(void)
{
    int n = 0;
    for (int i = 0; i < N_CASES; i++)
        n = group_of(i) + 1 > n ? group_of(i) + 1 : n;
    return n;
}

typedef struct rows {
    kiln_graph *g;
    int n;
    int64_t batch;
    const op_case *c[N_CASES];
    built *b;                            /* n of them */
    kiln_node outs[N_CASES], costs[N_CASES];
    kiln_node total;                     /* the sum of the costs */
} rows;

/* The rows of group (the differentiable ones when with_cost), built in one
** graph of floatx; with_cost: each row's cost (row_cost) and their sum. */
static void rows_build(rows *r, int group, enum kiln_dtype floatx, bool with_cost)
{
    memset(r, 0, sizeof *r);
    r->batch = group % 2 ? BATCH : 1;
    r->g = kiln_graph_create(floatx);
    r->b = calloc(N_CASES, sizeof *r->b);
    ck_assert(r->g && r->b);
    for (int i = 0; i < N_CASES; i++) {
        const op_case *c = &OP_CASES[i];
        if (group_of(i) != group || (with_cost && !c->differentiable) || skipped(c->name))
            continue;
        built *b = &r->b[r->n];
        r->c[r->n] = c;
        build_case_in(c, b, r->g, floatx, i);
        r->outs[r->n] = b->out;
        if (with_cost) {
            r->costs[r->n] = row_cost(r->g, b->out);
            ck_assert_msg(kiln_node_ok(r->costs[r->n]), "%s: %s", c->name, kiln_graph_errmsg(r->g));
            r->total = r->n ? kiln_expr_add(r->g, r->total, r->costs[r->n]) : r->costs[r->n];
            ck_assert_msg(kiln_node_ok(r->total), "%s: %s", c->name, kiln_graph_errmsg(r->g));
        }
        r->n++;
    }
}

static void rows_free(rows *r)
{
    kiln_graph_destroy(r->g);
    for (int k = 0; k < r->n; k++)
        for (int a = 0; a < MAX_ARGS; a++) kiln_param_destroy(r->b[k].params[a]);
    free(r->b);
}

/* Compile the group with o (its outputs or its cost and monitors), set T
** and bind every row's inputs; on a failed compile, name the row that fails
** alone. */
static kiln_program *rows_compile(rows *r, const kiln_compile_options *o)
{
    kiln_program *p;
    if (kiln_compile(r->g, o, &p) != KILN_OK) {
        char group_err[512];
        snprintf(group_err, sizeof group_err, "%s", kiln_program_errmsg(p));
        kiln_program_destroy(p);
        for (int k = 0; k < r->n; k++) {
            kiln_compile_options one = *o;
            if (o->n_outputs) {
                one.outputs = &r->outs[k];
                one.n_outputs = 1;
            } else {
                one.cost = r->costs[k];
                one.monitors = NULL;
                one.n_monitors = 0;
            }
            ck_assert_msg(kiln_compile(r->g, &one, &p) == KILN_OK, "%s: %s", r->c[k]->name, kiln_program_errmsg(p));
            kiln_program_destroy(p);
        }
        ck_abort_msg("rows of batch %lld together: %s", (long long)r->batch, group_err);
    }
    ck_assert_int_eq(kiln_program_set_size(p, KILN_TIME, TIME), KILN_OK);
    for (int k = 0; k < r->n; k++)
        for (int i = 0; i < r->b[k].n_in; i++)
            ck_assert_msg(kiln_program_bind_input(p, r->b[k].in[i].name, r->b[k].in[i].data) == KILN_OK, "%s: %s",
                          r->c[k]->name, kiln_program_errmsg(p));
    return p;
}

/* Compile the group's outputs for forward in floatx, run it at B = BATCH
** (below the maximum MAX_BATCH) and T = TIME (below MAX_TIME), and compare
** each row with its reference to rel * max(1, |want|). */
static void check_forward(int group, enum kiln_dtype floatx, double rel, int64_t guard)
{
    rows r;
    rows_build(&r, group, floatx, false);
    int64_t count[N_CASES];
    for (int k = 0; k < r.n; k++) {
        const op_case *c = r.c[k];
        kiln_node out = r.outs[k];
        count[k] = 1;
        for (int d = 0; d < kiln_graph_node_rank(r.g, out); d++)
            count[k] *= dim_value(r.g, kiln_graph_node_dim(r.g, out, d));
        ck_assert_int_le(count[k], MAX_ELEMS);
        if (c->shape) {
            char s[128];
            shape_text(r.g, out, s, sizeof s);
            ck_assert_msg(strcmp(s, c->shape) == 0, "%s: shape %s, want %s", c->name, s, c->shape);
        }
    }
    if (r.n) {
        kiln_compile_options o = kiln_compile_options_default();
        o.name = "op_forward";
        o.outputs = r.outs;
        o.n_outputs = r.n;
        o.max_batch = MAX_BATCH;
        o.max_size[KILN_SYMBOL_INDEX(KILN_TIME)] = MAX_TIME;
        o.guard_bytes = guard;
        kiln_program *p = rows_compile(&r, &o);
        ck_assert_msg(kiln_program_forward(p, r.batch) == KILN_OK, "rows of batch %lld: %s", (long long)r.batch,
                      kiln_program_errmsg(p));
        for (int k = 0; k < r.n; k++) {
            const op_case *c = r.c[k];
            double got[MAX_ELEMS], want[MAX_ELEMS];
            int64_t n = count[k];
            ck_assert_msg(kiln_program_read(p, r.outs[k], got, n) == KILN_OK, "%s: %s", c->name,
                          kiln_program_errmsg(p));
            const double *vals[MAX_ARGS];
            for (int a = 0; a < MAX_ARGS; a++) vals[a] = r.b[k].values[a];
            c->ref(vals, want);
            for (int64_t i = 0; i < n; i++)
                ck_assert_msg(fabs(got[i] - want[i]) <= rel * fmax(1, fabs(want[i])),
                              "%s[%lld] (%s): got %.17g, want %.17g", c->name, (long long)i, kiln_dtype_name(floatx),
                              got[i], want[i]);
        }
        kiln_program_destroy(p);
    }
    rows_free(&r);
}

START_TEST(op_forward_matches_reference)
{
    check_forward(_i, KILN_DTYPE_F64, 1e-12, 0);
}
END_TEST

/* The float32 code paths (kiln's own GEMM, float kernels) on every row,
** with guard bytes after every stored value: a kernel that writes past its
** value fails the step. */
START_TEST(op_forward_float32_matches_reference)
{
    check_forward(_i, KILN_DTYPE_F32, 2e-5, 64);
}
END_TEST

/* Where the k-th element of a row's parameters (in order, flattened) is. */
static bool param_element(const rows *r, int row, int64_t e, int *param, int64_t *j)
{
    const built *b = &r->b[row];
    for (int k = 0; k < b->n_pnodes; k++) {
        int64_t n = kiln_param_size(kiln_graph_node_param(r->g, b->pnodes[k]));
        if (e < n) {
            *param = k;
            *j = e;
            return true;
        }
        e -= n;
    }
    return false;
}

/* Set element e of row k's parameters in p to its value (in v) plus delta;
** false when the row has no element e. */
static bool perturb(const rows *r, kiln_program *p, double (*v)[MAX_ELEMS], int k, int64_t e, double delta)
{
    int q;
    int64_t j;
    if (!param_element(r, k, e, &q, &j))
        return false;
    kiln_node pn = r->b[k].pnodes[q];
    int64_t n = kiln_param_size(kiln_graph_node_param(r->g, pn));
    double keep = v[q][j];
    v[q][j] = keep + delta;
    ck_assert_msg(kiln_program_set_param(p, pn, v[q], n) == KILN_OK, "%s: %s", r->c[k]->name,
                  kiln_program_errmsg(p));
    v[q][j] = keep;
    return true;
}

/* gc_check_sizes (gradcheck.c) on a group: the program of the rows' summed
** cost, each row's cost a monitor, compiled as gc_check compiles (Scale(0),
** the maxima the run-time sizes B = case_batch, T = TIME). The analytic
** gradients of every row first; then, element by element, the central
** difference of each row's own cost, with that element of each row's
** parameters perturbed at once (rows do not interact). A row's error is
** gc_check's: the largest |ad - fd| / max(1, |ad|, |fd|), within its tol. */
START_TEST(op_gradient_matches_finite_differences)
{
    const double eps = 1e-6;
    rows r;
    rows_build(&r, _i, KILN_DTYPE_F64, true);
    if (!r.n) {
        rows_free(&r);
        return;
    }
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "gradcheck";
    o.cost = r.total;
    o.monitors = r.costs;
    o.n_monitors = r.n;
    o.step_rule = kiln_step_scale(0);
    o.max_batch = r.batch;
    o.max_size[KILN_SYMBOL_INDEX(KILN_TIME)] = TIME;
    kiln_program *p = rows_compile(&r, &o);
    ck_assert_msg(kiln_program_gradients(p, r.batch) == KILN_OK, "gradients: %s", kiln_program_errmsg(p));
    /* every analytic gradient and parameter value, before any evaluation */
    double(*ad)[MAX_ARGS][MAX_ELEMS] = calloc((size_t)r.n, sizeof *ad);
    double(*v)[MAX_ARGS][MAX_ELEMS] = calloc((size_t)r.n, sizeof *v);
    double worst[N_CASES];
    char why[N_CASES][512];
    ck_assert(ad && v);
    int64_t steps = 0;
    for (int k = 0; k < r.n; k++) {
        const built *b = &r.b[k];
        int64_t total = 0;
        for (int q = 0; q < b->n_pnodes; q++) {
            kiln_param *prm = kiln_graph_node_param(r.g, b->pnodes[q]);
            int64_t n = kiln_param_size(prm);
            ck_assert_int_le(n, MAX_ELEMS);
            ck_assert_msg(kiln_program_read_gradient(p, b->pnodes[q], ad[k][q], n) == KILN_OK,
                          "%s: reading the gradient of %s: %s", r.c[k]->name, kiln_param_name(prm),
                          kiln_program_errmsg(p));
            ck_assert_msg(kiln_program_get_param(p, b->pnodes[q], v[k][q], n) == KILN_OK, "%s: reading %s: %s",
                          r.c[k]->name, kiln_param_name(prm), kiln_program_errmsg(p));
            total += n;
        }
        steps = total > steps ? total : steps;
        worst[k] = 0;
        snprintf(why[k], sizeof why[k], "ok");
    }
    for (int64_t e = 0; e < steps; e++) {
        double f[N_CASES][2];
        for (int side = 0; side < 2; side++) {
            for (int k = 0; k < r.n; k++)
                perturb(&r, p, v[k], k, e, side ? -eps : eps);
            ck_assert_msg(kiln_program_eval_step(p, r.batch) == KILN_OK, "eval: %s", kiln_program_errmsg(p));
            for (int k = 0; k < r.n; k++)
                ck_assert_msg(kiln_program_read_scalar(p, r.costs[k], &f[k][side]) == KILN_OK, "%s: eval: %s",
                              r.c[k]->name, kiln_program_errmsg(p));
        }
        for (int k = 0; k < r.n; k++) {
            int q;
            int64_t j;
            if (!perturb(&r, p, v[k], k, e, 0) || !param_element(&r, k, e, &q, &j))
                continue;
            kiln_param *prm = kiln_graph_node_param(r.g, r.b[k].pnodes[q]);
            double fd = (f[k][0] - f[k][1]) / (2 * eps);
            double a = ad[k][q][j];
            double err = fabs(a - fd) / fmax(1.0, fmax(fabs(a), fabs(fd)));
            if (err > worst[k] || isnan(err)) {
                worst[k] = isnan(err) ? INFINITY : err;
                snprintf(why[k], sizeof why[k], "%s[%lld]: autodiff %.10g, finite difference %.10g",
                         kiln_param_name(prm), (long long)j, a, fd);
            }
        }
    }
    for (int k = 0; k < r.n; k++)
        ck_assert_msg(worst[k] >= 0 && worst[k] <= r.c[k]->tol, "%s: error %g (%s)", r.c[k]->name, worst[k], why[k]);
    free(ad);
    free(v);
    kiln_program_destroy(p);
    rows_free(&r);
}
END_TEST

/* train_step with Scale(lr) moves every parameter by -lr times the gradient
** that gradients() computes (through the updates fused into products and
** the slab loop), with guard bytes after every value: the backward kernels
** must not write past their values either. Each row's cost is a monitor,
** computed by train_step with the parameters as they were. */
static void check_train_step(int group, enum kiln_dtype floatx, double rel)
{
    rows r;
    rows_build(&r, group, floatx, true);
    if (!r.n) {
        rows_free(&r);
        return;
    }
    const double lr = 0.25;
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "op_train";
    o.cost = r.total;
    o.monitors = r.costs;
    o.n_monitors = r.n;
    o.step_rule = kiln_step_scale(lr);
    o.max_batch = MAX_BATCH;
    o.max_size[KILN_SYMBOL_INDEX(KILN_TIME)] = MAX_TIME;
    o.guard_bytes = 64;
    kiln_program *p = rows_compile(&r, &o);
    ck_assert_msg(kiln_program_gradients(p, r.batch) == KILN_OK, "gradients: %s", kiln_program_errmsg(p));
    double(*grad)[MAX_ARGS][MAX_ELEMS] = calloc((size_t)r.n, sizeof *grad);
    double cost0[N_CASES], cost1;
    ck_assert_ptr_nonnull(grad);
    for (int k = 0; k < r.n; k++) {
        const built *b = &r.b[k];
        ck_assert_int_eq(kiln_program_read_scalar(p, r.costs[k], &cost0[k]), KILN_OK);
        for (int q = 0; q < b->n_pnodes; q++) {
            int64_t n = kiln_param_size(kiln_graph_node_param(r.g, b->pnodes[q]));
            ck_assert_int_eq(kiln_program_read_gradient(p, b->pnodes[q], grad[k][q], n), KILN_OK);
        }
    }
    ck_assert_msg(kiln_program_train_step(p, r.batch) == KILN_OK, "train_step: %s", kiln_program_errmsg(p));
    for (int k = 0; k < r.n; k++) {
        const op_case *c = r.c[k];
        const built *b = &r.b[k];
        ck_assert_int_eq(kiln_program_read_scalar(p, r.costs[k], &cost1), KILN_OK);
        ck_assert_msg(fabs(cost1 - cost0[k]) <= rel * fmax(1, fabs(cost0[k])),
                      "%s: train_step's cost %.17g, gradients' %.17g", c->name, cost1, cost0[k]);
        for (int q = 0; q < b->n_pnodes; q++) {
            kiln_param *prm = kiln_graph_node_param(r.g, b->pnodes[q]);
            int64_t n = kiln_param_size(prm);
            double now[MAX_ELEMS];
            ck_assert_int_eq(kiln_program_get_param(p, b->pnodes[q], now, n), KILN_OK);
            const double *was = b->values[b->parg[q]];
            for (int64_t i = 0; i < n; i++) {
                double want = was[i] - lr * grad[k][q][i];
                ck_assert_msg(fabs(now[i] - want) <= rel * fmax(1, fabs(want)),
                              "%s: %s[%lld] is %.17g, want %.17g - %g * %.17g", c->name, kiln_param_name(prm),
                              (long long)i, now[i], was[i], lr, grad[k][q][i]);
            }
        }
    }
    free(grad);
    kiln_program_destroy(p);
    rows_free(&r);
}

START_TEST(op_train_step_applies_the_gradient)
{
    check_train_step(_i, KILN_DTYPE_F64, 1e-12);
}
END_TEST

START_TEST(op_train_step_float32_applies_the_gradient)
{
    check_train_step(_i, KILN_DTYPE_F32, 1e-5);
}
END_TEST

/* The analytic gradient against one known by hand: d/dw sum(w^2) = 2w. */
START_TEST(gradient_of_sum_of_squares_is_twice_w)
{
    if (skipped(NULL))
        return;
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
    if (skipped(NULL))
        return;
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

static const op_case *case_named(const char *name)
{
    for (size_t i = 0; i < sizeof OP_CASES / sizeof OP_CASES[0]; i++)
        if (strcmp(OP_CASES[i].name, name) == 0)
            return &OP_CASES[i];
    ck_abort_msg("no row named %s", name);
    return NULL;
}

/* gather's index out of [0, V): the step fails naming the input, the value
** and its position in the index tensor (row 1, column 2 of (B, 4): 6). */
START_TEST(gather_index_out_of_range_is_an_error_naming_the_input)
{
    if (skipped(NULL))
        return;
    built b;
    build_case(case_named("gather_batch"), &b);
    kiln_compile_options o = kiln_compile_options_default();
    o.outputs = &b.out;
    o.n_outputs = 1;
    o.max_batch = MAX_BATCH;
    kiln_program *p;
    ck_assert_int_eq(kiln_compile(b.g, &o, &p), KILN_OK);
    ck_assert_int_eq(kiln_program_bind_input(p, "a1", b.ints[1]), KILN_OK);
    ck_assert_int_eq(kiln_program_forward(p, BATCH), KILN_OK);
    b.ints[1][6] = 7;
    ck_assert_int_eq(kiln_program_forward(p, BATCH), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(p), "a1: value 7 at position 6") != NULL, "%s", kiln_program_errmsg(p));
    b.ints[1][6] = -1;
    ck_assert_int_eq(kiln_program_forward(p, BATCH), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(p), "a1: value -1 at position 6") != NULL, "%s", kiln_program_errmsg(p));
    kiln_program_destroy(p);
    free_case(&b);
}
END_TEST

/* A random op goes through the pipeline (test_rng.c checks the numbers):
** uniform draws of a (T, B, 4) shape land in [lo, hi) and are not all one. */
START_TEST(random_uniform_compiles_and_stays_in_range)
{
    if (skipped(NULL))
        return;
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node u = kiln_expr_random_uniform(g, kiln_graph_random_state(g, 7), 3, (int64_t[]){TB, 4}, -2, 3);
    ck_assert_msg(kiln_node_ok(u), "%s", kiln_graph_errmsg(g));
    kiln_compile_options o = kiln_compile_options_default();
    o.outputs = &u;
    o.n_outputs = 1;
    o.max_batch = MAX_BATCH;
    o.max_size[KILN_SYMBOL_INDEX(KILN_TIME)] = MAX_TIME;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    ck_assert_int_eq(kiln_program_set_size(p, KILN_TIME, TIME), KILN_OK);
    ck_assert_msg(kiln_program_forward(p, BATCH) == KILN_OK, "%s", kiln_program_errmsg(p));
    double v[TIME * BATCH * 4], lo = INFINITY, hi = -INFINITY;
    ck_assert_int_eq(kiln_program_read(p, u, v, TIME * BATCH * 4), KILN_OK);
    for (int i = 0; i < TIME * BATCH * 4; i++) {
        ck_assert_msg(v[i] >= -2 && v[i] < 3, "draw %d is %g", i, v[i]);
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
    }
    ck_assert_msg(hi - lo > 2.5, "48 draws span only [%g, %g]", lo, hi);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
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

/* A value that folds to a constant had no storage: as an output it could
** not be read ("not stored"), and as a graph update's value (a state reset
** to 0 every step) the program did not compile. */
START_TEST(regress_8_a_constant_output_and_update_value_are_stored)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_param *w = kiln_param_create("w", 1, (int64_t[]){3}), *st = kiln_state_create("s", 0, NULL);
    double wv[3] = {0.5, -1, 2}, five = 5, got[3];
    kiln_param_set_values(w, wv, 3);
    kiln_param_set_values(st, &five, 1);
    kiln_node wn = kiln_graph_param(g, w), sn = kiln_graph_param(g, st);
    kiln_node cost = kiln_expr_sum(g, kiln_expr_mul(g, wn, sn), KILN_ALL_AXES);
    ck_assert_int_eq(kiln_graph_update(g, sn, kiln_expr_constant(g, 0)), KILN_OK);
    kiln_node two = kiln_expr_mul(g, kiln_expr_constant(g, 2), kiln_expr_exp(g, kiln_expr_constant(g, 0)));
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = cost;
    o.step_rule = kiln_step_scale(0.5);
    o.outputs = &two;
    o.n_outputs = 1;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    ck_assert_int_eq(kiln_program_forward(p, 1), KILN_OK);
    ck_assert_msg(kiln_program_read_scalar(p, two, got) == KILN_OK, "%s", kiln_program_errmsg(p));
    ck_assert_double_eq(got[0], 2);
    ck_assert_msg(kiln_program_train_step(p, 1) == KILN_OK, "%s", kiln_program_errmsg(p));
    int k = 0;
    while (k < kiln_program_state_count(p) && strcmp(kiln_program_state_name(p, k), "s") != 0)
        k++;
    ck_assert_int_eq(kiln_program_get_state(p, k, got, 1), KILN_OK);
    ck_assert_double_eq(got[0], 0);
    ck_assert_int_eq(kiln_program_get_param(p, wn, got, 3), KILN_OK);
    for (int i = 0; i < 3; i++) ck_assert_double_eq(got[i], wv[i] - 0.5 * 5); /* with s as it was */
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_param_destroy(w);
    kiln_param_destroy(st);
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *t = tcase_create("ops");
    tcase_set_timeout(t, 600);
    int n = n_groups();
    tcase_add_loop_test(t, op_forward_matches_reference, 0, n);
    tcase_add_loop_test(t, op_forward_float32_matches_reference, 0, n);
    tcase_add_loop_test(t, op_gradient_matches_finite_differences, 0, n);
    tcase_add_loop_test(t, op_train_step_applies_the_gradient, 0, n);
    tcase_add_loop_test(t, op_train_step_float32_applies_the_gradient, 0, n);
    tcase_add_test(t, gradient_of_sum_of_squares_is_twice_w);
    tcase_add_test(t, target_out_of_range_is_an_error_naming_the_input);
    tcase_add_test(t, gather_index_out_of_range_is_an_error_naming_the_input);
    tcase_add_test(t, random_uniform_compiles_and_stays_in_range);
    tcase_add_test(t, regress_8_slice_and_split_sizes_do_not_overflow);
    tcase_add_test(t, regress_8_a_constant_output_and_update_value_are_stored);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return kiln_test_run(ops_suite());
}
