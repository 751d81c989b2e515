/* emit_c.c: one C translation unit for a planned program graph.
**
** Design: the emitter walks the nodes of each entry point in id (schedule)
** order and writes one kernel per stored node: a BLAS call for a matrix
** product, a row loop for softmax-like ops, and a loop nest for elementwise
** and reduction nodes in which every inline node of its fusion group is
** computed as a C expression (so a chain of elementwise ops is one loop).
** Every static dim is a literal; the batch dim is the run-time argument B.
** The text is meant to be read: pointers take names from the model (brick
** paths, variable names), each kernel has a comment naming its nodes and
** shapes, and user text appears only inside comments, escaped.
** The same plan always gives the same bytes: no addresses, times or hash
** order reach the output (the JIT cache is keyed on it).
**
** Rejected: a library of hand-written kernels called in sequence (no
** fusion, no constants baked in); emitting one function per node (the
** compiler would not see across kernels). */
#include "codegen/emit_c.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_config.h"

/* ---- a growing string -------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_vput(sbuf *b, const char *fmt, va_list ap)
{
    if (b->oom)
        return;
    va_list ap2;
    va_copy(ap2, ap);
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap2);
    va_end(ap2);
    if (k < 0) {
        b->oom = true;
        return;
    }
    if (!b->s || b->n + (size_t)k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + (size_t)k + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
        vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    }
    b->n += (size_t)k;
}

static void sb_put(sbuf *b, const char *fmt, ...) KILN_PRINTF(2, 3);
static void sb_put(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vput(b, fmt, ap);
    va_end(ap);
}

/* ---- emitter state ------------------------------------------------------- */

#define VAR_MAX 64
#define EXPR_MAX 8192

typedef struct emitter {
    const kiln_plan *p;
    const kiln_graph *g;
    const kiln_emit_options *o;
    char (*var)[VAR_MAX]; /* C name of each node's storage */
    unsigned char *used;  /* storage referenced by the current function */
    sbuf body;            /* current function's kernels */
    int *fused;           /* per node: param whose update this GEMM applies, or -1 */
    int32_t *sibling;     /* per node: a sum computed in this node's loop, or -1 */
    int32_t *rows_with;   /* per cross-entropy node: the softmax of the same logits computed in its loop, or -1 */
    int64_t *defer;       /* per param: arena offset of its deferred batch-1 update, or -1 */
    char (*pend)[VAR_MAX + 8]; /* per param: C name of that slot */
    int32_t *defer_at;    /* per node: param whose deferred update this product applies, or -1 */
    int64_t arena_bytes;  /* the plan's arena, the deferred updates' slots, the GEMM scratch */
    int64_t scratch;      /* arena offset of rt->sgemm_nn's scratch, or -1 (plan_scratch) */
    int gemm_n, gemm_k;   /* the widest product that calls rt->sgemm_nn */
    const char *real;     /* "float" or "double" */
    bool failed;
} emitter;

/* User text inside a comment: printable ASCII only, no comment terminator. */
static void put_comment_text(sbuf *b, const char *s)
{
    for (char prev = 0; s && *s; prev = *s, s++) {
        char c = *s;
        if (c == '/' && prev == '*')
            c = '|';
        else if (!isprint((unsigned char)c) || c == '\\')
            c = '?';
        sb_put(b, "%c", c);
    }
}

static void sanitize(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    while (src && (*src == '/' || *src == '_')) /* "/mlp/linear_0" -> "mlp_linear_0" */
        src++;
    for (; src && *src && n + 1 < cap; src++) {
        unsigned char c = (unsigned char)*src;
        char out = (isalnum(c) || c == '_') && c < 128 ? (char)c : '_';
        if (out == '_' && n > 0 && dst[n - 1] == '_')
            continue;
        dst[n++] = out;
    }
    while (n > 0 && dst[n - 1] == '_')
        n--;
    dst[n] = '\0';
}

static const char *ctype(const emitter *e, enum kiln_dtype t)
{
    return t == KILN_DTYPE_I32 ? "int32_t" : e->real;
}

static const kiln_node_rec *R(const emitter *e, int32_t id) { return kiln_graph_cnode(e->g, id); }

/* Name every stored node: params after their brick path, inputs after
** their name, values v<id>_<name>. Uniqueness comes from the id or, for
** params and inputs, from an index suffix on collision. */
static void name_nodes(emitter *e)
{
    const kiln_plan *p = e->p;
    for (int32_t id = 0; id < p->n; id++) {
        const kiln_node_rec *r = R(e, id);
        char base[VAR_MAX];
        char *v = e->var[id];
        if (r->op == KILN_OP_PARAM) {
            char path[VAR_MAX * 2];
            const char *bp = r->brick ? kiln_brick_path(r->brick) : "";
            snprintf(path, sizeof path, "%s_%s", bp, r->name ? r->name : "param");
            sanitize(base, 40, path);
            snprintf(v, VAR_MAX, "%s", base[0] ? base : "param");
        } else if (r->op == KILN_OP_INPUT) {
            sanitize(base, 40, r->name);
            snprintf(v, VAR_MAX, "in_%s", base);
        } else {
            sanitize(base, 36, r->name);
            snprintf(v, VAR_MAX, base[0] ? "v%d_%s" : "v%d", (int)id, base);
        }
        for (int32_t j = 0; j < id; j++) /* params/inputs whose names collide */
            if (strcmp(e->var[j], v) == 0) {
                size_t len = strlen(v);
                snprintf(v + (len > 48 ? 48 : len), VAR_MAX - 48, "_%d", (int)id);
                break;
            }
    }
    for (int i = 0; i < p->n_params; i++) { /* gradients read as grad_<param> */
        int32_t gid = p->grad_node[i];
        if (gid >= 0 && !p->grad_copy[i] && p->buf[gid].zone == KILN_ZONE_GRAD) {
            char tmp[VAR_MAX];
            snprintf(tmp, sizeof tmp, "grad_%.50s", e->var[p->param_node[i]]);
            memcpy(e->var[gid], tmp, VAR_MAX);
        }
    }
}

/* Size expression of a dim: a literal, or B. */
static void dim_str(char *dst, size_t cap, int64_t d)
{
    if (d == KILN_BATCH)
        snprintf(dst, cap, "B");
    else
        snprintf(dst, cap, "%" PRId64, d);
}

/* "B * 100" style element count of a shape. */
static void size_str(char *dst, size_t cap, const kiln_shape *s)
{
    int64_t c = kiln_shape_const_size(s);
    if (kiln_shape_has_batch(s))
        snprintf(dst, cap, c == 1 ? "B" : "B * %" PRId64, c);
    else
        snprintf(dst, cap, "%" PRId64, c);
}

static void shape_comment(char *dst, size_t cap, const kiln_shape *s) { kiln_shape_str(s, dst, cap); }

/* ---- expressions --------------------------------------------------------- */

/* Index of a node's own axes: idx[k] is a C expression for axis k. */
typedef struct kindex {
    bool flat;                 /* one index "i" over same-shaped values */
    int rank;
    char ax[KILN_MAX_RANK][24];
} kindex;

static const char *storage_name(emitter *e, int32_t id)
{
    int32_t s = e->p->alias[id];
    e->used[s] = 1;
    return e->var[s];
}

/* name[offset] with the row-major offset of idx in shape s. */
static void access(emitter *e, char *dst, size_t cap, int32_t id, const kindex *ix)
{
    const kiln_shape *s = &R(e, id)->shape;
    const char *name = storage_name(e, id);
    if (s->rank == 0) {
        snprintf(dst, cap, "%s[0]", name);
        return;
    }
    if (ix->flat) {
        snprintf(dst, cap, "%s[i]", name);
        return;
    }
    char off[512] = "";
    size_t n = 0;
    for (int k = 0; k < s->rank; k++) {
        if (strcmp(ix->ax[k], "0") == 0)
            continue;
        char stride[128] = "";
        size_t m = 0;
        for (int j = k + 1; j < s->rank; j++) {
            char d[24];
            dim_str(d, sizeof d, s->dims[j]);
            m += (size_t)snprintf(stride + m, sizeof stride - m, "%s%s", m ? " * " : "", d);
        }
        n += (size_t)snprintf(off + n, sizeof off - n, "%s%s%s%s", n ? " + " : "", ix->ax[k], m ? " * " : "",
                              stride);
    }
    snprintf(dst, cap, "%s[%s]", name, n ? off : "0");
}

