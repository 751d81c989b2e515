/* test_steprule.c: GradientDescent's step rules, built into the training
** step as updates of the IR, against an independent float64
** implementation of Blocks' formulas written here.
**
** The problem: y = tanh(x W + b) with x (4, 3) fixed, W (3, 2), b (2,), cost
** = sum((y - t)^2) / 4. The reference computes the gradient by hand, then
** the step rule's step and state, for 20 steps; kiln's program, compiled
** with the rule, runs 20 train_steps. Parameters and the rule's state must
** agree to a relative 1e-12 after every step. The rules: Scale, BasicMomentum
** (with Scale in a CompositeRule), Momentum, Adam at Blocks' defaults and at
** the usual values (beta as 1 - usual, Blocks' convention), AdaDelta,
** RMSProp, AdaGrad, StepClipping and VariableClipping (chained with Scale,
** thresholds that clip), Restrict, and brainstorm's MomentumStepper and
** NesterovStepper; a NaN step and RemoveNotFinite. Then: every
** hyperparameter is a state, set by name between steps with the reference
** switching at the same step, and checked (a bad value, at compile time or
** later, names the rule and the value); GradientDescent's total gradient
** and step norms as monitors; brainstorm's value modifiers (weights after
** the update, gradients before the rule) against float64 versions of them. */
#include <check.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <kiln/kiln.h>

#include "testutil.h"

enum { N = 4, IN = 3, OUT = 2, STEPS = 20 };

static const double X[N][IN] = {{0.5, -1.0, 0.25}, {1.5, 0.2, -0.7}, {-0.3, 0.8, 1.1}, {0.9, -0.4, 0.6}};
static const double T[N][OUT] = {{0.3, -0.2}, {-0.5, 0.4}, {0.1, 0.7}, {-0.6, -0.1}};
static const double W0[IN][OUT] = {{0.2, -0.3}, {0.4, 0.1}, {-0.5, 0.25}};
static const double B0[OUT] = {0.05, -0.1};

/* ---- the reference ------------------------------------------------------------ */

typedef struct ref {
    double w[IN * OUT], b[OUT];        /* parameters, in that order */
    double s1[IN * OUT + OUT];         /* velocity or Adam's mean, per parameter element */
    double s2[IN * OUT + OUT];         /* Adam's variance */
    double time;                       /* Adam's step counter */
    double gnorm, snorm;               /* the last step's total gradient and step norms */
} ref;

static void ref_grad(const ref *r, double *g)
{
    memset(g, 0, sizeof(double) * (IN * OUT + OUT));
    for (int i = 0; i < N; i++)
        for (int j = 0; j < OUT; j++) {
            double a = r->b[j];
            for (int k = 0; k < IN; k++)
                a += X[i][k] * r->w[k * OUT + j];
            double y = tanh(a), dy = 2 * (y - T[i][j]) / N, da = dy * (1 - y * y);
            for (int k = 0; k < IN; k++)
                g[k * OUT + j] += X[i][k] * da;
            g[IN * OUT + j] += da;
        }
}

typedef struct rule {
    enum { R_SCALE, R_MOMENTUM, R_ADAM, R_ADADELTA, R_RMSPROP, R_ADAGRAD, R_CLIP_SCALE, R_SCALE_VARCLIP, R_MSTEPPER,
           R_RESTRICT, R_NESTEROV } kind;
    double lr, mom, b1, b2, eps, decay;
    double rho, max_scaling, threshold, lr2;
    bool scaled;
    /* brainstorm's value modifiers around the rule, and the model's W and b
    ** they may name */
    const kiln_value_modifier *gmods, *wmods;
    int n_gmods, n_wmods;
    kiln_param *const *wb;
} rule;

/* Whether modifier m applies to variable var (0: W, 1: b) of the model. */
static bool mod_applies(const kiln_value_modifier *m, int var, kiln_param *const *wb)
{
    if (m->params) {
        for (int k = 0; k < m->n_params; k++)
            if (m->params[k] == wb[var])
                return true;
        return false;
    }
    return !m->pattern || fnmatch(m->pattern, var ? "b" : "W", 0) == 0;
}

/* brainstorm's modifiers mods[0..n) on v (W's values then b's), p the
** parameters (for the decays). FreezeValues without weights holds W0, B0. */
static void ref_modify(const kiln_value_modifier *mods, int n, kiln_param *const *wb, double *v, const double *p)
{
    for (int k = 0; k < n; k++) {
        const kiln_value_modifier *m = &mods[k];
        for (int var = 0; var < 2; var++) {
            if (!mod_applies(m, var, wb))
                continue;
            int lo = var ? IN * OUT : 0, hi = var ? IN * OUT + OUT : IN * OUT;
            if (m->kind == KILN_MODIFIER_CONSTRAIN_L2_NORM && var == 0) {
                /* the incoming weights of unit j: column j of W (in, out); axes 2: row j instead */
                bool rows = m->axes == 2;
                for (int j = 0; j < (rows ? IN : OUT); j++) {
                    double sq = 0;
                    for (int i = 0; i < (rows ? OUT : IN); i++)
                        sq += pow(v[rows ? j * OUT + i : i * OUT + j], 2);
                    double divisor = fmax(1, sqrt(sq) / m->limit);
                    for (int i = 0; i < (rows ? OUT : IN); i++)
                        v[rows ? j * OUT + i : i * OUT + j] /= divisor;
                }
            }
            for (int i = lo; i < hi; i++) {
                double init = var ? B0[i - lo] : (&W0[0][0])[i];
                switch (m->kind) {
                case KILN_MODIFIER_CLIP_VALUES: v[i] = fmin(fmax(v[i], m->low), m->high); break;
                case KILN_MODIFIER_MASK_VALUES: v[i] *= m->values[i - lo]; break;
                case KILN_MODIFIER_FREEZE_VALUES: v[i] = m->values ? m->values[i - lo] : init; break;
                case KILN_MODIFIER_L1_DECAY: v[i] += m->factor * (p[i] > 0 ? 1 : p[i] < 0 ? -1 : 0); break;
                case KILN_MODIFIER_L2_DECAY: v[i] += m->factor * p[i]; break;
                default: break;
                }
            }
        }
    }
}

/* The L2 norm of v[lo..hi). */
static double norm_of(const double *v, int lo, int hi)
{
    double s = 0;
    for (int i = lo; i < hi; i++)
        s += v[i] * v[i];
    return sqrt(s);
}

