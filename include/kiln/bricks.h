/* kiln/bricks.h: bricks (as in Blocks), their life cycle, and how to define
** a new kind of brick.
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
** A brick's kind is a kiln_brick_class: data and callbacks, as a Blocks
** user subclasses Brick and decorates methods with @application. The bricks
** below (Linear, MLP, Fork, ...) are classes of that model; a program can
** define its own with the calls of the last sections.
**
** Ownership: bricks are caller-owned; a parent owns the children it is given
** or makes, and destroys them (kiln_brick_destroy on a child does nothing).
** Graphs and programs built from a brick keep its parameters alive, so the
** brick may be destroyed before them: a program then still trains and
** kiln_program_store_params still succeeds, into parameters only the
** program sees; kiln_param_brick of such a parameter is NULL. */
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
/* MLP(activations, dims): n_layers activations (NULL = None, no activation;
** activations NULL: none at all), dims has n_layers + 1 entries (0 = lazy).
** Takes ownership of the activations whatever the outcome, once they are
** seen to be distinct bricks without a parent (else they are left alone and
** NULL is returned); children are linear_0, <act 0>, linear_1, ... */
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

/* Routing bricks (blocks.bricks.parallel). Each makes one copy of prototype
** per name (kiln_brick_clone), named "<prefix>_<name>", as its children in
** the order of names, and pushes their dims at allocation: the copy for
** name i gets input_dim and output_dim from the dims below. prototype must
** be a Feedforward brick: dims input_dim and output_dim, and an application
** "apply" of one input and one output. NULL: the default prototype. It is
** taken whatever the outcome (ownership passes; it must have no parent),
** copied, then destroyed. names[0..n) are copied; n >= 1, distinct,
** non-empty. A dims array may be NULL (all lazy); a dim of 0 is lazy, set
** later by name: "input_dims.<name>", "output_dims.<name>", "input_dim",
** "output_dim", "target_dims.<name>", "source_dim" as each brick lists.
** NULL when out of memory or on a bad argument (a name too long included).
** Initializable: weights_init / biases_init are pushed to the copies.
**
** Parallel(input_names, input_dims, output_dims, prototype, child_prefix):
** apply(<input_names>) -> <input_names>, copy i applied to input i.
** child_prefix NULL: "transform". Dims "input_dims.<name>",
** "output_dims.<name>". prototype is required. */
KILN_API kiln_brick *kiln_parallel_create(const char *name, const char *const *input_names, int n,
                                          const int64_t *input_dims, const int64_t *output_dims,
                                          kiln_brick *prototype, const char *child_prefix);
/* Fork(output_names, input_dim, output_dims, prototype): apply(input) ->
** <output_names>, every copy applied to the one input. Children
** "fork_<name>"; default prototype an affine Linear (with bias). Dims
** "input_dim", "output_dims.<name>". */
KILN_API kiln_brick *kiln_fork_create(const char *name, const char *const *output_names, int n,
                                      int64_t input_dim, const int64_t *output_dims,
                                      kiln_brick *prototype);
/* Distribute(target_names, source_name, target_dims, source_dim, prototype):
** apply(<source>, <targets>) -> <targets>, target i + copy i (source).
** Children "fork_<name>" (Distribute is a Fork in Blocks); default prototype
** Linear without bias, as Blocks'. Dims "source_dim", "target_dims.<name>". */
KILN_API kiln_brick *kiln_distribute_create(const char *name, const char *const *target_names, int n,
                                            const char *source_name, const int64_t *target_dims,
                                            int64_t source_dim, kiln_brick *prototype);
/* Merge(input_names, input_dims, output_dim, prototype, child_prefix):
** apply(<input_names>) -> output, the sum of copy i (input i). Default
** prototype Linear without bias (for one bias, set use_bias on child 0);
** child_prefix NULL: "transform". Dims "input_dims.<name>", "output_dim". */
KILN_API kiln_brick *kiln_merge_create(const char *name, const char *const *input_names, int n,
                                       const int64_t *input_dims, int64_t output_dim,
                                       kiln_brick *prototype, const char *child_prefix);

/* Destroy b and its children. A child (a brick with a parent) is its
** parent's to destroy: this does nothing then. NULL: nothing. */
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
/* Make child (a root: no parent) the last child of parent; on KILN_OK the
** parent owns it (destroys it), on failure the caller still does. Paths of
** child's subtree change. KILN_ERR_ARG (child has a parent, or is parent or
** one of its ancestors), KILN_ERR_NOMEM; the message is on parent. */
KILN_API enum kiln_status kiln_brick_add_child(kiln_brick *parent, kiln_brick *child);
/* A copy of b's configuration (class, dims, schemes, use_bias, seed, the
** class's data, its applications' inputs and outputs) and of its children's,
** named name (NULL: b's name), not allocated: Blocks' copy.deepcopy of a
** prototype. Caller-owned. NULL when out of memory, name too long, or the
** class's copy callback failed. */
KILN_API kiln_brick *kiln_brick_clone(const kiln_brick *b, const char *name);

/* ---- Configuration ------------------------------------------------------- */

