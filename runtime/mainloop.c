/* mainloop.c: the training main loop (Blocks' MainLoop): the run, dispatch
** of callbacks to extensions, the log's public face, and input binding. The
** extension object and the built-in extensions are in extensions.c.
**
** A run, in Blocks' order:
**
**   before_training; on_resumption when iterations_done > 0 (a checkpoint
**   was loaded: checkpoint.c)
**   repeat:                                   (one epoch)
**     stream reset; before_epoch (both skipped when the loaded checkpoint
**     was taken mid-epoch: the epoch goes on)
**     for each batch: before_batch; bind sources to inputs; train_step;
**                     iterations_done += 1; after_batch; finish check
**     (no batch at all: error "epoch iterator yielded zero batches")
**     epochs_done += 1; after_epoch; finish check
**   current row: training_finished = True; after_training
**
** The finish check reads training_finish_requested in the current row, the
** row of iteration iterations_done (row 0 before the first batch), which is
** where FinishAfter and any other extension write it. Extensions are called
** in the order they were added; an extension with several triggers that fire
** on one callback runs once per trigger, as Blocks' dispatch does.
**
** Binding. Program inputs are matched to stream sources by name once, when
** the loop is created and again when a run starts (extensions added in
** between bring streams of their own), into a table input -> source index; each batch then costs one
** kiln_program_bind_input per input and no allocation. Sources that no input
** reads are ignored (Blocks' on_unused_sources='ignore'; 'raise' would reject
** MNIST's targets for a model that only predicts). An input without a batch
** dim takes the batch's first example of its source, whose size must equal
** the input's whole size. Sources are the stream's (kiln_stream_source_*): a
** padded stream's sequences and mask are time-major and feed (T, B, ..)
** inputs, and each of its batches sets the program's T
** (kiln_program_set_size) to the batch's; the stream's longest sequence is
** checked against the program's maximum T when binding, before any step,
** so a long example fails the run at its start, not hours in.
**
** Errors. The first failure stops the run: the message, copied into the main
** loop's slot, says where (iteration, epoch, batch, or extension and
** callback) and passes on the failing handle's message. Then the current row
** gets got_exception = True and on_error runs (its own failures are ignored,
** so the first message stays). A loop that finished or failed does not run
** again (KILN_ERR_STATE): its stream and log are mid-way.
**
** Parameters belong to the program; the loop never reads or writes them.
**
** Lifetimes (#9): the loop keeps its program and stream alive (refs.h), so
** the caller may destroy them before the loop. It owns its extensions: one
** that belongs to a loop is refused by another (KILN_ERR_ARG, left to its
** owner), and kiln_extension_destroy leaves it to its loop.
**
** Configuration, log backend, profile (#11). The configuration is read when
** the loop is created and applied then (log backend, profile); the loop
** keeps no configuration. The log is told where each iteration ends
** (kiln_log_advance), which is where an SQLite log commits, with the status;
** a log that continues a file gives the loop its status. The profile adds
** the time between marks to a section; off, a mark costs a branch. */
#include "runtime/mainloop.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *kiln_main_loop_callback_name(enum kiln_callback c)
{
    switch (c) {
    case KILN_CALLBACK_BEFORE_TRAINING: return "before_training";
    case KILN_CALLBACK_BEFORE_EPOCH: return "before_epoch";
    case KILN_CALLBACK_BEFORE_BATCH: return "before_batch";
    case KILN_CALLBACK_AFTER_BATCH: return "after_batch";
    case KILN_CALLBACK_AFTER_EPOCH: return "after_epoch";
    case KILN_CALLBACK_AFTER_TRAINING: return "after_training";
    case KILN_CALLBACK_ON_ERROR: return "on_error";
    case KILN_CALLBACK_ON_RESUMPTION: return "on_resumption";
    case KILN_CALLBACK_ON_INTERRUPT: return "on_interrupt";
    }
    return "unknown callback";
}


/* ---- Input binding -------------------------------------------------------- */

void kiln_main_loop_binding_free(kiln_input_binding *b)
{
    free(b->source);
    free(b->values);
    free(b->layout);
    b->source = NULL;
    b->values = NULL;
    b->layout = NULL;
    b->n_inputs = 0;
    b->time_major = false;
    b->d = NULL;
}

/* Comma-separated source names of s into dst ("features, targets"). A list
** too long for dst ends in "..." (a message, so a marked cut is fine). */
static void list_sources(const kiln_stream *s, char *dst, size_t cap)
{
    size_t used = 0;
    dst[0] = '\0';
    int n = kiln_stream_source_count(s);
    if (n == 0) {
        kiln_snprintf(dst, cap, "none");
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *name = kiln_stream_source_name(s, i);
        int w = snprintf(dst + used, cap - used, "%s%s", i ? ", " : "", name ? name : "?");
        if (w < 0 || (size_t)w >= cap - used) {
            if (cap >= 4)
                memcpy(dst + cap - 4, "...", 4);
            return;
        }
        used += (size_t)w;
    }
}