/* One step of Blocks' GradientDescent with rule, in float64. */
static void ref_step(ref *r, const rule *u)
{
    double g[IN * OUT + OUT], step[IN * OUT + OUT], p0[IN * OUT + OUT];
    ref_grad(r, g);
    int n = IN * OUT + OUT;
    memcpy(p0, r->w, sizeof r->w);
    memcpy(p0 + IN * OUT, r->b, sizeof r->b);
    ref_modify(u->gmods, u->n_gmods, u->wb, g, p0);
    if (u->kind == R_SCALE) {
        for (int i = 0; i < n; i++)
            step[i] = u->lr * g[i];
    } else if (u->kind == R_MOMENTUM) { /* CompositeRule([Scale(lr), BasicMomentum(mom)]) */
        for (int i = 0; i < n; i++) {
            r->s1[i] = u->mom * r->s1[i] + u->lr * g[i];
            step[i] = r->s1[i];
        }
    } else if (u->kind == R_ADAM) { /* Blocks' Adam, beta as 1 - the usual */
        double t1 = r->time + 1;
        double lr_t = u->lr * sqrt(1 - pow(1 - u->b2, t1)) / (1 - pow(1 - u->b1, t1));
        double beta_1t = 1 - (1 - u->b1) * pow(u->decay, t1 - 1);
        for (int i = 0; i < n; i++) {
            r->s1[i] = beta_1t * g[i] + (1 - beta_1t) * r->s1[i];
            r->s2[i] = u->b2 * g[i] * g[i] + (1 - u->b2) * r->s2[i];
            step[i] = lr_t * r->s1[i] / (sqrt(r->s2[i]) + u->eps);
        }
        r->time = t1;
    } else if (u->kind == R_ADADELTA) {
        for (int i = 0; i < n; i++) {
            r->s1[i] = u->rho * r->s1[i] + (1 - u->rho) * g[i] * g[i];
            double d = sqrt(r->s2[i] + u->eps) / sqrt(r->s1[i] + u->eps) * g[i];
            r->s2[i] = u->rho * r->s2[i] + (1 - u->rho) * d * d;
            step[i] = d;
        }
    } else if (u->kind == R_RMSPROP) { /* [BasicRMSProp, Scale] */
        for (int i = 0; i < n; i++) {
            r->s1[i] = u->rho * r->s1[i] + (1 - u->rho) * g[i] * g[i];
            step[i] = u->lr * (g[i] / fmax(sqrt(r->s1[i]), 1 / u->max_scaling));
        }
    } else if (u->kind == R_ADAGRAD) {
        for (int i = 0; i < n; i++) {
            r->s1[i] += g[i] * g[i];
            step[i] = u->lr * g[i] / (sqrt(r->s1[i]) + u->eps);
        }
    } else if (u->kind == R_CLIP_SCALE) { /* [StepClipping(threshold), Scale(lr)] */
        double nrm = norm_of(g, 0, n), k = nrm < u->threshold ? 1 : u->threshold / nrm;
        for (int i = 0; i < n; i++)
            step[i] = u->lr * (g[i] * k);
    } else if (u->kind == R_SCALE_VARCLIP) { /* [Scale(lr), VariableClipping(threshold)], per variable */
        double p[IN * OUT + OUT], next[IN * OUT + OUT];
        memcpy(p, r->w, sizeof r->w);
        memcpy(p + IN * OUT, r->b, sizeof r->b);
        for (int i = 0; i < n; i++) {
            step[i] = u->lr * g[i];
            next[i] = p[i] - step[i];
        }
        int lo[2] = {0, IN * OUT}, hi[2] = {IN * OUT, n};
        for (int v = 0; v < 2; v++) {
            double nrm = norm_of(next, lo[v], hi[v]);
            if (nrm > u->threshold)
                for (int i = lo[v]; i < hi[v]; i++)
                    step[i] = p[i] - u->threshold / nrm * next[i];
        }
    } else if (u->kind == R_MSTEPPER) { /* brainstorm: v = mu v - lr' g; theta += v */
        double lr = u->scaled ? u->lr * (1 - u->mom) : u->lr;
        for (int i = 0; i < n; i++) {
            r->s1[i] = u->mom * r->s1[i] - lr * g[i];
            step[i] = -r->s1[i];
        }
    } else if (u->kind == R_NESTEROV) {
        /* brainstorm's NesterovStepper, as it runs: v = mu v; theta += v (the
        ** look-ahead, where r->w and r->b are: kiln holds p = theta + mu v);
        ** g at it; v -= lr' g; theta -= lr' g. The new p is theta + mu v. */
        double lr = u->scaled ? u->lr * (1 - u->mom) : u->lr, p[IN * OUT + OUT];
        memcpy(p, r->w, sizeof r->w);
        memcpy(p + IN * OUT, r->b, sizeof r->b);
        for (int i = 0; i < n; i++) {
            r->s1[i] = u->mom * r->s1[i] - lr * g[i]; /* v = mu v; v -= lr' g */
            double theta = p[i] - lr * g[i];          /* theta (at the look-ahead) -= lr' g */
            step[i] = p[i] - (theta + u->mom * r->s1[i]);
        }
    } else { /* [Restrict(Scale(lr), [W]), Scale(lr2)] */
        for (int i = 0; i < n; i++)
            step[i] = u->lr2 * (i < IN * OUT ? u->lr * g[i] : g[i]);
    }
    r->gnorm = norm_of(g, 0, n);
    r->snorm = norm_of(step, 0, n);
    for (int i = 0; i < n; i++) /* the new values, through the weight modifiers */
        step[i] = p0[i] - step[i];
    ref_modify(u->wmods, u->n_wmods, u->wb, step, p0);
    memcpy(r->w, step, sizeof r->w);
    memcpy(r->b, step + IN * OUT, sizeof r->b);
}

/* ---- kiln ------------------------------------------------------------------------ */

typedef struct model {
    kiln_graph *g;
    kiln_param *w, *b;
    kiln_node wn, bn, cost;
    kiln_program *p;
    double x[N * IN], t[N * OUT];
} model;

static void build_with(model *m, const kiln_step_rule *sr, const kiln_compile_options *extra);

static void build(model *m, const kiln_step_rule *sr) { build_with(m, sr, NULL); }

/* The model compiled with rule sr and, from extra (NULL: none), its
** monitors and value modifiers. */
static void build_with(model *m, const kiln_step_rule *sr, const kiln_compile_options *extra)
{
    memset(m, 0, sizeof *m);
    m->g = kiln_graph_create(KILN_DTYPE_F64);
    m->w = kiln_param_create("W", 2, (int64_t[]){IN, OUT});
    m->b = kiln_param_create("b", 1, (int64_t[]){OUT});
    ck_assert_int_eq(kiln_param_set_values(m->w, &W0[0][0], IN * OUT), KILN_OK);
    ck_assert_int_eq(kiln_param_set_values(m->b, B0, OUT), KILN_OK);
    kiln_node x = kiln_graph_input(m->g, "x", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, IN});
    kiln_node t = kiln_graph_input(m->g, "t", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, OUT});
    m->wn = kiln_graph_param(m->g, m->w);
    m->bn = kiln_graph_param(m->g, m->b);
    kiln_node y = kiln_expr_tanh(m->g, kiln_expr_add(m->g, kiln_expr_matmul(m->g, x, m->wn), m->bn));
    kiln_node d = kiln_expr_sub(m->g, y, t);
    m->cost = kiln_expr_div(m->g, kiln_expr_sum(m->g, kiln_expr_square(m->g, d), KILN_ALL_AXES),
                            kiln_expr_constant(m->g, N));
    ck_assert_msg(kiln_node_ok(m->cost), "%s", kiln_graph_errmsg(m->g));
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "steprule";
    o.cost = m->cost;
    o.step_rule = *sr;
    o.max_batch = N;
    if (extra) {
        o.monitors = extra->monitors;
        o.n_monitors = extra->n_monitors;
        o.weight_modifiers = extra->weight_modifiers;
        o.n_weight_modifiers = extra->n_weight_modifiers;
        o.gradient_modifiers = extra->gradient_modifiers;
        o.n_gradient_modifiers = extra->n_gradient_modifiers;
    }
    ck_assert_msg(kiln_compile(m->g, &o, &m->p) == KILN_OK, "%s", kiln_program_errmsg(m->p));
    memcpy(m->x, X, sizeof m->x);
    memcpy(m->t, T, sizeof m->t);
    ck_assert_int_eq(kiln_program_bind_input(m->p, "x", m->x), KILN_OK);
    ck_assert_int_eq(kiln_program_bind_input(m->p, "t", m->t), KILN_OK);
}

static void destroy(model *m)
{
    kiln_program_destroy(m->p);
    kiln_graph_destroy(m->g);
    kiln_param_destroy(m->w);
    kiln_param_destroy(m->b);
}

/* got and want agree to a relative 1e-12 of the larger of them and of
** scale, the largest magnitude in their array: an element near zero after
** cancellation is judged against its array's size, not its own. */
static void close_to_in(double got, double want, double scale, const char *what, int step, int i)
{
    double err = fabs(got - want) / fmax(1e-300, fmax(scale, fmax(fabs(got), fabs(want))));
    ck_assert_msg(got == want || err <= 1e-12, "step %d, %s[%d]: kiln %.17g, reference %.17g (relative %.3g)", step,
                  what, i, got, want, err);
}

