/* test_export.c: inference-only shared objects (kiln_program_export, #12).
**
** A small MLP (Rectifier, Softmax; CategoricalCrossEntropy) is trained for
** a few steps on made-up data, then exported; the .so is built with the
** JIT's compiler and dlopen'ed here, its functions looked up by the names
** the generated header declares. Checked: the plain-C printer's outputs
** within 1e-5 relative of the JIT forward; with
** CBLAS, the same bits as a JIT program compiled without fast paths (the
** same kernels); ldd of the plain .so (libc, libm, the loader, the vDSO);
** two contexts in two threads; every bad argument a status; the weights
** file's header checks; a crafted name that changes nothing but comments
** and string literals; and docs/export.md's program, compiled and run as
** written. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln/kiln.h"
#include "testutil.h"

enum { N_IN = 48, N_HID = 32, N_OUT = 10, N_EX = 128, BATCH = 32, MAX_BATCH = 64 };

/* the generated ABI (NAME.h), as function pointers */
typedef int (*weights_load_fn)(const char *, void **);
typedef void (*weights_free_fn)(void *);
typedef int (*create_fn)(const void *, void **);
typedef void (*destroy_fn)(void *);
typedef int (*forward_fn)(void *, const float *const *, float *const *, int64_t);
typedef int (*abi_fn)(void);

typedef struct so {
    void *dl;
    weights_load_fn weights_load;
    weights_free_fn weights_free;
    create_fn create;
    destroy_fn destroy;
    forward_fn forward;
    abi_fn abi;
} so;

typedef struct model {
    kiln_graph *g;
    kiln_brick *mlp, *cce;
    kiln_program *p;
    kiln_node probs;
} model;

static float pixels[N_EX * N_IN];
static int32_t labels[N_EX];

static void make_data(void)
{
    srand(11);
    for (int i = 0; i < N_EX; i++) {
        labels[i] = rand() % N_OUT;
        for (int j = 0; j < N_IN; j++)
            pixels[i * N_IN + j] = (float)(rand() % 100) / 400 + (j * N_OUT / N_IN == labels[i] ? 0.5f : 0);
    }
}

/* The MLP, its names given (NULL: the bricks' own), trained for a few steps. */
static void model_build(model *m, const char *input, const char *brick, bool no_fast_paths)
{
    make_data();
    m->g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(m->g, input, KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, N_IN});
    kiln_node y = kiln_graph_input(m->g, "targets", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    kiln_brick *acts[2] = {kiln_rectifier_create(NULL), kiln_softmax_create(NULL)};
    m->mlp = kiln_mlp_create(brick, acts, 2, (int64_t[]){N_IN, N_HID, N_OUT});
    m->cce = kiln_categorical_cross_entropy_create(NULL);
    kiln_brick_set_weights_init(m->mlp, kiln_init_isotropic_gaussian(0.1, 0));
    kiln_brick_set_biases_init(m->mlp, kiln_init_constant(0.01));
    kiln_node cost;
    ck_assert_msg(!kiln_brick_apply(m->mlp, m->g, x, &m->probs) && !kiln_cost_apply(m->cce, m->g, y, m->probs, &cost) &&
                      !kiln_brick_initialize(m->mlp),
                  "%s", kiln_brick_errmsg(m->mlp));
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "mlp";
    o.cost = cost;
    o.step_rule = kiln_step_scale(0.02);
    o.outputs = &m->probs;
    o.n_outputs = 1;
    o.max_batch = MAX_BATCH;
    o.no_fast_paths = no_fast_paths;
    ck_assert_msg(kiln_compile(m->g, &o, &m->p) == KILN_OK, "%s", kiln_program_errmsg(m->p));
    for (int step = 0; step < 8; step++) {
        int b = step % (N_EX / BATCH) * BATCH;
        kiln_program_bind_input(m->p, input, pixels + (size_t)b * N_IN);
        kiln_program_bind_input(m->p, "targets", labels + b);
        ck_assert_msg(kiln_program_train_step(m->p, BATCH) == KILN_OK, "%s", kiln_program_errmsg(m->p));
    }
}

