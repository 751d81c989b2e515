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
**   log(pick(softmax(x), y))  -> pick(log_softmax(x), y)
**   -pick(log_softmax(x), y)  -> softmax_xent(x, y) (stable; its gradient is
**                                softmax(x) - onehot(y))
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
        *v = r->value;
    return true;
}

static bool is_const_val(const kiln_graph *g, int32_t id, double want)
{
    double v;
    return is_const(g, id, &v) && v == want;
}

static double fold_unary(enum kiln_op op, double x)
{
    switch (op) {
    case KILN_OP_NEG: return -x;
    case KILN_OP_EXP: return exp(x);
    case KILN_OP_LOG: return log(x);
    case KILN_OP_ABS: return fabs(x);
    case KILN_OP_SQRT: return sqrt(x);
    case KILN_OP_SQUARE: return x * x;
    case KILN_OP_TANH: return tanh(x);
    case KILN_OP_SIGMOID: return 1 / (1 + exp(-x));
    case KILN_OP_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case KILN_OP_RELU: return x > 0 ? x : 0;
    case KILN_OP_SIGN: return (x > 0) - (x < 0);
    case KILN_OP_STEP: return x > 0;
    default: return NAN;
    }
}

static double fold_binary(enum kiln_op op, double a, double b)
{
    switch (op) {
    case KILN_OP_ADD: return a + b;
    case KILN_OP_SUB: return a - b;
    case KILN_OP_MUL: return a * b;
    case KILN_OP_DIV: return a / b;
    case KILN_OP_POW: return pow(a, b);
    case KILN_OP_MAXIMUM: return a >= b ? a : b;
    case KILN_OP_GE: return a >= b;
    case KILN_OP_EQ: return a == b;
    case KILN_OP_NE: return a != b;
    default: return NAN;
    }
}

static int32_t add_const(kiln_graph *g, double v, enum kiln_dtype t)
{
    kiln_node_rec c = {.op = KILN_OP_CONST, .dtype = t, .value = v};
    return kiln_graph_add(g, &c);
}

/* x itself can stand for rec when it already has rec's shape and dtype. */
static bool same_type(const kiln_graph *g, int32_t x, const kiln_node_rec *rec)
{
    const kiln_node_rec *r = kiln_graph_cnode(g, x);
    return r->dtype == rec->dtype && kiln_shape_equal(&r->shape, &rec->shape);
}

int32_t kiln_rewrite_node(kiln_graph *g, const kiln_node_rec *rec)
{
    const kiln_op_info *info = kiln_op_info_of(rec->op);
    int32_t a = rec->n_in > 0 ? rec->in[0] : -1, b = rec->n_in > 1 ? rec->in[1] : -1;
    const kiln_node_rec *ra = a >= 0 ? kiln_graph_cnode(g, a) : NULL;
    double va, vb;

    /* Folding of scalar constants. */
    if (info->cls == KILN_CLASS_UNARY && rec->shape.rank == 0 && is_const(g, a, &va) &&
        rec->op != KILN_OP_ONEHOT && rec->op != KILN_OP_BROADCAST)
        return add_const(g, fold_unary(rec->op, va), rec->dtype);
    if (info->cls == KILN_CLASS_BINARY && rec->shape.rank == 0 && is_const(g, a, &va) && is_const(g, b, &vb))
        return add_const(g, fold_binary(rec->op, va, vb), rec->dtype);
    if ((rec->op == KILN_OP_SUM || rec->op == KILN_OP_MAX) && is_const(g, a, &va) && ra->shape.rank == 0)
        return a;

    /* A binary op broadcasts by itself: drop a broadcast of a scalar operand. */
    if (info->cls == KILN_CLASS_BINARY) {
        for (int k = 0; k < 2; k++) {
            const kiln_node_rec *rk = kiln_graph_cnode(g, rec->in[k]);
            const kiln_node_rec *ro = kiln_graph_cnode(g, rec->in[1 - k]);
            if (rk->op == KILN_OP_BROADCAST && kiln_graph_cnode(g, rk->in[0])->shape.rank == 0 &&
                kiln_shape_equal(&ro->shape, &rec->shape)) {
                kiln_node_rec r2 = *rec;
                r2.in[k] = rk->in[0];
                return kiln_graph_add(g, &r2);
            }
        }
    }

    switch (rec->op) {
    case KILN_OP_ADD:
    case KILN_OP_MUL:
    case KILN_OP_MAXIMUM:
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
        if (b < a) { /* commutative: canonical operand order so CSE sees a+b == b+a */
            kiln_node_rec swapped = *rec;
            swapped.in[0] = b;
            swapped.in[1] = a;
            return kiln_graph_add(g, &swapped);
        }
        break;
    case KILN_OP_SUB:
        if (is_const_val(g, b, 0) && same_type(g, a, rec)) return a;
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
    case KILN_OP_LOG:
        if (ra->op == KILN_OP_SOFTMAX)
            return kiln_expr_log_softmax(g, (kiln_node){ra->in[0]}).id;
        if (ra->op == KILN_OP_PICK && kiln_graph_cnode(g, ra->in[0])->op == KILN_OP_SOFTMAX) {
            kiln_node x = {kiln_graph_cnode(g, ra->in[0])->in[0]};
            kiln_node ls = kiln_expr_log_softmax(g, x);
            return kiln_expr_pick(g, ls, (kiln_node){ra->in[1]}).id;
        }
        break;
    case KILN_OP_TRANSPOSE:
        if (ra->op == KILN_OP_TRANSPOSE) return ra->in[0];
        break;
    case KILN_OP_RESHAPE:
        if (same_type(g, a, rec)) return a;
        if (ra->op == KILN_OP_RESHAPE) {
            kiln_node_rec r2 = *rec;
            r2.in[0] = ra->in[0];
            return kiln_graph_add(g, &r2);
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
        if (ra->op == KILN_OP_TRANSPOSE || rb->op == KILN_OP_TRANSPOSE) {
            kiln_node_rec r2 = *rec;
            if (ra->op == KILN_OP_TRANSPOSE) { r2.in[0] = ra->in[0]; r2.trans_a = !rec->trans_a; }
            if (rb->op == KILN_OP_TRANSPOSE) { r2.in[1] = rb->in[0]; r2.trans_b = !rec->trans_b; }
            return kiln_graph_add(g, &r2);
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
    if (!dst || !live) {
        kiln_graph_destroy(dst);
        free(live);
        kiln_err_set(err, KILN_ERR_NOMEM, "rebuild: no memory for %d nodes", (int)src->n_nodes);
        return NULL;
    }
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
            rec.in[k] = map[rec.in[k]];
        map[id] = kiln_graph_add(dst, &rec);
        if (map[id] < 0 || dst->err.status) {
            kiln_err_copy(err, &dst->err, "rebuild: ");
            kiln_graph_destroy(dst);
            free(live);
            return NULL;
        }
    }
    free(live);
    return dst;
}

/* Fusion: a node is computed inside its consumer's loop (inline) when it is
** elementwise, read exactly once, not pinned, and the consumer is an
** elementwise node of the same shape or a reduction over it. Scalar leaves
** (constants, B, hyperparameters) are always inline: they are literals or
** single loads. BROADCAST and ONEHOT are index maps over a stored input and
** may be inline wherever their consumer loops over their shape. */
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
        if (r->op == KILN_OP_CONST || r->op == KILN_OP_BATCH || r->op == KILN_OP_HYPER) {
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
