/* netjson.h (internal): a graph as the JSON description of a network file,
** and a graph rebuilt from one (netjson.c). The HDF5 file around it, with
** the parameters' values, is runtime/network.c's; docs/network-files.md
** describes both. */
#ifndef KILN_COMPILER_NETJSON_H
#define KILN_COMPILER_NETJSON_H

#include "compiler/graph.h"

/* The format written in the description ("format") and the HDF5 file's
** root attribute kiln_format. */
#define KILN_NETJSON_FORMAT "kiln-network"
/* Longest owner path a description may hold, terminator excluded. */
#define KILN_NETJSON_MAX_OWNER 1024
/* Longest dataset path of an entry's values, terminator excluded. */
#define KILN_NETJSON_MAX_DATASET 2048

/* A store entry (parameter or state) of a description: its facts and where
** its values are (an HDF5 path: "/parameters/mlp/linear_0/W"). Strings are
** borrowed from the description (reading) or owned by the output (writing). */
typedef struct kiln_netjson_entry {
    const char *name;
    const char *owner;     /* "" when none */
    const char *dataset;
    enum kiln_store_kind kind;
    enum kiln_dtype dtype; /* KILN_DTYPE_I32, else the graph's floats */
    kiln_shape shape;      /* constant dims */
    int64_t size;          /* element count */
    unsigned roles;
    kiln_param *param;     /* writing: the entry; reading: made after every check */
} kiln_netjson_entry;

/* ---- writing ---------------------------------------------------------------- */

typedef struct kiln_netjson_out {
    char *text;            /* the description, JSON (ASCII, compact) */
    size_t len;
    kiln_netjson_entry *entries;
    int n_entries;
} kiln_netjson_out;

/* Describe all of g (a user graph; a body reads nothing but its ARGs) with
** roots[0..n) named names[k] (distinct, 1..KILN_MAX_NAME bytes). *out is
** the caller's to free with kiln_netjson_out_free, even on failure. KILN_OK,
** or KILN_ERR_ARG, KILN_ERR_STATE (an entry without values),
** KILN_ERR_UNSUPPORTED, KILN_ERR_NOMEM with the message in err. */
enum kiln_status kiln_netjson_write(const kiln_graph *g, const kiln_node *roots, const char *const *names, int n,
                                    kiln_netjson_out *out, kiln_err *err);
void kiln_netjson_out_free(kiln_netjson_out *out);

/* ---- reading ---------------------------------------------------------------- */

/* What reading asks of the file around the description. */
typedef struct kiln_netjson_reader {
    const char *where;        /* prefix of messages: "net.h5: /network.json" */
    int64_t max_value_bytes;  /* every entry's values together, as doubles */
    /* Entry e, before any entry is made: KILN_OK, else a status with the
    ** message in err (naming the file and dataset). NULL: none. */
    enum kiln_status (*check)(void *user, const kiln_netjson_entry *e, kiln_err *err);
    /* Entry e's values into values[0..e->size), once it is made. NULL:
    ** parameters stay NaN, states 0. */
    enum kiln_status (*fill)(void *user, const kiln_netjson_entry *e, double *values, kiln_err *err);
    void *user;
} kiln_netjson_reader;

typedef struct kiln_netjson_result {
    kiln_graph *graph;     /* a user graph, owning the entries it made */
    int n_roots;
    char **root_names;     /* one allocation with the strings */
    kiln_node *roots;
} kiln_netjson_result;

/* Rebuild the graph of the description text[0..len) (untrusted: every
** node through the expression builders, every index, size and name
** checked). On success *res holds the graph and the roots (the caller's:
** kiln_netjson_result_free). KILN_OK, or KILN_ERR_FORMAT (the message, in
** err, names where, the JSON path and what is wrong), KILN_ERR_NOMEM, or
** a hook's status. */
enum kiln_status kiln_netjson_read(const char *text, size_t len, const kiln_netjson_reader *r,
                                   kiln_netjson_result *res, kiln_err *err);
void kiln_netjson_result_free(kiln_netjson_result *res);

#endif
