/* bricks_recurrent.c: Blocks' recurrent bricks (blocks.bricks.recurrent):
** the @recurrent layer that turns one step into a loop, and the classes
** SimpleRecurrent, LSTM, GatedRecurrent, Bidirectional and RecurrentStack.
**
** The layer. A recurrent application (KILN_APPLICATION_RECURRENT) is a
** plain application of the brick model (brick.c) whose function builds ONE
** step, its inputs flagged as sequences, states or contexts (Blocks'
** @recurrent(sequences=, states=, contexts=, outputs=)). The machinery
** checks the inputs as for any application (dtype, last dim; a sequence's
** rank is left to this layer, since it has a time axis or not), then hands
** the call to kiln_recurrent_run, which
**   1. sorts the inputs by kind and finds each state's output by name;
**   2. checks shapes: the given sequences share T (axis 0) and the batch
**      (axis 1), a mask is (T, batch), a given state starts with the
**      batch; one step (iterate=False) drops the T axis from all of this;
**   3. takes each missing state from the class's initial_state (Blocks'
**      initial_states), zeros of (batch, last_dim) by default;
**   4. one step: calls the step on g directly; else builds a scan node
**      (kiln_expr_scan, compiler/scan.c) whose step function calls the
**      brick's step on the body graph, the omitted sequences and contexts
**      given as KILN_NODE_NONE, and checks what it built (every output a
**      node, new states shaped as the old, every state read);
**   5. reads the outputs off the scan: stacked states and stacked outputs;
**      with reverse, flipped to processing order (Blocks' go_backwards);
**      with return_initial_states, the initial state put before each
**      state's rows.
** The options (iterate, reverse, return_initial_states) are not inputs:
** kiln_recurrent_call hangs them on the brick for the call (brick.c keeps
** the pointer), and an application flagged KILN_APPLICATION_OPTIONS reads
** them to pass them on (Bidirectional, RecurrentStack's apply).
** Choices made: the step runs once, on a body graph, whatever T is (Theano
** scan's model), rather than being unrolled; parameters the step reads
** become the scan's contexts by themselves (scan.c), so a class's step reads
** its parameters as any application does. Masks are applied by the step
** (kiln_recurrent_masked), as in Blocks, rather than by the layer: a step
** knows which of its states a mask should hold (an LSTM holds both).
** Rejected: a T+1 dim for return_initial_states over a symbolic T (dims are
** monomials; T+1 is not one): refused with a message; with a constant T it
** is a concat. Rejected: mask by select (the architecture's first sketch):
** Blocks' formula m*h + (1-m)*h_prev is what Blocks' users trained with.
**
** The classes follow Blocks v0.1's source for what its documentation leaves
** out: the step formulas, parameter names and order, Blocks' gate order for
** LSTM (in, forget, cells, out), GatedRecurrent's two (dim, dim) draws for
** state_to_gates, trainable initial states (zeros, role INITIAL_STATE),
** Bidirectional's backward copy re-reversed and joined on the last axis,
** RecurrentStack's "#<level>" suffixes, its forks between layers and its
** shared mask and contexts. Activations are children, as in Blocks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/bricks_internal.h"
#include "compiler/graph.h"

/* Inputs and outputs of one recurrent application, at most. */
#define MAX_ARGS 64

static const kiln_node_rec *rec_of(const kiln_graph *g, kiln_node n) { return kiln_graph_cnode(g, n.id); }
static bool is_mask(const char *name) { return strcmp(name, "mask") == 0; }
static unsigned kind_of(const kiln_brick_input *d)
{
    return d->flags & (KILN_INPUT_SEQUENCE | KILN_INPUT_STATE | KILN_INPUT_CONTEXT);
}

/* ---- the @recurrent layer --------------------------------------------------- */

/* A recurrent application's inputs and outputs, sorted by kind. */
typedef struct rec_layout {
    const char *app;
    const kiln_brick_input *decl;
    int n_in, n_out;
    const char *const *outs;
    int seq[MAX_ARGS], n_seq;
    int state[MAX_ARGS], n_state;
    int ctx[MAX_ARGS], n_ctx;
    int state_out[MAX_ARGS]; /* the output of state k */
    int other[MAX_ARGS], n_other; /* outputs that are no state, in order */
} rec_layout;

static enum kiln_status layout_of(kiln_brick *b, const char *app, const kiln_brick_input *decl, int n_in,
                                  const char *const *outs, int n_out, rec_layout *L)
{
    *L = (rec_layout){.app = app, .decl = decl, .n_in = n_in, .n_out = n_out, .outs = outs};
    if (n_in > MAX_ARGS || n_out > MAX_ARGS)
        return kiln_brick_fail(b, KILN_ERR_UNSUPPORTED, "%s: %d inputs and %d outputs, at most %d of each", app, n_in,
                               n_out, MAX_ARGS);
    for (int i = 0; i < n_in; i++) {
        unsigned k = kind_of(&decl[i]);
        if (k == KILN_INPUT_SEQUENCE)
            L->seq[L->n_seq++] = i;
        else if (k == KILN_INPUT_STATE)
            L->state[L->n_state++] = i;
        else if (k == KILN_INPUT_CONTEXT)
            L->ctx[L->n_ctx++] = i;
        else
            return kiln_brick_fail(b, KILN_ERR_ARG,
                                   "%s: input %s of a recurrent application must be one of sequence, state or context",
                                   app, decl[i].name);
    }
    if (L->n_seq == 0)
        return kiln_brick_fail(b, KILN_ERR_ARG, "%s: a recurrent application needs a sequence among its inputs", app);
    bool taken[MAX_ARGS] = {0};
    for (int k = 0; k < L->n_state; k++) {
        const char *name = decl[L->state[k]].name;
        int o = 0;
        while (o < n_out && strcmp(outs[o], name) != 0)
            o++;
        if (o == n_out)
            return kiln_brick_fail(b, KILN_ERR_ARG,
                                   "%s: state %s is not among its outputs (a state's next value is the output of its name)",
                                   app, name);
        L->state_out[k] = o;
        taken[o] = true;
    }
    for (int o = 0; o < n_out; o++)
        if (!taken[o])
            L->other[L->n_other++] = o;
    return KILN_OK;
}

/* State d's initial value for `batch` rows, built in g. */
static enum kiln_status initial_value(kiln_brick *b, const kiln_brick_input *d, kiln_graph *g, int64_t batch,
                                      kiln_node *out)
{
    const kiln_brick_class *cls = kiln_brick_class_of(b);
    *out = KILN_NODE_NONE;
    if (cls->initial_state) {
        enum kiln_status s = cls->initial_state(b, g, d->name, batch, out);
        if (s != KILN_OK) {
            if (kiln_brick_status(b) != KILN_OK)
                return kiln_brick_status(b);
            return kiln_brick_built(b, g, KILN_NODE_NONE);
        }
        if (!kiln_node_ok(*out) || out->id >= g->n_nodes)
            return kiln_brick_fail(b, KILN_ERR_ARG, "initial_state of %s gave no node for state %s", cls->class_name,
                                   d->name);
        return KILN_OK;
    }
    int64_t dim = kiln_brick_input_dim(b, d);
    if (dim <= 0)
        return kiln_brick_fail(b, KILN_ERR_CONFIG,
                               "no initial state for '%s': give it, or declare the dim of its last axis", d->name);
    *out = kiln_expr_broadcast(g, kiln_expr_constant(g, 0), 2, (int64_t[]){batch, dim});
    return kiln_brick_built(b, g, *out);
}

/* Whether one of outs[0..n) is target or depends on it, in g (a walk down
** the ids from the highest output to target's). */
static bool depends_on(const kiln_graph *g, const kiln_node *outs, int n, kiln_node target)
{
    int32_t top = -1;
    for (int i = 0; i < n; i++)
        if (outs[i].id > top)
            top = outs[i].id;
    if (top < target.id)
        return false;
    unsigned char *mark = calloc((size_t)(top - target.id) + 1, 1);
    if (!mark)
        return true; /* cannot tell: no false alarm */
    for (int i = 0; i < n; i++)
        if (outs[i].id >= target.id)
            mark[outs[i].id - target.id] = 1;
    for (int32_t id = top; id > target.id; id--)
        if (mark[id - target.id]) {
            const kiln_node_rec *r = kiln_graph_cnode(g, id);
            for (int k = 0; k < r->n_in; k++)
                if (r->in[k] >= target.id)
                    mark[r->in[k] - target.id] = 1;
        }
    bool hit = mark[0];
    free(mark);
    return hit;
}

