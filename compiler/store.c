/* store.c: the neutral store of persistent values (kiln_param).
**
** A store entry is a named array of doubles with a constant shape: a
** parameter (it gets a gradient) or a state (it does not: a random state, an
** optimiser's running average, a learning rate). It knows its owner only as
** a path ("/mlp/linear_0"), never as a brick, so any front end (Blocks'
** bricks now, brainstorm's layers later) and kiln_compile itself (the step
** rule's state) make entries the same way, and the IR refers to entries
** alone.
**
** Lifetime: reference counted (#9). The maker holds one reference:
** kiln_param_create's caller (dropped by kiln_param_destroy), or the object
** that made it (a brick, a graph, a program), which marks it `held` so that
** kiln_param_destroy leaves it alone. Every graph node standing for an
** entry holds one more (graph.c), so a graph, and the program graph a
** program keeps, can outlive the brick or the caller: a program built from
** a brick still copies its parameters back (kiln_program_store_params)
** after the brick is gone, into entries only the program still sees. A
** maker that goes away first cuts the entry's ties to it (front, sink).
** Rejected: a clear error instead (the program would have to ask the brick
** whether it still lives, which a freed brick cannot answer), and copying
** the entries into the program (kiln_program_store_params would then no
** longer reach the brick's values). Counts are atomic: two programs built
** from one brick may be made and destroyed on two threads.
**
** Values are double whatever a graph's floats are; a program copies them in
** at compile time and back on kiln_program_store_params. An entry made for
** an optimiser knows the parameter it shadows (`like`) and its slab number,
** so the memory plan lays each slab out in parameter order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/graph.h"
#include "compiler/store.h"

struct kiln_param {
    kiln_err err;            /* last failure of get/set_values */
    kiln_err *sink;          /* also written there (the owning brick's slot), or NULL */
    char name[KILN_MAX_NAME + 1];
    char *owner;             /* path, owned; NULL: none */
    enum kiln_store_kind kind;
    enum kiln_dtype dtype;   /* KILN_DTYPE_I32, else the graph's floats */
    unsigned roles;
    kiln_shape shape;        /* constant dims */
    double *data;            /* NULL when not allocated */
    kiln_param *like;        /* the parameter an optimiser state shadows */
    int slab;
    void *front;             /* the front end's object (a brick); opaque here */
    bool held;               /* the maker's reference is not kiln_param_destroy's to drop */
    kiln_refs refs;          /* the maker's and one per graph node standing for it */
};

/* The element count of an entry's shape: dims > 0, values (doubles) within
** KILN_MAX_BYTES, so that neither the count nor a program's slabs overflow
** and no allocation is tried that no machine could give. */
bool kiln_store_shape_ok(int rank, const int64_t *dims, int64_t *out)
{
    int64_t n = 1;
    if (rank < 0 || rank > KILN_MAX_RANK || (rank > 0 && !dims))
        return false;
    for (int i = 0; i < rank; i++)
        if (dims[i] <= 0 || !kiln_mul_i64(n, dims[i], &n) || n > KILN_MAX_BYTES / (int64_t)sizeof(double))
            return false;
    *out = n;
    return true;
}

kiln_param *kiln_store_new(enum kiln_store_kind kind, const char *name, enum kiln_dtype dtype, int rank,
                           const int64_t *dims, double fill)
{
    int64_t n;
    if (!name || !*name || strlen(name) > KILN_MAX_NAME || !kiln_store_shape_ok(rank, dims, &n))
        return NULL;
    kiln_param *p = calloc(1, sizeof *p);
    if (!p || !(p->data = malloc((size_t)n * sizeof(double)))) {
        free(p);
        return NULL;
    }
    strcpy(p->name, name); /* length checked above */
    kiln_refs_init(&p->refs);
    p->kind = kind;
    p->dtype = dtype;
    p->roles = kind == KILN_STORE_PARAMETER ? KILN_ROLE_PARAMETER : 0;
    p->shape.rank = rank;
    for (int i = 0; i < rank; i++)
        p->shape.dims[i] = dims[i];
    for (int64_t k = 0; k < n; k++)
        p->data[k] = fill;
    return p;
}

void kiln_store_retain(kiln_param *p)
{
    if (p)
        kiln_refs_retain(&p->refs);
}

static void store_free(kiln_param *p)
{
    free(p->data);
    free(p->owner);
    free(p);
}

void kiln_store_unref(kiln_param *p)
{
    if (p && kiln_refs_release(&p->refs))
        store_free(p);
}

enum kiln_status kiln_store_reshape(kiln_param *p, int rank, const int64_t *dims, double fill)
{
    int64_t n;
    if (!kiln_store_shape_ok(rank, dims, &n))
        return KILN_ERR_ARG;
    double *d = malloc((size_t)n * sizeof(double));
    if (!d)
        return KILN_ERR_NOMEM;
    for (int64_t k = 0; k < n; k++)
        d[k] = fill;
    free(p->data);
    p->data = d;
    p->shape.rank = rank;
    for (int i = 0; i < rank; i++)
        p->shape.dims[i] = dims[i];
    return KILN_OK;
}

void kiln_store_release(kiln_param *p)
{
    free(p->data);
    p->data = NULL;
}

bool kiln_store_set_owner(kiln_param *p, const char *owner)
{
    char *o = owner && *owner ? kiln_strdup(owner) : NULL;
    if (owner && *owner && !o)
        return false;
    free(p->owner);
    p->owner = o;
    return true;
}

