/* test_backends.c: every row through the JIT and the reference interpreter.
**
** As ggml's test-backend-ops checks each backend against the CPU, each row
** here (a small graph builder with its inputs and sizes) is compiled with
** kiln_compile, with guard bytes after every stored value (checked by the
** runtime after each step) and after every input buffer (checked here), and
** the same program graph runs through compiler/interp.c with the same
** inputs and parameter values. For each block of sizes, in order:
** forward (outputs), eval_step (cost, monitors), gradients (every
** gradient), train_step (repeated), each followed by every state; then
** every parameter (after a batch-1 block, only at the end: reading them
** would flush the deferred updates the next block's first step must).
** Float64 rows agree to ~1e-12, float32 rows to ~1e-5 (relative, with the
** array's largest magnitude as floor); random uniform and Bernoulli draws
** agree bit for bit. A failure prints the row, the step and the element.
** KILN_BACKENDS_ROW=<name> runs that row alone (with KILN_DUMP_SOURCE to
** read its program). New op? Add a row (compiler/graph.h's checklist). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/interp.h"
#include "gradcheck.h"
#include "runtime/kernels.h"
#include "runtime/program_internal.h"
#include "testutil.h"

#define MAX_IN 6
#define MAX_OWNED 8
#define MAX_ROOTS 4
#define MAX_BRICKS 6
#define MAX_BLOCKS 3
#define GUARD 64
#define GUARD_BYTE 0x5A
#define FX ((enum kiln_dtype)-1) /* in input specs: the graph's floats */

/* ---- what a row builds -------------------------------------------------- */

typedef struct in_spec {
    const char *name;
    enum kiln_dtype dtype;
    int rank;
    int64_t dims[KILN_MAX_RANK];
    double lo, hi; /* int inputs: integers in [lo, hi) */
    kiln_node node;
} in_spec;

typedef struct ctx {
    kiln_graph *g;
    enum kiln_dtype fx;
    in_spec in[MAX_IN];
    int n_in;
    kiln_param *owned[MAX_OWNED];
    int n_owned;
    kiln_brick *bricks[MAX_BRICKS];
    int n_bricks;
    kiln_node cost, out[MAX_ROOTS], mon[MAX_ROOTS];
    int n_out, n_mon;
    int64_t sym_s; /* the user symbol S, when the row made one */
} ctx;

typedef struct block {
    int64_t b, t, s; /* sizes of B, T and S */
} block;

typedef struct row {
    const char *name;
    enum kiln_dtype fx;
    void (*build)(ctx *c);
    int rule; /* 0 Scale(0.1), 1 Momentum(0.1, 0.9), 2 Adam (Blocks' defaults) */
    int steps;
    block blocks[MAX_BLOCKS];
    bool no_fast_paths;
    bool exact_outputs; /* outputs bit for bit (random uniform, Bernoulli) */
    const char *source_has; /* a fast path the row is there to exercise */
    double tol;
} row;

/* A row named "<name>@<isa>" forces kiln's kernels to that ISA (#13); it is
** skipped, saying so, where the CPU lacks it. NULL: the CPU's best. */
static const char *row_isa(const row *r)
{
    const char *at = strchr(r->name, '@');
    return at ? at + 1 : NULL;
}

static kiln_node input(ctx *c, const char *name, enum kiln_dtype t, int rank, const int64_t *dims, double lo, double hi)
{
    in_spec *s = &c->in[c->n_in++];
    ck_assert_int_le(c->n_in, MAX_IN);
    *s = (in_spec){.name = name, .dtype = t == FX ? c->fx : t, .rank = rank, .lo = lo, .hi = hi};
    memcpy(s->dims, dims, (size_t)rank * sizeof *dims);
    s->node = kiln_graph_input(c->g, name, s->dtype, rank, dims);
    return s->node;
}

/* A parameter of no brick with values in [lo, hi). */
static kiln_node param(ctx *c, const char *name, int rank, const int64_t *dims, double lo, double hi)
{
    kiln_param *p = kiln_param_create(name, rank, dims);
    ck_assert_ptr_nonnull(p);
    int64_t n = kiln_param_size(p);
    double *v = malloc((size_t)n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    gc_fill(v, n, lo, hi, 0.05, (unsigned)(c->n_owned * 31 + 7));
    ck_assert_int_eq(kiln_param_set_values(p, v, n), KILN_OK);
    free(v);
    c->owned[c->n_owned++] = p;
    ck_assert_int_le(c->n_owned, MAX_OWNED);
    return kiln_graph_param(c->g, p);
}

static kiln_brick *brick(ctx *c, kiln_brick *b)
{
    ck_assert_ptr_nonnull(b);
    c->bricks[c->n_bricks++] = b;
    ck_assert_int_le(c->n_bricks, MAX_BRICKS);
    return b;
}

static void output(ctx *c, kiln_node n) { c->out[c->n_out++] = n; }
static void monitor(ctx *c, kiln_node n) { c->mon[c->n_mon++] = n; }

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define K(v) kiln_expr_constant(g, v)
#define K1(gr, v) kiln_expr_constant(gr, v)

/* ---- op rows -------------------------------------------------------------- */

/* Every unary op on one value, each kept inside its domain. */
static void b_unary(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 2, D(KILN_BATCH, 5), -1.5, 1.5);
    kiln_node h = kiln_expr_mul(g, x, param(c, "w", 1, D(5), 0.5, 1.5));
    kiln_node ab = kiln_expr_abs(g, h);
    kiln_node terms[] = {
        kiln_expr_tanh(g, h),
        kiln_expr_mul(g, kiln_expr_sigmoid(g, h), kiln_expr_softplus(g, h)),
        kiln_expr_relu(g, h),
        kiln_expr_mul(g, K(0.1), kiln_expr_exp(g, kiln_expr_neg(g, h))),
        kiln_expr_mul(g, ab, kiln_expr_log(g, kiln_expr_add(g, ab, K(0.5)))),
        kiln_expr_sqrt(g, kiln_expr_add(g, kiln_expr_square(g, h), K(1))),
        kiln_expr_clip(g, h, -0.5, 0.7),
        kiln_expr_mul(g, K(0.2), kiln_expr_sign(g, h)),
    };
    kiln_node s = terms[0];
    for (size_t k = 1; k < KILN_ARRAY_LEN(terms); k++)
        s = kiln_expr_add(g, s, terms[k]);
    output(c, s);
}

/* Binary ops with numpy broadcasting: a row vector, a column, a scalar. */
static void b_binary(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 2, D(KILN_BATCH, 4), -1, 1);
    kiln_node p = param(c, "p", 1, D(4), 0.5, 1.5), q = param(c, "q", 3, D(3, 1, 1), -1, 1);
    kiln_node x3 = kiln_expr_reshape(g, x, 3, D(1, KILN_BATCH, 4));
    kiln_node pw = kiln_expr_pow(g, kiln_expr_add(g, kiln_expr_abs(g, x3), K(0.5)), p);
    kiln_node dv = kiln_expr_div(g, kiln_expr_sub(g, x3, q), kiln_expr_add(g, kiln_expr_square(g, p), K(0.5)));
    output(c, kiln_expr_add(g, pw, dv)); /* (3, B, 4) */
    output(c, kiln_expr_add(g, kiln_expr_maximum(g, x, p), kiln_expr_minimum(g, kiln_expr_neg(g, p), x)));
}

/* Comparisons (float and int operands), select, casts both ways. */
static void b_compare_select(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 2, D(KILN_BATCH, 4), -2, 2);
    kiln_node w = param(c, "w", 1, D(4), -1, 1);
    kiln_node xi = kiln_expr_cast(g, kiln_expr_mul(g, x, K(3)), KILN_DTYPE_I32);
    kiln_node wi = kiln_expr_cast(g, kiln_expr_mul(g, w, K(3)), KILN_DTYPE_I32);
    kiln_node sel = kiln_expr_select(g, kiln_expr_greater_equal(g, x, w), kiln_expr_mul(g, x, w),
                                     kiln_expr_minimum(g, x, kiln_expr_tanh(g, w)));
    kiln_node flags = kiln_expr_add(g, kiln_expr_add(g, kiln_expr_greater(g, x, w), kiln_expr_less(g, x, K(0.3))),
                                    kiln_expr_add(g, kiln_expr_equal(g, xi, wi), kiln_expr_not_equal(g, xi, wi)));
    flags = kiln_expr_add(g, flags, kiln_expr_less_equal(g, xi, wi));
    output(c, kiln_expr_add(g, sel, kiln_expr_mul(g, K(0.25), flags)));
    output(c, kiln_expr_mul(g, kiln_expr_cast(g, xi, c->fx), w));
}