/* What a step built, checked: in are the step's inputs (states at t-1 among
** them), out its outputs, in g. */
static enum kiln_status check_step(kiln_brick *b, const rec_layout *L, kiln_graph *g, const kiln_node *in,
                                   const kiln_node *out)
{
    kiln_desc_buf d1, d2;
    for (int o = 0; o < L->n_out; o++)
        if (out[o].id < 0 || out[o].id >= g->n_nodes || kiln_graph_cnode(g, out[o].id)->n_out) {
            if (g->err.status != KILN_OK)
                return kiln_brick_fail(b, g->err.status, "%s: %s", L->app, g->err.msg);
            return kiln_brick_fail(b, KILN_ERR_ARG, "%s: the step gave no node for output %s", L->app, L->outs[o]);
        }
    for (int k = 0; k < L->n_state; k++) {
        kiln_node old = in[L->state[k]], nv = out[L->state_out[k]];
        const kiln_node_rec *ro = rec_of(g, old), *rn = rec_of(g, nv);
        if (ro->dtype != rn->dtype || !kiln_shape_equal(&ro->shape, &rn->shape))
            return kiln_brick_fail(b, KILN_ERR_SHAPE, "%s: the step's next %s is %s but the state is %s", L->app,
                                   L->decl[L->state[k]].name, kiln_brick_desc(g, nv, &d1), kiln_brick_desc(g, old, &d2));
    }
    for (int k = 0; k < L->n_state; k++)
        if (!depends_on(g, out, L->n_out, in[L->state[k]]))
            return kiln_brick_fail(b, KILN_ERR_ARG,
                                   "%s: the step never reads state %s: no output depends on it (a state feeds the "
                                   "next step)", L->app, L->decl[L->state[k]].name);
    return KILN_OK;
}

/* What the scan's step function needs. */
typedef struct step_ctx {
    kiln_brick *b;
    const kiln_brick_application *app;
    const rec_layout *L;
    const kiln_node *given; /* the call's inputs: which sequences and contexts were given */
} step_ctx;

/* kiln_expr_scan's step: the brick's step on the body, its arguments put
** back in the application's order. */
static enum kiln_status scan_step(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    const step_ctx *c = user;
    const rec_layout *L = c->L;
    kiln_node in[MAX_ARGS], out[MAX_ARGS];
    int a = 0;
    for (int j = 0; j < L->n_seq; j++)
        in[L->seq[j]] = kiln_node_ok(c->given[L->seq[j]]) ? args[a++] : KILN_NODE_NONE;
    for (int k = 0; k < L->n_state; k++)
        in[L->state[k]] = args[a++];
    for (int l = 0; l < L->n_ctx; l++)
        in[L->ctx[l]] = kiln_node_ok(c->given[L->ctx[l]]) ? args[a++] : KILN_NODE_NONE;
    for (int o = 0; o < L->n_out; o++)
        out[o] = KILN_NODE_NONE;
    enum kiln_status s = c->app->fn(c->b, body, in, out);
    if (s != KILN_OK)
        return s;
    if ((s = check_step(c->b, L, body, in, out)) != KILN_OK)
        return s;
    for (int k = 0; k < L->n_state; k++)
        res[k] = out[L->state_out[k]];
    for (int m = 0; m < L->n_other; m++)
        res[L->n_state + m] = out[L->other[m]];
    return KILN_OK;
}

/* "(time, batch, dim)" from a one-step layout "(batch, dim)" into buf. */
static const char *with_time(const char *layout, char *buf, size_t cap)
{
    if (!layout || layout[0] != '(')
        return layout ? layout : "";
    snprintf(buf, cap, "(time, %s", layout + 1);
    return buf;
}

/* Step 2 of the plan: the given sequences and states against each other.
** *T and *batch receive the dims (T is 0 for one step). */
static enum kiln_status check_shapes(kiln_brick *b, const rec_layout *L, kiln_graph *g, const kiln_node *in,
                                     bool one_step, int64_t *T, int64_t *batch)
{
    kiln_desc_buf d1, d2;
    char t_s[48], b_s[48], lay[KILN_MAX_NAME + 16];
    int ref = -1; /* the first given sequence, not the mask when another is given */
    for (int j = 0; j < L->n_seq; j++)
        if (kiln_node_ok(in[L->seq[j]]) && (ref < 0 || (is_mask(L->decl[ref].name) && !is_mask(L->decl[L->seq[j]].name))))
            ref = L->seq[j];
    if (ref < 0)
        return kiln_brick_fail(b, KILN_ERR_ARG, "%s: no sequence given: a recurrent application needs one to tell %s",
                               L->app, one_step ? "the batch" : "the number of steps and the batch");
    const kiln_node_rec *rr = rec_of(g, in[ref]);
    int lead = one_step ? 1 : 2;
    if (rr->shape.rank < lead)
        return kiln_brick_fail(b, KILN_ERR_SHAPE, "%s is %s, expected %s", L->decl[ref].name,
                               kiln_brick_desc(g, in[ref], &d1), one_step ? "(batch, ..)" : "(time, batch, ..)");
    *T = one_step ? 0 : rr->shape.dims[0];
    *batch = rr->shape.dims[lead - 1];
    for (int j = 0; j < L->n_seq; j++) {
        int i = L->seq[j];
        if (!kiln_node_ok(in[i]))
            continue;
        const kiln_brick_input *d = &L->decl[i];
        const kiln_node_rec *r = rec_of(g, in[i]);
        if (is_mask(d->name)) {
            if (r->shape.rank != lead || r->shape.dims[0] != rr->shape.dims[0] ||
                (!one_step && r->shape.dims[1] != *batch)) {
                kiln_graph_dim_str(g, rr->shape.dims[0], t_s, sizeof t_s);
                kiln_graph_dim_str(g, *batch, b_s, sizeof b_s);
                if (one_step)
                    return kiln_brick_fail(b, KILN_ERR_SHAPE, "mask is %s, expected (%s,): one value per row of %s",
                                           kiln_brick_desc(g, in[i], &d1), b_s, L->decl[ref].name);
                return kiln_brick_fail(b, KILN_ERR_SHAPE, "mask is %s, expected (%s, %s): time and batch as %s",
                                       kiln_brick_desc(g, in[i], &d1), t_s, b_s, L->decl[ref].name);
            }
            continue;
        }
        if (d->rank && r->shape.rank != d->rank + (one_step ? 0 : 1))
            return kiln_brick_fail(b, KILN_ERR_SHAPE, "%s is %s, expected rank %d %s", d->name,
                                   kiln_brick_desc(g, in[i], &d1), d->rank + (one_step ? 0 : 1),
                                   one_step ? (d->layout ? d->layout : "") : with_time(d->layout, lay, sizeof lay));
        bool same = r->shape.rank >= lead;
        for (int a = 0; same && a < lead; a++)
            same = r->shape.dims[a] == rr->shape.dims[a];
        if (!same)
            return kiln_brick_fail(b, KILN_ERR_SHAPE, "%s is %s but %s is %s: sequences share their %s", d->name,
                                   kiln_brick_desc(g, in[i], &d1), L->decl[ref].name, kiln_brick_desc(g, in[ref], &d2),
                                   one_step ? "first axis (batch)" : "first two axes (time, batch)");
    }
    for (int k = 0; k < L->n_state; k++) {
        int i = L->state[k];
        if (!kiln_node_ok(in[i]))
            continue;
        const kiln_node_rec *r = rec_of(g, in[i]);
        if (r->shape.rank < 1 || r->shape.dims[0] != *batch)
            return kiln_brick_fail(b, KILN_ERR_SHAPE, "%s is %s but %s is %s: a state's first axis is the batch",
                                   L->decl[i].name, kiln_brick_desc(g, in[i], &d1), L->decl[ref].name,
                                   kiln_brick_desc(g, in[ref], &d2));
    }
    return KILN_OK;
}

