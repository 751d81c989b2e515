/* graph.c: nodes, shapes, names, roles and filters of kiln_graph.
**
** Nodes live in one growable array, in topological order (inputs have smaller
** ids). kiln_graph_add() is the single way nodes are made: user graphs take
** every node as given, while program graphs (the ones kiln_compile builds)
** fold constants, apply rewrites (passes.c) and hash-cons identical nodes, so
** CSE costs nothing extra and is never forgotten by a pass. */
#include "compiler/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/passes.h"

const kiln_op_info kiln_op_info_table[KILN_OP_COUNT_] = {
    [KILN_OP_INPUT] = {"input", KILN_CLASS_LEAF, 0},
    [KILN_OP_PARAM] = {"param", KILN_CLASS_LEAF, 0},
    [KILN_OP_CONST] = {"const", KILN_CLASS_LEAF, 0},
    [KILN_OP_BATCH] = {"batch_size", KILN_CLASS_LEAF, 0},
    [KILN_OP_HYPER] = {"hyperparameter", KILN_CLASS_LEAF, 0},
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
    [KILN_OP_BROADCAST] = {"broadcast", KILN_CLASS_UNARY, 1},
    [KILN_OP_ONEHOT] = {"onehot", KILN_CLASS_UNARY, 1},
    [KILN_OP_ADD] = {"add", KILN_CLASS_BINARY, 2},
    [KILN_OP_SUB] = {"sub", KILN_CLASS_BINARY, 2},
    [KILN_OP_MUL] = {"mul", KILN_CLASS_BINARY, 2},
    [KILN_OP_DIV] = {"div", KILN_CLASS_BINARY, 2},
    [KILN_OP_POW] = {"pow", KILN_CLASS_BINARY, 2},
    [KILN_OP_MAXIMUM] = {"maximum", KILN_CLASS_BINARY, 2},
    [KILN_OP_GE] = {"greater_equal", KILN_CLASS_BINARY, 2},
    [KILN_OP_EQ] = {"equal", KILN_CLASS_BINARY, 2},
    [KILN_OP_NE] = {"not_equal", KILN_CLASS_BINARY, 2},
    [KILN_OP_SUM] = {"sum", KILN_CLASS_REDUCE, 1},
    [KILN_OP_MAX] = {"max", KILN_CLASS_REDUCE, 1},
    [KILN_OP_MATMUL] = {"matmul", KILN_CLASS_OTHER, 2},
    [KILN_OP_TRANSPOSE] = {"transpose", KILN_CLASS_OTHER, 1},
    [KILN_OP_RESHAPE] = {"reshape", KILN_CLASS_OTHER, 1},
    [KILN_OP_SOFTMAX] = {"softmax", KILN_CLASS_OTHER, 1},
    [KILN_OP_LOGSOFTMAX] = {"log_softmax", KILN_CLASS_OTHER, 1},
    [KILN_OP_PICK] = {"pick", KILN_CLASS_OTHER, 2},
    [KILN_OP_ARGMAX] = {"argmax", KILN_CLASS_OTHER, 1},
    [KILN_OP_SOFTMAX_XENT] = {"softmax_cross_entropy", KILN_CLASS_OTHER, 2},
};

/* ---- shapes ---------------------------------------------------------- */

int64_t kiln_shape_const_size(const kiln_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        if (s->dims[i] != KILN_BATCH)
            n *= s->dims[i];
    return n;
}

bool kiln_shape_has_batch(const kiln_shape *s)
{
    for (int i = 0; i < s->rank; i++)
        if (s->dims[i] == KILN_BATCH)
            return true;
    return false;
}

bool kiln_shape_equal(const kiln_shape *a, const kiln_shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

const char *kiln_shape_str(const kiln_shape *s, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    n += (size_t)snprintf(buf + n, cap - n, "(");
    for (int i = 0; i < s->rank && n < cap; i++) {
        if (s->dims[i] == KILN_BATCH)
            n += (size_t)snprintf(buf + n, cap - n, "%sB", i ? ", " : "");
        else
            n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)s->dims[i]);
    }
    if (n < cap)
        snprintf(buf + n, cap - n, s->rank == 1 ? ",)" : ")");
    return buf;
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
    return g;
}

kiln_graph *kiln_graph_create(enum kiln_dtype floatx) { return graph_new(floatx, false); }
kiln_graph *kiln_graph_create_program(enum kiln_dtype floatx) { return graph_new(floatx, true); }

