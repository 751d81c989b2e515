/* kiln.h: the whole public API of kiln, a neural-network compiler.
** See README.md and docs/ for a guide. */
#ifndef KILN_H
#define KILN_H

#include "common.h"
#include "config.h"
#include "graph.h"
#include "bricks.h"
#include "compile.h"
#include "export.h"
#include "aot.h"
#include "data.h"
#include "train.h"
#include "network.h"
#include "checkpoint.h"
#include "cache.h"

#endif