/* init (batch, ..) put before stacked (T, batch, ..) along axis 0. */
static kiln_node prepend(kiln_graph *g, kiln_node init, kiln_node stacked)
{
    const kiln_node_rec *r = rec_of(g, init);
    int64_t dims[KILN_MAX_RANK];
    if (r->shape.rank + 1 > KILN_MAX_RANK)
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "return_initial_states: a state of rank %d", r->shape.rank);
    dims[0] = 1;
    memcpy(dims + 1, r->shape.dims, sizeof(int64_t) * (size_t)r->shape.rank);
    kiln_node one = kiln_expr_reshape(g, init, r->shape.rank + 1, dims);
    return kiln_expr_concat(g, (kiln_node[]){one, stacked}, 2, 0);
}

/* Steps 4 and 5 of the plan for a whole sequence: the scan, its outputs. */
static enum kiln_status run_scan(kiln_brick *b, const kiln_brick_application *app, const rec_layout *L,
                                 kiln_graph *g, const kiln_node *in, const kiln_node *init,
                                 const kiln_recurrent_options *o, int64_t T, kiln_node *out)
{
    kiln_node seqs[MAX_ARGS], ctxs[MAX_ARGS];
    int n_seq = 0, n_ctx = 0;
    for (int j = 0; j < L->n_seq; j++)
        if (kiln_node_ok(in[L->seq[j]]))
            seqs[n_seq++] = in[L->seq[j]];
    for (int l = 0; l < L->n_ctx; l++)
        if (kiln_node_ok(in[L->ctx[l]]))
            ctxs[n_ctx++] = in[L->ctx[l]];
    if (o->return_initial_states && T < 0) {
        char t_s[48];
        return kiln_brick_fail(b, KILN_ERR_UNSUPPORTED,
                               "%s: return_initial_states over %s steps: T+1 rows of a symbolic T are not a dim kiln "
                               "can express yet; give the sequences a constant number of steps", L->app,
                               kiln_graph_dim_str(g, T, t_s, sizeof t_s));
    }
    kiln_scan_spec spec = {.n_sequences = n_seq, .n_states = L->n_state, .n_contexts = n_ctx,
                           .n_outputs = L->n_other, .reverse = o->reverse};
    step_ctx c = {.b = b, .app = app, .L = L, .given = in};
    bool g_clean = g->err.status == KILN_OK;
    kiln_node sc = kiln_expr_scan(g, &spec, seqs, init, ctxs, scan_step, &c);
    if (!kiln_node_ok(sc)) {
        if (kiln_brick_status(b) == KILN_OK)
            return kiln_brick_built(b, g, sc); /* the scan's own message, with b's path */
        if (g_clean) /* the scan's "the step function failed": b's message says why */
            kiln_graph_clear_error(g);
        return kiln_brick_status(b);
    }
    for (int k = 0; k < L->n_state; k++) {
        kiln_node v = kiln_expr_output(g, sc, k);
        if (o->reverse)
            v = kiln_expr_reverse(g, v, 0);
        if (o->return_initial_states)
            v = prepend(g, init[k], v);
        out[L->state_out[k]] = v;
    }
    for (int m = 0; m < L->n_other; m++) {
        kiln_node v = kiln_expr_output(g, sc, 2 * L->n_state + m);
        out[L->other[m]] = o->reverse ? kiln_expr_reverse(g, v, 0) : v;
    }
    for (int i = 0; i < L->n_out; i++)
        if (kiln_brick_built(b, g, out[i]) != KILN_OK)
            return kiln_brick_status(b);
    return KILN_OK;
}

/* Plan: see the top of this file (steps 1 to 5). */
enum kiln_status kiln_recurrent_run(kiln_brick *b, const kiln_brick_application *app, const kiln_brick_input *decl,
                                    int n_in, const char *const *outs, int n_out, kiln_graph *g,
                                    const kiln_node *inputs, kiln_node *outputs)
{
    rec_layout L;
    kiln_node in[MAX_ARGS], init[MAX_ARGS];
    int64_t T = 0, batch = 0;
    /* 1. kinds */
    enum kiln_status s = layout_of(b, app->name, decl, n_in, outs, n_out, &L);
    if (s != KILN_OK)
        return s;
    kiln_recurrent_options o = kiln_brick_recurrent_options(b);
    if (o.one_step && (o.reverse || o.return_initial_states))
        return kiln_brick_fail(b, KILN_ERR_ARG, "%s: one step (iterate=False) takes no reverse or return_initial_states",
                               app->name);
    /* 2. shapes */
    if ((s = check_shapes(b, &L, g, inputs, o.one_step, &T, &batch)) != KILN_OK)
        return s;
    /* 3. initial states */
    memcpy(in, inputs, sizeof *in * (size_t)n_in);
    for (int k = 0; k < L.n_state; k++) {
        int i = L.state[k];
        if (!kiln_node_ok(in[i]) && (s = initial_value(b, &decl[i], g, batch, &in[i])) != KILN_OK)
            return s;
        init[k] = in[i];
    }
    /* 4, 5: the step runs with the defaults: its own calls choose theirs */
    const kiln_recurrent_options *keep = kiln_brick_swap_options(b, NULL);
    if (o.one_step) {
        s = app->fn(b, g, in, outputs);
        if (s == KILN_OK)
            s = check_step(b, &L, g, in, outputs);
    } else {
        s = run_scan(b, app, &L, g, in, init, &o, T, outputs);
    }
    kiln_brick_swap_options(b, keep);
    return s;
}

/* Fail on b, and record the message on g as kiln_brick_call does. */
static enum kiln_status call_fail(kiln_brick *b, kiln_graph *g, kiln_node *outputs, int n_out, enum kiln_status s)
{
    for (int i = 0; outputs && i < n_out; i++)
        outputs[i] = KILN_NODE_NONE;
    kiln_graph_fail(g, s, "%s", kiln_brick_errmsg(b));
    return s;
}

enum kiln_status kiln_recurrent_call(kiln_brick *b, const char *app, kiln_graph *g, const kiln_node *inputs, int n_in,
                                     const kiln_recurrent_options *options, kiln_node *outputs, int n_out)
{
    KILN_API_CHECK(b && g && app);
    if (!b)
        return KILN_ERR_ARG;
    if (!app || !g) /* kiln_brick_call names the others */
        return kiln_brick_fail(b, KILN_ERR_ARG, "kiln_recurrent_call: %s is NULL", !app ? "app" : "g");
    kiln_recurrent_options o = options ? *options : (kiln_recurrent_options){0};
    const kiln_brick_application *a = kiln_brick_application_of(b, app, NULL, NULL);
    if (a && (o.one_step || o.reverse || o.return_initial_states) &&
        !(a->flags & (KILN_APPLICATION_RECURRENT | KILN_APPLICATION_OPTIONS)))
        return call_fail(b, g, outputs, n_out,
                         kiln_brick_fail(b, KILN_ERR_ARG,
                                         "%s of %s is not recurrent: it takes no iterate, reverse or "
                                         "return_initial_states", app, kiln_brick_class_of(b)->class_name));
    const kiln_recurrent_options *keep = kiln_brick_swap_options(b, &o);
    enum kiln_status s = kiln_brick_call(b, app, g, inputs, n_in, outputs, n_out);
    kiln_brick_swap_options(b, keep);
    return s;
}

