/* graph.h (internal): the IR behind kiln_graph.
**
** A graph is an array of nodes in topological order: a node's inputs always
** have smaller ids, so "schedule order" is simply id order and every pass can
** walk the array once.
**
** Node. An op, any number of inputs (ids, stored in the graph's pool), a
** dtype and a shape, an attribute block (attr: eight integers and two
** doubles, zero where unused, hashed and compared whole by CSE), a name, an
** owner path (the brick or layer that made it: "/mlp/linear_0") and role
** bits. A node with several results (split; later scan) is a *tuple*: its
** n_out results are described by outs[] and read through PROJ nodes, one
** per result (XLA's get-tuple-element); a tuple has no value of its own.
**
** Dims. A dim is an int64 code: > 0 a constant, < 0 an entry of the graph's
** dim table (shape.c). Entries 0..KILN_MAX_SYMBOLS-1 are the symbols (B, T,
** then the user's), later entries are products of symbols times a constant
** (T·B, 20·B), made by reshape and flatten. So every dim, and every size, is
** a monomial c·B^i·T^j·..., and shapes stay plain arrays of int64.
**
** Leaves. INPUT (bound at run time), PARAM and STATE (persistent values of
** the neutral store, kiln_param: a STATE gets no gradient), CONST (a scalar),
** SYMBOL (the run-time value of a dim symbol as a float scalar: B for a mean
** over the batch).
**
** Updates. A graph holds a list of (target, value) pairs, Theano's updates:
** after an entry point has computed everything, each target (a PARAM or
** STATE leaf) takes its value. The step rule's updates are made by
** kiln_compile (steprule.c); a graph's own (a random state's advance) run in
** every entry point that reads the target.
**
** Passes never edit a graph in place: they rebuild it (kiln_rebuild)
** through the node builder kiln_graph_add(), which folds constants, applies
** the algebraic rewrites and hash-conses identical nodes (CSE) as it goes.
** The user's transforms (replace, dropout: transform.c) copy records into a
** new user graph instead, so every node the user made stays.
**
** Checklist for a new op: its row in kiln_op_info_table (graph.c), a
** builder with shape inference (expr.c), a gradient rule (autodiff.c), a
** kernel in codegen/emit_c.c, a case in the reference interpreter
** (interp.c), its attributes in print.c (put_attrs), rows in
** tests/test_ops.c and tests/test_backends.c. */
#ifndef KILN_COMPILER_GRAPH_H
#define KILN_COMPILER_GRAPH_H

#include "kiln/bricks.h"
#include "compiler/util.h"

