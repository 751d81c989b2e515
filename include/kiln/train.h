/* kiln/train.h: the main loop, its log and its extensions (as in Blocks).
**
** A main loop runs a program's train_step over a stream, epoch after epoch,
** and calls its extensions on their triggers; extensions talk through the log
** (status: epochs_done, iterations_done, ...; one row of records per
** iteration). Stream sources bind to program inputs by name: a program input
** with no source of that name, or a source of the wrong dtype or size, is an
** error that names both. */
#ifndef KILN_TRAIN_H
#define KILN_TRAIN_H

#include <stdio.h>

#include "compile.h"
#include "config.h"
#include "data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_main_loop kiln_main_loop;
typedef struct kiln_extension kiln_extension;

/* Training loop over stream with program. The loop keeps both alive (they
** may be destroyed before it); it drives them alone while it runs. *out
** caller-owned, set even on failure (NULL only when OOM).
** The configuration (kiln_config_load: ~/.kilnrc or KILN_CONFIG, KILN_<KEY>
** variables) chooses the log backend (log_backend, sqlite_database) and the
** profile (profile); a configuration that does not load, or an SQLite log
** that cannot be opened, fails here with its message. */
KILN_API enum kiln_status kiln_main_loop_create(kiln_program *p, kiln_stream *stream,
                                                kiln_main_loop **out);
/* The same with the configuration cfg (borrowed: read here only) instead of
** the one kiln_config_load reads; NULL: the defaults alone (an in-memory log,
** no profile), whatever the file and environment say. */
KILN_API enum kiln_status kiln_main_loop_create_with_config(kiln_program *p, kiln_stream *stream,
                                                            kiln_config *cfg,
                                                            kiln_main_loop **out);
KILN_API void kiln_main_loop_destroy(kiln_main_loop *m);
KILN_API const char *kiln_main_loop_errmsg(const kiln_main_loop *m);
/* Takes ownership of ext (also on failure), unless ext belongs to a loop
** already (this one or another): then KILN_ERR_ARG and ext stays its
** owner's. Extensions run in order added.
** ext is checked against m here and again when a run starts (an extension
** built from bad arguments; DataStreamMonitoring's variables and stream). */
KILN_API enum kiln_status kiln_main_loop_add_extension(kiln_main_loop *m, kiln_extension *ext);
/* Run until an extension requests the end. Errors from the program, the
** stream or an extension are copied into m's message, which names the
** iteration and what failed; the current row then gets got_exception = True
** and on_error extensions run. An epoch with no batch is an error. A loop
** that finished or failed does not run again (KILN_ERR_STATE); one whose
** checks failed before training started (bindings, extensions) may. */
KILN_API enum kiln_status kiln_main_loop_run(kiln_main_loop *m);

/* Status and log. */
KILN_API int64_t kiln_main_loop_epochs_done(const kiln_main_loop *m);
KILN_API int64_t kiln_main_loop_iterations_done(const kiln_main_loop *m);
/* A numeric record of the current (latest) row; KILN_ERR_NOT_FOUND if absent.
** Booleans read as 1 or 0; a text record is KILN_ERR_ARG (read it with
** kiln_main_loop_record_text). */
KILN_API enum kiln_status kiln_main_loop_last_record(const kiln_main_loop *m, const char *key,
                                                     double *out);
/* A record of the row of iteration `iteration`. */
KILN_API enum kiln_status kiln_main_loop_record(const kiln_main_loop *m, int64_t iteration,
                                                const char *key, double *out);

/* ---- Extensions ---------------------------------------------------------- */

/* FinishAfter: request the end after n epochs or n batches (0 = unused). */
KILN_API kiln_extension *kiln_finish_after(int64_t after_n_epochs, int64_t after_n_batches);
/* Printing to out (NULL: stdout), Blocks' format, before the first epoch,
** after every epoch and after training. out is borrowed: it must stay open
** while the extension lives. */
KILN_API kiln_extension *kiln_printing(FILE *out);
/* DataStreamMonitoring: evaluate variables (the program's cost or monitors)
** over one epoch of stream (kept alive by the extension), before the first
** epoch and after every epoch; record `<prefix>_<name>` = mean of
** per-batch values, each batch weighted equally (Blocks' default).
** variables and prefix are copied; prefix may be NULL. A NULL variables or
** stream gives an extension carrying the error (add_extension fails). */
KILN_API kiln_extension *kiln_data_stream_monitoring(const kiln_node *variables, int n,
                                                     kiln_stream *stream, const char *prefix);
/* ProgressBar: a bar on out (NULL: stderr) during each epoch, only when out
** is a terminal; elsewhere it writes nothing. out is borrowed: it must stay
** open while the extension lives. */
KILN_API kiln_extension *kiln_progress_bar(FILE *out);

