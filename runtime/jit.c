/* jit.c: turn one generated C translation unit into a loaded shared object,
** through a content-addressed cache on disk that verifies what it loads.
**
** Layout under the cache folder ($XDG_CACHE_HOME/kiln, else ~/.cache/kiln):
**   <k0k1>/<k2..k63>.so     the library, named by its key (SHA-256, hex)
**   <k0k1>/<k2..k63>.sum    its record: key, size and SHA-256 of the .so
**   <k0k1>/<k2..k63>.c      the source it was built from (people read it)
**   <k0k1>/<k2..k63>.log    diagnostics of the last failed compile only
**   <k0k1>/<k2..k63>.lock   flock()ed while compiling; never removed, since
**                           unlinking a lock file races with its next taker
**   <s0s1>/<s2..s63>.idx    index: source key -> key and the compiler that
**                           built it (a warm cache needs no compiler, below)
**   compilers/<sha>.txt     first line of `cc --version` for one binary,
**                           written under compilers/<sha>.lock
**   pending-XXXXXX.c        a speculative compile in flight (below), with
**                           its temp files pending-XXXXXX.{so,log}.XXXXXX
** Every file appears by rename() from a temp file "<name>.XXXXXX" in the
** same folder, so no reader ever sees half of one.
**
** Trust (docs/security.md). Whoever can write the cache can make this
** process run their code, so kiln makes its folders 0700 and refuses, with
** KILN_ERR_IO, a cache folder or a folder inside it (shard, compilers/)
** that belongs to another user or that group or others may write, as ssh
** refuses such a ~/.ssh. The folders above the cache are the user's to keep.
** Within a private cache, damage is the threat: a library is loaded only
** after its size and SHA-256 match its .sum record (written after the
** library, by rename, and naming its key, so a record copied from another
** entry does not match). A library that fails (truncated: dlopen of a .so
** cut after its ELF headers dies of SIGBUS; another model's library copied
** over the key; no record, as entries of older kilns) is rebuilt once,
** under the key's lock, and kiln_jit_note says why. The check costs a read
** and a hash of the library (about 0.1 ms for a model's), on every load.
** Rejected: dlopen("/proc/self/fd/N") of the verified descriptor, which
** closes the window between hash and load but names the library
** /proc/self/fd/N for debuggers; only this user can use that window, and
** they can run code anyway. A library that verifies but does not load is an
** error, not a rebuild: its bytes are what the compiler made, so a rebuild
** would fail the same way on every run. On a file system mounted noexec
** (statvfs) the error says so, before compiling when it can.
**
** Key: SHA-256 over tagged, length-prefixed fields (so no two field lists
** hash the same bytes): KILN_JIT_ABI; the compiler as found in PATH, its
** resolved path and the first line of its --version; each flag and link
** argument in order; the source bytes. Whatever changes the library's bytes
** changes its name, so an entry never needs invalidating. Not keyed: the
** libraries named by link arguments (they are linked dynamically) and
** environment variables the compiler reads (CPATH, GCC_EXEC_PREFIX).
**
** No compiler (#9). The key needs the compiler's identity, which needs the
** compiler; a machine that only runs cached models may have none. So each
** build also writes an index record named by the source key: the same
** fields with the compiler as requested (options.cc, $KILN_CC, or "" for
** the default) in place of its identity. When no compiler is found, the
** index names the entry last built for this source, flags and ABI; it loads
** if it verifies, and the note names the compiler that built it. When a
** compiler is found the full key is used as before, so an upgraded compiler
** still rebuilds. Rejected: always looking up through the index, which
** would keep libraries of an old compiler after an upgrade.
**
** Warm path (the common case; budget 5 ms in a fresh process): find the
** compiler in PATH (stat only), read its identity file, hash, check the
** shard folder, verify and dlopen the .so. No process starts, nothing is
** written. `cc --version` runs once per compiler binary: the identity file
** is named by the hash of the found path, the resolved path and st_dev,
** st_ino, st_size, st_mtime, so an upgraded compiler gets a new file and old
** libraries are not reused.
**
** Cold path: mkdir -p, check the folder, take the key's lock, remove the temp
** files of this key that a killed process left (every one is made under this
** lock and named after the key, the index record's too, so all that exist
** are dead), dead speculative compiles and dead identity writes, look
** again (another process may have built it while we waited), write the .c,
** run the compiler into a mkstemp() name in the same folder, fsync, hash,
** write the .sum, rename() onto the .so, write the index record.
** kiln_jit_prune removes what killed processes left anywhere in the cache.
** When a compile fails on a full disk (the compiler says "No space left on
** device", or it said nothing and the cache's file system is full) the
** message says the disk is full.
**
** Flags: -std=c11 -O2 -fno-unroll-loops -fno-slp-vectorize -fPIC -shared.
** Unrolling and SLP vectorisation double clang's time on a generated model
** (205 -> 106 ms for the 784-100-10 training program) and buy nothing
** measurable: the time of a step is in BLAS, and the loops that remain are
** still loop-vectorised (docs/performance.md). No -march=native, because a
** portable library is the same bytes, hence the same float results, on every
** host of an architecture (no FMA contraction on one machine and not on the
** next, so a resumed run computes what it would have); one cache in a shared
** home serves every host; and the warm path need not read /proc/cpuinfo
** (about 1.5 KB per logical CPU, generated by the kernel at each read) to key
** on the host. Dense products go to BLAS, which picks kernels for the CPU at
** run time, so native code would gain little on the rest. Rejected:
** -march=native keyed on cpuinfo's model name and flags line; whoever adds it
** must add the CPU identity to the key.
**
** The compiler runs through posix_spawn: no shell, so no argument is ever
** reparsed; stdin is /dev/null, stdout and stderr go to a temp log. The
** caller must not have SIGCHLD set to SIG_IGN (waitpid could not reap).
**
** No state outside the kiln_jit handle. Two loads of one key in a process
** share the dynamic loader's reference-counted mapping. */
#include "runtime/jit.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "compiler/util.h"

extern char **environ;

#define JIT_DIR_MODE 0700
#define JIT_LOCK_MODE 0600
/* Diagnostic lines quoted in a compile error, and log bytes read for them. */
#define JIT_DIAG_LINES 10
#define JIT_DIAG_READ 8192
/* Bytes of `cc --version` output kept; its first line is the identity. */
#define JIT_VERSION_MAX 1024
/* Search path when PATH is unset, as execvp uses. */
#define JIT_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
/* Shard folder: the key's first two hex digits. */
#define JIT_SHARD_HEX 2
#define JIT_SHA256_BYTES 32
/* Bytes of a .sum or .idx record read at most (they are about 200). */
#define JIT_RECORD_MAX 4096
/* Bytes hashed per read when verifying a library. */
#define JIT_HASH_CHUNK 16384
/* A temp file with no lock to ask is a dead process's once this old: the
** files it names (records, identity files) live for a write and a rename. */
#define JIT_STALE_SECONDS 600
/* A compile that failed without diagnostics on a file system with less free
** space than this failed for lack of it. */
#define JIT_FULL_BYTES (UINT64_C(1) << 20)
/* Name of the speculative compiles' sources in the cache root. */
#define JIT_PENDING "pending-"
#define JIT_SUM_MAGIC "kiln-jit-sum 1"
#define JIT_INDEX_MAGIC "kiln-jit-index 1"
_Static_assert(KILN_JIT_MSG_MAX == KILN_ERRMSG_MAX, "prune report holds a kiln_err message");

/* Fixed flags, before "-o out src link_args...". Part of the key. */
static const char *const JIT_FLAGS[] = {"-std=c11", "-O2", "-fno-unroll-loops", "-fPIC", "-shared"};

struct kiln_jit {
    kiln_err err;
    kiln_err note;     /* what a successful load repaired or fell back on */
    void *dl;          /* dlopen handle; NULL when the load failed */
    bool compiler_ran;
    char *so_path;     /* owned; NULL until the key is known */
    char key[KILN_JIT_KEY_HEX + 1]; /* "" until known */
};

/* The compiler of one load. */
typedef struct jit_cc {
    char *path;    /* as found in PATH, and what runs: argv[0] matters to
                   ** ccache links and to clang vs clang++ */
    char *real;    /* realpath(path) */
    struct stat st;/* of real */
    char version[JIT_VERSION_MAX]; /* first line of `path --version` */
} jit_cc;

/* The flags that make a shared object rather than an executable. */
static bool jit_flag_shared(const char *f) { return strcmp(f, "-fPIC") == 0 || strcmp(f, "-shared") == 0; }

/* SLP vectorisation off, spelled per compiler family. */
static const char *jit_flag_no_slp(const jit_cc *cc)
{
    const char *name = strrchr(cc->real, '/');
    name = name ? name + 1 : cc->real;
    return strstr(name, "clang") ? "-fno-slp-vectorize" : "-fno-tree-slp-vectorize";
}

/* Files of one key. */
typedef struct jit_paths {
    char *dir;  /* <cache>/<k0k1> */
    char *so, *sum, *src, *log, *lock, *base; /* base: <dir>/<k2..>, no extension */
} jit_paths;

static enum kiln_status jit_nomem(kiln_jit *j, const char *what)
{
    return kiln_err_set(&j->err, KILN_ERR_NOMEM, "jit: out of memory (%s)", what);
}

/* malloc'd formatted string; NULL when out of memory. Never truncates. */
static char *jit_strf(const char *fmt, ...) KILN_PRINTF(1, 2);
static char *jit_strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    int m = vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (m != n) {
        free(s);
        return NULL;
    }
    return s;
}

/* ---- hashing -------------------------------------------------------------- */

static EVP_MD_CTX *jit_hash_begin(void)
{
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    if (h && EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h);
        return NULL;
    }
    return h;
}

/* tag NUL, 8-byte little-endian length, bytes. Returns 1 on success. */
static int jit_hash_field(EVP_MD_CTX *h, const char *tag, const void *data, size_t len)
{
    unsigned char n[8];
    for (int i = 0; i < 8; i++)
        n[i] = (unsigned char)((uint64_t)len >> (8 * i));
    return EVP_DigestUpdate(h, tag, strlen(tag) + 1) == 1 &&
           EVP_DigestUpdate(h, n, sizeof n) == 1 &&
           (len == 0 || EVP_DigestUpdate(h, data, len) == 1);
}

