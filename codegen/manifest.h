/* manifest.h: the description a generated unit carries of itself, shared by
** the emitter (codegen/manifest.c writes it) and the executor
** (runtime/executor.c reads it). Plain types only: the runtime includes this
** header and no compiler header.
**
** A unit for model "mlp" defines
**     const kiln_manifest mlp_manifest = { KILN_MANIFEST_MAGIC, KILN_MANIFEST_VERSION, sizeof (kiln_manifest), ... };
** The types below are written once, in KILN_MANIFEST_TYPES; the emitter prints
** that macro's text into the unit, so both sides compile the same layout.
**
** Version rule: any change to these types, to the meaning of a field, or to
** the entry points' signatures (codegen/emit_c.h) bumps
** KILN_MANIFEST_VERSION; the executor accepts exactly its own version and
** struct size, and the JIT cache key (KILN_CODEGEN_VERSION) changes with it. */
#ifndef KILN_CODEGEN_MANIFEST_H
#define KILN_CODEGEN_MANIFEST_H

#include <stdint.h>

#define KILN_MANIFEST_MAGIC UINT32_C(0x4b4c4e4d) /* "KLNM" */
#define KILN_MANIFEST_VERSION 1
/* As KILN_MAX_SYMBOLS and KILN_MAX_RANK (include/kiln/common.h; manifest.c
** checks that they agree). */
#define KILN_MANIFEST_SYMBOLS 8
#define KILN_MANIFEST_RANK 6

/* Entry points a unit defines, as bits of kiln_manifest.entries; the
** function for bit k is <model>_<KILN_MANIFEST_ENTRY_NAMES[k]>. */
enum kiln_manifest_entry {
    KILN_MANIFEST_INIT = 1,
    KILN_MANIFEST_FORWARD = 2,
    KILN_MANIFEST_EVAL_STEP = 4,
    KILN_MANIFEST_GRADIENTS = 8,
    KILN_MANIFEST_TRAIN_STEP = 16,
    KILN_MANIFEST_FLUSH = 32,
};
#define KILN_MANIFEST_N_ENTRIES 6
#define KILN_MANIFEST_ENTRY_NAMES {"init", "forward", "eval_step", "gradients", "train_step", "flush"}

/* What a tensor of the manifest is. */
enum kiln_manifest_kind {
    KILN_MANIFEST_INPUT,   /* bound by pointer: inputs[index] of an entry point */
    KILN_MANIFEST_OUTPUT,  /* a value the program was asked for (index: its position among them) */
    KILN_MANIFEST_COST,
    KILN_MANIFEST_MONITOR, /* index: its position among the monitors */
    KILN_MANIFEST_PARAM,   /* index: its place in the parameter slab; its gradient at grad_offset */
    KILN_MANIFEST_STATE,   /* index: its place among the states */
};

/* Element types, as enum kiln_dtype numbers them. */
enum kiln_manifest_dtype { KILN_MANIFEST_F32, KILN_MANIFEST_F64, KILN_MANIFEST_I32 };

/* Where a tensor lives (the arena holds params | grads | states | values). */
enum kiln_manifest_place {
    KILN_MANIFEST_NOWHERE, /* not stored (a value computed inside its reader's loop) */
    KILN_MANIFEST_BOUND,   /* in the caller's data: inputs[index_bound] */
    KILN_MANIFEST_ARENA,   /* at offset + stride * stride_unit(sizes) bytes */
};

#define KILN_MANIFEST_TYPES                                                                                        \
    /* c times the product of sizes[k]^e[k]: a dimension, or a size */                                             \
    typedef struct kiln_manifest_mono {                                                                            \
        int64_t c;                                                                                                 \
        uint8_t e[8];                                                                                              \
    } kiln_manifest_mono;                                                                                          \
    typedef struct kiln_manifest_tensor {                                                                          \
        const char *owner; /* brick path, "" when none */                                                          \
        const char *name;                                                                                          \
        int32_t kind, dtype, rank, index;                                                                          \
        kiln_manifest_mono dims[6];                                                                                \
        int32_t place, index_bound;                                                                                \
        uint32_t modes; /* entry bits that compute (values) or read (inputs) it */                                 \
        int32_t reserved;                                                                                          \
        int64_t offset, stride;                                                                                    \
        kiln_manifest_mono stride_unit;                                                                            \
        int64_t grad_offset; /* params: the gradient's arena offset; else -1 */                                    \
    } kiln_manifest_tensor;                                                                                        \
    typedef struct kiln_manifest {                                                                                 \
        uint32_t magic, version, struct_size, tensor_size;                                                         \
        const char *model;                                                                                         \
        uint64_t hash; /* FNV-1a 64 of the unit's text before the manifest */                                      \
        uint32_t entries;                                                                                          \
        int32_t floatx;                                                                                            \
        const char *symbol_names[8]; /* "B", "T", user symbols; NULL: unused */                                    \
        int64_t max_sizes[8];        /* compiled maxima; 0: no value uses it */                                    \
        int64_t arena_bytes;         /* all of it: the plan, deferred updates, scratch */                          \
        int64_t param_bytes, off_grads, off_states, state_bytes, off_values;                                       \
        int32_t gemm_n, gemm_k;      /* the widest product given to rt->sgemm_nn */                                \
        int32_t n_tensors, n_inputs, n_values, n_params, n_states, reserved;                                       \
        /* inputs (by index), values (outputs, cost, monitors), params (slab order), states */                     \
        const kiln_manifest_tensor *tensors;                                                                       \
    } kiln_manifest;

KILN_MANIFEST_TYPES

/* The rt every entry point takes (BLAS and kiln's kernels, handed in so
** that the unit links libm alone): codegen/rt_table.h. */
#include "codegen/rt_table.h"

#endif
