/* logdb.h: the SQLite backend of the training log (log.h), internal.
**
** One file holds one log; its schema is documented in docs/guide.md ("The
** training log") and in logdb.c. A kiln_logdb is one connection, used by one
** main loop (one thread at a time). Errors go to the kiln_err given. */
#ifndef KILN_RUNTIME_LOGDB_H
#define KILN_RUNTIME_LOGDB_H

#include "runtime/log.h"

/* A transaction left open longer than this is committed at the end of the
** next iteration: how much a crash can lose. */
#define KILN_LOGDB_COMMIT_SECONDS 1.0

/* Open or create the log in path. A file that exists is checked before use
** (an SQLite database, kiln's application id and schema version, the
** schema's objects, its integrity, every row's kind and value, the status)
** and refused with a message naming path and the first thing wrong.
** KILN_OK, KILN_ERR_IO, KILN_ERR_FORMAT, KILN_ERR_NOMEM; *out NULL on
** failure. */
enum kiln_status kiln_logdb_open(const char *path, kiln_logdb **out, kiln_err *err);
/* Commit what is open and close. NULL: nothing. */
void kiln_logdb_close(kiln_logdb *db);

/* Write a record (text for KILN_LOG_TEXT, value otherwise) into the open
** transaction, replacing one with the same iteration and key. */
enum kiln_status kiln_logdb_put(kiln_logdb *db, int64_t iteration, const char *key,
                                enum kiln_log_kind kind, double value, const char *text,
                                kiln_err *err);
/* The record (*out NULL when absent), borrowed until the next call on db. */
enum kiln_status kiln_logdb_get(kiln_logdb *db, int64_t iteration, const char *key,
                                const kiln_log_record **out, kiln_err *err);
/* The row (*out NULL when it has no record), records sorted by key, borrowed
** until the next call on db. */
enum kiln_status kiln_logdb_row(kiln_logdb *db, int64_t iteration, const kiln_log_row **out,
                                kiln_err *err);
/* Delete the records after iteration and commit the status given. */
enum kiln_status kiln_logdb_truncate(kiln_logdb *db, int64_t iteration, int64_t epochs_done,
                                     kiln_err *err);
/* Status as last committed. */
void kiln_logdb_status(const kiln_logdb *db, int64_t *iterations_done, int64_t *epochs_done);
/* Store the status and commit when force or when the open transaction is
** older than KILN_LOGDB_COMMIT_SECONDS. */
enum kiln_status kiln_logdb_advance(kiln_logdb *db, int64_t iterations_done, int64_t epochs_done,
                                    bool force, kiln_err *err);

#endif
