/* program.c: kiln_compile and running a compiled program.
**
** kiln_compile is the pipeline, in order:
**   1. copy what the cost, monitors and outputs need from the user's graph
**      into a program graph (folding, rewrites, CSE as nodes are added);
**   2. differentiate the cost with respect to every parameter (autodiff.c);
**   3. rebuild once more, so rewrites and dead-code elimination also see
**      the backward graph;
**   4. fuse and plan memory (memplan.c), generate C (codegen/emit_c.c);
**   5. compile and load it through the cache (jit.c), allocate the arena
**      (one allocation, sized for max_batch) and copy the parameters in.
** Running a step never allocates: inputs are bound by pointer and the
** generated code works inside the arena.
** The user's node handles are mapped to program-graph nodes (map[]); names
** shown to the user come from the user's graph as it was at compile time. */
#include <cblas.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/emit_c.h"
#include "compiler/autodiff.h"
#include "compiler/memplan.h"
#include "compiler/passes.h"
#include "kiln/compile.h"
#include "kiln_config.h"
#include "runtime/jit.h"
#include "runtime/kernels.h"

#define DEFAULT_MAX_BATCH 1024
/* Below this many GEMM flops a step runs BLAS on one thread (measured on 2
** cores: waking a helper costs more than it saves below ~50 MFLOP). */
#define SMALL_STEP_FLOPS 50e6

/* OpenBLAS's thread control, when the BLAS is OpenBLAS (weak: another CBLAS
** links too, and then threads are left alone). */
extern void openblas_set_num_threads(int) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));
#define MAX_MODEL_NAME 48

typedef int64_t (*entry_fn)(char *arena, const void *const *inputs, int64_t B, const kiln_codegen_runtime *rt);
typedef int64_t (*init_fn)(char *arena, int64_t bytes);
typedef int64_t (*flush_fn)(char *arena, const kiln_codegen_runtime *rt);

struct kiln_program {
    kiln_err err;
    kiln_graph *pg;           /* the program graph (owned) */
    kiln_plan plan;
    bool planned;
    char *source;
    kiln_jit *jit;
    entry_fn forward, eval_step, gradients, train_step;
    flush_fn flush;           /* applies deferred batch-1 updates (emit_c.h) */
    char *arena;
    kiln_emit_info emit;      /* arena size, the widest product given to rt.sgemm_nn */
    int32_t n_user;
    int32_t *map;             /* user node id -> program node id, or -1 */
    char **user_names;        /* names of the user's nodes at compile time */
    unsigned char *role;      /* per user node: 1 cost, 2 monitor, 4 output */
    kiln_param **params;      /* plan param i -> brick parameter */
    const void **bound;       /* per plan input */
    unsigned last_entry;      /* KILN_ENTRY_* of the last successful step */
    bool grads_fresh;         /* the grad slab holds the last kiln_program_gradients */
    int64_t last_batch;
    int64_t max_batch;
    char model[MAX_MODEL_NAME + 1];
    kiln_codegen_runtime rt; /* BLAS and kernels for the generated code */
    int threads;             /* BLAS threads for large batches, 0: leave as is */
    int64_t small_batch;     /* below it, BLAS runs on one thread */
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

void kiln_program_destroy(kiln_program *p)
{
    if (!p)
        return;
    if (p->user_names)
        for (int32_t i = 0; i < p->n_user; i++)
            free(p->user_names[i]);
    free(p->user_names);
    free(p->map);
    free(p->role);
    free(p->params);
    free(p->bound);
    free(p->arena);
    free(p->source);
    kiln_jit_close(p->jit);
    if (p->planned)
        kiln_plan_free(&p->plan);
    kiln_graph_destroy(p->pg);
    free(p);
}

const char *kiln_program_errmsg(const kiln_program *p)
{
    if (!p)
        return "out of memory";
    return p->err.status == KILN_OK ? "ok" : p->err.msg;
}

const char *kiln_program_source(const kiln_program *p) { return p->source ? p->source : ""; }
bool kiln_program_compiler_ran(const kiln_program *p) { return p->jit && kiln_jit_compiler_ran(p->jit); }
const char *kiln_program_library_path(const kiln_program *p)
{
    const char *s = p->jit ? kiln_jit_path(p->jit) : NULL;
    return s ? s : "";
}
int64_t kiln_program_max_batch(const kiln_program *p) { return p->max_batch; }
bool kiln_program_can_train(const kiln_program *p) { return p->train_step != NULL; }

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
    return KILN_OK;
}

