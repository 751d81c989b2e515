/* blocks_intro.c: the Blocks introduction tutorial, as a C program.
**
** A 784-100-10 MLP (Rectifier, then Softmax) trained on Fashion-MNIST with
** CategoricalCrossEntropy plus an L2 penalty 0.005 * (|W1|^2 + |W2|^2),
** named cost_with_regularization; weights IsotropicGaussian(0.01), biases
** Constant(0); GradientDescent with Scale(0.1); batches of 256 in order;
** the test set monitored in batches of 1024 with the prefix "test".
**
**   blocks_intro [--epochs N] [--data DIR] [--step-rule RULE]
**                [--checkpoint PATH] [--resume PATH] [--plot PATH]
**
** DIR holds the four IDX files of Fashion-MNIST (Debian's
** dataset-fashion-mnist puts them in /usr/share/datasets/fashion-mnist).
** RULE is one of scale (the tutorial's Scale(0.1), the default), momentum
** (Momentum(0.1, 0.9)), adam (Blocks' defaults), rmsprop (RMSProp(0.001)),
** adagrad (AdaGrad(0.01)), adadelta (AdaDelta()).
** --checkpoint PATH saves the whole run to PATH (HDF5, docs/checkpoints.md)
** after every epoch, after training and when interrupted (Blocks'
** Checkpoint); --resume PATH loads it before training (Blocks' Load) and
** goes on from there: N is then the total number of epochs, so resume with
** a larger N than the checkpoint has done. The resumed run gives the
** parameters, optimiser state and log a run that never stopped gives.
** --plot PATH writes a live plot of the test cost and error rate to the
** page PATH (Blocks' Plot extension; open it in a browser while training
** runs; docs/guide.md, "Live plots"). */
#include <kiln/kiln.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

static int usage(const char *argv0)
{
    /* One line, as tests/test_train_e2e.c expects; the other options
    ** (--step-rule, --checkpoint, --resume, --plot) are in the comment above. */
    fprintf(stderr, "usage: %s [--epochs N] [--data DIR]\n", argv0);
    return 2;
}

/* Print what failed and say so through the exit status. */
static int die(const char *what, const char *msg)
{
    fprintf(stderr, "blocks_intro: %s: %s\n", what, msg);
    return 1;
}

static enum kiln_status open_split(const char *dir, const char *split, kiln_dataset **out)
{
    char images[4096], labels[4096];
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    return kiln_dataset_open_idx(images, labels, out);
}

