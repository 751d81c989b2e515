/* gemm.c: kiln's own matrix product for up to a few hundred rows against a
** weight read in place, y = x W with x (m x k), W (k x n), y (m x n), all
** row-major.
**
** Why: at 32 rows x 784 x 500, OpenBLAS packs all of W on every call (its
** sgemm_itcopy was 17.5% of a batch-32 training step by perf) and reaches
** ~75 GFLOP/s; this kernel reads W where it lies and reaches ~120
** (docs/performance.md). It computes y^T: a tile of the accumulators holds
** 12 columns of W times 32 rows of x (24 zmm registers); for each k it loads
** the 32 values of column k of x (packed once, x^T, 32 to a row) and
** broadcasts 12 consecutive values of row k of W, so W is read exactly once
** for a block of 32 rows, in its own layout. k runs in blocks of KC so that
** the rows of W a tile touches stay in L1 for the next tile.
**
** Rows of W lie ldw floats apart, a page or more for wide layers, where the
** hardware prefetcher stops; the tile asks for row p + 16 while it works on
** row p (without it the kernel fell to 0.57x OpenBLAS at 32 x 784 x 2000,
** with it 1.38x, and 1.47 -> 1.62x at 32 x 784 x 500); the update's
** block kernel asks for row p + 64 (PD_TN below).
**
** Fewer than 16 columns (a classifier's last layer) take a loop of their
** own, a row of y to a masked vector (narrow()).
**
** A block of 32 rows costs the same whether 1 or 32 are used, and with many
** rows OpenBLAS's packing may pay for itself: sgemm_nn() below takes the
** kernel where it measured faster (kiln_kernel_sgemm_nn_wins, measured on
** Intel; on AMD kiln_kernel_avx512_nn_wins_amd, which takes many rows too;
** docs/performance.md) and calls the BLAS elsewhere.
**
** Every output is sum over k, in order, of fma(W[k][j], x[i][k], acc),
** starting from 0: the same bits as the plain loop in tests/test_kernels.c.
** An addend (a bias row, or a matrix: lower.c's addend epilogue) is added
** to the finished sum as y is stored (store_y, narrow), so y = sum + add
** rounds once more exactly as the unfused add does: the same bits.
** AVX-512 only; on other CPUs kiln_kernel_sgemm_nn() returns NULL
** (runtime/gemm_avx2.c has the AVX2 kernels).
**
** The weight-update product W += a x^T d (sgemm_tn) uses the register tile
** of runtime/gemm_tile.h, shared with the AVX2 kernels: 12 rows x 32
** columns; for large k (the rows of a whole sequence) the block kernel
** above instead (tn_block: x = a^T, whose blocks of x^T are 32 columns of
** a, copied without a transpose), where kiln_kernel_avx512_tn_block_wins
** says. kiln_kernel_avx512_set hands this file's kernels to
** kiln_kernel_set_of (runtime/kernels.c). */
#include "runtime/kernels.h"

#include "codegen/rt_table.h"

#include <cblas.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PD, PD_TN: how many rows of W ahead the tile asks for (tile()): 16 for
** y = x W, whose W was read a step before and lies in L2 or L3; 64 for the
** update's b (the d of a whole sequence, 6.5 MB in the LSTM benchmark),
** written long before and read first from memory: the LSTM step's median
** 44.75-45.33 ms with 16, 44.35-44.83 with 48-96 (an experiment build
** whose distance was a variable, steps alternating the settings in one
** process; docs/performance.md). */
enum { ROWS = KILN_CODEGEN_GEMM_ROWS, MR = 12, KC = 128, PD = 16, PD_TN = 64, NC = 256 };

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* Transpose 16 x 16 floats in registers: on return r[q] holds what was
** column q (lane q of every r[i]). */
__attribute__((target("avx512f"), always_inline)) static inline void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

static inline __mmask16 first_lanes(int n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }

