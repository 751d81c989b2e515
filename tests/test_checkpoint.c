/* test_checkpoint.c: checkpoints (kiln/checkpoint.h, runtime/checkpoint.c).
**
** The model: a two-layer MLP (4 -> 8 tanh, dropout 0.25 -> 3 softmax) with
** Adam, on 20 toy examples in shuffled batches of 4 (5 batches an epoch), so
** a checkpoint holds parameters, Adam's moments and time, hyperparameters, a
** random state and a shuffled stream mid-epoch. A resumed run is compared
** bit for bit with one that never stopped: every parameter and state (the
** program's bytes), the status and every log record but saved_to and
** loaded_from. A run "killed" is a forked child that SIGKILLs itself right
** after its checkpoint; the resumed run builds everything afresh. */
#include <check.h>
#include <errno.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln/kiln.h"
#include "runtime/mainloop.h"
#include "runtime/program_internal.h"
#include "testutil.h"

#define N_FEAT 4
#define N_HIDDEN 8
#define N_CLASS 3
#define N_EXAMPLES 20
#define BATCH 4
#define N_TOTAL 13 /* batches of the whole run: 2 epochs and 3 batches */

enum variant { V_ADAM, V_MOMENTUM, V_RECTIFIER, V_WIDER };

typedef struct model {
    kiln_graph *g, *g2;
    kiln_brick *l0, *act, *l1, *sm, *cce;
    kiln_node cost;
    kiln_program *p;
    kiln_dataset *d;
    kiln_stream *s;
} model;

static kiln_dataset *toy_dataset(void)
{
    float x[N_EXAMPLES * N_FEAT];
    int32_t y[N_EXAMPLES];
    for (int i = 0; i < N_EXAMPLES; i++) {
        y[i] = i % N_CLASS;
        for (int j = 0; j < N_FEAT; j++)
            x[i * N_FEAT + j] = 0.1f * (float)((i * 7 + j * 3) % 5) + (j == y[i] ? 1.0f : 0.0f);
    }
    kiln_dataset *d = kiln_dataset_create();
    ck_assert(d);
    ck_assert(kiln_dataset_add_source(d, "features", KILN_DTYPE_F32, N_EXAMPLES, 1, (int64_t[]){N_FEAT}, x) ==
              KILN_OK);
    ck_assert(kiln_dataset_add_source(d, "targets", KILN_DTYPE_I32, N_EXAMPLES, 0, NULL, y) == KILN_OK);
    return d;
}

