/* program.c: kiln_compile and running a compiled program.
**
** kiln_compile is the pipeline, in order:
**   1. copy what the cost, monitors, outputs and the graph's own updates
**      need from the user's graph into a program graph (folding, rewrites,
**      CSE as nodes are added);
**   2. differentiate the cost with respect to every parameter (autodiff.c);
**   3. build the step rule's updates as IR (steprule.c);
**   4. rebuild once more, so rewrites and dead-code elimination also see
**      the backward graph and the updates;
**   5. fuse and plan memory (memplan.c), generate C (codegen/emit_c.c);
**   6. compile and load it through the cache (jit.c); open an executor on
**      it (executor.c: checks the unit's manifest, allocates the arena, one
**      allocation sized for the maxima, runs init) and copy the parameters
**      and states in.
** Running goes through the executor: bindings, sizes, entry points, the
** flush. What needs the plan stays here around it: guard bytes, naming the
** node of an out-of-range index, reading a value by its user node, the
** store's float64 values. A step never allocates (inputs are bound by
** pointer, the code works inside the arena) and never changes the BLAS's
** thread count (#12; kiln_compile sets it once when options.threads asks).
** The user's node handles are mapped to program-graph nodes (map[]); names
** shown to the user come from the user's graph as it was at compile time.
** Lifetimes (#9): the program borrows nothing of the user's graph after
** kiln_compile returns; its program graph holds a reference to every store
** entry it reads (store.c), so the bricks may go first; a main loop keeps
** the program alive (kiln_program_retain), so kiln_program_destroy drops the
** caller's reference and the last keeper frees it. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/emit_c.h"
#include "compiler/autodiff.h"
#include "compiler/memplan.h"
#include "compiler/passes.h"
#include "compiler/steprule.h"
#include "compiler/store.h"
#include "kiln/compile.h"
#include "kiln/config.h"
#include "kiln_config.h"
#include "runtime/executor.h"
#include "runtime/jit.h"
#include "runtime/kernels.h"
#include "runtime/program_internal.h"
#include "runtime/refs.h"

#define DEFAULT_MAX_BATCH 1024
/* Below this many GEMM flops a step runs BLAS on one thread (measured on 2
** cores: waking a helper costs more than it saves below ~50 MFLOP). */
#define SMALL_STEP_FLOPS 50e6
/* The byte a guard is filled with (kiln_compile_options.guard_bytes). */
#define GUARD_BYTE 0xA5

/* OpenBLAS's thread control, when the BLAS is OpenBLAS (weak: another CBLAS
** links too, and then threads are left alone). */
extern void openblas_set_num_threads(int) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));
#define MAX_MODEL_NAME 48


struct kiln_program {
    kiln_err err;
    kiln_refs refs;           /* the caller's and one per main loop */
    kiln_graph *pg;           /* the program graph (owned) */
    kiln_plan plan;
    bool planned;
    char *source;
    kiln_jit *jit;
    kiln_exec *exec;          /* runs the loaded unit from its manifest (executor.c) */
    unsigned entries;         /* enum kiln_manifest_entry bits the unit has; 0 after a failed compile */
    char *arena;              /* exec's arena, for what the plan reads (values, guards) */
    kiln_emit_info emit;      /* arena size, the widest product given to rt.sgemm_nn */
    int32_t n_user;
    int32_t *map;             /* user node id -> program node id, or -1 */
    char **user_names;        /* names of the user's nodes at compile time */
    unsigned char *role;      /* per user node: 1 cost, 2 monitor, 4 output */
    kiln_param **params;      /* plan param i -> store entry */
    char **state_names;       /* plan state i -> "owner.name" */
    kiln_steprule_out rule;   /* the step rule's updates and state entries (owned) */
    int32_t learning_rate;    /* program node of the first learning rate, or -1 */
    int32_t norms[2];         /* program nodes of the total gradient and step norms, or -1 */
    bool wants_norm[2];       /* the options' monitors ask for them */
    int *state_hyper;         /* plan state i -> its entry in rule.hypers, or -1 */
    bool *uninit;             /* param i had a NaN when last loaded or set */
    int n_uninit;
    int32_t *monitors, *outputs; /* program nodes of the options' monitors and outputs */
    int n_monitors, n_outputs;
    unsigned last_mode;       /* KILN_MODE_* of the last successful step */
    bool grads_fresh;         /* the grad slab holds the last kiln_program_gradients */
    int64_t sizes[KILN_MAX_SYMBOLS];      /* run-time sizes of the next step */
    int64_t last_sizes[KILN_MAX_SYMBOLS]; /* of the last step */
    int64_t max_batch;
    char model[MAX_MODEL_NAME + 1];
    kiln_codegen_runtime rt; /* BLAS and kernels for the generated code */
    kiln_codegen_runtime rt_small; /* for a small step on a threaded BLAS: kiln's products at every shape */
    kiln_kernel_set kernels; /* kiln's kernels of the ISA chosen (options.isa, $KILN_ISA, the CPU) */
    int threads;             /* BLAS threads for large batches, 0: leave as is */
    int64_t small_batch;     /* below it, BLAS runs on one thread */
    bool no_fast_paths;      /* the option's, or the configuration's fast_paths: false */
};

static enum kiln_status fail(kiln_program *p, enum kiln_status s, const char *fmt, ...) KILN_PRINTF(3, 4);
static enum kiln_status fail(kiln_program *p, enum kiln_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln_err_setv(&p->err, s, fmt, ap);
    va_end(ap);
    return s;
}

kiln_compile_options kiln_compile_options_default(void)
{
    kiln_compile_options o;
    memset(&o, 0, sizeof o);
    o.cost = KILN_NODE_NONE;
    o.step_rule = kiln_step_scale(1.0);
    return o;
}

static void program_free(kiln_program *p)
{
    if (p->user_names)
        for (int32_t i = 0; i < p->n_user; i++)
            free(p->user_names[i]);
    if (p->state_names)
        for (int i = 0; i < p->plan.n_states; i++)
            free(p->state_names[i]);
    free(p->state_names);
    free(p->state_hyper);
    free(p->uninit);
    free(p->user_names);
    free(p->map);
    free(p->role);
    free(p->params);
    free(p->monitors);
    free(p->outputs);
    kiln_exec_destroy(p->exec);
    free(p->source);
    kiln_jit_close(p->jit);
    if (p->planned)
        kiln_plan_free(&p->plan);
    kiln_graph_destroy(p->pg);
    kiln_steprule_out_free(&p->rule);
    free(p);
}

void kiln_program_destroy(kiln_program *p)
{
    if (p && kiln_refs_drop_caller(&p->refs)) /* main loops may keep it alive */
        program_free(p);
}

void kiln_program_retain(kiln_program *p) { kiln_refs_retain(&p->refs); }

void kiln_program_release(kiln_program *p)
{
    if (p && kiln_refs_release(&p->refs))
        program_free(p);
}

const char *kiln_program_errmsg(const kiln_program *p)
{
    if (!p)
        return "out of memory";
    return p->err.status == KILN_OK ? "ok" : p->err.msg;
}

const char *kiln_program_source(const kiln_program *p) { return p && p->source ? p->source : ""; }
bool kiln_program_compiler_ran(const kiln_program *p) { return p && p->jit && kiln_jit_compiler_ran(p->jit); }
const char *kiln_program_library_path(const kiln_program *p)
{
    const char *s = p && p->jit ? kiln_jit_path(p->jit) : NULL;
    return s ? s : "";
}
const char *kiln_program_cache_note(const kiln_program *p) { return p && p->jit ? kiln_jit_note(p->jit) : ""; }
int64_t kiln_program_max_batch(const kiln_program *p) { return p ? p->max_batch : 0; }

const char *kiln_program_isa(const kiln_program *p)
{
    return p && p->kernels.isa ? p->kernels.isa : "blas";
}

const char *kiln_program_product_kernel(const kiln_program *p, bool trans_a, int64_t m, int64_t n, int64_t k)
{
    if (!p || !p->rt.sgemm_nn || m <= 0 || n <= 0 || k <= 0 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return "blas";
    bool own = trans_a ? p->kernels.tn_wins((int)m, (int)n, (int)k) : p->kernels.nn_wins((int)m, (int)n, (int)k);
    return !own ? "blas" : strcmp(p->kernels.isa, "avx512") == 0 ? "kiln-avx512" : "kiln-avx2";
}

int64_t kiln_program_max_size(const kiln_program *p, int64_t symbol)
{
    int k = kiln_dim_symbol(symbol);
    if (!p || !p->planned || k < 0)
        return 0;
    return k == 0 ? p->max_batch : p->plan.max_sizes[k];
}
bool kiln_program_can_train(const kiln_program *p) { return p && (p->entries & KILN_MANIFEST_TRAIN_STEP); }

/* ---- for tests (program_internal.h) ------------------------------------ */

const kiln_graph *kiln_program_graph(const kiln_program *p) { return p ? p->pg : NULL; }

const int32_t *kiln_program_node_map(const kiln_program *p, int32_t *n_user)
{
    if (n_user)
        *n_user = p && p->map ? p->n_user : 0;
    return p ? p->map : NULL;
}

const kiln_plan *kiln_program_plan(const kiln_program *p) { return p && p->planned ? &p->plan : NULL; }

bool kiln_program_get_roots(const kiln_program *p, kiln_program_roots *out)
{
    if (!p || !p->planned)
        return false;
    *out = (kiln_program_roots){.cost = p->plan.cost, .monitors = p->monitors, .n_monitors = p->n_monitors,
                                .outputs = p->outputs, .n_outputs = p->n_outputs, .params = p->plan.param_node,
                                .grads = p->plan.grad_node, .n_params = p->plan.n_params,
                                .updates = p->plan.updates, .n_updates = p->plan.n_updates};
    return true;
}

/* ---- compiling --------------------------------------------------------- */

static enum kiln_status check_model_name(kiln_program *p, const char *name)
{
    if (!name)
        name = "model";
    size_t n = strlen(name);
    if (n == 0 || n > MAX_MODEL_NAME)
        return fail(p, KILN_ERR_ARG, "model name '%.60s' must have 1 to %d characters", name, MAX_MODEL_NAME);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return fail(p, KILN_ERR_ARG,
                        "model name '%s': character %zu is not a letter, digit or '_' (it names C symbols)", name,
                        i + 1);
    }
    memcpy(p->model, name, n + 1);
    return KILN_OK;
}

