/* interp.c: the reference interpreter, a float64 executor of program graphs.
**
** Job: give tests a second, independent answer for everything a compiled
** program computes (tests/test_backends.c, in the spirit of ggml's
** test-backend-ops). It reads the same program graph as codegen and nothing
** else of the compiler's decisions: no fusion, no memory plan, no lowering
** patterns. So a disagreement points at codegen, the plan or the runtime,
** or, when both agree with each other but not with the math, at a rule.
**
** Data. One double array per node with a value, sized for the run's symbol
** sizes and reallocated each run; int32 tensors are held in doubles too
** (every int32 is exactly a double), and an int result (argmax, a cast) is
** stored already truncated, so int semantics are kept with one storage
** type. PARAM and STATE leaves keep their own persistent arrays,
** initialised from the store entries' doubles. Values are evaluated in id
** (schedule) order; nothing is fused or reused, so every value of the run
** stays readable afterwards.
**
** Modes (the same rule as memplan.c, plan_modes): a mode's roots are
** forward: outputs; eval: cost and monitors; gradients: those and the
** gradient nodes; train: those and the values of the train-only updates
** (the step rule's). A graph's own update (a random state's advance) runs
** in every mode that computes a reader of its target other than its value;
** its value may read another state, so this repeats to a fixed point. The
** nodes needed are the ancestors of the roots and of the running updates'
** values. Updates are simultaneous: every value is copied first, then
** every target assigned.
**
** Arithmetic is float64 throughout, in the textbook formulas: numpy
** broadcasting by strides (0 on a broadcast axis), reductions in row-major
** order, softmax and its relatives in the max-shifted form, products as
** plain triple loops; scalar ops through kiln_op_scalar_unary/binary
** (graph.c), which constant folding uses too. The one place where the graph's float type matters is
** random numbers: a draw is Philox of (element, stream, step) under the
** state's key (kiln_philox, as generated code), and for a float32 graph the
** few float operations generated code applies to the uniform are rounded
** to float here too, so uniform and Bernoulli draws agree bit for bit.
**
** Rejected: evaluating through codegen's kernel text (not independent), and
** sharing memplan's mode marks (a bug there would hide itself). Errors (an
** index out of range, an op without a case) name the node, its op and
** name; the run then applies no update. */
#include "compiler/interp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/rng.h"

struct kiln_interp {
    kiln_err err;
    const kiln_graph *g;
    int32_t n;
    int32_t cost;
    int32_t *monitors, *outputs, *grads;
    int n_monitors, n_outputs, n_grads;
    kiln_plan_update *updates;
    int n_updates;
    const void **bound;      /* per node: data of an INPUT */
    double **val;            /* per node: its value (leaves: persistent) */
    int64_t *count;          /* elements of val[i] */
    unsigned char *need;     /* the last run needs the node */
    unsigned char *done;     /* the last run computed the node */
    bool *running;           /* per update: runs in the current mode */
    int64_t sizes[KILN_MAX_SYMBOLS];
    int64_t step;            /* a body's: the steps before this one, over every enclosing scan; 0 outside */
    /* scans: a sub-interpreter per body, and each scan's results by index */
    struct kiln_interp **subs; /* per body of g, made on first use */
    double ***results;       /* per node: a tuple's result arrays (SCAN) */
    int64_t **result_count;
};

static const kiln_node_rec *R(const kiln_interp *it, int32_t id) { return kiln_graph_cnode(it->g, id); }

static bool is_store_leaf(const kiln_node_rec *r) { return r->op == KILN_OP_PARAM || r->op == KILN_OP_STATE; }

/* "node 12 (gather 'emb')" for messages. */
static const char *label(const kiln_interp *it, int32_t id, char *buf, size_t cap)
{
    const kiln_node_rec *r = R(it, id);
    snprintf(buf, cap, "node %d (%s%s%s%s)", (int)id, kiln_op_info_of(r->op)->name, r->name ? " '" : "",
             r->name ? r->name : "", r->name ? "'" : "");
    return buf;
}

static enum kiln_status fail_at(kiln_interp *it, int32_t id, enum kiln_status s, const char *fmt, ...)
    KILN_PRINTF(4, 5);
