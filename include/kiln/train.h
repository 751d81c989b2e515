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
** checks failed before training started (bindings, extensions) may.
**
** Callbacks, in Blocks' order: before_training (first run only), then
** on_resumption when iterations_done > 0 (a loop run again after an
** interrupt, or continuing an SQLite log), then per epoch before_epoch, per
** batch before_batch, train_step, iterations_done += 1, after_batch, the
** finish check; epochs_done += 1, after_epoch, the finish check; at the end
** training_finished = True in the current row and after_training.
**
** Non-finite values: after every train_step the cost is checked, and the
** parameters after every epoch (and every n batches, see
** kiln_main_loop_set_finite_check); a NaN or infinity stops the run with
** KILN_ERR_STATE and a message naming the value (the cost, or the
** parameter's path and element) and the iteration.
**
** Signals (Blocks' behaviour), while run() runs and unless turned off with
** kiln_main_loop_set_signal_handling: a first SIGINT (Ctrl-C) finishes the
** current epoch, a second one the current batch (a third then gets the
** default action: the process ends), SIGTERM finishes the current batch.
** The row where the loop stops gets epoch_interrupt_received or
** batch_interrupt_received = True, on_interrupt extensions run (a checkpoint,
** say), and run() returns KILN_INTERRUPTED with a message saying where it
** stopped; after_training does not run. Such a loop may run again: it goes
** on where it stopped (mid-epoch after a batch interrupt), calling
** on_resumption first. The handlers are installed when run() starts and the
** previous ones restored when it returns; the flags they set are the one
** process-wide state of the main loop (a pair of volatile sig_atomic_t). A
** run that starts while another loop's handlers are installed (a loop run
** from an extension, or in another thread) leaves them alone and reads no
** signal itself. */
KILN_API enum kiln_status kiln_main_loop_run(kiln_main_loop *m);
/* Whether run() handles SIGINT and SIGTERM (above); default true. Set before
** a run. */
KILN_API enum kiln_status kiln_main_loop_set_signal_handling(kiln_main_loop *m, bool on);
/* The non-finite check (kiln_main_loop_run): on (default true) checks the
** cost after every batch and the parameters after every epoch and, when
** params_every_n_batches > 0, after every that many batches (default 0:
** epoch ends only; a check reads every parameter, and at batch size 1 it
** applies the step's deferred updates early). KILN_ERR_ARG for a negative
** count. */
KILN_API enum kiln_status kiln_main_loop_set_finite_check(kiln_main_loop *m, bool on,
                                                          int64_t params_every_n_batches);

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
** after every epoch, after training, on resumption ("TRAINING HAS BEEN
** RESUMED") and on interrupt ("TRAINING HAS BEEN INTERRUPTED", without the
** status, as Blocks prints it). out is borrowed: it must stay open
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
** open while the extension lives. After each batch it redraws one line:
**   Epoch 1, step 3 of 4 ( 75%) |##############################          |
**   Elapsed Time: 0:00:01, 2.9 batches/s, ETA: 0:00:00
** (one line, '\r' before it), the rate being batches of this epoch per
** second of this epoch, the ETA the epoch's remaining batches at that rate. */
KILN_API kiln_extension *kiln_progress_bar(FILE *out);
/* The same bar, drawn whatever out is (a log file, a pipe). */
KILN_API kiln_extension *kiln_progress_bar_always(FILE *out);

/* Timing (Blocks' Timing(prefix)): records, for `level` batch (when
** triggered after a batch) or epoch (after an epoch),
**   <prefix>_time_train_this_<level>      seconds in train_step per batch or
**                                         epoch since the last record
**   <prefix>_time_read_data_this_<level>  the same for reading batches
**   <prefix>_time_train_total, <prefix>_time_read_data_total  over the loop
** (no "<prefix>_" when prefix is NULL or ""), and time_initialization (no
** prefix, as in Blocks) before the first epoch: the seconds run() spent
** checking bindings and extensions before before_training. Averaged over
** the batches or epochs since the last call, as Blocks' every_n_* triggers
** give. Default triggers: before_first_epoch and after_epoch (add
** KILN_TRIGGER_AFTER_BATCH for per-batch times). Put it before Printing. */
KILN_API kiln_extension *kiln_timing(const char *prefix);
/* Timestamp (Blocks' Timestamp(log_record, separator)): a text record
** log_record (NULL: "timestamp") holding the local time as Python's
** datetime.now().isoformat(separator) writes it: "2026-11-29 20:45:39.123456"
** (no fraction when the microseconds are 0). separator: NULL is ' '.
** Default triggers: before_training, after_epoch, on_error, on_interrupt,
** on_resumption, after_training. */
KILN_API kiln_extension *kiln_timestamp(const char *log_record, const char *separator);

/* Aggregation schemes (Blocks' aggregation: how a monitoring extension turns
** per-batch values into one record):
**   MEAN           mean of the batch values, each batch weighted equally
**                  (Blocks' default Mean(v, 1): a short last batch counts
**                  fully)
**   WEIGHTED_MEAN  sum of value * batch size over sum of batch sizes
**                  (Blocks' mean(v * B, B): a mean per example)
**   TAKE_LAST      the last batch's value (Blocks' TakeLast)
**   MINIMUM, MAXIMUM  over the batches (Blocks' Minimum, Maximum) */
enum kiln_aggregation {
    KILN_AGGREGATE_MEAN,
    KILN_AGGREGATE_WEIGHTED_MEAN,
    KILN_AGGREGATE_TAKE_LAST,
    KILN_AGGREGATE_MINIMUM,
    KILN_AGGREGATE_MAXIMUM
};
/* TrainingDataMonitoring (Blocks' TrainingDataMonitoring(variables,
** prefix)): the values of variables that train_step computes before its
** update (the cost, monitors, KILN_TOTAL_GRADIENT_NORM, ...: the program's
** kiln_compile_options.monitors) are read after every batch, whatever the
** triggers, and aggregated; when the extension is triggered it records
** `<prefix>_<name>` = the aggregate over the batches since its last record
** and starts over (nothing when no batch ran since). The default scheme is
** TAKE_LAST, as Blocks' TrainingDataMonitoring takes the last value of a
** variable with no aggregation scheme; kiln_monitoring_set_aggregation
** changes it. Default triggers: before_training (where Blocks sets up its
** buffer; kiln empties it) and after_epoch (as Blocks users pass it).
** variables and prefix are copied. Errors as DataStreamMonitoring's. */
KILN_API kiln_extension *kiln_training_data_monitoring(const kiln_node *variables, int n,
                                                       const char *prefix);
/* The scheme of variable i (in the order given) of a TrainingDataMonitoring
** or DataStreamMonitoring (whose default is MEAN). Set before a run.
** KILN_ERR_ARG: not a monitoring extension, i out of range, unknown scheme. */
KILN_API enum kiln_status kiln_monitoring_set_aggregation(kiln_extension *e, int i,
                                                          enum kiln_aggregation scheme);

/* TrackTheBest (Blocks' TrackTheBest(record_name, notification_name,
** choose_best)): when the current row has record_name and its value is
** better than the best so far (lower; higher when maximize, Blocks'
** choose_best=max) or no best is known, writes notification_name = True
** (NULL: "<record_name>_best_so_far") into the current row and keeps the
** value as the best (Blocks' status "best_<record_name>"). A loop that
** resumes (iterations_done > 0 when the run starts) takes the best from
** the log: record_name in the latest row with the notification. Default
** trigger after_epoch; put it after the extension writing the record. */
KILN_API kiln_extension *kiln_track_the_best(const char *record_name, const char *notification_name,
                                             bool maximize);
/* The best value so far of a TrackTheBest: KILN_ERR_NOT_FOUND when none yet,
** KILN_ERR_ARG when e is not one. */
KILN_API enum kiln_status kiln_track_the_best_value(const kiln_extension *e, double *best);
/* FinishIfNoImprovementAfter (Blocks' stopping.FinishIfNoImprovementAfter(
** notification_name, iterations, epochs, patience_log_record)): when
** triggered, a current row holding notification_name (any value) marks a
** new best; once one was seen, it records the patience left, iterations
** (or epochs) minus those done since the last best, under
** patience_log_record (NULL: "<notification_name>_patience_iterations" or
** "..._patience_epochs"), and requests the end when it reaches 0 or less
** (Blocks tests == 0, which a trigger coarser than the measure steps over).
** Exactly one of iterations and epochs is > 0. Default trigger after_epoch. */
KILN_API kiln_extension *kiln_finish_if_no_improvement_after(const char *notification_name,
                                                             int64_t iterations, int64_t epochs,
                                                             const char *patience_log_record);
/* EarlyStopping (Blocks' stopping.EarlyStopping(record_name,
** notification_name, choose_best, iterations, epochs)): a CompositeExtension
** of TrackTheBest(record_name, notification_name, maximize) and
** FinishIfNoImprovementAfter(notification_name, iterations, epochs), both
** after_epoch, in that order; its own trigger is before_training (where
** Blocks arranges a checkpoint; kiln's own do() does nothing). To save the
** best model, give a checkpoint extension the trigger
** kiln_extension_add_on_log_record(ckpt, KILN_CALLBACK_AFTER_EPOCH,
** "<record_name>_best_so_far") and add it after this one. */
KILN_API kiln_extension *kiln_early_stopping(const char *record_name, const char *notification_name,
                                             bool maximize, int64_t iterations, int64_t epochs);

/* Blocks' Plot(document, channels): a live plot of log records, as a page
** the browser opens from disk (no server, no network). channels is a
** NULL-terminated array of figures, each a NULL-terminated array of log keys
** drawn together (Blocks' [['train_cost', 'test_cost'], ['error_rate']]):
**   static const char *const costs[] = {"train_cost", "test_cost", NULL};
**   static const char *const errors[] = {"error_rate", NULL};
**   static const char *const *const figures[] = {costs, errors, NULL};
**   kiln_plot("MNIST", "run/plot.html", figures);
** Each report adds a point (iterations_done, value) to every channel that
** the log's current row holds. The page is written to path (HTML with
** Debian's Chart.js inlined) and the points to a data file beside it, path
** less ".html" plus ".data.js", rewritten atomically after each report (at
** most once a second for batch triggers); the open page redraws as they
** change. Names are data: any characters are safe. Non-finite values are
** gaps in the curve, named under the figure.
** Triggers: Blocks' (before_first_epoch, after_epoch, after_training),
** on_error and on_interrupt; add KILN_TRIGGER_AFTER_BATCH for a point per batch. Both files
** are written when the extension is added to a main loop (a path in a
** missing folder, or an unreadable library, fails there); a write that
** fails later stops the run. document, path and channels are copied. An
** extension named "Plot" (carrying the error for a NULL or empty argument,
** an empty figure, a name twice in one figure, or a name of more than
** KILN_MAX_NAME characters); NULL only when out of memory. */
KILN_API kiln_extension *kiln_plot(const char *document, const char *path,
                                   const char *const *const *channels);
/* The Chart.js 3 build to inline into the page (copied; default: the
** build's -Dchartjs, Debian's /usr/share/javascript/chart.js/chart.min.js).
** Only before e is added to a main loop (KILN_ERR_STATE after). e not a
** Plot, or path NULL: KILN_ERR_ARG. A failure is also kept in e (adding e
** then fails with its message). */
KILN_API enum kiln_status kiln_plot_set_library(kiln_extension *e, const char *path);

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

/* The main loop's callbacks (Blocks' TrainingExtension methods); see
** kiln_main_loop_run for the order a run calls them in. Blocks'
** before_first_epoch is no callback but a trigger (before_epoch while
** epochs_done == 0), here as in Blocks. */
enum kiln_callback {
    KILN_CALLBACK_BEFORE_TRAINING,
    KILN_CALLBACK_BEFORE_EPOCH,
    KILN_CALLBACK_BEFORE_BATCH,
    KILN_CALLBACK_AFTER_BATCH,
    KILN_CALLBACK_AFTER_EPOCH,
    KILN_CALLBACK_AFTER_TRAINING,
    KILN_CALLBACK_ON_ERROR,
    /* After before_training when a run starts with iterations_done > 0: a
    ** checkpoint was loaded (checkpoint.h), or the loop runs again after an
    ** interrupt. */
    KILN_CALLBACK_ON_RESUMPTION,
    /* When a run stops on SIGINT or SIGTERM (kiln_main_loop_run). */
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
/* Blocks' add_condition([which], OnLogRecord(record)): fire on callback
** `which` when the current row holds record with a true value (a nonzero
** number, True, non-empty text), as Blocks' predicates.OnLogRecord reads
** it. record is copied (1..KILN_MAX_NAME characters). KILN_ERR_ARG,
** KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_extension_add_on_log_record(kiln_extension *e, enum kiln_callback which,
                                                           const char *record);
/* Remove every trigger (Blocks' set_conditions() with none). */
KILN_API void kiln_extension_clear_triggers(kiln_extension *e);
/* Name (borrowed): the one given, or the class name ("FinishAfter",
** "Printing", "DataStreamMonitoring", "ProgressBar", "SharedVariableModifier",
** "ModifyStepperAttribute", "Timing", "Timestamp", "TrainingDataMonitoring",
** "TrackTheBest", "FinishIfNoImprovementAfter", "EarlyStopping",
** "CompositeExtension", "Plot"). */
KILN_API const char *kiln_extension_name(const kiln_extension *e);
KILN_API const char *kiln_extension_errmsg(const kiln_extension *e);
/* Record why e failed (printf format); returns status. */
KILN_API enum kiln_status kiln_extension_fail(kiln_extension *e, enum kiln_status status,
                                              const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* CompositeExtension (Blocks' CompositeExtension(sub_extensions,
** run_before_children)): an extension named name (NULL:
** "CompositeExtension") that takes subs[0..n) (also on failure; the array
** is the caller's) and, on every callback, runs its own triggers and then
** each sub-extension's on theirs, in order (its own last when
** run_before_children is false). Its own function fn may be NULL (Blocks'
** do() that does nothing); then it has no triggers. A sub-extension that
** belongs to a loop or another composite stays its owner's and the
** composite carries the error (as for a NULL one). Sub-extensions are checked when the composite is added and run as
** part of it; kiln_main_loop_find_extension sees only the top level. */
KILN_API kiln_extension *kiln_composite_extension(const char *name, kiln_extension *const *subs,
                                                  int n, bool run_before_children,
                                                  kiln_extension_fn fn, void *user,
                                                  void (*free_user)(void *user));
/* Sub-extension i of a composite (borrowed), NULL when out of range or e is
** no composite. */
KILN_API kiln_extension *kiln_extension_sub(const kiln_extension *e, int i);

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
