/* lower.c: a planned program graph to a list of kernels (lower.h).
**
** Design: the lowering makes every decision the C printer used to make
** while printing, and records it in the kernel records, so that a printer
** only reads: which stored nodes are kernels (of which kind, in which
** entry points), and the lowering patterns, each consulted through
** kiln_lower_fast_paths except the two that change no arithmetic order
** (slab updates, shared loops):
**   - an update W - s * (x^T d) whose product nothing else reads becomes the
**     product itself with alpha = -s, beta = 1, C = W (lower_fused_updates);
**   - at batch 1 such an update is kept and applied inside the next step's
**     first product with W (lower_deferred);
**   - updates p - s * grad of adjacent parameters become one loop over the
**     parameter slab (lower_slab_updates);
**   - float products x W and x^T d go to kiln's own GEMM kernels where the
**     CPU has them (own_gemm_ok, own_gemm_tn_ok);
**   - a sum over axes of a stored elementwise value is computed in the
**     value's loop (lower_siblings), a softmax in its cross-entropy's row
**     loop (lower_shared_rows);
**   - a scan body's x W^T with W a context reads W^T, transposed once
**     before the loop (transposed_context), and x W a copy of W (when its
**     rows are a multiple of 32 floats: padded_context), both with rows
**     KILN_CODEGEN_PADDED_LD apart;
**   - a scan's stacked output or saved value is written by its body straight
**     into the stacked value at t (lower_results_in_place);
**   - a product's one reader, an add of a bias row or a matrix of its
**     shape, is done by the GEMM as it stores its result (lower_addends);
**   - kernels in a row that loop over one shape share one loop nest
**     (lower_shared_nests).
** Each update pattern is legal only where the update is linear in the
** gradient and every other reader of the parameter has run (the plan's
** in-place rule). The slots the patterns need (deferred updates, the GEMM
** scratch) and each scan's region (its body's arena, its carried states,
** its transposed contexts) are placed here, after the memory plan's arena,
** 64-byte aligned, in that order: the printer reads offsets.
** A scan body gets its own plan and a nested list (has_forward only).
**
** Rejected: deciding inside the printers (the decisions could not be tested
** or shared with a second printer without printing); placing the slots in
** the memory plan itself (they exist only for the C printer's fast paths,
** and the plan is shared with the interpreter). */
#include "codegen/lower.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/emit_c.h"

typedef struct lowerer {
    const kiln_plan *p;
    const kiln_graph *g;
    const kiln_lower_options *o;
    kiln_kernel_list *l;
    kiln_err *err;
    int32_t *kernel_of; /* per node: the kernel that computes it */
    int32_t *readers;   /* per storage root: how many nodes read it */
    int *fused;         /* per node: update whose value this product applies, or -1 */
    bool *absorbed;     /* per node: computed by another kernel (never a kernel alone) */
    int32_t *sibling, *rows_with, *defer_at, *tr_in, *pad_in;
    int32_t *sum_of;    /* per product: the add it computes with its addend (lower_addends), or -1 */
    const bool *needed; /* a body's: per result, whether the scan reads it (NULL: not a body) */
    int64_t *scan_at, *scan_carry;
    int *body_of;       /* per scan node: index into l->bodies, or -1 */
    int32_t *stack, *mark, epoch; /* group_members' scratch, one per node */
    int members_cap;
} lowerer;

static const kiln_node_rec *R(const lowerer *w, int32_t id) { return kiln_graph_cnode(w->g, id); }

static int64_t align64(int64_t n) { return (n + 63) / 64 * 64; }

/* Whether node id is computed by a kernel of its own: a reshape is a view
** of its input's bytes; an update computed in place (aliased to its target)
** is a kernel writing there. */
static bool is_kernel(const lowerer *w, int32_t id)
{
    const kiln_plan *p = w->p;
    const kiln_node_rec *r = R(w, id);
    if (!p->modes[id] || p->inline_[id] || (p->alias[id] != id && r->op == KILN_OP_RESHAPE))
        return false;
    if (r->op == KILN_OP_PROJ) /* written by its tuple's kernel */
        return false;
    /* a stored constant or symbol size (not inline: pinned) is written too */
    return !kiln_op_is_leaf(r->op) || r->op == KILN_OP_CONST || r->op == KILN_OP_SYMBOL;
}

/* kernel_of[id] and the number of readers of each storage root. */
static void kernel_owners(lowerer *w)
{
    const kiln_plan *p = w->p;
    for (int32_t id = p->n - 1; id >= 0; id--) {
        if (!p->inline_[id])
            w->kernel_of[id] = id;
        for (int k = 0; k < R(w, id)->n_in; k++)
            if (p->inline_[R(w, id)->in[k]])
                w->kernel_of[R(w, id)->in[k]] = w->kernel_of[id];
    }
    for (int32_t id = 0; id < p->n; id++)
        for (int k = 0; k < R(w, id)->n_in; k++)
            w->readers[p->alias[R(w, id)->in[k]]]++;
}

/* The update's value is p - s * g with s a scalar and g the node *grad:
** true, with s. The multiply is either way round (CSE orders operands). */
static bool scaled_step(const lowerer *w, const kiln_plan_update *u, int32_t *grad, int32_t *s)
{
    const kiln_node_rec *v = R(w, u->value);
    if (v->op != KILN_OP_SUB || v->in[0] != u->target || !w->p->inline_[v->in[1]])
        return false;
    const kiln_node_rec *m = R(w, v->in[1]);
    if (m->op != KILN_OP_MUL)
        return false;
    for (int k = 0; k < 2; k++) {
        const kiln_node_rec *rs = R(w, m->in[k]);
        if (rs->shape.rank == 0 && (rs->op == KILN_OP_STATE || rs->op == KILN_OP_CONST)) {
            *s = m->in[k];
            *grad = m->in[1 - k];
            return true;
        }
    }
    return false;
}

/* Whether any update writes state s in place (then s changes mid-step). */
static bool written_in_place(const lowerer *w, int32_t s)
{
    for (int u = 0; u < w->p->n_updates; u++)
        if (w->p->updates[u].target == s && w->p->update_inplace[u])
            return true;
    return false;
}

static int param_index(const lowerer *w, int32_t node)
{
    for (int i = 0; i < w->p->n_params; i++)
        if (w->p->param_node[i] == node)
            return i;
    return -1;
}

/* Which updates train_step applies inside their gradient's GEMM: the
** update is W - s * G with G one matrix product, stored in the gradient
** slab and read by nothing else, and every kernel that reads W runs before
** G (so the cost, monitors and the backward pass all see the old value, as
** Blocks' updates do). fused[G] = the update. */
static void lower_fused_updates(lowerer *w)
{
    const kiln_plan *p = w->p;
    if (!w->o->has_train || !kiln_lower_fast_paths(w->o))
        return;
    for (int u = 0; u < p->n_updates; u++) {
        const kiln_plan_update *up = &p->updates[u];
        int32_t gid, s;
        int pi = param_index(w, up->target);
        if (pi < 0 || !up->train_only || !p->update_inplace[u] || !scaled_step(w, up, &gid, &s))
            continue;
        if (gid != p->grad_node[pi] || p->grad_copy[pi] || R(w, gid)->op != KILN_OP_MATMUL ||
            p->buf[gid].zone != KILN_ZONE_GRAD || w->readers[gid] != 1 ||
            w->readers[p->alias[R(w, up->value)->in[1]]] > 1 || R(w, gid)->shape.rank != 2 ||
            written_in_place(w, s))
            continue;
        int32_t last = -1; /* the last kernel reading W, the update excepted */
        for (int32_t id = 0; id < p->n; id++) {
            if (!(p->modes[id] & KILN_MODE_TRAIN) || w->kernel_of[id] == up->value)
                continue;
            for (int k = 0; k < R(w, id)->n_in; k++)
                if (p->alias[R(w, id)->in[k]] == up->target && w->kernel_of[id] > last)
                    last = w->kernel_of[id];
        }
        if (last >= gid)
            continue;
        w->fused[gid] = u;
        w->l->update_scale[u] = s;
        w->absorbed[up->value] = true;
        w->l->any_fused = true;
    }
}

