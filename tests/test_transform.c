/* test_transform.c: kiln_graph_replace and kiln_apply_dropout, Blocks'
** ComputationGraph.replace and apply_dropout.
**
** The documented examples first (checklist section 9, examples 9 and 10),
** evaluated through kiln_compile; then what the new graph keeps (names,
** owners, roles, parameters, dims, updates), dependent and self-referring
** replacements, dropout's statistics, and the errors. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/graph.h"
#include "testutil.h"

static kiln_program *compile_outputs(kiln_graph *g, const kiln_node *outs, int n, int64_t max_batch)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "tr";
    o.outputs = outs;
    o.n_outputs = n;
    o.max_batch = max_batch;
    kiln_program *p;
    enum kiln_status st = kiln_compile(g, &o, &p);
    ck_assert_msg(st == KILN_OK, "compile: %s", kiln_program_errmsg(p));
    return p;
}

/* The value of scalar output out of g at input x = v. */
static double eval_scalar(kiln_graph *g, kiln_node out, float v)
{
    kiln_program *p = compile_outputs(g, &out, 1, 1);
    double r;
    ck_assert_int_eq(kiln_program_bind_input(p, "x", &v), KILN_OK);
    ck_assert_msg(kiln_program_forward(p, 1) == KILN_OK, "forward: %s", kiln_program_errmsg(p));
    ck_assert_int_eq(kiln_program_read_scalar(p, out, &r), KILN_OK);
    kiln_program_destroy(p);
    return r;
}

static const kiln_node_rec *rec(const kiln_graph *g, kiln_node n) { return kiln_graph_cnode(g, n.id); }
static kiln_node in_of(const kiln_graph *g, kiln_node n, int k) { return (kiln_node){rec(g, n)->in[k]}; }
static double const_of(const kiln_graph *g, kiln_node n)
{
    ck_assert_str_eq(kiln_graph_node_op(g, n), "const");
    return rec(g, n)->attr.f[0];
}

/* Whether a is b or one of its ancestors. */
static bool is_ancestor(const kiln_graph *g, kiln_node a, kiln_node b)
{
    if (a.id == b.id)
        return true;
    for (int k = 0; k < rec(g, b)->n_in; k++)
        if (is_ancestor(g, a, in_of(g, b, k)))
            return true;
    return false;
}

/* ---- Blocks' example 9: dependent replacements ------------------------------ */

typedef struct chain {
    kiln_graph *g;
    kiln_node x, y, z, a;
} chain;

/* x = scalar('x'); y = x + 2; z = y + 3; a = z + 5 */
static void chain_make(chain *c)
{
    c->g = kiln_graph_create(KILN_DTYPE_F32);
    c->x = kiln_graph_input(c->g, "x", KILN_DTYPE_F32, 0, NULL);
    c->y = kiln_expr_add(c->g, c->x, kiln_expr_constant(c->g, 2));
    c->z = kiln_expr_add(c->g, c->y, kiln_expr_constant(c->g, 3));
    c->a = kiln_expr_add(c->g, c->z, kiln_expr_constant(c->g, 5));
    ck_assert_int_eq(kiln_graph_set_name(c->g, c->y, "y"), KILN_OK);
    ck_assert_int_eq(kiln_graph_set_name(c->g, c->z, "z"), KILN_OK);
    ck_assert_int_eq(kiln_graph_status(c->g), KILN_OK);
}

