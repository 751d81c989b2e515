/* test_bricks.c: the brick life cycle, names, parameters and the graphs
** bricks build, against the Blocks documentation's examples.
**
** Example numbers refer to /work/shared/reference/blocks-checklist.md §9.
** Values that come from the RNG were computed with numpy's RandomState (the
** Blocks intro prints them); ex. 4's printed weights depend on Blocks'
** process-wide seed_rng and are not reproduced (checklist §10). These tests
** look at graph structure, not at computed values: evaluating a graph is the
** runtime's job and is tested there. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/bricks_internal.h"
#include "compiler/graph.h"
#include "compiler/init.h"
#include "compiler/rng.h"
#include "kiln/bricks.h"
#include "testutil.h"

/* The axis a reduction removes, KILN_ALL_AXES when it removes them all (the
** IR keeps a set of axes as a bit mask). */
static int reduced_axis(const kiln_graph *g, const kiln_node_rec *r)
{
    int64_t mask = kiln_attr_axes(r), all = ((int64_t)1 << kiln_graph_cnode(g, r->in[0])->shape.rank) - 1;
    if (mask == all)
        return KILN_ALL_AXES;
    for (int k = 0; k < 63; k++)
        if (mask == (int64_t)1 << k)
            return k;
    return -2;
}

/* ---- helpers -------------------------------------------------------------- */

/* A graph of floatx with one input `name` (B, dim). */
static kiln_graph *graph_with_input(enum kiln_dtype floatx, const char *name, int64_t dim,
                                    kiln_node *x)
{
    kiln_graph *g = kiln_graph_create(floatx);
    ck_assert_ptr_nonnull(g);
    int64_t dims[2] = {KILN_BATCH, dim};
    *x = kiln_graph_input(g, name, floatx, 2, dims);
    ck_assert(kiln_node_ok(*x));
    return g;
}

static kiln_node int_labels(kiln_graph *g, const char *name)
{
    int64_t dims[1] = {KILN_BATCH};
    kiln_node y = kiln_graph_input(g, name, KILN_DTYPE_I32, 1, dims);
    ck_assert(kiln_node_ok(y));
    return y;
}

/* All values of p, caller frees. */
static double *values_of(const kiln_param *p)
{
    int64_t n = kiln_param_size(p);
    double *v = malloc((size_t)n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(kiln_param_get_values(p, v, n), KILN_OK);
    return v;
}

static void assert_all(const kiln_param *p, double want)
{
    double *v = values_of(p);
    for (int64_t i = 0; i < kiln_param_size(p); i++) {
        if (isnan(want))
            ck_assert_msg(isnan(v[i]), "%s[%lld] = %g, want nan", kiln_param_name(p), (long long)i, v[i]);
        else
            ck_assert_msg(v[i] == want, "%s[%lld] = %.17g, want %.17g", kiln_param_name(p),
                          (long long)i, v[i], want);
    }
    free(v);
}

static kiln_brick *mlp_of(kiln_brick *a0, kiln_brick *a1, kiln_brick *a2, int n_layers,
                          const int64_t *dims)
{
    kiln_brick *acts[3] = {a0, a1, a2};
    kiln_brick *m = kiln_mlp_create(NULL, acts, n_layers, dims);
    ck_assert_ptr_nonnull(m);
    return m;
}

static bool has_op_named(const kiln_graph *g, const char *name, enum kiln_op op)
{
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == op && g->nodes[i].name && strcmp(g->nodes[i].name, name) == 0)
            return true;
    return false;
}

/* ---- Building with bricks: examples 1-3 --------------------------------------- */

START_TEST(tanh_output_is_named_and_input_keeps_its_name)
{
    /* ex. 1: Tanh().apply(vector('x')) -> tanh_apply_output */
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    int64_t d[1] = {7};
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 1, d);
    kiln_brick *t = kiln_tanh_create(NULL);
    kiln_node y;
    ck_assert_int_eq(kiln_brick_apply(t, g, x, &y), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, y), "tanh_apply_output");
    ck_assert(kiln_graph_has_role(g, y, KILN_ROLE_OUTPUT));
    ck_assert_str_eq(kiln_graph_node_brick_path(g, y), "/tanh");
    ck_assert_str_eq(kiln_graph_node_name(g, x), "x");
    ck_assert_int_eq(kiln_graph_node_rank(g, y), 1);
    kiln_graph_destroy(g);
    kiln_brick_destroy(t);
}
END_TEST

START_TEST(linear_params_are_nan_until_initialized)
{
    /* ex. 2: Linear(10, 5, IsotropicGaussian(), Constant(0.01)) */
    kiln_node x;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 10, &x);
    kiln_brick *lin = kiln_linear_create(NULL, 10, 5);
    ck_assert_int_eq(kiln_brick_set_weights_init(lin, kiln_init_isotropic_gaussian(1, 0)), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_biases_init(lin, kiln_init_constant(0.01)), KILN_OK);
    kiln_node y;
    ck_assert_int_eq(kiln_brick_apply(lin, g, x, &y), KILN_OK);
    ck_assert(kiln_brick_allocated(lin));
    ck_assert(!kiln_brick_initialized(lin));
    ck_assert_int_eq(kiln_brick_param_count(lin), 2);
    ck_assert_str_eq(kiln_param_name(kiln_brick_param(lin, 0)), "W");
    ck_assert_str_eq(kiln_param_name(kiln_brick_param(lin, 1)), "b");
    kiln_param *b = kiln_brick_param(lin, 1);
    ck_assert_int_eq(kiln_param_size(b), 5);
    assert_all(b, NAN);
    assert_all(kiln_brick_param(lin, 0), NAN);

    ck_assert_int_eq(kiln_brick_initialize(lin), KILN_OK);
    ck_assert(kiln_brick_initialized(lin));
    assert_all(b, 0.01);
    ck_assert_int_eq(kiln_graph_node_dim(g, y, 1), 5);
    ck_assert_int_eq(kiln_graph_node_dim(g, y, 0), KILN_BATCH);
    kiln_graph_destroy(g);
    kiln_brick_destroy(lin);
}
END_TEST

START_TEST(lazy_linear_needs_input_dim)
{
    /* ex. 3: Linear(output_dim=10); apply -> allocation config not set */
    kiln_node x;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 5, &x);
    kiln_brick *lin = kiln_linear_create(NULL, 0, 10);
    int64_t dim = -1;
    ck_assert_int_eq(kiln_brick_get_dim(lin, "input_dim", &dim), KILN_OK);
    ck_assert_int_eq(dim, 0);
    kiln_node y = {123};
    ck_assert_int_eq(kiln_brick_apply(lin, g, x, &y), KILN_ERR_CONFIG);
    ck_assert(!kiln_node_ok(y));
    ck_assert_str_eq(kiln_brick_errmsg(lin), "/linear: allocation config not set: input_dim");
    ck_assert_int_eq(kiln_graph_status(g), KILN_ERR_CONFIG); /* the graph knows too */
    ck_assert(!kiln_brick_allocated(lin));
    ck_assert_int_eq(kiln_brick_param_count(lin), 0);

    ck_assert_int_eq(kiln_brick_set_dim(lin, "input_dim", 5), KILN_OK);
    kiln_graph_clear_error(g);
    ck_assert_int_eq(kiln_brick_apply(lin, g, x, &y), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, y), "linear_apply_output");
    ck_assert_int_eq(kiln_graph_node_dim(g, y, 1), 10);
    ck_assert_str_eq(kiln_brick_errmsg(lin), "ok");
    kiln_graph_destroy(g);
    kiln_brick_destroy(lin);
}
END_TEST

START_TEST(explicit_allocate_makes_params)
{
    /* ex. 3: Linear(10, 5).parameters -> none; allocate() -> [W, b] */
    kiln_brick *lin = kiln_linear_create(NULL, 10, 5);
    ck_assert_int_eq(kiln_brick_param_count(lin), 0);
    ck_assert_ptr_null(kiln_brick_param(lin, 0));
    ck_assert_ptr_null(kiln_brick_param_by_name(lin, "W"));
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    ck_assert_int_eq(kiln_brick_param_count(lin), 2);
    kiln_param *w = kiln_brick_param_by_name(lin, "W");
    ck_assert_ptr_eq(w, kiln_brick_param(lin, 0));
    ck_assert_int_eq(kiln_param_rank(w), 2);
    ck_assert_int_eq(kiln_param_dim(w, 0), 10);
    ck_assert_int_eq(kiln_param_dim(w, 1), 5);
    ck_assert_int_eq(kiln_param_dim(w, 2), 0);
    ck_assert_ptr_eq(kiln_param_brick(w), lin);
    ck_assert_uint_eq(kiln_param_roles(w) & KILN_ROLE_WEIGHT, KILN_ROLE_WEIGHT);
    kiln_param *b = kiln_brick_param(lin, 1);
    ck_assert_int_eq(kiln_param_rank(b), 1);
    ck_assert_int_eq(kiln_param_dim(b, 0), 5);
    ck_assert_uint_eq(kiln_param_roles(b) & KILN_ROLE_BIAS, KILN_ROLE_BIAS);
    kiln_brick_destroy(lin);
}
END_TEST

START_TEST(linear_without_bias_has_only_w)
{
    kiln_node x;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 3, &x);
    kiln_brick *lin = kiln_linear_create(NULL, 3, 2);
    ck_assert_int_eq(kiln_brick_set_use_bias(lin, false), KILN_OK);
    kiln_node y;
    ck_assert_int_eq(kiln_brick_apply(lin, g, x, &y), KILN_OK);
    ck_assert_int_eq(kiln_brick_param_count(lin), 1);
    ck_assert_ptr_null(kiln_brick_param_by_name(lin, "b"));
    ck_assert_int_eq(kiln_graph_node_dtype(g, y), KILN_DTYPE_F32);
    /* weights_init suffices without a bias */
    ck_assert_int_eq(kiln_brick_set_weights_init(lin, kiln_init_constant(2)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(lin), KILN_OK);
    assert_all(kiln_brick_param(lin, 0), 2);
    kiln_filter aux = {.roles = KILN_ROLE_AUXILIARY};
    kiln_node found[4];
    ck_assert_int_eq(kiln_graph_filter(g, &y, 1, &aux, found, 4), 1);
    ck_assert_str_eq(kiln_graph_node_name(g, found[0]), "W_norm");
    kiln_graph_destroy(g);
    kiln_brick_destroy(lin);
}
END_TEST

/* ---- Nested bricks: example 4 -------------------------------------------------- */

