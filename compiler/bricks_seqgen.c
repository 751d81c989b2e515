/* bricks_seqgen.c: Blocks' sequence generators (blocks.bricks.
** sequence_generators): the emitters SoftmaxEmitter and TrivialEmitter, the
** feedbacks TrivialFeedback and LookupFeedback, Readout, and
** SequenceGenerator with its cost, cost_matrix and generate.
**
** The generator's step is Blocks' generation algorithm (BaseSequenceGenerator's
** docstring), one step of
**   g_t = take_glimpses(s_{t-1});  r_t = readout(f_{t-1}, s_{t-1}, g_t);
**   y_t = emit(r_t) or the target;  c_t = cost(r_t, y_t);
**   f_t = feedback(y_t);  s_t = compute_states(s_{t-1}, g_t, fork(f_t))
** built once on a scan body (kiln_expr_scan) from the children's one-step
** applications. cost and cost_matrix run it over the targets (with the
** mask: the costs masked, the transition's states held by its own mask);
** generate runs it over n_steps, emitting. The scan carries the
** transition's states and, when the readout reads "feedback", f_{t-1}
** (a float vector, rather than Blocks' integer outputs); the glimpses, the
** outputs and the costs are per-step outputs.
** Choices made: the readout and the cost run inside the step for cost as
** for generate (Blocks' cost_matrix runs the transition with
** return_initial_states and computes the readouts of every step after the
** loop, one large product; the values are the same). In kiln a scan over a
** symbolic T cannot return T+1 states, and one step function serves both
** uses; hoisting the readout out of the loop is a later optimisation.
** SoftmaxEmitter samples by the Gumbel-max trick (argmax of readouts -
** log(-log(u)), u uniform per category): exactly a draw from the softmax,
** with the IR's ops and random state, where Theano drew one uniform per
** row against the cumulative probabilities (which needs a cumulative sum
** kiln has no op for). Greedy decoding (emit_greedy, argmax) is kiln's
** addition. generate needs a sequence (a scan takes T from one): a zeros
** (n_steps, batch) made here, which the step does not read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/bricks_internal.h"
#include "compiler/graph.h"

#define MAX_SOURCES 16
#define MAX_ARGS 64

static const kiln_node_rec *rec_of(const kiln_graph *g, kiln_node n) { return kiln_graph_cnode(g, n.id); }

/* The outputs before the first step of emitter e (its class's initial_state
** for "outputs", Blocks' initial_outputs), for a batch of `batch` rows. */
static enum kiln_status initial_outputs(kiln_brick *b, kiln_brick *e, kiln_graph *g, int64_t batch, kiln_node *out)
{
    const kiln_brick_class *cls = kiln_brick_class_of(e);
    if (!cls->initial_state)
        return kiln_brick_fail(b, KILN_ERR_ARG, "%s (a %s) has no initial outputs", kiln_brick_path(e),
                               cls->class_name);
    if (cls->initial_state(e, g, "outputs", batch, out) != KILN_OK)
        return kiln_brick_fail_from(b, e);
    return KILN_OK;
}

static const char *const OUTPUT[] = {"output", NULL};
/* A macro, not a const object: C allows no object in a static initializer
** (GCC accepts one as an extension, clang does not). */
#define READOUTS_INPUT {"readouts", KILN_INPUT_FLOAT, 2, "(batch, readout_dim)", "readout_dim"}

/* ---- SoftmaxEmitter ----------------------------------------------------------------- */

typedef struct softmax_emitter {
    int32_t initial_output;
} softmax_emitter;

static enum kiln_status softmax_probs(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    return kiln_brick_child_call(b, 0, "apply", g, in, 1, out, 1);
}

/* Gumbel-max: argmax(r - log(-log(u))), u uniform on (0, 1) per category,
** from the random state of the brick's seed. */
static enum kiln_status softmax_emit(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const kiln_node_rec *r = rec_of(g, in[0]);
    int64_t dims[2] = {r->shape.dims[0], r->shape.dims[1]};
    kiln_node u = kiln_expr_random_uniform(g, kiln_graph_random_state(g, kiln_brick_seed(b)), 2, dims, 1e-20, 1);
    kiln_node gumbel = kiln_expr_neg(g, kiln_expr_log(g, kiln_expr_neg(g, kiln_expr_log(g, u))));
    return kiln_brick_built(b, g, out[0] = kiln_expr_argmax(g, kiln_expr_add(g, in[0], gumbel)));
}

static enum kiln_status softmax_emit_greedy(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    return kiln_brick_built(b, g, out[0] = kiln_expr_argmax(g, in[0]));
}

/* inputs: readouts, outputs */
static enum kiln_status softmax_cost(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    kiln_node yx[2] = {in[1], in[0]};
    return kiln_brick_child_call(b, 0, "categorical_cross_entropy", g, yx, 2, out, 1);
}

static enum kiln_status softmax_initial(kiln_brick *b, kiln_graph *g, const char *state, int64_t batch,
                                        kiln_node *out)
{
    const softmax_emitter *e = kiln_brick_data(b);
    kiln_node c = kiln_expr_constant(g, e->initial_output);
    *out = kiln_expr_cast(g, kiln_expr_broadcast(g, c, 1, &batch), KILN_DTYPE_I32);
    return kiln_brick_built(b, g, *out);
}

static const kiln_brick_input READOUTS_ONLY[] = {READOUTS_INPUT, {NULL}};
static const kiln_brick_input SOFTMAX_COST_INPUTS[] = {
    READOUTS_INPUT,
    {"outputs", KILN_INPUT_LABELS, 1, "(batch,)", NULL},
    {NULL},
};
static const kiln_brick_application SOFTMAX_EMITTER_APPS[] = {
    {"probs", READOUTS_ONLY, OUTPUT, softmax_probs, 0},
    {"emit", READOUTS_ONLY, OUTPUT, softmax_emit, 0},
    {"emit_greedy", READOUTS_ONLY, OUTPUT, softmax_emit_greedy, 0},
    {"cost", SOFTMAX_COST_INPUTS, OUTPUT, softmax_cost, 0},
    {NULL},
};
static const char *const READOUT_DIM[] = {"readout_dim", NULL};
static const kiln_brick_class SOFTMAX_EMITTER = {
    .class_name = "SoftmaxEmitter",
    .default_name = "softmaxemitter",
    .flags = KILN_BRICK_INITIALIZABLE,
    .data_size = sizeof(softmax_emitter),
    .dims = READOUT_DIM,
    .applications = SOFTMAX_EMITTER_APPS,
    .initial_state = softmax_initial,
};

