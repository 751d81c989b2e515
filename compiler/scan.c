/* scan.c: recurrences in the IR (Theano's scan).
**
** A scan node runs a body graph once per step t along axis 0 (T) of its
** sequences. The body is a graph of its own, owned by the scan's graph
** (g->bodies), built like any graph by the expression builders: its leaves
** are ARG nodes for, in order, the sequences' slices at t, the states at
** t-1 and the contexts; its results (body->results) are the states at t
** and the per-step outputs. graph.h (KILN_OP_SCAN) lists the scan's own
** results: states stacked over T, final states, outputs stacked or summed,
** and the states at t-1 stacked over T, which the gradient reads.
**
** Building (kiln_expr_scan): the caller's step function builds one step on
** a fresh body whose ARG leaves it is handed. Parameters and states the
** step reads (store leaves of the body) become contexts of the scan: the
** body is copied with each such leaf replaced by one more ARG, and the
** scan gets the outer graph's leaf of the same store entry as that input.
** So every value the body reads comes in through the scan's inputs, and
** the gradient of a parameter used at every step is the gradient of a
** context: a sum over the steps, computed like any other.
**
** The gradient (kiln_scan_gradient, called by autodiff.c) is a reverse
** scan built by the same autodiff: its body recomputes the forward step
** from the saved states at t-1 and the saved values (the step's matmuls
** and transcendentals, extra "saved" results of the forward scan), seeds the states at t with
** their adjoint (the stacked states' adjoint at t plus the carry from step
** t+1) and the outputs with theirs, and differentiates the step with
** kiln_vjp; then the products' values are read from the saved ones and the
** products go. It carries the states' adjoints backwards, stacks the
** sequences' adjoints and sums the contexts' (a context's x^T d terms
** hoisted into one product over all T*B rows after the loop).
** docs/architecture.md says what is saved and what recomputed, and why.
**
** Bodies are copied with their graph: kiln_rebuild rebuilds a scan's body
** into a program graph of its own (rewrites, CSE, dead code removed), and a
** graph transform copies it as it is (kiln_scan_copy_body). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/graph.h"
#include "compiler/passes.h"

#define MAX_SCAN_ARGS 256
#define MAX_SAVED 32

static const kiln_node_rec *R(const kiln_graph *g, int32_t id) { return kiln_graph_cnode(g, id); }

/* Register body in g (g takes it); its index, or -1 with the error on g. */
static int32_t adopt_body(kiln_graph *g, kiln_graph *body)
{
    if (g->n_bodies == g->cap_bodies) {
        int32_t cap = g->cap_bodies ? g->cap_bodies * 2 : 4;
        kiln_graph **b = realloc(g->bodies, (size_t)cap * sizeof *b);
        if (!b) {
            kiln_graph_destroy(body);
            kiln_graph_fail(g, KILN_ERR_NOMEM, "scan: no memory for a body");
            return -1;
        }
        g->bodies = b;
        g->cap_bodies = cap;
    }
    g->bodies[g->n_bodies] = body;
    return g->n_bodies++;
}

static bool set_results(kiln_graph *body, const int32_t *res, int n)
{
    int32_t *r = malloc(sizeof *r * ((size_t)n + 1));
    if (!r)
        return false;
    memcpy(r, res, sizeof *r * (size_t)n);
    free(body->results);
    body->results = r;
    body->n_results = n;
    return true;
}

/* Dim codes mean something only in their graph: s, a shape of src, made a
** shape of dst (symbols keep their codes; products are looked up or made). */
static bool tr_shape(kiln_graph *dst, const kiln_graph *src, kiln_shape *s)
{
    for (int i = 0; i < s->rank; i++) {
        kiln_mono m;
        if (s->dims[i] > 0 || kiln_dim_symbol(s->dims[i]) >= 0)
            continue;
        if (!kiln_dim_mono(src, s->dims[i], &m) || !(s->dims[i] = kiln_graph_dim_code(dst, &m)))
            return false;
    }
    return true;
}

/* rec (a node of src) with its shapes made dst's; outs copied to buf. */
static bool tr_rec(kiln_graph *dst, const kiln_graph *src, kiln_node_rec *rec, kiln_value_type *buf)
{
    if (!tr_shape(dst, src, &rec->shape))
        return false;
    if (rec->n_out) {
        memcpy(buf, rec->outs, sizeof *buf * (size_t)rec->n_out);
        for (int k = 0; k < rec->n_out; k++)
            if (!tr_shape(dst, src, &buf[k].shape))
                return false;
        rec->outs = buf;
    }
    return true;
}

/* A fresh body graph for g: g's float type, dims and symbols. */
static kiln_graph *new_body(const kiln_graph *g, bool program)
{
    kiln_graph *b = program ? kiln_graph_create_program(g->floatx) : kiln_graph_create(g->floatx);
    if (b && !kiln_graph_copy_dims(b, g)) {
        kiln_graph_destroy(b);
        return NULL;
    }
    return b;
}

/* An ARG leaf of index k with dtype t, shape s and a name. */
static kiln_node add_arg(kiln_graph *body, int k, enum kiln_dtype t, const kiln_shape *s, const char *name)
{
    kiln_node_rec rec = kiln_rec(KILN_OP_ARG, t, 0, NULL);
    rec.attr.i[0] = k;
    rec.shape = *s;
    rec.name = name;
    return (kiln_node){kiln_graph_add_raw(body, &rec)};
}

