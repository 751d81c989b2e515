/* bricks.c: bricks (Blocks' bricks) and their parameters.
**
** A brick is a tagged struct: `kind` picks a row of brick_classes (class
** name, default name, what the class supports) and the switch statements
** below. One struct for every kind, rather than a vtable per class: the
** kinds are few and fixed, the life cycle is shared, and a switch keeps
** each step of the life cycle readable in one place.
**
** Tree: a brick owns its children (array `children`, in Blocks' order); an
** MLP also keeps `linears`, borrowed pointers to its Linear children. Paths
** ("/mlp/linear_0") are computed when a brick is made or adopted, so
** kiln_brick_path never allocates.
**
** Life cycle, as Blocks (see include/kiln/bricks.h):
**   push_allocation_config  MLP sets its linears' dims (and use_bias when set
**                           on the MLP); recursive; sets alloc_pushed.
**   allocate                pushes if not pushed, allocates children, then
**                           its own parameters, NaN-filled.
**   push_initialization_config  MLP copies weights_init / biases_init /
**                           use_bias (those set on it) to Initializable
**                           children; recursive; sets init_pushed.
**   initialize              allocates if needed, pushes if not pushed,
**                           initializes children first, then itself.
**   apply                   allocates if needed, then adds nodes to a graph.
** A setter called on a brick clears that brick's pushed flag, so changed
** configuration is pushed again; changing a child after a manual push (the
** documented override) survives, as in Blocks.
**
** Parameters live in slots embedded in the brick (Linear: W, b; Bias: b), so
** a kiln_param pointer is stable for the brick's lifetime. Choice made:
** allocate() re-uses the slot and replaces its values (NaN) and shape,
** rather than making a new parameter as Blocks does; a graph built before
** the re-allocation then refers to the current values, and a stale shape is
** caught when the graph is compiled (the PARAM node keeps its old shape). A
** slot dropped by the re-allocation (use_bias turned off) keeps its struct
** but loses its values: kiln_param_get_values says KILN_ERR_STATE.
** Values are double, row-major, whatever the graph's floatx.
** kiln_param_create makes a parameter of no brick (Theano's shared
** variable): role PARAMETER, owned by the caller.
**
** Randomness: initialize() on a brick seeds a kiln_rng with the brick's seed
** (default 1, Blocks' config.default_seed) and hands the same stream to its
** children in child order, as Blocks pushes its rng; a child given its own
** seed (kiln_brick_set_seed) starts its own stream. Re-initializing re-seeds,
** so initialize() is deterministic. Linear draws b before W (Blocks' order).
**
** Graph nodes: apply adds nodes only through the public builders, plus
** kiln_graph_param_leaf for parameters; it then tags its output (name
** "<brick>_apply_output", role OUTPUT, .brick). Blocks copies every
** application output; kiln does the same with x * 1 where the result would
** otherwise be an existing node (Identity, Sequence, MLP), so that the input
** keeps its name; the program graph's rewrites remove the copy.
** Errors: each failing call records "<path>: <what>" on the brick it was
** called on (a parent copies its child's message) and, for apply, also on
** the graph so that an unchecked chain of builders still reports it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/bricks_internal.h"
#include "compiler/graph.h"
#include "compiler/init.h"
#include "compiler/rng.h"
#include "compiler/store.h"

/* Blocks' config.default_seed. */
#define KILN_BRICK_DEFAULT_SEED 1
/* Linear has W and b; no brick kind has more. */
#define BRICK_MAX_PARAMS 2

enum brick_kind {
    BK_LINEAR, BK_BIAS,
    BK_IDENTITY, BK_RECTIFIER, BK_TANH, BK_LOGISTIC, BK_SOFTPLUS, BK_SOFTMAX,
    BK_SEQUENCE, BK_MLP,
    BK_CATEGORICAL_CROSS_ENTROPY, BK_BINARY_CROSS_ENTROPY, BK_SQUARED_ERROR, BK_ABSOLUTE_ERROR,
    BK_MISCLASSIFICATION_RATE,
    BK_COUNT_
};

enum {
    CLS_INITIALIZABLE = 1u << 0, /* has weights_init / biases_init / seed */
    CLS_USE_BIAS = 1u << 1,      /* has use_bias */
    CLS_ACTIVATION = 1u << 2,    /* elementwise apply(x) */
    CLS_COST = 1u << 3           /* apply(y, y_hat) through kiln_cost_apply */
};

typedef struct brick_class {
    const char *class_name;   /* Blocks' class: messages */
    const char *default_name; /* class name lower-cased */
    unsigned flags;
} brick_class;

static const brick_class brick_classes[BK_COUNT_] = {
    [BK_LINEAR] = {"Linear", "linear", CLS_INITIALIZABLE | CLS_USE_BIAS},
    [BK_BIAS] = {"Bias", "bias", CLS_INITIALIZABLE},
    [BK_IDENTITY] = {"Identity", "identity", CLS_ACTIVATION},
    [BK_RECTIFIER] = {"Rectifier", "rectifier", CLS_ACTIVATION},
    [BK_TANH] = {"Tanh", "tanh", CLS_ACTIVATION},
    [BK_LOGISTIC] = {"Logistic", "logistic", CLS_ACTIVATION},
    [BK_SOFTPLUS] = {"Softplus", "softplus", CLS_ACTIVATION},
    [BK_SOFTMAX] = {"Softmax", "softmax", 0},
    [BK_SEQUENCE] = {"Sequence", "sequence", 0},
    [BK_MLP] = {"MLP", "mlp", CLS_INITIALIZABLE | CLS_USE_BIAS},
    [BK_CATEGORICAL_CROSS_ENTROPY] = {"CategoricalCrossEntropy", "categoricalcrossentropy", CLS_COST},
    [BK_BINARY_CROSS_ENTROPY] = {"BinaryCrossEntropy", "binarycrossentropy", CLS_COST},
    [BK_SQUARED_ERROR] = {"SquaredError", "squarederror", CLS_COST},
    [BK_ABSOLUTE_ERROR] = {"AbsoluteError", "absoluteerror", CLS_COST},
    [BK_MISCLASSIFICATION_RATE] = {"MisclassificationRate", "misclassificationrate", CLS_COST},
};


