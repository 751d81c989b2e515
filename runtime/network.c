/* network.c: network files (kiln_network_save, kiln_network_load): an HDF5
** file around the JSON description of compiler/netjson.c.
**
** Layout (docs/network-files.md): kiln's 512-byte header (HDF5's user
** block: "kiln-network-file", the file's size, the SHA-256 of the rest),
** then the HDF5 file: root attributes kiln_format
** ("kiln-network"), kiln_format_version (int32) and kiln_version; the
** description as one fixed-length string dataset, /network.json; each store
** entry's values as a dataset at the path the description gives it
** (/parameters/mlp/linear_0/W, /states/random_state), in the graph's float
** type (int32 for int32 entries), contiguous, uncompressed. No time stamps
** are written, so one network gives the same bytes.
**
** Saving writes a pruned copy of the graph (kiln_graph_replace with no
** replacements: what the roots need). HDF5 makes the file in memory (its
** core driver; a network's values are in memory already); kiln writes the
** bytes to a temporary file beside the target, syncs it and renames it
** over the target: a failed save leaves no partial file and an old file
** whole. Rejected: letting HDF5 write the temporary file itself: when a
** write fails (a full disk), H5Fclose fails and leaves the file open in
** HDF5, which then crashes flushing it again at exit.
**
** Loading trusts nothing in the file. Before HDF5 parses the file, it
** must be a regular file whose header states its size and the SHA-256 of
** its HDF5 bytes: a truncated or damaged file is kiln's error, and HDF5's
** parser (which has memory errors on some damaged files: tests under ASan
** found a use after free in H5Aexists) only reads files as kiln wrote them
** (or as someone who wrote a new header made them: then its own checks). kiln reads only what it looks for, and checks each
** object before reading it: the format attribute and version first; every
** link on a path must be a hard link (a soft or external link could send
** HDF5 into another file); a dataset must have the type, rank and dims the
** description states, no external storage, no virtual layout, only the
** deflate, shuffle and Fletcher-32 filters (no filter plugin is ever
** loaded), and enough bytes stored for what it claims, so that a small
** file cannot make kiln allocate much more than its size (deflate shrinks
** at most ~1032:1); the description's entries are checked against their
** datasets before any is allocated. The description itself is netjson.c's
** to check. HDF5's own parser is trusted with the bytes of the file (it has
** had bugs with crafted files: docs/security.md).
** HDF5 prints its error stack by default: kiln turns that off for the
** duration of each call and puts the caller's handler back, and takes the
** innermost HDF5 message into its own. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler/graph.h"
#include "compiler/netjson.h"
#include "kiln/network.h"
#include "kiln_config.h"
#include "runtime/netfile.h"
#include "runtime/network_internal.h"

#define JSON_DATASET KILN_NETFILE_JSON
#define ATTR_FORMAT KILN_NETFILE_ATTR_FORMAT
#define ATTR_VERSION KILN_NETFILE_ATTR_VERSION
#define MAX_JSON_BYTES (INT64_C(256) << 20)
#define MAX_ATTR_STRING 256
/* kiln's header: the HDF5 user block, first in the file, which HDF5 and
** its tools skip (docs/network-files.md, "The header"). */
#define HEADER_BYTES KILN_NETFILE_HEADER_BYTES
#define HEADER_MAGIC KILN_NETFILE_MAGIC
#define SHA256_BYTES KILN_NETFILE_SHA256_BYTES
/* Bytes of values per stored byte, at most: deflate's best ratio is about
** 1032:1, and a float32 dataset becomes doubles. */
#define MAX_EXPANSION (2 * 1100)

_Static_assert(KILN_NETFILE_VERSION == KILN_NETWORK_FORMAT_VERSION, "netfile.h writes this version");

struct kiln_network {
    kiln_err err;
    kiln_netjson_result res;
};

/* =============================================================================
** Saving
** ========================================================================== */

