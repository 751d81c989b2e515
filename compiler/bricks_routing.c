/* bricks_routing.c: Blocks' routing bricks (blocks.bricks.parallel):
** Parallel, Fork, Distribute and Merge, applications of several named
** inputs and outputs built from copies of a prototype brick.
**
** Each is a class of the brick model (brick.c) whose brick holds its names
** in its data, one copy of the prototype per name as its children (in the
** order of the names, named "<prefix>_<name>" as Blocks names them), and
** dims by name: a dim shared by every copy ("input_dim" of Fork,
** "source_dim" of Distribute, "output_dim" of Merge) or one per name
** ("input_dims.x", "output_dims.x", "target_dims.x"). What tells the four
** apart is data: where copy i takes its input_dim and output_dim from
** (DIM_SOURCE, pushed at allocation as Blocks' _push_allocation_config), and
** an application function each. Their inputs and outputs depend on the names
** given, so each brick sets its own (kiln_brick_set_application_io, Blocks'
** @apply.property), with the last dim of each input declared so that the
** machinery names a wrong input before any copy is applied.
** Semantics, as Blocks' parallel.py: Parallel applies copy i to input i;
** Fork applies every copy to its one input; Distribute(targets, source)
** gives copy i (source) + target i; Merge gives the sum of copy i (input i).
** Default prototypes: Fork an affine Linear; Distribute and Merge a Linear
** without bias (Distribute's documented example sets no biases_init).
** Initializable: the machinery's default push gives the copies the
** weights_init / biases_init set on the routing brick. */
#include <stdlib.h>
#include <string.h>

#include "compiler/bricks_internal.h"

enum routing_kind { ROUTE_PARALLEL, ROUTE_FORK, ROUTE_DISTRIBUTE, ROUTE_MERGE };

typedef struct routing {
    enum routing_kind kind;
    int n;
    char **names; /* owned, NULL-terminated: inputs (Parallel, Merge), outputs (Fork),
                  ** targets (Distribute) */
} routing;

/* Where copy i takes its dims from: attr, or "<attr>.<name i>" when each. */
typedef struct dim_source {
    const char *in;
    bool in_each;
    const char *out;
    bool out_each;
} dim_source;

static const dim_source DIM_SOURCE[] = {
    [ROUTE_PARALLEL] = {"input_dims", true, "output_dims", true},
    [ROUTE_FORK] = {"input_dim", false, "output_dims", true},
    [ROUTE_DISTRIBUTE] = {"source_dim", false, "target_dims", true},
    [ROUTE_MERGE] = {"input_dims", true, "output_dim", false},
};

/* ---- the shared callbacks ------------------------------------------------------- */

/* The dim attr (each: of name) of b into *v. */
static enum kiln_status dim_of(kiln_brick *b, const char *attr, bool each, const char *name, int64_t *v)
{
    if (!each) {
        *v = kiln_brick_dim(b, attr);
        return KILN_OK;
    }
    char *key = kiln_brick_dim_key(attr, name);
    if (!key)
        return kiln_brick_fail(b, KILN_ERR_NOMEM, "no memory for the name of dim %s.%s", attr, name);
    *v = kiln_brick_dim(b, key);
    free(key);
    return KILN_OK;
}

static enum kiln_status routing_push_allocation_config(kiln_brick *b)
{
    const routing *r = kiln_brick_data(b);
    const dim_source *src = &DIM_SOURCE[r->kind];
    for (int i = 0; i < r->n; i++) {
        int64_t in = 0, out = 0;
        enum kiln_status s = dim_of(b, src->in, src->in_each, r->names[i], &in);
        if (s == KILN_OK)
            s = dim_of(b, src->out, src->out_each, r->names[i], &out);
        if (s != KILN_OK)
            return s;
        kiln_brick *c = kiln_brick_child(b, i);
        kiln_brick_put_dim(c, "input_dim", in);
        kiln_brick_put_dim(c, "output_dim", out);
    }
    return KILN_OK;
}