static enum kiln_status fail_at(kiln_interp *it, int32_t id, enum kiln_status s, const char *fmt, ...)
{
    char where[KILN_MAX_NAME + 64], what[KILN_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return kiln_err_set(&it->err, s, "%s: %s", label(it, id, where, sizeof where), what);
}

/* ---- shapes at run time ------------------------------------------------- */

typedef struct dims {
    int rank;
    int64_t d[KILN_MAX_RANK];
    int64_t count;
} dims;

/* s with every symbol at its run-time size. */
static bool eval_shape(const kiln_interp *it, const kiln_shape *s, dims *out)
{
    out->rank = s->rank;
    out->count = 1;
    for (int k = 0; k < s->rank; k++) {
        kiln_mono m;
        if (!kiln_dim_mono(it->g, s->dims[k], &m))
            return false;
        out->d[k] = kiln_mono_eval(&m, it->sizes);
        if (out->d[k] < 1 || !kiln_mul_i64(out->count, out->d[k], &out->count))
            return false;
    }
    return true;
}

static dims node_dims(const kiln_interp *it, int32_t id)
{
    dims d;
    eval_shape(it, &R(it, id)->shape, &d); /* checked for every needed node before a run */
    return d;
}

/* Elements of d's axes [from, to). */
static int64_t span(const dims *d, int from, int to)
{
    int64_t n = 1;
    for (int k = from; k < to; k++)
        n *= d->d[k];
    return n;
}

/* Strides of input dims `in` read under a loop over `out`, numpy-style:
** right-aligned, 0 on an axis the input lacks or has as 1. */
static void bcast_strides(const dims *in, const dims *out, int64_t *stride)
{
    int64_t s = 1;
    for (int k = out->rank - 1; k >= 0; k--) {
        int ik = in->rank - out->rank + k;
        if (ik < 0) {
            stride[k] = 0;
            continue;
        }
        stride[k] = in->d[ik] == 1 && out->d[k] != 1 ? 0 : s;
        s *= in->d[ik];
    }
}

/* Offset of flat index i of `out` through strides. */
static int64_t offset_of(int64_t i, const dims *out, const int64_t *stride)
{
    int64_t off = 0;
    for (int k = out->rank - 1; k >= 0; k--) {
        off += (i % out->d[k]) * stride[k];
        i /= out->d[k];
    }
    return off;
}

/* ---- elementwise ---------------------------------------------------------- */

static enum kiln_status eval_elementwise(kiln_interp *it, int32_t id, double *y, const dims *od)
{
    const kiln_node_rec *r = R(it, id);
    int64_t stride[3][KILN_MAX_RANK];
    const double *x[3] = {NULL, NULL, NULL};
    for (int k = 0; k < r->n_in; k++) {
        dims in = node_dims(it, r->in[k]);
        bcast_strides(&in, od, stride[k]);
        x[k] = it->val[r->in[k]];
    }
    for (int64_t i = 0; i < od->count; i++) {
        double a = x[0][offset_of(i, od, stride[0])];
        if (r->n_in == 1) {
            if (r->op == KILN_OP_CAST && r->dtype == KILN_DTYPE_I32) {
                if (!(a > -2147483649.0 && a < 2147483648.0)) /* also NaN */
                    return fail_at(it, id, KILN_ERR_ARG, "element %lld is %g, outside int32", (long long)i, a);
                a = trunc(a);
            }
            y[i] = r->op == KILN_OP_CAST || r->op == KILN_OP_BROADCAST ? a : kiln_op_scalar_unary(r->op, a, &r->attr);
        } else if (r->n_in == 2) {
            y[i] = kiln_op_scalar_binary(r->op, a, x[1][offset_of(i, od, stride[1])]);
        } else {
            y[i] = a != 0 ? x[1][offset_of(i, od, stride[1])] : x[2][offset_of(i, od, stride[2])];
        }
    }
    return KILN_OK;
}

/* (.., depth) from int indices (..): 1 where the last index equals idx. */
static void eval_onehot(kiln_interp *it, int32_t id, double *y, const dims *od)
{
    const double *idx = it->val[R(it, id)->in[0]];
    int64_t depth = od->d[od->rank - 1];
    for (int64_t i = 0; i < od->count; i++)
        y[i] = idx[i / depth] == (double)(i % depth);
}

/* ---- reductions, products, permutations -------------------------------------- */

/* SUM or MAX over the axes in the mask attr.i[0]. */
static void eval_reduce(kiln_interp *it, int32_t id, double *y, const dims *od)
{
    const kiln_node_rec *r = R(it, id);
    dims xd = node_dims(it, r->in[0]);
    const double *x = it->val[r->in[0]];
    bool is_max = r->op == KILN_OP_MAX;
    int64_t ostride[KILN_MAX_RANK]; /* along x's axes: the output's stride, 0 on reduced ones */
    int64_t s = 1;
    for (int k = xd.rank - 1; k >= 0; k--) {
        bool reduced = kiln_attr_axes(r) >> k & 1;
        ostride[k] = reduced ? 0 : s;
        if (!reduced)
            s *= xd.d[k];
    }
    for (int64_t i = 0; i < od->count; i++)
        y[i] = is_max ? -INFINITY : 0;
    for (int64_t i = 0; i < xd.count; i++) {
        int64_t o = offset_of(i, &xd, ostride);
        if (!is_max)
            y[o] += x[i];
        else if (x[i] > y[o])
            y[o] = x[i];
    }
}

/* op(a) op(b) over the last two axes; leading axes batched (a 2-D side is
** used for every batch index). */
static void eval_matmul(kiln_interp *it, int32_t id, double *y, const dims *od)
{
    const kiln_node_rec *r = R(it, id);
    dims ad = node_dims(it, r->in[0]), bd = node_dims(it, r->in[1]);
    const double *a = it->val[r->in[0]], *b = it->val[r->in[1]];
    bool ta = kiln_attr_trans_a(r), tb = kiln_attr_trans_b(r);
    int64_t m = od->d[od->rank - 2], n = od->d[od->rank - 1];
    int64_t k = ad.d[ad.rank - (ta ? 2 : 1)];
    int64_t batches = span(od, 0, od->rank - 2);
    int64_t astep = ad.rank > 2 ? m * k : 0, bstep = bd.rank > 2 ? k * n : 0;
    for (int64_t t = 0; t < batches; t++) {
        const double *A = a + t * astep, *Bm = b + t * bstep;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t q = 0; q < k; q++)
                    s += (ta ? A[q * m + i] : A[i * k + q]) * (tb ? Bm[j * k + q] : Bm[q * n + j]);
                y[t * m * n + i * n + j] = s;
            }
    }
}

