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

#include <string.h>

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_program kiln_program;

/* GradientDescent's step rules (blocks.algorithms) and brainstorm's
** steppers, built into the training step as updates of the graph: p -=
** step, where the step is the gradient g passed through the rule (a
** CompositeRule passes it through each component in order). A rule's state
** (a velocity, Adam's moments and time) lives in the program, in slabs
** beside the parameters. Every scalar hyperparameter of a rule (learning
** rate, momentum, decay rate, epsilon, beta1, threshold, ...) is a state
** too, named "<owner>.<name>" as Blocks names its shared variable
** ("/step_rule/adam.learning_rate", "/step_rule/1_basic_momentum.momentum"
** inside a composite): set at compile time from these fields, read and
** changed between steps without recompiling
** (kiln_program_set_hyperparameter, kiln_program_set_state, the schedules
** of train.h), and checked wherever it is set: a bad value is an error
** naming the rule, the hyperparameter and the value (the ranges are below).
** Blocks' formulas and defaults (the constructors take every argument; the
** defaults are in the comments; kiln_compile_options_default() gives
** GradientDescent's default rule, Scale(learning_rate = 1), as Blocks'
** step_rule=None does):
**   Scale(learning_rate = 1):     step = lr g
**   BasicMomentum(momentum = 0):  v = momentum v + g; step = v
**   Momentum(learning_rate = 1, momentum = 0) = [Scale, BasicMomentum]
**   AdaDelta(decay_rate = 0.95, epsilon = 1e-6):
**        Eg = rho Eg + (1 - rho) g^2; d = sqrt(Ed + eps) / sqrt(Eg + eps) g;
**        Ed = rho Ed + (1 - rho) d^2; step = d
**   BasicRMSProp(decay_rate = 0.9, max_scaling = 1e5):
**        m = rho m + (1 - rho) g^2; step = g / max(sqrt(m), 1 / max_scaling)
**   RMSProp(learning_rate = 1, decay_rate = 0.9, max_scaling = 1e5) =
**        [BasicRMSProp, Scale]
**   AdaGrad(learning_rate = 0.002, epsilon = 1e-6):
**        G = G + g^2; step = lr g / (sqrt(G) + eps)
**   Adam(learning_rate = 0.002, beta1 = 0.1, beta2 = 0.001, epsilon = 1e-8,
**        decay_factor = 1 - 1e-8), Blocks' beta = 1 - usual convention:
**        t = t + 1; lr_t = lr sqrt(1 - (1 - beta2)^t) / (1 - (1 - beta1)^t);
**        b1 = 1 - (1 - beta1) decay^(t - 1); m = b1 g + (1 - b1) m;
**        v = beta2 g^2 + (1 - beta2) v; step = lr_t m / (sqrt(v) + epsilon)
**   StepClipping(threshold): n = L2 norm of every step together; when
**        n >= threshold, every step is scaled by threshold / n
**   VariableClipping(threshold, axes): n = L2 norm of each new value
**        p - step (over the axes in the bit mask axes, 0: all); where n >
**        threshold, step = p - (threshold / n)(p - step)
**   RemoveNotFinite(scaler = 1): where a step has a NaN or infinity, step =
**        (1 - scaler) p (scaler 1: the parameter stays as it is)
**   Restrict(rule, variables): rule for those parameters only, the others'
**        steps pass through
**   CompositeRule(components): components in order (they may nest: at most
**        4 deep and 8 components a level).
** brainstorm's steppers, on the same machinery:
**   SgdStepper(learning_rate = 0.1): step = lr g
**   MomentumStepper(learning_rate = 0.1, momentum = 0, scale_learning_rate =
**        true): v = momentum v - lr' g, lr' = lr (1 - momentum) when scaled;
**        step = -v
**   NesterovStepper(learning_rate = 0.1, momentum = 0, scale_learning_rate =
**        true): brainstorm's step is v = momentum v; theta += v; the
**        gradient g at theta; v -= lr' g; theta -= lr' g. kiln keeps the
**        parameter at the point where the next gradient is taken, p = theta
**        + momentum v (Sutskever's form; with v = 0 at the start the two
**        agree, and theta = p - momentum v at any time): v' = momentum v -
**        lr' g; step = momentum v - (1 + momentum) v'. The cost and monitors
**        of a training step are at p, where brainstorm computes its loss. A
**        momentum changed between steps moves the look-ahead from the step
**        after the change on.
** Ranges, checked at compile time and when a value is set: learning rates,
** epsilons, decay factors >= 0 and finite; momentum, decay_rate, beta1,
** beta2, decay_factor, scaler in [0, 1]; max_scaling and threshold > 0.
** scale_learning_rate and VariableClipping's axes are fixed at compile time.
** A kiln_step_rule that no constructor made (kind KILN_STEP_NONE: a zeroed
** struct) is an error when compiling with a cost: it has no learning rate,
** and kiln does not guess one. components and variables are borrowed for the
** kiln_compile call. */
enum kiln_step_rule_kind { KILN_STEP_NONE, KILN_STEP_SCALE, KILN_STEP_BASIC_MOMENTUM, KILN_STEP_MOMENTUM,
                           KILN_STEP_ADAM, KILN_STEP_COMPOSITE, KILN_STEP_ADADELTA, KILN_STEP_BASIC_RMSPROP,
                           KILN_STEP_RMSPROP, KILN_STEP_ADAGRAD, KILN_STEP_STEP_CLIPPING,
                           KILN_STEP_VARIABLE_CLIPPING, KILN_STEP_REMOVE_NOT_FINITE, KILN_STEP_RESTRICT,
                           KILN_STEP_MOMENTUM_STEPPER, KILN_STEP_NESTEROV_STEPPER };