static void free_names(char **names, int n)
{
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

/* names[0..n) copied, then NULL (an outputs list); NULL on OOM. */
static char **copy_names(const char *const *names, int n)
{
    char **c = calloc((size_t)n + 1, sizeof *c);
    for (int i = 0; c && i < n; i++)
        if (!(c[i] = kiln_strdup(names[i]))) {
            free_names(c, n);
            return NULL;
        }
    return c;
}

static enum kiln_status routing_copy(kiln_brick *dst, const kiln_brick *src)
{
    routing *d = kiln_brick_data(dst);
    const routing *s = kiln_brick_data(src);
    if (!(d->names = copy_names((const char *const *)s->names, s->n)))
        return kiln_brick_fail(dst, KILN_ERR_NOMEM, "no memory to copy %s", kiln_brick_path(src));
    d->kind = s->kind;
    d->n = s->n;
    return KILN_OK;
}

static void routing_destroy(kiln_brick *b)
{
    routing *r = kiln_brick_data(b);
    if (r)
        free_names(r->names, r->n);
}

/* ---- applications ---------------------------------------------------------------- */

/* Copy i applied to x; its failure becomes b's. */
static enum kiln_status transform(kiln_brick *b, int i, kiln_graph *g, kiln_node x, kiln_node *y)
{
    kiln_brick *c = kiln_brick_child(b, i);
    if (kiln_brick_call(c, "apply", g, &x, 1, y, 1) != KILN_OK)
        return kiln_brick_fail_from(b, c);
    return KILN_OK;
}

static enum kiln_status parallel_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const routing *r = kiln_brick_data(b);
    for (int i = 0; i < r->n; i++)
        if (transform(b, i, g, in[i], &out[i]) != KILN_OK)
            return KILN_ERR_STATE; /* the message is on b */
    return KILN_OK;
}

static enum kiln_status fork_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const routing *r = kiln_brick_data(b);
    for (int i = 0; i < r->n; i++)
        if (transform(b, i, g, in[0], &out[i]) != KILN_OK)
            return KILN_ERR_STATE;
    return KILN_OK;
}

/* inputs: the source, then the targets; Blocks: result[i] += target i */
static enum kiln_status distribute_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const routing *r = kiln_brick_data(b);
    for (int i = 0; i < r->n; i++) {
        kiln_node t;
        if (transform(b, i, g, in[0], &t) != KILN_OK)
            return KILN_ERR_STATE;
        if (kiln_brick_built(b, g, out[i] = kiln_expr_add(g, t, in[1 + i])) != KILN_OK)
            return KILN_ERR_SHAPE;
    }
    return KILN_OK;
}

static enum kiln_status merge_apply(kiln_brick *b, kiln_graph *g, const kiln_node *in, kiln_node *out)
{
    const routing *r = kiln_brick_data(b);
    kiln_node sum = KILN_NODE_NONE;
    for (int i = 0; i < r->n; i++) {
        kiln_node t;
        if (transform(b, i, g, in[i], &t) != KILN_OK)
            return KILN_ERR_STATE;
        sum = i == 0 ? t : kiln_expr_add(g, sum, t);
    }
    out[0] = sum;
    return kiln_brick_built(b, g, sum);
}

/* ---- classes ---------------------------------------------------------------------- */

/* Placeholders: each brick sets its own inputs and outputs. */
static const kiln_brick_input ONE_INPUT[] = {{"input", 0, 0, NULL, NULL}, {NULL}};
static const char *const ONE_OUTPUT[] = {"output", NULL};

static const kiln_brick_application PARALLEL_APPS[] = {{"apply", ONE_INPUT, ONE_OUTPUT, parallel_apply, 0}, {NULL}};
static const kiln_brick_application FORK_APPS[] = {{"apply", ONE_INPUT, ONE_OUTPUT, fork_apply, 0}, {NULL}};
static const kiln_brick_application DISTRIBUTE_APPS[] = {{"apply", ONE_INPUT, ONE_OUTPUT, distribute_apply, 0},
                                                         {NULL}};
static const kiln_brick_application MERGE_APPS[] = {{"apply", ONE_INPUT, ONE_OUTPUT, merge_apply, 0}, {NULL}};

static const char *const FORK_DIMS[] = {"input_dim", NULL};
static const char *const DISTRIBUTE_DIMS[] = {"source_dim", NULL};
static const char *const MERGE_DIMS[] = {"output_dim", NULL};

/* The four differ in name, dims and application function only. */
#define ROUTING_CLASS(cls_name, def_name, dim_names, apps)                                                   \
    {                                                                                                        \
        .class_name = cls_name, .default_name = def_name, .flags = KILN_BRICK_INITIALIZABLE,                 \
        .data_size = sizeof(routing), .dims = dim_names, .applications = apps,                               \
        .push_allocation_config = routing_push_allocation_config, .copy = routing_copy,                      \
        .destroy = routing_destroy                                                                           \
    }