kiln_brick *kiln_softmax_emitter_create(const char *name, int32_t initial_output)
{
    kiln_brick *b = kiln_brick_create(&SOFTMAX_EMITTER, name), *sm = kiln_softmax_create("ndimensionalsoftmax");
    if (!b || !sm || kiln_brick_add_child(b, sm) != KILN_OK) {
        kiln_brick_destroy(sm);
        kiln_brick_destroy(b);
        return NULL;
    }
    ((softmax_emitter *)kiln_brick_data(b))->initial_output = initial_output;
    return b;
}

/* ---- TrivialEmitter ------------------------------------------------------------------- */

static enum kiln_status trivial_emit(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    out[0] = in[0]; /* handed back: the machinery copies it */
    return KILN_OK;
}

/* Blocks' zeros_like(outputs), one value per row here. */
static enum kiln_status trivial_cost(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    int64_t batch = kiln_graph_node_dim(g, in[1], 0);
    return kiln_brick_built(b, g, out[0] = kiln_expr_broadcast(g, kiln_expr_constant(g, 0), 1, &batch));
}

static enum kiln_status trivial_initial(kiln_brick *b, kiln_graph *g, const char *state, int64_t batch,
                                        kiln_node *out)
{
    int64_t d = kiln_brick_dim(b, "readout_dim");
    if (d <= 0)
        return kiln_brick_fail(b, KILN_ERR_CONFIG, "allocation config not set: readout_dim");
    *out = kiln_expr_broadcast(g, kiln_expr_constant(g, 0), 2, (int64_t[]){batch, d});
    return kiln_brick_built(b, g, *out);
}

static const kiln_brick_input TRIVIAL_COST_INPUTS[] = {
    READOUTS_INPUT,
    {"outputs", KILN_INPUT_FLOAT, 2, "(batch, readout_dim)", "readout_dim"},
    {NULL},
};
static const kiln_brick_application TRIVIAL_EMITTER_APPS[] = {
    {"emit", READOUTS_ONLY, OUTPUT, trivial_emit, 0},
    {"cost", TRIVIAL_COST_INPUTS, OUTPUT, trivial_cost, 0},
    {NULL},
};
/* the outputs are readouts: output_dim is readout_dim */
static const char *const TRIVIAL_EMITTER_DIMS[] = {"readout_dim|output_dim", NULL};
static const kiln_brick_class TRIVIAL_EMITTER = {
    .class_name = "TrivialEmitter",
    .default_name = "trivialemitter",
    .dims = TRIVIAL_EMITTER_DIMS,
    .applications = TRIVIAL_EMITTER_APPS,
    .initial_state = trivial_initial,
};

kiln_brick *kiln_trivial_emitter_create(const char *name, int64_t readout_dim)
{
    if (readout_dim < 0)
        return NULL;
    kiln_brick *b = kiln_brick_create(&TRIVIAL_EMITTER, name);
    if (b)
        kiln_brick_put_dim(b, "readout_dim", readout_dim);
    return b;
}

/* ---- TrivialFeedback, LookupFeedback -------------------------------------------------- */

static enum kiln_status trivial_feedback(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    out[0] = in[0];
    return KILN_OK;
}

static const kiln_brick_input TRIVIAL_FEEDBACK_INPUTS[] = {
    {"outputs", KILN_INPUT_FLOAT, 2, "(batch, output_dim)", "output_dim"},
    {NULL},
};
static const char *const FEEDBACK[] = {"feedback", NULL};
static const kiln_brick_application TRIVIAL_FEEDBACK_APPS[] = {
    {"feedback", TRIVIAL_FEEDBACK_INPUTS, FEEDBACK, trivial_feedback, 0},
    {NULL},
};
/* what it feeds back is the outputs: feedback_dim is output_dim */
static const char *const TRIVIAL_FEEDBACK_DIMS[] = {"output_dim|feedback_dim", NULL};
static const kiln_brick_class TRIVIAL_FEEDBACK = {
    .class_name = "TrivialFeedback",
    .default_name = "trivialfeedback",
    .dims = TRIVIAL_FEEDBACK_DIMS,
    .applications = TRIVIAL_FEEDBACK_APPS,
};

kiln_brick *kiln_trivial_feedback_create(const char *name, int64_t output_dim)
{
    if (output_dim < 0)
        return NULL;
    kiln_brick *b = kiln_brick_create(&TRIVIAL_FEEDBACK, name);
    if (b)
        kiln_brick_put_dim(b, "output_dim", output_dim);
    return b;
}

static enum kiln_status lookup_push_allocation_config(kiln_brick *b)
{
    kiln_brick *lt = kiln_brick_child(b, 0);
    kiln_brick_put_dim(lt, "length", kiln_brick_dim(b, "num_outputs"));
    kiln_brick_put_dim(lt, "dim", kiln_brick_dim(b, "feedback_dim"));
    return KILN_OK;
}

static enum kiln_status lookup_feedback(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    return kiln_brick_child_call(b, 0, "apply", g, in, 1, out, 1);
}

static const kiln_brick_input LOOKUP_FEEDBACK_INPUTS[] = {{"outputs", 0, 0, NULL, NULL}, {NULL}};
static const kiln_brick_application LOOKUP_FEEDBACK_APPS[] = {
    {"feedback", LOOKUP_FEEDBACK_INPUTS, FEEDBACK, lookup_feedback, 0},
    {NULL},
};
static const char *const LOOKUP_FEEDBACK_DIMS[] = {"num_outputs", "feedback_dim", NULL};
static const kiln_brick_class LOOKUP_FEEDBACK = {
    .class_name = "LookupFeedback",
    .default_name = "lookupfeedback",
    .flags = KILN_BRICK_INITIALIZABLE,
    .dims = LOOKUP_FEEDBACK_DIMS,
    .applications = LOOKUP_FEEDBACK_APPS,
    .push_allocation_config = lookup_push_allocation_config,
};

kiln_brick *kiln_lookup_feedback_create(const char *name, int64_t num_outputs, int64_t feedback_dim)
{
    if (num_outputs < 0 || feedback_dim < 0)
        return NULL;
    kiln_brick *b = kiln_brick_create(&LOOKUP_FEEDBACK, name), *lt = kiln_lookup_table_create(NULL, 0, 0);
    if (!b || !lt || kiln_brick_add_child(b, lt) != KILN_OK) {
        kiln_brick_destroy(lt);
        kiln_brick_destroy(b);
        return NULL;
    }
    kiln_brick_put_dim(b, "num_outputs", num_outputs);
    kiln_brick_put_dim(b, "feedback_dim", feedback_dim);
    return b;
}