/* kiln_transpose_fn (runtime/kernels.h): 16 x 16 tiles through registers,
** masked at the edges. */
__attribute__((target("avx512f"))) static void transpose_avx512(int rows, int cols, const float *restrict in, int ldi,
                                                               float *restrict out, int ldo)
{
    for (int i0 = 0; i0 < rows; i0 += 16) {
        const int ni = rows - i0 < 16 ? rows - i0 : 16;
        const __mmask16 mi = first_lanes(ni);
        for (int j0 = 0; j0 < cols; j0 += 16) {
            const int nj = cols - j0 < 16 ? cols - j0 : 16;
            const __mmask16 mj = first_lanes(nj);
            __m512 r[16];
KILN_UNROLL(16)
            for (int i = 0; i < 16; i++)
                r[i] = i < ni ? _mm512_maskz_loadu_ps(mj, in + (ptrdiff_t)(i0 + i) * ldi + j0) : _mm512_setzero_ps();
            transpose16(r);
            for (int j = 0; j < nj; j++)
                _mm512_mask_storeu_ps(out + (ptrdiff_t)(j0 + j) * ldo + i0, mi, r[j]);
        }
    }
}

/* xt (k x 32) = x^T for rows 0 .. m-1 of x, zeros for rows m .. 31 (never
** stored, but garbage there could be denormal and slow the FMAs), 16 x 16
** at a time. */
__attribute__((target("avx512f"))) static void pack_xt(int m, int k, const float *restrict x, ptrdiff_t ldx,
                                                      float *restrict xt)
{
    for (int i0 = 0; i0 < ROWS; i0 += 16)
        for (int p0 = 0; p0 < k; p0 += 16) {
            const __mmask16 cols = first_lanes(k - p0);
            __m512 r[16];
KILN_UNROLL(16)
            for (int i = 0; i < 16; i++)
                r[i] = i0 + i < m ? _mm512_maskz_loadu_ps(cols, x + (i0 + i) * ldx + p0) : _mm512_setzero_ps();
            transpose16(r);
            const int np = k - p0 < 16 ? k - p0 : 16;
            for (int q = 0; q < np; q++)
                _mm512_store_ps(xt + (ptrdiff_t)ROWS * (p0 + q) + i0, r[q]);
        }
}

/* What a store does with the sums: y = sum (STORE), c = alpha sum (SCALE),
** c = fma(alpha, sum, c) (UPDATE). */
enum { STORE, SCALE, UPDATE };

/* y (m x n) from the sums ct, stored column by column (n x 32), as fin
** says, plus add (rows ldadd apart; ldadd 0: one row) unless NULL. */
__attribute__((target("avx512f"))) static void store_y(int m, int n, const float *restrict ct, float *restrict y,
                                                      ptrdiff_t ldy, int fin, float alpha, const float *restrict add,
                                                      ptrdiff_t ldadd)
{
    const __m512 al = _mm512_set1_ps(alpha);
    for (int i0 = 0; i0 < m; i0 += 16)
        for (int j0 = 0; j0 < n; j0 += 16) {
            const int nj = n - j0 < 16 ? n - j0 : 16;
            __m512 r[16];
KILN_UNROLL(16)
            for (int j = 0; j < 16; j++)
                r[j] = j < nj ? _mm512_load_ps(ct + (ptrdiff_t)ROWS * (j0 + j) + i0) : _mm512_setzero_ps();
            transpose16(r);
            const __mmask16 cols = first_lanes(nj);
            const int ni = m - i0 < 16 ? m - i0 : 16;
            for (int i = 0; i < ni; i++) {
                float *yi = y + (i0 + i) * ldy + j0;
                __m512 v = r[i];
                if (fin == SCALE)
                    v = _mm512_mul_ps(al, v);
                else if (fin == UPDATE)
                    v = _mm512_fmadd_ps(al, v, _mm512_maskz_loadu_ps(cols, yi));
                if (add)
                    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(cols, add + (i0 + i) * ldadd + j0));
                _mm512_mask_storeu_ps(yi, cols, v);
            }
        }
}

