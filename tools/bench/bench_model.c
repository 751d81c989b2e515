/* bench_model.c: see bench_model.h. */
#include "bench_model.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The same synthetic data as torch_bench.py. */
static float data_x[N_DATA * N_IN];
static int32_t data_y[N_DATA];

void bench_make_data(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    for (int i = 0; i < N_DATA; i++) {
        data_y[i] = (int32_t)((i * 31) % N_OUT);
        for (int j = 0; j < N_IN; j++)
            data_x[(size_t)i * N_IN + j] = (float)(((long)i * 7919 + (long)j * 104729) % 1000) / 1000.0f;
    }
}

double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_die(const char *what, const char *msg)
{
    fprintf(stderr, "bench: %s: %s\n", what, msg);
    exit(1);
}

void bench_net_build(net *n, int64_t hidden)
{
    n->g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(n->g, "features", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, N_IN});
    kiln_node y = kiln_graph_input(n->g, "targets", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    kiln_brick *acts[2] = {kiln_rectifier_create(NULL), kiln_softmax_create(NULL)};
    n->mlp = kiln_mlp_create(NULL, acts, 2, (int64_t[]){N_IN, hidden, N_OUT});
    n->cce = kiln_categorical_cross_entropy_create(NULL);
    kiln_brick_set_weights_init(n->mlp, kiln_init_isotropic_gaussian(0.01, 0));
    kiln_brick_set_biases_init(n->mlp, kiln_init_constant(0));
    if (kiln_brick_apply(n->mlp, n->g, x, &n->probs) || kiln_cost_apply(n->cce, n->g, y, n->probs, &n->cost) ||
        kiln_brick_initialize(n->mlp))
        bench_die("model", kiln_brick_errmsg(n->mlp));
}

void bench_net_free(net *n)
{
    kiln_graph_destroy(n->g);
    kiln_brick_destroy(n->mlp);
    kiln_brick_destroy(n->cce);
}

kiln_program *bench_compile_train(net *n, int64_t max_batch, const char *cache_dir)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "bench_mlp";
    o.cost = n->cost;
    o.step_rule = kiln_step_scale(0.1);
    o.monitors = &n->cost;
    o.n_monitors = 1;
    o.max_batch = max_batch;
    o.cache_dir = cache_dir;
    kiln_program *p;
    if (kiln_compile(n->g, &o, &p))
        bench_die("compile", kiln_program_errmsg(p));
    return p;
}

kiln_program *bench_compile_forward(net *n, int64_t max_batch)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "bench_mlp_forward";
    o.outputs = &n->probs;
    o.n_outputs = 1;
    o.max_batch = max_batch;
    kiln_program *p;
    if (kiln_compile(n->g, &o, &p))
        bench_die("compile", kiln_program_errmsg(p));
    return p;
}

kiln_program *bench_compile_train_forward(net *n, int64_t max_batch)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "bench_mlp";
    o.cost = n->cost;
    o.step_rule = kiln_step_scale(0.1);
    o.outputs = &n->probs;
    o.n_outputs = 1;
    o.max_batch = max_batch;
    kiln_program *p;
    if (kiln_compile(n->g, &o, &p))
        bench_die("compile", kiln_program_errmsg(p));
    return p;
}

/* The exported ABI (docs/export.md) for the name "bench_net". */
struct bench_export {
    void *dl, *w, *ctx;
    char dir[64];
    int (*forward)(void *, const float *const *, float *const *, int64_t);
    void (*destroy)(void *);
    float *out;
};

static void *export_sym(bench_export *e, const char *name)
{
    void *f = dlsym(e->dl, name);
    if (!f)
        bench_die("export", dlerror());
    return f;
}

bench_export *bench_export_open(net *n, int64_t max_batch, int how)
{
    bench_export *e = calloc(1, sizeof *e);
    if (!e)
        bench_die("export", "out of memory");
    kiln_program *p = bench_compile_forward(n, max_batch);
    snprintf(e->dir, sizeof e->dir, "/tmp/kiln_bench_export_XXXXXX");
    if (!mkdtemp(e->dir))
        bench_die("export", "cannot make a folder");
    static const char *const flags[] = {"-march=native"};
    kiln_export_options o = kiln_export_options_default();
    o.name = "bench_net";
    o.dir = e->dir;
    o.compile = true;
    o.cflags = flags;
    o.n_cflags = how == 1 ? 1 : 0;
    o.blas = how == 2;
    if (kiln_program_export(p, &o))
        bench_die("export", kiln_program_errmsg(p));
    kiln_program_destroy(p);
    char path[128];
    snprintf(path, sizeof path, "%s/bench_net.so", e->dir);
    if (!(e->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
        bench_die("export", dlerror());
    int (*load)(const char *, void **) = (int (*)(const char *, void **))export_sym(e, "bench_net_weights_load");
    int (*create)(const void *, void **) = (int (*)(const void *, void **))export_sym(e, "bench_net_create");
    e->forward = (int (*)(void *, const float *const *, float *const *, int64_t))export_sym(e, "bench_net_forward");
    e->destroy = (void (*)(void *))export_sym(e, "bench_net_destroy");
    e->out = malloc(sizeof(float) * (size_t)max_batch * N_OUT);
    if (!e->out || load(NULL, &e->w) || create(e->w, &e->ctx))
        bench_die("export", "cannot load the exported model");
    return e;
}

void bench_export_run(bench_export *e, int64_t k, int64_t B)
{
    int64_t off = (k * B) % (N_DATA - B + 1);
    const float *in[1] = {data_x + off * N_IN};
    float *out[1] = {e->out};
    if (e->forward(e->ctx, in, out, B))
        bench_die("export", "forward failed");
}

void bench_export_close(bench_export *e)
{
    if (!e)
        return;
    e->destroy(e->ctx);
    dlclose(e->dl);
    free(e->out);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench: could not remove %s\n", e->dir);
    free(e);
}

/* Bind batch k of size B (cycling through the data). */
void bench_bind_batch(kiln_program *p, int64_t k, int64_t B, bool targets)
{
    int64_t off = (k * B) % (N_DATA - B + 1);
    if (kiln_program_bind_input(p, "features", data_x + off * N_IN) ||
        (targets && kiln_program_bind_input(p, "targets", data_y + off)))
        bench_die("bind", kiln_program_errmsg(p));
}

