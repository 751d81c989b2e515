/* init.c: fill parameter arrays from initialization schemes.
**
** Each scheme draws exactly what the Blocks class draws from numpy, one value
** per element in C order, so a kiln brick seeded like a Blocks brick gets the
** same initial weights:
**   Constant(c)                 c                     (no draws)
**   IsotropicGaussian(std, mean) rng.normal(mean, std) = mean + std * gauss
**   Uniform(mean, width)        rng.uniform(mean - width/2, mean + width/2)
**                               = low + (high - low) * random_sample
** The uniform bounds are formed first and their difference taken, as numpy
** does, rather than using width directly: the two differ in the last bit.
** Values are produced in double; the caller narrows to the parameter dtype
** (Blocks casts to floatX the same way).
** Everything is validated before the first draw, so a failure leaves both
** dst and the rng as they were. */
#include "compiler/init.h"

#include <math.h>

const char *kiln_init_kind_name(enum kiln_init_kind kind)
{
    switch (kind) {
    case KILN_INIT_NONE: return "None";
    case KILN_INIT_CONSTANT: return "Constant";
    case KILN_INIT_GAUSSIAN: return "IsotropicGaussian";
    case KILN_INIT_UNIFORM: return "Uniform";
    }
    return "unknown";
}

/* Check init's parameters; KILN_OK or KILN_ERR_CONFIG with a message. */
static enum kiln_status init_check(const kiln_init *init, kiln_err *err)
{
    const char *name = kiln_init_kind_name(init->kind);
    switch (init->kind) {
    case KILN_INIT_NONE:
        return kiln_err_set(err, KILN_ERR_CONFIG,
                            "no initialization scheme set (None): set weights_init/biases_init");
    case KILN_INIT_CONSTANT:
        if (!isfinite(init->a))
            return kiln_err_set(err, KILN_ERR_CONFIG, "%s: constant is %g, must be finite", name,
                                init->a);
        return KILN_OK;
    case KILN_INIT_GAUSSIAN:
        if (!isfinite(init->a) || init->a < 0)
            return kiln_err_set(err, KILN_ERR_CONFIG,
                                "%s: std is %g, must be finite and >= 0", name, init->a);
        if (!isfinite(init->b))
            return kiln_err_set(err, KILN_ERR_CONFIG, "%s: mean is %g, must be finite", name,
                                init->b);
        return KILN_OK;
    case KILN_INIT_UNIFORM:
        if (!isfinite(init->a))
            return kiln_err_set(err, KILN_ERR_CONFIG, "%s: mean is %g, must be finite", name,
                                init->a);
        if (!isfinite(init->b) || init->b < 0)
            return kiln_err_set(err, KILN_ERR_CONFIG,
                                "%s: width is %g, must be finite and >= 0", name, init->b);
        return KILN_OK;
    }
    return kiln_err_set(err, KILN_ERR_CONFIG, "unknown initialization scheme (kind %d)",
                        (int)init->kind);
}

enum kiln_status kiln_init_fill(const kiln_init *init, kiln_rng *rng, double *dst, int64_t n,
                                kiln_err *err)
{
    KILN_API_CHECK(err);
    if (!err)
        return KILN_ERR_ARG;
    if (!init)
        return kiln_err_set(err, KILN_ERR_ARG, "initialization scheme is NULL");
    if (n < 0)
        return kiln_err_set(err, KILN_ERR_ARG, "%s: negative element count %lld",
                            kiln_init_kind_name(init->kind), (long long)n);
    if (n > 0 && !dst)
        return kiln_err_set(err, KILN_ERR_ARG, "%s: destination is NULL for %lld elements",
                            kiln_init_kind_name(init->kind), (long long)n);
    enum kiln_status st = init_check(init, err);
    if (st != KILN_OK)
        return st;
    if (init->kind != KILN_INIT_CONSTANT && !rng)
        return kiln_err_set(err, KILN_ERR_ARG, "%s: random scheme needs an rng, got NULL",
                            kiln_init_kind_name(init->kind));

    switch (init->kind) {
    case KILN_INIT_CONSTANT:
        for (int64_t i = 0; i < n; i++)
            dst[i] = init->a;
        break;
    case KILN_INIT_GAUSSIAN: {
        double std = init->a, mean = init->b;
        for (int64_t i = 0; i < n; i++)
            dst[i] = mean + std * kiln_rng_gauss(rng);
        break;
    }
    case KILN_INIT_UNIFORM: {
        double half = init->b / 2;
        double low = init->a - half, high = init->a + half, range = high - low;
        for (int64_t i = 0; i < n; i++)
            dst[i] = low + range * kiln_rng_uniform(rng);
        break;
    }
    case KILN_INIT_NONE:
        break; /* rejected by init_check */
    }
    kiln_err_clear(err);
    return KILN_OK;
}
