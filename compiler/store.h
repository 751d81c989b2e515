/* store.h (internal): making and owning store entries (store.c).
**
** The facts a graph reads of an entry are declared in graph.h; this is for
** the code that makes entries: front ends (brick.c), graphs (a random
** state), kiln_compile (the step rule's state). */
#ifndef KILN_COMPILER_STORE_H
#define KILN_COMPILER_STORE_H

#include "compiler/graph.h"

/* A new entry with every value fill (NaN for a parameter not initialised
** yet). dtype: KILN_DTYPE_I32, or any float type for "the graph's floats".
** NULL on OOM or a bad name or shape. Roles: PARAMETER for a parameter,
** none for a state. */
kiln_param *kiln_store_new(enum kiln_store_kind kind, const char *name, enum kiln_dtype dtype, int rank,
                           const int64_t *dims, double fill);
/* Whether dims[0..rank) is a shape an entry can have (dims > 0, values
** within KILN_MAX_BYTES); *out its element count. */
bool kiln_store_shape_ok(int rank, const int64_t *dims, int64_t *out);
/* References (store.c: the maker's, one per graph node): retain adds one,
** unref drops one and frees the entry with the last. A maker drops its own
** with unref; one going away first clears front (kiln_store_set_front). */
void kiln_store_retain(kiln_param *p);
void kiln_store_unref(kiln_param *p);
/* New shape and values (fill); on failure p is unchanged. */
enum kiln_status kiln_store_reshape(kiln_param *p, int rank, const int64_t *dims, double fill);
/* Drop the values (the entry stays, unallocated). */
void kiln_store_release(kiln_param *p);
bool kiln_store_set_owner(kiln_param *p, const char *owner);
bool kiln_store_rename(kiln_param *p, const char *name);
void kiln_store_set_roles(kiln_param *p, unsigned roles);
/* An optimiser state shadowing parameter like, in slab number slab (>= 1). */
void kiln_store_set_like(kiln_param *p, kiln_param *like, int slab);
/* The front end's object, and an error slot that also receives p's errors. */
void kiln_store_set_front(kiln_param *p, void *front, kiln_err *sink);
void *kiln_store_front(const kiln_param *p);
/* Marks p as freed by its maker: kiln_param_destroy leaves it alone. */
void kiln_store_hold(kiln_param *p);

#endif
