/* logdb.c: the training log in an SQLite file (Blocks' SQLiteLog).
**
** Schema, version 1 (docs/guide.md, "The training log", for users):
**
**   records(iteration, key, kind, number, text)   one row per record
**   status(key, value)                            iterations_done, epochs_done
**   index records_by_key(key, iteration)          "every cost of a run"
**
** with PRAGMA application_id = KILN_LOGDB_APP_ID ('kiln') and PRAGMA
** user_version = the schema version. A record's kind is 'float', 'int',
** 'bool' (number 0 or 1) or 'text' (text set, number NULL); a float NaN is
** stored as a NULL number, SQLite having no NaN. The CHECK constraints say
** the same, so the sqlite3 shell cannot insert a row kiln would refuse.
**
** One file is one log (Blocks kept every log of a user in one file, told
** apart by uuid): opening a file that holds a log continues it, its status
** giving the iteration to go on from, which is what resuming a run needs;
** so there is no default path shared by unrelated runs (config.h).
**
** Transactions. Writes go into a transaction opened by the first write and
** committed with the status at the end of an iteration, at most
** KILN_LOGDB_COMMIT_SECONDS after it opened (kiln_logdb_advance), and when
** the log closes: a crash leaves a file whose records and status are those
** of one finished iteration, never half of one. The journal is WAL, so the
** sqlite3 shell can read the file while training writes it, and a commit
** is an append to the WAL without fsync (synchronous=NORMAL: a power cut
** may lose the last commits, never the file's consistency).
**
** The file is untrusted when opened: it may be anything, damaged, or a
** database made to look like a log. Before any use, open checks that it is
** an SQLite database, its application id and version, that the schema's
** three objects are exactly kiln's (the CREATE statements are compared
** byte for byte) and that there is no trigger (code that would run on our
** writes); then PRAGMA quick_check, every row against the constraints, and
** the status against the rows. Connections run with defensive mode on and
** untrusted schemas, so a forged schema cannot reach SQL functions with side
** effects. The first problem found is the error, naming the file.
**
** Each log has its own connection and statements: two main loops in two
** threads never share anything here. */
#include "runtime/logdb.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 'kiln' in ASCII: PRAGMA application_id of a kiln log. */
#define KILN_LOGDB_APP_ID 0x6b696c6e
#define KILN_LOGDB_VERSION 1
/* How long a write waits for another connection's lock (the sqlite3 shell
** in the middle of a write, say) before failing. */
#define KILN_LOGDB_BUSY_MS 5000

static const char SCHEMA_RECORDS[] =
    "CREATE TABLE records (\n"
    "    iteration INTEGER NOT NULL CHECK (typeof(iteration) = 'integer' AND iteration >= 0),\n"
    "    key TEXT NOT NULL CHECK (typeof(key) = 'text' AND length(key) BETWEEN 1 AND 127),\n"
    "    kind TEXT NOT NULL CHECK (kind IN ('float', 'int', 'bool', 'text')),\n"
    "    number REAL CHECK (CASE kind WHEN 'text' THEN number IS NULL\n"
    "                                 WHEN 'float' THEN number IS NULL OR typeof(number) = 'real'\n"
    "                                 WHEN 'bool' THEN number IN (0.0, 1.0)\n"
    "                                 ELSE typeof(number) = 'real' END),\n"
    "    text TEXT CHECK ((kind = 'text') = (typeof(text) = 'text')),\n"
    "    PRIMARY KEY (iteration, key)\n"
    ") WITHOUT ROWID";
static const char SCHEMA_STATUS[] =
    "CREATE TABLE status (\n"
    "    key TEXT PRIMARY KEY NOT NULL,\n"
    "    value INTEGER NOT NULL CHECK (typeof(value) = 'integer' AND value >= 0)\n"
    ") WITHOUT ROWID";
static const char SCHEMA_INDEX[] = "CREATE INDEX records_by_key ON records (key, iteration)";

static const struct {
    const char *type, *name, *sql;
} SCHEMA_OBJECTS[] = {
    {"table", "records", SCHEMA_RECORDS},
    {"table", "status", SCHEMA_STATUS},
    {"index", "records_by_key", SCHEMA_INDEX},
};
#define N_SCHEMA_OBJECTS ((int)(sizeof SCHEMA_OBJECTS / sizeof SCHEMA_OBJECTS[0]))