/* ---- Hyperparameters between steps ----------------------------------------
**
** A step rule's hyperparameters (learning rate, momentum, decay rates, ...)
** and a value modifier's bounds are states of the program (compile.h), named
** "<owner>.<name>"; these extensions set one by name (any name
** kiln_program_find_state takes: "learning_rate" when only one state has
** that name, "/step_rule/adam.learning_rate", "1_basic_momentum.momentum")
** between steps, and the next step uses the new value: nothing recompiles.
** The name is checked when the extension is added and when a run starts
** (an unknown, ambiguous or non-scalar state is an error naming it); a value
** outside the hyperparameter's range stops the run with the rule's message. */

/* Blocks' SharedVariableModifier(parameter, function): after every batch
** (Blocks' default trigger), state = fn(iterations_done, old value, user).
** Blocks' one-argument function is one that ignores the old value. user is
** handed to fn; free_user (may be NULL) is called on it when the extension
** is freed (also when this fails). state is copied. An extension named
** "SharedVariableModifier"; NULL only when out of memory. */
typedef double (*kiln_modifier_fn)(int64_t iterations_done, double old_value, void *user);
KILN_API kiln_extension *kiln_shared_variable_modifier(const char *state, kiln_modifier_fn fn, void *user,
                                                       void (*free_user)(void *user));

/* brainstorm's schedules (brainstorm.training.schedules), as values of n =
** current // interval, current the epochs or updates done:
**   Linear(initial_value, final_value, num_changes): initial + (final -
**        initial) / num_changes * n, final once n > num_changes
**        (num_changes > 0)
**   Exponential(initial_value, factor, minimum = -inf, maximum = inf):
**        initial factor^n, clipped to [minimum, maximum] (minimum <= maximum)
**   MultiStep(initial_value, steps, values): initial before steps[0],
**        values[i] from steps[i] until steps[i + 1] (steps non-decreasing,
**        >= 0; interval 1 only, as brainstorm asserts)
** steps and values are borrowed until kiln_modify_stepper_attribute, which
** copies them. */
enum kiln_schedule_kind { KILN_SCHEDULE_NONE, KILN_SCHEDULE_LINEAR, KILN_SCHEDULE_EXPONENTIAL,
                          KILN_SCHEDULE_MULTISTEP };
typedef struct kiln_schedule {
    enum kiln_schedule_kind kind;
    double initial_value, final_value; /* Linear: final_value; every kind: initial_value */
    int64_t num_changes;               /* Linear */
    double factor, minimum, maximum;   /* Exponential */
    const int64_t *steps;              /* MultiStep */
    const double *values;
    int n_steps;
} kiln_schedule;
static inline kiln_schedule kiln_schedule_linear(double initial_value, double final_value, int64_t num_changes)
{
    kiln_schedule s = {KILN_SCHEDULE_LINEAR, initial_value, final_value, num_changes, 0, 0, 0, NULL, NULL, 0};
    return s;
}
static inline kiln_schedule kiln_schedule_exponential(double initial_value, double factor, double minimum,
                                                      double maximum)
{
    kiln_schedule s = {KILN_SCHEDULE_EXPONENTIAL, initial_value, 0, 0, factor, minimum, maximum, NULL, NULL, 0};
    return s;
}
static inline kiln_schedule kiln_schedule_multistep(double initial_value, const int64_t *steps,
                                                    const double *values, int n_steps)
{
    kiln_schedule s = {KILN_SCHEDULE_MULTISTEP, initial_value, 0, 0, 0, 0, 0, steps, values, n_steps};
    return s;
}
/* The schedule's value after `current` epochs or updates, for a hook called
** every `interval` (> 0) of them: brainstorm's schedule(epoch_nr,
** update_nr, timescale, interval). NaN for a schedule or interval that
** kiln_modify_stepper_attribute would refuse. */
KILN_API double kiln_schedule_value(const kiln_schedule *s, int64_t current, int64_t interval);

enum kiln_timescale { KILN_TIMESCALE_EPOCH, KILN_TIMESCALE_UPDATE };
/* brainstorm's ModifyStepperAttribute(schedule, attr_name, timescale,
** interval) hook: before each epoch (KILN_TIMESCALE_EPOCH) or batch
** (KILN_TIMESCALE_UPDATE) whose count of epochs or updates done (0 before
** the first) is a multiple of interval, state = kiln_schedule_value(s, that
** count, interval). brainstorm calls its hooks once before training with
** counts 0 and then after each epoch or update; the value they set is the
** one the next epoch or update uses, as here. An extension named
** "ModifyStepperAttribute" (carrying the error for a bad schedule, timescale
** or interval); NULL only when out of memory. */
KILN_API kiln_extension *kiln_modify_stepper_attribute(const kiln_schedule *s, const char *state,
                                                       enum kiln_timescale timescale, int64_t interval);