/* Named dims ("input_dim", "output_dim", "dim", "output_dims.y"): the
** class's, and those its bricks add (kiln_brick_add_dim). get gives 0 when
** not set, KILN_ERR_NOT_FOUND when the brick has no such dim. set clears the
** pushed flag: the next allocation pushes again. */
KILN_API enum kiln_status kiln_brick_set_dim(kiln_brick *b, const char *name, int64_t value);
KILN_API enum kiln_status kiln_brick_get_dim(const kiln_brick *b, const char *name, int64_t *out);
KILN_API enum kiln_status kiln_brick_set_weights_init(kiln_brick *b, kiln_init init);
KILN_API enum kiln_status kiln_brick_set_biases_init(kiln_brick *b, kiln_init init);
KILN_API enum kiln_status kiln_brick_set_use_bias(kiln_brick *b, bool use_bias);
/* Seed of the brick's RNG (default: derived from the parent's; a root's is
** the configuration's default_seed, 1 unless set: config.h). KILN_SEED_DEFAULT:
** default_seed, read when the brick is initialized. */
KILN_API enum kiln_status kiln_brick_set_seed(kiln_brick *b, uint64_t seed);

/* ---- Life cycle ------------------------------------------------------------ */

KILN_API enum kiln_status kiln_brick_push_allocation_config(kiln_brick *b);
KILN_API enum kiln_status kiln_brick_allocate(kiln_brick *b);
KILN_API enum kiln_status kiln_brick_push_initialization_config(kiln_brick *b);
KILN_API enum kiln_status kiln_brick_initialize(kiln_brick *b);
KILN_API bool kiln_brick_allocated(const kiln_brick *b);
KILN_API bool kiln_brick_initialized(const kiln_brick *b);

/* Call application `app` of b (Blocks' b.app(*inputs)) in g: inputs[i] is
** the node for input i, in the order kiln_brick_input_name gives,
** KILN_NODE_NONE for an omitted optional input; outputs[0..n_out) receive
** the outputs, each a node named "<brick>_<app>_<output>" (Blocks' naming),
** with role OUTPUT and owner b's path; an output that would be a node that
** exists already (an input, a child's output) is a fresh copy of it, as
** Blocks copies. Allocates b if needed. Every output is KILN_NODE_NONE on
** failure; the message names b's path and what was wrong, on b and on g.
** KILN_ERR_ARG: no such application, n_in or n_out is not the
** application's count, an input is not a node of g.
** KILN_ERR_SHAPE: an input of the wrong dtype, rank or last dim.
** KILN_ERR_CONFIG: allocation config not set. Or what the class returns. */
KILN_API enum kiln_status kiln_brick_call(kiln_brick *b, const char *app, kiln_graph *g,
                                          const kiln_node *inputs, int n_in, kiln_node *outputs,
                                          int n_out);
/* kiln_brick_call(b, "apply", g, &input, 1, out, 1): *out is named
** <brick>_apply_output for the bricks above. When apply's other inputs
** are all optional they are omitted (Blocks' rnn.apply(x)). */
KILN_API enum kiln_status kiln_brick_apply(kiln_brick *b, kiln_graph *g, kiln_node input,
                                           kiln_node *out);
/* Softmax's other applications: log-softmax, and the stable cross-entropy
** of integer targets y (vector) given pre-softmax x, one value per row. */
KILN_API enum kiln_status kiln_softmax_log_probabilities(kiln_brick *b, kiln_graph *g,
                                                         kiln_node x, kiln_node *out);
KILN_API enum kiln_status kiln_softmax_categorical_cross_entropy(kiln_brick *b, kiln_graph *g,
                                                                 kiln_node y, kiln_node x,
                                                                 kiln_node *out);
/* Cost bricks: a scalar (role COST... only after the user adds it).
** kiln_brick_call(b, "apply", g, {y, y_hat}, 2, out, 1). */
KILN_API enum kiln_status kiln_cost_apply(kiln_brick *b, kiln_graph *g, kiln_node y,
                                          kiln_node y_hat, kiln_node *out);

/* Applications' metadata (Blocks' Foo.apply.inputs, .outputs), per brick:
** routing bricks name theirs after their configuration. Names are borrowed,
** valid while b lives and its class's arrays do. Counts are -1 and names
** NULL for an unknown application or index. */
KILN_API int kiln_brick_application_count(const kiln_brick *b);
KILN_API const char *kiln_brick_application_name(const kiln_brick *b, int i);
KILN_API int kiln_brick_input_count(const kiln_brick *b, const char *app);
KILN_API const char *kiln_brick_input_name(const kiln_brick *b, const char *app, int i);
KILN_API bool kiln_brick_input_optional(const kiln_brick *b, const char *app, int i);
KILN_API int kiln_brick_output_count(const kiln_brick *b, const char *app);
KILN_API const char *kiln_brick_output_name(const kiln_brick *b, const char *app, int i);

/* ---- Parameters ----------------------------------------------------------- */

/* The brick's own parameters, in Blocks' order (Linear: W, b). Valid while b
** lives; none before allocation. */
KILN_API int kiln_brick_param_count(const kiln_brick *b);
KILN_API kiln_param *kiln_brick_param(const kiln_brick *b, int i);
KILN_API kiln_param *kiln_brick_param_by_name(const kiln_brick *b, const char *name);

/* A parameter of no brick (Theano's shared variable), allocated and filled
** with NaN. Caller-owned: kiln_param_destroy, in any order with the graphs
** and programs that use it (they keep it alive). name is copied (1 to
** KILN_MAX_NAME characters). NULL when out of memory or on a bad argument
** (dims NULL with rank > 0, a dim <= 0, values past KILN_MAX_BYTES). */
KILN_API kiln_param *kiln_param_create(const char *name, int rank, const int64_t *dims);
/* A persistent state of no brick (Theano's shared variable that is not a
** parameter: a counter, a running average): it gets no gradient, and a
** graph update (kiln_graph_update) changes it at the end of each
** train_step. Zero-filled; float values (the graph's floats in a program).
** Caller-owned like kiln_param_create (kiln_param_destroy); kiln_graph_param
** gives its node. NULL on a bad argument or when out of memory. */
KILN_API kiln_param *kiln_state_create(const char *name, int rank, const int64_t *dims);
/* Destroy a parameter made by kiln_param_create: drops the caller's
** reference; graphs and programs that use it keep it until they go. NULL is
** a no-op, and so is a brick's parameter (the brick's to free). */
KILN_API void kiln_param_destroy(kiln_param *p);
/* The node standing for p in g (made on first use); g keeps p alive. */
KILN_API kiln_node kiln_graph_param(kiln_graph *g, kiln_param *p);

