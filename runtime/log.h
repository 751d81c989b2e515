/* log.h: the training log of a main loop (Blocks' TrainingLog), internal.
**
** The log is a table of rows, one per iteration (row 0 is "before training"),
** each row a set of records key -> value. A value is a number or a boolean;
** Blocks' records may be any Python object, kiln's are what its extensions
** write. Rows exist only once something is written to them, so a run of a
** million iterations whose extensions write once an epoch holds a few rows.
**
** Layout: rows sorted by iteration in one growing array (the main loop only
** ever writes the current row, so inserts are appends); each row's records
** sorted by key (strcmp order, which is Python's sort order for ASCII keys),
** so lookups are binary searches and printing walks the array in order.
** Keys are copied. Errors go to the log's own kiln_err; the caller copies them
** into the handle the user holds.
**
** Backends (#11). The table above is the in-memory backend. A log opened on
** an SQLite file (kiln_log_open_sqlite, runtime/logdb.c) keeps no rows in
** memory: the same calls write to and read from the file, so the main loop
** and the extensions do not know which backend holds their records. Reads
** from the file land in a scratch row the log owns: a record or row it
** returns is borrowed until the next call on the log (the in-memory one
** until the next set). The file is written in transactions that end at an
** iteration's end (kiln_log_advance), so a crash leaves the rows and status
** of a finished iteration. */
#ifndef KILN_RUNTIME_LOG_H
#define KILN_RUNTIME_LOG_H

#include <stdio.h>

#include "compiler/util.h"

enum kiln_log_kind { KILN_LOG_FLOAT, KILN_LOG_INT, KILN_LOG_BOOL, KILN_LOG_TEXT };

/* Longest text record in bytes (a path: Blocks' SAVED_TO, LOADED_FROM), the
** terminator excluded; Blocks warns past max_blob_size, 4 KB. */
#define KILN_LOG_TEXT_MAX 4096

typedef struct kiln_log_record {
    char *key;
    enum kiln_log_kind kind;
    double value; /* KILN_LOG_BOOL: 0 or 1; KILN_LOG_INT: an exact integer */
    char *text;   /* KILN_LOG_TEXT only (owned), else NULL */
} kiln_log_record;

typedef struct kiln_log_row {
    int64_t iteration;
    int n_records, cap_records;
    kiln_log_record *records; /* sorted by key */
} kiln_log_row;

typedef struct kiln_logdb kiln_logdb; /* logdb.h */

typedef struct kiln_log {
    int64_t n_rows, cap_rows;
    kiln_log_row *rows; /* sorted by iteration; in memory only */
    kiln_logdb *db;     /* the SQLite backend, or NULL: in memory */
    kiln_err err;
} kiln_log;

void kiln_log_init(kiln_log *l);
/* Frees every row and key, and closes the file of an SQLite log (committing
** what was written); l is an empty in-memory log afterwards. */
void kiln_log_clear(kiln_log *l);

/* Make the empty in-memory log l a log in the SQLite file path (created if
** absent; a kiln log already there is continued). On failure l is unchanged
** and the message, naming path and what is wrong, is in l->err. KILN_ERR_STATE
** (l holds rows), KILN_ERR_IO, KILN_ERR_FORMAT, KILN_ERR_NOMEM. */
enum kiln_status kiln_log_open_sqlite(kiln_log *l, const char *path);
/* The status stored with the log: a file's iterations_done and epochs_done
** as last committed (0 and 0 for a new file, and in memory). */
void kiln_log_status(const kiln_log *l, int64_t *iterations_done, int64_t *epochs_done);
/* An iteration ended with this status: an SQLite log commits its open
** transaction (records and status together) when force is set or when the
** last commit is older than KILN_LOGDB_COMMIT_SECONDS. In memory: nothing. */
enum kiln_status kiln_log_advance(kiln_log *l, int64_t iterations_done, int64_t epochs_done,
                                  bool force);

/* Forget every row after `iteration` and commit the status (iteration,
** epochs_done): what a run resumed from a checkpoint taken at that
** iteration needs, when the log (a file) went on past it before the crash. */
enum kiln_status kiln_log_truncate(kiln_log *l, int64_t iteration, int64_t epochs_done);

/* Set record key of row `iteration` (created if absent), replacing any value
** it had. key is copied: 1..KILN_MAX_NAME characters. KILN_OK, KILN_ERR_ARG
** (bad key or iteration < 0), KILN_ERR_NOMEM (the log is unchanged). */
enum kiln_status kiln_log_set(kiln_log *l, int64_t iteration, const char *key,
                              enum kiln_log_kind kind, double value);
/* The same for a text record: text copied, at most KILN_LOG_TEXT_MAX bytes. */
enum kiln_status kiln_log_set_text(kiln_log *l, int64_t iteration, const char *key,
                                   const char *text);
/* The record, or NULL when row or key is absent (or the file cannot be read:
** kiln_log_read says why). Borrowed until the next call on l. */
const kiln_log_record *kiln_log_get(const kiln_log *l, int64_t iteration, const char *key);
/* The same with the reason: KILN_OK (*out NULL when absent), or the status of
** a failed read with the message in l->err. */
enum kiln_status kiln_log_read(kiln_log *l, int64_t iteration, const char *key,
                               const kiln_log_record **out);
/* The row of `iteration`, or NULL when nothing was written to it. Borrowed
** until the next call on l. */
const kiln_log_row *kiln_log_row_at(const kiln_log *l, int64_t iteration);

/* Write r's value as Python 2's str() would: True/False, text as it is,
** integers in full,
** floats as repr-less "%.12g" with ".0" added to integral values ("2.0"),
** "inf", "-inf", "nan". Returns 0, or -1 when cap is too small. */
int kiln_log_format_value(char *dst, size_t cap, const kiln_log_record *r);
/* The same for a float alone (str(float) in Python 2). */
int kiln_log_format_float(char *dst, size_t cap, double v);

#endif
