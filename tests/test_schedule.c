/* test_schedule.c: hyperparameters changed between steps by main-loop
** extensions: Blocks' SharedVariableModifier and brainstorm's
** ModifyStepperAttribute with its schedules (Linear, Exponential,
** MultiStep).
**
** The schedules' values are checked against brainstorm's formulas worked
** by hand. The extensions train y = tanh(x W + b) (x: 4 examples of 3, W
** (3, 2), cost sum((y - t)^2) / 4) with Scale in a main loop, two batches
** of 2 an epoch, for 3 epochs; a probe extension records the learning rate
** each batch sees, and a float64 reference trains with the learning rates
** the schedule's formula gives: the parameters must agree to a relative
** 1e-12, so the training step used each new value, with the one program
** compiled once. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

#include "testutil.h"

enum { N = 4, IN = 3, OUT = 2, BATCH = 2, EPOCHS = 3, BATCHES = EPOCHS * N / BATCH };

static const double X[N][IN] = {{0.5, -1.0, 0.25}, {1.5, 0.2, -0.7}, {-0.3, 0.8, 1.1}, {0.9, -0.4, 0.6}};
static const double T[N][OUT] = {{0.3, -0.2}, {-0.5, 0.4}, {0.1, 0.7}, {-0.6, -0.1}};
static const double W0[IN * OUT] = {0.2, -0.3, 0.4, 0.1, -0.5, 0.25};
static const double B0[OUT] = {0.05, -0.1};

/* ---- brainstorm's formulas, worked by hand ------------------------------------ */

START_TEST(schedules_give_brainstorms_values)
{
    static const int64_t steps[3] = {100, 110, 120};
    static const double values[3] = {0.1, 0.01, 0.001};
    kiln_schedule lin = kiln_schedule_linear(0.9, 1.0, 10);
    kiln_schedule ex = kiln_schedule_exponential(1.0, 0.9, -INFINITY, INFINITY);
    kiln_schedule ex_min = kiln_schedule_exponential(1.0, 0.9, 0.8, INFINITY);
    kiln_schedule ms = kiln_schedule_multistep(1.0, steps, values, 3);
    struct {
        const kiln_schedule *s;
        int64_t current, interval;
        double want;
    } rows[] = {
        {&lin, 0, 1, 0.9},  {&lin, 5, 1, 0.9 + 0.1 / 10 * 5}, {&lin, 10, 1, 0.9 + 0.1 / 10 * 10},
        {&lin, 11, 1, 1.0}, {&lin, 5, 2, 0.9 + 0.1 / 10 * 2},  {&lin, 23, 2, 1.0},
        {&ex, 0, 1, 1.0},   {&ex, 3, 1, 0.9 * 0.9 * 0.9},      {&ex, 5, 2, 0.9 * 0.9},
        {&ex_min, 3, 1, 0.8}, {&ex_min, 1, 1, 0.9},
        {&ms, 0, 1, 1.0},   {&ms, 99, 1, 1.0},  {&ms, 100, 1, 0.1}, {&ms, 115, 1, 0.01},
        {&ms, 120, 1, 0.001}, {&ms, 1000, 1, 0.001},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        double got = kiln_schedule_value(rows[k].s, rows[k].current, rows[k].interval);
        ck_assert_msg(fabs(got - rows[k].want) <= 1e-15, "row %zu: %.17g, expected %.17g", k, got, rows[k].want);
    }
    /* what ModifyStepperAttribute refuses */
    ck_assert(isnan(kiln_schedule_value(&ms, 5, 2)));
    ck_assert(isnan(kiln_schedule_value(&lin, 5, 0)));
    kiln_schedule none = kiln_schedule_linear(0.9, 1.0, 0);
    ck_assert(isnan(kiln_schedule_value(&none, 5, 1)));
}
END_TEST

/* ---- the reference ------------------------------------------------------------- */

