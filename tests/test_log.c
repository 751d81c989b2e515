/* test_log.c: the training log's backends (#11): records of every kind
** read back alike from memory and from SQLite, the SQLite file as the
** sqlite3 shell sees it, files that are not kiln logs, continuing a log, a
** crash mid-run, two loops in two threads, and the main loop's use of the
** configuration (log backend, profile).
**
** The model is a linear regression y ~ x . w (2 features, 12 examples in
** batches of 4, so 3 iterations an epoch), built from expressions; every
** case that compares backends runs the same code once per backend. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kiln/kiln.h"
#include "runtime/log.h"
#include "testutil.h"

#define N_EX 12
#define BATCH 4
#define PER_EPOCH 3 /* N_EX / BATCH */

static char g_dir[256];

static void setup(void) { kiln_test_tmpdir(g_dir, sizeof g_dir, "kiln_log"); }
static void teardown(void) { kiln_test_rmtree(g_dir); }

static void path_in_dir(char *path, size_t cap, const char *name)
{
    ck_assert_int_lt(snprintf(path, cap, "%s/%s", g_dir, name), (int)cap);
}

/* ---- The model -------------------------------------------------------------- */

typedef struct regression {
    kiln_graph *g;
    kiln_param *w;
    kiln_node cost;
    kiln_program *p;
    kiln_dataset *d;
    kiln_stream *train, *valid;
} regression;

/* cost = mean((sum(x * w, 1) - y)^2), y = 2 x0 - x1. */
static void regression_build(regression *r)
{
    memset(r, 0, sizeof *r);
    r->g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(r->g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 2});
    kiln_node y = kiln_graph_input(r->g, "y", KILN_DTYPE_F32, 1, (int64_t[]){KILN_BATCH});
    r->w = kiln_param_create("w", 1, (int64_t[]){2});
    ck_assert(kiln_param_set_values(r->w, (double[]){0.1, 0.2}, 2) == KILN_OK);
    kiln_node pred = kiln_expr_sum(r->g, kiln_expr_mul(r->g, x, kiln_graph_param(r->g, r->w)), 1);
    r->cost = kiln_expr_mean(r->g, kiln_expr_square(r->g, kiln_expr_sub(r->g, pred, y)), KILN_ALL_AXES);
    ck_assert_msg(kiln_graph_set_name(r->g, r->cost, "cost") == KILN_OK, "%s", kiln_graph_errmsg(r->g));

    kiln_compile_options o = kiln_compile_options_default();
    o.name = "regression";
    o.cost = r->cost;
    o.step_rule = kiln_step_scale(0.05);
    o.monitors = &r->cost;
    o.n_monitors = 1;
    o.max_batch = N_EX;
    enum kiln_status st = kiln_compile(r->g, &o, &r->p);
    ck_assert_msg(st == KILN_OK, "compile: %s", r->p ? kiln_program_errmsg(r->p) : "out of memory");

    float xs[N_EX * 2], ys[N_EX];
    for (int i = 0; i < N_EX; i++) {
        xs[2 * i] = (float)(i % 5) / 4.0f;
        xs[2 * i + 1] = (float)(i % 3) / 2.0f;
        ys[i] = 2.0f * xs[2 * i] - xs[2 * i + 1];
    }
    r->d = kiln_dataset_create();
    ck_assert(kiln_dataset_add_source(r->d, "x", KILN_DTYPE_F32, N_EX, 1, (int64_t[]){2}, xs) == KILN_OK);
    ck_assert(kiln_dataset_add_source(r->d, "y", KILN_DTYPE_F32, N_EX, 0, NULL, ys) == KILN_OK);
    ck_assert(kiln_stream_create(r->d, KILN_SCHEME_SHUFFLED, BATCH, 3, &r->train) == KILN_OK);
    ck_assert(kiln_stream_create(r->d, KILN_SCHEME_SEQUENTIAL, N_EX, 0, &r->valid) == KILN_OK);
}

static void regression_free(regression *r)
{
    kiln_stream_destroy(r->train);
    kiln_stream_destroy(r->valid);
    kiln_dataset_destroy(r->d);
    kiln_program_destroy(r->p);
    kiln_param_destroy(r->w);
    kiln_graph_destroy(r->g);
}

/* A loop of the defaults (no file or environment read) on backend; path is
** the SQLite file's. */
static kiln_main_loop *loop_on(regression *r, enum kiln_log_backend backend, const char *path)
{
    kiln_main_loop *m = NULL;
    enum kiln_status st = kiln_main_loop_create_with_config(r->p, r->train, NULL, &m);
    ck_assert_msg(st == KILN_OK, "%s", m ? kiln_main_loop_errmsg(m) : "out of memory");
    st = kiln_main_loop_set_log_backend(m, backend, path);
    ck_assert_msg(st == KILN_OK, "%s", kiln_main_loop_errmsg(m));
    ck_assert(kiln_main_loop_log_backend(m) == backend);
    return m;
}