typedef struct kiln_step_rule {
    enum kiln_step_rule_kind kind;
    double learning_rate;
    double momentum;
    double beta1, beta2, epsilon, decay_factor;
    const struct kiln_step_rule *components; /* CompositeRule; Restrict: components[0] */
    int n_components;
    double decay_rate, max_scaling, threshold, scaler;
    unsigned axes;                           /* VariableClipping */
    bool scale_learning_rate;                /* MomentumStepper, NesterovStepper */
    kiln_param *const *variables;            /* Restrict */
    int n_variables;
} kiln_step_rule;
/* A rule of kind k, every other field zero (the constructors' start). */
static inline kiln_step_rule kiln_step_rule_of_(enum kiln_step_rule_kind k)
{
    kiln_step_rule r;
    memset(&r, 0, sizeof r);
    r.kind = k;
    return r;
}
static inline kiln_step_rule kiln_step_scale(double lr)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_SCALE);
    r.learning_rate = lr;
    return r;
}
static inline kiln_step_rule kiln_step_basic_momentum(double momentum)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_BASIC_MOMENTUM);
    r.momentum = momentum;
    return r;
}
static inline kiln_step_rule kiln_step_momentum(double lr, double momentum)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_MOMENTUM);
    r.learning_rate = lr;
    r.momentum = momentum;
    return r;
}
static inline kiln_step_rule kiln_step_adam(double lr, double beta1, double beta2, double epsilon,
                                            double decay_factor)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_ADAM);
    r.learning_rate = lr;
    r.beta1 = beta1;
    r.beta2 = beta2;
    r.epsilon = epsilon;
    r.decay_factor = decay_factor;
    return r;
}
/* Adam with Blocks' defaults. */
static inline kiln_step_rule kiln_step_adam_default(void)
{
    return kiln_step_adam(0.002, 0.1, 0.001, 1e-8, 1 - 1e-8);
}
static inline kiln_step_rule kiln_step_composite(const kiln_step_rule *components, int n)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_COMPOSITE);
    r.components = components;
    r.n_components = n;
    return r;
}
static inline kiln_step_rule kiln_step_adadelta(double decay_rate, double epsilon)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_ADADELTA);
    r.decay_rate = decay_rate;
    r.epsilon = epsilon;
    return r;
}
static inline kiln_step_rule kiln_step_basic_rmsprop(double decay_rate, double max_scaling)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_BASIC_RMSPROP);
    r.decay_rate = decay_rate;
    r.max_scaling = max_scaling;
    return r;
}
static inline kiln_step_rule kiln_step_rmsprop(double lr, double decay_rate, double max_scaling)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_RMSPROP);
    r.learning_rate = lr;
    r.decay_rate = decay_rate;
    r.max_scaling = max_scaling;
    return r;
}
static inline kiln_step_rule kiln_step_adagrad(double lr, double epsilon)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_ADAGRAD);
    r.learning_rate = lr;
    r.epsilon = epsilon;
    return r;
}
static inline kiln_step_rule kiln_step_step_clipping(double threshold)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_STEP_CLIPPING);
    r.threshold = threshold;
    return r;
}
static inline kiln_step_rule kiln_step_variable_clipping(double threshold, unsigned axes)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_VARIABLE_CLIPPING);
    r.threshold = threshold;
    r.axes = axes;
    return r;
}
static inline kiln_step_rule kiln_step_remove_not_finite(double scaler)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_REMOVE_NOT_FINITE);
    r.scaler = scaler;
    return r;
}
static inline kiln_step_rule kiln_step_restrict(const kiln_step_rule *rule, kiln_param *const *variables, int n)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_RESTRICT);
    r.components = rule;
    r.n_components = 1;
    r.variables = variables;
    r.n_variables = n;
    return r;
}
static inline kiln_step_rule kiln_step_sgd_stepper(double lr) { return kiln_step_scale(lr); }
static inline kiln_step_rule kiln_step_momentum_stepper(double lr, double momentum, bool scale_learning_rate)
{
    kiln_step_rule r = kiln_step_rule_of_(KILN_STEP_MOMENTUM_STEPPER);
    r.learning_rate = lr;
    r.momentum = momentum;
    r.scale_learning_rate = scale_learning_rate;
    return r;
}
static inline kiln_step_rule kiln_step_nesterov_stepper(double lr, double momentum, bool scale_learning_rate)
{
    kiln_step_rule r = kiln_step_momentum_stepper(lr, momentum, scale_learning_rate);
    r.kind = KILN_STEP_NESTEROV_STEPPER;
    return r;
}

