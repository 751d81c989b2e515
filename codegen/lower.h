/* lower.h (internal): a planned program graph lowered to a list of kernels,
** as data; the printers (emit_c.c) walk it.
**
** The lowering decides, the printers print: which stored nodes are kernels
** and of what kind, the entry points (modes) each runs in, which products
** take a fast path (an update fused into the GEMM, a deferred batch-1
** update, kiln's own GEMM kernels, an add of the product's result done as
** the GEMM stores it), which loops compute a second value on
** the way (a bias gradient beside its delta, a softmax beside its
** cross-entropy), which updates run as loops over the parameter slab, and
** where the slots it adds live in the arena: deferred updates, the GEMM
** scratch and each scan's region, appended after the memory plan's arena.
** A scan's body is lowered too: its own plan and kernel list, nested. */
#ifndef KILN_CODEGEN_LOWER_H
#define KILN_CODEGEN_LOWER_H

#include "codegen/rt_table.h"
#include "compiler/memplan.h"
#include "compiler/util.h"

typedef struct kiln_lower_options {
    bool has_forward, has_train; /* entry points: forward; eval_step, gradients, train_step */
    bool no_fast_paths;          /* see kiln_lower_fast_paths */
} kiln_lower_options;

/* The one predicate every fast path consults: an update inside a GEMM, a
** deferred batch-1 update, kiln's own GEMM kernels (sgemm_nn, sgemm_tn),
** a scan's contexts copied once (W^T for x W^T, W with padded rows), a
** product's one following add in its GEMM (the addend epilogue), a scan's
** results written in place, shared loop nests. False with no_fast_paths
** (compile option, configuration key fast_paths). */
static inline bool kiln_lower_fast_paths(const kiln_lower_options *o) { return !o->no_fast_paths; }

enum kiln_kernel_kind {
    KILN_KERNEL_GEMM,        /* a 2-D product (BLAS, or a fast path below) */
    KILN_KERNEL_GEMM_BATCHED, /* a product with leading batch axes: one GEMM per index */
    KILN_KERNEL_ELEMENTWISE, /* a fusion group's loop nest (also an unaliased reshape, a stored leaf) */
    KILN_KERNEL_REDUCTION,   /* sum or max over axes, its group inline */
    KILN_KERNEL_ROWS,        /* a last-axis row op: softmax, logsoftmax, pick, argmax, cross-entropy */
    KILN_KERNEL_STRUCTURAL,  /* transpose, slice, pad, reverse, concat, split, gather, scatter-add */
    KILN_KERNEL_RANDOM,      /* random draws, the generator's next state */
    KILN_KERNEL_SCAN,        /* a loop calling its body's kernels once per step */
};

/* Which fast path a product takes (bits). */
enum {
    KILN_FAST_FUSED_UPDATE = 1, /* W -= s * this product in train_step: alpha -s, beta 1, C = W */
    KILN_FAST_DEFER_STORE = 2,  /* that update, at batch 1, kept in a slot for the next step */
    KILN_FAST_DEFER_APPLY = 4,  /* at batch 1, first applies a weight's deferred update */
    KILN_FAST_OWN_NN = 8,       /* rt->sgemm_nn where the CPU has it */
    KILN_FAST_OWN_TN = 16,      /* rt->sgemm_tn where the CPU has it */
};

typedef struct kiln_kernel_list kiln_kernel_list;

typedef struct kiln_kernel {
    enum kiln_kernel_kind kind;
    int32_t root;      /* the node it stores */
    unsigned modes;    /* the entry points that run it (enum kiln_mode bits) */
    int first_member, n_members; /* elementwise group, reduction: the inline nodes of its group
                                 ** (root excluded), in id order, at the list's members + first_member */
    int32_t sibling;   /* a sum over axes of root computed in its loop, or -1 */
    int32_t rows_with; /* cross-entropy: the softmax of the same logits computed in its loop, or -1 */
    int nest;          /* kernels whose loops are one nest, from this one (lower_shared_nests): 1 alone;
                       ** 0: computed in an earlier kernel's nest */
    bool nest_local;   /* in a nest: its value is a variable of the loop's body, never stored (every
                       ** reader is in the nest; lower_nest_values) */
    int32_t into;      /* in a nest: the concat (the kernel right after the nest) it is written into, or -1 */
    int64_t into_at;   /* where along the concat's last axis */
    bool by_nest;      /* a concat written by the nest before it (its parts' into), no loops of its own */
    bool viewed;       /* a slice the nest after it reads in place from the slice's input, no loops of
                       ** its own (lower_nest_slices) */
    /* products */
    unsigned fast;     /* KILN_FAST_* bits */
    bool own_nn_plain; /* the plain (unfused) variant of a fused product may call rt->sgemm_nn */
    int update;        /* fused: the plan's update this product applies, or -1 */
    int32_t scale;     /* fused: the node of s (alpha = -s, beta = 1, C = the update's target) */
    int defer_param;   /* DEFER_STORE: the parameter whose slot it fills; DEFER_APPLY: whose slot it applies */
    int tr_in;         /* x W^T in a body: inputs[] index of W^T (rows KILN_CODEGEN_PADDED_LD apart), or -1 */
    int pad_in;        /* x W in a body: inputs[] index of W's copy, rows KILN_CODEGEN_PADDED_LD apart, or -1 */
    /* the addend epilogue: the product's one reader, sum = product + addend,
    ** absorbed: the product writes sum's storage with the addend added */
    int32_t addend;    /* the addend's node, or -1 */
    int32_t sum;       /* the add it computes (whose storage it writes), or -1 */
    bool addend_row;   /* the addend is one row (n,), added to every row; else (m, n) */
    /* scans */
    int body;          /* index into the list's bodies, or -1 */
    int64_t scan_at;   /* arena offset of the scan's region (the body's arena) */
    int64_t scan_carry; /* offset in that region of the carried states, then the transposed contexts */
    bool *transposed;  /* per context: handed to the body transposed as well (n_ctx entries) */
    bool *padded;      /* per context: and copied with rows KILN_CODEGEN_PADDED_LD apart (after W^T, if both) */
} kiln_kernel;

