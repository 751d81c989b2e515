/* extensions.c: main-loop extensions: the extension object (name, triggers,
** error slot; Blocks' SimpleExtension), its dispatch (with Blocks'
** CompositeExtension and OnLogRecord predicate), and the built-ins (Blocks'
** FinishAfter, Printing, DataStreamMonitoring, TrainingDataMonitoring with
** the aggregation schemes, ProgressBar). Timing, Timestamp and the
** best-tracking and stopping extensions are in tracking.c.
**
** TrainingDataMonitoring reads the values train_step computed (before its
** update) through the `observe` hook, which the loop calls after every step
** whatever the triggers; Blocks does the same through an after_batch
** condition with a just_aggregate argument, which set_conditions() would
** drop. Its triggers only write the aggregates and start over.
**
** Triggers are a small array of (kind, n) evaluated against the loop's
** status on every callback (Blocks' Predicate); no callback table per
** extension, since an extension has a handful of triggers and dispatch
** walks them in order.
**
** Each is a kiln_extension (mainloop.h) with Blocks' default triggers, its
** own state, and a `run` that is Blocks' do(). They use the same trigger
** machinery as user extensions, so a caller can replace their triggers
** (Printing every 100 batches: clear_triggers, add EVERY_N_BATCHES 100).
** A constructor given bad arguments still returns an extension, carrying the
** error; adding it to a main loop fails with that message (constructors
** return NULL only when out of memory, as train.h says).
**
** Printing writes Blocks' layout byte for byte: Python's print("\t", "k:", v)
** is a tab, a space, "k: v"; a blank line opens and closes each block; values
** print as Python 2's str() (log.c).
**
** DataStreamMonitoring averages per-batch values with every batch weighted
** equally, a short last batch included (Blocks' default aggregation,
** Mean(v, 1)). It evaluates with kiln_program_eval_step, which computes the
** cost and the monitors; so its variables must be among those (checked when
** it is added and at the start of each run, by kiln_program_has_value). It
** binds its own stream's sources to the program's inputs with the same rules
** as the training stream, and the main loop binds the training batch again
** before every step, so the two never see each other's data. The training
** stream itself is refused: a kiln_stream is one iterator (Blocks makes a
** fresh iterator per epoch), so evaluating it in before_first_epoch would
** consume the epoch the loop just started, and on a shuffled stream every
** evaluation would change the training order. A second stream over the same
** dataset costs nothing. */
#include "runtime/mainloop.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- The extension object: creation, triggers, errors -------------------- */

kiln_extension *kiln_extension_new(const char *name, const kiln_extension_ops *ops, void *state)
{
    kiln_extension *e = calloc(1, sizeof *e);
    if (!e) {
        if (ops && ops->destroy) {
            kiln_extension tmp = {.ops = ops, .state = state};
            ops->destroy(&tmp);
        }
        return NULL;
    }
    e->ops = ops;
    e->state = state;
    kiln_err_clear(&e->err);
    if (!name)
        name = "extension";
    if (kiln_snprintf(e->name, sizeof e->name, "%s", name) != 0)
        kiln_err_set(&e->err, KILN_ERR_ARG,
                     "extension name '%.32s...' is longer than %d characters",
                     name, KILN_MAX_NAME);
    return e;
}

static enum kiln_status user_ext_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    return e->fn ? e->fn(e, m, which, e->user) : KILN_OK; /* a composite without its own do() */
}

static void user_ext_destroy(kiln_extension *e)
{
    if (e->free_user)
        e->free_user(e->user);
}

static const kiln_extension_ops USER_EXT_OPS = {NULL, user_ext_run, user_ext_destroy, NULL};

kiln_extension *kiln_extension_create(const char *name, kiln_extension_fn fn, void *user,
                                      void (*free_user)(void *user))
{
    kiln_extension *e = kiln_extension_new(name, &USER_EXT_OPS, NULL);
    if (!e) {
        if (free_user)
            free_user(user);
        return NULL;
    }
    e->fn = fn;
    e->user = user;
    e->free_user = free_user;
    if (!fn && e->err.status == KILN_OK)
        kiln_err_set(&e->err, KILN_ERR_ARG, "extension '%s': function is NULL", e->name);
    return e;
}

void kiln_extension_destroy(kiln_extension *e)
{
    if (e && !e->loop && !e->parent) /* one that a loop or composite owns goes with it */
        kiln_extension_free(e);
}

void kiln_extension_free(kiln_extension *e)
{
    if (!e)
        return;
    if (e->ops && e->ops->destroy)
        e->ops->destroy(e);
    for (int i = 0; i < e->n_subs; i++)
        kiln_extension_free(e->subs[i]);
    free(e->subs);
    kiln_extension_clear_triggers(e);
    free(e->triggers);
    free(e);
}

void kiln_extension_add_triggers(kiln_extension *e, const enum kiln_trigger *t, int n)
{
    for (int i = 0; i < n; i++)
        if (kiln_extension_add_trigger(e, t[i], 0) != KILN_OK)
            return;
}

