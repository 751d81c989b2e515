/* steprule.c: GradientDescent's step rules, written as IR.
**
** Blocks computes, for each parameter p with gradient g, a step by passing
** g through the rule (a CompositeRule through each component in turn) and
** then updates p -= step; a rule may keep state (a velocity), updated in the
** same step from the old values. Here each rule builds the step with the
** expression builders on the program graph and registers its state's
** updates; kiln_steprule_build adds the final (p, new value) pairs. State
** lives in store entries the program owns: one per parameter for a
** per-parameter buffer (a slab in parameter order: kiln_store_set_like),
** one scalar for a hyperparameter or a counter.
**
** Every scalar hyperparameter is such a scalar state, never a constant, so
** that it changes between steps without recompiling (Blocks keeps them in
** shared variables for the same reason); each is listed in out->hypers
** with the values it may take, which the program checks whenever one is
** set. Derived scalars (1 - rho, the floor 1 / max_scaling) are rank-0
** nodes computed once per step.
**
** Around the rule, in this order: brainstorm's gradient modifiers on each
** gradient (L1/L2 decay, ...), the total gradient norm, the rule, the total
** step norm, the new value p - step, brainstorm's weight modifiers on it
** (clipping, max-norm, mask, freeze). The norms are Blocks'
** GradientDescent.total_gradient_norm and total_step_norm, computed before
** the update like every value of the step.
**
** Scale's update p - lr * g, with g a weight's gradient product, is what
** codegen lowers into the product itself; every other rule is plain
** elementwise kernels. Formulas and defaults are Blocks' and brainstorm's
** (see compile.h). */
#include "compiler/steprule.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/store.h"

typedef struct builder {
    kiln_graph *g;
    kiln_steprule_out *out;
    const int32_t *params;
    int n;
    kiln_err *err;
    int slab;          /* per-parameter slabs made so far */
    bool *active;      /* which parameters the rule being built applies to (Restrict) */
    char where[32];    /* the rule's position inside composites: "1", "1.0" */
    char owner[80];    /* "/step_rule/<where>_<rule>" for the rule being built */
} builder;

static enum kiln_status fail_graph(builder *b, const char *what)
{
    if (b->g->err.status)
        return kiln_err_copy(b->err, &b->g->err, what);
    return kiln_err_set(b->err, KILN_ERR_NOMEM, "%sno memory", what);
}

/* A store entry the program owns, its leaf in g; values (NULL: fill) are
** copied into it. */
static kiln_node new_state(builder *b, const char *name, const char *owner, int rank, const int64_t *dims,
                           double fill, kiln_param *like, const double *values)
{
    kiln_steprule_out *o = b->out;
    if (o->n_owned == o->cap_owned) {
        int cap = o->cap_owned ? o->cap_owned * 2 : 16;
        kiln_param **s = realloc(o->owned, (size_t)cap * sizeof *s);
        if (!s)
            return KILN_NODE_NONE;
        o->owned = s;
        o->cap_owned = cap;
    }
    kiln_param *p = kiln_store_new(KILN_STORE_STATE, name, KILN_DTYPE_F64, rank, dims, fill);
    if (!p)
        return KILN_NODE_NONE;
    kiln_store_hold(p);
    o->owned[o->n_owned++] = p;
    if (!kiln_store_set_owner(p, owner))
        return KILN_NODE_NONE;
    kiln_store_set_roles(p, KILN_ROLE_ALGORITHM_STATE);
    if (like)
        kiln_store_set_like(p, like, b->slab);
    if (values)
        memcpy(kiln_param_data(p), values, (size_t)kiln_param_size(p) * sizeof(double));
    return kiln_graph_store_leaf(b->g, p);
}

static kiln_node scalar_state(builder *b, const char *name, double value)
{
    return new_state(b, name, b->owner, 0, NULL, value, NULL, NULL);
}

/* A state shaped like parameter i, in the current slab, zeros or values. */
static kiln_node param_state(builder *b, int i, const char *what, const double *values)
{
    const kiln_node_rec *pr = kiln_graph_cnode(b->g, b->params[i]);
    char name[KILN_MAX_NAME + 1];
    if (kiln_snprintf(name, sizeof name, "%s_%s", pr->name ? pr->name : "param", what) != 0)
        return KILN_NODE_NONE;
    return new_state(b, name, pr->owner ? pr->owner : "", pr->shape.rank, pr->shape.dims, 0, pr->param, values);
}

enum kiln_status kiln_steprule_check(const kiln_steprule_hyper *h, double v, kiln_err *err)
{
    bool lo_ok = h->lo_open ? v > h->lo : v >= h->lo;
    if (isfinite(v) && lo_ok && v <= h->hi)
        return KILN_OK;
    if (isfinite(h->hi) && isfinite(h->lo))
        return kiln_err_set(err, KILN_ERR_ARG, "%s: %s %g is outside %c%g, %g]", h->rule, h->what, v,
                            h->lo_open ? '(' : '[', h->lo, h->hi);
    if (isfinite(h->lo))
        return kiln_err_set(err, KILN_ERR_ARG, "%s: %s is %g, expected a finite value %s %g", h->rule, h->what, v,
                            h->lo_open ? ">" : ">=", h->lo);
    return kiln_err_set(err, KILN_ERR_ARG, "%s: %s is %g, expected a finite value", h->rule, h->what, v);
}

