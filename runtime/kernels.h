/* kernels.h (internal): the few loops that generated code calls in the
** runtime instead of compiling itself, because they need the CPU's widest
** vectors and the generated code is built for the architecture's baseline
** (runtime/jit.c says why). Each comes in variants for AVX-512, AVX2 and
** plain C; all variants compute the same bits (no FMA contraction, no
** reassociation: they vectorise across independent elements only). */
#ifndef KILN_RUNTIME_KERNELS_H
#define KILN_RUNTIME_KERNELS_H

#include <stdbool.h>

/* A rank-1 update of W (m x n, row stride ldw) and, when x is not NULL, a
** product of x with the updated W, in one pass over W:
**     W[i][j] += u[i] * v[j]            for every i, j
**     y[j] = sum over i, in order, of x[i] * W[i][j]   (the new W)
** Used for a deferred SGD update at batch 1: u is the step's input row, v
** its delta times -lr, x the next step's input row (see codegen/emit_c.c). */
typedef void (*kiln_sger_gemv_fn)(int m, int n, float *w, int ldw, const float *u, const float *v,
                                  const float *x, float *y);

/* The fastest variant this CPU runs. */
kiln_sger_gemv_fn kiln_kernel_sger_gemv(void);

/* Every variant this CPU runs, fastest first, with its name (for tests).
** Returns how many were written (at most cap). */
int kiln_kernel_sger_gemv_variants(kiln_sger_gemv_fn *fns, const char **names, int cap);

/* y = x W, x (m x k, row stride ldx), W (k x n, ldw), y (m x n, ldy), all
** row-major, for a few rows against a weight read in place (runtime/gemm.c).
** scratch: KILN_CODEGEN_GEMM_SCRATCH(n, k) floats (codegen/emit_c.h),
** 64-byte aligned, clobbered. */
typedef void (*kiln_sgemm_nn_fn)(int m, int n, int k, const float *x, int ldx, const float *w, int ldw, float *y,
                                 int ldy, float *scratch);

/* What the generated code calls: kiln's kernel at the shapes where it beats
** OpenBLAS (kiln_kernel_sgemm_nn_wins), cblas_sgemm at the others. NULL
** where this CPU has no kernel of kiln's (no AVX-512). */
kiln_sgemm_nn_fn kiln_kernel_sgemm_nn(void);

/* kiln's kernel alone, at every shape (for tests), or NULL. */
kiln_sgemm_nn_fn kiln_kernel_sgemm_nn_own(void);

/* Whether kiln's kernel measured faster than OpenBLAS at this shape. */
bool kiln_kernel_sgemm_nn_wins(int m, int n, int k);

#endif
