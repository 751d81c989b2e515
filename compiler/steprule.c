/* steprule.c: GradientDescent's step rules, written as IR.
**
** Blocks computes, for each parameter p with gradient g, a step by passing
** g through the rule (a CompositeRule through each component in turn) and
** then updates p -= step; a rule may keep state (a velocity), updated in the
** same step from the old values. Here each rule builds the step with the
** expression builders on the program graph and registers its state's
** updates; kiln_steprule_build adds the final (p, p - step) pairs. State
** lives in store entries the program owns: one per parameter for a
** per-parameter buffer (a slab in parameter order: kiln_store_set_like),
** one scalar for a hyperparameter or a counter.
**
** Scale's update p - lr * g, with g a weight's gradient product, is what
** codegen lowers into the product itself; every other rule is plain
** elementwise kernels. Formulas and defaults are Blocks' (see compile.h). */
#include "compiler/steprule.h"

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

/* A store entry the program owns, its leaf in g. */
static kiln_node new_state(builder *b, const char *name, const char *owner, int rank, const int64_t *dims,
                           double fill, kiln_param *like, unsigned roles)
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
    kiln_store_set_roles(p, roles | KILN_ROLE_ALGORITHM_STATE);
    if (like)
        kiln_store_set_like(p, like, b->slab);
    return kiln_graph_store_leaf(b->g, p);
}

static kiln_node scalar_state(builder *b, const char *name, double value)
{
    return new_state(b, name, b->owner, 0, NULL, value, NULL, 0);
}

