/* test_misuse.c: misuse of the public API (#9, item 4) gets a status, never a
** crash.
**
** 1. A table with a row per (public function, pointer argument): the call
**    with NULL in that argument and valid values in the others, and what it
**    must give: a status (KILN_ERR_ARG mostly), KILN_NODE_NONE, NULL, a
**    string (a getter's neutral ""), a number, or nothing (destroy(NULL)).
**    A function without pointer arguments has a row with a bad value. Where
**    a handle was given, its message must say what was NULL. Each row runs
**    in its own forked process (Check's fork mode), so a crash is reported
**    as that row; the suite runs under ASan and UBSan in the sanitizer
**    build. A last case reads the public headers and fails for a public
**    function with no row, so the table grows with the API.
** 2. Lifetimes: destroying an object before what borrows it (a brick before
**    its program, a dataset before its stream, a program and a stream before
**    their main loop, ...), as the headers document (regress_9_*).
** The handles of the table come from one fixture, built once: a graph with a
** Linear, a Softmax and a cost, a compiled program that has run a step, a
** dataset, two streams, a main loop and a free extension. */
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"
#include "testutil.h"

#define N_FEAT 4
#define N_CLASS 3
#define N_EX 6
#define BATCH 2

/* ---- A model and its data ---------------------------------------------------- */

/* cost = CCE(targets, softmax(linear(features))), 4 features, 3 classes. */
typedef struct model {
    kiln_graph *g;
    kiln_node x, y, h, cost;
    kiln_brick *lin, *sm, *cce;
    kiln_program *p;
} model;

static const int64_t FEATURES_DIMS[2] = {KILN_BATCH, N_FEAT};
static float XDATA[N_EX * N_FEAT];
static int32_t YDATA[N_EX];

static void toy_data(void)
{
    for (int i = 0; i < N_EX; i++) {
        YDATA[i] = i % N_CLASS;
        for (int j = 0; j < N_FEAT; j++)
            XDATA[i * N_FEAT + j] = (float)((i + j) % 3) - 1.0f;
    }
}

static void model_graph(model *t)
{
    memset(t, 0, sizeof *t);
    toy_data();
    t->g = kiln_graph_create(KILN_DTYPE_F32);
    t->x = kiln_graph_input(t->g, "features", KILN_DTYPE_F32, 2, FEATURES_DIMS);
    t->y = kiln_graph_input(t->g, "targets", KILN_DTYPE_I32, 1, FEATURES_DIMS);
    t->lin = kiln_linear_create("linear", N_FEAT, N_CLASS);
    t->sm = kiln_softmax_create(NULL);
    t->cce = kiln_categorical_cross_entropy_create(NULL);
    ck_assert(t->g && t->lin && t->sm && t->cce);
    ck_assert(kiln_brick_set_weights_init(t->lin, kiln_init_constant(0.1)) == KILN_OK);
    ck_assert(kiln_brick_set_biases_init(t->lin, kiln_init_constant(0)) == KILN_OK);
    kiln_node yh;
    ck_assert_msg(kiln_brick_apply(t->lin, t->g, t->x, &t->h) == KILN_OK, "%s", kiln_brick_errmsg(t->lin));
    ck_assert(kiln_brick_initialize(t->lin) == KILN_OK);
    ck_assert(kiln_brick_apply(t->sm, t->g, t->h, &yh) == KILN_OK);
    ck_assert(kiln_cost_apply(t->cce, t->g, t->y, yh, &t->cost) == KILN_OK);
    ck_assert(kiln_graph_set_name(t->g, t->cost, "cost") == KILN_OK);
}

/* Compile t's cost (also its monitor) and outputs[0..n); bind the toy data. */
static void model_compile(model *t, const kiln_node *outputs, int n)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "misuse";
    o.cost = t->cost;
    o.monitors = &t->cost;
    o.n_monitors = 1;
    o.outputs = outputs;
    o.n_outputs = n;
    o.max_batch = 8;
    enum kiln_status st = kiln_compile(t->g, &o, &t->p);
    ck_assert_msg(st == KILN_OK, "%s", kiln_program_errmsg(t->p));
    ck_assert(kiln_program_bind_input(t->p, "features", XDATA) == KILN_OK);
    ck_assert(kiln_program_bind_input(t->p, "targets", YDATA) == KILN_OK);
}

/* Destroys what t still has (a test may have destroyed some already). */
static void model_free(model *t)
{
    kiln_program_destroy(t->p);
    kiln_graph_destroy(t->g);
    kiln_brick_destroy(t->lin);
    kiln_brick_destroy(t->sm);
    kiln_brick_destroy(t->cce);
    memset(t, 0, sizeof *t);
}

static kiln_dataset *toy_dataset(void)
{
    toy_data();
    kiln_dataset *d = kiln_dataset_create();
    ck_assert_ptr_nonnull(d);
    ck_assert(kiln_dataset_add_source(d, "features", KILN_DTYPE_F32, N_EX, 1, FEATURES_DIMS + 1, XDATA) == KILN_OK);
    ck_assert(kiln_dataset_add_source(d, "targets", KILN_DTYPE_I32, N_EX, 0, NULL, YDATA) == KILN_OK);
    return d;
}

static kiln_stream *toy_stream(kiln_dataset *d, enum kiln_scheme scheme)
{
    kiln_stream *s = NULL;
    ck_assert(kiln_stream_create(d, scheme, BATCH, 1, &s) == KILN_OK);
    return s;
}

/* ---- The fixture of the table --------------------------------------------------- */

typedef struct fixture {
    model t;
    kiln_graph *g;
    kiln_node x, y, h, cost, out, tuple, state, unode;
    kiln_brick *lin, *sm, *cce, *probe;
    kiln_param *w;  /* the Linear's W */
    kiln_param *u;  /* made by kiln_param_create */
    kiln_program *p;
    kiln_dataset *d;
    kiln_stream *s, *s2;
    kiln_main_loop *m;
    kiln_extension *e;
    FILE *devnull;
    const float *xdata;
    const int32_t *ydata;
    double buf[64];
    int64_t dims2[2], dims1[1], sizes2[2], i64;
    int perm2[2];
    kiln_node nodes[2], node_out[2];
    kiln_filter filter;
    kiln_graph *new_graph;
    kiln_batch batch;
    bool flag;
    char text[64];
    kiln_compile_options opts;
    kiln_brick_input inputs[2];
    const char *outputs[2];
    const char *names[2];
    kiln_scan_spec scan; /* one sequence, one output */
} fixture;

/* A step with one output: its sequence's slice. */
static enum kiln_status scan_step(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    (void)body;
    (void)user;
    res[0] = args[0];
    return KILN_OK;
}

static fixture F;

static enum kiln_status probe_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which, void *user)
{
    (void)e, (void)m, (void)which, (void)user;
    return KILN_OK;
}

/* A class with nothing but its names, for kiln_brick_create. */
static const kiln_brick_class PROBE_CLASS = {.class_name = "Probe", .default_name = "probe"};

static void fixture_setup(void)
{
    fixture *f = &F;
    memset(f, 0, sizeof *f);
    f->dims2[0] = KILN_BATCH, f->dims2[1] = N_FEAT;
    f->dims1[0] = N_CLASS;
    f->sizes2[0] = 2, f->sizes2[1] = 2;
    f->perm2[0] = 1, f->perm2[1] = 0;
    f->devnull = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(f->devnull);

    /* the model, and out = linear(x) + u */
    model_graph(&f->t);
    f->g = f->t.g, f->x = f->t.x, f->y = f->t.y, f->h = f->t.h, f->cost = f->t.cost;
    f->lin = f->t.lin, f->sm = f->t.sm, f->cce = f->t.cce;
    f->xdata = XDATA, f->ydata = YDATA;
    f->probe = kiln_brick_create(&PROBE_CLASS, NULL);
    f->w = kiln_brick_param_by_name(f->lin, "W");
    f->u = kiln_param_create("u", 1, f->dims1);
    ck_assert(f->probe && f->w && f->u);
    double zero[N_CLASS] = {0};
    ck_assert(kiln_param_set_values(f->u, zero, N_CLASS) == KILN_OK);
    f->unode = kiln_graph_param(f->g, f->u);
    f->out = kiln_expr_add(f->g, f->h, f->unode);
    f->tuple = kiln_expr_split(f->g, f->x, 1, 2, f->sizes2);
    f->scan = (kiln_scan_spec){.n_sequences = 1, .n_outputs = 1};
    f->state = kiln_graph_random_state(f->g, 7);
    ck_assert_msg(kiln_node_ok(f->out) && kiln_node_ok(f->tuple) && kiln_node_ok(f->state), "%s",
                  kiln_graph_errmsg(f->g));
    f->nodes[0] = f->x;
    f->nodes[1] = f->h;

    /* the program, after a step of each kind */
    model_compile(&f->t, &f->out, 1);
    f->p = f->t.p;
    ck_assert(kiln_program_gradients(f->p, BATCH) == KILN_OK);
    ck_assert(kiln_program_forward(f->p, BATCH) == KILN_OK);
    ck_assert(kiln_program_train_step(f->p, BATCH) == KILN_OK);
    f->opts = kiln_compile_options_default();
    f->opts.cost = f->cost;

    /* data, streams, a main loop, an extension of no loop */
    f->d = toy_dataset();
    f->s = toy_stream(f->d, KILN_SCHEME_SEQUENTIAL);
    f->s2 = toy_stream(f->d, KILN_SCHEME_SHUFFLED);
    ck_assert(kiln_main_loop_create(f->p, f->s, &f->m) == KILN_OK);
    f->e = kiln_extension_create("probe", probe_fn, NULL, NULL);
    ck_assert_ptr_nonnull(f->e);

    f->inputs[0] = (kiln_brick_input){"input", KILN_INPUT_FLOAT, 2, NULL, NULL};
    f->outputs[0] = "output";
    f->names[0] = "a";
}

static void fixture_teardown(void)
{
    fixture *f = &F;
    kiln_main_loop_destroy(f->m);
    kiln_extension_destroy(f->e);
    kiln_stream_destroy(f->s);
    kiln_stream_destroy(f->s2);
    kiln_dataset_destroy(f->d);
    model_free(&f->t);
    kiln_param_destroy(f->u);
    kiln_brick_destroy(f->probe);
    fclose(f->devnull);
}

/* ---- Helpers for rows whose call makes an object ------------------------------ */

/* A constructor that accepts NULL made b: 1, and b is destroyed. */
static int64_t made_brick(kiln_brick *b)
{
    kiln_brick_destroy(b);
    return b != NULL;
}
static int64_t made_ext(kiln_extension *e)
{
    kiln_extension_destroy(e);
    return e != NULL;
}
/* A constructor given NULL made an extension that carries the error. */
static int64_t ext_failed(kiln_extension *e)
{
    bool bad = e && strstr(kiln_extension_errmsg(e), "NULL") != NULL;
    kiln_extension_destroy(e);
    return bad;
}
static int64_t made_dataset(kiln_dataset *d)
{
    kiln_dataset_destroy(d);
    return d != NULL;
}

