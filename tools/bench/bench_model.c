/* bench_model.c: see bench_model.h. */
#include "bench_model.h"

#include <stdio.h>
#include <stdlib.h>

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

/* Bind batch k of size B (cycling through the data). */
void bench_bind_batch(kiln_program *p, int64_t k, int64_t B, bool targets)
{
    int64_t off = (k * B) % (N_DATA - B + 1);
    if (kiln_program_bind_input(p, "features", data_x + off * N_IN) ||
        (targets && kiln_program_bind_input(p, "targets", data_y + off)))
        bench_die("bind", kiln_program_errmsg(p));
}