/* Build, compile (through the cache) and make the shuffled stream. */
static void model_build(model *md, enum variant v)
{
    memset(md, 0, sizeof *md);
    int64_t hidden = v == V_WIDER ? N_HIDDEN + 1 : N_HIDDEN;
    md->g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(md->g, "features", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, N_FEAT});
    kiln_node y = kiln_graph_input(md->g, "targets", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    md->l0 = kiln_linear_create("linear_0", N_FEAT, hidden);
    md->l1 = kiln_linear_create("linear_1", hidden, N_CLASS);
    md->act = v == V_RECTIFIER ? kiln_rectifier_create(NULL) : kiln_tanh_create(NULL);
    md->sm = kiln_softmax_create(NULL);
    md->cce = kiln_categorical_cross_entropy_create(NULL);
    ck_assert(md->g && md->l0 && md->l1 && md->act && md->sm && md->cce);
    kiln_brick *lin[2] = {md->l0, md->l1};
    for (int i = 0; i < 2; i++) {
        ck_assert(kiln_brick_set_weights_init(lin[i], kiln_init_isotropic_gaussian(0.5, 0)) == KILN_OK);
        ck_assert(kiln_brick_set_biases_init(lin[i], kiln_init_constant(0)) == KILN_OK);
        ck_assert(kiln_brick_set_seed(lin[i], 7 + (uint64_t)i) == KILN_OK);
    }
    kiln_node h, a, o, yh, cost;
    ck_assert(kiln_brick_apply(md->l0, md->g, x, &h) == KILN_OK);
    ck_assert(kiln_brick_apply(md->act, md->g, h, &a) == KILN_OK);
    ck_assert(kiln_brick_apply(md->l1, md->g, a, &o) == KILN_OK);
    ck_assert(kiln_brick_apply(md->sm, md->g, o, &yh) == KILN_OK);
    ck_assert(kiln_cost_apply(md->cce, md->g, y, yh, &cost) == KILN_OK);
    ck_assert(kiln_brick_initialize(md->l0) == KILN_OK && kiln_brick_initialize(md->l1) == KILN_OK);
    ck_assert(kiln_graph_set_name(md->g, cost, "cost") == KILN_OK);
    ck_assert_msg(kiln_apply_dropout(md->g, &cost, 1, &a, 1, 0.25, 99, &md->g2, &md->cost) == KILN_OK, "%s",
                  kiln_graph_errmsg(md->g));

    kiln_compile_options opt = kiln_compile_options_default();
    opt.name = "ckpt";
    opt.cost = md->cost;
    opt.step_rule = v == V_MOMENTUM ? kiln_step_momentum(0.1, 0.9) : kiln_step_adam(0.01, 0.1, 0.001, 1e-8, 1 - 1e-8);
    opt.monitors = &md->cost;
    opt.n_monitors = 1;
    opt.max_batch = BATCH;
    enum kiln_status st = kiln_compile(md->g2, &opt, &md->p);
    ck_assert_msg(st == KILN_OK, "compile: %s", md->p ? kiln_program_errmsg(md->p) : "out of memory");
    md->d = toy_dataset();
    ck_assert(kiln_stream_create(md->d, KILN_SCHEME_SHUFFLED, BATCH, 5, &md->s) == KILN_OK);
}

static void model_free(model *md)
{
    kiln_stream_destroy(md->s);
    kiln_dataset_destroy(md->d);
    kiln_program_destroy(md->p);
    kiln_graph_destroy(md->g2);
    kiln_graph_destroy(md->g);
    kiln_brick *b[] = {md->l0, md->act, md->l1, md->sm, md->cce};
    for (int i = 0; i < 5; i++)
        kiln_brick_destroy(b[i]);
}

/* after_batch: the cost into the row, as TrainingDataMonitoring would. */
static enum kiln_status record_cost(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which, void *user)
{
    model *md = user;
    double c;
    if (kiln_program_read_scalar(md->p, md->cost, &c) != KILN_OK)
        return kiln_extension_fail(e, KILN_ERR_STATE, "%s", kiln_program_errmsg(md->p));
    return kiln_main_loop_set_record(m, "cost", c);
}

static kiln_extension *cost_recorder(model *md)
{
    kiln_extension *e = kiln_extension_create("cost", record_cost, md, NULL);
    ck_assert(e && kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_BATCH, 0) == KILN_OK);
    return e;
}

static enum kiln_status die(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which, void *user)
{
    raise(SIGKILL);
    return KILN_OK;
}

/* Every parameter and state of p, byte for byte, into a malloc'd buffer. */
static char *program_bytes(kiln_program *p, size_t *n)
{
    size_t used = 0;
    char *buf = NULL;
    for (int st = 0; st < 2; st++)
        for (int i = 0; i < kiln_program_slot_count(p, st); i++) {
            kiln_program_slot s;
            ck_assert(kiln_program_get_slot(p, st, i, &s));
            size_t b = (size_t)s.count * kiln_dtype_size(s.dtype);
            buf = realloc(buf, used + b + 1);
            ck_assert(buf);
            memcpy(buf + used, s.data, b);
            used += b;
        }
    *n = used;
    return buf;
}

/* The log as text, one line per record, saved_to and loaded_from left out. */
static char *log_text(kiln_main_loop *m)
{
    size_t cap = 1 << 16, used = 0;
    char *t = malloc(cap);
    ck_assert(t);
    t[0] = '\0';
    used += (size_t)snprintf(t, cap, "status %lld %lld\n", (long long)m->iterations_done, (long long)m->epochs_done);
    for (int64_t it = 0; it <= m->iterations_done; it++) {
        const kiln_log_row *r = kiln_log_row_at(&m->log, it);
        for (int k = 0; r && k < r->n_records; k++) {
            const kiln_log_record *rec = &r->records[k];
            if (!strcmp(rec->key, "saved_to") || !strcmp(rec->key, "loaded_from"))
                continue;
            used += (size_t)snprintf(t + used, cap - used, "%lld %s %d %a %s\n", (long long)it, rec->key,
                                     (int)rec->kind, rec->value, rec->text ? rec->text : "-");
            ck_assert(used < cap);
        }
    }
    return t;
}