static int jit_hash_str(EVP_MD_CTX *h, const char *tag, const char *s)
{
    return jit_hash_field(h, tag, s, strlen(s));
}

/* Finish into 64 hex digits and a NUL; frees h. Returns 1 on success. */
static int jit_hash_end(EVP_MD_CTX *h, int ok, char hex[KILN_JIT_KEY_HEX + 1])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    ok = ok && EVP_DigestFinal_ex(h, md, &n) == 1 && n == JIT_SHA256_BYTES;
    EVP_MD_CTX_free(h);
    if (!ok)
        return 0;
    for (unsigned i = 0; i < JIT_SHA256_BYTES; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[KILN_JIT_KEY_HEX] = '\0';
    return 1;
}

static enum kiln_status jit_hash_failed(kiln_jit *j, const char *what)
{
    return kiln_err_set(&j->err, KILN_ERR_NOMEM, "jit: SHA-256 of the %s failed (libcrypto)",
                        what);
}

/* ---- files ---------------------------------------------------------------- */

/* strerror, saying in words when the disk is full (#9). */
static const char *jit_strerror(int e)
{
    if (e == ENOSPC)
        return "No space left on device: the disk is full";
    if (e == EDQUOT)
        return "Disk quota exceeded: the disk is full for this user";
    return strerror(e);
}

/* "cannot create directory <dir>: [<the component that failed>: ]<why>" */
static enum kiln_status jit_mkdir_failed(kiln_jit *j, const char *dir, const char *part, int e)
{
    if (strcmp(dir, part) == 0)
        return kiln_err_set(&j->err, KILN_ERR_IO, "jit cache: cannot create directory %s: %s",
                            kiln_path_show(dir).s, jit_strerror(e));
    return kiln_err_set(&j->err, KILN_ERR_IO, "jit cache: cannot create directory %s: %s: %s",
                        kiln_path_show(dir).s, kiln_path_show(part).s, jit_strerror(e));
}

/* mkdir -p dir, mode 0700 for what it makes. The message names the first
** component that could not be made. */
static enum kiln_status jit_mkdirs(kiln_jit *j, const char *dir)
{
    struct stat st;
    if (mkdir(dir, JIT_DIR_MODE) == 0)
        return KILN_OK;
    if (errno == EEXIST)
        return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? KILN_OK
                                                          : jit_mkdir_failed(j, dir, dir, ENOTDIR);
    /* Slow path: make each ancestor in turn, then dir itself. */
    char *p = kiln_strdup(dir);
    if (!p)
        return jit_nomem(j, "cache path");
    enum kiln_status status = KILN_OK;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, JIT_DIR_MODE) != 0) {
            int e = errno;
            if (e != EEXIST)
                status = jit_mkdir_failed(j, dir, p, e);
            else if (!(stat(p, &st) == 0 && S_ISDIR(st.st_mode)))
                status = jit_mkdir_failed(j, dir, p, ENOTDIR);
        }
        *s = c;
        if (status || c == '\0')
            break;
    }
    free(p);
    return status;
}

/* Write len bytes to fd; 0 or an errno. */
static int jit_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Make path hold data, atomically: a temp file "<tmp_base>.XXXXXX" (NULL:
** path's own name) on the same file system, fsync, rename(). A reader sees
** the old file or the whole new one. The temp file's name says whose lock
** guards it, for the sweeps of temp files that killed processes left. */
static enum kiln_status jit_write_atomic(kiln_jit *j, const char *path, const char *tmp_base,
                                         const void *data, size_t len)
{
    char *tmp = jit_strf("%s.XXXXXX", tmp_base ? tmp_base : path);
    if (!tmp)
        return jit_nomem(j, "temp path");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        kiln_err_set(&j->err, KILN_ERR_IO, "jit cache: cannot create %s: %s",
                     kiln_path_show(tmp).s, jit_strerror(e));
        free(tmp);
        return KILN_ERR_IO;
    }
    const char *step = "write";
    int e = jit_write_all(fd, data, len);
    if (!e && fsync(fd) != 0) {
        e = errno;
        step = "fsync";
    }
    if (close(fd) != 0 && !e) {
        e = errno;
        step = "close";
    }
    if (!e && rename(tmp, path) != 0) {
        e = errno;
        step = "rename onto";
    }
    if (e) {
        unlink(tmp);
        free(tmp);
        return kiln_err_set(&j->err, KILN_ERR_IO, "jit cache: %s %s: %s", step,
                            kiln_path_show(path).s, jit_strerror(e));
    }
    free(tmp);
    return KILN_OK;
}

/* Read up to cap bytes at offset 0 of fd into buf; returns the count (0 on
** error: callers treat unreadable as empty). */
static size_t jit_read_fd(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t n = pread(fd, buf + got, cap - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* ---- trust: folders, records, verification -------------------------------- */

/* Record a note on j: what a successful load repaired or fell back on. */
static void jit_note(kiln_jit *j, const char *fmt, ...) KILN_PRINTF(2, 3);
static void jit_note(kiln_jit *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln_err_setv(&j->note, KILN_OK, fmt, ap);
    va_end(ap);
}

/* Refuse a folder of the cache that someone else could write (#9), as ssh
** refuses such a ~/.ssh: it must belong to this user, and neither group nor
** others may write it. A folder that does not exist yet passes (kiln makes
** it 0700), and so does a path that is no folder (mkdir says what it is). */
static enum kiln_status jit_check_dir(kiln_err *err, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return KILN_OK;
    uid_t me = geteuid();
    if (st.st_uid != me)
        return kiln_err_set(err, KILN_ERR_IO,
                            "jit cache: refusing %s: it belongs to uid %u, not to this user (uid "
                            "%u), and whoever can write the cache can run code in this process",
                            kiln_path_show(dir).s, (unsigned)st.st_uid, (unsigned)me);
    mode_t w = st.st_mode & (S_IWGRP | S_IWOTH);
    if (w)
        return kiln_err_set(err, KILN_ERR_IO,
                            "jit cache: refusing %s: it is writable by %s (mode %04o), and "
                            "whoever can write the cache can run code in this process; chmod "
                            "go-w it",
                            kiln_path_show(dir).s,
                            w == (S_IWGRP | S_IWOTH) ? "group and others"
                            : w == S_IWGRP           ? "its group"
                                                     : "others",
                            (unsigned)(st.st_mode & 07777));
    return KILN_OK;
}

/* Is dir on a file system mounted noexec? No library there can be loaded. */
static bool jit_noexec(const char *dir)
{
    struct statvfs v;
    return statvfs(dir, &v) == 0 && (v.f_flag & ST_NOEXEC);
}

static enum kiln_status jit_noexec_failed(kiln_jit *j, const char *dir)
{
    return kiln_err_set(&j->err, KILN_ERR_IO,
                        "jit cache: %s is on a file system mounted noexec, where no library can "
                        "be loaded; put the cache on another one (options.cache_dir, "
                        "$XDG_CACHE_HOME)",
                        kiln_path_show(dir).s);
}

/* Open a file of the cache to read it: no symbolic link followed, no
** waiting on a FIFO; *st is its fstat. -1 with errno on failure. */
static int jit_open_entry(int dirfd, const char *path, struct stat *st)
{
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd >= 0 && fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Why a file of an entry is not to be trusted, or NULL. */
static const char *jit_untrusted_file(const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return "it is not a regular file";
    if (st->st_uid != geteuid())
        return "it belongs to another user";
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return "it is writable by group or others";
    return NULL;
}

/* Read a small record file whole into text (JIT_RECORD_MAX + 1 bytes),
** NUL-terminated. 0, or an errno; EPERM when the file is not to be trusted
** (*why says why). */
static int jit_read_record(const char *path, char *text, const char **why)
{
    struct stat st;
    *why = NULL;
    text[0] = '\0';
    int fd = jit_open_entry(AT_FDCWD, path, &st);
    if (fd < 0)
        return errno;
    if ((*why = jit_untrusted_file(&st))) {
        close(fd);
        return EPERM;
    }
    size_t n = jit_read_fd(fd, text, JIT_RECORD_MAX);
    close(fd);
    text[n] = '\0';
    return 0;
}

/* SHA-256 (hex) and size of the file open on fd, from offset 0. 0, an errno
** (a read failed), or -1 (libcrypto failed). */
static int jit_hash_fd(int fd, char hex[KILN_JIT_KEY_HEX + 1], uint64_t *size)
{
    EVP_MD_CTX *h = jit_hash_begin();
    if (!h)
        return -1;
    unsigned char buf[JIT_HASH_CHUNK];
    uint64_t at = 0;
    int ok = 1;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, (off_t)at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            EVP_MD_CTX_free(h);
            return e;
        }
        if (n == 0)
            break;
        ok = ok && EVP_DigestUpdate(h, buf, (size_t)n) == 1;
        at += (uint64_t)n;
    }
    *size = at;
    return jit_hash_end(h, ok, hex) ? 0 : -1;
}

/* A library's record: its key, size and SHA-256. */
typedef struct jit_sum {
    char key[KILN_JIT_KEY_HEX + 1];
    uint64_t size;
    char sha[KILN_JIT_KEY_HEX + 1];
} jit_sum;

static bool jit_is_hex(const char *s)
{
    return strlen(s) == KILN_JIT_KEY_HEX && strspn(s, "0123456789abcdef") == KILN_JIT_KEY_HEX;
}

/* "kiln-jit-sum 1\nkey K\nsize N\nsha256 H\n" into buf; 0 or -1 (cap). */
static int jit_sum_format(char *buf, size_t cap, const jit_sum *r)
{
    return kiln_snprintf(buf, cap, JIT_SUM_MAGIC "\nkey %s\nsize %" PRIu64 "\nsha256 %s\n", r->key,
                         r->size, r->sha);
}

/* Parse a record; true when it is one that jit_sum_format could write. */
static bool jit_sum_parse(const char *text, jit_sum *r)
{
    unsigned long long size;
    int end = -1;
    if (sscanf(text, JIT_SUM_MAGIC "\nkey %64[0-9a-f]\nsize %llu\nsha256 %64[0-9a-f]\n%n", r->key,
               &size, r->sha, &end) != 3 ||
        end < 0 || text[end] != '\0' || !jit_is_hex(r->key) || !jit_is_hex(r->sha))
        return false;
    r->size = size;
    char again[JIT_RECORD_MAX];
    return jit_sum_format(again, sizeof again, r) == 0 && strcmp(again, text) == 0;
}

/* Why an entry failed verification, into why; returns KILN_OK (the load
** goes on: the caller rebuilds). */
static enum kiln_status jit_unverified(kiln_err *why, const char *fmt, ...) KILN_PRINTF(2, 3);
static enum kiln_status jit_unverified(kiln_err *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln_err_setv(why, KILN_OK, fmt, ap);
    va_end(ap);
    return KILN_OK;
}

/* Check the library p->so against its record p->sum: the record exists,
** names this key, and gives the library's size and SHA-256. KILN_OK and
** an empty why: verified. KILN_OK and why set: not verified (the caller
** rebuilds). Another status: it could not be checked (libcrypto). */
static enum kiln_status jit_verify_files(const char *key, const char *sum, const char *so, kiln_err *err,
                                        kiln_err *why)
{
    /* 1. the record */
    char text[JIT_RECORD_MAX + 1];
    const char *bad;
    jit_sum rec;
    kiln_err_clear(why);
    int e = jit_read_record(sum, text, &bad);
    if (e == ENOENT)
        return jit_unverified(why, "it has no checksum record (an older kiln's entry, or the "
                                   "record was lost)");
    if (e)
        return jit_unverified(why, "its checksum record: %s", bad ? bad : strerror(e));
    if (!jit_sum_parse(text, &rec))
        return jit_unverified(why, "its checksum record is malformed");
    if (strcmp(rec.key, key) != 0)
        return jit_unverified(why, "its checksum record is for key %.12s..., copied from another "
                                   "entry?",
                              rec.key);

    /* 2. the library: a regular file of ours, of the recorded size and hash */
    struct stat st;
    int fd = jit_open_entry(AT_FDCWD, so, &st);
    if (fd < 0) {
        e = errno;
        return jit_unverified(why, "it cannot be opened: %s", strerror(e));
    }
    if ((bad = jit_untrusted_file(&st)) || (uint64_t)st.st_size != rec.size) {
        close(fd);
        if (bad)
            return jit_unverified(why, "%s", bad);
        return jit_unverified(why, "it has %jd bytes where its record says %" PRIu64 " (%s)",
                              (intmax_t)st.st_size, rec.size,
                              (uint64_t)st.st_size < rec.size ? "truncated?"
                                                              : "another library copied over it?");
    }
    char sha[KILN_JIT_KEY_HEX + 1];
    uint64_t size = 0;
    e = jit_hash_fd(fd, sha, &size);
    close(fd);
    if (e < 0)
        return kiln_err_set(err, KILN_ERR_NOMEM, "jit: SHA-256 of the library failed (libcrypto)");
    if (e > 0)
        return jit_unverified(why, "it cannot be read: %s", strerror(e));
    if (size != rec.size || strcmp(sha, rec.sha) != 0)
        return jit_unverified(why, "its SHA-256 differs from its record (damaged, or another "
                                   "library was copied over it)");
    return KILN_OK;
}

static enum kiln_status jit_verify(kiln_jit *j, const jit_paths *p, kiln_err *why)
{
    return jit_verify_files(j->key, p->sum, p->so, &j->err, why);
}

/* Write p->sum for the library open on fd (its temp file, not yet renamed). */
static enum kiln_status jit_sum_store(kiln_jit *j, const jit_paths *p, int fd)
{
    jit_sum rec;
    char text[JIT_RECORD_MAX];
    memcpy(rec.key, j->key, sizeof rec.key);
    int e = jit_hash_fd(fd, rec.sha, &rec.size);
    if (e < 0)
        return jit_hash_failed(j, "library");
    if (e > 0)
        return kiln_err_set(&j->err, KILN_ERR_IO, "jit cache: cannot read back %s: %s",
                            kiln_path_show(p->so).s, strerror(e));
    if (jit_sum_format(text, sizeof text, &rec) != 0)
        return jit_nomem(j, "checksum record");
    return jit_write_atomic(j, p->sum, NULL, text, strlen(text));
}

/* ---- temp files of dead processes ----------------------------------------- */

/* Files a sweep removed. */
typedef struct jit_sweep {
    int n;
    int64_t bytes;
} jit_sweep;

/* Is name a temp file of the cache, "<stem>.<ext>.XXXXXX" (mkstemp's six
** letters and digits)? Returns the stem's length, 0 when it is not. */
static size_t jit_temp_stem(const char *name)
{
    static const char *const exts[] = {"so", "log", "c", "sum", "idx", "txt"};
    size_t n = strlen(name);
    if (n < 10 || name[n - 7] != '.')
        return 0;
    for (size_t i = n - 6; i < n; i++)
        if (!isalnum((unsigned char)name[i]))
            return 0;
    size_t dot = n - 7;
    for (size_t i = 0; i < KILN_ARRAY_LEN(exts); i++) {
        size_t k = strlen(exts[i]);
        if (dot > k + 1 && name[dot - k - 1] == '.' && memcmp(name + dot - k, exts[i], k) == 0)
            return dot - k - 1;
    }
    return 0;
}

static void jit_remove(int dirfd, const char *name, jit_sweep *sw)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && unlinkat(dirfd, name, 0) == 0) {
        sw->n++;
        sw->bytes += st.st_size;
    }
}

