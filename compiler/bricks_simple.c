/* bricks_simple.c: Blocks' simple bricks (blocks.bricks): Linear, Bias,
** LookupTable (blocks.bricks.lookup), the activations (Identity, Rectifier,
** Tanh, Logistic, Softplus) and Softmax with its three applications, as
** classes of the brick model (brick.c).
**
** Each is a kiln_brick_class: dims, the inputs each application declares
** (the machinery checks dtype, rank and feature count before the function
** runs, so the functions only build), and for Linear and Bias an allocate
** callback declaring their parameters in Blocks' order (Linear: W, b). The
** default initialize (biases, then weights) is Blocks' Linear._initialize.
** Linear adds Blocks' brick-level auxiliary variables W_norm and b_norm;
** Bias adds none, as in Blocks. Identity returns its input: the machinery
** copies it (Blocks copies every output) so the input keeps its name. */
#include <string.h>

#include "compiler/bricks_internal.h"
#include "compiler/graph.h"

static const char *const OUTPUT[] = {"output", NULL};

/* ---- Linear: x . W + b ---------------------------------------------------- */

/* Blocks' brick-level auxiliary variable `name` = sqrt(sum(p^2)), once per
** graph and brick. */
static enum kiln_status add_norm(kiln_brick *b, kiln_graph *g, kiln_node p, const char *name)
{
    const char *path = kiln_brick_path(b);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const kiln_node_rec *r = kiln_graph_cnode(g, i);
        if (r->owner && strcmp(r->owner, path) == 0 && (r->roles & KILN_ROLE_AUXILIARY) && r->name &&
            strcmp(r->name, name) == 0)
            return KILN_OK;
    }
    kiln_node norm = kiln_expr_sqrt(g, kiln_expr_sum(g, kiln_expr_square(g, p), KILN_ALL_AXES));
    enum kiln_status s = kiln_brick_built(b, g, norm);
    if (s != KILN_OK)
        return s;
    if (kiln_graph_add_auxiliary(g, norm, name, b) != KILN_OK)
        return kiln_brick_fail(b, g->err.status, "%s", g->err.msg);
    return KILN_OK;
}

static enum kiln_status linear_allocate(kiln_brick *b)
{
    int64_t in, out;
    if (kiln_brick_require_dim(b, "input_dim", &in) != KILN_OK ||
        kiln_brick_require_dim(b, "output_dim", &out) != KILN_OK)
        return KILN_ERR_CONFIG;
    enum kiln_status s = kiln_brick_add_param(b, "W", KILN_ROLE_WEIGHT, 2, (int64_t[]){in, out}, NULL);
    if (s == KILN_OK && kiln_brick_use_bias(b))
        s = kiln_brick_add_param(b, "b", KILN_ROLE_BIAS, 1, &out, NULL);
    return s;
}

static enum kiln_status linear_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    kiln_param *w = kiln_brick_param_by_name(b, "W"), *bias = kiln_brick_param_by_name(b, "b");
    /* b's leaf before W's: Blocks lists a layer's parameters as [b, W] in
    ** graph order. */
    kiln_node nb = bias ? kiln_graph_param(g, bias) : KILN_NODE_NONE;
    enum kiln_status s = bias ? kiln_brick_built(b, g, nb) : KILN_OK;
    kiln_node nw = KILN_NODE_NONE;
    if (s == KILN_OK)
        s = kiln_brick_built(b, g, nw = kiln_graph_param(g, w));
    if (s == KILN_OK)
        s = add_norm(b, g, nw, "W_norm");
    if (s == KILN_OK && bias)
        s = add_norm(b, g, nb, "b_norm");
    if (s != KILN_OK)
        return s;
    kiln_node y = kiln_expr_matmul(g, in[0], nw);
    if (bias)
        y = kiln_expr_add(g, y, nb);
    out[0] = y;
    return kiln_brick_built(b, g, y);
}