/* An extension that writes a text record at every epoch's end (Blocks'
** SAVED_TO is a path) and a boolean every other batch. */
static enum kiln_status stamp_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                 void *user)
{
    (void)e, (void)user;
    char text[64];
    if (which == KILN_CALLBACK_AFTER_EPOCH) {
        snprintf(text, sizeof text, "/ckpt/epoch_%lld.h5", (long long)kiln_main_loop_epochs_done(m));
        return kiln_main_loop_set_record_text(m, "SAVED_TO", text);
    }
    return kiln_main_loop_set_record_bool(m, "even", kiln_main_loop_iterations_done(m) % 2 == 0);
}

static void add_extensions(kiln_main_loop *m, regression *r, int epochs, FILE *print)
{
    kiln_extension *e = kiln_extension_create("stamp", stamp_fn, NULL, NULL);
    ck_assert(kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_EPOCH, 0) == KILN_OK);
    ck_assert(kiln_extension_add_trigger(e, KILN_TRIGGER_EVERY_N_BATCHES, 2) == KILN_OK);
    kiln_test_loop_add(m, e);
    kiln_test_loop_add(m, kiln_data_stream_monitoring(&r->cost, 1, r->valid, "valid"));
    kiln_test_loop_add(m, kiln_finish_after(epochs, 0));
    if (print)
        kiln_test_loop_add(m, kiln_printing(print));
}

/* Every record of rows 0..last for the keys training writes, as text
** ("3 valid_cost number 0.123..."), through the public API only. */
static char *dump_records(kiln_main_loop *m, int64_t last)
{
    static const char *const keys[] = {"SAVED_TO", "even", "training_finish_requested",
                                       "training_finished", "valid_cost"};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    for (int64_t it = 0; it <= last; it++)
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            double v;
            const char *s;
            switch (kiln_main_loop_record_kind(m, it, keys[k])) {
            case KILN_RECORD_NONE:
                ck_assert(kiln_main_loop_record(m, it, keys[k], &v) == KILN_ERR_NOT_FOUND);
                break;
            case KILN_RECORD_NUMBER:
            case KILN_RECORD_BOOL:
                ck_assert(kiln_main_loop_record(m, it, keys[k], &v) == KILN_OK);
                fprintf(f, "%lld %s %d %.17g\n", (long long)it, keys[k],
                        kiln_main_loop_record_kind(m, it, keys[k]), v);
                break;
            case KILN_RECORD_TEXT:
                ck_assert(kiln_main_loop_record_text(m, it, keys[k], &s) == KILN_OK);
                fprintf(f, "%lld %s text %s\n", (long long)it, keys[k], s); /* s lives until the next call */
                ck_assert(kiln_main_loop_record(m, it, keys[k], &v) == KILN_ERR_ARG);
                break;
            }
        }
    fclose(f);
    return text;
}

/* ---- Both backends, same code ---------------------------------------------- */

static const enum kiln_log_backend BACKENDS[] = {KILN_LOG_BACKEND_MEMORY, KILN_LOG_BACKEND_SQLITE};