static bool jit_stale(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           st.st_mtime + JIT_STALE_SECONDS < time(NULL);
}

/* Remove the temp files of one key: the caller holds the key's lock, under
** which each of them is made, so whoever made them is dead. */
static void jit_sweep_key(const char *dir, const char *stem, jit_sweep *sw)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t k = strlen(stem);
    for (struct dirent *e; (e = readdir(d));)
        if (jit_temp_stem(e->d_name) == k && memcmp(e->d_name, stem, k) == 0)
            jit_remove(dirfd(d), e->d_name, sw);
    closedir(d);
}

/* Is name the source of a speculative compile, "pending-XXXXXX.c"? */
static bool jit_pending_source(const char *name)
{
    size_t k = strlen(JIT_PENDING);
    return strlen(name) == k + 8 && strncmp(name, JIT_PENDING, k) == 0 &&
           strcmp(name + k + 6, ".c") == 0;
}

/* Remove dead speculative compiles from the cache root: a pending source
** whose lock is free (its process holds it while it lives), with the temp
** files named after it; with stale, also temp files whose source is gone. */
static void jit_sweep_pending(const char *cache, bool stale, jit_sweep *sw)
{
    DIR *d = opendir(cache);
    if (!d)
        return;
    size_t k = strlen(JIT_PENDING);
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, JIT_PENDING, k) != 0)
            continue;
        if (stale && jit_temp_stem(e->d_name) == k + 6) {
            char src[32];
            struct stat st;
            if (kiln_snprintf(src, sizeof src, "%.*s.c", (int)(k + 6), e->d_name) == 0 &&
                fstatat(dirfd(d), src, &st, AT_SYMLINK_NOFOLLOW) != 0 &&
                jit_stale(dirfd(d), e->d_name))
                jit_remove(dirfd(d), e->d_name, sw);
            continue;
        }
        if (!jit_pending_source(e->d_name))
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            DIR *f = opendir(cache);
            for (struct dirent *t; f && (t = readdir(f));)
                if (jit_temp_stem(t->d_name) == k + 6 && memcmp(t->d_name, e->d_name, k + 6) == 0)
                    jit_remove(dirfd(f), t->d_name, sw);
            if (f)
                closedir(f);
            jit_remove(dirfd(d), e->d_name, sw);
        }
        close(fd); /* releases the lock */
    }
    closedir(d);
}

/* Remove the temp files in one folder (a shard, compilers/) whose maker is
** dead: those whose stem's lock is free, and those with no lock to ask once
** stale. */
static void jit_sweep_dir(const char *dir, jit_sweep *sw)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        size_t k = jit_temp_stem(e->d_name);
        char lock[NAME_MAX + 1];
        if (k == 0 || kiln_snprintf(lock, sizeof lock, "%.*s.lock", (int)k, e->d_name) != 0)
            continue;
        int fd = openat(dirfd(d), lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            if (errno == ENOENT && jit_stale(dirfd(d), e->d_name))
                jit_remove(dirfd(d), e->d_name, sw);
            continue;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            jit_remove(dirfd(d), e->d_name, sw);
        close(fd);
    }
    closedir(d);
}

/* ---- the compiler --------------------------------------------------------- */

static bool jit_is_exec(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Find name as execvp would: a name with '/' is taken as is, else each PATH
** entry in order (empty entries, meaning the working folder, are skipped).
** *out: malloc'd path, NULL when nothing executable was found. */
static enum kiln_status jit_which(kiln_jit *j, const char *name, char **out)
{
    *out = NULL;
    if (strchr(name, '/')) {
        if (jit_is_exec(name) && !(*out = kiln_strdup(name)))
            return jit_nomem(j, "compiler path");
        return KILN_OK;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = JIT_DEFAULT_PATH;
    for (const char *p = path; *p;) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 0 && n <= INT_MAX) {
            char *cand = jit_strf("%.*s/%s", (int)n, p, name);
            if (!cand)
                return jit_nomem(j, "compiler path");
            if (jit_is_exec(cand)) {
                *out = cand;
                return KILN_OK;
            }
            free(cand);
        }
        if (!end)
            break;
        p = end + 1;
    }
    return KILN_OK;
}

