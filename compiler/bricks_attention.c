/* bricks_attention.c: Blocks' attention bricks (blocks.bricks.attention):
** ShallowEnergyComputer, SequenceContentAttention and AttentionRecurrent,
** with FakeAttentionRecurrent (blocks.bricks.sequence_generators) for a
** generator without attention.
**
** SequenceContentAttention follows Blocks v0.1's source where its
** documentation is silent: children state_trans (a Parallel of state
** transformers, Linear without bias), preprocess (Linear with bias) and
** energy_comp (Tanh then Linear without bias); energies = energy_comp(
** preprocessed + sum of transformed states); weights = exp(e - max e) *
** mask / (sum + all(1 - mask)), the max taken over every position, masked
** or not, as Blocks does; weighted averages = sum over time of weights *
** attended. The attended is time-major (T_s, batch, dim); kiln's Linear
** takes a matrix, so the (time, batch) rows are folded into one axis for
** the transformers and the energy computer, and unfolded after.
**
** AttentionRecurrent wraps a transition whose "apply" is recurrent
** (bricks_recurrent.c). Its applications are made from the transition's
** declaration when the brick is created (kiln_brick_set_application_io):
** apply and do_apply take the transition's inputs plus the attended, its
** mask and (do_apply) the preprocessed attended, as contexts; do_apply is
** the recurrent step (take_glimpses, then compute_states), apply
** preprocesses once and calls it with the caller's options. The step
** calls the transition with one_step (Blocks' iterate=False), its
** sequences plus distribute(weighted_averages).
** Choice made: the glimpses are outputs of the step, not states carried to
** the next step (Blocks carries them: do_apply.states lists them). This
** attention never reads its previous glimpses, so a carried glimpse is a
** state no step reads, which kiln's recurrent layer refuses as a wiring
** mistake; as an output it has the same values. With
** return_initial_states, apply puts Blocks' initial glimpses (zeros)
** before them, as Blocks returns them.
** FakeAttentionRecurrent is the same class data with no attention: apply
** is the transition's, compute_states its one step, no glimpses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/bricks_internal.h"
#include "compiler/graph.h"

/* States of an attention, and inputs of a wrapped transition, at most. */
#define MAX_STATES 16
#define MAX_INPUTS 64

static const kiln_node_rec *rec_of(const kiln_graph *g, kiln_node n) { return kiln_graph_cnode(g, n.id); }
static bool is_mask(const char *name) { return strcmp(name, "mask") == 0; }

/* (T, B, d) as (T*B, d) rows for a Feedforward child, and back. */
static kiln_node fold(kiln_graph *g, kiln_node x)
{
    return kiln_expr_reshape(g, x, 2, (int64_t[]){KILN_INFER, kiln_graph_node_dim(g, x, 2)});
}

static kiln_node unfold(kiln_graph *g, kiln_node rows, kiln_node like)
{
    return kiln_expr_reshape(g, rows, 3, (int64_t[]){kiln_graph_node_dim(g, like, 0), kiln_graph_node_dim(g, like, 1),
                                                     kiln_graph_node_dim(g, rows, 1)});
}

/* Child i's apply on the (time, batch) rows of x: (T, B, out). */
static enum kiln_status apply_rows(kiln_brick *b, int i, kiln_graph *g, kiln_node x, kiln_node *y)
{
    kiln_node rows = fold(g, x), out;
    enum kiln_status s = kiln_brick_built(b, g, rows);
    if (s == KILN_OK)
        s = kiln_brick_child_call(b, i, "apply", g, &rows, 1, &out, 1);
    if (s == KILN_OK)
        s = kiln_brick_built(b, g, *y = unfold(g, out, x));
    return s;
}

/* ---- ShallowEnergyComputer: tanh, then a Linear without bias ------------------ */

static enum kiln_status energy_push_allocation_config(kiln_brick *b)
{
    kiln_brick *lin = kiln_brick_child(b, 1);
    kiln_brick_put_dim(lin, "input_dim", kiln_brick_dim(b, "input_dim"));
    kiln_brick_put_dim(lin, "output_dim", kiln_brick_dim(b, "output_dim"));
    return KILN_OK;
}

static enum kiln_status energy_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    kiln_node h;
    enum kiln_status s = kiln_brick_child_call(b, 0, "apply", g, in, 1, &h, 1);
    return s == KILN_OK ? kiln_brick_child_call(b, 1, "apply", g, &h, 1, out, 1) : s;
}

static const char *const ENERGY_DIMS[] = {"input_dim", "output_dim", NULL};
static const kiln_brick_input ENERGY_INPUTS[] = {
    {"input", KILN_INPUT_FLOAT, 2, "(batch, input_dim)", "input_dim"},
    {NULL},
};
static const char *const OUTPUT[] = {"output", NULL};
static const kiln_brick_application ENERGY_APPS[] = {
    {"apply", ENERGY_INPUTS, OUTPUT, energy_apply, 0},
    {NULL},
};
static const kiln_brick_class SHALLOW_ENERGY_COMPUTER = {
    .class_name = "ShallowEnergyComputer",
    .default_name = "shallowenergycomputer",
    .flags = KILN_BRICK_INITIALIZABLE,
    .dims = ENERGY_DIMS,
    .applications = ENERGY_APPS,
    .push_allocation_config = energy_push_allocation_config,
};

kiln_brick *kiln_shallow_energy_computer_create(const char *name, int64_t input_dim, int64_t output_dim)
{
    if (input_dim < 0 || output_dim < 0)
        return NULL;
    kiln_brick *b = kiln_brick_create(&SHALLOW_ENERGY_COMPUTER, name);
    kiln_brick *kids[2] = {kiln_tanh_create(NULL), kiln_linear_create(NULL, input_dim, output_dim)};
    bool ok = b && kids[0] && kids[1] && kiln_brick_set_use_bias(kids[1], false) == KILN_OK;
    for (int i = 0; ok && i < 2; i++)
        ok = kiln_brick_add_child(b, kids[i]) == KILN_OK;
    if (!ok) {
        kiln_bricks_destroy_roots(kids, 2);
        kiln_brick_destroy(b);
        return NULL;
    }
    kiln_brick_put_dim(b, "input_dim", input_dim);
    kiln_brick_put_dim(b, "output_dim", output_dim);
    return b;
}