static bool trigger_takes_n(enum kiln_trigger t)
{
    return t == KILN_TRIGGER_AFTER_N_EPOCHS || t == KILN_TRIGGER_EVERY_N_EPOCHS ||
           t == KILN_TRIGGER_AFTER_N_BATCHES || t == KILN_TRIGGER_EVERY_N_BATCHES;
}

/* Append t to e's triggers (t.record then belongs to e, also on failure). */
static enum kiln_status push_trigger(kiln_extension *e, kiln_ext_trigger t)
{
    if (e->n_triggers == e->cap_triggers) {
        int cap = e->cap_triggers ? 2 * e->cap_triggers : 4;
        kiln_ext_trigger *tr = realloc(e->triggers, (size_t)cap * sizeof *tr);
        if (!tr) {
            free(t.record);
            return kiln_err_set(&e->err, KILN_ERR_NOMEM, "extension '%s': %d triggers", e->name,
                                cap);
        }
        e->triggers = tr;
        e->cap_triggers = cap;
    }
    e->triggers[e->n_triggers++] = t;
    return KILN_OK;
}

enum kiln_status kiln_extension_add_trigger(kiln_extension *e, enum kiln_trigger t, int64_t n)
{
    KILN_API_CHECK(e);
    if (!e)
        return KILN_ERR_ARG;
    if ((int)t < KILN_TRIGGER_BEFORE_TRAINING || t > KILN_TRIGGER_ON_INTERRUPT)
        return kiln_err_set(&e->err, KILN_ERR_ARG, "extension '%s': unknown trigger %d", e->name,
                            (int)t);
    if (trigger_takes_n(t) && n <= 0)
        return kiln_err_set(&e->err, KILN_ERR_ARG,
                            "extension '%s': trigger needs a count > 0, got %lld", e->name,
                            (long long)n);
    return push_trigger(e, (kiln_ext_trigger){(int)t, trigger_takes_n(t) ? n : 0,
                                              KILN_CALLBACK_BEFORE_TRAINING, NULL});
}

enum kiln_status kiln_extension_add_on_log_record(kiln_extension *e, enum kiln_callback which,
                                                  const char *record)
{
    KILN_API_CHECK(e);
    if (!e)
        return KILN_ERR_ARG;
    if ((int)which < KILN_CALLBACK_BEFORE_TRAINING || which > KILN_CALLBACK_ON_INTERRUPT)
        return kiln_err_set(&e->err, KILN_ERR_ARG, "extension '%s': unknown callback %d", e->name,
                            (int)which);
    size_t len = record ? strlen(record) : 0;
    if (len == 0 || len > KILN_MAX_NAME)
        return kiln_err_set(&e->err, KILN_ERR_ARG,
                            "extension '%s': on_log_record needs a record name of 1 to %d "
                            "characters, got %s",
                            e->name, KILN_MAX_NAME, !record ? "NULL" : len ? "a longer one" : "an empty one");
    char *copy = kiln_strdup(record);
    if (!copy)
        return kiln_err_set(&e->err, KILN_ERR_NOMEM, "extension '%s': record name", e->name);
    return push_trigger(e, (kiln_ext_trigger){KILN_TRIGGER_ON_LOG_RECORD, 0, which, copy});
}

void kiln_extension_clear_triggers(kiln_extension *e)
{
    KILN_API_CHECK(e);
    if (!e)
        return;
    for (int i = 0; i < e->n_triggers; i++)
        free(e->triggers[i].record);
    e->n_triggers = 0;
}

const char *kiln_extension_name(const kiln_extension *e)
{
    KILN_API_CHECK(e);
    return e ? e->name : "";
}

const char *kiln_extension_errmsg(const kiln_extension *e)
{
    if (!e)
        return "out of memory";
    return e->err.msg;
}

enum kiln_status kiln_extension_fail(kiln_extension *e, enum kiln_status status, const char *fmt,
                                     ...)
{
    KILN_API_CHECK(e);
    if (!e)
        return status;
    if (!fmt) { /* the status stands; the message says why there is no more */
        kiln_err_set(&e->err, status, "failed (kiln_extension_fail's fmt is NULL)");
        return status;
    }
    va_list ap;
    va_start(ap, fmt);
    kiln_err_setv(&e->err, status, fmt, ap);
    va_end(ap);
    return status;
}

/* Blocks' OnLogRecord: bool(current_row.get(record, False)). */
static bool record_is_true(const kiln_main_loop *m, const char *key)
{
    const kiln_log_record *r = kiln_log_get(&m->log, m->iterations_done, key);
    if (!r)
        return false;
    return r->kind == KILN_LOG_TEXT ? r->text && r->text[0] : r->value != 0;
}

