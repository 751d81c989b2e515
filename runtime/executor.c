/* executor.c: run a generated unit from its manifest (executor.h).
**
** Opening a unit: find <model>_manifest, check it (kiln_exec_check_manifest:
** a manifest is trusted for offsets the code will write through, so every
** slab and value must lie inside the arena and the persistent slabs must not
** overlap), find the entry points its bits name, allocate the arena through
** the backend and run init. After that nothing is looked up: binding scans
** the inputs by name, a run evaluates the inputs' size monomials at the
** step's sizes to check their lengths, and reading a value evaluates its
** offset monomial (offset + stride * unit(sizes)).
** The executor never touches the BLAS's thread count (#12): how many threads
** a product uses is the process's setting (docs/architecture.md, "BLAS
** threads").
** Rejected: function pointers in the manifest (calling a function through a
** pointer of another type is undefined; names are looked up once). */
#include <cblas.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h> /* the arena: mmap, madvise */
#endif

#include "runtime/executor.h"
#include "runtime/kernels.h"

/* Longest name a manifest may hold (a brick path included). */
#define MAX_NAME 4096

struct kiln_exec {
    enum kiln_status status;
    char msg[512];
    const kiln_exec_backend *be;
    const kiln_manifest *m;
    const void *rt;                       /* the config's */
    const void *run_rt;                   /* the next runs', or NULL: rt */
    void *entry[KILN_MANIFEST_N_ENTRIES]; /* by bit position; NULL: absent */
    void *arena;
    const void **bound;                   /* per input */
    int64_t *bound_count;                 /* per input: elements, -1 unknown */
    int64_t sizes[KILN_MANIFEST_SYMBOLS];      /* of the next step */
    int64_t last_sizes[KILN_MANIFEST_SYMBOLS]; /* of the last */
    uint32_t last_entry;                  /* bit of the last successful run, 0 */
};

static enum kiln_status fail(kiln_exec *x, enum kiln_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum kiln_status fail(kiln_exec *x, enum kiln_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->msg, sizeof x->msg, fmt, ap);
    va_end(ap);
    x->status = s;
    return s;
}

/* ---- the CPU backend ------------------------------------------------------ */

/* A zeroed arena. A large one (2 MiB or more) is an anonymous mapping, 2 MiB
** aligned and advised for transparent huge pages (MADV_HUGEPAGE; Debian's
** default is "madvise": huge pages only where asked). Its products read
** weights and adjoints in rows a page or more apart, and with 4 KiB pages
** each such row is a TLB entry: 2 MiB pages took the LSTM benchmark's step
** from a median of 46.2-46.3 ms to 45.0 on the AVX2 path and 43.4 to 42.5 on
** AVX-512 (Zen 4, the two alternating in one process; docs/performance.md).
** Elsewhere, or where the mapping fails, calloc: a large block is fresh
** pages the system gives zeroed, touched only when a step first writes them
** (a memset of the benchmark's 40 MB arena was 59% of its warm compile's
** instructions, callgrind), and the pages are zero in a mapping as well.
** The 64 bytes before the arena say how to give it back: the mapping's base
** and length, or calloc's block and a length of 0. */
enum { ARENA_HUGE = 2 << 20 };
typedef struct arena_head {
    char *base;
    size_t map_len; /* 0: base is calloc's */
} arena_head;

static void *cpu_alloc(int64_t bytes)
{
    size_t n = ((size_t)bytes + 63) / 64 * 64;
    arena_head h = {NULL, 0};
    char *a = NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (n >= ARENA_HUGE && n <= SIZE_MAX / 2) {
        /* the slack before the 2 MiB boundary holds the head */
        const size_t len = n + 2 * (size_t)ARENA_HUGE;
        void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            h = (arena_head){m, len};
            a = (char *)(((uintptr_t)m + 64 + ARENA_HUGE - 1) & ~(uintptr_t)(ARENA_HUGE - 1));
            (void)madvise(a, n, MADV_HUGEPAGE); /* advice: small pages if refused */
        }
    }