/* nr columns (a constant once inlined: 12, 8, 4, 2 or 1) of W from column
** j0, rows p0 .. p0+kc, against xt (kc x 32); ct: the tile's 32 x nr sums,
** column by column, read back unless first. */
__attribute__((target("avx512f"), always_inline)) static inline void
tile(int nr, int kc, const float *restrict xt, const float *restrict w, ptrdiff_t ldw, float *restrict ct,
     bool first, int pd)
{
    __m512 a0[MR], a1[MR];
KILN_UNROLL(12)
    for (int r = 0; r < nr; r++) {
        a0[r] = first ? _mm512_setzero_ps() : _mm512_load_ps(ct + ROWS * r);
        a1[r] = first ? _mm512_setzero_ps() : _mm512_load_ps(ct + ROWS * r + 16);
    }
    for (int p = 0; p < kc; p++) {
        const __m512 x0 = _mm512_load_ps(xt + ROWS * p), x1 = _mm512_load_ps(xt + ROWS * p + 16);
        const float *wr = w + p * ldw;
        /* rows of W are ldw apart, often a page or more: the hardware does
        ** not prefetch across pages, so ask for row p + pd's floats now (an
        ** address, not a pointer: it may lie past W, and a prefetch never
        ** faults) */
        const uintptr_t ahead = (uintptr_t)wr + (uintptr_t)(pd * ldw) * sizeof(float);
        _mm_prefetch((const char *)ahead, _MM_HINT_T0);
        _mm_prefetch((const char *)(ahead + (uintptr_t)(nr - 1) * sizeof(float)), _MM_HINT_T0);
KILN_UNROLL(12)
        for (int r = 0; r < nr; r++) {
            const __m512 b = _mm512_set1_ps(wr[r]);
            a0[r] = _mm512_fmadd_ps(b, x0, a0[r]);
            a1[r] = _mm512_fmadd_ps(b, x1, a1[r]);
        }
    }
KILN_UNROLL(12)
    for (int r = 0; r < nr; r++) {
        _mm512_store_ps(ct + ROWS * r, a0[r]);
        _mm512_store_ps(ct + ROWS * r + 16, a1[r]);
    }
}

/* The n columns of W from w (rows p0 .. p0+kc, ldw apart) against xt
** (kc x 32), tile after tile, into ct (n x 32); pd: tile()'s. */
__attribute__((target("avx512f"), always_inline)) static inline void
tiles(int n, int kc, const float *restrict xp, const float *restrict wp, ptrdiff_t ldw, float *restrict ct,
      bool first, int pd)
{
    int j = 0;
    for (; j + MR <= n; j += MR)
        tile(MR, kc, xp, wp + j, ldw, ct + ROWS * j, first, pd);
    if (n - j >= 8) {
        tile(8, kc, xp, wp + j, ldw, ct + ROWS * j, first, pd);
        j += 8;
    }
    if (n - j >= 4) {
        tile(4, kc, xp, wp + j, ldw, ct + ROWS * j, first, pd);
        j += 4;
    }
    if (n - j >= 2) {
        tile(2, kc, xp, wp + j, ldw, ct + ROWS * j, first, pd);
        j += 2;
    }
    if (n - j >= 1)
        tile(1, kc, xp, wp + j, ldw, ct + ROWS * j, first, pd);
}

/* One block of at most 32 rows. */
__attribute__((target("avx512f"))) static void block(int m, int n, int k, const float *restrict x, ptrdiff_t ldx,
                                                     const float *restrict w, ptrdiff_t ldw, float *restrict y,
                                                     ptrdiff_t ldy, float *restrict xt, float *restrict ct,
                                                     const float *restrict add, ptrdiff_t ldadd)
{
    pack_xt(m, k, x, ldx, xt);
    for (int p0 = 0; p0 < k; p0 += KC) {
        const int kc = k - p0 < KC ? k - p0 : KC;
        tiles(n, kc, xt + ROWS * p0, w + p0 * ldw, ldw, ct, p0 == 0, PD);
    }
    store_y(m, n, ct, y, ldy, STORE, 1.0f, add, ldadd);
}

/* xt (kc x 32): row p holds a[p][0 .. m-1] (m <= 32), zeros after (as in
** pack_xt). A block of x^T for x = a^T is 32 consecutive columns of a's
** rows: a strided copy, no transpose. */
__attribute__((target("avx512f"))) static void pack_at(int m, int kc, const float *restrict a, ptrdiff_t lda,
                                                      float *restrict xt)
{
    const __mmask16 lo = first_lanes(m), hi = m > 16 ? first_lanes(m - 16) : 0;
    for (int p = 0; p < kc; p++) {
        _mm512_store_ps(xt + ROWS * p, _mm512_maskz_loadu_ps(lo, a + p * lda));
        _mm512_store_ps(xt + ROWS * p + 16, _mm512_maskz_loadu_ps(hi, a + p * lda + 16));
    }
}

