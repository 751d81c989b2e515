/* expr.c: the public expression builders; shape and dtype inference.
**
** Each builder checks its operands, infers the result's shape (numpy
** broadcasting for elementwise ops, right-aligned), and adds one node
** through kiln_graph_add. Composite expressions (mean, softmax-free
** cross-entropy helpers) are built from primitive ops so that autodiff and
** codegen only ever see the small op set of graph.h. */
#include <string.h>

#include "compiler/graph.h"

static bool is_float(const kiln_graph *g, enum kiln_dtype t) { return t == g->floatx; }

static kiln_node add_rec(kiln_graph *g, kiln_node_rec *rec)
{
    int32_t id = kiln_graph_add(g, rec);
    return (kiln_node){id < 0 ? -1 : id};
}

/* Broadcast a and b into out; false when they do not fit. */
static bool broadcast_shapes(const kiln_shape *a, const kiln_shape *b, kiln_shape *out)
{
    int rank = a->rank > b->rank ? a->rank : b->rank;
    out->rank = rank;
    for (int i = 0; i < rank; i++) {
        int ia = a->rank - rank + i, ib = b->rank - rank + i;
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da == db || db == 1)
            out->dims[i] = da;
        else if (da == 1)
            out->dims[i] = db;
        else
            return false;
    }
    return true;
}

static kiln_node unary(kiln_graph *g, enum kiln_op op, kiln_node a)
{
    return kiln_expr_unary_op(g, op, a);
}

kiln_node kiln_expr_unary_op(kiln_graph *g, enum kiln_op op, kiln_node a)
{
    if (!kiln_graph_check(g, a, kiln_op_info_of(op)->name))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = kiln_graph_cnode(g, a.id);
    if (!is_float(g, ra->dtype))
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "%s of '%s': operand is %s, expected %s",
                               kiln_op_info_of(op)->name, ra->name ? ra->name : "?",
                               kiln_dtype_name(ra->dtype), kiln_dtype_name(g->floatx));
    kiln_node_rec rec = {.op = op, .dtype = ra->dtype, .shape = ra->shape, .n_in = 1, .in = {a.id}};
    return add_rec(g, &rec);
}

static kiln_node binary(kiln_graph *g, enum kiln_op op, kiln_node a, kiln_node b)
{
    return kiln_expr_binary_op(g, op, a, b);
}

kiln_node kiln_expr_binary_op(kiln_graph *g, enum kiln_op op, kiln_node a, kiln_node b)
{
    const char *what = kiln_op_info_of(op)->name;
    if (!kiln_graph_check(g, a, what) || !kiln_graph_check(g, b, what))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = kiln_graph_cnode(g, a.id), *rb = kiln_graph_cnode(g, b.id);
    bool compare = op == KILN_OP_NE || op == KILN_OP_EQ || op == KILN_OP_GE;
    if (compare ? ra->dtype != rb->dtype : !(is_float(g, ra->dtype) && is_float(g, rb->dtype)))
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "%s: operands are %s and %s", what,
                               kiln_dtype_name(ra->dtype), kiln_dtype_name(rb->dtype));
    kiln_node_rec rec = {.op = op, .dtype = g->floatx, .n_in = 2, .in = {a.id, b.id}};
    if (!broadcast_shapes(&ra->shape, &rb->shape, &rec.shape)) {
        char sa[KILN_SHAPE_STR_MAX], sb[KILN_SHAPE_STR_MAX];
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", what,
                               kiln_shape_str(&ra->shape, sa, sizeof sa),
                               kiln_shape_str(&rb->shape, sb, sizeof sb));
    }
    return add_rec(g, &rec);
}

kiln_node kiln_expr_constant(kiln_graph *g, double value)
{
    kiln_node_rec rec = {.op = KILN_OP_CONST, .dtype = g->floatx, .value = value};
    return add_rec(g, &rec);
}