START_TEST(blocks_example_9_dependent_replacements)
{
    chain c;
    chain_make(&c);
    kiln_graph *g = c.g;
    /* {y: x * 2, z: y * 3}, given in either order */
    kiln_node x2 = kiln_expr_mul(g, c.x, kiln_expr_constant(g, 2));
    kiln_node y3 = kiln_expr_mul(g, c.y, kiln_expr_constant(g, 3));
    for (int order = 0; order < 2; order++) {
        kiln_node from[2] = {c.y, c.z}, to[2] = {x2, y3};
        if (order) {
            from[0] = c.z, from[1] = c.y;
            to[0] = y3, to[1] = x2;
        }
        kiln_graph *ng;
        kiln_node na;
        ck_assert_msg(kiln_graph_replace(g, &c.a, 1, from, to, 2, &ng, &na) == KILN_OK, "%s", kiln_graph_errmsg(g));
        /* '(((x * TensorConstant{2}) * TensorConstant{3}) + TensorConstant{5})' */
        ck_assert_str_eq(kiln_graph_node_op(ng, na), "add");
        ck_assert(const_of(ng, in_of(ng, na, 1)) == 5);
        kiln_node m3 = in_of(ng, na, 0), m2 = in_of(ng, m3, 0);
        ck_assert_str_eq(kiln_graph_node_op(ng, m3), "mul");
        ck_assert(const_of(ng, in_of(ng, m3, 1)) == 3);
        ck_assert_str_eq(kiln_graph_node_op(ng, m2), "mul");
        ck_assert(const_of(ng, in_of(ng, m2, 1)) == 2);
        ck_assert_str_eq(kiln_graph_node_op(ng, in_of(ng, m2, 0)), "input");
        /* float(function(cg_new.inputs, cg_new.outputs)(3.)[0]) -> 23.0 */
        ck_assert_double_eq(eval_scalar(ng, na, 3), 23.0);
        /* each replacement names what it replaced: y, and z as it stood (x * 2 + 3) */
        kiln_node ry = kiln_graph_node_replacement_of(ng, m2), rz = kiln_graph_node_replacement_of(ng, m3);
        ck_assert(kiln_node_ok(ry) && kiln_node_ok(rz));
        ck_assert_str_eq(kiln_graph_node_name(ng, ry), "y");
        ck_assert_str_eq(kiln_graph_node_name(ng, rz), "z");
        ck_assert_int_eq(in_of(ng, rz, 0).id, m2.id);
        ck_assert(!kiln_node_ok(kiln_graph_node_replacement_of(ng, na)));
        kiln_graph_destroy(ng);
    }
    /* the source is as it was: ((3 + 2) + 3) + 5 */
    ck_assert_double_eq(eval_scalar(g, c.a, 3), 13.0);
    kiln_graph_destroy(g);
}
END_TEST

START_TEST(inside_its_own_replacement_a_node_stands_for_itself)
{
    chain c;
    chain_make(&c);
    /* {x: x * 2}: a = ((2x + 2) + 3) + 5, x doubled once */
    kiln_node x2 = kiln_expr_mul(c.g, c.x, kiln_expr_constant(c.g, 2));
    kiln_graph *ng;
    kiln_node na;
    ck_assert_int_eq(kiln_graph_replace(c.g, &c.a, 1, &c.x, &x2, 1, &ng, &na), KILN_OK);
    ck_assert_double_eq(eval_scalar(ng, na, 3), 16.0);
    kiln_graph_destroy(ng);
    /* {y: z * 1}, where z reads y: a = ((y + 3) * 1 + 3) + 5, no cycle */
    kiln_node z1 = kiln_expr_mul(c.g, c.z, kiln_expr_constant(c.g, 1));
    ck_assert_int_eq(kiln_graph_replace(c.g, &c.a, 1, &c.y, &z1, 1, &ng, &na), KILN_OK);
    ck_assert_double_eq(eval_scalar(ng, na, 3), 16.0);
    kiln_graph_destroy(ng);
    /* a replacement the outputs do not need is skipped, as in Blocks */
    kiln_node other = kiln_expr_neg(c.g, c.x), other2 = kiln_expr_neg(c.g, other);
    ck_assert_int_eq(kiln_graph_replace(c.g, &c.a, 1, &other, &other2, 1, &ng, &na), KILN_OK);
    ck_assert_double_eq(eval_scalar(ng, na, 3), 13.0);
    ck_assert_int_eq(kiln_graph_node_count(ng), 7); /* x, 2, y, 3, z, 5, a */
    kiln_graph_destroy(ng);
    /* skipped even where a replacement reads it: {y: w * 2, w: x * 3} with w
    ** = -x outside a's graph leaves w as it is, a = -2x + 5 */
    {
        kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
        kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 0, NULL), w = kiln_expr_neg(g, x);
        kiln_node y = kiln_expr_add(g, x, kiln_expr_constant(g, 2)), a = kiln_expr_add(g, y, kiln_expr_constant(g, 5));
        kiln_node w2 = kiln_expr_mul(g, w, kiln_expr_constant(g, 2)), x3 = kiln_expr_mul(g, x, kiln_expr_constant(g, 3));
        ck_assert_int_eq(kiln_graph_replace(g, &a, 1, (kiln_node[]){y, w}, (kiln_node[]){w2, x3}, 2, &ng, &na), KILN_OK);
        ck_assert_double_eq(eval_scalar(ng, na, 3), -1.0);
        kiln_graph_destroy(ng);
        kiln_graph_destroy(g);
    }
    /* no replacement at all: a copy */
    ck_assert_int_eq(kiln_graph_replace(c.g, &c.a, 1, NULL, NULL, 0, &ng, &na), KILN_OK);
    ck_assert_double_eq(eval_scalar(ng, na, 3), 13.0);
    kiln_graph_destroy(ng);
    kiln_graph_destroy(c.g);
}
END_TEST