/* kiln_compile with NULL g or o: the status; *out must hold the message. */
static int64_t compile_null(kiln_graph *g, const kiln_compile_options *o)
{
    kiln_program *p = NULL;
    enum kiln_status st = kiln_compile(g, o, &p);
    bool said = p && strstr(kiln_program_errmsg(p), "NULL") != NULL;
    kiln_program_destroy(p);
    return said ? (int64_t)st : -1;
}
static int64_t open_idx_null(void)
{
    kiln_dataset *d = NULL;
    enum kiln_status st = kiln_dataset_open_idx(NULL, NULL, &d);
    bool empty = d && kiln_dataset_source_count(d) == 0;
    kiln_dataset_destroy(d);
    return empty ? (int64_t)st : -1;
}
static int64_t stream_null(void)
{
    kiln_stream *s = NULL;
    enum kiln_status st = kiln_stream_create(NULL, KILN_SCHEME_SEQUENTIAL, 2, 1, &s);
    bool said = s && strstr(kiln_stream_errmsg(s), "NULL") != NULL;
    kiln_stream_destroy(s);
    return said ? (int64_t)st : -1;
}
/* kiln_network_load with a NULL path: the status, when the network made
** says what was NULL and holds no graph. */
static int64_t network_load_null(void)
{
    kiln_network *net = NULL;
    enum kiln_status st = kiln_network_load(NULL, &net);
    bool said = net && strstr(kiln_network_errmsg(net), "NULL") && !kiln_network_graph(net);
    kiln_network_destroy(net);
    return said ? (int64_t)st : -1;
}
/* kiln_network_root of a network (one that failed to load) by a NULL name. */
static int64_t network_root_null_name(void)
{
    kiln_network *net = NULL;
    kiln_network_load("/nonexistent/kiln.h5", &net);
    kiln_node n = kiln_network_root(net, NULL);
    kiln_network_destroy(net);
    return n.id;
}
/* kiln_stream_create_padded with a NULL dataset (which 0) or options (1). */
static int64_t padded_null(int which)
{
    kiln_stream *s = NULL;
    kiln_padded_options o = kiln_padded_options_default();
    enum kiln_status st = kiln_stream_create_padded(which == 0 ? NULL : F.d, which == 1 ? NULL : &o, &s);
    bool said = s && strstr(kiln_stream_errmsg(s), "NULL") != NULL;
    kiln_stream_destroy(s);
    return said ? (int64_t)st : -1;
}
static const int64_t SEQ_LENGTHS[N_EX] = {1, 1, 1, 1, 1, 1};
static int64_t padded_default_batch(void) { return kiln_padded_options_default().batch_size; }
static int64_t loop_null(kiln_program *p, kiln_stream *s)
{
    kiln_main_loop *m = NULL;
    enum kiln_status st = kiln_main_loop_create(p, s, &m);
    bool said = m && strstr(kiln_main_loop_errmsg(m), "NULL") != NULL;
    kiln_main_loop_destroy(m);
    return said ? (int64_t)st : -1;
}
/* kiln_main_loop_create_with_config given NULL p or stream (the status, -1
** when the message does not say NULL) or a NULL cfg (the defaults: KILN_OK). */
static int64_t loop_cfg_null(kiln_program *p, kiln_stream *s, bool cfg_null)
{
    kiln_main_loop *m = NULL;
    enum kiln_status st = kiln_main_loop_create_with_config(p, s, NULL, &m);
    bool said = m && (cfg_null || strstr(kiln_main_loop_errmsg(m), "NULL") != NULL);
    kiln_main_loop_destroy(m);
    return said ? (int64_t)st : -1;
}
/* The defaults' config given a NULL argument: which 0 loads from a NULL
** path (KILN_OK); 1..6 read with a NULL key or out (the status, -1 when the
** message does not say NULL). */
static int64_t config_null(int which)
{
    kiln_config *c = NULL;
    enum kiln_status st = kiln_config_load_from(NULL, NULL, &c);
    if (st != KILN_OK || which == 0) {
        kiln_config_destroy(c);
        return st;
    }
    int64_t i;
    bool b;
    const char *s;
    switch (which) {
    case 1: st = kiln_config_get_int(c, NULL, &i); break;
    case 2: st = kiln_config_get_int(c, "default_seed", NULL); break;
    case 3: st = kiln_config_get_bool(c, NULL, &b); break;
    case 4: st = kiln_config_get_bool(c, "profile", NULL); break;
    case 5: st = kiln_config_get_string(c, NULL, &s); break;
    default: st = kiln_config_get_string(c, "temp_dir", NULL); break;
    }
    bool said = strstr(kiln_config_errmsg(c), "NULL") != NULL;
    kiln_config_destroy(c);
    return said ? (int64_t)st : -1;
}
static const char *config_null_source(void)
{
    kiln_config *c = NULL;
    kiln_config_load_from(NULL, NULL, &c);
    const char *s = kiln_config_source(c, NULL);
    bool empty = s && !s[0];
    kiln_config_destroy(c);
    return empty ? "" : NULL;
}
static kiln_brick *fresh_linear(void) { return kiln_linear_create(NULL, 2, 2); }
static int64_t sequence_of_null_name(void)
{
    kiln_brick *c[1] = {kiln_tanh_create(NULL)};
    return made_brick(kiln_sequence_create(NULL, c, 1));
}
/* The MLP takes the activations also when it fails (LeakSanitizer checks). */
static int64_t mlp_without(bool acts, bool dims)
{
    kiln_brick *a[2] = {acts ? kiln_tanh_create(NULL) : NULL, NULL};
    int64_t d[3] = {4, 3, 2};
    return made_brick(kiln_mlp_create("mlp", acts ? a : NULL, 2, dims ? d : NULL));
}
static int64_t routing(int which, int null_arg)
{
    const char *names[2] = {"a", "b"};
    int64_t dims[2] = {3, 3};
    kiln_brick *b = NULL;
    const char *const *nm = null_arg == 1 ? NULL : names;
    const int64_t *dm = null_arg == 2 ? NULL : dims;
    kiln_brick *proto = null_arg == 3 ? NULL : fresh_linear();
    switch (which) {
    case 0: b = kiln_parallel_create(null_arg == 0 ? NULL : "par", nm, 2, dm, dm, proto, null_arg == 4 ? NULL : "t"); break;
    case 1: b = kiln_fork_create(null_arg == 0 ? NULL : "fork", nm, 2, 3, dm, proto); break;
    case 2: b = kiln_distribute_create(null_arg == 0 ? NULL : "dist", nm, 2, null_arg == 4 ? NULL : "s", dm, 3, proto); break;
    default: b = kiln_merge_create(null_arg == 0 ? NULL : "merge", nm, 2, dm, 3, proto, null_arg == 4 ? NULL : "t"); break;
    }
    return made_brick(b);
}
/* Attention and generators (#10): a NULL where the class has a default
** makes the brick; a NULL brick it needs makes none, and the bricks given
** with it are the caller's still. */
static int64_t attention_without(int null_arg)
{
    const char *states[1] = {"states"};
    int64_t dims[1] = {3};
    kiln_brick *b = kiln_sequence_content_attention_create(
        null_arg == 0 ? NULL : "att", null_arg == 1 ? NULL : states, 1, null_arg == 2 ? NULL : dims, 4, 5,
        null_arg == 3 ? NULL : kiln_linear_create(NULL, 0, 0), null_arg == 4 ? NULL : kiln_linear_create(NULL, 0, 0),
        null_arg == 5 ? NULL : kiln_shallow_energy_computer_create(NULL, 0, 0));
    return made_brick(b);
}
static int64_t attention_recurrent_without(int null_arg)
{
    const char *states[1] = {"states"};
    kiln_brick *t = null_arg == 1 ? NULL : kiln_simple_recurrent_create(NULL, 3, kiln_tanh_create(NULL));
    kiln_brick *a = null_arg == 2 ? NULL : kiln_sequence_content_attention_create(NULL, states, 1, NULL, 4, 5, NULL,
                                                                                  NULL, NULL);
    kiln_brick *d = null_arg == 3 ? NULL : kiln_distribute_create(NULL, (const char *[]){"inputs"}, 1,
                                                                  "weighted_averages", NULL, 0, NULL);
    kiln_brick *b = kiln_attention_recurrent_create(null_arg == 0 ? NULL : "ar", t, a, d, true,
                                                    null_arg == 4 ? NULL : "att", null_arg == 5 ? NULL : "att_mask");
    if (!b) /* refused before taking them */
        for (int i = 0; i < 3; i++)
            kiln_brick_destroy((kiln_brick *[]){t, a, d}[i]);
    return made_brick(b);
}
static int64_t readout_without(int null_arg)
{
    const char *sources[1] = {"states"};
    kiln_brick *b = kiln_readout_create(null_arg == 0 ? NULL : "ro", 4, null_arg == 1 ? NULL : sources, 1,
                                        null_arg == 2 ? NULL : kiln_softmax_emitter_create(NULL, 0),
                                        null_arg == 3 ? NULL : kiln_lookup_feedback_create(NULL, 4, 2),
                                        null_arg == 4 ? NULL : kiln_merge_create(NULL, sources, 1, NULL, 0, NULL, NULL),
                                        NULL, null_arg == 6 ? NULL : kiln_bias_create(NULL, 0), 0);
    return made_brick(b);
}
/* The merge_prototype row: given instead of a merge. */
static int64_t readout_with_merge_prototype(void)
{
    const char *sources[1] = {"states"};
    return made_brick(kiln_readout_create("ro", 4, sources, 1, NULL, NULL, NULL, kiln_linear_create(NULL, 0, 0), NULL,
                                          0));
}
static int64_t generator_without(int null_arg)
{
    const char *sources[1] = {"states"};
    kiln_brick *ro = null_arg == 1 ? NULL : kiln_readout_create(NULL, 4, sources, 1, NULL, NULL, NULL, NULL, NULL, 0);
    kiln_brick *t = null_arg == 2 ? NULL : kiln_simple_recurrent_create(NULL, 3, kiln_tanh_create(NULL));
    kiln_brick *a = null_arg == 3 ? NULL : kiln_sequence_content_attention_create(NULL, sources, 1, NULL, 4, 5, NULL,
                                                                                  NULL, NULL);
    kiln_brick *f = null_arg == 4 ? NULL : kiln_fork_create(NULL, (const char *[]){"inputs"}, 1, 0, NULL, NULL);
    kiln_brick *b = kiln_sequence_generator_create(null_arg == 0 ? NULL : "gen", ro, t, a, true, f);
    if (!b) /* refused before taking them */
        for (int i = 0; i < 4; i++)
            kiln_brick_destroy((kiln_brick *[]){ro, t, a, f}[i]);
    return made_brick(b);
}
static int64_t generate_without(int null_arg)
{
    kiln_generate_options o = {.n_steps = 2};
    return kiln_sequence_generator_generate(null_arg == 0 ? NULL : F.lin, null_arg == 1 ? NULL : F.g,
                                            null_arg == 2 ? NULL : &F.x, 1, null_arg == 3 ? NULL : &o,
                                            null_arg == 4 ? NULL : F.node_out, 1);
}
/* A stack of one LSTM: a NULL name (the class's), NULL transitions, or
** the default states_name. */
static int64_t stack_without(bool transitions, bool name)
{
    kiln_brick *t[1] = {kiln_lstm_create(NULL, 3, NULL)};
    kiln_brick *b = kiln_recurrent_stack_create(name ? NULL : "stack", transitions ? t : NULL, 1, NULL,
                                                name ? "states" : NULL, false);
    if (!transitions)
        kiln_brick_destroy(t[0]);
    return made_brick(b);
}
static int64_t default_options_of_null(void)
{
    kiln_recurrent_options o = kiln_brick_recurrent_options(NULL);
    return !o.one_step && !o.reverse && !o.return_initial_states;
}
static int64_t add_ext_null_loop(void) { return kiln_main_loop_add_extension(NULL, kiln_finish_after(1, 0)); }
static int64_t graph_new_dtype(void)
{
    kiln_graph *g = kiln_graph_create((enum kiln_dtype)99);
    kiln_graph_destroy(g);
    return g == NULL;
}
static int64_t options_default(void) { return kiln_compile_options_default().cost.id; }
static int64_t export_options_default(void) { return kiln_export_options_default().weights_file ? 1 : 0; }
static int64_t aot_options_default(void) { return kiln_aot_options_default().kind; }
static int64_t step_rule_by_name_null(bool name)
{
    kiln_step_rule r;
    return kiln_step_rule_by_name(name ? NULL : "adam", 0, name ? &r : NULL);
}
static int64_t finish_after_bad(void) { return made_ext(kiln_finish_after(-1, 0)); }
static double halve(int64_t iterations, double old, void *user)
{
    (void)iterations;
    (void)user;
    return old / 2;
}
static int64_t schedule_value_null(void) { return isnan(kiln_schedule_value(NULL, 0, 1)); }
static int64_t modify_null_state(void)
{
    kiln_schedule s = kiln_schedule_exponential(0.1, 0.5, 0, 1);
    return ext_failed(kiln_modify_stepper_attribute(&s, NULL, KILN_TIMESCALE_EPOCH, 1));
}
static const char *const PLOT_CHANNELS[] = {"cost", NULL};
static const char *const *const PLOT_FIGURES[] = {PLOT_CHANNELS, NULL};
/* A Plot refusing a NULL library path says so, and adding it then fails. */
static int64_t plot_null_library(void)
{
    kiln_extension *e = kiln_plot("d", "p.html", PLOT_FIGURES);
    int64_t ok = e && kiln_plot_set_library(e, NULL) == KILN_ERR_ARG &&
                 strstr(kiln_extension_errmsg(e), "path is NULL");
    kiln_extension_destroy(e);
    return ok;
}
static int64_t clone_null_name(void) { return made_brick(kiln_brick_clone(F.lin, NULL)); }
static int64_t brick_create_null_name(void) { return made_brick(kiln_brick_create(&PROBE_CLASS, NULL)); }

/* ---- The table ------------------------------------------------------------------- */

enum kind { K_STATUS, K_NODE, K_NULL, K_STR, K_INT, K_VOID };
/* The handle whose message must say what was NULL. */
enum holder { H_NONE, H_GRAPH, H_LIN, H_SM, H_CCE, H_PROBE, H_PARAM, H_PROGRAM, H_DATASET, H_STREAM, H_LOOP, H_EXT };