/* Destroy an extension that no main loop owns; one added to a loop goes with
** the loop (this does nothing then). NULL: nothing. */
KILN_API void kiln_extension_destroy(kiln_extension *e);


/* ---- Writing extensions (Blocks' SimpleExtension) ------------------------
**
** An extension is a function called on the main loop's callbacks when one of
** its triggers fires (Blocks' conditions). Each trigger that fires calls the
** function once, as Blocks' dispatch does. The built-in extensions above are
** made the same way: their triggers can be replaced with
** kiln_extension_clear_triggers() + kiln_extension_add_trigger(). */

/* The main loop's callbacks, in the order a run calls them. */
enum kiln_callback {
    KILN_CALLBACK_BEFORE_TRAINING,
    KILN_CALLBACK_BEFORE_EPOCH,
    KILN_CALLBACK_BEFORE_BATCH,
    KILN_CALLBACK_AFTER_BATCH,
    KILN_CALLBACK_AFTER_EPOCH,
    KILN_CALLBACK_AFTER_TRAINING,
    KILN_CALLBACK_ON_ERROR,
    /* Right after before_training when the loop resumes a run (iterations
    ** done > 0: a checkpoint was loaded, checkpoint.h). */
    KILN_CALLBACK_ON_RESUMPTION,
    /* When a run is interrupted (Blocks' SIGINT / SIGTERM handling). */
    KILN_CALLBACK_ON_INTERRUPT
};

/* Triggers (Blocks' trigger keywords). The *_N_* ones take n > 0 and fire on
** after_epoch (epochs_done == n, or % n == 0) or after_batch
** (iterations_done == n, or % n == 0); BEFORE_FIRST_EPOCH is before_epoch
** while epochs_done == 0; the others fire on their callback. */
enum kiln_trigger {
    KILN_TRIGGER_BEFORE_TRAINING,
    KILN_TRIGGER_BEFORE_FIRST_EPOCH,
    KILN_TRIGGER_BEFORE_EPOCH,
    KILN_TRIGGER_BEFORE_BATCH,
    KILN_TRIGGER_AFTER_BATCH,
    KILN_TRIGGER_AFTER_EPOCH,
    KILN_TRIGGER_AFTER_TRAINING,
    KILN_TRIGGER_ON_ERROR,
    KILN_TRIGGER_AFTER_N_EPOCHS,
    KILN_TRIGGER_EVERY_N_EPOCHS,
    KILN_TRIGGER_AFTER_N_BATCHES,
    KILN_TRIGGER_EVERY_N_BATCHES,
    KILN_TRIGGER_ON_RESUMPTION,
    KILN_TRIGGER_ON_INTERRUPT
};

/* Blocks' do(which_callback): return KILN_OK, or a status after recording the
** reason with kiln_extension_fail(e, ...); the loop then stops and m's message
** names the extension, the callback and the iteration. */
typedef enum kiln_status (*kiln_extension_fn)(kiln_extension *e, kiln_main_loop *m,
                                              enum kiln_callback which, void *user);

/* A user extension named name (copied; NULL: "extension"), calling fn with
** user. user is the caller's, handed to fn; free_user (may be NULL) is
** called on it when the extension is freed (also when this fails). fn NULL
** gives an extension carrying the error. No triggers yet. NULL only when
** out of memory. */
KILN_API kiln_extension *kiln_extension_create(const char *name, kiln_extension_fn fn,
                                               void *user, void (*free_user)(void *user));