enum kiln_status kiln_network_entry_dataset(const kiln_netjson_entry *e, kiln_netfile_dataset *d, kiln_err *err)
{
    *d = (kiln_netfile_dataset){.path = e->dataset, .rank = e->shape.rank, .mem_type = KILN_NETFILE_F64,
                                .data = kiln_param_data(e->param)};
    d->file_type = e->dtype == KILN_DTYPE_I32 ? KILN_NETFILE_I32 : e->dtype == KILN_DTYPE_F64 ? KILN_NETFILE_F64
                                                                                               : KILN_NETFILE_F32;
    for (int i = 0; i < e->shape.rank; i++)
        d->dims[i] = e->shape.dims[i];
    if (e->dtype != KILN_DTYPE_I32)
        return KILN_OK;
    /* values are int32 held as doubles */
    const double *v = kiln_param_data(e->param);
    int32_t *words = malloc(sizeof *words * ((size_t)e->size + 1));
    if (!words)
        return kiln_err_set(err, KILN_ERR_NOMEM, "%s: no memory", e->dataset);
    for (int64_t k = 0; k < e->size; k++) {
        if (!(v[k] >= INT32_MIN && v[k] <= INT32_MAX)) {
            free(words);
            return kiln_err_set(err, KILN_ERR_ARG, "%s: value %lld is %g, not an int32", e->dataset, (long long)k,
                                v[k]);
        }
        words[k] = (int32_t)v[k];
    }
    d->mem_type = KILN_NETFILE_I32;
    d->data = words;
    return KILN_OK;
}

/* Write out's description and entries to path (whole or not at all:
** runtime/netfile.c). */
static enum kiln_status write_file(const char *path, const kiln_netjson_out *out, kiln_err *err)
{
    kiln_shown_path shown = kiln_path_show(path);
    kiln_netfile_dataset *ds = calloc((size_t)out->n_entries + 1, sizeof *ds);
    if (!ds)
        return kiln_err_set(err, KILN_ERR_NOMEM, "%s: no memory", shown.s);
    enum kiln_status st = KILN_OK;
    int n = 0;
    for (; n < out->n_entries && !st; n++)
        if ((st = kiln_network_entry_dataset(&out->entries[n], &ds[n], err)))
            kiln_err_set(err, st, "%s: %s", shown.s, err->msg);
    if (!st) {
        char msg[KILN_ERRMSG_MAX];
        int r = kiln_netfile_write(path, shown.s, KILN_VERSION, out->text, out->len, ds, out->n_entries, msg,
                                   sizeof msg);
        if (r)
            st = kiln_err_set(err, r == KILN_NETFILE_ERR_NOMEM ? KILN_ERR_NOMEM : KILN_ERR_IO, "%s", msg);
    }
    for (int k = 0; k < n; k++)
        if (ds[k].mem_type == KILN_NETFILE_I32)
            free((void *)ds[k].data);
    free(ds);
    return st;
}

enum kiln_status kiln_network_describe(kiln_graph *g, const kiln_node *roots, const char *const *names, int n_roots,
                                       const char *what, const char *path, kiln_network_desc *d)
{
    memset(d, 0, sizeof *d);
    KILN_API_CHECK(g && roots && names && path);
    if (!g)
        return KILN_ERR_ARG;
    if (g->err.status)
        return g->err.status; /* a builder failed: its message stays */
    const char *null = !roots ? "roots" : !names ? "names" : !path ? "path" : NULL;
    if (null) {
        kiln_graph_fail(g, KILN_ERR_ARG, "%s: %s is NULL", what, null);
        return KILN_ERR_ARG;
    }
    if (n_roots < 1) {
        kiln_graph_fail(g, KILN_ERR_ARG, "%s: %d roots, expected at least one", what, n_roots);
        return KILN_ERR_ARG;
    }
    for (int k = 0; k < n_roots; k++)
        if (!kiln_graph_check(g, roots[k], what))
            return g->err.status;
    /* 1. What the roots need, as a graph of its own. */
    if (!(d->copy_roots = malloc(sizeof *d->copy_roots * (size_t)n_roots))) {
        kiln_graph_fail(g, KILN_ERR_NOMEM, "%s: no memory", what);
        return KILN_ERR_NOMEM;
    }
    enum kiln_status st = kiln_graph_replace(g, roots, n_roots, NULL, NULL, 0, &d->copy, d->copy_roots);
    if (st)
        return st; /* the message is on g */
    /* 2. Its description. */
    kiln_err err;
    d->described = true;
    if ((st = kiln_netjson_write(d->copy, d->copy_roots, names, n_roots, &d->out, &err)))
        kiln_graph_fail(g, st, "%s %s: %s", what, kiln_path_show(path).s, err.msg);
    return st;
}

