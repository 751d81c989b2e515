/* network_internal.h (internal): what other runtime files may reach of
** networks: a loaded network's message slot (runtime/export.c), and a
** network's description for the writers of network files: kiln_network_save
** (runtime/network.c) and AOT training programs (runtime/aot.c), which write
** the same description with new values. */
#ifndef KILN_RUNTIME_NETWORK_INTERNAL_H
#define KILN_RUNTIME_NETWORK_INTERNAL_H

#include "compiler/netjson.h"
#include "compiler/util.h"
#include "kiln/network.h"
#include "runtime/netfile.h"

/* net's message slot (kiln_network_errmsg reads it); net not NULL. */
kiln_err *kiln_network_err(kiln_network *net);

typedef struct kiln_network_desc {
    kiln_graph *copy;       /* what the roots need (kiln_graph_replace) */
    kiln_node *copy_roots;
    kiln_netjson_out out;   /* its description; entries' params are copy's store entries */
    bool described;
} kiln_network_desc;

/* What kiln_network_save(g, roots, names, n_roots, path) would write, as a
** description (the checks and messages of kiln_network_save, on g, what
** naming the caller). *d is the caller's to free (kiln_network_desc_free),
** even on failure. */
enum kiln_status kiln_network_describe(kiln_graph *g, const kiln_node *roots, const char *const *names, int n_roots,
                                       const char *what, const char *path, kiln_network_desc *d);
void kiln_network_desc_free(kiln_network_desc *d);

/* Entry e as a dataset to write: its store values (doubles), or for an
** int32 entry a malloc'd int32 copy (then d->mem_type is KILN_NETFILE_I32
** and d->data the caller's to free). KILN_ERR_ARG (an int32 entry's value
** out of range), KILN_ERR_NOMEM, with the message in err. */
enum kiln_status kiln_network_entry_dataset(const kiln_netjson_entry *e, kiln_netfile_dataset *d, kiln_err *err);

#endif
