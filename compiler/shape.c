/* shape.c: dims as monomials, and shapes.
**
** A dim is an int64 code: a constant > 0, or minus one minus an index into
** the graph's dim table. The table's first KILN_MAX_SYMBOLS entries are the
** symbols themselves (B, T, user symbols: c = 1, one exponent 1); entries
** after them are products made by reshape and flatten (T*B, 20*B), interned
** so that one monomial has one code and dims compare as integers.
**
** Why codes rather than a monomial per dim: shapes stay arrays of int64
** (hashing, comparing and printing them is unchanged), the public API keeps
** KILN_BATCH = -1, and a product is rare (a fold before a matrix product and
** the unfold after it). The cost is that a code means something only in its
** graph; rebuilding a graph copies the table first (kiln_graph_copy_dims).
**
** Every size is checked: constants past 2^53 (the largest integer a double
** holds exactly, since sizes reach float64 code as means) and exponents past
** 64 are overflows, reported by the caller with the node and its shape. */
#include <stdlib.h>
#include <string.h>

#include "compiler/graph.h"

#define MONO_C_MAX (INT64_C(1) << 53)
#define MONO_E_MAX 64

int kiln_dim_symbol(int64_t d)
{
    if (d < 0 && d != KILN_INFER && d >= -(int64_t)KILN_MAX_SYMBOLS)
        return (int)(-d - 1);
    return -1;
}

bool kiln_dim_mono(const kiln_graph *g, int64_t d, kiln_mono *out)
{
    memset(out, 0, sizeof *out);
    if (d > 0) {
        out->c = d;
        return true;
    }
    if (d == 0 || d == KILN_INFER)
        return false;
    int64_t k = -d - 1;
    if (k >= g->n_dims)
        return false;
    *out = g->dims[k];
    return true;
}

bool kiln_mono_equal(const kiln_mono *a, const kiln_mono *b)
{
    return a->c == b->c && memcmp(a->e, b->e, sizeof a->e) == 0;
}

bool kiln_mono_is_const(const kiln_mono *m)
{
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        if (m->e[k])
            return false;
    return true;
}

bool kiln_mono_mul(const kiln_mono *a, const kiln_mono *b, kiln_mono *out)
{
    kiln_mono r;
    if (!kiln_mul_i64(a->c, b->c, &r.c) || r.c > MONO_C_MAX)
        return false;
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++) {
        int e = a->e[k] + b->e[k];
        if (e > MONO_E_MAX)
            return false;
        r.e[k] = (uint8_t)e;
    }
    *out = r;
    return true;
}

bool kiln_mono_div(const kiln_mono *a, const kiln_mono *b, kiln_mono *out)
{
    kiln_mono r;
    if (b->c <= 0 || a->c % b->c != 0)
        return false;
    r.c = a->c / b->c;
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++) {
        if (a->e[k] < b->e[k])
            return false;
        r.e[k] = (uint8_t)(a->e[k] - b->e[k]);
    }
    *out = r;
    return true;
}

int64_t kiln_mono_eval(const kiln_mono *m, const int64_t *sizes)
{
    int64_t v = m->c;
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        for (int j = 0; j < m->e[k]; j++)
            v *= sizes[k];
    return v;
}

bool kiln_mono_eval_checked(const kiln_mono *m, const int64_t *sizes, int64_t *out)
{
    int64_t v = m->c;
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        for (int j = 0; j < m->e[k]; j++)
            if (sizes[k] < 0 || !kiln_mul_i64(v, sizes[k], &v))
                return false;
    *out = v;
    return true;
}

const char *kiln_mono_str(const kiln_graph *g, const kiln_mono *m, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int k = KILN_MAX_SYMBOLS - 1; k >= 0; k--) /* T before B: (T*B, F) reads as time-major */
        for (int j = 0; j < m->e[k] && n < cap; j++) {
            const char *s = g->symbol_names[k] ? g->symbol_names[k] : "?";
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "*" : "", s);
        }
    if (n < cap && (m->c != 1 || n == 0))
        snprintf(buf + n, cap - n, n ? "*%lld" : "%lld", (long long)m->c);
    return buf;
}

int64_t kiln_graph_dim_code(kiln_graph *g, const kiln_mono *m)
{
    if (kiln_mono_is_const(m))
        return m->c;
    for (int32_t k = 0; k < g->n_dims; k++)
        if (kiln_mono_equal(&g->dims[k], m))
            return -(int64_t)k - 1;
    if (g->n_dims < KILN_MAX_SYMBOLS) /* never: the symbols are made with the graph */
        return 0;
    if (g->n_dims >= 4096) {
        kiln_graph_fail(g, KILN_ERR_UNSUPPORTED, "more than 4096 distinct symbolic dims in one graph");
        return 0;
    }
    if (g->n_dims == g->cap_dims) {
        int32_t cap = g->cap_dims * 2;
        kiln_mono *d = realloc(g->dims, (size_t)cap * sizeof *d);
        if (!d) {
            kiln_graph_fail(g, KILN_ERR_NOMEM, "graph: no memory for a dim");
            return 0;
        }
        g->dims = d;
        g->cap_dims = cap;
    }
    g->dims[g->n_dims] = *m;
    return -(int64_t)(g->n_dims++) - 1;
}

