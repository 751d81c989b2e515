/* passes.c: rewrites applied as nodes are built, dead-code elimination by
** rebuilding, and elementwise fusion.
**
** Why rewrite in the builder instead of a pass manager: every node of a
** program graph, including each one autodiff emits, goes through
** kiln_graph_add, so folding, canonical operand order (for CSE) and the
** pattern rewrites see the whole graph without a fixed-point loop. A rewrite
** only ever returns an existing node or builds nodes from existing ones, so
** ids stay topological.
**
** Rewrites (all exact, none reorders floating-point sums):
**   op(const, const)          -> const            (folding)
**   x*1, 1*x, x+0, x-0, x/1   -> x                (when the shape is x's)
**   --x                       -> x
**   a+b, a*b (b < a)          -> b+a, b*a         (canonical order for CSE)
**   transpose(transpose(x))   -> x
**   matmul(transpose(a), b)   -> matmul(a, b) with trans_a flipped (layout)
**   reshape(reshape(x))       -> reshape(x)
**   reshape/broadcast of a broadcast scalar -> one broadcast
**   a * broadcast(s), s scalar -> a * s      (binary ops broadcast anyway)
**   log(softmax(x))           -> log_softmax(x)
**   log(sigmoid(x))           -> -softplus(-x)    (Theano's stabilise: finite
**   log(1 - sigmoid(x))       -> -softplus(x)      where sigmoid rounds to 0
**                                or 1, past |x| ~ 37 in float64, ~ 17 in
**                                float32; 1 - s also as 1 + (-s), #9)
**   log(pick(sigmoid(x), y))  -> pick(-softplus(-x), y)
**   log(pick(softmax(x), y))  -> pick(log_softmax(x), y)
**   -pick(log_softmax(x), y)  -> softmax_xent(x, y) (stable; its gradient is
**                                softmax(x) - onehot(y))
**   matmul(a (.., m, k), b (k, n)) -> reshape(matmul(a as (..*m, k), b)):
**                                one GEMM instead of a batch of small ones,
**                                and its gradient stays 2-D
**   pad(x) to x's own shape   -> x
**   pad(a) + pad(b), a and b adjacent along the padded axis
**                             -> pad(concat(a, b)) (the adjoint of a value
**                                read as slices, e.g. an LSTM's four gates:
**                                one copy per part instead of a zero-filled
**                                full-size value per part and their sums;
**                                x + 0 = x, only a -0 becomes +0 no more)
** A rewrite that changes a record's inputs copies them into an array of
** its own first: a record's `in` may point into the graph.
*/
#include "compiler/passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_const(const kiln_graph *g, int32_t id, double *v)
{
    const kiln_node_rec *r = kiln_graph_cnode(g, id);
    if (r->op != KILN_OP_CONST)
        return false;
    if (v)
        *v = r->attr.f[0];
    return true;
}

static bool is_const_val(const kiln_graph *g, int32_t id, double want)
{
    double v;
    return is_const(g, id, &v) && v == want;
}

static int32_t add_const(kiln_graph *g, double v, enum kiln_dtype t)
{
    kiln_node_rec c = kiln_rec(KILN_OP_CONST, t, 0, NULL);
    c.attr.f[0] = v;
    return kiln_graph_add(g, &c);
}

/* rec with inputs `in` (an array of the caller's, copied by the builder). */
static int32_t add_with(kiln_graph *g, const kiln_node_rec *rec, const int32_t *in)
{
    kiln_node_rec r2 = *rec;
    r2.in = (int32_t *)in;
    return kiln_graph_add(g, &r2);
}

/* x when id is sigmoid(x), else -1. */
static int32_t sigmoid_of(const kiln_graph *g, int32_t id)
{
    const kiln_node_rec *r = kiln_graph_cnode(g, id);
    return r->op == KILN_OP_SIGMOID ? r->in[0] : -1;
}

/* Whether id is the constant 1, or a broadcast of it. */
static bool is_one(const kiln_graph *g, int32_t id)
{
    const kiln_node_rec *r = kiln_graph_cnode(g, id);
    if (r->op == KILN_OP_BROADCAST && kiln_graph_cnode(g, r->in[0])->shape.rank == 0)
        return is_const_val(g, r->in[0], 1);
    return is_const_val(g, id, 1);
}