enum kiln_op {
    /* leaves */
    KILN_OP_INPUT,      /* named input; data bound at run time */
    KILN_OP_PARAM,      /* parameter of the store (gets a gradient) */
    KILN_OP_STATE,      /* persistent state of the store (no gradient) */
    KILN_OP_CONST,      /* scalar constant attr.f[0] */
    KILN_OP_SYMBOL,     /* run-time value of dim symbol attr.i[0] (a code), floatx scalar */
    /* elementwise unary */
    KILN_OP_NEG, KILN_OP_EXP, KILN_OP_LOG, KILN_OP_ABS, KILN_OP_SQRT, KILN_OP_SQUARE,
    KILN_OP_TANH, KILN_OP_SIGMOID, KILN_OP_SOFTPLUS, KILN_OP_RELU,
    KILN_OP_SIGN,       /* -1, 0, 1 */
    KILN_OP_STEP,       /* 1 where x > 0 else 0 */
    KILN_OP_CLIP,       /* min(max(x, attr.f[0]), attr.f[1]) */
    KILN_OP_CAST,       /* to this node's dtype (int32 <-> floatx) */
    KILN_OP_BROADCAST,  /* input broadcast to this node's shape */
    KILN_OP_ONEHOT,     /* (..) int32 -> (.., attr.i[0]) floatx */
    /* elementwise binary */
    KILN_OP_ADD, KILN_OP_SUB, KILN_OP_MUL, KILN_OP_DIV, KILN_OP_POW, KILN_OP_MAXIMUM, KILN_OP_MINIMUM,
    /* comparisons: 1 or 0 as floatx; operands of one dtype */
    KILN_OP_GE, KILN_OP_GT, KILN_OP_EQ, KILN_OP_NE,
    /* elementwise ternary */
    KILN_OP_SELECT,     /* cond != 0 ? a : b */
    /* reductions over the axes in the bit mask attr.i[0]; those axes are removed */
    KILN_OP_SUM, KILN_OP_MAX,
    /* structured */
    KILN_OP_MATMUL,     /* op(a) x op(b) over the last two axes, leading axes batched;
                        ** attr.i[0] transposes a, attr.i[1] transposes b */
    KILN_OP_TRANSPOSE,  /* axes permuted: out axis k is in axis attr.i[k] */
    KILN_OP_RESHAPE,
    KILN_OP_SLICE,      /* along axis attr.i[0]: start i[1], step i[3] (> 0), count = out dim */
    KILN_OP_CONCAT,     /* inputs joined along axis attr.i[0] */
    KILN_OP_REVERSE,    /* along axis attr.i[0] */
    KILN_OP_PAD,        /* zeros around the input along axis i[0]: i[1] before (slice's gradient) */
    KILN_OP_SOFTMAX, KILN_OP_LOGSOFTMAX, /* over the last axis */
    KILN_OP_ARGMAX,     /* over the last axis, int32 */
    KILN_OP_PICK,       /* a[.., idx[..]] over the last axis of a */
    KILN_OP_GATHER,     /* rows of a table: (V, ..) by int32 idx (..) -> (idx.., ..) */
    KILN_OP_SCATTER_ADD, /* gather's gradient: (V, ..) zeros, rows idx[i] += upd[i] */
    KILN_OP_SOFTMAX_XENT, /* stable -log softmax(x)[.., y[..]] from logits x */
    KILN_OP_SPLIT,      /* tuple: pieces of the input along axis attr.i[0], sizes in outs */
    KILN_OP_PROJ,       /* result attr.i[0] of a tuple node */
    /* recurrence (scan.c) */
    KILN_OP_SCAN,       /* tuple: a body graph run along axis 0 (T) of its sequences; see below */
    KILN_OP_ARG,        /* a body graph's argument attr.i[0] (a sequence's slice, a state, a context) */
    /* random, from a counter-based state (rng.c, philox) */
    KILN_OP_RANDOM,     /* attr.i[0] distribution, i[1] stream id; f[0], f[1] its parameters */
    KILN_OP_RNG_NEXT,   /* the state after one more draw of every stream */
    KILN_OP_COUNT_
};

/* KILN_OP_SCAN. Inputs: n_seq sequences (T, ..) sliced at t, n_state
** initial states, n_ctx contexts (constant per step; parameters the body
** reads are made contexts when the scan is built). The body is a graph of
** the scan's graph (g->bodies[attr body]) whose ARG leaves are, in order,
** the sequences' slices, the states at t-1 and the contexts, and whose
** results (g->results of the body) are the states at t and n_out per-step
** outputs. The scan's results: the states stacked over T (n_state), the
** final states (n_state), the outputs stacked over T or, for those in the
** sum mask, summed over the steps (n_out), the states at t-1 stacked over
** T (n_state: what the gradient reads), and the saved values stacked over T
** (n_saved: the step's products, which the gradient's step reads instead
** of computing them again; body results after the outputs; not counted by
** kiln_graph_node_output_count). reverse runs t from T-1 down. */
enum kiln_scan_attr { KILN_SCAN_BODY, KILN_SCAN_SEQ, KILN_SCAN_STATE, KILN_SCAN_CTX, KILN_SCAN_OUT,
                      KILN_SCAN_REVERSE, KILN_SCAN_SUMS, KILN_SCAN_SAVED };