/* A scalar hyperparameter state of the rule being built (named name in
** b->owner), checked against [lo, hi] (lo excluded when lo_open) and
** listed in out->hypers. NONE with b->err set on failure. */
static kiln_node hyper(builder *b, const char *rule, const char *what, const char *name, double v, double lo,
                       double hi, bool lo_open)
{
    kiln_steprule_hyper h = {.lo = lo, .hi = hi, .lo_open = lo_open};
    snprintf(h.rule, sizeof h.rule, "%s", rule);
    snprintf(h.what, sizeof h.what, "%s", what);
    if (kiln_steprule_check(&h, v, b->err))
        return KILN_NODE_NONE;
    kiln_steprule_out *o = b->out;
    kiln_node n = scalar_state(b, name, v);
    if (kiln_node_ok(n) && o->n_hypers == o->cap_hypers) {
        int cap = o->cap_hypers ? o->cap_hypers * 2 : 8;
        kiln_steprule_hyper *t = realloc(o->hypers, (size_t)cap * sizeof *t);
        if (!t)
            n = KILN_NODE_NONE;
        else {
            o->hypers = t;
            o->cap_hypers = cap;
        }
    }
    if (!kiln_node_ok(n)) {
        char what_failed[64];
        snprintf(what_failed, sizeof what_failed, "%s: ", rule);
        fail_graph(b, what_failed);
        return KILN_NODE_NONE;
    }
    h.node = n.id;
    o->hypers[o->n_hypers++] = h;
    return n;
}

/* The learning rate of rule `rule` (>= 0), also the program's first one. */
static kiln_node learning_rate(builder *b, const char *rule, double v)
{
    kiln_node lr = hyper(b, rule, "learning rate", "learning_rate", v, 0, INFINITY, false);
    if (kiln_node_ok(lr) && b->out->learning_rate < 0)
        b->out->learning_rate = lr.id;
    return lr;
}

/* A hyperparameter in [0, 1]. */
static kiln_node unit_hyper(builder *b, const char *rule, const char *what, const char *name, double v)
{
    return hyper(b, rule, what, name, v, 0, 1, false);
}

static enum kiln_status add_update(builder *b, kiln_node target, kiln_node value)
{
    kiln_steprule_out *o = b->out;
    if (!kiln_node_ok(target) || !kiln_node_ok(value))
        return fail_graph(b, "step rule: ");
    if (o->n_updates == o->cap_updates) {
        int cap = o->cap_updates ? o->cap_updates * 2 : 16;
        kiln_update *u = realloc(o->updates, (size_t)cap * sizeof *u);
        if (!u)
            return kiln_err_set(b->err, KILN_ERR_NOMEM, "step rule: no memory");
        o->updates = u;
        o->cap_updates = cap;
    }
    o->updates[o->n_updates++] = (kiln_update){target.id, value.id, false};
    return KILN_OK;
}

/* The owner path of the rule being built: "/step_rule/adam", or, inside
** composites, its position: "/step_rule/1_adam", "/step_rule/1.0_scale". */
static void set_owner(builder *b, const char *rule)
{
    snprintf(b->owner, sizeof b->owner, "/step_rule/%s%s%s", b->where, b->where[0] ? "_" : "", rule);
}

static kiln_node cst(builder *b, double v) { return kiln_expr_constant(b->g, v); }

/* sqrt(sum of squares of every active value): a scalar. */
static kiln_node steps_norm(builder *b, const kiln_node *steps)
{
    kiln_graph *g = b->g;
    kiln_node sum = KILN_NODE_NONE;
    for (int i = 0; i < b->n; i++) {
        if (!b->active[i])
            continue;
        kiln_node sq = kiln_expr_sum(g, kiln_expr_square(g, steps[i]), KILN_ALL_AXES);
        sum = kiln_node_ok(sum) ? kiln_expr_add(g, sum, sq) : sq;
    }
    return kiln_node_ok(sum) ? kiln_expr_sqrt(g, sum) : cst(b, 0);
}

/* The L2 norm of x (shaped like parameter i) over the axes in the mask
** axes, kept as size-1 axes so that it broadcasts back against x. */
static kiln_node norm_keep(builder *b, int i, kiln_node x, unsigned axes)
{
    kiln_graph *g = b->g;
    kiln_node n = kiln_expr_sqrt(g, kiln_expr_sum_axes(g, kiln_expr_square(g, x), axes));
    kiln_shape keep = kiln_graph_cnode(g, b->params[i])->shape;
    for (int k = 0; k < keep.rank; k++)
        if (axes >> k & 1)
            keep.dims[k] = 1;
    return kiln_expr_reshape_shape(g, n, &keep);
}