#endif
    if (!a) {
        char *block = calloc(1, (n ? n : 64) + 64);
        if (!block)
            return NULL;
        h = (arena_head){block, 0};
        a = (char *)(((uintptr_t)block + 64) & ~(uintptr_t)63);
    }
    memcpy(a - sizeof h, &h, sizeof h);
    return a;
}
static void cpu_release(void *arena)
{
    if (!arena)
        return;
    arena_head h;
    memcpy(&h, (char *)arena - sizeof h, sizeof h);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (h.map_len) {
        munmap(h.base, h.map_len);
        return;
    }
#endif
    free(h.base);
}
static void cpu_copy_in(void *arena, int64_t off, const void *src, int64_t n)
{
    memcpy((char *)arena + off, src, (size_t)n);
}
static void cpu_copy_out(void *dst, const void *arena, int64_t off, int64_t n)
{
    memcpy(dst, (const char *)arena + off, (size_t)n);
}
static char *cpu_host(void *arena) { return arena; }

typedef int64_t (*init_fn)(char *, int64_t);
typedef int64_t (*entry_fn)(char *, const void *const *, const int64_t *, const void *);
typedef int64_t (*flush_fn)(char *, const void *);

/* The generated functions take `const k_runtime *rt`; this file sees it as
** const void * (same representation; the executor never reads it). */
static int64_t cpu_init(void *fn, void *arena, int64_t bytes) { return ((init_fn)fn)(arena, bytes); }
static int64_t cpu_run(void *fn, void *arena, const void *const *in, const int64_t *sizes, const void *rt)
{
    return ((entry_fn)fn)(arena, in, sizes, rt);
}
static int64_t cpu_flush(void *fn, void *arena, const void *rt) { return ((flush_fn)fn)(arena, rt); }

static const kiln_exec_backend CPU = {"cpu", cpu_alloc, cpu_release, cpu_copy_in, cpu_copy_out, cpu_host,
                                      cpu_init, cpu_run, cpu_flush};

const kiln_exec_backend *kiln_exec_backend_cpu(void) { return &CPU; }

void kiln_exec_cpu_runtime(kiln_codegen_runtime *rt, const kiln_kernel_set *ks, bool products)
{
    /* CBLAS's enums are ints in the generated code's view (k_runtime) */
    rt->sgemm = (void (*)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                          float *, int))cblas_sgemm;
    rt->dgemm = (void (*)(int, int, int, int, int, int, double, const double *, int, const double *, int, double,
                          double *, int))cblas_dgemm;
    rt->sgemv = (void (*)(int, int, int, int, float, const float *, int, const float *, int, float, float *,
                          int))cblas_sgemv;
    rt->dgemv = (void (*)(int, int, int, int, double, const double *, int, const double *, int, double, double *,
                          int))cblas_dgemv;
    rt->sger = (void (*)(int, int, int, float, const float *, int, const float *, int, float *, int))cblas_sger;
    rt->dger = (void (*)(int, int, int, double, const double *, int, const double *, int, double *, int))cblas_dger;
    rt->sger_gemv = ks->sger_gemv;
    rt->sgemm_nn = products ? ks->sgemm_nn : NULL;
    rt->sgemm_tn = products ? ks->sgemm_tn : NULL;
    rt->transpose = ks->transpose;
    rt->pack_nn = products ? ks->pack_nn : NULL; /* both or neither */
    rt->sgemm_nn_packed = products ? ks->sgemm_nn_packed : NULL;
}

static void *lookup_dlsym(void *lib, const char *name) { return dlsym(lib, name); }

/* ---- monomials ------------------------------------------------------------ */

/* m at sizes into *out; false on overflow or a bad monomial. */
static bool mono_eval(const kiln_manifest_mono *m, const int64_t *sizes, int64_t *out)
{
    int64_t v = m->c;
    if (v < 0)
        return false;
    for (int k = 0; k < KILN_MANIFEST_SYMBOLS; k++)
        for (int j = 0; j < m->e[k]; j++)
            if (sizes[k] < 0 || __builtin_mul_overflow(v, sizes[k], &v))
                return false;
    *out = v;
    return true;
}

