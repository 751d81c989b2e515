/* graph.c: nodes, the node builder, names, owners, roles and updates.
**
** Nodes live in one growable array, in topological order (inputs have smaller
** ids). kiln_graph_add() is the single way nodes are made: user graphs take
** every node as given, while program graphs (the ones kiln_compile builds)
** fold constants, apply rewrites (passes.c) and hash-cons identical nodes, so
** CSE costs nothing extra and is never forgotten by a pass.
**
** Memory: a node's inputs, a tuple's result types and every name and owner
** string live in the graph's pool (util.c), freed with the graph; strings are
** interned, so equal owners are one pointer and a node record is plain data
** that can be copied. Random nodes are never shared by CSE (two dropout masks
** of one shape are two draws), nor are leaves other than constants and
** symbols. */
#include "compiler/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/passes.h"
#include "compiler/store.h"
#include "runtime/config.h"

const kiln_op_info kiln_op_info_table[KILN_OP_COUNT_] = {
    [KILN_OP_INPUT] = {"input", KILN_CLASS_LEAF, 0},
    [KILN_OP_PARAM] = {"param", KILN_CLASS_LEAF, 0},
    [KILN_OP_STATE] = {"state", KILN_CLASS_LEAF, 0},
    [KILN_OP_CONST] = {"const", KILN_CLASS_LEAF, 0},
    [KILN_OP_SYMBOL] = {"size", KILN_CLASS_LEAF, 0},
    [KILN_OP_NEG] = {"neg", KILN_CLASS_UNARY, 1},
    [KILN_OP_EXP] = {"exp", KILN_CLASS_UNARY, 1},
    [KILN_OP_LOG] = {"log", KILN_CLASS_UNARY, 1},
    [KILN_OP_ABS] = {"abs", KILN_CLASS_UNARY, 1},
    [KILN_OP_SQRT] = {"sqrt", KILN_CLASS_UNARY, 1},
    [KILN_OP_SQUARE] = {"square", KILN_CLASS_UNARY, 1},
    [KILN_OP_TANH] = {"tanh", KILN_CLASS_UNARY, 1},
    [KILN_OP_SIGMOID] = {"sigmoid", KILN_CLASS_UNARY, 1},
    [KILN_OP_SOFTPLUS] = {"softplus", KILN_CLASS_UNARY, 1},
    [KILN_OP_RELU] = {"relu", KILN_CLASS_UNARY, 1},
    [KILN_OP_SIGN] = {"sign", KILN_CLASS_UNARY, 1},
    [KILN_OP_STEP] = {"step", KILN_CLASS_UNARY, 1},
    [KILN_OP_CLIP] = {"clip", KILN_CLASS_UNARY, 1},
    [KILN_OP_CAST] = {"cast", KILN_CLASS_UNARY, 1},
    [KILN_OP_BROADCAST] = {"broadcast", KILN_CLASS_UNARY, 1},
    [KILN_OP_ONEHOT] = {"onehot", KILN_CLASS_UNARY, 1},
    [KILN_OP_ADD] = {"add", KILN_CLASS_BINARY, 2},
    [KILN_OP_SUB] = {"sub", KILN_CLASS_BINARY, 2},
    [KILN_OP_MUL] = {"mul", KILN_CLASS_BINARY, 2},
    [KILN_OP_DIV] = {"div", KILN_CLASS_BINARY, 2},
    [KILN_OP_POW] = {"pow", KILN_CLASS_BINARY, 2},
    [KILN_OP_MAXIMUM] = {"maximum", KILN_CLASS_BINARY, 2},
    [KILN_OP_MINIMUM] = {"minimum", KILN_CLASS_BINARY, 2},
    [KILN_OP_GE] = {"greater_equal", KILN_CLASS_BINARY, 2},
    [KILN_OP_GT] = {"greater", KILN_CLASS_BINARY, 2},
    [KILN_OP_EQ] = {"equal", KILN_CLASS_BINARY, 2},
    [KILN_OP_NE] = {"not_equal", KILN_CLASS_BINARY, 2},
    [KILN_OP_SELECT] = {"select", KILN_CLASS_TERNARY, 3},
    [KILN_OP_SUM] = {"sum", KILN_CLASS_REDUCE, 1},
    [KILN_OP_MAX] = {"max", KILN_CLASS_REDUCE, 1},
    [KILN_OP_MATMUL] = {"matmul", KILN_CLASS_OTHER, 2},
    [KILN_OP_TRANSPOSE] = {"transpose", KILN_CLASS_OTHER, 1},
    [KILN_OP_RESHAPE] = {"reshape", KILN_CLASS_OTHER, 1},
    [KILN_OP_SLICE] = {"slice", KILN_CLASS_OTHER, 1},
    [KILN_OP_CONCAT] = {"concat", KILN_CLASS_OTHER, -1},
    [KILN_OP_REVERSE] = {"reverse", KILN_CLASS_OTHER, 1},
    [KILN_OP_PAD] = {"pad", KILN_CLASS_OTHER, 1},
    [KILN_OP_SOFTMAX] = {"softmax", KILN_CLASS_OTHER, 1},
    [KILN_OP_LOGSOFTMAX] = {"log_softmax", KILN_CLASS_OTHER, 1},
    [KILN_OP_ARGMAX] = {"argmax", KILN_CLASS_OTHER, 1},
    [KILN_OP_PICK] = {"pick", KILN_CLASS_OTHER, 2},
    [KILN_OP_GATHER] = {"gather", KILN_CLASS_OTHER, 2},
    [KILN_OP_SCATTER_ADD] = {"scatter_add", KILN_CLASS_OTHER, 2},
    [KILN_OP_SOFTMAX_XENT] = {"softmax_cross_entropy", KILN_CLASS_OTHER, 2},
    [KILN_OP_SPLIT] = {"split", KILN_CLASS_OTHER, 1},
    [KILN_OP_PROJ] = {"proj", KILN_CLASS_OTHER, 1},
    [KILN_OP_SCAN] = {"scan", KILN_CLASS_OTHER, -1},
    [KILN_OP_ARG] = {"arg", KILN_CLASS_LEAF, 0},
    [KILN_OP_RANDOM] = {"random", KILN_CLASS_OTHER, 1},
    [KILN_OP_RNG_NEXT] = {"rng_next", KILN_CLASS_OTHER, 1},
};

