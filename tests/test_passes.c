/* test_passes.c: the compiler's graph passes, on program graphs built
** directly: folding, CSE, rewrites, dead-code elimination, autodiff's
** structure, fusion and the memory plan. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/graph.h"
#include "compiler/memplan.h"
#include "compiler/passes.h"
#include "testutil.h"

static kiln_node input2(kiln_graph *g, const char *name, int64_t n)
{
    return kiln_graph_input(g, name, g->floatx, 2, (int64_t[]){KILN_BATCH, n});
}

START_TEST(constants_fold)
{
    kiln_graph *g = kiln_graph_create_program(KILN_DTYPE_F32);
    kiln_node c = kiln_expr_mul(g, kiln_expr_add(g, kiln_expr_constant(g, 2), kiln_expr_constant(g, 3)),
                                kiln_expr_exp(g, kiln_expr_constant(g, 0)));
    ck_assert_int_eq(g->nodes[c.id].op, KILN_OP_CONST);
    ck_assert_double_eq(g->nodes[c.id].attr.f[0], 5.0);
    kiln_graph_destroy(g);
}
END_TEST

START_TEST(cse_shares_identical_nodes_and_commuted_operands)
{
    kiln_graph *g = kiln_graph_create_program(KILN_DTYPE_F32);
    kiln_node x = input2(g, "x", 4), y = input2(g, "y", 4);
    ck_assert_int_eq(kiln_expr_mul(g, x, y).id, kiln_expr_mul(g, x, y).id);
    ck_assert_int_eq(kiln_expr_add(g, x, y).id, kiln_expr_add(g, y, x).id);
    ck_assert_int_ne(kiln_expr_sub(g, x, y).id, kiln_expr_sub(g, y, x).id);
    kiln_graph_destroy(g);
    /* user graphs keep every node the user made */
    g = kiln_graph_create(KILN_DTYPE_F32);
    x = input2(g, "x", 4);
    ck_assert_int_ne(kiln_expr_exp(g, x).id, kiln_expr_exp(g, x).id);
    kiln_graph_destroy(g);
}
END_TEST

START_TEST(identities_disappear)
{
    kiln_graph *g = kiln_graph_create_program(KILN_DTYPE_F32);
    kiln_node x = input2(g, "x", 4);
    ck_assert_int_eq(kiln_expr_mul(g, x, kiln_expr_constant(g, 1)).id, x.id);
    ck_assert_int_eq(kiln_expr_add(g, kiln_expr_constant(g, 0), x).id, x.id);
    ck_assert_int_eq(kiln_expr_neg(g, kiln_expr_neg(g, x)).id, x.id);
    ck_assert_int_eq(kiln_expr_transpose(g, kiln_expr_transpose(g, x)).id, x.id);
    /* x * 1 keeps a node when the 1 broadcasts x to a larger shape */
    kiln_node s = kiln_expr_sum(g, x, KILN_ALL_AXES);
    ck_assert_int_eq(kiln_expr_mul(g, s, kiln_expr_constant(g, 1)).id, s.id);
    kiln_graph_destroy(g);
}
END_TEST

