/* bench.c: kiln's side of the benchmarks (tools/bench/run runs it next to
** PyTorch and prints the comparison).
**
** Cases, for MLPs 784-H-10 (ReLU, softmax cross-entropy, SGD lr 0.1):
**   train_<net>_b<B>   training throughput of the full step, examples/s
**   floor_<net>_b<B>   the step's five matrix products alone in OpenBLAS, ms
**   step_<net>_b<B>    kiln's step time, ms (to divide by the floor)
**   infer_<net>_b<B>   latency of the forward program, microseconds
**   export_<net>_b<B>  latency of the forward program exported to a .so
**                      (kiln_program_export, plain C, the JIT's flags), us
**   export_native_<net>_b<B>  the same built with -march=native, us
**   export_blas_<net>_b<B>    exported with its products through CBLAS, us
**   infer_train_<net>_b<B>    forward of the training program (compiled with
**                      a cost and the outputs), us: it must match infer_
**   compile_cold_ms, compile_warm_ms   compiling the 784-100-10 training program
**                      into an empty cache folder (a fresh one each time), and again
**   train_lstm256_t50_b32   an LSTM of 256 units over 50 steps of 256 features,
**                      batch 32 (bench_lstm.h): training steps/s
**   compile_lstm_cold_ms, compile_lstm_warm_ms   its training program, as above
**   peak_rss_mb        peak resident memory of this process
** and "info kernels" lines: the ISA of kiln's kernels (KILN_ISA forces one)
** and the kernel each product of a training step runs.
** Each figure is the median of at least 5 repetitions after a warm-up. The
** data are synthetic and the same formula as in torch_bench.py.
** Output: one "kiln <case> <value>" line per case on stdout. */
#include <cblas.h>
#include <kiln/kiln.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_lstm.h"
#include "bench_model.h"

#define MAX_REPS 15

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct config {
    int reps;
    double rep_seconds; /* target length of one repetition */
} config;

/* Seconds per call of fn, median over cfg->reps repetitions of k calls,
** k chosen from a warm-up so that a repetition lasts about rep_seconds. */
typedef void (*step_fn)(void *ctx, int64_t i);

static double time_per_call(const config *cfg, step_fn fn, void *ctx)
{
    double t0 = bench_now();
    int64_t warm = 0;
    while (warm < 3 || bench_now() - t0 < cfg->rep_seconds / 2)
        fn(ctx, warm++);
    double per = (bench_now() - t0) / (double)warm;
    int64_t k = (int64_t)(cfg->rep_seconds / per);
    if (k < 1)
        k = 1;
    double v[MAX_REPS];
    for (int r = 0; r < cfg->reps; r++) {
        double s = bench_now();
        for (int64_t i = 0; i < k; i++)
            fn(ctx, i);
        v[r] = (bench_now() - s) / (double)k;
    }
    return median(v, cfg->reps);
}

/* Two functions timed in alternating repetitions (a, b, a, b, ...), so that
** a drifting machine affects both alike; medians in *ta and *tb. */
static void time_pair(const config *cfg, step_fn fa, void *ca, step_fn fb, void *cb, double *ta, double *tb)
{
    int64_t k[2];
    step_fn fn[2] = {fa, fb};
    void *ctx[2] = {ca, cb};
    for (int f = 0; f < 2; f++) {
        double t0 = bench_now();
        int64_t warm = 0;
        while (warm < 3 || bench_now() - t0 < cfg->rep_seconds / 2)
            fn[f](ctx[f], warm++);
        double per = (bench_now() - t0) / (double)warm;
        k[f] = (int64_t)(cfg->rep_seconds / per);
        if (k[f] < 1)
            k[f] = 1;
    }
    double v[2][MAX_REPS];
    for (int r = 0; r < cfg->reps; r++)
        for (int f = 0; f < 2; f++) {
            double s = bench_now();
            for (int64_t i = 0; i < k[f]; i++)
                fn[f](ctx[f], i);
            v[f][r] = (bench_now() - s) / (double)k[f];
        }
    *ta = median(v[0], cfg->reps);
    *tb = median(v[1], cfg->reps);
}