static enum kiln_status check_root(kiln_program *p, kiln_graph *g, kiln_node n, const char *what)
{
    if (n.id < 0 || n.id >= g->n_nodes)
        return fail(p, KILN_ERR_ARG, "%s: node %d is not a node of the graph (it has %d)", what, (int)n.id,
                    (int)g->n_nodes);
    if (g->nodes[n.id].n_out)
        return fail(p, KILN_ERR_ARG, "%s: node %d has %d results; take one with kiln_expr_output", what, (int)n.id,
                    g->nodes[n.id].n_out);
    return KILN_OK;
}

/* What build_graph leaves for the plan, in program-graph ids. */
typedef struct built_graph {
    int32_t *params, *grads;
    int n_params;
    kiln_plan_update *updates;
    int n_updates;
} built_graph;

static void built_free(built_graph *b)
{
    free(b->params);
    free(b->grads);
    free(b->updates);
}

/* Steps 1-4: program graph, gradients, step rule, second rebuild. Leaves
** p->pg, p->map, and the param/grad/update lists in program ids. */
static enum kiln_status build_graph(kiln_program *p, kiln_graph *g, const kiln_compile_options *o, built_graph *out)
{
    int n_roots = 0;
    int32_t *roots = malloc(sizeof(int32_t) * (size_t)(1 + o->n_monitors + o->n_outputs + 2 * g->n_updates));
    int32_t *map1 = malloc(sizeof(int32_t) * ((size_t)g->n_nodes + 1));
    int32_t *params = NULL, *grads = NULL, *map2 = NULL, *roots2 = NULL;
    kiln_plan_update *ups = NULL;
    kiln_graph *pg1 = NULL;
    enum kiln_status st = KILN_OK;
    bool train = kiln_node_ok(o->cost);
    if (!roots || !map1) {
        st = fail(p, KILN_ERR_NOMEM, "compile: no memory");
        goto out;
    }
    if (train)
        roots[n_roots++] = o->cost.id;
    for (int i = 0; i < o->n_monitors; i++)
        roots[n_roots++] = o->monitors[i].id;
    for (int i = 0; i < o->n_outputs; i++)
        roots[n_roots++] = o->outputs[i].id;
    int n_value_roots = n_roots;

    /* 1. The part of the user's graph that the roots need, with the values
    ** of the graph's updates: those of train_step when there is a cost, and
    ** those that run wherever their target is read (a random state's
    ** advance) when the program reads the target. */
    {
        unsigned char *live = calloc((size_t)g->n_nodes + 1, 1);
        unsigned char *taken = calloc((size_t)g->n_updates + 1, 1);
        if (!live || !taken) {
            free(live);
            free(taken);
            st = fail(p, KILN_ERR_NOMEM, "compile: no memory");
            goto out;
        }
        for (int i = 0; i < n_roots; i++)
            live[roots[i]] = 1;
        for (bool more = true; more;) {
            more = false;
            for (int32_t id = g->n_nodes - 1; id >= 0; id--)
                if (live[id])
                    for (int k = 0; k < g->nodes[id].n_in; k++)
                        live[g->nodes[id].in[k]] = 1;
            for (int32_t u = 0; u < g->n_updates; u++) {
                const kiln_update *up = &g->updates[u];
                if (taken[u] || !(live[up->target] || (train && !up->on_read)))
                    continue;
                taken[u] = 1;
                live[up->value] = live[up->target] = 1;
                roots[n_roots++] = up->value;
                roots[n_roots++] = up->target;
                more = true;
            }
        }
        free(taken);
        free(live);
    }
    pg1 = kiln_rebuild(g, roots, n_roots, map1, &p->err);
    if (!pg1) {
        st = p->err.status;
        goto out;
    }
    /* 2. Parameters (in graph order) and their gradients. */
    int n_params = 0;
    params = malloc(sizeof(int32_t) * ((size_t)pg1->n_nodes + 1));
    grads = malloc(sizeof(int32_t) * ((size_t)pg1->n_nodes + 1));
    if (!params || !grads) {
        st = fail(p, KILN_ERR_NOMEM, "compile: no memory");
        goto out;
    }
    for (int32_t id = 0; id < pg1->n_nodes; id++) {
        kiln_node_rec *r = &pg1->nodes[id];
        if (r->op != KILN_OP_PARAM && r->op != KILN_OP_STATE)
            continue;
        if (!kiln_param_data(r->param)) {
            st = fail(p, KILN_ERR_STATE, "%s %s%s%s is not allocated: apply or allocate its brick first",
                      r->op == KILN_OP_PARAM ? "parameter" : "state", kiln_param_owner(r->param),
                      *kiln_param_owner(r->param) ? "." : "", kiln_param_name(r->param));
            goto out;
        }
        if (r->op == KILN_OP_PARAM)
            params[n_params++] = id;
    }
    if (train && kiln_autodiff(pg1, map1[o->cost.id], params, n_params, grads) != KILN_OK) {
        st = kiln_err_copy(&p->err, &pg1->err, "gradient of the cost: ");
        goto out;
    }
    /* 3. The step rule's updates, as IR. */
    kiln_steprule_request rq = {.rule = &o->step_rule, .weight_modifiers = o->weight_modifiers,
                                .n_weight_modifiers = o->n_weight_modifiers,
                                .gradient_modifiers = o->gradient_modifiers,
                                .n_gradient_modifiers = o->n_gradient_modifiers,
                                .gradient_norm = p->wants_norm[0], .step_norm = p->wants_norm[1]};
    if (train && (st = kiln_steprule_build(pg1, &rq, params, grads, n_params, &p->rule, &p->err)))
        goto out;
    /* 4. Rebuild with gradients, parameters and every update as roots. */
    int n_up = (train ? p->rule.n_updates : 0) + pg1->n_updates;
    roots2 = malloc(sizeof(int32_t) * (size_t)(n_roots + 2 * n_params + 2 * n_up + 3));
    map2 = malloc(sizeof(int32_t) * ((size_t)pg1->n_nodes + 1));
    ups = calloc((size_t)n_up + 1, sizeof *ups);
    if (!roots2 || !map2 || !ups) {
        st = fail(p, KILN_ERR_NOMEM, "compile: no memory");
        goto out;
    }
    int n2 = 0;
    for (int i = 0; i < n_value_roots; i++)
        roots2[n2++] = map1[roots[i]];
    for (int i = 0; train && i < n_params; i++)
        roots2[n2++] = grads[i];
    for (int i = 0; i < n_params; i++) /* keep every parameter in its slot */
        roots2[n2++] = params[i];
    for (int i = 0; train && i < p->rule.n_updates; i++) {
        roots2[n2++] = p->rule.updates[i].target;
        roots2[n2++] = p->rule.updates[i].value;
    }
    for (int i = 0; i < pg1->n_updates; i++) {
        roots2[n2++] = pg1->updates[i].target;
        roots2[n2++] = pg1->updates[i].value;
    }
    int32_t norms[2] = {train ? p->rule.gradient_norm : -1, train ? p->rule.step_norm : -1};
    for (int k = 0; k < 2; k++)
        if (norms[k] >= 0)
            roots2[n2++] = norms[k];
    p->pg = kiln_rebuild(pg1, roots2, n2, map2, &p->err);
    if (!p->pg) {
        st = p->err.status;
        goto out;
    }
    for (int i = 0; i < n_params; i++) {
        params[i] = map2[params[i]];
        grads[i] = train ? map2[grads[i]] : -1;
    }
    int nu = 0;
    for (int i = 0; train && i < p->rule.n_updates; i++)
        ups[nu++] = (kiln_plan_update){map2[p->rule.updates[i].target], map2[p->rule.updates[i].value], true};
    for (int i = 0; i < p->pg->n_updates; i++) {
        const kiln_update *u = &p->pg->updates[i];
        for (int j = 0; j < nu; j++)
            if (ups[j].target == u->target) {
                const kiln_node_rec *t = &p->pg->nodes[u->target];
                st = fail(p, KILN_ERR_ARG, "%s%s%s has an update in the graph and one from the step rule",
                          t->owner ? t->owner : "", t->owner ? "." : "", t->name ? t->name : "?");
                goto out;
            }
        if (!u->on_read && !train)
            continue; /* a training update, and this program does not train */
        ups[nu++] = (kiln_plan_update){u->target, u->value, !u->on_read};
    }
    p->learning_rate = train && p->rule.learning_rate >= 0 ? map2[p->rule.learning_rate] : -1;
    for (int k = 0; k < 2; k++)
        p->norms[k] = norms[k] >= 0 ? map2[norms[k]] : -1;
    for (int h = 0; train && h < p->rule.n_hypers; h++)
        p->rule.hypers[h].node = map2[p->rule.hypers[h].node];
    for (int32_t u = 0; u < g->n_nodes; u++)
        p->map[u] = map1[u] >= 0 ? map2[map1[u]] : -1;
    out->params = params;
    out->grads = grads;
    out->n_params = n_params;
    out->updates = ups;
    out->n_updates = nu;
    params = grads = NULL;
    ups = NULL;
out:
    free(roots);
    free(roots2);
    free(map1);
    free(map2);
    free(params);
    free(grads);
    free(ups);
    kiln_graph_destroy(pg1);
    return st;
}

