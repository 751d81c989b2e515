/* interp.h (internal): the reference interpreter of program graphs (interp.c).
**
** A slow, plain float64 executor of the graph kiln_compile builds, written
** independently of codegen, so that tests can check every entry point of
** a compiled program against it (tests/test_backends.c). */
#ifndef KILN_COMPILER_INTERP_H
#define KILN_COMPILER_INTERP_H

#include "compiler/memplan.h"

typedef struct kiln_interp kiln_interp;

/* What to run: a program graph and its roots, in program-graph ids. The
** lists are copied; g is borrowed and must outlive the interpreter.
**   forward    computes outputs;
**   eval       the cost and monitors;
**   gradients  those and grads[0..n_grads) (a gradient node per parameter);
**   train      those and the updates marked train_only (the step rule's).
** An update not train_only (a graph's own: a random state's advance) runs
** in every mode that computes a reader of its target. */
typedef struct kiln_interp_program {
    const kiln_graph *g;
    int32_t cost;                      /* -1: none */
    const int32_t *monitors;
    int n_monitors;
    const int32_t *outputs;
    int n_outputs;
    const int32_t *grads;              /* entries may be -1 */
    int n_grads;
    const kiln_plan_update *updates;
    int n_updates;
} kiln_interp_program;

/* A new interpreter of prog whose PARAM and STATE leaves start from their
** store entries' values (kiln_param_data). *out is caller-owned
** (kiln_interp_destroy) and set even on failure, except out of memory
** (NULL). KILN_OK, KILN_ERR_ARG (a bad root or update), KILN_ERR_STATE (a
** leaf without values), KILN_ERR_NOMEM. */
enum kiln_status kiln_interp_create(const kiln_interp_program *prog, kiln_interp **out);
void kiln_interp_destroy(kiln_interp *it);
/* The last failure on it ("ok" when none). */
const char *kiln_interp_errmsg(const kiln_interp *it);

/* Point INPUT node `node` at data (borrowed until the next run), row-major
** in the node's dtype. KILN_ERR_ARG when node is not an input. */
enum kiln_status kiln_interp_bind_input(kiln_interp *it, int32_t node, const void *data);

/* Run one entry point (KILN_MODE_FORWARD, _EVAL, _GRADIENTS or _TRAIN)
** with sizes[k] the run-time size of symbol k (B first), then apply its
** updates, every value computed from the old ones before any is assigned.
** KILN_ERR_ARG names the node on a bad index or an unbound input,
** KILN_ERR_UNSUPPORTED an op without a case; then no update is applied. */
enum kiln_status kiln_interp_run(kiln_interp *it, enum kiln_mode mode, const int64_t *sizes);

/* Elements of node's value as of the last run (a PARAM or STATE leaf: its
** current value), or -1 when it has none. */
int64_t kiln_interp_count(const kiln_interp *it, int32_t node);
/* Copy node's value (as doubles) into dst; count must be its element
** count. A node the last run did not compute is KILN_ERR_STATE. */
enum kiln_status kiln_interp_read(kiln_interp *it, int32_t node, double *dst, int64_t count);
/* Set a PARAM or STATE leaf's value (count elements). */
enum kiln_status kiln_interp_set_leaf(kiln_interp *it, int32_t node, const double *src, int64_t count);

#endif