/* X(function, argument, kind, want, holder, call). want: the status (K_STATUS),
** the number (K_INT); unused for the others. No braces in a call (commas). */
#define ST_ARG KILN_ERR_ARG
#define ROWS(X) \
    /* common.h */ \
    X(kiln_status_string, "s", K_STR, 0, H_NONE, kiln_status_string((enum kiln_status)99)) \
    X(kiln_dtype_name, "t", K_STR, 0, H_NONE, kiln_dtype_name((enum kiln_dtype)99)) \
    X(kiln_dtype_size, "t", K_INT, 0, H_NONE, kiln_dtype_size((enum kiln_dtype)99)) \
    /* graph.h */ \
    X(kiln_graph_create, "floatx", K_INT, 1, H_NONE, graph_new_dtype()) \
    X(kiln_graph_destroy, "g", K_VOID, 0, H_NONE, kiln_graph_destroy(NULL)) \
    X(kiln_graph_floatx, "g", K_INT, KILN_DTYPE_F32, H_NONE, kiln_graph_floatx(NULL)) \
    X(kiln_graph_status, "g", K_STATUS, ST_ARG, H_NONE, kiln_graph_status(NULL)) \
    X(kiln_graph_errmsg, "g", K_STR, 0, H_NONE, kiln_graph_errmsg(NULL)) \
    X(kiln_graph_clear_error, "g", K_VOID, 0, H_NONE, kiln_graph_clear_error(NULL)) \
    X(kiln_graph_input, "g", K_NODE, 0, H_NONE, kiln_graph_input(NULL, "z", KILN_DTYPE_F32, 2, F.dims2)) \
    X(kiln_graph_input, "name", K_NODE, 0, H_GRAPH, kiln_graph_input(F.g, NULL, KILN_DTYPE_F32, 2, F.dims2)) \
    X(kiln_graph_input, "dims", K_NODE, 0, H_GRAPH, kiln_graph_input(F.g, "z", KILN_DTYPE_F32, 2, NULL)) \
    X(kiln_graph_input_by_name, "g", K_NODE, 0, H_NONE, kiln_graph_input_by_name(NULL, "features")) \
    X(kiln_graph_input_by_name, "name", K_NODE, 0, H_NONE, kiln_graph_input_by_name(F.g, NULL)) \
    X(kiln_graph_symbol, "g", K_INT, 0, H_NONE, kiln_graph_symbol(NULL, "n")) \
    X(kiln_graph_symbol, "name", K_INT, 0, H_GRAPH, kiln_graph_symbol(F.g, NULL)) \
    X(kiln_graph_dim_str, "g", K_STR, 0, H_NONE, kiln_graph_dim_str(NULL, KILN_BATCH, F.text, sizeof F.text)) \
    X(kiln_graph_dim_str, "buf", K_STR, 0, H_NONE, kiln_graph_dim_str(F.g, KILN_BATCH, NULL, 8)) \
    X(kiln_graph_node_count, "g", K_INT, 0, H_NONE, kiln_graph_node_count(NULL)) \
    X(kiln_graph_node_rank, "g", K_INT, -1, H_NONE, kiln_graph_node_rank(NULL, F.x)) \
    X(kiln_graph_node_dim, "g", K_INT, 0, H_NONE, kiln_graph_node_dim(NULL, F.x, 0)) \
    X(kiln_graph_node_dtype, "g", K_INT, KILN_DTYPE_F32, H_NONE, kiln_graph_node_dtype(NULL, F.y)) \
    X(kiln_graph_node_name, "g", K_STR, 0, H_NONE, kiln_graph_node_name(NULL, F.x)) \
    X(kiln_graph_set_name, "g", K_STATUS, ST_ARG, H_NONE, kiln_graph_set_name(NULL, F.x, "n")) \
    X(kiln_graph_set_name, "name", K_STATUS, KILN_OK, H_NONE, kiln_graph_set_name(F.g, F.h, NULL)) \
    X(kiln_graph_node_owner, "g", K_STR, 0, H_NONE, kiln_graph_node_owner(NULL, F.h)) \
    X(kiln_graph_node_brick_path, "g", K_STR, 0, H_NONE, kiln_graph_node_brick_path(NULL, F.h)) \
    X(kiln_graph_node_op, "g", K_STR, 0, H_NONE, kiln_graph_node_op(NULL, F.h)) \
    X(kiln_graph_node_param, "g", K_NULL, 0, H_NONE, kiln_graph_node_param(NULL, F.unode)) \
    X(kiln_graph_node_replacement_of, "g", K_NODE, 0, H_NONE, kiln_graph_node_replacement_of(NULL, F.h)) \
    X(kiln_graph_param_node, "g", K_NODE, 0, H_NONE, kiln_graph_param_node(NULL, F.u)) \
    X(kiln_graph_param_node, "p", K_NODE, 0, H_NONE, kiln_graph_param_node(F.g, NULL)) \
    X(kiln_graph_add_role, "g", K_STATUS, ST_ARG, H_NONE, kiln_graph_add_role(NULL, F.h, KILN_ROLE_OUTPUT)) \
    X(kiln_graph_has_role, "g", K_INT, 0, H_NONE, kiln_graph_has_role(NULL, F.x, KILN_ROLE_INPUT)) \
    X(kiln_graph_add_auxiliary, "g", K_STATUS, ST_ARG, H_NONE, kiln_graph_add_auxiliary(NULL, F.h, "a", F.lin)) \
    X(kiln_graph_add_auxiliary, "name", K_STATUS, KILN_OK, H_NONE, kiln_graph_add_auxiliary(F.g, F.h, NULL, F.lin)) \
    X(kiln_graph_add_auxiliary, "b", K_STATUS, KILN_OK, H_NONE, kiln_graph_add_auxiliary(F.g, F.h, "a", NULL)) \
    X(kiln_graph_filter, "g", K_INT, -1, H_NONE, kiln_graph_filter(NULL, &F.cost, 1, &F.filter, F.node_out, 2)) \
    X(kiln_graph_filter, "outputs", K_INT, -1, H_GRAPH, kiln_graph_filter(F.g, NULL, 1, &F.filter, F.node_out, 2)) \
    X(kiln_graph_filter, "f", K_INT, 1, H_NONE, kiln_graph_filter(F.g, &F.x, 1, NULL, F.node_out, 2)) \
    X(kiln_graph_filter, "out", K_INT, -1, H_GRAPH, kiln_graph_filter(F.g, &F.x, 1, &F.filter, NULL, 2)) \
    X(kiln_graph_update, "g", K_STATUS, ST_ARG, H_NONE, kiln_graph_update(NULL, F.unode, F.out)) \
    X(kiln_expr_constant, "g", K_NODE, 0, H_NONE, kiln_expr_constant(NULL, 1)) \
    X(kiln_expr_add, "g", K_NODE, 0, H_NONE, kiln_expr_add(NULL, F.h, F.h)) \
    X(kiln_expr_sub, "g", K_NODE, 0, H_NONE, kiln_expr_sub(NULL, F.h, F.h)) \
    X(kiln_expr_mul, "g", K_NODE, 0, H_NONE, kiln_expr_mul(NULL, F.h, F.h)) \
    X(kiln_expr_div, "g", K_NODE, 0, H_NONE, kiln_expr_div(NULL, F.h, F.h)) \
    X(kiln_expr_pow, "g", K_NODE, 0, H_NONE, kiln_expr_pow(NULL, F.h, F.h)) \
    X(kiln_expr_maximum, "g", K_NODE, 0, H_NONE, kiln_expr_maximum(NULL, F.h, F.h)) \
    X(kiln_expr_minimum, "g", K_NODE, 0, H_NONE, kiln_expr_minimum(NULL, F.h, F.h)) \
    X(kiln_expr_neg, "g", K_NODE, 0, H_NONE, kiln_expr_neg(NULL, F.h)) \
    X(kiln_expr_square, "g", K_NODE, 0, H_NONE, kiln_expr_square(NULL, F.h)) \
    X(kiln_expr_sqrt, "g", K_NODE, 0, H_NONE, kiln_expr_sqrt(NULL, F.h)) \
    X(kiln_expr_exp, "g", K_NODE, 0, H_NONE, kiln_expr_exp(NULL, F.h)) \
    X(kiln_expr_log, "g", K_NODE, 0, H_NONE, kiln_expr_log(NULL, F.h)) \
    X(kiln_expr_abs, "g", K_NODE, 0, H_NONE, kiln_expr_abs(NULL, F.h)) \
    X(kiln_expr_tanh, "g", K_NODE, 0, H_NONE, kiln_expr_tanh(NULL, F.h)) \
    X(kiln_expr_sigmoid, "g", K_NODE, 0, H_NONE, kiln_expr_sigmoid(NULL, F.h)) \
    X(kiln_expr_softplus, "g", K_NODE, 0, H_NONE, kiln_expr_softplus(NULL, F.h)) \
    X(kiln_expr_relu, "g", K_NODE, 0, H_NONE, kiln_expr_relu(NULL, F.h)) \
    X(kiln_expr_sign, "g", K_NODE, 0, H_NONE, kiln_expr_sign(NULL, F.h)) \
    X(kiln_expr_clip, "g", K_NODE, 0, H_NONE, kiln_expr_clip(NULL, F.h, 0, 1)) \
    X(kiln_expr_cast, "g", K_NODE, 0, H_NONE, kiln_expr_cast(NULL, F.h, KILN_DTYPE_I32)) \
    X(kiln_expr_not_equal, "g", K_NODE, 0, H_NONE, kiln_expr_not_equal(NULL, F.h, F.h)) \
    X(kiln_expr_equal, "g", K_NODE, 0, H_NONE, kiln_expr_equal(NULL, F.h, F.h)) \
    X(kiln_expr_greater, "g", K_NODE, 0, H_NONE, kiln_expr_greater(NULL, F.h, F.h)) \
    X(kiln_expr_greater_equal, "g", K_NODE, 0, H_NONE, kiln_expr_greater_equal(NULL, F.h, F.h)) \
    X(kiln_expr_less, "g", K_NODE, 0, H_NONE, kiln_expr_less(NULL, F.h, F.h)) \
    X(kiln_expr_less_equal, "g", K_NODE, 0, H_NONE, kiln_expr_less_equal(NULL, F.h, F.h)) \
    X(kiln_expr_select, "g", K_NODE, 0, H_NONE, kiln_expr_select(NULL, F.h, F.h, F.h)) \
    X(kiln_expr_sum, "g", K_NODE, 0, H_NONE, kiln_expr_sum(NULL, F.h, 0)) \
    X(kiln_expr_mean, "g", K_NODE, 0, H_NONE, kiln_expr_mean(NULL, F.h, 0)) \
    X(kiln_expr_max, "g", K_NODE, 0, H_NONE, kiln_expr_max(NULL, F.h, 0)) \
    X(kiln_expr_sum_axes, "g", K_NODE, 0, H_NONE, kiln_expr_sum_axes(NULL, F.h, 1)) \
    X(kiln_expr_mean_axes, "g", K_NODE, 0, H_NONE, kiln_expr_mean_axes(NULL, F.h, 1)) \
    X(kiln_expr_max_axes, "g", K_NODE, 0, H_NONE, kiln_expr_max_axes(NULL, F.h, 1)) \
    X(kiln_expr_matmul, "g", K_NODE, 0, H_NONE, kiln_expr_matmul(NULL, F.x, F.x)) \
    X(kiln_expr_transpose, "g", K_NODE, 0, H_NONE, kiln_expr_transpose(NULL, F.x)) \
    X(kiln_expr_permute, "g", K_NODE, 0, H_NONE, kiln_expr_permute(NULL, F.x, 2, F.perm2)) \
    X(kiln_expr_permute, "perm", K_NODE, 0, H_GRAPH, kiln_expr_permute(F.g, F.x, 2, NULL)) \
    X(kiln_expr_reshape, "g", K_NODE, 0, H_NONE, kiln_expr_reshape(NULL, F.x, 2, F.dims2)) \
    X(kiln_expr_reshape, "dims", K_NODE, 0, H_GRAPH, kiln_expr_reshape(F.g, F.x, 2, NULL)) \
    X(kiln_expr_flatten, "g", K_NODE, 0, H_NONE, kiln_expr_flatten(NULL, F.x, 1)) \
    X(kiln_expr_slice, "g", K_NODE, 0, H_NONE, kiln_expr_slice(NULL, F.x, 1, 0, 2, 1)) \
    X(kiln_expr_concat, "g", K_NODE, 0, H_NONE, kiln_expr_concat(NULL, F.nodes, 2, 1)) \
    X(kiln_expr_concat, "parts", K_NODE, 0, H_GRAPH, kiln_expr_concat(F.g, NULL, 2, 1)) \
    X(kiln_expr_reverse, "g", K_NODE, 0, H_NONE, kiln_expr_reverse(NULL, F.x, 1)) \
    X(kiln_expr_split, "g", K_NODE, 0, H_NONE, kiln_expr_split(NULL, F.x, 1, 2, F.sizes2)) \
    X(kiln_expr_split, "sizes", K_NODE, 0, H_GRAPH, kiln_expr_split(F.g, F.x, 1, 2, NULL)) \
    X(kiln_expr_output, "g", K_NODE, 0, H_NONE, kiln_expr_output(NULL, F.tuple, 0)) \
    X(kiln_graph_node_output_count, "g", K_INT, 0, H_NONE, kiln_graph_node_output_count(NULL, F.tuple)) \
    X(kiln_expr_softmax, "g", K_NODE, 0, H_NONE, kiln_expr_softmax(NULL, F.h)) \
    X(kiln_expr_log_softmax, "g", K_NODE, 0, H_NONE, kiln_expr_log_softmax(NULL, F.h)) \
    X(kiln_expr_argmax, "g", K_NODE, 0, H_NONE, kiln_expr_argmax(NULL, F.h)) \
    X(kiln_expr_pick, "g", K_NODE, 0, H_NONE, kiln_expr_pick(NULL, F.h, F.y)) \
    X(kiln_expr_gather, "g", K_NODE, 0, H_NONE, kiln_expr_gather(NULL, F.unode, F.y)) \
    X(kiln_expr_broadcast, "g", K_NODE, 0, H_NONE, kiln_expr_broadcast(NULL, F.h, 2, F.dims2)) \
    X(kiln_expr_broadcast, "dims", K_NODE, 0, H_GRAPH, kiln_expr_broadcast(F.g, F.h, 2, NULL)) \
    X(kiln_expr_scan, "g", K_NODE, 0, H_NONE, kiln_expr_scan(NULL, &F.scan, &F.x, NULL, NULL, scan_step, NULL)) \
    X(kiln_expr_scan, "spec", K_NODE, 0, H_GRAPH, kiln_expr_scan(F.g, NULL, &F.x, NULL, NULL, scan_step, NULL)) \
    X(kiln_expr_scan, "sequences", K_NODE, 0, H_GRAPH, kiln_expr_scan(F.g, &F.scan, NULL, NULL, NULL, scan_step, NULL)) \
    X(kiln_expr_scan, "step", K_NODE, 0, H_GRAPH, kiln_expr_scan(F.g, &F.scan, &F.x, NULL, NULL, NULL, NULL)) \
    X(kiln_graph_random_state, "g", K_NODE, 0, H_NONE, kiln_graph_random_state(NULL, 1)) \
    X(kiln_expr_random_uniform, "g", K_NODE, 0, H_NONE, kiln_expr_random_uniform(NULL, F.state, 2, F.dims2, 0, 1)) \
    X(kiln_expr_random_uniform, "dims", K_NODE, 0, H_GRAPH, kiln_expr_random_uniform(F.g, F.state, 2, NULL, 0, 1)) \
    X(kiln_expr_random_normal, "g", K_NODE, 0, H_NONE, kiln_expr_random_normal(NULL, F.state, 2, F.dims2, 0, 1)) \
    X(kiln_expr_random_normal, "dims", K_NODE, 0, H_GRAPH, kiln_expr_random_normal(F.g, F.state, 2, NULL, 0, 1)) \
    X(kiln_expr_random_bernoulli, "g", K_NODE, 0, H_NONE, kiln_expr_random_bernoulli(NULL, F.state, 2, F.dims2, .5)) \
    X(kiln_expr_random_bernoulli, "dims", K_NODE, 0, H_GRAPH, kiln_expr_random_bernoulli(F.g, F.state, 2, NULL, .5)) \
    X(kiln_graph_replace, "g", K_STATUS, ST_ARG, H_NONE, kiln_graph_replace(NULL, &F.out, 1, &F.h, &F.h, 1, &F.new_graph, F.node_out)) \
    X(kiln_graph_replace, "outputs", K_STATUS, ST_ARG, H_GRAPH, kiln_graph_replace(F.g, NULL, 1, &F.h, &F.h, 1, &F.new_graph, F.node_out)) \
    X(kiln_graph_replace, "from", K_STATUS, ST_ARG, H_GRAPH, kiln_graph_replace(F.g, &F.out, 1, NULL, &F.h, 1, &F.new_graph, F.node_out)) \
    X(kiln_graph_replace, "to", K_STATUS, ST_ARG, H_GRAPH, kiln_graph_replace(F.g, &F.out, 1, &F.h, NULL, 1, &F.new_graph, F.node_out)) \
    X(kiln_graph_replace, "new_graph", K_STATUS, ST_ARG, H_GRAPH, kiln_graph_replace(F.g, &F.out, 1, &F.h, &F.h, 1, NULL, F.node_out)) \
    X(kiln_graph_replace, "new_outputs", K_STATUS, ST_ARG, H_GRAPH, kiln_graph_replace(F.g, &F.out, 1, &F.h, &F.h, 1, &F.new_graph, NULL)) \
    X(kiln_apply_dropout, "g", K_STATUS, ST_ARG, H_NONE, kiln_apply_dropout(NULL, &F.out, 1, &F.h, 1, .5, 1, &F.new_graph, F.node_out)) \
    X(kiln_apply_dropout, "outputs", K_STATUS, ST_ARG, H_GRAPH, kiln_apply_dropout(F.g, NULL, 1, &F.h, 1, .5, 1, &F.new_graph, F.node_out)) \
    X(kiln_apply_dropout, "variables", K_STATUS, ST_ARG, H_GRAPH, kiln_apply_dropout(F.g, &F.out, 1, NULL, 1, .5, 1, &F.new_graph, F.node_out)) \
    X(kiln_apply_dropout, "new_graph", K_STATUS, ST_ARG, H_GRAPH, kiln_apply_dropout(F.g, &F.out, 1, &F.h, 1, .5, 1, NULL, F.node_out)) \
    X(kiln_apply_dropout, "new_outputs", K_STATUS, ST_ARG, H_GRAPH, kiln_apply_dropout(F.g, &F.out, 1, &F.h, 1, .5, 1, &F.new_graph, NULL)) \
    X(kiln_graph_write_text, "g", K_STATUS, ST_ARG, H_NONE, kiln_graph_write_text(NULL, F.devnull)) \
    X(kiln_graph_write_text, "f", K_STATUS, ST_ARG, H_NONE, kiln_graph_write_text(F.g, NULL)) \
    X(kiln_graph_write_dot, "g", K_STATUS, ST_ARG, H_NONE, kiln_graph_write_dot(NULL, F.devnull)) \
    X(kiln_graph_write_dot, "f", K_STATUS, ST_ARG, H_NONE, kiln_graph_write_dot(F.g, NULL)) \
    /* bricks.h: making bricks (a NULL name is the class's) */ \
    X(kiln_linear_create, "name", K_INT, 1, H_NONE, made_brick(kiln_linear_create(NULL, 3, 2))) \
    X(kiln_bias_create, "name", K_INT, 1, H_NONE, made_brick(kiln_bias_create(NULL, 3))) \
    X(kiln_identity_create, "name", K_INT, 1, H_NONE, made_brick(kiln_identity_create(NULL))) \
    X(kiln_rectifier_create, "name", K_INT, 1, H_NONE, made_brick(kiln_rectifier_create(NULL))) \
    X(kiln_tanh_create, "name", K_INT, 1, H_NONE, made_brick(kiln_tanh_create(NULL))) \
    X(kiln_logistic_create, "name", K_INT, 1, H_NONE, made_brick(kiln_logistic_create(NULL))) \
    X(kiln_softplus_create, "name", K_INT, 1, H_NONE, made_brick(kiln_softplus_create(NULL))) \
    X(kiln_softmax_create, "name", K_INT, 1, H_NONE, made_brick(kiln_softmax_create(NULL))) \
    X(kiln_sequence_create, "name", K_INT, 1, H_NONE, sequence_of_null_name()) \
    X(kiln_sequence_create, "children", K_NULL, 0, H_NONE, kiln_sequence_create("s", NULL, 2)) \
    X(kiln_mlp_create, "activations", K_INT, 1, H_NONE, mlp_without(false, true)) \
    X(kiln_mlp_create, "dims", K_INT, 0, H_NONE, mlp_without(true, false)) \
    X(kiln_categorical_cross_entropy_create, "name", K_INT, 1, H_NONE, made_brick(kiln_categorical_cross_entropy_create(NULL))) \
    X(kiln_binary_cross_entropy_create, "name", K_INT, 1, H_NONE, made_brick(kiln_binary_cross_entropy_create(NULL))) \
    X(kiln_squared_error_create, "name", K_INT, 1, H_NONE, made_brick(kiln_squared_error_create(NULL))) \
    X(kiln_absolute_error_create, "name", K_INT, 1, H_NONE, made_brick(kiln_absolute_error_create(NULL))) \
    X(kiln_misclassification_rate_create, "name", K_INT, 1, H_NONE, made_brick(kiln_misclassification_rate_create(NULL))) \
    X(kiln_simple_recurrent_create, "name", K_INT, 1, H_NONE, made_brick(kiln_simple_recurrent_create(NULL, 3, kiln_tanh_create(NULL)))) \
    X(kiln_simple_recurrent_create, "activation", K_INT, 0, H_NONE, made_brick(kiln_simple_recurrent_create("r", 3, NULL))) \
    X(kiln_lstm_create, "name", K_INT, 1, H_NONE, made_brick(kiln_lstm_create(NULL, 3, NULL))) \
    X(kiln_gated_recurrent_create, "name", K_INT, 1, H_NONE, made_brick(kiln_gated_recurrent_create(NULL, 3, NULL, NULL))) \
    X(kiln_bidirectional_create, "name", K_INT, 1, H_NONE, made_brick(kiln_bidirectional_create(NULL, kiln_lstm_create(NULL, 3, NULL)))) \
    X(kiln_bidirectional_create, "prototype", K_INT, 0, H_NONE, made_brick(kiln_bidirectional_create("bi", NULL))) \
    X(kiln_recurrent_stack_create, "name", K_INT, 1, H_NONE, stack_without(true, true)) \
    X(kiln_recurrent_stack_create, "transitions", K_INT, 0, H_NONE, stack_without(false, true)) \
    X(kiln_recurrent_stack_create, "states_name", K_INT, 1, H_NONE, stack_without(true, false)) \
    X(kiln_lookup_table_create, "name", K_INT, 1, H_NONE, made_brick(kiln_lookup_table_create(NULL, 5, 3))) \
    X(kiln_shallow_energy_computer_create, "name", K_INT, 1, H_NONE, made_brick(kiln_shallow_energy_computer_create(NULL, 3, 1))) \
    X(kiln_sequence_content_attention_create, "name", K_INT, 1, H_NONE, attention_without(0)) \
    X(kiln_sequence_content_attention_create, "state_names", K_INT, 0, H_NONE, attention_without(1)) \
    X(kiln_sequence_content_attention_create, "state_dims", K_INT, 1, H_NONE, attention_without(2)) \
    X(kiln_sequence_content_attention_create, "state_transformer", K_INT, 1, H_NONE, attention_without(3)) \
    X(kiln_sequence_content_attention_create, "attended_transformer", K_INT, 1, H_NONE, attention_without(4)) \
    X(kiln_sequence_content_attention_create, "energy_computer", K_INT, 1, H_NONE, attention_without(5)) \
    X(kiln_attention_recurrent_create, "name", K_INT, 1, H_NONE, attention_recurrent_without(0)) \
    X(kiln_attention_recurrent_create, "transition", K_INT, 0, H_NONE, attention_recurrent_without(1)) \
    X(kiln_attention_recurrent_create, "attention", K_INT, 0, H_NONE, attention_recurrent_without(2)) \
    X(kiln_attention_recurrent_create, "distribute", K_INT, 1, H_NONE, attention_recurrent_without(3)) \
    X(kiln_attention_recurrent_create, "attended_name", K_INT, 1, H_NONE, attention_recurrent_without(4)) \
    X(kiln_attention_recurrent_create, "attended_mask_name", K_INT, 1, H_NONE, attention_recurrent_without(5)) \
    X(kiln_softmax_emitter_create, "name", K_INT, 1, H_NONE, made_brick(kiln_softmax_emitter_create(NULL, 0))) \
    X(kiln_trivial_emitter_create, "name", K_INT, 1, H_NONE, made_brick(kiln_trivial_emitter_create(NULL, 3))) \
    X(kiln_trivial_feedback_create, "name", K_INT, 1, H_NONE, made_brick(kiln_trivial_feedback_create(NULL, 3))) \
    X(kiln_lookup_feedback_create, "name", K_INT, 1, H_NONE, made_brick(kiln_lookup_feedback_create(NULL, 5, 3))) \
    X(kiln_readout_create, "name", K_INT, 1, H_NONE, readout_without(0)) \
    X(kiln_readout_create, "source_names", K_INT, 0, H_NONE, readout_without(1)) \
    X(kiln_readout_create, "emitter", K_INT, 1, H_NONE, readout_without(2)) \
    X(kiln_readout_create, "feedback_brick", K_INT, 1, H_NONE, readout_without(3)) \
    X(kiln_readout_create, "merge", K_INT, 1, H_NONE, readout_without(4)) \
    X(kiln_readout_create, "merge_prototype", K_INT, 1, H_NONE, readout_with_merge_prototype()) \
    X(kiln_readout_create, "post_merge", K_INT, 1, H_NONE, readout_without(6)) \
    X(kiln_sequence_generator_create, "name", K_INT, 1, H_NONE, generator_without(0)) \
    X(kiln_sequence_generator_create, "readout", K_INT, 0, H_NONE, generator_without(1)) \
    X(kiln_sequence_generator_create, "transition", K_INT, 0, H_NONE, generator_without(2)) \
    X(kiln_sequence_generator_create, "attention", K_INT, 1, H_NONE, generator_without(3)) \
    X(kiln_sequence_generator_create, "fork", K_INT, 1, H_NONE, generator_without(4)) \
    X(kiln_sequence_generator_generate, "b", K_STATUS, ST_ARG, H_NONE, generate_without(0)) \
    X(kiln_sequence_generator_generate, "g", K_STATUS, ST_ARG, H_LIN, generate_without(1)) \
    X(kiln_sequence_generator_generate, "inputs", K_STATUS, ST_ARG, H_LIN, generate_without(2)) \
    X(kiln_sequence_generator_generate, "options", K_STATUS, ST_ARG, H_LIN, generate_without(3)) \
    X(kiln_sequence_generator_generate, "outputs", K_STATUS, ST_ARG, H_LIN, generate_without(4)) \
    X(kiln_parallel_create, "name", K_INT, 1, H_NONE, routing(0, 0)) \
    X(kiln_parallel_create, "input_names", K_INT, 0, H_NONE, routing(0, 1)) \
    X(kiln_parallel_create, "input_dims", K_INT, 1, H_NONE, routing(0, 2)) \
    X(kiln_parallel_create, "prototype", K_INT, 0, H_NONE, routing(0, 3)) \
    X(kiln_parallel_create, "child_prefix", K_INT, 1, H_NONE, routing(0, 4)) \
    X(kiln_fork_create, "name", K_INT, 1, H_NONE, routing(1, 0)) \
    X(kiln_fork_create, "output_names", K_INT, 0, H_NONE, routing(1, 1)) \
    X(kiln_fork_create, "output_dims", K_INT, 1, H_NONE, routing(1, 2)) \
    X(kiln_fork_create, "prototype", K_INT, 1, H_NONE, routing(1, 3)) \
    X(kiln_distribute_create, "name", K_INT, 1, H_NONE, routing(2, 0)) \
    X(kiln_distribute_create, "target_names", K_INT, 0, H_NONE, routing(2, 1)) \
    X(kiln_distribute_create, "target_dims", K_INT, 1, H_NONE, routing(2, 2)) \
    X(kiln_distribute_create, "prototype", K_INT, 1, H_NONE, routing(2, 3)) \
    X(kiln_distribute_create, "source_name", K_INT, 0, H_NONE, routing(2, 4)) \
    X(kiln_merge_create, "name", K_INT, 1, H_NONE, routing(3, 0)) \
    X(kiln_merge_create, "input_names", K_INT, 0, H_NONE, routing(3, 1)) \
    X(kiln_merge_create, "input_dims", K_INT, 1, H_NONE, routing(3, 2)) \
    X(kiln_merge_create, "prototype", K_INT, 1, H_NONE, routing(3, 3)) \
    X(kiln_merge_create, "child_prefix", K_INT, 1, H_NONE, routing(3, 4)) \
    /* bricks.h: structure, configuration, life cycle */ \
    X(kiln_brick_destroy, "b", K_VOID, 0, H_NONE, kiln_brick_destroy(NULL)) \
    X(kiln_brick_errmsg, "b", K_STR, 0, H_NONE, kiln_brick_errmsg(NULL)) \
    X(kiln_brick_name, "b", K_STR, 0, H_NONE, kiln_brick_name(NULL)) \
    X(kiln_brick_path, "b", K_STR, 0, H_NONE, kiln_brick_path(NULL)) \
    X(kiln_brick_child_count, "b", K_INT, 0, H_NONE, kiln_brick_child_count(NULL)) \
    X(kiln_brick_child, "b", K_NULL, 0, H_NONE, kiln_brick_child(NULL, 0)) \
    X(kiln_brick_child_by_name, "b", K_NULL, 0, H_NONE, kiln_brick_child_by_name(NULL, "x")) \
    X(kiln_brick_child_by_name, "name", K_NULL, 0, H_NONE, kiln_brick_child_by_name(F.lin, NULL)) \
    X(kiln_brick_parent, "b", K_NULL, 0, H_NONE, kiln_brick_parent(NULL)) \
    X(kiln_brick_add_child, "parent", K_STATUS, ST_ARG, H_NONE, kiln_brick_add_child(NULL, F.probe)) \
    X(kiln_brick_add_child, "child", K_STATUS, ST_ARG, H_PROBE, kiln_brick_add_child(F.probe, NULL)) \
    X(kiln_brick_clone, "b", K_NULL, 0, H_NONE, kiln_brick_clone(NULL, "c")) \
    X(kiln_brick_clone, "name", K_INT, 1, H_NONE, clone_null_name()) \
    X(kiln_brick_set_dim, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_set_dim(NULL, "input_dim", 3)) \
    X(kiln_brick_set_dim, "name", K_STATUS, ST_ARG, H_LIN, kiln_brick_set_dim(F.lin, NULL, 3)) \
    X(kiln_brick_get_dim, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_get_dim(NULL, "input_dim", &F.i64)) \
    X(kiln_brick_get_dim, "name", K_STATUS, ST_ARG, H_LIN, kiln_brick_get_dim(F.lin, NULL, &F.i64)) \
    X(kiln_brick_get_dim, "out", K_STATUS, ST_ARG, H_LIN, kiln_brick_get_dim(F.lin, "input_dim", NULL)) \
    X(kiln_brick_set_weights_init, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_set_weights_init(NULL, kiln_init_constant(1))) \
    X(kiln_brick_set_biases_init, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_set_biases_init(NULL, kiln_init_constant(1))) \
    X(kiln_brick_set_use_bias, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_set_use_bias(NULL, false)) \
    X(kiln_brick_set_seed, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_set_seed(NULL, 1)) \
    X(kiln_brick_push_allocation_config, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_push_allocation_config(NULL)) \
    X(kiln_brick_allocate, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_allocate(NULL)) \
    X(kiln_brick_push_initialization_config, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_push_initialization_config(NULL)) \
    X(kiln_brick_initialize, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_initialize(NULL)) \
    X(kiln_brick_allocated, "b", K_INT, 0, H_NONE, kiln_brick_allocated(NULL)) \
    X(kiln_brick_initialized, "b", K_INT, 0, H_NONE, kiln_brick_initialized(NULL)) \
    X(kiln_brick_call, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_call(NULL, "apply", F.g, &F.x, 1, F.node_out, 1)) \
    X(kiln_brick_call, "app", K_STATUS, ST_ARG, H_LIN, kiln_brick_call(F.lin, NULL, F.g, &F.x, 1, F.node_out, 1)) \
    X(kiln_brick_call, "g", K_STATUS, ST_ARG, H_LIN, kiln_brick_call(F.lin, "apply", NULL, &F.x, 1, F.node_out, 1)) \
    X(kiln_brick_call, "inputs", K_STATUS, ST_ARG, H_LIN, kiln_brick_call(F.lin, "apply", F.g, NULL, 1, F.node_out, 1)) \
    X(kiln_brick_call, "outputs", K_STATUS, ST_ARG, H_LIN, kiln_brick_call(F.lin, "apply", F.g, &F.x, 1, NULL, 1)) \
    X(kiln_brick_apply, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_apply(NULL, F.g, F.x, F.node_out)) \
    X(kiln_recurrent_call, "b", K_STATUS, ST_ARG, H_NONE, kiln_recurrent_call(NULL, "apply", F.g, &F.x, 1, NULL, F.node_out, 1)) \
    X(kiln_recurrent_call, "app", K_STATUS, ST_ARG, H_LIN, kiln_recurrent_call(F.lin, NULL, F.g, &F.x, 1, NULL, F.node_out, 1)) \
    X(kiln_recurrent_call, "g", K_STATUS, ST_ARG, H_LIN, kiln_recurrent_call(F.lin, "apply", NULL, &F.x, 1, NULL, F.node_out, 1)) \
    X(kiln_recurrent_call, "inputs", K_STATUS, ST_ARG, H_LIN, kiln_recurrent_call(F.lin, "apply", F.g, NULL, 1, NULL, F.node_out, 1)) \
    X(kiln_recurrent_call, "outputs", K_STATUS, ST_ARG, H_LIN, kiln_recurrent_call(F.lin, "apply", F.g, &F.x, 1, NULL, NULL, 1)) \
    X(kiln_brick_recurrent_options, "b", K_INT, 1, H_NONE, default_options_of_null()) \
    X(kiln_recurrent_masked, "g", K_NODE, 0, H_NONE, kiln_recurrent_masked(NULL, KILN_NODE_NONE, F.h, F.h)) \
    X(kiln_recurrent_initial_state, "b", K_STATUS, ST_ARG, H_NONE, kiln_recurrent_initial_state(NULL, "apply", F.g, "states", 2, F.node_out)) \
    X(kiln_recurrent_initial_state, "app", K_STATUS, ST_ARG, H_LIN, kiln_recurrent_initial_state(F.lin, NULL, F.g, "states", 2, F.node_out)) \
    X(kiln_recurrent_initial_state, "g", K_STATUS, ST_ARG, H_LIN, kiln_recurrent_initial_state(F.lin, "apply", NULL, "states", 2, F.node_out)) \
    X(kiln_recurrent_initial_state, "state", K_STATUS, ST_ARG, H_LIN, kiln_recurrent_initial_state(F.lin, "apply", F.g, NULL, 2, F.node_out)) \
    X(kiln_recurrent_initial_state, "out", K_STATUS, ST_ARG, H_LIN, kiln_recurrent_initial_state(F.lin, "apply", F.g, "states", 2, NULL)) \
    X(kiln_brick_apply, "g", K_STATUS, ST_ARG, H_LIN, kiln_brick_apply(F.lin, NULL, F.x, F.node_out)) \
    X(kiln_brick_apply, "out", K_STATUS, ST_ARG, H_LIN, kiln_brick_apply(F.lin, F.g, F.x, NULL)) \
    X(kiln_softmax_log_probabilities, "b", K_STATUS, ST_ARG, H_NONE, kiln_softmax_log_probabilities(NULL, F.g, F.h, F.node_out)) \
    X(kiln_softmax_log_probabilities, "g", K_STATUS, ST_ARG, H_SM, kiln_softmax_log_probabilities(F.sm, NULL, F.h, F.node_out)) \
    X(kiln_softmax_log_probabilities, "out", K_STATUS, ST_ARG, H_SM, kiln_softmax_log_probabilities(F.sm, F.g, F.h, NULL)) \
    X(kiln_softmax_categorical_cross_entropy, "b", K_STATUS, ST_ARG, H_NONE, kiln_softmax_categorical_cross_entropy(NULL, F.g, F.y, F.h, F.node_out)) \
    X(kiln_softmax_categorical_cross_entropy, "g", K_STATUS, ST_ARG, H_SM, kiln_softmax_categorical_cross_entropy(F.sm, NULL, F.y, F.h, F.node_out)) \
    X(kiln_softmax_categorical_cross_entropy, "out", K_STATUS, ST_ARG, H_SM, kiln_softmax_categorical_cross_entropy(F.sm, F.g, F.y, F.h, NULL)) \
    X(kiln_cost_apply, "b", K_STATUS, ST_ARG, H_NONE, kiln_cost_apply(NULL, F.g, F.y, F.h, F.node_out)) \
    X(kiln_cost_apply, "g", K_STATUS, ST_ARG, H_CCE, kiln_cost_apply(F.cce, NULL, F.y, F.h, F.node_out)) \
    X(kiln_cost_apply, "out", K_STATUS, ST_ARG, H_CCE, kiln_cost_apply(F.cce, F.g, F.y, F.h, NULL)) \
    X(kiln_brick_application_count, "b", K_INT, 0, H_NONE, kiln_brick_application_count(NULL)) \
    X(kiln_brick_application_name, "b", K_NULL, 0, H_NONE, kiln_brick_application_name(NULL, 0)) \
    X(kiln_brick_input_count, "b", K_INT, -1, H_NONE, kiln_brick_input_count(NULL, "apply")) \
    X(kiln_brick_input_count, "app", K_INT, -1, H_NONE, kiln_brick_input_count(F.lin, NULL)) \
    X(kiln_brick_input_name, "b", K_NULL, 0, H_NONE, kiln_brick_input_name(NULL, "apply", 0)) \
    X(kiln_brick_input_name, "app", K_NULL, 0, H_NONE, kiln_brick_input_name(F.lin, NULL, 0)) \
    X(kiln_brick_input_optional, "b", K_INT, 0, H_NONE, kiln_brick_input_optional(NULL, "apply", 0)) \
    X(kiln_brick_input_optional, "app", K_INT, 0, H_NONE, kiln_brick_input_optional(F.lin, NULL, 0)) \
    X(kiln_brick_output_count, "b", K_INT, -1, H_NONE, kiln_brick_output_count(NULL, "apply")) \
    X(kiln_brick_output_count, "app", K_INT, -1, H_NONE, kiln_brick_output_count(F.lin, NULL)) \
    X(kiln_brick_output_name, "b", K_NULL, 0, H_NONE, kiln_brick_output_name(NULL, "apply", 0)) \
    X(kiln_brick_output_name, "app", K_NULL, 0, H_NONE, kiln_brick_output_name(F.lin, NULL, 0)) \
    /* bricks.h: parameters */ \
    X(kiln_brick_param_count, "b", K_INT, 0, H_NONE, kiln_brick_param_count(NULL)) \
    X(kiln_brick_param, "b", K_NULL, 0, H_NONE, kiln_brick_param(NULL, 0)) \
    X(kiln_brick_param_by_name, "b", K_NULL, 0, H_NONE, kiln_brick_param_by_name(NULL, "W")) \
    X(kiln_brick_param_by_name, "name", K_NULL, 0, H_NONE, kiln_brick_param_by_name(F.lin, NULL)) \
    X(kiln_param_create, "name", K_NULL, 0, H_NONE, kiln_param_create(NULL, 1, F.dims1)) \
    X(kiln_param_create, "dims", K_NULL, 0, H_NONE, kiln_param_create("v", 1, NULL)) \
    X(kiln_state_create, "name", K_NULL, 0, H_NONE, kiln_state_create(NULL, 1, F.dims1)) \
    X(kiln_state_create, "dims", K_NULL, 0, H_NONE, kiln_state_create("v", 1, NULL)) \
    X(kiln_param_destroy, "p", K_VOID, 0, H_NONE, kiln_param_destroy(NULL)) \
    X(kiln_graph_param, "g", K_NODE, 0, H_NONE, kiln_graph_param(NULL, F.u)) \
    X(kiln_graph_param, "p", K_NODE, 0, H_GRAPH, kiln_graph_param(F.g, NULL)) \
    X(kiln_param_name, "p", K_STR, 0, H_NONE, kiln_param_name(NULL)) \
    X(kiln_param_brick, "p", K_NULL, 0, H_NONE, kiln_param_brick(NULL)) \
    X(kiln_param_rank, "p", K_INT, 0, H_NONE, kiln_param_rank(NULL)) \
    X(kiln_param_dim, "p", K_INT, 0, H_NONE, kiln_param_dim(NULL, 0)) \
    X(kiln_param_size, "p", K_INT, 0, H_NONE, kiln_param_size(NULL)) \
    X(kiln_param_get_values, "p", K_STATUS, ST_ARG, H_NONE, kiln_param_get_values(NULL, F.buf, N_CLASS)) \
    X(kiln_param_get_values, "dst", K_STATUS, ST_ARG, H_PARAM, kiln_param_get_values(F.u, NULL, N_CLASS)) \
    X(kiln_param_set_values, "p", K_STATUS, ST_ARG, H_NONE, kiln_param_set_values(NULL, F.buf, N_CLASS)) \
    X(kiln_param_set_values, "src", K_STATUS, ST_ARG, H_PARAM, kiln_param_set_values(F.u, NULL, N_CLASS)) \
    X(kiln_param_errmsg, "p", K_STR, 0, H_NONE, kiln_param_errmsg(NULL)) \
    /* bricks.h: defining a class */ \
    X(kiln_brick_create, "cls", K_NULL, 0, H_NONE, kiln_brick_create(NULL, "c")) \
    X(kiln_brick_create, "name", K_INT, 1, H_NONE, brick_create_null_name()) \
    X(kiln_brick_class_of, "b", K_NULL, 0, H_NONE, kiln_brick_class_of(NULL)) \
    X(kiln_brick_data, "b", K_NULL, 0, H_NONE, kiln_brick_data(NULL)) \
    X(kiln_brick_fail, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_fail(NULL, KILN_ERR_ARG, "x")) \
    X(kiln_brick_fail, "fmt", K_STATUS, KILN_ERR_CONFIG, H_PROBE, kiln_brick_fail(F.probe, KILN_ERR_CONFIG, NULL)) \
    X(kiln_brick_fail_from, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_fail_from(NULL, F.lin)) \
    X(kiln_brick_fail_from, "child", K_STATUS, ST_ARG, H_PROBE, kiln_brick_fail_from(F.probe, NULL)) \
    X(kiln_brick_add_dim, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_add_dim(NULL, "d", 1)) \
    X(kiln_brick_add_dim, "names", K_STATUS, ST_ARG, H_PROBE, kiln_brick_add_dim(F.probe, NULL, 1)) \
    X(kiln_brick_dim, "b", K_INT, 0, H_NONE, kiln_brick_dim(NULL, "input_dim")) \
    X(kiln_brick_dim, "name", K_INT, 0, H_NONE, kiln_brick_dim(F.lin, NULL)) \
    X(kiln_brick_require_dim, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_require_dim(NULL, "input_dim", &F.i64)) \
    X(kiln_brick_require_dim, "name", K_STATUS, ST_ARG, H_LIN, kiln_brick_require_dim(F.lin, NULL, &F.i64)) \
    X(kiln_brick_require_dim, "out", K_STATUS, KILN_OK, H_NONE, kiln_brick_require_dim(F.lin, "input_dim", NULL)) \
    X(kiln_brick_set_application_io, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_set_application_io(NULL, "apply", F.inputs, F.outputs)) \
    X(kiln_brick_set_application_io, "app", K_STATUS, ST_ARG, H_LIN, kiln_brick_set_application_io(F.lin, NULL, F.inputs, F.outputs)) \
    X(kiln_brick_set_application_io, "inputs", K_STATUS, KILN_OK, H_NONE, kiln_brick_set_application_io(F.lin, "apply", NULL, F.outputs)) \
    X(kiln_brick_set_application_io, "outputs", K_STATUS, ST_ARG, H_LIN, kiln_brick_set_application_io(F.lin, "apply", F.inputs, NULL)) \
    X(kiln_brick_add_param, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_add_param(NULL, "W", 0, 1, F.dims1, NULL)) \
    X(kiln_brick_add_param, "name", K_STATUS, KILN_ERR_STATE, H_NONE, kiln_brick_add_param(F.probe, NULL, 0, 1, F.dims1, NULL)) \
    X(kiln_brick_add_param, "dims", K_STATUS, KILN_ERR_STATE, H_NONE, kiln_brick_add_param(F.probe, "W", 0, 1, NULL, NULL)) \
    X(kiln_brick_weights_init, "b", K_INT, KILN_INIT_NONE, H_NONE, kiln_brick_weights_init(NULL).kind) \
    X(kiln_brick_biases_init, "b", K_INT, KILN_INIT_NONE, H_NONE, kiln_brick_biases_init(NULL).kind) \
    X(kiln_brick_use_bias, "b", K_INT, 0, H_NONE, kiln_brick_use_bias(NULL)) \
    X(kiln_brick_fill_param, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_fill_param(NULL, F.w, kiln_init_constant(1))) \
    X(kiln_brick_fill_param, "p", K_STATUS, ST_ARG, H_LIN, kiln_brick_fill_param(F.lin, NULL, kiln_init_constant(1))) \
    X(kiln_brick_init_weights_and_biases, "b", K_STATUS, ST_ARG, H_NONE, kiln_brick_init_weights_and_biases(NULL)) \
    /* compile.h */ \
    X(kiln_compile_options_default, "-", K_INT, -1, H_NONE, options_default()) \
    X(kiln_compile, "g", K_INT, ST_ARG, H_NONE, compile_null(NULL, &F.opts)) \
    X(kiln_compile, "o", K_INT, ST_ARG, H_NONE, compile_null(F.g, NULL)) \
    X(kiln_compile, "out", K_STATUS, ST_ARG, H_NONE, kiln_compile(F.g, &F.opts, NULL)) \
    X(kiln_program_destroy, "p", K_VOID, 0, H_NONE, kiln_program_destroy(NULL)) \
    X(kiln_program_errmsg, "p", K_STR, 0, H_NONE, kiln_program_errmsg(NULL)) \
    X(kiln_program_source, "p", K_STR, 0, H_NONE, kiln_program_source(NULL)) \
    X(kiln_program_compiler_ran, "p", K_INT, 0, H_NONE, kiln_program_compiler_ran(NULL)) \
    X(kiln_program_library_path, "p", K_STR, 0, H_NONE, kiln_program_library_path(NULL)) \
    X(kiln_program_cache_note, "p", K_STR, 0, H_NONE, kiln_program_cache_note(NULL)) \
    X(kiln_program_max_batch, "p", K_INT, 0, H_NONE, kiln_program_max_batch(NULL)) \
    X(kiln_program_can_train, "p", K_INT, 0, H_NONE, kiln_program_can_train(NULL)) \
    X(kiln_export_options_default, "-", K_INT, 0, H_NONE, export_options_default()) \
    X(kiln_program_export, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_export(NULL, &(kiln_export_options){0})) \
    X(kiln_program_export, "o", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_export(F.p, NULL)) \
    X(kiln_aot_options_default, "-", K_INT, KILN_AOT_INFER, H_NONE, aot_options_default()) \
    X(kiln_program_write_aot, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_write_aot(NULL, &(kiln_aot_options){0})) \
    X(kiln_program_write_aot, "o", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_write_aot(F.p, NULL)) \
    X(kiln_step_rule_by_name, "name", K_INT, 0, H_NONE, step_rule_by_name_null(true)) \
    X(kiln_step_rule_by_name, "out", K_INT, 0, H_NONE, step_rule_by_name_null(false)) \
    X(kiln_program_write_graph, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_write_graph(NULL, F.devnull, false)) \
    X(kiln_program_write_graph, "f", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_write_graph(F.p, NULL, false)) \
    X(kiln_program_input_count, "p", K_INT, 0, H_NONE, kiln_program_input_count(NULL)) \
    X(kiln_program_input_name, "p", K_STR, 0, H_NONE, kiln_program_input_name(NULL, 0)) \
    X(kiln_program_input_dtype, "p", K_INT, KILN_DTYPE_F32, H_NONE, kiln_program_input_dtype(NULL, 0)) \
    X(kiln_program_input_example_size, "p", K_INT, 0, H_NONE, kiln_program_input_example_size(NULL, 0)) \
    X(kiln_program_input_batched, "p", K_INT, 0, H_NONE, kiln_program_input_batched(NULL, 0)) \
    X(kiln_program_input_batch_first, "p", K_INT, 0, H_NONE, kiln_program_input_batch_first(NULL, 0)) \
    X(kiln_program_input_time_major, "p", K_INT, 0, H_NONE, kiln_program_input_time_major(NULL, 0)) \
    X(kiln_program_max_size, "p", K_INT, 0, H_NONE, kiln_program_max_size(NULL, KILN_TIME)) \
    X(kiln_program_isa, "p", K_STR, 0, H_NONE, kiln_program_isa(NULL)) \
    X(kiln_program_product_kernel, "p", K_STR, 0, H_NONE, kiln_program_product_kernel(NULL, false, 32, 100, 784)) \
    X(kiln_program_input_shape_str, "p", K_STR, 0, H_NONE, kiln_program_input_shape_str(NULL, 0, F.text, sizeof F.text)) \
    X(kiln_program_input_shape_str, "buf", K_STR, 0, H_NONE, kiln_program_input_shape_str(F.p, 0, NULL, 8)) \
    X(kiln_program_bind_input, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_bind_input(NULL, "features", F.xdata)) \
    X(kiln_program_bind_input, "name", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_bind_input(F.p, NULL, F.xdata)) \
    X(kiln_program_bind_input, "data", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_bind_input(F.p, "features", NULL)) \
    X(kiln_program_bind_input_n, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_bind_input_n(NULL, "features", F.xdata, 8)) \
    X(kiln_program_bind_input_n, "name", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_bind_input_n(F.p, NULL, F.xdata, 8)) \
    X(kiln_program_bind_input_n, "data", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_bind_input_n(F.p, "features", NULL, 8)) \
    X(kiln_program_set_size, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_set_size(NULL, KILN_TIME, 1)) \
    X(kiln_program_forward, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_forward(NULL, 1)) \
    X(kiln_program_eval_step, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_eval_step(NULL, 1)) \
    X(kiln_program_train_step, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_train_step(NULL, 1)) \
    X(kiln_program_read, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_read(NULL, F.cost, F.buf, 1)) \
    X(kiln_program_read, "dst", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_read(F.p, F.cost, NULL, 1)) \
    X(kiln_program_read_scalar, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_read_scalar(NULL, F.cost, F.buf)) \
    X(kiln_program_read_scalar, "out", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_read_scalar(F.p, F.cost, NULL)) \
    X(kiln_program_read_gradient, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_read_gradient(NULL, F.unode, F.buf, N_CLASS)) \
    X(kiln_program_read_gradient, "dst", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_read_gradient(F.p, F.unode, NULL, N_CLASS)) \
    X(kiln_program_gradients, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_gradients(NULL, 1)) \
    X(kiln_program_load_params, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_load_params(NULL)) \
    X(kiln_program_store_params, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_store_params(NULL)) \
    X(kiln_program_set_param, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_set_param(NULL, F.unode, F.buf, N_CLASS)) \
    X(kiln_program_set_param, "src", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_set_param(F.p, F.unode, NULL, N_CLASS)) \
    X(kiln_program_get_param, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_get_param(NULL, F.unode, F.buf, N_CLASS)) \
    X(kiln_program_get_param, "dst", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_get_param(F.p, F.unode, NULL, N_CLASS)) \
    X(kiln_program_param_floats, "p", K_INT, 0, H_NONE, kiln_program_param_floats(NULL)) \
    X(kiln_program_node_name, "p", K_STR, 0, H_NONE, kiln_program_node_name(NULL, F.cost)) \
    X(kiln_program_has_value, "p", K_INT, 0, H_NONE, kiln_program_has_value(NULL, F.cost)) \
    X(kiln_program_set_learning_rate, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_set_learning_rate(NULL, .1)) \
    X(kiln_program_state_count, "p", K_INT, 0, H_NONE, kiln_program_state_count(NULL)) \
    X(kiln_program_state_name, "p", K_STR, 0, H_NONE, kiln_program_state_name(NULL, 0)) \
    X(kiln_program_state_size, "p", K_INT, 0, H_NONE, kiln_program_state_size(NULL, 0)) \
    X(kiln_program_get_state, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_get_state(NULL, 0, F.buf, 1)) \
    X(kiln_program_get_state, "dst", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_get_state(F.p, 0, NULL, 1)) \
    X(kiln_program_set_state, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_set_state(NULL, 0, F.buf, 1)) \
    X(kiln_program_set_state, "src", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_set_state(F.p, 0, NULL, 1)) \
    X(kiln_program_find_state, "p", K_INT, -1, H_NONE, kiln_program_find_state(NULL, "learning_rate")) \
    X(kiln_program_find_state, "name", K_INT, -1, H_PROGRAM, kiln_program_find_state(F.p, NULL)) \
    X(kiln_program_set_hyperparameter, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_set_hyperparameter(NULL, "learning_rate", .1)) \
    X(kiln_program_set_hyperparameter, "name", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_set_hyperparameter(F.p, NULL, .1)) \
    X(kiln_program_get_hyperparameter, "p", K_STATUS, ST_ARG, H_NONE, kiln_program_get_hyperparameter(NULL, "learning_rate", F.buf)) \
    X(kiln_program_get_hyperparameter, "name", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_get_hyperparameter(F.p, NULL, F.buf)) \
    X(kiln_program_get_hyperparameter, "value", K_STATUS, ST_ARG, H_PROGRAM, kiln_program_get_hyperparameter(F.p, "learning_rate", NULL)) \
    /* data.h */ \
    X(kiln_dataset_create, "-", K_INT, 1, H_NONE, made_dataset(kiln_dataset_create())) \
    X(kiln_dataset_destroy, "d", K_VOID, 0, H_NONE, kiln_dataset_destroy(NULL)) \
    X(kiln_dataset_errmsg, "d", K_STR, 0, H_NONE, kiln_dataset_errmsg(NULL)) \
    X(kiln_dataset_add_source, "d", K_STATUS, ST_ARG, H_NONE, kiln_dataset_add_source(NULL, "z", KILN_DTYPE_F32, N_EX, 1, F.dims2 + 1, F.xdata)) \
    X(kiln_dataset_add_source, "name", K_STATUS, ST_ARG, H_DATASET, kiln_dataset_add_source(F.d, NULL, KILN_DTYPE_F32, N_EX, 1, F.dims2 + 1, F.xdata)) \
    X(kiln_dataset_add_source, "example_dims", K_STATUS, ST_ARG, H_DATASET, kiln_dataset_add_source(F.d, "z", KILN_DTYPE_F32, N_EX, 1, NULL, F.xdata)) \
    X(kiln_dataset_add_source, "data", K_STATUS, ST_ARG, H_DATASET, kiln_dataset_add_source(F.d, "z", KILN_DTYPE_F32, N_EX, 1, F.dims2 + 1, NULL)) \
    X(kiln_dataset_add_sequences, "d", K_STATUS, ST_ARG, H_NONE, kiln_dataset_add_sequences(NULL, "z", KILN_DTYPE_I32, N_EX, SEQ_LENGTHS, 0, NULL, F.ydata)) \
    X(kiln_dataset_add_sequences, "name", K_STATUS, ST_ARG, H_DATASET, kiln_dataset_add_sequences(F.d, NULL, KILN_DTYPE_I32, N_EX, SEQ_LENGTHS, 0, NULL, F.ydata)) \
    X(kiln_dataset_add_sequences, "lengths", K_STATUS, ST_ARG, H_DATASET, kiln_dataset_add_sequences(F.d, "z", KILN_DTYPE_I32, N_EX, NULL, 0, NULL, F.ydata)) \
    X(kiln_dataset_add_sequences, "step_dims", K_STATUS, ST_ARG, H_DATASET, kiln_dataset_add_sequences(F.d, "z", KILN_DTYPE_I32, N_EX, SEQ_LENGTHS, 1, NULL, F.ydata)) \
    X(kiln_dataset_add_sequences, "data", K_STATUS, ST_ARG, H_DATASET, kiln_dataset_add_sequences(F.d, "z", KILN_DTYPE_I32, N_EX, SEQ_LENGTHS, 0, NULL, NULL)) \
    X(kiln_dataset_source_is_sequence, "d", K_INT, 0, H_NONE, kiln_dataset_source_is_sequence(NULL, 0)) \
    X(kiln_dataset_sequence_length, "d", K_INT, -1, H_NONE, kiln_dataset_sequence_length(NULL, 0)) \
    X(kiln_dataset_open_idx, "images_path", K_INT, KILN_OK, H_NONE, open_idx_null()) \
    X(kiln_dataset_open_idx, "out", K_STATUS, ST_ARG, H_NONE, kiln_dataset_open_idx(NULL, NULL, NULL)) \
    X(kiln_dataset_example_count, "d", K_INT, 0, H_NONE, kiln_dataset_example_count(NULL)) \
    X(kiln_dataset_source_count, "d", K_INT, 0, H_NONE, kiln_dataset_source_count(NULL)) \
    X(kiln_dataset_source_index, "d", K_INT, -1, H_NONE, kiln_dataset_source_index(NULL, "features")) \
    X(kiln_dataset_source_index, "name", K_INT, -1, H_NONE, kiln_dataset_source_index(F.d, NULL)) \
    X(kiln_dataset_source_name, "d", K_NULL, 0, H_NONE, kiln_dataset_source_name(NULL, 0)) \
    X(kiln_dataset_source_dtype, "d", K_INT, KILN_DTYPE_F32, H_NONE, kiln_dataset_source_dtype(NULL, 1)) \
    X(kiln_dataset_source_example_size, "d", K_INT, -1, H_NONE, kiln_dataset_source_example_size(NULL, 0)) \
    X(kiln_dataset_source_data, "d", K_NULL, 0, H_NONE, kiln_dataset_source_data(NULL, 0)) \
    X(kiln_stream_create, "d", K_INT, ST_ARG, H_NONE, stream_null()) \
    X(kiln_stream_create, "out", K_STATUS, ST_ARG, H_NONE, kiln_stream_create(F.d, KILN_SCHEME_SEQUENTIAL, 2, 1, NULL)) \
    X(kiln_cache_list, "out", K_STATUS, ST_ARG, H_NONE, kiln_cache_list("/nonexistent", NULL, NULL, NULL)) \
    X(kiln_cache_list, "dir \"\"", K_STATUS, ST_ARG, H_NONE, kiln_cache_list("", NULL, NULL, &(kiln_cache_report){0})) \
    X(kiln_cache_clear, "out", K_STATUS, ST_ARG, H_NONE, kiln_cache_clear("/nonexistent", NULL)) \
    X(kiln_cache_clear, "dir \"\"", K_STATUS, ST_ARG, H_NONE, kiln_cache_clear("", &(kiln_cache_report){0})) \
    X(kiln_cache_prune, "out", K_STATUS, ST_ARG, H_NONE, kiln_cache_prune("/nonexistent", NULL)) \
    X(kiln_cache_prune, "dir \"\"", K_STATUS, ST_ARG, H_NONE, kiln_cache_prune("", &(kiln_cache_report){0})) \
    X(kiln_network_save, "g", K_STATUS, ST_ARG, H_NONE, kiln_network_save(NULL, &F.x, (const char *const[]){"x"}, 1, "/nonexistent/n.h5")) \
    X(kiln_network_save, "roots", K_STATUS, ST_ARG, H_GRAPH, kiln_network_save(F.g, NULL, (const char *const[]){"x"}, 1, "/nonexistent/n.h5")) \
    X(kiln_network_save, "names", K_STATUS, ST_ARG, H_GRAPH, kiln_network_save(F.g, &F.x, NULL, 1, "/nonexistent/n.h5")) \
    X(kiln_network_save, "path", K_STATUS, ST_ARG, H_GRAPH, kiln_network_save(F.g, &F.x, (const char *const[]){"x"}, 1, NULL)) \
    X(kiln_network_load, "path", K_INT, ST_ARG, H_NONE, network_load_null()) \
    X(kiln_network_load, "out", K_STATUS, ST_ARG, H_NONE, kiln_network_load("/nonexistent/n.h5", NULL)) \
    X(kiln_network_destroy, "net", K_VOID, 0, H_NONE, kiln_network_destroy(NULL)) \
    X(kiln_network_errmsg, "net", K_STR, 0, H_NONE, kiln_network_errmsg(NULL)) \
    X(kiln_network_graph, "net", K_NULL, 0, H_NONE, kiln_network_graph(NULL)) \
    X(kiln_network_root_count, "net", K_INT, 0, H_NONE, kiln_network_root_count(NULL)) \
    X(kiln_network_root_name, "net", K_STR, 0, H_NONE, kiln_network_root_name(NULL, 0)) \
    X(kiln_network_root, "net", K_NODE, 0, H_NONE, kiln_network_root(NULL, "x")) \
    X(kiln_network_root, "name", K_INT, -1, H_NONE, network_root_null_name()) \
    X(kiln_network_export, "net", K_STATUS, ST_ARG, H_NONE, kiln_network_export(NULL, NULL, 0, &(kiln_export_options){0})) \
    X(kiln_padded_options_default, "-", K_INT, 32, H_NONE, padded_default_batch()) \
    X(kiln_stream_create_padded, "d", K_INT, ST_ARG, H_NONE, padded_null(0)) \
    X(kiln_stream_create_padded, "o", K_INT, ST_ARG, H_NONE, padded_null(1)) \
    X(kiln_stream_create_padded, "out", K_STATUS, ST_ARG, H_NONE, kiln_stream_create_padded(F.d, NULL, NULL)) \
    X(kiln_stream_source_count, "s", K_INT, 0, H_NONE, kiln_stream_source_count(NULL)) \
    X(kiln_stream_source_name, "s", K_NULL, 0, H_NONE, kiln_stream_source_name(NULL, 0)) \
    X(kiln_stream_source_dtype, "s", K_INT, KILN_DTYPE_F32, H_NONE, kiln_stream_source_dtype(NULL, 0)) \
    X(kiln_stream_source_example_size, "s", K_INT, -1, H_NONE, kiln_stream_source_example_size(NULL, 0)) \
    X(kiln_stream_source_time_major, "s", K_INT, 0, H_NONE, kiln_stream_source_time_major(NULL, 0)) \
    X(kiln_stream_source_index, "s", K_INT, -1, H_NONE, kiln_stream_source_index(NULL, "features")) \
    X(kiln_stream_source_index, "name", K_INT, -1, H_NONE, kiln_stream_source_index(F.s, NULL)) \
    X(kiln_stream_max_time, "s", K_INT, 0, H_NONE, kiln_stream_max_time(NULL, &F.i64)) \
    X(kiln_stream_max_time, "example", K_INT, 0, H_NONE, kiln_stream_max_time(F.s, NULL)) \
    X(kiln_stream_destroy, "s", K_VOID, 0, H_NONE, kiln_stream_destroy(NULL)) \
    X(kiln_stream_errmsg, "s", K_STR, 0, H_NONE, kiln_stream_errmsg(NULL)) \
    X(kiln_stream_dataset, "s", K_NULL, 0, H_NONE, kiln_stream_dataset(NULL)) \
    X(kiln_stream_batch_size, "s", K_INT, 0, H_NONE, kiln_stream_batch_size(NULL)) \
    X(kiln_stream_batch_count, "s", K_INT, 0, H_NONE, kiln_stream_batch_count(NULL)) \
    X(kiln_stream_reset, "s", K_STATUS, ST_ARG, H_NONE, kiln_stream_reset(NULL)) \
    X(kiln_stream_next, "s", K_INT, 0, H_NONE, kiln_stream_next(NULL, &F.batch)) \
    X(kiln_stream_next, "b", K_INT, 0, H_STREAM, kiln_stream_next(F.s, NULL)) \
    X(kiln_stream_status, "s", K_STATUS, KILN_ERR_NOMEM, H_NONE, kiln_stream_status(NULL)) \
    /* train.h */ \
    X(kiln_main_loop_create, "p", K_INT, ST_ARG, H_NONE, loop_null(NULL, F.s)) \
    X(kiln_main_loop_create, "stream", K_INT, ST_ARG, H_NONE, loop_null(F.p, NULL)) \
    X(kiln_main_loop_create, "out", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_create(F.p, F.s, NULL)) \
    X(kiln_main_loop_destroy, "m", K_VOID, 0, H_NONE, kiln_main_loop_destroy(NULL)) \
    X(kiln_main_loop_errmsg, "m", K_STR, 0, H_NONE, kiln_main_loop_errmsg(NULL)) \
    X(kiln_main_loop_add_extension, "m", K_INT, ST_ARG, H_NONE, add_ext_null_loop()) \
    X(kiln_main_loop_add_extension, "ext", K_STATUS, KILN_ERR_NOMEM, H_LOOP, kiln_main_loop_add_extension(F.m, NULL)) \
    X(kiln_main_loop_run, "m", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_run(NULL)) \
    X(kiln_main_loop_epochs_done, "m", K_INT, 0, H_NONE, kiln_main_loop_epochs_done(NULL)) \
    X(kiln_main_loop_iterations_done, "m", K_INT, 0, H_NONE, kiln_main_loop_iterations_done(NULL)) \
    X(kiln_main_loop_last_record, "m", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_last_record(NULL, "k", F.buf)) \
    X(kiln_main_loop_last_record, "key", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_last_record(F.m, NULL, F.buf)) \
    X(kiln_main_loop_last_record, "out", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_last_record(F.m, "k", NULL)) \
    X(kiln_main_loop_record, "m", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_record(NULL, 0, "k", F.buf)) \
    X(kiln_main_loop_record, "key", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_record(F.m, 0, NULL, F.buf)) \
    X(kiln_main_loop_record, "out", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_record(F.m, 0, "k", NULL)) \
    X(kiln_finish_after, "-", K_INT, 1, H_NONE, finish_after_bad()) \
    X(kiln_printing, "out", K_INT, 1, H_NONE, made_ext(kiln_printing(NULL))) \
    X(kiln_data_stream_monitoring, "variables", K_INT, 1, H_NONE, ext_failed(kiln_data_stream_monitoring(NULL, 1, F.s2, "v"))) \
    X(kiln_data_stream_monitoring, "stream", K_INT, 1, H_NONE, ext_failed(kiln_data_stream_monitoring(&F.cost, 1, NULL, "v"))) \
    X(kiln_data_stream_monitoring, "prefix", K_INT, 1, H_NONE, made_ext(kiln_data_stream_monitoring(&F.cost, 1, F.s2, NULL))) \
    X(kiln_progress_bar, "out", K_INT, 1, H_NONE, made_ext(kiln_progress_bar(NULL))) \
    X(kiln_shared_variable_modifier, "state", K_INT, 1, H_NONE, ext_failed(kiln_shared_variable_modifier(NULL, halve, NULL, NULL))) \
    X(kiln_shared_variable_modifier, "fn", K_INT, 1, H_NONE, ext_failed(kiln_shared_variable_modifier("learning_rate", NULL, NULL, NULL))) \
    X(kiln_schedule_value, "s", K_INT, 1, H_NONE, schedule_value_null()) \
    X(kiln_modify_stepper_attribute, "s", K_INT, 1, H_NONE, ext_failed(kiln_modify_stepper_attribute(NULL, "learning_rate", KILN_TIMESCALE_EPOCH, 1))) \
    X(kiln_modify_stepper_attribute, "state", K_INT, 1, H_NONE, modify_null_state()) \
    X(kiln_plot, "document", K_INT, 1, H_NONE, ext_failed(kiln_plot(NULL, "p.html", PLOT_FIGURES))) \
    X(kiln_plot, "path", K_INT, 1, H_NONE, ext_failed(kiln_plot("d", NULL, PLOT_FIGURES))) \
    X(kiln_plot, "channels", K_INT, 1, H_NONE, ext_failed(kiln_plot("d", "p.html", NULL))) \
    X(kiln_plot_set_library, "e", K_STATUS, ST_ARG, H_NONE, kiln_plot_set_library(NULL, "chart.js")) \
    X(kiln_plot_set_library, "path", K_INT, 1, H_NONE, plot_null_library()) \
    X(kiln_extension_destroy, "e", K_VOID, 0, H_NONE, kiln_extension_destroy(NULL)) \
    X(kiln_extension_create, "name", K_INT, 1, H_NONE, made_ext(kiln_extension_create(NULL, probe_fn, NULL, NULL))) \
    X(kiln_extension_create, "fn", K_INT, 1, H_NONE, ext_failed(kiln_extension_create("e", NULL, NULL, NULL))) \
    X(kiln_extension_add_trigger, "e", K_STATUS, ST_ARG, H_NONE, kiln_extension_add_trigger(NULL, KILN_TRIGGER_AFTER_BATCH, 0)) \
    X(kiln_extension_clear_triggers, "e", K_VOID, 0, H_NONE, kiln_extension_clear_triggers(NULL)) \
    X(kiln_extension_name, "e", K_STR, 0, H_NONE, kiln_extension_name(NULL)) \
    X(kiln_extension_errmsg, "e", K_STR, 0, H_NONE, kiln_extension_errmsg(NULL)) \
    X(kiln_extension_fail, "e", K_STATUS, KILN_ERR_CONFIG, H_NONE, kiln_extension_fail(NULL, KILN_ERR_CONFIG, "x")) \
    X(kiln_extension_fail, "fmt", K_STATUS, KILN_ERR_CONFIG, H_EXT, kiln_extension_fail(F.e, KILN_ERR_CONFIG, NULL)) \
    X(kiln_main_loop_find_extension, "m", K_NULL, 0, H_NONE, kiln_main_loop_find_extension(NULL, "probe")) \
    X(kiln_main_loop_find_extension, "name", K_NULL, 0, H_NONE, kiln_main_loop_find_extension(F.m, NULL)) \
    X(kiln_main_loop_program, "m", K_NULL, 0, H_NONE, kiln_main_loop_program(NULL)) \
    X(kiln_main_loop_stream, "m", K_NULL, 0, H_NONE, kiln_main_loop_stream(NULL)) \
    X(kiln_main_loop_current_batch, "m", K_NULL, 0, H_NONE, kiln_main_loop_current_batch(NULL)) \
    X(kiln_main_loop_set_record, "m", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_set_record(NULL, "k", 1)) \
    X(kiln_main_loop_set_record, "key", K_STATUS, ST_ARG, H_LOOP, kiln_main_loop_set_record(F.m, NULL, 1)) \
    X(kiln_main_loop_set_record_bool, "m", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_set_record_bool(NULL, "k", true)) \
    X(kiln_main_loop_set_record_bool, "key", K_STATUS, ST_ARG, H_LOOP, kiln_main_loop_set_record_bool(F.m, NULL, true)) \
    X(kiln_main_loop_has_record, "m", K_INT, 0, H_NONE, kiln_main_loop_has_record(NULL, 0, "k", &F.flag)) \
    X(kiln_main_loop_has_record, "key", K_INT, 0, H_NONE, kiln_main_loop_has_record(F.m, 0, NULL, &F.flag)) \
    X(kiln_main_loop_has_record, "is_bool", K_INT, 0, H_NONE, kiln_main_loop_has_record(F.m, 0, "k", NULL)) \
    X(kiln_main_loop_create_with_config, "p", K_INT, ST_ARG, H_NONE, loop_cfg_null(NULL, F.s, false)) \
    X(kiln_main_loop_create_with_config, "stream", K_INT, ST_ARG, H_NONE, loop_cfg_null(F.p, NULL, false)) \
    X(kiln_main_loop_create_with_config, "cfg", K_INT, KILN_OK, H_NONE, loop_cfg_null(F.p, F.s, true)) \
    X(kiln_main_loop_create_with_config, "out", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_create_with_config(F.p, F.s, NULL, NULL)) \
    X(kiln_main_loop_set_log_backend, "m", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_set_log_backend(NULL, KILN_LOG_BACKEND_MEMORY, NULL)) \
    X(kiln_main_loop_set_log_backend, "path", K_STATUS, ST_ARG, H_LOOP, kiln_main_loop_set_log_backend(F.m, KILN_LOG_BACKEND_SQLITE, NULL)) \
    X(kiln_main_loop_log_backend, "m", K_INT, KILN_LOG_BACKEND_MEMORY, H_NONE, kiln_main_loop_log_backend(NULL)) \
    X(kiln_main_loop_set_record_text, "m", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_set_record_text(NULL, "k", "t")) \
    X(kiln_main_loop_set_record_text, "key", K_STATUS, ST_ARG, H_LOOP, kiln_main_loop_set_record_text(F.m, NULL, "t")) \
    X(kiln_main_loop_set_record_text, "text", K_STATUS, ST_ARG, H_LOOP, kiln_main_loop_set_record_text(F.m, "k", NULL)) \
    X(kiln_main_loop_record_text, "m", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_record_text(NULL, 0, "k", F.names)) \
    X(kiln_main_loop_record_text, "key", K_STATUS, ST_ARG, H_LOOP, kiln_main_loop_record_text(F.m, 0, NULL, F.names)) \
    X(kiln_main_loop_record_text, "out", K_STATUS, ST_ARG, H_LOOP, kiln_main_loop_record_text(F.m, 0, "k", NULL)) \
    X(kiln_main_loop_record_kind, "m", K_INT, KILN_RECORD_NONE, H_NONE, kiln_main_loop_record_kind(NULL, 0, "k")) \
    X(kiln_main_loop_record_kind, "key", K_INT, KILN_RECORD_NONE, H_NONE, kiln_main_loop_record_kind(F.m, 0, NULL)) \
    X(kiln_main_loop_set_profile, "m", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_set_profile(NULL, true, NULL)) \
    X(kiln_main_loop_set_profile, "out", K_STATUS, KILN_OK, H_NONE, kiln_main_loop_set_profile(F.m, true, NULL)) \
    X(kiln_main_loop_profile_seconds, "m", K_INT, 0, H_NONE, kiln_main_loop_profile_seconds(NULL, KILN_PROFILE_TRAIN_STEP, &F.i64)) \
    X(kiln_main_loop_profile_seconds, "calls", K_INT, 0, H_NONE, kiln_main_loop_profile_seconds(F.m, KILN_PROFILE_TRAIN_STEP, NULL)) \
    X(kiln_main_loop_set_signal_handling, "m", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_set_signal_handling(NULL, true)) \
    X(kiln_main_loop_set_finite_check, "m", K_STATUS, ST_ARG, H_NONE, kiln_main_loop_set_finite_check(NULL, true, 0)) \
    X(kiln_progress_bar_always, "out", K_INT, 1, H_NONE, made_ext(kiln_progress_bar_always(NULL))) \
    X(kiln_timing, "prefix", K_INT, 1, H_NONE, made_ext(kiln_timing(NULL))) \
    X(kiln_timestamp, "log_record", K_INT, 1, H_NONE, made_ext(kiln_timestamp(NULL, NULL))) \
    X(kiln_training_data_monitoring, "variables", K_INT, 1, H_NONE, ext_failed(kiln_training_data_monitoring(NULL, 1, "v"))) \
    X(kiln_training_data_monitoring, "prefix", K_INT, 1, H_NONE, made_ext(kiln_training_data_monitoring(&F.cost, 1, NULL))) \
    X(kiln_monitoring_set_aggregation, "e", K_STATUS, ST_ARG, H_NONE, kiln_monitoring_set_aggregation(NULL, 0, KILN_AGGREGATE_MEAN)) \
    X(kiln_track_the_best, "record_name", K_INT, 1, H_NONE, ext_failed(kiln_track_the_best(NULL, NULL, false))) \
    X(kiln_track_the_best, "notification_name", K_INT, 1, H_NONE, made_ext(kiln_track_the_best("c", NULL, false))) \
    X(kiln_track_the_best_value, "e", K_STATUS, ST_ARG, H_NONE, kiln_track_the_best_value(NULL, F.buf)) \
    X(kiln_finish_if_no_improvement_after, "notification_name", K_INT, 1, H_NONE, ext_failed(kiln_finish_if_no_improvement_after(NULL, 0, 1, NULL))) \
    X(kiln_finish_if_no_improvement_after, "patience_log_record", K_INT, 1, H_NONE, made_ext(kiln_finish_if_no_improvement_after("n", 0, 1, NULL))) \
    X(kiln_early_stopping, "record_name", K_INT, 1, H_NONE, ext_failed(kiln_early_stopping(NULL, NULL, false, 0, 1))) \
    X(kiln_early_stopping, "notification_name", K_INT, 1, H_NONE, made_ext(kiln_early_stopping("c", NULL, false, 0, 1))) \
    X(kiln_extension_add_on_log_record, "e", K_STATUS, ST_ARG, H_NONE, kiln_extension_add_on_log_record(NULL, KILN_CALLBACK_AFTER_EPOCH, "r")) \
    X(kiln_extension_add_on_log_record, "record", K_STATUS, ST_ARG, H_EXT, kiln_extension_add_on_log_record(F.e, KILN_CALLBACK_AFTER_EPOCH, NULL)) \
    X(kiln_composite_extension, "subs", K_INT, 1, H_NONE, ext_failed(kiln_composite_extension(NULL, NULL, 1, true, NULL, NULL, NULL))) \
    X(kiln_composite_extension, "name", K_INT, 1, H_NONE, made_ext(kiln_composite_extension(NULL, NULL, 0, true, NULL, NULL, NULL))) \
    X(kiln_extension_sub, "e", K_NULL, 0, H_NONE, kiln_extension_sub(NULL, 0)) \
    /* checkpoint.h (no file is written: every row fails before) */ \
    X(kiln_checkpoint_save, "m", K_STATUS, ST_ARG, H_NONE, kiln_checkpoint_save(NULL, "/nonexistent/x.h5")) \
    X(kiln_checkpoint_save, "path", K_STATUS, ST_ARG, H_LOOP, kiln_checkpoint_save(F.m, NULL)) \
    X(kiln_checkpoint_load, "m", K_STATUS, ST_ARG, H_NONE, kiln_checkpoint_load(NULL, "/nonexistent/x.h5")) \
    X(kiln_checkpoint_load, "path", K_STATUS, ST_ARG, H_LOOP, kiln_checkpoint_load(F.m, NULL)) \
    X(kiln_checkpoint_save_program, "p", K_STATUS, ST_ARG, H_NONE, kiln_checkpoint_save_program(NULL, NULL, "/nonexistent/x.h5")) \
    X(kiln_checkpoint_save_program, "path", K_STATUS, ST_ARG, H_PROGRAM, kiln_checkpoint_save_program(F.p, F.s, NULL)) \
    X(kiln_checkpoint_load_program, "p", K_STATUS, ST_ARG, H_NONE, kiln_checkpoint_load_program(NULL, NULL, "/nonexistent/x.h5")) \
    X(kiln_checkpoint_load_program, "path", K_STATUS, ST_ARG, H_PROGRAM, kiln_checkpoint_load_program(F.p, F.s, NULL)) \
    X(kiln_checkpoint, "path", K_INT, 1, H_NONE, ext_failed(kiln_checkpoint(NULL))) \
    X(kiln_load, "path", K_INT, 1, H_NONE, ext_failed(kiln_load(NULL, true, true))) \
    /* config.h */ \
    X(kiln_config_load, "out", K_STATUS, ST_ARG, H_NONE, kiln_config_load(NULL)) \
    X(kiln_config_load_from, "out", K_STATUS, ST_ARG, H_NONE, kiln_config_load_from(NULL, NULL, NULL)) \
    X(kiln_config_load_from, "path", K_INT, KILN_OK, H_NONE, config_null(0)) \
    X(kiln_config_destroy, "c", K_VOID, 0, H_NONE, kiln_config_destroy(NULL)) \
    X(kiln_config_errmsg, "c", K_STR, 0, H_NONE, kiln_config_errmsg(NULL)) \
    X(kiln_config_get_int, "c", K_STATUS, ST_ARG, H_NONE, kiln_config_get_int(NULL, "default_seed", &F.i64)) \
    X(kiln_config_get_int, "key", K_INT, ST_ARG, H_NONE, config_null(1)) \
    X(kiln_config_get_int, "out", K_INT, ST_ARG, H_NONE, config_null(2)) \
    X(kiln_config_get_bool, "c", K_STATUS, ST_ARG, H_NONE, kiln_config_get_bool(NULL, "profile", &F.flag)) \
    X(kiln_config_get_bool, "key", K_INT, ST_ARG, H_NONE, config_null(3)) \
    X(kiln_config_get_bool, "out", K_INT, ST_ARG, H_NONE, config_null(4)) \
    X(kiln_config_get_string, "c", K_STATUS, ST_ARG, H_NONE, kiln_config_get_string(NULL, "temp_dir", F.names)) \
    X(kiln_config_get_string, "key", K_INT, ST_ARG, H_NONE, config_null(5)) \
    X(kiln_config_get_string, "out", K_INT, ST_ARG, H_NONE, config_null(6)) \
    X(kiln_config_source, "c", K_STR, 0, H_NONE, kiln_config_source(NULL, "temp_dir")) \
    X(kiln_config_source, "key", K_STR, 0, H_NONE, config_null_source())