START_TEST(replace_errors_name_both_shapes)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 2});
    kiln_node w = kiln_graph_input(g, "w", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 3});
    kiln_node i = kiln_graph_input(g, "i", KILN_DTYPE_I32, 2, (int64_t[]){KILN_BATCH, 2});
    kiln_node y = kiln_expr_exp(g, x);
    kiln_graph *ng = (kiln_graph *)1;
    kiln_node ny;
    ck_assert_int_eq(kiln_graph_replace(g, &y, 1, &x, &w, 1, &ng, &ny), KILN_ERR_SHAPE);
    ck_assert_ptr_null(ng);
    const char *m = kiln_graph_errmsg(g);
    ck_assert_msg(strstr(m, "(B, 2)") && strstr(m, "(B, 3)") && strstr(m, "'x'") && strstr(m, "'w'"), "%s", m);
    kiln_graph_clear_error(g);
    ck_assert_int_eq(kiln_graph_replace(g, &y, 1, &x, &i, 1, &ng, &ny), KILN_ERR_SHAPE);
    ck_assert_msg(strstr(kiln_graph_errmsg(g), "float32") && strstr(kiln_graph_errmsg(g), "int32"), "%s",
                  kiln_graph_errmsg(g));
    kiln_graph_clear_error(g);
    kiln_node bad = {999};
    ck_assert_int_eq(kiln_graph_replace(g, &y, 1, &x, &bad, 1, &ng, &ny), KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(g), "node 999"));
    kiln_graph_clear_error(g);
    ck_assert_int_eq(kiln_graph_replace(g, &bad, 1, NULL, NULL, 0, &ng, &ny), KILN_ERR_ARG);
    kiln_graph_clear_error(g);
    kiln_node twice[2] = {x, x}, by[2] = {y, y};
    ck_assert_int_eq(kiln_graph_replace(g, &y, 1, twice, by, 2, &ng, &ny), KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(g), "replaced twice"));
    kiln_graph_clear_error(g);
    ck_assert_int_eq(kiln_graph_replace(g, &y, 0, NULL, NULL, 0, &ng, &ny), KILN_ERR_ARG);
    kiln_graph_clear_error(g);
    /* a graph with an error is refused with its own message */
    ck_assert(!kiln_node_ok(kiln_expr_add(g, x, w)));
    ck_assert_int_eq(kiln_graph_replace(g, &y, 1, NULL, NULL, 0, &ng, &ny), KILN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(g), "do not broadcast"));
    kiln_graph_destroy(g);
}
END_TEST

/* ---- what the new graph keeps -------------------------------------------------- */

