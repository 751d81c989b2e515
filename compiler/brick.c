/* brick.c: the brick machinery (Blocks' Brick, Application, Initializable):
** what every brick shares, whatever its class.
**
** A brick's kind is a kiln_brick_class (include/kiln/bricks.h): a class
** name, flags (Initializable, use_bias, Activation), its named dims, its
** applications (each with named inputs, some optional, named outputs and a
** function that builds IR), the size of each brick's own data, and callbacks
** for the steps of the life cycle. This file runs the life cycle and calls
** the callbacks; the classes of kiln itself live beside it, one concept a
** file: compiler/bricks_simple.c (Linear, Bias, LookupTable, activations,
** Softmax), bricks_sequence.c (Sequence, MLP), bricks_cost.c (cost
** bricks), bricks_routing.c (Parallel, Fork, Distribute, Merge),
** bricks_recurrent.c (Blocks' @recurrent and the recurrent bricks; call()
** hands it a recurrent application). They use the public class API, as a user's class
** does, plus bricks_internal.h for a few conveniences (messages, MLP's
** renaming of its activations, the recurrent layer's hooks).
** Choice made: data and callbacks, as Lua's and SQLite's extension points,
** rather than the closed enum and switches this replaced (issue #8): a
** closed set cannot grow the routing and recurrent bricks, nor let a user
** write one, and its "at most two parameters, one input" limits leaked into
** the machinery. Rejected: one vtable entry per application (a C function
** per Blocks method): applications are data here, so that their inputs and
** outputs can be queried (Blocks' Foo.apply.inputs) and checked by the
** machinery before a class's function runs.
**
** Tree: a brick owns its children (`children`, in Blocks' order). Paths
** ("/mlp/linear_0") are computed when a brick is made or adopted, so
** kiln_brick_path never allocates.
**
** Life cycle, as Blocks (see include/kiln/bricks.h):
**   push_allocation_config  the class's callback configures the children
**                           (MLP: its linears' dims and use_bias when set
**                           on it); recursive; sets alloc_pushed.
**   allocate                pushes if not pushed, allocates children, then
**                           the class's allocate declares its own
**                           parameters (kiln_brick_add_param), NaN-filled.
**   push_initialization_config  an Initializable brick copies weights_init /
**                           biases_init / use_bias (those set on it) to its
**                           Initializable children, then the class's
**                           callback runs; recursive; sets init_pushed.
**   initialize              allocates if needed, pushes if not pushed,
**                           initializes children first, then itself: the
**                           class's initialize, or BIAS parameters from
**                           biases_init then WEIGHT ones from weights_init.
**   apply (kiln_brick_call) checks the inputs against the application's
**                           list (count, node of g, dtype, rank, last dim),
**                           allocates if needed, runs the class's function,
**                           then names and tags the outputs.
** A setter called on a brick clears that brick's pushed flag, so changed
** configuration is pushed again; changing a child after a manual push (the
** documented override) survives, as in Blocks.
**
** Parameters: store entries (compiler/store.c), kept in `entries` for the
** brick's life, so a kiln_param pointer stays valid; `params` lists the
** allocated ones in declaration order. An allocate callback declares them by
** name; the declarations are staged in `pending` and committed when the
** callback returns KILN_OK, so a failed allocation leaves the previous
** parameters as they were. Choice made: a re-allocation re-uses the entry of
** the same name and replaces its values (NaN) and shape, rather than making a
** new parameter as Blocks does; a graph built before then refers to the
** current values, and a stale shape is caught when the graph is compiled. An
** entry not declared again (use_bias turned off) keeps its struct but loses
** its values: kiln_param_get_values says KILN_ERR_STATE. Values are double,
** row-major, whatever the graph's floatx. kiln_param_create makes a
** parameter of no brick (Theano's shared variable), owned by the caller.
**
** Randomness: initialize() on a brick seeds a kiln_rng with the brick's seed
** (default: the configuration's default_seed, 1 unless set, as Blocks'
** config.default_seed; read when initialize() needs it) and hands the same stream to its
** children in child order, as Blocks pushes its rng; a child given its own
** seed (kiln_brick_set_seed) starts its own stream. Re-initializing re-seeds,
** so initialize() is deterministic. `rng` is set only while the class's
** initialize runs (kiln_brick_fill_param draws from it).
**
** Graph nodes: an application adds nodes through the public builders; the
** call then tags each output: name "<brick>_<application>_<output>", role
** OUTPUT, owner the brick's path (the IR keeps paths, never bricks). Blocks
** copies every application output; kiln copies (x * 1) only an output that
** is a node the application did not make (an input, a parameter, a child's
** named output), so that node keeps its name; the program graph's rewrites
** remove the copy. An output that is an older node without a name (a program
** graph's CSE handed it back) is left alone.
** Errors: each failing call records "<path>: <what>" on the brick it was
** called on (a parent copies its child's message) and, for an application,
** also on the graph so that an unchecked chain of builders still reports it. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/bricks_internal.h"
#include "compiler/graph.h"
#include "compiler/init.h"
#include "compiler/rng.h"
#include "compiler/store.h"
#include "runtime/config.h"

/* Room for a list of names in a message ("y, y_hat"); longer ones end in "...". */
#define NAME_LIST_MAX 160

/* A named dim; names lists its names separated by '|'. */
typedef struct brick_dim {
    char *names; /* owned */
    int64_t value;
} brick_dim;

/* An application as a brick sees it: the class's lists, or the brick's own
** copies (kiln_brick_set_application_io). */
typedef struct app_view {
    const kiln_brick_application *app;
    const kiln_brick_input *inputs;
    int n_inputs;
    const char *const *outputs;
    int n_outputs;
    kiln_brick_input *own_inputs; /* owned with their strings, or NULL */
    char **own_outputs;           /* owned with their strings, or NULL */
} app_view;

/* A parameter declared by the running allocate callback. */
typedef struct pending_param {
    kiln_param *p;
    unsigned roles;
    int rank;
    int64_t dims[KILN_MAX_RANK];
    bool fresh; /* made by this allocation: it has its NaN values already */
} pending_param;

struct kiln_brick {
    kiln_err err;
    const kiln_brick_class *cls;
    char name[KILN_MAX_NAME + 1];
    bool default_name; /* created with name NULL: an MLP may rename it */
    char *path;        /* owned, "/parent/name" */
    kiln_brick *parent;
    kiln_brick **children; /* owned, n_children of them */
    int n_children, cap_children;
    brick_dim *dims;
    int n_dims;
    app_view *apps;
    int n_apps;
    void *data; /* the class's, cls->data_size bytes */
    /* configuration; an init of KILN_INIT_NONE is "not set" */
    kiln_init weights_init, biases_init;
    bool use_bias, use_bias_set;
    uint64_t seed;
    bool seed_set;
    /* life cycle */
    bool alloc_pushed, init_pushed, allocated, initialized;
    kiln_param **entries; /* store entries ever made, kept for b's life */
    kiln_param **params;  /* allocated ones, declaration order; room for n_entries */
    int n_entries, cap_entries, n_params;
    bool allocating; /* the allocate callback runs: add_param stages into pending */
    pending_param *pending;
    int n_pending, cap_pending;
    kiln_rng *rng; /* the stream, while the initialize callback runs */
    /* the recurrent options of the call under way (kiln_recurrent_call), or
    ** NULL: the defaults */
    const kiln_recurrent_options *options;
};

/* ---- errors ------------------------------------------------------------- */

static enum kiln_status brick_failv(kiln_brick *b, enum kiln_status status, const char *fmt, va_list ap)
{
    /* A message cut here is also too long for the slot, which then ends it
    ** in "...": the cut is never silent. */
    char what[KILN_ERRMSG_MAX];
    vsnprintf(what, sizeof what, fmt, ap);
    return kiln_err_set(&b->err, status, "%s: %s", b->path ? b->path : b->name, what);
}

/* Record "<path>: <message>" on b; returns status. */
static enum kiln_status brick_fail(kiln_brick *b, enum kiln_status status, const char *fmt, ...)
    KILN_PRINTF(3, 4);
static enum kiln_status brick_fail(kiln_brick *b, enum kiln_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum kiln_status s = brick_failv(b, status, fmt, ap);
    va_end(ap);
    return s;
}

