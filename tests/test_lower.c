/* test_lower.c: the lowering stage's kernel list (codegen/lower.h), on the
** models of tests/lower_corpus.c: the deferred batch-1 update of each
** weight and none without fast paths, an update fused into its GEMM (alpha
** -lr, beta 1, C = W) with no update kernel of its own, no gradient or
** update kernel in forward or eval_step (#12), fusion groups' members, a
** scan's nested list, and the list's text; the addend epilogue (a
** product's one following add done by its GEMM): where it applies and
** where it must not, and that programs using it compute what the unfused
** program does (bit for bit where kiln's own GEMM runs). */
#include <check.h>
#include <math.h>
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
static void square_mlp(net *n) { mlp_make(n, (int64_t[]){16, 64, 64}); }
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
                ck_assert_int_lt(x.l->k[k].sum, 0); /* no addend epilogue */
                ck_assert_int_lt(x.l->k[k].addend, 0);
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
        int scans = 0, transposed = 0, padded = 0;
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
                if (plain)
                    ck_assert_int_lt(b->k[j].sum, 0);
                transposed += b->k[j].tr_in >= 0;
                padded += b->k[j].pad_in >= 0;
                ck_assert_uint_eq(b->k[j].modes, KILN_MODE_FORWARD); /* a step is one function */
            }
            ck_assert_int_gt(gemms, 0);
            /* the region lies after the plan's arena, inside the list's */
            ck_assert_int_ge(kr->scan_at, kiln_program_plan(x.p)->arena_bytes);
            ck_assert_int_le(kr->scan_at + kr->scan_carry, x.l->arena_bytes);
            ck_assert_int_ge(kr->scan_carry, b->arena_bytes);
        }
        ck_assert_int_ge(scans, 2); /* the forward scan and the backward scan */
        if (plain) {
            ck_assert_int_eq(transposed, 0);
            ck_assert_int_eq(padded, 0);
        } else {
            ck_assert_int_gt(transposed, 0); /* the backward step's x W^T reads W^T */
            /* the forward step's h W reads W's copy with rows 48 floats
            ** apart, not 32 (kiln_lower_context_ld) */
            ck_assert_int_gt(padded, 0);
        }
        kiln_strbuf text = {0};
        kiln_kernel_list_print(x.l, &text);
        ck_assert_msg(strstr(text.s, ": scan node") && strstr(text.s, "\n  kernel 0: "), "%s", text.s);
        free(text.s);
        lowered_free(&x);
    }
}
END_TEST


/* ---- shared loop nests (lower_shared_nests) ----------------------------------------- */

/* The loop shape of kernel k of list l (an elementwise group's value, or
** a sum's input). */
static const kiln_shape *loop_shape(const kiln_kernel_list *l, const kiln_kernel *k)
{
    const kiln_node_rec *r = kiln_graph_cnode(l->plan->g, k->root);
    return k->kind == KILN_KERNEL_REDUCTION ? &kiln_graph_cnode(l->plan->g, r->in[0])->shape : &r->shape;
}

/* Nests of list l (and its bodies') checked; how many kernels head one. */
static int check_nests(const kiln_kernel_list *l)
{
    int heads = 0;
    for (int i = 0; i < l->n; i++) {
        const kiln_kernel *k = &l->k[i];
        if (k->body >= 0)
            heads += check_nests(l->bodies[k->body]);
        ck_assert_int_ge(k->nest, 0);
        ck_assert_int_le(i + k->nest, l->n);
        if (k->nest <= 1)
            continue;
        heads++;
        for (int j = i; j < i + k->nest; j++) {
            const kiln_kernel *m = &l->k[j];
            ck_assert_msg(m->kind == KILN_KERNEL_ELEMENTWISE || m->kind == KILN_KERNEL_REDUCTION, "kernel %d", j);
            ck_assert(kiln_shape_equal(loop_shape(l, m), loop_shape(l, k)));
            ck_assert_uint_eq(m->modes, k->modes);
            ck_assert_int_eq(m->nest, j == i ? k->nest : 0);
            /* no kernel reads a sum the nest is still making */
            const kiln_node_rec *r = kiln_graph_cnode(l->plan->g, m->root);
            for (int q = i; q < j; q++)
                if (l->k[q].kind == KILN_KERNEL_REDUCTION)
                    for (int a = 0; a < r->n_in; a++)
                        ck_assert_int_ne(r->in[a], l->k[q].root);
        }
        i += k->nest - 1;
    }
    return heads;
}