typedef struct row {
    const char *fn, *arg;
    enum kind kind;
    int64_t want;
    enum holder where;
} row;

#define AS_ROW(fn, arg, kind, want, where, call) {#fn, arg, kind, (int64_t)(want), where},
static const row ROW_TABLE[] = {ROWS(AS_ROW)};
#define N_ROWS ((int)(sizeof ROW_TABLE / sizeof ROW_TABLE[0]))

typedef struct result {
    int64_t i;
    const void *p;
} result;

#define RUN_K_STATUS(call) r.i = (int64_t)(call)
#define RUN_K_NODE(call) r.i = (call).id
#define RUN_K_NULL(call) r.p = (const void *)(call)
#define RUN_K_STR(call) r.p = (const void *)(call)
#define RUN_K_INT(call) r.i = (int64_t)(call)
#define RUN_K_VOID(call) (call)
#define AS_CASE(fn, arg, kind, want, where, call) \
    if (i == k++) {                               \
        RUN_##kind(call);                         \
        return r;                                 \
    }

static result run_row(int i)
{
    result r = {0, NULL};
    int k = 0;
    ROWS(AS_CASE)
    ck_abort_msg("no row %d", i);
    return r;
}

/* The message of the handle a row gave, or NULL when none. */
static const char *holder_message(enum holder h)
{
    switch (h) {
    case H_GRAPH: return kiln_graph_errmsg(F.g);
    case H_LIN: return kiln_brick_errmsg(F.lin);
    case H_SM: return kiln_brick_errmsg(F.sm);
    case H_CCE: return kiln_brick_errmsg(F.cce);
    case H_PROBE: return kiln_brick_errmsg(F.probe);
    case H_PARAM: return kiln_param_errmsg(F.u);
    case H_PROGRAM: return kiln_program_errmsg(F.p);
    case H_DATASET: return kiln_dataset_errmsg(F.d);
    case H_STREAM: return kiln_stream_errmsg(F.s);
    case H_LOOP: return kiln_main_loop_errmsg(F.m);
    case H_EXT: return kiln_extension_errmsg(F.e);
    default: return NULL;
    }
}

