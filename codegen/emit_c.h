/* emit_c.h (internal): C source for a planned program graph. */
#ifndef KILN_CODEGEN_EMIT_C_H
#define KILN_CODEGEN_EMIT_C_H

#include "compiler/memplan.h"

/* Bumped whenever the generated code or its ABI changes; part of the JIT
** cache key. */
#define KILN_CODEGEN_VERSION "kiln-codegen-1"

typedef struct kiln_emit_options {
    const char *model;      /* sanitised C identifier prefix */
    bool has_forward, has_train;
} kiln_emit_options;

/* Generated entry points, for model "mlp":
**   int64_t mlp_init(char *arena, int64_t arena_bytes)
**   int64_t mlp_forward(char *arena, const void *const *inputs, int64_t B)
**   int64_t mlp_eval_step(...), mlp_gradients(...), mlp_train_step(...)
** They return 0, or KILN_CODEGEN_BAD_INDEX(node, row) when an integer index
** read from the data is out of range. */
#define KILN_CODEGEN_ERR_NODE(code) ((int32_t)((code) >> 32))
#define KILN_CODEGEN_ERR_ROW(code) ((int64_t)((code) & 0xffffffff) - 1)

/* *out is malloc'ed, NUL-terminated. */
enum kiln_status kiln_emit_c(const kiln_plan *p, const kiln_emit_options *o, char **out, kiln_err *err);

#endif