typedef struct mlp_model {
    kiln_graph *g;
    kiln_brick *mlp;
    kiln_node x, y;
} mlp_model;

/* Blocks' example 10: MLP([Identity(), Identity()], [2, 10, 2]),
** weights_init = Constant(1), biases_init = Constant(2). */
static void mlp_make(mlp_model *m)
{
    m->g = kiln_graph_create(KILN_DTYPE_F32);
    m->x = kiln_graph_input(m->g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 2});
    kiln_brick *acts[2] = {kiln_identity_create(NULL), kiln_identity_create(NULL)};
    m->mlp = kiln_mlp_create(NULL, acts, 2, (int64_t[]){2, 10, 2});
    kiln_brick_set_weights_init(m->mlp, kiln_init_constant(1));
    kiln_brick_set_biases_init(m->mlp, kiln_init_constant(2));
    ck_assert_int_eq(kiln_brick_apply(m->mlp, m->g, m->x, &m->y), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(m->mlp), KILN_OK);
}

static void mlp_free(mlp_model *m)
{
    kiln_graph_destroy(m->g);
    kiln_brick_destroy(m->mlp);
}

/* Run out of g on `rows` rows of ones, `steps` times; values into v (rows * 2 per step). */
static void run_ones(kiln_graph *g, kiln_node out, int64_t rows, int steps, double *v)
{
    kiln_program *p = compile_outputs(g, &out, 1, rows);
    float *ones = malloc(sizeof *ones * (size_t)rows * 2);
    ck_assert_ptr_nonnull(ones);
    for (int64_t i = 0; i < rows * 2; i++)
        ones[i] = 1;
    ck_assert_int_eq(kiln_program_bind_input(p, "x", ones), KILN_OK);
    for (int s = 0; s < steps; s++) {
        ck_assert_msg(kiln_program_forward(p, rows) == KILN_OK, "forward: %s", kiln_program_errmsg(p));
        ck_assert_int_eq(kiln_program_read(p, out, v + s * rows * 2, rows * 2), KILN_OK);
    }
    free(ones);
    kiln_program_destroy(p);
}

/* The INPUT-role variables of the graph of outputs, as VariableFilter(roles=[INPUT]). */
static int filter_roles(kiln_graph *g, kiln_node out, unsigned roles, kiln_node *found, int cap)
{
    kiln_filter f = {.roles = roles};
    int n = kiln_graph_filter(g, &out, 1, &f, found, cap);
    ck_assert_int_ge(n, 0);
    ck_assert_int_le(n, cap);
    return n;
}

