/* kiln/bricks.h: bricks (as in Blocks) and their life cycle.
**
** A brick is a parametrised operation. Life cycle (Blocks):
**   configure   create with dims, or set them later (lazy configuration);
**   allocate    parameters exist, filled with NaN; children first;
**   apply       adds nodes to a graph (allocates when needed);
**   initialize  fills parameters from weights_init / biases_init.
** Apply and initialize may come in either order. A parent pushes its
** configuration (dims, initialization schemes) to its children before it
** allocates or initializes, overwriting what the children had; to override a
** child, call kiln_brick_push_initialization_config() and then change the child.
**
** Ownership: bricks are caller-owned; a parent owns the children it is given
** or makes, and destroys them. Graphs and programs built from a brick borrow
** its parameters: destroy them before the brick. */
#ifndef KILN_BRICKS_H
#define KILN_BRICKS_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Initialization schemes (blocks.initialization) ------------------- */

enum kiln_init_kind { KILN_INIT_NONE, KILN_INIT_CONSTANT, KILN_INIT_GAUSSIAN, KILN_INIT_UNIFORM };
typedef struct kiln_init {
    enum kiln_init_kind kind;
    double a, b; /* constant: a; gaussian: std a, mean b; uniform: mean a, width b */
} kiln_init;

static inline kiln_init kiln_init_constant(double c) { return (kiln_init){KILN_INIT_CONSTANT, c, 0}; }
/* IsotropicGaussian(std=1, mean=0): std first, as in Blocks. */
static inline kiln_init kiln_init_isotropic_gaussian(double std, double mean)
{ return (kiln_init){KILN_INIT_GAUSSIAN, std, mean}; }
/* Uniform on [mean - width/2, mean + width/2]. */
static inline kiln_init kiln_init_uniform(double mean, double width)
{ return (kiln_init){KILN_INIT_UNIFORM, mean, width}; }

/* ---- Creating bricks --------------------------------------------------- */

/* name may be NULL: the class name lower-cased ("linear", "mlp"). A dim of 0
** is "not set yet" (lazy). All return NULL only when out of memory or when
** name is longer than KILN_MAX_NAME. */
KILN_API kiln_brick *kiln_linear_create(const char *name, int64_t input_dim, int64_t output_dim);
KILN_API kiln_brick *kiln_bias_create(const char *name, int64_t dim);
KILN_API kiln_brick *kiln_identity_create(const char *name);
KILN_API kiln_brick *kiln_rectifier_create(const char *name);
KILN_API kiln_brick *kiln_tanh_create(const char *name);
KILN_API kiln_brick *kiln_logistic_create(const char *name);
KILN_API kiln_brick *kiln_softplus_create(const char *name);
KILN_API kiln_brick *kiln_softmax_create(const char *name);
/* Sequence: applies children in order; takes ownership of children[0..n). */
KILN_API kiln_brick *kiln_sequence_create(const char *name, kiln_brick *const *children, int n);
/* MLP(activations, dims): n_layers activations (NULL = None, no activation),
** dims has n_layers + 1 entries (0 = lazy). Takes ownership of the
** activations; children are linear_0, <act 0>, linear_1, ... */
KILN_API kiln_brick *kiln_mlp_create(const char *name, kiln_brick *const *activations,
                                     int n_layers, const int64_t *dims);

/* Cost bricks (blocks.bricks.cost): apply(y, y_hat). */
KILN_API kiln_brick *kiln_categorical_cross_entropy_create(const char *name);
KILN_API kiln_brick *kiln_binary_cross_entropy_create(const char *name);
KILN_API kiln_brick *kiln_squared_error_create(const char *name);
KILN_API kiln_brick *kiln_absolute_error_create(const char *name);
/* Output named error_rate: mean of argmax(y_hat) != y. top_k = 1; a tie
** takes the first maximum, as Theano's argmax (and Blocks' top_k = 1 code). */
KILN_API kiln_brick *kiln_misclassification_rate_create(const char *name);

KILN_API void kiln_brick_destroy(kiln_brick *b);
KILN_API const char *kiln_brick_errmsg(const kiln_brick *b);

/* ---- Structure ---------------------------------------------------------- */

KILN_API const char *kiln_brick_name(const kiln_brick *b);
/* "/mlp/linear_0". Borrowed, valid until the brick changes parent. */
KILN_API const char *kiln_brick_path(const kiln_brick *b);
KILN_API int kiln_brick_child_count(const kiln_brick *b);
KILN_API kiln_brick *kiln_brick_child(const kiln_brick *b, int i);
KILN_API kiln_brick *kiln_brick_child_by_name(const kiln_brick *b, const char *name);
KILN_API kiln_brick *kiln_brick_parent(const kiln_brick *b);

/* ---- Configuration ------------------------------------------------------- */

