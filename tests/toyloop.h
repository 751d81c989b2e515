/* toyloop.h: the toy problem of the main-loop tests (test_mainloop.c,
** test_extensions.c): a softmax regression (4 features -> 3 classes) on a
** separable set of examples, in batches of 3 (10 examples: 4 batches an
** epoch, the last one short), compiled through the public API. */
#ifndef KILN_TESTS_TOYLOOP_H
#define KILN_TESTS_TOYLOOP_H

#include "kiln/kiln.h"

#define N_FEAT 4
#define N_CLASS 3
#define N_TRAIN 10
#define BATCH 3
#define BATCHES_PER_EPOCH 4 /* ceil(N_TRAIN / BATCH) */

typedef struct toy {
    kiln_graph *g;
    kiln_brick *linear, *softmax, *cce;
    kiln_node x, y, cost;
    kiln_program *p;
} toy;

/* Toy data: class c = (i + salt) % 3; feature c is high, the others small. */
kiln_dataset *toy_dataset(int64_t n, int salt);
kiln_stream *toy_stream(kiln_dataset *d, int64_t batch);
/* x = input `input_name` (B, 4); cost = CCE(targets, softmax(linear(x))),
** named "cost" and monitored; Scale(lr). */
void toy_build(toy *t, const char *input_name, double lr);
void toy_free(toy *t);
/* Unweighted mean of the per-batch costs over one epoch of s (eval_step). */
double mean_cost(toy *t, kiln_stream *s);

#endif
