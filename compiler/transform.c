/* transform.c: graph transformations that return a new graph: Blocks'
** ComputationGraph.replace (kiln_graph_replace) and apply_dropout
** (kiln_apply_dropout).
**
** Semantics, as Blocks' replace: the replacements run one at a time, in the
** graph order of the nodes they replace (Blocks walks cg.variables).
** Replacing `from` by `to` is theano.clone with replace={from: to} applied
** to the outputs, the values of the graph's updates and every replacement
** still to come (its `from` and its `to`): anything that reads `from` is
** rebuilt to read `to`, but `to` itself is not entered, so inside its own
** replacement a node stands for itself (dropout's x * mask keeps x). A
** replacement whose `from` is not an ancestor of the outputs is skipped, as
** Blocks skips it (with a warning there).
**
** How. The nodes the outputs need are copied into a work graph. Each step
** walks the work graph's live nodes in id order with a memo (the node's
** rewritten id) and appends a copy of every node an input of which changed;
** the work graph only grows, so ids stay topological, and a copy keeps its
** record (a replacement has the type of what it replaces, so no shape
** changes and nothing is re-inferred). The step marks `to` with `replaces`
** = `from` as it stood. Last, what the new outputs need is copied into the
** result: their ancestors, the updates whose targets they read, the nodes
** that kept nodes replace (so kiln_graph_node_replacement_of names a node
** of the new graph, with its name, owner and roles) and the auxiliary
** variables of their bricks, as they were (Blocks keeps the annotations of
** the cloned variables, and replace rewrites only the outputs). The work
** graph's dead nodes never reach the user.
** Rejected: rebuilding through the expression builders (shape inference
** and rewrites again, for records that cannot change), and a single
** simultaneous substitution (it cannot give Blocks' answer for dependent
** replacements: {y: x * 2, z: y * 3} rewrites z's own replacement).
**
** The new graph is a user graph (no CSE, no rewrites): every node the user
** had stays a node, with its name, owner and roles. Parameters and states
** are the same store entries; random states the source made stay the
** source's (the new graph borrows them), those made here are the new
** graph's. */
#include <stdlib.h>
#include <string.h>

#include "compiler/graph.h"

/* Whether a marked node other than an auxiliary variable has this owner. */
static bool owner_marked(const kiln_graph *g, const unsigned char *live, const char *owner)
{
    for (int32_t id = 0; id < g->n_nodes; id++) /* owners are interned: one pointer per path */
        if (live[id] && g->nodes[id].owner == owner && !(g->nodes[id].roles & KILN_ROLE_AUXILIARY))
            return true;
    return false;
}

/* Mark what the marked nodes need: their inputs, the values of updates
** whose targets are marked and, with keep, what a graph keeps beside its
** outputs' ancestors: the nodes that marked nodes replace, and the
** auxiliary variables of the owners of marked nodes (Blocks' graph keeps
** its bricks' annotations; kiln_graph_filter finds them there). Repeats
** until nothing changes (an update's value or a replaced node may lie after
** the node that needs it). */
static void mark_needed(const kiln_graph *g, unsigned char *live, bool keep)
{
    for (bool more = true; more;) {
        more = false;
        for (int32_t id = g->n_nodes - 1; id >= 0; id--) {
            if (!live[id])
                continue;
            const kiln_node_rec *r = &g->nodes[id];
            for (int k = 0; k < r->n_in; k++)
                live[r->in[k]] = 1;
            if (keep && r->replaces >= 0 && !live[r->replaces])
                live[r->replaces] = more = 1;
        }
        for (int32_t u = 0; u < g->n_updates; u++)
            if (live[g->updates[u].target] && !live[g->updates[u].value])
                live[g->updates[u].value] = more = 1;
        for (int32_t id = 0; keep && id < g->n_nodes; id++) {
            const kiln_node_rec *r = &g->nodes[id];
            if (!live[id] && (r->roles & KILN_ROLE_AUXILIARY) && r->owner && owner_marked(g, live, r->owner))
                live[id] = more = 1;
        }
    }
}