/* Input i's layout against source j's: a time-major source (a padded
** sequence or its mask) feeds a (T, B, ..) input, any other source a
** batch-first one. */
static enum kiln_status check_layout(kiln_program *p, int i, const kiln_stream *s, int j,
                                     const char *pre, const char *sep, kiln_err *err)
{
    const char *name = kiln_program_input_name(p, i);
    char shape[256];
    bool source_tm = kiln_stream_source_time_major(s, j);
    if (source_tm && !kiln_program_input_time_major(p, i))
        return kiln_err_set(err, KILN_ERR_SHAPE,
                            "%s%sprogram input '%s' is %s, data source '%s' is padded time-major "
                            "(T, B%s): declare the input (KILN_TIME, KILN_BATCH, ..)",
                            pre, sep, name, kiln_program_input_shape_str(p, i, shape, sizeof shape),
                            name, kiln_stream_source_example_size(s, j) == 1 ? "" : ", ..");
    if (!source_tm && kiln_program_input_time_major(p, i))
        return kiln_err_set(err, KILN_ERR_SHAPE,
                            "%s%sprogram input '%s' is %s: a data stream feeds a time-major input "
                            "from a sequence source (kiln_dataset_add_sequences, "
                            "kiln_stream_create_padded); data source '%s' has one value per example",
                            pre, sep, name, kiln_program_input_shape_str(p, i, shape, sizeof shape),
                            name);
    if (!source_tm && !kiln_program_input_batch_first(p, i))
        return kiln_err_set(err, KILN_ERR_UNSUPPORTED,
                            "%s%sprogram input '%s' is %s: a data stream feeds inputs laid out example "
                            "after example (constant dims but for the batch first) or time-major "
                            "(T, B, ..) from a padded stream; bind it by hand",
                            pre, sep, name, kiln_program_input_shape_str(p, i, shape, sizeof shape));
    return KILN_OK;
}

/* Plan: 1. check the stream's batch size against the program's max_batch;
** 2. for every program input find the stream source of that name; 3. check
** dtype, layout and size per example (per step); 4. the longest sequence
** against the program's maximum T, before any step rather than at the
** batch that holds it; 5. only then replace b's table. */
enum kiln_status kiln_main_loop_bind_stream(kiln_input_binding *b, kiln_program *p, kiln_stream *s,
                                          const char *what, kiln_err *err)
{
    const char *pre = what ? what : "";
    const char *sep = what ? ": " : "";
    if (!kiln_stream_dataset(s))
        return kiln_err_set(err, KILN_ERR_ARG, "%s%sstream has no dataset", pre, sep);

    /* 1. Batch size. */
    int64_t bs = kiln_stream_batch_size(s), maxb = kiln_program_max_batch(p);
    if (maxb > 0 && bs > maxb)
        return kiln_err_set(err, KILN_ERR_ARG,
                            "%s%sstream batch size %lld exceeds the program's max_batch %lld "
                            "(set kiln_compile_options.max_batch)",
                            pre, sep, (long long)bs, (long long)maxb);

    int n = kiln_program_input_count(p);
    if (n < 0)
        return kiln_err_set(err, KILN_ERR_ARG, "%s%sprogram reports %d inputs", pre, sep, n);
    int *src = n ? malloc((size_t)n * sizeof *src) : NULL;
    int64_t *values = n ? malloc((size_t)n * sizeof *values) : NULL;
    enum kiln_bind_layout *layout = n ? malloc((size_t)n * sizeof *layout) : NULL;
    if (n && (!src || !values || !layout)) {
        free(src);
        free(values);
        free(layout);
        return kiln_err_set(err, KILN_ERR_NOMEM, "%s%sbinding table for %d inputs", pre, sep, n);
    }

    bool time_major = false;
    enum kiln_status st = KILN_OK;
    for (int i = 0; i < n && st == KILN_OK; i++) {
        /* 2. Source by name. */
        const char *name = kiln_program_input_name(p, i);
        int j = name ? kiln_stream_source_index(s, name) : -1;
        if (j < 0) {
            char list[256];
            list_sources(s, list, sizeof list);
            st = kiln_err_set(err, KILN_ERR_NOT_FOUND,
                              "%s%sprogram input '%s' matches no data source (sources: %s)", pre,
                              sep, name ? name : "?", list);
            break;
        }
        /* 3. dtype, layout and size. */
        enum kiln_dtype want = kiln_program_input_dtype(p, i);
        enum kiln_dtype have = kiln_stream_source_dtype(s, j);
        if (want != have) {
            st = kiln_err_set(err, KILN_ERR_SHAPE,
                              "%s%sprogram input '%s' expects %s, data source '%s' is %s", pre,
                              sep, name, kiln_dtype_name(want), name, kiln_dtype_name(have));
            break;
        }
        if ((st = check_layout(p, i, s, j, pre, sep, err)) != KILN_OK)
            break;
        bool tm = kiln_stream_source_time_major(s, j);
        int64_t want_n = kiln_program_input_example_size(p, i);
        int64_t have_n = kiln_stream_source_example_size(s, j);
        if (want_n != have_n) {
            st = kiln_err_set(err, KILN_ERR_SHAPE,
                              "%s%sprogram input '%s' expects %lld values per %s%s, data "
                              "source '%s' has %lld",
                              pre, sep, name, (long long)want_n, tm ? "step" : "example",
                              tm || kiln_program_input_batched(p, i) ? ""
                                                                    : " (whole input, no batch dim)",
                              name, (long long)have_n);
            break;
        }
        time_major = time_major || tm;
        src[i] = j;
        values[i] = have_n;
        layout[i] = tm ? KILN_BIND_TIME_MAJOR : kiln_program_input_batched(p, i) ? KILN_BIND_BATCHED : KILN_BIND_WHOLE;
    }

    /* 4. The longest sequence. */
    int64_t longest, maxt = kiln_program_max_size(p, KILN_TIME);
    int64_t t = kiln_stream_max_time(s, &longest);
    if (st == KILN_OK && time_major && t > maxt)
        st = kiln_err_set(err, KILN_ERR_SHAPE,
                          "%s%sthe stream's longest sequence (example %lld of the dataset) has %lld "
                          "steps, past the program's maximum T of %lld (compile with "
                          "max_size[KILN_SYMBOL_INDEX(KILN_TIME)] >= %lld)",
                          pre, sep, (long long)longest, (long long)t, (long long)maxt, (long long)t);
    if (st != KILN_OK) {
        free(src);
        free(values);
        free(layout);
        return st;
    }

    /* 5. Commit. */
    kiln_main_loop_binding_free(b);
    b->source = src;
    b->values = values;
    b->layout = layout;
    b->n_inputs = n;
    b->time_major = time_major;
    b->d = kiln_stream_dataset(s);
    return KILN_OK;
}