struct kiln_brick {
    kiln_err err;
    enum brick_kind kind;
    char name[KILN_MAX_NAME + 1];
    bool default_name; /* created with name NULL: an MLP may rename it */
    char *path;        /* owned, "/parent/name" */
    kiln_brick *parent;
    kiln_brick **children; /* owned, n_children of them */
    int n_children;
    /* MLP: borrowed pointers to the Linear children, n_layers of them,
    ** and dims[0..n_layers] (0 = not set). */
    kiln_brick **linears;
    int64_t *dims;
    int n_layers;
    /* configuration; a dim or init of 0 / KILN_INIT_NONE is "not set" */
    int64_t input_dim, output_dim; /* Linear; Bias keeps its dim in output_dim */
    kiln_init weights_init, biases_init;
    bool use_bias, use_bias_set;
    uint64_t seed;
    bool seed_set;
    /* life cycle */
    bool alloc_pushed, init_pushed, allocated, initialized;
    kiln_param *slot[BRICK_MAX_PARAMS];   /* store entries, made on first allocation */
    kiln_param *params[BRICK_MAX_PARAMS]; /* allocated slots, in Blocks' order */
    int n_params;
};

/* ---- errors ------------------------------------------------------------- */

/* Record "<path>: <message>" on b; returns status. */
static enum kiln_status brick_fail(kiln_brick *b, enum kiln_status status, const char *fmt, ...)
    KILN_PRINTF(3, 4);