kiln_node kiln_expr_add(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_ADD, a, b); }
kiln_node kiln_expr_sub(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_SUB, a, b); }
kiln_node kiln_expr_mul(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_MUL, a, b); }
kiln_node kiln_expr_div(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_DIV, a, b); }
kiln_node kiln_expr_pow(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_POW, a, b); }
kiln_node kiln_expr_maximum(kiln_graph *g, kiln_node a, kiln_node b)
{ return binary(g, KILN_OP_MAXIMUM, a, b); }
kiln_node kiln_expr_not_equal(kiln_graph *g, kiln_node a, kiln_node b)
{ return binary(g, KILN_OP_NE, a, b); }
kiln_node kiln_expr_neg(kiln_graph *g, kiln_node a) { return unary(g, KILN_OP_NEG, a); }
kiln_node kiln_expr_square(kiln_graph *g, kiln_node a) { return unary(g, KILN_OP_SQUARE, a); }
kiln_node kiln_expr_sqrt(kiln_graph *g, kiln_node a) { return unary(g, KILN_OP_SQRT, a); }
kiln_node kiln_expr_exp(kiln_graph *g, kiln_node a) { return unary(g, KILN_OP_EXP, a); }
kiln_node kiln_expr_log(kiln_graph *g, kiln_node a) { return unary(g, KILN_OP_LOG, a); }
kiln_node kiln_expr_abs(kiln_graph *g, kiln_node a) { return unary(g, KILN_OP_ABS, a); }
kiln_node kiln_expr_tanh(kiln_graph *g, kiln_node a) { return unary(g, KILN_OP_TANH, a); }
kiln_node kiln_expr_sigmoid(kiln_graph *g, kiln_node a) { return unary(g, KILN_OP_SIGMOID, a); }
kiln_node kiln_expr_softplus(kiln_graph *g, kiln_node a) { return unary(g, KILN_OP_SOFTPLUS, a); }
kiln_node kiln_expr_relu(kiln_graph *g, kiln_node a) { return unary(g, KILN_OP_RELU, a); }

static kiln_node reduce(kiln_graph *g, enum kiln_op op, kiln_node a, int axis, const char *what)
{
    if (!kiln_graph_check(g, a, what))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = kiln_graph_cnode(g, a.id);
    if (!is_float(g, ra->dtype))
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "%s: operand is %s", what, kiln_dtype_name(ra->dtype));
    kiln_node_rec rec = {.op = op, .dtype = ra->dtype, .n_in = 1, .in = {a.id}, .axis = axis};
    if (axis == KILN_ALL_AXES || ra->shape.rank == 0) {
        rec.axis = KILN_ALL_AXES;
        rec.shape.rank = 0;
    } else if (axis < 0 || axis >= ra->shape.rank) {
        return kiln_graph_fail(g, KILN_ERR_ARG, "%s: axis %d outside [0, %d)", what, axis, ra->shape.rank);
    } else {
        for (int i = 0; i < ra->shape.rank; i++)
            if (i != axis)
                rec.shape.dims[rec.shape.rank++] = ra->shape.dims[i];
    }
    return add_rec(g, &rec);
}

kiln_node kiln_expr_sum(kiln_graph *g, kiln_node a, int axis) { return reduce(g, KILN_OP_SUM, a, axis, "sum"); }
kiln_node kiln_expr_max(kiln_graph *g, kiln_node a, int axis) { return reduce(g, KILN_OP_MAX, a, axis, "max"); }

kiln_node kiln_expr_mean(kiln_graph *g, kiln_node a, int axis)
{
    kiln_node s = reduce(g, KILN_OP_SUM, a, axis, "mean");
    if (!kiln_node_ok(s))
        return s;
    /* The count is a constant, times B when the batch dim is reduced. */
    const kiln_shape *sh = &kiln_graph_cnode(g, a.id)->shape;
    double c = 1;
    bool batch = false;
    for (int i = 0; i < sh->rank; i++) {
        if (axis != KILN_ALL_AXES && i != axis)
            continue;
        if (sh->dims[i] == KILN_BATCH)
            batch = true;
        else
            c *= (double)sh->dims[i];
    }
    kiln_node count = kiln_expr_constant(g, c);
    if (batch)
        count = kiln_expr_mul(g, count, kiln_expr_batch_size(g));
    return kiln_expr_div(g, s, count);
}

kiln_node kiln_expr_matmul(kiln_graph *g, kiln_node a, kiln_node b)
{
    return kiln_expr_matmul_t(g, a, b, false, false);
}

kiln_node kiln_expr_matmul_t(kiln_graph *g, kiln_node a, kiln_node b, bool ta, bool tb)
{
    if (!kiln_graph_check(g, a, "matmul") || !kiln_graph_check(g, b, "matmul"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = kiln_graph_cnode(g, a.id), *rb = kiln_graph_cnode(g, b.id);
    char sa[KILN_SHAPE_STR_MAX], sb[KILN_SHAPE_STR_MAX];
    if (ra->shape.rank != 2 || rb->shape.rank != 2 || ra->shape.dims[ta ? 0 : 1] != rb->shape.dims[tb ? 1 : 0] ||
        !is_float(g, ra->dtype) || !is_float(g, rb->dtype))
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "matmul: shapes %s and %s do not fit (need (m, k) x (k, n))",
                               kiln_shape_str(&ra->shape, sa, sizeof sa), kiln_shape_str(&rb->shape, sb, sizeof sb));
    kiln_node_rec rec = {.op = KILN_OP_MATMUL, .dtype = ra->dtype, .n_in = 2, .in = {a.id, b.id},
                         .trans_a = ta, .trans_b = tb};
    rec.shape.rank = 2;
    rec.shape.dims[0] = ra->shape.dims[ta ? 1 : 0];
    rec.shape.dims[1] = rb->shape.dims[tb ? 0 : 1];
    if (rec.shape.dims[0] == KILN_BATCH && rec.shape.dims[1] == KILN_BATCH)
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "matmul: a (B, B) result is not supported");
    return add_rec(g, &rec);
}