int main(int argc, char **argv)
{
    long epochs = 1;
    const char *data = DEFAULT_DATA, *checkpoint = NULL, *resume = NULL;
    kiln_step_rule rule = kiln_step_scale(0.1);
    const char *plot = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc) {
            char *end;
            epochs = strtol(argv[++i], &end, 10);
            if (*end || epochs < 1 || epochs > 100000)
                return usage(argv[0]);
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data = argv[++i];
        } else if (strcmp(argv[i], "--step-rule") == 0 && i + 1 < argc) {
            if (!kiln_step_rule_by_name(argv[++i], 0, &rule))
                return usage(argv[0]);
        } else if (strcmp(argv[i], "--checkpoint") == 0 && i + 1 < argc) {
            checkpoint = argv[++i];
        } else if (strcmp(argv[i], "--resume") == 0 && i + 1 < argc) {
            resume = argv[++i];
        } else if (strcmp(argv[i], "--plot") == 0 && i + 1 < argc) {
            plot = argv[++i];
        } else {
            return usage(argv[0]);
        }
    }
    int rc = 1;
    kiln_dataset *train = NULL, *test = NULL;
    kiln_stream *train_stream = NULL, *test_stream = NULL;
    kiln_program *prog = NULL;
    kiln_main_loop *loop = NULL;
    kiln_brick *bricks[6] = {0};
    kiln_graph *g = NULL;

    /* Data: Fuel's MNIST(("train",)) with Flatten and a SequentialScheme. */
    if (open_split(data, "train", &train)) {
        rc = die("training data", kiln_dataset_errmsg(train));
        goto out;
    }
    if (open_split(data, "t10k", &test)) {
        rc = die("test data", kiln_dataset_errmsg(test));
        goto out;
    }

    /* The model, brick by brick as in the tutorial. */
    g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "features", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 784});
    kiln_node y = kiln_graph_input(g, "targets", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    kiln_brick *input_to_hidden = bricks[0] = kiln_linear_create("input_to_hidden", 784, 100);
    kiln_brick *rectifier = bricks[1] = kiln_rectifier_create(NULL);
    kiln_brick *hidden_to_output = bricks[2] = kiln_linear_create("hidden_to_output", 100, 10);
    kiln_brick *softmax = bricks[3] = kiln_softmax_create(NULL);
    kiln_brick *cce = bricks[4] = kiln_categorical_cross_entropy_create(NULL);
    kiln_brick *misclass = bricks[5] = kiln_misclassification_rate_create(NULL);
    for (int i = 0; i < 6; i++)
        if (!bricks[i]) {
            rc = die("bricks", "out of memory");
            goto out;
        }
    kiln_node h, a, y_hat, cost, error_rate;
    kiln_brick *failed = NULL;
    if (kiln_brick_apply(input_to_hidden, g, x, &h))
        failed = input_to_hidden;
    else if (kiln_brick_apply(rectifier, g, h, &h))
        failed = rectifier;
    else if (kiln_brick_apply(hidden_to_output, g, h, &a))
        failed = hidden_to_output;
    else if (kiln_brick_apply(softmax, g, a, &y_hat))
        failed = softmax;
    else if (kiln_cost_apply(cce, g, y, y_hat, &cost))
        failed = cce;
    else if (kiln_cost_apply(misclass, g, y, y_hat, &error_rate))
        failed = misclass;
    if (failed) {
        rc = die(kiln_brick_path(failed), kiln_brick_errmsg(failed));
        goto out;
    }

    /* L2 penalty on the weights, found by role as in the tutorial. */
    kiln_node weights[2];
    kiln_filter wf = {.roles = KILN_ROLE_WEIGHT};
    if (kiln_graph_filter(g, &cost, 1, &wf, weights, 2) != 2) {
        rc = die("weights", "expected two WEIGHT parameters");
        goto out;
    }
    kiln_node l2 = kiln_expr_add(g, kiln_expr_sum(g, kiln_expr_square(g, weights[0]), KILN_ALL_AXES),
                                 kiln_expr_sum(g, kiln_expr_square(g, weights[1]), KILN_ALL_AXES));
    kiln_node cost_reg = kiln_expr_add(g, cost, kiln_expr_mul(g, kiln_expr_constant(g, 0.005), l2));
    if (kiln_graph_set_name(g, cost_reg, "cost_with_regularization") || kiln_graph_status(g)) {
        rc = die("graph", kiln_graph_errmsg(g));
        goto out;
    }

    /* Initialization. */
    for (int i = 0; i < 3; i += 2) {
        kiln_brick_set_weights_init(bricks[i], kiln_init_isotropic_gaussian(0.01, 0));
        kiln_brick_set_biases_init(bricks[i], kiln_init_constant(0));
        if (kiln_brick_initialize(bricks[i])) {
            rc = die(kiln_brick_path(bricks[i]), kiln_brick_errmsg(bricks[i]));
            goto out;
        }
    }

    /* Compile: GradientDescent(cost, parameters, Scale(0.1)) or the rule
    ** asked for. */
    kiln_node monitors[2] = {cost_reg, error_rate};
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "mlp";
    o.cost = cost_reg;
    o.step_rule = rule;
    o.monitors = monitors;
    o.n_monitors = 2;
    o.max_batch = 1024;
    if (kiln_compile(g, &o, &prog)) {
        rc = die("compile", kiln_program_errmsg(prog));
        goto out;
    }

    /* The main loop and its extensions. */
    if (kiln_stream_create(train, KILN_SCHEME_SEQUENTIAL, 256, 0, &train_stream)) {
        rc = die("training stream", kiln_stream_errmsg(train_stream));
        goto out;
    }
    if (kiln_stream_create(test, KILN_SCHEME_SEQUENTIAL, 1024, 0, &test_stream)) {
        rc = die("test stream", kiln_stream_errmsg(test_stream));
        goto out;
    }
    if (kiln_main_loop_create(prog, train_stream, &loop)) {
        rc = die("main loop", kiln_main_loop_errmsg(loop));
        goto out;
    }
    kiln_extension *exts[] = {
        kiln_data_stream_monitoring(monitors, 2, test_stream, "test"),
        kiln_finish_after(epochs, 0),
        kiln_progress_bar(stdout),
        kiln_printing(stdout),
    };
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (kiln_main_loop_add_extension(loop, exts[i])) {
            rc = die("extensions", kiln_main_loop_errmsg(loop));
            goto out;
        }
    /* Checkpoint after every epoch, after training and on an interrupt;
    ** added after Printing, so each epoch's records are in the file. */
    kiln_extension *ck = checkpoint ? kiln_checkpoint(checkpoint) : NULL;
    if (ck && (kiln_extension_add_trigger(ck, KILN_TRIGGER_EVERY_N_EPOCHS, 1) ||
               kiln_extension_add_trigger(ck, KILN_TRIGGER_ON_INTERRUPT, 0))) {
        rc = die("checkpoint", kiln_extension_errmsg(ck));
        kiln_extension_destroy(ck);
        goto out;
    }
    if ((checkpoint && kiln_main_loop_add_extension(loop, ck)) ||
        (resume && kiln_main_loop_add_extension(loop, kiln_load(resume, true, true)))) {
        rc = die("extensions", kiln_main_loop_errmsg(loop));
        goto out;
    }
    if (plot) { /* Plot('blocks_intro', [['test_cost_with_regularization'], ['test_error_rate']]) */
        static const char *const costs[] = {"test_cost_with_regularization", NULL};
        static const char *const errors[] = {"test_error_rate", NULL};
        static const char *const *const figures[] = {costs, errors, NULL};
        if (kiln_main_loop_add_extension(loop, kiln_plot("blocks_intro", plot, figures))) {
            rc = die("plot", kiln_main_loop_errmsg(loop));
            goto out;
        }
    }
    if (kiln_main_loop_run(loop)) {
        rc = die("training", kiln_main_loop_errmsg(loop));
        goto out;
    }
    rc = 0;
out:
    kiln_main_loop_destroy(loop);
    kiln_program_destroy(prog);
    kiln_stream_destroy(train_stream);
    kiln_stream_destroy(test_stream);
    kiln_graph_destroy(g);
    for (int i = 0; i < 6; i++)
        kiln_brick_destroy(bricks[i]);
    kiln_dataset_destroy(train);
    kiln_dataset_destroy(test);
    return rc;
}
