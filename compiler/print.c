/* print.c: a graph as text and as Graphviz dot (kiln_graph_write_text,
** kiln_graph_write_dot; kiln_program_write_graph prints a program graph
** through kiln_graph_print with the plan's updates).
**
** One describer writes a node's fields (id and op, type, inputs, the
** attributes its op reads, name, owner, roles, replaces) through a printer
** that knows the output form: text separates fields with spaces and ends
** the node with a newline; dot writes them as the lines of a quoted label.
** User text (names, owners) goes through one escaper in both forms: quoted,
** with C escapes for quotes, backslashes and control bytes, so a name is
** always one field of one line; the dot form then escapes the label's
** quotes and backslashes once more, so nothing a user names can close a
** label or start a statement. Only kiln's own text (numbers, op names,
** shapes) is written unescaped, and in dot only inside a label.
** Write errors are sticky: the printer stops at the first and reports
** KILN_ERR_IO; the graph is never touched, so a full disk cannot poison it. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/graph.h"

typedef struct printer {
    FILE *f;
    bool dot;
    bool first;  /* no field of this node written yet */
    bool failed; /* a write failed */
} printer;

/* Raw bytes of kiln's own making. */
static void emit(printer *p, const char *s, size_t n)
{
    if (!p->failed && n && fwrite(s, 1, n, p->f) != n)
        p->failed = true;
}

/* Text of a label: in dot, quotes and backslashes escaped for the label. */
static void emit_label(printer *p, const char *s, size_t n)
{
    if (!p->dot) {
        emit(p, s, n);
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '"' || s[i] == '\\') {
            emit(p, s + start, i - start);
            emit(p, "\\", 1);
            start = i;
        }
    emit(p, s + start, n - start);
}

/* Format kiln's own text (short: numbers, op names, shapes) into buf. */
static size_t format(printer *p, char *buf, size_t cap, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, cap, fmt, ap);
    if (n < 0 || (size_t)n >= cap) { /* never: our fields are short; fail rather than cut */
        p->failed = true;
        return 0;
    }
    return (size_t)n;
}

/* Part of a field (a label's text in dot). */
static void put(printer *p, const char *fmt, ...) KILN_PRINTF(2, 3);
static void put(printer *p, const char *fmt, ...)
{
    char buf[KILN_SHAPE_STR_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format(p, buf, sizeof buf, fmt, ap);
    va_end(ap);
    emit_label(p, buf, n);
}

/* Structure around the fields: dot statements, text's update lines. */
static void raw(printer *p, const char *fmt, ...) KILN_PRINTF(2, 3);
static void raw(printer *p, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format(p, buf, sizeof buf, fmt, ap);
    va_end(ap);
    emit(p, buf, n);
}

/* Start a field: a space between fields in text, a line break in a label. */
static void field(printer *p)
{
    if (!p->first)
        emit(p, p->dot ? "\\l" : " ", p->dot ? 2 : 1);
    p->first = false;
}

/* User text, quoted, with C escapes. */
static void put_user(printer *p, const char *s)
{
    emit_label(p, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        switch (c) {
        case '"': put(p, "\\\""); break;
        case '\\': put(p, "\\\\"); break;
        case '\n': put(p, "\\n"); break;
        case '\t': put(p, "\\t"); break;
        case '\r': put(p, "\\r"); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(e, sizeof e, "\\x%02x", c);
                emit_label(p, e, strlen(e));
            } else {
                emit_label(p, (const char *)&c, 1);
            }
        }
    }
    emit_label(p, "\"", 1);
}

/* A double as the shortest of %.15g and %.17g that reads back the same. */
static void put_double(printer *p, const char *key, double v)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (isfinite(v) && strtod(buf, NULL) != v)
        snprintf(buf, sizeof buf, "%.17g", v);
    field(p);
    put(p, "%s=%s", key, buf);
}

static void put_int(printer *p, const char *key, int64_t v)
{
    field(p);
    put(p, "%s=%lld", key, (long long)v);
}

