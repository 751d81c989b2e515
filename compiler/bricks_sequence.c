/* bricks_sequence.c: Blocks' sequences (blocks.bricks.sequences): Sequence,
** children applied in order, and MLP, a Sequence of Linear bricks and
** activations that pushes its dims to the linears.
**
** Both apply their children one after the other with kiln_brick_call; the
** last child's output is handed back, so the machinery copies it and names
** the copy (sequence_apply_output) while the child's output keeps its name.
** MLP keeps its dims as named dims "dims.<i>" (the first also "input_dim",
** the last also "output_dim") and, in its data, which children are its
** linears (activations may be missing: None); its data owns that array, so
** the class has copy and destroy callbacks (an MLP can be a prototype). */
#include <stdlib.h>
#include <string.h>

#include "compiler/bricks_internal.h"

static const kiln_brick_input ANY_INPUT[] = {{"input", 0, 0, NULL, NULL}, {NULL}};
static const char *const OUTPUT[] = {"output", NULL};

static enum kiln_status apply_children(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    kiln_node h = in[0];
    for (int i = 0; i < kiln_brick_child_count(b); i++) {
        kiln_brick *c = kiln_brick_child(b, i);
        kiln_node next;
        if (kiln_brick_call(c, "apply", g, &h, 1, &next, 1) != KILN_OK)
            return kiln_brick_fail_from(b, c);
        h = next;
    }
    out[0] = h;
    return KILN_OK;
}

/* Bricks a parent is given must be distinct roots (no parent yet); anything
** else is misuse by the caller. NULL entries are allowed when allow_null. */
static bool orphans_ok(kiln_brick *const *bricks, int n, bool allow_null)
{
    for (int i = 0; i < n; i++) {
        if (!bricks[i]) {
            if (!allow_null)
                return false;
            continue;
        }
        if (kiln_brick_parent(bricks[i]))
            return false;
        for (int j = 0; j < i; j++)
            if (bricks[j] == bricks[i])
                return false;
    }
    return true;
}

/* On failure after validation, the parent takes the given bricks with it:
** ownership passed at the call whatever the outcome. */
static kiln_brick *create_failed(kiln_brick *parent, kiln_brick *const *given, int n)
{
    for (int i = 0; i < n; i++)
        if (given[i] && !kiln_brick_parent(given[i]))
            kiln_brick_destroy(given[i]);
    kiln_brick_destroy(parent);
    return NULL;
}

/* ---- Sequence ----------------------------------------------------------------- */

static const kiln_brick_application SEQUENCE_APPS[] = {
    {"apply", ANY_INPUT, OUTPUT, apply_children, 0},
    {NULL},
};
static const kiln_brick_class SEQUENCE = {
    .class_name = "Sequence",
    .default_name = "sequence",
    .applications = SEQUENCE_APPS,
};

kiln_brick *kiln_sequence_create(const char *name, kiln_brick *const *children, int n)
{
    KILN_API_CHECK(n >= 0 && (n == 0 || children));
    if (n < 0 || (n > 0 && !children) || !orphans_ok(children, n, false)) {
        KILN_API_CHECK(!"kiln_sequence_create: children must be distinct bricks without a parent");
        return NULL;
    }
    kiln_brick *b = kiln_brick_create(&SEQUENCE, name);
    if (!b)
        return create_failed(NULL, children, n);
    for (int i = 0; i < n; i++)
        if (kiln_brick_add_child(b, children[i]) != KILN_OK)
            return create_failed(b, children, n);
    return b;
}

/* ---- MLP ------------------------------------------------------------------------ */

typedef struct mlp {
    int n_layers;
    int *linear_at; /* owned: the child index of linear i */
} mlp;

/* Blocks' MLP._push_allocation_config: dims (and use_bias when set on the
** MLP) to the linears. */
static enum kiln_status mlp_push_allocation_config(kiln_brick *b)
{
    const mlp *m = kiln_brick_data(b);
    for (int i = 0; i < m->n_layers; i++) {
        char in[32], out[32];
        snprintf(in, sizeof in, "dims.%d", i);
        snprintf(out, sizeof out, "dims.%d", i + 1);
        kiln_brick *lin = kiln_brick_child(b, m->linear_at[i]);
        kiln_brick_put_dim(lin, "input_dim", kiln_brick_dim(b, in));
        kiln_brick_put_dim(lin, "output_dim", kiln_brick_dim(b, out));
        if (kiln_brick_use_bias_set(b))
            kiln_brick_push_use_bias(lin, kiln_brick_use_bias(b));
    }
    return KILN_OK;
}