START_TEST(new_graph_keeps_names_owners_roles_params_dims_updates)
{
    mlp_model m;
    mlp_make(&m);
    kiln_graph *g = m.g;
    /* a random node and an update of the graph's own come along too */
    kiln_node s = kiln_graph_random_state(g, 9);
    kiln_node noise = kiln_expr_random_normal(g, s, 2, (int64_t[]){KILN_BATCH, 2}, 0, 1);
    kiln_node out = kiln_expr_add(g, m.y, noise);
    kiln_graph *ng;
    kiln_node nout;
    kiln_node x3 = kiln_expr_mul(g, m.x, kiln_expr_constant(g, 3));
    ck_assert_int_eq(kiln_graph_replace(g, &out, 1, &m.x, &x3, 1, &ng, &nout), KILN_OK);
    /* every node the output needed is there once, by name, owner and role */
    kiln_node found[64], nfound[64];
    kiln_filter all = {0};
    int n = kiln_graph_filter(g, &out, 1, &all, found, 64), nn = kiln_graph_filter(ng, &nout, 1, &all, nfound, 64);
    ck_assert_int_eq(nn, n + 2); /* plus x * 3 and its constant */
    kiln_filter wf = {.roles = KILN_ROLE_WEIGHT};
    kiln_node w[4], nw[4];
    ck_assert_int_eq(kiln_graph_filter(g, &out, 1, &wf, w, 4), 2);
    ck_assert_int_eq(kiln_graph_filter(ng, &nout, 1, &wf, nw, 4), 2);
    for (int k = 0; k < 2; k++) {
        ck_assert_ptr_eq(kiln_graph_node_param(ng, nw[k]), kiln_graph_node_param(g, w[k])); /* the same entries */
        ck_assert_str_eq(kiln_graph_node_name(ng, nw[k]), "W");
        ck_assert_str_eq(kiln_graph_node_owner(ng, nw[k]), kiln_graph_node_owner(g, w[k]));
    }
    ck_assert_str_eq(kiln_graph_node_owner(ng, nw[0]), "/mlp/linear_0");
    kiln_filter by_brick = {.roles = KILN_ROLE_BIAS, .brick = kiln_brick_child_by_name(m.mlp, "linear_1")};
    ck_assert_int_eq(kiln_graph_filter(ng, &nout, 1, &by_brick, nw, 4), 1);
    ck_assert_str_eq(kiln_graph_node_name(ng, nw[0]), "b");
    kiln_node mlp_out = kiln_graph_node_replacement_of(ng, nout); /* none: out was not replaced */
    ck_assert(!kiln_node_ok(mlp_out));
    kiln_filter named = {.name = "mlp_apply_output", .roles = KILN_ROLE_OUTPUT};
    ck_assert_int_eq(kiln_graph_filter(ng, &nout, 1, &named, nw, 4), 1);
    ck_assert_int_eq(kiln_graph_node_dim(ng, nw[0], 0), KILN_BATCH);
    char d[32];
    ck_assert_str_eq(kiln_graph_dim_str(ng, kiln_graph_node_dim(ng, nw[0], 0), d, sizeof d), "B");
    /* the random state is the source's (borrowed), with its update */
    kiln_node ns = kiln_graph_param_node(ng, kiln_graph_node_param(g, s));
    ck_assert(kiln_node_ok(ns));
    ck_assert(kiln_graph_has_role(ng, ns, KILN_ROLE_RANDOM_STATE));
    ck_assert_int_eq(ng->n_updates, 1);
    ck_assert_int_eq(ng->updates[0].target, ns.id);
    ck_assert_str_eq(kiln_graph_node_op(ng, (kiln_node){ng->updates[0].value}), "rng_next");
    /* and it computes: (3 * 2 * 10 + 2) * 10 ... with x = 1: 10 * (2 * 3 + 2) + 2 = 82, plus the noise */
    double v[6], v0[6];
    run_ones(ng, nout, 3, 1, v);
    run_ones(g, out, 3, 1, v0);
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq_tol(v[i] - v0[i], 82 - 42, 1e-4); /* same seed, same stream: same noise */
    kiln_graph_destroy(ng);
    mlp_free(&m);
}
END_TEST

/* ---- Blocks' example 10: dropout ---------------------------------------------- */

/* The mean of the first output over n rows (rows are independent draws; a
** row's two outputs are one value) is 42 within 4 standard errors; returns
** the variance. */
static double mean_is_42(const double *d, int n)
{
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++)
        s += d[2 * i];
    double mean = s / n;
    for (int i = 0; i < n; i++)
        s2 += (d[2 * i] - mean) * (d[2 * i] - mean);
    double se = sqrt(s2 / (n - 1) / n);
    ck_assert_msg(fabs(mean - 42) <= 4 * se, "mean %g, 42 +- %g", mean, 4 * se);
    return s2 / (n - 1);
}