/* ---- SequenceContentAttention ---------------------------------------------------- */

/* Children: 0 state_trans, 1 preprocess, 2 energy_comp. No pointers: the
** default copy clones it. */
typedef struct attention {
    int n;
    char states[MAX_STATES][KILN_MAX_NAME + 1];
} attention;

enum { ATT_STATE_TRANS, ATT_PREPROCESS, ATT_ENERGY };

static int64_t state_dim(const kiln_brick *b, const char *state)
{
    char key[KILN_MAX_NAME + 16];
    snprintf(key, sizeof key, "state_dims.%s", state);
    return kiln_brick_dim(b, key);
}

/* Blocks' _push_allocation_config. */
static enum kiln_status attention_push_allocation_config(kiln_brick *b)
{
    const attention *a = kiln_brick_data(b);
    int64_t match = kiln_brick_dim(b, "match_dim"), attended = kiln_brick_dim(b, "attended_dim");
    kiln_brick *st = kiln_brick_child(b, ATT_STATE_TRANS), *pre = kiln_brick_child(b, ATT_PREPROCESS),
               *en = kiln_brick_child(b, ATT_ENERGY);
    for (int k = 0; k < a->n; k++) {
        char key[KILN_MAX_NAME + 16];
        snprintf(key, sizeof key, "input_dims.%s", a->states[k]);
        kiln_brick_put_dim(st, key, state_dim(b, a->states[k]));
        snprintf(key, sizeof key, "output_dims.%s", a->states[k]);
        kiln_brick_put_dim(st, key, match);
    }
    kiln_brick_put_dim(pre, "input_dim", attended);
    kiln_brick_put_dim(pre, "output_dim", match);
    kiln_brick_put_dim(en, "input_dim", match);
    kiln_brick_put_dim(en, "output_dim", 1);
    return KILN_OK;
}

static enum kiln_status preprocess(kiln_brick *b, kiln_graph *g, kiln_node attended, kiln_node *out)
{
    return apply_rows(b, ATT_PREPROCESS, g, attended, out);
}

static enum kiln_status attention_preprocess(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    return preprocess(b, g, in[0], out);
}

/* The attended (T_s, batch, ..) against what comes with it: a mask
** (T_s, batch), a preprocessed attended (T_s, batch, match_dim), states
** (batch, dim); NONE entries are skipped. */
static enum kiln_status check_with_attended(kiln_brick *b, kiln_graph *g, kiln_node attended, kiln_node mask,
                                            kiln_node pre, const kiln_node *states, int n_states)
{
    const attention *a = kiln_brick_data(b);
    const kiln_node_rec *ra = rec_of(g, attended);
    kiln_desc_buf d1, d2;
    char t_s[48], b_s[48];
    kiln_graph_dim_str(g, ra->shape.dims[0], t_s, sizeof t_s);
    kiln_graph_dim_str(g, ra->shape.dims[1], b_s, sizeof b_s);
    if (kiln_node_ok(mask)) {
        const kiln_node_rec *rm = rec_of(g, mask);
        if (rm->shape.rank != 2 || rm->shape.dims[0] != ra->shape.dims[0] || rm->shape.dims[1] != ra->shape.dims[1])
            return kiln_brick_fail(b, KILN_ERR_SHAPE, "attended_mask is %s, expected (%s, %s): time and batch as "
                                   "the attended, %s", kiln_brick_desc(g, mask, &d1), t_s, b_s,
                                   kiln_brick_desc(g, attended, &d2));
    }
    if (kiln_node_ok(pre)) {
        const kiln_node_rec *rp = rec_of(g, pre);
        int64_t match = kiln_brick_dim(b, "match_dim");
        if (rp->shape.rank != 3 || rp->shape.dims[0] != ra->shape.dims[0] || rp->shape.dims[1] != ra->shape.dims[1] ||
            rp->shape.dims[2] != match)
            return kiln_brick_fail(b, KILN_ERR_SHAPE, "preprocessed_attended is %s, expected (%s, %s, %lld): the "
                                   "attended's time and batch, match_dim features", kiln_brick_desc(g, pre, &d1),
                                   t_s, b_s, (long long)match);
    }
    for (int k = 0; k < n_states; k++) {
        const kiln_node_rec *rs = rec_of(g, states[k]);
        if (rs->shape.rank != 2 || rs->shape.dims[0] != ra->shape.dims[1])
            return kiln_brick_fail(b, KILN_ERR_SHAPE, "%s is %s but the attended is %s: a state is (batch, dim), "
                                   "the attended's batch", a->states[k], kiln_brick_desc(g, states[k], &d1),
                                   kiln_brick_desc(g, attended, &d2));
    }
    return KILN_OK;
}

/* Blocks' compute_energies: energy_comp(preprocessed + sum_k
** state_trans_k(state_k)), (T_s, batch). */
static enum kiln_status energies_of(kiln_brick *b, kiln_graph *g, kiln_node attended, kiln_node pre,
                                    const kiln_node *states, kiln_node *out)
{
    const attention *a = kiln_brick_data(b);
    enum kiln_status s = KILN_OK;
    if (!kiln_node_ok(pre))
        s = preprocess(b, g, attended, &pre);
    kiln_node tr[MAX_STATES], e;
    if (s == KILN_OK)
        s = kiln_brick_child_call(b, ATT_STATE_TRANS, "apply", g, states, a->n, tr, a->n);
    if (s != KILN_OK)
        return s;
    kiln_node match = pre; /* (B, match) broadcast over T_s */
    for (int k = 0; k < a->n; k++)
        match = kiln_expr_add(g, match, tr[k]);
    if ((s = kiln_brick_built(b, g, match)) != KILN_OK || (s = apply_rows(b, ATT_ENERGY, g, match, &e)) != KILN_OK)
        return s;
    *out = kiln_expr_reshape(g, e, 2, (int64_t[]){kiln_graph_node_dim(g, e, 0), kiln_graph_node_dim(g, e, 1)});
    return kiln_brick_built(b, g, *out);
}

