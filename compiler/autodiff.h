/* autodiff.h (internal): reverse-mode symbolic differentiation. */
#ifndef KILN_COMPILER_AUTODIFF_H
#define KILN_COMPILER_AUTODIFF_H

#include "compiler/graph.h"

/* Append to program graph g the gradient of scalar node cost with respect to
** each of wrt[0..n): grads[i] gets the node id (a node of zeros, broadcast,
** when cost does not depend on wrt[i]). Errors on g. */
enum kiln_status kiln_autodiff(kiln_graph *g, int32_t cost, const int32_t *wrt, int n, int32_t *grads);

/* The vector-Jacobian product: with outs[i]'s adjoint seeds[i] (same shape;
** an out may repeat, its seeds add), grads[j] gets the adjoint of wrt[j]
** (zeros when no out depends on it). kiln_autodiff is the case of one
** scalar out seeded with 1. Errors on g. */
enum kiln_status kiln_vjp(kiln_graph *g, const int32_t *outs, const int32_t *seeds, int n_outs, const int32_t *wrt,
                          int n_wrt, int32_t *grads);

#endif