/* Broadcasting across symbolic dims: (S, 1, 4) with (B, 4) and (4,); means
** over symbolic axes divide by run-time sizes (SYMBOL nodes). */
static void b_broadcast_symbolic(ctx *c)
{
    kiln_graph *g = c->g;
    c->sym_s = kiln_graph_symbol(g, "S");
    kiln_node a = input(c, "a", FX, 3, D(c->sym_s, 1, 4), -1, 1);
    kiln_node b = input(c, "b", FX, 2, D(KILN_BATCH, 4), -1, 1);
    kiln_node w = param(c, "w", 1, D(4), -1, 1), u = param(c, "u", 3, D(1, 1, 4), 0.5, 1);
    kiln_node y = kiln_expr_mul(g, kiln_expr_add(g, kiln_expr_mul(g, a, b), w), u); /* (S, B, 4) */
    output(c, y);
    output(c, kiln_expr_mean_axes(g, kiln_expr_tanh(g, y), 3u));
    output(c, kiln_expr_mean(g, y, KILN_ALL_AXES));
}

/* Sums, maxima and means over sets of axes of a (B, 3, 4) value. */
static void b_reduce(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 3, D(KILN_BATCH, 3, 4), -1, 1);
    kiln_node h = kiln_expr_mul(g, x, param(c, "w", 2, D(3, 4), -1, 1));
    output(c, kiln_expr_sum_axes(g, h, 5u));                     /* (3,) */
    output(c, kiln_expr_max(g, h, 1));                           /* (B, 4) */
    output(c, kiln_expr_add(g, kiln_expr_max_axes(g, h, 5u), kiln_expr_mean(g, h, KILN_ALL_AXES)));
    output(c, kiln_expr_mean(g, kiln_expr_square(g, h), 0));     /* (3, 4) over B */
}

/* 2-D products, with transposes folded into flags (one contracted over B). */
static void b_matmul2(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 2, D(KILN_BATCH, 4), -1, 1);
    kiln_node w = param(c, "w", 2, D(4, 5), -1, 1), v = param(c, "v", 2, D(5, 3), -1, 1);
    kiln_node h = kiln_expr_tanh(g, kiln_expr_matmul(g, x, w));
    output(c, kiln_expr_matmul(g, h, v));
    output(c, kiln_expr_matmul(g, kiln_expr_transpose(g, x), h)); /* (4, 5) over the batch */
    output(c, kiln_expr_matmul(g, h, kiln_expr_transpose(g, w)));  /* (B, 4) */
}

/* Batched products: both sides batched, a 3-D side against a 2-D one
** (folded into one GEMM), a 2-D side against a batched one, and a 3-D
** transpose read by a product. */
static void b_matmul_batched(ctx *c)
{
    kiln_graph *g = c->g;
    c->sym_s = kiln_graph_symbol(g, "S");
    kiln_node a = param(c, "a", 3, D(2, 3, 4), -1, 1), b = param(c, "b", 3, D(2, 4, 5), -1, 1);
    kiln_node x = input(c, "x", FX, 3, D(c->sym_s, 3, 4), -1, 1);
    kiln_node w = param(c, "w", 2, D(4, 5), -1, 1), p = param(c, "p", 2, D(2, 4), -1, 1);
    kiln_node ab = kiln_expr_matmul(g, a, b);                                    /* (2, 3, 5) */
    output(c, kiln_expr_matmul(g, kiln_expr_permute(g, ab, 3, (const int[]){0, 2, 1}), a)); /* (2, 5, 4) */
    kiln_node xw = kiln_expr_tanh(g, kiln_expr_matmul(g, x, w));                 /* (S, 3, 5) */
    output(c, xw);
    output(c, kiln_expr_matmul(g, p, kiln_expr_permute(g, x, 3, (const int[]){0, 2, 1}))); /* (S, 2, 3) */
}

/* Axes permuted (3-D and 2-D). */
static void b_permute(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 3, D(KILN_BATCH, 3, 4), -1, 1);
    kiln_node y = kiln_expr_permute(g, x, 3, (const int[]){2, 0, 1}); /* (4, B, 3) */
    kiln_node w = param(c, "w", 2, D(3, 4), -1, 1);
    output(c, kiln_expr_mul(g, y, kiln_expr_reshape(g, kiln_expr_transpose(g, w), 3, D(4, 1, 3))));
    output(c, kiln_expr_permute(g, kiln_expr_tanh(g, y), 3, (const int[]){1, 0, 2}));
}

/* Reshape and flatten of a (T, B, F) value: products of symbols as dims. */
static void b_reshape_tbf(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 3, D(KILN_TIME, KILN_BATCH, 4), -1, 1);
    kiln_node w = param(c, "w", 1, D(4), -1, 1);
    kiln_node rows = kiln_expr_reshape(g, kiln_expr_mul(g, x, w), 2, D(KILN_INFER, 4)); /* (T*B, 4) */
    kiln_node back = kiln_expr_reshape(g, kiln_expr_tanh(g, rows), 3, D(KILN_TIME, KILN_BATCH, 4));
    output(c, kiln_expr_flatten(g, back, 2)); /* (T, B*4) */
    output(c, kiln_expr_mul(g, kiln_expr_reshape(g, x, 4, D(KILN_TIME, KILN_BATCH, 2, 2)),
                            kiln_expr_reshape(g, w, 2, D(2, 2))));
    output(c, kiln_expr_flatten(g, kiln_expr_square(g, back), 1)); /* (T*B*4,) */
}

/* Slice (with a step), concat, reverse (of a symbolic axis too), split. */
static void b_axis_ops(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 2, D(KILN_BATCH, 6), -1, 1);
    kiln_node z = input(c, "z", FX, 2, D(KILN_BATCH, 3), -1, 1);
    kiln_node w = param(c, "w", 1, D(6), 0.5, 1.5), p = param(c, "p", 2, D(2, 3), -1, 1),
              q = param(c, "q", 2, D(3, 3), -1, 1);
    kiln_node xw = kiln_expr_mul(g, x, w);
    kiln_node sl = kiln_expr_slice(g, xw, 1, 1, 6, 2); /* (B, 3) */
    kiln_node parts[2] = {sl, kiln_expr_tanh(g, z)};
    kiln_node cat = kiln_expr_concat(g, parts, 2, 1); /* (B, 6) */
    output(c, kiln_expr_add(g, kiln_expr_reverse(g, cat, 0), kiln_expr_reverse(g, xw, 1)));
    kiln_node sp = kiln_expr_split(g, xw, 1, 2, D(2, 4));
    kiln_node s0 = kiln_expr_output(g, sp, 0), s1 = kiln_expr_output(g, sp, 1);
    output(c, kiln_expr_add(g, kiln_expr_slice(g, s1, 1, 0, 4, 2), kiln_expr_square(g, s0)));
    kiln_node pq[2] = {p, q};
    kiln_node pqc = kiln_expr_concat(g, pq, 2, 0); /* (5, 3) */
    output(c, kiln_expr_matmul(g, z, kiln_expr_transpose(g, kiln_expr_slice(g, pqc, 0, 1, 5, 1))));
}

/* Last-axis ops on a (T, B, 5) value: softmax, log-softmax, argmax, pick,
** and the cross-entropy the rewrites make (its gradient reads a one-hot). */
static void b_last_axis(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 3, D(KILN_TIME, KILN_BATCH, 5), -2, 2);
    kiln_node y = input(c, "y", KILN_DTYPE_I32, 2, D(KILN_TIME, KILN_BATCH), 0, 5);
    kiln_node h = kiln_expr_mul(g, x, param(c, "w", 1, D(5), 0.5, 1.5));
    output(c, kiln_expr_softmax(g, h));
    output(c, kiln_expr_log_softmax(g, kiln_expr_tanh(g, h)));
    output(c, kiln_expr_argmax(g, h));
    output(c, kiln_expr_pick(g, kiln_expr_square(g, h), y));
    kiln_node xent = kiln_expr_neg(g, kiln_expr_pick(g, kiln_expr_log_softmax(g, h), y));
    kiln_node sq = kiln_expr_pick(g, kiln_expr_softmax(g, kiln_expr_mul(g, h, K(0.5))), y);
    c->cost = kiln_expr_add(g, kiln_expr_mean(g, xent, KILN_ALL_AXES), kiln_expr_mean(g, sq, KILN_ALL_AXES));
    monitor(c, kiln_expr_mean(g, kiln_expr_not_equal(g, kiln_expr_argmax(g, h), y), KILN_ALL_AXES));
}

/* Rows of a table by index, twice (its gradient adds two scatters). */
static void b_gather(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node idx = input(c, "idx", KILN_DTYPE_I32, 2, D(KILN_BATCH, 2), 0, 7);
    kiln_node idt = input(c, "idt", KILN_DTYPE_I32, 1, D(KILN_TIME), 0, 7);
    kiln_node x = input(c, "x", FX, 3, D(KILN_BATCH, 2, 3), -1, 1);
    kiln_node table = param(c, "table", 2, D(7, 3), -1, 1);
    output(c, kiln_expr_mul(g, kiln_expr_gather(g, table, idx), x));          /* (B, 2, 3) */
    output(c, kiln_expr_tanh(g, kiln_expr_gather(g, kiln_expr_square(g, table), idt))); /* (T, 3) */
}