/* x when id is 1 - sigmoid(x) as the builders leave it: sub(1, sigmoid(x)),
** or add(1, neg(sigmoid(x))) with the operands in either order (CSE's
** canonical order is by id); else -1. */
static int32_t one_minus_sigmoid_of(const kiln_graph *g, int32_t id)
{
    const kiln_node_rec *r = kiln_graph_cnode(g, id);
    if (r->op == KILN_OP_SUB && is_one(g, r->in[0]))
        return sigmoid_of(g, r->in[1]);
    if (r->op != KILN_OP_ADD)
        return -1;
    for (int k = 0; k < 2; k++) {
        const kiln_node_rec *n = kiln_graph_cnode(g, r->in[1 - k]);
        if (is_one(g, r->in[k]) && n->op == KILN_OP_NEG)
            return sigmoid_of(g, n->in[0]);
    }
    return -1;
}

/* x itself can stand for rec when it already has rec's shape and dtype. */
static bool same_type(const kiln_graph *g, int32_t x, const kiln_node_rec *rec)
{
    const kiln_node_rec *r = kiln_graph_cnode(g, x);
    return r->dtype == rec->dtype && kiln_shape_equal(&r->shape, &rec->shape);
}

/* parts[n..] += the parts of x joined along axis (a concat's inputs, or x
** itself); the new count, or -1 past cap. */
static int concat_parts(const kiln_graph *g, int32_t x, int axis, int32_t *parts, int n, int cap)
{
    const kiln_node_rec *r = kiln_graph_cnode(g, x);
    if (n < 0)
        return -1;
    if (r->op == KILN_OP_CONCAT && r->attr.i[0] == axis) {
        if (n + r->n_in > cap)
            return -1;
        memcpy(parts + n, r->in, sizeof *parts * (size_t)r->n_in);
        return n + r->n_in;
    }
    if (n >= cap)
        return -1;
    parts[n++] = x;
    return n;
}

/* pad(a) + pad(b) of rec's shape, padded along the same axis, where one
** part ends where the other starts: pad(concat(lower, upper)) (nested
** concats flattened); KILN_REWRITE_NONE otherwise. */
static int32_t pads_joined(kiln_graph *g, const kiln_node_rec *rec)
{
    const kiln_node_rec *p[2] = {kiln_graph_cnode(g, rec->in[0]), kiln_graph_cnode(g, rec->in[1])};
    for (int k = 0; k < 2; k++)
        if (p[k]->op != KILN_OP_PAD || p[k]->attr.i[3] != 1 || p[k]->dtype != rec->dtype ||
            !kiln_shape_equal(&p[k]->shape, &rec->shape))
            return KILN_REWRITE_NONE;
    int axis = (int)p[0]->attr.i[0];
    if (p[1]->attr.i[0] != axis)
        return KILN_REWRITE_NONE;
    int64_t len[2];
    for (int k = 0; k < 2; k++) {
        len[k] = kiln_graph_cnode(g, p[k]->in[0])->shape.dims[axis];
        if (len[k] <= 0)
            return KILN_REWRITE_NONE;
    }
    int lo = p[0]->attr.i[1] + len[0] == p[1]->attr.i[1] ? 0 : p[1]->attr.i[1] + len[1] == p[0]->attr.i[1] ? 1 : -1;
    if (lo < 0)
        return KILN_REWRITE_NONE;
    int32_t parts[64];
    int n = concat_parts(g, p[lo]->in[0], axis, parts, 0, 64);
    n = concat_parts(g, p[1 - lo]->in[0], axis, parts, n, 64);
    if (n < 0)
        return KILN_REWRITE_NONE;
    kiln_node nodes[64];
    for (int k = 0; k < n; k++)
        nodes[k] = (kiln_node){parts[k]};
    kiln_node c = kiln_expr_concat(g, nodes, n, axis);
    if (!kiln_node_ok(c))
        return -1;
    return kiln_expr_pad(g, c, axis, p[lo]->attr.i[1], rec->shape.dims[axis]).id;
}

