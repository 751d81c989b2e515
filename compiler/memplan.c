/* memplan.c: give every stored value an offset in one arena.
**
** Plan: (1) the modes each node runs in, and fusion (passes.c) to learn
** which nodes are stored; (2) aliases (RESHAPE shares its input's bytes);
** (3) the param and grad slabs in param order, each gradient pinned into its
** slot; the states (optimiser slabs in param order, then the rest); (4) each
** update in place in its target when no later kernel reads the old value,
** else kept to be copied at the end; (5) walk the nodes in id (schedule)
** order and place each stored value first-fit among the live ones of its
** zone, freeing values after their last reader; (6) lay the zones out.
** First-fit in schedule order is linear-ish and deterministic, unlike graph
** colouring; the same graph always gives the same bytes.
**
** Zones: a value of size c·m (m a monomial of symbols, c a constant) lives
** in the zone of m, at an offset in bytes per unit of m; the zone is sized
** for m at the maxima. Values of different zones never share bytes, so a
** zone's layout holds for every run-time size.
**
** Invariants: the cost, monitors and outputs are never freed (they stay
** readable after a step) and never share bytes; a value is never placed over
** one still to be read. Planning over the union of all modes in one order is
** safe for each mode: a subsequence keeps disjoint lifetimes. With guard
** bytes (tests) nothing is reused and each value has `guard` bytes per unit
** after it, which the runtime checks.
**
** Sizes (#9): before anything is placed, every value's bytes at the maxima
** are computed with checked arithmetic and must be at most KILN_MAX_BYTES,
** and so must the arena; an error names the node, its shape and the maxima.
** Past that check no size in the plan, the generated code or the runtime
** (which evaluate sizes at most the maxima) can overflow, so they use the
** unchecked kiln_mono_eval. */
#include "compiler/memplan.h"

#include <stdlib.h>
#include <string.h>

#include "compiler/passes.h"

#define ALIGN_FIXED 64
#define ALIGN_ZONE 16
#define MAX_ZONES 32

static int64_t round_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

/* Element size of node id's value as a monomial. */
static bool value_mono(const kiln_plan *p, int32_t id, kiln_mono *m)
{
    const kiln_node_rec *r = kiln_graph_cnode(p->g, id);
    if (!kiln_shape_size(p->g, &r->shape, m))
        return false;
    m->c *= (int64_t)kiln_dtype_size(r->dtype); /* checked by the caller against the arena */
    return true;
}

int64_t kiln_plan_value_bytes(const kiln_plan *p, int32_t id, const int64_t *sizes)
{
    kiln_mono m;
    return value_mono(p, id, &m) ? kiln_mono_eval(&m, sizes) : 0;
}

int64_t kiln_plan_arena_offset(const kiln_plan *p, int32_t id, const int64_t *sizes)
{
    const kiln_buffer *b = &p->buf[p->alias[id]];
    switch (b->zone) {
    case KILN_ZONE_PARAM: return b->offset;
    case KILN_ZONE_GRAD: return p->off_grads + b->offset;
    case KILN_ZONE_STATE: return b->offset;
    case KILN_ZONE_VALUE: return p->zones[b->z].base + b->offset * kiln_mono_eval(&p->zones[b->z].unit, sizes);
    default: return -1;
    }
}

int kiln_plan_state_index(const kiln_plan *p, int32_t id)
{
    for (int i = 0; i < p->n_states; i++)
        if (p->state_node[i] == id)
            return i;
    return -1;
}

/* Live allocations of one zone, sorted by offset. */
typedef struct zone_alloc {
    int64_t *off, *end;
    int32_t *owner;
    int n, cap;
    int64_t high;
} zone_alloc;

static bool zone_place(zone_alloc *z, int32_t owner, int64_t size, int64_t align, int64_t *out)
{
    int64_t at = 0;
    int i = 0;
    for (; i < z->n; i++) {
        if (z->off[i] - at >= size)
            break;
        at = round_up(z->end[i], align);
    }
    if (z->n == z->cap) {
        int cap = z->cap ? z->cap * 2 : 32;
        int64_t *o = realloc(z->off, (size_t)cap * sizeof *o);
        if (!o) return false;
        z->off = o;
        int64_t *e = realloc(z->end, (size_t)cap * sizeof *e);
        if (!e) return false;
        z->end = e;
        int32_t *w = realloc(z->owner, (size_t)cap * sizeof *w);
        if (!w) return false;
        z->owner = w;
        z->cap = cap;
    }
    memmove(z->off + i + 1, z->off + i, (size_t)(z->n - i) * sizeof *z->off);
    memmove(z->end + i + 1, z->end + i, (size_t)(z->n - i) * sizeof *z->end);
    memmove(z->owner + i + 1, z->owner + i, (size_t)(z->n - i) * sizeof *z->owner);
    z->off[i] = at;
    z->end[i] = at + size;
    z->owner[i] = owner;
    z->n++;
    if (at + size > z->high)
        z->high = at + size;
    *out = at;
    return true;
}