/* Which updates are slab loops: p - s * grad with grad in the gradient slab,
** applied at the end of the step (nothing reads the new value, and s does
** not change on the way); adjacent parameters with the same s merge into
** one loop (the printer's). */
static void lower_slab_updates(lowerer *w)
{
    const kiln_plan *p = w->p;
    for (int u = 0; u < p->n_updates; u++) {
        const kiln_plan_update *up = &p->updates[u];
        int32_t gid, s;
        int pi = param_index(w, up->target);
        if (pi < 0 || !up->train_only || !p->update_inplace[u] || w->absorbed[up->value] ||
            !scaled_step(w, up, &gid, &s) || gid != p->grad_node[pi] || p->grad_copy[pi] ||
            p->buf[gid].zone != KILN_ZONE_GRAD || w->readers[up->value] != 0 || written_in_place(w, s) ||
            R(w, s)->op != KILN_OP_STATE)
            continue;
        w->l->slab_update[u] = true;
        w->l->update_scale[u] = s;
        w->absorbed[up->value] = true;
    }
}

/* Which fused updates train_step defers at batch 1. There the update is the
** rank-1 W -= s x^T d, and the next step's first use of W is usually the
** product x' W: applied apart they read W twice and write it once (sger,
** then sgemv), applied together one pass reads and writes it
** (rt->sger_gemv): a third less memory traffic, for a weight that does not
** fit in L2 about a third of the step. So the step keeps u = x and v = -s d
** in a slot after the plan's arena, and the next batch-1 train_step's first
** kernel reading W applies them while it computes its product. Anything
** else first flushes them (k_apply_deferred): every other entry point and batch
** size at the start of _run, and the runtime before it reads or writes a
** parameter. Deferred only when that first reader is a product x W (W the
** right operand, not transposed, the batch as its rows) and floats are
** float (the kernel is single precision). */
static void lower_deferred(lowerer *w)
{
    const kiln_plan *p = w->p;
    kiln_kernel_list *l = w->l;
    int32_t n = p->n;
    int64_t off = align64(p->arena_bytes), esz = (int64_t)kiln_dtype_size(p->g->floatx);
    l->arena_bytes = p->arena_bytes;
    l->deferred_at = off;
    if (!w->o->has_train || p->g->floatx != KILN_DTYPE_F32 || !kiln_lower_fast_paths(w->o)) {
        l->deferred_end = l->arena_bytes;
        return;
    }
    for (int32_t gid = 0; gid < n; gid++) {
        int u = w->fused[gid];
        if (u < 0)
            continue;
        const kiln_node_rec *g = R(w, gid);
        if (R(w, g->in[0])->shape.dims[kiln_attr_trans_a(g) ? 0 : 1] != KILN_BATCH)
            continue; /* not a rank-1 update at batch 1 */
        int32_t pid = p->updates[u].target, first = -1;
        int i = param_index(w, pid);
        for (int32_t id = 0; id < n && first < 0; id++) {
            if (!(p->modes[id] & KILN_MODE_TRAIN))
                continue;
            for (int k = 0; k < R(w, id)->n_in; k++)
                if (p->alias[R(w, id)->in[k]] == pid && (first < 0 || w->kernel_of[id] < first))
                    first = w->kernel_of[id];
        }
        if (first < 0 || i < 0)
            continue;
        const kiln_node_rec *f = R(w, first);
        if (f->op != KILN_OP_MATMUL || f->in[1] != pid || p->alias[f->in[0]] == pid || kiln_attr_trans_b(f) ||
            f->shape.rank != 2 || f->shape.dims[0] != KILN_BATCH || w->fused[first] >= 0 || w->defer_at[first] >= 0)
            continue;
        const kiln_shape *ws = &R(w, pid)->shape;
        l->defer[i] = off;
        w->defer_at[first] = i;
        off += (1 + ws->dims[0] + ws->dims[1]) * esz;
        off = align64(off);
        l->arena_bytes = off;
    }
    l->deferred_end = l->arena_bytes;
}

/* Whether product id may go to rt->sgemm_nn, kiln's kernel for few rows
** (runtime/gemm.c): y = x W in floats, 2-D, neither transposed (or W^T a
** transposed context), not an update (fused: the update id applies, or -1),
** with the columns and the contracted size fixed. */
static bool own_gemm_ok(const lowerer *w, int32_t id, int fused)
{
    const kiln_node_rec *r = R(w, id), *ra = R(w, r->in[0]), *rb = R(w, r->in[1]);
    if (r->op != KILN_OP_MATMUL || !kiln_lower_fast_paths(w->o) || r->shape.rank != 2 || ra->shape.rank != 2 ||
        rb->shape.rank != 2)
        return false;
    int64_t n = r->shape.dims[1], k = ra->shape.dims[1];
    return w->g->floatx == KILN_DTYPE_F32 && !kiln_attr_trans_a(r) && (!kiln_attr_trans_b(r) || w->tr_in[id] >= 0) &&
           fused < 0 && n > 0 && k > 0 && n <= INT32_MAX && k <= INT32_MAX;
}

/* Whether product id may go to rt->sgemm_tn, kiln's kernel for a weight's
** gradient or update: C = x^T d in floats, 2-D, only A transposed. */
static bool own_gemm_tn_ok(const lowerer *w, int32_t id)
{
    const kiln_node_rec *r = R(w, id), *ra = R(w, r->in[0]), *rb = R(w, r->in[1]);
    return r->op == KILN_OP_MATMUL && kiln_lower_fast_paths(w->o) && r->shape.rank == 2 && ra->shape.rank == 2 &&
           rb->shape.rank == 2 && w->g->floatx == KILN_DTYPE_F32 && kiln_attr_trans_a(r) && !kiln_attr_trans_b(r);
}

/* One scratch slot after the slots, as large as the largest product that
** may go to rt->sgemm_nn needs at the maxima (the products run one at a
** time). */
static void lower_scratch(lowerer *w)
{
    kiln_kernel_list *l = w->l;
    int64_t need = 0;
    l->scratch = -1;
    for (int32_t id = 0; id < w->p->n; id++)
        if (R(w, id)->op == KILN_OP_MATMUL && w->p->modes[id] && own_gemm_ok(w, id, w->fused[id])) {
            int64_t n = R(w, id)->shape.dims[1], k = R(w, R(w, id)->in[0])->shape.dims[1], m = 0;
            kiln_mono mm;
            if (!kiln_dim_mono(w->g, R(w, id)->shape.dims[0], &mm) || !kiln_mono_eval_checked(&mm, w->p->max_sizes, &m))
                m = 0; /* no room to pack W: the kernel packs only at m >= KILN_CODEGEN_PACK_ROWS */
            if (KILN_CODEGEN_GEMM_SCRATCH(m, n, k) > need)
                need = KILN_CODEGEN_GEMM_SCRATCH(m, n, k);
            if (n * k > (int64_t)l->gemm_n * l->gemm_k) {
                l->gemm_n = (int)n;
                l->gemm_k = (int)k;
            }
        }
    if (!need)
        return;
    l->scratch = align64(l->arena_bytes);
    l->arena_bytes = l->scratch_end = l->scratch + need * (int64_t)sizeof(float);
}

/* Sums over some axes of a stored elementwise value, into a gradient slot
** (pinned: no other value lives there, so it may be written early), are
** computed in the loop that writes the value: one pass instead of two (a
** bias gradient beside its layer's delta), same order, same bits. */
static void lower_siblings(lowerer *w)
{
    const kiln_plan *p = w->p;
    for (int32_t id = 0; id < p->n; id++) {
        const kiln_node_rec *r = R(w, id);
        int32_t k = r->n_in ? r->in[0] : -1;
        if (r->op != KILN_OP_SUM || r->shape.rank == 0 || p->inline_[id] || p->alias[id] != id ||
            p->buf[id].zone != KILN_ZONE_GRAD || k < 0 || p->inline_[k] || p->alias[k] != k ||
            !kiln_op_is_elementwise(R(w, k)->op) || w->sibling[k] >= 0 || w->fused[k] >= 0 ||
            p->modes[id] != p->modes[k] || !is_kernel(w, k) || R(w, k)->op == KILN_OP_ONEHOT)
            continue;
        w->sibling[k] = id;
        w->absorbed[id] = true;
    }
}