static double max_abs(const double *v, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

static void close_to(double got, double want, const char *what, int step, int i)
{
    close_to_in(got, want, 0, what, step, i);
}

/* kiln's W and b after step `step` against the reference's. */
static void check_params(const model *m, const ref *r, int step)
{
    double w[IN * OUT], b[OUT];
    ck_assert_int_eq(kiln_program_get_param(m->p, m->wn, w, IN * OUT), KILN_OK);
    ck_assert_int_eq(kiln_program_get_param(m->p, m->bn, b, OUT), KILN_OK);
    for (int i = 0; i < IN * OUT; i++)
        close_to(w[i], r->w[i], "W", step, i);
    for (int j = 0; j < OUT; j++)
        close_to(b[j], r->b[j], "b", step, j);
}

/* The index of the state named name in p, or fail. */
static int state_named(kiln_program *p, const char *name)
{
    for (int i = 0; i < kiln_program_state_count(p); i++)
        if (strcmp(kiln_program_state_name(p, i), name) == 0)
            return i;
    char all[512] = "";
    for (int i = 0; i < kiln_program_state_count(p); i++)
        snprintf(all + strlen(all), sizeof all - strlen(all), " %s", kiln_program_state_name(p, i));
    ck_abort_msg("no state named %s; the program has:%s", name, all);
    return -1;
}

/* A hyperparameter set by name between two steps. */
typedef struct change {
    const char *name;
    double value;
} change;

/* Train STEPS steps with sr in kiln and with u in the reference; before
** step CHANGE_AT + 1, kiln's hyperparameters change as changes[0..n_changes)
** say and the reference goes on with u2 (NULL: no change). Compare the
** parameters and, by name, the state slabs s1 and s2 (NULL: none). */
enum { CHANGE_AT = 10 };
static void run_rule_changing(const kiln_step_rule *sr, const rule *u, const rule *u2, const change *changes,
                              int n_changes, const char *s1, const char *s2)
{
    model m;
    kiln_compile_options extra = kiln_compile_options_default();
    extra.weight_modifiers = u->wmods;
    extra.n_weight_modifiers = u->n_wmods;
    extra.gradient_modifiers = u->gmods;
    extra.n_gradient_modifiers = u->n_gmods;
    build_with(&m, sr, &extra);
    ref r = {0};
    memcpy(r.w, W0, sizeof r.w);
    memcpy(r.b, B0, sizeof r.b);
    for (int step = 1; step <= STEPS; step++) {
        if (u2 && step == CHANGE_AT + 1)
            for (int c = 0; c < n_changes; c++)
                ck_assert_msg(kiln_program_set_hyperparameter(m.p, changes[c].name, changes[c].value) == KILN_OK,
                              "%s", kiln_program_errmsg(m.p));
        ck_assert_msg(kiln_program_train_step(m.p, N) == KILN_OK, "%s", kiln_program_errmsg(m.p));
        ref_step(&r, u2 && step > CHANGE_AT ? u2 : u);
        check_params(&m, &r, step);
        const char *names[2] = {s1, s2};
        const double *want[2] = {r.s1, r.s2};
        for (int k = 0; k < 2; k++) {
            if (!names[k])
                continue;
            char wname[64], bname[64];
            double sw[IN * OUT], sb[OUT];
            snprintf(wname, sizeof wname, "W_%s", names[k]);
            snprintf(bname, sizeof bname, "b_%s", names[k]);
            ck_assert_int_eq(kiln_program_get_state(m.p, state_named(m.p, wname), sw, IN * OUT), KILN_OK);
            ck_assert_int_eq(kiln_program_get_state(m.p, state_named(m.p, bname), sb, OUT), KILN_OK);
            for (int i = 0; i < IN * OUT; i++)
                close_to_in(sw[i], want[k][i], max_abs(want[k], IN * OUT), wname, step, i);
            for (int j = 0; j < OUT; j++)
                close_to_in(sb[j], want[k][IN * OUT + j], max_abs(want[k] + IN * OUT, OUT), bname, step, j);
        }
    }
    destroy(&m);
}

static void run_rule(const kiln_step_rule *sr, const rule *u, const char *s1, const char *s2)
{
    run_rule_changing(sr, u, NULL, NULL, 0, s1, s2);
}

START_TEST(scale_matches_the_formula)
{
    kiln_step_rule sr = kiln_step_scale(0.3);
    rule u = {.kind = R_SCALE, .lr = 0.3};
    run_rule(&sr, &u, NULL, NULL);
}
END_TEST

START_TEST(momentum_matches_the_formula)
{
    kiln_step_rule sr = kiln_step_momentum(0.2, 0.9);
    rule u = {.kind = R_MOMENTUM, .lr = 0.2, .mom = 0.9};
    run_rule(&sr, &u, "velocity", NULL);
}
END_TEST

START_TEST(composite_scale_then_basic_momentum_is_momentum)
{
    kiln_step_rule parts[2] = {kiln_step_scale(0.2), kiln_step_basic_momentum(0.5)};
    kiln_step_rule sr = kiln_step_composite(parts, 2);
    rule u = {.kind = R_MOMENTUM, .lr = 0.2, .mom = 0.5};
    run_rule(&sr, &u, "velocity", NULL);
}
END_TEST

START_TEST(adam_at_blocks_defaults_matches_the_formula)
{
    kiln_step_rule sr = kiln_step_adam_default();
    rule u = {.kind = R_ADAM, .lr = 0.002, .b1 = 0.1, .b2 = 0.001, .eps = 1e-8, .decay = 1 - 1e-8};
    run_rule(&sr, &u, "mean", "variance");
}
END_TEST

START_TEST(adam_at_the_usual_values_matches_the_formula)
{
    /* the usual beta1 = 0.9, beta2 = 0.999 are Blocks' 0.1 and 0.001; lr 0.05 moves it */
    kiln_step_rule sr = kiln_step_adam(0.05, 0.1, 0.001, 1e-8, 1);
    rule u = {.kind = R_ADAM, .lr = 0.05, .b1 = 0.1, .b2 = 0.001, .eps = 1e-8, .decay = 1};
    run_rule(&sr, &u, "mean", "variance");
}
END_TEST

START_TEST(adadelta_matches_the_formula)
{
    kiln_step_rule sr = kiln_step_adadelta(0.95, 1e-6);
    rule u = {.kind = R_ADADELTA, .rho = 0.95, .eps = 1e-6};
    run_rule(&sr, &u, "mean_square_step_tm1", "mean_square_delta_x_tm1");
}
END_TEST

START_TEST(rmsprop_matches_the_formula)
{
    /* max_scaling 20 makes the floor 1/20 bite for the small gradients */
    kiln_step_rule sr = kiln_step_rmsprop(0.01, 0.9, 20);
    rule u = {.kind = R_RMSPROP, .lr = 0.01, .rho = 0.9, .max_scaling = 20};
    run_rule(&sr, &u, "mean_square_step_tm1", NULL);
}
END_TEST

START_TEST(adagrad_matches_the_formula)
{
    kiln_step_rule sr = kiln_step_adagrad(0.1, 1e-6);
    rule u = {.kind = R_ADAGRAD, .lr = 0.1, .eps = 1e-6};
    run_rule(&sr, &u, "ssq", NULL);
}
END_TEST

START_TEST(step_clipping_then_scale_matches_the_formula)
{
    /* the gradient's norm starts near 0.8 and falls below 0.3 as it learns */
    kiln_step_rule parts[2] = {kiln_step_step_clipping(0.3), kiln_step_scale(0.5)};
    kiln_step_rule sr = kiln_step_composite(parts, 2);
    rule u = {.kind = R_CLIP_SCALE, .lr = 0.5, .threshold = 0.3};
    run_rule(&sr, &u, NULL, NULL);
}
END_TEST

START_TEST(scale_then_variable_clipping_matches_the_formula)
{
    /* W's norm is near 0.8: a threshold of 0.7 clips it, b (norm ~0.1) is left alone */
    kiln_step_rule parts[2] = {kiln_step_scale(0.5), kiln_step_variable_clipping(0.7, 0)};
    kiln_step_rule sr = kiln_step_composite(parts, 2);
    rule u = {.kind = R_SCALE_VARCLIP, .lr = 0.5, .threshold = 0.7};
    run_rule(&sr, &u, NULL, NULL);
}
END_TEST

/* brainstorm's MomentumStepper or NesterovStepper, scaled and not. */
static void stepper_matches_brainstorm(bool nesterov)
{
    for (int scaled = 0; scaled < 2; scaled++) {
        kiln_step_rule sr = nesterov ? kiln_step_nesterov_stepper(0.3, 0.8, scaled)
                                     : kiln_step_momentum_stepper(0.3, 0.8, scaled);
        rule u = {.kind = nesterov ? R_NESTEROV : R_MSTEPPER, .lr = 0.3, .mom = 0.8, .scaled = scaled};
        run_rule(&sr, &u, "velocity", NULL);
    }
}

START_TEST(momentum_stepper_matches_brainstorm)
{
    stepper_matches_brainstorm(false);
}
END_TEST

START_TEST(restrict_applies_its_rule_to_its_variables_only)
{
    model m; /* only for the store entry W, which Restrict names */
    kiln_step_rule s01 = kiln_step_scale(0.1);
    build(&m, &s01);
    kiln_param *only_w[1] = {m.w};
    kiln_step_rule inner = kiln_step_scale(0.1);
    kiln_step_rule parts[2] = {kiln_step_restrict(&inner, only_w, 1), kiln_step_scale(0.5)};
    kiln_step_rule sr = kiln_step_composite(parts, 2);
    /* recompile m's graph with the restricted rule and train it */
    kiln_program_destroy(m.p);
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = m.cost;
    o.step_rule = sr;
    o.max_batch = N;
    ck_assert_msg(kiln_compile(m.g, &o, &m.p) == KILN_OK, "%s", kiln_program_errmsg(m.p));
    kiln_program_bind_input(m.p, "x", m.x);
    kiln_program_bind_input(m.p, "t", m.t);
    rule u = {.kind = R_RESTRICT, .lr = 0.1, .lr2 = 0.5};
    ref r = {0};
    memcpy(r.w, W0, sizeof r.w);
    memcpy(r.b, B0, sizeof r.b);
    for (int step = 1; step <= STEPS; step++) {
        ck_assert_int_eq(kiln_program_train_step(m.p, N), KILN_OK);
        ref_step(&r, &u);
        double w[IN * OUT], b[OUT];
        ck_assert_int_eq(kiln_program_get_param(m.p, m.wn, w, IN * OUT), KILN_OK);
        ck_assert_int_eq(kiln_program_get_param(m.p, m.bn, b, OUT), KILN_OK);
        for (int i = 0; i < IN * OUT; i++)
            close_to(w[i], r.w[i], "W", step, i);
        for (int j = 0; j < OUT; j++)
            close_to(b[j], r.b[j], "b", step, j);
    }
    /* a variable the cost does not use is an error naming it */
    kiln_param *stranger = kiln_param_create("stranger", 1, (int64_t[]){2});
    kiln_param_set_values(stranger, (double[]){0, 0}, 2);
    parts[0] = kiln_step_restrict(&inner, &stranger, 1);
    kiln_program *q;
    o.step_rule = kiln_step_composite(parts, 2);
    ck_assert_int_eq(kiln_compile(m.g, &o, &q), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(q), "Restrict: variable 0 (stranger)"), "%s", kiln_program_errmsg(q));
    kiln_program_destroy(q);
    kiln_param_destroy(stranger);
    destroy(&m);
}
END_TEST

