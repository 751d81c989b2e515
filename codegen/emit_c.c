/* emit_c.c: one C translation unit for a planned program graph.
**
** Design: the emitter walks the nodes in id (schedule) order and writes one
** kernel per stored node: a BLAS call for a matrix product, a row loop for
** last-axis ops (softmax, argmax, pick), an index loop for structural ops
** (transpose, slice, concat, gather), and a loop nest for elementwise and
** reduction nodes in which every inline node of its fusion group is one
** statement, `const float v_x = ...;`, in id order: a chain of a thousand
** fused ops is a thousand statements, never a nested expression a compiler
** chokes on. Static dims are literals; symbolic dims are the run-time sizes
** (B, T, ...) from the `sizes` argument, and products of them.
** The text is meant to be read: values take names from the model (brick
** paths, variable names, d_<name> for adjoints), each kernel has a comment
** naming its nodes, shapes and bricks, and user text appears only inside
** comments, escaped. The same plan always gives the same bytes: no
** addresses, times or hash order reach the output (the JIT cache is keyed
** on it).
**
** What to print is decided before: codegen/lower.c lowers the plan to a
** kernel list (kinds, modes, the fast paths, the slots after the arena,
** each scan's body lowered in turn), and this printer walks it, reading
** every decision from the kernel records; kiln_emit_c lowers, then prints.
**
** Rejected: a library of hand-written kernels called in sequence (no
** fusion, no constants baked in); emitting one function per node (the
** compiler would not see across kernels). */
#include "codegen/emit_c.h"
#include "codegen/lower.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "kiln_config.h"

/* ---- a growing string -------------------------------------------------- */

typedef kiln_strbuf sbuf;
#define sb_put kiln_strbuf_put

/* ---- emitter state ------------------------------------------------------- */

#define VAR_MAX 72
#define DIM_MAX 96

typedef struct emitter {
    const kiln_plan *p;
    const kiln_graph *g;
    const kiln_emit_options *o;
    char (*var)[VAR_MAX]; /* C name of each node's storage, or of its temporary when inline */
    unsigned char *used;  /* storage referenced by the current function */
    sbuf body;            /* current function's kernels */
    const kiln_kernel_list *L; /* the lowering's decisions (lower.h) */
    const kiln_kernel *k; /* the kernel being printed */
    char (*pend)[VAR_MAX + 8]; /* per param: C name of its deferred update's slot */
    int32_t *members;     /* group_members' copy, one per node */
    const char *real;     /* "float" or "double" */
    /* scans (lower_scans, print_scans): each body is a function of its own, emitted
    ** before this graph's; a scan's region in this arena holds the body's
    ** values and the states carried from step to step */
    bool is_body;         /* this emitter prints a scan body's function */
    sbuf fns;             /* the bodies' functions, innermost first */
    kiln_err *err;        /* where a failure in a body's plan is told */
    bool failed;
} emitter;

/* Modes of the generated <model>_run: which entry point is running (the
** plan's kiln_mode bits). */
enum { MODE_FORWARD = 1, MODE_EVAL = 2, MODE_GRADIENTS = 4, MODE_TRAIN = 8 };

static const kiln_node_rec *R(const emitter *e, int32_t id) { return kiln_graph_cnode(e->g, id); }

static const char *ctype(const emitter *e, enum kiln_dtype t)
{
    return t == KILN_DTYPE_I32 ? "int32_t" : e->real;
}

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

/* ---- names ------------------------------------------------------------------ */

/* Every identifier the emitter prints is kiln's own or made from the model,
** and the two sets cannot meet (#9):
**   - kiln's own: the prelude's (k_*, Cblas*, MODE_*, ARENA_BYTES,
**     PARAM_FLOATS, real), the entry points' (arena, inputs, sizes, mode,
**     rt, B, T, cblas_<t>gemm/gemv/ger, gemm_scratch, params, grads, lr,
**     arena_bytes), the kernels' locals (i, i0.., j, k, o, n, r, t, m, s,
**     x, y, v, w, best, inv, lse, acc) and libm's and <stdint.h>'s names.
**     None starts with a tag below.
**   - from the model, always a tag then the sanitised text:
**       p_<path>      a parameter or state ("p_mlp_linear_0_W")
**       in_<name>     an input ("in_features")
**       v_<name>      another named value ("v_linear_apply_output"), or,
**                     unnamed, v<id>_<op> ("v9_matmul")
**       grad_<path>   a parameter's gradient in the slab
**       pend_<path>   a deferred update's slot (lower_deferred)
**       S_<symbol>    a run-time size (symbol names are C identifiers)
**     Node names are numbered "__<id>" where taken, which no sanitised text
**     contains, so every value has its own; the user's text itself appears
**     only in comments, escaped.
** The model name makes the exported <model>_<entry> (init, flush, forward,
** eval_step, gradients, train_step) and the static <model>_run: no file-scope
** name of kiln's ends in one of those words (k_apply_deferred, not k_flush,
** which a model named "k" exported twice). */

/* [A-Za-z0-9_] only, no leading or doubled or trailing '_': "/mlp/linear_0"
** gives "mlp_linear_0". So "__" never occurs in a sanitised name, and the
** emitter's uniquing suffix "__<n>" cannot be produced by one. */
static void sanitize(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    while (src && (*src == '/' || *src == '_'))
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

/* The model's part of a node's C name, its tag dropped: "mlp_linear_0_W"
** for p_mlp_linear_0_W. For comments and for names derived from it. */
static const char *label(const emitter *e, int32_t id)
{
    const char *v = e->var[id], *u = strchr(v, '_');
    return u ? u + 1 : v;
}

/* The C name of a run-time symbol: B, T, S_<name>. Symbol names are C
** identifiers (kiln_graph_symbol), used as they are: sanitising would make
** "n" of "_n". */
static void symbol_name(const emitter *e, int k, char *dst, size_t cap)
{
    if (k < 2) {
        snprintf(dst, cap, "%s", k == 0 ? "B" : "T");
        return;
    }
    const char *s = e->g->symbol_names[k] ? e->g->symbol_names[k] : "";
    bool ident = *s && !isdigit((unsigned char)*s);
    for (const char *c = s; *c; c++)
        ident &= (isalnum((unsigned char)*c) && (unsigned char)*c < 128) || *c == '_';
    if (ident) {
        snprintf(dst, cap, "S_%s", s);
    } else {
        char t[40];
        sanitize(t, sizeof t, s);
        snprintf(dst, cap, "S%d_%s", k, t);
    }
}

/* Name every node (the tags above): parameters and states after their
** owner path and name, inputs after their name, gradients in the slab after
** their parameter, other values after their name, else their op and id. A
** name taken already gets "__<id>". */
static void name_nodes(emitter *e)
{
    const kiln_plan *p = e->p;
    for (int32_t id = 0; id < p->n; id++) {
        const kiln_node_rec *r = R(e, id);
        char base[48], *v = e->var[id];
        char path[VAR_MAX * 4];
        if (e->o->exported) { /* kiln's namespace only: the user's text stays in comments (#12) */
            if (r->op == KILN_OP_PARAM || r->op == KILN_OP_STATE)
                snprintf(v, VAR_MAX, "p_n%d", (int)id);
            else if (r->op == KILN_OP_INPUT)
                snprintf(v, VAR_MAX, "in_n%d", (int)id);
            else
                snprintf(v, VAR_MAX, "v%d_%s", (int)id, kiln_op_info_of(r->op)->name);
        } else if (r->op == KILN_OP_PARAM || r->op == KILN_OP_STATE) {
            snprintf(path, sizeof path, "%s_%s", r->owner ? r->owner : "", r->name ? r->name : "");
            sanitize(base, sizeof base, path);
            snprintf(v, VAR_MAX, "p_%s", base[0] ? base : "param");
        } else if (r->op == KILN_OP_INPUT) {
            sanitize(base, sizeof base, r->name);
            snprintf(v, VAR_MAX, "in_%s", base[0] ? base : "input");
        } else {
            sanitize(base, sizeof base, r->name);
            if (base[0])
                snprintf(v, VAR_MAX, "v_%s", base);
            else
                snprintf(v, VAR_MAX, "v%d_%s", (int)id, kiln_op_info_of(r->op)->name);
        }
    }
    for (int i = 0; i < p->n_params; i++) { /* gradients read as grad_<param> */
        int32_t gid = p->grad_node[i];
        if (gid >= 0 && !p->grad_copy[i] && p->buf[gid].zone == KILN_ZONE_GRAD) {
            char tmp[VAR_MAX];
            snprintf(tmp, sizeof tmp, "grad_%.56s", label(e, p->param_node[i]));
            memcpy(e->var[gid], tmp, VAR_MAX);
        }
    }
    /* unique: the first keeps its name, later ones get __<id> */
    for (int32_t id = 0; id < p->n; id++)
        for (int32_t j = 0; j < id; j++)
            if (strcmp(e->var[j], e->var[id]) == 0) {
                size_t len = strlen(e->var[id]);
                snprintf(e->var[id] + (len > 56 ? 56 : len), VAR_MAX - 56, "__%d", (int)id);
                break;
            }
}

/* ---- dims as C ---------------------------------------------------------------- */

/* A monomial as C: "784", "B", "T * B", "B * 100"; parenthesised when it
** is a product and paren is set (after a cast). */
static const char *mono_c(const emitter *e, const kiln_mono *m, bool paren, char *dst, size_t cap)
{
    char body[DIM_MAX] = "";
    size_t n = 0;
    int factors = 0;
    for (int k = KILN_MAX_SYMBOLS - 1; k >= 0; k--)
        for (int j = 0; j < m->e[k]; j++) {
            char s[48];
            symbol_name(e, k, s, sizeof s);
            n += (size_t)snprintf(body + n, sizeof body - n, "%s%s", n ? " * " : "", s);
            factors++;
        }
    if (m->c != 1 || factors == 0) {
        n += (size_t)snprintf(body + n, sizeof body - n, "%s%" PRId64, n ? " * " : "", m->c);
        factors++;
    }
    snprintf(dst, cap, paren && factors > 1 ? "(%s)" : "%s", body);
    return dst;
}

static const char *dim_c(const emitter *e, int64_t d, char *dst, size_t cap)
{
    kiln_mono m;
    if (!kiln_dim_mono(e->g, d, &m)) {
        ((emitter *)e)->failed = true;
        snprintf(dst, cap, "0");
        return dst;
    }
    return mono_c(e, &m, true, dst, cap);
}

/* Elements of dims [from, to) of s as C. */
static const char *span_c(const emitter *e, const kiln_shape *s, int from, int to, bool paren, char *dst,
                          size_t cap)
{
    kiln_mono acc = {.c = 1};
    for (int i = from; i < to; i++) {
        kiln_mono d;
        if (!kiln_dim_mono(e->g, s->dims[i], &d) || !kiln_mono_mul(&acc, &d, &acc))
            ((emitter *)e)->failed = true;
    }
    return mono_c(e, &acc, paren, dst, cap);
}

static const char *size_c(const emitter *e, const kiln_shape *s, char *dst, size_t cap)
{
    return span_c(e, s, 0, s->rank, false, dst, cap);
}

/* ---- values and indices ------------------------------------------------------ */

static const char *storage_name(emitter *e, int32_t id)
{
    int32_t s = e->p->alias[id];
    e->used[s] = 1;
    return e->var[s];
}

/* Index of a loop over shape L: one flat "i", or one variable per axis. */
typedef struct kindex {
    bool flat;
    int rank;
    char ax[KILN_MAX_RANK][8];
} kindex;

/* name[offset] of node id read under loop index ix over shape ls, numpy
** broadcasting (right-aligned; an axis of size 1 reads element 0). */
static void access(emitter *e, char *dst, size_t cap, int32_t id, const kindex *ix, const kiln_shape *ls)
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
    char off[1024] = "";
    size_t n = 0;
    for (int k = 0; k < s->rank; k++) {
        int lk = ls->rank - s->rank + k;
        if (lk < 0 || (s->dims[k] == 1 && ls->dims[lk] != 1))
            continue;
        char stride[DIM_MAX];
        span_c(e, s, k + 1, s->rank, false, stride, sizeof stride);
        if (strcmp(stride, "1") == 0)
            n += (size_t)snprintf(off + n, sizeof off - n, "%s%s", n ? " + " : "", ix->ax[lk]);
        else
            n += (size_t)snprintf(off + n, sizeof off - n, "%s%s * %s", n ? " + " : "", ix->ax[lk], stride);
    }
    if (n >= sizeof off)
        e->failed = true;
    snprintf(dst, cap, "%s[%s]", name, n ? off : "0");
}

/* Open a loop nest over shape s with indices i0.. (or one flat i); pre is
** extra indentation; il: what the innermost loop's line starts with (the
** prelude's K_INTERLEAVE, K_IVDEP, or ""). Returns the body's depth. */
static int open_loops(emitter *e, const kiln_shape *s, bool flat, kindex *ix, const char *pre, const char *il)
{
    memset(ix, 0, sizeof *ix);
    ix->flat = flat;
    ix->rank = s->rank;
    if (flat) {
        char n[DIM_MAX];
        size_c(e, s, n, sizeof n);
        sb_put(&e->body, "%s    %sfor (int64_t i = 0; i < %s; i++) {\n", pre, il, n);
        return 1;
    }
    for (int k = 0; k < s->rank; k++) {
        char d[DIM_MAX];
        dim_c(e, s->dims[k], d, sizeof d);
        snprintf(ix->ax[k], sizeof ix->ax[k], "i%d", k);
        sb_put(&e->body, "%s    %*s%sfor (int64_t i%d = 0; i%d < %s; i%d++)%s\n", pre, 4 * k, "",
               k == s->rank - 1 ? il : "", k, k, d, k, k == s->rank - 1 ? " {" : "");
    }
    if (s->rank == 0)
        sb_put(&e->body, "%s    {\n", pre);
    return s->rank ? s->rank : 1;
}

static void close_loops(emitter *e, const kiln_shape *s, bool flat, const char *pre)
{
    int depth = flat ? 0 : (s->rank > 0 ? s->rank - 1 : 0);
    sb_put(&e->body, "%s    %*s}\n", pre, 4 * depth, "");
}

/* ---- fusion groups as statements ------------------------------------------- */

/* The inline nodes of root's group (root excluded), in id order, into
** e->members (count returned): the lowering's (lower.c, group_members)
** for the kernel being printed, whose root root is. */
static int group_members(emitter *e, int32_t root)
{
    (void)root;
    memcpy(e->members, e->L->members + e->k->first_member, sizeof *e->members * (size_t)e->k->n_members);
    return e->k->n_members;
}

/* Whether node c is a variable of a loop nest's body (lower.c,
** lower_nest_values), never stored. */
static bool nest_local(const emitter *e, int32_t c)
{
    int32_t q = e->L->kernel[c];
    return q >= 0 && e->L->k[q].nest_local;
}

/* Whether node c is a slice a loop nest reads in place (lower.c,
** lower_nest_slices). */
static bool viewed_slice(const emitter *e, int32_t c)
{
    int32_t q = e->L->kernel[c];
    return q >= 0 && e->L->k[q].viewed;
}

/* name[...] of stored node id (row-major, shape s) at loop index ix over
** a shape that differs from s only along the last axis, where it starts at
** `at`: a part of a concat written by a nest (lower.c, lower_nest_values),
** a slice read in place (lower_nest_slices). */
static void last_axis_place(emitter *e, char *dst, size_t cap, int32_t id, int64_t at, const kindex *ix)
{
    const kiln_shape *s = &R(e, id)->shape;
    char off[1024] = "";
    size_t n = 0;
    for (int k = 0; k < s->rank - 1; k++) {
        char stride[DIM_MAX];
        span_c(e, s, k + 1, s->rank, false, stride, sizeof stride);
        n += (size_t)snprintf(off + n, sizeof off - n, "%s * %s + ", ix->ax[k], stride);
        if (n >= sizeof off)
            e->failed = true;
    }
    if (n < sizeof off)
        snprintf(off + n, sizeof off - n, "%" PRId64 " + %s", at, ix->ax[s->rank - 1]);
    snprintf(dst, cap, "%s[%s]", storage_name(e, id), off);
}

/* An operand of a statement: an inline node's temporary, a literal, a
** symbol's size, a loop nest's variable, a slice read in place, or a read
** of stored memory. */
static void operand(emitter *e, char *dst, size_t cap, int32_t c, const kindex *ix, const kiln_shape *ls)
{
    const kiln_node_rec *r = R(e, c);
    if (r->op == KILN_OP_CONST) {
        snprintf(dst, cap, "(%s)%.17g", e->real, r->attr.f[0]);
        return;
    }
    if (r->op == KILN_OP_SYMBOL) {
        char s[48];
        symbol_name(e, kiln_dim_symbol(r->attr.i[0]), s, sizeof s);
        snprintf(dst, cap, "(%s)%s", e->real, s);
        return;
    }
    if (e->p->inline_[c] || nest_local(e, c)) {
        snprintf(dst, cap, "%s", e->var[c]);
        return;
    }
    if (viewed_slice(e, c)) { /* read only by a nest over its shape (lower.c) */
        if (ix->flat || !kiln_shape_equal(&r->shape, ls))
            e->failed = true;
        last_axis_place(e, dst, cap, r->in[0], r->attr.i[1], ix);
        return;
    }
    access(e, dst, cap, c, ix, ls);
}