static enum kiln_status brick_fail(kiln_brick *b, enum kiln_status status, const char *fmt, ...)
{
    /* A message cut here is also too long for the slot, which then ends it
    ** in "...": the cut is never silent. */
    char what[KILN_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return kiln_err_set(&b->err, status, "%s: %s", b->path ? b->path : b->name, what);
}

/* A child's failure becomes its parent's, message unchanged (it names the
** child's path already). */
static enum kiln_status brick_fail_from(kiln_brick *b, const kiln_brick *child)
{
    return kiln_err_copy(&b->err, &child->err, NULL);
}

const char *kiln_brick_errmsg(const kiln_brick *b)
{
    if (!b)
        return "no brick (NULL)";
    return b->err.status == KILN_OK ? "ok" : b->err.msg;
}

static const brick_class *class_of(const kiln_brick *b) { return &brick_classes[b->kind]; }

/* ---- creation, tree and paths ------------------------------------------------ */

static bool name_ok(const char *name) { return !name || strlen(name) <= KILN_MAX_NAME; }

static kiln_brick *brick_new(enum brick_kind kind, const char *name)
{
    if (!name_ok(name))
        return NULL;
    kiln_brick *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->kind = kind;
    b->default_name = name == NULL;
    /* length checked by name_ok: fits */
    strcpy(b->name, name ? name : brick_classes[kind].default_name);
    b->use_bias = true;
    size_t n = strlen(b->name) + 2;
    b->path = malloc(n);
    if (!b->path) {
        free(b);
        return NULL;
    }
    snprintf(b->path, n, "/%s", b->name);
    return b;
}

/* Recompute b's path from its parent's, then its subtree's. */
static bool brick_set_paths(kiln_brick *b)
{
    const char *prefix = b->parent ? b->parent->path : "";
    size_t n = strlen(prefix) + strlen(b->name) + 2;
    char *path = malloc(n);
    if (!path)
        return false;
    snprintf(path, n, "%s/%s", prefix, b->name);
    free(b->path);
    b->path = path;
    for (int i = 0; i < BRICK_MAX_PARAMS; i++)
        if (b->slot[i] && !kiln_store_set_owner(b->slot[i], path))
            return false;
    for (int i = 0; i < b->n_children; i++)
        if (!brick_set_paths(b->children[i]))
            return false;
    return true;
}

/* Append child (no parent yet) to parent->children, whose array the caller
** sized. Paths are set by the caller once the tree is complete. */
static void brick_adopt(kiln_brick *parent, kiln_brick *child)
{
    child->parent = parent;
    parent->children[parent->n_children++] = child;
}

void kiln_brick_destroy(kiln_brick *b)
{
    if (!b)
        return;
    /* A child is destroyed by its parent: destroying it alone would leave
    ** the parent pointing at freed memory. */
    KILN_API_CHECK(!b->parent);
    if (b->parent)
        return;
    for (int i = 0; i < b->n_children; i++) {
        b->children[i]->parent = NULL;
        kiln_brick_destroy(b->children[i]);
    }
    for (int i = 0; i < BRICK_MAX_PARAMS; i++)
        kiln_store_free(b->slot[i]);
    free(b->children);
    free(b->linears);
    free(b->dims);
    free(b->path);
    free(b);
}

kiln_brick *kiln_linear_create(const char *name, int64_t input_dim, int64_t output_dim)
{
    if (input_dim < 0 || output_dim < 0)
        return NULL;
    kiln_brick *b = brick_new(BK_LINEAR, name);
    if (b) {
        b->input_dim = input_dim;
        b->output_dim = output_dim;
    }
    return b;
}

kiln_brick *kiln_bias_create(const char *name, int64_t dim)
{
    if (dim < 0)
        return NULL;
    kiln_brick *b = brick_new(BK_BIAS, name);
    if (b)
        b->output_dim = dim;
    return b;
}

kiln_brick *kiln_identity_create(const char *name) { return brick_new(BK_IDENTITY, name); }
kiln_brick *kiln_rectifier_create(const char *name) { return brick_new(BK_RECTIFIER, name); }
kiln_brick *kiln_tanh_create(const char *name) { return brick_new(BK_TANH, name); }
kiln_brick *kiln_logistic_create(const char *name) { return brick_new(BK_LOGISTIC, name); }
kiln_brick *kiln_softplus_create(const char *name) { return brick_new(BK_SOFTPLUS, name); }
kiln_brick *kiln_softmax_create(const char *name) { return brick_new(BK_SOFTMAX, name); }
kiln_brick *kiln_categorical_cross_entropy_create(const char *name)
{ return brick_new(BK_CATEGORICAL_CROSS_ENTROPY, name); }
kiln_brick *kiln_binary_cross_entropy_create(const char *name)
{ return brick_new(BK_BINARY_CROSS_ENTROPY, name); }
kiln_brick *kiln_squared_error_create(const char *name) { return brick_new(BK_SQUARED_ERROR, name); }
kiln_brick *kiln_absolute_error_create(const char *name) { return brick_new(BK_ABSOLUTE_ERROR, name); }
kiln_brick *kiln_misclassification_rate_create(const char *name)
{ return brick_new(BK_MISCLASSIFICATION_RATE, name); }

/* Bricks a parent is given must be distinct roots (no parent yet); anything
** else is misuse by the caller. NULL entries are allowed when allow_null. */
static bool orphans_ok(kiln_brick *const *bricks, int n, bool allow_null)
{
    for (int i = 0; i < n; i++) {
        if (!bricks[i]) {
            if (!allow_null)
                return false;
            continue;
        }
        if (bricks[i]->parent)
            return false;
        for (int j = 0; j < i; j++)
            if (bricks[j] == bricks[i])
                return false;
    }
    return true;
}

/* On failure after validation, the parent takes the given bricks with it:
** ownership passed at the call whatever the outcome. */
static kiln_brick *create_failed(kiln_brick *parent, kiln_brick *const *given, int n)
{
    for (int i = 0; i < n; i++)
        if (given[i] && !given[i]->parent)
            kiln_brick_destroy(given[i]);
    kiln_brick_destroy(parent);
    return NULL;
}

kiln_brick *kiln_sequence_create(const char *name, kiln_brick *const *children, int n)
{
    KILN_API_CHECK(n >= 0 && (n == 0 || children));
    if (n < 0 || (n > 0 && !children) || !orphans_ok(children, n, false)) {
        KILN_API_CHECK(!"kiln_sequence_create: children must be distinct bricks without a parent");
        return NULL;
    }
    kiln_brick *b = brick_new(BK_SEQUENCE, name);
    if (!b)
        return create_failed(NULL, children, n);
    if (n > 0 && !(b->children = malloc((size_t)n * sizeof *b->children)))
        return create_failed(b, children, n);
    for (int i = 0; i < n; i++)
        brick_adopt(b, children[i]);
    if (!brick_set_paths(b))
        return create_failed(b, children, n);
    return b;
}

/* MLP(activations, dims). Plan:
** 1. validate (misuse returns NULL and takes nothing);
** 2. make the brick, dims and arrays;
** 3. per layer: a lazy Linear "linear_<i>", then the activation, renamed
**    "<class>_<i>" when it has its default name;
** 4. set paths. Any failure after 1 destroys what was given. */
kiln_brick *kiln_mlp_create(const char *name, kiln_brick *const *activations, int n_layers,
                            const int64_t *dims)
{
    /* 1. validate */
    if (n_layers < 1 || n_layers > INT32_MAX / 2 - 1 || !dims) {
        KILN_API_CHECK(!"kiln_mlp_create: needs n_layers >= 1 and n_layers + 1 dims");
        return NULL;
    }
    if (activations && !orphans_ok(activations, n_layers, true)) {
        KILN_API_CHECK(!"kiln_mlp_create: activations must be distinct bricks without a parent");
        return NULL;
    }
    for (int i = 0; i <= n_layers; i++)
        if (dims[i] < 0)
            return NULL;
    kiln_brick *const *given = activations;
    int n_given = activations ? n_layers : 0;

    /* 2. the brick */
    kiln_brick *b = brick_new(BK_MLP, name);
    if (!b)
        return create_failed(NULL, given, n_given);
    b->n_layers = n_layers;
    b->dims = malloc((size_t)(n_layers + 1) * sizeof *b->dims);
    b->linears = malloc((size_t)n_layers * sizeof *b->linears);
    b->children = malloc((size_t)n_layers * 2 * sizeof *b->children);
    if (!b->dims || !b->linears || !b->children)
        return create_failed(b, given, n_given);
    memcpy(b->dims, dims, (size_t)(n_layers + 1) * sizeof *dims);

    /* 3. children, interleaved */
    for (int i = 0; i < n_layers; i++) {
        char cname[KILN_MAX_NAME + 1];
        if (kiln_snprintf(cname, sizeof cname, "linear_%d", i) != 0)
            return create_failed(b, given, n_given);
        /* Lazy: dims arrive by push_allocation_config, as in Blocks. */
        kiln_brick *lin = kiln_linear_create(cname, 0, 0);
        if (!lin)
            return create_failed(b, given, n_given);
        brick_adopt(b, lin);
        b->linears[i] = lin;
        kiln_brick *act = activations ? activations[i] : NULL;
        if (!act)
            continue;
        if (act->default_name) {
            if (kiln_snprintf(cname, sizeof cname, "%s_%d", class_of(act)->default_name, i) != 0)
                return create_failed(b, given, n_given);
            strcpy(act->name, cname);
            act->default_name = false;
        }
        brick_adopt(b, act);
    }

    /* 4. paths */
    if (!brick_set_paths(b))
        return create_failed(b, given, n_given);
    return b;
}

/* ---- structure ------------------------------------------------------------ */

const char *kiln_brick_name(const kiln_brick *b) { return b ? b->name : ""; }
const char *kiln_brick_path(const kiln_brick *b) { return b ? b->path : ""; }
int kiln_brick_child_count(const kiln_brick *b) { return b ? b->n_children : 0; }
kiln_brick *kiln_brick_parent(const kiln_brick *b) { return b ? b->parent : NULL; }

kiln_brick *kiln_brick_child(const kiln_brick *b, int i)
{
    if (!b || i < 0 || i >= b->n_children)
        return NULL;
    return b->children[i];
}

kiln_brick *kiln_brick_child_by_name(const kiln_brick *b, const char *name)
{
    if (!b || !name)
        return NULL;
    for (int i = 0; i < b->n_children; i++)
        if (strcmp(b->children[i]->name, name) == 0)
            return b->children[i];
    return NULL;
}

bool kiln_brick_is_within(const kiln_brick *b, const kiln_brick *ancestor)
{
    for (; b; b = b->parent)
        if (b == ancestor)
            return true;
    return false;
}

/* ---- configuration ------------------------------------------------------ */

/* The dim called name, or NULL when b has none of that name. */
static int64_t *dim_slot(kiln_brick *b, const char *name)
{
    bool in = strcmp(name, "input_dim") == 0, out = strcmp(name, "output_dim") == 0;
    switch (b->kind) {
    case BK_LINEAR:
        return in ? &b->input_dim : out ? &b->output_dim : NULL;
    case BK_BIAS: /* Blocks' Bias: input_dim and output_dim are dim */
        return (in || out || strcmp(name, "dim") == 0) ? &b->output_dim : NULL;
    case BK_MLP:
        return in ? &b->dims[0] : out ? &b->dims[b->n_layers] : NULL;
    default:
        return NULL;
    }
}

enum kiln_status kiln_brick_set_dim(kiln_brick *b, const char *name, int64_t value)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    if (!name)
        return brick_fail(b, KILN_ERR_ARG, "set_dim: dim name is NULL");
    int64_t *slot = dim_slot(b, name);
    if (!slot)
        return brick_fail(b, KILN_ERR_NOT_FOUND, "%s has no dim '%.*s'", class_of(b)->class_name,
                          KILN_MAX_NAME, name);
    if (value < 0)
        return brick_fail(b, KILN_ERR_ARG, "%s is %lld, expected >= 0 (0: not set)", name,
                          (long long)value);
    *slot = value;
    b->alloc_pushed = false;
    return KILN_OK;
}