enum kiln_status kiln_main_loop_bind_batch(const kiln_input_binding *b, kiln_program *p,
                                          const kiln_batch *batch, kiln_err *err)
{
    for (int i = 0; i < b->n_inputs; i++) {
        int j = b->source[i];
        if (j >= batch->n_sources)
            return kiln_err_set(err, KILN_ERR_STATE,
                                "batch has %d sources, input '%s' reads source %d",
                                batch->n_sources, kiln_program_input_name(p, i), j);
        /* What the stream's buffer holds (sizes < 2^53: checked when it was made). */
        int64_t count = b->values[i];
        if (b->layout[i] != KILN_BIND_WHOLE)
            count *= batch->size;
        if (b->layout[i] == KILN_BIND_TIME_MAJOR)
            count *= batch->time;
        enum kiln_status st =
            kiln_program_bind_input_n(p, kiln_program_input_name(p, i), batch->sources[j], count);
        if (st != KILN_OK)
            return kiln_err_set(err, st, "binding input '%s': %s", kiln_program_input_name(p, i),
                                kiln_program_errmsg(p));
    }
    if (!b->time_major)
        return KILN_OK;
    int64_t maxt = kiln_program_max_size(p, KILN_TIME);
    if (batch->time < 1 || batch->time > maxt) {
        int64_t longest = -1; /* the batch's first example of length T */
        for (int64_t k = 0; b->d && batch->examples && k < batch->size && longest < 0; k++)
            if (kiln_dataset_sequence_length(b->d, batch->examples[k]) == batch->time)
                longest = batch->examples[k];
        return kiln_err_set(err, KILN_ERR_SHAPE,
                            "the batch's longest sequence (example %lld of the dataset) has %lld "
                            "steps, outside the program's T of 1 to %lld (compile with "
                            "max_size[KILN_SYMBOL_INDEX(KILN_TIME)] >= %lld)",
                            (long long)longest, (long long)batch->time, (long long)maxt,
                            (long long)batch->time);
    }
    enum kiln_status st = kiln_program_set_size(p, KILN_TIME, batch->time);
    if (st != KILN_OK)
        return kiln_err_set(err, st, "setting T = %lld: %s", (long long)batch->time,
                            kiln_program_errmsg(p));
    return KILN_OK;
}

/* ---- Main loop: handle, status, log --------------------------------------- */

/* The log backend and profile that cfg asks for. */
static enum kiln_status apply_config(kiln_main_loop *m, kiln_config *cfg)
{
    const char *backend = NULL, *path = NULL;
    bool profile = false;
    enum kiln_status st;
    if ((st = kiln_config_get_string(cfg, "log_backend", &backend)) != KILN_OK ||
        (st = kiln_config_get_bool(cfg, "profile", &profile)) != KILN_OK)
        return kiln_err_set(&m->err, st, "configuration: %s", kiln_config_errmsg(cfg));
    m->profile = profile;
    if (strcmp(backend, "sqlite") != 0)
        return KILN_OK;
    if ((st = kiln_config_get_string(cfg, "sqlite_database", &path)) != KILN_OK)
        return kiln_err_set(&m->err, st, "configuration: log_backend is sqlite, but %s",
                            kiln_config_errmsg(cfg));
    return kiln_main_loop_set_log_backend(m, KILN_LOG_BACKEND_SQLITE, path);
}

