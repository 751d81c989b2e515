/* memplan.c: give every stored value an offset in one arena.
**
** Plan: (1) fuse (passes.c) to learn which nodes are stored; (2) resolve
** aliases (RESHAPE shares its input's bytes); (3) lay out the param and grad
** slabs in param order, pinning each gradient node into its slot; (4) walk
** the nodes in id (schedule) order and place each stored value first-fit
** among the live ones of its zone, freeing values after their last reader.
** First-fit in schedule order is linear-ish and deterministic, unlike graph
** colouring; the same graph always gives the same bytes.
** Invariants: the cost, monitors and outputs are never freed (they stay
** readable after a step) and never share bytes; a value is never placed over
** one still to be read. Planning over the union of all entry points in one
** order is safe for each entry point: a subsequence keeps disjoint lifetimes. */
#include "compiler/memplan.h"

#include <stdlib.h>
#include <string.h>

#include "compiler/passes.h"

#define ALIGN_FIXED 64
#define ALIGN_BATCH 16

static int64_t round_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

int64_t kiln_plan_value_bytes(const kiln_plan *p, int32_t id, int64_t B)
{
    const kiln_node_rec *r = kiln_graph_cnode(p->g, id);
    int64_t n = kiln_shape_const_size(&r->shape) * (int64_t)kiln_dtype_size(r->dtype);
    return kiln_shape_has_batch(&r->shape) ? n * B : n;
}