/* Scalar semantics of the arithmetic elementwise ops, the formulas the C
** emitter prints (k_softplus, k_clip, ...), in double. */
double kiln_op_scalar_unary(enum kiln_op op, double x, const kiln_attr *attr)
{
    switch (op) {
    case KILN_OP_NEG: return -x;
    case KILN_OP_EXP: return exp(x);
    case KILN_OP_LOG: return log(x);
    case KILN_OP_ABS: return fabs(x);
    case KILN_OP_SQRT: return sqrt(x);
    case KILN_OP_SQUARE: return x * x;
    case KILN_OP_TANH: return tanh(x);
    case KILN_OP_SIGMOID: { /* exp of -|x| only: e^x itself where x < 0, down to the subnormals (#9) */
        double e = exp(-fabs(x));
        return x >= 0 ? 1 / (1 + e) : e / (1 + e);
    }
    case KILN_OP_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case KILN_OP_RELU: return x > 0 ? x : 0;
    case KILN_OP_SIGN: return (x > 0) - (x < 0);
    case KILN_OP_STEP: return x > 0;
    case KILN_OP_CLIP: return x < attr->f[0] ? attr->f[0] : x > attr->f[1] ? attr->f[1] : x;
    default: return NAN;
    }
}

double kiln_op_scalar_binary(enum kiln_op op, double a, double b)
{
    switch (op) {
    case KILN_OP_ADD: return a + b;
    case KILN_OP_SUB: return a - b;
    case KILN_OP_MUL: return a * b;
    case KILN_OP_DIV: return a / b;
    case KILN_OP_POW: return pow(a, b);
    case KILN_OP_MAXIMUM: return a >= b ? a : b;
    case KILN_OP_MINIMUM: return a <= b ? a : b;
    case KILN_OP_GE: return a >= b;
    case KILN_OP_GT: return a > b;
    case KILN_OP_EQ: return a == b;
    case KILN_OP_NE: return a != b;
    default: return NAN;
    }
}

kiln_node_rec kiln_rec(enum kiln_op op, enum kiln_dtype dtype, int n_in, const int32_t *in)
{
    kiln_node_rec r;
    memset(&r, 0, sizeof r);
    r.op = op;
    r.dtype = dtype;
    r.n_in = n_in;
    r.in = (int32_t *)in;
    r.replaces = -1;
    return r;
}

/* ---- graph lifetime ---------------------------------------------------- */