/* The path of parameter i as messages and patterns see it: "<owner>.<name>". */
static void param_path(builder *b, int i, char *dst, size_t cap)
{
    const kiln_param *p = kiln_graph_cnode(b->g, b->params[i])->param;
    const char *owner = kiln_param_owner(p);
    snprintf(dst, cap, "%s%s%s", owner, *owner ? "." : "", kiln_param_name(p));
}

static enum kiln_status apply_rule(builder *b, const kiln_step_rule *r, int depth, kiln_node *steps);

/* CompositeRule: each component in turn, positions in their owner paths. */
static enum kiln_status apply_composite(builder *b, const kiln_step_rule *r, int depth, kiln_node *steps)
{
    if (r->n_components < 1 || r->n_components > 8 || !r->components)
        return kiln_err_set(b->err, KILN_ERR_ARG, "CompositeRule: %d components, expected 1 to 8", r->n_components);
    if (depth >= 4)
        return kiln_err_set(b->err, KILN_ERR_UNSUPPORTED, "CompositeRule: nested more than 4 deep");
    char saved[sizeof b->where];
    memcpy(saved, b->where, sizeof saved);
    for (int k = 0; k < r->n_components; k++) {
        snprintf(b->where, sizeof b->where, "%s%s%d", saved, saved[0] ? "." : "", k);
        enum kiln_status s = apply_rule(b, &r->components[k], depth + 1, steps);
        if (s)
            return s;
    }
    memcpy(b->where, saved, sizeof saved);
    return KILN_OK;
}

/* Restrict(rule, variables): rule on the listed parameters only. */
static enum kiln_status apply_restrict(builder *b, const kiln_step_rule *r, int depth, kiln_node *steps)
{
    if (!r->components || r->n_components != 1 || r->n_variables < 0 || (r->n_variables && !r->variables))
        return kiln_err_set(b->err, KILN_ERR_ARG, "Restrict: needs one rule and a list of variables");
    if (depth >= 4)
        return kiln_err_set(b->err, KILN_ERR_UNSUPPORTED, "Restrict: nested more than 4 deep");
    bool *outer = b->active, *inner = calloc((size_t)b->n + 1, sizeof *inner);
    if (!inner)
        return kiln_err_set(b->err, KILN_ERR_NOMEM, "Restrict: no memory");
    for (int v = 0; v < r->n_variables; v++) {
        bool found = false;
        for (int i = 0; i < b->n; i++)
            if (kiln_graph_cnode(b->g, b->params[i])->param == r->variables[v]) {
                inner[i] = outer[i];
                found = true;
            }
        if (!found) {
            free(inner);
            return kiln_err_set(b->err, KILN_ERR_ARG, "Restrict: variable %d (%s) is not a parameter the cost uses", v,
                                r->variables[v] ? kiln_param_name(r->variables[v]) : "NULL");
        }
    }
    b->active = inner;
    enum kiln_status s = apply_rule(b, &r->components[0], depth + 1, steps);
    b->active = outer;
    free(inner);
    return s;
}

/* brainstorm's MomentumStepper and NesterovStepper (compile.h): v' =
** momentum v - lr' g; the step is -v', or, for Nesterov, momentum v - (1 +
** momentum) v' (the parameter kept at the look-ahead point). */
static enum kiln_status apply_stepper(builder *b, const kiln_step_rule *r, bool nesterov, kiln_node *steps)
{
    kiln_graph *g = b->g;
    const char *rule = nesterov ? "NesterovStepper" : "MomentumStepper";
    set_owner(b, nesterov ? "nesterov_stepper" : "momentum_stepper");
    kiln_node lr = learning_rate(b, rule, r->learning_rate);
    kiln_node mu = kiln_node_ok(lr) ? unit_hyper(b, rule, "momentum", "momentum", r->momentum) : KILN_NODE_NONE;
    if (!kiln_node_ok(mu))
        return b->err->status;
    kiln_node one = cst(b, 1);
    kiln_node lr2 = r->scale_learning_rate ? kiln_expr_mul(g, lr, kiln_expr_sub(g, one, mu)) : lr;
    b->slab++;
    for (int i = 0; i < b->n; i++) {
        if (!b->active[i])
            continue;
        kiln_node v = param_state(b, i, "velocity", NULL);
        kiln_node v2 = kiln_expr_sub(g, kiln_expr_mul(g, mu, v), kiln_expr_mul(g, lr2, steps[i]));
        enum kiln_status s = add_update(b, v, v2);
        if (s)
            return s;
        steps[i] = nesterov ? kiln_expr_sub(g, kiln_expr_mul(g, mu, v), kiln_expr_mul(g, kiln_expr_add(g, one, mu), v2))
                            : kiln_expr_neg(g, v2);
    }
    return KILN_OK;
}

