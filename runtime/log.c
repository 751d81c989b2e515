/* log.c: the training log (rows of key -> number/boolean records).
**
** See log.h for the layout. Two choices worth knowing:
**  - Sparse rows. Blocks' TrainingLog is a defaultdict of rows; most
**    iterations write nothing, so kiln keeps only rows that were written,
**    sorted by iteration. The main loop writes the current row, which is the
**    last one or a new last one: appending is the common path, a write to an
**    older row (possible through the API) shifts the tail.
**  - Values are printed the way Blocks' log was printed by Python 2:
**    str(float) is "%.12g" plus ".0" when that looks like an integer, and
**    booleans are True/False. Printing reads the tutorial's log byte for byte
**    ("test_cost_with_regularization: 2.34244632721").
**
** A failed allocation leaves the log as it was.
**
** The SQLite backend (logdb.c) sits behind the same functions: each checks
** its arguments here, then goes to the file when l->db is set. */
#include "runtime/log.h"
#include "runtime/logdb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void kiln_log_init(kiln_log *l)
{
    memset(l, 0, sizeof *l);
}

static void row_free(kiln_log_row *r)
{
    for (int j = 0; j < r->n_records; j++) {
        free(r->records[j].key);
        free(r->records[j].text);
    }
    free(r->records);
}

void kiln_log_clear(kiln_log *l)
{
    for (int64_t i = 0; i < l->n_rows; i++)
        row_free(&l->rows[i]);
    free(l->rows);
    l->rows = NULL;
    l->n_rows = l->cap_rows = 0;
    kiln_logdb_close(l->db);
    l->db = NULL;
    kiln_err_clear(&l->err);
}

enum kiln_status kiln_log_open_sqlite(kiln_log *l, const char *path)
{
    if (l->db || l->n_rows > 0)
        return kiln_err_set(&l->err, KILN_ERR_STATE,
                            "the log already holds records: choose its backend before writing any");
    return kiln_logdb_open(path, &l->db, &l->err);
}

void kiln_log_status(const kiln_log *l, int64_t *iterations_done, int64_t *epochs_done)
{
    *iterations_done = *epochs_done = 0;
    if (l->db)
        kiln_logdb_status(l->db, iterations_done, epochs_done);
}

enum kiln_status kiln_log_truncate(kiln_log *l, int64_t iteration, int64_t epochs_done)
{
    if (l->db)
        return kiln_logdb_truncate(l->db, iteration, epochs_done, &l->err);
    while (l->n_rows > 0 && l->rows[l->n_rows - 1].iteration > iteration)
        row_free(&l->rows[--l->n_rows]);
    return KILN_OK;
}

enum kiln_status kiln_log_advance(kiln_log *l, int64_t iterations_done, int64_t epochs_done,
                                  bool force)
{
    return l->db ? kiln_logdb_advance(l->db, iterations_done, epochs_done, force, &l->err) : KILN_OK;
}