/* ---- Readout ------------------------------------------------------------------------------ */

/* Children: 0 emitter, 1 feedback, 2 merge, 3 post_merge. No pointers. */
typedef struct readout {
    int n;
    char sources[MAX_SOURCES][KILN_MAX_NAME + 1];
} readout;

enum { RO_EMITTER, RO_FEEDBACK, RO_MERGE, RO_POST_MERGE };

static enum kiln_status readout_push_allocation_config(kiln_brick *b)
{
    const readout *r = kiln_brick_data(b);
    kiln_brick *em = kiln_brick_child(b, RO_EMITTER), *fb = kiln_brick_child(b, RO_FEEDBACK),
               *merge = kiln_brick_child(b, RO_MERGE), *post = kiln_brick_child(b, RO_POST_MERGE);
    int64_t rd = kiln_brick_dim(b, "readout_dim"), md = kiln_brick_dim(b, "merged_dim");
    kiln_brick_put_dim(em, "readout_dim", rd);
    kiln_brick_put_dim(fb, "output_dim", kiln_brick_dim(em, "output_dim"));
    char key[KILN_MAX_NAME + 16], src[KILN_MAX_NAME + 16];
    for (int k = 0; k < r->n; k++) {
        snprintf(key, sizeof key, "input_dims.%s", r->sources[k]);
        snprintf(src, sizeof src, "source_dims.%s", r->sources[k]);
        kiln_brick_put_dim(merge, key, kiln_brick_dim(b, src));
    }
    kiln_brick_put_dim(merge, "output_dim", md ? md : rd);
    kiln_brick_put_dim(post, "input_dim", md ? md : rd);
    kiln_brick_put_dim(post, "output_dim", rd);
    return KILN_OK;
}

/* readout(<sources>) -> post_merge(merge(sources)) */
static enum kiln_status readout_readout(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const readout *r = kiln_brick_data(b);
    kiln_node merged;
    enum kiln_status s = kiln_brick_child_call(b, RO_MERGE, "apply", g, in, r->n, &merged, 1);
    return s == KILN_OK ? kiln_brick_child_call(b, RO_POST_MERGE, "apply", g, &merged, 1, out, 1) : s;
}

static enum kiln_status readout_emit(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    return kiln_brick_child_call(b, RO_EMITTER, "emit", g, in, 1, out, 1);
}

/* the emitter's emit_greedy, or its emit when it has none (deterministic) */
static enum kiln_status readout_emit_greedy(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    bool has = kiln_brick_input_count(kiln_brick_child(b, RO_EMITTER), "emit_greedy") >= 0;
    return kiln_brick_child_call(b, RO_EMITTER, has ? "emit_greedy" : "emit", g, in, 1, out, 1);
}

static enum kiln_status readout_cost(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    return kiln_brick_child_call(b, RO_EMITTER, "cost", g, in, 2, out, 1);
}

static enum kiln_status readout_feedback(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    return kiln_brick_child_call(b, RO_FEEDBACK, "feedback", g, in, 1, out, 1);
}

static enum kiln_status readout_initial(kiln_brick *b, kiln_graph *g, const char *state, int64_t batch,
                                        kiln_node *out)
{
    return initial_outputs(b, kiln_brick_child(b, RO_EMITTER), g, batch, out);
}

static const kiln_brick_input ANY_OUTPUTS[] = {{"outputs", 0, 0, NULL, NULL}, {NULL}};
static const kiln_brick_input READOUT_COST_INPUTS[] = {READOUTS_INPUT, {"outputs", 0, 0, NULL, NULL}, {NULL}};
static const char *const READOUTS[] = {"readouts", NULL};
static const char *const OUTPUTS[] = {"outputs", NULL};
static const char *const COSTS[] = {"costs", NULL};
static const kiln_brick_application READOUT_APPS[] = {
    {"readout", ANY_OUTPUTS, READOUTS, readout_readout, 0}, /* inputs: the sources, set per brick */
    {"emit", READOUTS_ONLY, OUTPUTS, readout_emit, 0},
    {"emit_greedy", READOUTS_ONLY, OUTPUTS, readout_emit_greedy, 0},
    {"cost", READOUT_COST_INPUTS, COSTS, readout_cost, 0},
    {"feedback", ANY_OUTPUTS, FEEDBACK, readout_feedback, 0},
    {NULL},
};
static const char *const READOUT_DIMS[] = {"readout_dim", "merged_dim", NULL};
static const kiln_brick_class READOUT = {
    .class_name = "Readout",
    .default_name = "readout",
    .flags = KILN_BRICK_INITIALIZABLE,
    .data_size = sizeof(readout),
    .dims = READOUT_DIMS,
    .applications = READOUT_APPS,
    .push_allocation_config = readout_push_allocation_config,
    .initial_state = readout_initial,
};

/* A brick with application app of n_in inputs and one output. */
static bool has_app(const kiln_brick *b, const char *app, int n_in)
{
    return kiln_brick_input_count(b, app) == n_in && kiln_brick_output_count(b, app) == 1;
}

