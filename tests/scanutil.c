/* scanutil.c: see scanutil.h. */
#include "scanutil.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/graph.h"
#include "compiler/passes.h"

void prog_open(prog *p, const kiln_graph *g, kiln_node cost, const kiln_node *outs, int n_outs,
               const kiln_node *wrt, int n_wrt)
{
    memset(p, 0, sizeof *p);
    ck_assert_int_le(n_outs, PROG_MAX_OUTS);
    ck_assert_int_le(n_wrt, PROG_MAX_PARAMS);
    int32_t roots[1 + PROG_MAX_OUTS + PROG_MAX_PARAMS];
    int n_roots = 0;
    roots[n_roots++] = cost.id;
    for (int k = 0; k < n_outs; k++)
        roots[n_roots++] = outs[k].id;
    for (int k = 0; k < n_wrt; k++)
        roots[n_roots++] = wrt[k].id;
    int32_t *map1 = malloc(sizeof *map1 * ((size_t)g->n_nodes + 1));
    kiln_err err = {0};
    kiln_graph *pg1 = kiln_rebuild(g, roots, n_roots, map1, &err);
    ck_assert_msg(pg1, "rebuild: %s", err.msg);
    int32_t params[PROG_MAX_PARAMS], grads[PROG_MAX_PARAMS];
    for (int k = 0; k < n_wrt; k++)
        params[k] = map1[wrt[k].id];
    if (n_wrt)
        ck_assert_msg(kiln_autodiff(pg1, map1[cost.id], params, n_wrt, grads) == KILN_OK, "autodiff: %s",
                      pg1->err.msg);
    int32_t roots2[1 + PROG_MAX_OUTS + 2 * PROG_MAX_PARAMS];
    int n2 = 0;
    for (int k = 0; k < n_roots; k++)
        roots2[n2++] = map1[roots[k]];
    for (int k = 0; k < n_wrt; k++)
        roots2[n2++] = grads[k];
    int32_t *map2 = malloc(sizeof *map2 * ((size_t)pg1->n_nodes + 1));
    p->pg = kiln_rebuild(pg1, roots2, n2, map2, &err);
    ck_assert_msg(p->pg, "rebuild 2: %s", err.msg);
    p->cost = map2[map1[cost.id]];
    p->n_outs = n_outs;
    for (int k = 0; k < n_outs; k++)
        p->outs[k] = map2[map1[outs[k].id]];
    p->n_params = n_wrt;
    for (int k = 0; k < n_wrt; k++) {
        p->params[k] = map2[params[k]];
        p->grads[k] = map2[grads[k]];
    }
    kiln_interp_program ip = {.g = p->pg, .cost = p->cost, .outputs = p->outs, .n_outputs = n_outs,
                              .grads = p->grads, .n_grads = n_wrt};
    ck_assert_msg(kiln_interp_create(&ip, &p->it) == KILN_OK, "interp: %s", kiln_interp_errmsg(p->it));
    kiln_graph_destroy(pg1);
    free(map1);
    free(map2);
}

void prog_close(prog *p)
{
    kiln_interp_destroy(p->it);
    kiln_graph_destroy(p->pg);
}

void prog_bind(prog *p, const char *name, const void *data)
{
    kiln_node in = kiln_graph_input_by_name(p->pg, name);
    ck_assert_msg(kiln_node_ok(in), "no input %s in the program", name);
    ck_assert_int_eq(kiln_interp_bind_input(p->it, in.id, data), KILN_OK);
}

void prog_run(prog *p, enum kiln_mode mode, int64_t b, int64_t t)
{
    int64_t sizes[KILN_MAX_SYMBOLS] = {b, t};
    ck_assert_msg(kiln_interp_run(p->it, mode, sizes) == KILN_OK, "run: %s", kiln_interp_errmsg(p->it));
}

void read_node(prog *p, int32_t id, double *dst, int64_t n)
{
    ck_assert_int_eq(kiln_interp_count(p->it, id), n);
    ck_assert_msg(kiln_interp_read(p->it, id, dst, n) == KILN_OK, "%s", kiln_interp_errmsg(p->it));
}