/* Index of child c (right-aligned, broadcasting) under parent kindex ix of
** shape ps. */
static void child_index(const emitter *e, const kindex *ix, const kiln_shape *ps, int32_t c, kindex *out)
{
    const kiln_shape *cs = &R(e, c)->shape;
    out->flat = ix->flat;
    out->rank = cs->rank;
    for (int k = 0; k < cs->rank; k++) {
        int pk = ps->rank - cs->rank + k;
        if (pk < 0 || (cs->dims[k] == 1 && ps->dims[pk] != 1))
            snprintf(out->ax[k], sizeof out->ax[k], "0");
        else
            snprintf(out->ax[k], sizeof out->ax[k], "%s", ix->ax[pk]);
    }
}

static void expr(emitter *e, char *dst, size_t cap, int32_t id, const kindex *ix, bool root);

/* snprintf for expressions: a fusion group too large for the buffer fails
** the compile rather than emitting a cut expression. */
static void xput(emitter *e, char *dst, size_t cap, const char *fmt, ...) KILN_PRINTF(4, 5);
static void xput(emitter *e, char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        e->failed = true;
}

static void expr_child(emitter *e, char *dst, size_t cap, int32_t parent, int k, const kindex *ix)
{
    const kiln_node_rec *r = R(e, parent);
    kindex cix;
    if (r->op == KILN_OP_ONEHOT) {
        cix.flat = false;
        cix.rank = 1;
        snprintf(cix.ax[0], sizeof cix.ax[0], "%s", ix->ax[0]);
    } else {
        child_index(e, ix, &r->shape, r->in[k], &cix);
    }
    expr(e, dst, cap, r->in[k], &cix, false);
}

static void expr(emitter *e, char *dst, size_t cap, int32_t id, const kindex *ix, bool root)
{
    const kiln_node_rec *r = R(e, id);
    if (r->op == KILN_OP_CONST) {
        xput(e, dst, cap, "(%s)%.17g", e->real, r->value);
        return;
    }
    if (r->op == KILN_OP_BATCH) {
        xput(e, dst, cap, "(%s)B", e->real);
        return;
    }
    if (r->op == KILN_OP_HYPER) { /* `hyper` is declared in every function */
        xput(e, dst, cap, "hyper[%d]", (int)r->iattr);
        return;
    }
    if (!root && !e->p->inline_[id]) {
        access(e, dst, cap, id, ix);
        return;
    }
    char a[EXPR_MAX], b[EXPR_MAX] = "";
    expr_child(e, a, sizeof a, id, 0, ix);
    if (r->n_in > 1 && r->op != KILN_OP_ONEHOT)
        expr_child(e, b, sizeof b, id, 1, ix);
    const char *t = e->real;
    switch (r->op) {
    case KILN_OP_NEG: xput(e, dst, cap, "(-%s)", a); break;
    case KILN_OP_EXP: xput(e, dst, cap, "k_exp(%s)", a); break;
    case KILN_OP_LOG: xput(e, dst, cap, "k_log(%s)", a); break;
    case KILN_OP_ABS: xput(e, dst, cap, "k_fabs(%s)", a); break;
    case KILN_OP_SQRT: xput(e, dst, cap, "k_sqrt(%s)", a); break;
    case KILN_OP_SQUARE: xput(e, dst, cap, "k_sq(%s)", a); break;
    case KILN_OP_TANH: xput(e, dst, cap, "k_tanh(%s)", a); break;
    case KILN_OP_SIGMOID: xput(e, dst, cap, "k_sigmoid(%s)", a); break;
    case KILN_OP_SOFTPLUS: xput(e, dst, cap, "k_softplus(%s)", a); break;
    case KILN_OP_RELU: xput(e, dst, cap, "k_relu(%s)", a); break;
    case KILN_OP_SIGN: xput(e, dst, cap, "k_sign(%s)", a); break;
    case KILN_OP_STEP: xput(e, dst, cap, "(%s)(%s > 0)", t, a); break;
    case KILN_OP_BROADCAST: xput(e, dst, cap, "%s", a); break;
    case KILN_OP_ONEHOT: xput(e, dst, cap, "(%s)(%s == %s)", t, a, ix->ax[1]); break;
    case KILN_OP_ADD: xput(e, dst, cap, "(%s + %s)", a, b); break;
    case KILN_OP_SUB: xput(e, dst, cap, "(%s - %s)", a, b); break;
    case KILN_OP_MUL: xput(e, dst, cap, "(%s * %s)", a, b); break;
    case KILN_OP_DIV: xput(e, dst, cap, "(%s / %s)", a, b); break;
    case KILN_OP_POW: xput(e, dst, cap, "k_pow(%s, %s)", a, b); break;
    case KILN_OP_MAXIMUM: xput(e, dst, cap, "k_max(%s, %s)", a, b); break;
    case KILN_OP_GE: xput(e, dst, cap, "(%s)(%s >= %s)", t, a, b); break;
    case KILN_OP_EQ: xput(e, dst, cap, "(%s)(%s == %s)", t, a, b); break;
    case KILN_OP_NE: xput(e, dst, cap, "(%s)(%s != %s)", t, a, b); break;
    case KILN_OP_RESHAPE: xput(e, dst, cap, "%s", a); break;
    default:
        e->failed = true;
        xput(e, dst, cap, "0 /* %s cannot be inline */", kiln_op_info_of(r->op)->name);
    }
}

/* Can the fusion group of root be indexed by one flat kindex? Yes when every
** value it reads has root's shape or is a scalar, and it holds no onehot. */
static bool flat_ok(const emitter *e, int32_t id, const kiln_shape *s, bool root)
{
    const kiln_node_rec *r = R(e, id);
    if (r->shape.rank != 0 && !kiln_shape_equal(&r->shape, s))
        return false;
    if (!root && !e->p->inline_[id])
        return true;
    if (r->op == KILN_OP_ONEHOT || (r->op == KILN_OP_RESHAPE && !root))
        return false;
    if (kiln_op_info_of(r->op)->cls == KILN_CLASS_LEAF)
        return true;
    for (int k = 0; k < r->n_in; k++)
        if (!flat_ok(e, r->in[k], s, false))
            return false;
    return true;
}

/* Walk a fusion group: the ops it computes ("12:add 13:relu"), the bricks
** that made them and the stored values it reads. */
typedef struct group_info {
    sbuf ops;
    const kiln_brick *bricks[8];
    int n_bricks;
    int32_t reads[8];
    int n_reads;
} group_info;

static void group_walk(const emitter *e, group_info *gi, int32_t id, bool root)
{
    const kiln_node_rec *r = R(e, id);
    bool stored_leaf = !root && (!e->p->inline_[id] || r->op == KILN_OP_INPUT || r->op == KILN_OP_PARAM);
    if (stored_leaf) {
        int32_t s = e->p->alias[id];
        for (int i = 0; i < gi->n_reads; i++)
            if (gi->reads[i] == s)
                return;
        if (gi->n_reads < 8)
            gi->reads[gi->n_reads++] = s;
        return;
    }
    if (!root && kiln_op_info_of(r->op)->cls == KILN_CLASS_LEAF)
        return;
    for (int k = 0; k < r->n_in; k++)
        group_walk(e, gi, r->in[k], false);
    sb_put(&gi->ops, " %d:%s", (int)id, kiln_op_info_of(r->op)->name);
    if (r->brick) {
        for (int i = 0; i < gi->n_bricks; i++)
            if (gi->bricks[i] == r->brick)
                return;
        if (gi->n_bricks < 8)
            gi->bricks[gi->n_bricks++] = r->brick;
    }
}