START_TEST(softmax_cross_entropy_becomes_the_stable_form)
{
    kiln_graph *g = kiln_graph_create_program(KILN_DTYPE_F32);
    kiln_node x = input2(g, "x", 10);
    kiln_node y = kiln_graph_input(g, "y", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    kiln_node ce = kiln_expr_neg(g, kiln_expr_log(g, kiln_expr_pick(g, kiln_expr_softmax(g, x), y)));
    ck_assert_int_eq(g->nodes[ce.id].op, KILN_OP_SOFTMAX_XENT);
    ck_assert_int_eq(g->nodes[ce.id].in[0], x.id);
    kiln_node ls = kiln_expr_log(g, kiln_expr_softmax(g, x));
    ck_assert_int_eq(g->nodes[ls.id].op, KILN_OP_LOGSOFTMAX);
    kiln_graph_destroy(g);
}
END_TEST

/* Whether n is -softplus(x). */
static bool is_neg_softplus_of(const kiln_graph *g, kiln_node n, int32_t x)
{
    const kiln_node_rec *r = &g->nodes[n.id];
    return r->op == KILN_OP_NEG && g->nodes[r->in[0]].op == KILN_OP_SOFTPLUS && g->nodes[r->in[0]].in[0] == x;
}

/* Theano's stabilise (#9): log(sigmoid(x)) = -softplus(-x) and
** log(1 - sigmoid(x)) = -softplus(x), with 1 - s written either way. */
START_TEST(log_of_sigmoid_becomes_softplus)
{
    kiln_graph *g = kiln_graph_create_program(KILN_DTYPE_F64);
    kiln_node x = input2(g, "x", 4), one = kiln_expr_constant(g, 1), s = kiln_expr_sigmoid(g, x);
    kiln_node ls = kiln_expr_log(g, s);
    ck_assert(is_neg_softplus_of(g, ls, kiln_expr_neg(g, x).id));
    ck_assert(is_neg_softplus_of(g, kiln_expr_log(g, kiln_expr_sub(g, one, s)), x.id));
    ck_assert(is_neg_softplus_of(g, kiln_expr_log(g, kiln_expr_add(g, one, kiln_expr_neg(g, s))), x.id));
    ck_assert(is_neg_softplus_of(g, kiln_expr_log(g, kiln_expr_add(g, kiln_expr_neg(g, s), one)), x.id));
    ck_assert(is_neg_softplus_of(g, kiln_expr_log(g, kiln_expr_sigmoid(g, kiln_expr_neg(g, x))), x.id));
    /* not 1 - s: left alone */
    kiln_node two = kiln_expr_constant(g, 2);
    ck_assert_int_eq(g->nodes[kiln_expr_log(g, kiln_expr_sub(g, two, s)).id].op, KILN_OP_LOG);
    ck_assert_int_eq(g->nodes[kiln_expr_log(g, kiln_expr_sub(g, s, one)).id].op, KILN_OP_LOG);
    kiln_graph_destroy(g);
    /* user graphs keep what the user built */
    g = kiln_graph_create(KILN_DTYPE_F64);
    x = input2(g, "x", 4);
    ck_assert_int_eq(g->nodes[kiln_expr_log(g, kiln_expr_sigmoid(g, x)).id].op, KILN_OP_LOG);
    kiln_graph_destroy(g);
}
END_TEST

START_TEST(transposes_fold_into_matmul_flags)
{
    kiln_graph *g = kiln_graph_create_program(KILN_DTYPE_F32);
    kiln_node a = input2(g, "a", 4);
    kiln_param *w = kiln_param_create("w", 2, (int64_t[]){5, 4});
    kiln_node wn = kiln_graph_param(g, w);
    kiln_node m = kiln_expr_matmul(g, a, kiln_expr_transpose(g, wn));
    ck_assert_int_eq(g->nodes[m.id].op, KILN_OP_MATMUL);
    ck_assert(kiln_attr_trans_b(&g->nodes[m.id]) && !kiln_attr_trans_a(&g->nodes[m.id]));
    ck_assert_int_eq(g->nodes[m.id].in[1], wn.id);
    ck_assert_int_eq(kiln_graph_node_dim(g, m, 1), 5);
    kiln_graph_destroy(g);
    kiln_param_destroy(w);
}
END_TEST

/* The rewrites on N-d graphs: a batched product with a 2-D operand is one
** product over the folded rows (its transpose a BLAS flag); the
** cross-entropy of (T, B, k) logits is the stable form; two permutes are
** one, and none when they cancel. */
START_TEST(nd_rewrites_fold_products_fuse_cross_entropy_and_compose_permutes)
{
    kiln_graph *g = kiln_graph_create_program(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 3, (int64_t[]){KILN_TIME, KILN_BATCH, 4});
    kiln_param *w = kiln_param_create("w", 2, (int64_t[]){5, 4});
    kiln_node wn = kiln_graph_param(g, w);
    kiln_node h = kiln_expr_matmul(g, x, kiln_expr_transpose(g, wn));
    const kiln_node_rec *rh = &g->nodes[h.id];
    ck_assert_int_eq(rh->op, KILN_OP_RESHAPE);
    ck_assert_int_eq(rh->shape.rank, 3);
    ck_assert(rh->shape.dims[0] == KILN_TIME && rh->shape.dims[1] == KILN_BATCH && rh->shape.dims[2] == 5);
    const kiln_node_rec *m = &g->nodes[rh->in[0]];
    ck_assert_int_eq(m->op, KILN_OP_MATMUL);
    ck_assert_int_eq(m->shape.rank, 2);
    ck_assert(kiln_attr_trans_b(m) && !kiln_attr_trans_a(m));
    ck_assert_int_eq(m->in[1], wn.id);
    ck_assert_int_eq(g->nodes[m->in[0]].op, KILN_OP_RESHAPE);
    ck_assert_int_eq(g->nodes[m->in[0]].in[0], x.id);
    char d[32];
    ck_assert_str_eq(kiln_graph_dim_str(g, m->shape.dims[0], d, sizeof d), "T*B");
    kiln_node y = kiln_graph_input(g, "y", KILN_DTYPE_I32, 2, (int64_t[]){KILN_TIME, KILN_BATCH});
    kiln_node ce = kiln_expr_neg(g, kiln_expr_pick(g, kiln_expr_log_softmax(g, h), y));
    ck_assert_int_eq(g->nodes[ce.id].op, KILN_OP_SOFTMAX_XENT);
    ck_assert_int_eq(g->nodes[ce.id].in[0], h.id);
    ck_assert_int_eq(g->nodes[ce.id].shape.rank, 2);
    kiln_node p = kiln_expr_permute(g, kiln_expr_permute(g, x, 3, (int[]){1, 2, 0}), 3, (int[]){1, 2, 0});
    ck_assert_int_eq(g->nodes[p.id].op, KILN_OP_TRANSPOSE);
    ck_assert_int_eq(g->nodes[p.id].in[0], x.id);
    const int composed[3] = {2, 0, 1};
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(g->nodes[p.id].attr.i[k], composed[k]);
    kiln_node q = kiln_expr_permute(g, kiln_expr_permute(g, x, 3, (int[]){1, 2, 0}), 3, (int[]){2, 0, 1});
    ck_assert_int_eq(q.id, x.id);
    kiln_graph_destroy(g);
    kiln_param_destroy(w);
}
END_TEST

/* The adjoint of a value read as adjacent slices (an LSTM's gates): the
** sum of the slices' pads becomes one pad of their concat, and a pad to
** the full width is its input. */
START_TEST(sums_of_adjacent_pads_become_a_concat)
{
    kiln_graph *g = kiln_graph_create_program(KILN_DTYPE_F32);
    kiln_node p[4];
    for (int k = 0; k < 4; k++) {
        char name[8];
        snprintf(name, sizeof name, "x%d", k);
        p[k] = input2(g, name, 2);
    }
    /* in the order autodiff adds them: last gate first, then down */
    kiln_node s = kiln_expr_pad(g, p[3], 1, 6, 8);
    for (int k = 2; k >= 0; k--)
        s = kiln_expr_add(g, s, kiln_expr_pad(g, p[k], 1, 2 * k, 8));
    const kiln_node_rec *r = &g->nodes[s.id];
    ck_assert_int_eq(r->op, KILN_OP_CONCAT);
    ck_assert_int_eq(r->n_in, 4);
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(r->in[k], p[k].id);
    ck_assert_int_eq(r->shape.dims[1], 8);
    kiln_node a = input2(g, "a", 2), b = input2(g, "b", 3); /* lower part first, then upper */
    kiln_node pa = kiln_expr_pad(g, a, 1, 1, 8), pb = kiln_expr_pad(g, b, 1, 3, 8);
    kiln_node up = kiln_expr_add(g, pa, pb);
    ck_assert_int_eq(g->nodes[up.id].op, KILN_OP_PAD);
    ck_assert_int_eq(g->nodes[up.id].attr.i[1], 1);
    const kiln_node_rec *c = &g->nodes[g->nodes[up.id].in[0]];
    ck_assert(c->op == KILN_OP_CONCAT && c->n_in == 2 && c->in[0] == a.id && c->in[1] == b.id);
    /* apart, or along different axes: still a sum */
    kiln_node gap = kiln_expr_add(g, kiln_expr_pad(g, p[0], 1, 0, 8), kiln_expr_pad(g, p[1], 1, 4, 8));
    ck_assert_int_eq(g->nodes[gap.id].op, KILN_OP_ADD);
    kiln_node q = kiln_graph_input(g, "q", g->floatx, 2, (int64_t[]){2, 4});
    kiln_node u = kiln_graph_input(g, "u", g->floatx, 2, (int64_t[]){4, 2});
    kiln_node cross = kiln_expr_add(g, kiln_expr_pad(g, q, 0, 0, 4), kiln_expr_pad(g, u, 1, 2, 4));
    ck_assert_int_eq(g->nodes[cross.id].op, KILN_OP_ADD);
    ck_assert_int_eq(kiln_expr_pad(g, q, 1, 0, 4).id, q.id);
    kiln_graph_destroy(g);
}
END_TEST

START_TEST(rebuild_drops_what_no_root_needs)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = input2(g, "x", 4);
    kiln_node used = kiln_expr_tanh(g, x);
    kiln_node unused = kiln_expr_exp(g, x);
    int32_t map[16];
    kiln_err err = {0};
    kiln_graph *pg = kiln_rebuild(g, &used.id, 1, map, &err);
    ck_assert_ptr_nonnull(pg);
    ck_assert_int_eq(map[unused.id], -1);
    ck_assert_int_ge(map[used.id], 0);
    ck_assert_int_eq(pg->n_nodes, 2);
    kiln_graph_destroy(pg);
    kiln_graph_destroy(g);
}
END_TEST