static kiln_main_loop *new_loop(model *md)
{
    kiln_main_loop *m = NULL;
    ck_assert(kiln_main_loop_create_with_config(md->p, md->s, NULL, &m) == KILN_OK);
    return m;
}

static kiln_extension *finish_after(int64_t n)
{
    return kiln_finish_after(0, n);
}

/* Train k batches in a child that checkpoints to path and SIGKILLs itself. */
static void train_and_die(const char *path, int64_t k)
{
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        model md;
        model_build(&md, V_ADAM);
        kiln_main_loop *m = new_loop(&md);
        kiln_extension *ck = kiln_checkpoint(path), *kill = kiln_extension_create("die", die, NULL, NULL);
        kiln_extension_clear_triggers(ck);
        kiln_extension_add_trigger(ck, KILN_TRIGGER_EVERY_N_BATCHES, k);
        kiln_extension_add_trigger(kill, KILN_TRIGGER_AFTER_N_BATCHES, k);
        kiln_main_loop_add_extension(m, cost_recorder(&md));
        kiln_main_loop_add_extension(m, ck);
        kiln_main_loop_add_extension(m, kill);
        kiln_main_loop_run(m);
        fprintf(stderr, "child: %s\n", kiln_main_loop_errmsg(m));
        _exit(3); /* not reached when the checkpoint was written */
    }
    int status = 0;
    ck_assert(waitpid(pid, &status, 0) == pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child did not die by SIGKILL (status %d)",
                  status);
}

typedef struct outcome {
    char *bytes;
    size_t n;
    char *log;
} outcome;

static void straight_run(outcome *o)
{
    model md;
    model_build(&md, V_ADAM);
    kiln_main_loop *m = new_loop(&md);
    kiln_test_loop_add(m, cost_recorder(&md));
    kiln_test_loop_add(m, finish_after(N_TOTAL));
    kiln_test_loop_run(m);
    o->bytes = program_bytes(md.p, &o->n);
    o->log = log_text(m);
    kiln_main_loop_destroy(m);
    model_free(&md);
}

static void resumed_run(outcome *o, const char *path, int64_t k)
{
    model md;
    model_build(&md, V_ADAM);
    ck_assert_msg(!kiln_program_compiler_ran(md.p), "the resumed program was compiled, not found in the cache");
    kiln_main_loop *m = new_loop(&md);
    kiln_test_loop_add(m, kiln_load(path, true, true));
    kiln_test_loop_add(m, cost_recorder(&md));
    kiln_test_loop_add(m, finish_after(N_TOTAL));
    kiln_test_loop_run(m);
    const char *from = NULL;
    ck_assert(kiln_main_loop_record_text(m, k, "loaded_from", &from) == KILN_OK);
    ck_assert_str_eq(from, path);
    o->bytes = program_bytes(md.p, &o->n);
    o->log = log_text(m);
    kiln_main_loop_destroy(m);
    model_free(&md);
}

static void outcome_free(outcome *o)
{
    free(o->bytes);
    free(o->log);
}

/* ---- resume is exact ----------------------------------------------------------- */