/* A new user graph holding src's marked nodes (in id order) and the
** updates among them; map[id] is the new id of src's node id, -1 if not
** copied. The dims, the symbols and the stream count come along. NULL with
** the error on err_g. */
static kiln_graph *copy_marked(kiln_graph *err_g, const kiln_graph *src, const unsigned char *live, int32_t *map)
{
    kiln_graph *dst = kiln_graph_create(src->floatx);
    if (!dst || !kiln_graph_copy_dims(dst, src)) {
        kiln_graph_destroy(dst);
        kiln_graph_fail(err_g, KILN_ERR_NOMEM, "graph transform: no memory for a graph of %d nodes", (int)src->n_nodes);
        return NULL;
    }
    dst->n_streams = src->n_streams;
    int32_t in[64 + 1];
    for (int32_t id = 0; id < src->n_nodes; id++) {
        map[id] = -1;
        if (!live[id])
            continue;
        kiln_node_rec rec = src->nodes[id];
        if (rec.n_in > (int)KILN_ARRAY_LEN(in)) { /* concat takes at most 64 */
            kiln_graph_destroy(dst);
            kiln_graph_fail(err_g, KILN_ERR_UNSUPPORTED, "graph transform: node %d has %d inputs", (int)id, rec.n_in);
            return NULL;
        }
        for (int k = 0; k < rec.n_in; k++)
            in[k] = map[rec.in[k]];
        rec.in = in;
        rec.replaces = -1; /* set below: it may name a later node */
        if (rec.op == KILN_OP_SCAN &&
            (rec.attr.i[KILN_SCAN_BODY] = kiln_scan_copy_body(dst, src, (int32_t)rec.attr.i[KILN_SCAN_BODY], false)) < 0)
            map[id] = -1;
        else
            map[id] = kiln_graph_add_raw(dst, &rec);
        if (map[id] < 0) {
            kiln_err_copy(&err_g->err, &dst->err, "graph transform: ");
            kiln_graph_destroy(dst);
            return NULL;
        }
    }
    for (int32_t id = 0; id < src->n_nodes; id++)
        if (map[id] >= 0 && src->nodes[id].replaces >= 0)
            dst->nodes[map[id]].replaces = map[src->nodes[id].replaces];
    for (int32_t u = 0; u < src->n_updates; u++) {
        int32_t t = map[src->updates[u].target], v = map[src->updates[u].value];
        if (t >= 0 && v >= 0 && kiln_graph_add_update(dst, t, v, src->updates[u].on_read) != KILN_OK) {
            kiln_err_copy(&err_g->err, &dst->err, "graph transform: ");
            kiln_graph_destroy(dst);
            return NULL;
        }
    }
    return dst;
}

/* ---- the rewriting ------------------------------------------------------ */

typedef struct rewrite {
    kiln_graph *w;       /* the work graph, which only grows */
    int32_t *outs;       /* the outputs, as they stand */
    int n_outs;
    int32_t *from, *to;  /* replacements still to come, as they stand, in order */
    int n;
    int32_t *memo;       /* per work node: its rewritten id */
    unsigned char *live; /* per work node: needed by what is still rewritten */
} rewrite;

