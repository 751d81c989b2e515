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
** An export is all or nothing: the files are written and NAME.so built in
** a fresh folder inside dir, then renamed into place (the library last)
** once all exist; a failure leaves no new or partial file. */
#ifndef KILN_EXPORT_H
#define KILN_EXPORT_H

#include "compile.h"
#include "network.h"

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
    /* Path of the shared object when compile is set (such as
    ** "out/libdigits.so"); NULL: DIR/NAME.so. On dir's file system (it is
    ** renamed there from dir). */
    const char *library;
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

/* Export roots of a loaded network file (kiln_network_load) with the
** file's parameters: the graph is compiled forward-only for the outputs
** alone (kiln_compile with no cost, no fast paths, max_batch o->max_batch or
** the default, o->cc; a JIT build, cached as any), then exported as
** kiln_program_export does. outputs[0..n_outputs) are root names
** (kiln_network_root_name); n_outputs 0: every root of rank 1 or more, in
** the file's order (scalars, such as a cost or an error rate, summarise a
** batch and are not per-example outputs). Decided against a call that
** takes the compiled program only: a network file's roots are named, and
** the caller should not need kiln_compile to ship a file. The message is
** on net (kiln_network_errmsg). KILN_ERR_ARG (NULL, an unknown root name,
** no root of rank 1 or more), KILN_ERR_STATE (net not loaded), then as
** kiln_compile and kiln_program_export. */
KILN_API enum kiln_status kiln_network_export(kiln_network *net, const char *const *outputs, int n_outputs,
                                              const kiln_export_options *o);

#ifdef __cplusplus
}
#endif

#endif