START_TEST(records_round_trip_in_both_backends)
{
    regression r;
    regression_build(&r);
    char path[512];
    path_in_dir(path, sizeof path, "roundtrip.sqlite");
    kiln_main_loop *m = loop_on(&r, BACKENDS[_i], path);

    /* Each kind, written before training into row 0, read back. */
    static const char long_path[] = "/data/runs/2015-10-08 résumé/ckpt.h5";
    ck_assert(kiln_main_loop_set_record(m, "pi", 3.141592653589793) == KILN_OK);
    ck_assert(kiln_main_loop_set_record(m, "tiny", 5e-324) == KILN_OK);
    ck_assert(kiln_main_loop_set_record(m, "neg_inf", -INFINITY) == KILN_OK);
    ck_assert(kiln_main_loop_set_record(m, "nan", NAN) == KILN_OK);
    ck_assert(kiln_main_loop_set_record_bool(m, "flag", true) == KILN_OK);
    ck_assert(kiln_main_loop_set_record_text(m, "LOADED_FROM", long_path) == KILN_OK);
    ck_assert(kiln_main_loop_set_record_text(m, "empty", "") == KILN_OK);
    ck_assert(kiln_main_loop_set_record(m, "replaced", 1.0) == KILN_OK);
    ck_assert(kiln_main_loop_set_record_text(m, "replaced", "now text") == KILN_OK);
    double v;
    const char *s;
    bool is_bool = false;
    ck_assert(kiln_main_loop_record(m, 0, "pi", &v) == KILN_OK && v == 3.141592653589793);
    ck_assert(kiln_main_loop_record(m, 0, "tiny", &v) == KILN_OK && v == 5e-324);
    ck_assert(kiln_main_loop_record(m, 0, "neg_inf", &v) == KILN_OK && v == -INFINITY);
    ck_assert(kiln_main_loop_record(m, 0, "nan", &v) == KILN_OK && isnan(v));
    ck_assert(kiln_main_loop_record(m, 0, "flag", &v) == KILN_OK && v == 1.0);
    ck_assert(kiln_main_loop_has_record(m, 0, "flag", &is_bool) && is_bool);
    ck_assert(kiln_main_loop_record_kind(m, 0, "flag") == KILN_RECORD_BOOL);
    ck_assert(kiln_main_loop_record_kind(m, 0, "pi") == KILN_RECORD_NUMBER);
    ck_assert(kiln_main_loop_record_text(m, 0, "LOADED_FROM", &s) == KILN_OK);
    ck_assert_str_eq(s, long_path);
    ck_assert(kiln_main_loop_record_text(m, 0, "empty", &s) == KILN_OK);
    ck_assert_str_eq(s, "");
    ck_assert(kiln_main_loop_record_text(m, 0, "replaced", &s) == KILN_OK);
    ck_assert_str_eq(s, "now text");
    ck_assert(kiln_main_loop_record(m, 0, "replaced", &v) == KILN_ERR_ARG);
    ck_assert(kiln_main_loop_record_text(m, 0, "pi", &s) == KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(kiln_main_loop_errmsg(m), "is a number, not text"));
    ck_assert(kiln_main_loop_record_text(m, 1, "pi", &s) == KILN_ERR_NOT_FOUND);
    ck_assert(kiln_main_loop_record(m, 0, "absent", &v) == KILN_ERR_NOT_FOUND);
    ck_assert(kiln_main_loop_record_kind(m, 0, "absent") == KILN_RECORD_NONE);
    /* Bad records are refused alike. */
    char big[4098];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert(kiln_main_loop_set_record_text(m, "big", big) == KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(kiln_main_loop_errmsg(m), "text of 4097 bytes, at most 4096"));
    ck_assert(kiln_main_loop_set_record(m, "", 1.0) == KILN_ERR_ARG);
    /* The backend is chosen before records exist or training starts. */
    ck_assert(kiln_main_loop_set_log_backend(m, KILN_LOG_BACKEND_MEMORY, NULL) ==
              (BACKENDS[_i] == KILN_LOG_BACKEND_MEMORY ? KILN_ERR_STATE : KILN_OK));
    kiln_main_loop_destroy(m);
    regression_free(&r);
}
END_TEST

/* The same training logs the same records and prints the same text,
** whichever backend holds its log. */
START_TEST(training_logs_alike_in_both_backends)
{
    char *dump[2], *printed[2];
    size_t plen[2];
    for (int b = 0; b < 2; b++) {
        regression r;
        regression_build(&r);
        char path[512];
        path_in_dir(path, sizeof path, "train.sqlite");
        kiln_main_loop *m = loop_on(&r, BACKENDS[b], path);
        FILE *out = open_memstream(&printed[b], &plen[b]);
        add_extensions(m, &r, 3, out);
        kiln_test_loop_run(m);
        fclose(out);
        ck_assert_int_eq(kiln_main_loop_iterations_done(m), 3 * PER_EPOCH);
        dump[b] = dump_records(m, kiln_main_loop_iterations_done(m));
        kiln_main_loop_destroy(m);
        regression_free(&r);
    }
    ck_assert_ptr_nonnull(strstr(dump[0], "9 SAVED_TO text /ckpt/epoch_3.h5"));
    ck_assert_ptr_nonnull(strstr(printed[0], "\t SAVED_TO: /ckpt/epoch_3.h5\n"));
    ck_assert_msg(strcmp(dump[0], dump[1]) == 0, "memory:\n%s\nsqlite:\n%s", dump[0], dump[1]);
    ck_assert_msg(strcmp(printed[0], printed[1]) == 0, "memory:\n%s\nsqlite:\n%s", printed[0], printed[1]);
    for (int b = 0; b < 2; b++) {
        free(dump[b]);
        free(printed[b]);
    }
}
END_TEST

/* ---- The file --------------------------------------------------------------- */

