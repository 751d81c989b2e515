/* test_extensions.c: the main loop's callbacks and triggers beyond the basic
** ones (on_resumption, on_interrupt, OnLogRecord, CompositeExtension), its
** signal handling and non-finite stop, and Blocks' Timing, Timestamp,
** TrainingDataMonitoring with its aggregation schemes, TrackTheBest,
** FinishIfNoImprovementAfter, EarlyStopping, ProgressBar and Printing's
** interrupt and resumption blocks. They train the toy problem of toyloop.h
** (4 batches an epoch, the last one of a single example). */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kiln/kiln.h"
#include "testutil.h"
#include "toyloop.h"

/* A toy problem with its data and training stream. */
typedef struct fixture {
    toy t;
    kiln_dataset *d;
    kiln_stream *s;
} fixture;

static void fixture_init(fixture *f, double lr)
{
    toy_build(&f->t, "features", lr);
    f->d = toy_dataset(N_TRAIN, 0);
    f->s = toy_stream(f->d, BATCH);
}

static void fixture_free(fixture *f)
{
    kiln_stream_destroy(f->s);
    kiln_dataset_destroy(f->d);
    toy_free(&f->t);
}

/* ---- Callback order, resumption and interrupts ----------------------------- */

/* One letter per callback, in enum order: before_training T, before_epoch E,
** before_batch b, after_batch a, after_epoch e, after_training F, on_error
** X, on_resumption R, on_interrupt I. It raises signal `sig` in after_batch
** at iterations raise_at[0..1] (0: never). */
typedef struct trace {
    char calls[512];
    int n;
    int sig;
    int64_t raise_at[2];
} trace;

static enum kiln_status trace_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                 void *user)
{
    (void)e;
    trace *tr = user;
    static const char letters[] = "TEbaeFXRI";
    if (tr->n < (int)sizeof tr->calls - 1)
        tr->calls[tr->n++] = letters[which];
    tr->calls[tr->n] = '\0';
    int64_t it = kiln_main_loop_iterations_done(m);
    if (which == KILN_CALLBACK_AFTER_BATCH && (it == tr->raise_at[0] || it == tr->raise_at[1]))
        raise(tr->sig);
    return KILN_OK;
}

static kiln_extension *trace_ext(trace *tr)
{
    kiln_extension *e = kiln_extension_create("trace", trace_fn, tr, NULL);
    ck_assert(e);
    for (int t = KILN_TRIGGER_BEFORE_TRAINING; t <= KILN_TRIGGER_ON_INTERRUPT; t++)
        if (t != KILN_TRIGGER_BEFORE_FIRST_EPOCH && (t < KILN_TRIGGER_AFTER_N_EPOCHS ||
                                                     t > KILN_TRIGGER_EVERY_N_BATCHES))
            ck_assert(kiln_extension_add_trigger(e, (enum kiln_trigger)t, 0) == KILN_OK);
    return e;
}

/* "Eba" * k with each epoch's 4 batches: want += before_epoch? + k batches + e? */
static void add_batches(char *want, int k)
{
    for (int i = 0; i < k; i++)
        strcat(want, "ba");
}

static void expect_bool_record(kiln_main_loop *m, int64_t it, const char *key)
{
    double v = 0;
    ck_assert_msg(kiln_main_loop_record(m, it, key, &v) == KILN_OK && v == 1,
                  "row %lld has no %s = True", (long long)it, key);
}

START_TEST(a_sigint_finishes_the_epoch_and_a_rerun_resumes)
{
    fixture f;
    fixture_init(&f, 0.1);
    trace tr = {.sig = SIGINT, .raise_at = {2, 0}};
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_test_loop_add(m, trace_ext(&tr));
    kiln_test_loop_add(m, kiln_finish_after(2, 0));

    /* First run: the epoch goes on to its end, then on_interrupt. */
    enum kiln_status st = kiln_main_loop_run(m);
    ck_assert_msg(st == KILN_INTERRUPTED, "%s: %s", kiln_status_string(st), kiln_main_loop_errmsg(m));
    ck_assert_msg(strstr(kiln_main_loop_errmsg(m), "interrupted by SIGINT at iteration 4"), "%s",
                  kiln_main_loop_errmsg(m));
    char want[512] = "TE";
    add_batches(want, BATCHES_PER_EPOCH);
    strcat(want, "eI");
    ck_assert_str_eq(tr.calls, want);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 4);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 1);
    expect_bool_record(m, 4, "epoch_interrupt_received");
    ck_assert_int_eq(kiln_main_loop_record_kind(m, 4, "training_finished"), KILN_RECORD_NONE);

    /* Second run: on_resumption, no before_training, the second epoch. */
    kiln_test_loop_run(m);
    strcat(want, "RE");
    add_batches(want, BATCHES_PER_EPOCH);
    strcat(want, "eF");
    ck_assert_str_eq(tr.calls, want);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 8);
    expect_bool_record(m, 8, "training_finished");
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}
END_TEST

/* The first example of each batch, in before_batch. */
typedef struct firsts {
    int64_t first[32];
    int n;
} firsts;

static enum kiln_status firsts_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                  void *user)
{
    (void)e, (void)which;
    firsts *fs = user;
    const kiln_batch *b = kiln_main_loop_current_batch(m);
    ck_assert(b && b->examples);
    if (fs->n < 32)
        fs->first[fs->n++] = b->examples[0];
    return KILN_OK;
}

static void sigterm_or_second_sigint(int sig, int64_t first, int64_t second)
{
    fixture f;
    fixture_init(&f, 0.1);
    trace tr = {.sig = sig, .raise_at = {first, second}};
    firsts fs = {0};
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_test_loop_add(m, trace_ext(&tr));
    kiln_extension *e = kiln_extension_create("firsts", firsts_fn, &fs, NULL);
    ck_assert(kiln_extension_add_trigger(e, KILN_TRIGGER_BEFORE_BATCH, 0) == KILN_OK);
    kiln_test_loop_add(m, e);
    kiln_test_loop_add(m, kiln_finish_after(1, 0));

    /* Stops right after batch 2, mid-epoch. */
    ck_assert_int_eq(kiln_main_loop_run(m), KILN_INTERRUPTED);
    ck_assert_str_eq(tr.calls, "TEbabaI");
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 2);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 0);
    expect_bool_record(m, 2, "batch_interrupt_received");
    ck_assert_msg(strstr(kiln_main_loop_errmsg(m), "mid-epoch"), "%s", kiln_main_loop_errmsg(m));

    /* The rerun goes on with batch 3 of the same epoch: no before_epoch. */
    kiln_test_loop_run(m);
    ck_assert_str_eq(tr.calls, "TEbabaIRbabaeF");
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 4);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 1);
    ck_assert_int_eq(fs.n, 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(fs.first[i], i * BATCH); /* sequential: 0, 3, 6, 9 */
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}

START_TEST(a_sigterm_finishes_the_batch)
{
    sigterm_or_second_sigint(SIGTERM, 2, 0);
}
END_TEST

START_TEST(a_second_sigint_finishes_the_batch)
{
    sigterm_or_second_sigint(SIGINT, 1, 2);
}
END_TEST