/* Step 1-3: program graph, gradients, second rebuild. Leaves p->pg, p->map,
** and the param/grad lists in program ids. */
static enum kiln_status build_graph(kiln_program *p, kiln_graph *g, const kiln_compile_options *o,
                                    int32_t **params_out, int32_t **grads_out, int *n_params_out)
{
    int n_roots = 0;
    int32_t *roots = malloc(sizeof(int32_t) * (size_t)(1 + o->n_monitors + o->n_outputs));
    int32_t *map1 = malloc(sizeof(int32_t) * ((size_t)g->n_nodes + 1));
    int32_t *params = NULL, *grads = NULL, *map2 = NULL;
    kiln_graph *pg1 = NULL;
    enum kiln_status st = KILN_OK;
    if (!roots || !map1) {
        st = fail(p, KILN_ERR_NOMEM, "compile: no memory");
        goto out;
    }
    if (kiln_node_ok(o->cost))
        roots[n_roots++] = o->cost.id;
    for (int i = 0; i < o->n_monitors; i++)
        roots[n_roots++] = o->monitors[i].id;
    for (int i = 0; i < o->n_outputs; i++)
        roots[n_roots++] = o->outputs[i].id;

    /* 1. The part of the user's graph that the roots need. */
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
        if (r->op != KILN_OP_PARAM)
            continue;
        if (!kiln_param_data(r->param)) {
            st = fail(p, KILN_ERR_STATE, "parameter %s.%s is not allocated: apply or allocate its brick first",
                      r->brick ? kiln_brick_path(r->brick) : "?", kiln_param_name(r->param));
            goto out;
        }
        params[n_params++] = id;
    }
    if (kiln_node_ok(o->cost)) {
        if (kiln_autodiff(pg1, map1[o->cost.id], params, n_params, grads) != KILN_OK) {
            st = kiln_err_copy(&p->err, &pg1->err, "gradient of the cost: ");
            goto out;
        }
    }
    /* 3. Rebuild with the gradients as roots too. */
    int32_t *roots2 = malloc(sizeof(int32_t) * (size_t)(n_roots + 2 * n_params + 1));
    map2 = malloc(sizeof(int32_t) * ((size_t)pg1->n_nodes + 1));
    if (!roots2 || !map2) {
        free(roots2);
        st = fail(p, KILN_ERR_NOMEM, "compile: no memory");
        goto out;
    }
    int n2 = 0;
    for (int i = 0; i < n_roots; i++)
        roots2[n2++] = map1[roots[i]];
    if (kiln_node_ok(o->cost))
        for (int i = 0; i < n_params; i++)
            roots2[n2++] = grads[i];
    for (int i = 0; i < n_params; i++) /* keep every parameter in its slot */
        roots2[n2++] = params[i];
    p->pg = kiln_rebuild(pg1, roots2, n2, map2, &p->err);
    free(roots2);
    if (!p->pg) {
        st = p->err.status;
        goto out;
    }
    for (int i = 0; i < n_params; i++) {
        params[i] = map2[params[i]];
        if (kiln_node_ok(o->cost))
            grads[i] = map2[grads[i]];
        else
            grads[i] = -1;
    }
    for (int32_t u = 0; u < g->n_nodes; u++)
        p->map[u] = map1[u] >= 0 ? map2[map1[u]] : -1;
    *params_out = params;
    *grads_out = grads;
    *n_params_out = n_params;
    params = grads = NULL;
out:
    free(roots);
    free(map1);
    free(map2);
    free(params);
    free(grads);
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