/* Uniform and Bernoulli draws as outputs (bit for bit); the cost reads none,
** so eval_step must not advance the state and forward must. */
static void b_random_outputs(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 2, D(KILN_BATCH, 4), -1, 1);
    kiln_node s = kiln_graph_random_state(g, 1234);
    output(c, kiln_expr_random_uniform(g, s, 2, D(KILN_BATCH, 4), -1.5, 2.25));
    output(c, kiln_expr_random_bernoulli(g, s, 3, D(2, KILN_BATCH, 3), 0.3));
    output(c, kiln_expr_random_uniform(g, kiln_graph_random_state(g, (uint64_t)1 << 40 | 99), 1, D(5), 0, 1));
    kiln_node h = kiln_expr_mul(g, x, param(c, "w", 1, D(4), -1, 1));
    c->cost = kiln_expr_mean(g, kiln_expr_square(g, h), KILN_ALL_AXES);
}

/* Normal draws (close: Box-Muller through libm), and a dropout mask in
** the cost: every entry point draws, and training sees the same masks. */
static void b_random_dropout(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 2, D(KILN_BATCH, 4), -1, 1);
    kiln_node s = kiln_graph_random_state(g, 77);
    output(c, kiln_expr_random_normal(g, s, 2, D(KILN_BATCH, 3), 0.5, 2));
    kiln_node mask = kiln_expr_random_bernoulli(g, s, 2, D(KILN_BATCH, 5), 0.6);
    kiln_node h = kiln_expr_tanh(g, kiln_expr_matmul(g, x, param(c, "w", 2, D(4, 5), -1, 1)));
    kiln_node d = kiln_expr_div(g, kiln_expr_mul(g, h, mask), K(0.6));
    c->cost = kiln_expr_mean(g, kiln_expr_square(g, kiln_expr_sub(g, d, K(0.2))), KILN_ALL_AXES);
    monitor(c, kiln_expr_mean(g, mask, KILN_ALL_AXES));
}

/* ---- model rows ---------------------------------------------------------------- */

/* The Blocks tutorial's MLP (docs "Introduction"): Linear 'input_to_hidden',
** Rectifier, Linear 'hidden_to_output', Softmax; cross-entropy plus
** 0.005 * sum W^2 per weight; misclassification rate monitored. Small dims;
** weights N(0, 0.1) so that three steps move them visibly. */
static void b_tutorial_mlp(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "features", FX, 2, D(KILN_BATCH, 12), 0, 1);
    kiln_node y = input(c, "targets", KILN_DTYPE_I32, 1, D(KILN_BATCH), 0, 5);
    kiln_brick *l1 = brick(c, kiln_linear_create("input_to_hidden", 12, 8));
    kiln_brick *l2 = brick(c, kiln_linear_create("hidden_to_output", 8, 5));
    kiln_brick *relu = brick(c, kiln_rectifier_create(NULL)), *sm = brick(c, kiln_softmax_create(NULL));
    kiln_brick *ce = brick(c, kiln_categorical_cross_entropy_create(NULL));
    kiln_brick *mis = brick(c, kiln_misclassification_rate_create(NULL));
    kiln_node h, a, o, probs, cost, err;
    for (int k = 0; k < 2; k++) {
        kiln_brick *l = k ? l2 : l1;
        kiln_brick_set_weights_init(l, kiln_init_isotropic_gaussian(0.1, 0));
        kiln_brick_set_biases_init(l, kiln_init_constant(0.01));
        kiln_brick_set_seed(l, 3 + (uint64_t)k);
    }
    ck_assert_int_eq(kiln_brick_apply(l1, g, x, &h), KILN_OK);
    ck_assert_int_eq(kiln_brick_apply(relu, g, h, &a), KILN_OK);
    ck_assert_int_eq(kiln_brick_apply(l2, g, a, &o), KILN_OK);
    ck_assert_int_eq(kiln_brick_apply(sm, g, o, &probs), KILN_OK);
    ck_assert_int_eq(kiln_cost_apply(ce, g, y, probs, &cost), KILN_OK);
    ck_assert_int_eq(kiln_cost_apply(mis, g, y, probs, &err), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(l1), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(l2), KILN_OK);
    kiln_node w1 = kiln_graph_param(g, kiln_brick_param_by_name(l1, "W"));
    kiln_node w2 = kiln_graph_param(g, kiln_brick_param_by_name(l2, "W"));
    kiln_node reg = kiln_expr_add(g, kiln_expr_mul(g, K(0.005), kiln_expr_sum(g, kiln_expr_square(g, w1), KILN_ALL_AXES)),
                                  kiln_expr_mul(g, K(0.005), kiln_expr_sum(g, kiln_expr_square(g, w2), KILN_ALL_AXES)));
    c->cost = kiln_expr_add(g, cost, reg);
    kiln_graph_set_name(g, c->cost, "cost_with_regularization");
    monitor(c, err);
    output(c, probs);
}

/* MLP([Rectifier, Softmax], [in, hidden, out]) with cross-entropy and no
** regularisation, weights drawn with deviation std. */
static void mlp_of(ctx *c, int64_t in, int64_t hidden, int64_t out, double std)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "features", FX, 2, D(KILN_BATCH, in), -0.3, 0.7);
    kiln_node y = input(c, "targets", KILN_DTYPE_I32, 1, D(KILN_BATCH), 0, (double)out);
    kiln_brick *acts[2] = {kiln_rectifier_create(NULL), kiln_softmax_create(NULL)};
    kiln_brick *mlp = brick(c, kiln_mlp_create(NULL, acts, 2, D(in, hidden, out)));
    kiln_brick *ce = brick(c, kiln_categorical_cross_entropy_create(NULL));
    kiln_brick_set_weights_init(mlp, kiln_init_isotropic_gaussian(std, 0));
    kiln_brick_set_biases_init(mlp, kiln_init_constant(0.05));
    kiln_node probs;
    ck_assert_int_eq(kiln_brick_apply(mlp, g, x, &probs), KILN_OK);
    ck_assert_int_eq(kiln_cost_apply(ce, g, y, probs, &c->cost), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(mlp), KILN_OK);
    output(c, probs);
}

/* [6, 5, 3]: Scale's updates fit the lowering patterns (an update inside
** the gradient's GEMM; at batch 1, deferred to the next step). */
static void b_plain_mlp(ctx *c) { mlp_of(c, 6, 5, 3, 0.3); }

/* [300, 256, 10]: wide enough that each ISA's kernels take its products
** (runtime/kernels.h: y = x W with 256 columns over 300 terms, the
** 10-column classifier, the 300 x 256 update at batch 32 on AVX-512). */
static void b_wide_mlp(ctx *c) { mlp_of(c, 300, 256, 10, 0.05); }

/* Blocks' recipe for binary targets with logits out to about +-60:
** BinaryCrossEntropy on Logistic(Linear), which the program graph takes as
** softplus (#9); soft targets in [0, 1]. */
static void b_bce_logistic(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 2, D(KILN_BATCH, 4), -1, 1);
    kiln_node y = input(c, "y", FX, 2, D(KILN_BATCH, 3), 0, 1);
    kiln_brick *lin = brick(c, kiln_linear_create(NULL, 4, 3));
    kiln_brick *lg = brick(c, kiln_logistic_create(NULL)), *bce = brick(c, kiln_binary_cross_entropy_create(NULL));
    kiln_brick_set_weights_init(lin, kiln_init_isotropic_gaussian(25, 0));
    kiln_brick_set_biases_init(lin, kiln_init_constant(5));
    kiln_node h, p;
    ck_assert_int_eq(kiln_brick_apply(lin, g, x, &h), KILN_OK);
    ck_assert_int_eq(kiln_brick_apply(lg, g, h, &p), KILN_OK);
    ck_assert_int_eq(kiln_cost_apply(bce, g, y, p, &c->cost), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(lin), KILN_OK);
    output(c, p);
}