/* Replacement i: everything live that reads from[i] (directly or not) is
** rebuilt to read to[i]. False with the error on the work graph. */
static bool rewrite_step(rewrite *rw, int i)
{
    kiln_graph *w = rw->w;
    int32_t key = rw->from[i], val = rw->to[i], n = w->n_nodes;
    if (key == val)
        return true;
    /* 1. What still matters: outputs, update values, later replacements. */
    memset(rw->live, 0, (size_t)n);
    for (int k = 0; k < rw->n_outs; k++)
        rw->live[rw->outs[k]] = 1;
    for (int j = i + 1; j < rw->n; j++)
        rw->live[rw->from[j]] = rw->live[rw->to[j]] = 1;
    for (int32_t u = 0; u < w->n_updates; u++)
        rw->live[w->updates[u].value] = 1;
    for (int32_t id = n - 1; id >= 0; id--)
        if (rw->live[id])
            for (int k = 0; k < w->nodes[id].n_in; k++)
                rw->live[w->nodes[id].in[k]] = 1;
    if (!rw->live[key]) /* not in the graph (any more): nothing to replace */
        return true;
    /* 2. The memo: key -> val; a live reader of a changed node is copied. */
    for (int32_t id = 0; id < n; id++)
        rw->memo[id] = id;
    rw->memo[key] = val;
    int32_t in[64 + 1];
    for (int32_t id = key + 1; id < n; id++) {
        const kiln_node_rec *r = &w->nodes[id];
        bool changed = false;
        if (!rw->live[id])
            continue;
        for (int k = 0; k < r->n_in; k++)
            changed |= rw->memo[r->in[k]] != r->in[k];
        if (!changed)
            continue;
        kiln_node_rec rec = *r;
        for (int k = 0; k < rec.n_in; k++)
            in[k] = rw->memo[rec.in[k]];
        rec.in = in;
        if ((rw->memo[id] = kiln_graph_add_raw(w, &rec)) < 0)
            return false;
    }
    /* 3. to stands for from; everything still to come reads the new ids.
    ** An update's target is a leaf and stays (a replaced parameter keeps
    ** its own update, which then runs only if something still reads it). */
    w->nodes[val].replaces = key;
    for (int k = 0; k < rw->n_outs; k++)
        rw->outs[k] = rw->memo[rw->outs[k]];
    for (int j = i + 1; j < rw->n; j++) {
        rw->from[j] = rw->memo[rw->from[j]];
        rw->to[j] = rw->memo[rw->to[j]];
    }
    for (int32_t u = 0; u < w->n_updates; u++)
        w->updates[u].value = rw->memo[w->updates[u].value];
    return true;
}

/* Sort the replacements by what they replace (graph order, as Blocks'
** cg.variables); insertion sort: replacements are few. */
static void sort_by_from(int32_t *from, int32_t *to, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && from[j - 1] > from[j]; j--) {
            int32_t f = from[j], t = to[j];
            from[j] = from[j - 1];
            to[j] = to[j - 1];
            from[j - 1] = f;
            to[j - 1] = t;
        }
}

/* Check the outputs (n >= 1 valid nodes) and that out and new_outputs are
** given. */
static enum kiln_status check_outputs(kiln_graph *g, const kiln_node *outputs, int n_outputs, kiln_graph **out,
                                      const kiln_node *new_outputs, const char *what)
{
    if (g->err.status)
        return g->err.status; /* a builder failed: its message stays */
    if (!out || !new_outputs || n_outputs < 1 || !outputs) {
        kiln_graph_fail(g, KILN_ERR_ARG, "%s: %s", what,
                        !out ? "new_graph is NULL" : !new_outputs ? "new_outputs is NULL"
                        : !outputs ? "outputs is NULL" : "needs at least one output");
        return KILN_ERR_ARG;
    }
    for (int k = 0; k < n_outputs; k++)
        if (!kiln_graph_check(g, outputs[k], what))
            return g->err.status;
    return KILN_OK;
}

/* The work graph: what outputs[], extra[] and the updates they read need
** from g. map (g->n_nodes entries) takes the work ids. */
static kiln_graph *work_graph(kiln_graph *g, const kiln_node *outputs, int n_outputs, const kiln_node *extra,
                              int n_extra, int32_t *map)
{
    unsigned char *live = calloc((size_t)g->n_nodes + 1, 1);
    if (!live) {
        kiln_graph_fail(g, KILN_ERR_NOMEM, "graph transform: no memory");
        return NULL;
    }
    for (int k = 0; k < n_outputs; k++)
        live[outputs[k].id] = 1;
    for (int k = 0; k < n_extra; k++)
        live[extra[k].id] = 1;
    mark_needed(g, live, true);
    kiln_graph *w = copy_marked(g, g, live, map);
    free(live);
    return w;
}