/* Pick the compiler: o->cc, else $KILN_CC, else clang, else gcc. */
static enum kiln_status jit_find_cc(kiln_jit *j, const char *want, jit_cc *cc)
{
    enum kiln_status st;
    const char *env = getenv("KILN_CC");
    if (want) {
        if (!*want)
            return kiln_err_set(&j->err, KILN_ERR_ARG, "jit: options.cc is empty");
        if ((st = jit_which(j, want, &cc->path)))
            return st;
        if (!cc->path)
            return kiln_err_set(&j->err, KILN_ERR_COMPILE,
                                "no C compiler found: '%s' (options.cc) is not an executable "
                                "file%s",
                                want, strchr(want, '/') ? "" : " in PATH");
    } else if (env && *env) {
        if ((st = jit_which(j, env, &cc->path)))
            return st;
        if (!cc->path)
            return kiln_err_set(&j->err, KILN_ERR_COMPILE,
                                "no C compiler found: $KILN_CC='%s' is not an executable file%s",
                                env, strchr(env, '/') ? "" : " in PATH");
    } else {
        if ((st = jit_which(j, "clang", &cc->path)))
            return st;
        if (!cc->path && (st = jit_which(j, "gcc", &cc->path)))
            return st;
        if (!cc->path) {
            const char *path = getenv("PATH");
            return kiln_err_set(&j->err, KILN_ERR_COMPILE,
                                "no C compiler found: tried $KILN_CC (unset), clang, gcc in "
                                "PATH=%s",
                                path ? path : JIT_DEFAULT_PATH);
        }
    }
    cc->real = realpath(cc->path, NULL);
    if (!cc->real) {
        int e = errno;
        if (e == ENOMEM)
            return jit_nomem(j, "compiler path");
        return kiln_err_set(&j->err, KILN_ERR_COMPILE, "C compiler %s: realpath: %s", cc->path,
                            strerror(e));
    }
    if (stat(cc->real, &cc->st) != 0) {
        int e = errno;
        return kiln_err_set(&j->err, KILN_ERR_COMPILE, "C compiler %s: stat: %s", cc->real,
                            strerror(e));
    }
    return KILN_OK;
}

/* Start argv[0] with argv, without a shell: stdin /dev/null, stdout and
** stderr to out_fd. */
static enum kiln_status jit_spawn(kiln_jit *j, char *const argv[], int out_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc)
        return jit_nomem(j, "spawn actions");
    rc = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, out_fd, STDERR_FILENO);
    if (!rc)
        rc = posix_spawn(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        return kiln_err_set(&j->err, KILN_ERR_COMPILE, "cannot run C compiler %s: %s", argv[0],
                            strerror(rc));
    return KILN_OK;
}

static enum kiln_status jit_wait(kiln_jit *j, pid_t pid, const char *what, int *wstatus)
{
    while (waitpid(pid, wstatus, 0) < 0) {
        if (errno != EINTR) {
            int e = errno;
            return kiln_err_set(&j->err, KILN_ERR_COMPILE, "waiting for %s: %s", what,
                                strerror(e));
        }
    }
    return KILN_OK;
}

/* "exited with status N" or "was killed by signal N", for messages. */
static void jit_describe_exit(int wstatus, char *buf, size_t cap)
{
    int rc;
    if (WIFEXITED(wstatus))
        rc = kiln_snprintf(buf, cap, "exited with status %d", WEXITSTATUS(wstatus));
    else if (WIFSIGNALED(wstatus))
        rc = kiln_snprintf(buf, cap, "was killed by signal %d", WTERMSIG(wstatus));
    else
        rc = kiln_snprintf(buf, cap, "ended with wait status %d", wstatus);
    if (rc != 0 && cap > 0)
        buf[0] = '\0'; /* cap is always ample; never print a partial phrase */
}

/* Run `cc --version` and keep the first line of its output. */
/* `cc --version`, in two halves so that a cold load can compile while the
** compiler says who it is: start it (output on *fd), then read and reap. */
static enum kiln_status jit_version_start(kiln_jit *j, jit_cc *cc, pid_t *pid, int *fd)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        int e = errno;
        return kiln_err_set(&j->err, KILN_ERR_IO, "jit: pipe: %s", strerror(e));
    }
    char *argv[] = {cc->path, (char *)"--version", NULL};
    enum kiln_status st = jit_spawn(j, argv, fds[1], pid);
    close(fds[1]);
    if (st) {
        close(fds[0]);
        return st;
    }
    *fd = fds[0];
    return KILN_OK;
}

static enum kiln_status jit_version_finish(kiln_jit *j, jit_cc *cc, pid_t pid, int fd)
{
    /* Read to EOF so the child never blocks on a full pipe; keep the head. */
    size_t got = 0;
    char scratch[256];
    for (;;) {
        char *dst = got < sizeof cc->version - 1 ? cc->version + got : scratch;
        size_t room = got < sizeof cc->version - 1 ? sizeof cc->version - 1 - got : sizeof scratch;
        ssize_t n = read(fd, dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (dst != scratch)
            got += (size_t)n;
    }
    close(fd);
    cc->version[got] = '\0';
    cc->version[strcspn(cc->version, "\r\n")] = '\0';
    int ws;
    enum kiln_status st;
    if ((st = jit_wait(j, pid, "C compiler --version", &ws)))
        return st;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || !cc->version[0]) {
        char how[64];
        jit_describe_exit(ws, how, sizeof how);
        return kiln_err_set(&j->err, KILN_ERR_COMPILE,
                            "C compiler %s: '%s --version' %s%s; is it a C compiler?", cc->path,
                            cc->path, how, cc->version[0] ? "" : " and printed nothing");
    }
    return KILN_OK;
}

/* The identity file of cc: $cache/compilers/<hash of path, real path and
** stat>.txt holding the first line of `cc --version`. Fills *dir and *file
** (malloc'd) and, when the file is there, cc->version. */
static enum kiln_status jit_identity_lookup(kiln_jit *j, const char *cache, jit_cc *cc, char **dir,
                                            char **file)
{
    /* 1. name the identity file after what identifies the binary */
    EVP_MD_CTX *h = jit_hash_begin();
    if (!h)
        return jit_hash_failed(j, "compiler identity");
    char stamp[128];
    int ok = kiln_snprintf(stamp, sizeof stamp, "%ju %ju %jd %jd.%09ld",
                           (uintmax_t)cc->st.st_dev, (uintmax_t)cc->st.st_ino,
                           (intmax_t)cc->st.st_size, (intmax_t)cc->st.st_mtim.tv_sec,
                           (long)cc->st.st_mtim.tv_nsec) == 0;
    ok = ok && jit_hash_str(h, "found", cc->path) && jit_hash_str(h, "real", cc->real) &&
         jit_hash_str(h, "stat", stamp);
    char id[KILN_JIT_KEY_HEX + 1];
    if (!jit_hash_end(h, ok, id))
        return jit_hash_failed(j, "compiler identity");
    *dir = jit_strf("%s/compilers", cache);
    *file = *dir ? jit_strf("%s/%s.txt", *dir, id) : NULL;
    if (!*file)
        return jit_nomem(j, "compiler identity path");
    enum kiln_status st = jit_check_dir(&j->err, *dir);
    if (st)
        return st;

    /* 2. read it; a missing or unreadable file is a miss (storing says why) */
    int fd = open(*file, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        size_t n = jit_read_fd(fd, cc->version, sizeof cc->version - 1);
        close(fd);
        cc->version[n] = '\0';
        cc->version[strcspn(cc->version, "\r\n")] = '\0';
    }
    return KILN_OK;
}

/* Store cc->version for the next process. */
static enum kiln_status jit_lock(kiln_jit *j, const char *path, int *fd);

/* Store cc->version for the next process, under <id>.lock so that a sweep
** can tell a dead writer's temp file from a live one's. */
static enum kiln_status jit_identity_store(kiln_jit *j, const char *dir, const char *file, jit_cc *cc)
{
    int fd = -1;
    size_t k = strlen(file) - strlen(".txt");
    char *lock = jit_strf("%.*s.lock", (int)k, file);
    enum kiln_status st = lock ? jit_mkdirs(j, dir) : jit_nomem(j, "identity lock path");
    if (!st)
        st = jit_lock(j, lock, &fd);
    if (!st) {
        size_t n = strlen(cc->version);
        cc->version[n] = '\n'; /* stored with its newline, dropped again when read */
        st = jit_write_atomic(j, file, NULL, cc->version, n + 1);
        cc->version[n] = '\0';
        close(fd);
    }
    free(lock);
    return st;
}

/* ---- building ------------------------------------------------------------- */

static bool jit_starts_with(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(s, prefix, k) == 0;
}

static bool jit_contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0)
            return true;
    return false;
}

/* Lines that only say where the next error is ("x.c: In function 'f':"):
** skipped while leading, so the message starts with the error itself. */
static bool jit_is_context_line(const char *s, size_t n)
{
    return n == 0 || jit_contains(s, n, ": In function ") || jit_contains(s, n, ": At top level:") ||
           jit_starts_with(s, n, "In file included from ") ||
           jit_starts_with(s, n, "                 from ");
}

/* Quote the first lines of a compiler log into out (cap bytes): at most
** JIT_DIAG_LINES whole lines, the source path the compiler was given (src)
** shown as the file name of where it now lies (named: a speculative
** compile's source is renamed to its key's once the key is known). A first
** line too long for cap ends in "..."; a line that does not fit ends the
** quote with "...". */
static void jit_quote_diagnostics(const char *log, size_t len, const char *src, const char *named,
                                  char *out, size_t cap)
{
    const char *slash = strrchr(named, '/');
    const char *src_name = slash ? slash + 1 : named;
    size_t src_len = strlen(src), used = 0;
    int lines = 0;
    bool leading = true;
    out[0] = '\0';
    for (size_t at = 0; at < len && lines < JIT_DIAG_LINES;) {
        /* 1. cut the next line, trailing blanks off */
        const char *s = log + at;
        const char *nl = memchr(s, '\n', len - at);
        size_t n = nl ? (size_t)(nl - s) : len - at;
        at += n + 1;
        while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (leading && jit_is_context_line(s, n))
            continue;
        leading = false;
        /* 2. shorten the source path that starts the line */
        const char *pre = "";
        if (n >= src_len && memcmp(s, src, src_len) == 0) {
            pre = src_name;
            s += src_len;
            n -= src_len;
        }
        /* 3. append it whole, or stop */
        size_t need = (lines ? 1 : 0) + strlen(pre) + n;
        if (used + need + 1 > cap) {
            if (lines == 0 && cap > 4) { /* the first line always shows, cut */
                int w = snprintf(out, cap, "%s%.*s", pre, (int)(n < INT_MAX ? n : INT_MAX), s);
                if (w >= 0)
                    memcpy(out + cap - 4, "...", 4);
            } else if (used + 5 <= cap) {
                memcpy(out + used, "\n...", 5);
            }
            return;
        }
        if (lines)
            out[used++] = '\n';
        memcpy(out + used, pre, strlen(pre));
        used += strlen(pre);
        memcpy(out + used, s, n);
        used += n;
        out[used] = '\0';
        lines++;
    }
}