KILN_API const char *kiln_param_name(const kiln_param *p); /* "W" */
/* p's brick; NULL for a parameter of no brick, or once its brick is gone. */
KILN_API kiln_brick *kiln_param_brick(const kiln_param *p);
KILN_API int kiln_param_rank(const kiln_param *p);
KILN_API int64_t kiln_param_dim(const kiln_param *p, int axis);
KILN_API int64_t kiln_param_size(const kiln_param *p);
/* Copy values out of / into the parameter (row-major, n == size). */
KILN_API enum kiln_status kiln_param_get_values(const kiln_param *p, double *dst, int64_t n);
KILN_API enum kiln_status kiln_param_set_values(kiln_param *p, const double *src, int64_t n);
/* Message of the last failed get/set_values on p ("ok" after a success; for
** a brick's parameter the same text is also on the brick). Borrowed, valid
** until the next call on p. */
KILN_API const char *kiln_param_errmsg(const kiln_param *p);

/* ---- Defining a brick class (Blocks: subclass Brick, @application) ------ */

/* What a class is (Blocks' mixins). */
enum kiln_brick_flag {
    /* Initializable: weights_init, biases_init, seed; the default pushes
    ** them (and use_bias when set) to Initializable children. */
    KILN_BRICK_INITIALIZABLE = 1u << 0,
    /* has use_bias (kiln_brick_set_use_bias, kiln_brick_use_bias) */
    KILN_BRICK_USE_BIAS = 1u << 1,
    /* Activation: elementwise, every output has its inputs' shape (checked
    ** after each call, so a class that breaks it is named) */
    KILN_BRICK_ACTIVATION = 1u << 2
};

/* Checks made on an input before the application function runs. */
enum kiln_brick_input_flag {
    KILN_INPUT_OPTIONAL = 1u << 0, /* may be KILN_NODE_NONE (Blocks' mask=None) */
    KILN_INPUT_FLOAT = 1u << 1,    /* of the graph's floatx */
    KILN_INPUT_LABELS = 1u << 2,   /* an int32 vector of class indices */
    /* What an input of a recurrent application is (Blocks' @recurrent(
    ** sequences=, states=, contexts=)); see "Recurrent bricks" below. A
    ** sequence's rank is declared for one step, without the time axis. */
    KILN_INPUT_SEQUENCE = 1u << 3,
    KILN_INPUT_STATE = 1u << 4,
    KILN_INPUT_CONTEXT = 1u << 5
};

/* One input of an application. A list of them ends with a {NULL} entry. */
typedef struct kiln_brick_input {
    const char *name;     /* "input" (Blocks' input_, without the underscore) */
    unsigned flags;       /* enum kiln_brick_input_flag */
    int rank;             /* required rank; 0: any */
    const char *layout;   /* the rank in words for messages: "(batch, input_dim)" */
    const char *last_dim; /* the brick's dim its last axis must equal (when set),
                          ** or a multiple of it: "4*dim" (an LSTM's inputs);
                          ** NULL: none */
} kiln_brick_input;

/* Builds application outputs: inputs[i] for input i (KILN_NODE_NONE when an
** optional one is omitted), already checked against the input list; write
** outputs[0..n_outputs). Build with the public builders; the call names and
** tags the outputs afterwards. Return KILN_OK, or a status with the message
** recorded by kiln_brick_fail / kiln_brick_fail_from (a failed builder
** needs neither: the graph's message is taken). */
typedef enum kiln_status (*kiln_brick_application_fn)(kiln_brick *b, kiln_graph *g,
                                                      const kiln_node *inputs, kiln_node *outputs);

/* Application outputs named <output> rather than <brick>_<app>_<output>. */
#define KILN_APPLICATION_BARE_NAMES (1u << 0)
/* A recurrent application (Blocks' @recurrent): fn builds ONE step and the
** machinery iterates it (see "Recurrent bricks" below). */
#define KILN_APPLICATION_RECURRENT (1u << 1)
/* An application that reads the recurrent options of its call
** (kiln_brick_recurrent_options) and passes them on to recurrent children
** (Bidirectional, RecurrentStack), so kiln_recurrent_call accepts it. */
#define KILN_APPLICATION_OPTIONS (1u << 2)

/* An application (Blocks' @application(inputs=[...], outputs=[...])). A
** list of them ends with a {NULL} entry. */
typedef struct kiln_brick_application {
    const char *name;                /* "apply" */
    const kiln_brick_input *inputs;  /* ends with {NULL}; NULL: none */
    const char *const *outputs;      /* ends with NULL; at least one */
    kiln_brick_application_fn fn;
    unsigned flags;                  /* KILN_APPLICATION_BARE_NAMES */
} kiln_brick_application;

