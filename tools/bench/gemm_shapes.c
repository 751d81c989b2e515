/* gemm_shapes.c: kiln's own matrix kernels against OpenBLAS at the shapes
** where the runtime may pick them (runtime/kernels.h), one line a shape and
** ISA: the kernel's and the BLAS's time, best of several repetitions, and
** whether the runtime takes the kernel there (its wins rule). Measures
** what the rules in runtime/gemm.c and runtime/gemm_avx2.c are set from.
**
**   gemm_shapes [avx512|avx2]... [filter]
** (default: every ISA this CPU has, every shape; a filter keeps the shapes
** whose "nn MxNxK" or "tn MxNxK" name contains it: nn, tn, 1600, "tn 256x",
** x1600)
** Output: <isa> <nn|tn> MxNxK own_us blas_us ratio(blas/own) taken, and for
** the AVX-512 update each of its kernels alone, each timed against the
** BLAS again: <name>=ratio(blas/it)
** Run with OPENBLAS_NUM_THREADS=1. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/emit_c.h"
#include "runtime/kernels.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct shape {
    char op; /* 'n': y = x W; 't': W -= lr x^T d */
    int m, n, k;
} shape;

static float *fill(size_t n, int salt)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "gemm_shapes: no memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((int)((i * 37 + (size_t)salt * 11) % 23) - 11) / 64.0f;
    return p;
}

/* One call of the kernel (own), of one of the update's kernels alone (part,
** when not NULL) or of the BLAS. */
static void call(const kiln_kernel_set *s, const shape *h, bool own, kiln_sgemm_tn_fn part, float *a, float *b,
                 float *c, float *scr)
{
    if (h->op == 'n') {
        if (own)
            s->sgemm_nn_own(h->m, h->n, h->k, a, h->k, b, h->n, c, h->n, scr, NULL, 0);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, h->m, h->n, h->k, 1, a, h->k, b, h->n, 0, c, h->n);
    } else if (own) { /* W (m x n) += -lr a^T b, a (k x m), b (k x n): k is the batch */
        (part ? part : s->sgemm_tn_own)(h->m, h->n, h->k, -1e-6f, a, h->m, b, h->n, 1, c, h->n);
    } else {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h->m, h->n, h->k, -1e-6f, a, h->m, b, h->n, 1, c, h->n);
    }
}

enum { MAX_PARTS = 2 };

/* Seconds a call of the BLAS (t[0]) and of the kernel (t[1]: part, or the
** set's own kernel when part is NULL), best of 41 repetitions of about 1 ms
** (at least one call) alternating: short ones, so that on a shared machine
** some run between other processes' time slices. Two at a time, so that
** each runs after the other (a third between them would leave the caches
** in another state: up to 8% apart for the same code). */
static void time_pair(const kiln_kernel_set *s, const shape *h, kiln_sgemm_tn_fn part, float *a, float *b, float *c,
                      float *scr, double *t)
{
    int calls[2] = {1, 1};
    t[0] = t[1] = 1e9;
    for (int rep = -1; rep < 41; rep++)
        for (int w = 0; w < 2; w++) {
            double t0 = now();
            for (int i = 0; i < calls[w]; i++)
                call(s, h, w > 0, part, a, b, c, scr);
            double dt = (now() - t0) / calls[w];
            if (rep < 0) /* warm-up: size the repetitions */
                calls[w] = (int)(0.001 / (dt > 1e-7 ? dt : 1e-7)) + 1;
            else
                t[w] = dt < t[w] ? dt : t[w];
        }
}

