/* rng.h: the Mersenne Twister of numpy's legacy RandomState, as a value type.
**
** Blocks and Fuel draw initial weights and shuffles from
** numpy.random.RandomState; kiln reproduces that stream bit for bit so that a
** model seeded like a Blocks model starts from the same numbers. A kiln_rng is
** plain data (no heap, no pointers): copy it to save or restore a state, write
** its bytes to a checkpoint. Each owner (brick, stream) holds its own, so two
** models in one process never share a stream. */
#ifndef KILN_RNG_H
#define KILN_RNG_H

#include <stdbool.h>
#include <stdint.h>

/* MT19937 state words. */
#define KILN_RNG_N 624

typedef struct kiln_rng {
    uint32_t mt[KILN_RNG_N];
    int pos;          /* next word of mt to temper; KILN_RNG_N: regenerate */
    int has_gauss;    /* legacy_gauss keeps the second value of each pair */
    double gauss;
} kiln_rng;

/* numpy.random.RandomState(seed): MT19937 init_genrand, no cached gauss. */
void kiln_rng_seed(kiln_rng *r, uint32_t seed);
/* RandomState(key[0..n)): MT19937 init_by_array; n >= 1. */
void kiln_rng_seed_array(kiln_rng *r, const uint32_t *key, int n);
/* A 64-bit seed: seeds below 2^32 as kiln_rng_seed (RandomState(seed));
** larger ones as RandomState([low 32 bits, high 32 bits]). */
void kiln_rng_seed_u64(kiln_rng *r, uint64_t seed);

/* Next 32 tempered bits (numpy randint(0, 2**32, dtype=uint64) draws these). */
uint32_t kiln_rng_u32(kiln_rng *r);
/* Two words, the first in the high half (numpy next_uint64). */
uint64_t kiln_rng_u64(kiln_rng *r);
/* Uniform on [0, 1) with 53 random bits: numpy random_sample. */
double kiln_rng_uniform(kiln_rng *r);
/* Standard normal: numpy legacy_gauss (polar Box-Muller; every other call
** returns the value cached by the previous one), what randn/normal draw. */
double kiln_rng_gauss(kiln_rng *r);
/* Unbiased integer in [0, n) by masked rejection: numpy random_interval(n-1),
** so a Fisher-Yates shuffle drawing j = kiln_rng_below(r, i + 1) for i from
** n-1 down to 1 is RandomState.shuffle. n == 0 returns 0. */
uint64_t kiln_rng_below(kiln_rng *r, uint64_t n);

/* Random nodes (codegen/emit_c.c prints the same function into generated
** code, and the reference interpreter calls this one): Philox4x32-10 of the
** counter (element i, stream, step) under the key of a random state, whose
** four int32 words are key low, key high, step low, step high. */
void kiln_philox(const int32_t state[4], uint64_t i, int64_t stream, uint32_t w[4]);
/* A uniform on [0, 1) from the words: 24 bits of word k for float32, 53
** bits of words 2k and 2k+1 for float64 (what generated code computes). */
double kiln_philox_unit(const uint32_t w[4], int k, bool f64);

#endif