/* A class: data and callbacks, borrowed by every brick made from it (give it
** static storage). Every callback may be NULL. Callbacks report failures
** with kiln_brick_fail on b and return the status. */
typedef struct kiln_brick_class {
    const char *class_name;   /* Blocks' class ("Linear"): messages */
    const char *default_name; /* a brick's name when created with NULL ("linear") */
    unsigned flags;           /* enum kiln_brick_flag */
    size_t data_size;         /* bytes of each brick's own data, zeroed (kiln_brick_data) */
    /* Named dims, each 0 (not set) at creation, ending with NULL; a dim known
    ** by several names lists them with '|' ("dim|input_dim|output_dim"). */
    const char *const *dims;
    const kiln_brick_application *applications; /* ends with {NULL} */
    /* Configure the children from b (Blocks' _push_allocation_config), e.g.
    ** their dims with kiln_brick_set_dim; the children's own pushes follow. */
    enum kiln_status (*push_allocation_config)(kiln_brick *b);
    /* Declare b's own parameters with kiln_brick_add_param, in Blocks' order;
    ** children are allocated before. NULL: none. */
    enum kiln_status (*allocate)(kiln_brick *b);
    /* After the Initializable default (see enum kiln_brick_flag). */
    enum kiln_status (*push_initialization_config)(kiln_brick *b);
    /* Fill b's own parameters; children are initialized before. NULL:
    ** kiln_brick_init_weights_and_biases. Draw with kiln_brick_fill_param. */
    enum kiln_status (*initialize)(kiln_brick *b);
    /* Fill dst's zeroed data from src's (kiln_brick_clone). NULL: a byte
    ** copy, right for data holding no pointers. On failure leave dst's data
    ** fit for destroy. */
    enum kiln_status (*copy)(kiln_brick *dst, const kiln_brick *src);
    /* Free what b's data owns (not the data itself). */
    void (*destroy)(kiln_brick *b);
    /* Blocks' initial_states: *out = the value of state `state` (an input
    ** name of a recurrent application) before the first step, for a batch
    ** of `batch` rows (a dim of g: KILN_BATCH, a constant, ...), built in g.
    ** NULL: zeros of (batch, last_dim) from the state's declaration. */
    enum kiln_status (*initial_state)(kiln_brick *b, kiln_graph *g, const char *state, int64_t batch,
                                      kiln_node *out);
} kiln_brick_class;

/* A brick of class cls (borrowed; must outlive the brick), named name (NULL:
** cls->default_name). Caller-owned (kiln_brick_destroy). NULL when out of
** memory, name is longer than KILN_MAX_NAME, or cls is incomplete (no
** class_name, default_name, or an application without fn or outputs). */
KILN_API kiln_brick *kiln_brick_create(const kiln_brick_class *cls, const char *name);
KILN_API const kiln_brick_class *kiln_brick_class_of(const kiln_brick *b);
/* The class's data of b (cls->data_size bytes; NULL when 0). */
KILN_API void *kiln_brick_data(const kiln_brick *b);

/* Record "<path>: <formatted message>" on b; returns status. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
KILN_API enum kiln_status kiln_brick_fail(kiln_brick *b, enum kiln_status status, const char *fmt, ...);
/* Make child's failure b's, message unchanged (it names the child's path). */
KILN_API enum kiln_status kiln_brick_fail_from(kiln_brick *b, const kiln_brick *child);

/* Add a dim to b alone (a routing brick's per-name dims): names as in
** kiln_brick_class.dims, copied; value >= 0. KILN_ERR_ARG when a name is
** taken or bad, KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_brick_add_dim(kiln_brick *b, const char *names, int64_t value);
/* Dim `name` of b, 0 when not set or unknown. */
KILN_API int64_t kiln_brick_dim(const kiln_brick *b, const char *name);
/* *out = dim `name`; KILN_ERR_CONFIG "allocation config not set: <name>"
** when it is 0 (for an allocate callback). */
KILN_API enum kiln_status kiln_brick_require_dim(kiln_brick *b, const char *name, int64_t *out);

/* Give b's application `app` other inputs and outputs than its class's
** (Blocks' @apply.property('inputs')): lists as in kiln_brick_application,
** copied. KILN_ERR_NOT_FOUND, KILN_ERR_ARG, KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_brick_set_application_io(kiln_brick *b, const char *app,
                                                        const kiln_brick_input *inputs,
                                                        const char *const *outputs);

/* In an allocate callback only: declare parameter `name` (copied, unique in
** b) of shape dims[0..rank), roles (PARAMETER is added; WEIGHT and BIAS
** choose the default initialization). *out (may be NULL) is its store
** entry, NaN-filled once allocate returns; a parameter of the same name
** from an earlier allocation is the same entry, reshaped. KILN_ERR_STATE
** outside allocate, KILN_ERR_ARG, KILN_ERR_SHAPE (values past
** KILN_MAX_BYTES), KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_brick_add_param(kiln_brick *b, const char *name, unsigned roles,
                                               int rank, const int64_t *dims, kiln_param **out);

/* Configuration as a class reads it. */
KILN_API kiln_init kiln_brick_weights_init(const kiln_brick *b);
KILN_API kiln_init kiln_brick_biases_init(const kiln_brick *b);
KILN_API bool kiln_brick_use_bias(const kiln_brick *b);

/* In an initialize callback only: fill p from init, drawing from the stream
** initialize() is using (Blocks' self.rng). Checks init before drawing.
** KILN_ERR_STATE outside initialize, KILN_ERR_CONFIG, KILN_ERR_ARG. */
KILN_API enum kiln_status kiln_brick_fill_param(kiln_brick *b, kiln_param *p, kiln_init init);
/* The default initialize: BIAS parameters from biases_init, then WEIGHT
** parameters from weights_init, each in parameter order (Blocks' Linear);
** every scheme is checked before the first draw. */
KILN_API enum kiln_status kiln_brick_init_weights_and_biases(kiln_brick *b);

