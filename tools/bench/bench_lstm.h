/* bench_lstm.h: the recurrent benchmark's model and data, shared by bench.c
** and pair.c as bench_model.h is: an LSTM of H units over a sequence of T
** steps of N_LSTM_IN features, batch B (Blocks' LSTM with peepholes, after
** a Linear to 4H with a bias, as PyTorch's nn.LSTM computes W_ih x + b),
** the cost the mean of the squared outputs h, SGD lr 0.01, on synthetic
** data made by the same formula as torch_bench.py. */
#ifndef KILN_BENCH_LSTM_H
#define KILN_BENCH_LSTM_H

#include <kiln/kiln.h>

#define N_LSTM_IN 256

typedef struct lstm_net {
    kiln_graph *g;
    kiln_brick *proj, *lstm;
    kiln_node cost;
    float *x;          /* (T, B, N_LSTM_IN) */
    int64_t T, B;
} lstm_net;

void bench_lstm_build(lstm_net *n, int64_t hidden, int64_t T, int64_t B);
void bench_lstm_free(lstm_net *n);
/* The training program; cache_dir NULL: the default cache. */
kiln_program *bench_lstm_compile(lstm_net *n, const char *cache_dir);
/* The same with kiln's kernels of isa (NULL: $KILN_ISA, else the best) and,
** if plain, no fast paths (lstm_ab.c). */
kiln_program *bench_lstm_compile_as(lstm_net *n, const char *cache_dir, const char *isa, bool plain);
/* One training step (the data bound). */
void bench_lstm_step(lstm_net *n, kiln_program *p);

#endif