void kiln_network_desc_free(kiln_network_desc *d)
{
    if (d->described)
        kiln_netjson_out_free(&d->out);
    kiln_graph_destroy(d->copy);
    free(d->copy_roots);
    memset(d, 0, sizeof *d);
}

enum kiln_status kiln_network_save(kiln_graph *g, const kiln_node *roots, const char *const *names, int n_roots,
                                   const char *path)
{
    static const char what[] = "kiln_network_save";
    kiln_network_desc d;
    enum kiln_status st = kiln_network_describe(g, roots, names, n_roots, what, path, &d);
    if (!st) {
        kiln_err err;
        kiln_h5quiet q;
        kiln_h5_quiet_begin(&q);
        st = write_file(path, &d.out, &err);
        kiln_h5_quiet_end(&q);
        if (st)
            kiln_graph_fail(g, st, "%s: %s", what, err.msg);
    }
    kiln_network_desc_free(&d);
    return st;
}

/* =============================================================================
** Loading
** ========================================================================== */

typedef struct rfile {
    hid_t file;
    const char *shown;
} rfile;

static enum kiln_status rbad(kiln_err *err, const rfile *f, const char *obj, const char *fmt, ...) KILN_PRINTF(4, 5);
static enum kiln_status rbad(kiln_err *err, const rfile *f, const char *obj, const char *fmt, ...)
{
    char what[KILN_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return kiln_err_set(err, KILN_ERR_FORMAT, "%s: %s: %s", f->shown, obj, what);
}

/* Every link on path, from the root down, is a hard link. */
static enum kiln_status hard_links(kiln_err *err, const rfile *f, const char *path)
{
    char buf[KILN_NETJSON_MAX_DATASET + 1];
    if (kiln_snprintf(buf, sizeof buf, "%s", path) != 0)
        return rbad(err, f, "", "a path longer than %d bytes", KILN_NETJSON_MAX_DATASET);
    for (char *s = strchr(buf + 1, '/');; s = strchr(s + 1, '/')) {
        if (s)
            *s = 0;
        H5L_info_t info;
        if (H5Lexists(f->file, buf, H5P_DEFAULT) <= 0 || H5Lget_info(f->file, buf, &info, H5P_DEFAULT) < 0) {
            H5Eclear2(H5E_DEFAULT);
            return rbad(err, f, path, "not in the file (%s is missing)", buf);
        }
        if (info.type != H5L_TYPE_HARD)
            return rbad(err, f, path, "%s is a soft or external link; kiln follows none", buf);
        if (!s)
            return KILN_OK;
        *s = '/';
    }
}

/* Open the dataset at path, every link on it hard, with its layout
** checked: no external storage, no virtual layout, no filter but deflate,
** shuffle and Fletcher-32. */
static enum kiln_status open_dataset(kiln_err *err, const rfile *f, const char *path, hid_t *out)
{
    enum kiln_status st = hard_links(err, f, path);
    if (st)
        return st;
    hid_t d = H5Dopen2(f->file, path, H5P_DEFAULT);
    if (d < 0)
        return rbad(err, f, path, "not a dataset (HDF5: %s)", kiln_h5_why().s);
    hid_t dcpl = H5Dget_create_plist(d);
    int nf = dcpl >= 0 ? H5Pget_nfilters(dcpl) : -1;
    if (dcpl < 0 || nf < 0)
        st = rbad(err, f, path, "unreadable creation properties (HDF5: %s)", kiln_h5_why().s);
    else if (H5Pget_layout(dcpl) == H5D_VIRTUAL || H5Pget_external_count(dcpl) != 0)
        st = rbad(err, f, path, "its values are stored in other files (virtual or external); kiln reads none");
    for (int k = 0; k < nf && !st; k++) {
        unsigned flags, cd[8];
        size_t n_cd = 8;
        char name[64];
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)k, &flags, &n_cd, cd, sizeof name, name, NULL);
        if (id != H5Z_FILTER_DEFLATE && id != H5Z_FILTER_SHUFFLE && id != H5Z_FILTER_FLETCHER32)
            st = rbad(err, f, path, "filtered with HDF5 filter %d; kiln reads deflate, shuffle and Fletcher-32 only",
                      (int)id);
    }
    kiln_h5_close(dcpl, H5Pclose);
    if (st) {
        H5Dclose(d);
        return st;
    }
    *out = d;
    return KILN_OK;
}