/* Plan: 1. the handle, keeping p and stream; 2. p can train and binds to
** stream; 3. cfg's log backend and profile (cfg NULL: the defaults). A loop
** whose configuration failed keeps the message in config_err and never runs. */
static enum kiln_status loop_create(kiln_program *p, kiln_stream *stream, kiln_config *cfg,
                                    kiln_main_loop **out)
{
    KILN_API_CHECK(out);
    if (!out)
        return KILN_ERR_ARG;
    kiln_main_loop *m = calloc(1, sizeof *m);
    *out = m;
    if (!m)
        return KILN_ERR_NOMEM;
    m->program = p;
    m->stream = stream;
    if (p)
        kiln_program_retain(p);
    if (stream)
        kiln_stream_retain(stream);
    kiln_log_init(&m->log);
    kiln_err_clear(&m->err);
    if (!p || !stream)
        return kiln_err_set(&m->err, KILN_ERR_ARG, "main loop: %s is NULL",
                            !p ? "program" : "stream");
    if (!kiln_program_can_train(p))
        return kiln_err_set(&m->err, KILN_ERR_STATE,
                            "main loop: the program has no train_step (compile it with a cost)");
    enum kiln_status st = kiln_main_loop_bind_stream(&m->binding, p, stream, NULL, &m->err);
    if (st != KILN_OK || !cfg)
        return st;
    if ((st = apply_config(m, cfg)) != KILN_OK)
        m->config_err = m->err;
    return st;
}

enum kiln_status kiln_main_loop_create(kiln_program *p, kiln_stream *stream, kiln_main_loop **out)
{
    kiln_config *cfg = NULL;
    enum kiln_status cst = kiln_config_load(&cfg);
    enum kiln_status st = loop_create(p, stream, cst == KILN_OK ? cfg : NULL, out);
    if (cst != KILN_OK && *out) {
        kiln_err_set(&(*out)->config_err, cst, "configuration: %s", kiln_config_errmsg(cfg));
        if (st == KILN_OK) {
            (*out)->err = (*out)->config_err;
            st = cst;
        }
    }
    kiln_config_destroy(cfg);
    return st;
}

enum kiln_status kiln_main_loop_create_with_config(kiln_program *p, kiln_stream *stream,
                                                   kiln_config *cfg, kiln_main_loop **out)
{
    return loop_create(p, stream, cfg, out);
}

void kiln_main_loop_destroy(kiln_main_loop *m)
{
    if (!m)
        return;
    kiln_log_advance(&m->log, m->iterations_done, m->epochs_done, true);
    for (int i = 0; i < m->n_exts; i++)
        kiln_extension_free(m->exts[i]);
    free(m->exts);
    kiln_main_loop_binding_free(&m->binding);
    kiln_log_clear(&m->log);
    kiln_program_release(m->program);
    kiln_stream_release(m->stream);
    free(m);
}

const char *kiln_main_loop_errmsg(const kiln_main_loop *m)
{
    if (!m)
        return "out of memory";
    return m->err.msg;
}

int64_t kiln_main_loop_epochs_done(const kiln_main_loop *m)
{
    KILN_API_CHECK(m);
    return m ? m->epochs_done : 0;
}

int64_t kiln_main_loop_iterations_done(const kiln_main_loop *m)
{
    KILN_API_CHECK(m);
    return m ? m->iterations_done : 0;
}

kiln_program *kiln_main_loop_program(const kiln_main_loop *m)
{
    KILN_API_CHECK(m);
    return m ? m->program : NULL;
}

kiln_stream *kiln_main_loop_stream(const kiln_main_loop *m)
{
    KILN_API_CHECK(m);
    return m ? m->stream : NULL;
}

const kiln_batch *kiln_main_loop_current_batch(const kiln_main_loop *m)
{
    KILN_API_CHECK(m);
    return (m && m->in_batch) ? &m->batch : NULL;
}

kiln_extension *kiln_main_loop_find_extension(const kiln_main_loop *m, const char *name)
{
    KILN_API_CHECK(m);
    if (!m || !name)
        return NULL;
    for (int i = 0; i < m->n_exts; i++)
        if (strcmp(m->exts[i]->name, name) == 0)
            return m->exts[i];
    return NULL;
}