static kiln_graph *graph_new(enum kiln_dtype floatx, bool program)
{
    if (floatx != KILN_DTYPE_F32 && floatx != KILN_DTYPE_F64)
        return NULL;
    kiln_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->floatx = floatx;
    g->cse_enabled = program;
    g->rewrite_enabled = program;
    g->pool = kiln_pool_create();
    g->cap_dims = 2 * KILN_MAX_SYMBOLS;
    g->dims = calloc((size_t)g->cap_dims, sizeof *g->dims);
    if (!g->pool || !g->dims) {
        kiln_graph_destroy(g);
        return NULL;
    }
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++) {
        g->dims[k].c = 1;
        g->dims[k].e[k] = 1;
    }
    g->n_dims = KILN_MAX_SYMBOLS;
    if (!(g->symbol_names[0] = kiln_graph_intern(g, "B")) || !(g->symbol_names[1] = kiln_graph_intern(g, "T"))) {
        kiln_graph_destroy(g);
        return NULL;
    }
    return g;
}

kiln_graph *kiln_graph_create(enum kiln_dtype floatx) { return graph_new(floatx, false); }
kiln_graph *kiln_graph_create_program(enum kiln_dtype floatx) { return graph_new(floatx, true); }

void kiln_graph_destroy(kiln_graph *g)
{
    if (!g)
        return;
    for (int32_t i = 0; i < g->n_nodes; i++) /* each node holds its store entry (store.c) */
        kiln_store_unref(g->nodes[i].param);
    free(g->nodes);
    free(g->cse);
    free(g->strs);
    free(g->dims);
    free(g->updates);
    for (int32_t i = 0; i < g->n_owned; i++)
        kiln_store_unref(g->owned[i]);
    free(g->owned);
    for (int32_t i = 0; i < g->n_bodies; i++)
        kiln_graph_destroy(g->bodies[i]);
    free(g->bodies);
    free(g->results);
    kiln_pool_destroy(g->pool);
    free(g);
}

enum kiln_dtype kiln_graph_floatx(const kiln_graph *g) { return g ? g->floatx : KILN_DTYPE_F32; }
enum kiln_status kiln_graph_status(const kiln_graph *g) { return g ? g->err.status : KILN_ERR_ARG; }
const char *kiln_graph_errmsg(const kiln_graph *g)
{
    if (!g)
        return "no graph (NULL)";
    return g->err.status == KILN_OK ? "ok" : g->err.msg;
}
void kiln_graph_clear_error(kiln_graph *g)
{
    if (g)
        kiln_err_clear(&g->err);
}

kiln_node kiln_graph_fail(kiln_graph *g, enum kiln_status s, const char *fmt, ...)
{
    if (g->err.status == KILN_OK) {
        va_list ap;
        va_start(ap, fmt);
        kiln_err_setv(&g->err, s, fmt, ap);
        va_end(ap);
    }
    return KILN_NODE_NONE;
}

bool kiln_graph_check(kiln_graph *g, kiln_node n, const char *what)
{
    if (n.id >= 0 && n.id < g->n_nodes && g->nodes[n.id].n_out == 0)
        return true;
    if (n.id >= 0 && n.id < g->n_nodes) /* a tuple has no value: read it through kiln_expr_output */
        kiln_graph_fail(g, KILN_ERR_ARG, "%s: node %d has %d results; take one with kiln_expr_output", what,
                        (int)n.id, g->nodes[n.id].n_out);
    else if (n.id != -1) /* -1 is a failed builder: its message is already there */
        kiln_graph_fail(g, KILN_ERR_ARG, "%s: node %d is not a node of this graph (it has %d)", what, (int)n.id,
                        (int)g->n_nodes);
    else
        kiln_graph_fail(g, KILN_ERR_ARG, "%s: input is KILN_NODE_NONE", what);
    return false;
}

/* ---- interned strings ----------------------------------------------------- */

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

const char *kiln_graph_intern(kiln_graph *g, const char *s)
{
    if (g->n_strs * 2 >= g->cap_strs) {
        int32_t cap = g->cap_strs ? g->cap_strs * 2 : 64;
        const char **t = calloc((size_t)cap, sizeof *t);
        if (!t) {
            kiln_graph_fail(g, KILN_ERR_NOMEM, "graph: no memory for names");
            return NULL;
        }
        for (int32_t i = 0; i < g->cap_strs; i++)
            if (g->strs[i]) {
                uint32_t k = (uint32_t)str_hash(g->strs[i]) & (uint32_t)(cap - 1);
                while (t[k])
                    k = (k + 1) & (uint32_t)(cap - 1);
                t[k] = g->strs[i];
            }
        free(g->strs);
        g->strs = t;
        g->cap_strs = cap;
    }
    uint32_t k = (uint32_t)str_hash(s) & (uint32_t)(g->cap_strs - 1);
    for (; g->strs[k]; k = (k + 1) & (uint32_t)(g->cap_strs - 1))
        if (strcmp(g->strs[k], s) == 0)
            return g->strs[k];
    char *copy = kiln_pool_strdup(g->pool, s);
    if (!copy) {
        kiln_graph_fail(g, KILN_ERR_NOMEM, "graph: no memory for names");
        return NULL;
    }
    g->strs[k] = copy;
    g->n_strs++;
    return copy;
}