/* The LSTM's forward step computes its gates in one loop nest, its
** backward step the gates' adjoints with the peepholes' sums; nothing is
** nested without fast paths; the program's bits do not change (test_scan's
** LSTM with and without fast paths, test_backends against the
** interpreter). */
START_TEST(elementwise_kernels_in_a_row_share_a_loop_nest)
{
    for (int plain = 0; plain < 2; plain++) {
        lowered x;
        lower_model(&x, lstm_make, 4, 5, false, plain);
        int heads = check_nests(x.l);
        if (plain)
            ck_assert_int_eq(heads, 0);
        else
            ck_assert_int_ge(heads, 2);
        kiln_strbuf text = {0};
        kiln_kernel_list_print(x.l, &text);
        ck_assert_msg(plain || strstr(text.s, " nest "), "%s", text.s);
        free(text.s);
        lowered_free(&x);
    }
}
END_TEST

/* Nest values of list l and its bodies' checked: a concat written by a
** nest (by_nest) has each input made by a distinct kernel of the nest
** just before it, placed one after another along its last axis; a nest's
** variable (nest_local) is an elementwise kernel's value in a nest that
** no kernel outside the nest and its concat reads. Counts both. */
static void check_nest_values(const kiln_kernel_list *l, int *concats, int *locals)
{
    const kiln_graph *g = l->plan->g;
    for (int i = 0; i < l->n; i++) {
        const kiln_kernel *k = &l->k[i];
        if (k->body >= 0)
            check_nest_values(l->bodies[k->body], concats, locals);
        if (k->nest > 1)
            for (int q = i; q < i + k->nest; q++) {
                const kiln_kernel *m = &l->k[q];
                if (m->nest_local) {
                    ck_assert_int_eq(m->kind, KILN_KERNEL_ELEMENTWISE);
                    (*locals)++;
                    for (int j = 0; j < l->n; j++) { /* no kernel root outside reads it */
                        if (j >= i && j <= i + k->nest)
                            continue;
                        const kiln_node_rec *r = kiln_graph_cnode(g, l->k[j].root);
                        for (int a = 0; a < r->n_in; a++)
                            ck_assert_msg(r->in[a] != m->root, "kernel %d reads nest value node %d", j, m->root);
                    }
                }
            }
        if (!k->by_nest)
            continue;
        (*concats)++;
        const kiln_node_rec *rc = kiln_graph_cnode(g, k->root);
        ck_assert_int_eq(rc->op, KILN_OP_CONCAT);
        int head = i - 1;
        while (head > 0 && l->k[head].nest == 0)
            head--;
        ck_assert_int_eq(head + l->k[head].nest, i); /* right after the nest */
        int64_t at = 0;
        for (int a = 0; a < rc->n_in; a++) {
            int found = 0;
            for (int q = head; q < i; q++)
                if (l->k[q].root == rc->in[a]) {
                    found++;
                    ck_assert_int_eq(l->k[q].into, k->root);
                    ck_assert_int_eq(l->k[q].into_at, at);
                }
            ck_assert_int_eq(found, 1);
            const kiln_node_rec *ra = kiln_graph_cnode(g, rc->in[a]);
            at += ra->shape.dims[ra->shape.rank - 1];
        }
        ck_assert_int_eq(at, rc->shape.dims[rc->shape.rank - 1]);
    }
}

/* The LSTM's backward step writes the gates' adjoints straight into their
** concat (the row the weight gradients read) and keeps the values only its
** nest reads (dh, dc's adjoint, the gates' adjoints) in variables; without
** fast paths, neither. The bits are the same (test_scan's LSTM with and
** without fast paths). */
START_TEST(a_nest_writes_the_concat_after_it_and_keeps_what_only_it_reads)
{
    for (int plain = 0; plain < 2; plain++) {
        lowered x;
        lower_model(&x, lstm_make, 4, 5, false, plain);
        int concats = 0, locals = 0;
        check_nest_values(x.l, &concats, &locals);
        ck_assert_int_eq(concats, plain ? 0 : 1);
        if (plain)
            ck_assert_int_eq(locals, 0);
        else
            ck_assert_int_ge(locals, 4);
        const char *src = kiln_program_source(x.p);
        ck_assert_ptr_nonnull(src);
        ck_assert_msg(plain || strstr(src, "only this nest reads it"), "%s", src);
        lowered_free(&x);
    }
}
END_TEST