void kiln_graph_destroy(kiln_graph *g)
{
    if (!g)
        return;
    for (int32_t i = 0; i < g->n_nodes; i++)
        free(g->nodes[i].name);
    free(g->nodes);
    free(g->cse);
    free(g);
}

enum kiln_dtype kiln_graph_floatx(const kiln_graph *g) { return g->floatx; }
enum kiln_status kiln_graph_status(const kiln_graph *g) { return g ? g->err.status : KILN_ERR_ARG; }
const char *kiln_graph_errmsg(const kiln_graph *g)
{
    if (!g)
        return "no graph (NULL)";
    return g->err.status == KILN_OK ? "ok" : g->err.msg;
}
void kiln_graph_clear_error(kiln_graph *g) { kiln_err_clear(&g->err); }

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
    if (n.id >= 0 && n.id < g->n_nodes)
        return true;
    if (n.id != -1) /* -1 is a failed builder: its message is already there */
        kiln_graph_fail(g, KILN_ERR_ARG, "%s: node %d is not a node of this graph (it has %d)",
                        what, (int)n.id, (int)g->n_nodes);
    else
        kiln_graph_fail(g, KILN_ERR_ARG, "%s: input is KILN_NODE_NONE", what);
    return false;
}

/* ---- the node builder -------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

/* Structural hash; leaves other than CONST and BATCH are unique by identity
** and never shared through CSE. */
static uint64_t node_hash(const kiln_node_rec *r)
{
    uint64_t h = mix(0x1234, (uint64_t)r->op);
    h = mix(h, (uint64_t)r->dtype);
    h = mix(h, (uint64_t)r->shape.rank);
    for (int i = 0; i < r->shape.rank; i++)
        h = mix(h, (uint64_t)r->shape.dims[i]);
    for (int i = 0; i < r->n_in; i++)
        h = mix(h, (uint64_t)r->in[i]);
    uint64_t bits;
    memcpy(&bits, &r->value, sizeof bits);
    h = mix(h, bits);
    h = mix(h, (uint64_t)(int64_t)r->axis);
    h = mix(h, (uint64_t)r->iattr);
    h = mix(h, (uint64_t)(r->trans_a | (r->trans_b << 1)));
    return h | 1;
}

static bool node_same(const kiln_node_rec *a, const kiln_node_rec *b)
{
    if (a->op != b->op || a->dtype != b->dtype || !kiln_shape_equal(&a->shape, &b->shape) ||
        a->n_in != b->n_in || a->axis != b->axis || a->iattr != b->iattr ||
        a->trans_a != b->trans_a || a->trans_b != b->trans_b)
        return false;
    if (memcmp(&a->value, &b->value, sizeof a->value) != 0)
        return false;
    for (int i = 0; i < a->n_in; i++)
        if (a->in[i] != b->in[i])
            return false;
    return true;
}

static bool cse_eligible(const kiln_node_rec *r)
{
    return r->op != KILN_OP_INPUT && r->op != KILN_OP_PARAM && r->op != KILN_OP_HYPER;
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

int32_t kiln_graph_add_raw(kiln_graph *g, const kiln_node_rec *rec)
{
    if (g->n_nodes == INT32_MAX - 1) {
        kiln_graph_fail(g, KILN_ERR_NOMEM, "graph has too many nodes");
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
    int32_t id = g->n_nodes;
    kiln_node_rec *n = &g->nodes[id];
    *n = *rec;
    n->name = NULL;
    n->hash = 0;
    if (rec->name && !(n->name = kiln_strdup(rec->name))) {
        kiln_graph_fail(g, KILN_ERR_NOMEM, "graph: no memory for a name");
        return -1;
    }
    g->n_nodes++;
    if (g->cse_enabled && cse_eligible(n)) {
        n->hash = node_hash(n);
        if ((g->n_nodes * 2 > g->cap_cse) && !cse_grow(g)) {
            n->hash = 0; /* works without CSE, just less well */
        } else {
            uint32_t k = (uint32_t)n->hash & (uint32_t)(g->cap_cse - 1);
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
                o->roles |= rec->roles;
                if (!o->name && rec->name)
                    kiln_graph_set_name_raw(g, g->cse[k], rec->name);
                return g->cse[k];
            }
        }
    }
    return kiln_graph_add_raw(g, rec);
}

/* ---- names, roles, facts -------------------------------------------------- */

enum kiln_status kiln_graph_set_name_raw(kiln_graph *g, int32_t id, const char *name)
{
    if (!name)
        name = "";
    if (strlen(name) > KILN_MAX_NAME)
        return kiln_err_set(&g->err, KILN_ERR_ARG, "name '%.40s...' is longer than %d characters",
                            name, KILN_MAX_NAME);
    char *copy = kiln_strdup(name);
    if (!copy)
        return kiln_err_set(&g->err, KILN_ERR_NOMEM, "graph: no memory for a name");
    free(g->nodes[id].name);
    g->nodes[id].name = copy;
    return KILN_OK;
}

enum kiln_status kiln_graph_set_name(kiln_graph *g, kiln_node n, const char *name)
{
    if (!kiln_graph_check(g, n, "kiln_graph_set_name"))
        return g->err.status;
    return kiln_graph_set_name_raw(g, n.id, name);
}

int kiln_graph_node_count(const kiln_graph *g) { return (int)g->n_nodes; }

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

const char *kiln_graph_node_brick_path(const kiln_graph *g, kiln_node n)
{
    const kiln_node_rec *r = cnode(g, n);
    return r && r->brick ? kiln_brick_path(r->brick) : "";
}

kiln_param *kiln_graph_node_param(const kiln_graph *g, kiln_node n)
{
    const kiln_node_rec *r = cnode(g, n);
    return r && r->op == KILN_OP_PARAM ? r->param : NULL;
}

kiln_node kiln_graph_param_node(const kiln_graph *g, const kiln_param *p)
{
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == KILN_OP_PARAM && g->nodes[i].param == p)
            return (kiln_node){i};
    return KILN_NODE_NONE;
}

