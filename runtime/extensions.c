/* extensions.c: main-loop extensions: the extension object (name, triggers,
** error slot; Blocks' SimpleExtension) and the built-ins (Blocks'
** FinishAfter, Printing, DataStreamMonitoring, ProgressBar).
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
    return e->fn(e, m, which, e->user);
}

static void user_ext_destroy(kiln_extension *e)
{
    if (e->free_user)
        e->free_user(e->user);
}

static const kiln_extension_ops USER_EXT_OPS = {NULL, user_ext_run, user_ext_destroy};

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
    if (e && !e->loop) /* one that a main loop owns goes with the loop */
        kiln_extension_free(e);
}

void kiln_extension_free(kiln_extension *e)
{
    if (!e)
        return;
    if (e->ops && e->ops->destroy)
        e->ops->destroy(e);
    free(e->triggers);
    free(e);
}

static bool trigger_takes_n(enum kiln_trigger t)
{
    return t == KILN_TRIGGER_AFTER_N_EPOCHS || t == KILN_TRIGGER_EVERY_N_EPOCHS ||
           t == KILN_TRIGGER_AFTER_N_BATCHES || t == KILN_TRIGGER_EVERY_N_BATCHES;
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
    if (e->n_triggers == e->cap_triggers) {
        int cap = e->cap_triggers ? 2 * e->cap_triggers : 4;
        kiln_ext_trigger *tr = realloc(e->triggers, (size_t)cap * sizeof *tr);
        if (!tr)
            return kiln_err_set(&e->err, KILN_ERR_NOMEM, "extension '%s': %d triggers", e->name,
                                cap);
        e->triggers = tr;
        e->cap_triggers = cap;
    }
    e->triggers[e->n_triggers++] = (kiln_ext_trigger){t, trigger_takes_n(t) ? n : 0};
    return KILN_OK;
}

void kiln_extension_clear_triggers(kiln_extension *e)
{
    KILN_API_CHECK(e);
    if (e)
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

/* Blocks' Predicate and the boolean conditions of SimpleExtension. */
bool kiln_extension_trigger_fires(const kiln_ext_trigger *t, enum kiln_callback which,
                                  const kiln_main_loop *m)
{
    switch (t->kind) {
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
    case KILN_TRIGGER_ON_RESUMPTION: return which == KILN_CALLBACK_ON_RESUMPTION;
    case KILN_TRIGGER_ON_INTERRUPT: return which == KILN_CALLBACK_ON_INTERRUPT;
    }
    return false;
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

static const kiln_extension_ops FINISH_AFTER_OPS = {NULL, finish_after_run, NULL};

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
    print_rule(out);

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

static const kiln_extension_ops PRINTING_OPS = {NULL, printing_run, printing_destroy};

kiln_extension *kiln_printing(FILE *out)
{
    printing_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->out = out;
    kiln_extension *e = kiln_extension_new("Printing", &PRINTING_OPS, s);
    if (!e)
        return NULL;
    /* Blocks' defaults (on_resumption and on_interrupt have no kiln
    ** counterpart yet). */
    if (kiln_extension_add_trigger(e, KILN_TRIGGER_BEFORE_FIRST_EPOCH, 0) == KILN_OK &&
        kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_EPOCH, 0) == KILN_OK)
        kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_TRAINING, 0);
    return e;
}

/* ---- DataStreamMonitoring ------------------------------------------------------ */

typedef struct monitoring_state {
    kiln_stream *stream; /* kept alive: one reference (refs.h) */
    char *prefix;        /* NULL: records are the bare names */
    int n_vars;
    kiln_node *vars;
    char (*records)[KILN_MAX_NAME + 1]; /* record name per variable, set by attach */
    double *sums;
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
    free(s->sums);
    kiln_main_loop_binding_free(&s->binding);
    kiln_stream_release(s->stream);
    free(s);
}

/* Plan: 1. the program must have eval_step, and the stream must not be the
** training stream; 2. every variable must be one of
** its values, named, giving a record name that fits and is unique; 3. the
** stream must bind to the program's inputs. */
static enum kiln_status monitoring_attach(kiln_extension *e, kiln_main_loop *m)
{
    monitoring_state *s = e->state;
    kiln_program *p = m->program;

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

    /* 3. */
    char what[KILN_MAX_NAME + 32];
    if (kiln_snprintf(what, sizeof what, "monitoring stream '%s'", s->prefix ? s->prefix : "") != 0)
        kiln_snprintf(what, sizeof what, "monitoring stream");
    return kiln_main_loop_bind_stream(&s->binding, p, s->stream,
                                    s->prefix ? what : "monitoring stream", &e->err);
}