static volatile sig_atomic_t caught;
static void count_signal(int sig)
{
    (void)sig;
    caught++;
}

START_TEST(signal_handlers_are_restored_and_can_be_left_alone)
{
    struct sigaction sa, cur;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = count_signal;
    ck_assert(sigaction(SIGINT, &sa, NULL) == 0 && sigaction(SIGTERM, &sa, NULL) == 0);

    /* Handled by the loop, then the caller's handlers are back. */
    fixture f;
    fixture_init(&f, 0.1);
    trace tr = {.sig = SIGINT, .raise_at = {1, 0}};
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_test_loop_add(m, trace_ext(&tr));
    kiln_test_loop_add(m, kiln_finish_after(2, 0));
    ck_assert_int_eq(kiln_main_loop_run(m), KILN_INTERRUPTED);
    ck_assert_int_eq(caught, 0);
    ck_assert(sigaction(SIGINT, NULL, &cur) == 0 && cur.sa_handler == count_signal);
    ck_assert(sigaction(SIGTERM, NULL, &cur) == 0 && cur.sa_handler == count_signal);
    kiln_main_loop_destroy(m);

    /* Turned off: the caller's handler gets the signal, the run goes on. */
    trace tr2 = {.sig = SIGTERM, .raise_at = {1, 0}};
    m = kiln_test_loop(f.t.p, f.s);
    ck_assert(kiln_main_loop_set_signal_handling(m, false) == KILN_OK);
    kiln_test_loop_add(m, trace_ext(&tr2));
    kiln_test_loop_add(m, kiln_finish_after(1, 0));
    kiln_test_loop_run(m);
    ck_assert_int_eq(caught, 1);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 4);
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}
END_TEST

/* Writes one byte to the pipe fd *user after batch 3, so that the parent
** knows training runs. */
static enum kiln_status ready_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                 void *user)
{
    (void)e, (void)which;
    if (kiln_main_loop_iterations_done(m) == 3 && write(*(int *)user, "r", 1) != 1)
        return KILN_ERR_IO;
    return KILN_OK;
}

/* A real signal from another process, arriving while the child trains:
** the child's run returns KILN_INTERRUPTED after the batch and the child
** exits normally (status 0), not killed. */
START_TEST(a_sigterm_from_another_process_ends_the_run_cleanly)
{
    int fds[2];
    ck_assert(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        fixture f;
        fixture_init(&f, 0.1);
        kiln_main_loop *m = NULL;
        if (kiln_main_loop_create_with_config(f.t.p, f.s, NULL, &m) != KILN_OK)
            _exit(10);
        kiln_extension *e = kiln_extension_create("ready", ready_fn, &fds[1], NULL);
        kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_BATCH, 0);
        kiln_main_loop_add_extension(m, e);
        kiln_main_loop_add_extension(m, kiln_finish_after(1000000, 0));
        enum kiln_status st = kiln_main_loop_run(m);
        int64_t it = kiln_main_loop_iterations_done(m);
        double v = 0;
        bool recorded = kiln_main_loop_record(m, it, "batch_interrupt_received", &v) == KILN_OK && v == 1;
        kiln_main_loop_destroy(m);
        fixture_free(&f);
        _exit(st == KILN_INTERRUPTED && recorded && it >= 3 ? 0 : 11);
    }
    close(fds[1]);
    char c;
    ck_assert_int_eq(read(fds[0], &c, 1), 1);
    close(fds[0]);
    ck_assert(kill(pid, SIGTERM) == 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}
END_TEST

/* The final weights of the toy problem after FinishAfter(2 epochs), run
** straight, or interrupted by a SIGTERM after batch 3 with a Checkpoint on
** on_interrupt and finished by a new loop that loads it. */
static void toy_weights_after_two_epochs(const char *checkpoint, double *w)
{
    fixture f;
    fixture_init(&f, 0.3);
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    if (checkpoint) {
        trace tr = {.sig = SIGTERM, .raise_at = {3, 0}};
        kiln_test_loop_add(m, trace_ext(&tr));
        kiln_extension *ck = kiln_checkpoint(checkpoint);
        ck_assert(kiln_extension_add_trigger(ck, KILN_TRIGGER_ON_INTERRUPT, 0) == KILN_OK);
        kiln_test_loop_add(m, ck);
        kiln_test_loop_add(m, kiln_finish_after(2, 0));
        ck_assert_int_eq(kiln_main_loop_run(m), KILN_INTERRUPTED);
        const char *saved;
        ck_assert(kiln_main_loop_record_text(m, 3, "saved_to", &saved) == KILN_OK);
        kiln_main_loop_destroy(m);
        fixture_free(&f);
        fixture_init(&f, 0.3); /* a new process, as it were */
        m = kiln_test_loop(f.t.p, f.s);
        ck_assert_msg(kiln_checkpoint_load(m, checkpoint) == KILN_OK, "%s", kiln_main_loop_errmsg(m));
        ck_assert_int_eq(kiln_main_loop_iterations_done(m), 3);
    }
    kiln_test_loop_add(m, kiln_finish_after(2, 0));
    kiln_test_loop_run(m);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 8);
    kiln_node wn = kiln_graph_param_node(f.t.g, kiln_brick_param_by_name(f.t.linear, "W"));
    ck_assert(kiln_program_get_param(f.t.p, wn, w, N_FEAT * N_CLASS) == KILN_OK);
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}

START_TEST(a_checkpoint_on_interrupt_resumes_exactly)
{
    char dir[256], path[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_interrupt");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    double straight[N_FEAT * N_CLASS], resumed[N_FEAT * N_CLASS];
    toy_weights_after_two_epochs(NULL, straight);
    toy_weights_after_two_epochs(path, resumed);
    for (int i = 0; i < N_FEAT * N_CLASS; i++)
        ck_assert_msg(straight[i] == resumed[i], "W[%d]: %.17g straight, %.17g resumed", i, straight[i],
                      resumed[i]);
    kiln_test_rmtree(dir);
}
END_TEST

/* ---- OnLogRecord and CompositeExtension ---------------------------------------- */

/* Writes "flag" after batches 3 (True), 5 (False), 6 (0.0) and 7 (2.5). */
static enum kiln_status flag_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                void *user)
{
    (void)e, (void)which, (void)user;
    int64_t it = kiln_main_loop_iterations_done(m);
    if (it == 3 || it == 5)
        return kiln_main_loop_set_record_bool(m, "flag", it == 3);
    if (it == 6 || it == 7)
        return kiln_main_loop_set_record(m, "flag", it == 6 ? 0.0 : 2.5);
    return KILN_OK;
}

/* Appends iterations_done to a list. */
typedef struct seen {
    int64_t at[64];
    int n;
} seen;

static enum kiln_status seen_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                void *user)
{
    (void)e, (void)which;
    seen *s = user;
    if (s->n < 64)
        s->at[s->n++] = kiln_main_loop_iterations_done(m);
    return KILN_OK;
}