int64_t kiln_plan_arena_offset(const kiln_plan *p, int32_t id, int64_t B)
{
    const kiln_buffer *b = &p->buf[p->alias[id]];
    switch (b->zone) {
    case KILN_ZONE_PARAM: return b->offset;
    case KILN_ZONE_GRAD: return p->off_grads + b->offset;
    case KILN_ZONE_FIXED: return p->off_fixed + b->offset;
    case KILN_ZONE_BATCH: return p->off_batch + b->offset * B;
    default: return -1;
    }
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

static void zone_release(zone_alloc *z)
{
    free(z->off);
    free(z->end);
    free(z->owner);
}

void kiln_plan_free(kiln_plan *p)
{
    free(p->inline_);
    free(p->alias);
    free(p->buf);
    free(p->entries);
    free(p->param_node);
    free(p->grad_node);
    free(p->grad_copy);
    free(p->param_offset);
    free(p->input_node);
    memset(p, 0, sizeof *p);
}

/* Mark the ancestors of roots with bit. */
static void mark(const kiln_graph *g, unsigned char *entries, const int32_t *roots, int n, unsigned char bit)
{
    for (int i = 0; i < n; i++)
        if (roots[i] >= 0)
            entries[roots[i]] |= bit;
    for (int32_t id = g->n_nodes - 1; id >= 0; id--)
        if (entries[id] & bit)
            for (int k = 0; k < g->nodes[id].n_in; k++)
                entries[g->nodes[id].in[k]] |= bit;
}

/* Storage root of a node that reads `id`: inline nodes are read by their
** consumer, aliases by whoever reads the alias. */
static int32_t storage(const kiln_plan *p, int32_t id) { return p->alias[id]; }

enum kiln_status kiln_plan_build(kiln_plan *p, const kiln_graph *g, int32_t cost, const int32_t *monitors,
                                 int n_monitors, const int32_t *outputs, int n_outputs, const int32_t *params,
                                 const int32_t *grads, int n_params, int64_t max_batch, kiln_err *err)
{
    int32_t n = g->n_nodes;
    memset(p, 0, sizeof *p);
    p->g = g;
    p->n = n;
    p->cost = cost;
    p->max_batch = max_batch;
    p->n_params = n_params;
    bool *pinned = calloc((size_t)n + 1, sizeof *pinned);
    bool *keep = calloc((size_t)n + 1, sizeof *keep); /* never freed */
    int32_t *last = malloc(((size_t)n + 1) * sizeof *last);
    zone_alloc zf = {0}, zb = {0};
    p->inline_ = calloc((size_t)n + 1, sizeof *p->inline_);
    p->alias = malloc(((size_t)n + 1) * sizeof *p->alias);
    p->buf = calloc((size_t)n + 1, sizeof *p->buf);
    p->entries = calloc((size_t)n + 1, 1);
    p->param_node = calloc((size_t)n_params + 1, sizeof *p->param_node);
    p->grad_node = calloc((size_t)n_params + 1, sizeof *p->grad_node);
    p->grad_copy = calloc((size_t)n_params + 1, sizeof *p->grad_copy);
    p->param_offset = calloc((size_t)n_params + 1, sizeof *p->param_offset);
    p->input_node = calloc((size_t)n + 1, sizeof *p->input_node);
    enum kiln_status st = KILN_OK;
    if (!pinned || !keep || !last || !p->inline_ || !p->alias || !p->buf || !p->entries || !p->param_node ||
        !p->grad_node || !p->grad_copy || !p->param_offset || !p->input_node) {
        st = kiln_err_set(err, KILN_ERR_NOMEM, "memory plan: no memory for %d nodes", (int)n);
        goto done;
    }

    /* 1. Entry points and pinned values. */
    mark(g, p->entries, outputs, n_outputs, KILN_ENTRY_FORWARD);
    if (cost >= 0) {
        mark(g, p->entries, &cost, 1, KILN_ENTRY_EVAL | KILN_ENTRY_TRAIN);
        mark(g, p->entries, monitors, n_monitors, KILN_ENTRY_EVAL | KILN_ENTRY_TRAIN);
        mark(g, p->entries, grads, n_params, KILN_ENTRY_TRAIN);
        pinned[cost] = keep[cost] = true;
    }
    for (int i = 0; i < n_monitors; i++)
        pinned[monitors[i]] = keep[monitors[i]] = true;
    for (int i = 0; i < n_outputs; i++)
        pinned[outputs[i]] = keep[outputs[i]] = true;
    for (int i = 0; i < n_params && grads; i++)
        if (grads[i] >= 0)
            pinned[grads[i]] = true;
    kiln_fuse_elementwise(g, pinned, p->inline_);

    /* 2. Aliases: a reshape shares the bytes of its (stored) input. */
    for (int32_t id = 0; id < n; id++) {
        p->alias[id] = id;
        const kiln_node_rec *r = &g->nodes[id];
        if (r->op == KILN_OP_RESHAPE && !p->inline_[r->in[0]])
            p->alias[id] = p->alias[r->in[0]];
    }
    for (int32_t id = 0; id < n; id++) /* an alias of a kept value keeps it */
        if (keep[id])
            keep[p->alias[id]] = true;

    /* 3. Inputs, params and grads. */
    for (int32_t id = 0; id < n; id++) {
        if (g->nodes[id].op != KILN_OP_INPUT)
            continue;
        p->buf[id].zone = KILN_ZONE_INPUT;
        p->buf[id].index = p->n_inputs;
        p->input_node[p->n_inputs++] = id;
    }
    int64_t slab = 0;
    for (int i = 0; i < n_params; i++) {
        int32_t id = params[i];
        p->param_node[i] = id;
        p->param_offset[i] = slab;
        p->buf[id] = (kiln_buffer){KILN_ZONE_PARAM, slab, i};
        slab += round_up(kiln_plan_value_bytes(p, id, 1), ALIGN_BATCH);
        p->grad_node[i] = grads ? grads[i] : -1;
    }
    p->param_bytes = round_up(slab, ALIGN_FIXED);
    for (int i = 0; i < n_params && grads; i++) {
        int32_t gid = grads[i];
        if (gid < 0)
            continue;
        const kiln_node_rec *r = &g->nodes[gid];
        bool computed = !p->inline_[gid] && p->alias[gid] == gid && r->op != KILN_OP_INPUT &&
                        r->op != KILN_OP_PARAM && p->buf[gid].zone == KILN_ZONE_NONE && !keep[gid];
        if (computed)
            p->buf[gid] = (kiln_buffer){KILN_ZONE_GRAD, p->param_offset[i], i};
        else
            p->grad_copy[i] = true; /* shared, aliased or a leaf: copied into the slot */
    }

    /* 4. Last readers, then first-fit placement in schedule order. The
    ** reader of an inline node's inputs is its (transitive) consumer. */
    int32_t *reader = last; /* reuse: reader[id] = materialised node whose loop computes id */
    for (int32_t id = n - 1; id >= 0; id--) {
        reader[id] = id;
    }
    for (int32_t id = n - 1; id >= 0; id--) {
        for (int k = 0; k < g->nodes[id].n_in; k++) {
            int32_t in = g->nodes[id].in[k];
            if (p->inline_[in])
                reader[in] = reader[id];
        }
    }
    int32_t *last_use = malloc(((size_t)n + 1) * sizeof *last_use);
    if (!last_use) {
        st = kiln_err_set(err, KILN_ERR_NOMEM, "memory plan: no memory");
        goto done;
    }
    for (int32_t id = 0; id < n; id++)
        last_use[id] = id;
    for (int32_t id = 0; id < n; id++)
        for (int k = 0; k < g->nodes[id].n_in; k++) {
            int32_t s = storage(p, g->nodes[id].in[k]);
            int32_t at = reader[id];
            if (at > last_use[s])
                last_use[s] = at;
        }
    for (int i = 0; i < n_params && grads; i++) /* copied gradients are read at the end */
        if (grads[i] >= 0 && p->grad_copy[i])
            last_use[storage(p, grads[i])] = n;
    /* Values read after the gradient copy or by several entry points are kept. */
    int32_t *free_at_head = malloc(((size_t)n + 1) * sizeof *free_at_head);
    int32_t *free_next = malloc(((size_t)n + 1) * sizeof *free_next);
    if (!free_at_head || !free_next) {
        free(last_use);
        free(free_at_head);
        free(free_next);
        st = kiln_err_set(err, KILN_ERR_NOMEM, "memory plan: no memory");
        goto done;
    }
    for (int32_t id = 0; id <= n; id++)
        free_at_head[id] = -1;
    /* hyperparameters first in the fixed zone */
    p->hyper_offset = 0;
    int64_t hyper_bytes = round_up(KILN_MAX_HYPER * (int64_t)kiln_dtype_size(g->floatx), ALIGN_FIXED);
    int64_t dummy;
    if (!zone_place(&zf, -2, hyper_bytes, ALIGN_FIXED, &dummy)) {
        st = kiln_err_set(err, KILN_ERR_NOMEM, "memory plan: no memory");
        goto done2;
    }
    for (int32_t id = 0; id < n; id++) {
        const kiln_node_rec *r = &g->nodes[id];
        /* free what died before this node's kernel */
        for (int32_t f = free_at_head[id]; f >= 0; f = free_next[f])
            zone_free(kiln_shape_has_batch(&g->nodes[f].shape) ? &zb : &zf, f);
        if (p->inline_[id] || p->alias[id] != id || p->buf[id].zone != KILN_ZONE_NONE || !p->entries[id])
            continue;
        if (r->op == KILN_OP_INPUT || r->op == KILN_OP_PARAM)
            continue;
        bool batch = kiln_shape_has_batch(&r->shape);
        zone_alloc *z = batch ? &zb : &zf;
        int64_t size = kiln_plan_value_bytes(p, id, 1), off;
        if (size == 0)
            size = 1;
        if (!zone_place(z, id, round_up(size, batch ? ALIGN_BATCH : ALIGN_FIXED), batch ? ALIGN_BATCH : ALIGN_FIXED,
                        &off)) {
            st = kiln_err_set(err, KILN_ERR_NOMEM, "memory plan: no memory");
            goto done2;
        }
        p->buf[id] = (kiln_buffer){batch ? KILN_ZONE_BATCH : KILN_ZONE_FIXED, off, 0};
        if (keep[id])
            continue;
        /* freed after its last reader: i.e. before node last_use + 1 */
        int32_t at = last_use[id] + 1;
        if (at <= n) {
            free_next[id] = free_at_head[at];
            free_at_head[at] = id;
        }
    }
    p->fixed_bytes = round_up(zf.high, ALIGN_FIXED);
    p->batch_bytes_per_example = round_up(zb.high, ALIGN_BATCH);
    p->off_grads = p->param_bytes;
    p->off_fixed = p->off_grads + p->param_bytes;
    p->off_batch = p->off_fixed + p->fixed_bytes;
    p->arena_bytes = p->off_batch + round_up(p->batch_bytes_per_example * max_batch, ALIGN_FIXED);
done2:
    free(last_use);
    free(free_at_head);
    free(free_next);
done:
    free(pinned);
    free(keep);
    free(last);
    zone_release(&zf);
    zone_release(&zb);
    if (st != KILN_OK)
        kiln_plan_free(p);
    return st;
}
