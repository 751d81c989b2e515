/* kernels.h (internal): the few loops that generated code calls in the
** runtime instead of compiling itself, because they need the CPU's widest
** vectors and the generated code is built for the architecture's baseline
** (runtime/jit.c says why). Each comes in variants for AVX-512, AVX2 and
** plain C; all variants compute the same bits (no FMA contraction, no
** reassociation: they vectorise across independent elements only). */
#ifndef KILN_RUNTIME_KERNELS_H
#define KILN_RUNTIME_KERNELS_H

#include <stdbool.h>

/* Unroll the next loop completely once its trip count is a constant (the
** loop's function inlined with constant arguments): a register tile's loops
** over its rows and vectors, whose sums must stay in registers. GCC inlines
** an always_inline function before it unrolls; clang simplifies a callee on
** its own first, and "GCC unroll N" made it unroll such a loop N times with
** a run-time count there, the sums in memory (a clang build of the AVX2
** tile ran at 34 GFLOP/s where GCC's ran at 77-81); "clang loop
** unroll(full)" waits for the constant. n: GCC's count. Not under
** AddressSanitizer: clang with ASan and UBSan then took over 6 minutes on
** gemm_avx2.c (22 s with "GCC unroll"), and a sanitizer build is for
** correctness, not speed. */
#define KILN_PRAGMA(x) _Pragma(#x)
#if defined(__clang__) && defined(__has_feature)
#if !__has_feature(address_sanitizer)
#define KILN_UNROLL_FULL 1
#endif
#endif
#ifdef KILN_UNROLL_FULL
#define KILN_UNROLL(n) KILN_PRAGMA(clang loop unroll(full))
#else
#define KILN_UNROLL(n) KILN_PRAGMA(GCC unroll n)
#endif

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

/* y = x W + add, x (m x k, row stride ldx), W (k x n, ldw), y (m x n, ldy),
** all row-major, for a few rows against a weight read in place
** (runtime/gemm.c). scratch: KILN_CODEGEN_GEMM_SCRATCH(m, n, k) floats
** (codegen/rt_table.h) for the largest m the caller passes, 64-byte
** aligned, clobbered. add: NULL (none), or an
** addend (m x n, row stride ldadd; ldadd 0: one row of n added to every
** row, a bias) that must not overlap x or W (it may be y itself only where
** y is not read before it is written: never, in kiln's code). kiln's
** kernels add it to the finished sum, the same bits as the sum stored then
** added; the BLAS path copies it into y and runs beta = 1 (the BLAS may
** round that differently). */
typedef void (*kiln_sgemm_nn_fn)(int m, int n, int k, const float *x, int ldx, const float *w, int ldw, float *y,
                                 int ldy, float *scratch, const float *add, int ldadd);

/* kiln_sgemm_nn_fn's contract through cblas_sgemm (the dispatchers' shapes
** where OpenBLAS is faster): an addend is copied into y, then beta = 1. */
void kiln_kernel_sgemm_nn_blas(int m, int n, int k, const float *x, int ldx, const float *w, int ldw, float *y,
                               int ldy, const float *add, int ldadd);

/* What the generated code calls: kiln's kernel at the shapes where it beats
** OpenBLAS (kiln_kernel_sgemm_nn_wins, ..._avx512_nn_wins_amd on AMD),
** cblas_sgemm at the others. NULL
** where this CPU has no kernel of kiln's (no AVX-512). */
kiln_sgemm_nn_fn kiln_kernel_sgemm_nn(void);

/* kiln's kernel alone, at every shape (for tests), or NULL. */
kiln_sgemm_nn_fn kiln_kernel_sgemm_nn_own(void);

/* Whether kiln's AVX-512 kernel measured faster than OpenBLAS at this
** shape, on Intel (Sapphire Rapids) and on AMD (Zen 4): more rows win on
** AMD. The set's nn_wins and sgemm_nn follow the rule of the CPU's vendor
** (the Intel one on any but AMD). */
bool kiln_kernel_sgemm_nn_wins(int m, int n, int k);
bool kiln_kernel_avx512_nn_wins_amd(int m, int n, int k);

/* c (m x n, ldc) = alpha a^T b + beta c, a (k x m, lda), b (k x n, ldb),
** all row-major: a weight's gradient x^T d (beta 0) or its update in place,
** W - lr x^T d (alpha -lr, beta 1). kiln's kernels take beta 0 or 1 only,
** and compute alpha * sum (beta 0) or fma(alpha, sum, c) (beta 1), the
** sum over k in order of fma(b, a, acc) from 0. */
typedef void (*kiln_sgemm_tn_fn)(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                                 float beta, float *c, int ldc);

