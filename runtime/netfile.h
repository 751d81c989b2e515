/* netfile.h (internal): writing a network file's bytes
** (docs/network-files.md): kiln's 512-byte header, then the HDF5 file of a
** description and datasets, whole or not at all; and the HDF5 helpers that
** runtime/network.c's reader shares. It needs HDF5, OpenSSL's libcrypto and
** libc, nothing of kiln's: libkiln (runtime/network.c) and AOT training
** programs (runtime/aot.c copies this file and netfile.c into them) write
** network files with the same code. */
#ifndef KILN_RUNTIME_NETFILE_H
#define KILN_RUNTIME_NETFILE_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KILN_NETFILE_HEADER_BYTES 512
#define KILN_NETFILE_MAGIC "kiln-network-file\n"
#define KILN_NETFILE_SHA256_BYTES 32
#define KILN_NETFILE_FORMAT "kiln-network"  /* root attribute kiln_format */
#define KILN_NETFILE_VERSION 1              /* root attribute kiln_format_version */
#define KILN_NETFILE_JSON "/network.json"
#define KILN_NETFILE_ATTR_FORMAT "kiln_format"
#define KILN_NETFILE_ATTR_VERSION "kiln_format_version"
#define KILN_NETFILE_ATTR_KILN "kiln_version"
#define KILN_NETFILE_MAX_RANK 8

/* Types of values, in the file and in memory. */
enum kiln_netfile_type { KILN_NETFILE_F32, KILN_NETFILE_F64, KILN_NETFILE_I32 };

typedef struct kiln_netfile_dataset {
    const char *path;           /* "/parameters/mlp/linear_0/W"; its groups are made */
    enum kiln_netfile_type file_type, mem_type;
    int rank;                   /* 0: a scalar */
    int64_t dims[KILN_NETFILE_MAX_RANK];
    const void *data;           /* the product of dims values of mem_type */
} kiln_netfile_dataset;

/* kiln_netfile_write's results. */
enum { KILN_NETFILE_OK, KILN_NETFILE_ERR_IO, KILN_NETFILE_ERR_NOMEM };

/* Write the network file at path: attributes (format, version, kiln_version
** = version), the description json[0..json_len) and the n datasets, made
** in memory, put behind kiln's header, written to a temporary file beside
** path (path.kiln-XXXXXXXX), synced and renamed over it. shown names the
** file in messages. KILN_NETFILE_OK, or an error with the message in
** msg[0..cap). Call it with HDF5's error printing off (kiln_h5_quiet_begin). */
int kiln_netfile_write(const char *path, const char *shown, const char *version, const char *json, size_t json_len,
                       const kiln_netfile_dataset *ds, int n, char *msg, size_t cap);

/* HDF5's error printing off for a call, and the caller's handler back. */
typedef struct kiln_h5quiet {
    H5E_auto2_t func;
    void *data;
} kiln_h5quiet;
void kiln_h5_quiet_begin(kiln_h5quiet *q);
void kiln_h5_quiet_end(kiln_h5quiet *q);

/* The innermost message of HDF5's error stack (then cleared). */
typedef struct kiln_h5why {
    char s[160];
} kiln_h5why;
kiln_h5why kiln_h5_why(void);

/* fn(id) when id is valid. */
void kiln_h5_close(hid_t id, herr_t (*fn)(hid_t));

/* Write (out) or read exactly n bytes of buf at offset off of fd: 0, else
** -1 with errno set (EIO when a read meets the end). */
int kiln_netfile_io_at(int fd, char *buf, size_t n, off_t off, int out);

#endif
