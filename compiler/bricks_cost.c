/* bricks_cost.c: Blocks' cost bricks (blocks.bricks.cost), apply(y, y_hat):
** CategoricalCrossEntropy and MisclassificationRate (y: class indices) and
** the CostMatrix family, cost_matrix(y, y_hat).sum(axis=1).mean():
** BinaryCrossEntropy, SquaredError, AbsoluteError.
**
** The input declarations carry the dtype and rank checks; the functions
** check what relates the two inputs (rows, shapes) and build. The three
** CostMatrix classes share one function, told apart by their class's
** elementwise cost. MisclassificationRate's output is named error_rate, not
** misclassificationrate_apply_error_rate: kiln's choice, since the Blocks
** tutorials name that variable error_rate by hand. */
#include "compiler/bricks_internal.h"

static const char *const OUTPUT[] = {"output", NULL};

/* y's rows against y_hat's. */
static enum kiln_status same_rows(kiln_brick *b, kiln_graph *g, kiln_node y, kiln_node y_hat)
{
    if (kiln_graph_node_dim(g, y, 0) == kiln_graph_node_dim(g, y_hat, 0))
        return KILN_OK;
    kiln_desc_buf d1, d2;
    return kiln_brick_fail(b, KILN_ERR_SHAPE, "y is %s but y_hat is %s: row counts differ",
                           kiln_brick_desc(g, y, &d1), kiln_brick_desc(g, y_hat, &d2));
}

static const kiln_brick_input LABEL_INPUTS[] = {
    {"y", KILN_INPUT_LABELS, 0, NULL, NULL},
    {"y_hat", KILN_INPUT_FLOAT, 2, "(batch, classes)", NULL},
    {NULL},
};

/* ---- CategoricalCrossEntropy, MisclassificationRate ---------------------------- */

/* mean(-log(y_hat[i, y[i]])): log over pick over softmax is what the program
** graph's rewrite turns into the stable fused form. */
static enum kiln_status cce_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    enum kiln_status s = same_rows(b, g, in[0], in[1]);
    if (s != KILN_OK)
        return s;
    out[0] = kiln_expr_mean(g, kiln_expr_neg(g, kiln_expr_log(g, kiln_expr_pick(g, in[1], in[0]))),
                            KILN_ALL_AXES);
    return kiln_brick_built(b, g, out[0]);
}

/* top_k = 1: argmax picks the first of tied maxima */
static enum kiln_status misclassification_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in,
                                                kiln_node *out)
{
    enum kiln_status s = same_rows(b, g, in[0], in[1]);
    if (s != KILN_OK)
        return s;
    out[0] = kiln_expr_mean(g, kiln_expr_not_equal(g, kiln_expr_argmax(g, in[1]), in[0]), KILN_ALL_AXES);
    return kiln_brick_built(b, g, out[0]);
}

static const kiln_brick_application CCE_APPS[] = {
    {"apply", LABEL_INPUTS, OUTPUT, cce_apply, 0},
    {NULL},
};
static const kiln_brick_class CATEGORICAL_CROSS_ENTROPY = {
    .class_name = "CategoricalCrossEntropy",
    .default_name = "categoricalcrossentropy",
    .applications = CCE_APPS,
};

static const char *const ERROR_RATE[] = {"error_rate", NULL};
static const kiln_brick_application MISCLASSIFICATION_APPS[] = {
    {"apply", LABEL_INPUTS, ERROR_RATE, misclassification_apply, KILN_APPLICATION_BARE_NAMES},
    {NULL},
};
static const kiln_brick_class MISCLASSIFICATION_RATE = {
    .class_name = "MisclassificationRate",
    .default_name = "misclassificationrate",
    .applications = MISCLASSIFICATION_APPS,
};

/* ---- CostMatrix ------------------------------------------------------------------ */