/* KILN_OP_RANDOM's distributions (attr.i[0]). */
enum kiln_random_kind { KILN_RANDOM_UNIFORM, KILN_RANDOM_NORMAL, KILN_RANDOM_BERNOULLI };

enum kiln_op_class { KILN_CLASS_LEAF, KILN_CLASS_UNARY, KILN_CLASS_BINARY, KILN_CLASS_TERNARY,
                     KILN_CLASS_REDUCE, KILN_CLASS_OTHER };

typedef struct kiln_op_info {
    const char *name;   /* "matmul": used in comments and messages */
    enum kiln_op_class cls;
    int n_in;           /* -1: any number (concat) */
} kiln_op_info;

extern const kiln_op_info kiln_op_info_table[KILN_OP_COUNT_];
static inline const kiln_op_info *kiln_op_info_of(enum kiln_op op) { return &kiln_op_info_table[op]; }
static inline bool kiln_op_is_elementwise(enum kiln_op op)
{
    enum kiln_op_class c = kiln_op_info_table[op].cls;
    return c == KILN_CLASS_UNARY || c == KILN_CLASS_BINARY || c == KILN_CLASS_TERNARY;
}
static inline bool kiln_op_is_leaf(enum kiln_op op) { return kiln_op_info_table[op].cls == KILN_CLASS_LEAF; }

typedef struct kiln_shape {
    int rank;
    int64_t dims[KILN_MAX_RANK]; /* > 0, or a dim code < 0 (see above) */
} kiln_shape;

/* Op attributes, compared whole by CSE: only 8-byte fields, no padding, so
** hashing the bytes is hashing the values. Zero where an op does not use them. */
#define KILN_ATTR_INTS 8
typedef struct kiln_attr {
    int64_t i[KILN_ATTR_INTS];
    double f[2];
} kiln_attr;

/* The value of an arithmetic elementwise op (unary: NEG..CLIP; binary: ADD..NE)
** on scalars, as generated code computes it, in double: constant folding
** and the reference interpreter. NAN for any other op. */
double kiln_op_scalar_unary(enum kiln_op op, double x, const kiln_attr *attr);
double kiln_op_scalar_binary(enum kiln_op op, double a, double b);

/* A result of a tuple node. */
typedef struct kiln_value_type {
    enum kiln_dtype dtype;
    kiln_shape shape;
} kiln_value_type;

typedef struct kiln_node_rec {
    enum kiln_op op;
    enum kiln_dtype dtype;
    kiln_shape shape;      /* unused (rank 0) for a tuple */
    int n_in;
    int32_t *in;           /* n_in ids; the graph's pool (the builder copies) */
    int n_out;             /* 0: a plain value; > 1: a tuple of outs[0..n_out) */
    kiln_value_type *outs; /* the graph's pool */
    kiln_attr attr;
    unsigned roles;        /* enum kiln_role bits */
    const char *name;      /* interned in the graph; NULL when unnamed */
    const char *owner;     /* interned brick or layer path; NULL when none */
    kiln_param *param;     /* PARAM, STATE: the store entry */
    int32_t replaces;      /* apply_dropout, replace: the node this one stands for, or -1 */
    uint64_t hash;         /* structural hash for CSE (0 when not shared) */
} kiln_node_rec;

/* A dim table entry: c · Π symbol[k]^e[k]. */
typedef struct kiln_mono {
    int64_t c;
    uint8_t e[KILN_MAX_SYMBOLS];
} kiln_mono;

/* An update: target (PARAM or STATE leaf) takes value at the end of a step:
** of train_step (Theano's updates of a training function), or, on_read, of
** every entry point that reads the target (a random state's advance). */
typedef struct kiln_update {
    int32_t target, value;
    bool on_read;
} kiln_update;