START_TEST(mlp_children_and_pushed_dims)
{
    /* ex. 4: MLP([Logistic('sigmoid_0'), Logistic('sigmoid_1')], [16, 8, 4]) */
    static const int64_t dims[] = {16, 8, 4};
    kiln_brick *m = mlp_of(kiln_logistic_create("sigmoid_0"), kiln_logistic_create("sigmoid_1"), NULL,
                           2, dims);
    static const char *names[] = {"linear_0", "sigmoid_0", "linear_1", "sigmoid_1"};
    ck_assert_int_eq(kiln_brick_child_count(m), 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(kiln_brick_name(kiln_brick_child(m, i)), names[i]);
        ck_assert_ptr_eq(kiln_brick_parent(kiln_brick_child(m, i)), m);
    }
    ck_assert_ptr_null(kiln_brick_child(m, 4));
    ck_assert_str_eq(kiln_brick_path(m), "/mlp");
    ck_assert_str_eq(kiln_brick_path(kiln_brick_child(m, 2)), "/mlp/linear_1");
    ck_assert_ptr_eq(kiln_brick_child_by_name(m, "sigmoid_1"), kiln_brick_child(m, 3));
    ck_assert_ptr_null(kiln_brick_child_by_name(m, "linear_2"));

    kiln_brick *l0 = kiln_brick_child(m, 0), *l1 = kiln_brick_child(m, 2);
    int64_t d;
    /* Blocks: the linears are lazy until the MLP pushes its dims */
    ck_assert_int_eq(kiln_brick_get_dim(l0, "input_dim", &d), KILN_OK);
    ck_assert_int_eq(d, 0);
    kiln_node x;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 16, &x);
    kiln_node y;
    ck_assert_int_eq(kiln_brick_apply(m, g, x, &y), KILN_OK);
    ck_assert_int_eq(kiln_brick_get_dim(l0, "input_dim", &d), KILN_OK);
    ck_assert_int_eq(d, 16);
    ck_assert_int_eq(kiln_brick_get_dim(l1, "input_dim", &d), KILN_OK);
    ck_assert_int_eq(d, 8);
    ck_assert_int_eq(kiln_brick_get_dim(l1, "output_dim", &d), KILN_OK);
    ck_assert_int_eq(d, 4);
    ck_assert_int_eq(kiln_brick_get_dim(m, "output_dim", &d), KILN_OK);
    ck_assert_int_eq(d, 4);
    ck_assert_str_eq(kiln_graph_node_name(g, y), "mlp_apply_output");
    ck_assert_str_eq(kiln_graph_node_brick_path(g, y), "/mlp");
    ck_assert_int_eq(kiln_graph_node_dim(g, y, 1), 4);
    /* each child names its own output */
    kiln_filter f = {.roles = KILN_ROLE_OUTPUT, .name = "sigmoid_0_apply_output"};
    kiln_node found[2];
    ck_assert_int_eq(kiln_graph_filter(g, &y, 1, &f, found, 2), 1);
    ck_assert_str_eq(kiln_graph_node_brick_path(g, found[0]), "/mlp/sigmoid_0");
    /* the MLP itself owns no parameters */
    ck_assert_int_eq(kiln_brick_param_count(m), 0);
    kiln_graph_destroy(g);
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(mlp_pushes_initialization_config)
{
    static const int64_t dims[] = {16, 8, 4};
    kiln_brick *m = mlp_of(kiln_logistic_create("sigmoid_0"), kiln_logistic_create("sigmoid_1"), NULL,
                           2, dims);
    ck_assert_int_eq(kiln_brick_set_weights_init(m, kiln_init_isotropic_gaussian(1, 0)), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_biases_init(m, kiln_init_constant(0.01)), KILN_OK);
    /* initialize allocates on its own */
    ck_assert_int_eq(kiln_brick_initialize(m), KILN_OK);
    ck_assert(kiln_brick_initialized(m));
    kiln_brick *l1 = kiln_brick_child(m, 2);
    ck_assert(kiln_brick_initialized(l1));
    assert_all(kiln_brick_param(l1, 1), 0.01);
    /* W came from the gaussian: finite and not constant */
    double *w = values_of(kiln_brick_param(l1, 0));
    ck_assert_int_eq(kiln_param_size(kiln_brick_param(l1, 0)), 32);
    for (int i = 0; i < 32; i++)
        ck_assert(isfinite(w[i]));
    ck_assert(w[0] != w[1]);
    free(w);
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(mlp_child_override_after_manual_push)
{
    /* ex. 4: push_initialization_config, children[0].weights_init =
    ** Constant(0.01), initialize -> 16x8 all 0.01 */
    static const int64_t dims[] = {16, 8, 4};
    kiln_brick *m = mlp_of(kiln_logistic_create("sigmoid_0"), kiln_logistic_create("sigmoid_1"), NULL,
                           2, dims);
    ck_assert_int_eq(kiln_brick_set_weights_init(m, kiln_init_isotropic_gaussian(1, 0)), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_biases_init(m, kiln_init_constant(0.01)), KILN_OK);
    kiln_node x, y;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 16, &x);
    ck_assert_int_eq(kiln_brick_apply(m, g, x, &y), KILN_OK);
    ck_assert_int_eq(kiln_brick_push_initialization_config(m), KILN_OK);
    kiln_brick *l0 = kiln_brick_child(m, 0);
    ck_assert_int_eq(kiln_brick_set_weights_init(l0, kiln_init_constant(0.01)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(m), KILN_OK);
    kiln_param *w0 = kiln_brick_param(l0, 0);
    ck_assert_int_eq(kiln_param_dim(w0, 0), 16);
    ck_assert_int_eq(kiln_param_dim(w0, 1), 8);
    assert_all(w0, 0.01);
    /* the second layer still follows the MLP */
    double *w1 = values_of(kiln_brick_param(kiln_brick_child(m, 2), 0));
    ck_assert(w1[0] != 0.01 && w1[0] != w1[1]);
    free(w1);
    kiln_graph_destroy(g);
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(mlp_renames_default_named_activations)
{
    static const int64_t dims[] = {784, 100, 10};
    kiln_brick *m = mlp_of(kiln_rectifier_create(NULL), kiln_softmax_create(NULL), NULL, 2, dims);
    static const char *names[] = {"linear_0", "rectifier_0", "linear_1", "softmax_1"};
    ck_assert_int_eq(kiln_brick_child_count(m), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(kiln_brick_name(kiln_brick_child(m, i)), names[i]);
    ck_assert_str_eq(kiln_brick_path(kiln_brick_child(m, 3)), "/mlp/softmax_1");
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(mlp_none_activation_adds_no_child)
{
    static const int64_t dims[] = {4, 3, 2};
    kiln_brick *m = mlp_of(NULL, kiln_tanh_create(NULL), NULL, 2, dims);
    ck_assert_int_eq(kiln_brick_child_count(m), 3);
    ck_assert_str_eq(kiln_brick_name(kiln_brick_child(m, 1)), "linear_1");
    ck_assert_str_eq(kiln_brick_name(kiln_brick_child(m, 2)), "tanh_1");
    kiln_brick_destroy(m);
    /* all None: no activations array at all */
    kiln_brick *m2 = kiln_mlp_create("net", NULL, 2, dims);
    ck_assert_int_eq(kiln_brick_child_count(m2), 2);
    ck_assert_str_eq(kiln_brick_path(kiln_brick_child(m2, 1)), "/net/linear_1");
    kiln_brick_destroy(m2);
}
END_TEST

START_TEST(mlp_use_bias_reaches_linears)
{
    static const int64_t dims[] = {4, 3, 2};
    kiln_brick *m = mlp_of(kiln_rectifier_create(NULL), NULL, NULL, 2, dims);
    ck_assert_int_eq(kiln_brick_set_use_bias(m, false), KILN_OK);
    ck_assert_int_eq(kiln_brick_allocate(m), KILN_OK);
    ck_assert_int_eq(kiln_brick_param_count(kiln_brick_child(m, 0)), 1);
    ck_assert_int_eq(kiln_brick_param_count(kiln_brick_child(m, 2)), 1);
    ck_assert_int_eq(kiln_brick_set_weights_init(m, kiln_init_constant(1)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(m), KILN_OK); /* no biases_init needed */
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(mlp_lazy_input_dim_names_the_child)
{
    static const int64_t dims[] = {0, 8, 4};
    kiln_brick *m = mlp_of(kiln_tanh_create(NULL), NULL, NULL, 2, dims);
    kiln_node x, y;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 16, &x);
    ck_assert_int_eq(kiln_brick_apply(m, g, x, &y), KILN_ERR_CONFIG);
    ck_assert_str_eq(kiln_brick_errmsg(m), "/mlp/linear_0: allocation config not set: input_dim");
    ck_assert_str_eq(kiln_brick_errmsg(kiln_brick_child(m, 0)),
                     "/mlp/linear_0: allocation config not set: input_dim");
    ck_assert_int_eq(kiln_brick_set_dim(m, "input_dim", 16), KILN_OK);
    kiln_graph_clear_error(g);
    ck_assert_int_eq(kiln_brick_apply(m, g, x, &y), KILN_OK);
    ck_assert_int_eq(kiln_graph_node_dim(g, y, 1), 4);
    kiln_graph_destroy(g);
    kiln_brick_destroy(m);
}
END_TEST

/* ---- Managing the computation graph: examples 5, 6 ---------------------------------- */

START_TEST(autoencoder_filters_by_role_and_brick)
{
    /* ex. 5: MLP([Rectifier]*2 + [Logistic], [784, 256, 128, 784]) and
    ** BinaryCrossEntropy().apply(x, y_hat) */
    static const int64_t dims[] = {784, 256, 128, 784};
    kiln_brick *m = mlp_of(kiln_rectifier_create(NULL), kiln_rectifier_create(NULL),
                           kiln_logistic_create(NULL), 3, dims);
    kiln_brick *bce = kiln_binary_cross_entropy_create(NULL);
    kiln_node x, y_hat, cost;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "features", 784, &x);
    ck_assert_int_eq(kiln_brick_apply(m, g, x, &y_hat), KILN_OK);
    ck_assert_int_eq(kiln_cost_apply(bce, g, x, y_hat, &cost), KILN_OK);
    ck_assert_int_eq(kiln_graph_node_rank(g, cost), 0);
    ck_assert_str_eq(kiln_graph_node_name(g, cost), "binarycrossentropy_apply_output");

    kiln_node found[16];
    /* [W, W, W] */
    kiln_filter weights = {.roles = KILN_ROLE_WEIGHT};
    ck_assert_int_eq(kiln_graph_filter(g, &cost, 1, &weights, found, 16), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(kiln_graph_node_name(g, found[i]), "W");
        ck_assert_ptr_eq(kiln_graph_node_param(g, found[i]),
                         kiln_brick_param_by_name(kiln_brick_child(m, 2 * i), "W"));
    }
    /* PARAMETER of the second layer: [b, W] */
    kiln_brick *second = kiln_brick_child_by_name(m, "linear_1");
    kiln_filter layer = {.roles = KILN_ROLE_PARAMETER, .brick = second};
    ck_assert_int_eq(kiln_graph_filter(g, &cost, 1, &layer, found, 16), 2);
    ck_assert_str_eq(kiln_graph_node_name(g, found[0]), "b");
    ck_assert_str_eq(kiln_graph_node_name(g, found[1]), "W");
    ck_assert_str_eq(kiln_graph_node_brick_path(g, found[1]), "/mlp/linear_1");
    /* auxiliary variables: [W_norm, b_norm] x 3 */
    kiln_filter aux = {.roles = KILN_ROLE_AUXILIARY};
    ck_assert_int_eq(kiln_graph_filter(g, &cost, 1, &aux, found, 16), 6);
    for (int i = 0; i < 6; i++)
        ck_assert_str_eq(kiln_graph_node_name(g, found[i]), i % 2 ? "b_norm" : "W_norm");
    /* a brick filter covers descendants: every parameter is the MLP's */
    kiln_filter all_params = {.roles = KILN_ROLE_PARAMETER, .brick = m};
    ck_assert_int_eq(kiln_graph_filter(g, &cost, 1, &all_params, found, 16), 6);
    /* the cost brick made no parameters */
    kiln_filter cost_params = {.roles = KILN_ROLE_PARAMETER, .brick = bce};
    ck_assert_int_eq(kiln_graph_filter(g, &cost, 1, &cost_params, found, 16), 0);
    kiln_graph_destroy(g);
    kiln_brick_destroy(m);
    kiln_brick_destroy(bce);
}
END_TEST

START_TEST(identity_logistic_bias_filter)
{
    /* ex. 6: MLP([Identity(), Logistic()], [20, 10, 20]); BIAS + layer 0 -> [b] */
    static const int64_t dims[] = {20, 10, 20};
    kiln_brick *m = mlp_of(kiln_identity_create(NULL), kiln_logistic_create(NULL), NULL, 2, dims);
    kiln_node x, y;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 20, &x);
    ck_assert_int_eq(kiln_brick_apply(m, g, x, &y), KILN_OK);
    kiln_filter f = {.roles = KILN_ROLE_BIAS, .brick = kiln_brick_child(m, 0)};
    kiln_node found[4];
    ck_assert_int_eq(kiln_graph_filter(g, &y, 1, &f, found, 4), 1);
    ck_assert_str_eq(kiln_graph_node_name(g, found[0]), "b");
    ck_assert_ptr_eq(kiln_graph_node_param(g, found[0]),
                     kiln_brick_param_by_name(kiln_brick_child(m, 0), "b"));
    /* Identity made a fresh output node rather than renaming linear_0's */
    kiln_filter out = {.roles = KILN_ROLE_OUTPUT};
    /* linear_0, identity_0, linear_1, logistic_1, mlp; cap 4 still counts 5 */
    ck_assert_int_eq(kiln_graph_filter(g, &y, 1, &out, found, 4), 5);
    ck_assert_int_eq(kiln_graph_filter(g, &y, 1, &out, NULL, 0), 5);
    kiln_filter lin_out = {.name = "linear_0_apply_output"};
    ck_assert_int_eq(kiln_graph_filter(g, &y, 1, &lin_out, NULL, 0), 1);
    kiln_filter id_out = {.name = "identity_0_apply_output"};
    ck_assert_int_eq(kiln_graph_filter(g, &y, 1, &id_out, NULL, 0), 1);
    kiln_graph_destroy(g);
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(applying_twice_shares_param_nodes)
{
    kiln_node x, y1, y2;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 3, &x);
    kiln_brick *lin = kiln_linear_create(NULL, 3, 3);
    ck_assert_int_eq(kiln_brick_apply(lin, g, x, &y1), KILN_OK);
    ck_assert_int_eq(kiln_brick_apply(lin, g, y1, &y2), KILN_OK);
    ck_assert_int_ne(y1.id, y2.id);
    kiln_node found[8];
    kiln_filter params = {.roles = KILN_ROLE_PARAMETER};
    ck_assert_int_eq(kiln_graph_filter(g, &y2, 1, &params, found, 8), 2);
    kiln_filter aux = {.roles = KILN_ROLE_AUXILIARY};
    ck_assert_int_eq(kiln_graph_filter(g, &y2, 1, &aux, found, 8), 2);
    kiln_graph_destroy(g);
    kiln_brick_destroy(lin);
}
END_TEST

/* ---- Selector paths: example 12 ------------------------------------------------------ */

START_TEST(parameter_paths_follow_the_tree)
{
    /* ex. 12: MLP([Tanh()] * 3, [5, 7, 11, 2]).allocate() ->
    ** /mlp/linear_{0,1,2}.{W,b} */
    static const int64_t dims[] = {5, 7, 11, 2};
    kiln_brick *m = mlp_of(kiln_tanh_create(NULL), kiln_tanh_create(NULL), kiln_tanh_create(NULL), 3, dims);
    ck_assert_int_eq(kiln_brick_allocate(m), KILN_OK);
    static const char *want[] = {"/mlp/linear_0.W", "/mlp/linear_0.b", "/mlp/linear_1.W",
                                 "/mlp/linear_1.b", "/mlp/linear_2.W", "/mlp/linear_2.b"};
    int k = 0;
    for (int i = 0; i < kiln_brick_child_count(m); i++) {
        kiln_brick *c = kiln_brick_child(m, i);
        for (int j = 0; j < kiln_brick_param_count(c); j++) {
            char path[256];
            kiln_param *p = kiln_brick_param(c, j);
            snprintf(path, sizeof path, "%s.%s", kiln_brick_path(kiln_param_brick(p)), kiln_param_name(p));
            ck_assert_int_lt(k, 6);
            ck_assert_str_eq(path, want[k++]);
        }
    }
    ck_assert_int_eq(k, 6);
    ck_assert_int_eq(kiln_param_dim(kiln_brick_param(kiln_brick_child(m, 2), 0), 0), 7);
    ck_assert_int_eq(kiln_param_dim(kiln_brick_param(kiln_brick_child(m, 2), 0), 1), 11);
    kiln_brick_destroy(m);
}
END_TEST

/* ---- Initialization and the RNG: examples 19 -------------------------------------------- */

START_TEST(gaussian_seed_1_matches_blocks_intro)
{
    /* ex. 19: Linear(784, 100), IsotropicGaussian(0.01): W1 starts
    ** [0.01624345, -0.00611756, -0.00528172] (numpy RandomState(1)) */
    kiln_brick *lin = kiln_linear_create("input_to_hidden", 784, 100);
    ck_assert_int_eq(kiln_brick_set_weights_init(lin, kiln_init_isotropic_gaussian(0.01, 0)), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_biases_init(lin, kiln_init_constant(0)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(lin), KILN_OK);
    double *w = values_of(kiln_brick_param(lin, 0));
    ck_assert_double_eq_tol(w[0], 0.01624345, 5e-9);
    ck_assert_double_eq_tol(w[1], -0.00611756, 5e-9);
    ck_assert_double_eq_tol(w[2], -0.00528172, 5e-9);
    free(w);
    assert_all(kiln_brick_param(lin, 1), 0);
    kiln_brick_destroy(lin);
}
END_TEST

START_TEST(linear_draws_biases_before_weights)
{
    /* Blocks' Linear._initialize: biases_init, then weights_init, from one
    ** stream */
    kiln_brick *lin = kiln_linear_create(NULL, 2, 3);
    ck_assert_int_eq(kiln_brick_set_weights_init(lin, kiln_init_isotropic_gaussian(1, 0)), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_biases_init(lin, kiln_init_uniform(0, 2)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(lin), KILN_OK);
    double *w = values_of(kiln_brick_param(lin, 0)), *b = values_of(kiln_brick_param(lin, 1));
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq(b[i], -1 + 2 * kiln_rng_uniform(&r));
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(w[i], kiln_rng_gauss(&r));
    free(w);
    free(b);
    kiln_brick_destroy(lin);
}
END_TEST

/* Values of brick c's W after initialize on root; caller frees. */
static double *w_after_init(kiln_brick *root, kiln_brick *c)
{
    ck_assert_int_eq(kiln_brick_initialize(root), KILN_OK);
    return values_of(kiln_brick_param_by_name(c, "W"));
}

START_TEST(children_share_the_parent_stream)
{
    /* Blocks pushes the parent's rng: layer 1 continues after layer 0's
    ** draws; the whole is the stream of RandomState(1). */
    static const int64_t dims[] = {3, 4, 2};
    kiln_brick *m = mlp_of(kiln_tanh_create(NULL), NULL, NULL, 2, dims);
    ck_assert_int_eq(kiln_brick_set_weights_init(m, kiln_init_isotropic_gaussian(1, 0)), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_biases_init(m, kiln_init_constant(0)), KILN_OK);
    double *w0 = w_after_init(m, kiln_brick_child(m, 0));
    double *w1 = values_of(kiln_brick_param_by_name(kiln_brick_child(m, 2), "W"));
    kiln_rng r;
    kiln_rng_seed(&r, 1);
    for (int i = 0; i < 12; i++)
        ck_assert_double_eq(w0[i], kiln_rng_gauss(&r));
    for (int i = 0; i < 8; i++)
        ck_assert_double_eq(w1[i], kiln_rng_gauss(&r));
    /* initialize re-seeds: same values again */
    double *again = w_after_init(m, kiln_brick_child(m, 0));
    for (int i = 0; i < 12; i++)
        ck_assert_double_eq(again[i], w0[i]);
    free(again);
    free(w0);
    free(w1);
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(child_with_own_seed_starts_its_own_stream)
{
    static const int64_t dims[] = {3, 4, 2};
    kiln_brick *m = mlp_of(NULL, NULL, NULL, 2, dims);
    ck_assert_int_eq(kiln_brick_set_weights_init(m, kiln_init_uniform(0, 2)), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_biases_init(m, kiln_init_constant(0)), KILN_OK);
    kiln_brick *l1 = kiln_brick_child(m, 1);
    ck_assert_int_eq(kiln_brick_set_seed(l1, 42), KILN_OK);
    double *w1 = w_after_init(m, l1);
    kiln_rng r;
    kiln_rng_seed(&r, 42);
    for (int i = 0; i < 8; i++)
        ck_assert_double_eq(w1[i], -1 + 2 * kiln_rng_uniform(&r));
    free(w1);
    /* a root seed replaces the default 1 */
    ck_assert_int_eq(kiln_brick_set_seed(m, 7), KILN_OK);
    double *w0 = w_after_init(m, kiln_brick_child(m, 0));
    kiln_rng_seed(&r, 7);
    ck_assert_double_eq(w0[0], -1 + 2 * kiln_rng_uniform(&r));
    free(w0);
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(uniform_init_stays_in_range)
{
    kiln_brick *lin = kiln_linear_create(NULL, 50, 40);
    ck_assert_int_eq(kiln_brick_set_weights_init(lin, kiln_init_uniform(0.5, 0.2)), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_biases_init(lin, kiln_init_uniform(-3, 1)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(lin), KILN_OK);
    double *w = values_of(kiln_brick_param(lin, 0));
    double lo = 1, hi = 0;
    for (int i = 0; i < 2000; i++) {
        ck_assert(w[i] >= 0.4 && w[i] < 0.6);
        lo = fmin(lo, w[i]);
        hi = fmax(hi, w[i]);
    }
    ck_assert(lo < 0.41 && hi > 0.59); /* the whole range is used */
    free(w);
    double *b = values_of(kiln_brick_param(lin, 1));
    for (int i = 0; i < 40; i++)
        ck_assert(b[i] >= -3.5 && b[i] < -2.5);
    free(b);
    kiln_brick_destroy(lin);
}
END_TEST

START_TEST(bad_schemes_are_refused_when_set)
{
    kiln_brick *lin = kiln_linear_create(NULL, 2, 2);
    ck_assert_int_eq(kiln_brick_set_weights_init(lin, kiln_init_uniform(0, -1)), KILN_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(kiln_brick_errmsg(lin), "/linear: weights_init: "));
    ck_assert_ptr_nonnull(strstr(kiln_brick_errmsg(lin), "width"));
    ck_assert_int_eq(kiln_brick_set_weights_init(lin, kiln_init_isotropic_gaussian(-1, 0)), KILN_ERR_CONFIG);
    ck_assert_int_eq(kiln_brick_set_biases_init(lin, kiln_init_constant(NAN)), KILN_ERR_CONFIG);
    /* still unset */
    ck_assert_int_eq(kiln_brick_initialize(lin), KILN_ERR_CONFIG);
    ck_assert_str_eq(kiln_brick_errmsg(lin), "/linear: initialization config not set: weights_init");
    kiln_brick_destroy(lin);
}
END_TEST

START_TEST(initialize_names_missing_config)
{
    kiln_brick *lin = kiln_linear_create(NULL, 3, 2);
    ck_assert_int_eq(kiln_brick_initialize(lin), KILN_ERR_CONFIG);
    ck_assert_str_eq(kiln_brick_errmsg(lin), "/linear: initialization config not set: weights_init");
    ck_assert(kiln_brick_allocated(lin)); /* initialize allocated first */
    ck_assert(!kiln_brick_initialized(lin));
    ck_assert_int_eq(kiln_brick_set_weights_init(lin, kiln_init_constant(1)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(lin), KILN_ERR_CONFIG);
    ck_assert_str_eq(kiln_brick_errmsg(lin), "/linear: initialization config not set: biases_init");
    assert_all(kiln_brick_param(lin, 0), NAN); /* nothing half-done */

    /* through an MLP the child's path is named */
    static const int64_t dims[] = {3, 2};
    kiln_brick *m = kiln_mlp_create(NULL, NULL, 1, dims);
    ck_assert_int_eq(kiln_brick_initialize(m), KILN_ERR_CONFIG);
    ck_assert_str_eq(kiln_brick_errmsg(m), "/mlp/linear_0: initialization config not set: weights_init");
    ck_assert_int_eq(kiln_brick_set_weights_init(m, kiln_init_constant(1)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(m), KILN_ERR_CONFIG);
    ck_assert_str_eq(kiln_brick_errmsg(m), "/mlp/linear_0: initialization config not set: biases_init");
    ck_assert_int_eq(kiln_brick_set_biases_init(m, kiln_init_constant(0)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(m), KILN_OK);
    kiln_brick_destroy(m);
    kiln_brick_destroy(lin);
}
END_TEST

/* ---- errors from apply ----------------------------------------------------------------- */

START_TEST(dimension_mismatch_names_path_and_dims)
{
    static const int64_t dims[] = {784, 512, 10};
    kiln_brick *m = mlp_of(kiln_rectifier_create(NULL), kiln_softmax_create(NULL), NULL, 2, dims);
    kiln_node x, y;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "features", 784, &x);
    ck_assert_int_eq(kiln_brick_allocate(m), KILN_OK);
    kiln_brick *l1 = kiln_brick_child(m, 2);
    ck_assert_int_eq(kiln_brick_apply(l1, g, x, &y), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_brick_errmsg(l1), "/mlp/linear_1: input has 784 features, expected 512");
    ck_assert_str_eq(kiln_graph_errmsg(g), "/mlp/linear_1: input has 784 features, expected 512");
    kiln_graph_destroy(g);

    g = graph_with_input(KILN_DTYPE_F32, "features", 100, &x);
    ck_assert_int_eq(kiln_brick_apply(m, g, x, &y), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_brick_errmsg(m), "/mlp/linear_0: input has 100 features, expected 784");
    kiln_graph_destroy(g);
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(linear_rejects_wrong_rank_and_dtype)
{
    kiln_brick *lin = kiln_linear_create(NULL, 4, 2);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    int64_t d3[3] = {KILN_BATCH, 2, 4};
    kiln_node x3 = kiln_graph_input(g, "x3", KILN_DTYPE_F32, 3, d3);
    kiln_node y;
    ck_assert_int_eq(kiln_brick_apply(lin, g, x3, &y), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_brick_errmsg(lin),
                     "/linear: input is float32 (B, 2, 4), expected rank 2 (batch, input_dim)");
    int64_t d2[2] = {KILN_BATCH, 4};
    kiln_node xi = kiln_graph_input(g, "xi", KILN_DTYPE_I32, 2, d2);
    ck_assert_int_eq(kiln_brick_apply(lin, g, xi, &y), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_brick_errmsg(lin),
                     "/linear: input is int32 (B, 4), expected float32 (the graph's floatx)");
    /* a node of no graph */
    ck_assert_int_eq(kiln_brick_apply(lin, g, (kiln_node){999}, &y), KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(kiln_brick_errmsg(lin), "not a node of this graph"));
    /* a failed builder's KILN_NODE_NONE carries the graph's message */
    ck_assert_int_eq(kiln_brick_apply(lin, g, KILN_NODE_NONE, &y), KILN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(kiln_brick_errmsg(lin), "input is KILN_NODE_NONE (/linear: input is float32"));
    kiln_graph_destroy(g);
    kiln_brick_destroy(lin);
}
END_TEST

START_TEST(apply_in_float64_graph)
{
    kiln_node x, y;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F64, "x", 3, &x);
    kiln_brick *lin = kiln_linear_create(NULL, 3, 2);
    ck_assert_int_eq(kiln_brick_apply(lin, g, x, &y), KILN_OK);
    ck_assert_int_eq(kiln_graph_node_dtype(g, y), KILN_DTYPE_F64);
    kiln_node w = kiln_graph_param_node(g, kiln_brick_param(lin, 0));
    ck_assert(kiln_node_ok(w));
    ck_assert_int_eq(kiln_graph_node_dtype(g, w), KILN_DTYPE_F64);
    /* the same brick in a float32 graph too */
    kiln_node x32, y32;
    kiln_graph *g32 = graph_with_input(KILN_DTYPE_F32, "x", 3, &x32);
    ck_assert_int_eq(kiln_brick_apply(lin, g32, x32, &y32), KILN_OK);
    ck_assert_int_eq(kiln_graph_node_dtype(g32, kiln_graph_param_node(g32, kiln_brick_param(lin, 0))),
                     KILN_DTYPE_F32);
    kiln_graph_destroy(g32);
    kiln_graph_destroy(g);
    kiln_brick_destroy(lin);
}
END_TEST

START_TEST(overlong_output_name_is_an_error)
{
    char name[KILN_MAX_NAME + 2];
    memset(name, 'a', sizeof name);
    name[KILN_MAX_NAME + 1] = '\0';
    ck_assert_ptr_null(kiln_tanh_create(name)); /* 128 characters */
    name[KILN_MAX_NAME] = '\0';
    kiln_brick *t = kiln_tanh_create(name); /* 127: fits */
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(kiln_brick_name(t), name);
    kiln_node x, y;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 3, &x);
    ck_assert_int_eq(kiln_brick_apply(t, g, x, &y), KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(kiln_brick_errmsg(t), "is longer than 127 characters"));
    kiln_graph_destroy(g);
    kiln_brick_destroy(t);
}
END_TEST

/* ---- configuration ------------------------------------------------------------------ */

START_TEST(set_dim_checks_name_and_value)
{
    kiln_brick *lin = kiln_linear_create(NULL, 3, 2);
    ck_assert_int_eq(kiln_brick_set_dim(lin, "input_dim", -1), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_brick_errmsg(lin), "/linear: input_dim is -1, expected >= 0 (0: not set)");
    ck_assert_int_eq(kiln_brick_set_dim(lin, "hidden_dim", 3), KILN_ERR_NOT_FOUND);
    ck_assert_str_eq(kiln_brick_errmsg(lin), "/linear: Linear has no dim 'hidden_dim'");
    int64_t d;
    ck_assert_int_eq(kiln_brick_get_dim(lin, "input_dim", &d), KILN_OK);
    ck_assert_int_eq(d, 3);
    kiln_brick *r = kiln_rectifier_create(NULL);
    ck_assert_int_eq(kiln_brick_get_dim(r, "input_dim", &d), KILN_ERR_NOT_FOUND);
    ck_assert_int_eq(kiln_brick_set_weights_init(r, kiln_init_constant(1)), KILN_ERR_ARG);
    ck_assert_int_eq(kiln_brick_set_use_bias(r, false), KILN_ERR_ARG);
    kiln_brick *bias = kiln_bias_create(NULL, 0);
    ck_assert_int_eq(kiln_brick_set_dim(bias, "dim", 6), KILN_OK);
    ck_assert_int_eq(kiln_brick_get_dim(bias, "input_dim", &d), KILN_OK);
    ck_assert_int_eq(d, 6);
    kiln_brick_destroy(bias);
    kiln_brick_destroy(r);
    kiln_brick_destroy(lin);
}
END_TEST

START_TEST(config_after_allocation_waits_for_next_allocate)
{
    kiln_brick *lin = kiln_linear_create(NULL, 3, 2);
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    kiln_param *w = kiln_brick_param(lin, 0), *b = kiln_brick_param(lin, 1);
    ck_assert_int_eq(kiln_brick_set_dim(lin, "output_dim", 4), KILN_OK);
    ck_assert_int_eq(kiln_param_dim(w, 1), 2); /* not yet */
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    ck_assert_ptr_eq(kiln_brick_param(lin, 0), w); /* the same parameter, reshaped */
    ck_assert_int_eq(kiln_param_dim(w, 1), 4);
    ck_assert_int_eq(kiln_brick_set_use_bias(lin, false), KILN_OK);
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    ck_assert_int_eq(kiln_brick_param_count(lin), 1);
    double v[4];
    ck_assert_int_eq(kiln_param_get_values(b, v, 4), KILN_ERR_STATE); /* dropped */
    ck_assert_ptr_nonnull(strstr(kiln_brick_errmsg(lin), "not allocated"));
    kiln_brick_destroy(lin);
}
END_TEST

START_TEST(param_values_round_trip_and_count_check)
{
    kiln_brick *lin = kiln_linear_create(NULL, 2, 3);
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    kiln_param *w = kiln_brick_param(lin, 0);
    double in[6] = {1, 2, 3, 4, 5, 6}, out[6] = {0};
    ck_assert_int_eq(kiln_param_set_values(w, in, 6), KILN_OK);
    ck_assert_int_eq(kiln_param_get_values(w, out, 6), KILN_OK);
    ck_assert_mem_eq(in, out, sizeof in);
    ck_assert_int_eq(kiln_param_get_values(w, out, 5), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_brick_errmsg(lin), "/linear: parameter W has 6 values (2, 3), 5 given");
    ck_assert_int_eq(kiln_param_set_values(w, in, 7), KILN_ERR_ARG);
    ck_assert_int_eq(kiln_param_get_values(w, NULL, 6), KILN_ERR_ARG);
    /* re-allocating resets the values to NaN */
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    assert_all(w, NAN);
    kiln_brick_destroy(lin);
}
END_TEST

/* ---- other bricks ---------------------------------------------------------------------- */

START_TEST(sequence_applies_children_in_order)
{
    kiln_brick *kids[2] = {kiln_linear_create(NULL, 4, 3), kiln_tanh_create(NULL)};
    kiln_brick *s = kiln_sequence_create(NULL, kids, 2);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(kiln_brick_path(kids[0]), "/sequence/linear");
    ck_assert(kiln_brick_is_within(kids[1], s));
    ck_assert(kiln_brick_is_within(s, s));
    ck_assert(!kiln_brick_is_within(s, kids[1]));
    ck_assert(!kiln_brick_is_within(kids[0], kids[1]));
    kiln_node x, y;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 4, &x);
    ck_assert_int_eq(kiln_brick_apply(s, g, x, &y), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, y), "sequence_apply_output");
    ck_assert_int_eq(kiln_graph_node_dim(g, y, 1), 3);
    ck_assert(has_op_named(g, "tanh_apply_output", KILN_OP_TANH));
    ck_assert(has_op_named(g, "linear_apply_output", KILN_OP_ADD));
    /* a sequence of sequences: paths nest */
    kiln_brick *inner[1] = {s};
    kiln_brick *outer = kiln_sequence_create("outer", inner, 1);
    ck_assert_str_eq(kiln_brick_path(kids[1]), "/outer/sequence/tanh");
    kiln_graph_destroy(g);
    kiln_brick_destroy(outer);
}
END_TEST

START_TEST(activations_build_their_ops)
{
    struct { kiln_brick *(*make)(const char *); enum kiln_op op; const char *out; } rows[] = {
        {kiln_rectifier_create, KILN_OP_RELU, "rectifier_apply_output"},
        {kiln_tanh_create, KILN_OP_TANH, "tanh_apply_output"},
        {kiln_logistic_create, KILN_OP_SIGMOID, "logistic_apply_output"},
        {kiln_softplus_create, KILN_OP_SOFTPLUS, "softplus_apply_output"},
        {kiln_softmax_create, KILN_OP_SOFTMAX, "softmax_apply_output"},
        {kiln_identity_create, KILN_OP_MUL, "identity_apply_output"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        kiln_node x, y;
        kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 5, &x);
        kiln_brick *b = rows[i].make(NULL);
        ck_assert_int_eq(kiln_brick_apply(b, g, x, &y), KILN_OK);
        ck_assert_msg(kiln_graph_cnode(g, y.id)->op == rows[i].op, "row %zu", i);
        ck_assert_str_eq(kiln_graph_node_name(g, y), rows[i].out);
        ck_assert_int_eq(kiln_brick_param_count(b), 0);
        ck_assert(kiln_brick_allocated(b));
        kiln_graph_destroy(g);
        kiln_brick_destroy(b);
    }
}
END_TEST

START_TEST(bias_brick_adds_b)
{
    kiln_brick *b = kiln_bias_create(NULL, 5);
    kiln_node x, y;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 5, &x);
    ck_assert_int_eq(kiln_brick_apply(b, g, x, &y), KILN_OK);
    ck_assert_int_eq(kiln_brick_param_count(b), 1);
    ck_assert_str_eq(kiln_param_name(kiln_brick_param(b, 0)), "b");
    ck_assert_int_eq(kiln_graph_cnode(g, y.id)->op, KILN_OP_ADD);
    ck_assert_str_eq(kiln_graph_node_name(g, y), "bias_apply_output");
    ck_assert_int_eq(kiln_brick_set_biases_init(b, kiln_init_constant(3)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(b), KILN_OK); /* no weights_init needed */
    assert_all(kiln_brick_param(b, 0), 3);
    kiln_node x6;
    kiln_graph *g6 = graph_with_input(KILN_DTYPE_F32, "x", 6, &x6);
    ck_assert_int_eq(kiln_brick_apply(b, g6, x6, &y), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_brick_errmsg(b), "/bias: input is float32 (B, 6), expected a last dim of 5");
    kiln_graph_destroy(g6);
    kiln_graph_destroy(g);
    kiln_brick_destroy(b);
}
END_TEST

START_TEST(softmax_other_applications)
{
    kiln_brick *sm = kiln_softmax_create(NULL);
    kiln_node x, lp, ce;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 10, &x);
    kiln_node y = int_labels(g, "targets");
    ck_assert_int_eq(kiln_softmax_log_probabilities(sm, g, x, &lp), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, lp), "softmax_log_probabilities_output");
    ck_assert_int_eq(kiln_graph_cnode(g, lp.id)->op, KILN_OP_LOGSOFTMAX);
    ck_assert_int_eq(kiln_softmax_categorical_cross_entropy(sm, g, y, x, &ce), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, ce), "softmax_categorical_cross_entropy_output");
    ck_assert_int_eq(kiln_graph_node_rank(g, ce), 1);
    ck_assert_int_eq(kiln_graph_node_dim(g, ce, 0), KILN_BATCH);
    /* neg(pick(log_softmax(x), y)) */
    const kiln_node_rec *r = kiln_graph_cnode(g, ce.id);
    ck_assert_int_eq(r->op, KILN_OP_NEG);
    r = kiln_graph_cnode(g, r->in[0]);
    ck_assert_int_eq(r->op, KILN_OP_PICK);
    ck_assert_int_eq(kiln_graph_cnode(g, r->in[0])->op, KILN_OP_LOGSOFTMAX);
    ck_assert_int_eq(r->in[1], y.id);
    /* targets as floats are refused */
    ck_assert_int_eq(kiln_softmax_categorical_cross_entropy(sm, g, x, x, &ce), KILN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(kiln_brick_errmsg(sm), "/softmax: y is float32 (B, 10), expected an int32 vector"));
    /* only Softmax has these */
    kiln_brick *t = kiln_tanh_create(NULL);
    ck_assert_int_eq(kiln_softmax_log_probabilities(t, g, x, &lp), KILN_ERR_ARG);
    kiln_brick_destroy(t);
    kiln_graph_destroy(g);
    kiln_brick_destroy(sm);
}
END_TEST

START_TEST(categorical_cross_entropy_is_mean_neg_log_pick)
{
    kiln_brick *cce = kiln_categorical_cross_entropy_create(NULL);
    kiln_brick *sm = kiln_softmax_create(NULL);
    kiln_node x, p, c;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 10, &x);
    kiln_node y = int_labels(g, "targets");
    ck_assert_int_eq(kiln_brick_apply(sm, g, x, &p), KILN_OK);
    ck_assert_int_eq(kiln_cost_apply(cce, g, y, p, &c), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, c), "categoricalcrossentropy_apply_output");
    ck_assert_int_eq(kiln_graph_node_rank(g, c), 0);
    ck_assert(kiln_graph_has_role(g, c, KILN_ROLE_OUTPUT));
    ck_assert_str_eq(kiln_graph_node_brick_path(g, c), "/categoricalcrossentropy");
    /* mean = sum / (1 * B); the sum is over neg(log(pick(softmax, y))) */
    const kiln_node_rec *r = kiln_graph_cnode(g, c.id);
    ck_assert_int_eq(r->op, KILN_OP_DIV);
    r = kiln_graph_cnode(g, r->in[0]);
    ck_assert_int_eq(r->op, KILN_OP_SUM);
    r = kiln_graph_cnode(g, r->in[0]);
    ck_assert_int_eq(r->op, KILN_OP_NEG);
    r = kiln_graph_cnode(g, r->in[0]);
    ck_assert_int_eq(r->op, KILN_OP_LOG);
    r = kiln_graph_cnode(g, r->in[0]);
    ck_assert_int_eq(r->op, KILN_OP_PICK);
    ck_assert_int_eq(r->in[0], p.id);
    /* argument order is (y, y_hat) */
    ck_assert_int_eq(kiln_cost_apply(cce, g, p, y, &c), KILN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(kiln_brick_errmsg(cce), "/categoricalcrossentropy: y is float32"));
    /* a cost brick is not applied with kiln_brick_apply, nor Softmax as a cost */
    ck_assert_int_eq(kiln_brick_apply(cce, g, x, &c), KILN_ERR_ARG);
    ck_assert_int_eq(kiln_cost_apply(sm, g, y, p, &c), KILN_ERR_ARG);
    kiln_graph_destroy(g);
    kiln_brick_destroy(cce);
    kiln_brick_destroy(sm);
}
END_TEST

START_TEST(misclassification_rate_is_named_error_rate)
{
    kiln_brick *mr = kiln_misclassification_rate_create(NULL);
    ck_assert_str_eq(kiln_brick_name(mr), "misclassificationrate");
    kiln_node x, c;
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 10, &x);
    kiln_node y = int_labels(g, "targets");
    ck_assert_int_eq(kiln_cost_apply(mr, g, y, x, &c), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, c), "error_rate");
    ck_assert_int_eq(kiln_graph_node_rank(g, c), 0);
    ck_assert_int_eq(kiln_graph_node_dtype(g, c), KILN_DTYPE_F32);
    const kiln_node_rec *r = kiln_graph_cnode(g, kiln_graph_cnode(g, c.id)->in[0]);
    ck_assert_int_eq(r->op, KILN_OP_SUM);
    r = kiln_graph_cnode(g, r->in[0]);
    ck_assert_int_eq(r->op, KILN_OP_NE);
    ck_assert_int_eq(kiln_graph_cnode(g, r->in[0])->op, KILN_OP_ARGMAX);
    kiln_graph_destroy(g);
    kiln_brick_destroy(mr);
}
END_TEST

