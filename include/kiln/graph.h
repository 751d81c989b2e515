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
** WEIGHT (no downgrade). */
enum kiln_role {
    KILN_ROLE_INPUT = 1u << 0,
    KILN_ROLE_OUTPUT = 1u << 1,
    KILN_ROLE_COST = 1u << 2,
    KILN_ROLE_AUXILIARY = 1u << 3,
    KILN_ROLE_PARAMETER = 1u << 4,
    KILN_ROLE_WEIGHT = 1u << 5,
    KILN_ROLE_BIAS = 1u << 6
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

/* A named input (Theano's matrix('features')). dims[i] > 0, or KILN_BATCH
** for dims[0]. name is copied; it binds the input to a data source. */
KILN_API kiln_node kiln_graph_input(kiln_graph *g, const char *name, enum kiln_dtype dtype,
                                    int rank, const int64_t *dims);
KILN_API kiln_node kiln_graph_input_by_name(const kiln_graph *g, const char *name);

/* Facts about a node. Shapes report the batch dim as KILN_BATCH. */
KILN_API int kiln_graph_node_count(const kiln_graph *g);
KILN_API int kiln_graph_node_rank(const kiln_graph *g, kiln_node n);
KILN_API int64_t kiln_graph_node_dim(const kiln_graph *g, kiln_node n, int axis);
KILN_API enum kiln_dtype kiln_graph_node_dtype(const kiln_graph *g, kiln_node n);
/* Name: set by the user or derived as Blocks does (`linear_apply_output`).
** Borrowed, valid while g lives. "" when unnamed. */
KILN_API const char *kiln_graph_node_name(const kiln_graph *g, kiln_node n);
KILN_API enum kiln_status kiln_graph_set_name(kiln_graph *g, kiln_node n, const char *name);
/* Path of the brick that made n ("/mlp/linear_0"), or "" if none. */
KILN_API const char *kiln_graph_node_brick_path(const kiln_graph *g, kiln_node n);
KILN_API kiln_param *kiln_graph_node_param(const kiln_graph *g, kiln_node n);
/* The node standing for p in g, or KILN_NODE_NONE when p was not applied in g. */
KILN_API kiln_node kiln_graph_param_node(const kiln_graph *g, const kiln_param *p);

/* Roles. has_role respects the hierarchy (WEIGHT is a PARAMETER). */
KILN_API enum kiln_status kiln_graph_add_role(kiln_graph *g, kiln_node n, enum kiln_role r);
KILN_API bool kiln_graph_has_role(const kiln_graph *g, kiln_node n, enum kiln_role r);
/* Auxiliary variable (Blocks' add_auxiliary_variable): marks n AUXILIARY,
** names it and ties it to brick b (may be NULL). */
KILN_API enum kiln_status kiln_graph_add_auxiliary(kiln_graph *g, kiln_node n, const char *name,
                                                   kiln_brick *b);

/* VariableFilter. Zero fields match everything: roles is a mask that must
** all be present (with hierarchy), brick matches nodes tagged with that brick
** or one of its descendants' parameters/outputs, name is exact. */
typedef struct kiln_filter {
    unsigned roles;
    const kiln_brick *brick;
    const char *name;
} kiln_filter;

/* Nodes matching f among the ancestors of outputs[0..n_outputs) and their
** bricks' auxiliary variables, in topological order (all of g when
** n_outputs == 0). Writes at most cap nodes to out; returns the total count
** (which may exceed cap), or -1 with the error on g. */
KILN_API int kiln_graph_filter(kiln_graph *g, const kiln_node *outputs, int n_outputs,
                               const kiln_filter *f, kiln_node *out, int cap);

/* ---- Expressions (compiler/expr.c) ------------------------------------ */

KILN_API kiln_node kiln_expr_constant(kiln_graph *g, double value); /* scalar */

/* Elementwise, with numpy broadcasting (dims right-aligned, 1 broadcasts). */
KILN_API kiln_node kiln_expr_add(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_sub(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_mul(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_div(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_pow(kiln_graph *g, kiln_node a, kiln_node b);
KILN_API kiln_node kiln_expr_maximum(kiln_graph *g, kiln_node a, kiln_node b);
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

/* Reductions over one axis (0 <= axis < rank) or KILN_ALL_AXES; the axis is
** removed from the shape. */
KILN_API kiln_node kiln_expr_sum(kiln_graph *g, kiln_node a, int axis);
KILN_API kiln_node kiln_expr_mean(kiln_graph *g, kiln_node a, int axis);
KILN_API kiln_node kiln_expr_max(kiln_graph *g, kiln_node a, int axis);

/* Matrix product of 2-D a (m, k) and b (k, n). */
KILN_API kiln_node kiln_expr_matmul(kiln_graph *g, kiln_node a, kiln_node b);
/* 2-D transpose. */
KILN_API kiln_node kiln_expr_transpose(kiln_graph *g, kiln_node a);
/* Reshape; dims may hold one KILN_BATCH (first) and the element counts of
** the other dims must agree. */
KILN_API kiln_node kiln_expr_reshape(kiln_graph *g, kiln_node a, int rank, const int64_t *dims);
/* Keep the first ndim-1 axes, fold the rest into one (Theano's flatten). */
KILN_API kiln_node kiln_expr_flatten(kiln_graph *g, kiln_node a, int ndim);

/* Row-wise over the last axis of a 2-D tensor. */
KILN_API kiln_node kiln_expr_softmax(kiln_graph *g, kiln_node a);
KILN_API kiln_node kiln_expr_log_softmax(kiln_graph *g, kiln_node a);
/* out[i] = a[i, idx[i]] for 2-D a and integer vector idx. */
KILN_API kiln_node kiln_expr_pick(kiln_graph *g, kiln_node a, kiln_node idx);
/* Integer argmax over the last axis of a 2-D tensor. */
KILN_API kiln_node kiln_expr_argmax(kiln_graph *g, kiln_node a);
/* 1.0 where a != b else 0.0 (floatx); integer or float operands. */
KILN_API kiln_node kiln_expr_not_equal(kiln_graph *g, kiln_node a, kiln_node b);

#ifdef __cplusplus
}
#endif
#endif
