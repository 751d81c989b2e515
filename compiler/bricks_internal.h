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

/* The dim input `in` declares for its last axis: its last_dim, times k when
** written "k*dim"; 0 when it declares none or that dim is not set. */
int64_t kiln_brick_input_dim(const kiln_brick *b, const kiln_brick_input *in);

/* Application app of b (its class's record) and the inputs b declares for
** it (the class's, or b's own); NULL and 0 when b has no such application. */
const kiln_brick_application *kiln_brick_application_of(const kiln_brick *b, const char *app,
                                                        const kiln_brick_input **inputs, int *n_inputs);
/* The status of b's last failure (KILN_OK when its last call succeeded). */
enum kiln_status kiln_brick_status(const kiln_brick *b);
/* Set the recurrent options of b's call under way (NULL: the defaults);
** returns the previous ones, for the caller to put back. */
const kiln_recurrent_options *kiln_brick_swap_options(kiln_brick *b, const kiln_recurrent_options *o);

/* Bricks given to a constructor: distinct bricks without a parent (NULL
** entries allowed); anything else is the caller's misuse. */
bool kiln_bricks_are_roots(kiln_brick *const *bricks, int n);
/* Destroy the bricks of bricks[0..n) still without a parent (NULL entries
** skipped): a constructor that failed after taking them. */
void kiln_bricks_destroy_roots(kiln_brick *const *bricks, int n);

/* The seed of b's random draws in a graph: the nearest seed set
** (kiln_brick_set_seed) on b or an ancestor, else Blocks' default, 1. */
uint64_t kiln_brick_seed(const kiln_brick *b);

/* The dim input `name` of b's application app declares for its last axis
** (kiln_brick_input_dim), 0 when unknown. */
int64_t kiln_brick_app_input_dim(const kiln_brick *b, const char *app, const char *name);

/* What a recurrent application's input is: KILN_INPUT_SEQUENCE, _STATE,
** _CONTEXT, or 0. */
static inline unsigned kiln_input_kind(const kiln_brick_input *d)
{
    return d->flags & (KILN_INPUT_SEQUENCE | KILN_INPUT_STATE | KILN_INPUT_CONTEXT);
}

/* Child i's application app on in[0..n_in) (kiln_brick_call), its failure
** made b's. */
enum kiln_status kiln_brick_child_call(kiln_brick *b, int i, const char *app, kiln_graph *g, const kiln_node *in,
                                       int n_in, kiln_node *out, int n_out);

/* bricks_attention.c, for the sequence generator (bricks_seqgen.c): a
** FakeAttentionRecurrent (Blocks': a transition with no attention), and
** where an AttentionRecurrent's apply takes the attended and its mask. */
kiln_brick *kiln_fake_attention_recurrent_create(const char *name, kiln_brick *transition);
typedef struct kiln_attention_recurrent_info {
    bool fake;               /* no attention, no glimpses */
    int n_transition_inputs; /* the transition's apply inputs: apply's first ones */
    int attended, mask;      /* their indices among apply's inputs (not when fake) */
} kiln_attention_recurrent_info;
/* false when b is not an (Fake)AttentionRecurrent. */
bool kiln_attention_recurrent_layout(const kiln_brick *b, kiln_attention_recurrent_info *info);

/* A recurrent application's call (bricks_recurrent.c), run by the
** machinery in place of app->fn once the inputs are checked: decl and outs
** are the application's lists as b declares them. */
enum kiln_status kiln_recurrent_run(kiln_brick *b, const kiln_brick_application *app, const kiln_brick_input *decl,
                                    int n_in, const char *const *outs, int n_out, kiln_graph *g,
                                    const kiln_node *inputs, kiln_node *outputs);

#endif