int32_t kiln_rewrite_node(kiln_graph *g, const kiln_node_rec *rec)
{
    const kiln_op_info *info = kiln_op_info_of(rec->op);
    int32_t a = rec->n_in > 0 ? rec->in[0] : -1, b = rec->n_in > 1 ? rec->in[1] : -1;
    const kiln_node_rec *ra = a >= 0 ? kiln_graph_cnode(g, a) : NULL;
    double va, vb;
    int32_t in[3];

    /* Folding of scalar constants (CLIP folds with its bounds; CAST, ONEHOT
    ** and BROADCAST are not arithmetic on floats). */
    if (info->cls == KILN_CLASS_UNARY && rec->shape.rank == 0 && is_const(g, a, &va) && rec->op != KILN_OP_ONEHOT &&
        rec->op != KILN_OP_BROADCAST && rec->op != KILN_OP_CAST) {
        return add_const(g, kiln_op_scalar_unary(rec->op, va, &rec->attr), rec->dtype);
    }
    if (info->cls == KILN_CLASS_BINARY && rec->shape.rank == 0 && is_const(g, a, &va) && is_const(g, b, &vb))
        return add_const(g, kiln_op_scalar_binary(rec->op, va, vb), rec->dtype);

    /* A binary op broadcasts by itself: drop a broadcast of a scalar operand. */
    if (info->cls == KILN_CLASS_BINARY) {
        for (int k = 0; k < 2; k++) {
            const kiln_node_rec *rk = kiln_graph_cnode(g, rec->in[k]);
            const kiln_node_rec *ro = kiln_graph_cnode(g, rec->in[1 - k]);
            if (rk->op == KILN_OP_BROADCAST && kiln_graph_cnode(g, rk->in[0])->shape.rank == 0 &&
                kiln_shape_equal(&ro->shape, &rec->shape)) {
                in[k] = rk->in[0];
                in[1 - k] = rec->in[1 - k];
                return add_with(g, rec, in);
            }
        }
    }

    switch (rec->op) {
    case KILN_OP_ADD:
    case KILN_OP_MUL:
    case KILN_OP_MAXIMUM:
    case KILN_OP_MINIMUM:
    case KILN_OP_EQ:
    case KILN_OP_NE:
        if (rec->op == KILN_OP_ADD) {
            if (is_const_val(g, b, 0) && same_type(g, a, rec)) return a;
            if (is_const_val(g, a, 0) && same_type(g, b, rec)) return b;
        }
        if (rec->op == KILN_OP_MUL) {
            if (is_const_val(g, b, 1) && same_type(g, a, rec)) return a;
            if (is_const_val(g, a, 1) && same_type(g, b, rec)) return b;
        }
        if (rec->op == KILN_OP_ADD) {
            int32_t j = pads_joined(g, rec);
            if (j != KILN_REWRITE_NONE)
                return j;
        }
        if (b < a) { /* commutative: canonical operand order so CSE sees a+b == b+a */
            in[0] = b;
            in[1] = a;
            return add_with(g, rec, in);
        }
        break;
    case KILN_OP_SUB:
        if (is_const_val(g, b, 0) && same_type(g, a, rec)) return a;
        break;
    case KILN_OP_PAD:
        if (same_type(g, a, rec)) return a;
        break;
    case KILN_OP_DIV:
        if (is_const_val(g, b, 1) && same_type(g, a, rec)) return a;
        break;
    case KILN_OP_NEG:
        if (ra->op == KILN_OP_NEG) return ra->in[0];
        if (ra->op == KILN_OP_PICK && kiln_graph_cnode(g, ra->in[0])->op == KILN_OP_LOGSOFTMAX) {
            kiln_node x = {kiln_graph_cnode(g, ra->in[0])->in[0]};
            return kiln_expr_softmax_xent(g, x, (kiln_node){ra->in[1]}).id;
        }
        break;
    case KILN_OP_LOG: {
        int32_t x = sigmoid_of(g, a), y = one_minus_sigmoid_of(g, a);
        if (x >= 0 && same_type(g, x, rec))
            return kiln_expr_neg(g, kiln_expr_softplus(g, kiln_expr_neg(g, (kiln_node){x}))).id;
        if (y >= 0 && same_type(g, y, rec))
            return kiln_expr_neg(g, kiln_expr_softplus(g, (kiln_node){y})).id;
        if (ra->op == KILN_OP_PICK && sigmoid_of(g, ra->in[0]) >= 0) {
            kiln_node ls = kiln_expr_log(g, (kiln_node){ra->in[0]});
            return kiln_expr_pick(g, ls, (kiln_node){ra->in[1]}).id;
        }
        if (ra->op == KILN_OP_SOFTMAX)
            return kiln_expr_log_softmax(g, (kiln_node){ra->in[0]}).id;
        if (ra->op == KILN_OP_PICK && kiln_graph_cnode(g, ra->in[0])->op == KILN_OP_SOFTMAX) {
            kiln_node x = {kiln_graph_cnode(g, ra->in[0])->in[0]};
            kiln_node ls = kiln_expr_log_softmax(g, x);
            return kiln_expr_pick(g, ls, (kiln_node){ra->in[1]}).id;
        }
        break;
    }
    case KILN_OP_TRANSPOSE:
        if (ra->op == KILN_OP_TRANSPOSE) { /* compose: out k = in perm[k] = x inner[perm[k]] */
            int perm[KILN_MAX_RANK];
            for (int k = 0; k < rec->shape.rank; k++)
                perm[k] = (int)ra->attr.i[rec->attr.i[k]];
            return kiln_expr_permute(g, (kiln_node){ra->in[0]}, rec->shape.rank, perm).id;
        }
        break;
    case KILN_OP_RESHAPE:
        if (same_type(g, a, rec)) return a;
        if (ra->op == KILN_OP_RESHAPE) {
            in[0] = ra->in[0];
            return add_with(g, rec, in);
        }
        if (ra->op == KILN_OP_BROADCAST && kiln_graph_cnode(g, ra->in[0])->shape.rank == 0)
            return kiln_expr_broadcast_to(g, (kiln_node){ra->in[0]}, &rec->shape).id;
        break;
    case KILN_OP_BROADCAST:
        if (same_type(g, a, rec)) return a;
        if (ra->op == KILN_OP_BROADCAST)
            return kiln_expr_broadcast_to(g, (kiln_node){ra->in[0]}, &rec->shape).id;
        break;
    case KILN_OP_MATMUL: {
        const kiln_node_rec *rb = kiln_graph_cnode(g, b);
        bool swap2a = ra->op == KILN_OP_TRANSPOSE && ra->shape.rank == 2;
        bool swap2b = rb->op == KILN_OP_TRANSPOSE && rb->shape.rank == 2;
        if (swap2a || swap2b) { /* 2-D transposes become BLAS flags */
            kiln_node_rec r2 = *rec;
            in[0] = swap2a ? ra->in[0] : a;
            in[1] = swap2b ? rb->in[0] : b;
            if (swap2a) r2.attr.i[0] = !rec->attr.i[0];
            if (swap2b) r2.attr.i[1] = !rec->attr.i[1];
            return add_with(g, &r2, in);
        }
        if (ra->shape.rank > 2 && rb->shape.rank == 2 && !kiln_attr_trans_a(rec)) {
            /* fold a's batch axes into its rows: one GEMM */
            kiln_shape flat = {.rank = 2};
            flat.dims[1] = ra->shape.dims[ra->shape.rank - 1];
            int64_t dims[2] = {KILN_INFER, flat.dims[1]};
            kiln_node a2 = kiln_expr_reshape(g, (kiln_node){a}, 2, dims);
            kiln_node m = kiln_expr_matmul_t(g, a2, (kiln_node){b}, false, kiln_attr_trans_b(rec));
            if (!kiln_node_ok(m))
                return -1;
            return kiln_expr_reshape_shape(g, m, &rec->shape).id;
        }
        break;
    }
    default:
        break;
    }
    return KILN_REWRITE_NONE;
}

