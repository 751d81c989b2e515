/* test_lower.c: the lowering stage's kernel list (codegen/lower.h), on the
** models of tests/lower_corpus.c: the deferred batch-1 update of each
** weight and none without fast paths, an update fused into its GEMM (alpha
** -lr, beta 1, C = W) with no update kernel of its own, no gradient or
** update kernel in forward or eval_step (#12), fusion groups' members, a
** scan's nested list, and the list's text. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/lower.h"
#include "runtime/program_internal.h"
#include "testutil.h"

#define LOWER_CORPUS_NO_MAIN
#include "lower_corpus.c"

typedef struct lowered {
    net n;
    kiln_program *p;
    kiln_kernel_list *l;
} lowered;

/* Model make() compiled and lowered as kiln_compile lowers it. */
static void lower_model(lowered *x, void (*make)(net *), int64_t max_batch, int64_t max_t, bool forward_only,
                        bool plain)
{
    make(&x->n);
    x->p = compile_net(&x->n, max_batch, max_t, forward_only, plain);
    ck_assert_ptr_nonnull(x->p);
    const kiln_plan *plan = kiln_program_plan(x->p);
    ck_assert_ptr_nonnull(plan);
    kiln_lower_options o = {.has_forward = true, .has_train = !forward_only, .no_fast_paths = plain};
    kiln_err err = {0};
    ck_assert_msg(kiln_lower(plan, &o, &x->l, &err) == KILN_OK, "%s", err.msg);
}

static void lowered_free(lowered *x)
{
    kiln_kernel_list_free(x->l);
    kiln_program_destroy(x->p);
    net_free(&x->n);
}

static void small_mlp(net *n) { mlp_make(n, (int64_t[]){6, 5, 3}); }
static void mnist_mlp(net *n) { mlp_make(n, (int64_t[]){784, 100, 10}); }

/* The parameter index of each weight (rank 2), into w; their count. */
static int weights(const kiln_plan *p, int *w)
{
    int n = 0;
    for (int i = 0; i < p->n_params; i++)
        if (kiln_graph_cnode(p->g, p->param_node[i])->shape.rank == 2)
            w[n++] = i;
    return n;
}

/* The kernel of the list with fast bit f for parameter i, or NULL. */
static const kiln_kernel *with_slot(const kiln_kernel_list *l, unsigned f, int i)
{
    for (int k = 0; k < l->n; k++)
        if ((l->k[k].fast & f) && l->k[k].defer_param == i)
            return &l->k[k];
    return NULL;
}

START_TEST(batch_one_defers_each_weights_update)
{
    lowered x;
    lower_model(&x, small_mlp, 1, 0, false, false);
    const kiln_plan *p = kiln_program_plan(x.p);
    int w[8], nw = weights(p, w);
    ck_assert_int_eq(nw, 2);
    for (int j = 0; j < nw; j++) {
        int64_t slot = x.l->defer[w[j]];
        ck_assert_int_ge(slot, x.l->deferred_at);
        ck_assert_int_lt(slot, x.l->deferred_end);
        ck_assert_int_ge(slot, p->arena_bytes); /* after the memory plan's arena */
        const kiln_kernel *store = with_slot(x.l, KILN_FAST_DEFER_STORE, w[j]);
        const kiln_kernel *apply = with_slot(x.l, KILN_FAST_DEFER_APPLY, w[j]);
        ck_assert_ptr_nonnull(store);
        ck_assert_ptr_nonnull(apply);
        ck_assert_int_eq(store->kind, KILN_KERNEL_GEMM);
        ck_assert_int_eq(apply->kind, KILN_KERNEL_GEMM);
        ck_assert(store->fast & KILN_FAST_FUSED_UPDATE);
        ck_assert_int_eq(kiln_graph_cnode(p->g, apply->root)->in[1], p->param_node[w[j]]); /* x W */
    }
    ck_assert_int_le(x.l->deferred_end, x.l->arena_bytes);
    lowered_free(&x);
}
END_TEST