kiln_node kiln_expr_transpose(kiln_graph *g, kiln_node a)
{
    if (!kiln_graph_check(g, a, "transpose"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = kiln_graph_cnode(g, a.id);
    if (ra->shape.rank != 2)
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "transpose: operand has rank %d, expected 2", ra->shape.rank);
    kiln_node_rec rec = {.op = KILN_OP_TRANSPOSE, .dtype = ra->dtype, .n_in = 1, .in = {a.id}};
    rec.shape.rank = 2;
    rec.shape.dims[0] = ra->shape.dims[1];
    rec.shape.dims[1] = ra->shape.dims[0];
    return add_rec(g, &rec);
}

kiln_node kiln_expr_reshape(kiln_graph *g, kiln_node a, int rank, const int64_t *dims)
{
    if (!kiln_graph_check(g, a, "reshape"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = kiln_graph_cnode(g, a.id);
    if (rank < 0 || rank > KILN_MAX_RANK || (rank && !dims))
        return kiln_graph_fail(g, KILN_ERR_ARG, "reshape: rank %d outside [0, %d]", rank, KILN_MAX_RANK);
    kiln_node_rec rec = {.op = KILN_OP_RESHAPE, .dtype = ra->dtype, .n_in = 1, .in = {a.id}};
    rec.shape.rank = rank;
    for (int i = 0; i < rank; i++) {
        if (dims[i] <= 0 && dims[i] != KILN_BATCH)
            return kiln_graph_fail(g, KILN_ERR_ARG, "reshape: dim %d is %lld", i, (long long)dims[i]);
        rec.shape.dims[i] = dims[i];
    }
    char sa[KILN_SHAPE_STR_MAX], sb[KILN_SHAPE_STR_MAX];
    int n_batch = 0;
    for (int i = 0; i < rank; i++)
        n_batch += dims[i] == KILN_BATCH;
    if (n_batch > 1 || kiln_shape_has_batch(&ra->shape) != (n_batch == 1) ||
        kiln_shape_const_size(&ra->shape) != kiln_shape_const_size(&rec.shape))
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "reshape: cannot reshape %s into %s",
                               kiln_shape_str(&ra->shape, sa, sizeof sa), kiln_shape_str(&rec.shape, sb, sizeof sb));
    if (kiln_shape_equal(&ra->shape, &rec.shape))
        return a;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_flatten(kiln_graph *g, kiln_node a, int ndim)
{
    if (!kiln_graph_check(g, a, "flatten"))
        return KILN_NODE_NONE;
    const kiln_shape *s = &kiln_graph_cnode(g, a.id)->shape;
    if (ndim < 1 || ndim > s->rank)
        return kiln_graph_fail(g, KILN_ERR_ARG, "flatten: ndim %d outside [1, %d]", ndim, s->rank);
    int64_t dims[KILN_MAX_RANK];
    for (int i = 0; i < ndim - 1; i++)
        dims[i] = s->dims[i];
    int64_t last = 1;
    bool batch = false;
    for (int i = ndim - 1; i < s->rank; i++) {
        if (s->dims[i] == KILN_BATCH)
            batch = true;
        else
            last *= s->dims[i];
    }
    if (batch && last != 1)
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "flatten: cannot fold the batch dim with other dims");
    dims[ndim - 1] = batch ? KILN_BATCH : last;
    return kiln_expr_reshape(g, a, ndim, dims);
}

static kiln_node rowwise(kiln_graph *g, enum kiln_op op, kiln_node a)
{
    const char *what = kiln_op_info_of(op)->name;
    if (!kiln_graph_check(g, a, what))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = kiln_graph_cnode(g, a.id);
    if (ra->shape.rank != 2 || !is_float(g, ra->dtype))
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "%s: operand must be a 2-D %s tensor (rank %d, %s)", what,
                               kiln_dtype_name(g->floatx), ra->shape.rank, kiln_dtype_name(ra->dtype));
    kiln_node_rec rec = {.op = op, .dtype = ra->dtype, .n_in = 1, .in = {a.id}};
    rec.shape = ra->shape;
    if (op == KILN_OP_ARGMAX) {
        rec.dtype = KILN_DTYPE_I32;
        rec.shape.rank = 1;
    }
    return add_rec(g, &rec);
}

kiln_node kiln_expr_softmax(kiln_graph *g, kiln_node a) { return rowwise(g, KILN_OP_SOFTMAX, a); }
kiln_node kiln_expr_log_softmax(kiln_graph *g, kiln_node a) { return rowwise(g, KILN_OP_LOGSOFTMAX, a); }
kiln_node kiln_expr_argmax(kiln_graph *g, kiln_node a) { return rowwise(g, KILN_OP_ARGMAX, a); }

kiln_node kiln_expr_pick(kiln_graph *g, kiln_node a, kiln_node idx)
{
    if (!kiln_graph_check(g, a, "pick") || !kiln_graph_check(g, idx, "pick"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = kiln_graph_cnode(g, a.id), *ri = kiln_graph_cnode(g, idx.id);
    char sa[KILN_SHAPE_STR_MAX], sb[KILN_SHAPE_STR_MAX];
    if (ra->shape.rank != 2 || !is_float(g, ra->dtype) || ri->shape.rank != 1 || ri->dtype != KILN_DTYPE_I32 ||
        ri->shape.dims[0] != ra->shape.dims[0])
        return kiln_graph_fail(g, KILN_ERR_SHAPE,
                               "pick: needs a 2-D %s tensor (n, k) and an int32 vector (n,); got %s %s and %s %s",
                               kiln_dtype_name(g->floatx), kiln_dtype_name(ra->dtype),
                               kiln_shape_str(&ra->shape, sa, sizeof sa), kiln_dtype_name(ri->dtype),
                               kiln_shape_str(&ri->shape, sb, sizeof sb));
    kiln_node_rec rec = {.op = KILN_OP_PICK, .dtype = ra->dtype, .n_in = 2, .in = {a.id, idx.id}};
    rec.shape.rank = 1;
    rec.shape.dims[0] = ra->shape.dims[0];
    return add_rec(g, &rec);
}

kiln_node kiln_expr_broadcast_to(kiln_graph *g, kiln_node a, const kiln_shape *shape)
{
    if (!kiln_graph_check(g, a, "broadcast"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = kiln_graph_cnode(g, a.id);
    kiln_shape out;
    if (!broadcast_shapes(&ra->shape, shape, &out) || !kiln_shape_equal(&out, shape)) {
        char sa[KILN_SHAPE_STR_MAX], sb[KILN_SHAPE_STR_MAX];
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "broadcast: %s does not broadcast to %s",
                               kiln_shape_str(&ra->shape, sa, sizeof sa), kiln_shape_str(shape, sb, sizeof sb));
    }
    if (kiln_shape_equal(&ra->shape, shape))
        return a;
    kiln_node_rec rec = {.op = KILN_OP_BROADCAST, .dtype = ra->dtype, .shape = *shape, .n_in = 1, .in = {a.id}};
    return add_rec(g, &rec);
}

kiln_node kiln_expr_onehot(kiln_graph *g, kiln_node idx, int64_t depth)
{
    if (!kiln_graph_check(g, idx, "onehot"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ri = kiln_graph_cnode(g, idx.id);
    if (ri->dtype != KILN_DTYPE_I32 || ri->shape.rank != 1 || depth <= 0)
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "onehot: needs an int32 vector and depth > 0");
    kiln_node_rec rec = {.op = KILN_OP_ONEHOT, .dtype = g->floatx, .n_in = 1, .in = {idx.id}, .iattr = depth};
    rec.shape.rank = 2;
    rec.shape.dims[0] = ri->shape.dims[0];
    rec.shape.dims[1] = depth;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_softmax_xent(kiln_graph *g, kiln_node logits, kiln_node idx)
{
    kiln_node p = kiln_expr_pick(g, logits, idx); /* checks the operands */
    if (!kiln_node_ok(p))
        return p;
    kiln_node_rec rec = {.op = KILN_OP_SOFTMAX_XENT, .dtype = g->floatx, .n_in = 2, .in = {logits.id, idx.id}};
    rec.shape = kiln_graph_cnode(g, p.id)->shape;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_hyper(kiln_graph *g, int index, const char *name)
{
    kiln_node_rec rec = {.op = KILN_OP_HYPER, .dtype = g->floatx, .iattr = index, .name = (char *)name};
    return add_rec(g, &rec);
}

kiln_node kiln_expr_batch_size(kiln_graph *g)
{
    kiln_node_rec rec = {.op = KILN_OP_BATCH, .dtype = g->floatx};
    return add_rec(g, &rec);
}