/* Whether work node id is needed by the outputs (rw->outs) or the updates
** they read: Blocks replaces only what is in cg.variables. */
static void mark_outputs(const rewrite *rw, unsigned char *live)
{
    memset(live, 0, (size_t)rw->w->n_nodes);
    for (int k = 0; k < rw->n_outs; k++)
        live[rw->outs[k]] = 1;
    mark_needed(rw->w, live, false);
}

/* Run the replacements on the work graph and copy the result out. from and
** to are work ids (sorted here); outs too. Takes ownership of w. */
static enum kiln_status finish(kiln_graph *g, kiln_graph *w, int32_t *outs, int n_outs, int32_t *from, int32_t *to,
                               int n, kiln_graph **out, kiln_node *new_outputs)
{
    enum kiln_status st = KILN_OK;
    rewrite rw = {.w = w, .outs = outs, .n_outs = n_outs, .from = from, .to = to, .n = n};
    int32_t *map = NULL;
    unsigned char *keep = NULL;
    /* 1. Only replacements of nodes the outputs need, in graph order. */
    rw.live = calloc((size_t)w->n_nodes + 1, 1);
    if (!rw.live)
        goto nomem;
    mark_outputs(&rw, rw.live);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (from[i] >= 0 && rw.live[from[i]]) {
            from[m] = from[i];
            to[m++] = to[i];
        }
    rw.n = m;
    sort_by_from(from, to, m);
    /* 2. One replacement at a time; the work graph grows. */
    for (int i = 0; i < m; i++) {
        unsigned char *live = realloc(rw.live, (size_t)w->n_nodes + 1);
        int32_t *memo = realloc(rw.memo, ((size_t)w->n_nodes + 1) * sizeof *memo);
        if (live)
            rw.live = live;
        if (memo)
            rw.memo = memo;
        if (!live || !memo)
            goto nomem;
        if (!rewrite_step(&rw, i)) {
            st = kiln_err_copy(&g->err, &w->err, "graph transform: ");
            goto out;
        }
    }
    /* 3. The result: what the new outputs need. */
    keep = calloc((size_t)w->n_nodes + 1, 1);
    map = malloc(((size_t)w->n_nodes + 1) * sizeof *map);
    if (!keep || !map)
        goto nomem;
    for (int k = 0; k < n_outs; k++)
        keep[outs[k]] = 1;
    mark_needed(w, keep, true);
    kiln_graph *res = copy_marked(g, w, keep, map);
    if (!res) {
        st = g->err.status;
        goto out;
    }
    /* random states made for this graph are its own */
    res->owned = w->owned;
    res->n_owned = w->n_owned;
    res->cap_owned = w->cap_owned;
    w->owned = NULL;
    w->n_owned = w->cap_owned = 0;
    for (int k = 0; k < n_outs; k++)
        new_outputs[k] = (kiln_node){map[outs[k]]};
    *out = res;
    goto out;
nomem:
    kiln_graph_fail(g, KILN_ERR_NOMEM, "graph transform: no memory");
    st = KILN_ERR_NOMEM;
out:
    free(rw.live);
    free(rw.memo);
    free(keep);
    free(map);
    kiln_graph_destroy(w);
    return st;
}