/* The scan's result types from its inputs and body (graph.h's order). */
static bool result_types(kiln_graph *g, const kiln_graph *body, const int32_t *in, int n_seq, int n_state, int n_out,
                         int n_saved, uint64_t sums, kiln_value_type *outs)
{
    int64_t T = R(g, in[0])->shape.dims[0];
    int k = 0;
    for (int pass = 0; pass < 2; pass++) /* stacked states, then final states */
        for (int s = 0; s < n_state; s++) {
            const kiln_node_rec *rs = R(body, body->results[s]);
            outs[k].dtype = rs->dtype;
            outs[k].shape = rs->shape;
            if (pass == 0) {
                if (rs->shape.rank + 1 > KILN_MAX_RANK)
                    return false;
                memmove(outs[k].shape.dims + 1, outs[k].shape.dims, sizeof(int64_t) * (size_t)rs->shape.rank);
                outs[k].shape.dims[0] = T;
                outs[k].shape.rank++;
            }
            k++;
        }
    for (int o = 0; o < n_out; o++) {
        const kiln_node_rec *ro = R(body, body->results[n_state + o]);
        outs[k].dtype = ro->dtype;
        outs[k].shape = ro->shape;
        if (!(sums >> o & 1)) {
            if (ro->shape.rank + 1 > KILN_MAX_RANK)
                return false;
            memmove(outs[k].shape.dims + 1, outs[k].shape.dims, sizeof(int64_t) * (size_t)ro->shape.rank);
            outs[k].shape.dims[0] = T;
            outs[k].shape.rank++;
        }
        k++;
    }
    for (int s = 0; s < n_state; s++) /* the states at t-1, stacked */
        outs[k++] = outs[s];
    for (int v = 0; v < n_saved; v++) { /* the saved values, stacked */
        const kiln_node_rec *rv = R(body, body->results[n_state + n_out + v]);
        if (rv->shape.rank + 1 > KILN_MAX_RANK)
            return false;
        outs[k].dtype = rv->dtype;
        outs[k].shape = rv->shape;
        memmove(outs[k].shape.dims + 1, outs[k].shape.dims, sizeof(int64_t) * (size_t)rv->shape.rank);
        outs[k].shape.dims[0] = T;
        outs[k].shape.rank++;
        k++;
    }
    for (int j = 0; j < k; j++) /* T is g's; the rest was the body's */
        for (int i = 0; i < outs[j].shape.rank; i++)
            if (outs[j].shape.dims[i] < 0 && outs[j].shape.dims[i] != T) {
                kiln_shape one = {.rank = 1, .dims = {outs[j].shape.dims[i]}};
                if (!tr_shape(g, body, &one))
                    return false;
                outs[j].shape.dims[i] = one.dims[0];
            }
    (void)n_seq;
    return true;
}

int32_t kiln_scan_add(kiln_graph *g, kiln_graph *body, int n_seq, int n_state, int n_ctx, int n_out, int n_saved,
                      bool reverse, uint64_t sums, const int32_t *inputs)
{
    int n_res = 3 * n_state + n_out + n_saved;
    kiln_value_type *outs = malloc(sizeof *outs * ((size_t)n_res + 1));
    if (!outs) {
        kiln_graph_destroy(body);
        kiln_graph_fail(g, KILN_ERR_NOMEM, "scan: no memory");
        return -1;
    }
    if (!result_types(g, body, inputs, n_seq, n_state, n_out, n_saved, sums, outs)) {
        free(outs);
        kiln_graph_destroy(body);
        kiln_graph_fail(g, KILN_ERR_SHAPE, "scan: a state or output stacked over T would have more than %d axes",
                        KILN_MAX_RANK);
        return -1;
    }
    int32_t bi = adopt_body(g, body);
    if (bi < 0) {
        free(outs);
        return -1;
    }
    kiln_node_rec rec = kiln_rec(KILN_OP_SCAN, g->floatx, n_seq + n_state + n_ctx, inputs);
    rec.n_out = n_res;
    rec.outs = outs;
    rec.attr.i[KILN_SCAN_BODY] = bi;
    rec.attr.i[KILN_SCAN_SEQ] = n_seq;
    rec.attr.i[KILN_SCAN_STATE] = n_state;
    rec.attr.i[KILN_SCAN_CTX] = n_ctx;
    rec.attr.i[KILN_SCAN_OUT] = n_out;
    rec.attr.i[KILN_SCAN_REVERSE] = reverse;
    rec.attr.i[KILN_SCAN_SUMS] = (int64_t)sums;
    rec.attr.i[KILN_SCAN_SAVED] = n_saved;
    int32_t id = kiln_graph_add(g, &rec);
    free(outs);
    return id;
}