/* Blocks' Predicate and the boolean conditions of SimpleExtension. */
bool kiln_extension_trigger_fires(const kiln_ext_trigger *t, enum kiln_callback which,
                                  const kiln_main_loop *m)
{
    if (t->kind == KILN_TRIGGER_ON_LOG_RECORD)
        return which == t->callback && record_is_true(m, t->record);
    switch ((enum kiln_trigger)t->kind) {
    case KILN_TRIGGER_ON_RESUMPTION: return which == KILN_CALLBACK_ON_RESUMPTION;
    case KILN_TRIGGER_ON_INTERRUPT: return which == KILN_CALLBACK_ON_INTERRUPT;
    case KILN_TRIGGER_BEFORE_TRAINING: return which == KILN_CALLBACK_BEFORE_TRAINING;
    case KILN_TRIGGER_BEFORE_FIRST_EPOCH:
        return which == KILN_CALLBACK_BEFORE_EPOCH && m->epochs_done == 0;
    case KILN_TRIGGER_BEFORE_EPOCH: return which == KILN_CALLBACK_BEFORE_EPOCH;
    case KILN_TRIGGER_BEFORE_BATCH: return which == KILN_CALLBACK_BEFORE_BATCH;
    case KILN_TRIGGER_AFTER_BATCH: return which == KILN_CALLBACK_AFTER_BATCH;
    case KILN_TRIGGER_AFTER_EPOCH: return which == KILN_CALLBACK_AFTER_EPOCH;
    case KILN_TRIGGER_AFTER_TRAINING: return which == KILN_CALLBACK_AFTER_TRAINING;
    case KILN_TRIGGER_ON_ERROR: return which == KILN_CALLBACK_ON_ERROR;
    case KILN_TRIGGER_AFTER_N_EPOCHS:
        return which == KILN_CALLBACK_AFTER_EPOCH && m->epochs_done == t->n;
    case KILN_TRIGGER_EVERY_N_EPOCHS:
        return which == KILN_CALLBACK_AFTER_EPOCH && m->epochs_done % t->n == 0;
    case KILN_TRIGGER_AFTER_N_BATCHES:
        return which == KILN_CALLBACK_AFTER_BATCH && m->iterations_done == t->n;
    case KILN_TRIGGER_EVERY_N_BATCHES:
        return which == KILN_CALLBACK_AFTER_BATCH && m->iterations_done % t->n == 0;
    }
    return false;
}


/* ---- Dispatch and CompositeExtension ---------------------------------------- */

/* e's own triggers (Blocks' SimpleExtension.dispatch): one call per trigger
** that fires. */
static enum kiln_status dispatch_own(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    for (int t = 0; t < e->n_triggers; t++) {
        if (!kiln_extension_trigger_fires(&e->triggers[t], which, m))
            continue;
        kiln_err_clear(&e->err);
        enum kiln_status st = e->ops->run(e, m, which);
        if (st != KILN_OK) {
            /* A log write that failed left its message on m already. */
            const char *msg = e->err.status != KILN_OK ? e->err.msg
                              : m->err.status != KILN_OK ? m->err.msg
                                                         : kiln_status_string(st);
            char copy[KILN_ERRMSG_MAX];
            kiln_snprintf(copy, sizeof copy, "%s", msg);
            return kiln_err_set(&m->err, st, "extension '%s' failed in %s at iteration %lld: %s",
                                e->name, kiln_main_loop_callback_name(which),
                                (long long)m->iterations_done, copy);
        }
    }
    return KILN_OK;
}

/* Blocks' CompositeExtension.dispatch: own logic first (or last), the
** sub-extensions in order between. */
enum kiln_status kiln_extension_dispatch(kiln_extension *e, kiln_main_loop *m,
                                         enum kiln_callback which)
{
    enum kiln_status st;
    if (e->run_before_children || !e->n_subs)
        if ((st = dispatch_own(e, m, which)) != KILN_OK)
            return st;
    for (int i = 0; i < e->n_subs; i++)
        if ((st = kiln_extension_dispatch(e->subs[i], m, which)) != KILN_OK)
            return st;
    if (!e->run_before_children && e->n_subs)
        return dispatch_own(e, m, which);
    return KILN_OK;
}

enum kiln_status kiln_extension_attach_tree(kiln_extension *e, kiln_main_loop *m)
{
    if (e->err.status != KILN_OK)
        return kiln_err_set(&m->err, e->err.status, "extension '%s': %s", e->name, e->err.msg);
    if (e->ops->attach) {
        enum kiln_status st = e->ops->attach(e, m);
        if (st != KILN_OK)
            return kiln_err_set(&m->err, st, "extension '%s': %s", e->name, e->err.msg);
    }
    for (int i = 0; i < e->n_subs; i++) {
        enum kiln_status st = kiln_extension_attach_tree(e->subs[i], m);
        if (st != KILN_OK)
            return st;
    }
    return KILN_OK;
}

enum kiln_status kiln_extension_observe_tree(kiln_extension *e, kiln_main_loop *m)
{
    if (e->ops->observe) {
        enum kiln_status st = e->ops->observe(e, m);
        if (st != KILN_OK)
            return kiln_err_set(&m->err, st, "extension '%s' failed after train_step at iteration %lld: %s",
                                e->name, (long long)m->iterations_done, e->err.msg);
    }
    for (int i = 0; i < e->n_subs; i++) {
        enum kiln_status st = kiln_extension_observe_tree(e->subs[i], m);
        if (st != KILN_OK)
            return st;
    }
    return KILN_OK;
}