kiln_graph *kiln_rebuild(const kiln_graph *src, const int32_t *roots, int n_roots, int32_t *map, kiln_err *err)
{
    kiln_graph *dst = kiln_graph_create_program(src->floatx);
    unsigned char *live = calloc((size_t)src->n_nodes + 1, 1);
    int32_t *in = NULL;
    int max_in = 0;
    for (int32_t id = 0; id < src->n_nodes; id++)
        if (src->nodes[id].n_in > max_in)
            max_in = src->nodes[id].n_in;
    in = malloc(sizeof *in * ((size_t)max_in + 1));
    if (!dst || !live || !in || !kiln_graph_copy_dims(dst, src)) {
        kiln_graph_destroy(dst);
        free(live);
        free(in);
        kiln_err_set(err, KILN_ERR_NOMEM, "rebuild: no memory for %d nodes", (int)src->n_nodes);
        return NULL;
    }
    dst->n_streams = src->n_streams;
    for (int i = 0; i < n_roots; i++)
        if (roots[i] >= 0)
            live[roots[i]] = 1;
    for (int32_t id = src->n_nodes - 1; id >= 0; id--)
        if (live[id])
            for (int k = 0; k < src->nodes[id].n_in; k++)
                live[src->nodes[id].in[k]] = 1;
    for (int32_t id = 0; id < src->n_nodes; id++) {
        map[id] = -1;
        if (!live[id])
            continue;
        kiln_node_rec rec = src->nodes[id];
        for (int k = 0; k < rec.n_in; k++)
            in[k] = map[rec.in[k]];
        rec.in = in;
        rec.replaces = rec.replaces >= 0 ? map[rec.replaces] : -1;
        if (rec.op == KILN_OP_SCAN) /* its body is rebuilt too, into dst */
            rec.attr.i[KILN_SCAN_BODY] = kiln_scan_copy_body(dst, src, (int32_t)rec.attr.i[KILN_SCAN_BODY], true);
        map[id] = rec.op == KILN_OP_SCAN && rec.attr.i[KILN_SCAN_BODY] < 0 ? -1 : kiln_graph_add(dst, &rec);
        if (map[id] < 0 || dst->err.status) {
            kiln_err_copy(err, &dst->err, "rebuild: ");
            kiln_graph_destroy(dst);
            free(live);
            free(in);
            return NULL;
        }
    }
    /* the graph's own updates whose target and value both survive */
    for (int32_t i = 0; i < src->n_updates; i++) {
        int32_t t = map[src->updates[i].target], v = map[src->updates[i].value];
        if (t >= 0 && v >= 0 && t != v && kiln_graph_add_update(dst, t, v, src->updates[i].on_read) != KILN_OK) {
            kiln_err_copy(err, &dst->err, "rebuild: ");
            kiln_graph_destroy(dst);
            free(live);
            free(in);
            return NULL;
        }
    }
    free(live);
    free(in);
    return dst;
}