/* A step with a NaN: RemoveNotFinite replaces it by (1 - scaler) p, so
** with scaler 1 the parameter stays and with 0.5 it halves; the other
** parameter's finite step goes through. The NaN comes from sqrt of a
** negative parameter. */
START_TEST(remove_not_finite_replaces_a_nan_step)
{
    for (int k = 0; k < 2; k++) {
        double scaler = k ? 0.5 : 1;
        kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
        kiln_param *a = kiln_param_create("a", 1, (int64_t[]){2}), *c = kiln_param_create("c", 1, (int64_t[]){2});
        kiln_param_set_values(a, (double[]){-1, 4}, 2); /* sqrt(-1): NaN gradient */
        kiln_param_set_values(c, (double[]){1, 2}, 2);
        kiln_node an = kiln_graph_param(g, a), cn = kiln_graph_param(g, c);
        kiln_node cost = kiln_expr_add(g, kiln_expr_sum(g, kiln_expr_sqrt(g, an), KILN_ALL_AXES),
                                       kiln_expr_sum(g, kiln_expr_square(g, cn), KILN_ALL_AXES));
        kiln_step_rule parts[2] = {kiln_step_scale(0.25), kiln_step_remove_not_finite(scaler)};
        kiln_compile_options o = kiln_compile_options_default();
        o.cost = cost;
        o.step_rule = kiln_step_composite(parts, 2);
        kiln_program *p;
        ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
        ck_assert_int_eq(kiln_program_train_step(p, 1), KILN_OK);
        double av[2], cv[2];
        ck_assert_int_eq(kiln_program_get_param(p, an, av, 2), KILN_OK);
        ck_assert_int_eq(kiln_program_get_param(p, cn, cv, 2), KILN_OK);
        ck_assert_msg(av[0] == -1 * scaler && av[1] == 4 * scaler, "scaler %g: a = (%g, %g)", scaler, av[0], av[1]);
        ck_assert_double_eq(cv[0], 1 - 0.25 * 2);
        ck_assert_double_eq(cv[1], 2 - 0.25 * 4);
        kiln_program_destroy(p);
        kiln_graph_destroy(g);
        kiln_param_destroy(a);
        kiln_param_destroy(c);
    }
}
END_TEST

/* Adam's counter is a state too, and the learning rate changes without
** recompiling: set_learning_rate reaches Adam's. */
START_TEST(adam_time_counts_steps_and_learning_rate_is_a_state)
{
    kiln_step_rule sr = kiln_step_adam_default();
    model m;
    build(&m, &sr);
    for (int s = 0; s < 3; s++)
        ck_assert_int_eq(kiln_program_train_step(m.p, N), KILN_OK);
    double t, lr;
    ck_assert_int_eq(kiln_program_get_state(m.p, state_named(m.p, "/step_rule/adam.time"), &t, 1), KILN_OK);
    ck_assert_double_eq(t, 3);
    int li = state_named(m.p, "/step_rule/adam.learning_rate");
    ck_assert_int_eq(kiln_program_get_state(m.p, li, &lr, 1), KILN_OK);
    ck_assert_double_eq(lr, 0.002);
    ck_assert_int_eq(kiln_program_set_learning_rate(m.p, 0), KILN_OK);
    ck_assert_int_eq(kiln_program_get_state(m.p, li, &lr, 1), KILN_OK);
    ck_assert_double_eq(lr, 0);
    /* with lr 0 the parameters stay where they are, and the counter moves on */
    double w[IN * OUT], w2[IN * OUT];
    ck_assert_int_eq(kiln_program_get_param(m.p, m.wn, w, IN * OUT), KILN_OK);
    ck_assert_int_eq(kiln_program_train_step(m.p, N), KILN_OK);
    ck_assert_int_eq(kiln_program_get_param(m.p, m.wn, w2, IN * OUT), KILN_OK);
    ck_assert_mem_eq(w, w2, sizeof w);
    ck_assert_int_eq(kiln_program_get_state(m.p, state_named(m.p, "/step_rule/adam.time"), &t, 1), KILN_OK);
    ck_assert_double_eq(t, 4);
    destroy(&m);
}
END_TEST

START_TEST(nesterov_stepper_matches_brainstorm)
{
    stepper_matches_brainstorm(true);
}
END_TEST

/* Every rule's scalar hyperparameters are states, named as Blocks names
** its shared variables, holding the constructor's values; each reads and
** writes by name (full, or the end after a '.' or '/'). */
START_TEST(every_hyperparameter_is_a_state_named_as_blocks_names_it)
{
    kiln_step_rule clip_parts[3] = {kiln_step_step_clipping(2), kiln_step_variable_clipping(3, 0),
                                    kiln_step_remove_not_finite(0.5)};
    struct {
        kiln_step_rule rule;
        const char *names[6];
        double values[6];
    } rows[] = {
        {kiln_step_scale(0.3), {"/step_rule/scale.learning_rate"}, {0.3}},
        {kiln_step_momentum(0.2, 0.9), {"/step_rule/0_scale.learning_rate", "/step_rule/1_basic_momentum.momentum"},
         {0.2, 0.9}},
        {kiln_step_adam_default(),
         {"/step_rule/adam.learning_rate", "/step_rule/adam.beta1", "/step_rule/adam.beta2", "/step_rule/adam.epsilon",
          "/step_rule/adam.decay_factor"},
         {0.002, 0.1, 0.001, 1e-8, 1 - 1e-8}},
        {kiln_step_adadelta(0.95, 1e-6), {"/step_rule/adadelta.decay_rate", "/step_rule/adadelta.epsilon"}, {0.95, 1e-6}},
        {kiln_step_rmsprop(0.01, 0.9, 20),
         {"/step_rule/0_basic_rmsprop.decay_rate", "/step_rule/0_basic_rmsprop.max_scaling",
          "/step_rule/1_scale.learning_rate"},
         {0.9, 20, 0.01}},
        {kiln_step_adagrad(0.1, 1e-6), {"/step_rule/adagrad.learning_rate", "/step_rule/adagrad.epsilon"}, {0.1, 1e-6}},
        {kiln_step_composite(clip_parts, 3),
         {"/step_rule/0_step_clipping.threshold", "/step_rule/1_variable_clipping.threshold",
          "/step_rule/2_remove_not_finite.scaler"},
         {2, 3, 0.5}},
        {kiln_step_momentum_stepper(0.3, 0.8, true),
         {"/step_rule/momentum_stepper.learning_rate", "/step_rule/momentum_stepper.momentum"}, {0.3, 0.8}},
        {kiln_step_nesterov_stepper(0.3, 0.8, true),
         {"/step_rule/nesterov_stepper.learning_rate", "/step_rule/nesterov_stepper.momentum"}, {0.3, 0.8}},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        model m;
        build(&m, &rows[k].rule);
        for (int h = 0; h < 6 && rows[k].names[h]; h++) {
            const char *name = rows[k].names[h];
            double v = -1;
            ck_assert_msg(kiln_program_get_hyperparameter(m.p, name, &v) == KILN_OK, "row %zu: %s", k,
                          kiln_program_errmsg(m.p));
            ck_assert_msg(v == rows[k].values[h], "row %zu: %s is %.17g, expected %.17g", k, name, v,
                          rows[k].values[h]);
            /* the end of the name after its owner's '/' finds it too */
            const char *tail = strrchr(name, '/') + 1;
            ck_assert_int_eq(kiln_program_find_state(m.p, tail), state_named(m.p, name));
            ck_assert_int_eq(kiln_program_set_hyperparameter(m.p, tail, rows[k].values[h] / 2), KILN_OK);
            ck_assert_int_eq(kiln_program_get_hyperparameter(m.p, name, &v), KILN_OK);
            ck_assert_double_eq(v, rows[k].values[h] / 2);
        }
        destroy(&m);
    }
}
END_TEST

