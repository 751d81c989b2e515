/* program_internal.h (internal, for tests): what a compiled program was
** built from, so that a test can run the same program graph through the
** reference interpreter (compiler/interp.c) and compare. Everything is
** borrowed from p and valid while p lives; the public API is unchanged. */
#ifndef KILN_RUNTIME_PROGRAM_INTERNAL_H
#define KILN_RUNTIME_PROGRAM_INTERNAL_H

#include "compiler/memplan.h"
#include "compiler/util.h"
#include "kiln/compile.h"

/* The most flags the JIT adds for a unit's ISA and rounding (program.c,
** codegen_flags). */
#define KILN_CODEGEN_FLAGS_MAX 4

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

/* For the main loop's non-finite check (#11). The user node of p's cost
** (KILN_NODE_NONE when none), which kiln_program_read_scalar reads. */
kiln_node kiln_program_cost_node(const kiln_program *p);
/* The first parameter value, in plan order, that is NaN or infinite after
** the last step (deferred updates applied first): true with its path
** ("/linear.W") in name, the element's index and value; false when every
** one is finite. */
bool kiln_program_find_nonfinite_param(kiln_program *p, char *name, size_t cap, int64_t *element,
                                       double *value);


/* ---- For checkpoints (runtime/checkpoint.c) ------------------------------
** A slot is a parameter (state false) or a state (state true) of p, in plan
** order, as p's arena holds it: its store entry's owner (brick path, "" when
** none) and name, dtype, constant shape and bytes. */
typedef struct kiln_program_slot {
    const char *owner, *name; /* borrowed from p's store entries */
    enum kiln_dtype dtype;
    int rank;
    int64_t dims[KILN_MAX_RANK];
    int64_t count;            /* elements */
    void *data;               /* in p's arena: count elements of dtype */
} kiln_program_slot;

int kiln_program_slot_count(const kiln_program *p, bool state);
/* Slot i; false when p is not compiled or i is out of range. Reading a
** parameter slot first applies the updates a batch-1 step deferred, so its
** bytes are the parameter's value. */
bool kiln_program_get_slot(kiln_program *p, bool state, int i, kiln_program_slot *out);
/* Whether v (count elements of the slot's dtype) may be written to slot i:
** a hyperparameter's value is checked as kiln_program_set_state checks it.
** KILN_OK or KILN_ERR_ARG with the message in *err. */
enum kiln_status kiln_program_slot_check(kiln_program *p, bool state, int i, const void *v,
                                         kiln_err *err);
/* Slot i's bytes were overwritten: a parameter with a NaN is noted as not
** initialised, as kiln_program_set_param notes it. */
void kiln_program_slot_written(kiln_program *p, bool state, int i);
/* ---- For AOT programs (runtime/aot.c) ------------------------------------ */
typedef struct kiln_program_build_facts {
    const char *model;      /* prefix of the generated entry points (<model>_train_step) */
    const char *source;     /* the generated unit the JIT compiled */
    int64_t arena_bytes;    /* the arena it runs in */
    int gemm_n, gemm_k;     /* the widest product given to rt.sgemm_nn */
    bool fast_paths;        /* rt.sgemm_nn and sgemm_tn are kiln's kernels (else NULL) */
    int threads;            /* BLAS threads for large batches, 0: as the BLAS has them */
    int64_t small_batch;    /* below it, BLAS on one thread */
    const char *cflags[KILN_CODEGEN_FLAGS_MAX]; /* the JIT's flags for the unit (-ffp-contract=off,
                                                ** -mavx2 -mfma, -mavx512f) */
    int n_cflags;
    kiln_param *const *params; /* plan param i's store entry */
} kiln_program_build_facts;
/* false unless compiled and loaded. Borrowed from p. */
bool kiln_program_get_build_facts(const kiln_program *p, kiln_program_build_facts *out);

/* Put e's status and message on p (kiln_program_errmsg); returns the status. */
enum kiln_status kiln_program_fail_copy(kiln_program *p, const kiln_err *e);
#endif
