/* runtime/config.h: what the library itself reads from the configuration
** (kiln/config.h is the public face). */
#ifndef KILN_RUNTIME_CONFIG_H
#define KILN_RUNTIME_CONFIG_H

#include "kiln/config.h"
#include "compiler/util.h"

/* A copy of c (loaded without error). NULL when out of memory. */
kiln_config *kiln_config_copy(const kiln_config *c);

/* seed itself, or, when it is KILN_SEED_DEFAULT, the configuration's
** default_seed (loaded now with kiln_config_load). A configuration that fails
** to load gives its status, with "configuration: <message>" in *err. */
enum kiln_status kiln_config_resolve_seed(uint64_t seed, uint64_t *out, kiln_err *err);

#endif