START_TEST(on_log_record_fires_when_the_record_is_true)
{
    fixture f;
    fixture_init(&f, 0.1);
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_extension *e = kiln_extension_create("flagger", flag_fn, NULL, NULL);
    ck_assert(kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_BATCH, 0) == KILN_OK);
    kiln_test_loop_add(m, e);
    seen s = {0}, at_epoch = {0};
    e = kiln_extension_create("watcher", seen_fn, &s, NULL);
    ck_assert(kiln_extension_add_on_log_record(e, KILN_CALLBACK_AFTER_BATCH, "flag") == KILN_OK);
    kiln_test_loop_add(m, e);
    e = kiln_extension_create("epoch_watcher", seen_fn, &at_epoch, NULL);
    ck_assert(kiln_extension_add_on_log_record(e, KILN_CALLBACK_AFTER_EPOCH, "flag") == KILN_OK);
    kiln_test_loop_add(m, e);
    kiln_extension *bad = kiln_extension_create("bad", seen_fn, &s, NULL);
    ck_assert(kiln_extension_add_on_log_record(bad, KILN_CALLBACK_AFTER_EPOCH, "") == KILN_ERR_ARG);
    ck_assert(kiln_extension_add_on_log_record(bad, (enum kiln_callback)42, "flag") == KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_extension_errmsg(bad), "unknown callback 42"), "%s", kiln_extension_errmsg(bad));
    kiln_extension_destroy(bad);
    kiln_test_loop_add(m, kiln_finish_after(2, 0));
    kiln_test_loop_run(m);
    ck_assert_int_eq(s.n, 2); /* True at 3, 2.5 at 7; not False (5) nor 0.0 (6) */
    ck_assert_int_eq(s.at[0], 3);
    ck_assert_int_eq(s.at[1], 7);
    ck_assert_int_eq(at_epoch.n, 0); /* the epoch rows (4, 8) have no flag */
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}
END_TEST

/* Appends its name's letter and the callback's to a shared string. */
typedef struct order {
    char s[256];
} order;

static enum kiln_status letter_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                  void *user)
{
    (void)m;
    order *o = user;
    size_t n = strlen(o->s);
    if (n + 3 < sizeof o->s) {
        o->s[n] = kiln_extension_name(e)[0];
        o->s[n + 1] = which == KILN_CALLBACK_AFTER_EPOCH ? 'e' : which == KILN_CALLBACK_BEFORE_TRAINING ? 't' : '?';
        o->s[n + 2] = '\0';
    }
    return KILN_OK;
}

static kiln_extension *letter_ext(order *o, const char *name, enum kiln_trigger t)
{
    kiln_extension *e = kiln_extension_create(name, letter_fn, o, NULL);
    ck_assert(e && kiln_extension_add_trigger(e, t, 0) == KILN_OK);
    return e;
}

static void composite_order(bool run_before_children, const char *want)
{
    fixture f;
    fixture_init(&f, 0.1);
    order o = {""};
    kiln_extension *subs[2] = {letter_ext(&o, "A", KILN_TRIGGER_AFTER_EPOCH),
                               letter_ext(&o, "B", KILN_TRIGGER_BEFORE_TRAINING)};
    kiln_extension *c = kiln_composite_extension("Composite", subs, 2, run_before_children, letter_fn, &o, NULL);
    ck_assert(c);
    ck_assert(kiln_extension_add_trigger(c, KILN_TRIGGER_AFTER_EPOCH, 0) == KILN_OK);
    ck_assert(kiln_extension_add_trigger(c, KILN_TRIGGER_BEFORE_TRAINING, 0) == KILN_OK);
    ck_assert_ptr_eq(kiln_extension_sub(c, 0), subs[0]);
    ck_assert_ptr_eq(kiln_extension_sub(c, 1), subs[1]);
    ck_assert_ptr_null(kiln_extension_sub(c, 2));
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_test_loop_add(m, c);
    kiln_extension_destroy(subs[0]); /* the composite's: nothing happens */
    ck_assert(kiln_main_loop_add_extension(m, subs[1]) == KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_main_loop_errmsg(m), "composite"), "%s", kiln_main_loop_errmsg(m));
    kiln_test_loop_add(m, letter_ext(&o, "Z", KILN_TRIGGER_AFTER_EPOCH));
    kiln_test_loop_add(m, kiln_finish_after(1, 0));
    ck_assert_ptr_null(kiln_main_loop_find_extension(m, "A")); /* top level only */
    kiln_test_loop_run(m);
    ck_assert_str_eq(o.s, want);
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}

START_TEST(composite_runs_its_own_then_its_children_in_order)
{
    composite_order(true, "CtBtCeAeZe");
}
END_TEST

START_TEST(composite_runs_its_own_last_when_asked)
{
    composite_order(false, "BtCtAeCeZe");
}
END_TEST

START_TEST(composite_refuses_a_sub_extension_of_a_loop)
{
    fixture f;
    fixture_init(&f, 0.1);
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_extension *owned = kiln_finish_after(1, 0);
    kiln_test_loop_add(m, owned);
    kiln_extension *subs[2] = {kiln_timing(NULL), owned};
    kiln_extension *c = kiln_composite_extension(NULL, subs, 2, true, NULL, NULL, NULL);
    ck_assert_str_eq(kiln_extension_name(c), "CompositeExtension");
    ck_assert_msg(strstr(kiln_extension_errmsg(c), "belongs to a main loop"), "%s",
                  kiln_extension_errmsg(c));
    ck_assert(kiln_main_loop_add_extension(m, c) == KILN_ERR_ARG); /* frees c and Timing */
    kiln_test_loop_run(m); /* FinishAfter is still the loop's */
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}
END_TEST

/* ---- Non-finite values ------------------------------------------------------------ */

/* Least squares y = 3 x with a learning rate so large that each step
** multiplies the error (by about 1 - 2 lr E[x^2] = -6.5): the loss grows
** until float32 overflows, in a few dozen steps. */
START_TEST(a_diverging_cost_stops_the_run_naming_it)
{
    enum { N = 20 };
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 1, (int64_t[]){KILN_BATCH});
    kiln_node y = kiln_graph_input(g, "y", KILN_DTYPE_F32, 1, (int64_t[]){KILN_BATCH});
    kiln_param *w = kiln_param_create("w", 1, (int64_t[]){1});
    ck_assert(kiln_param_set_values(w, (double[]){0.0}, 1) == KILN_OK);
    kiln_node pred = kiln_expr_mul(g, x, kiln_graph_param(g, w));
    kiln_node cost = kiln_expr_mean(g, kiln_expr_square(g, kiln_expr_sub(g, pred, y)), KILN_ALL_AXES);
    ck_assert(kiln_graph_set_name(g, cost, "squared_error") == KILN_OK);
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "diverge";
    o.cost = cost;
    o.step_rule = kiln_step_scale(2.0);
    o.max_batch = 4;
    kiln_program *p = NULL;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", p ? kiln_program_errmsg(p) : "out of memory");
    float xs[N], ys[N];
    for (int i = 0; i < N; i++) {
        xs[i] = (float)(i % 4 + 1) / 2.0f;
        ys[i] = 3.0f * xs[i];
    }
    kiln_dataset *d = kiln_dataset_create();
    ck_assert(kiln_dataset_add_source(d, "x", KILN_DTYPE_F32, N, 0, NULL, xs) == KILN_OK);
    ck_assert(kiln_dataset_add_source(d, "y", KILN_DTYPE_F32, N, 0, NULL, ys) == KILN_OK);
    kiln_stream *s = toy_stream(d, 4);

    kiln_main_loop *m = kiln_test_loop(p, s);
    kiln_test_loop_add(m, kiln_finish_after(100, 0));
    ck_assert_int_eq(kiln_main_loop_run(m), KILN_ERR_STATE);
    const char *msg = kiln_main_loop_errmsg(m);
    int64_t it = kiln_main_loop_iterations_done(m);
    char at[64];
    snprintf(at, sizeof at, "iteration %lld (epoch %lld, batch %lld of 5)", (long long)it,
             (long long)((it - 1) / 5 + 1), (long long)((it - 1) % 5 + 1));
    ck_assert_msg(strstr(msg, at) && strstr(msg, "the cost 'squared_error' is inf after train_step") &&
                      strstr(msg, "learning rate"),
                  "%s", msg);
    ck_assert(it > 10 && it < 100);
    expect_bool_record(m, it, "got_exception");
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    kiln_program_destroy(p);
    kiln_param_destroy(w);
    kiln_graph_destroy(g);
}
END_TEST