/* Build p->so from source; the caller holds the key's lock.
** 1. write the source where the library will be, for people and diagnostics
** 2. run the compiler into a temp name in the same folder, log to a temp file
** 3. failure: keep the log as <key>.log and quote its head in the message
** 4. success: fsync, rename onto <key>.so, drop the logs */
/* A compile in flight: the compiler writes tmp_so from src, its output goes
** to tmp_log. */
typedef struct jit_job {
    pid_t pid;
    bool running;  /* not yet reaped */
    int ws;        /* its wait status, once reaped */
    char *src;     /* the source it compiles */
    char *cc_src;  /* the source's name as the compiler was given it */
    char *tmp_so, *tmp_log;
    int log_fd;
    int hold_fd;   /* speculative: the pending source, flock()ed while we live */
} jit_job;

static void jit_job_free(jit_job *job)
{
    if (job->log_fd >= 0)
        close(job->log_fd);
    if (job->hold_fd >= 0)
        close(job->hold_fd);
    if (job->tmp_log && job->tmp_log[0])
        unlink(job->tmp_log);
    if (job->tmp_so && job->tmp_so[0])
        unlink(job->tmp_so);
    free(job->src);
    free(job->cc_src);
    free(job->tmp_so);
    free(job->tmp_log);
    memset(job, 0, sizeof *job);
    job->log_fd = job->hold_fd = -1;
}

/* Start compiling src into a temp library named after base (a path
** without extension in the folder where the library will live). */
static enum kiln_status jit_compile_start(kiln_jit *j, const jit_cc *cc, const char *src, const char *base,
                                          const kiln_jit_options *o, jit_job *job)
{
    memset(job, 0, sizeof *job);
    job->log_fd = job->hold_fd = -1;
    int n_link = o ? o->n_link_args : 0;
    size_t n_flags = KILN_ARRAY_LEN(JIT_FLAGS);
    job->src = kiln_strdup(src);
    job->cc_src = kiln_strdup(src);
    job->tmp_so = jit_strf("%s.so.XXXXXX", base);
    job->tmp_log = jit_strf("%s.log.XXXXXX", base);
    char **argv = calloc(n_flags + 6 + (size_t)n_link, sizeof *argv);
    enum kiln_status st = KILN_OK;
    if (!job->src || !job->cc_src || !job->tmp_so || !job->tmp_log || !argv) {
        st = jit_nomem(j, "compiler command");
        goto out;
    }
    /* temp names; the compiler replaces the empty .so */
    int so_fd = mkostemp(job->tmp_so, O_CLOEXEC);
    if (so_fd < 0 || (job->log_fd = mkostemp(job->tmp_log, O_CLOEXEC)) < 0) {
        int e = errno;
        if (so_fd < 0)
            job->tmp_so[0] = '\0';
        job->tmp_log[0] = '\0';
        st = kiln_err_set(&j->err, KILN_ERR_IO, "jit cache: cannot create a temp file for %s: %s",
                          kiln_path_show(base).s, jit_strerror(e));
        if (so_fd >= 0)
            close(so_fd);
        goto out;
    }
    close(so_fd);
    size_t k = 0;
    argv[k++] = cc->path;
    for (size_t i = 0; i < n_flags; i++)
        argv[k++] = (char *)JIT_FLAGS[i];
    argv[k++] = (char *)jit_flag_no_slp(cc);
    argv[k++] = (char *)"-o";
    argv[k++] = job->tmp_so;
    argv[k++] = job->src;
    for (int i = 0; i < n_link; i++)
        argv[k++] = (char *)o->link_args[i];
    argv[k] = NULL;
    if ((st = jit_spawn(j, argv, job->log_fd, &job->pid)) == KILN_OK) {
        job->running = true;
        j->compiler_ran = true;
    }
out:
    free(argv);
    return st;
}

/* Wait for the compile; on success the library reaches p->so only whole
** and on disk; on failure the message quotes the log's head and the log
** is kept as p->log. Frees the job. */
static enum kiln_status jit_compile_wait(kiln_jit *j, jit_job *job)
{
    if (!job->running)
        return KILN_OK;
    job->running = false;
    return jit_wait(j, job->pid, "C compiler", &job->ws);
}

/* Free bytes for this user on the file system of dir; UINT64_MAX when
** statvfs fails. */
static uint64_t jit_free_bytes(const char *dir)
{
    struct statvfs v;
    if (statvfs(dir, &v) != 0)
        return UINT64_MAX;
    return (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
}

/* The compiler failed: the message quotes the log's head (the log is kept
** as p->log), and says first when the disk is full (#9): the compiler says
** so, or it said nothing on a file system with almost no room left (clang
** that cannot write its output may die of SIGABRT without a word, its log
** unwritable too). */
static enum kiln_status jit_compile_failed(kiln_jit *j, const jit_cc *cc, jit_job *job,
                                           const jit_paths *p)
{
    char how[64], logbuf[JIT_DIAG_READ], quote[KILN_ERRMSG_MAX], head[KILN_ERRMSG_MAX];
    jit_describe_exit(job->ws, how, sizeof how);
    size_t n = jit_read_fd(job->log_fd, logbuf, sizeof logbuf);
    bool said_full = jit_contains(logbuf, n, "No space left on device") ||
                     jit_contains(logbuf, n, "Disk quota exceeded");
    uint64_t avail = jit_free_bytes(p->dir);
    size_t blank = 0;
    while (blank < n && strchr(" \t\r\n", logbuf[blank]))
        blank++;
    bool full = said_full || (blank == n && avail < JIT_FULL_BYTES);
    if (!full)
        strcpy(head, "C compiler failed: ");
    else if (kiln_snprintf(head, sizeof head,
                           "C compiler failed: the disk is full (%" PRIu64
                           " bytes free where the cache is; the compiler also writes to $TMPDIR "
                           "or /tmp): ",
                           avail == UINT64_MAX ? 0 : avail) != 0)
        return jit_nomem(j, "compiler message");
    /* the log kept beside the source, one path names both */
    bool kept = rename(job->tmp_log, p->log) == 0;
    char *tail = kept ? jit_strf("(%s %s; source and full log: %s)", kiln_path_show(cc->path).s,
                                 how, kiln_path_show(p->log).s)
                      : jit_strf("(%s %s compiling %s; full log: %s)", kiln_path_show(cc->path).s,
                                 how, kiln_path_show(p->src).s,
                                 kiln_path_show(job->tmp_log).s);
    if (!tail)
        return jit_nomem(j, "compiler message");
    size_t fixed = strlen(head) + 1 + strlen(tail) + 1; /* newline, NUL */
    size_t room = fixed < sizeof quote ? sizeof quote - fixed : 0;
    if (room < sizeof "...")
        quote[0] = '\0';
    else
        jit_quote_diagnostics(logbuf, n, job->cc_src, p->src, quote, room);
    enum kiln_status st = kiln_err_set(&j->err, KILN_ERR_COMPILE, "%s%s\n%s", head,
                                       quote[0] ? quote : "(no diagnostics)", tail);
    free(tail);
    job->tmp_log[0] = '\0'; /* the message names it: <key>.log, or the temp name */
    return st;
}

static enum kiln_status jit_compile_finish(kiln_jit *j, const jit_cc *cc, jit_job *job, const jit_paths *p)
{
    enum kiln_status st = jit_compile_wait(j, job);
    int ws = job->ws;
    if (st)
        goto out;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        st = jit_compile_failed(j, cc, job, p);
        goto out;
    }
    /* private (the linker picked its mode: ld.bfd 0711, another may follow a
    ** umask of 002 into group-writable, which verification refuses), on
    ** disk, recorded, then under its name: a reader that sees the new .so
    ** sees its record */
    int fd = open(job->tmp_so, O_RDONLY | O_CLOEXEC);
    int e = fd < 0 ? errno : 0;
    if (fd >= 0 && (fchmod(fd, JIT_DIR_MODE) != 0 || fsync(fd) != 0))
        e = errno;
    if (!e && (st = jit_sum_store(j, p, fd))) {
        close(fd);
        goto out;
    }
    if (fd >= 0)
        close(fd);
    if (!e && rename(job->tmp_so, p->so) != 0)
        e = errno;
    if (e) {
        st = kiln_err_set(&j->err, KILN_ERR_IO, "jit cache: cannot store %s: %s",
                          kiln_path_show(p->so).s, jit_strerror(e));
        goto out;
    }
    job->tmp_so[0] = '\0';
    unlink(p->log); /* a log now describes a failure that no longer holds */
out:
    jit_job_free(job);
    return st;
}

/* A job whose result is not needed (the library appeared meanwhile). */
static void jit_compile_discard(kiln_jit *j, jit_job *job)
{
    jit_compile_wait(j, job);
    if (job->src)
        unlink(job->src);
    jit_job_free(job);
}

/* Write the source to p->src and compile it into p->so. */
static enum kiln_status jit_build(kiln_jit *j, const jit_cc *cc, const jit_paths *p,
                                  const char *source, size_t len, const kiln_jit_options *o)
{
    jit_job job = {.log_fd = -1, .hold_fd = -1}; /* freed below even when the write fails first */
    enum kiln_status st = jit_write_atomic(j, p->src, NULL, source, len);
    if (!st)
        st = jit_compile_start(j, cc, p->src, p->base, o, &job);
    if (st) {
        jit_job_free(&job);
        return st;
    }
    return jit_compile_finish(j, cc, &job, p);
}

/* ---- loading -------------------------------------------------------------- */

/* dlopen a library that passed verification. A failure is an error, never
** a reason to rebuild; on a noexec file system the message says so. */
static enum kiln_status jit_dlopen(kiln_jit *j, const char *path, const char *dir)
{
    dlerror();
    j->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (j->dl)
        return KILN_OK;
    const char *e = dlerror();
    char why[KILN_ERRMSG_MAX];
    size_t k = strlen(path);
    if (e && strncmp(e, path, k) == 0 && e[k] == ':') /* glibc starts with the path */
        e += k + 1 + (e[k + 1] == ' ');
    if (kiln_snprintf(why, sizeof why, "%s", e ? e : "dlopen failed") != 0)
        memcpy(why + sizeof why - 4, "...", 4);
    if (jit_noexec(dir))
        return jit_noexec_failed(j, dir);
    return kiln_err_set(&j->err, KILN_ERR_COMPILE, "cannot load %s: %s", kiln_path_show(path).s,
                        why);
}