/* brainstorm's value modifiers (brainstorm.value_modifiers), generated into
** the training step: weight modifiers change a parameter's new value after
** each update (brainstorm's trainer applies them after every step), gradient
** modifiers change its gradient before the step rule. Each applies to the
** parameters it names: those in params[0..n_params) when params is set,
** else those whose path ("<owner>.<name>": "/mlp/linear_0.W", or "W" for a
** parameter of no brick) matches the shell pattern `pattern` (fnmatch:
** "*.W", "/mlp/linear_0.*"; brainstorm gives its modifiers per layer and
** parameter name), else every parameter (brainstorm's `default`). A
** modifier that names no parameter of the program is an error, as is one
** given where it does not belong. Several apply in the order given.
**   ClipValues(low = -1, high = 1): v = min(max(v, low), high)
**   ConstrainL2Norm(limit): the incoming weights of each unit, rescaled so
**        that their L2 norm is at most limit: v = v / max(1, n / limit), n
**        the norm over the axes in the bit mask axes; 0: every axis but the
**        last, the incoming weights of a unit of a Linear's (in, out) W
**        (brainstorm stores (out, in) and takes every axis but the first).
**        A parameter of rank < 2 (a bias) is left alone, as brainstorm does.
**   MaskValues(mask): v = v * mask, mask the size of each parameter it
**        applies to (copied at compile time; a state, "<param>_mask")
**   FreezeValues(weights = NULL): v = weights, or, when NULL, the values
**        the parameter has when the program is compiled (a state,
**        "<param>_frozen"); weight modifiers only
**   L1Decay(factor): g = g + factor sign(p); gradient modifiers only
**   L2Decay(factor): g = g + factor p; gradient modifiers only
** low, high, limit and factor are states, like the step rule's
** hyperparameters ("/weight_modifiers/0_clip_values.low"); factor >= 0,
** limit > 0, low <= high, all finite. pattern, params and values are
** borrowed for the kiln_compile call. */
enum kiln_modifier_kind { KILN_MODIFIER_NONE, KILN_MODIFIER_CLIP_VALUES, KILN_MODIFIER_CONSTRAIN_L2_NORM,
                          KILN_MODIFIER_MASK_VALUES, KILN_MODIFIER_FREEZE_VALUES, KILN_MODIFIER_L1_DECAY,
                          KILN_MODIFIER_L2_DECAY };