START_TEST(cost_matrices_sum_rows_then_average)
{
    struct { kiln_brick *(*make)(const char *); enum kiln_op elem; const char *out; } rows[] = {
        {kiln_squared_error_create, KILN_OP_SQUARE, "squarederror_apply_output"},
        {kiln_absolute_error_create, KILN_OP_ABS, "absoluteerror_apply_output"},
        {kiln_binary_cross_entropy_create, KILN_OP_NEG, "binarycrossentropy_apply_output"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        kiln_brick *b = rows[i].make(NULL);
        kiln_node x, c;
        kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 6, &x);
        int64_t d[2] = {KILN_BATCH, 6};
        kiln_node t = kiln_graph_input(g, "t", KILN_DTYPE_F32, 2, d);
        ck_assert_int_eq(kiln_cost_apply(b, g, t, x, &c), KILN_OK);
        ck_assert_str_eq(kiln_graph_node_name(g, c), rows[i].out);
        ck_assert_int_eq(kiln_graph_node_rank(g, c), 0);
        /* div(sum_all(sum_axis1(elem)), B) */
        const kiln_node_rec *r = kiln_graph_cnode(g, kiln_graph_cnode(g, c.id)->in[0]);
        ck_assert_int_eq(r->op, KILN_OP_SUM);
        ck_assert_int_eq(reduced_axis(g, r), KILN_ALL_AXES);
        r = kiln_graph_cnode(g, r->in[0]);
        ck_assert_int_eq(r->op, KILN_OP_SUM);
        ck_assert_int_eq(reduced_axis(g, r), 1);
        ck_assert_msg(kiln_graph_cnode(g, r->in[0])->op == rows[i].elem, "row %zu", i);
        /* shapes must agree */
        int64_t d5[2] = {KILN_BATCH, 5};
        kiln_node t5 = kiln_graph_input(g, "t5", KILN_DTYPE_F32, 2, d5);
        ck_assert_int_eq(kiln_cost_apply(b, g, t5, x, &c), KILN_ERR_SHAPE);
        ck_assert_ptr_nonnull(strstr(kiln_brick_errmsg(b), "y is float32 (B, 5) but y_hat is float32 (B, 6)"));
        kiln_graph_destroy(g);
        kiln_brick_destroy(b);
    }
}
END_TEST

