/* checkpoint.c: checkpoints in HDF5 that resume a run exactly (Blocks'
** Checkpoint and Load extensions, secure_dump).
**
** The file (docs/checkpoints.md has the layout for h5py and h5dump users):
**   /                       format, format_version, kiln_version,
**                           program_sha256, content_sha256 (attributes)
**   /params/<owner>/<name>  each parameter, its dtype and shape
**   /states/<owner>/<name>  each state: optimiser state, hyperparameters,
**                           the random state
**   /loop                   the main loop's status (attributes)
**   /data                   the stream: position, order, shuffle generator
**   /log                    the log's records, one per entry of five arrays
** Names come from the program in plan order, the same way on save and on
** load (a path that repeats gets _2, _3, as Blocks' PersistentParameterID).
**
** Saving: 1. mkstemp a temporary file beside the path (so the rename stays
** on one file system, and a missing folder fails before anything is
** written); 2. write every item through one writer that also feeds a
** SHA-256 of the contents in a fixed order; 3. close, fsync, rename over the
** path, fsync the folder. A crash before the rename leaves the old file (and
** a temporary one); after it, the new file. Blocks' secure_dump does the
** same with a temporary file and shutil.move.
**
** Loading: the file is untrusted. 1. open it (HDF5 finds truncation: its
** superblock records the end of file, and with the newest format every
** piece of metadata carries a checksum); 2. read every item into staging
** buffers, checking its type, rank and dims against what the program
** expects (and counts against the bytes the file really holds) before
** allocating or reading, and hash it in the writer's order; 3. compare the
** hash with content_sha256 (raw data has no HDF5 checksum: this catches a
** flipped byte anywhere) and program_sha256 with the program's; 4. check
** values (hyperparameter ranges; the stream checks its own); only then
** 5. copy into the program, stream, status and log. A failure at 1-4
** changes nothing.
** Rejected: HDF5's fletcher32 filter (needs chunked layout, which scalars
** and empty arrays cannot have) and a checksum of the file's bytes (the
** file cannot hold its own checksum; a side file can be lost).
**
** HDF5 prints its error stack by default; each call here silences it for
** its own duration and restores what was set (no global change), and reads
** the innermost HDF5 message into ours. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/checkpoint.h"
#include "kiln_config.h"
#include "runtime/mainloop.h"
#include "runtime/program_internal.h"
#include "runtime/stream_state.h"

#define FORMAT_NAME "kiln checkpoint"
#define FORMAT_VERSION 1
#define SHA_HEX 64
/* Longest path of an item in the file. */
#define ITEM_MAX 1024
/* Most records a log in a checkpoint may have (an untrusted count). */
#define LOG_MAX_RECORDS (INT64_C(1) << 28)
#define KEY_BYTES (KILN_MAX_NAME + 1)
#define TEXT_BYTES (KILN_LOG_TEXT_MAX + 1)

/* Item types: the tag hashed with each item, its HDF5 file and memory types. */
enum item_type { T_F32, T_F64, T_I32, T_I64, T_U32, T_STR };

/* A parameter or state: its path in the file, the program's slot, and on
** load the staged values. */
typedef struct ck_slot {
    char path[ITEM_MAX];
    kiln_program_slot s;
    void *buf;
} ck_slot;

typedef struct ck_log_entry {
    int64_t iteration;
    int32_t kind;
    double value;
    char key[KEY_BYTES];
    char *text; /* owned; NULL unless text */
} ck_log_entry;

/* One save or load: the file, the hash, and what was read. */
typedef struct ck {
    const char *file;     /* the path, for messages */
    kiln_err *err;
    hid_t f;
    EVP_MD_CTX *h;
    H5E_auto2_t saved_fn; /* HDF5's error printer, restored at the end */
    void *saved_data;
    char program_sha[SHA_HEX + 1];
    int n_params, n_states;
    ck_slot *slots;       /* params then states */
    bool has_loop, has_data, has_log;
    int64_t loop[4];      /* iterations_done, epochs_done, epoch_started, received_first_batch */
    kiln_stream_state ss;
    int64_t *order, *border;
    int64_t n_log;
    ck_log_entry *log;
    bool log_in_sqlite;
} ck;

static htri_t link_exists(hid_t f, const char *path);

/* ---- errors and HDF5's ---------------------------------------------------- */

static enum kiln_status ck_fail(ck *c, enum kiln_status st, const char *fmt, ...) KILN_PRINTF(3, 4);
static enum kiln_status ck_fail(ck *c, enum kiln_status st, const char *fmt, ...)
{
    char what[KILN_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return kiln_err_set(c->err, st, "%s: %s", c->file, what);
}

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data)
{
    if (e->desc && *e->desc)
        kiln_snprintf(data, 256, "%s", e->desc);
    return 0;
}

/* The innermost message of HDF5's error stack ("" when none). */
static const char *h5_reason(char buf[256])
{
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, innermost, buf);
    return buf;
}

static enum kiln_status h5_fail(ck *c, enum kiln_status st, const char *what, const char *item)
{
    char r[256];
    h5_reason(r);
    return ck_fail(c, st, "%s%s%s%s%s", item ? item : "", item ? ": " : "", what, *r ? ": " : "", r);
}