/* Plan:
** 1. validate (bricks that are not the caller's to give: NULL, left
**    alone), the sources, the emitter and feedback bricks given;
** 2. the brick, its sources and dims, readout's inputs;
** 3. the children, defaults made here: emitter, feedback, merge, post_merge.
** After 1, the bricks given are the readout's or destroyed. */
kiln_brick *kiln_readout_create(const char *name, int64_t readout_dim, const char *const *source_names, int n_sources,
                                kiln_brick *emitter, kiln_brick *feedback_brick, kiln_brick *merge,
                                kiln_brick *merge_prototype, kiln_brick *post_merge, int64_t merged_dim)
{
    /* 1. validate */
    kiln_brick *given[5] = {emitter, feedback_brick, merge, post_merge, merge_prototype};
    KILN_API_CHECK(source_names && kiln_bricks_are_roots(given, 5));
    if (!kiln_bricks_are_roots(given, 5))
        return NULL;
    kiln_brick *b = NULL;
    bool ok = source_names && n_sources >= 1 && n_sources <= MAX_SOURCES && readout_dim >= 0 && merged_dim >= 0 &&
              !(merge && merge_prototype) &&
              (!emitter || (has_app(emitter, "emit", 1) && has_app(emitter, "cost", 2))) &&
              (!feedback_brick || has_app(feedback_brick, "feedback", 1)) &&
              (!merge || (has_app(merge, "apply", n_sources))) && (!post_merge || has_app(post_merge, "apply", 1));
    for (int k = 0; ok && k < n_sources; k++) {
        ok = source_names[k] && *source_names[k] && strlen(source_names[k]) <= KILN_MAX_NAME &&
             !strchr(source_names[k], '|');
        for (int j = 0; ok && j < k; j++)
            ok = strcmp(source_names[j], source_names[k]) != 0;
    }
    /* 2. the brick */
    kiln_brick_input in[MAX_SOURCES + 1];
    char keys[MAX_SOURCES][KILN_MAX_NAME + 16];
    ok = ok && (b = kiln_brick_create(&READOUT, name));
    if (ok) {
        readout *r = kiln_brick_data(b);
        r->n = n_sources;
        for (int k = 0; ok && k < n_sources; k++) {
            strcpy(r->sources[k], source_names[k]);
            snprintf(keys[k], sizeof keys[k], "source_dims.%s", source_names[k]);
            in[k] = (kiln_brick_input){r->sources[k], KILN_INPUT_FLOAT, 2, "(batch, source dim)", keys[k]};
            ok = kiln_brick_add_dim(b, keys[k], 0) == KILN_OK;
        }
        in[n_sources] = (kiln_brick_input){NULL};
        kiln_brick_put_dim(b, "readout_dim", readout_dim);
        kiln_brick_put_dim(b, "merged_dim", merged_dim);
        ok = ok && kiln_brick_set_application_io(b, "readout", in, READOUTS) == KILN_OK;
    }
    /* 3. children (the Merge takes the prototype) */
    kiln_brick *kids[4] = {NULL, NULL, NULL, NULL};
    if (ok) {
        kids[RO_EMITTER] = emitter ? emitter : kiln_trivial_emitter_create(NULL, readout_dim);
        kids[RO_FEEDBACK] = feedback_brick ? feedback_brick : kiln_trivial_feedback_create(NULL, readout_dim);
        given[4] = NULL;
        kids[RO_MERGE] = merge ? merge : kiln_merge_create(NULL, source_names, n_sources, NULL, 0, merge_prototype,
                                                           NULL);
        kids[RO_POST_MERGE] = post_merge ? post_merge : kiln_bias_create(NULL, 0);
        for (int i = 0; i < 4; i++)
            given[i] = NULL;
        for (int i = 0; ok && i < 4; i++)
            ok = kids[i] && kiln_brick_add_child(b, kids[i]) == KILN_OK;
    }
    if (ok)
        return b;
    kiln_bricks_destroy_roots(given, 5);
    kiln_bricks_destroy_roots(kids, 4);
    kiln_brick_destroy(b);
    return NULL;
}

/* ---- SequenceGenerator --------------------------------------------------------------------- */

static const kiln_brick_class SEQUENCE_GENERATOR;

/* Children: 0 readout, 1 fork, 2 the wrapped transition. generate's call
** under way hangs its options here. No pointers. */
typedef struct seqgen {
    kiln_generate_options run;
} seqgen;

enum { SG_READOUT, SG_FORK, SG_TRANSITION };

/* The wrapped transition, its layout, and the inner transition's apply
** declaration. */
typedef struct gen_layout {
    kiln_brick *ar, *t;
    kiln_attention_recurrent_info info;
    const kiln_brick_input *td; /* the transition's apply inputs */
    int n_t;
    const kiln_brick_input *ad; /* the wrapped transition's apply inputs */
    int n_a;
    int n_states;               /* the transition's states */
    int n_glimpses;
} gen_layout;

static void layout_of(const kiln_brick *b, gen_layout *L)
{
    L->ar = kiln_brick_child(b, SG_TRANSITION);
    L->t = kiln_brick_child(L->ar, 0);
    kiln_attention_recurrent_layout(L->ar, &L->info);
    kiln_brick_application_of(L->t, "apply", &L->td, &L->n_t);
    kiln_brick_application_of(L->ar, "apply", &L->ad, &L->n_a);
    L->n_states = 0;
    for (int i = 0; i < L->n_t; i++)
        L->n_states += kiln_input_kind(&L->td[i]) == KILN_INPUT_STATE;
    L->n_glimpses = L->info.fake ? 0 : 2;
}

static const char *const GLIMPSE_NAMES[] = {"weighted_averages", "weights"};

/* The dim of a name the readout may read: a state, glimpse or context of
** the wrapped transition; 0 when it has none (weights, a mask). */
static int64_t name_dim(const gen_layout *L, const char *name)
{
    if (!L->info.fake) {
        kiln_brick *att = kiln_brick_child(L->ar, 1);
        if (strcmp(name, GLIMPSE_NAMES[0]) == 0 || strcmp(name, L->ad[L->info.attended].name) == 0)
            return kiln_brick_dim(att, "attended_dim");
    }
    return kiln_brick_app_input_dim(L->t, "apply", name);
}

/* Blocks' _push_allocation_config: the readout's source dims from the
** transition, then (the readout pushed) the fork from the feedback into
** the transition's sequences. */
static enum kiln_status seqgen_push_allocation_config(kiln_brick *b)
{
    gen_layout L;
    layout_of(b, &L);
    kiln_brick *ro = kiln_brick_child(b, SG_READOUT), *fork = kiln_brick_child(b, SG_FORK);
    const readout *r = kiln_brick_data(ro);
    char key[KILN_MAX_NAME + 16];
    for (int k = 0; k < r->n; k++)
        if (strcmp(r->sources[k], "feedback") != 0) {
            snprintf(key, sizeof key, "source_dims.%s", r->sources[k]);
            kiln_brick_put_dim(ro, key, name_dim(&L, r->sources[k]));
        }
    if (kiln_brick_push_allocation_config(ro) != KILN_OK)
        return kiln_brick_fail_from(b, ro);
    int64_t fdim = kiln_brick_dim(kiln_brick_child(ro, RO_FEEDBACK), "feedback_dim");
    for (int k = 0; k < r->n; k++)
        if (strcmp(r->sources[k], "feedback") == 0)
            kiln_brick_put_dim(ro, "source_dims.feedback", fdim);
    if (kiln_brick_push_allocation_config(ro) != KILN_OK)
        return kiln_brick_fail_from(b, ro);
    kiln_brick_put_dim(fork, "input_dim", fdim);
    for (int j = 0; j < kiln_brick_output_count(fork, "apply"); j++) {
        const char *seq = kiln_brick_output_name(fork, "apply", j);
        snprintf(key, sizeof key, "output_dims.%s", seq);
        kiln_brick_put_dim(fork, key, kiln_brick_app_input_dim(L.t, "apply", seq));
    }
    return KILN_OK;
}