/* A sequence model on (T, B, F): one Linear applied at every time step by
** folding T into the rows, tanh, the mean over T, a classifier, a cost. */
static void b_sequence_model(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 3, D(KILN_TIME, KILN_BATCH, 4), -1, 1);
    kiln_node y = input(c, "y", KILN_DTYPE_I32, 1, D(KILN_BATCH), 0, 3);
    kiln_brick *step = brick(c, kiln_linear_create("per_step", 4, 6));
    kiln_brick *out = brick(c, kiln_linear_create("classifier", 6, 3));
    kiln_brick *sm = brick(c, kiln_softmax_create(NULL));
    for (int k = 0; k < 2; k++) {
        kiln_brick_set_weights_init(k ? out : step, kiln_init_isotropic_gaussian(0.4, 0));
        kiln_brick_set_biases_init(k ? out : step, kiln_init_constant(0.1));
    }
    kiln_node rows = kiln_expr_reshape(g, x, 2, D(KILN_INFER, 4)), h, logits, xent;
    ck_assert_int_eq(kiln_brick_apply(step, g, rows, &h), KILN_OK);
    kiln_node seq = kiln_expr_tanh(g, kiln_expr_reshape(g, h, 3, D(KILN_TIME, KILN_BATCH, 6)));
    kiln_node pooled = kiln_expr_mean(g, seq, 0); /* (B, 6): divides by T at run time */
    ck_assert_int_eq(kiln_brick_apply(out, g, pooled, &logits), KILN_OK);
    ck_assert_int_eq(kiln_softmax_categorical_cross_entropy(sm, g, y, logits, &xent), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(step), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(out), KILN_OK);
    c->cost = kiln_expr_mean(g, xent, KILN_ALL_AXES);
    output(c, pooled);
    monitor(c, kiln_expr_mean(g, kiln_expr_max(g, seq, 2), KILN_ALL_AXES));
}

/* ---- scans ------------------------------------------------------------------ */

typedef struct rnn_params {
    kiln_param *u, *w;
} rnn_params;

/* h_t = tanh(x_t U + h_{t-1} W + c); outputs h_t * c (stacked) and
** h_t^2 (summed over the steps). */
static enum kiln_status rnn_step(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    const rnn_params *m = user;
    kiln_node pre = kiln_expr_add(body, kiln_expr_matmul(body, args[0], kiln_graph_param(body, m->u)),
                                  kiln_expr_matmul(body, args[1], kiln_graph_param(body, m->w)));
    res[0] = kiln_expr_tanh(body, kiln_expr_add(body, pre, args[2]));
    res[1] = kiln_expr_mul(body, res[0], args[2]);
    res[2] = kiln_expr_square(body, res[0]);
    return KILN_OK;
}

/* U (3, 4) and W (4, 4) of the RNN. */
static rnn_params rnn_weights(ctx *c)
{
    rnn_params m;
    param(c, "U", 2, D(3, 4), -0.8, 0.8);
    m.u = c->owned[c->n_owned - 1];
    param(c, "W", 2, D(4, 4), -0.8, 0.8);
    m.w = c->owned[c->n_owned - 1];
    return m;
}

/* A tanh RNN of h units over x (T, B, 3) with a trainable initial state and
** a context, every result of the scan an output (the cost reads them all). */
static void rnn_scan_of(ctx *c, bool reverse, int64_t h)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 3, D(KILN_TIME, KILN_BATCH, 3), -1, 1);
    rnn_params m;
    param(c, "U", 2, D(3, h), -0.8, 0.8);
    m.u = c->owned[c->n_owned - 1];
    param(c, "W", 2, D(h, h), -0.8 / (double)h * 4, 0.8 / (double)h * 4);
    m.w = c->owned[c->n_owned - 1];
    kiln_node h0 = kiln_expr_broadcast(g, param(c, "h0", 1, D(h), -0.5, 0.5), 2, D(KILN_BATCH, h));
    kiln_node ctxv = param(c, "c", 1, D(h), -0.5, 0.5);
    kiln_scan_spec spec = {.n_sequences = 1, .n_states = 1, .n_contexts = 1, .n_outputs = 2, .reverse = reverse,
                           .sum_outputs = 2};
    kiln_node s = kiln_expr_scan(g, &spec, &x, &h0, &ctxv, rnn_step, &m);
    ck_assert_msg(kiln_node_ok(s), "%s", kiln_graph_errmsg(g));
    for (int k = 0; k < 4; k++) /* stacked h, final h, stacked h * c, summed h^2 */
        output(c, kiln_expr_output(g, s, k));
    /* the states read (squared: a plain mean of values around 0 cancels) */
    monitor(c, kiln_expr_mean(g, kiln_expr_square(g, kiln_expr_output(g, s, 4)), KILN_ALL_AXES));
}

/* The RNN's step with dropout on its new state: a mask drawn in the step
** (the same in the gradient's recomputed step). */
static enum kiln_status rnn_dropout_step(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    enum kiln_status st = rnn_step(body, args, res, user);
    kiln_node m = kiln_expr_random_bernoulli(body, kiln_graph_random_state(body, 5), 2, D(KILN_BATCH, 4), 0.7);
    res[0] = kiln_expr_mul(body, res[0], kiln_expr_mul(body, m, K1(body, 1 / 0.7)));
    return st;
}

static void b_scan_dropout(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 3, D(KILN_TIME, KILN_BATCH, 3), -1, 1);
    rnn_params m = rnn_weights(c);
    kiln_node h0 = kiln_expr_broadcast(g, K(0), 2, D(KILN_BATCH, 4));
    kiln_node ctxv = param(c, "c", 1, D(4), -0.5, 0.5);
    kiln_scan_spec spec = {.n_sequences = 1, .n_states = 1, .n_contexts = 1, .n_outputs = 2, .sum_outputs = 2};
    kiln_node s = kiln_expr_scan(g, &spec, &x, &h0, &ctxv, rnn_dropout_step, &m);
    ck_assert_msg(kiln_node_ok(s), "%s", kiln_graph_errmsg(g));
    output(c, kiln_expr_output(g, s, 0));
    output(c, kiln_expr_output(g, s, 2));
}

static void rnn_scan(ctx *c, bool reverse) { rnn_scan_of(c, reverse, 4); }
static void b_scan_rnn(ctx *c) { rnn_scan(c, false); }
static void b_scan_rnn_reverse(ctx *c) { rnn_scan(c, true); }
/* 32 units: W's rows a multiple of 32 floats, so the step's h W reads a
** copy of W made once per sequence, packed for the kernel where the ISA
** has one (AVX2: rt->pack_nn), rows padded apart elsewhere */
static void b_scan_rnn_wide(ctx *c) { rnn_scan_of(c, false, 32); }

/* The inner step: a running sum of its sequence's rows, scaled by v. */
static enum kiln_status inner_step(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    res[0] = kiln_expr_add(body, args[1], kiln_expr_mul(body, args[0], kiln_graph_param(body, user)));
    return KILN_OK;
}

/* The outer step: x_t is (B, 2, 3), permuted to (2, B, 3); an inner scan
** sums its 2 rows, and h_t = tanh(h_{t-1} + that). */
static enum kiln_status outer_step(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    kiln_node xt = kiln_expr_permute(body, args[0], 3, (const int[]){1, 0, 2});
    kiln_node zero = kiln_expr_broadcast(body, kiln_expr_constant(body, 0), 2, D(KILN_BATCH, 3));
    kiln_scan_spec spec = {.n_sequences = 1, .n_states = 1};
    kiln_node inner = kiln_expr_scan(body, &spec, &xt, &zero, NULL, inner_step, user);
    res[0] = kiln_expr_tanh(body, kiln_expr_add(body, args[1], kiln_expr_output(body, inner, 1)));
    return KILN_OK;
}

/* A scan in a scan's step: the body's own body is a function of its own. */
static void b_scan_nested(ctx *c)
{
    kiln_graph *g = c->g;
    kiln_node x = input(c, "x", FX, 4, D(KILN_TIME, KILN_BATCH, 2, 3), -1, 1);
    param(c, "v", 1, D(3), 0.5, 1.5);
    kiln_param *v = c->owned[c->n_owned - 1];
    kiln_node h0 = kiln_expr_broadcast(g, kiln_expr_constant(g, 0.25), 2, D(KILN_BATCH, 3));
    kiln_scan_spec spec = {.n_sequences = 1, .n_states = 1};
    kiln_node s = kiln_expr_scan(g, &spec, &x, &h0, NULL, outer_step, v);
    ck_assert_msg(kiln_node_ok(s), "%s", kiln_graph_errmsg(g));
    output(c, kiln_expr_output(g, s, 0));
}

#define B1(b) {{b, 0, 0}}
#define F64 KILN_DTYPE_F64
#define F32 KILN_DTYPE_F32