/* Pass the active steps[] through rule r. */
static enum kiln_status apply_rule(builder *b, const kiln_step_rule *r, int depth, kiln_node *steps)
{
    kiln_graph *g = b->g;
    enum kiln_status s;
    kiln_node one = cst(b, 1);
    switch (r->kind) {
    case KILN_STEP_NONE:
        return kiln_err_set(b->err, KILN_ERR_ARG,
                            "step rule: none given (kind KILN_STEP_NONE: a zeroed kiln_step_rule has no learning "
                            "rate); make one with a constructor, such as kiln_step_scale(lr) or "
                            "kiln_step_adam_default()");
    case KILN_STEP_SCALE: {
        set_owner(b, "scale");
        kiln_node lr = learning_rate(b, "Scale", r->learning_rate);
        if (!kiln_node_ok(lr))
            return b->err->status;
        for (int i = 0; i < b->n; i++)
            if (b->active[i])
                steps[i] = kiln_expr_mul(g, lr, steps[i]);
        return KILN_OK;
    }
    case KILN_STEP_BASIC_MOMENTUM: {
        set_owner(b, "basic_momentum");
        kiln_node mu = unit_hyper(b, "BasicMomentum", "momentum", "momentum", r->momentum);
        if (!kiln_node_ok(mu))
            return b->err->status;
        b->slab++;
        for (int i = 0; i < b->n; i++) {
            if (!b->active[i])
                continue;
            kiln_node v = param_state(b, i, "velocity", NULL);
            kiln_node v2 = kiln_expr_add(g, kiln_expr_mul(g, mu, v), steps[i]);
            if ((s = add_update(b, v, v2)))
                return s;
            steps[i] = v2;
        }
        return KILN_OK;
    }
    case KILN_STEP_MOMENTUM: {
        kiln_step_rule parts[2] = {kiln_step_scale(r->learning_rate), kiln_step_basic_momentum(r->momentum)};
        kiln_step_rule both = kiln_step_composite(parts, 2);
        return apply_composite(b, &both, depth, steps);
    }
    case KILN_STEP_RMSPROP: {
        kiln_step_rule parts[2] = {kiln_step_basic_rmsprop(r->decay_rate, r->max_scaling),
                                   kiln_step_scale(r->learning_rate)};
        kiln_step_rule both = kiln_step_composite(parts, 2);
        return apply_composite(b, &both, depth, steps);
    }
    case KILN_STEP_ADADELTA: {
        set_owner(b, "adadelta");
        kiln_node rho = unit_hyper(b, "AdaDelta", "decay rate", "decay_rate", r->decay_rate);
        kiln_node eps = kiln_node_ok(rho) ? hyper(b, "AdaDelta", "epsilon", "epsilon", r->epsilon, 0, INFINITY, false)
                                          : KILN_NODE_NONE;
        if (!kiln_node_ok(eps))
            return b->err->status;
        kiln_node nrho = kiln_expr_sub(g, one, rho);
        int slab_g = ++b->slab, slab_d = ++b->slab;
        for (int i = 0; i < b->n; i++) {
            if (!b->active[i])
                continue;
            b->slab = slab_g;
            kiln_node eg = param_state(b, i, "mean_square_step_tm1", NULL);
            b->slab = slab_d;
            kiln_node ed = param_state(b, i, "mean_square_delta_x_tm1", NULL);
            kiln_node eg2 = kiln_expr_add(g, kiln_expr_mul(g, rho, eg), kiln_expr_mul(g, nrho, kiln_expr_square(g, steps[i])));
            kiln_node d = kiln_expr_mul(g, kiln_expr_div(g, kiln_expr_sqrt(g, kiln_expr_add(g, ed, eps)),
                                                         kiln_expr_sqrt(g, kiln_expr_add(g, eg2, eps))),
                                        steps[i]);
            kiln_node ed2 = kiln_expr_add(g, kiln_expr_mul(g, rho, ed), kiln_expr_mul(g, nrho, kiln_expr_square(g, d)));
            if ((s = add_update(b, eg, eg2)) || (s = add_update(b, ed, ed2)))
                return s;
            steps[i] = d;
        }
        return KILN_OK;
    }
    case KILN_STEP_BASIC_RMSPROP: {
        set_owner(b, "basic_rmsprop");
        kiln_node rho = unit_hyper(b, "BasicRMSProp", "decay rate", "decay_rate", r->decay_rate);
        kiln_node ms = kiln_node_ok(rho) ? hyper(b, "BasicRMSProp", "max_scaling", "max_scaling", r->max_scaling, 0,
                                                 INFINITY, true)
                                         : KILN_NODE_NONE;
        if (!kiln_node_ok(ms))
            return b->err->status;
        kiln_node nrho = kiln_expr_sub(g, one, rho), floor = kiln_expr_div(g, one, ms);
        b->slab++;
        for (int i = 0; i < b->n; i++) {
            if (!b->active[i])
                continue;
            kiln_node m = param_state(b, i, "mean_square_step_tm1", NULL);
            kiln_node m2 = kiln_expr_add(g, kiln_expr_mul(g, rho, m), kiln_expr_mul(g, nrho, kiln_expr_square(g, steps[i])));
            if ((s = add_update(b, m, m2)))
                return s;
            steps[i] = kiln_expr_div(g, steps[i], kiln_expr_maximum(g, kiln_expr_sqrt(g, m2), floor));
        }
        return KILN_OK;
    }
    case KILN_STEP_ADAGRAD: {
        set_owner(b, "adagrad");
        kiln_node lr = learning_rate(b, "AdaGrad", r->learning_rate);
        kiln_node eps = kiln_node_ok(lr) ? hyper(b, "AdaGrad", "epsilon", "epsilon", r->epsilon, 0, INFINITY, false)
                                         : KILN_NODE_NONE;
        if (!kiln_node_ok(eps))
            return b->err->status;
        b->slab++;
        for (int i = 0; i < b->n; i++) {
            if (!b->active[i])
                continue;
            kiln_node sq = param_state(b, i, "ssq", NULL);
            kiln_node sq2 = kiln_expr_add(g, sq, kiln_expr_square(g, steps[i]));
            if ((s = add_update(b, sq, sq2)))
                return s;
            steps[i] = kiln_expr_div(g, kiln_expr_mul(g, lr, steps[i]), kiln_expr_add(g, kiln_expr_sqrt(g, sq2), eps));
        }
        return KILN_OK;
    }
    case KILN_STEP_ADAM: {
        set_owner(b, "adam");
        kiln_node lr = learning_rate(b, "Adam", r->learning_rate), b1 = KILN_NODE_NONE, b2 = KILN_NODE_NONE,
                  eps = KILN_NODE_NONE, decay = KILN_NODE_NONE;
        if (kiln_node_ok(lr))
            b1 = unit_hyper(b, "Adam", "beta1", "beta1", r->beta1);
        if (kiln_node_ok(b1))
            b2 = unit_hyper(b, "Adam", "beta2", "beta2", r->beta2);
        if (kiln_node_ok(b2))
            eps = hyper(b, "Adam", "epsilon", "epsilon", r->epsilon, 0, INFINITY, false);
        if (kiln_node_ok(eps))
            decay = unit_hyper(b, "Adam", "decay factor", "decay_factor", r->decay_factor);
        if (!kiln_node_ok(decay))
            return b->err->status;
        kiln_node time = scalar_state(b, "time", 0);
        if (!kiln_node_ok(time))
            return fail_graph(b, "Adam: ");
        kiln_node t1 = kiln_expr_add(g, time, one);
        kiln_node nb1 = kiln_expr_sub(g, one, b1), nb2 = kiln_expr_sub(g, one, b2);
        kiln_node beta_1t = kiln_expr_sub(g, one, kiln_expr_mul(g, nb1, kiln_expr_pow(g, decay, kiln_expr_sub(g, t1, one))));
        kiln_node lr_t = kiln_expr_div(g, kiln_expr_mul(g, lr, kiln_expr_sqrt(g, kiln_expr_sub(g, one, kiln_expr_pow(g, nb2, t1)))),
                                       kiln_expr_sub(g, one, kiln_expr_pow(g, nb1, t1)));
        int slab_m = ++b->slab, slab_v = ++b->slab;
        for (int i = 0; i < b->n; i++) {
            if (!b->active[i])
                continue;
            b->slab = slab_m;
            kiln_node m = param_state(b, i, "mean", NULL);
            b->slab = slab_v;
            kiln_node v = param_state(b, i, "variance", NULL);
            kiln_node gi = steps[i];
            kiln_node m2 = kiln_expr_add(g, kiln_expr_mul(g, beta_1t, gi),
                                         kiln_expr_mul(g, kiln_expr_sub(g, one, beta_1t), m));
            kiln_node v2 = kiln_expr_add(g, kiln_expr_mul(g, b2, kiln_expr_square(g, gi)), kiln_expr_mul(g, nb2, v));
            if ((s = add_update(b, m, m2)) || (s = add_update(b, v, v2)))
                return s;
            steps[i] = kiln_expr_div(g, kiln_expr_mul(g, lr_t, m2), kiln_expr_add(g, kiln_expr_sqrt(g, v2), eps));
        }
        return add_update(b, time, t1);
    }
    case KILN_STEP_STEP_CLIPPING: {
        set_owner(b, "step_clipping");
        kiln_node thr = hyper(b, "StepClipping", "threshold", "threshold", r->threshold, 0, INFINITY, true);
        if (!kiln_node_ok(thr))
            return b->err->status;
        /* n >= threshold: scale by threshold / n (a select keeps 0/0 out) */
        kiln_node n = steps_norm(b, steps);
        kiln_node clip = kiln_expr_greater_equal(g, n, thr);
        kiln_node scale = kiln_expr_select(g, clip, kiln_expr_div(g, thr, kiln_expr_maximum(g, n, thr)), one);
        for (int i = 0; i < b->n; i++)
            if (b->active[i])
                steps[i] = kiln_expr_mul(g, steps[i], scale);
        return KILN_OK;
    }
    case KILN_STEP_VARIABLE_CLIPPING: {
        set_owner(b, "variable_clipping");
        kiln_node thr = hyper(b, "VariableClipping", "threshold", "threshold", r->threshold, 0, INFINITY, true);
        if (!kiln_node_ok(thr))
            return b->err->status;
        for (int i = 0; i < b->n; i++) {
            if (!b->active[i])
                continue;
            kiln_node p = {b->params[i]};
            int rank = kiln_graph_cnode(g, p.id)->shape.rank;
            unsigned axes = r->axes ? r->axes : (rank ? (1u << rank) - 1 : 0);
            if (r->axes & ~((1u << rank) - 1))
                return kiln_err_set(b->err, KILN_ERR_ARG, "VariableClipping: axes 0x%x outside the %d axes of %s",
                                    r->axes, rank, kiln_param_name(kiln_graph_cnode(g, p.id)->param));
            kiln_node next = kiln_expr_sub(g, p, steps[i]);
            kiln_node n = norm_keep(b, i, next, axes);
            kiln_node over = kiln_expr_greater(g, n, thr);
            kiln_node clipped = kiln_expr_sub(g, p, kiln_expr_mul(g, kiln_expr_div(g, thr, kiln_expr_maximum(g, n, thr)), next));
            steps[i] = kiln_expr_select(g, over, clipped, steps[i]);
        }
        return KILN_OK;
    }
    case KILN_STEP_REMOVE_NOT_FINITE: {
        set_owner(b, "remove_not_finite");
        kiln_node scaler = unit_hyper(b, "RemoveNotFinite", "scaler", "scaler", r->scaler);
        if (!kiln_node_ok(scaler))
            return b->err->status;
        kiln_node keep = kiln_expr_sub(g, one, scaler);
        for (int i = 0; i < b->n; i++) {
            if (!b->active[i])
                continue;
            /* the sum is finite iff sum - sum is 0 (NaN and infinities give NaN) */
            kiln_node sum = kiln_expr_sum(g, steps[i], KILN_ALL_AXES);
            kiln_node finite = kiln_expr_equal(g, kiln_expr_sub(g, sum, sum), cst(b, 0));
            kiln_node p = {b->params[i]};
            steps[i] = kiln_expr_select(g, finite, steps[i], kiln_expr_mul(g, keep, p));
        }
        return KILN_OK;
    }
    case KILN_STEP_MOMENTUM_STEPPER:
    case KILN_STEP_NESTEROV_STEPPER:
        return apply_stepper(b, r, r->kind == KILN_STEP_NESTEROV_STEPPER, steps);
    case KILN_STEP_COMPOSITE:
        return apply_composite(b, r, depth, steps);
    case KILN_STEP_RESTRICT:
        return apply_restrict(b, r, depth, steps);
    }
    return kiln_err_set(b->err, KILN_ERR_ARG, "step rule: unknown kind %d", (int)r->kind);
}