/* Output of the sqlite3 shell on path with sql, or NULL (and a note) when
** the shell is missing. */
static char *shell(const char *path, const char *sql)
{
    if (system("command -v sqlite3 >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_log: skipped: the sqlite3 shell is missing (scripts/setup installs it)\n");
        return NULL;
    }
    char cmd[2048];
    ck_assert_int_lt(snprintf(cmd, sizeof cmd, "sqlite3 -batch -readonly '%s' \"%s\"", path, sql),
                     (int)sizeof cmd);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char *text = calloc(1, 65536);
    size_t n = fread(text, 1, 65535, p);
    text[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    return text;
}

START_TEST(sqlite_log_is_queryable_with_the_shell)
{
    regression r;
    regression_build(&r);
    char path[512];
    path_in_dir(path, sizeof path, "shell.sqlite");
    kiln_main_loop *m = loop_on(&r, KILN_LOG_BACKEND_SQLITE, path);
    add_extensions(m, &r, 2, NULL);
    kiln_test_loop_run(m);

    /* The shell reads the file while the loop still holds it. */
    char *out = shell(path, "SELECT iteration, number FROM records WHERE key = 'valid_cost' "
                            "ORDER BY iteration");
    if (out) {
        char want[1024] = "";
        for (int64_t it = 0; it <= 2 * PER_EPOCH; it += PER_EPOCH) {
            double v;
            ck_assert(kiln_main_loop_record(m, it, "valid_cost", &v) == KILN_OK);
            char line[64];
            snprintf(line, sizeof line, "%lld|", (long long)it);
            strcat(want, line);
            /* the shell prints 15 significant digits; compare the numbers */
            char *at = strstr(out, line);
            ck_assert_msg(at, "row %lld missing:\n%s", (long long)it, out);
            double got = strtod(at + strlen(line), NULL);
            ck_assert_msg(fabs(got - v) <= 1e-14 * fabs(v), "%.17g vs %.17g", got, v);
        }
        free(out);
        out = shell(path, "SELECT value FROM status WHERE key = 'iterations_done'; "
                          "SELECT text FROM records WHERE key = 'SAVED_TO' ORDER BY iteration; "
                          "SELECT count(*) FROM records WHERE kind = 'bool' AND key = 'even'; "
                          "PRAGMA application_id;");
        ck_assert_str_eq(out, "6\n/ckpt/epoch_1.h5\n/ckpt/epoch_2.h5\n3\n1802071150\n");
        free(out);
    }
    kiln_main_loop_destroy(m);
    regression_free(&r);
}
END_TEST

/* Run SQL on path with the C API (test setup of foreign files). */
static void sql_on(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, err ? err : "?");
    sqlite3_close(db);
}

/* A kiln log with a few records, closed. */
static void make_log(regression *r, const char *path, int epochs)
{
    kiln_main_loop *m = loop_on(r, KILN_LOG_BACKEND_SQLITE, path);
    add_extensions(m, r, epochs, NULL);
    kiln_test_loop_run(m);
    kiln_main_loop_destroy(m);
}

static char *read_all(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    rewind(f);
    char *b = malloc((size_t)*len + 1);
    ck_assert_int_eq(fread(b, 1, (size_t)*len, f), (size_t)*len);
    fclose(f);
    return b;
}

/* Each bad file: how to make it, and what the message must say. */
enum bad_kind { BAD_TEXT, BAD_FOREIGN, BAD_NEWER, BAD_TRIGGER, BAD_NO_INDEX, BAD_TABLE_CHANGED,
                BAD_ROW, BAD_STATUS, BAD_TRUNCATED, BAD_MISSING_DIR };
static const struct {
    enum bad_kind kind;
    enum kiln_status status;
    const char *want;
} BAD_LOGS[] = {
    {BAD_TEXT, KILN_ERR_FORMAT, "not an SQLite database, so not a kiln log"},
    {BAD_FOREIGN, KILN_ERR_FORMAT, "an SQLite database, but not a kiln log (application_id 0"},
    {BAD_NEWER, KILN_ERR_FORMAT, "a kiln log of schema version 2, this kiln reads version 1 (written by a newer kiln)"},
    {BAD_TRIGGER, KILN_ERR_FORMAT, "has a trigger 'sneaky', which would run on kiln's writes"},
    {BAD_NO_INDEX, KILN_ERR_FORMAT, "the index 'records_by_key' of a kiln log is missing"},
    {BAD_TABLE_CHANGED, KILN_ERR_FORMAT, "table 'status' is not the one kiln's log schema version 1 defines"},
    {BAD_ROW, KILN_ERR_FORMAT, "records row (iteration 2, key 'bad', kind 'bool') breaks the schema"},
    {BAD_STATUS, KILN_ERR_FORMAT, "records reach iteration 6 but the status says iterations_done = 1"},
    {BAD_TRUNCATED, KILN_ERR_FORMAT, ""},
    {BAD_MISSING_DIR, KILN_ERR_IO, "cannot open the log"},
};