/* Check replacement pairs: valid nodes, from[] distinct, from and to of one
** dtype and shape. */
static enum kiln_status check_pairs(kiln_graph *g, const kiln_node *from, const kiln_node *to, int n,
                                    const char *what)
{
    char a[KILN_SHAPE_STR_MAX], b[KILN_SHAPE_STR_MAX];
    if (n < 0 || (n > 0 && (!from || !to))) {
        kiln_graph_fail(g, KILN_ERR_ARG, "%s: %d replacements%s", what, n, n < 0 ? "" : ", but from or to is NULL");
        return KILN_ERR_ARG;
    }
    for (int i = 0; i < n; i++) {
        if (!kiln_graph_check(g, from[i], what) || !kiln_graph_check(g, to[i], what))
            return g->err.status;
        const kiln_node_rec *f = &g->nodes[from[i].id], *t = &g->nodes[to[i].id];
        if (f->dtype != t->dtype || !kiln_shape_equal(&f->shape, &t->shape)) {
            kiln_graph_fail(g, KILN_ERR_SHAPE, "%s: node %d ('%s') is %s %s, its replacement node %d ('%s') is %s %s",
                            what, (int)from[i].id, f->name ? f->name : "", kiln_dtype_name(f->dtype),
                            kiln_shape_str(g, &f->shape, a, sizeof a), (int)to[i].id, t->name ? t->name : "",
                            kiln_dtype_name(t->dtype), kiln_shape_str(g, &t->shape, b, sizeof b));
            return KILN_ERR_SHAPE;
        }
        for (int j = 0; j < i; j++)
            if (from[j].id == from[i].id) {
                kiln_graph_fail(g, KILN_ERR_ARG, "%s: node %d ('%s') is replaced twice (replacements %d and %d)",
                                what, (int)from[i].id, f->name ? f->name : "", j, i);
                return KILN_ERR_ARG;
            }
    }
    return KILN_OK;
}

/* The checks both transforms begin with; *new_graph is NULL until one succeeds. */
static enum kiln_status check_call(kiln_graph *g, const kiln_node *outputs, int n_outputs, const kiln_node *from,
                                   const kiln_node *to, int n, kiln_graph **new_graph, const kiln_node *new_outputs,
                                   const char *what)
{
    if (!g)
        return KILN_ERR_ARG;
    if (new_graph)
        *new_graph = NULL;
    enum kiln_status st = check_outputs(g, outputs, n_outputs, new_graph, new_outputs, what);
    return st ? st : check_pairs(g, from, to, n, what);
}

/* What a transform makes in the work graph: to[i] for each from[i] (work
** ids; map takes g's ids to work ids). False with the error on w. */
typedef bool (*make_fn)(kiln_graph *w, const int32_t *map, const int32_t *from, int32_t *to, int n, const void *arg);

/* Both transforms: copy what the outputs and extra[] need into a work
** graph, let make build the replacements of from[] there, then rewrite and
** copy the result out (finish). */
static enum kiln_status transform(kiln_graph *g, const kiln_node *outputs, int n_outputs, const kiln_node *from,
                                  const kiln_node *extra, int n, make_fn make, const void *arg, kiln_graph **out,
                                  kiln_node *new_outputs)
{
    enum kiln_status st = KILN_OK;
    int32_t *map = malloc(sizeof *map * ((size_t)g->n_nodes + 1));
    int32_t *outs = malloc(sizeof *outs * ((size_t)n_outputs + 1));
    int32_t *wf = malloc(sizeof *wf * ((size_t)n + 1)), *wt = malloc(sizeof *wt * ((size_t)n + 1));
    kiln_graph *w = NULL;
    if (!map || !outs || !wf || !wt) {
        kiln_graph_fail(g, KILN_ERR_NOMEM, "graph transform: no memory");
        st = KILN_ERR_NOMEM;
        goto out;
    }
    if (!(w = work_graph(g, outputs, n_outputs, extra, n, map))) {
        st = g->err.status;
        goto out;
    }
    for (int k = 0; k < n_outputs; k++)
        outs[k] = map[outputs[k].id];
    for (int i = 0; i < n; i++)
        wf[i] = map[from[i].id]; /* -1: not needed by the outputs, skipped */
    if (!make(w, map, wf, wt, n, arg)) {
        st = kiln_err_copy(&g->err, &w->err, "graph transform: ");
        kiln_graph_destroy(w);
        goto out;
    }
    st = finish(g, w, outs, n_outputs, wf, wt, n, out, new_outputs);
out:
    free(map);
    free(outs);
    free(wf);
    free(wt);
    return st;
}

