/* executor.h (internal): run a compiled unit from its manifest alone.
**
** The executor knows a unit by its manifest (codegen/manifest.h) and the
** symbols it looks up by name; it needs no compiler, no IR and no plan, and
** includes no compiler/ header. What touches memory goes through a backend
** table (allocate, copy in and out, call an entry point): the CPU's now, so
** that a device backend can be a second table later.
** A kiln_program runs through one (runtime/program.c); a test or a host
** program can open a unit loaded by path (dlopen) with no kiln_program. */
#ifndef KILN_RUNTIME_EXECUTOR_H
#define KILN_RUNTIME_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codegen/manifest.h"
#include "kiln/common.h"

typedef struct kiln_exec kiln_exec;

/* Where the arena lives and how entry points are called. arena is the
** backend's handle (on the CPU, the bytes themselves). */
typedef struct kiln_exec_backend {
    const char *name;
    void *(*alloc)(int64_t bytes);         /* zeroed; NULL on failure */
    void (*release)(void *arena);
    void (*copy_in)(void *arena, int64_t offset, const void *src, int64_t bytes);
    void (*copy_out)(void *dst, const void *arena, int64_t offset, int64_t bytes);
    /* the host address of arena's bytes, or NULL when they are not the host's */
    char *(*host)(void *arena);
    int64_t (*init)(void *fn, void *arena, int64_t bytes);
    int64_t (*run)(void *fn, void *arena, const void *const *inputs, const int64_t *sizes, const void *rt);
    int64_t (*flush)(void *fn, void *arena, const void *rt);
} kiln_exec_backend;

/* The CPU's table: calloc or a huge-page mapping (executor.c), memcpy, direct calls. */
const kiln_exec_backend *kiln_exec_backend_cpu(void);

/* The CPU's rt for entry points: CBLAS, and ks's kernels (the fused
** batch-1 update always; kiln's products when products is true). */
struct kiln_kernel_set;
void kiln_exec_cpu_runtime(kiln_codegen_runtime *rt, const struct kiln_kernel_set *ks, bool products);

/* Looks a symbol of the unit up (dlsym, kiln_jit_symbol); NULL when absent. */
typedef void *(*kiln_exec_lookup)(void *lib, const char *symbol);

typedef struct kiln_exec_config {
    const kiln_exec_backend *backend; /* NULL: the CPU's */
    kiln_exec_lookup lookup;          /* NULL: dlsym */
    void *lib;                        /* borrowed: a dlopen handle, or lookup's argument */
    const char *model;                /* the unit's model name: its symbols are <model>_... */
    /* handed to every entry point as rt (codegen/emit_c.h's
    ** kiln_codegen_runtime); borrowed, must outlive the executor */
    const void *rt;
    /* NULL: <model>_manifest from lib; else this one (tests: a corrupted copy) */
    const kiln_manifest *manifest;
} kiln_exec_config;

/* Open the unit: find and check its manifest and entry points, allocate its
** arena and run init. *out is set even on failure (kiln_exec_errmsg), and is
** freed by kiln_exec_destroy. KILN_OK, KILN_ERR_ARG (a bad config),
** KILN_ERR_FORMAT (a bad manifest), KILN_ERR_COMPILE (a missing symbol, init
** refused the arena), KILN_ERR_NOMEM. */
enum kiln_status kiln_exec_open(const kiln_exec_config *c, kiln_exec **out);
void kiln_exec_destroy(kiln_exec *x);
const char *kiln_exec_errmsg(const kiln_exec *x);

/* Whether m is a manifest this executor can trust (version, sizes, offsets
** inside the arena, slabs that do not overlap, names NUL-terminated): KILN_OK,
** else KILN_ERR_FORMAT with a one-line reason in msg. */
enum kiln_status kiln_exec_check_manifest(const kiln_manifest *m, char *msg, size_t cap);

const kiln_manifest *kiln_exec_manifest(const kiln_exec *x);
bool kiln_exec_has(const kiln_exec *x, enum kiln_manifest_entry e);
/* The arena's host bytes (NULL off the CPU or before it exists). */
char *kiln_exec_arena(kiln_exec *x);

/* The tensor of kind (enum kiln_manifest_kind) called name, or -1. For
** parameters and states name is the path "owner.name" (or the name alone
** when its owner is ""); an input, an output, by its name. */
int kiln_exec_find(const kiln_exec *x, int kind, const char *name);
/* The path "owner.name" of tensor t in buf. */
const char *kiln_exec_path(const kiln_exec *x, int t, char *buf, size_t cap);
/* Elements of tensor t at sizes (NULL: the last step's); -1 on overflow. */
int64_t kiln_exec_count(const kiln_exec *x, int t, const int64_t *sizes);
/* Its shape as "(B, 6)" in buf. */
const char *kiln_exec_shape_str(const kiln_exec *x, int t, char *buf, size_t cap);

/* Bind input `name` to data (borrowed until the next bind of it) holding
** count elements, or -1: unknown, not checked. KILN_ERR_NOT_FOUND names the
** inputs there are. */
enum kiln_status kiln_exec_bind(kiln_exec *x, const char *name, const void *data, int64_t count);
/* The data bound to input i, or NULL. */
const void *kiln_exec_bound(const kiln_exec *x, int i);
/* The size of symbol k (1 ..) for the next steps, within its maximum. */
enum kiln_status kiln_exec_set_size(kiln_exec *x, int k, int64_t size);

/* Run entry e at batch: its inputs must be bound and long enough. *code
** gets what the code returned (0, or codegen/emit_c.h's bad index); a
** non-zero one is KILN_ERR_ARG. `what` prefixes messages ("forward"). */
enum kiln_status kiln_exec_run(kiln_exec *x, enum kiln_manifest_entry e, int64_t batch, const char *what,
                               int64_t *code);
/* The rt handed to the next runs (borrowed); NULL: the config's. */
void kiln_exec_set_runtime(kiln_exec *x, const void *rt);
/* The sizes of the last successful run, or NULL before one. */
const int64_t *kiln_exec_last_sizes(const kiln_exec *x);
/* Apply the updates a batch-1 train_step deferred. */
void kiln_exec_flush(kiln_exec *x);

/* Copy tensor t out (values: as of the last run, which must have computed it;
** parameters after a flush) or a parameter or state in: bytes must be its
** size. KILN_ERR_ARG, KILN_ERR_STATE. */
enum kiln_status kiln_exec_read(kiln_exec *x, int t, void *dst, int64_t bytes);
enum kiln_status kiln_exec_write(kiln_exec *x, int t, const void *src, int64_t bytes);

#endif