int main(int argc, char **argv)
{
    static const int hs[] = {100, 500}, bs[] = {1, 8, 16, 32, 48, 64, 96, 128, 256, 1000};
    shape sh[256];
    int n = 0;
    for (int hi = 0; hi < 2; hi++)
        for (int bi = 0; bi < 10; bi++) {
            sh[n++] = (shape){'n', bs[bi], hs[hi], 784}; /* layer 1 */
            sh[n++] = (shape){'n', bs[bi], 10, hs[hi]};  /* the classifier */
            sh[n++] = (shape){'t', 784, hs[hi], bs[bi]}; /* layer 1's update */
            sh[n++] = (shape){'t', hs[hi], 10, bs[bi]};  /* the classifier's */
        }
    /* the LSTM benchmark (bench_lstm.h): the input projection over all T*B
    ** rows and its weight gradient, the recurrent product of one step and its
    ** transpose, the recurrent weight gradient over all steps */
    sh[n++] = (shape){'n', 1600, 1024, 256};
    sh[n++] = (shape){'t', 256, 1024, 1600};
    sh[n++] = (shape){'n', 256, 1024, 1600};
    sh[n++] = (shape){'n', 1024, 256, 1600};
    sh[n++] = (shape){'n', 32, 1024, 256};
    sh[n++] = (shape){'n', 32, 256, 1024};
    /* the update over many rows (a sequence's T*B): where the block kernel
    ** for large k (runtime/gemm.c) pays */
    static const int big[] = {100, 256, 500, 784, 1024}, ks[] = {256, 512, 1000, 1600, 4000};
    for (int ki = 0; ki < 5; ki++)
        for (int mi = 0; mi < 5; mi++)
            for (int ni = 0; ni < 5; ni++)
                sh[n++] = (shape){'t', big[mi], big[ni], ks[ki]};
    /* y = x W over many rows, full blocks of 32 and not */
    static const int rows[] = {512, 1024, 1600, 2048}, cols[] = {256, 500, 1024};
    for (int ri = 0; ri < 4; ri++)
        for (int ci = 0; ci < 3; ci++)
            for (int ki = 0; ki < 3; ki++)
                sh[n++] = (shape){'n', rows[ri], cols[ci], cols[ki]};
    const char *isas[2] = {"avx512", "avx2"}, *only = NULL;
    int ni = 0;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "avx512") != 0 && strcmp(argv[i], "avx2") != 0)
            only = argv[i];
        else if (ni < 2)
            isas[ni++] = argv[i];
    ni = ni ? ni : 2;
    for (int i = 0; i < ni; i++) {
        kiln_kernel_set s;
        if (!kiln_kernel_set_of(isas[i], &s) || !s.sgemm_nn_own) {
            printf("%s: not on this CPU\n", isas[i]);
            continue;
        }
        for (int j = 0; j < n; j++) {
            const shape *h = &sh[j];
            char name[64];
            snprintf(name, sizeof name, "%s %dx%dx%d", h->op == 'n' ? "nn" : "tn", h->m, h->n, h->k);
            if (only && !strstr(name, only))
                continue;
            size_t na = (size_t)h->m * h->k, nb = (size_t)h->k * h->n, nc = (size_t)h->m * h->n;
            if (h->op == 't')
                na = (size_t)h->k * h->m;
            float *a = fill(na, 1), *b = fill(nb, 2), *c = fill(nc, 3);
            float *scr = fill((size_t)KILN_CODEGEN_GEMM_SCRATCH(h->m, h->n, h->k), 4);
            kiln_sgemm_tn_fn parts[MAX_PARTS];
            const char *pn[MAX_PARTS];
            int np = h->op == 't' && strcmp(s.isa, "avx512") == 0 ? kiln_kernel_avx512_tn_parts(parts, pn, MAX_PARTS)
                                                                  : 0;
            double t[2 + MAX_PARTS], tp[2];
            time_pair(&s, h, NULL, a, b, c, scr, t);
            for (int q = 0; q < np; q++) { /* each against the BLAS again */
                time_pair(&s, h, parts[q], a, b, c, scr, tp);
                t[2 + q] = tp[1] * t[0] / tp[0];
            }
            bool taken = h->op == 'n' ? s.nn_wins(h->m, h->n, h->k) : s.tn_wins(h->m, h->n, h->k);
            printf("%s %s own=%.2fus blas=%.2fus ratio=%.2f %s", s.isa, name, t[1] * 1e6, t[0] * 1e6, t[0] / t[1],
                   taken ? "taken" : "blas");
            for (int q = 0; q < np; q++)
                printf(" %s=%.2f", pn[q], t[0] / t[2 + q]);
            printf("\n");
            fflush(stdout);
            free(a);
            free(b);
            free(c);
            free(scr);
        }
    }
    return 0;
}