kiln_extension *kiln_composite_extension(const char *name, kiln_extension *const *subs, int n,
                                         bool run_before_children, kiln_extension_fn fn,
                                         void *user, void (*free_user)(void *user))
{
    kiln_extension *e = kiln_extension_new(name ? name : "CompositeExtension", &USER_EXT_OPS, NULL);
    if (e && n > 0 && subs)
        e->subs = calloc((size_t)n, sizeof *e->subs);
    if (!e || (n > 0 && subs && !e->subs)) {
        for (int i = 0; subs && i < n; i++)
            kiln_extension_destroy(subs[i]); /* those of no other owner */
        if (free_user)
            free_user(user);
        kiln_extension_free(e);
        return NULL;
    }
    e->fn = fn;
    e->user = user;
    e->free_user = free_user;
    e->run_before_children = run_before_children;
    if (n < 0 || (n > 0 && !subs))
        kiln_err_set(&e->err, KILN_ERR_ARG, "%d sub-extensions given%s", n, subs ? "" : " (subs is NULL)");
    for (int i = 0; i < n && subs; i++) {
        kiln_extension *x = subs[i];
        if (x && (x->loop || x->parent)) {
            kiln_err_set(&e->err, KILN_ERR_ARG, "sub-extension %d ('%s') belongs to %s", i, x->name,
                         x->loop ? "a main loop" : "another composite extension");
            continue;
        }
        if (!x) {
            if (e->err.status == KILN_OK)
                kiln_err_set(&e->err, KILN_ERR_NOMEM,
                             "sub-extension %d is NULL (its constructor ran out of memory)", i);
            continue;
        }
        x->parent = e;
        e->subs[e->n_subs++] = x;
    }
    return e;
}

kiln_extension *kiln_extension_sub(const kiln_extension *e, int i)
{
    KILN_API_CHECK(e);
    return e && i >= 0 && i < e->n_subs ? e->subs[i] : NULL;
}

/* ---- FinishAfter ------------------------------------------------------------ */

static enum kiln_status finish_after_run(kiln_extension *e, kiln_main_loop *m,
                                         enum kiln_callback which)
{
    (void)which;
    enum kiln_status st =
        kiln_main_loop_set_log(m, "training_finish_requested", KILN_LOG_BOOL, 1.0);
    if (st != KILN_OK)
        return kiln_extension_fail(e, st, "%s", m->err.msg);
    return KILN_OK;
}

static const kiln_extension_ops FINISH_AFTER_OPS = {NULL, finish_after_run, NULL, NULL};

kiln_extension *kiln_finish_after(int64_t after_n_epochs, int64_t after_n_batches)
{
    kiln_extension *e = kiln_extension_new("FinishAfter", &FINISH_AFTER_OPS, NULL);
    if (!e)
        return NULL;
    if (after_n_epochs < 0 || after_n_batches < 0) {
        kiln_err_set(&e->err, KILN_ERR_ARG,
                     "after_n_epochs = %lld, after_n_batches = %lld: counts must be >= 0 "
                     "(0: unused)",
                     (long long)after_n_epochs, (long long)after_n_batches);
        return e;
    }
    if (after_n_epochs > 0 &&
        kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_N_EPOCHS, after_n_epochs) != KILN_OK)
        return e;
    if (after_n_batches > 0)
        kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_N_BATCHES, after_n_batches);
    return e;
}

/* ---- Printing ------------------------------------------------------------------ */

#define PRINTING_RULE_WIDTH 79

typedef struct printing_state {
    FILE *out; /* NULL: stdout, looked up when printing */
} printing_state;

static void printing_destroy(kiln_extension *e)
{
    free(e->state);
}

static void print_rule(FILE *out)
{
    for (int i = 0; i < PRINTING_RULE_WIDTH; i++)
        fputc('-', out);
    fputc('\n', out);
}

/* Plan (Blocks' Printing.do): blank line, rule, header for the callback,
** rule, the status keys, the current row's records (keys starting with '_'
** hidden, as Blocks hides them), blank line. */
static enum kiln_status printing_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    printing_state *s = e->state;
    FILE *out = s->out ? s->out : stdout;

    fputc('\n', out);
    print_rule(out);
    /* Blocks prints no header for other callbacks (after_batch, ...). */
    if (which == KILN_CALLBACK_BEFORE_EPOCH && m->epochs_done == 0)
        fputs("BEFORE FIRST EPOCH\n", out);
    else if (which == KILN_CALLBACK_AFTER_TRAINING)
        fputs("TRAINING HAS BEEN FINISHED:\n", out);
    else if (which == KILN_CALLBACK_AFTER_EPOCH)
        fputs("AFTER ANOTHER EPOCH\n", out);
    else if (which == KILN_CALLBACK_ON_RESUMPTION)
        fputs("TRAINING HAS BEEN RESUMED\n", out);
    else if (which == KILN_CALLBACK_ON_INTERRUPT)
        fputs("TRAINING HAS BEEN INTERRUPTED\n", out);
    print_rule(out);
    if (which == KILN_CALLBACK_ON_INTERRUPT) { /* Blocks prints no status then */
        fputc('\n', out);
        if (fflush(out) != 0 || ferror(out))
            return kiln_extension_fail(e, KILN_ERR_IO, "writing the log failed");
        return KILN_OK;
    }

    /* Status, keys in sorted order; the hidden flags start with '_'. */
    fputs("Training status:\n", out);
    fprintf(out, "\t epochs_done: %lld\n", (long long)m->epochs_done);
    fprintf(out, "\t iterations_done: %lld\n", (long long)m->iterations_done);

    fprintf(out, "Log records from the iteration %lld:\n", (long long)m->iterations_done);
    const kiln_log_row *row = kiln_log_row_at(&m->log, m->iterations_done);
    for (int i = 0; row && i < row->n_records; i++) {
        const kiln_log_record *r = &row->records[i];
        if (r->key[0] == '_')
            continue;
        if (r->kind == KILN_LOG_TEXT) { /* a path: Python's str() is the text */
            fprintf(out, "\t %s: %s\n", r->key, r->text);
            continue;
        }
        char value[64];
        if (kiln_log_format_value(value, sizeof value, r) != 0)
            return kiln_extension_fail(e, KILN_ERR_ARG, "record '%s': value does not format",
                                       r->key);
        fprintf(out, "\t %s: %s\n", r->key, value);
    }
    fputc('\n', out);
    if (fflush(out) != 0 || ferror(out))
        return kiln_extension_fail(e, KILN_ERR_IO, "writing the log failed");
    return KILN_OK;
}