static void *symbol(kiln_program *p, const char *fn)
{
    char name[MAX_MODEL_NAME + 32];
    snprintf(name, sizeof name, "%s_%s", p->model, fn);
    void *s = kiln_jit_symbol(p->jit, name);
    if (!s)
        fail(p, KILN_ERR_COMPILE, "generated library lacks %s: %s", name, kiln_jit_errmsg(p->jit));
    return s;
}

static enum kiln_status compile(kiln_program *p, kiln_graph *g, const kiln_compile_options *o)
{
    enum kiln_status st;
    if ((st = check_model_name(p, o->name)))
        return st;
    if (g->err.status)
        return fail(p, g->err.status, "the graph has an error: %s", g->err.msg);
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
        if (o->step_rule.kind != KILN_STEP_SCALE)
            return fail(p, KILN_ERR_UNSUPPORTED, "step rule %d is not supported", (int)o->step_rule.kind);
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
    p->max_batch = o->max_batch ? o->max_batch : DEFAULT_MAX_BATCH;
    if (o->threads < 0 || o->threads > 1024 || o->small_batch < 0)
        return fail(p, KILN_ERR_ARG, "compile options: threads %d or small_batch %lld out of range", o->threads,
                    (long long)o->small_batch);
    p->threads = o->threads;
    p->small_batch = o->small_batch;
    if (p->max_batch < 1 || p->max_batch > (1 << 24))
        return fail(p, KILN_ERR_ARG, "max_batch %lld outside [1, %d]", (long long)p->max_batch, 1 << 24);

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

    /* Steps 1-3. */
    int32_t *params = NULL, *grads = NULL;
    int n_params = 0;
    if ((st = build_graph(p, g, o, &params, &grads, &n_params)))
        return st;

    /* Step 4: plan and generate. */
    int32_t cost = kiln_node_ok(o->cost) ? p->map[o->cost.id] : -1;
    int32_t *mon = malloc(sizeof(int32_t) * (size_t)(o->n_monitors + 1));
    int32_t *outs = malloc(sizeof(int32_t) * (size_t)(o->n_outputs + 1));
    if (!mon || !outs) {
        free(mon);
        free(outs);
        free(params);
        free(grads);
        return fail(p, KILN_ERR_NOMEM, "compile: no memory");
    }
    for (int i = 0; i < o->n_monitors; i++)
        mon[i] = p->map[o->monitors[i].id];
    for (int i = 0; i < o->n_outputs; i++)
        outs[i] = p->map[o->outputs[i].id];
    st = kiln_plan_build(&p->plan, p->pg, cost, mon, o->n_monitors, outs, o->n_outputs, params,
                         cost >= 0 ? grads : NULL, n_params, p->max_batch, &p->err);
    free(mon);
    free(outs);
    free(params);
    free(grads);
    if (st)
        return st;
    p->planned = true;
    if (!p->small_batch) { /* from the products' flops per example */
        double per_example = 0;
        for (int32_t id = 0; id < p->pg->n_nodes; id++) {
            const kiln_node_rec *r = &p->pg->nodes[id];
            if (r->op != KILN_OP_MATMUL || !p->plan.entries[id])
                continue;
            const kiln_node_rec *a = &p->pg->nodes[r->in[0]];
            double f = 2.0 * (double)kiln_shape_const_size(&r->shape) *
                       (double)(a->shape.dims[r->trans_a ? 0 : 1] == KILN_BATCH ? 1 : a->shape.dims[r->trans_a ? 0 : 1]);
            per_example += f;
        }
        p->small_batch = per_example > 0 ? (int64_t)(SMALL_STEP_FLOPS / per_example) + 1 : 1;
    }
    p->params = calloc((size_t)p->plan.n_params + 1, sizeof *p->params);
    p->bound = calloc((size_t)p->plan.n_inputs + 1, sizeof *p->bound);
    if (!p->params || !p->bound)
        return fail(p, KILN_ERR_NOMEM, "compile: no memory");
    for (int i = 0; i < p->plan.n_params; i++)
        p->params[i] = p->pg->nodes[p->plan.param_node[i]].param;