START_TEST(files_that_are_not_kiln_logs_are_refused_clearly)
{
    regression r;
    regression_build(&r);
    char path[512];
    path_in_dir(path, sizeof path, "bad.sqlite");
    switch (BAD_LOGS[_i].kind) {
    case BAD_TEXT: {
        FILE *f = fopen(path, "w");
        for (int i = 0; i < 200; i++)
            fputs("this is a text file, not a database\n", f);
        fclose(f);
        break;
    }
    case BAD_FOREIGN: sql_on(path, "CREATE TABLE people (name TEXT); INSERT INTO people VALUES ('ada');"); break;
    case BAD_NEWER: make_log(&r, path, 1); sql_on(path, "PRAGMA user_version = 2;"); break;
    case BAD_TRIGGER:
        make_log(&r, path, 1);
        sql_on(path, "CREATE TRIGGER sneaky AFTER INSERT ON records BEGIN DELETE FROM status; END;");
        break;
    case BAD_NO_INDEX: make_log(&r, path, 1); sql_on(path, "DROP INDEX records_by_key;"); break;
    case BAD_TABLE_CHANGED:
        make_log(&r, path, 1);
        sql_on(path, "ALTER TABLE status ADD COLUMN note TEXT;");
        break;
    case BAD_ROW:
        make_log(&r, path, 1);
        sql_on(path, "PRAGMA ignore_check_constraints = 1; INSERT INTO records VALUES (2, 'bad', 'bool', 7.0, NULL);");
        break;
    case BAD_STATUS:
        make_log(&r, path, 2);
        sql_on(path, "UPDATE status SET value = 1 WHERE key = 'iterations_done';");
        break;
    case BAD_TRUNCATED: {
        make_log(&r, path, 40);
        long len;
        char *b = read_all(path, &len);
        ck_assert_int_gt(len, 8192);
        FILE *f = fopen(path, "wb"); /* the first page and half of the second */
        fwrite(b, 1, 4096 + 2048, f);
        fclose(f);
        free(b);
        break;
    }
    case BAD_MISSING_DIR: path_in_dir(path, sizeof path, "no/such/dir/log.sqlite"); break;
    }
    long before_len = 0;
    char *before = BAD_LOGS[_i].kind == BAD_MISSING_DIR ? NULL : read_all(path, &before_len);

    kiln_main_loop *m = NULL;
    ck_assert(kiln_main_loop_create_with_config(r.p, r.train, NULL, &m) == KILN_OK);
    enum kiln_status st = kiln_main_loop_set_log_backend(m, KILN_LOG_BACKEND_SQLITE, path);
    const char *msg = kiln_main_loop_errmsg(m);
    ck_assert_msg(st == BAD_LOGS[_i].status && strncmp(msg, path, strlen(path)) == 0 &&
                      strstr(msg, BAD_LOGS[_i].want),
                  "case %d: %s: %s", _i, kiln_status_string(st), msg);
    /* The loop keeps its in-memory log and trains; the file is untouched. */
    ck_assert(kiln_main_loop_log_backend(m) == KILN_LOG_BACKEND_MEMORY);
    kiln_test_loop_add(m, kiln_finish_after(1, 0));
    kiln_test_loop_run(m);
    kiln_main_loop_destroy(m);
    if (before) {
        long after_len;
        char *after = read_all(path, &after_len);
        ck_assert(after_len == before_len && memcmp(before, after, (size_t)before_len) == 0);
        free(after);
        free(before);
    }
    regression_free(&r);
}
END_TEST

/* A second loop on the same file goes on where the first stopped. */
START_TEST(appending_to_a_log_file_continues_its_iterations)
{
    regression r;
    regression_build(&r);
    char path[512];
    path_in_dir(path, sizeof path, "resume.sqlite");
    make_log(&r, path, 2);

    kiln_main_loop *m = loop_on(&r, KILN_LOG_BACKEND_SQLITE, path);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 2 * PER_EPOCH);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 2);
    const char *s;
    ck_assert(kiln_main_loop_record_text(m, PER_EPOCH, "SAVED_TO", &s) == KILN_OK);
    ck_assert_str_eq(s, "/ckpt/epoch_1.h5");
    add_extensions(m, &r, 3, NULL); /* FinishAfter(3 epochs): one more */
    kiln_test_loop_run(m);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 3 * PER_EPOCH);
    ck_assert(kiln_main_loop_record_text(m, 3 * PER_EPOCH, "SAVED_TO", &s) == KILN_OK);
    ck_assert_str_eq(s, "/ckpt/epoch_3.h5");
    double v;
    ck_assert(kiln_main_loop_record(m, 0, "valid_cost", &v) == KILN_OK); /* the first run's */
    kiln_main_loop_destroy(m);

    /* And a third loop sees all of it. */
    m = loop_on(&r, KILN_LOG_BACKEND_SQLITE, path);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 3 * PER_EPOCH);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 3);
    ck_assert(kiln_main_loop_record(m, 3 * PER_EPOCH, "training_finished", &v) == KILN_OK && v == 1);
    kiln_main_loop_destroy(m);
    regression_free(&r);
}
END_TEST