/* ---- brainstorm's value modifiers ---------------------------------------- */

static const char *modifier_name(enum kiln_modifier_kind k)
{
    switch (k) {
    case KILN_MODIFIER_NONE: break;
    case KILN_MODIFIER_CLIP_VALUES: return "ClipValues";
    case KILN_MODIFIER_CONSTRAIN_L2_NORM: return "ConstrainL2Norm";
    case KILN_MODIFIER_MASK_VALUES: return "MaskValues";
    case KILN_MODIFIER_FREEZE_VALUES: return "FreezeValues";
    case KILN_MODIFIER_L1_DECAY: return "L1Decay";
    case KILN_MODIFIER_L2_DECAY: return "L2Decay";
    }
    return NULL;
}

/* Which parameters modifier m applies to, into on[]; an error when none. */
static enum kiln_status modifier_targets(builder *b, const kiln_value_modifier *m, const char *label, bool *on)
{
    int hits = 0;
    char path[2 * KILN_MAX_NAME + 2];
    if (m->n_params < 0 || (m->n_params && !m->params))
        return kiln_err_set(b->err, KILN_ERR_ARG, "%s: %d parameters and a NULL list", label, m->n_params);
    for (int i = 0; i < b->n; i++) {
        const kiln_param *p = kiln_graph_cnode(b->g, b->params[i])->param;
        param_path(b, i, path, sizeof path);
        on[i] = false;
        for (int k = 0; k < m->n_params; k++)
            on[i] = on[i] || m->params[k] == p;
        if (!m->params)
            on[i] = !m->pattern || fnmatch(m->pattern, path, 0) == 0;
        hits += on[i];
    }
    for (int k = 0; k < m->n_params; k++) {
        bool found = false;
        for (int i = 0; i < b->n; i++)
            found = found || kiln_graph_cnode(b->g, b->params[i])->param == m->params[k];
        if (!found)
            return kiln_err_set(b->err, KILN_ERR_ARG, "%s: parameter %d (%s) is not a parameter the cost uses", label, k,
                                m->params[k] ? kiln_param_name(m->params[k]) : "NULL");
    }
    if (hits == 0)
        return kiln_err_set(b->err, KILN_ERR_ARG, "%s: %s%s%s names no parameter of the program", label,
                            m->pattern ? "pattern '" : "", m->pattern ? m->pattern : "the list", m->pattern ? "'" : "");
    return KILN_OK;
}

