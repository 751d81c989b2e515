/* expr.c: the expression builders; shape and dtype inference.
**
** Each builder checks its operands, infers the result's shape and adds one
** node through kiln_graph_add. Shapes: numpy broadcasting for elementwise ops
** (right-aligned; a 1 broadcasts; a symbolic dim only meets itself or 1),
** dims as codes of the graph's dim table (shape.c), every size checked for
** overflow. Composite expressions (mean, transpose, flatten) are built from
** the primitive ops so that autodiff, the interpreter and codegen only ever
** see the op set of graph.h.
**
** Errors name the op, the operands' shapes and what was expected; a builder
** given KILN_NODE_NONE returns KILN_NODE_NONE and keeps the first message. */
#include <math.h>
#include <string.h>

#include "compiler/graph.h"

static bool is_float(const kiln_graph *g, enum kiln_dtype t) { return t == g->floatx; }
static const kiln_node_rec *R(const kiln_graph *g, kiln_node n) { return kiln_graph_cnode(g, n.id); }

static kiln_node add_rec(kiln_graph *g, kiln_node_rec *rec)
{
    int32_t id = kiln_graph_add(g, rec);
    return (kiln_node){id < 0 ? -1 : id};
}

static const char *shp(const kiln_graph *g, const kiln_shape *s, char *buf)
{
    return kiln_shape_str(g, s, buf, KILN_SHAPE_STR_MAX);
}

/* An operand for messages: "'h' (B, 100)", or "node 7 (B, 100)" unnamed. */
typedef struct operand_buf { char s[KILN_MAX_NAME + KILN_SHAPE_STR_MAX + 32]; } operand_buf;
static const char *operand(const kiln_graph *g, kiln_node n, operand_buf *buf)
{
    const kiln_node_rec *r = R(g, n);
    char s[KILN_SHAPE_STR_MAX];
    if (r->name)
        snprintf(buf->s, sizeof buf->s, "'%s' %s", r->name, shp(g, &r->shape, s));
    else
        snprintf(buf->s, sizeof buf->s, "node %d %s", (int)n.id, shp(g, &r->shape, s));
    return buf->s;
}

/* The result's shape s of op `what` on operands a and b (b may be NONE) must
** have an addressable size: at most 2^53 elements (shape.c), symbols
** counted as 1; their maxima are checked by the memory plan. */
static bool size_ok(kiln_graph *g, const kiln_shape *s, const char *what, kiln_node a, kiln_node b)
{
    kiln_mono m;
    if (kiln_shape_size(g, s, &m))
        return true;
    char sb[KILN_SHAPE_STR_MAX];
    operand_buf oa, ob;
    kiln_graph_fail(g, KILN_ERR_SHAPE, "%s of %s%s%s: the result %s has more than 2^53 elements", what,
                    operand(g, a, &oa), kiln_node_ok(b) ? " and " : "", kiln_node_ok(b) ? operand(g, b, &ob) : "",
                    shp(g, s, sb));
    return false;
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

/* A unary record of op over a (a float), or false with the error on g. */
static bool unary_rec(kiln_graph *g, enum kiln_op op, kiln_node a, kiln_node_rec *rec)
{
    if (!g || !kiln_graph_check(g, a, kiln_op_info_of(op)->name))
        return false;
    const kiln_node_rec *ra = R(g, a);
    if (!is_float(g, ra->dtype)) {
        kiln_graph_fail(g, KILN_ERR_SHAPE, "%s of '%s': operand is %s, expected %s", kiln_op_info_of(op)->name,
                        ra->name ? ra->name : "?", kiln_dtype_name(ra->dtype), kiln_dtype_name(g->floatx));
        return false;
    }
    *rec = kiln_rec(op, ra->dtype, 1, NULL);
    rec->shape = ra->shape;
    return true;
}

kiln_node kiln_expr_unary_op(kiln_graph *g, enum kiln_op op, kiln_node a)
{
    kiln_node_rec rec;
    if (!unary_rec(g, op, a, &rec))
        return KILN_NODE_NONE;
    rec.in = &a.id;
    return add_rec(g, &rec);
}

static kiln_node unary(kiln_graph *g, enum kiln_op op, kiln_node a) { return kiln_expr_unary_op(g, op, a); }

static bool is_compare(enum kiln_op op)
{
    return op == KILN_OP_NE || op == KILN_OP_EQ || op == KILN_OP_GE || op == KILN_OP_GT;
}

kiln_node kiln_expr_binary_op(kiln_graph *g, enum kiln_op op, kiln_node a, kiln_node b)
{
    const char *what = kiln_op_info_of(op)->name;
    if (!g || !kiln_graph_check(g, a, what) || !kiln_graph_check(g, b, what))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = R(g, a), *rb = R(g, b);
    bool compare = is_compare(op);
    if (compare ? ra->dtype != rb->dtype : !(is_float(g, ra->dtype) && is_float(g, rb->dtype)))
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "%s: operands are %s and %s%s", what, kiln_dtype_name(ra->dtype),
                               kiln_dtype_name(rb->dtype), compare ? " (a comparison needs one dtype)" : "");
    int32_t in[2] = {a.id, b.id};
    kiln_node_rec rec = kiln_rec(op, g->floatx, 2, in);
    if (!broadcast_shapes(&ra->shape, &rb->shape, &rec.shape)) {
        char sa[KILN_SHAPE_STR_MAX], sb[KILN_SHAPE_STR_MAX];
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", what,
                               shp(g, &ra->shape, sa), shp(g, &rb->shape, sb));
    }
    if (!size_ok(g, &rec.shape, what, a, b)) /* (N, 1) with (1, M) */
        return KILN_NODE_NONE;
    return add_rec(g, &rec);
}