/* Hyperparameters changed by name between steps: the next steps use the new
** values (the reference switches at the same step), nothing recompiles. */
START_TEST(hyperparameters_changed_between_steps_take_effect)
{
    {
        kiln_step_rule sr = kiln_step_adadelta(0.95, 1e-6);
        rule u = {.kind = R_ADADELTA, .rho = 0.95, .eps = 1e-6}, u2 = {.kind = R_ADADELTA, .rho = 0.5, .eps = 1e-3};
        change c[] = {{"decay_rate", 0.5}, {"epsilon", 1e-3}};
        run_rule_changing(&sr, &u, &u2, c, 2, "mean_square_step_tm1", "mean_square_delta_x_tm1");
    }
    {
        kiln_step_rule sr = kiln_step_adam_default();
        rule u = {.kind = R_ADAM, .lr = 0.002, .b1 = 0.1, .b2 = 0.001, .eps = 1e-8, .decay = 1 - 1e-8};
        rule u2 = {.kind = R_ADAM, .lr = 0.01, .b1 = 0.2, .b2 = 0.01, .eps = 1e-4, .decay = 0.9};
        change c[] = {{"learning_rate", 0.01}, {"beta1", 0.2}, {"beta2", 0.01}, {"epsilon", 1e-4}, {"decay_factor", 0.9}};
        run_rule_changing(&sr, &u, &u2, c, 5, "mean", "variance");
    }
    {
        kiln_step_rule sr = kiln_step_rmsprop(0.01, 0.9, 20);
        rule u = {.kind = R_RMSPROP, .lr = 0.01, .rho = 0.9, .max_scaling = 20};
        rule u2 = {.kind = R_RMSPROP, .lr = 0.02, .rho = 0.7, .max_scaling = 5};
        change c[] = {{"learning_rate", 0.02}, {"decay_rate", 0.7}, {"max_scaling", 5}};
        run_rule_changing(&sr, &u, &u2, c, 3, "mean_square_step_tm1", NULL);
    }
    {
        kiln_step_rule sr = kiln_step_adagrad(0.1, 1e-6);
        rule u = {.kind = R_ADAGRAD, .lr = 0.1, .eps = 1e-6}, u2 = {.kind = R_ADAGRAD, .lr = 0.05, .eps = 0.5};
        change c[] = {{"learning_rate", 0.05}, {"epsilon", 0.5}};
        run_rule_changing(&sr, &u, &u2, c, 2, "ssq", NULL);
    }
    {
        kiln_step_rule sr = kiln_step_momentum_stepper(0.3, 0.8, true);
        rule u = {.kind = R_MSTEPPER, .lr = 0.3, .mom = 0.8, .scaled = true};
        rule u2 = {.kind = R_MSTEPPER, .lr = 0.1, .mom = 0.5, .scaled = true};
        change c[] = {{"learning_rate", 0.1}, {"momentum", 0.5}};
        run_rule_changing(&sr, &u, &u2, c, 2, "velocity", NULL);
    }
    {
        kiln_step_rule parts[2] = {kiln_step_step_clipping(0.3), kiln_step_scale(0.5)};
        kiln_step_rule sr = kiln_step_composite(parts, 2);
        rule u = {.kind = R_CLIP_SCALE, .lr = 0.5, .threshold = 0.3};
        rule u2 = {.kind = R_CLIP_SCALE, .lr = 0.5, .threshold = 0.05};
        change c[] = {{"threshold", 0.05}};
        run_rule_changing(&sr, &u, &u2, c, 1, NULL, NULL);
    }
    {
        kiln_step_rule parts[2] = {kiln_step_scale(0.5), kiln_step_variable_clipping(0.7, 0)};
        kiln_step_rule sr = kiln_step_composite(parts, 2);
        rule u = {.kind = R_SCALE_VARCLIP, .lr = 0.5, .threshold = 0.7};
        rule u2 = {.kind = R_SCALE_VARCLIP, .lr = 0.5, .threshold = 0.1};
        change c[] = {{"threshold", 0.1}};
        run_rule_changing(&sr, &u, &u2, c, 1, NULL, NULL);
    }
}
END_TEST

/* A bad value set at run time is an error naming the rule, the
** hyperparameter and the value, and the state keeps its value; a name that
** matches no state or several is an error naming them. */
START_TEST(bad_hyperparameters_set_at_run_time_are_errors)
{
    kiln_step_rule parts[2] = {kiln_step_adadelta(0.95, 1e-6), kiln_step_scale(0.5)};
    kiln_step_rule sr = kiln_step_composite(parts, 2);
    model m;
    build(&m, &sr);
    struct {
        const char *name;
        double value;
        const char *says;
    } rows[] = {
        {"decay_rate", 1.5, "AdaDelta: decay rate 1.5 is outside [0, 1]"},
        {"0_adadelta.decay_rate", NAN, "AdaDelta: decay rate nan is outside [0, 1]"},
        {"epsilon", -1, "AdaDelta: epsilon is -1, expected a finite value >= 0"},
        {"learning_rate", INFINITY, "Scale: learning rate is inf, expected a finite value >= 0"},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        double before, after;
        ck_assert_int_eq(kiln_program_get_hyperparameter(m.p, rows[k].name, &before), KILN_OK);
        ck_assert_int_eq(kiln_program_set_hyperparameter(m.p, rows[k].name, rows[k].value), KILN_ERR_ARG);
        ck_assert_msg(strstr(kiln_program_errmsg(m.p), rows[k].says), "row %zu: %s", k, kiln_program_errmsg(m.p));
        ck_assert_int_eq(kiln_program_get_hyperparameter(m.p, rows[k].name, &after), KILN_OK);
        ck_assert_double_eq(before, after);
    }
    /* set_state by index checks the same way */
    double bad = 2;
    ck_assert_int_eq(kiln_program_set_state(m.p, state_named(m.p, "/step_rule/0_adadelta.decay_rate"), &bad, 1),
                     KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(m.p), "/step_rule/0_adadelta.decay_rate: AdaDelta: decay rate 2"), "%s",
                  kiln_program_errmsg(m.p));
    ck_assert_int_eq(kiln_program_set_learning_rate(m.p, -1), KILN_ERR_ARG);
    /* names */
    ck_assert_int_eq(kiln_program_set_hyperparameter(m.p, "rate", 0.5), KILN_ERR_NOT_FOUND);
    ck_assert_msg(strstr(kiln_program_errmsg(m.p), "no state is named 'rate' (hyperparameters: "
                                                   "/step_rule/0_adadelta.decay_rate"),
                  "%s", kiln_program_errmsg(m.p));
    ck_assert_int_eq(kiln_program_set_hyperparameter(m.p, "W_mean_square_step_tm1", 0.5), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(m.p), "has 6 values, not one"), "%s", kiln_program_errmsg(m.p));
    destroy(&m);

    kiln_step_rule two[2] = {kiln_step_scale(0.5), kiln_step_scale(0.25)};
    kiln_step_rule sr2 = kiln_step_composite(two, 2);
    build(&m, &sr2);
    ck_assert_int_eq(kiln_program_find_state(m.p, "learning_rate"), -1);
    ck_assert_msg(strstr(kiln_program_errmsg(m.p), "state 'learning_rate' is ambiguous: "
                                                   "/step_rule/0_scale.learning_rate, /step_rule/1_scale.learning_rate"),
                  "%s", kiln_program_errmsg(m.p));
    double v;
    ck_assert_int_eq(kiln_program_get_hyperparameter(m.p, "1_scale.learning_rate", &v), KILN_OK);
    ck_assert_double_eq(v, 0.25);
    destroy(&m);
}
END_TEST