enum kiln_status kiln_brick_fail(kiln_brick *b, enum kiln_status status, const char *fmt, ...)
{
    KILN_API_CHECK(b && fmt && status != KILN_OK);
    if (!b)
        return KILN_ERR_ARG;
    if (!fmt) /* the status stands; the message says why there is no more */
        return brick_fail(b, status, "failed (kiln_brick_fail's fmt is NULL)");
    va_list ap;
    va_start(ap, fmt);
    enum kiln_status s = brick_failv(b, status, fmt, ap);
    va_end(ap);
    return s;
}

/* A child's failure becomes its parent's, message unchanged (it names the
** child's path already). */
enum kiln_status kiln_brick_fail_from(kiln_brick *b, const kiln_brick *child)
{
    KILN_API_CHECK(b && child);
    if (!b)
        return KILN_ERR_ARG;
    if (!child)
        return brick_fail(b, KILN_ERR_ARG, "kiln_brick_fail_from: child is NULL");
    if (child->err.status == KILN_OK)
        return brick_fail(b, KILN_ERR_STATE, "%s failed without a message", child->path);
    return kiln_err_copy(&b->err, &child->err, NULL);
}

/* A class callback returned status s: make sure b says why. */
static enum kiln_status callback_failed(kiln_brick *b, enum kiln_status s, const char *step)
{
    if (b->err.status != KILN_OK)
        return b->err.status;
    return brick_fail(b, s, "%s of %s failed without a message", step, b->cls->class_name);
}

const char *kiln_brick_errmsg(const kiln_brick *b)
{
    if (!b)
        return "no brick (NULL)";
    return b->err.status == KILN_OK ? "ok" : b->err.msg;
}

/* ---- lists of names ------------------------------------------------------ */

static int count_inputs(const kiln_brick_input *in)
{
    int n = 0;
    while (in && in[n].name)
        n++;
    return n;
}

static int count_names(const char *const *names)
{
    int n = 0;
    while (names && names[n])
        n++;
    return n;
}

/* "a, b, c" into buf (cut with "..." when long); returns buf. */
static const char *join(char *buf, size_t cap, int n, const char *(*at)(const void *, int), const void *list)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        int k = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", at(list, i));
        if (k < 0 || (size_t)k >= cap - used) {
            strcpy(buf + cap - 4, "...");
            break;
        }
        used += (size_t)k;
    }
    return buf;
}

static const char *input_at(const void *list, int i) { return ((const kiln_brick_input *)list)[i].name; }
static const char *name_at(const void *list, int i) { return ((const char *const *)list)[i]; }
static const char *app_at(const void *list, int i) { return ((const app_view *)list)[i].app->name; }

/* ---- creation, tree and paths ------------------------------------------------ */

static bool class_ok(const kiln_brick_class *cls)
{
    if (!cls || !cls->class_name || !cls->default_name || strlen(cls->default_name) > KILN_MAX_NAME)
        return false;
    for (const kiln_brick_application *a = cls->applications; a && a->name; a++)
        if (!a->fn || count_names(a->outputs) == 0)
            return false;
    return true;
}

static void app_view_drop(app_view *v)
{
    for (int i = 0; v->own_inputs && i < v->n_inputs; i++) {
        free((char *)v->own_inputs[i].name);
        free((char *)v->own_inputs[i].layout);
        free((char *)v->own_inputs[i].last_dim);
    }
    for (int i = 0; v->own_outputs && i < v->n_outputs; i++)
        free(v->own_outputs[i]);
    free(v->own_inputs);
    free(v->own_outputs);
    v->own_inputs = NULL;
    v->own_outputs = NULL;
}

static void app_view_init(app_view *v, const kiln_brick_application *a)
{
    *v = (app_view){.app = a, .inputs = a->inputs, .n_inputs = count_inputs(a->inputs),
                    .outputs = a->outputs, .n_outputs = count_names(a->outputs)};
}

/* Free b and its subtree, whatever their parents. */
static void brick_free(kiln_brick *b)
{
    if (b->cls->destroy)
        b->cls->destroy(b);
    for (int i = 0; i < b->n_children; i++)
        brick_free(b->children[i]);
    for (int i = 0; i < b->n_entries; i++) { /* a graph or program may keep an entry: it forgets b */
        kiln_store_set_front(b->entries[i], NULL, NULL);
        kiln_store_unref(b->entries[i]);
    }
    for (int i = 0; i < b->n_dims; i++)
        free(b->dims[i].names);
    for (int i = 0; i < b->n_apps; i++)
        app_view_drop(&b->apps[i]);
    free(b->entries);
    free(b->params);
    free(b->pending);
    free(b->dims);
    free(b->apps);
    free(b->children);
    free(b->data);
    free(b->path);
    free(b);
}

void kiln_brick_destroy(kiln_brick *b)
{
    if (!b)
        return;
    /* A child is destroyed by its parent: destroying it alone would leave
    ** the parent pointing at freed memory. */
    KILN_API_CHECK(!b->parent);
    if (b->parent)
        return;
    brick_free(b);
}

static enum kiln_status dim_add(kiln_brick *b, const char *names, int64_t value);

kiln_brick *kiln_brick_create(const kiln_brick_class *cls, const char *name)
{
    KILN_API_CHECK(class_ok(cls));
    if (!class_ok(cls) || (name && strlen(name) > KILN_MAX_NAME))
        return NULL;
    kiln_brick *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->cls = cls;
    b->default_name = name == NULL;
    strcpy(b->name, name ? name : cls->default_name); /* length checked above */
    b->use_bias = true;
    size_t n = strlen(b->name) + 2;
    bool ok = (b->path = malloc(n)) != NULL;
    if (ok)
        snprintf(b->path, n, "/%s", b->name);
    if (ok && cls->data_size)
        ok = (b->data = calloc(1, cls->data_size)) != NULL;
    int n_apps = 0;
    for (const kiln_brick_application *a = cls->applications; a && a->name; a++)
        n_apps++;
    if (ok && n_apps && (ok = (b->apps = calloc((size_t)n_apps, sizeof *b->apps)) != NULL))
        b->n_apps = n_apps;
    for (int i = 0; ok && i < b->n_apps; i++)
        app_view_init(&b->apps[i], &cls->applications[i]);
    for (int i = 0; ok && cls->dims && cls->dims[i]; i++)
        ok = dim_add(b, cls->dims[i], 0) == KILN_OK;
    if (!ok) {
        brick_free(b);
        return NULL;
    }
    return b;
}

const kiln_brick_class *kiln_brick_class_of(const kiln_brick *b) { return b ? b->cls : NULL; }
void *kiln_brick_data(const kiln_brick *b) { return b ? b->data : NULL; }
bool kiln_brick_has_default_name(const kiln_brick *b) { return b->default_name; }

bool kiln_brick_rename(kiln_brick *b, const char *name)
{
    if (strlen(name) > KILN_MAX_NAME)
        return false;
    strcpy(b->name, name);
    b->default_name = false;
    return true;
}

/* Recompute b's path from its parent's, then its subtree's. */
static bool brick_set_paths(kiln_brick *b)
{
    const char *prefix = b->parent ? b->parent->path : "";
    size_t n = strlen(prefix) + strlen(b->name) + 2;
    char *path = malloc(n);
    if (!path)
        return false;
    snprintf(path, n, "%s/%s", prefix, b->name);
    free(b->path);
    b->path = path;
    for (int i = 0; i < b->n_entries; i++)
        if (!kiln_store_set_owner(b->entries[i], path))
            return false;
    for (int i = 0; i < b->n_children; i++)
        if (!brick_set_paths(b->children[i]))
            return false;
    return true;
}