/* Apply modifier m (number k of its list) to vals[i] for the parameters it
** names: the new values (weights) or the gradients. */
static enum kiln_status apply_modifier(builder *b, const kiln_value_modifier *m, int k, bool weights, kiln_node *vals,
                                       bool *on)
{
    kiln_graph *g = b->g;
    const char *list = weights ? "weight" : "gradient";
    const char *name = modifier_name(m->kind);
    char label[96];
    snprintf(label, sizeof label, "%s modifier %d (%s)", list, k, name ? name : "?");
    if (!name)
        return kiln_err_set(b->err, KILN_ERR_ARG, "%s modifier %d: kind %d is no modifier (a zeroed "
                            "kiln_value_modifier? make one with kiln_modifier_clip_values, ...)", list, k, (int)m->kind);
    if (weights && (m->kind == KILN_MODIFIER_L1_DECAY || m->kind == KILN_MODIFIER_L2_DECAY))
        return kiln_err_set(b->err, KILN_ERR_ARG, "%s: a gradient modifier, given as a weight modifier", label);
    if (!weights && m->kind == KILN_MODIFIER_FREEZE_VALUES)
        return kiln_err_set(b->err, KILN_ERR_ARG, "%s: a weight modifier, given as a gradient modifier", label);
    enum kiln_status s = modifier_targets(b, m, label, on);
    if (s)
        return s;
    static const char *const owners[] = {"", "clip_values", "constrain_l2_norm", "mask_values", "freeze_values",
                                         "l1_decay", "l2_decay"};
    snprintf(b->owner, sizeof b->owner, "/%s_modifiers/%d_%s", list, k, owners[m->kind]);
    kiln_node one = cst(b, 1), h1 = KILN_NODE_NONE, h2 = KILN_NODE_NONE;
    switch (m->kind) {
    case KILN_MODIFIER_CLIP_VALUES:
        if (!(m->low <= m->high))
            return kiln_err_set(b->err, KILN_ERR_ARG, "%s: low %g is not <= high %g", label, m->low, m->high);
        h1 = hyper(b, name, "low", "low", m->low, -INFINITY, INFINITY, false);
        h2 = kiln_node_ok(h1) ? hyper(b, name, "high", "high", m->high, -INFINITY, INFINITY, false) : h1;
        break;
    case KILN_MODIFIER_CONSTRAIN_L2_NORM:
        h1 = h2 = hyper(b, name, "limit", "limit", m->limit, 0, INFINITY, true);
        break;
    case KILN_MODIFIER_L1_DECAY:
    case KILN_MODIFIER_L2_DECAY:
        h1 = h2 = hyper(b, name, "factor", "factor", m->factor, 0, INFINITY, false);
        break;
    case KILN_MODIFIER_MASK_VALUES:
        if (!m->values)
            return kiln_err_set(b->err, KILN_ERR_ARG, "%s: the mask is NULL", label);
        h1 = h2 = one;
        break;
    default:
        h1 = h2 = one;
        break;
    }
    if (!kiln_node_ok(h2))
        return b->err->status;
    b->slab++;
    for (int i = 0; i < b->n; i++) {
        if (!on[i])
            continue;
        kiln_node p = {b->params[i]};
        const kiln_node_rec *pr = kiln_graph_cnode(g, p.id);
        int rank = pr->shape.rank;
        char path[2 * KILN_MAX_NAME + 2];
        param_path(b, i, path, sizeof path);
        if ((m->kind == KILN_MODIFIER_MASK_VALUES || (m->kind == KILN_MODIFIER_FREEZE_VALUES && m->values)) &&
            m->n_values != kiln_param_size(pr->param))
            return kiln_err_set(b->err, KILN_ERR_ARG, "%s: %lld values for %s, which has %lld", label,
                                (long long)m->n_values, path, (long long)kiln_param_size(pr->param));
        switch (m->kind) {
        case KILN_MODIFIER_CLIP_VALUES:
            vals[i] = kiln_expr_minimum(g, kiln_expr_maximum(g, vals[i], h1), h2);
            break;
        case KILN_MODIFIER_CONSTRAIN_L2_NORM: {
            if (rank < 2)
                break; /* a bias: brainstorm leaves it alone */
            unsigned all = (1u << rank) - 1, axes = m->axes ? m->axes : all & ~(1u << (rank - 1));
            if (m->axes & ~all)
                return kiln_err_set(b->err, KILN_ERR_ARG, "%s: axes 0x%x outside the %d axes of %s", label, m->axes,
                                    rank, path);
            kiln_node n = norm_keep(b, i, vals[i], axes);
            vals[i] = kiln_expr_div(g, vals[i], kiln_expr_maximum(g, one, kiln_expr_div(g, n, h1)));
            break;
        }
        case KILN_MODIFIER_MASK_VALUES:
            vals[i] = kiln_expr_mul(g, vals[i], param_state(b, i, "mask", m->values));
            break;
        case KILN_MODIFIER_FREEZE_VALUES:
            vals[i] = param_state(b, i, "frozen", m->values ? m->values : kiln_param_data(pr->param));
            break;
        case KILN_MODIFIER_L1_DECAY:
            vals[i] = kiln_expr_add(g, vals[i], kiln_expr_mul(g, h1, kiln_expr_sign(g, p)));
            break;
        case KILN_MODIFIER_L2_DECAY:
            vals[i] = kiln_expr_add(g, vals[i], kiln_expr_mul(g, h1, p));
            break;
        case KILN_MODIFIER_NONE:
            break;
        }
        if (!kiln_node_ok(vals[i]))
            return fail_graph(b, label);
    }
    return KILN_OK;
}