kiln_node kiln_graph_param_leaf(kiln_graph *g, kiln_param *p)
{
    kiln_node n = kiln_graph_param_node(g, p);
    if (kiln_node_ok(n))
        return n;
    kiln_node_rec rec = {.op = KILN_OP_PARAM, .dtype = g->floatx, .param = p};
    rec.shape = *kiln_param_shape(p);
    rec.roles = kiln_param_roles(p);
    rec.brick = kiln_param_brick(p);
    rec.name = (char *)kiln_param_name(p);
    int32_t id = kiln_graph_add_raw(g, &rec);
    return (kiln_node){id};
}

kiln_node kiln_graph_param(kiln_graph *g, kiln_param *p)
{
    if (!p)
        return kiln_graph_fail(g, KILN_ERR_ARG, "kiln_graph_param: parameter is NULL");
    if (!kiln_param_data(p))
        return kiln_graph_fail(g, KILN_ERR_STATE, "parameter %s is not allocated", kiln_param_name(p));
    return kiln_graph_param_leaf(g, p);
}

kiln_node kiln_graph_input(kiln_graph *g, const char *name, enum kiln_dtype dtype, int rank,
                           const int64_t *dims)
{
    if (!name || !*name)
        return kiln_graph_fail(g, KILN_ERR_ARG, "kiln_graph_input: an input needs a name");
    if (strlen(name) > KILN_MAX_NAME)
        return kiln_graph_fail(g, KILN_ERR_ARG, "input name '%.40s...' is longer than %d characters",
                               name, KILN_MAX_NAME);
    if (kiln_node_ok(kiln_graph_input_by_name(g, name)))
        return kiln_graph_fail(g, KILN_ERR_ARG, "input '%s': the graph already has an input of that name",
                               name);
    if (dtype != KILN_DTYPE_I32 && dtype != g->floatx)
        return kiln_graph_fail(g, KILN_ERR_ARG, "input '%s': dtype %s, but this graph's floats are %s",
                               name, kiln_dtype_name(dtype), kiln_dtype_name(g->floatx));
    if (rank < 0 || rank > KILN_MAX_RANK || (rank > 0 && !dims))
        return kiln_graph_fail(g, KILN_ERR_ARG, "input '%s': rank %d outside [0, %d]", name, rank,
                               KILN_MAX_RANK);
    kiln_node_rec rec = {.op = KILN_OP_INPUT, .dtype = dtype, .roles = KILN_ROLE_INPUT};
    rec.shape.rank = rank;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == KILN_BATCH && i != 0)
            return kiln_graph_fail(g, KILN_ERR_ARG, "input '%s': only dim 0 may be the batch dim", name);
        if (dims[i] <= 0 && dims[i] != KILN_BATCH)
            return kiln_graph_fail(g, KILN_ERR_ARG, "input '%s': dim %d is %lld, expected > 0", name, i,
                                   (long long)dims[i]);
        rec.shape.dims[i] = dims[i];
    }
    rec.name = (char *)name;
    return (kiln_node){kiln_graph_add_raw(g, &rec)};
}