enum kiln_status kiln_brick_add_child(kiln_brick *parent, kiln_brick *child)
{
    KILN_API_CHECK(parent && child);
    if (!parent)
        return KILN_ERR_ARG;
    kiln_err_clear(&parent->err);
    if (!child)
        return brick_fail(parent, KILN_ERR_ARG, "add_child: child is NULL");
    if (child->parent)
        return brick_fail(parent, KILN_ERR_ARG, "add_child: %s has a parent already", child->path);
    if (kiln_brick_is_within(parent, child))
        return brick_fail(parent, KILN_ERR_ARG, "add_child: %s is this brick or one of its ancestors",
                          child->path);
    if (parent->n_children == parent->cap_children) {
        int cap = parent->cap_children ? 2 * parent->cap_children : 4;
        kiln_brick **c = realloc(parent->children, (size_t)cap * sizeof *c);
        if (!c)
            return brick_fail(parent, KILN_ERR_NOMEM, "add_child: no memory for child %s", child->name);
        parent->children = c;
        parent->cap_children = cap;
    }
    child->parent = parent;
    parent->children[parent->n_children++] = child;
    if (!brick_set_paths(child)) {
        /* Undo; re-making the root paths can only fail on a second failed
        ** allocation in a row, which would leave some paths stale (names in
        ** messages and owners, never memory). */
        parent->n_children--;
        child->parent = NULL;
        brick_set_paths(child);
        return brick_fail(parent, KILN_ERR_NOMEM, "add_child: no memory for the paths of %s", child->name);
    }
    return KILN_OK;
}

/* ---- structure ------------------------------------------------------------ */

const char *kiln_brick_name(const kiln_brick *b) { return b ? b->name : ""; }
const char *kiln_brick_path(const kiln_brick *b) { return b ? b->path : ""; }
int kiln_brick_child_count(const kiln_brick *b) { return b ? b->n_children : 0; }
kiln_brick *kiln_brick_parent(const kiln_brick *b) { return b ? b->parent : NULL; }

kiln_brick *kiln_brick_child(const kiln_brick *b, int i)
{
    if (!b || i < 0 || i >= b->n_children)
        return NULL;
    return b->children[i];
}

kiln_brick *kiln_brick_child_by_name(const kiln_brick *b, const char *name)
{
    if (!b || !name)
        return NULL;
    for (int i = 0; i < b->n_children; i++)
        if (strcmp(b->children[i]->name, name) == 0)
            return b->children[i];
    return NULL;
}

bool kiln_brick_is_within(const kiln_brick *b, const kiln_brick *ancestor)
{
    for (; b; b = b->parent)
        if (b == ancestor)
            return true;
    return false;
}

/* ---- dims ------------------------------------------------------------------ */

/* Whether `name` is one of the '|'-separated names. */
static bool names_match(const char *names, const char *name)
{
    size_t len = strlen(name);
    for (const char *s = names;;) {
        const char *bar = strchr(s, '|');
        size_t n = bar ? (size_t)(bar - s) : strlen(s);
        if (n == len && strncmp(s, name, n) == 0)
            return true;
        if (!bar)
            return false;
        s = bar + 1;
    }
}

static brick_dim *dim_find(const kiln_brick *b, const char *name)
{
    for (int i = 0; i < b->n_dims; i++)
        if (names_match(b->dims[i].names, name))
            return &b->dims[i];
    return NULL;
}

/* Add a dim (no message cleared; messages on failure). */
static enum kiln_status dim_add(kiln_brick *b, const char *names, int64_t value)
{
    if (!names || !*names)
        return brick_fail(b, KILN_ERR_ARG, "add_dim: no name (names is %s)", names ? "\"\"" : "NULL");
    /* each name non-empty, at most KILN_MAX_NAME, and new */
    for (const char *s = names;;) {
        const char *bar = strchr(s, '|');
        size_t n = bar ? (size_t)(bar - s) : strlen(s);
        char one[KILN_MAX_NAME + 1];
        if (n == 0 || n > KILN_MAX_NAME)
            return brick_fail(b, KILN_ERR_ARG, "add_dim: bad name in '%.*s'", KILN_MAX_NAME, names);
        memcpy(one, s, n);
        one[n] = '\0';
        if (dim_find(b, one))
            return brick_fail(b, KILN_ERR_ARG, "add_dim: %s has a dim '%s' already", b->cls->class_name, one);
        if (!bar)
            break;
        s = bar + 1;
    }
    brick_dim *d = realloc(b->dims, (size_t)(b->n_dims + 1) * sizeof *d);
    if (!d)
        return brick_fail(b, KILN_ERR_NOMEM, "add_dim: no memory for dim '%.*s'", KILN_MAX_NAME, names);
    b->dims = d;
    char *copy = kiln_strdup(names);
    if (!copy)
        return brick_fail(b, KILN_ERR_NOMEM, "add_dim: no memory for dim '%.*s'", KILN_MAX_NAME, names);
    b->dims[b->n_dims++] = (brick_dim){copy, value};
    return KILN_OK;
}

enum kiln_status kiln_brick_add_dim(kiln_brick *b, const char *names, int64_t value)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    if (value < 0)
        return brick_fail(b, KILN_ERR_ARG, "add_dim: %.*s is %lld, expected >= 0 (0: not set)", KILN_MAX_NAME,
                          names ? names : "(null)", (long long)value);
    return dim_add(b, names, value);
}

int64_t kiln_brick_dim(const kiln_brick *b, const char *name)
{
    const brick_dim *d = b && name ? dim_find(b, name) : NULL;
    return d ? d->value : 0;
}

bool kiln_brick_put_dim(kiln_brick *b, const char *name, int64_t value)
{
    brick_dim *d = dim_find(b, name);
    if (d)
        d->value = value;
    return d != NULL;
}

enum kiln_status kiln_brick_require_dim(kiln_brick *b, const char *name, int64_t *out)
{
    KILN_API_CHECK(b && name);
    if (!b)
        return KILN_ERR_ARG;
    if (!name)
        return brick_fail(b, KILN_ERR_ARG, "require_dim: name is NULL");
    int64_t v = kiln_brick_dim(b, name);
    if (out)
        *out = v;
    if (v <= 0)
        return brick_fail(b, KILN_ERR_CONFIG, "allocation config not set: %s", name);
    return KILN_OK;
}

char *kiln_brick_dim_key(const char *attr, const char *name)
{
    size_t n = strlen(attr) + strlen(name) + 2;
    char *key = malloc(n);
    if (key)
        snprintf(key, n, "%s.%s", attr, name);
    return key;
}

enum kiln_status kiln_brick_set_dim(kiln_brick *b, const char *name, int64_t value)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    if (!name)
        return brick_fail(b, KILN_ERR_ARG, "set_dim: dim name is NULL");
    brick_dim *d = dim_find(b, name);
    if (!d)
        return brick_fail(b, KILN_ERR_NOT_FOUND, "%s has no dim '%.*s'", b->cls->class_name, KILN_MAX_NAME,
                          name);
    if (value < 0)
        return brick_fail(b, KILN_ERR_ARG, "%s is %lld, expected >= 0 (0: not set)", name, (long long)value);
    d->value = value;
    b->alloc_pushed = false;
    return KILN_OK;
}

enum kiln_status kiln_brick_get_dim(const kiln_brick *b, const char *name, int64_t *out)
{
    KILN_API_CHECK(b && out);
    if (!b)
        return KILN_ERR_ARG;
    kiln_brick *mb = (kiln_brick *)b; /* the error slot is the only thing written */
    kiln_err_clear(&mb->err);
    if (!out)
        return brick_fail(mb, KILN_ERR_ARG, "get_dim %.*s: out is NULL", KILN_MAX_NAME, name ? name : "");
    *out = 0;
    if (!name)
        return brick_fail(mb, KILN_ERR_ARG, "get_dim: dim name is NULL");
    const brick_dim *d = dim_find(b, name);
    if (!d)
        return brick_fail(mb, KILN_ERR_NOT_FOUND, "%s has no dim '%.*s'", b->cls->class_name, KILN_MAX_NAME,
                          name);
    *out = d->value;
    return KILN_OK;
}

/* ---- configuration ------------------------------------------------------ */

/* Check init now, so that a bad scheme is reported where it is set. */
static enum kiln_status set_init(kiln_brick *b, kiln_init *dst, kiln_init init, const char *what)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    if (!(b->cls->flags & KILN_BRICK_INITIALIZABLE))
        return brick_fail(b, KILN_ERR_ARG, "%s has no %s (not an Initializable brick)", b->cls->class_name,
                          what);
    if (init.kind != KILN_INIT_NONE) {
        kiln_err e = {0};
        kiln_rng scratch; /* n == 0: validated, nothing drawn */
        enum kiln_status s = kiln_init_fill(&init, &scratch, NULL, 0, &e);
        if (s != KILN_OK)
            return brick_fail(b, s, "%s: %s", what, e.msg);
    }
    *dst = init;
    b->init_pushed = false;
    return KILN_OK;
}