/* The dataset's stored bytes may hold its logical bytes (with deflate:
** MAX_EXPANSION times as many). */
static enum kiln_status stored_enough(kiln_err *err, const rfile *f, const char *path, hid_t d, int64_t logical)
{
    hid_t dcpl = H5Dget_create_plist(d);
    bool filtered = dcpl >= 0 && H5Pget_nfilters(dcpl) > 0;
    kiln_h5_close(dcpl, H5Pclose);
    hsize_t stored = H5Dget_storage_size(d);
    if ((int64_t)stored < 0 || (filtered ? (double)stored * MAX_EXPANSION < (double)logical : (int64_t)stored < logical))
        return rbad(err, f, path, "%lld bytes stored for %lld bytes of values (truncated, or never written)",
                    (long long)stored, (long long)logical);
    return KILN_OK;
}

static const char *dims_str(char *buf, size_t cap, int rank, const hsize_t *dims)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "(");
    for (int i = 0; i < rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, "%s)", rank == 1 ? "," : "");
    return buf;
}

/* Entry e's dataset, opened and checked against e: type, dims, storage. */
static enum kiln_status entry_dataset(const rfile *f, const kiln_netjson_entry *e, hid_t *out, kiln_err *err)
{
    hid_t d, t = -1, s = -1;
    enum kiln_status st = open_dataset(err, f, e->dataset, &d);
    if (st)
        return st;
    t = H5Dget_type(d);
    s = H5Dget_space(d);
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    size_t size = t >= 0 ? H5Tget_size(t) : 0;
    bool type_ok = e->dtype == KILN_DTYPE_I32 ? cls == H5T_INTEGER && size == 4 && H5Tget_sign(t) == H5T_SGN_2
                                              : cls == H5T_FLOAT && (size == 4 || size == 8);
    int rank = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    hsize_t dims[KILN_MAX_RANK + 1];
    char a[KILN_SHAPE_STR_MAX], b[KILN_SHAPE_STR_MAX];
    bool dims_ok = rank == e->shape.rank && (rank == 0 ? H5Sget_simple_extent_type(s) == H5S_SCALAR
                                                       : H5Sget_simple_extent_dims(s, dims, NULL) == rank);
    for (int i = 0; dims_ok && i < rank; i++)
        dims_ok = dims[i] == (hsize_t)e->shape.dims[i];
    if (!type_ok)
        st = rbad(err, f, e->dataset, "its values are not %s", e->dtype == KILN_DTYPE_I32 ? "int32" : "floats");
    else if (!dims_ok)
        st = rbad(err, f, e->dataset, "shape %s, the description says %s",
                  rank < 0 || rank > KILN_MAX_RANK ? "unreadable or of too many axes"
                                                   : (H5Sget_simple_extent_dims(s, dims, NULL), dims_str(a, sizeof a, rank, dims)),
                  kiln_shape_str(NULL, &e->shape, b, sizeof b));
    else
        st = stored_enough(err, f, e->dataset, d, e->size * (int64_t)size);
    kiln_h5_close(t, H5Tclose);
    kiln_h5_close(s, H5Sclose);
    if (st) {
        H5Dclose(d);
        return st;
    }
    *out = d;
    return KILN_OK;
}

static enum kiln_status check_entry(void *user, const kiln_netjson_entry *e, kiln_err *err)
{
    hid_t d;
    enum kiln_status st = entry_dataset(user, e, &d, err);
    if (!st)
        H5Dclose(d);
    return st;
}

static enum kiln_status fill_entry(void *user, const kiln_netjson_entry *e, double *values, kiln_err *err)
{
    const rfile *f = user;
    hid_t d;
    enum kiln_status st = entry_dataset(f, e, &d, err);
    if (st)
        return st;
    int32_t *words = e->dtype == KILN_DTYPE_I32 ? malloc(sizeof *words * (size_t)e->size) : NULL;
    if (e->dtype == KILN_DTYPE_I32 && !words)
        st = kiln_err_set(err, KILN_ERR_NOMEM, "%s: %s: no memory", f->shown, e->dataset);
    else if (H5Dread(d, words ? H5T_NATIVE_INT32 : H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                     words ? (void *)words : (void *)values) < 0)
        st = rbad(err, f, e->dataset, "cannot read its values (HDF5: %s)", kiln_h5_why().s);
    for (int64_t k = 0; words && !st && k < e->size; k++)
        values[k] = words[k];
    free(words);
    H5Dclose(d);
    return st;
}