static enum kiln_status apply_modifiers(builder *b, const kiln_value_modifier *mods, int n, bool weights,
                                        kiln_node *vals)
{
    if (n < 0 || (n && !mods))
        return kiln_err_set(b->err, KILN_ERR_ARG, "compile options: %d %s modifiers and a NULL list", n,
                            weights ? "weight" : "gradient");
    bool *on = malloc(sizeof *on * ((size_t)b->n + 1));
    if (!on)
        return kiln_err_set(b->err, KILN_ERR_NOMEM, "value modifiers: no memory");
    enum kiln_status s = KILN_OK;
    for (int k = 0; !s && k < n; k++)
        s = apply_modifier(b, &mods[k], k, weights, vals, on);
    free(on);
    return s;
}

/* ---- the training step's updates --------------------------------------------- */

enum kiln_status kiln_steprule_build(kiln_graph *g, const kiln_steprule_request *req, const int32_t *params,
                                     const int32_t *grads, int n, kiln_steprule_out *out, kiln_err *err)
{
    builder b = {.g = g, .out = out, .params = params, .n = n, .err = err};
    out->learning_rate = out->gradient_norm = out->step_norm = -1;
    kiln_node *steps = malloc(sizeof *steps * ((size_t)n + 1));
    b.active = malloc(sizeof *b.active * ((size_t)n + 1));
    if (!steps || !b.active) {
        free(steps);
        free(b.active);
        return kiln_err_set(err, KILN_ERR_NOMEM, "step rule: no memory");
    }
    for (int i = 0; i < n; i++) {
        steps[i] = (kiln_node){grads[i]};
        b.active[i] = true;
    }
    /* gradient modifiers, the gradient norm, the rule, the step norm */
    enum kiln_status s = apply_modifiers(&b, req->gradient_modifiers, req->n_gradient_modifiers, false, steps);
    if (!s && req->gradient_norm)
        out->gradient_norm = steps_norm(&b, steps).id;
    if (!s)
        s = apply_rule(&b, req->rule, 0, steps);
    if (!s && req->step_norm)
        out->step_norm = steps_norm(&b, steps).id;
    /* the new values p - step, through the weight modifiers */
    for (int i = 0; !s && i < n; i++)
        steps[i] = kiln_expr_sub(g, (kiln_node){params[i]}, steps[i]);
    if (!s)
        s = apply_modifiers(&b, req->weight_modifiers, req->n_weight_modifiers, true, steps);
    for (int i = 0; !s && i < n; i++)
        s = add_update(&b, (kiln_node){params[i]}, steps[i]);
    if (!s && g->err.status)
        s = kiln_err_copy(err, &g->err, "step rule: ");
    free(steps);
    free(b.active);
    return s;
}