/* Whether an executable `name` is on $PATH. */
static bool have_program(const char *name)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/bin:/bin";
    char buf[4096];
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && kiln_snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, name) == 0 &&
            access(buf, X_OK) == 0)
            return true;
        path += n + (path[n] == ':');
    }
    return false;
}

static enum kiln_status write_source_file(kiln_program *p, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return fail(p, KILN_ERR_IO, "%s: cannot write the generated source: %s", path, strerror(errno));
    size_t n = strlen(p->source);
    bool ok = fwrite(p->source, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        return fail(p, KILN_ERR_IO, "%s: writing the generated source failed: %s", path, strerror(errno));
    return KILN_OK;
}

/* The executor's look-up of the unit's symbols (executor.h). */
static void *jit_lookup(void *jit, const char *name) { return kiln_jit_symbol(jit, name); }

/* The maxima of the symbols, from the options; B from max_batch unless
** max_size gives it. */
static enum kiln_status symbol_maxima(kiln_program *p, const kiln_compile_options *o, int64_t *max)
{
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++) {
        max[k] = o->max_size[k];
        if (max[k] < 0 || max[k] > (INT64_C(1) << 32))
            return fail(p, KILN_ERR_ARG, "max_size[%d] is %lld, outside [0, 2^32]", k, (long long)max[k]);
    }
    p->max_batch = max[0] ? max[0] : o->max_batch ? o->max_batch : DEFAULT_MAX_BATCH;
    if (p->max_batch < 1 || p->max_batch > (1 << 24))
        return fail(p, KILN_ERR_ARG, "max_batch %lld outside [1, %d]", (long long)p->max_batch, 1 << 24);
    max[0] = p->max_batch;
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        p->sizes[k] = max[k] ? 1 : 0;
    return KILN_OK;
}

/* Copy the store's values into the arena for plan state i (converted). */
static void state_in(kiln_program *p, int i);

/* Blocks' names of GradientDescent's total norms (compile.h). */
static const char *const NORM_NAMES[2] = {"total_gradient_norm", "total_step_norm"};

/* 0 or 1 for KILN_TOTAL_GRADIENT_NORM or KILN_TOTAL_STEP_NORM, else -1. */
static int norm_index(kiln_node n)
{
    return n.id == KILN_TOTAL_GRADIENT_NORM.id ? 0 : n.id == KILN_TOTAL_STEP_NORM.id ? 1 : -1;
}

/* Are the generated loops built for AVX2 + FMA? When the program's kernels
** are AVX2's or AVX-512's, or (kernels "blas") when the CPU has both. */
static bool generated_avx2(const kiln_program *p)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    const char *isa = kiln_program_isa(p);
    if (strcmp(isa, "avx2") == 0 || strcmp(isa, "avx512") == 0)
        return true;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)p;
    return false;
#endif
}

/* The generated loops in AVX2 where the CPU has it, in AVX-512 where the
** program's kernels are AVX-512's (docs/architecture.md, "Generated code's
** ISA"): no contraction into FMAs, so the bits are the baseline build's;
** the flags are part of the cache key. Into flags (room for
** KILN_CODEGEN_FLAGS_MAX); how many. */
static int codegen_flags(const kiln_program *p, const char **flags)
{
    int n = 0;
    flags[n++] = "-ffp-contract=off";
    if (generated_avx2(p)) {
        flags[n++] = "-mavx2";
        flags[n++] = "-mfma";
        if (strcmp(kiln_program_isa(p), "avx512") == 0)
            flags[n++] = "-mavx512f";
    }
    return n;
}

bool kiln_program_get_build_facts(const kiln_program *p, kiln_program_build_facts *out)
{
    if (!p || !p->source || !p->planned || !p->arena)
        return false;
    memset(out, 0, sizeof *out);
    out->model = p->model;
    out->source = p->source;
    out->arena_bytes = p->emit.arena_bytes;
    out->gemm_n = p->emit.gemm_n;
    out->gemm_k = p->emit.gemm_k;
    out->fast_paths = !p->no_fast_paths;
    out->threads = p->threads;
    out->small_batch = p->small_batch;
    out->n_cflags = codegen_flags(p, out->cflags);
    out->params = p->params;
    return true;
}

static enum kiln_status compile(kiln_program *p, kiln_graph *g, const kiln_compile_options *o)
{
    enum kiln_status st;
    if ((st = check_model_name(p, o->name)))
        return st;
    if (g->err.status)
        return fail(p, g->err.status, "the graph has an error: %s", g->err.msg);
    /* kiln's kernels: the ISA asked for (options, else $KILN_ISA), else the
    ** best this CPU has; one it lacks is an error, not a silent fallback */
    const char *isa = o->isa ? o->isa : getenv("KILN_ISA");
    if (!kiln_kernel_set_of(isa, &p->kernels))
        return fail(p, KILN_ERR_ARG, "%s '%s': %s", o->isa ? "compile options: isa" : "KILN_ISA", isa,
                    strcmp(isa, "avx512") == 0 || strcmp(isa, "avx2") == 0
                        ? "this CPU lacks it"
                        : "expected avx512, avx2 or blas");
    if (o->n_monitors < 0 || o->n_outputs < 0 || (o->n_monitors && !o->monitors) || (o->n_outputs && !o->outputs))
        return fail(p, KILN_ERR_ARG, "compile options: bad monitors or outputs list");
    if (!kiln_node_ok(o->cost) && o->n_outputs == 0)
        return fail(p, KILN_ERR_ARG, "compile options: nothing to compute (no cost and no outputs)");
    if (kiln_node_ok(o->cost)) {
        if ((st = check_root(p, g, o->cost, "cost")))
            return st;
        if (g->nodes[o->cost.id].shape.rank != 0)
            return fail(p, KILN_ERR_SHAPE, "cost '%s' has rank %d: the cost must be a scalar",
                        kiln_graph_node_name(g, o->cost), g->nodes[o->cost.id].shape.rank);
    }
    for (int i = 0; i < o->n_monitors; i++)
        if ((st = check_root(p, g, o->monitors[i], "monitor")))
            return st;
    for (int i = 0; i < o->n_outputs; i++)
        if ((st = check_root(p, g, o->outputs[i], "output")))
            return st;
    for (int i = 0; i < o->n_monitors; i++)
        if (g->nodes[o->monitors[i].id].shape.rank != 0)
            return fail(p, KILN_ERR_SHAPE, "monitor '%s' has rank %d: monitored values are scalars",
                        kiln_graph_node_name(g, o->monitors[i]), g->nodes[o->monitors[i].id].shape.rank);
    int64_t max[KILN_MAX_SYMBOLS];
    if ((st = symbol_maxima(p, o, max)))
        return st;
    if (o->threads < 0 || o->threads > 1024 || o->small_batch < 0)
        return fail(p, KILN_ERR_ARG, "compile options: threads %d or small_batch %lld out of range", o->threads,
                    (long long)o->small_batch);
    if (o->guard_bytes < 0 || o->guard_bytes > 4096)
        return fail(p, KILN_ERR_ARG, "compile options: guard_bytes %lld outside [0, 4096]", (long long)o->guard_bytes);
    p->threads = o->threads;
    p->small_batch = o->small_batch;
    /* The configuration's fast_paths: false turns them off as the option does. */
    p->no_fast_paths = o->no_fast_paths;
    if (!p->no_fast_paths) {
        kiln_config *c = NULL;
        bool fast = true;
        st = kiln_config_load(&c);
        if (st == KILN_OK)
            st = kiln_config_get_bool(c, "fast_paths", &fast);
        if (st != KILN_OK)
            fail(p, st, "configuration: %s", kiln_config_errmsg(c));
        kiln_config_destroy(c);
        if (st != KILN_OK)
            return st;
        p->no_fast_paths = !fast;
    }

