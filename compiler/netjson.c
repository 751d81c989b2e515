/* netjson.c: a graph as the JSON description of a network file, and a
** graph rebuilt from one (docs/network-files.md has the format).
**
** The description is the IR written out: a node per object in id order
** (op by name, dtype, shape, inputs by id, the attributes its op reads by
** name, name, owner, roles, replaces), dims as a constant, a symbol's name
** or a product (an array of factors: [ "T", "B" ], [ 20, "B" ]), tuples
** with their result types, scans with their bodies (graphs of the same
** form, nested), random nodes with their distribution and stream, the
** graph's updates, the store entries the leaves read (their values are in
** the file around the description) and the named roots. Writing needs
** nothing but the graph; kiln_network_save hands it a pruned copy.
**
** Reading trusts nothing. Each node is made by the expression builder of
** its op from the inputs already made and the attributes in the file, so
** the builder's checks (dtypes, broadcasting, axes, products, sizes) are
** the file's: a file cannot make a node the builders would refuse. Then
** the builder's node is compared with the file's record: it must be one
** new node (no builder short cut such as a slice of a whole axis, which
** gives back its operand), of the file's dtype, shape and attributes.
** Ops without a public builder (pad, scatter_add, rng_next, arg, the size
** leaf, a scan, a body's random node) are checked here against the rules
** graph.h states, then made by their internal builders. Ids must be
** earlier ids, so the graph stays topological. Every integer is range
** checked before a narrowing cast; every entry's size is checked (against
** the reader's budget, and by the reader's hook against the file) before
** anything is allocated. The first error ends the read, with a message
** naming the JSON path (/graph/nodes/12), the op and what is wrong.
** Names are data: they go into the graph as strings, never into code
** (codegen sanitises names and escapes comments).
** Rejected: making nodes from the file's records with kiln_graph_add_raw
** and a separate validator (a second statement of every op's rules,
** bound to drift from the builders'). */
#include "compiler/netjson.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/store.h"
#include "kiln/network.h"
#include "kiln_config.h"

#define MAX_BODY_DEPTH 8     /* scans nested in scans' bodies */
#define MAX_NODE_INPUTS 256  /* a scan's arguments (scan.c's MAX_SCAN_ARGS) */
#define MAX_SCAN_RESULTS 256
#define MAX_SCAN_SAVED 32    /* scan.c's MAX_SAVED */
#define MAX_STREAMS 65536    /* expr.c's random_node */
#define MAX_FACTORS 64       /* factors of one product dim */
#define MAX_ROOTS 4096

static const char *const ROLE_NAMES[] = {"input", "output", "cost", "auxiliary", "parameter", "weight",
                                         "bias", "dropout", "algorithm_state", "random_state", "initial_state"};
static const char *const DIST_NAMES[] = {"uniform", "normal", "bernoulli"};

/* ---- attributes by name -------------------------------------------------------
** The attributes an op reads (graph.h's op enum), each a key of the node's
** "attr" object: its kind and its slot of the attribute block (an int's
** index in i[], a real's in f[]). A perm fills i[0..rank). */
enum akind { A_INT, A_BOOL, A_REAL, A_AXES, A_PERM, A_SYMBOL, A_DIST, A_SUMS };
typedef struct aspec {
    const char *key;
    enum akind kind;
    int slot;
} aspec;

#define END {NULL, A_INT, 0}
static const aspec AT_NONE[] = {END};
static const aspec AT_CONST[] = {{"value", A_REAL, 0}, END};
static const aspec AT_SYMBOL[] = {{"symbol", A_SYMBOL, 0}, END};
static const aspec AT_CLIP[] = {{"lo", A_REAL, 0}, {"hi", A_REAL, 1}, END};
static const aspec AT_ONEHOT[] = {{"depth", A_INT, 0}, END};
static const aspec AT_REDUCE[] = {{"axes", A_AXES, 0}, END};
static const aspec AT_MATMUL[] = {{"trans_a", A_BOOL, 0}, {"trans_b", A_BOOL, 1}, END};
static const aspec AT_PERM[] = {{"perm", A_PERM, 0}, END};
static const aspec AT_SLICE[] = {{"axis", A_INT, 0}, {"start", A_INT, 1}, {"step", A_INT, 3}, END};
static const aspec AT_PAD[] = {{"axis", A_INT, 0}, {"before", A_INT, 1}, END};
static const aspec AT_AXIS[] = {{"axis", A_INT, 0}, END};
static const aspec AT_INDEX[] = {{"index", A_INT, 0}, END};
static const aspec AT_SCAN[] = {{"body", A_INT, KILN_SCAN_BODY},         {"sequences", A_INT, KILN_SCAN_SEQ},
                                {"states", A_INT, KILN_SCAN_STATE},      {"contexts", A_INT, KILN_SCAN_CTX},
                                {"outputs", A_INT, KILN_SCAN_OUT},       {"reverse", A_BOOL, KILN_SCAN_REVERSE},
                                {"summed", A_SUMS, KILN_SCAN_SUMS},      {"saved", A_INT, KILN_SCAN_SAVED},
                                END};
static const aspec AT_UNIFORM[] = {{"dist", A_DIST, 0}, {"stream", A_INT, 1}, {"lo", A_REAL, 0}, {"hi", A_REAL, 1}, END};
static const aspec AT_NORMAL[] = {{"dist", A_DIST, 0}, {"stream", A_INT, 1}, {"mean", A_REAL, 0}, {"std", A_REAL, 1},
                                  END};
static const aspec AT_BERNOULLI[] = {{"dist", A_DIST, 0}, {"stream", A_INT, 1}, {"p", A_REAL, 0}, END};
#undef END

/* The attributes of op; a random node's depend on its distribution. */
static const aspec *op_attrs(enum kiln_op op, int64_t dist)
{
    switch (op) {
    case KILN_OP_CONST: return AT_CONST;
    case KILN_OP_SYMBOL: return AT_SYMBOL;
    case KILN_OP_CLIP: return AT_CLIP;
    case KILN_OP_ONEHOT: return AT_ONEHOT;
    case KILN_OP_SUM:
    case KILN_OP_MAX: return AT_REDUCE;
    case KILN_OP_MATMUL: return AT_MATMUL;
    case KILN_OP_TRANSPOSE: return AT_PERM;
    case KILN_OP_SLICE: return AT_SLICE;
    case KILN_OP_PAD: return AT_PAD;
    case KILN_OP_CONCAT:
    case KILN_OP_REVERSE:
    case KILN_OP_SPLIT: return AT_AXIS;
    case KILN_OP_PROJ:
    case KILN_OP_ARG: return AT_INDEX;
    case KILN_OP_SCAN: return AT_SCAN;
    case KILN_OP_RANDOM:
        return dist == KILN_RANDOM_NORMAL ? AT_NORMAL : dist == KILN_RANDOM_BERNOULLI ? AT_BERNOULLI : AT_UNIFORM;
    default: return AT_NONE;
    }
}

static const char *dtype_key(enum kiln_dtype t) { return kiln_dtype_name(t); }

static bool dtype_of(const char *s, enum kiln_dtype *out)
{
    static const enum kiln_dtype all[] = {KILN_DTYPE_F32, KILN_DTYPE_F64, KILN_DTYPE_I32};
    for (size_t k = 0; s && k < KILN_ARRAY_LEN(all); k++)
        if (strcmp(s, kiln_dtype_name(all[k])) == 0) {
            *out = all[k];
            return true;
        }
    return false;
}

/* =============================================================================
** Writing
** ========================================================================== */

typedef struct writer {
    const kiln_graph *top;
    kiln_err *err;
    bool nomem;            /* a jansson call failed: out of memory */
    kiln_netjson_entry *entries;
    int n_entries, cap_entries;
} writer;

/* Attach v to object o (or array a) under key; jansson takes v even when
** it fails, so a failure only marks the writer. */
static void oset(writer *w, json_t *o, const char *key, json_t *v)
{
    if (!o || json_object_set_new(o, key, v) != 0)
        w->nomem = true;
}
static void aput(writer *w, json_t *a, json_t *v)
{
    if (!a || json_array_append_new(a, v) != 0)
        w->nomem = true;
}

/* A real: a JSON number, or "nan", "inf", "-inf" (JSON has no such numbers). */
static json_t *real_json(double v)
{
    if (isnan(v))
        return json_string("nan");
    if (isinf(v))
        return json_string(v > 0 ? "inf" : "-inf");
    return json_real(v);
}

/* A dim: a constant, a symbol's name, or the factors of a product (its
** symbols in index order, with repeats, then its constant unless 1). */
static json_t *dim_json(writer *w, const kiln_graph *g, int64_t d)
{
    kiln_mono m;
    if (d > 0)
        return json_integer(d);
    if (!kiln_dim_mono(g, d, &m))
        return NULL;
    int k1 = kiln_dim_symbol(d);
    if (k1 >= 0)
        return json_string(w->top->symbol_names[k1]);
    json_t *a = json_array();
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        for (int e = 0; e < m.e[k]; e++)
            aput(w, a, json_string(w->top->symbol_names[k] ? w->top->symbol_names[k] : "?"));
    if (m.c != 1)
        aput(w, a, json_integer(m.c));
    return a;
}

static json_t *shape_json(writer *w, const kiln_graph *g, const kiln_shape *s)
{
    json_t *a = json_array();
    for (int i = 0; i < s->rank; i++)
        aput(w, a, dim_json(w, g, s->dims[i]));
    return a;
}

static json_t *roles_json(writer *w, unsigned roles)
{
    json_t *a = json_array();
    for (unsigned k = 0; k < KILN_ARRAY_LEN(ROLE_NAMES); k++)
        if (roles >> k & 1)
            aput(w, a, json_string(ROLE_NAMES[k]));
    return a;
}

static json_t *attrs_json(writer *w, const kiln_graph *g, const kiln_node_rec *r)
{
    const aspec *spec = op_attrs(r->op, r->attr.i[0]);
    if (!spec->key)
        return NULL;
    json_t *o = json_object();
    for (; spec->key; spec++) {
        int64_t v = r->attr.i[spec->slot];
        json_t *a;
        switch (spec->kind) {
        case A_INT: oset(w, o, spec->key, json_integer(v)); break;
        case A_BOOL: oset(w, o, spec->key, json_boolean(v != 0)); break;
        case A_REAL: oset(w, o, spec->key, real_json(r->attr.f[spec->slot])); break;
        case A_DIST: oset(w, o, spec->key, json_string(v >= 0 && v < 3 ? DIST_NAMES[v] : "?")); break;
        case A_SYMBOL: {
            int k = kiln_dim_symbol(v);
            oset(w, o, spec->key, json_string(k >= 0 && w->top->symbol_names[k] ? w->top->symbol_names[k] : "?"));
            break;
        }
        case A_AXES:
        case A_SUMS:
            a = json_array();
            for (int k = 0; k < 64; k++)
                if ((uint64_t)v >> k & 1)
                    aput(w, a, json_integer(k));
            oset(w, o, spec->key, a);
            break;
        case A_PERM:
            a = json_array();
            for (int k = 0; k < r->shape.rank; k++)
                aput(w, a, json_integer(r->attr.i[k]));
            oset(w, o, spec->key, a);
            break;
        }
    }
    (void)g;
    return o;
}