static const kiln_brick_class CLASSES[] = {
    [ROUTE_PARALLEL] = ROUTING_CLASS("Parallel", "parallel", NULL, PARALLEL_APPS),
    [ROUTE_FORK] = ROUTING_CLASS("Fork", "fork", FORK_DIMS, FORK_APPS),
    [ROUTE_DISTRIBUTE] = ROUTING_CLASS("Distribute", "distribute", DISTRIBUTE_DIMS, DISTRIBUTE_APPS),
    [ROUTE_MERGE] = ROUTING_CLASS("Merge", "merge", MERGE_DIMS, MERGE_APPS),
};

/* ---- creation --------------------------------------------------------------------- */

/* What a constructor was given. */
typedef struct routing_args {
    enum routing_kind kind;
    const char *name;
    const char *const *names;
    int n;
    const char *source;        /* Distribute */
    const int64_t *each_in;    /* per name, may be NULL: Parallel, Merge */
    const int64_t *each_out;   /* per name, may be NULL: Parallel, Fork, Distribute */
    int64_t in_dim, out_dim;   /* shared: Fork, Distribute (in), Merge (out) */
    kiln_brick *prototype;
    const char *prefix;
} routing_args;

/* A name for an input, output and dim key: non-empty, no '|' (dims' alias
** separator). */
static bool name_ok(const char *s) { return s && *s && !strchr(s, '|') && strlen(s) <= KILN_MAX_NAME; }

static bool args_ok(const routing_args *a)
{
    if (a->n < 1 || a->n > INT32_MAX / 2 || !a->names || a->in_dim < 0 || a->out_dim < 0)
        return false;
    if (a->kind == ROUTE_DISTRIBUTE && !name_ok(a->source))
        return false;
    for (int i = 0; i < a->n; i++) {
        if (!name_ok(a->names[i]) || strlen(a->prefix) + 1 + strlen(a->names[i]) > KILN_MAX_NAME ||
            (a->source && strcmp(a->source, a->names[i]) == 0) || (a->each_in && a->each_in[i] < 0) ||
            (a->each_out && a->each_out[i] < 0))
            return false;
        for (int j = 0; j < i; j++)
            if (strcmp(a->names[i], a->names[j]) == 0)
                return false;
    }
    return true;
}

/* Blocks' Feedforward: dims input_dim and output_dim, apply(x) -> y. */
static bool feedforward(const kiln_brick *p)
{
    int64_t d;
    return kiln_brick_get_dim(p, "input_dim", &d) == KILN_OK && kiln_brick_get_dim(p, "output_dim", &d) == KILN_OK &&
           kiln_brick_input_count(p, "apply") == 1 && kiln_brick_output_count(p, "apply") == 1;
}

/* The per-name dims of b (attr.<name>), values from v (NULL: 0). */
static bool add_each_dims(kiln_brick *b, const routing_args *a, const char *attr, const int64_t *v)
{
    for (int i = 0; i < a->n; i++) {
        char *key = kiln_brick_dim_key(attr, a->names[i]);
        bool ok = key && kiln_brick_add_dim(b, key, v ? v[i] : 0) == KILN_OK;
        free(key);
        if (!ok)
            return false;
    }
    return true;
}

/* The inputs and outputs of b's apply, as Blocks' apply.inputs / .outputs. */
static bool set_io(kiln_brick *b, const routing_args *a)
{
    const dim_source *src = &DIM_SOURCE[a->kind];
    bool each_input = a->kind == ROUTE_PARALLEL || a->kind == ROUTE_MERGE;
    int n_in = each_input ? a->n : a->kind == ROUTE_FORK ? 1 : 1 + a->n;
    kiln_brick_input *in = calloc((size_t)n_in + 1, sizeof *in);
    char **keys = calloc((size_t)n_in, sizeof *keys);
    bool ok = in && keys;
    for (int i = 0; ok && i < n_in; i++) {
        if (each_input) {
            in[i].name = a->names[i];
            ok = (keys[i] = kiln_brick_dim_key(src->in, a->names[i])) != NULL;
        } else if (i == 0) {
            in[i].name = a->kind == ROUTE_FORK ? "input" : a->source;
            ok = (keys[i] = kiln_strdup(src->in)) != NULL;
        } else { /* Distribute's targets */
            in[i].name = a->names[i - 1];
            in[i].flags = KILN_INPUT_FLOAT;
            ok = (keys[i] = kiln_brick_dim_key(src->out, a->names[i - 1])) != NULL;
        }
        in[i].last_dim = keys[i];
    }
    const routing *r = kiln_brick_data(b);
    ok = ok && kiln_brick_set_application_io(b, "apply", in,
                                             a->kind == ROUTE_MERGE ? ONE_OUTPUT
                                                                    : (const char *const *)r->names) == KILN_OK;
    for (int i = 0; keys && i < n_in; i++)
        free(keys[i]);
    free(keys);
    free(in);
    return ok;
}