START_TEST(null_arguments_give_a_status)
{
    const row *w = &ROW_TABLE[_i];
    /* printed first, so that a crash names its row in the log */
    fprintf(stderr, "row %d: %s(%s = NULL)\n", _i, w->fn, w->arg);
    result r = run_row(_i);
    switch (w->kind) {
    case K_STATUS:
        ck_assert_msg(r.i == w->want, "%s(%s = NULL): %s, expected %s", w->fn, w->arg,
                      kiln_status_string((enum kiln_status)r.i), kiln_status_string((enum kiln_status)w->want));
        break;
    case K_NODE: ck_assert_msg(r.i < 0, "%s(%s = NULL) gave node %lld", w->fn, w->arg, (long long)r.i); break;
    case K_NULL: ck_assert_msg(r.p == NULL, "%s(%s = NULL) gave %p, expected NULL", w->fn, w->arg, r.p); break;
    case K_STR: ck_assert_msg(r.p != NULL, "%s(%s = NULL) gave a NULL string", w->fn, w->arg); break;
    case K_INT:
        ck_assert_msg(r.i == w->want, "%s(%s = NULL) gave %lld, expected %lld", w->fn, w->arg, (long long)r.i,
                      (long long)w->want);
        break;
    case K_VOID: break;
    }
    const char *msg = holder_message(w->where);
    if (msg)
        ck_assert_msg(strstr(msg, "NULL"), "%s(%s = NULL): the message does not say what was NULL: %s", w->fn,
                      w->arg, msg);
}
END_TEST