/* ---- the node builder -------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static uint64_t shape_hash(uint64_t h, enum kiln_dtype t, const kiln_shape *s)
{
    h = mix(h, (uint64_t)t);
    h = mix(h, (uint64_t)s->rank);
    for (int i = 0; i < s->rank; i++)
        h = mix(h, (uint64_t)s->dims[i]);
    return h;
}

/* Structural hash over op, type, inputs and the whole attribute block. */
static uint64_t node_hash(const kiln_node_rec *r)
{
    uint64_t h = mix(0x1234, (uint64_t)r->op);
    h = shape_hash(h, r->dtype, &r->shape);
    h = mix(h, (uint64_t)r->n_in);
    for (int i = 0; i < r->n_in; i++)
        h = mix(h, (uint64_t)r->in[i]);
    const uint64_t *words = (const uint64_t *)(const void *)&r->attr;
    for (size_t i = 0; i < sizeof r->attr / sizeof *words; i++)
        h = mix(h, words[i]);
    h = mix(h, (uint64_t)r->n_out);
    for (int k = 0; k < r->n_out; k++)
        h = shape_hash(h, r->outs[k].dtype, &r->outs[k].shape);
    return h | 1;
}

static bool node_same(const kiln_node_rec *a, const kiln_node_rec *b)
{
    if (a->op != b->op || a->dtype != b->dtype || !kiln_shape_equal(&a->shape, &b->shape) ||
        a->n_in != b->n_in || a->n_out != b->n_out || memcmp(&a->attr, &b->attr, sizeof a->attr) != 0)
        return false;
    for (int i = 0; i < a->n_in; i++)
        if (a->in[i] != b->in[i])
            return false;
    for (int k = 0; k < a->n_out; k++)
        if (a->outs[k].dtype != b->outs[k].dtype || !kiln_shape_equal(&a->outs[k].shape, &b->outs[k].shape))
            return false;
    return true;
}

static bool cse_eligible(const kiln_node_rec *r)
{
    return r->op != KILN_OP_INPUT && r->op != KILN_OP_PARAM && r->op != KILN_OP_STATE && r->op != KILN_OP_RANDOM;
}

static bool cse_grow(kiln_graph *g)
{
    int32_t cap = g->cap_cse ? g->cap_cse * 2 : 256;
    int32_t *t = malloc((size_t)cap * sizeof *t);
    if (!t)
        return false;
    for (int32_t i = 0; i < cap; i++)
        t[i] = -1;
    for (int32_t id = 0; id < g->n_nodes; id++) {
        if (!g->nodes[id].hash)
            continue;
        uint32_t k = (uint32_t)g->nodes[id].hash & (uint32_t)(cap - 1);
        while (t[k] >= 0)
            k = (k + 1) & (uint32_t)(cap - 1);
        t[k] = id;
    }
    free(g->cse);
    g->cse = t;
    g->cap_cse = cap;
    return true;
}

/* Every value's element count is a monomial whose constant is at most 2^53
** (shape.c): the builders check it with messages naming their operands;
** this is the backstop for every other maker of nodes (autodiff, rewrites,
** a front end), so that no later size product can overflow (#9). */
static bool node_sizes_ok(kiln_graph *g, const kiln_node_rec *rec)
{
    kiln_mono m;
    const kiln_shape *bad = rec->n_out ? NULL : &rec->shape;
    if (bad && kiln_shape_size(g, bad, &m))
        bad = NULL;
    for (int k = 0; k < rec->n_out && !bad; k++)
        if (!kiln_shape_size(g, &rec->outs[k].shape, &m))
            bad = &rec->outs[k].shape;
    if (!bad)
        return true;
    char s[KILN_SHAPE_STR_MAX];
    kiln_graph_fail(g, KILN_ERR_SHAPE, "%s node%s%s: shape %s has more than 2^53 elements or a bad dim",
                    kiln_op_info_of(rec->op)->name, rec->name ? " " : "", rec->name ? rec->name : "",
                    kiln_shape_str(g, bad, s, sizeof s));
    return false;
}

