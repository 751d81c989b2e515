/* test_aot.c: standalone programs (kiln_program_write_aot, `kiln build`;
** docs/aot.md): built and run as a user would, their outputs compared bit
** for bit with kiln's JIT, their dependencies and their errors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln/kiln.h"
#include "testutil.h"

#define IN 12
#define HID 7
#define OUT 4
#define N 37 /* examples: two batches of 16 and a short one of 5 at batch 16 */

/* An MLP made of bricks, initialised, saved with roots probs and cost. */
static void save_mlp(const char *path)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "features", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, IN});
    kiln_node y = kiln_graph_input(g, "targets", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    kiln_brick *acts[2] = {kiln_tanh_create(NULL), kiln_softmax_create(NULL)};
    kiln_brick *mlp = kiln_mlp_create(NULL, acts, 2, (int64_t[]){IN, HID, OUT});
    kiln_brick *cce = kiln_categorical_cross_entropy_create(NULL);
    kiln_brick_set_weights_init(mlp, kiln_init_isotropic_gaussian(0.5, 3));
    kiln_brick_set_biases_init(mlp, kiln_init_constant(0.1));
    kiln_node probs, cost;
    ck_assert(!kiln_brick_apply(mlp, g, x, &probs) && !kiln_cost_apply(cce, g, y, probs, &cost) &&
              !kiln_brick_initialize(mlp));
    ck_assert_msg(kiln_network_save(g, (kiln_node[]){probs, cost}, (const char *const[]){"probs", "cost"}, 2, path) ==
                      KILN_OK, "%s", kiln_graph_errmsg(g));
    kiln_graph_destroy(g);
    kiln_brick_destroy(mlp);
    kiln_brick_destroy(cce);
}

static void examples(float *x, int n)
{
    srand(11);
    for (int i = 0; i < n * IN; i++)
        x[i] = (float)(rand() % 1000) / 250.0f - 2.0f;
}

/* sh -c cmd with its stdout and stderr into out; the exit code. */
static int run_cmd(char *out, size_t cap, const char *cmd)
{
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *f = popen(full, "r");
    ck_assert(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int status = pclose(f);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert(f && fwrite(data, 1, n, f) == n && fclose(f) == 0);
}

static size_t read_bytes(const char *path, void *data, size_t cap)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f, "%s", path);
    size_t n = fread(data, 1, cap, f);
    fclose(f);
    return n;
}