/* What one scan of the generator is: the step's arguments, by position. */
typedef struct gen_scan {
    kiln_brick *b;
    gen_layout L;
    bool generate, greedy, mask, carry_feedback;
    kiln_node ctx[MAX_ARGS]; /* the wrapped transition's contexts, by its input index; NONE: not given */
    int n_ctx_given;
    bool has_pre;            /* the preprocessed attended is the last context */
} gen_scan;

/* Index of a name among the readout's sources, -1 when absent. */
static int source_index(const kiln_brick *ro, const char *name)
{
    const readout *r = kiln_brick_data(ro);
    for (int k = 0; k < r->n; k++)
        if (strcmp(r->sources[k], name) == 0)
            return k;
    return -1;
}

/* The step (see the top of this file) on the scan's body. Arguments:
** sequences (cost: targets, mask?; generate: the zeros), states (the
** transition's, then f when carried), contexts (the given ones in input
** order, then the preprocessed attended). Results: the new states (and f),
** then cost: the costs; generate: the glimpses, outputs, costs. */
static enum kiln_status gen_step(kiln_graph *g, const kiln_node *args, kiln_node *res, void *user)
{
    gen_scan *c = user;
    kiln_brick *b = c->b, *ro = kiln_brick_child(b, SG_READOUT);
    const gen_layout *L = &c->L;
    int a = 0;
    kiln_node y = KILN_NODE_NONE, m = KILN_NODE_NONE;
    if (c->generate) {
        a++;
    } else {
        y = args[a++];
        if (c->mask)
            m = args[a++];
    }
    kiln_node s[MAX_ARGS], f = KILN_NODE_NONE, ctx[MAX_ARGS], pre = KILN_NODE_NONE;
    for (int k = 0; k < L->n_states; k++)
        s[k] = args[a++];
    if (c->carry_feedback)
        f = args[a++];
    for (int i = 0; i < L->n_a; i++)
        ctx[i] = kiln_node_ok(c->ctx[i]) ? args[a++] : KILN_NODE_NONE;
    if (c->has_pre)
        pre = args[a++];
    /* glimpses from the states at t-1 */
    kiln_node gl[2] = {KILN_NODE_NONE, KILN_NODE_NONE}, in[MAX_ARGS];
    enum kiln_status st;
    if (!L->info.fake) {
        int n = 0;
        for (int k = 0; k < L->n_states; k++)
            in[n++] = s[k];
        in[n++] = ctx[L->info.attended];
        in[n++] = ctx[L->info.mask];
        in[n++] = pre;
        if ((st = kiln_brick_child_call(b, SG_TRANSITION, "take_glimpses", g, in, n, gl, 2)) != KILN_OK)
            return st;
    }
    /* readout from the sources */
    const readout *r = kiln_brick_data(ro);
    for (int k = 0; k < r->n; k++) {
        const char *src = r->sources[k];
        in[k] = KILN_NODE_NONE;
        if (strcmp(src, "feedback") == 0)
            in[k] = f;
        for (int j = 0, si = 0; j < L->n_t; j++)
            if (kiln_input_kind(&L->td[j]) == KILN_INPUT_STATE && strcmp(L->td[j].name, src) == 0)
                in[k] = s[si++];
            else
                si += kiln_input_kind(&L->td[j]) == KILN_INPUT_STATE;
        for (int j = 0; j < L->n_glimpses; j++)
            if (strcmp(GLIMPSE_NAMES[j], src) == 0)
                in[k] = gl[j];
        for (int i = 0; i < L->n_a; i++)
            if (kiln_input_kind(&L->ad[i]) == KILN_INPUT_CONTEXT && strcmp(L->ad[i].name, src) == 0)
                in[k] = ctx[i];
        if (!kiln_node_ok(in[k]))
            return kiln_brick_fail(b, KILN_ERR_ARG, "the readout reads %s, which was not given", src);
    }
    kiln_node rd, cost, fb;
    if ((st = kiln_brick_child_call(b, SG_READOUT, "readout", g, in, r->n, &rd, 1)) != KILN_OK)
        return st;
    if (c->generate &&
        (st = kiln_brick_child_call(b, SG_READOUT, c->greedy ? "emit_greedy" : "emit", g, &rd, 1, &y, 1)) != KILN_OK)
        return st;
    if ((st = kiln_brick_child_call(b, SG_READOUT, "cost", g, (kiln_node[]){rd, y}, 2, &cost, 1)) != KILN_OK ||
        (st = kiln_brick_child_call(b, SG_READOUT, "feedback", g, &y, 1, &fb, 1)) != KILN_OK)
        return st;
    if (kiln_node_ok(m) && kiln_brick_built(b, g, cost = kiln_expr_mul(g, cost, m)) != KILN_OK)
        return kiln_brick_status(b);
    /* the transition's inputs from the fork of the feedback */
    kiln_brick *fork = kiln_brick_child(b, SG_FORK);
    int nf = kiln_brick_output_count(fork, "apply");
    kiln_node fo[MAX_ARGS];
    if ((st = kiln_brick_child_call(b, SG_FORK, "apply", g, &fb, 1, fo, nf)) != KILN_OK)
        return st;
    int n = 0;
    for (int j = 0, si = 0; j < L->n_t; j++) {
        unsigned kind = kiln_input_kind(&L->td[j]);
        if (kind == KILN_INPUT_STATE) {
            in[n++] = s[si++];
        } else if (kind == KILN_INPUT_SEQUENCE) {
            in[n] = strcmp(L->td[j].name, "mask") == 0 ? m : KILN_NODE_NONE;
            for (int q = 0; q < nf; q++)
                if (strcmp(kiln_brick_output_name(fork, "apply", q), L->td[j].name) == 0)
                    in[n] = fo[q];
            n++;
        }
    }
    for (int j = 0; j < L->n_glimpses; j++)
        in[n++] = gl[j];
    for (int j = 0; j < L->n_t; j++)
        if (kiln_input_kind(&L->td[j]) == KILN_INPUT_CONTEXT)
            in[n++] = ctx[j]; /* the transition's contexts are the wrapped one's first inputs */
    if ((st = kiln_brick_child_call(b, SG_TRANSITION, "compute_states", g, in, n, res, L->n_states)) != KILN_OK)
        return st;
    int o = L->n_states;
    if (c->carry_feedback)
        res[o++] = fb;
    if (c->generate) {
        for (int j = 0; j < L->n_glimpses; j++)
            res[o++] = gl[j];
        res[o++] = y;
    }
    res[o] = cost;
    return KILN_OK;
}