/* Plan:
** 1. validate (a prototype with a parent is misuse: NULL, left alone);
** 2. the default prototype, or check the given one is a Feedforward;
** 3. the brick, its names and dims;
** 4. one copy of the prototype per name;
** 5. its application's inputs and outputs.
** After 1 the prototype is destroyed whatever the outcome. */
static kiln_brick *routing_create(routing_args a)
{
    /* 1. validate */
    if (a.prototype && kiln_brick_parent(a.prototype)) {
        KILN_API_CHECK(!"routing brick: the prototype must have no parent");
        return NULL;
    }
    if (!a.prefix || !*a.prefix)
        a.prefix = "transform";
    kiln_brick *b = NULL;
    if (!args_ok(&a))
        goto fail;
    /* 2. prototype */
    if (!a.prototype) {
        a.prototype = kiln_linear_create(NULL, 0, 0);
        if (!a.prototype || (a.kind != ROUTE_FORK && kiln_brick_set_use_bias(a.prototype, false) != KILN_OK))
            goto fail;
    } else if (!feedforward(a.prototype)) {
        goto fail;
    }
    /* 3. the brick */
    if (!(b = kiln_brick_create(&CLASSES[a.kind], a.name)))
        goto fail;
    routing *r = kiln_brick_data(b);
    r->kind = a.kind;
    if (!(r->names = copy_names(a.names, a.n)))
        goto fail;
    r->n = a.n;
    const dim_source *src = &DIM_SOURCE[a.kind];
    if ((src->in_each ? !add_each_dims(b, &a, src->in, a.each_in) : !kiln_brick_put_dim(b, src->in, a.in_dim)) ||
        (src->out_each ? !add_each_dims(b, &a, src->out, a.each_out) : !kiln_brick_put_dim(b, src->out, a.out_dim)))
        goto fail;
    /* 4. children */
    for (int i = 0; i < a.n; i++) {
        char cname[KILN_MAX_NAME + 1];
        snprintf(cname, sizeof cname, "%s_%s", a.prefix, a.names[i]); /* length checked by args_ok */
        kiln_brick *c = kiln_brick_clone(a.prototype, cname);
        if (!c)
            goto fail;
        if (kiln_brick_add_child(b, c) != KILN_OK) {
            kiln_brick_destroy(c);
            goto fail;
        }
    }
    /* 5. inputs and outputs */
    if (!set_io(b, &a))
        goto fail;
    kiln_brick_destroy(a.prototype);
    return b;
fail:
    kiln_brick_destroy(a.prototype);
    kiln_brick_destroy(b);
    return NULL;
}

kiln_brick *kiln_parallel_create(const char *name, const char *const *input_names, int n, const int64_t *input_dims,
                                 const int64_t *output_dims, kiln_brick *prototype, const char *child_prefix)
{
    /* Blocks' Parallel has no default prototype */
    KILN_API_CHECK(prototype);
    if (!prototype)
        return NULL;
    return routing_create((routing_args){.kind = ROUTE_PARALLEL, .name = name, .names = input_names, .n = n,
                                         .each_in = input_dims, .each_out = output_dims, .prototype = prototype,
                                         .prefix = child_prefix});
}

kiln_brick *kiln_fork_create(const char *name, const char *const *output_names, int n, int64_t input_dim,
                             const int64_t *output_dims, kiln_brick *prototype)
{
    return routing_create((routing_args){.kind = ROUTE_FORK, .name = name, .names = output_names, .n = n,
                                         .in_dim = input_dim, .each_out = output_dims, .prototype = prototype,
                                         .prefix = "fork"});
}

/* Blocks' Distribute is a Fork: its copies are "fork_<target>". */
kiln_brick *kiln_distribute_create(const char *name, const char *const *target_names, int n, const char *source_name,
                                   const int64_t *target_dims, int64_t source_dim, kiln_brick *prototype)
{
    return routing_create((routing_args){.kind = ROUTE_DISTRIBUTE, .name = name, .names = target_names, .n = n,
                                         .source = source_name, .in_dim = source_dim, .each_out = target_dims,
                                         .prototype = prototype, .prefix = "fork"});
}

kiln_brick *kiln_merge_create(const char *name, const char *const *input_names, int n, const int64_t *input_dims,
                              int64_t output_dim, kiln_brick *prototype, const char *child_prefix)
{
    return routing_create((routing_args){.kind = ROUTE_MERGE, .name = name, .names = input_names, .n = n,
                                         .each_in = input_dims, .out_dim = output_dim, .prototype = prototype,
                                         .prefix = child_prefix});
}