enum kiln_status kiln_brick_set_weights_init(kiln_brick *b, kiln_init init)
{
    return set_init(b, b ? &b->weights_init : NULL, init, "weights_init");
}

enum kiln_status kiln_brick_set_biases_init(kiln_brick *b, kiln_init init)
{
    return set_init(b, b ? &b->biases_init : NULL, init, "biases_init");
}

enum kiln_status kiln_brick_set_use_bias(kiln_brick *b, bool use_bias)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    if (!(b->cls->flags & KILN_BRICK_USE_BIAS))
        return brick_fail(b, KILN_ERR_ARG, "%s has no use_bias", b->cls->class_name);
    b->use_bias = use_bias;
    b->use_bias_set = true;
    /* a parent pushes use_bias at both steps: it decides what is allocated */
    b->alloc_pushed = false;
    b->init_pushed = false;
    return KILN_OK;
}

enum kiln_status kiln_brick_set_seed(kiln_brick *b, uint64_t seed)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    b->seed = seed;
    b->seed_set = true;
    return KILN_OK;
}

kiln_init kiln_brick_weights_init(const kiln_brick *b) { return b ? b->weights_init : (kiln_init){0}; }
kiln_init kiln_brick_biases_init(const kiln_brick *b) { return b ? b->biases_init : (kiln_init){0}; }
bool kiln_brick_use_bias(const kiln_brick *b) { return b && b->use_bias; }
bool kiln_brick_use_bias_set(const kiln_brick *b) { return b->use_bias_set; }
void kiln_brick_push_use_bias(kiln_brick *child, bool use_bias) { child->use_bias = use_bias; }

/* ---- allocation ------------------------------------------------------------ */

static enum kiln_status push_allocation_config(kiln_brick *b)
{
    kiln_err_clear(&b->err);
    if (b->cls->push_allocation_config) {
        enum kiln_status s = b->cls->push_allocation_config(b);
        if (s != KILN_OK)
            return callback_failed(b, s, "push_allocation_config");
    }
    b->alloc_pushed = true;
    for (int i = 0; i < b->n_children; i++)
        if (push_allocation_config(b->children[i]) != KILN_OK)
            return kiln_brick_fail_from(b, b->children[i]);
    return KILN_OK;
}

enum kiln_status kiln_brick_push_allocation_config(kiln_brick *b)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    return push_allocation_config(b);
}

static kiln_param *entry_named(const kiln_brick *b, const char *name)
{
    for (int i = 0; i < b->n_entries; i++)
        if (strcmp(kiln_param_name(b->entries[i]), name) == 0)
            return b->entries[i];
    return NULL;
}

/* A new store entry of b, NaN-filled, with room for it in params too. */
static kiln_param *entry_new(kiln_brick *b, const char *name, int rank, const int64_t *dims)
{
    if (b->n_entries == b->cap_entries) {
        int cap = b->cap_entries ? 2 * b->cap_entries : 4;
        kiln_param **e = realloc(b->entries, (size_t)cap * sizeof *e);
        if (!e)
            return NULL;
        b->entries = e;
        kiln_param **p = realloc(b->params, (size_t)cap * sizeof *p);
        if (!p)
            return NULL;
        b->params = p;
        b->cap_entries = cap;
    }
    kiln_param *p = kiln_store_new(KILN_STORE_PARAMETER, name, KILN_DTYPE_F32, rank, dims, NAN);
    if (!p || !kiln_store_set_owner(p, b->path)) {
        kiln_store_unref(p);
        return NULL;
    }
    kiln_store_hold(p);
    kiln_store_set_front(p, b, &b->err);
    b->entries[b->n_entries++] = p;
    return p;
}

/* Plan: check the call and the declaration, stage it, find or make its
** entry. Values change only when the allocation is committed. */
enum kiln_status kiln_brick_add_param(kiln_brick *b, const char *name, unsigned roles, int rank,
                                      const int64_t *dims, kiln_param **out)
{
    KILN_API_CHECK(b);
    if (out)
        *out = NULL;
    if (!b)
        return KILN_ERR_ARG;
    /* 1. the call */
    if (!b->allocating)
        return brick_fail(b, KILN_ERR_STATE, "add_param %.*s: only an allocate callback declares parameters",
                          KILN_MAX_NAME, name ? name : "(null)");
    if (!name || !*name || strlen(name) > KILN_MAX_NAME)
        return brick_fail(b, KILN_ERR_ARG, "add_param: a parameter needs a name of 1 to %d characters",
                          KILN_MAX_NAME);
    /* 2. the declaration */
    if (rank < 0 || rank > KILN_MAX_RANK || (rank > 0 && !dims))
        return brick_fail(b, KILN_ERR_ARG, "parameter %s: rank %d, expected 0 to %d dims", name, rank,
                          KILN_MAX_RANK);
    int64_t size;
    for (int d = 0; d < rank; d++)
        if (dims[d] <= 0)
            return brick_fail(b, KILN_ERR_ARG, "parameter %s: dim %d is %lld, expected > 0", name, d,
                              (long long)dims[d]);
    if (!kiln_store_shape_ok(rank, dims, &size)) {
        kiln_shape sh = {.rank = rank};
        char s[KILN_SHAPE_STR_MAX];
        memcpy(sh.dims, dims, (size_t)rank * sizeof *dims);
        return brick_fail(b, KILN_ERR_SHAPE, "parameter %s of shape %s: more than %lld bytes of values", name,
                          kiln_shape_str(NULL, &sh, s, sizeof s), (long long)KILN_MAX_BYTES);
    }
    for (int i = 0; i < b->n_pending; i++)
        if (strcmp(kiln_param_name(b->pending[i].p), name) == 0)
            return brick_fail(b, KILN_ERR_ARG, "parameter %s declared twice", name);
    /* 3. stage */
    if (b->n_pending == b->cap_pending) {
        int cap = b->cap_pending ? 2 * b->cap_pending : 4;
        pending_param *pp = realloc(b->pending, (size_t)cap * sizeof *pp);
        if (!pp)
            return brick_fail(b, KILN_ERR_NOMEM, "%s: no memory for its values", name);
        b->pending = pp;
        b->cap_pending = cap;
    }
    /* 4. the entry */
    kiln_param *p = entry_named(b, name);
    bool fresh = p == NULL;
    if (fresh && !(p = entry_new(b, name, rank, dims)))
        return brick_fail(b, KILN_ERR_NOMEM, "%s: no memory for its values", name);
    pending_param *pp = &b->pending[b->n_pending++];
    *pp = (pending_param){.p = p, .roles = roles | KILN_ROLE_PARAMETER, .rank = rank, .fresh = fresh};
    for (int d = 0; d < rank; d++)
        pp->dims[d] = dims[d];
    if (out)
        *out = p;
    return KILN_OK;
}

static bool is_pending(const kiln_brick *b, const kiln_param *p)
{
    for (int i = 0; i < b->n_pending; i++)
        if (b->pending[i].p == p)
            return true;
    return false;
}

/* The declarations become b's parameters: entries from an earlier
** allocation get new NaN values of their new shape; entries not declared
** lose theirs. Out of memory halfway leaves b unallocated. */
static enum kiln_status commit_params(kiln_brick *b)
{
    for (int i = 0; i < b->n_pending; i++) {
        pending_param *pp = &b->pending[i];
        if (!pp->fresh && kiln_store_reshape(pp->p, pp->rank, pp->dims, NAN) != KILN_OK) {
            for (int k = 0; k < b->n_entries; k++)
                kiln_store_release(b->entries[k]);
            b->n_params = 0;
            b->allocated = false;
            return brick_fail(b, KILN_ERR_NOMEM, "%s: no memory for its values", kiln_param_name(pp->p));
        }
        kiln_store_set_roles(pp->p, pp->roles);
    }
    for (int k = 0; k < b->n_entries; k++)
        if (!is_pending(b, b->entries[k]))
            kiln_store_release(b->entries[k]);
    b->n_params = b->n_pending;
    for (int i = 0; i < b->n_pending; i++)
        b->params[i] = b->pending[i].p;
    return KILN_OK;
}

