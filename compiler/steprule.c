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
    char owner[64];    /* "/step_rule/<rule>" for the rule being built */
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

static void set_owner(builder *b, const char *rule, int index)
{
    if (index < 0)
        snprintf(b->owner, sizeof b->owner, "/step_rule/%s", rule);
    else
        snprintf(b->owner, sizeof b->owner, "/step_rule/%d_%s", index, rule);
}

static bool ok_num(double v) { return isfinite(v); }

/* Pass steps[] through one (non-composite) rule. */
static enum kiln_status apply_rule(builder *b, const kiln_step_rule *r, int index, kiln_node *steps)
{
    kiln_graph *g = b->g;
    switch (r->kind) {
    case KILN_STEP_SCALE: {
        if (!ok_num(r->learning_rate))
            return kiln_err_set(b->err, KILN_ERR_ARG, "Scale: learning rate %g is not finite", r->learning_rate);
        set_owner(b, "scale", index);
        kiln_node lr = scalar_state(b, "learning_rate", r->learning_rate);
        if (!kiln_node_ok(lr))
            return fail_graph(b, "Scale: ");
        if (b->out->learning_rate < 0)
            b->out->learning_rate = lr.id;
        for (int i = 0; i < b->n; i++)
            steps[i] = kiln_expr_mul(g, lr, steps[i]);
        return KILN_OK;
    }
    case KILN_STEP_BASIC_MOMENTUM: {
        if (!ok_num(r->momentum))
            return kiln_err_set(b->err, KILN_ERR_ARG, "BasicMomentum: momentum %g is not finite", r->momentum);
        set_owner(b, "basic_momentum", index);
        kiln_node mu = scalar_state(b, "momentum", r->momentum);
        if (!kiln_node_ok(mu))
            return fail_graph(b, "BasicMomentum: ");
        b->slab++;
        for (int i = 0; i < b->n; i++) {
            kiln_node v = param_state(b, i, "velocity");
            kiln_node v2 = kiln_expr_add(g, kiln_expr_mul(g, mu, v), steps[i]);
            enum kiln_status s = add_update(b, v, v2);
            if (s)
                return s;
            steps[i] = v2;
        }
        return KILN_OK;
    }
    case KILN_STEP_MOMENTUM: {
        kiln_step_rule parts[2] = {kiln_step_scale(r->learning_rate), kiln_step_basic_momentum(r->momentum)};
        for (int k = 0; k < 2; k++) {
            enum kiln_status s = apply_rule(b, &parts[k], index, steps);
            if (s)
                return s;
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
        set_owner(b, "adam", index);
        kiln_node lr = scalar_state(b, "learning_rate", r->learning_rate);
        kiln_node time = scalar_state(b, "time", 0);
        if (!kiln_node_ok(lr) || !kiln_node_ok(time))
            return fail_graph(b, "Adam: ");
        if (b->out->learning_rate < 0)
            b->out->learning_rate = lr.id;
        kiln_node one = kiln_expr_constant(g, 1);
        kiln_node t1 = kiln_expr_add(g, time, one);
        kiln_node nb1 = kiln_expr_constant(g, 1 - r->beta1), nb2 = kiln_expr_constant(g, 1 - r->beta2);
        kiln_node beta_1t = kiln_expr_sub(g, one, kiln_expr_mul(g, nb1, kiln_expr_pow(g, kiln_expr_constant(g, r->decay_factor),
                                                                                    kiln_expr_sub(g, t1, one))));
        kiln_node lr_t = kiln_expr_div(g, kiln_expr_mul(g, lr, kiln_expr_sqrt(g, kiln_expr_sub(g, one, kiln_expr_pow(g, nb2, t1)))),
                                       kiln_expr_sub(g, one, kiln_expr_pow(g, nb1, t1)));
        kiln_node b2 = kiln_expr_constant(g, r->beta2), eps = kiln_expr_constant(g, r->epsilon);
        int slab_m = ++b->slab, slab_v = ++b->slab;
        for (int i = 0; i < b->n; i++) {
            b->slab = slab_m;
            kiln_node m = param_state(b, i, "mean");
            b->slab = slab_v;
            kiln_node v = param_state(b, i, "variance");
            kiln_node gi = steps[i];
            kiln_node m2 = kiln_expr_add(g, kiln_expr_mul(g, beta_1t, gi),
                                         kiln_expr_mul(g, kiln_expr_sub(g, one, beta_1t), m));
            kiln_node v2 = kiln_expr_add(g, kiln_expr_mul(g, b2, kiln_expr_square(g, gi)), kiln_expr_mul(g, nb2, v));
            enum kiln_status s;
            if ((s = add_update(b, m, m2)) || (s = add_update(b, v, v2)))
                return s;
            steps[i] = kiln_expr_div(g, kiln_expr_mul(g, lr_t, m2), kiln_expr_add(g, kiln_expr_sqrt(g, v2), eps));
        }
        return add_update(b, time, t1);
    }
    case KILN_STEP_COMPOSITE:
        return kiln_err_set(b->err, KILN_ERR_UNSUPPORTED, "CompositeRule: a component is itself a CompositeRule");
    }
    return kiln_err_set(b->err, KILN_ERR_ARG, "step rule: unknown kind %d", (int)r->kind);
}

enum kiln_status kiln_steprule_build(kiln_graph *g, const kiln_step_rule *rule, const int32_t *params,
                                     const int32_t *grads, int n, kiln_steprule_out *out, kiln_err *err)
{
    builder b = {.g = g, .out = out, .params = params, .n = n, .err = err};
    out->learning_rate = -1;
    kiln_node *steps = malloc(sizeof *steps * ((size_t)n + 1));
    if (!steps)
        return kiln_err_set(err, KILN_ERR_NOMEM, "step rule: no memory");
    for (int i = 0; i < n; i++)
        steps[i] = (kiln_node){grads[i]};
    enum kiln_status s = KILN_OK;
    if (rule->kind == KILN_STEP_COMPOSITE) {
        if (rule->n_components < 1 || rule->n_components > 8 || !rule->components)
            s = kiln_err_set(err, KILN_ERR_ARG, "CompositeRule: %d components, expected 1 to 8", rule->n_components);
        for (int k = 0; !s && k < rule->n_components; k++)
            s = apply_rule(&b, &rule->components[k], k, steps);
    } else {
        s = apply_rule(&b, rule, -1, steps);
    }
    for (int i = 0; !s && i < n; i++) {
        kiln_node p = {params[i]};
        s = add_update(&b, p, kiln_expr_sub(g, p, steps[i]));
    }
    if (!s && g->err.status)
        s = kiln_err_copy(err, &g->err, "step rule: ");
    free(steps);
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