/* The statements a log prepares once. */
enum logdb_stmt {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_PUT,
    STMT_GET,
    STMT_ROW,
    STMT_STATUS,
    STMT_TRUNCATE,
    N_STMTS
};
static const char *const STMT_SQL[N_STMTS] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "INSERT OR REPLACE INTO records (iteration, key, kind, number, text) VALUES (?1, ?2, ?3, ?4, ?5)",
    "SELECT kind, number, text FROM records WHERE iteration = ?1 AND key = ?2",
    "SELECT key, kind, number, text FROM records WHERE iteration = ?1 ORDER BY key",
    ("INSERT OR REPLACE INTO status (key, value) VALUES ('iterations_done', ?1), "
     "('epochs_done', ?2)"),
    "DELETE FROM records WHERE iteration > ?1",
};

struct kiln_logdb {
    sqlite3 *db;
    sqlite3_stmt *stmt[N_STMTS];
    char *path;           /* for messages */
    bool in_transaction;
    double opened_at;     /* when the open transaction began (CLOCK_MONOTONIC) */
    int64_t iterations_done, epochs_done; /* as last committed */
    /* Scratch for reads: a row and one record, with their strings. */
    kiln_log_row row;
    int cap_row_records;
    kiln_log_record rec;
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *kind_name(enum kiln_log_kind k)
{
    switch (k) {
    case KILN_LOG_FLOAT: return "float";
    case KILN_LOG_INT: return "int";
    case KILN_LOG_BOOL: return "bool";
    case KILN_LOG_TEXT: return "text";
    }
    return "?";
}

static int kind_parse(const unsigned char *s, enum kiln_log_kind *out)
{
    static const enum kiln_log_kind ALL[] = {KILN_LOG_FLOAT, KILN_LOG_INT, KILN_LOG_BOOL, KILN_LOG_TEXT};
    for (size_t i = 0; s && i < sizeof ALL / sizeof ALL[0]; i++)
        if (strcmp((const char *)s, kind_name(ALL[i])) == 0) {
            *out = ALL[i];
            return 0;
        }
    return -1;
}

/* Status of an SQLite result code. */
static enum kiln_status status_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM: return KILN_ERR_NOMEM;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_SCHEMA: return KILN_ERR_FORMAT;
    default: return KILN_ERR_IO;
    }
}

/* "<path>: <what>: <sqlite's message>". */
static enum kiln_status fail_sql(kiln_logdb *d, int rc, kiln_err *err, const char *what)
{
    const char *msg = d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc);
    int sys = d->db ? sqlite3_system_errno(d->db) : 0;
    return kiln_err_set(err, status_of(rc), "%s: %s: %s%s%s", kiln_path_show(d->path).s, what, msg,
                        sys ? ": " : "", sys ? strerror(sys) : "");
}

/* Run sql (no results wanted). */
static int exec(kiln_logdb *d, const char *sql)
{
    return sqlite3_exec(d->db, sql, NULL, NULL, NULL);
}