START_TEST(errmsg_is_ok_after_success_and_on_null)
{
    kiln_brick *lin = kiln_linear_create(NULL, 0, 2);
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_ERR_CONFIG);
    ck_assert_int_eq(kiln_brick_set_dim(lin, "input_dim", 2), KILN_OK);
    ck_assert_str_eq(kiln_brick_errmsg(lin), "ok");
    ck_assert_str_eq(kiln_brick_errmsg(NULL), "no brick (NULL)");
    kiln_brick_destroy(NULL);
    kiln_brick_destroy(lin);
}
END_TEST

START_TEST(free_parameter_is_a_shared_variable)
{
    /* Blocks' plot example: a = theano.shared(3.) */
    int64_t d[2] = {2, 3};
    kiln_param *a = kiln_param_create("a", 0, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_null(kiln_param_brick(a));
    ck_assert_int_eq(kiln_param_size(a), 1);
    assert_all(a, NAN);
    double three = 3;
    ck_assert_int_eq(kiln_param_set_values(a, &three, 1), KILN_OK);
    assert_all(a, 3);
    ck_assert_int_eq(kiln_param_get_values(a, &three, 2), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_param_errmsg(a), "parameter a has 1 values (), 2 given");
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node n = kiln_graph_param(g, a);
    ck_assert(kiln_node_ok(n));
    ck_assert(kiln_graph_has_role(g, n, KILN_ROLE_PARAMETER));
    ck_assert(!kiln_graph_has_role(g, n, KILN_ROLE_WEIGHT));
    ck_assert_str_eq(kiln_graph_node_name(g, n), "a");
    ck_assert_str_eq(kiln_graph_node_brick_path(g, n), "");
    ck_assert_int_eq(kiln_graph_param(g, a).id, n.id);
    kiln_graph_destroy(g);
    kiln_param_destroy(a);

    kiln_param *m = kiln_param_create("m", 2, d);
    ck_assert_int_eq(kiln_param_dim(m, 1), 3);
    kiln_param_destroy(m);
    int64_t bad[2] = {2, 0};
    ck_assert_ptr_null(kiln_param_create("m", 2, bad));
    ck_assert_ptr_null(kiln_param_create("", 1, d));
    ck_assert_ptr_null(kiln_param_create("m", KILN_MAX_RANK + 1, d));
    kiln_param_destroy(NULL);
    /* a brick's parameter is left to its brick */
    kiln_brick *lin = kiln_linear_create(NULL, 2, 2);
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    kiln_param_destroy(kiln_brick_param(lin, 0));
    ck_assert_int_eq(kiln_brick_param_count(lin), 2);
    double v[3];
    ck_assert_int_eq(kiln_param_get_values(kiln_brick_param(lin, 1), v, 3), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_param_errmsg(kiln_brick_param(lin, 1)), kiln_brick_errmsg(lin));
    ck_assert_str_eq(kiln_brick_errmsg(lin), "/linear: parameter b has 2 values (2,), 3 given");
    kiln_brick_destroy(lin);
}
END_TEST

/* ---- the brick model: applications, children, copies ----------------------------------- */

START_TEST(applications_are_queried_as_blocks_foo_apply_inputs)
{
    /* ex. 23: Foo.apply.inputs -> ['x'], foo.apply.outputs -> ['y'] */
    kiln_brick *sm = kiln_softmax_create(NULL);
    ck_assert_int_eq(kiln_brick_application_count(sm), 3);
    ck_assert_str_eq(kiln_brick_application_name(sm, 0), "apply");
    ck_assert_str_eq(kiln_brick_application_name(sm, 2), "categorical_cross_entropy");
    ck_assert_ptr_null(kiln_brick_application_name(sm, 3));
    ck_assert_int_eq(kiln_brick_input_count(sm, "categorical_cross_entropy"), 2);
    ck_assert_str_eq(kiln_brick_input_name(sm, "categorical_cross_entropy", 0), "y");
    ck_assert_str_eq(kiln_brick_input_name(sm, "categorical_cross_entropy", 1), "x");
    ck_assert(!kiln_brick_input_optional(sm, "categorical_cross_entropy", 1));
    ck_assert_int_eq(kiln_brick_output_count(sm, "log_probabilities"), 1);
    ck_assert_str_eq(kiln_brick_output_name(sm, "log_probabilities", 0), "output");
    ck_assert_int_eq(kiln_brick_input_count(sm, "no_such"), -1);
    ck_assert_ptr_null(kiln_brick_input_name(sm, "apply", 1));
    kiln_brick *mr = kiln_misclassification_rate_create(NULL);
    ck_assert_str_eq(kiln_brick_input_name(mr, "apply", 1), "y_hat");
    ck_assert_str_eq(kiln_brick_output_name(mr, "apply", 0), "error_rate");
    kiln_brick_destroy(mr);
    kiln_brick_destroy(sm);
}
END_TEST

START_TEST(call_checks_application_and_counts)
{
    kiln_brick *cce = kiln_categorical_cross_entropy_create(NULL);
    kiln_node x, out[2] = {{7}, {7}};
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 10, &x);
    kiln_node y = int_labels(g, "y");
    ck_assert_int_eq(kiln_brick_call(cce, "apply", g, &y, 1, out, 1), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_brick_errmsg(cce), "/categoricalcrossentropy: apply takes 2 inputs (y, y_hat), 1 given");
    ck_assert(!kiln_node_ok(out[0]));
    ck_assert_str_eq(kiln_graph_errmsg(g), kiln_brick_errmsg(cce));
    kiln_graph_clear_error(g);
    ck_assert_int_eq(kiln_brick_call(cce, "apply", g, (kiln_node[]){y, x}, 2, out, 2), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_brick_errmsg(cce),
                     "/categoricalcrossentropy: apply gives 1 output (output), room for 2 given");
    ck_assert(!kiln_node_ok(out[1]));
    ck_assert_int_eq(kiln_brick_call(cce, "cost", g, (kiln_node[]){y, x}, 2, out, 1), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_brick_errmsg(cce),
                     "/categoricalcrossentropy: CategoricalCrossEntropy has no application 'cost' (it has: apply)");
    ck_assert_int_eq(kiln_brick_call(cce, "apply", g, (kiln_node[]){y, x}, 2, out, 1), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, out[0]), "categoricalcrossentropy_apply_output");
    kiln_graph_destroy(g);
    kiln_brick_destroy(cce);
}
END_TEST