static void kernel_comment(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id);
    char sh[KILN_SHAPE_STR_MAX];
    group_info gi = {0};
    group_walk(e, &gi, id, true);
    shape_comment(sh, sizeof sh, &r->shape);
    sb_put(&e->body, "\n    /* node%s -> %s %s", gi.ops.s ? gi.ops.s : "", e->var[e->p->alias[id]], sh);
    free(gi.ops.s);
    if (gi.n_reads) {
        sb_put(&e->body, "\n    ** reads");
        for (int i = 0; i < gi.n_reads; i++) {
            shape_comment(sh, sizeof sh, &R(e, gi.reads[i])->shape);
            sb_put(&e->body, "%s %s %s", i ? "," : "", e->var[gi.reads[i]], sh);
        }
    }
    for (int i = 0; i < gi.n_bricks; i++) {
        sb_put(&e->body, i ? ", " : "\n    ** brick ");
        put_comment_text(&e->body, kiln_brick_path(gi.bricks[i]));
    }
    if (e->fused && e->fused[id] >= 0)
        sb_put(&e->body, "\n    ** fused update: %s -= lr * this product (its gradient is not stored)%s",
               e->var[e->p->param_node[e->fused[id]]],
               e->defer[e->fused[id]] >= 0 ? "; at batch 1 deferred to the next step's first product" : "");
    if (e->rows_with && e->rows_with[id] >= 0)
        sb_put(&e->body, "\n    ** and node %d:softmax -> %s in the same loop, where gradients are wanted", (int)e->rows_with[id],
               e->var[e->rows_with[id]]);
    if (e->defer_at && e->defer_at[id] >= 0)
        sb_put(&e->body, "\n    ** at batch 1, first applies the update of %s deferred by the last step",
               e->var[e->p->param_node[e->defer_at[id]]]);
    if (r->name) {
        sb_put(&e->body, "%svalue '", gi.n_bricks ? ", " : "\n    ** ");
        put_comment_text(&e->body, r->name);
        sb_put(&e->body, "'");
    }
    sb_put(&e->body, " */\n");
}

/* Open a loop nest over shape s with indices i0.. (or one flat i). */
static int open_loops(emitter *e, const kiln_shape *s, bool flat, kindex *ix, const char *pre)
{
    memset(ix, 0, sizeof *ix); /* flat loops leave ax[] unused; children still copy it */
    ix->flat = flat;
    ix->rank = s->rank;
    if (flat) {
        char n[64];
        size_str(n, sizeof n, s);
        sb_put(&e->body, "%s    for (int64_t i = 0; i < %s; i++) {\n", pre, n);
        return 1;
    }
    for (int k = 0; k < s->rank; k++) {
        char d[24];
        dim_str(d, sizeof d, s->dims[k]);
        snprintf(ix->ax[k], sizeof ix->ax[k], "i%d", k);
        sb_put(&e->body, "%s    %*sfor (int64_t i%d = 0; i%d < %s; i%d++)%s\n", pre, 4 * k, "", k, k, d, k,
               k == s->rank - 1 ? " {" : "");
    }
    if (s->rank == 0)
        sb_put(&e->body, "%s    {\n", pre);
    return s->rank;
}

static void close_loops(emitter *e, const kiln_shape *s, bool flat)
{
    int depth = flat ? 0 : (s->rank > 0 ? s->rank - 1 : 0);
    sb_put(&e->body, "    %*s}\n", 4 * depth, "");
}

static void kernel_elementwise(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id);
    int32_t sum = e->sibling ? e->sibling[id] : -1;
    kindex ix;
    bool flat = flat_ok(e, id, &r->shape, true) && r->shape.rank > 0 && sum < 0;
    char n[64], x[EXPR_MAX], out[512], acc[512];
    if (sum >= 0) { /* a sum over one axis of this value, in the same pass */
        size_str(n, sizeof n, &R(e, sum)->shape);
        sb_put(&e->body, "    /* and node %d:sum -> %s in the same loop */\n", (int)sum, e->var[sum]);
        sb_put(&e->body, "    for (int64_t i = 0; i < %s; i++) %s[i] = 0;\n", n, storage_name(e, sum));
    }
    open_loops(e, &r->shape, flat, &ix, "");
    expr(e, x, sizeof x, id, &ix, true);
    access(e, out, sizeof out, id, &ix);
    int depth = flat ? 1 : (r->shape.rank ? r->shape.rank : 1);
    if (sum >= 0) {
        kindex oix = {.flat = false, .rank = 0};
        for (int k = 0; k < r->shape.rank; k++)
            if (k != R(e, sum)->axis)
                snprintf(oix.ax[oix.rank++], sizeof oix.ax[0], "%s", ix.ax[k]);
        access(e, acc, sizeof acc, sum, &oix);
        sb_put(&e->body, "    %*s%s v = %s;\n", 4 * depth, "", e->real, x);
        sb_put(&e->body, "    %*s%s = v;\n", 4 * depth, "", out);
        sb_put(&e->body, "    %*s%s += v;\n", 4 * depth, "", acc);
    } else {
        sb_put(&e->body, "    %*s%s = %s;\n", 4 * depth, "", out, x);
    }
    close_loops(e, &r->shape, flat);
}

static void kernel_reduce(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id);
    int32_t x = r->in[0];
    const kiln_shape *xs = &R(e, x)->shape;
    bool is_max = r->op == KILN_OP_MAX;
    char xv[EXPR_MAX], out[512];
    kindex ix;
    if (r->axis == KILN_ALL_AXES || xs->rank == 0) {
        bool flat = flat_ok(e, x, xs, false) || xs->rank == 0;
        sb_put(&e->body, "    {\n        double acc = %s;\n", is_max ? "-INFINITY" : "0");
        open_loops(e, xs, flat && xs->rank > 0, &ix, "    ");
        expr(e, xv, sizeof xv, x, &ix, false);
        int depth = (flat && xs->rank > 0) ? 1 : (xs->rank ? xs->rank : 1);
        if (is_max)
            sb_put(&e->body, "        %*sif (%s > acc) acc = %s;\n", 4 * depth, "", xv, xv);
        else
            sb_put(&e->body, "        %*sacc += %s;\n", 4 * depth, "", xv);
        sb_put(&e->body, "    ");
        close_loops(e, xs, flat && xs->rank > 0);
        sb_put(&e->body, "        %s[0] = (%s)acc;\n    }\n", storage_name(e, id), e->real);
        return;
    }
    /* Over one axis: initialise, then one pass over x in row-major order
    ** (a fixed order: the same bits every run). */
    char n[64];
    size_str(n, sizeof n, &r->shape);
    sb_put(&e->body, "    for (int64_t i = 0; i < %s; i++) %s[i] = %s;\n", n, storage_name(e, id),
           is_max ? "-INFINITY" : "0");
    open_loops(e, xs, false, &ix, "");
    expr(e, xv, sizeof xv, x, &ix, false);
    kindex oix = {.flat = false, .rank = 0};
    for (int k = 0; k < xs->rank; k++)
        if (k != r->axis)
            snprintf(oix.ax[oix.rank++], sizeof oix.ax[0], "%s", ix.ax[k]);
    access(e, out, sizeof out, id, &oix);
    int depth = xs->rank;
    if (is_max)
        sb_put(&e->body, "    %*s{ %s v = %s; if (v > %s) %s = v; }\n", 4 * depth, "", e->real, xv, out, out);
    else
        sb_put(&e->body, "    %*s%s += %s;\n", 4 * depth, "", out, xv);
    close_loops(e, xs, false);
}

/* Whether product id may go to rt->sgemm_nn, kiln's kernel for few rows
** (runtime/gemm.c): y = x W in floats, neither transposed, not an update,
** with the columns and the contracted size fixed. */
static bool own_gemm_ok(const emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id), *ra = R(e, r->in[0]);
    int64_t n = r->shape.dims[1], k = ra->shape.dims[1];
    return r->op == KILN_OP_MATMUL && e->g->floatx == KILN_DTYPE_F32 && !r->trans_a && !r->trans_b &&
           e->fused[id] < 0 && n != KILN_BATCH && k != KILN_BATCH && n <= INT32_MAX && k <= INT32_MAX;
}

