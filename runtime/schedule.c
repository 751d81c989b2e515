/* schedule.c: extensions that change a hyperparameter between steps: Blocks'
** SharedVariableModifier and brainstorm's ModifyStepperAttribute with its
** schedules (Linear, Exponential, MultiStep).
**
** A hyperparameter is a scalar state of the program (steprule.c makes every
** one a state), so changing it is kiln_program_set_hyperparameter between
** two steps: the generated code reads the state each step, and nothing is
** recompiled. The state is looked up by name when the extension is attached
** (added, and at the start of each run), and set by index afterwards;
** the program checks the value against the hyperparameter's range, so a
** schedule that leaves it stops the run with the rule's own message.
**
** Timing. Blocks' SharedVariableModifier runs after each batch with the
** iterations done so far, so batch k + 1 sees f(k, old). brainstorm calls
** its hooks before training with counts 0 and then after every update or
** epoch; its schedules read the count done, and the value set is the one the
** next update or epoch uses. Here that is a hook on before_batch (or
** before_epoch) reading iterations_done (or epochs_done), which is the same
** sequence of values and needs no extra "before training" call. */
#include "runtime/mainloop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The state an extension sets: its name and, once attached, its index. */
typedef struct target {
    char name[2 * KILN_MAX_NAME + 2];
    int index;
} target;

/* Resolve t's state in m's program (attach). */
static enum kiln_status target_attach(kiln_extension *e, kiln_main_loop *m, target *t)
{
    kiln_program *p = m->program;
    t->index = kiln_program_find_state(p, t->name);
    if (t->index < 0)
        return kiln_extension_fail(e, KILN_ERR_NOT_FOUND, "%s", kiln_program_errmsg(p));
    if (kiln_program_state_size(p, t->index) != 1)
        return kiln_extension_fail(e, KILN_ERR_ARG, "state %s has %lld values: a hyperparameter is one",
                                   kiln_program_state_name(p, t->index),
                                   (long long)kiln_program_state_size(p, t->index));
    return KILN_OK;
}

/* Set t's state to v, the program checking it. */
static enum kiln_status target_set(kiln_extension *e, kiln_main_loop *m, const target *t, double v)
{
    kiln_program *p = m->program;
    enum kiln_status st = kiln_program_set_state(p, t->index, &v, 1);
    if (st != KILN_OK)
        return kiln_extension_fail(e, st, "%s", kiln_program_errmsg(p));
    return KILN_OK;
}

static enum kiln_status target_init(target *t, const char *name, kiln_extension *e)
{
    if (!name)
        return kiln_extension_fail(e, KILN_ERR_ARG, "the state's name is NULL");
    if (kiln_snprintf(t->name, sizeof t->name, "%s", name) != 0)
        return kiln_extension_fail(e, KILN_ERR_ARG, "state name '%.40s...' is too long", name);
    t->index = -1;
    return KILN_OK;
}

/* ---- SharedVariableModifier ------------------------------------------------- */

typedef struct modifier_state {
    target t;
    kiln_modifier_fn fn;
    void *user;
    void (*free_user)(void *user);
} modifier_state;

static enum kiln_status modifier_attach(kiln_extension *e, kiln_main_loop *m)
{
    return target_attach(e, m, &((modifier_state *)e->state)->t);
}

static enum kiln_status modifier_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    (void)which;
    modifier_state *s = e->state;
    double old;
    enum kiln_status st = kiln_program_get_state(m->program, s->t.index, &old, 1);
    if (st != KILN_OK)
        return kiln_extension_fail(e, st, "%s", kiln_program_errmsg(m->program));
    return target_set(e, m, &s->t, s->fn(m->iterations_done, old, s->user));
}

static void modifier_destroy(kiln_extension *e)
{
    modifier_state *s = e->state;
    if (s && s->free_user)
        s->free_user(s->user);
    free(s);
}

static const kiln_extension_ops MODIFIER_OPS = {modifier_attach, modifier_run, modifier_destroy};

kiln_extension *kiln_shared_variable_modifier(const char *state, kiln_modifier_fn fn, void *user,
                                              void (*free_user)(void *user))
{
    modifier_state *s = calloc(1, sizeof *s);
    if (!s) {
        if (free_user)
            free_user(user);
        return NULL;
    }
    s->fn = fn;
    s->user = user;
    s->free_user = free_user;
    kiln_extension *e = kiln_extension_new("SharedVariableModifier", &MODIFIER_OPS, s);
    if (!e)
        return NULL;
    if (target_init(&s->t, state, e) == KILN_OK && !fn)
        kiln_extension_fail(e, KILN_ERR_ARG, "function is NULL");
    if (e->err.status == KILN_OK)
        kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_BATCH, 0);
    return e;
}

/* ---- brainstorm's schedules ---------------------------------------------------- */

