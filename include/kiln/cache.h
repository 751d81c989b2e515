/* kiln/cache.h: the compile cache, as tools see it (`kiln cache`).
**
** kiln_compile keeps every library it builds in a content-addressed folder
** ($XDG_CACHE_HOME/kiln, else ~/.cache/kiln; kiln_compile_options.cache_dir),
** one entry per key: the library, its checksum record, the C source it was
** built from. These functions list the entries, remove them, and remove what
** processes killed mid-compile left behind. Each refuses, with KILN_ERR_IO,
** a cache folder that belongs to another user or that others may write, as
** kiln_compile does. A missing folder is an empty cache. Entries being
** compiled right now (their lock is held) are left alone. */
#ifndef KILN_CACHE_H
#define KILN_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One entry of the cache. */
typedef struct kiln_cache_entry {
    char key[65];      /* SHA-256 of what built it, hex */
    int64_t bytes;     /* of the library */
    int64_t modified;  /* when the library was written, seconds since 1970 */
    bool has_source;   /* the C source it was built from is beside it */
    bool verified;     /* the library's size and SHA-256 match its record */
    char problem[512]; /* why it is not verified; "" when it is */
} kiln_cache_entry;

/* What a call did: entries seen (list) or removed (clear), their bytes,
** files removed (clear, prune) and their bytes, entries left alone because
** a compile holds them, and why a call failed ("" on success). */
typedef struct kiln_cache_report {
    int n_entries;
    int64_t entry_bytes;
    int n_removed;
    int64_t bytes_removed;
    int n_busy;
    char msg[512];
} kiln_cache_report;

/* Called per entry, in key order; nonzero stops the listing (KILN_OK).
** e is borrowed for the call. */
typedef int (*kiln_cache_entry_fn)(const kiln_cache_entry *e, void *user);

/* Every entry of the cache at dir (borrowed; NULL: the default folder),
** each verified as a load would verify it (reads and hashes each library).
** fn may be NULL (count only). KILN_OK; KILN_ERR_ARG (out NULL, dir "");
** KILN_ERR_IO (the folder is refused or unreadable); KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_cache_list(const char *dir, kiln_cache_entry_fn fn, void *user,
                                          kiln_cache_report *out);
/* Remove every entry (library, record, source, compile log), the index
** records and compiler identities, and what dead processes left; entries a
** compile holds stay (n_busy). Lock files stay: removing one races with its
** next taker. The next kiln_compile of each model runs the compiler again.
** Statuses as kiln_cache_list. */
KILN_API enum kiln_status kiln_cache_clear(const char *dir, kiln_cache_report *out);
/* Remove only what processes killed mid-compile left (temp files, dead
** speculative compiles); entries stay. Statuses as kiln_cache_list. */
KILN_API enum kiln_status kiln_cache_prune(const char *dir, kiln_cache_report *out);

#ifdef __cplusplus
}
#endif
#endif