static const row ROWS[] = {
    /* name                 dtype build               rule steps blocks (B, T, S)       no_fast exact source_has tol */
    {"unary_chain", F64, b_unary, 0, 2, B1(3), false, false, NULL, 1e-12},
    {"unary_chain_f32", F32, b_unary, 0, 2, B1(3), false, false, NULL, 1e-5},
    {"binary_broadcast", F64, b_binary, 0, 2, B1(3), false, false, NULL, 1e-12},
    {"compare_select_cast", F64, b_compare_select, 0, 2, B1(4), false, false, NULL, 1e-12},
    {"broadcast_symbolic", F64, b_broadcast_symbolic, 0, 2, {{3, 0, 2}, {1, 0, 3}}, false, false, NULL, 1e-12},
    {"reduce_axes", F64, b_reduce, 0, 2, {{3, 0, 0}, {1, 0, 0}}, false, false, NULL, 1e-12},
    {"reduce_axes_f32", F32, b_reduce, 0, 2, B1(5), false, false, NULL, 1e-5},
    {"matmul_2d", F64, b_matmul2, 0, 2, {{4, 0, 0}, {1, 0, 0}}, false, false, NULL, 1e-12},
    {"matmul_2d_f32", F32, b_matmul2, 0, 2, {{4, 0, 0}, {1, 0, 0}}, false, false, NULL, 1e-5},
    {"matmul_batched", F64, b_matmul_batched, 0, 2, {{1, 0, 3}}, false, false, NULL, 1e-12},
    {"permute", F64, b_permute, 0, 2, B1(3), false, false, NULL, 1e-12},
    {"reshape_flatten_tbf", F64, b_reshape_tbf, 0, 2, {{3, 2, 0}, {2, 4, 0}}, false, false, NULL, 1e-12},
    {"slice_concat_reverse_split", F64, b_axis_ops, 0, 2, B1(3), false, false, NULL, 1e-12},
    {"last_axis_3d", F64, b_last_axis, 0, 2, {{3, 2, 0}}, false, false, NULL, 1e-12},
    {"last_axis_3d_f32", F32, b_last_axis, 0, 2, {{3, 2, 0}}, false, false, NULL, 1e-5},
    {"gather_scatter", F64, b_gather, 0, 2, {{3, 4, 0}}, false, false, NULL, 1e-12},
    {"random_uniform_bernoulli", F64, b_random_outputs, 0, 2, {{3, 0, 0}, {2, 0, 0}}, false, true, NULL, 1e-12},
    {"random_uniform_bernoulli_f32", F32, b_random_outputs, 0, 2, B1(3), false, true, NULL, 1e-5},
    {"random_normal_dropout", F64, b_random_dropout, 0, 3, B1(4), false, false, NULL, 1e-12},
    {"random_normal_dropout_f32", F32, b_random_dropout, 0, 3, B1(4), false, false, NULL, 1e-5},
    {"tutorial_mlp_scale", F32, b_tutorial_mlp, 0, 3, B1(6), false, false, NULL, 1e-5},
    {"tutorial_mlp_scale_f64", F64, b_tutorial_mlp, 0, 3, B1(6), false, false, NULL, 1e-12},
    {"tutorial_mlp_momentum", F32, b_tutorial_mlp, 1, 3, B1(6), false, false, NULL, 1e-5},
    {"tutorial_mlp_adam", F32, b_tutorial_mlp, 2, 3, B1(6), false, false, NULL, 1e-5},
    {"tutorial_mlp_adam_f64", F64, b_tutorial_mlp, 2, 3, B1(6), false, false, NULL, 1e-12},
    {"sequence_model_tbf", F32, b_sequence_model, 0, 3, {{3, 4, 0}, {2, 2, 0}}, false, false, NULL, 1e-5},
    {"sequence_model_tbf_f64", F64, b_sequence_model, 0, 3, {{3, 4, 0}}, false, false, NULL, 1e-12},
    {"bce_on_logistic_wide", F64, b_bce_logistic, 0, 3, B1(5), false, false, NULL, 1e-12},
    {"bce_on_logistic_wide_f32", F32, b_bce_logistic, 0, 3, B1(5), false, false, NULL, 1e-5},
    {"mlp_fast_paths", F32, b_plain_mlp, 0, 3, {{1, 0, 0}, {5, 0, 0}, {1, 0, 0}}, false, false,
     "pend_mlp_linear_0_W[0] = 1;", 1e-5},
    {"mlp_no_fast_paths", F32, b_plain_mlp, 0, 3, {{1, 0, 0}, {5, 0, 0}, {1, 0, 0}}, true, false, NULL, 1e-5},
    {"mlp_wide@avx512", F32, b_wide_mlp, 0, 2, {{32, 0, 0}, {5, 0, 0}, {1, 0, 0}}, false, false, "rt->sgemm_tn(",
     1e-4},
    {"mlp_wide@avx2", F32, b_wide_mlp, 0, 2, {{32, 0, 0}, {5, 0, 0}, {1, 0, 0}}, false, false, "rt->sgemm_tn(",
     1e-4},
    {"mlp_wide@blas", F32, b_wide_mlp, 0, 2, {{32, 0, 0}, {5, 0, 0}, {1, 0, 0}}, false, false, "rt->sgemm_tn(",
     1e-4},
    {"mlp_wide_momentum@avx512", F32, b_wide_mlp, 1, 2, {{32, 0, 0}, {2, 0, 0}}, false, false, "rt->sgemm_tn(",
     1e-4},
    {"mlp_wide_momentum@avx2", F32, b_wide_mlp, 1, 2, {{32, 0, 0}, {2, 0, 0}}, false, false, "rt->sgemm_tn(",
     1e-4},
    {"mlp_fast_paths_f64", F64, b_plain_mlp, 0, 3, {{1, 0, 0}, {4, 0, 0}}, false, false, "fused update", 1e-12},
    {"scan_rnn", F64, b_scan_rnn, 0, 3, {{3, 4, 0}, {2, 2, 0}, {1, 1, 0}}, false, false, "_b0_run(k_body", 1e-12},
    {"scan_rnn_f32", F32, b_scan_rnn, 2, 3, {{3, 5, 0}, {2, 3, 0}}, false, false, NULL, 1e-5},
    {"scan_rnn_wide@avx2", F32, b_scan_rnn_wide, 0, 3, {{7, 4, 0}, {2, 3, 0}, {1, 2, 0}}, false, false,
     "rt->pack_nn(", 1e-4},
    {"scan_rnn_wide@avx512", F32, b_scan_rnn_wide, 0, 3, {{7, 4, 0}, {2, 3, 0}}, false, false, "rt->pack_nn(", 1e-4},
    {"scan_rnn_wide@blas", F32, b_scan_rnn_wide, 0, 3, {{7, 4, 0}, {2, 3, 0}}, false, false, "rt->pack_nn(", 1e-4},
    {"scan_rnn_reverse", F64, b_scan_rnn_reverse, 1, 3, {{3, 4, 0}, {2, 3, 0}}, false, false, "T - 1 - k_s", 1e-12},
    {"scan_dropout", F64, b_scan_dropout, 0, 3, {{3, 4, 0}, {2, 2, 0}}, false, false, "k_step * ", 1e-12},
    {"scan_dropout_f32", F32, b_scan_dropout, 1, 3, {{3, 4, 0}}, false, false, NULL, 1e-5},
    {"scan_nested", F64, b_scan_nested, 0, 3, {{3, 3, 0}, {2, 2, 0}}, false, false, "_b0_b0_run(k_body", 1e-12},
};

/* ---- the runner ------------------------------------------------------------------- */

/* Both backends of one row, and the user nodes of the program's params. */
typedef struct pair {
    const row *r;
    ctx c;
    kiln_program *p;
    kiln_interp *it;
    const kiln_graph *pg;
    const int32_t *map;
    kiln_program_roots roots;
    const kiln_plan *plan;
    kiln_node user_param[64];
    unsigned char *buf[MAX_IN]; /* input data, GUARD bytes after each */
    size_t bytes[MAX_IN];
    int64_t sizes[KILN_MAX_SYMBOLS];
} pair;

/* got against want, element by element: |got - want| <= tol (|want| +
** the largest |want|), or exactly when tol is 0. */
static void compare(const pair *q, const char *step, const char *what, const double *got, const double *want,
                    int64_t n, double tol)
{
    double scale = 0;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    for (int64_t i = 0; i < n; i++) {
        bool ok = got[i] == want[i] || (isnan(got[i]) && isnan(want[i])) ||
                  (tol > 0 && fabs(got[i] - want[i]) <= tol * (fabs(want[i]) + scale));
        ck_assert_msg(ok, "row %s, %s (B %lld): %s[%lld]: jit %.17g, interpreter %.17g (tol %g)", q->r->name, step,
                      (long long)q->sizes[0], what, (long long)i, got[i], want[i], tol);
    }
}

/* A value of the last run: user node u (cost, monitor, output) or a
** program node read through the interpreter. */
static void compare_value(pair *q, const char *step, kiln_node u, const char *what, double tol)
{
    int32_t id = q->map[u.id];
    int64_t n = kiln_interp_count(q->it, id);
    ck_assert_msg(n >= 0, "row %s, %s: %s has no value in the interpreter", q->r->name, step, what);
    double *got = malloc(((size_t)n + 1) * sizeof *got), *want = malloc(((size_t)n + 1) * sizeof *want);
    ck_assert_msg(kiln_interp_read(q->it, id, want, n) == KILN_OK, "row %s, %s: %s", q->r->name, step,
                  kiln_interp_errmsg(q->it));
    ck_assert_msg(kiln_program_read(q->p, u, got, n) == KILN_OK, "row %s, %s: read %s: %s", q->r->name, step, what,
                  kiln_program_errmsg(q->p));
    compare(q, step, what, got, want, n, tol);
    free(got);
    free(want);
}