/* A matrix product C = op(A) op(B) through CBLAS, or, fused, W -= lr *
** op(A) op(B) (alpha -lr, beta 1, C = W). When the batch dim is one of the
** sizes, a batch of 1 makes it a matrix-vector product (or, when B is the
** contracted size of a fused update, a rank-1 update): sgemv and sger are
** 25-35% faster than sgemm at those shapes in OpenBLAS (docs/performance.md). */
static void kernel_matmul(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id), *ra = R(e, r->in[0]), *rb = R(e, r->in[1]);
    char m[24], nn[24], k[24], lda[24], ldb[24];
    char t = e->g->floatx == KILN_DTYPE_F64 ? 'd' : 's';
    int64_t dm = r->shape.dims[0], dn = r->shape.dims[1], dk = ra->shape.dims[r->trans_a ? 0 : 1];
    dim_str(m, sizeof m, dm);
    dim_str(nn, sizeof nn, dn);
    dim_str(k, sizeof k, dk);
    dim_str(lda, sizeof lda, ra->shape.dims[1]);
    dim_str(ldb, sizeof ldb, rb->shape.dims[1]);
    const char *a = storage_name(e, r->in[0]), *b = storage_name(e, r->in[1]);
    int fp = e->fused ? e->fused[id] : -1;
    const char *c = fp >= 0 ? storage_name(e, e->p->param_node[fp]) : storage_name(e, id);
    const char *alpha = fp >= 0 ? "-lr" : "1", *beta = fp >= 0 ? "1" : "0";
    const char *ta = r->trans_a ? "CblasTrans" : "CblasNoTrans", *tb = r->trans_b ? "CblasTrans" : "CblasNoTrans";
    const char *ind = "    ";
    bool one = false;
    int dp = e->defer_at[id];
    if (dm == KILN_BATCH && dp >= 0) {
        /* W's update from the last batch-1 step, applied in the pass that
        ** computes this product (plan_deferred) */
        const char *pv = e->pend[dp];
        sb_put(&e->body, "    if (B == 1 && %s[0] != 0) {\n"
                         "        rt->sger_gemv((int)%s, (int)%s, %s, (int)%s, %s + 1, %s + 1 + %s, %s, %s);\n"
                         "        %s[0] = 0;\n"
                         "    } else", pv, k, nn, b, ldb, pv, pv, k, a, c, pv);
    }
    if (dm == KILN_BATCH) {
        /* one row: c (n) = op(B)^T a, a read with stride lda when A is transposed */
        sb_put(&e->body, dp >= 0 ? " if (B == 1)\n" : "    if (B == 1)\n");
        sb_put(&e->body, "        cblas_%cgemv(CblasRowMajor, %s, (int)%s, (int)%s, %s, %s, (int)%s, %s, %s, %s, %s, 1);\n"
                         "    else\n", t, r->trans_b ? "CblasNoTrans" : "CblasTrans", r->trans_b ? nn : k,
               r->trans_b ? k : nn, alpha, b, ldb, a, "1", beta, c); /* a: B = 1 row, contiguous */
        one = true;
    } else if (dn == KILN_BATCH) {
        /* one column: c (m) = op(A) b, b read with stride ldb unless B is transposed */
        sb_put(&e->body, "    if (B == 1)\n        cblas_%cgemv(CblasRowMajor, %s, (int)%s, (int)%s, %s, %s, (int)%s, %s, 1, %s, %s, 1);\n"
                         "    else\n", t, ta, r->trans_a ? k : m, r->trans_a ? m : k, alpha, a, lda, b, beta, c);
        one = true;
    } else if (dk == KILN_BATCH && fp >= 0 && e->defer[fp] >= 0) {
        /* contracted over one example: keep u = a and v = -lr b, and let the
        ** next step apply W += u v^T while it reads W (plan_deferred) */
        const char *pv = e->pend[fp];
        sb_put(&e->body,
               "    if (B == 1) {\n"
               "        if (%s[0] != 0) rt->sger_gemv((int)%s, (int)%s, %s, (int)%s, %s + 1, %s + 1 + %s, 0, 0);\n"
               "        for (int64_t i = 0; i < %s; i++) %s[1 + i] = %s[i];\n"
               "        for (int64_t j = 0; j < %s; j++) %s[1 + %s + j] = -lr * %s[j];\n"
               "        %s[0] = 1;\n"
               "    } else\n", pv, m, nn, c, nn, pv, pv, m, m, pv, a, nn, pv, m, b, pv);
        one = true;
    } else if (dk == KILN_BATCH && fp >= 0) {
        /* contracted over one example: W -= lr * a b^T, a rank-1 update */
        sb_put(&e->body, "    if (B == 1)\n        cblas_%cger(CblasRowMajor, (int)%s, (int)%s, -lr, %s, 1, %s, 1, %s, (int)%s);\n"
                         "    else\n", t, m, nn, a, b, c, nn);
        one = true;
    }
    if (e->scratch >= 0 && own_gemm_ok(e, id)) {
        /* kiln's kernel for few rows where the CPU has it; it calls the BLAS
        ** itself at shapes where OpenBLAS is faster (runtime/gemm.c). After
        ** a B == 1 branch, "else\n" becomes "else if". */
        if (one && e->body.n && e->body.s[e->body.n - 1] == '\n')
            e->body.s[--e->body.n] = '\0';
        sb_put(&e->body,
               "%sif (rt->sgemm_nn)\n"
               "        rt->sgemm_nn((int)%s, (int)%s, (int)%s, %s, (int)%s, %s, (int)%s, %s, (int)%s, gemm_scratch);\n"
               "    else\n",
               one ? " " : "    ", m, nn, k, a, lda, b, ldb, c, nn);
        one = true;
    }
    if (one)
        ind = "        ";
    sb_put(&e->body,
           "%scblas_%cgemm(CblasRowMajor, %s, %s, (int)%s, (int)%s, (int)%s,\n"
           "%s            %s, %s, (int)%s, %s, (int)%s, %s, %s, (int)%s);\n",
           ind, t, ta, tb, m, nn, k, ind + 4, alpha, a, lda, b, ldb, beta, c, nn);
}

/* Row-wise ops over a 2-D input (rows, cols). */
static void kernel_rows(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id), *ra = R(e, r->in[0]);
    char rows[24], cols[24];
    dim_str(rows, sizeof rows, ra->shape.dims[0]);
    dim_str(cols, sizeof cols, ra->shape.dims[1]);
    const char *x = storage_name(e, r->in[0]), *y = storage_name(e, id), *t = e->real;
    const char *idx = r->n_in > 1 ? storage_name(e, r->in[1]) : NULL;
    sb_put(&e->body, "    for (int64_t r = 0; r < %s; r++) {\n        const %s *x = %s + r * %s;\n", rows, t, x,
           cols);
    if (idx)
        sb_put(&e->body,
               "        int32_t t = %s[r];\n"
               "        if (t < 0 || t >= %s) return k_bad_index(%d, r);\n",
               idx, cols, (int)id);
    switch (r->op) {
    case KILN_OP_PICK:
        sb_put(&e->body, "        %s[r] = x[t];\n", y);
        break;
    case KILN_OP_ARGMAX:
        sb_put(&e->body,
               "        int32_t best = 0;\n"
               "        for (int64_t j = 1; j < %s; j++) if (x[j] > x[best]) best = (int32_t)j;\n"
               "        %s[r] = best;\n",
               cols, y);
        break;
    default:
        sb_put(&e->body,
               "        %s m = x[0];\n"
               "        for (int64_t j = 1; j < %s; j++) if (x[j] > m) m = x[j];\n",
               t, cols);
        if (r->op == KILN_OP_SOFTMAX)
            sb_put(&e->body,
                   "        %s *y = %s + r * %s, s = 0;\n"
                   "        for (int64_t j = 0; j < %s; j++) { y[j] = k_exp(x[j] - m); s += y[j]; }\n"
                   "        %s inv = 1 / s;\n"
                   "        for (int64_t j = 0; j < %s; j++) y[j] *= inv;\n",
                   t, y, cols, cols, t, cols);
        else if (r->op == KILN_OP_LOGSOFTMAX)
            sb_put(&e->body,
                   "        %s *y = %s + r * %s, s = 0;\n"
                   "        for (int64_t j = 0; j < %s; j++) s += k_exp(x[j] - m);\n"
                   "        %s lse = m + k_log(s);\n"
                   "        for (int64_t j = 0; j < %s; j++) y[j] = x[j] - lse;\n",
                   t, y, cols, cols, t, cols);
        else if (e->rows_with[id] >= 0) /* SOFTMAX_XENT and the softmax: the same exps, summed in the same order */
            sb_put(&e->body,
                   "        %s s = 0;\n"
                   "        if (mode & (MODE_GRADIENTS | MODE_TRAIN)) {\n"
                   "            %s *y = %s + r * %s;\n"
                   "            for (int64_t j = 0; j < %s; j++) { y[j] = k_exp(x[j] - m); s += y[j]; }\n"
                   "            %s inv = 1 / s;\n"
                   "            for (int64_t j = 0; j < %s; j++) y[j] *= inv;\n"
                   "        } else\n"
                   "            for (int64_t j = 0; j < %s; j++) s += k_exp(x[j] - m);\n"
                   "        %s[r] = m + k_log(s) - x[t];\n",
                   t, t, storage_name(e, e->rows_with[id]), cols, cols, t, cols, cols, y);
        else /* SOFTMAX_XENT: log(sum exp(x)) - x[t], computed stably */
            sb_put(&e->body,
                   "        %s s = 0;\n"
                   "        for (int64_t j = 0; j < %s; j++) s += k_exp(x[j] - m);\n"
                   "        %s[r] = m + k_log(s) - x[t];\n",
                   t, cols, y);
    }
    sb_put(&e->body, "    }\n");
}