static kiln_node binary(kiln_graph *g, enum kiln_op op, kiln_node a, kiln_node b)
{
    return kiln_expr_binary_op(g, op, a, b);
}

kiln_node kiln_expr_constant(kiln_graph *g, double value)
{
    if (!g)
        return KILN_NODE_NONE;
    kiln_node_rec rec = kiln_rec(KILN_OP_CONST, g->floatx, 0, NULL);
    rec.attr.f[0] = value;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_add(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_ADD, a, b); }
kiln_node kiln_expr_sub(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_SUB, a, b); }
kiln_node kiln_expr_mul(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_MUL, a, b); }
kiln_node kiln_expr_div(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_DIV, a, b); }
kiln_node kiln_expr_pow(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_POW, a, b); }
kiln_node kiln_expr_maximum(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_MAXIMUM, a, b); }
kiln_node kiln_expr_minimum(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_MINIMUM, a, b); }
kiln_node kiln_expr_not_equal(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_NE, a, b); }
kiln_node kiln_expr_equal(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_EQ, a, b); }
kiln_node kiln_expr_greater(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_GT, a, b); }
kiln_node kiln_expr_greater_equal(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_GE, a, b); }
kiln_node kiln_expr_less(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_GT, b, a); }
kiln_node kiln_expr_less_equal(kiln_graph *g, kiln_node a, kiln_node b) { return binary(g, KILN_OP_GE, b, a); }
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
kiln_node kiln_expr_sign(kiln_graph *g, kiln_node a) { return unary(g, KILN_OP_SIGN, a); }