/* Output axis k is input axis attr.i[k]. */
static void eval_transpose(kiln_interp *it, int32_t id, double *y, const dims *od)
{
    const kiln_node_rec *r = R(it, id);
    dims xd = node_dims(it, r->in[0]);
    int64_t xs[KILN_MAX_RANK], stride[KILN_MAX_RANK], s = 1;
    for (int k = xd.rank - 1; k >= 0; k--) {
        xs[k] = s;
        s *= xd.d[k];
    }
    for (int k = 0; k < od->rank; k++)
        stride[k] = xs[r->attr.i[k]];
    const double *x = it->val[r->in[0]];
    for (int64_t i = 0; i < od->count; i++)
        y[i] = x[offset_of(i, od, stride)];
}

/* ---- along one axis: slice, pad, reverse, concat, split ------------------------- */

/* d as (outer, len, inner) around axis. */
static void axis_view(const dims *d, int axis, int64_t *outer, int64_t *len, int64_t *inner)
{
    *outer = span(d, 0, axis);
    *len = d->d[axis];
    *inner = span(d, axis + 1, d->rank);
}

static void eval_axis(kiln_interp *it, int32_t id, double *y, const dims *od)
{
    const kiln_node_rec *r = R(it, id);
    /* a split's result reads the split's axis, not its own attr (the result's number) */
    int axis = kiln_attr_axis(r->op == KILN_OP_PROJ ? R(it, r->in[0]) : r);
    int64_t outer, lout, inner, lin, o2, i2;
    axis_view(od, axis, &outer, &lout, &inner);
    if (r->op == KILN_OP_CONCAT) {
        int64_t at = 0;
        for (int p = 0; p < r->n_in; p++) {
            dims pd = node_dims(it, r->in[p]);
            const double *x = it->val[r->in[p]];
            axis_view(&pd, axis, &o2, &lin, &i2);
            for (int64_t o = 0; o < outer; o++)
                for (int64_t k = 0; k < lin; k++)
                    memcpy(y + (o * lout + at + k) * inner, x + (o * lin + k) * inner, (size_t)inner * sizeof *y);
            at += lin;
        }
        return;
    }
    int32_t src = r->in[0];
    int64_t start = r->attr.i[1], step = r->attr.i[3];
    if (r->op == KILN_OP_PROJ) { /* result k of a split: a slice at the earlier pieces' total */
        const kiln_node_rec *t = R(it, src);
        start = 0;
        step = 1;
        for (int q = 0; q < r->attr.i[0]; q++) {
            dims qd;
            eval_shape(it, &t->outs[q].shape, &qd);
            start += qd.d[axis];
        }
        src = t->in[0];
    }
    dims xd = node_dims(it, src);
    const double *x = it->val[src];
    lin = xd.d[axis];
    if (r->op == KILN_OP_PAD)
        memset(y, 0, (size_t)od->count * sizeof *y);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < (r->op == KILN_OP_PAD ? lin : lout); k++) {
            double *dst;
            const double *from;
            if (r->op == KILN_OP_PAD) {
                dst = y + (o * lout + start + k * step) * inner;
                from = x + (o * lin + k) * inner;
            } else {
                dst = y + (o * lout + k) * inner;
                from = x + (o * lin + (r->op == KILN_OP_REVERSE ? lin - 1 - k : start + k * step)) * inner;
            }
            memcpy(dst, from, (size_t)inner * sizeof *y);
        }
}

/* ---- rows (last axis), indices ---------------------------------------------------- */

/* An int index read from the data: in [0, n), else an error naming the row. */
static bool index_ok(kiln_interp *it, int32_t id, double v, int64_t n, int64_t at, const char *what)
{
    if (v >= 0 && v < (double)n)
        return true;
    fail_at(it, id, KILN_ERR_ARG, "index %g at %s %lld is outside [0, %lld)", v, what, (long long)at, (long long)n);
    return false;
}

static enum kiln_status eval_rows(kiln_interp *it, int32_t id, double *y)
{
    const kiln_node_rec *r = R(it, id);
    dims xd = node_dims(it, r->in[0]);
    const double *x0 = it->val[r->in[0]], *idx = r->n_in > 1 ? it->val[r->in[1]] : NULL;
    int64_t cols = xd.d[xd.rank - 1], rows = xd.count / cols;
    for (int64_t row = 0; row < rows; row++) {
        const double *x = x0 + row * cols;
        int64_t t = 0;
        if (idx) {
            if (!index_ok(it, id, idx[row], cols, row, "row"))
                return it->err.status;
            t = (int64_t)idx[row];
        }
        /* the max-shifted sum of exponentials, for the softmax family */
        double m = x[0], s = 0;
        for (int64_t j = 1; j < cols; j++)
            if (x[j] > m)
                m = x[j];
        for (int64_t j = 0; j < cols && r->op != KILN_OP_ARGMAX && r->op != KILN_OP_PICK; j++)
            s += exp(x[j] - m);
        switch (r->op) {
        case KILN_OP_SOFTMAX:
            for (int64_t j = 0; j < cols; j++)
                y[row * cols + j] = exp(x[j] - m) / s;
            break;
        case KILN_OP_LOGSOFTMAX:
            for (int64_t j = 0; j < cols; j++)
                y[row * cols + j] = x[j] - m - log(s);
            break;
        case KILN_OP_ARGMAX: {
            int64_t best = 0;
            for (int64_t j = 1; j < cols; j++)
                if (x[j] > x[best])
                    best = j;
            y[row] = (double)best;
            break;
        }
        case KILN_OP_PICK: y[row] = x[t]; break;
        default: y[row] = m + log(s) - x[t]; break; /* SOFTMAX_XENT */
        }
    }
    return KILN_OK;
}