/* Blocks' GenericSequenceAttention.compute_weights. */
static enum kiln_status weights_of(kiln_brick *b, kiln_graph *g, kiln_node energies, kiln_node mask, kiln_node *out)
{
    kiln_node e = kiln_expr_exp(g, kiln_expr_sub(g, energies, kiln_expr_max(g, energies, 0)));
    kiln_node norm;
    if (kiln_node_ok(mask)) {
        e = kiln_expr_mul(g, e, mask);
        /* all(1 - mask): 1 where no element of the column is 1 */
        kiln_node none = kiln_expr_sub(g, kiln_expr_constant(g, 1),
                                       kiln_expr_max(g, kiln_expr_equal(g, mask, kiln_expr_constant(g, 1)), 0));
        norm = kiln_expr_add(g, kiln_expr_sum(g, e, 0), none);
    } else {
        norm = kiln_expr_sum(g, e, 0);
    }
    return kiln_brick_built(b, g, *out = kiln_expr_div(g, e, norm));
}

/* Blocks' compute_weighted_averages: sum over T_s of weights[:, :, None] * attended. */
static enum kiln_status averages_of(kiln_brick *b, kiln_graph *g, kiln_node weights, kiln_node attended,
                                    kiln_node *out)
{
    kiln_node w = kiln_expr_reshape(g, weights, 3, (int64_t[]){kiln_graph_node_dim(g, weights, 0),
                                                               kiln_graph_node_dim(g, weights, 1), 1});
    return kiln_brick_built(b, g, *out = kiln_expr_sum(g, kiln_expr_mul(g, w, attended), 0));
}

/* (T_s, batch) matrices that go with an attended: the same first two axes. */
static enum kiln_status check_time_batch(kiln_brick *b, kiln_graph *g, const char *what, kiln_node x,
                                         kiln_node attended)
{
    const kiln_node_rec *rx = rec_of(g, x), *ra = rec_of(g, attended);
    if (rx->shape.rank == 2 && rx->shape.dims[0] == ra->shape.dims[0] && rx->shape.dims[1] == ra->shape.dims[1])
        return KILN_OK;
    kiln_desc_buf d1, d2;
    return kiln_brick_fail(b, KILN_ERR_SHAPE, "%s is %s, expected (time, batch) as the attended, %s", what,
                           kiln_brick_desc(g, x, &d1), kiln_brick_desc(g, attended, &d2));
}

/* inputs: attended, preprocessed_attended?, <states> */
static enum kiln_status attention_compute_energies(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const attention *a = kiln_brick_data(b);
    enum kiln_status s = check_with_attended(b, g, in[0], KILN_NODE_NONE, in[1], in + 2, a->n);
    return s == KILN_OK ? energies_of(b, g, in[0], in[1], in + 2, out) : s;
}

/* inputs: energies, attended_mask? */
static enum kiln_status attention_compute_weights(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    if (kiln_node_ok(in[1]) && !kiln_shape_equal(&rec_of(g, in[1])->shape, &rec_of(g, in[0])->shape)) {
        kiln_desc_buf d1, d2;
        return kiln_brick_fail(b, KILN_ERR_SHAPE, "attended_mask is %s but energies is %s: one shape",
                               kiln_brick_desc(g, in[1], &d1), kiln_brick_desc(g, in[0], &d2));
    }
    return weights_of(b, g, in[0], in[1], out);
}

/* inputs: weights, attended */
static enum kiln_status attention_compute_weighted_averages(kiln_brick *b, kiln_graph *g, const kiln_node *in,
                                                            kiln_node *out)
{
    enum kiln_status s = check_time_batch(b, g, "weights", in[0], in[1]);
    return s == KILN_OK ? averages_of(b, g, in[0], in[1], out) : s;
}

/* Blocks' take_glimpses; inputs: attended, preprocessed_attended?,
** attended_mask?, <states>; outputs: weighted_averages, weights (batch, T_s). */
static enum kiln_status attention_take_glimpses(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const attention *a = kiln_brick_data(b);
    kiln_node e, w;
    enum kiln_status s = check_with_attended(b, g, in[0], in[2], in[1], in + 3, a->n);
    if (s == KILN_OK)
        s = energies_of(b, g, in[0], in[1], in + 3, &e);
    if (s == KILN_OK)
        s = weights_of(b, g, e, in[2], &w);
    if (s == KILN_OK)
        s = averages_of(b, g, w, in[0], &out[0]);
    if (s == KILN_OK)
        s = kiln_brick_built(b, g, out[1] = kiln_expr_transpose(g, w));
    return s;
}

/* Blocks' initial_glimpses: zeros (batch, attended_dim) and (batch, T_s). */
static enum kiln_status attention_initial_glimpses(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const kiln_node_rec *r = rec_of(g, in[0]);
    kiln_node zero = kiln_expr_constant(g, 0);
    out[0] = kiln_expr_broadcast(g, zero, 2, (int64_t[]){r->shape.dims[1], r->shape.dims[2]});
    out[1] = kiln_expr_broadcast(g, zero, 2, (int64_t[]){r->shape.dims[1], r->shape.dims[0]});
    enum kiln_status s = kiln_brick_built(b, g, out[0]);
    return s == KILN_OK ? kiln_brick_built(b, g, out[1]) : s;
}

#define ATTENDED_INPUT {"attended", KILN_INPUT_FLOAT, 3, "(time, batch, attended_dim)", "attended_dim"}
#define PREPROCESSED_INPUT                                                                                    \
    {"preprocessed_attended", KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 3, "(time, batch, match_dim)", "match_dim"}
#define MASK_INPUT {"attended_mask", KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 2, "(time, batch)", NULL}