static void zone_free(zone_alloc *z, int32_t owner)
{
    for (int i = 0; i < z->n; i++)
        if (z->owner[i] == owner) {
            memmove(z->off + i, z->off + i + 1, (size_t)(z->n - i - 1) * sizeof *z->off);
            memmove(z->end + i, z->end + i + 1, (size_t)(z->n - i - 1) * sizeof *z->end);
            memmove(z->owner + i, z->owner + i + 1, (size_t)(z->n - i - 1) * sizeof *z->owner);
            z->n--;
            return;
        }
}

void kiln_plan_free(kiln_plan *p)
{
    free(p->inline_);
    free(p->alias);
    free(p->kept);
    free(p->buf);
    free(p->modes);
    free(p->param_node);
    free(p->grad_node);
    free(p->grad_copy);
    free(p->param_offset);
    free(p->state_node);
    free(p->state_offset);
    free(p->updates);
    free(p->update_inplace);
    free(p->update_modes);
    free(p->input_node);
    free(p->zones);
    memset(p, 0, sizeof *p);
}

/* Mark the ancestors of roots with bits. */
static void mark(const kiln_graph *g, unsigned char *modes, const int32_t *roots, int n, unsigned char bits)
{
    for (int i = 0; i < n; i++)
        if (roots[i] >= 0)
            modes[roots[i]] |= bits;
    for (int32_t id = g->n_nodes - 1; id >= 0; id--)
        if (modes[id] & bits)
            for (int k = 0; k < g->nodes[id].n_in; k++)
                modes[g->nodes[id].in[k]] |= modes[id] & bits;
}

/* The zone of monomial m (c ignored), made on first use; -1 when full. */
static int zone_of(kiln_plan *p, const kiln_mono *m)
{
    kiln_mono unit = *m;
    unit.c = 1;
    for (int z = 0; z < p->n_zones; z++)
        if (kiln_mono_equal(&p->zones[z].unit, &unit))
            return z;
    if (p->n_zones == MAX_ZONES)
        return -1;
    p->zones[p->n_zones] = (kiln_value_zone){.unit = unit};
    return p->n_zones++;
}

typedef struct planner {
    kiln_plan *p;
    const kiln_plan_request *req;
    kiln_err *err;
    bool *pinned, *keep;
    int32_t *kernel_of;  /* the stored node whose loop computes each node */
    int32_t *last_use;   /* last kernel reading each storage root */
} planner;