static void kernel_transpose(emitter *e, int32_t id)
{
    const kiln_node_rec *ra = R(e, R(e, id)->in[0]);
    char rows[24], cols[24];
    dim_str(rows, sizeof rows, ra->shape.dims[0]);
    dim_str(cols, sizeof cols, ra->shape.dims[1]);
    sb_put(&e->body,
           "    for (int64_t i = 0; i < %s; i++)\n"
           "        for (int64_t j = 0; j < %s; j++) %s[j * %s + i] = %s[i * %s + j];\n",
           rows, cols, storage_name(e, id), rows, storage_name(e, R(e, id)->in[0]), cols);
}

static bool is_kernel(const emitter *e, int32_t id, unsigned entry)
{
    const kiln_plan *p = e->p;
    const kiln_node_rec *r = R(e, id);
    if (!(p->entries[id] & entry) || p->inline_[id] || p->alias[id] != id)
        return false;
    return r->op != KILN_OP_INPUT && r->op != KILN_OP_PARAM;
}

static void emit_kernel(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id);
    kernel_comment(e, id);
    switch (r->op) {
    case KILN_OP_MATMUL: kernel_matmul(e, id); break;
    case KILN_OP_SUM:
    case KILN_OP_MAX: kernel_reduce(e, id); break;
    case KILN_OP_SOFTMAX:
    case KILN_OP_LOGSOFTMAX:
    case KILN_OP_PICK:
    case KILN_OP_ARGMAX:
    case KILN_OP_SOFTMAX_XENT: kernel_rows(e, id); break;
    case KILN_OP_TRANSPOSE: kernel_transpose(e, id); break;
    default: kernel_elementwise(e, id); break; /* elementwise, scalar leaves, unaliased reshape */
    }
}

/* Pointer declarations for every storage the function's body referenced. */
static void emit_decls(emitter *e, sbuf *out)
{
    const kiln_plan *p = e->p;
    sb_put(out, "    %s *hyper = (%s *)(arena + %" PRId64 ");\n", e->real, e->real, p->off_fixed + p->hyper_offset);
    for (int32_t id = 0; id < p->n; id++) {
        if (!e->used[id])
            continue;
        const kiln_node_rec *r = R(e, id);
        const kiln_buffer *b = &p->buf[id];
        const char *t = ctype(e, r->dtype);
        switch (b->zone) {
        case KILN_ZONE_INPUT:
            sb_put(out, "    const %s *%s = (const %s *)inputs[%d];\n", t, e->var[id], t, b->index);
            break;
        case KILN_ZONE_BATCH:
            sb_put(out, "    %s *%s = (%s *)(arena + %" PRId64 " + %" PRId64 " * B);\n", t, e->var[id], t,
                   p->off_batch, b->offset);
            break;
        case KILN_ZONE_NONE:
            e->failed = true;
            break;
        default:
            sb_put(out, "    %s *%s = (%s *)(arena + %" PRId64 ");\n", t, e->var[id], t,
                   kiln_plan_arena_offset(p, id, 0));
        }
    }
}

/* kernel_of[id]: the kernel that computes node id (itself, or the consumer
** whose loop an inline node is computed in). */
static void kernel_owners(const emitter *e, int32_t *kernel_of)
{
    const kiln_plan *p = e->p;
    for (int32_t id = p->n - 1; id >= 0; id--) {
        if (!p->inline_[id])
            kernel_of[id] = id;
        for (int k = 0; k < R(e, id)->n_in; k++)
            if (p->inline_[R(e, id)->in[k]])
                kernel_of[R(e, id)->in[k]] = kernel_of[id];
    }
}

/* Which parameters train_step updates inside their gradient's GEMM: the
** gradient is one matrix product, stored nowhere else, read by no other
** kernel, and every kernel that reads the parameter runs before it (so the
** cost, monitors and the backward pass all see the old value, as Blocks'
** updates do). fused[gradient node] = param index. */
static void plan_fused_updates(emitter *e)
{
    const kiln_plan *p = e->p;
    int32_t n = p->n;
    int32_t *kernel_of = malloc(sizeof(int32_t) * ((size_t)n + 1));
    int32_t *last_read = malloc(sizeof(int32_t) * ((size_t)n + 1));
    int32_t *readers = calloc((size_t)n + 1, sizeof(int32_t));
    for (int32_t i = 0; i < n; i++)
        e->fused[i] = -1;
    if (!kernel_of || !last_read || !readers) {
        free(kernel_of);
        free(last_read);
        free(readers);
        return; /* without memory, fuse nothing: still correct */
    }
    kernel_owners(e, kernel_of);
    for (int32_t i = 0; i < n; i++)
        last_read[i] = -1;
    for (int32_t id = 0; id < n; id++) {
        if (!(p->entries[id] & KILN_ENTRY_TRAIN))
            continue;
        for (int k = 0; k < R(e, id)->n_in; k++) {
            int32_t s = p->alias[R(e, id)->in[k]];
            readers[s]++;
            if (kernel_of[id] > last_read[s])
                last_read[s] = kernel_of[id];
        }
    }
    for (int i = 0; i < p->n_params; i++) {
        int32_t gid = p->grad_node[i], pid = p->param_node[i];
        if (gid < 0 || p->grad_copy[i] || R(e, gid)->op != KILN_OP_MATMUL || p->buf[gid].zone != KILN_ZONE_GRAD)
            continue;
        if (readers[gid] != 0 || last_read[pid] >= gid)
            continue;
        e->fused[gid] = i;
    }
    free(kernel_of);
    free(last_read);
    free(readers);
}

/* Which fused updates train_step defers at batch 1. There the update is the
** rank-1 W -= lr x^T d, and the next step's first use of W is usually the
** product x' W: applied apart they read W twice and write it once (sger,
** then sgemv), applied together one pass reads and writes it
** (rt->sger_gemv): a third less memory traffic, for a weight that does not
** fit in L2 about a third of the step. So the step keeps u = x and v = -lr d
** in a slot after the plan's arena, and the next batch-1 train_step's first
** kernel reading W applies them while it computes its product. Anything
** else first flushes them (k_flush): every other entry point and batch
** size at the start of _run, and the runtime before it reads or writes a
** parameter. Deferred only when that first reader is a product x W (W the
** right operand, not transposed, the batch as its rows) and floats are
** float (the kernel is single precision). */
static void plan_deferred(emitter *e)
{
    const kiln_plan *p = e->p;
    int32_t n = p->n;
    int64_t off = (p->arena_bytes + 63) / 64 * 64, esz = (int64_t)kiln_dtype_size(p->g->floatx);
    e->arena_bytes = p->arena_bytes;
    for (int i = 0; i < p->n_params; i++)
        e->defer[i] = -1;
    for (int32_t id = 0; id < n; id++)
        e->defer_at[id] = -1;
    if (!e->o->has_train || p->g->floatx != KILN_DTYPE_F32)
        return;
    int32_t *kernel_of = malloc(sizeof(int32_t) * ((size_t)n + 1));
    if (!kernel_of)
        return; /* without memory, defer nothing: still correct */
    kernel_owners(e, kernel_of);
    for (int32_t gid = 0; gid < n; gid++) {
        int i = e->fused[gid];
        if (i < 0)
            continue;
        const kiln_node_rec *g = R(e, gid);
        if (R(e, g->in[0])->shape.dims[g->trans_a ? 0 : 1] != KILN_BATCH)
            continue; /* not a rank-1 update at batch 1 */
        int32_t pid = p->param_node[i], first = -1;
        for (int32_t id = 0; id < n && first < 0; id++) {
            if (!(p->entries[id] & KILN_ENTRY_TRAIN))
                continue;
            for (int k = 0; k < R(e, id)->n_in; k++)
                if (p->alias[R(e, id)->in[k]] == pid && (first < 0 || kernel_of[id] < first))
                    first = kernel_of[id];
        }
        if (first < 0)
            continue;
        const kiln_node_rec *f = R(e, first);
        if (f->op != KILN_OP_MATMUL || f->in[1] != pid || p->alias[f->in[0]] == pid || f->trans_b ||
            f->shape.dims[0] != KILN_BATCH || e->fused[first] >= 0 || e->defer_at[first] >= 0)
            continue;
        const kiln_shape *w = &R(e, pid)->shape;
        e->defer[i] = off;
        e->defer_at[first] = i;
        snprintf(e->pend[i], sizeof e->pend[i], "pend_%s", e->var[pid]);
        off += (1 + w->dims[0] + w->dims[1]) * esz;
        off = (off + 63) / 64 * 64;
        e->arena_bytes = off;
    }
    free(kernel_of);
}

