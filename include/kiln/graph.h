/* kiln/graph.h: the symbolic graph a model is built in, and expressions on it.
**
** A kiln_graph is a typed tensor DAG (Theano's graph, Blocks' ComputationGraph).
** Nodes are values of type kiln_node: an index into one graph, checked on use.
** Expression builders return a node; on bad input they return KILN_NODE_NONE
** and record the first error on the graph (kiln_graph_status/errmsg). A
** builder given KILN_NODE_NONE returns KILN_NODE_NONE and keeps the first
** message, so a whole expression can be written before checking once. */
#ifndef KILN_GRAPH_H
#define KILN_GRAPH_H

#include <stdio.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_graph kiln_graph;
typedef struct kiln_brick kiln_brick;
typedef struct kiln_param kiln_param;

typedef struct kiln_node { int32_t id; } kiln_node;
#define KILN_NODE_NONE ((kiln_node){-1})
static inline bool kiln_node_ok(kiln_node n) { return n.id >= 0; }

/* Reduce over every axis. */
#define KILN_ALL_AXES (-1)

/* Roles, as in blocks.roles. WEIGHT and BIAS are kinds of PARAMETER: a
** filter for PARAMETER matches them, and adding PARAMETER to a WEIGHT keeps
** WEIGHT (no downgrade). DROPOUT marks what apply_dropout made;
** ALGORITHM_STATE the step rule's state (Blocks' ALGORITHM_BUFFER and
** ALGORITHM_HYPERPARAMETER). INITIAL_STATE marks a recurrent brick's
** trainable initial state, a kind of PARAMETER too. */
enum kiln_role {
    KILN_ROLE_INPUT = 1u << 0,
    KILN_ROLE_OUTPUT = 1u << 1,
    KILN_ROLE_COST = 1u << 2,
    KILN_ROLE_AUXILIARY = 1u << 3,
    KILN_ROLE_PARAMETER = 1u << 4,
    KILN_ROLE_WEIGHT = 1u << 5,
    KILN_ROLE_BIAS = 1u << 6,
    KILN_ROLE_DROPOUT = 1u << 7,
    KILN_ROLE_ALGORITHM_STATE = 1u << 8,
    KILN_ROLE_RANDOM_STATE = 1u << 9,
    KILN_ROLE_INITIAL_STATE = 1u << 10
};

/* Create an empty graph whose floating-point tensors have dtype floatx
** (KILN_DTYPE_F32, or KILN_DTYPE_F64 for gradient checks). Caller-owned
** (kiln_graph_destroy). NULL only when out of memory. */
KILN_API kiln_graph *kiln_graph_create(enum kiln_dtype floatx);
KILN_API void kiln_graph_destroy(kiln_graph *g);
KILN_API enum kiln_dtype kiln_graph_floatx(const kiln_graph *g);

/* First error recorded on g, its message, and forgetting it. */
KILN_API enum kiln_status kiln_graph_status(const kiln_graph *g);
KILN_API const char *kiln_graph_errmsg(const kiln_graph *g);
KILN_API void kiln_graph_clear_error(kiln_graph *g);

/* A named input (Theano's matrix('features')). dims[i] > 0 or a symbol
** (KILN_BATCH, KILN_TIME, kiln_graph_symbol()), on any axis: a time-major
** sequence batch is (KILN_TIME, KILN_BATCH, features). name is copied; it
** binds the input to a data source. */
KILN_API kiln_node kiln_graph_input(kiln_graph *g, const char *name, enum kiln_dtype dtype,
                                    int rank, const int64_t *dims);
KILN_API kiln_node kiln_graph_input_by_name(const kiln_graph *g, const char *name);