static const kiln_brick_input ATTENDED_ONLY[] = {ATTENDED_INPUT, {NULL}};
static const kiln_brick_input WEIGHTS_INPUTS[] = {
    {"energies", KILN_INPUT_FLOAT, 2, "(time, batch)", NULL},
    MASK_INPUT,
    {NULL},
};
static const kiln_brick_input AVERAGES_INPUTS[] = {
    {"weights", KILN_INPUT_FLOAT, 2, "(time, batch)", NULL},
    ATTENDED_INPUT,
    {NULL},
};
/* Placeholders: each brick sets the lists with its states. */
static const kiln_brick_input STATES_PLACEHOLDER[] = {{"states", 0, 0, NULL, NULL}, {NULL}};
static const char *const PREPROCESSED[] = {"preprocessed_attended", NULL};
static const char *const ENERGIES[] = {"energies", NULL};
static const char *const WEIGHTS[] = {"weights", NULL};
static const char *const AVERAGES[] = {"weighted_averages", NULL};
static const char *const GLIMPSES[] = {"weighted_averages", "weights", NULL};
static const kiln_brick_application ATTENTION_APPS[] = {
    {"preprocess", ATTENDED_ONLY, PREPROCESSED, attention_preprocess, 0},
    {"compute_energies", STATES_PLACEHOLDER, ENERGIES, attention_compute_energies, 0},
    {"compute_weights", WEIGHTS_INPUTS, WEIGHTS, attention_compute_weights, 0},
    {"compute_weighted_averages", AVERAGES_INPUTS, AVERAGES, attention_compute_weighted_averages, 0},
    {"take_glimpses", STATES_PLACEHOLDER, GLIMPSES, attention_take_glimpses, 0},
    {"initial_glimpses", ATTENDED_ONLY, GLIMPSES, attention_initial_glimpses, 0},
    {NULL},
};
static const char *const ATTENTION_DIMS[] = {"attended_dim", "match_dim", NULL};
static const kiln_brick_class SEQUENCE_CONTENT_ATTENTION = {
    .class_name = "SequenceContentAttention",
    .default_name = "sequencecontentattention",
    .flags = KILN_BRICK_INITIALIZABLE,
    .data_size = sizeof(attention),
    .dims = ATTENTION_DIMS,
    .applications = ATTENTION_APPS,
    .push_allocation_config = attention_push_allocation_config,
};

/* compute_energies' and take_glimpses' inputs: the fixed ones, then a
** state per name; keys[] holds the "state_dims.<name>" strings. */
static bool attention_set_io(kiln_brick *b)
{
    const attention *a = kiln_brick_data(b);
    static const kiln_brick_input fixed[] = {ATTENDED_INPUT, PREPROCESSED_INPUT, MASK_INPUT};
    kiln_brick_input in[3 + MAX_STATES + 1];
    char keys[MAX_STATES][KILN_MAX_NAME + 16];
    for (int k = 0; k < a->n; k++) {
        snprintf(keys[k], sizeof keys[k], "state_dims.%s", a->states[k]);
        in[3 + k] = (kiln_brick_input){a->states[k], KILN_INPUT_FLOAT, 2, "(batch, state dim)", keys[k]};
    }
    in[3 + a->n] = (kiln_brick_input){NULL};
    memcpy(in, fixed, sizeof fixed);
    if (kiln_brick_set_application_io(b, "take_glimpses", in, GLIMPSES) != KILN_OK)
        return false;
    in[2] = in[1]; /* compute_energies: attended, preprocessed_attended?, <states> */
    in[1] = in[0];
    return kiln_brick_set_application_io(b, "compute_energies", in + 1, ENERGIES) == KILN_OK;
}

/* A Linear without bias named name (a default child). */
static kiln_brick *linear_no_bias(const char *name)
{
    kiln_brick *l = kiln_linear_create(name, 0, 0);
    if (l && kiln_brick_set_use_bias(l, false) != KILN_OK) {
        kiln_brick_destroy(l);
        return NULL;
    }
    return l;
}

/* Blocks' Feedforward: dims input_dim and output_dim, an apply of one input. */
static bool feedforward(const kiln_brick *p)
{
    int64_t d;
    return !p || (kiln_brick_get_dim(p, "input_dim", &d) == KILN_OK &&
                  kiln_brick_get_dim(p, "output_dim", &d) == KILN_OK && kiln_brick_input_count(p, "apply") == 1 &&
                  kiln_brick_output_count(p, "apply") == 1);
}

/* Plan:
** 1. validate (bricks that are not the caller's to give: NULL, left alone);
** 2. the brick, its state names and dims;
** 3. the children: state_trans (a Parallel of the state transformer),
**    preprocess, energy_comp (defaults made here);
** 4. its applications' inputs, with a state per name.
** After 1, the bricks given are the attention's or destroyed. */
kiln_brick *kiln_sequence_content_attention_create(const char *name, const char *const *state_names, int n_states,
                                                   const int64_t *state_dims, int64_t attended_dim, int64_t match_dim,
                                                   kiln_brick *state_transformer, kiln_brick *attended_transformer,
                                                   kiln_brick *energy_computer)
{
    /* 1. validate */
    kiln_brick *given[3] = {state_transformer, attended_transformer, energy_computer};
    KILN_API_CHECK(state_names && kiln_bricks_are_roots(given, 3));
    if (!kiln_bricks_are_roots(given, 3))
        return NULL;
    kiln_brick *b = NULL, *kids[3] = {NULL, NULL, NULL};
    bool ok = state_names && n_states >= 1 && n_states <= MAX_STATES && attended_dim >= 0 && match_dim >= 0;
    for (int k = 0; ok && k < n_states; k++) {
        ok = state_names[k] && *state_names[k] && strlen(state_names[k]) <= KILN_MAX_NAME &&
             !strchr(state_names[k], '|') && (!state_dims || state_dims[k] >= 0);
        for (int j = 0; ok && j < k; j++)
            ok = strcmp(state_names[j], state_names[k]) != 0;
    }
    for (int i = 0; ok && i < 3; i++)
        ok = feedforward(given[i]);
    /* 2. the brick */
    ok = ok && (b = kiln_brick_create(&SEQUENCE_CONTENT_ATTENTION, name));
    if (ok) {
        attention *a = kiln_brick_data(b);
        a->n = n_states;
        for (int k = 0; k < n_states; k++)
            strcpy(a->states[k], state_names[k]);
        for (int k = 0; ok && k < n_states; k++) {
            char key[KILN_MAX_NAME + 16];
            snprintf(key, sizeof key, "state_dims.%s", state_names[k]);
            ok = kiln_brick_add_dim(b, key, state_dims ? state_dims[k] : 0) == KILN_OK;
        }
        kiln_brick_put_dim(b, "attended_dim", attended_dim);
        kiln_brick_put_dim(b, "match_dim", match_dim);
    }
    /* 3. the children (the Parallel takes the state transformer) */
    if (ok) {
        kiln_brick *proto = state_transformer ? state_transformer : linear_no_bias(NULL);
        given[0] = NULL;
        kids[0] = proto ? kiln_parallel_create("state_trans", state_names, n_states, NULL, NULL, proto, NULL) : NULL;
        kids[1] = attended_transformer ? attended_transformer : kiln_linear_create("preprocess", 0, 0);
        kids[2] = energy_computer ? energy_computer : kiln_shallow_energy_computer_create("energy_comp", 0, 0);
        given[1] = given[2] = NULL;
        for (int i = 0; ok && i < 3; i++)
            ok = kids[i] && kiln_brick_add_child(b, kids[i]) == KILN_OK;
    }
    /* 4. applications */
    ok = ok && attention_set_io(b);
    if (ok)
        return b;
    kiln_bricks_destroy_roots(given, 3);
    kiln_bricks_destroy_roots(kids, 3);
    kiln_brick_destroy(b);
    return NULL;
}