/* One scratch slot after the arena, as large as the largest product that
** may go to rt->sgemm_nn needs (the products run one at a time). */
static void plan_scratch(emitter *e)
{
    int64_t need = 0;
    e->scratch = -1;
    for (int32_t id = 0; id < e->p->n; id++)
        if (R(e, id)->op == KILN_OP_MATMUL && own_gemm_ok(e, id)) {
            int64_t n = R(e, id)->shape.dims[1], k = R(e, R(e, id)->in[0])->shape.dims[1];
            if (KILN_CODEGEN_GEMM_SCRATCH(n, k) > need)
                need = KILN_CODEGEN_GEMM_SCRATCH(n, k);
            if (n * k > (int64_t)e->gemm_n * e->gemm_k) {
                e->gemm_n = (int)n;
                e->gemm_k = (int)k;
            }
        }
    if (!need)
        return;
    e->scratch = (e->arena_bytes + 63) / 64 * 64;
    e->arena_bytes = e->scratch + need * (int64_t)sizeof(float);
}

/* k_flush: apply the deferred updates (plan_deferred), and <model>_flush,
** which the runtime calls before it touches a parameter. */
static void emit_flush(emitter *e, sbuf *out)
{
    const kiln_plan *p = e->p;
    sb_put(out, "\n/* Apply the updates a batch-1 train_step deferred to the next step's first\n"
                "** product with the weight: before any other entry point, batch size, or\n"
                "** read or write of a parameter. */\n"
                "static void k_flush(char *arena, const k_runtime *rt)\n{\n    (void)arena;\n    (void)rt;\n");
    for (int i = 0; i < p->n_params; i++) {
        if (e->defer[i] < 0)
            continue;
        const kiln_shape *w = &R(e, p->param_node[i])->shape;
        const char *pv = e->pend[i];
        sb_put(out, "    real *%s = (real *)(arena + %" PRId64 ");\n", pv, e->defer[i]);
        sb_put(out, "    if (%s[0] != 0) { /* %s += u v^T */\n"
                    "        rt->sger_gemv(%" PRId64 ", %" PRId64 ", (real *)(arena + %" PRId64 "), %" PRId64
                    ", %s + 1, %s + %" PRId64 ", 0, 0);\n"
                    "        %s[0] = 0;\n    }\n",
               pv, e->var[p->param_node[i]], w->dims[0], w->dims[1], p->param_offset[i], w->dims[1], pv, pv,
               1 + w->dims[0], pv);
    }
    sb_put(out, "}\n\nint64_t %s_flush(char *arena, const k_runtime *rt)\n{\n    k_flush(arena, rt);\n    return 0;\n}\n",
           e->o->model);
}

/* The update p -= lr * grad over every parameter not updated in a GEMM, as
** few loops as possible (adjacent slots merge). */
static void emit_slab_update(emitter *e, const bool *done)
{
    const kiln_plan *p = e->p;
    int64_t esz = (int64_t)kiln_dtype_size(p->g->floatx);
    sb_put(&e->body, "\n    /* Scale(learning_rate): p -= lr * grad over the parameter slab */\n");
    sb_put(&e->body, "    real *params = (real *)arena;\n    const real *grads = (const real *)(arena + %" PRId64 ");\n",
           p->off_grads);
    for (int i = 0; i < p->n_params;) {
        if (done[i]) {
            i++;
            continue;
        }
        int j = i;
        while (j + 1 < p->n_params && !done[j + 1])
            j++;
        int64_t lo = p->param_offset[i] / esz;
        int64_t hi = j + 1 < p->n_params ? p->param_offset[j + 1] / esz : p->param_bytes / esz;
        sb_put(&e->body, "    for (int64_t i = %" PRId64 "; i < %" PRId64 "; i++) params[i] -= lr * grads[i]; /* %s",
               lo, hi, e->var[p->param_node[i]]);
        sb_put(&e->body, j > i ? " .. %s */\n" : " */\n", e->var[p->param_node[j]]);
        i = j + 1;
    }
}

/* Modes of the generated <model>_run: which entry point is running. */
enum { MODE_FORWARD = 1, MODE_EVAL = 2, MODE_GRADIENTS = 4, MODE_TRAIN = 8 };

/* Modes in which node id's kernel runs. */
static unsigned kernel_modes(const emitter *e, int32_t id)
{
    unsigned m = 0, en = e->p->entries[id];
    if ((en & KILN_ENTRY_FORWARD) && e->o->has_forward)
        m |= MODE_FORWARD;
    if ((en & KILN_ENTRY_EVAL) && e->o->has_train)
        m |= MODE_EVAL;
    if ((en & KILN_ENTRY_TRAIN) && e->o->has_train)
        m |= MODE_GRADIENTS | MODE_TRAIN;
    return m;
}

/* Append text to the body, indented by 4 more spaces per line. */
static void put_indented(sbuf *b, const char *text)
{
    for (const char *l = text; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l + 1) : strlen(l);
        sb_put(b, n > 1 ? "    %.*s" : "%.*s", (int)n, l);
        l += n;
    }
}

/* Emit one kernel into its own buffer (so it can be wrapped in a guard). */
static char *kernel_text(emitter *e, int32_t id)
{
    sbuf saved = e->body, k = {0};
    e->body = k;
    emit_kernel(e, id);
    k = e->body;
    e->body = saved;
    if (k.oom)
        e->failed = true;
    return k.s;
}

