/* program_internal.h (internal, for tests): what a compiled program was
** built from, so that a test can run the same program graph through the
** reference interpreter (compiler/interp.c) and compare. Everything is
** borrowed from p and valid while p lives; the public API is unchanged. */
#ifndef KILN_RUNTIME_PROGRAM_INTERNAL_H
#define KILN_RUNTIME_PROGRAM_INTERNAL_H

#include "compiler/memplan.h"
#include "kiln/compile.h"

/* The roots of a program, in program-graph ids. */
typedef struct kiln_program_roots {
    int32_t cost;                     /* -1 when none */
    const int32_t *monitors;
    int n_monitors;
    const int32_t *outputs;
    int n_outputs;
    const int32_t *params, *grads;    /* plan order (the slabs'); a grad is -1 without a cost */
    int n_params;
    const kiln_plan_update *updates;  /* step rule's (train_only) and the graph's own */
    int n_updates;
} kiln_program_roots;

/* The program graph; NULL before it was built. */
const kiln_graph *kiln_program_graph(const kiln_program *p);
/* map[user node id] = program node id, or -1 (dropped); *n_user entries. */
const int32_t *kiln_program_node_map(const kiln_program *p, int32_t *n_user);
/* The memory plan (state order, modes); NULL unless planned. */
const kiln_plan *kiln_program_plan(const kiln_program *p);
/* The roots; false unless planned. */
bool kiln_program_get_roots(const kiln_program *p, kiln_program_roots *out);

/* For the main loop's non-finite check (#11). The user node of p's cost
** (KILN_NODE_NONE when none), which kiln_program_read_scalar reads. */
kiln_node kiln_program_cost_node(const kiln_program *p);
/* The first parameter value, in plan order, that is NaN or infinite after
** the last step (deferred updates applied first): true with its path
** ("/linear.W") in name, the element's index and value; false when every
** one is finite. */
bool kiln_program_find_nonfinite_param(kiln_program *p, char *name, size_t cap, int64_t *element,
                                       double *value);

#endif