/* ---- AttentionRecurrent and FakeAttentionRecurrent -------------------------------- */

/* Children: 0 transition, 1 attention, 2 distribute (none when fake). The
** transition's "apply" inputs are n_t; apply's follow them with the
** attended and its mask when add_contexts, do_apply's with the
** preprocessed attended as well. */
typedef struct att_rec {
    bool fake, add_contexts;
    int n_t;                             /* the transition's apply inputs */
    int attended, mask;                  /* their indices among apply's inputs */
    char pre_name[KILN_MAX_NAME + 16];   /* "preprocessed_<attended>" */
} att_rec;

enum { AR_TRANSITION, AR_ATTENTION, AR_DISTRIBUTE };

/* The transition's apply declaration. */
static const kiln_brick_input *transition_decl(const kiln_brick *b, int *n)
{
    const kiln_brick_input *d = NULL;
    kiln_brick_application_of(kiln_brick_child(b, AR_TRANSITION), "apply", &d, n);
    return d;
}

/* Blocks' initial_states: the transition's. */
static enum kiln_status att_rec_initial_state(kiln_brick *b, kiln_graph *g, const char *state, int64_t batch,
                                              kiln_node *out)
{
    kiln_brick *t = kiln_brick_child(b, AR_TRANSITION);
    if (kiln_recurrent_initial_state(t, "apply", g, state, batch, out) != KILN_OK)
        return kiln_brick_fail_from(b, t);
    return KILN_OK;
}

/* Blocks' _push_allocation_config: the attention's state dims and the
** distribute's dims from the transition's. */
static enum kiln_status att_rec_push_allocation_config(kiln_brick *b)
{
    const att_rec *r = kiln_brick_data(b);
    if (r->fake)
        return KILN_OK;
    kiln_brick *t = kiln_brick_child(b, AR_TRANSITION), *att = kiln_brick_child(b, AR_ATTENTION),
               *dist = kiln_brick_child(b, AR_DISTRIBUTE);
    const attention *a = kiln_brick_data(att);
    char key[KILN_MAX_NAME + 16];
    for (int k = 0; k < a->n; k++) {
        snprintf(key, sizeof key, "state_dims.%s", a->states[k]);
        kiln_brick_put_dim(att, key, kiln_brick_app_input_dim(t, "apply", a->states[k]));
    }
    kiln_brick_put_dim(dist, "source_dim", kiln_brick_dim(att, "attended_dim"));
    for (int i = 1; i < kiln_brick_input_count(dist, "apply"); i++) {
        const char *target = kiln_brick_input_name(dist, "apply", i);
        snprintf(key, sizeof key, "target_dims.%s", target);
        kiln_brick_put_dim(dist, key, kiln_brick_app_input_dim(t, "apply", target));
    }
    return KILN_OK;
}

/* Index of input `name` in decl[0..n), or -1. */
static int find_input(const kiln_brick_input *decl, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(decl[i].name, name) == 0)
            return i;
    return -1;
}

/* Glimpses from the states at t-1 (in the transition's order of states,
** given by position in tin, the transition's inputs), the attended, its
** mask and preprocessed form: the attention's take_glimpses. */
static enum kiln_status glimpses_of(kiln_brick *b, kiln_graph *g, const kiln_node *tin, kiln_node attended,
                                    kiln_node mask, kiln_node pre, kiln_node *glimpses)
{
    int n_t;
    const kiln_brick_input *td = transition_decl(b, &n_t);
    const attention *a = kiln_brick_data(kiln_brick_child(b, AR_ATTENTION));
    kiln_node in[3 + MAX_STATES] = {attended, pre, mask};
    for (int k = 0; k < a->n; k++)
        in[3 + k] = tin[find_input(td, n_t, a->states[k])]; /* states of the transition: checked at creation */
    return kiln_brick_child_call(b, AR_ATTENTION, "take_glimpses", g, in, 3 + a->n, glimpses, 2);
}

/* Blocks' compute_states: the transition's one step on tin (its inputs,
** states at t-1 among them) with distribute(weighted_averages) added to
** its sequences but the mask; next[k] is state k of the transition's
** order of states. */
static enum kiln_status states_of(kiln_brick *b, kiln_graph *g, const kiln_node *tin, const kiln_node *glimpses,
                                  kiln_node *next)
{
    const att_rec *r = kiln_brick_data(b);
    int n_t;
    const kiln_brick_input *td = transition_decl(b, &n_t);
    kiln_brick *t = kiln_brick_child(b, AR_TRANSITION);
    kiln_node in[MAX_INPUTS], out[MAX_INPUTS];
    memcpy(in, tin, sizeof *in * (size_t)n_t);
    enum kiln_status s = KILN_OK;
    if (!r->fake) {
        kiln_brick *dist = kiln_brick_child(b, AR_DISTRIBUTE);
        int nd = kiln_brick_input_count(dist, "apply");
        kiln_node din[MAX_INPUTS], dout[MAX_INPUTS];
        din[0] = glimpses[0];
        for (int i = 1; i < nd; i++) {
            const char *target = kiln_brick_input_name(dist, "apply", i);
            int at = find_input(td, n_t, target);
            if (at < 0 || !kiln_node_ok(in[at]))
                return kiln_brick_fail(b, KILN_ERR_ARG, "compute_states: no %s to distribute the glimpses into",
                                       target);
            din[i] = in[at];
        }
        if ((s = kiln_brick_child_call(b, AR_DISTRIBUTE, "apply", g, din, nd, dout, nd - 1)) != KILN_OK)
            return s;
        for (int i = 1; i < nd; i++)
            in[find_input(td, n_t, kiln_brick_input_name(dist, "apply", i))] = dout[i - 1];
    }
    int n_out = kiln_brick_output_count(t, "apply");
    kiln_recurrent_options one = {.one_step = true};
    if (kiln_recurrent_call(t, "apply", g, in, n_t, &one, out, n_out) != KILN_OK)
        return kiln_brick_fail_from(b, t);
    for (int i = 0, k = 0; i < n_t; i++)
        if (kiln_input_kind(&td[i]) == KILN_INPUT_STATE) {
            int o = 0;
            while (strcmp(kiln_brick_output_name(t, "apply", o), td[i].name) != 0)
                o++; /* a state is an output: the recurrent layer checked */
            next[k++] = out[o];
        }
    return KILN_OK;
}