/* The softmax of a classifier's logits (wanted for the gradient) and the
** cross-entropy of the same logits (the cost) share one row loop: one exp
** per logit instead of two, the same values and order, the same bits. Only
** when the softmax runs in no mode the cross-entropy does not, and nothing
** reads the softmax before the cross-entropy's place. */
static void lower_shared_rows(lowerer *w)
{
    const kiln_plan *p = w->p;
    for (int32_t id = 0; id < p->n; id++) {
        const kiln_node_rec *r = R(w, id);
        if (r->op != KILN_OP_SOFTMAX_XENT || !is_kernel(w, id))
            continue;
        for (int32_t sm = 0; sm < id; sm++) {
            const kiln_node_rec *q = R(w, sm);
            unsigned qm = p->modes[sm];
            if (q->op != KILN_OP_SOFTMAX || q->in[0] != r->in[0] || !is_kernel(w, sm) || w->absorbed[sm] ||
                (qm & ~p->modes[id]) || (qm & (KILN_MODE_FORWARD | KILN_MODE_EVAL)))
                continue;
            bool read_early = false;
            for (int32_t k = sm + 1; k < id && !read_early; k++)
                for (int a = 0; a < R(w, k)->n_in; a++)
                    read_early |= p->alias[R(w, k)->in[a]] == sm;
            if (read_early)
                continue;
            w->rows_with[id] = sm;
            w->absorbed[sm] = true;
            break;
        }
    }
}

/* Whether the storage of nodes a and b may share bytes. Values of one
** zone are compared by their ranges per unit of the zone's monomial (so for
** every run-time size); slots of the slabs and inputs by index. */
static bool may_overlap(const lowerer *w, int32_t a, int32_t b)
{
    const kiln_plan *p = w->p;
    int32_t sa = p->alias[a], sb = p->alias[b];
    const kiln_buffer *ba = &p->buf[sa], *bb = &p->buf[sb];
    if (sa == sb)
        return true;
    if (ba->zone != bb->zone || ba->zone == KILN_ZONE_NONE)
        return false;
    if (ba->zone != KILN_ZONE_VALUE)
        return ba->index == bb->index;
    if (ba->z != bb->z)
        return false;
    kiln_mono ma, mb;
    if (!kiln_shape_size(w->g, &R(w, sa)->shape, &ma) || !kiln_shape_size(w->g, &R(w, sb)->shape, &mb))
        return true;
    int64_t ea = ba->offset + ma.c * (int64_t)kiln_dtype_size(R(w, sa)->dtype);
    int64_t eb = bb->offset + mb.c * (int64_t)kiln_dtype_size(R(w, sb)->dtype);
    return ba->offset < eb && bb->offset < ea;
}

/* Whether node id's value is read after the step: kept by the plan (the
** cost, monitors, outputs), or, in a body, a result the scan reads. */
static bool read_after(const lowerer *w, int32_t id)
{
    const kiln_plan *p = w->p;
    if (!w->needed)
        return p->kept[p->alias[id]];
    for (int k = 0; k < w->g->n_results; k++)
        if (w->needed[k] && p->alias[w->g->results[k]] == p->alias[id])
            return true;
    return false;
}

/* The addend epilogue: an elementwise kernel that is one add of a 2-D
** product's result and an addend (a matrix of the same shape, or a row
** (n,) added to every row: a bias), where nothing else reads the product,
** is done by the product's GEMM: it writes the add's storage, the addend
** added as it stores each sum (kiln's kernels: the same bits as the add),
** or (the BLAS) the addend copied there first and beta = 1. The add's
** kernel goes: one pass over the result instead of three (read the
** product, read the addend, write). Legal when:
**   - the product runs in exactly the add's modes, is no update's (a fused
**     update, deferred or not, writes into a weight: it has no value of its
**     own), and its value is read by the add alone and not after the step
**     (a monitor, a scan's result). A product that first applies a deferred
**     batch-1 update (DEFER_APPLY) may: rt->sger_gemv computes its value,
**     and the addend is added after;
**   - no kernel runs between the two (the product then writes the add's
**     storage early: a kernel between could read or write those bytes,
**     placed there by the memory plan after the product's place);
**   - the add's storage shares no byte with the product's operands or the
**     addend (the plan may give the add the bytes of an operand whose last
**     reader is the product; the copy into it would come before the read);
**   - the add is no sibling's host (lower_siblings: a sum in its loop).
** float32 and float64 (the BLAS path). */
static void lower_addends(lowerer *w)
{
    const kiln_plan *p = w->p;
    if (!kiln_lower_fast_paths(w->o))
        return;
    for (int32_t a = 0; a < p->n; a++) {
        const kiln_node_rec *ra = R(w, a);
        if (ra->op != KILN_OP_ADD || ra->n_in != 2 || ra->in[0] == ra->in[1] || !is_kernel(w, a) ||
            w->absorbed[a] || p->alias[a] != a || w->sibling[a] >= 0 || !p->modes[a] ||
            (p->buf[a].zone != KILN_ZONE_VALUE && p->buf[a].zone != KILN_ZONE_GRAD))
            continue;
        for (int side = 0; side < 2; side++) {
            int32_t g = ra->in[side], o = ra->in[1 - side];
            const kiln_node_rec *rg = R(w, g), *ro = R(w, o);
            if (rg->op != KILN_OP_MATMUL || rg->shape.rank != 2 || R(w, rg->in[0])->shape.rank != 2 ||
                R(w, rg->in[1])->shape.rank != 2 || p->inline_[g] || p->alias[g] != g ||
                p->buf[g].zone != KILN_ZONE_VALUE || p->modes[g] != p->modes[a] || w->fused[g] >= 0 ||
                w->sum_of[g] >= 0 || w->readers[g] != 1 || read_after(w, g) ||
                !kiln_shape_equal(&rg->shape, &ra->shape))
                continue;
            if ((rg->dtype != KILN_DTYPE_F32 && rg->dtype != KILN_DTYPE_F64) || rg->dtype != ra->dtype ||
                ro->dtype != ra->dtype || p->inline_[o] || p->buf[p->alias[o]].zone == KILN_ZONE_NONE)
                continue;
            bool row = ro->shape.rank == 1 && ro->shape.dims[0] == rg->shape.dims[1];
            if (!row && !kiln_shape_equal(&ro->shape, &rg->shape))
                continue; /* a broadcast other than a row */
            bool between = false;
            for (int32_t j = g + 1; j < a && !between; j++)
                between = is_kernel(w, j) && !w->absorbed[j] && p->modes[j];
            if (between || may_overlap(w, a, rg->in[0]) || may_overlap(w, a, rg->in[1]) || may_overlap(w, a, o))
                continue;
            w->sum_of[g] = a;
            w->absorbed[a] = true;
            break;
        }
    }
}

/* Whether node id of a scan body is a product x W (trans: x W^T) whose W
** is the body's argument arg. */
static bool context_product(const kiln_graph *body, int32_t id, int32_t arg, bool trans)
{
    const kiln_node_rec *r = &body->nodes[id];
    return r->op == KILN_OP_MATMUL && r->in[1] == arg && !!kiln_attr_trans_b(r) == trans && !kiln_attr_trans_a(r) &&
           r->shape.rank == 2 && body->nodes[r->in[0]].shape.rank == 2;
}

/* Whether a scan body's argument `arg` (an ARG node) is a matrix W the step
** reads in products x W^T (a weight's adjoint d W^T in a backward step):
** then the scan hands the step W^T as well, transposed once before its
** loop, and those products run as x (W^T) through kiln's own GEMM, which
** reads W^T in place instead of packing W again at every step. */
static bool transposed_context(const kiln_graph *body, int32_t arg, bool fast)
{
    if (!fast || body->floatx != KILN_DTYPE_F32 || body->nodes[arg].shape.rank != 2)
        return false;
    for (int32_t id = arg + 1; id < body->n_nodes; id++)
        if (context_product(body, id, arg, true))
            return true;
    return false;
}