/* Copy body into a new graph (a program graph when program: rewrites, CSE
** and only what the results need), replacing node id by repl[id] >= 0
** (an ARG made in the new graph) where given. NULL on OOM. */
static kiln_graph *copy_body(const kiln_graph *src, bool program, const int32_t *repl, int32_t *map)
{
    kiln_graph *dst = new_body(src, program);
    unsigned char *live = calloc((size_t)src->n_nodes + 1, 1);
    int32_t in[MAX_SCAN_ARGS];
    if (!dst || !live) {
        kiln_graph_destroy(dst);
        free(live);
        return NULL;
    }
    for (int i = 0; i < src->n_results; i++)
        live[src->results[i]] = 1;
    for (int32_t id = src->n_nodes - 1; id >= 0; id--)
        if (live[id] || !program)
            for (int k = 0; k < src->nodes[id].n_in; k++)
                live[src->nodes[id].in[k]] = 1;
    for (int32_t id = 0; id < src->n_nodes; id++) {
        map[id] = -1;
        if (program && !live[id])
            continue;
        kiln_node_rec rec = src->nodes[id];
        kiln_value_type obuf[MAX_SCAN_ARGS];
        if (rec.n_out > MAX_SCAN_ARGS || !tr_rec(dst, src, &rec, obuf))
            goto fail;
        if (repl && repl[id] >= 0) { /* a store leaf becomes an ARG */
            kiln_node a = add_arg(dst, (int)repl[id], rec.dtype, &rec.shape, rec.name);
            map[id] = a.id;
        } else {
            if (rec.n_in > MAX_SCAN_ARGS)
                goto fail;
            for (int k = 0; k < rec.n_in; k++)
                in[k] = map[rec.in[k]];
            rec.in = in;
            if (rec.op == KILN_OP_SCAN) { /* a nested scan brings its own body */
                int32_t bi = kiln_scan_copy_body(dst, src, (int32_t)rec.attr.i[KILN_SCAN_BODY], program);
                if (bi < 0)
                    goto fail;
                rec.attr.i[KILN_SCAN_BODY] = bi;
            }
            map[id] = program ? kiln_graph_add(dst, &rec) : kiln_graph_add_raw(dst, &rec);
        }
        if (map[id] < 0 || dst->err.status)
            goto fail;
    }
    int32_t res[MAX_SCAN_ARGS];
    if (src->n_results > MAX_SCAN_ARGS)
        goto fail;
    for (int i = 0; i < src->n_results; i++)
        res[i] = map[src->results[i]];
    if (!set_results(dst, res, src->n_results))
        goto fail;
    free(live);
    return dst;
fail:
    free(live);
    kiln_graph_destroy(dst);
    return NULL;
}

int32_t kiln_scan_copy_body(kiln_graph *dst, const kiln_graph *src, int32_t body, bool program)
{
    const kiln_graph *b = src->bodies[body];
    int32_t *map = malloc(sizeof *map * ((size_t)b->n_nodes + 1));
    kiln_graph *copy = map ? copy_body(b, program, NULL, map) : NULL;
    free(map);
    if (!copy) {
        kiln_graph_fail(dst, KILN_ERR_NOMEM, "scan: no memory to copy a body of %d nodes", (int)b->n_nodes);
        return -1;
    }
    return adopt_body(dst, copy);
}

/* ---- building ------------------------------------------------------------ */

/* What the gradient's step reads from the forward step rather than compute
** again: products (most of a step's work) and the transcendental functions
** (an exp is tens of cycles; their gradient rules read their outputs). */
static bool worth_saving(const kiln_node_rec *r)
{
    switch (r->op) {
    case KILN_OP_MATMUL:
    case KILN_OP_EXP:
    case KILN_OP_LOG:
    case KILN_OP_TANH:
    case KILN_OP_SIGMOID:
    case KILN_OP_SOFTPLUS: return true;
    default: return false;
    }
}

/* Random nodes of a body (and of the bodies in it) take streams of g, so
** that no draw of the body is a draw of g's own nodes (a body's states may
** share g's seeds). The body's draws also depend on the step (interp.c,
** emit_c.c: element i of a step s draws at index s * count + i). */
static void renumber_streams(kiln_graph *g, kiln_graph *body)
{
    for (int32_t id = 0; id < body->n_nodes; id++)
        if (body->nodes[id].op == KILN_OP_RANDOM)
            body->nodes[id].attr.i[1] = g->n_streams++;
    for (int b = 0; b < body->n_bodies; b++)
        renumber_streams(g, body->bodies[b]);
}