/* A root attribute: a fixed-length string of at most MAX_ATTR_STRING bytes
** into buf (cap > MAX_ATTR_STRING), or an integer. false: missing or of
** another type (the message says which). */
static enum kiln_status read_attr(kiln_err *err, const rfile *f, const char *name, char *buf, int64_t *num)
{
    if (H5Aexists(f->file, name) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return rbad(err, f, "/", "no attribute %s: not a kiln network file", name);
    }
    hid_t a = H5Aopen(f->file, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1;
    hid_t s = a >= 0 ? H5Aget_space(a) : -1;
    enum kiln_status st = KILN_OK;
    bool scalar = s >= 0 && H5Sget_simple_extent_type(s) == H5S_SCALAR;
    if (t < 0 || !scalar) {
        st = rbad(err, f, "/", "attribute %s is not a single value", name);
    } else if (buf) {
        size_t size = H5Tget_size(t);
        hid_t mt = H5Tcopy(t);
        if (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) > 0 || size == 0 || size > MAX_ATTR_STRING)
            st = rbad(err, f, "/", "attribute %s is not a string of 1 to %d bytes", name, MAX_ATTR_STRING);
        else if (mt < 0 || H5Aread(a, mt, buf) < 0)
            st = rbad(err, f, "/", "cannot read attribute %s (HDF5: %s)", name, kiln_h5_why().s);
        else
            buf[size] = 0;
        kiln_h5_close(mt, H5Tclose);
    } else {
        long long v = 0;
        if (H5Tget_class(t) != H5T_INTEGER)
            st = rbad(err, f, "/", "attribute %s is not an integer", name);
        else if (H5Aread(a, H5T_NATIVE_LLONG, &v) < 0)
            st = rbad(err, f, "/", "cannot read attribute %s (HDF5: %s)", name, kiln_h5_why().s);
        *num = v;
    }
    kiln_h5_close(s, H5Sclose);
    kiln_h5_close(t, H5Tclose);
    kiln_h5_close(a, H5Aclose);
    return st;
}

/* The description: /network.json, a fixed-length string, into *text. */
static enum kiln_status read_json(kiln_err *err, const rfile *f, char **text, size_t *len)
{
    hid_t d;
    enum kiln_status st = open_dataset(err, f, JSON_DATASET, &d);
    if (st)
        return st;
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    size_t size = t >= 0 ? H5Tget_size(t) : 0;
    if (t < 0 || H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) > 0 || s < 0 ||
        H5Sget_simple_extent_type(s) != H5S_SCALAR || size == 0 || (int64_t)size > MAX_JSON_BYTES)
        st = rbad(err, f, JSON_DATASET, "not one string of 1 to %lld bytes", (long long)MAX_JSON_BYTES);
    if (!st)
        st = stored_enough(err, f, JSON_DATASET, d, (int64_t)size);
    if (!st && !(*text = malloc(size + 1)))
        st = kiln_err_set(err, KILN_ERR_NOMEM, "%s: %s: no memory for %zu bytes", f->shown, JSON_DATASET, size);
    if (!st && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, *text) < 0)
        st = rbad(err, f, JSON_DATASET, "cannot read it (HDF5: %s)", kiln_h5_why().s);
    if (!st) {
        (*text)[size] = 0;
        *len = strlen(*text); /* null padding */
    }
    kiln_h5_close(s, H5Sclose);
    kiln_h5_close(t, H5Tclose);
    H5Dclose(d);
    return st;
}

