/* gemm_avx2.c: kiln's matrix kernels for CPUs with AVX2 and FMA but no
** AVX-512 (and for any x86-64 that has them, forced with KILN_ISA=avx2):
**     y = x W         for few rows against a weight read in place
**     W += a x^T d    a weight's update (or gradient) over a batch
** both from the register tile of runtime/gemm_tile.h: 4 rows x 24 columns,
** 12 of the 16 ymm registers holding sums, 3 a row of B, 1 a broadcast of
** A (measured against 6 x 16: the same for the update, 1.44-1.52x instead
** of 1.13-1.24x OpenBLAS for y = x W at 8 rows, 1.09x instead of 1.02x at
** 32 x 500); y = x W takes 6 x 16 where W's rows lie on cache lines and
** the product is wide (avx2_six_rows). Unlike the AVX-512 kernel for y = x W (runtime/gemm.c), x is
** not transposed first: 16 registers do not hold a tile of 32 rows, and
** rows broadcast from x in place cost no packing. k runs in blocks of KC so
** that the block of W a column panel reads stays in L1 for its next tiles;
** the partial sums wait in y. Fewer than 24 columns (a classifier's last
** layer) are one panel, its last vector masked.
**
** Every output is the sum over k, in order, of fma(W, x, acc) from 0 (the
** same bits as the AVX-512 kernels and tests/test_kernels.c's loops), so a
** program gives the same results on either ISA. The dispatchers take the
** kernel at the shapes where it measured faster than OpenBLAS
** (kiln_kernel_avx2_nn_wins, ..._tn_wins; docs/performance.md). Compiled
** with target attributes: the library runs on any x86-64 and calls these
** only where the CPU has AVX2 and FMA. */
#include "runtime/kernels.h"

#include "codegen/rt_table.h"

#include <cblas.h>
#include <stdbool.h>
#include <stddef.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TILE_TARGET "avx2,fma"
#define TILE_MR 4
#define TILE_NV 3
#define TILE_PREFIX avx2_
#define VF __m256
#define VL 8
#define VM __m256i
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_MLOAD(p, m) _mm256_maskload_ps((p), (m))
#define V_STORE(p, v) _mm256_storeu_ps((p), (v))
#define V_MSTORE(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#define V_BCAST(p) _mm256_broadcast_ss(p)
#define V_SET1(x) _mm256_set1_ps(x)
#define V_MUL(a, b) _mm256_mul_ps((a), (b))
#define V_ADD(a, b) _mm256_add_ps((a), (b))
#define V_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define V_MASK(n) _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define TILE_TN_WINS kiln_kernel_avx2_tn_wins
#include "runtime/gemm_tile.h"

/* The same tile 6 rows x 16 columns, for y = x W with many columns of a W
** whose rows start on a cache line (avx2_six_rows). */
#undef TILE_MR
#undef TILE_NV
#undef TILE_PREFIX
#define TILE_MR 6
#define TILE_NV 2
#define TILE_PREFIX avx2_6x16_
#include "runtime/gemm_tile.h"

enum { KC = 256 };

/* Which tile y = x W takes: 6 x 16 where rows of W are whole cache lines
** apart (ldw a multiple of 16: a panel's row is one line, 256 rows 16 KiB
** of L1, where 4 x 24's rows straddle two or three), with 512 columns or
** more and 16 rows or more; 4 x 24 elsewhere. Measured on a Zen 4, y and x
** new at every call as in a scan's steps, 1 MiB evicted between calls:
** 32 x 1024 x 256 (ldw 1040: an LSTM step's h W) 81 -> 87-94 GFLOP/s, 24
** and 48 rows 94 -> 107 and 81 -> 93, 32-64 x 512-2048 x 128-512 mostly
** +5-30%; 4 x 24 stays ahead at 8 rows (8 x 1024 x 256: 98 against 87),
** with 256 columns (32 x 256 x 1024: 102 against 92) and with rows not on
** lines (32 x 500 x 784: 93 against 90). */
static bool avx2_six_rows(int m, int n, int ldw) { return m >= 16 && n >= 512 && ldw % 16 == 0; }

/* Transpose 8 x 8 floats in registers: on return r[q] holds what was
** column q. */
__attribute__((target("avx2,fma"), always_inline)) static inline void transpose8(__m256 r[8])
{
    __m256 t[8], s[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) { /* s[i + q]: column q of four rows, column q + 4 in the upper half */
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int q = 0; q < 4; q++) {
        r[q] = _mm256_permute2f128_ps(s[q], s[q + 4], 0x20);
        r[q + 4] = _mm256_permute2f128_ps(s[q], s[q + 4], 0x31);
    }
}

