/* netfile.c: a network file's bytes, written whole or not at all
** (netfile.h; docs/network-files.md), and the HDF5 helpers that
** runtime/network.c's reader shares. Split out of runtime/network.c so
** that an AOT training program (runtime/aot.c) writes its network file with
** this same code, copied into its folder: it includes nothing of kiln's
** (HDF5, OpenSSL's libcrypto, libc).
**
** HDF5 makes the file in memory (its core driver; the values are in memory
** already), with no time stamps, so the same network gives the same bytes;
** kiln's header goes in front (HDF5's user block: "kiln-network-file", the
** file's size, the SHA-256 of the rest); the bytes go to a temporary file
** beside the target, synced and renamed over it: a failed save leaves no
** partial file and an old file whole. Rejected: letting HDF5 write the
** temporary file itself: when a write fails (a full disk), H5Fclose fails
** and leaves the file open in HDF5, which then crashes flushing it again at
** exit. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getrandom, pwrite (the file may be built with -std=c11) */
#endif
#include "runtime/netfile.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* ---- HDF5 around each call ----------------------------------------------------- */

void kiln_h5_quiet_begin(kiln_h5quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void kiln_h5_quiet_end(kiln_h5quiet *q)
{
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

static herr_t why_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    kiln_h5why *w = data;
    if (n == 0 && e->desc)
        snprintf(w->s, sizeof w->s, "%s", e->desc);
    return 0;
}

kiln_h5why kiln_h5_why(void)
{
    kiln_h5why w = {"no reason given"};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, why_cb, &w);
    H5Eclear2(H5E_DEFAULT);
    return w;
}

void kiln_h5_close(hid_t id, herr_t (*fn)(hid_t))
{
    if (id >= 0)
        fn(id);
}

int kiln_netfile_io_at(int fd, char *buf, size_t n, off_t off, int out)
{
    while (n > 0) {
        ssize_t k = out ? pwrite(fd, buf, n, off) : pread(fd, buf, n, off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return -1;
        }
        buf += k;
        n -= (size_t)k;
        off += k;
    }
    return 0;
}

/* ---- writing ----------------------------------------------------------------------- */

typedef struct wfile {
    hid_t file, gcpl, dcpl;
    const char *shown; /* the path, for messages */
    char *msg;
    size_t cap;
} wfile;

static int wset(wfile *w, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int wset(wfile *w, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, w->cap, fmt, ap);
    va_end(ap);
    return status;
}

static int wfail(wfile *w, const char *what)
{
    return wset(w, KILN_NETFILE_ERR_IO, "%s: %s (HDF5: %s)", w->shown, what, kiln_h5_why().s);
}

static hid_t h5_type(enum kiln_netfile_type t, bool file)
{
    switch (t) {
    case KILN_NETFILE_I32:
        return file ? H5T_STD_I32LE : H5T_NATIVE_INT32;
    case KILN_NETFILE_F64:
        return file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE;
    default:
        return file ? H5T_IEEE_F32LE : H5T_NATIVE_FLOAT;
    }
}

static int write_string_attr(wfile *w, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR), a = -1;
    bool ok = t >= 0 && s >= 0 && H5Tset_size(t, strlen(value)) >= 0 && H5Tset_strpad(t, H5T_STR_NULLPAD) >= 0 &&
              (a = H5Acreate2(w->file, name, t, s, H5P_DEFAULT, H5P_DEFAULT)) >= 0 && H5Awrite(a, t, value) >= 0;
    kiln_h5_close(a, H5Aclose);
    kiln_h5_close(s, H5Sclose);
    kiln_h5_close(t, H5Tclose);
    return ok ? KILN_NETFILE_OK : wfail(w, "cannot write an attribute");
}

static int write_attrs(wfile *w, const char *version_string)
{
    int st;
    if ((st = write_string_attr(w, KILN_NETFILE_ATTR_FORMAT, KILN_NETFILE_FORMAT)) ||
        (st = write_string_attr(w, KILN_NETFILE_ATTR_KILN, version_string)))
        return st;
    int version = KILN_NETFILE_VERSION;
    hid_t s = H5Screate(H5S_SCALAR), a = -1;
    bool ok = s >= 0 &&
              (a = H5Acreate2(w->file, KILN_NETFILE_ATTR_VERSION, H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
              H5Awrite(a, H5T_NATIVE_INT, &version) >= 0;
    kiln_h5_close(a, H5Aclose);
    kiln_h5_close(s, H5Sclose);
    return ok ? KILN_NETFILE_OK : wfail(w, "cannot write an attribute");
}

static int write_json(wfile *w, const char *json, size_t len)
{
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR), d = -1;
    bool ok = t >= 0 && s >= 0 && H5Tset_size(t, len) >= 0 && H5Tset_strpad(t, H5T_STR_NULLPAD) >= 0 &&
              (d = H5Dcreate2(w->file, KILN_NETFILE_JSON, t, s, H5P_DEFAULT, w->dcpl, H5P_DEFAULT)) >= 0 &&
              H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, json) >= 0;
    kiln_h5_close(d, H5Dclose);
    kiln_h5_close(s, H5Sclose);
    kiln_h5_close(t, H5Tclose);
    return ok ? KILN_NETFILE_OK : wfail(w, "cannot write " KILN_NETFILE_JSON);
}