START_TEST(add_child_passes_ownership_and_refuses_cycles)
{
    kiln_brick *s = kiln_sequence_create("outer", NULL, 0);
    kiln_brick *lin = kiln_linear_create(NULL, 2, 2), *t = kiln_tanh_create(NULL);
    ck_assert_int_eq(kiln_brick_add_child(s, lin), KILN_OK);
    ck_assert_str_eq(kiln_brick_path(lin), "/outer/linear");
    ck_assert_int_eq(kiln_brick_allocate(s), KILN_OK);
    ck_assert_str_eq(kiln_param_owner(kiln_brick_param(lin, 0)), "/outer/linear");
    ck_assert_int_eq(kiln_brick_add_child(t, lin), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_brick_errmsg(t), "/tanh: add_child: /outer/linear has a parent already");
    ck_assert_int_eq(kiln_brick_add_child(lin, s), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_brick_errmsg(lin), "/outer/linear: add_child: /outer is this brick or one of its ancestors");
    /* adopting a tree renames its parameters' owners */
    ck_assert_int_eq(kiln_brick_add_child(t, s), KILN_OK);
    ck_assert_str_eq(kiln_param_owner(kiln_brick_param(lin, 0)), "/tanh/outer/linear");
    kiln_brick_destroy(t);
}
END_TEST