/* The entry index of p, added on first sight. -1 on OOM. */
static int entry_of(writer *w, const kiln_graph *g, kiln_param *p)
{
    for (int k = 0; k < w->n_entries; k++)
        if (w->entries[k].param == p)
            return k;
    if (w->n_entries == w->cap_entries) {
        int cap = w->cap_entries ? 2 * w->cap_entries : 16;
        kiln_netjson_entry *e = realloc(w->entries, sizeof *e * (size_t)cap);
        if (!e)
            return -1;
        w->entries = e;
        w->cap_entries = cap;
    }
    kiln_netjson_entry *e = &w->entries[w->n_entries];
    memset(e, 0, sizeof *e);
    e->param = p;
    e->name = kiln_param_name(p);
    e->owner = kiln_param_owner(p);
    e->kind = kiln_param_kind(p);
    e->dtype = kiln_param_dtype(p) == KILN_DTYPE_I32 ? KILN_DTYPE_I32 : g->floatx;
    e->shape = *kiln_param_shape(p);
    e->size = kiln_param_size(p);
    e->roles = kiln_param_roles(p);
    return w->n_entries++;
}

static json_t *graph_json(writer *w, const kiln_graph *g, bool body, int depth);

static json_t *node_json(writer *w, const kiln_graph *g, int32_t id, bool body)
{
    const kiln_node_rec *r = &g->nodes[id];
    json_t *o = json_object();
    oset(w, o, "op", json_string(kiln_op_info_of(r->op)->name));
    if (r->n_out) {
        json_t *outs = json_array();
        for (int k = 0; k < r->n_out; k++) {
            json_t *t = json_object();
            oset(w, t, "dtype", json_string(dtype_key(r->outs[k].dtype)));
            oset(w, t, "shape", shape_json(w, g, &r->outs[k].shape));
            aput(w, outs, t);
        }
        oset(w, o, "outs", outs);
    } else {
        oset(w, o, "dtype", json_string(dtype_key(r->dtype)));
        oset(w, o, "shape", shape_json(w, g, &r->shape));
    }
    if (r->n_in) {
        json_t *in = json_array();
        for (int k = 0; k < r->n_in; k++)
            aput(w, in, json_integer(r->in[k]));
        oset(w, o, "in", in);
    }
    json_t *attr = attrs_json(w, g, r);
    if (attr)
        oset(w, o, "attr", attr);
    if (r->op == KILN_OP_PARAM || r->op == KILN_OP_STATE) {
        if (body) {
            kiln_err_set(w->err, KILN_ERR_UNSUPPORTED, "a scan body reads %s '%s' itself, not "
                         "through an argument", kiln_op_info_of(r->op)->name, r->name ? r->name : "");
            json_decref(o);
            return NULL;
        }
        if (!kiln_param_data(r->param)) {
            kiln_err_set(w->err, KILN_ERR_STATE, "%s%s%s has no values (allocate and initialise it)",
                         kiln_param_owner(r->param), *kiln_param_owner(r->param) ? "/" : "",
                         kiln_param_name(r->param));
            json_decref(o);
            return NULL;
        }
        int k = entry_of(w, g, r->param);
        if (k < 0)
            w->nomem = true;
        oset(w, o, "param", json_integer(k));
    }
    if (r->name)
        oset(w, o, "name", json_string(r->name));
    if (r->owner)
        oset(w, o, "owner", json_string(r->owner));
    if (r->roles)
        oset(w, o, "roles", roles_json(w, r->roles));
    if (r->replaces >= 0)
        oset(w, o, "replaces", json_integer(r->replaces));
    (void)body;
    return o;
}

static json_t *graph_json(writer *w, const kiln_graph *g, bool body, int depth)
{
    if (depth > MAX_BODY_DEPTH) {
        kiln_err_set(w->err, KILN_ERR_UNSUPPORTED, "scans nested more than %d deep", MAX_BODY_DEPTH);
        return NULL;
    }
    json_t *o = json_object(), *nodes = json_array();
    oset(w, o, "nodes", nodes);
    for (int32_t id = 0; id < g->n_nodes && !w->err->status; id++)
        aput(w, nodes, node_json(w, g, id, body));
    if (body) {
        json_t *res = json_array();
        for (int k = 0; k < g->n_results; k++)
            aput(w, res, json_integer(g->results[k]));
        oset(w, o, "results", res);
    } else {
        json_t *ups = json_array();
        for (int32_t u = 0; u < g->n_updates; u++) {
            json_t *up = json_object();
            oset(w, up, "target", json_integer(g->updates[u].target));
            oset(w, up, "value", json_integer(g->updates[u].value));
            oset(w, up, "on_read", json_boolean(g->updates[u].on_read));
            aput(w, ups, up);
        }
        oset(w, o, "updates", ups);
        oset(w, o, "streams", json_integer(g->n_streams));
    }
    if (g->n_bodies) {
        json_t *bodies = json_array();
        for (int32_t b = 0; b < g->n_bodies && !w->err->status; b++)
            aput(w, bodies, graph_json(w, g->bodies[b], true, depth + 1));
        oset(w, o, "bodies", bodies);
    }
    if (w->err->status) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- dataset paths ------------------------------------------------------------
** An entry's values are at /parameters (or /states) + its owner path + its
** name, each segment escaped: bytes other than letters, digits, '_', '-'
** and '.' (and the dots of a "." or ".." segment) as %XX; empty segments
** dropped. Two entries that would share a path, or an entry whose path is
** a group of another's, get "~1", "~2", ... after their name ('~' is
** escaped in names, so no name makes one). */

static bool seg_byte_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
}

/* Append segment s[0..n) escaped to buf (cap bytes, at *len); false when full. */
static bool put_seg(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    bool dots = (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
    if (*len + 1 >= cap)
        return false;
    buf[(*len)++] = '/';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (seg_byte_ok(c) && !(dots && c == '.')) {
            if (*len + 1 >= cap)
                return false;
            buf[(*len)++] = (char)c;
        } else {
            if (*len + 3 >= cap)
                return false;
            snprintf(buf + *len, 4, "%%%02X", c);
            *len += 3;
        }
    }
    buf[*len] = 0;
    return true;
}

/* The escaped path of e, without a suffix; false when too long. */
static bool base_path(const kiln_netjson_entry *e, char *buf, size_t cap)
{
    size_t len = 0;
    int n = snprintf(buf, cap, "%s", e->kind == KILN_STORE_STATE ? "/states" : "/parameters");
    len = (size_t)n;
    for (const char *s = e->owner; *s;) {
        const char *end = strchr(s, '/');
        size_t k = end ? (size_t)(end - s) : strlen(s);
        if (k && !put_seg(buf, cap, &len, s, k))
            return false;
        s += k + (end ? 1 : 0);
    }
    return put_seg(buf, cap, &len, e->name, strlen(e->name));
}

/* Whether path is one of base[0..n)'s groups (a proper prefix ending at '/'). */
static bool is_group(const char *path, char *const *base, int n)
{
    size_t len = strlen(path);
    for (int k = 0; k < n; k++)
        if (strncmp(base[k], path, len) == 0 && base[k][len] == '/')
            return true;
    return false;
}

static enum kiln_status set_paths(writer *w)
{
    int n = w->n_entries;
    char **base = calloc((size_t)n + 1, sizeof *base);
    enum kiln_status st = KILN_OK;
    if (!base)
        return kiln_err_set(w->err, KILN_ERR_NOMEM, "no memory for %d paths", n);
    for (int k = 0; k < n && !st; k++) {
        char buf[KILN_NETJSON_MAX_DATASET + 1];
        if (!base_path(&w->entries[k], buf, sizeof buf - 16)) /* room for a suffix */
            st = kiln_err_set(w->err, KILN_ERR_UNSUPPORTED,
                              "the dataset path of %s '%s' would pass %d bytes", w->entries[k].owner,
                              w->entries[k].name, KILN_NETJSON_MAX_DATASET - 16);
        else if (!(base[k] = kiln_strdup(buf)))
            st = kiln_err_set(w->err, KILN_ERR_NOMEM, "no memory for paths");
    }
    for (int k = 0; k < n && !st; k++) {
        char buf[KILN_NETJSON_MAX_DATASET + 1];
        snprintf(buf, sizeof buf, "%s", base[k]);
        for (int suffix = 1;; suffix++) {
            bool taken = is_group(buf, base, n);
            for (int j = 0; j < k && !taken; j++)
                taken = strcmp(w->entries[j].dataset, buf) == 0;
            if (!taken)
                break;
            snprintf(buf, sizeof buf, "%s~%d", base[k], suffix); /* < 16 more bytes */
        }
        if (!(w->entries[k].dataset = kiln_strdup(buf)))
            st = kiln_err_set(w->err, KILN_ERR_NOMEM, "no memory for paths");
    }
    for (int k = 0; k < n; k++)
        free(base[k]);
    free(base);
    return st;
}

static json_t *entries_json(writer *w)
{
    json_t *a = json_array();
    for (int k = 0; k < w->n_entries; k++) {
        const kiln_netjson_entry *e = &w->entries[k];
        json_t *o = json_object();
        oset(w, o, "kind", json_string(e->kind == KILN_STORE_STATE ? "state" : "parameter"));
        oset(w, o, "name", json_string(e->name));
        if (*e->owner)
            oset(w, o, "owner", json_string(e->owner));
        oset(w, o, "dtype", json_string(dtype_key(e->dtype)));
        oset(w, o, "shape", shape_json(w, w->top, &e->shape));
        if (e->roles)
            oset(w, o, "roles", roles_json(w, e->roles));
        oset(w, o, "dataset", json_string(e->dataset));
        aput(w, a, o);
    }
    return a;
}

static bool root_name_ok(const char *s) { return s && *s && strlen(s) <= KILN_MAX_NAME; }

