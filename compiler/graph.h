/* graph.h (internal): the IR behind kiln_graph.
**
** A graph is an array of nodes in topological order: a node's inputs always
** have smaller ids, so "schedule order" is simply id order and every pass can
** walk the array once. Shapes hold constants and at most one symbolic batch
** dim (KILN_BATCH); element counts are c * B^k with k in {0, 1}.
**
** Passes never edit a graph in place: they rebuild it (kiln_rebuild) through
** the node builder kiln_graph_add(), which folds constants, applies the
** algebraic rewrites and hash-conses identical nodes (CSE) as it goes.
**
** Checklist for a new op: its row in kiln_op_info (graph.c), shape inference
** in expr.c, a gradient rule in autodiff.c, an emitter case in
** codegen/emit_c.c, rows in tests/test_ops.c. Scan (symbolic T) and
** convolution slot in the same way; see docs/architecture.md. */
#ifndef KILN_COMPILER_GRAPH_H
#define KILN_COMPILER_GRAPH_H

#include "kiln/bricks.h"
#include "compiler/util.h"

enum kiln_op {
    /* leaves */
    KILN_OP_INPUT,      /* named input; data bound at run time */
    KILN_OP_PARAM,      /* persistent parameter (brick-owned) */
    KILN_OP_CONST,      /* scalar constant `value` */
    KILN_OP_BATCH,      /* the run-time batch size B, as a floatx scalar */
    KILN_OP_HYPER,      /* run-time scalar hyperparameter #iattr (learning rate) */
    /* elementwise unary */
    KILN_OP_NEG, KILN_OP_EXP, KILN_OP_LOG, KILN_OP_ABS, KILN_OP_SQRT, KILN_OP_SQUARE,
    KILN_OP_TANH, KILN_OP_SIGMOID, KILN_OP_SOFTPLUS, KILN_OP_RELU,
    KILN_OP_SIGN,       /* -1, 0, 1 */
    KILN_OP_STEP,       /* 1 where x > 0 else 0 */
    KILN_OP_BROADCAST,  /* input broadcast to this node's shape */
    KILN_OP_ONEHOT,     /* (B) integer -> (B, iattr) floatx */
    /* elementwise binary */
    KILN_OP_ADD, KILN_OP_SUB, KILN_OP_MUL, KILN_OP_DIV, KILN_OP_POW, KILN_OP_MAXIMUM,
    KILN_OP_GE,         /* 1 where a >= b else 0 */
    KILN_OP_EQ,         /* 1 where a == b else 0 */
    KILN_OP_NE,         /* 1 where a != b else 0 */
    /* reductions over `axis` (KILN_ALL_AXES: all) */
    KILN_OP_SUM, KILN_OP_MAX,
    /* structured */
    KILN_OP_MATMUL,     /* op(a) x op(b), transposes in trans_a / trans_b */
    KILN_OP_TRANSPOSE,  /* 2-D */
    KILN_OP_RESHAPE,
    KILN_OP_SOFTMAX, KILN_OP_LOGSOFTMAX, /* rows of a 2-D tensor */
    KILN_OP_PICK,       /* a[i, idx[i]] */
    KILN_OP_ARGMAX,     /* row argmax, int32 */
    KILN_OP_SOFTMAX_XENT, /* stable -log softmax(x)[i, y[i]] from logits x */
    KILN_OP_COUNT_
};

enum kiln_op_class { KILN_CLASS_LEAF, KILN_CLASS_UNARY, KILN_CLASS_BINARY, KILN_CLASS_REDUCE,
                     KILN_CLASS_OTHER };

typedef struct kiln_op_info {
    const char *name;   /* "matmul": used in comments and messages */
    enum kiln_op_class cls;
    int n_in;
} kiln_op_info;

extern const kiln_op_info kiln_op_info_table[KILN_OP_COUNT_];
static inline const kiln_op_info *kiln_op_info_of(enum kiln_op op) { return &kiln_op_info_table[op]; }
static inline bool kiln_op_is_elementwise(enum kiln_op op)
{
    enum kiln_op_class c = kiln_op_info_table[op].cls;
    return c == KILN_CLASS_UNARY || c == KILN_CLASS_BINARY;
}

typedef struct kiln_shape {
    int rank;
    int64_t dims[KILN_MAX_RANK]; /* > 0, or KILN_BATCH */
} kiln_shape;