/* Index of the first row whose iteration is >= it (binary search). */
static int64_t log_row_lower_bound(const kiln_log *l, int64_t it)
{
    int64_t lo = 0, hi = l->n_rows;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (l->rows[mid].iteration < it)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Index of the first record whose key is >= key. */
static int log_record_lower_bound(const kiln_log_row *r, const char *key)
{
    int lo = 0, hi = r->n_records;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(r->records[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const kiln_log_row *kiln_log_row_at(const kiln_log *l, int64_t iteration)
{
    if (l->db) {
        const kiln_log_row *r = NULL;
        kiln_err ignored; /* l is const: a failed read is an absent row */
        kiln_logdb_row(l->db, iteration, &r, &ignored);
        return r;
    }
    int64_t i = log_row_lower_bound(l, iteration);
    if (i < l->n_rows && l->rows[i].iteration == iteration)
        return &l->rows[i];
    return NULL;
}

enum kiln_status kiln_log_read(kiln_log *l, int64_t iteration, const char *key,
                               const kiln_log_record **out)
{
    *out = NULL;
    if (l->db && key)
        return kiln_logdb_get(l->db, iteration, key, out, &l->err);
    *out = kiln_log_get(l, iteration, key);
    return KILN_OK;
}

const kiln_log_record *kiln_log_get(const kiln_log *l, int64_t iteration, const char *key)
{
    if (l->db && key) {
        const kiln_log_record *r = NULL;
        kiln_err ignored; /* l is const: kiln_log_read gives the reason */
        kiln_logdb_get(l->db, iteration, key, &r, &ignored);
        return r;
    }
    const kiln_log_row *r = kiln_log_row_at(l, iteration);
    if (!r || !key)
        return NULL;
    int j = log_record_lower_bound(r, key);
    if (j < r->n_records && strcmp(r->records[j].key, key) == 0)
        return &r->records[j];
    return NULL;
}

/* Plan: 1. check the key (and text); the SQLite backend takes it from
** here; 2. find or insert the row (grow first, so an allocation failure
** changes nothing); 3. replace the record or insert it in key order, again
** growing before any change. */
static enum kiln_status log_put(kiln_log *l, int64_t iteration, const char *key,
                                enum kiln_log_kind kind, double value, const char *text)
{
    /* 1. Key. */
    if (!key || !key[0])
        return kiln_err_set(&l->err, KILN_ERR_ARG, "log record key is %s", key ? "empty" : "NULL");
    size_t klen = strlen(key);
    if (klen > KILN_MAX_NAME)
        return kiln_err_set(&l->err, KILN_ERR_ARG,
                            "log record key '%.32s...' has %zu characters, at most %d allowed",
                            key, klen, KILN_MAX_NAME);
    if (iteration < 0)
        return kiln_err_set(&l->err, KILN_ERR_ARG, "log row %lld: iteration is negative",
                            (long long)iteration);
    if (kind == KILN_LOG_TEXT) {
        if (!text)
            return kiln_err_set(&l->err, KILN_ERR_ARG, "log record '%s': text is NULL", key);
        size_t n = strlen(text);
        if (n > KILN_LOG_TEXT_MAX)
            return kiln_err_set(&l->err, KILN_ERR_ARG,
                                "log record '%s': text of %zu bytes, at most %d allowed", key, n,
                                KILN_LOG_TEXT_MAX);
    }
    if (l->db)
        return kiln_logdb_put(l->db, iteration, key, kind, value, text, &l->err);
    char *t = NULL;
    if (kind == KILN_LOG_TEXT && !(t = kiln_strdup(text)))
        return kiln_err_set(&l->err, KILN_ERR_NOMEM, "log record '%s': text", key);

    /* 2. Row. */
    int64_t ri = log_row_lower_bound(l, iteration);
    if (ri == l->n_rows || l->rows[ri].iteration != iteration) {
        if (l->n_rows == l->cap_rows) {
            int64_t cap = l->cap_rows ? 2 * l->cap_rows : 16;
            kiln_log_row *rows = realloc(l->rows, (size_t)cap * sizeof *rows);
            if (!rows) {
                free(t);
                return kiln_err_set(&l->err, KILN_ERR_NOMEM, "log: %lld rows",
                                    (long long)cap);
            }
            l->rows = rows;
            l->cap_rows = cap;
        }
        memmove(&l->rows[ri + 1], &l->rows[ri], (size_t)(l->n_rows - ri) * sizeof *l->rows);
        l->rows[ri] = (kiln_log_row){.iteration = iteration};
        l->n_rows++;
    }
    kiln_log_row *r = &l->rows[ri];

    /* 3. Record. An empty row left behind by a failure below is harmless:
    ** lookups find no key in it and printing shows no records. */
    int j = log_record_lower_bound(r, key);
    if (j < r->n_records && strcmp(r->records[j].key, key) == 0) {
        free(r->records[j].text);
        r->records[j].kind = kind;
        r->records[j].value = value;
        r->records[j].text = t;
        return KILN_OK;
    }
    if (r->n_records == r->cap_records) {
        int cap = r->cap_records ? 2 * r->cap_records : 4;
        kiln_log_record *recs = realloc(r->records, (size_t)cap * sizeof *recs);
        if (!recs) {
            free(t);
            return kiln_err_set(&l->err, KILN_ERR_NOMEM, "log row %lld: %d records",
                                (long long)iteration, cap);
        }
        r->records = recs;
        r->cap_records = cap;
    }
    char *k = kiln_strdup(key);
    if (!k) {
        free(t);
        return kiln_err_set(&l->err, KILN_ERR_NOMEM, "log record key '%s'", key);
    }
    memmove(&r->records[j + 1], &r->records[j], (size_t)(r->n_records - j) * sizeof *r->records);
    r->records[j] = (kiln_log_record){.key = k, .kind = kind, .value = value, .text = t};
    r->n_records++;
    return KILN_OK;
}

enum kiln_status kiln_log_set(kiln_log *l, int64_t iteration, const char *key,
                              enum kiln_log_kind kind, double value)
{
    if (kind == KILN_LOG_TEXT)
        return kiln_err_set(&l->err, KILN_ERR_ARG, "log record '%s': text goes through kiln_log_set_text",
                            key ? key : "?");
    return log_put(l, iteration, key, kind, value, NULL);
}

enum kiln_status kiln_log_set_text(kiln_log *l, int64_t iteration, const char *key,
                                   const char *text)
{
    return log_put(l, iteration, key, KILN_LOG_TEXT, 0.0, text);
}

int kiln_log_format_float(char *dst, size_t cap, double v)
{
    /* C prints NaN as "nan" or "-nan" depending on the sign bit; Python
    ** prints "nan" either way. */
    if (isnan(v))
        return kiln_snprintf(dst, cap, "nan");
    if (isinf(v))
        return kiln_snprintf(dst, cap, "%s", v < 0 ? "-inf" : "inf");
    if (kiln_snprintf(dst, cap, "%.12g", v) != 0)
        return -1;
    /* "%.12g" of 2.0 is "2"; Python's str(2.0) is "2.0". */
    if (strpbrk(dst, ".e") == NULL) {
        size_t n = strlen(dst);
        if (n + 3 > cap)
            return -1;
        memcpy(dst + n, ".0", 3);
    }
    return 0;
}

int kiln_log_format_value(char *dst, size_t cap, const kiln_log_record *r)
{
    switch (r->kind) {
    case KILN_LOG_BOOL:
        return kiln_snprintf(dst, cap, "%s", r->value != 0 ? "True" : "False");
    case KILN_LOG_INT:
        return kiln_snprintf(dst, cap, "%lld", (long long)r->value);
    case KILN_LOG_FLOAT:
        return kiln_log_format_float(dst, cap, r->value);
    case KILN_LOG_TEXT:
        return kiln_snprintf(dst, cap, "%s", r->text ? r->text : "");
    }
    return -1;
}
