/* gemm_tile.h (internal): one register tile of a float product, written once
** and included by runtime/gemm.c (AVX-512) and runtime/gemm_avx2.c (AVX2)
** with the vector operations of each instruction set defined first.
**
** A tile holds rows i .. i+mr of the result C times nv <= TILE_NV vectors
** of columns j .. j+nv*VL, the last vector masked to fewer lanes at a column tail. For
** each term p of the sum it loads nv vectors of row p of B (read in place,
** rows ldb apart) and broadcasts one value of A per row, a[r*sai + p*sap],
** so the same code serves
**     y = x W        (A = x row-major: sai = ldx, sap = 1; B = W)
**     W += a x^T d   (A = x^T: sai = 1, sap = ldx; B = d; C = W)
** Every result is the sum over p, in order, of fma(B, A, acc), starting from
** 0 (or from C, to go on with a sum split into blocks of p); then stored,
** scaled by alpha, or added to C as fma(alpha, sum, C). A stored tile may
** add an addend to its sum first (y = x W + add, lower.c's addend epilogue:
** rows of add ldadd apart, 0 for one row to every row), in the last block
** of p only: sum + add, the bits of the sum stored then added.
**
** The includer defines, before including:
**   TILE_TARGET  the target attribute's string ("avx2,fma", "avx512f")
**   TILE_MR      rows of a tile, TILE_NV (2 or 3) vectors of columns
**                (accumulators: TILE_MR * TILE_NV vectors)
**   VF, VL       the vector type and its lanes; VM: a lane mask
**   V_ZERO(), V_LOAD(p), V_MLOAD(p, m), V_STORE(p, v), V_MSTORE(p, m, v),
**   V_BCAST(p), V_SET1(x), V_MUL(a, b), V_ADD(a, b), V_FMA(a, b, c)  (a * b + c)
**   V_MASK(n)    the first n lanes (0 < n <= VL)
**   TILE_PREFIX  a prefix for the functions' names
**   TILE_TN_WINS(m, n, k)  where the update goes to the kernel
** and, optionally, TILE_TN_BIG (a kiln_sgemm_tn_fn) and TILE_TN_BIG_WINS(m,
** n, k): where own_tn calls that instead of the tile (runtime/gemm.c's
** block kernel for large k); and includes <cblas.h>.
** Rows of B lie ldb floats apart, a page or more for wide layers, where the
** hardware prefetcher stops: the tile asks for row p + TILE_PD while it
** works on row p (runtime/gemm.c measured why). */
#ifndef TILE_TARGET
#error "define the vector operations first (runtime/gemm.c, runtime/gemm_avx2.c)"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TILE_CAT2(a, b) a##b
#define TILE_CAT(a, b) TILE_CAT2(a, b)
#define TILE_FN(name) TILE_CAT(TILE_PREFIX, name)
#define TILE_PD 16

/* What a tile does with its sums (once: an includer may include this file
** again for a second geometry, with another TILE_PREFIX). */
#ifndef KILN_GEMM_TILE_FINS
#define KILN_GEMM_TILE_FINS
enum { TILE_STORE, TILE_SCALE, TILE_UPDATE };
#endif

