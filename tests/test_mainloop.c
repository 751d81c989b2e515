/* test_mainloop.c: the main loop, its log and its extensions.
**
** Most cases train a small softmax regression (4 features -> 3 classes) on a
** separable toy set of 10 examples in batches of 3 (4 batches an epoch, the
** last one short), compiled through the public API. Cases that need no
** program (log formatting, constructor errors) come first. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"
#include "runtime/log.h"
#include "testutil.h"
#include "toyloop.h"

/* ---- Log and extensions without a program ---------------------------------- */

START_TEST(log_values_print_as_python2_str)
{
    char buf[64];
    struct { double v; const char *want; } rows[] = {
        {2.34244632721, "2.34244632721"}, {0.664899230003, "0.664899230003"},
        {2.0, "2.0"}, {-3.0, "-3.0"}, {0.0, "0.0"}, {1e-5, "1e-05"}, {1e20, "1e+20"},
        {0.1, "0.1"}, {INFINITY, "inf"}, {-INFINITY, "-inf"}, {-NAN, "nan"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        ck_assert_int_eq(kiln_log_format_float(buf, sizeof buf, rows[i].v), 0);
        ck_assert_msg(strcmp(buf, rows[i].want) == 0, "row %zu: got '%s', want '%s'", i, buf,
                      rows[i].want);
    }
    kiln_log_record t = {.key = "x", .kind = KILN_LOG_BOOL, .value = 1};
    ck_assert_int_eq(kiln_log_format_value(buf, sizeof buf, &t), 0);
    ck_assert_str_eq(buf, "True");
    t.value = 0;
    ck_assert_int_eq(kiln_log_format_value(buf, sizeof buf, &t), 0);
    ck_assert_str_eq(buf, "False");
    ck_assert_int_eq(kiln_log_format_float(buf, 3, 2.5), -1); /* no silent cut */
}
END_TEST

START_TEST(log_rows_are_sparse_and_sorted)
{
    kiln_log l;
    kiln_log_init(&l);
    ck_assert(kiln_log_set(&l, 5, "zeta", KILN_LOG_FLOAT, 1.5) == KILN_OK);
    ck_assert(kiln_log_set(&l, 5, "alpha", KILN_LOG_BOOL, 1) == KILN_OK);
    ck_assert(kiln_log_set(&l, 0, "mid", KILN_LOG_INT, 7) == KILN_OK);
    ck_assert(kiln_log_set(&l, 5, "zeta", KILN_LOG_FLOAT, 2.5) == KILN_OK); /* replaces */
    ck_assert_int_eq(l.n_rows, 2);
    ck_assert_int_eq(l.rows[0].iteration, 0);
    const kiln_log_row *r = kiln_log_row_at(&l, 5);
    ck_assert(r && r->n_records == 2);
    ck_assert_str_eq(r->records[0].key, "alpha");
    ck_assert_str_eq(r->records[1].key, "zeta");
    ck_assert(kiln_log_get(&l, 5, "zeta")->value == 2.5);
    ck_assert(kiln_log_get(&l, 3, "zeta") == NULL);
    ck_assert(kiln_log_row_at(&l, 4) == NULL);
    ck_assert(kiln_log_set(&l, 1, "", KILN_LOG_FLOAT, 0) == KILN_ERR_ARG);
    char longkey[KILN_MAX_NAME + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    ck_assert(kiln_log_set(&l, 1, longkey, KILN_LOG_FLOAT, 0) == KILN_ERR_ARG);
    kiln_log_clear(&l);
    ck_assert_int_eq(l.n_rows, 0);
}
END_TEST

START_TEST(extension_constructors_report_bad_arguments)
{
    kiln_extension *e = kiln_finish_after(-1, 0);
    ck_assert(e);
    ck_assert_str_eq(kiln_extension_name(e), "FinishAfter");
    ck_assert_ptr_nonnull(strstr(kiln_extension_errmsg(e), "after_n_epochs = -1"));
    kiln_extension_destroy(e);

    e = kiln_data_stream_monitoring(NULL, 0, NULL, "valid");
    ck_assert(e);
    ck_assert_ptr_nonnull(strstr(kiln_extension_errmsg(e), "0 variables"));
    kiln_extension_destroy(e);

    e = kiln_printing(stdout);
    ck_assert_str_eq(kiln_extension_name(e), "Printing");
    ck_assert(kiln_extension_add_trigger(e, KILN_TRIGGER_EVERY_N_BATCHES, 0) == KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(kiln_extension_errmsg(e), "count > 0"));
    kiln_extension_destroy(e);
    kiln_extension_destroy(NULL);
}
END_TEST

/* ---- Main loop with a compiled program -------------------------------------- */

START_TEST(finish_after_epochs_stops_after_that_many_epochs)
{
    toy t;
    toy_build(&t, "features", 0.1);
    kiln_dataset *d = toy_dataset(N_TRAIN, 0);
    kiln_stream *s = toy_stream(d, BATCH);
    kiln_main_loop *m = kiln_test_loop(t.p, s);
    kiln_test_loop_add(m, kiln_finish_after(2, 0));
    kiln_test_loop_run(m);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 2);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 2 * BATCHES_PER_EPOCH);
    double v;
    ck_assert(kiln_main_loop_last_record(m, "training_finish_requested", &v) == KILN_OK && v == 1);
    ck_assert(kiln_main_loop_last_record(m, "training_finished", &v) == KILN_OK && v == 1);
    bool is_bool = false;
    ck_assert(kiln_main_loop_has_record(m, 2 * BATCHES_PER_EPOCH, "training_finished", &is_bool));
    ck_assert(is_bool);
    /* Nothing was requested at the end of the first epoch. */
    ck_assert(kiln_main_loop_record(m, BATCHES_PER_EPOCH, "training_finish_requested", &v) ==
              KILN_ERR_NOT_FOUND);
    /* A finished loop does not run again. */
    ck_assert(kiln_main_loop_run(m) == KILN_ERR_STATE);
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    toy_free(&t);
}
END_TEST

