/* autodiff.h (internal): reverse-mode symbolic differentiation. */
#ifndef KILN_COMPILER_AUTODIFF_H
#define KILN_COMPILER_AUTODIFF_H

#include "compiler/graph.h"

/* Append to program graph g the gradient of scalar node cost with respect to
** each of wrt[0..n): grads[i] gets the node id (a node of zeros, broadcast,
** when cost does not depend on wrt[i]). Errors on g. */
enum kiln_status kiln_autodiff(kiln_graph *g, int32_t cost, const int32_t *wrt, int n, int32_t *grads);

#endif
