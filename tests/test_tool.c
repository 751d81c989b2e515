/* test_tool.c: the `kiln` command (tools/kiln), run as a user runs it:
** its output, exit codes and messages, on a cache this test fills.
**
** kiln export end to end (#12): an MLP trained a few steps on made-up data,
** saved as a network file, exported by the command, loaded with dlopen by
** a program compiled here that includes only the generated header: the
** outputs are the JIT forward's bits with --blas (both call CBLAS for the
** products: the JIT compiled without fast paths), within 1e-5 relative
** with the plain-C products; ldd lists libc, libm and the loader only
** (OpenBLAS too with --blas); and each bad input is exit 1 (2 for usage)
** with no file left behind. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kiln/kiln.h"
#include "testutil.h"

/* Run `kiln args` with stdout and stderr into out (cap bytes); the exit code. */
static int run_tool(char *out, size_t cap, const char *args)
{
    const char *tool = getenv("KILN_TOOL");
    ck_assert_msg(tool, "KILN_TOOL is not set (tests/meson.build sets it)");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", tool, args);
    FILE *f = popen(cmd, "r");
    ck_assert(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int status = pclose(f);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Compile a one-layer model into cache_dir: one cache entry. */
static void compile_into(const char *cache_dir, double scale)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 3});
    kiln_node y = kiln_expr_mul(g, kiln_expr_tanh(g, x), kiln_expr_constant(g, scale));
    kiln_compile_options o = kiln_compile_options_default();
    o.outputs = &y;
    o.n_outputs = 1;
    o.cache_dir = cache_dir;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
}