/* Plan (Blocks' DatasetEvaluator.evaluate): 1. new epoch of the stream;
** 2. per batch: bind, eval_step, add each scalar; 3. record the means. */
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
    for (int i = 0; i < s->n_vars; i++)
        s->sums[i] = 0.0;

    /* 2. */
    kiln_batch b;
    int64_t n_batches = 0;
    while (kiln_stream_next(s->stream, &b)) {
        n_batches++;
        kiln_err bind_err;
        if ((st = kiln_main_loop_bind_batch(&s->binding, p, &b, &bind_err)) != KILN_OK)
            return kiln_extension_fail(e, st, "batch %lld: %s", (long long)n_batches,
                                       bind_err.msg);
        if ((st = kiln_program_eval_step(p, b.size)) != KILN_OK)
            return kiln_extension_fail(e, st, "batch %lld (%lld examples): eval_step: %s",
                                       (long long)n_batches, (long long)b.size,
                                       kiln_program_errmsg(p));
        for (int i = 0; i < s->n_vars; i++) {
            double v;
            if ((st = kiln_program_read_scalar(p, s->vars[i], &v)) != KILN_OK)
                return kiln_extension_fail(e, st, "batch %lld: reading '%s': %s",
                                           (long long)n_batches, s->records[i],
                                           kiln_program_errmsg(p));
            s->sums[i] += v;
        }
    }
    if ((st = kiln_stream_status(s->stream)) != KILN_OK)
        return kiln_extension_fail(e, st, "after batch %lld: data stream: %s", (long long)n_batches,
                                   kiln_stream_errmsg(s->stream));
    if (n_batches == 0)
        return kiln_extension_fail(e, KILN_ERR_STATE,
                                   "monitoring stream yielded zero batches (dataset has %lld "
                                   "examples)",
                                   (long long)kiln_dataset_example_count(
                                       kiln_stream_dataset(s->stream)));

    /* 3. */
    for (int i = 0; i < s->n_vars; i++) {
        st = kiln_main_loop_set_log(m, s->records[i], KILN_LOG_FLOAT,
                                    s->sums[i] / (double)n_batches);
        if (st != KILN_OK)
            return kiln_extension_fail(e, st, "%s", m->err.msg);
    }
    return KILN_OK;
}

static const kiln_extension_ops MONITORING_OPS = {monitoring_attach, monitoring_run,
                                                  monitoring_destroy};

kiln_extension *kiln_data_stream_monitoring(const kiln_node *variables, int n, kiln_stream *stream,
                                            const char *prefix)
{
    monitoring_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    kiln_extension *e = kiln_extension_new("DataStreamMonitoring", &MONITORING_OPS, s);
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
    if (!stream) {
        kiln_err_set(&e->err, KILN_ERR_ARG, "stream is NULL");
        return e;
    }
    s->vars = malloc((size_t)n * sizeof *s->vars);
    s->records = calloc((size_t)n, sizeof *s->records);
    s->sums = calloc((size_t)n, sizeof *s->sums);
    s->prefix = prefix ? kiln_strdup(prefix) : NULL;
    if (!s->vars || !s->records || !s->sums || (prefix && !s->prefix)) {
        kiln_extension_destroy(e);
        return NULL;
    }
    memcpy(s->vars, variables, (size_t)n * sizeof *s->vars);
    s->n_vars = n;
    if (kiln_extension_add_trigger(e, KILN_TRIGGER_BEFORE_FIRST_EPOCH, 0) == KILN_OK)
        kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_EPOCH, 0);
    return e;
}

/* ---- ProgressBar -------------------------------------------------------------- */

#define PROGRESS_BAR_WIDTH 40

typedef struct progress_state {
    FILE *out;          /* NULL: stderr, as Python's progressbar */
    bool tty;           /* decided at attach: draw only on a terminal */
    bool drawing;       /* a bar is on the current line */
    int64_t epoch_start; /* iterations_done when the epoch began */
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
    s->tty = fd >= 0 && isatty(fd);
    return KILN_OK;
}

static enum kiln_status progress_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    progress_state *s = e->state;
    if (!s->tty)
        return KILN_OK;
    FILE *out = s->out ? s->out : stderr;
    int64_t total = kiln_stream_batch_count(m->stream);

    switch (which) {
    case KILN_CALLBACK_BEFORE_EPOCH:
        s->epoch_start = m->iterations_done;
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
        fprintf(out, "\rEpoch %lld, step %lld of %lld |%s| %3d%%", (long long)m->epochs_done + 1,
                (long long)step, (long long)total, bar,
                total > 0 ? (int)(step * 100 / total) : 0);
        s->drawing = true;
        break;
    }
    case KILN_CALLBACK_AFTER_EPOCH:
    case KILN_CALLBACK_AFTER_TRAINING:
    case KILN_CALLBACK_ON_ERROR:
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

static const kiln_extension_ops PROGRESS_OPS = {progress_attach, progress_run, progress_destroy};

kiln_extension *kiln_progress_bar(FILE *out)
{
    progress_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->out = out;
    kiln_extension *e = kiln_extension_new("ProgressBar", &PROGRESS_OPS, s);
    if (!e)
        return NULL;
    if (kiln_extension_add_trigger(e, KILN_TRIGGER_BEFORE_EPOCH, 0) == KILN_OK &&
        kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_BATCH, 0) == KILN_OK &&
        kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_EPOCH, 0) == KILN_OK &&
        kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_TRAINING, 0) == KILN_OK)
        kiln_extension_add_trigger(e, KILN_TRIGGER_ON_ERROR, 0);
    return e;
}