/* Where the inputs of cost, cost_matrix and generate are: after `first`
** (the targets and mask, or nothing), the transition's states, then the
** wrapped transition's contexts. */
static void state_and_context_inputs(const gen_layout *L, const kiln_node *in, int first, kiln_node *states,
                                     kiln_node *ctx)
{
    int a = first;
    for (int k = 0; k < L->n_states; k++)
        states[k] = in[a++];
    for (int i = 0; i < L->n_a; i++)
        ctx[i] = kiln_input_kind(&L->ad[i]) == KILN_INPUT_CONTEXT ? in[a++] : KILN_NODE_NONE;
}

/* Plan of one generator scan (cost when y is given, else generate):
** 1. the layout and the batch; checks of the targets, mask and contexts;
** 2. initial values: given states or the transition's, f_0 =
**    feedback(initial outputs) when the readout reads it, the
**    preprocessed attended;
** 3. the scan and its results: *sc is the scan node. */
static enum kiln_status gen_scan_build(kiln_brick *b, kiln_graph *g, const kiln_node *in, int first, kiln_node y,
                                       kiln_node mask, const kiln_generate_options *o, kiln_node *sc,
                                       gen_scan *c)
{
    /* 1. layout, batch, checks */
    *c = (gen_scan){.b = b, .generate = !kiln_node_ok(y), .greedy = o && o->greedy, .mask = kiln_node_ok(mask)};
    gen_layout *L = &c->L;
    layout_of(b, L);
    kiln_brick *ro = kiln_brick_child(b, SG_READOUT);
    kiln_node states[MAX_ARGS];
    state_and_context_inputs(L, in, first, states, c->ctx);
    kiln_desc_buf d1, d2;
    int64_t batch;
    if (!c->generate) {
        batch = kiln_graph_node_dim(g, y, 1);
    } else {
        batch = o->batch;
        if (!batch)
            batch = !L->info.fake && kiln_node_ok(c->ctx[L->info.attended])
                        ? kiln_graph_node_dim(g, c->ctx[L->info.attended], 1) : KILN_BATCH;
    }
    if (!L->info.fake && kiln_node_ok(c->ctx[L->info.attended])) {
        kiln_node att = c->ctx[L->info.attended];
        if (rec_of(g, att)->shape.rank != 3 || kiln_graph_node_dim(g, att, 1) != batch) {
            char b_s[48];
            return kiln_brick_fail(b, KILN_ERR_SHAPE, "%s is %s, expected (time, %s, attended_dim): the batch of %s",
                                   L->ad[L->info.attended].name, kiln_brick_desc(g, att, &d1),
                                   kiln_graph_dim_str(g, batch, b_s, sizeof b_s),
                                   c->generate ? "the generation" : kiln_brick_desc(g, y, &d2));
        }
    }
    /* 2. initial values */
    kiln_node init[MAX_ARGS], seqs[2], ctxs[MAX_ARGS];
    int n_init = 0, n_ctx = 0;
    for (int k = 0, j = 0; k < L->n_states; k++, j++) {
        while (kiln_input_kind(&L->td[j]) != KILN_INPUT_STATE)
            j++;
        init[n_init] = states[k];
        if (!kiln_node_ok(init[n_init]) &&
            kiln_recurrent_initial_state(L->ar, "apply", g, L->td[j].name, batch, &init[n_init]) != KILN_OK)
            return kiln_brick_fail_from(b, L->ar);
        const kiln_node_rec *rs = rec_of(g, init[n_init]);
        int64_t dim = kiln_brick_app_input_dim(L->t, "apply", L->td[j].name);
        if (rs->shape.rank != 2 || rs->shape.dims[0] != batch || (dim > 0 && rs->shape.dims[1] != dim)) {
            char b_s[48];
            return kiln_brick_fail(b, KILN_ERR_SHAPE,
                                   "%s is %s, expected (%s, %lld): a state of the transition per row", L->td[j].name,
                                   kiln_brick_desc(g, init[n_init], &d1), kiln_graph_dim_str(g, batch, b_s, sizeof b_s),
                                   (long long)dim);
        }
        n_init++;
    }
    c->carry_feedback = source_index(ro, "feedback") >= 0;
    if (c->carry_feedback) {
        kiln_node y0;
        enum kiln_status s = initial_outputs(b, kiln_brick_child(ro, RO_EMITTER), g, batch, &y0);
        if (s == KILN_OK)
            s = kiln_brick_child_call(b, SG_READOUT, "feedback", g, &y0, 1, &init[n_init], 1);
        if (s != KILN_OK)
            return s;
        n_init++;
    }
    for (int i = 0; i < L->n_a; i++)
        if (kiln_node_ok(c->ctx[i]))
            ctxs[n_ctx++] = c->ctx[i];
    if (!L->info.fake) {
        kiln_brick *att = kiln_brick_child(L->ar, 1);
        if (kiln_brick_call(att, "preprocess", g, &c->ctx[L->info.attended], 1, &ctxs[n_ctx], 1) != KILN_OK)
            return kiln_brick_fail_from(b, att);
        n_ctx++;
        c->has_pre = true;
    }
    /* 3. the scan */
    int n_seq = 0;
    if (c->generate) {
        seqs[n_seq++] = kiln_expr_broadcast(g, kiln_expr_constant(g, 0), 2, (int64_t[]){o->n_steps, batch});
    } else {
        seqs[n_seq++] = y;
        if (c->mask)
            seqs[n_seq++] = mask;
    }
    kiln_scan_spec spec = {.n_sequences = n_seq, .n_states = n_init, .n_contexts = n_ctx,
                           .n_outputs = c->generate ? L->n_glimpses + 2 : 1};
    bool g_clean = g->err.status == KILN_OK;
    *sc = kiln_expr_scan(g, &spec, seqs, init, ctxs, gen_step, c);
    if (!kiln_node_ok(*sc)) {
        if (kiln_brick_status(b) == KILN_OK)
            return kiln_brick_built(b, g, *sc);
        if (g_clean) /* the scan's "the step function failed": b's message says why */
            kiln_graph_clear_error(g);
        return kiln_brick_status(b);
    }
    return KILN_OK;
}