enum kiln_status kiln_netjson_write(const kiln_graph *g, const kiln_node *roots, const char *const *names, int n,
                                    kiln_netjson_out *out, kiln_err *err)
{
    memset(out, 0, sizeof *out);
    kiln_err_clear(err);
    writer w = {.top = g, .err = err};
    /* 1. The roots: values of g, named, names distinct. */
    if (n < 1 || n > MAX_ROOTS)
        return kiln_err_set(err, KILN_ERR_ARG, "%d roots, expected 1 to %d", n, MAX_ROOTS);
    for (int k = 0; k < n; k++) {
        if (roots[k].id < 0 || roots[k].id >= g->n_nodes || g->nodes[roots[k].id].n_out)
            return kiln_err_set(err, KILN_ERR_ARG, "root %d is node %d, not a value of the graph", k,
                                (int)roots[k].id);
        if (!root_name_ok(names[k]))
            return kiln_err_set(err, KILN_ERR_ARG, "root %d's name is %s", k,
                                !names[k] ? "NULL" : !*names[k] ? "empty" : "longer than KILN_MAX_NAME");
        for (int j = 0; j < k; j++)
            if (strcmp(names[j], names[k]) == 0)
                return kiln_err_set(err, KILN_ERR_ARG, "roots %d and %d are both named '%s'", j, k,
                                    names[k]);
    }
    /* 2. The document: the graph first (it finds the entries), then the rest. */
    json_t *doc = json_object();
    oset(&w, doc, "format", json_string(KILN_NETJSON_FORMAT));
    oset(&w, doc, "version", json_integer(KILN_NETWORK_FORMAT_VERSION));
    oset(&w, doc, "kiln", json_string(KILN_VERSION));
    oset(&w, doc, "floatx", json_string(dtype_key(g->floatx)));
    json_t *syms = json_array();
    for (int k = 0; k < KILN_MAX_SYMBOLS && g->symbol_names[k]; k++)
        aput(&w, syms, json_string(g->symbol_names[k]));
    oset(&w, doc, "symbols", syms);
    json_t *graph = graph_json(&w, g, false, 0);
    if (!err->status && !w.nomem)
        set_paths(&w);
    if (!err->status) {
        oset(&w, doc, "parameters", entries_json(&w));
        oset(&w, doc, "graph", graph);
        graph = NULL;
        json_t *ra = json_array();
        for (int k = 0; k < n; k++) {
            json_t *o = json_object();
            oset(&w, o, "name", json_string(names[k]));
            oset(&w, o, "node", json_integer(roots[k].id));
            aput(&w, ra, o);
        }
        oset(&w, doc, "roots", ra);
    }
    json_decref(graph);
    /* 3. The text. */
    if (!err->status && !w.nomem && !(out->text = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII)))
        w.nomem = true;
    json_decref(doc);
    out->entries = w.entries;
    out->n_entries = w.n_entries;
    if (!err->status && w.nomem)
        kiln_err_set(err, KILN_ERR_NOMEM, "no memory for the description");
    if (err->status) {
        free(out->text);
        out->text = NULL;
        return err->status;
    }
    out->len = strlen(out->text);
    return KILN_OK;
}

void kiln_netjson_out_free(kiln_netjson_out *out)
{
    if (!out)
        return;
    for (int k = 0; k < out->n_entries; k++)
        free((char *)out->entries[k].dataset);
    free(out->entries);
    free(out->text);
    memset(out, 0, sizeof *out);
}

/* =============================================================================
** Reading
** ========================================================================== */

typedef struct reader {
    const kiln_netjson_reader *hooks;
    kiln_err *err;
    kiln_graph *top;
    kiln_netjson_entry *entries;
    int n_entries;
    unsigned char *entry_used;
    unsigned char streams[MAX_STREAMS / 8]; /* streams taken, over every graph */
    int64_t n_streams;                      /* 1 + the highest stream taken */
} reader;

/* The type of a scan's argument as the body sees it, in the scan's graph. */
typedef struct argtype {
    enum kiln_dtype dtype;
    kiln_shape shape;
} argtype;

/* A graph being read: the top graph or a scan's body. */
typedef struct level {
    kiln_graph *g;
    const kiln_graph *outer;  /* a body's scan graph; NULL at the top */
    const argtype *args;      /* a body's arguments */
    int n_args;
    unsigned char *arg_seen;
    json_t *bodies;           /* this graph's "bodies" (may be NULL) */
    unsigned char *body_used;
    int depth;
    char at[160];             /* JSON path of the graph: "/graph", "/graph/bodies/0" */
} level;

/* A failure at a JSON path: "<where>: <at>: <what>". */
static enum kiln_status fail(reader *r, enum kiln_status st, const char *at, const char *fmt, ...) KILN_PRINTF(4, 5);
static enum kiln_status fail(reader *r, enum kiln_status st, const char *at, const char *fmt, ...)
{
    char what[KILN_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return kiln_err_set(r->err, st, "%s: %s: %s", r->hooks->where, at, what);
}
#define BAD(r, at, ...) fail((r), KILN_ERR_FORMAT, (at), __VA_ARGS__)

/* An object's keys are all among allowed (NULL-terminated): a misspelt or
** foreign key is an error rather than ignored. */
static enum kiln_status keys_known(reader *r, const char *at, json_t *o, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        bool ok = false;
        for (int k = 0; allowed[k] && !ok; k++)
            ok = strcmp(key, allowed[k]) == 0;
        if (!ok)
            return BAD(r, at, "unknown key \"%.60s\"", key);
    }
    (void)v;
    return KILN_OK;
}

/* An integer in [lo, hi]. */
static enum kiln_status get_int(reader *r, const char *at, const char *what, json_t *v, int64_t lo, int64_t hi,
                                int64_t *out)
{
    if (!json_is_integer(v))
        return BAD(r, at, "%s is %s, expected an integer", what, v ? "not an integer" : "missing");
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return BAD(r, at, "%s is %lld, expected %lld to %lld", what, (long long)x, (long long)lo, (long long)hi);
    *out = (int64_t)x;
    return KILN_OK;
}

static enum kiln_status get_bool(reader *r, const char *at, const char *what, json_t *v, bool *out)
{
    if (!json_is_boolean(v))
        return BAD(r, at, "%s is %s, expected true or false", what, v ? "not a boolean" : "missing");
    *out = json_is_true(v);
    return KILN_OK;
}

static enum kiln_status get_real(reader *r, const char *at, const char *what, json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return KILN_OK;
    }
    const char *s = json_string_value(v);
    if (s && strcmp(s, "nan") == 0)
        *out = NAN;
    else if (s && strcmp(s, "inf") == 0)
        *out = INFINITY;
    else if (s && strcmp(s, "-inf") == 0)
        *out = -INFINITY;
    else
        return BAD(r, at, "%s is %s, expected a number, \"nan\", \"inf\" or \"-inf\"", what,
                   v ? "something else" : "missing");
    return KILN_OK;
}

/* A string of 1..max bytes (max 0: any length); NULL v when !required. */
static enum kiln_status get_str(reader *r, const char *at, const char *what, json_t *v, size_t max, bool required,
                                const char **out)
{
    *out = NULL;
    if (!v && !required)
        return KILN_OK;
    const char *s = json_string_value(v);
    if (!s)
        return BAD(r, at, "%s is %s, expected a string", what, v ? "not a string" : "missing");
    size_t n = json_string_length(v);
    if (n == 0 || strlen(s) != n) /* jansson refuses \u0000 already; belt and braces */
        return BAD(r, at, "%s is empty or holds a NUL byte", what);
    if (max && n > max)
        return BAD(r, at, "%s '%.40s...' is longer than %zu bytes", what, s, max);
    *out = s;
    return KILN_OK;
}

static enum kiln_status get_roles(reader *r, const char *at, json_t *v, unsigned *out)
{
    *out = 0;
    if (!v)
        return KILN_OK;
    if (!json_is_array(v))
        return BAD(r, at, "roles is not an array");
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        const char *s = json_string_value(x);
        unsigned k = 0;
        while (s && k < KILN_ARRAY_LEN(ROLE_NAMES) && strcmp(s, ROLE_NAMES[k]) != 0)
            k++;
        if (!s || k == KILN_ARRAY_LEN(ROLE_NAMES))
            return BAD(r, at, "roles[%zu] is %s%.40s%s, not a role", i, s ? "\"" : "", s ? s : "not a string",
                       s ? "\"" : "");
        *out |= 1u << k;
    }
    return KILN_OK;
}

static int symbol_named(const kiln_graph *top, const char *s)
{
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        if (top->symbol_names[k] && strcmp(top->symbol_names[k], s) == 0)
            return k;
    return -1;
}

/* One factor of a dim (a constant or a symbol's name) times m. */
static enum kiln_status factor(reader *r, const char *at, const char *what, json_t *v, kiln_mono *m)
{
    kiln_mono f = {.c = 1};
    if (json_is_integer(v)) {
        json_int_t c = json_integer_value(v);
        if (c < 1 || c > (INT64_C(1) << 53))
            return BAD(r, at, "%s has the factor %lld, expected 1 to 2^53", what, (long long)c);
        f.c = c;
    } else if (json_is_string(v)) {
        int k = symbol_named(r->top, json_string_value(v));
        if (k < 0)
            return BAD(r, at, "%s names the symbol \"%.40s\", which \"symbols\" does not list", what,
                       json_string_value(v));
        f.e[k] = 1;
    } else {
        return BAD(r, at, "%s: a dim is a positive integer, a symbol's name or an array of them", what);
    }
    if (!kiln_mono_mul(m, &f, m))
        return BAD(r, at, "%s: the product overflows (more than 2^53, or an exponent past 64)", what);
    return KILN_OK;
}

/* A dim of g, as a code. */
static enum kiln_status get_dim(reader *r, const char *at, const char *what, kiln_graph *g, json_t *v, int64_t *out)
{
    kiln_mono m = {.c = 1};
    enum kiln_status st = KILN_OK;
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if (n < 1 || n > MAX_FACTORS)
            return BAD(r, at, "%s is a product of %zu factors, expected 1 to %d", what, n, MAX_FACTORS);
        for (size_t i = 0; i < n && !st; i++)
            st = factor(r, at, what, json_array_get(v, i), &m);
    } else {
        st = factor(r, at, what, v, &m);
    }
    if (st)
        return st;
    int64_t code = kiln_graph_dim_code(g, &m);
    if (!code)
        return fail(r, g->err.status ? g->err.status : KILN_ERR_FORMAT, at, "%s: %s", what,
                    g->err.status ? g->err.msg : "no code for the dim");
    *out = code;
    return KILN_OK;
}

static enum kiln_status get_shape(reader *r, const char *at, const char *what, kiln_graph *g, json_t *v,
                                  kiln_shape *s)
{
    if (!json_is_array(v))
        return BAD(r, at, "%s is %s, expected an array of dims", what, v ? "not an array" : "missing");
    size_t n = json_array_size(v);
    if (n > KILN_MAX_RANK)
        return BAD(r, at, "%s has %zu dims, at most %d", what, n, KILN_MAX_RANK);
    s->rank = (int)n;
    for (size_t i = 0; i < n; i++) {
        char w[64];
        snprintf(w, sizeof w, "%s[%zu]", what, i);
        enum kiln_status st = get_dim(r, at, w, g, json_array_get(v, i), &s->dims[i]);
        if (st)
            return st;
    }
    return KILN_OK;
}