    kiln_emit_options eo = {.model = p->model, .has_forward = o->n_outputs > 0, .has_train = cost >= 0};
    if ((st = kiln_emit_c(&p->plan, &eo, &p->source, &p->emit, &p->err)))
        return st;
    const char *dump = o->source_path ? o->source_path : getenv("KILN_DUMP_SOURCE");
    if (dump && *dump && (st = write_source_file(p, dump)))
        return st;

    /* Step 5: compile, load, allocate, copy parameters in. The generated code
    ** gets BLAS through p->rt, so it links libm alone (half the link time). */
    p->rt.sgemm = (void (*)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                            float *, int))cblas_sgemm;
    p->rt.dgemm = (void (*)(int, int, int, int, int, int, double, const double *, int, const double *, int,
                            double, double *, int))cblas_dgemm;
    p->rt.sgemv = (void (*)(int, int, int, int, float, const float *, int, const float *, int, float, float *,
                            int))cblas_sgemv;
    p->rt.dgemv = (void (*)(int, int, int, int, double, const double *, int, const double *, int, double,
                            double *, int))cblas_dgemv;
    p->rt.sger = (void (*)(int, int, int, float, const float *, int, const float *, int, float *, int))cblas_sger;
    p->rt.dger = (void (*)(int, int, int, double, const double *, int, const double *, int, double *,
                           int))cblas_dger;
    p->rt.sger_gemv = kiln_kernel_sger_gemv();
    p->rt.sgemm_nn = kiln_kernel_sgemm_nn();
    const char *link[2];
    int n_link = 0;
    if (have_program("ld.gold")) /* links a small library ~10 ms faster than ld.bfd */
        link[n_link++] = "-fuse-ld=gold";
    link[n_link++] = "-lm";
    kiln_jit_options jo = {.cc = o->cc, .cache_dir = o->cache_dir, .link_args = link, .n_link_args = n_link};
    st = kiln_jit_load(p->source, strlen(p->source), &jo, &p->jit);
    if (st)
        return fail(p, st, "%s", p->jit ? kiln_jit_errmsg(p->jit) : "out of memory");
    init_fn init = (init_fn)symbol(p, "init");
    if (!init || !(p->flush = (flush_fn)symbol(p, "flush")))
        return p->err.status;
    if (eo.has_forward && !(p->forward = (entry_fn)symbol(p, "forward")))
        return p->err.status;
    if (eo.has_train && (!(p->eval_step = (entry_fn)symbol(p, "eval_step")) ||
                         !(p->gradients = (entry_fn)symbol(p, "gradients")) ||
                         !(p->train_step = (entry_fn)symbol(p, "train_step"))))
        return p->err.status;
    size_t bytes = (size_t)p->emit.arena_bytes;
    p->arena = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p->arena)
        return fail(p, KILN_ERR_NOMEM, "arena: no memory for %zu bytes", bytes);
    memset(p->arena, 0, bytes);
    if (init(p->arena, p->emit.arena_bytes) != 0)
        return fail(p, KILN_ERR_COMPILE, "generated init rejected the arena (%zu bytes)", bytes);
    if ((st = kiln_program_set_learning_rate(p, o->step_rule.learning_rate)))
        return st;
    return kiln_program_load_params(p);
}

enum kiln_status kiln_compile(kiln_graph *g, const kiln_compile_options *o, kiln_program **out)
{
    kiln_program *p = calloc(1, sizeof *p);
    *out = p;
    if (!p)
        return KILN_ERR_NOMEM;
    if (!g || !o)
        return fail(p, KILN_ERR_ARG, "kiln_compile: %s is NULL", g ? "options" : "graph");
    enum kiln_status st = compile(p, g, o);
    if (st)
        p->forward = p->eval_step = p->gradients = p->train_step = NULL;
    return st;
}

/* ---- inputs and steps ------------------------------------------------------ */