static const char *const LINEAR_DIMS[] = {"input_dim", "output_dim", NULL};
static const kiln_brick_input LINEAR_INPUTS[] = {
    {"input", KILN_INPUT_FLOAT, 2, "(batch, input_dim)", "input_dim"},
    {NULL},
};
static const kiln_brick_application LINEAR_APPS[] = {
    {"apply", LINEAR_INPUTS, OUTPUT, linear_apply, 0},
    {NULL},
};
static const kiln_brick_class LINEAR = {
    .class_name = "Linear",
    .default_name = "linear",
    .flags = KILN_BRICK_INITIALIZABLE | KILN_BRICK_USE_BIAS,
    .dims = LINEAR_DIMS,
    .applications = LINEAR_APPS,
    .allocate = linear_allocate,
};

kiln_brick *kiln_linear_create(const char *name, int64_t input_dim, int64_t output_dim)
{
    if (input_dim < 0 || output_dim < 0)
        return NULL;
    kiln_brick *b = kiln_brick_create(&LINEAR, name);
    if (b) {
        kiln_brick_put_dim(b, "input_dim", input_dim);
        kiln_brick_put_dim(b, "output_dim", output_dim);
    }
    return b;
}

/* ---- Bias: x + b ------------------------------------------------------------ */

static enum kiln_status bias_allocate(kiln_brick *b)
{
    int64_t dim;
    if (kiln_brick_require_dim(b, "dim", &dim) != KILN_OK)
        return KILN_ERR_CONFIG;
    return kiln_brick_add_param(b, "b", KILN_ROLE_BIAS, 1, &dim, NULL);
}

static enum kiln_status bias_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    kiln_node nb = kiln_graph_param(g, kiln_brick_param_by_name(b, "b"));
    enum kiln_status s = kiln_brick_built(b, g, nb);
    if (s != KILN_OK)
        return s;
    out[0] = kiln_expr_add(g, in[0], nb);
    return kiln_brick_built(b, g, out[0]);
}

/* Blocks' Bias: input_dim and output_dim are dim. */
static const char *const BIAS_DIMS[] = {"dim|input_dim|output_dim", NULL};
static const kiln_brick_input BIAS_INPUTS[] = {
    {"input", KILN_INPUT_FLOAT, 0, NULL, "dim"},
    {NULL},
};
static const kiln_brick_application BIAS_APPS[] = {
    {"apply", BIAS_INPUTS, OUTPUT, bias_apply, 0},
    {NULL},
};
static const kiln_brick_class BIAS = {
    .class_name = "Bias",
    .default_name = "bias",
    .flags = KILN_BRICK_INITIALIZABLE,
    .dims = BIAS_DIMS,
    .applications = BIAS_APPS,
    .allocate = bias_allocate,
};

kiln_brick *kiln_bias_create(const char *name, int64_t dim)
{
    if (dim < 0)
        return NULL;
    kiln_brick *b = kiln_brick_create(&BIAS, name);
    if (b)
        kiln_brick_put_dim(b, "dim", dim);
    return b;
}

/* ---- LookupTable: rows of W picked by integer indices ------------------------- */

static enum kiln_status lookup_allocate(kiln_brick *b)
{
    int64_t length, dim;
    if (kiln_brick_require_dim(b, "length", &length) != KILN_OK || kiln_brick_require_dim(b, "dim", &dim) != KILN_OK)
        return KILN_ERR_CONFIG;
    return kiln_brick_add_param(b, "W", KILN_ROLE_WEIGHT, 2, (int64_t[]){length, dim}, NULL);
}

static enum kiln_status lookup_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    if (kiln_graph_node_dtype(g, in[0]) != KILN_DTYPE_I32) {
        kiln_desc_buf d;
        return kiln_brick_fail(b, KILN_ERR_SHAPE, "indices is %s, expected int32 indices", kiln_brick_desc(g, in[0], &d));
    }
    kiln_node w = kiln_graph_param(g, kiln_brick_param_by_name(b, "W"));
    enum kiln_status s = kiln_brick_built(b, g, w);
    if (s != KILN_OK)
        return s;
    return kiln_brick_built(b, g, out[0] = kiln_expr_gather(g, w, in[0]));
}

