/* cache.c: the compile cache as tools see it: list its entries, clear it,
** prune what dead processes left (include/kiln/cache.h).
**
** The layout and the trust rules are runtime/jit.c's; this file only walks
** the folders jit.c makes. Plan of a walk: resolve and check the cache
** folder, then each shard folder (two hex digits) and compilers/, refusing
** one that another user owns or others may write, as a load does. An entry
** is "<shard>/<62 hex>.so"; its key is the shard's digits and the name's.
** Clearing removes a file only while its stem's lock is free (the lock a
** compile of that key holds for its whole life), so it never pulls a file
** from under a compile; it leaves the lock files, as jit.c never removes
** them (unlinking a lock races with its next taker). */
#include "kiln/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler/util.h"
#include "runtime/jit.h"

#define SHARD_HEX 2

static bool is_hex(const char *s, size_t n)
{
    return strspn(s, "0123456789abcdef") >= n;
}

static bool is_shard(const char *name) { return strlen(name) == SHARD_HEX && is_hex(name, SHARD_HEX); }

/* The message of err into out->msg, returning its status. */
static enum kiln_status report_err(kiln_cache_report *out, const kiln_err *err)
{
    memcpy(out->msg, err->msg, sizeof out->msg < sizeof err->msg ? sizeof out->msg : sizeof err->msg);
    out->msg[sizeof out->msg - 1] = '\0';
    return err->status;
}

/* The cache folder, checked, and its listing (NULL when it does not exist). */
static enum kiln_status open_cache(const char *dir, char **cache, DIR **d, kiln_err *err)
{
    *d = NULL;
    enum kiln_status st = kiln_jit_cache_folder(dir, cache, err);
    if (st || (st = kiln_jit_check_folder(*cache, err)))
        return st;
    *d = opendir(*cache);
    if (!*d && errno != ENOENT) {
        int e = errno;
        return kiln_err_set(err, KILN_ERR_IO, "cache: cannot read %s: %s", kiln_path_show(*cache).s, strerror(e));
    }
    return KILN_OK;
}

/* sub of the cache, checked as a load checks it; NULL with err set. */
static char *open_sub(const char *cache, const char *sub, kiln_err *err)
{
    size_t n = strlen(cache) + strlen(sub) + 2;
    char *path = malloc(n);
    if (!path) {
        kiln_err_set(err, KILN_ERR_NOMEM, "cache: out of memory (paths)");
        return NULL;
    }
    snprintf(path, n, "%s/%s", cache, sub);
    if (kiln_jit_check_folder(path, err) != KILN_OK) {
        free(path);
        return NULL;
    }
    return path;
}

/* ---- list ------------------------------------------------------------------ */

typedef struct entries {
    kiln_cache_entry *v;
    int n, cap;
} entries;

static int by_key(const void *a, const void *b)
{
    return strcmp(((const kiln_cache_entry *)a)->key, ((const kiln_cache_entry *)b)->key);
}