START_TEST(cache_list_clear_prune)
{
    char dir[512], out[8192], args[1024];
    kiln_test_tmpdir(dir, sizeof dir, "tool_cache");
    compile_into(dir, 2.0);
    compile_into(dir, 3.0);

    snprintf(args, sizeof args, "cache list --dir '%s'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strstr(out, "2 entries"), "%s", out);
    int ok = 0;
    for (const char *s = out; (s = strstr(s, " ok source\n")); s++)
        ok++;
    ck_assert_msg(ok == 2, "%s", out);

    /* damage one library: list says so, and why */
    kiln_cache_report r;
    ck_assert_int_eq(kiln_cache_list(dir, NULL, NULL, &r), KILN_OK);
    ck_assert_int_eq(r.n_entries, 2);
    char so[1024];
    FILE *ls = NULL;
    snprintf(args, sizeof args, "ls '%s'/*/*.so | head -1", dir);
    ls = popen(args, "r");
    ck_assert(ls && fgets(so, sizeof so, ls));
    pclose(ls);
    so[strcspn(so, "\n")] = '\0';
    FILE *f = fopen(so, "r+b");
    ck_assert(f);
    fseek(f, 100, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 100, SEEK_SET);
    fputc(c ^ 0xff, f);
    fclose(f);
    snprintf(args, sizeof args, "cache list --dir '%s'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strstr(out, "unverified source: its SHA-256 differs from its record"), "%s", out);

    snprintf(args, sizeof args, "cache prune --dir '%s'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strstr(out, "removed 0 files"), "%s", out);

    snprintf(args, sizeof args, "cache clear --dir '%s'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strstr(out, "removed 2 entries"), "%s", out);
    snprintf(args, sizeof args, "cache list --dir '%s'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strstr(out, "0 entries, 0 bytes"), "%s", out);
    /* and a compile after a clear builds again */
    compile_into(dir, 2.0);
    ck_assert_int_eq(kiln_cache_list(dir, NULL, NULL, &r), KILN_OK);
    ck_assert_int_eq(r.n_entries, 1);
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(cache_refuses_a_folder_others_may_write)
{
    char dir[512], out[4096], args[1024];
    kiln_test_tmpdir(dir, sizeof dir, "tool_open");
    ck_assert_int_eq(chmod(dir, 0777), 0);
    snprintf(args, sizeof args, "cache clear --dir '%s'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 1);
    ck_assert_msg(strstr(out, "kiln cache clear: ") && strstr(out, "writable by group and others"), "%s", out);
    kiln_cache_report r;
    ck_assert_int_eq(kiln_cache_list(dir, NULL, NULL, &r), KILN_ERR_IO);
    ck_assert_msg(strstr(r.msg, "refusing"), "%s", r.msg);
    chmod(dir, 0700);
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(inspect_and_graph_read_a_network_file)
{
    char dir[512], path[600], out[16384], args[1024];
    kiln_test_tmpdir(dir, sizeof dir, "tool_net");
    snprintf(path, sizeof path, "%s/net.h5", dir);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_param *w = kiln_param_create("W", 2, (int64_t[]){3, 2});
    ck_assert_int_eq(kiln_param_set_values(w, (double[]){1, 2, 3, 4, 5, 6}, 6), KILN_OK);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 3});
    kiln_node y = kiln_expr_tanh(g, kiln_expr_matmul(g, x, kiln_graph_param(g, w)));
    ck_assert_msg(kiln_network_save(g, &y, (const char *const[]){"y"}, 1, path) == KILN_OK, "%s",
                  kiln_graph_errmsg(g));

    snprintf(args, sizeof args, "inspect '%s'", path);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strstr(out, "root y tanh float32 (B, 2)\n") && strstr(out, "input x float32 (B, 3)\n") &&
                      strstr(out, "param W (3, 2) 6\n") && strstr(out, "nodes "),
                  "%s", out);
    snprintf(args, sizeof args, "graph '%s'", path);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strncmp(out, "digraph kiln {", 14) == 0 && strstr(out, "tanh"), "%s", out);
    snprintf(args, sizeof args, "graph '%s' --after-passes", path);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strncmp(out, "digraph kiln {", 14) == 0 && strstr(out, "matmul"), "%s", out);

    /* not a network file, a missing one: exit 1 naming it; no file: exit 2 */
    snprintf(args, sizeof args, "inspect '%s'", getenv("KILN_TOOL"));
    ck_assert_int_eq(run_tool(out, sizeof out, args), 1);
    ck_assert_msg(strstr(out, "kiln inspect: ") && strstr(out, "not a kiln network file"), "%s", out);
    snprintf(args, sizeof args, "graph '%s/missing.h5'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 1);
    ck_assert_msg(strstr(out, "kiln graph: ") && strstr(out, "missing.h5"), "%s", out);
    ck_assert_int_eq(run_tool(out, sizeof out, "inspect"), 2);
    ck_assert_int_eq(run_tool(out, sizeof out, "graph --bogus x.h5"), 2);
    kiln_graph_destroy(g);
    kiln_param_destroy(w);
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(usage_errors_exit_2_and_help_exits_0)
{
    char out[4096];
    ck_assert_int_eq(run_tool(out, sizeof out, ""), 2);
    ck_assert_msg(strstr(out, "usage: kiln COMMAND"), "%s", out);
    ck_assert_int_eq(run_tool(out, sizeof out, "frobnicate"), 2);
    ck_assert_msg(strstr(out, "kiln: no command 'frobnicate'"), "%s", out);
    ck_assert_int_eq(run_tool(out, sizeof out, "cache"), 2);
    ck_assert_int_eq(run_tool(out, sizeof out, "cache list --dir"), 2);
    ck_assert_msg(strstr(out, "--dir needs a folder"), "%s", out);
    ck_assert_int_eq(run_tool(out, sizeof out, "cache sweep"), 2);
    ck_assert_msg(strstr(out, "unknown action 'sweep'"), "%s", out);
    ck_assert_int_eq(run_tool(out, sizeof out, "cache list --dir ''"), 1); /* "" is not a folder */
    ck_assert_int_eq(run_tool(out, sizeof out, "--help"), 0);
    ck_assert_int_eq(run_tool(out, sizeof out, "cache --help"), 0);
    ck_assert_msg(strstr(out, "usage: kiln cache list"), "%s", out);
    ck_assert_int_eq(run_tool(out, sizeof out, "help cache"), 0);
    ck_assert_int_eq(run_tool(out, sizeof out, "--version"), 0);
    ck_assert_msg(strncmp(out, "kiln " KILN_VERSION_STRING "\n", strlen(KILN_VERSION_STRING) + 6) == 0, "%s", out);
}
END_TEST

/* ---- kiln export ---------------------------------------------------------------- */

enum { X_IN = 24, X_HID = 16, X_OUT = 5, X_EX = 64, X_BATCH = 16, X_MAX = 32 };

/* The program that uses an export: only the generated header (and libc,
** dlfcn); the library's functions looked up with dlsym by the header's
** names and types. argv: library, weights file or "-", batch, inputs file
** (raw floats), outputs file. */
static const char USE_EXPORT_C[] =
    "#include <dlfcn.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include \"mlp.h\"\n"
    "#define LOOK(f) __typeof__(f) *p_##f = (__typeof__(f) *)dlsym(dl, #f); if (!p_##f) return 3\n"
    "int main(int argc, char **argv)\n{\n"
    "    if (argc != 6) return 2;\n"
    "    void *dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);\n"
    "    if (!dl) { fprintf(stderr, \"%s\\n\", dlerror()); return 3; }\n"
    "    LOOK(mlp_abi_version); LOOK(mlp_weights_load); LOOK(mlp_weights_free); LOOK(mlp_create);\n"
    "    LOOK(mlp_destroy); LOOK(mlp_forward);\n"
    "    if (p_mlp_abi_version() != mlp_ABI_VERSION || mlp_N_INPUTS != 1 || mlp_N_OUTPUTS != 1) return 4;\n"
    "    long batch = atol(argv[3]);\n"
    "    float *in = malloc(sizeof(float) * batch * mlp_INPUT0_SIZE), *out = malloc(sizeof(float) * batch * mlp_OUTPUT0_SIZE);\n"
    "    FILE *f = fopen(argv[4], \"rb\");\n"
    "    if (!in || !out || !f || fread(in, sizeof(float), batch * mlp_INPUT0_SIZE, f) != (size_t)(batch * mlp_INPUT0_SIZE)) return 5;\n"
    "    fclose(f);\n"
    "    mlp_weights *w; mlp_ctx *ctx;\n"
    "    int st = p_mlp_weights_load(argv[2][0] == '-' ? NULL : argv[2], &w);\n"
    "    if (st || (st = p_mlp_create(w, &ctx))) return 10 + st;\n"
    "    const float *ins[1] = {in};\n    float *outs[1] = {out};\n"
    "    if ((st = p_mlp_forward(ctx, ins, outs, batch))) return 10 + st;\n"
    "    f = fopen(argv[5], \"wb\");\n"
    "    if (!f || fwrite(out, sizeof(float), batch * mlp_OUTPUT0_SIZE, f) != (size_t)(batch * mlp_OUTPUT0_SIZE) || fclose(f)) return 6;\n"
    "    p_mlp_destroy(ctx);\n    p_mlp_weights_free(w);\n    free(in);\n    free(out);\n    dlclose(dl);\n    return 0;\n}\n";

typedef struct trained {
    kiln_graph *g;
    kiln_brick *mlp, *cce;
    kiln_program *p;
    kiln_node x, probs;
    float pixels[X_EX * X_IN];
} trained;

/* An MLP (Rectifier, Softmax) trained 6 steps on made-up classes, compiled
** without fast paths (the JIT's products are CBLAS's), saved to path with
** roots probs and cost. */
static void train_and_save(trained *t, const char *path)
{
    int32_t labels[X_EX];
    srand(5);
    for (int i = 0; i < X_EX; i++) {
        labels[i] = rand() % X_OUT;
        for (int j = 0; j < X_IN; j++)
            t->pixels[i * X_IN + j] = (float)(rand() % 100) / 300 + (j * X_OUT / X_IN == labels[i] ? 0.4f : 0);
    }
    t->g = kiln_graph_create(KILN_DTYPE_F32);
    t->x = kiln_graph_input(t->g, "features", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, X_IN});
    kiln_node y = kiln_graph_input(t->g, "targets", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    kiln_brick *acts[2] = {kiln_rectifier_create(NULL), kiln_softmax_create(NULL)};
    t->mlp = kiln_mlp_create("mlp", acts, 2, (int64_t[]){X_IN, X_HID, X_OUT});
    t->cce = kiln_categorical_cross_entropy_create(NULL);
    kiln_brick_set_weights_init(t->mlp, kiln_init_isotropic_gaussian(0.2, 0));
    kiln_brick_set_biases_init(t->mlp, kiln_init_constant(0.01));
    kiln_node cost;
    ck_assert_msg(!kiln_brick_apply(t->mlp, t->g, t->x, &t->probs) && !kiln_cost_apply(t->cce, t->g, y, t->probs, &cost) &&
                      !kiln_brick_initialize(t->mlp),
                  "%s", kiln_brick_errmsg(t->mlp));
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = cost;
    o.step_rule = kiln_step_scale(0.05);
    o.outputs = &t->probs;
    o.n_outputs = 1;
    o.max_batch = X_MAX;
    o.no_fast_paths = true;
    ck_assert_msg(kiln_compile(t->g, &o, &t->p) == KILN_OK, "%s", kiln_program_errmsg(t->p));
    for (int step = 0; step < 6; step++) {
        int b = step % (X_EX / X_BATCH) * X_BATCH;
        kiln_program_bind_input(t->p, "features", t->pixels + (size_t)b * X_IN);
        kiln_program_bind_input(t->p, "targets", labels + b);
        ck_assert_msg(kiln_program_train_step(t->p, X_BATCH) == KILN_OK, "%s", kiln_program_errmsg(t->p));
    }
    ck_assert_int_eq(kiln_program_store_params(t->p), KILN_OK);
    ck_assert_msg(kiln_network_save(t->g, (kiln_node[]){t->probs, cost}, (const char *const[]){"probs", "cost"}, 2,
                                    path) == KILN_OK,
                  "%s", kiln_graph_errmsg(t->g));
}

static void trained_free(trained *t)
{
    kiln_program_destroy(t->p);
    kiln_graph_destroy(t->g);
    kiln_brick_destroy(t->mlp);
    kiln_brick_destroy(t->cce);
}

/* Entries in dir (. and .. aside). */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* Build USE_EXPORT_C against dir/mlp.h into dir/use, run it on the first
** batch examples with library lib (weights "-": embedded), read the outputs. */
static void run_export(const trained *t, const char *dir, const char *lib, const char *weights, int batch, float *out)
{
    char path[700], cmd[4096], log[8192];
    snprintf(path, sizeof path, "%s/use.c", dir);
    FILE *f = fopen(path, "wb");
    ck_assert(f && fputs(USE_EXPORT_C, f) >= 0 && !fclose(f));
    snprintf(path, sizeof path, "%s/in.raw", dir);
    f = fopen(path, "wb");
    ck_assert(f && fwrite(t->pixels, sizeof(float), (size_t)batch * X_IN, f) == (size_t)batch * X_IN && !fclose(f));
    const char *cc = getenv("KILN_CC") ? getenv("KILN_CC") : "cc";
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' -std=gnu11 -Wall -Werror -I. -o use use.c -ldl 2>&1 && ./use '%s' '%s' %d in.raw out.raw 2>&1",
             dir, cc, lib, weights, batch);
    FILE *p = popen(cmd, "r");
    ck_assert(p);
    size_t n = fread(log, 1, sizeof log - 1, p);
    log[n] = '\0';
    int status = pclose(p);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %d: %s", cmd, WEXITSTATUS(status), log);
    snprintf(path, sizeof path, "%s/out.raw", dir);
    f = fopen(path, "rb");
    ck_assert(f && fread(out, sizeof(float), (size_t)batch * X_OUT, f) == (size_t)batch * X_OUT);
    fclose(f);
}

static void jit_forward(trained *t, int batch, float *out)
{
    double d[X_MAX * X_OUT];
    kiln_program_bind_input(t->p, "features", t->pixels);
    ck_assert_msg(kiln_program_forward(t->p, batch) == KILN_OK, "%s", kiln_program_errmsg(t->p));
    ck_assert(kiln_program_read(t->p, t->probs, d, (int64_t)batch * X_OUT) == KILN_OK);
    for (int i = 0; i < batch * X_OUT; i++)
        out[i] = (float)d[i];
}

/* ldd of lib: libc, libm, the loader, the vDSO, and OpenBLAS (with what it
** pulls in: gfortran, quadmath, pthread) when blas. */
static void check_ldd(const char *lib, bool blas)
{
    char cmd[1024], line[1024];
    snprintf(cmd, sizeof cmd, "ldd '%s' 2>&1", lib);
    FILE *p = popen(cmd, "r");
    ck_assert(p);
    int libc = 0, openblas = 0;
    while (fgets(line, sizeof line, p)) {
        const char *l = line + strspn(line, " \t");
        bool blas_part = strncmp(l, "libopenblas", 11) == 0 || strncmp(l, "libblas", 7) == 0 ||
                         strncmp(l, "libgfortran", 11) == 0 || strncmp(l, "libquadmath", 11) == 0 ||
                         strncmp(l, "libgcc_s", 8) == 0 || strncmp(l, "libpthread", 10) == 0;
        bool ok = strncmp(l, "linux-vdso.so", 13) == 0 || strncmp(l, "libc.so", 7) == 0 ||
                  strncmp(l, "libm.so", 7) == 0 || strstr(l, "ld-linux") != NULL || (blas && blas_part);
        ck_assert_msg(ok, "%s depends on: %s", lib, l);
        libc += strncmp(l, "libc.so", 7) == 0;
        openblas += strncmp(l, "libopenblas", 11) == 0 || strncmp(l, "libblas", 7) == 0;
    }
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_int_eq(libc, 1);
    ck_assert_int_eq(openblas, blas ? 1 : 0);
}

START_TEST(export_a_trained_network_end_to_end)
{
    char dir[512], net[600], sub[700], lib[800], out[16384], args[4096];
    kiln_test_tmpdir(dir, sizeof dir, "tool_export");
    snprintf(net, sizeof net, "%s/net.h5", dir);
    trained t;
    train_and_save(&t, net);
    static const int batches[] = {1, 7, X_MAX};
    for (int blas = 0; blas < 2; blas++) {
        /* -o a folder, the name from the file (net), weights in a side file */
        snprintf(sub, sizeof sub, "%s/%s", dir, blas ? "blas" : "plain");
        ck_assert_int_eq(mkdir(sub, 0700), 0);
        snprintf(args, sizeof args, "export '%s' -o '%s' --name mlp --max-batch %d%s", net, sub, X_MAX,
                 blas ? " --blas --weights file" : "");
        ck_assert_msg(run_tool(out, sizeof out, args) == 0, "%s", out);
        snprintf(lib, sizeof lib, "%s/mlp.so", sub);
        ck_assert_msg(strstr(out, lib) && strstr(out, "mlp.h\n"), "%s", out);
        check_ldd(lib, blas);
        char weights[800];
        snprintf(weights, sizeof weights, "%s/mlp.weights", sub);
        for (int k = 0; k < 3; k++) {
            float a[X_MAX * X_OUT], b[X_MAX * X_OUT];
            run_export(&t, sub, lib, blas ? weights : "-", batches[k], a);
            jit_forward(&t, batches[k], b);
            for (int j = 0; j < X_OUT; j++) /* not saturated: every bit of the products shows */
                ck_assert_msg(b[j] > 0.01f && b[j] < 0.9f, "output %d is %g", j, b[j]);
            for (int i = 0; i < batches[k] * X_OUT; i++) {
                if (blas)
                    ck_assert_msg(memcmp(&a[i], &b[i], sizeof(float)) == 0, "--blas, batch %d, element %d: %.9g, JIT %.9g",
                                  batches[k], i, a[i], b[i]);
                else
                    ck_assert_msg(fabsf(a[i] - b[i]) <= 1e-5f * fabsf(b[i]), "batch %d, element %d: %.9g, JIT %.9g",
                                  batches[k], i, a[i], b[i]);
            }
        }
    }
    /* -o libNAME.so: the name from it; only the probs root (the default leaves the scalar cost out) */
    snprintf(lib, sizeof lib, "%s/plain/libdigits.so", dir);
    snprintf(args, sizeof args, "export '%s' -o '%s' --output probs", net, lib);
    ck_assert_msg(run_tool(out, sizeof out, args) == 0, "%s", out);
    snprintf(sub, sizeof sub, "%s/plain/digits.h", dir);
    struct stat sb;
    ck_assert_msg(stat(lib, &sb) == 0 && stat(sub, &sb) == 0, "%s", out);
    snprintf(sub, sizeof sub, "%s/plain/digits.so", dir);
    ck_assert(stat(sub, &sb) != 0);
    /* a root asked for is exported or refused by name: the cost needs the int32 targets */
    snprintf(args, sizeof args, "export '%s' -o '%s/plain' --name both --output probs --output cost --source-only", net, dir);
    ck_assert_msg(run_tool(out, sizeof out, args) == 1 && strstr(out, "input 1 'targets' is int32"), "%s", out);
    trained_free(&t);
    kiln_test_rmtree(dir);
}
END_TEST

/* Each failure: its exit code, its message, and the folder as it was. */
START_TEST(export_errors_leave_no_file)
{
    char dir[512], net[600], outdir[700], bad[700], out[16384], args[4096];
    kiln_test_tmpdir(dir, sizeof dir, "tool_export_err");
    snprintf(net, sizeof net, "%s/net.h5", dir);
    trained t;
    train_and_save(&t, net);
    snprintf(outdir, sizeof outdir, "%s/out", dir);
    ck_assert_int_eq(mkdir(outdir, 0700), 0);
    /* a truncated copy, and a copy with one byte changed */
    FILE *f = fopen(net, "rb");
    ck_assert(f);
    static char bytes[1 << 20];
    size_t n = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    ck_assert(n > 2000 && n < sizeof bytes);
    snprintf(bad, sizeof bad, "%s/trunc.h5", dir);
    f = fopen(bad, "wb");
    ck_assert(f && fwrite(bytes, 1, n / 2, f) == n / 2 && !fclose(f));
    bytes[n - 100] ^= 0x10;
    snprintf(bad, sizeof bad, "%s/flipped.h5", dir);
    f = fopen(bad, "wb");
    ck_assert(f && fwrite(bytes, 1, n, f) == n && !fclose(f));

    static const struct {
        const char *args, *says, *says2;
        int rc;
    } cases[] = {
        {"export '%1$s/missing.h5' -o '%1$s/out'", "missing.h5", "kiln export: ", 1},
        {"export '%1$s/trunc.h5' -o '%1$s/out'", "trunc.h5", "truncated", 1},
        {"export '%1$s/flipped.h5' -o '%1$s/out'", "flipped.h5", "SHA-256", 1},
        {"export '%1$s/net.h5' -o '%1$s/out' --output nope", "'nope' is not a root", "probs, cost", 1},
        {"export '%1$s/net.h5' -o '%1$s/out/none/libx.so'", "export: cannot write ", "none/x.h", 1},
        {"export '%1$s/net.h5' -o '%1$s/net.h5/libx.so'", "cannot write ", "net.h5/x.h", 1},
        {"export '%1$s/net.h5' -o '%1$s/nowhere'", "not a folder", "nowhere", 1},
        {"export '%1$s/net.h5' -o '%1$s/out' --name net", "out/net.so: it is a folder", "", 1},
        {"export '%1$s/net.h5'", "where to?", "usage: kiln export", 2},
        {"export '%1$s/net.h5' -o '%1$s/out' --weights bogus", "embedded or file", "", 2},
        {"export '%1$s/net.h5' -o '%1$s/out' --max-batch 0", "--max-batch '0'", "", 2},
        {"export '%1$s/net.h5' -o '%1$s/out' --name 9lives", "export: name '9lives'", "", 1},
        {"export -o '%1$s/out'", "which network file?", "", 2},
        {"export --help", "usage: kiln export NET.h5 -o DIR|LIBNAME.so", "--weights embedded|file", 0},
    };
    int in_dir = count_entries(dir);
    char folder[800];
    snprintf(folder, sizeof folder, "%s/net.so", outdir); /* where case 8's library would go */
    ck_assert_int_eq(mkdir(folder, 0700), 0);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        snprintf(args, sizeof args, cases[k].args, dir);
        int rc = run_tool(out, sizeof out, args);
        ck_assert_msg(rc == cases[k].rc, "%s: exit %d: %s", args, rc, out);
        ck_assert_msg(strstr(out, cases[k].says) && strstr(out, cases[k].says2), "%s: %s", args, out);
        ck_assert_msg(count_entries(outdir) == 1, "%s left files in %s", args, outdir);
        ck_assert_msg(count_entries(dir) == in_dir, "%s left files in %s", args, dir);
    }
    trained_free(&t);
    kiln_test_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tool");
    TCase *t = tcase_create("kiln");
    tcase_add_test(t, cache_list_clear_prune);
    tcase_add_test(t, cache_refuses_a_folder_others_may_write);
    tcase_add_test(t, inspect_and_graph_read_a_network_file);
    tcase_add_test(t, usage_errors_exit_2_and_help_exits_0);
    tcase_add_test(t, export_a_trained_network_end_to_end);
    tcase_add_test(t, export_errors_leave_no_file);
    suite_add_tcase(s, t);
    return kiln_test_run(s);
}