/* One Scale step with learning rate lr on examples [lo, lo + BATCH). */
static void ref_step(double *w, double *b, int lo, double lr)
{
    double gw[IN * OUT] = {0}, gb[OUT] = {0};
    for (int i = lo; i < lo + BATCH; i++)
        for (int j = 0; j < OUT; j++) {
            double a = b[j];
            for (int k = 0; k < IN; k++)
                a += X[i][k] * w[k * OUT + j];
            double y = tanh(a), da = 2 * (y - T[i][j]) / N * (1 - y * y);
            for (int k = 0; k < IN; k++)
                gw[k * OUT + j] += X[i][k] * da;
            gb[j] += da;
        }
    for (int k = 0; k < IN * OUT; k++)
        w[k] -= lr * gw[k];
    for (int j = 0; j < OUT; j++)
        b[j] -= lr * gb[j];
}

/* ---- kiln ---------------------------------------------------------------------- */

typedef struct model {
    kiln_graph *g;
    kiln_param *w, *b;
    kiln_node wn, bn;
    kiln_program *p;
    kiln_dataset *d;
    kiln_stream *s;
    kiln_main_loop *m;
    double seen[BATCHES + 1]; /* the learning rate each batch saw */
    int n_seen;
} model;

static enum kiln_status probe(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which, void *user)
{
    (void)e;
    (void)which;
    model *t = user;
    ck_assert_int_le(t->n_seen, BATCHES);
    return kiln_program_get_hyperparameter(kiln_main_loop_program(m), "learning_rate", &t->seen[t->n_seen++]);
}

/* The model, compiled with Scale(lr), and a main loop over its data that
** stops after EPOCHS epochs; ext (added first) then the probe. */
static void build(model *t, double lr, kiln_extension *ext)
{
    memset(t, 0, sizeof *t);
    t->g = kiln_graph_create(KILN_DTYPE_F64);
    t->w = kiln_param_create("W", 2, (int64_t[]){IN, OUT});
    t->b = kiln_param_create("b", 1, (int64_t[]){OUT});
    ck_assert_int_eq(kiln_param_set_values(t->w, W0, IN * OUT), KILN_OK);
    ck_assert_int_eq(kiln_param_set_values(t->b, B0, OUT), KILN_OK);
    kiln_node x = kiln_graph_input(t->g, "x", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, IN});
    kiln_node y = kiln_graph_input(t->g, "t", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, OUT});
    t->wn = kiln_graph_param(t->g, t->w);
    t->bn = kiln_graph_param(t->g, t->b);
    kiln_node h = kiln_expr_tanh(t->g, kiln_expr_add(t->g, kiln_expr_matmul(t->g, x, t->wn), t->bn));
    kiln_node d = kiln_expr_sub(t->g, h, y);
    kiln_node cost = kiln_expr_div(t->g, kiln_expr_sum(t->g, kiln_expr_square(t->g, d), KILN_ALL_AXES),
                                   kiln_expr_constant(t->g, N));
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = cost;
    o.step_rule = kiln_step_scale(lr);
    o.max_batch = BATCH;
    ck_assert_msg(kiln_compile(t->g, &o, &t->p) == KILN_OK, "%s", kiln_program_errmsg(t->p));
    t->d = kiln_dataset_create();
    ck_assert_int_eq(kiln_dataset_add_source(t->d, "x", KILN_DTYPE_F64, N, 1, (int64_t[]){IN}, X), KILN_OK);
    ck_assert_int_eq(kiln_dataset_add_source(t->d, "t", KILN_DTYPE_F64, N, 1, (int64_t[]){OUT}, T), KILN_OK);
    ck_assert_int_eq(kiln_stream_create(t->d, KILN_SCHEME_SEQUENTIAL, BATCH, 0, &t->s), KILN_OK);
    ck_assert_msg(kiln_main_loop_create(t->p, t->s, &t->m) == KILN_OK, "%s", kiln_main_loop_errmsg(t->m));
    if (ext)
        ck_assert_msg(kiln_main_loop_add_extension(t->m, ext) == KILN_OK, "%s", kiln_main_loop_errmsg(t->m));
    kiln_extension *pr = kiln_extension_create("probe", probe, t, NULL);
    ck_assert_int_eq(kiln_extension_add_trigger(pr, KILN_TRIGGER_BEFORE_BATCH, 0), KILN_OK);
    ck_assert_int_eq(kiln_main_loop_add_extension(t->m, pr), KILN_OK);
    ck_assert_int_eq(kiln_main_loop_add_extension(t->m, kiln_finish_after(EPOCHS, 0)), KILN_OK);
}