/* b's own parameters (children are done by the caller). */
static enum kiln_status allocate_self(kiln_brick *b)
{
    enum kiln_status s = KILN_OK;
    b->n_pending = 0;
    if (b->cls->allocate) {
        b->allocating = true;
        s = b->cls->allocate(b);
        b->allocating = false;
    }
    if (s != KILN_OK) {
        /* entries made for this attempt keep no values */
        for (int i = 0; i < b->n_pending; i++)
            if (b->pending[i].fresh)
                kiln_store_release(b->pending[i].p);
        b->n_pending = 0;
        return callback_failed(b, s, "allocate");
    }
    s = commit_params(b);
    b->n_pending = 0;
    return s;
}

static enum kiln_status allocate(kiln_brick *b)
{
    if (!b->alloc_pushed && push_allocation_config(b) != KILN_OK)
        return b->err.status;
    for (int i = 0; i < b->n_children; i++) {
        kiln_err_clear(&b->children[i]->err);
        if (allocate(b->children[i]) != KILN_OK)
            return kiln_brick_fail_from(b, b->children[i]);
    }
    enum kiln_status s = allocate_self(b);
    if (s != KILN_OK)
        return s;
    b->allocated = true;
    b->initialized = false; /* values are NaN again */
    return KILN_OK;
}

enum kiln_status kiln_brick_allocate(kiln_brick *b)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    return allocate(b);
}

bool kiln_brick_allocated(const kiln_brick *b) { return b && b->allocated; }
bool kiln_brick_initialized(const kiln_brick *b) { return b && b->initialized; }

/* ---- initialization --------------------------------------------------------- */

/* Initializable's push: the schemes (and use_bias) set on b, to b's
** Initializable children. */
static void push_initializable(kiln_brick *b)
{
    for (int i = 0; i < b->n_children; i++) {
        kiln_brick *c = b->children[i];
        if (!(c->cls->flags & KILN_BRICK_INITIALIZABLE))
            continue;
        if (b->weights_init.kind != KILN_INIT_NONE)
            c->weights_init = b->weights_init;
        if (b->biases_init.kind != KILN_INIT_NONE)
            c->biases_init = b->biases_init;
        if (b->use_bias_set && (c->cls->flags & KILN_BRICK_USE_BIAS)) {
            c->use_bias = b->use_bias;
            c->use_bias_set = true;
        }
    }
}

static enum kiln_status push_initialization_config(kiln_brick *b)
{
    kiln_err_clear(&b->err);
    if (b->cls->flags & KILN_BRICK_INITIALIZABLE)
        push_initializable(b);
    if (b->cls->push_initialization_config) {
        enum kiln_status s = b->cls->push_initialization_config(b);
        if (s != KILN_OK)
            return callback_failed(b, s, "push_initialization_config");
    }
    b->init_pushed = true;
    for (int i = 0; i < b->n_children; i++)
        if (push_initialization_config(b->children[i]) != KILN_OK)
            return kiln_brick_fail_from(b, b->children[i]);
    return KILN_OK;
}

enum kiln_status kiln_brick_push_initialization_config(kiln_brick *b)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    return push_initialization_config(b);
}

/* Check init (nothing drawn); messages name the scheme's role. */
static enum kiln_status check_scheme(kiln_brick *b, const kiln_init *init, const char *what)
{
    kiln_err e = {0};
    kiln_rng scratch;
    if (kiln_init_fill(init, &scratch, NULL, 0, &e) != KILN_OK)
        return brick_fail(b, e.status, "%s: %s", what, e.msg);
    return KILN_OK;
}

/* Fill p from init, drawing from b's stream (checked by the caller). */
static enum kiln_status fill(kiln_brick *b, kiln_param *p, const kiln_init *init, const char *what)
{
    kiln_err e = {0};
    enum kiln_status s = kiln_init_fill(init, b->rng, kiln_param_data(p), kiln_param_size(p), &e);
    if (s != KILN_OK)
        return brick_fail(b, s, "%s: %s", what, e.msg);
    return KILN_OK;
}

enum kiln_status kiln_brick_fill_param(kiln_brick *b, kiln_param *p, kiln_init init)
{
    KILN_API_CHECK(b && p);
    if (!b)
        return KILN_ERR_ARG;
    if (!p)
        return brick_fail(b, KILN_ERR_ARG, "fill_param: p is NULL");
    if (!b->rng)
        return brick_fail(b, KILN_ERR_STATE, "fill_param %s: only an initialize callback draws values",
                          kiln_param_name(p));
    if (kiln_store_front(p) != b || !kiln_param_data(p))
        return brick_fail(b, KILN_ERR_ARG, "fill_param: %s is not an allocated parameter of this brick",
                          kiln_param_name(p));
    if (check_scheme(b, &init, kiln_param_name(p)) != KILN_OK)
        return b->err.status;
    return fill(b, p, &init, kiln_param_name(p));
}

/* Every scheme is checked before the first draw, so a failure leaves the
** values and the stream as they were. */
enum kiln_status kiln_brick_init_weights_and_biases(kiln_brick *b)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    if (!b->rng)
        return brick_fail(b, KILN_ERR_STATE, "init_weights_and_biases: only in an initialize callback");
    bool any_w = false, any_b = false;
    for (int i = 0; i < b->n_params; i++) {
        unsigned r = kiln_param_roles(b->params[i]);
        any_w |= (r & KILN_ROLE_WEIGHT) != 0;
        any_b |= (r & KILN_ROLE_BIAS) != 0;
    }
    if (any_w && b->weights_init.kind == KILN_INIT_NONE)
        return brick_fail(b, KILN_ERR_CONFIG, "initialization config not set: weights_init");
    if (any_b && b->biases_init.kind == KILN_INIT_NONE)
        return brick_fail(b, KILN_ERR_CONFIG, "initialization config not set: biases_init");
    if ((any_w && check_scheme(b, &b->weights_init, "weights_init") != KILN_OK) ||
        (any_b && check_scheme(b, &b->biases_init, "biases_init") != KILN_OK))
        return b->err.status;
    /* Blocks' Linear._initialize: biases first, then weights. */
    for (int i = 0; i < b->n_params; i++)
        if ((kiln_param_roles(b->params[i]) & KILN_ROLE_BIAS) &&
            fill(b, b->params[i], &b->biases_init, "biases_init") != KILN_OK)
            return b->err.status;
    for (int i = 0; i < b->n_params; i++)
        if ((kiln_param_roles(b->params[i]) & KILN_ROLE_WEIGHT) &&
            fill(b, b->params[i], &b->weights_init, "weights_init") != KILN_OK)
            return b->err.status;
    return KILN_OK;
}

/* rng: the parent's stream, or NULL at the brick initialize() was called on. */
static enum kiln_status initialize(kiln_brick *b, kiln_rng *rng)
{
    if (!b->allocated && allocate(b) != KILN_OK)
        return b->err.status;
    if (!b->init_pushed && push_initialization_config(b) != KILN_OK)
        return b->err.status;
    kiln_rng own;
    if (b->seed_set || !rng) {
        uint64_t seed;
        kiln_err cfg;
        if (kiln_config_resolve_seed(b->seed_set ? b->seed : KILN_SEED_DEFAULT, &seed, &cfg) != KILN_OK)
            return kiln_brick_fail(b, cfg.status, "initialize: %s", cfg.msg);
        kiln_rng_seed_u64(&own, seed);
        rng = &own;
    }
    for (int i = 0; i < b->n_children; i++) {
        kiln_err_clear(&b->children[i]->err);
        if (initialize(b->children[i], rng) != KILN_OK)
            return kiln_brick_fail_from(b, b->children[i]);
    }
    b->rng = rng;
    enum kiln_status s = b->cls->initialize ? b->cls->initialize(b) : kiln_brick_init_weights_and_biases(b);
    b->rng = NULL;
    if (s != KILN_OK)
        return callback_failed(b, s, "initialize");
    b->initialized = true;
    return KILN_OK;
}

enum kiln_status kiln_brick_initialize(kiln_brick *b)
{
    KILN_API_CHECK(b);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    return initialize(b, NULL);
}

/* ---- applications: metadata ------------------------------------------------- */