/* Sets the weight element 5 to +inf after batch `at`. */
typedef struct poison {
    toy *t;
    int64_t at;
} poison;

static enum kiln_status poison_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                  void *user)
{
    (void)e, (void)which;
    poison *p = user;
    if (kiln_main_loop_iterations_done(m) != p->at)
        return KILN_OK;
    kiln_program *prog = kiln_main_loop_program(m);
    kiln_node w = kiln_graph_param_node(p->t->g, kiln_brick_param_by_name(p->t->linear, "W"));
    double v[N_FEAT * N_CLASS];
    ck_assert(kiln_program_get_param(prog, w, v, N_FEAT * N_CLASS) == KILN_OK);
    v[5] = INFINITY;
    ck_assert(kiln_program_set_param(prog, w, v, N_FEAT * N_CLASS) == KILN_OK);
    return KILN_OK;
}

START_TEST(a_non_finite_parameter_stops_the_run_naming_it)
{
    fixture f;
    fixture_init(&f, 0.1);
    poison p = {&f.t, 4}; /* after the last batch of epoch 1: found at its end */
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_extension *e = kiln_extension_create("poison", poison_fn, &p, NULL);
    ck_assert(kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_BATCH, 0) == KILN_OK);
    kiln_test_loop_add(m, e);
    kiln_test_loop_add(m, kiln_finish_after(3, 0));
    ck_assert_int_eq(kiln_main_loop_run(m), KILN_ERR_STATE);
    const char *msg = kiln_main_loop_errmsg(m);
    ck_assert_msg(strstr(msg, "iteration 4 (end of epoch 1)") && strstr(msg, "parameter /linear.W has inf at element 5"),
                  "%s", msg);
    kiln_main_loop_destroy(m);

    /* Checked every batch: found right after the next step (the cost is
    ** computed before the update sees the infinity only then). Off: the
    ** run goes on to its end. */
    ck_assert(kiln_program_load_params(f.t.p) == KILN_OK);
    p.at = 1;
    m = kiln_test_loop(f.t.p, f.s);
    ck_assert(kiln_main_loop_set_finite_check(m, true, -1) == KILN_ERR_ARG);
    ck_assert(kiln_main_loop_set_finite_check(m, false, 0) == KILN_OK);
    e = kiln_extension_create("poison", poison_fn, &p, NULL);
    ck_assert(kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_BATCH, 0) == KILN_OK);
    kiln_test_loop_add(m, e);
    kiln_test_loop_add(m, kiln_finish_after(1, 0));
    kiln_test_loop_run(m);
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}
END_TEST

/* ---- Timing and Timestamp -------------------------------------------------------- */

static double rec(kiln_main_loop *m, int64_t it, const char *key)
{
    double v = NAN;
    ck_assert_msg(kiln_main_loop_record(m, it, key, &v) == KILN_OK, "row %lld has no %s", (long long)it, key);
    return v;
}

START_TEST(timing_records_blocks_names_averaged_over_its_calls)
{
    fixture f;
    fixture_init(&f, 0.1);
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_extension *every = kiln_timing(NULL);
    ck_assert(kiln_extension_add_trigger(every, KILN_TRIGGER_AFTER_BATCH, 0) == KILN_OK);
    kiln_test_loop_add(m, every);
    kiln_extension *two = kiln_timing("two");
    kiln_extension_clear_triggers(two);
    ck_assert(kiln_extension_add_trigger(two, KILN_TRIGGER_EVERY_N_BATCHES, 2) == KILN_OK);
    kiln_test_loop_add(m, two);
    kiln_test_loop_add(m, kiln_finish_after(2, 0));
    kiln_test_loop_run(m);

    double init = rec(m, 0, "time_initialization");
    ck_assert(init >= 0 && init < 60);
    ck_assert_int_eq(kiln_main_loop_record_kind(m, 0, "two_time_initialization"), KILN_RECORD_NONE);
    const char *act[2] = {"train", "read_data"};
    for (int a = 0; a < 2; a++) {
        char this_batch[64], total[64], this_epoch[64], two_batch[64], two_total[64];
        snprintf(this_batch, sizeof this_batch, "time_%s_this_batch", act[a]);
        snprintf(total, sizeof total, "time_%s_total", act[a]);
        snprintf(this_epoch, sizeof this_epoch, "time_%s_this_epoch", act[a]);
        snprintf(two_batch, sizeof two_batch, "two_time_%s_this_batch", act[a]);
        snprintf(two_total, sizeof two_total, "two_time_%s_total", act[a]);
        double sum = 0, prev_total = 0;
        /* The per-batch times add up to the total; at an epoch's end the
        ** epoch's call writes the total again, with the last (empty) read
        ** of the epoch in it. */
        for (int64_t it = 1; it <= 8; it++) {
            double b = rec(m, it, this_batch), t = rec(m, it, total);
            ck_assert(b > 0 || a == 1);
            sum += b;
            if (it % BATCHES_PER_EPOCH)
                ck_assert_double_eq_tol(t, sum, 1e-12);
            else
                ck_assert(t >= sum - 1e-12);
            ck_assert(t >= prev_total);
            if (it % 2 == 0) { /* the mean of the two batches since the last call */
                double now = rec(m, it, two_total), before = it > 2 ? rec(m, it - 2, two_total) : 0.0;
                ck_assert_double_eq_tol(rec(m, it, two_batch), (now - before) / 2, 1e-12);
                ck_assert_double_eq_tol(now, sum, 1e-12);
            } else {
                ck_assert_int_eq(kiln_main_loop_record_kind(m, it, two_batch), KILN_RECORD_NONE);
            }
            prev_total = t;
        }
        ck_assert_double_eq_tol(rec(m, 4, this_epoch), rec(m, 4, total), 1e-12);
        ck_assert_double_eq_tol(rec(m, 8, this_epoch), rec(m, 8, total) - rec(m, 4, total), 1e-12);
    }
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}
END_TEST

