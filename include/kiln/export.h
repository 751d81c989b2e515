/* kiln/export.h: inference-only C code and shared objects from a compiled
** program (docs/export.md).
**
** kiln_program_export writes, into a folder:
**   NAME.c        the forward pass of the program's outputs and nothing else
**                 (no cost, gradients or updates), with the tiny ABI below
**                 around it; it calls nothing of kiln: libc and libm only,
**                 or also CBLAS when asked;
**   NAME.h        the ABI: NAME_ABI_VERSION, the inputs' and outputs'
**                 names, dtypes and shapes (the batch symbolic), and
**                   NAME_weights_load / NAME_weights_free,
**                   NAME_create / NAME_destroy (a context: its own scratch,
**                     the weights shared read-only),
**                   NAME_forward(ctx, inputs, outputs, batch) -> status;
**   NAME.weights  the parameters, when not embedded in NAME.c: raw
**                 little-endian floats after a header (magic, ABI version,
**                 size, FNV-1a hash) that NAME_weights_load checks;
**   NAME.so       when asked: NAME.c built by the C compiler the JIT uses,
**                 with its flags (runtime/jit.c).
** Every identifier in the files is kiln's own (NAME is the caller's C
** prefix, checked); the model's names appear only inside string literals,
** escaped, and in comments, sanitised: a crafted name is data.
** Each file appears whole or not at all (written under a temp name and
** renamed). */
#ifndef KILN_EXPORT_H
#define KILN_EXPORT_H

#include "compile.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the generated ABI (NAME_ABI_VERSION); bumped when the meaning
** of a generated declaration or of the weights file changes. */
#define KILN_EXPORT_ABI_VERSION 1

typedef struct kiln_export_options {
    /* Prefix of the generated symbols and the files' names: letters, digits
    ** and '_', not starting with a digit, 1 to 48 characters. */
    const char *name;
    /* Folder the files are written to (it must exist). NULL: ".". */
    const char *dir;
    /* false: the weights are static const arrays in NAME.c (exact hex float
    ** literals); true: they go to NAME.weights. */
    bool weights_file;
    /* Products through CBLAS instead of kiln's plain C loops; NAME.so then
    ** links -lopenblas (the BLAS kiln was built with). */
    bool blas;
    /* Also build NAME.so. */
    bool compile;
    /* C compiler for NAME.so (NULL: as kiln_compile picks it: $KILN_CC,
    ** clang, gcc) and extra flags after the JIT's (such as
    ** "-march=native"); borrowed for the call. */
    const char *cc;
    const char *const *cflags;
    int n_cflags;
    /* Largest batch NAME_forward accepts (NAME_MAX_BATCH); a context's
    ** scratch is sized for it. 0: the program's max_batch. */
    int64_t max_batch;
} kiln_export_options;

/* Every field at its default (name "model", dir ".", embedded weights,
** plain C, no .so). */
KILN_API kiln_export_options kiln_export_options_default(void);

/* Export p's forward pass (its compile options' outputs) with p's current
** parameters (p and o borrowed). The program must have outputs, float32
** values, float32 inputs and outputs whose only symbolic dim is the batch,
** on axis 0, and no scan or random node on the outputs' path (not yet
** exported: KILN_ERR_UNSUPPORTED naming the node). The message is on p
** (kiln_program_errmsg). KILN_OK, KILN_ERR_ARG (bad options), KILN_ERR_STATE
** (p not compiled), KILN_ERR_UNSUPPORTED, KILN_ERR_IO (a file cannot be
** written), KILN_ERR_COMPILE (building NAME.so failed), KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_program_export(kiln_program *p, const kiln_export_options *o);

#ifdef __cplusplus
}
#endif

#endif