/* ---- Recurrent bricks (blocks.bricks.recurrent; compiler/bricks_recurrent.c)
**
** A recurrent application (flag KILN_APPLICATION_RECURRENT, Blocks'
** @recurrent) is written as ONE step: its fn builds the values at step t
** from its inputs, which are, by their flags, sequences (the slice at t:
** (batch, ..)), states (their values at t-1) and contexts (the same at every
** step), and writes every output; an output named like a state is that
** state's value at t, fed to the next step (Blocks: states are a subset of
** outputs). Declare the inputs as one step sees them (rank and layout
** without the time axis), sequences first, then states, then contexts.
** Called, the application runs the step over the first axis (T) of the
** sequences, time-major (T, batch, ..), on a scan node (kiln_expr_scan):
** each output comes back stacked over T. The step runs once, on the scan's
** body graph; parameters it reads (kiln_graph_param on that graph) become
** the scan's contexts; children it calls build their nodes there too.
** Omitted (optional) sequences are left out of the scan and the step gets
** KILN_NODE_NONE for them; at least one sequence is needed (it says T and
** the batch: axis 1). A state given KILN_NODE_NONE starts from the class's
** initial_state (Blocks' initial_states): zeros of (batch, last_dim) by
** default; kiln's recurrent bricks start from a trainable parameter. A
** sequence named "mask" is Blocks' mask: (T, batch), 1 where a sequence has
** data; a step applies it with kiln_recurrent_masked.
** Checked before the step is built, each message naming the brick's path
** and the input: every input has one kind and every state an output of its
** name; the sequences share T and the batch; a mask is (T, batch); a state
** given has the batch as first axis; after the step, every output is a
** node, each new state has its state's dtype and shape, and the step reads
** every state (an unread state is a wiring mistake). */

/* How a recurrent application is called: Blocks' keyword arguments. All
** false (or NULL options) is the default, as kiln_brick_call calls. */
typedef struct kiln_recurrent_options {
    /* Blocks' iterate=False: one step, the sequences given without their
    ** time axis ((batch, ..)), applied directly on g. For a step inside
    ** another brick's step (Blocks' FeedbackRNN). */
    bool one_step;
    /* Process t = T-1 down to 0. As Blocks (Theano's go_backwards), the
    ** outputs come in processing order: row 0 is the step on x[T-1]. */
    bool reverse;
    /* Each state's output starts with its initial value: T+1 rows (the
    ** initial state first, then the steps in processing order). T must be
    ** a constant: T+1 of a symbolic T is not a dim kiln can express yet. */
    bool return_initial_states;
} kiln_recurrent_options;

/* kiln_brick_call with Blocks' iterate / reverse / return_initial_states
** (options may be NULL: the defaults). The application must be recurrent or
** flagged KILN_APPLICATION_OPTIONS when an option is set (else
** KILN_ERR_ARG); one_step refuses reverse and return_initial_states.
** Statuses and messages as kiln_brick_call's; KILN_ERR_UNSUPPORTED for
** return_initial_states over a symbolic T. */
KILN_API enum kiln_status kiln_recurrent_call(kiln_brick *b, const char *app, kiln_graph *g,
                                              const kiln_node *inputs, int n_in,
                                              const kiln_recurrent_options *options, kiln_node *outputs,
                                              int n_out);
/* The options of the call under way on b (for an application flagged
** KILN_APPLICATION_OPTIONS); the defaults outside kiln_recurrent_call. */
KILN_API kiln_recurrent_options kiln_brick_recurrent_options(const kiln_brick *b);

/* Blocks' masked update inside a step: mask * new_value + (1 - mask) *
** old_value, the mask (batch,) broadcast over the other axes, so a row whose
** mask is 0 keeps its old state; new_value itself when mask is
** KILN_NODE_NONE (no mask given). */
KILN_API kiln_node kiln_recurrent_masked(kiln_graph *g, kiln_node mask, kiln_node new_value,
                                         kiln_node old_value);

/* The initial value of state `state` of b's recurrent application app, for
** a batch of `batch` rows, built in g (Blocks' initial_states): the class's
** initial_state, else zeros. Allocates b if needed. KILN_ERR_NOT_FOUND (no
** such state), KILN_ERR_CONFIG (no dim to make zeros of), or the class's
** status; the message is on b and g. */
KILN_API enum kiln_status kiln_recurrent_initial_state(kiln_brick *b, const char *app, kiln_graph *g,
                                                       const char *state, int64_t batch, kiln_node *out);

