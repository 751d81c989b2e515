/* mainloop.h: internals shared by the main loop (mainloop.c) and the built-in
** extensions (extensions.c).
**
** An extension is a name, a list of triggers, an error slot and a small
** vtable: `attach` checks the extension against a main loop (the program and
** streams it will use) when it is added and again when a run starts; `run`
** is Blocks' do(); `destroy` frees the extension's state. User extensions
** (kiln_extension_create) use a vtable whose `run` calls the user's
** function. */
#ifndef KILN_RUNTIME_MAINLOOP_H
#define KILN_RUNTIME_MAINLOOP_H

#include "kiln/train.h"
#include "compiler/util.h"
#include "runtime/log.h"
#include "runtime/refs.h"

typedef struct kiln_extension_ops {
    /* May be NULL. Called by add_extension and at the start of each run;
    ** must be idempotent. Errors go to e->err. */
    enum kiln_status (*attach)(kiln_extension *e, kiln_main_loop *m);
    enum kiln_status (*run)(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which);
    /* May be NULL. Frees e->state (not e). */
    void (*destroy)(kiln_extension *e);
} kiln_extension_ops;

typedef struct kiln_ext_trigger {
    enum kiln_trigger kind;
    int64_t n;
} kiln_ext_trigger;

struct kiln_extension {
    char name[KILN_MAX_NAME + 1];
    const kiln_extension_ops *ops;
    void *state;
    int n_triggers, cap_triggers;
    kiln_ext_trigger *triggers;
    /* Set by a constructor given bad arguments (add_extension then fails with
    ** this message), or by a failing run. */
    kiln_err err;
    /* The main loop that owns e once added (it destroys e), or NULL. */
    kiln_main_loop *loop;
    /* User extensions only. */
    kiln_extension_fn fn;
    void *user;
    void (*free_user)(void *user);
};

/* For each program input, the index of the stream source feeding it; and
** whether a time-major source is bound, so each batch sets KILN_TIME. */
typedef struct kiln_input_binding {
    int n_inputs;
    int *source;
    /* Per input: values per example (per step when time-major, the whole
    ** input when it has no batch dim) and which of those it is. */
    int64_t *values;
    enum kiln_bind_layout { KILN_BIND_WHOLE, KILN_BIND_BATCHED, KILN_BIND_TIME_MAJOR } *layout;
    bool time_major;
    const kiln_dataset *d; /* the stream's (borrowed: the stream keeps it) */
} kiln_input_binding;

struct kiln_main_loop {
    kiln_program *program; /* kept alive: one reference (refs.h) */
    kiln_stream *stream;   /* kept alive: one reference */
    int n_exts, cap_exts;
    kiln_extension **exts; /* owned, in the order added */
    kiln_log log;
    kiln_input_binding binding;
    /* Status (Blocks' log.status). Printed: epochs_done, iterations_done.
    ** Hidden (Blocks' underscore keys): the flags below. */
    int64_t epochs_done;
    int64_t iterations_done;
    bool training_started;
    bool epoch_started;
    bool received_first_batch;
    bool finished; /* run returned after after_training */
    bool failed;   /* run stopped on an error */
    /* In before_batch/after_batch: the batch. */
    bool in_batch;
    kiln_batch batch;
    /* Profile (#11): seconds and calls per section, while profile is on. */
    bool profile;
    FILE *profile_out; /* NULL: stderr */
    double profile_seconds[KILN_PROFILE_N_SECTIONS];
    int64_t profile_calls[KILN_PROFILE_N_SECTIONS];
    /* Why the configuration could not be applied at create: the loop then
    ** never runs (its log would not be the one configured). */
    kiln_err config_err;
    kiln_err err;
};

/* Extension with ops and state (owned; ops->destroy frees it, also when
** this fails). name is copied. NULL only when out of memory. */
kiln_extension *kiln_extension_new(const char *name, const kiln_extension_ops *ops, void *state);
/* Free e whoever owns it (for its main loop). */
void kiln_extension_free(kiln_extension *e);

/* Match every input of p to a source of s by name, checking dtype, layout
** (time-major or batch-first, as the source is) and size per example (per
** step), that s's batches fit p's max_batch and that its longest sequence
** fits p's maximum T. `what` names
** the stream in messages ("training stream", "DataStreamMonitoring 'valid'
** stream"). On failure b is left empty and the message is in *err. Sources no
** input uses are ignored (Blocks' on_unused_sources='ignore'). */
enum kiln_status kiln_main_loop_bind_stream(kiln_input_binding *b, kiln_program *p, kiln_stream *s,
                                          const char *what, kiln_err *err);
/* Point p's inputs at batch's sources and, for a time-major binding, set
** p's KILN_TIME to the batch's T (an error naming the batch's longest
** example when it is past p's maximum). */
enum kiln_status kiln_main_loop_bind_batch(const kiln_input_binding *b, kiln_program *p,
                                          const kiln_batch *batch, kiln_err *err);
void kiln_main_loop_binding_free(kiln_input_binding *b);

/* Log value setter used by the built-ins (kind: float, int or bool). */
enum kiln_status kiln_main_loop_set_log(kiln_main_loop *m, const char *key,
                                        enum kiln_log_kind kind, double value);

/* Whether trigger t fires on callback `which` given m's status
** (extensions.c). */
bool kiln_extension_trigger_fires(const kiln_ext_trigger *t, enum kiln_callback which,
                                  const kiln_main_loop *m);

/* "before_training", "after_batch", ... */
const char *kiln_main_loop_callback_name(enum kiln_callback c);

#endif
