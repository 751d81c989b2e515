/* network_internal.h: what other runtime files may reach of a loaded
** network (runtime/network.c). */
#ifndef KILN_RUNTIME_NETWORK_INTERNAL_H
#define KILN_RUNTIME_NETWORK_INTERNAL_H

#include "compiler/util.h"
#include "kiln/network.h"

/* net's message slot (kiln_network_errmsg reads it); net not NULL. */
kiln_err *kiln_network_err(kiln_network *net);

#endif
