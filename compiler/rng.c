/* rng.c: MT19937 with numpy's legacy RandomState on top.
**
** The generator is Matsumoto and Nishimura's mt19937ar (init_genrand,
** init_by_array, genrand_int32); the derived draws follow numpy's
** legacy distributions (numpy/random/src/legacy and mt19937) exactly, down to
** the order of the two words in a double and the cached Box-Muller value, so
** that weights and shuffles match Blocks and Fuel seed for seed.
** Rejected: a faster generator (PCG, xoshiro). Bit-compatibility with the
** reference framework is worth more than speed here; initialisation and
** shuffling are far off the training hot path.
** Invariant: 0 <= pos <= KILN_RNG_N; pos == KILN_RNG_N means the next draw
** regenerates the whole state block first. */
#include "compiler/rng.h"

#include <math.h>

#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu
/* Seed of init_genrand that init_by_array starts from (mt19937ar.c). */
#define MT_ARRAY_BASE_SEED 19650218u

void kiln_rng_seed(kiln_rng *r, uint32_t seed)
{
    r->mt[0] = seed;
    for (int i = 1; i < KILN_RNG_N; i++) {
        uint32_t p = r->mt[i - 1];
        r->mt[i] = 1812433253u * (p ^ (p >> 30)) + (uint32_t)i;
    }
    r->pos = KILN_RNG_N;
    r->has_gauss = 0;
    r->gauss = 0.0;
}

void kiln_rng_seed_array(kiln_rng *r, const uint32_t *key, int n)
{
    kiln_rng_seed(r, MT_ARRAY_BASE_SEED);
    uint32_t *mt = r->mt;
    int i = 1, j = 0;
    for (int k = KILN_RNG_N > n ? KILN_RNG_N : n; k > 0; k--) {
        uint32_t p = mt[i - 1];
        mt[i] = (mt[i] ^ ((p ^ (p >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= KILN_RNG_N) {
            mt[0] = mt[KILN_RNG_N - 1];
            i = 1;
        }
        if (j >= n)
            j = 0;
    }
    for (int k = KILN_RNG_N - 1; k > 0; k--) {
        uint32_t p = mt[i - 1];
        mt[i] = (mt[i] ^ ((p ^ (p >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= KILN_RNG_N) {
            mt[0] = mt[KILN_RNG_N - 1];
            i = 1;
        }
    }
    mt[0] = 0x80000000u; /* non-zero initial state is assured */
}

void kiln_rng_seed_u64(kiln_rng *r, uint64_t seed)
{
    if (seed <= UINT32_MAX) {
        kiln_rng_seed(r, (uint32_t)seed);
        return;
    }
    const uint32_t key[2] = {(uint32_t)(seed & UINT32_MAX), (uint32_t)(seed >> 32)};
    kiln_rng_seed_array(r, key, 2);
}

static uint32_t mt_twist(uint32_t a, uint32_t b, uint32_t far)
{
    uint32_t y = (a & MT_UPPER) | (b & MT_LOWER);
    return far ^ (y >> 1) ^ ((0u - (y & 1u)) & MT_MATRIX_A);
}

/* Regenerate all KILN_RNG_N words (genrand_int32's block step). */
static void mt_generate(kiln_rng *r)
{
    uint32_t *mt = r->mt;
    int i = 0;
    for (; i < KILN_RNG_N - MT_M; i++)
        mt[i] = mt_twist(mt[i], mt[i + 1], mt[i + MT_M]);
    for (; i < KILN_RNG_N - 1; i++)
        mt[i] = mt_twist(mt[i], mt[i + 1], mt[i + MT_M - KILN_RNG_N]);
    mt[KILN_RNG_N - 1] = mt_twist(mt[KILN_RNG_N - 1], mt[0], mt[MT_M - 1]);
    r->pos = 0;
}

uint32_t kiln_rng_u32(kiln_rng *r)
{
    if (r->pos >= KILN_RNG_N)
        mt_generate(r);
    uint32_t y = r->mt[r->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t kiln_rng_u64(kiln_rng *r)
{
    uint64_t hi = kiln_rng_u32(r);
    return hi << 32 | kiln_rng_u32(r);
}

double kiln_rng_uniform(kiln_rng *r)
{
    /* 27 + 26 bits, first word high: numpy mt19937_next_double. */
    uint32_t a = kiln_rng_u32(r) >> 5;
    uint32_t b = kiln_rng_u32(r) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

double kiln_rng_gauss(kiln_rng *r)
{
    if (r->has_gauss) {
        double g = r->gauss;
        r->has_gauss = 0;
        r->gauss = 0.0;
        return g;
    }
    double x1, x2, r2;
    do {
        x1 = 2.0 * kiln_rng_uniform(r) - 1.0;
        x2 = 2.0 * kiln_rng_uniform(r) - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    double f = sqrt(-2.0 * log(r2) / r2);
    /* numpy returns f*x2 now and keeps f*x1 for the next call. */
    r->gauss = f * x1;
    r->has_gauss = 1;
    return f * x2;
}

uint64_t kiln_rng_below(kiln_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    uint64_t max = n - 1, mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    uint64_t v;
    /* numpy draws one word when the range fits in 32 bits, else two. */
    if (max <= UINT32_MAX) {
        do
            v = kiln_rng_u32(r) & mask;
        while (v > max);
    } else {
        do
            v = kiln_rng_u64(r) & mask;
        while (v > max);
    }
    return v;
}

/* ---- counter-based draws for random nodes --------------------------------- */

void kiln_philox(const int32_t state[4], uint64_t i, int64_t stream, uint32_t w[4])
{
    uint32_t c0 = (uint32_t)i, c1 = (uint32_t)(i >> 32) ^ ((uint32_t)stream << 16);
    uint32_t c2 = (uint32_t)state[2], c3 = (uint32_t)state[3];
    uint32_t k0 = (uint32_t)state[0], k1 = (uint32_t)state[1];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    w[0] = c0;
    w[1] = c1;
    w[2] = c2;
    w[3] = c3;
}

double kiln_philox_unit(const uint32_t w[4], int k, bool f64)
{
    if (!f64)
        return (double)(w[k] >> 8) * 0x1p-24;
    return (double)((((uint64_t)w[2 * k + 1] << 32) | w[2 * k]) >> 11) * 0x1p-53;
}