kiln_node kiln_expr_scan(kiln_graph *g, const kiln_scan_spec *spec, const kiln_node *sequences,
                         const kiln_node *initial_states, const kiln_node *contexts, kiln_scan_step_fn step,
                         void *user)
{
    if (!g)
        return KILN_NODE_NONE;
    const char *null = !spec ? "spec" : !step ? "step" : !sequences ? "sequences"
                     : spec->n_states && !initial_states ? "initial_states"
                     : spec->n_contexts && !contexts ? "contexts" : NULL;
    if (null)
        return kiln_graph_fail(g, KILN_ERR_ARG, "scan: %s is NULL", null);
    if (spec->n_sequences < 1 || spec->n_states < 0 || spec->n_contexts < 0 || spec->n_outputs < 0 ||
        spec->n_states + spec->n_outputs < 1 || (spec->n_states && !initial_states) ||
        (spec->n_contexts && !contexts) || !sequences ||
        spec->n_sequences + spec->n_states + spec->n_contexts > MAX_SCAN_ARGS / 2 || spec->n_outputs > 64)
        return kiln_graph_fail(g, KILN_ERR_ARG,
                               "scan: needs a step function, at least one sequence, and at most %d arguments",
                               MAX_SCAN_ARGS / 2);
    int n_seq = spec->n_sequences, n_state = spec->n_states, n_ctx = spec->n_contexts, n_out = spec->n_outputs;
    int n_args = n_seq + n_state + n_ctx;
    int32_t ids[MAX_SCAN_ARGS];
    char sa[KILN_SHAPE_STR_MAX], sb[KILN_SHAPE_STR_MAX];
    /* 1. The inputs: sequences share their first axis, T. */
    for (int k = 0; k < n_args; k++) {
        kiln_node n = k < n_seq ? sequences[k] : k < n_seq + n_state ? initial_states[k - n_seq]
                                                                     : contexts[k - n_seq - n_state];
        if (!kiln_graph_check(g, n, "scan"))
            return KILN_NODE_NONE;
        ids[k] = n.id;
        const kiln_node_rec *r = R(g, n.id);
        if (k < n_seq && (r->shape.rank < 1 || r->shape.dims[0] != R(g, ids[0])->shape.dims[0]))
            return kiln_graph_fail(g, KILN_ERR_SHAPE,
                                   "scan: sequence %d is %s, sequence 0 %s: sequences need one first axis (T)", k,
                                   kiln_shape_str(g, &r->shape, sa, sizeof sa),
                                   kiln_shape_str(g, &R(g, ids[0])->shape, sb, sizeof sb));
    }
    /* 2. A body with an ARG per step argument, and the caller's step. */
    kiln_graph *body = new_body(g, false);
    kiln_node args[MAX_SCAN_ARGS], res[MAX_SCAN_ARGS];
    if (!body)
        return kiln_graph_fail(g, KILN_ERR_NOMEM, "scan: no memory for a body");
    for (int k = 0; k < n_args; k++) {
        const kiln_node_rec *r = R(g, ids[k]);
        kiln_shape s = r->shape;
        if (k < n_seq) { /* the slice at t */
            memmove(s.dims, s.dims + 1, sizeof(int64_t) * (size_t)(s.rank - 1));
            s.rank--;
        }
        args[k] = add_arg(body, k, r->dtype, &s, r->name);
    }
    for (int k = 0; k < n_state + n_out; k++)
        res[k] = KILN_NODE_NONE;
    enum kiln_status st = step(body, args, res, user);
    if (st != KILN_OK || body->err.status) {
        kiln_graph_fail(g, st ? st : body->err.status, "scan step: %s",
                        body->err.status ? body->err.msg : "the step function failed");
        kiln_graph_destroy(body);
        return KILN_NODE_NONE;
    }
    /* 3. Check the step: new states like the old, every result a node. */
    for (int k = 0; k < n_state + n_out; k++) {
        if (!kiln_node_ok(res[k]) || res[k].id >= body->n_nodes || body->nodes[res[k].id].n_out) {
            kiln_graph_destroy(body);
            return kiln_graph_fail(g, KILN_ERR_ARG, "scan step: result %d is not a node of the body", k);
        }
        if (k < n_state) {
            const kiln_node_rec *a = R(body, args[n_seq + k].id), *b = R(body, res[k].id);
            if (a->dtype != b->dtype || !kiln_shape_equal(&a->shape, &b->shape)) {
                kiln_graph_fail(g, KILN_ERR_SHAPE, "scan step: state %d is %s %s but its new value is %s %s", k,
                                kiln_dtype_name(a->dtype), kiln_shape_str(body, &a->shape, sa, sizeof sa),
                                kiln_dtype_name(b->dtype), kiln_shape_str(body, &b->shape, sb, sizeof sb));
                kiln_graph_destroy(body);
                return KILN_NODE_NONE;
            }
        }
    }
    /* ... and every state read by the step: a value the step computes
    ** without its last value is an output, not a state */
    for (int k = 0; k < n_state; k++) {
        int32_t a = args[n_seq + k].id;
        bool read = false;
        for (int32_t id = a + 1; id < body->n_nodes && !read; id++)
            for (int i = 0; i < body->nodes[id].n_in; i++)
                read |= body->nodes[id].in[i] == a;
        for (int q = 0; q < n_state + n_out; q++)
            read |= res[q].id == a;
        if (!read) {
            const char *nm = R(g, ids[n_seq + k])->name;
            kiln_graph_destroy(body);
            return kiln_graph_fail(g, KILN_ERR_ARG,
                                   "scan step: state %d%s%s%s is never read by the step (a value computed without "
                                   "its last value is an output, not a state)",
                                   k, nm ? " ('" : "", nm ? nm : "", nm ? "')" : "");
        }
    }
    /* 4. Store leaves the step read become contexts (ARGs n_args..). */
    int32_t *repl = malloc(sizeof *repl * ((size_t)body->n_nodes + 1));
    int32_t *map = malloc(sizeof *map * ((size_t)body->n_nodes + 1));
    int n_captured = 0;
    if (!repl || !map) {
        free(repl);
        free(map);
        kiln_graph_destroy(body);
        return kiln_graph_fail(g, KILN_ERR_NOMEM, "scan: no memory");
    }
    for (int32_t id = 0; id < body->n_nodes; id++) {
        const kiln_node_rec *r = R(body, id);
        repl[id] = -1;
        if (r->op == KILN_OP_INPUT) {
            kiln_graph_fail(g, KILN_ERR_UNSUPPORTED,
                            "scan step: input '%s' made in the body: pass it as a sequence or a context",
                            r->name ? r->name : "?");
            free(repl);
            free(map);
            kiln_graph_destroy(body);
            return KILN_NODE_NONE;
        }
        if ((r->op == KILN_OP_PARAM || r->op == KILN_OP_STATE) && n_args + n_captured < MAX_SCAN_ARGS) {
            /* a random state is a context too, advanced by the outer graph */
            bool random = r->op == KILN_OP_STATE && (kiln_param_roles(r->param) & KILN_ROLE_RANDOM_STATE);
            kiln_node outer = random ? kiln_graph_random_leaf(g, r->param) : kiln_graph_store_leaf(g, r->param);
            if (!kiln_node_ok(outer))
                break;
            repl[id] = n_args + n_captured;
            ids[n_args + n_captured++] = outer.id;
        }
    }
    int32_t results[MAX_SCAN_ARGS];
    for (int k = 0; k < n_state + n_out; k++)
        results[k] = res[k].id;
    set_results(body, results, n_state + n_out);
    kiln_graph *final = g->err.status ? NULL : copy_body(body, false, repl, map);
    free(repl);
    free(map);
    kiln_graph_destroy(body);
    if (!final)
        return g->err.status ? KILN_NODE_NONE : kiln_graph_fail(g, KILN_ERR_NOMEM, "scan: no memory for the body");
    renumber_streams(g, final);
    /* 5. What the gradient's step will read rather than compute again: the
    ** step's float products (a product per step is most of its work; the
    ** elementwise rest is recomputed from them), saved as extra results
    ** after the outputs. A program without the gradient reads none of
    ** them, and the scan then keeps none (codegen keeps only results read). */
    int n_saved = 0;
    int32_t saved[MAX_SAVED];
    for (int32_t id = 0; id < final->n_nodes && n_saved < MAX_SAVED; id++)
        if (worth_saving(&final->nodes[id]) && final->nodes[id].dtype == final->floatx)
            saved[n_saved++] = id;
    if (n_saved) {
        int32_t all[MAX_SCAN_ARGS];
        if (n_state + n_out + n_saved > MAX_SCAN_ARGS)
            n_saved = 0;
        memcpy(all, final->results, sizeof *all * (size_t)(n_state + n_out));
        memcpy(all + n_state + n_out, saved, sizeof *all * (size_t)n_saved);
        if (!set_results(final, all, n_state + n_out + n_saved)) {
            kiln_graph_destroy(final);
            return kiln_graph_fail(g, KILN_ERR_NOMEM, "scan: no memory");
        }
    }
    /* 6. The scan node. */
    uint64_t sums = 0;
    for (int o = 0; o < n_out && o < 64; o++)
        if (spec->sum_outputs >> o & 1)
            sums |= (uint64_t)1 << o;
    int32_t id = kiln_scan_add(g, final, n_seq, n_state, n_ctx + n_captured, n_out, n_saved, spec->reverse, sums, ids);
    return (kiln_node){id < 0 ? -1 : id};
}

