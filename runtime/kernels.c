/* kernels.c: vector kernels the generated code calls through k_runtime.
**
** Built with -O3 -ffp-contract=off (meson.build): -O3 so that GCC
** vectorises the loops at all, no contraction so that the AVX-512, AVX2 and
** plain variants give the same bits (each multiply and add is rounded on its
** own, as in the generated code). The variants are one body compiled under
** three target attributes; the right one is chosen once per program with
** __builtin_cpu_supports, so the library itself runs on any x86-64 (and the
** plain body on any architecture). */
#include "runtime/kernels.h"

#include <cblas.h>
#include <stddef.h>
#include <string.h>

/* One body for every variant: row by row, update the row, then accumulate
** it into y while it is in L1. W is read and written once. */
#define SGER_GEMV_BODY                                                                        \
    {                                                                                         \
        if (x)                                                                                \
            for (int j = 0; j < n; j++)                                                       \
                y[j] = 0;                                                                     \
        for (int i = 0; i < m; i++) {                                                         \
            float *restrict wi = w + (ptrdiff_t)i * ldw;                                      \
            const float ui = u[i];                                                            \
            if (x) {                                                                          \
                const float xi = x[i];                                                        \
                for (int j = 0; j < n; j++) {                                                 \
                    float t = wi[j] + ui * v[j];                                              \
                    wi[j] = t;                                                                \
                    y[j] += xi * t;                                                           \
                }                                                                             \
            } else {                                                                          \
                for (int j = 0; j < n; j++)                                                   \
                    wi[j] += ui * v[j];                                                       \
            }                                                                                 \
        }                                                                                     \
    }

/* kiln_transpose_fn in 16 x 16 tiles, so that each tile's rows of out are
** written while their lines are in L1. */
static void transpose_plain(int rows, int cols, const float *restrict in, int ldi, float *restrict out, int ldo)
{
    for (int i0 = 0; i0 < rows; i0 += 16)
        for (int j0 = 0; j0 < cols; j0 += 16) {
            const int ni = rows - i0 < 16 ? rows - i0 : 16, nj = cols - j0 < 16 ? cols - j0 : 16;
            for (int j = j0; j < j0 + nj; j++)
                for (int i = i0; i < i0 + ni; i++)
                    out[(ptrdiff_t)j * ldo + i] = in[(ptrdiff_t)i * ldi + j];
        }
}

static void sger_gemv_plain(int m, int n, float *restrict w, int ldw, const float *restrict u,
                            const float *restrict v, const float *restrict x, float *restrict y)
SGER_GEMV_BODY

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KILN_X86_VARIANTS 1
__attribute__((target("avx2")))
static void sger_gemv_avx2(int m, int n, float *restrict w, int ldw, const float *restrict u,
                           const float *restrict v, const float *restrict x, float *restrict y)
SGER_GEMV_BODY

__attribute__((target("avx512f")))
static void sger_gemv_avx512(int m, int n, float *restrict w, int ldw, const float *restrict u,
                             const float *restrict v, const float *restrict x, float *restrict y)
SGER_GEMV_BODY
#endif

int kiln_kernel_sger_gemv_variants(kiln_sger_gemv_fn *fns, const char **names, int cap)
{
    int k = 0;
#ifdef KILN_X86_VARIANTS
    if (k < cap && __builtin_cpu_supports("avx512f")) {
        fns[k] = sger_gemv_avx512;
        names[k++] = "avx512";
    }
    if (k < cap && __builtin_cpu_supports("avx2")) {
        fns[k] = sger_gemv_avx2;
        names[k++] = "avx2";
    }
#endif
    if (k < cap) {
        fns[k] = sger_gemv_plain;
        names[k++] = "plain";
    }
    return k;
}

kiln_sger_gemv_fn kiln_kernel_sger_gemv(void)
{
    kiln_sger_gemv_fn f;
    const char *name;
    return kiln_kernel_sger_gemv_variants(&f, &name, 1) == 1 ? f : sger_gemv_plain;
}

static bool never(int m, int n, int k)
{
    (void)m, (void)n, (void)k;
    return false;
}

bool kiln_kernel_set_of(const char *isa, kiln_kernel_set *s)
{
    kiln_sger_gemv_fn fns[3];
    const char *names[3];
    int nv = kiln_kernel_sger_gemv_variants(fns, names, 3);
    *s = (kiln_kernel_set){
        .isa = "blas", .sger_gemv = sger_gemv_plain, .nn_wins = never, .tn_wins = never, .transpose = transpose_plain};
    bool best = !isa || !*isa;
    kiln_kernel_set t = *s;
    if ((best || strcmp(isa, "avx512") == 0) && kiln_kernel_avx512_set(&t))
        t.isa = "avx512";
    else if ((best || strcmp(isa, "avx2") == 0) && kiln_kernel_avx2_set(&t))
        t.isa = "avx2";
    else
        return best || strcmp(isa, "blas") == 0;
    for (int i = 0; i < nv; i++) /* the update's variant of the same ISA */
        if (strcmp(names[i], t.isa) == 0)
            t.sger_gemv = fns[i];
    *s = t;
    return true;
}

void kiln_kernel_sgemm_nn_blas(int m, int n, int k, const float *x, int ldx, const float *w, int ldw, float *y,
                               int ldy, const float *add, int ldadd)
{
    for (int i = 0; add && i < m; i++)
        memcpy(y + (ptrdiff_t)i * ldy, add + (ptrdiff_t)i * ldadd, sizeof *y * (size_t)n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, x, ldx, w, ldw, add ? 1 : 0, y, ldy);
}