kiln_node kiln_recurrent_masked(kiln_graph *g, kiln_node mask, kiln_node new_value, kiln_node old_value)
{
    if (!g)
        return KILN_NODE_NONE;
    if (mask.id == KILN_NODE_NONE.id)
        return new_value;
    if (!kiln_graph_check(g, mask, "masked: mask") || !kiln_graph_check(g, new_value, "masked: new value") ||
        !kiln_graph_check(g, old_value, "masked: old value"))
        return KILN_NODE_NONE;
    const kiln_node_rec *rm = rec_of(g, mask), *ro = rec_of(g, old_value);
    char sm[KILN_SHAPE_STR_MAX], so[KILN_SHAPE_STR_MAX];
    if (rm->shape.rank != 1 || ro->shape.rank < 1 || ro->shape.dims[0] != rm->shape.dims[0])
        return kiln_graph_fail(g, KILN_ERR_SHAPE, "masked: mask is %s and the state %s: expected a mask (batch,)",
                               kiln_shape_str(g, &rm->shape, sm, sizeof sm),
                               kiln_shape_str(g, &ro->shape, so, sizeof so));
    /* m[:, None, ..] */
    int64_t dims[KILN_MAX_RANK];
    dims[0] = rm->shape.dims[0];
    for (int a = 1; a < ro->shape.rank; a++)
        dims[a] = 1;
    kiln_node m = kiln_expr_reshape(g, mask, ro->shape.rank, dims);
    kiln_node keep = kiln_expr_sub(g, kiln_expr_constant(g, 1), m);
    return kiln_expr_add(g, kiln_expr_mul(g, m, new_value), kiln_expr_mul(g, keep, old_value));
}

enum kiln_status kiln_recurrent_initial_state(kiln_brick *b, const char *app, kiln_graph *g, const char *state,
                                              int64_t batch, kiln_node *out)
{
    KILN_API_CHECK(b && g && app && state && out);
    if (!b)
        return KILN_ERR_ARG;
    if (!g || !app || !state || !out)
        return kiln_brick_fail(b, KILN_ERR_ARG, "kiln_recurrent_initial_state: %s is NULL",
                               !g ? "g" : !app ? "app" : !state ? "state" : "out");
    *out = KILN_NODE_NONE;
    const kiln_brick_input *decl;
    int n;
    enum kiln_status s;
    if (!kiln_brick_application_of(b, app, &decl, &n)) {
        s = kiln_brick_fail(b, KILN_ERR_NOT_FOUND, "%s has no application '%.*s'", kiln_brick_class_of(b)->class_name,
                            KILN_MAX_NAME, app);
        return call_fail(b, g, NULL, 0, s);
    }
    int i = 0;
    while (i < n && !(kind_of(&decl[i]) == KILN_INPUT_STATE && strcmp(decl[i].name, state) == 0))
        i++;
    if (i == n) {
        s = kiln_brick_fail(b, KILN_ERR_NOT_FOUND, "%s has no state '%.*s'", app, KILN_MAX_NAME, state);
        return call_fail(b, g, NULL, 0, s);
    }
    if (!kiln_brick_allocated(b) && kiln_brick_allocate(b) != KILN_OK)
        return call_fail(b, g, NULL, 0, kiln_brick_status(b));
    if ((s = initial_value(b, &decl[i], g, batch, out)) != KILN_OK)
        return call_fail(b, g, NULL, 0, s);
    return KILN_OK;
}

/* ---- what the classes share ------------------------------------------------ */

static const char *const DIM[] = {"dim", NULL};

/* The activation child i applied to x; its failure becomes b's. */
static kiln_node activate(kiln_brick *b, int i, kiln_graph *g, kiln_node x)
{
    kiln_brick *c = kiln_brick_child(b, i);
    kiln_node y;
    if (kiln_brick_call(c, "apply", g, &x, 1, &y, 1) != KILN_OK) {
        kiln_brick_fail_from(b, c);
        return KILN_NODE_NONE;
    }
    return y;
}

static kiln_node param(kiln_brick *b, kiln_graph *g, const char *name)
{
    return kiln_graph_param(g, kiln_brick_param_by_name(b, name));
}

/* Blocks' initial_states of SimpleRecurrent, LSTM and GatedRecurrent: the
** trainable initial_state (initial_cells for "cells") repeated per row. */
static enum kiln_status trainable_initial_state(kiln_brick *b, kiln_graph *g, const char *state, int64_t batch,
                                                kiln_node *out)
{
    kiln_param *p = kiln_brick_param_by_name(b, strcmp(state, "cells") == 0 ? "initial_cells" : "initial_state");
    if (!p)
        return kiln_brick_fail(b, KILN_ERR_NOT_FOUND, "no initial value for state %s", state);
    *out = kiln_expr_broadcast(g, kiln_graph_param(g, p), 2, (int64_t[]){batch, kiln_param_dim(p, 0)});
    return kiln_brick_built(b, g, *out);
}

/* Weights from weights_init (in parameter order), initial states zeros. */
static enum kiln_status recurrent_initialize(kiln_brick *b)
{
    enum kiln_status s = kiln_brick_init_weights_and_biases(b);
    for (int i = 0; s == KILN_OK && i < kiln_brick_param_count(b); i++) {
        kiln_param *p = kiln_brick_param(b, i);
        if (kiln_param_roles(p) & KILN_ROLE_INITIAL_STATE)
            s = kiln_brick_fill_param(b, p, kiln_init_constant(0));
    }
    return s;
}

/* b with the given children (roots); on failure b and the children not yet
** adopted are destroyed. NULL entries are skipped. */
static kiln_brick *adopt(kiln_brick *b, kiln_brick *const *kids, int n)
{
    for (int i = 0; i < n; i++) {
        if (!kids[i])
            continue;
        if (!b || kiln_brick_add_child(b, kids[i]) != KILN_OK) {
            for (int j = i; j < n; j++)
                kiln_brick_destroy(kids[j]);
            kiln_brick_destroy(b);
            return NULL;
        }
    }
    return b;
}

/* Bricks given to a constructor: distinct roots (misuse otherwise). */
static bool roots_ok(kiln_brick *const *kids, int n)
{
    for (int i = 0; i < n; i++) {
        if (!kids[i])
            continue;
        if (kiln_brick_parent(kids[i]))
            return false;
        for (int j = 0; j < i; j++)
            if (kids[j] == kids[i])
                return false;
    }
    return true;
}

static void destroy_all(kiln_brick *const *kids, int n)
{
    for (int i = 0; i < n; i++)
        kiln_brick_destroy(kids[i]);
}

/* ---- SimpleRecurrent: h_t = activation(x_t + h_{t-1} W) ----------------------- */

static enum kiln_status simple_allocate(kiln_brick *b)
{
    int64_t d;
    if (kiln_brick_require_dim(b, "dim", &d) != KILN_OK)
        return KILN_ERR_CONFIG;
    enum kiln_status s = kiln_brick_add_param(b, "W", KILN_ROLE_WEIGHT, 2, (int64_t[]){d, d}, NULL);
    if (s == KILN_OK)
        s = kiln_brick_add_param(b, "initial_state", KILN_ROLE_INITIAL_STATE, 1, &d, NULL);
    return s;
}

/* in: inputs, mask, states */
static enum kiln_status simple_step(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    kiln_node next = kiln_expr_add(g, in[0], kiln_expr_matmul(g, in[2], param(b, g, "W")));
    if (kiln_brick_built(b, g, next) != KILN_OK || !kiln_node_ok(next = activate(b, 0, g, next)))
        return kiln_brick_status(b);
    out[0] = kiln_recurrent_masked(g, in[1], next, in[2]);
    return kiln_brick_built(b, g, out[0]);
}

static const kiln_brick_input SIMPLE_INPUTS[] = {
    {"inputs", KILN_INPUT_SEQUENCE | KILN_INPUT_FLOAT, 2, "(batch, dim)", "dim"},
    {"mask", KILN_INPUT_SEQUENCE | KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 1, "(batch,)", NULL},
    {"states", KILN_INPUT_STATE | KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 2, "(batch, dim)", "dim"},
    {NULL},
};
static const char *const STATES[] = {"states", NULL};
static const kiln_brick_application SIMPLE_APPS[] = {
    {"apply", SIMPLE_INPUTS, STATES, simple_step, KILN_APPLICATION_RECURRENT},
    {NULL},
};
static const kiln_brick_class SIMPLE_RECURRENT = {
    .class_name = "SimpleRecurrent",
    .default_name = "simplerecurrent",
    .flags = KILN_BRICK_INITIALIZABLE,
    .dims = DIM,
    .applications = SIMPLE_APPS,
    .allocate = simple_allocate,
    .initialize = recurrent_initialize,
    .initial_state = trainable_initial_state,
};