/* 1. Modes, pins and fusion. */
static void plan_modes(planner *pl)
{
    kiln_plan *p = pl->p;
    const kiln_plan_request *q = pl->req;
    const kiln_graph *g = p->g;
    mark(g, p->modes, q->outputs, q->n_outputs, KILN_MODE_FORWARD);
    if (q->cost >= 0) {
        unsigned char all = KILN_MODE_EVAL | KILN_MODE_GRADIENTS | KILN_MODE_TRAIN;
        mark(g, p->modes, &q->cost, 1, all);
        mark(g, p->modes, q->monitors, q->n_monitors, all);
        if (q->grads)
            mark(g, p->modes, q->grads, q->n_params, KILN_MODE_GRADIENTS);
        pl->pinned[q->cost] = pl->keep[q->cost] = true;
    }
    for (int i = 0; i < q->n_monitors; i++)
        pl->pinned[q->monitors[i]] = pl->keep[q->monitors[i]] = true;
    for (int i = 0; i < q->n_train_values; i++) {
        mark(g, p->modes, &q->train_values[i], 1, q->train_modes[i]);
        pl->pinned[q->train_values[i]] = pl->keep[q->train_values[i]] = true;
    }
    for (int i = 0; i < q->n_outputs; i++)
        pl->pinned[q->outputs[i]] = pl->keep[q->outputs[i]] = true;
    for (int i = 0; i < q->n_params && q->grads; i++)
        if (q->grads[i] >= 0)
            pl->pinned[q->grads[i]] = true;
    /* the train step computes what gradients mode does, for its updates
    ** (here, so that an update whose target only gradients read runs in
    ** train_step too; and again below, for what the updates added) */
    for (int32_t id = 0; id < g->n_nodes; id++)
        if (p->modes[id] & KILN_MODE_GRADIENTS)
            p->modes[id] |= KILN_MODE_TRAIN;
    /* Updates: the step rule's in train_step; a random state's in every
    ** mode that reads its target (which may make its value read another
    ** state: repeat until nothing changes). */
    for (int u = 0; u < q->n_updates; u++) {
        const kiln_plan_update *up = &q->updates[u];
        pl->pinned[up->value] = true;
        if (up->train_only) {
            p->update_modes[u] = KILN_MODE_TRAIN;
            mark(g, p->modes, &up->value, 1, KILN_MODE_TRAIN);
        }
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (int u = 0; u < q->n_updates; u++) {
            const kiln_plan_update *up = &q->updates[u];
            unsigned char m = 0;
            if (up->train_only)
                continue;
            for (int32_t id = 0; id < g->n_nodes; id++) /* modes of the target's readers */
                for (int k = 0; k < g->nodes[id].n_in; k++)
                    if (g->nodes[id].in[k] == up->target && id != up->value)
                        m |= p->modes[id];
            if ((m & ~p->update_modes[u]) != 0) {
                p->update_modes[u] |= m;
                mark(g, p->modes, &up->value, 1, m);
                changed = true;
            }
        }
    }
    /* a target is written in its update's modes: it has storage even when
    ** nothing reads it (a state only its own update reads, or none) */
    for (int u = 0; u < q->n_updates; u++)
        p->modes[q->updates[u].target] |= p->update_modes[u];
    /* the train step computes what gradients mode does, for its updates */
    for (int32_t id = 0; id < g->n_nodes; id++)
        if (p->modes[id] & KILN_MODE_GRADIENTS)
            p->modes[id] |= KILN_MODE_TRAIN;
    /* a scan's kernel reads its inputs from storage, the step's body from
    ** its arguments: neither is computed inside another loop */
    for (int32_t id = 0; id < g->n_nodes; id++)
        if (g->nodes[id].op == KILN_OP_SCAN)
            for (int k = 0; k < g->nodes[id].n_in; k++)
                pl->pinned[g->nodes[id].in[k]] = true;
    kiln_fuse_elementwise(g, pl->pinned, p->inline_);
}

/* 3. Params, grads and states. */
static enum kiln_status plan_slabs(planner *pl)
{
    kiln_plan *p = pl->p;
    const kiln_plan_request *q = pl->req;
    const kiln_graph *g = p->g;
    int64_t slab = 0;
    for (int i = 0; i < q->n_params; i++) {
        int32_t id = q->params[i];
        p->param_node[i] = id;
        p->param_offset[i] = slab;
        p->buf[id] = (kiln_buffer){KILN_ZONE_PARAM, 0, slab, i};
        slab += round_up(kiln_plan_value_bytes(p, id, p->max_sizes) + q->guard, ALIGN_ZONE);
        p->grad_node[i] = q->grads ? q->grads[i] : -1;
    }
    p->param_bytes = round_up(slab, ALIGN_FIXED);
    for (int i = 0; i < q->n_params && q->grads; i++) {
        int32_t gid = q->grads[i];
        if (gid < 0)
            continue;
        const kiln_node_rec *r = &g->nodes[gid];
        bool computed = !p->inline_[gid] && p->alias[gid] == gid && !kiln_op_is_leaf(r->op) &&
                        p->buf[gid].zone == KILN_ZONE_NONE && !pl->keep[gid];
        if (computed) {
            p->buf[gid] = (kiln_buffer){KILN_ZONE_GRAD, 0, p->param_offset[i], i};
        } else { /* shared, aliased or a leaf: copied into the slot at the end */
            p->grad_copy[i] = true;
            pl->keep[p->alias[gid]] = true;
        }
    }
    p->off_grads = p->param_bytes;
    p->off_states = p->off_grads + p->param_bytes;
    /* States: slabs in param order, then the rest in id order. */
    int max_slab = 0;
    for (int32_t id = 0; id < g->n_nodes; id++) {
        const kiln_node_rec *r = &g->nodes[id];
        if (r->op == KILN_OP_STATE && p->modes[id] && kiln_param_like(r->param) && kiln_param_slab(r->param) > max_slab)
            max_slab = kiln_param_slab(r->param);
    }
    int64_t misc = (int64_t)max_slab * p->param_bytes;
    for (int32_t id = 0; id < g->n_nodes; id++) {
        const kiln_node_rec *r = &g->nodes[id];
        if (r->op != KILN_OP_STATE || !p->modes[id])
            continue;
        int64_t off = -1;
        kiln_param *like = kiln_param_like(r->param);
        for (int i = 0; like && i < q->n_params; i++)
            if (g->nodes[q->params[i]].param == like)
                off = (int64_t)(kiln_param_slab(r->param) - 1) * p->param_bytes + p->param_offset[i];
        if (off < 0) {
            off = misc;
            misc += round_up(kiln_plan_value_bytes(p, id, p->max_sizes) + q->guard, ALIGN_ZONE);
        }
        p->buf[id] = (kiln_buffer){KILN_ZONE_STATE, 0, p->off_states + off, p->n_states};
        p->state_node[p->n_states] = id;
        p->state_offset[p->n_states++] = p->off_states + off;
    }
    p->state_bytes = round_up(misc, ALIGN_FIXED);
    return KILN_OK;
}