/* The tile at c (rows ldc apart): mr rows (a constant once inlined), nv
** vectors of columns, the last masked to mk when masked; k terms. first:
** start from 0, else from C. add: NULL, or the addend of a stored tile. */
__attribute__((target(TILE_TARGET), always_inline)) static inline void
TILE_FN(tile)(int mr, int nv, bool masked, VM mk, int k, const float *restrict a, ptrdiff_t sai, ptrdiff_t sap,
              const float *restrict b, ptrdiff_t ldb, float *restrict c, ptrdiff_t ldc, bool first, int fin,
              float alpha, const float *restrict add, ptrdiff_t ldadd)
{
    VF acc[TILE_MR][TILE_NV];
KILN_UNROLL(16)
    for (int r = 0; r < mr; r++)
KILN_UNROLL(3)
        for (int v = 0; v < nv; v++) {
            float *cp = c + r * ldc + v * VL;
            acc[r][v] = first ? V_ZERO() : masked && v == nv - 1 ? V_MLOAD(cp, mk) : V_LOAD(cp);
        }
    /* the addend is read only when the sums are stored, and it is often
    ** cold (a scan step's slice of the input projection, written a whole
    ** pass before): ask for its rows now, a tile's work ahead of the store
    ** (the LSTM benchmark's AVX2 step: median -0.35 ms, q1 -0.6) */
    if (add)
KILN_UNROLL(16)
        for (int r = 0; r < mr; r++) { /* addresses, not pointers: a masked tail's last lane may lie past add */
            const uintptr_t row = (uintptr_t)add + (uintptr_t)(r * ldadd) * sizeof(float);
            _mm_prefetch((const char *)row, _MM_HINT_T0);
            _mm_prefetch((const char *)(row + (uintptr_t)(nv * VL - 1) * sizeof(float)), _MM_HINT_T0);
        }
    for (int p = 0; p < k; p++) {
        const float *bp = b + p * ldb;
        const uintptr_t ahead = (uintptr_t)bp + (uintptr_t)(TILE_PD * ldb) * sizeof(float);
        _mm_prefetch((const char *)ahead, _MM_HINT_T0);
        VF bv[TILE_NV];
KILN_UNROLL(3)
        for (int v = 0; v < nv; v++)
            bv[v] = masked && v == nv - 1 ? V_MLOAD(bp + v * VL, mk) : V_LOAD(bp + v * VL);
        const float *ap = a + p * sap;
KILN_UNROLL(16)
        for (int r = 0; r < mr; r++) {
            const VF ar = V_BCAST(ap + r * sai);
KILN_UNROLL(3)
            for (int v = 0; v < nv; v++)
                acc[r][v] = V_FMA(bv[v], ar, acc[r][v]);
        }
    }
    const VF al = V_SET1(alpha);
KILN_UNROLL(16)
    for (int r = 0; r < mr; r++)
KILN_UNROLL(3)
        for (int v = 0; v < nv; v++) {
            float *cp = c + r * ldc + v * VL;
            const bool mv = masked && v == nv - 1;
            VF s = acc[r][v];
            if (fin == TILE_SCALE)
                s = V_MUL(al, s);
            else if (fin == TILE_STORE && add) {
                const float *ap = add + r * ldadd + v * VL;
                s = V_ADD(s, mv ? V_MLOAD(ap, mk) : V_LOAD(ap));
            }
            else if (fin == TILE_UPDATE)
                s = V_FMA(al, s, mv ? V_MLOAD(cp, mk) : V_LOAD(cp));
            if (mv)
                V_MSTORE(cp, mk, s);
            else
                V_STORE(cp, s);
        }
}

/* A column panel of m rows, tile after tile (rows i of A at a + i * sai,
** of C at c + i * ldc); nv and masked are constants once inlined. A tile
** of fewer than TILE_ACC_MIN sums waits on its FMAs' latency (4 cycles, 2
** pipes: 8 in flight), so where the last tile would be that short, the
** last two share their rows (6 x 16 at 32 rows: 6, 6, 6, 6, 4, 4 instead
** of ..., 6, 2; y = x W at 32 x 1024 x 256 on a Zen 4, AVX2, 107.0 ->
** 111.4 GFLOP/s, 8 rows 93 -> 107). Each sum is the same: the same bits. */
#define TILE_ACC_MIN 8
__attribute__((target(TILE_TARGET), always_inline)) static inline void
TILE_FN(panel)(int m, int nv, bool masked, VM mk, int k, const float *restrict a, ptrdiff_t sai, ptrdiff_t sap,
               const float *restrict b, ptrdiff_t ldb, float *restrict c, ptrdiff_t ldc, bool first, int fin,
               float alpha, const float *restrict add, ptrdiff_t ldadd)
{
    for (int i = 0, rows; i < m; i += rows) {
        const float *ai = a + i * sai, *addi = add ? add + i * ldadd : NULL;
        float *ci = c + i * ldc;
        const int left = m - i;
        rows = left <= TILE_MR ? left : (left - TILE_MR) * nv >= TILE_ACC_MIN ? TILE_MR : (left + 1) / 2;
        if (rows > TILE_MR) /* a narrow panel (nv 1) of a short tile: (left + 1) / 2 may pass TILE_MR */
            rows = TILE_MR;
        switch (rows) {
#define TILE_ROWS(R)                                                                                          \
    case R:                                                                                                   \
        TILE_FN(tile)(R, nv, masked, mk, k, ai, sai, sap, b, ldb, ci, ldc, first, fin, alpha, addi, ldadd);   \
        break;
            TILE_ROWS(1)
            TILE_ROWS(2)
            TILE_ROWS(3)
            TILE_ROWS(4)
#if TILE_MR > 4
            TILE_ROWS(5)
            TILE_ROWS(6)
#endif
#if TILE_MR > 6
            TILE_ROWS(7)
            TILE_ROWS(8)
            TILE_ROWS(9)
            TILE_ROWS(10)
            TILE_ROWS(11)
            TILE_ROWS(12)
#endif
#if TILE_MR > 12 || (TILE_MR != 4 && TILE_MR != 6 && TILE_MR != 12)
#error "TILE_MR: 4, 6 or 12 (add cases)"
#endif
#undef TILE_ROWS
        default:
            break;
        }
    }
}