/* c (m x n) = alpha a^T b (beta 0) or fma(alpha, a^T b, c) (beta 1), a
** (k x m, lda), b (k x n, ldb): the weight update through the block kernel
** for large k (the batch of all T*B rows of a sequence, say). A block of 32
** rows of c is 32 columns of a, packed KC rows at a time into xt (on the
** stack); b is the "W" read in place; the sums of NC columns wait in ct (on
** the stack, 32 KiB), then go to c scaled or added. Each sum is over k in
** order, fma(b, a, acc) from 0, as in gemm_tile.h's tn: the same bits. */
__attribute__((target("avx512f"))) static void tn_block(int m, int n, int k, float alpha, const float *a, int lda,
                                                        const float *b, int ldb, float beta, float *c, int ldc)
{
    _Alignas(64) float xt[KC * ROWS];
    _Alignas(64) float ct[NC * ROWS];
    const int fin = beta != 0 ? UPDATE : SCALE;
    for (int i0 = 0; i0 < m; i0 += ROWS) {
        const int mb = m - i0 < ROWS ? m - i0 : ROWS;
        for (int j0 = 0; j0 < n; j0 += NC) {
            const int nc = n - j0 < NC ? n - j0 : NC;
            for (int p0 = 0; p0 < k; p0 += KC) {
                const int kc = k - p0 < KC ? k - p0 : KC;
                pack_at(mb, kc, a + (ptrdiff_t)p0 * lda + i0, lda, xt);
                tiles(nc, kc, xt, b + (ptrdiff_t)p0 * ldb + j0, ldb, ct, p0 == 0, PD_TN);
            }
            store_y(mb, nc, ct, c + (ptrdiff_t)i0 * ldc + j0, ldc, fin, alpha, NULL, 0);
        }
    }
}

/* Fewer than 16 columns (a classifier's last layer): a row of y is one
** vector, masked to n lanes; eight rows at a time keep eight FMA chains in
** flight. W's row p is one masked load, x's values are broadcast. */
__attribute__((target("avx512f"))) static void narrow(int m, int n, int k, const float *restrict x, ptrdiff_t ldx,
                                                      const float *restrict w, ptrdiff_t ldw, float *restrict y,
                                                      ptrdiff_t ldy, const float *restrict add, ptrdiff_t ldadd)
{
    const __mmask16 cols = first_lanes(n);
    int i = 0;
    for (; i + 8 <= m; i += 8) {
        const float *xi = x + i * ldx;
        __m512 a[8];
KILN_UNROLL(8)
        for (int r = 0; r < 8; r++)
            a[r] = _mm512_setzero_ps();
        for (int p = 0; p < k; p++) {
            const __m512 wv = _mm512_maskz_loadu_ps(cols, w + p * ldw);
KILN_UNROLL(8)
            for (int r = 0; r < 8; r++)
                a[r] = _mm512_fmadd_ps(wv, _mm512_set1_ps(xi[r * ldx + p]), a[r]);
        }
KILN_UNROLL(8)
        for (int r = 0; r < 8; r++) {
            if (add)
                a[r] = _mm512_add_ps(a[r], _mm512_maskz_loadu_ps(cols, add + (i + r) * ldadd));
            _mm512_mask_storeu_ps(y + (i + r) * ldy, cols, a[r]);
        }
    }
    for (; i < m; i++) {
        __m512 a = _mm512_setzero_ps();
        for (int p = 0; p < k; p++)
            a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(cols, w + p * ldw), _mm512_set1_ps(x[i * ldx + p]), a);
        if (add)
            a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(cols, add + i * ldadd));
        _mm512_mask_storeu_ps(y + i * ldy, cols, a);
    }
}

__attribute__((target("avx512f"))) static void own_avx512(int m, int n, int k, const float *x, int ldx,
                                                         const float *w, int ldw, float *y, int ldy, float *scratch,
                                                         const float *add, int ldadd)
{
    if (n < 16) {
        narrow(m, n, k, x, ldx, w, ldw, y, ldy, add, ldadd);
        return;
    }
    float *xt = scratch, *ct = scratch + (ptrdiff_t)ROWS * k;
    for (int i0 = 0; i0 < m; i0 += ROWS) {
        const int mb = m - i0 < ROWS ? m - i0 : ROWS;
        block(mb, n, k, x + (ptrdiff_t)i0 * ldx, ldx, w, ldw, y + (ptrdiff_t)i0 * ldy, ldy, xt, ct,
              add ? add + (ptrdiff_t)i0 * ldadd : NULL, ldadd);
    }
}

