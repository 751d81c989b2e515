/* test_config.c: the configuration (#11): defaults, the YAML file, the
** environment, their errors, and default_seed where kiln uses a seed.
**
** Most cases load with kiln_config_load_from and an envp array of their own,
** so they do not depend on the process's environment; the cases of
** kiln_config_load (HOME, KILN_CONFIG, KILN_<KEY>) setenv in their own
** process (Check forks each test). Files go in a fresh folder per case. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"
#include "testutil.h"

static char g_dir[256];

static void setup(void) { kiln_test_tmpdir(g_dir, sizeof g_dir, "kiln_config"); }
static void teardown(void) { kiln_test_rmtree(g_dir); }

/* Write text to g_dir/name; the path goes to path. */
static void write_file(char *path, size_t cap, const char *name, const char *text)
{
    ck_assert_int_lt(snprintf(path, cap, "%s/%s", g_dir, name), (int)cap);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* Load path (may be NULL) with envp; the test fails unless it loads. */
static kiln_config *load_ok(const char *path, const char *const *envp)
{
    kiln_config *c = NULL;
    enum kiln_status st = kiln_config_load_from(path, envp, &c);
    ck_assert_msg(st == KILN_OK, "load: %s", c ? kiln_config_errmsg(c) : "out of memory");
    return c;
}

START_TEST(defaults_when_nothing_is_set)
{
    kiln_config *c = load_ok(NULL, NULL);
    int64_t seed;
    bool profile = true;
    const char *s;
    ck_assert(kiln_config_get_int(c, "default_seed", &seed) == KILN_OK && seed == 1);
    ck_assert(kiln_config_get_bool(c, "profile", &profile) == KILN_OK && !profile);
    bool fast = false;
    ck_assert(kiln_config_get_bool(c, "fast_paths", &fast) == KILN_OK && fast);
    ck_assert(kiln_config_get_string(c, "log_backend", &s) == KILN_OK);
    ck_assert_str_eq(s, "memory");
    ck_assert(kiln_config_get_string(c, "temp_dir", &s) == KILN_OK);
    ck_assert_str_eq(s, "/tmp");
    ck_assert_str_eq(kiln_config_source(c, "default_seed"), "default");
    ck_assert_str_eq(kiln_config_source(c, "sqlite_database"), "unset");
    /* A setting with no default is an error naming it and how to set it. */
    ck_assert(kiln_config_get_string(c, "sqlite_database", &s) == KILN_ERR_NOT_FOUND);
    const char *msg = kiln_config_errmsg(c);
    ck_assert_msg(strstr(msg, "sqlite_database is not set and has no default") &&
                      strstr(msg, "KILN_SQLITE_DATABASE") && strstr(msg, "~/.kilnrc"),
                  "%s", msg);
    kiln_config_destroy(c);

    /* temp_dir follows TMPDIR, as Python's tempfile does. */
    const char *env[] = {"TMPDIR=/var/scratch", NULL};
    c = load_ok(NULL, env);
    ck_assert(kiln_config_get_string(c, "temp_dir", &s) == KILN_OK);
    ck_assert_str_eq(s, "/var/scratch");
    kiln_config_destroy(c);
}
END_TEST

START_TEST(environment_overrides_file_overrides_defaults)
{
    char path[512];
    write_file(path, sizeof path, "kilnrc",
               "# kiln settings\n"
               "default_seed: 42\n"
               "log_backend: sqlite\n"
               "sqlite_database: ~/logs/run.sqlite\n"
               "profile: yes\n");
    const char *env[] = {"HOME=/home/ada", "KILN_DEFAULT_SEED=7", "KILN_PROFILE=", "OTHER=1",
                         "KILN_CC=clang", NULL};
    kiln_config *c = load_ok(path, env);
    int64_t seed;
    bool profile = false;
    const char *s;
    ck_assert(kiln_config_get_int(c, "default_seed", &seed) == KILN_OK);
    ck_assert_int_eq(seed, 7); /* the environment wins */
    ck_assert_str_eq(kiln_config_source(c, "default_seed"), "environment KILN_DEFAULT_SEED");
    ck_assert(kiln_config_get_bool(c, "profile", &profile) == KILN_OK && profile); /* empty = unset */
    char where[600];
    snprintf(where, sizeof where, "%s:5", path);
    ck_assert_str_eq(kiln_config_source(c, "profile"), where);
    ck_assert(kiln_config_get_string(c, "log_backend", &s) == KILN_OK);
    ck_assert_str_eq(s, "sqlite");
    ck_assert(kiln_config_get_string(c, "sqlite_database", &s) == KILN_OK);
    ck_assert_str_eq(s, "/home/ada/logs/run.sqlite"); /* ~/ is HOME */
    ck_assert_str_eq(kiln_config_source(c, "temp_dir"), "default");
    kiln_config_destroy(c);
}
END_TEST

START_TEST(empty_files_are_empty_configurations)
{
    static const char *const texts[] = {"", "\n", "# nothing\n", "---\n", "--- \n...\n", "{}\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char path[512];
        write_file(path, sizeof path, "empty.yaml", texts[i]);
        kiln_config *c = load_ok(path, NULL);
        int64_t seed;
        ck_assert(kiln_config_get_int(c, "default_seed", &seed) == KILN_OK && seed == 1);
        kiln_config_destroy(c);
    }
}
END_TEST

/* Each bad file, and what its message must hold after "<path>:". */
static const struct bad_file {
    const char *text, *want;
    enum kiln_status status;
} BAD_FILES[] = {
    {"default_seed: 1\nlog_backend: 'sqlite\n",
     ":3:1: malformed YAML: found unexpected end of stream while scanning a quoted scalar (begun at "
     "line 2, column 14)",
     KILN_ERR_FORMAT},
    {"default_seed: 1\n\tprofile: true\n", ":2:1: malformed YAML", KILN_ERR_FORMAT},
    {"- default_seed\n- 1\n", ":1:1: expected a mapping of settings (key: value), got a sequence",
     KILN_ERR_FORMAT},
    {"just words\n", ":1:1: expected a mapping of settings (key: value), got a single value",
     KILN_ERR_FORMAT},
    {"default_seed:\n  nested: 1\n", ":2:3: default_seed: expected a single value, got a mapping",
     KILN_ERR_FORMAT},
    {"profile: [true]\n", ":1:10: profile: expected a single value, got a sequence", KILN_ERR_FORMAT},
    {"log_backend: &a memory\nprofile: *a\n", ":2:10: profile: expected a single value, got an alias",
     KILN_ERR_FORMAT},
    {"data_path: /home/user/datasets\n",
     ":1:1: unknown setting 'data_path' (kiln knows: default_seed, fast_paths, log_backend, profile, "
     "sqlite_database, temp_dir)",
     KILN_ERR_FORMAT},
    {"default_seed: 1\nprofile: no\ndefault_seed: 2\n",
     ":3:1: default_seed is set twice (first on line 1)", KILN_ERR_FORMAT},
    {"default_seed: 1\n---\nprofile: true\n", ":2:1: expected the end of the file, got a second document",
     KILN_ERR_FORMAT},
    /* Values of the wrong type name the key and the type expected. */
    {"default_seed: abc\n", ":1:15: default_seed: expected an integer >= 0, got 'abc'", KILN_ERR_FORMAT},
    {"default_seed: -3\n", ":1:15: default_seed: expected an integer >= 0, got '-3'", KILN_ERR_FORMAT},
    {"default_seed: 1.5\n", ":1:15: default_seed: expected an integer >= 0, got '1.5'", KILN_ERR_FORMAT},
    {"default_seed: 99999999999999999999\n", ":1:15: default_seed: 99999999999999999999 is out of range",
     KILN_ERR_FORMAT},
    {"profile: maybe\n", ":1:10: profile: expected a boolean (true or false), got 'maybe'", KILN_ERR_FORMAT},
    {"log_backend: postgres\n", ":1:14: log_backend: expected one of memory|sqlite, got 'postgres'",
     KILN_ERR_FORMAT},
    {"sqlite_database:\n", ":1:17: sqlite_database: expected a path, got an empty value", KILN_ERR_FORMAT},
};

START_TEST(malformed_files_name_file_line_and_column)
{
    const struct bad_file *b = &BAD_FILES[_i];
    char path[512];
    write_file(path, sizeof path, "bad.yaml", b->text);
    kiln_config *c = NULL;
    enum kiln_status st = kiln_config_load_from(path, NULL, &c);
    ck_assert_ptr_nonnull(c);
    char want[1024];
    snprintf(want, sizeof want, "%s%s", path, b->want);
    const char *msg = kiln_config_errmsg(c);
    ck_assert_msg(st == b->status && strncmp(msg, want, strlen(want)) == 0,
                  "file %d:\n%s\ngave %s: %s\nwant %s", _i, b->text, kiln_status_string(st), msg, want);
    /* Nothing can be read from a configuration that did not load. */
    int64_t seed;
    ck_assert(kiln_config_get_int(c, "default_seed", &seed) == KILN_ERR_STATE);
    kiln_config_destroy(c);
}
END_TEST

START_TEST(bad_variables_and_getters_name_key_and_type)
{
    const char *env[] = {"KILN_PROFILE=maybe", NULL};
    kiln_config *c = NULL;
    ck_assert(kiln_config_load_from(NULL, env, &c) == KILN_ERR_FORMAT);
    ck_assert_str_eq(kiln_config_errmsg(c),
                     "environment KILN_PROFILE: profile: expected a boolean (true or false), got 'maybe'");
    kiln_config_destroy(c);

    const char *env2[] = {"KILN_SQLITE_DATABASE=~/x.db", NULL}; /* no HOME */
    ck_assert(kiln_config_load_from(NULL, env2, &c) == KILN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(kiln_config_errmsg(c), "HOME is not set"));
    kiln_config_destroy(c);

    const char *env3[] = {"KILN_PROFILE=Off", "KILN_DEFAULT_SEED=+12", NULL};
    c = load_ok(NULL, env3);
    int64_t i;
    bool b = true;
    const char *s;
    ck_assert(kiln_config_get_bool(c, "profile", &b) == KILN_OK && !b);
    ck_assert(kiln_config_get_int(c, "default_seed", &i) == KILN_OK && i == 12);
    ck_assert(kiln_config_get_int(c, "log_backend", &i) == KILN_ERR_ARG);
    ck_assert_str_eq(kiln_config_errmsg(c), "setting log_backend is a string, not an integer");
    ck_assert(kiln_config_get_string(c, "profile", &s) == KILN_ERR_ARG);
    ck_assert_str_eq(kiln_config_errmsg(c), "setting profile is a boolean, not a string");
    ck_assert(kiln_config_get_bool(c, "default_seed", &b) == KILN_ERR_ARG);
    ck_assert(kiln_config_get_int(c, "seed", &i) == KILN_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(kiln_config_errmsg(c), "unknown setting 'seed' (kiln knows: default_seed"));
    ck_assert_str_eq(kiln_config_source(c, "seed"), "");
    kiln_config_destroy(c);
}
END_TEST

START_TEST(load_reads_kilnrc_or_the_file_kiln_config_names)
{
    char rc[512], other[512], home[512];
    ck_assert_int_lt(snprintf(home, sizeof home, "%s", g_dir), (int)sizeof home);
    write_file(rc, sizeof rc, ".kilnrc", "default_seed: 5\n");
    write_file(other, sizeof other, "other.yaml", "default_seed: 6\n");
    unsetenv("KILN_DEFAULT_SEED");
    setenv("HOME", home, 1);

    unsetenv("KILN_CONFIG");
    kiln_config *c = NULL;
    int64_t seed;
    ck_assert_msg(kiln_config_load(&c) == KILN_OK, "%s", kiln_config_errmsg(c));
    ck_assert(kiln_config_get_int(c, "default_seed", &seed) == KILN_OK && seed == 5);
    kiln_config_destroy(c);

    setenv("KILN_CONFIG", other, 1);
    ck_assert_msg(kiln_config_load(&c) == KILN_OK, "%s", kiln_config_errmsg(c));
    ck_assert(kiln_config_get_int(c, "default_seed", &seed) == KILN_OK && seed == 6);
    kiln_config_destroy(c);

    setenv("KILN_DEFAULT_SEED", "8", 1);
    ck_assert(kiln_config_load(&c) == KILN_OK);
    ck_assert(kiln_config_get_int(c, "default_seed", &seed) == KILN_OK && seed == 8);
    kiln_config_destroy(c);
    unsetenv("KILN_DEFAULT_SEED");

    /* KILN_CONFIG naming a missing file is an error; a missing ~/.kilnrc is not. */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/absent.yaml", g_dir);
    setenv("KILN_CONFIG", missing, 1);
    ck_assert(kiln_config_load(&c) == KILN_ERR_IO);
    ck_assert_msg(strstr(kiln_config_errmsg(c), missing) &&
                      strstr(kiln_config_errmsg(c), "No such file or directory"),
                  "%s", kiln_config_errmsg(c));
    kiln_config_destroy(c);
    unsetenv("KILN_CONFIG");
    remove(rc);
    ck_assert(kiln_config_load(&c) == KILN_OK);
    ck_assert(kiln_config_get_int(c, "default_seed", &seed) == KILN_OK && seed == 1);
    kiln_config_destroy(c);

    /* A folder is not a configuration file. */
    setenv("KILN_CONFIG", g_dir, 1);
    ck_assert(kiln_config_load(&c) == KILN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(kiln_config_errmsg(c), "is a directory"));
    kiln_config_destroy(c);
}
END_TEST

/* ---- default_seed where kiln uses a seed ------------------------------------ */

/* W of a Linear 3 -> 4 initialised with IsotropicGaussian(1): seeded with
** seed, or without a seed (the configuration's). 0 when it fails, with the
** message in msg. */
static int linear_weights(bool seeded, uint64_t seed, double w[12], char *msg, size_t cap)
{
    kiln_brick *b = kiln_linear_create("linear", 3, 4);
    ck_assert_ptr_nonnull(b);
    ck_assert(kiln_brick_set_weights_init(b, kiln_init_isotropic_gaussian(1.0, 0)) == KILN_OK);
    ck_assert(kiln_brick_set_biases_init(b, kiln_init_constant(0)) == KILN_OK);
    if (seeded)
        ck_assert(kiln_brick_set_seed(b, seed) == KILN_OK);
    int ok = kiln_brick_initialize(b) == KILN_OK;
    if (ok)
        ck_assert(kiln_param_get_values(kiln_brick_param_by_name(b, "W"), w, 12) == KILN_OK);
    else
        snprintf(msg, cap, "%s", kiln_brick_errmsg(b));
    kiln_brick_destroy(b);
    return ok;
}

/* The order of a shuffled stream's first epoch (10 examples, batch 10). */
static void first_epoch(uint64_t seed, float order[10])
{
    float x[10];
    for (int i = 0; i < 10; i++)
        x[i] = (float)i;
    kiln_dataset *d = kiln_dataset_create();
    ck_assert(kiln_dataset_add_source(d, "x", KILN_DTYPE_F32, 10, 0, NULL, x) == KILN_OK);
    kiln_stream *s = NULL;
    ck_assert_msg(kiln_stream_create(d, KILN_SCHEME_SHUFFLED, 10, seed, &s) == KILN_OK, "%s",
                  kiln_stream_errmsg(s));
    kiln_batch b;
    ck_assert(kiln_stream_reset(s) == KILN_OK && kiln_stream_next(s, &b));
    memcpy(order, b.sources[0], sizeof(float) * 10);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
}

START_TEST(default_seed_seeds_bricks_streams_and_random_states)
{
    double w_default[12], w_1[12], w_7[12];
    float o_default[10], o_7[10], o_1[10];
    char msg[512] = "";
    unsetenv("KILN_CONFIG");
    setenv("HOME", g_dir, 1);

    /* Unset: 1, Blocks' default. */
    unsetenv("KILN_DEFAULT_SEED");
    ck_assert_msg(linear_weights(false, 0, w_default, msg, sizeof msg), "%s", msg);
    ck_assert(linear_weights(true, 1, w_1, msg, sizeof msg));
    ck_assert(memcmp(w_default, w_1, sizeof w_1) == 0);

    /* default_seed 7: an unseeded brick, KILN_SEED_DEFAULT streams and random states use 7. */
    setenv("KILN_DEFAULT_SEED", "7", 1);
    ck_assert_msg(linear_weights(false, 0, w_default, msg, sizeof msg), "%s", msg);
    ck_assert(linear_weights(true, 7, w_7, msg, sizeof msg));
    ck_assert(memcmp(w_default, w_7, sizeof w_7) == 0);
    ck_assert(memcmp(w_default, w_1, sizeof w_1) != 0);
    ck_assert(linear_weights(true, KILN_SEED_DEFAULT, w_default, msg, sizeof msg));
    ck_assert(memcmp(w_default, w_7, sizeof w_7) == 0);

    first_epoch(KILN_SEED_DEFAULT, o_default);
    first_epoch(7, o_7);
    first_epoch(1, o_1);
    ck_assert(memcmp(o_default, o_7, sizeof o_7) == 0);
    ck_assert(memcmp(o_7, o_1, sizeof o_1) != 0);

    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node a = kiln_graph_random_state(g, KILN_SEED_DEFAULT);
    kiln_node b = kiln_graph_random_state(g, 7);
    kiln_node c = kiln_graph_random_state(g, 1);
    ck_assert(kiln_node_ok(a) && a.id == b.id && a.id != c.id);

    /* A configuration that does not load fails the call that needed it. */
    char path[512];
    write_file(path, sizeof path, "bad.yaml", "default_seed: seven\n");
    setenv("KILN_CONFIG", path, 1);
    unsetenv("KILN_DEFAULT_SEED");
    ck_assert(!linear_weights(false, 0, w_default, msg, sizeof msg));
    ck_assert_msg(strstr(msg, "configuration:") && strstr(msg, "bad.yaml:1:15: default_seed"), "%s", msg);
    ck_assert(linear_weights(true, 3, w_default, msg, sizeof msg)); /* its own seed needs none */
    kiln_node d = kiln_graph_random_state(g, KILN_SEED_DEFAULT);
    ck_assert(!kiln_node_ok(d));
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(g), "bad.yaml:1:15"));
    kiln_graph_destroy(g);
}
END_TEST