int32_t kiln_graph_add_raw(kiln_graph *g, const kiln_node_rec *rec)
{
    if (g->n_nodes >= INT32_MAX / 2) {
        kiln_graph_fail(g, KILN_ERR_NOMEM, "graph has too many nodes");
        return -1;
    }
    if (!node_sizes_ok(g, rec))
        return -1;
    for (int k = 0; k < rec->n_in; k++)
        if (rec->in[k] < 0 || rec->in[k] >= g->n_nodes) { /* an internal bug, never user input */
            kiln_graph_fail(g, KILN_ERR_ARG, "%s: input %d is node %d, not a node of the graph",
                            kiln_op_info_of(rec->op)->name, k, (int)rec->in[k]);
            return -1;
        }
    if (g->n_nodes == g->cap_nodes) {
        int32_t cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        kiln_node_rec *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            kiln_graph_fail(g, KILN_ERR_NOMEM, "graph: no memory for %d nodes", (int)cap);
            return -1;
        }
        g->nodes = nodes;
        g->cap_nodes = cap;
    }
    kiln_node_rec n = *rec;
    n.hash = 0;
    n.in = kiln_pool_alloc(g->pool, (size_t)rec->n_in * sizeof *n.in);
    n.outs = rec->n_out ? kiln_pool_alloc(g->pool, (size_t)rec->n_out * sizeof *n.outs) : NULL;
    n.name = rec->name && *rec->name ? kiln_graph_intern(g, rec->name) : NULL;
    n.owner = rec->owner && *rec->owner ? kiln_graph_intern(g, rec->owner) : NULL;
    if (!n.in || (rec->n_out && !n.outs) || (rec->name && *rec->name && !n.name) ||
        (rec->owner && *rec->owner && !n.owner)) {
        kiln_graph_fail(g, KILN_ERR_NOMEM, "graph: no memory for a node");
        return -1;
    }
    if (rec->n_in)
        memcpy(n.in, rec->in, (size_t)rec->n_in * sizeof *n.in);
    if (rec->n_out)
        memcpy(n.outs, rec->outs, (size_t)rec->n_out * sizeof *n.outs);
    int32_t id = g->n_nodes++;
    g->nodes[id] = n;
    kiln_store_retain(n.param); /* released in kiln_graph_destroy */
    kiln_node_rec *np = &g->nodes[id];
    if (g->cse_enabled && cse_eligible(np)) {
        np->hash = node_hash(np);
        if ((g->n_nodes * 2 > g->cap_cse) && !cse_grow(g)) {
            np->hash = 0; /* works without CSE, just less well */
        } else {
            uint32_t k = (uint32_t)np->hash & (uint32_t)(g->cap_cse - 1);
            while (g->cse[k] >= 0)
                k = (k + 1) & (uint32_t)(g->cap_cse - 1);
            g->cse[k] = id;
        }
    }
    return id;
}

int32_t kiln_graph_add(kiln_graph *g, const kiln_node_rec *rec)
{
    if (g->rewrite_enabled) {
        int32_t r = kiln_rewrite_node(g, rec);
        if (r != KILN_REWRITE_NONE)
            return r;
    }
    if (g->cse_enabled && cse_eligible(rec) && g->cap_cse) {
        uint64_t h = node_hash(rec);
        uint32_t k = (uint32_t)h & (uint32_t)(g->cap_cse - 1);
        for (; g->cse[k] >= 0; k = (k + 1) & (uint32_t)(g->cap_cse - 1)) {
            kiln_node_rec *o = &g->nodes[g->cse[k]];
            if (o->hash == h && node_same(o, rec)) {
                int32_t id = g->cse[k];
                o->roles |= rec->roles;
                if (!o->name && rec->name && *rec->name)
                    kiln_graph_set_name_raw(g, id, rec->name);
                if (!g->nodes[id].owner && rec->owner && *rec->owner)
                    kiln_graph_set_owner(g, id, rec->owner);
                return id;
            }
        }
    }
    return kiln_graph_add_raw(g, rec);
}

/* ---- names, owners, roles, facts ----------------------------------------- */

enum kiln_status kiln_graph_set_name_raw(kiln_graph *g, int32_t id, const char *name)
{
    if (!name || !*name) {
        g->nodes[id].name = NULL;
        return KILN_OK;
    }
    if (strlen(name) > KILN_MAX_NAME)
        return kiln_err_set(&g->err, KILN_ERR_ARG, "name '%.40s...' is longer than %d characters", name,
                            KILN_MAX_NAME);
    const char *s = kiln_graph_intern(g, name);
    if (!s)
        return g->err.status;
    g->nodes[id].name = s;
    return KILN_OK;
}

enum kiln_status kiln_graph_set_owner(kiln_graph *g, int32_t id, const char *owner)
{
    if (!owner || !*owner) {
        g->nodes[id].owner = NULL;
        return KILN_OK;
    }
    const char *s = kiln_graph_intern(g, owner);
    if (!s)
        return g->err.status;
    g->nodes[id].owner = s;
    return KILN_OK;
}