static const kiln_extension_ops PRINTING_OPS = {NULL, printing_run, printing_destroy, NULL};

kiln_extension *kiln_printing(FILE *out)
{
    printing_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->out = out;
    kiln_extension *e = kiln_extension_new("Printing", &PRINTING_OPS, s);
    if (!e)
        return NULL;
    /* Blocks' defaults. */
    kiln_extension_add_triggers(e, (const enum kiln_trigger[]){KILN_TRIGGER_BEFORE_FIRST_EPOCH,
                                    KILN_TRIGGER_ON_RESUMPTION, KILN_TRIGGER_AFTER_TRAINING,
                                    KILN_TRIGGER_AFTER_EPOCH, KILN_TRIGGER_ON_INTERRUPT}, 5);
    return e;
}

/* ---- Aggregation (Blocks' aggregation schemes) ------------------------------ */

typedef struct aggregator {
    double acc;    /* sum, weighted sum, last, minimum or maximum */
    double weight; /* batches, or examples for a weighted mean */
} aggregator;

static void agg_add(enum kiln_aggregation scheme, aggregator *a, double v, int64_t batch)
{
    bool first = a->weight == 0;
    switch (scheme) {
    case KILN_AGGREGATE_MEAN: a->acc += v; a->weight += 1; return;
    case KILN_AGGREGATE_WEIGHTED_MEAN: a->acc += v * (double)batch; a->weight += (double)batch; return;
    case KILN_AGGREGATE_TAKE_LAST: a->acc = v; break;
    case KILN_AGGREGATE_MINIMUM: a->acc = first || v < a->acc || v != v ? v : a->acc; break;
    case KILN_AGGREGATE_MAXIMUM: a->acc = first || v > a->acc || v != v ? v : a->acc; break;
    }
    a->weight += 1;
}

static double agg_value(enum kiln_aggregation scheme, const aggregator *a)
{
    return scheme == KILN_AGGREGATE_MEAN || scheme == KILN_AGGREGATE_WEIGHTED_MEAN
               ? a->acc / a->weight
               : a->acc;
}

/* ---- DataStreamMonitoring and TrainingDataMonitoring ------------------------ */

typedef struct monitoring_state {
    kiln_stream *stream; /* kept alive: one reference (refs.h); NULL for training data */
    char *prefix;        /* NULL: records are the bare names */
    int n_vars;
    kiln_node *vars;
    char (*records)[KILN_MAX_NAME + 1]; /* record name per variable, set by attach */
    enum kiln_aggregation *schemes;
    aggregator *agg;
    int64_t n_batches; /* aggregated since the last record */
    kiln_input_binding binding;
} monitoring_state;

static void monitoring_destroy(kiln_extension *e)
{
    monitoring_state *s = e->state;
    if (!s)
        return;
    free(s->prefix);
    free(s->vars);
    free(s->records);
    free(s->schemes);
    free(s->agg);
    kiln_main_loop_binding_free(&s->binding);
    kiln_stream_release(s->stream);
    free(s);
}

static void monitoring_reset(monitoring_state *s)
{
    memset(s->agg, 0, (size_t)s->n_vars * sizeof *s->agg);
    s->n_batches = 0;
}

/* Read every variable from the last step and aggregate it. */
static enum kiln_status monitoring_add_step(kiln_extension *e, kiln_program *p, int64_t batch,
                                            const char *where)
{
    monitoring_state *s = e->state;
    for (int i = 0; i < s->n_vars; i++) {
        double v;
        enum kiln_status st = kiln_program_read_scalar(p, s->vars[i], &v);
        if (st != KILN_OK)
            return kiln_extension_fail(e, st, "%s: reading '%s': %s", where, s->records[i],
                                       kiln_program_errmsg(p));
        agg_add(s->schemes[i], &s->agg[i], v, batch);
    }
    s->n_batches++;
    return KILN_OK;
}