/* kiln's header of the file open at fd (size bytes), checked before HDF5
** reads a byte: the magic, the size it states, zeros after its lines, and
** the SHA-256 of everything after it. A damaged or truncated file stops
** here, so HDF5's parser only sees files as kiln wrote them. */
static enum kiln_status check_header(int fd, int64_t size, const char *shown, kiln_err *err)
{
    char hdr[HEADER_BYTES + 1];
    if (size < HEADER_BYTES)
        return kiln_err_set(err, KILN_ERR_FORMAT, "%s: %lld bytes, shorter than a network file's %d-byte header: "
                            "not a kiln network file, or a truncated one", shown, (long long)size, HEADER_BYTES);
    if (kiln_netfile_io_at(fd, hdr, HEADER_BYTES, 0, false) != 0)
        return kiln_err_set(err, KILN_ERR_IO, "%s: cannot read: %s", shown, strerror(errno));
    hdr[HEADER_BYTES] = 0;
    if (memcmp(hdr, HEADER_MAGIC, strlen(HEADER_MAGIC)) != 0)
        return kiln_err_set(err, KILN_ERR_FORMAT, "%s: byte 0: no \"kiln-network-file\" header: not a kiln network "
                            "file%s", shown, memcmp(hdr, "\x89HDF\r\n\x1a\n", 8) == 0 ? " (an HDF5 file kiln did not write)" : "");
    unsigned long long stated = 0;
    char hex[2 * SHA256_BYTES + 1] = "";
    int used = 0;
    if (sscanf(hdr + strlen(HEADER_MAGIC), "size %llu\nsha256 %64[0-9a-f]\n%n", &stated, hex, &used) != 2 || !used ||
        strlen(hex) != 2 * SHA256_BYTES)
        return kiln_err_set(err, KILN_ERR_FORMAT, "%s: byte 0: a damaged header (expected its size and sha256 lines)",
                            shown);
    for (size_t i = strlen(HEADER_MAGIC) + (size_t)used; i < HEADER_BYTES; i++)
        if (hdr[i])
            return kiln_err_set(err, KILN_ERR_FORMAT, "%s: byte %zu: a damaged header (not zero after its lines)",
                                shown, i);
    if (stated != (unsigned long long)size)
        return kiln_err_set(err, KILN_ERR_FORMAT, "%s: %lld bytes, its header says %llu: %s", shown, (long long)size,
                            stated, (unsigned long long)size < stated ? "truncated" : "bytes added after its end");
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    enum { CHUNK = 1 << 16 };
    char *buf = malloc(CHUNK);
    enum kiln_status st = KILN_OK;
    if (!h || !buf || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1)
        st = kiln_err_set(err, KILN_ERR_NOMEM, "%s: no memory to check its SHA-256", shown);
    for (int64_t off = HEADER_BYTES; !st && off < size; off += CHUNK) {
        size_t n = (size_t)(size - off < CHUNK ? size - off : CHUNK);
        if (kiln_netfile_io_at(fd, buf, n, (off_t)off, false) != 0)
            st = kiln_err_set(err, KILN_ERR_IO, "%s: cannot read: %s", shown, strerror(errno));
        else if (EVP_DigestUpdate(h, buf, n) != 1)
            st = kiln_err_set(err, KILN_ERR_NOMEM, "%s: cannot compute its SHA-256", shown);
    }
    unsigned char md[SHA256_BYTES];
    unsigned len = 0;
    if (!st && (EVP_DigestFinal_ex(h, md, &len) != 1 || len != SHA256_BYTES))
        st = kiln_err_set(err, KILN_ERR_NOMEM, "%s: cannot compute its SHA-256", shown);
    for (int i = 0; !st && i < SHA256_BYTES; i++) {
        unsigned byte = 0;
        sscanf(hex + 2 * i, "%2x", &byte);
        if (byte != md[i])
            st = kiln_err_set(err, KILN_ERR_FORMAT, "%s: bytes %d to %lld: their SHA-256 is not the header's: the "
                              "file is damaged, or was changed after kiln wrote it", shown, HEADER_BYTES,
                              (long long)size - 1);
    }
    EVP_MD_CTX_free(h);
    free(buf);
    return st;
}