/* Blocks' LookupTable: output_dim is dim. */
static const char *const LOOKUP_DIMS[] = {"length", "dim|output_dim", NULL};
static const kiln_brick_input LOOKUP_INPUTS[] = {
    {"indices", 0, 0, NULL, NULL},
    {NULL},
};
static const kiln_brick_application LOOKUP_APPS[] = {
    {"apply", LOOKUP_INPUTS, OUTPUT, lookup_apply, 0},
    {NULL},
};
static const kiln_brick_class LOOKUP_TABLE = {
    .class_name = "LookupTable",
    .default_name = "lookuptable",
    .flags = KILN_BRICK_INITIALIZABLE,
    .dims = LOOKUP_DIMS,
    .applications = LOOKUP_APPS,
    .allocate = lookup_allocate,
};

kiln_brick *kiln_lookup_table_create(const char *name, int64_t length, int64_t dim)
{
    if (length < 0 || dim < 0)
        return NULL;
    kiln_brick *b = kiln_brick_create(&LOOKUP_TABLE, name);
    if (b) {
        kiln_brick_put_dim(b, "length", length);
        kiln_brick_put_dim(b, "dim", dim);
    }
    return b;
}

/* ---- activations ------------------------------------------------------------- */

static const kiln_brick_input FLOAT_INPUT[] = {
    {"input", KILN_INPUT_FLOAT, 0, NULL, NULL},
    {NULL},
};

/* One class per activation: Blocks' Activation subclasses. */
#define ACTIVATION_CLASS(var, cls_name, def_name, fn)                                                       \
    static const kiln_brick_application var##_APPS[] = {{"apply", FLOAT_INPUT, OUTPUT, fn, 0}, {NULL}};      \
    static const kiln_brick_class var = {.class_name = cls_name, .default_name = def_name,                  \
                                         .flags = KILN_BRICK_ACTIVATION, .applications = var##_APPS}

/* The machinery copies an input handed back as output. */
static enum kiln_status identity_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    out[0] = in[0];
    return KILN_OK;
}

static enum kiln_status rectifier_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    return kiln_brick_built(b, g, out[0] = kiln_expr_relu(g, in[0]));
}

static enum kiln_status tanh_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    return kiln_brick_built(b, g, out[0] = kiln_expr_tanh(g, in[0]));
}

static enum kiln_status logistic_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    return kiln_brick_built(b, g, out[0] = kiln_expr_sigmoid(g, in[0]));
}

static enum kiln_status softplus_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    return kiln_brick_built(b, g, out[0] = kiln_expr_softplus(g, in[0]));
}

ACTIVATION_CLASS(IDENTITY, "Identity", "identity", identity_apply);
ACTIVATION_CLASS(RECTIFIER, "Rectifier", "rectifier", rectifier_apply);
ACTIVATION_CLASS(TANH, "Tanh", "tanh", tanh_apply);
ACTIVATION_CLASS(LOGISTIC, "Logistic", "logistic", logistic_apply);
ACTIVATION_CLASS(SOFTPLUS, "Softplus", "softplus", softplus_apply);

kiln_brick *kiln_identity_create(const char *name) { return kiln_brick_create(&IDENTITY, name); }
kiln_brick *kiln_rectifier_create(const char *name) { return kiln_brick_create(&RECTIFIER, name); }
kiln_brick *kiln_tanh_create(const char *name) { return kiln_brick_create(&TANH, name); }
kiln_brick *kiln_logistic_create(const char *name) { return kiln_brick_create(&LOGISTIC, name); }
kiln_brick *kiln_softplus_create(const char *name) { return kiln_brick_create(&SOFTPLUS, name); }