/* The C expression of elementwise node id over its operands. */
static void value_expr(emitter *e, char *dst, size_t cap, int32_t id, const kindex *ix, const kiln_shape *ls)
{
    const kiln_node_rec *r = R(e, id);
    char a[1200] = "", b[1200] = "", c[1200] = "";
    const char *t = e->real;
    if (r->op == KILN_OP_ONEHOT) { /* idx over the leading axes, compared with the last */
        const kiln_node_rec *ri = R(e, r->in[0]);
        if (ri->shape.rank == 0 || ix->flat) {
            access(e, a, sizeof a, r->in[0], ix, &ri->shape);
        } else {
            kindex lead = *ix;
            lead.rank = ls->rank - 1;
            kiln_shape lshape = *ls;
            lshape.rank--;
            access(e, a, sizeof a, r->in[0], &lead, &lshape);
        }
        snprintf(dst, cap, "(%s)(%s == %s)", t, a, ix->flat ? "0" : ix->ax[ls->rank - 1]);
        return;
    }
    if (r->n_in > 0)
        operand(e, a, sizeof a, r->in[0], ix, ls);
    if (r->n_in > 1)
        operand(e, b, sizeof b, r->in[1], ix, ls);
    if (r->n_in > 2)
        operand(e, c, sizeof c, r->in[2], ix, ls);
    switch (r->op) {
    case KILN_OP_NEG: snprintf(dst, cap, "-%s", a); break;
    case KILN_OP_EXP: snprintf(dst, cap, "k_exp(%s)", a); break;
    case KILN_OP_LOG: snprintf(dst, cap, "k_log(%s)", a); break;
    case KILN_OP_ABS: snprintf(dst, cap, "k_fabs(%s)", a); break;
    case KILN_OP_SQRT: snprintf(dst, cap, "k_sqrt(%s)", a); break;
    case KILN_OP_SQUARE: snprintf(dst, cap, "k_sq(%s)", a); break;
    case KILN_OP_TANH: snprintf(dst, cap, "k_tanh(%s)", a); break;
    case KILN_OP_SIGMOID: snprintf(dst, cap, "k_sigmoid(%s)", a); break;
    case KILN_OP_SOFTPLUS: snprintf(dst, cap, "k_softplus(%s)", a); break;
    case KILN_OP_RELU: snprintf(dst, cap, "k_relu(%s)", a); break;
    case KILN_OP_SIGN: snprintf(dst, cap, "k_sign(%s)", a); break;
    case KILN_OP_STEP: snprintf(dst, cap, "(%s)(%s > 0)", t, a); break;
    case KILN_OP_CLIP:
        snprintf(dst, cap, "k_clip(%s, (%s)%.17g, (%s)%.17g)", a, t, r->attr.f[0], t, r->attr.f[1]);
        break;
    case KILN_OP_CAST: snprintf(dst, cap, "(%s)%s", ctype(e, r->dtype), a); break;
    case KILN_OP_BROADCAST: snprintf(dst, cap, "%s", a); break;
    case KILN_OP_ADD: snprintf(dst, cap, "%s + %s", a, b); break;
    case KILN_OP_SUB: snprintf(dst, cap, "%s - %s", a, b); break;
    case KILN_OP_MUL: snprintf(dst, cap, "%s * %s", a, b); break;
    case KILN_OP_DIV: snprintf(dst, cap, "%s / %s", a, b); break;
    case KILN_OP_POW: snprintf(dst, cap, "k_pow(%s, %s)", a, b); break;
    case KILN_OP_MAXIMUM: snprintf(dst, cap, "k_max(%s, %s)", a, b); break;
    case KILN_OP_MINIMUM: snprintf(dst, cap, "k_min(%s, %s)", a, b); break;
    case KILN_OP_GE: snprintf(dst, cap, "(%s)(%s >= %s)", t, a, b); break;
    case KILN_OP_GT: snprintf(dst, cap, "(%s)(%s > %s)", t, a, b); break;
    case KILN_OP_EQ: snprintf(dst, cap, "(%s)(%s == %s)", t, a, b); break;
    case KILN_OP_NE: snprintf(dst, cap, "(%s)(%s != %s)", t, a, b); break;
    case KILN_OP_SELECT: snprintf(dst, cap, "%s != 0 ? %s : %s", a, b, c); break;
    case KILN_OP_RESHAPE: snprintf(dst, cap, "%s", a); break;
    case KILN_OP_CONST:
    case KILN_OP_SYMBOL: operand(e, dst, cap, id, ix, ls); break; /* a stored literal or size */
    default:
        e->failed = true;
        snprintf(dst, cap, "0 /* %s cannot be inline */", kiln_op_info_of(r->op)->name);
    }
}

/* Write root's group as statements at depth: each member, then root's own
** value into `out` (a C lvalue) or, with out NULL, into a temporary named
** after root. */
static void group_statements(emitter *e, int32_t root, const kindex *ix, const kiln_shape *ls, int depth,
                             const char *pre)
{
    int n = group_members(e, root);
    char x[4096];
    for (int k = 0; k < n; k++) {
        int32_t m = e->members[k];
        value_expr(e, x, sizeof x, m, ix, ls);
        sb_put(&e->body, "%s    %*sconst %s %s = %s;\n", pre, 4 * depth, "", ctype(e, R(e, m)->dtype), e->var[m], x);
    }
}

/* Can root's group loop over ls with one flat index? Yes when every stored
** value it reads has shape ls or is a scalar, and it holds no onehot. */
static bool flat_ok(emitter *e, int32_t root, const kiln_shape *ls)
{
    int n = group_members(e, root);
    for (int k = -1; k < n; k++) {
        const kiln_node_rec *r = R(e, k < 0 ? root : e->members[k]);
        if (r->op == KILN_OP_ONEHOT)
            return false;
        if (k < 0 && !kiln_op_is_elementwise(r->op))
            continue; /* a reduction or reshape root: its input is the loop */
        for (int j = 0; j < r->n_in; j++) {
            const kiln_node_rec *c = R(e, r->in[j]);
            if (e->p->inline_[r->in[j]] || c->shape.rank == 0)
                continue;
            if (!kiln_shape_equal(&c->shape, ls))
                return false;
        }
    }
    return true;
}

/* ---- kernel comments ----------------------------------------------------------- */

typedef struct group_info {
    sbuf ops;
    const char *owners[8];
    int n_owners;
    int32_t reads[8];
    int n_reads;
} group_info;

static void group_walk(emitter *e, group_info *gi, int32_t id, bool root)
{
    const kiln_node_rec *r = R(e, id);
    bool stored = !root && (!e->p->inline_[id] || r->op == KILN_OP_INPUT || r->op == KILN_OP_PARAM ||
                            r->op == KILN_OP_STATE);
    if (stored) {
        int32_t s = e->p->alias[id];
        for (int i = 0; i < gi->n_reads; i++)
            if (gi->reads[i] == s)
                return;
        if (gi->n_reads < 8)
            gi->reads[gi->n_reads++] = s;
        return;
    }
    if (!root && kiln_op_is_leaf(r->op))
        return;
    for (int k = 0; k < r->n_in; k++)
        group_walk(e, gi, r->in[k], false);
    if (gi->ops.n < 600) /* a long chain is summarised by its first ops */
        sb_put(&gi->ops, " %d:%s", (int)id, kiln_op_info_of(r->op)->name);
    if (r->owner) {
        for (int i = 0; i < gi->n_owners; i++)
            if (gi->owners[i] == r->owner)
                return;
        if (gi->n_owners < 8)
            gi->owners[gi->n_owners++] = r->owner;
    }
}

static void kernel_comment(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id);
    char sh[KILN_SHAPE_STR_MAX];
    group_info gi = {0};
    group_walk(e, &gi, id, true);
    if (r->n_out)
        sb_put(&e->body, "\n    /* node%s -> %d results", gi.ops.s ? gi.ops.s : "", r->n_out);
    else
        sb_put(&e->body, "\n    /* node%s -> %s %s", gi.ops.s ? gi.ops.s : "", e->var[e->p->alias[id]],
               kiln_shape_str(e->g, &r->shape, sh, sizeof sh));
    free(gi.ops.s);
    if (gi.n_reads) {
        sb_put(&e->body, "\n    ** reads");
        for (int i = 0; i < gi.n_reads; i++)
            sb_put(&e->body, "%s %s %s", i ? "," : "", e->var[gi.reads[i]],
                   kiln_shape_str(e->g, &R(e, gi.reads[i])->shape, sh, sizeof sh));
    }
    for (int i = 0; i < gi.n_owners; i++) {
        sb_put(&e->body, i ? ", " : "\n    ** brick ");
        put_comment_text(&e->body, gi.owners[i]);
    }
    if (e->k->update >= 0) {
        const kiln_plan_update *u = &e->p->updates[e->k->update];
        sb_put(&e->body, "\n    ** fused update: %s -= lr * this product (its gradient is not stored)%s",
               label(e, u->target), e->k->fast & KILN_FAST_DEFER_STORE ? "; at batch 1 deferred to the next step's first product" : "");
    }
    if (e->k->sum >= 0)
        sb_put(&e->body, "\n    ** and node %d:add -> %s: + %s (%s), added as the product is stored", (int)e->k->sum,
               e->var[e->p->alias[e->k->sum]], e->var[e->p->alias[e->k->addend]],
               e->k->addend_row ? "a row to every row" : "a matrix");
    if (e->k->rows_with >= 0)
        sb_put(&e->body, "\n    ** and node %d:softmax -> %s in the same loop, where gradients are wanted",
               (int)e->k->rows_with, e->var[e->k->rows_with]);
    if (e->k->fast & KILN_FAST_DEFER_APPLY)
        sb_put(&e->body, "\n    ** at batch 1, first applies the update of %s deferred by the last step",
               label(e, e->p->param_node[e->k->defer_param]));
    if (r->name) {
        sb_put(&e->body, "%svalue '", gi.n_owners ? ", " : "\n    ** ");
        put_comment_text(&e->body, r->name);
        sb_put(&e->body, "'");
    }
    sb_put(&e->body, " */\n");
}

/* ---- kernels -------------------------------------------------------------------- */

/* Whether kernel id (its root and inline members) computes an exp, tanh
** or sigmoid in float32 and calls no libm function (log, softplus's log1p,
** pow: a call keeps the loop scalar): kiln's own polynomials (the
** prelude), long chains of dependent operations, whose loops gain from
** several vectors in flight (K_INTERLEAVE: 38 -> 31 cycles a vector for
** exp, 48 -> 38 for sigmoid, 64 -> 50 for tanh on a Zen 4; the same bits,
** each element computed as before). float64 calls libm for all three. */
static bool transcendental(emitter *e, int32_t id)
{
    if (e->g->floatx != KILN_DTYPE_F32)
        return false;
    int n = group_members(e, id);
    bool any = false;
    for (int k = -1; k < n; k++) {
        enum kiln_op op = R(e, k < 0 ? id : e->members[k])->op;
        if (kiln_lower_calls_libm(op, KILN_DTYPE_F32))
            return false;
        any |= kiln_lower_polynomial(op);
    }
    return any;
}

static void kernel_elementwise(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id);
    int32_t sum = e->k->sibling;
    const kiln_shape *ls = &r->shape;
    kindex ix;
    bool flat = r->shape.rank > 0 && sum < 0 && flat_ok(e, id, ls);
    char n[DIM_MAX], x[4096], out[1200], acc[1200];
    if (sum >= 0) { /* a sum over some axes of this value, in the same pass */
        size_c(e, &R(e, sum)->shape, n, sizeof n);
        sb_put(&e->body, "    /* and node %d:sum -> %s in the same loop */\n", (int)sum, e->var[sum]);
        sb_put(&e->body, "    for (int64_t i = 0; i < %s; i++) %s[i] = 0;\n", n, storage_name(e, sum));
    }
    int depth = open_loops(e, ls, flat, &ix, "", sum < 0 && transcendental(e, id) ? "K_INTERLEAVE " : "");
    group_statements(e, id, &ix, ls, depth, "");
    value_expr(e, x, sizeof x, id, &ix, ls);
    access(e, out, sizeof out, id, &ix, ls);
    if (sum >= 0) {
        kindex oix = {.flat = false, .rank = 0};
        kiln_shape os = {.rank = 0};
        for (int k = 0; k < ls->rank; k++)
            if (!(kiln_attr_axes(R(e, sum)) >> k & 1)) {
                snprintf(oix.ax[oix.rank++], sizeof oix.ax[0], "%s", ix.ax[k]);
                os.dims[os.rank++] = ls->dims[k];
            }
        access(e, acc, sizeof acc, sum, &oix, &os);
        sb_put(&e->body, "    %*s%s v = %s;\n", 4 * depth, "", ctype(e, r->dtype), x);
        sb_put(&e->body, "    %*s%s = v;\n", 4 * depth, "", out);
        sb_put(&e->body, "    %*s%s += v;\n", 4 * depth, "", acc);
    } else {
        sb_put(&e->body, "    %*s%s = %s;\n", 4 * depth, "", out, x);
    }
    close_loops(e, ls, flat, "");
}

/* Kernels ks[0 .. n-1] as one loop nest over their shape (lower.c,
** lower_shared_nests): sums set to zero first, then per element each
** kernel's statements in order, each in a block of its own (a value only
** the nest reads in a variable declared before its block, a part of the
** concat that ends the nest stored into it as well: lower_nest_values);
** the inner loop K_IVDEP (no alias checks: lower.c checked the storage)
** and, if a kernel computes kiln's exp/tanh/sigmoid polynomials,
** K_INTERLEAVE. */
static void kernel_nest(emitter *e, const kiln_kernel *ks, int n)
{
    const kiln_node_rec *r0 = R(e, ks[0].root);
    const kiln_shape *s = ks[0].kind == KILN_KERNEL_REDUCTION ? &R(e, r0->in[0])->shape : &r0->shape;
    bool poly = false;
    for (int i = 0; i < n; i++) {
        e->k = &ks[i];
        kernel_comment(e, ks[i].root);
        poly |= transcendental(e, ks[i].root);
    }
    sb_put(&e->body, "    /* the %d kernels above: one loop nest (lower.c, lower_shared_nests) */\n", n);
    char nn[DIM_MAX], x[4096], out[1200];
    for (int i = 0; i < n; i++)
        if (ks[i].kind == KILN_KERNEL_REDUCTION) {
            size_c(e, &R(e, ks[i].root)->shape, nn, sizeof nn);
            sb_put(&e->body, "    for (int64_t i = 0; i < %s; i++) %s[i] = 0;\n", nn, storage_name(e, ks[i].root));
        }
    kindex ix;
    int depth = open_loops(e, s, false, &ix, "", poly ? "K_IVDEP K_INTERLEAVE " : "K_IVDEP ");
    for (int i = 0; i < n; i++) {
        int32_t id = ks[i].root;
        const kiln_node_rec *r = R(e, id);
        e->k = &ks[i];
        if (ks[i].nest_local)
            sb_put(&e->body, "    %*s%s %s; /* only this nest reads it */\n", 4 * depth, "", ctype(e, r->dtype),
                   e->var[id]);
        sb_put(&e->body, "    %*s{ /* node %d */\n", 4 * depth, "", (int)id);
        group_statements(e, id, &ix, s, depth + 1, "");
        if (ks[i].kind == KILN_KERNEL_REDUCTION) {
            operand(e, x, sizeof x, r->in[0], &ix, s);
            kindex oix = {.flat = false, .rank = 1};
            snprintf(oix.ax[0], sizeof oix.ax[0], "%s", ix.ax[1]);
            access(e, out, sizeof out, id, &oix, &r->shape);
            sb_put(&e->body, "    %*s%s += %s;\n", 4 * (depth + 1), "", out, x);
        } else {
            value_expr(e, x, sizeof x, id, &ix, s);
            if (ks[i].nest_local)
                snprintf(out, sizeof out, "%s", e->var[id]);
            else
                access(e, out, sizeof out, id, &ix, s);
            sb_put(&e->body, "    %*s%s = %s;\n", 4 * (depth + 1), "", out, x);
            if (ks[i].into >= 0) {
                char part[1200];
                last_axis_place(e, part, sizeof part, ks[i].into, ks[i].into_at, &ix);
                sb_put(&e->body, "    %*s%s = %s;\n", 4 * (depth + 1), "", part, out);
            }
        }
        sb_put(&e->body, "    %*s}\n", 4 * depth, "");
    }
    close_loops(e, s, false, "");
}