START_TEST(finish_after_batches_stops_mid_epoch)
{
    toy t;
    toy_build(&t, "features", 0.1);
    kiln_dataset *d = toy_dataset(N_TRAIN, 0);
    kiln_stream *s = toy_stream(d, BATCH);

    kiln_main_loop *m = kiln_test_loop(t.p, s);
    kiln_test_loop_add(m, kiln_finish_after(0, 3));
    kiln_test_loop_run(m);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 3);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 0); /* stopped inside epoch 1 */
    kiln_main_loop_destroy(m);

    /* Across an epoch boundary; and the earlier of two conditions wins. */
    m = kiln_test_loop(t.p, s);
    kiln_test_loop_add(m, kiln_finish_after(3, BATCHES_PER_EPOCH + 2));
    kiln_test_loop_run(m);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), BATCHES_PER_EPOCH + 2);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 1);
    kiln_main_loop_destroy(m);

    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    toy_free(&t);
}
END_TEST

/* A user extension that writes one letter per callback. */
typedef struct trace {
    char calls[256];
    int n;
    int batch_null_in_batch; /* current_batch NULL inside a batch callback */
    int batch_set_outside;   /* current_batch non-NULL elsewhere */
    int fail_at;             /* fail in after_batch at this iteration (0: never) */
} trace;

static enum kiln_status trace_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                 void *user)
{
    trace *tr = user;
    static const char letters[] = "TEbaeFX";
    if (tr->n < (int)sizeof tr->calls - 1)
        tr->calls[tr->n++] = letters[which];
    bool in_batch = which == KILN_CALLBACK_BEFORE_BATCH || which == KILN_CALLBACK_AFTER_BATCH;
    const kiln_batch *b = kiln_main_loop_current_batch(m);
    if (in_batch && !b)
        tr->batch_null_in_batch++;
    if (!in_batch && b)
        tr->batch_set_outside++;
    if (which == KILN_CALLBACK_AFTER_BATCH && kiln_main_loop_iterations_done(m) == tr->fail_at)
        return kiln_extension_fail(e, KILN_ERR_ARG, "boom at %lld",
                                   (long long)kiln_main_loop_iterations_done(m));
    return KILN_OK;
}