/* The JIT's forward of the file's probs (no_fast_paths: CBLAS's products,
** as the inference program's) on x[0..n). */
static void jit_forward(const char *path, const float *x, int n, float *probs)
{
    kiln_network *net;
    ck_assert_msg(kiln_network_load(path, &net) == KILN_OK, "%s", kiln_network_errmsg(net));
    kiln_node out = kiln_network_root(net, "probs");
    kiln_compile_options o = kiln_compile_options_default();
    o.outputs = &out;
    o.n_outputs = 1;
    o.no_fast_paths = true;
    o.max_size[0] = 16;
    kiln_program *p;
    ck_assert_msg(kiln_compile(kiln_network_graph(net), &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    for (int at = 0; at < n; at += 16) {
        int b = n - at < 16 ? n - at : 16;
        ck_assert(kiln_program_bind_input_n(p, "features", x + at * IN, (int64_t)b * IN) == KILN_OK);
        ck_assert_msg(kiln_program_forward(p, b) == KILN_OK, "%s", kiln_program_errmsg(p));
        double v[16 * OUT];
        ck_assert_msg(kiln_program_read(p, out, v, (int64_t)b * OUT) == KILN_OK, "%s", kiln_program_errmsg(p));
        for (int k = 0; k < b * OUT; k++)
            probs[at * OUT + k] = (float)v[k];
    }
    kiln_program_destroy(p);
    kiln_network_destroy(net);
}

START_TEST(inference_program_matches_the_jit_bit_for_bit)
{
    char dir[512], net[600], prog[600], in[600], outp[600], cmd[4096], out[16384];
    kiln_test_tmpdir(dir, sizeof dir, "aot_infer");
    snprintf(net, sizeof net, "%s/mlp.h5", dir);
    snprintf(prog, sizeof prog, "%s/infer", dir);
    snprintf(in, sizeof in, "%s/x.f32", dir);
    snprintf(outp, sizeof outp, "%s/y.f32", dir);
    save_mlp(net);
    /* batches of at most 16: 16, 16, 5 as the JIT below runs them */
    snprintf(cmd, sizeof cmd, "'%s' build '%s' -o '%s' --infer --batch 16 --keep-sources '%s/src'",
             getenv("KILN_TOOL"), net, prog, dir);
    ck_assert_msg(run_cmd(out, sizeof out, cmd) == 0, "%s", out);

    static float x[N * IN], want[N * OUT], got[N * OUT + 1];
    examples(x, N);
    write_bytes(in, x, sizeof x);
    jit_forward(net, x, N, want);
    snprintf(cmd, sizeof cmd, "'%s' --input '%s' --output '%s'", prog, in, outp);
    ck_assert_msg(run_cmd(out, sizeof out, cmd) == 0, "%s", out);
    ck_assert_uint_eq(read_bytes(outp, got, sizeof got), sizeof want);
    ck_assert_msg(memcmp(got, want, sizeof want) == 0, "outputs differ from the JIT's: %a %a", (double)got[0],
                  (double)want[0]);
    /* stdin to stdout */
    snprintf(cmd, sizeof cmd, "'%s' < '%s' > '%s.2'", prog, in, outp);
    ck_assert_msg(run_cmd(out, sizeof out, cmd) == 0, "%s", out);
    snprintf(cmd, sizeof cmd, "%s.2", outp);
    ck_assert_uint_eq(read_bytes(cmd, got, sizeof got), sizeof want);
    ck_assert(memcmp(got, want, sizeof want) == 0);

    /* no libkiln beside it */
    snprintf(cmd, sizeof cmd, "ldd '%s'", prog);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 0);
    ck_assert_msg(!strstr(out, "libkiln") && strstr(out, "libc."), "%s", out);
    /* the kept sources and the README's command */
    snprintf(cmd, sizeof cmd, "cd '%s/src' && ls && grep -c 'cc\\|clang\\|gcc' README.md", dir);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 0);
    ck_assert_msg(strstr(out, "main.c") && strstr(out, "kiln_model.c") && strstr(out, "kiln_model.h"), "%s", out);

    /* wrong sizes: not a whole example, empty; an error, exit 1, no output file */
    unlink(outp);
    write_bytes(in, x, sizeof(float) * (IN + 3));
    snprintf(cmd, sizeof cmd, "'%s' --input '%s' --output '%s'", prog, in, outp);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 1);
    ck_assert_msg(strstr(out, "not a whole number"), "%s", out);
    ck_assert(access(outp, F_OK) != 0);
    write_bytes(in, x, 0);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 1);
    ck_assert_msg(strstr(out, "0 bytes"), "%s", out);
    ck_assert(access(outp, F_OK) != 0);
    snprintf(cmd, sizeof cmd, "'%s' --input '%s/missing' ", prog, dir);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 1);
    ck_assert_msg(strstr(out, "missing"), "%s", out);
    kiln_test_rmtree(dir);
}
END_TEST


/* IDX files of N examples of IN pixels (3 x 4) and labels in 0..OUT-1. */
static void write_idx(const char *images, const char *labels, unsigned char *pix, unsigned char *lab)
{
    srand(5);
    for (int i = 0; i < N * IN; i++)
        pix[i] = (unsigned char)(rand() % 256);
    for (int i = 0; i < N; i++)
        lab[i] = (unsigned char)(rand() % OUT);
    unsigned char h[16] = {0, 0, 8, 3, 0, 0, 0, N, 0, 0, 0, 3, 0, 0, 0, 4};
    FILE *f = fopen(images, "wb");
    ck_assert(f && fwrite(h, 1, 16, f) == 16 && fwrite(pix, 1, N * IN, f) == N * IN && fclose(f) == 0);
    unsigned char hl[8] = {0, 0, 8, 1, 0, 0, 0, N};
    f = fopen(labels, "wb");
    ck_assert(f && fwrite(hl, 1, 8, f) == 8 && fwrite(lab, 1, N, f) == N && fclose(f) == 0);
}