/* kernel_of[id]: the kernel that computes node id (itself, or the consumer
** whose loop an inline node is computed in). last_use[s]: the last kernel
** reading storage root s. */
static void plan_readers(planner *pl)
{
    kiln_plan *p = pl->p;
    const kiln_graph *g = p->g;
    int32_t n = p->n;
    for (int32_t id = n - 1; id >= 0; id--) {
        if (!p->inline_[id])
            pl->kernel_of[id] = id;
        for (int k = 0; k < g->nodes[id].n_in; k++)
            if (p->inline_[g->nodes[id].in[k]])
                pl->kernel_of[g->nodes[id].in[k]] = pl->kernel_of[id];
    }
    for (int32_t id = 0; id < n; id++)
        pl->last_use[id] = id;
    for (int32_t id = 0; id < n; id++) {
        const kiln_node_rec *r = &g->nodes[id];
        for (int k = 0; k < r->n_in; k++) {
            int32_t s = p->alias[r->in[k]];
            if (pl->kernel_of[id] > pl->last_use[s])
                pl->last_use[s] = pl->kernel_of[id];
        }
    }
}

/* 4. Updates: in place when the value is an elementwise kernel of the
** target's shape (each element then reads only its own element of the
** target) and no later kernel in the same modes reads the target. */
static void plan_updates(planner *pl)
{
    kiln_plan *p = pl->p;
    const kiln_graph *g = p->g;
    for (int u = 0; u < p->n_updates; u++) {
        int32_t t = p->updates[u].target, v = p->updates[u].value;
        const kiln_node_rec *rv = &g->nodes[v], *rt = &g->nodes[t];
        bool ok = v != t && !kiln_op_is_leaf(rv->op) && kiln_op_is_elementwise(rv->op) && !p->inline_[v] &&
                  p->alias[v] == v && rv->dtype == rt->dtype && kiln_shape_equal(&rv->shape, &rt->shape) &&
                  p->buf[v].zone == KILN_ZONE_NONE && !pl->keep[v];
        for (int32_t id = v + 1; ok && id < p->n; id++) {
            if (!(p->modes[id] & p->update_modes[u]))
                continue;
            for (int k = 0; k < g->nodes[id].n_in; k++)
                if (p->alias[g->nodes[id].in[k]] == t && pl->kernel_of[id] != v)
                    ok = false;
        }
        p->update_inplace[u] = ok;
        if (ok) {
            p->alias[v] = t;
        } else {
            pl->keep[v] = true; /* copied into the target at the end */
        }
    }
}

/* Node id for messages: "node 12 (tanh 'h' of /mlp/linear_0)". */
static const char *node_desc(const kiln_graph *g, int32_t id, char *buf, size_t cap)
{
    const kiln_node_rec *r = &g->nodes[id];
    snprintf(buf, cap, "node %d (%s%s%s%s%s%s)", (int)id, kiln_op_info_of(r->op)->name, r->name ? " '" : "",
             r->name ? r->name : "", r->name ? "'" : "", r->owner ? " of " : "", r->owner ? r->owner : "");
    return buf;
}

