/* tracking.c: extensions that watch the run rather than the model: Blocks'
** Timing and Timestamp, TrackTheBest, and stopping.FinishIfNoImprovementAfter
** and EarlyStopping (a CompositeExtension of the two before it).
**
** Timing reads the loop's running totals of seconds in train_step and in
** reading batches (mainloop.c keeps them whatever the profile setting, as
** Blocks' profile always runs) and, per level (batch, epoch), the totals
** and counter at its previous call, so a trigger every n batches or epochs
** records the mean over those n, as Blocks' does.
**
** TrackTheBest keeps the best value in its state (Blocks keeps it in the
** log's status, which kiln's log has no place for); a loop that resumes
** (iterations_done > 0 when a run starts) recovers it from the log, where
** the notification marks every row holding a new best.
**
** FinishIfNoImprovementAfter is Blocks' with one change: it requests the
** end when the patience reaches 0 or less, not exactly 0 (a trigger
** coarser than its measure, after_epoch with `iterations`, would step over
** 0 and never stop). Its last best (Blocks' last_best_iter and
** last_best_epoch, pickled with the loop there) is recovered from the log
** the same way when a loop resumes (#8): the iteration is the latest row
** with the notification; the epoch is found from the patience it recorded
** last, patience = epochs - (epochs_done - last_best_epoch), taking that
** row's epochs_done to be the loop's (it ran at the latest epoch's end: its
** default trigger, and EarlyStopping's). Without this a resumed run waited
** for a new best before counting, and trained longer than one that never
** stopped. */
#include "runtime/mainloop.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* ---- Timing --------------------------------------------------------------------- */

enum { LEVEL_BATCH, LEVEL_EPOCH, N_LEVELS };

typedef struct timing_state {
    char prefix[KILN_MAX_NAME + 2]; /* "" or "<prefix>_" */
    double prev_total[N_LEVELS][2]; /* [level][train, read_data] at the last call */
    int64_t prev_index[N_LEVELS];   /* iterations_done or epochs_done then */
} timing_state;

static void free_state(kiln_extension *e)
{
    free(e->state);
}

static enum kiln_status timing_set(kiln_extension *e, kiln_main_loop *m, const char *fmt_a,
                                   const char *action, const char *level, double v)
{
    timing_state *s = e->state;
    char key[3 * KILN_MAX_NAME];
    if (kiln_snprintf(key, sizeof key, fmt_a, s->prefix, action, level) != 0 ||
        strlen(key) > KILN_MAX_NAME)
        return kiln_extension_fail(e, KILN_ERR_ARG, "record name '%s...' is too long", key);
    enum kiln_status st = kiln_main_loop_set_log(m, key, KILN_LOG_FLOAT, v);
    return st == KILN_OK ? KILN_OK : kiln_extension_fail(e, st, "%s", m->err.msg);
}

/* Plan (Blocks' Timing.do): before the first epoch, time_initialization;
** after a batch or epoch, per action the time since the last call at that
** level over the batches or epochs since, and the total. */
static enum kiln_status timing_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    timing_state *s = e->state;
    if (which == KILN_CALLBACK_BEFORE_EPOCH)
        return kiln_main_loop_set_log(m, "time_initialization", KILN_LOG_FLOAT,
                                      m->time_initialization) == KILN_OK
                   ? KILN_OK
                   : kiln_extension_fail(e, m->err.status, "%s", m->err.msg);
    int level;
    int64_t index;
    if (which == KILN_CALLBACK_AFTER_BATCH) {
        level = LEVEL_BATCH;
        index = m->iterations_done;
    } else if (which == KILN_CALLBACK_AFTER_EPOCH) {
        level = LEVEL_EPOCH;
        index = m->epochs_done;
    } else {
        return kiln_extension_fail(e, KILN_ERR_ARG,
                                   "Timing runs after a batch or an epoch, or before the first "
                                   "epoch, not in %s", kiln_main_loop_callback_name(which));
    }
    if (index == s->prev_index[level]) /* called twice at one count: nothing new */
        return KILN_OK;
    static const char *const actions[2] = {"train", "read_data"};
    const double totals[2] = {m->time_train, m->time_read_data};
    const char *lname = level == LEVEL_BATCH ? "batch" : "epoch";
    for (int a = 0; a < 2; a++) {
        double per = (totals[a] - s->prev_total[level][a]) / (double)(index - s->prev_index[level]);
        enum kiln_status st = timing_set(e, m, "%stime_%s_this_%s", actions[a], lname, per);
        if (st == KILN_OK)
            st = timing_set(e, m, "%stime_%s_total%s", actions[a], "", totals[a]);
        if (st != KILN_OK)
            return st;
        s->prev_total[level][a] = totals[a];
    }
    s->prev_index[level] = index;
    return KILN_OK;
}