typedef struct kiln_node_rec {
    enum kiln_op op;
    enum kiln_dtype dtype;
    kiln_shape shape;
    int n_in;
    int32_t in[3];
    double value;          /* CONST */
    int axis;              /* SUM, MAX */
    int64_t iattr;         /* ONEHOT depth, HYPER index */
    bool trans_a, trans_b; /* MATMUL */
    unsigned roles;        /* enum kiln_role bits */
    char *name;            /* owned; NULL when unnamed */
    kiln_brick *brick;     /* brick that made it, or NULL */
    kiln_param *param;     /* PARAM */
    uint64_t hash;         /* structural hash for CSE (0 for leaves) */
} kiln_node_rec;

struct kiln_graph {
    kiln_err err;
    enum kiln_dtype floatx;
    kiln_node_rec *nodes;
    int32_t n_nodes, cap_nodes;
    /* open-addressing table of node ids by hash, for CSE */
    int32_t *cse;
    int32_t cap_cse;
    bool cse_enabled;      /* user graphs keep every node the user made */
    bool rewrite_enabled;  /* algebraic rewrites (program graphs only) */
};

/* Element count per example (batch dim dropped) and whether B appears. */
int64_t kiln_shape_const_size(const kiln_shape *s);
bool kiln_shape_has_batch(const kiln_shape *s);
bool kiln_shape_equal(const kiln_shape *a, const kiln_shape *b);
/* "(B, 784)" into buf. */
const char *kiln_shape_str(const kiln_shape *s, char *buf, size_t cap);
#define KILN_SHAPE_STR_MAX (KILN_MAX_RANK * 22 + 4)

static inline kiln_node_rec *kiln_graph_node(kiln_graph *g, int32_t id) { return &g->nodes[id]; }
static inline const kiln_node_rec *kiln_graph_cnode(const kiln_graph *g, int32_t id) { return &g->nodes[id]; }
/* true when n is a valid node of g; else records KILN_ERR_ARG (once). */
bool kiln_graph_check(kiln_graph *g, kiln_node n, const char *what);

/* The node builder. rec's op, dtype, shape, inputs and attributes are
** taken; name/brick/roles too. Runs folding, rewrites and CSE when enabled.
** Returns the id of the (possibly pre-existing or simplified) node, or -1
** with the error on g (only on OOM or a bad name). */
int32_t kiln_graph_add(kiln_graph *g, const kiln_node_rec *rec);
/* Same without any simplification: always a new node. */
int32_t kiln_graph_add_raw(kiln_graph *g, const kiln_node_rec *rec);
/* Record an error on g unless one is already there; returns KILN_NODE_NONE. */
kiln_node kiln_graph_fail(kiln_graph *g, enum kiln_status s, const char *fmt, ...) KILN_PRINTF(3, 4);
enum kiln_status kiln_graph_set_name_raw(kiln_graph *g, int32_t id, const char *name);
/* The PARAM node of p in g, created on first use (roles from the param). */
kiln_node kiln_graph_param_leaf(kiln_graph *g, kiln_param *p);
/* A graph for compiling (CSE and rewrites on). */
kiln_graph *kiln_graph_create_program(enum kiln_dtype floatx);

/* Internal builders for ops without a public one (expr.c). */
kiln_node kiln_expr_unary_op(kiln_graph *g, enum kiln_op op, kiln_node a);
kiln_node kiln_expr_binary_op(kiln_graph *g, enum kiln_op op, kiln_node a, kiln_node b);
kiln_node kiln_expr_broadcast_to(kiln_graph *g, kiln_node a, const kiln_shape *shape);
kiln_node kiln_expr_onehot(kiln_graph *g, kiln_node idx, int64_t depth);
kiln_node kiln_expr_matmul_t(kiln_graph *g, kiln_node a, kiln_node b, bool trans_a, bool trans_b);
kiln_node kiln_expr_softmax_xent(kiln_graph *g, kiln_node logits, kiln_node idx);
kiln_node kiln_expr_hyper(kiln_graph *g, int index, const char *name);
kiln_node kiln_expr_batch_size(kiln_graph *g);

/* Parameters as the graph sees them (implemented in bricks.c). */
unsigned kiln_param_roles(const kiln_param *p);
const kiln_shape *kiln_param_shape(const kiln_param *p);
/* Host values (double, row-major); NULL before allocation. */
double *kiln_param_data(kiln_param *p);
/* Brick ancestry, for filters. */
bool kiln_brick_is_within(const kiln_brick *b, const kiln_brick *ancestor);

#endif
