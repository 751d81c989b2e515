/* kiln/network.h: network files: a graph and its parameters in one HDF5
** file, loaded again without the program that built it.
**
** A network file holds the part of a graph that some named roots (outputs,
** a cost) need, as a JSON description of its nodes (every op of the IR,
** symbolic dims by symbol name, scans with their bodies, random nodes with
** their streams, the graph's updates), and the values of the parameters
** and states those nodes read (random states included), one HDF5 dataset
** each, by owner path: /parameters/mlp/linear_0/W, behind a 512-byte
** header of kiln's (the file's size and the SHA-256 of its HDF5 bytes,
** checked before HDF5 reads the file). A step rule's state
** (a velocity, Adam's moments) is not part of a network: it belongs to a
** compiled program, not to the graph. docs/network-files.md describes the
** layout, readable with h5py and h5dump.
**
** Loading needs no bricks: the graph comes back with its nodes' names,
** owner paths and roles, its inputs (kiln_graph_input_by_name), and the
** roots by name, ready for kiln_compile. Files are untrusted: every node is
** rebuilt through the expression builders, which check its operands, and
** every size, offset and index is checked; names are data (generated code
** never depends on what they spell). A bad file gets KILN_ERR_FORMAT (or
** KILN_ERR_IO) and a message naming the file, the place in it and what is
** wrong. */
#ifndef KILN_NETWORK_H
#define KILN_NETWORK_H

#include "common.h"
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The format version kiln_network_save writes and the only one
** kiln_network_load reads; a file of another version is KILN_ERR_FORMAT
** naming both. */
#define KILN_NETWORK_FORMAT_VERSION 1

typedef struct kiln_network kiln_network;

/* Save what roots[0..n_roots) need of g (their ancestors, the updates of
** the states they read, the nodes they replace and their bricks'
** auxiliary variables, as kiln_graph_replace keeps them) with the values
** of its parameters and states, into an HDF5 file at path. names[k] names
** roots[k] in the file (1..KILN_MAX_NAME bytes, distinct). The file is
** written beside path under a temporary name and renamed over path at the
** end, so a failed save leaves no partial file and an old file stays
** whole. g, roots, names and path are borrowed for the call; g is not
** changed, except that a failure is recorded on g as a builder's is
** (kiln_graph_errmsg; kiln_graph_clear_error forgets it), and a graph that
** already has an error is refused with its status. Allocates. KILN_OK,
** KILN_ERR_ARG (NULL, bad roots or names), KILN_ERR_STATE (a parameter
** without values), KILN_ERR_UNSUPPORTED, KILN_ERR_IO, KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_network_save(kiln_graph *g, const kiln_node *roots, const char *const *names,
                                            int n_roots, const char *path);

/* Load the network file at path (borrowed for the call). *out is
** caller-owned (kiln_network_destroy) and set even on failure, with the
** message (kiln_network_errmsg), unless out of memory (then NULL). KILN_OK,
** KILN_ERR_ARG (NULL), KILN_ERR_IO (missing, unreadable), KILN_ERR_FORMAT
** (not a network file, another format version, truncated or corrupted,
** a description that breaks the IR's rules), KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_network_load(const char *path, kiln_network **out);
/* Frees net and its graph. NULL: nothing. */
KILN_API void kiln_network_destroy(kiln_network *net);
KILN_API const char *kiln_network_errmsg(const kiln_network *net);

/* The loaded graph: borrowed, owned by net (valid until
** kiln_network_destroy); a user graph like any other (add nodes, transform,
** compile it). Its parameters and states are store entries the graph owns,
** holding the file's values (kiln_graph_node_param). NULL before a
** successful load. */
KILN_API kiln_graph *kiln_network_graph(const kiln_network *net);
/* The roots saved with the file, in the order given to kiln_network_save:
** their count, the name of root i ("" out of range), and the node of a
** root by name (KILN_NODE_NONE when none has that name). Names are
** borrowed, valid while net lives. */
KILN_API int kiln_network_root_count(const kiln_network *net);
KILN_API const char *kiln_network_root_name(const kiln_network *net, int i);
KILN_API kiln_node kiln_network_root(const kiln_network *net, const char *name);

#ifdef __cplusplus
}
#endif
#endif
