/* rt_table.h (internal): the table of functions generated code calls in
** the runtime (BLAS, kiln's kernels), and the scratch its GEMM kernel needs.
** Apart from emit_c.h so that the kernels (runtime/gemm.c) and an AOT
** training program (runtime/aot.c copies this file into it) read it with
** no compiler header. */
#ifndef KILN_CODEGEN_RT_TABLE_H
#define KILN_CODEGEN_RT_TABLE_H

#include <stdint.h>

/* Must match k_runtime in the generated prelude (emit_c.c). */
typedef struct kiln_codegen_runtime {
    void (*sgemm)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *,
                  int);
    void (*dgemm)(int, int, int, int, int, int, double, const double *, int, const double *, int, double,
                  double *, int);
    void (*sgemv)(int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
    void (*dgemv)(int, int, int, int, double, const double *, int, const double *, int, double, double *, int);
    void (*sger)(int, int, int, float, const float *, int, const float *, int, float *, int);
    void (*dger)(int, int, int, double, const double *, int, const double *, int, double *, int);
    void (*sger_gemv)(int, int, float *, int, const float *, const float *, const float *, float *);
    /* y = x W (+ add: NULL none; rows ldadd apart, 0 one row to every row)
    ** for few rows, or NULL: then the code calls sgemm (runtime/gemm.c) */
    void (*sgemm_nn)(int m, int n, int k, const float *x, int ldx, const float *w, int ldw, float *y, int ldy,
                     float *scratch, const float *add, int ldadd);
    /* c = alpha a^T b + beta c, or NULL: then the code calls sgemm (runtime/kernels.h) */
    void (*sgemm_tn)(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc);
    /* out (cols x rows, ldo) = in^T, or NULL: then the code's own loops (runtime/kernels.h) */
    void (*transpose)(int rows, int cols, const float *in, int ldi, float *out, int ldo);
    /* W (k x n) packed for sgemm_nn_packed (KILN_CODEGEN_PACKED_FLOATS(k, n)
    ** floats), and y = x W + add from it, or both NULL: then a scan's step
    ** reads a copy of W with rows KILN_CODEGEN_PADDED_LD apart (runtime/kernels.h) */
    void (*pack_nn)(int k, int n, const float *w, int ldw, float *packed);
    void (*sgemm_nn_packed)(int m, int n, int k, const float *x, int ldx, const float *packed, float *y, int ldy,
                            const float *add, int ldadd);
} kiln_codegen_runtime;

/* The row stride, in floats, of a scan context's copy for the step's
** products (lower.c, padded_context): rows a multiple of 128 bytes apart
** fall in a few of L1's 64 sets (a page apart, in one), and a kernel that
** reads W where it lies misses on every row; 16 floats more make the stride
** an odd number of cache lines. At 32 x 1024 x 256 on a Zen 4: 101 -> 110
** GFLOP/s (AVX-512), 59 -> 102 (AVX2). */
#define KILN_CODEGEN_PADDED_LD(n) ((int64_t)(n) % 32 == 0 ? (int64_t)(n) + 16 : (int64_t)(n))

/* Floats of a packed W (k x n): panels of 16 columns, k rows of 16 each,
** the last panel's lanes past n zero. A padded copy's k rows of
** KILN_CODEGEN_PADDED_LD(n) hold it wherever n is a multiple of 32 (the
** only contexts that get one: lower.c, padded_context). */
#define KILN_CODEGEN_PACKED_FLOATS(k, n) ((int64_t)(k) * (((int64_t)(n) + 15) / 16 * 16))

/* The scratch sgemm_nn needs for a product of m rows (at most), n columns
** and k terms, in floats: x^T for a block of rows and the block's sums;
** then, for a product of KILN_CODEGEN_PACK_ROWS rows or more whose W packed
** is at most KILN_CODEGEN_PACK_MAX floats, room for W packed (an AVX2
** sgemm_nn may pack it there: runtime/gemm_avx2.c). A kernel packs only
** where the m of the call is that large, so only where the scratch, sized
** at the maximum m, has the room. */
#define KILN_CODEGEN_GEMM_ROWS 32
#define KILN_CODEGEN_PACK_ROWS 256
#define KILN_CODEGEN_PACK_MAX ((int64_t)1 << 20)
#define KILN_CODEGEN_GEMM_PACKED(m, n, k)                                                                    \
    ((int64_t)(m) >= KILN_CODEGEN_PACK_ROWS && KILN_CODEGEN_PACKED_FLOATS(k, n) <= KILN_CODEGEN_PACK_MAX       \
         ? KILN_CODEGEN_PACKED_FLOATS(k, n)                                                                   \
         : 0)
#define KILN_CODEGEN_GEMM_SCRATCH(m, n, k)                                                                   \
    ((int64_t)KILN_CODEGEN_GEMM_ROWS * ((int64_t)(n) + (int64_t)(k)) + KILN_CODEGEN_GEMM_PACKED(m, n, k))

#endif