static const kiln_extension_ops TIMING_OPS = {NULL, timing_run, free_state, NULL};

kiln_extension *kiln_timing(const char *prefix)
{
    timing_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    kiln_extension *e = kiln_extension_new("Timing", &TIMING_OPS, s);
    if (!e)
        return NULL;
    if (prefix && prefix[0] && kiln_snprintf(s->prefix, sizeof s->prefix, "%s_", prefix) != 0) {
        kiln_err_set(&e->err, KILN_ERR_ARG, "prefix '%.32s...' is longer than %d characters", prefix,
                     KILN_MAX_NAME);
        return e;
    }
    kiln_extension_add_triggers(e, (const enum kiln_trigger[]){KILN_TRIGGER_BEFORE_FIRST_EPOCH,
                                    KILN_TRIGGER_AFTER_EPOCH}, 2);
    return e;
}

/* ---- Timestamp ------------------------------------------------------------------ */

typedef struct timestamp_state {
    char record[KILN_MAX_NAME + 1];
    char separator[8];
} timestamp_state;

/* Python's datetime.now().isoformat(sep): YYYY-MM-DD<sep>HH:MM:SS[.ffffff]. */
static enum kiln_status timestamp_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    (void)which;
    timestamp_state *s = e->state;
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    time_t t = tv.tv_sec;
    if (!localtime_r(&t, &tm))
        return kiln_extension_fail(e, KILN_ERR_STATE, "the local time is not known");
    char date[32], text[80];
    strftime(date, sizeof date, "%Y-%m-%d", &tm);
    int n = snprintf(text, sizeof text, "%s%s%02d:%02d:%02d", date, s->separator, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
    if (tv.tv_usec && n > 0 && (size_t)n < sizeof text)
        snprintf(text + n, sizeof text - (size_t)n, ".%06ld", (long)tv.tv_usec);
    enum kiln_status st = kiln_main_loop_set_record_text(m, s->record, text);
    return st == KILN_OK ? KILN_OK : kiln_extension_fail(e, st, "%s", kiln_main_loop_errmsg(m));
}

static const kiln_extension_ops TIMESTAMP_OPS = {NULL, timestamp_run, free_state, NULL};

kiln_extension *kiln_timestamp(const char *log_record, const char *separator)
{
    timestamp_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    kiln_extension *e = kiln_extension_new("Timestamp", &TIMESTAMP_OPS, s);
    if (!e)
        return NULL;
    if (!log_record)
        log_record = "timestamp";
    if (!separator)
        separator = " ";
    if (!log_record[0] || kiln_snprintf(s->record, sizeof s->record, "%s", log_record) != 0 ||
        kiln_snprintf(s->separator, sizeof s->separator, "%s", separator) != 0) {
        kiln_err_set(&e->err, KILN_ERR_ARG,
                     "log_record must have 1 to %d characters, separator at most %d",
                     KILN_MAX_NAME, (int)sizeof s->separator - 1);
        return e;
    }
    kiln_extension_add_triggers(e, (const enum kiln_trigger[]){KILN_TRIGGER_BEFORE_TRAINING,
                                    KILN_TRIGGER_AFTER_EPOCH, KILN_TRIGGER_ON_ERROR,
                                    KILN_TRIGGER_ON_INTERRUPT, KILN_TRIGGER_ON_RESUMPTION,
                                    KILN_TRIGGER_AFTER_TRAINING}, 6);
    return e;
}

/* ---- TrackTheBest --------------------------------------------------------------- */

typedef struct best_state {
    char record[KILN_MAX_NAME + 1];
    char notification[KILN_MAX_NAME + 1];
    bool maximize;
    bool has_best;
    double best;
} best_state;

