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
/* The arena with every deferred update applied (the parameters as of the
** last step), for reading; NULL before it exists. */
const char *kiln_program_arena(kiln_program *p);
/* Where p's message goes (for runtime/export.c); NULL for NULL. */
kiln_err *kiln_program_err(kiln_program *p);

#endif