kiln_node kiln_expr_clip(kiln_graph *g, kiln_node a, double lo, double hi)
{
    if (g && !(lo <= hi)) /* also NaN */
        return kiln_graph_fail(g, KILN_ERR_ARG, "clip: bounds [%g, %g] are not lo <= hi", lo, hi);
    kiln_node_rec rec;
    if (!unary_rec(g, KILN_OP_CLIP, a, &rec))
        return KILN_NODE_NONE;
    rec.in = &a.id;
    rec.attr.f[0] = lo;
    rec.attr.f[1] = hi;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_cast(kiln_graph *g, kiln_node a, enum kiln_dtype dtype)
{
    if (!g || !kiln_graph_check(g, a, "cast"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = R(g, a);
    if (dtype != KILN_DTYPE_I32 && dtype != g->floatx)
        return kiln_graph_fail(g, KILN_ERR_ARG, "cast: to %s, but this graph's floats are %s", kiln_dtype_name(dtype),
                               kiln_dtype_name(g->floatx));
    if (ra->dtype == dtype)
        return a;
    kiln_node_rec rec = kiln_rec(KILN_OP_CAST, dtype, 1, &a.id);
    rec.shape = ra->shape;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_select(kiln_graph *g, kiln_node cond, kiln_node a, kiln_node b)
{
    if (!g || !kiln_graph_check(g, cond, "select") || !kiln_graph_check(g, a, "select") ||
        !kiln_graph_check(g, b, "select"))
        return KILN_NODE_NONE;
    const kiln_node_rec *rc = R(g, cond), *ra = R(g, a), *rb = R(g, b);
    if (!is_float(g, ra->dtype) || !is_float(g, rb->dtype))
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "select: the values are %s and %s, expected %s",
                               kiln_dtype_name(ra->dtype), kiln_dtype_name(rb->dtype), kiln_dtype_name(g->floatx));
    kiln_shape ab, out;
    char s1[KILN_SHAPE_STR_MAX], s2[KILN_SHAPE_STR_MAX], s3[KILN_SHAPE_STR_MAX];
    if (!broadcast_shapes(&ra->shape, &rb->shape, &ab) || !broadcast_shapes(&rc->shape, &ab, &out))
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "select: shapes %s, %s and %s do not broadcast",
                               shp(g, &rc->shape, s1), shp(g, &ra->shape, s2), shp(g, &rb->shape, s3));
    if (!size_ok(g, &out, "select", a, b))
        return KILN_NODE_NONE;
    int32_t in[3] = {cond.id, a.id, b.id};
    kiln_node_rec rec = kiln_rec(KILN_OP_SELECT, g->floatx, 3, in);
    rec.shape = out;
    return add_rec(g, &rec);
}

/* ---- reductions ------------------------------------------------------------ */

static int64_t full_mask(int rank) { return rank >= 63 ? -1 : (((int64_t)1 << rank) - 1); }

kiln_node kiln_expr_reduce_mask(kiln_graph *g, enum kiln_op op, kiln_node a, int64_t axes)
{
    const char *what = kiln_op_info_of(op)->name;
    if (!g || !kiln_graph_check(g, a, what))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = R(g, a);
    if (!is_float(g, ra->dtype))
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "%s: operand is %s", what, kiln_dtype_name(ra->dtype));
    if (axes & ~full_mask(ra->shape.rank))
        return kiln_graph_fail(g, KILN_ERR_ARG, "%s: axes 0x%llx outside the %d axes of the operand", what,
                               (unsigned long long)axes, ra->shape.rank);
    if (axes == 0)
        return a;
    kiln_node_rec rec = kiln_rec(op, ra->dtype, 1, &a.id);
    rec.attr.i[0] = axes;
    for (int i = 0; i < ra->shape.rank; i++)
        if (!(axes >> i & 1))
            rec.shape.dims[rec.shape.rank++] = ra->shape.dims[i];
    return add_rec(g, &rec);
}

static int64_t axis_mask(kiln_graph *g, kiln_node a, int axis, const char *what, bool *ok)
{
    *ok = false;
    if (!g || !kiln_graph_check(g, a, what))
        return 0;
    int rank = R(g, a)->shape.rank;
    if (axis == KILN_ALL_AXES) {
        *ok = true;
        return full_mask(rank);
    }
    if (axis < 0 || axis >= rank) {
        kiln_graph_fail(g, KILN_ERR_ARG, "%s: axis %d outside [0, %d)", what, axis, rank);
        return 0;
    }
    *ok = true;
    return (int64_t)1 << axis;
}

static kiln_node reduce_axis(kiln_graph *g, enum kiln_op op, kiln_node a, int axis)
{
    bool ok;
    int64_t m = axis_mask(g, a, axis, kiln_op_info_of(op)->name, &ok);
    if (!ok)
        return KILN_NODE_NONE;
    if (m == 0) /* a scalar: KILN_ALL_AXES of rank 0 is the value itself */
        return a;
    return kiln_expr_reduce_mask(g, op, a, m);
}

kiln_node kiln_expr_sum(kiln_graph *g, kiln_node a, int axis) { return reduce_axis(g, KILN_OP_SUM, a, axis); }
kiln_node kiln_expr_max(kiln_graph *g, kiln_node a, int axis) { return reduce_axis(g, KILN_OP_MAX, a, axis); }
kiln_node kiln_expr_sum_axes(kiln_graph *g, kiln_node a, unsigned axes)
{
    return kiln_expr_reduce_mask(g, KILN_OP_SUM, a, (int64_t)axes);
}
kiln_node kiln_expr_max_axes(kiln_graph *g, kiln_node a, unsigned axes)
{
    return kiln_expr_reduce_mask(g, KILN_OP_MAX, a, (int64_t)axes);
}

/* The run-time value of a monomial as a floatx scalar: its constant times
** one SYMBOL node per symbol factor. */
static kiln_node mono_value(kiln_graph *g, const kiln_mono *m)
{
    kiln_node v = kiln_expr_constant(g, (double)m->c);
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        for (int j = 0; j < m->e[k]; j++) {
            kiln_node_rec rec = kiln_rec(KILN_OP_SYMBOL, g->floatx, 0, NULL);
            rec.attr.i[0] = -(int64_t)k - 1;
            v = kiln_expr_mul(g, v, add_rec(g, &rec));
        }
    return v;
}

kiln_node kiln_expr_mean_axes(kiln_graph *g, kiln_node a, unsigned axes)
{
    kiln_node s = kiln_expr_reduce_mask(g, KILN_OP_SUM, a, (int64_t)axes);
    if (!kiln_node_ok(s))
        return s;
    /* The count is a monomial: a constant times the symbols reduced over. */
    const kiln_shape *sh = &R(g, a)->shape;
    kiln_mono count = {.c = 1};
    for (int i = 0; i < sh->rank; i++) {
        kiln_mono d;
        if (!(axes >> i & 1))
            continue;
        if (!kiln_dim_mono(g, sh->dims[i], &d) || !kiln_mono_mul(&count, &d, &count))
            return kiln_graph_fail(g, KILN_ERR_SHAPE, "mean: the count of elements overflows");
    }
    return kiln_expr_div(g, s, mono_value(g, &count));
}

kiln_node kiln_expr_mean(kiln_graph *g, kiln_node a, int axis)
{
    bool ok;
    int64_t m = axis_mask(g, a, axis, "mean", &ok);
    if (!ok)
        return KILN_NODE_NONE;
    if (m == 0)
        return a;
    return kiln_expr_mean_axes(g, a, (unsigned)m);
}

/* ---- structure --------------------------------------------------------------- */

kiln_node kiln_expr_matmul(kiln_graph *g, kiln_node a, kiln_node b)
{
    return kiln_expr_matmul_t(g, a, b, false, false);
}

kiln_node kiln_expr_matmul_t(kiln_graph *g, kiln_node a, kiln_node b, bool ta, bool tb)
{
    if (!g || !kiln_graph_check(g, a, "matmul") || !kiln_graph_check(g, b, "matmul"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = R(g, a), *rb = R(g, b);
    const kiln_shape *sa = &ra->shape, *sb = &rb->shape;
    char s1[KILN_SHAPE_STR_MAX], s2[KILN_SHAPE_STR_MAX];
    bool fit = sa->rank >= 2 && sb->rank >= 2 && is_float(g, ra->dtype) && is_float(g, rb->dtype);
    if (fit)
        fit = sa->dims[sa->rank - (ta ? 2 : 1)] == sb->dims[sb->rank - (tb ? 1 : 2)];
    /* leading (batch) axes: equal, or on one side only */
    int la = sa->rank - 2, lb = sb->rank - 2;
    if (fit && la > 0 && lb > 0) {
        fit = la == lb;
        for (int i = 0; fit && i < la; i++)
            fit = sa->dims[i] == sb->dims[i];
    }
    if (!fit)
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "matmul: shapes %s and %s do not fit (need (m, k) x (k, n)%s)",
                               shp(g, sa, s1), shp(g, sb, s2),
                               sa->rank > 2 || sb->rank > 2 ? ", leading axes equal" : "");
    int32_t in[2] = {a.id, b.id};
    kiln_node_rec rec = kiln_rec(KILN_OP_MATMUL, ra->dtype, 2, in);
    rec.attr.i[0] = ta;
    rec.attr.i[1] = tb;
    const kiln_shape *lead = la > 0 ? sa : sb;
    int nl = la > 0 ? la : (lb > 0 ? lb : 0);
    rec.shape.rank = nl + 2;
    for (int i = 0; i < nl; i++)
        rec.shape.dims[i] = lead->dims[i];
    rec.shape.dims[nl] = sa->dims[sa->rank - (ta ? 1 : 2)];
    rec.shape.dims[nl + 1] = sb->dims[sb->rank - (tb ? 2 : 1)];
    if (!size_ok(g, &rec.shape, "matmul", a, b))
        return KILN_NODE_NONE;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_permute(kiln_graph *g, kiln_node a, int rank, const int *perm)
{
    if (!g || !kiln_graph_check(g, a, "permute"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = R(g, a);
    if (rank != ra->shape.rank || (rank && !perm))
        return kiln_graph_fail(g, KILN_ERR_ARG, "permute: %d axes given%s, the operand has %d", rank,
                               rank && !perm ? " but perm is NULL" : "", ra->shape.rank);
    unsigned seen = 0;
    bool identity = true;
    for (int k = 0; k < rank; k++) {
        if (perm[k] < 0 || perm[k] >= rank || (seen >> perm[k] & 1))
            return kiln_graph_fail(g, KILN_ERR_ARG, "permute: axis %d at position %d is not a permutation of 0..%d",
                                   perm[k], k, rank - 1);
        seen |= 1u << perm[k];
        identity &= perm[k] == k;
    }
    if (identity)
        return a;
    kiln_node_rec rec = kiln_rec(KILN_OP_TRANSPOSE, ra->dtype, 1, &a.id);
    rec.shape.rank = rank;
    for (int k = 0; k < rank; k++) {
        rec.attr.i[k] = perm[k];
        rec.shape.dims[k] = ra->shape.dims[perm[k]];
    }
    return add_rec(g, &rec);
}

kiln_node kiln_expr_transpose(kiln_graph *g, kiln_node a)
{
    if (!g || !kiln_graph_check(g, a, "transpose"))
        return KILN_NODE_NONE;
    int rank = R(g, a)->shape.rank, perm[KILN_MAX_RANK];
    for (int k = 0; k < rank; k++)
        perm[k] = rank - 1 - k;
    return kiln_expr_permute(g, a, rank, perm);
}

kiln_node kiln_expr_reshape_shape(kiln_graph *g, kiln_node a, const kiln_shape *s)
{
    const kiln_node_rec *ra = R(g, a);
    if (kiln_shape_equal(&ra->shape, s))
        return a;
    kiln_node_rec rec = kiln_rec(KILN_OP_RESHAPE, ra->dtype, 1, &a.id);
    rec.shape = *s;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_reshape(kiln_graph *g, kiln_node a, int rank, const int64_t *dims)
{
    if (!g || !kiln_graph_check(g, a, "reshape"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = R(g, a);
    if (rank < 0 || rank > KILN_MAX_RANK)
        return kiln_graph_fail(g, KILN_ERR_ARG, "reshape: rank %d outside [0, %d]", rank, KILN_MAX_RANK);
    if (rank && !dims)
        return kiln_graph_fail(g, KILN_ERR_ARG, "reshape: rank %d but dims is NULL", rank);
    kiln_shape s = {.rank = rank};
    int infer = -1;
    kiln_mono known = {.c = 1};
    for (int i = 0; i < rank; i++) {
        kiln_mono d;
        s.dims[i] = dims[i];
        if (dims[i] == KILN_INFER) {
            if (infer >= 0)
                return kiln_graph_fail(g, KILN_ERR_ARG, "reshape: dims %d and %d are both KILN_INFER", infer, i);
            infer = i;
            continue;
        }
        if (dims[i] == 0 || !kiln_dim_mono(g, dims[i], &d))
            return kiln_graph_fail(g, KILN_ERR_ARG, "reshape: dim %d is %lld, expected > 0, a symbol or KILN_INFER", i,
                                   (long long)dims[i]);
        if (!kiln_mono_mul(&known, &d, &known)) {
            char ds[48];
            operand_buf oa;
            return kiln_graph_fail(g, KILN_ERR_SHAPE, "reshape of %s: the target's dims 0 to %d (dim %d is %s) have "
                                   "more than 2^53 elements", operand(g, a, &oa), i, i,
                                   kiln_graph_dim_str(g, dims[i], ds, sizeof ds));
        }
    }
    kiln_mono have;
    char sa[KILN_SHAPE_STR_MAX], sb[KILN_SHAPE_STR_MAX];
    if (!kiln_shape_size(g, &ra->shape, &have)) /* never: every node's size was checked when it was made */
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "reshape: the operand %s has more than 2^53 elements",
                               shp(g, &ra->shape, sa));
    if (infer >= 0) {
        kiln_mono rest;
        if (!kiln_mono_div(&have, &known, &rest)) {
            s.dims[infer] = 1;
            return kiln_graph_fail(g, KILN_ERR_SHAPE, "reshape: cannot reshape %s into %s with axis %d inferred",
                                   shp(g, &ra->shape, sa), shp(g, &s, sb), infer);
        }
        int64_t code = kiln_graph_dim_code(g, &rest);
        if (!code)
            return KILN_NODE_NONE;
        s.dims[infer] = code;
    } else if (!kiln_mono_equal(&have, &known)) {
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "reshape: cannot reshape %s into %s", shp(g, &ra->shape, sa),
                               shp(g, &s, sb));
    }
    return kiln_expr_reshape_shape(g, a, &s);
}

kiln_node kiln_expr_flatten(kiln_graph *g, kiln_node a, int ndim)
{
    if (!g || !kiln_graph_check(g, a, "flatten"))
        return KILN_NODE_NONE;
    const kiln_shape *s = &R(g, a)->shape;
    if (ndim < 1 || ndim > s->rank)
        return kiln_graph_fail(g, KILN_ERR_ARG, "flatten: ndim %d outside [1, %d]", ndim, s->rank);
    int64_t dims[KILN_MAX_RANK];
    for (int i = 0; i < ndim - 1; i++)
        dims[i] = s->dims[i];
    dims[ndim - 1] = KILN_INFER;
    return kiln_expr_reshape(g, a, ndim, dims);
}

kiln_node kiln_expr_slice(kiln_graph *g, kiln_node a, int axis, int64_t start, int64_t stop, int64_t step)
{
    if (!g || !kiln_graph_check(g, a, "slice"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = R(g, a);
    char sa[KILN_SHAPE_STR_MAX];
    if (axis < 0 || axis >= ra->shape.rank)
        return kiln_graph_fail(g, KILN_ERR_ARG, "slice: axis %d outside [0, %d)", axis, ra->shape.rank);
    if (step < 1 || start < 0)
        return kiln_graph_fail(g, KILN_ERR_ARG, "slice: start %lld and step %lld, expected start >= 0, step >= 1",
                               (long long)start, (long long)step);
    int64_t d = ra->shape.dims[axis];
    if (d < 0) {
        if (start == 0 && step == 1 && stop == INT64_MAX)
            return a;
        return kiln_graph_fail(g, KILN_ERR_UNSUPPORTED,
                               "slice of %s along axis %d: the axis is symbolic, and part of it has no monomial length",
                               shp(g, &ra->shape, sa), axis);
    }
    if (stop > d)
        stop = d;
    if (start >= stop)
        return kiln_graph_fail(g, KILN_ERR_ARG, "slice of %s along axis %d: [%lld:%lld] is empty",
                               shp(g, &ra->shape, sa), axis, (long long)start, (long long)stop);
    int64_t count = 1 + (stop - start - 1) / step; /* ceil((stop - start) / step); no overflow for a huge step */
    if (count == d)
        return a;
    kiln_node_rec rec = kiln_rec(KILN_OP_SLICE, ra->dtype, 1, &a.id);
    rec.shape = ra->shape;
    rec.shape.dims[axis] = count;
    rec.attr.i[0] = axis;
    rec.attr.i[1] = start;
    rec.attr.i[3] = step;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_pad(kiln_graph *g, kiln_node a, int axis, int64_t before, int64_t total)
{
    const kiln_node_rec *ra = R(g, a);
    kiln_node_rec rec = kiln_rec(KILN_OP_PAD, ra->dtype, 1, &a.id);
    rec.shape = ra->shape;
    rec.shape.dims[axis] = total;
    rec.attr.i[0] = axis;
    rec.attr.i[1] = before;
    rec.attr.i[3] = 1;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_concat(kiln_graph *g, const kiln_node *parts, int n, int axis)
{
    if (!g)
        return KILN_NODE_NONE;
    if (n < 1 || !parts)
        return kiln_graph_fail(g, KILN_ERR_ARG, "concat: %d parts%s, expected at least 1", n,
                               parts ? "" : " (parts is NULL)");
    for (int k = 0; k < n; k++)
        if (!kiln_graph_check(g, parts[k], "concat"))
            return KILN_NODE_NONE;
    if (n == 1)
        return parts[0];
    const kiln_node_rec *r0 = R(g, parts[0]);
    char s1[KILN_SHAPE_STR_MAX], s2[KILN_SHAPE_STR_MAX];
    if (axis < 0 || axis >= r0->shape.rank)
        return kiln_graph_fail(g, KILN_ERR_ARG, "concat: axis %d outside [0, %d)", axis, r0->shape.rank);
    int64_t len = 0;
    for (int k = 0; k < n; k++) {
        const kiln_node_rec *rk = R(g, parts[k]);
        bool same = rk->dtype == r0->dtype && rk->shape.rank == r0->shape.rank;
        for (int i = 0; same && i < r0->shape.rank; i++)
            same = i == axis || rk->shape.dims[i] == r0->shape.dims[i];
        if (!same)
            return kiln_graph_fail(g, KILN_ERR_SHAPE, "concat along axis %d: part %d is %s %s, part 0 %s %s", axis, k,
                                   kiln_dtype_name(rk->dtype), shp(g, &rk->shape, s1), kiln_dtype_name(r0->dtype),
                                   shp(g, &r0->shape, s2));
        /* a symbolic axis would need symbolic offsets in the gradient's slices */
        if (rk->shape.dims[axis] < 0)
            return kiln_graph_fail(g, KILN_ERR_UNSUPPORTED,
                                   "concat along axis %d: part %d is %s, and joining along a symbolic axis is not supported",
                                   axis, k, shp(g, &rk->shape, s1));
        if (!kiln_add_i64(len, rk->shape.dims[axis], &len))
            return kiln_graph_fail(g, KILN_ERR_SHAPE, "concat: the joined length overflows");
    }
    int32_t in[64];
    if (n > (int)KILN_ARRAY_LEN(in))
        return kiln_graph_fail(g, KILN_ERR_UNSUPPORTED, "concat: %d parts, at most %d", n, (int)KILN_ARRAY_LEN(in));
    for (int k = 0; k < n; k++)
        in[k] = parts[k].id;
    kiln_node_rec rec = kiln_rec(KILN_OP_CONCAT, r0->dtype, n, in);
    rec.shape = r0->shape;
    rec.shape.dims[axis] = len;
    rec.attr.i[0] = axis;
    if (!size_ok(g, &rec.shape, "concat", parts[0], parts[1]))
        return KILN_NODE_NONE;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_reverse(kiln_graph *g, kiln_node a, int axis)
{
    if (!g || !kiln_graph_check(g, a, "reverse"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = R(g, a);
    if (axis < 0 || axis >= ra->shape.rank)
        return kiln_graph_fail(g, KILN_ERR_ARG, "reverse: axis %d outside [0, %d)", axis, ra->shape.rank);
    if (ra->shape.dims[axis] == 1)
        return a;
    kiln_node_rec rec = kiln_rec(KILN_OP_REVERSE, ra->dtype, 1, &a.id);
    rec.shape = ra->shape;
    rec.attr.i[0] = axis;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_split(kiln_graph *g, kiln_node a, int axis, int n, const int64_t *sizes)
{
    if (!g || !kiln_graph_check(g, a, "split"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = R(g, a);
    char sa[KILN_SHAPE_STR_MAX];
    if (axis < 0 || axis >= ra->shape.rank)
        return kiln_graph_fail(g, KILN_ERR_ARG, "split: axis %d outside [0, %d)", axis, ra->shape.rank);
    if (n < 1 || n > 64 || !sizes)
        return kiln_graph_fail(g, KILN_ERR_ARG, "split: %d pieces%s, expected 1 to 64", n,
                               sizes ? "" : " (sizes is NULL)");
    int64_t total = 0;
    for (int k = 0; k < n; k++) {
        if (sizes[k] < 1)
            return kiln_graph_fail(g, KILN_ERR_ARG, "split: piece %d has size %lld", k, (long long)sizes[k]);
        if (!kiln_add_i64(total, sizes[k], &total))
            return kiln_graph_fail(g, KILN_ERR_SHAPE, "split of %s along axis %d: the sizes overflow at piece %d",
                                   shp(g, &ra->shape, sa), axis, k);
    }
    if (ra->shape.dims[axis] != total)
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "split of %s along axis %d: the sizes sum to %lld",
                               shp(g, &ra->shape, sa), axis, (long long)total);
    kiln_value_type outs[64];
    for (int k = 0; k < n; k++) {
        outs[k].dtype = ra->dtype;
        outs[k].shape = ra->shape;
        outs[k].shape.dims[axis] = sizes[k];
    }
    kiln_node_rec rec = kiln_rec(KILN_OP_SPLIT, ra->dtype, 1, &a.id);
    rec.n_out = n;
    rec.outs = outs;
    rec.attr.i[0] = axis;
    return add_rec(g, &rec);
}

/* Results a user sees: a scan's saved values are its own. */
static int public_results(const kiln_node_rec *r)
{
    return r->n_out - (r->op == KILN_OP_SCAN ? (int)r->attr.i[KILN_SCAN_SAVED] : 0);
}

kiln_node kiln_expr_output(kiln_graph *g, kiln_node t, int k)
{
    if (!g)
        return KILN_NODE_NONE;
    if (t.id < 0 || t.id >= g->n_nodes)
        return kiln_graph_check(g, t, "output"), KILN_NODE_NONE;
    const kiln_node_rec *rt = R(g, t);
    if (rt->n_out && (k < 0 || k >= public_results(rt)))
        return kiln_graph_fail(g, KILN_ERR_ARG, "output %d of node %d (%s), which has %d results", k, (int)t.id,
                               kiln_op_info_of(rt->op)->name, public_results(rt));
    return kiln_expr_result(g, t, k);
}

kiln_node kiln_expr_result(kiln_graph *g, kiln_node t, int k)
{
    if (!g)
        return KILN_NODE_NONE;
    if (t.id < 0 || t.id >= g->n_nodes)
        return kiln_graph_check(g, t, "output"), KILN_NODE_NONE;
    const kiln_node_rec *rt = R(g, t);
    if (rt->n_out == 0)
        return k == 0 ? t : kiln_graph_fail(g, KILN_ERR_ARG, "output %d of node %d, which has one result", k, (int)t.id);
    if (k < 0 || k >= rt->n_out)
        return kiln_graph_fail(g, KILN_ERR_ARG, "output %d of node %d (%s), which has %d results", k, (int)t.id,
                               kiln_op_info_of(rt->op)->name, rt->n_out);
    kiln_node_rec rec = kiln_rec(KILN_OP_PROJ, rt->outs[k].dtype, 1, &t.id);
    rec.shape = rt->outs[k].shape;
    rec.attr.i[0] = k;
    return add_rec(g, &rec);
}

int kiln_graph_node_output_count(const kiln_graph *g, kiln_node n)
{
    if (!g || n.id < 0 || n.id >= g->n_nodes)
        return 0;
    return g->nodes[n.id].n_out ? public_results(&g->nodes[n.id]) : 1;
}

/* ---- last-axis ops ------------------------------------------------------------ */

static kiln_node lastaxis(kiln_graph *g, enum kiln_op op, kiln_node a)
{
    const char *what = kiln_op_info_of(op)->name;
    if (!g || !kiln_graph_check(g, a, what))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = R(g, a);
    if (ra->shape.rank < 1 || !is_float(g, ra->dtype))
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "%s: operand must be a %s tensor of rank >= 1 (rank %d, %s)", what,
                               kiln_dtype_name(g->floatx), ra->shape.rank, kiln_dtype_name(ra->dtype));
    kiln_node_rec rec = kiln_rec(op, ra->dtype, 1, &a.id);
    rec.shape = ra->shape;
    if (op == KILN_OP_ARGMAX) {
        rec.dtype = KILN_DTYPE_I32;
        rec.shape.rank--;
    }
    return add_rec(g, &rec);
}

kiln_node kiln_expr_softmax(kiln_graph *g, kiln_node a) { return lastaxis(g, KILN_OP_SOFTMAX, a); }
kiln_node kiln_expr_log_softmax(kiln_graph *g, kiln_node a) { return lastaxis(g, KILN_OP_LOGSOFTMAX, a); }
kiln_node kiln_expr_argmax(kiln_graph *g, kiln_node a) { return lastaxis(g, KILN_OP_ARGMAX, a); }

/* a (.., k) and int32 idx (..): the leading axes of a are idx's shape. */
static bool pick_fits(kiln_graph *g, const kiln_node_rec *ra, const kiln_node_rec *ri)
{
    if (ra->shape.rank < 1 || !is_float(g, ra->dtype) || ri->dtype != KILN_DTYPE_I32 ||
        ri->shape.rank != ra->shape.rank - 1)
        return false;
    for (int i = 0; i < ri->shape.rank; i++)
        if (ri->shape.dims[i] != ra->shape.dims[i])
            return false;
    return ra->shape.dims[ra->shape.rank - 1] > 0; /* the classes: a constant */
}

/* The checks pick and softmax_xent share (what names the op): false with
** the error on g. */
static bool pick_check(kiln_graph *g, kiln_node a, kiln_node idx, const char *what)
{
    if (!g || !kiln_graph_check(g, a, what) || !kiln_graph_check(g, idx, what))
        return false;
    const kiln_node_rec *ra = R(g, a), *ri = R(g, idx);
    char sa[KILN_SHAPE_STR_MAX], sb[KILN_SHAPE_STR_MAX];
    if (pick_fits(g, ra, ri))
        return true;
    kiln_graph_fail(g, KILN_ERR_SHAPE, "%s: needs a %s tensor (.., k) and an int32 tensor (..); got %s %s and %s %s",
                    what, kiln_dtype_name(g->floatx), kiln_dtype_name(ra->dtype), shp(g, &ra->shape, sa),
                    kiln_dtype_name(ri->dtype), shp(g, &ri->shape, sb));
    return false;
}

kiln_node kiln_expr_pick(kiln_graph *g, kiln_node a, kiln_node idx)
{
    if (!pick_check(g, a, idx, "pick"))
        return KILN_NODE_NONE;
    int32_t in[2] = {a.id, idx.id};
    kiln_node_rec rec = kiln_rec(KILN_OP_PICK, R(g, a)->dtype, 2, in);
    rec.shape = R(g, idx)->shape;
    return add_rec(g, &rec);
}

/* Checked as pick is, without making a pick node: a network file's
** softmax_cross_entropy node is one node (netjson.c). */
kiln_node kiln_expr_softmax_xent(kiln_graph *g, kiln_node logits, kiln_node idx)
{
    if (!pick_check(g, logits, idx, "softmax_cross_entropy"))
        return KILN_NODE_NONE;
    int32_t in[2] = {logits.id, idx.id};
    kiln_node_rec rec = kiln_rec(KILN_OP_SOFTMAX_XENT, g->floatx, 2, in);
    rec.shape = R(g, idx)->shape;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_gather(kiln_graph *g, kiln_node table, kiln_node idx)
{
    if (!g || !kiln_graph_check(g, table, "gather") || !kiln_graph_check(g, idx, "gather"))
        return KILN_NODE_NONE;
    const kiln_node_rec *rt = R(g, table), *ri = R(g, idx);
    char sa[KILN_SHAPE_STR_MAX], sb[KILN_SHAPE_STR_MAX];
    if (rt->shape.rank < 1 || rt->shape.dims[0] < 0 || !is_float(g, rt->dtype) || ri->dtype != KILN_DTYPE_I32 ||
        ri->shape.rank + rt->shape.rank - 1 > KILN_MAX_RANK)
        return kiln_graph_fail(g, KILN_ERR_SHAPE,
                               "gather: needs a %s table (V, ..) with V constant and int32 indices; got %s %s and %s %s",
                               kiln_dtype_name(g->floatx), kiln_dtype_name(rt->dtype), shp(g, &rt->shape, sa),
                               kiln_dtype_name(ri->dtype), shp(g, &ri->shape, sb));
    int32_t in[2] = {table.id, idx.id};
    kiln_node_rec rec = kiln_rec(KILN_OP_GATHER, rt->dtype, 2, in);
    rec.shape = ri->shape;
    for (int i = 1; i < rt->shape.rank; i++)
        rec.shape.dims[rec.shape.rank++] = rt->shape.dims[i];
    if (!size_ok(g, &rec.shape, "gather", table, idx))
        return KILN_NODE_NONE;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_scatter_add(kiln_graph *g, kiln_node upd, kiln_node idx, int64_t rows)
{
    const kiln_node_rec *ru = R(g, upd), *ri = R(g, idx);
    int32_t in[2] = {upd.id, idx.id};
    kiln_node_rec rec = kiln_rec(KILN_OP_SCATTER_ADD, ru->dtype, 2, in);
    rec.shape.rank = 1 + ru->shape.rank - ri->shape.rank;
    rec.shape.dims[0] = rows;
    for (int i = ri->shape.rank; i < ru->shape.rank; i++)
        rec.shape.dims[1 + i - ri->shape.rank] = ru->shape.dims[i];
    return add_rec(g, &rec);
}

kiln_node kiln_expr_broadcast_to(kiln_graph *g, kiln_node a, const kiln_shape *shape)
{
    if (!g || !kiln_graph_check(g, a, "broadcast"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ra = R(g, a);
    kiln_shape out;
    if (!broadcast_shapes(&ra->shape, shape, &out) || !kiln_shape_equal(&out, shape)) {
        char sa[KILN_SHAPE_STR_MAX], sb[KILN_SHAPE_STR_MAX];
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "broadcast: %s does not broadcast to %s", shp(g, &ra->shape, sa),
                               shp(g, shape, sb));
    }
    if (kiln_shape_equal(&ra->shape, shape))
        return a;
    if (!size_ok(g, shape, "broadcast", a, KILN_NODE_NONE))
        return KILN_NODE_NONE;
    kiln_node_rec rec = kiln_rec(KILN_OP_BROADCAST, ra->dtype, 1, &a.id);
    rec.shape = *shape;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_broadcast(kiln_graph *g, kiln_node a, int rank, const int64_t *dims)
{
    if (!g || !kiln_graph_check(g, a, "broadcast"))
        return KILN_NODE_NONE;
    if (rank && !dims)
        return kiln_graph_fail(g, KILN_ERR_ARG, "broadcast: rank %d but dims is NULL", rank);
    if (rank < 0 || rank > KILN_MAX_RANK)
        return kiln_graph_fail(g, KILN_ERR_ARG, "broadcast: rank %d outside [0, %d]", rank, KILN_MAX_RANK);
    kiln_shape s = {.rank = rank};
    for (int i = 0; i < rank; i++) {
        kiln_mono d;
        if (dims[i] == 0 || dims[i] == KILN_INFER || !kiln_dim_mono(g, dims[i], &d) ||
            (dims[i] < 0 && kiln_dim_symbol(dims[i]) >= 0 && !g->symbol_names[kiln_dim_symbol(dims[i])]))
            return kiln_graph_fail(g, KILN_ERR_ARG, "broadcast: dim %d is %lld, expected > 0 or a symbol", i,
                                   (long long)dims[i]);
        s.dims[i] = dims[i];
    }
    kiln_mono size;
    if (!kiln_shape_size(g, &s, &size))
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "broadcast: the target's size overflows");
    return kiln_expr_broadcast_to(g, a, &s);
}

kiln_node kiln_expr_onehot(kiln_graph *g, kiln_node idx, int64_t depth)
{
    if (!g || !kiln_graph_check(g, idx, "onehot"))
        return KILN_NODE_NONE;
    const kiln_node_rec *ri = R(g, idx);
    if (ri->dtype != KILN_DTYPE_I32 || ri->shape.rank >= KILN_MAX_RANK || depth <= 0)
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "onehot: needs int32 indices of rank < %d and depth > 0",
                               KILN_MAX_RANK);
    kiln_node_rec rec = kiln_rec(KILN_OP_ONEHOT, g->floatx, 1, &idx.id);
    rec.attr.i[0] = depth;
    rec.shape = ri->shape;
    rec.shape.dims[rec.shape.rank++] = depth;
    if (!size_ok(g, &rec.shape, "onehot", idx, KILN_NODE_NONE))
        return KILN_NODE_NONE;
    return add_rec(g, &rec);
}

/* ---- random ---------------------------------------------------------------- */

static kiln_node random_node(kiln_graph *g, kiln_node state, int rank, const int64_t *dims,
                             enum kiln_random_kind kind, double a, double b, const char *what)
{
    if (!g || !kiln_graph_check(g, state, what))
        return KILN_NODE_NONE;
    const kiln_node_rec *rs = R(g, state);
    if (rs->op != KILN_OP_STATE || !(rs->roles & KILN_ROLE_RANDOM_STATE))
        return kiln_graph_fail(g, KILN_ERR_ARG, "%s: node %d is not a random state (kiln_graph_random_state)", what,
                               (int)state.id);
    if (rank < 0 || rank > KILN_MAX_RANK)
        return kiln_graph_fail(g, KILN_ERR_ARG, "%s: rank %d outside [0, %d]", what, rank, KILN_MAX_RANK);
    if (rank && !dims)
        return kiln_graph_fail(g, KILN_ERR_ARG, "%s: rank %d but dims is NULL", what, rank);
    if (!isfinite(a) || !isfinite(b))
        return kiln_graph_fail(g, KILN_ERR_ARG, "%s: parameters %g and %g must be finite", what, a, b);
    kiln_node_rec rec = kiln_rec(KILN_OP_RANDOM, g->floatx, 1, &state.id);
    rec.shape.rank = rank;
    for (int i = 0; i < rank; i++) {
        kiln_mono m;
        if (dims[i] == 0 || dims[i] == KILN_INFER || !kiln_dim_mono(g, dims[i], &m))
            return kiln_graph_fail(g, KILN_ERR_ARG, "%s: dim %d is %lld, expected > 0 or a symbol", what, i,
                                   (long long)dims[i]);
        rec.shape.dims[i] = dims[i];
    }
    if (!size_ok(g, &rec.shape, what, state, KILN_NODE_NONE))
        return KILN_NODE_NONE;
    if (g->n_streams >= (1 << 16))
        return kiln_graph_fail(g, KILN_ERR_UNSUPPORTED, "%s: a graph has at most 65536 random nodes", what);
    rec.attr.i[0] = kind;
    rec.attr.i[1] = g->n_streams++;
    rec.attr.f[0] = a;
    rec.attr.f[1] = b;
    return add_rec(g, &rec);
}

kiln_node kiln_expr_random_uniform(kiln_graph *g, kiln_node state, int rank, const int64_t *dims, double lo,
                                   double hi)
{
    if (g && !(lo <= hi))
        return kiln_graph_fail(g, KILN_ERR_ARG, "random_uniform: bounds [%g, %g) are not lo <= hi", lo, hi);
    return random_node(g, state, rank, dims, KILN_RANDOM_UNIFORM, lo, hi, "random_uniform");
}

kiln_node kiln_expr_random_normal(kiln_graph *g, kiln_node state, int rank, const int64_t *dims, double mean,
                                  double std)
{
    if (g && !(std >= 0))
        return kiln_graph_fail(g, KILN_ERR_ARG, "random_normal: std %g, expected >= 0", std);
    return random_node(g, state, rank, dims, KILN_RANDOM_NORMAL, mean, std, "random_normal");
}

kiln_node kiln_expr_random_bernoulli(kiln_graph *g, kiln_node state, int rank, const int64_t *dims, double p)
{
    if (g && !(p >= 0 && p <= 1))
        return kiln_graph_fail(g, KILN_ERR_ARG, "random_bernoulli: p %g outside [0, 1]", p);
    return random_node(g, state, rank, dims, KILN_RANDOM_BERNOULLI, p, 0, "random_bernoulli");
}

kiln_node kiln_expr_rng_next(kiln_graph *g, kiln_node state)
{
    const kiln_node_rec *rs = R(g, state);
    kiln_node_rec rec = kiln_rec(KILN_OP_RNG_NEXT, rs->dtype, 1, &state.id);
    rec.shape = rs->shape;
    return add_rec(g, &rec);
}