/* All entry points in one body: each kernel runs in the modes whose entry
** point needs it (a guard when that is not every mode), a weight's fused
** update only in MODE_TRAIN. One body instead of four copies keeps the
** file, and the C compiler's time, small (see docs/performance.md). */
static void emit_run(emitter *e, sbuf *out)
{
    const kiln_plan *p = e->p;
    unsigned all = (e->o->has_forward ? MODE_FORWARD : 0) |
                   (e->o->has_train ? MODE_EVAL | MODE_GRADIENTS | MODE_TRAIN : 0);
    bool *done = calloc((size_t)p->n_params + 1, sizeof *done);
    if (!done) {
        e->failed = true;
        return;
    }
    memset(e->used, 0, (size_t)p->n + 1);
    e->body.n = 0;
    if (e->body.s)
        e->body.s[0] = '\0';
    sb_put(&e->body, "    const real lr = hyper[%d];\n    (void)lr;\n", KILN_HYPER_LEARNING_RATE);
    bool deferred = false;
    for (int i = 0; i < p->n_params; i++)
        deferred |= e->defer[i] >= 0;
    if (deferred)
        sb_put(&e->body, "    if (!(mode == MODE_TRAIN && B == 1)) /* only a batch-1 step applies deferred updates itself */\n"
                         "        k_flush(arena, rt);\n");
    /* Sums over one axis of a stored elementwise value, into a gradient slot
    ** (pinned: no other value lives there, so it may be written early), are
    ** computed in the loop that writes the value: one pass instead of two
    ** (a bias gradient beside its layer's delta), same order, same bits. */
    unsigned char *absorbed = calloc((size_t)p->n + 1, 1);
    if (!absorbed)
        e->failed = true;
    for (int32_t id = 0; id < p->n; id++)
        e->sibling[id] = -1;
    for (int32_t id = 0; absorbed && id < p->n; id++) {
        const kiln_node_rec *r = R(e, id);
        int32_t k = r->n_in ? r->in[0] : -1;
        if (r->op != KILN_OP_SUM || r->axis == KILN_ALL_AXES || p->inline_[id] || p->alias[id] != id ||
            p->buf[id].zone != KILN_ZONE_GRAD || k < 0 || p->inline_[k] || p->alias[k] != k ||
            !kiln_op_is_elementwise(R(e, k)->op) || e->sibling[k] >= 0 || e->fused[k] >= 0 ||
            kernel_modes(e, id) != kernel_modes(e, k) || !is_kernel(e, k, KILN_ENTRY_FORWARD | KILN_ENTRY_EVAL | KILN_ENTRY_TRAIN))
            continue;
        e->sibling[k] = id;
        absorbed[id] = 1;
    }
    /* The softmax of a classifier's logits (wanted for the gradient) and the
    ** cross-entropy of the same logits (the cost) share one row loop: one
    ** exp per logit instead of two, the same values and order, the same bits.
    ** Only when the softmax runs in no mode the cross-entropy does not, and
    ** nothing reads the softmax before the cross-entropy's place. */
    for (int32_t id = 0; id < p->n; id++)
        e->rows_with[id] = -1;
    for (int32_t id = 0; absorbed && id < p->n; id++) {
        const kiln_node_rec *r = R(e, id);
        if (r->op != KILN_OP_SOFTMAX_XENT || !kernel_modes(e, id) ||
            !is_kernel(e, id, KILN_ENTRY_FORWARD | KILN_ENTRY_EVAL | KILN_ENTRY_TRAIN))
            continue;
        for (int32_t sm = 0; sm < id; sm++) {
            const kiln_node_rec *q = R(e, sm);
            unsigned qm = kernel_modes(e, sm);
            if (q->op != KILN_OP_SOFTMAX || q->in[0] != r->in[0] || p->inline_[sm] || p->alias[sm] != sm ||
                absorbed[sm] || !qm || (qm & ~kernel_modes(e, id)) || (qm & (MODE_FORWARD | MODE_EVAL)) ||
                !is_kernel(e, sm, KILN_ENTRY_FORWARD | KILN_ENTRY_EVAL | KILN_ENTRY_TRAIN))
                continue;
            bool read_early = false;
            for (int32_t k = sm + 1; k < id && !read_early; k++)
                for (int a = 0; a < R(e, k)->n_in; a++)
                    read_early |= p->alias[R(e, k)->in[a]] == sm;
            if (read_early)
                continue;
            e->rows_with[id] = sm;
            absorbed[sm] = 1;
            break;
        }
    }
    for (int32_t id = 0; id < p->n; id++) {
        unsigned m = kernel_modes(e, id);
        if (!m || !is_kernel(e, id, KILN_ENTRY_FORWARD | KILN_ENTRY_EVAL | KILN_ENTRY_TRAIN))
            continue;
        if (absorbed && absorbed[id])
            continue;
        int fp = e->fused[id];
        if (fp >= 0) { /* the plain product, and the fused update in MODE_TRAIN */
            done[fp] = true;
            char *fused = kernel_text(e, id);
            e->fused[id] = -1;
            char *plain = kernel_text(e, id);
            e->fused[id] = fp;
            sb_put(&e->body, "\n    if (mode == MODE_TRAIN) {");
            put_indented(&e->body, fused);
            sb_put(&e->body, "    } else {");
            put_indented(&e->body, plain);
            sb_put(&e->body, "    }\n");
            free(fused);
            free(plain);
        } else if (m != all) {
            char *k = kernel_text(e, id);
            sb_put(&e->body, "\n    if (mode & (%s%s%s%s)) {", (m & MODE_FORWARD) ? "MODE_FORWARD | " : "",
                   (m & MODE_EVAL) ? "MODE_EVAL | " : "", (m & MODE_GRADIENTS) ? "MODE_GRADIENTS | " : "",
                   (m & MODE_TRAIN) ? "MODE_TRAIN" : "0");
            put_indented(&e->body, k);
            sb_put(&e->body, "    }\n");
            free(k);
        } else {
            emit_kernel(e, id);
        }
    }
    bool copies = false;
    for (int i = 0; i < p->n_params; i++)
        copies |= p->grad_node[i] >= 0 && p->grad_copy[i];
    if (e->o->has_train && copies) {
        sb_put(&e->body, "\n    if (mode & (MODE_GRADIENTS | MODE_TRAIN)) {\n");
        for (int i = 0; i < p->n_params; i++) {
            int32_t gid = p->grad_node[i];
            if (gid < 0 || !p->grad_copy[i])
                continue;
            char n[64], x[EXPR_MAX];
            size_str(n, sizeof n, &R(e, gid)->shape);
            kindex ix = {.flat = true};
            expr(e, x, sizeof x, gid, &ix, false);
            sb_put(&e->body, "        /* gradient of %s, stored elsewhere: copy into its slot */\n",
                   e->var[p->param_node[i]]);
            sb_put(&e->body, "        for (int64_t i = 0; i < %s; i++) ((real *)(arena + %" PRId64 "))[i] = %s;\n", n,
                   p->off_grads + p->param_offset[i], x);
        }
        sb_put(&e->body, "    }\n");
    }
    if (e->o->has_train) {
        sbuf saved = e->body, u = {0};
        e->body = u;
        emit_slab_update(e, done);
        u = e->body;
        e->body = saved;
        sb_put(&e->body, "\n    if (mode == MODE_TRAIN) {");
        put_indented(&e->body, u.s);
        sb_put(&e->body, "    }\n");
        free(u.s);
    }
    for (int32_t id = 0; id < p->n; id++)
        e->fused[id] = -1;
    free(done);
    free(absorbed);

    emit_flush(e, out);
    sb_put(out, "\nenum { MODE_FORWARD = 1, MODE_EVAL = 2, MODE_GRADIENTS = 4, MODE_TRAIN = 8 };\n");
    sb_put(out, "\n/* Every entry point's kernels; mode says which entry point runs. */\n"
                "__attribute__((noinline))\n"
                "static int64_t %s_run(char *arena, const void *const *inputs, int64_t B, int mode,\n"
                "                      const k_runtime *rt)\n{\n",
           e->o->model);
    char t = e->g->floatx == KILN_DTYPE_F64 ? 'd' : 's';
    sb_put(out, "    const k_%cgemm_fn cblas_%cgemm = rt->%cgemm;\n", t, t, t);
    sb_put(out, "    const k_%cgemv_fn cblas_%cgemv = rt->%cgemv;\n", t, t, t);
    sb_put(out, "    const k_%cger_fn cblas_%cger = rt->%cger;\n", t, t, t);
    emit_decls(e, out);
    for (int i = 0; i < p->n_params; i++)
        if (e->defer[i] >= 0)
            sb_put(out, "    real *%s = (real *)(arena + %" PRId64 "); /* deferred update: flag, u, v */\n", e->pend[i],
                   e->defer[i]);
    if (e->scratch >= 0)
        sb_put(out, "    float *gemm_scratch = (float *)(arena + %" PRId64 "); /* rt->sgemm_nn's */\n", e->scratch);
    sb_put(out, "    (void)inputs;\n    (void)B;\n    (void)hyper;\n    (void)mode;\n");
    sb_put(out, "    (void)cblas_%cgemm;\n    (void)cblas_%cgemv;\n    (void)cblas_%cger;\n", t, t, t);
    if (e->body.s)
        sb_put(out, "%s", e->body.s);
    sb_put(out, "    return 0;\n}\n");
}

static void emit_entry(sbuf *out, const char *model, const char *fn, const char *mode, const char *what)
{
    sb_put(out, "\n/* %s */\nint64_t %s_%s(char *arena, const void *const *inputs, int64_t B, const k_runtime *rt)\n{\n"
                "    return %s_run(arena, inputs, B, %s, rt);\n}\n",
           what, model, fn, model, mode);
}