/* GradientDescent's total_gradient_norm and total_step_norm, monitored:
** computed by the training step before its update, as the reference computes
** them from the gradient and the step; the gradient norm after
** kiln_program_gradients too, neither after eval_step. With Scale alone the
** weight's update is no longer fused into its gradient product (the norm
** reads the gradient), and the parameters still follow the reference. */
START_TEST(total_gradient_and_step_norms_are_monitors)
{
    kiln_step_rule parts[2] = {kiln_step_step_clipping(0.3), kiln_step_scale(0.5)};
    kiln_step_rule rules[2] = {kiln_step_scale(0.3), kiln_step_composite(parts, 2)};
    rule refs[2] = {{.kind = R_SCALE, .lr = 0.3}, {.kind = R_CLIP_SCALE, .lr = 0.5, .threshold = 0.3}};
    kiln_node mons[3] = {KILN_NODE_NONE, KILN_TOTAL_GRADIENT_NORM, KILN_TOTAL_STEP_NORM};
    for (int k = 0; k < 2; k++) {
        kiln_compile_options extra = kiln_compile_options_default();
        extra.monitors = mons + 1;
        extra.n_monitors = 2;
        model m;
        build_with(&m, &rules[k], &extra);
        ck_assert_str_eq(kiln_program_node_name(m.p, KILN_TOTAL_GRADIENT_NORM), "total_gradient_norm");
        ck_assert_str_eq(kiln_program_node_name(m.p, KILN_TOTAL_STEP_NORM), "total_step_norm");
        ck_assert(kiln_program_has_value(m.p, KILN_TOTAL_STEP_NORM));
        ck_assert(!strstr(kiln_program_source(m.p), "fused update"));
        ref r = {0};
        memcpy(r.w, W0, sizeof r.w);
        memcpy(r.b, B0, sizeof r.b);
        for (int step = 1; step <= STEPS; step++) {
            double gn, sn, w[IN * OUT];
            ck_assert_int_eq(kiln_program_train_step(m.p, N), KILN_OK);
            ref_step(&r, &refs[k]);
            ck_assert_int_eq(kiln_program_read_scalar(m.p, KILN_TOTAL_GRADIENT_NORM, &gn), KILN_OK);
            ck_assert_int_eq(kiln_program_read_scalar(m.p, KILN_TOTAL_STEP_NORM, &sn), KILN_OK);
            close_to(gn, r.gnorm, "total_gradient_norm", step, 0);
            close_to(sn, r.snorm, "total_step_norm", step, 0);
            ck_assert_int_eq(kiln_program_get_param(m.p, m.wn, w, IN * OUT), KILN_OK);
            for (int i = 0; i < IN * OUT; i++)
                close_to(w[i], r.w[i], "W", step, i);
        }
        /* the gradients entry point: the gradient norm at the parameters as they are */
        ck_assert_int_eq(kiln_program_gradients(m.p, N), KILN_OK);
        double gn, g[IN * OUT + OUT];
        ref_grad(&r, g);
        ck_assert_int_eq(kiln_program_read_scalar(m.p, KILN_TOTAL_GRADIENT_NORM, &gn), KILN_OK);
        close_to(gn, norm_of(g, 0, IN * OUT + OUT), "total_gradient_norm after gradients", 0, 0);
        ck_assert_int_eq(kiln_program_read_scalar(m.p, KILN_TOTAL_STEP_NORM, &gn), KILN_ERR_STATE);
        ck_assert_int_eq(kiln_program_eval_step(m.p, N), KILN_OK);
        ck_assert_int_eq(kiln_program_read_scalar(m.p, KILN_TOTAL_GRADIENT_NORM, &gn), KILN_ERR_STATE);
        ck_assert_msg(strstr(kiln_program_errmsg(m.p), "'total_gradient_norm' is not computed by the last entry point"),
                      "%s", kiln_program_errmsg(m.p));
        destroy(&m);
    }
    /* not asked for: not a value of the program; no cost: an error */
    model m;
    build(&m, &rules[0]);
    ck_assert(!kiln_program_has_value(m.p, KILN_TOTAL_GRADIENT_NORM));
    ck_assert(strstr(kiln_program_source(m.p), "fused update")); /* W -= 0.3 x^T d, inside the product */
    kiln_program *q;
    kiln_compile_options o = kiln_compile_options_default();
    mons[0] = kiln_expr_square(m.g, m.cost);
    o.outputs = mons;
    o.n_outputs = 1;
    o.monitors = mons + 1;
    o.n_monitors = 1;
    ck_assert_int_eq(kiln_compile(m.g, &o, &q), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(q), "monitor total_gradient_norm: the training step computes it, and "
                                                 "there is no cost"),
                  "%s", kiln_program_errmsg(q));
    kiln_program_destroy(q);
    destroy(&m);
}
END_TEST

/* brainstorm's value modifiers, generated into the training step: weight
** modifiers on the new values after each update, gradient modifiers before
** the rule, in the order given, on the parameters they name (by list, by
** pattern, or all), against the reference's float64 versions over 20 steps.
** The models' W and b are made with kiln_param_create: their paths are "W"
** and "b". */
START_TEST(value_modifiers_match_the_reference)
{
    model h; /* only for W and b, which some modifiers name */
    kiln_step_rule s01 = kiln_step_scale(0.1);
    build(&h, &s01);
    kiln_param *wb[2] = {h.w, h.b};
    static const double W1[IN * OUT] = {0.3, -0.2, 0.05, 0.6, -0.4, 0.1};
    kiln_value_modifier clip_all[1] = {kiln_modifier_clip_values(-0.3, 0.3)};
    kiln_value_modifier norm_w[1] = {kiln_modifier_on(kiln_modifier_constrain_l2_norm(0.4, 0), "W")};
    kiln_value_modifier freeze_b[1] = {kiln_modifier_on(kiln_modifier_freeze_values(NULL, 0), "b")};
    kiln_value_modifier decays[2] = {kiln_modifier_l1_decay(0.05), kiln_modifier_on(kiln_modifier_l2_decay(0.1), "W")};
    kiln_value_modifier gclip[2] = {kiln_modifier_l2_decay(0.01), kiln_modifier_clip_values(-0.1, 0.1)};
    kiln_value_modifier wchain[2] = {kiln_modifier_clip_values(-0.45, 0.45),
                                     kiln_modifier_on(kiln_modifier_constrain_l2_norm(0.5, 2), "W")};
    kiln_value_modifier freeze_clip[2] = {kiln_modifier_on(kiln_modifier_freeze_values(W1, IN * OUT), "W"),
                                          kiln_modifier_clip_values(-0.1, 0.1)};
    struct {
        kiln_step_rule rule;
        rule u;
    } rows[] = {
        {kiln_step_scale(0.5), {.kind = R_SCALE, .lr = 0.5, .wmods = clip_all, .n_wmods = 1}},
        {kiln_step_momentum(0.2, 0.5), {.kind = R_MOMENTUM, .lr = 0.2, .mom = 0.5, .wmods = norm_w, .n_wmods = 1}},
        {kiln_step_scale(0.5), {.kind = R_SCALE, .lr = 0.5, .wmods = freeze_b, .n_wmods = 1}},
        {kiln_step_scale(0.5), {.kind = R_SCALE, .lr = 0.5, .gmods = decays, .n_gmods = 2}},
        {kiln_step_adam(0.03, 0.1, 0.001, 1e-8, 1), /* 0.05 takes b[1] from -0.1 through 0 in two steps */
         {.kind = R_ADAM, .lr = 0.03, .b1 = 0.1, .b2 = 0.001, .eps = 1e-8, .decay = 1, .gmods = gclip, .n_gmods = 2,
          .wmods = wchain, .n_wmods = 2}},
        {kiln_step_scale(0.5), {.kind = R_SCALE, .lr = 0.5, .wmods = freeze_clip, .n_wmods = 2}},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        rows[k].u.wb = wb;
        run_rule(&rows[k].rule, &rows[k].u, rows[k].u.kind == R_ADAM ? "mean" : NULL, NULL);
    }
    destroy(&h);
}
END_TEST