/* Every KILN_API function of the public headers has a row. */
START_TEST(every_public_function_has_a_row)
{
    const char *dir = getenv("KILN_INCLUDE_DIR");
    ck_assert_msg(dir, "KILN_INCLUDE_DIR is not set (tests/meson.build sets it)");
    int missing = 0, seen = 0, n_headers = 0;
    char report[4096] = "", folder[1024];
    snprintf(folder, sizeof folder, "%s/kiln", dir);
    DIR *hd = opendir(folder); /* every public header, so a new one is covered */
    ck_assert_msg(hd, "cannot read %s", folder);
    for (struct dirent *de; (de = readdir(hd));) {
        size_t len = strlen(de->d_name);
        if (len < 3 || strcmp(de->d_name + len - 2, ".h") != 0)
            continue;
        n_headers++;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", folder, de->d_name);
        FILE *f = fopen(path, "r");
        ck_assert_msg(f, "cannot read %s", path);
        char line[1024];
        bool in_decl = false;
        while (fgets(line, sizeof line, f)) {
            /* a declaration starts at KILN_API; its name is the first kiln_ word before '(' */
            if (strncmp(line, "KILN_API ", 9) == 0)
                in_decl = true;
            if (!in_decl)
                continue;
            char *paren = strchr(line, '(');
            if (!paren)
                continue;
            char *end = paren;
            while (end > line && isspace((unsigned char)end[-1]))
                end--;
            char *start = end;
            while (start > line && (isalnum((unsigned char)start[-1]) || start[-1] == '_'))
                start--;
            in_decl = false;
            if (end - start < 6 || strncmp(start, "kiln_", 5) != 0)
                continue;
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(end - start), start);
            seen++;
            bool found = false;
            for (int i = 0; i < N_ROWS && !found; i++)
                found = strcmp(ROW_TABLE[i].fn, name) == 0;
            if (!found) {
                missing++;
                size_t n = strlen(report);
                snprintf(report + n, sizeof report - n, " %s", name);
            }
        }
        fclose(f);
    }
    closedir(hd);
    ck_assert_msg(n_headers >= 8, "only %d public headers in %s", n_headers, folder);
    ck_assert_msg(seen > 200, "only %d public functions found: is the parser out of date?", seen);
    ck_assert_msg(missing == 0, "%d public functions have no row:%s", missing, report);
}
END_TEST