static void destroy(model *t)
{
    kiln_main_loop_destroy(t->m);
    kiln_stream_destroy(t->s);
    kiln_dataset_destroy(t->d);
    kiln_program_destroy(t->p);
    kiln_graph_destroy(t->g);
    kiln_param_destroy(t->w);
    kiln_param_destroy(t->b);
}

/* Run t's loop; each batch k (0-based) must have seen want[k], and the
** parameters must be the reference's trained with those rates. */
static void run_and_check(model *t, const double *want)
{
    ck_assert_msg(kiln_main_loop_run(t->m) == KILN_OK, "%s", kiln_main_loop_errmsg(t->m));
    ck_assert_int_eq(t->n_seen, BATCHES);
    double w[IN * OUT], b[OUT];
    memcpy(w, W0, sizeof w);
    memcpy(b, B0, sizeof b);
    for (int k = 0; k < BATCHES; k++) {
        ck_assert_msg(t->seen[k] == want[k], "batch %d saw learning rate %.17g, expected %.17g", k + 1, t->seen[k],
                      want[k]);
        ref_step(w, b, (k * BATCH) % N, want[k]);
    }
    double gw[IN * OUT], gb[OUT];
    ck_assert_int_eq(kiln_program_get_param(t->p, t->wn, gw, IN * OUT), KILN_OK);
    ck_assert_int_eq(kiln_program_get_param(t->p, t->bn, gb, OUT), KILN_OK);
    for (int k = 0; k < IN * OUT; k++)
        ck_assert_msg(fabs(gw[k] - w[k]) <= 1e-12 * fmax(fabs(w[k]), 1e-3), "W[%d]: %.17g, reference %.17g", k,
                      gw[k], w[k]);
    for (int j = 0; j < OUT; j++)
        ck_assert_msg(fabs(gb[j] - b[j]) <= 1e-12 * fmax(fabs(b[j]), 1e-3), "b[%d]: %.17g, reference %.17g", j,
                      gb[j], b[j]);
}

/* Exponential on epochs: every batch of epoch e (0-based) sees 0.5 * 0.6^e. */
START_TEST(exponential_by_epoch_sets_the_learning_rate)
{
    kiln_schedule s = kiln_schedule_exponential(0.5, 0.6, -INFINITY, INFINITY);
    model t;
    build(&t, 1.0, kiln_modify_stepper_attribute(&s, "learning_rate", KILN_TIMESCALE_EPOCH, 1));
    double want[BATCHES];
    for (int k = 0; k < BATCHES; k++)
        want[k] = 0.5 * pow(0.6, k / (N / BATCH));
    run_and_check(&t, want);
    destroy(&t);
}
END_TEST

/* Linear on updates, every 2: updates done 0, 1 -> n 0; 2, 3 -> n 1; ...,
** from 0.5 to 0.1 in 2 changes. */
START_TEST(linear_by_update_sets_the_learning_rate)
{
    kiln_schedule s = kiln_schedule_linear(0.5, 0.1, 2);
    model t;
    build(&t, 1.0, kiln_modify_stepper_attribute(&s, "/step_rule/scale.learning_rate", KILN_TIMESCALE_UPDATE, 2));
    double want[BATCHES];
    for (int k = 0; k < BATCHES; k++) {
        int n = k / 2;
        want[k] = n > 2 ? 0.1 : 0.5 + (0.1 - 0.5) / 2 * n;
    }
    run_and_check(&t, want);
    destroy(&t);
}
END_TEST