/* A user dim symbol named name (letters, digits, '_'; up to 32), the same
** code for the same name; at most KILN_MAX_SYMBOLS - 2 per graph. 0 with the
** error on g. */
KILN_API int64_t kiln_graph_symbol(kiln_graph *g, const char *name);
/* A dim of g as text ("784", "B", "T*B") into buf; returns buf. */
KILN_API const char *kiln_graph_dim_str(const kiln_graph *g, int64_t dim, char *buf, size_t cap);

/* Facts about a node. Shapes report symbols by their codes (KILN_BATCH). */
KILN_API int kiln_graph_node_count(const kiln_graph *g);
KILN_API int kiln_graph_node_rank(const kiln_graph *g, kiln_node n);
KILN_API int64_t kiln_graph_node_dim(const kiln_graph *g, kiln_node n, int axis);
KILN_API enum kiln_dtype kiln_graph_node_dtype(const kiln_graph *g, kiln_node n);
/* Name: set by the user or derived as Blocks does (`linear_apply_output`).
** Borrowed, valid while g lives. "" when unnamed. set_name copies name;
** NULL or "" removes the name. */
KILN_API const char *kiln_graph_node_name(const kiln_graph *g, kiln_node n);
KILN_API enum kiln_status kiln_graph_set_name(kiln_graph *g, kiln_node n, const char *name);
/* Owner of n: the path of the brick (or layer) that made it ("/mlp/linear_0"),
** "" if none. The IR keeps paths, not bricks. brick_path is the same call. */
KILN_API const char *kiln_graph_node_owner(const kiln_graph *g, kiln_node n);
KILN_API const char *kiln_graph_node_brick_path(const kiln_graph *g, kiln_node n);
/* The op's name ("matmul", "input", ...). */
KILN_API const char *kiln_graph_node_op(const kiln_graph *g, kiln_node n);
/* The store entry of a parameter or state node, else NULL (borrowed: g
** keeps it alive while g lives). */
KILN_API kiln_param *kiln_graph_node_param(const kiln_graph *g, kiln_node n);
/* In a graph made by kiln_graph_replace or kiln_apply_dropout: the node a
** replacement stands for (Blocks' tag.replacement_of), else KILN_NODE_NONE. */
KILN_API kiln_node kiln_graph_node_replacement_of(const kiln_graph *g, kiln_node n);
/* The node standing for p in g, or KILN_NODE_NONE when p was not applied in g. */
KILN_API kiln_node kiln_graph_param_node(const kiln_graph *g, const kiln_param *p);

/* Roles. has_role respects the hierarchy (WEIGHT is a PARAMETER). */
KILN_API enum kiln_status kiln_graph_add_role(kiln_graph *g, kiln_node n, enum kiln_role r);
KILN_API bool kiln_graph_has_role(const kiln_graph *g, kiln_node n, enum kiln_role r);
/* Auxiliary variable (Blocks' add_auxiliary_variable): marks n AUXILIARY,
** names it (name copied; NULL keeps its name) and ties it to brick b (may be
** NULL; only its path is kept, so b may go first). */
KILN_API enum kiln_status kiln_graph_add_auxiliary(kiln_graph *g, kiln_node n, const char *name,
                                                   kiln_brick *b);

/* VariableFilter. Zero fields match everything: roles is a mask that must
** all be present (with hierarchy), brick matches nodes tagged with that brick
** or one of its descendants' parameters/outputs, name is exact. brick and
** name are borrowed for the kiln_graph_filter call. */
typedef struct kiln_filter {
    unsigned roles;
    const kiln_brick *brick;
    const char *name;
} kiln_filter;

/* Nodes matching f (NULL: every node) among the ancestors of
** outputs[0..n_outputs) and their bricks' auxiliary variables, in
** topological order (all of g when n_outputs == 0). Writes at most cap nodes
** to out (NULL only with cap 0, to count); returns the total count (which
** may exceed cap), or -1 with the error on g. */
KILN_API int kiln_graph_filter(kiln_graph *g, const kiln_node *outputs, int n_outputs,
                               const kiln_filter *f, kiln_node *out, int cap);

