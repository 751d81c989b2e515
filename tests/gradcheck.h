/* gradcheck.h: helpers the Check suites share: finite-difference gradient
** checks of a compiled float64 program, and seeded test data. */
#ifndef KILN_TESTS_GRADCHECK_H
#define KILN_TESTS_GRADCHECK_H

#include <kiln/kiln.h>

#define GC_MAX_PARAMS 32

typedef struct gc_input {
    const char *name;
    const void *data;
} gc_input;

/* Compile cost (float64 graph g) and compare the gradient of every param
** node with central differences (step eps). Returns the largest error
** |ad - fd| / max(1, |ad|, |fd|), or a negative value when the program
** could not be built or run; why gets a message either way. */
double gc_check(kiln_graph *g, kiln_node cost, const kiln_node *params, int n_params, const gc_input *in,
                int n_in, int64_t batch, double eps, char *why, size_t cap);

/* The same with run-time symbol sizes: sizes[k] for symbol k (B, T, ...),
** each also the symbol's maximum; 0 for symbols the graph does not use. */
double gc_check_sizes(kiln_graph *g, kiln_node cost, const kiln_node *params, int n_params, const gc_input *in,
                      int n_in, const int64_t *sizes, double eps, char *why, size_t cap);

/* Deterministic values in [lo, hi), away from 0 by at least gap when
** lo < 0 < hi (kinks of relu, abs). */
void gc_fill(double *x, int64_t n, double lo, double hi, double gap, unsigned seed);

#endif
