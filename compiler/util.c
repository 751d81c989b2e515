/* util.c: error slots, checked formatting, status and dtype names. */
#include "compiler/util.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

enum kiln_status kiln_err_setv(kiln_err *e, enum kiln_status status, const char *fmt, va_list ap)
{
    int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    if (n < 0) {
        strcpy(e->msg, "(error message could not be formatted)");
    } else if ((size_t)n >= sizeof e->msg) {
        memcpy(e->msg + sizeof e->msg - 4, "...", 4);
    }
    e->status = status;
    return status;
}

enum kiln_status kiln_err_set(kiln_err *e, enum kiln_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln_err_setv(e, status, fmt, ap);
    va_end(ap);
    return status;
}

void kiln_err_clear(kiln_err *e)
{
    e->status = KILN_OK;
    e->msg[0] = '\0';
}

enum kiln_status kiln_err_copy(kiln_err *dst, const kiln_err *src, const char *prefix)
{
    if (dst == src)
        return src->status;
    if (prefix)
        return kiln_err_set(dst, src->status, "%s%s", prefix, src->msg);
    return kiln_err_set(dst, src->status, "%s", src->msg);
}

int kiln_snprintf(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

void kiln_strbuf_vput(kiln_strbuf *b, const char *fmt, va_list ap)
{
    if (b->oom)
        return;
    va_list ap2;
    va_copy(ap2, ap);
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap2);
    va_end(ap2);
    if (k < 0) {
        b->oom = true;
        return;
    }
    if (!b->s || b->n + (size_t)k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + (size_t)k + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
        vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    }
    b->n += (size_t)k;
}

void kiln_strbuf_put(kiln_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln_strbuf_vput(b, fmt, ap);
    va_end(ap);
}

char *kiln_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

kiln_shown_path kiln_path_show(const char *path)
{
    kiln_shown_path out;
    size_t n = path ? strlen(path) : 0;
    if (n <= KILN_PATH_SHOWN) {
        memcpy(out.s, path ? path : "", n + 1);
        return out;
    }
    /* keep the last KILN_PATH_SHOWN - 3 bytes, from a '/' when one is there,
    ** never from the middle of a UTF-8 sequence */
    const char *tail = path + n - (KILN_PATH_SHOWN - 3);
    const char *slash = strchr(tail, '/');
    if (slash && slash[1])
        tail = slash;
    while ((*tail & 0xC0) == 0x80)
        tail++;
    memcpy(out.s, "...", 3);
    memcpy(out.s + 3, tail, strlen(tail) + 1);
    return out;
}

/* ---- pools ------------------------------------------------------------- */

typedef struct pool_block {
    struct pool_block *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
} pool_block;

struct kiln_pool {
    pool_block *head;
};

kiln_pool *kiln_pool_create(void) { return calloc(1, sizeof(kiln_pool)); }

void kiln_pool_destroy(kiln_pool *p)
{
    if (!p)
        return;
    for (pool_block *b = p->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(p);
}

void *kiln_pool_alloc(kiln_pool *p, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n == 0)
        n = 8;
    pool_block *b = p->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        pool_block *nb = malloc(sizeof *nb + cap);
        if (!nb)
            return NULL;
        nb->used = 0;
        nb->cap = cap;
        nb->next = p->head;
        p->head = nb;
        b = nb;
    }
    void *r = (char *)b->data + b->used;
    b->used += n;
    return r;
}

char *kiln_pool_strdup(kiln_pool *p, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = kiln_pool_alloc(p, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

const char *kiln_status_string(enum kiln_status s)
{
    switch (s) {
    case KILN_OK: return "ok";
    case KILN_ERR_ARG: return "bad argument";
    case KILN_ERR_SHAPE: return "shape mismatch";
    case KILN_ERR_CONFIG: return "configuration error";
    case KILN_ERR_STATE: return "call out of order";
    case KILN_ERR_NOT_FOUND: return "not found";
    case KILN_ERR_NOMEM: return "out of memory";
    case KILN_ERR_IO: return "input/output error";
    case KILN_ERR_FORMAT: return "malformed file";
    case KILN_ERR_COMPILE: return "compilation failed";
    case KILN_ERR_UNSUPPORTED: return "unsupported";
    case KILN_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

const char *kiln_dtype_name(enum kiln_dtype t)
{
    switch (t) {
    case KILN_DTYPE_F32: return "float32";
    case KILN_DTYPE_F64: return "float64";
    case KILN_DTYPE_I32: return "int32";
    }
    return "unknown";
}

size_t kiln_dtype_size(enum kiln_dtype t)
{
    switch (t) {
    case KILN_DTYPE_F32: return 4;
    case KILN_DTYPE_F64: return 8;
    case KILN_DTYPE_I32: return 4;
    }
    return 0;
}

int kiln_write_whole(const char *path, const void *head, size_t head_n, const void *data, size_t n)
{
    size_t cap = strlen(path) + 8;
    char *tmp = malloc(cap);
    if (!tmp) {
        errno = ENOMEM;
        return -1;
    }
    snprintf(tmp, cap, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        errno = e;
        return -1;
    }
    FILE *f = fdopen(fd, "wb");
    bool ok = f && fwrite(head, 1, head_n, f) == head_n && fwrite(data, 1, n, f) == n;
    int e = errno;
    if (f ? fclose(f) != 0 : close(fd) != 0)
        ok = false;
    if (ok && (chmod(tmp, 0644) != 0 || rename(tmp, path) != 0)) {
        e = errno;
        ok = false;
    }
    if (!ok)
        unlink(tmp);
    free(tmp);
    errno = e ? e : EIO;
    return ok ? 0 : -1;
}

void kiln_strbuf_put_literal(kiln_strbuf *b, const char *s)
{
    kiln_strbuf_put(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr(" _.-", *c))
            kiln_strbuf_put(b, "%c", *c);
        else
            kiln_strbuf_put(b, "\\%03o", *c);
    }
    kiln_strbuf_put(b, "\"");
}

uint64_t kiln_fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}