static bool tensor_count(const kiln_manifest_tensor *t, const int64_t *sizes, int64_t *out)
{
    int64_t n = 1, d;
    for (int k = 0; k < t->rank; k++)
        if (!mono_eval(&t->dims[k], sizes, &d) || __builtin_mul_overflow(n, d, &n))
            return false;
    *out = n;
    return true;
}

static int64_t dtype_bytes(int32_t dtype) { return dtype == KILN_MANIFEST_F64 ? 8 : 4; }

static void mono_str(const kiln_manifest *m, const kiln_manifest_mono *d, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int k = KILN_MANIFEST_SYMBOLS - 1; k >= 0; k--) /* T before B, as shape.c writes it */
        for (int j = 0; j < d->e[k] && n < cap; j++)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "*" : "", m->symbol_names[k] ? m->symbol_names[k] : "?");
    if (n < cap && (d->c != 1 || n == 0))
        snprintf(buf + n, cap - n, n ? "*%lld" : "%lld", (long long)d->c);
}

/* ---- checking a manifest ------------------------------------------------------ */

static enum kiln_status bad(char *msg, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum kiln_status bad(char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(msg, cap, "manifest: ");
    vsnprintf(msg + (n > 0 && (size_t)n < cap ? n : 0), cap - (n > 0 && (size_t)n < cap ? (size_t)n : 0), fmt, ap);
    va_end(ap);
    return KILN_ERR_FORMAT;
}

static bool name_ok(const char *s) { return s && strnlen(s, MAX_NAME) < MAX_NAME; }

/* Bytes tensor t spans at the maxima: [*lo, *hi) of the arena. */
static bool tensor_span(const kiln_manifest *m, const kiln_manifest_tensor *t, int64_t *lo, int64_t *hi)
{
    int64_t n, unit, at;
    if (!tensor_count(t, m->max_sizes, &n) || !mono_eval(&t->stride_unit, m->max_sizes, &unit) ||
        t->offset < 0 || t->stride < 0 || __builtin_mul_overflow(t->stride, unit, &at) ||
        __builtin_add_overflow(at, t->offset, &at) || __builtin_mul_overflow(n, dtype_bytes(t->dtype), &n) ||
        __builtin_add_overflow(at, n, hi))
        return false;
    *lo = at;
    return true;
}

enum kiln_status kiln_exec_check_manifest(const kiln_manifest *m, char *msg, size_t cap)
{
    static const char *const KIND[] = {"input", "output", "cost", "monitor", "parameter", "state"};
    if (!m)
        return bad(msg, cap, "none");
    /* 1. Version and layout. */
    if (m->magic != KILN_MANIFEST_MAGIC)
        return bad(msg, cap, "magic number %#x, expected %#x", (unsigned)m->magic, (unsigned)KILN_MANIFEST_MAGIC);
    if (m->version != KILN_MANIFEST_VERSION)
        return bad(msg, cap, "version %u, this executor reads version %d (recompile the unit)", (unsigned)m->version,
                   KILN_MANIFEST_VERSION);
    if (m->struct_size != sizeof *m || m->tensor_size != sizeof *m->tensors)
        return bad(msg, cap, "struct sizes %u and %u, expected %zu and %zu", (unsigned)m->struct_size,
                   (unsigned)m->tensor_size, sizeof *m, sizeof *m->tensors);
    if (!name_ok(m->model))
        return bad(msg, cap, "the model name is missing or not NUL-terminated");
    if ((m->entries & ~(uint32_t)((1 << KILN_MANIFEST_N_ENTRIES) - 1)) ||
        (m->entries & (KILN_MANIFEST_INIT | KILN_MANIFEST_FLUSH)) != (KILN_MANIFEST_INIT | KILN_MANIFEST_FLUSH))
        return bad(msg, cap, "entry bits %#x: unknown bits, or no init or flush", (unsigned)m->entries);
    if (m->floatx != KILN_MANIFEST_F32 && m->floatx != KILN_MANIFEST_F64)
        return bad(msg, cap, "float type %d", (int)m->floatx);
    for (int k = 0; k < KILN_MANIFEST_SYMBOLS; k++) {
        if (m->symbol_names[k] && !name_ok(m->symbol_names[k]))
            return bad(msg, cap, "symbol %d's name is not NUL-terminated", k);
        if (m->max_sizes[k] < 0 || m->max_sizes[k] > (INT64_C(1) << 32))
            return bad(msg, cap, "symbol %d's maximum %lld outside [0, 2^32]", k, (long long)m->max_sizes[k]);
    }
    if (m->max_sizes[0] < 1)
        return bad(msg, cap, "the batch's maximum is %lld", (long long)m->max_sizes[0]);
    /* 2. The arena: params | grads | states | values, in order, inside it. */
    if (!(0 <= m->param_bytes && m->param_bytes <= m->off_grads && m->off_grads + m->param_bytes <= m->off_states &&
          0 <= m->state_bytes && m->off_states + m->state_bytes <= m->off_values &&
          m->off_values <= m->arena_bytes && m->arena_bytes <= (INT64_C(1) << 40)))
        return bad(msg, cap, "arena layout params %lld, grads @%lld, states @%lld (%lld bytes), values @%lld, "
                   "arena %lld bytes: out of order or too large", (long long)m->param_bytes, (long long)m->off_grads,
                   (long long)m->off_states, (long long)m->state_bytes, (long long)m->off_values,
                   (long long)m->arena_bytes);
    if (m->gemm_n < 0 || m->gemm_k < 0)
        return bad(msg, cap, "GEMM scratch %d x %d", (int)m->gemm_n, (int)m->gemm_k);
    /* 3. The tensors: counts, kinds in order, names, places. */
    if (m->n_inputs < 0 || m->n_values < 0 || m->n_params < 0 || m->n_states < 0 ||
        (int64_t)m->n_inputs + m->n_values + m->n_params + m->n_states != m->n_tensors || m->n_tensors > (1 << 24) ||
        (m->n_tensors && !m->tensors))
        return bad(msg, cap, "tensor counts %d + %d + %d + %d against %d", (int)m->n_inputs, (int)m->n_values,
                   (int)m->n_params, (int)m->n_states, (int)m->n_tensors);
    for (int i = 0; i < m->n_tensors; i++) {
        const kiln_manifest_tensor *t = &m->tensors[i];
        int want = i < m->n_inputs ? KILN_MANIFEST_INPUT
                 : i < m->n_inputs + m->n_values ? -1
                 : i < m->n_inputs + m->n_values + m->n_params ? KILN_MANIFEST_PARAM
                                                               : KILN_MANIFEST_STATE;
        bool value = t->kind == KILN_MANIFEST_OUTPUT || t->kind == KILN_MANIFEST_COST || t->kind == KILN_MANIFEST_MONITOR;
        if (want >= 0 ? t->kind != want : !value)
            return bad(msg, cap, "tensor %d has kind %d, out of place", i, (int)t->kind);
        if (!name_ok(t->owner) || !name_ok(t->name))
            return bad(msg, cap, "tensor %d (%s): a name is missing or not NUL-terminated", i, KIND[t->kind]);
        if (t->rank < 0 || t->rank > KILN_MANIFEST_RANK || t->dtype < KILN_MANIFEST_F32 || t->dtype > KILN_MANIFEST_I32)
            return bad(msg, cap, "%s '%s': rank %d, dtype %d", KIND[t->kind], t->name, (int)t->rank, (int)t->dtype);
        int64_t lo, hi;
        bool slab = t->kind == KILN_MANIFEST_PARAM || t->kind == KILN_MANIFEST_STATE;
        if (t->kind == KILN_MANIFEST_INPUT && t->place != KILN_MANIFEST_BOUND)
            return bad(msg, cap, "input '%s' is not bound by pointer", t->name);
        if (t->place == KILN_MANIFEST_BOUND) {
            if (slab || t->index_bound < 0 || t->index_bound >= m->n_inputs ||
                (t->kind == KILN_MANIFEST_INPUT && t->index_bound != i))
                return bad(msg, cap, "%s '%s': bound to input %d of %d", KIND[t->kind], t->name,
                           (int)t->index_bound, (int)m->n_inputs);
            continue;
        }
        if (t->place != KILN_MANIFEST_ARENA && (slab || t->place != KILN_MANIFEST_NOWHERE))
            return bad(msg, cap, "%s '%s': place %d", KIND[t->kind], t->name, (int)t->place);
        if (t->place == KILN_MANIFEST_NOWHERE)
            continue;
        if (!tensor_span(m, t, &lo, &hi) || hi > m->arena_bytes)
            return bad(msg, cap, "%s '%s': its bytes at the maxima fall outside the arena (%lld bytes)", KIND[t->kind],
                       t->name, (long long)m->arena_bytes);
        /* persistent slabs: in their zone, and apart from one another */
        if (slab) {
            bool param = t->kind == KILN_MANIFEST_PARAM;
            int64_t z0 = param ? 0 : m->off_states, z1 = param ? m->param_bytes : m->off_states + m->state_bytes;
            if (t->stride || lo < z0 || hi > z1 || (param && t->grad_offset != m->off_grads + lo))
                return bad(msg, cap, "%s %s.%s at [%lld, %lld): outside its slab [%lld, %lld)", KIND[t->kind], t->owner,
                           t->name, (long long)lo, (long long)hi, (long long)z0, (long long)z1);
            for (int j = m->n_inputs + m->n_values; j < i; j++) {
                int64_t lo2, hi2;
                if (tensor_span(m, &m->tensors[j], &lo2, &hi2) && lo < hi2 && lo2 < hi && lo < hi)
                    return bad(msg, cap, "%s %s.%s at [%lld, %lld) overlaps %s.%s at [%lld, %lld)", KIND[t->kind],
                               t->owner, t->name, (long long)lo, (long long)hi, m->tensors[j].owner,
                               m->tensors[j].name, (long long)lo2, (long long)hi2);
            }
        }
    }
    return KILN_OK;
}

/* ---- opening ------------------------------------------------------------------ */

enum kiln_status kiln_exec_open(const kiln_exec_config *c, kiln_exec **out)
{
    static const char *const ENTRY[] = KILN_MANIFEST_ENTRY_NAMES;
    if (!out)
        return KILN_ERR_ARG;
    kiln_exec *x = calloc(1, sizeof *x);
    *out = x;
    if (!x)
        return KILN_ERR_NOMEM;
    if (!c || !c->model || (!c->lib && !c->manifest))
        return fail(x, KILN_ERR_ARG, "kiln_exec_open: %s is NULL", !c ? "the config" : !c->model ? "model" : "lib");
    x->be = c->backend ? c->backend : &CPU;
    x->rt = c->rt;
    kiln_exec_lookup lookup = c->lookup ? c->lookup : lookup_dlsym;
    size_t nm = strlen(c->model);
    char sym[300];
    if (nm > 200)
        return fail(x, KILN_ERR_ARG, "model name of %zu characters, at most 200", nm);
    /* 1. The manifest, checked. */
    snprintf(sym, sizeof sym, "%s_manifest", c->model);
    x->m = c->manifest ? c->manifest : c->lib ? lookup(c->lib, sym) : NULL;
    if (!x->m)
        return fail(x, KILN_ERR_COMPILE, "the unit has no %s: not a kiln unit, or one made before manifests", sym);
    enum kiln_status st = kiln_exec_check_manifest(x->m, x->msg, sizeof x->msg);
    if (st)
        return x->status = st;
    if (strcmp(x->m->model, c->model) != 0)
        return fail(x, KILN_ERR_FORMAT, "manifest: model '%s', expected '%s'", x->m->model, c->model);
    /* 2. The entry points its bits name. */
    for (int k = 0; k < KILN_MANIFEST_N_ENTRIES; k++) {
        if (!(x->m->entries & (1u << k)))
            continue;
        snprintf(sym, sizeof sym, "%s_%s", c->model, ENTRY[k]);
        if (!c->lib || !(x->entry[k] = lookup(c->lib, sym)))
            return fail(x, KILN_ERR_COMPILE, "generated library lacks %s", sym);
    }
    /* 3. Input slots, sizes, the arena, init. */
    x->bound = calloc((size_t)x->m->n_inputs + 1, sizeof *x->bound);
    x->bound_count = calloc((size_t)x->m->n_inputs + 1, sizeof *x->bound_count);
    if (!x->bound || !x->bound_count)
        return fail(x, KILN_ERR_NOMEM, "executor: no memory");
    for (int k = 0; k < KILN_MANIFEST_SYMBOLS; k++)
        x->sizes[k] = x->m->max_sizes[k] ? 1 : 0;
    if (!(x->arena = x->be->alloc(x->m->arena_bytes)))
        return fail(x, KILN_ERR_NOMEM, "arena: no memory for %lld bytes", (long long)x->m->arena_bytes);
    if (x->be->init(x->entry[0], x->arena, x->m->arena_bytes) != 0)
        return fail(x, KILN_ERR_COMPILE, "generated init rejected the arena (%lld bytes)", (long long)x->m->arena_bytes);
    return KILN_OK;
}

void kiln_exec_destroy(kiln_exec *x)
{
    if (!x)
        return;
    if (x->arena)
        x->be->release(x->arena);
    free(x->bound);
    free(x->bound_count);
    free(x);
}

const char *kiln_exec_errmsg(const kiln_exec *x)
{
    return !x ? "out of memory" : x->status == KILN_OK ? "ok" : x->msg;
}

const kiln_manifest *kiln_exec_manifest(const kiln_exec *x) { return x && x->arena ? x->m : NULL; }

bool kiln_exec_has(const kiln_exec *x, enum kiln_manifest_entry e)
{
    return x && x->arena && (x->m->entries & (uint32_t)e);
}

char *kiln_exec_arena(kiln_exec *x) { return x && x->arena ? x->be->host(x->arena) : NULL; }

/* ---- names and sizes -------------------------------------------------------------- */

const char *kiln_exec_path(const kiln_exec *x, int t, char *buf, size_t cap)
{
    const kiln_manifest_tensor *r = &x->m->tensors[t];
    snprintf(buf, cap, "%s%s%s", r->owner, *r->owner ? "." : "", r->name);
    return buf;
}

int kiln_exec_find(const kiln_exec *x, int kind, const char *name)
{
    if (!x || !x->arena || !name)
        return -1;
    for (int t = 0; t < x->m->n_tensors; t++) {
        const kiln_manifest_tensor *r = &x->m->tensors[t];
        if (r->kind != kind)
            continue;
        size_t no = strlen(r->owner);
        bool path = kind == KILN_MANIFEST_PARAM || kind == KILN_MANIFEST_STATE;
        if (path && no ? strncmp(name, r->owner, no) == 0 && name[no] == '.' && strcmp(name + no + 1, r->name) == 0
                       : strcmp(name, r->name) == 0)
            return t;
    }
    return -1;
}

int64_t kiln_exec_count(const kiln_exec *x, int t, const int64_t *sizes)
{
    int64_t n;
    return tensor_count(&x->m->tensors[t], sizes ? sizes : x->last_sizes, &n) ? n : -1;
}

const char *kiln_exec_shape_str(const kiln_exec *x, int t, char *buf, size_t cap)
{
    const kiln_manifest_tensor *r = &x->m->tensors[t];
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int k = 0; k < r->rank && n < cap; k++) {
        char d[48];
        mono_str(x->m, &r->dims[k], d, sizeof d);
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", k ? ", " : "", d);
    }
    if (n < cap)
        snprintf(buf + n, cap - n, r->rank == 1 ? ",)" : ")");
    return buf;
}