/* A recurrent brick of cls with dim and the activations given (NULL: the
** defaults made by make[i]). */
static kiln_brick *recurrent_create(const kiln_brick_class *cls, const char *name, int64_t dim, kiln_brick **acts,
                                    int n, kiln_brick *(*const *make)(const char *))
{
    if (!roots_ok(acts, n)) {
        KILN_API_CHECK(!"recurrent brick: activations must be distinct bricks without a parent");
        return NULL;
    }
    bool ok = dim >= 0;
    for (int i = 0; ok && i < n; i++)
        ok = acts[i] || (make && make[i] && (acts[i] = make[i](NULL)));
    kiln_brick *b = ok ? kiln_brick_create(cls, name) : NULL;
    if (!b) {
        destroy_all(acts, n);
        return NULL;
    }
    kiln_brick_put_dim(b, "dim", dim);
    return adopt(b, acts, n);
}

kiln_brick *kiln_simple_recurrent_create(const char *name, int64_t dim, kiln_brick *activation)
{
    KILN_API_CHECK(activation);
    return recurrent_create(&SIMPLE_RECURRENT, name, dim, &activation, 1, NULL);
}

/* ---- LSTM ---------------------------------------------------------------------- */

static enum kiln_status lstm_allocate(kiln_brick *b)
{
    int64_t d;
    if (kiln_brick_require_dim(b, "dim", &d) != KILN_OK)
        return KILN_ERR_CONFIG;
    static const char *const peepholes[] = {"W_cell_to_in", "W_cell_to_forget", "W_cell_to_out"};
    enum kiln_status s = kiln_brick_add_param(b, "W_state", KILN_ROLE_WEIGHT, 2, (int64_t[]){d, 4 * d}, NULL);
    for (int i = 0; s == KILN_OK && i < 3; i++)
        s = kiln_brick_add_param(b, peepholes[i], KILN_ROLE_WEIGHT, 1, &d, NULL);
    if (s == KILN_OK)
        s = kiln_brick_add_param(b, "initial_state", KILN_ROLE_INITIAL_STATE, 1, &d, NULL);
    if (s == KILN_OK)
        s = kiln_brick_add_param(b, "initial_cells", KILN_ROLE_INITIAL_STATE, 1, &d, NULL);
    return s;
}

/* in: inputs, mask, states, cells. Blocks' slices of the 4 dim pre-activation:
** in, forget, cells, out. */
static enum kiln_status lstm_step(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    int64_t d = kiln_brick_dim(b, "dim");
    kiln_node x = in[0], mask = in[1], h = in[2], c = in[3];
    kiln_node act = kiln_expr_add(g, kiln_expr_matmul(g, h, param(b, g, "W_state")), x);
    kiln_node a[4];
    for (int k = 0; k < 4; k++)
        a[k] = kiln_expr_slice(g, act, 1, k * d, (k + 1) * d, 1);
    kiln_node i = kiln_expr_sigmoid(g, kiln_expr_add(g, a[0], kiln_expr_mul(g, c, param(b, g, "W_cell_to_in"))));
    kiln_node f = kiln_expr_sigmoid(g, kiln_expr_add(g, a[1], kiln_expr_mul(g, c, param(b, g, "W_cell_to_forget"))));
    if (kiln_brick_built(b, g, i) != KILN_OK || kiln_brick_built(b, g, f) != KILN_OK)
        return kiln_brick_status(b);
    kiln_node cand = activate(b, 0, g, a[2]);
    if (!kiln_node_ok(cand))
        return kiln_brick_status(b);
    kiln_node c_new = kiln_expr_add(g, kiln_expr_mul(g, f, c), kiln_expr_mul(g, i, cand));
    kiln_node o = kiln_expr_sigmoid(g, kiln_expr_add(g, a[3], kiln_expr_mul(g, c_new, param(b, g, "W_cell_to_out"))));
    if (kiln_brick_built(b, g, o) != KILN_OK)
        return kiln_brick_status(b);
    kiln_node squashed = activate(b, 0, g, c_new);
    if (!kiln_node_ok(squashed))
        return kiln_brick_status(b);
    out[0] = kiln_recurrent_masked(g, mask, kiln_expr_mul(g, o, squashed), h);
    out[1] = kiln_recurrent_masked(g, mask, c_new, c);
    if (kiln_brick_built(b, g, out[0]) != KILN_OK)
        return kiln_brick_status(b);
    return kiln_brick_built(b, g, out[1]);
}

static const kiln_brick_input LSTM_INPUTS[] = {
    {"inputs", KILN_INPUT_SEQUENCE | KILN_INPUT_FLOAT, 2, "(batch, 4 * dim)", "4*dim"},
    {"mask", KILN_INPUT_SEQUENCE | KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 1, "(batch,)", NULL},
    {"states", KILN_INPUT_STATE | KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 2, "(batch, dim)", "dim"},
    {"cells", KILN_INPUT_STATE | KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 2, "(batch, dim)", "dim"},
    {NULL},
};
static const char *const LSTM_OUTPUTS[] = {"states", "cells", NULL};
static const kiln_brick_application LSTM_APPS[] = {
    {"apply", LSTM_INPUTS, LSTM_OUTPUTS, lstm_step, KILN_APPLICATION_RECURRENT},
    {NULL},
};
static const kiln_brick_class LSTM = {
    .class_name = "LSTM",
    .default_name = "lstm",
    .flags = KILN_BRICK_INITIALIZABLE,
    .dims = DIM,
    .applications = LSTM_APPS,
    .allocate = lstm_allocate,
    .initialize = recurrent_initialize,
    .initial_state = trainable_initial_state,
};

kiln_brick *kiln_lstm_create(const char *name, int64_t dim, kiln_brick *activation)
{
    kiln_brick *(*const make[])(const char *) = {kiln_tanh_create};
    return recurrent_create(&LSTM, name, dim, &activation, 1, make);
}

/* ---- GatedRecurrent --------------------------------------------------------------- */

static enum kiln_status gru_allocate(kiln_brick *b)
{
    int64_t d;
    if (kiln_brick_require_dim(b, "dim", &d) != KILN_OK)
        return KILN_ERR_CONFIG;
    enum kiln_status s = kiln_brick_add_param(b, "state_to_state", KILN_ROLE_WEIGHT, 2, (int64_t[]){d, d}, NULL);
    if (s == KILN_OK)
        s = kiln_brick_add_param(b, "state_to_gates", KILN_ROLE_WEIGHT, 2, (int64_t[]){d, 2 * d}, NULL);
    if (s == KILN_OK)
        s = kiln_brick_add_param(b, "initial_state", KILN_ROLE_INITIAL_STATE, 1, &d, NULL);
    return s;
}

/* Blocks draws state_to_gates as numpy.hstack of two (dim, dim) draws
** (update, then reset): the 2 dim^2 values drawn in order, laid out side by
** side rather than row after row. */
static enum kiln_status gru_initialize(kiln_brick *b)
{
    enum kiln_status s = recurrent_initialize(b);
    if (s != KILN_OK)
        return s;
    kiln_param *p = kiln_brick_param_by_name(b, "state_to_gates");
    int64_t d = kiln_param_dim(p, 0), n = 2 * d * d;
    double *drawn = malloc(sizeof *drawn * (size_t)n), *side = malloc(sizeof *side * (size_t)n);
    if (!drawn || !side) {
        free(drawn);
        free(side);
        return kiln_brick_fail(b, KILN_ERR_NOMEM, "no memory to lay out state_to_gates");
    }
    s = kiln_param_get_values(p, drawn, n);
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < d; j++) {
            side[i * 2 * d + j] = drawn[i * d + j];
            side[i * 2 * d + d + j] = drawn[d * d + i * d + j];
        }
    if (s == KILN_OK)
        s = kiln_param_set_values(p, side, n);
    free(drawn);
    free(side);
    return s == KILN_OK ? s : kiln_brick_fail(b, s, "state_to_gates: %s", kiln_param_errmsg(p));
}