typedef struct step_ctx {
    kiln_program *p;
    int64_t B;
    bench_export *e;
} step_ctx;

static void train_step(void *c, int64_t i)
{
    step_ctx *s = c;
    bench_bind_batch(s->p, i, s->B, true);
    if (kiln_program_train_step(s->p, s->B))
        bench_die("train_step", kiln_program_errmsg(s->p));
}

static void export_step(void *c, int64_t i)
{
    step_ctx *s = c;
    bench_export_run(s->e, i, s->B);
}

static void forward_step(void *c, int64_t i)
{
    step_ctx *s = c;
    bench_bind_batch(s->p, i, s->B, false);
    if (kiln_program_forward(s->p, s->B))
        bench_die("forward", kiln_program_errmsg(s->p));
}

/* The GEMM floor: the five matrix products of one training step, alone,
** with the BLAS calls, shapes, transposes and accumulation kiln's generated
** code uses for them (docs/performance.md):
**   h   = x (B,784) . W1 (784,H)        forward
**   a   = h (B,H) . W2 (H,10)           forward
**   dh  = da (B,10) . W2^T              backward
**   W2 -= lr h^T . da                   backward, the update fused (beta 1)
**   W1 -= lr x^T . dh                   backward, the update fused (beta 1)
** At batch 1 the first three are sgemv and the last two sger, as in kiln. */
typedef struct gemm_ctx {
    int64_t B, H;
    float *x, *w1, *h, *w2, *a, *da, *dh;
} gemm_ctx;

static void gemm_step(void *c, int64_t i)
{
    gemm_ctx *g = c;
    int B = (int)g->B, H = (int)g->H;
    const float lr = 1e-6f; /* small: the weights stay put over many repetitions */
    (void)i;
    if (B == 1) {
        cblas_sgemv(CblasRowMajor, CblasTrans, N_IN, H, 1, g->w1, H, g->x, 1, 0, g->h, 1);
        cblas_sgemv(CblasRowMajor, CblasTrans, H, N_OUT, 1, g->w2, N_OUT, g->h, 1, 0, g->a, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, H, N_OUT, 1, g->w2, N_OUT, g->da, 1, 0, g->dh, 1);
        cblas_sger(CblasRowMajor, H, N_OUT, -lr, g->h, 1, g->da, 1, g->w2, N_OUT);
        cblas_sger(CblasRowMajor, N_IN, H, -lr, g->x, 1, g->dh, 1, g->w1, H);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, N_IN, 1, g->x, N_IN, g->w1, H, 0, g->h, H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, N_OUT, H, 1, g->h, H, g->w2, N_OUT, 0, g->a, N_OUT);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, H, N_OUT, 1, g->da, N_OUT, g->w2, N_OUT, 0, g->dh, H);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, N_OUT, B, -lr, g->h, H, g->da, N_OUT, 1, g->w2, N_OUT);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N_IN, H, B, -lr, g->x, N_IN, g->dh, H, 1, g->w1, H);
}

static void gemm_alloc(gemm_ctx *g, int64_t B, int64_t H)
{
    *g = (gemm_ctx){.B = B, .H = H};
    float **bufs[] = {&g->x, &g->w1, &g->h, &g->w2, &g->a, &g->da, &g->dh};
    int64_t sizes[] = {B * N_IN, N_IN * H, B * H, H * N_OUT, B * N_OUT, B * N_OUT, B * H};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *bufs[i] = aligned_alloc(64, (size_t)((sizes[i] * 4 + 63) / 64 * 64));
        if (!*bufs[i])
            bench_die("gemm floor", "out of memory");
        for (int64_t j = 0; j < sizes[i]; j++)
            (*bufs[i])[j] = (float)((j * 37) % 100) / 1000.0f;
    }
}