/* "B = 16777216, T = 4096": the maxima of the symbols m uses, or "none". */
static const char *maxima_str(const kiln_plan *p, const kiln_mono *m, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < KILN_MAX_SYMBOLS && n < cap; k++)
        if (m->e[k])
            n += (size_t)snprintf(buf + n, cap - n, "%s%s = %lld", n ? ", " : "",
                                  p->g->symbol_names[k] ? p->g->symbol_names[k] : "?", (long long)p->max_sizes[k]);
    if (n == 0)
        snprintf(buf, cap, "no symbols");
    return buf;
}

/* The bytes of node id's value at the maxima, checked: false (the error in
** err) when they overflow or pass KILN_MAX_BYTES. */
static bool value_bytes_ok(const kiln_plan *p, int32_t id, kiln_err *err)
{
    const kiln_node_rec *r = &p->g->nodes[id];
    kiln_mono m;
    int64_t bytes;
    char d[KILN_MAX_NAME * 2 + 64], s[KILN_SHAPE_STR_MAX], mx[256];
    if (value_mono(p, id, &m) && kiln_mono_eval_checked(&m, p->max_sizes, &bytes) && bytes <= KILN_MAX_BYTES)
        return true;
    kiln_shape_size(p->g, &r->shape, &m); /* checked by the caller */
    kiln_err_set(err, KILN_ERR_SHAPE, "%s: shape %s at the maxima (%s) is more than %lld bytes of %s",
                 node_desc(p->g, id, d, sizeof d), kiln_shape_str(p->g, &r->shape, s, sizeof s),
                 maxima_str(p, &m, mx, sizeof mx), (long long)KILN_MAX_BYTES, kiln_dtype_name(r->dtype));
    return false;
}

/* 5. Place node id first-fit in its zone; schedule its freeing. */
static enum kiln_status place(planner *pl, zone_alloc *za, int32_t id, int32_t *free_at_head, int32_t *free_next)
{
    kiln_plan *p = pl->p;
    kiln_mono m;
    value_mono(p, id, &m);
    int z = zone_of(p, &m);
    if (z < 0)
        return kiln_err_set(pl->err, KILN_ERR_UNSUPPORTED, "memory plan: values of more than %d symbolic sizes",
                            MAX_ZONES);
    int64_t align = z == 0 ? ALIGN_FIXED : ALIGN_ZONE, off;
    int64_t size = round_up((m.c ? m.c : 1) + pl->req->guard, align); /* m.c <= KILN_MAX_BYTES: checked */
    if (za[z].high > KILN_MAX_BYTES) { /* no offset past it is ever needed: the arena check refuses it */
        char d[KILN_MAX_NAME * 2 + 64];
        return kiln_err_set(pl->err, KILN_ERR_SHAPE, "memory plan: values before %s need more than %lld bytes",
                            node_desc(p->g, id, d, sizeof d), (long long)KILN_MAX_BYTES);
    }
    if (!zone_place(&za[z], id, size, align, &off))
        return kiln_err_set(pl->err, KILN_ERR_NOMEM, "memory plan: no memory");
    p->buf[id] = (kiln_buffer){KILN_ZONE_VALUE, z, off, 0};
    if (pl->keep[id] || pl->req->guard)
        return KILN_OK;
    /* freed after its last reader: i.e. before node last_use + 1 */
    int32_t at = pl->last_use[id] + 1;
    if (at <= p->n) {
        free_next[id] = free_at_head[at];
        free_at_head[at] = id;
    }
    return KILN_OK;
}