static void model_free(model *m)
{
    kiln_program_destroy(m->p);
    kiln_graph_destroy(m->g);
    kiln_brick_destroy(m->mlp);
    kiln_brick_destroy(m->cce);
}

/* The JIT forward of the first batch examples, as floats. */
static void jit_forward(model *m, const char *input, int64_t batch, float *out)
{
    double d[MAX_BATCH * N_OUT];
    kiln_program_bind_input(m->p, input, pixels);
    ck_assert_msg(kiln_program_forward(m->p, batch) == KILN_OK, "%s", kiln_program_errmsg(m->p));
    ck_assert(kiln_program_read(m->p, m->probs, d, batch * N_OUT) == KILN_OK);
    for (int64_t i = 0; i < batch * N_OUT; i++)
        out[i] = (float)d[i];
}

static void export_to(model *m, const char *dir, const char *name, bool blas, bool weights_file)
{
    kiln_export_options o = kiln_export_options_default();
    o.name = name;
    o.dir = dir;
    o.blas = blas;
    o.weights_file = weights_file;
    o.compile = true;
    ck_assert_msg(kiln_program_export(m->p, &o) == KILN_OK, "%s", kiln_program_errmsg(m->p));
}

static void *sym(void *dl, const char *name, const char *fn)
{
    char s[128];
    snprintf(s, sizeof s, "%s_%s", name, fn);
    void *f = dlsym(dl, s);
    ck_assert_msg(f != NULL, "%s: %s", s, dlerror());
    return f;
}

static so so_open(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.so", dir, name);
    so s = {.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)};
    ck_assert_msg(s.dl != NULL, "%s", dlerror());
    s.weights_load = (weights_load_fn)sym(s.dl, name, "weights_load");
    s.weights_free = (weights_free_fn)sym(s.dl, name, "weights_free");
    s.create = (create_fn)sym(s.dl, name, "create");
    s.destroy = (destroy_fn)sym(s.dl, name, "destroy");
    s.forward = (forward_fn)sym(s.dl, name, "forward");
    s.abi = (abi_fn)sym(s.dl, name, "abi_version");
    ck_assert_int_eq(s.abi(), KILN_EXPORT_ABI_VERSION);
    return s;
}

/* forward of the first batch examples through the .so */
static void so_forward(const so *s, const char *weights, int64_t batch, float *out)
{
    void *w = NULL, *ctx = NULL;
    ck_assert_int_eq(s->weights_load(weights, &w), 0);
    ck_assert_int_eq(s->create(w, &ctx), 0);
    const float *in[1] = {pixels};
    float *outs[1] = {out};
    ck_assert_int_eq(s->forward(ctx, in, outs, batch), 0);
    s->destroy(ctx);
    s->weights_free(w);
}

/* |a - b| <= 1e-5 |b|: the plain printer's promise */
static void assert_close(const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(a[i] - b[i]) <= 1e-5f * fabsf(b[i]), "element %lld: %.9g vs JIT %.9g",
                      (long long)i, a[i], b[i]);
}

/* Export (plain or CBLAS), then compare with the JIT forward at batches 1,
** 7 and the largest: within 1e-5, or the same bits. */
static void compare_with_jit(bool blas)
{
    model m;
    model_build(&m, "features", NULL, blas);
    char dir[256];
    const char *name = blas ? "mlp_blas" : "mlp_plain";
    kiln_test_tmpdir(dir, sizeof dir, "kiln_export");
    export_to(&m, dir, name, blas, false);
    so s = so_open(dir, name);
    static const int64_t batches[] = {1, 7, MAX_BATCH};
    for (int k = 0; k < 3; k++) {
        float a[MAX_BATCH * N_OUT], b[MAX_BATCH * N_OUT];
        so_forward(&s, NULL, batches[k], a);
        jit_forward(&m, "features", batches[k], b);
        for (int j = 0; j < N_OUT; j++) /* not saturated: every bit of the products shows */
            ck_assert_msg(b[j] > 0.01f && b[j] < 0.9f, "output %d is %g", j, b[j]);
        if (!blas)
            assert_close(a, b, batches[k] * N_OUT);
        else
            ck_assert_msg(memcmp(a, b, sizeof(float) * (size_t)(batches[k] * N_OUT)) == 0,
                          "batch %lld: the BLAS export differs from the JIT forward", (long long)batches[k]);
    }
    dlclose(s.dl);
    kiln_test_rmtree(dir);
    model_free(&m);
}