typedef struct kiln_pool kiln_pool;

struct kiln_graph {
    kiln_err err;
    enum kiln_dtype floatx;
    kiln_node_rec *nodes;
    int32_t n_nodes, cap_nodes;
    kiln_pool *pool;       /* inputs, tuple types and strings of every node */
    /* interned strings (names, owners): open addressing over the pool */
    const char **strs;
    int32_t n_strs, cap_strs;
    /* dim table: symbols first, then products */
    kiln_mono *dims;
    int32_t n_dims, cap_dims;
    const char *symbol_names[KILN_MAX_SYMBOLS]; /* NULL: unused symbol */
    /* updates the graph itself asks for (a random state's advance) */
    kiln_update *updates;
    int32_t n_updates, cap_updates;
    int64_t n_streams;     /* random streams made so far (ids for KILN_OP_RANDOM) */
    /* store entries the graph made and frees (random states) */
    kiln_param **owned;
    int32_t n_owned, cap_owned;
    /* scan bodies, owned; and, for a body, its results (states at t, outputs) */
    struct kiln_graph **bodies;
    int32_t n_bodies, cap_bodies;
    int32_t *results;
    int32_t n_results;
    /* open-addressing table of node ids by hash, for CSE */
    int32_t *cse;
    int32_t cap_cse;
    bool cse_enabled;      /* user graphs keep every node the user made */
    bool rewrite_enabled;  /* algebraic rewrites (program graphs only) */
};

/* ---- dims and shapes (shape.c) ------------------------------------------ */

/* Symbol index of a dim code that is a symbol (B 0, T 1, ...), else -1. */
int kiln_dim_symbol(int64_t d);
/* The monomial of dim d in g: false when d is not a valid dim of g. */
bool kiln_dim_mono(const kiln_graph *g, int64_t d, kiln_mono *out);
/* The code of m in g (a constant, a symbol, or a table entry, made on first
** use). 0 with the error on g when the table is full or m overflows. */
int64_t kiln_graph_dim_code(kiln_graph *g, const kiln_mono *m);
/* Product of two monomials; false on overflow (c past 2^53, exponent past 64). */
bool kiln_mono_mul(const kiln_mono *a, const kiln_mono *b, kiln_mono *out);
bool kiln_mono_equal(const kiln_mono *a, const kiln_mono *b);
/* a / b when it is a monomial (b divides a); false otherwise. */
bool kiln_mono_div(const kiln_mono *a, const kiln_mono *b, kiln_mono *out);
/* True when m has no symbol. */
bool kiln_mono_is_const(const kiln_mono *m);
/* Value of m for run-time symbol sizes (sizes[k] for symbol k). Unchecked:
** only for sizes up to maxima at which the memory plan checked every value
** (memplan.c), or sizes a test chose; else kiln_mono_eval_checked. */
int64_t kiln_mono_eval(const kiln_mono *m, const int64_t *sizes);
/* The same, false when the value passes INT64_MAX or a size is negative. */
bool kiln_mono_eval_checked(const kiln_mono *m, const int64_t *sizes, int64_t *out);
/* "T*B*20", "B", "784" into buf. */
const char *kiln_mono_str(const kiln_graph *g, const kiln_mono *m, char *buf, size_t cap);

/* Element count of s as a monomial; false on overflow (error not recorded). */
bool kiln_shape_size(const kiln_graph *g, const kiln_shape *s, kiln_mono *out);
/* Element count with every symbol at 1 (the constant factor). */
int64_t kiln_shape_const_size(const kiln_graph *g, const kiln_shape *s);
/* Whether s has any symbolic dim; whether it has symbol sym (code) anywhere. */
bool kiln_shape_is_static(const kiln_graph *g, const kiln_shape *s);
bool kiln_shape_has_symbol(const kiln_graph *g, const kiln_shape *s, int64_t sym);
bool kiln_shape_equal(const kiln_shape *a, const kiln_shape *b);
/* "(B, 784)", "(T*B, 100)" into buf. */
const char *kiln_shape_str(const kiln_graph *g, const kiln_shape *s, char *buf, size_t cap);
#define KILN_SHAPE_STR_MAX (KILN_MAX_RANK * 48 + 4)
/* Copy src's dim table and symbol names into dst (same codes). */
bool kiln_graph_copy_dims(kiln_graph *dst, const kiln_graph *src);