/* out (cols x rows, row stride ldo) = in^T, in (rows x cols, row stride
** ldi): a scan's context transposed once per run for the step's products
** x W^T (codegen/emit_c.c), into rows padded apart (KILN_CODEGEN_PADDED_LD);
** the padding is not written. Copies: every variant the same bits. In 16 x
** 16 tiles through registers (AVX-512), 8 x 8 (AVX2), or scalar tiles;
** 256 x 1024 into rows of 272 on a Zen 4: 0.42 ms as the generated loops
** (built for AVX-512), 0.31 as the plain tiles, 0.10 through the registers
** of AVX-512 or AVX2. */
typedef void (*kiln_transpose_fn)(int rows, int cols, const float *in, int ldi, float *out, int ldo);

/* W (k x n, row stride ldw) laid out for kiln_sgemm_nn_packed_fn, into
** packed: KILN_CODEGEN_PACKED_FLOATS(k, n) floats, 32-byte aligned. A
** scan's context is packed once before the loop (codegen/emit_c.c) for the
** step's products x W. */
typedef void (*kiln_pack_nn_fn)(int k, int n, const float *w, int ldw, float *packed);

/* y = x W + add as kiln_sgemm_nn_fn (the same bits as the other kernels of
** the set), W packed by the set's pack_nn; kiln's kernel at every shape. */
typedef void (*kiln_sgemm_nn_packed_fn)(int m, int n, int k, const float *x, int ldx, const float *packed, float *y,
                                        int ldy, const float *add, int ldadd);

/* The kernels of one instruction set, as a program uses them. */
typedef struct kiln_kernel_set {
    const char *isa;                 /* "avx512", "avx2" or "blas" */
    kiln_sger_gemv_fn sger_gemv;     /* the batch-1 fused update: that ISA's variant ("blas": plain C) */
    /* What the generated code calls: kiln's kernel at the shapes where it
    ** measured faster than OpenBLAS (the wins functions), the BLAS
    ** elsewhere. NULL for "blas": the code calls the BLAS itself. */
    kiln_sgemm_nn_fn sgemm_nn;
    kiln_sgemm_tn_fn sgemm_tn;
    /* kiln's kernels alone at every shape (for tests and measurements), or NULL */
    kiln_sgemm_nn_fn sgemm_nn_own;
    kiln_sgemm_tn_fn sgemm_tn_own;
    bool (*nn_wins)(int m, int n, int k);
    bool (*tn_wins)(int m, int n, int k);
    kiln_transpose_fn transpose;     /* that ISA's ("blas": plain C) */
    /* A weight packed once and read by many products (a scan's steps):
    ** both, or neither (NULL: the ISA reads W where it lies; AVX2 only) */
    kiln_pack_nn_fn pack_nn;
    kiln_sgemm_nn_packed_fn sgemm_nn_packed;
} kiln_kernel_set;

/* The kernels of isa: "avx512", "avx2", "blas", or NULL or "" for the best
** this CPU runs. false when the name is none of those or the CPU lacks the
** instructions (*s then holds "blas"'s). */
bool kiln_kernel_set_of(const char *isa, kiln_kernel_set *s);

/* Each ISA's part (runtime/gemm.c, runtime/gemm_avx2.c): fill s's product
** kernels, false where this CPU lacks the ISA. */
bool kiln_kernel_avx512_set(kiln_kernel_set *s);
bool kiln_kernel_avx2_set(kiln_kernel_set *s);
bool kiln_kernel_avx512_tn_wins(int m, int n, int k);
bool kiln_kernel_avx2_nn_wins(int m, int n, int k);
bool kiln_kernel_avx2_nn_packed_wins(int m, int n, int k);
bool kiln_kernel_avx2_tn_wins(int m, int n, int k);

/* The AVX-512 weight update's kernels one by one, at every shape, with
** their names (for tests and tools/bench/gemm_shapes): "tile" (the register
** tile of runtime/gemm_tile.h), "block" (the block kernel of runtime/gemm.c,
** for large k). Each gives the bits kiln_sgemm_tn_fn promises. Returns how
** many were written (at most cap; 0 where the CPU lacks AVX-512). The
** set's sgemm_tn_own takes the block kernel where
** kiln_kernel_avx512_tn_block_wins says, the tile elsewhere. */
int kiln_kernel_avx512_tn_parts(kiln_sgemm_tn_fn *fns, const char **names, int cap);
bool kiln_kernel_avx512_tn_block_wins(int m, int n, int k);

#endif