enum kiln_status kiln_brick_get_dim(const kiln_brick *b, const char *name, int64_t *out)
{
    KILN_API_CHECK(b && out);
    if (!b || !out)
        return KILN_ERR_ARG;
    kiln_brick *mb = (kiln_brick *)b; /* the error slot is the only thing written */
    kiln_err_clear(&mb->err);
    *out = 0;
    if (!name)
        return brick_fail(mb, KILN_ERR_ARG, "get_dim: dim name is NULL");
    const int64_t *slot = dim_slot(mb, name);
    if (!slot)
        return brick_fail(mb, KILN_ERR_NOT_FOUND, "%s has no dim '%.*s'", class_of(b)->class_name,
                          KILN_MAX_NAME, name);
    *out = *slot;
    return KILN_OK;
}

/* Check init now, so that a bad scheme is reported where it is set. */
static enum kiln_status set_init(kiln_brick *b, kiln_init *dst, kiln_init init, const char *what)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    if (!(class_of(b)->flags & CLS_INITIALIZABLE))
        return brick_fail(b, KILN_ERR_ARG, "%s has no %s (not an Initializable brick)",
                          class_of(b)->class_name, what);
    if (init.kind != KILN_INIT_NONE) {
        kiln_err e = {0};
        kiln_rng scratch; /* n == 0: validated, nothing drawn */
        enum kiln_status s = kiln_init_fill(&init, &scratch, NULL, 0, &e);
        if (s != KILN_OK)
            return brick_fail(b, s, "%s: %s", what, e.msg);
    }
    *dst = init;
    b->init_pushed = false;
    return KILN_OK;
}

enum kiln_status kiln_brick_set_weights_init(kiln_brick *b, kiln_init init)
{
    return set_init(b, b ? &b->weights_init : NULL, init, "weights_init");
}

enum kiln_status kiln_brick_set_biases_init(kiln_brick *b, kiln_init init)
{
    return set_init(b, b ? &b->biases_init : NULL, init, "biases_init");
}

enum kiln_status kiln_brick_set_use_bias(kiln_brick *b, bool use_bias)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    if (!(class_of(b)->flags & CLS_USE_BIAS))
        return brick_fail(b, KILN_ERR_ARG, "%s has no use_bias", class_of(b)->class_name);
    b->use_bias = use_bias;
    b->use_bias_set = true;
    /* MLP pushes use_bias at both steps: it decides whether b is allocated */
    b->alloc_pushed = false;
    b->init_pushed = false;
    return KILN_OK;
}

enum kiln_status kiln_brick_set_seed(kiln_brick *b, uint64_t seed)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    b->seed = seed;
    b->seed_set = true;
    return KILN_OK;
}

/* ---- allocation ------------------------------------------------------------ */

static void push_allocation_config(kiln_brick *b)
{
    if (b->kind == BK_MLP) {
        for (int i = 0; i < b->n_layers; i++) {
            kiln_brick *lin = b->linears[i];
            lin->input_dim = b->dims[i];
            lin->output_dim = b->dims[i + 1];
            if (b->use_bias_set)
                lin->use_bias = b->use_bias;
        }
    }
    b->alloc_pushed = true;
    for (int i = 0; i < b->n_children; i++)
        push_allocation_config(b->children[i]);
}

enum kiln_status kiln_brick_push_allocation_config(kiln_brick *b)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    push_allocation_config(b);
    return KILN_OK;
}

/* One parameter to (re)allocate: its slot, name, role and shape. */
typedef struct param_spec {
    int slot;
    const char *name;
    unsigned roles;
    int rank;
    int64_t dims[2];
} param_spec;

/* Replace b's parameters by specs[0..n), NaN-filled. Store entries are
** made once per slot and kept for the brick's life (a kiln_param pointer
** stays valid); every new buffer is made before any is swapped in, so on
** KILN_ERR_NOMEM b is unchanged. */
static enum kiln_status alloc_params(kiln_brick *b, const param_spec *specs, int n)
{
    for (int i = 0; i < n; i++) {
        int s = specs[i].slot;
        if (b->slot[s])
            continue;
        kiln_param *p = kiln_store_new(KILN_STORE_PARAMETER, specs[i].name, KILN_DTYPE_F32, specs[i].rank,
                                       specs[i].dims, NAN);
        if (!p || !kiln_store_set_owner(p, b->path)) {
            kiln_store_free(p);
            return brick_fail(b, KILN_ERR_NOMEM, "%s: no memory for its values", specs[i].name);
        }
        kiln_store_hold(p);
        kiln_store_set_front(p, b, &b->err);
        kiln_store_set_roles(p, specs[i].roles);
        b->slot[s] = p;
    }
    for (int i = 0; i < n; i++) {
        int64_t size = 1;
        for (int d = 0; d < specs[i].rank; d++)
            if (!kiln_mul_i64(size, specs[i].dims[d], &size) || (uint64_t)size > SIZE_MAX / sizeof(double) / 2)
                return brick_fail(b, KILN_ERR_NOMEM, "%s: too many elements to allocate", specs[i].name);
    }
    /* Swap in; slots not named in specs lose their values. */
    bool named[BRICK_MAX_PARAMS] = {0};
    b->n_params = 0;
    for (int i = 0; i < n; i++) {
        kiln_param *p = b->slot[specs[i].slot];
        if (kiln_store_reshape(p, specs[i].rank, specs[i].dims, NAN) != KILN_OK)
            return brick_fail(b, KILN_ERR_NOMEM, "%s: no memory for its values", specs[i].name);
        kiln_store_rename(p, specs[i].name);
        kiln_store_set_roles(p, specs[i].roles);
        named[specs[i].slot] = true;
        b->params[b->n_params++] = p;
    }
    for (int s = 0; s < BRICK_MAX_PARAMS; s++)
        if (!named[s] && b->slot[s])
            kiln_store_release(b->slot[s]);
    return KILN_OK;
}