enum kiln_status kiln_graph_set_name(kiln_graph *g, kiln_node n, const char *name)
{
    if (!g)
        return KILN_ERR_ARG;
    if (!kiln_graph_check(g, n, "kiln_graph_set_name"))
        return g->err.status;
    return kiln_graph_set_name_raw(g, n.id, name);
}

int kiln_graph_node_count(const kiln_graph *g) { return g ? (int)g->n_nodes : 0; }

static const kiln_node_rec *cnode(const kiln_graph *g, kiln_node n)
{
    if (!g || n.id < 0 || n.id >= g->n_nodes)
        return NULL;
    return &g->nodes[n.id];
}

int kiln_graph_node_rank(const kiln_graph *g, kiln_node n)
{
    const kiln_node_rec *r = cnode(g, n);
    return r ? r->shape.rank : -1;
}

int64_t kiln_graph_node_dim(const kiln_graph *g, kiln_node n, int axis)
{
    const kiln_node_rec *r = cnode(g, n);
    if (!r || axis < 0 || axis >= r->shape.rank)
        return 0;
    return r->shape.dims[axis];
}

enum kiln_dtype kiln_graph_node_dtype(const kiln_graph *g, kiln_node n)
{
    const kiln_node_rec *r = cnode(g, n);
    return r ? r->dtype : KILN_DTYPE_F32;
}

const char *kiln_graph_node_name(const kiln_graph *g, kiln_node n)
{
    const kiln_node_rec *r = cnode(g, n);
    return r && r->name ? r->name : "";
}

const char *kiln_graph_node_owner(const kiln_graph *g, kiln_node n)
{
    const kiln_node_rec *r = cnode(g, n);
    return r && r->owner ? r->owner : "";
}

const char *kiln_graph_node_brick_path(const kiln_graph *g, kiln_node n) { return kiln_graph_node_owner(g, n); }

const char *kiln_graph_node_op(const kiln_graph *g, kiln_node n)
{
    const kiln_node_rec *r = cnode(g, n);
    return r ? kiln_op_info_of(r->op)->name : "";
}

kiln_param *kiln_graph_node_param(const kiln_graph *g, kiln_node n)
{
    const kiln_node_rec *r = cnode(g, n);
    return r && (r->op == KILN_OP_PARAM || r->op == KILN_OP_STATE) ? r->param : NULL;
}

kiln_node kiln_graph_node_replacement_of(const kiln_graph *g, kiln_node n)
{
    const kiln_node_rec *r = cnode(g, n);
    return r && r->replaces >= 0 ? (kiln_node){r->replaces} : KILN_NODE_NONE;
}

kiln_node kiln_graph_param_node(const kiln_graph *g, const kiln_param *p)
{
    if (!g)
        return KILN_NODE_NONE;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if ((g->nodes[i].op == KILN_OP_PARAM || g->nodes[i].op == KILN_OP_STATE) && g->nodes[i].param == p)
            return (kiln_node){i};
    return KILN_NODE_NONE;
}

kiln_node kiln_graph_store_leaf(kiln_graph *g, kiln_param *p)
{
    kiln_node n = kiln_graph_param_node(g, p);
    if (kiln_node_ok(n))
        return n;
    bool state = kiln_param_kind(p) == KILN_STORE_STATE;
    enum kiln_dtype t = kiln_param_dtype(p) == KILN_DTYPE_I32 ? KILN_DTYPE_I32 : g->floatx;
    kiln_node_rec rec = kiln_rec(state ? KILN_OP_STATE : KILN_OP_PARAM, t, 0, NULL);
    rec.param = p;
    rec.shape = *kiln_param_shape(p);
    rec.roles = kiln_param_roles(p);
    rec.owner = kiln_param_owner(p);
    rec.name = kiln_param_name(p);
    return (kiln_node){kiln_graph_add_raw(g, &rec)};
}

kiln_node kiln_graph_param(kiln_graph *g, kiln_param *p)
{
    if (!g)
        return KILN_NODE_NONE;
    if (!p)
        return kiln_graph_fail(g, KILN_ERR_ARG, "kiln_graph_param: parameter is NULL");
    if (!kiln_param_data(p))
        return kiln_graph_fail(g, KILN_ERR_STATE, "parameter %s is not allocated", kiln_param_name(p));
    return kiln_graph_store_leaf(g, p);
}