/* ---- Softmax: apply, log_probabilities, categorical_cross_entropy --------------- */

static enum kiln_status softmax_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    return kiln_brick_built(b, g, out[0] = kiln_expr_softmax(g, in[0]));
}

static enum kiln_status softmax_log_probabilities(kiln_brick *b, kiln_graph *g, const kiln_node *in,
                                                  kiln_node *out)
{
    return kiln_brick_built(b, g, out[0] = kiln_expr_log_softmax(g, in[0]));
}

/* -log_softmax(x)[i, y[i]]: the stable form, one value per row. */
static enum kiln_status softmax_cross_entropy(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    kiln_node y = in[0], x = in[1];
    if (kiln_graph_node_dim(g, y, 0) != kiln_graph_node_dim(g, x, 0)) {
        kiln_desc_buf d1, d2;
        return kiln_brick_fail(b, KILN_ERR_SHAPE, "y is %s but x is %s: row counts differ",
                               kiln_brick_desc(g, y, &d1), kiln_brick_desc(g, x, &d2));
    }
    return kiln_brick_built(b, g, out[0] = kiln_expr_neg(g, kiln_expr_pick(g, kiln_expr_log_softmax(g, x), y)));
}

static const kiln_brick_input SOFTMAX_INPUT[] = {
    {"input", KILN_INPUT_FLOAT, 2, "(batch, classes)", NULL},
    {NULL},
};
static const kiln_brick_input SOFTMAX_CE_INPUTS[] = {
    {"y", KILN_INPUT_LABELS, 0, NULL, NULL},
    {"x", KILN_INPUT_FLOAT, 2, "(batch, classes)", NULL},
    {NULL},
};
static const kiln_brick_application SOFTMAX_APPS[] = {
    {"apply", SOFTMAX_INPUT, OUTPUT, softmax_apply, 0},
    {"log_probabilities", SOFTMAX_INPUT, OUTPUT, softmax_log_probabilities, 0},
    {"categorical_cross_entropy", SOFTMAX_CE_INPUTS, OUTPUT, softmax_cross_entropy, 0},
    {NULL},
};
static const kiln_brick_class SOFTMAX = {
    .class_name = "Softmax",
    .default_name = "softmax",
    .applications = SOFTMAX_APPS,
};

kiln_brick *kiln_softmax_create(const char *name) { return kiln_brick_create(&SOFTMAX, name); }

/* Softmax's other applications through kiln_brick_call; another class is
** refused by name (KILN_ERR_ARG), not by a missing application. */
static enum kiln_status softmax_call(kiln_brick *b, const char *app, kiln_graph *g, const kiln_node *in, int n_in,
                                     kiln_node *out)
{
    if (!b || !g || !out) /* kiln_brick_call says which is NULL */
        return kiln_brick_call(b, app, g, in, n_in, out, 1);
    if (kiln_brick_class_of(b) != &SOFTMAX) {
        *out = KILN_NODE_NONE;
        enum kiln_status s = kiln_brick_fail(b, KILN_ERR_ARG, "%s is a %s, not a Softmax", app,
                                             kiln_brick_class_of(b)->class_name);
        kiln_graph_fail(g, s, "%s", kiln_brick_errmsg(b));
        return s;
    }
    return kiln_brick_call(b, app, g, in, n_in, out, 1);
}

enum kiln_status kiln_softmax_log_probabilities(kiln_brick *b, kiln_graph *g, kiln_node x, kiln_node *out)
{
    return softmax_call(b, "log_probabilities", g, &x, 1, out);
}

enum kiln_status kiln_softmax_categorical_cross_entropy(kiln_brick *b, kiln_graph *g, kiln_node y, kiln_node x,
                                                        kiln_node *out)
{
    return softmax_call(b, "categorical_cross_entropy", g, (kiln_node[]){y, x}, 2, out);
}