/* The recurrent bricks. Each takes ownership of the bricks it is given
** (activations, prototypes, transitions), whatever the outcome, as MLP;
** they must have no parent. NULL when out of memory or on a bad argument.
** All are Initializable: weights_init fills the weights; initial states
** are trainable parameters (role INITIAL_STATE) set to zeros by
** initialize, as Blocks allocates them. dim 0 is lazy ("dim").
**
** SimpleRecurrent(dim, activation): apply(inputs (batch, dim), mask
** (batch,) optional, states (batch, dim) optional) -> states;
** h_t = activation(x_t + h_{t-1} W). Parameters W (dim, dim),
** initial_state (dim). activation is required (Blocks has no default); it
** becomes the child. */
KILN_API kiln_brick *kiln_simple_recurrent_create(const char *name, int64_t dim, kiln_brick *activation);
/* LSTM(dim, activation): apply(inputs (batch, 4 dim), mask, states, cells)
** -> states, cells. Blocks' gate order and peepholes: a = h_{t-1} W_state +
** x_t cut in four along the last axis: in, forget, cells, out;
**   i = sigmoid(a_0 + c_{t-1} * W_cell_to_in)
**   f = sigmoid(a_1 + c_{t-1} * W_cell_to_forget)
**   c_t = f * c_{t-1} + i * activation(a_2)
**   o = sigmoid(a_3 + c_t * W_cell_to_out)
**   h_t = o * activation(c_t)
** Parameters, in Blocks' order: W_state (dim, 4 dim), W_cell_to_in,
** W_cell_to_forget, W_cell_to_out (dim), initial_state, initial_cells
** (dim). activation NULL: Tanh. */
KILN_API kiln_brick *kiln_lstm_create(const char *name, int64_t dim, kiln_brick *activation);
/* GatedRecurrent(dim, activation, gate_activation): apply(mask, inputs
** (batch, dim), gate_inputs (batch, 2 dim), states) -> states (Blocks'
** order of apply.sequences: mask first);
**   g = gate_activation(h_{t-1} state_to_gates + gate_inputs_t)
**   z = g[:, :dim] (update), r = g[:, dim:] (reset)
**   h~ = activation((r * h_{t-1}) state_to_state + inputs_t)
**   h_t = z * h~ + (1 - z) * h_{t-1}
** Parameters state_to_state (dim, dim), state_to_gates (dim, 2 dim),
** initial_state (dim); state_to_gates is drawn as Blocks draws it: two
** (dim, dim) blocks, update then reset, side by side. Defaults: Tanh and
** Logistic. */
KILN_API kiln_brick *kiln_gated_recurrent_create(const char *name, int64_t dim, kiln_brick *activation,
                                                 kiln_brick *gate_activation);
/* Bidirectional(prototype): children "forward" and "backward", copies of
** prototype (a brick with a recurrent "apply"); apply takes the
** prototype's inputs and gives its outputs, each the forward copy's output
** and the backward copy's (run reversed, its output put back in time
** order) joined on the last axis. Passes return_initial_states on. */
KILN_API kiln_brick *kiln_bidirectional_create(const char *name, kiln_brick *prototype);
/* RecurrentStack(transitions, fork_prototype, states_name,
** skip_connections): n >= 1 layers (each a brick whose "apply" is
** recurrent), renamed "<name>#<level>", then a Fork "fork_<level>" per
** layer above the bottom, from layer level-1's output states_name (NULL:
** "states") to layer level's sequences other than the mask, added to them.
** apply's inputs: the bottom layer's sequences (no mask), those of the
** upper layers suffixed "#<level>" when skip_connections (optional, added
** to the fork's), "mask" (shared) when the bottom layer has one, every
** layer's states suffixed (the bottom's as they are), the layers'
** contexts by name (shared); outputs: every layer's, suffixed alike. apply
** runs each layer over the whole sequence in turn (one scan per layer) and
** passes one_step and return_initial_states on; reverse is refused, as in
** Blocks. low_memory_apply (Blocks' low_memory=True) takes the same
** inputs and runs the whole stack in one scan, one step of every layer per
** step. fork_prototype NULL: a Linear, with a bias unless
** skip_connections. */
KILN_API kiln_brick *kiln_recurrent_stack_create(const char *name, kiln_brick *const *transitions, int n,
                                                 kiln_brick *fork_prototype, const char *states_name,
                                                 bool skip_connections);

/* LookupTable(length, dim) (blocks.bricks.lookup): apply(indices, int32 of
** any shape) -> rows of W (length, dim): (indices.., dim). An index outside
** [0, length) is a run-time error. Dims "length", "dim" (also
** "output_dim"). */
KILN_API kiln_brick *kiln_lookup_table_create(const char *name, int64_t length, int64_t dim);

/* ---- Attention (blocks.bricks.attention; compiler/bricks_attention.c) ----
**
** Blocks' terms: a network (a recurrent transition) has states; the
** attended is a sequence (T_s, batch, attended_dim), time-major, with an
** optional attended_mask (T_s, batch) of 1 where it has data; the attention
** extracts glimpses from it given the states. T_s may be any dim (a
** constant, T, or a symbol of its own: kiln_graph_symbol). Every constructor
** takes ownership of the bricks it is given (prototypes, transitions,
** attentions), whatever the outcome, once they are seen to be distinct
** bricks without a parent (misuse otherwise: NULL, left alone); NULL for a
** brick argument means Blocks' default. A dim of 0 is lazy. NULL when out of
** memory or on a bad argument. All are Initializable.
**
** ShallowEnergyComputer(input_dim, output_dim): Blocks' Sequence of a Tanh
** and a Linear without bias, children "tanh" and "linear"; apply(input
** (batch, input_dim)) -> output (batch, output_dim) = tanh(input) W. Dims
** "input_dim", "output_dim" (the linear's). */
KILN_API kiln_brick *kiln_shallow_energy_computer_create(const char *name, int64_t input_dim, int64_t output_dim);