static void compare_states(pair *q, const char *step)
{
    for (int i = 0; i < kiln_program_state_count(q->p); i++) {
        int64_t n = kiln_program_state_size(q->p, i);
        double *got = malloc(sizeof(double) * (size_t)n), *want = malloc(sizeof(double) * (size_t)n);
        ck_assert(got && want);
        ck_assert_int_eq(kiln_program_get_state(q->p, i, got, n), KILN_OK);
        ck_assert_msg(kiln_interp_read(q->it, q->plan->state_node[i], want, n) == KILN_OK, "row %s: %s", q->r->name,
                      kiln_interp_errmsg(q->it));
        compare(q, step, kiln_program_state_name(q->p, i), got, want, n, q->r->tol);
        free(got);
        free(want);
    }
}

static void compare_params(pair *q, const char *step, bool grads)
{
    for (int i = 0; i < q->roots.n_params; i++) {
        int32_t id = grads ? q->roots.grads[i] : q->roots.params[i];
        int64_t n = kiln_interp_count(q->it, id);
        double *got = malloc(sizeof(double) * (size_t)n), *want = malloc(sizeof(double) * (size_t)n);
        char what[160];
        ck_assert(got && want);
        snprintf(what, sizeof what, "%s of %s", grads ? "gradient" : "parameter",
                 kiln_param_name(kiln_graph_node_param(q->c.g, q->user_param[i])));
        ck_assert_msg(kiln_interp_read(q->it, id, want, n) == KILN_OK, "row %s, %s: %s", q->r->name, step,
                      kiln_interp_errmsg(q->it));
        enum kiln_status st = grads ? kiln_program_read_gradient(q->p, q->user_param[i], got, n)
                                    : kiln_program_get_param(q->p, q->user_param[i], got, n);
        ck_assert_msg(st == KILN_OK, "row %s, %s: %s: %s", q->r->name, step, what, kiln_program_errmsg(q->p));
        compare(q, step, what, got, want, n, q->r->tol);
        free(got);
        free(want);
    }
}

static void check_input_guards(const pair *q, const char *step)
{
    for (int k = 0; k < q->c.n_in; k++)
        for (int j = 0; q->buf[k] && j < GUARD; j++)
            ck_assert_msg(q->buf[k][q->bytes[k] + j] == GUARD_BYTE, "row %s, %s: the bytes after input %s changed",
                          q->r->name, step, q->c.in[k].name);
}

/* Fresh input data for the block's sizes, bound to both backends. */
static void bind_inputs(pair *q, int block_no)
{
    for (int k = 0; k < q->c.n_in; k++) {
        const in_spec *s = &q->c.in[k];
        int64_t n = 1;
        for (int d = 0; d < s->rank; d++) {
            int64_t v = s->dims[d];
            n *= v > 0 ? v : q->sizes[KILN_SYMBOL_INDEX(v)];
        }
        size_t es = kiln_dtype_size(s->dtype);
        free(q->buf[k]);
        q->bytes[k] = (size_t)n * es;
        q->buf[k] = malloc(q->bytes[k] + GUARD);
        ck_assert_ptr_nonnull(q->buf[k]);
        memset(q->buf[k] + q->bytes[k], GUARD_BYTE, GUARD);
        double *v = malloc((size_t)n * sizeof *v);
        gc_fill(v, n, s->lo, s->hi, 0.02, (unsigned)(k * 13 + block_no * 101 + 5));
        for (int64_t i = 0; i < n; i++) {
            if (s->dtype == KILN_DTYPE_I32)
                ((int32_t *)q->buf[k])[i] = (int32_t)floor(v[i]);
            else if (s->dtype == KILN_DTYPE_F32)
                ((float *)q->buf[k])[i] = (float)v[i];
            else
                ((double *)q->buf[k])[i] = v[i];
        }
        free(v);
        int32_t id = q->map[s->node.id];
        if (id < 0)
            continue; /* not read by the program */
        ck_assert_int_eq(kiln_program_bind_input(q->p, s->name, q->buf[k]), KILN_OK);
        ck_assert_int_eq(kiln_interp_bind_input(q->it, id, q->buf[k]), KILN_OK);
    }
}

/* Run one entry point on both and check what it computed. */
static void step_both(pair *q, enum kiln_mode mode, const char *step)
{
    enum kiln_status st = mode == KILN_MODE_FORWARD   ? kiln_program_forward(q->p, q->sizes[0])
                        : mode == KILN_MODE_EVAL      ? kiln_program_eval_step(q->p, q->sizes[0])
                        : mode == KILN_MODE_GRADIENTS ? kiln_program_gradients(q->p, q->sizes[0])
                                                      : kiln_program_train_step(q->p, q->sizes[0]);
    ck_assert_msg(st == KILN_OK, "row %s, %s: jit: %s", q->r->name, step, kiln_program_errmsg(q->p));
    ck_assert_msg(kiln_interp_run(q->it, mode, q->sizes) == KILN_OK, "row %s, %s: interpreter: %s", q->r->name, step,
                  kiln_interp_errmsg(q->it));
    check_input_guards(q, step);
    if (mode == KILN_MODE_FORWARD) {
        for (int i = 0; i < q->c.n_out; i++)
            compare_value(q, step, q->c.out[i], "output", q->r->exact_outputs ? 0 : q->r->tol);
    } else {
        compare_value(q, step, q->c.cost, "cost", q->r->tol);
        for (int i = 0; i < q->c.n_mon; i++)
            compare_value(q, step, q->c.mon[i], "monitor", q->r->tol);
    }
    if (mode == KILN_MODE_GRADIENTS)
        compare_params(q, step, true);
    compare_states(q, step);
}

static kiln_step_rule rule_of(const row *r)
{
    return r->rule == 2 ? kiln_step_adam_default() : r->rule == 1 ? kiln_step_momentum(0.1, 0.9) : kiln_step_scale(0.1);
}

/* Build the row, compile it, and make the interpreter of its program. */
static void pair_open(pair *q, const row *r)
{
    memset(q, 0, sizeof *q);
    q->r = r;
    ctx *c = &q->c;
    c->fx = r->fx;
    c->cost = KILN_NODE_NONE;
    c->g = kiln_graph_create(r->fx);
    r->build(c);
    ck_assert_msg(kiln_graph_status(c->g) == KILN_OK, "row %s: build: %s", r->name, kiln_graph_errmsg(c->g));
    if (!kiln_node_ok(c->cost)) { /* 0.5 mean((out + 0.3)^2), summed over the float outputs */
        kiln_graph *g = c->g;
        for (int i = 0; i < c->n_out; i++) {
            if (kiln_graph_node_dtype(g, c->out[i]) != r->fx)
                continue;
            kiln_node t = kiln_expr_mean(g, kiln_expr_square(g, kiln_expr_add(g, c->out[i], K(0.3))), KILN_ALL_AXES);
            c->cost = kiln_node_ok(c->cost) ? kiln_expr_add(g, c->cost, t) : t;
        }
        c->cost = kiln_expr_mul(g, K(0.5), c->cost);
        ck_assert_msg(kiln_node_ok(c->cost), "row %s: cost: %s", r->name, kiln_graph_errmsg(g));
    }
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "backends";
    o.cost = c->cost;
    o.step_rule = rule_of(r);
    o.outputs = c->out;
    o.n_outputs = c->n_out;
    o.monitors = c->mon;
    o.n_monitors = c->n_mon;
    o.no_fast_paths = r->no_fast_paths;
    o.isa = row_isa(r);
    o.guard_bytes = GUARD;
    for (int b = 0; b < MAX_BLOCKS; b++) {
        const block *k = &r->blocks[b];
        o.max_size[0] = k->b > o.max_size[0] ? k->b : o.max_size[0];
        o.max_size[1] = k->t > o.max_size[1] ? k->t : o.max_size[1];
        if (c->sym_s)
            o.max_size[KILN_SYMBOL_INDEX(c->sym_s)] = k->s > o.max_size[KILN_SYMBOL_INDEX(c->sym_s)]
                                                          ? k->s : o.max_size[KILN_SYMBOL_INDEX(c->sym_s)];
    }
    ck_assert_msg(kiln_compile(c->g, &o, &q->p) == KILN_OK, "row %s: compile: %s", r->name,
                  kiln_program_errmsg(q->p));
    if (row_isa(r))
        ck_assert_str_eq(kiln_program_isa(q->p), row_isa(r));
    if (r->source_has)
        ck_assert_msg(strstr(kiln_program_source(q->p), r->source_has) != NULL,
                      "row %s: the generated source lacks '%s' (the path under test)", r->name, r->source_has);
    if (r->no_fast_paths) /* and the plain lowering is what runs */
        ck_assert_msg(!strstr(kiln_program_source(q->p), "fused update") && !strstr(kiln_program_source(q->p), "pend_"),
                      "row %s: a fast path in a program compiled with no_fast_paths", r->name);
    int32_t n_user;
    q->pg = kiln_program_graph(q->p);
    q->map = kiln_program_node_map(q->p, &n_user);
    q->plan = kiln_program_plan(q->p);
    ck_assert(q->pg && q->map && q->plan && kiln_program_get_roots(q->p, &q->roots));
    ck_assert_int_le(q->roots.n_params, 64);
    for (int i = 0; i < q->roots.n_params; i++) { /* the user's node of each param */
        q->user_param[i] = KILN_NODE_NONE;
        for (int32_t u = 0; u < n_user; u++)
            if (q->map[u] == q->roots.params[i] && kiln_graph_node_param(c->g, (kiln_node){u}))
                q->user_param[i] = (kiln_node){u};
        ck_assert_msg(kiln_node_ok(q->user_param[i]), "row %s: param %d has no user node", r->name, i);
    }
    kiln_interp_program ip = {.g = q->pg, .cost = q->roots.cost, .monitors = q->roots.monitors,
                              .n_monitors = q->roots.n_monitors, .outputs = q->roots.outputs,
                              .n_outputs = q->roots.n_outputs, .grads = q->roots.grads,
                              .n_grads = q->roots.n_params, .updates = q->roots.updates,
                              .n_updates = q->roots.n_updates};
    ck_assert_msg(kiln_interp_create(&ip, &q->it) == KILN_OK, "row %s: interpreter: %s", r->name,
                  kiln_interp_errmsg(q->it));
}