typedef struct kiln_value_modifier {
    enum kiln_modifier_kind kind;
    const char *pattern;           /* which parameters, by path (see above) */
    kiln_param *const *params;     /* or these */
    int n_params;
    double low, high;              /* ClipValues */
    double limit;                  /* ConstrainL2Norm */
    unsigned axes;                 /* ConstrainL2Norm */
    const double *values;          /* MaskValues' mask, FreezeValues' weights */
    int64_t n_values;
    double factor;                 /* L1Decay, L2Decay */
} kiln_value_modifier;
static inline kiln_value_modifier kiln_modifier_of_(enum kiln_modifier_kind k)
{
    kiln_value_modifier m;
    memset(&m, 0, sizeof m);
    m.kind = k;
    return m;
}
static inline kiln_value_modifier kiln_modifier_clip_values(double low, double high)
{
    kiln_value_modifier m = kiln_modifier_of_(KILN_MODIFIER_CLIP_VALUES);
    m.low = low;
    m.high = high;
    return m;
}
static inline kiln_value_modifier kiln_modifier_constrain_l2_norm(double limit, unsigned axes)
{
    kiln_value_modifier m = kiln_modifier_of_(KILN_MODIFIER_CONSTRAIN_L2_NORM);
    m.limit = limit;
    m.axes = axes;
    return m;
}
static inline kiln_value_modifier kiln_modifier_mask_values(const double *mask, int64_t n)
{
    kiln_value_modifier m = kiln_modifier_of_(KILN_MODIFIER_MASK_VALUES);
    m.values = mask;
    m.n_values = n;
    return m;
}
static inline kiln_value_modifier kiln_modifier_freeze_values(const double *weights, int64_t n)
{
    kiln_value_modifier m = kiln_modifier_of_(KILN_MODIFIER_FREEZE_VALUES);
    m.values = weights;
    m.n_values = n;
    return m;
}
static inline kiln_value_modifier kiln_modifier_l1_decay(double factor)
{
    kiln_value_modifier m = kiln_modifier_of_(KILN_MODIFIER_L1_DECAY);
    m.factor = factor;
    return m;
}
static inline kiln_value_modifier kiln_modifier_l2_decay(double factor)
{
    kiln_value_modifier m = kiln_modifier_of_(KILN_MODIFIER_L2_DECAY);
    m.factor = factor;
    return m;
}
/* m for the parameters whose paths match pattern. */
static inline kiln_value_modifier kiln_modifier_on(kiln_value_modifier m, const char *pattern)
{
    m.pattern = pattern;
    return m;
}
/* m for params[0..n). */
static inline kiln_value_modifier kiln_modifier_on_params(kiln_value_modifier m, kiln_param *const *params, int n)
{
    m.params = params;
    m.n_params = n;
    return m;
}

/* GradientDescent's total_gradient_norm and total_step_norm (Blocks'
** algorithm attributes, which a Blocks user monitors with
** TrainingDataMonitoring): the L2 norm of every gradient together, as the
** step rule receives them (after the gradient modifiers), and of every step
** together, as the rule gives them (before the weight modifiers). Put them
** in kiln_compile_options.monitors beside graph nodes; the training step
** computes them before its update, and kiln_program_read reads them after
** kiln_program_train_step (the gradient norm also after
** kiln_program_gradients; eval_step computes neither). Their names are
** "total_gradient_norm" and "total_step_norm" (kiln_program_node_name).
** They are no nodes of a graph: kiln_node_ok() is false for them. */
#define KILN_TOTAL_GRADIENT_NORM ((kiln_node){-2})
#define KILN_TOTAL_STEP_NORM ((kiln_node){-3})