/* MultiStep on updates: 0.4 for updates 0-1, 0.2 for 2-4, 0.05 after. */
START_TEST(multistep_by_update_sets_the_learning_rate)
{
    static const int64_t steps[2] = {2, 5};
    static const double values[2] = {0.2, 0.05};
    kiln_schedule s = kiln_schedule_multistep(0.4, steps, values, 2);
    model t;
    build(&t, 1.0, kiln_modify_stepper_attribute(&s, "scale.learning_rate", KILN_TIMESCALE_UPDATE, 1));
    double want[BATCHES];
    for (int k = 0; k < BATCHES; k++)
        want[k] = k < 2 ? 0.4 : k < 5 ? 0.2 : 0.05;
    run_and_check(&t, want);
    destroy(&t);
}
END_TEST

/* Blocks' SharedVariableModifier: after batch k, lr = f(k, old). */
static double decay(int64_t iterations, double old, void *user)
{
    return old * *(const double *)user / (double)iterations;
}

START_TEST(shared_variable_modifier_sets_the_learning_rate_after_each_batch)
{
    static const double FACTOR = 0.9;
    model t;
    build(&t, 0.5, kiln_shared_variable_modifier("learning_rate", decay, (void *)&FACTOR, NULL));
    double want[BATCHES];
    want[0] = 0.5;
    for (int k = 1; k < BATCHES; k++)
        want[k] = want[k - 1] * FACTOR / k; /* f(iterations_done = k, old) */
    run_and_check(&t, want);
    destroy(&t);
}
END_TEST

/* An unknown state is refused when the extension is added; a value out of
** the hyperparameter's range stops the run, naming the extension, the
** iteration and the rule; a bad schedule is refused when added. */
START_TEST(bad_schedules_and_states_are_errors)
{
    kiln_schedule s = kiln_schedule_linear(0.1, -0.1, 4);
    model t;
    build(&t, 1.0, NULL);
    ck_assert_int_eq(kiln_main_loop_add_extension(
                         t.m, kiln_modify_stepper_attribute(&s, "momentum", KILN_TIMESCALE_UPDATE, 1)),
                     KILN_ERR_NOT_FOUND);
    ck_assert_msg(strstr(kiln_main_loop_errmsg(t.m), "extension 'ModifyStepperAttribute': no state is named "
                                                      "'momentum' (hyperparameters: /step_rule/scale.learning_rate)"),
                  "%s", kiln_main_loop_errmsg(t.m));
    kiln_schedule bad = kiln_schedule_exponential(0.1, 0.5, 1, 0);
    ck_assert_int_eq(kiln_main_loop_add_extension(
                         t.m, kiln_modify_stepper_attribute(&bad, "learning_rate", KILN_TIMESCALE_EPOCH, 1)),
                     KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_main_loop_errmsg(t.m), "Exponential: minimum must be <= maximum"), "%s",
                  kiln_main_loop_errmsg(t.m));
    destroy(&t);
    /* 0.1, 0.05, 0, -0.05: the fourth batch's value is refused */
    build(&t, 1.0, kiln_modify_stepper_attribute(&s, "learning_rate", KILN_TIMESCALE_UPDATE, 1));
    ck_assert_int_eq(kiln_main_loop_run(t.m), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_main_loop_errmsg(t.m), "extension 'ModifyStepperAttribute' failed in before_batch at "
                                                      "iteration 3: state /step_rule/scale.learning_rate: Scale: "
                                                      "learning rate is -0.05, expected a finite value >= 0"),
                  "%s", kiln_main_loop_errmsg(t.m));
    ck_assert_int_eq(t.n_seen, 3);
    destroy(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("schedule");
    TCase *t = tcase_create("schedule");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, schedules_give_brainstorms_values);
    tcase_add_test(t, exponential_by_epoch_sets_the_learning_rate);
    tcase_add_test(t, linear_by_update_sets_the_learning_rate);
    tcase_add_test(t, multistep_by_update_sets_the_learning_rate);
    tcase_add_test(t, shared_variable_modifier_sets_the_learning_rate_after_each_batch);
    tcase_add_test(t, bad_schedules_and_states_are_errors);
    suite_add_tcase(s, t);
    return kiln_test_run(s);
}