/* Why s (called every interval) is no schedule, or NULL. */
static const char *schedule_error(const kiln_schedule *s, int64_t interval)
{
    if (!s)
        return "the schedule is NULL";
    if (interval < 1)
        return "interval must be > 0";
    if (!isfinite(s->initial_value))
        return "initial_value must be finite";
    switch (s->kind) {
    case KILN_SCHEDULE_LINEAR:
        if (s->num_changes < 1)
            return "Linear: num_changes must be > 0";
        return isfinite(s->final_value) ? NULL : "Linear: final_value must be finite";
    case KILN_SCHEDULE_EXPONENTIAL:
        if (!isfinite(s->factor))
            return "Exponential: factor must be finite";
        return s->minimum <= s->maximum ? NULL : "Exponential: minimum must be <= maximum";
    case KILN_SCHEDULE_MULTISTEP:
        if (interval != 1)
            return "MultiStep: only interval 1 (as brainstorm asserts)";
        if (s->n_steps < 0 || (s->n_steps && (!s->steps || !s->values)))
            return "MultiStep: steps and values must hold n_steps >= 0 entries (steps or values is NULL)";
        for (int i = 0; i < s->n_steps; i++)
            if (s->steps[i] < (i ? s->steps[i - 1] : 0) || !isfinite(s->values[i]))
                return "MultiStep: steps must be >= 0 and non-decreasing, values finite";
        return NULL;
    case KILN_SCHEDULE_NONE:
        break;
    }
    return "unknown schedule kind (make one with kiln_schedule_linear, _exponential or _multistep)";
}

double kiln_schedule_value(const kiln_schedule *s, int64_t current, int64_t interval)
{
    if (schedule_error(s, interval) || current < 0)
        return NAN;
    int64_t n = current / interval;
    switch (s->kind) {
    case KILN_SCHEDULE_LINEAR:
        if (n > s->num_changes)
            return s->final_value;
        return s->initial_value + (s->final_value - s->initial_value) / (double)s->num_changes * (double)n;
    case KILN_SCHEDULE_EXPONENTIAL:
        return fmin(s->maximum, fmax(s->minimum, s->initial_value * pow(s->factor, (double)n)));
    case KILN_SCHEDULE_MULTISTEP: {
        double v = s->initial_value;
        for (int i = 0; i < s->n_steps && s->steps[i] <= current; i++)
            v = s->values[i];
        return v;
    }
    case KILN_SCHEDULE_NONE:
        break;
    }
    return NAN;
}

typedef struct attribute_state {
    target t;
    kiln_schedule schedule; /* steps and values point at the copies below */
    int64_t *steps;
    double *values;
    enum kiln_timescale timescale;
    int64_t interval;
} attribute_state;

static enum kiln_status attribute_attach(kiln_extension *e, kiln_main_loop *m)
{
    return target_attach(e, m, &((attribute_state *)e->state)->t);
}

static enum kiln_status attribute_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    (void)which;
    attribute_state *s = e->state;
    int64_t current = s->timescale == KILN_TIMESCALE_EPOCH ? m->epochs_done : m->iterations_done;
    if (current % s->interval != 0)
        return KILN_OK;
    return target_set(e, m, &s->t, kiln_schedule_value(&s->schedule, current, s->interval));
}

static void attribute_destroy(kiln_extension *e)
{
    attribute_state *s = e->state;
    if (!s)
        return;
    free(s->steps);
    free(s->values);
    free(s);
}

static const kiln_extension_ops ATTRIBUTE_OPS = {attribute_attach, attribute_run, attribute_destroy};

kiln_extension *kiln_modify_stepper_attribute(const kiln_schedule *sched, const char *state,
                                              enum kiln_timescale timescale, int64_t interval)
{
    attribute_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    kiln_extension *e = kiln_extension_new("ModifyStepperAttribute", &ATTRIBUTE_OPS, s);
    if (!e)
        return NULL;
    s->timescale = timescale;
    s->interval = interval;
    const char *why = schedule_error(sched, interval);
    if (target_init(&s->t, state, e) != KILN_OK)
        return e;
    if (why) {
        kiln_extension_fail(e, KILN_ERR_ARG, "%s", why);
        return e;
    }
    if (timescale != KILN_TIMESCALE_EPOCH && timescale != KILN_TIMESCALE_UPDATE) {
        kiln_extension_fail(e, KILN_ERR_ARG, "timescale %d is neither epoch nor update", (int)timescale);
        return e;
    }
    s->schedule = *sched;
    if (sched->kind == KILN_SCHEDULE_MULTISTEP && sched->n_steps > 0) {
        size_t n = (size_t)sched->n_steps;
        s->steps = malloc(n * sizeof *s->steps);
        s->values = malloc(n * sizeof *s->values);
        if (!s->steps || !s->values) {
            kiln_extension_fail(e, KILN_ERR_NOMEM, "MultiStep: no memory for %d steps", sched->n_steps);
            return e;
        }
        memcpy(s->steps, sched->steps, n * sizeof *s->steps);
        memcpy(s->values, sched->values, n * sizeof *s->values);
        s->schedule.steps = s->steps;
        s->schedule.values = s->values;
    }
    kiln_extension_add_trigger(e, timescale == KILN_TIMESCALE_EPOCH ? KILN_TRIGGER_BEFORE_EPOCH
                                                                    : KILN_TRIGGER_BEFORE_BATCH, 0);
    return e;
}