START_TEST(export_plain_matches_jit) { compare_with_jit(false); }
END_TEST

/* The same kernels (CBLAS, no fast paths on either side): the same bits. */
START_TEST(export_blas_bitwise) { compare_with_jit(true); }
END_TEST

/* Run cmd (sh -c) and return its stdout (malloc'd) and exit status. */
static char *run_capture(const char *cmd, int *status)
{
    FILE *f = popen(cmd, "r");
    ck_assert(f != NULL);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    ck_assert(buf != NULL);
    size_t k;
    while ((k = fread(buf + n, 1, cap - 1 - n, f)) > 0)
        n += k;
    buf[n] = '\0';
    *status = pclose(f);
    return buf;
}

/* The plain-C products of an export (k_xgemm, k_xgemv: docs/export.md,
** "Numbers"), taken from a generated NAME.c and run by a program compiled
** here on shapes that reach every block and edge of k_gemm_nn (4-row blocks,
** single rows, the last block moved left, n < 8, k not a multiple of 8,
** alpha and beta other than 1 and 0, the transposed cases): each element
** within 1e-5 of a float64 sum (relative to the sum of |terms|), and with
** AVX2 and without it the same bits. */
static const char PRODUCTS_C[] =
    "#include \"mlp_gemm.c\"\n"
    "#include <stdio.h>\n"
    "static float A[9 * 800], Bm[800 * 130], C[9 * 130], C2[9 * 130], C0[9 * 130];\n"
    "static int check(int ta, int tb, int m, int n, int k, float alpha, float beta)\n{\n"
    "    int lda = ta ? m : k, ldb = tb ? k : n;\n"
    "    for (int i = 0; i < m * n; i++) C[i] = C2[i] = C0[i] = (float)((i * 37) % 11) / 7 - 0.5f;\n"
    "    k_xgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, A, lda, Bm, ldb, beta, C, n);\n"
    "    for (int i = 0; i < m; i++)\n"
    "        for (int j = 0; j < n; j++) {\n"
    "            double s = 0, mag = 0;\n"
    "            for (int p = 0; p < k; p++) {\n"
    "                double t = (double)(ta ? A[p * lda + i] : A[i * lda + p]) * (tb ? Bm[j * ldb + p] : Bm[p * ldb + j]);\n"
    "                s += t;\n                mag += t < 0 ? -t : t;\n"
    "            }\n"
    "            double want = (double)alpha * s + (beta == 0 ? 0 : (double)beta * C0[i * n + j]);\n"
    "            mag = (double)(alpha < 0 ? -alpha : alpha) * mag + (beta < 0 ? -beta : beta) * (C0[i * n + j] < 0 ? -C0[i * n + j] : C0[i * n + j]);\n"
    "            double d = C[i * n + j] - want;\n"
    "            if ((d < 0 ? -d : d) > 1e-5 * mag + 1e-30) {\n"
    "                printf(\"ta %d tb %d m %d n %d k %d alpha %g beta %g: c(%d, %d) = %.9g, want %.9g\\n\", ta, tb, m, n, k, alpha, beta, i, j, C[i * n + j], want);\n"
    "                return 1;\n"
    "            }\n"
    "        }\n"
    "#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))\n"
    "    if (!ta && !tb && __builtin_cpu_supports(\"avx2\") && __builtin_cpu_supports(\"fma\")) {\n"
    "        for (int i = 0; i < m * n; i++) C[i] = C2[i] = C0[i];\n"
    "        k_gemm_nn_avx2(m, n, k, alpha, A, lda, Bm, ldb, beta, C, n);\n"
    "        k_gemm_nn_base(m, n, k, alpha, A, lda, Bm, ldb, beta, C2, n);\n"
    "        if (memcmp(C, C2, sizeof(float) * m * n) != 0) {\n"
    "            printf(\"m %d n %d k %d: AVX2 and baseline differ\\n\", m, n, k);\n"
    "            return 1;\n"
    "        }\n"
    "    }\n"
    "#endif\n"
    "    return 0;\n}\n"
    "int main(void)\n{\n"
    "    for (int i = 0; i < 9 * 800; i++) A[i] = (float)(((long)i * 7919) % 1000) / 1000 - 0.3f;\n"
    "    for (int i = 0; i < 800 * 130; i++) Bm[i] = (float)(((long)i * 104729) % 997) / 997 - 0.5f;\n"
    "    static const int ms[] = {1, 2, 3, 4, 5, 8, 9}, ns[] = {1, 3, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 40, 100, 130};\n"
    "    static const int ks[] = {1, 3, 7, 8, 9, 17, 100, 784};\n"
    "    static const float ab[][2] = {{1, 0}, {0.5f, 0}, {1, 1}, {-2, 0.25f}};\n"
    "    int bad = 0;\n"
    "    for (int t = 0; t < 4; t++)\n"
    "        for (int a = 0; a < 4; a++)\n"
    "            for (int x = 0; x < 7; x++)\n"
    "                for (int y = 0; y < 15; y++)\n"
    "                    for (int z = 0; z < 8; z++)\n"
    "                        if (!bad) bad = check(t & 1, t >> 1, ms[x], ns[y], ks[z], ab[a][0], ab[a][1]);\n"
    "    /* gemv as the generated code calls it at batch 1: y^T = x^T W */\n"
    "    for (int y = 0; y < 15 && !bad; y++) {\n"
    "        for (int i = 0; i < ns[y]; i++) C[i] = 0;\n"
    "        k_xgemv(CblasRowMajor, CblasTrans, 784, ns[y], 1, Bm, ns[y], A, 1, 0, C, 1);\n"
    "        k_xgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, ns[y], 784, 1, A, 784, Bm, ns[y], 0, C2, ns[y]);\n"
    "        if (memcmp(C, C2, sizeof(float) * ns[y]) != 0) { printf(\"gemv n %d differs from gemm\\n\", ns[y]); bad = 1; }\n"
    "    }\n"
    "    printf(bad ? \"FAILED\\n\" : \"products ok\\n\");\n"
    "    return bad;\n}\n";

