/* memplan.h (internal): where every value of a program graph lives.
**
** The arena of a program:
**   params | grads | fixed | batch
** params and grads are slabs in the same order (the update is one loop);
** fixed holds values whose size does not depend on B (hyperparameters,
** scalars, weight-sized gradient temporaries); batch holds values whose size
** is c * B: there an offset is in bytes per example, multiplied by B at run
** time, so one plan serves every batch size up to max_batch.
** Inline nodes have no storage (computed inside their consumer's loop);
** RESHAPE nodes alias their input; INPUT nodes point at bound data. */
#ifndef KILN_COMPILER_MEMPLAN_H
#define KILN_COMPILER_MEMPLAN_H

#include "compiler/graph.h"

enum kiln_zone { KILN_ZONE_NONE, KILN_ZONE_INPUT, KILN_ZONE_PARAM, KILN_ZONE_GRAD, KILN_ZONE_FIXED,
                 KILN_ZONE_BATCH };

typedef struct kiln_buffer {
    enum kiln_zone zone;
    int64_t offset; /* bytes from the zone's start; per example in ZONE_BATCH */
    int index;      /* input index (ZONE_INPUT), param index (PARAM/GRAD) */
} kiln_buffer;

/* Entry points; a node belongs to each one that must compute it. */
enum kiln_entry { KILN_ENTRY_FORWARD = 1, KILN_ENTRY_EVAL = 2, KILN_ENTRY_TRAIN = 4 };

#define KILN_MAX_HYPER 4
#define KILN_HYPER_LEARNING_RATE 0

typedef struct kiln_plan {
    const kiln_graph *g;
    int32_t n;               /* nodes */
    bool *inline_;           /* computed in the consumer's loop */
    int32_t *alias;          /* node whose storage this node shares (itself if none) */
    kiln_buffer *buf;        /* of alias[i] */
    unsigned char *entries;  /* enum kiln_entry bits */
    /* params, in slab order */
    int n_params;
    int32_t *param_node;     /* node of param i */
    int32_t *grad_node;      /* node of its gradient, or -1 */
    bool *grad_copy;         /* gradient stored elsewhere: copy into the slab */
    int64_t *param_offset;   /* bytes in the param (and grad) slab */
    int n_inputs;
    int32_t *input_node;
    int32_t cost;            /* -1 when none */
    /* arena layout, bytes */
    int64_t param_bytes, fixed_bytes, batch_bytes_per_example, max_batch;
    int64_t off_grads, off_fixed, off_batch, arena_bytes;
    int64_t hyper_offset;    /* KILN_MAX_HYPER floatx slots at the start of fixed */
} kiln_plan;

/* roots: cost (or -1), monitors, outputs, and grads[i] for param nodes
** params[i]. Fills p (caller frees with kiln_plan_free). */
enum kiln_status kiln_plan_build(kiln_plan *p, const kiln_graph *g, int32_t cost, const int32_t *monitors,
                                 int n_monitors, const int32_t *outputs, int n_outputs, const int32_t *params,
                                 const int32_t *grads, int n_params, int64_t max_batch, kiln_err *err);
void kiln_plan_free(kiln_plan *p);
/* Bytes of node id's value for batch size B. */
int64_t kiln_plan_value_bytes(const kiln_plan *p, int32_t id, int64_t B);
/* Byte offset of node id's value in the arena for batch B (not for inputs). */
int64_t kiln_plan_arena_offset(const kiln_plan *p, int32_t id, int64_t B);

#endif