static kiln_extension *trace_ext(trace *tr, const char *name)
{
    kiln_extension *e = kiln_extension_create(name, trace_fn, tr, NULL);
    ck_assert(e);
    const enum kiln_trigger all[] = {
        KILN_TRIGGER_BEFORE_TRAINING, KILN_TRIGGER_BEFORE_EPOCH, KILN_TRIGGER_BEFORE_BATCH,
        KILN_TRIGGER_AFTER_BATCH, KILN_TRIGGER_AFTER_EPOCH, KILN_TRIGGER_AFTER_TRAINING,
        KILN_TRIGGER_ON_ERROR};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ck_assert(kiln_extension_add_trigger(e, all[i], 0) == KILN_OK);
    return e;
}

START_TEST(callbacks_run_in_blocks_order)
{
    toy t;
    toy_build(&t, "features", 0.1);
    kiln_dataset *d = toy_dataset(N_TRAIN, 0);
    kiln_stream *s = toy_stream(d, BATCH);
    trace tr = {0};
    kiln_main_loop *m = kiln_test_loop(t.p, s);
    kiln_test_loop_add(m, trace_ext(&tr, "trace"));
    kiln_test_loop_add(m, kiln_finish_after(2, 0));
    ck_assert_ptr_nonnull(kiln_main_loop_find_extension(m, "FinishAfter"));
    ck_assert_ptr_null(kiln_main_loop_find_extension(m, "Printing"));
    kiln_test_loop_run(m);
    tr.calls[tr.n] = '\0';
    char want[256] = "T";
    for (int e = 0; e < 2; e++) {
        strcat(want, "E");
        for (int b = 0; b < BATCHES_PER_EPOCH; b++)
            strcat(want, "ba");
        strcat(want, "e");
    }
    strcat(want, "F");
    ck_assert_str_eq(tr.calls, want);
    ck_assert_int_eq(tr.batch_null_in_batch, 0);
    ck_assert_int_eq(tr.batch_set_outside, 0);
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    toy_free(&t);
}
END_TEST

/* Counts its calls into a user-owned int. */
static enum kiln_status count_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                 void *user)
{
    (void)e;
    (void)which;
    int *n = user;
    ++*n;
    return kiln_main_loop_set_record(m, "counted", *n);
}

START_TEST(integer_triggers_fire_on_their_counts)
{
    toy t;
    toy_build(&t, "features", 0.1);
    kiln_dataset *d = toy_dataset(N_TRAIN, 0);
    kiln_stream *s = toy_stream(d, BATCH);
    int every2 = 0, after5 = 0, first = 0, everyep = 0;
    kiln_main_loop *m = kiln_test_loop(t.p, s);
    kiln_extension *e = kiln_extension_create("every2", count_fn, &every2, NULL);
    ck_assert(kiln_extension_add_trigger(e, KILN_TRIGGER_EVERY_N_BATCHES, 2) == KILN_OK);
    kiln_test_loop_add(m, e);
    e = kiln_extension_create("after5", count_fn, &after5, NULL);
    ck_assert(kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_N_BATCHES, 5) == KILN_OK);
    kiln_test_loop_add(m, e);
    e = kiln_extension_create("first", count_fn, &first, NULL);
    ck_assert(kiln_extension_add_trigger(e, KILN_TRIGGER_BEFORE_FIRST_EPOCH, 0) == KILN_OK);
    kiln_test_loop_add(m, e);
    e = kiln_extension_create("everyep", count_fn, &everyep, NULL);
    ck_assert(kiln_extension_add_trigger(e, KILN_TRIGGER_EVERY_N_EPOCHS, 2) == KILN_OK);
    kiln_test_loop_add(m, e);
    kiln_test_loop_add(m, kiln_finish_after(3, 0));
    kiln_test_loop_run(m);
    ck_assert_int_eq(every2, 3 * BATCHES_PER_EPOCH / 2);
    ck_assert_int_eq(after5, 1);
    ck_assert_int_eq(first, 1);
    ck_assert_int_eq(everyep, 1);
    double v;
    ck_assert(kiln_main_loop_record(m, 5, "counted", &v) == KILN_OK && v == 1); /* after5 */
    ck_assert(kiln_main_loop_record(m, 0, "counted", &v) == KILN_OK && v == 1); /* first */
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    toy_free(&t);
}
END_TEST