kiln_node kiln_graph_input(kiln_graph *g, const char *name, enum kiln_dtype dtype, int rank,
                           const int64_t *dims)
{
    if (!g)
        return KILN_NODE_NONE;
    if (!name || !*name)
        return kiln_graph_fail(g, KILN_ERR_ARG, "kiln_graph_input: an input needs a name (name is %s)",
                               name ? "\"\"" : "NULL");
    if (strlen(name) > KILN_MAX_NAME)
        return kiln_graph_fail(g, KILN_ERR_ARG, "input name '%.40s...' is longer than %d characters",
                               name, KILN_MAX_NAME);
    if (kiln_node_ok(kiln_graph_input_by_name(g, name)))
        return kiln_graph_fail(g, KILN_ERR_ARG, "input '%s': the graph already has an input of that name",
                               name);
    if (dtype != KILN_DTYPE_I32 && dtype != g->floatx)
        return kiln_graph_fail(g, KILN_ERR_ARG, "input '%s': dtype %s, but this graph's floats are %s",
                               name, kiln_dtype_name(dtype), kiln_dtype_name(g->floatx));
    if (rank < 0 || rank > KILN_MAX_RANK)
        return kiln_graph_fail(g, KILN_ERR_ARG, "input '%s': rank %d outside [0, %d]", name, rank,
                               KILN_MAX_RANK);
    if (rank > 0 && !dims)
        return kiln_graph_fail(g, KILN_ERR_ARG, "input '%s': rank %d but dims is NULL", name, rank);
    kiln_node_rec rec = kiln_rec(KILN_OP_INPUT, dtype, 0, NULL);
    rec.roles = KILN_ROLE_INPUT;
    rec.shape.rank = rank;
    for (int i = 0; i < rank; i++) {
        kiln_mono m;
        if (dims[i] < 0 && dims[i] != KILN_INFER && kiln_dim_symbol(dims[i]) >= 0 &&
            !g->symbol_names[kiln_dim_symbol(dims[i])])
            return kiln_graph_fail(g, KILN_ERR_ARG, "input '%s': dim %d is symbol %lld, which this graph never made",
                                   name, i, (long long)dims[i]);
        if (dims[i] == 0 || dims[i] == KILN_INFER || !kiln_dim_mono(g, dims[i], &m))
            return kiln_graph_fail(g, KILN_ERR_ARG, "input '%s': dim %d is %lld, expected > 0 or a symbol", name,
                                   i, (long long)dims[i]);
        rec.shape.dims[i] = dims[i];
    }
    kiln_mono size;
    if (!kiln_shape_size(g, &rec.shape, &size)) {
        char s[KILN_SHAPE_STR_MAX];
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "input '%s': shape %s has more elements than kiln can address",
                               name, kiln_shape_str(g, &rec.shape, s, sizeof s));
    }
    rec.name = name;
    return (kiln_node){kiln_graph_add_raw(g, &rec)};
}

kiln_node kiln_graph_input_by_name(const kiln_graph *g, const char *name)
{
    if (!g || !name)
        return KILN_NODE_NONE;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == KILN_OP_INPUT && g->nodes[i].name && strcmp(g->nodes[i].name, name) == 0)
            return (kiln_node){i};
    return KILN_NODE_NONE;
}

/* Role hierarchy: WEIGHT and BIAS imply PARAMETER. */
unsigned kiln_role_closure(unsigned roles)
{
    if (roles & (KILN_ROLE_WEIGHT | KILN_ROLE_BIAS | KILN_ROLE_INITIAL_STATE))
        roles |= KILN_ROLE_PARAMETER;
    return roles;
}

enum kiln_status kiln_graph_add_role(kiln_graph *g, kiln_node n, enum kiln_role r)
{
    if (!g)
        return KILN_ERR_ARG;
    if (!kiln_graph_check(g, n, "kiln_graph_add_role"))
        return g->err.status;
    g->nodes[n.id].roles |= (unsigned)r;
    return KILN_OK;
}

bool kiln_graph_has_role(const kiln_graph *g, kiln_node n, enum kiln_role r)
{
    const kiln_node_rec *rec = cnode(g, n);
    return rec && (kiln_role_closure(rec->roles) & (unsigned)r) == (unsigned)r;
}

/* ---- updates ----------------------------------------------------------------- */

int32_t kiln_graph_update_of(const kiln_graph *g, int32_t target)
{
    for (int32_t i = 0; i < g->n_updates; i++)
        if (g->updates[i].target == target)
            return g->updates[i].value;
    return -1;
}