static app_view *app_find(const kiln_brick *b, const char *name)
{
    for (int i = 0; b && name && i < b->n_apps; i++)
        if (strcmp(b->apps[i].app->name, name) == 0)
            return &b->apps[i];
    return NULL;
}

int kiln_brick_application_count(const kiln_brick *b) { return b ? b->n_apps : 0; }

const char *kiln_brick_application_name(const kiln_brick *b, int i)
{
    return b && i >= 0 && i < b->n_apps ? b->apps[i].app->name : NULL;
}

int kiln_brick_input_count(const kiln_brick *b, const char *app)
{
    const app_view *v = app_find(b, app);
    return v ? v->n_inputs : -1;
}

const char *kiln_brick_input_name(const kiln_brick *b, const char *app, int i)
{
    const app_view *v = app_find(b, app);
    return v && i >= 0 && i < v->n_inputs ? v->inputs[i].name : NULL;
}

bool kiln_brick_input_optional(const kiln_brick *b, const char *app, int i)
{
    const app_view *v = app_find(b, app);
    return v && i >= 0 && i < v->n_inputs && (v->inputs[i].flags & KILN_INPUT_OPTIONAL);
}

int kiln_brick_output_count(const kiln_brick *b, const char *app)
{
    const app_view *v = app_find(b, app);
    return v ? v->n_outputs : -1;
}

const char *kiln_brick_output_name(const kiln_brick *b, const char *app, int i)
{
    const app_view *v = app_find(b, app);
    return v && i >= 0 && i < v->n_outputs ? v->outputs[i] : NULL;
}

const kiln_brick_application *kiln_brick_application_of(const kiln_brick *b, const char *app,
                                                        const kiln_brick_input **inputs, int *n_inputs)
{
    const app_view *v = app_find(b, app);
    if (inputs)
        *inputs = v ? v->inputs : NULL;
    if (n_inputs)
        *n_inputs = v ? v->n_inputs : 0;
    return v ? v->app : NULL;
}

const kiln_recurrent_options *kiln_brick_swap_options(kiln_brick *b, const kiln_recurrent_options *o)
{
    const kiln_recurrent_options *old = b->options;
    b->options = o;
    return old;
}

enum kiln_status kiln_brick_status(const kiln_brick *b) { return b->err.status; }

kiln_recurrent_options kiln_brick_recurrent_options(const kiln_brick *b)
{
    return b && b->options ? *b->options : (kiln_recurrent_options){0};
}

/* Copy s (NULL stays NULL); false on OOM. */
static bool dup_opt(const char *s, const char **dst)
{
    *dst = s ? kiln_strdup(s) : NULL;
    return !s || *dst;
}

/* Plan: check the lists, copy them whole, then swap them in (on failure b
** keeps its lists). */
enum kiln_status kiln_brick_set_application_io(kiln_brick *b, const char *app, const kiln_brick_input *inputs,
                                               const char *const *outputs)
{
    KILN_API_CHECK(b && app);
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    if (!app)
        return brick_fail(b, KILN_ERR_ARG, "set_application_io: app is NULL");
    if (!outputs)
        return brick_fail(b, KILN_ERR_ARG, "%s: outputs is NULL (an application needs at least one)", app);
    app_view *v = app_find(b, app);
    if (!v)
        return brick_fail(b, KILN_ERR_NOT_FOUND, "%s has no application '%.*s'", b->cls->class_name,
                          KILN_MAX_NAME, app);
    /* 1. check */
    int n_in = count_inputs(inputs), n_out = count_names(outputs);
    if (n_out == 0)
        return brick_fail(b, KILN_ERR_ARG, "%s: an application needs at least one output", app);
    for (int i = 0; i < n_in; i++)
        if (!*inputs[i].name || inputs[i].rank < 0 || inputs[i].rank > KILN_MAX_RANK)
            return brick_fail(b, KILN_ERR_ARG, "%s: input %d has an empty name or a bad rank", app, i);
    for (int i = 0; i < n_out; i++)
        if (!*outputs[i])
            return brick_fail(b, KILN_ERR_ARG, "%s: output %d has an empty name", app, i);
    /* 2. copy */
    app_view nv = {.app = v->app, .n_inputs = n_in, .n_outputs = n_out};
    nv.own_inputs = calloc((size_t)n_in + 1, sizeof *nv.own_inputs);
    nv.own_outputs = calloc((size_t)n_out + 1, sizeof *nv.own_outputs);
    bool ok = nv.own_inputs && nv.own_outputs;
    for (int i = 0; ok && i < n_in; i++) {
        kiln_brick_input *d = &nv.own_inputs[i];
        d->flags = inputs[i].flags;
        d->rank = inputs[i].rank;
        ok = dup_opt(inputs[i].name, &d->name) && dup_opt(inputs[i].layout, &d->layout) &&
             dup_opt(inputs[i].last_dim, &d->last_dim);
    }
    for (int i = 0; ok && i < n_out; i++)
        ok = (nv.own_outputs[i] = kiln_strdup(outputs[i])) != NULL;
    if (!ok) {
        if (!nv.own_inputs || !nv.own_outputs)
            nv.n_inputs = nv.n_outputs = 0; /* nothing copied into a missing array */
        app_view_drop(&nv);
        return brick_fail(b, KILN_ERR_NOMEM, "%s: no memory for its inputs and outputs", app);
    }
    /* 3. swap */
    nv.inputs = nv.own_inputs;
    nv.outputs = (const char *const *)nv.own_outputs;
    app_view_drop(v);
    *v = nv;
    return KILN_OK;
}

/* ---- applications: calling ---------------------------------------------------- */

static bool node_in(const kiln_graph *g, kiln_node n) { return n.id >= 0 && n.id < g->n_nodes; }

static const kiln_node_rec *rec_of(const kiln_graph *g, kiln_node n) { return kiln_graph_cnode(g, n.id); }

const char *kiln_brick_desc(const kiln_graph *g, kiln_node n, kiln_desc_buf *buf)
{
    const kiln_node_rec *r = rec_of(g, n);
    char shape[KILN_SHAPE_STR_MAX];
    snprintf(buf->s, sizeof buf->s, "%s %s", kiln_dtype_name(r->dtype),
             kiln_shape_str(g, &r->shape, shape, sizeof shape));
    return buf->s;
}

enum kiln_status kiln_brick_built(kiln_brick *b, kiln_graph *g, kiln_node n)
{
    if (kiln_node_ok(n))
        return KILN_OK;
    return brick_fail(b, g->err.status ? g->err.status : KILN_ERR_NOMEM, "%s",
                      g->err.status ? g->err.msg : "graph builder failed");
}

int64_t kiln_brick_input_dim(const kiln_brick *b, const kiln_brick_input *in)
{
    const char *name = in->last_dim;
    int64_t times = 0;
    if (!name)
        return 0;
    for (const char *p = name; *p >= '0' && *p <= '9'; p++)
        if (p[1] == '*') { /* "4*dim" */
            times = strtoll(name, NULL, 10);
            name = p + 2;
            break;
        }
    int64_t v = kiln_brick_dim(b, name);
    return times > 0 && !kiln_mul_i64(v, times, &v) ? 0 : v;
}

/* Check that n is a node of g; else fail on b, naming the argument. */
static enum kiln_status check_node(kiln_brick *b, kiln_graph *g, kiln_node n, const char *arg)
{
    if (node_in(g, n))
        return KILN_OK;
    if (n.id == -1 && g->err.status != KILN_OK) /* a failed builder: say why */
        return brick_fail(b, g->err.status, "%s is KILN_NODE_NONE (%s)", arg, g->err.msg);
    return brick_fail(b, KILN_ERR_ARG, "%s: node %d is not a node of this graph (it has %d)", arg, (int)n.id,
                      (int)g->n_nodes);
}