/* in: mask, inputs, gate_inputs, states */
static enum kiln_status gru_step(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    int64_t d = kiln_brick_dim(b, "dim");
    kiln_node mask = in[0], x = in[1], gx = in[2], h = in[3];
    kiln_node pre = kiln_expr_add(g, kiln_expr_matmul(g, h, param(b, g, "state_to_gates")), gx);
    if (kiln_brick_built(b, g, pre) != KILN_OK)
        return kiln_brick_status(b);
    kiln_node gates = activate(b, 1, g, pre);
    if (!kiln_node_ok(gates))
        return kiln_brick_status(b);
    kiln_node z = kiln_expr_slice(g, gates, 1, 0, d, 1), r = kiln_expr_slice(g, gates, 1, d, 2 * d, 1);
    kiln_node cand = kiln_expr_add(g, kiln_expr_matmul(g, kiln_expr_mul(g, h, r), param(b, g, "state_to_state")), x);
    if (kiln_brick_built(b, g, cand) != KILN_OK || !kiln_node_ok(cand = activate(b, 0, g, cand)))
        return kiln_brick_status(b);
    kiln_node next = kiln_expr_add(g, kiln_expr_mul(g, cand, z),
                                   kiln_expr_mul(g, h, kiln_expr_sub(g, kiln_expr_constant(g, 1), z)));
    out[0] = kiln_recurrent_masked(g, mask, next, h);
    return kiln_brick_built(b, g, out[0]);
}

static const kiln_brick_input GRU_INPUTS[] = {
    {"mask", KILN_INPUT_SEQUENCE | KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 1, "(batch,)", NULL},
    {"inputs", KILN_INPUT_SEQUENCE | KILN_INPUT_FLOAT, 2, "(batch, dim)", "dim"},
    {"gate_inputs", KILN_INPUT_SEQUENCE | KILN_INPUT_FLOAT, 2, "(batch, 2 * dim)", "2*dim"},
    {"states", KILN_INPUT_STATE | KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 2, "(batch, dim)", "dim"},
    {NULL},
};
static const kiln_brick_application GRU_APPS[] = {
    {"apply", GRU_INPUTS, STATES, gru_step, KILN_APPLICATION_RECURRENT},
    {NULL},
};
static const kiln_brick_class GATED_RECURRENT = {
    .class_name = "GatedRecurrent",
    .default_name = "gatedrecurrent",
    .flags = KILN_BRICK_INITIALIZABLE,
    .dims = DIM,
    .applications = GRU_APPS,
    .allocate = gru_allocate,
    .initialize = gru_initialize,
    .initial_state = trainable_initial_state,
};

kiln_brick *kiln_gated_recurrent_create(const char *name, int64_t dim, kiln_brick *activation,
                                        kiln_brick *gate_activation)
{
    kiln_brick *acts[] = {activation, gate_activation};
    kiln_brick *(*const make[])(const char *) = {kiln_tanh_create, kiln_logistic_create};
    return recurrent_create(&GATED_RECURRENT, name, dim, acts, 2, make);
}

/* ---- Bidirectional ----------------------------------------------------------------- */

/* Whether b's "apply" iterates (recurrent, or passing the options on). */
static bool iterates(const kiln_brick *b)
{
    const kiln_brick_application *a = kiln_brick_application_of(b, "apply", NULL, NULL);
    return a && (a->flags & (KILN_APPLICATION_RECURRENT | KILN_APPLICATION_OPTIONS));
}

static enum kiln_status bidirectional_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    kiln_recurrent_options o = kiln_brick_recurrent_options(b);
    if (o.one_step || o.reverse)
        return kiln_brick_fail(b, KILN_ERR_ARG, "apply runs both ways over whole sequences: no one_step "
                                                "(iterate=False) or reverse");
    int n_in = kiln_brick_input_count(b, "apply"), n_out = kiln_brick_output_count(b, "apply");
    kiln_node fw[MAX_ARGS], bw[MAX_ARGS];
    kiln_brick *f = kiln_brick_child(b, 0), *r = kiln_brick_child(b, 1);
    if (kiln_recurrent_call(f, "apply", g, in, n_in, &o, fw, n_out) != KILN_OK)
        return kiln_brick_fail_from(b, f);
    o.reverse = true;
    if (kiln_recurrent_call(r, "apply", g, in, n_in, &o, bw, n_out) != KILN_OK)
        return kiln_brick_fail_from(b, r);
    for (int k = 0; k < n_out; k++) {
        kiln_node back = kiln_expr_reverse(g, bw[k], 0); /* to time order */
        out[k] = kiln_expr_concat(g, (kiln_node[]){fw[k], back}, 2, kiln_graph_node_rank(g, fw[k]) - 1);
        if (kiln_brick_built(b, g, out[k]) != KILN_OK)
            return kiln_brick_status(b);
    }
    return KILN_OK;
}

/* Placeholders: a brick takes its prototype's inputs and outputs. */
static const kiln_brick_input ANY_INPUT[] = {{"input", 0, 0, NULL, NULL}, {NULL}};
static const char *const ANY_OUTPUT[] = {"output", NULL};
static const kiln_brick_application BIDIRECTIONAL_APPS[] = {
    {"apply", ANY_INPUT, ANY_OUTPUT, bidirectional_apply, KILN_APPLICATION_OPTIONS},
    {NULL},
};
static const kiln_brick_class BIDIRECTIONAL = {
    .class_name = "Bidirectional",
    .default_name = "bidirectional",
    .flags = KILN_BRICK_INITIALIZABLE,
    .applications = BIDIRECTIONAL_APPS,
};

/* The outputs of b's application app as a list ending in NULL (pointers
** borrowed from b); false when there are more than cap - 1. */
static bool output_list(const kiln_brick *b, const char *app, const char **list, int cap)
{
    int n = kiln_brick_output_count(b, app);
    if (n < 0 || n >= cap)
        return false;
    for (int i = 0; i < n; i++)
        list[i] = kiln_brick_output_name(b, app, i);
    list[n] = NULL;
    return true;
}

kiln_brick *kiln_bidirectional_create(const char *name, kiln_brick *prototype)
{
    KILN_API_CHECK(prototype && !kiln_brick_parent(prototype));
    if (!prototype || kiln_brick_parent(prototype))
        return NULL;
    const kiln_brick_input *decl;
    int n_in;
    const char *outs[MAX_ARGS + 1];
    kiln_brick *b = NULL, *kids[2] = {NULL, NULL};
    if (!iterates(prototype) || !kiln_brick_application_of(prototype, "apply", &decl, &n_in) || n_in > MAX_ARGS ||
        !output_list(prototype, "apply", outs, MAX_ARGS + 1))
        goto fail;
    kids[0] = kiln_brick_clone(prototype, "forward");
    kids[1] = kiln_brick_clone(prototype, "backward");
    if (!kids[0] || !kids[1] || !(b = kiln_brick_create(&BIDIRECTIONAL, name)))
        goto fail;
    /* decl and outs point into the prototype: set them before it goes */
    if (kiln_brick_set_application_io(b, "apply", decl, outs) != KILN_OK)
        goto fail;
    kiln_brick_destroy(prototype);
    return adopt(b, kids, 2);
fail:
    destroy_all(kids, 2);
    kiln_brick_destroy(b);
    kiln_brick_destroy(prototype);
    return NULL;
}

/* ---- RecurrentStack ------------------------------------------------------------------ */

/* Blocks' RECURRENTSTACK_SEPARATOR. */
#define SUFFIX_SEP '#'

typedef struct stack {
    int n;     /* layers: children 0..n-1; the fork into layer l is child n + l - 1 */
    bool skip; /* skip_connections */
    char states_name[KILN_MAX_NAME + 1];
} stack;

/* Blocks' suffix(name, level): "mask" and the bottom layer's names as
** they are, others "<name>#<level>". false when too long. */
static bool suffix(const char *name, int level, char *buf, size_t cap)
{
    if (level == 0 || is_mask(name))
        return kiln_snprintf(buf, cap, "%s", name) == 0;
    return kiln_snprintf(buf, cap, "%s%c%d", name, SUFFIX_SEP, level) == 0;
}

/* Blocks' split_suffix: "states#2" -> ("states", 2); no suffix: level 0. */
static int split_suffix(const char *name, char *base, size_t cap)
{
    const char *sep = strrchr(name, SUFFIX_SEP);
    int level = 0;
    if (sep && sep[1]) {
        const char *p = sep + 1;
        while (*p >= '0' && *p <= '9' && level < 100000)
            level = level * 10 + (*p++ - '0');
        if (*p)
            level = 0;
    }
    size_t n = level ? (size_t)(sep - name) : strlen(name);
    if (n >= cap)
        n = cap - 1;
    memcpy(base, name, n);
    base[n] = '\0';
    return level;
}