/* do_apply's step; inputs: the transition's (n_t), attended and mask when
** added, the preprocessed attended; outputs: the states, the glimpses. */
static enum kiln_status att_rec_do_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const att_rec *r = kiln_brick_data(b);
    int n_t;
    transition_decl(b, &n_t);
    kiln_node glimpses[2];
    enum kiln_status s = glimpses_of(b, g, in, in[r->attended], in[r->mask], in[n_t + (r->add_contexts ? 2 : 0)],
                                     glimpses);
    if (s == KILN_OK)
        s = states_of(b, g, in, glimpses, out);
    if (s != KILN_OK)
        return s;
    int n_states = kiln_brick_output_count(b, "do_apply") - 2;
    out[n_states] = glimpses[0];
    out[n_states + 1] = glimpses[1];
    return KILN_OK;
}

/* apply: preprocess, then do_apply with the caller's options; with
** return_initial_states the glimpses start with the initial (zero) ones. */
static enum kiln_status att_rec_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const att_rec *r = kiln_brick_data(b);
    kiln_recurrent_options o = kiln_brick_recurrent_options(b);
    int n_in = kiln_brick_input_count(b, "apply"), n_out = kiln_brick_output_count(b, "apply");
    if (r->fake) {
        kiln_brick *t = kiln_brick_child(b, AR_TRANSITION);
        if (kiln_recurrent_call(t, "apply", g, in, n_in, &o, out, n_out) != KILN_OK)
            return kiln_brick_fail_from(b, t);
        return KILN_OK;
    }
    kiln_node din[MAX_INPUTS + 3], pre;
    memcpy(din, in, sizeof *in * (size_t)n_in);
    kiln_brick *att = kiln_brick_child(b, AR_ATTENTION);
    if (kiln_brick_call(att, "preprocess", g, &in[r->attended], 1, &pre, 1) != KILN_OK)
        return kiln_brick_fail_from(b, att);
    din[n_in] = pre;
    if (kiln_recurrent_call(b, "do_apply", g, din, n_in + 1, &o, out, n_out) != KILN_OK)
        return kiln_brick_status(b);
    if (o.return_initial_states) {
        kiln_node init[2];
        if (kiln_brick_call(att, "initial_glimpses", g, &in[r->attended], 1, init, 2) != KILN_OK)
            return kiln_brick_fail_from(b, att);
        for (int k = 0; k < 2; k++) {
            kiln_node *v = &out[n_out - 2 + k];
            const kiln_node_rec *ri = rec_of(g, init[k]);
            kiln_node row = kiln_expr_reshape(g, init[k], 3, (int64_t[]){1, ri->shape.dims[0], ri->shape.dims[1]});
            *v = kiln_expr_concat(g, (kiln_node[]){row, *v}, 2, 0);
            if (kiln_brick_built(b, g, *v) != KILN_OK)
                return kiln_brick_status(b);
        }
    }
    return KILN_OK;
}

/* take_glimpses: inputs <states>, attended, attended_mask?, preprocessed? */
static enum kiln_status att_rec_take_glimpses(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    int n_t;
    const kiln_brick_input *td = transition_decl(b, &n_t);
    kiln_node tin[MAX_INPUTS];
    int k = 0;
    for (int i = 0; i < n_t; i++)
        tin[i] = kiln_input_kind(&td[i]) == KILN_INPUT_STATE ? in[k++] : KILN_NODE_NONE;
    return glimpses_of(b, g, tin, in[k], in[k + 1], in[k + 2], out);
}

/* compute_states: inputs <sequences>, <states>, weighted_averages,
** weights, <contexts> of the transition (one step). */
static enum kiln_status att_rec_compute_states(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const att_rec *r = kiln_brick_data(b);
    int n_t;
    const kiln_brick_input *td = transition_decl(b, &n_t);
    kiln_node tin[MAX_INPUTS];
    int j = 0;
    for (int i = 0; i < n_t; i++)
        if (kiln_input_kind(&td[i]) != KILN_INPUT_CONTEXT)
            tin[i] = in[j++];
    const kiln_node *glimpses = in + j; /* between the states and the contexts */
    j += r->fake ? 0 : 2;
    for (int i = 0; i < n_t; i++)
        if (kiln_input_kind(&td[i]) == KILN_INPUT_CONTEXT)
            tin[i] = in[j++];
    return states_of(b, g, tin, glimpses, out);
}