/* The kernel where it is faster than OpenBLAS, the BLAS elsewhere (an
** addend copied into y first, then beta = 1): the rule measured on Intel
** (sgemm_nn) or on AMD (sgemm_nn_amd), chosen once by kiln_kernel_avx512_set. */
__attribute__((always_inline)) static inline void nn_by(bool own, int m, int n, int k, const float *x, int ldx,
                                                        const float *w, int ldw, float *y, int ldy, float *scratch,
                                                        const float *add, int ldadd)
{
    if (own)
        own_avx512(m, n, k, x, ldx, w, ldw, y, ldy, scratch, add, ldadd);
    else
        kiln_kernel_sgemm_nn_blas(m, n, k, x, ldx, w, ldw, y, ldy, add, ldadd);
}

static void sgemm_nn(int m, int n, int k, const float *x, int ldx, const float *w, int ldw, float *y, int ldy,
                     float *scratch, const float *add, int ldadd)
{
    nn_by(kiln_kernel_sgemm_nn_wins(m, n, k), m, n, k, x, ldx, w, ldw, y, ldy, scratch, add, ldadd);
}

static void sgemm_nn_amd(int m, int n, int k, const float *x, int ldx, const float *w, int ldw, float *y, int ldy,
                         float *scratch, const float *add, int ldadd)
{
    nn_by(kiln_kernel_avx512_nn_wins_amd(m, n, k), m, n, k, x, ldx, w, ldw, y, ldy, scratch, add, ldadd);
}

/* The weight-update product from the tile of runtime/gemm_tile.h: 12 rows
** x 32 columns, 24 of the 32 zmm registers holding sums. */
#define TILE_TARGET "avx512f"
#define TILE_MR 12
#define TILE_NV 2
#define TILE_PREFIX avx512_
#define VF __m512
#define VL 16
#define VM __mmask16
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_MLOAD(p, m) _mm512_maskz_loadu_ps((m), (p))
#define V_STORE(p, v) _mm512_storeu_ps((p), (v))
#define V_MSTORE(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define V_BCAST(p) _mm512_set1_ps(*(p))
#define V_SET1(x) _mm512_set1_ps(x)
#define V_MUL(a, b) _mm512_mul_ps((a), (b))
#define V_ADD(a, b) _mm512_add_ps((a), (b))
#define V_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define V_MASK(n) first_lanes(n)
#define TILE_TN_WINS kiln_kernel_avx512_tn_wins
#define TILE_TN_BIG tn_block
#define TILE_TN_BIG_WINS kiln_kernel_avx512_tn_block_wins
#include "runtime/gemm_tile.h"
#define KILN_HAVE_OWN_GEMM 1
#endif

/* Measured on a Sapphire Rapids core against OpenBLAS 0.3.21 (1 thread).
** Blocks of 32 rows, n >= 100 and k >= 500: 1.41-1.62x at 32 rows,
** 1.11-1.33x at 64, 1.0-1.24x at 96-128, 1.02-1.14x at 256, 0.88-1.06x at
** 1000; with a block 3/4 full or less (48 rows: 0.82-1.04x), or k = 100, it
** may lose. Fewer than 16 columns (narrow): 1.25-2.7x for 10-15 columns
** from 8 rows (k 100-2000), 0.5x at 1-2 rows, 0.25-0.6x at 3 columns. */
bool kiln_kernel_sgemm_nn_wins(int m, int n, int k)
{
    if (n < 16)
        return n >= 8 && m >= 8 && k >= 64;
    const int blocks = (m + ROWS - 1) / ROWS;
    return m > 0 && m <= 8 * ROWS && 8 * m >= 7 * ROWS * blocks && n >= 64 && k >= 256;
}

/* Measured on an AMD EPYC (Zen 4) core against OpenBLAS 0.3.21's SKYLAKEX
** kernels, 1 thread (tools/bench/gemm_shapes, a loaded machine, best of 41;
** docs/performance.md): up to 256 rows as on Intel (the rule above); more
** rows, n >= 100, k >= 256: 1.03-1.15x at 512, 1000, 1024, 1600 and 2048
** rows (n 100-1024, k 256-1024; the LSTM benchmark's 1600 x 1024 x 256:
** 1.05-1.11x), where Sapphire Rapids gave 0.88-1.06x at 1000 (why the two
** differ was not measured). */
bool kiln_kernel_avx512_nn_wins_amd(int m, int n, int k)
{
    if (n < 16 || m <= 8 * ROWS)
        return kiln_kernel_sgemm_nn_wins(m, n, k);
    return n >= 100 && k >= 256; /* 9 blocks or more are at least 8/9 full */
}

kiln_sgemm_nn_fn kiln_kernel_sgemm_nn_own(void)
{
#ifdef KILN_HAVE_OWN_GEMM
    if (__builtin_cpu_supports("avx512f"))
        return own_avx512;
#endif
    return NULL;
}

