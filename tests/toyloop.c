/* toyloop.c: the toy problem of the main-loop tests (toyloop.h). */
#include "toyloop.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* ---- Fixtures ------------------------------------------------------------- */

/* Toy data: class c = i % 3; feature c is high, the others small. */
kiln_dataset *toy_dataset(int64_t n, int salt)
{
    float *x = malloc((size_t)n * N_FEAT * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    ck_assert(x && y);
    for (int64_t i = 0; i < n; i++) {
        int c = (int)((i + salt) % N_CLASS);
        y[i] = c;
        for (int j = 0; j < N_FEAT; j++)
            x[i * N_FEAT + j] = 0.1f * (float)(((i + salt) * 7 + j * 3) % 5) / 5.0f;
        x[i * N_FEAT + c] += 1.0f;
        x[i * N_FEAT + 3] = 0.5f;
    }
    kiln_dataset *d = kiln_dataset_create();
    ck_assert(d);
    int64_t fdims[1] = {N_FEAT};
    ck_assert_msg(kiln_dataset_add_source(d, "features", KILN_DTYPE_F32, n, 1, fdims, x) == KILN_OK,
                  "%s", kiln_dataset_errmsg(d));
    ck_assert_msg(kiln_dataset_add_source(d, "targets", KILN_DTYPE_I32, n, 0, NULL, y) == KILN_OK,
                  "%s", kiln_dataset_errmsg(d));
    free(x);
    free(y);
    return d;
}

kiln_stream *toy_stream(kiln_dataset *d, int64_t batch)
{
    kiln_stream *s = NULL;
    enum kiln_status st = kiln_stream_create(d, KILN_SCHEME_SEQUENTIAL, batch, 1, &s);
    ck_assert_msg(st == KILN_OK, "stream: %s", s ? kiln_stream_errmsg(s) : "out of memory");
    return s;
}


/* x = input `input_name` (B, 4); cost = CCE(targets, softmax(linear(x))). */
void toy_build(toy *t, const char *input_name, double lr)
{
    memset(t, 0, sizeof *t);
    t->g = kiln_graph_create(KILN_DTYPE_F32);
    ck_assert(t->g);
    t->x = kiln_graph_input(t->g, input_name, KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, N_FEAT});
    t->y = kiln_graph_input(t->g, "targets", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    ck_assert_msg(kiln_node_ok(t->x) && kiln_node_ok(t->y), "%s", kiln_graph_errmsg(t->g));

    t->linear = kiln_linear_create("linear", N_FEAT, N_CLASS);
    t->softmax = kiln_softmax_create(NULL);
    t->cce = kiln_categorical_cross_entropy_create(NULL);
    ck_assert(t->linear && t->softmax && t->cce);
    ck_assert(kiln_brick_set_weights_init(t->linear, kiln_init_isotropic_gaussian(0.01, 0)) ==
              KILN_OK);
    ck_assert(kiln_brick_set_biases_init(t->linear, kiln_init_constant(0)) == KILN_OK);
    ck_assert(kiln_brick_set_seed(t->linear, 1234) == KILN_OK);

    kiln_node h, y_hat;
    ck_assert_msg(kiln_brick_apply(t->linear, t->g, t->x, &h) == KILN_OK, "%s",
                  kiln_brick_errmsg(t->linear));
    ck_assert_msg(kiln_brick_initialize(t->linear) == KILN_OK, "%s", kiln_brick_errmsg(t->linear));
    ck_assert_msg(kiln_brick_apply(t->softmax, t->g, h, &y_hat) == KILN_OK, "%s",
                  kiln_brick_errmsg(t->softmax));
    ck_assert_msg(kiln_cost_apply(t->cce, t->g, t->y, y_hat, &t->cost) == KILN_OK, "%s",
                  kiln_brick_errmsg(t->cce));
    ck_assert_msg(kiln_graph_set_name(t->g, t->cost, "cost") == KILN_OK, "%s",
                  kiln_graph_errmsg(t->g));

    kiln_compile_options o = kiln_compile_options_default();
    o.name = "toy";
    o.cost = t->cost;
    o.step_rule = kiln_step_scale(lr);
    o.monitors = &t->cost;
    o.n_monitors = 1;
    o.max_batch = 64;
    enum kiln_status st = kiln_compile(t->g, &o, &t->p);
    ck_assert_msg(st == KILN_OK, "kiln_compile: %s (%s)", kiln_status_string(st),
                  t->p ? kiln_program_errmsg(t->p) : "out of memory");
}

void toy_free(toy *t)
{
    kiln_program_destroy(t->p);
    kiln_graph_destroy(t->g);
    kiln_brick_destroy(t->linear);
    kiln_brick_destroy(t->softmax);
    kiln_brick_destroy(t->cce);
}

/* Unweighted mean of the per-batch costs over one epoch of s, computed with
** the program directly (what DataStreamMonitoring must reproduce). */
double mean_cost(toy *t, kiln_stream *s)
{
    kiln_dataset *d = kiln_stream_dataset(s);
    int fi = kiln_dataset_source_index(d, "features"), ti = kiln_dataset_source_index(d, "targets");
    ck_assert(fi >= 0 && ti >= 0);
    ck_assert(kiln_stream_reset(s) == KILN_OK);
    kiln_batch b;
    double sum = 0;
    int n = 0;
    while (kiln_stream_next(s, &b)) {
        ck_assert(kiln_program_bind_input(t->p, "features", b.sources[fi]) == KILN_OK);
        ck_assert(kiln_program_bind_input(t->p, "targets", b.sources[ti]) == KILN_OK);
        ck_assert_msg(kiln_program_eval_step(t->p, b.size) == KILN_OK, "%s",
                      kiln_program_errmsg(t->p));
        double v;
        ck_assert(kiln_program_read_scalar(t->p, t->cost, &v) == KILN_OK);
        sum += v;
        n++;
    }
    ck_assert_int_gt(n, 0);
    return sum / n;
}