static void kernel_reduce(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id);
    int32_t x = r->in[0];
    const kiln_shape *xs = &R(e, x)->shape;
    bool is_max = r->op == KILN_OP_MAX;
    char xv[1200], out[1200];
    kindex ix;
    if (r->shape.rank == 0 && !is_max && xs->rank > 0 && flat_ok(e, id, xs)) {
        /* a sum over everything, flat: element i into partial sum i % 16,
        ** in double, then the 16 in order. One accumulator chains every add
        ** on the last (4 cycles an element); 16 independent ones vectorize.
        ** A fixed order: the same bits every run and on every ISA. */
        char n[DIM_MAX], pre[64];
        size_c(e, xs, n, sizeof n);
        kindex fix = {.flat = true, .rank = xs->rank};
        operand(e, xv, sizeof xv, x, &fix, xs);
        sb_put(&e->body, "    {\n        double k_acc[16] = {0};\n        const int64_t k_n = %s;\n"
                         "        for (int64_t k_i16 = 0; k_i16 + 16 <= k_n; k_i16 += 16)\n"
                         "            for (int64_t k_l = 0; k_l < 16; k_l++) {\n"
                         "                const int64_t i = k_i16 + k_l;\n", n);
        snprintf(pre, sizeof pre, "%12s", "");
        group_statements(e, id, &fix, xs, 0, pre);
        sb_put(&e->body, "                k_acc[k_l] += %s;\n            }\n"
                         "        for (int64_t i = k_n - k_n %% 16; i < k_n; i++) {\n", xv);
        snprintf(pre, sizeof pre, "%4s", "");
        group_statements(e, id, &fix, xs, 1, pre);
        sb_put(&e->body, "            k_acc[i %% 16] += %s;\n        }\n"
                         "        double acc = 0;\n"
                         "        for (int k_l = 0; k_l < 16; k_l++) acc += k_acc[k_l];\n"
                         "        %s[0] = (%s)acc;\n    }\n", xv, storage_name(e, id), e->real);
        return;
    }
    if (r->shape.rank == 0) { /* over everything: one accumulator, in double */
        bool flat = xs->rank > 0 && flat_ok(e, id, xs);
        sb_put(&e->body, "    {\n        double acc = %s;\n", is_max ? "-INFINITY" : "0");
        int depth = open_loops(e, xs, flat, &ix, "    ", "");
        group_statements(e, id, &ix, xs, depth, "    ");
        operand(e, xv, sizeof xv, x, &ix, xs);
        if (is_max)
            sb_put(&e->body, "        %*sif (%s > acc) acc = %s;\n", 4 * depth, "", xv, xv);
        else
            sb_put(&e->body, "        %*sacc += %s;\n", 4 * depth, "", xv);
        close_loops(e, xs, flat, "    ");
        sb_put(&e->body, "        %s[0] = (%s)acc;\n    }\n", storage_name(e, id), e->real);
        return;
    }
    /* Over some axes: initialise, then one pass over x in row-major order
    ** (a fixed order: the same bits every run). */
    char n[DIM_MAX];
    size_c(e, &r->shape, n, sizeof n);
    sb_put(&e->body, "    for (int64_t i = 0; i < %s; i++) %s[i] = %s;\n", n, storage_name(e, id),
           is_max ? "-INFINITY" : "0");
    int depth = open_loops(e, xs, false, &ix, "", "");
    group_statements(e, id, &ix, xs, depth, "");
    operand(e, xv, sizeof xv, x, &ix, xs);
    kindex oix = {.flat = false, .rank = 0};
    for (int k = 0; k < xs->rank; k++)
        if (!(kiln_attr_axes(r) >> k & 1))
            snprintf(oix.ax[oix.rank++], sizeof oix.ax[0], "%s", ix.ax[k]);
    access(e, out, sizeof out, id, &oix, &r->shape);
    if (is_max)
        sb_put(&e->body, "    %*s{ %s v = %s; if (v > %s) %s = v; }\n", 4 * depth, "", e->real, xv, out, out);
    else
        sb_put(&e->body, "    %*s%s += %s;\n", 4 * depth, "", out, xv);
    close_loops(e, xs, false, "");
}

/* The scalar s of a fused update W - s * G, as C. */
static void fused_scale(emitter *e, int32_t id, char *dst, size_t cap)
{
    int32_t s = e->k->scale;
    (void)id;
    kindex none = {.flat = true};
    operand(e, dst, cap, s, &none, &R(e, s)->shape);
}

/* A 2-D matrix product C = op(A) op(B) through CBLAS, or, fused, W -= s *
** op(A) op(B) (alpha -s, beta 1, C = W), or, with an addend (lower.c's
** addend epilogue), S = op(A) op(B) + addend into the add's storage S: the
** addend copied into S, then beta 1 (the BLAS, sgemv), or handed to
** rt->sgemm_nn, which adds it as it stores S. When the batch dim is one of the
** sizes, a batch of 1 makes it a matrix-vector product (or, when B is the
** contracted size of a fused update, a rank-1 update): sgemv and sger are
** 25-35% faster than sgemm at those shapes in OpenBLAS (docs/performance.md). */
static void kernel_matmul2(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id), *ra = R(e, r->in[0]), *rb = R(e, r->in[1]);
    bool ta = kiln_attr_trans_a(r), tb = kiln_attr_trans_b(r);
    char m[DIM_MAX], nn[DIM_MAX], k[DIM_MAX], lda[DIM_MAX], ldb[DIM_MAX], scale[600] = "lr";
    char t = e->g->floatx == KILN_DTYPE_F64 ? 'd' : 's';
    int64_t dm = r->shape.dims[0], dn = r->shape.dims[1], dk = ra->shape.dims[ta ? 0 : 1];
    dim_c(e, dm, m, sizeof m);
    dim_c(e, dn, nn, sizeof nn);
    dim_c(e, dk, k, sizeof k);
    dim_c(e, ra->shape.dims[1], lda, sizeof lda);
    dim_c(e, rb->shape.dims[1], ldb, sizeof ldb);
    const char *a = storage_name(e, r->in[0]), *b = storage_name(e, r->in[1]);
    int fu = e->k->update, fp = e->k->fast & KILN_FAST_DEFER_STORE ? e->k->defer_param : -1;
    if (fu >= 0) {
        char s[560];
        fused_scale(e, id, s, sizeof s);
        snprintf(scale, sizeof scale, "%s", s);
    }
    const char *c = fu >= 0            ? storage_name(e, e->p->updates[fu].target)
                    : e->k->sum >= 0 ? storage_name(e, e->k->sum)
                                     : storage_name(e, id);
    char alpha[640];
    snprintf(alpha, sizeof alpha, fu >= 0 ? "-%s" : "1", scale);
    const char *beta = fu >= 0 || e->k->sum >= 0 ? "1" : "0";
    char add[600] = "(const float *)0, 0";
    if (e->k->sum >= 0) {
        /* the addend into S first, wherever the BLAS computes (beta 1) */
        const char *ad = storage_name(e, e->k->addend);
        bool own = e->k->fast & KILN_FAST_OWN_NN;
        if (own && (dm == KILN_BATCH || dn == KILN_BATCH))
            sb_put(&e->body, "    if (B == 1 || !rt->sgemm_nn)\n    ");
        else if (own)
            sb_put(&e->body, "    if (!rt->sgemm_nn)\n    ");
        if (e->k->addend_row)
            sb_put(&e->body, "    for (int64_t i = 0; i < %s; i++)\n%s        for (int64_t j = 0; j < %s; j++) "
                             "%s[i * %s + j] = %s[j];\n", m, own ? "    " : "", nn, c, nn, ad);
        else
            sb_put(&e->body, "    for (int64_t i = 0; i < %s * %s; i++) %s[i] = %s[i];\n", m, nn, c, ad);
        snprintf(add, sizeof add, e->k->addend_row ? "%s, 0" : "%s, (int)%s", ad, nn);
    }
    const char *tas = ta ? "CblasTrans" : "CblasNoTrans", *tbs = tb ? "CblasTrans" : "CblasNoTrans";
    const char *ind = "    ";
    bool one = false;
    int dp = e->k->fast & KILN_FAST_DEFER_APPLY ? e->k->defer_param : -1;
    if (dm == KILN_BATCH && dp >= 0) {
        /* W's update from the last batch-1 step, applied in the pass that
        ** computes this product (lower_deferred) */
        const char *pv = e->pend[dp];
        sb_put(&e->body, "    if (B == 1 && %s[0] != 0) {\n"
                         "        rt->sger_gemv((int)%s, (int)%s, %s, (int)%s, %s + 1, %s + 1 + %s, %s, %s);\n",
               pv, k, nn, b, ldb, pv, pv, k, a, c);
        if (e->k->sum >= 0) /* one row: the addend after the product (its copy above is overwritten) */
            sb_put(&e->body, "        for (int64_t j = 0; j < %s; j++) %s[j] += %s[j];\n", nn, c,
                   storage_name(e, e->k->addend));
        sb_put(&e->body, "        %s[0] = 0;\n"
                         "    } else", pv);
    }
    if (dm == KILN_BATCH) {
        /* one row: c (n) = op(B)^T a */
        sb_put(&e->body, dp >= 0 ? " if (B == 1)\n" : "    if (B == 1)\n");
        sb_put(&e->body, "        cblas_%cgemv(CblasRowMajor, %s, (int)%s, (int)%s, %s, %s, (int)%s, %s, %s, %s, %s, 1);\n"
                         "    else\n", t, tb ? "CblasNoTrans" : "CblasTrans", tb ? nn : k, tb ? k : nn, alpha, b, ldb,
               a, "1", beta, c);
        one = true;
    } else if (dn == KILN_BATCH) {
        /* one column: c (m) = op(A) b */
        sb_put(&e->body, "    if (B == 1)\n        cblas_%cgemv(CblasRowMajor, %s, (int)%s, (int)%s, %s, %s, (int)%s, %s, 1, %s, %s, 1);\n"
                         "    else\n", t, tas, ta ? k : m, ta ? m : k, alpha, a, lda, b, beta, c);
        one = true;
    } else if (dk == KILN_BATCH && fp >= 0) {
        /* contracted over one example: keep u = a and v = -s b, and let the
        ** next step apply W += u v^T while it reads W (lower_deferred) */
        const char *pv = e->pend[fp];
        sb_put(&e->body,
               "    if (B == 1) {\n"
               "        if (%s[0] != 0) rt->sger_gemv((int)%s, (int)%s, %s, (int)%s, %s + 1, %s + 1 + %s, 0, 0);\n"
               "        for (int64_t i = 0; i < %s; i++) %s[1 + i] = %s[i];\n"
               "        for (int64_t j = 0; j < %s; j++) %s[1 + %s + j] = -%s * %s[j];\n"
               "        %s[0] = 1;\n"
               "    } else\n", pv, m, nn, c, nn, pv, pv, m, m, pv, a, nn, pv, m, scale, b, pv);
        one = true;
    } else if (dk == KILN_BATCH && fu >= 0) {
        /* contracted over one example: W -= s * a b^T, a rank-1 update */
        sb_put(&e->body, "    if (B == 1)\n        cblas_%cger(CblasRowMajor, (int)%s, (int)%s, %s, %s, 1, %s, 1, %s, (int)%s);\n"
                         "    else\n", t, m, nn, alpha, a, b, c, nn);
        one = true;
    }
    if (e->k->fast & KILN_FAST_OWN_NN) {
        /* kiln's kernel for few rows where the CPU has it; it calls the BLAS
        ** itself at shapes where OpenBLAS is faster (runtime/gemm.c). After
        ** a B == 1 branch, "else\n" becomes "else if". */
        if (one && e->body.n && e->body.s[e->body.n - 1] == '\n')
            e->body.s[--e->body.n] = '\0';
        /* x W^T with W a scan's context: W^T, transposed once before the
        ** loop; x W with W a padded one: its copy (lower.c); both with
        ** rows kiln_lower_context_ld apart */
        char wt[48], wld[DIM_MAX];
        int cin = tb ? e->k->tr_in : e->k->pad_in;
        snprintf(wt, sizeof wt, "(const float *)inputs[%d]", cin);
        int64_t cld = cin >= 0 ? kiln_lower_context_ld(&rb->shape, tb) : 0;
        if (cld)
            snprintf(wld, sizeof wld, "%" PRId64, cld);
        else
            snprintf(wld, sizeof wld, "%s", tb ? nn : ldb);
        if (cin >= 0 && !tb) { /* or the copy is W packed for the ISA's kernel (rt->pack_nn) */
            sb_put(&e->body,
                   "%sif (rt->sgemm_nn_packed)\n"
                   "        rt->sgemm_nn_packed((int)%s, (int)%s, (int)%s, %s, (int)%s, %s, %s, (int)%s, %s);\n"
                   "    else",
                   one ? " " : "    ", m, nn, k, a, lda, wt, c, nn, add);
            one = true;
        }
        sb_put(&e->body,
               "%sif (rt->sgemm_nn)\n"
               "        rt->sgemm_nn((int)%s, (int)%s, (int)%s, %s, (int)%s, %s, (int)%s, %s, (int)%s, gemm_scratch, %s);\n"
               "    else\n",
               one ? " " : "    ", m, nn, k, a, lda, cin >= 0 ? wt : b, wld, c, nn, add);
        one = true;
    }
    if (e->k->fast & KILN_FAST_OWN_TN) {
        /* a weight's gradient or update, x^T d: kiln's kernel where the CPU
        ** has one, which calls the BLAS itself where OpenBLAS is faster */
        if (one && e->body.n && e->body.s[e->body.n - 1] == '\n')
            e->body.s[--e->body.n] = '\0';
        sb_put(&e->body,
               "%sif (rt->sgemm_tn)\n"
               "        rt->sgemm_tn((int)%s, (int)%s, (int)%s, %s, %s, (int)%s, %s, (int)%s, %s, %s, (int)%s);\n"
               "    else\n",
               one ? " " : "    ", m, nn, k, alpha, a, lda, b, ldb, beta, c, nn);
        one = true;
    }
    if (one)
        ind = "        ";
    sb_put(&e->body,
           "%scblas_%cgemm(CblasRowMajor, %s, %s, (int)%s, (int)%s, (int)%s,\n"
           "%s            %s, %s, (int)%s, %s, (int)%s, %s, %s, (int)%s);\n",
           ind, t, tas, tbs, m, nn, k, ind + 4, alpha, a, lda, b, ldb, beta, c, nn);
}

/* A batched product: one GEMM per index of the leading axes (a side
** without them is used for every index). */
static void kernel_matmul_batched(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id), *ra = R(e, r->in[0]), *rb = R(e, r->in[1]);
    bool ta = kiln_attr_trans_a(r), tb = kiln_attr_trans_b(r);
    int lead = r->shape.rank - 2;
    char nb[DIM_MAX], m[DIM_MAX], nn[DIM_MAX], k[DIM_MAX], lda[DIM_MAX], ldb[DIM_MAX], sa[DIM_MAX], sb2[DIM_MAX],
        sc[DIM_MAX];
    char t = e->g->floatx == KILN_DTYPE_F64 ? 'd' : 's';
    span_c(e, &r->shape, 0, lead, false, nb, sizeof nb);
    dim_c(e, r->shape.dims[lead], m, sizeof m);
    dim_c(e, r->shape.dims[lead + 1], nn, sizeof nn);
    dim_c(e, ra->shape.dims[ra->shape.rank - (ta ? 2 : 1)], k, sizeof k);
    dim_c(e, ra->shape.dims[ra->shape.rank - 1], lda, sizeof lda);
    dim_c(e, rb->shape.dims[rb->shape.rank - 1], ldb, sizeof ldb);
    span_c(e, &ra->shape, ra->shape.rank - 2, ra->shape.rank, true, sa, sizeof sa);
    span_c(e, &rb->shape, rb->shape.rank - 2, rb->shape.rank, true, sb2, sizeof sb2);
    span_c(e, &r->shape, lead, lead + 2, true, sc, sizeof sc);
    char offa[DIM_MAX + 8], offb[DIM_MAX + 8];
    snprintf(offa, sizeof offa, ra->shape.rank > 2 ? "i * %s" : "0", sa);
    snprintf(offb, sizeof offb, rb->shape.rank > 2 ? "i * %s" : "0", sb2);
    sb_put(&e->body,
           "    for (int64_t i = 0; i < %s; i++)\n"
           "        cblas_%cgemm(CblasRowMajor, %s, %s, (int)%s, (int)%s, (int)%s,\n"
           "                    1, %s + %s, (int)%s, %s + %s, (int)%s, 0, %s + i * %s, (int)%s);\n",
           nb, t, ta ? "CblasTrans" : "CblasNoTrans", tb ? "CblasTrans" : "CblasNoTrans", m, nn, k,
           storage_name(e, r->in[0]), offa, lda, storage_name(e, r->in[1]), offb, ldb, storage_name(e, id), sc, nn);
}