/* kiln_transpose_fn (runtime/kernels.h): 8 x 8 tiles through registers,
** masked at the edges only (vmaskmovps stores are microcoded on AMD:
** masked everywhere, 0.25 ms at 256 x 1024, plain 0.10). */
__attribute__((target("avx2,fma"))) static void transpose_avx2(int rows, int cols, const float *restrict in, int ldi,
                                                              float *restrict out, int ldo)
{
    for (int i0 = 0; i0 < rows; i0 += 8) {
        const int ni = rows - i0 < 8 ? rows - i0 : 8;
        const __m256i mi = V_MASK(ni);
        for (int j0 = 0; j0 < cols; j0 += 8) {
            const int nj = cols - j0 < 8 ? cols - j0 : 8;
            const __m256i mj = V_MASK(nj);
            const bool full = ni == 8 && nj == 8; /* plain loads and stores: a masked store is slow on AMD */
            __m256 r[8];
KILN_UNROLL(8)
            for (int i = 0; i < 8; i++) {
                const float *p = in + (ptrdiff_t)(i0 + i) * ldi + j0;
                r[i] = full ? _mm256_loadu_ps(p) : i < ni ? _mm256_maskload_ps(p, mj) : _mm256_setzero_ps();
            }
            transpose8(r);
            for (int j = 0; j < nj; j++) {
                float *p = out + (ptrdiff_t)(j0 + j) * ldo + i0;
                if (full)
                    _mm256_storeu_ps(p, r[j]);
                else
                    _mm256_maskstore_ps(p, mi, r[j]);
            }
        }
    }
}

/* kiln_pack_nn_fn: W (k x n) as panels of 16 columns, panel j / 16 at
** packed + j * k, its k rows 16 floats (one cache line) each, lanes past n
** zero. */
__attribute__((target("avx2,fma"))) static void pack_nn(int k, int n, const float *restrict w, int ldw,
                                                       float *restrict packed)
{
    for (int j = 0; j < n; j += 16) {
        const int nw = n - j < 16 ? n - j : 16;
        const __m256i lo = V_MASK(nw < 8 ? nw : 8), hi = V_MASK(nw > 8 ? nw - 8 : 1);
        float *bp = packed + (ptrdiff_t)j * k;
        for (int p = 0; p < k; p++) {
            const float *wr = w + (ptrdiff_t)p * ldw + j;
            _mm256_store_ps(bp + 16 * p, nw >= 8 ? _mm256_loadu_ps(wr) : _mm256_maskload_ps(wr, lo));
            _mm256_store_ps(bp + 16 * p + 8, nw == 16 ? _mm256_loadu_ps(wr + 8)
                                             : nw > 8 ? _mm256_maskload_ps(wr + 8, hi)
                                                      : _mm256_setzero_ps());
        }
    }
}

/* kiln_sgemm_nn_packed_fn: the 6 x 16 tile against W's panels, a panel's
** rows one cache line after another, where the hardware prefetches them;
** read in place (rows ldw apart, a page or more for a wide W) each row is a
** line of its own, and of its own page unless the arena has huge pages.
** An LSTM step's h W (32 x 1024 x 256, W packed once per sequence): the
** step's median -0.15 to -0.31 ms in three runs of 150 steps, the padded
** copy and the packed W alternating in one process (Zen 4, AVX2 kernels;
** docs/performance.md). Rows of x in blocks of MC, so that a block stays
** in L2 while every panel passes; k in blocks of KC, the sums kept in y
** between blocks. The same tile and order of sums as the other paths: the
** same bits. */
enum { MC = 192 };
__attribute__((target("avx2,fma"))) static void nn_packed(int m, int n, int k, const float *x, int ldx,
                                                         const float *packed, float *y, int ldy, const float *add,
                                                         int ldadd)
{
    for (int i0 = 0; i0 < m; i0 += MC) {
        const int mb = m - i0 < MC ? m - i0 : MC;
        for (int j = 0; j < n; j += 16) {
            const float *bp = packed + (ptrdiff_t)j * k;
            const int nw = n - j < 16 ? n - j : 16;
            for (int p0 = 0; p0 < k; p0 += KC) {
                const int kb = k - p0 < KC ? k - p0 : KC;
                const float *last = p0 + kb == k && add ? add + (ptrdiff_t)i0 * ldadd + j : NULL;
                avx2_6x16_columns(mb, nw, kb, x + (ptrdiff_t)i0 * ldx + p0, ldx, 1, bp + (ptrdiff_t)16 * p0, 16,
                                  y + (ptrdiff_t)i0 * ldy + j, ldy, p0 == 0, TILE_STORE, 1.0f, last, ldadd);
            }
        }
    }
}