START_TEST(clone_copies_configuration_not_parameters)
{
    kiln_brick *lin = kiln_linear_create("lin", 3, 4);
    ck_assert_int_eq(kiln_brick_set_use_bias(lin, false), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_weights_init(lin, kiln_init_constant(2)), KILN_OK);
    ck_assert_int_eq(kiln_brick_allocate(lin), KILN_OK);
    kiln_brick *c = kiln_brick_clone(lin, "copy");
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(kiln_brick_path(c), "/copy");
    ck_assert_ptr_eq(kiln_brick_class_of(c), kiln_brick_class_of(lin));
    ck_assert(!kiln_brick_allocated(c));
    int64_t d;
    ck_assert_int_eq(kiln_brick_get_dim(c, "output_dim", &d), KILN_OK);
    ck_assert_int_eq(d, 4);
    ck_assert(!kiln_brick_use_bias(c));
    ck_assert_int_eq(kiln_brick_initialize(c), KILN_OK);
    ck_assert_int_eq(kiln_brick_param_count(c), 1);
    ck_assert_ptr_ne(kiln_brick_param(c, 0), kiln_brick_param(lin, 0));
    assert_all(kiln_brick_param(c, 0), 2);
    assert_all(kiln_brick_param(lin, 0), NAN);
    kiln_brick_destroy(c);
    kiln_brick_destroy(lin);
}
END_TEST

