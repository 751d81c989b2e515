/* kiln/aot.h: standalone programs from a compiled program (docs/aot.md).
**
** kiln_program_write_aot writes, into a folder, the C sources of one
** program that runs the model with no libkiln: the generated unit, a
** generated or fixed main.c, and the runtime pieces it needs, copied from
** kiln's own sources (embedded in libkiln when kiln was built), and a
** README with the one compiler command that builds it:
**     cc -std=c11 -O2 ... -I. -o program main.c ... -lopenblas -lhdf5 -lcrypto -lm
** (inference: libc and libm, and OpenBLAS) and, when asked, builds it with
** the C compiler and flags the JIT uses. Two kinds:
**   KILN_AOT_INFER  reads raw float32 examples of the program's input from
**                   stdin or a file, writes its outputs as raw float32;
**   KILN_AOT_TRAIN  reads an IDX images file and an IDX labels file, runs
**                   the program's train_step over them in order for some
**                   batches or epochs, and writes a network file
**                   (docs/network-files.md) of the trained parameters.
** The model's names appear in the files only as escaped string literals
** and in sanitised comments; every identifier is kiln's. Each file appears
** whole or not at all. */
#ifndef KILN_AOT_H
#define KILN_AOT_H

#include "compile.h"

#ifdef __cplusplus
extern "C" {
#endif

enum kiln_aot_kind { KILN_AOT_INFER, KILN_AOT_TRAIN };

typedef struct kiln_aot_options {
    enum kiln_aot_kind kind;
    /* Folder the sources are written to (made when missing, one level).
    ** NULL: "." */
    const char *dir;
    /* Path of the executable to build from them, or NULL: sources only. */
    const char *program;
    /* C compiler (NULL: as kiln_compile picks it: $KILN_CC, clang, gcc) and
    ** extra flags after the JIT's; borrowed for the call. */
    const char *cc;
    const char *const *cflags;
    int n_cflags;
    /* KILN_AOT_INFER: the largest batch of one forward (0: the program's
    ** max_batch). KILN_AOT_TRAIN: the batch size (0: 32, at most the
    ** program's max_batch). */
    int64_t batch;
    /* KILN_AOT_TRAIN: the network the written file describes, as
    ** kiln_network_save takes it: the graph the program was compiled from
    ** and its roots by name (borrowed for the call). */
    kiln_graph *graph;
    const kiln_node *roots;
    const char *const *root_names;
    int n_roots;
} kiln_aot_options;

/* Every field zero, dir ".", kind KILN_AOT_INFER. */
KILN_API kiln_aot_options kiln_aot_options_default(void);

/* Write (and with o->program, build) the standalone program of p (borrowed)
** as o says. Inference: p needs outputs, one float32 input (B, ...) and
** what kiln_program_export accepts; the products call CBLAS, so the outputs
** are the bits of kiln_program_forward of a program compiled with
** no_fast_paths. Training: p needs a cost and train_step; its
** current parameters and states (the step rule's included) are the
** program's start. The message is on p (kiln_program_errmsg). KILN_OK,
** KILN_ERR_ARG, KILN_ERR_STATE (not compiled, no cost), KILN_ERR_UNSUPPORTED,
** KILN_ERR_IO, KILN_ERR_COMPILE, KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_program_write_aot(kiln_program *p, const kiln_aot_options *o);

#ifdef __cplusplus
}
#endif

#endif