/* b's own parameters (children are done by the caller). */
static enum kiln_status allocate_self(kiln_brick *b)
{
    enum { W_SLOT = 0, B_SLOT = 1 };
    const unsigned weight = KILN_ROLE_PARAMETER | KILN_ROLE_WEIGHT;
    const unsigned bias = KILN_ROLE_PARAMETER | KILN_ROLE_BIAS;
    switch (b->kind) {
    case BK_LINEAR: {
        if (b->input_dim <= 0)
            return brick_fail(b, KILN_ERR_CONFIG, "allocation config not set: input_dim");
        if (b->output_dim <= 0)
            return brick_fail(b, KILN_ERR_CONFIG, "allocation config not set: output_dim");
        param_spec specs[2] = {
            {W_SLOT, "W", weight, 2, {b->input_dim, b->output_dim}},
            {B_SLOT, "b", bias, 1, {b->output_dim, 0}},
        };
        return alloc_params(b, specs, b->use_bias ? 2 : 1);
    }
    case BK_BIAS: {
        if (b->output_dim <= 0)
            return brick_fail(b, KILN_ERR_CONFIG, "allocation config not set: dim");
        param_spec spec = {0, "b", bias, 1, {b->output_dim, 0}};
        return alloc_params(b, &spec, 1);
    }
    default:
        return KILN_OK;
    }
}

static enum kiln_status allocate(kiln_brick *b)
{
    if (!b->alloc_pushed)
        push_allocation_config(b);
    for (int i = 0; i < b->n_children; i++)
        if (allocate(b->children[i]) != KILN_OK)
            return brick_fail_from(b, b->children[i]);
    enum kiln_status s = allocate_self(b);
    if (s != KILN_OK)
        return s;
    b->allocated = true;
    b->initialized = false; /* values are NaN again */
    return KILN_OK;
}

enum kiln_status kiln_brick_allocate(kiln_brick *b)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    return allocate(b);
}

bool kiln_brick_allocated(const kiln_brick *b) { return b && b->allocated; }
bool kiln_brick_initialized(const kiln_brick *b) { return b && b->initialized; }

/* ---- initialization --------------------------------------------------------- */

static void push_initialization_config(kiln_brick *b)
{
    if (b->kind == BK_MLP) {
        for (int i = 0; i < b->n_children; i++) {
            kiln_brick *c = b->children[i];
            if (!(class_of(c)->flags & CLS_INITIALIZABLE))
                continue;
            if (b->weights_init.kind != KILN_INIT_NONE)
                c->weights_init = b->weights_init;
            if (b->biases_init.kind != KILN_INIT_NONE)
                c->biases_init = b->biases_init;
            if (b->use_bias_set && (class_of(c)->flags & CLS_USE_BIAS)) {
                c->use_bias = b->use_bias;
                c->use_bias_set = true;
            }
        }
    }
    b->init_pushed = true;
    for (int i = 0; i < b->n_children; i++)
        push_initialization_config(b->children[i]);
}

enum kiln_status kiln_brick_push_initialization_config(kiln_brick *b)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    push_initialization_config(b);
    return KILN_OK;
}

/* Fill p from init, drawing from rng; messages name the scheme's role. */
static enum kiln_status init_param(kiln_brick *b, kiln_param *p, const kiln_init *init,
                                   kiln_rng *rng, const char *what)
{
    kiln_err e = {0};
    enum kiln_status s = kiln_init_fill(init, rng, kiln_param_data(p), kiln_param_size(p), &e);
    if (s != KILN_OK)
        return brick_fail(b, s, "%s: %s", what, e.msg);
    return KILN_OK;
}

/* b's own parameters. Every scheme is checked before the first draw, so a
** failure leaves the values and the stream as they were. */
static enum kiln_status initialize_self(kiln_brick *b, kiln_rng *rng)
{
    kiln_param *w = NULL, *bias = NULL;
    for (int i = 0; i < b->n_params; i++) {
        if (kiln_param_roles(b->params[i]) & KILN_ROLE_WEIGHT)
            w = b->params[i];
        else
            bias = b->params[i];
    }
    if (w && b->weights_init.kind == KILN_INIT_NONE)
        return brick_fail(b, KILN_ERR_CONFIG, "initialization config not set: weights_init");
    if (bias && b->biases_init.kind == KILN_INIT_NONE)
        return brick_fail(b, KILN_ERR_CONFIG, "initialization config not set: biases_init");
    kiln_err e = {0};
    if (w && kiln_init_fill(&b->weights_init, rng, NULL, 0, &e) != KILN_OK)
        return brick_fail(b, e.status, "weights_init: %s", e.msg);
    if (bias && kiln_init_fill(&b->biases_init, rng, NULL, 0, &e) != KILN_OK)
        return brick_fail(b, e.status, "biases_init: %s", e.msg);
    /* Blocks' Linear._initialize: biases first, then weights. */
    if (bias && init_param(b, bias, &b->biases_init, rng, "biases_init") != KILN_OK)
        return b->err.status;
    if (w && init_param(b, w, &b->weights_init, rng, "weights_init") != KILN_OK)
        return b->err.status;
    return KILN_OK;
}

/* rng: the parent's stream, or NULL at the brick initialize() was called on. */
static enum kiln_status initialize(kiln_brick *b, kiln_rng *rng)
{
    if (!b->allocated && allocate(b) != KILN_OK)
        return b->err.status;
    if (!b->init_pushed)
        push_initialization_config(b);
    kiln_rng own;
    if (b->seed_set || !rng) {
        kiln_rng_seed_u64(&own, b->seed_set ? b->seed : KILN_BRICK_DEFAULT_SEED);
        rng = &own;
    }
    for (int i = 0; i < b->n_children; i++)
        if (initialize(b->children[i], rng) != KILN_OK)
            return brick_fail_from(b, b->children[i]);
    enum kiln_status s = initialize_self(b, rng);
    if (s != KILN_OK)
        return s;
    b->initialized = true;
    return KILN_OK;
}

enum kiln_status kiln_brick_initialize(kiln_brick *b)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    return initialize(b, NULL);
}

/* ---- application ------------------------------------------------------------ */

static bool node_in(const kiln_graph *g, kiln_node n) { return n.id >= 0 && n.id < g->n_nodes; }

static const kiln_node_rec *rec_of(const kiln_graph *g, kiln_node n) { return kiln_graph_cnode(g, n.id); }

/* Check that n is a node of g; else fail on b, naming the argument. */
static enum kiln_status check_node(kiln_brick *b, kiln_graph *g, kiln_node n, const char *arg)
{
    if (node_in(g, n))
        return KILN_OK;
    if (n.id == -1 && g->err.status != KILN_OK) /* a failed builder: say why */
        return brick_fail(b, g->err.status, "%s is KILN_NODE_NONE (%s)", arg, g->err.msg);
    return brick_fail(b, KILN_ERR_ARG, "%s: node %d is not a node of this graph (it has %d)", arg,
                      (int)n.id, (int)g->n_nodes);
}