kiln_sgemm_nn_fn kiln_kernel_sgemm_nn(void)
{
#ifdef KILN_HAVE_OWN_GEMM
    if (__builtin_cpu_supports("avx512f"))
        return __builtin_cpu_is("amd") ? sgemm_nn_amd : sgemm_nn;
#endif
    return NULL;
}

/* W += a x^T d, measured on an AMD EPYC (Zen 4) core against OpenBLAS
** 0.3.21's SKYLAKEX kernels, 1 thread (tools/bench/gemm_shapes, best of
** 41, a loaded machine: +-5%; docs/performance.md). Few terms (k the batch):
** 784 x 500 over 32 and 128 rows 1.02-1.03x, over 256-1000 0.91-0.93x; 784
** x 100 0.99-1.01x; 500 x 10 over 256-1000 rows 1.28-1.41x, over 32-128
** 0.74-0.90x; 100 x 10 0.77-0.96x. Many terms (k 256-4000: a sequence's
** T*B rows), m and n of 100-1024, own_tn as chosen below, each timed
** alternately with OpenBLAS alone: m = 100 (the tile) 1.04-1.14x up to
** k = 1600, 0.62-0.97x at k = 4000 from n = 500; m = 256 1.02-1.14x up to
** k = 1600 (the LSTM's 256 x 1024 x 1600: 0.98-1.05x), 0.75-1.15x at 4000;
** m = 500-1024 with n <= 500 1.01-1.12x up to k = 1600, with n >= 784
** 0.92-1.04x; k = 4000 0.79-1.06x. */
bool kiln_kernel_avx512_tn_wins(int m, int n, int k)
{
    if (n < 16)
        return n >= 8 && m >= 256 && k >= 256;
    if (m >= 256 && n >= 256 && k >= 32 && k <= 128)
        return true;
    return n >= 100 && k >= 256 && m >= 100 && ((m <= 256 && k <= 2048) || (m <= 1024 && n <= 500 && k <= 1600));
}

/* Where own_tn takes the block kernel instead of the tile, same machine
** and method: from k = 1000 with blocks of 32 rows 7/8 full or fuller (m
** 256-1024), the block kernel 0.97-1.13x OpenBLAS where the tile gave
** 0.69-1.13x (k = 1000-1600), 0.75-1.11x where the tile gave 0.35-1.03x
** (k = 4000: the tile reads all k rows of its columns of b for every 12
** rows of c, the block kernel KC rows at a time for 32). The LSTM's 256 x
** 1024 x 1600: block 0.98-1.05x, tile 0.87-0.94x. With partial blocks
** (m = 100: block 0.83-0.90x) the tile. */
bool kiln_kernel_avx512_tn_block_wins(int m, int n, int k)
{
    const int blocks = (m + ROWS - 1) / ROWS;
    return k >= 1000 && n >= 64 && m > 0 && 8 * m >= 7 * ROWS * blocks;
}

int kiln_kernel_avx512_tn_parts(kiln_sgemm_tn_fn *fns, const char **names, int cap)
{
    int k = 0;
#ifdef KILN_HAVE_OWN_GEMM
    if (__builtin_cpu_supports("avx512f")) {
        const kiln_sgemm_tn_fn all[2] = {avx512_tile_tn, tn_block};
        const char *const name[2] = {"tile", "block"};
        for (; k < cap && k < 2; k++) {
            fns[k] = all[k];
            names[k] = name[k];
        }
    }
#endif
    (void)fns, (void)names, (void)cap;
    return k;
}

bool kiln_kernel_avx512_set(kiln_kernel_set *s)
{
#ifdef KILN_HAVE_OWN_GEMM
    if (__builtin_cpu_supports("avx512f")) {
        const bool amd = __builtin_cpu_is("amd"); /* the rule measured on this vendor's cores */
        s->sgemm_nn = amd ? sgemm_nn_amd : sgemm_nn;
        s->sgemm_nn_own = own_avx512;
        s->nn_wins = amd ? kiln_kernel_avx512_nn_wins_amd : kiln_kernel_sgemm_nn_wins;
        s->sgemm_tn = avx512_sgemm_tn;
        s->sgemm_tn_own = avx512_own_tn;
        s->tn_wins = kiln_kernel_avx512_tn_wins;
        s->transpose = transpose_avx512;
        return true;
    }
#endif
    (void)s;
    return false;
}
