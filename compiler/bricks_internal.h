/* bricks_internal.h (internal): what the brick classes of kiln itself
** (compiler/bricks_*.c) share with the machinery (compiler/brick.c) beyond
** the public header, and brick and parameter calls the public header does
** not declare (yet). */
#ifndef KILN_COMPILER_BRICKS_INTERNAL_H
#define KILN_COMPILER_BRICKS_INTERNAL_H

#include "compiler/graph.h"
#include "kiln/bricks.h"

/* Whether b is ancestor or one of its descendants. */
bool kiln_brick_is_within(const kiln_brick *b, const kiln_brick *ancestor);

/* A node's dtype and shape for messages: "float32 (B, 784)". */
typedef struct kiln_desc_buf { char s[KILN_SHAPE_STR_MAX + 16]; } kiln_desc_buf;
const char *kiln_brick_desc(const kiln_graph *g, kiln_node n, kiln_desc_buf *buf);

/* A builder returned n: KILN_OK, or the graph's message recorded on b. */
enum kiln_status kiln_brick_built(kiln_brick *b, kiln_graph *g, kiln_node n);

/* Made with name NULL (an MLP renames such an activation "<name>_<i>"). */
bool kiln_brick_has_default_name(const kiln_brick *b);
/* Rename a root brick before a parent adopts it (kiln_brick_add_child sets
** the paths); false when name is too long. */
bool kiln_brick_rename(kiln_brick *b, const char *name);

/* Whether use_bias was set on b (a parent pushes it only then), and the
** allocation push of use_bias to a child (not marking it set there). */
bool kiln_brick_use_bias_set(const kiln_brick *b);
void kiln_brick_push_use_bias(kiln_brick *child, bool use_bias);

/* A parent's push of dim `name` to a child, leaving the child's message
** and pushed flag alone; false when the child has no such dim. */
bool kiln_brick_put_dim(kiln_brick *b, const char *name, int64_t value);

/* "<a>.<b>" (a routing brick's per-name dims), caller frees; NULL on OOM. */
char *kiln_brick_dim_key(const char *attr, const char *name);

#endif