/* Sleeps past the commit interval at iteration 5, then dies at iteration 7. */
static enum kiln_status crash_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                 void *user)
{
    (void)e, (void)which, (void)user;
    int64_t it = kiln_main_loop_iterations_done(m);
    kiln_main_loop_set_record(m, "reached", (double)it);
    if (it == 5) {
        struct timespec ts = {1, 200000000};
        nanosleep(&ts, NULL);
    }
    if (it == 7)
        raise(SIGKILL);
    return KILN_OK;
}

START_TEST(a_crash_leaves_the_last_committed_iteration)
{
    regression r;
    regression_build(&r);
    char path[512];
    path_in_dir(path, sizeof path, "crash.sqlite");
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        kiln_main_loop *m = loop_on(&r, KILN_LOG_BACKEND_SQLITE, path);
        kiln_extension *e = kiln_extension_create("crash", crash_fn, NULL, NULL);
        kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_BATCH, 0);
        kiln_main_loop_add_extension(m, e);
        kiln_main_loop_add_extension(m, kiln_finish_after(10, 0));
        kiln_main_loop_run(m);
        _exit(3); /* not reached */
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);

    kiln_main_loop *m = loop_on(&r, KILN_LOG_BACKEND_SQLITE, path);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 5);
    ck_assert_int_eq(kiln_main_loop_epochs_done(m), 1);
    double v;
    for (int64_t it = 1; it <= 5; it++)
        ck_assert(kiln_main_loop_record(m, it, "reached", &v) == KILN_OK && v == (double)it);
    ck_assert(kiln_main_loop_record(m, 6, "reached", &v) == KILN_ERR_NOT_FOUND);
    kiln_main_loop_destroy(m);
    regression_free(&r);
}
END_TEST

/* A run resumed from a checkpoint at iteration 3 forgets what the log
** recorded after it (internal: the checkpoint's loader calls it). */
START_TEST(truncating_a_log_forgets_the_rows_after_a_checkpoint)
{
    char path[512];
    path_in_dir(path, sizeof path, "truncate.sqlite");
    kiln_log l;
    kiln_log_init(&l);
    if (BACKENDS[_i] == KILN_LOG_BACKEND_SQLITE)
        ck_assert_msg(kiln_log_open_sqlite(&l, path) == KILN_OK, "%s", l.err.msg);
    for (int64_t it = 0; it <= 6; it++) {
        ck_assert(kiln_log_set(&l, it, "cost", KILN_LOG_FLOAT, 1.0 / (double)(it + 1)) == KILN_OK);
        ck_assert(kiln_log_set_text(&l, it, "note", "x") == KILN_OK);
    }
    ck_assert(kiln_log_advance(&l, 6, 2, true) == KILN_OK);
    ck_assert(kiln_log_truncate(&l, 3, 1) == KILN_OK);
    ck_assert_ptr_nonnull(kiln_log_get(&l, 3, "cost"));
    ck_assert_ptr_null(kiln_log_get(&l, 4, "cost"));
    ck_assert_ptr_null(kiln_log_row_at(&l, 6));
    if (BACKENDS[_i] == KILN_LOG_BACKEND_SQLITE) {
        kiln_log_clear(&l);
        ck_assert(kiln_log_open_sqlite(&l, path) == KILN_OK);
        int64_t its, eps;
        kiln_log_status(&l, &its, &eps);
        ck_assert(its == 3 && eps == 1);
        ck_assert_ptr_null(kiln_log_get(&l, 4, "note"));
        ck_assert_ptr_nonnull(kiln_log_get(&l, 2, "note"));
    }
    kiln_log_clear(&l);
}
END_TEST

/* ---- Two loops, two threads ---------------------------------------------------- */

typedef struct job {
    regression r;
    char path[512];
    enum kiln_log_backend backend;
    char *dump;
    enum kiln_status st;
} job;