int kiln_program_input_count(const kiln_program *p) { return p->planned ? p->plan.n_inputs : 0; }

static const kiln_node_rec *input_rec(const kiln_program *p, int i)
{
    if (!p->planned || i < 0 || i >= p->plan.n_inputs)
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
    return r ? kiln_shape_const_size(&r->shape) : 0;
}

bool kiln_program_input_batched(const kiln_program *p, int i)
{
    const kiln_node_rec *r = input_rec(p, i);
    return r && kiln_shape_has_batch(&r->shape);
}

enum kiln_status kiln_program_bind_input(kiln_program *p, const char *name, const void *data)
{
    if (!name || !data)
        return fail(p, KILN_ERR_ARG, "kiln_program_bind_input: %s is NULL", name ? "data" : "name");
    for (int i = 0; i < kiln_program_input_count(p); i++)
        if (strcmp(kiln_program_input_name(p, i), name) == 0) {
            p->bound[i] = data;
            return KILN_OK;
        }
    char list[256] = "";
    size_t n = 0;
    for (int i = 0; i < kiln_program_input_count(p) && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", kiln_program_input_name(p, i));
    return fail(p, KILN_ERR_NOT_FOUND, "no program input is named '%s' (inputs: %s)", name, n ? list : "none");
}

/* A generated entry point reported an index out of range: say which. */
static enum kiln_status bad_index(kiln_program *p, int64_t code)
{
    int32_t node = KILN_CODEGEN_ERR_NODE(code);
    int64_t row = KILN_CODEGEN_ERR_ROW(code);
    if (node < 0 || node >= p->pg->n_nodes)
        return fail(p, KILN_ERR_ARG, "generated code failed with code %lld", (long long)code);
    const kiln_node_rec *r = &p->pg->nodes[node];
    const kiln_node_rec *idx = &p->pg->nodes[r->in[1]];
    int64_t k = p->pg->nodes[r->in[0]].shape.dims[1];
    if (idx->op == KILN_OP_INPUT) {
        for (int i = 0; i < p->plan.n_inputs; i++)
            if (p->plan.input_node[i] == r->in[1] && p->bound[i])
                return fail(p, KILN_ERR_ARG, "%s: value %d at row %lld of the batch is outside [0, %lld)",
                            idx->name ? idx->name : "index", (int)((const int32_t *)p->bound[i])[row],
                            (long long)row, (long long)k);
    }
    return fail(p, KILN_ERR_ARG, "node %d (%s): index at row %lld is outside [0, %lld)", (int)node,
                kiln_op_info_of(r->op)->name, (long long)row, (long long)k);
}

static enum kiln_status run(kiln_program *p, entry_fn fn, unsigned entry, const char *what, int64_t batch)
{
    if (!fn)
        return fail(p, KILN_ERR_STATE, "%s: this program has no %s entry point%s", what, what,
                    p->err.status ? " (compilation failed)" : (entry == KILN_ENTRY_FORWARD ? " (no outputs)" : " (no cost)"));
    if (batch < 1 || batch > p->max_batch)
        return fail(p, KILN_ERR_ARG, "%s: batch of %lld examples, expected 1 to %lld (max_batch)", what,
                    (long long)batch, (long long)p->max_batch);
    for (int i = 0; i < p->plan.n_inputs; i++)
        if (!p->bound[i] && (p->plan.entries[p->plan.input_node[i]] & entry))
            return fail(p, KILN_ERR_STATE, "%s: input '%s' is not bound", what, kiln_program_input_name(p, i));
    /* BLAS threads for this step; put back afterwards (process-wide state). */
    int saved = 0, want = 0;
    if (openblas_set_num_threads && openblas_get_num_threads) {
        saved = openblas_get_num_threads();
        want = batch < p->small_batch ? 1 : (p->threads ? p->threads : saved);
        /* One block of rows in kiln's kernel, on one thread, beats OpenBLAS
        ** on two (784-500-10 at batch 32: 0.55-0.63 against 0.64-0.71 ms) */
        if (want > 1 && p->rt.sgemm_nn && batch <= KILN_CODEGEN_GEMM_ROWS &&
            kiln_kernel_sgemm_nn_wins((int)batch, p->emit.gemm_n, p->emit.gemm_k))
            want = 1;
        if (want != saved)
            openblas_set_num_threads(want);
    }
    /* kiln's kernel is single-threaded: a step on more BLAS threads leaves
    ** every product to the BLAS */
    kiln_codegen_runtime threaded = p->rt;
    threaded.sgemm_nn = NULL;
    int64_t code = fn(p->arena, p->bound, batch, want > 1 ? &threaded : &p->rt);
    if (want && want != saved)
        openblas_set_num_threads(saved);
    if (code)
        return bad_index(p, code);
    p->last_entry = entry;
    p->last_batch = batch;
    kiln_err_clear(&p->err);
    return KILN_OK;
}

enum kiln_status kiln_program_forward(kiln_program *p, int64_t batch)
{
    return run(p, p->forward, KILN_ENTRY_FORWARD, "forward", batch);
}
enum kiln_status kiln_program_eval_step(kiln_program *p, int64_t batch)
{
    return run(p, p->eval_step, KILN_ENTRY_EVAL, "eval_step", batch);
}
enum kiln_status kiln_program_train_step(kiln_program *p, int64_t batch)
{
    p->grads_fresh = false; /* fused updates leave some gradient slots stale */
    return run(p, p->train_step, KILN_ENTRY_TRAIN, "train_step", batch);
}
enum kiln_status kiln_program_gradients(kiln_program *p, int64_t batch)
{
    enum kiln_status st = run(p, p->gradients, KILN_ENTRY_TRAIN, "gradients", batch);
    p->grads_fresh = st == KILN_OK;
    return st;
}

/* ---- reading values ---------------------------------------------------------- */

/* The parameter slab as of the last step: a batch-1 train_step may leave
** its weight updates deferred in the arena (emit_c.c, plan_deferred). */
static void flush_params(kiln_program *p)
{
    if (p->flush && p->arena)
        p->flush(p->arena, &p->rt);
}


static void convert_out(double *dst, const void *src, enum kiln_dtype t, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = t == KILN_DTYPE_F32 ? ((const float *)src)[i]
               : t == KILN_DTYPE_F64 ? ((const double *)src)[i]
                                     : ((const int32_t *)src)[i];
}

const char *kiln_program_node_name(const kiln_program *p, kiln_node n)
{
    if (!p || n.id < 0 || n.id >= p->n_user || !p->user_names || !p->user_names[n.id])
        return "";
    return p->user_names[n.id];
}

bool kiln_program_has_value(const kiln_program *p, kiln_node n)
{
    return p && n.id >= 0 && n.id < p->n_user && p->role && p->role[n.id];
}

enum kiln_status kiln_program_read(kiln_program *p, kiln_node n, double *dst, int64_t count)
{
    if (!kiln_program_has_value(p, n))
        return fail(p, KILN_ERR_ARG, "node %d is not the cost, a monitor or an output of this program", (int)n.id);
    if (!p->last_entry)
        return fail(p, KILN_ERR_STATE, "no step has run yet");
    int32_t id = p->map[n.id];
    if (!(p->plan.entries[id] & p->last_entry))
        return fail(p, KILN_ERR_STATE, "'%s' is not computed by the last entry point run",
                    kiln_program_node_name(p, n));
    const kiln_node_rec *r = &p->pg->nodes[id];
    int64_t want = kiln_shape_const_size(&r->shape) * (kiln_shape_has_batch(&r->shape) ? p->last_batch : 1);
    if (count != want)
        return fail(p, KILN_ERR_ARG, "read of '%s': count %lld, the value has %lld elements",
                    kiln_program_node_name(p, n), (long long)count, (long long)want);
    const kiln_buffer *b = &p->plan.buf[p->plan.alias[id]];
    const void *src;
    if (b->zone == KILN_ZONE_INPUT)
        src = p->bound[b->index];
    else if (b->zone == KILN_ZONE_NONE)
        return fail(p, KILN_ERR_STATE, "'%s' is not stored", kiln_program_node_name(p, n));
    else {
        if (b->zone == KILN_ZONE_PARAM)
            flush_params(p);
        src = p->arena + kiln_plan_arena_offset(&p->plan, id, p->last_batch);
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

static enum kiln_status param_access(kiln_program *p, kiln_node n, int64_t count, bool grad, char **at, int *idx)
{
    int i = param_index(p, n);
    if (i < 0)
        return p->err.status;
    const kiln_node_rec *r = &p->pg->nodes[p->plan.param_node[i]];
    int64_t size = kiln_shape_const_size(&r->shape);
    if (count != size)
        return fail(p, KILN_ERR_ARG, "parameter %s: count %lld, it has %lld elements", r->name ? r->name : "?",
                    (long long)count, (long long)size);
    *at = p->arena + (grad ? p->plan.off_grads : 0) + p->plan.param_offset[i];
    *idx = i;
    flush_params(p);
    return KILN_OK;
}

enum kiln_status kiln_program_read_gradient(kiln_program *p, kiln_node param, double *dst, int64_t count)
{
    char *at;
    int i;
    enum kiln_status st = param_access(p, param, count, true, &at, &i);
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
    enum kiln_status st = param_access(p, param, count, false, &at, &i);
    if (st)
        return st;
    convert_out(dst, at, p->pg->floatx, count);
    return KILN_OK;
}

static void convert_in(void *dst, const double *src, enum kiln_dtype t, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (t == KILN_DTYPE_F32)
            ((float *)dst)[i] = (float)src[i];
        else
            ((double *)dst)[i] = src[i];
    }
}

enum kiln_status kiln_program_set_param(kiln_program *p, kiln_node param, const double *src, int64_t count)
{
    char *at;
    int i;
    enum kiln_status st = param_access(p, param, count, false, &at, &i);
    if (st)
        return st;
    convert_in(at, src, p->pg->floatx, count);
    return KILN_OK;
}

enum kiln_status kiln_program_load_params(kiln_program *p)
{
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
        convert_in(p->arena + p->plan.param_offset[i], v, p->pg->floatx, kiln_shape_const_size(s));
    }
    return KILN_OK;
}

enum kiln_status kiln_program_store_params(kiln_program *p)
{
    if (!p->arena)
        return fail(p, KILN_ERR_STATE, "the program was not compiled");
    flush_params(p);
    for (int i = 0; i < p->plan.n_params; i++) {
        double *v = kiln_param_data(p->params[i]);
        const kiln_shape *s = kiln_param_shape(p->params[i]);
        if (!v || !kiln_shape_equal(s, &p->pg->nodes[p->plan.param_node[i]].shape))
            return fail(p, KILN_ERR_STATE, "parameter %s is no longer allocated as compiled",
                        kiln_param_name(p->params[i]));
        convert_out(v, p->arena + p->plan.param_offset[i], p->pg->floatx, kiln_shape_const_size(s));
    }
    return KILN_OK;
}

int64_t kiln_program_param_floats(const kiln_program *p)
{
    int64_t n = 0;
    for (int i = 0; p->planned && i < p->plan.n_params; i++)
        n += kiln_shape_const_size(&p->pg->nodes[p->plan.param_node[i]].shape);
    return n;
}

enum kiln_status kiln_program_set_learning_rate(kiln_program *p, double lr)
{
    if (!p->arena)
        return fail(p, KILN_ERR_STATE, "the program was not compiled");
    if (!(lr >= 0) || lr > 1e6)
        return fail(p, KILN_ERR_ARG, "learning rate %g outside [0, 1e6]", lr);
    char *at = p->arena + p->plan.off_fixed + p->plan.hyper_offset;
    double v = lr;
    convert_in(at + KILN_HYPER_LEARNING_RATE * kiln_dtype_size(p->pg->floatx), &v, p->pg->floatx, 1);
    return KILN_OK;
}