/* The attributes op reads (graph.h's op table). */
static void put_attrs(printer *p, const kiln_graph *g, const kiln_node_rec *r)
{
    static const char *const dists[] = {"uniform", "normal", "bernoulli"};
    const kiln_attr *a = &r->attr;
    char d[64];
    switch (r->op) {
    case KILN_OP_CONST: put_double(p, "value", a->f[0]); break;
    case KILN_OP_SYMBOL: field(p), put(p, "symbol=%s", kiln_graph_dim_str(g, a->i[0], d, sizeof d)); break;
    case KILN_OP_CLIP: put_double(p, "lo", a->f[0]), put_double(p, "hi", a->f[1]); break;
    case KILN_OP_ONEHOT: put_int(p, "depth", a->i[0]); break;
    case KILN_OP_SUM:
    case KILN_OP_MAX:
        field(p);
        put(p, "axes=(");
        for (int k = 0, n = 0; k < 63; k++)
            if (a->i[0] >> k & 1)
                put(p, "%s%d", n++ ? ", " : "", k);
        put(p, ")");
        break;
    case KILN_OP_MATMUL:
        if (kiln_attr_trans_a(r))
            field(p), put(p, "trans_a");
        if (kiln_attr_trans_b(r))
            field(p), put(p, "trans_b");
        break;
    case KILN_OP_TRANSPOSE:
        field(p);
        put(p, "perm=(");
        for (int k = 0; k < r->shape.rank; k++)
            put(p, "%s%lld", k ? ", " : "", (long long)a->i[k]);
        put(p, ")");
        break;
    case KILN_OP_SLICE: put_int(p, "axis", a->i[0]), put_int(p, "start", a->i[1]), put_int(p, "step", a->i[3]); break;
    case KILN_OP_PAD: put_int(p, "axis", a->i[0]), put_int(p, "before", a->i[1]); break;
    case KILN_OP_CONCAT:
    case KILN_OP_REVERSE:
    case KILN_OP_SPLIT: put_int(p, "axis", a->i[0]); break;
    case KILN_OP_PROJ: put_int(p, "index", a->i[0]); break;
    case KILN_OP_ARG: put_int(p, "arg", a->i[0]); break;
    case KILN_OP_SCAN:
        put_int(p, "body", a->i[KILN_SCAN_BODY]), put_int(p, "sequences", a->i[KILN_SCAN_SEQ]);
        put_int(p, "states", a->i[KILN_SCAN_STATE]), put_int(p, "contexts", a->i[KILN_SCAN_CTX]);
        put_int(p, "outputs", a->i[KILN_SCAN_OUT]);
        if (a->i[KILN_SCAN_REVERSE])
            field(p), put(p, "reverse");
        if (a->i[KILN_SCAN_SUMS])
            field(p), put(p, "summed=0x%llx", (unsigned long long)a->i[KILN_SCAN_SUMS]);
        if (a->i[KILN_SCAN_SAVED])
            put_int(p, "saved", a->i[KILN_SCAN_SAVED]);
        break;
    case KILN_OP_RANDOM: {
        int64_t kind = a->i[0];
        field(p);
        put(p, "dist=%s", kind >= 0 && kind < 3 ? dists[kind] : "?");
        if (kind == KILN_RANDOM_UNIFORM)
            put_double(p, "lo", a->f[0]), put_double(p, "hi", a->f[1]);
        else if (kind == KILN_RANDOM_NORMAL)
            put_double(p, "mean", a->f[0]), put_double(p, "std", a->f[1]);
        else
            put_double(p, "p", a->f[0]);
        put_int(p, "stream", a->i[1]);
        break;
    }
    default: break;
    }
}

static void put_roles(printer *p, unsigned roles)
{
    static const char *const names[] = {"INPUT", "OUTPUT", "COST", "AUXILIARY", "PARAMETER", "WEIGHT", "BIAS",
                                        "DROPOUT", "ALGORITHM_STATE", "RANDOM_STATE",
                                        "INITIAL_STATE"};
    if (!roles)
        return;
    field(p);
    put(p, "roles=");
    bool any = false;
    for (unsigned k = 0; k < KILN_ARRAY_LEN(names); k++)
        if (roles >> k & 1) {
            put(p, "%s%s", any ? "|" : "", names[k]);
            any = true;
        }
    if (roles >> KILN_ARRAY_LEN(names))
        put(p, "%s0x%x", any ? "|" : "", roles >> KILN_ARRAY_LEN(names) << KILN_ARRAY_LEN(names));
}

