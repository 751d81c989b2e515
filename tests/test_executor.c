/* test_executor.c: the manifest a generated unit carries and the executor
** that runs a unit from it alone (#12, deliverable 2).
**
** - the manifest of an MLP and of a scan program says what the program's
**   public queries say (inputs, shapes, parameters and states, maxima);
** - a unit dlopen'ed by path runs through the executor with no kiln_program
**   and gives kiln_program_forward's outputs bit for bit;
** - a corrupted manifest is refused, naming what is wrong;
** - a step leaves the BLAS's thread count alone: this file defines
**   openblas_set_num_threads (the library's weak reference binds to it) and
**   counts the calls. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/manifest.h"
#include "compiler/util.h"
#include "runtime/executor.h"
#include "runtime/kernels.h"
#include "runtime/program_internal.h"
#include "testutil.h"

/* ---- counting the BLAS's thread changes ---------------------------------------- */

static int n_thread_sets;

void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);

void openblas_set_num_threads(int n)
{
    void (*real)(int) = (void (*)(int))dlsym(RTLD_NEXT, "openblas_set_num_threads");
    n_thread_sets++;
    if (real)
        real(n);
}

/* ---- models ------------------------------------------------------------------ */

typedef struct model {
    kiln_graph *g;
    kiln_brick *net, *cost_brick;
    kiln_node x, y, out, cost;
    kiln_node outs[2]; /* the program's outputs */
    int n_outs;
} model;