/* A modifier given by parameter list, and one changed between steps (its
** bounds are states): MaskValues keeps its mask as the state "W_mask". */
START_TEST(value_modifiers_by_parameter_and_their_states)
{
    static const double MASK[IN * OUT] = {1, 0, 1, 1, 0, 1};
    model h;
    kiln_step_rule sr = kiln_step_scale(0.5);
    build(&h, &sr);
    /* a program of h's own graph, so that the list names its W */
    kiln_value_modifier mods[2] = {kiln_modifier_on_params(kiln_modifier_mask_values(MASK, IN * OUT), &h.w, 1),
                                   kiln_modifier_clip_values(-0.3, 0.3)};
    kiln_value_modifier mods2[2] = {mods[0], kiln_modifier_clip_values(-0.2, 0.25)};
    kiln_param *wb[2] = {h.w, h.b};
    rule u = {.kind = R_SCALE, .lr = 0.5, .wmods = mods, .n_wmods = 2, .wb = wb};
    rule u2 = u;
    u2.wmods = mods2;
    kiln_program_destroy(h.p);
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = h.cost;
    o.step_rule = sr;
    o.max_batch = N;
    o.weight_modifiers = mods;
    o.n_weight_modifiers = 2;
    ck_assert_msg(kiln_compile(h.g, &o, &h.p) == KILN_OK, "%s", kiln_program_errmsg(h.p));
    kiln_program_bind_input(h.p, "x", h.x);
    kiln_program_bind_input(h.p, "t", h.t);
    double mask[IN * OUT];
    ck_assert_int_eq(kiln_program_get_state(h.p, state_named(h.p, "W_mask"), mask, IN * OUT), KILN_OK);
    ck_assert_mem_eq(mask, MASK, sizeof mask);
    ref r = {0};
    memcpy(r.w, W0, sizeof r.w);
    memcpy(r.b, B0, sizeof r.b);
    for (int step = 1; step <= STEPS; step++) {
        if (step == CHANGE_AT + 1) {
            ck_assert_int_eq(kiln_program_set_hyperparameter(h.p, "/weight_modifiers/1_clip_values.low", -0.2), KILN_OK);
            ck_assert_int_eq(kiln_program_set_hyperparameter(h.p, "1_clip_values.high", 0.25), KILN_OK);
        }
        ck_assert_int_eq(kiln_program_train_step(h.p, N), KILN_OK);
        ref_step(&r, step > CHANGE_AT ? &u2 : &u);
        check_params(&h, &r, step);
    }
    destroy(&h);
}
END_TEST

/* Modifiers that cannot apply are errors naming the list, the modifier and
** what is wrong. */
START_TEST(bad_value_modifiers_are_errors)
{
    static const double FIVE[5] = {1, 1, 1, 1, 1};
    struct {
        kiln_value_modifier mod;
        bool weights;
        const char *says;
    } rows[] = {
        {kiln_modifier_on(kiln_modifier_clip_values(-1, 1), "*.V"), true,
         "weight modifier 0 (ClipValues): pattern '*.V' names no parameter of the program"},
        {kiln_modifier_clip_values(1, -1), true, "weight modifier 0 (ClipValues): low 1 is not <= high -1"},
        {kiln_modifier_clip_values(-1, INFINITY), false, "ClipValues: high is inf, expected a finite value"},
        {kiln_modifier_constrain_l2_norm(0, 0), true, "ConstrainL2Norm: limit is 0, expected a finite value > 0"},
        {kiln_modifier_on(kiln_modifier_constrain_l2_norm(1, 4), "W"), true,
         "weight modifier 0 (ConstrainL2Norm): axes 0x4 outside the 2 axes of W"},
        {kiln_modifier_on(kiln_modifier_mask_values(FIVE, 5), "W"), true,
         "weight modifier 0 (MaskValues): 5 values for W, which has 6"},
        {kiln_modifier_mask_values(NULL, 0), true, "weight modifier 0 (MaskValues): the mask is NULL"},
        {kiln_modifier_l2_decay(-0.1), false, "L2Decay: factor is -0.1, expected a finite value >= 0"},
        {kiln_modifier_l1_decay(0.1), true, "weight modifier 0 (L1Decay): a gradient modifier, given as a weight modifier"},
        {kiln_modifier_freeze_values(NULL, 0), false,
         "gradient modifier 0 (FreezeValues): a weight modifier, given as a gradient modifier"},
        {kiln_modifier_of_(KILN_MODIFIER_NONE), false, "gradient modifier 0: kind 0 is no modifier"},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        model m;
        kiln_step_rule sr = kiln_step_scale(0.1);
        build(&m, &sr);
        kiln_program *q;
        kiln_compile_options o = kiln_compile_options_default();
        o.cost = m.cost;
        if (rows[k].weights) {
            o.weight_modifiers = &rows[k].mod;
            o.n_weight_modifiers = 1;
        } else {
            o.gradient_modifiers = &rows[k].mod;
            o.n_gradient_modifiers = 1;
        }
        ck_assert_int_eq(kiln_compile(m.g, &o, &q), KILN_ERR_ARG);
        ck_assert_msg(strstr(kiln_program_errmsg(q), rows[k].says), "row %zu: %s", k, kiln_program_errmsg(q));
        kiln_program_destroy(q);
        destroy(&m);
    }
}
END_TEST

/* Never train garbage (#11, deliverable 7): a parameter that was never
** given values (kiln_param_create fills NaN) or a brick allocated but not
** initialised compiles, and every step then fails naming the parameters
** until they have values (set in the program, or loaded again from the
** bricks); a NaN set later counts the same. */
START_TEST(uninitialised_parameters_are_errors_naming_them)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_param *u = kiln_param_create("u", 1, (int64_t[]){2}); /* never given values */
    kiln_brick *lin = kiln_linear_create("lin", 2, 2);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, 2}), h;
    ck_assert_int_eq(kiln_brick_apply(lin, g, x, &h), KILN_OK); /* allocates, does not initialise */
    kiln_node un = kiln_graph_param(g, u);
    kiln_node cost = kiln_expr_sum(g, kiln_expr_square(g, kiln_expr_add(g, h, un)), KILN_ALL_AXES);
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = cost;
    o.outputs = &h;
    o.n_outputs = 1;
    o.step_rule = kiln_step_scale(0.1);
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    double xv[2] = {1, 2};
    ck_assert_int_eq(kiln_program_bind_input(p, "x", xv), KILN_OK);
    ck_assert_int_eq(kiln_program_train_step(p, 1), KILN_ERR_STATE);
    ck_assert_msg(strstr(kiln_program_errmsg(p), "train_step: 3 parameters are not initialised (NaN values): "
                                                 "/lin.b, /lin.W, u;"),
                  "%s", kiln_program_errmsg(p));
    ck_assert_int_eq(kiln_program_forward(p, 1), KILN_ERR_STATE);
    ck_assert_msg(strstr(kiln_program_errmsg(p), "forward: 3 parameters"), "%s", kiln_program_errmsg(p));
    /* the brick initialised and loaded again: u is left */
    kiln_brick_set_weights_init(lin, kiln_init_constant(0.5));
    kiln_brick_set_biases_init(lin, kiln_init_constant(0));
    ck_assert_int_eq(kiln_brick_initialize(lin), KILN_OK);
    ck_assert_int_eq(kiln_program_load_params(p), KILN_OK);
    ck_assert_int_eq(kiln_program_eval_step(p, 1), KILN_ERR_STATE);
    ck_assert_msg(strstr(kiln_program_errmsg(p), "eval_step: 1 parameter is not initialised (NaN values): u;"), "%s",
                  kiln_program_errmsg(p));
    /* set in the program: the steps run; a NaN set again stops them */
    ck_assert_int_eq(kiln_program_set_param(p, un, (double[]){0.25, -1}, 2), KILN_OK);
    ck_assert_msg(kiln_program_train_step(p, 1) == KILN_OK, "%s", kiln_program_errmsg(p));
    ck_assert_int_eq(kiln_program_set_param(p, un, (double[]){0.25, NAN}, 2), KILN_OK);
    ck_assert_int_eq(kiln_program_gradients(p, 1), KILN_ERR_STATE);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_brick_destroy(lin);
    kiln_param_destroy(u);
}
END_TEST

