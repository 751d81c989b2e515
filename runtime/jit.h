/* jit.h: compile one generated C translation unit into a shared object
** through a content-addressed cache on disk, and load it (internal API of
** the runtime; kiln_compile is its user).
**
** A kiln_jit is one loaded library. Loading the same source with the same
** compiler, flags and link arguments again, in this process or any later
** one, finds the library in the cache and runs no process at all.
** See runtime/jit.c for the cache layout and the key. */
#ifndef KILN_JIT_H
#define KILN_JIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/common.h"
#include "compiler/util.h"

/* Version of the generated code's conventions (entry points, layout). It is
** part of every cache key: the code generator bumps it when the meaning of
** the same source bytes changes for the runtime, which orphans old entries. */
#define KILN_JIT_ABI "kiln-abi-4"

/* Hex digits of a cache key (SHA-256), terminator excluded. */
#define KILN_JIT_KEY_HEX 64

typedef struct kiln_jit kiln_jit; /* one loaded library */

typedef struct kiln_jit_options {
    /* C compiler: a name searched in PATH, or a path. NULL: $KILN_CC (same
    ** form; one program, no arguments), else clang, else gcc. Borrowed. */
    const char *cc;
    /* Cache folder, created (mode 0700) as needed. NULL: $XDG_CACHE_HOME/kiln
    ** when that is absolute, else $HOME/.cache/kiln. Borrowed. */
    const char *cache_dir;
    /* Extra arguments after the source file ("-L/dir", "-lopenblas", "-lm"),
    ** passed as they are (no shell) and part of the key. Borrowed. */
    const char *const *link_args;
    int n_link_args;
} kiln_jit_options;

/* Compile source (len bytes, borrowed; need not end in NUL) or find it in the
** cache, then dlopen it with RTLD_NOW | RTLD_LOCAL. o may be NULL (all
** defaults). *out is caller-owned (kiln_jit_close) and set even on failure,
** so kiln_jit_errmsg can say why; NULL only when out of memory. Allocates;
** on a cache miss writes files under the cache folder and runs the compiler.
** A cached library is loaded only once its size and SHA-256 match its
** record; one that does not is rebuilt, and kiln_jit_note says why. With no
** compiler to be found, the library last built from this source, flags and
** requested compiler is loaded if it verifies (kiln_jit_note says so).
** KILN_OK; KILN_ERR_ARG; KILN_ERR_COMPILE (no compiler and no verified
** library, the compiler failed: the message quotes its first diagnostics
** and names the full log, and says when the disk is full; or the library
** does not load); KILN_ERR_IO (the cache folder or a folder in it belongs
** to another user or is writable by group or others; it is on a noexec
** file system; it or a file in it cannot be made or written);
** KILN_ERR_NOMEM. */
enum kiln_status kiln_jit_load(const char *source, size_t len, const kiln_jit_options *o,
                               kiln_jit **out);

/* Address of symbol `name` in the library (borrowed, valid until
** kiln_jit_close). NULL when absent or when the load failed; the message
** says which. */
void *kiln_jit_symbol(kiln_jit *j, const char *name);

/* True when this load ran the compiler (false: a cache hit). */
bool kiln_jit_compiler_ran(const kiln_jit *j);

/* Path of the shared object, and the key (64 hex digits) that names it.
** Borrowed, valid until kiln_jit_close. NULL when the load failed before the
** key was computed (no compiler, bad arguments). */
const char *kiln_jit_path(const kiln_jit *j);
const char *kiln_jit_key(const kiln_jit *j);

/* Message of the last failed call on j ("" after a success); borrowed, valid
** until the next call on j. For j == NULL: "out of memory". */
const char *kiln_jit_errmsg(const kiln_jit *j);

/* What a successful load repaired or fell back on, "" when nothing: a cache
** entry that failed verification and was rebuilt ("rebuilt PATH: WHY"), or
** a library loaded without a compiler ("no C compiler found; loaded PATH,
** built by VERSION"). Borrowed, valid until kiln_jit_close; "" for NULL. */
const char *kiln_jit_note(const kiln_jit *j);

/* Bytes of kiln_jit_prune_report.msg. */
#define KILN_JIT_MSG_MAX 512

typedef struct kiln_jit_prune_report {
    int n_removed;          /* files removed */
    int64_t bytes_removed;  /* their sizes, summed */
    char msg[KILN_JIT_MSG_MAX]; /* why the prune failed; "" on success */
} kiln_jit_prune_report;

/* Remove what processes killed mid-compile left in the cache cache_dir
** (borrowed; NULL: the default folder, as kiln_jit_load picks it): temp
** files of a key whose lock no process holds, speculative compiles whose
** process is gone, and temp files with no lock to ask once older than ten
** minutes. Entries, sources, logs and locks stay. For `kiln cache prune`.
** A missing folder is KILN_OK with nothing removed. KILN_OK; KILN_ERR_ARG
** (cache_dir is "", out is NULL); KILN_ERR_IO (the folder is refused as
** kiln_jit_load refuses it, or cannot be read); KILN_ERR_NOMEM. */
enum kiln_status kiln_jit_prune(const char *cache_dir, kiln_jit_prune_report *out);

/* Compile the C file src into the shared object out (both paths borrowed)
** with the compiler kiln_jit_load would pick for cc (NULL: $KILN_CC, clang,
** gcc) and the same flags, then extra (borrowed, n_extra; compiler flags and
** link arguments such as "-I<dir>", "-lm"), with no cache: for exported
** code (runtime/export.c). out appears whole or not at all (a temp name in
** its folder, renamed). The message goes to err. KILN_OK, KILN_ERR_COMPILE
** (no compiler, the compiler failed: its first diagnostics quoted),
** KILN_ERR_IO, KILN_ERR_NOMEM. */
enum kiln_status kiln_jit_build_file(const char *cc, const char *src, const char *out,
                                     const char *const *extra, int n_extra, kiln_err *err);
/* The same for an executable (runtime/aot.c): srcs[0..n_srcs) (borrowed)
** built and linked into out with the JIT's compiler and flags less -fPIC and
** -shared, then extra. Messages name srcs[0]. */
enum kiln_status kiln_jit_build_program(const char *cc, const char *const *srcs, int n_srcs, const char *out,
                                        const char *const *extra, int n_extra, kiln_err *err);
/* The compiler and flags kiln_jit_build_program runs, as one line for
** people ("/usr/bin/clang -std=c11 -O2 ..."): malloc'd into *out. */
enum kiln_status kiln_jit_program_command(const char *cc, char **out, kiln_err *err);
/* For the cache's tools (runtime/cache.c). The cache folder: cache_dir
** (borrowed; "" is KILN_ERR_ARG) or the default as kiln_jit_load picks it,
** malloc'd into *out. Then the check kiln_jit_load makes of the folder and
** of each folder in it (KILN_ERR_IO: another user's, or others may write
** it; a missing folder passes). Then the check of the entry key (hex) in its
** shard folder made before a load: KILN_OK with why empty when verified, with
** why saying what is wrong when not; another status (on err) when it could
** not be checked. */
enum kiln_status kiln_jit_cache_folder(const char *cache_dir, char **out, kiln_err *err);
enum kiln_status kiln_jit_check_folder(const char *dir, kiln_err *err);
enum kiln_status kiln_jit_verify_entry(const char *shard_dir, const char *key, kiln_err *err, kiln_err *why);

/* dlclose the library and free j. NULL is a no-op. Leaves the cache as is;
** symbols taken from j must not be used afterwards. */
void kiln_jit_close(kiln_jit *j);

#endif