/* GATHER: rows of a table (V, ..) by index; SCATTER_ADD: its adjoint, rows
** of updates added into zeros (V, ..) in index order. */
static enum kiln_status eval_gather(kiln_interp *it, int32_t id, double *y, const dims *od)
{
    const kiln_node_rec *r = R(it, id);
    const double *a = it->val[r->in[0]], *idx = it->val[r->in[1]];
    int64_t n = it->count[r->in[1]];
    bool gather = r->op == KILN_OP_GATHER;
    dims td = gather ? node_dims(it, r->in[0]) : *od;
    int64_t rows = td.d[0], inner = span(&td, 1, td.rank);
    if (!gather)
        memset(y, 0, (size_t)od->count * sizeof *y);
    for (int64_t i = 0; i < n; i++) {
        if (!index_ok(it, id, idx[i], rows, i, "position"))
            return it->err.status;
        int64_t t = (int64_t)idx[i];
        for (int64_t j = 0; j < inner; j++) {
            if (gather)
                y[i * inner + j] = a[t * inner + j];
            else
                y[t * inner + j] += a[i * inner + j];
        }
    }
    return KILN_OK;
}

/* ---- random ----------------------------------------------------------------------- */

/* x as generated code holds it: rounded to float in a float32 graph. */
static double as_real(const kiln_interp *it, double x)
{
    return it->g->floatx == KILN_DTYPE_F32 ? (double)(float)x : x;
}

static void eval_random(kiln_interp *it, int32_t id, double *y, const dims *od)
{
    const kiln_node_rec *r = R(it, id);
    const double *sv = it->val[r->in[0]];
    int32_t st[4];
    for (int k = 0; k < 4; k++)
        st[k] = (int32_t)sv[k];
    if (r->op == KILN_OP_RNG_NEXT) { /* one more step of the 64-bit counter */
        uint64_t n = ((uint64_t)(uint32_t)st[3] << 32 | (uint32_t)st[2]) + 1;
        y[0] = st[0];
        y[1] = st[1];
        y[2] = (int32_t)(uint32_t)n;
        y[3] = (int32_t)(uint32_t)(n >> 32);
        return;
    }
    bool f64 = it->g->floatx == KILN_DTYPE_F64;
    double a = as_real(it, r->attr.f[0]), b = as_real(it, r->attr.f[1]);
    for (int64_t i = 0; i < od->count; i++) {
        uint32_t w[4];
        kiln_philox(st, (uint64_t)it->step * (uint64_t)od->count + (uint64_t)i, r->attr.i[1], w);
        double u = kiln_philox_unit(w, 0, f64);
        switch ((enum kiln_random_kind)r->attr.i[0]) {
        case KILN_RANDOM_UNIFORM: y[i] = as_real(it, a + as_real(it, as_real(it, b - a) * u)); break;
        case KILN_RANDOM_NORMAL: { /* Box-Muller */
            double u2 = kiln_philox_unit(w, 1, f64);
            y[i] = a + b * (sqrt(-2 * log(1 - u)) * cos(6.283185307179586 * u2));
            break;
        }
        case KILN_RANDOM_BERNOULLI: y[i] = u < a; break;
        }
    }
}

/* ---- scans ------------------------------------------------------------------------- */

/* Set the value of an ARG leaf of a body's interpreter. */
static enum kiln_status set_arg(kiln_interp *sub, int32_t node, const double *src, int64_t n)
{
    if (sub->count[node] != n || !sub->val[node]) {
        free(sub->val[node]);
        if (!(sub->val[node] = malloc(((size_t)n + 1) * sizeof(double))))
            return kiln_err_set(&sub->err, KILN_ERR_NOMEM, "scan: no memory");
        sub->count[node] = n;
    }
    memcpy(sub->val[node], src, (size_t)n * sizeof *src);
    return KILN_OK;
}

static void free_results(kiln_interp *it, int32_t id)
{
    if (!it->results || !it->results[id])
        return;
    for (int k = 0; k < R(it, id)->n_out; k++)
        free(it->results[id][k]);
    free(it->results[id]);
    free(it->result_count[id]);
    it->results[id] = NULL;
    it->result_count[id] = NULL;
}