/* Shapes and dtypes in messages: "float32 (B, 784)". */
typedef struct desc_buf { char s[KILN_SHAPE_STR_MAX + 16]; } desc_buf;
static const char *desc(const kiln_graph *g, kiln_node n, desc_buf *buf)
{
    const kiln_node_rec *r = rec_of(g, n);
    char shape[KILN_SHAPE_STR_MAX];
    snprintf(buf->s, sizeof buf->s, "%s %s", kiln_dtype_name(r->dtype),
             kiln_shape_str(g, &r->shape, shape, sizeof shape));
    return buf->s;
}

static enum kiln_status need_float(kiln_brick *b, kiln_graph *g, kiln_node n, const char *arg)
{
    if (rec_of(g, n)->dtype == g->floatx)
        return KILN_OK;
    desc_buf d;
    return brick_fail(b, KILN_ERR_SHAPE, "%s is %s, expected %s (the graph's floatx)", arg,
                      desc(g, n, &d), kiln_dtype_name(g->floatx));
}

static enum kiln_status need_rank(kiln_brick *b, kiln_graph *g, kiln_node n, const char *arg,
                                  int rank, const char *layout)
{
    if (rec_of(g, n)->shape.rank == rank)
        return KILN_OK;
    desc_buf d;
    return brick_fail(b, KILN_ERR_SHAPE, "%s is %s, expected rank %d %s", arg, desc(g, n, &d), rank,
                      layout);
}

static enum kiln_status need_labels(kiln_brick *b, kiln_graph *g, kiln_node y, kiln_node y_hat)
{
    const kiln_node_rec *ry = rec_of(g, y), *rh = rec_of(g, y_hat);
    desc_buf d1, d2;
    if (ry->dtype != KILN_DTYPE_I32 || ry->shape.rank != 1)
        return brick_fail(b, KILN_ERR_SHAPE, "y is %s, expected an int32 vector of class indices",
                          desc(g, y, &d1));
    if (need_float(b, g, y_hat, "y_hat") || need_rank(b, g, y_hat, "y_hat", 2, "(batch, classes)"))
        return b->err.status;
    if (ry->shape.dims[0] != rh->shape.dims[0])
        return brick_fail(b, KILN_ERR_SHAPE, "y is %s but y_hat is %s: row counts differ",
                          desc(g, y, &d1), desc(g, y_hat, &d2));
    return KILN_OK;
}

/* A builder returned n: on failure copy the graph's message to b. */
static enum kiln_status built(kiln_brick *b, kiln_graph *g, kiln_node n)
{
    if (kiln_node_ok(n))
        return KILN_OK;
    return brick_fail(b, g->err.status ? g->err.status : KILN_ERR_NOMEM, "%s",
                      g->err.status ? g->err.msg : "graph builder failed");
}

/* A fresh node equal to x (Blocks copies application outputs). */
static kiln_node copy_node(kiln_graph *g, kiln_node x)
{
    return kiln_expr_mul(g, x, kiln_expr_constant(g, 1.0));
}

/* Name and tag the output y of application `app` of b; n0 is the node count
** before the application, so a node that existed already (a program graph's
** CSE or rewrite handed it back) is left alone. */
static enum kiln_status tag_output(kiln_brick *b, kiln_graph *g, kiln_node y, int32_t n0,
                                   const char *app, const char *fixed_name)
{
    if (y.id < n0)
        return KILN_OK;
    char name[KILN_MAX_NAME + 1];
    if (fixed_name) {
        if (kiln_snprintf(name, sizeof name, "%s", fixed_name) != 0)
            return brick_fail(b, KILN_ERR_ARG, "output name is too long");
    } else if (kiln_snprintf(name, sizeof name, "%s_%s_output", b->name, app) != 0) {
        return brick_fail(b, KILN_ERR_ARG,
                          "output name '%s_%s_output' is longer than %d characters", b->name, app,
                          KILN_MAX_NAME);
    }
    if (kiln_graph_set_name(g, y, name) != KILN_OK)
        return brick_fail(b, g->err.status, "%s", g->err.msg);
    kiln_graph_node(g, y.id)->roles |= KILN_ROLE_OUTPUT;
    if (kiln_graph_set_owner(g, y.id, b->path) != KILN_OK)
        return brick_fail(b, g->err.status, "%s", g->err.msg);
    return KILN_OK;
}

/* Blocks' brick-level auxiliary variable `name` = sqrt(sum(p^2)), once per
** graph and brick. */
static enum kiln_status add_norm(kiln_brick *b, kiln_graph *g, kiln_node p, const char *name)
{
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const kiln_node_rec *r = kiln_graph_cnode(g, i);
        if (r->owner && strcmp(r->owner, b->path) == 0 && (r->roles & KILN_ROLE_AUXILIARY) && r->name &&
            strcmp(r->name, name) == 0)
            return KILN_OK;
    }
    kiln_node norm = kiln_expr_sqrt(g, kiln_expr_sum(g, kiln_expr_square(g, p), KILN_ALL_AXES));
    if (built(b, g, norm) != KILN_OK)
        return b->err.status;
    if (kiln_graph_add_auxiliary(g, norm, name, b) != KILN_OK)
        return brick_fail(b, g->err.status, "%s", g->err.msg);
    return KILN_OK;
}

static enum kiln_status apply_linear(kiln_brick *b, kiln_graph *g, kiln_node x, kiln_node *y)
{
    kiln_param *w = kiln_brick_param_by_name(b, "W"), *bias = kiln_brick_param_by_name(b, "b");
    if (need_float(b, g, x, "input") || need_rank(b, g, x, "input", 2, "(batch, input_dim)"))
        return b->err.status;
    int64_t features = rec_of(g, x)->shape.dims[1];
    if (features != kiln_param_dim(w, 0))
        return brick_fail(b, KILN_ERR_SHAPE, "input has %lld features, expected %lld",
                          (long long)features, (long long)kiln_param_dim(w, 0));
    /* b's leaf before W's: Blocks lists a layer's parameters as [b, W] in
    ** graph order. */
    kiln_node nb = KILN_NODE_NONE;
    if (bias && built(b, g, nb = kiln_graph_store_leaf(g, bias)) != KILN_OK)
        return b->err.status;
    kiln_node nw = kiln_graph_store_leaf(g, w);
    if (built(b, g, nw) != KILN_OK || add_norm(b, g, nw, "W_norm") != KILN_OK ||
        (bias && add_norm(b, g, nb, "b_norm") != KILN_OK))
        return b->err.status;
    kiln_node out = kiln_expr_matmul(g, x, nw);
    if (bias)
        out = kiln_expr_add(g, out, nb);
    *y = out;
    return built(b, g, out);
}