/* A resumed loop: the best is record in the latest row with the notification. */
static enum kiln_status best_attach(kiln_extension *e, kiln_main_loop *m)
{
    best_state *s = e->state;
    if (s->has_best || m->training_started || m->iterations_done == 0)
        return KILN_OK;
    for (int64_t it = m->iterations_done; it >= 0 && !s->has_best; it--) {
        const kiln_log_record *n = kiln_log_get(&m->log, it, s->notification);
        const kiln_log_record *r = n ? kiln_log_get(&m->log, it, s->record) : NULL;
        if (r && r->kind != KILN_LOG_TEXT) {
            s->best = r->value;
            s->has_best = true;
        }
    }
    return KILN_OK;
}

/* Plan (Blocks' TrackTheBest.do): no record, nothing; a first value, or one
** that differs from the best and that choose_best prefers, is the new best
** and gets the notification. */
static enum kiln_status best_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    (void)which;
    best_state *s = e->state;
    const kiln_log_record *r = kiln_log_get(&m->log, m->iterations_done, s->record);
    if (!r)
        return KILN_OK;
    if (r->kind == KILN_LOG_TEXT)
        return kiln_extension_fail(e, KILN_ERR_ARG, "record '%s' is text, not a number", s->record);
    double v = r->value;
    bool better = s->maximize ? v > s->best : v < s->best;
    if (s->has_best && (v == s->best || !better))
        return KILN_OK;
    s->best = v;
    s->has_best = true;
    enum kiln_status st = kiln_main_loop_set_log(m, s->notification, KILN_LOG_BOOL, 1.0);
    return st == KILN_OK ? KILN_OK : kiln_extension_fail(e, st, "%s", m->err.msg);
}

static const kiln_extension_ops BEST_OPS = {best_attach, best_run, free_state, NULL};

kiln_extension *kiln_track_the_best(const char *record_name, const char *notification_name,
                                    bool maximize)
{
    best_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    kiln_extension *e = kiln_extension_new("TrackTheBest", &BEST_OPS, s);
    if (!e)
        return NULL;
    s->maximize = maximize;
    int bad = !record_name || !record_name[0] ||
              kiln_snprintf(s->record, sizeof s->record, "%s", record_name) != 0;
    if (!bad)
        bad = notification_name && notification_name[0]
                  ? kiln_snprintf(s->notification, sizeof s->notification, "%s", notification_name)
                  : kiln_snprintf(s->notification, sizeof s->notification, "%s_best_so_far",
                                  record_name);
    if (bad) {
        kiln_err_set(&e->err, KILN_ERR_ARG,
                     "record_name %s: it and the notification name need 1 to %d characters",
                     record_name ? "too long or empty" : "is NULL", KILN_MAX_NAME);
        return e;
    }
    kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_EPOCH, 0);
    return e;
}

enum kiln_status kiln_track_the_best_value(const kiln_extension *e, double *best)
{
    KILN_API_CHECK(e && best);
    if (!e || !best || e->ops != &BEST_OPS)
        return KILN_ERR_ARG;
    const best_state *s = e->state;
    if (!s->has_best)
        return KILN_ERR_NOT_FOUND;
    *best = s->best;
    return KILN_OK;
}

/* ---- FinishIfNoImprovementAfter ------------------------------------------------ */

typedef struct patience_state {
    char notification[KILN_MAX_NAME + 1];
    char record[KILN_MAX_NAME + 1];
    int64_t iterations, epochs;
    bool seen;
    int64_t last_best_iter, last_best_epoch;
} patience_state;

/* Plan (Blocks' do): a notification in the current row is a new best; none
** seen yet, nothing; else record the patience left and request the end
** when none is. */
static enum kiln_status patience_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    (void)which;
    patience_state *s = e->state;
    if (kiln_log_get(&m->log, m->iterations_done, s->notification)) {
        s->seen = true;
        s->last_best_iter = m->iterations_done;
        s->last_best_epoch = m->epochs_done;
    }
    if (!s->seen)
        return KILN_OK;
    int64_t patience = s->epochs > 0 ? s->epochs - (m->epochs_done - s->last_best_epoch)
                                     : s->iterations - (m->iterations_done - s->last_best_iter);
    enum kiln_status st = kiln_main_loop_set_log(m, s->record, KILN_LOG_INT, (double)patience);
    if (st == KILN_OK && patience <= 0)
        st = kiln_main_loop_set_log(m, "training_finish_requested", KILN_LOG_BOOL, 1.0);
    return st == KILN_OK ? KILN_OK : kiln_extension_fail(e, st, "%s", m->err.msg);
}