static void *job_run(void *arg)
{
    job *j = arg;
    kiln_main_loop *m = NULL;
    j->st = kiln_main_loop_create_with_config(j->r.p, j->r.train, NULL, &m);
    if (j->st == KILN_OK)
        j->st = kiln_main_loop_set_log_backend(m, j->backend, j->path);
    kiln_extension *e = kiln_extension_create("stamp", stamp_fn, NULL, NULL);
    kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_EPOCH, 0);
    kiln_extension_add_trigger(e, KILN_TRIGGER_EVERY_N_BATCHES, 2);
    if (j->st == KILN_OK)
        j->st = kiln_main_loop_add_extension(m, e);
    if (j->st == KILN_OK)
        j->st = kiln_main_loop_add_extension(m, kiln_data_stream_monitoring(&j->r.cost, 1, j->r.valid, "valid"));
    if (j->st == KILN_OK)
        j->st = kiln_main_loop_add_extension(m, kiln_finish_after(30, 0));
    if (j->st == KILN_OK)
        j->st = kiln_main_loop_run(m);
    if (j->st == KILN_OK)
        j->dump = dump_records(m, kiln_main_loop_iterations_done(m));
    kiln_main_loop_destroy(m);
    return NULL;
}

START_TEST(two_loops_in_two_threads_never_interfere)
{
    job jobs[3];
    for (int i = 0; i < 3; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        regression_build(&jobs[i].r); /* compiled here: a program per thread */
        char name[32];
        snprintf(name, sizeof name, "thread%d.sqlite", i);
        path_in_dir(jobs[i].path, sizeof jobs[i].path, name);
        jobs[i].backend = i == 2 ? KILN_LOG_BACKEND_MEMORY : KILN_LOG_BACKEND_SQLITE;
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, job_run, &jobs[i]), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    job_run(&jobs[2]); /* the reference: alone, in memory */
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(jobs[i].st == KILN_OK, "job %d: %s", i, kiln_status_string(jobs[i].st));
        ck_assert_msg(strcmp(jobs[i].dump, jobs[2].dump) == 0, "job %d:\n%s\nreference:\n%s", i,
                      jobs[i].dump, jobs[2].dump);
    }
    for (int i = 0; i < 3; i++) {
        free(jobs[i].dump);
        regression_free(&jobs[i].r);
    }
}
END_TEST

/* ---- Configuration and profile ---------------------------------------------------- */

START_TEST(the_configuration_chooses_the_log_backend)
{
    regression r;
    regression_build(&r);
    char path[512], rc[512];
    path_in_dir(path, sizeof path, "configured.sqlite");
    path_in_dir(rc, sizeof rc, "kilnrc");
    FILE *f = fopen(rc, "w");
    fprintf(f, "log_backend: sqlite\nsqlite_database: %s\n", path);
    fclose(f);
    setenv("KILN_CONFIG", rc, 1);
    unsetenv("KILN_LOG_BACKEND");
    unsetenv("KILN_SQLITE_DATABASE");
    unsetenv("KILN_PROFILE");

    kiln_main_loop *m = kiln_test_loop(r.p, r.train);
    ck_assert(kiln_main_loop_log_backend(m) == KILN_LOG_BACKEND_SQLITE);
    kiln_test_loop_add(m, kiln_finish_after(1, 0));
    kiln_test_loop_run(m);
    kiln_main_loop_destroy(m);
    m = loop_on(&r, KILN_LOG_BACKEND_SQLITE, path); /* what the first loop wrote */
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), PER_EPOCH);
    kiln_main_loop_destroy(m);

    /* The environment overrides the file. */
    setenv("KILN_LOG_BACKEND", "memory", 1);
    m = kiln_test_loop(r.p, r.train);
    ck_assert(kiln_main_loop_log_backend(m) == KILN_LOG_BACKEND_MEMORY);
    kiln_main_loop_destroy(m);

    /* sqlite without a database: an error naming the setting; the loop never runs. */
    unsetenv("KILN_CONFIG");
    setenv("HOME", g_dir, 1);
    setenv("KILN_LOG_BACKEND", "sqlite", 1);
    m = NULL;
    ck_assert(kiln_main_loop_create(r.p, r.train, &m) == KILN_ERR_NOT_FOUND);
    ck_assert_msg(strstr(kiln_main_loop_errmsg(m), "log_backend is sqlite, but setting sqlite_database is not set"),
                  "%s", kiln_main_loop_errmsg(m));
    kiln_main_loop_add_extension(m, kiln_finish_after(1, 0));
    ck_assert(kiln_main_loop_run(m) == KILN_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(kiln_main_loop_errmsg(m), "sqlite_database"));
    kiln_main_loop_destroy(m);

    /* A configuration that does not load fails create, naming the file. */
    unsetenv("KILN_LOG_BACKEND");
    f = fopen(rc, "w");
    fputs("log_backend: sqlite\nprofile: 'true\n", f);
    fclose(f);
    setenv("KILN_CONFIG", rc, 1);
    ck_assert(kiln_main_loop_create(r.p, r.train, &m) == KILN_ERR_FORMAT);
    ck_assert_msg(strstr(kiln_main_loop_errmsg(m), "configuration: ") && strstr(kiln_main_loop_errmsg(m), "kilnrc:3:1: malformed YAML"),
                  "%s", kiln_main_loop_errmsg(m));
    ck_assert(kiln_main_loop_run(m) == KILN_ERR_FORMAT);
    kiln_main_loop_destroy(m);
    regression_free(&r);
}
END_TEST