/* Index of input `name` in decl, or -1. */
static int find_input(const kiln_brick_input *decl, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(decl[i].name, name) == 0)
            return i;
    return -1;
}

/* The fork of layer level-1's states into layer level's sequences, applied
** to x: (batch, d) as it is, (T, batch, d) through (T*batch, d), since a
** Linear takes a matrix. fo receives one node per sequence but the mask. */
static enum kiln_status fork_states(kiln_brick *b, int level, kiln_graph *g, kiln_node x, kiln_node *fo, int nf)
{
    const stack *st = kiln_brick_data(b);
    kiln_brick *fork = kiln_brick_child(b, st->n + level - 1);
    int rank = kiln_graph_node_rank(g, x);
    int64_t t = kiln_graph_node_dim(g, x, 0), batch = kiln_graph_node_dim(g, x, 1);
    if (rank == 3)
        x = kiln_expr_reshape(g, x, 2, (int64_t[]){KILN_INFER, kiln_graph_node_dim(g, x, 2)});
    if (kiln_brick_built(b, g, x) != KILN_OK)
        return kiln_brick_status(b);
    if (kiln_brick_call(fork, "apply", g, &x, 1, fo, nf) != KILN_OK)
        return kiln_brick_fail_from(b, fork);
    for (int j = 0; rank == 3 && j < nf; j++)
        if (kiln_brick_built(b, g, fo[j] = kiln_expr_reshape(g, fo[j], 3, (int64_t[]){t, batch,
                                                                kiln_graph_node_dim(g, fo[j], 1)})) != KILN_OK)
            return kiln_brick_status(b);
    return KILN_OK;
}

/* Blocks' do_apply: each layer in turn, with options o, its inputs taken
** from the stack's by (suffixed) name, the fork of the layer below added
** to its sequences. out receives every layer's outputs in order. */
static enum kiln_status stack_do_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out,
                                       const kiln_recurrent_options *o)
{
    const stack *st = kiln_brick_data(b);
    const kiln_brick_input *sdecl;
    int sn;
    kiln_brick_application_of(b, "apply", &sdecl, &sn);
    char name[KILN_MAX_NAME + 1];
    kiln_node below = KILN_NODE_NONE;
    int o_off = 0;
    for (int level = 0; level < st->n; level++) {
        kiln_brick *t = kiln_brick_child(b, level);
        const kiln_brick_input *td;
        int tn;
        kiln_brick_application_of(t, "apply", &td, &tn);
        int t_out = kiln_brick_output_count(t, "apply");
        kiln_node lin[MAX_ARGS], fo[MAX_ARGS];
        int nf = 0;
        for (int i = 0; i < tn; i++) {
            unsigned kind = kind_of(&td[i]);
            lin[i] = KILN_NODE_NONE;
            bool exposed = kind != KILN_INPUT_SEQUENCE || is_mask(td[i].name) || level == 0 || st->skip;
            int k = -1;
            if (exposed) { /* names were checked at creation */
                suffix(td[i].name, kind == KILN_INPUT_CONTEXT ? 0 : level, name, sizeof name);
                k = find_input(sdecl, sn, name);
            }
            if (k >= 0)
                lin[i] = in[k];
            nf += kind == KILN_INPUT_SEQUENCE && !is_mask(td[i].name);
        }
        if (level > 0) {
            enum kiln_status s = fork_states(b, level, g, below, fo, nf);
            if (s != KILN_OK)
                return s;
            for (int i = 0, j = 0; i < tn; i++)
                if (kind_of(&td[i]) == KILN_INPUT_SEQUENCE && !is_mask(td[i].name)) {
                    lin[i] = kiln_node_ok(lin[i]) ? kiln_expr_add(g, lin[i], fo[j]) : fo[j];
                    j++;
                }
        }
        if (kiln_recurrent_call(t, "apply", g, lin, tn, o, out + o_off, t_out) != KILN_OK)
            return kiln_brick_fail_from(b, t);
        int si = 0;
        while (strcmp(kiln_brick_output_name(t, "apply", si), st->states_name) != 0)
            si++; /* present: checked at creation */
        below = out[o_off + si];
        if (o->return_initial_states) /* the steps only: the initial state goes */
            below = kiln_expr_slice(g, below, 0, 1, kiln_graph_node_dim(g, below, 0), 1);
        if (kiln_brick_built(b, g, below) != KILN_OK)
            return kiln_brick_status(b);
        o_off += t_out;
    }
    return KILN_OK;
}

static enum kiln_status stack_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    kiln_recurrent_options o = kiln_brick_recurrent_options(b);
    if (o.reverse)
        return kiln_brick_fail(b, KILN_ERR_UNSUPPORTED,
                               "apply does not run in reverse (nor does Blocks'): use low_memory_apply");
    return stack_do_apply(b, g, in, out, &o);
}

/* Blocks' low_memory_apply: the recurrent layer iterates; this is one step
** of every layer. */
static enum kiln_status stack_step(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    kiln_recurrent_options one = {.one_step = true};
    return stack_do_apply(b, g, in, out, &one);
}

/* "states#1" is layer 1's "states". */
static enum kiln_status stack_initial_state(kiln_brick *b, kiln_graph *g, const char *state, int64_t batch,
                                            kiln_node *out)
{
    const stack *st = kiln_brick_data(b);
    char base[KILN_MAX_NAME + 1];
    int level = split_suffix(state, base, sizeof base);
    if (level >= st->n)
        return kiln_brick_fail(b, KILN_ERR_NOT_FOUND, "no layer %d for state %s", level, state);
    kiln_brick *t = kiln_brick_child(b, level);
    if (kiln_recurrent_initial_state(t, "apply", g, base, batch, out) != KILN_OK)
        return kiln_brick_fail_from(b, t);
    return KILN_OK;
}

/* The dim of input `name` of t's apply (its declared last dim), 0 when unknown. */
static int64_t input_dim(const kiln_brick *t, const char *name)
{
    const kiln_brick_input *td;
    int tn;
    kiln_brick_application_of(t, "apply", &td, &tn);
    int i = find_input(td, tn, name);
    return i < 0 ? 0 : kiln_brick_input_dim(t, &td[i]);
}

/* Blocks' _push_allocation_config: fork l takes layer l-1's states dim and
** gives layer l's sequence dims. */
static enum kiln_status stack_push_allocation_config(kiln_brick *b)
{
    const stack *st = kiln_brick_data(b);
    for (int level = 1; level < st->n; level++) {
        kiln_brick *fork = kiln_brick_child(b, st->n + level - 1), *t = kiln_brick_child(b, level);
        kiln_brick_put_dim(fork, "input_dim", input_dim(kiln_brick_child(b, level - 1), st->states_name));
        for (int j = 0; j < kiln_brick_output_count(fork, "apply"); j++) {
            const char *seq = kiln_brick_output_name(fork, "apply", j);
            char *key = kiln_brick_dim_key("output_dims", seq);
            if (!key)
                return kiln_brick_fail(b, KILN_ERR_NOMEM, "no memory for the dims of %s", kiln_brick_path(fork));
            kiln_brick_put_dim(fork, key, input_dim(t, seq));
            free(key);
        }
    }
    return KILN_OK;
}

static const kiln_brick_application STACK_APPS[] = {
    {"apply", ANY_INPUT, ANY_OUTPUT, stack_apply, KILN_APPLICATION_OPTIONS},
    {"low_memory_apply", ANY_INPUT, ANY_OUTPUT, stack_step, KILN_APPLICATION_RECURRENT},
    {NULL},
};
static const kiln_brick_class RECURRENT_STACK = {
    .class_name = "RecurrentStack",
    .default_name = "recurrentstack",
    .flags = KILN_BRICK_INITIALIZABLE,
    .data_size = sizeof(stack),
    .applications = STACK_APPS,
    .push_allocation_config = stack_push_allocation_config,
    .initial_state = stack_initial_state,
};

