/* steprule.h (internal): the step rule's updates, as IR (steprule.c). */
#ifndef KILN_COMPILER_STEPRULE_H
#define KILN_COMPILER_STEPRULE_H

#include "compiler/graph.h"
#include "kiln/compile.h"

/* A scalar hyperparameter state and the values it may take: [lo, hi]
** (lo excluded when lo_open), finite. rule and what name it in messages
** ("AdaDelta", "decay rate"). */
typedef struct kiln_steprule_hyper {
    int32_t node;
    char rule[40];
    char what[24];
    double lo, hi;
    bool lo_open;
} kiln_steprule_hyper;

/* What kiln_steprule_build is asked for: the rule, the value modifiers
** (compile.h) and the total norms to compute. */
typedef struct kiln_steprule_request {
    const kiln_step_rule *rule;
    const kiln_value_modifier *weight_modifiers, *gradient_modifiers;
    int n_weight_modifiers, n_gradient_modifiers;
    bool gradient_norm, step_norm;
} kiln_steprule_request;

/* What a step rule made: its updates (state updates first, then (p, new
** value) for every parameter, in order), the store entries of its state
** (freed by kiln_steprule_out_free), its hyperparameters, the node of its
** first learning rate and of the norms asked for (-1 if none). */
typedef struct kiln_steprule_out {
    kiln_update *updates;
    int n_updates, cap_updates;
    kiln_param **owned;
    int n_owned, cap_owned;
    kiln_steprule_hyper *hypers;
    int n_hypers, cap_hypers;
    int32_t learning_rate;
    int32_t gradient_norm, step_norm;
} kiln_steprule_out;

/* Build the request's updates on program graph g for params[i] with
** gradients grads[i]. On failure err says why (the rule and the bad field). */
enum kiln_status kiln_steprule_build(kiln_graph *g, const kiln_steprule_request *req, const int32_t *params,
                                     const int32_t *grads, int n, kiln_steprule_out *out, kiln_err *err);
void kiln_steprule_out_free(kiln_steprule_out *o);

/* KILN_OK when v is a value h may take, else KILN_ERR_ARG and err names the
** rule, the hyperparameter and v. */
enum kiln_status kiln_steprule_check(const kiln_steprule_hyper *h, double v, kiln_err *err);

#endif