/* The columns j0 .. j0+w (w <= TILE_NV VL) of every row: a panel of the
** right shape (nv vectors, the last masked or not, constants once inlined). */
__attribute__((target(TILE_TARGET), always_inline)) static inline void
TILE_FN(columns)(int m, int w, int k, const float *restrict a, ptrdiff_t sai, ptrdiff_t sap, const float *restrict b,
                 ptrdiff_t ldb, float *restrict c, ptrdiff_t ldc, bool first, int fin, float alpha,
                 const float *restrict add, ptrdiff_t ldadd)
{
    const int nv = (w + VL - 1) / VL;
    const bool masked = w % VL != 0;
    const VM mk = V_MASK(w - (nv - 1) * VL);
#define TILE_COLS(NV, M)                                                                                      \
    if (nv == NV && masked == M) {                                                                            \
        TILE_FN(panel)(m, NV, M, mk, k, a, sai, sap, b, ldb, c, ldc, first, fin, alpha, add, ldadd);          \
        return;                                                                                               \
    }
#if TILE_NV > 2
    TILE_COLS(3, false)
    TILE_COLS(3, true)
#endif
    TILE_COLS(2, false)
    TILE_COLS(2, true)
    TILE_COLS(1, false)
    TILE_COLS(1, true)
#undef TILE_COLS
}

/* y (m x n, ldy) = x (m x k, ldx) W (k x n, ldw) + add (unless NULL; rows
** ldadd apart, 0: one row); k in blocks of kc, the partial sums kept in y,
** the addend added in the last block. */
__attribute__((target(TILE_TARGET), unused)) static void TILE_FN(nn)(int m, int n, int k, int kc, const float *x,
                                                            ptrdiff_t ldx, const float *w, ptrdiff_t ldw, float *y,
                                                            ptrdiff_t ldy, const float *add, ptrdiff_t ldadd)
{
    for (int p0 = 0; p0 < k; p0 += kc) {
        const int kb = k - p0 < kc ? k - p0 : kc;
        const float *last = p0 + kb == k ? add : NULL;
        for (int j = 0; j < n; j += TILE_NV * VL)
            TILE_FN(columns)(m, n - j < TILE_NV * VL ? n - j : TILE_NV * VL, kb, x + p0, ldx, 1, w + p0 * ldw + j,
                             ldw, y + j, ldy, p0 == 0, TILE_STORE, 1.0f, last ? last + j : NULL, ldadd);
    }
}

/* c (m x n, ldc) = alpha a^T b (beta 0) or c + alpha a^T b (beta 1, as
** fma(alpha, sum, c)), a (k x m, lda), b (k x n, ldb): a weight's gradient
** or its update. A tile's rows of a^T are k short rows of a, in L1. */
__attribute__((target(TILE_TARGET), unused)) static void
TILE_FN(tn)(int m, int n, int k, float alpha, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, bool beta,
            float *c, ptrdiff_t ldc)
{
    const int fin = beta ? TILE_UPDATE : TILE_SCALE;
    for (int i = 0; i < m; i += TILE_MR) {
        const int mr = m - i < TILE_MR ? m - i : TILE_MR;
        for (int j = 0; j < n; j += TILE_NV * VL)
            TILE_FN(columns)(mr, n - j < TILE_NV * VL ? n - j : TILE_NV * VL, k, a + i, 1, lda, b + j, ldb,
                             c + i * ldc + j, ldc, true, fin, alpha, NULL, 0);
    }
}

/* The update as runtime/kernels.h's kiln_sgemm_tn_fn: the kernel alone
** (own_tn: the tile, or where the includer defines TILE_TN_BIG and
** TILE_TN_BIG_WINS(m, n, k) says so, its kernel for large k), and where it
** measured faster (TILE_TN_WINS), else the BLAS (sgemm_tn). */
__attribute__((target(TILE_TARGET), unused)) static void
TILE_FN(tile_tn)(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                 float *c, int ldc)
{
    TILE_FN(tn)(m, n, k, alpha, a, lda, b, ldb, beta != 0, c, ldc);
}

__attribute__((unused)) static void TILE_FN(own_tn)(int m, int n, int k, float alpha, const float *a, int lda,
                                                    const float *b, int ldb, float beta, float *c, int ldc)
{
#ifdef TILE_TN_BIG
    if (TILE_TN_BIG_WINS(m, n, k)) {
        TILE_TN_BIG(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#endif
    TILE_FN(tile_tn)(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

__attribute__((unused)) static void TILE_FN(sgemm_tn)(int m, int n, int k, float alpha, const float *a, int lda,
                                                      const float *b, int ldb, float beta, float *c, int ldc)
{
    if ((beta == 0 || beta == 1) && TILE_TN_WINS(m, n, k))
        TILE_FN(own_tn)(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#undef TILE_FN
#undef TILE_CAT
#undef TILE_CAT2
#undef TILE_PD