static void pair_close(pair *q)
{
    kiln_interp_destroy(q->it);
    kiln_program_destroy(q->p);
    kiln_graph_destroy(q->c.g);
    for (int k = 0; k < q->c.n_bricks; k++)
        kiln_brick_destroy(q->c.bricks[k]);
    for (int k = 0; k < q->c.n_owned; k++)
        kiln_param_destroy(q->c.owned[k]);
    for (int k = 0; k < MAX_IN; k++)
        free(q->buf[k]);
}

/* KILN_BACKENDS_ROW=<name>: that row alone, when debugging it. */
static bool skipped(const char *name)
{
    const char *only = getenv("KILN_BACKENDS_ROW");
    return only && *only && strcmp(only, name) != 0;
}

START_TEST(row_agrees_with_the_interpreter)
{
    const row *r = &ROWS[_i];
    if (skipped(r->name))
        return;
    kiln_kernel_set ks;
    if (row_isa(r) && !kiln_kernel_set_of(row_isa(r), &ks)) {
        fprintf(stderr, "row %s: skipped: this CPU lacks %s\n", r->name, row_isa(r));
        return;
    }
    pair q;
    pair_open(&q, r);
    for (int b = 0; b < MAX_BLOCKS && r->blocks[b].b; b++) {
        const block *k = &r->blocks[b];
        memset(q.sizes, 0, sizeof q.sizes);
        q.sizes[0] = k->b;
        q.sizes[1] = k->t;
        if (k->t)
            ck_assert_int_eq(kiln_program_set_size(q.p, KILN_TIME, k->t), KILN_OK);
        if (q.c.sym_s) {
            q.sizes[KILN_SYMBOL_INDEX(q.c.sym_s)] = k->s;
            ck_assert_int_eq(kiln_program_set_size(q.p, q.c.sym_s, k->s), KILN_OK);
        }
        bind_inputs(&q, b);
        char step[64];
        snprintf(step, sizeof step, "block %d forward", b);
        step_both(&q, KILN_MODE_FORWARD, step);
        snprintf(step, sizeof step, "block %d eval_step", b);
        step_both(&q, KILN_MODE_EVAL, step);
        snprintf(step, sizeof step, "block %d gradients", b);
        step_both(&q, KILN_MODE_GRADIENTS, step);
        for (int s = 0; s < r->steps; s++) {
            snprintf(step, sizeof step, "block %d train_step %d", b, s + 1);
            step_both(&q, KILN_MODE_TRAIN, step);
        }
        /* Reading a parameter applies the updates a batch-1 train_step
        ** defers: after such a block, the next block's first step must. */
        bool last = b + 1 == MAX_BLOCKS || !r->blocks[b + 1].b;
        if (k->b != 1 || last) {
            snprintf(step, sizeof step, "block %d end", b);
            compare_params(&q, step, false);
        }
    }
    pair_close(&q);
}
END_TEST

/* An ISA that is no name, or one the CPU lacks, is a compile error naming
** it, from the options or from $KILN_ISA (#13); the options win over the
** environment. */
START_TEST(an_unknown_or_missing_isa_is_an_error)
{
    pair q;
    memset(&q, 0, sizeof q);
    q.c.fx = F32;
    q.c.g = kiln_graph_create(F32);
    b_plain_mlp(&q.c);
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = q.c.cost;
    o.step_rule = kiln_step_scale(0.1);
    o.isa = "sse9";
    kiln_program *p = NULL;
    ck_assert_int_eq(kiln_compile(q.c.g, &o, &p), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(p), "isa 'sse9'") && strstr(kiln_program_errmsg(p), "avx512, avx2 or blas"),
                  "message: %s", kiln_program_errmsg(p));
    kiln_program_destroy(p);
    kiln_kernel_set ks;
    if (!kiln_kernel_set_of("avx512", &ks)) { /* a CPU without it: forcing it is an error, not a fallback */
        o.isa = "avx512";
        ck_assert_int_eq(kiln_compile(q.c.g, &o, &p), KILN_ERR_ARG);
        ck_assert_msg(strstr(kiln_program_errmsg(p), "lacks it"), "message: %s", kiln_program_errmsg(p));
        kiln_program_destroy(p);
    }
    o.isa = NULL;
    setenv("KILN_ISA", "avx9", 1);
    ck_assert_int_eq(kiln_compile(q.c.g, &o, &p), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(p), "KILN_ISA 'avx9'"), "message: %s", kiln_program_errmsg(p));
    kiln_program_destroy(p);
    o.isa = "blas"; /* the option wins */
    ck_assert_int_eq(kiln_compile(q.c.g, &o, &p), KILN_OK);
    ck_assert_str_eq(kiln_program_isa(p), "blas");
    ck_assert_str_eq(kiln_program_product_kernel(p, false, 32, 500, 784), "blas");
    kiln_program_destroy(p);
    setenv("KILN_ISA", "blas", 1);
    o.isa = NULL;
    ck_assert_int_eq(kiln_compile(q.c.g, &o, &p), KILN_OK);
    ck_assert_str_eq(kiln_program_isa(p), "blas");
    kiln_program_destroy(p);
    unsetenv("KILN_ISA");
    pair_close(&q);
}
END_TEST

/* ---- the interpreter on its own ------------------------------------------------------ */

/* A bad index is an error naming the node, in both backends; no update runs. */
START_TEST(bad_index_is_an_error_naming_the_node)
{
    if (skipped("bad_index"))
        return;
    const row *r = NULL;
    for (size_t k = 0; k < KILN_ARRAY_LEN(ROWS); k++)
        if (strcmp(ROWS[k].name, "gather_scatter") == 0)
            r = &ROWS[k];
    ck_assert_ptr_nonnull(r);
    pair q;
    pair_open(&q, r);
    q.sizes[0] = 3;
    q.sizes[1] = 4;
    ck_assert_int_eq(kiln_program_set_size(q.p, KILN_TIME, 4), KILN_OK);
    bind_inputs(&q, 0);
    ((int32_t *)q.buf[0])[4] = 7; /* idx (B, 2): position 4 */
    double before[21], after[21];
    ck_assert_int_eq(kiln_interp_read(q.it, q.roots.params[0], before, 21), KILN_OK);
    ck_assert_int_eq(kiln_program_train_step(q.p, 3), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(q.p), "idx: value 7 at position 4"), "%s", kiln_program_errmsg(q.p));
    ck_assert_int_eq(kiln_interp_run(q.it, KILN_MODE_TRAIN, q.sizes), KILN_ERR_ARG);
    const char *msg = kiln_interp_errmsg(q.it);
    ck_assert_msg(strstr(msg, "(gather") && strstr(msg, "index 7 at position 4 is outside [0, 7)"), "%s", msg);
    ck_assert_int_eq(kiln_interp_read(q.it, q.roots.params[0], after, 21), KILN_OK);
    ck_assert_mem_eq(before, after, sizeof before);
    pair_close(&q);
}
END_TEST