/* The stack's inputs and outputs, built from its layers' (names owned by
** the arrays, freed by io_free). */
typedef struct stack_io {
    kiln_brick_input in[MAX_ARGS + 1];
    char *in_names[MAX_ARGS];
    int n_in;
    const char *out[MAX_ARGS + 1];
    char *out_names[MAX_ARGS];
    int n_out;
} stack_io;

static void io_free(stack_io *io)
{
    for (int i = 0; i < io->n_in; i++)
        free(io->in_names[i]);
    for (int i = 0; i < io->n_out; i++)
        free(io->out_names[i]);
}

/* Add input d of layer `level` (suffixed unless a context) with extra flags. */
static bool io_add_input(stack_io *io, const kiln_brick_input *d, int level, unsigned extra)
{
    char name[KILN_MAX_NAME + 1];
    if (io->n_in == MAX_ARGS || !suffix(d->name, kind_of(d) == KILN_INPUT_CONTEXT ? 0 : level, name, sizeof name))
        return false;
    if (find_input(io->in, io->n_in, name) >= 0) /* a shared context */
        return kind_of(d) == KILN_INPUT_CONTEXT;
    if (!(io->in_names[io->n_in] = kiln_strdup(name)))
        return false;
    io->in[io->n_in] = (kiln_brick_input){io->in_names[io->n_in], d->flags | extra, d->rank, d->layout, NULL};
    io->in[++io->n_in] = (kiln_brick_input){NULL};
    return true;
}

/* Plan (Blocks' __init__): the bottom layer's sequences but the mask, the
** upper layers' when skip (optional: a fork feeds them too), the mask, the
** states of every layer, the contexts once each; outputs layer by layer. */
static bool stack_io_build(kiln_brick *const *layers, int n, bool skip, stack_io *io)
{
    memset(io, 0, sizeof *io);
    const kiln_brick_input *td;
    int tn;
    for (int pass = 0; pass < 4; pass++)
        for (int level = 0; level < n; level++) {
            kiln_brick_application_of(layers[level], "apply", &td, &tn);
            for (int i = 0; i < tn; i++) {
                unsigned kind = kind_of(&td[i]);
                bool mask = is_mask(td[i].name), ok = true;
                if (pass == 0 && kind == KILN_INPUT_SEQUENCE && !mask && (level == 0 || skip))
                    ok = io_add_input(io, &td[i], level, level ? KILN_INPUT_OPTIONAL : 0);
                else if (pass == 1 && kind == KILN_INPUT_SEQUENCE && mask && level == 0)
                    ok = io_add_input(io, &td[i], 0, 0);
                else if (pass == 2 && kind == KILN_INPUT_STATE)
                    ok = io_add_input(io, &td[i], level, 0);
                else if (pass == 3 && kind == KILN_INPUT_CONTEXT)
                    ok = io_add_input(io, &td[i], 0, 0);
                if (!ok)
                    return false;
            }
        }
    char name[KILN_MAX_NAME + 1];
    for (int level = 0; level < n; level++)
        for (int k = 0; k < kiln_brick_output_count(layers[level], "apply"); k++) {
            if (io->n_out == MAX_ARGS ||
                !suffix(kiln_brick_output_name(layers[level], "apply", k), level, name, sizeof name) ||
                !(io->out_names[io->n_out] = kiln_strdup(name)))
                return false;
            io->out[io->n_out] = io->out_names[io->n_out];
            io->out[++io->n_out] = NULL;
        }
    return true;
}

/* A layer Blocks can stack: its apply iterates, each input has a kind, and
** states_name is one of its states and outputs. */
static bool layer_ok(const kiln_brick *t, const char *states_name, int level)
{
    const kiln_brick_input *td;
    int tn, nseq = 0;
    if (!iterates(t) || !kiln_brick_application_of(t, "apply", &td, &tn))
        return false;
    bool state = false, output = false;
    for (int i = 0; i < tn; i++) {
        unsigned k = kind_of(&td[i]);
        if (k != KILN_INPUT_SEQUENCE && k != KILN_INPUT_STATE && k != KILN_INPUT_CONTEXT)
            return false;
        state |= k == KILN_INPUT_STATE && strcmp(td[i].name, states_name) == 0;
        nseq += k == KILN_INPUT_SEQUENCE && !is_mask(td[i].name);
    }
    for (int k = 0; k < kiln_brick_output_count(t, "apply"); k++)
        output |= strcmp(kiln_brick_output_name(t, "apply", k), states_name) == 0;
    return state && output && (level == 0 || nseq > 0) &&
           strlen(kiln_brick_name(t)) + 12 <= KILN_MAX_NAME; /* room for "#<level>" */
}

/* Plan:
** 1. validate the bricks given (misuse: NULL, left alone) and the layers;
** 2. the brick and its inputs and outputs (from the layers as they are);
** 3. the layers, renamed "<name>#<level>", as children;
** 4. a fork per upper layer, from a copy of the prototype.
** After 1 every brick given is the stack's or destroyed. */
kiln_brick *kiln_recurrent_stack_create(const char *name, kiln_brick *const *transitions, int n,
                                        kiln_brick *fork_prototype, const char *states_name, bool skip_connections)
{
    /* 1. validate */
    KILN_API_CHECK(n >= 1 && transitions && roots_ok(transitions, n) && roots_ok(&fork_prototype, 1));
    if (n < 1 || !transitions || !roots_ok(transitions, n) || !roots_ok(&fork_prototype, 1))
        return NULL;
    kiln_brick *b = NULL, *proto = fork_prototype;
    stack_io io = {.n_in = 0};
    int adopted = 0;
    if (!states_name)
        states_name = "states";
    bool ok = n <= MAX_ARGS && *states_name && strlen(states_name) <= KILN_MAX_NAME && !strchr(states_name, '|');
    for (int l = 0; ok && l < n; l++)
        ok = transitions[l] && layer_ok(transitions[l], states_name, l);
    /* 2. the brick */
    ok = ok && stack_io_build(transitions, n, skip_connections, &io) && (b = kiln_brick_create(&RECURRENT_STACK, name));
    if (ok) {
        stack *st = kiln_brick_data(b);
        *st = (stack){.n = n, .skip = skip_connections};
        strcpy(st->states_name, states_name);
        ok = kiln_brick_set_application_io(b, "apply", io.in, io.out) == KILN_OK &&
             kiln_brick_set_application_io(b, "low_memory_apply", io.in, io.out) == KILN_OK;
    }
    /* 3. the layers */
    for (; ok && adopted < n; adopted++) {
        char renamed[KILN_MAX_NAME + 1];
        snprintf(renamed, sizeof renamed, "%s%c%d", kiln_brick_name(transitions[adopted]), SUFFIX_SEP, adopted);
        ok = kiln_brick_rename(transitions[adopted], renamed) &&
             kiln_brick_add_child(b, transitions[adopted]) == KILN_OK;
        if (!ok)
            break;
    }
    /* 4. the forks */
    if (ok && !proto)
        ok = (proto = kiln_linear_create(NULL, 0, 0)) && kiln_brick_set_use_bias(proto, !skip_connections) == KILN_OK;
    for (int level = 1; ok && level < n; level++) {
        const kiln_brick_input *td;
        int tn, nf = 0;
        const char *names[MAX_ARGS];
        kiln_brick_application_of(transitions[level], "apply", &td, &tn);
        for (int i = 0; i < tn; i++)
            if (kind_of(&td[i]) == KILN_INPUT_SEQUENCE && !is_mask(td[i].name))
                names[nf++] = td[i].name;
        char fname[32];
        snprintf(fname, sizeof fname, "fork_%d", level);
        kiln_brick *copy = kiln_brick_clone(proto, NULL);
        kiln_brick *fork = copy ? kiln_fork_create(fname, names, nf, 0, NULL, copy) : NULL;
        ok = fork && kiln_brick_add_child(b, fork) == KILN_OK;
        if (!ok)
            kiln_brick_destroy(fork);
    }
    io_free(&io);
    kiln_brick_destroy(proto);
    if (ok)
        return b;
    for (int l = adopted; l < n; l++)
        if (!kiln_brick_parent(transitions[l]))
            kiln_brick_destroy(transitions[l]);
    kiln_brick_destroy(b);
    return NULL;
}