/* One integer from a one-row query; rc of the failure, or SQLITE_OK. */
static int query_int(kiln_logdb *d, const char *sql, int64_t *out)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(d->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

/* ---- Opening: create or check --------------------------------------------- */

static enum kiln_status create_schema(kiln_logdb *d, kiln_err *err)
{
    char pragmas[128];
    snprintf(pragmas, sizeof pragmas, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
             KILN_LOGDB_APP_ID, KILN_LOGDB_VERSION);
    int rc = exec(d, "BEGIN IMMEDIATE");
    for (int i = 0; rc == SQLITE_OK && i < N_SCHEMA_OBJECTS; i++)
        rc = exec(d, SCHEMA_OBJECTS[i].sql);
    if (rc == SQLITE_OK)
        rc = exec(d, "INSERT INTO status (key, value) VALUES ('iterations_done', 0), "
                     "('epochs_done', 0)");
    if (rc == SQLITE_OK)
        rc = exec(d, pragmas);
    if (rc == SQLITE_OK)
        rc = exec(d, "COMMIT");
    if (rc != SQLITE_OK) {
        enum kiln_status st = fail_sql(d, rc, err, "creating the log's tables");
        exec(d, "ROLLBACK");
        return st;
    }
    return KILN_OK;
}

/* Plan: 1. every object in sqlite_schema is one of kiln's with its exact
** CREATE statement, or an index or view a user added; a trigger or another
** table is refused; 2. all of kiln's are there. */
static enum kiln_status check_schema(kiln_logdb *d, kiln_err *err)
{
    kiln_shown_path shown = kiln_path_show(d->path); /* .s lives as long as shown */
    const char *path = shown.s;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(d->db, "SELECT type, name, sql FROM sqlite_schema", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return fail_sql(d, rc, err, "reading the schema");
    bool seen[N_SCHEMA_OBJECTS] = {false};
    enum kiln_status st = KILN_OK;
    /* 1. */
    while (st == KILN_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(s, 0);
        const char *name = (const char *)sqlite3_column_text(s, 1);
        const char *sql = (const char *)sqlite3_column_text(s, 2);
        type = type ? type : "?";
        name = name ? name : "?";
        int i = 0;
        while (i < N_SCHEMA_OBJECTS && strcmp(SCHEMA_OBJECTS[i].name, name) != 0)
            i++;
        if (i < N_SCHEMA_OBJECTS) {
            if (strcmp(SCHEMA_OBJECTS[i].type, type) != 0 || !sql ||
                strcmp(SCHEMA_OBJECTS[i].sql, sql) != 0)
                st = kiln_err_set(err, KILN_ERR_FORMAT,
                                  "%s: %s '%s' is not the one kiln's log schema version %d defines "
                                  "(docs/guide.md, \"The training log\")",
                                  path, type, name, KILN_LOGDB_VERSION);
            seen[i] = true;
        } else if (strcmp(type, "trigger") == 0) {
            st = kiln_err_set(err, KILN_ERR_FORMAT,
                              "%s: has a trigger '%.64s', which would run on kiln's writes: a kiln "
                              "log has none (drop it to use the file)",
                              path, name);
        } else if (strcmp(type, "table") == 0) {
            st = kiln_err_set(err, KILN_ERR_FORMAT,
                              "%s: has a table '%.64s' that a kiln log does not have", path, name);
        }
    }
    if (st == KILN_OK && rc != SQLITE_DONE)
        st = fail_sql(d, rc, err, "reading the schema");
    sqlite3_finalize(s);
    /* 2. */
    for (int i = 0; st == KILN_OK && i < N_SCHEMA_OBJECTS; i++)
        if (!seen[i])
            st = kiln_err_set(err, KILN_ERR_FORMAT, "%s: the %s '%s' of a kiln log is missing",
                              path, SCHEMA_OBJECTS[i].type, SCHEMA_OBJECTS[i].name);
    return st;
}

/* Plan: 1. every record row obeys the constraints (a file written around
** them, e.g. with ignore_check_constraints: said first, and better than
** quick_check says it); 2. quick_check (the b-trees); 3. the status holds
** both counters, and no record lies past iterations_done. */
static enum kiln_status check_contents(kiln_logdb *d, kiln_err *err)
{
    kiln_shown_path shown = kiln_path_show(d->path); /* .s lives as long as shown */
    const char *path = shown.s;
    sqlite3_stmt *s;

    /* 1. The CHECK constraints again, as a query. */
    int rc = sqlite3_prepare_v2(
        d->db,
        "SELECT iteration, key, kind FROM records WHERE NOT ("
        "typeof(iteration) = 'integer' AND iteration >= 0 AND typeof(key) = 'text' AND "
        "length(key) BETWEEN 1 AND 127 AND kind IN ('float', 'int', 'bool', 'text') AND "
        "(CASE kind WHEN 'text' THEN number IS NULL WHEN 'float' THEN number IS NULL OR "
        "typeof(number) = 'real' WHEN 'bool' THEN number IN (0.0, 1.0) ELSE typeof(number) = "
        "'real' END) AND ((kind = 'text') = (typeof(text) = 'text'))) LIMIT 1",
        -1, &s, NULL);
    if (rc != SQLITE_OK)
        return fail_sql(d, rc, err, "checking the records");
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(s, 1);
        const char *kind = (const char *)sqlite3_column_text(s, 2);
        enum kiln_status st = kiln_err_set(
            err, KILN_ERR_FORMAT,
            "%s: records row (iteration %.32s, key '%.64s', kind '%.16s') breaks the schema: "
            "its iteration, key, kind or value is not what a kiln log holds",
            path, sqlite3_column_text(s, 0) ? (const char *)sqlite3_column_text(s, 0) : "NULL",
            k ? k : "NULL", kind ? kind : "NULL");
        sqlite3_finalize(s);
        return st;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return fail_sql(d, rc, err, "checking the records");

    /* 2. */
    rc = sqlite3_prepare_v2(d->db, "PRAGMA quick_check(1)", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return fail_sql(d, rc, err, "checking the file");
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(s, 0);
        if (!r || strcmp(r, "ok") != 0) {
            enum kiln_status st = kiln_err_set(err, KILN_ERR_FORMAT, "%s: the database is damaged: %.200s",
                                               path, r ? r : "?");
            sqlite3_finalize(s);
            return st;
        }
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW)
        return fail_sql(d, rc, err, "checking the file");

    /* 3. */
    int64_t n = 0, last = 0;
    if ((rc = query_int(d, "SELECT count(*) FROM status WHERE key IN ('iterations_done', "
                           "'epochs_done') AND typeof(value) = 'integer' AND value >= 0", &n)) != SQLITE_OK ||
        (rc = query_int(d, "SELECT value FROM status WHERE key = 'iterations_done'",
                        &d->iterations_done)) != SQLITE_OK ||
        (rc = query_int(d, "SELECT value FROM status WHERE key = 'epochs_done'", &d->epochs_done)) !=
            SQLITE_OK ||
        (rc = query_int(d, "SELECT coalesce(max(iteration), 0) FROM records", &last)) != SQLITE_OK)
        return fail_sql(d, rc, err, "reading the status");
    if (n != 2)
        return kiln_err_set(err, KILN_ERR_FORMAT,
                            "%s: the status table lacks iterations_done or epochs_done (integers "
                            ">= 0)",
                            path);
    if (last > d->iterations_done)
        return kiln_err_set(err, KILN_ERR_FORMAT,
                            "%s: records reach iteration %lld but the status says iterations_done "
                            "= %lld",
                            path, (long long)last, (long long)d->iterations_done);
    return KILN_OK;
}

/* Plan: 1. open the connection, defensive, untrusted schema, busy timeout;
** 2. read the header (a file that is no database fails here); 3. an empty
** database gets kiln's schema, anything else is checked; 4. WAL journal;
** 5. prepare the statements. */
enum kiln_status kiln_logdb_open(const char *path, kiln_logdb **out, kiln_err *err)
{
    *out = NULL;
    if (!path || !path[0])
        return kiln_err_set(err, KILN_ERR_ARG, "SQLite log: the database path is %s",
                            path ? "empty" : "NULL");
    kiln_logdb *d = calloc(1, sizeof *d);
    if (!d || !(d->path = kiln_strdup(path))) {
        free(d);
        return kiln_err_set(err, KILN_ERR_NOMEM, "SQLite log: out of memory");
    }
    enum kiln_status st = KILN_OK;

    /* 1. */
    int rc = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        st = d->db ? fail_sql(d, rc, err, "cannot open the log")
                   : kiln_err_set(err, KILN_ERR_NOMEM, "SQLite log: out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(d->db, 1);
    sqlite3_db_config(d->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(d->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    sqlite3_busy_timeout(d->db, KILN_LOGDB_BUSY_MS);

    /* 2. */
    int64_t app = 0, version = 0, objects = 0;
    if ((rc = query_int(d, "PRAGMA application_id", &app)) != SQLITE_OK ||
        (rc = query_int(d, "PRAGMA user_version", &version)) != SQLITE_OK ||
        (rc = query_int(d, "SELECT count(*) FROM sqlite_schema", &objects)) != SQLITE_OK) {
        st = (rc & 0xff) == SQLITE_NOTADB
                 ? kiln_err_set(err, KILN_ERR_FORMAT,
                                "%s: not an SQLite database, so not a kiln log (%s)",
                                kiln_path_show(path).s, sqlite3_errmsg(d->db))
                 : fail_sql(d, rc, err, "reading the file");
        goto fail;
    }

    /* 3. */
    if (app == 0 && version == 0 && objects == 0) {
        st = create_schema(d, err);
    } else if (app != KILN_LOGDB_APP_ID) {
        st = kiln_err_set(err, KILN_ERR_FORMAT,
                          "%s: an SQLite database, but not a kiln log (application_id %#llx, a "
                          "kiln log has %#x)",
                          kiln_path_show(path).s, (unsigned long long)(uint32_t)app,
                          KILN_LOGDB_APP_ID);
    } else if (version != KILN_LOGDB_VERSION) {
        st = kiln_err_set(err, KILN_ERR_FORMAT,
                          "%s: a kiln log of schema version %lld, this kiln reads version %d%s",
                          kiln_path_show(path).s, (long long)version, KILN_LOGDB_VERSION,
                          version > KILN_LOGDB_VERSION ? " (written by a newer kiln)" : "");
    } else {
        st = check_schema(d, err);
        if (st == KILN_OK)
            st = check_contents(d, err);
    }
    if (st != KILN_OK)
        goto fail;

    /* 4. WAL may be refused (a file system without shared memory): the
    ** rollback journal is as safe, only readers then wait for commits. */
    exec(d, "PRAGMA journal_mode = WAL");
    exec(d, "PRAGMA synchronous = NORMAL");

    /* 5. */
    for (int i = 0; i < N_STMTS; i++)
        if ((rc = sqlite3_prepare_v3(d->db, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT,
                                     &d->stmt[i], NULL)) != SQLITE_OK) {
            st = fail_sql(d, rc, err, "preparing the log's statements");
            goto fail;
        }
    *out = d;
    return KILN_OK;

fail:
    kiln_logdb_close(d);
    return st;
}

static void scratch_free(kiln_logdb *d)
{
    for (int i = 0; i < d->row.n_records; i++) {
        free(d->row.records[i].key);
        free(d->row.records[i].text);
    }
    d->row.n_records = 0;
    free(d->rec.key);
    free(d->rec.text);
    d->rec = (kiln_log_record){0};
}

void kiln_logdb_close(kiln_logdb *d)
{
    if (!d)
        return;
    if (d->in_transaction)
        sqlite3_step(d->stmt[STMT_COMMIT]);
    for (int i = 0; i < N_STMTS; i++)
        sqlite3_finalize(d->stmt[i]);
    sqlite3_close(d->db);
    scratch_free(d);
    free(d->row.records);
    free(d->path);
    free(d);
}

/* ---- Writing ------------------------------------------------------------------ */

/* Run a statement that returns no row, and reset it. */
static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static enum kiln_status begin(kiln_logdb *d, kiln_err *err)
{
    if (d->in_transaction)
        return KILN_OK;
    int rc = step_done(d->stmt[STMT_BEGIN]);
    if (rc != SQLITE_OK)
        return fail_sql(d, rc, err, "starting a transaction");
    d->in_transaction = true;
    d->opened_at = now_seconds();
    return KILN_OK;
}

enum kiln_status kiln_logdb_put(kiln_logdb *d, int64_t iteration, const char *key,
                                enum kiln_log_kind kind, double value, const char *text,
                                kiln_err *err)
{
    enum kiln_status st = begin(d, err);
    if (st != KILN_OK)
        return st;
    sqlite3_stmt *s = d->stmt[STMT_PUT];
    sqlite3_bind_int64(s, 1, iteration);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, kind_name(kind), -1, SQLITE_STATIC);
    if (kind == KILN_LOG_TEXT) {
        sqlite3_bind_null(s, 4);
        sqlite3_bind_text(s, 5, text, -1, SQLITE_STATIC);
    } else {
        if (isnan(value))
            sqlite3_bind_null(s, 4); /* SQLite has no NaN */
        else
            sqlite3_bind_double(s, 4, value);
        sqlite3_bind_null(s, 5);
    }
    int rc = step_done(s);
    if (rc != SQLITE_OK)
        return fail_sql(d, rc, err, "writing a record");
    return KILN_OK;
}

/* The status is written only when committing: a transaction holds the
** records of the iterations since the last commit, and the commit stamps
** them with the status they reached. */
enum kiln_status kiln_logdb_advance(kiln_logdb *d, int64_t iterations_done, int64_t epochs_done,
                                    bool force, kiln_err *err)
{
    if (!d->in_transaction && iterations_done == d->iterations_done &&
        epochs_done == d->epochs_done)
        return KILN_OK; /* nothing new */
    enum kiln_status st = KILN_OK;
    if (!force) {
        if (!d->in_transaction)
            return begin(d, err); /* the clock starts: commit later */
        if (now_seconds() - d->opened_at < KILN_LOGDB_COMMIT_SECONDS)
            return KILN_OK;
    }
    if ((st = begin(d, err)) != KILN_OK)
        return st;
    sqlite3_stmt *s = d->stmt[STMT_STATUS];
    sqlite3_bind_int64(s, 1, iterations_done);
    sqlite3_bind_int64(s, 2, epochs_done);
    int rc = step_done(s);
    if (rc == SQLITE_OK)
        rc = step_done(d->stmt[STMT_COMMIT]);
    if (rc != SQLITE_OK)
        return fail_sql(d, rc, err, "committing");
    d->in_transaction = false;
    d->iterations_done = iterations_done;
    d->epochs_done = epochs_done;
    return KILN_OK;
}

enum kiln_status kiln_logdb_truncate(kiln_logdb *d, int64_t iteration, int64_t epochs_done,
                                     kiln_err *err)
{
    enum kiln_status st = begin(d, err);
    if (st != KILN_OK)
        return st;
    sqlite3_bind_int64(d->stmt[STMT_TRUNCATE], 1, iteration);
    int rc = step_done(d->stmt[STMT_TRUNCATE]);
    if (rc != SQLITE_OK)
        return fail_sql(d, rc, err, "deleting the rows after a checkpoint");
    return kiln_logdb_advance(d, iteration, epochs_done, true, err);
}

void kiln_logdb_status(const kiln_logdb *d, int64_t *iterations_done, int64_t *epochs_done)
{
    *iterations_done = d->iterations_done;
    *epochs_done = d->epochs_done;
}

/* ---- Reading ------------------------------------------------------------------- */

/* Fill r from columns kind, number, text starting at column c of s; the
** strings are copied (r->key is the caller's). */
static enum kiln_status read_value(kiln_logdb *d, sqlite3_stmt *s, int c, kiln_log_record *r,
                                   kiln_err *err)
{
    if (kind_parse(sqlite3_column_text(s, c), &r->kind) != 0)
        return kiln_err_set(err, KILN_ERR_FORMAT, "%s: a record has an unknown kind",
                            kiln_path_show(d->path).s);
    r->value = sqlite3_column_type(s, c + 1) == SQLITE_NULL ? NAN : sqlite3_column_double(s, c + 1);
    r->text = NULL;
    if (r->kind == KILN_LOG_TEXT) {
        const char *t = (const char *)sqlite3_column_text(s, c + 2);
        if (!(r->text = kiln_strdup(t ? t : "")))
            return kiln_err_set(err, KILN_ERR_NOMEM, "SQLite log: out of memory");
    }
    return KILN_OK;
}

enum kiln_status kiln_logdb_get(kiln_logdb *d, int64_t iteration, const char *key,
                                const kiln_log_record **out, kiln_err *err)
{
    scratch_free(d);
    *out = NULL;
    sqlite3_stmt *s = d->stmt[STMT_GET];
    sqlite3_bind_int64(s, 1, iteration);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    enum kiln_status st = KILN_OK;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        st = read_value(d, s, 0, &d->rec, err);
        if (st == KILN_OK && !(d->rec.key = kiln_strdup(key)))
            st = kiln_err_set(err, KILN_ERR_NOMEM, "SQLite log: out of memory");
        if (st == KILN_OK)
            *out = &d->rec;
    } else if (rc != SQLITE_DONE) {
        st = fail_sql(d, rc, err, "reading a record");
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return st;
}

enum kiln_status kiln_logdb_row(kiln_logdb *d, int64_t iteration, const kiln_log_row **out,
                                kiln_err *err)
{
    scratch_free(d);
    *out = NULL;
    d->row.iteration = iteration;
    sqlite3_stmt *s = d->stmt[STMT_ROW];
    sqlite3_bind_int64(s, 1, iteration);
    enum kiln_status st = KILN_OK;
    int rc;
    while (st == KILN_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (d->row.n_records == d->cap_row_records) {
            int cap = d->cap_row_records ? 2 * d->cap_row_records : 8;
            kiln_log_record *r = realloc(d->row.records, (size_t)cap * sizeof *r);
            if (!r) {
                st = kiln_err_set(err, KILN_ERR_NOMEM, "SQLite log: out of memory");
                break;
            }
            d->row.records = r;
            d->cap_row_records = cap;
        }
        kiln_log_record *r = &d->row.records[d->row.n_records];
        *r = (kiln_log_record){0};
        const char *k = (const char *)sqlite3_column_text(s, 0);
        if (!(r->key = kiln_strdup(k ? k : "")))
            st = kiln_err_set(err, KILN_ERR_NOMEM, "SQLite log: out of memory");
        else if ((st = read_value(d, s, 1, r, err)) != KILN_OK)
            free(r->key);
        else
            d->row.n_records++;
    }
    if (st == KILN_OK && rc != SQLITE_DONE)
        st = fail_sql(d, rc, err, "reading a row");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (st == KILN_OK && d->row.n_records > 0)
        *out = &d->row;
    return st;
}
