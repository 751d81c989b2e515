/* memplan.h (internal): where every value of a program graph lives.
**
** The arena of a program:
**   params | grads | states | values
** params and grads are slabs in the same order (a gradient sits at its
** parameter's offset); states hold first one slab per optimiser state in
** parameter order (Adam's m, then v: each at its parameter's offset within
** its slab), then every other state (learning rate, step counter, random
** state); values are zoned by the monomial of their size: zone 0 holds values
** of constant size, zone "B" those of c·B elements, zone "T*B" those of
** c·T·B, ... Within a zone an offset is in bytes per unit of the monomial
** (per example in zone B), multiplied at run time by the monomial's value;
** each zone is sized for the maxima given at compile time, so one plan
** serves every size up to them.
** Inline nodes have no storage (computed inside their consumer's loop);
** RESHAPE nodes alias their input; INPUT nodes point at bound data, and a
** scan body's ARG nodes (zone INPUT, index: the argument) at what the scan
** hands the step; an update computed in place aliases its target. A scan's
** inputs are always stored. */
#ifndef KILN_COMPILER_MEMPLAN_H
#define KILN_COMPILER_MEMPLAN_H

#include "compiler/graph.h"

enum kiln_zone { KILN_ZONE_NONE, KILN_ZONE_INPUT, KILN_ZONE_PARAM, KILN_ZONE_GRAD, KILN_ZONE_STATE,
                 KILN_ZONE_VALUE };

typedef struct kiln_buffer {
    enum kiln_zone zone;
    int z;          /* ZONE_VALUE: the zone's index */
    int64_t offset; /* bytes from the slab's start; per unit of the zone's monomial in ZONE_VALUE */
    int index;      /* input index (INPUT), param index (PARAM/GRAD), state index (STATE) */
} kiln_buffer;

/* A zone of values whose sizes are multiples of one monomial. */
typedef struct kiln_value_zone {
    kiln_mono unit;  /* c = 1 */
    int64_t bytes;   /* per unit of the monomial */
    int64_t base;    /* arena offset */
    int64_t units;   /* the monomial at the maxima */
} kiln_value_zone;

/* Entry points: a node runs in each mode that must compute it. */
enum kiln_mode { KILN_MODE_FORWARD = 1, KILN_MODE_EVAL = 2, KILN_MODE_GRADIENTS = 4, KILN_MODE_TRAIN = 8 };

/* An update and when it runs: the step rule's in train_step only, a graph's
** own (a random state's advance) in every mode that reads its target. */
typedef struct kiln_plan_update {
    int32_t target, value;
    bool train_only;
} kiln_plan_update;

typedef struct kiln_plan_request {
    int32_t cost;                 /* -1: no cost */
    const int32_t *monitors;
    int n_monitors;
    /* values read after some entry points only (the step rule's total
    ** norms): value i runs in the modes train_modes[i] and, as a monitor,
    ** stays readable */
    const int32_t *train_values;
    const unsigned char *train_modes;
    int n_train_values;
    const int32_t *outputs;
    int n_outputs;
    const int32_t *params;        /* PARAM nodes, in slab order */
    const int32_t *grads;         /* their gradients, or NULL */
    int n_params;
    const kiln_plan_update *updates;
    int n_updates;
    const int64_t *max_sizes;     /* per symbol; 0 for symbols no value uses */
    int64_t guard;                /* bytes of guard after each stored value (tests), 0 */
} kiln_plan_request;

typedef struct kiln_plan {
    const kiln_graph *g;
    int32_t n;               /* nodes */
    bool *inline_;           /* computed in the consumer's loop */
    int32_t *alias;          /* node whose storage this node shares (itself if none) */
    bool *kept;              /* per storage root: never freed, read after the step (the cost, monitors,
                             ** outputs, train values, values copied at the end) */
    kiln_buffer *buf;        /* of alias[i] */
    unsigned char *modes;    /* enum kiln_mode bits */
    /* params, in slab order */
    int n_params;
    int32_t *param_node;     /* node of param i */
    int32_t *grad_node;      /* node of its gradient, or -1 */
    bool *grad_copy;         /* gradient stored elsewhere: copy into the slab */
    int64_t *param_offset;   /* bytes in the param (and grad) slab */
    /* states, in arena order */
    int n_states;
    int32_t *state_node;
    int64_t *state_offset;   /* bytes from the arena's start */
    /* updates, as requested, and whether each is computed in its target */
    int n_updates;
    kiln_plan_update *updates;
    bool *update_inplace;
    unsigned char *update_modes;
    int n_inputs;
    int32_t *input_node;
    int32_t cost;            /* -1 when none */
    /* values, by zone (zone 0: constant sizes) */
    int n_zones;
    kiln_value_zone *zones;
    int64_t max_sizes[KILN_MAX_SYMBOLS];
    int64_t guard;
    /* arena layout, bytes */
    int64_t param_bytes, state_bytes;
    int64_t off_grads, off_states, off_values, arena_bytes;
} kiln_plan;

/* Plan the program graph g for req. Fills p (caller frees with
** kiln_plan_free). Errors: KILN_ERR_NOMEM, KILN_ERR_ARG (a symbol a value
** uses has no maximum), KILN_ERR_SHAPE (the arena overflows). */
enum kiln_status kiln_plan_build(kiln_plan *p, const kiln_graph *g, const kiln_plan_request *req, kiln_err *err);
void kiln_plan_free(kiln_plan *p);
/* Bytes of node id's value for run-time symbol sizes. */
int64_t kiln_plan_value_bytes(const kiln_plan *p, int32_t id, const int64_t *sizes);
/* Byte offset of node id's value in the arena for those sizes (not for
** inputs; -1 when it has no storage). */
int64_t kiln_plan_arena_offset(const kiln_plan *p, int32_t id, const int64_t *sizes);
/* The state index of a STATE node, or -1. */
int kiln_plan_state_index(const kiln_plan *p, int32_t id);

#endif