enum kiln_status kiln_main_loop_record(const kiln_main_loop *m, int64_t iteration, const char *key,
                                       double *out)
{
    KILN_API_CHECK(m && out && key);
    if (!m || !out || !key)
        return KILN_ERR_ARG;
    const kiln_log_record *r = kiln_log_get(&m->log, iteration, key);
    if (!r)
        return KILN_ERR_NOT_FOUND;
    if (r->kind == KILN_LOG_TEXT)
        return KILN_ERR_ARG;
    *out = r->value;
    return KILN_OK;
}

enum kiln_status kiln_main_loop_last_record(const kiln_main_loop *m, const char *key, double *out)
{
    KILN_API_CHECK(m);
    if (!m)
        return KILN_ERR_ARG;
    return kiln_main_loop_record(m, m->iterations_done, key, out);
}

bool kiln_main_loop_has_record(const kiln_main_loop *m, int64_t iteration, const char *key,
                               bool *is_bool)
{
    KILN_API_CHECK(m);
    const kiln_log_record *r = m ? kiln_log_get(&m->log, iteration, key) : NULL;
    if (is_bool)
        *is_bool = r && r->kind == KILN_LOG_BOOL;
    return r != NULL;
}

enum kiln_status kiln_main_loop_set_log(kiln_main_loop *m, const char *key,
                                        enum kiln_log_kind kind, double value)
{
    enum kiln_status st = kiln_log_set(&m->log, m->iterations_done, key, kind, value);
    if (st != KILN_OK)
        kiln_err_copy(&m->err, &m->log.err, NULL);
    return st;
}

enum kiln_status kiln_main_loop_set_record(kiln_main_loop *m, const char *key, double value)
{
    KILN_API_CHECK(m);
    if (!m)
        return KILN_ERR_ARG;
    return kiln_main_loop_set_log(m, key, KILN_LOG_FLOAT, value);
}

enum kiln_status kiln_main_loop_set_record_bool(kiln_main_loop *m, const char *key, bool value)
{
    KILN_API_CHECK(m);
    if (!m)
        return KILN_ERR_ARG;
    return kiln_main_loop_set_log(m, key, KILN_LOG_BOOL, value ? 1.0 : 0.0);
}

enum kiln_status kiln_main_loop_set_record_text(kiln_main_loop *m, const char *key,
                                                const char *text)
{
    KILN_API_CHECK(m);
    if (!m)
        return KILN_ERR_ARG;
    enum kiln_status st = kiln_log_set_text(&m->log, m->iterations_done, key, text);
    if (st != KILN_OK)
        kiln_err_copy(&m->err, &m->log.err, NULL);
    return st;
}

enum kiln_status kiln_main_loop_record_text(kiln_main_loop *m, int64_t iteration, const char *key,
                                            const char **out)
{
    KILN_API_CHECK(m && key && out);
    if (!m || !key || !out)
        return m ? kiln_err_set(&m->err, KILN_ERR_ARG, "record_text: %s is NULL",
                                !key ? "key" : "out")
                 : KILN_ERR_ARG;
    const kiln_log_record *r;
    enum kiln_status st = kiln_log_read(&m->log, iteration, key, &r);
    if (st != KILN_OK)
        return kiln_err_copy(&m->err, &m->log.err, NULL);
    if (!r)
        return kiln_err_set(&m->err, KILN_ERR_NOT_FOUND, "row %lld has no record '%s'",
                            (long long)iteration, key);
    if (r->kind != KILN_LOG_TEXT)
        return kiln_err_set(&m->err, KILN_ERR_ARG,
                            "record '%s' of row %lld is a %s, not text (read it with "
                            "kiln_main_loop_record)",
                            key, (long long)iteration, r->kind == KILN_LOG_BOOL ? "boolean" : "number");
    *out = r->text;
    return KILN_OK;
}

enum kiln_record_kind kiln_main_loop_record_kind(const kiln_main_loop *m, int64_t iteration,
                                                 const char *key)
{
    KILN_API_CHECK(m);
    const kiln_log_record *r = m ? kiln_log_get(&m->log, iteration, key) : NULL;
    if (!r)
        return KILN_RECORD_NONE;
    switch (r->kind) {
    case KILN_LOG_BOOL: return KILN_RECORD_BOOL;
    case KILN_LOG_TEXT: return KILN_RECORD_TEXT;
    default: return KILN_RECORD_NUMBER;
    }
}