static enum kiln_status apply_bias(kiln_brick *b, kiln_graph *g, kiln_node x, kiln_node *y)
{
    kiln_param *bias = b->params[0];
    if (need_float(b, g, x, "input"))
        return b->err.status;
    const kiln_shape *s = &rec_of(g, x)->shape;
    if (s->rank < 1 || s->dims[s->rank - 1] != kiln_param_dim(bias, 0)) {
        desc_buf d;
        return brick_fail(b, KILN_ERR_SHAPE, "input is %s, expected a last dim of %lld",
                          desc(g, x, &d), (long long)kiln_param_dim(bias, 0));
    }
    /* Blocks' Bias adds no auxiliary variable, unlike Linear. */
    kiln_node nb = kiln_graph_store_leaf(g, bias);
    if (built(b, g, nb) != KILN_OK)
        return b->err.status;
    *y = kiln_expr_add(g, x, nb);
    return built(b, g, *y);
}

static enum kiln_status apply_rec(kiln_brick *b, kiln_graph *g, kiln_node x, kiln_node *y);

/* Sequence and MLP: children in order, then a copy named for b. */
static enum kiln_status apply_children(kiln_brick *b, kiln_graph *g, kiln_node x, kiln_node *y)
{
    kiln_node h = x;
    for (int i = 0; i < b->n_children; i++)
        if (apply_rec(b->children[i], g, h, &h) != KILN_OK)
            return brick_fail_from(b, b->children[i]);
    *y = copy_node(g, h);
    return built(b, g, *y);
}

/* Plan: check the input, allocate if needed, build by kind, tag the output. */
static enum kiln_status apply_rec(kiln_brick *b, kiln_graph *g, kiln_node x, kiln_node *y)
{
    *y = KILN_NODE_NONE;
    if (check_node(b, g, x, "input") != KILN_OK)
        return b->err.status;
    if (class_of(b)->flags & CLS_COST)
        return brick_fail(b, KILN_ERR_ARG, "%s takes (y, y_hat): use kiln_cost_apply",
                          class_of(b)->class_name);
    if (!b->allocated && allocate(b) != KILN_OK)
        return b->err.status;
    int32_t n0 = g->n_nodes;
    kiln_node out = KILN_NODE_NONE;
    enum kiln_status s = KILN_OK;
    if (class_of(b)->flags & CLS_ACTIVATION) {
        if (need_float(b, g, x, "input"))
            return b->err.status;
    }
    switch (b->kind) {
    case BK_LINEAR: s = apply_linear(b, g, x, &out); break;
    case BK_BIAS: s = apply_bias(b, g, x, &out); break;
    case BK_IDENTITY: s = built(b, g, out = copy_node(g, x)); break;
    case BK_RECTIFIER: s = built(b, g, out = kiln_expr_relu(g, x)); break;
    case BK_TANH: s = built(b, g, out = kiln_expr_tanh(g, x)); break;
    case BK_LOGISTIC: s = built(b, g, out = kiln_expr_sigmoid(g, x)); break;
    case BK_SOFTPLUS: s = built(b, g, out = kiln_expr_softplus(g, x)); break;
    case BK_SOFTMAX:
        if (need_float(b, g, x, "input") || need_rank(b, g, x, "input", 2, "(batch, classes)"))
            return b->err.status;
        s = built(b, g, out = kiln_expr_softmax(g, x));
        break;
    case BK_SEQUENCE:
    case BK_MLP: s = apply_children(b, g, x, &out); break;
    default: return brick_fail(b, KILN_ERR_ARG, "%s cannot be applied", class_of(b)->class_name);
    }
    if (s != KILN_OK)
        return s;
    if ((s = tag_output(b, g, out, n0, "apply", NULL)) != KILN_OK)
        return s;
    *y = out;
    return KILN_OK;
}

/* Common entry checks; on failure the error is on b and on g. */
static enum kiln_status apply_begin(kiln_brick *b, kiln_graph *g, kiln_node *out)
{
    KILN_API_CHECK(b && g && out);
    if (!b || !g || !out)
        return KILN_ERR_ARG;
    *out = KILN_NODE_NONE;
    kiln_err_clear(&b->err);
    return KILN_OK;
}

/* Record b's failure on g too (kept only when g has no earlier error). */
static enum kiln_status apply_end(kiln_brick *b, kiln_graph *g, enum kiln_status s)
{
    if (s != KILN_OK)
        kiln_graph_fail(g, s, "%s", b->err.msg);
    return s;
}

enum kiln_status kiln_brick_apply(kiln_brick *b, kiln_graph *g, kiln_node input, kiln_node *out)
{
    if (apply_begin(b, g, out) != KILN_OK)
        return KILN_ERR_ARG;
    return apply_end(b, g, apply_rec(b, g, input, out));
}

static enum kiln_status softmax_begin(kiln_brick *b, kiln_graph *g, kiln_node x, const char *app)
{
    if (b->kind != BK_SOFTMAX)
        return brick_fail(b, KILN_ERR_ARG, "%s is a %s, not a Softmax", app, class_of(b)->class_name);
    if (check_node(b, g, x, "x") || need_float(b, g, x, "x") ||
        need_rank(b, g, x, "x", 2, "(batch, classes)"))
        return b->err.status;
    if (!b->allocated && allocate(b) != KILN_OK)
        return b->err.status;
    return KILN_OK;
}

enum kiln_status kiln_softmax_log_probabilities(kiln_brick *b, kiln_graph *g, kiln_node x,
                                                kiln_node *out)
{
    if (apply_begin(b, g, out) != KILN_OK)
        return KILN_ERR_ARG;
    enum kiln_status s = softmax_begin(b, g, x, "log_probabilities");
    int32_t n0 = g->n_nodes;
    kiln_node y = KILN_NODE_NONE;
    if (s == KILN_OK)
        s = built(b, g, y = kiln_expr_log_softmax(g, x));
    if (s == KILN_OK && (s = tag_output(b, g, y, n0, "log_probabilities", NULL)) == KILN_OK)
        *out = y;
    return apply_end(b, g, s);
}