/* Run scan node id: its body, once per step, on a sub-interpreter (see
** graph.h's KILN_OP_SCAN for the inputs and results). */
static enum kiln_status eval_scan(kiln_interp *it, int32_t id)
{
    const kiln_node_rec *r = R(it, id);
    int bi = (int)r->attr.i[KILN_SCAN_BODY];
    int n_seq = (int)r->attr.i[KILN_SCAN_SEQ], n_state = (int)r->attr.i[KILN_SCAN_STATE];
    int n_ctx = (int)r->attr.i[KILN_SCAN_CTX], n_out = (int)r->attr.i[KILN_SCAN_OUT];
    int n_saved = (int)r->attr.i[KILN_SCAN_SAVED];
    bool reverse = r->attr.i[KILN_SCAN_REVERSE] != 0;
    uint64_t sums = (uint64_t)r->attr.i[KILN_SCAN_SUMS];
    const kiln_graph *body = it->g->bodies[bi];
    if (!it->subs[bi]) {
        kiln_interp_program prog = {.g = body, .cost = -1, .outputs = body->results, .n_outputs = body->n_results};
        if (kiln_interp_create(&prog, &it->subs[bi]) != KILN_OK)
            return fail_at(it, id, it->subs[bi] ? it->subs[bi]->err.status : KILN_ERR_NOMEM, "scan body: %s",
                           kiln_interp_errmsg(it->subs[bi]));
    }
    kiln_interp *sub = it->subs[bi];
    int32_t args[512];
    int n_args = n_seq + n_state + n_ctx;
    if (n_args > 512)
        return fail_at(it, id, KILN_ERR_UNSUPPORTED, "scan with %d arguments", n_args);
    for (int k = 0; k < n_args; k++)
        args[k] = -1;
    for (int32_t b = 0; b < body->n_nodes; b++)
        if (body->nodes[b].op == KILN_OP_ARG && body->nodes[b].attr.i[0] < n_args)
            args[body->nodes[b].attr.i[0]] = b;
    /* the results, zeroed (sums start at 0) */
    free_results(it, id);
    it->results[id] = calloc((size_t)r->n_out + 1, sizeof **it->results);
    it->result_count[id] = calloc((size_t)r->n_out + 1, sizeof **it->result_count);
    if (!it->results[id] || !it->result_count[id])
        return fail_at(it, id, KILN_ERR_NOMEM, "scan: no memory");
    for (int k = 0; k < r->n_out; k++) {
        dims d;
        if (!eval_shape(it, &r->outs[k].shape, &d))
            return fail_at(it, id, KILN_ERR_ARG, "scan result %d: a symbol without a size", k);
        it->result_count[id][k] = d.count;
        if (!(it->results[id][k] = calloc((size_t)d.count + 1, sizeof(double))))
            return fail_at(it, id, KILN_ERR_NOMEM, "scan: no memory");
    }
    int64_t T = node_dims(it, r->in[0]).d[0];
    double **cur = calloc((size_t)n_state + 1, sizeof *cur);
    int64_t *state_n = calloc((size_t)n_state + 1, sizeof *state_n);
    enum kiln_status st = cur && state_n ? KILN_OK : fail_at(it, id, KILN_ERR_NOMEM, "scan: no memory");
    for (int k = 0; !st && k < n_state; k++) {
        state_n[k] = it->count[r->in[n_seq + k]];
        if (!(cur[k] = malloc(((size_t)state_n[k] + 1) * sizeof(double))))
            st = fail_at(it, id, KILN_ERR_NOMEM, "scan: no memory");
        else
            memcpy(cur[k], it->val[r->in[n_seq + k]], (size_t)state_n[k] * sizeof(double));
    }
    for (int l = 0; !st && l < n_ctx; l++) /* contexts: once */
        if (args[n_seq + n_state + l] >= 0)
            st = set_arg(sub, args[n_seq + n_state + l], it->val[r->in[n_seq + n_state + l]],
                         it->count[r->in[n_seq + n_state + l]]);
    for (int64_t s = 0; !st && s < T; s++) {
        int64_t t = reverse ? T - 1 - s : s;
        for (int j = 0; !st && j < n_seq; j++) {
            int64_t per = it->count[r->in[j]] / (T ? T : 1);
            if (args[j] >= 0)
                st = set_arg(sub, args[j], it->val[r->in[j]] + t * per, per);
        }
        for (int k = 0; !st && k < n_state; k++) {
            memcpy(it->results[id][2 * n_state + n_out + k] + t * state_n[k], cur[k], (size_t)state_n[k] * sizeof(double));
            if (args[n_seq + k] >= 0)
                st = set_arg(sub, args[n_seq + k], cur[k], state_n[k]);
        }
        sub->step = it->step * T + t; /* a random draw at index step * count + i */
        if (st || (st = kiln_interp_run(sub, KILN_MODE_FORWARD, it->sizes)) != KILN_OK) {
            fail_at(it, id, st, "scan step %lld: %s", (long long)t, kiln_interp_errmsg(sub));
            break;
        }
        for (int k = 0; k < n_state; k++) {
            const double *v = sub->val[body->results[k]];
            memcpy(cur[k], v, (size_t)state_n[k] * sizeof(double));
            memcpy(it->results[id][k] + t * state_n[k], v, (size_t)state_n[k] * sizeof(double));
        }
        for (int v = 0; v < n_saved; v++) { /* the saved values, stacked */
            int32_t b = body->results[n_state + n_out + v];
            memcpy(it->results[id][3 * n_state + n_out + v] + t * sub->count[b], sub->val[b],
                   (size_t)sub->count[b] * sizeof(double));
        }
        for (int o = 0; o < n_out; o++) {
            int32_t b = body->results[n_state + o];
            double *dst = it->results[id][2 * n_state + o];
            if (sums >> o & 1)
                for (int64_t i = 0; i < sub->count[b]; i++)
                    dst[i] += sub->val[b][i];
            else
                memcpy(dst + t * sub->count[b], sub->val[b], (size_t)sub->count[b] * sizeof(double));
        }
    }
    for (int k = 0; !st && k < n_state; k++)
        memcpy(it->results[id][n_state + k], cur[k], (size_t)state_n[k] * sizeof(double));
    for (int k = 0; cur && k < n_state; k++)
        free(cur[k]);
    free(cur);
    free(state_n);
    return st;
}

/* ---- running ----------------------------------------------------------------------- */