START_TEST(failing_extension_stops_the_loop_and_names_the_iteration)
{
    toy t;
    toy_build(&t, "features", 0.1);
    kiln_dataset *d = toy_dataset(N_TRAIN, 0);
    kiln_stream *s = toy_stream(d, BATCH);
    trace tr = {.fail_at = 2};
    kiln_main_loop *m = kiln_test_loop(t.p, s);
    kiln_test_loop_add(m, trace_ext(&tr, "bomb"));
    kiln_test_loop_add(m, kiln_finish_after(2, 0));
    ck_assert(kiln_main_loop_run(m) == KILN_ERR_ARG);
    const char *msg = kiln_main_loop_errmsg(m);
    ck_assert_msg(strstr(msg, "'bomb'") && strstr(msg, "after_batch") &&
                      strstr(msg, "iteration 2") && strstr(msg, "boom at 2"),
                  "message: %s", msg);
    tr.calls[tr.n] = '\0';
    ck_assert_str_eq(tr.calls, "TEbabaX"); /* on_error ran, nothing after */
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 2);
    double v;
    ck_assert(kiln_main_loop_record(m, 2, "got_exception", &v) == KILN_OK && v == 1);
    ck_assert(kiln_main_loop_run(m) == KILN_ERR_STATE);
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    toy_free(&t);
}
END_TEST

START_TEST(data_stream_monitoring_records_mean_of_batch_costs)
{
    toy t;
    toy_build(&t, "features", 0.1);
    kiln_dataset *d = toy_dataset(N_TRAIN, 0);
    kiln_dataset *dv = toy_dataset(7, 1); /* 3 batches of 3, 3, 1 */
    kiln_stream *s = toy_stream(d, BATCH);
    kiln_stream *sv = toy_stream(dv, BATCH);

    double before = mean_cost(&t, sv);
    kiln_main_loop *m = kiln_test_loop(t.p, s);
    kiln_test_loop_add(m, kiln_data_stream_monitoring(&t.cost, 1, sv, "valid"));
    kiln_test_loop_add(m, kiln_data_stream_monitoring(&t.cost, 1, sv, NULL));
    kiln_test_loop_add(m, kiln_finish_after(1, 0));
    kiln_test_loop_run(m);

    double v0, v1, bare;
    ck_assert(kiln_main_loop_record(m, 0, "valid_cost", &v0) == KILN_OK);
    ck_assert(kiln_main_loop_record(m, 0, "cost", &bare) == KILN_OK);
    ck_assert_msg(fabs(v0 - before) <= 1e-12 * fabs(before), "valid_cost %.17g, expected %.17g",
                  v0, before);
    ck_assert(bare == v0);
    double after = mean_cost(&t, sv); /* parameters as training left them */
    ck_assert(kiln_main_loop_last_record(m, "valid_cost", &v1) == KILN_OK);
    ck_assert_msg(fabs(v1 - after) <= 1e-12 * fabs(after), "valid_cost %.17g, expected %.17g", v1,
                  after);
    ck_assert(v1 != v0); /* training changed the parameters */
    /* Nothing monitored between epochs' ends. */
    ck_assert(kiln_main_loop_record(m, 1, "valid_cost", &v1) == KILN_ERR_NOT_FOUND);

    kiln_main_loop_destroy(m);
    kiln_stream_destroy(s);
    kiln_stream_destroy(sv);
    kiln_dataset_destroy(d);
    kiln_dataset_destroy(dv);
    toy_free(&t);
}
END_TEST