enum kiln_status kiln_exec_bind(kiln_exec *x, const char *name, const void *data, int64_t count)
{
    if (!x || !x->arena)
        return KILN_ERR_ARG;
    int i = kiln_exec_find(x, KILN_MANIFEST_INPUT, name);
    if (i >= 0) {
        x->bound[i] = data;
        x->bound_count[i] = count;
        x->status = KILN_OK;
        return KILN_OK;
    }
    char list[256] = "";
    size_t n = 0;
    for (int k = 0; k < x->m->n_inputs && n < sizeof list; k++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", k ? ", " : "", x->m->tensors[k].name);
    return fail(x, KILN_ERR_NOT_FOUND, "no program input is named '%s' (inputs: %s)", name ? name : "(null)",
                n ? list : "none");
}

const void *kiln_exec_bound(const kiln_exec *x, int i)
{
    return x && x->arena && i >= 0 && i < x->m->n_inputs ? x->bound[i] : NULL;
}

enum kiln_status kiln_exec_set_size(kiln_exec *x, int k, int64_t size)
{
    if (!x || !x->arena)
        return KILN_ERR_ARG;
    if (k < 1 || k >= KILN_MANIFEST_SYMBOLS)
        return fail(x, KILN_ERR_ARG, "symbol %d: not a symbol other than the batch", k);
    const char *name = x->m->symbol_names[k] ? x->m->symbol_names[k] : "?";
    if (!x->m->max_sizes[k])
        return fail(x, KILN_ERR_ARG, "symbol %s: no value of this program has it", name);
    if (size < 1 || size > x->m->max_sizes[k])
        return fail(x, KILN_ERR_ARG, "symbol %s: size %lld, expected 1 to %lld (its maximum)", name, (long long)size,
                    (long long)x->m->max_sizes[k]);
    x->sizes[k] = size;
    return KILN_OK;
}

/* ---- running ------------------------------------------------------------------------ */

enum kiln_status kiln_exec_run(kiln_exec *x, enum kiln_manifest_entry e, int64_t batch, const char *what,
                               int64_t *code)
{
    if (!x || !x->arena)
        return KILN_ERR_ARG;
    int k = __builtin_ctz((unsigned)e | (1u << 31));
    *code = 0;
    if (k >= KILN_MANIFEST_N_ENTRIES || !x->entry[k] || e == KILN_MANIFEST_INIT || e == KILN_MANIFEST_FLUSH)
        return fail(x, KILN_ERR_STATE, "%s: this unit has no %s entry point", what, what);
    if (batch < 1 || batch > x->m->max_sizes[0])
        return fail(x, KILN_ERR_ARG, "%s: batch of %lld examples, expected 1 to %lld (max_batch)", what,
                    (long long)batch, (long long)x->m->max_sizes[0]);
    int64_t sizes[KILN_MANIFEST_SYMBOLS];
    memcpy(sizes, x->sizes, sizeof sizes);
    sizes[0] = batch;
    /* the inputs this entry reads: bound, and long enough */
    for (int i = 0; i < x->m->n_inputs; i++) {
        if (!(x->m->tensors[i].modes & (uint32_t)e))
            continue;
        if (!x->bound[i])
            return fail(x, KILN_ERR_STATE, "%s: input '%s' is not bound", what, x->m->tensors[i].name);
        int64_t need;
        if (x->bound_count[i] < 0)
            continue;
        if (!tensor_count(&x->m->tensors[i], sizes, &need))
            return fail(x, KILN_ERR_SHAPE, "%s: the size of input '%s' overflows", what, x->m->tensors[i].name);
        if (x->bound_count[i] < need) {
            char shape[400];
            return fail(x, KILN_ERR_SHAPE, "%s: input '%s' %s needs %lld elements at these sizes, it was bound to %lld",
                        what, x->m->tensors[i].name, kiln_exec_shape_str(x, i, shape, sizeof shape), (long long)need,
                        (long long)x->bound_count[i]);
        }
    }
    *code = x->be->run(x->entry[k], x->arena, x->bound, sizes, x->run_rt ? x->run_rt : x->rt);
    if (*code)
        return fail(x, KILN_ERR_ARG, "%s: generated code failed with code %lld", what, (long long)*code);
    x->last_entry = (uint32_t)e;
    memcpy(x->last_sizes, sizes, sizeof sizes);
    x->status = KILN_OK;
    return KILN_OK;
}

void kiln_exec_set_runtime(kiln_exec *x, const void *rt)
{
    if (x)
        x->run_rt = rt;
}

const int64_t *kiln_exec_last_sizes(const kiln_exec *x) { return x && x->last_entry ? x->last_sizes : NULL; }

void kiln_exec_flush(kiln_exec *x)
{
    if (x && x->arena)
        x->be->flush(x->entry[5], x->arena, x->rt);
}

/* ---- reading and writing ------------------------------------------------------------- */

/* Tensor t's arena offset at sizes and bytes, after checking bytes. */
static enum kiln_status locate(kiln_exec *x, int t, const int64_t *sizes, int64_t bytes, int64_t *off)
{
    const kiln_manifest_tensor *r = &x->m->tensors[t];
    int64_t n, unit;
    if (!tensor_count(r, sizes, &n) || !mono_eval(&r->stride_unit, sizes, &unit))
        return fail(x, KILN_ERR_SHAPE, "'%s': its size overflows", r->name);
    if (bytes != n * dtype_bytes(r->dtype))
        return fail(x, KILN_ERR_ARG, "'%s': %lld bytes, it has %lld", r->name, (long long)bytes,
                    (long long)(n * dtype_bytes(r->dtype)));
    *off = r->offset + r->stride * unit;
    return KILN_OK;
}

enum kiln_status kiln_exec_read(kiln_exec *x, int t, void *dst, int64_t bytes)
{
    if (!x || !x->arena || t < 0 || t >= x->m->n_tensors || (!dst && bytes))
        return x ? fail(x, KILN_ERR_ARG, "kiln_exec_read: tensor %d or its buffer", t) : KILN_ERR_ARG;
    const kiln_manifest_tensor *r = &x->m->tensors[t];
    bool slab = r->kind == KILN_MANIFEST_PARAM || r->kind == KILN_MANIFEST_STATE;
    if (!slab && !(r->modes & x->last_entry))
        return fail(x, KILN_ERR_STATE, "'%s' is not computed by the last entry point run", r->name);
    if (r->place == KILN_MANIFEST_NOWHERE)
        return fail(x, KILN_ERR_STATE, "'%s' is not stored", r->name);
    const int64_t *sizes = slab ? x->m->max_sizes : x->last_sizes;
    int64_t off;
    enum kiln_status st;
    if (r->place == KILN_MANIFEST_BOUND) { /* an output that is an input */
        int64_t n;
        if (!tensor_count(r, sizes, &n) || bytes != n * dtype_bytes(r->dtype))
            return fail(x, KILN_ERR_ARG, "'%s': %lld bytes, not its size", r->name, (long long)bytes);
        memcpy(dst, x->bound[r->index_bound], (size_t)bytes);
        return KILN_OK;
    }
    if ((st = locate(x, t, sizes, bytes, &off)))
        return st;
    if (off < x->m->param_bytes) /* a parameter, or a value that is one: as of the last step */
        kiln_exec_flush(x);
    x->be->copy_out(dst, x->arena, off, bytes);
    return KILN_OK;
}

enum kiln_status kiln_exec_write(kiln_exec *x, int t, const void *src, int64_t bytes)
{
    if (!x || !x->arena || t < 0 || t >= x->m->n_tensors || (!src && bytes))
        return x ? fail(x, KILN_ERR_ARG, "kiln_exec_write: tensor %d or its buffer", t) : KILN_ERR_ARG;
    const kiln_manifest_tensor *r = &x->m->tensors[t];
    if (r->kind != KILN_MANIFEST_PARAM && r->kind != KILN_MANIFEST_STATE)
        return fail(x, KILN_ERR_ARG, "'%s' is not a parameter or a state", r->name);
    int64_t off;
    enum kiln_status st = locate(x, t, x->m->max_sizes, bytes, &off);
    if (st)
        return st;
    if (r->kind == KILN_MANIFEST_PARAM) /* so that no deferred update lands on the new values */
        kiln_exec_flush(x);
    x->be->copy_in(x->arena, off, src, bytes);
    return KILN_OK;
}