static enum kiln_status eval_node(kiln_interp *it, int32_t id)
{
    const kiln_node_rec *r = R(it, id);
    if (r->op == KILN_OP_SCAN)
        return eval_scan(it, id);
    if (is_store_leaf(r) || r->n_out || r->op == KILN_OP_ARG) /* persistent, or set by the scan running the body */
        return KILN_OK;
    dims od = node_dims(it, id);
    free(it->val[id]);
    it->val[id] = malloc(((size_t)od.count + 1) * sizeof(double));
    it->count[id] = od.count;
    if (!it->val[id])
        return fail_at(it, id, KILN_ERR_NOMEM, "no memory for %lld values", (long long)od.count);
    double *y = it->val[id];
    switch (r->op) {
    case KILN_OP_INPUT:
        if (!it->bound[id])
            return fail_at(it, id, KILN_ERR_ARG, "input is not bound");
        for (int64_t i = 0; i < od.count; i++)
            y[i] = r->dtype == KILN_DTYPE_F32 ? ((const float *)it->bound[id])[i]
                 : r->dtype == KILN_DTYPE_F64 ? ((const double *)it->bound[id])[i]
                                              : ((const int32_t *)it->bound[id])[i];
        return KILN_OK;
    case KILN_OP_CONST:
        for (int64_t i = 0; i < od.count; i++)
            y[i] = r->attr.f[0];
        return KILN_OK;
    case KILN_OP_SYMBOL: {
        int k = kiln_dim_symbol(r->attr.i[0]);
        if (k < 0)
            return fail_at(it, id, KILN_ERR_ARG, "dim code %lld is not a symbol", (long long)r->attr.i[0]);
        y[0] = (double)it->sizes[k];
        return KILN_OK;
    }
    case KILN_OP_ONEHOT: eval_onehot(it, id, y, &od); return KILN_OK;
    case KILN_OP_SUM:
    case KILN_OP_MAX: eval_reduce(it, id, y, &od); return KILN_OK;
    case KILN_OP_MATMUL: eval_matmul(it, id, y, &od); return KILN_OK;
    case KILN_OP_TRANSPOSE: eval_transpose(it, id, y, &od); return KILN_OK;
    case KILN_OP_RESHAPE: memcpy(y, it->val[r->in[0]], (size_t)od.count * sizeof *y); return KILN_OK;
    case KILN_OP_SLICE:
    case KILN_OP_PAD:
    case KILN_OP_REVERSE:
    case KILN_OP_CONCAT: eval_axis(it, id, y, &od); return KILN_OK;
    case KILN_OP_PROJ:
        if (R(it, r->in[0])->op == KILN_OP_SCAN) { /* computed by the scan already */
            int k = (int)r->attr.i[0];
            if (!it->results[r->in[0]] || it->result_count[r->in[0]][k] != od.count)
                return fail_at(it, id, KILN_ERR_ARG, "scan result %d has %lld values, expected %lld", k,
                               it->results[r->in[0]] ? (long long)it->result_count[r->in[0]][k] : -1LL,
                               (long long)od.count);
            memcpy(y, it->results[r->in[0]][k], (size_t)od.count * sizeof *y);
            return KILN_OK;
        }
        if (R(it, r->in[0])->op != KILN_OP_SPLIT)
            return fail_at(it, id, KILN_ERR_UNSUPPORTED, "result of a %s node: no interpreter case",
                           kiln_op_info_of(R(it, r->in[0])->op)->name);
        eval_axis(it, id, y, &od);
        return KILN_OK;
    case KILN_OP_SOFTMAX:
    case KILN_OP_LOGSOFTMAX:
    case KILN_OP_ARGMAX:
    case KILN_OP_PICK:
    case KILN_OP_SOFTMAX_XENT: return eval_rows(it, id, y);
    case KILN_OP_GATHER:
    case KILN_OP_SCATTER_ADD: return eval_gather(it, id, y, &od);
    case KILN_OP_RANDOM:
    case KILN_OP_RNG_NEXT: eval_random(it, id, y, &od); return KILN_OK;
    default:
        if (kiln_op_is_elementwise(r->op))
            return eval_elementwise(it, id, y, &od);
        return fail_at(it, id, KILN_ERR_UNSUPPORTED, "op %d has no interpreter case", (int)r->op);
    }
}

/* need[] |= the ancestors of root (root included). */
static void mark(kiln_interp *it, int32_t root)
{
    if (root < 0 || it->need[root])
        return;
    it->need[root] = 1;
    for (int32_t id = root; id >= 0; id--)
        if (it->need[id])
            for (int k = 0; k < R(it, id)->n_in; k++)
                it->need[R(it, id)->in[k]] = 1;
}

/* The nodes and updates mode needs (see the top comment). */
static void plan_run(kiln_interp *it, enum kiln_mode mode)
{
    memset(it->need, 0, (size_t)it->n);
    if (mode == KILN_MODE_FORWARD)
        for (int i = 0; i < it->n_outputs; i++)
            mark(it, it->outputs[i]);
    if (mode != KILN_MODE_FORWARD) {
        mark(it, it->cost);
        for (int i = 0; i < it->n_monitors; i++)
            mark(it, it->monitors[i]);
    }
    if (mode == KILN_MODE_GRADIENTS || mode == KILN_MODE_TRAIN)
        for (int i = 0; i < it->n_grads; i++)
            mark(it, it->grads[i]);
    for (int u = 0; u < it->n_updates; u++) {
        it->running[u] = it->updates[u].train_only && mode == KILN_MODE_TRAIN;
        if (it->running[u])
            mark(it, it->updates[u].value);
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (int u = 0; u < it->n_updates; u++) {
            const kiln_plan_update *up = &it->updates[u];
            if (it->running[u] || up->train_only)
                continue;
            for (int32_t id = 0; id < it->n && !it->running[u]; id++)
                for (int k = 0; k < R(it, id)->n_in; k++)
                    if (it->need[id] && id != up->value && R(it, id)->in[k] == up->target)
                        it->running[u] = true;
            if (it->running[u]) {
                mark(it, up->value);
                changed = true;
            }
        }
    }
}