/* Updates are simultaneous: a swap (a <- b, b <- a) swaps. */
START_TEST(updates_read_the_old_values)
{
    if (skipped("updates"))
        return;
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_param *pa = kiln_param_create("a", 1, D(2)), *pb = kiln_param_create("b", 1, D(2));
    kiln_param_set_values(pa, (const double[]){1, 2}, 2);
    kiln_param_set_values(pb, (const double[]){3, 4}, 2);
    kiln_node a = kiln_graph_param(g, pa), b = kiln_graph_param(g, pb);
    kiln_node cost = kiln_expr_sum(g, kiln_expr_mul(g, a, b), KILN_ALL_AXES);
    kiln_plan_update ups[2] = {{a.id, b.id, true}, {b.id, a.id, true}};
    kiln_interp_program ip = {.g = g, .cost = cost.id, .updates = ups, .n_updates = 2};
    kiln_interp *it;
    ck_assert_int_eq(kiln_interp_create(&ip, &it), KILN_OK);
    int64_t sizes[KILN_MAX_SYMBOLS] = {1};
    double v[2], c;
    ck_assert_int_eq(kiln_interp_run(it, KILN_MODE_EVAL, sizes), KILN_OK); /* train-only: not in eval */
    ck_assert_int_eq(kiln_interp_read(it, a.id, v, 2), KILN_OK);
    ck_assert(v[0] == 1 && v[1] == 2);
    ck_assert_int_eq(kiln_interp_run(it, KILN_MODE_TRAIN, sizes), KILN_OK);
    ck_assert_int_eq(kiln_interp_read(it, cost.id, &c, 1), KILN_OK);
    ck_assert(c == 11);
    ck_assert_int_eq(kiln_interp_read(it, a.id, v, 2), KILN_OK);
    ck_assert(v[0] == 3 && v[1] == 4);
    ck_assert_int_eq(kiln_interp_read(it, b.id, v, 2), KILN_OK);
    ck_assert(v[0] == 1 && v[1] == 2);
    ck_assert_int_eq(kiln_interp_run(it, KILN_MODE_FORWARD, sizes), KILN_OK); /* nothing to do */
    ck_assert_int_eq(kiln_interp_read(it, cost.id, &c, 1), KILN_ERR_STATE);
    kiln_interp_destroy(it);
    kiln_graph_destroy(g);
    kiln_param_destroy(pa);
    kiln_param_destroy(pb);
}
END_TEST

/* ---- regressions ------------------------------------------------------------------------ */

/* cost = 0.5 sum(w^2 x) + 0.5 sum(v^2 x[0:2]) over float64 params w (3,)
** and v (2,): d cost / dw = w x and d cost / dv = v x[0:2], computed into
** the gradient slab; compiled with guard bytes. */
static kiln_program *linear_cost_program(kiln_step_rule rule, kiln_graph **g, kiln_param **pw, kiln_param **pv,
                                         kiln_node *nw, kiln_node *nv, const double *x)
{
    *g = kiln_graph_create(KILN_DTYPE_F64);
    *pw = kiln_param_create("w", 1, D(3));
    *pv = kiln_param_create("v", 1, D(2));
    kiln_param_set_values(*pw, (const double[]){0.5, -1, 2}, 3);
    kiln_param_set_values(*pv, (const double[]){1, 1}, 2);
    *nw = kiln_graph_param(*g, *pw);
    *nv = kiln_graph_param(*g, *pv);
    kiln_node xin = kiln_graph_input(*g, "x", KILN_DTYPE_F64, 1, D(3));
    kiln_node half = kiln_expr_constant(*g, 0.5);
    kiln_node sw = kiln_expr_sum(*g, kiln_expr_mul(*g, kiln_expr_square(*g, *nw), xin), KILN_ALL_AXES);
    kiln_node sv = kiln_expr_sum(
        *g, kiln_expr_mul(*g, kiln_expr_square(*g, *nv), kiln_expr_slice(*g, xin, 0, 0, 2, 1)), KILN_ALL_AXES);
    kiln_node cost = kiln_expr_mul(*g, half, kiln_expr_add(*g, sw, sv));
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = cost;
    o.step_rule = rule;
    o.guard_bytes = GUARD;
    kiln_program *p;
    ck_assert_msg(kiln_compile(*g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    ck_assert_int_eq(kiln_program_bind_input(p, "x", x), KILN_OK);
    return p;
}

/* Momentum's velocity and Adam's time were never updated (in-place update
** values had no kernel). By hand: with gradient w x, Momentum(0.1, 0.9)
** gives v1 = 0.1 w0 x, w1 = w0 - v1, v2 = 0.9 v1 + 0.1 w1 x, w2 = w1 - v2;
** Adam's time counts steps. */
START_TEST(regress_8_momentum_and_adam_update_their_state)
{
    if (skipped("regress"))
        return;
    const double x[3] = {0.25, -0.5, 1.5};
    kiln_graph *g;
    kiln_param *pw, *pv;
    kiln_node nw, nv;
    kiln_program *p = linear_cost_program(kiln_step_momentum(0.1, 0.9), &g, &pw, &pv, &nw, &nv, x);
    ck_assert_int_eq(kiln_program_train_step(p, 1), KILN_OK);
    ck_assert_int_eq(kiln_program_train_step(p, 1), KILN_OK);
    double w[3], vel[3];
    ck_assert_int_eq(kiln_program_get_param(p, nw, w, 3), KILN_OK);
    int found = 0;
    for (int i = 0; i < kiln_program_state_count(p); i++)
        if (strstr(kiln_program_state_name(p, i), "w_velocity")) {
            ck_assert_int_eq(kiln_program_get_state(p, i, vel, 3), KILN_OK);
            found++;
        }
    ck_assert_int_eq(found, 1);
    const double w0[3] = {0.5, -1, 2};
    for (int i = 0; i < 3; i++) {
        double v1 = 0.1 * w0[i] * x[i], w1 = w0[i] - v1, v2 = 0.9 * v1 + 0.1 * w1 * x[i];
        ck_assert_double_eq_tol(vel[i], v2, 1e-15);
        ck_assert_double_eq_tol(w[i], w1 - v2, 1e-15);
    }
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_param_destroy(pw);
    kiln_param_destroy(pv);

    p = linear_cost_program(kiln_step_adam_default(), &g, &pw, &pv, &nw, &nv, x);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(kiln_program_train_step(p, 1), KILN_OK);
    double t = -1;
    for (int i = 0; i < kiln_program_state_count(p); i++)
        if (strcmp(kiln_program_state_name(p, i), "/step_rule/adam.time") == 0)
            ck_assert_int_eq(kiln_program_get_state(p, i, &t, 1), KILN_OK);
    ck_assert_double_eq(t, 3);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_param_destroy(pw);
    kiln_param_destroy(pv);
}
END_TEST

/* Scale's slab loop wrote over the guard bytes between parameters:
** train_step failed with guards on. */
START_TEST(regress_8_slab_update_stays_inside_each_parameter)
{
    if (skipped("regress"))
        return;
    const double x[3] = {0.25, -0.5, 1.5};
    kiln_graph *g;
    kiln_param *pw, *pv;
    kiln_node nw, nv;
    kiln_program *p = linear_cost_program(kiln_step_scale(0.1), &g, &pw, &pv, &nw, &nv, x);
    ck_assert_ptr_nonnull(strstr(kiln_program_source(p), "p -= lr * grad over the parameter slab"));
    ck_assert_msg(kiln_program_train_step(p, 1) == KILN_OK, "%s", kiln_program_errmsg(p));
    double w[3], v[2];
    ck_assert_int_eq(kiln_program_get_param(p, nw, w, 3), KILN_OK);
    ck_assert_int_eq(kiln_program_get_param(p, nv, v, 2), KILN_OK);
    ck_assert_double_eq_tol(w[2], 2 - 0.1 * 2 * 1.5, 1e-15);
    ck_assert_double_eq_tol(v[1], 1 + 0.1 * 1 * 0.5, 1e-15);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_param_destroy(pw);
    kiln_param_destroy(pv);
}
END_TEST

static Suite *backends_suite(void)
{
    Suite *s = suite_create("backends");
    TCase *t = tcase_create("backends");
    tcase_set_timeout(t, 600);
    tcase_add_loop_test(t, row_agrees_with_the_interpreter, 0, (int)KILN_ARRAY_LEN(ROWS));
    tcase_add_test(t, bad_index_is_an_error_naming_the_node);
    tcase_add_test(t, an_unknown_or_missing_isa_is_an_error);
    tcase_add_test(t, updates_read_the_old_values);
    tcase_add_test(t, regress_8_momentum_and_adam_update_their_state);
    tcase_add_test(t, regress_8_slab_update_stays_inside_each_parameter);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return kiln_test_run(backends_suite());
}