static enum kiln_status mlp_copy(kiln_brick *dst, const kiln_brick *src)
{
    mlp *d = kiln_brick_data(dst);
    const mlp *s = kiln_brick_data(src);
    d->linear_at = malloc((size_t)s->n_layers * sizeof *d->linear_at);
    if (!d->linear_at)
        return kiln_brick_fail(dst, KILN_ERR_NOMEM, "no memory to copy %s", kiln_brick_path(src));
    memcpy(d->linear_at, s->linear_at, (size_t)s->n_layers * sizeof *d->linear_at);
    d->n_layers = s->n_layers;
    return KILN_OK;
}

static void mlp_destroy(kiln_brick *b)
{
    mlp *m = kiln_brick_data(b);
    if (m)
        free(m->linear_at);
}

static const kiln_brick_application MLP_APPS[] = {
    {"apply", ANY_INPUT, OUTPUT, apply_children, 0},
    {NULL},
};
static const kiln_brick_class MLP = {
    .class_name = "MLP",
    .default_name = "mlp",
    .flags = KILN_BRICK_INITIALIZABLE | KILN_BRICK_USE_BIAS,
    .data_size = sizeof(mlp),
    .applications = MLP_APPS,
    .push_allocation_config = mlp_push_allocation_config,
    .copy = mlp_copy,
    .destroy = mlp_destroy,
};

/* dims.<i> for i in 0..n_layers, the first also input_dim, the last also
** output_dim. */
static bool mlp_add_dims(kiln_brick *b, int n_layers, const int64_t *dims)
{
    for (int i = 0; i <= n_layers; i++) {
        char names[64];
        snprintf(names, sizeof names, "dims.%d%s%s", i, i == 0 ? "|input_dim" : "",
                 i == n_layers ? "|output_dim" : "");
        if (kiln_brick_add_dim(b, names, dims[i]) != KILN_OK)
            return false;
    }
    return true;
}

/* MLP(activations, dims). Plan:
** 1. validate (misuse returns NULL and takes nothing);
** 2. make the brick, its dims and data;
** 3. per layer: a lazy Linear "linear_<i>", then the activation, renamed
**    "<class>_<i>" when it has its default name.
** Any failure after 1 destroys what was given. */
kiln_brick *kiln_mlp_create(const char *name, kiln_brick *const *activations, int n_layers, const int64_t *dims)
{
    /* 1. validate: activations that are not the caller's to give are left
    ** alone; past that check they are taken whatever the outcome */
    if (n_layers < 1 || n_layers > INT32_MAX / 2 - 1) {
        KILN_API_CHECK(!"kiln_mlp_create: needs n_layers >= 1");
        return NULL;
    }
    if (activations && !orphans_ok(activations, n_layers, true)) {
        KILN_API_CHECK(!"kiln_mlp_create: activations must be distinct bricks without a parent");
        return NULL;
    }
    kiln_brick *const *given = activations;
    int n_given = activations ? n_layers : 0;
    if (!dims) {
        KILN_API_CHECK(!"kiln_mlp_create: needs n_layers + 1 dims");
        return create_failed(NULL, given, n_given);
    }
    for (int i = 0; i <= n_layers; i++)
        if (dims[i] < 0)
            return create_failed(NULL, given, n_given);

    /* 2. the brick */
    kiln_brick *b = kiln_brick_create(&MLP, name);
    if (!b)
        return create_failed(NULL, given, n_given);
    mlp *m = kiln_brick_data(b);
    if (!(m->linear_at = malloc((size_t)n_layers * sizeof *m->linear_at)) || !mlp_add_dims(b, n_layers, dims))
        return create_failed(b, given, n_given);
    m->n_layers = n_layers;

    /* 3. children, interleaved */
    for (int i = 0; i < n_layers; i++) {
        char cname[KILN_MAX_NAME + 1];
        snprintf(cname, sizeof cname, "linear_%d", i);
        /* Lazy: dims arrive by push_allocation_config, as in Blocks. */
        kiln_brick *lin = kiln_linear_create(cname, 0, 0);
        if (!lin)
            return create_failed(b, given, n_given);
        m->linear_at[i] = kiln_brick_child_count(b);
        if (kiln_brick_add_child(b, lin) != KILN_OK) {
            kiln_brick_destroy(lin);
            return create_failed(b, given, n_given);
        }
        kiln_brick *act = activations ? activations[i] : NULL;
        if (!act)
            continue;
        if (kiln_brick_has_default_name(act)) {
            if (kiln_snprintf(cname, sizeof cname, "%s_%d", kiln_brick_class_of(act)->default_name, i) != 0 ||
                !kiln_brick_rename(act, cname))
                return create_failed(b, given, n_given);
        }
        if (kiln_brick_add_child(b, act) != KILN_OK)
            return create_failed(b, given, n_given);
    }
    return b;
}