typedef struct kiln_compile_options {
    /* Model name: the generated file and symbols take it ("mlp" gives
    ** mlp_train_step). Letters, digits, '_'; NULL means "model". */
    const char *name;
    /* Scalar to minimise. KILN_NODE_NONE (id -1): no train_step/eval_step. */
    kiln_node cost;
    kiln_step_rule step_rule;
    /* brainstorm's value modifiers (above), in order; borrowed during the
    ** call. */
    const kiln_value_modifier *weight_modifiers;
    int n_weight_modifiers;
    const kiln_value_modifier *gradient_modifiers;
    int n_gradient_modifiers;
    /* Values eval_step and train_step compute (Blocks' monitored variables);
    ** borrowed during the call. The cost is always computed. Scalars of the
    ** graph, or KILN_TOTAL_GRADIENT_NORM and KILN_TOTAL_STEP_NORM (train_step
    ** only). */
    const kiln_node *monitors;
    int n_monitors;
    /* Values forward computes (inference). */
    const kiln_node *outputs;
    int n_outputs;
    /* Largest batch a step may be given; the arena is sized for it. 0: 1024. */
    int64_t max_batch;
    /* Largest run-time size of each other symbol a value's shape uses, by
    ** KILN_SYMBOL_INDEX (max_size[KILN_SYMBOL_INDEX(KILN_TIME)] for T); a
    ** symbol used with no maximum is an error naming it. max_size[0], when
    ** set, is the batch's and wins over max_batch. */
    int64_t max_size[KILN_MAX_SYMBOLS];
    /* Turn off every fast path that holds only for some models (updates
    ** inside a GEMM, deferred batch-1 updates, kiln's own GEMM): the plain
    ** lowering, for checking the fast one against. The configuration's
    ** fast_paths: false (KILN_FAST_PATHS=false) sets it for every program. */
    bool no_fast_paths;
    /* Instruction set of kiln's own kernels: "avx512", "avx2" (with FMA) or
    ** "blas" (none: every product in the BLAS). NULL: $KILN_ISA if set,
    ** else the best this CPU has. One the CPU lacks is an error
    ** (KILN_ERR_ARG). Every ISA gives the same bits; for tests and
    ** measurements. */
    const char *isa;
    /* Bytes of guard after every stored value, filled with a pattern and
    ** checked after each step (a step that wrote past a value fails with
    ** KILN_ERR_STATE naming it); no memory is reused. For tests. 0: none. */
    int64_t guard_bytes;
    /* Write the generated source here too (NULL: $KILN_DUMP_SOURCE, if set). */
    const char *source_path;
    /* Cache folder (NULL: $XDG_CACHE_HOME/kiln, else ~/.cache/kiln). */
    const char *cache_dir;
    /* C compiler to use (NULL: $KILN_CC, else clang, else gcc). */
    const char *cc;
    /* BLAS threads (0: as BLAS is configured, e.g. by OPENBLAS_NUM_THREADS,
    ** and kiln never changes it). OpenBLAS's thread count is process-wide:
    ** kiln_compile sets it once when threads > 0 (the last program compiled
    ** wins); a step never changes it (#12). On several BLAS threads, a step
    ** of a batch smaller than small_batch runs its products in kiln's
    ** single-threaded kernels wherever they take them (waking helper
    ** threads costs more than such products take), and so does a batch of
    ** at most 32 rows that kiln's kernel takes (AVX-512 CPUs: on one thread
    ** it beats OpenBLAS on two); other products use the BLAS's threads.
    ** docs/architecture.md, "BLAS threads". */
    int threads;
    int64_t small_batch; /* 0: the batch at which the step's products reach 50 MFLOP */
} kiln_compile_options;

/* Options with every field at its default (cost = KILN_NODE_NONE). */
/* A step rule by its command-line name, as kiln's tools take it
** (--step-rule): "scale" (Scale(0.1), the Blocks tutorial's),
** "momentum" (Momentum(0.1, 0.9)), "adam" (Blocks' defaults), "rmsprop"
** (RMSProp(0.001)), "adagrad" (AdaGrad(0.01)), "adadelta" (AdaDelta(0.95)).
** learning_rate > 0 replaces the rule's default (not for adadelta, which has
** none: then false); 0 keeps it. false for an unknown name or a negative or
** non-finite rate (*out then unchanged). */
KILN_API bool kiln_step_rule_by_name(const char *name, double learning_rate, kiln_step_rule *out);

KILN_API kiln_compile_options kiln_compile_options_default(void);