static enum kiln_status load(kiln_network *net, const char *path)
{
    kiln_shown_path shown = kiln_path_show(path);
    rfile f = {.file = -1, .shown = shown.s};
    struct stat sb;
    /* 1. A regular file, then HDF5, then ours in the version we read. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        enum kiln_status st = kiln_err_set(&net->err, KILN_ERR_IO, "%s: cannot open: %s", shown.s, strerror(errno));
        if (fd >= 0)
            close(fd);
        return st;
    }
    enum kiln_status hst = S_ISREG(sb.st_mode) ? check_header(fd, (int64_t)sb.st_size, shown.s, &net->err)
                                                : kiln_err_set(&net->err, KILN_ERR_IO, "%s: not a regular file", shown.s);
    close(fd);
    if (hst)
        return hst;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 ||
        (f.file = H5Fopen(path, H5F_ACC_RDONLY, fapl)) < 0) {
        kiln_h5why w = kiln_h5_why(); /* before H5Pclose, which clears HDF5's error stack */
        kiln_h5_close(fapl, H5Pclose);
        return kiln_err_set(&net->err, KILN_ERR_FORMAT, "%s: not an HDF5 file, or a damaged one (HDF5: %s)", shown.s,
                            w.s);
    }
    H5Pclose(fapl);
    char format[MAX_ATTR_STRING + 1];
    int64_t version = 0;
    char *text = NULL;
    size_t len = 0;
    enum kiln_status st = read_attr(&net->err, &f, ATTR_FORMAT, format, NULL);
    if (!st && strcmp(format, KILN_NETJSON_FORMAT) != 0)
        st = rbad(&net->err, &f, "/", "kiln_format is \"%.40s\", not \"%s\"", format, KILN_NETJSON_FORMAT);
    if (!st)
        st = read_attr(&net->err, &f, ATTR_VERSION, NULL, &version);
    if (!st && version != KILN_NETWORK_FORMAT_VERSION)
        st = rbad(&net->err, &f, "/", "format version %lld; kiln %s reads version %d", (long long)version,
                  KILN_VERSION, KILN_NETWORK_FORMAT_VERSION);
    /* 2. The description, its entries checked against their datasets
    ** before any is made, then filled. */
    if (!st)
        st = read_json(&net->err, &f, &text, &len);
    if (!st) {
        char where[KILN_PATH_SHOWN + 32];
        snprintf(where, sizeof where, "%s: %s", shown.s, JSON_DATASET);
        int64_t budget = (int64_t)sb.st_size > KILN_MAX_BYTES / MAX_EXPANSION ? KILN_MAX_BYTES
                                                                              : ((int64_t)sb.st_size + 4096) * MAX_EXPANSION;
        kiln_netjson_reader r = {.where = where, .max_value_bytes = budget, .check = check_entry, .fill = fill_entry,
                                 .user = &f};
        st = kiln_netjson_read(text, len, &r, &net->res, &net->err);
    }
    free(text);
    if (H5Fclose(f.file) < 0 && !st)
        st = rbad(&net->err, &f, "/", "cannot close (HDF5: %s)", kiln_h5_why().s);
    return st;
}

enum kiln_status kiln_network_load(const char *path, kiln_network **out)
{
    KILN_API_CHECK(path && out);
    if (!out)
        return KILN_ERR_ARG;
    kiln_network *net = calloc(1, sizeof *net);
    *out = net;
    if (!net)
        return KILN_ERR_NOMEM;
    if (!path)
        return kiln_err_set(&net->err, KILN_ERR_ARG, "kiln_network_load: path is NULL");
    kiln_h5quiet q;
    kiln_h5_quiet_begin(&q);
    enum kiln_status st = load(net, path);
    kiln_h5_quiet_end(&q);
    if (st)
        kiln_netjson_result_free(&net->res);
    return st;
}

void kiln_network_destroy(kiln_network *net)
{
    if (!net)
        return;
    kiln_netjson_result_free(&net->res);
    free(net);
}

const char *kiln_network_errmsg(const kiln_network *net)
{
    if (!net)
        return "no network (NULL)";
    return net->err.status == KILN_OK ? "ok" : net->err.msg;
}

kiln_graph *kiln_network_graph(const kiln_network *net) { return net ? net->res.graph : NULL; }
kiln_err *kiln_network_err(kiln_network *net) { return &net->err; }
int kiln_network_root_count(const kiln_network *net) { return net ? net->res.n_roots : 0; }

const char *kiln_network_root_name(const kiln_network *net, int i)
{
    if (!net || i < 0 || i >= net->res.n_roots)
        return "";
    return net->res.root_names[i];
}

kiln_node kiln_network_root(const kiln_network *net, const char *name)
{
    if (!net || !name)
        return KILN_NODE_NONE;
    for (int k = 0; k < net->res.n_roots; k++)
        if (strcmp(net->res.root_names[k], name) == 0)
            return net->res.roots[k];
    return KILN_NODE_NONE;
}