struct kiln_kernel_list {
    const kiln_plan *plan;
    kiln_lower_options options;
    bool fast_paths;          /* kiln_lower_fast_paths(&options) */
    kiln_kernel *k;           /* in schedule order */
    int n;
    int32_t *kernel;          /* per node: its index in k, or -1 (inline, absorbed, not run) */
    int *result_at;           /* a body's, per storage root: the result k whose storage the scan hands in
                              ** results[k] (its stacked value at t: written in place, no copy), or -1 */
    int32_t *members;         /* the groups' members (kiln_kernel.first_member) */
    int n_members;
    bool *slab_update;        /* per update: applied by a loop over the parameter slab */
    int32_t *update_scale;    /* per update: the node of s in a fused or slab update p - s * grad, or -1 */
    int64_t *defer;           /* per parameter: arena offset of its deferred update's slot (flag, u, v), or -1 */
    int64_t deferred_at, deferred_end; /* the deferred slots' span (equal: none) */
    int64_t scratch, scratch_end;      /* rt->sgemm_nn's scratch, or -1 */
    int gemm_n, gemm_k;       /* the widest product that calls rt->sgemm_nn (0, 0: none) */
    bool any_fused;           /* some product applies its update and keeps no gradient */
    int64_t arena_bytes;      /* the plan's arena, the slots, the scratch, the scans' regions */
    /* scans: each body's plan and list, in scan-node order */
    kiln_plan *body_plans;
    kiln_kernel_list **bodies;
    int n_bodies;
};

/* Whether op is computed by kiln's own polynomials in float32 generated
** code (the prelude's k_expf, k_tanhf; the logistic through k_expf). */
static inline bool kiln_lower_polynomial(enum kiln_op op)
{
    return op == KILN_OP_EXP || op == KILN_OP_TANH || op == KILN_OP_SIGMOID;
}

/* Whether op calls a libm function in generated code of this float type (a
** call keeps a loop scalar): log, softplus's log1p, pow; in float64 the
** polynomial ops too. */
static inline bool kiln_lower_calls_libm(enum kiln_op op, enum kiln_dtype floatx)
{
    if (op == KILN_OP_LOG || op == KILN_OP_SOFTPLUS || op == KILN_OP_POW)
        return true;
    return floatx != KILN_DTYPE_F32 && kiln_lower_polynomial(op);
}

/* The row stride of the copy a scan makes of a context W (rank 2, float)
** for its step's products: of W^T (transposed) or of W itself; 0 where the
** copy keeps the natural stride (a dimension known only at run time). */
static inline int64_t kiln_lower_context_ld(const kiln_shape *s, bool transposed)
{
    if (s->rank != 2 || s->dims[0] <= 0 || s->dims[1] <= 0)
        return 0;
    return KILN_CODEGEN_PADDED_LD(s->dims[transposed ? 0 : 1]);
}

/* Lower plan p (which must outlive *out). A scan body's list is made with
** kiln_lower_body's arguments. *out freed with kiln_kernel_list_free. */
enum kiln_status kiln_lower(const kiln_plan *p, const kiln_lower_options *o, kiln_kernel_list **out, kiln_err *err);
void kiln_kernel_list_free(kiln_kernel_list *l);

/* The kernel of node id, or NULL. */
static inline const kiln_kernel *kiln_kernel_of(const kiln_kernel_list *l, int32_t id)
{
    return l->kernel[id] >= 0 ? &l->k[l->kernel[id]] : NULL;
}

/* The stored node reading result k of tuple node id (a PROJ kept in some
** mode), or -1 when nothing keeps it. */
int32_t kiln_lower_kept_result(const kiln_plan *p, int32_t id, int k);

const char *kiln_kernel_kind_name(enum kiln_kernel_kind k);

/* The list as text, one line per kernel (kind, node, op, shape, modes,
** fast paths, slots), the slots and bodies after; for tests and tools. */
void kiln_kernel_list_print(const kiln_kernel_list *l, kiln_strbuf *out);

#endif