/* ---- Lifetimes -------------------------------------------------------------------- */

/* The program trains, and copies its parameters back, with no brick left. */
START_TEST(regress_9_brick_destroyed_before_program)
{
    model t;
    model_graph(&t);
    model_compile(&t, NULL, 0);
    kiln_node w = kiln_graph_param_node(t.g, kiln_brick_param_by_name(t.lin, "W"));
    kiln_brick_destroy(t.lin);
    kiln_brick_destroy(t.sm);
    kiln_brick_destroy(t.cce);
    kiln_graph_destroy(t.g);
    t.lin = t.sm = t.cce = NULL, t.g = NULL;
    ck_assert_msg(kiln_program_train_step(t.p, BATCH) == KILN_OK, "%s", kiln_program_errmsg(t.p));
    ck_assert_msg(kiln_program_store_params(t.p) == KILN_OK, "%s", kiln_program_errmsg(t.p));
    ck_assert_msg(kiln_program_load_params(t.p) == KILN_OK, "%s", kiln_program_errmsg(t.p));
    double v[N_FEAT * N_CLASS];
    ck_assert_msg(kiln_program_get_param(t.p, w, v, N_FEAT * N_CLASS) == KILN_OK, "%s", kiln_program_errmsg(t.p));
    ck_assert(isfinite(v[0]) && v[0] != 0.1); /* trained, then stored and loaded back unchanged */
    model_free(&t);
}
END_TEST