/* The source of a one-layer softmax classifier trained with Scale. */
static char *classifier_source(char *msg, size_t cap)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_param *w = kiln_param_create("W", 2, (int64_t[]){4, 3});
    double v[12];
    for (int i = 0; i < 12; i++)
        v[i] = 0.1 * i;
    kiln_param_set_values(w, v, 12);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 4});
    kiln_node y = kiln_graph_input(g, "y", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    kiln_node logits = kiln_expr_matmul(g, x, kiln_graph_param(g, w));
    kiln_node cost = kiln_expr_mean(g, kiln_expr_neg(g, kiln_expr_pick(g, kiln_expr_log_softmax(g, logits), y)), KILN_ALL_AXES);
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = cost;
    o.step_rule = kiln_step_scale(0.1);
    kiln_program *p;
    char *src = NULL;
    if (kiln_compile(g, &o, &p) == KILN_OK)
        src = strdup(kiln_program_source(p));
    else
        snprintf(msg, cap, "%s", kiln_program_errmsg(p));
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_param_destroy(w);
    return src;
}

/* fast_paths: false compiles as no_fast_paths does; a bad value fails the
** compile naming it. */
START_TEST(fast_paths_false_turns_the_fast_paths_off)
{
    char msg[512] = "";
    unsetenv("KILN_CONFIG");
    setenv("HOME", g_dir, 1);
    unsetenv("KILN_FAST_PATHS");
    char *fast = classifier_source(msg, sizeof msg);
    ck_assert_msg(fast, "%s", msg);
    ck_assert_msg(strstr(fast, "fused update"), "the fast lowering fuses W's update into its gradient product");
    setenv("KILN_FAST_PATHS", "false", 1);
    char *plain = classifier_source(msg, sizeof msg);
    ck_assert_msg(plain, "%s", msg);
    ck_assert(!strstr(plain, "fused update"));
    setenv("KILN_FAST_PATHS", "maybe", 1);
    ck_assert(!classifier_source(msg, sizeof msg));
    ck_assert_msg(strstr(msg, "configuration:") && strstr(msg, "KILN_FAST_PATHS"), "%s", msg);
    unsetenv("KILN_FAST_PATHS");
    free(fast);
    free(plain);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, defaults_when_nothing_is_set);
    tcase_add_test(tc, environment_overrides_file_overrides_defaults);
    tcase_add_test(tc, empty_files_are_empty_configurations);
    tcase_add_loop_test(tc, malformed_files_name_file_line_and_column, 0,
                        (int)(sizeof BAD_FILES / sizeof BAD_FILES[0]));
    tcase_add_test(tc, bad_variables_and_getters_name_key_and_type);
    tcase_add_test(tc, load_reads_kilnrc_or_the_file_kiln_config_names);
    tcase_add_test(tc, default_seed_seeds_bricks_streams_and_random_states);
    tcase_add_test(tc, fast_paths_false_turns_the_fast_paths_off);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kiln_test_run(config_suite());
}