/* Compile g (borrowed for the call: the program keeps nothing of g but the
** parameters and states it reads, which it keeps alive, so g and its bricks
** may then be destroyed in any order). o and what it points at are borrowed
** for the call. *out is caller-owned (kiln_program_destroy) and set even on
** failure, unless out of memory (then NULL). KILN_OK, KILN_ERR_ARG,
** KILN_ERR_SHAPE (also: a value, or the arena, past KILN_MAX_BYTES at the
** maxima of its symbols, naming the node, its shape and the maxima),
** KILN_ERR_STATE (parameters not allocated), KILN_ERR_COMPILE, KILN_ERR_IO,
** KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_compile(kiln_graph *g, const kiln_compile_options *o,
                                       kiln_program **out);
/* Drops the caller's reference: a main loop made with p keeps it until the
** loop is destroyed. NULL: nothing. */
KILN_API void kiln_program_destroy(kiln_program *p);
KILN_API const char *kiln_program_errmsg(const kiln_program *p);

/* The generated C source (borrowed, valid while p lives). */
KILN_API const char *kiln_program_source(const kiln_program *p);
/* True when loading this program ran the C compiler (false: cache hit). */
KILN_API bool kiln_program_compiler_ran(const kiln_program *p);
/* Path of the loaded shared object (borrowed, valid while p lives). */
KILN_API const char *kiln_program_library_path(const kiln_program *p);
/* What loading the library repaired or fell back on, "" when nothing: a
** cached library that failed verification and was rebuilt, saying why, or
** one loaded without a C compiler, saying which compiler built it
** (docs/security.md). Borrowed, valid while p lives. */
KILN_API const char *kiln_program_cache_note(const kiln_program *p);
KILN_API int64_t kiln_program_max_batch(const kiln_program *p);
/* The compiled maximum of a symbol (KILN_BATCH: max_batch; KILN_TIME, a user
** symbol: its max_size), 0 when no value of p uses it or p is NULL. */
KILN_API int64_t kiln_program_max_size(const kiln_program *p, int64_t symbol);

/* The instruction set of p's own kernels: "avx512", "avx2" or "blas". */
KILN_API const char *kiln_program_isa(const kiln_program *p);

/* Which kernel p runs for a float product C (m x n) = op(A) B summed over k,
** A (m x k) or, trans_a, A^T (a weight's gradient or update, k the batch):
** "kiln-avx512", "kiln-avx2" (kiln's own, where it measured faster) or
** "blas". For reports (tools/bench), as a step on one BLAS thread runs it;
** on several, a small step (threads) runs kiln's kernels at every shape they
** take and a larger one gives every product to the BLAS. */
KILN_API const char *kiln_program_product_kernel(const kiln_program *p, bool trans_a, int64_t m, int64_t n,
                                                 int64_t k);
KILN_API bool kiln_program_can_train(const kiln_program *p);

/* The program graph after every pass (rewrites, CSE, the gradients and the
** step rule's updates), as kiln_graph_write_text or, with dot,
** kiln_graph_write_dot prints a graph; its updates are every update the
** program runs, the step rule's marked "(train_step)". Ids are the program
** graph's, not the user's. KILN_OK, KILN_ERR_ARG (f NULL), KILN_ERR_STATE
** (not compiled), KILN_ERR_IO, KILN_ERR_NOMEM; the message on p. */
KILN_API enum kiln_status kiln_program_write_graph(kiln_program *p, FILE *f, bool dot);

/* Inputs the program reads, by name. dtype and per-example shape let a data
** stream check its sources before the first step. */
KILN_API int kiln_program_input_count(const kiln_program *p);
KILN_API const char *kiln_program_input_name(const kiln_program *p, int i);
KILN_API enum kiln_dtype kiln_program_input_dtype(const kiln_program *p, int i);
/* Elements per example (product of the dims after the batch dim; the whole
** size when the input has no batch dim). */
KILN_API int64_t kiln_program_input_example_size(const kiln_program *p, int i);
KILN_API bool kiln_program_input_batched(const kiln_program *p, int i);
/* True when input i is laid out example after example: its dims are
** constants but for the batch on axis 0. A data stream's per-example
** sources feed only such inputs (a padded stream's sequences feed
** time-major ones, below). Its shape as text ("(T, B, 3)") into buf. */
KILN_API bool kiln_program_input_batch_first(const kiln_program *p, int i);
KILN_API const char *kiln_program_input_shape_str(const kiln_program *p, int i, char *buf, size_t cap);
/* True when input i is time-major: (KILN_TIME, KILN_BATCH, constants..),
** as a padded data stream's sequences and mask are laid out; its example
** size is then per step. */
KILN_API bool kiln_program_input_time_major(const kiln_program *p, int i);