bool kiln_graph_copy_dims(kiln_graph *dst, const kiln_graph *src)
{
    if (dst->cap_dims < src->n_dims) {
        kiln_mono *d = realloc(dst->dims, (size_t)src->cap_dims * sizeof *d);
        if (!d)
            return false;
        dst->dims = d;
        dst->cap_dims = src->cap_dims;
    }
    memcpy(dst->dims, src->dims, (size_t)src->n_dims * sizeof *dst->dims);
    dst->n_dims = src->n_dims;
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++) {
        dst->symbol_names[k] = NULL;
        if (src->symbol_names[k] && !(dst->symbol_names[k] = kiln_graph_intern(dst, src->symbol_names[k])))
            return false;
    }
    return true;
}

bool kiln_shape_size(const kiln_graph *g, const kiln_shape *s, kiln_mono *out)
{
    kiln_mono acc = {.c = 1};
    for (int i = 0; i < s->rank; i++) {
        kiln_mono d;
        if (!kiln_dim_mono(g, s->dims[i], &d) || !kiln_mono_mul(&acc, &d, &acc))
            return false;
    }
    *out = acc;
    return true;
}

int64_t kiln_shape_const_size(const kiln_graph *g, const kiln_shape *s)
{
    kiln_mono m;
    return kiln_shape_size(g, s, &m) ? m.c : -1;
}

bool kiln_shape_is_static(const kiln_graph *g, const kiln_shape *s)
{
    (void)g;
    for (int i = 0; i < s->rank; i++)
        if (s->dims[i] < 0)
            return false;
    return true;
}

bool kiln_shape_has_symbol(const kiln_graph *g, const kiln_shape *s, int64_t sym)
{
    int k = kiln_dim_symbol(sym);
    for (int i = 0; i < s->rank; i++) {
        kiln_mono m;
        if (s->dims[i] < 0 && kiln_dim_mono(g, s->dims[i], &m) && k >= 0 && m.e[k])
            return true;
    }
    return false;
}

bool kiln_shape_equal(const kiln_shape *a, const kiln_shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

const char *kiln_shape_str(const kiln_graph *g, const kiln_shape *s, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    n += (size_t)snprintf(buf + n, cap - n, "(");
    for (int i = 0; i < s->rank && n < cap; i++) {
        char d[48];
        kiln_mono m;
        if (s->dims[i] > 0)
            snprintf(d, sizeof d, "%lld", (long long)s->dims[i]);
        else if (g && kiln_dim_mono(g, s->dims[i], &m))
            kiln_mono_str(g, &m, d, sizeof d);
        else
            snprintf(d, sizeof d, "?%lld", (long long)s->dims[i]);
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", d);
    }
    if (n < cap)
        snprintf(buf + n, cap - n, s->rank == 1 ? ",)" : ")");
    return buf;
}

/* ---- public ------------------------------------------------------------- */

int64_t kiln_graph_symbol(kiln_graph *g, const char *name)
{
    if (!g)
        return 0;
    if (!name || !*name) {
        kiln_graph_fail(g, KILN_ERR_ARG, "kiln_graph_symbol: a symbol needs a name (name is %s)",
                        name ? "\"\"" : "NULL");
        return 0;
    }
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        if (g->symbol_names[k] && strcmp(g->symbol_names[k], name) == 0)
            return -(int64_t)k - 1;
    if (strlen(name) > 32) {
        kiln_graph_fail(g, KILN_ERR_ARG, "symbol name '%.40s...' is longer than 32 characters", name);
        return 0;
    }
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9' && c > name) ||
              *c == '_')) {
            kiln_graph_fail(g, KILN_ERR_ARG, "symbol name '%s': use letters, digits and '_'", name);
            return 0;
        }
    for (int k = 2; k < KILN_MAX_SYMBOLS; k++)
        if (!g->symbol_names[k]) {
            if (!(g->symbol_names[k] = kiln_graph_intern(g, name)))
                return 0;
            return -(int64_t)k - 1;
        }
    kiln_graph_fail(g, KILN_ERR_UNSUPPORTED, "symbol '%s': a graph has at most %d symbols (B, T and %d more)", name,
                    KILN_MAX_SYMBOLS, KILN_MAX_SYMBOLS - 2);
    return 0;
}

const char *kiln_graph_dim_str(const kiln_graph *g, int64_t dim, char *buf, size_t cap)
{
    kiln_mono m;
    if (!g || !buf || cap == 0)
        return "";
    if (!kiln_dim_mono(g, dim, &m))
        snprintf(buf, cap, "?");
    else
        kiln_mono_str(g, &m, buf, cap);
    return buf;
}
