/* pair.c: kiln's benchmark cases as a shared library, so that
** torch_bench.py can time kiln and PyTorch in alternating repetitions inside
** one process (on a shared machine, measurements minutes apart drift by up
** to 30%; alternating puts both under the same drift).
**
**   kiln_pair *kiln_pair_open(int hidden, int batch, int mode)
**   double     kiln_pair_run(kiln_pair *p, long steps)  seconds for `steps` steps
**   void       kiln_pair_close(kiln_pair *p)
**
** mode 1 runs the training step (forward, backward, update); 0 the forward
** program; 2 the forward program exported to a .so (kiln_program_export,
** the JIT's flags), 3 the same with -march=native; 4 the forward of the
** training program; 5 the export with its products through CBLAS. Batches cycle through the data of bench_model.c. */
#include <stdlib.h>
#include <time.h>

#include "bench_lstm.h"
#include "bench_model.h"

typedef struct kiln_pair {
    net n;
    kiln_program *p;
    bench_export *e;
    int64_t batch, next;
    int train;
} kiln_pair;

__attribute__((visibility("default"))) kiln_pair *kiln_pair_open(int hidden, int batch, int mode)
{
    kiln_pair *k = calloc(1, sizeof *k);
    if (!k || hidden < 1 || batch < 1 || batch > N_DATA || mode < 0 || mode > 5)
        bench_die("pair", "bad arguments or out of memory");
    bench_make_data();
    bench_net_build(&k->n, hidden);
    if (mode == 2 || mode == 3 || mode == 5)
        k->e = bench_export_open(&k->n, batch, mode == 2 ? 0 : mode == 3 ? 1 : 2);
    else
        k->p = mode == 1 ? bench_compile_train(&k->n, batch, NULL)
             : mode == 4 ? bench_compile_train_forward(&k->n, batch) : bench_compile_forward(&k->n, batch);
    k->batch = batch;
    k->train = mode == 1;
    return k;
}

__attribute__((visibility("default"))) double kiln_pair_run(kiln_pair *k, long steps)
{
    double t = bench_now();
    for (long i = 0; i < steps && k->e; i++, k->next++)
        bench_export_run(k->e, k->next, k->batch);
    for (long i = 0; i < steps && !k->e; i++, k->next++) {
        bench_bind_batch(k->p, k->next, k->batch, k->train);
        if (k->train ? kiln_program_train_step(k->p, k->batch) : kiln_program_forward(k->p, k->batch))
            bench_die("pair step", kiln_program_errmsg(k->p));
    }
    return bench_now() - t;
}

__attribute__((visibility("default"))) void kiln_pair_close(kiln_pair *k)
{
    if (!k)
        return;
    kiln_program_destroy(k->p);
    bench_export_close(k->e);
    bench_net_free(&k->n);
    free(k);
}

/* The LSTM case: kiln_lstm_pair_open(hidden, T, batch), run, close. */
typedef struct kiln_lstm_pair {
    lstm_net n;
    kiln_program *p;
} kiln_lstm_pair;

__attribute__((visibility("default"))) kiln_lstm_pair *kiln_lstm_pair_open(int hidden, int T, int batch)
{
    kiln_lstm_pair *k = calloc(1, sizeof *k);
    if (!k || hidden < 1 || T < 1 || batch < 1)
        bench_die("lstm pair", "bad arguments or out of memory");
    bench_lstm_build(&k->n, hidden, T, batch);
    k->p = bench_lstm_compile(&k->n, NULL);
    return k;
}

__attribute__((visibility("default"))) double kiln_lstm_pair_run(kiln_lstm_pair *k, long steps)
{
    double t = bench_now();
    for (long i = 0; i < steps; i++)
        bench_lstm_step(&k->n, k->p);
    return bench_now() - t;
}

__attribute__((visibility("default"))) void kiln_lstm_pair_close(kiln_lstm_pair *k)
{
    if (!k)
        return;
    kiln_program_destroy(k->p);
    bench_lstm_free(&k->n);
    free(k);
}