/* s is "YYYY-MM-DD<sep>HH:MM:SS" with an optional ".ffffff", today's. */
static void check_timestamp(const char *s, char sep)
{
    size_t n = strlen(s);
    ck_assert_msg(n == 19 || n == 26, "timestamp '%s'", s);
    for (size_t i = 0; i < n; i++) {
        char want = i == 4 || i == 7 ? '-' : i == 10 ? sep : i == 13 || i == 16 ? ':' : i == 19 ? '.' : 'd';
        ck_assert_msg(want == 'd' ? (s[i] >= '0' && s[i] <= '9') : s[i] == want, "timestamp '%s' at %zu", s, i);
    }
    time_t now = time(NULL);
    struct tm tm;
    char today[16];
    localtime_r(&now, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    ck_assert_msg(strncmp(s, today, 10) == 0 || tm.tm_hour == 0, "timestamp '%s', today %s", s, today);
}

START_TEST(timestamp_writes_iso_8601_text_records)
{
    fixture f;
    fixture_init(&f, 0.1);
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_test_loop_add(m, kiln_timestamp(NULL, NULL));
    kiln_test_loop_add(m, kiln_timestamp("stamp", "T"));
    kiln_test_loop_add(m, kiln_finish_after(2, 0));
    kiln_test_loop_run(m);
    const char *s;
    int64_t rows[3] = {0, 4, 8}; /* before_training, after_epoch (8 also after_training) */
    for (int i = 0; i < 3; i++) {
        ck_assert(kiln_main_loop_record_text(m, rows[i], "timestamp", &s) == KILN_OK);
        check_timestamp(s, ' ');
        ck_assert(kiln_main_loop_record_text(m, rows[i], "stamp", &s) == KILN_OK);
        check_timestamp(s, 'T');
    }
    ck_assert_int_eq(kiln_main_loop_record_kind(m, 2, "timestamp"), KILN_RECORD_NONE);
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}
END_TEST

/* ---- TrainingDataMonitoring ---------------------------------------------------- */

/* Before each batch: the cost of that batch at the parameters as they are
** (eval_step); after it, the program's cost from train_step must be it. */
typedef struct before_update {
    toy *t;
    int fi, ti;
    double cost[64], size[64];
    int n;
} before_update;

static enum kiln_status before_update_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                         void *user)
{
    (void)e;
    before_update *bu = user;
    kiln_program *p = kiln_main_loop_program(m);
    if (which == KILN_CALLBACK_BEFORE_BATCH) {
        const kiln_batch *b = kiln_main_loop_current_batch(m);
        ck_assert(kiln_program_bind_input(p, "features", b->sources[bu->fi]) == KILN_OK);
        ck_assert(kiln_program_bind_input(p, "targets", b->sources[bu->ti]) == KILN_OK);
        ck_assert(kiln_program_eval_step(p, b->size) == KILN_OK);
        ck_assert(kiln_program_read_scalar(p, bu->t->cost, &bu->cost[bu->n]) == KILN_OK);
        bu->size[bu->n] = (double)b->size;
        return KILN_OK;
    }
    double v;
    ck_assert(kiln_program_read_scalar(p, bu->t->cost, &v) == KILN_OK);
    ck_assert_double_eq_tol(v, bu->cost[bu->n], 1e-6); /* computed before the update */
    bu->n++;
    return KILN_OK;
}

START_TEST(training_data_monitoring_aggregates_values_before_the_update)
{
    fixture f;
    fixture_init(&f, 0.5);
    before_update bu = {.t = &f.t};
    bu.fi = kiln_dataset_source_index(f.d, "features");
    bu.ti = kiln_dataset_source_index(f.d, "targets");
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_extension *e = kiln_extension_create("before_update", before_update_fn, &bu, NULL);
    ck_assert(kiln_extension_add_trigger(e, KILN_TRIGGER_BEFORE_BATCH, 0) == KILN_OK);
    ck_assert(kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_BATCH, 0) == KILN_OK);
    kiln_test_loop_add(m, e);
    static const char *const prefixes[] = {"mean", "weighted", "last", "min", "max"};
    for (int k = 0; k < 5; k++) {
        kiln_extension *tdm = kiln_training_data_monitoring(&f.t.cost, 1, prefixes[k]);
        ck_assert_str_eq(kiln_extension_name(tdm), "TrainingDataMonitoring");
        if (k != 2) /* TAKE_LAST is the default */
            ck_assert(kiln_monitoring_set_aggregation(tdm, 0, (enum kiln_aggregation)k) == KILN_OK);
        ck_assert(kiln_extension_add_trigger(tdm, KILN_TRIGGER_BEFORE_FIRST_EPOCH, 0) == KILN_OK);
        kiln_test_loop_add(m, tdm);
    }
    /* Every 3 batches too: windows that straddle the epoch's end. */
    kiln_extension *every3 = kiln_training_data_monitoring(&f.t.cost, 1, "every3");
    ck_assert(kiln_monitoring_set_aggregation(every3, 0, KILN_AGGREGATE_MEAN) == KILN_OK);
    kiln_extension_clear_triggers(every3);
    ck_assert(kiln_extension_add_trigger(every3, KILN_TRIGGER_EVERY_N_BATCHES, 3) == KILN_OK);
    kiln_test_loop_add(m, every3);
    kiln_test_loop_add(m, kiln_finish_after(2, 0));
    kiln_extension *bad = kiln_training_data_monitoring(&f.t.cost, 1, "bad");
    ck_assert(kiln_monitoring_set_aggregation(bad, 1, KILN_AGGREGATE_MEAN) == KILN_ERR_ARG);
    ck_assert(kiln_monitoring_set_aggregation(bad, 0, (enum kiln_aggregation)9) == KILN_ERR_ARG);
    kiln_extension_destroy(bad);
    bad = kiln_finish_after(2, 0);
    ck_assert(kiln_monitoring_set_aggregation(bad, 0, KILN_AGGREGATE_MEAN) == KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_extension_errmsg(bad), "no DataStreamMonitoring"), "%s", kiln_extension_errmsg(bad));
    kiln_extension_destroy(bad);
    kiln_test_loop_run(m);
    ck_assert_int_eq(bu.n, 8);

    /* Before the first epoch no batch has run: no record. */
    ck_assert_int_eq(kiln_main_loop_record_kind(m, 0, "mean_cost"), KILN_RECORD_NONE);
    for (int ep = 0; ep < 2; ep++) {
        const double *c = bu.cost + 4 * ep, *w = bu.size + 4 * ep;
        double sum = 0, wsum = 0, wn = 0, lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < 4; i++) {
            sum += c[i];
            wsum += c[i] * w[i];
            wn += w[i];
            lo = fmin(lo, c[i]);
            hi = fmax(hi, c[i]);
        }
        int64_t row = 4 * (ep + 1);
        ck_assert_double_eq_tol(rec(m, row, "mean_cost"), sum / 4, 1e-6);
        ck_assert_double_eq_tol(rec(m, row, "weighted_cost"), wsum / wn, 1e-6);
        ck_assert_double_eq_tol(rec(m, row, "last_cost"), c[3], 1e-6);
        ck_assert_double_eq_tol(rec(m, row, "min_cost"), lo, 1e-6);
        ck_assert_double_eq_tol(rec(m, row, "max_cost"), hi, 1e-6);
    }
    ck_assert(fabs(rec(m, 4, "mean_cost") - rec(m, 4, "weighted_cost")) > 1e-6); /* a short last batch */
    ck_assert_double_eq_tol(rec(m, 3, "every3_cost"), (bu.cost[0] + bu.cost[1] + bu.cost[2]) / 3, 1e-6);
    ck_assert_double_eq_tol(rec(m, 6, "every3_cost"), (bu.cost[3] + bu.cost[4] + bu.cost[5]) / 3, 1e-6);
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}
END_TEST