/* Write each variable's aggregate into the current row, and start over. */
static enum kiln_status monitoring_commit(kiln_extension *e, kiln_main_loop *m)
{
    monitoring_state *s = e->state;
    for (int i = 0; i < s->n_vars; i++) {
        enum kiln_status st = kiln_main_loop_set_log(m, s->records[i], KILN_LOG_FLOAT,
                                                     agg_value(s->schemes[i], &s->agg[i]));
        if (st != KILN_OK)
            return kiln_extension_fail(e, st, "%s", m->err.msg);
    }
    monitoring_reset(s);
    return KILN_OK;
}

/* Plan: every variable must be one of p's values, named, giving a record
** name that fits and is unique. */
static enum kiln_status monitoring_check_vars(kiln_extension *e, kiln_program *p)
{
    monitoring_state *s = e->state;
    for (int i = 0; i < s->n_vars; i++) {
        kiln_node v = s->vars[i];
        if (!kiln_program_has_value(p, v))
            return kiln_extension_fail(e, KILN_ERR_ARG,
                                       "variable %d (node %d) is not computed by the program: "
                                       "pass the cost or one of kiln_compile_options.monitors",
                                       i, (int)v.id);
        const char *name = kiln_program_node_name(p, v);
        if (!name || !name[0])
            return kiln_extension_fail(e, KILN_ERR_ARG,
                                       "variable %d (node %d) has no name to record it under "
                                       "(kiln_graph_set_name before compiling)",
                                       i, (int)v.id);
        int bad = s->prefix ? kiln_snprintf(s->records[i], sizeof s->records[i], "%s_%s",
                                            s->prefix, name)
                            : kiln_snprintf(s->records[i], sizeof s->records[i], "%s", name);
        if (bad)
            return kiln_extension_fail(e, KILN_ERR_ARG,
                                       "record name '%s_%s' is longer than %d characters",
                                       s->prefix ? s->prefix : "", name, KILN_MAX_NAME);
        for (int j = 0; j < i; j++)
            if (strcmp(s->records[j], s->records[i]) == 0)
                return kiln_extension_fail(e, KILN_ERR_ARG,
                                           "variables %d and %d both record as '%s'", j, i,
                                           s->records[i]);
    }
    return KILN_OK;
}

/* Plan: 1. the program must have eval_step, and the stream must not be the
** training stream; 2. the variables; 3. the stream must bind to the
** program's inputs. */
static enum kiln_status monitoring_attach(kiln_extension *e, kiln_main_loop *m)
{
    monitoring_state *s = e->state;
    kiln_program *p = m->program;
    enum kiln_status st;

    /* 1. */
    if (!kiln_program_can_train(p))
        return kiln_extension_fail(e, KILN_ERR_STATE,
                                   "the program has no eval_step (compile it with a cost)");
    if (s->stream == m->stream)
        return kiln_extension_fail(e, KILN_ERR_ARG,
                                   "the monitoring stream is the training stream; a stream has "
                                   "one position, so create a second kiln_stream over the same "
                                   "dataset");

    /* 2. */
    if ((st = monitoring_check_vars(e, p)) != KILN_OK)
        return st;

    /* 3. */
    char what[KILN_MAX_NAME + 32];
    if (kiln_snprintf(what, sizeof what, "monitoring stream '%s'", s->prefix ? s->prefix : "") != 0)
        kiln_snprintf(what, sizeof what, "monitoring stream");
    return kiln_main_loop_bind_stream(&s->binding, p, s->stream,
                                    s->prefix ? what : "monitoring stream", &e->err);
}

/* Plan (Blocks' DatasetEvaluator.evaluate): 1. new epoch of the stream;
** 2. per batch: bind, eval_step, aggregate each scalar; 3. record the
** aggregates. */
static enum kiln_status monitoring_run(kiln_extension *e, kiln_main_loop *m,
                                       enum kiln_callback which)
{
    (void)which;
    monitoring_state *s = e->state;
    kiln_program *p = m->program;
    enum kiln_status st;

    /* 1. */
    if ((st = kiln_stream_reset(s->stream)) != KILN_OK)
        return kiln_extension_fail(e, st, "stream reset: %s", kiln_stream_errmsg(s->stream));
    monitoring_reset(s);

    /* 2. */
    kiln_batch b;
    while (kiln_stream_next(s->stream, &b)) {
        int64_t n = s->n_batches + 1;
        kiln_err bind_err;
        if ((st = kiln_main_loop_bind_batch(&s->binding, p, &b, &bind_err)) != KILN_OK)
            return kiln_extension_fail(e, st, "batch %lld: %s", (long long)n, bind_err.msg);
        if ((st = kiln_program_eval_step(p, b.size)) != KILN_OK)
            return kiln_extension_fail(e, st, "batch %lld (%lld examples): eval_step: %s",
                                       (long long)n, (long long)b.size, kiln_program_errmsg(p));
        char where[48];
        kiln_snprintf(where, sizeof where, "batch %lld", (long long)n);
        if ((st = monitoring_add_step(e, p, b.size, where)) != KILN_OK)
            return st;
    }
    if ((st = kiln_stream_status(s->stream)) != KILN_OK)
        return kiln_extension_fail(e, st, "after batch %lld: data stream: %s", (long long)s->n_batches,
                                   kiln_stream_errmsg(s->stream));
    if (s->n_batches == 0)
        return kiln_extension_fail(e, KILN_ERR_STATE,
                                   "monitoring stream yielded zero batches (dataset has %lld "
                                   "examples)",
                                   (long long)kiln_dataset_example_count(
                                       kiln_stream_dataset(s->stream)));