/* ---- nodes ------------------------------------------------------------------- */

static inline kiln_node_rec *kiln_graph_node(kiln_graph *g, int32_t id) { return &g->nodes[id]; }
static inline const kiln_node_rec *kiln_graph_cnode(const kiln_graph *g, int32_t id) { return &g->nodes[id]; }
/* true when n is a valid node of g; else records KILN_ERR_ARG (once). */
bool kiln_graph_check(kiln_graph *g, kiln_node n, const char *what);

/* The node builder. rec's fields are taken (inputs, outs and strings are
** copied into g). Runs folding, rewrites and CSE when enabled. Returns the
** id of the (possibly pre-existing or simplified) node, or -1 with the error
** on g. */
int32_t kiln_graph_add(kiln_graph *g, const kiln_node_rec *rec);
/* Same without any simplification: always a new node. */
int32_t kiln_graph_add_raw(kiln_graph *g, const kiln_node_rec *rec);
/* A record with op, dtype and the inputs in[0..n) (copied by the builder
** later; the array must live until then), replaces = -1. */
kiln_node_rec kiln_rec(enum kiln_op op, enum kiln_dtype dtype, int n_in, const int32_t *in);
/* Record an error on g unless one is already there; returns KILN_NODE_NONE. */
kiln_node kiln_graph_fail(kiln_graph *g, enum kiln_status s, const char *fmt, ...) KILN_PRINTF(3, 4);
/* Names and owners: interned copies (NULL or "" clears). */
enum kiln_status kiln_graph_set_name_raw(kiln_graph *g, int32_t id, const char *name);
enum kiln_status kiln_graph_set_owner(kiln_graph *g, int32_t id, const char *owner);
/* s interned in g (equal strings, one pointer); NULL on OOM (error on g). */
const char *kiln_graph_intern(kiln_graph *g, const char *s);
/* The PARAM or STATE node of p in g, created on first use (roles and owner
** from the store entry). */
kiln_node kiln_graph_store_leaf(kiln_graph *g, kiln_param *p);
/* A graph for compiling (CSE and rewrites on). */
kiln_graph *kiln_graph_create_program(enum kiln_dtype floatx);
/* Role bits with the hierarchy applied (WEIGHT and BIAS are PARAMETERs). */
unsigned kiln_role_closure(unsigned roles);
/* Register an update (target a PARAM or STATE leaf of g). */
enum kiln_status kiln_graph_add_update(kiln_graph *g, int32_t target, int32_t value, bool on_read);
/* The graph's update of target, or -1. */
int32_t kiln_graph_update_of(const kiln_graph *g, int32_t target);
/* Print g as text or dot (print.c) with the updates ups[0..n_ups); those
** that run at the end of train_step (not on_read) are marked "(train_step)".
** What kiln_graph_write_text/dot and kiln_program_write_graph call. */
enum kiln_status kiln_graph_print(const kiln_graph *g, const kiln_update *ups, int n_ups,
                                  FILE *f, bool dot);

/* Attribute accessors, named by what they mean. */
static inline int64_t kiln_attr_axes(const kiln_node_rec *r) { return r->attr.i[0]; }
static inline int kiln_attr_axis(const kiln_node_rec *r) { return (int)r->attr.i[0]; }
static inline bool kiln_attr_trans_a(const kiln_node_rec *r) { return r->attr.i[0] != 0; }
static inline bool kiln_attr_trans_b(const kiln_node_rec *r) { return r->attr.i[1] != 0; }