enum kiln_status kiln_main_loop_set_log_backend(kiln_main_loop *m, enum kiln_log_backend backend,
                                                const char *path)
{
    KILN_API_CHECK(m);
    if (!m)
        return KILN_ERR_ARG;
    if (backend != KILN_LOG_BACKEND_MEMORY && backend != KILN_LOG_BACKEND_SQLITE)
        return kiln_err_set(&m->err, KILN_ERR_ARG, "set_log_backend: unknown backend %d",
                            (int)backend);
    if (backend == KILN_LOG_BACKEND_SQLITE && !path)
        return kiln_err_set(&m->err, KILN_ERR_ARG, "set_log_backend: path is NULL");
    if (m->training_started)
        return kiln_err_set(&m->err, KILN_ERR_STATE,
                            "set_log_backend: training has started; choose the log before the "
                            "first run");
    if (m->log.n_rows > 0)
        return kiln_err_set(&m->err, KILN_ERR_STATE,
                            "set_log_backend: the in-memory log holds records already; choose "
                            "the log before writing any");
    kiln_log fresh;
    kiln_log_init(&fresh);
    if (backend == KILN_LOG_BACKEND_SQLITE && kiln_log_open_sqlite(&fresh, path) != KILN_OK)
        return kiln_err_copy(&m->err, &fresh.err, NULL);
    kiln_log_clear(&m->log); /* commits and closes a file it had */
    m->log = fresh;
    kiln_log_status(&m->log, &m->iterations_done, &m->epochs_done);
    return KILN_OK;
}

enum kiln_log_backend kiln_main_loop_log_backend(const kiln_main_loop *m)
{
    KILN_API_CHECK(m);
    return m && m->log.db ? KILN_LOG_BACKEND_SQLITE : KILN_LOG_BACKEND_MEMORY;
}

/* ---- Profile ------------------------------------------------------------------ */

enum kiln_status kiln_main_loop_set_profile(kiln_main_loop *m, bool on, FILE *out)
{
    KILN_API_CHECK(m);
    if (!m)
        return KILN_ERR_ARG;
    m->profile = on;
    m->profile_out = out;
    return KILN_OK;
}

double kiln_main_loop_profile_seconds(const kiln_main_loop *m, enum kiln_profile_section s,
                                      int64_t *calls)
{
    KILN_API_CHECK(m);
    bool ok = m && (int)s >= 0 && s < KILN_PROFILE_N_SECTIONS;
    if (calls)
        *calls = ok ? m->profile_calls[s] : 0;
    return ok ? m->profile_seconds[s] : 0.0;
}

static double profile_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The time since *mark goes to section s; *mark becomes now. */
static void profile_mark(kiln_main_loop *m, enum kiln_profile_section s, double *mark)
{
    if (!m->profile)
        return;
    double t = profile_now();
    m->profile_seconds[s] += t - *mark;
    m->profile_calls[s]++;
    *mark = t;
}

static const char *const PROFILE_NAMES[KILN_PROFILE_N_SECTIONS] = {
    "before_training", "before_epoch", "read_data", "before_batch", "train_step",
    "after_batch", "log", "after_epoch", "after_training"};

/* Blocks prints its profile when a run ends; kiln the same table of
** sections, with what the marks missed as "other". */
static void profile_report(kiln_main_loop *m, double seconds)
{
    FILE *out = m->profile_out ? m->profile_out : stderr;
    double sum = 0;
    fprintf(out, "\nProfile of the main loop (%lld iterations, %lld epochs, %.6f s):\n",
            (long long)m->iterations_done, (long long)m->epochs_done, seconds);
    fprintf(out, "  %-16s %12s %8s %12s\n", "section", "seconds", "share", "calls");
    for (int i = 0; i < KILN_PROFILE_N_SECTIONS; i++) {
        double s = m->profile_seconds[i];
        sum += s;
        fprintf(out, "  %-16s %12.6f %7.2f%% %12lld\n", PROFILE_NAMES[i], s,
                seconds > 0 ? 100.0 * s / seconds : 0.0, (long long)m->profile_calls[i]);
    }
    double other = seconds > sum ? seconds - sum : 0.0;
    fprintf(out, "  %-16s %12.6f %7.2f%%\n", "other", other, seconds > 0 ? 100.0 * other / seconds : 0.0);
    fflush(out);
}

/* ---- Main loop: extensions and the run ------------------------------------ */

/* Check e against m; on failure copy e's message into m, naming e. */
static enum kiln_status attach_extension(kiln_main_loop *m, kiln_extension *e)
{
    if (e->err.status != KILN_OK)
        return kiln_err_set(&m->err, e->err.status, "extension '%s': %s", e->name, e->err.msg);
    if (!e->ops->attach)
        return KILN_OK;
    enum kiln_status st = e->ops->attach(e, m);
    if (st != KILN_OK)
        return kiln_err_set(&m->err, st, "extension '%s': %s", e->name, e->err.msg);
    return KILN_OK;
}