static enum kiln_status get_dtype(reader *r, const char *at, const char *what, json_t *v, enum kiln_dtype *out)
{
    const char *s = json_string_value(v);
    if (!dtype_of(s, out))
        return BAD(r, at, "%s is %s%.20s%s, expected \"float32\", \"float64\" or \"int32\"", what, s ? "\"" : "",
                   s ? s : v ? "not a string" : "missing", s ? "\"" : "");
    return KILN_OK;
}

/* Whether a (a shape of ga) and b (of gb) are the same, dim by dim. */
static bool shape_same(const kiln_graph *ga, const kiln_shape *a, const kiln_graph *gb, const kiln_shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++) {
        kiln_mono ma, mb;
        if (!kiln_dim_mono(ga, a->dims[i], &ma) || !kiln_dim_mono(gb, b->dims[i], &mb) || !kiln_mono_equal(&ma, &mb))
            return false;
    }
    return true;
}

/* ---- the entries -------------------------------------------------------------- */

static enum kiln_status read_entry(reader *r, int k, json_t *o, kiln_netjson_entry *e)
{
    static const char *const keys[] = {"kind", "name", "owner", "dtype", "shape", "roles", "dataset", NULL};
    char at[64];
    snprintf(at, sizeof at, "/parameters/%d", k);
    if (!json_is_object(o))
        return BAD(r, at, "not an object");
    enum kiln_status st = keys_known(r, at, o, keys);
    const char *kind = NULL;
    if (!st)
        st = get_str(r, at, "kind", json_object_get(o, "kind"), 16, true, &kind);
    if (!st && strcmp(kind, "parameter") && strcmp(kind, "state"))
        st = BAD(r, at, "kind is \"%s\", expected \"parameter\" or \"state\"", kind);
    if (st)
        return st;
    e->kind = strcmp(kind, "state") == 0 ? KILN_STORE_STATE : KILN_STORE_PARAMETER;
    if ((st = get_str(r, at, "name", json_object_get(o, "name"), KILN_MAX_NAME, true, &e->name)) ||
        (st = get_str(r, at, "owner", json_object_get(o, "owner"), KILN_NETJSON_MAX_OWNER, false, &e->owner)) ||
        (st = get_dtype(r, at, "dtype", json_object_get(o, "dtype"), &e->dtype)) ||
        (st = get_roles(r, at, json_object_get(o, "roles"), &e->roles)) ||
        (st = get_str(r, at, "dataset", json_object_get(o, "dataset"), KILN_NETJSON_MAX_DATASET, true, &e->dataset)))
        return st;
    if (!e->owner)
        e->owner = "";
    if (e->dtype != KILN_DTYPE_I32 && e->dtype != r->top->floatx)
        return BAD(r, at, "dtype is %s, but the graph's floats are %s", kiln_dtype_name(e->dtype),
                   kiln_dtype_name(r->top->floatx));
    json_t *sv = json_object_get(o, "shape");
    if (!json_is_array(sv) || json_array_size(sv) > KILN_MAX_RANK)
        return BAD(r, at, "shape is not an array of at most %d dims", KILN_MAX_RANK);
    e->shape.rank = (int)json_array_size(sv);
    for (int i = 0; i < e->shape.rank; i++)
        if ((st = get_int(r, at, "a dim of shape", json_array_get(sv, (size_t)i), 1, INT64_C(1) << 53,
                          &e->shape.dims[i])))
            return st;
    if (!kiln_store_shape_ok(e->shape.rank, e->shape.dims, &e->size))
        return BAD(r, at, "shape has more values than kiln allocates for one entry (%lld bytes)",
                   (long long)KILN_MAX_BYTES);
    if ((e->roles & KILN_ROLE_RANDOM_STATE) &&
        (e->kind != KILN_STORE_STATE || e->dtype != KILN_DTYPE_I32 || e->shape.rank != 1 || e->shape.dims[0] != 4))
        return BAD(r, at, "a random state is a state of 4 int32 (a key and a counter)");
    /* The dataset: a path of escaped segments under /parameters or /states
    ** (network.c opens it, link by link). */
    const char *d = e->dataset;
    if (strncmp(d, "/parameters/", 12) != 0 && strncmp(d, "/states/", 8) != 0)
        return BAD(r, at, "dataset \"%.60s\" is not under /parameters/ or /states/", d);
    for (const char *s = d + 1; *s;) {
        size_t n = strcspn(s, "/");
        bool ok = n > 0 && !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.');
        for (size_t i = 0; i < n && ok; i++)
            ok = seg_byte_ok((unsigned char)s[i]) || s[i] == '%' || s[i] == '~';
        if (!ok)
            return BAD(r, at, "dataset \"%.60s\" has an empty, dot or non-escaped segment", d);
        s += n + (s[n] == '/');
    }
    for (int j = 0; j < k; j++)
        if (strcmp(r->entries[j].dataset, d) == 0)
            return BAD(r, at, "dataset \"%.60s\" is also /parameters/%d's", d, j);
    return KILN_OK;
}

/* Add p to g's own entries (freed with g). */
static bool graph_own(kiln_graph *g, kiln_param *p)
{
    if (g->n_owned == g->cap_owned) {
        int32_t cap = g->cap_owned ? g->cap_owned * 2 : 8;
        kiln_param **o = realloc(g->owned, (size_t)cap * sizeof *o);
        if (!o)
            return false;
        g->owned = o;
        g->cap_owned = cap;
    }
    g->owned[g->n_owned++] = p;
    return true;
}

/* Every entry: read and checked (also by the hook, against the file), then
** made and filled. */
static enum kiln_status read_entries(reader *r, json_t *a)
{
    if (!json_is_array(a))
        return BAD(r, "/parameters", "%s, expected an array", a ? "not an array" : "missing");
    size_t n = json_array_size(a);
    if (n > (size_t)INT32_MAX / 4)
        return BAD(r, "/parameters", "%zu entries", n);
    r->entries = calloc(n + 1, sizeof *r->entries);
    r->entry_used = calloc(n + 1, 1);
    if (!r->entries || !r->entry_used)
        return fail(r, KILN_ERR_NOMEM, "/parameters", "no memory for %zu entries", n);
    int64_t bytes = 0;
    for (size_t k = 0; k < n; k++) {
        kiln_netjson_entry *e = &r->entries[k];
        enum kiln_status st = read_entry(r, (int)k, json_array_get(a, k), e);
        r->n_entries = (int)k + 1; /* its dataset is compared with the next ones' */
        if (st)
            return st;
        if (!kiln_add_i64(bytes, e->size * (int64_t)sizeof(double), &bytes) || bytes > r->hooks->max_value_bytes) {
            char at[64];
            snprintf(at, sizeof at, "/parameters/%zu", k);
            return BAD(r, at, "the entries up to this one hold more than %lld bytes", (long long)r->hooks->max_value_bytes);
        }
        if (r->hooks->check && (st = r->hooks->check(r->hooks->user, e, r->err)))
            return st;
    }
    for (size_t k = 0; k < n; k++) {
        kiln_netjson_entry *e = &r->entries[k];
        kiln_param *p = kiln_store_new(e->kind, e->name, e->dtype, e->shape.rank, e->shape.dims,
                                       e->kind == KILN_STORE_PARAMETER ? NAN : 0);
        if (!p || !graph_own(r->top, p)) {
            kiln_store_unref(p);
            return fail(r, KILN_ERR_NOMEM, "/parameters", "no memory for entry %zu (%lld values)", k,
                        (long long)e->size);
        }
        kiln_store_hold(p); /* the graph's, as a random state it makes */
        kiln_store_set_roles(p, e->roles);
        if (!kiln_store_set_owner(p, e->owner))
            return fail(r, KILN_ERR_NOMEM, "/parameters", "no memory for entry %zu's owner", k);
        e->param = p;
        enum kiln_status st;
        if (r->hooks->fill && (st = r->hooks->fill(r->hooks->user, e, kiln_param_data(p), r->err)))
            return st;
    }
    return KILN_OK;
}

/* ---- nodes -------------------------------------------------------------------- */

/* A node as its record in the file says. */
typedef struct filenode {
    enum kiln_op op;
    enum kiln_dtype dtype;
    kiln_shape shape;
    int n_in;
    int32_t in[MAX_NODE_INPUTS];
    int n_out;
    kiln_value_type *outs; /* n_out, the reader's */
    kiln_attr attr;
    bool has_attr[KILN_ATTR_INTS + 2]; /* slots the file names (i[0..8), f[0], f[1]) */
    const char *name, *owner;
    unsigned roles;
    int64_t param;
    char at[200];
} filenode;

static enum kiln_status read_attrs(reader *r, level *lv, filenode *f, json_t *o)
{
    json_t *dv = o ? json_object_get(o, "dist") : NULL;
    int64_t dist = 0;
    if (f->op == KILN_OP_RANDOM) {
        const char *s = json_string_value(dv);
        while (s && dist < 3 && strcmp(s, DIST_NAMES[dist]) != 0)
            dist++;
        if (!s || dist == 3)
            return BAD(r, f->at, "attr.dist is %s, expected \"uniform\", \"normal\" or \"bernoulli\"",
                       dv ? "not a distribution" : "missing");
    }
    const aspec *spec = op_attrs(f->op, dist);
    const char *keys[12];
    int nk = 0;
    for (const aspec *a = spec; a->key; a++)
        keys[nk++] = a->key;
    keys[nk] = NULL;
    if (!nk) {
        if (o)
            return BAD(r, f->at, "a %s node has no attributes", kiln_op_info_of(f->op)->name);
        return KILN_OK;
    }
    if (!json_is_object(o))
        return BAD(r, f->at, "attr is %s, expected an object", o ? "not an object" : "missing");
    enum kiln_status st = keys_known(r, f->at, o, keys);
    for (const aspec *a = spec; a->key && !st; a++) {
        json_t *v = json_object_get(o, a->key);
        char what[32];
        snprintf(what, sizeof what, "attr.%s", a->key);
        int64_t x = 0;
        bool b = false;
        switch (a->kind) {
        case A_INT: st = get_int(r, f->at, what, v, INT64_MIN + 1, INT64_MAX, &x); break;
        case A_BOOL: st = get_bool(r, f->at, what, v, &b), x = b; break;
        case A_DIST: x = dist; break;
        case A_REAL:
            st = get_real(r, f->at, what, v, &f->attr.f[a->slot]);
            f->has_attr[KILN_ATTR_INTS + a->slot] = true;
            continue;
        case A_SYMBOL: {
            const char *s = json_string_value(v);
            int k = s ? symbol_named(r->top, s) : -1;
            if (k < 0)
                st = BAD(r, f->at, "%s is not the name of a symbol \"symbols\" lists", what);
            x = -(int64_t)k - 1;
            break;
        }
        case A_AXES:
        case A_SUMS:
        case A_PERM: {
            if (!json_is_array(v) || json_array_size(v) > (a->kind == A_SUMS ? 64 : KILN_MAX_RANK)) {
                st = BAD(r, f->at, "%s is not an array of at most %d integers", what, a->kind == A_SUMS ? 64 : KILN_MAX_RANK);
                break;
            }
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                int64_t k;
                if ((st = get_int(r, f->at, what, e, 0, a->kind == A_SUMS ? 63 : KILN_MAX_RANK - 1, &k)))
                    break;
                if (a->kind == A_PERM) {
                    f->attr.i[i] = k;
                    f->has_attr[i] = true;
                } else {
                    if ((uint64_t)x >> k & 1)
                        st = BAD(r, f->at, "%s lists %lld twice", what, (long long)k);
                    x = (int64_t)((uint64_t)x | (uint64_t)1 << k);
                }
            }
            if (a->kind == A_PERM) {
                if (!st && (int)json_array_size(v) != f->shape.rank)
                    st = BAD(r, f->at, "%s has %zu axes, the node %d", what, json_array_size(v), f->shape.rank);
                continue;
            }
            break;
        }
        }
        f->attr.i[a->slot] = x;
        f->has_attr[a->slot] = true;
    }
    (void)lv;
    return st;
}