START_TEST(data_stream_monitoring_takes_an_aggregation_scheme)
{
    fixture f;
    fixture_init(&f, 0.1);
    kiln_stream *valid = toy_stream(f.d, BATCH);
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_extension *e = kiln_data_stream_monitoring(&f.t.cost, 1, valid, "valid");
    ck_assert(kiln_monitoring_set_aggregation(e, 0, KILN_AGGREGATE_MAXIMUM) == KILN_OK);
    kiln_test_loop_add(m, e);
    kiln_test_loop_add(m, kiln_finish_after(1, 0));
    kiln_test_loop_run(m);
    /* The largest batch cost of the validation epoch, at the final parameters. */
    int fi = kiln_dataset_source_index(f.d, "features"), ti = kiln_dataset_source_index(f.d, "targets");
    kiln_batch b;
    double hi = -INFINITY;
    ck_assert(kiln_stream_reset(valid) == KILN_OK);
    while (kiln_stream_next(valid, &b)) {
        double v;
        kiln_program_bind_input(f.t.p, "features", b.sources[fi]);
        kiln_program_bind_input(f.t.p, "targets", b.sources[ti]);
        ck_assert(kiln_program_eval_step(f.t.p, b.size) == KILN_OK);
        ck_assert(kiln_program_read_scalar(f.t.p, f.t.cost, &v) == KILN_OK);
        hi = fmax(hi, v);
    }
    ck_assert_double_eq_tol(rec(m, 4, "valid_cost"), hi, 1e-6);
    ck_assert(rec(m, 4, "valid_cost") > mean_cost(&f.t, valid) + 1e-6);
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(valid);
    fixture_free(&f);
}
END_TEST

/* ---- TrackTheBest, FinishIfNoImprovementAfter, EarlyStopping ----------------- */

/* Writes "valid_cost" = script[epochs_done - 1] after each epoch. */
typedef struct script {
    const double *v;
    int n;
} script;

static enum kiln_status script_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                  void *user)
{
    (void)e, (void)which;
    script *s = user;
    int64_t ep = kiln_main_loop_epochs_done(m);
    return ep >= 1 && ep <= s->n ? kiln_main_loop_set_record(m, "valid_cost", s->v[ep - 1]) : KILN_OK;
}

static kiln_extension *script_ext(script *s)
{
    kiln_extension *e = kiln_extension_create("script", script_fn, s, NULL);
    ck_assert(e && kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_EPOCH, 0) == KILN_OK);
    return e;
}

/* A loop on f with the script first, then a and b (either may be NULL),
** FinishAfter(10 epochs) last; run to its end. */
static kiln_main_loop *run_scripted(fixture *f, script *sc, kiln_extension *a, kiln_extension *b)
{
    kiln_main_loop *m = kiln_test_loop(f->t.p, f->s);
    kiln_test_loop_add(m, script_ext(sc));
    if (a)
        kiln_test_loop_add(m, a);
    if (b)
        kiln_test_loop_add(m, b);
    kiln_test_loop_add(m, kiln_finish_after(10, 0));
    kiln_test_loop_run(m);
    return m;
}

/* Epochs whose row has key, as a string of epoch digits. */
static void epochs_with(kiln_main_loop *m, const char *key, char *out)
{
    int n = 0;
    for (int64_t ep = 1; ep <= kiln_main_loop_epochs_done(m); ep++)
        if (kiln_main_loop_record_kind(m, ep * BATCHES_PER_EPOCH, key) != KILN_RECORD_NONE)
            out[n++] = (char)('0' + ep);
    out[n] = '\0';
}

static const double VALID[] = {5, 4, 4.5, 3, 3.5, 3.6, 3.7, 2, 1, 1};

START_TEST(track_the_best_notifies_new_minima_and_maxima)
{
    fixture f;
    fixture_init(&f, 0.1);
    script sc = {VALID, 10};
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_test_loop_add(m, script_ext(&sc));
    kiln_extension *lo = kiln_track_the_best("valid_cost", NULL, false);
    kiln_extension *hi = kiln_track_the_best("valid_cost", "highest", true);
    double best;
    ck_assert(kiln_track_the_best_value(lo, &best) == KILN_ERR_NOT_FOUND);
    kiln_test_loop_add(m, lo);
    kiln_test_loop_add(m, hi);
    kiln_test_loop_add(m, kiln_finish_after(7, 0));
    kiln_test_loop_run(m);
    char got[16];
    epochs_with(m, "valid_cost_best_so_far", got);
    ck_assert_str_eq(got, "124");
    ck_assert_int_eq(kiln_main_loop_record_kind(m, 4, "valid_cost_best_so_far"), KILN_RECORD_BOOL);
    epochs_with(m, "highest", got);
    ck_assert_str_eq(got, "1");
    ck_assert(kiln_track_the_best_value(lo, &best) == KILN_OK && best == 3);
    ck_assert(kiln_track_the_best_value(hi, &best) == KILN_OK && best == 5);
    ck_assert(kiln_track_the_best_value(kiln_main_loop_find_extension(m, "FinishAfter"), &best) == KILN_ERR_ARG);
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}
END_TEST

START_TEST(finish_if_no_improvement_after_counts_patience)
{
    fixture f;
    fixture_init(&f, 0.1);
    script sc = {VALID, 10};
    /* epochs = 2: best at 4, patience 1 at 5, 0 at 6: the end. */
    kiln_main_loop *m = run_scripted(&f, &sc, kiln_track_the_best("valid_cost", NULL, false),
                                     kiln_finish_if_no_improvement_after("valid_cost_best_so_far", 0, 2, NULL));
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 6);
    const char *key = "valid_cost_best_so_far_patience_epochs";
    ck_assert_int_eq(rec(m, 4, key), 2);
    ck_assert_int_eq(rec(m, 20, key), 1);
    ck_assert_int_eq(rec(m, 24, key), 0);
    expect_bool_record(m, 24, "training_finish_requested");
    kiln_main_loop_destroy(m);

    /* iterations = 5, checked after each epoch of 4: best at 16, patience 1
    ** at 20, -3 at 24: the end (Blocks' == 0 would go on to the last epoch). */
    m = run_scripted(&f, &sc, kiln_track_the_best("valid_cost", NULL, false),
                     kiln_finish_if_no_improvement_after("valid_cost_best_so_far", 5, 0, "patience"));
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 6);
    ck_assert_int_eq(rec(m, 20, "patience"), 1);
    ck_assert_int_eq(rec(m, 24, "patience"), -3);
    kiln_main_loop_destroy(m);

    kiln_extension *bad = kiln_finish_if_no_improvement_after("n", 3, 2, NULL);
    ck_assert_msg(strstr(kiln_extension_errmsg(bad), "exactly one"), "%s", kiln_extension_errmsg(bad));
    kiln_extension_destroy(bad);
    fixture_free(&f);
}
END_TEST

