/* emit_c.h (internal): C source for a planned program graph. */
#ifndef KILN_CODEGEN_EMIT_C_H
#define KILN_CODEGEN_EMIT_C_H

#include "codegen/manifest.h"
#include "codegen/rt_table.h"
#include "compiler/memplan.h"

/* Bumped whenever the generated code or its ABI changes; part of the JIT
** cache key. */
#define KILN_CODEGEN_VERSION "kiln-codegen-13"

typedef struct kiln_emit_options {
    const char *model;      /* sanitised C identifier prefix */
    bool has_forward, has_train;
    bool no_fast_paths;     /* no update inside a GEMM, no deferred update, no own GEMM */
    /* Export (runtime/export.c): forward only, with no_fast_paths; see
    ** kiln_emit_c's second comment. */
    bool exported;
    bool export_blas;       /* products through CBLAS (linked) instead of plain loops */
    /* The program's outputs and monitors, in the options' order: exported,
    ** the values copied out; else listed in the manifest (codegen/manifest.c). */
    const int32_t *outputs;
    int n_outputs;
    const int32_t *monitors;
    int n_monitors;
} kiln_emit_options;

/* Generated entry points, for model "mlp":
**   int64_t mlp_init(char *arena, int64_t arena_bytes)
**   int64_t mlp_forward(char *arena, const void *const *inputs,
**                       const int64_t *sizes, const kiln_codegen_runtime *rt)
**   int64_t mlp_eval_step(...), mlp_gradients(...), mlp_train_step(...)
**   int64_t mlp_flush(char *arena, const kiln_codegen_runtime *rt)
** sizes[k] is the run-time size of dim symbol k (B first, then T, ...).
** flush applies the updates a batch-1 train_step deferred (codegen/lower.c,
** lower_deferred); the runtime calls it before it reads or writes a
** parameter in the arena.
** rt hands the code its BLAS functions; the file links only libm.
** A scan's step is a static function <model>_b<k>_run of the same file
** (a nested scan's <model>_b<k>_b<j>_run), called once per step; its
** values and carried states live in a region at the end of the arena.
** They return 0, or KILN_CODEGEN_BAD_INDEX(node, position) when an integer
** index read from the data is out of range. */
#define KILN_CODEGEN_ERR_NODE(code) ((int32_t)((code) >> 32))
#define KILN_CODEGEN_ERR_ROW(code) ((int64_t)((code) & 0xffffffff) - 1)

/* kiln_codegen_runtime, the rt the entry points take, and the GEMM scratch: codegen/rt_table.h. */

/* What the runtime needs to know of the code besides its text. */
typedef struct kiln_emit_info {
    int64_t arena_bytes; /* the plan's arena, deferred updates' slots, GEMM scratch */
    int gemm_n, gemm_k;  /* the widest product that calls rt->sgemm_nn (0, 0: none) */
    bool fused_updates;  /* some gradient products apply their update and keep no gradient */
} kiln_emit_info;

/* In export mode the parameters and states live apart from the arena, in
** one read-only blob: the parameter slab, then the states' bytes as the plan
** lays them out. The blob's offset of arena offset off (a parameter's or a
** state's). */
static inline int64_t kiln_emit_weight_offset(const kiln_plan *p, int64_t off)
{
    return off < p->off_grads ? off : p->param_bytes + (off - p->off_states);
}
/* Bytes of that blob. */
static inline int64_t kiln_emit_weight_bytes(const kiln_plan *p) { return p->param_bytes + p->state_bytes; }

/* *out is malloc'ed, NUL-terminated.
** Export mode (o->exported): the unit holds only `static int64_t
** <model>_run(char *arena, const char *k_weights, const void *const *inputs,
** float *const *k_outputs, const int64_t *sizes)` (forward: the plan's
** outputs copied into k_outputs[k], in plan order) and what it needs; no
** init, flush or entry points (export.c writes the ABI around it); names
** from kiln's namespace only (user text only in comments); the arena holds
** the values alone (info->arena_bytes); products call static plain-C loops
** (libc and libm only), or CBLAS with export_blas; no rt. */
enum kiln_status kiln_emit_c(const kiln_plan *p, const kiln_emit_options *o, char **out, kiln_emit_info *info,
                             kiln_err *err);

/* Append the unit's manifest (codegen/manifest.h) to out, the unit's text so
** far (its hash is of that text). Not in export mode. */
void kiln_manifest_emit(kiln_strbuf *out, const kiln_plan *p, const kiln_emit_options *o, const kiln_emit_info *info);

#endif