static const char *const PLACEHOLDER_OUTPUT[] = {"states", NULL};
static const kiln_brick_application ATT_REC_APPS[] = {
    {"apply", STATES_PLACEHOLDER, PLACEHOLDER_OUTPUT, att_rec_apply, KILN_APPLICATION_OPTIONS},
    {"do_apply", STATES_PLACEHOLDER, PLACEHOLDER_OUTPUT, att_rec_do_apply, KILN_APPLICATION_RECURRENT},
    {"take_glimpses", STATES_PLACEHOLDER, GLIMPSES, att_rec_take_glimpses, 0},
    {"compute_states", STATES_PLACEHOLDER, PLACEHOLDER_OUTPUT, att_rec_compute_states, 0},
    {NULL},
};
static const kiln_brick_class ATTENTION_RECURRENT = {
    .class_name = "AttentionRecurrent",
    .default_name = "attentionrecurrent",
    .flags = KILN_BRICK_INITIALIZABLE,
    .data_size = sizeof(att_rec),
    .applications = ATT_REC_APPS,
    .push_allocation_config = att_rec_push_allocation_config,
    .initial_state = att_rec_initial_state,
};
static const kiln_brick_application FAKE_APPS[] = {
    {"apply", STATES_PLACEHOLDER, PLACEHOLDER_OUTPUT, att_rec_apply, KILN_APPLICATION_OPTIONS},
    {"compute_states", STATES_PLACEHOLDER, PLACEHOLDER_OUTPUT, att_rec_compute_states, 0},
    {NULL},
};
static const kiln_brick_class FAKE_ATTENTION_RECURRENT = {
    .class_name = "FakeAttentionRecurrent",
    .default_name = "fakeattentionrecurrent",
    .flags = KILN_BRICK_INITIALIZABLE,
    .data_size = sizeof(att_rec),
    .applications = FAKE_APPS,
    .initial_state = att_rec_initial_state,
};

/* An input list being built (names point into the transition's lists or
** the brick's data, alive for the set_application_io call). */
typedef struct io_list {
    kiln_brick_input in[MAX_INPUTS + 8];
    int n;
    const char *out[MAX_INPUTS + 4];
    int n_out;
} io_list;

static void io_in(io_list *l, kiln_brick_input d) { l->in[l->n++] = d; l->in[l->n] = (kiln_brick_input){NULL}; }
static void io_out(io_list *l, const char *name) { l->out[l->n_out++] = name; l->out[l->n_out] = NULL; }

/* One step's view of a transition's input: no kind; a state is required. */
static kiln_brick_input one_step(const kiln_brick_input *d)
{
    kiln_brick_input s = *d;
    s.flags &= ~(KILN_INPUT_SEQUENCE | KILN_INPUT_STATE | KILN_INPUT_CONTEXT);
    if (kiln_input_kind(d) == KILN_INPUT_STATE)
        s.flags &= ~KILN_INPUT_OPTIONAL;
    s.last_dim = NULL; /* a dim of the transition, not of this brick: the transition checks */
    return s;
}

/* The applications' inputs and outputs from the transition's (Blocks'
** properties of AttentionRecurrent). */
static bool att_rec_set_io(kiln_brick *b, const char *attended, const char *mask)
{
    const att_rec *r = kiln_brick_data(b);
    int n_t;
    const kiln_brick_input *td = transition_decl(b, &n_t);
    io_list ap = {.n = 0}, ts = {.n = 0}, tg = {.n = 0}, cs = {.n = 0};
    for (int i = 0; i < n_t; i++) {
        kiln_brick_input d = td[i];
        d.last_dim = NULL;
        io_in(&ap, d);
    }
    if (r->add_contexts && !r->fake) {
        io_in(&ap, (kiln_brick_input){attended, KILN_INPUT_CONTEXT | KILN_INPUT_FLOAT, 3,
                                      "(time, batch, attended_dim)", NULL});
        io_in(&ap, (kiln_brick_input){mask, KILN_INPUT_CONTEXT | KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 2,
                                      "(time, batch)", NULL});
    }
    for (int i = 0; i < n_t; i++)
        if (kiln_input_kind(&td[i]) == KILN_INPUT_STATE) {
            io_out(&ts, td[i].name);
            io_in(&tg, one_step(&td[i]));
        }
    for (int i = 0; i < n_t; i++)
        if (kiln_input_kind(&td[i]) != KILN_INPUT_CONTEXT)
            io_in(&cs, one_step(&td[i]));
    if (!r->fake) {
        io_in(&cs, (kiln_brick_input){"weighted_averages", KILN_INPUT_FLOAT, 2, "(batch, attended_dim)", NULL});
        io_in(&cs, (kiln_brick_input){"weights", KILN_INPUT_FLOAT, 2, "(batch, time)", NULL});
        io_in(&tg, (kiln_brick_input){attended, KILN_INPUT_FLOAT, 3, "(time, batch, attended_dim)", NULL});
        io_in(&tg, (kiln_brick_input){mask, KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 2, "(time, batch)", NULL});
        io_in(&tg, (kiln_brick_input){r->pre_name, KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 3,
                                      "(time, batch, match_dim)", NULL});
    }
    for (int i = 0; i < n_t; i++)
        if (kiln_input_kind(&td[i]) == KILN_INPUT_CONTEXT)
            io_in(&cs, one_step(&td[i]));
    io_list all = ts; /* the outputs of apply and do_apply: states, then glimpses */
    if (!r->fake) {
        io_out(&all, "weighted_averages");
        io_out(&all, "weights");
    }
    bool ok = kiln_brick_set_application_io(b, "apply", ap.in, all.out) == KILN_OK &&
              kiln_brick_set_application_io(b, "compute_states", cs.in, ts.out) == KILN_OK;
    if (ok && !r->fake) {
        io_in(&ap, (kiln_brick_input){r->pre_name, KILN_INPUT_CONTEXT | KILN_INPUT_FLOAT, 3,
                                      "(time, batch, match_dim)", NULL});
        ok = kiln_brick_set_application_io(b, "do_apply", ap.in, all.out) == KILN_OK &&
             kiln_brick_set_application_io(b, "take_glimpses", tg.in, GLIMPSES) == KILN_OK;
    }
    return ok;
}

/* A transition this brick can wrap: its apply is recurrent, every input
** has a kind, at most MAX_INPUTS of them; with an attention, its states
** include the attention's state names, and without add_contexts it has two
** contexts or more. */
static bool transition_ok(const kiln_brick *t, const kiln_brick *att, bool add_contexts)
{
    const kiln_brick_input *td;
    int n_t, n_ctx = 0;
    const kiln_brick_application *app = kiln_brick_application_of(t, "apply", &td, &n_t);
    if (!app || !(app->flags & KILN_APPLICATION_RECURRENT) || n_t > MAX_INPUTS)
        return false;
    for (int i = 0; i < n_t; i++) {
        if (!kiln_input_kind(&td[i]))
            return false;
        n_ctx += kiln_input_kind(&td[i]) == KILN_INPUT_CONTEXT;
    }
    if (!att)
        return true;
    if (kiln_brick_class_of(att) != &SEQUENCE_CONTENT_ATTENTION || (!add_contexts && n_ctx < 2))
        return false;
    const attention *a = kiln_brick_data(att);
    for (int k = 0; k < a->n; k++) {
        int i = find_input(td, n_t, a->states[k]);
        if (i < 0 || kiln_input_kind(&td[i]) != KILN_INPUT_STATE)
            return false;
    }
    return true;
}