/* MLP([Rectifier, Softmax], [6, 5, 3]) with a cross-entropy cost; outputs
** its probabilities and their tanh (a second value of the zone B). */
static kiln_program *mlp(model *m, int threads)
{
    m->g = kiln_graph_create(KILN_DTYPE_F32);
    m->x = kiln_graph_input(m->g, "features", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 6});
    m->y = kiln_graph_input(m->g, "targets", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    kiln_brick *acts[2] = {kiln_rectifier_create(NULL), kiln_softmax_create(NULL)};
    m->net = kiln_mlp_create(NULL, acts, 2, (int64_t[]){6, 5, 3});
    m->cost_brick = kiln_categorical_cross_entropy_create(NULL);
    kiln_brick_set_weights_init(m->net, kiln_init_isotropic_gaussian(0.5, 3));
    kiln_brick_set_biases_init(m->net, kiln_init_constant(0.1));
    ck_assert_int_eq(kiln_brick_apply(m->net, m->g, m->x, &m->out), KILN_OK);
    ck_assert_int_eq(kiln_cost_apply(m->cost_brick, m->g, m->y, m->out, &m->cost), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(m->net), KILN_OK);
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "mlp";
    o.cost = m->cost;
    o.step_rule = kiln_step_adam(0.01, 0.9, 0.999, 1e-8, 1.0);
    m->outs[0] = m->out;
    m->outs[1] = kiln_expr_tanh(m->g, m->out);
    m->n_outs = 2;
    o.outputs = m->outs;
    o.n_outputs = 2;
    o.max_batch = 16;
    o.threads = threads;
    kiln_program *p;
    ck_assert_msg(kiln_compile(m->g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    return p;
}

/* SimpleRecurrent(4, tanh) over x (T, B, 3) after a linear map: a scan. */
static kiln_program *rnn(model *m)
{
    m->g = kiln_graph_create(KILN_DTYPE_F32);
    m->x = kiln_graph_input(m->g, "x", KILN_DTYPE_F32, 3, (int64_t[]){KILN_TIME, KILN_BATCH, 4});
    m->net = kiln_simple_recurrent_create(NULL, 4, kiln_tanh_create(NULL));
    m->cost_brick = NULL;
    kiln_brick_set_weights_init(m->net, kiln_init_isotropic_gaussian(0.5, 7));
    kiln_brick_set_biases_init(m->net, kiln_init_constant(0));
    ck_assert_int_eq(kiln_recurrent_call(m->net, "apply", m->g, (kiln_node[]){m->x, KILN_NODE_NONE, KILN_NODE_NONE},
                                         3, NULL, &m->out, 1),
                     KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(m->net), KILN_OK);
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "rnn";
    m->outs[0] = m->out;
    m->n_outs = 1;
    o.outputs = m->outs;
    o.n_outputs = 1;
    o.max_batch = 4;
    o.max_size[1] = 5;
    kiln_program *p;
    ck_assert_msg(kiln_compile(m->g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    return p;
}

static void model_free(model *m)
{
    kiln_graph_destroy(m->g);
    kiln_brick_destroy(m->net);
    kiln_brick_destroy(m->cost_brick);
}

/* The unit of p, dlopen'ed by its path, and its manifest. */
static void *open_unit(kiln_program *p, const char *model, const kiln_manifest **m)
{
    void *h = dlopen(kiln_program_library_path(p), RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h != NULL, "%s", dlerror());
    char sym[64];
    snprintf(sym, sizeof sym, "%s_manifest", model);
    *m = dlsym(h, sym);
    ck_assert_ptr_nonnull(*m);
    return h;
}

/* The manifest says what p's public queries say. */
static void assert_manifest_matches(kiln_program *p, const kiln_manifest *m, const char *model)
{
    ck_assert_uint_eq(m->magic, KILN_MANIFEST_MAGIC);
    ck_assert_uint_eq(m->version, KILN_MANIFEST_VERSION);
    ck_assert_str_eq(m->model, model);
    ck_assert_int_eq(m->max_sizes[0], kiln_program_max_batch(p));
    for (int k = 1; k < KILN_MANIFEST_SYMBOLS; k++)
        ck_assert_int_eq(m->max_sizes[k], kiln_program_max_size(p, -(int64_t)k - 1));
    /* inputs: names, dtypes, shapes as the program writes them */
    ck_assert_int_eq(m->n_inputs, kiln_program_input_count(p));
    for (int i = 0; i < m->n_inputs; i++) {
        const kiln_manifest_tensor *t = &m->tensors[i];
        ck_assert_int_eq(t->kind, KILN_MANIFEST_INPUT);
        ck_assert_str_eq(t->name, kiln_program_input_name(p, i));
        ck_assert_int_eq(t->dtype, kiln_program_input_dtype(p, i));
        ck_assert_int_eq(t->place, KILN_MANIFEST_BOUND);
        ck_assert_int_eq(t->index_bound, i);
    }
    /* parameters: paths, sizes, offsets as the program's slots */
    ck_assert_int_eq(m->n_params, kiln_program_slot_count(p, false));
    ck_assert_int_eq(m->n_states, kiln_program_slot_count(p, true));
    int64_t floats = 0;
    const char *arena = kiln_program_arena(p);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < (s ? m->n_states : m->n_params); i++) {
            const kiln_manifest_tensor *t = &m->tensors[m->n_inputs + m->n_values + (s ? m->n_params : 0) + i];
            kiln_program_slot slot;
            ck_assert(kiln_program_get_slot(p, s, i, &slot));
            ck_assert_int_eq(t->kind, s ? KILN_MANIFEST_STATE : KILN_MANIFEST_PARAM);
            ck_assert_str_eq(t->owner, slot.owner);
            ck_assert_str_eq(t->name, slot.name);
            ck_assert_int_eq(t->dtype, slot.dtype);
            ck_assert_int_eq(t->rank, slot.rank);
            int64_t n = 1;
            for (int k = 0; k < t->rank; k++) {
                ck_assert_int_eq(t->dims[k].c, slot.dims[k]);
                n *= t->dims[k].c;
            }
            ck_assert_int_eq(n, slot.count);
            ck_assert_int_eq(t->offset, (const char *)slot.data - arena);
            if (!s)
                floats += n;
        }
    ck_assert_int_eq(floats, kiln_program_param_floats(p));
    for (int i = 0; i < m->n_states; i++) {
        const kiln_manifest_tensor *t = &m->tensors[m->n_inputs + m->n_values + m->n_params + i];
        char path[512];
        snprintf(path, sizeof path, "%s%s%s", t->owner, *t->owner ? "." : "", t->name);
        ck_assert_str_eq(path, kiln_program_state_name(p, i));
    }
    /* the hash is of the unit's text before the manifest */
    const char *src = kiln_program_source(p);
    const char *at = strstr(src, "\n/* The manifest (codegen/manifest.h");
    ck_assert_ptr_nonnull(at);
    ck_assert_uint_eq(m->hash, kiln_fnv1a((const unsigned char *)src, (size_t)(at - src)));
    char msg[512];
    ck_assert_msg(kiln_exec_check_manifest(m, msg, sizeof msg) == KILN_OK, "%s", msg);
}

START_TEST(mlp_manifest_matches_the_program)
{
    model md;
    kiln_program *p = mlp(&md, 0);
    const kiln_manifest *m;
    void *h = open_unit(p, "mlp", &m);
    assert_manifest_matches(p, m, "mlp");
    ck_assert_uint_eq(m->entries, 63); /* every entry point */
    ck_assert_int_eq(m->floatx, KILN_MANIFEST_F32);
    ck_assert_int_eq(m->n_params, 4);
    ck_assert_int_eq(m->n_values, 3); /* the outputs and the cost */
    const kiln_manifest_tensor *x = &m->tensors[0];
    ck_assert_str_eq(x->name, "features");
    ck_assert_int_eq(x->rank, 2);
    ck_assert(x->dims[0].c == 1 && x->dims[0].e[0] == 1 && x->dims[1].c == 6 && x->dims[1].e[0] == 0);
    ck_assert_int_eq(m->tensors[m->n_inputs].kind, KILN_MANIFEST_OUTPUT);
    ck_assert_int_eq(m->tensors[m->n_inputs + 1].kind, KILN_MANIFEST_OUTPUT);
    ck_assert_int_eq(m->tensors[m->n_inputs + 2].kind, KILN_MANIFEST_COST);
    ck_assert_uint_eq(m->tensors[m->n_inputs].modes & KILN_MANIFEST_FORWARD, KILN_MANIFEST_FORWARD);
    ck_assert_uint_eq(m->tensors[1].modes & KILN_MANIFEST_FORWARD, 0); /* forward reads no targets */
    ck_assert_str_eq(m->symbol_names[0], "B");
    dlclose(h);
    kiln_program_destroy(p);
    model_free(&md);
}
END_TEST

START_TEST(scan_manifest_matches_the_program)
{
    model md;
    kiln_program *p = rnn(&md);
    const kiln_manifest *m;
    void *h = open_unit(p, "rnn", &m);
    assert_manifest_matches(p, m, "rnn");
    ck_assert_uint_eq(m->entries, KILN_MANIFEST_INIT | KILN_MANIFEST_FORWARD | KILN_MANIFEST_FLUSH);
    ck_assert_int_eq(m->max_sizes[1], 5);
    ck_assert_str_eq(m->symbol_names[1], "T");
    const kiln_manifest_tensor *x = &m->tensors[0];
    ck_assert(x->dims[0].c == 1 && x->dims[0].e[1] == 1 && x->dims[0].e[0] == 0); /* T */
    ck_assert(x->dims[1].c == 1 && x->dims[1].e[0] == 1);                           /* B */
    ck_assert(x->dims[2].c == 4);
    char shape[64], want[64];
    kiln_exec *e;
    kiln_codegen_runtime rt;
    kiln_kernel_set ks;
    kiln_kernel_set_of(NULL, &ks);
    kiln_exec_cpu_runtime(&rt, &ks, true);
    ck_assert_int_eq(kiln_exec_open(&(kiln_exec_config){.lib = h, .model = "rnn", .rt = &rt}, &e), KILN_OK);
    ck_assert_str_eq(kiln_exec_shape_str(e, 0, shape, sizeof shape), kiln_program_input_shape_str(p, 0, want, sizeof want));
    kiln_exec_destroy(e);
    dlclose(h);
    kiln_program_destroy(p);
    model_free(&md);
}
END_TEST

/* Run p's forward at batch b (T = t when t > 0) through kiln_program and
** through an executor on the unit loaded by path, parameters copied by
** path; the outputs must have the same bits. */
static void same_outputs(kiln_program *p, const model *md, const char *model, const char *input, int64_t b, int64_t t,
                         int64_t n_in)
{
    float *x = malloc(sizeof *x * (size_t)n_in);
    for (int64_t i = 0; i < n_in; i++)
        x[i] = (float)((i * 37 % 23) - 11) / 7.0f;
    ck_assert_int_eq(kiln_program_bind_input_n(p, input, x, n_in), KILN_OK);
    if (t > 0)
        ck_assert_int_eq(kiln_program_set_size(p, KILN_TIME, t), KILN_OK);
    ck_assert_msg(kiln_program_forward(p, b) == KILN_OK, "%s", kiln_program_errmsg(p));

    const kiln_manifest *m;
    void *h = open_unit(p, model, &m);
    kiln_codegen_runtime rt;
    kiln_kernel_set ks;
    kiln_kernel_set_of(NULL, &ks);
    kiln_exec_cpu_runtime(&rt, &ks, true);
    kiln_exec *e;
    ck_assert_int_eq(kiln_exec_open(&(kiln_exec_config){.lib = h, .model = model, .rt = &rt}, &e), KILN_OK);
    for (int s = 0; s < 2; s++) /* parameters and states, found by path */
        for (int i = 0; i < kiln_program_slot_count(p, s); i++) {
            kiln_program_slot slot;
            ck_assert(kiln_program_get_slot(p, s, i, &slot));
            char path[512];
            snprintf(path, sizeof path, "%s%s%s", slot.owner, *slot.owner ? "." : "", slot.name);
            int k = kiln_exec_find(e, s ? KILN_MANIFEST_STATE : KILN_MANIFEST_PARAM, path);
            ck_assert_msg(k >= 0, "%s", path);
            ck_assert_int_eq(kiln_exec_write(e, k, slot.data, slot.count * (slot.dtype == KILN_DTYPE_F64 ? 8 : 4)),
                             KILN_OK);
        }
    /* a short binding is refused, naming the input and its shape */
    int64_t code;
    ck_assert_int_eq(kiln_exec_bind(e, input, x, n_in - 1), KILN_OK);
    if (t > 0)
        ck_assert_int_eq(kiln_exec_set_size(e, 1, t), KILN_OK);
    ck_assert_int_eq(kiln_exec_run(e, KILN_MANIFEST_FORWARD, b, "forward", &code), KILN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(kiln_exec_errmsg(e), "needs"));
    ck_assert_int_eq(kiln_exec_bind(e, "nothing", x, n_in), KILN_ERR_NOT_FOUND);
    ck_assert_int_eq(kiln_exec_bind(e, input, x, n_in), KILN_OK);
    ck_assert_msg(kiln_exec_run(e, KILN_MANIFEST_FORWARD, b, "forward", &code) == KILN_OK, "%s", kiln_exec_errmsg(e));
    for (int o = 0; o < md->n_outs; o++) { /* the values: outputs first */
        int t_out = m->n_inputs + o;
        int64_t n = kiln_exec_count(e, t_out, NULL);
        ck_assert_int_gt(n, 0);
        float *got = malloc(sizeof *got * (size_t)n);
        double *want = malloc(sizeof *want * (size_t)n);
        ck_assert_int_eq(kiln_exec_read(e, t_out, got, n * 4), KILN_OK);
        ck_assert_int_eq(kiln_program_read(p, md->outs[o], want, n), KILN_OK);
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg((double)got[i] == want[i], "output %d, element %lld: executor %.9g, program %.9g", o,
                          (long long)i, (double)got[i], want[i]);
        free(got);
        free(want);
    }
    free(x);
    kiln_exec_destroy(e);
    dlclose(h);
}

START_TEST(executor_runs_a_unit_by_path_as_the_program_does)
{
    model md;
    kiln_program *p = mlp(&md, 0);
    same_outputs(p, &md, "mlp", "features", 5, 0, 5 * 6);
    kiln_program_destroy(p);
    model_free(&md);
    p = rnn(&md);
    same_outputs(p, &md, "rnn", "x", 3, 4, 4 * 3 * 4);
    kiln_program_destroy(p);
    model_free(&md);
}
END_TEST

/* kiln_exec_check_manifest on a copy of m with one thing broken must fail,
** its message holding want; so must opening the unit with that copy. */
typedef void (*breaker)(kiln_manifest *m, kiln_manifest_tensor *t);

static void refused(const kiln_manifest *m, void *h, breaker brk, const char *want)
{
    kiln_manifest bad = *m;
    kiln_manifest_tensor *t = malloc(sizeof *t * (size_t)m->n_tensors);
    memcpy(t, m->tensors, sizeof *t * (size_t)m->n_tensors);
    bad.tensors = t;
    brk(&bad, t);
    char msg[512];
    ck_assert_int_eq(kiln_exec_check_manifest(&bad, msg, sizeof msg), KILN_ERR_FORMAT);
    ck_assert_msg(strstr(msg, want) != NULL, "'%s' lacks '%s'", msg, want);
    kiln_exec *e;
    ck_assert_int_eq(kiln_exec_open(&(kiln_exec_config){.lib = h, .model = "mlp", .manifest = &bad}, &e),
                     KILN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(kiln_exec_errmsg(e), want));
    kiln_exec_destroy(e);
    free(t);
}

static char unterminated[4096];
static int first_param(const kiln_manifest *m) { return m->n_inputs + m->n_values; }
static void brk_version(kiln_manifest *m, kiln_manifest_tensor *t) { (void)t, m->version++; }
static void brk_magic(kiln_manifest *m, kiln_manifest_tensor *t) { (void)t, m->magic ^= 1; }
static void brk_size(kiln_manifest *m, kiln_manifest_tensor *t) { (void)t, m->struct_size -= 8; }
static void brk_layout(kiln_manifest *m, kiln_manifest_tensor *t) { (void)t, m->arena_bytes = m->off_values - 1; }
static void brk_value(kiln_manifest *m, kiln_manifest_tensor *t) { t[m->n_inputs].offset = m->arena_bytes; }
static void brk_param(kiln_manifest *m, kiln_manifest_tensor *t) { t[first_param(m)].offset = m->param_bytes; }
static void brk_overlap(kiln_manifest *m, kiln_manifest_tensor *t)
{
    int a = first_param(m); /* the second parameter starts inside the first */
    t[a + 1].offset = t[a].offset + 4;
    t[a + 1].grad_offset = m->off_grads + t[a + 1].offset;
}
static void brk_state(kiln_manifest *m, kiln_manifest_tensor *t)
{
    int a = first_param(m) + m->n_params; /* a state placed among the parameters */
    t[a].offset = 0;
}
static void brk_name(kiln_manifest *m, kiln_manifest_tensor *t)
{
    memset(unterminated, 'x', sizeof unterminated);
    t[first_param(m)].name = unterminated;
}
static void brk_model(kiln_manifest *m, kiln_manifest_tensor *t) { (void)t, m->model = NULL; }
static void brk_count(kiln_manifest *m, kiln_manifest_tensor *t) { (void)t, m->n_params++; }
static void brk_input(kiln_manifest *m, kiln_manifest_tensor *t) { (void)m, t[0].index_bound = 1; }

START_TEST(bad_manifests_are_refused)
{
    model md;
    kiln_program *p = mlp(&md, 0);
    const kiln_manifest *m;
    void *h = open_unit(p, "mlp", &m);
    ck_assert_int_gt(m->n_states, 0);
    refused(m, h, brk_version, "version 2, this executor reads version 1");
    refused(m, h, brk_magic, "magic number");
    refused(m, h, brk_size, "struct sizes");
    refused(m, h, brk_layout, "arena layout");
    refused(m, h, brk_value, "fall outside the arena");
    refused(m, h, brk_param, "outside its slab");
    refused(m, h, brk_overlap, "overlaps");
    refused(m, h, brk_state, "outside its slab");
    refused(m, h, brk_name, "not NUL-terminated");
    refused(m, h, brk_model, "model name");
    refused(m, h, brk_count, "tensor counts");
    refused(m, h, brk_input, "bound to input 1");
    /* and a unit without one */
    kiln_exec *e;
    ck_assert_int_eq(kiln_exec_open(&(kiln_exec_config){.lib = h, .model = "nope"}, &e), KILN_ERR_COMPILE);
    ck_assert_ptr_nonnull(strstr(kiln_exec_errmsg(e), "no nope_manifest"));
    kiln_exec_destroy(e);
    dlclose(h);
    kiln_program_destroy(p);
    model_free(&md);
}
END_TEST

/* A step never changes the BLAS's thread count (#12): with threads 0 the
** process's setting stays; with threads 2 it is set once, at compile time. */
START_TEST(steps_leave_blas_threads_alone)
{
    if (!dlsym(RTLD_NEXT, "openblas_set_num_threads"))
        return; /* not OpenBLAS: nothing to count */
    openblas_set_num_threads(3);
    model md;
    float x[16 * 6];
    int32_t y[16];
    for (int i = 0; i < 16 * 6; i++)
        x[i] = (float)(i % 7) / 7;
    for (int i = 0; i < 16; i++)
        y[i] = i % 3;
    for (int threads = 0; threads <= 2; threads += 2) {
        n_thread_sets = 0;
        kiln_program *p = mlp(&md, threads);
        ck_assert_int_eq(n_thread_sets, threads ? 1 : 0);
        int before = openblas_get_num_threads();
        ck_assert_int_eq(before, threads ? threads : 3);
        n_thread_sets = 0;
        kiln_program_bind_input(p, "features", x);
        kiln_program_bind_input(p, "targets", y);
        for (int b = 1; b <= 16; b += 15) { /* a small batch and the largest */
            ck_assert_int_eq(kiln_program_train_step(p, b), KILN_OK);
            ck_assert_int_eq(kiln_program_gradients(p, b), KILN_OK);
            ck_assert_int_eq(kiln_program_eval_step(p, b), KILN_OK);
            ck_assert_int_eq(kiln_program_forward(p, b), KILN_OK);
        }
        ck_assert_int_eq(n_thread_sets, 0);
        ck_assert_int_eq(openblas_get_num_threads(), before);
        kiln_program_destroy(p);
        model_free(&md);
    }
}
END_TEST

/* The VmFlags line of the mapping in /proc/self/smaps that holds a, or ""
** (no such file, or no such line). */
static void vm_flags_of(const void *a, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return;
    char line[512];
    bool in = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = (uintptr_t)a >= lo && (uintptr_t)a < hi;
        else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(out, cap, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

/* The CPU backend's arena: zeroed and 64-byte aligned at every size; from
** 2 MiB, on Linux, 2 MiB aligned in a mapping advised for huge pages
** (VmFlags "hg", where the kernel has transparent huge pages); every byte
** writable, and given back (the sanitizer run sees a bad free). */
START_TEST(the_cpu_arena_is_zeroed_aligned_and_advised_for_huge_pages)
{
    const kiln_exec_backend *cpu = kiln_exec_backend_cpu();
    static const int64_t sizes[] = {1, 100, (2 << 20) - 64, 2 << 20, (5 << 20) + 3, 40 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const int64_t n = sizes[i];
        unsigned char *a = cpu->alloc(n);
        ck_assert_ptr_nonnull(a);
        ck_assert_uint_eq((uintptr_t)a % 64, 0);
        for (int64_t b = 0; b < n; b++)
            if (a[b]) {
                ck_abort_msg("arena of %lld bytes: byte %lld is %d, not 0", (long long)n, (long long)b, a[b]);
                break;
            }
#if defined(__linux__)
        if (n >= 2 << 20) {
            ck_assert_msg((uintptr_t)a % (2 << 20) == 0, "arena of %lld bytes at %p: not on a 2 MiB boundary",
                          (long long)n, (void *)a);
            char flags[256];
            vm_flags_of(a, flags, sizeof flags);
            if (flags[0] && access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0) /* smaps read */
                ck_assert_msg(strstr(flags, " hg") != NULL, "arena of %lld bytes: VmFlags%s lack hg (MADV_HUGEPAGE)",
                              (long long)n, flags);
        }
#endif
        memset(a, 0xab, (size_t)n);
        cpu->release(a);
    }
    cpu->release(NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("executor");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, mlp_manifest_matches_the_program);
    tcase_add_test(tc, scan_manifest_matches_the_program);
    tcase_add_test(tc, executor_runs_a_unit_by_path_as_the_program_does);
    tcase_add_test(tc, bad_manifests_are_refused);
    tcase_add_test(tc, steps_leave_blas_threads_alone);
    tcase_add_test(tc, the_cpu_arena_is_zeroed_aligned_and_advised_for_huge_pages);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return kiln_test_run(suite()); }