/* Whether the scan hands the step a copy of W with its rows
** KILN_CODEGEN_PADDED_LD apart, made once before the loop, for products x W
** (a forward step's h W): kiln's own GEMM reads W where it lies, a row at a
** time, and rows a multiple of 128 bytes apart share a few of L1's sets. */
static bool padded_context(const kiln_graph *body, int32_t arg, bool fast)
{
    const kiln_shape *s = &body->nodes[arg].shape;
    if (!fast || body->floatx != KILN_DTYPE_F32 || !kiln_lower_context_ld(s, false) ||
        kiln_lower_context_ld(s, false) == s->dims[1])
        return false;
    for (int32_t id = arg + 1; id < body->n_nodes; id++)
        if (context_product(body, id, arg, false))
            return true;
    return false;
}

/* The ARG node of argument a of a body, or -1 (the step never reads it). */
static int32_t arg_node(const kiln_graph *body, int a)
{
    for (int32_t id = 0; id < body->n_nodes; id++)
        if (body->nodes[id].op == KILN_OP_ARG && body->nodes[id].attr.i[0] == a)
            return id;
    return -1;
}

/* For a body's lowering: tr_in[] of each x W^T product whose W is a
** transposed context, pad_in[] of each x W product whose W is a padded
** one; the copies follow the n_args arguments in inputs[], in argument
** order, W^T before the padded W of one argument. */
static void lower_transposed(lowerer *w, int ctx_from, int n_args)
{
    int q = 0;
    bool fast = kiln_lower_fast_paths(w->o);
    for (int a = ctx_from; a < n_args; a++) {
        int32_t arg = arg_node(w->g, a);
        if (arg < 0)
            continue;
        for (int tr = 1; tr >= 0; tr--) {
            if (tr ? !transposed_context(w->g, arg, fast) : !padded_context(w->g, arg, fast))
                continue;
            for (int32_t id = arg + 1; id < w->p->n; id++)
                if (context_product(w->g, id, arg, tr))
                    *(tr ? &w->tr_in[id] : &w->pad_in[id]) = n_args + q;
            q++;
        }
    }
}

static enum kiln_status lower_graph(const kiln_plan *p, const kiln_lower_options *o, kiln_kernel_list **out,
                                    kiln_err *err, int ctx_from, int n_args, const bool *needed,
                                    const int *result_at);

int32_t kiln_lower_kept_result(const kiln_plan *p, int32_t id, int k)
{
    for (int32_t j = id + 1; j < p->n; j++) {
        const kiln_node_rec *r = kiln_graph_cnode(p->g, j);
        if (r->op == KILN_OP_PROJ && r->in[0] == id && r->attr.i[0] == k && p->modes[j] &&
            p->buf[p->alias[j]].zone != KILN_ZONE_NONE)
            return j;
    }
    return -1;
}

/* Scan id's results written in place: the body's value (a stored value of
** its own, no other result's storage) lives where the scan hands it in
** results[k], so no copy follows each step (the body writes that value
** before it reads it). A stacked result (an output not summed, a saved
** value) goes to the stacked value's row t; a state to the place the next
** step reads it from (emit_c.c, kernel_scan: the stacked state's row t, the
** next row of the states the gradient reads, or the one of two carries the
** step does not read). */
static void lower_results_in_place(const lowerer *w, int32_t id, const kiln_plan *bp, int *result_at)
{
    const kiln_node_rec *r = R(w, id);
    const kiln_graph *body = bp->g;
    int n_seq = (int)r->attr.i[KILN_SCAN_SEQ], n_state = (int)r->attr.i[KILN_SCAN_STATE];
    int n_out = (int)r->attr.i[KILN_SCAN_OUT], n_res = n_state + n_out + (int)r->attr.i[KILN_SCAN_SAVED];
    uint64_t sums = (uint64_t)r->attr.i[KILN_SCAN_SUMS];
    if (n_res > body->n_results)
        return;
    for (int k = 0; k < n_res; k++) {
        bool state = k < n_state, saved = k >= n_state + n_out;
        if (!state && !saved && (sums >> (k - n_state) & 1))
            continue;
        int32_t o = state ? r->in[n_seq + k] : kiln_lower_kept_result(w->p, id, saved ? 2 * n_state + k : n_state + k);
        int32_t rn = body->results[k], s = bp->alias[rn];
        if (o < 0 || bp->buf[s].zone != KILN_ZONE_VALUE || R(w, o)->dtype != kiln_graph_cnode(body, rn)->dtype)
            continue;
        bool alone = true;
        for (int j = 0; j < body->n_results && alone; j++)
            alone = j == k || bp->alias[body->results[j]] != s;
        if (alone)
            result_at[s] = k;
    }
}

/* needed[k]: whether scan id reads its body's result k after a step: a
** state (carried) always, an output or saved value when a node keeps it. */
static void scan_reads(const lowerer *w, int32_t id, int n_results, bool *needed)
{
    const kiln_node_rec *r = R(w, id);
    int n_state = (int)r->attr.i[KILN_SCAN_STATE], n_out = (int)r->attr.i[KILN_SCAN_OUT];
    for (int k = 0; k < n_results; k++)
        needed[k] = k < n_state ||
                    kiln_lower_kept_result(w->p, id, k >= n_state + n_out ? 2 * n_state + k : n_state + k) >= 0;
}

/* Every scan's body: planned (its values in a region of this arena, with
** the states it carries and its transposed contexts) and lowered. */
static enum kiln_status lower_scans(lowerer *w)
{
    const kiln_plan *p = w->p;
    kiln_kernel_list *l = w->l;
    int n_scans = 0;
    for (int32_t id = 0; id < p->n; id++)
        n_scans += R(w, id)->op == KILN_OP_SCAN && p->modes[id];
    if (!n_scans)
        return KILN_OK;
    l->body_plans = calloc((size_t)n_scans, sizeof *l->body_plans);
    l->bodies = calloc((size_t)n_scans, sizeof *l->bodies);
    if (!l->body_plans || !l->bodies)
        return kiln_err_set(w->err, KILN_ERR_NOMEM, "codegen: no memory");
    for (int32_t id = 0; id < p->n; id++) {
        const kiln_node_rec *r = R(w, id);
        if (r->op != KILN_OP_SCAN || !p->modes[id])
            continue;
        const kiln_graph *body = w->g->bodies[r->attr.i[KILN_SCAN_BODY]];
        kiln_plan_request q = {.cost = -1, .outputs = body->results, .n_outputs = body->n_results,
                               .max_sizes = p->max_sizes, .guard = p->guard};
        kiln_plan *bp = &l->body_plans[l->n_bodies];
        bool *needed = calloc((size_t)body->n_results + 1, sizeof *needed);
        if (!needed)
            return kiln_err_set(w->err, KILN_ERR_NOMEM, "codegen: no memory");
        enum kiln_status st = kiln_plan_build(bp, body, &q, w->err);
        if (st) {
            free(needed);
            return st;
        }
        kiln_lower_options bo = {.has_forward = true, .no_fast_paths = w->o->no_fast_paths};
        int n_seq = (int)r->attr.i[KILN_SCAN_SEQ], n_state = (int)r->attr.i[KILN_SCAN_STATE];
        int n_args = n_seq + n_state + (int)r->attr.i[KILN_SCAN_CTX];
        scan_reads(w, id, body->n_results, needed);
        int *result_at = malloc(((size_t)bp->n + 1) * sizeof *result_at);
        if (!result_at) {
            free(needed);
            kiln_plan_free(bp);
            return kiln_err_set(w->err, KILN_ERR_NOMEM, "codegen: no memory");
        }
        for (int32_t b = 0; b < bp->n; b++)
            result_at[b] = -1;
        if (kiln_lower_fast_paths(w->o)) /* known as the body is lowered (lower_nest_slices reads it) */
            lower_results_in_place(w, id, bp, result_at);
        st = lower_graph(bp, &bo, &l->bodies[l->n_bodies], w->err, n_seq + n_state, n_args, needed, result_at);
        free(needed);
        free(result_at);
        l->n_bodies++; /* the plan is freed with the list from here on */
        if (st)
            return st;
        w->body_of[id] = l->n_bodies - 1;
        /* the region: the body's arena, then two carries of each state (the
        ** one a step reads, the one it writes: emit_c.c), then each
        ** context's copies (W^T, then W with padded rows) */
        int64_t at = align64(l->arena_bytes), end = at + align64(l->bodies[l->n_bodies - 1]->arena_bytes);
        w->scan_at[id] = at;
        w->scan_carry[id] = end - at;
        for (int k = 0; k < n_args; k++) {
            int32_t a = k < n_seq + n_state ? -1 : arg_node(body, k);
            if (k >= n_seq && k < n_seq + n_state) {
                end += 2 * align64(kiln_plan_value_bytes(p, r->in[k], p->max_sizes));
                continue;
            }
            if (a < 0)
                continue;
            const kiln_shape *s = &body->nodes[a].shape;
            int64_t tld = kiln_lower_context_ld(s, true), pld = kiln_lower_context_ld(s, false);
            if (transposed_context(body, a, kiln_lower_fast_paths(w->o)))
                end += align64(tld ? (int64_t)sizeof(float) * s->dims[1] * tld
                                   : kiln_plan_value_bytes(p, r->in[k], p->max_sizes));
            if (padded_context(body, a, kiln_lower_fast_paths(w->o)))
                end += align64((int64_t)sizeof(float) * s->dims[0] * pld);
        }
        l->arena_bytes = end;
    }
    return KILN_OK;
}