/* Last-axis ops over x (.., cols), viewed as rows of cols. */
static void kernel_rows(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id), *ra = R(e, r->in[0]);
    char rows[DIM_MAX], cols[DIM_MAX];
    span_c(e, &ra->shape, 0, ra->shape.rank - 1, false, rows, sizeof rows);
    dim_c(e, ra->shape.dims[ra->shape.rank - 1], cols, sizeof cols);
    const char *x = storage_name(e, r->in[0]), *y = storage_name(e, id), *t = e->real;
    const char *idx = r->n_in > 1 ? storage_name(e, r->in[1]) : NULL;
    sb_put(&e->body, "    for (int64_t r = 0; r < %s; r++) {\n        const %s *x = %s + r * %s;\n", rows, t, x, cols);
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
        else if (e->k->rows_with >= 0) /* SOFTMAX_XENT and the softmax: the same exps, summed in the same order */
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
                   t, t, storage_name(e, e->k->rows_with), cols, cols, t, cols, cols, y);
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
    const kiln_node_rec *r = R(e, id), *ra = R(e, r->in[0]);
    kindex ix;
    char src[1200];
    int depth = open_loops(e, &r->shape, false, &ix, "", "");
    /* input axis perm[k] is output axis k: index the input by the output's loop */
    kindex in = {.flat = false, .rank = ra->shape.rank};
    for (int k = 0; k < r->shape.rank; k++)
        snprintf(in.ax[r->attr.i[k]], sizeof in.ax[0], "%s", ix.ax[k]);
    access(e, src, sizeof src, r->in[0], &in, &ra->shape);
    char dst[1200];
    access(e, dst, sizeof dst, id, &ix, &r->shape);
    sb_put(&e->body, "    %*s%s = %s;\n", 4 * depth, "", dst, src);
    close_loops(e, &r->shape, false, "");
}

/* Slice, pad, reverse, concat, split: the tensors as (outer, axis, inner),
** with outer the product of the axes before `axis` and inner after it. */
static void axis_view(const emitter *e, const kiln_shape *s, int axis, char *outer, char *len, char *inner)
{
    span_c(e, s, 0, axis, false, outer, DIM_MAX);
    dim_c(e, s->dims[axis], len, DIM_MAX);
    span_c(e, s, axis + 1, s->rank, true, inner, DIM_MAX);
}

static void kernel_axis(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id);
    int axis = kiln_attr_axis(r);
    char outer[DIM_MAX], lin[DIM_MAX], lout[DIM_MAX], inner[DIM_MAX];
    const kiln_node_rec *ra = R(e, r->in[0]);
    const char *t = ctype(e, r->dtype);
    switch (r->op) {
    case KILN_OP_SLICE:
    case KILN_OP_PAD:
    case KILN_OP_REVERSE: {
        axis_view(e, &ra->shape, axis, outer, lin, inner);
        dim_c(e, r->shape.dims[axis], lout, sizeof lout);
        const char *x = storage_name(e, r->in[0]), *y = storage_name(e, id);
        int64_t start = r->attr.i[1], step = r->attr.i[3];
        if (r->op == KILN_OP_PAD) { /* zeros, then the input at start + k * step */
            char n[DIM_MAX];
            size_c(e, &r->shape, n, sizeof n);
            sb_put(&e->body, "    for (int64_t i = 0; i < %s; i++) %s[i] = 0;\n", n, y);
        }
        sb_put(&e->body, "    for (int64_t o = 0; o < %s; o++)\n        for (int64_t k = 0; k < %s; k++)\n"
                         "            for (int64_t i = 0; i < %s; i++)\n",
               outer, r->op == KILN_OP_PAD ? lin : lout, inner);
        if (r->op == KILN_OP_SLICE)
            sb_put(&e->body, "                %s[(o * %s + k) * %s + i] = %s[(o * %s + %" PRId64 " + k * %" PRId64
                             ") * %s + i];\n", y, lout, inner, x, lin, start, step, inner);
        else if (r->op == KILN_OP_PAD)
            sb_put(&e->body, "                %s[(o * %s + %" PRId64 " + k * %" PRId64 ") * %s + i] = %s[(o * %s + k) * %s + i];\n",
                   y, lout, start, step, inner, x, lin, inner);
        else
            sb_put(&e->body, "                %s[(o * %s + k) * %s + i] = %s[(o * %s + %s - 1 - k) * %s + i];\n", y,
                   lout, inner, x, lin, lin, inner);
        break;
    }
    case KILN_OP_CONCAT: {
        dim_c(e, r->shape.dims[axis], lout, sizeof lout);
        const char *y = storage_name(e, id);
        int64_t at = 0;
        for (int p = 0; p < r->n_in; p++) {
            const kiln_node_rec *rp = R(e, r->in[p]);
            axis_view(e, &rp->shape, axis, outer, lin, inner);
            sb_put(&e->body, "    for (int64_t o = 0; o < %s; o++) /* part %d */\n        for (int64_t k = 0; k < %s; k++)\n"
                             "            for (int64_t i = 0; i < %s; i++)\n"
                             "                %s[(o * %s + %" PRId64 " + k) * %s + i] = %s[(o * %s + k) * %s + i];\n",
                   outer, p, lin, inner, y, lout, at, inner, storage_name(e, r->in[p]), lin, inner);
            at += rp->shape.dims[axis];
        }
        break;
    }
    case KILN_OP_SPLIT: {
        axis_view(e, &ra->shape, axis, outer, lin, inner);
        const char *x = storage_name(e, r->in[0]);
        int64_t at = 0;
        for (int32_t j = id + 1; j < e->p->n; j++) { /* each read result, into its storage */
            const kiln_node_rec *rj = R(e, j);
            if (rj->op != KILN_OP_PROJ || rj->in[0] != id || !e->p->modes[j] || e->p->alias[j] != j)
                continue;
            int64_t k0 = 0;
            for (int q = 0; q < rj->attr.i[0]; q++)
                k0 += r->outs[q].shape.dims[axis];
            dim_c(e, rj->shape.dims[axis], lout, sizeof lout);
            sb_put(&e->body, "    for (int64_t o = 0; o < %s; o++) /* result %d */\n        for (int64_t k = 0; k < %s; k++)\n"
                             "            for (int64_t i = 0; i < %s; i++)\n"
                             "                %s[(o * %s + k) * %s + i] = %s[(o * %s + %" PRId64 " + k) * %s + i];\n",
                   outer, (int)rj->attr.i[0], lout, inner, storage_name(e, j), lout, inner, x, lin, k0, inner);
            (void)at;
        }
        (void)t;
        break;
    }
    default:
        e->failed = true;
    }
}

static void kernel_gather(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id);
    const kiln_node_rec *ra = R(e, r->in[0]), *ri = R(e, r->in[1]);
    char n[DIM_MAX], inner[DIM_MAX], rows[DIM_MAX];
    if (r->op == KILN_OP_GATHER) {
        size_c(e, &ri->shape, n, sizeof n);
        span_c(e, &ra->shape, 1, ra->shape.rank, true, inner, sizeof inner);
        dim_c(e, ra->shape.dims[0], rows, sizeof rows);
        sb_put(&e->body,
               "    for (int64_t r = 0; r < %s; r++) {\n"
               "        int32_t t = %s[r];\n"
               "        if (t < 0 || t >= %s) return k_bad_index(%d, r);\n"
               "        for (int64_t i = 0; i < %s; i++) %s[r * %s + i] = %s[t * %s + i];\n"
               "    }\n",
               n, storage_name(e, r->in[1]), rows, (int)id, inner, storage_name(e, id), inner,
               storage_name(e, r->in[0]), inner);
    } else { /* SCATTER_ADD: zeros, then each row added where its index says, in order */
        char total[DIM_MAX];
        size_c(e, &ri->shape, n, sizeof n);
        size_c(e, &r->shape, total, sizeof total);
        span_c(e, &r->shape, 1, r->shape.rank, true, inner, sizeof inner);
        dim_c(e, r->shape.dims[0], rows, sizeof rows);
        sb_put(&e->body,
               "    for (int64_t i = 0; i < %s; i++) %s[i] = 0;\n"
               "    for (int64_t r = 0; r < %s; r++) {\n"
               "        int32_t t = %s[r];\n"
               "        if (t < 0 || t >= %s) return k_bad_index(%d, r);\n"
               "        for (int64_t i = 0; i < %s; i++) %s[t * %s + i] += %s[r * %s + i];\n"
               "    }\n",
               total, storage_name(e, id), n, storage_name(e, r->in[1]), rows, (int)id, inner, storage_name(e, id),
               inner, storage_name(e, r->in[0]), inner);
    }
}

/* Random numbers: element i of stream s at step n is philox of the counter
** (i, s, n) under the state's key (compiler/rng.c has the same function). */
static void kernel_random(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id);
    const char *st = storage_name(e, r->in[0]), *y = storage_name(e, id), *t = e->real;
    char n[DIM_MAX];
    if (r->op == KILN_OP_RNG_NEXT) {
        sb_put(&e->body,
               "    { /* one more step */\n"
               "        uint64_t n = ((uint64_t)(uint32_t)%s[3] << 32 | (uint32_t)%s[2]) + 1;\n"
               "        %s[0] = %s[0];\n        %s[1] = %s[1];\n"
               "        %s[2] = (int32_t)(uint32_t)n;\n        %s[3] = (int32_t)(uint32_t)(n >> 32);\n    }\n",
               st, st, y, st, y, st, y, y);
        return;
    }
    size_c(e, &r->shape, n, sizeof n);
    const char *uni = e->g->floatx == KILN_DTYPE_F64 ? "k_unit53" : "k_unit24";
    /* in a scan's step, element i of step s (over every enclosing scan) is
    ** drawn at index s * count + i: each step its own numbers */
    char idx[DIM_MAX + 48];
    snprintf(idx, sizeof idx, e->is_body ? "(uint64_t)(k_step * %s + i)" : "(uint64_t)i", n);
    sb_put(&e->body, "    for (int64_t i = 0; i < %s; i++) {\n"
                     "        uint32_t w[4];\n"
                     "        k_philox(%s, %s, %" PRId64 ", w);\n", n, st, idx, r->attr.i[1]);
    switch ((enum kiln_random_kind)r->attr.i[0]) {
    case KILN_RANDOM_UNIFORM:
        sb_put(&e->body, "        %s[i] = (%s)%.17g + ((%s)%.17g - (%s)%.17g) * %s(w, 0);\n", y, t, r->attr.f[0], t,
               r->attr.f[1], t, r->attr.f[0], uni);
        break;
    case KILN_RANDOM_NORMAL:
        sb_put(&e->body, "        %s[i] = (%s)%.17g + (%s)%.17g * k_normal(%s(w, 0), %s(w, 1));\n", y, t, r->attr.f[0], t,
               r->attr.f[1], uni, uni);
        break;
    case KILN_RANDOM_BERNOULLI:
        sb_put(&e->body, "        %s[i] = (%s)(%s(w, 0) < (%s)%.17g);\n", y, t, uni, t, r->attr.f[0]);
        break;
    }
    sb_put(&e->body, "    }\n");
}

/* The stored node reading result k of tuple id, or -1 when nothing keeps it. */
static int32_t result_node(const emitter *e, int32_t id, int k) { return kiln_lower_kept_result(e->p, id, k); }

/* Where scan id keeps state k besides its carries: stack, the stacked
** states (row t holds the state after step t), prev, the states each step
** reads, kept for the gradient (row t: the state before step t); -1 where
** nothing keeps them. Both have the state's type (scan.c checks that a
** step's state has its initial value's). */
typedef struct scan_state {
    int32_t stack, prev;
} scan_state;

static scan_state state_home(const emitter *e, int32_t id, int k)
{
    const kiln_node_rec *r = R(e, id);
    int n_state = (int)r->attr.i[KILN_SCAN_STATE], n_out = (int)r->attr.i[KILN_SCAN_OUT];
    return (scan_state){result_node(e, id, k), result_node(e, id, 2 * n_state + n_out + k)};
}

