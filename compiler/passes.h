/* passes.h (internal): graph-to-graph passes of the compiler.
**
** Rewrites run inside the node builder (kiln_graph_add on a program graph):
** constant folding, algebraic identities (x*1, x+0, --x), the stable
** softmax + cross-entropy form, and transposes folded into matrix products.
** kiln_rebuild copies the part of a graph that roots depend on into a new
** program graph (dead-code elimination), running those rewrites again on
** nodes made by autodiff. Fusion and memory planning work on the final graph
** and are in fusion.c-like sections of passes.c and in memplan.c. */
#ifndef KILN_COMPILER_PASSES_H
#define KILN_COMPILER_PASSES_H

#include "compiler/graph.h"

#define KILN_REWRITE_NONE (-2)

/* Called by kiln_graph_add on program graphs: the id of an equivalent
** simpler node, -1 on error (recorded on g), or KILN_REWRITE_NONE. */
int32_t kiln_rewrite_node(kiln_graph *g, const kiln_node_rec *rec);

/* Copy what roots[] need from src into a new program graph; map (src->n_nodes
** entries, caller-allocated) receives new ids (-1 for dropped nodes). NULL on
** OOM; errors in *err. */
kiln_graph *kiln_rebuild(const kiln_graph *src, const int32_t *roots, int n_roots, int32_t *map,
                         kiln_err *err);

/* Fusion: inline[i] = true when node i is computed inside the loop of its
** single consumer instead of being stored. pinned[i] marks values that must
** be stored (outputs, monitors, gradients). */
void kiln_fuse_elementwise(const kiln_graph *g, const bool *pinned, bool *inline_);

#endif