/* SequenceContentAttention(state_names, attended_dim, match_dim,
** state_transformer, attended_transformer, energy_computer): Bahdanau's
** attention as Blocks computes it. n_states >= 1 names (copied, distinct);
** state_dims may be NULL (lazy: "state_dims.<name>", pushed by an
** AttentionRecurrent). Children, as Blocks names them: "state_trans" (a
** Parallel of copies of state_transformer, "transform_<state>", default a
** Linear without bias), "preprocess" (attended_transformer, default a
** Linear with bias) and "energy_comp" (energy_computer, default a
** ShallowEnergyComputer); every prototype a Feedforward (input_dim,
** output_dim, apply). Dims "attended_dim", "match_dim", "state_dims.<name>".
** Applications:
**   preprocess(attended) -> preprocessed_attended (T_s, batch, match_dim):
**     attended_transformer on every (time, batch) row;
**   compute_energies(attended, preprocessed_attended?, <states>) ->
**     energies (T_s, batch) = energy_comp(preprocessed + sum_k
**     state_trans_k(state_k)) (preprocess when not given);
**   compute_weights(energies, attended_mask?) -> weights (T_s, batch):
**     e = exp(energies - max over T_s), times the mask, divided by its sum
**     over T_s plus all(1 - mask) (1 for a row whose mask is all zero);
**   compute_weighted_averages(weights, attended) -> weighted_averages
**     (batch, attended_dim) = sum over T_s of weights * attended;
**   take_glimpses(attended, preprocessed_attended?, attended_mask?,
**     <states> (batch, state dim)) -> weighted_averages (batch,
**     attended_dim), weights (batch, T_s) (Blocks' weights.T);
**   initial_glimpses(attended) -> weighted_averages, weights: zeros (Blocks
**     takes batch_size too; here the attended's second axis is the batch).
** Checked, naming the brick: the attended is rank 3 with attended_dim
** features, the mask is (T_s, batch) as the attended, preprocessed_attended
** is (T_s, batch, match_dim), every state has the attended's batch and its
** dim. */
KILN_API kiln_brick *kiln_sequence_content_attention_create(const char *name, const char *const *state_names,
                                                            int n_states, const int64_t *state_dims,
                                                            int64_t attended_dim, int64_t match_dim,
                                                            kiln_brick *state_transformer,
                                                            kiln_brick *attended_transformer,
                                                            kiln_brick *energy_computer);

/* AttentionRecurrent(transition, attention, distribute, add_contexts,
** attended_name, attended_mask_name): a recurrent transition (a brick whose
** "apply" is recurrent: SimpleRecurrent, LSTM, GatedRecurrent, ...) with an
** attention (a SequenceContentAttention whose state_names are states of the
** transition). Children: the transition and the attention, their names
** kept, then the distribute. distribute NULL: a Distribute "distribute"
** (kiln_distribute_create) of the attention's weighted_averages into every
** sequence of the transition but "mask". add_contexts: the attended and its
** mask are new contexts named attended_name, attended_mask_name (NULL:
** "attended", "attended_mask"); false: they are the transition's first two
** contexts. Applications, as Blocks':
**   apply(<transition's sequences, states, contexts>, attended,
**     attended_mask?) -> <transition's states>, weighted_averages, weights:
**     preprocesses the attended once, then runs do_apply; takes the
**     recurrent options (kiln_recurrent_call): reverse,
**     return_initial_states (the glimpses then start with zeros, as Blocks'
**     initial_glimpses);
**   do_apply(the same, preprocessed_<attended>): the recurrent step: the
**     glimpses from the states at t-1, then the transition's step on its
**     sequences plus distribute(glimpses) (compute_states);
**   take_glimpses(<states>, attended, attended_mask?,
**     preprocessed_<attended>?) -> glimpses, one step;
**   compute_states(<transition's sequences, one step>, <states>,
**     weighted_averages, weights, <transition's contexts>) -> <states>.
** Unlike Blocks, the glimpses are outputs of each step, not carried states:
** this attention does not read its previous glimpses, and kiln refuses a
** state the step never reads (docs/architecture.md). */
KILN_API kiln_brick *kiln_attention_recurrent_create(const char *name, kiln_brick *transition,
                                                     kiln_brick *attention, kiln_brick *distribute,
                                                     bool add_contexts, const char *attended_name,
                                                     const char *attended_mask_name);

/* ---- Sequence generators (blocks.bricks.sequence_generators;
** compiler/bricks_seqgen.c) -------------------------------------------------
**
** Emitters turn readouts (batch, readout_dim) into outputs. Their
** applications: emit(readouts) -> outputs, cost(readouts, outputs) ->
** costs (batch,), and the outputs before the first step from the class's
** initial_state callback for the state "outputs" (Blocks' initial_outputs).
** SoftmaxEmitter(initial_output): outputs are int32 categories (batch,);
** probs(readouts) -> softmax; emit samples a category per row from
** softmax(readouts) with the random state of the brick's seed
** (kiln_brick_set_seed on it or an ancestor; else 1): the Gumbel-max draw
** argmax(readouts - log(-log(u))), u uniform per category, which is
** distributed exactly as the softmax; emit_greedy takes the argmax (kiln's
** addition: greedy decoding); cost is the cross-entropy -log softmax[y].
** Child "ndimensionalsoftmax" (Blocks' NDimensionalSoftmax). Dim
** "readout_dim". */
KILN_API kiln_brick *kiln_softmax_emitter_create(const char *name, int32_t initial_output);
/* TrivialEmitter(readout_dim): the readouts are the outputs (batch,
** readout_dim); cost zero per row; initial outputs zeros. */
KILN_API kiln_brick *kiln_trivial_emitter_create(const char *name, int64_t readout_dim);
/* Feedbacks: feedback(outputs) -> feedback (batch, dim), what the next step
** reads of an output. TrivialFeedback(output_dim): the outputs themselves.
** LookupFeedback(num_outputs, feedback_dim): rows of a LookupTable child
** "lookuptable" (num_outputs, feedback_dim) picked by int32 outputs. Dims
** "output_dim"; "num_outputs", "feedback_dim". */
KILN_API kiln_brick *kiln_trivial_feedback_create(const char *name, int64_t output_dim);
KILN_API kiln_brick *kiln_lookup_feedback_create(const char *name, int64_t num_outputs, int64_t feedback_dim);