/* A parameter no cost depends on gets zeros of its shape, read from the node
** array that adding the zero constant may move: at every fill of the array
** one of these graphs reallocates there (the ASan pass and meson's
** MALLOC_PERTURB_ see a read of the freed array). */
START_TEST(regress_zero_gradient_reads_its_shape_before_the_array_moves)
{
    for (int fill = 0; fill < 140; fill++) {
        kiln_graph *g = kiln_graph_create_program(KILN_DTYPE_F32);
        kiln_param *w = kiln_param_create("w", 2, (int64_t[]){3, 5});
        kiln_node wn = kiln_graph_param(g, w), x = input2(g, "x", 4);
        for (int k = 0; k < fill; k++)
            x = kiln_expr_exp(g, x); /* one node each */
        kiln_node cost = kiln_expr_sum(g, x, KILN_ALL_AXES);
        int32_t grad;
        ck_assert_int_eq(kiln_autodiff(g, cost.id, &wn.id, 1, &grad), KILN_OK);
        const kiln_node_rec *gr = &g->nodes[grad];
        ck_assert_int_eq(gr->shape.rank, 2);
        ck_assert_int_eq(gr->shape.dims[0], 3);
        ck_assert_int_eq(gr->shape.dims[1], 5);
        kiln_graph_destroy(g);
        kiln_param_destroy(w);
    }
}
END_TEST

