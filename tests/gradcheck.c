/* gradcheck.c: central-difference gradient checks through the real
** pipeline: the same compiled program computes the analytic gradient
** (kiln_program_gradients) and the cost at perturbed parameters
** (kiln_program_eval_step). */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void gc_fill(double *x, int64_t n, double lo, double hi, double gap, unsigned seed)
{
    uint64_t s = 0x9e3779b97f4a7c15ull * (seed + 1);
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double u = (double)(s >> 11) / 9007199254740992.0;
        double v = lo + (hi - lo) * u;
        if (gap > 0 && fabs(v) < gap)
            v = v < 0 ? v - gap : v + gap;
        x[i] = v;
    }
}

double gc_check(kiln_graph *g, kiln_node cost, const kiln_node *params, int n_params, const gc_input *in,
                int n_in, int64_t batch, double eps, char *why, size_t cap)
{
    int64_t sizes[KILN_MAX_SYMBOLS] = {batch};
    return gc_check_sizes(g, cost, params, n_params, in, n_in, sizes, eps, why, cap);
}

double gc_check_sizes(kiln_graph *g, kiln_node cost, const kiln_node *params, int n_params, const gc_input *in,
                      int n_in, const int64_t *sizes, double eps, char *why, size_t cap)
{
    kiln_compile_options o = kiln_compile_options_default();
    int64_t batch = sizes[0];
    o.name = "gradcheck";
    o.cost = cost;
    o.step_rule = kiln_step_scale(0);
    o.max_batch = batch;
    for (int k = 1; k < KILN_MAX_SYMBOLS; k++)
        o.max_size[k] = sizes[k];
    kiln_program *p = NULL;
    double worst = -1;
    if (kiln_compile(g, &o, &p) != KILN_OK) {
        snprintf(why, cap, "compile: %s", kiln_program_errmsg(p));
        goto out;
    }
    for (int k = 1; k < KILN_MAX_SYMBOLS; k++)
        if (sizes[k] && kiln_program_set_size(p, -(int64_t)k - 1, sizes[k]) != KILN_OK) {
            snprintf(why, cap, "set_size: %s", kiln_program_errmsg(p));
            goto out;
        }
    for (int i = 0; i < n_in; i++)
        if (kiln_program_bind_input(p, in[i].name, in[i].data) != KILN_OK) {
            snprintf(why, cap, "bind: %s", kiln_program_errmsg(p));
            goto out;
        }
    if (kiln_program_gradients(p, batch) != KILN_OK) {
        snprintf(why, cap, "gradients: %s", kiln_program_errmsg(p));
        goto out;
    }
    /* Read every analytic gradient before any evaluation overwrites them. */
    double *ad[GC_MAX_PARAMS] = {0};
    if (n_params > GC_MAX_PARAMS) {
        snprintf(why, cap, "at most %d parameters", GC_MAX_PARAMS);
        goto out;
    }
    for (int k = 0; k < n_params; k++) {
        kiln_param *prm = kiln_graph_node_param(g, params[k]);
        int64_t n = kiln_param_size(prm);
        ad[k] = malloc(sizeof(double) * (size_t)n);
        if (!ad[k] || kiln_program_read_gradient(p, params[k], ad[k], n)) {
            snprintf(why, cap, "reading the gradient of %s: %s", kiln_param_name(prm), kiln_program_errmsg(p));
            goto free_out;
        }
    }
    worst = 0;
    snprintf(why, cap, "ok");
    for (int k = 0; k < n_params && worst >= 0; k++) {
        kiln_param *prm = kiln_graph_node_param(g, params[k]);
        int64_t n = kiln_param_size(prm);
        double *v = malloc(sizeof(double) * (size_t)n);
        if (!v || kiln_program_get_param(p, params[k], v, n)) {
            snprintf(why, cap, "reading %s: %s", kiln_param_name(prm), kiln_program_errmsg(p));
            free(v);
            worst = -1;
            break;
        }
        for (int64_t j = 0; j < n && worst >= 0; j++) {
            double keep = v[j], f[2];
            for (int side = 0; side < 2; side++) {
                v[j] = keep + (side ? -eps : eps);
                if (kiln_program_set_param(p, params[k], v, n) || kiln_program_eval_step(p, batch) ||
                    kiln_program_read_scalar(p, cost, &f[side])) {
                    snprintf(why, cap, "eval: %s", kiln_program_errmsg(p));
                    worst = -1;
                }
            }
            v[j] = keep;
            kiln_program_set_param(p, params[k], v, n);
            if (worst < 0)
                break;
            double fd = (f[0] - f[1]) / (2 * eps);
            double err = fabs(ad[k][j] - fd) / fmax(1.0, fmax(fabs(ad[k][j]), fabs(fd)));
            if (err > worst || isnan(err)) {
                worst = isnan(err) ? INFINITY : err;
                snprintf(why, cap, "%s[%lld]: autodiff %.10g, finite difference %.10g", kiln_param_name(prm),
                         (long long)j, ad[k][j], fd);
            }
        }
        free(v);
    }
free_out:
    for (int k = 0; k < n_params; k++)
        free(ad[k]);
out:
    kiln_program_destroy(p);
    return worst;
}