/* The targets and mask of cost and cost_matrix, checked against the emitter. */
static enum kiln_status check_targets(kiln_brick *b, kiln_graph *g, kiln_node y, kiln_node mask)
{
    kiln_brick *em = kiln_brick_child(kiln_brick_child(b, SG_READOUT), RO_EMITTER);
    int64_t out_dim = kiln_brick_dim(em, "output_dim");
    const kiln_node_rec *r = rec_of(g, y);
    kiln_desc_buf d1, d2;
    if (out_dim == 0 && (r->dtype != KILN_DTYPE_I32 || r->shape.rank != 2))
        return kiln_brick_fail(b, KILN_ERR_SHAPE, "outputs is %s, expected int32 (time, batch): %s emits categories",
                               kiln_brick_desc(g, y, &d1), kiln_brick_path(em));
    if (out_dim > 0 && (r->dtype != g->floatx || r->shape.rank != 3 || r->shape.dims[2] != out_dim))
        return kiln_brick_fail(b, KILN_ERR_SHAPE, "outputs is %s, expected %s (time, batch, %lld): what %s emits",
                               kiln_brick_desc(g, y, &d1), kiln_dtype_name(g->floatx), (long long)out_dim,
                               kiln_brick_path(em));
    if (kiln_node_ok(mask)) {
        const kiln_node_rec *rm = rec_of(g, mask);
        if (rm->shape.rank != 2 || rm->shape.dims[0] != r->shape.dims[0] || rm->shape.dims[1] != r->shape.dims[1]) {
            char t_s[48], b_s[48];
            return kiln_brick_fail(b, KILN_ERR_SHAPE, "mask is %s, expected (%s, %s): time and batch as outputs, %s",
                                   kiln_brick_desc(g, mask, &d1),
                                   kiln_graph_dim_str(g, r->shape.dims[0], t_s, sizeof t_s),
                                   kiln_graph_dim_str(g, r->shape.dims[1], b_s, sizeof b_s),
                                   kiln_brick_desc(g, y, &d2));
        }
    }
    return KILN_OK;
}

/* Blocks' cost_matrix: the masked costs (T, batch). inputs: outputs, mask?,
** <states>?, <contexts>. */
static enum kiln_status costs_of(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *costs)
{
    enum kiln_status s = check_targets(b, g, in[0], in[1]);
    if (s != KILN_OK)
        return s;
    kiln_node sc;
    gen_scan c;
    if ((s = gen_scan_build(b, g, in, 2, in[0], in[1], NULL, &sc, &c)) != KILN_OK)
        return s;
    int n_state = c.L.n_states + c.carry_feedback;
    return kiln_brick_built(b, g, *costs = kiln_expr_output(g, sc, 2 * n_state));
}

static enum kiln_status seqgen_cost_matrix(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    return costs_of(b, g, in, out);
}

/* Blocks' cost: costs.sum(axis=0).mean(), role COST, with the auxiliary
** per_sequence_element. */
static enum kiln_status seqgen_cost(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    kiln_node costs;
    enum kiln_status s = costs_of(b, g, in, &costs);
    if (s != KILN_OK)
        return s;
    kiln_node total = kiln_expr_sum(g, costs, KILN_ALL_AXES);
    kiln_node per = kiln_node_ok(in[1]) ? kiln_expr_div(g, total, kiln_expr_sum(g, in[1], KILN_ALL_AXES))
                                        : kiln_expr_mean(g, costs, KILN_ALL_AXES);
    if ((s = kiln_brick_built(b, g, per)) != KILN_OK)
        return s;
    if (kiln_graph_add_auxiliary(g, per, "per_sequence_element", b) != KILN_OK)
        return kiln_brick_fail(b, g->err.status, "%s", g->err.msg);
    out[0] = kiln_expr_mean(g, kiln_expr_sum(g, costs, 0), 0);
    if ((s = kiln_brick_built(b, g, out[0])) != KILN_OK)
        return s;
    if (kiln_graph_add_role(g, out[0], KILN_ROLE_COST) != KILN_OK)
        return kiln_brick_fail(b, g->err.status, "%s", g->err.msg);
    return KILN_OK;
}

/* generate: inputs <states>?, <contexts>; outputs <states>, <glimpses>,
** outputs, costs over the steps the call under way gives. */
static enum kiln_status seqgen_generate(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const seqgen *d = kiln_brick_data(b);
    if (d->run.n_steps == 0)
        return kiln_brick_fail(b, KILN_ERR_ARG, "generate: no number of steps: call kiln_sequence_generator_generate");
    kiln_node sc;
    gen_scan c;
    enum kiln_status s = gen_scan_build(b, g, in, 0, KILN_NODE_NONE, KILN_NODE_NONE, &d->run, &sc, &c);
    if (s != KILN_OK)
        return s;
    int n_state = c.L.n_states + c.carry_feedback, o = 0;
    for (int k = 0; k < c.L.n_states; k++)
        out[o++] = kiln_expr_output(g, sc, k);
    for (int m = 0; m < c.L.n_glimpses + 2; m++)
        out[o++] = kiln_expr_output(g, sc, 2 * n_state + m);
    for (int i = 0; i < o; i++)
        if ((s = kiln_brick_built(b, g, out[i])) != KILN_OK)
            return s;
    return KILN_OK;
}

enum kiln_status kiln_sequence_generator_generate(kiln_brick *b, kiln_graph *g, const kiln_node *inputs, int n_in,
                                                  const kiln_generate_options *options, kiln_node *outputs,
                                                  int n_out)
{
    KILN_API_CHECK(b && g && options && (n_in <= 0 || inputs) && (n_out <= 0 || outputs));
    if (!b)
        return KILN_ERR_ARG;
    const char *null_arg = !g ? "g" : !options ? "options" : n_in > 0 && !inputs ? "inputs"
                         : n_out > 0 && !outputs ? "outputs" : NULL;
    bool is_gen = kiln_brick_class_of(b) == &SEQUENCE_GENERATOR;
    bool bad_steps = options && options->n_steps <= 0 && kiln_dim_symbol(options->n_steps) < 0;
    if (null_arg || !is_gen || bad_steps) {
        for (int i = 0; outputs && i < n_out; i++)
            outputs[i] = KILN_NODE_NONE;
        enum kiln_status s =
            null_arg ? kiln_brick_fail(b, KILN_ERR_ARG, "kiln_sequence_generator_generate: %s is NULL", null_arg)
            : !is_gen ? kiln_brick_fail(b, KILN_ERR_ARG, "a %s has no generate", kiln_brick_class_of(b)->class_name)
                      : kiln_brick_fail(b, KILN_ERR_ARG, "generate: n_steps %lld is neither > 0 nor a dim symbol",
                                        (long long)options->n_steps);
        if (g)
            kiln_graph_fail(g, s, "%s", kiln_brick_errmsg(b));
        return s;
    }
    seqgen *d = kiln_brick_data(b);
    kiln_generate_options keep = d->run;
    d->run = *options;
    enum kiln_status s = kiln_brick_call(b, "generate", g, inputs, n_in, outputs, n_out);
    d->run = keep;
    return s;
}