/* The inline nodes of root's group (root excluded), in id order, appended
** to the list's members (count returned, -1: out of memory). A walk down
** from root through inline inputs; w->mark (an epoch per call) keeps it
** linear. */
static int group_members(lowerer *w, int32_t root)
{
    kiln_kernel_list *l = w->l;
    int n = 0, sp = 0;
    int32_t *stack = w->stack;
    if (l->n_members + w->p->n + 1 > w->members_cap) {
        int cap = 2 * w->members_cap + w->p->n + 1;
        int32_t *m = realloc(l->members, sizeof *m * (size_t)cap);
        if (!m)
            return -1;
        l->members = m;
        w->members_cap = cap;
    }
    int32_t *members = l->members + l->n_members;
    w->epoch++;
    stack[sp++] = root;
    while (sp > 0) {
        int32_t id = stack[--sp];
        const kiln_node_rec *r = R(w, id);
        for (int k = 0; k < r->n_in; k++) {
            int32_t c = r->in[k];
            const kiln_node_rec *rc = R(w, c);
            if (!w->p->inline_[c] || rc->op == KILN_OP_CONST || rc->op == KILN_OP_SYMBOL || w->mark[c] == w->epoch)
                continue;
            w->mark[c] = w->epoch;
            members[n++] = c;
            stack[sp++] = c;
        }
    }
    /* id order, for stable bytes: a counting pass over the marked ids when
    ** the group is large, an insertion sort when it is small */
    if (n > 64) {
        int m = 0;
        for (int32_t id = 0; id < root; id++)
            if (w->mark[id] == w->epoch)
                members[m++] = id;
    } else {
        for (int a = 1; a < n; a++)
            for (int b = a; b > 0 && members[b - 1] > members[b]; b--) {
                int32_t t = members[b];
                members[b] = members[b - 1];
                members[b - 1] = t;
            }
    }
    l->n_members += n;
    return n;
}

static enum kiln_kernel_kind kind_of(const kiln_node_rec *r)
{
    switch (r->op) {
    case KILN_OP_MATMUL:
        return KILN_KERNEL_GEMM; /* or batched: make_records */
    case KILN_OP_SUM:
    case KILN_OP_MAX: return KILN_KERNEL_REDUCTION;
    case KILN_OP_SOFTMAX:
    case KILN_OP_LOGSOFTMAX:
    case KILN_OP_PICK:
    case KILN_OP_ARGMAX:
    case KILN_OP_SOFTMAX_XENT: return KILN_KERNEL_ROWS;
    case KILN_OP_TRANSPOSE:
    case KILN_OP_SLICE:
    case KILN_OP_PAD:
    case KILN_OP_REVERSE:
    case KILN_OP_CONCAT:
    case KILN_OP_SPLIT:
    case KILN_OP_GATHER:
    case KILN_OP_SCATTER_ADD: return KILN_KERNEL_STRUCTURAL;
    case KILN_OP_RANDOM:
    case KILN_OP_RNG_NEXT: return KILN_KERNEL_RANDOM;
    case KILN_OP_SCAN: return KILN_KERNEL_SCAN;
    default: return KILN_KERNEL_ELEMENTWISE; /* elementwise, unaliased reshape, stored leaf */
    }
}

/* The records: every node that is a kernel and not absorbed by another,
** run in some mode of the plan (modes: those of the wanted entry points,
** possibly none: then a printer skips it). */
static enum kiln_status make_records(lowerer *w)
{
    const kiln_plan *p = w->p;
    kiln_kernel_list *l = w->l;
    unsigned all = (w->o->has_forward ? KILN_MODE_FORWARD : 0) |
                   (w->o->has_train ? KILN_MODE_EVAL | KILN_MODE_GRADIENTS | KILN_MODE_TRAIN : 0);
    l->k = calloc((size_t)p->n + 1, sizeof *l->k);
    if (!l->k)
        return kiln_err_set(w->err, KILN_ERR_NOMEM, "codegen: no memory");
    for (int32_t id = 0; id < p->n; id++) {
        if (!is_kernel(w, id) || w->absorbed[id])
            continue;
        const kiln_node_rec *r = R(w, id);
        kiln_kernel *k = &l->k[l->n];
        *k = (kiln_kernel){.kind = kind_of(r), .root = id, .modes = p->modes[id] & all, .sibling = w->sibling[id],
                           .rows_with = w->rows_with[id], .nest = 1, .into = -1, .update = w->fused[id], .scale = -1,
                           .defer_param = -1,
                           .tr_in = w->tr_in[id], .pad_in = w->pad_in[id], .body = w->body_of[id], .scan_at = w->scan_at[id],
                           .scan_carry = w->scan_carry[id]};
        k->addend = k->sum = -1;
        if (r->op == KILN_OP_MATMUL && w->sum_of[id] >= 0) {
            const kiln_node_rec *ra = R(w, w->sum_of[id]);
            k->sum = w->sum_of[id];
            k->addend = ra->in[0] == id ? ra->in[1] : ra->in[0];
            k->addend_row = R(w, k->addend)->shape.rank == 1;
        }
        if (r->op == KILN_OP_MATMUL) {
            k->kind = r->shape.rank == 2 && R(w, r->in[0])->shape.rank == 2 && R(w, r->in[1])->shape.rank == 2
                          ? KILN_KERNEL_GEMM
                          : KILN_KERNEL_GEMM_BATCHED;
            if (k->update >= 0) {
                int pi = param_index(w, p->updates[k->update].target);
                k->fast |= KILN_FAST_FUSED_UPDATE;
                k->scale = l->update_scale[k->update];
                if (pi >= 0 && l->defer[pi] >= 0) {
                    k->fast |= KILN_FAST_DEFER_STORE;
                    k->defer_param = pi;
                }
            }
            if (w->defer_at[id] >= 0) {
                k->fast |= KILN_FAST_DEFER_APPLY;
                k->defer_param = w->defer_at[id];
            }
            if (l->scratch >= 0 && own_gemm_ok(w, id, k->update))
                k->fast |= KILN_FAST_OWN_NN;
            k->own_nn_plain = l->scratch >= 0 && own_gemm_ok(w, id, -1);
            if (own_gemm_tn_ok(w, id))
                k->fast |= KILN_FAST_OWN_TN;
        }
        if (k->kind == KILN_KERNEL_ELEMENTWISE || k->kind == KILN_KERNEL_REDUCTION) {
            k->first_member = l->n_members;
            k->n_members = group_members(w, id);
            if (k->n_members < 0)
                return kiln_err_set(w->err, KILN_ERR_NOMEM, "codegen: no memory");
        }
        if (r->op == KILN_OP_SCAN && k->body >= 0) {
            const kiln_graph *body = w->g->bodies[r->attr.i[KILN_SCAN_BODY]];
            int from = (int)(r->attr.i[KILN_SCAN_SEQ] + r->attr.i[KILN_SCAN_STATE]);
            int n_ctx = (int)r->attr.i[KILN_SCAN_CTX];
            k->transposed = calloc((size_t)n_ctx + 1, sizeof *k->transposed);
            k->padded = calloc((size_t)n_ctx + 1, sizeof *k->padded);
            if (!k->transposed || !k->padded)
                return kiln_err_set(w->err, KILN_ERR_NOMEM, "codegen: no memory");
            for (int c = 0; c < n_ctx; c++) {
                int32_t a = arg_node(body, from + c);
                k->transposed[c] = a >= 0 && transposed_context(body, a, kiln_lower_fast_paths(w->o));
                k->padded[c] = a >= 0 && padded_context(body, a, kiln_lower_fast_paths(w->o));
            }
        }
        l->kernel[id] = l->n++;
    }
    return KILN_OK;
}