enum kiln_status kiln_main_loop_add_extension(kiln_main_loop *m, kiln_extension *ext)
{
    KILN_API_CHECK(m);
    if (ext && ext->loop) /* another loop's (or this one's): its owner frees it */
        return m ? kiln_err_set(&m->err, KILN_ERR_ARG, "add_extension: extension '%s' belongs to %s main loop",
                                ext->name, ext->loop == m ? "this" : "another")
                 : KILN_ERR_ARG;
    if (!m) {
        kiln_extension_destroy(ext);
        return KILN_ERR_ARG;
    }
    if (!ext)
        return kiln_err_set(&m->err, KILN_ERR_NOMEM,
                            "add_extension: extension is NULL (its constructor ran out of memory)");
    enum kiln_status st = KILN_OK;
    if (m->err.status != KILN_OK && !m->program)
        st = m->err.status; /* create failed: nothing to check against */
    else if (m->program && m->stream)
        st = attach_extension(m, ext);
    if (st == KILN_OK && m->n_exts == m->cap_exts) {
        int cap = m->cap_exts ? 2 * m->cap_exts : 8;
        kiln_extension **exts = realloc(m->exts, (size_t)cap * sizeof *exts);
        if (!exts)
            st = kiln_err_set(&m->err, KILN_ERR_NOMEM, "add_extension: %d extensions", cap);
        else {
            m->exts = exts;
            m->cap_exts = cap;
        }
    }
    if (st != KILN_OK) {
        kiln_extension_destroy(ext);
        return st;
    }
    m->exts[m->n_exts++] = ext;
    ext->loop = m;
    return KILN_OK;
}

/* Call every extension whose triggers fire on `which`, in order. */
static enum kiln_status dispatch(kiln_main_loop *m, enum kiln_callback which)
{
    for (int i = 0; i < m->n_exts; i++) {
        kiln_extension *e = m->exts[i];
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
                return kiln_err_set(&m->err, st,
                                    "extension '%s' failed in %s at iteration %lld: %s",
                                    e->name, kiln_main_loop_callback_name(which),
                                    (long long)m->iterations_done, copy);
            }
        }
    }
    return KILN_OK;
}

static bool finish_requested(const kiln_main_loop *m)
{
    const kiln_log_record *r =
        kiln_log_get(&m->log, m->iterations_done, "training_finish_requested");
    return r && r->value != 0;
}

/* An iteration or epoch ended: tell the log (an SQLite log commits). */
static enum kiln_status log_advance(kiln_main_loop *m, bool force)
{
    enum kiln_status st = kiln_log_advance(&m->log, m->iterations_done, m->epochs_done, force);
    if (st != KILN_OK)
        return kiln_err_set(&m->err, st, "iteration %lld: the log: %s",
                            (long long)m->iterations_done, m->log.err.msg);
    return KILN_OK;
}

/* One epoch: returns KILN_OK and sets *finish when an extension asked to
** stop after a batch or after the epoch. */
static enum kiln_status run_epoch(kiln_main_loop *m, bool *finish)
{
    enum kiln_status st;
    int64_t epoch = m->epochs_done + 1, n_batches = kiln_stream_batch_count(m->stream);
    double mark = m->profile ? profile_now() : 0.0;

    /* 1. New epoch of the stream, then before_epoch; an epoch that a
    ** checkpoint interrupted (checkpoint.c restored the stream mid-epoch)
    ** goes on where it was, as Blocks' epoch_started status does. */
    bool resumed = m->epoch_started;
    if (!resumed) {
        if ((st = kiln_stream_reset(m->stream)) != KILN_OK)
            return kiln_err_set(&m->err, st, "epoch %lld: stream reset: %s", (long long)epoch,
                                kiln_stream_errmsg(m->stream));
        m->epoch_started = true;
        if ((st = dispatch(m, KILN_CALLBACK_BEFORE_EPOCH)) != KILN_OK)
            return st;
    }
    profile_mark(m, KILN_PROFILE_BEFORE_EPOCH, &mark);

    /* 2. Batches. */
    int64_t batch_no = 0;
    while (kiln_stream_next(m->stream, &m->batch)) {
        profile_mark(m, KILN_PROFILE_READ_DATA, &mark);
        batch_no++;
        m->received_first_batch = true;
        m->in_batch = true;
        if ((st = dispatch(m, KILN_CALLBACK_BEFORE_BATCH)) != KILN_OK)
            return st;
        profile_mark(m, KILN_PROFILE_BEFORE_BATCH, &mark);
        int64_t it = m->iterations_done + 1;
        st = kiln_main_loop_bind_batch(&m->binding, m->program, &m->batch, &m->err);
        if (st != KILN_OK) {
            char copy[KILN_ERRMSG_MAX];
            kiln_snprintf(copy, sizeof copy, "%s", m->err.msg);
            return kiln_err_set(&m->err, st, "iteration %lld (epoch %lld, batch %lld of %lld): %s",
                                (long long)it, (long long)epoch, (long long)batch_no,
                                (long long)n_batches, copy);
        }
        if ((st = kiln_program_train_step(m->program, m->batch.size)) != KILN_OK)
            return kiln_err_set(&m->err, st,
                                "iteration %lld (epoch %lld, batch %lld of %lld, %lld examples): "
                                "train_step failed: %s",
                                (long long)it, (long long)epoch, (long long)batch_no,
                                (long long)n_batches, (long long)m->batch.size,
                                kiln_program_errmsg(m->program));
        m->iterations_done = it;
        profile_mark(m, KILN_PROFILE_TRAIN_STEP, &mark);
        if ((st = dispatch(m, KILN_CALLBACK_AFTER_BATCH)) != KILN_OK)
            return st;
        m->in_batch = false;
        bool done = finish_requested(m);
        profile_mark(m, KILN_PROFILE_AFTER_BATCH, &mark);
        st = log_advance(m, false);
        profile_mark(m, KILN_PROFILE_LOG, &mark);
        if (st != KILN_OK)
            return st;
        if (done) {
            *finish = true;
            return KILN_OK;
        }
    }
    m->in_batch = false;
    if ((st = kiln_stream_status(m->stream)) != KILN_OK) /* an error, not the end of the epoch */
        return kiln_err_set(&m->err, st, "epoch %lld, after batch %lld: data stream: %s", (long long)epoch,
                            (long long)batch_no, kiln_stream_errmsg(m->stream));
    if (batch_no == 0 && !resumed)
        return kiln_err_set(&m->err, KILN_ERR_STATE,
                            "epoch %lld: epoch iterator yielded zero batches (dataset has %lld "
                            "examples)",
                            (long long)epoch,
                            (long long)kiln_dataset_example_count(kiln_stream_dataset(m->stream)));