static enum kiln_status read_types(reader *r, level *lv, filenode *f, json_t *o)
{
    json_t *outs = json_object_get(o, "outs");
    enum kiln_status st;
    if (!outs) {
        if ((st = get_dtype(r, f->at, "dtype", json_object_get(o, "dtype"), &f->dtype)))
            return st;
        return get_shape(r, f->at, "shape", lv->g, json_object_get(o, "shape"), &f->shape);
    }
    if (json_object_get(o, "dtype") || json_object_get(o, "shape"))
        return BAD(r, f->at, "a node has either outs (a tuple's results) or dtype and shape, not both");
    size_t n = json_is_array(outs) ? json_array_size(outs) : 0;
    if (n < 1 || n > MAX_SCAN_RESULTS)
        return BAD(r, f->at, "outs is not an array of 1 to %d results", MAX_SCAN_RESULTS);
    if (!(f->outs = calloc(n, sizeof *f->outs)))
        return fail(r, KILN_ERR_NOMEM, f->at, "no memory for %zu results", n);
    f->n_out = (int)n;
    for (size_t k = 0; k < n; k++) {
        json_t *t = json_array_get(outs, k);
        static const char *const keys[] = {"dtype", "shape", NULL};
        char what[32];
        if (!json_is_object(t))
            return BAD(r, f->at, "outs[%zu] is not an object", k);
        snprintf(what, sizeof what, "outs[%zu].shape", k);
        if ((st = keys_known(r, f->at, t, keys)) ||
            (st = get_dtype(r, f->at, "a result's dtype", json_object_get(t, "dtype"), &f->outs[k].dtype)) ||
            (st = get_shape(r, f->at, what, lv->g, json_object_get(t, "shape"), &f->outs[k].shape)))
            return st;
    }
    return KILN_OK;
}

static enum kiln_op op_named(const char *s)
{
    for (int op = 0; s && op < KILN_OP_COUNT_; op++)
        if (strcmp(kiln_op_info_table[op].name, s) == 0)
            return (enum kiln_op)op;
    return KILN_OP_COUNT_;
}

/* The record of node i (the JSON object o) into f; *replaces its replaces
** or -1. */
static enum kiln_status read_node(reader *r, level *lv, int32_t i, json_t *o, filenode *f, int64_t *replaces)
{
    static const char *const keys[] = {"op",    "dtype", "shape", "outs",  "in",       "attr",
                                       "param", "name",  "owner", "roles", "replaces", NULL};
    enum kiln_status st;
    snprintf(f->at, sizeof f->at, "%s/nodes/%d", lv->at, (int)i);
    f->param = -1;
    *replaces = -1;
    if (!json_is_object(o))
        return BAD(r, f->at, "not an object");
    if ((st = keys_known(r, f->at, o, keys)))
        return st;
    const char *op = json_string_value(json_object_get(o, "op"));
    if ((f->op = op_named(op)) == KILN_OP_COUNT_)
        return BAD(r, f->at, "op is %s%.40s%s, not an op of kiln %s", op ? "\"" : "", op ? op : "missing",
                   op ? "\"" : "", KILN_VERSION);
    size_t len = strlen(f->at);
    snprintf(f->at + len, sizeof f->at - len, " (%s)", op);
    if ((st = read_types(r, lv, f, o)))
        return st;
    /* inputs: earlier nodes, as many as the op takes */
    json_t *in = json_object_get(o, "in");
    if (in && !json_is_array(in))
        return BAD(r, f->at, "in is not an array");
    size_t n_in = in ? json_array_size(in) : 0;
    int want = kiln_op_info_of(f->op)->n_in;
    if (want >= 0 ? n_in != (size_t)want : n_in < 1 || n_in > MAX_NODE_INPUTS)
        return BAD(r, f->at, "%zu inputs, a %s node takes %s%d", n_in, op, want >= 0 ? "" : "1 to ",
                   want >= 0 ? want : MAX_NODE_INPUTS);
    f->n_in = (int)n_in;
    for (size_t k = 0; k < n_in; k++) {
        int64_t v;
        json_t *x = json_array_get(in, k);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) >= i)
            return BAD(r, f->at, "input %zu is %s%lld, expected an earlier node (0 to %d)", k,
                       json_is_integer(x) ? "node " : "not a node id ", json_is_integer(x) ? (long long)json_integer_value(x) : 0LL,
                       (int)i - 1);
        v = json_integer_value(x);
        f->in[k] = (int32_t)v;
    }
    if ((st = read_attrs(r, lv, f, json_object_get(o, "attr"))))
        return st;
    json_t *pv = json_object_get(o, "param");
    bool leaf = f->op == KILN_OP_PARAM || f->op == KILN_OP_STATE;
    if (leaf != (pv != NULL))
        return BAD(r, f->at, leaf ? "a %s node needs \"param\", the index of its entry" : "a %s node has no \"param\"", op);
    if (leaf && (st = get_int(r, f->at, "param", pv, 0, r->n_entries - 1, &f->param)))
        return st;
    if ((st = get_str(r, f->at, "name", json_object_get(o, "name"), KILN_MAX_NAME, false, &f->name)) ||
        (st = get_str(r, f->at, "owner", json_object_get(o, "owner"), KILN_NETJSON_MAX_OWNER, false, &f->owner)) ||
        (st = get_roles(r, f->at, json_object_get(o, "roles"), &f->roles)))
        return st;
    json_t *rv = json_object_get(o, "replaces");
    if (rv && (st = get_int(r, f->at, "replaces", rv, 0, INT32_MAX, replaces)))
        return st;
    return KILN_OK;
}

/* Node id of g is a value, not a tuple. */
static bool is_value(const kiln_graph *g, int32_t id)
{
    return g->nodes[id].n_out == 0;
}

static bool is_rng_words(const kiln_graph *g, int32_t id)
{
    const kiln_node_rec *s = &g->nodes[id];
    return s->n_out == 0 && s->dtype == KILN_DTYPE_I32 && s->shape.rank == 1 && s->shape.dims[0] == 4;
}

/* A random state as a random node or rng_next reads it: the top graph's
** random state leaf, or in a body an argument (the state, a context). */
static bool is_random_state(const level *lv, int32_t id)
{
    const kiln_node_rec *s = &lv->g->nodes[id];
    if (!is_rng_words(lv->g, id))
        return false;
    return lv->outer ? s->op == KILN_OP_ARG : s->op == KILN_OP_STATE && (s->roles & KILN_ROLE_RANDOM_STATE);
}

/* Take stream s (unique over every graph of the file). */
static enum kiln_status take_stream(reader *r, const filenode *f, int64_t s)
{
    if (s < 0 || s >= MAX_STREAMS)
        return BAD(r, f->at, "attr.stream is %lld, expected 0 to %d", (long long)s, MAX_STREAMS - 1);
    if (r->streams[s / 8] >> (s % 8) & 1)
        return BAD(r, f->at, "attr.stream %lld is another random node's too", (long long)s);
    r->streams[s / 8] |= (unsigned char)(1u << (s % 8));
    if (s + 1 > r->n_streams)
        r->n_streams = s + 1;
    return KILN_OK;
}

/* A constant dim of the file's record: dim i of its shape. */
static enum kiln_status const_dim(reader *r, const filenode *f, int i, const char *what, int64_t *out)
{
    if (i < 0 || i >= f->shape.rank || f->shape.dims[i] <= 0)
        return BAD(r, f->at, "%s: dim %d of the shape must be a constant", what, i);
    *out = f->shape.dims[i];
    return KILN_OK;
}

static enum kiln_status load_graph(reader *r, level *lv, json_t *o);