/* -(y log yh + (1 - y) log(1 - yh)), Theano's binary_crossentropy */
static kiln_node binary_cross_entropy(kiln_graph *g, kiln_node y, kiln_node yh)
{
    kiln_node one = kiln_expr_constant(g, 1.0);
    kiln_node pos = kiln_expr_mul(g, y, kiln_expr_log(g, yh));
    kiln_node neg = kiln_expr_mul(g, kiln_expr_sub(g, one, y), kiln_expr_log(g, kiln_expr_sub(g, one, yh)));
    return kiln_expr_neg(g, kiln_expr_add(g, pos, neg));
}

static kiln_node squared_error(kiln_graph *g, kiln_node y, kiln_node yh)
{
    return kiln_expr_square(g, kiln_expr_sub(g, y, yh));
}

static kiln_node absolute_error(kiln_graph *g, kiln_node y, kiln_node yh)
{
    return kiln_expr_abs(g, kiln_expr_sub(g, y, yh));
}

static enum kiln_status cost_matrix_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out);

static const kiln_brick_input MATRIX_INPUTS[] = {
    {"y", KILN_INPUT_FLOAT, 0, NULL, NULL},
    {"y_hat", KILN_INPUT_FLOAT, 2, "(batch, features)", NULL},
    {NULL},
};
static const kiln_brick_application COST_MATRIX_APPS[] = {
    {"apply", MATRIX_INPUTS, OUTPUT, cost_matrix_apply, 0},
    {NULL},
};
static const kiln_brick_class BINARY_CROSS_ENTROPY = {
    .class_name = "BinaryCrossEntropy",
    .default_name = "binarycrossentropy",
    .applications = COST_MATRIX_APPS,
};
static const kiln_brick_class SQUARED_ERROR = {
    .class_name = "SquaredError",
    .default_name = "squarederror",
    .applications = COST_MATRIX_APPS,
};
static const kiln_brick_class ABSOLUTE_ERROR = {
    .class_name = "AbsoluteError",
    .default_name = "absoluteerror",
    .applications = COST_MATRIX_APPS,
};

/* Blocks' CostMatrix: cost_matrix(y, y_hat).sum(axis=1).mean(). */
static enum kiln_status cost_matrix_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    kiln_node y = in[0], yh = in[1];
    const kiln_brick_class *cls = kiln_brick_class_of(b);
    if (!kiln_shape_equal(&kiln_graph_cnode(g, y.id)->shape, &kiln_graph_cnode(g, yh.id)->shape)) {
        kiln_desc_buf d1, d2;
        return kiln_brick_fail(b, KILN_ERR_SHAPE, "y is %s but y_hat is %s: shapes must be equal",
                               kiln_brick_desc(g, y, &d1), kiln_brick_desc(g, yh, &d2));
    }
    kiln_node m = cls == &BINARY_CROSS_ENTROPY ? binary_cross_entropy(g, y, yh)
                  : cls == &SQUARED_ERROR      ? squared_error(g, y, yh)
                                               : absolute_error(g, y, yh);
    out[0] = kiln_expr_mean(g, kiln_expr_sum(g, m, 1), KILN_ALL_AXES);
    return kiln_brick_built(b, g, out[0]);
}

kiln_brick *kiln_categorical_cross_entropy_create(const char *name)
{
    return kiln_brick_create(&CATEGORICAL_CROSS_ENTROPY, name);
}
kiln_brick *kiln_binary_cross_entropy_create(const char *name) { return kiln_brick_create(&BINARY_CROSS_ENTROPY, name); }
kiln_brick *kiln_squared_error_create(const char *name) { return kiln_brick_create(&SQUARED_ERROR, name); }
kiln_brick *kiln_absolute_error_create(const char *name) { return kiln_brick_create(&ABSOLUTE_ERROR, name); }
kiln_brick *kiln_misclassification_rate_create(const char *name)
{
    return kiln_brick_create(&MISCLASSIFICATION_RATE, name);
}

enum kiln_status kiln_cost_apply(kiln_brick *b, kiln_graph *g, kiln_node y, kiln_node y_hat, kiln_node *out)
{
    return kiln_brick_call(b, "apply", g, (kiln_node[]){y, y_hat}, 2, out, 1);
}