/* ---- the gradient: a reverse scan ----------------------------------------- */

/* Zeros of a shape in g. s is copied first: it may point into the node
** array, which adding the constant can move. */
static kiln_node zeros(kiln_graph *g, const kiln_shape *s)
{
    const kiln_shape shape = *s;
    return kiln_expr_broadcast_to(g, kiln_expr_constant(g, 0.0), &shape);
}

/* The terms of node id read as a sum (an add tree of same-shape nodes). */
static int sum_terms(const kiln_graph *b, int32_t id, int32_t *out, int n, int cap)
{
    const kiln_node_rec *r = R(b, id);
    if (r->op == KILN_OP_ADD && n + 2 <= cap && kiln_shape_equal(&R(b, r->in[0])->shape, &r->shape) &&
        kiln_shape_equal(&R(b, r->in[1])->shape, &r->shape)) {
        n = sum_terms(b, r->in[0], out, n, cap);
        return sum_terms(b, r->in[1], out, n, cap);
    }
    if (n < cap)
        out[n++] = id;
    return n;
}

/* A term x^T d of rank-2 values with the same rows: the product over a
** step's batch rows that a context's adjoint sums over the steps. */
static bool rows_product(const kiln_graph *b, int32_t id)
{
    const kiln_node_rec *r = R(b, id);
    return r->op == KILN_OP_MATMUL && kiln_attr_trans_a(r) && !kiln_attr_trans_b(r) && r->shape.rank == 2 &&
           R(b, r->in[0])->shape.rank == 2 && R(b, r->in[1])->shape.rank == 2;
}

#define MAX_HOISTED 32