    /* 3. */
    return monitoring_commit(e, m);
}

static const kiln_extension_ops MONITORING_OPS = {monitoring_attach, monitoring_run,
                                                  monitoring_destroy, NULL};

/* TrainingDataMonitoring: the variables after every train_step (observe),
** the aggregates when triggered; before_training empties the buffer. */
static enum kiln_status tdm_attach(kiln_extension *e, kiln_main_loop *m)
{
    return monitoring_check_vars(e, m->program);
}

static enum kiln_status tdm_observe(kiln_extension *e, kiln_main_loop *m)
{
    return monitoring_add_step(e, m->program, m->batch.size, "after train_step");
}

static enum kiln_status tdm_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    monitoring_state *s = e->state;
    if (which == KILN_CALLBACK_BEFORE_TRAINING) {
        monitoring_reset(s);
        return KILN_OK;
    }
    return s->n_batches > 0 ? monitoring_commit(e, m) : KILN_OK;
}

static const kiln_extension_ops TDM_OPS = {tdm_attach, tdm_run, monitoring_destroy, tdm_observe};

/* A monitoring extension over variables (copied), prefix; stream NULL for
** training data. Errors stay in the extension. */
static kiln_extension *monitoring_new(const char *name, const kiln_extension_ops *ops,
                                      const kiln_node *variables, int n, kiln_stream *stream,
                                      const char *prefix, enum kiln_aggregation scheme)
{
    monitoring_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    kiln_extension *e = kiln_extension_new(name, ops, s);
    if (!e)
        return NULL; /* monitoring_destroy freed s */
    s->stream = stream;
    if (stream)
        kiln_stream_retain(stream);
    if (n <= 0 || !variables) {
        kiln_err_set(&e->err, KILN_ERR_ARG, "%d variables given%s, at least 1 needed", n,
                     variables ? "" : " (variables is NULL)");
        return e;
    }
    s->vars = malloc((size_t)n * sizeof *s->vars);
    s->records = calloc((size_t)n, sizeof *s->records);
    s->schemes = malloc((size_t)n * sizeof *s->schemes);
    s->agg = calloc((size_t)n, sizeof *s->agg);
    s->prefix = prefix ? kiln_strdup(prefix) : NULL;
    if (!s->vars || !s->records || !s->schemes || !s->agg || (prefix && !s->prefix)) {
        kiln_extension_destroy(e);
        return NULL;
    }
    memcpy(s->vars, variables, (size_t)n * sizeof *s->vars);
    for (int i = 0; i < n; i++)
        s->schemes[i] = scheme;
    s->n_vars = n;
    return e;
}

kiln_extension *kiln_data_stream_monitoring(const kiln_node *variables, int n, kiln_stream *stream,
                                            const char *prefix)
{
    kiln_extension *e = monitoring_new("DataStreamMonitoring", &MONITORING_OPS, variables, n,
                                       stream, prefix, KILN_AGGREGATE_MEAN);
    if (!e || e->err.status != KILN_OK)
        return e;
    if (!stream) {
        kiln_err_set(&e->err, KILN_ERR_ARG, "stream is NULL");
        return e;
    }
    kiln_extension_add_triggers(e, (const enum kiln_trigger[]){KILN_TRIGGER_BEFORE_FIRST_EPOCH,
                                    KILN_TRIGGER_AFTER_EPOCH}, 2);
    return e;
}

kiln_extension *kiln_training_data_monitoring(const kiln_node *variables, int n, const char *prefix)
{
    kiln_extension *e = monitoring_new("TrainingDataMonitoring", &TDM_OPS, variables, n, NULL,
                                       prefix, KILN_AGGREGATE_TAKE_LAST);
    if (e && e->err.status == KILN_OK)
        kiln_extension_add_triggers(e, (const enum kiln_trigger[]){KILN_TRIGGER_BEFORE_TRAINING,
                                        KILN_TRIGGER_AFTER_EPOCH}, 2);
    return e;
}

enum kiln_status kiln_monitoring_set_aggregation(kiln_extension *e, int i, enum kiln_aggregation scheme)
{
    KILN_API_CHECK(e);
    if (!e)
        return KILN_ERR_ARG;
    if (e->ops != &MONITORING_OPS && e->ops != &TDM_OPS)
        return kiln_err_set(&e->err, KILN_ERR_ARG,
                            "set_aggregation: extension '%s' is no DataStreamMonitoring or "
                            "TrainingDataMonitoring", e->name);
    monitoring_state *s = e->state;
    if (i < 0 || i >= s->n_vars)
        return kiln_err_set(&e->err, KILN_ERR_ARG, "set_aggregation: variable %d of %d", i, s->n_vars);
    if ((int)scheme < KILN_AGGREGATE_MEAN || scheme > KILN_AGGREGATE_MAXIMUM)
        return kiln_err_set(&e->err, KILN_ERR_ARG, "set_aggregation: unknown scheme %d", (int)scheme);
    s->schemes[i] = scheme;
    return KILN_OK;
}

