/* kiln/compile.h: compiling a graph into a program, and running it.
**
** kiln_compile differentiates the cost, optimises the graph, plans memory,
** generates one C translation unit, compiles it (clang, else gcc) into a
** shared object in a content-addressed cache and loads it. The program owns
** one arena: parameters | gradients | fixed-size values | batch-sized values.
**
** Entry points of a program:
**   forward     computes `outputs` from the inputs they need;
**   eval_step   computes the cost and `monitors` (no update);
**   train_step  computes the cost and `monitors` with the parameters as they
**               were, then the gradients, then applies the step rule (inside
**               a weight's gradient GEMM, as p -= lr * x^T d, where it can);
**   gradients   train_step without the update, keeping every gradient.
** Parameters are copied from the bricks when the program is created;
** kiln_program_store_params() copies them back. */
#ifndef KILN_COMPILE_H
#define KILN_COMPILE_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_program kiln_program;

enum kiln_step_rule_kind { KILN_STEP_SCALE };
/* GradientDescent's step rule; Scale(learning_rate): p -= lr * grad. */
typedef struct kiln_step_rule {
    enum kiln_step_rule_kind kind;
    double learning_rate;
} kiln_step_rule;
static inline kiln_step_rule kiln_step_scale(double lr) { return (kiln_step_rule){KILN_STEP_SCALE, lr}; }

typedef struct kiln_compile_options {
    /* Model name: the generated file and symbols take it ("mlp" gives
    ** mlp_train_step). Letters, digits, '_'; NULL means "model". */
    const char *name;
    /* Scalar to minimise. KILN_NODE_NONE (id -1): no train_step/eval_step. */
    kiln_node cost;
    kiln_step_rule step_rule;
    /* Values eval_step and train_step compute (Blocks' monitored variables);
    ** borrowed during the call. The cost is always computed. */
    const kiln_node *monitors;
    int n_monitors;
    /* Values forward computes (inference). */
    const kiln_node *outputs;
    int n_outputs;
    /* Largest batch a step may be given; the arena is sized for it. 0: 1024. */
    int64_t max_batch;
    /* Write the generated source here too (NULL: $KILN_DUMP_SOURCE, if set). */
    const char *source_path;
    /* Cache folder (NULL: $XDG_CACHE_HOME/kiln, else ~/.cache/kiln). */
    const char *cache_dir;
    /* C compiler to use (NULL: $KILN_CC, else clang, else gcc). */
    const char *cc;
    /* BLAS threads for large batches (0: as BLAS is configured, e.g. by
    ** OPENBLAS_NUM_THREADS). Batches smaller than small_batch run BLAS on one
    ** thread: waking helper threads costs more than such products take. So
    ** does a batch of at most 32 rows that kiln's own matrix kernel takes
    ** (AVX-512 CPUs): on one thread it beats OpenBLAS on two.
    ** OpenBLAS's thread count is process-wide; a step sets it and puts it back. */
    int threads;
    int64_t small_batch; /* 0: the batch at which the step's products reach 50 MFLOP */
} kiln_compile_options;

/* Options with every field at its default (cost = KILN_NODE_NONE). */
KILN_API kiln_compile_options kiln_compile_options_default(void);

/* Compile g (borrowed; the bricks it uses must outlive the program). *out is
** caller-owned (kiln_program_destroy) and set even on failure, unless out of
** memory (then NULL). KILN_OK, KILN_ERR_ARG, KILN_ERR_SHAPE, KILN_ERR_STATE
** (parameters not allocated), KILN_ERR_COMPILE, KILN_ERR_IO, KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_compile(kiln_graph *g, const kiln_compile_options *o,
                                       kiln_program **out);
KILN_API void kiln_program_destroy(kiln_program *p);
KILN_API const char *kiln_program_errmsg(const kiln_program *p);

/* The generated C source (borrowed, valid while p lives). */
KILN_API const char *kiln_program_source(const kiln_program *p);
/* True when loading this program ran the C compiler (false: cache hit). */
KILN_API bool kiln_program_compiler_ran(const kiln_program *p);
/* Path of the loaded shared object (borrowed). */
KILN_API const char *kiln_program_library_path(const kiln_program *p);
KILN_API int64_t kiln_program_max_batch(const kiln_program *p);
KILN_API bool kiln_program_can_train(const kiln_program *p);

/* Inputs the program reads, by name. dtype and per-example shape let a data
** stream check its sources before the first step. */
KILN_API int kiln_program_input_count(const kiln_program *p);
KILN_API const char *kiln_program_input_name(const kiln_program *p, int i);
KILN_API enum kiln_dtype kiln_program_input_dtype(const kiln_program *p, int i);
/* Elements per example (product of the dims after the batch dim; the whole
** size when the input has no batch dim). */
KILN_API int64_t kiln_program_input_example_size(const kiln_program *p, int i);
KILN_API bool kiln_program_input_batched(const kiln_program *p, int i);

/* Point input `name` at data (borrowed until the next step call), laid out
** row-major, with the input's dtype. KILN_ERR_NOT_FOUND names the inputs. */
KILN_API enum kiln_status kiln_program_bind_input(kiln_program *p, const char *name,
                                                  const void *data);

/* Run an entry point on a batch of `batch` examples (1..max_batch). Every
** input the entry point reads must be bound. */
KILN_API enum kiln_status kiln_program_forward(kiln_program *p, int64_t batch);
KILN_API enum kiln_status kiln_program_eval_step(kiln_program *p, int64_t batch);
KILN_API enum kiln_status kiln_program_train_step(kiln_program *p, int64_t batch);

/* Read a value computed by the last step: n must be one of the cost,
** monitors or outputs; count is its element count for the last batch.
** Values are converted to double. */
KILN_API enum kiln_status kiln_program_read(kiln_program *p, kiln_node n, double *dst,
                                            int64_t count);
KILN_API enum kiln_status kiln_program_read_scalar(kiln_program *p, kiln_node n, double *out);
/* Gradient of the cost with respect to parameter node n, computed by the
** last kiln_program_gradients() call (train_step applies updates inside the
** gradient products where it can and keeps no gradients: KILN_ERR_STATE). */
KILN_API enum kiln_status kiln_program_read_gradient(kiln_program *p, kiln_node param,
                                                     double *dst, int64_t count);
/* Forward and backward without the update (for gradient checks). */
KILN_API enum kiln_status kiln_program_gradients(kiln_program *p, int64_t batch);

/* Parameters: program <-> bricks. */
KILN_API enum kiln_status kiln_program_load_params(kiln_program *p);
KILN_API enum kiln_status kiln_program_store_params(kiln_program *p);
KILN_API enum kiln_status kiln_program_set_param(kiln_program *p, kiln_node param,
                                                 const double *src, int64_t count);
KILN_API enum kiln_status kiln_program_get_param(kiln_program *p, kiln_node param,
                                                 double *dst, int64_t count);
KILN_API int64_t kiln_program_param_floats(const kiln_program *p);

/* Name of node n as the program knows it (the graph's name at compile time),
** "" if unnamed. Borrowed, valid while p lives. */
KILN_API const char *kiln_program_node_name(const kiln_program *p, kiln_node n);
/* True when n is the cost, a monitor or an output of p. */
KILN_API bool kiln_program_has_value(const kiln_program *p, kiln_node n);

/* Learning rate of the step rule, a run-time hyperparameter of the program. */
KILN_API enum kiln_status kiln_program_set_learning_rate(kiln_program *p, double lr);

#ifdef __cplusplus
}
#endif
#endif