/* Add a trigger; n is used only by the *_N_* triggers (n > 0). KILN_ERR_ARG,
** KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_extension_add_trigger(kiln_extension *e, enum kiln_trigger t,
                                                     int64_t n);
/* Remove every trigger (Blocks' set_conditions() with none). */
KILN_API void kiln_extension_clear_triggers(kiln_extension *e);
/* Name (borrowed): the one given, or the class name ("FinishAfter",
** "Printing", "DataStreamMonitoring", "ProgressBar", "SharedVariableModifier",
** "ModifyStepperAttribute"). */
KILN_API const char *kiln_extension_name(const kiln_extension *e);
KILN_API const char *kiln_extension_errmsg(const kiln_extension *e);
/* Record why e failed (printf format); returns status. */
KILN_API enum kiln_status kiln_extension_fail(kiln_extension *e, enum kiln_status status,
                                              const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The extension of m with this name (borrowed, valid while m lives), NULL
** when none. */
KILN_API kiln_extension *kiln_main_loop_find_extension(const kiln_main_loop *m, const char *name);
/* m's program and stream (borrowed, valid while m lives). */
KILN_API kiln_program *kiln_main_loop_program(const kiln_main_loop *m);
KILN_API kiln_stream *kiln_main_loop_stream(const kiln_main_loop *m);
/* The batch being processed (borrowed), in before_batch and after_batch;
** NULL elsewhere. */
KILN_API const kiln_batch *kiln_main_loop_current_batch(const kiln_main_loop *m);

/* Write a record into the current row (iteration iterations_done). key is
** copied (1..KILN_MAX_NAME characters). Booleans print True/False, floats as
** Python 2 prints them. Writing training_finish_requested = true ends
** training after the current batch or epoch. KILN_ERR_ARG, KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_main_loop_set_record(kiln_main_loop *m, const char *key,
                                                    double value);
KILN_API enum kiln_status kiln_main_loop_set_record_bool(kiln_main_loop *m, const char *key,
                                                         bool value);
/* Whether row `iteration` has record key, and whether it is a boolean. */
KILN_API bool kiln_main_loop_has_record(const kiln_main_loop *m, int64_t iteration,
                                        const char *key, bool *is_bool);

/* ---- Log backends (Blocks' TrainingLog and SQLiteLog) ---------------------
**
** Records are numbers, booleans and text (paths: Blocks' SAVED_TO,
** LOADED_FROM; timestamp), read back with the same calls whichever backend
** holds them. The SQLite log is a file the sqlite3 shell can query while
** training runs; docs/guide.md ("The training log") gives its schema. */

enum kiln_log_backend { KILN_LOG_BACKEND_MEMORY, KILN_LOG_BACKEND_SQLITE };
enum kiln_record_kind { KILN_RECORD_NONE, KILN_RECORD_NUMBER, KILN_RECORD_BOOL, KILN_RECORD_TEXT };

/* Keep m's log in backend: memory, or the SQLite file path (copied; created
** when absent). A file that holds a kiln log already is continued: its
** records stay readable and m's status (iterations_done, epochs_done) goes on
** from the file's, as resuming a run needs. Only before m's first run, and
** while the in-memory log is empty (KILN_ERR_STATE). A file that is not a
** kiln log, or a damaged one, is KILN_ERR_FORMAT with a message naming the
** file and what is wrong; one that cannot be opened, KILN_ERR_IO. On failure
** m keeps the log it had. path is ignored for memory. */
KILN_API enum kiln_status kiln_main_loop_set_log_backend(kiln_main_loop *m,
                                                         enum kiln_log_backend backend,
                                                         const char *path);
KILN_API enum kiln_log_backend kiln_main_loop_log_backend(const kiln_main_loop *m);
/* Write a text record into the current row (text copied, at most 4096
** bytes; printed as it is). KILN_ERR_ARG, KILN_ERR_NOMEM, and a file's
** KILN_ERR_IO. */
KILN_API enum kiln_status kiln_main_loop_set_record_text(kiln_main_loop *m, const char *key,
                                                         const char *text);
/* A text record of row `iteration`: *out borrowed until the next call on m.
** KILN_ERR_NOT_FOUND if absent, KILN_ERR_ARG if the record is not text. */
KILN_API enum kiln_status kiln_main_loop_record_text(kiln_main_loop *m, int64_t iteration,
                                                     const char *key, const char **out);
/* What record key of row `iteration` holds; KILN_RECORD_NONE if absent. */
KILN_API enum kiln_record_kind kiln_main_loop_record_kind(const kiln_main_loop *m,
                                                          int64_t iteration, const char *key);

/* ---- Profile (Blocks' profile setting) -------------------------------------
**
** Sections of a run whose time is measured when profiling is on. */
enum kiln_profile_section {
    KILN_PROFILE_BEFORE_TRAINING, /* before_training extensions */
    KILN_PROFILE_BEFORE_EPOCH,    /* stream reset and before_epoch extensions */
    KILN_PROFILE_READ_DATA,       /* the stream's next batch */
    KILN_PROFILE_BEFORE_BATCH,    /* before_batch extensions */
    KILN_PROFILE_TRAIN_STEP,      /* binding the batch and train_step */
    KILN_PROFILE_AFTER_BATCH,     /* after_batch extensions and the finish check */
    KILN_PROFILE_LOG,             /* the log's commits (SQLite) */
    KILN_PROFILE_AFTER_EPOCH,     /* after_epoch extensions */
    KILN_PROFILE_AFTER_TRAINING,  /* after_training extensions */
    KILN_PROFILE_N_SECTIONS
};
/* Turn profiling on or off (default: the configuration's `profile`). When on,
** kiln_main_loop_run writes a table of seconds, share and calls per section
** to out (NULL: stderr; borrowed, open while m lives) when it returns. */
KILN_API enum kiln_status kiln_main_loop_set_profile(kiln_main_loop *m, bool on, FILE *out);
/* Seconds spent in section s over m's runs (0 when profiling was off), and
** how many times it ran. */
KILN_API double kiln_main_loop_profile_seconds(const kiln_main_loop *m,
                                               enum kiln_profile_section s, int64_t *calls);

#ifdef __cplusplus
}
#endif
#endif