enum kiln_status kiln_plan_build(kiln_plan *p, const kiln_graph *g, const kiln_plan_request *req, kiln_err *err)
{
    int32_t n = g->n_nodes;
    memset(p, 0, sizeof *p);
    p->g = g;
    p->n = n;
    p->cost = req->cost;
    p->n_params = req->n_params;
    p->guard = req->guard;
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        p->max_sizes[k] = req->max_sizes ? req->max_sizes[k] : 0;
    planner pl = {.p = p, .req = req, .err = err};
    pl.pinned = calloc((size_t)n + 1, sizeof *pl.pinned);
    pl.keep = calloc((size_t)n + 1, sizeof *pl.keep);
    pl.kernel_of = malloc(((size_t)n + 1) * sizeof *pl.kernel_of);
    pl.last_use = malloc(((size_t)n + 1) * sizeof *pl.last_use);
    int32_t *free_at_head = malloc(((size_t)n + 2) * sizeof *free_at_head);
    int32_t *free_next = malloc(((size_t)n + 1) * sizeof *free_next);
    zone_alloc *za = calloc(MAX_ZONES, sizeof *za);
    p->inline_ = calloc((size_t)n + 1, sizeof *p->inline_);
    p->alias = malloc(((size_t)n + 1) * sizeof *p->alias);
    p->buf = calloc((size_t)n + 1, sizeof *p->buf);
    p->modes = calloc((size_t)n + 1, 1);
    p->param_node = calloc((size_t)req->n_params + 1, sizeof *p->param_node);
    p->grad_node = calloc((size_t)req->n_params + 1, sizeof *p->grad_node);
    p->grad_copy = calloc((size_t)req->n_params + 1, sizeof *p->grad_copy);
    p->param_offset = calloc((size_t)req->n_params + 1, sizeof *p->param_offset);
    p->state_node = calloc((size_t)n + 1, sizeof *p->state_node);
    p->state_offset = calloc((size_t)n + 1, sizeof *p->state_offset);
    p->updates = calloc((size_t)req->n_updates + 1, sizeof *p->updates);
    p->update_inplace = calloc((size_t)req->n_updates + 1, sizeof *p->update_inplace);
    p->update_modes = calloc((size_t)req->n_updates + 1, 1);
    p->input_node = calloc((size_t)n + 1, sizeof *p->input_node);
    p->zones = calloc(MAX_ZONES, sizeof *p->zones);
    enum kiln_status st = KILN_OK;
    if (!pl.pinned || !pl.keep || !pl.kernel_of || !pl.last_use || !free_at_head || !free_next || !za ||
        !p->inline_ || !p->alias || !p->buf || !p->modes || !p->param_node || !p->grad_node || !p->grad_copy ||
        !p->param_offset || !p->state_node || !p->state_offset || !p->updates || !p->update_inplace ||
        !p->update_modes || !p->input_node || !p->zones) {
        st = kiln_err_set(err, KILN_ERR_NOMEM, "memory plan: no memory for %d nodes", (int)n);
        goto done;
    }
    p->n_updates = req->n_updates;
    if (req->n_updates)
        memcpy(p->updates, req->updates, (size_t)req->n_updates * sizeof *p->updates);
    p->n_zones = 1; /* zone 0: constant sizes */
    p->zones[0].unit.c = 1;

    /* Every symbol a value's size uses needs a maximum, and every value (an
    ** input included: generated code indexes it) must fit KILN_MAX_BYTES
    ** at the maxima. */
    for (int32_t id = 0; id < n; id++) {
        kiln_mono m;
        const kiln_node_rec *r = &g->nodes[id];
        if (r->n_out)
            continue; /* its results are PROJ nodes, checked themselves */
        if (!kiln_shape_size(g, &r->shape, &m)) { /* never: kiln_graph_add_raw checked it */
            char d[KILN_MAX_NAME * 2 + 64], s[KILN_SHAPE_STR_MAX];
            st = kiln_err_set(err, KILN_ERR_SHAPE, "%s: shape %s has more than 2^53 elements",
                              node_desc(g, id, d, sizeof d), kiln_shape_str(g, &r->shape, s, sizeof s));
            goto done;
        }
        for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
            if (m.e[k] && p->max_sizes[k] <= 0) {
                st = kiln_err_set(err, KILN_ERR_ARG,
                                  "symbol %s has no maximum size: give it in kiln_compile_options.max_size[%d]",
                                  g->symbol_names[k] ? g->symbol_names[k] : "?", k);
                goto done;
            }
        if (!value_bytes_ok(p, id, err)) {
            st = err->status;
            goto done;
        }
    }

    /* 1. Modes, pins, fusion. */
    plan_modes(&pl);

    /* 2. Aliases: a reshape shares the bytes of its (stored) input. */
    for (int32_t id = 0; id < n; id++) {
        p->alias[id] = id;
        const kiln_node_rec *r = &g->nodes[id];
        if (r->op == KILN_OP_RESHAPE && !p->inline_[r->in[0]])
            p->alias[id] = p->alias[r->in[0]];
    }
    for (int32_t id = 0; id < n; id++) /* an alias of a kept value keeps it */
        if (pl.keep[id])
            pl.keep[p->alias[id]] = true;