kiln_node kiln_graph_input_by_name(const kiln_graph *g, const char *name)
{
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == KILN_OP_INPUT && g->nodes[i].name && strcmp(g->nodes[i].name, name) == 0)
            return (kiln_node){i};
    return KILN_NODE_NONE;
}

/* Role hierarchy: WEIGHT and BIAS imply PARAMETER. */
static unsigned role_closure(unsigned roles)
{
    if (roles & (KILN_ROLE_WEIGHT | KILN_ROLE_BIAS))
        roles |= KILN_ROLE_PARAMETER;
    return roles;
}

enum kiln_status kiln_graph_add_role(kiln_graph *g, kiln_node n, enum kiln_role r)
{
    if (!kiln_graph_check(g, n, "kiln_graph_add_role"))
        return g->err.status;
    g->nodes[n.id].roles |= (unsigned)r;
    return KILN_OK;
}

bool kiln_graph_has_role(const kiln_graph *g, kiln_node n, enum kiln_role r)
{
    const kiln_node_rec *rec = cnode(g, n);
    return rec && (role_closure(rec->roles) & (unsigned)r) == (unsigned)r;
}

enum kiln_status kiln_graph_add_auxiliary(kiln_graph *g, kiln_node n, const char *name, kiln_brick *b)
{
    if (!kiln_graph_check(g, n, "kiln_graph_add_auxiliary"))
        return g->err.status;
    if (name) {
        enum kiln_status s = kiln_graph_set_name_raw(g, n.id, name);
        if (s)
            return s;
    }
    g->nodes[n.id].roles |= KILN_ROLE_AUXILIARY;
    if (b)
        g->nodes[n.id].brick = b;
    return KILN_OK;
}

static bool filter_match(const kiln_graph *g, int32_t id, const kiln_filter *f)
{
    const kiln_node_rec *r = &g->nodes[id];
    if (f->roles && (role_closure(r->roles) & f->roles) != f->roles)
        return false;
    if (f->brick && (!r->brick || !kiln_brick_is_within(r->brick, f->brick)))
        return false;
    if (f->name && (!r->name || strcmp(r->name, f->name) != 0))
        return false;
    return true;
}

int kiln_graph_filter(kiln_graph *g, const kiln_node *outputs, int n_outputs, const kiln_filter *f,
                      kiln_node *out, int cap)
{
    static const kiln_filter all = {0};
    if (!f)
        f = &all;
    if (n_outputs < 0 || (n_outputs > 0 && !outputs)) {
        kiln_graph_fail(g, KILN_ERR_ARG, "kiln_graph_filter: %d outputs", n_outputs);
        return -1;
    }
    /* Plan: mark ancestors of outputs (all nodes when none), then add the
    ** auxiliary variables of every brick that made a marked node. */
    unsigned char *in = calloc((size_t)g->n_nodes + 1, 1);
    if (!in) {
        kiln_graph_fail(g, KILN_ERR_NOMEM, "kiln_graph_filter: no memory");
        return -1;
    }
    if (n_outputs == 0) {
        memset(in, 1, (size_t)g->n_nodes);
    } else {
        for (int i = 0; i < n_outputs; i++) {
            if (!kiln_graph_check(g, outputs[i], "kiln_graph_filter")) {
                free(in);
                return -1;
            }
            in[outputs[i].id] = 1;
        }
        for (int32_t id = g->n_nodes - 1; id >= 0; id--)
            if (in[id])
                for (int k = 0; k < g->nodes[id].n_in; k++)
                    in[g->nodes[id].in[k]] = 1;
        for (int32_t id = 0; id < g->n_nodes; id++) {
            const kiln_node_rec *r = &g->nodes[id];
            if (in[id] || !(r->roles & KILN_ROLE_AUXILIARY) || !r->brick)
                continue;
            for (int32_t j = 0; j < g->n_nodes; j++)
                if (in[j] && g->nodes[j].brick == r->brick && !(g->nodes[j].roles & KILN_ROLE_AUXILIARY)) {
                    in[id] = 1;
                    break;
                }
        }
    }
    int count = 0;
    for (int32_t id = 0; id < g->n_nodes; id++) {
        if (!in[id] || !filter_match(g, id, f))
            continue;
        if (count < cap && out)
            out[count] = (kiln_node){id};
        count++;
    }
    free(in);
    return count;
}