/* ---- ProgressBar -------------------------------------------------------------- */

#define PROGRESS_BAR_WIDTH 40

typedef struct progress_state {
    FILE *out;           /* NULL: stderr, as Python's progressbar */
    bool always;         /* draw whatever out is */
    bool tty;            /* decided at attach: draw only on a terminal */
    bool drawing;        /* a bar is on the current line */
    int64_t epoch_start; /* iterations_done when the epoch began */
    double t_start;      /* when the epoch began (monotonic seconds) */
} progress_state;

static void progress_destroy(kiln_extension *e)
{
    free(e->state);
}

static enum kiln_status progress_attach(kiln_extension *e, kiln_main_loop *m)
{
    (void)m;
    progress_state *s = e->state;
    FILE *out = s->out ? s->out : stderr;
    int fd = fileno(out);
    s->tty = s->always || (fd >= 0 && isatty(fd));
    return KILN_OK;
}

/* Seconds as progressbar's Timer and ETA print them: H:MM:SS. */
static void format_hms(char *dst, size_t cap, double seconds)
{
    long long t = seconds > 0 && seconds < 1e15 ? (long long)(seconds + 0.5) : 0;
    kiln_snprintf(dst, cap, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
}

/* Plan: before_epoch notes the start (count and clock); after_batch
** redraws the line: counter, percent, bar, elapsed time, rate (batches of
** this epoch per second), ETA (the epoch's remaining batches at that
** rate); the epoch's or the run's end closes the line. */
static enum kiln_status progress_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    progress_state *s = e->state;
    if (!s->tty)
        return KILN_OK;
    FILE *out = s->out ? s->out : stderr;
    int64_t total = kiln_stream_batch_count(m->stream);

    switch (which) {
    case KILN_CALLBACK_BEFORE_EPOCH:
    case KILN_CALLBACK_ON_RESUMPTION: /* mid-epoch: the rate starts over */
        s->epoch_start = m->iterations_done - (m->epoch_started ? m->batch_no : 0);
        s->t_start = kiln_main_loop_now();
        break;
    case KILN_CALLBACK_AFTER_BATCH: {
        int64_t step = m->iterations_done - s->epoch_start;
        int64_t filled = total > 0 ? step * PROGRESS_BAR_WIDTH / total : 0;
        if (filled > PROGRESS_BAR_WIDTH)
            filled = PROGRESS_BAR_WIDTH;
        char bar[PROGRESS_BAR_WIDTH + 1];
        for (int i = 0; i < PROGRESS_BAR_WIDTH; i++)
            bar[i] = i < filled ? '#' : ' ';
        bar[PROGRESS_BAR_WIDTH] = '\0';
        double elapsed = kiln_main_loop_now() - s->t_start;
        double rate = elapsed > 0 ? (double)step / elapsed : 0.0;
        char el[32], eta[32];
        format_hms(el, sizeof el, elapsed);
        if (rate > 0 && total >= step)
            format_hms(eta, sizeof eta, (double)(total - step) / rate);
        else
            kiln_snprintf(eta, sizeof eta, "--:--:--");
        fprintf(out, "\rEpoch %lld, step %lld of %lld (%3d%%) |%s| Elapsed Time: %s, %.1f batches/s, ETA: %s",
                (long long)m->epochs_done + 1, (long long)step, (long long)total,
                total > 0 ? (int)(step * 100 / total) : 0, bar, el, rate, eta);
        s->drawing = true;
        break;
    }
    case KILN_CALLBACK_AFTER_EPOCH:
    case KILN_CALLBACK_AFTER_TRAINING:
    case KILN_CALLBACK_ON_ERROR:
    case KILN_CALLBACK_ON_INTERRUPT:
        if (s->drawing)
            fputc('\n', out);
        s->drawing = false;
        break;
    default:
        break;
    }
    fflush(out);
    return KILN_OK;
}

static const kiln_extension_ops PROGRESS_OPS = {progress_attach, progress_run, progress_destroy, NULL};

static kiln_extension *progress_new(FILE *out, bool always)
{
    progress_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->out = out;
    s->always = always;
    kiln_extension *e = kiln_extension_new("ProgressBar", &PROGRESS_OPS, s);
    if (!e)
        return NULL;
    kiln_extension_add_triggers(e, (const enum kiln_trigger[]){KILN_TRIGGER_BEFORE_EPOCH,
                                    KILN_TRIGGER_ON_RESUMPTION, KILN_TRIGGER_AFTER_BATCH,
                                    KILN_TRIGGER_AFTER_EPOCH, KILN_TRIGGER_AFTER_TRAINING,
                                    KILN_TRIGGER_ON_ERROR, KILN_TRIGGER_ON_INTERRUPT}, 7);
    return e;
}

kiln_extension *kiln_progress_bar(FILE *out)
{
    return progress_new(out, false);
}

kiln_extension *kiln_progress_bar_always(FILE *out)
{
    return progress_new(out, true);
}