/* Input n against its declaration: dtype, rank, last dim. */
static enum kiln_status check_input(kiln_brick *b, kiln_graph *g, const kiln_brick_input *in, kiln_node n)
{
    const kiln_node_rec *r = rec_of(g, n);
    kiln_desc_buf d;
    if ((in->flags & KILN_INPUT_LABELS) && (r->dtype != KILN_DTYPE_I32 || r->shape.rank != 1))
        return brick_fail(b, KILN_ERR_SHAPE, "%s is %s, expected an int32 vector of class indices", in->name,
                          kiln_brick_desc(g, n, &d));
    if ((in->flags & KILN_INPUT_FLOAT) && r->dtype != g->floatx)
        return brick_fail(b, KILN_ERR_SHAPE, "%s is %s, expected %s (the graph's floatx)", in->name,
                          kiln_brick_desc(g, n, &d), kiln_dtype_name(g->floatx));
    /* a sequence's rank is one step's: the recurrent layer checks it
    ** (bricks_recurrent.c), with or without the time axis */
    if (in->rank && r->shape.rank != in->rank && !(in->flags & KILN_INPUT_SEQUENCE))
        return brick_fail(b, KILN_ERR_SHAPE, "%s is %s, expected rank %d%s%s", in->name, kiln_brick_desc(g, n, &d),
                          in->rank, in->layout ? " " : "", in->layout ? in->layout : "");
    int64_t want = kiln_brick_input_dim(b, in);
    if (want > 0 && (r->shape.rank == 0 || r->shape.dims[r->shape.rank - 1] != want)) {
        if (in->rank == 2 && r->shape.rank >= 2) { /* (batch, features) */
            char have[48];
            return brick_fail(b, KILN_ERR_SHAPE, "%s has %s features, expected %lld", in->name,
                              kiln_graph_dim_str(g, r->shape.dims[r->shape.rank - 1], have, sizeof have),
                              (long long)want);
        }
        return brick_fail(b, KILN_ERR_SHAPE, "%s is %s, expected a last dim of %lld", in->name,
                          kiln_brick_desc(g, n, &d), (long long)want);
    }
    return KILN_OK;
}

/* A fresh node equal to x (Blocks copies application outputs). An integer
** value (an argmax, labels) is copied by an identity reshape: arithmetic
** takes floats only (#10: an emitter's int32 outputs handed back). */
static kiln_node copy_node(kiln_graph *g, kiln_node x)
{
    const kiln_node_rec *r = rec_of(g, x);
    if (r->dtype == g->floatx)
        return kiln_expr_mul(g, x, kiln_expr_constant(g, 1.0));
    kiln_node_rec rec = kiln_rec(KILN_OP_RESHAPE, r->dtype, 1, &x.id);
    rec.shape = r->shape;
    int32_t id = kiln_graph_add(g, &rec);
    return (kiln_node){id < 0 ? -1 : id};
}

/* Whether output o is a node the application did not make: an input, or a
** node with a name (a parameter, a child's output) that tagging would rename. */
static bool handed_back(const kiln_graph *g, kiln_node o, const kiln_node *inputs, int n_in)
{
    for (int i = 0; i < n_in; i++)
        if (inputs[i].id == o.id)
            return true;
    return rec_of(g, o)->name != NULL;
}

/* Name, tag and (when handed back) copy output i of application v. */
static enum kiln_status finish_output(kiln_brick *b, kiln_graph *g, const app_view *v, int i,
                                      const kiln_node *inputs, kiln_node *outputs, int32_t n0)
{
    const char *out_name = v->outputs[i];
    kiln_node o = outputs[i];
    if (!node_in(g, o)) {
        if (g->err.status != KILN_OK)
            return brick_fail(b, g->err.status, "%s", g->err.msg);
        return brick_fail(b, KILN_ERR_ARG, "%s gave no node for output %s", v->app->name, out_name);
    }
    if (handed_back(g, o, inputs, v->n_inputs) && kiln_brick_built(b, g, o = copy_node(g, o)) != KILN_OK)
        return b->err.status;
    outputs[i] = o;
    if (o.id < n0) /* a node that existed (a program graph's CSE): left alone */
        return KILN_OK;
    char name[KILN_MAX_NAME + 1];
    if (v->app->flags & KILN_APPLICATION_BARE_NAMES) {
        if (kiln_snprintf(name, sizeof name, "%s", out_name) != 0)
            return brick_fail(b, KILN_ERR_ARG, "output name '%s' is longer than %d characters", out_name,
                              KILN_MAX_NAME);
    } else if (kiln_snprintf(name, sizeof name, "%s_%s_%s", b->name, v->app->name, out_name) != 0) {
        return brick_fail(b, KILN_ERR_ARG, "output name '%s_%s_%s' is longer than %d characters", b->name,
                          v->app->name, out_name, KILN_MAX_NAME);
    }
    if (kiln_graph_set_name(g, o, name) != KILN_OK)
        return brick_fail(b, g->err.status, "%s", g->err.msg);
    kiln_graph_node(g, o.id)->roles |= KILN_ROLE_OUTPUT;
    if (kiln_graph_set_owner(g, o.id, b->path) != KILN_OK)
        return brick_fail(b, g->err.status, "%s", g->err.msg);
    return KILN_OK;
}

/* An Activation's outputs keep its (first given) input's shape. */
static enum kiln_status check_elementwise(kiln_brick *b, kiln_graph *g, const app_view *v, const kiln_node *inputs,
                                          const kiln_node *outputs)
{
    int k = 0;
    while (k < v->n_inputs && !node_in(g, inputs[k]))
        k++;
    if (k == v->n_inputs)
        return KILN_OK;
    for (int i = 0; i < v->n_outputs; i++)
        if (!kiln_shape_equal(&rec_of(g, outputs[i])->shape, &rec_of(g, inputs[k])->shape)) {
            kiln_desc_buf d1, d2;
            return brick_fail(b, KILN_ERR_SHAPE, "%s: output '%s' is %s but input '%s' is %s: an Activation keeps "
                              "its input's shape", v->app->name, v->outputs[i],
                              kiln_brick_desc(g, outputs[i], &d1), v->inputs[k].name,
                              kiln_brick_desc(g, inputs[k], &d2));
        }
    return KILN_OK;
}

/* Plan: find the application, check counts and nodes, allocate, check the
** inputs' declarations, build, finish the outputs. */
static enum kiln_status call(kiln_brick *b, const char *app, kiln_graph *g, const kiln_node *inputs, int n_in,
                             kiln_node *outputs, int n_out)
{
    char list[NAME_LIST_MAX];
    /* 1. the application and its counts */
    const app_view *v = app_find(b, app);
    if (!v)
        return brick_fail(b, KILN_ERR_ARG, "%s has no application '%.*s' (it has: %s)", b->cls->class_name,
                          KILN_MAX_NAME, app, b->n_apps ? join(list, sizeof list, b->n_apps, app_at, b->apps)
                                                        : "none");
    if (n_in != v->n_inputs)
        return brick_fail(b, KILN_ERR_ARG, "%s takes %d input%s (%s), %d given", app, v->n_inputs,
                          v->n_inputs == 1 ? "" : "s", join(list, sizeof list, v->n_inputs, input_at, v->inputs),
                          n_in);
    if (n_out != v->n_outputs)
        return brick_fail(b, KILN_ERR_ARG, "%s gives %d output%s (%s), room for %d given", app, v->n_outputs,
                          v->n_outputs == 1 ? "" : "s",
                          join(list, sizeof list, v->n_outputs, name_at, v->outputs), n_out);
    /* 2. nodes of g (an optional input may be KILN_NODE_NONE) */
    for (int i = 0; i < n_in; i++) {
        if ((v->inputs[i].flags & KILN_INPUT_OPTIONAL) && inputs[i].id == KILN_NODE_NONE.id)
            continue;
        if (check_node(b, g, inputs[i], v->inputs[i].name) != KILN_OK)
            return b->err.status;
    }
    /* 3. allocate */
    if (!b->allocated && allocate(b) != KILN_OK)
        return b->err.status;
    /* 4. declarations */
    for (int i = 0; i < n_in; i++)
        if (node_in(g, inputs[i]) && check_input(b, g, &v->inputs[i], inputs[i]) != KILN_OK)
            return b->err.status;
    /* 5. build */
    int32_t n0 = g->n_nodes;
    enum kiln_status s = (v->app->flags & KILN_APPLICATION_RECURRENT)
                             ? kiln_recurrent_run(b, v->app, v->inputs, v->n_inputs, v->outputs, v->n_outputs, g,
                                                  inputs, outputs)
                             : v->app->fn(b, g, inputs, outputs);
    if (s != KILN_OK) {
        if (b->err.status != KILN_OK)
            return b->err.status;
        if (g->err.status != KILN_OK)
            return brick_fail(b, s, "%s", g->err.msg);
        return callback_failed(b, s, app);
    }
    /* 6. outputs */
    for (int i = 0; i < n_out; i++)
        if (finish_output(b, g, v, i, inputs, outputs, n0) != KILN_OK)
            return b->err.status;
    if ((b->cls->flags & KILN_BRICK_ACTIVATION) && check_elementwise(b, g, v, inputs, outputs) != KILN_OK)
        return b->err.status;
    return KILN_OK;
}