START_TEST(printing_writes_blocks_layout)
{
    toy t;
    toy_build(&t, "features", 0.1);
    kiln_dataset *d = toy_dataset(N_TRAIN, 0);
    kiln_dataset *dv = toy_dataset(7, 1);
    kiln_stream *s = toy_stream(d, BATCH);
    kiln_stream *sv = toy_stream(dv, BATCH);

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert(out);
    kiln_main_loop *m = kiln_test_loop(t.p, s);
    kiln_test_loop_add(m, kiln_data_stream_monitoring(&t.cost, 1, sv, "test"));
    kiln_test_loop_add(m, kiln_finish_after(1, 0));
    kiln_test_loop_add(m, kiln_printing(out));
    kiln_test_loop_add(m, kiln_progress_bar(out)); /* not a terminal: silent */
    kiln_test_loop_run(m);
    fclose(out);

    double v0, v1;
    ck_assert(kiln_main_loop_record(m, 0, "test_cost", &v0) == KILN_OK);
    ck_assert(kiln_main_loop_last_record(m, "test_cost", &v1) == KILN_OK);
    char s0[64], s1[64];
    ck_assert(kiln_log_format_float(s0, sizeof s0, v0) == 0);
    ck_assert(kiln_log_format_float(s1, sizeof s1, v1) == 0);

    char rule[80];
    memset(rule, '-', 79);
    rule[79] = '\0';
    char want[4096];
    int n = snprintf(want, sizeof want,
        "\n%s\nBEFORE FIRST EPOCH\n%s\n"
        "Training status:\n"
        "\t epochs_done: 0\n"
        "\t iterations_done: 0\n"
        "Log records from the iteration 0:\n"
        "\t test_cost: %s\n"
        "\n"
        "\n%s\nAFTER ANOTHER EPOCH\n%s\n"
        "Training status:\n"
        "\t epochs_done: 1\n"
        "\t iterations_done: %d\n"
        "Log records from the iteration %d:\n"
        "\t test_cost: %s\n"
        "\t training_finish_requested: True\n"
        "\n"
        "\n%s\nTRAINING HAS BEEN FINISHED:\n%s\n"
        "Training status:\n"
        "\t epochs_done: 1\n"
        "\t iterations_done: %d\n"
        "Log records from the iteration %d:\n"
        "\t test_cost: %s\n"
        "\t training_finish_requested: True\n"
        "\t training_finished: True\n"
        "\n",
        rule, rule, s0, rule, rule, BATCHES_PER_EPOCH, BATCHES_PER_EPOCH, s1, rule, rule,
        BATCHES_PER_EPOCH, BATCHES_PER_EPOCH, s1);
    ck_assert(n > 0 && (size_t)n < sizeof want);
    ck_assert_msg(strcmp(text, want) == 0, "printed:\n%s\nexpected:\n%s", text, want);

    free(text);
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(s);
    kiln_stream_destroy(sv);
    kiln_dataset_destroy(d);
    kiln_dataset_destroy(dv);
    toy_free(&t);
}
END_TEST

START_TEST(input_without_source_is_an_error_naming_it)
{
    toy t;
    toy_build(&t, "pixels", 0.1);
    kiln_dataset *d = toy_dataset(N_TRAIN, 0);
    kiln_stream *s = toy_stream(d, BATCH);
    kiln_main_loop *m = NULL;
    enum kiln_status st = kiln_main_loop_create(t.p, s, &m);
    ck_assert(m);
    ck_assert(st != KILN_OK);
    ck_assert_str_eq(kiln_main_loop_errmsg(m),
                     "program input 'pixels' matches no data source (sources: features, targets)");
    /* run refuses too, with the same message. */
    ck_assert(kiln_main_loop_run(m) != KILN_OK);
    ck_assert_ptr_nonnull(strstr(kiln_main_loop_errmsg(m), "'pixels'"));
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 0);
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    toy_free(&t);
}
END_TEST