void assert_values(const double *got, const double *want, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-12 * (1 + fabs(want[i])), "%s[%lld]: %.17g, expected %.17g",
                      what, (long long)i, got[i], want[i]);
}

void fill(kiln_param *p, int64_t n, double scale, unsigned seed)
{
    double v[256];
    ck_assert_int_le(n, 256);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = scale * ((double)(seed >> 8 & 0xffff) / 65535.0 * 2 - 1);
    }
    ck_assert_int_eq(kiln_param_set_values(p, v, n), KILN_OK);
}

void check_gradient(prog *p, int k, const char *what, int64_t b, int64_t t)
{
    check_gradient_near(p, k, what, b, t, 0);
}

void check_gradient_near(prog *p, int k, const char *what, int64_t b, int64_t t, double of_cost)
{
    int32_t leaf = p->params[k];
    int64_t n = kiln_interp_count(p->it, leaf);
    ck_assert_int_gt(n, 0);
    double *v = malloc(sizeof *v * (size_t)n), *grad = malloc(sizeof *grad * (size_t)n);
    prog_run(p, KILN_MODE_GRADIENTS, b, t);
    read_node(p, p->grads[k], grad, n);
    read_node(p, leaf, v, n);
    double cost;
    read_node(p, p->cost, &cost, 1);
    double worst = 0, scale = fmax(1e-12, of_cost * fabs(cost));
    for (int64_t i = 0; i < n; i++) {
        const double h = 1e-6, keep = v[i];
        double c[2];
        for (int s = 0; s < 2; s++) {
            v[i] = keep + (s ? -h : h);
            ck_assert_int_eq(kiln_interp_set_leaf(p->it, leaf, v, n), KILN_OK);
            prog_run(p, KILN_MODE_EVAL, b, t);
            read_node(p, p->cost, &c[s], 1);
        }
        v[i] = keep;
        double fd = (c[0] - c[1]) / (2 * h);
        worst = fmax(worst, fabs(fd - grad[i]));
        scale = fmax(scale, fabs(fd));
    }
    ck_assert_int_eq(kiln_interp_set_leaf(p->it, leaf, v, n), KILN_OK);
    ck_assert_msg(worst <= 1e-7 * scale, "%s: gradient off by %.3g (scale %.3g)", what, worst, scale);
    free(v);
    free(grad);
}


int tree_params(const kiln_brick *b, kiln_param **out, int n, int cap)
{
    for (int i = 0; i < kiln_brick_param_count(b); i++) {
        ck_assert_int_lt(n, cap);
        out[n++] = kiln_brick_param(b, i);
    }
    for (int c = 0; c < kiln_brick_child_count(b); c++)
        n = tree_params(kiln_brick_child(b, c), out, n, cap);
    return n;
}

void wrt_nodes(const kiln_graph *g, kiln_param **ps, int n, kiln_node *wrt)
{
    for (int k = 0; k < n; k++) {
        wrt[k] = kiln_graph_param_node(g, ps[k]);
        ck_assert_msg(kiln_node_ok(wrt[k]), "%s is not in the graph", kiln_param_name(ps[k]));
    }
}

kiln_node weighted_sum(kiln_graph *g, kiln_node y, const char *rname)
{
    int rank = kiln_graph_node_rank(g, y);
    int64_t dims[KILN_MAX_RANK];
    for (int a = 0; a < rank; a++)
        dims[a] = kiln_graph_node_dim(g, y, a);
    kiln_node r = kiln_graph_input(g, rname, KILN_DTYPE_F64, rank, dims);
    kiln_node c = kiln_expr_sum(g, kiln_expr_mul(g, r, y), KILN_ALL_AXES);
    ck_assert_msg(kiln_node_ok(c), "%s", kiln_graph_errmsg(g));
    return c;
}

void values(double *v, int64_t n, double lo, double hi, unsigned seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = lo + (hi - lo) * ((double)(seed >> 8 & 0xffff) / 65536.0);
    }
}