enum kiln_status kiln_graph_add_update(kiln_graph *g, int32_t target, int32_t value, bool on_read)
{
    const kiln_node_rec *t = &g->nodes[target], *v = &g->nodes[value];
    char a[KILN_SHAPE_STR_MAX], b[KILN_SHAPE_STR_MAX];
    if (t->op != KILN_OP_PARAM && t->op != KILN_OP_STATE)
        return kiln_err_set(&g->err, KILN_ERR_ARG, "update: the target (node %d, %s) is not a parameter or state",
                            (int)target, kiln_op_info_of(t->op)->name);
    if (t->dtype != v->dtype || !kiln_shape_equal(&t->shape, &v->shape))
        return kiln_err_set(&g->err, KILN_ERR_SHAPE, "update of '%s': the new value is %s %s, the target %s %s",
                            t->name ? t->name : "?", kiln_dtype_name(v->dtype), kiln_shape_str(g, &v->shape, b, sizeof b),
                            kiln_dtype_name(t->dtype), kiln_shape_str(g, &t->shape, a, sizeof a));
    if (kiln_graph_update_of(g, target) >= 0)
        return kiln_err_set(&g->err, KILN_ERR_ARG, "update of '%s': it already has one", t->name ? t->name : "?");
    if (g->n_updates == g->cap_updates) {
        int32_t cap = g->cap_updates ? g->cap_updates * 2 : 8;
        kiln_update *u = realloc(g->updates, (size_t)cap * sizeof *u);
        if (!u)
            return kiln_err_set(&g->err, KILN_ERR_NOMEM, "graph: no memory for an update");
        g->updates = u;
        g->cap_updates = cap;
    }
    g->updates[g->n_updates++] = (kiln_update){target, value, on_read};
    return KILN_OK;
}

enum kiln_status kiln_graph_update(kiln_graph *g, kiln_node target, kiln_node value)
{
    if (!g)
        return KILN_ERR_ARG;
    if (!kiln_graph_check(g, target, "kiln_graph_update") || !kiln_graph_check(g, value, "kiln_graph_update"))
        return g->err.status;
    if (g->err.status)
        return g->err.status;
    return kiln_graph_add_update(g, target.id, value.id, false);
}

/* ---- random states ------------------------------------------------------- */

/* A random state holds four int32 words: the key (the seed's two halves)
** and a 64-bit step counter, low word first (codegen's philox reads them). */
kiln_node kiln_graph_random_state(kiln_graph *g, uint64_t seed)
{
    if (!g)
        return KILN_NODE_NONE;
    kiln_err cfg;
    if (kiln_config_resolve_seed(seed, &seed, &cfg) != KILN_OK) /* KILN_SEED_DEFAULT (#11) */
        return kiln_graph_fail(g, cfg.status, "random state: %s", cfg.msg);
    double key[2] = {(double)(int32_t)(uint32_t)seed, (double)(int32_t)(uint32_t)(seed >> 32)};
    for (int32_t id = 0; id < g->n_nodes; id++) {
        const kiln_node_rec *r = &g->nodes[id];
        if (r->op == KILN_OP_STATE && (r->roles & KILN_ROLE_RANDOM_STATE)) {
            const double *v = kiln_param_data(r->param);
            if (v && v[0] == key[0] && v[1] == key[1])
                return (kiln_node){id};
        }
    }
    if (g->n_owned == g->cap_owned) {
        int32_t cap = g->cap_owned ? g->cap_owned * 2 : 4;
        kiln_param **o = realloc(g->owned, (size_t)cap * sizeof *o);
        if (!o)
            return kiln_graph_fail(g, KILN_ERR_NOMEM, "random state: no memory");
        g->owned = o;
        g->cap_owned = cap;
    }
    kiln_param *p = kiln_store_new(KILN_STORE_STATE, "random_state", KILN_DTYPE_I32, 1, (int64_t[]){4}, 0);
    if (!p)
        return kiln_graph_fail(g, KILN_ERR_NOMEM, "random state: no memory");
    kiln_store_hold(p);
    kiln_store_set_roles(p, KILN_ROLE_RANDOM_STATE);
    g->owned[g->n_owned++] = p;
    double *v = kiln_param_data(p);
    v[0] = key[0];
    v[1] = key[1];
    return kiln_graph_random_leaf(g, p);
}

kiln_node kiln_graph_random_leaf(kiln_graph *g, kiln_param *p)
{
    kiln_node s = kiln_graph_store_leaf(g, p);
    if (!kiln_node_ok(s))
        return s;
    for (int32_t u = 0; u < g->n_updates; u++)
        if (g->updates[u].target == s.id)
            return s;
    kiln_node next = kiln_expr_rng_next(g, s);
    if (!kiln_node_ok(next) || kiln_graph_add_update(g, s.id, next.id, true) != KILN_OK)
        return KILN_NODE_NONE;
    return s;
}
