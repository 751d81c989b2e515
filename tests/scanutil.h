/* scanutil.h: graphs with scans run by the reference interpreter, for the
** tests of scans and recurrent bricks (test_scan.c, test_recurrent.c),
** beside the compiled programs (tests/test_backends.c compares the two).
**
** A prog is a user graph rebuilt, differentiated and rebuilt again, as
** kiln_compile does, and its float64 interpreter (compiler/interp.c). */
#ifndef KILN_TESTS_SCANUTIL_H
#define KILN_TESTS_SCANUTIL_H

#include <kiln/kiln.h>

#include "compiler/interp.h"

#define PROG_MAX_OUTS 16
#define PROG_MAX_PARAMS 32

typedef struct prog {
    kiln_graph *pg;
    kiln_interp *it;
    int32_t cost;
    int32_t outs[PROG_MAX_OUTS];
    int n_outs;
    int32_t params[PROG_MAX_PARAMS], grads[PROG_MAX_PARAMS];
    int n_params;
} prog;

/* The program of g's cost and outputs, with the gradient of the cost by each
** of wrt[0..n_wrt) (user nodes of PARAM leaves). The test fails when any
** step fails. */
void prog_open(prog *p, const kiln_graph *g, kiln_node cost, const kiln_node *outs, int n_outs,
               const kiln_node *wrt, int n_wrt);
void prog_close(prog *p);
/* Bind the program's input `name` to data (float64 or int32, borrowed). */
void prog_bind(prog *p, const char *name, const void *data);
/* Run one entry point with B = b and T = t. */
void prog_run(prog *p, enum kiln_mode mode, int64_t b, int64_t t);
/* Node id's n values (n must be its element count). */
void read_node(prog *p, int32_t id, double *dst, int64_t n);
/* got == want within 1e-12 relative, element by element. */
void assert_values(const double *got, const double *want, int64_t n, const char *what);
/* Central differences of the cost by every element of PARAM leaf k against
** the interpreter's gradient (1e-7 relative to the largest). */
void check_gradient(prog *p, int k, const char *what, int64_t b, int64_t t);
/* The same, the scale at least of_cost * |cost|: a parameter whose
** gradient is small next to the cost is compared within the rounding of
** the cost's differences (about 1e-16 |cost| / 1e-6), not below it. */
void check_gradient_near(prog *p, int k, const char *what, int64_t b, int64_t t, double of_cost);
/* Deterministic values in [-scale, scale] into p (n elements). */
void fill(kiln_param *p, int64_t n, double scale, unsigned seed);

/* Every parameter of b's tree, depth first, b's own first, appended to
** out[n..cap); returns the new count. */
int tree_params(const kiln_brick *b, kiln_param **out, int n, int cap);
/* The node of each of ps[0..n) in g (each must be there). */
void wrt_nodes(const kiln_graph *g, kiln_param **ps, int n, kiln_node *wrt);
/* cost = sum(r * y) for a new float64 input r (named rname) shaped like y. */
kiln_node weighted_sum(kiln_graph *g, kiln_node y, const char *rname);
/* Deterministic values in [lo, hi) into v (n elements). */
void values(double *v, int64_t n, double lo, double hi, unsigned seed);

#endif