START_TEST(export_plain_products_exact_enough)
{
    model m;
    model_build(&m, "features", NULL, false);
    char dir[256], path[600], cmd[2048];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_export_gemm");
    kiln_export_options o = kiln_export_options_default();
    o.name = "mlp_gemm";
    o.dir = dir;
    ck_assert_msg(kiln_program_export(m.p, &o) == KILN_OK, "%s", kiln_program_errmsg(m.p));
    snprintf(path, sizeof path, "%s/products.c", dir);
    FILE *f = fopen(path, "wb");
    ck_assert(f && fputs(PRODUCTS_C, f) >= 0 && !fclose(f));
    const char *cc = getenv("KILN_CC") ? getenv("KILN_CC") : "cc";
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' -std=c11 -O2 -w -ffp-contract=off -I. -o products products.c -lm > cc.log 2>&1 && "
             "./products 2>&1", dir, cc);
    int status;
    char *out = run_capture(cmd, &status);
    ck_assert_msg(status == 0 && strstr(out, "products ok"), "%s", out);
    free(out);
    kiln_test_rmtree(dir);
    model_free(&m);
}
END_TEST

START_TEST(export_ldd_libc_libm_only)
{
    model m;
    model_build(&m, "features", NULL, false);
    char dir[256], cmd[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_export");
    export_to(&m, dir, "mlp_ldd", false, false);
    snprintf(cmd, sizeof cmd, "ldd '%s/mlp_ldd.so'", dir);
    int status;
    char *out = run_capture(cmd, &status);
    ck_assert_msg(status == 0, "ldd failed: %s", out);
    int libc = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ' || *line == '\t')
            line++;
        bool ok = strncmp(line, "linux-vdso.so", 13) == 0 || strncmp(line, "libc.so", 7) == 0 ||
                  strncmp(line, "libm.so", 7) == 0 || strstr(line, "ld-linux") != NULL;
        ck_assert_msg(ok, "the exported library depends on: %s", line);
        libc += strncmp(line, "libc.so", 7) == 0;
    }
    ck_assert_int_eq(libc, 1);
    free(out);
    kiln_test_rmtree(dir);
    model_free(&m);
}
END_TEST

