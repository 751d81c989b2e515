/* steprule.h (internal): the step rule's updates, as IR (steprule.c). */
#ifndef KILN_COMPILER_STEPRULE_H
#define KILN_COMPILER_STEPRULE_H

#include "compiler/graph.h"
#include "kiln/compile.h"

/* What a step rule made: its updates (state updates first, then (p, p -
** step) for every parameter, in order), the store entries of its state
** (freed by kiln_steprule_out_free) and the node of its first learning
** rate (-1 if none). */
typedef struct kiln_steprule_out {
    kiln_update *updates;
    int n_updates, cap_updates;
    kiln_param **owned;
    int n_owned, cap_owned;
    int32_t learning_rate;
} kiln_steprule_out;

/* Build rule's updates on program graph g for params[i] with gradients
** grads[i]. On failure err says why (the rule and the bad field). */
enum kiln_status kiln_steprule_build(kiln_graph *g, const kiln_step_rule *rule, const int32_t *params,
                                     const int32_t *grads, int n, kiln_steprule_out *out, kiln_err *err);
void kiln_steprule_out_free(kiln_steprule_out *o);

#endif