START_TEST(no_fast_paths_lowers_no_fast_path)
{
    void (*makes[2])(net *) = {small_mlp, mnist_mlp};
    for (int m = 0; m < 2; m++)
        for (int64_t batch = 1; batch <= 64; batch += 63) {
            lowered x;
            lower_model(&x, makes[m], batch, 0, false, true);
            const kiln_plan *p = kiln_program_plan(x.p);
            ck_assert(!x.l->fast_paths);
            for (int k = 0; k < x.l->n; k++) {
                ck_assert_uint_eq(x.l->k[k].fast, 0);
                ck_assert_int_lt(x.l->k[k].update, 0);
                ck_assert_int_lt(x.l->k[k].tr_in, 0);
                ck_assert(!x.l->k[k].own_nn_plain);
            }
            for (int i = 0; i < p->n_params; i++)
                ck_assert_int_lt(x.l->defer[i], 0);
            ck_assert_int_lt(x.l->scratch, 0);
            ck_assert(!x.l->any_fused);
            ck_assert_int_eq(x.l->gemm_n, 0);
            ck_assert_int_eq(x.l->arena_bytes, p->arena_bytes); /* no slot after the plan's arena */
            lowered_free(&x);
        }
    /* and with them, the same model has its own GEMM and scratch */
    lowered x;
    lower_model(&x, mnist_mlp, 64, 0, false, false);
    ck_assert(x.l->fast_paths);
    ck_assert_int_ge(x.l->scratch, kiln_program_plan(x.p)->arena_bytes);
    ck_assert_int_eq(x.l->gemm_n, 100);
    ck_assert_int_eq(x.l->gemm_k, 784);
    lowered_free(&x);
}
END_TEST

START_TEST(fused_update_is_the_gradients_gemm)
{
    lowered x;
    lower_model(&x, small_mlp, 16, 0, false, false);
    const kiln_plan *p = kiln_program_plan(x.p);
    int w[8], nw = weights(p, w), fused = 0;
    for (int j = 0; j < nw; j++) {
        int32_t W = p->param_node[w[j]];
        int u = -1;
        for (int v = 0; v < p->n_updates; v++)
            if (p->updates[v].target == W)
                u = v;
        ck_assert_int_ge(u, 0);
        const kiln_kernel *g = NULL;
        for (int k = 0; k < x.l->n; k++)
            if (x.l->k[k].update == u)
                g = &x.l->k[k];
        ck_assert_msg(g != NULL, "weight %d: no product applies its update", j);
        fused++;
        ck_assert_int_eq(g->kind, KILN_KERNEL_GEMM);
        ck_assert(g->fast & KILN_FAST_FUSED_UPDATE);
        ck_assert_int_eq(g->root, p->grad_node[w[j]]);
        /* alpha = -s with s the learning rate (a scalar state), beta 1, C = W */
        const kiln_node_rec *s = kiln_graph_cnode(p->g, g->scale);
        ck_assert_int_eq(s->op, KILN_OP_STATE);
        ck_assert_int_eq(s->shape.rank, 0);
        ck_assert_int_eq(p->updates[g->update].target, W);
        /* no kernel of its own computes the update or writes W */
        ck_assert_ptr_null(kiln_kernel_of(x.l, p->updates[u].value));
        ck_assert(!x.l->slab_update[u]);
        for (int k = 0; k < x.l->n; k++)
            ck_assert_int_ne(p->alias[x.l->k[k].root], W);
        ck_assert_uint_eq(g->modes & KILN_MODE_TRAIN, KILN_MODE_TRAIN);
    }
    ck_assert_int_eq(fused, 2);
    ck_assert(x.l->any_fused);
    kiln_strbuf text = {0};
    kiln_kernel_list_print(x.l, &text);
    ck_assert_msg(strstr(text.s, "gemm") && strstr(text.s, "fused_update") && strstr(text.s, " beta 1 c node"), "%s",
                  text.s);
    free(text.s);
    lowered_free(&x);
}
END_TEST

/* The kernels forward and eval_step run compute no gradient and no update
** (#12: forward also computed the weights' gradients). */
static void check_forward_kernels(const lowered *x)
{
    const kiln_plan *p = kiln_program_plan(x->p);
    int gradient_kernels = 0;
    for (int k = 0; k < x->l->n; k++) {
        const kiln_kernel *kr = &x->l->k[k];
        bool grad = kr->update >= 0;
        for (int i = 0; i < p->n_params; i++)
            grad |= p->grad_node[i] >= 0 && p->alias[p->grad_node[i]] == p->alias[kr->root];
        for (int u = 0; u < p->n_updates; u++)
            grad |= p->updates[u].value == kr->root || p->updates[u].target == p->alias[kr->root];
        if (!grad)
            continue;
        gradient_kernels++;
        ck_assert_msg(!(kr->modes & (KILN_MODE_FORWARD | KILN_MODE_EVAL)),
                      "kernel %d (node %d) computes a gradient or update in forward or eval_step (modes %u)", k,
                      (int)kr->root, kr->modes);
    }
    ck_assert_int_gt(gradient_kernels, 0);
}

