/* bricks_internal.h (internal): brick and parameter calls that the public
** header does not declare (yet).
**
** kiln_param_errmsg belongs in include/kiln/bricks.h next to
** kiln_param_get_values: a parameter made by kiln_param_create has no brick
** whose errmsg could carry its failures. */
#ifndef KILN_COMPILER_BRICKS_INTERNAL_H
#define KILN_COMPILER_BRICKS_INTERNAL_H

#include "kiln/bricks.h"

/* Message of the last failed kiln_param_get_values / set_values on p
** ("ok" after a success); for a brick's parameter the same text is also on
** the brick. Borrowed, valid until the next call on p. */
const char *kiln_param_errmsg(const kiln_param *p);

/* Whether b is ancestor or one of its descendants. */
bool kiln_brick_is_within(const kiln_brick *b, const kiln_brick *ancestor);

#endif