/* A scan: its body's function (plan_scans) called once per step t, with
** the arguments' addresses (sequences at t, the carried states, the
** contexts); after each step the new states are carried and every kept
** result is written: stacked at t, summed, or (after the loop) final. */
static void kernel_scan(emitter *e, int32_t id)
{
    const kiln_node_rec *r = R(e, id);
    int bi = (int)r->attr.i[KILN_SCAN_BODY];
    int n_seq = (int)r->attr.i[KILN_SCAN_SEQ], n_state = (int)r->attr.i[KILN_SCAN_STATE];
    int n_ctx = (int)r->attr.i[KILN_SCAN_CTX], n_out = (int)r->attr.i[KILN_SCAN_OUT];
    bool reverse = r->attr.i[KILN_SCAN_REVERSE] != 0;
    uint64_t sums = (uint64_t)r->attr.i[KILN_SCAN_SUMS];
    int n_args = n_seq + n_state + n_ctx;
    if (e->k->body < 0) {
        e->failed = true;
        return;
    }
    char T[DIM_MAX], n[DIM_MAX], per[DIM_MAX];
    dim_c(e, R(e, r->in[0])->shape.dims[0], T, sizeof T);
    sb_put(&e->body, "    {\n        char *const k_body = arena + %" PRId64 "; /* the step's values */\n",
           e->k->scan_at);
    int n_tr = 0;
    for (int l = 0; l < n_ctx; l++)
        n_tr += e->k->transposed[l] + e->k->padded[l];
    sb_put(&e->body, "        const void *k_args[%d];\n        void *k_res[%d];\n", n_args + n_tr,
           n_state + n_out + (int)r->attr.i[KILN_SCAN_SAVED]);
    const kiln_kernel_list *bl = e->L->bodies[e->k->body];
    const kiln_plan *bp = &e->L->body_plans[e->k->body];
    const kiln_graph *bg = bp->g;
    int64_t carry = e->k->scan_at + e->k->scan_carry;
    for (int k = 0; k < n_state; k++) { /* two carries each (lower.c), the first from the initial state */
        int32_t init = r->in[n_seq + k];
        const char *t = ctype(e, R(e, init)->dtype);
        int64_t bytes = (kiln_plan_value_bytes(e->p, init, e->p->max_sizes) + 63) / 64 * 64;
        size_c(e, &R(e, init)->shape, n, sizeof n);
        sb_put(&e->body,
               "        %s *const k_carry%d = (%s *)(arena + %" PRId64 "); /* state %d, from %s */\n"
               "        %s *const k_next%d = (%s *)(arena + %" PRId64 ");\n"
               "        for (int64_t i = 0; i < %s; i++) k_carry%d[i] = %s[i];\n"
               "        const %s *k_state%d = k_carry%d; /* where the next step reads it */\n"
               "        (void)k_next%d;\n",
               t, k, t, carry, k, e->var[e->p->alias[init]], t, k, t, carry + bytes, n, k, storage_name(e, init), t,
               k, k, k);
        carry += 2 * bytes;
    }
    for (int l = 0, q = 0; l < n_ctx; l++) {
        int32_t in = r->in[n_seq + n_state + l];
        sb_put(&e->body, "        k_args[%d] = %s; /* context */\n", n_seq + n_state + l, storage_name(e, in));
        char rows[DIM_MAX], cols[DIM_MAX], ld[DIM_MAX];
        const kiln_shape *s = &R(e, in)->shape;
        const char *w = storage_name(e, in);
        if (e->k->transposed[l]) {
            /* its transpose, for the step's products x W^T, rows padded
            ** (lower.h, kiln_lower_context_ld) */
            dim_c(e, s->dims[0], rows, sizeof rows);
            dim_c(e, s->dims[1], cols, sizeof cols);
            int64_t tld = kiln_lower_context_ld(s, true);
            if (tld)
                snprintf(ld, sizeof ld, "%" PRId64, tld);
            else
                snprintf(ld, sizeof ld, "%s", rows);
            /* the runtime's (tiles through registers: 0.42 -> 0.10 ms at
            ** 256 x 1024), else in 16 x 16 tiles: a row-by-row transpose
            ** writes each float a row of k_wt apart, one cache line per store */
            sb_put(&e->body, "        {\n            float *const k_wt = (float *)(arena + %" PRId64 "); /* %s^T */\n"
                             "            if (rt->transpose)\n"
                             "                rt->transpose((int)%s, (int)%s, %s, (int)%s, k_wt, (int)%s);\n"
                             "            else\n"
                             "                for (int64_t i0 = 0; i0 < %s; i0 += 16)\n"
                             "                    for (int64_t j0 = 0; j0 < %s; j0 += 16)\n"
                             "                        for (int64_t i = i0; i < i0 + 16 && i < %s; i++)\n"
                             "                            for (int64_t j = j0; j < j0 + 16 && j < %s; j++)\n"
                             "                                k_wt[j * %s + i] = %s[i * %s + j];\n"
                             "            k_args[%d] = k_wt;\n        }\n",
                   carry, e->var[e->p->alias[in]], rows, cols, w, cols, ld, rows, cols, rows, cols, ld, w, cols,
                   n_args + q++);
            int64_t bytes = tld ? (int64_t)sizeof(float) * s->dims[1] * tld
                                : kiln_plan_value_bytes(e->p, in, e->p->max_sizes);
            carry += (bytes + 63) / 64 * 64;
        }
        if (e->k->padded[l]) {
            /* a copy, rows padded, for the step's products x W; or, where
            ** the runtime has a kernel that reads W packed (rt->pack_nn),
            ** W packed, which the rows' room holds (rt_table.h) */
            int64_t pld = kiln_lower_context_ld(s, false);
            if (KILN_CODEGEN_PACKED_FLOATS(s->dims[0], s->dims[1]) > s->dims[0] * pld) {
                e->failed = true;
                return;
            }
            sb_put(&e->body, "        {\n            float *const k_wp = (float *)(arena + %" PRId64 "); /* %s, rows %"
                             PRId64 " apart, or packed */\n"
                             "            if (rt->pack_nn)\n"
                             "                rt->pack_nn((int)%" PRId64 ", (int)%" PRId64 ", %s, (int)%" PRId64 ", k_wp);\n"
                             "            else\n"
                             "                for (int64_t i = 0; i < %" PRId64 "; i++)\n"
                             "                    for (int64_t j = 0; j < %" PRId64 "; j++) k_wp[i * %" PRId64
                             " + j] = %s[i * %" PRId64 " + j];\n"
                             "            k_args[%d] = k_wp;\n        }\n",
                   carry, e->var[e->p->alias[in]], pld, s->dims[0], s->dims[1], w, s->dims[1], s->dims[0], s->dims[1],
                   pld, w, s->dims[1], n_args + q++);
            carry += ((int64_t)sizeof(float) * s->dims[0] * pld + 63) / 64 * 64;
        }
    }
    for (int m = 0; m < n_out; m++) { /* sums start at zero */
        int32_t o = result_node(e, id, 2 * n_state + m);
        if (o < 0 || !(sums >> m & 1))
            continue;
        size_c(e, &R(e, o)->shape, n, sizeof n);
        sb_put(&e->body, "        for (int64_t i = 0; i < %s; i++) %s[i] = 0;\n", n, storage_name(e, o));
    }
    sb_put(&e->body, "        for (int64_t k_s = 0; k_s < %s; k_s++) {\n", T);
    if (reverse)
        sb_put(&e->body, "            const int64_t t = %s - 1 - k_s; /* reverse */\n", T);
    else
        sb_put(&e->body, "            const int64_t t = k_s;\n");
    for (int j = 0; j < n_seq; j++) {
        span_c(e, &R(e, r->in[j])->shape, 1, R(e, r->in[j])->shape.rank, true, per, sizeof per);
        sb_put(&e->body, "            k_args[%d] = %s + t * %s;\n", j, storage_name(e, r->in[j]), per);
    }
    bool any_prev = false;
    for (int k = 0; k < n_state; k++)
        any_prev |= state_home(e, id, k).prev >= 0;
    if (any_prev)
        sb_put(&e->body, "            const int64_t k_t1 = %s; /* the next step's t */\n", reverse ? "t - 1" : "t + 1");
    for (int k = 0; k < n_state; k++) { /* each state: where the step writes it (k_home) */
        scan_state st = state_home(e, id, k);
        sb_put(&e->body, "            k_args[%d] = k_state%d;\n", n_seq + k, k);
        size_c(e, &R(e, r->in[n_seq + k])->shape, n, sizeof n);
        if (st.prev >= 0) /* the first step's state, kept for the gradient; later steps' are put there after the one before */
            sb_put(&e->body, "            if (k_s == 0)\n"
                             "                for (int64_t i = 0; i < %s; i++) %s[t * %s + i] = k_state%d[i];\n",
                   n, storage_name(e, st.prev), n, k);
        const char *t = ctype(e, R(e, r->in[n_seq + k])->dtype);
        if (st.stack >= 0)
            sb_put(&e->body, "            %s *const k_home%d = %s + t * %s;\n", t, k, storage_name(e, st.stack), n);
        else if (st.prev >= 0)
            sb_put(&e->body, "            %s *const k_home%d = k_s + 1 < %s ? %s + k_t1 * %s : k_next%d;\n", t, k, T,
                   storage_name(e, st.prev), n, k);
        else
            sb_put(&e->body, "            %s *const k_home%d = k_state%d == k_carry%d ? k_next%d : k_carry%d;\n", t, k,
                   k, k, k, k);
        if (bl->result_at[bp->alias[bg->results[k]]] == k)
            sb_put(&e->body, "            k_res[%d] = k_home%d; /* written in place */\n", k, k);
    }
    /* a failure inside the step names this scan (the body's node ids mean
    ** nothing outside it) and keeps the position */
    char step[DIM_MAX + 32]; /* this step's number over every enclosing scan */
    snprintf(step, sizeof step, e->is_body ? "k_step * %s + t" : "t", T);
    int n_saved = (int)r->attr.i[KILN_SCAN_SAVED];
    for (int k = n_state; k < n_state + n_out + n_saved && k < bg->n_results; k++) { /* stacked in place */
        if (bl->result_at[bp->alias[bg->results[k]]] != k)
            continue;
        int32_t o = result_node(e, id, k >= n_state + n_out ? 2 * n_state + k : n_state + k);
        span_c(e, &R(e, o)->shape, 1, R(e, o)->shape.rank, true, per, sizeof per);
        sb_put(&e->body, "            k_res[%d] = %s + t * %s; /* written in place */\n", k, storage_name(e, o), per);
    }
    sb_put(&e->body, "            const int64_t k_err = %s_b%d_run(k_body, k_args, sizes, rt, k_res, %s);\n"
                     "            if (k_err) return ((int64_t)%d << 32) | (k_err & 0xffffffff);\n", e->o->model, bi,
           step, (int)id);
    for (int k = 0; k < n_state; k++) { /* the states: to their homes, and on to the gradient's next row */
        scan_state st = state_home(e, id, k);
        bool in_place = k < bg->n_results && bl->result_at[bp->alias[bg->results[k]]] == k;
        const char *t = ctype(e, R(e, r->in[n_seq + k])->dtype);
        size_c(e, &R(e, r->in[n_seq + k])->shape, n, sizeof n);
        if (!in_place)
            sb_put(&e->body,
                   "            {\n                const %s *k_r = (const %s *)k_res[%d];\n"
                   "                for (int64_t i = 0; i < %s; i++) k_home%d[i] = k_r[i];\n            }\n",
                   t, t, k, n, k);
        if (st.stack >= 0 && st.prev >= 0) /* the stacked row, and the gradient's row of the next step */
            sb_put(&e->body, "            if (k_s + 1 < %s)\n"
                             "                for (int64_t i = 0; i < %s; i++) %s[k_t1 * %s + i] = k_home%d[i];\n",
                   T, n, storage_name(e, st.prev), n, k);
        sb_put(&e->body, "            k_state%d = k_home%d;\n", k, k);
    }
    for (int k = n_state; k < n_state + n_out + n_saved; k++) { /* outputs, saved values (after the t-1 states) */
        bool saved = k >= n_state + n_out;
        bool summed = !saved && (sums >> (k - n_state) & 1);
        int32_t o = result_node(e, id, saved ? 2 * n_state + k : n_state + k);
        if (o < 0 || (k < bg->n_results && bl->result_at[bp->alias[bg->results[k]]] == k))
            continue;
        const char *t = ctype(e, R(e, o)->dtype);
        span_c(e, &R(e, o)->shape, summed ? 0 : 1, R(e, o)->shape.rank, false, n, sizeof n);
        sb_put(&e->body, "            {\n                const %s *k_r = (const %s *)k_res[%d];\n", t, t, k);
        sb_put(&e->body, "                for (int64_t i = 0; i < %s; i++) {\n", n);
        if (summed)
            sb_put(&e->body, "                    %s[i] += k_r[i];\n", storage_name(e, o));
        else
            sb_put(&e->body, "                    %s[t * %s + i] = k_r[i];\n", storage_name(e, o), n);
        sb_put(&e->body, "                }\n            }\n");
    }
    sb_put(&e->body, "        }\n");
    for (int k = 0; k < n_state; k++) { /* the final states */
        int32_t o = result_node(e, id, n_state + k);
        if (o < 0)
            continue;
        size_c(e, &R(e, o)->shape, n, sizeof n);
        sb_put(&e->body, "        for (int64_t i = 0; i < %s; i++) %s[i] = k_state%d[i];\n", n, storage_name(e, o), k);
    }
    sb_put(&e->body, "    }\n");
}

/* Print kernel k: its comment, then its code by kind. */
static void emit_kernel(emitter *e, const kiln_kernel *k)
{
    int32_t id = k->root;
    e->k = k;
    if (k->nest > 1) {
        kernel_nest(e, k, k->nest);
        return;
    }
    kernel_comment(e, id);
    if (k->by_nest) {
        sb_put(&e->body, "    /* written by the loop nest above as it made each part (lower.c, lower_nest_values) */\n");
        return;
    }
    if (k->viewed) {
        sb_put(&e->body, "    /* read in place from %s by the loop nest below (lower.c, lower_nest_slices) */\n",
               storage_name(e, R(e, id)->in[0]));
        return;
    }
    switch (k->kind) {
    case KILN_KERNEL_GEMM: kernel_matmul2(e, id); break;
    case KILN_KERNEL_GEMM_BATCHED: kernel_matmul_batched(e, id); break;
    case KILN_KERNEL_REDUCTION: kernel_reduce(e, id); break;
    case KILN_KERNEL_ROWS: kernel_rows(e, id); break;
    case KILN_KERNEL_STRUCTURAL:
        if (R(e, id)->op == KILN_OP_TRANSPOSE)
            kernel_transpose(e, id);
        else if (R(e, id)->op == KILN_OP_GATHER || R(e, id)->op == KILN_OP_SCATTER_ADD)
            kernel_gather(e, id);
        else
            kernel_axis(e, id);
        break;
    case KILN_KERNEL_RANDOM: kernel_random(e, id); break;
    case KILN_KERNEL_SCAN: kernel_scan(e, id); break;
    default: kernel_elementwise(e, id); break; /* elementwise, unaliased reshape */
    }
}

/* Pointer declarations for every storage the function's body referenced. */
static void emit_decls(emitter *e, sbuf *out)
{
    const kiln_plan *p = e->p;
    const int64_t values_at = e->o->exported ? p->off_values : 0; /* an exported arena holds values only */
    for (int32_t id = 0; id < p->n; id++) {
        if (!e->used[id])
            continue;
        const kiln_node_rec *r = R(e, id);
        const kiln_buffer *b = &p->buf[id];
        const char *t = ctype(e, r->dtype);
        char unit[DIM_MAX];
        switch (b->zone) {
        case KILN_ZONE_INPUT:
            sb_put(out, "    const %s *%s = (const %s *)inputs[%d];\n", t, e->var[id], t, b->index);
            break;
        case KILN_ZONE_VALUE:
            if (e->is_body && e->L->result_at[id] >= 0) { /* the scan's stacked value at t (lower.c) */
                sb_put(out, "    %s *%s = (%s *)results[%d];\n", t, e->var[id], t, e->L->result_at[id]);
            } else if (b->z == 0) {
                sb_put(out, "    %s *%s = (%s *)(arena + %" PRId64 ");\n", t, e->var[id], t,
                       p->zones[0].base + b->offset - values_at);
            } else {
                mono_c(e, &p->zones[b->z].unit, false, unit, sizeof unit);
                sb_put(out, "    %s *%s = (%s *)(arena + %" PRId64 " + %" PRId64 " * %s);\n", t, e->var[id], t,
                       p->zones[b->z].base - values_at, b->offset, unit);
            }
            break;
        case KILN_ZONE_PARAM:
        case KILN_ZONE_STATE:
            if (e->o->exported) { /* the read-only weights blob */
                sb_put(out, "    %s *%s = (%s *)(k_weights + %" PRId64 ");\n", t, e->var[id], t,
                       kiln_emit_weight_offset(p, kiln_plan_arena_offset(p, id, p->max_sizes)));
                break;
            }
            sb_put(out, "    %s *%s = (%s *)(arena + %" PRId64 ");\n", t, e->var[id], t,
                   kiln_plan_arena_offset(p, id, p->max_sizes));
            break;
        case KILN_ZONE_NONE:
            e->failed = true;
            break;
        default:
            if (e->o->exported) /* a gradient: never in an exported forward */
                e->failed = true;
            sb_put(out, "    %s *%s = (%s *)(arena + %" PRId64 ");\n", t, e->var[id], t,
                   kiln_plan_arena_offset(p, id, p->max_sizes));
        }
    }
}

/* ---- functions -------------------------------------------------------------- */

/* k_apply_deferred: apply the deferred updates (lower.c, lower_deferred), and <model>_flush,
** which the runtime calls before it touches a parameter. */
static void emit_flush(emitter *e, sbuf *out)
{
    const kiln_plan *p = e->p;
    sb_put(out, "\n/* Apply the updates a batch-1 train_step deferred to the next step's first\n"
                "** product with the weight: before any other entry point, batch size, or\n"
                "** read or write of a parameter. */\n"
                "static void k_apply_deferred(char *arena, const k_runtime *rt)\n{\n    (void)arena;\n    (void)rt;\n");
    for (int i = 0; i < p->n_params; i++) {
        if (e->L->defer[i] < 0)
            continue;
        const kiln_shape *w = &R(e, p->param_node[i])->shape;
        const char *pv = e->pend[i];
        sb_put(out, "    real *%s = (real *)(arena + %" PRId64 ");\n", pv, e->L->defer[i]);
        sb_put(out, "    if (%s[0] != 0) { /* %s += u v^T */\n"
                    "        rt->sger_gemv(%" PRId64 ", %" PRId64 ", (real *)(arena + %" PRId64 "), %" PRId64
                    ", %s + 1, %s + %" PRId64 ", 0, 0);\n"
                    "        %s[0] = 0;\n    }\n",
               pv, label(e, p->param_node[i]), w->dims[0], w->dims[1], p->param_offset[i], w->dims[1], pv, pv,
               1 + w->dims[0], pv);
    }
    sb_put(out, "}\n\nint64_t %s_flush(char *arena, const k_runtime *rt)\n{\n    k_apply_deferred(arena, rt);\n    return 0;\n}\n",
           e->o->model);
}

/* The slab updates: p -= lr * grad over runs of adjacent parameters with
** the same lr (lower.c, lower_slab_updates). */
static void emit_slab_updates(emitter *e)
{
    const kiln_plan *p = e->p;
    int64_t esz = (int64_t)kiln_dtype_size(p->g->floatx);
    int32_t *scale = malloc(sizeof(int32_t) * ((size_t)p->n_params + 1));
    if (!scale) {
        e->failed = true;
        return;
    }
    bool any = false;
    for (int i = 0; i < p->n_params; i++) {
        scale[i] = -1;
        for (int u = 0; u < p->n_updates; u++)
            if (e->L->slab_update[u] && p->updates[u].target == p->param_node[i])
                scale[i] = e->L->update_scale[u];
        any |= scale[i] >= 0;
    }
    if (!any) {
        free(scale);
        return;
    }
    sb_put(&e->body, "\n    if (mode == MODE_TRAIN) {\n"
                     "        /* Scale(learning_rate): p -= lr * grad over the parameter slab */\n"
                     "        real *params = (real *)arena;\n"
                     "        const real *grads = (const real *)(arena + %" PRId64 ");\n",
           p->off_grads);
    for (int i = 0; i < p->n_params;) {
        if (scale[i] < 0) {
            i++;
            continue;
        }
        /* a run ends at its last parameter's last element; with guard bytes
        ** (tests) each parameter is its own run, the guards left alone */
        int j = i;
        while (j + 1 < p->n_params && scale[j + 1] == scale[i] && !p->guard)
            j++;
        int64_t lo = p->param_offset[i] / esz;
        int64_t hi = (p->param_offset[j] + kiln_plan_value_bytes(p, p->param_node[j], p->max_sizes)) / esz;
        sb_put(&e->body, "        {\n            const real lr = %s[0];\n", storage_name(e, scale[i]));
        sb_put(&e->body, "            for (int64_t i = %" PRId64 "; i < %" PRId64 "; i++) params[i] -= lr * grads[i]; /* %s",
               lo, hi, label(e, p->param_node[i]));
        sb_put(&e->body, j > i ? " .. %s */\n        }\n" : " */\n        }\n", label(e, p->param_node[j]));
        i = j + 1;
    }
    sb_put(&e->body, "    }\n");
    free(scale);
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
static char *kernel_text(emitter *e, const kiln_kernel *kr)
{
    sbuf saved = e->body, k = {0};
    e->body = k;
    emit_kernel(e, kr);
    k = e->body;
    e->body = saved;
    if (k.oom)
        e->failed = true;
    return k.s;
}

/* "MODE_EVAL | MODE_TRAIN" for mode bits m (not 0). */
static const char *modes_str(unsigned m, char *buf, size_t cap)
{
    static const char *const names[] = {"MODE_FORWARD", "MODE_EVAL", "MODE_GRADIENTS", "MODE_TRAIN"};
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < 4; k++)
        if (m & (1u << k))
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? " | " : "", names[k]);
    return buf;
}

static void mode_guard(sbuf *b, unsigned m)
{
    char ms[80];
    sb_put(b, "\n    if (mode & (%s)) {", modes_str(m, ms, sizeof ms));
}

/* Whether symbol k sizes some value of the program (B always: the batch
** is every entry point's argument). */
static bool symbol_used(const emitter *e, int k)
{
    if (k == 0)
        return true;
    if (!e->g->symbol_names[k])
        return false;
    for (int32_t id = 0; id < e->p->n; id++) {
        const kiln_node_rec *r = R(e, id);
        if (!e->p->modes[id])
            continue;
        if (r->op == KILN_OP_SYMBOL && kiln_dim_symbol(r->attr.i[0]) == k)
            return true;
        for (int i = 0; i < r->shape.rank; i++) {
            kiln_mono m;
            if (r->shape.dims[i] < 0 && kiln_dim_mono(e->g, r->shape.dims[i], &m) && m.e[k])
                return true;
        }
    }
    return false;
}

