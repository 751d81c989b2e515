/* bench_model.h: the benchmark's model and data, shared by bench.c (kiln
** alone) and pair.c (kiln driven from torch_bench.py, alternating with
** PyTorch in one process): MLP 784-H-10 (ReLU, softmax cross-entropy, SGD
** lr 0.1) on synthetic data made by the same formula as torch_bench.py. */
#ifndef KILN_BENCH_MODEL_H
#define KILN_BENCH_MODEL_H

#include <kiln/kiln.h>

#define N_DATA 2000
#define N_IN 784
#define N_OUT 10

typedef struct net {
    kiln_graph *g;
    kiln_brick *mlp, *cce;
    kiln_node probs, cost;
} net;

/* Fill the shared data arrays (idempotent). */
void bench_make_data(void);
/* Exits with a message on failure: these are benchmark programs. */
void bench_die(const char *what, const char *msg);
/* Seconds on the monotonic clock. */
double bench_now(void);
/* qsort's comparison of two doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);
void bench_net_build(net *n, int64_t hidden);
void bench_net_free(net *n);
kiln_program *bench_compile_train(net *n, int64_t max_batch, const char *cache_dir);
kiln_program *bench_compile_forward(net *n, int64_t max_batch);
/* The training program with the probabilities as outputs too: its
** forward, beside an inference-only program's. */
kiln_program *bench_compile_train_forward(net *n, int64_t max_batch);
/* The forward program exported (kiln_program_export, built with the JIT's
** flags) and dlopen'ed: a context, and forward on batch k of size B. how:
** 0 plain C, 1 plain C with -march=native, 2 products through CBLAS. */
typedef struct bench_export bench_export;
bench_export *bench_export_open(net *n, int64_t max_batch, int how);
void bench_export_run(bench_export *e, int64_t k, int64_t B);
void bench_export_close(bench_export *e);
/* Bind batch k of size B (cycling through the data). */
void bench_bind_batch(kiln_program *p, int64_t k, int64_t B, bool targets);

#endif