/* Fusion: a node is computed inside its consumer's loop (inline) when it is
** elementwise, read exactly once, not pinned, and the consumer is an
** elementwise node of the same shape or a reduction over it. Scalar leaves
** (constants, symbol sizes) are always inline: they are literals. BROADCAST
** and ONEHOT are index maps over a stored input and may be inline wherever
** their consumer loops over their shape. */
void kiln_fuse_elementwise(const kiln_graph *g, const bool *pinned, bool *inline_)
{
    int32_t n = g->n_nodes;
    int32_t *uses = calloc((size_t)n + 1, sizeof *uses);
    int32_t *consumer = calloc((size_t)n + 1, sizeof *consumer);
    if (!uses || !consumer) { /* without memory, fuse nothing: still correct */
        for (int32_t i = 0; i < n; i++)
            inline_[i] = false;
        free(uses);
        free(consumer);
        return;
    }
    for (int32_t id = 0; id < n; id++)
        for (int k = 0; k < g->nodes[id].n_in; k++) {
            uses[g->nodes[id].in[k]]++;
            consumer[g->nodes[id].in[k]] = id;
        }
    for (int32_t id = 0; id < n; id++) {
        const kiln_node_rec *r = &g->nodes[id];
        inline_[id] = false;
        if (r->op == KILN_OP_CONST || r->op == KILN_OP_SYMBOL) {
            inline_[id] = !pinned[id];
            continue;
        }
        if (!kiln_op_is_elementwise(r->op) || pinned[id] || uses[id] != 1)
            continue;
        const kiln_node_rec *c = &g->nodes[consumer[id]];
        if (kiln_op_is_elementwise(c->op) && c->op != KILN_OP_BROADCAST && c->op != KILN_OP_ONEHOT &&
            kiln_shape_equal(&c->shape, &r->shape))
            inline_[id] = true;
        else if (c->op == KILN_OP_SUM || c->op == KILN_OP_MAX)
            inline_[id] = true;
    }
    free(uses);
    free(consumer);
}