START_TEST(autodiff_of_softmax_xent_is_softmax_minus_onehot)
{
    kiln_graph *g = kiln_graph_create_program(KILN_DTYPE_F32);
    kiln_param *w = kiln_param_create("w", 2, (int64_t[]){4, 10});
    kiln_node x = input2(g, "x", 4), wn = kiln_graph_param(g, w);
    kiln_node y = kiln_graph_input(g, "y", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    kiln_node logits = kiln_expr_matmul(g, x, wn);
    kiln_node cost = kiln_expr_mean(g, kiln_expr_neg(g, kiln_expr_pick(g, kiln_expr_log_softmax(g, logits), y)),
                                    KILN_ALL_AXES);
    int32_t grad;
    ck_assert_int_eq(kiln_autodiff(g, cost.id, &wn.id, 1, &grad), KILN_OK);
    /* the gradient is x^T . dlogits with dlogits = (softmax - onehot) / B */
    const kiln_node_rec *gr = &g->nodes[grad];
    ck_assert_int_eq(gr->op, KILN_OP_MATMUL);
    ck_assert(kiln_attr_trans_a(gr));
    bool saw_softmax = false, saw_onehot = false, saw_logsoftmax_grad = false;
    for (int32_t i = cost.id + 1; i < g->n_nodes; i++) {
        saw_softmax |= g->nodes[i].op == KILN_OP_SOFTMAX && g->nodes[i].in[0] == logits.id;
        saw_onehot |= g->nodes[i].op == KILN_OP_ONEHOT;
        saw_logsoftmax_grad |= g->nodes[i].op == KILN_OP_SUM && kiln_attr_axes(&g->nodes[i]) == 1 << 1; /* axis 1 */
    }
    ck_assert(saw_softmax && saw_onehot);
    ck_assert_msg(!saw_logsoftmax_grad, "the fused form needs no row sums");
    kiln_graph_destroy(g);
    kiln_param_destroy(w);
}
END_TEST

START_TEST(elementwise_chains_fuse)
{
    kiln_graph *g = kiln_graph_create_program(KILN_DTYPE_F32);
    kiln_node x = input2(g, "x", 8);
    kiln_param *b = kiln_param_create("b", 1, (int64_t[]){8});
    kiln_node a = kiln_expr_add(g, x, kiln_graph_param(g, b));
    kiln_node r = kiln_expr_relu(g, a);
    kiln_node m = kiln_expr_mul(g, r, kiln_expr_constant(g, 3));
    kiln_node s = kiln_expr_sum(g, m, KILN_ALL_AXES);
    bool pinned[16] = {0}, inl[16];
    pinned[s.id] = true;
    kiln_fuse_elementwise(g, pinned, inl);
    ck_assert(inl[a.id] && inl[r.id] && inl[m.id]); /* all inside the sum's loop */
    ck_assert(!inl[s.id] && !inl[x.id]);
    /* a value read twice is stored */
    kiln_node t = kiln_expr_add(g, kiln_expr_exp(g, x), kiln_expr_tanh(g, kiln_expr_exp(g, x)));
    bool pinned2[32] = {0}, inl2[32];
    pinned2[t.id] = true;
    kiln_fuse_elementwise(g, pinned2, inl2);
    ck_assert(!inl2[kiln_expr_exp(g, x).id]);
    kiln_graph_destroy(g);
    kiln_param_destroy(b);
}
END_TEST

START_TEST(memory_plan_slabs_and_reuse)
{
    kiln_graph *g = kiln_graph_create_program(KILN_DTYPE_F32);
    kiln_param *w1 = kiln_param_create("w1", 2, (int64_t[]){6, 5}), *w2 = kiln_param_create("w2", 2, (int64_t[]){5, 3});
    kiln_node x = input2(g, "x", 6), n1 = kiln_graph_param(g, w1), n2 = kiln_graph_param(g, w2);
    kiln_node h = kiln_expr_tanh(g, kiln_expr_matmul(g, x, n1));
    kiln_node o = kiln_expr_matmul(g, h, n2);
    kiln_node cost = kiln_expr_mean(g, kiln_expr_square(g, o), KILN_ALL_AXES);
    int32_t params[2] = {n1.id, n2.id}, grads[2];
    ck_assert_int_eq(kiln_autodiff(g, cost.id, params, 2, grads), KILN_OK);
    kiln_plan p;
    kiln_err err = {0};
    int64_t max[KILN_MAX_SYMBOLS] = {64};
    kiln_plan_request req = {.cost = cost.id, .params = params, .grads = grads, .n_params = 2, .max_sizes = max};
    ck_assert_int_eq(kiln_plan_build(&p, g, &req, &err), KILN_OK);
    /* the zone of values of c * B elements (zone 0 holds the fixed-size ones) */
    int zb = -1;
    for (int z = 0; z < p.n_zones; z++)
        if (p.zones[z].unit.e[0] == 1)
            zb = z;
    ck_assert_int_ge(zb, 1);
    /* params and grads: one slab each, same order and offsets */
    ck_assert_int_eq(p.param_offset[0], 0);
    ck_assert_int_ge(p.param_offset[1], 6 * 5 * 4);
    ck_assert_int_eq(p.buf[grads[0]].zone, KILN_ZONE_GRAD);
    ck_assert_int_eq(p.buf[grads[0]].offset, p.param_offset[0]);
    ck_assert_int_eq(p.buf[grads[1]].offset, p.param_offset[1]);
    ck_assert_int_eq(p.off_grads, p.param_bytes);
    ck_assert_int_ge(p.arena_bytes, p.zones[zb].base + p.zones[zb].bytes * 64);
    /* the cost is stored and never shares bytes with a later value */
    ck_assert(p.buf[cost.id].zone == KILN_ZONE_VALUE && p.buf[cost.id].z == 0);
    for (int32_t i = cost.id + 1; i < g->n_nodes; i++)
        if (p.buf[i].zone == KILN_ZONE_VALUE && p.buf[i].z == 0 && p.alias[i] == i)
            ck_assert_int_ne(p.buf[i].offset, p.buf[cost.id].offset);
    /* the batch zone is smaller than the sum of every batch value: reuse */
    int64_t sum = 0, one[KILN_MAX_SYMBOLS] = {1};
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (p.buf[i].zone == KILN_ZONE_VALUE && p.buf[i].z == zb && p.alias[i] == i)
            sum += kiln_plan_value_bytes(&p, i, one);
    ck_assert_int_lt(p.zones[zb].bytes, sum);
    kiln_plan_free(&p);
    kiln_graph_destroy(g);
    kiln_param_destroy(w1);
    kiln_param_destroy(w2);
}
END_TEST

START_TEST(shape_errors_name_the_shapes)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node a = input2(g, "a", 4), b = input2(g, "b", 5);
    ck_assert(!kiln_node_ok(kiln_expr_matmul(g, a, b)));
    ck_assert_int_eq(kiln_graph_status(g), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_graph_errmsg(g), "matmul: shapes (B, 4) and (B, 5) do not fit (need (m, k) x (k, n))");
    /* the first error is kept */
    ck_assert(!kiln_node_ok(kiln_expr_add(g, a, b)));
    ck_assert(strstr(kiln_graph_errmsg(g), "matmul") != NULL);
    kiln_graph_clear_error(g);
    ck_assert(!kiln_node_ok(kiln_expr_add(g, a, b)));
    ck_assert_str_eq(kiln_graph_errmsg(g), "add: shapes (B, 4) and (B, 5) do not broadcast");
    kiln_graph_clear_error(g);
    ck_assert(!kiln_node_ok(kiln_expr_reshape(g, a, 2, (int64_t[]){KILN_BATCH, 3})));
    ck_assert_str_eq(kiln_graph_errmsg(g), "reshape: cannot reshape (B, 4) into (B, 3)");
    kiln_graph_clear_error(g);
    ck_assert(!kiln_node_ok(kiln_expr_add(g, a, (kiln_node){999})));
    ck_assert_int_eq(kiln_graph_status(g), KILN_ERR_ARG);
    kiln_graph_destroy(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("passes");
    TCase *t = tcase_create("passes");
    tcase_add_test(t, constants_fold);
    tcase_add_test(t, cse_shares_identical_nodes_and_commuted_operands);
    tcase_add_test(t, identities_disappear);
    tcase_add_test(t, softmax_cross_entropy_becomes_the_stable_form);
    tcase_add_test(t, log_of_sigmoid_becomes_softplus);
    tcase_add_test(t, transposes_fold_into_matmul_flags);
    tcase_add_test(t, nd_rewrites_fold_products_fuse_cross_entropy_and_compose_permutes);
    tcase_add_test(t, rebuild_drops_what_no_root_needs);
    tcase_add_test(t, sums_of_adjacent_pads_become_a_concat);
    tcase_add_test(t, autodiff_of_softmax_xent_is_softmax_minus_onehot);
    tcase_add_test(t, elementwise_chains_fuse);
    tcase_add_test(t, memory_plan_slabs_and_reuse);
    tcase_add_test(t, shape_errors_name_the_shapes);
    tcase_add_test(t, regress_zero_gradient_reads_its_shape_before_the_array_moves);
    suite_add_tcase(s, t);
    return kiln_test_run(s);
}