/* replace: to[] are nodes of g, copied into the work graph with it. */
static bool make_replace(kiln_graph *w, const int32_t *map, const int32_t *from, int32_t *to, int n, const void *arg)
{
    const kiln_node *given = arg;
    for (int i = 0; i < n; i++)
        to[i] = map[given[i].id];
    return true;
}

enum kiln_status kiln_graph_replace(kiln_graph *g, const kiln_node *outputs, int n_outputs, const kiln_node *from,
                                    const kiln_node *to, int n_replace, kiln_graph **new_graph,
                                    kiln_node *new_outputs)
{
    enum kiln_status st = check_call(g, outputs, n_outputs, from, to, n_replace, new_graph, new_outputs,
                                     "kiln_graph_replace");
    if (st)
        return st;
    /* the to[] nodes come along: a replacement may read nodes the outputs do not */
    return transform(g, outputs, n_outputs, from, to, n_replace, make_replace, to, new_graph, new_outputs);
}

typedef struct dropout_arg {
    double drop_prob;
    uint64_t seed;
} dropout_arg;

/* Blocks' replacement of each variable: v * binomial(p = 1 - drop_prob) / (1 - drop_prob). */
static bool make_dropout(kiln_graph *w, const int32_t *map, const int32_t *from, int32_t *to, int n, const void *arg)
{
    const dropout_arg *a = arg;
    kiln_node state = kiln_graph_random_state(w, a->seed);
    kiln_node keep = kiln_expr_constant(w, 1 - a->drop_prob);
    for (int i = 0; i < n && w->err.status == KILN_OK; i++) {
        kiln_node v = {from[i]}; /* every variable was copied (extra[] in transform) */
        const kiln_shape *s = &w->nodes[v.id].shape;
        kiln_node mask = kiln_expr_random_bernoulli(w, state, s->rank, s->dims, 1 - a->drop_prob);
        kiln_node d = kiln_expr_div(w, kiln_expr_mul(w, v, mask), keep);
        if (kiln_node_ok(d))
            w->nodes[d.id].roles |= KILN_ROLE_DROPOUT;
        to[i] = d.id;
    }
    return w->err.status == KILN_OK;
}

enum kiln_status kiln_apply_dropout(kiln_graph *g, const kiln_node *outputs, int n_outputs, const kiln_node *variables,
                                    int n_variables, double drop_prob, uint64_t seed, kiln_graph **new_graph,
                                    kiln_node *new_outputs)
{
    static const char what[] = "kiln_apply_dropout";
    enum kiln_status st = check_call(g, outputs, n_outputs, variables, variables, n_variables, new_graph,
                                     new_outputs, what);
    if (st)
        return st;
    if (!(drop_prob >= 0 && drop_prob < 1)) { /* also NaN */
        kiln_graph_fail(g, KILN_ERR_ARG, "%s: drop_prob %g outside [0, 1)", what, drop_prob);
        return KILN_ERR_ARG;
    }
    for (int i = 0; i < n_variables; i++)
        if (g->nodes[variables[i].id].dtype != g->floatx) {
            const kiln_node_rec *r = &g->nodes[variables[i].id];
            kiln_graph_fail(g, KILN_ERR_SHAPE, "%s: variable %d ('%s') is %s; dropout needs %s", what,
                            (int)variables[i].id, r->name ? r->name : "", kiln_dtype_name(r->dtype),
                            kiln_dtype_name(g->floatx));
            return KILN_ERR_SHAPE;
        }
    dropout_arg a = {drop_prob, seed};
    return transform(g, outputs, n_outputs, variables, variables, n_variables, make_dropout, &a, new_graph,
                     new_outputs);
}