    /* 3. Inputs, params, grads, states. */
    for (int32_t id = 0; id < n; id++) {
        if (g->nodes[id].op == KILN_OP_ARG) { /* a scan body's argument: the scan hands its address */
            p->buf[id] = (kiln_buffer){KILN_ZONE_INPUT, 0, 0, (int)g->nodes[id].attr.i[0]};
            continue;
        }
        if (g->nodes[id].op != KILN_OP_INPUT)
            continue;
        p->buf[id] = (kiln_buffer){KILN_ZONE_INPUT, 0, 0, p->n_inputs};
        p->input_node[p->n_inputs++] = id;
    }
    if ((st = plan_slabs(&pl)))
        goto done;

    /* 4. Readers, then updates (which may alias a value to its target). */
    plan_readers(&pl);
    plan_updates(&pl);
    plan_readers(&pl); /* aliases changed: last uses of the targets */

    /* 5. First-fit placement in schedule order, by zone. */
    for (int32_t id = 0; id <= n; id++)
        free_at_head[id] = -1;
    for (int32_t id = 0; id < n; id++) {
        const kiln_node_rec *r = &g->nodes[id];
        for (int32_t f = free_at_head[id]; f >= 0; f = free_next[f])
            zone_free(&za[p->buf[f].z], f);
        /* a tuple's kernel writes its results: they are placed with it */
        for (int32_t j = id + 1; r->n_out && p->modes[id] && j < n; j++) {
            const kiln_node_rec *rj = &g->nodes[j];
            if (rj->op != KILN_OP_PROJ || rj->in[0] != id || p->alias[j] != j || p->buf[j].zone != KILN_ZONE_NONE ||
                !p->modes[j])
                continue;
            if ((st = place(&pl, za, j, free_at_head, free_next)))
                goto done;
        }
        if (p->inline_[id] || p->alias[id] != id || p->buf[id].zone != KILN_ZONE_NONE || !p->modes[id])
            continue;
        /* leaves have storage of their own, or none (a constant or a
        ** symbol's size is a literal in its readers' loops), except such a
        ** scalar that must be read back itself (an output, the cost, an
        ** update's value: pinned, so not inline) */
        if ((kiln_op_is_leaf(r->op) && r->op != KILN_OP_CONST && r->op != KILN_OP_SYMBOL) || r->n_out)
            continue;
        if ((st = place(&pl, za, id, free_at_head, free_next)))
            goto done;
    }

    /* 6. The zones, one after another, each at its maxima; the arena within
    ** KILN_MAX_BYTES (the slabs before them are sums of checked sizes). */
    p->off_values = p->off_states + p->state_bytes;
    int64_t at = p->off_values;
    bool fits = at <= KILN_MAX_BYTES;
    for (int z = 0; z < p->n_zones && fits; z++) {
        kiln_value_zone *zn = &p->zones[z];
        zn->bytes = round_up(za[z].high, ALIGN_ZONE);
        zn->base = at;
        int64_t bytes;
        fits = kiln_mono_eval_checked(&zn->unit, p->max_sizes, &zn->units) &&
               kiln_mul_i64(zn->bytes, zn->units, &bytes) && bytes <= KILN_MAX_BYTES &&
               kiln_add_i64(at, round_up(bytes, ALIGN_FIXED), &at) && at <= KILN_MAX_BYTES;
    }
    if (!fits) {
        char mx[256];
        kiln_mono all = {.c = 1};
        for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
            all.e[k] = p->max_sizes[k] > 0;
        st = kiln_err_set(err, KILN_ERR_SHAPE,
                          "memory plan: the arena at the maxima (%s) needs more than %lld bytes (its values, "
                          "each within that, do not fit together)",
                          maxima_str(p, &all, mx, sizeof mx), (long long)KILN_MAX_BYTES);
        goto done;
    }
    p->arena_bytes = at;
done:
    free(pl.pinned);
    p->kept = pl.keep; /* the plan's from here on (kiln_plan_free) */
    free(pl.kernel_of);
    free(pl.last_use);
    free(free_at_head);
    free(free_next);
    for (int z = 0; za && z < MAX_ZONES; z++) {
        free(za[z].off);
        free(za[z].end);
        free(za[z].owner);
    }
    free(za);
    if (st != KILN_OK)
        kiln_plan_free(p);
    return st;
}