/* Take the exclusive lock of path into *fd (blocks while another process
** holds it). */
static enum kiln_status jit_lock(kiln_jit *j, const char *path, int *fd)
{
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, JIT_LOCK_MODE);
    if (*fd < 0) {
        int e = errno;
        return kiln_err_set(&j->err, KILN_ERR_IO, "jit cache: cannot open lock %s: %s",
                            kiln_path_show(path).s, jit_strerror(e));
    }
    while (flock(*fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(*fd);
            *fd = -1;
            return kiln_err_set(&j->err, KILN_ERR_IO, "jit cache: cannot lock %s: %s",
                                kiln_path_show(path).s, strerror(e));
        }
    }
    return KILN_OK;
}

static enum kiln_status jit_index_store(kiln_jit *j, const char *cache, const jit_cc *cc,
                                        const jit_paths *p, const char *source, size_t len,
                                        const kiln_jit_options *o);

/* The cold path, under the key's lock:
** 1. make and check the key's folder; refuse a noexec file system before
**    compiling anything
** 2. take the lock (blocks while another process compiles this key); remove
**    the temp files that killed compiles left
** 3. look again: another process may have built it meanwhile. A library
**    that verifies is loaded; one that does not is removed, the note says why
** 4. build (or finish the speculative build), index it, load it */
static enum kiln_status jit_load_locked(kiln_jit *j, const char *cache, const jit_cc *cc,
                                        const jit_paths *p, const char *source, size_t len,
                                        const kiln_jit_options *o, jit_job *spec)
{
    /* 1. */
    int fd = -1;
    enum kiln_status st = jit_mkdirs(j, p->dir);
    if (!st)
        st = jit_check_dir(&j->err, p->dir);
    if (!st && jit_noexec(p->dir))
        st = jit_noexec_failed(j, p->dir);
    /* 2. */
    if (!st)
        st = jit_lock(j, p->lock, &fd);
    if (st)
        goto out;
    jit_sweep sw = {0};
    char *compilers = jit_strf("%s/compilers", cache);
    jit_sweep_key(p->dir, j->key + JIT_SHARD_HEX, &sw);
    jit_sweep_pending(cache, false, &sw);
    if (compilers) /* identity files a killed process was writing */
        jit_sweep_dir(compilers, &sw);
    free(compilers);

    /* 3. */
    struct stat sb;
    if (lstat(p->so, &sb) == 0) {
        kiln_err why;
        if ((st = jit_verify(j, p, &why)))
            goto out;
        if (!why.msg[0]) {
            st = jit_dlopen(j, p->so, p->dir);
            goto out;
        }
        jit_note(j, "rebuilt %s: %s", kiln_path_show(p->so).s, why.msg);
        if (unlink(p->so) != 0 && errno != ENOENT) {
            int e = errno;
            st = kiln_err_set(&j->err, KILN_ERR_IO,
                              "jit cache: cannot remove %s, which failed verification (%s): %s",
                              kiln_path_show(p->so).s, why.msg, strerror(e));
            goto out;
        }
    }

    /* 4. */
    if (spec) { /* the speculative compile: once done, its source takes the key's name */
        if (jit_compile_wait(j, spec) == KILN_OK && rename(spec->src, p->src) == 0) {
            free(spec->src);
            spec->src = kiln_strdup(p->src);
        }
        st = spec->src ? jit_compile_finish(j, cc, spec, p) : jit_nomem(j, "source path");
    } else {
        st = jit_build(j, cc, p, source, len, o);
    }
    if (!st && jit_index_store(j, cache, cc, p, source, len, o) != KILN_OK)
        kiln_err_clear(&j->err); /* the index only serves loads without a compiler */
    if (!st && (st = jit_dlopen(j, p->so, p->dir))) {
        unlink(p->so); /* keep only loadable libraries under their key */
        unlink(p->sum);
    }
out:
    if (spec)
        jit_compile_discard(j, spec); /* a no-op once finished */
    if (fd >= 0)
        close(fd); /* releases the lock */
    return st;
}

/* The fields both keys end with: flags, link arguments, source. */
static int jit_hash_rest(EVP_MD_CTX *h, const char *no_slp, const char *source, size_t len,
                         const kiln_jit_options *o)
{
    int ok = 1;
    for (size_t i = 0; ok && i < KILN_ARRAY_LEN(JIT_FLAGS); i++)
        ok = jit_hash_str(h, "flag", JIT_FLAGS[i]);
    ok = ok && (!no_slp || jit_hash_str(h, "flag", no_slp));
    for (int i = 0; ok && o && i < o->n_link_args; i++)
        ok = jit_hash_str(h, "link", o->link_args[i]);
    return ok && jit_hash_field(h, "source", source, len);
}

/* key = SHA-256(ABI, compiler, flags, link args, source), into j->key. */
static enum kiln_status jit_compute_key(kiln_jit *j, const jit_cc *cc, const char *source,
                                        size_t len, const kiln_jit_options *o)
{
    EVP_MD_CTX *h = jit_hash_begin();
    if (!h)
        return jit_hash_failed(j, "source");
    int ok = jit_hash_str(h, "abi", KILN_JIT_ABI) && jit_hash_str(h, "cc", cc->path) &&
             jit_hash_str(h, "cc-real", cc->real) && jit_hash_str(h, "cc-version", cc->version) &&
             jit_hash_rest(h, jit_flag_no_slp(cc), source, len, o);
    if (!jit_hash_end(h, ok, j->key)) {
        j->key[0] = '\0';
        return jit_hash_failed(j, "source");
    }
    return KILN_OK;
}

/* The compiler as requested, whether or not it exists: options.cc, else
** $KILN_CC, else "" (the default: clang, else gcc). */
static const char *jit_cc_request(const kiln_jit_options *o)
{
    const char *env = getenv("KILN_CC");
    return o && o->cc ? o->cc : env && *env ? env : "";
}

/* Path of the index record for this source, flags and requested compiler:
** <cache>/<s0s1>/<s2..>.idx, with s = SHA-256("source-key", ABI, request,
** flags, link args, source). *dir (its folder) and *path are malloc'd. */
static enum kiln_status jit_index_path(kiln_jit *j, const char *cache, const char *source,
                                       size_t len, const kiln_jit_options *o, char **dir,
                                       char **path)
{
    char skey[KILN_JIT_KEY_HEX + 1];
    EVP_MD_CTX *h = jit_hash_begin();
    if (!h)
        return jit_hash_failed(j, "source");
    int ok = jit_hash_str(h, "kind", "source-key") && jit_hash_str(h, "abi", KILN_JIT_ABI) &&
             jit_hash_str(h, "cc-request", jit_cc_request(o)) &&
             jit_hash_rest(h, NULL, source, len, o);
    if (!jit_hash_end(h, ok, skey))
        return jit_hash_failed(j, "source");
    *dir = jit_strf("%s/%.*s", cache, JIT_SHARD_HEX, skey);
    *path = *dir ? jit_strf("%s/%s.idx", *dir, skey + JIT_SHARD_HEX) : NULL;
    return *path ? KILN_OK : jit_nomem(j, "index path");
}

/* Record that this source was last built as j->key, by cc:
** "kiln-jit-index 1\nkey K\ncc PATH\ncc-version V\n". The caller holds the
** key's lock, and the temp file is named after the key (<key>.idx.XXXXXX,
** renamed across folders) so that its sweeps find it. */
static enum kiln_status jit_index_store(kiln_jit *j, const char *cache, const jit_cc *cc,
                                        const jit_paths *p, const char *source, size_t len,
                                        const kiln_jit_options *o)
{
    char *dir = NULL, *path = NULL, *text = NULL;
    enum kiln_status st = jit_index_path(j, cache, source, len, o, &dir, &path);
    if (!st && !strchr(cc->path, '\n'))
        text = jit_strf(JIT_INDEX_MAGIC "\nkey %s\ncc %s\ncc-version %s\n", j->key, cc->path,
                        cc->version);
    if (!st && !text)
        st = jit_nomem(j, "index record");
    char *tmp_base = st ? NULL : jit_strf("%s.idx", p->base);
    if (!st && !tmp_base)
        st = jit_nomem(j, "index temp path");
    if (!st && !(st = jit_mkdirs(j, dir)) && !(st = jit_check_dir(&j->err, dir)))
        st = jit_write_atomic(j, path, tmp_base, text, strlen(text));
    free(tmp_base);
    free(dir);
    free(path);
    free(text);
    return st;
}

static enum kiln_status jit_check_options(kiln_jit *j, const char *source, size_t len,
                                          const kiln_jit_options *o)
{
    if (!source && len > 0)
        return kiln_err_set(&j->err, KILN_ERR_ARG, "jit: source is NULL, len %zu", len);
    if (!o)
        return KILN_OK;
    if (o->n_link_args < 0 || (o->n_link_args > 0 && !o->link_args))
        return kiln_err_set(&j->err, KILN_ERR_ARG, "jit: n_link_args %d with link_args %s",
                            o->n_link_args, o->link_args ? "set" : "NULL");
    for (int i = 0; i < o->n_link_args; i++)
        if (!o->link_args[i])
            return kiln_err_set(&j->err, KILN_ERR_ARG, "jit: link_args[%d] is NULL", i);
    if (o->cache_dir && !*o->cache_dir)
        return kiln_err_set(&j->err, KILN_ERR_ARG, "jit: options.cache_dir is empty");
    return KILN_OK;
}

static enum kiln_status jit_cache_dir(kiln_jit *j, const kiln_jit_options *o, char **out)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (o && o->cache_dir)
        *out = kiln_strdup(o->cache_dir);
    else if (xdg && xdg[0] == '/') /* the XDG spec: ignore relative values */
        *out = jit_strf("%s/kiln", xdg);
    else if (home && *home)
        *out = jit_strf("%s/.cache/kiln", home);
    else
        return kiln_err_set(&j->err, KILN_ERR_IO,
                            "jit cache: no folder: $XDG_CACHE_HOME and $HOME are unset and "
                            "options.cache_dir is NULL");
    return *out ? KILN_OK : jit_nomem(j, "cache path");
}