/* All entry points in one body: each kernel runs in the modes whose entry
** point needs it (a guard when that is not every mode), a weight's fused
** update only in MODE_TRAIN; at the end, gradients stored elsewhere are
** copied into their slots, the slab updates run, and updates not computed
** in place are copied into their targets. One body instead of four copies
** keeps the file, and the C compiler's time, small (docs/performance.md). */
static void emit_run(emitter *e, sbuf *out)
{
    const kiln_plan *p = e->p;
    unsigned all = (e->o->has_forward ? MODE_FORWARD : 0) |
                   (e->o->has_train ? MODE_EVAL | MODE_GRADIENTS | MODE_TRAIN : 0);
    memset(e->used, 0, (size_t)p->n + 1);
    e->body.n = 0;
    if (e->body.s)
        e->body.s[0] = '\0';
    bool deferred = false;
    for (int i = 0; i < p->n_params; i++)
        deferred |= e->L->defer[i] >= 0;
    if (deferred)
        sb_put(&e->body, "    if (!(mode == MODE_TRAIN && B == 1)) /* only a batch-1 step applies deferred updates itself */\n"
                         "        k_apply_deferred(arena, rt);\n");
    for (int i = 0; i < e->L->n; i++) {
        const kiln_kernel *kr = &e->L->k[i];
        unsigned m = kr->modes & all;
        if (!m || !kr->nest) /* not run here, or in an earlier kernel's loop nest */
            continue;
        if (kr->update >= 0) { /* the plain product, and the fused update in MODE_TRAIN */
            char *fused = kernel_text(e, kr);
            kiln_kernel pk = *kr; /* the product without its update */
            pk.update = -1;
            pk.scale = pk.defer_param = -1;
            pk.fast &= ~(unsigned)(KILN_FAST_FUSED_UPDATE | KILN_FAST_DEFER_STORE | KILN_FAST_OWN_NN);
            if (kr->own_nn_plain)
                pk.fast |= KILN_FAST_OWN_NN;
            char *plain = kernel_text(e, &pk);
            /* the plain product only where the gradient is wanted: in
            ** forward and eval_step it would be work for nothing (#12) */
            sb_put(&e->body, "\n    if (mode == MODE_TRAIN) {");
            put_indented(&e->body, fused);
            if (m & ~MODE_TRAIN) {
                char ms[80];
                sb_put(&e->body, "    } else if (mode & (%s)) {", modes_str(m & ~MODE_TRAIN, ms, sizeof ms));
                put_indented(&e->body, plain);
            }
            sb_put(&e->body, "    }\n");
            free(fused);
            free(plain);
        } else if (m != all) {
            char *k = kernel_text(e, kr);
            mode_guard(&e->body, m);
            put_indented(&e->body, k);
            sb_put(&e->body, "    }\n");
            free(k);
        } else {
            emit_kernel(e, kr);
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
            char n[DIM_MAX], x[1200];
            size_c(e, &R(e, gid)->shape, n, sizeof n);
            kindex ix = {.flat = true};
            operand(e, x, sizeof x, gid, &ix, &R(e, gid)->shape);
            sb_put(&e->body, "        /* gradient of %s, stored elsewhere: copy into its slot */\n",
                   label(e, p->param_node[i]));
            sb_put(&e->body, "        for (int64_t i = 0; i < %s; i++) ((real *)(arena + %" PRId64 "))[i] = %s;\n", n,
                   p->off_grads + p->param_offset[i], x);
        }
        sb_put(&e->body, "    }\n");
    }
    emit_slab_updates(e);
    for (int u = 0; u < p->n_updates; u++) { /* updates computed apart: into their targets */
        const kiln_plan_update *up = &p->updates[u];
        unsigned m = p->update_modes[u] & all;
        if (p->update_inplace[u] || !m)
            continue;
        char n[DIM_MAX];
        size_c(e, &R(e, up->target)->shape, n, sizeof n);
        mode_guard(&e->body, m);
        sb_put(&e->body, " /* update: %s takes its new value */\n"
                         "        for (int64_t i = 0; i < %s; i++) %s[i] = %s[i];\n    }\n",
               label(e, up->target), n, storage_name(e, up->target), storage_name(e, up->value));
    }

    if (e->is_body) { /* where the step left its results */
        sb_put(&e->body, "\n    /* the step's results: the states at t, then the outputs */\n");
        for (int k = 0; k < e->g->n_results; k++)
            sb_put(&e->body, "    results[%d] = (void *)%s;\n", k, storage_name(e, e->g->results[k]));
    } else if (e->o->exported) { /* the outputs, into the caller's arrays */
        sb_put(&e->body, "\n    /* the outputs, into the caller's arrays */\n");
        for (int k = 0; k < e->o->n_outputs; k++) {
            int32_t id = e->o->outputs[k];
            char n[DIM_MAX], x[1200];
            size_c(e, &R(e, id)->shape, n, sizeof n);
            kindex ix = {.flat = true};
            operand(e, x, sizeof x, id, &ix, &R(e, id)->shape);
            sb_put(&e->body, "    for (int64_t i = 0; i < %s; i++) k_outputs[%d][i] = %s;\n", n, k, x);
        }
        sb_put(out, "\nenum { MODE_FORWARD = 1, MODE_EVAL = 2, MODE_GRADIENTS = 4, MODE_TRAIN = 8 };\n");
    } else {
        emit_flush(e, out);
        sb_put(out, "\nenum { MODE_FORWARD = 1, MODE_EVAL = 2, MODE_GRADIENTS = 4, MODE_TRAIN = 8 };\n");
    }
    if (e->fns.s)
        sb_put(out, "%s", e->fns.s);
    if (e->is_body)
        sb_put(out, "\n/* One step of a scan: the arguments (inputs: the sequences at t, the states\n"
                    "** at t-1, the contexts) to the results; k_step counts the steps before this\n"
                    "** one over every enclosing scan (random draws depend on it). */\n"
                    "static int64_t %s_run(char *arena, const void *const *inputs, const int64_t *sizes,\n"
                    "                      const k_runtime *rt, void **results, int64_t k_step)\n{\n"
                    "    const int mode = MODE_FORWARD;\n"
                    "    (void)k_step;\n",
               e->o->model);
    else if (e->o->exported)
        sb_put(out, "\n/* The forward pass: the outputs from the inputs, the weights read-only. */\n"
                    "static int64_t %s_run(char *arena, const char *k_weights, const void *const *inputs,\n"
                    "                      float *const *k_outputs, const int64_t *sizes)\n{\n"
                    "    const int mode = MODE_FORWARD;\n"
                    "    (void)k_weights;\n",
               e->o->model);
    else
        sb_put(out, "\n/* Every entry point's kernels; mode says which entry point runs. */\n"
                    "__attribute__((noinline))\n"
                    "static int64_t %s_run(char *arena, const void *const *inputs, const int64_t *sizes, int mode,\n"
                    "                      const k_runtime *rt)\n{\n",
               e->o->model);
    char t = e->g->floatx == KILN_DTYPE_F64 ? 'd' : 's';
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        if (symbol_used(e, k)) {
            char s[48];
            symbol_name(e, k, s, sizeof s);
            sb_put(out, "    const int64_t %s = sizes[%d];\n", s, k);
        }
    if (e->o->exported) { /* the unit's own products (EXPORT_GEMM) */
        sb_put(out, "    const k_%cgemm_fn cblas_%cgemm = k_xgemm;\n", t, t);
        sb_put(out, "    const k_%cgemv_fn cblas_%cgemv = k_xgemv;\n", t, t);
        sb_put(out, "    const k_%cger_fn cblas_%cger = k_xger;\n", t, t);
    } else {
        sb_put(out, "    const k_%cgemm_fn cblas_%cgemm = rt->%cgemm;\n", t, t, t);
        sb_put(out, "    const k_%cgemv_fn cblas_%cgemv = rt->%cgemv;\n", t, t, t);
        sb_put(out, "    const k_%cger_fn cblas_%cger = rt->%cger;\n", t, t, t);
    }
    emit_decls(e, out);
    for (int i = 0; i < p->n_params; i++)
        if (e->L->defer[i] >= 0)
            sb_put(out, "    real *%s = (real *)(arena + %" PRId64 "); /* deferred update: flag, u, v */\n", e->pend[i],
                   e->L->defer[i]);
    if (e->L->scratch >= 0)
        sb_put(out, "    float *gemm_scratch = (float *)(arena + %" PRId64 "); /* rt->sgemm_nn's */\n", e->L->scratch);
    sb_put(out, "    (void)inputs;\n    (void)sizes;\n    (void)mode;\n");
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        if (symbol_used(e, k)) {
            char s[48];
            symbol_name(e, k, s, sizeof s);
            sb_put(out, "    (void)%s;\n", s);
        }
    sb_put(out, "    (void)cblas_%cgemm;\n    (void)cblas_%cgemv;\n    (void)cblas_%cger;\n", t, t, t);
    if (e->body.s)
        sb_put(out, "%s", e->body.s);
    sb_put(out, "    return 0;\n}\n");
}

static void emit_entry(sbuf *out, const char *model, const char *fn, const char *mode, const char *what)
{
    sb_put(out, "\n/* %s */\nint64_t %s_%s(char *arena, const void *const *inputs, const int64_t *sizes,\n"
                "        const k_runtime *rt)\n{\n"
                "    return %s_run(arena, inputs, sizes, %s, rt);\n}\n",
           what, model, fn, model, mode);
}

/* exp, tanh and the logistic's exp in float, written so that a loop of
** them vectorises (libm's are calls, one element at a time: a quarter of an
** LSTM's step): Cephes' polynomials after the usual reduction, exp(x) =
** 2^n exp(r) with n the integer nearest x / ln2 (read from the bits of
** x / ln2 + 1.5 * 2^23, no float-to-int conversion) and |r| <= ln2/2. The
** polynomials are fmaf's, one instruction where the code is built for FMA
** (AVX2 or AVX-512, and every arm64), libm's exactly rounded fmaf
** elsewhere: the same bits on every host. k_expf scales by 2^n in two
** halves, so that results down to the subnormals are right; k_expnegf,
** exp of u <= 0 only (the logistic's), by 2^(n+64) then 2^-64; tanh is
** its series below 0.625, else 1 - 2 / (exp(2|x|) + 1) with |x| clamped
** to 9.5 (tanh is 1 in float from 9.01), its sign copied from x (so
** tanh(-0) = -0). Overflow, underflow and NaN fall out of the arithmetic
** (x is clamped, never converted): exp(x) within 1 ulp, tanh within 1, the
** logistic within 2 of the float nearest the exact value, over every
** float (checked exhaustively; tests/test_mathf.c keeps a sweep).
** Core cycles for 16 values in a loop of them on a Zen 4, before (mul and
** add, exp rounded by a conversion, libm's special cases tested again at
** the end, the logistic's exp the general one) and after: AVX-512 exp
** 31 -> 17, the logistic 35 -> 19, tanh 51 -> 27; AVX2 40 -> 22, 53 -> 23,
** 83 -> 37 (the LSTM benchmark's step: about -0.5 ms).
** float64 keeps libm. */
#define KILN_MATHF \
    "static inline float k_bitsf(uint32_t u) { union { uint32_t u; float f; } v = {u}; return v.f; }\n" \
    "static inline uint32_t k_fbits(float f) { union { float f; uint32_t u; } v = {f}; return v.u; }\n" \
    "/* exp(r) for |r| <= ln2/2 */\n" \
    "static inline float k_expr(float r)\n" \
    "{\n" \
    "    float p = 1.9875691500e-4f;\n" \
    "    p = fmaf(p, r, 1.3981999507e-3f);\n" \
    "    p = fmaf(p, r, 8.3334519073e-3f);\n" \
    "    p = fmaf(p, r, 4.1665795894e-2f);\n" \
    "    p = fmaf(p, r, 1.6666665459e-1f);\n" \
    "    p = fmaf(p, r, 5.0000001201e-1f);\n" \
    "    return fmaf(p, r * r, r) + 1.0f;\n" \
    "}\n" \
    "/* c (|c| < 2^21) = n ln2 + r: n (as the bits of 2^n's exponent less 127) and r */\n" \
    "#define K_REDUCE(c, n, r) \\\n" \
    "    const float s_ = (c) * 1.44269504088896341f + 12582912.0f; \\\n" \
    "    const float fn_ = s_ - 12582912.0f; \\\n" \
    "    const uint32_t n = k_fbits(s_) - 0x4B400000u; \\\n" \
    "    const float r = fmaf(fn_, 2.12194440e-4f, fmaf(fn_, -0.693359375f, (c)))\n" \
    "static inline float k_expf(float x)\n" \
    "{\n" \
    "    const float c = x < -104.0f ? -104.0f : x > 89.0f ? 89.0f : x;\n" \
    "    K_REDUCE(c, n, r);\n" \
    "    const uint32_t h = (uint32_t)((int32_t)n >> 1);\n" \
    "    return k_expr(r) * k_bitsf((h + 127u) << 23) * k_bitsf((n - h + 127u) << 23);\n" \
    "}\n" \
    "static inline float k_expnegf(float u)\n" \
    "{\n" \
    "    const float c = u < -104.0f ? -104.0f : u;\n" \
    "    K_REDUCE(c, n, r);\n" \
    "    return k_expr(r) * k_bitsf((n + 191u) << 23) * 0x1p-64f;\n" \
    "}\n" \
    "static inline float k_tanhf(float x)\n" \
    "{\n" \
    "    const float a = fabsf(x), z = x * x;\n" \
    "    float p = fmaf(-5.70498872745e-3f, z, 2.06390887954e-2f);\n" \
    "    p = fmaf(p, z, -5.37397155531e-2f);\n" \
    "    p = fmaf(p, z, 1.33314422036e-1f);\n" \
    "    p = fmaf(p, z, -3.33332819422e-1f);\n" \
    "    const float s = fmaf(p * z, x, x);\n" \
    "    const float c = 2.0f * (a > 9.5f ? 9.5f : a);\n" \
    "    K_REDUCE(c, n, r);\n" \
    "    const float b = 1.0f - 2.0f / (k_expr(r) * k_bitsf((n + 127u) << 23) + 1.0f);\n" \
    "    return copysignf(a < 0.625f ? s : b, x);\n" \
    "}\n"

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
    "/* kiln's own: y = x W (+ add: NULL none, rows ldadd apart, 0 one row) for few rows, or NULL\n"
    "** (runtime/gemm.c) */\n"
    "typedef void (*k_sgemm_nn_fn)(int m, int n, int k, const float *x, int ldx, const float *w, int ldw,\n"
    "                              float *y, int ldy, float *scratch, const float *add, int ldadd);\n"
    "/* kiln's own: c = alpha a^T b + beta c (a weight's gradient or update), or NULL */\n"
    "typedef void (*k_sgemm_tn_fn)(int m, int n, int k, float alpha, const float *a, int lda, const float *b,\n"
    "                              int ldb, float beta, float *c, int ldc);\n"
    "/* kiln's own: out (cols x rows, row stride ldo) = in^T, or NULL */\n"
    "typedef void (*k_transpose_fn)(int rows, int cols, const float *in, int ldi, float *out, int ldo);\n"
    "/* kiln's own: W (k x n) packed for sgemm_nn_packed, and y = x W (+ add) from it; or both NULL */\n"
    "typedef void (*k_pack_nn_fn)(int k, int n, const float *w, int ldw, float *packed);\n"
    "typedef void (*k_sgemm_nn_packed_fn)(int m, int n, int k, const float *x, int ldx, const float *packed,\n"
    "                                     float *y, int ldy, const float *add, int ldadd);\n"
    "typedef struct k_runtime {\n"
    "    k_sgemm_fn sgemm; k_dgemm_fn dgemm; k_sgemv_fn sgemv; k_dgemv_fn dgemv; k_sger_fn sger; k_dger_fn dger;\n"
    "    k_sger_gemv_fn sger_gemv;\n"
    "    k_sgemm_nn_fn sgemm_nn;\n"
    "    k_sgemm_tn_fn sgemm_tn;\n"
    "    k_transpose_fn transpose;\n"
    "    k_pack_nn_fn pack_nn;\n"
    "    k_sgemm_nn_packed_fn sgemm_nn_packed;\n"
    "} k_runtime;\n"
    "\n"
    "typedef %s real;\n"
    "%s"
    "static inline real k_sq(real x) { return x * x; }\n"
    "static inline real k_relu(real x) { return x > 0 ? x : 0; }\n"
    "static inline real k_sign(real x) { return (real)((x > 0) - (x < 0)); }\n"
    "static inline real k_max(real a, real b) { return a >= b ? a : b; }\n"
    "static inline real k_min(real a, real b) { return a <= b ? a : b; }\n"
    "static inline real k_clip(real x, real lo, real hi) { return x < lo ? lo : x > hi ? hi : x; }\n"
    "/* a shared loop nest's inner loop: no alias checks (codegen checked the storage) */\n"
    "#if defined(__clang__)\n"
    "#define K_IVDEP _Pragma(\"clang loop vectorize(assume_safety)\")\n"
    "#elif defined(__GNUC__)\n"
    "#define K_IVDEP _Pragma(\"GCC ivdep\")\n"
    "#else\n"
    "#define K_IVDEP\n"
    "#endif\n"
    "/* a loop of transcendentals: four vectors in flight (their polynomials are long chains) */\n"
    "#if defined(__clang__)\n"
    "#define K_INTERLEAVE _Pragma(\"clang loop interleave_count(4)\")\n"
    "#else\n"
    "#define K_INTERLEAVE\n"
    "#endif\n"
    "/* exp of -|x| only: sigmoid(x) is e^x itself where x < 0, down to the subnormals */\n"
    "static inline real k_sigmoid(real x) { real e = k_expneg(-k_fabs(x)); return (x >= 0 ? 1 : e) / (1 + e); }\n"
    "static inline real k_softplus(real x) { return x > 0 ? x + k_log1p(k_exp(-x)) : k_log1p(k_exp(x)); }\n"
    "/* An integer read from the data (a target, an index) out of range: node and position. */\n"
    "static int64_t k_bad_index(int node, int64_t row) { return ((int64_t)node << 32) | (row + 1); }\n";