/* kiln's JIT training of the network file at net: `batches` batches of 16
** in the files' order (the last of an epoch short), the parameters saved
** to out as kiln_network_save writes them. */
static void jit_train(const char *net, const char *out, kiln_step_rule rule, int batches, const unsigned char *pix,
                      const unsigned char *lab)
{
    kiln_network *nw;
    ck_assert_msg(kiln_network_load(net, &nw) == KILN_OK, "%s", kiln_network_errmsg(nw));
    kiln_graph *g = kiln_network_graph(nw);
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = kiln_network_root(nw, "cost");
    o.step_rule = rule;
    o.max_size[0] = 16;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    static float x[N * IN];
    static int32_t y[N];
    for (int i = 0; i < N * IN; i++)
        x[i] = pix[i] / 255.0f; /* as kiln's IDX reader */
    for (int i = 0; i < N; i++)
        y[i] = lab[i];
    int at = 0;
    for (int s = 0; s < batches; s++) {
        int b = N - at < 16 ? N - at : 16;
        ck_assert(kiln_program_bind_input_n(p, "features", x + at * IN, (int64_t)b * IN) == KILN_OK);
        ck_assert(kiln_program_bind_input_n(p, "targets", y + at, b) == KILN_OK);
        ck_assert_msg(kiln_program_train_step(p, b) == KILN_OK, "%s", kiln_program_errmsg(p));
        at = at + b == N ? 0 : at + b;
    }
    ck_assert_msg(kiln_program_store_params(p) == KILN_OK, "%s", kiln_program_errmsg(p));
    int n = kiln_network_root_count(nw);
    kiln_node roots[4];
    const char *names[4];
    for (int k = 0; k < n; k++) {
        names[k] = kiln_network_root_name(nw, k);
        roots[k] = kiln_network_root(nw, names[k]);
    }
    ck_assert_msg(kiln_network_save(g, roots, names, n, out) == KILN_OK, "%s", kiln_graph_errmsg(g));
    kiln_program_destroy(p);
    kiln_network_destroy(nw);
}

/* Every parameter of the two network files, bit for bit; how many. */
static int same_params(const char *a, const char *b)
{
    kiln_network *na, *nb;
    ck_assert_msg(kiln_network_load(a, &na) == KILN_OK, "%s", kiln_network_errmsg(na));
    ck_assert_msg(kiln_network_load(b, &nb) == KILN_OK, "%s", kiln_network_errmsg(nb));
    const kiln_graph *ga = kiln_network_graph(na), *gb = kiln_network_graph(nb);
    ck_assert_int_eq(kiln_graph_node_count(ga), kiln_graph_node_count(gb));
    int n = 0;
    for (int id = 0; id < kiln_graph_node_count(ga); id++) {
        const kiln_param *pa = kiln_graph_node_param(ga, (kiln_node){id});
        const kiln_param *pb = kiln_graph_node_param(gb, (kiln_node){id});
        ck_assert((pa == NULL) == (pb == NULL));
        if (!pa)
            continue;
        ck_assert_int_eq(kiln_param_size(pa), kiln_param_size(pb));
        static double va[4096], vb[4096];
        ck_assert(kiln_param_size(pa) <= 4096);
        ck_assert(kiln_param_get_values(pa, va, kiln_param_size(pa)) == KILN_OK &&
                  kiln_param_get_values(pb, vb, kiln_param_size(pb)) == KILN_OK);
        for (int64_t k = 0; k < kiln_param_size(pa); k++)
            ck_assert_msg(memcmp(&va[k], &vb[k], sizeof *va) == 0, "%s element %lld: %a (program) %a (JIT)",
                          kiln_param_name(pa), (long long)k, va[k], vb[k]);
        n++;
    }
    kiln_network_destroy(na);
    kiln_network_destroy(nb);
    return n;
}