START_TEST(bad_rules_are_errors_naming_the_rule)
{
    struct {
        kiln_step_rule rule;
        const char *says;
    } rows[] = {
        {kiln_step_adam(NAN, 0.1, 0.001, 1e-8, 1), "Adam"},
        {kiln_step_scale(INFINITY), "Scale"},
        {kiln_step_composite(NULL, 0), "CompositeRule"},
        {kiln_step_adadelta(1.5, 1e-6), "AdaDelta: decay rate 1.5 is outside [0, 1]"},
        {kiln_step_adadelta(-0.1, 1e-6), "AdaDelta: decay rate -0.1 is outside [0, 1]"},
        {kiln_step_basic_rmsprop(0.9, 0), "BasicRMSProp: max_scaling is 0"},
        {kiln_step_step_clipping(0), "StepClipping: threshold is 0"},
        {kiln_step_variable_clipping(-1, 0), "VariableClipping: threshold is -1"},
        {kiln_step_variable_clipping(1, 4), "VariableClipping: axes 0x4 outside the 1 axes of W"},
        {kiln_step_adagrad(0.1, -1), "AdaGrad: epsilon is -1"},
        {kiln_step_scale(-0.1), "Scale: learning rate is -0.1, expected a finite value >= 0"},
        {kiln_step_basic_momentum(1.5), "BasicMomentum: momentum 1.5 is outside [0, 1]"},
        {kiln_step_momentum(0.1, NAN), "BasicMomentum: momentum nan is outside [0, 1]"},
        {kiln_step_adam(0.1, 1.5, 0.001, 1e-8, 1), "Adam: beta1 1.5 is outside [0, 1]"},
        {kiln_step_adam(0.1, 0.1, -1, 1e-8, 1), "Adam: beta2 -1 is outside [0, 1]"},
        {kiln_step_adam(0.1, 0.1, 0.001, -1e-8, 1), "Adam: epsilon is -1e-08, expected a finite value >= 0"},
        {kiln_step_adam(0.1, 0.1, 0.001, 1e-8, 2), "Adam: decay factor 2 is outside [0, 1]"},
        {kiln_step_adadelta(0.95, INFINITY), "AdaDelta: epsilon is inf"},
        {kiln_step_basic_rmsprop(2, 1e5), "BasicRMSProp: decay rate 2 is outside [0, 1]"},
        {kiln_step_rmsprop(-1, 0.9, 1e5), "Scale: learning rate is -1"},
        {kiln_step_adagrad(-1, 1e-6), "AdaGrad: learning rate is -1"},
        {kiln_step_remove_not_finite(2), "RemoveNotFinite: scaler 2 is outside [0, 1]"},
        {kiln_step_momentum_stepper(NAN, 0.5, true), "MomentumStepper: learning rate is nan"},
        {kiln_step_momentum_stepper(0.1, 1.5, true), "MomentumStepper: momentum 1.5 is outside [0, 1]"},
        {kiln_step_nesterov_stepper(0.1, -0.5, false), "NesterovStepper: momentum -0.5 is outside [0, 1]"},
        {kiln_step_rule_of_(KILN_STEP_NONE), "step rule: none given (kind KILN_STEP_NONE: a zeroed kiln_step_rule "
                                             "has no learning rate)"},
    };
    kiln_step_rule inner = kiln_step_composite(NULL, 0);
    kiln_step_rule nested = kiln_step_composite(&inner, 1);
    size_t n_rows = sizeof rows / sizeof rows[0];
    for (size_t i = 0; i < n_rows + 1; i++) {
        const kiln_step_rule *sr = i < n_rows ? &rows[i].rule : &nested;
        model m;
        memset(&m, 0, sizeof m);
        m.g = kiln_graph_create(KILN_DTYPE_F64);
        m.w = kiln_param_create("W", 1, (int64_t[]){2});
        kiln_param_set_values(m.w, (double[]){1, 2}, 2);
        kiln_node c = kiln_expr_sum(m.g, kiln_expr_square(m.g, kiln_graph_param(m.g, m.w)), KILN_ALL_AXES);
        kiln_compile_options o = kiln_compile_options_default();
        o.cost = c;
        o.step_rule = *sr;
        ck_assert_int_ne(kiln_compile(m.g, &o, &m.p), KILN_OK);
        ck_assert_msg(strstr(kiln_program_errmsg(m.p), i < n_rows ? rows[i].says : "CompositeRule"), "row %zu: %s", i,
                      kiln_program_errmsg(m.p));
        destroy(&m);
    }
}
END_TEST

/* A graph's own update runs at the end of each train_step, not in the other
** entry points; a state that nothing reads, not even its update, still has
** storage (it had none, and codegen failed: "a node this emitter cannot
** place"). */
START_TEST(regress_8_a_state_only_its_update_reads_has_storage)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_param *w = kiln_param_create("w", 1, (int64_t[]){2});
    kiln_param *count = kiln_state_create("count", 0, NULL), *last = kiln_state_create("last_cost", 0, NULL);
    ck_assert_ptr_nonnull(count);
    kiln_param_set_values(w, (double[]){1, -2}, 2);
    kiln_node wn = kiln_graph_param(g, w), cn = kiln_graph_param(g, count);
    kiln_node cost = kiln_expr_sum(g, kiln_expr_square(g, wn), KILN_ALL_AXES);
    ck_assert_int_eq(kiln_graph_update(g, cn, kiln_expr_add(g, cn, kiln_expr_constant(g, 1))), KILN_OK);
    ck_assert_int_eq(kiln_graph_update(g, kiln_graph_param(g, last), cost), KILN_OK); /* reads no state */
    /* at most one update per target */
    ck_assert_int_eq(kiln_graph_update(g, cn, cn), KILN_ERR_ARG);
    kiln_graph_clear_error(g);
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = cost;
    o.step_rule = kiln_step_scale(0.25);
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    for (int s = 0; s < 3; s++) {
        ck_assert_int_eq(kiln_program_train_step(p, 1), KILN_OK);
        ck_assert_int_eq(kiln_program_eval_step(p, 1), KILN_OK);
        ck_assert_int_eq(kiln_program_gradients(p, 1), KILN_OK);
    }
    double c = -1, lc = -1;
    ck_assert_int_eq(kiln_program_get_state(p, state_named(p, "count"), &c, 1), KILN_OK);
    ck_assert_double_eq(c, 3); /* train_step only */
    /* w = (1, -2) * 0.5^s after s steps of w -= 0.25 * 2w: the third step's cost is 5 / 16 */
    ck_assert_int_eq(kiln_program_get_state(p, state_named(p, "last_cost"), &lc, 1), KILN_OK);
    ck_assert_double_eq(lc, 5.0 / 16);
    ck_assert_int_eq(kiln_program_store_params(p), KILN_OK);
    ck_assert_int_eq(kiln_param_get_values(count, &c, 1), KILN_OK);
    ck_assert_double_eq(c, 3);
    kiln_program_destroy(p);
    /* a parameter with a graph update and the step rule's is an error */
    ck_assert_int_eq(kiln_graph_update(g, wn, kiln_expr_mul(g, wn, kiln_expr_constant(g, 0.5))), KILN_OK);
    ck_assert_int_eq(kiln_compile(g, &o, &p), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(p), "w has an update in the graph and one from the step rule"), "%s",
                  kiln_program_errmsg(p));
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_param_destroy(w);
    kiln_param_destroy(count);
    kiln_param_destroy(last);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("steprule");
    TCase *t = tcase_create("steprule");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, scale_matches_the_formula);
    tcase_add_test(t, momentum_matches_the_formula);
    tcase_add_test(t, composite_scale_then_basic_momentum_is_momentum);
    tcase_add_test(t, adam_at_blocks_defaults_matches_the_formula);
    tcase_add_test(t, adam_at_the_usual_values_matches_the_formula);
    tcase_add_test(t, adadelta_matches_the_formula);
    tcase_add_test(t, rmsprop_matches_the_formula);
    tcase_add_test(t, adagrad_matches_the_formula);
    tcase_add_test(t, step_clipping_then_scale_matches_the_formula);
    tcase_add_test(t, scale_then_variable_clipping_matches_the_formula);
    tcase_add_test(t, momentum_stepper_matches_brainstorm);
    tcase_add_test(t, restrict_applies_its_rule_to_its_variables_only);
    tcase_add_test(t, remove_not_finite_replaces_a_nan_step);
    tcase_add_test(t, adam_time_counts_steps_and_learning_rate_is_a_state);
    tcase_add_test(t, nesterov_stepper_matches_brainstorm);
    tcase_add_test(t, every_hyperparameter_is_a_state_named_as_blocks_names_it);
    tcase_add_test(t, hyperparameters_changed_between_steps_take_effect);
    tcase_add_test(t, bad_hyperparameters_set_at_run_time_are_errors);
    tcase_add_test(t, total_gradient_and_step_norms_are_monitors);
    tcase_add_test(t, value_modifiers_match_the_reference);
    tcase_add_test(t, value_modifiers_by_parameter_and_their_states);
    tcase_add_test(t, bad_value_modifiers_are_errors);
    tcase_add_test(t, uninitialised_parameters_are_errors_naming_them);
    tcase_add_test(t, bad_rules_are_errors_naming_the_rule);
    tcase_add_test(t, regress_8_a_state_only_its_update_reads_has_storage);
    suite_add_tcase(s, t);
    return kiln_test_run(s);
}