/* Viewed slices of list l and its bodies checked: each a slice along the
** last axis with step 1, in a run of viewed slices that ends right before
** a nest of its shape, read by no kernel outside that nest (nor by a
** group's inline node outside it). Returns how many. */
static int check_viewed_slices(const kiln_kernel_list *l)
{
    const kiln_graph *g = l->plan->g;
    const kiln_plan *p = l->plan;
    int views = 0;
    for (int i = 0; i < l->n; i++) {
        const kiln_kernel *k = &l->k[i];
        if (k->body >= 0)
            views += check_viewed_slices(l->bodies[k->body]);
        if (!k->viewed)
            continue;
        views++;
        const kiln_node_rec *r = kiln_graph_cnode(g, k->root);
        ck_assert_int_eq(r->op, KILN_OP_SLICE);
        ck_assert_int_eq(r->attr.i[0], r->shape.rank - 1);
        ck_assert_int_eq(r->attr.i[3], 1);
        int head = i + 1;
        while (head < l->n && l->k[head].viewed)
            head++;
        ck_assert_int_lt(head, l->n);
        ck_assert_int_ge(l->k[head].nest, 2);
        for (int32_t id = 0; id < p->n; id++) { /* every reader's kernel is in the nest */
            const kiln_node_rec *q = kiln_graph_cnode(g, id);
            if (!p->modes[id])
                continue;
            for (int a = 0; a < q->n_in; a++) {
                if (q->in[a] != k->root)
                    continue;
                int at = -1; /* the kernel that computes id: as its root or a member of its group */
                for (int j = 0; j < l->n; j++)
                    for (int m = -1; m < l->k[j].n_members; m++)
                        if ((m < 0 ? l->k[j].root : l->members[l->k[j].first_member + m]) == id)
                            at = j;
                ck_assert_msg(at >= head && at < head + l->k[head].nest, "node %d reads viewed slice %d from kernel %d",
                              (int)id, (int)k->root, at);
            }
        }
    }
    return views;
}

/* The LSTM's forward step reads its four gates in place from the one row
** x_t + h W (no copies: lower_nest_slices); without fast paths it copies
** them. The bits are the same (test_scan's LSTM with and without fast
** paths; test_lower's addend test, model 3). */
START_TEST(a_nest_reads_the_slices_before_it_in_place)
{
    for (int plain = 0; plain < 2; plain++) {
        lowered x;
        lower_model(&x, lstm_make, 4, 5, false, plain);
        ck_assert_int_eq(check_viewed_slices(x.l), plain ? 0 : 4);
        const char *src = kiln_program_source(x.p);
        ck_assert_ptr_nonnull(src);
        ck_assert(!strstr(src, "by the loop nest below") == !!plain);
        lowered_free(&x);
    }
}
END_TEST

/* ---- the addend epilogue (lower_addends) ---------------------------------------- */

/* z = x W + a with x (B, IN), W (IN, OUT); a: a bias (OUT,), a matrix
** input (B, OUT), a scalar parameter, the bias with x W read a second
** time, the bias with x W the output (read after the step), or a matrix
** softmax(v) (v an input) computed after x W. The output:
** softmax(z) (a rows kernel reads z), or z itself, or x W; the cost: the
** sum of the squares of softmax(z) or z. */
enum { AFF_ROW, AFF_MATRIX, AFF_SCALAR, AFF_TWICE, AFF_KEPT, AFF_LATE };
static struct {
    int kind;
    bool softmax;
    enum kiln_dtype dt;
    int64_t in, out;
} aff = {AFF_ROW, true, KILN_DTYPE_F32, 16, 24};

static kiln_node aff_kept_y; /* AFF_KEPT: x W */