/* ---- routing bricks: structure (values: test_brick_values.c) ------------------------------ */

START_TEST(routing_children_are_named_as_blocks_names_them)
{
    static const char *const yz[] = {"y", "z"}, *const xy[] = {"x", "y"}, *const ab[] = {"a", "b"};
    kiln_brick *fork = kiln_fork_create(NULL, yz, 2, 2, (int64_t[]){3, 4}, NULL);
    kiln_brick *dist = kiln_distribute_create(NULL, xy, 2, "z", (int64_t[]){2, 3}, 3, NULL);
    kiln_brick *merge = kiln_merge_create(NULL, ab, 2, (int64_t[]){3, 4}, 2, NULL, NULL);
    kiln_brick *par = kiln_parallel_create("par", xy, 2, NULL, NULL, kiln_linear_create(NULL, 0, 0), "t");
    ck_assert(fork && dist && merge && par);
    ck_assert_str_eq(kiln_brick_path(kiln_brick_child(fork, 0)), "/fork/fork_y");
    ck_assert_str_eq(kiln_brick_path(kiln_brick_child(fork, 1)), "/fork/fork_z");
    ck_assert_str_eq(kiln_brick_path(kiln_brick_child(dist, 1)), "/distribute/fork_y");
    ck_assert_str_eq(kiln_brick_path(kiln_brick_child(merge, 0)), "/merge/transform_a");
    ck_assert_str_eq(kiln_brick_path(kiln_brick_child(par, 1)), "/par/t_y");
    ck_assert_int_eq(kiln_brick_child_count(par), 2);
    /* default prototypes: Fork affine; Distribute and Merge without bias */
    ck_assert_int_eq(kiln_brick_allocate(fork), KILN_OK);
    ck_assert_int_eq(kiln_brick_allocate(dist), KILN_OK);
    ck_assert_int_eq(kiln_brick_allocate(merge), KILN_OK);
    ck_assert_int_eq(kiln_brick_param_count(kiln_brick_child(fork, 1)), 2);
    ck_assert_int_eq(kiln_brick_param_count(kiln_brick_child(dist, 0)), 1);
    ck_assert_int_eq(kiln_brick_param_count(kiln_brick_child(merge, 1)), 1);
    /* dims pushed: fork_z is Linear(2, 4), Distribute's copies read the source */
    kiln_param *w = kiln_brick_param_by_name(kiln_brick_child(fork, 1), "W");
    ck_assert_int_eq(kiln_param_dim(w, 0), 2);
    ck_assert_int_eq(kiln_param_dim(w, 1), 4);
    w = kiln_brick_param_by_name(kiln_brick_child(dist, 0), "W");
    ck_assert_int_eq(kiln_param_dim(w, 0), 3);
    ck_assert_int_eq(kiln_param_dim(w, 1), 2);
    /* the routing bricks own no parameters */
    ck_assert_int_eq(kiln_brick_param_count(fork), 0);
    kiln_brick_destroy(fork);
    kiln_brick_destroy(dist);
    kiln_brick_destroy(merge);
    kiln_brick_destroy(par);
}
END_TEST

START_TEST(routing_dims_are_lazy_and_pushed_at_allocation)
{
    kiln_brick *m = kiln_merge_create(NULL, (const char *[]){"a", "b"}, 2, NULL, 0, NULL, NULL);
    int64_t d = -1;
    ck_assert_int_eq(kiln_brick_get_dim(m, "input_dims.a", &d), KILN_OK);
    ck_assert_int_eq(d, 0);
    ck_assert_int_eq(kiln_brick_get_dim(m, "input_dims.c", &d), KILN_ERR_NOT_FOUND);
    ck_assert_str_eq(kiln_brick_errmsg(m), "/merge: Merge has no dim 'input_dims.c'");
    ck_assert_int_eq(kiln_brick_allocate(m), KILN_ERR_CONFIG);
    ck_assert_str_eq(kiln_brick_errmsg(m), "/merge/transform_a: allocation config not set: input_dim");
    ck_assert_int_eq(kiln_brick_set_dim(m, "input_dims.a", 3), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_dim(m, "input_dims.b", 4), KILN_OK);
    ck_assert_int_eq(kiln_brick_allocate(m), KILN_ERR_CONFIG);
    ck_assert_str_eq(kiln_brick_errmsg(m), "/merge/transform_a: allocation config not set: output_dim");
    ck_assert_int_eq(kiln_brick_set_dim(m, "output_dim", 2), KILN_OK);
    ck_assert_int_eq(kiln_brick_allocate(m), KILN_OK);
    kiln_brick *tb = kiln_brick_child(m, 1);
    ck_assert_int_eq(kiln_brick_get_dim(tb, "input_dim", &d), KILN_OK);
    ck_assert_int_eq(d, 4);
    ck_assert_int_eq(kiln_param_dim(kiln_brick_param(tb, 0), 1), 2);
    /* a change reaches the copy at the next allocation */
    ck_assert_int_eq(kiln_brick_set_dim(m, "input_dims.b", 5), KILN_OK);
    ck_assert_int_eq(kiln_brick_allocate(m), KILN_OK);
    ck_assert_int_eq(kiln_param_dim(kiln_brick_param(tb, 0), 0), 5);
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(routing_applications_name_inputs_and_outputs)
{
    kiln_brick *d = kiln_distribute_create(NULL, (const char *[]){"x", "y"}, 2, "z", (int64_t[]){2, 3}, 3, NULL);
    kiln_brick *f = kiln_fork_create(NULL, (const char *[]){"y", "z"}, 2, 3, (int64_t[]){2, 4}, NULL);
    kiln_brick *m = kiln_merge_create(NULL, (const char *[]){"a", "b"}, 2, (int64_t[]){3, 2}, 4, NULL, NULL);
    ck_assert(d && f && m);
    /* Blocks: apply.inputs = [source] + targets, apply.outputs = targets */
    static const char *const d_in[] = {"z", "x", "y"};
    ck_assert_int_eq(kiln_brick_input_count(d, "apply"), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(kiln_brick_input_name(d, "apply", i), d_in[i]);
    ck_assert_str_eq(kiln_brick_output_name(d, "apply", 1), "y");
    ck_assert_str_eq(kiln_brick_input_name(f, "apply", 0), "input");
    ck_assert_int_eq(kiln_brick_output_count(f, "apply"), 2);
    ck_assert_str_eq(kiln_brick_output_name(f, "apply", 1), "z");
    ck_assert_str_eq(kiln_brick_input_name(m, "apply", 1), "b");
    ck_assert_str_eq(kiln_brick_output_name(m, "apply", 0), "output");

    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    int64_t d2[2] = {KILN_BATCH, 2}, d3[2] = {KILN_BATCH, 3};
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, d2), y = kiln_graph_input(g, "y", KILN_DTYPE_F32, 2, d3);
    kiln_node z = kiln_graph_input(g, "z", KILN_DTYPE_F32, 2, d3), out[2], fo[2], mo;
    ck_assert_int_eq(kiln_brick_call(d, "apply", g, (kiln_node[]){z, x, y}, 3, out, 2), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, out[0]), "distribute_apply_x");
    ck_assert_str_eq(kiln_graph_node_name(g, out[1]), "distribute_apply_y");
    ck_assert(kiln_graph_has_role(g, out[1], KILN_ROLE_OUTPUT));
    ck_assert_str_eq(kiln_graph_node_brick_path(g, out[1]), "/distribute");
    ck_assert_int_eq(kiln_graph_node_dim(g, out[0], 1), 2);
    ck_assert_str_eq(kiln_graph_node_name(g, x), "x"); /* the target keeps its name */
    ck_assert_int_eq(kiln_brick_call(f, "apply", g, &z, 1, fo, 2), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, fo[1]), "fork_apply_z");
    ck_assert_int_eq(kiln_graph_node_dim(g, fo[1], 1), 4);
    /* the copy names its own output; the Fork's is a copy of it */
    kiln_filter child_out = {.roles = KILN_ROLE_OUTPUT, .name = "fork_z_apply_output"};
    kiln_node found[2];
    ck_assert_int_eq(kiln_graph_filter(g, &fo[1], 1, &child_out, found, 2), 1);
    ck_assert_str_eq(kiln_graph_node_brick_path(g, found[0]), "/fork/fork_z");
    ck_assert_int_eq(kiln_brick_call(m, "apply", g, (kiln_node[]){z, x}, 2, &mo, 1), KILN_OK);
    ck_assert_str_eq(kiln_graph_node_name(g, mo), "merge_apply_output");
    ck_assert_int_eq(kiln_graph_node_dim(g, mo, 1), 4);
    kiln_graph_destroy(g);
    kiln_brick_destroy(d);
    kiln_brick_destroy(f);
    kiln_brick_destroy(m);
}
END_TEST