/* The records a patience run writes, compared between a straight run and a
** resumed one (saved_to and loaded_from, which only the resumed has, left
** out). */
static const char *const PATIENCE_KEYS[] = {
    "valid_cost", "valid_cost_best_so_far", "valid_cost_best_so_far_patience_epochs", "patience",
    "training_finish_requested", "training_finished",
};

/* TrackTheBest and FinishIfNoImprovementAfter (2 epochs, or 5 iterations
** into "patience") after the script, added to m. */
static void add_patience(kiln_main_loop *m, script *sc, bool by_epochs)
{
    kiln_test_loop_add(m, script_ext(sc));
    kiln_test_loop_add(m, kiln_track_the_best("valid_cost", NULL, false));
    kiln_test_loop_add(m, by_epochs ? kiln_finish_if_no_improvement_after("valid_cost_best_so_far", 0, 2, NULL)
                                    : kiln_finish_if_no_improvement_after("valid_cost_best_so_far", 5, 0, "patience"));
}

/* A run stopped by no improvement, straight, or checkpointed after batch k
** (k a multiple of 4: at an epoch's end, in after_epoch; else mid-epoch),
** stopped there, and resumed by a new loop that loads the checkpoint: the
** same iteration at the end and the same records in every row (#8). */
static void check_patience_resume(bool by_epochs, int64_t k)
{
    char dir[256], path[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_patience");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    script sc = {VALID, 10};
    fixture f, g;
    fixture_init(&f, 0.1);
    kiln_main_loop *straight = kiln_test_loop(f.t.p, f.s);
    add_patience(straight, &sc, by_epochs);
    kiln_test_loop_add(straight, kiln_finish_after(10, 0));
    kiln_test_loop_run(straight);

    fixture_init(&g, 0.1);
    kiln_main_loop *m = kiln_test_loop(g.t.p, g.s);
    add_patience(m, &sc, by_epochs);
    kiln_extension *ck = kiln_checkpoint(path);
    kiln_extension_clear_triggers(ck);
    bool at_end = k % BATCHES_PER_EPOCH == 0;
    ck_assert(kiln_extension_add_trigger(ck, at_end ? KILN_TRIGGER_EVERY_N_EPOCHS : KILN_TRIGGER_EVERY_N_BATCHES,
                                         at_end ? k / BATCHES_PER_EPOCH : k) == KILN_OK);
    kiln_test_loop_add(m, ck);
    kiln_test_loop_add(m, at_end ? kiln_finish_after(k / BATCHES_PER_EPOCH, 0) : kiln_finish_after(0, k));
    kiln_test_loop_run(m);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), k);
    kiln_main_loop_destroy(m);
    fixture_free(&g);
    fixture_init(&g, 0.1); /* a new process, as it were */
    m = kiln_test_loop(g.t.p, g.s);
    ck_assert_msg(kiln_checkpoint_load(m, path) == KILN_OK, "%s", kiln_main_loop_errmsg(m));
    add_patience(m, &sc, by_epochs);
    kiln_test_loop_add(m, kiln_finish_after(10, 0));
    kiln_test_loop_run(m);

    const char *how = by_epochs ? "epochs" : "iterations";
    ck_assert_msg(kiln_main_loop_iterations_done(m) == kiln_main_loop_iterations_done(straight),
                  "patience in %s, resumed after batch %lld: stopped at %lld, straight at %lld", how, (long long)k,
                  (long long)kiln_main_loop_iterations_done(m), (long long)kiln_main_loop_iterations_done(straight));
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), kiln_main_loop_epochs_done(straight));
    for (int64_t it = 0; it <= kiln_main_loop_iterations_done(m); it++)
        for (size_t q = 0; q < sizeof PATIENCE_KEYS / sizeof PATIENCE_KEYS[0]; q++) {
            const char *key = PATIENCE_KEYS[q];
            double a = 0, b = 0;
            enum kiln_record_kind ka = kiln_main_loop_record_kind(straight, it, key);
            enum kiln_record_kind kb = kiln_main_loop_record_kind(m, it, key);
            if (ka != KILN_RECORD_NONE)
                ck_assert_int_eq(kiln_main_loop_record(straight, it, key, &a), KILN_OK);
            if (kb != KILN_RECORD_NONE)
                ck_assert_int_eq(kiln_main_loop_record(m, it, key, &b), KILN_OK);
            ck_assert_msg(ka == kb && a == b,
                          "patience in %s, resumed after batch %lld: row %lld, %s: straight %d %g, resumed %d %g", how,
                          (long long)k, (long long)it, key, (int)ka, a, (int)kb, b);
        }
    kiln_main_loop_destroy(m);
    kiln_main_loop_destroy(straight);
    fixture_free(&g);
    fixture_free(&f);
    kiln_test_rmtree(dir);
}

/* Best at epochs 1, 2, 4 (iteration 16); resumed at the end of epoch 5
** (iteration 20, patience 1 recorded) or in it (18). Both ways stop at 24. */
START_TEST(finish_if_no_improvement_after_resumes_its_patience)
{
    check_patience_resume(true, 20);
    check_patience_resume(true, 18);
    check_patience_resume(false, 20);
    check_patience_resume(false, 18);
}
END_TEST

START_TEST(early_stopping_is_track_the_best_then_finish_if_no_improvement)
{
    fixture f;
    fixture_init(&f, 0.1);
    script sc = {VALID, 10};
    kiln_extension *es = kiln_early_stopping("valid_cost", NULL, false, 0, 2);
    ck_assert_str_eq(kiln_extension_name(es), "EarlyStopping");
    ck_assert_str_eq(kiln_extension_name(kiln_extension_sub(es, 0)), "TrackTheBest");
    ck_assert_str_eq(kiln_extension_name(kiln_extension_sub(es, 1)), "FinishIfNoImprovementAfter");
    kiln_main_loop *m = run_scripted(&f, &sc, es, NULL);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 6);
    char got[16];
    epochs_with(m, "valid_cost_best_so_far", got);
    ck_assert_str_eq(got, "124");
    ck_assert_int_eq(rec(m, 24, "valid_cost_best_so_far_patience_epochs"), 0);
    kiln_main_loop_destroy(m);

    /* Maximising, with a notification name of its own. */
    m = run_scripted(&f, &sc, kiln_early_stopping("valid_cost", "highest", true, 0, 1), NULL);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 2);
    ck_assert_int_eq(rec(m, 8, "highest_patience_epochs"), 0);
    kiln_main_loop_destroy(m);

    kiln_extension *bad = kiln_early_stopping("valid_cost", NULL, false, 0, 0);
    ck_assert_msg(strstr(kiln_extension_errmsg(bad), "exactly one"), "%s", kiln_extension_errmsg(bad));
    kiln_extension_destroy(bad);
    fixture_free(&f);
}
END_TEST