/* Point input `name` at data, laid out row-major, with the input's dtype,
** as many elements as the steps' sizes give. Borrowed: data must stay valid
** and unchanged by others while p may read it: through every step and every
** kiln_program_read of this input, until another pointer is bound for name
** or p is destroyed (kiln can check neither its size nor its life).
** name is read during the call. KILN_ERR_NOT_FOUND names the inputs. */
KILN_API enum kiln_status kiln_program_bind_input(kiln_program *p, const char *name,
                                                  const void *data);
/* kiln_program_bind_input with the number of elements data holds (> 0):
** every step checks it against what it reads of the input at its sizes (the
** batch, T, ...) and fails with KILN_ERR_SHAPE naming the input, its shape
** and both counts instead of reading past the end. Prefer it: the only
** check kiln can make. A count <= 0 is KILN_ERR_ARG. */
KILN_API enum kiln_status kiln_program_bind_input_n(kiln_program *p, const char *name,
                                                    const void *data, int64_t count);

/* The run-time size of a symbol other than the batch (KILN_TIME, a user
** symbol) for the next steps, 1..its maximum; 1 until set. Steps take the
** batch size themselves. */
KILN_API enum kiln_status kiln_program_set_size(kiln_program *p, int64_t symbol, int64_t size);

/* Run an entry point on a batch of `batch` examples (1..max_batch). Every
** input the entry point reads must be bound. Never garbage: a parameter that
** had a NaN when the program last loaded it (kiln_compile,
** kiln_program_load_params) or was last set (kiln_program_set_param) is one
** never initialised (kiln_param_create and a brick's allocation fill NaN),
** and every entry point fails with KILN_ERR_STATE naming all such
** parameters until they have values. */
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

/* Parameters: program <-> bricks. A parameter with a NaN is noted as not
** initialised (see the entry points above); set_param with values that have
** none, or load_params after the brick is initialised, clears it. */
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

/* Learning rate of the step rule (of its first rule with one), a state of
** the program: it changes without recompiling. */
KILN_API enum kiln_status kiln_program_set_learning_rate(kiln_program *p, double lr);

/* The program's states, in graph order: the graph's own first (a random
** state, "random_state": key low, key high, step low, step high), then the
** step rule's (scalars such as "/step_rule/scale.learning_rate" or
** "/step_rule/adam.time", a velocity or a moment per parameter,
** "/mlp/linear_0.W_mean"). Name: owner path, '.', name (borrowed, valid
** while p lives). Values as doubles; n must be the state's size. */
KILN_API int kiln_program_state_count(const kiln_program *p);
KILN_API const char *kiln_program_state_name(const kiln_program *p, int i);
KILN_API int64_t kiln_program_state_size(const kiln_program *p, int i);
KILN_API enum kiln_status kiln_program_get_state(kiln_program *p, int i, double *dst, int64_t n);
KILN_API enum kiln_status kiln_program_set_state(kiln_program *p, int i, const double *src, int64_t n);
/* The index of the state named name: its full name, or, when no state has
** that name, the one state whose name ends in name after a '.' or '/'
** ("learning_rate", "adam.learning_rate", "1_basic_momentum.momentum").
** -1 when none or several match; the message on p names them. */
KILN_API int kiln_program_find_state(kiln_program *p, const char *name);
/* A scalar state by name (kiln_program_find_state): a hyperparameter of the
** step rule or of a value modifier, or any scalar state of the graph. A
** value outside a hyperparameter's range (see kiln_step_rule) is
** KILN_ERR_ARG naming the rule, the hyperparameter and the value, and
** leaves the state as it was; so does kiln_program_set_state. The next step
** uses the new value: nothing is recompiled. KILN_ERR_NOT_FOUND (no such
** state, or several), KILN_ERR_ARG (not a scalar), KILN_ERR_STATE (not
** compiled). */
KILN_API enum kiln_status kiln_program_set_hyperparameter(kiln_program *p, const char *name, double value);
KILN_API enum kiln_status kiln_program_get_hyperparameter(kiln_program *p, const char *name, double *value);

#ifdef __cplusplus
}
#endif
#endif