/* Internal builders for ops without a public one (expr.c). */
kiln_node kiln_expr_unary_op(kiln_graph *g, enum kiln_op op, kiln_node a);
kiln_node kiln_expr_binary_op(kiln_graph *g, enum kiln_op op, kiln_node a, kiln_node b);
kiln_node kiln_expr_broadcast_to(kiln_graph *g, kiln_node a, const kiln_shape *shape);
kiln_node kiln_expr_onehot(kiln_graph *g, kiln_node idx, int64_t depth);
kiln_node kiln_expr_matmul_t(kiln_graph *g, kiln_node a, kiln_node b, bool trans_a, bool trans_b);
kiln_node kiln_expr_softmax_xent(kiln_graph *g, kiln_node logits, kiln_node idx);
kiln_node kiln_expr_reduce_mask(kiln_graph *g, enum kiln_op op, kiln_node a, int64_t axes);
kiln_node kiln_expr_pad(kiln_graph *g, kiln_node a, int axis, int64_t before, int64_t total);
kiln_node kiln_expr_scatter_add(kiln_graph *g, kiln_node upd, kiln_node idx, int64_t rows);
kiln_node kiln_expr_rng_next(kiln_graph *g, kiln_node state);
kiln_node kiln_expr_reshape_shape(kiln_graph *g, kiln_node a, const kiln_shape *s);

/* Result k of tuple t, a PROJ node: kiln_expr_output without its limit to
** the public results (a scan's saved values are results too). */
kiln_node kiln_expr_result(kiln_graph *g, kiln_node t, int k);

/* The leaf of random state p in g, with the advance every entry point that
** reads it makes (an update on read), added when g has none. */
kiln_node kiln_graph_random_leaf(kiln_graph *g, kiln_param *p);

/* ---- scans (scan.c) --------------------------------------------------------- */

/* A scan node over body (g takes it; ARGs and results set) with these
** counts and inputs (n_seq + n_state + n_ctx ids): its id, or -1 with the
** error on g. */
int32_t kiln_scan_add(kiln_graph *g, kiln_graph *body, int n_seq, int n_state, int n_ctx, int n_out, int n_saved,
                      bool reverse,
                      uint64_t sums, const int32_t *inputs);
/* Copy src's body number `body` into dst (a program graph's rebuild when
** program: rewrites, CSE, only what its results need): its index in dst,
** or -1 with the error on dst. */
int32_t kiln_scan_copy_body(kiln_graph *dst, const kiln_graph *src, int32_t body, bool program);
/* The gradient of scan node id: res_adj[k] the adjoint of its result k
** (-1: none); in_adj[k] receives the adjoint of input k (-1: none), for
** the inputs need[] marks. Builds a reverse scan in g. */
enum kiln_status kiln_scan_gradient(kiln_graph *g, int32_t id, const int32_t *res_adj, const unsigned char *need,
                                    int32_t *in_adj);

/* ---- the neutral store (store.c) ------------------------------------------- */

/* What a store entry is. */
enum kiln_store_kind { KILN_STORE_PARAMETER, KILN_STORE_STATE };

/* A store entry's facts as the graph sees them. */
enum kiln_store_kind kiln_param_kind(const kiln_param *p);
enum kiln_dtype kiln_param_dtype(const kiln_param *p);
unsigned kiln_param_roles(const kiln_param *p);
const kiln_shape *kiln_param_shape(const kiln_param *p);
const char *kiln_param_owner(const kiln_param *p);
/* Host values (double, row-major); NULL before allocation. */
double *kiln_param_data(kiln_param *p);
/* Optimiser state made for a parameter (a slab in parameter order): the
** parameter, else NULL; and the slab's number (1.. per step rule state). */
kiln_param *kiln_param_like(const kiln_param *p);
int kiln_param_slab(const kiln_param *p);

#endif
