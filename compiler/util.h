/* util.h: small internal helpers every layer may use: error slots, checked
** string formatting, and the internal API check.
**
** kiln_err is the message slot that every handle embeds (as sqlite3 keeps
** its errmsg): a status and one line of text. A call that fails fills the slot
** of the object it was called on and returns the status. */
#ifndef KILN_UTIL_H
#define KILN_UTIL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "kiln/common.h"

#define KILN_ERRMSG_MAX 512

typedef struct kiln_err {
    enum kiln_status status;
    char msg[KILN_ERRMSG_MAX];
} kiln_err;

#if defined(__GNUC__)
#define KILN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KILN_PRINTF(a, b)
#endif

/* Record status and a formatted message in e; returns status. A message too
** long for the slot ends in "..." rather than being cut silently. */
enum kiln_status kiln_err_set(kiln_err *e, enum kiln_status status, const char *fmt, ...)
    KILN_PRINTF(3, 4);
enum kiln_status kiln_err_setv(kiln_err *e, enum kiln_status status, const char *fmt, va_list ap);
void kiln_err_clear(kiln_err *e);
/* Copy src's status and message into dst, prefixed with prefix (may be NULL). */
enum kiln_status kiln_err_copy(kiln_err *dst, const kiln_err *src, const char *prefix);

/* snprintf that reports truncation: 0 on success, -1 when it did not fit. */
int kiln_snprintf(char *dst, size_t cap, const char *fmt, ...) KILN_PRINTF(3, 4);

/* Duplicate a string (NULL on OOM or when s is NULL). */
char *kiln_strdup(const char *s);

/* A growing string: {0} is empty; s is malloc'ed and NUL-terminated once
** something was put; oom is sticky (later puts do nothing); free(s). */
typedef struct kiln_strbuf {
    char *s;
    size_t n, cap;
    bool oom;
} kiln_strbuf;
void kiln_strbuf_vput(kiln_strbuf *b, const char *fmt, va_list ap);
void kiln_strbuf_put(kiln_strbuf *b, const char *fmt, ...) KILN_PRINTF(2, 3);
/* s as a C string literal: letters, digits, space and "_.-" as they are,
** every other byte as a three-digit octal escape (no trigraph, terminator,
** line break, comment opener or path can form: a reader that strips
** comments and looks for user text finds none): user text put in generated
** code stays data (runtime/export.c, codegen/manifest.c; test_network.c's
** crafted_names_are_data). */
void kiln_strbuf_put_literal(kiln_strbuf *b, const char *s);
/* FNV-1a, 64 bits, of p[0..n). */
uint64_t kiln_fnv1a(const unsigned char *p, size_t n);

/* A C string literal of s: letters, digits, space and "_./-:" as they are,
** every other byte as a three-digit octal escape (no trigraph, no
** terminator, no line break can form): generated code's way to hold a
** name that is data (runtime/export.c, runtime/aot.c). */
void kiln_strbuf_put_literal(kiln_strbuf *b, const char *s);

/* A path as a message shows it: whole when it has at most KILN_PATH_SHOWN
** bytes, else "..." and its tail from a '/', so that a long path never pushes
** the reason out of a one-line message (#9). Use the member s directly in
** the call that prints it: kiln_path_show(path).s lives until that call ends. */
#define KILN_PATH_SHOWN 120
typedef struct kiln_shown_path {
    char s[KILN_PATH_SHOWN + 1];
} kiln_shown_path;
kiln_shown_path kiln_path_show(const char *path);

/* Write head[0..head_n) then data[0..n) to path whole or not at all: a
** temp file beside it (path.XXXXXX), mode 0644, renamed over path. 0, or
** -1 with errno set (the temp file removed). */
int kiln_write_whole(const char *path, const void *head, size_t head_n, const void *data, size_t n);

/* Misuse of the API by the calling program (a NULL handle or pointer, a
** foreign node): every public function checks for it and returns a status,
** or a getter its documented neutral value, whatever the build (#9): a
** library's caller gets an error to handle, not an abort. Built with
** -Dapi_trap=true (KILN_API_TRAP), the check also traps at the first
** misuse, for a developer who wants the stack of the bad call (Lua's
** LUA_USE_APICHECK is the same opt-in). Rejected: trapping in every build
** without NDEBUG (it was so before #9): meson's default build type keeps
** asserts, so a caller's NULL aborted their process. */
#ifdef KILN_API_TRAP
#include <assert.h>
#define KILN_API_CHECK(x) assert(x)
#else
#define KILN_API_CHECK(x) ((void)0)
#endif

#define KILN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A bump allocator: blocks of memory handed out in order and freed all at
** once (a graph's node inputs, tuple types and strings). Allocations never
** move, so pointers into a pool stay valid while it lives. */
typedef struct kiln_pool kiln_pool;
kiln_pool *kiln_pool_create(void);
void kiln_pool_destroy(kiln_pool *p);
/* n bytes aligned to 8; NULL on OOM. n == 0 gives a valid unique pointer. */
void *kiln_pool_alloc(kiln_pool *p, size_t n);
char *kiln_pool_strdup(kiln_pool *p, const char *s);

/* The reference count of a handle that other objects keep alive (#9): a
** store entry held by graphs, a dataset by its streams, a stream and a
** program by main loops. The creator's reference is the caller's, dropped
** by the handle's destroy; each keeper retains and releases one of its own;
** the last release frees. kiln_refs_drop_caller makes a second destroy of a
** handle still kept alive a no-op rather than a theft of a keeper's
** reference. Atomic: keepers may be made and destroyed on other threads. */
typedef struct kiln_refs {
    atomic_int n;
    atomic_bool caller_dropped;
} kiln_refs;
static inline void kiln_refs_init(kiln_refs *r)
{
    atomic_init(&r->n, 1);
    atomic_init(&r->caller_dropped, false);
}
static inline void kiln_refs_retain(kiln_refs *r) { atomic_fetch_add_explicit(&r->n, 1, memory_order_relaxed); }
/* True when this was the last reference: free the object. */
static inline bool kiln_refs_release(kiln_refs *r)
{
    return atomic_fetch_sub_explicit(&r->n, 1, memory_order_acq_rel) == 1;
}
/* The caller's destroy: true when the object is to be freed now. */
static inline bool kiln_refs_drop_caller(kiln_refs *r)
{
    if (atomic_exchange(&r->caller_dropped, true))
        return false;
    return kiln_refs_release(r);
}

/* Checked arithmetic on sizes: false on overflow, *out untouched then. */
static inline bool kiln_mul_i64(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}
static inline bool kiln_add_i64(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

#endif