enum kiln_status kiln_brick_call(kiln_brick *b, const char *app, kiln_graph *g, const kiln_node *inputs, int n_in,
                                 kiln_node *outputs, int n_out)
{
    KILN_API_CHECK(b && g && app && n_in >= 0 && n_out >= 0 && (n_in == 0 || inputs) &&
                   (n_out == 0 || outputs));
    if (!b)
        return KILN_ERR_ARG;
    kiln_err_clear(&b->err);
    if (n_out > 0 && outputs)
        for (int i = 0; i < n_out; i++)
            outputs[i] = KILN_NODE_NONE;
    const char *null_arg = !app ? "app" : !g ? "g" : n_in > 0 && !inputs ? "inputs" : n_out > 0 && !outputs ? "outputs"
                                                                                                          : NULL;
    if (null_arg || n_in < 0 || n_out < 0) {
        enum kiln_status s = null_arg ? brick_fail(b, KILN_ERR_ARG, "kiln_brick_call %s: %s is NULL", app ? app : "",
                                                   null_arg)
                                      : brick_fail(b, KILN_ERR_ARG, "kiln_brick_call %s: %d inputs, %d outputs",
                                                   app ? app : "", n_in, n_out);
        if (g)
            kiln_graph_fail(g, s, "%s", b->err.msg);
        return s;
    }
    enum kiln_status s = call(b, app, g, inputs, n_in, outputs, n_out);
    if (s != KILN_OK) {
        for (int i = 0; i < n_out; i++)
            outputs[i] = KILN_NODE_NONE;
        /* Record b's failure on g too (kept only when g has no earlier error). */
        kiln_graph_fail(g, s, "%s", b->err.msg);
    }
    return s;
}

enum kiln_status kiln_brick_apply(kiln_brick *b, kiln_graph *g, kiln_node input, kiln_node *out)
{
    /* NULL arguments: kiln_brick_call names them */
    /* Blocks' rnn.apply(x): optional inputs after the first are omitted */
    const app_view *v = b ? app_find(b, "apply") : NULL;
    kiln_node in[8] = {input, KILN_NODE_NONE, KILN_NODE_NONE, KILN_NODE_NONE,
                       KILN_NODE_NONE, KILN_NODE_NONE, KILN_NODE_NONE, KILN_NODE_NONE};
    int n = 1;
    if (v && v->n_inputs > 1 && v->n_inputs <= (int)KILN_ARRAY_LEN(in)) {
        n = v->n_inputs;
        for (int i = 1; i < n; i++)
            if (!(v->inputs[i].flags & KILN_INPUT_OPTIONAL))
                n = 1;
    }
    return kiln_brick_call(b, "apply", g, in, n, out, 1);
}

bool kiln_bricks_are_roots(kiln_brick *const *bricks, int n)
{
    for (int i = 0; i < n; i++) {
        if (!bricks[i])
            continue;
        if (bricks[i]->parent)
            return false;
        for (int j = 0; j < i; j++)
            if (bricks[j] == bricks[i])
                return false;
    }
    return true;
}

void kiln_bricks_destroy_roots(kiln_brick *const *bricks, int n)
{
    for (int i = 0; i < n; i++)
        if (bricks[i] && !bricks[i]->parent)
            kiln_brick_destroy(bricks[i]);
}

enum kiln_status kiln_brick_child_call(kiln_brick *b, int i, const char *app, kiln_graph *g, const kiln_node *in,
                                       int n_in, kiln_node *out, int n_out)
{
    kiln_brick *c = kiln_brick_child(b, i);
    if (kiln_brick_call(c, app, g, in, n_in, out, n_out) != KILN_OK)
        return kiln_brick_fail_from(b, c);
    return KILN_OK;
}

uint64_t kiln_brick_seed(const kiln_brick *b)
{
    for (; b; b = b->parent)
        if (b->seed_set)
            return b->seed;
    return KILN_SEED_DEFAULT; /* the configuration's default_seed, resolved by kiln_graph_random_state */
}

int64_t kiln_brick_app_input_dim(const kiln_brick *b, const char *app, const char *name)
{
    const app_view *v = app_find(b, app);
    for (int i = 0; v && i < v->n_inputs; i++)
        if (strcmp(v->inputs[i].name, name) == 0)
            return kiln_brick_input_dim(b, &v->inputs[i]);
    return 0;
}

/* ---- copies (prototypes) ------------------------------------------------------ */

/* Plan: a brick of b's class and name, then its dims, configuration, data,
** applications' lists and children, copied; then paths. */
kiln_brick *kiln_brick_clone(const kiln_brick *b, const char *name)
{
    KILN_API_CHECK(b);
    if (!b)
        return NULL;
    kiln_brick *c = kiln_brick_create(b->cls, name ? name : b->name);
    if (!c)
        return NULL;
    c->default_name = name ? false : b->default_name;
    /* dims: the class's are there; b's own follow in the same order */
    for (int i = 0; i < b->n_dims; i++) {
        if (i < c->n_dims)
            c->dims[i].value = b->dims[i].value;
        else if (dim_add(c, b->dims[i].names, b->dims[i].value) != KILN_OK)
            goto fail;
    }
    c->weights_init = b->weights_init;
    c->biases_init = b->biases_init;
    c->use_bias = b->use_bias;
    c->use_bias_set = b->use_bias_set;
    c->seed = b->seed;
    c->seed_set = b->seed_set;
    if (b->cls->data_size) {
        if (b->cls->copy) {
            if (b->cls->copy(c, b) != KILN_OK)
                goto fail;
        } else {
            memcpy(c->data, b->data, b->cls->data_size);
        }
    }
    for (int i = 0; i < b->n_apps; i++)
        if (b->apps[i].own_outputs &&
            kiln_brick_set_application_io(c, b->apps[i].app->name, b->apps[i].inputs, b->apps[i].outputs) != KILN_OK)
            goto fail;
    for (int i = 0; i < b->n_children; i++) {
        kiln_brick *child = kiln_brick_clone(b->children[i], NULL);
        if (!child)
            goto fail;
        if (kiln_brick_add_child(c, child) != KILN_OK) {
            kiln_brick_destroy(child);
            goto fail;
        }
    }
    return c;
fail:
    kiln_brick_destroy(c);
    return NULL;
}

/* ---- parameters ------------------------------------------------------------ */

int kiln_brick_param_count(const kiln_brick *b) { return b ? b->n_params : 0; }

kiln_param *kiln_brick_param(const kiln_brick *b, int i)
{
    if (!b || i < 0 || i >= b->n_params)
        return NULL;
    return b->params[i];
}

kiln_param *kiln_brick_param_by_name(const kiln_brick *b, const char *name)
{
    if (!b || !name)
        return NULL;
    for (int i = 0; i < b->n_params; i++)
        if (strcmp(kiln_param_name(b->params[i]), name) == 0)
            return b->params[i];
    return NULL;
}

kiln_brick *kiln_param_brick(const kiln_param *p) { return kiln_store_front(p); }

/* Auxiliary variable (Blocks' add_auxiliary_variable): n marked AUXILIARY,
** named, and owned by brick b's path. */
enum kiln_status kiln_graph_add_auxiliary(kiln_graph *g, kiln_node n, const char *name, kiln_brick *b)
{
    if (!g)
        return KILN_ERR_ARG;
    if (!kiln_graph_check(g, n, "kiln_graph_add_auxiliary"))
        return g->err.status;
    if (name) {
        enum kiln_status s = kiln_graph_set_name_raw(g, n.id, name);
        if (s)
            return s;
    }
    g->nodes[n.id].roles |= KILN_ROLE_AUXILIARY;
    if (b)
        return kiln_graph_set_owner(g, n.id, b->path);
    return KILN_OK;
}