enum kiln_status kiln_interp_run(kiln_interp *it, enum kiln_mode mode, const int64_t *sizes)
{
    if (!it)
        return KILN_ERR_ARG;
    if (mode != KILN_MODE_FORWARD && mode != KILN_MODE_EVAL && mode != KILN_MODE_GRADIENTS && mode != KILN_MODE_TRAIN)
        return kiln_err_set(&it->err, KILN_ERR_ARG, "run: mode %d is not an entry point", (int)mode);
    if (mode != KILN_MODE_FORWARD && it->cost < 0)
        return kiln_err_set(&it->err, KILN_ERR_ARG, "run: this program has no cost");
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        it->sizes[k] = sizes ? sizes[k] : 0;
    kiln_err_clear(&it->err);
    memset(it->done, 0, (size_t)it->n);
    plan_run(it, mode);
    for (int32_t id = 0; id < it->n; id++) {
        dims d;
        char s[KILN_SHAPE_STR_MAX];
        if (it->need[id] && !R(it, id)->n_out && !eval_shape(it, &R(it, id)->shape, &d))
            return fail_at(it, id, KILN_ERR_ARG, "shape %s has a symbol without a size (sizes must be >= 1)",
                           kiln_shape_str(it->g, &R(it, id)->shape, s, sizeof s));
    }
    for (int32_t id = 0; id < it->n; id++) {
        enum kiln_status st = it->need[id] ? eval_node(it, id) : KILN_OK;
        if (st)
            return st;
        it->done[id] = it->need[id];
    }
    /* Updates: every value copied first, then every target assigned. */
    double **fresh = calloc((size_t)it->n_updates + 1, sizeof *fresh);
    enum kiln_status st = fresh ? KILN_OK : kiln_err_set(&it->err, KILN_ERR_NOMEM, "run: no memory");
    for (int u = 0; !st && u < it->n_updates; u++) {
        const kiln_plan_update *up = &it->updates[u];
        if (!it->running[u])
            continue;
        if (it->count[up->value] != it->count[up->target])
            st = fail_at(it, up->target, KILN_ERR_ARG, "update value (node %d) has %lld elements, the target %lld",
                         (int)up->value, (long long)it->count[up->value], (long long)it->count[up->target]);
        else if (!(fresh[u] = malloc(((size_t)it->count[up->value] + 1) * sizeof(double))))
            st = kiln_err_set(&it->err, KILN_ERR_NOMEM, "run: no memory");
        else
            memcpy(fresh[u], it->val[up->value], (size_t)it->count[up->value] * sizeof(double));
    }
    for (int u = 0; !st && u < it->n_updates; u++)
        if (fresh[u])
            memcpy(it->val[it->updates[u].target], fresh[u], (size_t)it->count[it->updates[u].target] * sizeof(double));
    for (int u = 0; fresh && u < it->n_updates; u++)
        free(fresh[u]);
    free(fresh);
    return st;
}

/* ---- making, reading ------------------------------------------------------------- */

static bool copy_ids(int32_t **dst, const int32_t *src, int n)
{
    *dst = malloc(((size_t)n + 1) * sizeof **dst);
    if (*dst && n)
        memcpy(*dst, src, (size_t)n * sizeof **dst);
    return *dst != NULL;
}

static bool valid(const kiln_interp *it, int32_t id) { return id >= 0 && id < it->n; }