void kiln_steprule_out_free(kiln_steprule_out *o)
{
    for (int i = 0; i < o->n_owned; i++)
        kiln_store_unref(o->owned[i]);
    free(o->owned);
    free(o->updates);
    free(o->hypers);
    memset(o, 0, sizeof *o);
}

bool kiln_step_rule_by_name(const char *name, double lr, kiln_step_rule *out)
{
    KILN_API_CHECK(name && out);
    if (!name || !out || !(lr >= 0 && lr < INFINITY))
        return false;
    kiln_step_rule r;
    if (strcmp(name, "scale") == 0)
        r = kiln_step_scale(0.1);
    else if (strcmp(name, "momentum") == 0)
        r = kiln_step_momentum(0.1, 0.9);
    else if (strcmp(name, "adam") == 0)
        r = kiln_step_adam_default();
    else if (strcmp(name, "rmsprop") == 0)
        r = kiln_step_rmsprop(0.001, 0.9, 1e5);
    else if (strcmp(name, "adagrad") == 0)
        r = kiln_step_adagrad(0.01, 1e-6);
    else if (strcmp(name, "adadelta") == 0 && lr == 0)
        r = kiln_step_adadelta(0.95, 1e-6);
    else
        return false;
    if (lr > 0)
        r.learning_rate = lr;
    *out = r;
    return true;
}