START_TEST(blocks_example_10_dropout)
{
    mlp_model m;
    mlp_make(&m);
    double v[3 * 2];
    /* fprop(numpy.ones((3, 2))) -> all 42 */
    run_ones(m.g, m.y, 3, 1, v);
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(v[i], 42);
    /* inputs = VariableFilter(roles=[INPUT])(cg.variables) */
    kiln_node inputs[8];
    int n_in = filter_roles(m.g, m.y, KILN_ROLE_INPUT, inputs, 8);
    ck_assert_int_ge(n_in, 1);
    kiln_graph *ng;
    kiln_node ny;
    ck_assert_msg(kiln_apply_dropout(m.g, &m.y, 1, inputs, n_in, 0.5, 1, &ng, &ny) == KILN_OK, "%s",
                  kiln_graph_errmsg(m.g));
    /* dropped_out = VariableFilter(roles=[DROPOUT]); set(inputs) == set(replacement_of) */
    kiln_node dropped[8], new_inputs[8];
    int n_drop = filter_roles(ng, ny, KILN_ROLE_DROPOUT, dropped, 8);
    int n_new_in = filter_roles(ng, ny, KILN_ROLE_INPUT, new_inputs, 8);
    ck_assert_int_eq(n_drop, n_in);
    ck_assert_int_eq(n_new_in, n_in);
    for (int k = 0; k < n_drop; k++) {
        kiln_node r = kiln_graph_node_replacement_of(ng, dropped[k]);
        bool in_set = false;
        for (int j = 0; j < n_new_in; j++)
            in_set |= r.id == new_inputs[j].id;
        ck_assert_msg(in_set, "dropout node %d replaces node %d, not an input", (int)dropped[k].id, (int)r.id);
        ck_assert_str_eq(kiln_graph_node_name(ng, r), kiln_graph_node_name(m.g, inputs[k]));
        ck_assert(kiln_graph_has_role(ng, r, KILN_ROLE_INPUT) && !kiln_graph_has_role(ng, dropped[k], KILN_ROLE_INPUT));
    }
    /* a draw: each row is 20 * (kept inputs) + 22, scaled by 1 / (1 - p) */
    enum { ROWS = 500, STEPS = 20 };
    double *d = malloc(sizeof *d * ROWS * 2 * STEPS), *d2 = malloc(sizeof *d2 * ROWS * 2 * STEPS);
    ck_assert(d && d2);
    run_ones(ng, ny, ROWS, STEPS, d);
    int seen[3] = {0};
    for (int i = 0; i < ROWS * STEPS; i++) {
        double a = d[2 * i], b = d[2 * i + 1];
        ck_assert_msg(a == b && (a == 22 || a == 42 || a == 62), "row %d: %g %g", i, a, b);
        seen[(int)(a - 22) / 20]++;
    }
    ck_assert(seen[0] && seen[1] && seen[2]);
    /* reproducible from its seed: a second program, and a second apply_dropout */
    run_ones(ng, ny, ROWS, STEPS, d2);
    ck_assert_mem_eq(d, d2, sizeof *d * ROWS * 2 * STEPS);
    kiln_graph *ng2, *ng3;
    kiln_node ny2, ny3;
    ck_assert_int_eq(kiln_apply_dropout(m.g, &m.y, 1, inputs, n_in, 0.5, 1, &ng2, &ny2), KILN_OK);
    ck_assert_int_eq(kiln_apply_dropout(m.g, &m.y, 1, inputs, n_in, 0.5, 2, &ng3, &ny3), KILN_OK);
    run_ones(ng2, ny2, ROWS, 1, d2);
    ck_assert_mem_eq(d, d2, sizeof *d * ROWS * 2);
    run_ones(ng3, ny3, ROWS, 1, d2);
    ck_assert_int_ne(memcmp(d, d2, sizeof *d * ROWS * 2), 0);
    /* the mean over the draws is 42 within 4 standard errors */
    ck_assert_double_eq_tol(mean_is_42(d, ROWS * STEPS), 200, 200 * 0.1); /* variance 400 Var(m1 + m2) */
    free(d);
    free(d2);
    kiln_graph_destroy(ng3);
    kiln_graph_destroy(ng2);
    kiln_graph_destroy(ng);
    mlp_free(&m);
}
END_TEST