static void lowerer_free(lowerer *w)
{
    free(w->kernel_of);
    free(w->readers);
    free(w->fused);
    free(w->absorbed);
    free(w->sibling);
    free(w->rows_with);
    free(w->defer_at);
    free(w->tr_in);
    free(w->pad_in);
    free(w->sum_of);
    free(w->scan_at);
    free(w->scan_carry);
    free(w->body_of);
    free(w->stack);
    free(w->mark);
}

/* ---- shared loop nests ------------------------------------------------------ */

/* The loop shape of kernel k if it may share a nest, else NULL: an
** elementwise group of arithmetic (no reshape, one-hot or cast; no sum or
** softmax in its loop) stored in floats, or a sum over the first axis of a
** rank-2 group (its sums are indexed by the inner loop, so no inner
** iteration depends on another). */
static const kiln_shape *nest_shape(const lowerer *w, const kiln_kernel *k)
{
    const kiln_plan *p = w->p;
    const kiln_node_rec *r = R(w, k->root);
    const kiln_shape *s = NULL;
    if (k->kind == KILN_KERNEL_ELEMENTWISE && k->sibling < 0 && k->rows_with < 0 && r->shape.rank >= 1)
        s = &r->shape;
    else if (k->kind == KILN_KERNEL_REDUCTION && r->op == KILN_OP_SUM && kiln_attr_axes(r) == 1 &&
             r->shape.rank == 1 && R(w, r->in[0])->shape.rank == 2)
        s = &R(w, r->in[0])->shape;
    if (!s || r->dtype != w->g->floatx || p->alias[k->root] != k->root)
        return NULL;
    const int32_t *m = w->l->members + k->first_member;
    for (int j = -1; j < k->n_members; j++) {
        const kiln_node_rec *q = R(w, j < 0 ? k->root : m[j]);
        if (j < 0 && k->kind == KILN_KERNEL_REDUCTION)
            continue;
        if (!kiln_op_is_elementwise(q->op) || q->op == KILN_OP_ONEHOT || q->op == KILN_OP_CAST ||
            kiln_lower_calls_libm(q->op, w->g->floatx))
            return NULL;
    }
    return s;
}

/* Whether nodes a and b are stored in the same bytes (the same storage, or
** one slot the plan gave to both). */
static bool same_slot(const lowerer *w, int32_t a, int32_t b)
{
    const kiln_plan *p = w->p;
    int32_t sa = p->alias[a], sb = p->alias[b];
    if (sa == sb)
        return true;
    const kiln_buffer *ba = &p->buf[sa], *bb = &p->buf[sb];
    kiln_mono ma, mb;
    return ba->zone == KILN_ZONE_VALUE && bb->zone == KILN_ZONE_VALUE && ba->z == bb->z && ba->offset == bb->offset &&
           kiln_shape_size(w->g, &R(w, sa)->shape, &ma) && kiln_shape_size(w->g, &R(w, sb)->shape, &mb) &&
           ma.c * kiln_dtype_size(R(w, sa)->dtype) == mb.c * kiln_dtype_size(R(w, sb)->dtype);
}

/* The stored values kernel k reads: its group's operands that are not
** members (up to cap; -1 if more). */
static int kernel_reads(const lowerer *w, const kiln_kernel *k, int32_t *out, int cap)
{
    const kiln_plan *p = w->p;
    const int32_t *m = w->l->members + k->first_member;
    int n = 0;
    for (int j = -1; j < k->n_members; j++) {
        const kiln_node_rec *q = R(w, j < 0 ? k->root : m[j]);
        for (int a = 0; a < q->n_in; a++) {
            int32_t x = q->in[a];
            if (p->inline_[x] || R(w, x)->op == KILN_OP_CONST || R(w, x)->op == KILN_OP_SYMBOL)
                continue;
            if (n == cap)
                return -1;
            out[n++] = x;
        }
    }
    return n;
}

/* Whether kernels i .. j-1 and j (all nest_shape s) may run as one nest:
** within one iteration the kernels run in order, so a value made earlier
** in the nest is read at the index it was written (elementwise, the nest's
** shape), never a sum still being made; and no write lands on bytes some
** kernel of the nest reads or writes at another index (the plan may give a
** dead value's slot to a later value: the same slot read and written at
** the same index is fine, any other overlap is not). */
static bool nest_joins(const lowerer *w, int i, int j, const kiln_shape *s)
{
    const kiln_kernel *ks = w->l->k;
    const kiln_shape *sj = nest_shape(w, &ks[j]);
    if (!sj || !kiln_shape_equal(sj, s) || ks[j].modes != ks[i].modes)
        return false;
    enum { CAP = 64 };
    int32_t rd[CAP];
    for (int q = i; q <= j; q++) {
        bool q_sum = ks[q].kind == KILN_KERNEL_REDUCTION;
        int nr = kernel_reads(w, &ks[q], rd, CAP);
        if (nr < 0)
            return false;
        for (int a = 0; a < nr; a++) {
            int32_t x = rd[a];
            bool aligned = kiln_shape_equal(&R(w, x)->shape, s);
            for (int o = i; o <= j; o++) { /* kernel o's write against this read */
                if (o != j && q != j)
                    continue; /* checked when the later of the two joined */
                int32_t y = ks[o].root;
                bool o_sum = ks[o].kind == KILN_KERNEL_REDUCTION;
                if (!may_overlap(w, y, x))
                    continue;
                if (o_sum || !aligned || !same_slot(w, y, x))
                    return false;
            }
        }
        if (q == j)
            continue;
        /* writes against writes */
        if (may_overlap(w, ks[q].root, ks[j].root) &&
            (q_sum || ks[j].kind == KILN_KERNEL_REDUCTION || !same_slot(w, ks[q].root, ks[j].root)))
            return false;
    }
    return true;
}

/* Kernels in a row that loop over one shape become one loop nest
** (emit_c.c, kernel_nest): each element's values are computed while its
** operands are in registers or L1, instead of one pass over memory per
** kernel. The same operations on the same values in the same order: the
** same bits. A fast path (the inner loop is printed without the
** compiler's alias checks, which nest_joins stands for). */
static void lower_shared_nests(lowerer *w)
{
    kiln_kernel_list *l = w->l;
    if (!kiln_lower_fast_paths(w->o))
        return;
    for (int i = 0; i < l->n;) {
        const kiln_shape *s = nest_shape(w, &l->k[i]);
        int j = i + 1;
        while (s && j < l->n && nest_joins(w, i, j, s))
            j++;
        l->k[i].nest = j - i;
        for (int q = i + 1; q < j; q++)
            l->k[q].nest = 0;
        i = j;
    }
}

/* The kernel of ks[i .. i+n) whose root is node x, or -1. */
static int nest_kernel_of(const kiln_kernel *ks, int i, int n, int32_t x)
{
    for (int q = i; q < i + n; q++)
        if (ks[q].root == x)
            return q;
    return -1;
}