/* A parameter of no brick, destroyed by its caller while a program uses it. */
START_TEST(regress_9_param_destroyed_before_program)
{
    model t;
    model_graph(&t);
    kiln_param *u = kiln_param_create("u", 1, (int64_t[]){N_CLASS});
    ck_assert(kiln_param_set_values(u, (double[]){1, 2, 3}, N_CLASS) == KILN_OK);
    kiln_node un = kiln_graph_param(t.g, u);
    kiln_node out = kiln_expr_add(t.g, t.h, un);
    ck_assert_msg(kiln_node_ok(out), "%s", kiln_graph_errmsg(t.g));
    model_compile(&t, &out, 1);
    kiln_param_destroy(u);
    ck_assert(kiln_program_forward(t.p, BATCH) == KILN_OK);
    ck_assert(kiln_program_store_params(t.p) == KILN_OK);
    double v[N_CLASS];
    ck_assert(kiln_program_get_param(t.p, un, v, N_CLASS) == KILN_OK);
    ck_assert(v[0] == 1 && v[2] == 3);
    model_free(&t);
}
END_TEST

/* A graph outlives the bricks applied in it and still compiles. */
START_TEST(regress_9_brick_destroyed_before_graph_compiles)
{
    model t;
    model_graph(&t);
    kiln_brick_destroy(t.lin);
    t.lin = NULL;
    model_compile(&t, NULL, 0);
    ck_assert(kiln_program_eval_step(t.p, BATCH) == KILN_OK);
    double cost;
    ck_assert(kiln_program_read_scalar(t.p, t.cost, &cost) == KILN_OK);
    ck_assert(isfinite(cost));
    model_free(&t);
}
END_TEST

/* apply_dropout's graph reads a random state its source graph made: one per
** seed, and g's state of seed 3 comes along with the noise output. */
START_TEST(regress_9_graph_destroyed_before_its_dropout_graph)
{
    model t;
    model_graph(&t);
    kiln_node state = kiln_graph_random_state(t.g, 3);
    kiln_node outs[2] = {t.cost, kiln_expr_random_uniform(t.g, state, 2, FEATURES_DIMS, 0, 1)}, new_outs[2];
    kiln_graph *ng = NULL;
    ck_assert_msg(kiln_apply_dropout(t.g, outs, 2, &t.h, 1, 0.5, 3, &ng, new_outs) == KILN_OK, "%s",
                  kiln_graph_errmsg(t.g));
    kiln_graph_destroy(t.g);
    t.g = ng;
    t.cost = new_outs[0];
    model_compile(&t, &new_outs[1], 1);
    ck_assert_msg(kiln_program_train_step(t.p, BATCH) == KILN_OK, "%s", kiln_program_errmsg(t.p));
    model_free(&t);
}
END_TEST

/* A stream keeps its dataset: every batch, as before the destroy. */
START_TEST(regress_9_dataset_destroyed_before_stream)
{
    kiln_dataset *d = toy_dataset();
    kiln_stream *s = toy_stream(d, KILN_SCHEME_SEQUENTIAL);
    kiln_stream *sh = toy_stream(d, KILN_SCHEME_SHUFFLED);
    kiln_dataset_destroy(d);
    ck_assert_ptr_nonnull(kiln_stream_dataset(s));
    ck_assert_int_eq(kiln_dataset_example_count(kiln_stream_dataset(s)), N_EX);
    kiln_batch b;
    int64_t seen = 0;
    while (kiln_stream_next(s, &b)) {
        ck_assert(memcmp(b.sources[0], XDATA + seen * N_FEAT, (size_t)b.size * N_FEAT * sizeof(float)) == 0);
        seen += b.size;
    }
    ck_assert_int_eq(seen, N_EX);
    ck_assert(kiln_stream_next(sh, &b));
    kiln_stream_destroy(s);
    ck_assert(kiln_stream_next(sh, &b)); /* the other stream still holds it */
    kiln_stream_destroy(sh);
}
END_TEST

/* A main loop keeps its program and stream; a DataStreamMonitoring its own. */
START_TEST(regress_9_program_and_streams_destroyed_before_main_loop)
{
    model t;
    model_graph(&t);
    model_compile(&t, NULL, 0);
    kiln_dataset *d = toy_dataset();
    kiln_stream *s = toy_stream(d, KILN_SCHEME_SHUFFLED), *valid = toy_stream(d, KILN_SCHEME_SEQUENTIAL);
    kiln_main_loop *m = kiln_test_loop(t.p, s);
    kiln_test_loop_add(m, kiln_finish_after(2, 0));
    kiln_test_loop_add(m, kiln_data_stream_monitoring(&t.cost, 1, valid, "valid"));
    kiln_program *p = t.p;
    t.p = NULL;
    model_free(&t);
    kiln_program_destroy(p);
    kiln_stream_destroy(s);
    kiln_stream_destroy(valid);
    kiln_dataset_destroy(d);
    ck_assert_ptr_eq(kiln_main_loop_program(m), p);
    kiln_test_loop_run(m);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 2);
    double cost;
    ck_assert(kiln_main_loop_last_record(m, "valid_cost", &cost) == KILN_OK && isfinite(cost));
    kiln_main_loop_destroy(m);
}
END_TEST

/* An extension belongs to one loop: another refuses it, destroy leaves it. */
START_TEST(regress_9_extension_owned_by_its_loop)
{
    model t;
    model_graph(&t);
    model_compile(&t, NULL, 0);
    kiln_dataset *d = toy_dataset();
    kiln_stream *s = toy_stream(d, KILN_SCHEME_SEQUENTIAL);
    kiln_main_loop *m1 = kiln_test_loop(t.p, s), *m2 = kiln_test_loop(t.p, s);
    kiln_extension *stop = kiln_finish_after(1, 0);
    kiln_test_loop_add(m1, stop);
    ck_assert_int_eq(kiln_main_loop_add_extension(m2, stop), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_main_loop_errmsg(m2), "another main loop"), "%s", kiln_main_loop_errmsg(m2));
    ck_assert_int_eq(kiln_main_loop_add_extension(m1, stop), KILN_ERR_ARG);
    kiln_extension_destroy(stop); /* m1's: left to m1 */
    ck_assert_ptr_eq(kiln_main_loop_find_extension(m1, "FinishAfter"), stop);
    kiln_test_loop_run(m1);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m1), 1);
    kiln_main_loop_destroy(m2);
    kiln_main_loop_destroy(m1);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    model_free(&t);
}
END_TEST

/* A child is its parent's: destroying it alone does nothing. */
START_TEST(regress_9_child_brick_destroyed_alone)
{
    kiln_brick *mlp = kiln_mlp_create("mlp", (kiln_brick *[]){kiln_tanh_create(NULL)}, 1,
                                      (int64_t[]){N_FEAT, N_CLASS});
    ck_assert_ptr_nonnull(mlp);
    kiln_brick *child = kiln_brick_child(mlp, 0);
    kiln_brick_destroy(child);
    ck_assert_ptr_eq(kiln_brick_child(mlp, 0), child);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, FEATURES_DIMS), y;
    ck_assert_msg(kiln_brick_apply(mlp, g, x, &y) == KILN_OK, "%s", kiln_brick_errmsg(mlp));
    kiln_graph_destroy(g);
    kiln_brick_destroy(mlp);
}
END_TEST

static Suite *misuse_suite(void)
{
    Suite *s = suite_create("misuse");
    TCase *tc = tcase_create("null");
    tcase_add_unchecked_fixture(tc, fixture_setup, fixture_teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, null_arguments_give_a_status, 0, N_ROWS);
    tcase_add_test(tc, every_public_function_has_a_row);
    suite_add_tcase(s, tc);
    tc = tcase_create("lifetimes");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, regress_9_brick_destroyed_before_program);
    tcase_add_test(tc, regress_9_param_destroyed_before_program);
    tcase_add_test(tc, regress_9_brick_destroyed_before_graph_compiles);
    tcase_add_test(tc, regress_9_graph_destroyed_before_its_dropout_graph);
    tcase_add_test(tc, regress_9_dataset_destroyed_before_stream);
    tcase_add_test(tc, regress_9_program_and_streams_destroyed_before_main_loop);
    tcase_add_test(tc, regress_9_extension_owned_by_its_loop);
    tcase_add_test(tc, regress_9_child_brick_destroyed_alone);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return kiln_test_run(misuse_suite()); }