static kiln_node aff_param(kiln_graph *g, const char *name, int rank, const int64_t *dims, int salt)
{
    kiln_param *p = kiln_param_create(name, rank, dims);
    ck_assert_ptr_nonnull(p);
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    double *v = malloc(sizeof *v * (size_t)n);
    ck_assert_ptr_nonnull(v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (double)((i * 7 + salt * 5) % 19 - 9) / 37.0;
    ck_assert_int_eq(kiln_param_set_values(p, v, n), KILN_OK);
    free(v);
    kiln_node node = kiln_graph_param(g, p);
    kiln_param_destroy(p); /* the graph keeps it */
    return node;
}

static void affine_make(net *n)
{
    n->g = kiln_graph_create(aff.dt);
    n->bricks[0] = n->bricks[1] = NULL;
    kiln_node x = kiln_graph_input(n->g, "x", aff.dt, 2, (int64_t[]){KILN_BATCH, aff.in});
    kiln_node W = aff_param(n->g, "W", 2, (int64_t[]){aff.in, aff.out}, 1);
    kiln_node y = kiln_expr_matmul(n->g, x, W), a;
    switch (aff.kind) {
    case AFF_MATRIX: a = kiln_graph_input(n->g, "a", aff.dt, 2, (int64_t[]){KILN_BATCH, aff.out}); break;
    case AFF_SCALAR: a = aff_param(n->g, "s", 0, NULL, 2); break;
    case AFF_LATE: /* a kernel of its own, scheduled after x W */
        a = kiln_expr_softmax(n->g, kiln_graph_input(n->g, "v", aff.dt, 2, (int64_t[]){KILN_BATCH, aff.out}));
        break;
    default: a = aff_param(n->g, "b", 1, (int64_t[]){aff.out}, 3); break;
    }
    kiln_node z = kiln_expr_add(n->g, y, a);
    n->out = aff.softmax ? kiln_expr_softmax(n->g, z) : z;
    n->cost = kiln_expr_sum(n->g, kiln_expr_mul(n->g, n->out, n->out), KILN_ALL_AXES);
    if (aff.kind == AFF_KEPT) /* x W an output too (aff_kept_y), read by the add alone */
        aff_kept_y = y;
    if (aff.kind == AFF_TWICE) /* x W read by the add and by the cost */
        n->cost = kiln_expr_add(n->g, n->cost, kiln_expr_sum(n->g, kiln_expr_mul(n->g, y, y), KILN_ALL_AXES));
    ck_assert_int_eq(kiln_graph_status(n->g), KILN_OK);
}

/* The kernels of l (and of its bodies) with an addend, into out (at most cap); their count. */
static int addend_kernels(const kiln_kernel_list *l, const kiln_kernel **out, int cap, int *n)
{
    for (int k = 0; k < l->n; k++) {
        if (l->k[k].sum >= 0 && *n < cap)
            out[(*n)++] = &l->k[k];
        if (l->k[k].body >= 0)
            addend_kernels(l->bodies[l->k[k].body], out, cap, n);
    }
    return *n;
}

/* The count of l's addend kernels (addend_kernels) must be want; else the
** list, printed. */
static void expect_addends(const kiln_kernel_list *l, const kiln_kernel **ks, int want, const char *what)
{
    int n = 0;
    if (addend_kernels(l, ks, 8, &n) == want)
        return;
    kiln_strbuf text = {0};
    kiln_kernel_list_print(l, &text);
    ck_abort_msg("%s: %d addend kernels, want %d:\n%s", what, n, want, text.s);
}

/* One addend kernel of list l (whose plan is p): its product, add and
** addend as recorded, no kernel of the add's own, and the list's text. */
static void check_addend(const kiln_kernel_list *l, const kiln_kernel *k, bool row)
{
    const kiln_plan *p = l->plan;
    const kiln_node_rec *g = kiln_graph_cnode(p->g, k->root), *a = kiln_graph_cnode(p->g, k->sum);
    ck_assert_int_eq(k->kind, KILN_KERNEL_GEMM);
    ck_assert_int_eq(g->op, KILN_OP_MATMUL);
    ck_assert_int_eq(a->op, KILN_OP_ADD);
    ck_assert(a->in[0] == k->root || a->in[1] == k->root);
    ck_assert(a->in[0] == k->addend || a->in[1] == k->addend);
    ck_assert(k->addend_row == row);
    ck_assert_int_eq(kiln_graph_cnode(p->g, k->addend)->shape.rank, row ? 1 : 2);
    ck_assert_ptr_null(kiln_kernel_of(l, k->sum)); /* absorbed */
    ck_assert_uint_eq(k->modes, p->modes[k->sum] & k->modes);
    ck_assert_int_lt(k->update, 0);
    kiln_strbuf text = {0};
    kiln_kernel_list_print(l, &text);
    char want[96];
    snprintf(want, sizeof want, " addend node %d (%s) into node %d:add", (int)k->addend, row ? "row" : "matrix",
             (int)k->sum);
    ck_assert_msg(strstr(text.s, want), "no '%s' in\n%s", want, text.s);
    free(text.s);
}

START_TEST(addend_epilogue_takes_a_bias_and_the_lstm_add)
{
    const kiln_kernel *ks[8];
    /* a Linear's bias before a softmax (a rows kernel), in both dtypes */
    for (int dt = 0; dt < 2; dt++) {
        aff.kind = AFF_ROW;
        aff.softmax = true;
        aff.dt = dt ? KILN_DTYPE_F64 : KILN_DTYPE_F32;
        lowered x;
        lower_model(&x, affine_make, 16, 0, false, false);
        expect_addends(x.l, ks, 1, "bias before a softmax");
        check_addend(x.l, ks[0], true);
        ck_assert_uint_eq(ks[0]->modes, KILN_MODE_FORWARD | KILN_MODE_EVAL | KILN_MODE_GRADIENTS | KILN_MODE_TRAIN);
        lowered_free(&x);
    }
    aff.dt = KILN_DTYPE_F32;
    /* a matrix of the product's shape */
    aff.kind = AFF_MATRIX;
    lowered x;
    lower_model(&x, affine_make, 16, 0, false, false);
    expect_addends(x.l, ks, 1, "a matrix");
    check_addend(x.l, ks[0], false);
    lowered_free(&x);
    /* an MLP's last layer (its bias, then the softmax), forward only too */
    for (int fwd = 0; fwd < 2; fwd++) {
        lower_model(&x, mnist_mlp, 64, 0, fwd, false);
        expect_addends(x.l, ks, 1, "an MLP's last layer");
        check_addend(x.l, ks[0], true);
        ck_assert_int_eq(kiln_graph_cnode(kiln_program_plan(x.p)->g, ks[0]->root)->shape.dims[1], 10);
        lowered_free(&x);
    }
    /* the LSTM's step: x_t + h W (the input's share, then the state's) */
    lower_model(&x, lstm_make, 4, 5, false, false);
    const kiln_kernel_list *body = NULL;
    for (int k = 0; k < x.l->n; k++)
        if (x.l->k[k].kind == KILN_KERNEL_SCAN && !body)
            body = x.l->bodies[x.l->k[k].body]; /* the forward scan's */
    ck_assert_ptr_nonnull(body);
    expect_addends(body, ks, 1, "the LSTM's step");
    check_addend(body, ks[0], false);
    ck_assert(ks[0]->fast & KILN_FAST_OWN_NN);
    lowered_free(&x);
}
END_TEST

START_TEST(addend_epilogue_not_where_it_must_not)
{
    const kiln_kernel *ks[8];
    aff.dt = KILN_DTYPE_F32;
    aff.softmax = true;
    /* x W read twice: its value must stay */
    aff.kind = AFF_TWICE;
    lowered x;
    lower_model(&x, affine_make, 16, 0, false, false);
    expect_addends(x.l, ks, 0, "x W read twice");
    lowered_free(&x);
    /* the addend computed between the product and the add: the product,
    ** moved to the add's place in effect, would read it before it is written */
    aff.kind = AFF_LATE;
    lower_model(&x, affine_make, 16, 0, false, false);
    expect_addends(x.l, ks, 0, "the addend computed between them");
    lowered_free(&x);
    /* x W an output beside softmax(z): read after the step, by the caller */
    aff.kind = AFF_KEPT;
    affine_make(&x.n);
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "m";
    o.outputs = (kiln_node[]){x.n.out, aff_kept_y};
    o.n_outputs = 2;
    o.max_batch = 16;
    o.cost = x.n.cost;
    o.step_rule = kiln_step_scale(0.1);
    ck_assert_int_eq(kiln_compile(x.n.g, &o, &x.p), KILN_OK);
    kiln_lower_options lo = {.has_forward = true, .has_train = true};
    kiln_err err = {0};
    ck_assert_int_eq(kiln_lower(kiln_program_plan(x.p), &lo, &x.l, &err), KILN_OK);
    expect_addends(x.l, ks, 0, "x W an output");
    lowered_free(&x);
    /* a scalar addend: a broadcast other than a row */
    aff.kind = AFF_SCALAR;
    lower_model(&x, affine_make, 16, 0, false, false);
    expect_addends(x.l, ks, 0, "a scalar addend");
    lowered_free(&x);
    /* the add placed on the bytes of the product's left operand (forward
    ** only, 16-64-64: h = relu(.) is last read by h W2, and h W2 + b2 takes
    ** its bytes): the copy of b2 there would come before the product reads h */
    lower_model(&x, square_mlp, 16, 0, true, false);
    const kiln_plan *p = kiln_program_plan(x.p);
    int premise = 0;
    for (int32_t id = 0; id < p->n; id++) {
        const kiln_node_rec *r = kiln_graph_cnode(p->g, id);
        for (int side = 0; r->op == KILN_OP_ADD && !p->inline_[id] && side < 2; side++) {
            const kiln_node_rec *g = kiln_graph_cnode(p->g, r->in[side]);
            if (g->op != KILN_OP_MATMUL)
                continue;
            const kiln_buffer *ba = &p->buf[p->alias[id]], *bh = &p->buf[p->alias[g->in[0]]];
            premise += ba->zone == bh->zone && ba->z == bh->z && ba->offset == bh->offset;
        }
    }
    ck_assert_msg(premise == 1, "the plan no longer puts the add on h: this case needs another model");
    expect_addends(x.l, ks, 0, "the add over the product's operand");
    lowered_free(&x);
    /* without fast paths: none anywhere, the bodies included */
    aff.kind = AFF_ROW;
    void (*makes[3])(net *) = {affine_make, mnist_mlp, lstm_make};
    for (int m = 0; m < 3; m++) {
        lower_model(&x, makes[m], 16, m == 2 ? 5 : 0, false, true);
        expect_addends(x.l, ks, 0, "no_fast_paths");
        lowered_free(&x);
    }
}
END_TEST

/* Every parameter's gradient of p after kiln_program_gradients, into g
** (concatenated); the count. */
static int64_t all_gradients(kiln_program *p, const net *n, double *g, int64_t cap)
{
    kiln_node params[16];
    kiln_filter f = {.roles = KILN_ROLE_PARAMETER};
    int np = kiln_graph_filter(n->g, &n->cost, 1, &f, params, 16);
    ck_assert_int_gt(np, 0);
    int64_t at = 0;
    for (int i = 0; i < np; i++) {
        int64_t size = kiln_param_size(kiln_graph_node_param(n->g, params[i]));
        ck_assert_int_le(at + size, cap);
        ck_assert_int_eq(kiln_program_read_gradient(p, params[i], g + at, size), KILN_OK);
        at += size;
    }
    return at;
}

/* Programs with the epilogue (fast paths) and without (no_fast_paths):
** the same cost, output and gradients within float tolerance (the BLAS
** with beta 1 may round differently, and so does kiln's GEMM against the
** BLAS); for the affine model with z = x W + b as the output, z bit for bit
** the sum over k in order of fma from 0, then + b, where kiln's GEMM runs
** (kiln_program_product_kernel). */
START_TEST(addend_epilogue_computes_what_the_add_does)
{
    enum { B = 32, T = 5, CAP = 40000 };
    static double got[2][CAP], out[2][CAP];
    static float xs[T * B * 256], as[B * 64];
    for (int i = 0; i < T * B * 256; i++)
        xs[i] = (float)((i * 13) % 17) / 17 - 0.4f;
    for (int i = 0; i < B * 64; i++)
        as[i] = (float)((i * 5) % 11) / 7 - 0.6f;
    aff.in = 256;
    aff.out = 64;
    for (int model = 0; model < 4; model++) { /* row f32, row f64, matrix f32, the LSTM */
        aff.kind = model == 2 ? AFF_MATRIX : AFF_ROW;
        aff.dt = model == 1 ? KILN_DTYPE_F64 : KILN_DTYPE_F32;
        aff.softmax = false;
        void (*make)(net *) = model == 3 ? lstm_make : affine_make;
        net nets[2];
        kiln_program *ps[2];
        double cost[2];
        int64_t ng = 0, no = 0;
        for (int plain = 0; plain < 2; plain++) {
            make(&nets[plain]);
            ps[plain] = compile_net(&nets[plain], B, T, false, plain);
            ck_assert_ptr_nonnull(ps[plain]);
            const char *src = kiln_program_source(ps[plain]);
            ck_assert_msg((strstr(src, "added as the product is stored") != NULL) == !plain, "model %d plain %d",
                          model, plain);
            if (aff.dt == KILN_DTYPE_F64 && model == 1) {
                static double xd[B * 256];
                for (int i = 0; i < B * 256; i++)
                    xd[i] = xs[i];
                kiln_program_bind_input(ps[plain], "x", xd);
            } else {
                kiln_program_bind_input(ps[plain], "x", xs);
            }
            if (model == 2)
                kiln_program_bind_input(ps[plain], "a", as);
            if (model == 3)
                ck_assert_int_eq(kiln_program_set_size(ps[plain], KILN_TIME, T), KILN_OK);
            ck_assert_int_eq(kiln_program_gradients(ps[plain], B), KILN_OK);
            ck_assert_int_eq(kiln_program_read_scalar(ps[plain], nets[plain].cost, &cost[plain]), KILN_OK);
            ng = all_gradients(ps[plain], &nets[plain], got[plain], CAP);
            no = model == 3 ? (int64_t)T * B * 8 : (int64_t)B * 64;
            ck_assert_int_eq(kiln_program_read(ps[plain], nets[plain].out, out[plain], no), KILN_OK);
        }
        ck_assert_msg(fabs(cost[0] - cost[1]) <= 1e-5 * (1 + fabs(cost[1])), "model %d: cost %.9g vs %.9g", model,
                      cost[0], cost[1]);
        for (int64_t i = 0; i < no; i++)
            ck_assert_msg(fabs(out[0][i] - out[1][i]) <= 1e-5 * (1 + fabs(out[1][i])), "model %d: out[%lld] %.9g vs %.9g",
                          model, (long long)i, out[0][i], out[1][i]);
        for (int64_t i = 0; i < ng; i++)
            ck_assert_msg(fabs(got[0][i] - got[1][i]) <= 1e-4 * (1 + fabs(got[1][i])),
                          "model %d: gradient [%lld] %.9g vs %.9g", model, (long long)i, got[0][i], got[1][i]);
        const char *kernel = kiln_program_product_kernel(ps[0], false, B, 64, 256);
        if (model == 0 && strncmp(kernel, "kiln", 4) == 0) { /* kiln's own GEMM: the add's bits */
            kiln_node params[2];
            kiln_filter f = {.roles = KILN_ROLE_PARAMETER};
            ck_assert_int_eq(kiln_graph_filter(nets[0].g, &nets[0].cost, 1, &f, params, 2), 2);
            static double w[256 * 64], b[64];
            for (int k = 0; k < 2; k++) {
                int64_t size = kiln_param_size(kiln_graph_node_param(nets[0].g, params[k]));
                ck_assert_int_eq(kiln_program_get_param(ps[0], params[k], size == 64 ? b : w, size), KILN_OK);
            }
            for (int i = 0; i < B; i++)
                for (int j = 0; j < 64; j++) {
                    float s = 0;
                    for (int p = 0; p < 256; p++)
                        s = fmaf((float)w[p * 64 + j], xs[i * 256 + p], s);
                    float want = s + (float)b[j], have = (float)out[0][i * 64 + j];
                    ck_assert_msg(memcmp(&want, &have, sizeof want) == 0, "%s: z[%d][%d] = %a, want %a", kernel, i, j,
                                  have, want);
                }
        } else if (model == 0) {
            fprintf(stderr, "test_lower: the product runs in the BLAS here: no bit-for-bit check\n");
        }
        for (int plain = 0; plain < 2; plain++) {
            kiln_program_destroy(ps[plain]);
            net_free(&nets[plain]);
        }
    }
    aff.in = 16;
    aff.out = 24;
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
    tcase_add_test(t, elementwise_kernels_in_a_row_share_a_loop_nest);
    tcase_add_test(t, a_nest_reads_the_slices_before_it_in_place);
    tcase_add_test(t, a_nest_writes_the_concat_after_it_and_keeps_what_only_it_reads);
    tcase_add_test(t, addend_epilogue_takes_a_bias_and_the_lstm_add);
    tcase_add_test(t, addend_epilogue_not_where_it_must_not);
    tcase_add_test(t, addend_epilogue_computes_what_the_add_does);
    suite_add_tcase(s, t);
    return kiln_test_run(s);
}