/* Whether the concat ks[c] may be written by the nest ks[i .. c) as it
** computes its parts: a concat along the last axis of the nest's shape s
** whose every part is the value of an elementwise kernel of the nest (each
** once), with a constant length along that axis, in the same modes, and
** whose storage shares no byte with anything the nest reads or writes (the
** nest writes it at other indices than its own). */
static bool nest_takes_concat(const lowerer *w, int i, int c, const kiln_shape *s)
{
    const kiln_kernel *ks = w->l->k;
    const kiln_plan *p = w->p;
    const kiln_node_rec *rc = R(w, ks[c].root);
    if (rc->op != KILN_OP_CONCAT || ks[c].modes != ks[i].modes || kiln_attr_axis(rc) != s->rank - 1 ||
        rc->shape.rank != s->rank || rc->dtype != w->g->floatx || p->alias[ks[c].root] != ks[c].root ||
        p->buf[ks[c].root].zone == KILN_ZONE_NONE || kiln_dim_symbol(s->dims[s->rank - 1]) >= 0)
        return false;
    for (int a = 0; a < rc->n_in; a++) {
        int32_t x = rc->in[a];
        int q = nest_kernel_of(ks, i, c - i, x);
        if (q < 0 || ks[q].kind != KILN_KERNEL_ELEMENTWISE || !kiln_shape_equal(&R(w, x)->shape, s))
            return false;
        for (int b = 0; b < a; b++)
            if (rc->in[b] == x)
                return false;
    }
    enum { CAP = 64 };
    int32_t rd[CAP];
    for (int q = i; q < c; q++) {
        int nr = kernel_reads(w, &ks[q], rd, CAP);
        if (nr < 0 || may_overlap(w, ks[c].root, ks[q].root))
            return false;
        for (int a = 0; a < nr; a++)
            if (may_overlap(w, ks[c].root, rd[a]))
                return false;
    }
    return true;
}

/* Whether node y, made by a kernel of the nest ks[i .. i+n), is read by
** that nest alone: no reader outside it, not read after the step, no
** update's value or target, stored on its own among the values. */
static bool read_in_nest_only(const lowerer *w, int i, int n, int32_t y)
{
    const kiln_plan *p = w->p;
    if (p->alias[y] != y || p->buf[y].zone != KILN_ZONE_VALUE || read_after(w, y) || p->kept[y])
        return false;
    for (int u = 0; u < p->n_updates; u++)
        if (p->updates[u].value == y || p->updates[u].target == y)
            return false;
    for (int32_t id = 0; id < p->n; id++) {
        if (!p->modes[id])
            continue;
        for (int k = 0; k < R(w, id)->n_in; k++)
            if (p->alias[R(w, id)->in[k]] == y && nest_kernel_of(w->l->k, i, n, w->kernel_of[id]) < 0)
                return false;
    }
    return true;
}

/* In each loop nest: a concat of the nest's values that comes right after
** it is written by the nest (kiln_kernel.into: each part stored into its
** place as it is made; the concat, by_nest, has no loops of its own), and a
** value that only the nest and that concat read is a variable of the
** loop's body (nest_local), never stored. An LSTM's backward step: its
** gates' adjoints go straight to the row the weight gradients read, and
** its dh and dc stay in registers. The same operations in the same order:
** the same bits. */
static void lower_nest_values(lowerer *w)
{
    kiln_kernel *ks = w->l->k;
    if (!kiln_lower_fast_paths(w->o))
        return;
    for (int i = 0; i < w->l->n; i += ks[i].nest > 0 ? ks[i].nest : 1) {
        const kiln_shape *s = nest_shape(w, &ks[i]);
        const int n = ks[i].nest;
        if (!s || n < 2)
            continue;
        const bool concat = i + n < w->l->n && nest_takes_concat(w, i, i + n, s);
        if (concat) {
            const kiln_node_rec *rc = R(w, ks[i + n].root);
            int64_t at = 0;
            for (int a = 0; a < rc->n_in; a++) {
                int q = nest_kernel_of(ks, i, n, rc->in[a]);
                ks[q].into = ks[i + n].root;
                ks[q].into_at = at;
                at += R(w, rc->in[a])->shape.dims[s->rank - 1];
            }
            ks[i + n].by_nest = true;
        }
        for (int q = i; q < i + n; q++) /* the concat counted as one of the nest */
            ks[q].nest_local = ks[q].kind == KILN_KERNEL_ELEMENTWISE && read_in_nest_only(w, i, n + concat, ks[q].root);
    }
}

/* Whether ks[j], before the nest ks[i .. i+n) of shape s, is a slice the
** nest may read in place (kiln_kernel.viewed): step 1 along the last axis
** of s, of an input of the same leading axes, in the nest's modes, read by
** the nest alone, and its input written by nothing from the slice to the
** end of the nest (the kernels between are viewed slices: no writes; a
** body's result written in place lives outside the body's arena). */
static bool nest_views_slice(const lowerer *w, int i, int n, int j, const kiln_shape *s)
{
    const kiln_kernel *ks = w->l->k;
    const kiln_plan *p = w->p;
    const kiln_node_rec *r = R(w, ks[j].root);
    if (r->op != KILN_OP_SLICE || ks[j].nest != 1 || ks[j].modes != ks[i].modes || kiln_attr_axis(r) != s->rank - 1 ||
        r->attr.i[3] != 1 || !kiln_shape_equal(&r->shape, s) || !read_in_nest_only(w, i, n, ks[j].root))
        return false;
    int32_t x = r->in[0];
    const kiln_node_rec *rx = R(w, x);
    if (p->inline_[x] || rx->op == KILN_OP_CONST || rx->op == KILN_OP_SYMBOL || rx->dtype != r->dtype ||
        rx->shape.rank != s->rank)
        return false;
    for (int k = 0; k + 1 < s->rank; k++)
        if (rx->shape.dims[k] != s->dims[k])
            return false;
    int end = i + n + (i + n < w->l->n && ks[i + n].by_nest);
    if (w->l->result_at[p->alias[x]] >= 0)
        return false;
    for (int q = i; q < end; q++) /* a body's result in place is written where the scan says, not in its slot */
        if (w->l->result_at[p->alias[ks[q].root]] < 0 && may_overlap(w, ks[q].root, x))
            return false;
    return true;
}

/* Slices that only a loop nest reads, of the last axis (the gates of an
** LSTM's or a GRU's step, cut from one product), are read by the nest in
** place, as x[row * width + start + i], and not copied: the run of such
** slices right before each nest. The same values: the same bits. */
static void lower_nest_slices(lowerer *w)
{
    kiln_kernel *ks = w->l->k;
    if (!kiln_lower_fast_paths(w->o))
        return;
    for (int i = 0; i < w->l->n; i += ks[i].nest > 0 ? ks[i].nest : 1) {
        const kiln_shape *s = nest_shape(w, &ks[i]);
        if (!s || ks[i].nest < 2)
            continue;
        for (int j = i - 1; j >= 0 && nest_views_slice(w, i, ks[i].nest, j, s); j--)
            ks[j].viewed = true;
    }
}