/* The entries of one shard folder into es. */
static enum kiln_status list_shard(const char *path, const char *shard, entries *es, kiln_err *err)
{
    DIR *d = opendir(path);
    if (!d)
        return KILN_OK; /* gone meanwhile */
    enum kiln_status st = KILN_OK;
    for (struct dirent *e; !st && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n != KILN_JIT_KEY_HEX - SHARD_HEX + 3 || strcmp(e->d_name + n - 3, ".so") != 0 ||
            !is_hex(e->d_name, n - 3))
            continue;
        struct stat so, c;
        if (fstatat(dirfd(d), e->d_name, &so, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (es->n == es->cap) {
            int cap = es->cap ? 2 * es->cap : 64;
            kiln_cache_entry *v = realloc(es->v, (size_t)cap * sizeof *v);
            if (!v) {
                st = kiln_err_set(err, KILN_ERR_NOMEM, "cache: out of memory (%d entries)", cap);
                break;
            }
            es->v = v;
            es->cap = cap;
        }
        kiln_cache_entry *x = &es->v[es->n];
        memset(x, 0, sizeof *x);
        memcpy(x->key, shard, SHARD_HEX);
        memcpy(x->key + SHARD_HEX, e->d_name, n - 3);
        x->bytes = so.st_size;
        x->modified = so.st_mtime;
        char src[NAME_MAX + 1];
        snprintf(src, sizeof src, "%.*s.c", (int)(n - 3), e->d_name);
        x->has_source = fstatat(dirfd(d), src, &c, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(c.st_mode);
        kiln_err why;
        if ((st = kiln_jit_verify_entry(path, x->key, err, &why)) != KILN_OK)
            break;
        x->verified = !why.msg[0];
        snprintf(x->problem, sizeof x->problem, "%s", why.msg);
        es->n++;
    }
    closedir(d);
    return st;
}

enum kiln_status kiln_cache_list(const char *dir, kiln_cache_entry_fn fn, void *user, kiln_cache_report *out)
{
    KILN_API_CHECK(out);
    if (!out)
        return KILN_ERR_ARG;
    memset(out, 0, sizeof *out);
    kiln_err err;
    kiln_err_clear(&err);
    char *cache = NULL;
    DIR *d;
    entries es = {0};
    enum kiln_status st = open_cache(dir, &cache, &d, &err);
    for (struct dirent *e; !st && d && (e = readdir(d));) {
        if (!is_shard(e->d_name))
            continue;
        char *path = open_sub(cache, e->d_name, &err);
        st = path ? list_shard(path, e->d_name, &es, &err) : err.status;
        free(path);
    }
    if (d)
        closedir(d);
    free(cache);
    if (!st) {
        if (es.n > 1) /* es.v is NULL for an empty cache: qsort(NULL, 0) is UB */
            qsort(es.v, (size_t)es.n, sizeof *es.v, by_key);
        out->n_entries = es.n;
        for (int i = 0; i < es.n; i++)
            out->entry_bytes += es.v[i].bytes;
        for (int i = 0; fn && i < es.n; i++)
            if (fn(&es.v[i], user))
                break;
    }
    free(es.v);
    return st ? report_err(out, &err) : KILN_OK;
}

/* ---- clear and prune ------------------------------------------------------- */

/* Is the lock of stem (the file name up to its first '.') in folder d free?
** A stem with no lock file is free. */
static bool stem_free(int dfd, const char *name)
{
    size_t k = strcspn(name, ".");
    char lock[NAME_MAX + 1];
    if (k + 6 > NAME_MAX)
        return false;
    snprintf(lock, sizeof lock, "%.*s.lock", (int)k, name);
    int fd = openat(dfd, lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT;
    bool free_ = flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd); /* releases it */
    return free_;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* Remove every file of folder path but the locks, stem by stem while its lock
** is free. */
static void clear_folder(const char *path, kiln_cache_report *out)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || ends_with(e->d_name, ".lock"))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(st.st_mode))
            continue;
        bool library = ends_with(e->d_name, ".so");
        if (!stem_free(dirfd(d), e->d_name)) {
            out->n_busy += library;
            continue;
        }
        if (unlinkat(dirfd(d), e->d_name, 0) != 0)
            continue;
        out->n_removed++;
        out->bytes_removed += st.st_size;
        if (library) {
            out->n_entries++;
            out->entry_bytes += st.st_size;
        }
    }
    closedir(d);
}

/* Prune into out (adding to what it holds). */
static enum kiln_status prune(const char *dir, kiln_cache_report *out)
{
    kiln_jit_prune_report r;
    enum kiln_status st = kiln_jit_prune(dir, &r);
    out->n_removed += r.n_removed;
    out->bytes_removed += r.bytes_removed;
    if (st)
        snprintf(out->msg, sizeof out->msg, "%s", r.msg);
    return st;
}

enum kiln_status kiln_cache_prune(const char *dir, kiln_cache_report *out)
{
    KILN_API_CHECK(out);
    if (!out)
        return KILN_ERR_ARG;
    memset(out, 0, sizeof *out);
    return prune(dir, out);
}

enum kiln_status kiln_cache_clear(const char *dir, kiln_cache_report *out)
{
    KILN_API_CHECK(out);
    if (!out)
        return KILN_ERR_ARG;
    memset(out, 0, sizeof *out);
    enum kiln_status st = prune(dir, out);
    if (st)
        return st;
    kiln_err err;
    kiln_err_clear(&err);
    char *cache = NULL;
    DIR *d;
    st = open_cache(dir, &cache, &d, &err);
    for (struct dirent *e; !st && d && (e = readdir(d));) {
        if (!is_shard(e->d_name) && strcmp(e->d_name, "compilers") != 0)
            continue;
        char *path = open_sub(cache, e->d_name, &err);
        if (!path)
            st = err.status;
        else
            clear_folder(path, out);
        free(path);
    }
    if (d)
        closedir(d);
    free(cache);
    return st ? report_err(out, &err) : KILN_OK;
}