    /* 3. End of epoch. */
    m->epoch_started = false;
    m->epochs_done++;
    if ((st = dispatch(m, KILN_CALLBACK_AFTER_EPOCH)) != KILN_OK)
        return st;
    *finish = finish_requested(m);
    profile_mark(m, KILN_PROFILE_AFTER_EPOCH, &mark);
    return log_advance(m, false);
}

/* Plan: 1. refuse a loop that cannot run; 2. re-check bindings and
** extensions; 3. before_training; 4. epochs until a finish request;
** 5. training_finished and after_training; on any error, got_exception and
** on_error. */
enum kiln_status kiln_main_loop_run(kiln_main_loop *m)
{
    KILN_API_CHECK(m);
    if (!m)
        return KILN_ERR_ARG;

    /* 1. State. */
    if (!m->program || !m->stream)
        return m->err.status != KILN_OK
                   ? m->err.status
                   : kiln_err_set(&m->err, KILN_ERR_ARG, "main loop: no program");
    if (m->finished)
        return kiln_err_set(&m->err, KILN_ERR_STATE,
                            "main loop: training has finished (iteration %lld); create a new loop",
                            (long long)m->iterations_done);
    if (m->failed)
        return kiln_err_set(&m->err, KILN_ERR_STATE,
                            "main loop: a previous run failed at iteration %lld; create a new loop",
                            (long long)m->iterations_done);
    if (m->config_err.status != KILN_OK)
        return kiln_err_set(&m->err, m->config_err.status, "main loop: %s", m->config_err.msg);
    kiln_err_clear(&m->err);

    /* 2. Checks that the dataset or program may have outgrown since create. */
    enum kiln_status st =
        kiln_main_loop_bind_stream(&m->binding, m->program, m->stream, NULL, &m->err);
    for (int i = 0; st == KILN_OK && i < m->n_exts; i++)
        st = attach_extension(m, m->exts[i]);
    if (st != KILN_OK)
        return st; /* nothing has run: the loop may be fixed and run again */

    /* 3. Before training. */
    m->training_started = true;
    double start = m->profile ? profile_now() : 0.0, mark = start;
    st = dispatch(m, KILN_CALLBACK_BEFORE_TRAINING);
    if (st == KILN_OK && m->iterations_done > 0) /* Blocks: a loaded run resumes */
        st = dispatch(m, KILN_CALLBACK_ON_RESUMPTION);
    profile_mark(m, KILN_PROFILE_BEFORE_TRAINING, &mark);

    /* 4. Epochs. */
    bool finish = false;
    while (st == KILN_OK && !finish)
        st = run_epoch(m, &finish);

    /* 5. The end, either way. */
    if (st == KILN_OK) {
        mark = m->profile ? profile_now() : 0.0;
        st = kiln_main_loop_set_log(m, "training_finished", KILN_LOG_BOOL, 1.0);
        if (st == KILN_OK)
            st = dispatch(m, KILN_CALLBACK_AFTER_TRAINING);
        profile_mark(m, KILN_PROFILE_AFTER_TRAINING, &mark);
        if (st == KILN_OK)
            st = log_advance(m, true);
    }
    if (st != KILN_OK) {
        kiln_err saved = m->err;
        m->failed = true;
        m->in_batch = false;
        kiln_log_set(&m->log, m->iterations_done, "got_exception", KILN_LOG_BOOL, 1.0);
        dispatch(m, KILN_CALLBACK_ON_ERROR);
        kiln_log_advance(&m->log, m->iterations_done, m->epochs_done, true);
        m->err = saved;
    } else {
        m->finished = true;
    }
    if (m->profile)
        profile_report(m, profile_now() - start);
    return st;
}