    /* Remember the user's names and what each node is to the program. */
    p->n_user = g->n_nodes;
    p->map = malloc(sizeof(int32_t) * ((size_t)g->n_nodes + 1));
    p->user_names = calloc((size_t)g->n_nodes + 1, sizeof *p->user_names);
    p->role = calloc((size_t)g->n_nodes + 1, 1);
    if (!p->map || !p->user_names || !p->role)
        return fail(p, KILN_ERR_NOMEM, "compile: no memory");
    if (kiln_node_ok(o->cost))
        p->role[o->cost.id] |= 1;
    for (int i = 0; i < o->n_monitors; i++)
        p->role[o->monitors[i].id] |= 2;
    for (int i = 0; i < o->n_outputs; i++)
        p->role[o->outputs[i].id] |= 4;
    for (int32_t u = 0; u < g->n_nodes; u++)
        if (p->role[u] && g->nodes[u].name && !(p->user_names[u] = kiln_strdup(g->nodes[u].name)))
            return fail(p, KILN_ERR_NOMEM, "compile: no memory");

    /* Steps 1-4. */
    built_graph bg = {0};
    if ((st = build_graph(p, g, o, &bg))) {
        built_free(&bg);
        return st;
    }

    /* Step 5: plan and generate. */
    int32_t cost = kiln_node_ok(o->cost) ? p->map[o->cost.id] : -1;
    int32_t *mon = malloc(sizeof(int32_t) * (size_t)(o->n_monitors + 1));
    int32_t *outs = malloc(sizeof(int32_t) * (size_t)(o->n_outputs + 1));
    if (!mon || !outs) {
        free(mon);
        free(outs);
        built_free(&bg);
        return fail(p, KILN_ERR_NOMEM, "compile: no memory");
    }
    for (int i = 0; i < o->n_monitors; i++)
        mon[i] = p->map[o->monitors[i].id];
    for (int i = 0; i < o->n_outputs; i++)
        outs[i] = p->map[o->outputs[i].id];
    int32_t norm_nodes[2];
    unsigned char norm_modes[2];
    int n_norms = 0;
    for (int k = 0; k < 2; k++)
        if (p->norms[k] >= 0) {
            norm_nodes[n_norms] = p->norms[k];
            /* the gradient norm needs the gradients, the step norm the step */
            norm_modes[n_norms++] = k == 0 ? KILN_MODE_GRADIENTS | KILN_MODE_TRAIN : KILN_MODE_TRAIN;
        }
    kiln_plan_request req = {.cost = cost, .monitors = mon, .n_monitors = o->n_monitors, .outputs = outs,
                             .train_values = norm_nodes, .train_modes = norm_modes, .n_train_values = n_norms,
                             .n_outputs = o->n_outputs, .params = bg.params, .grads = cost >= 0 ? bg.grads : NULL,
                             .n_params = bg.n_params, .updates = bg.updates, .n_updates = bg.n_updates,
                             .max_sizes = max, .guard = o->guard_bytes};
    st = kiln_plan_build(&p->plan, p->pg, &req, &p->err);
    p->monitors = mon; /* kept for kiln_program_get_roots */
    p->outputs = outs;
    p->n_monitors = o->n_monitors;
    p->n_outputs = o->n_outputs;
    built_free(&bg);
    if (st)
        return st;
    p->planned = true;
    if (!p->small_batch) { /* from the products' flops per example */
        double per_example = 0;
        for (int32_t id = 0; id < p->pg->n_nodes; id++) {
            const kiln_node_rec *r = &p->pg->nodes[id];
            if (r->op != KILN_OP_MATMUL || !p->plan.modes[id])
                continue;
            kiln_mono size, k;
            const kiln_node_rec *a = &p->pg->nodes[r->in[0]];
            if (!kiln_shape_size(p->pg, &r->shape, &size) ||
                !kiln_dim_mono(p->pg, a->shape.dims[a->shape.rank - (kiln_attr_trans_a(r) ? 2 : 1)], &k))
                continue;
            per_example += 2.0 * (double)size.c * (double)k.c;
        }
        p->small_batch = per_example > 0 ? (int64_t)(SMALL_STEP_FLOPS / per_example) + 1 : 1;
    }
    p->params = calloc((size_t)p->plan.n_params + 1, sizeof *p->params);
    p->uninit = calloc((size_t)p->plan.n_params + 1, sizeof *p->uninit);
    p->state_names = calloc((size_t)p->plan.n_states + 1, sizeof *p->state_names);
    if (!p->params || !p->uninit || !p->state_names)
        return fail(p, KILN_ERR_NOMEM, "compile: no memory");
    for (int i = 0; i < p->plan.n_params; i++)
        p->params[i] = p->pg->nodes[p->plan.param_node[i]].param;
    for (int i = 0; i < p->plan.n_states; i++) {
        kiln_param *sp = p->pg->nodes[p->plan.state_node[i]].param;
        const char *owner = kiln_param_owner(sp);
        size_t n = strlen(owner) + strlen(kiln_param_name(sp)) + 2;
        if (!(p->state_names[i] = malloc(n)))
            return fail(p, KILN_ERR_NOMEM, "compile: no memory");
        snprintf(p->state_names[i], n, "%s%s%s", owner, *owner ? "." : "", kiln_param_name(sp));
    }
    if (!(p->state_hyper = malloc(sizeof *p->state_hyper * ((size_t)p->plan.n_states + 1))))
        return fail(p, KILN_ERR_NOMEM, "compile: no memory");
    for (int i = 0; i < p->plan.n_states; i++) {
        p->state_hyper[i] = -1;
        for (int h = 0; h < p->rule.n_hypers; h++)
            if (p->rule.hypers[h].node == p->plan.state_node[i])
                p->state_hyper[i] = h;
    }

    kiln_emit_options eo = {.model = p->model, .has_forward = o->n_outputs > 0, .has_train = cost >= 0,
                            .no_fast_paths = p->no_fast_paths, .outputs = outs, .n_outputs = o->n_outputs,
                            .monitors = mon, .n_monitors = o->n_monitors};
    if ((st = kiln_emit_c(&p->plan, &eo, &p->source, &p->emit, &p->err)))
        return st;
    /* The plan's arena is checked (memplan.c); codegen adds the deferred
    ** updates' and the GEMM scratch slots after it (#9). */
    if (p->emit.arena_bytes < p->plan.arena_bytes || p->emit.arena_bytes > KILN_MAX_BYTES)
        return fail(p, KILN_ERR_SHAPE, "arena: %lld bytes (the plan's %lld and %lld for codegen's slots), more "
                    "than %lld", (long long)p->emit.arena_bytes, (long long)p->plan.arena_bytes,
                    (long long)(p->emit.arena_bytes - p->plan.arena_bytes), (long long)KILN_MAX_BYTES);
    const char *dump = o->source_path ? o->source_path : getenv("KILN_DUMP_SOURCE");
    if (dump && *dump && (st = write_source_file(p, dump)))
        return st;

    /* Step 6: compile, load, allocate, copy parameters and states in. The
    ** generated code gets BLAS through p->rt, so it links libm alone (half
    ** the link time). */
    kiln_exec_cpu_runtime(&p->rt, &p->kernels, !p->no_fast_paths);
    p->rt_small = p->rt;
    if (!p->no_fast_paths && p->kernels.sgemm_nn_own && p->kernels.sgemm_tn_own) {
        p->rt_small.sgemm_nn = p->kernels.sgemm_nn_own;
        p->rt_small.sgemm_tn = p->kernels.sgemm_tn_own;
    }
    const char *link[2 + KILN_CODEGEN_FLAGS_MAX];
    int n_link = 0;
    if (have_program("ld.gold")) /* links a small library ~10 ms faster than ld.bfd */
        link[n_link++] = "-fuse-ld=gold";
    link[n_link++] = "-lm";
    n_link += codegen_flags(p, link + n_link);
    kiln_jit_options jo = {.cc = o->cc, .cache_dir = o->cache_dir, .link_args = link, .n_link_args = n_link};
    st = kiln_jit_load(p->source, strlen(p->source), &jo, &p->jit);
    if (st)
        return fail(p, st, "%s", p->jit ? kiln_jit_errmsg(p->jit) : "out of memory");
    /* The executor finds the manifest and the entry points, checks them,
    ** allocates the arena and runs init. */
    kiln_exec_config xc = {.lookup = jit_lookup, .lib = p->jit, .model = p->model, .rt = &p->rt};
    if ((st = kiln_exec_open(&xc, &p->exec)))
        return fail(p, st, "%s", kiln_exec_errmsg(p->exec));
    if (kiln_exec_manifest(p->exec)->arena_bytes != p->emit.arena_bytes)
        return fail(p, KILN_ERR_COMPILE, "the unit's manifest says %lld arena bytes, codegen %lld",
                    (long long)kiln_exec_manifest(p->exec)->arena_bytes, (long long)p->emit.arena_bytes);
    p->entries = kiln_exec_manifest(p->exec)->entries;
    p->arena = kiln_exec_arena(p->exec);
    /* BLAS threads: set once, here, when the options ask (docs/architecture.md,
    ** "BLAS threads"); a step never changes them (#12). */
    if (p->threads > 0 && openblas_set_num_threads && openblas_get_num_threads &&
        openblas_get_num_threads() != p->threads)
        openblas_set_num_threads(p->threads);
    for (int i = 0; i < p->plan.n_states; i++)
        state_in(p, i);
    return kiln_program_load_params(p);
}