START_TEST(routing_errors_name_the_brick_and_the_input)
{
    kiln_brick *m = kiln_merge_create(NULL, (const char *[]){"a", "b"}, 2, (int64_t[]){3, 4}, 2, NULL, NULL);
    kiln_brick *d = kiln_distribute_create(NULL, (const char *[]){"x"}, 1, "z", (int64_t[]){2}, 3, NULL);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    int64_t d2[2] = {KILN_BATCH, 2}, d3[2] = {KILN_BATCH, 3};
    kiln_node a = kiln_graph_input(g, "a", KILN_DTYPE_F32, 2, d3), out;
    kiln_node b3 = kiln_graph_input(g, "b3", KILN_DTYPE_F32, 2, d3);
    kiln_node xi = kiln_graph_input(g, "xi", KILN_DTYPE_I32, 2, d2);
    ck_assert_int_eq(kiln_brick_apply(m, g, a, &out), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_brick_errmsg(m), "/merge: apply takes 2 inputs (a, b), 1 given");
    ck_assert_int_eq(kiln_brick_call(m, "apply", g, (kiln_node[]){a, b3}, 2, &out, 1), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_brick_errmsg(m), "/merge: b is float32 (B, 3), expected a last dim of 4");
    ck_assert(!kiln_node_ok(out));
    ck_assert_int_eq(kiln_brick_call(d, "apply", g, (kiln_node[]){a, xi}, 2, &out, 1), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_brick_errmsg(d), "/distribute: x is int32 (B, 2), expected float32 (the graph's floatx)");
    /* a copy's failure names the copy */
    kiln_node ai = kiln_graph_input(g, "ai", KILN_DTYPE_I32, 2, d3);
    kiln_node b4 = kiln_graph_input(g, "b4", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 4});
    ck_assert_int_eq(kiln_brick_call(m, "apply", g, (kiln_node[]){ai, b4}, 2, &out, 1), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_brick_errmsg(m), "/merge/transform_a: input is int32 (B, 3), expected float32 (the "
                                           "graph's floatx)");
    kiln_brick *lazy = kiln_merge_create(NULL, (const char *[]){"a", "b"}, 2, NULL, 2, NULL, NULL);
    ck_assert_int_eq(kiln_brick_call(lazy, "apply", g, (kiln_node[]){a, b4}, 2, &out, 1), KILN_ERR_CONFIG);
    ck_assert_str_eq(kiln_brick_errmsg(lazy), "/merge/transform_a: allocation config not set: input_dim");
    kiln_graph_destroy(g);
    kiln_brick_destroy(lazy);
    kiln_brick_destroy(m);
    kiln_brick_destroy(d);
}
END_TEST

START_TEST(routing_pushes_initialization_config_to_its_copies)
{
    kiln_brick *f = kiln_fork_create(NULL, (const char *[]){"y", "z"}, 2, 2, (int64_t[]){3, 4}, NULL);
    ck_assert_int_eq(kiln_brick_set_weights_init(f, kiln_init_constant(2)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(f), KILN_ERR_CONFIG);
    ck_assert_str_eq(kiln_brick_errmsg(f), "/fork/fork_y: initialization config not set: biases_init");
    ck_assert_int_eq(kiln_brick_set_biases_init(f, kiln_init_constant(1)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(f), KILN_OK);
    assert_all(kiln_brick_param_by_name(kiln_brick_child(f, 1), "W"), 2);
    assert_all(kiln_brick_param_by_name(kiln_brick_child(f, 1), "b"), 1);
    /* the documented override: push, then change a copy */
    ck_assert_int_eq(kiln_brick_push_initialization_config(f), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_weights_init(kiln_brick_child(f, 0), kiln_init_constant(-1)), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(f), KILN_OK);
    assert_all(kiln_brick_param_by_name(kiln_brick_child(f, 0), "W"), -1);
    assert_all(kiln_brick_param_by_name(kiln_brick_child(f, 1), "W"), 2);
    ck_assert_int_eq(kiln_brick_weights_init(kiln_brick_child(f, 1)).kind, KILN_INIT_CONSTANT);
    kiln_brick_destroy(f);
}
END_TEST

START_TEST(routing_copies_a_prototype_with_children)
{
    /* Fork with an MLP prototype: each copy is an MLP with its own linears */
    kiln_brick *proto = kiln_mlp_create(NULL, (kiln_brick *[]){kiln_tanh_create(NULL)}, 1, (int64_t[]){0, 0});
    kiln_brick *f = kiln_fork_create(NULL, (const char *[]){"y", "z"}, 2, 3, (int64_t[]){2, 5}, proto);
    ck_assert_ptr_nonnull(f);
    kiln_brick *fz = kiln_brick_child(f, 1);
    ck_assert_int_eq(kiln_brick_child_count(fz), 2);
    ck_assert_str_eq(kiln_brick_path(kiln_brick_child(fz, 0)), "/fork/fork_z/linear_0");
    ck_assert_str_eq(kiln_brick_path(kiln_brick_child(fz, 1)), "/fork/fork_z/tanh_0");
    kiln_node x, out[2];
    kiln_graph *g = graph_with_input(KILN_DTYPE_F32, "x", 3, &x);
    ck_assert_int_eq(kiln_brick_call(f, "apply", g, &x, 1, out, 2), KILN_OK);
    ck_assert_int_eq(kiln_graph_node_dim(g, out[1], 1), 5);
    kiln_param *w_y = kiln_brick_param(kiln_brick_child(kiln_brick_child(f, 0), 0), 0);
    kiln_param *w_z = kiln_brick_param(kiln_brick_child(fz, 0), 0);
    ck_assert_ptr_ne(w_y, w_z);
    ck_assert_int_eq(kiln_param_dim(w_z, 1), 5);
    kiln_filter f_w = {.roles = KILN_ROLE_WEIGHT, .brick = fz};
    ck_assert_int_eq(kiln_graph_filter(g, out, 2, &f_w, NULL, 0), 1);
    kiln_graph_destroy(g);
    kiln_brick_destroy(f);
}
END_TEST

START_TEST(routing_constructors_refuse_bad_arguments)
{
    static const char *const dup[] = {"x", "x"}, *const empty[] = {"x", ""}, *const bar[] = {"a|b"};
    static const char *const xy[] = {"x", "y"};
    ck_assert_ptr_null(kiln_fork_create(NULL, dup, 2, 2, NULL, NULL));
    ck_assert_ptr_null(kiln_fork_create(NULL, empty, 2, 2, NULL, NULL));
    ck_assert_ptr_null(kiln_fork_create(NULL, bar, 1, 2, NULL, NULL));
    ck_assert_ptr_null(kiln_fork_create(NULL, xy, 0, 2, NULL, NULL));
    ck_assert_ptr_null(kiln_fork_create(NULL, xy, 2, -1, NULL, NULL));
    ck_assert_ptr_null(kiln_distribute_create(NULL, xy, 2, "y", NULL, 0, NULL));
    ck_assert_ptr_null(kiln_merge_create(NULL, xy, 2, (int64_t[]){3, -4}, 2, NULL, NULL));
    /* a prototype must be a Feedforward (input_dim, output_dim); it is taken */
    ck_assert_ptr_null(kiln_parallel_create(NULL, xy, 2, NULL, NULL, kiln_tanh_create(NULL), NULL));
    ck_assert_ptr_null(kiln_merge_create(NULL, dup, 2, NULL, 0, kiln_linear_create(NULL, 0, 0), NULL));
    /* a copy's name "<prefix>_<name>" must fit */
    char longname[KILN_MAX_NAME + 1];
    memset(longname, 'n', KILN_MAX_NAME);
    longname[KILN_MAX_NAME] = '\0';
    ck_assert_ptr_null(kiln_fork_create(NULL, (const char *[]){longname}, 1, 2, NULL, NULL));
}
END_TEST

static Suite *bricks_suite(void)
{
    Suite *s = suite_create("bricks");
    TCase *tc = tcase_create("bricks");
    tcase_add_test(tc, tanh_output_is_named_and_input_keeps_its_name);
    tcase_add_test(tc, linear_params_are_nan_until_initialized);
    tcase_add_test(tc, lazy_linear_needs_input_dim);
    tcase_add_test(tc, explicit_allocate_makes_params);
    tcase_add_test(tc, linear_without_bias_has_only_w);
    tcase_add_test(tc, mlp_children_and_pushed_dims);
    tcase_add_test(tc, mlp_pushes_initialization_config);
    tcase_add_test(tc, mlp_child_override_after_manual_push);
    tcase_add_test(tc, mlp_renames_default_named_activations);
    tcase_add_test(tc, mlp_none_activation_adds_no_child);
    tcase_add_test(tc, mlp_use_bias_reaches_linears);
    tcase_add_test(tc, mlp_lazy_input_dim_names_the_child);
    tcase_add_test(tc, autoencoder_filters_by_role_and_brick);
    tcase_add_test(tc, identity_logistic_bias_filter);
    tcase_add_test(tc, applying_twice_shares_param_nodes);
    tcase_add_test(tc, parameter_paths_follow_the_tree);
    tcase_add_test(tc, gaussian_seed_1_matches_blocks_intro);
    tcase_add_test(tc, linear_draws_biases_before_weights);
    tcase_add_test(tc, children_share_the_parent_stream);
    tcase_add_test(tc, child_with_own_seed_starts_its_own_stream);
    tcase_add_test(tc, uniform_init_stays_in_range);
    tcase_add_test(tc, bad_schemes_are_refused_when_set);
    tcase_add_test(tc, initialize_names_missing_config);
    tcase_add_test(tc, dimension_mismatch_names_path_and_dims);
    tcase_add_test(tc, linear_rejects_wrong_rank_and_dtype);
    tcase_add_test(tc, apply_in_float64_graph);
    tcase_add_test(tc, overlong_output_name_is_an_error);
    tcase_add_test(tc, set_dim_checks_name_and_value);
    tcase_add_test(tc, config_after_allocation_waits_for_next_allocate);
    tcase_add_test(tc, param_values_round_trip_and_count_check);
    tcase_add_test(tc, sequence_applies_children_in_order);
    tcase_add_test(tc, activations_build_their_ops);
    tcase_add_test(tc, bias_brick_adds_b);
    tcase_add_test(tc, softmax_other_applications);
    tcase_add_test(tc, categorical_cross_entropy_is_mean_neg_log_pick);
    tcase_add_test(tc, misclassification_rate_is_named_error_rate);
    tcase_add_test(tc, cost_matrices_sum_rows_then_average);
    tcase_add_test(tc, errmsg_is_ok_after_success_and_on_null);
    tcase_add_test(tc, free_parameter_is_a_shared_variable);
    tcase_add_test(tc, applications_are_queried_as_blocks_foo_apply_inputs);
    tcase_add_test(tc, call_checks_application_and_counts);
    tcase_add_test(tc, add_child_passes_ownership_and_refuses_cycles);
    tcase_add_test(tc, clone_copies_configuration_not_parameters);
    tcase_add_test(tc, routing_children_are_named_as_blocks_names_them);
    tcase_add_test(tc, routing_dims_are_lazy_and_pushed_at_allocation);
    tcase_add_test(tc, routing_applications_name_inputs_and_outputs);
    tcase_add_test(tc, routing_errors_name_the_brick_and_the_input);
    tcase_add_test(tc, routing_pushes_initialization_config_to_its_copies);
    tcase_add_test(tc, routing_copies_a_prototype_with_children);
    tcase_add_test(tc, routing_constructors_refuse_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kiln_test_run(bricks_suite());
}