static enum kiln_status jit_make_paths(kiln_jit *j, const char *cache, jit_paths *p)
{
    p->dir = jit_strf("%s/%.*s", cache, JIT_SHARD_HEX, j->key);
    p->base = p->dir ? jit_strf("%s/%s", p->dir, j->key + JIT_SHARD_HEX) : NULL;
    if (p->base) {
        p->so = jit_strf("%s.so", p->base);
        p->sum = jit_strf("%s.sum", p->base);
        p->src = jit_strf("%s.c", p->base);
        p->log = jit_strf("%s.log", p->base);
        p->lock = jit_strf("%s.lock", p->base);
    }
    if (!p->so || !p->sum || !p->src || !p->log || !p->lock)
        return jit_nomem(j, "cache paths");
    j->so_path = kiln_strdup(p->so);
    return j->so_path ? KILN_OK : jit_nomem(j, "cache paths");
}

/* Cold for this compiler (its identity is not cached): ask its version and,
** at the same time, compile the source into the cache folder under a temp
** name; the key, known once the version is, names the result. On a machine
** with two cores this hides the version probe (about 30 ms) behind the
** compile. *speculating says whether a job is in flight (to be finished or
** discarded by the caller). */
static enum kiln_status jit_speculate(kiln_jit *j, const char *cache, jit_cc *cc, const char *id_dir,
                                      const char *id_file, const char *source, size_t len,
                                      const kiln_jit_options *o, jit_job *job, bool *speculating)
{
    pid_t vpid = 0;
    int vfd = -1;
    enum kiln_status st = jit_version_start(j, cc, &vpid, &vfd);
    if (st)
        return st;
    char *src = jit_strf("%s/pending-XXXXXX.c", cache);
    int fd = -1;
    bool started = false;
    if (!src) {
        st = jit_nomem(j, "pending source path");
    } else if ((st = jit_mkdirs(j, cache)) == KILN_OK) {
        /* locked while this process lives, so a sweep can tell it from a
        ** dead one's; a sweep that removed it first leaves no link */
        struct stat sb;
        if ((fd = mkostemps(src, 2, O_CLOEXEC)) < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 ||
            fstat(fd, &sb) != 0 || sb.st_nlink == 0 || jit_write_all(fd, source, len) != 0) {
            int e = errno;
            st = kiln_err_set(&j->err, KILN_ERR_IO, "jit cache: cannot write %s: %s",
                              kiln_path_show(src).s, jit_strerror(e));
        } else {
            char *base = jit_strf("%.*s", (int)(strlen(src) - 2), src);
            st = base ? jit_compile_start(j, cc, src, base, o, job) : jit_nomem(j, "pending path");
            started = st == KILN_OK;
            free(base);
        }
        if (started) {
            job->hold_fd = fd;
            fd = -1;
        } else if (fd >= 0) {
            unlink(src);
            close(fd);
        }
    }
    /* the version, whatever happened to the compile */
    enum kiln_status vst = jit_version_finish(j, cc, vpid, vfd);
    if (!vst)
        vst = jit_identity_store(j, id_dir, id_file, cc);
    if (!started)
        jit_job_free(job);
    free(src);
    if (vst) {
        if (started)
            jit_compile_discard(j, job);
        return vst;
    }
    /* a failed speculation is not an error: the normal path compiles */
    if (st && !started)
        kiln_err_clear(&j->err);
    *speculating = started;
    return KILN_OK;
}

static void jit_paths_free(jit_paths *p)
{
    free(p->dir);
    free(p->base);
    free(p->so);
    free(p->sum);
    free(p->src);
    free(p->log);
    free(p->lock);
    memset(p, 0, sizeof *p);
}

/* No compiler was found (j->err says so): load the entry that the index
** names for this source, flags and requested compiler, if it verifies
** (#9). Success leaves a note naming the compiler that built it; failure
** keeps the message and adds why the cache could not stand in. */
static enum kiln_status jit_load_indexed(kiln_jit *j, const char *cache, const char *source,
                                         size_t len, const kiln_jit_options *o)
{
    /* 1. the index record */
    kiln_err nocc = j->err, why;
    char *dir = NULL, *path = NULL, text[JIT_RECORD_MAX + 1], key[KILN_JIT_KEY_HEX + 1];
    char built_by[JIT_VERSION_MAX] = "";
    const char *bad = NULL;
    jit_paths p = {0};
    kiln_err_clear(&why);
    enum kiln_status st = jit_index_path(j, cache, source, len, o, &dir, &path);
    if (!st)
        st = jit_check_dir(&j->err, dir);
    if (st)
        goto out;
    int e = jit_read_record(path, text, &bad);
    int end = -1;
    if (e)
        kiln_err_set(&why, KILN_OK, "%s", e == ENOENT ? "nothing was built for this source"
                                          : bad      ? bad
                                                     : strerror(e));
    else if (sscanf(text, JIT_INDEX_MAGIC "\nkey %64[0-9a-f]\ncc %*[^\n]\ncc-version %1023[^\n]\n%n",
                    key, built_by, &end) != 2 ||
             end < 0 || text[end] != '\0' || !jit_is_hex(key))
        kiln_err_set(&why, KILN_OK, "its index record %s is malformed", kiln_path_show(path).s);

    /* 2. the entry it names, verified and loaded */
    if (!why.msg[0]) {
        memcpy(j->key, key, sizeof key);
        if ((st = jit_make_paths(j, cache, &p)) || (st = jit_check_dir(&j->err, p.dir)) ||
            (st = jit_verify(j, &p, &why)))
            goto out;
        if (why.msg[0] && lstat(p.so, &(struct stat){0}) != 0)
            kiln_err_set(&why, KILN_OK, "%s", "its library was removed");
    }
    if (why.msg[0]) {
        st = kiln_err_set(&j->err, nocc.status, "%s; and the cache cannot stand in: %s",
                          nocc.msg, why.msg);
        goto out;
    }
    if ((st = jit_dlopen(j, p.so, p.dir)) == KILN_OK)
        jit_note(j, "no C compiler found; loaded %s, built by %s", kiln_path_show(p.so).s,
                 built_by[0] ? built_by : "an unknown compiler");
out:
    if (st) { /* the key and path stay unknown, as for any load without a compiler */
        j->key[0] = '\0';
        free(j->so_path);
        j->so_path = NULL;
    }
    jit_paths_free(&p);
    free(dir);
    free(path);
    return st;
}

enum kiln_status kiln_jit_load(const char *source, size_t len, const kiln_jit_options *o,
                               kiln_jit **out)
{
    /* Plan:
    ** 1. check arguments; pick the cache folder, refused if others can write it
    ** 2. find the compiler; without one, the index may name a verified entry
    ** 3. the compiler's identity (cached per binary; when it is not, ask for it
    **    while compiling speculatively), then the key
    ** 4. warm path: the .so is there, verifies and loads
    ** 5. cold path: lock, look again, build, load */
    KILN_API_CHECK(out);
    if (!out)
        return KILN_ERR_ARG;
    kiln_jit *j = calloc(1, sizeof *j);
    *out = j;
    if (!j)
        return KILN_ERR_NOMEM;
    kiln_err_clear(&j->err);
    kiln_err_clear(&j->note);
    if (!source)
        source = len ? NULL : "";

    /* 1. */
    char *cache = NULL;
    jit_cc cc = {0};
    jit_paths p = {0};
    enum kiln_status st = jit_check_options(j, source, len, o);
    if (!st)
        st = jit_cache_dir(j, o, &cache);
    if (!st)
        st = jit_check_dir(&j->err, cache);
    /* 2. */
    bool found_cc = false;
    if (!st) {
        st = jit_find_cc(j, o ? o->cc : NULL, &cc);
        found_cc = st == KILN_OK;
        if (st == KILN_ERR_COMPILE)
            st = jit_load_indexed(j, cache, source, len, o);
    }
    /* 3. */
    char *id_dir = NULL, *id_file = NULL;
    jit_job spec = {.log_fd = -1, .hold_fd = -1};
    bool speculating = false;
    if (!st && found_cc)
        st = jit_identity_lookup(j, cache, &cc, &id_dir, &id_file);
    if (!st && found_cc && !cc.version[0])
        st = jit_mkdirs(j, cache); /* to ask statvfs about it */
    if (!st && found_cc && !cc.version[0]) {
        if (jit_noexec(cache))
            st = jit_noexec_failed(j, cache);
        else
            st = jit_speculate(j, cache, &cc, id_dir, id_file, source, len, o, &spec,
                               &speculating);
    }
    if (!st && found_cc)
        st = jit_compute_key(j, &cc, source, len, o);
    if (!st && found_cc)
        st = jit_make_paths(j, cache, &p);
    /* 4. */
    bool loaded = !found_cc;
    struct stat sb;
    if (!st && !loaded && !speculating && lstat(p.so, &sb) == 0) {
        kiln_err why;
        st = jit_check_dir(&j->err, p.dir);
        if (!st)
            st = jit_verify(j, &p, &why);
        if (!st && !why.msg[0]) {
            st = jit_dlopen(j, p.so, p.dir);
            loaded = true;
        }
    }
    /* 5. */
    if (!st && !loaded)
        st = jit_load_locked(j, cache, &cc, &p, source, len, o, speculating ? &spec : NULL);
    else if (speculating)
        jit_compile_discard(j, &spec);
    if (!st)
        kiln_err_clear(&j->err);
    free(id_dir);
    free(id_file);
    free(cache);
    free(cc.path);
    free(cc.real);
    jit_paths_free(&p);
    return st;
}

void *kiln_jit_symbol(kiln_jit *j, const char *name)
{
    KILN_API_CHECK(j && name);
    if (!j || !name)
        return NULL;
    if (!j->dl) {
        kiln_err_set(&j->err, KILN_ERR_STATE, "symbol %s: no library loaded (the load failed)",
                     name);
        return NULL;
    }
    dlerror();
    void *s = dlsym(j->dl, name);
    if (!s) {
        kiln_err_set(&j->err, KILN_ERR_NOT_FOUND, "%s: no symbol %s", j->so_path, name);
        return NULL;
    }
    kiln_err_clear(&j->err);
    return s;
}