/* Readout(readout_dim, source_names, emitter, feedback_brick, merge,
** merge_prototype, post_merge, merged_dim): readout(<sources> (batch,
** dim)) -> readouts = post_merge(merge(sources)); emit, emit_greedy, cost
** and feedback delegate to the emitter and the feedback brick. Sources are
** names of the generator's states, glimpses or contexts, or "feedback" (the
** previous output's feedback); n_sources >= 1 names, copied. Defaults:
** emitter TrivialEmitter(readout_dim), feedback_brick
** TrivialFeedback(readout_dim), merge a Merge of the sources ("merge", of
** copies of merge_prototype, default a Linear without bias, named
** "transform_<source>"), post_merge a Bias ("bias") of readout_dim,
** merged_dim readout_dim. Children in Blocks' order: emitter, feedback,
** merge, post_merge. Dims "readout_dim", "merged_dim",
** "source_dims.<source>" (pushed by the generator). */
KILN_API kiln_brick *kiln_readout_create(const char *name, int64_t readout_dim, const char *const *source_names,
                                         int n_sources, kiln_brick *emitter, kiln_brick *feedback_brick,
                                         kiln_brick *merge, kiln_brick *merge_prototype, kiln_brick *post_merge,
                                         int64_t merged_dim);

/* SequenceGenerator(readout, transition, attention, add_contexts, fork):
** Blocks' generator. With an attention, the transition is wrapped in an
** AttentionRecurrent "att_trans"; without, in a FakeAttentionRecurrent
** "with_fake_attention" (no glimpses). fork NULL: a Fork "fork" from the
** feedback into every sequence of the transition but "mask" (Linear with
** bias). Children: readout, fork, the wrapped transition. One step of the
** generator, Blocks' algorithm (s the transition's states, g the glimpses,
** y the outputs, f the feedback):
**   g_t = take_glimpses(s_{t-1}); r_t = readout(f(y_{t-1}), s_{t-1}, g_t);
**   y_t = emit(r_t) (given, for a cost); c_t = cost(r_t, y_t);
**   s_t = compute_states(s_{t-1}, g_t, fork(f(y_t)))
** with y_0 the emitter's initial outputs and s_0 the transition's initial
** states.
** Applications (inputs: the target outputs, then mask, then the
** transition's states (optional: their initial values), then the contexts
** of the wrapped transition, "attended" and "attended_mask" (optional)
** with an attention):
**   cost(outputs (T, batch) int32 (SoftmaxEmitter) or (T, batch, dim),
**     mask (T, batch)?, ...) -> cost, a scalar with role COST: Blocks'
**     cost_matrix.sum(axis=0).mean(); the costs masked. Adds Blocks'
**     auxiliary variable per_sequence_element: sum(costs) / sum(mask)
**     (mean(costs) without a mask);
**   cost_matrix(the same) -> costs (T, batch), masked.
**   generate(the states?, the contexts) -> <states>, <glimpses>, outputs,
**     costs, each (n_steps, batch, ..): y_t drawn by emit (or emit_greedy);
**     called through kiln_sequence_generator_generate, which says how many
**     steps.
** Each builds one scan (kiln_expr_scan) whose step is the step above: the
** readout and the cost are computed in the step, not after the scan as
** Blocks' cost_matrix does (the same values). Glimpses are outputs of the
** step, not carried states (see AttentionRecurrent). Checked, naming the
** brick: the mask is (T, batch) as the outputs; int32 outputs for an emitter
** of categories (else (T, batch, its dim)); a given state is (batch, dim);
** the attended has the outputs' batch. At creation (NULL otherwise): a
** Readout whose sources are states, glimpses, contexts or "feedback". */
KILN_API kiln_brick *kiln_sequence_generator_create(const char *name, kiln_brick *readout,
                                                    kiln_brick *transition, kiln_brick *attention,
                                                    bool add_contexts, kiln_brick *fork);

/* How generate runs. */
typedef struct kiln_generate_options {
    /* Steps: a constant > 0 or a dim (KILN_TIME, a kiln_graph_symbol). The
    ** scan runs over a sequence of zeros (n_steps, batch) made here (a scan
    ** needs one: Blocks' n_steps). */
    int64_t n_steps;
    /* The batch dim: 0 for the attended's second axis (else KILN_BATCH). */
    int64_t batch;
    /* emit_greedy (argmax) rather than emit (a sample). */
    bool greedy;
} kiln_generate_options;

/* b's generate (Blocks' generator.generate(n_steps=, batch_size=, ...)) in
** g: inputs as kiln_brick_input_name(b, "generate", i) lists them (states,
** KILN_NODE_NONE for their initial values, then the contexts); outputs[0..
** n_out) receive the states, glimpses, outputs and costs, each stacked over
** the n_steps steps. Statuses and messages as kiln_brick_call's;
** KILN_ERR_ARG for n_steps <= 0 that is no symbol. */
KILN_API enum kiln_status kiln_sequence_generator_generate(kiln_brick *b, kiln_graph *g, const kiln_node *inputs,
                                                           int n_in, const kiln_generate_options *options,
                                                           kiln_node *outputs, int n_out);

#ifdef __cplusplus
}
#endif
#endif