START_TEST(dropout_of_dependent_variables_keeps_the_mean)
{
    mlp_model m;
    mlp_make(&m);
    /* x and the first layer's output, which reads x: its replacement reads dropped-out x */
    kiln_filter f = {.roles = KILN_ROLE_OUTPUT, .brick = kiln_brick_child_by_name(m.mlp, "linear_0")};
    kiln_node vars[2] = {KILN_NODE_NONE, m.x};
    ck_assert_int_eq(kiln_graph_filter(m.g, &m.y, 1, &f, vars, 1), 1);
    kiln_graph *ng;
    kiln_node ny;
    ck_assert_int_eq(kiln_apply_dropout(m.g, &m.y, 1, vars, 2, 0.5, 7, &ng, &ny), KILN_OK);
    kiln_node dropped[4];
    ck_assert_int_eq(filter_roles(ng, ny, KILN_ROLE_DROPOUT, dropped, 4), 2);
    /* the later dropout reads (a copy of) the first's result */
    kiln_node h = kiln_graph_node_replacement_of(ng, dropped[1]);
    ck_assert_str_eq(kiln_graph_node_name(ng, h), "linear_0_apply_output");
    ck_assert(is_ancestor(ng, dropped[0], h));
    enum { ROWS = 400, STEPS = 25 };
    double *d = malloc(sizeof *d * ROWS * 2 * STEPS);
    run_ones(ng, ny, ROWS, STEPS, d);
    mean_is_42(d, ROWS * STEPS);
    free(d);
    kiln_graph_destroy(ng);
    /* drop_prob 0 changes nothing */
    ck_assert_int_eq(kiln_apply_dropout(m.g, &m.y, 1, vars, 2, 0, 7, &ng, &ny), KILN_OK);
    double v[12];
    run_ones(ng, ny, 3, 2, v);
    for (int i = 0; i < 12; i++)
        ck_assert_double_eq(v[i], 42);
    kiln_graph_destroy(ng);
    mlp_free(&m);
}
END_TEST

START_TEST(dropout_errors)
{
    mlp_model m;
    mlp_make(&m);
    kiln_graph *ng = (kiln_graph *)1;
    kiln_node ny;
    static const double bad[] = {1.0, -0.1, 1.5, NAN};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        ck_assert_int_eq(kiln_apply_dropout(m.g, &m.y, 1, &m.x, 1, bad[k], 1, &ng, &ny), KILN_ERR_ARG);
        ck_assert_ptr_null(ng);
        ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(m.g), "outside [0, 1)"));
        kiln_graph_clear_error(m.g);
    }
    kiln_node i = kiln_graph_input(m.g, "i", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    ck_assert_int_eq(kiln_apply_dropout(m.g, &m.y, 1, &i, 1, 0.5, 1, &ng, &ny), KILN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(m.g), "int32"));
    kiln_graph_clear_error(m.g);
    kiln_node none = KILN_NODE_NONE;
    ck_assert_int_eq(kiln_apply_dropout(m.g, &m.y, 1, &none, 1, 0.5, 1, &ng, &ny), KILN_ERR_ARG);
    kiln_graph_clear_error(m.g);
    ck_assert_int_eq(kiln_apply_dropout(m.g, &m.y, 1, &m.x, 1, 0.5, 1, NULL, &ny), KILN_ERR_ARG);
    kiln_graph_clear_error(m.g);
    ck_assert_int_eq(kiln_graph_status(m.g), KILN_OK);
    mlp_free(&m);
}
END_TEST

static Suite *transform_suite(void)
{
    Suite *s = suite_create("transform");
    TCase *tc = tcase_create("transform");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, blocks_example_9_dependent_replacements);
    tcase_add_test(tc, inside_its_own_replacement_a_node_stands_for_itself);
    tcase_add_test(tc, replace_errors_name_both_shapes);
    tcase_add_test(tc, new_graph_keeps_names_owners_roles_params_dims_updates);
    tcase_add_test(tc, blocks_example_10_dropout);
    tcase_add_test(tc, dropout_of_dependent_variables_keeps_the_mean);
    tcase_add_test(tc, dropout_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return kiln_test_run(transform_suite()); }