/* A resumed loop (as TrackTheBest's attach): the last best from the log. */
static enum kiln_status patience_attach(kiln_extension *e, kiln_main_loop *m)
{
    patience_state *s = e->state;
    if (s->seen || m->training_started || m->iterations_done == 0)
        return KILN_OK;
    const kiln_log_record *left = NULL;
    for (int64_t it = m->iterations_done; it >= 0 && !s->seen; it--) {
        if (!left)
            left = kiln_log_get(&m->log, it, s->record);
        if (kiln_log_get(&m->log, it, s->notification)) {
            s->seen = true;
            s->last_best_iter = it;
        }
    }
    if (s->seen)
        s->last_best_epoch = left && left->kind != KILN_LOG_TEXT
                                 ? m->epochs_done - (s->epochs - (int64_t)left->value)
                                 : m->epochs_done;
    return KILN_OK;
}

static const kiln_extension_ops PATIENCE_OPS = {patience_attach, patience_run, free_state, NULL};

kiln_extension *kiln_finish_if_no_improvement_after(const char *notification_name,
                                                    int64_t iterations, int64_t epochs,
                                                    const char *patience_log_record)
{
    patience_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    kiln_extension *e = kiln_extension_new("FinishIfNoImprovementAfter", &PATIENCE_OPS, s);
    if (!e)
        return NULL;
    if (iterations < 0 || epochs < 0 || (iterations > 0) == (epochs > 0)) {
        kiln_err_set(&e->err, KILN_ERR_ARG,
                     "iterations = %lld, epochs = %lld: need exactly one of epochs or iterations "
                     "(> 0; the other 0)",
                     (long long)iterations, (long long)epochs);
        return e;
    }
    s->iterations = iterations;
    s->epochs = epochs;
    int bad = !notification_name || !notification_name[0] ||
              kiln_snprintf(s->notification, sizeof s->notification, "%s", notification_name) != 0;
    if (!bad)
        bad = patience_log_record && patience_log_record[0]
                  ? kiln_snprintf(s->record, sizeof s->record, "%s", patience_log_record)
                  : kiln_snprintf(s->record, sizeof s->record, "%s_patience_%s", notification_name,
                                  epochs > 0 ? "epochs" : "iterations");
    if (bad) {
        kiln_err_set(&e->err, KILN_ERR_ARG,
                     "notification_name %s: it and the patience record need 1 to %d characters",
                     notification_name ? "too long or empty" : "is NULL", KILN_MAX_NAME);
        return e;
    }
    kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_EPOCH, 0);
    return e;
}

/* ---- EarlyStopping --------------------------------------------------------------- */

static enum kiln_status early_stopping_do(kiln_extension *e, kiln_main_loop *m,
                                          enum kiln_callback which, void *user)
{
    (void)e;
    (void)m;
    (void)which;
    (void)user;
    return KILN_OK; /* Blocks arranges its checkpoint here; kiln's has its own trigger */
}

kiln_extension *kiln_early_stopping(const char *record_name, const char *notification_name,
                                    bool maximize, int64_t iterations, int64_t epochs)
{
    char note[KILN_MAX_NAME + 1];
    bool long_name = false;
    if (notification_name && notification_name[0])
        long_name = kiln_snprintf(note, sizeof note, "%s", notification_name) != 0;
    else
        long_name = kiln_snprintf(note, sizeof note, "%s_best_so_far",
                                  record_name ? record_name : "") != 0;
    kiln_extension *subs[2] = {kiln_track_the_best(record_name, note, maximize),
                               kiln_finish_if_no_improvement_after(note, iterations, epochs, NULL)};
    kiln_extension *e = kiln_composite_extension("EarlyStopping", subs, 2, true, early_stopping_do,
                                                 NULL, NULL);
    if (!e)
        return NULL;
    if (e->err.status == KILN_OK && long_name)
        kiln_err_set(&e->err, KILN_ERR_ARG, "notification name '%s...' is longer than %d characters",
                     note, KILN_MAX_NAME);
    for (int i = 0; i < e->n_subs && e->err.status == KILN_OK; i++)
        if (e->subs[i]->err.status != KILN_OK)
            kiln_err_copy(&e->err, &e->subs[i]->err, e->subs[i]->name);
    if (e->err.status == KILN_OK)
        kiln_extension_add_trigger(e, KILN_TRIGGER_BEFORE_TRAINING, 0);
    return e;
}