enum kiln_status kiln_interp_create(const kiln_interp_program *prog, kiln_interp **out)
{
    kiln_interp *it = calloc(1, sizeof *it);
    *out = it;
    if (!it)
        return KILN_ERR_NOMEM;
    if (!prog || !prog->g)
        return kiln_err_set(&it->err, KILN_ERR_ARG, "interp: no program graph");
    it->g = prog->g;
    it->n = prog->g->n_nodes;
    it->cost = prog->cost;
    it->n_monitors = prog->n_monitors;
    it->n_outputs = prog->n_outputs;
    it->n_grads = prog->n_grads;
    it->n_updates = prog->n_updates;
    size_t n1 = (size_t)it->n + 1;
    it->updates = malloc(((size_t)prog->n_updates + 1) * sizeof *it->updates);
    it->bound = calloc(n1, sizeof *it->bound);
    it->val = calloc(n1, sizeof *it->val);
    it->count = calloc(n1, sizeof *it->count);
    it->need = calloc(n1, 1);
    it->done = calloc(n1, 1);
    it->running = calloc((size_t)prog->n_updates + 1, sizeof *it->running);
    it->subs = calloc((size_t)prog->g->n_bodies + 1, sizeof *it->subs);
    it->results = calloc(n1, sizeof *it->results);
    it->result_count = calloc(n1, sizeof *it->result_count);
    if (!copy_ids(&it->monitors, prog->monitors, prog->n_monitors) ||
        !copy_ids(&it->outputs, prog->outputs, prog->n_outputs) || !copy_ids(&it->grads, prog->grads, prog->n_grads) ||
        !it->updates || !it->bound || !it->val || !it->count || !it->need || !it->done ||
        !it->running || !it->subs || !it->results || !it->result_count)
        return kiln_err_set(&it->err, KILN_ERR_NOMEM, "interp: no memory for %d nodes", (int)it->n);
    if (prog->n_updates)
        memcpy(it->updates, prog->updates, (size_t)prog->n_updates * sizeof *it->updates);
    /* Every root and update names a node of the graph. */
    bool ok = it->cost == -1 || valid(it, it->cost);
    for (int i = 0; i < it->n_monitors; i++)
        ok &= valid(it, it->monitors[i]);
    for (int i = 0; i < it->n_outputs; i++)
        ok &= valid(it, it->outputs[i]);
    for (int i = 0; i < it->n_grads; i++)
        ok &= it->grads[i] == -1 || valid(it, it->grads[i]);
    for (int u = 0; u < it->n_updates; u++)
        ok &= valid(it, it->updates[u].target) && valid(it, it->updates[u].value) &&
              is_store_leaf(R(it, it->updates[u].target));
    if (!ok)
        return kiln_err_set(&it->err, KILN_ERR_ARG, "interp: a root or an update is not a node of the graph");
    /* Parameters and states: their own copies of the store's values. */
    for (int32_t id = 0; id < it->n; id++) {
        const kiln_node_rec *r = R(it, id);
        char where[KILN_MAX_NAME + 64];
        if (!is_store_leaf(r))
            continue;
        const double *v = kiln_param_data(r->param);
        int64_t n = kiln_shape_const_size(it->g, &r->shape);
        if (!v)
            return kiln_err_set(&it->err, KILN_ERR_STATE, "%s: the store entry has no values",
                                label(it, id, where, sizeof where));
        if (!(it->val[id] = malloc(((size_t)n + 1) * sizeof(double))))
            return kiln_err_set(&it->err, KILN_ERR_NOMEM, "interp: no memory");
        memcpy(it->val[id], v, (size_t)n * sizeof(double));
        it->count[id] = n;
    }
    return KILN_OK;
}

void kiln_interp_destroy(kiln_interp *it)
{
    if (!it)
        return;
    for (int32_t id = 0; it->val && id < it->n; id++)
        free(it->val[id]);
    for (int32_t id = 0; it->results && id < it->n; id++)
        free_results(it, id);
    for (int32_t b = 0; it->subs && b < it->g->n_bodies; b++)
        kiln_interp_destroy(it->subs[b]);
    free(it->subs);
    free(it->results);
    free(it->result_count);
    free(it->val);
    free(it->count);
    free(it->bound);
    free(it->need);
    free(it->done);
    free(it->running);
    free(it->updates);
    free(it->monitors);
    free(it->outputs);
    free(it->grads);
    free(it);
}

const char *kiln_interp_errmsg(const kiln_interp *it)
{
    if (!it)
        return "out of memory";
    return it->err.status == KILN_OK ? "ok" : it->err.msg;
}

enum kiln_status kiln_interp_bind_input(kiln_interp *it, int32_t node, const void *data)
{
    if (!it)
        return KILN_ERR_ARG;
    if (!valid(it, node) || R(it, node)->op != KILN_OP_INPUT || !data)
        return kiln_err_set(&it->err, KILN_ERR_ARG, "bind: node %d is not an input, or the data is NULL", (int)node);
    it->bound[node] = data;
    return KILN_OK;
}

int64_t kiln_interp_count(const kiln_interp *it, int32_t node)
{
    if (!it || !valid(it, node) || !it->val[node])
        return -1;
    return it->count[node];
}

enum kiln_status kiln_interp_read(kiln_interp *it, int32_t node, double *dst, int64_t count)
{
    if (!it)
        return KILN_ERR_ARG;
    char where[KILN_MAX_NAME + 64];
    if (!valid(it, node))
        return kiln_err_set(&it->err, KILN_ERR_ARG, "read: node %d is not a node of the graph", (int)node);
    if (!it->val[node] || (!is_store_leaf(R(it, node)) && !it->done[node]))
        return kiln_err_set(&it->err, KILN_ERR_STATE, "read: %s was not computed by the last run",
                            label(it, node, where, sizeof where));
    if (count != it->count[node] || (!dst && count))
        return kiln_err_set(&it->err, KILN_ERR_ARG, "read: %s has %lld elements, asked for %lld",
                            label(it, node, where, sizeof where), (long long)it->count[node], (long long)count);
    memcpy(dst, it->val[node], (size_t)count * sizeof *dst);
    return KILN_OK;
}

enum kiln_status kiln_interp_set_leaf(kiln_interp *it, int32_t node, const double *src, int64_t count)
{
    if (!it)
        return KILN_ERR_ARG;
    char where[KILN_MAX_NAME + 64];
    if (!valid(it, node) || !is_store_leaf(R(it, node)))
        return kiln_err_set(&it->err, KILN_ERR_ARG, "set: node %d is not a parameter or state", (int)node);
    if (count != it->count[node] || (!src && count))
        return kiln_err_set(&it->err, KILN_ERR_ARG, "set: %s has %lld elements, given %lld",
                            label(it, node, where, sizeof where), (long long)it->count[node], (long long)count);
    memcpy(it->val[node], src, (size_t)count * sizeof *src);
    return KILN_OK;
}