/* An update (Theano's updates): after each entry point that reads target (a
** parameter or state node), target takes value's value, computed with the
** old values. At most one per target. The step rule's updates are added by
** kiln_compile; this is for the graph's own (a counter, a running mean). */
KILN_API enum kiln_status kiln_graph_update(kiln_graph *g, kiln_node target, kiln_node value);

/* ---- Expressions (compiler/expr.c) ------------------------------------ */

KILN_API kiln_node kiln_expr_constant(kiln_graph *g, double value); /* scalar */

/* Elementwise, with numpy broadcasting (dims right-aligned, 1 broadcasts;
** symbolic dims broadcast only against themselves or 1). */
KILN_API kiln_node kiln_expr_add(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_sub(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_mul(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_div(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_pow(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_maximum(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_minimum(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_neg(kiln_graph *g, kiln_node a);
KILN_API kiln_node kiln_expr_square(kiln_graph *g, kiln_node a);
KILN_API kiln_node kiln_expr_sqrt(kiln_graph *g, kiln_node a);
KILN_API kiln_node kiln_expr_exp(kiln_graph *g, kiln_node a);
KILN_API kiln_node kiln_expr_log(kiln_graph *g, kiln_node a);
KILN_API kiln_node kiln_expr_abs(kiln_graph *g, kiln_node a);
KILN_API kiln_node kiln_expr_tanh(kiln_graph *g, kiln_node a);
KILN_API kiln_node kiln_expr_sigmoid(kiln_graph *g, kiln_node a);
KILN_API kiln_node kiln_expr_softplus(kiln_graph *g, kiln_node a);
KILN_API kiln_node kiln_expr_relu(kiln_graph *g, kiln_node a);
/* -1, 0 or 1 (its gradient is zero). */
KILN_API kiln_node kiln_expr_sign(kiln_graph *g, kiln_node a);
/* min(max(a, lo), hi), lo <= hi; the gradient passes where lo < a < hi. */
KILN_API kiln_node kiln_expr_clip(kiln_graph *g, kiln_node a, double lo, double hi);
/* a as dtype (int32 <-> the graph's floats; to int32 truncates toward zero). */
KILN_API kiln_node kiln_expr_cast(kiln_graph *g, kiln_node a, enum kiln_dtype dtype);

/* Comparisons: 1.0 where true else 0.0 (floatx); operands of one dtype,
** integer or float; no gradient. */
KILN_API kiln_node kiln_expr_not_equal(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_equal(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_greater(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_greater_equal(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_less(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_less_equal(kiln_graph *g, kiln_node a, kiln_node b);
/* where(cond, a, b): a where cond != 0, else b; all three broadcast. */
KILN_API kiln_node kiln_expr_select(kiln_graph *g, kiln_node cond, kiln_node a, kiln_node b);

/* Reductions over one axis (0 <= axis < rank) or KILN_ALL_AXES; the axis is
** removed from the shape. The _axes forms take a set of axes as a bit mask
** (bit k: axis k). A mean over a symbolic axis divides by its run-time size. */
KILN_API kiln_node kiln_expr_sum(kiln_graph *g, kiln_node a, int axis);
KILN_API kiln_node kiln_expr_mean(kiln_graph *g, kiln_node a, int axis);
KILN_API kiln_node kiln_expr_max(kiln_graph *g, kiln_node a, int axis);
KILN_API kiln_node kiln_expr_sum_axes(kiln_graph *g, kiln_node a, unsigned axes);
KILN_API kiln_node kiln_expr_mean_axes(kiln_graph *g, kiln_node a, unsigned axes);
KILN_API kiln_node kiln_expr_max_axes(kiln_graph *g, kiln_node a, unsigned axes);

/* Matrix product over the last two axes: a (.., m, k) x b (.., k, n) ->
** (.., m, n). Leading axes are batched: equal on both sides, or only on one
** side (the other 2-D, used for every batch). */
KILN_API kiln_node kiln_expr_matmul(kiln_graph *g, kiln_node a, kiln_node b);
/* a broadcast to dims by numpy's rules (size-1 and missing leading axes
** grow); dims may hold symbols: kiln_expr_broadcast(g, zero, 2, (int64_t[]){
** KILN_BATCH, 100}) is a recurrent network's zero initial state. */
KILN_API kiln_node kiln_expr_broadcast(kiln_graph *g, kiln_node a, int rank, const int64_t *dims);
/* Every axis reversed (numpy's .T): a 2-D transpose. */
KILN_API kiln_node kiln_expr_transpose(kiln_graph *g, kiln_node a);
/* Axes permuted: output axis k is a's axis perm[k] (numpy's transpose(perm)). */
KILN_API kiln_node kiln_expr_permute(kiln_graph *g, kiln_node a, int rank, const int *perm);
/* Reshape; the element counts must agree as monomials (T*B*F = T*B*F).
** dims: constants, symbols, and at most one KILN_INFER (the rest). */
KILN_API kiln_node kiln_expr_reshape(kiln_graph *g, kiln_node a, int rank, const int64_t *dims);
/* Keep the first ndim-1 axes, fold the rest into one (Theano's flatten);
** symbolic axes fold too: (T, B, F) with ndim 1 is (T*B*F,). */
KILN_API kiln_node kiln_expr_flatten(kiln_graph *g, kiln_node a, int ndim);
/* Elements start, start + step, ... (count of them) along axis; count =
** ceil((stop - start) / step) with stop clamped to the dim, as Python's
** a[start:stop:step] for 0 <= start, step > 0. The axis must be constant
** (a slice of a symbolic axis has no monomial length), unless the slice is
** the whole axis. */
KILN_API kiln_node kiln_expr_slice(kiln_graph *g, kiln_node a, int axis, int64_t start, int64_t stop,
                                   int64_t step);
/* Join n >= 1 nodes (at most 64) along axis, whose lengths are constants;
** the other dims equal (symbols too). */
KILN_API kiln_node kiln_expr_concat(kiln_graph *g, const kiln_node *parts, int n, int axis);
/* Reverse the order along axis (any axis, symbolic ones too). */
KILN_API kiln_node kiln_expr_reverse(kiln_graph *g, kiln_node a, int axis);
/* Cut a along axis into n pieces of sizes[0..n) (constants summing to the
** axis): one node with n results, each read with kiln_expr_output. */
KILN_API kiln_node kiln_expr_split(kiln_graph *g, kiln_node a, int axis, int n, const int64_t *sizes);
/* Result k of a node with several results. */
KILN_API kiln_node kiln_expr_output(kiln_graph *g, kiln_node tuple, int k);
KILN_API int kiln_graph_node_output_count(const kiln_graph *g, kiln_node n);

/* Over the last axis of an N-d tensor. */
KILN_API kiln_node kiln_expr_softmax(kiln_graph *g, kiln_node a);
KILN_API kiln_node kiln_expr_log_softmax(kiln_graph *g, kiln_node a);
/* Integer argmax over the last axis; the first of tied maxima. */
KILN_API kiln_node kiln_expr_argmax(kiln_graph *g, kiln_node a);
/* out[..] = a[.., idx[..]] for a (.., k) and int32 idx (..). */
KILN_API kiln_node kiln_expr_pick(kiln_graph *g, kiln_node a, kiln_node idx);
/* Rows of table (V, ..) picked by int32 idx of any shape: (idx.., ..)
** (LookupTable). An index outside [0, V) is an error at run time naming the
** input and position. The gradient adds rows back (scatter-add). */
KILN_API kiln_node kiln_expr_gather(kiln_graph *g, kiln_node table, kiln_node idx);

/* ---- Recurrences (scan) ----------------------------------------------------
** Theano's scan: a step function run once per step t along the first axis
** (T) of the sequences. The step is built once, on a body graph kiln hands
** it, from its arguments: the sequences' slices at t, the states at t-1
** and the contexts (constant per step), in that order; it sets results[]
** to the states at t (same dtype and shape as the initial ones) and its
** per-step outputs, and returns KILN_OK. It may read parameters
** (kiln_graph_param on the body), which become contexts of the scan, and
** draw random numbers (kiln_graph_random_state on the body): each step its
** own, the same again in the gradient's recomputed step; it may not make
** inputs. The scan's results, read with
** kiln_expr_output: the states stacked over T (n_states), the final states
** (n_states), the outputs, stacked over T or, for those whose bit is set in
** sum_outputs, summed over the steps (n_outputs), and the states at t-1
** stacked over T (n_states). reverse runs t from T-1 down to 0 (the results
** stay in time order). Its gradient is a reverse scan. The compiled step
** is one C function called once per t (docs/architecture.md). */
typedef enum kiln_status (*kiln_scan_step_fn)(kiln_graph *body, const kiln_node *args, kiln_node *results,
                                              void *user);
typedef struct kiln_scan_spec {
    int n_sequences;     /* >= 1; the first axis of each is T */
    int n_states;
    int n_contexts;
    int n_outputs;
    bool reverse;
    unsigned sum_outputs; /* bit m: output m summed over the steps, not stacked */
} kiln_scan_spec;
KILN_API kiln_node kiln_expr_scan(kiln_graph *g, const kiln_scan_spec *spec, const kiln_node *sequences,
                                  const kiln_node *initial_states, const kiln_node *contexts,
                                  kiln_scan_step_fn step, void *user);

/* ---- Random numbers ------------------------------------------------------
** A random state is a graph leaf (four int32: a 64-bit key from the seed and
** a 64-bit step counter) read by random nodes. Each random node is its own
** stream (never merged with another by CSE); element i of stream s at step n
** is Philox4x32-10 of (i, s, n) under the key, so a draw depends only on the
** seed, the step and the node, never on threads or batch order. Each entry
** point that draws advances the state by one step (an update the state
** makes itself), so two steps draw different numbers and the same seed
** draws the same ones. */

/* The random state of g with this seed, made on first use (one per seed).
** KILN_SEED_DEFAULT: the configuration's default_seed, read now (a
** configuration that fails to load is g's error). */
KILN_API kiln_node kiln_graph_random_state(kiln_graph *g, uint64_t seed);
/* Uniform on [lo, hi), normal (mean, std), Bernoulli (1 with probability p,
** else 0) of the given shape (symbols allowed), as floats. From the words w
** of element i (kiln_philox in compiler/rng.c), u_k is a uniform on [0, 1)
** with 24 bits of w[k] for float32, 53 bits of w[2k], w[2k+1] for float64
** (kiln_philox_unit); then uniform = lo + (hi - lo) u_0, bernoulli =
** (u_0 < p), and normal = mean + std sqrt(-2 ln(1 - u_0)) cos(2 pi u_1)
** (Box-Muller, computed in the graph's floats, the cosine in double). */
KILN_API kiln_node kiln_expr_random_uniform(kiln_graph *g, kiln_node state, int rank, const int64_t *dims,
                                            double lo, double hi);
KILN_API kiln_node kiln_expr_random_normal(kiln_graph *g, kiln_node state, int rank, const int64_t *dims,
                                           double mean, double std);
KILN_API kiln_node kiln_expr_random_bernoulli(kiln_graph *g, kiln_node state, int rank, const int64_t *dims,
                                              double p);

/* ---- Graph transformations (compiler/transform.c) ----------------------
** Each returns a new graph and leaves g as it was. The new graph is
** caller-owned (kiln_graph_destroy) and holds what outputs[0..n_outputs)
** need, with their names, owners and roles, g's dim table and symbols, and
** the graph's updates that they read. Its parameters and states are g's
** store entries (the bricks' parameters, as in g), and a random state that
** g made and the new graph reads is shared with g; the new graph keeps them
** alive, so g may be destroyed first.
** new_outputs[k] (n_outputs entries, caller's array) is outputs[k] in the
** new graph. On failure *new_graph is NULL and the error is recorded on g
** as a builder's is (kiln_graph_errmsg; kiln_graph_clear_error forgets
** it); a graph that already has an error is refused with its status.
** Statuses: KILN_OK, KILN_ERR_ARG (bad nodes, no outputs), KILN_ERR_SHAPE,
** KILN_ERR_NOMEM. */

/* Blocks' ComputationGraph.replace: a new graph in which every from[i] is
** replaced by to[i] (same dtype and shape, else KILN_ERR_SHAPE naming both).
** Replacements run one at a time in graph order of from[], each also
** rewriting the replacements still to come, so dependent replacements work
** as in Blocks: with y = x + 2, z = y + 3, a = z + 5, {y: x * 2, z: y * 3}
** makes a = ((x * 2) * 3) + 5. Inside its own replacement a node stands for
** itself ({x: x * 2} doubles x once). A from[i] the outputs do not need is
** skipped (Blocks warns); one given twice is KILN_ERR_ARG. In the new
** graph, a replacement's kiln_graph_node_replacement_of is the node it
** replaced, which the new graph keeps (with its name and roles) even where
** no output reads it any more. */
KILN_API enum kiln_status kiln_graph_replace(kiln_graph *g, const kiln_node *outputs, int n_outputs,
                                             const kiln_node *from, const kiln_node *to, int n_replace,
                                             kiln_graph **new_graph, kiln_node *new_outputs);

/* Blocks' apply_dropout: each variable v (a float) becomes
** v * bernoulli(1 - drop_prob) / (1 - drop_prob) (inverted dropout, as
** Blocks' source: the expected value is v), a new mask of v's shape per
** variable, drawn from the random state of seed in the new graph (one per
** seed: a state of g with that seed is shared). The replacement has role
** KILN_ROLE_DROPOUT and replacement_of v (v's copy in the new graph).
** Replacements as kiln_graph_replace. drop_prob in [0, 1), else
** KILN_ERR_ARG. */
KILN_API enum kiln_status kiln_apply_dropout(kiln_graph *g, const kiln_node *outputs, int n_outputs,
                                             const kiln_node *variables, int n_variables, double drop_prob,
                                             uint64_t seed, kiln_graph **new_graph, kiln_node *new_outputs);

/* ---- Printing (compiler/print.c) ----------------------------------------
** A graph as text, one line per node in id (schedule) order:
**   n<id> = <op> <dtype> <shape> [(n<in>, ...)] [attributes] [name="..."]
**           [owner="..."] [roles=A|B] [replaces=n<k>]
** then one line per update: `update n<target> <- n<value>`. Attributes are
** the ones that mean something for the op (value=2 for a constant, axes=(1)
** for a sum, trans_b for a product, dist=bernoulli p=0.5 stream=0 for a
** random node). A tuple's type is {<dtype> <shape>; ...}. Names and owners
** are quoted with C escapes (\" \\ \n \t \xHH), so every node is one line.
** The dot form is a Graphviz digraph: a box per node labelled with the same
** fields, one per line, an edge from each input (labelled with its place
** when the node has several), a dashed edge from each update's value to its
** target; user text is escaped, so a name cannot end a label.
** KILN_OK; KILN_ERR_ARG for a NULL graph or file; KILN_ERR_IO when writing
** fails (f's error indicator and errno say why). */
KILN_API enum kiln_status kiln_graph_write_text(const kiln_graph *g, FILE *f);
KILN_API enum kiln_status kiln_graph_write_dot(const kiln_graph *g, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