/* The groups on path (each prefix ending at a '/'), made when missing. */
static int make_groups(wfile *w, const char *path)
{
    size_t n = strlen(path);
    char *buf = malloc(n + 1);
    if (!buf)
        return wset(w, KILN_NETFILE_ERR_NOMEM, "%s: no memory", w->shown);
    memcpy(buf, path, n + 1);
    int st = KILN_NETFILE_OK;
    for (char *s = strchr(buf + 1, '/'); s && !st; s = strchr(s + 1, '/')) {
        *s = 0;
        htri_t there = H5Lexists(w->file, buf, H5P_DEFAULT);
        hid_t g = there > 0 ? 0 : there == 0 ? H5Gcreate2(w->file, buf, H5P_DEFAULT, w->gcpl, H5P_DEFAULT) : -1;
        if (g < 0)
            st = wfail(w, "cannot make a group");
        if (g > 0)
            H5Gclose(g);
        *s = '/';
    }
    free(buf);
    return st;
}

static int write_dataset(wfile *w, const kiln_netfile_dataset *e)
{
    hsize_t dims[KILN_NETFILE_MAX_RANK];
    int st = make_groups(w, e->path);
    if (st)
        return st;
    for (int i = 0; i < e->rank; i++)
        dims[i] = (hsize_t)e->dims[i];
    hid_t s = e->rank ? H5Screate_simple(e->rank, dims, NULL) : H5Screate(H5S_SCALAR), d = -1;
    bool ok = s >= 0 &&
              (d = H5Dcreate2(w->file, e->path, h5_type(e->file_type, true), s, H5P_DEFAULT, w->dcpl, H5P_DEFAULT)) >= 0 &&
              H5Dwrite(d, h5_type(e->mem_type, false), H5S_ALL, H5S_ALL, H5P_DEFAULT, e->data) >= 0;
    kiln_h5_close(d, H5Dclose);
    kiln_h5_close(s, H5Sclose);
    if (!ok) {
        char what[512];
        snprintf(what, sizeof what, "cannot write %s", e->path);
        return wfail(w, what);
    }
    return KILN_NETFILE_OK;
}