START_TEST(training_program_matches_the_jit_bit_for_bit)
{
    char dir[512], net[600], prog[600], images[600], labels[600], got[600], want[600], cmd[8192], out[16384];
    kiln_test_tmpdir(dir, sizeof dir, "aot_train");
    snprintf(net, sizeof net, "%s/mlp.h5", dir);
    snprintf(prog, sizeof prog, "%s/train", dir);
    snprintf(images, sizeof images, "%s/images.idx", dir);
    snprintf(labels, sizeof labels, "%s/labels.idx", dir);
    snprintf(got, sizeof got, "%s/trained.h5", dir);
    snprintf(want, sizeof want, "%s/jit.h5", dir);
    save_mlp(net);
    static unsigned char pix[N * IN], lab[N];
    write_idx(images, labels, pix, lab);
    struct { const char *args; kiln_step_rule rule; } rules[] = {
        {"--step-rule momentum --learning-rate 0.05", kiln_step_momentum(0.05, 0.9)},
        {"--step-rule adam", kiln_step_adam_default()},
    };
    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
        snprintf(cmd, sizeof cmd, "'%s' build '%s' -o '%s' --train --batch 16 %s --keep-sources '%s/src%zu'",
                 getenv("KILN_TOOL"), net, prog, rules[r].args, dir, r);
        ck_assert_msg(run_cmd(out, sizeof out, cmd) == 0, "%s", out);
        /* 5 batches: 16, 16, 5, then the next epoch's 16, 16 */
        snprintf(cmd, sizeof cmd, "'%s' --images '%s' --labels '%s' -o '%s' --batches 5", prog, images, labels, got);
        ck_assert_msg(run_cmd(out, sizeof out, cmd) == 0, "%s", out);
        jit_train(net, want, rules[r].rule, 5, pix, lab);
        ck_assert_int_eq(same_params(got, want), 4);
        /* the same description and values: the same bytes as kiln_network_save */
        snprintf(cmd, sizeof cmd, "cmp '%s' '%s'", got, want);
        ck_assert_msg(run_cmd(out, sizeof out, cmd) == 0, "%s", out);
    }
    /* an epoch is 3 batches */
    snprintf(cmd, sizeof cmd, "'%s' --images '%s' --labels '%s' -o '%s' --epochs 2", prog, images, labels, got);
    ck_assert_msg(run_cmd(out, sizeof out, cmd) == 0, "%s", out);
    jit_train(net, want, rules[1].rule, 6, pix, lab);
    ck_assert_int_eq(same_params(got, want), 4);

    /* no libkiln beside it */
    snprintf(cmd, sizeof cmd, "ldd '%s'", prog);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 0);
    ck_assert_msg(!strstr(out, "libkiln") && strstr(out, "libhdf5"), "%s", out);

    /* bad data: exit 1 naming the file, no output */
    unlink(got);
    snprintf(cmd, sizeof cmd, "head -c 100 '%s' > '%s/cut.idx' && '%s' --images '%s/cut.idx' --labels '%s' -o '%s'",
             images, dir, prog, dir, labels, got);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 1);
    ck_assert_msg(strstr(out, "cut.idx") && strstr(out, "size"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' --images '%s' --labels '%s' -o '%s'", prog, labels, labels, got);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 1);
    ck_assert_msg(strstr(out, "magic"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' --images '%s' --labels '%s' -o '%s/no/such/out.h5'", prog, images, labels, dir);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 1);
    ck_assert_msg(strstr(out, "no/such/out.h5"), "%s", out);
    ck_assert(access(got, F_OK) != 0);
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(build_refuses_bad_network_files_and_paths)
{
    char dir[512], net[600], cmd[4096], out[16384];
    kiln_test_tmpdir(dir, sizeof dir, "aot_bad");
    snprintf(net, sizeof net, "%s/mlp.h5", dir);
    save_mlp(net);
    const char *tool = getenv("KILN_TOOL");
    /* missing */
    snprintf(cmd, sizeof cmd, "'%s' build '%s/none.h5' -o '%s/p'", tool, dir, dir);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 1);
    ck_assert_msg(strstr(out, "none.h5") && strstr(out, "cannot open"), "%s", out);
    /* truncated */
    snprintf(cmd, sizeof cmd, "head -c 3000 '%s' > '%s/cut.h5' && '%s' build '%s/cut.h5' -o '%s/p'", net, dir, tool,
             dir, dir);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 1);
    ck_assert_msg(strstr(out, "cut.h5") && strstr(out, "truncated"), "%s", out);
    /* corrupted: one byte flipped after the header */
    snprintf(cmd, sizeof cmd,
             "cp '%s' '%s/bad.h5' && printf '\\377' | dd of='%s/bad.h5' bs=1 seek=2000 conv=notrunc 2>/dev/null && "
             "'%s' build '%s/bad.h5' -o '%s/p'", net, dir, dir, tool, dir, dir);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 1);
    ck_assert_msg(strstr(out, "bad.h5") && strstr(out, "SHA-256"), "%s", out);
    /* an unwritable output path: no file, exit 1 */
    snprintf(cmd, sizeof cmd, "'%s' build '%s' -o '%s/no/such/dir/p'", tool, net, dir);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 1);
    ck_assert_msg(strstr(out, "no/such/dir/p"), "%s", out);
    /* no partial program anywhere */
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep '^p'", dir);
    ck_assert_msg(run_cmd(out, sizeof out, cmd) == 1, "%s", out);
    /* usage errors exit 2; --help exits 0 */
    snprintf(cmd, sizeof cmd, "'%s' build '%s'", tool, net);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 2);
    snprintf(cmd, sizeof cmd, "'%s' build --help", tool);
    ck_assert_int_eq(run_cmd(out, sizeof out, cmd), 0);
    ck_assert_msg(strstr(out, "usage: kiln build"), "%s", out);
    kiln_test_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aot");
    TCase *t = tcase_create("aot");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, inference_program_matches_the_jit_bit_for_bit);
    tcase_add_test(t, training_program_matches_the_jit_bit_for_bit);
    tcase_add_test(t, build_refuses_bad_network_files_and_paths);
    suite_add_tcase(s, t);
    return kiln_test_run(s);
}