enum kiln_status kiln_compile(kiln_graph *g, const kiln_compile_options *o, kiln_program **out)
{
    if (!out)
        return KILN_ERR_ARG;
    kiln_program *p = calloc(1, sizeof *p);
    *out = p;
    if (!p)
        return KILN_ERR_NOMEM;
    kiln_refs_init(&p->refs);
    p->learning_rate = -1;
    if (!g || !o)
        return fail(p, KILN_ERR_ARG, "kiln_compile: %s is NULL", g ? "options" : "graph");
    /* The total norms are asked for among the monitors; the others are the
    ** graph's values. */
    kiln_compile_options values = *o;
    kiln_node *mons = NULL;
    p->norms[0] = p->norms[1] = -1;
    if (o->n_monitors > 0 && o->monitors) {
        if (!(mons = malloc(sizeof *mons * (size_t)o->n_monitors)))
            return fail(p, KILN_ERR_NOMEM, "compile: no memory");
        values.monitors = mons;
        values.n_monitors = 0;
        for (int i = 0; i < o->n_monitors; i++) {
            int k = norm_index(o->monitors[i]);
            if (k >= 0)
                p->wants_norm[k] = true;
            else
                mons[values.n_monitors++] = o->monitors[i];
        }
    }
    enum kiln_status st;
    if ((p->wants_norm[0] || p->wants_norm[1]) && !kiln_node_ok(o->cost))
        st = fail(p, KILN_ERR_ARG, "monitor %s: the training step computes it, and there is no cost",
                  NORM_NAMES[p->wants_norm[0] ? 0 : 1]);
    else
        st = compile(p, g, &values);
    free(mons);
    if (st)
        p->entries = 0;
    return st;
}

enum kiln_status kiln_program_write_graph(kiln_program *p, FILE *f, bool dot)
{
    if (!p)
        return KILN_ERR_ARG;
    if (!p->planned)
        return fail(p, KILN_ERR_STATE, "write_graph: the program was not compiled");
    if (!f)
        return fail(p, KILN_ERR_ARG, "write_graph: the file is NULL");
    /* every update the program runs: the step rule's and the graph's */
    int n = p->plan.n_updates;
    kiln_update *ups = malloc(sizeof *ups * ((size_t)n + 1));
    enum kiln_status st = KILN_ERR_NOMEM;
    if (ups) {
        for (int u = 0; u < n; u++)
            ups[u] = (kiln_update){p->plan.updates[u].target, p->plan.updates[u].value, !p->plan.updates[u].train_only};
        st = kiln_graph_print(p->pg, ups, n, f, dot);
    }
    free(ups);
    if (st == KILN_ERR_NOMEM)
        return fail(p, st, "write_graph: no memory");
    if (st)
        return fail(p, st, "write_graph: writing the program graph failed");
    return KILN_OK;
}

/* ---- inputs and steps ------------------------------------------------------ */

int kiln_program_input_count(const kiln_program *p) { return p && p->planned ? p->plan.n_inputs : 0; }

static const kiln_node_rec *input_rec(const kiln_program *p, int i)
{
    if (!p || !p->planned || i < 0 || i >= p->plan.n_inputs)
        return NULL;
    return &p->pg->nodes[p->plan.input_node[i]];
}

const char *kiln_program_input_name(const kiln_program *p, int i)
{
    const kiln_node_rec *r = input_rec(p, i);
    return r && r->name ? r->name : "";
}

enum kiln_dtype kiln_program_input_dtype(const kiln_program *p, int i)
{
    const kiln_node_rec *r = input_rec(p, i);
    return r ? r->dtype : KILN_DTYPE_F32;
}

int64_t kiln_program_input_example_size(const kiln_program *p, int i)
{
    const kiln_node_rec *r = input_rec(p, i);
    return r ? kiln_shape_const_size(p->pg, &r->shape) : 0;
}

bool kiln_program_input_batched(const kiln_program *p, int i)
{
    const kiln_node_rec *r = input_rec(p, i);
    return r && kiln_shape_has_symbol(p->pg, &r->shape, KILN_BATCH);
}

bool kiln_program_input_batch_first(const kiln_program *p, int i)
{
    const kiln_node_rec *r = input_rec(p, i);
    if (!r)
        return false;
    for (int k = 0; k < r->shape.rank; k++)
        if (r->shape.dims[k] < 0 && !(k == 0 && r->shape.dims[k] == KILN_BATCH))
            return false;
    return true;
}

bool kiln_program_input_time_major(const kiln_program *p, int i)
{
    const kiln_node_rec *r = input_rec(p, i);
    if (!r || r->shape.rank < 2 || r->shape.dims[0] != KILN_TIME || r->shape.dims[1] != KILN_BATCH)
        return false;
    for (int k = 2; k < r->shape.rank; k++)
        if (r->shape.dims[k] < 0)
            return false;
    return true;
}

const char *kiln_program_input_shape_str(const kiln_program *p, int i, char *buf, size_t cap)
{
    const kiln_node_rec *r = input_rec(p, i);
    if (!buf || cap == 0)
        return "";
    if (!r)
        snprintf(buf, cap, "?");
    else
        kiln_shape_str(p->pg, &r->shape, buf, cap);
    return buf;
}

/* Bind input name to data holding count elements (-1: unknown). */
static enum kiln_status bind(kiln_program *p, const char *what, const char *name, const void *data, int64_t count)
{
    if (!p)
        return KILN_ERR_ARG;
    if (!name || !data)
        return fail(p, KILN_ERR_ARG, "%s: %s is NULL", what, name ? "data" : "name");
    if (!p->exec || !kiln_exec_manifest(p->exec))
        return fail(p, KILN_ERR_NOT_FOUND, "no program input is named '%s' (inputs: none)", name);
    enum kiln_status st = kiln_exec_bind(p->exec, name, data, count);
    return st ? fail(p, st, "%s", kiln_exec_errmsg(p->exec)) : KILN_OK;
}

enum kiln_status kiln_program_bind_input(kiln_program *p, const char *name, const void *data)
{
    return bind(p, "kiln_program_bind_input", name, data, -1);
}

enum kiln_status kiln_program_bind_input_n(kiln_program *p, const char *name, const void *data, int64_t count)
{
    if (p && count < 1)
        return fail(p, KILN_ERR_ARG, "kiln_program_bind_input_n: input '%s' bound to %lld elements, expected "
                    "at least 1", name ? name : "(null)", (long long)count);
    return bind(p, "kiln_program_bind_input_n", name, data, count);
}

enum kiln_status kiln_program_set_size(kiln_program *p, int64_t symbol, int64_t size)
{
    if (!p)
        return KILN_ERR_ARG;
    int k = kiln_dim_symbol(symbol);
    if (!p->planned)
        return fail(p, KILN_ERR_STATE, "kiln_program_set_size: the program was not compiled");
    if (k < 1)
        return fail(p, KILN_ERR_ARG, "kiln_program_set_size: %lld is not a symbol other than the batch (steps "
                                     "take the batch size)", (long long)symbol);
    const char *name = p->pg->symbol_names[k] ? p->pg->symbol_names[k] : "?";
    if (!p->plan.max_sizes[k])
        return fail(p, KILN_ERR_ARG, "symbol %s: no value of this program has it", name);
    if (size < 1 || size > p->plan.max_sizes[k])
        return fail(p, KILN_ERR_ARG, "symbol %s: size %lld, expected 1 to %lld (its maximum)", name, (long long)size,
                    (long long)p->plan.max_sizes[k]);
    p->sizes[k] = size;
    if (p->exec && kiln_exec_set_size(p->exec, k, size))
        return fail(p, KILN_ERR_ARG, "%s", kiln_exec_errmsg(p->exec));
    return KILN_OK;
}

/* A generated entry point reported an index out of range: say which. */
static enum kiln_status bad_index(kiln_program *p, int64_t code)
{
    int32_t node = KILN_CODEGEN_ERR_NODE(code);
    int64_t row = KILN_CODEGEN_ERR_ROW(code);
    if (node >= 0 && node < p->pg->n_nodes && p->pg->nodes[node].op == KILN_OP_SCAN)
        return fail(p, KILN_ERR_ARG, "scan node %d: an index read in its step at position %lld is out of range",
                    (int)node, (long long)row);
    if (node < 0 || node >= p->pg->n_nodes || p->pg->nodes[node].n_in < 2)
        return fail(p, KILN_ERR_ARG, "generated code failed with code %lld", (long long)code);
    const kiln_node_rec *r = &p->pg->nodes[node];
    const kiln_node_rec *idx = &p->pg->nodes[r->in[1]];
    const kiln_node_rec *a = &p->pg->nodes[r->in[0]];
    int64_t k = r->op == KILN_OP_GATHER ? a->shape.dims[0]
              : r->op == KILN_OP_SCATTER_ADD ? r->shape.dims[0]
                                             : a->shape.dims[a->shape.rank - 1];
    const char *what = r->op == KILN_OP_GATHER || r->op == KILN_OP_SCATTER_ADD ? "position" : "row";
    if (idx->op == KILN_OP_INPUT) {
        for (int i = 0; i < p->plan.n_inputs; i++)
            if (p->plan.input_node[i] == r->in[1] && kiln_exec_bound(p->exec, i))
                return fail(p, KILN_ERR_ARG, "%s: value %d at %s %lld of the batch is outside [0, %lld)",
                            idx->name ? idx->name : "index", (int)((const int32_t *)kiln_exec_bound(p->exec, i))[row], what,
                            (long long)row, (long long)k);
    }
    return fail(p, KILN_ERR_ARG, "node %d (%s): index at %s %lld is outside [0, %lld)", (int)node,
                kiln_op_info_of(r->op)->name, what, (long long)row, (long long)k);
}