static enum kiln_status load_scan(reader *r, level *lv, filenode *f, kiln_node *out)
{
    kiln_graph *g = lv->g;
    const int64_t *a = f->attr.i;
    int64_t n_seq = a[KILN_SCAN_SEQ], n_state = a[KILN_SCAN_STATE], n_ctx = a[KILN_SCAN_CTX];
    int64_t n_out = a[KILN_SCAN_OUT], n_saved = a[KILN_SCAN_SAVED], bi = a[KILN_SCAN_BODY];
    uint64_t sums = (uint64_t)a[KILN_SCAN_SUMS];
    size_t n_bodies = json_array_size(lv->bodies);
    char sa[KILN_SHAPE_STR_MAX], sb[KILN_SHAPE_STR_MAX];
    /* 1. Counts, as kiln_scan_add and the gradient expect them. */
    if (n_seq < 1 || n_state < 0 || n_ctx < 0 || n_out < 0 || n_out > 64 || n_saved < 0 ||
        n_saved > MAX_SCAN_SAVED || n_state + n_out < 1 || n_state > MAX_SCAN_RESULTS)
        return BAD(r, f->at, "sequences %lld, states %lld, contexts %lld, outputs %lld, saved %lld: expected "
                   "sequences >= 1, outputs <= 64, saved <= %d and a state or an output", (long long)n_seq,
                   (long long)n_state, (long long)n_ctx, (long long)n_out, (long long)n_saved, MAX_SCAN_SAVED);
    if (n_seq + n_state + n_ctx != f->n_in)
        return BAD(r, f->at, "%d inputs, but sequences + states + contexts = %lld", f->n_in,
                   (long long)(n_seq + n_state + n_ctx));
    if (3 * n_state + n_out + n_saved != f->n_out)
        return BAD(r, f->at, "%d results, expected 3 x states + outputs + saved = %lld", f->n_out,
                   (long long)(3 * n_state + n_out + n_saved));
    if (n_out < 64 && sums >> n_out)
        return BAD(r, f->at, "attr.summed names an output past the %lld outputs", (long long)n_out);
    if (bi < 0 || (size_t)bi >= n_bodies)
        return BAD(r, f->at, "attr.body is %lld, but the graph has %zu bodies", (long long)bi, n_bodies);
    if (lv->body_used[bi])
        return BAD(r, f->at, "attr.body %lld is another scan's body too", (long long)bi);
    if (lv->depth + 1 > MAX_BODY_DEPTH)
        return BAD(r, f->at, "scans nested more than %d deep", MAX_BODY_DEPTH);
    /* 2. The arguments' types: a sequence's slice at t, states, contexts. */
    argtype args[MAX_NODE_INPUTS];
    for (int k = 0; k < f->n_in; k++) {
        const kiln_node_rec *in = &g->nodes[f->in[k]];
        if (!is_value(g, f->in[k]))
            return BAD(r, f->at, "input %d is node %d, a tuple (read it through a proj node)", k, (int)f->in[k]);
        args[k].dtype = in->dtype;
        args[k].shape = in->shape;
        if (k < n_seq) {
            const kiln_shape *s0 = &g->nodes[f->in[0]].shape;
            if (in->shape.rank < 1 || in->shape.dims[0] != s0->dims[0])
                return BAD(r, f->at, "sequence %d is %s, sequence 0 %s: sequences need one first axis (T)", k,
                           kiln_shape_str(g, &in->shape, sa, sizeof sa), kiln_shape_str(g, s0, sb, sizeof sb));
            memmove(args[k].shape.dims, args[k].shape.dims + 1, sizeof(int64_t) * (size_t)(in->shape.rank - 1));
            args[k].shape.rank--;
        }
    }
    /* 3. The body, then its results against the states. */
    kiln_graph *body = kiln_graph_create(g->floatx);
    unsigned char seen[MAX_NODE_INPUTS] = {0};
    if (!body || !kiln_graph_copy_dims(body, g)) {
        kiln_graph_destroy(body);
        return fail(r, KILN_ERR_NOMEM, f->at, "no memory for a body");
    }
    level child = {.g = body, .outer = g, .args = args, .n_args = f->n_in, .arg_seen = seen, .depth = lv->depth + 1};
    snprintf(child.at, sizeof child.at, "%s/bodies/%lld", lv->at, (long long)bi);
    lv->body_used[bi] = 1;
    enum kiln_status st = load_graph(r, &child, json_array_get(lv->bodies, (size_t)bi));
    if (!st && body->n_results != n_state + n_out + n_saved)
        st = BAD(r, child.at, "%d results, but the scan has %lld states, %lld outputs and %lld saved values",
                 (int)body->n_results, (long long)n_state, (long long)n_out, (long long)n_saved);
    for (int s = 0; s < n_state && !st; s++) {
        const kiln_node_rec *res = &body->nodes[body->results[s]];
        const argtype *want = &args[n_seq + s];
        if (res->dtype != want->dtype || !shape_same(body, &res->shape, g, &want->shape))
            st = BAD(r, child.at, "result %d (a state's new value) is %s %s, the state %s %s", s,
                     kiln_dtype_name(res->dtype), kiln_shape_str(body, &res->shape, sa, sizeof sa),
                     kiln_dtype_name(want->dtype), kiln_shape_str(g, &want->shape, sb, sizeof sb));
    }
    if (st) {
        kiln_graph_destroy(body);
        return st;
    }
    int32_t id = kiln_scan_add(g, body, (int)n_seq, (int)n_state, (int)n_ctx, (int)n_out, (int)n_saved,
                               a[KILN_SCAN_REVERSE] != 0, sums, f->in);
    *out = (kiln_node){id < 0 ? -1 : id};
    return KILN_OK;
}

/* A body's random node: its state is an argument, which no public builder
** takes; the checks are random_node's (expr.c). */
static enum kiln_status body_random(reader *r, level *lv, filenode *f, kiln_node *out)
{
    const kiln_attr *a = &f->attr;
    double p0 = a->f[0], p1 = a->f[1];
    bool ok = isfinite(p0) && isfinite(p1);
    switch (a->i[0]) {
    case KILN_RANDOM_UNIFORM: ok &= p0 <= p1; break;
    case KILN_RANDOM_NORMAL: ok &= p1 >= 0; break;
    default: ok &= p0 >= 0 && p0 <= 1; break;
    }
    if (!ok)
        return BAD(r, f->at, "the distribution's parameters %g and %g are out of range", p0, p1);
    if (f->dtype != lv->g->floatx)
        return BAD(r, f->at, "a random node is %s, not %s", kiln_dtype_name(lv->g->floatx), kiln_dtype_name(f->dtype));
    kiln_node_rec rec = kiln_rec(KILN_OP_RANDOM, lv->g->floatx, 1, f->in);
    rec.shape = f->shape;
    rec.attr = *a;
    *out = (kiln_node){kiln_graph_add_raw(lv->g, &rec)};
    return KILN_OK;
}

/* Make f's node with the builder of its op (or, for ops without one, the
** checks graph.h states, then the internal builder). */
static enum kiln_status build(reader *r, level *lv, filenode *f, kiln_node *out)
{
    kiln_graph *g = lv->g;
    const kiln_attr *at = &f->attr;
    kiln_node a = {f->n_in > 0 ? f->in[0] : -1}, b = {f->n_in > 1 ? f->in[1] : -1};
    bool in_body = lv->outer != NULL;
    enum kiln_op op = f->op;
    char sa[KILN_SHAPE_STR_MAX];
    int64_t x = 0;
    enum kiln_status st;
    *out = KILN_NODE_NONE;
    switch (op) {
    case KILN_OP_INPUT:
    case KILN_OP_PARAM:
    case KILN_OP_STATE:
        if (in_body)
            return BAD(r, f->at, "a scan body reads %ss only through its arguments", kiln_op_info_of(op)->name);
        if (op == KILN_OP_INPUT) {
            *out = kiln_graph_input(g, f->name, f->dtype, f->shape.rank, f->shape.dims);
            return KILN_OK;
        }
        if ((kiln_param_kind(r->entries[f->param].param) == KILN_STORE_STATE) != (op == KILN_OP_STATE))
            return BAD(r, f->at, "its entry /parameters/%lld is a %s", (long long)f->param,
                       op == KILN_OP_STATE ? "parameter" : "state");
        r->entry_used[f->param] = 1;
        *out = kiln_graph_store_leaf(g, r->entries[f->param].param);
        return KILN_OK;
    case KILN_OP_ARG: {
        int64_t k = at->i[0];
        if (!in_body)
            return BAD(r, f->at, "an arg node outside a scan body");
        if (k < 0 || k >= lv->n_args || lv->arg_seen[k])
            return BAD(r, f->at, "attr.index %lld: %s", (long long)k,
                       k < 0 || k >= lv->n_args ? "the scan has no such argument" : "another arg node has it");
        const argtype *t = &lv->args[k];
        if (f->dtype != t->dtype || !shape_same(g, &f->shape, lv->outer, &t->shape))
            return BAD(r, f->at, "argument %lld is %s %s in the scan, not %s", (long long)k, kiln_dtype_name(t->dtype),
                       kiln_shape_str(lv->outer, &t->shape, sa, sizeof sa), kiln_dtype_name(f->dtype));
        lv->arg_seen[k] = 1;
        kiln_node_rec rec = kiln_rec(KILN_OP_ARG, f->dtype, 0, NULL);
        rec.shape = f->shape;
        rec.attr.i[0] = k;
        *out = (kiln_node){kiln_graph_add_raw(g, &rec)};
        return KILN_OK;
    }
    case KILN_OP_CONST: *out = kiln_expr_constant(g, at->f[0]); return KILN_OK;
    case KILN_OP_SYMBOL: {
        kiln_node_rec rec = kiln_rec(KILN_OP_SYMBOL, g->floatx, 0, NULL);
        rec.attr.i[0] = at->i[0]; /* a symbol's code: read_attrs found its name */
        *out = (kiln_node){kiln_graph_add_raw(g, &rec)};
        return KILN_OK;
    }
    case KILN_OP_CLIP: *out = kiln_expr_clip(g, a, at->f[0], at->f[1]); return KILN_OK;
    case KILN_OP_CAST: *out = kiln_expr_cast(g, a, f->dtype); return KILN_OK;
    case KILN_OP_BROADCAST: *out = kiln_expr_broadcast(g, a, f->shape.rank, f->shape.dims); return KILN_OK;
    case KILN_OP_ONEHOT: *out = kiln_expr_onehot(g, a, at->i[0]); return KILN_OK;
    case KILN_OP_SELECT: *out = kiln_expr_select(g, a, b, (kiln_node){f->in[2]}); return KILN_OK;
    case KILN_OP_SUM:
    case KILN_OP_MAX: *out = kiln_expr_reduce_mask(g, op, a, at->i[0]); return KILN_OK;
    case KILN_OP_MATMUL: *out = kiln_expr_matmul_t(g, a, b, at->i[0] != 0, at->i[1] != 0); return KILN_OK;
    case KILN_OP_TRANSPOSE: {
        int perm[KILN_MAX_RANK];
        for (int k = 0; k < f->shape.rank; k++)
            perm[k] = (int)at->i[k]; /* 0..KILN_MAX_RANK-1 (read_attrs) */
        *out = kiln_expr_permute(g, a, f->shape.rank, perm);
        return KILN_OK;
    }
    case KILN_OP_RESHAPE: *out = kiln_expr_reshape(g, a, f->shape.rank, f->shape.dims); return KILN_OK;
    case KILN_OP_SLICE: {
        int64_t axis = at->i[0], start = at->i[1], step = at->i[3], count = 0, stop = 0;
        if (axis < 0 || axis >= KILN_MAX_RANK)
            return BAD(r, f->at, "attr.axis is %lld", (long long)axis);
        if ((st = const_dim(r, f, (int)axis, "a slice", &count)))
            return st;
        if (start < 0 || step < 1 || !kiln_mul_i64(count - 1, step, &stop) || !kiln_add_i64(stop, start, &stop) ||
            !kiln_add_i64(stop, 1, &stop))
            return BAD(r, f->at, "start %lld, step %lld and %lld elements pass the largest index",
                       (long long)start, (long long)step, (long long)count);
        *out = kiln_expr_slice(g, a, (int)axis, start, stop, step);
        return KILN_OK;
    }
    case KILN_OP_CONCAT: {
        kiln_node parts[MAX_NODE_INPUTS];
        for (int k = 0; k < f->n_in; k++)
            parts[k] = (kiln_node){f->in[k]};
        if (at->i[0] < 0 || at->i[0] >= KILN_MAX_RANK)
            return BAD(r, f->at, "attr.axis is %lld", (long long)at->i[0]);
        *out = kiln_expr_concat(g, parts, f->n_in, (int)at->i[0]);
        return KILN_OK;
    }
    case KILN_OP_REVERSE:
        if (at->i[0] < 0 || at->i[0] >= KILN_MAX_RANK)
            return BAD(r, f->at, "attr.axis is %lld", (long long)at->i[0]);
        *out = kiln_expr_reverse(g, a, (int)at->i[0]);
        return KILN_OK;
    case KILN_OP_PAD: {
        /* zeros around a along axis: the output's dims are a's but there */
        int64_t axis = at->i[0], before = at->i[1], total = 0;
        const kiln_node_rec *ra = &g->nodes[a.id];
        if (!is_value(g, a.id) || axis < 0 || axis >= ra->shape.rank)
            return BAD(r, f->at, "attr.axis %lld is not an axis of the input", (long long)axis);
        if ((st = const_dim(r, f, (int)axis, "a pad", &total)))
            return st;
        if (ra->shape.dims[axis] < 0 || before < 0 || before > total - ra->shape.dims[axis])
            return BAD(r, f->at, "the input %s does not fit %lld after %lld zeros in %lld",
                       kiln_shape_str(g, &ra->shape, sa, sizeof sa), (long long)ra->shape.dims[axis],
                       (long long)before, (long long)total);
        *out = kiln_expr_pad(g, a, (int)axis, before, total);
        return KILN_OK;
    }
    case KILN_OP_SOFTMAX: *out = kiln_expr_softmax(g, a); return KILN_OK;
    case KILN_OP_LOGSOFTMAX: *out = kiln_expr_log_softmax(g, a); return KILN_OK;
    case KILN_OP_ARGMAX: *out = kiln_expr_argmax(g, a); return KILN_OK;
    case KILN_OP_PICK: *out = kiln_expr_pick(g, a, b); return KILN_OK;
    case KILN_OP_GATHER: *out = kiln_expr_gather(g, a, b); return KILN_OK;
    case KILN_OP_SOFTMAX_XENT: *out = kiln_expr_softmax_xent(g, a, b); return KILN_OK;
    case KILN_OP_SCATTER_ADD: {
        /* gather's gradient: upd (idx.., ..) into rows (V, ..) */
        const kiln_node_rec *ru = &g->nodes[a.id], *ri = &g->nodes[b.id];
        bool ok = is_value(g, a.id) && is_value(g, b.id) && ru->dtype == g->floatx && ri->dtype == KILN_DTYPE_I32 &&
                  ri->shape.rank <= ru->shape.rank && 1 + ru->shape.rank - ri->shape.rank <= KILN_MAX_RANK;
        for (int k = 0; ok && k < ri->shape.rank; k++)
            ok = ri->shape.dims[k] == ru->shape.dims[k];
        if (!ok)
            return BAD(r, f->at, "needs %s updates (idx.., ..) and int32 indices (idx..)", kiln_dtype_name(g->floatx));
        if ((st = const_dim(r, f, 0, "scatter_add's rows", &x)))
            return st;
        *out = kiln_expr_scatter_add(g, a, b, x);
        return KILN_OK;
    }
    case KILN_OP_SPLIT: {
        int64_t sizes[MAX_SCAN_RESULTS], axis = at->i[0];
        if (axis < 0 || axis >= KILN_MAX_RANK || f->n_out > 64)
            return BAD(r, f->at, "attr.axis %lld, %d pieces", (long long)axis, f->n_out);
        for (int k = 0; k < f->n_out; k++)
            sizes[k] = axis < f->outs[k].shape.rank ? f->outs[k].shape.dims[axis] : 0;
        *out = kiln_expr_split(g, a, (int)axis, f->n_out, sizes);
        return KILN_OK;
    }
    case KILN_OP_PROJ:
        if (at->i[0] < 0 || at->i[0] >= MAX_SCAN_RESULTS || g->nodes[a.id].n_out == 0)
            return BAD(r, f->at, "reads result %lld of node %d, which is not a tuple with that result",
                       (long long)at->i[0], (int)a.id);
        *out = kiln_expr_result(g, a, (int)at->i[0]);
        return KILN_OK;
    case KILN_OP_SCAN: return load_scan(r, lv, f, out);
    case KILN_OP_RANDOM:
        if (!is_random_state(lv, a.id))
            return BAD(r, f->at, "input 0 (node %d) is not a random state", (int)a.id);
        if ((st = take_stream(r, f, at->i[1])))
            return st;
        if (in_body)
            return body_random(r, lv, f, out);
        g->n_streams = at->i[1]; /* the builder takes the next stream */
        if (at->i[0] == KILN_RANDOM_UNIFORM)
            *out = kiln_expr_random_uniform(g, a, f->shape.rank, f->shape.dims, at->f[0], at->f[1]);
        else if (at->i[0] == KILN_RANDOM_NORMAL)
            *out = kiln_expr_random_normal(g, a, f->shape.rank, f->shape.dims, at->f[0], at->f[1]);
        else
            *out = kiln_expr_random_bernoulli(g, a, f->shape.rank, f->shape.dims, at->f[0]);
        return KILN_OK;
    case KILN_OP_RNG_NEXT:
        if (!is_random_state(lv, a.id))
            return BAD(r, f->at, "input 0 (node %d) is not a random state", (int)a.id);
        *out = kiln_expr_rng_next(g, a);
        return KILN_OK;
    default:
        break;
    }
    if (kiln_op_info_of(op)->cls == KILN_CLASS_UNARY) { /* neg .. step: cast, broadcast, onehot are above */
        *out = kiln_expr_unary_op(g, op, a);
        return KILN_OK;
    }
    if (kiln_op_info_of(op)->cls == KILN_CLASS_BINARY) {
        *out = kiln_expr_binary_op(g, op, a, b);
        return KILN_OK;
    }
    return BAD(r, f->at, "no reader for this op"); /* never: every op is above */
}

