/* init.h: parameter initialization schemes (blocks.initialization).
**
** The schemes are the kiln_init values of include/kiln/bricks.h; this fills an
** array from one, drawing from a caller-owned kiln_rng exactly as Blocks draws
** from numpy's RandomState (see init.c). */
#ifndef KILN_INIT_H
#define KILN_INIT_H

#include "compiler/rng.h"
#include "compiler/util.h"
#include "kiln/bricks.h"

/* Fill dst[0..n) from init, in order, drawing from rng (borrowed; advanced;
** may be NULL for KILN_INIT_CONSTANT). Does not allocate. On failure dst is
** untouched, rng not advanced, and err holds a one-line message naming the
** scheme (the caller prefixes the brick path).
**   KILN_ERR_CONFIG: KILN_INIT_NONE or an unknown kind, a negative or
**                    non-finite std or width, a non-finite mean or constant;
**   KILN_ERR_ARG:    init or err NULL, n < 0, dst NULL with n > 0, rng NULL
**                    for a random scheme. */
enum kiln_status kiln_init_fill(const kiln_init *init, kiln_rng *rng, double *dst, int64_t n,
                                kiln_err *err);

/* "Constant", "IsotropicGaussian", "Uniform", "None" (Blocks' class names). */
const char *kiln_init_kind_name(enum kiln_init_kind kind);

#endif