static void ck_begin(ck *c, const char *file, kiln_err *err)
{
    memset(c, 0, sizeof *c);
    c->file = file;
    c->err = err;
    c->f = H5I_INVALID_HID;
    H5Eget_auto2(H5E_DEFAULT, &c->saved_fn, &c->saved_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void ck_end(ck *c)
{
    if (c->f >= 0)
        H5Fclose(c->f);
    EVP_MD_CTX_free(c->h);
    for (int i = 0; c->slots && i < c->n_params + c->n_states; i++)
        free(c->slots[i].buf);
    free(c->slots);
    free(c->order);
    free(c->border);
    for (int64_t i = 0; c->log && i < c->n_log; i++)
        free(c->log[i].text);
    free(c->log);
    H5Eset_auto2(H5E_DEFAULT, c->saved_fn, c->saved_data);
}

/* ---- hashing ------------------------------------------------------------------ */

static void hash_hex(const unsigned char *md, char hex[SHA_HEX + 1])
{
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static bool sha256_hex(const void *data, size_t n, char hex[SHA_HEX + 1])
{
    unsigned char md[32];
    unsigned len = 0;
    if (EVP_Digest(data, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return false;
    hash_hex(md, hex);
    return true;
}

/* An item into the content hash: its path, type, dims and bytes. */
static void hash_item(ck *c, const char *path, enum item_type t, int rank, const int64_t *dims,
                      const void *data, size_t bytes)
{
    int64_t r = rank, tag = t;
    EVP_DigestUpdate(c->h, path, strlen(path) + 1);
    EVP_DigestUpdate(c->h, &tag, sizeof tag);
    EVP_DigestUpdate(c->h, &r, sizeof r);
    if (rank > 0)
        EVP_DigestUpdate(c->h, dims, (size_t)rank * sizeof *dims);
    if (bytes)
        EVP_DigestUpdate(c->h, data, bytes);
}

static bool hash_start(ck *c)
{
    c->h = EVP_MD_CTX_new();
    return c->h && EVP_DigestInit_ex(c->h, EVP_sha256(), NULL) == 1;
}

static bool hash_finish(ck *c, char hex[SHA_HEX + 1])
{
    unsigned char md[32];
    unsigned len = 0;
    if (EVP_DigestFinal_ex(c->h, md, &len) != 1 || len != 32)
        return false;
    hash_hex(md, hex);
    return true;
}

/* ---- types -------------------------------------------------------------------- */

static size_t type_size(enum item_type t)
{
    switch (t) {
    case T_F32: case T_I32: case T_U32: return 4;
    case T_F64: case T_I64: return 8;
    case T_STR: return 1;
    }
    return 1;
}

static hid_t file_type(enum item_type t)
{
    switch (t) {
    case T_F32: return H5T_IEEE_F32LE;
    case T_F64: return H5T_IEEE_F64LE;
    case T_I32: return H5T_STD_I32LE;
    case T_I64: return H5T_STD_I64LE;
    case T_U32: return H5T_STD_U32LE;
    case T_STR: return H5T_C_S1;
    }
    return H5T_C_S1;
}

static hid_t mem_type(enum item_type t)
{
    switch (t) {
    case T_F32: return H5T_NATIVE_FLOAT;
    case T_F64: return H5T_NATIVE_DOUBLE;
    case T_I32: return H5T_NATIVE_INT32;
    case T_I64: return H5T_NATIVE_INT64;
    case T_U32: return H5T_NATIVE_UINT32;
    case T_STR: return H5T_C_S1;
    }
    return H5T_C_S1;
}

static const char *type_name(enum item_type t)
{
    static const char *const names[] = {"float32", "float64", "int32", "int64", "uint32", "string"};
    return names[t];
}

static enum item_type dtype_item(enum kiln_dtype d)
{
    return d == KILN_DTYPE_F64 ? T_F64 : d == KILN_DTYPE_I32 ? T_I32 : T_F32;
}

/* The item type of an HDF5 type, or -1 for one kiln never writes. */
static int item_of(hid_t t)
{
    H5T_class_t k = H5Tget_class(t);
    size_t n = H5Tget_size(t);
    if (k == H5T_FLOAT)
        return n == 4 ? T_F32 : n == 8 ? T_F64 : -1;
    if (k == H5T_INTEGER) {
        bool sign = H5Tget_sign(t) == H5T_SGN_2;
        return n == 4 ? (sign ? T_I32 : T_U32) : n == 8 && sign ? T_I64 : -1;
    }
    if (k == H5T_STRING && H5Tis_variable_str(t) == 0)
        return T_STR;
    return -1;
}

/* A fixed-length, NUL-terminated string type of n bytes (caller closes). */
static hid_t string_type(size_t n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    return t;
}

static void dims_str(char *buf, size_t cap, int rank, const int64_t *dims)
{
    size_t used = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < rank && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, rank == 1 ? ",)" : ")");
}

/* ---- writing ------------------------------------------------------------------ */

/* Write dataset `path` (groups made as needed): rank dims of type t from
** data; strings are fixed-length elements of str_size bytes. */
static enum kiln_status w_dataset(ck *c, const char *path, enum item_type t, int rank, const int64_t *dims,
                                  const void *data, size_t str_size)
{
    hsize_t hd[KILN_MAX_RANK + 1];
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        hd[i] = (hsize_t)dims[i];
        count *= (size_t)dims[i];
    }
    size_t esize = t == T_STR ? str_size : type_size(t);
    hash_item(c, path, t, rank, dims, data, count * esize);
    hid_t ft = file_type(t), mt = mem_type(t), st_type = H5I_INVALID_HID;
    if (t == T_STR)
        ft = mt = st_type = string_type(str_size);
    hid_t sp = rank ? H5Screate_simple(rank, hd, NULL) : H5Screate(H5S_SCALAR);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(c->f, path, ft, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = d < 0 ? -1 : count ? H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0;
    enum kiln_status st = d < 0 ? h5_fail(c, KILN_ERR_IO, "cannot create the dataset", path)
                          : e < 0 ? h5_fail(c, KILN_ERR_IO, "cannot write", path) : KILN_OK;
    if (d >= 0)
        H5Dclose(d);
    H5Pclose(lcpl);
    H5Sclose(sp);
    if (st_type >= 0)
        H5Tclose(st_type);
    return st;
}

/* Attribute `name` of the object at `obj` (a group, made as needed): a
** scalar int64, float64 or string. Every attribute but content_sha256 is
** hashed. */
static enum kiln_status w_attr(ck *c, const char *obj, const char *name, enum item_type t, const void *v)
{
    char item[ITEM_MAX];
    snprintf(item, sizeof item, "%s@%s", obj, name);
    size_t n = t == T_STR ? strlen(v) + 1 : type_size(t);
    if (strcmp(name, "content_sha256") != 0)
        hash_item(c, item, t, 0, NULL, v, n);
    if (strcmp(obj, "/") != 0 && link_exists(c->f, obj) <= 0) {
        hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
        H5Pset_create_intermediate_group(lcpl, 1);
        hid_t g = H5Gcreate2(c->f, obj, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        H5Pclose(lcpl);
        if (g < 0)
            return h5_fail(c, KILN_ERR_IO, "cannot create the group", obj);
        H5Gclose(g);
    }
    hid_t ft = file_type(t), mt = mem_type(t), st_type = H5I_INVALID_HID;
    if (t == T_STR)
        ft = mt = st_type = string_type(n);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate_by_name(c->f, obj, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, mt, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    if (st_type >= 0)
        H5Tclose(st_type);
    return e < 0 ? h5_fail(c, KILN_ERR_IO, "cannot write the attribute", item) : KILN_OK;
}

static enum kiln_status w_i64(ck *c, const char *obj, const char *name, int64_t v)
{
    return w_attr(c, obj, name, T_I64, &v);
}

/* ---- reading ------------------------------------------------------------------ */

/* Whether the object at path exists: 1, 0, or -1 when the file cannot
** tell (damaged). H5Lexists fails on a path whose parent is missing, so
** each prefix is asked in turn. */
static htri_t link_exists(hid_t f, const char *path)
{
    char buf[ITEM_MAX];
    if (kiln_snprintf(buf, sizeof buf, "%s", path) != 0)
        return 0;
    for (char *at = buf + 1;; at++) {
        if (*at != '/' && *at != '\0')
            continue;
        char was = *at;
        *at = '\0';
        htri_t r = H5Lexists(f, buf, H5P_DEFAULT);
        *at = was;
        if (r <= 0 || was == '\0')
            return r;
    }
}

/* Close a memory type, a file type and a dataspace (each may be invalid). */
static void close_types(hid_t mt, hid_t ft, hid_t sp)
{
    if (mt >= 0)
        H5Tclose(mt);
    if (ft >= 0)
        H5Tclose(ft);
    if (sp >= 0)
        H5Sclose(sp);
}

/* Read dataset `path` of type t into dst, checking its type and shape
** first: rank and dims as want_dims, and the bytes the file stores for it.
** Strings: fixed-length elements of at most str_cap bytes, read into
** elements of str_cap bytes each, NUL-terminated. `missing` is the status
** of an absent or mismatched item (KILN_ERR_SHAPE for a parameter or
** state: another program; else KILN_ERR_FORMAT). */
static enum kiln_status r_dataset(ck *c, const char *path, enum item_type t, int rank, const int64_t *want_dims,
                                  void *dst, size_t str_cap, enum kiln_status missing)
{
    char want[128], got[128];
    htri_t there = link_exists(c->f, path);
    if (there < 0)
        return h5_fail(c, KILN_ERR_FORMAT, "damaged (cannot look it up)", path);
    if (there == 0)
        return ck_fail(c, missing, "%s is missing%s", path,
                       missing == KILN_ERR_SHAPE ? " (the checkpoint was written for another program)" : "");
    hid_t d = H5Dopen2(c->f, path, H5P_DEFAULT);
    if (d < 0)
        return h5_fail(c, KILN_ERR_FORMAT, "not a dataset", path);
    hid_t ft = H5Dget_type(d), sp = H5Dget_space(d), mt = H5I_INVALID_HID;
    enum kiln_status st = KILN_OK;
    int ft_item = ft < 0 ? -1 : item_of(ft);
    int r = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    hsize_t hd[H5S_MAX_RANK];
    int64_t dims[H5S_MAX_RANK];
    size_t esize = t == T_STR ? 0 : type_size(t);
    char *tmp = NULL;
    if (ft_item != (int)t) {
        st = ck_fail(c, missing, "%s: dtype %s, expected %s", path,
                     ft_item < 0 ? "unknown" : type_name((enum item_type)ft_item), type_name(t));
        goto done;
    }
    if (t == T_STR) {
        esize = H5Tget_size(ft);
        if (esize == 0 || esize > str_cap) {
            st = ck_fail(c, KILN_ERR_FORMAT, "%s: strings of %zu bytes, at most %zu", path, esize, str_cap);
            goto done;
        }
    }
    if (r < 0 || r > H5S_MAX_RANK || (r > 0 && H5Sget_simple_extent_dims(sp, hd, NULL) < 0)) {
        st = h5_fail(c, KILN_ERR_FORMAT, "unreadable shape", path);
        goto done;
    }
    for (int i = 0; i < r; i++)
        dims[i] = hd[i] > (hsize_t)INT64_MAX ? INT64_MAX : (int64_t)hd[i];
    bool ok = r == rank;
    for (int i = 0; ok && i < r; i++)
        ok = dims[i] == want_dims[i];
    if (!ok) {
        dims_str(got, sizeof got, r, dims);
        dims_str(want, sizeof want, rank, want_dims);
        st = ck_fail(c, missing, "%s: shape %s, %s %s", path, got,
                     missing == KILN_ERR_SHAPE ? "the program expects" : "expected", want);
        goto done;
    }
    int64_t count = 1; /* want_dims are the caller's: their product fits */
    for (int i = 0; i < r; i++)
        count *= dims[i];
    if (count > 0 && H5Dget_storage_size(d) < (hsize_t)count * esize) {
        st = ck_fail(c, KILN_ERR_FORMAT, "%s: %lld elements, the file holds %llu bytes of them", path,
                     (long long)count, (unsigned long long)H5Dget_storage_size(d));
        goto done;
    }
    mt = t == T_STR ? string_type(str_cap) : H5Tcopy(mem_type(t));
    if (count > 0 && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
        st = h5_fail(c, KILN_ERR_FORMAT, "cannot read", path);
        goto done;
    }
    if (t != T_STR) {
        hash_item(c, path, t, r, dims, dst, (size_t)count * esize);
        goto done;
    }
    /* Strings: terminate each element whatever the file held, and hash
    ** them as written, elements of the file's size padded with NULs. */
    if (count > 0 && !(tmp = calloc((size_t)count, esize))) {
        st = ck_fail(c, KILN_ERR_NOMEM, "%s: %lld strings", path, (long long)count);
        goto done;
    }
    for (int64_t i = 0; i < count; i++) {
        char *s = (char *)dst + i * (int64_t)str_cap;
        s[str_cap - 1] = '\0';
        strncpy(tmp + i * (int64_t)esize, s, esize - 1);
    }
    hash_item(c, path, t, r, dims, tmp, (size_t)count * esize);
done:
    free(tmp);
    close_types(mt, ft, sp);
    H5Dclose(d);
    return st;
}

/* Elements of the one-dimensional dataset at path, bounded by the bytes
** the file stores for it (a count read from the file sizes an allocation:
** a dataset claiming 2^40 elements it does not hold is refused first). */
static enum kiln_status r_count(ck *c, const char *path, size_t esize, int64_t *n)
{
    hid_t d = link_exists(c->f, path) > 0 ? H5Dopen2(c->f, path, H5P_DEFAULT) : H5I_INVALID_HID;
    hid_t sp = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
    hsize_t hn = 0;
    bool ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 && H5Sget_simple_extent_dims(sp, &hn, NULL) == 1;
    hsize_t stored = ok && hn ? H5Dget_storage_size(d) : 0;
    if (sp >= 0)
        H5Sclose(sp);
    if (d >= 0)
        H5Dclose(d);
    if (!ok)
        return ck_fail(c, KILN_ERR_FORMAT, "%s: missing or not one-dimensional", path);
    if (hn > (hsize_t)(KILN_MAX_BYTES / (int64_t)esize) || stored < hn * esize)
        return ck_fail(c, KILN_ERR_FORMAT, "%s: %llu elements, the file holds %llu bytes of them", path,
                       (unsigned long long)hn, (unsigned long long)stored);
    *n = (int64_t)hn;
    return KILN_OK;
}

/* The element size of the n fixed-length strings at path: at most cap,
** and stored in full (it sizes an allocation of n elements). */
static enum kiln_status r_str_size(ck *c, const char *path, int64_t n, size_t cap, size_t *esize)
{
    hid_t d = link_exists(c->f, path) > 0 ? H5Dopen2(c->f, path, H5P_DEFAULT) : H5I_INVALID_HID;
    hid_t t = d >= 0 ? H5Dget_type(d) : H5I_INVALID_HID;
    size_t e = t >= 0 && item_of(t) == T_STR ? H5Tget_size(t) : 0;
    hsize_t stored = d >= 0 ? H5Dget_storage_size(d) : 0;
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    if (e == 0 || e > cap)
        return ck_fail(c, KILN_ERR_FORMAT, "%s: missing, not fixed-length strings, or strings of %zu bytes "
                       "(at most %zu)", path, e, cap);
    if (n > 0 && stored < (hsize_t)n * e)
        return ck_fail(c, KILN_ERR_FORMAT, "%s: %lld strings of %zu bytes, the file holds %llu bytes of them",
                       path, (long long)n, e, (unsigned long long)stored);
    *esize = e;
    return KILN_OK;
}

/* A scalar attribute: int64, float64, or a string of at most cap bytes. */
static enum kiln_status r_attr(ck *c, const char *obj, const char *name, enum item_type t, void *v, size_t cap)
{
    char item[ITEM_MAX];
    snprintf(item, sizeof item, "%s@%s", obj, name);
    htri_t there = H5Aexists_by_name(c->f, obj, name, H5P_DEFAULT);
    if (there < 0)
        return h5_fail(c, KILN_ERR_FORMAT, "damaged (cannot look it up)", item);
    if (there == 0)
        return ck_fail(c, KILN_ERR_FORMAT, "%s: attribute %s is missing", obj, name);
    hid_t a = H5Aopen_by_name(c->f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        return h5_fail(c, KILN_ERR_FORMAT, "unreadable attribute", item);
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a), mt = H5I_INVALID_HID;
    enum kiln_status st = KILN_OK;
    int it = ft < 0 ? -1 : item_of(ft);
    if (it != (int)t || sp < 0 || H5Sget_simple_extent_type(sp) != H5S_SCALAR ||
        (t == T_STR && (H5Tget_size(ft) == 0 || H5Tget_size(ft) > cap))) {
        st = ck_fail(c, KILN_ERR_FORMAT, "%s: not a scalar %s%s", item, type_name(t),
                     t == T_STR ? " of a sane length" : "");
        goto done;
    }
    size_t n = t == T_STR ? H5Tget_size(ft) : type_size(t);
    mt = t == T_STR ? string_type(n) : H5Tcopy(mem_type(t));
    if (t == T_STR)
        memset(v, 0, cap);
    if (H5Aread(a, mt, v) < 0) {
        st = h5_fail(c, KILN_ERR_FORMAT, "cannot read", item);
        goto done;
    }
    if (t == T_STR) {
        ((char *)v)[n - 1] = '\0';
        n = strlen(v) + 1;
    }
    if (strcmp(name, "content_sha256") != 0)
        hash_item(c, item, t, 0, NULL, v, n);
done:
    close_types(mt, ft, sp);
    H5Aclose(a);
    return st;
}

static enum kiln_status r_i64(ck *c, const char *obj, const char *name, int64_t lo, int64_t hi, int64_t *v)
{
    enum kiln_status st = r_attr(c, obj, name, T_I64, v, 0);
    if (st == KILN_OK && (*v < lo || *v > hi))
        return ck_fail(c, KILN_ERR_FORMAT, "%s@%s: %lld outside [%lld, %lld]", obj, name, (long long)*v,
                       (long long)lo, (long long)hi);
    return st;
}

/* ---- the items of a program --------------------------------------------------- */

/* Paths of p's parameters and states ("/params/mlp/linear_0/W"), the same
** on save and load; a repeat gets _2, _3, ... */
static enum kiln_status name_slots(ck *c, kiln_program *p)
{
    c->n_params = kiln_program_slot_count(p, false);
    c->n_states = kiln_program_slot_count(p, true);
    int n = c->n_params + c->n_states;
    c->slots = n ? calloc((size_t)n, sizeof *c->slots) : NULL;
    if (n && !c->slots)
        return ck_fail(c, KILN_ERR_NOMEM, "%d parameters and states", n);
    for (int i = 0; i < n; i++) {
        ck_slot *s = &c->slots[i];
        bool state = i >= c->n_params;
        kiln_program_get_slot(p, state, state ? i - c->n_params : i, &s->s);
        const char *owner = s->s.owner ? s->s.owner : "";
        const char *name = s->s.name && *s->s.name ? s->s.name : "unnamed";
        char base[ITEM_MAX];
        kiln_snprintf(base, sizeof base, "/%s%s%s/%s", state ? "states" : "params",
                      *owner == '/' || !*owner ? "" : "/", owner, name);
        kiln_snprintf(s->path, sizeof s->path, "%s", base);
        for (int k = 2, j = 0; j < i; j++)
            if (strcmp(c->slots[j].path, s->path) == 0) {
                kiln_snprintf(s->path, sizeof s->path, "%s_%d", base, k++);
                j = -1; /* check the new name against all again */
            }
    }
    return KILN_OK;
}

static enum kiln_status program_hash(ck *c, kiln_program *p, char hex[SHA_HEX + 1])
{
    const char *src = kiln_program_source(p);
    if (!*src || kiln_program_slot_count(p, false) + kiln_program_slot_count(p, true) == 0 ||
        !sha256_hex(src, strlen(src), hex))
        return ck_fail(c, KILN_ERR_STATE, "the program was not compiled");
    return KILN_OK;
}

/* ---- saving ------------------------------------------------------------------- */

/* The in-memory log as five arrays of one entry per record, rows in order
** of iteration, records in order of key. */
static enum kiln_status write_log(ck *c, const kiln_log *l)
{
    int64_t n = 0;
    size_t key_max = 1, text_max = 1;
    for (int64_t r = 0; r < l->n_rows; r++)
        for (int k = 0; k < l->rows[r].n_records; k++) {
            const kiln_log_record *rec = &l->rows[r].records[k];
            size_t kl = strlen(rec->key), tl = rec->text ? strlen(rec->text) : 0;
            key_max = kl > key_max ? kl : key_max;
            text_max = tl > text_max ? tl : text_max;
            n++;
        }
    key_max++;
    text_max++;
    size_t m = (size_t)(n ? n : 1);
    int64_t *it = malloc(m * sizeof *it);
    int32_t *kind = malloc(m * sizeof *kind);
    double *val = malloc(m * sizeof *val);
    char *keys = calloc(m, key_max), *texts = calloc(m, text_max);
    enum kiln_status st = KILN_OK;
    if (!it || !kind || !val || !keys || !texts)
        st = ck_fail(c, KILN_ERR_NOMEM, "the log: %lld records", (long long)n);
    for (int64_t r = 0, e = 0; !st && r < l->n_rows; r++)
        for (int k = 0; k < l->rows[r].n_records; k++, e++) {
            const kiln_log_record *rec = &l->rows[r].records[k];
            it[e] = l->rows[r].iteration;
            kind[e] = (int32_t)rec->kind;
            val[e] = rec->kind == KILN_LOG_TEXT ? 0.0 : rec->value;
            memcpy(keys + (size_t)e * key_max, rec->key, strlen(rec->key));
            if (rec->text)
                memcpy(texts + (size_t)e * text_max, rec->text, strlen(rec->text));
        }
    if (!st && !(st = w_dataset(c, "/log/iteration", T_I64, 1, &n, it, 0)) &&
        !(st = w_dataset(c, "/log/kind", T_I32, 1, &n, kind, 0)) &&
        !(st = w_dataset(c, "/log/value", T_F64, 1, &n, val, 0)) &&
        !(st = w_dataset(c, "/log/key", T_STR, 1, &n, keys, key_max)))
        st = w_dataset(c, "/log/text", T_STR, 1, &n, texts, text_max);
    free(it);
    free(kind);
    free(val);
    free(keys);
    free(texts);
    return st;
}

static enum kiln_status write_stream(ck *c, kiln_stream *s)
{
    kiln_stream_state ss;
    kiln_stream_get_state(s, &ss);
    int64_t n_order = ss.n_order, n_border = ss.n_batch_order, n_mt = KILN_RNG_N;
    enum kiln_status st;
    if ((st = w_attr(c, "/data", "scheme", T_STR, ss.scheme == KILN_SCHEME_SHUFFLED ? "shuffled" : "sequential")) ||
        (st = w_i64(c, "/data", "padded", ss.padded)) || (st = w_i64(c, "/data", "batch_size", ss.batch_size)) ||
        (st = w_i64(c, "/data", "n_examples", ss.n_examples)) || (st = w_i64(c, "/data", "position", ss.pos)) ||
        (st = w_i64(c, "/data", "batch_no", ss.batch_no)) ||
        (st = w_i64(c, "/data", "epoch_pending", ss.epoch_pending)) ||
        (st = w_i64(c, "/data", "rng_pos", ss.rng.pos)) ||
        (st = w_i64(c, "/data", "rng_has_gauss", ss.rng.has_gauss)) ||
        (st = w_attr(c, "/data", "rng_gauss", T_F64, &ss.rng.gauss)) ||
        (st = w_dataset(c, "/data/order", T_I64, 1, &n_order, ss.order, 0)) ||
        (st = w_dataset(c, "/data/batch_order", T_I64, 1, &n_border, ss.batch_order, 0)))
        return st;
    return w_dataset(c, "/data/rng_state", T_U32, 1, &n_mt, ss.rng.mt, 0);
}

/* Every item of p, s (may be NULL) and m (may be NULL) into c->f, in the
** order read_all reads them. */
static enum kiln_status write_items(ck *c, kiln_program *p, kiln_stream *s, kiln_main_loop *m)
{
    enum kiln_status st;
    if ((st = w_attr(c, "/", "format", T_STR, FORMAT_NAME)) ||
        (st = w_i64(c, "/", "format_version", FORMAT_VERSION)) ||
        (st = w_attr(c, "/", "kiln_version", T_STR, KILN_VERSION)) ||
        (st = w_attr(c, "/", "program_sha256", T_STR, c->program_sha)))
        return st;
    for (int i = 0; i < c->n_params + c->n_states; i++) {
        const kiln_program_slot *sl = &c->slots[i].s;
        if ((st = w_dataset(c, c->slots[i].path, dtype_item(sl->dtype), sl->rank, sl->dims, sl->data, 0)))
            return st;
    }
    if (m && ((st = w_i64(c, "/loop", "iterations_done", m->iterations_done)) ||
              (st = w_i64(c, "/loop", "epochs_done", m->epochs_done)) ||
              (st = w_i64(c, "/loop", "epoch_started", m->epoch_started)) ||
              (st = w_i64(c, "/loop", "received_first_batch", m->received_first_batch))))
        return st;
    if (s && (st = write_stream(c, s)))
        return st;
    if (m) {
        bool sqlite = m->log.db != NULL;
        if ((st = w_attr(c, "/log", "backend", T_STR, sqlite ? "sqlite" : "memory")))
            return st;
        if (!sqlite && (st = write_log(c, &m->log)))
            return st;
    }
    return KILN_OK;
}

/* The folder of path, into dir (cap bytes): "." for a bare name. */
static void folder_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        kiln_snprintf(dir, cap, ".");
    else if (slash == path)
        kiln_snprintf(dir, cap, "/");
    else
        kiln_snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

/* Plan: 1. names and hash of the program; 2. a temporary file beside path;
** 3. write the items and the content hash; 4. close, fsync, rename, fsync
** the folder. Any failure removes the temporary file and leaves path. */
static enum kiln_status save(kiln_program *p, kiln_stream *s, kiln_main_loop *m, const char *path,
                             kiln_err *err)
{
    ck c;
    ck_begin(&c, path, err);
    enum kiln_status st;
    char dir[4096], tmp[4096 + 32], sha[SHA_HEX + 1];
    int fd = -1;
    bool made = false;
    /* 1. */
    if ((st = program_hash(&c, p, c.program_sha)) || (st = name_slots(&c, p)))
        goto out;
    if (!hash_start(&c)) {
        st = ck_fail(&c, KILN_ERR_NOMEM, "SHA-256 unavailable");
        goto out;
    }
    /* 2. */
    folder_of(path, dir, sizeof dir);
    if (kiln_snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) != 0) {
        st = ck_fail(&c, KILN_ERR_ARG, "path too long");
        goto out;
    }
    if ((fd = mkstemp(tmp)) < 0) {
        struct stat sb;
        int e = errno;
        st = ck_fail(&c, KILN_ERR_IO, "cannot create a file in folder '%s': %s%s", dir, strerror(e),
                     stat(dir, &sb) != 0 ? " (the folder does not exist)" : "");
        goto out;
    }
    made = true;
    /* 3. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST); /* checksummed metadata */
    c.f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (c.f < 0) {
        st = h5_fail(&c, KILN_ERR_IO, "cannot create the temporary file", tmp);
        goto out;
    }
    if ((st = write_items(&c, p, s, m)))
        goto out;
    if (!hash_finish(&c, sha)) {
        st = ck_fail(&c, KILN_ERR_NOMEM, "SHA-256 failed");
        goto out;
    }
    if ((st = w_attr(&c, "/", "content_sha256", T_STR, sha)))
        goto out;
    /* 4. */
    herr_t e = H5Fclose(c.f);
    c.f = H5I_INVALID_HID;
    if (e < 0) {
        st = h5_fail(&c, KILN_ERR_IO, "cannot finish writing", tmp);
        goto out;
    }
    if (fsync(fd) != 0) {
        st = ck_fail(&c, KILN_ERR_IO, "cannot flush %s to disk: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        st = ck_fail(&c, KILN_ERR_IO, "cannot rename %s over it: %s", tmp, strerror(errno));
        goto out;
    }
    made = false;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { /* the rename itself reaches the disk */
        fsync(dfd);
        close(dfd);
    }
out:
    if (c.f >= 0) {
        H5Fclose(c.f);
        c.f = H5I_INVALID_HID;
    }
    if (fd >= 0)
        close(fd);
    if (made)
        unlink(tmp);
    ck_end(&c);
    return st;
}

/* ---- loading ------------------------------------------------------------------ */

/* The log's five arrays, checked: iterations in order within 0..
** iterations_done, kinds 0..3, keys not empty; text is copied. */
static enum kiln_status read_log(ck *c, int64_t iterations_done)
{
    enum kiln_status st;
    char backend[16];
    if ((st = r_attr(c, "/log", "backend", T_STR, backend, sizeof backend)))
        return st;
    if (strcmp(backend, "sqlite") == 0) {
        c->log_in_sqlite = true;
        return KILN_OK;
    }
    if (strcmp(backend, "memory") != 0)
        return ck_fail(c, KILN_ERR_FORMAT, "/log@backend: '%s', expected memory or sqlite", backend);
    /* The count from the first array bounds the others. */
    int64_t n;
    if ((st = r_count(c, "/log/iteration", 8, &n)))
        return st;
    if (n > LOG_MAX_RECORDS)
        return ck_fail(c, KILN_ERR_FORMAT, "/log/iteration: %lld records, at most %lld", (long long)n,
                       (long long)LOG_MAX_RECORDS);
    size_t kb, tb; /* bytes of a key, of a text */
    if ((st = r_str_size(c, "/log/key", n, KEY_BYTES, &kb)) || (st = r_str_size(c, "/log/text", n, TEXT_BYTES, &tb)))
        return st;
    size_t m = (size_t)(n ? n : 1);
    int64_t *it = malloc(m * sizeof *it);
    int32_t *kind = malloc(m * sizeof *kind);
    double *val = malloc(m * sizeof *val);
    char *keys = malloc(m * kb), *texts = malloc(m * tb);
    c->log = calloc(m, sizeof *c->log);
    c->n_log = n;
    if (!it || !kind || !val || !keys || !texts || !c->log)
        st = ck_fail(c, KILN_ERR_NOMEM, "the log: %lld records", (long long)n);
    else if (!(st = r_dataset(c, "/log/iteration", T_I64, 1, &n, it, 0, KILN_ERR_FORMAT)) &&
             !(st = r_dataset(c, "/log/kind", T_I32, 1, &n, kind, 0, KILN_ERR_FORMAT)) &&
             !(st = r_dataset(c, "/log/value", T_F64, 1, &n, val, 0, KILN_ERR_FORMAT)) &&
             !(st = r_dataset(c, "/log/key", T_STR, 1, &n, keys, kb, KILN_ERR_FORMAT)))
        st = r_dataset(c, "/log/text", T_STR, 1, &n, texts, tb, KILN_ERR_FORMAT);
    for (int64_t e = 0; !st && e < n; e++) {
        ck_log_entry *le = &c->log[e];
        const char *key = keys + e * (int64_t)kb;
        le->iteration = it[e];
        le->kind = kind[e];
        le->value = val[e];
        if (it[e] < 0 || it[e] > iterations_done || (e > 0 && it[e] < it[e - 1]))
            st = ck_fail(c, KILN_ERR_FORMAT, "/log: record %lld is of iteration %lld, outside 0..%lld or out "
                         "of order", (long long)e, (long long)it[e], (long long)iterations_done);
        else if (kind[e] < KILN_LOG_FLOAT || kind[e] > KILN_LOG_TEXT)
            st = ck_fail(c, KILN_ERR_FORMAT, "/log: record %lld has kind %d, expected 0..3", (long long)e,
                         (int)kind[e]);
        else if (!*key)
            st = ck_fail(c, KILN_ERR_FORMAT, "/log: record %lld has an empty key", (long long)e);
        else if (kind[e] == KILN_LOG_TEXT && !(le->text = kiln_strdup(texts + e * (int64_t)tb)))
            st = ck_fail(c, KILN_ERR_NOMEM, "the log's texts");
        if (!st)
            memcpy(le->key, key, kb); /* kb <= KEY_BYTES, NUL-terminated by r_dataset */
    }
    free(texts);
    free(it);
    free(kind);
    free(val);
    free(keys);
    return st;
}

/* The stream's state; kiln_stream_set_state checks it against the stream. */
static enum kiln_status read_data(ck *c)
{
    enum kiln_status st;
    char scheme[16];
    int64_t v[8];
    kiln_stream_state *ss = &c->ss;
    if ((st = r_attr(c, "/data", "scheme", T_STR, scheme, sizeof scheme)) ||
        (st = r_i64(c, "/data", "padded", 0, 1, &v[0])) ||
        (st = r_i64(c, "/data", "batch_size", 1, INT64_MAX, &v[1])) ||
        (st = r_i64(c, "/data", "n_examples", 0, INT64_MAX, &v[2])) ||
        (st = r_i64(c, "/data", "position", 0, INT64_MAX, &v[3])) ||
        (st = r_i64(c, "/data", "batch_no", 0, INT64_MAX, &v[4])) ||
        (st = r_i64(c, "/data", "epoch_pending", 0, 1, &v[5])) ||
        (st = r_i64(c, "/data", "rng_pos", 0, KILN_RNG_N, &v[6])) ||
        (st = r_i64(c, "/data", "rng_has_gauss", 0, 1, &v[7])) ||
        (st = r_attr(c, "/data", "rng_gauss", T_F64, &ss->rng.gauss, 0)))
        return st;
    if (strcmp(scheme, "shuffled") != 0 && strcmp(scheme, "sequential") != 0)
        return ck_fail(c, KILN_ERR_FORMAT, "/data@scheme: '%s', expected sequential or shuffled", scheme);
    ss->scheme = strcmp(scheme, "shuffled") == 0 ? KILN_SCHEME_SHUFFLED : KILN_SCHEME_SEQUENTIAL;
    ss->padded = v[0];
    ss->batch_size = v[1];
    ss->n_examples = v[2];
    ss->pos = v[3];
    ss->batch_no = v[4];
    ss->epoch_pending = v[5];
    ss->rng.pos = (int)v[6];
    ss->rng.has_gauss = (int)v[7];
    int64_t n_order, n_border, n_mt = KILN_RNG_N;
    if ((st = r_count(c, "/data/order", 8, &n_order)) || (st = r_count(c, "/data/batch_order", 8, &n_border)))
        return st;
    c->order = malloc((size_t)(n_order ? n_order : 1) * sizeof *c->order);
    c->border = malloc((size_t)(n_border ? n_border : 1) * sizeof *c->border);
    if (!c->order || !c->border)
        return ck_fail(c, KILN_ERR_NOMEM, "the stream's order: %lld examples", (long long)n_order);
    if ((st = r_dataset(c, "/data/order", T_I64, 1, &n_order, c->order, 0, KILN_ERR_FORMAT)) ||
        (st = r_dataset(c, "/data/batch_order", T_I64, 1, &n_border, c->border, 0, KILN_ERR_FORMAT)) ||
        (st = r_dataset(c, "/data/rng_state", T_U32, 1, &n_mt, ss->rng.mt, 0, KILN_ERR_FORMAT)))
        return st;
    ss->order = c->order;
    ss->n_order = n_order;
    ss->batch_order = c->border;
    ss->n_batch_order = n_border;
    return KILN_OK;
}

/* Plan: 1. open; 2. the format and the program's names; 3. every item into
** staging, checked and hashed; 4. the content hash, then the program hash
** (a changed graph with the same shapes); 5. values. */
static enum kiln_status read_all(ck *c, kiln_program *p)
{
    enum kiln_status st;
    char r[256], buf[128], want_sha[SHA_HEX + 1], sha[SHA_HEX + 1];
    /* 1. */
    if (access(c->file, R_OK) != 0)
        return ck_fail(c, KILN_ERR_IO, "cannot open: %s", strerror(errno));
    htri_t is = H5Fis_hdf5(c->file);
    if (is <= 0)
        return ck_fail(c, is == 0 ? KILN_ERR_FORMAT : KILN_ERR_IO, "%s%s%s",
                       is == 0 ? "not an HDF5 file" : "cannot open as HDF5", *h5_reason(r) ? ": " : "", r);
    c->f = H5Fopen(c->file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (c->f < 0)
        return h5_fail(c, KILN_ERR_FORMAT, "damaged or truncated HDF5 file", NULL);
    /* 2. */
    int64_t version;
    if ((st = program_hash(c, p, want_sha)) || (st = name_slots(c, p)))
        return st;
    if (!hash_start(c))
        return ck_fail(c, KILN_ERR_NOMEM, "SHA-256 unavailable");
    htri_t there = H5Aexists_by_name(c->f, "/", "format", H5P_DEFAULT);
    if (there < 0)
        return h5_fail(c, KILN_ERR_FORMAT, "damaged HDF5 file", NULL);
    if (there == 0)
        return ck_fail(c, KILN_ERR_FORMAT, "not a kiln checkpoint (no format attribute)");
    if ((st = r_attr(c, "/", "format", T_STR, buf, sizeof buf)))
        return st;
    if (strcmp(buf, FORMAT_NAME) != 0)
        return ck_fail(c, KILN_ERR_FORMAT, "not a kiln checkpoint (format '%s')", buf);
    if ((st = r_attr(c, "/", "format_version", T_I64, &version, 0)))
        return st;
    if (version != FORMAT_VERSION)
        return ck_fail(c, KILN_ERR_FORMAT, "format version %lld, this kiln reads version %d", (long long)version,
                       FORMAT_VERSION);
    if ((st = r_attr(c, "/", "kiln_version", T_STR, buf, sizeof buf)) ||
        (st = r_attr(c, "/", "program_sha256", T_STR, c->program_sha, sizeof c->program_sha)))
        return st;
    /* 3. */
    for (int i = 0; i < c->n_params + c->n_states; i++) {
        ck_slot *s = &c->slots[i];
        size_t bytes = (size_t)s->s.count * kiln_dtype_size(s->s.dtype);
        if (!(s->buf = malloc(bytes ? bytes : 1)))
            return ck_fail(c, KILN_ERR_NOMEM, "%s: %zu bytes", s->path, bytes);
        if ((st = r_dataset(c, s->path, dtype_item(s->s.dtype), s->s.rank, s->s.dims, s->buf, 0, KILN_ERR_SHAPE)))
            return st;
    }
    htri_t loop = link_exists(c->f, "/loop"), data = link_exists(c->f, "/data"), lg = link_exists(c->f, "/log");
    if (loop < 0 || data < 0 || lg < 0)
        return h5_fail(c, KILN_ERR_FORMAT, "damaged HDF5 file", NULL);
    c->has_loop = loop > 0;
    c->has_data = data > 0;
    c->has_log = lg > 0;
    if (c->has_loop != c->has_log)
        return ck_fail(c, KILN_ERR_FORMAT, "/loop and /log go together; only %s is there",
                       c->has_loop ? "/loop" : "/log");
    if (c->has_loop &&
        ((st = r_i64(c, "/loop", "iterations_done", 0, INT64_MAX, &c->loop[0])) ||
         (st = r_i64(c, "/loop", "epochs_done", 0, INT64_MAX, &c->loop[1])) ||
         (st = r_i64(c, "/loop", "epoch_started", 0, 1, &c->loop[2])) ||
         (st = r_i64(c, "/loop", "received_first_batch", 0, 1, &c->loop[3]))))
        return st;
    if (c->has_data && (st = read_data(c)))
        return st;
    if (c->has_log && (st = read_log(c, c->loop[0])))
        return st;
    /* 4. */
    if ((st = r_attr(c, "/", "content_sha256", T_STR, buf, sizeof buf)))
        return st;
    if (!hash_finish(c, sha))
        return ck_fail(c, KILN_ERR_NOMEM, "SHA-256 failed");
    if (strcmp(sha, buf) != 0)
        return ck_fail(c, KILN_ERR_FORMAT, "corrupted: the contents' SHA-256 is %.16s..., the file records "
                       "%.16s...", sha, buf);
    if (strcmp(c->program_sha, want_sha) != 0)
        return ck_fail(c, KILN_ERR_SHAPE, "written for another program: its source's SHA-256 is %.16s..., this "
                       "program's %.16s... (same parameters and states, another graph or options)",
                       c->program_sha, want_sha);
    /* 5. */
    for (int i = c->n_params; i < c->n_params + c->n_states; i++) {
        kiln_err e;
        if ((st = kiln_program_slot_check(p, true, i - c->n_params, c->slots[i].buf, &e)))
            return ck_fail(c, st, "%s: %s", c->slots[i].path, e.msg);
    }
    return KILN_OK;
}

static void apply_program(ck *c, kiln_program *p)
{
    for (int i = 0; i < c->n_params + c->n_states; i++) {
        bool state = i >= c->n_params;
        int k = state ? i - c->n_params : i;
        kiln_program_slot sl;
        if (kiln_program_get_slot(p, state, k, &sl)) {
            memcpy(sl.data, c->slots[i].buf, (size_t)sl.count * kiln_dtype_size(sl.dtype));
            kiln_program_slot_written(p, state, k);
        }
    }
}

/* The loaded log into a fresh in-memory log that replaces m's, or written
** into m's SQLite file after cutting it back to the checkpoint. A log that
** was in an SQLite file at save stays there: the file is cut back to the
** checkpoint's iteration (it may have gone on past it before a crash). */
static enum kiln_status apply_log(ck *c, kiln_main_loop *m)
{
    enum kiln_status st = KILN_OK;
    if (c->log_in_sqlite) {
        if (m->log.db)
            st = kiln_log_truncate(&m->log, c->loop[0], c->loop[1]);
        else
            kiln_log_clear(&m->log);
        return st ? kiln_err_set(c->err, st, "%s: the log: %s", c->file, m->log.err.msg) : KILN_OK;
    }
    kiln_log fresh, *l = &fresh;
    kiln_log_init(&fresh);
    if (m->log.db) {
        l = &m->log;
        if ((st = kiln_log_truncate(l, -1, c->loop[1])))
            return kiln_err_set(c->err, st, "%s: the log: %s", c->file, l->err.msg);
    }
    for (int64_t e = 0; !st && e < c->n_log; e++) {
        const ck_log_entry *le = &c->log[e];
        st = le->kind == KILN_LOG_TEXT
                 ? kiln_log_set_text(l, le->iteration, le->key, le->text)
                 : kiln_log_set(l, le->iteration, le->key, (enum kiln_log_kind)le->kind, le->value);
    }
    if (st) {
        kiln_err_set(c->err, st, "%s: the log: %s", c->file, l->err.msg);
        if (l == &fresh)
            kiln_log_clear(&fresh);
        return st;
    }
    if (l == &fresh) {
        kiln_log_clear(&m->log);
        m->log = fresh;
    }
    return KILN_OK;
}

/* Load path into p, and into s (when `status`) and m (its status when
** `status`, its log when `log`) when not NULL. */
static enum kiln_status load(kiln_program *p, kiln_stream *s, kiln_main_loop *m, bool status, bool log,
                             const char *path, kiln_err *err)
{
    ck c;
    ck_begin(&c, path, err);
    enum kiln_status st = read_all(&c, p);
    if (!st && s && status && !c.has_data)
        st = ck_fail(&c, KILN_ERR_FORMAT, "holds no data stream state (saved without a stream)");
    if (!st && m && (status || log) && !c.has_loop)
        st = ck_fail(&c, KILN_ERR_FORMAT, "holds no main loop (saved with kiln_checkpoint_save_program)");
    /* The stream checks its state itself; it changes only if that passes. */
    if (!st && s && status) {
        kiln_err e;
        if ((st = kiln_stream_set_state(s, &c.ss, &e)))
            ck_fail(&c, st, "%s", e.msg);
    }
    if (!st && m && log)
        st = apply_log(&c, m);
    if (!st) {
        apply_program(&c, p);
        if (m && status) {
            m->iterations_done = c.loop[0];
            m->epochs_done = c.loop[1];
            m->epoch_started = c.loop[2];
            m->received_first_batch = c.loop[3];
        }
    }
    ck_end(&c);
    return st;
}

/* ---- the public calls ----------------------------------------------------------- */

enum kiln_status kiln_checkpoint_save(kiln_main_loop *m, const char *path)
{
    KILN_API_CHECK(m);
    if (!m)
        return KILN_ERR_ARG;
    if (!path || !m->program || !m->stream)
        return kiln_err_set(&m->err, KILN_ERR_ARG, "checkpoint: %s",
                            !path ? "path is NULL" : "the loop has no program");
    /* An SQLite log commits, so the file holds what the checkpoint says. */
    enum kiln_status st = kiln_log_advance(&m->log, m->iterations_done, m->epochs_done, true);
    if (st)
        return kiln_err_set(&m->err, st, "%s: the log: %s", path, m->log.err.msg);
    return save(m->program, m->stream, m, path, &m->err);
}

enum kiln_status kiln_checkpoint_load(kiln_main_loop *m, const char *path)
{
    KILN_API_CHECK(m);
    if (!m)
        return KILN_ERR_ARG;
    if (!path || !m->program || !m->stream)
        return kiln_err_set(&m->err, KILN_ERR_ARG, "checkpoint: %s",
                            !path ? "path is NULL" : "the loop has no program");
    if (m->training_started)
        return kiln_err_set(&m->err, KILN_ERR_STATE,
                            "%s: a checkpoint loads before the loop's first run (the Load extension "
                            "loads in before_training)", path);
    return load(m->program, m->stream, m, true, true, path, &m->err);
}

enum kiln_status kiln_checkpoint_save_program(kiln_program *p, kiln_stream *s, const char *path)
{
    KILN_API_CHECK(p);
    if (!p)
        return KILN_ERR_ARG;
    kiln_err e;
    kiln_err_clear(&e);
    enum kiln_status st = !path ? kiln_err_set(&e, KILN_ERR_ARG, "checkpoint: path is NULL")
                                : save(p, s, NULL, path, &e);
    return st ? kiln_program_fail_copy(p, &e) : KILN_OK;
}

enum kiln_status kiln_checkpoint_load_program(kiln_program *p, kiln_stream *s, const char *path)
{
    KILN_API_CHECK(p);
    if (!p)
        return KILN_ERR_ARG;
    kiln_err e;
    kiln_err_clear(&e);
    enum kiln_status st = !path ? kiln_err_set(&e, KILN_ERR_ARG, "checkpoint: path is NULL")
                                : load(p, s, NULL, true, false, path, &e);
    return st ? kiln_program_fail_copy(p, &e) : KILN_OK;
}

/* ---- Checkpoint and Load extensions ------------------------------------------------ */

static void ext_state_destroy(kiln_extension *e) { free(e->state); }

static enum kiln_status checkpoint_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    const char *path = e->state;
    if (which == KILN_CALLBACK_BEFORE_BATCH) /* the batch is drawn but not trained: no state to resume */
        return kiln_extension_fail(e, KILN_ERR_STATE, "a checkpoint cannot be taken in before_batch");
    enum kiln_status st = kiln_checkpoint_save(m, path);
    if (st) {
        char copy[KILN_ERRMSG_MAX];
        kiln_snprintf(copy, sizeof copy, "%s", m->err.msg);
        return kiln_extension_fail(e, st, "%s", copy);
    }
    return kiln_main_loop_set_record_text(m, "saved_to", path);
}

static const kiln_extension_ops CHECKPOINT_OPS = {NULL, checkpoint_run, ext_state_destroy};

/* An extension named name with ops, state (owned) and one trigger; NULL
** only when out of memory. A NULL path leaves the error on it. */
static kiln_extension *path_extension(const char *name, const kiln_extension_ops *ops, void *state,
                                      const char *path, enum kiln_trigger t)
{
    kiln_extension *e = kiln_extension_new(name, ops, state);
    if (!e)
        return NULL;
    if (!path)
        kiln_err_set(&e->err, KILN_ERR_ARG, "%s: path is NULL", name);
    else if (kiln_extension_add_trigger(e, t, 0) != KILN_OK) {
        kiln_extension_free(e);
        return NULL;
    }
    return e;
}

kiln_extension *kiln_checkpoint(const char *path)
{
    char *copy = kiln_strdup(path ? path : "");
    if (!copy)
        return NULL;
    return path_extension("Checkpoint", &CHECKPOINT_OPS, copy, path, KILN_TRIGGER_AFTER_TRAINING);
}

typedef struct load_state {
    bool iteration_state, log;
    char path[];
} load_state;

static enum kiln_status load_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    load_state *ls = e->state;
    if (access(ls->path, F_OK) != 0 && errno == ENOENT)
        return KILN_OK; /* Blocks: "No dump found": a fresh run */
    kiln_err err;
    kiln_err_clear(&err);
    enum kiln_status st = load(m->program, m->stream, m, ls->iteration_state, ls->log, ls->path, &err);
    if (st)
        return kiln_extension_fail(e, st, "%s", err.msg);
    return kiln_main_loop_set_record_text(m, "loaded_from", ls->path);
}

static const kiln_extension_ops LOAD_OPS = {NULL, load_run, ext_state_destroy};

kiln_extension *kiln_load(const char *path, bool load_iteration_state, bool load_log)
{
    size_t n = path ? strlen(path) + 1 : 1;
    load_state *ls = calloc(1, sizeof *ls + n);
    if (!ls)
        return NULL;
    ls->iteration_state = load_iteration_state;
    ls->log = load_log;
    memcpy(ls->path, path ? path : "", n);
    return path_extension("Load", &LOAD_OPS, ls, path, KILN_TRIGGER_BEFORE_TRAINING);
}