static void check_resume(int64_t k)
{
    char dir[256], path[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_ckpt");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    outcome a, b;
    straight_run(&a);
    train_and_die(path, k);
    resumed_run(&b, path, k);
    ck_assert_uint_eq(a.n, b.n);
    ck_assert_msg(memcmp(a.bytes, b.bytes, a.n) == 0, "k = %lld: parameters or optimiser state differ", (long long)k);
    ck_assert_msg(strcmp(a.log, b.log) == 0, "k = %lld: logs differ:\n--- straight\n%s--- resumed\n%s", (long long)k,
                  a.log, b.log);
    outcome_free(&a);
    outcome_free(&b);
    kiln_test_rmtree(dir);
}

START_TEST(resume_mid_epoch_is_bit_identical) { check_resume(7); }
END_TEST

START_TEST(resume_at_epoch_end_is_bit_identical) { check_resume(5); }
END_TEST

/* Without the random state and the stream's order, the resumed run differs:
** the comparison above can fail. */
START_TEST(resume_without_iteration_state_differs)
{
    char dir[256], path[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_ckpt");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    outcome a, b;
    straight_run(&a);
    train_and_die(path, 7);
    model md;
    model_build(&md, V_ADAM);
    kiln_main_loop *m = new_loop(&md);
    kiln_test_loop_add(m, kiln_load(path, false, false)); /* parameters and states only */
    kiln_test_loop_add(m, finish_after(N_TOTAL - 7));
    kiln_test_loop_run(m);
    b.bytes = program_bytes(md.p, &b.n);
    ck_assert_uint_eq(a.n, b.n);
    ck_assert(memcmp(a.bytes, b.bytes, a.n) != 0);
    free(b.bytes);
    kiln_main_loop_destroy(m);
    model_free(&md);
    outcome_free(&a);
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(checkpoint_records_saved_to_and_h5dump_reads_it)
{
    char dir[256], path[512], cmd[1024], line[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_ckpt");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    model md;
    model_build(&md, V_ADAM);
    kiln_main_loop *m = new_loop(&md);
    kiln_test_loop_add(m, cost_recorder(&md));
    kiln_test_loop_add(m, finish_after(3));
    kiln_test_loop_add(m, kiln_checkpoint(path)); /* after_training */
    kiln_test_loop_run(m);
    const char *to = NULL;
    ck_assert(kiln_main_loop_record_text(m, 3, "saved_to", &to) == KILN_OK);
    ck_assert_str_eq(to, path);
    /* h5dump (hdf5-tools) lists the layout docs/checkpoints.md describes. */
    snprintf(cmd, sizeof cmd, "h5dump -H -A 0 '%s' 2>&1", path);
    FILE *f = popen(cmd, "r");
    ck_assert(f);
    int seen = 0;
    const char *want[] = {"GROUP \"params\"", "GROUP \"linear_0\"", "DATASET \"W\"", "GROUP \"states\"",
                          "GROUP \"step_rule\"", "GROUP \"data\"", "DATASET \"order\"", "DATASET \"rng_state\"",
                          "GROUP \"log\"", "DATASET \"key\""};
    while (fgets(line, sizeof line, f))
        for (int i = 0; i < 10; i++)
            if (strstr(line, want[i]))
                seen |= 1 << i;
    ck_assert_int_eq(pclose(f), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_msg(seen & (1 << i), "h5dump does not show %s", want[i]);
    snprintf(cmd, sizeof cmd, "h5dump -a /loop/iterations_done '%s' 2>&1", path);
    f = popen(cmd, "r");
    bool three = false;
    while (fgets(line, sizeof line, f))
        three |= strstr(line, "(0): 3") != NULL;
    pclose(f);
    ck_assert_msg(three, "h5dump does not read iterations_done = 3");
    /* h5py (python3-h5py) reads the same, where it is installed. */
    if (system("/usr/bin/python3 -c 'import h5py' 2>/dev/null") == 0) {
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c 'import h5py; f = h5py.File(\"%s\", \"r\"); "
                 "print(f[\"loop\"].attrs[\"iterations_done\"], f[\"params/linear_0/W\"].shape, "
                 "f[\"log/key\"][0].decode())' 2>&1", path);
        f = popen(cmd, "r");
        ck_assert(f && fgets(line, sizeof line, f));
        pclose(f);
        ck_assert_str_eq(line, "3 (4, 8) cost\n");
    } else {
        fprintf(stderr, "checkpoint: python3-h5py is not installed; h5py not tried\n");
    }
    kiln_main_loop_destroy(m);
    model_free(&md);
    kiln_test_rmtree(dir);
}
END_TEST

/* ---- bad files get clear errors and change nothing ------------------------------ */

static void save_one(const char *path, int64_t batches)
{
    model md;
    model_build(&md, V_ADAM);
    kiln_main_loop *m = new_loop(&md);
    kiln_test_loop_add(m, finish_after(batches));
    kiln_test_loop_run(m);
    ck_assert_msg(kiln_checkpoint_save(m, path) == KILN_OK, "%s", kiln_main_loop_errmsg(m));
    kiln_main_loop_destroy(m);
    model_free(&md);
}

static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    ck_assert(b && fread(b, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void write_file(const char *path, const char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert(f && fwrite(b, 1, n, f) == n);
    fclose(f);
}

/* Load path into a fresh loop: the status, and the message naming the file
** with `what` in it (NULL: anything); the loop's program, status and log
** must be as they were. */
static enum kiln_status load_fails(const char *path, enum variant v, const char *what)
{
    model md;
    model_build(&md, v);
    kiln_main_loop *m = new_loop(&md);
    size_t n0, n1;
    char *before = program_bytes(md.p, &n0), *log0 = log_text(m);
    enum kiln_status st = kiln_checkpoint_load(m, path);
    const char *msg = kiln_main_loop_errmsg(m);
    ck_assert_msg(st != KILN_OK, "%s loaded", path);
    ck_assert_msg(strstr(msg, path) != NULL, "the message does not name the file: %s", msg);
    ck_assert_msg(!what || strstr(msg, what), "the message does not say '%s': %s", what, msg);
    char *after = program_bytes(md.p, &n1), *log1 = log_text(m);
    ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    ck_assert_str_eq(log0, log1);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 0);
    free(before);
    free(after);
    free(log0);
    free(log1);
    kiln_main_loop_destroy(m);
    model_free(&md);
    return st;
}

START_TEST(truncated_checkpoint_is_refused)
{
    char dir[256], good[512], bad[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_ckpt");
    snprintf(good, sizeof good, "%s/good.h5", dir);
    snprintf(bad, sizeof bad, "%s/cut.h5", dir);
    save_one(good, 3);
    size_t n;
    char *b = read_file(good, &n);
    size_t cuts[] = {0, 7, 100, n / 3, n / 2, n - 200, n - 1};
    for (int i = 0; i < 7; i++) {
        write_file(bad, b, cuts[i]);
        load_fails(bad, V_ADAM, NULL);
        size_t n2;
        char *b2 = read_file(bad, &n2); /* loading left the file as it was */
        ck_assert(n2 == cuts[i] && memcmp(b, b2, n2) == 0);
        free(b2);
    }
    free(b);
    kiln_test_rmtree(dir);
}
END_TEST

/* The raw bytes of a parameter's data (HDF5 keeps no checksum of them)
** and bytes anywhere else: each flip is refused or harmless, never a crash
** or a message without the file's name. (HDF5 1.10 prints "infinite loop
** closing library" when a process that met a bad metadata checksum exits:
** its cache keeps the entry it failed to load; the exit status is
** unchanged.) */
START_TEST(corrupted_checkpoint_is_refused)
{
    char dir[256], good[512], bad[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_ckpt");
    snprintf(good, sizeof good, "%s/good.h5", dir);
    snprintf(bad, sizeof bad, "%s/flip.h5", dir);
    save_one(good, 3);
    hid_t f = H5Fopen(good, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/params/linear_1/W", H5P_DEFAULT);
    ck_assert(f >= 0 && d >= 0);
    haddr_t at = H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(f);
    size_t n;
    char *b = read_file(good, &n);
    ck_assert(at != HADDR_UNDEF && at + 4 < n);
    b[at + 2] ^= 0x10;
    write_file(bad, b, n);
    load_fails(bad, V_ADAM, "corrupted");
    b[at + 2] ^= 0x10;
    /* In a child that leaves by _exit, so that HDF5's complaint at exit
    ** (above) stays out of the test's output. */
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int bad_msgs = 0;
        for (size_t off = 0; off < n; off += n / 61 + 1) {
            b[off] ^= 0x5a;
            write_file(bad, b, n);
            model md;
            model_build(&md, V_ADAM);
            kiln_main_loop *m = new_loop(&md);
            if (kiln_checkpoint_load(m, bad) != KILN_OK && !strstr(kiln_main_loop_errmsg(m), bad)) {
                fprintf(stderr, "offset %zu: %s\n", off, kiln_main_loop_errmsg(m));
                bad_msgs++;
            }
            kiln_main_loop_destroy(m);
            model_free(&md);
            b[off] ^= 0x5a;
        }
        _exit(bad_msgs ? 1 : 0);
    }
    int status = 0;
    ck_assert(waitpid(pid, &status, 0) == pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "flipped bytes: a crash or a message without "
                  "the file's name (status %d)", status);
    free(b);
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(checkpoint_of_another_graph_is_refused)
{
    char dir[256], good[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_ckpt");
    snprintf(good, sizeof good, "%s/good.h5", dir);
    save_one(good, 3);
    ck_assert_int_eq(load_fails(good, V_WIDER, "/params/linear_0/b: shape (8,), the program expects (9,)"),
                     KILN_ERR_SHAPE);
    ck_assert_int_eq(load_fails(good, V_MOMENTUM, "missing"), KILN_ERR_SHAPE);
    ck_assert_int_eq(load_fails(good, V_RECTIFIER, "another program"), KILN_ERR_SHAPE);
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(missing_file_and_folder_get_clear_errors)
{
    char dir[256], path[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_ckpt");
    snprintf(path, sizeof path, "%s/no/such/dir/run.h5", dir);
    model md;
    model_build(&md, V_ADAM);
    kiln_main_loop *m = new_loop(&md);
    ck_assert_int_eq(kiln_checkpoint_save(m, path), KILN_ERR_IO);
    ck_assert_msg(strstr(kiln_main_loop_errmsg(m), path) && strstr(kiln_main_loop_errmsg(m), "does not exist"),
                  "%s", kiln_main_loop_errmsg(m));
    snprintf(path, sizeof path, "%s/none.h5", dir);
    ck_assert_int_eq(kiln_checkpoint_load(m, path), KILN_ERR_IO);
    ck_assert(strstr(kiln_main_loop_errmsg(m), path));
    /* A file that is not HDF5 at all, left as it was. */
    write_file(path, "not a checkpoint\n", 17);
    ck_assert_int_eq(load_fails(path, V_ADAM, "not an HDF5 file"), KILN_ERR_FORMAT);
    /* Without a stream saved, a main loop cannot resume from it. */
    ck_assert(kiln_checkpoint_save_program(md.p, NULL, path) == KILN_OK);
    ck_assert_int_eq(load_fails(path, V_ADAM, "no data stream"), KILN_ERR_FORMAT);
    ck_assert(kiln_checkpoint_load_program(md.p, NULL, path) == KILN_OK);
    kiln_main_loop_destroy(m);
    model_free(&md);
    kiln_test_rmtree(dir);
}
END_TEST

/* A save that fails leaves the file already at path as it was. */
START_TEST(failed_save_leaves_the_old_checkpoint)
{
    char dir[256], path[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_ckpt");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    save_one(path, 3);
    size_t n0, n1;
    char *b0 = read_file(path, &n0);
    model md;
    model_build(&md, V_ADAM);
    kiln_main_loop *m = new_loop(&md);
    /* A path whose temporary name cannot be made: the folder is a file. */
    char under[600];
    snprintf(under, sizeof under, "%s/x", path);
    ck_assert_int_eq(kiln_checkpoint_save(m, under), KILN_ERR_IO);
    char *b1 = read_file(path, &n1);
    ck_assert(n0 == n1 && memcmp(b0, b1, n0) == 0);
    free(b0);
    free(b1);
    kiln_main_loop_destroy(m);
    model_free(&md);
    kiln_test_rmtree(dir);
}
END_TEST

/* Crafted files: right names, wrong dtype, rank or claimed sizes; each is
** refused naming the item, before any copy. */
static void craft(const char *good, const char *bad, const char *item, hid_t type, int rank, const hsize_t *dims)
{
    size_t n;
    char *b = read_file(good, &n);
    write_file(bad, b, n);
    free(b);
    hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    ck_assert(H5Ldelete(f, item, H5P_DEFAULT) >= 0);
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, item, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(d >= 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
}

START_TEST(crafted_sizes_and_dtypes_are_refused)
{
    char dir[256], good[512], bad[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_ckpt");
    snprintf(good, sizeof good, "%s/good.h5", dir);
    snprintf(bad, sizeof bad, "%s/crafted.h5", dir);
    save_one(good, 3);
    hsize_t w[2] = {4, 8}, big[1] = {(hsize_t)1 << 40}, flat[1] = {32}, mt[1] = {623};
    craft(good, bad, "/params/linear_0/W", H5T_IEEE_F64LE, 2, w);
    load_fails(bad, V_ADAM, "/params/linear_0/W: dtype float64, expected float32");
    craft(good, bad, "/params/linear_0/W", H5T_IEEE_F32LE, 1, flat);
    load_fails(bad, V_ADAM, "/params/linear_0/W: shape (32,)");
    craft(good, bad, "/data/order", H5T_STD_I64LE, 1, big);
    load_fails(bad, V_ADAM, "/data/order");
    craft(good, bad, "/log/key", H5T_STD_I64LE, 1, big);
    load_fails(bad, V_ADAM, "/log/key");
    hid_t text = H5Tcopy(H5T_C_S1); /* texts claiming 4 TiB */
    H5Tset_size(text, 4097);
    hsize_t many[1] = {(hsize_t)1 << 30};
    craft(good, bad, "/log/text", text, 1, many);
    H5Tclose(text);
    load_fails(bad, V_ADAM, "/log/text");
    craft(good, bad, "/data/rng_state", H5T_STD_U32LE, 1, mt);
    load_fails(bad, V_ADAM, "/data/rng_state");
    kiln_test_rmtree(dir);
}
END_TEST

/* A child saves over and over (the contents change each time); it is
** killed at random moments; the file at path always loads. */
START_TEST(sigkill_during_save_leaves_a_loadable_checkpoint)
{
    char dir[256], path[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_ckpt");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    save_one(path, 2);
    srand(11);
    for (int round = 0; round < 12; round++) {
        int fds[2];
        ck_assert(pipe(fds) == 0);
        pid_t pid = fork();
        ck_assert(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            model md;
            model_build(&md, V_ADAM);
            kiln_main_loop *m = new_loop(&md);
            ck_assert(write(fds[1], "r", 1) == 1);
            for (int i = 0;; i++) {
                kiln_program_set_hyperparameter(md.p, "learning_rate", 0.001 * (i % 50 + 1));
                if (kiln_checkpoint_save(m, path) != KILN_OK)
                    _exit(4);
            }
        }
        close(fds[1]);
        char c;
        ck_assert(read(fds[0], &c, 1) == 1); /* the child is saving from now on */
        close(fds[0]);
        usleep((useconds_t)(rand() % 30000));
        kill(pid, SIGKILL);
        int status;
        ck_assert(waitpid(pid, &status, 0) == pid);
        ck_assert_msg(WIFSIGNALED(status), "round %d: the child stopped by itself (status %d)", round, status);
        model md;
        model_build(&md, V_ADAM);
        kiln_main_loop *m = new_loop(&md);
        ck_assert_msg(kiln_checkpoint_load(m, path) == KILN_OK, "round %d: %s", round, kiln_main_loop_errmsg(m));
        kiln_main_loop_destroy(m);
        model_free(&md);
    }
    kiln_test_rmtree(dir);
}
END_TEST

/* A log in an SQLite file stays there: the checkpoint records the status,
** and loading cuts the file back to the checkpoint's iteration (the run
** went on past it before it stopped). */
START_TEST(sqlite_log_is_cut_back_to_the_checkpoint)
{
    char dir[256], path[512], db[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_ckpt");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    snprintf(db, sizeof db, "%s/log.sqlite", dir);
    outcome a;
    straight_run(&a);
    {
        model md;
        model_build(&md, V_ADAM);
        kiln_main_loop *m = new_loop(&md);
        ck_assert(kiln_main_loop_set_log_backend(m, KILN_LOG_BACKEND_SQLITE, db) == KILN_OK);
        kiln_extension *ck = kiln_checkpoint(path);
        kiln_extension_clear_triggers(ck);
        ck_assert(kiln_extension_add_trigger(ck, KILN_TRIGGER_AFTER_N_BATCHES, 7) == KILN_OK);
        kiln_test_loop_add(m, cost_recorder(&md));
        kiln_test_loop_add(m, ck);
        kiln_test_loop_add(m, finish_after(9)); /* the log goes on past the checkpoint */
        kiln_test_loop_run(m);
        kiln_main_loop_destroy(m);
        model_free(&md);
    }
    model md;
    model_build(&md, V_ADAM);
    kiln_main_loop *m = new_loop(&md);
    ck_assert(kiln_main_loop_set_log_backend(m, KILN_LOG_BACKEND_SQLITE, db) == KILN_OK);
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 9);
    ck_assert_msg(kiln_checkpoint_load(m, path) == KILN_OK, "%s", kiln_main_loop_errmsg(m));
    ck_assert_int_eq(kiln_main_loop_iterations_done(m), 7);
    ck_assert(kiln_main_loop_has_record(m, 7, "cost", NULL));
    ck_assert(!kiln_main_loop_has_record(m, 8, "cost", NULL));
    kiln_test_loop_add(m, cost_recorder(&md));
    kiln_test_loop_add(m, finish_after(N_TOTAL));
    kiln_test_loop_run(m);
    size_t n;
    char *bytes = program_bytes(md.p, &n);
    ck_assert(n == a.n && memcmp(bytes, a.bytes, n) == 0);
    free(bytes);
    kiln_main_loop_destroy(m);
    model_free(&md);
    outcome_free(&a);
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(load_after_a_run_started_is_refused)
{
    char dir[256], path[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_ckpt");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    save_one(path, 2);
    model md;
    model_build(&md, V_ADAM);
    kiln_main_loop *m = new_loop(&md);
    kiln_test_loop_add(m, finish_after(1));
    kiln_test_loop_run(m);
    ck_assert_int_eq(kiln_checkpoint_load(m, path), KILN_ERR_STATE);
    /* Load's missing file is Blocks' "No dump found": a fresh run. */
    kiln_main_loop *m2 = new_loop(&md);
    snprintf(path, sizeof path, "%s/absent.h5", dir);
    kiln_test_loop_add(m2, kiln_load(path, true, true));
    kiln_test_loop_add(m2, finish_after(1));
    kiln_test_loop_run(m2);
    ck_assert(!kiln_main_loop_has_record(m2, 0, "loaded_from", NULL));
    kiln_main_loop_destroy(m2);
    kiln_main_loop_destroy(m);
    model_free(&md);
    kiln_test_rmtree(dir);
}
END_TEST

static Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, resume_mid_epoch_is_bit_identical);
    tcase_add_test(tc, resume_at_epoch_end_is_bit_identical);
    tcase_add_test(tc, resume_without_iteration_state_differs);
    tcase_add_test(tc, checkpoint_records_saved_to_and_h5dump_reads_it);
    tcase_add_test(tc, truncated_checkpoint_is_refused);
    tcase_add_test(tc, corrupted_checkpoint_is_refused);
    tcase_add_test(tc, checkpoint_of_another_graph_is_refused);
    tcase_add_test(tc, missing_file_and_folder_get_clear_errors);
    tcase_add_test(tc, failed_save_leaves_the_old_checkpoint);
    tcase_add_test(tc, crafted_sizes_and_dtypes_are_refused);
    tcase_add_test(tc, sigkill_during_save_leaves_a_loadable_checkpoint);
    tcase_add_test(tc, sqlite_log_is_cut_back_to_the_checkpoint);
    tcase_add_test(tc, load_after_a_run_started_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return kiln_test_run(checkpoint_suite()); }
