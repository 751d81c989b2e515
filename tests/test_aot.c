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
    tcase_add_test(t, build_refuses_bad_network_files_and_paths);
    suite_add_tcase(s, t);
    return kiln_test_run(s);
}