static const kiln_brick_input PLACEHOLDER_INPUT[] = {{"outputs", 0, 0, NULL, NULL}, {NULL}};
static const kiln_brick_application SEQGEN_APPS[] = {
    {"cost", PLACEHOLDER_INPUT, OUTPUT, seqgen_cost, 0},
    {"cost_matrix", PLACEHOLDER_INPUT, OUTPUT, seqgen_cost_matrix, 0},
    {"generate", PLACEHOLDER_INPUT, OUTPUT, seqgen_generate, 0},
    {NULL},
};
static const kiln_brick_class SEQUENCE_GENERATOR = {
    .class_name = "SequenceGenerator",
    .default_name = "sequencegenerator",
    .flags = KILN_BRICK_INITIALIZABLE,
    .data_size = sizeof(seqgen),
    .applications = SEQGEN_APPS,
    .push_allocation_config = seqgen_push_allocation_config,
};

/* cost's, cost_matrix's and generate's inputs and outputs from the wrapped
** transition's. */
static bool seqgen_set_io(kiln_brick *b)
{
    gen_layout L;
    layout_of(b, &L);
    kiln_brick_input in[MAX_ARGS + 3];
    const char *outs[MAX_ARGS + 4];
    int n = 0, no = 0;
    in[n++] = (kiln_brick_input){"outputs", 0, 0, NULL, NULL};
    in[n++] = (kiln_brick_input){"mask", KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 2, "(time, batch)", NULL};
    for (int i = 0; i < L.n_t; i++)
        if (kiln_input_kind(&L.td[i]) == KILN_INPUT_STATE) {
            in[n++] = (kiln_brick_input){L.td[i].name, KILN_INPUT_FLOAT | KILN_INPUT_OPTIONAL, 2, L.td[i].layout, NULL};
            outs[no++] = L.td[i].name;
        }
    for (int i = 0; i < L.n_a; i++)
        if (kiln_input_kind(&L.ad[i]) == KILN_INPUT_CONTEXT) {
            in[n] = L.ad[i];
            in[n].flags &= ~KILN_INPUT_CONTEXT;
            in[n++].last_dim = NULL;
        }
    in[n] = (kiln_brick_input){NULL};
    for (int j = 0; j < L.n_glimpses; j++)
        outs[no++] = GLIMPSE_NAMES[j];
    outs[no++] = "outputs";
    outs[no++] = "costs";
    outs[no] = NULL;
    return kiln_brick_set_application_io(b, "cost", in, OUTPUT) == KILN_OK &&
           kiln_brick_set_application_io(b, "cost_matrix", in, OUTPUT) == KILN_OK &&
           kiln_brick_set_application_io(b, "generate", in + 2, outs) == KILN_OK;
}

/* The readout's sources: states, glimpses or contexts of the wrapped
** transition, or "feedback". */
static bool sources_ok(const kiln_brick *ro, const kiln_brick *ar)
{
    const readout *r = kiln_brick_data(ro);
    kiln_attention_recurrent_info info;
    kiln_attention_recurrent_layout(ar, &info);
    for (int k = 0; k < r->n; k++) {
        const char *src = r->sources[k];
        bool found = strcmp(src, "feedback") == 0;
        for (int j = 0; !info.fake && j < 2; j++)
            found |= strcmp(src, GLIMPSE_NAMES[j]) == 0;
        const kiln_brick_input *ad;
        int n_a;
        kiln_brick_application_of(ar, "apply", &ad, &n_a);
        for (int i = 0; i < n_a; i++)
            found |= strcmp(src, ad[i].name) == 0 &&
                     (kiln_input_kind(&ad[i]) & (KILN_INPUT_STATE | KILN_INPUT_CONTEXT));
        if (!found)
            return false;
    }
    return true;
}

/* Plan:
** 1. validate (bricks that are not the caller's to give: NULL, left alone):
**    a Readout, a recurrent transition;
** 2. the transition wrapped (att_trans, or with_fake_attention), the
**    default fork of the feedback into its sequences but "mask";
** 3. the brick, its children (readout, fork, transition), the readout's
**    sources checked, the applications' inputs and outputs.
** After 1, the bricks given are the generator's or destroyed. */
kiln_brick *kiln_sequence_generator_create(const char *name, kiln_brick *readout_brick, kiln_brick *transition,
                                           kiln_brick *attention, bool add_contexts, kiln_brick *fork)
{
    /* 1. validate */
    kiln_brick *given[4] = {readout_brick, fork, transition, attention};
    KILN_API_CHECK(readout_brick && transition && kiln_bricks_are_roots(given, 4));
    if (!readout_brick || !transition || !kiln_bricks_are_roots(given, 4))
        return NULL;
    kiln_brick *b = NULL;
    bool ok = kiln_brick_class_of(readout_brick) == &READOUT;
    /* 2. the wrapped transition (it takes the transition and attention) */
    const kiln_brick_input *td;
    int n_t;
    ok = ok && kiln_brick_application_of(transition, "apply", &td, &n_t) && n_t <= MAX_ARGS;
    const char *seqs[MAX_ARGS];
    int n_seq = 0;
    for (int i = 0; ok && i < n_t; i++)
        if (kiln_input_kind(&td[i]) == KILN_INPUT_SEQUENCE && strcmp(td[i].name, "mask") != 0)
            seqs[n_seq++] = td[i].name;
    if (ok && !fork) /* before the transition goes into the wrapper: seqs point into it */
        ok = n_seq > 0 && (fork = given[1] = kiln_fork_create(NULL, seqs, n_seq, 0, NULL, NULL));
    if (ok) {
        given[2] = given[3] = NULL;
        given[2] = attention ? kiln_attention_recurrent_create("att_trans", transition, attention, NULL, add_contexts,
                                                               NULL, NULL)
                             : kiln_fake_attention_recurrent_create("with_fake_attention", transition);
        ok = given[2] != NULL;
    }
    /* 3. the brick */
    ok = ok && sources_ok(readout_brick, given[2]) && (b = kiln_brick_create(&SEQUENCE_GENERATOR, name));
    for (int i = 0; ok && i < 3; i++)
        ok = kiln_brick_add_child(b, given[i]) == KILN_OK;
    ok = ok && seqgen_set_io(b);
    if (ok)
        return b;
    kiln_bricks_destroy_roots(given, 4);
    kiln_brick_destroy(b);
    return NULL;
}