/* A new file beside path, named path.kiln-XXXXXXXX (O_EXCL): its name in
** tmp (cap bytes) and its descriptor, or -1 with errno set. */
static int make_temp(const char *path, char *tmp, size_t cap)
{
    for (int tries = 0; tries < 16; tries++) {
        uint32_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = (uint32_t)getpid() * 2654435761u + (uint32_t)tries;
        int k = snprintf(tmp, cap, "%s.kiln-%08x", path, r);
        if (k < 0 || (size_t)k >= cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* The header of a file whose HDF5 part is body[0..n): magic, the file's
** size, the SHA-256 of body, zeros to the header's end. false: no digest. */
static bool make_header(char *hdr, const unsigned char *body, size_t n)
{
    unsigned char md[KILN_NETFILE_SHA256_BYTES];
    unsigned len = 0;
    if (EVP_Digest(body, n, md, &len, EVP_sha256(), NULL) != 1 || len != KILN_NETFILE_SHA256_BYTES)
        return false;
    char hex[2 * KILN_NETFILE_SHA256_BYTES + 1];
    for (int i = 0; i < KILN_NETFILE_SHA256_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    memset(hdr, 0, KILN_NETFILE_HEADER_BYTES);
    snprintf(hdr, KILN_NETFILE_HEADER_BYTES, "%ssize %llu\nsha256 %s\n", KILN_NETFILE_MAGIC,
             (unsigned long long)(n + KILN_NETFILE_HEADER_BYTES), hex);
    return true;
}

/* The HDF5 file, made in memory (HDF5's core driver, no backing store): its
** bytes in *image (the caller's to free), *size of them. */
static int build_image(wfile *w, const char *version, const char *json, size_t json_len,
                       const kiln_netfile_dataset *ds, int n_ds, void **image, size_t *size)
{
    int st = KILN_NETFILE_OK;
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
    w->gcpl = H5Pcreate(H5P_GROUP_CREATE);
    w->dcpl = H5Pcreate(H5P_DATASET_CREATE);
    /* no time stamps: the same network gives the same bytes */
    if (fcpl < 0 || fapl < 0 || w->gcpl < 0 || w->dcpl < 0 || H5Pset_obj_track_times(fcpl, 0) < 0 ||
        H5Pset_userblock(fcpl, KILN_NETFILE_HEADER_BYTES) < 0 ||
        H5Pset_obj_track_times(w->gcpl, 0) < 0 || H5Pset_obj_track_times(w->dcpl, 0) < 0 ||
        H5Pset_fapl_core(fapl, (size_t)1 << 16, 0) < 0 ||
        (w->file = H5Fcreate("kiln-network-image", H5F_ACC_TRUNC, fcpl, fapl)) < 0)
        st = wfail(w, "cannot make the file in memory");
    if (!st)
        st = write_attrs(w, version);
    if (!st)
        st = write_json(w, json, json_len);
    for (int k = 0; k < n_ds && !st; k++)
        st = write_dataset(w, &ds[k]);
    ssize_t n = -1;
    if (!st && (H5Fflush(w->file, H5F_SCOPE_LOCAL) < 0 || (n = H5Fget_file_image(w->file, NULL, 0)) <= 0))
        st = wfail(w, "cannot finish the file");
    /* the image starts at HDF5's superblock; the user block it leaves room
    ** for (its base address) is kiln's header, put in front */
    if (!st && !(*image = malloc((size_t)n + KILN_NETFILE_HEADER_BYTES)))
        st = wset(w, KILN_NETFILE_ERR_NOMEM, "%s: no memory for the file's %zd bytes", w->shown, n);
    if (!st && H5Fget_file_image(w->file, (char *)*image + KILN_NETFILE_HEADER_BYTES, (size_t)n) != n)
        st = wfail(w, "cannot finish the file");
    if (!st && !make_header(*image, (const unsigned char *)*image + KILN_NETFILE_HEADER_BYTES, (size_t)n))
        st = wset(w, KILN_NETFILE_ERR_NOMEM, "%s: cannot compute the file's SHA-256", w->shown);
    *size = st ? 0 : (size_t)n + KILN_NETFILE_HEADER_BYTES;
    kiln_h5_close(w->file, H5Fclose);
    kiln_h5_close(fcpl, H5Pclose);
    kiln_h5_close(fapl, H5Pclose);
    kiln_h5_close(w->gcpl, H5Pclose);
    kiln_h5_close(w->dcpl, H5Pclose);
    return st;
}

int kiln_netfile_write(const char *path, const char *shown, const char *version, const char *json, size_t json_len,
                       const kiln_netfile_dataset *ds, int n, char *msg, size_t cap)
{
    wfile w = {.file = -1, .gcpl = -1, .dcpl = -1, .shown = shown, .msg = msg, .cap = cap};
    void *image = NULL;
    size_t size = 0;
    int st = build_image(&w, version, json, json_len, ds, n, &image, &size);
    if (st)
        return st;
    size_t tcap = strlen(path) + 32;
    char *tmp = malloc(tcap);
    if (!tmp) {
        free(image);
        return wset(&w, KILN_NETFILE_ERR_NOMEM, "%s: no memory", shown);
    }
    int fd = make_temp(path, tmp, tcap);
    if (fd < 0) {
        st = wset(&w, KILN_NETFILE_ERR_IO, "%s: cannot create a file there: %s", shown, strerror(errno));
    } else {
        if (kiln_netfile_io_at(fd, image, size, 0, 1) != 0 || fsync(fd) != 0)
            st = wset(&w, KILN_NETFILE_ERR_IO, "%s: cannot write the file: %s", shown, strerror(errno));
        if (close(fd) != 0 && !st)
            st = wset(&w, KILN_NETFILE_ERR_IO, "%s: cannot write the file: %s", shown, strerror(errno));
        if (!st && rename(tmp, path) != 0)
            st = wset(&w, KILN_NETFILE_ERR_IO, "%s: cannot rename the finished file onto it: %s", shown,
                      strerror(errno));
        if (st)
            unlink(tmp);
    }
    free(tmp);
    free(image);
    return st;
}