/* Every field of node id; pre names the graph (a body's "b<k>."). */
static void put_node(printer *p, const kiln_graph *g, int32_t id, const char *pre)
{
    const kiln_node_rec *r = &g->nodes[id];
    char s[KILN_SHAPE_STR_MAX];
    p->first = true;
    field(p);
    put(p, "%sn%d = %s", pre, (int)id, kiln_op_info_of(r->op)->name);
    field(p);
    if (r->n_out) {
        put(p, "{");
        for (int k = 0; k < r->n_out; k++)
            put(p, "%s%s %s", k ? "; " : "", kiln_dtype_name(r->outs[k].dtype),
                kiln_shape_str(g, &r->outs[k].shape, s, sizeof s));
        put(p, "}");
    } else {
        put(p, "%s %s", kiln_dtype_name(r->dtype), kiln_shape_str(g, &r->shape, s, sizeof s));
    }
    if (r->n_in) {
        field(p);
        put(p, "(");
        for (int k = 0; k < r->n_in; k++)
            put(p, "%s%sn%d", k ? ", " : "", pre, (int)r->in[k]);
        put(p, ")");
    }
    put_attrs(p, g, r);
    if (r->name)
        field(p), put(p, "name="), put_user(p, r->name);
    if (r->owner)
        field(p), put(p, "owner="), put_user(p, r->owner);
    put_roles(p, r->roles);
    if (r->replaces >= 0)
        field(p), put(p, "replaces=%sn%d", pre, (int)r->replaces);
}

/* The nodes of g, then its scans' bodies, each after a header naming it and
** its results; a body's nodes are named "b<k>.n<id>" (nested: "b<k>.b<j>.";
** in dot, where an id has no dots, "b<k>_n<id>"). */
static void put_graph(printer *p, const kiln_graph *g, const char *pre)
{
    for (int32_t id = 0; id < g->n_nodes && !p->failed; id++) {
        if (p->dot)
            raw(p, "  %sn%d [label=\"", pre, (int)id);
        put_node(p, g, id, pre);
        if (!p->dot) {
            raw(p, "\n");
            continue;
        }
        raw(p, "\\l\"];\n");
        for (int k = 0; k < g->nodes[id].n_in; k++)
            raw(p, "  %sn%d -> %sn%d;\n", pre, (int)g->nodes[id].in[k], pre, (int)id);
    }
    for (int b = 0; b < g->n_bodies && !p->failed; b++) {
        const kiln_graph *body = g->bodies[b];
        char sub[64];
        if (snprintf(sub, sizeof sub, p->dot ? "%sb%d_" : "%sb%d.", pre, b) >= (int)sizeof sub) {
            p->failed = true; /* never: bodies nest a few deep */
            break;
        }
        if (p->dot) {
            raw(p, "  subgraph cluster_%.*s {\n  label=\"scan body %.*s, results", (int)strlen(sub) - 1, sub,
                (int)strlen(sub) - 1, sub);
            for (int k = 0; k < body->n_results; k++)
                raw(p, " %sn%d", sub, (int)body->results[k]);
            raw(p, "\";\n");
        } else {
            raw(p, "body %.*s, results", (int)strlen(sub) - 1, sub);
            for (int k = 0; k < body->n_results; k++)
                raw(p, " %sn%d", sub, (int)body->results[k]);
            raw(p, "\n");
        }
        put_graph(p, body, sub);
        raw(p, p->dot ? "  }\n" : "end %.*s\n", (int)strlen(sub) - 1, sub);
    }
}

enum kiln_status kiln_graph_print(const kiln_graph *g, const kiln_update *ups, int n_ups,
                                  FILE *f, bool dot)
{
    if (!g || !f)
        return KILN_ERR_ARG;
    printer p = {.f = f, .dot = dot};
    if (dot)
        raw(&p, "digraph kiln {\n  node [shape=box, fontname=\"monospace\"];\n");
    put_graph(&p, g, "");
    for (int u = 0; u < n_ups; u++) {
        const char *when = ups[u].on_read ? "" : " (train_step)"; /* else: wherever the target is read */
        if (dot)
            raw(&p, "  n%d -> n%d [style=dashed, label=\"update%s\"];\n", (int)ups[u].value, (int)ups[u].target,
                when);
        else
            raw(&p, "update n%d <- n%d%s\n", (int)ups[u].target, (int)ups[u].value, when);
    }
    if (dot)
        raw(&p, "}\n");
    if (p.failed || ferror(f))
        return KILN_ERR_IO;
    return KILN_OK;
}

enum kiln_status kiln_graph_write_text(const kiln_graph *g, FILE *f)
{
    return kiln_graph_print(g, g ? g->updates : NULL, g ? g->n_updates : 0, f, false);
}

enum kiln_status kiln_graph_write_dot(const kiln_graph *g, FILE *f)
{
    return kiln_graph_print(g, g ? g->updates : NULL, g ? g->n_updates : 0, f, true);
}