/* Guards (kiln_compile_options.guard_bytes): each stored value of a zone
** has guard bytes per unit after it. fill sets them, check finds the first
** value whose guard was written. */
static void guards(kiln_program *p, const int64_t *sizes, bool fill, int32_t *bad)
{
    const kiln_plan *pl = &p->plan;
    *bad = -1;
    if (!pl->guard)
        return;
    for (int32_t id = 0; id < pl->n; id++) {
        const kiln_buffer *b = &pl->buf[id];
        if (pl->alias[id] != id || (b->zone != KILN_ZONE_VALUE && b->zone != KILN_ZONE_PARAM &&
                                    b->zone != KILN_ZONE_GRAD && b->zone != KILN_ZONE_STATE))
            continue;
        int64_t units = b->zone == KILN_ZONE_VALUE ? kiln_mono_eval(&pl->zones[b->z].unit, sizes) : 1;
        unsigned char *at = (unsigned char *)p->arena + kiln_plan_arena_offset(pl, id, sizes) +
                            kiln_plan_value_bytes(pl, id, sizes);
        int64_t n = pl->guard * units;
        for (int64_t i = 0; i < n; i++) {
            if (fill)
                at[i] = GUARD_BYTE;
            else if (at[i] != GUARD_BYTE) {
                *bad = id;
                return;
            }
        }
    }
}

/* Whether v[0..n) has a NaN: a parameter is NaN until initialised (store.c). */
static bool has_nan(const double *v, int64_t n)
{
    for (int64_t k = 0; v && k < n; k++)
        if (v[k] != v[k])
            return true;
    return false;
}

/* Never train garbage (#11): the parameters that were NaN when last loaded
** or set are listed, and a step fails naming them. */
static void note_uninitialised(kiln_program *p, int i, bool nan)
{
    p->n_uninit += (int)nan - (int)p->uninit[i];
    p->uninit[i] = nan;
}

static enum kiln_status fail_uninitialised(kiln_program *p, const char *what)
{
    char list[KILN_ERRMSG_MAX / 2] = "";
    size_t used = 0;
    for (int i = 0; i < p->plan.n_params && used < sizeof list; i++)
        if (p->uninit[i]) {
            const char *owner = kiln_param_owner(p->params[i]);
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s%s%s", used ? ", " : "", owner,
                                     *owner ? "." : "", kiln_param_name(p->params[i]));
        }
    return fail(p, KILN_ERR_STATE, "%s: %d parameter%s not initialised (NaN values): %s; initialise the bricks "
                "(kiln_brick_initialize) or give values (kiln_param_set_values) before compiling or "
                "kiln_program_load_params, or set them in the program (kiln_program_set_param)", what, p->n_uninit,
                p->n_uninit > 1 ? "s are" : " is", list);
}

static enum kiln_status run(kiln_program *p, enum kiln_manifest_entry entry, unsigned mode, const char *what,
                           int64_t batch)
{
    if (!p)
        return KILN_ERR_ARG;
    if (!(p->entries & entry))
        return fail(p, KILN_ERR_STATE, "%s: this program has no %s entry point%s", what, what,
                    p->err.status ? " (compilation failed)" : (mode == KILN_MODE_FORWARD ? " (no outputs)" : " (no cost)"));
    if (batch < 1 || batch > p->max_batch)
        return fail(p, KILN_ERR_ARG, "%s: batch of %lld examples, expected 1 to %lld (max_batch)", what,
                    (long long)batch, (long long)p->max_batch);
    if (p->n_uninit)
        return fail_uninitialised(p, what);
    int64_t sizes[KILN_MAX_SYMBOLS];
    memcpy(sizes, p->sizes, sizeof sizes);
    sizes[0] = batch;
    int32_t bad;
    guards(p, sizes, true, &bad);
    /* kiln's kernels are single-threaded: they take the products of a step
    ** that BLAS would run on one thread (a small batch, or BLAS set to one),
    ** and of a batch of at most 32 rows where they beat OpenBLAS on two
    ** (784-500-10 at batch 32: 0.55-0.63 against 0.64-0.71 ms); else every
    ** product goes to the BLAS. The BLAS's thread count is read, never set
    ** here (#12). */
    int blas = openblas_get_num_threads ? openblas_get_num_threads() : 1;
    bool small = batch < p->small_batch;
    bool own = small || blas <= 1 ||
               (p->rt.sgemm_nn && batch <= KILN_CODEGEN_GEMM_ROWS &&
                p->kernels.nn_wins((int)batch, p->emit.gemm_n, p->emit.gemm_k));
    kiln_codegen_runtime threaded = p->rt;
    threaded.sgemm_nn = NULL;
    threaded.sgemm_tn = NULL;
    threaded.pack_nn = NULL;
    threaded.sgemm_nn_packed = NULL;
    kiln_exec_set_runtime(p->exec, !own ? &threaded : small && blas > 1 ? &p->rt_small : &p->rt);
    int64_t code = 0;
    enum kiln_status st = kiln_exec_run(p->exec, entry, batch, what, &code);
    kiln_exec_set_runtime(p->exec, &p->rt);
    if (code)
        return bad_index(p, code);
    if (st)
        return fail(p, st, "%s", kiln_exec_errmsg(p->exec));
    guards(p, sizes, false, &bad);
    if (bad >= 0) {
        const kiln_node_rec *r = &p->pg->nodes[bad];
        return fail(p, KILN_ERR_STATE, "%s wrote past node %d (%s%s%s): its guard bytes changed", what, (int)bad,
                    kiln_op_info_of(r->op)->name, r->name ? " " : "", r->name ? r->name : "");
    }
    p->last_mode = mode;
    memcpy(p->last_sizes, sizes, sizeof sizes);
    kiln_err_clear(&p->err);
    return KILN_OK;
}

enum kiln_status kiln_program_forward(kiln_program *p, int64_t batch)
{
    return run(p, KILN_MANIFEST_FORWARD, KILN_MODE_FORWARD, "forward", batch);
}
enum kiln_status kiln_program_eval_step(kiln_program *p, int64_t batch)
{
    return run(p, KILN_MANIFEST_EVAL_STEP, KILN_MODE_EVAL, "eval_step", batch);
}
enum kiln_status kiln_program_train_step(kiln_program *p, int64_t batch)
{
    if (p)
        p->grads_fresh = false; /* fused updates leave some gradient slots stale */
    return run(p, KILN_MANIFEST_TRAIN_STEP, KILN_MODE_TRAIN, "train_step", batch);
}
enum kiln_status kiln_program_gradients(kiln_program *p, int64_t batch)
{
    enum kiln_status st = run(p, KILN_MANIFEST_GRADIENTS, KILN_MODE_GRADIENTS, "gradients", batch);
    if (p)
        p->grads_fresh = st == KILN_OK;
    return st;
}

/* ---- reading values ---------------------------------------------------------- */

/* The parameter slab as of the last step: a batch-1 train_step may leave
** its weight updates deferred in the arena (emit_c.c, plan_deferred). */
static void flush_params(kiln_program *p)
{
    kiln_exec_flush(p->exec);
}

const char *kiln_program_arena(kiln_program *p)
{
    if (!p || !p->arena)
        return NULL;
    flush_params(p);
    return p->arena;
}

kiln_err *kiln_program_err(kiln_program *p) { return p ? &p->err : NULL; }

static void convert_out(double *dst, const void *src, enum kiln_dtype t, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = t == KILN_DTYPE_F32 ? ((const float *)src)[i]
               : t == KILN_DTYPE_F64 ? ((const double *)src)[i]
                                     : ((const int32_t *)src)[i];
}

static void convert_in(void *dst, const double *src, enum kiln_dtype t, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (t == KILN_DTYPE_F32)
            ((float *)dst)[i] = (float)src[i];
        else if (t == KILN_DTYPE_F64)
            ((double *)dst)[i] = src[i];
        else
            ((int32_t *)dst)[i] = (int32_t)src[i];
    }
}

const char *kiln_program_node_name(const kiln_program *p, kiln_node n)
{
    int k = norm_index(n);
    if (p && k >= 0 && p->norms[k] >= 0)
        return NORM_NAMES[k];
    if (!p || n.id < 0 || n.id >= p->n_user || !p->user_names || !p->user_names[n.id])
        return "";
    return p->user_names[n.id];
}

/* The program node of value n (the cost, a monitor, an output, a total
** norm), or -1. */
static int32_t value_node(const kiln_program *p, kiln_node n)
{
    int k = norm_index(n);
    if (!p || !p->map)
        return -1;
    if (k >= 0)
        return p->norms[k];
    return n.id >= 0 && n.id < p->n_user && p->role && p->role[n.id] ? p->map[n.id] : -1;
}

bool kiln_program_has_value(const kiln_program *p, kiln_node n) { return value_node(p, n) >= 0; }