/* A distribute given: apply(source, <targets>) -> <targets>, each target a
** sequence of the transition. */
static bool distribute_ok(const kiln_brick *dist, const kiln_brick *t)
{
    const kiln_brick_input *td;
    int n_t, nd = kiln_brick_input_count(dist, "apply");
    kiln_brick_application_of(t, "apply", &td, &n_t);
    if (nd < 2 || kiln_brick_output_count(dist, "apply") != nd - 1)
        return false;
    for (int i = 1; i < nd; i++) {
        int at = find_input(td, n_t, kiln_brick_input_name(dist, "apply", i));
        if (at < 0 || kiln_input_kind(&td[at]) != KILN_INPUT_SEQUENCE)
            return false;
    }
    return true;
}

/* Plan:
** 1. validate (bricks that are not the caller's to give: NULL, left
**    alone), the transition and the attention's states;
** 2. the brick and its data: where the attended and its mask are;
** 3. the children, with the default Distribute of the weighted averages
**    into the transition's sequences but "mask";
** 4. the applications' inputs and outputs.
** After 1, the bricks given are the brick's or destroyed. */
static kiln_brick *att_rec_create(const kiln_brick_class *cls, const char *name, kiln_brick *transition,
                                  kiln_brick *attention, kiln_brick *distribute, bool add_contexts,
                                  const char *attended_name, const char *mask_name)
{
    /* 1. validate */
    kiln_brick *given[3] = {transition, attention, distribute};
    bool fake = cls == &FAKE_ATTENTION_RECURRENT;
    KILN_API_CHECK(transition && (attention || fake) && kiln_bricks_are_roots(given, 3));
    if (!transition || (!attention && !fake) || !kiln_bricks_are_roots(given, 3))
        return NULL;
    kiln_brick *b = NULL;
    if (!attended_name)
        attended_name = "attended";
    if (!mask_name)
        mask_name = "attended_mask";
    bool ok = transition_ok(transition, attention, add_contexts) && strlen(attended_name) <= KILN_MAX_NAME &&
              strlen(mask_name) <= KILN_MAX_NAME && *attended_name && *mask_name &&
              strcmp(attended_name, mask_name) != 0;
    /* 2. the brick */
    ok = ok && (b = kiln_brick_create(cls, name));
    if (ok) {
        att_rec *r = kiln_brick_data(b);
        const kiln_brick_input *td;
        int n_t, first_ctx = -1;
        kiln_brick_application_of(transition, "apply", &td, &n_t);
        for (int i = n_t - 1; i >= 0; i--)
            if (kiln_input_kind(&td[i]) == KILN_INPUT_CONTEXT)
                first_ctx = i;
        *r = (att_rec){.fake = fake, .add_contexts = add_contexts && !fake, .n_t = n_t};
        r->attended = fake ? -1 : r->add_contexts ? n_t : first_ctx;
        r->mask = fake ? -1 : r->add_contexts ? n_t + 1 : first_ctx + 1;
        if (!fake) {
            const char *att_name = r->add_contexts ? attended_name : td[first_ctx].name;
            ok = kiln_snprintf(r->pre_name, sizeof r->pre_name, "preprocessed_%s", att_name) == 0 &&
                 find_input(td, n_t, r->pre_name) < 0 &&
                 (!r->add_contexts || (find_input(td, n_t, attended_name) < 0 && find_input(td, n_t, mask_name) < 0));
        }
    }
    /* 3. children */
    const char *targets[MAX_INPUTS];
    int n_targets = 0;
    if (ok && !fake && !distribute) {
        const kiln_brick_input *td;
        int n_t;
        kiln_brick_application_of(transition, "apply", &td, &n_t);
        for (int i = 0; i < n_t; i++)
            if (kiln_input_kind(&td[i]) == KILN_INPUT_SEQUENCE && !is_mask(td[i].name))
                targets[n_targets++] = td[i].name;
        ok = n_targets > 0 &&
             (distribute = given[2] = kiln_distribute_create(NULL, targets, n_targets, "weighted_averages", NULL, 0,
                                                             NULL));
    }
    else if (ok && !fake)
        ok = distribute_ok(distribute, transition);
    for (int i = 0; ok && i < (fake ? 1 : 3); i++)
        ok = kiln_brick_add_child(b, given[i]) == KILN_OK;
    /* 4. applications */
    ok = ok && att_rec_set_io(b, attended_name, mask_name);
    if (ok)
        return b;
    kiln_bricks_destroy_roots(given, 3);
    kiln_brick_destroy(b);
    return NULL;
}

kiln_brick *kiln_attention_recurrent_create(const char *name, kiln_brick *transition, kiln_brick *attention,
                                            kiln_brick *distribute, bool add_contexts, const char *attended_name,
                                            const char *attended_mask_name)
{
    return att_rec_create(&ATTENTION_RECURRENT, name, transition, attention, distribute, add_contexts,
                          attended_name, attended_mask_name);
}

kiln_brick *kiln_fake_attention_recurrent_create(const char *name, kiln_brick *transition)
{
    return att_rec_create(&FAKE_ATTENTION_RECURRENT, name, transition, NULL, NULL, false, NULL, NULL);
}

bool kiln_attention_recurrent_layout(const kiln_brick *b, kiln_attention_recurrent_info *info)
{
    const kiln_brick_class *cls = kiln_brick_class_of(b);
    if (cls != &ATTENTION_RECURRENT && cls != &FAKE_ATTENTION_RECURRENT)
        return false;
    const att_rec *r = kiln_brick_data(b);
    *info = (kiln_attention_recurrent_info){.fake = r->fake, .n_transition_inputs = r->n_t,
                                            .attended = r->attended, .mask = r->mask};
    return true;
}
