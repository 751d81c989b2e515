/* bench_lstm.c: see bench_lstm.h. */
#include "bench_lstm.h"

#include <stdlib.h>

#include "bench_model.h"

void bench_lstm_build(lstm_net *n, int64_t hidden, int64_t T, int64_t B)
{
    *n = (lstm_net){.T = T, .B = B};
    n->x = malloc(sizeof(float) * (size_t)(T * B * N_LSTM_IN));
    if (!n->x)
        bench_die("lstm", "out of memory");
    for (int64_t t = 0; t < T; t++) /* the formula of torch_bench.py's lstm_data */
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < N_LSTM_IN; j++)
                n->x[(t * B + b) * N_LSTM_IN + j] =
                    (float)((t * 7919 + b * 104729 + j * 31) % 1000) / 1000.0f - 0.5f;
    n->g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(n->g, "x", KILN_DTYPE_F32, 3, (int64_t[]){KILN_TIME, KILN_BATCH, N_LSTM_IN});
    n->proj = kiln_linear_create("proj", N_LSTM_IN, 4 * hidden);
    n->lstm = kiln_lstm_create("lstm", hidden, NULL);
    kiln_brick_set_weights_init(n->proj, kiln_init_isotropic_gaussian(0.05, 0));
    kiln_brick_set_biases_init(n->proj, kiln_init_constant(0));
    kiln_brick_set_weights_init(n->lstm, kiln_init_isotropic_gaussian(0.05, 0));
    /* the Linear applies to (T*B, F) rows; the LSTM to (T, B, 4H) */
    kiln_node flat = kiln_expr_reshape(n->g, x, 2, (int64_t[]){KILN_INFER, N_LSTM_IN}), pre, h[2];
    if (kiln_brick_apply(n->proj, n->g, flat, &pre))
        bench_die("lstm", kiln_brick_errmsg(n->proj));
    pre = kiln_expr_reshape(n->g, pre, 3, (int64_t[]){KILN_TIME, KILN_BATCH, 4 * hidden});
    kiln_node in[4] = {pre, KILN_NODE_NONE, KILN_NODE_NONE, KILN_NODE_NONE}; /* no mask, initial states */
    if (kiln_brick_call(n->lstm, "apply", n->g, in, 4, h, 2) || kiln_brick_initialize(n->proj) ||
        kiln_brick_initialize(n->lstm))
        bench_die("lstm", kiln_brick_errmsg(n->lstm));
    n->cost = kiln_expr_mean(n->g, kiln_expr_square(n->g, h[0]), KILN_ALL_AXES);
    if (!kiln_node_ok(n->cost))
        bench_die("lstm", kiln_graph_errmsg(n->g));
}

void bench_lstm_free(lstm_net *n)
{
    kiln_graph_destroy(n->g);
    kiln_brick_destroy(n->proj);
    kiln_brick_destroy(n->lstm);
    free(n->x);
}

kiln_program *bench_lstm_compile(lstm_net *n, const char *cache_dir)
{
    return bench_lstm_compile_as(n, cache_dir, NULL, false);
}

kiln_program *bench_lstm_compile_as(lstm_net *n, const char *cache_dir, const char *isa, bool plain)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.isa = isa;
    o.no_fast_paths = plain;
    o.name = "bench_lstm";
    o.cost = n->cost;
    o.step_rule = kiln_step_scale(0.01);
    o.max_size[0] = n->B;
    o.max_size[1] = n->T;
    o.cache_dir = cache_dir;
    kiln_program *p;
    if (kiln_compile(n->g, &o, &p))
        bench_die("compile lstm", kiln_program_errmsg(p));
    if (kiln_program_set_size(p, KILN_TIME, n->T) || kiln_program_bind_input(p, "x", n->x))
        bench_die("lstm", kiln_program_errmsg(p));
    return p;
}

void bench_lstm_step(lstm_net *n, kiln_program *p)
{
    if (kiln_program_train_step(p, n->B))
        bench_die("lstm train_step", kiln_program_errmsg(p));
}