enum kiln_status kiln_program_read(kiln_program *p, kiln_node n, double *dst, int64_t count)
{
    if (!p)
        return KILN_ERR_ARG;
    if (!kiln_program_has_value(p, n))
        return fail(p, KILN_ERR_ARG, "node %d is not the cost, a monitor or an output of this program", (int)n.id);
    if (!p->last_mode)
        return fail(p, KILN_ERR_STATE, "no step has run yet");
    int32_t id = value_node(p, n);
    if (!(p->plan.modes[id] & p->last_mode))
        return fail(p, KILN_ERR_STATE, "'%s' is not computed by the last entry point run",
                    kiln_program_node_name(p, n));
    const kiln_node_rec *r = &p->pg->nodes[id];
    kiln_mono m;
    kiln_shape_size(p->pg, &r->shape, &m);
    int64_t want = kiln_mono_eval(&m, p->last_sizes);
    if (count != want)
        return fail(p, KILN_ERR_ARG, "read of '%s': count %lld, the value has %lld elements",
                    kiln_program_node_name(p, n), (long long)count, (long long)want);
    if (!dst && count > 0)
        return fail(p, KILN_ERR_ARG, "read of '%s': the buffer is NULL", kiln_program_node_name(p, n));
    const kiln_buffer *b = &p->plan.buf[p->plan.alias[id]];
    const void *src;
    if (b->zone == KILN_ZONE_INPUT)
        src = kiln_exec_bound(p->exec, b->index);
    else if (b->zone == KILN_ZONE_NONE)
        return fail(p, KILN_ERR_STATE, "'%s' is not stored", kiln_program_node_name(p, n));
    else {
        if (b->zone == KILN_ZONE_PARAM)
            flush_params(p);
        src = p->arena + kiln_plan_arena_offset(&p->plan, id, p->last_sizes);
    }
    convert_out(dst, src, r->dtype, count);
    return KILN_OK;
}

enum kiln_status kiln_program_read_scalar(kiln_program *p, kiln_node n, double *out)
{
    return kiln_program_read(p, n, out, 1);
}

/* Param index of user node n, or -1 with the error set. */
static int param_index(kiln_program *p, kiln_node n)
{
    if (!p->planned || n.id < 0 || n.id >= p->n_user || p->map[n.id] < 0) {
        fail(p, KILN_ERR_ARG, "node %d is not a parameter of this program", (int)n.id);
        return -1;
    }
    for (int i = 0; i < p->plan.n_params; i++)
        if (p->plan.param_node[i] == p->map[n.id])
            return i;
    fail(p, KILN_ERR_ARG, "node %d is not a parameter of this program", (int)n.id);
    return -1;
}

static enum kiln_status param_access(kiln_program *p, kiln_node n, const void *buf, int64_t count, bool grad,
                                     char **at, int *idx)
{
    int i = param_index(p, n);
    if (i < 0)
        return p->err.status;
    const kiln_node_rec *r = &p->pg->nodes[p->plan.param_node[i]];
    int64_t size = kiln_shape_const_size(p->pg, &r->shape);
    if (count != size)
        return fail(p, KILN_ERR_ARG, "parameter %s: count %lld, it has %lld elements", r->name ? r->name : "?",
                    (long long)count, (long long)size);
    if (!buf && count > 0)
        return fail(p, KILN_ERR_ARG, "parameter %s: the buffer is NULL", r->name ? r->name : "?");
    if (!p->arena)
        return fail(p, KILN_ERR_STATE, "the program was not compiled");
    *at = p->arena + (grad ? p->plan.off_grads : 0) + p->plan.param_offset[i];
    *idx = i;
    flush_params(p);
    return KILN_OK;
}

enum kiln_status kiln_program_read_gradient(kiln_program *p, kiln_node param, double *dst, int64_t count)
{
    char *at;
    int i;
    if (!p)
        return KILN_ERR_ARG;
    enum kiln_status st = param_access(p, param, dst, count, true, &at, &i);
    if (st)
        return st;
    if (!p->grads_fresh)
        return fail(p, KILN_ERR_STATE, "no gradients: run kiln_program_gradients first (train_step applies "
                                       "updates inside the gradient products and keeps no gradients)");
    convert_out(dst, at, p->pg->floatx, count);
    return KILN_OK;
}

enum kiln_status kiln_program_get_param(kiln_program *p, kiln_node param, double *dst, int64_t count)
{
    char *at;
    int i;
    if (!p)
        return KILN_ERR_ARG;
    enum kiln_status st = param_access(p, param, dst, count, false, &at, &i);
    if (st)
        return st;
    convert_out(dst, at, p->pg->floatx, count);
    return KILN_OK;
}

enum kiln_status kiln_program_set_param(kiln_program *p, kiln_node param, const double *src, int64_t count)
{
    char *at;
    int i;
    if (!p)
        return KILN_ERR_ARG;
    enum kiln_status st = param_access(p, param, src, count, false, &at, &i);
    if (st)
        return st;
    convert_in(at, src, p->pg->floatx, count);
    note_uninitialised(p, i, has_nan(src, count));
    return KILN_OK;
}

/* A state's node, dtype, element count and place in the arena. */
static const kiln_node_rec *state_rec(const kiln_program *p, int i, int64_t *n, char **at)
{
    const kiln_node_rec *r = &p->pg->nodes[p->plan.state_node[i]];
    *n = kiln_shape_const_size(p->pg, &r->shape);
    *at = p->arena + p->plan.state_offset[i];
    return r;
}

static void state_in(kiln_program *p, int i)
{
    int64_t n;
    char *at;
    const kiln_node_rec *r = state_rec(p, i, &n, &at);
    const double *v = kiln_param_data(r->param);
    if (v)
        convert_in(at, v, r->dtype, n);
}

/* Only the graph's own states go back to their store entries: the step
** rule's belong to the program. */
static bool graph_state(const kiln_program *p, int i)
{
    const kiln_node_rec *r = &p->pg->nodes[p->plan.state_node[i]];
    return !(kiln_param_roles(r->param) & KILN_ROLE_ALGORITHM_STATE);
}

enum kiln_status kiln_program_load_params(kiln_program *p)
{
    if (!p)
        return KILN_ERR_ARG;
    if (!p->arena)
        return fail(p, KILN_ERR_STATE, "the program was not compiled");
    flush_params(p); /* so that no deferred update lands on the loaded values */
    for (int i = 0; i < p->plan.n_params; i++) {
        double *v = kiln_param_data(p->params[i]);
        const kiln_shape *s = kiln_param_shape(p->params[i]);
        if (!v)
            return fail(p, KILN_ERR_STATE, "parameter %s is no longer allocated", kiln_param_name(p->params[i]));
        if (!kiln_shape_equal(s, &p->pg->nodes[p->plan.param_node[i]].shape))
            return fail(p, KILN_ERR_SHAPE, "parameter %s changed shape since compilation (re-allocated?)",
                        kiln_param_name(p->params[i]));
    }
    for (int i = 0; i < p->plan.n_params; i++) {
        const double *v = kiln_param_data(p->params[i]);
        const kiln_shape *s = kiln_param_shape(p->params[i]);
        note_uninitialised(p, i, has_nan(v, kiln_shape_const_size(p->pg, s)));
        convert_in(p->arena + p->plan.param_offset[i], v, p->pg->floatx, kiln_shape_const_size(p->pg, s));
    }
    for (int i = 0; i < p->plan.n_states; i++)
        if (graph_state(p, i))
            state_in(p, i);
    return KILN_OK;
}

enum kiln_status kiln_program_store_params(kiln_program *p)
{
    if (!p)
        return KILN_ERR_ARG;
    if (!p->arena)
        return fail(p, KILN_ERR_STATE, "the program was not compiled");
    flush_params(p);
    for (int i = 0; i < p->plan.n_params; i++) {
        double *v = kiln_param_data(p->params[i]);
        const kiln_shape *s = kiln_param_shape(p->params[i]);
        if (!v || !kiln_shape_equal(s, &p->pg->nodes[p->plan.param_node[i]].shape))
            return fail(p, KILN_ERR_STATE, "parameter %s is no longer allocated as compiled",
                        kiln_param_name(p->params[i]));
        convert_out(v, p->arena + p->plan.param_offset[i], p->pg->floatx, kiln_shape_const_size(p->pg, s));
    }
    for (int i = 0; i < p->plan.n_states; i++) {
        int64_t n;
        char *at;
        const kiln_node_rec *r = state_rec(p, i, &n, &at);
        double *v = kiln_param_data(r->param);
        if (graph_state(p, i) && v)
            convert_out(v, at, r->dtype, n);
    }
    return KILN_OK;
}

kiln_node kiln_program_cost_node(const kiln_program *p)
{
    for (int32_t i = 0; p && p->role && i < p->n_user; i++)
        if (p->role[i] & 1)
            return (kiln_node){i};
    return KILN_NODE_NONE;
}

bool kiln_program_find_nonfinite_param(kiln_program *p, char *name, size_t cap, int64_t *element,
                                       double *value)
{
    if (!p || !p->planned || !p->arena)
        return false;
    flush_params(p);
    for (int i = 0; i < p->plan.n_params; i++) {
        const kiln_node_rec *r = &p->pg->nodes[p->plan.param_node[i]];
        int64_t n = kiln_shape_const_size(p->pg, &r->shape);
        const char *at = p->arena + p->plan.param_offset[i];
        for (int64_t k = 0; k < n; k++) {
            double v = p->pg->floatx == KILN_DTYPE_F32 ? ((const float *)at)[k] : ((const double *)at)[k];
            if (isfinite(v))
                continue;
            const char *owner = kiln_param_owner(p->params[i]);
            kiln_snprintf(name, cap, "%s%s%s", owner, *owner ? "." : "", kiln_param_name(p->params[i]));
            *element = k;
            *value = v;
            return true;
        }
    }
    return false;
}