static const char PRELUDE[] =
    "#include <math.h>\n"
    "#include <stdint.h>\n"
    "\n"
    "/* CBLAS GEMMs, handed in by the runtime (k_runtime) so that this file\n"
    "** needs no BLAS headers to build and links no BLAS library. */\n"
    "enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };\n"
    "typedef void (*k_sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,\n"
    "                           float, float *, int);\n"
    "typedef void (*k_dgemm_fn)(int, int, int, int, int, int, double, const double *, int, const double *, int,\n"
    "                           double, double *, int);\n"
    "typedef void (*k_sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int, float,\n"
    "                           float *, int);\n"
    "typedef void (*k_dgemv_fn)(int, int, int, int, double, const double *, int, const double *, int, double,\n"
    "                           double *, int);\n"
    "typedef void (*k_sger_fn)(int, int, int, float, const float *, int, const float *, int, float *, int);\n"
    "typedef void (*k_dger_fn)(int, int, int, double, const double *, int, const double *, int, double *, int);\n"
    "/* kiln's own: W (m x n, stride ldw) += u v^T, then, if x, y = x W (runtime/kernels.h) */\n"
    "typedef void (*k_sger_gemv_fn)(int m, int n, float *w, int ldw, const float *u, const float *v,\n"
    "                               const float *x, float *y);\n"
    "/* kiln's own: y = x W for few rows, or NULL (runtime/gemm.c) */\n"
    "typedef void (*k_sgemm_nn_fn)(int m, int n, int k, const float *x, int ldx, const float *w, int ldw,\n"
    "                              float *y, int ldy, float *scratch);\n"
    "typedef struct k_runtime {\n"
    "    k_sgemm_fn sgemm; k_dgemm_fn dgemm; k_sgemv_fn sgemv; k_dgemv_fn dgemv; k_sger_fn sger; k_dger_fn dger;\n"
    "    k_sger_gemv_fn sger_gemv;\n"
    "    k_sgemm_nn_fn sgemm_nn;\n"
    "} k_runtime;\n"
    "\n"
    "typedef %s real;\n"
    "%s"
    "static inline real k_sq(real x) { return x * x; }\n"
    "static inline real k_relu(real x) { return x > 0 ? x : 0; }\n"
    "static inline real k_sign(real x) { return (real)((x > 0) - (x < 0)); }\n"
    "static inline real k_max(real a, real b) { return a >= b ? a : b; }\n"
    "static inline real k_sigmoid(real x) { return 1 / (1 + k_exp(-x)); }\n"
    "static inline real k_softplus(real x) { return x > 0 ? x + k_log1p(k_exp(-x)) : k_log1p(k_exp(x)); }\n"
    "/* An integer read from the data (a target) out of range: node and row. */\n"
    "static int64_t k_bad_index(int node, int64_t row) { return ((int64_t)node << 32) | (row + 1); }\n";

static void emitter_free(emitter *e)
{
    free(e->var);
    free(e->used);
    free(e->fused);
    free(e->sibling);
    free(e->rows_with);
    free(e->defer);
    free(e->defer_at);
    free(e->pend);
    free(e->body.s);
}

enum kiln_status kiln_emit_c(const kiln_plan *p, const kiln_emit_options *o, char **out_src, kiln_emit_info *info,
                             kiln_err *err)
{
    emitter e = {.p = p, .g = p->g, .o = o};
    e.real = p->g->floatx == KILN_DTYPE_F64 ? "double" : "float";
    e.var = calloc((size_t)p->n + 1, sizeof *e.var);
    e.used = calloc((size_t)p->n + 1, 1);
    e.fused = calloc((size_t)p->n + 1, sizeof *e.fused);
    e.sibling = calloc((size_t)p->n + 1, sizeof *e.sibling);
    e.rows_with = calloc((size_t)p->n + 1, sizeof *e.rows_with);
    e.defer = calloc((size_t)p->n_params + 1, sizeof *e.defer);
    e.defer_at = calloc((size_t)p->n + 1, sizeof *e.defer_at);
    e.pend = calloc((size_t)p->n_params + 1, sizeof *e.pend);
    sbuf out = {0};
    if (!e.var || !e.used || !e.fused || !e.sibling || !e.rows_with || !e.defer || !e.defer_at || !e.pend) {
        emitter_free(&e);
        return kiln_err_set(err, KILN_ERR_NOMEM, "codegen: no memory");
    }
    name_nodes(&e);
    if (o->has_train)
        plan_fused_updates(&e);
    else
        for (int32_t id = 0; id < p->n; id++)
            e.fused[id] = -1;
    plan_deferred(&e);
    plan_scratch(&e);

    /* 1. Header: what made this file, and the arena layout. */
    sb_put(&out, "/* %s.c: generated by kiln %s (%s), do not edit.\n", o->model, KILN_VERSION, KILN_CODEGEN_VERSION);
    sb_put(&out, "**\n** model %s: %d nodes, %d parameters (%" PRId64 " bytes), floats are %s\n", o->model,
           (int)p->n, p->n_params, p->param_bytes, e.real);
    sb_put(&out, "** arena: params @0 | grads @%" PRId64 " | fixed @%" PRId64 " (%" PRId64 " bytes) | batch @%" PRId64
                 " (%" PRId64 " bytes per example, max batch %" PRId64 ")\n",
           p->off_grads, p->off_fixed, p->fixed_bytes, p->off_batch, p->batch_bytes_per_example, p->max_batch);
    int64_t end_deferred = e.scratch >= 0 ? e.scratch : e.arena_bytes;
    if (end_deferred > (p->arena_bytes + 63) / 64 * 64)
        sb_put(&out, "**        | deferred batch-1 updates @%" PRId64 " (%" PRId64 " bytes)\n",
               (p->arena_bytes + 63) / 64 * 64, end_deferred - (p->arena_bytes + 63) / 64 * 64);
    if (e.scratch >= 0)
        sb_put(&out, "**        | GEMM scratch @%" PRId64 " (%" PRId64 " bytes)\n", e.scratch,
               e.arena_bytes - e.scratch);
    sb_put(&out, "*/\n");
    /* libm by the float type, spelled out: <tgmath.h> costs compile time */
    static const char MATH_F32[] = "#define k_exp expf\n#define k_log logf\n#define k_log1p log1pf\n"
                                   "#define k_fabs fabsf\n#define k_sqrt sqrtf\n#define k_tanh tanhf\n"
                                   "#define k_pow powf\n";
    static const char MATH_F64[] = "#define k_exp exp\n#define k_log log\n#define k_log1p log1p\n"
                                   "#define k_fabs fabs\n#define k_sqrt sqrt\n#define k_tanh tanh\n"
                                   "#define k_pow pow\n";
    sb_put(&out, PRELUDE, e.real, p->g->floatx == KILN_DTYPE_F64 ? MATH_F64 : MATH_F32);
    sb_put(&out, "\n#define ARENA_BYTES %" PRId64 "\n#define PARAM_FLOATS %" PRId64 "\n", e.arena_bytes,
           p->param_bytes / (int64_t)kiln_dtype_size(p->g->floatx));
    sb_put(&out, "\n/* parameters, in slab order:\n");
    for (int i = 0; i < p->n_params; i++) {
        char sh[KILN_SHAPE_STR_MAX];
        shape_comment(sh, sizeof sh, &R(&e, p->param_node[i])->shape);
        sb_put(&out, "**   %-32s %s @%" PRId64 "\n", e.var[p->param_node[i]], sh, p->param_offset[i]);
    }
    sb_put(&out, "*/\n");

    /* 2. init: hyperparameters' defaults are set by the runtime; gradients
    ** of parameters the cost does not reach stay zero. */
    sb_put(&out,
           "\n/* Check the arena's size and clear the gradient slab. */\n"
           "int64_t %s_init(char *arena, int64_t arena_bytes)\n{\n"
           "    if (arena_bytes != ARENA_BYTES) return -1;\n"
           "    for (int64_t i = 0; i < PARAM_FLOATS; i++) ((real *)(arena + %" PRId64 "))[i] = 0;\n",
           o->model, p->off_grads);
    for (int i = 0; i < p->n_params; i++)
        if (e.defer[i] >= 0)
            sb_put(&out, "    ((real *)(arena + %" PRId64 "))[0] = 0; /* no deferred update of %s */\n", e.defer[i],
                   e.var[p->param_node[i]]);
    sb_put(&out, "    return 0;\n}\n");

    /* 3. Entry points. */
    emit_run(&e, &out);
    if (o->has_forward)
        emit_entry(&out, o->model, "forward", "MODE_FORWARD", "Inference: the outputs from the inputs.");
    if (o->has_train) {
        emit_entry(&out, o->model, "eval_step", "MODE_EVAL", "The cost and monitored values; no update.");
        emit_entry(&out, o->model, "gradients", "MODE_GRADIENTS",
                   "Cost, monitored values and the gradient of every parameter.");
        emit_entry(&out, o->model, "train_step", "MODE_TRAIN",
                   "One step of GradientDescent with Scale(learning_rate): the cost and\n"
                   "** monitors with the parameters as they were, then p -= lr * grad, inside\n"
                   "** the gradient's GEMM where it can be, else over the parameter slab.");
    }
    bool oom = e.body.oom;
    kiln_emit_info facts = {.arena_bytes = e.arena_bytes, .gemm_n = e.gemm_n, .gemm_k = e.gemm_k};
    emitter_free(&e);
    if (out.oom || oom) {
        free(out.s);
        return kiln_err_set(err, KILN_ERR_NOMEM, "codegen: no memory for the source");
    }
    if (e.failed) {
        free(out.s);
        return kiln_err_set(err, KILN_ERR_UNSUPPORTED, "codegen: the plan has a node this emitter cannot place");
    }
    *out_src = out.s;
    *info = facts;
    return KILN_OK;
}
