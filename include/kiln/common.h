/* kiln/common.h: statuses, dtypes and limits shared by every kiln header.
**
** Conventions of the whole API (see docs/guide.md):
**  - every fallible call returns enum kiln_status (KILN_OK == 0); the message
**    is read from the object that failed with kiln_<object>_errmsg(), valid
**    until the next call on that object;
**  - handles are opaque; each create has a destroy; destroy(NULL) is a no-op;
**  - misuse gets a status, never a crash, in every build: a NULL handle or
**    pointer argument makes a fallible call return KILN_ERR_ARG (with the
**    message on the handle when there is one, naming the NULL argument), a
**    builder KILN_NODE_NONE, and a getter its neutral value: "" for a
**    string (NULL where its comment says so), 0, -1 for an index, false,
**    NULL for a handle. Pointers documented as optional may be NULL;
**  - lifetimes: each declaration says how long what it borrows must live
**    and how long what it returns stays valid. Objects that another keeps
**    are kept alive by it (a graph and a program keep the parameters they
**    read, a stream its dataset, a main loop its program and stream): a
**    destroy drops the caller's reference, and the object goes with the
**    last keeper, so handles may be destroyed in any order. A destroyed
**    handle is not to be used by the caller again;
**  - no global mutable state: two models in one process never interact. */
#ifndef KILN_COMMON_H
#define KILN_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0
#define KILN_VERSION_STRING "0.1.0"

/* Largest tensor rank the IR handles. */
#define KILN_MAX_RANK 6
/* Symbolic dims. A dim is a constant (> 0) or a symbol whose size is given
** at run time, below its maximum given at compile time: KILN_BATCH (B),
** KILN_TIME (T), or one made by kiln_graph_symbol(). Any axis may be one.
** Reshape and flatten fold symbols into products (T*B), also negative codes
** (kiln_graph_dim_str prints one). KILN_INFER, in a reshape, is the one dim
** whose size follows from the others (numpy's -1). */
#define KILN_BATCH (-1)
#define KILN_TIME (-2)
#define KILN_INFER INT64_MIN
/* Symbols a graph can have: B, T and six of the user's. */
#define KILN_MAX_SYMBOLS 8
/* The index of symbol code s (B 0, T 1, ...), for per-symbol arrays. */
#define KILN_SYMBOL_INDEX(s) ((int)(-(s) - 1))
/* Largest block of memory kiln allocates for one object, in bytes (1 TiB): a
** program's arena at the maxima of its symbols, a parameter's values, a
** dataset source. A shape or configuration that needs more is an error
** naming it (KILN_ERR_SHAPE), found before any allocation: no machine kiln
** runs on has that memory, and a plain allocation failure names nothing
** (and under AddressSanitizer aborts the process). */
#define KILN_MAX_BYTES (INT64_C(1) << 40)
/* Longest name (brick, variable, source, model), terminator excluded. */
#define KILN_MAX_NAME 127
/* A seed argument that means "the configuration's default_seed" (config.h):
** kiln_stream_create, kiln_graph_random_state, kiln_apply_dropout,
** kiln_brick_set_seed. */
#define KILN_SEED_DEFAULT UINT64_MAX

enum kiln_status {
    KILN_OK = 0,
    KILN_ERR_ARG,      /* a bad argument: NULL, out of range, wrong node */
    KILN_ERR_SHAPE,    /* shapes or dtypes that do not fit together */
    KILN_ERR_CONFIG,   /* a brick's configuration is missing or wrong */
    KILN_ERR_STATE,    /* call out of order (e.g. values read before allocation) */
    KILN_ERR_NOT_FOUND,/* a name that matches nothing */
    KILN_ERR_NOMEM,    /* an allocation failed; the handle stays usable */
    KILN_ERR_IO,       /* a file could not be opened, read or written */
    KILN_ERR_FORMAT,   /* a file's contents are malformed or truncated */
    KILN_ERR_COMPILE,  /* the C compiler or the loader failed */
    KILN_ERR_UNSUPPORTED /* valid request that this version cannot do */
};

enum kiln_dtype { KILN_DTYPE_F32, KILN_DTYPE_F64, KILN_DTYPE_I32 };

/* Static strings: "ok", "bad argument", ... and "float32", ... */
KILN_API const char *kiln_status_string(enum kiln_status s);
KILN_API const char *kiln_dtype_name(enum kiln_dtype t);
KILN_API size_t kiln_dtype_size(enum kiln_dtype t);

#ifdef __cplusplus
}
#endif
#endif