__attribute__((target("avx2,fma"))) static void own_nn(int m, int n, int k, const float *x, int ldx, const float *w,
                                                      int ldw, float *y, int ldy, float *scratch, const float *add,
                                                      int ldadd)
{
    (void)scratch;
    if (avx2_six_rows(m, n, ldw))
        avx2_6x16_nn(m, n, k, KC, x, ldx, w, ldw, y, ldy, add, ldadd);
    else
        avx2_nn(m, n, k, KC, x, ldx, w, ldw, y, ldy, add, ldadd);
}

/* The kernel where it is faster: for few rows against W in place, for
** many against W packed into the scratch (where the scratch has the room:
** KILN_CODEGEN_GEMM_PACKED); the BLAS elsewhere (an addend copied into y
** first, then beta = 1). */
static void sgemm_nn(int m, int n, int k, const float *x, int ldx, const float *w, int ldw, float *y, int ldy,
                     float *scratch, const float *add, int ldadd)
{
    if (kiln_kernel_avx2_nn_wins(m, n, k)) {
        own_nn(m, n, k, x, ldx, w, ldw, y, ldy, scratch, add, ldadd);
    } else if (scratch && KILN_CODEGEN_GEMM_PACKED(m, n, k) > 0 && kiln_kernel_avx2_nn_packed_wins(m, n, k)) {
        float *packed = scratch + (ptrdiff_t)KILN_CODEGEN_GEMM_ROWS * (n + k); /* 128-byte multiples: aligned */
        pack_nn(k, n, w, ldw, packed);
        nn_packed(m, n, k, x, ldx, packed, y, ldy, add, ldadd);
    } else {
        kiln_kernel_sgemm_nn_blas(m, n, k, x, ldx, w, ldw, y, ldy, add, ldadd);
    }
}

bool kiln_kernel_avx2_set(kiln_kernel_set *s)
{
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return false;
    s->sgemm_nn = sgemm_nn;
    s->sgemm_nn_own = own_nn;
    s->nn_wins = kiln_kernel_avx2_nn_wins;
    s->sgemm_tn = avx2_sgemm_tn;
    s->sgemm_tn_own = avx2_own_tn;
    s->tn_wins = kiln_kernel_avx2_tn_wins;
    s->transpose = transpose_avx2;
    s->pack_nn = pack_nn;
    s->sgemm_nn_packed = nn_packed;
    return true;
}
#else
bool kiln_kernel_avx2_set(kiln_kernel_set *s)
{
    (void)s;
    return false;
}
#endif

/* Measured on an AMD EPYC (Zen 4) core, 1 thread, against OpenBLAS 0.3.21
** running its Haswell kernels (OPENBLAS_CORETYPE=Haswell: what it runs on
** an AVX2-only CPU), by tools/bench/gemm_shapes (docs/performance.md).
** y = x W, k = 784, 100 and 500 columns: 1.44-1.52x at 8 rows, 1.20x at
** 16, 1.05-1.09x at 32, 0.97-1.04x at 64, 0.95-1.0x at 128. Ten columns,
** k 100 and 500: 1.8-1.9x at 8 rows, 1.2x at 16, 1.14x at 32, 0.97-1.0x at
** 64-128. One row goes to sgemv anyway. */
bool kiln_kernel_avx2_nn_wins(int m, int n, int k)
{
    if (n < 16)
        return n >= 8 && m >= 2 && m <= 32 && k >= 64;
    return m >= 2 && m <= 48 && n >= 64 && k >= 256;
}

/* y = x W (+ a bias row) for many rows, W packed first (pack_nn, then
** nn_packed), against OpenBLAS's Haswell kernels with the bias copied into
** y and beta = 1 (what sgemm_nn does otherwise); time ratios, median of 15
** in one process, m 256-2048, n 100-1024, k 256-1024: 0.93-0.98 at
** k = 256 (the LSTM benchmark's input projection, 1600 x 1024 x 256:
** 0.94, -0.45 ms), 0.91-0.97 at 1600 rows and more with n <= 500; up to
** 1.09 with n = 1024 and k >= 784 (W packed is 3-4 MiB, past L2), about
** even elsewhere. m >= KILN_CODEGEN_PACK_ROWS always (the scratch's room). */
bool kiln_kernel_avx2_nn_packed_wins(int m, int n, int k)
{
    return m >= KILN_CODEGEN_PACK_ROWS && n >= 64 && (k <= 256 || (m >= 1600 && n <= 512 && k <= 1024));
}

/* W += a x^T d, 784 x 100 and 784 x 500 over 32 and 128 rows: 0.91-0.96x;
** 100 x 10 and 500 x 10: 0.7-0.96x (OpenBLAS's Haswell kernels run near
** this core's peak there, and 10 columns fill 10 of a panel's 24 lanes).
** Not taken anywhere yet. */
bool kiln_kernel_avx2_tn_wins(int m, int n, int k)
{
    (void)m, (void)n, (void)k;
    return false;
}