bool kiln_jit_compiler_ran(const kiln_jit *j)
{
    KILN_API_CHECK(j);
    return j && j->compiler_ran;
}

const char *kiln_jit_path(const kiln_jit *j)
{
    KILN_API_CHECK(j);
    return j ? j->so_path : NULL;
}

const char *kiln_jit_key(const kiln_jit *j)
{
    KILN_API_CHECK(j);
    return j && j->key[0] ? j->key : NULL;
}

const char *kiln_jit_errmsg(const kiln_jit *j)
{
    return j ? j->err.msg : "out of memory";
}

const char *kiln_jit_note(const kiln_jit *j)
{
    return j ? j->note.msg : "";
}

enum kiln_status kiln_jit_prune(const char *cache_dir, kiln_jit_prune_report *out)
{
    /* Plan:
    ** 1. the folder: given or the default; refused if others can write it
    ** 2. the root: dead speculative compiles
    ** 3. compilers/ and each shard: temp files of dead processes (the key's
    **    lock is free; with no lock to ask, stale) */
    KILN_API_CHECK(out);
    if (!out)
        return KILN_ERR_ARG;
    memset(out, 0, sizeof *out);
    kiln_jit j;
    memset(&j, 0, sizeof j);
    kiln_jit_options o = {.cache_dir = cache_dir};
    char *cache = NULL;
    jit_sweep sw = {0};
    /* 1. */
    enum kiln_status st = cache_dir && !*cache_dir
                              ? kiln_err_set(&j.err, KILN_ERR_ARG, "jit prune: cache_dir is empty")
                              : jit_cache_dir(&j, &o, &cache);
    if (!st)
        st = jit_check_dir(&j.err, cache);
    DIR *d = st ? NULL : opendir(cache);
    if (!st && !d && errno != ENOENT) {
        int e = errno;
        st = kiln_err_set(&j.err, KILN_ERR_IO, "jit prune: cannot read %s: %s",
                          kiln_path_show(cache).s, strerror(e));
    }
    /* 2. */
    if (d)
        jit_sweep_pending(cache, true, &sw);
    /* 3. */
    for (struct dirent *e; !st && d && (e = readdir(d));) {
        bool shard = strlen(e->d_name) == JIT_SHARD_HEX &&
                     strspn(e->d_name, "0123456789abcdef") == JIT_SHARD_HEX;
        if (!shard && strcmp(e->d_name, "compilers") != 0)
            continue;
        char *dir = jit_strf("%s/%s", cache, e->d_name);
        if (!dir)
            st = jit_nomem(&j, "prune path");
        else if (!(st = jit_check_dir(&j.err, dir)))
            jit_sweep_dir(dir, &sw);
        free(dir);
    }
    if (d)
        closedir(d);
    free(cache);
    out->n_removed = sw.n;
    out->bytes_removed = sw.bytes;
    memcpy(out->msg, j.err.msg, sizeof out->msg);
    return st;
}

void kiln_jit_close(kiln_jit *j)
{
    if (!j)
        return;
    if (j->dl)
        dlclose(j->dl);
    free(j->so_path);
    free(j);
}

/* Exported code (runtime/export.c): the JIT's compiler and flags, no cache.
** The compiler writes a temp file beside out, renamed onto out once it
** succeeded, so a failure leaves no partial library; its log goes to a temp
** file whose head a failure quotes. */
/* Build srcs[0..n_src) into out with the JIT's compiler and flags: a shared
** object (shared), else an executable (the JIT's flags less -fPIC -shared). */
static enum kiln_status build_files(const char *cc_want, const char *const *srcs, int n_src, const char *out,
                                    bool shared, const char *const *extra, int n_extra, kiln_err *err)
{
    kiln_jit j = {0};
    jit_cc cc = {0};
    const char *src = srcs[0];
    enum kiln_status st = jit_find_cc(&j, cc_want, &cc);
    char *tmp = st ? NULL : jit_strf("%s.XXXXXX", out), *log = st ? NULL : jit_strf("%s.log.XXXXXX", out);
    size_t n_flags = KILN_ARRAY_LEN(JIT_FLAGS);
    char **argv = st ? NULL : calloc(n_flags + 6 + (size_t)n_src + (size_t)(n_extra > 0 ? n_extra : 0), sizeof *argv);
    int tmp_fd = -1, log_fd = -1;
    if (!st && (!tmp || !log || !argv))
        st = jit_nomem(&j, "compiler command");
    if (!st && ((tmp_fd = mkostemp(tmp, O_CLOEXEC)) < 0 || (log_fd = mkostemp(log, O_CLOEXEC)) < 0)) {
        int e = errno;
        if (tmp_fd < 0)
            tmp[0] = '\0';
        log[0] = '\0';
        st = kiln_err_set(&j.err, KILN_ERR_IO, "%s: cannot create a file beside %s: %s",
                          shared ? "export" : "build", kiln_path_show(out).s, jit_strerror(e));
    }
    if (tmp_fd >= 0)
        close(tmp_fd);
    if (!st) {
        size_t k = 0;
        argv[k++] = cc.path;
        for (size_t i = 0; i < n_flags; i++)
            if (shared || !jit_flag_shared(JIT_FLAGS[i]))
                argv[k++] = (char *)JIT_FLAGS[i];
        argv[k++] = (char *)jit_flag_no_slp(&cc);
        argv[k++] = (char *)"-o";
        argv[k++] = tmp;
        for (int i = 0; i < n_src; i++)
            argv[k++] = (char *)srcs[i];
        for (int i = 0; i < n_extra; i++)
            argv[k++] = (char *)extra[i];
        argv[k] = NULL;
        pid_t pid;
        int ws = 0;
        if (!(st = jit_spawn(&j, argv, log_fd, &pid)) && !(st = jit_wait(&j, pid, "C compiler", &ws)) &&
            (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)) {
            char how[64], text[JIT_DIAG_READ], quote[KILN_ERRMSG_MAX / 2];
            jit_describe_exit(ws, how, sizeof how);
            size_t n = jit_read_fd(log_fd, text, sizeof text);
            jit_quote_diagnostics(text, n, src, src, quote, sizeof quote);
            st = kiln_err_set(&j.err, KILN_ERR_COMPILE, "%s: C compiler %s %s compiling %s: %s",
                              shared ? "export" : "build", kiln_path_show(cc.path).s, how, kiln_path_show(src).s,
                              quote[0] ? quote : "(no diagnostics)");
        }
        if (!st && (chmod(tmp, 0755) != 0 || rename(tmp, out) != 0)) { /* a library others may load */
            int e = errno;
            st = kiln_err_set(&j.err, KILN_ERR_IO, "%s: cannot write %s: %s", shared ? "export" : "build",
                              kiln_path_show(out).s, jit_strerror(e));
        }
        if (!st)
            tmp[0] = '\0';
    }
    if (log_fd >= 0)
        close(log_fd);
    if (log && log[0])
        unlink(log);
    if (tmp && tmp[0])
        unlink(tmp);
    free(tmp);
    free(log);
    free(argv);
    free(cc.path);
    free(cc.real);
    if (st)
        kiln_err_set(err, st, "%s", j.err.msg);
    return st;
}

enum kiln_status kiln_jit_build_file(const char *cc_want, const char *src, const char *out,
                                     const char *const *extra, int n_extra, kiln_err *err)
{
    return build_files(cc_want, &src, 1, out, true, extra, n_extra, err);
}

enum kiln_status kiln_jit_build_program(const char *cc_want, const char *const *srcs, int n_srcs, const char *out,
                                        const char *const *extra, int n_extra, kiln_err *err)
{
    if (!srcs || n_srcs < 1)
        return kiln_err_set(err, KILN_ERR_ARG, "build: no source files");
    return build_files(cc_want, srcs, n_srcs, out, false, extra, n_extra, err);
}

enum kiln_status kiln_jit_program_command(const char *cc_want, char **out, kiln_err *err)
{
    kiln_jit j = {0};
    jit_cc cc = {0};
    *out = NULL;
    enum kiln_status st = jit_find_cc(&j, cc_want, &cc);
    if (!st) {
        kiln_strbuf b = {0};
        kiln_strbuf_put(&b, "%s", cc.path);
        for (size_t i = 0; i < KILN_ARRAY_LEN(JIT_FLAGS); i++)
            if (!jit_flag_shared(JIT_FLAGS[i]))
                kiln_strbuf_put(&b, " %s", JIT_FLAGS[i]);
        kiln_strbuf_put(&b, " %s", jit_flag_no_slp(&cc));
        if (b.oom) {
            free(b.s);
            st = kiln_err_set(&j.err, KILN_ERR_NOMEM, "build: no memory");
        } else {
            *out = b.s;
        }
    }
    free(cc.path);
    free(cc.real);
    if (st)
        kiln_err_set(err, st, "%s", j.err.msg);
    return st;
}

enum kiln_status kiln_jit_cache_folder(const char *cache_dir, char **out, kiln_err *err)
{
    kiln_jit j;
    memset(&j, 0, sizeof j);
    *out = NULL;
    kiln_jit_options o = {.cache_dir = cache_dir};
    enum kiln_status st = cache_dir && !*cache_dir
                              ? kiln_err_set(&j.err, KILN_ERR_ARG, "jit cache: cache_dir is empty")
                              : jit_cache_dir(&j, &o, out);
    if (st)
        *err = j.err;
    return st;
}

enum kiln_status kiln_jit_check_folder(const char *dir, kiln_err *err) { return jit_check_dir(err, dir); }

enum kiln_status kiln_jit_verify_entry(const char *shard_dir, const char *key, kiln_err *err, kiln_err *why)
{
    char *so = jit_strf("%s/%s.so", shard_dir, key + JIT_SHARD_HEX);
    char *sum = jit_strf("%s/%s.sum", shard_dir, key + JIT_SHARD_HEX);
    enum kiln_status st = so && sum ? jit_verify_files(key, sum, so, err, why)
                                    : kiln_err_set(err, KILN_ERR_NOMEM, "jit cache: out of memory (paths)");
    free(so);
    free(sum);
    return st;
}
