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
** into the handle the user holds. */
#ifndef KILN_RUNTIME_LOG_H
#define KILN_RUNTIME_LOG_H

#include <stdio.h>

#include "compiler/util.h"

enum kiln_log_kind { KILN_LOG_FLOAT, KILN_LOG_INT, KILN_LOG_BOOL };

typedef struct kiln_log_record {
    char *key;
    enum kiln_log_kind kind;
    double value; /* KILN_LOG_BOOL: 0 or 1; KILN_LOG_INT: an exact integer */
} kiln_log_record;

typedef struct kiln_log_row {
    int64_t iteration;
    int n_records, cap_records;
    kiln_log_record *records; /* sorted by key */
} kiln_log_row;

typedef struct kiln_log {
    int64_t n_rows, cap_rows;
    kiln_log_row *rows; /* sorted by iteration */
    kiln_err err;
} kiln_log;

void kiln_log_init(kiln_log *l);
/* Frees every row and key; l is empty and usable afterwards. */
void kiln_log_clear(kiln_log *l);

/* Set record key of row `iteration` (created if absent), replacing any value
** it had. key is copied: 1..KILN_MAX_NAME characters. KILN_OK, KILN_ERR_ARG
** (bad key or iteration < 0), KILN_ERR_NOMEM (the log is unchanged). */
enum kiln_status kiln_log_set(kiln_log *l, int64_t iteration, const char *key,
                              enum kiln_log_kind kind, double value);
/* The record, or NULL when row or key is absent. Borrowed until the next set. */
const kiln_log_record *kiln_log_get(const kiln_log *l, int64_t iteration, const char *key);
/* The row of `iteration`, or NULL when nothing was written to it. */
const kiln_log_row *kiln_log_row_at(const kiln_log *l, int64_t iteration);

/* Write r's value as Python 2's str() would: True/False, integers in full,
** floats as repr-less "%.12g" with ".0" added to integral values ("2.0"),
** "inf", "-inf", "nan". Returns 0, or -1 when cap is too small. */
int kiln_log_format_value(char *dst, size_t cap, const kiln_log_record *r);
/* The same for a float alone (str(float) in Python 2). */
int kiln_log_format_float(char *dst, size_t cap, double v);

#endif