int64_t kiln_program_param_floats(const kiln_program *p)
{
    int64_t n = 0;
    for (int i = 0; p && p->planned && i < p->plan.n_params; i++)
        n += kiln_shape_const_size(p->pg, &p->pg->nodes[p->plan.param_node[i]].shape);
    return n;
}

enum kiln_status kiln_program_set_learning_rate(kiln_program *p, double lr)
{
    if (!p)
        return KILN_ERR_ARG;
    if (!p->arena)
        return fail(p, KILN_ERR_STATE, "the program was not compiled");
    if (!(lr >= 0) || lr > 1e6)
        return fail(p, KILN_ERR_ARG, "learning rate %g outside [0, 1e6]", lr);
    int i = p->learning_rate >= 0 ? kiln_plan_state_index(&p->plan, p->learning_rate) : -1;
    if (i < 0)
        return fail(p, KILN_ERR_STATE, "this program's step rule has no learning rate");
    return kiln_program_set_state(p, i, &lr, 1);
}

int kiln_program_state_count(const kiln_program *p) { return p && p->planned ? p->plan.n_states : 0; }

const char *kiln_program_state_name(const kiln_program *p, int i)
{
    if (!p || !p->state_names || i < 0 || i >= p->plan.n_states)
        return "";
    return p->state_names[i];
}

int64_t kiln_program_state_size(const kiln_program *p, int i)
{
    if (!p || !p->planned || i < 0 || i >= p->plan.n_states)
        return 0;
    return kiln_shape_const_size(p->pg, &p->pg->nodes[p->plan.state_node[i]].shape);
}

static enum kiln_status state_access(kiln_program *p, int i, const void *buf, int64_t count, char **at,
                                     const kiln_node_rec **r)
{
    int64_t n;
    if (!p->arena)
        return fail(p, KILN_ERR_STATE, "the program was not compiled");
    if (i < 0 || i >= p->plan.n_states)
        return fail(p, KILN_ERR_ARG, "state %d: the program has %d states", i, p->plan.n_states);
    *r = state_rec(p, i, &n, at);
    if (count != n || (!buf && count > 0))
        return fail(p, KILN_ERR_ARG, "state %s: count %lld, it has %lld elements%s", p->state_names[i],
                    (long long)count, (long long)n, buf ? "" : " (and the buffer is NULL)");
    return KILN_OK;
}

enum kiln_status kiln_program_get_state(kiln_program *p, int i, double *dst, int64_t n)
{
    char *at = NULL;
    const kiln_node_rec *r = NULL;
    if (!p)
        return KILN_ERR_ARG;
    enum kiln_status st = state_access(p, i, dst, n, &at, &r);
    if (!st)
        convert_out(dst, at, r->dtype, n);
    return st;
}

enum kiln_status kiln_program_set_state(kiln_program *p, int i, const double *src, int64_t n)
{
    char *at = NULL;
    const kiln_node_rec *r = NULL;
    if (!p)
        return KILN_ERR_ARG;
    enum kiln_status st = state_access(p, i, src, n, &at, &r);
    if (!st && p->state_hyper[i] >= 0) { /* a hyperparameter: checked as at compile time */
        kiln_err e;
        if ((st = kiln_steprule_check(&p->rule.hypers[p->state_hyper[i]], src[0], &e)))
            return fail(p, st, "state %s: %s", p->state_names[i], e.msg);
    }
    if (!st)
        convert_in(at, src, r->dtype, n);
    return st;
}

/* Whether state name `full` is `name`, or ends in it after a '.' or '/'. */
static bool state_name_matches(const char *full, const char *name, bool exact)
{
    size_t nf = strlen(full), nn = strlen(name);
    if (exact || nn >= nf)
        return strcmp(full, name) == 0;
    return strcmp(full + nf - nn, name) == 0 && (full[nf - nn - 1] == '.' || full[nf - nn - 1] == '/');
}

int kiln_program_find_state(kiln_program *p, const char *name)
{
    if (!p)
        return -1;
    if (!p->planned || !p->state_names) {
        fail(p, KILN_ERR_STATE, "find_state: the program was not compiled");
        return -1;
    }
    if (!name || !*name) {
        fail(p, KILN_ERR_ARG, "find_state: the name is %s", name ? "empty" : "NULL");
        return -1;
    }
    for (int pass = 0; pass < 2; pass++) { /* the full name, then the end of one */
        int found = -1, count = 0;
        char list[512] = "";
        size_t used = 0;
        for (int i = 0; i < p->plan.n_states; i++)
            if (state_name_matches(p->state_names[i], name, pass == 0)) {
                found = i;
                count++;
                if (used < sizeof list)
                    used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", count > 1 ? ", " : "",
                                             p->state_names[i]);
            }
        if (count == 1)
            return found;
        if (count > 1) {
            fail(p, KILN_ERR_NOT_FOUND, "state '%s' is ambiguous: %s", name, list);
            return -1;
        }
    }
    char list[512] = "";
    size_t used = 0;
    for (int i = 0; i < p->plan.n_states && used < sizeof list; i++)
        if (p->state_hyper[i] >= 0)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", p->state_names[i]);
    fail(p, KILN_ERR_NOT_FOUND, "no state is named '%s' (hyperparameters: %s)", name, used ? list : "none");
    return -1;
}

/* The scalar state `name`, or -1 with the error on p. */
static int scalar_state(kiln_program *p, const char *name, const char *what)
{
    int i = kiln_program_find_state(p, name);
    if (i >= 0 && kiln_program_state_size(p, i) != 1) {
        fail(p, KILN_ERR_ARG, "%s: state %s has %lld values, not one", what, p->state_names[i],
             (long long)kiln_program_state_size(p, i));
        return -1;
    }
    return i;
}

enum kiln_status kiln_program_set_hyperparameter(kiln_program *p, const char *name, double value)
{
    if (!p)
        return KILN_ERR_ARG;
    int i = scalar_state(p, name, "set_hyperparameter");
    return i < 0 ? p->err.status : kiln_program_set_state(p, i, &value, 1);
}

enum kiln_status kiln_program_get_hyperparameter(kiln_program *p, const char *name, double *value)
{
    if (!p)
        return KILN_ERR_ARG;
    if (!value)
        return fail(p, KILN_ERR_ARG, "get_hyperparameter: value is NULL");
    int i = scalar_state(p, name, "get_hyperparameter");
    return i < 0 ? p->err.status : kiln_program_get_state(p, i, value, 1);
}

/* ---- slots, for checkpoints (program_internal.h) ----------------------------- */

int kiln_program_slot_count(const kiln_program *p, bool state)
{
    if (!p || !p->planned || !p->arena)
        return 0;
    return state ? p->plan.n_states : p->plan.n_params;
}

bool kiln_program_get_slot(kiln_program *p, bool state, int i, kiln_program_slot *out)
{
    if (i < 0 || i >= kiln_program_slot_count(p, state))
        return false;
    const kiln_node_rec *r = &p->pg->nodes[state ? p->plan.state_node[i] : p->plan.param_node[i]];
    const kiln_param *entry = state ? r->param : p->params[i];
    if (!state)
        flush_params(p);
    out->owner = kiln_param_owner(entry);
    out->name = kiln_param_name(entry);
    out->dtype = state ? r->dtype : p->pg->floatx;
    out->rank = r->shape.rank;
    memcpy(out->dims, r->shape.dims, sizeof out->dims);
    out->count = kiln_shape_const_size(p->pg, &r->shape);
    out->data = p->arena + (state ? p->plan.state_offset[i] : p->plan.param_offset[i]);
    return true;
}

enum kiln_status kiln_program_slot_check(kiln_program *p, bool state, int i, const void *v, kiln_err *err)
{
    if (!state || i < 0 || i >= kiln_program_slot_count(p, true) || p->state_hyper[i] < 0)
        return KILN_OK;
    double x;
    convert_out(&x, v, p->pg->nodes[p->plan.state_node[i]].dtype, 1);
    kiln_err e;
    enum kiln_status st = kiln_steprule_check(&p->rule.hypers[p->state_hyper[i]], x, &e);
    return st ? kiln_err_set(err, st, "state %s: %s", p->state_names[i], e.msg) : KILN_OK;
}

void kiln_program_slot_written(kiln_program *p, bool state, int i)
{
    if (state || i < 0 || i >= kiln_program_slot_count(p, false))
        return;
    const kiln_node_rec *r = &p->pg->nodes[p->plan.param_node[i]];
    int64_t n = kiln_shape_const_size(p->pg, &r->shape);
    const char *at = p->arena + p->plan.param_offset[i];
    bool nan = false;
    for (int64_t k = 0; k < n && !nan; k++)
        nan = p->pg->floatx == KILN_DTYPE_F32 ? ((const float *)at)[k] != ((const float *)at)[k]
                                               : ((const double *)at)[k] != ((const double *)at)[k];
    note_uninitialised(p, i, nan);
}

enum kiln_status kiln_program_fail_copy(kiln_program *p, const kiln_err *e)
{
    p->err = *e;
    return e->status;
}