START_TEST(source_dtype_and_size_mismatch_are_errors)
{
    toy t;
    toy_build(&t, "features", 0.1);
    float xf[2 * 5] = {0};
    float yf[2] = {0};
    int32_t yi[2] = {0};

    /* targets given as float32. */
    kiln_dataset *d = kiln_dataset_create();
    ck_assert(kiln_dataset_add_source(d, "features", KILN_DTYPE_F32, 2, 1, (int64_t[]){N_FEAT},
                                      xf) == KILN_OK);
    ck_assert(kiln_dataset_add_source(d, "targets", KILN_DTYPE_F32, 2, 0, NULL, yf) == KILN_OK);
    kiln_stream *s = toy_stream(d, 2);
    kiln_main_loop *m = NULL;
    ck_assert(kiln_main_loop_create(t.p, s, &m) != KILN_OK);
    const char *msg = kiln_main_loop_errmsg(m);
    ck_assert_msg(strstr(msg, "'targets'") && strstr(msg, "int32") && strstr(msg, "float32"),
                  "message: %s", msg);
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);

    /* 5 features per example where the model takes 4. */
    d = kiln_dataset_create();
    ck_assert(kiln_dataset_add_source(d, "features", KILN_DTYPE_F32, 2, 1, (int64_t[]){5}, xf) ==
              KILN_OK);
    ck_assert(kiln_dataset_add_source(d, "targets", KILN_DTYPE_I32, 2, 0, NULL, yi) == KILN_OK);
    ck_assert(kiln_dataset_add_source(d, "unused", KILN_DTYPE_I32, 2, 0, NULL, yi) == KILN_OK);
    s = toy_stream(d, 2);
    ck_assert(kiln_main_loop_create(t.p, s, &m) != KILN_OK);
    msg = kiln_main_loop_errmsg(m);
    ck_assert_msg(strstr(msg, "'features'") && strstr(msg, "4 values") && strstr(msg, "has 5"),
                  "message: %s", msg);
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    toy_free(&t);
}
END_TEST

START_TEST(monitoring_checks_its_stream_and_variables)
{
    toy t;
    toy_build(&t, "features", 0.1);
    kiln_dataset *d = toy_dataset(N_TRAIN, 0);
    kiln_stream *s = toy_stream(d, BATCH);
    kiln_main_loop *m = kiln_test_loop(t.p, s);

    /* A stream without targets. */
    float xf[3 * N_FEAT] = {0};
    kiln_dataset *dv = kiln_dataset_create();
    ck_assert(kiln_dataset_add_source(dv, "features", KILN_DTYPE_F32, 3, 1, (int64_t[]){N_FEAT},
                                      xf) == KILN_OK);
    kiln_stream *sv = toy_stream(dv, 3);
    ck_assert(kiln_main_loop_add_extension(m, kiln_data_stream_monitoring(&t.cost, 1, sv,
                                                                          "valid")) != KILN_OK);
    const char *msg = kiln_main_loop_errmsg(m);
    ck_assert_msg(strstr(msg, "DataStreamMonitoring") && strstr(msg, "'valid'") &&
                      strstr(msg, "program input 'targets' matches no data source (sources: "
                                  "features)"),
                  "message: %s", msg);

    /* A node the program does not compute (the input x). */
    kiln_stream *s2 = toy_stream(d, BATCH);
    ck_assert(kiln_main_loop_add_extension(m, kiln_data_stream_monitoring(&t.x, 1, s2, "train")) !=
              KILN_OK);
    msg = kiln_main_loop_errmsg(m);
    ck_assert_msg(strstr(msg, "not computed by the program"), "message: %s", msg);

    /* The training stream itself: it has one position. */
    ck_assert(kiln_main_loop_add_extension(m, kiln_data_stream_monitoring(&t.cost, 1, s, "train")) !=
              KILN_OK);
    msg = kiln_main_loop_errmsg(m);
    ck_assert_msg(strstr(msg, "is the training stream"), "message: %s", msg);
    kiln_stream_destroy(s2);

    kiln_main_loop_destroy(m);
    kiln_stream_destroy(sv);
    kiln_dataset_destroy(dv);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    toy_free(&t);
}
END_TEST