/* The builder's node against the file's record: one new node of the
** record's type and attributes. */
static enum kiln_status compare(reader *r, level *lv, const filenode *f, int32_t before, kiln_node made)
{
    kiln_graph *g = lv->g;
    char sa[KILN_SHAPE_STR_MAX], sb[KILN_SHAPE_STR_MAX];
    if (made.id != before || g->n_nodes != before + 1)
        return BAD(r, f->at, "the builders make no such node from these inputs and attributes (they give %s)",
                   made.id < before ? "an input back unchanged" : "more than one node");
    const kiln_node_rec *n = &g->nodes[made.id];
    if (n->n_out != f->n_out)
        return BAD(r, f->at, "%d results in the file, %d from its inputs", f->n_out, n->n_out);
    for (int k = 0; k < n->n_out; k++)
        if (n->outs[k].dtype != f->outs[k].dtype || !kiln_shape_equal(&n->outs[k].shape, &f->outs[k].shape))
            return BAD(r, f->at, "result %d is %s %s in the file, %s %s from its inputs", k,
                       kiln_dtype_name(f->outs[k].dtype), kiln_shape_str(g, &f->outs[k].shape, sa, sizeof sa),
                       kiln_dtype_name(n->outs[k].dtype), kiln_shape_str(g, &n->outs[k].shape, sb, sizeof sb));
    if (!n->n_out && (n->dtype != f->dtype || !kiln_shape_equal(&n->shape, &f->shape)))
        return BAD(r, f->at, "%s %s in the file, %s %s from its inputs", kiln_dtype_name(f->dtype),
                   kiln_shape_str(g, &f->shape, sa, sizeof sa), kiln_dtype_name(n->dtype),
                   kiln_shape_str(g, &n->shape, sb, sizeof sb));
    for (int k = 0; k < KILN_ATTR_INTS; k++)
        if (f->has_attr[k] && n->attr.i[k] != f->attr.i[k] && !(f->op == KILN_OP_SCAN && k == KILN_SCAN_BODY))
            return BAD(r, f->at, "attribute i[%d] is %lld in the file, %lld from its inputs", k,
                       (long long)f->attr.i[k], (long long)n->attr.i[k]);
    for (int k = 0; k < 2; k++)
        if (f->has_attr[KILN_ATTR_INTS + k] && memcmp(&n->attr.f[k], &f->attr.f[k], sizeof(double)) != 0)
            return BAD(r, f->at, "attribute f[%d] is %g in the file, %g from its inputs", k, f->attr.f[k],
                       n->attr.f[k]);
    return KILN_OK;
}

/* Name, owner and roles of node id from the file. */
static enum kiln_status annotate(reader *r, level *lv, const filenode *f, int32_t id)
{
    kiln_graph *g = lv->g;
    if (kiln_graph_set_name_raw(g, id, f->name) || kiln_graph_set_owner(g, id, f->owner))
        return fail(r, g->err.status, f->at, "%s", g->err.msg);
    kiln_node_rec *n = &g->nodes[id];
    n->roles = f->roles;
    if (n->op == KILN_OP_STATE && (n->roles & KILN_ROLE_RANDOM_STATE) && !is_rng_words(g, id))
        return BAD(r, f->at, "a random state is 4 int32 (a key and a counter)");
    return KILN_OK;
}

static enum kiln_status load_updates(reader *r, level *lv, json_t *a)
{
    kiln_graph *g = lv->g;
    char at[200];
    snprintf(at, sizeof at, "%s/updates", lv->at);
    if (!a)
        return KILN_OK;
    if (!json_is_array(a))
        return BAD(r, at, "not an array");
    size_t i;
    json_t *u;
    json_array_foreach(a, i, u) {
        static const char *const keys[] = {"target", "value", "on_read", NULL};
        int64_t t, v;
        bool on_read = false;
        enum kiln_status st;
        snprintf(at, sizeof at, "%s/updates/%zu", lv->at, i);
        if (!json_is_object(u))
            return BAD(r, at, "not an object");
        if ((st = keys_known(r, at, u, keys)) ||
            (st = get_int(r, at, "target", json_object_get(u, "target"), 0, g->n_nodes - 1, &t)) ||
            (st = get_int(r, at, "value", json_object_get(u, "value"), 0, g->n_nodes - 1, &v)) ||
            (json_object_get(u, "on_read") && (st = get_bool(r, at, "on_read", json_object_get(u, "on_read"), &on_read))))
            return st;
        if (!is_value(g, (int32_t)v))
            return BAD(r, at, "the value, node %lld, is a tuple", (long long)v);
        if (kiln_graph_add_update(g, (int32_t)t, (int32_t)v, on_read))
            return BAD(r, at, "%s", g->err.msg);
    }
    return KILN_OK;
}

static enum kiln_status load_results(reader *r, level *lv, json_t *a)
{
    kiln_graph *g = lv->g;
    char at[200];
    snprintf(at, sizeof at, "%s/results", lv->at);
    if (!json_is_array(a) || json_array_size(a) > MAX_SCAN_RESULTS)
        return BAD(r, at, "%s, expected an array of at most %d node ids", a ? "not an array" : "missing",
                   MAX_SCAN_RESULTS);
    size_t n = json_array_size(a);
    if (!(g->results = malloc(sizeof *g->results * (n + 1))))
        return fail(r, KILN_ERR_NOMEM, at, "no memory");
    for (size_t k = 0; k < n; k++) {
        int64_t id;
        enum kiln_status st = get_int(r, at, "a result", json_array_get(a, k), 0, g->n_nodes - 1, &id);
        if (st)
            return st;
        if (!is_value(g, (int32_t)id))
            return BAD(r, at, "result %zu is node %lld, a tuple", k, (long long)id);
        g->results[k] = (int32_t)id;
        g->n_results = (int32_t)k + 1;
    }
    return KILN_OK;
}

