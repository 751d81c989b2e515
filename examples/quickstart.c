/* quickstart.c: the README's example, whole: an MLP built with the MLP
** brick, compiled, and trained by hand for a few steps on made-up data
** (no dataset needed). Prints the cost before and after.
**
**   quickstart */
#include <kiln/kiln.h>
#include <stdio.h>
#include <stdlib.h>

#define N 512
#define BATCH 64

int main(void)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "features", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 784});
    kiln_node y = kiln_graph_input(g, "targets", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});

    kiln_brick *acts[2] = {kiln_rectifier_create(NULL), kiln_softmax_create(NULL)};
    kiln_brick *mlp = kiln_mlp_create(NULL, acts, 2, (int64_t[]){784, 100, 10});
    kiln_brick *cce = kiln_categorical_cross_entropy_create(NULL);
    kiln_brick_set_weights_init(mlp, kiln_init_isotropic_gaussian(0.01, 0));
    kiln_brick_set_biases_init(mlp, kiln_init_constant(0));

    kiln_node probs, cost;
    if (kiln_brick_apply(mlp, g, x, &probs) || kiln_cost_apply(cce, g, y, probs, &cost) ||
        kiln_brick_initialize(mlp)) {
        fprintf(stderr, "quickstart: %s %s\n", kiln_brick_errmsg(mlp), kiln_brick_errmsg(cce));
        return 1;
    }

    kiln_compile_options o = kiln_compile_options_default();
    o.name = "mlp";
    o.cost = cost;
    o.step_rule = kiln_step_scale(0.1);
    o.monitors = &cost;
    o.n_monitors = 1;
    kiln_program *prog;
    if (kiln_compile(g, &o, &prog) != KILN_OK) {
        fprintf(stderr, "quickstart: %s\n", kiln_program_errmsg(prog));
        return 1;
    }

    /* Made-up data: the class is which tenth of the image is brightest. */
    static float pixels[N * 784];
    static int32_t labels[N];
    srand(7);
    for (int i = 0; i < N; i++) {
        labels[i] = rand() % 10;
        for (int j = 0; j < 784; j++)
            pixels[i * 784 + j] = (float)(rand() % 100) / 400 + (j / 79 == labels[i] ? 0.5f : 0);
    }
    for (int epoch = 0; epoch < 5; epoch++) {
        double sum = 0;
        for (int b = 0; b < N; b += BATCH) {
            kiln_program_bind_input_n(prog, "features", pixels + (size_t)b * 784, (int64_t)BATCH * 784);
            kiln_program_bind_input_n(prog, "targets", labels + b, BATCH);
            double c;
            if (kiln_program_train_step(prog, BATCH) || kiln_program_read_scalar(prog, cost, &c)) {
                fprintf(stderr, "quickstart: %s\n", kiln_program_errmsg(prog));
                return 1;
            }
            sum += c;
        }
        printf("epoch %d: mean training cost %.4f\n", epoch + 1, sum / (N / BATCH));
    }
    kiln_program_destroy(prog);
    kiln_graph_destroy(g);
    kiln_brick_destroy(mlp);
    kiln_brick_destroy(cce);
    return 0;
}