START_TEST(track_the_best_recovers_its_best_from_a_continued_log)
{
    fixture f;
    fixture_init(&f, 0.1);
    char dir[256], path[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_best");
    snprintf(path, sizeof path, "%s/log.sqlite", dir);
    static const double first[] = {5, 3, 4}, second[] = {5, 3, 4, 3.5, 2};
    script sc = {first, 3};
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    ck_assert(kiln_main_loop_set_log_backend(m, KILN_LOG_BACKEND_SQLITE, path) == KILN_OK);
    kiln_test_loop_add(m, script_ext(&sc));
    kiln_test_loop_add(m, kiln_track_the_best("valid_cost", NULL, false));
    kiln_test_loop_add(m, kiln_finish_after(3, 0));
    kiln_test_loop_run(m);
    kiln_main_loop_destroy(m);

    /* A new loop on the same log: 3.5 at epoch 4 is no best (3 was). */
    sc = (script){second, 5};
    m = kiln_test_loop(f.t.p, f.s);
    ck_assert(kiln_main_loop_set_log_backend(m, KILN_LOG_BACKEND_SQLITE, path) == KILN_OK);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 3);
    kiln_test_loop_add(m, script_ext(&sc));
    kiln_extension *best = kiln_track_the_best("valid_cost", NULL, false);
    kiln_test_loop_add(m, best);
    kiln_test_loop_add(m, kiln_finish_after(5, 0));
    kiln_test_loop_run(m);
    char got[16];
    epochs_with(m, "valid_cost_best_so_far", got);
    ck_assert_str_eq(got, "125");
    double v;
    ck_assert(kiln_track_the_best_value(best, &v) == KILN_OK && v == 2);
    kiln_main_loop_destroy(m);
    kiln_test_rmtree(dir);
    fixture_free(&f);
}
END_TEST

/* ---- ProgressBar and Printing ------------------------------------------------------ */

/* out's whole contents (out rewound), caller frees. */
static char *slurp(FILE *out)
{
    long n = ftell(out);
    ck_assert(n >= 0);
    char *buf = calloc((size_t)n + 1, 1);
    ck_assert(buf);
    rewind(out);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, out), n);
    return buf;
}

START_TEST(progress_bar_shows_rate_and_eta)
{
    fixture f;
    fixture_init(&f, 0.1);
    FILE *quiet = tmpfile(), *out = tmpfile();
    ck_assert(quiet && out);
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_test_loop_add(m, kiln_progress_bar(quiet)); /* a file: nothing */
    kiln_test_loop_add(m, kiln_progress_bar_always(out));
    kiln_test_loop_add(m, kiln_finish_after(2, 0));
    kiln_test_loop_run(m);
    ck_assert_int_eq(ftell(quiet), 0);
    char *text = slurp(out);
    ck_assert_msg(strstr(text, "\rEpoch 1, step 1 of 4 ( 25%) |##########                              | "
                               "Elapsed Time: 0:00:00, "),
                  "%s", text);
    ck_assert_msg(strstr(text, "\rEpoch 2, step 4 of 4 (100%) |########################################| "),
                  "%s", text);
    ck_assert_msg(strstr(text, " batches/s, ETA: 0:00:00\n"), "%s", text); /* the last step, then a new line */
    /* A rate: a number before " batches/s" that is positive. */
    const char *r = strstr(text, " batches/s");
    const char *p = r;
    while (p > text && p[-1] != ' ')
        p--;
    ck_assert_msg(atof(p) > 0, "rate '%.*s'", (int)(r - p), p);
    free(text);
    fclose(quiet);
    fclose(out);
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}
END_TEST

START_TEST(printing_reports_interruption_and_resumption)
{
    fixture f;
    fixture_init(&f, 0.1);
    FILE *out = tmpfile();
    ck_assert(out);
    trace tr = {.sig = SIGTERM, .raise_at = {2, 0}};
    kiln_main_loop *m = kiln_test_loop(f.t.p, f.s);
    kiln_test_loop_add(m, trace_ext(&tr));
    kiln_test_loop_add(m, kiln_printing(out));
    kiln_test_loop_add(m, kiln_finish_after(1, 0));
    ck_assert_int_eq(kiln_main_loop_run(m), KILN_INTERRUPTED);
    kiln_test_loop_run(m);
    char *text = slurp(out);
    char rule[80];
    memset(rule, '-', 79);
    rule[79] = '\0';
    char want[512];
    /* Interrupted: no status; resumed: the status. */
    snprintf(want, sizeof want, "\n%s\nTRAINING HAS BEEN INTERRUPTED\n%s\n\n\n%s\nTRAINING HAS BEEN RESUMED\n%s\n"
                                "Training status:\n\t epochs_done: 0\n\t iterations_done: 2\n",
             rule, rule, rule, rule);
    ck_assert_msg(strstr(text, want), "%s", text);
    ck_assert_msg(strstr(text, "TRAINING HAS BEEN FINISHED:"), "%s", text);
    free(text);
    fclose(out);
    kiln_main_loop_destroy(m);
    fixture_free(&f);
}
END_TEST

static Suite *extensions_suite(void)
{
    Suite *s = suite_create("extensions");
    TCase *tc = tcase_create("callbacks");
    tcase_add_test(tc, a_sigint_finishes_the_epoch_and_a_rerun_resumes);
    tcase_add_test(tc, a_sigterm_finishes_the_batch);
    tcase_add_test(tc, a_second_sigint_finishes_the_batch);
    tcase_add_test(tc, signal_handlers_are_restored_and_can_be_left_alone);
    tcase_add_test(tc, a_sigterm_from_another_process_ends_the_run_cleanly);
    tcase_add_test(tc, a_checkpoint_on_interrupt_resumes_exactly);
    tcase_add_test(tc, on_log_record_fires_when_the_record_is_true);
    tcase_add_test(tc, composite_runs_its_own_then_its_children_in_order);
    tcase_add_test(tc, composite_runs_its_own_last_when_asked);
    tcase_add_test(tc, composite_refuses_a_sub_extension_of_a_loop);
    tcase_add_test(tc, a_diverging_cost_stops_the_run_naming_it);
    tcase_add_test(tc, a_non_finite_parameter_stops_the_run_naming_it);
    suite_add_tcase(s, tc);
    tc = tcase_create("builtins");
    tcase_add_test(tc, timing_records_blocks_names_averaged_over_its_calls);
    tcase_add_test(tc, timestamp_writes_iso_8601_text_records);
    tcase_add_test(tc, training_data_monitoring_aggregates_values_before_the_update);
    tcase_add_test(tc, data_stream_monitoring_takes_an_aggregation_scheme);
    tcase_add_test(tc, track_the_best_notifies_new_minima_and_maxima);
    tcase_add_test(tc, finish_if_no_improvement_after_counts_patience);
    tcase_add_test(tc, finish_if_no_improvement_after_resumes_its_patience);
    tcase_add_test(tc, early_stopping_is_track_the_best_then_finish_if_no_improvement);
    tcase_add_test(tc, track_the_best_recovers_its_best_from_a_continued_log);
    tcase_add_test(tc, progress_bar_shows_rate_and_eta);
    tcase_add_test(tc, printing_reports_interruption_and_resumption);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kiln_test_run(extensions_suite());
}