void kiln_store_set_roles(kiln_param *p, unsigned roles) { p->roles = roles; }
void kiln_store_set_like(kiln_param *p, kiln_param *like, int slab)
{
    p->like = like;
    p->slab = slab;
}
void kiln_store_set_front(kiln_param *p, void *front, kiln_err *sink)
{
    p->front = front;
    p->sink = sink;
}
void kiln_store_hold(kiln_param *p) { p->held = true; }
void *kiln_store_front(const kiln_param *p) { return p ? p->front : NULL; }
bool kiln_store_rename(kiln_param *p, const char *name)
{
    if (!name || !*name || strlen(name) > KILN_MAX_NAME)
        return false;
    strcpy(p->name, name);
    return true;
}

/* ---- facts --------------------------------------------------------------- */

enum kiln_store_kind kiln_param_kind(const kiln_param *p) { return p->kind; }
enum kiln_dtype kiln_param_dtype(const kiln_param *p) { return p->dtype; }
unsigned kiln_param_roles(const kiln_param *p) { return p ? p->roles : 0; }
const kiln_shape *kiln_param_shape(const kiln_param *p) { return &p->shape; }
const char *kiln_param_owner(const kiln_param *p) { return p && p->owner ? p->owner : ""; }
double *kiln_param_data(kiln_param *p) { return p ? p->data : NULL; }
kiln_param *kiln_param_like(const kiln_param *p) { return p->like; }
int kiln_param_slab(const kiln_param *p) { return p->slab; }

const char *kiln_param_name(const kiln_param *p) { return p ? p->name : ""; }
int kiln_param_rank(const kiln_param *p) { return p ? p->shape.rank : 0; }

int64_t kiln_param_dim(const kiln_param *p, int axis)
{
    if (!p || axis < 0 || axis >= p->shape.rank)
        return 0;
    return p->shape.dims[axis];
}

int64_t kiln_param_size(const kiln_param *p)
{
    if (!p)
        return 0;
    int64_t n = 1;
    for (int i = 0; i < p->shape.rank; i++)
        n *= p->shape.dims[i]; /* checked against overflow when allocated */
    return n;
}

/* ---- values ------------------------------------------------------------ */

/* Record a failure on p and in its sink ("/linear: parameter W ..."). */
static enum kiln_status param_fail(const kiln_param *p, enum kiln_status status, const char *fmt, ...)
    KILN_PRINTF(3, 4);
static enum kiln_status param_fail(const kiln_param *p, enum kiln_status status, const char *fmt, ...)
{
    char what[KILN_ERRMSG_MAX]; /* a cut here makes the slot end in "..." */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    kiln_param *mp = (kiln_param *)p; /* only the error slots are written */
    const char *kind = p->kind == KILN_STORE_STATE ? "state" : "parameter";
    if (p->owner)
        kiln_err_set(&mp->err, status, "%s: %s %s %s", p->owner, kind, p->name, what);
    else
        kiln_err_set(&mp->err, status, "%s %s %s", kind, p->name, what);
    if (p->sink)
        kiln_err_copy(p->sink, &p->err, NULL);
    return status;
}

/* Checks shared by get and set. */
static enum kiln_status values_check(const kiln_param *p, const void *buf, int64_t n)
{
    kiln_param *mp = (kiln_param *)p;
    kiln_err_clear(&mp->err);
    if (p->sink)
        kiln_err_clear(p->sink);
    if (!p->data)
        return param_fail(p, KILN_ERR_STATE, "is not allocated (allocate the brick first)");
    int64_t size = kiln_param_size(p);
    if (n != size) {
        char shape[KILN_SHAPE_STR_MAX];
        return param_fail(p, KILN_ERR_ARG, "has %lld values %s, %lld given", (long long)size,
                          kiln_shape_str(NULL, &p->shape, shape, sizeof shape), (long long)n);
    }
    if (!buf && n > 0)
        return param_fail(p, KILN_ERR_ARG, "buffer is NULL");
    return KILN_OK;
}

enum kiln_status kiln_param_get_values(const kiln_param *p, double *dst, int64_t n)
{
    KILN_API_CHECK(p);
    if (!p)
        return KILN_ERR_ARG;
    enum kiln_status s = values_check(p, dst, n);
    if (s == KILN_OK && n > 0)
        memcpy(dst, p->data, (size_t)n * sizeof *dst);
    return s;
}

enum kiln_status kiln_param_set_values(kiln_param *p, const double *src, int64_t n)
{
    KILN_API_CHECK(p);
    if (!p)
        return KILN_ERR_ARG;
    enum kiln_status s = values_check(p, src, n);
    if (s == KILN_OK && n > 0)
        memcpy(p->data, src, (size_t)n * sizeof *src);
    return s;
}

const char *kiln_param_errmsg(const kiln_param *p)
{
    if (!p)
        return "no parameter (NULL)";
    return p->err.status == KILN_OK ? "ok" : p->err.msg;
}

kiln_param *kiln_param_create(const char *name, int rank, const int64_t *dims)
{
    return kiln_store_new(KILN_STORE_PARAMETER, name, KILN_DTYPE_F32, rank, dims, NAN);
}

kiln_param *kiln_state_create(const char *name, int rank, const int64_t *dims)
{
    return kiln_store_new(KILN_STORE_STATE, name, KILN_DTYPE_F32, rank, dims, 0);
}

void kiln_param_destroy(kiln_param *p)
{
    if (!p || p->held) /* a brick's, a graph's or a program's: freed with it */
        return;
    if (kiln_refs_drop_caller(&p->refs)) /* a second destroy while a graph holds it does nothing */
        store_free(p);
}