/* The nodes of one graph (the top graph or a body), with its bodies as its
** scans reach them, then its updates (top) or results (body), and last the
** nodes' replaces (which may name later nodes). */
static enum kiln_status load_graph(reader *r, level *lv, json_t *o)
{
    static const char *const top_keys[] = {"nodes", "updates", "bodies", "streams", NULL};
    static const char *const body_keys[] = {"nodes", "results", "bodies", NULL};
    bool body = lv->outer != NULL;
    kiln_graph *g = lv->g;
    enum kiln_status st;
    if (!json_is_object(o))
        return BAD(r, lv->at, "%s, expected an object", o ? "not an object" : "missing");
    if ((st = keys_known(r, lv->at, o, body ? body_keys : top_keys)))
        return st;
    json_t *nodes = json_object_get(o, "nodes");
    lv->bodies = json_object_get(o, "bodies");
    if (!json_is_array(nodes) || (lv->bodies && !json_is_array(lv->bodies)))
        return BAD(r, lv->at, "nodes or bodies is not an array");
    size_t n = json_array_size(nodes), nb = json_array_size(lv->bodies);
    if (n > (size_t)INT32_MAX / 4)
        return BAD(r, lv->at, "%zu nodes", n);
    int64_t *replaces = malloc(sizeof *replaces * (n + 1));
    filenode *f = malloc(sizeof *f);
    lv->body_used = calloc(nb + 1, 1);
    if (!replaces || !f || !lv->body_used) {
        st = fail(r, KILN_ERR_NOMEM, lv->at, "no memory for %zu nodes", n);
        goto out;
    }
    for (size_t i = 0; i < n && !st; i++) {
        memset(f, 0, sizeof *f);
        int32_t before = g->n_nodes;
        kiln_node made = KILN_NODE_NONE;
        if (!(st = read_node(r, lv, (int32_t)i, json_array_get(nodes, i), f, &replaces[i])) &&
            !(st = build(r, lv, f, &made))) {
            if (g->err.status) /* a builder's (or kiln_graph_add's) message */
                st = fail(r, g->err.status == KILN_ERR_NOMEM ? KILN_ERR_NOMEM : KILN_ERR_FORMAT, f->at, "%s",
                          g->err.msg);
            else if (!(st = compare(r, lv, f, before, made)))
                st = annotate(r, lv, f, made.id);
        }
        free(f->outs);
    }
    for (size_t b = 0; b < nb && !st; b++)
        if (!lv->body_used[b])
            st = BAD(r, lv->at, "body %zu is no scan's body", b);
    if (!st)
        st = body ? load_results(r, lv, json_object_get(o, "results")) : load_updates(r, lv, json_object_get(o, "updates"));
    for (size_t i = 0; i < n && !st; i++)
        if (replaces[i] >= 0) {
            if (replaces[i] >= g->n_nodes || replaces[i] == (int64_t)i) {
                char at[200];
                snprintf(at, sizeof at, "%s/nodes/%zu", lv->at, i);
                st = BAD(r, at, "replaces node %lld, %s", (long long)replaces[i],
                         replaces[i] == (int64_t)i ? "itself" : "which the graph does not have");
            } else {
                g->nodes[i].replaces = (int32_t)replaces[i];
            }
        }
    if (!st && !body) {
        json_t *sv = json_object_get(o, "streams");
        int64_t streams = 0;
        if (sv && !(st = get_int(r, lv->at, "streams", sv, r->n_streams, MAX_STREAMS, &streams)))
            g->n_streams = streams;
        else if (!sv)
            g->n_streams = r->n_streams;
    }
out:
    free(replaces);
    free(f);
    free(lv->body_used);
    lv->body_used = NULL;
    return st;
}

/* The symbols: B and T, then the user's in order, each at the code it had. */
static enum kiln_status read_symbols(reader *r, json_t *a)
{
    if (!json_is_array(a) || json_array_size(a) < 2 || json_array_size(a) > KILN_MAX_SYMBOLS)
        return BAD(r, "/symbols", "not an array of 2 to %d names", KILN_MAX_SYMBOLS);
    for (size_t k = 0; k < json_array_size(a); k++) {
        const char *s = json_string_value(json_array_get(a, k));
        if (!s)
            return BAD(r, "/symbols", "entry %zu is not a string", k);
        if (k < 2 ? strcmp(s, k ? "T" : "B") != 0 : kiln_graph_symbol(r->top, s) != -(int64_t)k - 1)
            return BAD(r, "/symbols", "entry %zu is \"%.40s\": %s", k, s,
                       k < 2 ? "the first two are B and T" : r->top->err.status ? r->top->err.msg : "a symbol twice");
    }
    return KILN_OK;
}

static enum kiln_status read_roots(reader *r, json_t *a, kiln_netjson_result *res)
{
    if (!json_is_array(a) || json_array_size(a) < 1 || json_array_size(a) > MAX_ROOTS)
        return BAD(r, "/roots", "not an array of 1 to %d roots", MAX_ROOTS);
    size_t n = json_array_size(a), bytes = 0;
    const char *names[MAX_ROOTS];
    kiln_node nodes[MAX_ROOTS];
    for (size_t k = 0; k < n; k++) {
        static const char *const keys[] = {"name", "node", NULL};
        json_t *o = json_array_get(a, k);
        char at[64];
        int64_t id;
        enum kiln_status st;
        snprintf(at, sizeof at, "/roots/%zu", k);
        if (!json_is_object(o))
            return BAD(r, at, "not an object");
        if ((st = keys_known(r, at, o, keys)) ||
            (st = get_str(r, at, "name", json_object_get(o, "name"), KILN_MAX_NAME, true, &names[k])) ||
            (st = get_int(r, at, "node", json_object_get(o, "node"), 0, r->top->n_nodes - 1, &id)))
            return st;
        if (!is_value(r->top, (int32_t)id))
            return BAD(r, at, "node %lld is a tuple", (long long)id);
        for (size_t j = 0; j < k; j++)
            if (strcmp(names[j], names[k]) == 0)
                return BAD(r, at, "the name \"%s\" is root %zu's too", names[k], j);
        nodes[k] = (kiln_node){(int32_t)id};
        bytes += strlen(names[k]) + 1;
    }
    res->root_names = malloc(n * sizeof(char *) + bytes);
    res->roots = malloc(n * sizeof *res->roots);
    if (!res->root_names || !res->roots)
        return fail(r, KILN_ERR_NOMEM, "/roots", "no memory");
    char *s = (char *)(res->root_names + n);
    for (size_t k = 0; k < n; k++) {
        res->root_names[k] = s;
        s = stpcpy(s, names[k]) + 1;
        res->roots[k] = nodes[k];
    }
    res->n_roots = (int)n;
    return KILN_OK;
}

enum kiln_status kiln_netjson_read(const char *text, size_t len, const kiln_netjson_reader *h,
                                   kiln_netjson_result *res, kiln_err *err)
{
    static const char *const keys[] = {"format", "version",    "kiln",  "floatx", "symbols",
                                       "parameters", "graph", "roots",  NULL};
    memset(res, 0, sizeof *res);
    kiln_err_clear(err);
    reader *r = calloc(1, sizeof *r);
    if (!r)
        return kiln_err_set(err, KILN_ERR_NOMEM, "%s: no memory", h->where);
    r->hooks = h;
    r->err = err;
    json_error_t je;
    enum kiln_status st = KILN_OK;
    /* 1. JSON, the format and its version, before anything else. */
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    const char *format = json_string_value(json_object_get(doc, "format"));
    json_t *version = json_object_get(doc, "version");
    enum kiln_dtype floatx;
    if (!doc)
        st = BAD(r, "/", "not JSON: %s (line %d, column %d)", je.text, je.line, je.column);
    else if (!json_is_object(doc))
        st = BAD(r, "/", "not a JSON object");
    else if (!format || strcmp(format, KILN_NETJSON_FORMAT) != 0)
        st = BAD(r, "/format", "%s%.40s%s, expected \"%s\"", format ? "\"" : "", format ? format : "missing",
                 format ? "\"" : "", KILN_NETJSON_FORMAT);
    else if (!json_is_integer(version) || json_integer_value(version) != KILN_NETWORK_FORMAT_VERSION)
        st = BAD(r, "/version", "format version %s%lld; kiln %s reads version %d", json_is_integer(version) ? "" : "(not an integer) ",
                 json_is_integer(version) ? (long long)json_integer_value(version) : 0LL, KILN_VERSION,
                 KILN_NETWORK_FORMAT_VERSION);
    else if (!(st = keys_known(r, "/", doc, keys)))
        st = get_dtype(r, "/floatx", "floatx", json_object_get(doc, "floatx"), &floatx);
    if (!st && floatx == KILN_DTYPE_I32)
        st = BAD(r, "/floatx", "int32 is not a float type");
    if (!st && json_object_get(doc, "kiln") && !json_is_string(json_object_get(doc, "kiln")))
        st = BAD(r, "/kiln", "not a string");
    if (!st && !(r->top = kiln_graph_create(floatx)))
        st = fail(r, KILN_ERR_NOMEM, "/", "no memory for a graph");
    /* 2. Symbols, entries (checked, then made), the graph, the roots. */
    if (!st)
        st = read_symbols(r, json_object_get(doc, "symbols"));
    if (!st)
        st = read_entries(r, json_object_get(doc, "parameters"));
    if (!st) {
        level top = {.g = r->top};
        snprintf(top.at, sizeof top.at, "/graph");
        st = load_graph(r, &top, json_object_get(doc, "graph"));
    }
    for (int k = 0; k < r->n_entries && !st; k++)
        if (!r->entry_used[k]) {
            char at[64];
            snprintf(at, sizeof at, "/parameters/%d", k);
            st = BAD(r, at, "no node reads this entry");
        }
    if (!st)
        st = read_roots(r, json_object_get(doc, "roots"), res);
    if (!st) {
        res->graph = r->top;
        r->top = NULL;
    } else {
        kiln_netjson_result_free(res);
    }
    kiln_graph_destroy(r->top);
    json_decref(doc);
    free(r->entries);
    free(r->entry_used);
    free(r);
    return st;
}

void kiln_netjson_result_free(kiln_netjson_result *res)
{
    if (!res)
        return;
    kiln_graph_destroy(res->graph);
    free(res->root_names);
    free(res->roots);
    memset(res, 0, sizeof *res);
}