START_TEST(cost_decreases_on_separable_toy_problem)
{
    toy t;
    toy_build(&t, "features", 0.5);
    kiln_dataset *d = toy_dataset(N_TRAIN, 0);
    kiln_stream *s = toy_stream(d, BATCH);
    kiln_stream *sm = toy_stream(d, N_TRAIN);
    kiln_main_loop *m = kiln_test_loop(t.p, s);
    kiln_test_loop_add(m, kiln_data_stream_monitoring(&t.cost, 1, sm, "train"));
    kiln_test_loop_add(m, kiln_finish_after(20, 0));
    kiln_test_loop_run(m);
    double first, prev, last;
    ck_assert(kiln_main_loop_record(m, 0, "train_cost", &first) == KILN_OK);
    ck_assert_msg(fabs(first - log(3.0)) < 0.05, "initial cost %g, expected about ln 3", first);
    prev = first;
    for (int e = 1; e <= 20; e++) {
        double v;
        ck_assert(kiln_main_loop_record(m, (int64_t)e * BATCHES_PER_EPOCH, "train_cost", &v) ==
                  KILN_OK);
        ck_assert_msg(v < prev, "epoch %d: cost %g, previous %g", e, v, prev);
        prev = v;
    }
    ck_assert(kiln_main_loop_last_record(m, "train_cost", &last) == KILN_OK);
    ck_assert_msg(last < 0.5 * first, "cost %g -> %g", first, last);
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(sm);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    toy_free(&t);
}
END_TEST

START_TEST(batch_larger_than_max_batch_is_refused)
{
    toy t;
    toy_build(&t, "features", 0.1); /* max_batch 64 */
    kiln_dataset *d = toy_dataset(N_TRAIN, 0);
    kiln_stream *s = toy_stream(d, 100);
    kiln_main_loop *m = NULL;
    ck_assert(kiln_main_loop_create(t.p, s, &m) != KILN_OK);
    ck_assert_ptr_nonnull(strstr(kiln_main_loop_errmsg(m), "batch size 100 exceeds"));
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    toy_free(&t);
}
END_TEST

/* A stream that fails mid-run must stop the loop with the stream's message,
** not end the epoch quietly (found by test_train_e2e's author). */
START_TEST(regress_2_stream_error_is_not_the_end_of_an_epoch)
{
    toy t;
    toy_build(&t, "features", 0.1);
    kiln_dataset *d = toy_dataset(N_TRAIN, 0);
    kiln_stream *s = toy_stream(d, 4);
    kiln_main_loop *m = kiln_test_loop(t.p, s);
    kiln_test_loop_add(m, kiln_finish_after(2, 0));
    float extra[N_TRAIN] = {0};
    ck_assert_int_eq(kiln_dataset_add_source(d, "extra", KILN_DTYPE_F32, N_TRAIN, 0, NULL, extra), KILN_OK);
    ck_assert_int_ne(kiln_main_loop_run(m), KILN_OK);
    ck_assert_msg(strstr(kiln_main_loop_errmsg(m), "data stream: stream: dataset changed") != NULL, "%s",
                  kiln_main_loop_errmsg(m));
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    toy_free(&t);
}
END_TEST

static Suite *mainloop_suite(void)
{
    Suite *s = suite_create("mainloop");
    TCase *tc = tcase_create("log");
    tcase_add_test(tc, log_values_print_as_python2_str);
    tcase_add_test(tc, log_rows_are_sparse_and_sorted);
    tcase_add_test(tc, extension_constructors_report_bad_arguments);
    suite_add_tcase(s, tc);

    tc = tcase_create("loop");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, finish_after_epochs_stops_after_that_many_epochs);
    tcase_add_test(tc, finish_after_batches_stops_mid_epoch);
    tcase_add_test(tc, callbacks_run_in_blocks_order);
    tcase_add_test(tc, integer_triggers_fire_on_their_counts);
    tcase_add_test(tc, failing_extension_stops_the_loop_and_names_the_iteration);
    tcase_add_test(tc, data_stream_monitoring_records_mean_of_batch_costs);
    tcase_add_test(tc, printing_writes_blocks_layout);
    tcase_add_test(tc, input_without_source_is_an_error_naming_it);
    tcase_add_test(tc, source_dtype_and_size_mismatch_are_errors);
    tcase_add_test(tc, monitoring_checks_its_stream_and_variables);
    tcase_add_test(tc, cost_decreases_on_separable_toy_problem);
    tcase_add_test(tc, batch_larger_than_max_batch_is_refused);
    tcase_add_test(tc, regress_2_stream_error_is_not_the_end_of_an_epoch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kiln_test_run(mainloop_suite());
}