enum kiln_status kiln_scan_gradient(kiln_graph *g, int32_t id, const int32_t *res_adj, const unsigned char *need,
                                    int32_t *in_adj)
{
    const kiln_node_rec fr = *R(g, id); /* copy: builders grow the array */
    int n_seq = (int)fr.attr.i[KILN_SCAN_SEQ], n_state = (int)fr.attr.i[KILN_SCAN_STATE];
    int n_ctx = (int)fr.attr.i[KILN_SCAN_CTX], n_out = (int)fr.attr.i[KILN_SCAN_OUT];
    uint64_t sums = (uint64_t)fr.attr.i[KILN_SCAN_SUMS];
    const kiln_graph *fb = g->bodies[fr.attr.i[KILN_SCAN_BODY]];
    int n_args = n_seq + n_state + n_ctx;
    for (int k = 0; k < n_args; k++)
        in_adj[k] = -1;
    /* Which adjoints exist: stacked states (gS), final states (gF), outputs
    ** (gO), states at t-1 (gP). Absent ones are left out, not zero-filled. */
    const int32_t *gS = res_adj, *gF = res_adj + n_state, *gO = res_adj + 2 * n_state,
                  *gP = res_adj + 2 * n_state + n_out;
    /* The backward scan's arguments, in order:
    **   sequences: x_j (n_seq), P_k the states at t-1 (n_state), then the
    **     present gS_k, stacked gO_m and gP_k;
    **   states: the carries (n_state), from gF_k or zeros;
    **   contexts: c_l (n_ctx), then the present summed gO_m. */
    int32_t bin[MAX_SCAN_ARGS];
    int nb = 0;
    int slot_gS[64], slot_gO[64], slot_gP[64];
    int n_sv = (int)fr.attr.i[KILN_SCAN_SAVED], slot_sv[MAX_SAVED];
    if (n_seq + 3 * n_state + n_out + n_sv + n_ctx + n_state > MAX_SCAN_ARGS || n_state > 64 || n_out > 64 ||
        n_sv > MAX_SAVED)
        return kiln_err_set(&g->err, KILN_ERR_UNSUPPORTED, "scan gradient: too many arguments");
    for (int j = 0; j < n_seq; j++)
        bin[nb++] = fr.in[j];
    int32_t prev_proj[64];
    for (int k = 0; k < n_state; k++) {
        prev_proj[k] = kiln_expr_result(g, (kiln_node){id}, 2 * n_state + n_out + k).id;
        bin[nb++] = prev_proj[k];
    }
    for (int k = 0; k < n_state; k++)
        slot_gS[k] = gS[k] >= 0 ? (bin[nb] = gS[k], nb++) : -1;
    for (int m = 0; m < n_out; m++)
        slot_gO[m] = gO[m] >= 0 && !(sums >> m & 1) ? (bin[nb] = gO[m], nb++) : -1;
    for (int k = 0; k < n_state; k++)
        slot_gP[k] = gP[k] >= 0 ? (bin[nb] = gP[k], nb++) : -1;
    for (int v = 0; v < n_sv; v++) { /* the saved products, stacked */
        slot_sv[v] = nb;
        bin[nb++] = kiln_expr_result(g, (kiln_node){id}, 3 * n_state + n_out + v).id;
    }
    int n_bseq = nb;
    for (int k = 0; k < n_state; k++) { /* carries start from the final states' adjoints */
        const kiln_shape *s = &R(g, fr.in[n_seq + k])->shape;
        bin[nb++] = gF[k] >= 0 ? gF[k] : zeros(g, s).id;
    }
    for (int l = 0; l < n_ctx; l++)
        bin[nb++] = fr.in[n_seq + n_state + l];
    int n_bctx = n_ctx;
    for (int m = 0; m < n_out; m++)
        if (gO[m] >= 0 && (sums >> m & 1)) {
            slot_gO[m] = nb;
            bin[nb++] = gO[m];
            n_bctx++;
        }
    if (g->err.status)
        return g->err.status;

    /* The backward body: ARGs for bin, the forward step recomputed, seeds,
    ** then the step's vector-Jacobian product. */
    kiln_graph *bb = new_body(g, true);
    int32_t *map = bb ? malloc(sizeof *map * ((size_t)fb->n_nodes + 1)) : NULL;
    if (!map) {
        kiln_graph_destroy(bb);
        return kiln_err_set(&g->err, KILN_ERR_NOMEM, "scan gradient: no memory");
    }
    kiln_node barg[MAX_SCAN_ARGS];
    for (int k = 0; k < nb; k++) {
        const kiln_node_rec *r = R(g, bin[k]);
        kiln_shape s = r->shape;
        if (k < n_bseq) {
            memmove(s.dims, s.dims + 1, sizeof(int64_t) * (size_t)(s.rank - 1));
            s.rank--;
        }
        bool saved = false; /* a saved product's ARG replaces it after the gradient is built */
        for (int v = 0; v < n_sv; v++)
            saved |= slot_sv[v] == k;
        barg[k] = saved ? KILN_NODE_NONE : add_arg(bb, k, r->dtype, &s, NULL);
    }
    /* forward ARG a -> the backward ARG holding its value at t */
    for (int32_t fid = 0; fid < fb->n_nodes; fid++) {
        kiln_node_rec rec = fb->nodes[fid];
        int32_t in[MAX_SCAN_ARGS];
        kiln_value_type obuf[MAX_SCAN_ARGS];
        if (rec.n_out > MAX_SCAN_ARGS || !tr_rec(bb, fb, &rec, obuf))
            goto nomem;
        if (rec.op == KILN_OP_ARG) {
            int a = (int)rec.attr.i[0];
            int b = a < n_seq ? a : a < n_seq + n_state ? n_seq + (a - n_seq)
                                                        : n_bseq + n_state + (a - n_seq - n_state);
            map[fid] = barg[b].id;
            continue;
        }
        if (rec.n_in > MAX_SCAN_ARGS)
            goto nomem;
        for (int k = 0; k < rec.n_in; k++)
            in[k] = map[rec.in[k]];
        rec.in = in;
        if (rec.op == KILN_OP_SCAN) {
            int32_t bi = kiln_scan_copy_body(bb, fb, (int32_t)rec.attr.i[KILN_SCAN_BODY], true);
            if (bi < 0)
                goto nomem;
            rec.attr.i[KILN_SCAN_BODY] = bi;
        }
        if ((map[fid] = kiln_graph_add(bb, &rec)) < 0)
            goto nomem;
    }
    int32_t outs[MAX_SCAN_ARGS], seeds[MAX_SCAN_ARGS], wrt[MAX_SCAN_ARGS], grads[MAX_SCAN_ARGS];
    int n_seeds = 0;
    for (int k = 0; k < n_state; k++) { /* the state at t: its stacked adjoint plus the carry */
        kiln_node carry = barg[n_bseq + k];
        kiln_node seed = slot_gS[k] >= 0 ? kiln_expr_add(bb, barg[slot_gS[k]], carry) : carry;
        outs[n_seeds] = map[fb->results[k]];
        seeds[n_seeds++] = seed.id;
    }
    for (int m = 0; m < n_out; m++)
        if (slot_gO[m] >= 0) {
            outs[n_seeds] = map[fb->results[n_state + m]];
            seeds[n_seeds++] = barg[slot_gO[m]].id;
        }
    for (int a = 0; a < n_args; a++) { /* the images of the forward ARGs */
        int b = a < n_seq ? a : a < n_seq + n_state ? n_seq + (a - n_seq) : n_bseq + n_state + (a - n_seq - n_state);
        wrt[a] = barg[b].id;
    }
    if (bb->err.status || kiln_vjp(bb, outs, seeds, n_seeds, wrt, n_args, grads) != KILN_OK) {
        enum kiln_status st = kiln_err_copy(&g->err, &bb->err, "scan gradient: ");
        free(map);
        kiln_graph_destroy(bb);
        return st ? st : KILN_ERR_NOMEM;
    }
    /* A context's adjoint is summed over the steps. Its terms x_t^T d_t (a
    ** weight read as h W: the product over the step's batch rows) are
    ** hoisted out of the loop: x and d are stacked over T and the sum over
    ** the steps becomes one product over all T*B rows after the loop
    ** (X^T D), instead of a small product and a sum per step. The other
    ** terms stay in the loop, summed. */
    int32_t hx[MAX_HOISTED], hd[MAX_HOISTED], rest[MAX_SCAN_ARGS];
    int64_t hcols[2][MAX_HOISTED];
    int hctx[MAX_HOISTED], n_hoist = 0;
    for (int l = 0; l < n_ctx; l++) {
        int32_t terms[MAX_HOISTED];
        int nt = sum_terms(bb, grads[n_seq + n_state + l], terms, 0, MAX_HOISTED);
        rest[l] = -1;
        for (int q = 0; q < nt; q++) {
            if (rows_product(bb, terms[q]) && n_hoist < MAX_HOISTED) {
                hx[n_hoist] = R(bb, terms[q])->in[0];
                hd[n_hoist] = R(bb, terms[q])->in[1];
                hcols[0][n_hoist] = R(bb, hx[n_hoist])->shape.dims[1];
                hcols[1][n_hoist] = R(bb, hd[n_hoist])->shape.dims[1];
                hctx[n_hoist++] = l;
            } else {
                rest[l] = rest[l] < 0 ? terms[q] : kiln_expr_add(bb, (kiln_node){rest[l]}, (kiln_node){terms[q]}).id;
            }
        }
    }
    /* results of the backward body: new carries (the states at t-1's
    ** adjoints, plus gP at t), then the sequences' adjoints (stacked), the
    ** contexts' in-loop adjoints (summed), and the hoisted products'
    ** operands that are not stacked already (stacked) */
    int32_t bres[MAX_SCAN_ARGS];
    int nr = 0, ctx_res[MAX_SCAN_ARGS];
    for (int k = 0; k < n_state; k++) {
        kiln_node d = {grads[n_seq + k]};
        if (slot_gP[k] >= 0)
            d = kiln_expr_add(bb, d, barg[slot_gP[k]]);
        bres[nr++] = d.id;
    }
    int n_sq = 0, seq_res[MAX_SCAN_ARGS]; /* only the sequences' adjoints wanted (not an input's) */
    for (int j = 0; j < n_seq; j++) {
        seq_res[j] = need[fr.in[j]] ? nr - n_state : -1;
        if (need[fr.in[j]]) {
            bres[nr++] = grads[j];
            n_sq++;
        }
    }
    int n_sum = 0;
    uint64_t bsums = 0;
    for (int l = 0; l < n_ctx; l++) {
        ctx_res[l] = -1;
        if (rest[l] < 0)
            continue;
        ctx_res[l] = nr - n_state;
        bsums |= (uint64_t)1 << (n_sq + n_sum++);
        bres[nr++] = rest[l];
    }
    /* each operand: a backward sequence (outer node bin[k]: src -1 - k) or
    ** a stacked output (src: its index among the outputs) */
    int src[2 * MAX_HOISTED];
    for (int h = 0; h < 2 * n_hoist && !bb->err.status; h++) {
        int32_t v = h < n_hoist ? hx[h] : hd[h - n_hoist];
        const kiln_node_rec *rv = R(bb, v);
        if (rv->op == KILN_OP_ARG && rv->attr.i[0] < n_bseq) {
            src[h] = -1 - (int)rv->attr.i[0];
            continue;
        }
        src[h] = -1 - MAX_SCAN_ARGS;
        for (int k = n_state; k < nr; k++)
            if (bres[k] == v && (k < n_state + n_sq || k >= n_state + n_sq + n_sum))
                src[h] = k - n_state;
        if (src[h] == -1 - MAX_SCAN_ARGS) {
            if (nr >= MAX_SCAN_ARGS)
                break;
            src[h] = nr - n_state;
            bres[nr++] = v;
        }
    }
    if (bb->err.status || !set_results(bb, bres, nr)) {
        enum kiln_status st = kiln_err_copy(&g->err, &bb->err, "scan gradient: ");
        free(map);
        kiln_graph_destroy(bb);
        return st ? st : KILN_ERR_NOMEM;
    }
    /* The step's products, now that their adjoints are built through them:
    ** every reader of their values reads the forward step's saved values
    ** instead, and the products themselves, read by nothing, go. */
    /* A saved value nothing reads (a product whose adjoint rules need only
    ** its operands, e.g. an LSTM's h W: its consumer is a sum) is dropped
    ** from the backward scan's sequences, so that the forward scan does not
    ** stack it: the arguments after it move down one. */
    if (n_sv) {
        int32_t *repl = calloc((size_t)bb->n_nodes + 1, sizeof *repl);
        int32_t *map2 = malloc(sizeof *map2 * ((size_t)bb->n_nodes + 1));
        unsigned char *live = calloc((size_t)bb->n_nodes + 1, 1);
        int newidx[MAX_SCAN_ARGS];
        kiln_graph *bb2 = NULL;
        if (repl && map2 && live) {
            for (int v = 0; v < n_sv; v++) /* saved values are leaves from here on */
                live[map[fb->results[n_state + n_out + v]]] = 2;
            for (int i = 0; i < bb->n_results; i++)
                live[bb->results[i]] |= 1;
            for (int32_t b = bb->n_nodes - 1; b >= 0; b--)
                for (int k = 0; live[b] == 1 && k < bb->nodes[b].n_in; k++)
                    live[bb->nodes[b].in[k]] |= 1;
            bool drop[MAX_SCAN_ARGS] = {false};
            for (int v = 0; v < n_sv; v++)
                drop[slot_sv[v]] = live[map[fb->results[n_state + n_out + v]]] != 3;
            for (int k = 0, n = 0; k < nb; k++)
                newidx[k] = drop[k] ? -1 : n++;
            for (int32_t b = 0; b < bb->n_nodes; b++) {
                const kiln_node_rec *rb = &bb->nodes[b];
                repl[b] = rb->op == KILN_OP_ARG && newidx[rb->attr.i[0]] != rb->attr.i[0] ? newidx[rb->attr.i[0]] : -1;
            }
            for (int v = 0; v < n_sv; v++)
                repl[map[fb->results[n_state + n_out + v]]] = newidx[slot_sv[v]];
            bb2 = copy_body(bb, true, repl, map2);
        }
        if (bb2) { /* the arguments and the hoisted products' sources, renumbered */
            int n = 0;
            for (int k = 0; k < nb; k++)
                if (newidx[k] >= 0)
                    bin[n++] = bin[k];
            n_bseq -= nb - n;
            nb = n;
            for (int h = 0; h < 2 * n_hoist; h++)
                if (src[h] < 0 && src[h] > -1 - MAX_SCAN_ARGS)
                    src[h] = -1 - newidx[-1 - src[h]];
        }
        free(live);
        free(repl);
        free(map2);
        kiln_graph_destroy(bb);
        if (!bb2) {
            free(map);
            return kiln_err_set(&g->err, KILN_ERR_NOMEM, "scan gradient: no memory");
        }
        bb = bb2;
    }
    free(map);
    int32_t bid = kiln_scan_add(g, bb, n_bseq, n_state, n_bctx, nr - n_state, 0, !fr.attr.i[KILN_SCAN_REVERSE], bsums,
                                bin);
    if (bid < 0)
        return g->err.status;
    /* the inputs' adjoints: final carries, stacked sequence adjoints, context adjoints */
    for (int k = 0; k < n_state; k++)
        if (need[fr.in[n_seq + k]])
            in_adj[n_seq + k] = kiln_expr_output(g, (kiln_node){bid}, n_state + k).id;
    for (int j = 0; j < n_seq; j++)
        if (seq_res[j] >= 0)
            in_adj[j] = kiln_expr_output(g, (kiln_node){bid}, 2 * n_state + seq_res[j]).id;
    for (int l = 0; l < n_ctx; l++)
        if (need[fr.in[n_seq + n_state + l]] && ctx_res[l] >= 0)
            in_adj[n_seq + n_state + l] = kiln_expr_output(g, (kiln_node){bid}, 2 * n_state + ctx_res[l]).id;
    for (int h = 0; h < n_hoist; h++) { /* X^T D over all the steps' rows */
        int l = hctx[h];
        if (!need[fr.in[n_seq + n_state + l]])
            continue;
        kiln_node op[2];
        for (int q = 0; q < 2; q++) {
            int sidx = src[q * n_hoist + h];
            kiln_node st = sidx < 0 ? (kiln_node){bin[-1 - sidx]} : kiln_expr_output(g, (kiln_node){bid}, 2 * n_state + sidx);
            int64_t cols = hcols[q][h];
            op[q] = kiln_expr_reshape(g, st, 2, (int64_t[]){KILN_INFER, cols});
        }
        kiln_node prod = kiln_expr_matmul(g, kiln_expr_transpose(g, op[0]), op[1]);
        int32_t *adj = &in_adj[n_seq + n_state + l];
        *adj = *adj < 0 ? prod.id : kiln_expr_add(g, (kiln_node){*adj}, prod).id;
    }
    return g->err.status;
nomem:
    free(map);
    kiln_graph_destroy(bb);
    return kiln_err_set(&g->err, KILN_ERR_NOMEM, "scan gradient: no memory");
}