static const char *const SECTIONS[] = {"before_training", "before_epoch", "read_data",
                                       "before_batch",    "train_step",   "after_batch",
                                       "log",             "after_epoch",  "after_training"};

START_TEST(profile_reports_each_section)
{
    regression r;
    regression_build(&r);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    kiln_main_loop *m = loop_on(&r, KILN_LOG_BACKEND_MEMORY, NULL);
    ck_assert(kiln_main_loop_set_profile(m, true, out) == KILN_OK);
    add_extensions(m, &r, 2, NULL);
    kiln_test_loop_run(m);
    fclose(out);
    int64_t calls;
    ck_assert(kiln_main_loop_profile_seconds(m, KILN_PROFILE_TRAIN_STEP, &calls) > 0);
    ck_assert_int_eq(calls, 2 * PER_EPOCH);
    kiln_main_loop_profile_seconds(m, KILN_PROFILE_AFTER_EPOCH, &calls);
    ck_assert_int_eq(calls, 2);
    kiln_main_loop_profile_seconds(m, KILN_PROFILE_BEFORE_TRAINING, &calls);
    ck_assert_int_eq(calls, 1);
    ck_assert_msg(strstr(text, "Profile of the main loop (6 iterations, 2 epochs"), "%s", text);
    for (size_t i = 0; i < sizeof SECTIONS / sizeof SECTIONS[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "\n  %-16s ", SECTIONS[i]);
        ck_assert_msg(strstr(text, line), "no line for %s:\n%s", SECTIONS[i], text);
    }
    free(text);
    kiln_main_loop_destroy(m);

    /* Off: nothing measured. */
    m = loop_on(&r, KILN_LOG_BACKEND_MEMORY, NULL);
    kiln_test_loop_add(m, kiln_finish_after(1, 0));
    kiln_test_loop_run(m);
    ck_assert(kiln_main_loop_profile_seconds(m, KILN_PROFILE_TRAIN_STEP, &calls) == 0 && calls == 0);
    kiln_main_loop_destroy(m);

    /* The configuration's profile turns it on; the report goes to stderr. */
    char err_path[512];
    path_in_dir(err_path, sizeof err_path, "stderr.txt");
    setenv("KILN_PROFILE", "true", 1);
    unsetenv("KILN_LOG_BACKEND");
    m = kiln_test_loop(r.p, r.train);
    kiln_test_loop_add(m, kiln_finish_after(1, 0));
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(err_path, "w");
    dup2(fileno(f), 2);
    enum kiln_status st = kiln_main_loop_run(m);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(f);
    ck_assert(st == KILN_OK);
    long n;
    char *err = read_all(err_path, &n);
    err[n] = '\0';
    ck_assert_msg(strstr(err, "Profile of the main loop (3 iterations, 1 epochs"), "%s", err);
    free(err);
    kiln_main_loop_destroy(m);
    regression_free(&r);
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, records_round_trip_in_both_backends, 0, 2);
    tcase_add_test(tc, training_logs_alike_in_both_backends);
    tcase_add_test(tc, sqlite_log_is_queryable_with_the_shell);
    tcase_add_loop_test(tc, files_that_are_not_kiln_logs_are_refused_clearly, 0,
                        (int)(sizeof BAD_LOGS / sizeof BAD_LOGS[0]));
    tcase_add_test(tc, appending_to_a_log_file_continues_its_iterations);
    tcase_add_test(tc, a_crash_leaves_the_last_committed_iteration);
    tcase_add_loop_test(tc, truncating_a_log_forgets_the_rows_after_a_checkpoint, 0, 2);
    tcase_add_test(tc, two_loops_in_two_threads_never_interfere);
    tcase_add_test(tc, the_configuration_chooses_the_log_backend);
    tcase_add_test(tc, profile_reports_each_section);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kiln_test_run(log_suite());
}