static void gemm_free(gemm_ctx *g)
{
    float *bufs[] = {g->x, g->w1, g->h, g->w2, g->a, g->da, g->dh};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
}

/* compile_cold_ms<what> and compile_warm_ms<what> of the program compile
** makes of m: cold in a fresh cache folder each time, warm from the last. */
typedef kiln_program *(*compile_fn)(void *m, const char *cache_dir);

static kiln_program *compile_mlp(void *m, const char *dir) { return bench_compile_train(m, 1000, dir); }
static kiln_program *compile_lstm(void *m, const char *dir) { return bench_lstm_compile(m, dir); }

static void compile_times(const config *cfg, const char *what, compile_fn compile, void *m)
{
    double cold[MAX_REPS], warm[MAX_REPS];
    char dir[MAX_REPS][32];
    for (int r = 0; r < cfg->reps; r++) {
        snprintf(dir[r], sizeof dir[r], "/tmp/kiln_bench_cache_XXXXXX");
        if (!mkdtemp(dir[r]))
            bench_die("mkdtemp", "cannot make a cache folder");
        double t0 = bench_now();
        kiln_program *p = compile(m, dir[r]);
        cold[r] = bench_now() - t0;
        if (!kiln_program_compiler_ran(p))
            bench_die("compile", "cold compile found a cache entry");
        kiln_program_destroy(p);
    }
    for (int r = 0; r < cfg->reps; r++) {
        double t0 = bench_now();
        kiln_program *p = compile(m, dir[cfg->reps - 1]);
        warm[r] = bench_now() - t0;
        if (kiln_program_compiler_ran(p))
            bench_die("compile", "warm compile ran the compiler");
        kiln_program_destroy(p);
    }
    printf("kiln compile%s_cold_ms %.3f\n", what, median(cold, cfg->reps) * 1e3);
    printf("kiln compile%s_warm_ms %.3f\n", what, median(warm, cfg->reps) * 1e3);
    for (int r = 0; r < cfg->reps; r++) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir[r]);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: could not remove %s\n", dir[r]);
    }
}

typedef struct lstm_ctx {
    lstm_net *n;
    kiln_program *p;
} lstm_ctx;

static void lstm_step(void *c, int64_t i)
{
    lstm_ctx *l = c;
    (void)i;
    bench_lstm_step(l->n, l->p);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench [--quick] [--reps N]\n");
    exit(2);
}

/* The ISA of kiln's kernels and the kernel each of the step's products
** runs (an "info" line: report.py passes over it, tools/bench/run prints
** it). At batch 1 the products are sgemv/sger and the deferred update. */
static void print_kernels(const kiln_program *p, const char *name, int64_t B, int64_t H)
{
    const char *isa = kiln_program_isa(p);
    if (B == 1) {
        printf("info kernels %s_b1: isa=%s products=blas-sgemv/sger deferred-update=sger_gemv-%s\n", name, isa,
               strcmp(isa, "blas") == 0 ? "plain" : isa);
        return;
    }
    printf("info kernels %s_b%lld: isa=%s x.W1=%s h.W2=%s d2.W2T=blas W1-=xTd1=%s W2-=hTd2=%s\n", name, (long long)B,
           isa, kiln_program_product_kernel(p, false, B, H, N_IN), kiln_program_product_kernel(p, false, B, N_OUT, H),
           kiln_program_product_kernel(p, true, N_IN, H, B), kiln_program_product_kernel(p, true, H, N_OUT, B));
}