enum kiln_status kiln_softmax_categorical_cross_entropy(kiln_brick *b, kiln_graph *g, kiln_node y,
                                                        kiln_node x, kiln_node *out)
{
    if (apply_begin(b, g, out) != KILN_OK)
        return KILN_ERR_ARG;
    enum kiln_status s = softmax_begin(b, g, x, "categorical_cross_entropy");
    if (s == KILN_OK)
        s = check_node(b, g, y, "y");
    if (s == KILN_OK)
        s = need_labels(b, g, y, x);
    int32_t n0 = g->n_nodes;
    kiln_node c = KILN_NODE_NONE;
    if (s == KILN_OK)
        s = built(b, g, c = kiln_expr_neg(g, kiln_expr_pick(g, kiln_expr_log_softmax(g, x), y)));
    if (s == KILN_OK && (s = tag_output(b, g, c, n0, "categorical_cross_entropy", NULL)) == KILN_OK)
        *out = c;
    return apply_end(b, g, s);
}

/* Blocks' CostMatrix: cost_matrix(y, y_hat).sum(axis=1).mean(). */
static kiln_node cost_matrix(kiln_brick *b, kiln_graph *g, kiln_node y, kiln_node yh)
{
    kiln_node m;
    switch (b->kind) {
    case BK_BINARY_CROSS_ENTROPY: {
        /* -(y log yh + (1 - y) log(1 - yh)), Theano's binary_crossentropy */
        kiln_node one = kiln_expr_constant(g, 1.0);
        kiln_node pos = kiln_expr_mul(g, y, kiln_expr_log(g, yh));
        kiln_node neg = kiln_expr_mul(g, kiln_expr_sub(g, one, y),
                                      kiln_expr_log(g, kiln_expr_sub(g, one, yh)));
        m = kiln_expr_neg(g, kiln_expr_add(g, pos, neg));
        break;
    }
    case BK_SQUARED_ERROR: m = kiln_expr_square(g, kiln_expr_sub(g, y, yh)); break;
    default: m = kiln_expr_abs(g, kiln_expr_sub(g, y, yh)); break;
    }
    return kiln_expr_mean(g, kiln_expr_sum(g, m, 1), KILN_ALL_AXES);
}

/* Plan: check both inputs by kind, build the scalar, tag it. */
enum kiln_status kiln_cost_apply(kiln_brick *b, kiln_graph *g, kiln_node y, kiln_node y_hat,
                                 kiln_node *out)
{
    if (apply_begin(b, g, out) != KILN_OK)
        return KILN_ERR_ARG;
    enum kiln_status s = KILN_OK;
    if (!(class_of(b)->flags & CLS_COST))
        s = brick_fail(b, KILN_ERR_ARG, "%s is not a cost brick: use kiln_brick_apply",
                       class_of(b)->class_name);
    if (s == KILN_OK && (s = check_node(b, g, y, "y")) == KILN_OK)
        s = check_node(b, g, y_hat, "y_hat");
    if (s == KILN_OK && !b->allocated)
        s = allocate(b);
    if (s != KILN_OK)
        return apply_end(b, g, s);

    int32_t n0 = g->n_nodes;
    kiln_node c = KILN_NODE_NONE;
    const char *fixed_name = NULL;
    switch (b->kind) {
    case BK_CATEGORICAL_CROSS_ENTROPY:
        /* mean(-log(y_hat[i, y[i]])): log over pick over softmax is what the
        ** program graph's rewrite turns into the stable fused form. */
        if ((s = need_labels(b, g, y, y_hat)) == KILN_OK)
            c = kiln_expr_mean(g, kiln_expr_neg(g, kiln_expr_log(g, kiln_expr_pick(g, y_hat, y))),
                               KILN_ALL_AXES);
        break;
    case BK_MISCLASSIFICATION_RATE:
        /* top_k = 1: argmax picks the first of tied maxima */
        if ((s = need_labels(b, g, y, y_hat)) == KILN_OK)
            c = kiln_expr_mean(g, kiln_expr_not_equal(g, kiln_expr_argmax(g, y_hat), y), KILN_ALL_AXES);
        fixed_name = "error_rate";
        break;
    default: {
        desc_buf d1, d2;
        if (need_float(b, g, y, "y") || need_float(b, g, y_hat, "y_hat") ||
            need_rank(b, g, y_hat, "y_hat", 2, "(batch, features)")) {
            s = b->err.status;
        } else if (!kiln_shape_equal(&rec_of(g, y)->shape, &rec_of(g, y_hat)->shape)) {
            s = brick_fail(b, KILN_ERR_SHAPE, "y is %s but y_hat is %s: shapes must be equal",
                           desc(g, y, &d1), desc(g, y_hat, &d2));
        } else {
            c = cost_matrix(b, g, y, y_hat);
        }
        break;
    }
    }
    if (s == KILN_OK)
        s = built(b, g, c);
    if (s == KILN_OK && (s = tag_output(b, g, c, n0, "apply", fixed_name)) == KILN_OK)
        *out = c;
    return apply_end(b, g, s);
}

/* ---- parameters ------------------------------------------------------------ */

int kiln_brick_param_count(const kiln_brick *b) { return b ? b->n_params : 0; }

kiln_param *kiln_brick_param(const kiln_brick *b, int i)
{
    if (!b || i < 0 || i >= b->n_params)
        return NULL;
    return b->params[i];
}

kiln_param *kiln_brick_param_by_name(const kiln_brick *b, const char *name)
{
    if (!b || !name)
        return NULL;
    for (int i = 0; i < b->n_params; i++)
        if (strcmp(kiln_param_name(b->params[i]), name) == 0)
            return b->params[i];
    return NULL;
}

kiln_brick *kiln_param_brick(const kiln_param *p) { return kiln_store_front(p); }

/* Auxiliary variable (Blocks' add_auxiliary_variable): n marked AUXILIARY,
** named, and owned by brick b's path. */
enum kiln_status kiln_graph_add_auxiliary(kiln_graph *g, kiln_node n, const char *name, kiln_brick *b)
{
    if (!g)
        return KILN_ERR_ARG;
    if (!kiln_graph_check(g, n, "kiln_graph_add_auxiliary"))
        return g->err.status;
    if (name) {
        enum kiln_status s = kiln_graph_set_name_raw(g, n.id, name);
        if (s)
            return s;
    }
    g->nodes[n.id].roles |= KILN_ROLE_AUXILIARY;
    if (b)
        return kiln_graph_set_owner(g, n.id, b->path);
    return KILN_OK;
}