START_TEST(forward_runs_no_gradient_kernel)
{
    for (int plain = 0; plain < 2; plain++)
        for (int64_t batch = 1; batch <= 16; batch += 15) {
            lowered x;
            lower_model(&x, small_mlp, batch, 0, false, plain);
            check_forward_kernels(&x);
            lowered_free(&x);
        }
    lowered x; /* a forward-only program: nothing but forward kernels */
    lower_model(&x, small_mlp, 16, 0, true, false);
    for (int k = 0; k < x.l->n; k++) {
        ck_assert_uint_eq(x.l->k[k].modes, KILN_MODE_FORWARD);
        ck_assert_int_lt(x.l->k[k].update, 0);
    }
    for (int u = 0; u < kiln_program_plan(x.p)->n_updates; u++)
        ck_assert(!x.l->slab_update[u]);
    lowered_free(&x);
}
END_TEST

START_TEST(groups_list_their_inline_members)
{
    lowered x;
    lower_model(&x, small_mlp, 16, 0, false, false);
    const kiln_plan *p = kiln_program_plan(x.p);
    int groups = 0;
    for (int k = 0; k < x.l->n; k++) {
        const kiln_kernel *kr = &x.l->k[k];
        if (kr->kind != KILN_KERNEL_ELEMENTWISE && kr->kind != KILN_KERNEL_REDUCTION) {
            ck_assert_int_eq(kr->n_members, 0);
            continue;
        }
        groups += kr->n_members > 0;
        const int32_t *m = x.l->members + kr->first_member;
        for (int j = 0; j < kr->n_members; j++) {
            ck_assert(p->inline_[m[j]]);
            ck_assert_int_lt(m[j], kr->root);
            ck_assert(j == 0 || m[j - 1] < m[j]); /* id order: the statements' order */
        }
    }
    ck_assert_int_gt(groups, 0); /* at least the rectifier's bias + max(0, .) */
    lowered_free(&x);
}
END_TEST

START_TEST(scan_has_its_bodys_list)
{
    for (int plain = 0; plain < 2; plain++) {
        lowered x;
        lower_model(&x, lstm_make, 4, 5, false, plain);
        int scans = 0, transposed = 0;
        for (int k = 0; k < x.l->n; k++) {
            const kiln_kernel *kr = &x.l->k[k];
            if (kr->kind != KILN_KERNEL_SCAN)
                continue;
            scans++;
            ck_assert_int_ge(kr->body, 0);
            ck_assert_int_lt(kr->body, x.l->n_bodies);
            const kiln_kernel_list *b = x.l->bodies[kr->body];
            ck_assert_ptr_eq(b->plan, &x.l->body_plans[kr->body]);
            ck_assert_int_gt(b->n, 0);
            int gemms = 0;
            for (int j = 0; j < b->n; j++) {
                gemms += b->k[j].kind == KILN_KERNEL_GEMM;
                transposed += b->k[j].tr_in >= 0;
                ck_assert_uint_eq(b->k[j].modes, KILN_MODE_FORWARD); /* a step is one function */
            }
            ck_assert_int_gt(gemms, 0);
            /* the region lies after the plan's arena, inside the list's */
            ck_assert_int_ge(kr->scan_at, kiln_program_plan(x.p)->arena_bytes);
            ck_assert_int_le(kr->scan_at + kr->scan_carry, x.l->arena_bytes);
            ck_assert_int_ge(kr->scan_carry, b->arena_bytes);
        }
        ck_assert_int_ge(scans, 2); /* the forward scan and the backward scan */
        if (plain)
            ck_assert_int_eq(transposed, 0);
        else
            ck_assert_int_gt(transposed, 0); /* the backward step's x W^T reads W^T */
        kiln_strbuf text = {0};
        kiln_kernel_list_print(x.l, &text);
        ck_assert_msg(strstr(text.s, ": scan node") && strstr(text.s, "\n  kernel 0: "), "%s", text.s);
        free(text.s);
        lowered_free(&x);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lower");
    TCase *t = tcase_create("lower");
    tcase_add_test(t, batch_one_defers_each_weights_update);
    tcase_add_test(t, no_fast_paths_lowers_no_fast_path);
    tcase_add_test(t, fused_update_is_the_gradients_gemm);
    tcase_add_test(t, forward_runs_no_gradient_kernel);
    tcase_add_test(t, groups_list_their_inline_members);
    tcase_add_test(t, scan_has_its_bodys_list);
    suite_add_tcase(s, t);
    return kiln_test_run(s);
}