int main(int argc, char **argv)
{
    config cfg = {.reps = 7, .rep_seconds = 0.25};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            cfg.reps = 5;
            cfg.rep_seconds = 0.04;
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            cfg.reps = atoi(argv[++i]);
            if (cfg.reps < 5 || cfg.reps > MAX_REPS)
                usage();
        } else {
            usage();
        }
    }
    bench_make_data();
    static const int64_t hiddens[] = {100, 500};
    static const int64_t batches[] = {1, 32, 128, 1000};

    /* compile times: each cold compile in a fresh cache folder (so the
    ** compiler's identity is probed too), then cache hits on the last one */
    {
        net n;
        bench_net_build(&n, 100);
        compile_times(&cfg, "", compile_mlp, &n);
        bench_net_free(&n);
        lstm_net l;
        bench_lstm_build(&l, 256, 50, 32);
        compile_times(&cfg, "_lstm", compile_lstm, &l);
        bench_lstm_free(&l);
    }

    for (size_t h = 0; h < 2; h++) {
        char name[32];
        snprintf(name, sizeof name, "784-%lld-10", (long long)hiddens[h]);
        net n;
        bench_net_build(&n, hiddens[h]);
        for (size_t b = 0; b < 4; b++) {
            int64_t B = batches[b];
            step_ctx s = {bench_compile_train(&n, B, NULL), B, NULL};
            print_kernels(s.p, name, B, hiddens[h]);
            gemm_ctx gc;
            gemm_alloc(&gc, B, hiddens[h]);
            double step, floor_t;
            time_pair(&cfg, train_step, &s, gemm_step, &gc, &step, &floor_t);
            gemm_free(&gc);
            kiln_program_destroy(s.p);
            printf("kiln train_%s_b%lld %.1f\n", name, (long long)B, (double)B / step);
            printf("kiln step_%s_b%lld %.4f\n", name, (long long)B, step * 1e3);
            printf("kiln floor_%s_b%lld %.4f\n", name, (long long)B, floor_t * 1e3);
            fflush(stdout);
        }
        for (size_t b = 0; b < 2; b++) {
            int64_t B = b ? 64 : 1;
            step_ctx s = {bench_compile_forward(&n, B), B, NULL};
            step_ctx st = {bench_compile_train_forward(&n, B), B, NULL};
            step_ctx se = {NULL, B, bench_export_open(&n, B, 0)};
            step_ctx sn = {NULL, B, bench_export_open(&n, B, 1)};
            step_ctx sb = {NULL, B, bench_export_open(&n, B, 2)};
            double t, ttrain, texp, tnat, tblas, tblas2;
            time_pair(&cfg, forward_step, &s, forward_step, &st, &t, &ttrain);
            time_pair(&cfg, export_step, &se, export_step, &sn, &texp, &tnat);
            time_pair(&cfg, export_step, &sb, forward_step, &s, &tblas, &tblas2);
            kiln_program_destroy(s.p);
            kiln_program_destroy(st.p);
            bench_export_close(se.e);
            bench_export_close(sn.e);
            bench_export_close(sb.e);
            printf("kiln infer_%s_b%lld %.2f\n", name, (long long)B, t * 1e6);
            printf("kiln infer_train_%s_b%lld %.2f\n", name, (long long)B, ttrain * 1e6);
            printf("kiln export_%s_b%lld %.2f\n", name, (long long)B, texp * 1e6);
            printf("kiln export_native_%s_b%lld %.2f\n", name, (long long)B, tnat * 1e6);
            printf("kiln export_blas_%s_b%lld %.2f\n", name, (long long)B, tblas * 1e6);
        }
        bench_net_free(&n);
    }
    {
        lstm_net l;
        bench_lstm_build(&l, 256, 50, 32);
        lstm_ctx c = {&l, bench_lstm_compile(&l, NULL)};
        double t = time_per_call(&cfg, lstm_step, &c);
        printf("kiln train_lstm256_t50_b32 %.3f\n", 1 / t);
        kiln_program_destroy(c.p);
        bench_lstm_free(&l);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("kiln peak_rss_mb %.1f\n", (double)ru.ru_maxrss / 1024.0);
    return 0;
}