typedef struct worker {
    const so *s;
    const void *w;
    const float *in; /* each thread its own examples: shared scratch would mix them */
    const float *want;
    int wrong;       /* runs whose outputs were not want's */
    float out[MAX_BATCH * N_OUT];
    int status;
} worker;

static void *work(void *arg)
{
    worker *k = arg;
    void *ctx = NULL;
    k->status = k->s->create(k->w, &ctx);
    const float *in[1] = {k->in};
    float *outs[1] = {k->out};
    for (int i = 0; i < 1000 && !k->status; i++) {
        k->status = k->s->forward(ctx, in, outs, MAX_BATCH);
        k->wrong += memcmp(k->out, k->want, sizeof k->out) != 0;
    }
    k->s->destroy(ctx);
    return NULL;
}

START_TEST(export_two_threads_two_contexts)
{
    model m;
    model_build(&m, "features", NULL, false);
    char dir[256];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_export");
    export_to(&m, dir, "mlp_mt", false, true);
    so s = so_open(dir, "mlp_mt");
    char wpath[512];
    snprintf(wpath, sizeof wpath, "%s/mlp_mt.weights", dir);
    static float one[2][MAX_BATCH * N_OUT];
    void *w = NULL, *ctx = NULL;
    ck_assert_int_eq(s.weights_load(wpath, &w), 0);
    ck_assert_int_eq(s.create(w, &ctx), 0);
    for (int i = 0; i < 2; i++) {
        const float *in[1] = {pixels + (size_t)i * MAX_BATCH * N_IN};
        float *outs[1] = {one[i]};
        ck_assert_int_eq(s.forward(ctx, in, outs, MAX_BATCH), 0);
    }
    s.destroy(ctx);
    ck_assert(memcmp(one[0], one[1], sizeof one[0]) != 0);
    worker k[2] = {{.s = &s, .w = w, .in = pixels, .want = one[0]},
                   {.s = &s, .w = w, .in = pixels + (size_t)MAX_BATCH * N_IN, .want = one[1]}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, work, &k[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(k[i].status, 0);
        ck_assert_msg(k[i].wrong == 0, "thread %d: %d runs of 1000 gave other outputs", i, k[i].wrong);
    }
    s.weights_free(w);
    dlclose(s.dl);
    kiln_test_rmtree(dir);
    model_free(&m);
}
END_TEST

START_TEST(export_bad_arguments_are_statuses)
{
    model m;
    model_build(&m, "features", NULL, false);
    char dir[256];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_export");
    export_to(&m, dir, "mlp_bad", false, false);
    so s = so_open(dir, "mlp_bad");
    void *w = NULL, *ctx = NULL;
    ck_assert_int_eq(s.weights_load("/nonexistent", &w), 1); /* embedded: no path */
    ck_assert_ptr_null(w);
    ck_assert_int_eq(s.weights_load(NULL, NULL), 1);
    ck_assert_int_eq(s.weights_load(NULL, &w), 0);
    ck_assert_int_eq(s.create(NULL, &ctx), 1);
    ck_assert_int_eq(s.create(w, NULL), 1);
    ck_assert_int_eq(s.create(w, &ctx), 0);
    float out[MAX_BATCH * N_OUT];
    const float *in[1] = {pixels}, *in_null[1] = {NULL};
    float *outs[1] = {out}, *outs_null[1] = {NULL};
    ck_assert_int_eq(s.forward(ctx, in, outs, 0), 1);
    ck_assert_int_eq(s.forward(ctx, in, outs, -5), 1);
    ck_assert_int_eq(s.forward(ctx, in, outs, MAX_BATCH + 1), 1);
    ck_assert_int_eq(s.forward(NULL, in, outs, 1), 1);
    ck_assert_int_eq(s.forward(ctx, NULL, outs, 1), 1);
    ck_assert_int_eq(s.forward(ctx, in_null, outs, 1), 1);
    ck_assert_int_eq(s.forward(ctx, in, NULL, 1), 1);
    ck_assert_int_eq(s.forward(ctx, in, outs_null, 1), 1);
    ck_assert_int_eq(s.forward(ctx, in, outs, MAX_BATCH), 0);
    s.destroy(ctx);
    s.destroy(NULL);
    s.weights_free(w);
    dlclose(s.dl);
    kiln_test_rmtree(dir);
    model_free(&m);
}
END_TEST

static void write_bytes(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert(f && fwrite(b, 1, n, f) == n && fclose(f) == 0);
}

START_TEST(export_weights_file_checked)
{
    model m;
    model_build(&m, "features", NULL, false);
    char dir[256], wpath[512], bad[512];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_export");
    export_to(&m, dir, "mlp_wf", false, true);
    so s = so_open(dir, "mlp_wf");
    snprintf(wpath, sizeof wpath, "%s/mlp_wf.weights", dir);
    snprintf(bad, sizeof bad, "%s/bad.weights", dir);
    float a[7 * N_OUT], b[7 * N_OUT];
    so_forward(&s, wpath, 7, a);
    jit_forward(&m, "features", 7, b);
    assert_close(a, b, 7 * N_OUT);
    /* the file, then broken copies of it */
    FILE *f = fopen(wpath, "rb");
    ck_assert(f != NULL);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert(n > 32 && n < sizeof buf);
    void *w = NULL;
    ck_assert_int_eq(s.weights_load(NULL, &w), 1);
    ck_assert_int_eq(s.weights_load(bad, &w), 3); /* missing */
    static const struct { size_t at; int flip; size_t len; } cases[] = {
        {0, 1, 0},    /* magic */
        {8, 1, 0},    /* ABI version */
        {16, 1, 0},   /* payload size */
        {24, 1, 0},   /* hash */
        {100, 4, 0},  /* payload: the hash no longer matches */
        {0, 0, 40},   /* truncated */
        {0, 0, 1},    /* one byte too many (n + 1) */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t len = cases[c].len == 0 ? n : cases[c].len == 1 ? n + 1 : cases[c].len;
        unsigned char save = buf[cases[c].at];
        buf[cases[c].at] ^= (unsigned char)cases[c].flip;
        write_bytes(bad, buf, len);
        buf[cases[c].at] = save;
        w = (void *)1;
        ck_assert_msg(s.weights_load(bad, &w) == 4, "case %zu loaded", c);
        ck_assert_ptr_null(w);
    }
    dlclose(s.dl);
    kiln_test_rmtree(dir);
    model_free(&m);
}
END_TEST

/* text with its comments and "string literals" removed */
static char *strip(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1), *o = malloc((size_t)n + 1);
    ck_assert(s && o && fread(s, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    s[n] = '\0';
    size_t k = 0;
    for (long i = 0; i < n; i++) {
        if (s[i] == '/' && s[i + 1] == '*') {
            char *e = strstr(s + i + 2, "*/");
            ck_assert(e != NULL);
            i = e + 1 - s;
        } else if (s[i] == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            o[k++] = '"';
            o[k++] = '"';
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    free(s);
    return o;
}

/* Names are data: a crafted input and brick name change only comments and
** string literals, and the code still builds and runs. */
START_TEST(export_crafted_names_are_data)
{
    static const char evil_input[] = "x\"); system(\"rm -rf /\"); /* */ \\\n#define float int ?\?/";
    static const char evil_brick[] = "m*/ int evil; /*\n#include <evil.h>";
    model a, b;
    model_build(&a, "features", NULL, false);
    model_build(&b, evil_input, evil_brick, false);
    char dir[256], pa[600], pb[600];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_export");
    export_to(&a, dir, "net_a", false, false);
    export_to(&b, dir, "net_b", false, false);
    const char *ext[] = {"c", "h"};
    for (int e = 0; e < 2; e++) {
        snprintf(pa, sizeof pa, "%s/net_a.%s", dir, ext[e]);
        snprintf(pb, sizeof pb, "%s/net_b.%s", dir, ext[e]);
        char *sa = strip(pa), *sb = strip(pb);
        for (char *c = strstr(sb, "net_b"); c; c = strstr(c, "net_b")) /* the prefix, asked for */
            c[4] = 'a';
        for (char *c = strstr(sb, "NET_B"); c; c = strstr(c, "NET_B"))
            c[4] = 'A';
        ck_assert_msg(strcmp(sa, sb) == 0, "%s: the names changed the code", ext[e]);
        free(sa);
        free(sb);
    }
    /* the name reaches the header as the literal it is */
    snprintf(pb, sizeof pb, "%s/net_b.h", dir);
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && printf '#include \"net_b.h\"\\n#include <stdio.h>\\nint main(void) { "
             "fputs(net_b_INPUT0_NAME, stdout); return 0; }\\n' > lit.c && cc -I. -o lit lit.c && ./lit",
             dir);
    int status;
    char *out = run_capture(cmd, &status);
    ck_assert_msg(status == 0 && strcmp(out, evil_input) == 0, "the header's name is not the input's: %s", out);
    free(out);
    so s = so_open(dir, "net_b");
    float o1[3 * N_OUT], o2[3 * N_OUT];
    so_forward(&s, NULL, 3, o1);
    jit_forward(&b, evil_input, 3, o2);
    assert_close(o1, o2, 3 * N_OUT);
    dlclose(s.dl);
    kiln_test_rmtree(dir);
    model_free(&a);
    model_free(&b);
}
END_TEST

START_TEST(export_refuses_bad_requests)
{
    model m;
    model_build(&m, "features", NULL, false);
    char dir[256], path[600];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_export");
    kiln_export_options o = kiln_export_options_default();
    o.dir = dir;
    o.name = "9lives";
    ck_assert_int_eq(kiln_program_export(m.p, &o), KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(kiln_program_errmsg(m.p), "9lives"));
    o.name = "ok";
    o.max_batch = MAX_BATCH + 1;
    ck_assert_int_eq(kiln_program_export(m.p, &o), KILN_ERR_ARG);
    o.max_batch = 0;
    snprintf(path, sizeof path, "%s/missing/folder", dir);
    o.dir = path;
    ck_assert_int_eq(kiln_program_export(m.p, &o), KILN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(kiln_program_errmsg(m.p), "ok.h"));
    ck_assert_int_eq(kiln_program_export(NULL, &o), KILN_ERR_ARG);
    ck_assert_int_eq(kiln_program_export(m.p, NULL), KILN_ERR_ARG);
    /* a program with no outputs has nothing to export */
    kiln_node cost = kiln_expr_sum(m.g, kiln_expr_sum(m.g, m.probs, 1), 0);
    kiln_compile_options co = kiln_compile_options_default();
    co.cost = cost;
    kiln_program *p2;
    ck_assert_msg(kiln_compile(m.g, &co, &p2) == KILN_OK, "%s", kiln_program_errmsg(p2));
    o.dir = dir;
    ck_assert_int_eq(kiln_program_export(p2, &o), KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(kiln_program_errmsg(p2), "no outputs"));
    kiln_program_destroy(p2);
    /* a smaller max batch is the header's */
    o.max_batch = 5;
    o.compile = true;
    ck_assert_msg(kiln_program_export(m.p, &o) == KILN_OK, "%s", kiln_program_errmsg(m.p));
    so s = so_open(dir, "ok");
    void *w, *ctx;
    ck_assert_int_eq(s.weights_load(NULL, &w), 0);
    ck_assert_int_eq(s.create(w, &ctx), 0);
    float out[6 * N_OUT];
    const float *in[1] = {pixels};
    float *outs[1] = {out};
    ck_assert_int_eq(s.forward(ctx, in, outs, 5), 0);
    ck_assert_int_eq(s.forward(ctx, in, outs, 6), 1);
    s.destroy(ctx);
    dlclose(s.dl);
    kiln_test_rmtree(dir);
    model_free(&m);
}
END_TEST

/* docs/export.md's program, taken from the page, built against the header
** and library of an export named as the page says, and run. */
START_TEST(export_doc_program_runs)
{
    const char *inc = getenv("KILN_INCLUDE_DIR");
    ck_assert_msg(inc != NULL, "KILN_INCLUDE_DIR unset");
    char md[600];
    snprintf(md, sizeof md, "%s/../docs/export.md", inc);
    FILE *f = fopen(md, "rb");
    ck_assert_msg(f != NULL, "%s", md);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *open = strstr(text, "```c\n/* classify.c");
    ck_assert_msg(open != NULL, "docs/export.md has no ```c block starting /* classify.c");
    open += 5;
    const char *close = strstr(open, "\n```");
    ck_assert(close != NULL);
    /* the model the page exports: 784 inputs named "features", 10 outputs */
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "features", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 784});
    kiln_brick *acts[2] = {kiln_rectifier_create(NULL), kiln_softmax_create(NULL)};
    kiln_brick *mlp = kiln_mlp_create(NULL, acts, 2, (int64_t[]){784, 100, 10});
    kiln_brick_set_weights_init(mlp, kiln_init_isotropic_gaussian(0.01, 0));
    kiln_brick_set_biases_init(mlp, kiln_init_constant(0));
    kiln_node probs;
    ck_assert(!kiln_brick_apply(mlp, g, x, &probs) && !kiln_brick_initialize(mlp));
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "mlp";
    o.outputs = &probs;
    o.n_outputs = 1;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    char dir[256], path[600], cmd[2200];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_export_doc");
    kiln_export_options eo = kiln_export_options_default();
    eo.name = "digits";
    eo.dir = dir;
    eo.compile = true;
    ck_assert_msg(kiln_program_export(p, &eo) == KILN_OK, "%s", kiln_program_errmsg(p));
    snprintf(path, sizeof path, "%s/classify.c", dir);
    f = fopen(path, "wb");
    ck_assert(f && fwrite(open, 1, (size_t)(close - open + 1), f) == (size_t)(close - open + 1) && !fclose(f));
    /* the page's build command, run in the folder */
    snprintf(cmd, sizeof cmd, "cd '%s' && cc -std=c11 -Wall -Werror -o classify classify.c ./digits.so "
             "-Wl,-rpath,'$ORIGIN' 2>&1 && ./classify 2>&1", dir);
    int status;
    char *out = run_capture(cmd, &status);
    ck_assert_msg(status == 0, "the page's program failed: %s", out);
    ck_assert_msg(strstr(out, "example 0: class ") != NULL, "unexpected output: %s", out);
    free(out);
    kiln_test_rmtree(dir);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_brick_destroy(mlp);
}
END_TEST

static Suite *export_suite(void)
{
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("export");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, export_plain_matches_jit);
    tcase_add_test(tc, export_blas_bitwise);
    tcase_add_test(tc, export_ldd_libc_libm_only);
    tcase_add_test(tc, export_plain_products_exact_enough);
    tcase_add_test(tc, export_two_threads_two_contexts);
    tcase_add_test(tc, export_bad_arguments_are_statuses);
    tcase_add_test(tc, export_weights_file_checked);
    tcase_add_test(tc, export_crafted_names_are_data);
    tcase_add_test(tc, export_refuses_bad_requests);
    tcase_add_test(tc, export_doc_program_runs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return kiln_test_run(export_suite()); }