/* Products of an exported unit, with CBLAS's row-major arguments, in plain
** C: no BLAS, no kiln runtime (#12). The common case, x W with neither
** transposed (every forward Linear, and x W at batch 1 through gemv), is
** k_gemm_nn: register blocks of 4 rows by 16 columns (one row by 32 at
** batch 1) held in GCC/clang vector values, each sum in p order, so the
** bits are the same on every run (not BLAS's). Measured beside OpenBLAS on
** the loaded 2-core EPYC of docs/performance.md: 784x100 at batch 1 ~2.7x
** OpenBLAS's sgemv time with the JIT's flags (SSE2), batch 64 ~5x (its
** AVX-512 kernels); the old row-update loop was 1.6x slower at batch 64.
** Other cases: C scaled by beta first (beta 0 writes zeros: no NaN read
** from old memory survives), then each C row gains alpha a(i,p) * row p of
** op(B), p in order, in blocks of K_BK terms by K_BN columns; with B
** transposed each element is a dot product, summed in K_LANES partial sums
** then added in order. */
static const char EXPORT_GEMM[] =
    "\n/* Matrix products in plain C (kiln export: no BLAS). */\n"
    "#ifdef __clang__\n#pragma STDC FP_CONTRACT OFF\n#endif\n"
    "#define K_BK 256\n#define K_BN 512\n#define K_LANES 8\n"
    "#include <string.h>\n"
    "/* eight reals as one value (GCC's and clang's vector extension: SSE, AVX or\n"
    "** NEON registers, whatever the target has) */\n"
    "typedef real k_v8 __attribute__((vector_size(8 * sizeof(real))));\n"
    "typedef real k_v4 __attribute__((vector_size(4 * sizeof(real))));\n"
    "/* always inlined: compiled into each caller for its target (AVX2 or not) */\n"
    "#define K_INLINE static inline __attribute__((always_inline))\n"
    "K_INLINE k_v8 k_load8(const real *p) { k_v8 v; memcpy(&v, p, sizeof v); return v; }\n"
    "K_INLINE void k_store8(real *p, k_v8 v) { memcpy(p, &v, sizeof v); }\n"
    "K_INLINE k_v4 k_load4(const real *p) { k_v4 v; memcpy(&v, p, sizeof v); return v; }\n"
    "K_INLINE void k_store4(real *p, k_v4 v) { memcpy(p, &v, sizeof v); }\n"
    "/* c[from..8) = beta c + alpha acc, lanes from..7 only: the last block of a\n"
    "** row may overlap the one before, whose lanes are stored already */\n"
    "K_INLINE void k_put8_from(real *c, int from, real alpha, real beta, k_v8 acc)\n"
    "{\n"
    "    if (from == 0) {\n"
    "        k_store8(c, (beta == 0 ? (k_v8){0} : beta * k_load8(c)) + alpha * acc);\n"
    "        return;\n"
    "    }\n"
    "    for (int l = from; l < 8; l++)\n"
    "        c[l] = (beta == 0 ? 0 : beta * c[l]) + alpha * acc[l];\n"
    "}\n"
    "/* C = alpha A B + beta C (A m x k, B k x n, neither transposed). Blocks of\n"
    "** 4 rows by 16 columns in named registers (an array indexed in a loop would\n"
    "** stay in memory: the JIT's flags unroll nothing), each sum in p order. Then\n"
    "** rows one at a time (the rest of m; batch 1 is x W). When C = A B (alpha\n"
    "** 1, beta 0, every forward product), a row of C accumulates in place, in p\n"
    "** order, eight rows of B at a time read whole and in order (B streams from\n"
    "** the cache at the rate it can give it; the row of C, K_BN columns at a\n"
    "** time, stays in L1). Otherwise 32 columns in registers summed as\n"
    "** two partial sums (p even, p odd) added at the end, then 8 columns as four\n"
    "** (p mod 4), so that the additions' latency does not bound a row: a row's\n"
    "** product reads each element of B once and is bound by reading B. A row's\n"
    "** last block is moved left to end at column n and stores only its new\n"
    "** columns (no column one at a time, unless n < 8). Every order is fixed: the\n"
    "** same bits on every run and with or without AVX2 (no contraction). */\n"
    "K_INLINE void k_gemm_nn_body(int m, int n, int k, real alpha, const real *a, int lda, const real *b, int ldb, real beta,\n"
    "                             real *c, int ldc)\n"
    "{\n"
    "    int i = 0;\n"
    "    for (; n >= 16 && i + 4 <= m; i += 4) {\n"
    "        const real *a0 = a + (int64_t)i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;\n"
    "        for (int j = 0; j < n; j += 16) {\n"
    "            const int jj = j + 16 <= n ? j : n - 16, from = j - jj;\n"
    "            k_v8 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};\n"
    "            for (int p = 0; p < k; p++) {\n"
    "                const real *bp = b + (int64_t)p * ldb + jj;\n"
    "                const k_v8 b0 = k_load8(bp), b1 = k_load8(bp + 8);\n"
    "                c00 += a0[p] * b0; c01 += a0[p] * b1;\n"
    "                c10 += a1[p] * b0; c11 += a1[p] * b1;\n"
    "                c20 += a2[p] * b0; c21 += a2[p] * b1;\n"
    "                c30 += a3[p] * b0; c31 += a3[p] * b1;\n"
    "            }\n"
    "            const int f0 = from < 8 ? from : 8, f1 = from > 8 ? from - 8 : 0;\n"
    "            real *cc = c + (int64_t)i * ldc + jj;\n"
    "            if (f0 < 8) k_put8_from(cc, f0, alpha, beta, c00);\n"
    "            k_put8_from(cc + 8, f1, alpha, beta, c01); cc += ldc;\n"
    "            if (f0 < 8) k_put8_from(cc, f0, alpha, beta, c10);\n"
    "            k_put8_from(cc + 8, f1, alpha, beta, c11); cc += ldc;\n"
    "            if (f0 < 8) k_put8_from(cc, f0, alpha, beta, c20);\n"
    "            k_put8_from(cc + 8, f1, alpha, beta, c21); cc += ldc;\n"
    "            if (f0 < 8) k_put8_from(cc, f0, alpha, beta, c30);\n"
    "            k_put8_from(cc + 8, f1, alpha, beta, c31);\n"
    "        }\n"
    "    }\n"
    "    for (; alpha == 1 && beta == 0 && i < m; i++) { /* rows one at a time, streaming B */\n"
    "        const real *a0 = a + (int64_t)i * lda;\n"
    "        real *restrict ci = c + (int64_t)i * ldc;\n"
    "        for (int j0 = 0; j0 < n; j0 += K_BN) {\n"
    "            const int j1 = n - j0 < K_BN ? n : j0 + K_BN, j8 = j0 + (j1 - j0) / 8 * 8;\n"
    "            const int has4 = j1 - j8 >= 4;\n"
    "            for (int j = j0; j < j1; j++) ci[j] = 0;\n"
    "            int p = 0;\n"
    "            for (; p + 8 <= k; p += 8) {\n"
    "                const real x0 = a0[p], x1 = a0[p + 1], x2 = a0[p + 2], x3 = a0[p + 3];\n"
    "                const real x4 = a0[p + 4], x5 = a0[p + 5], x6 = a0[p + 6], x7 = a0[p + 7];\n"
    "                const real *b0 = b + (int64_t)p * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;\n"
    "                const real *b4 = b3 + ldb, *b5 = b4 + ldb, *b6 = b5 + ldb, *b7 = b6 + ldb;\n"
    "                int j = j0;\n"
    "                for (; j < j8; j += 8)\n"
    "                    k_store8(ci + j, k_load8(ci + j) + x0 * k_load8(b0 + j) + x1 * k_load8(b1 + j) + x2 * k_load8(b2 + j) +\n"
    "                                         x3 * k_load8(b3 + j) + x4 * k_load8(b4 + j) + x5 * k_load8(b5 + j) +\n"
    "                                         x6 * k_load8(b6 + j) + x7 * k_load8(b7 + j));\n"
    "                if (has4) {\n"
    "                    k_store4(ci + j, k_load4(ci + j) + x0 * k_load4(b0 + j) + x1 * k_load4(b1 + j) + x2 * k_load4(b2 + j) +\n"
    "                                         x3 * k_load4(b3 + j) + x4 * k_load4(b4 + j) + x5 * k_load4(b5 + j) +\n"
    "                                         x6 * k_load4(b6 + j) + x7 * k_load4(b7 + j));\n"
    "                    j += 4;\n"
    "                }\n"
    "                for (; j < j1; j++)\n"
    "                    ci[j] = ci[j] + x0 * b0[j] + x1 * b1[j] + x2 * b2[j] + x3 * b3[j] + x4 * b4[j] + x5 * b5[j] + x6 * b6[j] +\n"
    "                            x7 * b7[j];\n"
    "            }\n"
    "            for (; p < k; p++) {\n"
    "                const real x0 = a0[p], *b0 = b + (int64_t)p * ldb;\n"
    "                for (int j = j0; j < j1; j++) ci[j] = ci[j] + x0 * b0[j];\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "    for (; i < m; i++) {\n"
    "        const real *a0 = a + (int64_t)i * lda;\n"
    "        real *ci = c + (int64_t)i * ldc;\n"
    "        int j = 0;\n"
    "        for (; j + 32 <= n; j += 32) {\n"
    "            k_v8 e0 = {0}, e1 = {0}, e2 = {0}, e3 = {0}, o0 = {0}, o1 = {0}, o2 = {0}, o3 = {0};\n"
    "            int p = 0;\n"
    "            for (; p + 2 <= k; p += 2) {\n"
    "                const real *bp = b + (int64_t)p * ldb + j, *bq = bp + ldb;\n"
    "                const real x0 = a0[p], x1 = a0[p + 1];\n"
    "                e0 += x0 * k_load8(bp); e1 += x0 * k_load8(bp + 8);\n"
    "                e2 += x0 * k_load8(bp + 16); e3 += x0 * k_load8(bp + 24);\n"
    "                o0 += x1 * k_load8(bq); o1 += x1 * k_load8(bq + 8);\n"
    "                o2 += x1 * k_load8(bq + 16); o3 += x1 * k_load8(bq + 24);\n"
    "            }\n"
    "            if (p < k) {\n"
    "                const real *bp = b + (int64_t)p * ldb + j;\n"
    "                e0 += a0[p] * k_load8(bp); e1 += a0[p] * k_load8(bp + 8);\n"
    "                e2 += a0[p] * k_load8(bp + 16); e3 += a0[p] * k_load8(bp + 24);\n"
    "            }\n"
    "            k_put8_from(ci + j, 0, alpha, beta, e0 + o0); k_put8_from(ci + j + 8, 0, alpha, beta, e1 + o1);\n"
    "            k_put8_from(ci + j + 16, 0, alpha, beta, e2 + o2); k_put8_from(ci + j + 24, 0, alpha, beta, e3 + o3);\n"
    "        }\n"
    "        for (; n >= 8 && j < n; j += 8) {\n"
    "            const int jj = j + 8 <= n ? j : n - 8;\n"
    "            k_v8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};\n"
    "            int p = 0;\n"
    "            for (; p + 4 <= k; p += 4) {\n"
    "                const real *bp = b + (int64_t)p * ldb + jj;\n"
    "                s0 += a0[p] * k_load8(bp); s1 += a0[p + 1] * k_load8(bp + ldb);\n"
    "                s2 += a0[p + 2] * k_load8(bp + 2 * ldb); s3 += a0[p + 3] * k_load8(bp + 3 * ldb);\n"
    "            }\n"
    "            for (; p < k; p++)\n"
    "                s0 += a0[p] * k_load8(b + (int64_t)p * ldb + jj);\n"
    "            k_put8_from(ci + jj, j - jj, alpha, beta, (s0 + s1) + (s2 + s3));\n"
    "        }\n"
    "        for (; j < n; j++) { /* n < 8 */\n"
    "            real s = 0;\n"
    "            for (int p = 0; p < k; p++) s += a0[p] * b[(int64_t)p * ldb + j];\n"
    "            ci[j] = (beta == 0 ? 0 : beta * ci[j]) + alpha * s;\n"
    "        }\n"
    "    }\n"
    "}\n"
    "/* With AVX2 and FMA where the CPU has them (chosen at each call; GCC's and\n"
    "** clang's function attributes, no intrinsics): the object still runs on any\n"
    "** x86-64, and the bits are the same either way (contraction is off). */\n"
    "#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))\n"
    "__attribute__((target(\"avx2,fma\"))) static void k_gemm_nn_avx2(int m, int n, int k, real alpha, const real *a, int lda,\n"
    "                                                              const real *b, int ldb, real beta, real *c, int ldc)\n"
    "{\n"
    "    k_gemm_nn_body(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);\n"
    "}\n"
    "static void k_gemm_nn_base(int m, int n, int k, real alpha, const real *a, int lda, const real *b, int ldb, real beta,\n"
    "                           real *c, int ldc)\n"
    "{\n"
    "    k_gemm_nn_body(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);\n"
    "}\n"
    "static void k_gemm_nn(int m, int n, int k, real alpha, const real *a, int lda, const real *b, int ldb, real beta, real *c, int ldc)\n"
    "{\n"
    "    if (__builtin_cpu_supports(\"avx2\") && __builtin_cpu_supports(\"fma\"))\n"
    "        k_gemm_nn_avx2(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);\n"
    "    else\n"
    "        k_gemm_nn_base(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);\n"
    "}\n"
    "#else\n"
    "static void k_gemm_nn(int m, int n, int k, real alpha, const real *a, int lda, const real *b, int ldb, real beta, real *c, int ldc)\n"
    "{\n"
    "    k_gemm_nn_body(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);\n"
    "}\n"
    "#endif\n"
    "static real k_dot(const real *x, const real *y, int n, int incy)\n{\n"
    "    real s[K_LANES] = {0};\n    int p = 0;\n"
    "    if (incy == 1)\n"
    "        for (; p + K_LANES <= n; p += K_LANES)\n"
    "            for (int l = 0; l < K_LANES; l++) s[l] += x[p + l] * y[p + l];\n"
    "    real t = 0;\n    for (int l = 0; l < K_LANES; l++) t += s[l];\n"
    "    for (; p < n; p++) t += x[p] * y[(int64_t)p * incy];\n"
    "    return t;\n}\n"
    "static void k_xgemm(int order, int ta, int tb, int m, int n, int k, real alpha, const real *a, int lda,\n"
    "                    const real *b, int ldb, real beta, real *c, int ldc)\n{\n"
    "    (void)order;\n"
    "    if (ta == CblasNoTrans && tb == CblasNoTrans) {\n"
    "        k_gemm_nn(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);\n"
    "        return;\n    }\n"
    "    for (int i = 0; i < m; i++)\n"
    "        for (int j = 0; j < n; j++) c[(int64_t)i * ldc + j] = beta == 0 ? 0 : beta * c[(int64_t)i * ldc + j];\n"
    "    if (tb == CblasTrans) { /* c(i, j) += alpha op(a)(i, .) . b(j, .) */\n"
    "        for (int i = 0; i < m; i++)\n"
    "            for (int j = 0; j < n; j++) {\n"
    "                const real *bj = b + (int64_t)j * ldb;\n"
    "                real s = ta == CblasTrans ? k_dot(bj, a + i, k, lda) : k_dot(a + (int64_t)i * lda, bj, k, 1);\n"
    "                c[(int64_t)i * ldc + j] += alpha * s;\n"
    "            }\n"
    "        return;\n    }\n"
    "    for (int j0 = 0; j0 < n; j0 += K_BN) {\n"
    "        int j1 = n - j0 < K_BN ? n : j0 + K_BN;\n"
    "        for (int p0 = 0; p0 < k; p0 += K_BK) {\n"
    "            int p1 = k - p0 < K_BK ? k : p0 + K_BK;\n"
    "            for (int i = 0; i < m; i++) {\n"
    "                real *restrict ci = c + (int64_t)i * ldc;\n"
    "                for (int p = p0; p < p1; p++) {\n"
    "                    const real av = alpha * (ta == CblasTrans ? a[(int64_t)p * lda + i] : a[(int64_t)i * lda + p]);\n"
    "                    const real *restrict bp = b + (int64_t)p * ldb;\n"
    "                    for (int j = j0; j < j1; j++) ci[j] += av * bp[j];\n"
    "                }\n"
    "            }\n"
    "        }\n"
    "    }\n}\n"
    "/* y = alpha op(a) x + beta y: with a transposed, rows of a scaled and added\n"
    "** (vectorised along y); else a dot product per row. */\n"
    "static void k_xgemv(int order, int ta, int m, int n, real alpha, const real *a, int lda, const real *x,\n"
    "                    int incx, real beta, real *y, int incy)\n{\n"
    "    (void)order;\n"
    "    if (ta == CblasTrans && incx == 1 && incy == 1) { /* y^T = x^T a: one row of k_gemm_nn */\n"
    "        k_gemm_nn(1, n, m, alpha, x, m, a, lda, beta, y, n);\n"
    "        return;\n    }\n"
    "    int ny = ta == CblasTrans ? n : m;\n"
    "    for (int j = 0; j < ny; j++) y[(int64_t)j * incy] = beta == 0 ? 0 : beta * y[(int64_t)j * incy];\n"
    "    if (ta == CblasTrans) {\n"
    "        for (int p = 0; p < m; p++) {\n"
    "            const real av = alpha * x[(int64_t)p * incx];\n"
    "            const real *restrict ap = a + (int64_t)p * lda;\n"
    "            if (incy == 1) {\n"
    "                real *restrict yy = y;\n"
    "                for (int j = 0; j < n; j++) yy[j] += av * ap[j];\n"
    "            } else {\n"
    "                for (int j = 0; j < n; j++) y[(int64_t)j * incy] += av * ap[j];\n"
    "            }\n"
    "        }\n"
    "        return;\n    }\n"
    "    for (int i = 0; i < m; i++)\n"
    "        y[(int64_t)i * incy] += alpha * k_dot(a + (int64_t)i * lda, x, n, incx);\n"
    "}\n"
    "/* a += alpha x y^T (no exported forward calls it; bound for the printer's sake) */\n"
    "static void k_xger(int order, int m, int n, real alpha, const real *x, int incx, const real *y, int incy,\n"
    "                   real *a, int lda)\n{\n"
    "    (void)order;\n"
    "    for (int i = 0; i < m; i++)\n"
    "        for (int j = 0; j < n; j++)\n"
    "            a[(int64_t)i * lda + j] += alpha * x[(int64_t)i * incx] * y[(int64_t)j * incy];\n"
    "}\n";

/* The same products through the system's CBLAS, linked into the exported
** object (export_blas): declared here with int for the enums, as the JIT's
** runtime table casts them, so the unit needs no BLAS header. */
static const char EXPORT_BLAS[] =
    "\n/* Matrix products through CBLAS (kiln export with BLAS, linked). */\n"
    "void cblas_sgemm(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *,\n"
    "                 int);\n"
    "void cblas_sgemv(int, int, int, int, float, const float *, int, const float *, int, float, float *, int);\n"
    "void cblas_sger(int, int, int, float, const float *, int, const float *, int, float *, int);\n"
    "static const k_sgemm_fn k_xgemm = cblas_sgemm;\n"
    "static const k_sgemv_fn k_xgemv = cblas_sgemv;\n"
    "static const k_sger_fn k_xger = cblas_sger;\n";

/* Philox4x32-10 (Salmon et al., SC'11), as compiler/rng.c computes it: the
** counter (i, stream, step) under the state's key. */
static const char PHILOX[] =
    "\n/* Random numbers: Philox4x32-10 of the counter (element, stream, step)\n"
    "** under the state's key (state: key low, key high, step low, step high). */\n"
    "static void k_philox(const int32_t *state, uint64_t i, int64_t stream, uint32_t w[4])\n{\n"
    "    uint32_t c0 = (uint32_t)i, c1 = (uint32_t)(i >> 32) ^ ((uint32_t)stream << 16);\n"
    "    uint32_t c2 = (uint32_t)state[2], c3 = (uint32_t)state[3];\n"
    "    uint32_t k0 = (uint32_t)state[0], k1 = (uint32_t)state[1];\n"
    "    for (int r = 0; r < 10; r++) {\n"
    "        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;\n"
    "        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;\n"
    "        c1 = (uint32_t)p1;\n        c3 = (uint32_t)p0;\n        c0 = n0;\n        c2 = n2;\n"
    "        k0 += 0x9E3779B9u;\n        k1 += 0xBB67AE85u;\n"
    "    }\n"
    "    w[0] = c0;\n    w[1] = c1;\n    w[2] = c2;\n    w[3] = c3;\n}\n"
    "/* Uniform on [0, 1): 24 bits of word k (float), 53 of words 2k, 2k+1 (double). */\n"
    "static inline real k_unit24(const uint32_t *w, int k) { return (real)(w[k] >> 8) * (real)0x1p-24; }\n"
    "static inline real k_unit53(const uint32_t *w, int k)\n"
    "{ return (real)((((uint64_t)w[2 * k + 1] << 32) | w[2 * k]) >> 11) * (real)0x1p-53; }\n"
    "/* Box-Muller: a standard normal from two uniforms. */\n"
    "static inline real k_normal(real u1, real u2)\n"
    "{ return k_sqrt(-2 * k_log(1 - u1)) * (real)cos(6.283185307179586 * (double)u2); }\n";

static void emitter_free(emitter *e)
{
    free(e->var);
    free(e->used);
    free(e->pend);
    free(e->members);
    free(e->fns.s);
    free(e->body.s);
}

static void print_scans(emitter *e);

/* Whether a body, or a body in it, draws random numbers. */
static bool draws(const kiln_graph *body)
{
    for (int32_t id = 0; id < body->n_nodes; id++)
        if (body->nodes[id].op == KILN_OP_RANDOM ||
            (body->nodes[id].op == KILN_OP_SCAN && draws(body->bodies[body->nodes[id].attr.i[KILN_SCAN_BODY]])))
            return true;
    return false;
}

/* Set up e for plan p lowered to l, and print its scans' bodies into
** e->fns. false: out of memory. */
static bool emitter_open(emitter *e, const kiln_plan *p, const kiln_kernel_list *l, const kiln_emit_options *o,
                         kiln_err *err)
{
    *e = (emitter){.p = p, .g = p->g, .o = o, .L = l, .err = err};
    e->real = p->g->floatx == KILN_DTYPE_F64 ? "double" : "float";
    size_t n1 = (size_t)p->n + 1;
    e->var = calloc(n1, sizeof *e->var);
    e->used = calloc(n1, 1);
    e->pend = calloc((size_t)p->n_params + 1, sizeof *e->pend);
    e->members = malloc(n1 * sizeof *e->members);
    if (!e->var || !e->used || !e->pend || !e->members)
        return false;
    name_nodes(e);
    for (int i = 0; i < p->n_params; i++)
        if (l->defer[i] >= 0)
            snprintf(e->pend[i], sizeof e->pend[i], "pend_%s", label(e, p->param_node[i]));
    print_scans(e);
    return !e->fns.oom;
}

/* Every scan's body printed as a function <model>_b<k>_run into e->fns,
** its own scans' bodies first. */
static void print_scans(emitter *e)
{
    for (int i = 0; i < e->L->n && !e->failed; i++) {
        const kiln_kernel *k = &e->L->k[i];
        if (k->kind != KILN_KERNEL_SCAN || k->body < 0)
            continue;
        int bi = (int)R(e, k->root)->attr.i[KILN_SCAN_BODY];
        char model[VAR_MAX + 16];
        snprintf(model, sizeof model, "%s_b%d", e->o->model, bi);
        kiln_emit_options bo = {.model = model, .has_forward = true, .no_fast_paths = e->o->no_fast_paths};
        emitter be;
        bool ok = emitter_open(&be, &e->L->body_plans[k->body], e->L->bodies[k->body], &bo, e->err);
        be.is_body = true;
        if (ok && !be.failed)
            emit_run(&be, &e->fns);
        ok = ok && !be.failed && !be.body.oom;
        emitter_free(&be);
        if (!ok) {
            e->failed = true;
            return;
        }
    }
}

/* A line of the header's list of parameters and states: C name, shape,
** offset, and the user's owner path and name. */
static void put_persistent(const emitter *e, sbuf *out, int32_t id, int64_t offset)
{
    const kiln_node_rec *r = R(e, id);
    char sh[KILN_SHAPE_STR_MAX];
    sb_put(out, "**   %-32s %s @%" PRId64 "  ", e->var[id], kiln_shape_str(e->g, &r->shape, sh, sizeof sh), offset);
    put_comment_text(out, r->owner ? r->owner : "");
    sb_put(out, "%s", r->owner ? "." : "");
    put_comment_text(out, r->name ? r->name : "");
    sb_put(out, "\n");
}

enum kiln_status kiln_emit_c(const kiln_plan *p, const kiln_emit_options *o, char **out_src, kiln_emit_info *info,
                             kiln_err *err)
{
    emitter e;
    sbuf out = {0};
    kiln_kernel_list *l;
    kiln_lower_options lo = {.has_forward = o->has_forward, .has_train = o->has_train,
                             .no_fast_paths = o->no_fast_paths};
    enum kiln_status st = kiln_lower(p, &lo, &l, err);
    if (st == KILN_ERR_NOMEM)
        return st;
    if (st) /* a scan body's plan failed: the reason is in err */
        return err->status ? err->status : kiln_err_set(err, KILN_ERR_UNSUPPORTED, "codegen: a scan body failed");
    if (!emitter_open(&e, p, l, o, err)) {
        emitter_free(&e);
        kiln_kernel_list_free(l);
        return kiln_err_set(err, KILN_ERR_NOMEM, "codegen: no memory");
    }
    if (e.failed) { /* a scan body's printing failed */
        emitter_free(&e);
        kiln_kernel_list_free(l);
        return err->status ? err->status : kiln_err_set(err, KILN_ERR_UNSUPPORTED, "codegen: a scan body failed");
    }

    /* 1. Header: what made this file, and the arena layout. */
    sb_put(&out, "/* %s.c: generated by kiln %s (%s), do not edit.\n", o->model, KILN_VERSION, KILN_CODEGEN_VERSION);
    sb_put(&out, "**\n** model %s: %d nodes, %d parameters (%" PRId64 " bytes), %d states, floats are %s\n", o->model,
           (int)p->n, p->n_params, p->param_bytes, p->n_states, e.real);
    sb_put(&out, "** arena: params @0 | grads @%" PRId64 " | states @%" PRId64 " (%" PRId64 " bytes) | values @%" PRId64 "\n",
           p->off_grads, p->off_states, p->state_bytes, p->off_values);
    for (int z = 0; z < p->n_zones; z++) {
        char unit[DIM_MAX];
        kiln_mono_str(p->g, &p->zones[z].unit, unit, sizeof unit);
        sb_put(&out, "**   zone %s @%" PRId64 ": %" PRId64 " bytes per %s, %" PRId64 " at the maxima\n", unit,
               p->zones[z].base, p->zones[z].bytes, z ? unit : "program", p->zones[z].units);
    }
    int64_t end_deferred = l->deferred_end;
    if (end_deferred > (p->arena_bytes + 63) / 64 * 64)
        sb_put(&out, "**        | deferred batch-1 updates @%" PRId64 " (%" PRId64 " bytes)\n",
               (p->arena_bytes + 63) / 64 * 64, end_deferred - (p->arena_bytes + 63) / 64 * 64);
    if (l->scratch >= 0)
        sb_put(&out, "**        | GEMM scratch @%" PRId64 " (%" PRId64 " bytes)\n", l->scratch,
               l->scratch_end - l->scratch);
    for (int i = 0; i < l->n; i++)
        if (l->k[i].body >= 0)
            sb_put(&out, "**        | scan node %d: its step's values @%" PRId64 ", carried states @%" PRId64 "\n",
                   (int)l->k[i].root, l->k[i].scan_at, l->k[i].scan_at + l->k[i].scan_carry);
    sb_put(&out, "*/\n");
    /* libm by the float type, spelled out: <tgmath.h> costs compile time */
    static const char MATH_F32[] = "#define k_exp k_expf\n#define k_log logf\n#define k_log1p log1pf\n"
                                   "#define k_fabs fabsf\n#define k_sqrt sqrtf\n#define k_tanh k_tanhf\n"
                                   "#define k_pow powf\n#define k_expneg k_expnegf\n" KILN_MATHF;
    static const char MATH_F64[] = "#define k_exp exp\n#define k_log log\n#define k_log1p log1p\n"
                                   "#define k_fabs fabs\n#define k_sqrt sqrt\n#define k_tanh tanh\n"
                                   "#define k_pow pow\n#define k_expneg exp\n";
    sb_put(&out, PRELUDE, e.real, p->g->floatx == KILN_DTYPE_F64 ? MATH_F64 : MATH_F32);
    bool random = false;
    for (int32_t id = 0; id < p->n; id++)
        random |= (R(&e, id)->op == KILN_OP_RANDOM || (R(&e, id)->op == KILN_OP_SCAN && draws(p->g->bodies[
                      R(&e, id)->attr.i[KILN_SCAN_BODY]]))) && p->modes[id];
    if (random)
        sb_put(&out, "%s", PHILOX);
    int64_t arena_bytes = l->arena_bytes;
    if (o->exported) {
        sb_put(&out, "%s", o->export_blas ? EXPORT_BLAS : EXPORT_GEMM);
        arena_bytes -= p->off_values; /* values only: the weights live apart */
    }
    sb_put(&out, "\n#define ARENA_BYTES %" PRId64 "\n#define PARAM_FLOATS %" PRId64 "\n", arena_bytes,
           p->param_bytes / (int64_t)kiln_dtype_size(p->g->floatx));
    sb_put(&out, "\n/* parameters, in slab order:\n");
    for (int i = 0; i < p->n_params; i++)
        put_persistent(&e, &out, p->param_node[i], p->param_offset[i]);
    if (p->n_states) {
        sb_put(&out, "** states:\n");
        for (int i = 0; i < p->n_states; i++)
            put_persistent(&e, &out, p->state_node[i], p->state_offset[i]);
    }
    sb_put(&out, "*/\n");

    /* 2. init: states' values are set by the runtime; gradients of
    ** parameters the cost does not reach stay zero. */
    if (!o->exported)
        sb_put(&out,
           "\n/* Check the arena's size and clear the gradient slab. */\n"
           "int64_t %s_init(char *arena, int64_t arena_bytes)\n{\n"
           "    if (arena_bytes != ARENA_BYTES) return -1;\n"
           "    for (int64_t i = 0; i < PARAM_FLOATS; i++) ((real *)(arena + %" PRId64 "))[i] = 0;\n",
           o->model, p->off_grads);
    for (int i = 0; i < p->n_params; i++)
        if (l->defer[i] >= 0)
            sb_put(&out, "    ((real *)(arena + %" PRId64 "))[0] = 0; /* no deferred update of %s */\n", l->defer[i],
                   label(&e, p->param_node[i]));
    if (!o->exported)
        sb_put(&out, "    return 0;\n}\n");

    /* 3. Entry points. */
    emit_run(&e, &out);
    if (o->has_forward && !o->exported)
        emit_entry(&out, o->model, "forward", "MODE_FORWARD", "Inference: the outputs from the inputs.");
    if (o->has_train && !o->exported) {
        emit_entry(&out, o->model, "eval_step", "MODE_EVAL", "The cost and monitored values; no update.");
        emit_entry(&out, o->model, "gradients", "MODE_GRADIENTS",
                   "Cost, monitored values and the gradient of every parameter.");
        emit_entry(&out, o->model, "train_step", "MODE_TRAIN",
                   "One step of GradientDescent: the cost and monitors with the parameters\n"
                   "** as they were, then the step rule's updates (p -= lr * grad inside the\n"
                   "** gradient's GEMM where it can be, else over the parameter slab).");
    }
    bool oom = e.body.oom;
    kiln_emit_info facts = {.arena_bytes = arena_bytes, .gemm_n = l->gemm_n, .gemm_k = l->gemm_k,
                            .fused_updates = l->any_fused};
    if (!o->exported) /* 4. What this unit is, as data */
        kiln_manifest_emit(&out, p, o, &facts);
    bool failed = e.failed;
    emitter_free(&e);
    kiln_kernel_list_free(l);
    if (out.oom || oom) {
        free(out.s);
        return kiln_err_set(err, KILN_ERR_NOMEM, "codegen: no memory for the source");
    }
    if (failed) {
        free(out.s);
        return kiln_err_set(err, KILN_ERR_UNSUPPORTED, "codegen: the plan has a node this emitter cannot place");
    }
    *out_src = out.s;
    *info = facts;
    return KILN_OK;
}