static enum kiln_status lower_graph(const kiln_plan *p, const kiln_lower_options *o, kiln_kernel_list **out,
                                    kiln_err *err, int ctx_from, int n_args, const bool *needed,
                                    const int *result_at)
{
    kiln_kernel_list *l = calloc(1, sizeof *l);
    *out = l;
    if (!l)
        return kiln_err_set(err, KILN_ERR_NOMEM, "codegen: no memory");
    lowerer w = {.p = p, .g = p->g, .o = o, .l = l, .err = err, .needed = needed};
    size_t n1 = (size_t)p->n + 1, nu = (size_t)p->n_updates + 1, np = (size_t)p->n_params + 1;
    *l = (kiln_kernel_list){.plan = p, .options = *o, .fast_paths = kiln_lower_fast_paths(o), .scratch = -1,
                            .scratch_end = -1};
    l->kernel = malloc(n1 * sizeof *l->kernel);
    l->result_at = malloc(n1 * sizeof *l->result_at);
    l->slab_update = calloc(nu, sizeof *l->slab_update);
    l->update_scale = malloc(nu * sizeof *l->update_scale);
    l->defer = malloc(np * sizeof *l->defer);
    w.kernel_of = calloc(n1, sizeof *w.kernel_of);
    w.readers = calloc(n1, sizeof *w.readers);
    w.fused = malloc(n1 * sizeof *w.fused);
    w.absorbed = calloc(n1, sizeof *w.absorbed);
    w.sibling = malloc(n1 * sizeof *w.sibling);
    w.rows_with = malloc(n1 * sizeof *w.rows_with);
    w.defer_at = malloc(n1 * sizeof *w.defer_at);
    w.tr_in = malloc(n1 * sizeof *w.tr_in);
    w.pad_in = malloc(n1 * sizeof *w.pad_in);
    w.sum_of = malloc(n1 * sizeof *w.sum_of);
    w.scan_at = malloc(n1 * sizeof *w.scan_at);
    w.scan_carry = calloc(n1, sizeof *w.scan_carry);
    w.body_of = malloc(n1 * sizeof *w.body_of);
    w.stack = malloc(n1 * sizeof *w.stack);
    w.mark = calloc(n1, sizeof *w.mark);
    if (!w.stack || !w.mark || !l->kernel || !l->result_at || !l->slab_update || !l->update_scale || !l->defer || !w.kernel_of || !w.readers || !w.fused ||
        !w.absorbed || !w.sibling || !w.rows_with || !w.defer_at || !w.tr_in || !w.pad_in || !w.sum_of || !w.scan_at || !w.scan_carry ||
        !w.body_of) {
        lowerer_free(&w);
        return kiln_err_set(err, KILN_ERR_NOMEM, "codegen: no memory");
    }
    for (int32_t id = 0; id < p->n; id++) {
        l->result_at[id] = result_at ? result_at[id] : -1;
        l->kernel[id] = w.fused[id] = w.sibling[id] = w.rows_with[id] = w.defer_at[id] = w.tr_in[id] = w.pad_in[id] = -1;
        w.sum_of[id] = -1;
        w.scan_at[id] = -1;
        w.body_of[id] = -1;
    }
    for (int u = 0; u < p->n_updates; u++)
        l->update_scale[u] = -1;
    for (int i = 0; i < p->n_params; i++)
        l->defer[i] = -1;
    kernel_owners(&w);
    lower_transposed(&w, ctx_from, n_args);
    lower_fused_updates(&w);
    lower_slab_updates(&w);
    lower_deferred(&w);
    lower_scratch(&w);
    lower_siblings(&w);
    lower_shared_rows(&w);
    lower_addends(&w);
    enum kiln_status st = lower_scans(&w);
    if (!st)
        st = make_records(&w);
    if (!st) {
        lower_shared_nests(&w);
        lower_nest_values(&w);
        lower_nest_slices(&w);
    }
    lowerer_free(&w);
    return st;
}

enum kiln_status kiln_lower(const kiln_plan *p, const kiln_lower_options *o, kiln_kernel_list **out, kiln_err *err)
{
    enum kiln_status st = lower_graph(p, o, out, err, 0, 0, NULL, NULL);
    if (st) {
        kiln_kernel_list_free(*out);
        *out = NULL;
    }
    return st;
}

void kiln_kernel_list_free(kiln_kernel_list *l)
{
    if (!l)
        return;
    for (int b = 0; b < l->n_bodies; b++) {
        kiln_kernel_list_free(l->bodies[b]);
        kiln_plan_free(&l->body_plans[b]);
    }
    for (int i = 0; l->k && i < l->n; i++) {
        free(l->k[i].transposed);
        free(l->k[i].padded);
    }
    free(l->bodies);
    free(l->body_plans);
    free(l->k);
    free(l->kernel);
    free(l->result_at);
    free(l->members);
    free(l->slab_update);
    free(l->update_scale);
    free(l->defer);
    free(l);
}

const char *kiln_kernel_kind_name(enum kiln_kernel_kind k)
{
    static const char *const names[] = {"gemm", "gemm_batched", "elementwise", "reduction",
                                        "rows", "structural",   "random",      "scan"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

static void print_list(const kiln_kernel_list *l, kiln_strbuf *out, int depth)
{
    const kiln_plan *p = l->plan;
    static const char *const fast[] = {"fused_update", "defer_store", "defer_apply", "own_nn", "own_tn"};
    for (int i = 0; i < l->n; i++) {
        const kiln_kernel *k = &l->k[i];
        const kiln_node_rec *r = kiln_graph_cnode(p->g, k->root);
        char sh[KILN_SHAPE_STR_MAX];
        kiln_strbuf_put(out, "%*skernel %d: %s node %d:%s %s modes %u", 2 * depth, "", i,
                        kiln_kernel_kind_name(k->kind), (int)k->root, kiln_op_info_of(r->op)->name,
                        kiln_shape_str(p->g, &r->shape, sh, sizeof sh), k->modes);
        for (int b = 0; b < 5; b++)
            if (k->fast >> b & 1)
                kiln_strbuf_put(out, " %s", fast[b]);
        if (k->n_members) {
            kiln_strbuf_put(out, " members");
            for (int m = 0; m < k->n_members && m < 8; m++)
                kiln_strbuf_put(out, "%s%d", m ? "," : " ", (int)l->members[k->first_member + m]);
            if (k->n_members > 8)
                kiln_strbuf_put(out, ",.. (%d)", k->n_members);
        }
        if (k->update >= 0)
            kiln_strbuf_put(out, " update %d alpha -node%d beta 1 c node%d", k->update, (int)k->scale,
                            (int)p->updates[k->update].target);
        if (k->defer_param >= 0)
            kiln_strbuf_put(out, " slot @%" PRId64, l->defer[k->defer_param]);
        if (k->sibling >= 0)
            kiln_strbuf_put(out, " with_sum node %d", (int)k->sibling);
        if (k->rows_with >= 0)
            kiln_strbuf_put(out, " with_softmax node %d", (int)k->rows_with);
        if (k->tr_in >= 0)
            kiln_strbuf_put(out, " w_transposed input %d", k->tr_in);
        if (k->pad_in >= 0)
            kiln_strbuf_put(out, " w_padded input %d", k->pad_in);
        if (k->nest > 1)
            kiln_strbuf_put(out, " nest of %d", k->nest);
        else if (k->nest == 0)
            kiln_strbuf_put(out, " in the nest above");
        if (k->nest_local)
            kiln_strbuf_put(out, " local");
        if (k->into >= 0)
            kiln_strbuf_put(out, " into node %d at %" PRId64, (int)k->into, k->into_at);
        if (k->by_nest)
            kiln_strbuf_put(out, " written by the nest above");
        if (k->viewed)
            kiln_strbuf_put(out, " read in place by the nest below");
        if (k->sum >= 0)
            kiln_strbuf_put(out, " addend node %d (%s) into node %d:add", (int)k->addend, k->addend_row ? "row" : "matrix",
                            (int)k->sum);
        if (k->body >= 0)
            kiln_strbuf_put(out, " body %d region @%" PRId64 " carry @%" PRId64, k->body, k->scan_at,
                            k->scan_at + k->scan_carry);
        kiln_strbuf_put(out, "\n");
        if (k->body >= 0)
            print_list(l->bodies[k->body], out, depth + 1);
    }
    for (int u = 0; u < p->n_updates; u++)
        if (l->slab_update[u])
            kiln_strbuf_put(out, "%*sslab update %d: node %d -= node %d * grad\n", 2 * depth, "", u,
                            (int)p->updates[u].target, (int)l->update_scale[u]);
    for (int i = 0; i < p->n_params; i++)
        if (l->defer[i] >= 0)
            kiln_strbuf_put(out, "%*sdeferred slot of parameter %d (node %d) @%" PRId64 "\n", 2 * depth, "", i,
                            (int)p->param_node[i], l->defer[i]);
    if (l->scratch >= 0)
        kiln_strbuf_put(out, "%*sgemm scratch @%" PRId64 " (%" PRId64 " bytes) for %d x %d\n", 2 * depth, "",
                        l->scratch, l->scratch_end - l->scratch, l->gemm_n, l->gemm_k);
    kiln_strbuf_put(out, "%*sarena %" PRId64 " bytes, fast paths %s\n", 2 * depth, "", l->arena_bytes,
                    l->fast_paths ? "on" : "off");
}

void kiln_kernel_list_print(const kiln_kernel_list *l, kiln_strbuf *out) { print_list(l, out, 0); }