/* A state shaped like parameter i, in the current slab. */
static kiln_node param_state(builder *b, int i, const char *what)
{
    const kiln_node_rec *pr = kiln_graph_cnode(b->g, b->params[i]);
    char name[KILN_MAX_NAME + 1];
    if (kiln_snprintf(name, sizeof name, "%s_%s", pr->name ? pr->name : "param", what) != 0)
        return KILN_NODE_NONE;
    return new_state(b, name, pr->owner ? pr->owner : "", pr->shape.rank, pr->shape.dims, 0, pr->param, 0);
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

static bool ok_num(double v) { return isfinite(v); }

/* A scalar hyperparameter that must be finite (and >= lo when lo_set). */
static enum kiln_status check_num(builder *b, const char *rule, const char *what, double v, double lo, bool strict)
{
    if (!ok_num(v) || (strict ? !(v > lo) : !(v >= lo)))
        return kiln_err_set(b->err, KILN_ERR_ARG, "%s: %s is %g, expected a finite value %s %g", rule, what, v,
                            strict ? ">" : ">=", lo);
    return KILN_OK;
}

static kiln_node cst(builder *b, double v) { return kiln_expr_constant(b->g, v); }

/* sqrt(sum of squares of every active step): a scalar. */
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

/* Pass the active steps[] through rule r. */
static enum kiln_status apply_rule(builder *b, const kiln_step_rule *r, int depth, kiln_node *steps)
{
    kiln_graph *g = b->g;
    enum kiln_status s;
    kiln_node one = cst(b, 1);
    switch (r->kind) {
    case KILN_STEP_SCALE: {
        if ((s = check_num(b, "Scale", "learning rate", r->learning_rate, -INFINITY, false)))
            return s;
        set_owner(b, "scale");
        kiln_node lr = scalar_state(b, "learning_rate", r->learning_rate);
        if (!kiln_node_ok(lr))
            return fail_graph(b, "Scale: ");
        if (b->out->learning_rate < 0)
            b->out->learning_rate = lr.id;
        for (int i = 0; i < b->n; i++)
            if (b->active[i])
                steps[i] = kiln_expr_mul(g, lr, steps[i]);
        return KILN_OK;
    }
    case KILN_STEP_BASIC_MOMENTUM: {
        if ((s = check_num(b, "BasicMomentum", "momentum", r->momentum, -INFINITY, false)))
            return s;
        set_owner(b, "basic_momentum");
        kiln_node mu = scalar_state(b, "momentum", r->momentum);
        if (!kiln_node_ok(mu))
            return fail_graph(b, "BasicMomentum: ");
        b->slab++;
        for (int i = 0; i < b->n; i++) {
            if (!b->active[i])
                continue;
            kiln_node v = param_state(b, i, "velocity");
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
        if (!(r->decay_rate >= 0 && r->decay_rate <= 1))
            return kiln_err_set(b->err, KILN_ERR_ARG, "AdaDelta: decay rate %g is outside [0, 1]", r->decay_rate);
        if ((s = check_num(b, "AdaDelta", "epsilon", r->epsilon, 0, false)))
            return s;
        set_owner(b, "adadelta");
        kiln_node rho = cst(b, r->decay_rate), nrho = cst(b, 1 - r->decay_rate), eps = cst(b, r->epsilon);
        int slab_g = ++b->slab, slab_d = ++b->slab;
        for (int i = 0; i < b->n; i++) {
            if (!b->active[i])
                continue;
            b->slab = slab_g;
            kiln_node eg = param_state(b, i, "mean_square_step_tm1");
            b->slab = slab_d;
            kiln_node ed = param_state(b, i, "mean_square_delta_x_tm1");
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
        if (!(r->decay_rate >= 0 && r->decay_rate <= 1))
            return kiln_err_set(b->err, KILN_ERR_ARG, "BasicRMSProp: decay rate %g is outside [0, 1]", r->decay_rate);
        if ((s = check_num(b, "BasicRMSProp", "max_scaling", r->max_scaling, 0, true)))
            return s;
        set_owner(b, "basic_rmsprop");
        kiln_node rho = cst(b, r->decay_rate), nrho = cst(b, 1 - r->decay_rate), floor = cst(b, 1 / r->max_scaling);
        b->slab++;
        for (int i = 0; i < b->n; i++) {
            if (!b->active[i])
                continue;
            kiln_node m = param_state(b, i, "mean_square_step_tm1");
            kiln_node m2 = kiln_expr_add(g, kiln_expr_mul(g, rho, m), kiln_expr_mul(g, nrho, kiln_expr_square(g, steps[i])));
            if ((s = add_update(b, m, m2)))
                return s;
            steps[i] = kiln_expr_div(g, steps[i], kiln_expr_maximum(g, kiln_expr_sqrt(g, m2), floor));
        }
        return KILN_OK;
    }
    case KILN_STEP_ADAGRAD: {
        if ((s = check_num(b, "AdaGrad", "learning rate", r->learning_rate, -INFINITY, false)) ||
            (s = check_num(b, "AdaGrad", "epsilon", r->epsilon, 0, false)))
            return s;
        set_owner(b, "adagrad");
        kiln_node lr = scalar_state(b, "learning_rate", r->learning_rate);
        if (!kiln_node_ok(lr))
            return fail_graph(b, "AdaGrad: ");
        if (b->out->learning_rate < 0)
            b->out->learning_rate = lr.id;
        kiln_node eps = cst(b, r->epsilon);
        b->slab++;
        for (int i = 0; i < b->n; i++) {
            if (!b->active[i])
                continue;
            kiln_node sq = param_state(b, i, "ssq");
            kiln_node sq2 = kiln_expr_add(g, sq, kiln_expr_square(g, steps[i]));
            if ((s = add_update(b, sq, sq2)))
                return s;
            steps[i] = kiln_expr_div(g, kiln_expr_mul(g, lr, steps[i]), kiln_expr_add(g, kiln_expr_sqrt(g, sq2), eps));
        }
        return KILN_OK;
    }
    case KILN_STEP_ADAM: {
        if (!ok_num(r->learning_rate) || !ok_num(r->beta1) || !ok_num(r->beta2) || !(r->epsilon >= 0) ||
            !ok_num(r->epsilon) || !ok_num(r->decay_factor))
            return kiln_err_set(b->err, KILN_ERR_ARG,
                                "Adam: learning rate %g, beta1 %g, beta2 %g, epsilon %g, decay factor %g: "
                                "each must be finite and epsilon >= 0",
                                r->learning_rate, r->beta1, r->beta2, r->epsilon, r->decay_factor);
        set_owner(b, "adam");
        kiln_node lr = scalar_state(b, "learning_rate", r->learning_rate);
        kiln_node time = scalar_state(b, "time", 0);
        if (!kiln_node_ok(lr) || !kiln_node_ok(time))
            return fail_graph(b, "Adam: ");
        if (b->out->learning_rate < 0)
            b->out->learning_rate = lr.id;
        kiln_node t1 = kiln_expr_add(g, time, one);
        kiln_node nb1 = cst(b, 1 - r->beta1), nb2 = cst(b, 1 - r->beta2);
        kiln_node beta_1t = kiln_expr_sub(g, one, kiln_expr_mul(g, nb1, kiln_expr_pow(g, cst(b, r->decay_factor),
                                                                                    kiln_expr_sub(g, t1, one))));
        kiln_node lr_t = kiln_expr_div(g, kiln_expr_mul(g, lr, kiln_expr_sqrt(g, kiln_expr_sub(g, one, kiln_expr_pow(g, nb2, t1)))),
                                       kiln_expr_sub(g, one, kiln_expr_pow(g, nb1, t1)));
        kiln_node b2 = cst(b, r->beta2), eps = cst(b, r->epsilon);
        int slab_m = ++b->slab, slab_v = ++b->slab;
        for (int i = 0; i < b->n; i++) {
            if (!b->active[i])
                continue;
            b->slab = slab_m;
            kiln_node m = param_state(b, i, "mean");
            b->slab = slab_v;
            kiln_node v = param_state(b, i, "variance");
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
        if ((s = check_num(b, "StepClipping", "threshold", r->threshold, 0, true)))
            return s;
        set_owner(b, "step_clipping");
        kiln_node thr = scalar_state(b, "threshold", r->threshold);
        if (!kiln_node_ok(thr))
            return fail_graph(b, "StepClipping: ");
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
        if ((s = check_num(b, "VariableClipping", "threshold", r->threshold, 0, true)))
            return s;
        set_owner(b, "variable_clipping");
        kiln_node thr = cst(b, r->threshold);
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
            /* the norm over the axes, kept as size-1 axes so it broadcasts back */
            kiln_node n = kiln_expr_sqrt(g, kiln_expr_sum_axes(g, kiln_expr_square(g, next), axes));
            kiln_shape keep = kiln_graph_cnode(g, p.id)->shape;
            for (int k = 0; k < keep.rank; k++)
                if (axes >> k & 1)
                    keep.dims[k] = 1;
            n = kiln_expr_reshape_shape(g, n, &keep);
            kiln_node over = kiln_expr_greater(g, n, thr);
            kiln_node clipped = kiln_expr_sub(g, p, kiln_expr_mul(g, kiln_expr_div(g, thr, kiln_expr_maximum(g, n, thr)), next));
            steps[i] = kiln_expr_select(g, over, clipped, steps[i]);
        }
        return KILN_OK;
    }
    case KILN_STEP_REMOVE_NOT_FINITE: {
        if ((s = check_num(b, "RemoveNotFinite", "scaler", r->scaler, -INFINITY, false)))
            return s;
        set_owner(b, "remove_not_finite");
        kiln_node keep = cst(b, 1 - r->scaler);
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
    case KILN_STEP_MOMENTUM_STEPPER: {
        if ((s = check_num(b, "MomentumStepper", "learning rate", r->learning_rate, -INFINITY, false)) ||
            (s = check_num(b, "MomentumStepper", "momentum", r->momentum, -INFINITY, false)))
            return s;
        set_owner(b, "momentum_stepper");
        kiln_node lr = scalar_state(b, "learning_rate", r->learning_rate);
        kiln_node mu = scalar_state(b, "momentum", r->momentum);
        if (!kiln_node_ok(lr) || !kiln_node_ok(mu))
            return fail_graph(b, "MomentumStepper: ");
        if (b->out->learning_rate < 0)
            b->out->learning_rate = lr.id;
        kiln_node lr2 = r->scale_learning_rate ? kiln_expr_mul(g, lr, kiln_expr_sub(g, one, mu)) : lr;
        b->slab++;
        for (int i = 0; i < b->n; i++) {
            if (!b->active[i])
                continue;
            kiln_node v = param_state(b, i, "velocity");
            kiln_node v2 = kiln_expr_sub(g, kiln_expr_mul(g, mu, v), kiln_expr_mul(g, lr2, steps[i]));
            if ((s = add_update(b, v, v2)))
                return s;
            steps[i] = kiln_expr_neg(g, v2);
        }
        return KILN_OK;
    }
    case KILN_STEP_COMPOSITE:
        return apply_composite(b, r, depth, steps);
    case KILN_STEP_RESTRICT:
        return apply_restrict(b, r, depth, steps);
    }
    return kiln_err_set(b->err, KILN_ERR_ARG, "step rule: unknown kind %d", (int)r->kind);
}

enum kiln_status kiln_steprule_build(kiln_graph *g, const kiln_step_rule *rule, const int32_t *params,
                                     const int32_t *grads, int n, kiln_steprule_out *out, kiln_err *err)
{
    builder b = {.g = g, .out = out, .params = params, .n = n, .err = err};
    out->learning_rate = -1;
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
    enum kiln_status s = apply_rule(&b, rule, 0, steps);
    for (int i = 0; !s && i < n; i++) {
        kiln_node p = {params[i]};
        s = add_update(&b, p, kiln_expr_sub(g, p, steps[i]));
    }
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
    memset(o, 0, sizeof *o);
}