/* Named dims ("input_dim", "output_dim", "dim"). get gives 0 when not set,
** KILN_ERR_NOT_FOUND when the brick has no such dim. */
KILN_API enum kiln_status kiln_brick_set_dim(kiln_brick *b, const char *name, int64_t value);
KILN_API enum kiln_status kiln_brick_get_dim(const kiln_brick *b, const char *name, int64_t *out);
KILN_API enum kiln_status kiln_brick_set_weights_init(kiln_brick *b, kiln_init init);
KILN_API enum kiln_status kiln_brick_set_biases_init(kiln_brick *b, kiln_init init);
KILN_API enum kiln_status kiln_brick_set_use_bias(kiln_brick *b, bool use_bias);
/* Seed of the brick's RNG (default: derived from the parent's, root 1). */
KILN_API enum kiln_status kiln_brick_set_seed(kiln_brick *b, uint64_t seed);

/* ---- Life cycle ------------------------------------------------------------ */

KILN_API enum kiln_status kiln_brick_push_allocation_config(kiln_brick *b);
KILN_API enum kiln_status kiln_brick_allocate(kiln_brick *b);
KILN_API enum kiln_status kiln_brick_push_initialization_config(kiln_brick *b);
KILN_API enum kiln_status kiln_brick_initialize(kiln_brick *b);
KILN_API bool kiln_brick_allocated(const kiln_brick *b);
KILN_API bool kiln_brick_initialized(const kiln_brick *b);

/* Apply b to inputs in g; *out is its output (named <brick>_apply_output,
** role OUTPUT). Allocates b if needed. Errors read from b. */
KILN_API enum kiln_status kiln_brick_apply(kiln_brick *b, kiln_graph *g, kiln_node input,
                                           kiln_node *out);
/* Softmax's other applications: log-softmax, and the stable cross-entropy
** of integer targets y (vector) given pre-softmax x, one value per row. */
KILN_API enum kiln_status kiln_softmax_log_probabilities(kiln_brick *b, kiln_graph *g,
                                                         kiln_node x, kiln_node *out);
KILN_API enum kiln_status kiln_softmax_categorical_cross_entropy(kiln_brick *b, kiln_graph *g,
                                                                 kiln_node y, kiln_node x,
                                                                 kiln_node *out);
/* Cost bricks: a scalar (role COST... only after the user adds it). */
KILN_API enum kiln_status kiln_cost_apply(kiln_brick *b, kiln_graph *g, kiln_node y,
                                          kiln_node y_hat, kiln_node *out);

/* ---- Parameters ----------------------------------------------------------- */

/* The brick's own parameters, in Blocks' order (Linear: W, b). Valid while b
** lives; none before allocation. */
KILN_API int kiln_brick_param_count(const kiln_brick *b);
KILN_API kiln_param *kiln_brick_param(const kiln_brick *b, int i);
KILN_API kiln_param *kiln_brick_param_by_name(const kiln_brick *b, const char *name);

/* A parameter of no brick (Theano's shared variable), allocated and filled
** with NaN. Caller-owned: kiln_param_destroy, after the graphs and programs
** that use it. name is copied (1 to KILN_MAX_NAME characters). NULL when out
** of memory or on a bad argument. */
KILN_API kiln_param *kiln_param_create(const char *name, int rank, const int64_t *dims);
/* A persistent state of no brick (Theano's shared variable that is not a
** parameter: a counter, a running average): it gets no gradient, and a
** graph update (kiln_graph_update) changes it at the end of each
** train_step. Zero-filled; float values (the graph's floats in a program).
** Caller-owned like kiln_param_create (kiln_param_destroy); kiln_graph_param
** gives its node. NULL on a bad argument or when out of memory. */
KILN_API kiln_param *kiln_state_create(const char *name, int rank, const int64_t *dims);
/* Destroy a parameter made by kiln_param_create; NULL is a no-op (a brick's
** parameters belong to the brick and are left alone). */
KILN_API void kiln_param_destroy(kiln_param *p);
/* The node standing for p in g (made on first use). */
KILN_API kiln_node kiln_graph_param(kiln_graph *g, kiln_param *p);

KILN_API const char *kiln_param_name(const kiln_param *p); /* "W" */
KILN_API kiln_brick *kiln_param_brick(const kiln_param *p);
KILN_API int kiln_param_rank(const kiln_param *p);
KILN_API int64_t kiln_param_dim(const kiln_param *p, int axis);
KILN_API int64_t kiln_param_size(const kiln_param *p);
/* Copy values out of / into the parameter (row-major, n == size). */
KILN_API enum kiln_status kiln_param_get_values(const kiln_param *p, double *dst, int64_t n);
KILN_API enum kiln_status kiln_param_set_values(kiln_param *p, const double *src, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
