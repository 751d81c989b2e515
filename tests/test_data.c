/* test_data.c: datasets, IDX loading and batch streams.
**
** IDX files are written into a fresh mkdtemp directory per test, plain and
** gzipped, with bytes that are a known function of their index, so every
** loaded value can be checked. Each malformed-file test asserts the status
** and that the one-line message names the file and the numbers a user needs.
** The last case loads the real Fashion-MNIST from KILN_DATA_DIR and fails,
** rather than skips, when it is absent. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "kiln/data.h"
#include "testutil.h"

#define MAGIC_IMAGES 0x00000803u
#define MAGIC_LABELS 0x00000801u
#define DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"
/* What to tell a user whose machine lacks the data set. */
#define SETUP_HINT "run scripts/setup (it installs dataset-fashion-mnist) or set KILN_DATA_DIR"

/* The small data set most tests use: 10 images of 2 x 3 pixels. */
enum { N = 10, ROWS = 2, COLS = 3, PIX = ROWS * COLS, HEADER_IMAGES = 16, HEADER_LABELS = 8 };
static const uint32_t IMAGE_DIMS[] = {N, ROWS, COLS};
static const uint32_t LABEL_DIMS[] = {N};

static char tmpdir[64];

static void tmp_setup(void) { kiln_test_tmpdir(tmpdir, sizeof tmpdir, "kiln_test_data"); }

static void tmp_teardown(void) { kiln_test_rmtree(tmpdir); }

/* buf (PATH_MAX) = tmpdir/name */
static char *tmp_path(char *buf, const char *name)
{
    int n = snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name);
    ck_assert(n > 0 && n < PATH_MAX);
    return buf;
}

static void write_bytes(const char *path, const void *buf, size_t n, bool gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        if (n)
            ck_assert_int_eq(gzwrite(f, buf, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);
    }
}

/* Byte k of a test file's data (total bytes): labels k*7 % 10; images a
** spread of values that starts at 0 and ends at 255. */
static unsigned char data_byte(uint32_t magic, size_t k, size_t total)
{
    if (magic == MAGIC_LABELS)
        return (unsigned char)(k * 7 % 10);
    if (k == 0)
        return 0;
    if (k == total - 1)
        return 255;
    return (unsigned char)((k * 37 + 11) % 256);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Write an IDX file (magic, dims, data_byte data, extra trailing bytes),
** keeping only its first keep bytes; returns the full length. */
static size_t write_idx_ex(const char *path, uint32_t magic, int n_dims, const uint32_t *dims,
                           size_t extra, size_t keep, bool gz)
{
    size_t total = 1;
    for (int k = 0; k < n_dims; k++)
        total *= dims[k];
    size_t len = 4 + 4 * (size_t)n_dims + total + extra;
    unsigned char *buf = malloc(len);
    ck_assert_ptr_nonnull(buf);
    put_be32(buf, magic);
    for (int k = 0; k < n_dims; k++)
        put_be32(buf + 4 + 4 * k, dims[k]);
    unsigned char *data = buf + 4 + 4 * n_dims;
    for (size_t k = 0; k < total + extra; k++)
        data[k] = data_byte(magic, k, total);
    write_bytes(path, buf, keep < len ? keep : len, gz);
    free(buf);
    return len;
}

static void write_idx(const char *path, uint32_t magic, int n_dims, const uint32_t *dims, bool gz)
{
    write_idx_ex(path, magic, n_dims, dims, 0, SIZE_MAX, gz);
}

static void write_pair(char *images, char *labels, bool gz)
{
    tmp_path(images, gz ? "images.idx3.gz" : "images.idx3");
    tmp_path(labels, gz ? "labels.idx1.gz" : "labels.idx1");
    write_idx(images, MAGIC_IMAGES, 3, IMAGE_DIMS, gz);
    write_idx(labels, MAGIC_LABELS, 1, LABEL_DIMS, gz);
}

static void assert_msg_has(const char *msg, const char *needle)
{
    ck_assert_msg(strstr(msg, needle) != NULL, "message \"%s\" lacks \"%s\"", msg, needle);
    ck_assert_msg(strchr(msg, '\n') == NULL, "message \"%s\" spans lines", msg);
}

/* Open images/labels expecting failure st; the message must name must_name.
** Returns the message (copied into msg) for further checks. */
static void assert_open_fails(const char *images, const char *labels, enum kiln_status st,
                              const char *must_name, char *msg, size_t cap)
{
    kiln_dataset *d = NULL;
    ck_assert_int_eq(kiln_dataset_open_idx(images, labels, &d), st);
    ck_assert_ptr_nonnull(d);
    const char *m = kiln_dataset_errmsg(d);
    assert_msg_has(m, must_name);
    ck_assert_int_eq(kiln_dataset_source_count(d), 0);
    ck_assert_int_eq(kiln_dataset_example_count(d), 0);
    snprintf(msg, cap, "%s", m);
    kiln_dataset_destroy(d);
}

/* ---- IDX loading -------------------------------------------------------- */

static void check_small_dataset(const kiln_dataset *d)
{
    ck_assert_int_eq(kiln_dataset_example_count(d), N);
    ck_assert_int_eq(kiln_dataset_source_count(d), 2);
    int fi = kiln_dataset_source_index(d, "features"), ti = kiln_dataset_source_index(d, "targets");
    ck_assert_int_eq(fi, 0);
    ck_assert_int_eq(ti, 1);
    ck_assert_str_eq(kiln_dataset_source_name(d, fi), "features");
    ck_assert_int_eq(kiln_dataset_source_dtype(d, fi), KILN_DTYPE_F32);
    ck_assert_int_eq(kiln_dataset_source_dtype(d, ti), KILN_DTYPE_I32);
    ck_assert_int_eq(kiln_dataset_source_example_size(d, fi), PIX);
    ck_assert_int_eq(kiln_dataset_source_example_size(d, ti), 1);
    const float *x = kiln_dataset_source_data(d, fi);
    const int32_t *y = kiln_dataset_source_data(d, ti);
    for (size_t k = 0; k < N * PIX; k++) {
        float want = data_byte(MAGIC_IMAGES, k, N * PIX) / 255.0f;
        ck_assert_msg(x[k] == want, "pixel %zu: got %.9g, want %.9g", k, x[k], want);
        ck_assert(x[k] >= 0.0f && x[k] <= 1.0f);
    }
    ck_assert(x[0] == 0.0f);
    ck_assert(x[N * PIX - 1] == 1.0f);
    ck_assert(x[1] == 48.0f / 255.0f); /* byte 1 is 37 + 11 */
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(y[i], i * 7 % 10);
}

START_TEST(idx_plain_files_load_scaled_and_flattened)
{
    char images[PATH_MAX], labels[PATH_MAX];
    write_pair(images, labels, false);
    kiln_dataset *d = NULL;
    ck_assert_int_eq(kiln_dataset_open_idx(images, labels, &d), KILN_OK);
    check_small_dataset(d);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(idx_gzipped_files_load_the_same)
{
    char images[PATH_MAX], labels[PATH_MAX];
    write_pair(images, labels, true);
    kiln_dataset *d = NULL;
    ck_assert_int_eq(kiln_dataset_open_idx(images, labels, &d), KILN_OK);
    check_small_dataset(d);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(idx_null_path_skips_that_source)
{
    char images[PATH_MAX], labels[PATH_MAX];
    write_pair(images, labels, false);
    kiln_dataset *d = NULL;
    ck_assert_int_eq(kiln_dataset_open_idx(NULL, labels, &d), KILN_OK);
    ck_assert_int_eq(kiln_dataset_source_count(d), 1);
    ck_assert_int_eq(kiln_dataset_source_index(d, "features"), -1);
    ck_assert_int_eq(kiln_dataset_source_index(d, "targets"), 0);
    ck_assert_int_eq(kiln_dataset_example_count(d), N);
    kiln_dataset_destroy(d);
    ck_assert_int_eq(kiln_dataset_open_idx(images, NULL, &d), KILN_OK);
    ck_assert_int_eq(kiln_dataset_source_count(d), 1);
    ck_assert_int_eq(kiln_dataset_source_index(d, "features"), 0);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(idx_missing_file_is_io_error_naming_path)
{
    char images[PATH_MAX], labels[PATH_MAX], missing[PATH_MAX], msg[1024];
    write_pair(images, labels, false);
    tmp_path(missing, "no-such-file.gz");
    assert_open_fails(missing, labels, KILN_ERR_IO, missing, msg, sizeof msg);
    assert_msg_has(msg, strerror(ENOENT));
    assert_open_fails(images, missing, KILN_ERR_IO, missing, msg, sizeof msg);
}
END_TEST

START_TEST(idx_directory_is_io_error)
{
    char msg[1024];
    assert_open_fails(tmpdir, NULL, KILN_ERR_IO, tmpdir, msg, sizeof msg);
}
END_TEST

START_TEST(idx_wrong_magic_names_file_and_both_magics)
{
    char images[PATH_MAX], labels[PATH_MAX], msg[1024];
    write_pair(images, labels, false);
    write_idx(images, 0x00000804u, 4, (const uint32_t[]){N, 1, ROWS, COLS}, false);
    assert_open_fails(images, labels, KILN_ERR_FORMAT, images, msg, sizeof msg);
    assert_msg_has(msg, "0x00000804");
    assert_msg_has(msg, "0x00000803");

    write_bytes(images, "GARBAGE GARBAGE GARBAGE", 23, true);
    assert_open_fails(images, labels, KILN_ERR_FORMAT, images, msg, sizeof msg);
    assert_msg_has(msg, "0x47415242");
    assert_msg_has(msg, "not an IDX file");

    /* float32 data (type code 0x0D) is valid IDX that kiln does not read. */
    write_idx(images, 0x00000D03u, 3, IMAGE_DIMS, false);
    assert_open_fails(images, labels, KILN_ERR_FORMAT, images, msg, sizeof msg);
    assert_msg_has(msg, "type code 0x08");
}
END_TEST

START_TEST(idx_swapped_images_and_labels_say_so)
{
    char images[PATH_MAX], labels[PATH_MAX], msg[1024];
    write_pair(images, labels, true);
    assert_open_fails(labels, images, KILN_ERR_FORMAT, labels, msg, sizeof msg);
    assert_msg_has(msg, "swapped");
}
END_TEST

START_TEST(idx_truncated_images_name_offset_expected_and_got)
{
    char images[PATH_MAX], labels[PATH_MAX], msg[1024];
    for (int gz = 0; gz <= 1; gz++) {
        write_pair(images, labels, gz);
        write_idx_ex(images, MAGIC_IMAGES, 3, IMAGE_DIMS, 0, HEADER_IMAGES + 50, gz);
        assert_open_fails(images, labels, KILN_ERR_FORMAT, images, msg, sizeof msg);
        assert_msg_has(msg, "byte offset 66");
        assert_msg_has(msg, "needs 60 bytes");
        assert_msg_has(msg, "got 50");
    }
}
END_TEST

START_TEST(idx_truncated_header_names_offset)
{
    char images[PATH_MAX], labels[PATH_MAX], msg[1024];
    write_pair(images, labels, false);
    write_idx_ex(images, MAGIC_IMAGES, 3, IMAGE_DIMS, 0, 10, false);
    assert_open_fails(images, labels, KILN_ERR_FORMAT, images, msg, sizeof msg);
    assert_msg_has(msg, "byte offset 10");
    assert_msg_has(msg, "needs 12 bytes, got 6");

    write_idx_ex(labels, MAGIC_LABELS, 1, LABEL_DIMS, 0, 0, true); /* empty */
    assert_open_fails(NULL, labels, KILN_ERR_FORMAT, labels, msg, sizeof msg);
    assert_msg_has(msg, "byte offset 0");
    assert_msg_has(msg, "magic number needs 4 bytes, got 0");
}
END_TEST

START_TEST(idx_label_count_mismatch_names_both_files_and_counts)
{
    char images[PATH_MAX], labels[PATH_MAX], msg[1024];
    write_pair(images, labels, false);
    write_idx(labels, MAGIC_LABELS, 1, (const uint32_t[]){N - 1}, false);
    assert_open_fails(images, labels, KILN_ERR_FORMAT, images, msg, sizeof msg);
    assert_msg_has(msg, labels);
    assert_msg_has(msg, "10 images");
    assert_msg_has(msg, "9 labels");
}
END_TEST

START_TEST(idx_zero_dim_is_format_error)
{
    char images[PATH_MAX], labels[PATH_MAX], msg[1024];
    write_pair(images, labels, false);
    write_idx(images, MAGIC_IMAGES, 3, (const uint32_t[]){N, 0, COLS}, false);
    assert_open_fails(images, NULL, KILN_ERR_FORMAT, images, msg, sizeof msg);
    assert_msg_has(msg, "dimension 1 (rows) is 0");
    write_idx(labels, MAGIC_LABELS, 1, (const uint32_t[]){0}, false);
    assert_open_fails(NULL, labels, KILN_ERR_FORMAT, labels, msg, sizeof msg);
    assert_msg_has(msg, "dimension 0 (examples) is 0");
}
END_TEST

START_TEST(idx_oversized_header_is_rejected_before_reading)
{
    /* Headers only: a 16-byte file must not make kiln allocate what it claims. */
    char images[PATH_MAX], msg[1024];
    unsigned char h[HEADER_IMAGES];
    tmp_path(images, "huge.idx3");
    put_be32(h, MAGIC_IMAGES);
    put_be32(h + 4, 0xffffffffu);
    put_be32(h + 8, 0xffffffffu);
    put_be32(h + 12, 0xffffffffu);
    write_bytes(images, h, sizeof h, false);
    assert_open_fails(images, NULL, KILN_ERR_FORMAT, images, msg, sizeof msg);
    assert_msg_has(msg, "4294967295 x 4294967295 x 4294967295");
    assert_msg_has(msg, "limit");

    put_be32(h + 4, 1u << 16); /* 2^36 bytes: no overflow, over the cap */
    put_be32(h + 8, 1u << 10);
    put_be32(h + 12, 1u << 10);
    write_bytes(images, h, sizeof h, true);
    assert_open_fails(images, NULL, KILN_ERR_FORMAT, images, msg, sizeof msg);
    assert_msg_has(msg, "limit");

    /* Under the cap (2^30 bytes) but absent: truncation, after a bounded allocation. */
    put_be32(h + 4, 1u << 10);
    write_bytes(images, h, sizeof h, false);
    assert_open_fails(images, NULL, KILN_ERR_FORMAT, images, msg, sizeof msg);
    assert_msg_has(msg, "needs 1073741824 bytes");
    assert_msg_has(msg, "got 0");
}
END_TEST

START_TEST(idx_trailing_data_is_format_error)
{
    char images[PATH_MAX], labels[PATH_MAX], msg[1024];
    write_pair(images, labels, true);
    write_idx_ex(labels, MAGIC_LABELS, 1, LABEL_DIMS, 3, SIZE_MAX, true);
    assert_open_fails(images, labels, KILN_ERR_FORMAT, labels, msg, sizeof msg);
    assert_msg_has(msg, "byte offset 18");
}
END_TEST

/* Read a whole (small) file. */
static size_t slurp(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_uint_lt(n, cap);
    return n;
}

START_TEST(idx_cut_gzip_stream_is_truncation)
{
    char images[PATH_MAX], labels[PATH_MAX], msg[1024];
    unsigned char buf[4096];
    write_pair(images, labels, true);
    size_t n = slurp(images, buf, sizeof buf);
    write_bytes(images, buf, n - 12, false); /* lose the trailer and some data */
    assert_open_fails(images, labels, KILN_ERR_FORMAT, images, msg, sizeof msg);
    assert_msg_has(msg, "truncated");
    assert_msg_has(msg, "gzip stream ends early");
}
END_TEST

START_TEST(idx_bad_gzip_crc_is_format_error)
{
    char images[PATH_MAX], labels[PATH_MAX], msg[1024];
    unsigned char buf[4096];
    write_pair(images, labels, true);
    size_t n = slurp(labels, buf, sizeof buf);
    buf[n - 8] ^= 0x5a; /* first byte of the CRC-32 trailer */
    write_bytes(labels, buf, n, false);
    assert_open_fails(images, labels, KILN_ERR_FORMAT, labels, msg, sizeof msg);
    assert_msg_has(msg, "gzip");
}
END_TEST

/* Junk after the gzip stream is refused as junk after a plain file is;
** further gzip members are part of the stream, as gzip -d reads them (#9). */
START_TEST(regress_9_junk_after_gzip_stream_is_rejected)
{
    char images[PATH_MAX], labels[PATH_MAX], msg[1024], want[64];
    unsigned char buf[4096];
    write_pair(images, labels, true);
    size_t n = slurp(labels, buf, sizeof buf);
    static const char *const junks[] = {"JUNK", "\0\0\0\0\0\0\0\0", "\x1f"};
    static const size_t junk_len[] = {4, 8, 1};
    for (int i = 0; i < 3; i++) {
        memcpy(buf + n, junks[i], junk_len[i]);
        write_bytes(labels, buf, n + junk_len[i], false);
        assert_open_fails(images, labels, KILN_ERR_FORMAT, labels, msg, sizeof msg);
        assert_msg_has(msg, "after the gzip stream");
        snprintf(want, sizeof want, "compressed byte offset %zu", n);
        assert_msg_has(msg, want);
    }

    /* Two members holding the file's two halves load as one file. */
    unsigned char whole[64];
    size_t len = write_idx_ex(labels, MAGIC_LABELS, 1, LABEL_DIMS, 0, SIZE_MAX, false);
    ck_assert_uint_eq(slurp(labels, whole, sizeof whole), len);
    char half[PATH_MAX];
    tmp_path(half, "half.gz");
    write_bytes(half, whole, 7, true);
    size_t n1 = slurp(half, buf, sizeof buf);
    write_bytes(half, whole + 7, len - 7, true);
    size_t n2 = slurp(half, buf + n1, sizeof buf - n1);
    write_bytes(labels, buf, n1 + n2, false);
    kiln_dataset *d = NULL;
    ck_assert_msg(kiln_dataset_open_idx(images, labels, &d) == KILN_OK, "%s", kiln_dataset_errmsg(d));
    check_small_dataset(d);
    kiln_dataset_destroy(d);
}
END_TEST

/* A bad CRC-32 is reported where the trailer holds it, not at offset 0
** (gzread's read-ahead had inflated the whole file at the first read). */
START_TEST(regress_9_gzip_checksum_error_names_its_offset)
{
    char images[PATH_MAX], labels[PATH_MAX], msg[1024], want[96];
    unsigned char buf[4096];
    write_pair(images, labels, true);
    for (int field = 0; field < 2; field++) { /* the CRC-32, then the length */
        write_pair(images, labels, true);
        size_t n = slurp(images, buf, sizeof buf);
        buf[n - 8 + 4 * field] ^= 0x5a;
        write_bytes(images, buf, n, false);
        assert_open_fails(images, labels, KILN_ERR_FORMAT, images, msg, sizeof msg);
        snprintf(want, sizeof want, "compressed byte offset %zu", n - 8 + 4 * (size_t)field);
        assert_msg_has(msg, want);
        snprintf(want, sizeof want, "after %d bytes of data", HEADER_IMAGES + N * PIX);
        assert_msg_has(msg, want);
        assert_msg_has(msg, field == 0 ? "CRC-32" : "length");
    }
}
END_TEST

/* A path too long for a message is shortened, keeping its tail and the
** reason after it (#9). */
START_TEST(regress_9_long_path_keeps_the_reason)
{
    char dir[PATH_MAX], path[PATH_MAX], msg[1024], part[201];
    memset(part, 'd', 200);
    part[200] = '\0';
    ck_assert_int_lt(snprintf(dir, sizeof dir, "%s", tmpdir), (int)sizeof dir);
    for (int i = 0; i < 8; i++) { /* about 1600 bytes of folders */
        size_t used = strlen(dir);
        ck_assert_int_lt(snprintf(dir + used, sizeof dir - used, "/%s", part),
                         (int)(sizeof dir - used));
        ck_assert_int_eq(mkdir(dir, 0700), 0);
    }
    ck_assert_int_lt(snprintf(path, sizeof path, "%s/labels.idx1.gz", dir), (int)sizeof path);

    kiln_dataset *d = NULL;
    ck_assert_int_eq(kiln_dataset_open_idx(NULL, path, &d), KILN_ERR_IO);
    const char *m = kiln_dataset_errmsg(d);
    printf("  long path: %s\n", m);
    assert_msg_has(m, "/labels.idx1.gz: cannot open: ");
    assert_msg_has(m, strerror(ENOENT));
    ck_assert_msg(strncmp(m, "...", 3) == 0, "%s", m);
    kiln_dataset_destroy(d);

    write_idx_ex(path, MAGIC_LABELS, 1, LABEL_DIMS, 0, HEADER_LABELS + 3, true);
    assert_open_fails(NULL, path, KILN_ERR_FORMAT, "labels.idx1.gz: truncated at byte offset 11",
                      msg, sizeof msg);
    assert_msg_has(msg, "after the 8-byte header, got 3");
}
END_TEST

/* Every input of fuzz_idx's corpus (seeds, and findings once fixed: see
** docs/security.md) loads or fails with a one-line message naming the file,
** in this suite too, and so under ASan and UBSan. */
START_TEST(idx_fuzz_corpus_loads_or_fails_cleanly)
{
    const char *dir = getenv("KILN_IDX_CORPUS");
    ck_assert_msg(dir && *dir, "KILN_IDX_CORPUS is unset (tests/meson.build sets it)");
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
    int n_files = 0, n_loaded = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char path[PATH_MAX];
        if (e->d_name[0] == '.')
            continue;
        ck_assert_int_lt(snprintf(path, sizeof path, "%s/%s", dir, e->d_name), (int)sizeof path);
        for (int as_labels = 0; as_labels < 2; as_labels++) {
            kiln_dataset *ds = NULL;
            enum kiln_status st = kiln_dataset_open_idx(as_labels ? NULL : path,
                                                        as_labels ? path : NULL, &ds);
            ck_assert_ptr_nonnull(ds);
            if (st == KILN_OK) {
                ck_assert_int_gt(kiln_dataset_example_count(ds), 0);
                n_loaded++;
            } else {
                ck_assert_msg(st == KILN_ERR_FORMAT || st == KILN_ERR_IO, "%s: status %d", path,
                              st);
                assert_msg_has(kiln_dataset_errmsg(ds), e->d_name);
            }
            kiln_dataset_destroy(ds);
        }
        n_files++;
    }
    closedir(d);
    printf("  corpus: %d files, %d loads\n", n_files, n_loaded);
    ck_assert_int_ge(n_files, 10);
    ck_assert_int_ge(n_loaded, 4);
}
END_TEST

START_TEST(idx_open_without_files_is_an_empty_dataset)
{
    kiln_dataset *d = NULL;
    ck_assert_int_eq(kiln_dataset_open_idx(NULL, NULL, &d), KILN_OK);
    ck_assert_int_eq(kiln_dataset_source_count(d), 0);
    ck_assert_int_eq(kiln_dataset_example_count(d), 0);
    kiln_dataset_destroy(d);
    kiln_dataset_destroy(NULL);
}
END_TEST

/* ---- in-memory sources --------------------------------------------------- */

START_TEST(add_source_copies_data_and_reports_shape)
{
    kiln_dataset *d = kiln_dataset_create();
    ck_assert_ptr_nonnull(d);
    double x[3][2][2];
    for (int i = 0; i < 12; i++)
        (&x[0][0][0])[i] = i * 0.5;
    int64_t dims[2] = {2, 2};
    ck_assert_int_eq(kiln_dataset_add_source(d, "x", KILN_DTYPE_F64, 3, 2, dims, x), KILN_OK);
    x[0][0][0] = 99; /* the dataset holds its own copy */
    const double *got = kiln_dataset_source_data(d, 0);
    ck_assert(got != &x[0][0][0]);
    for (int i = 0; i < 12; i++)
        ck_assert(got[i] == i * 0.5);
    ck_assert_int_eq(kiln_dataset_source_example_size(d, 0), 4);
    ck_assert_int_eq(kiln_dataset_source_dtype(d, 0), KILN_DTYPE_F64);
    ck_assert_int_eq(kiln_dataset_example_count(d), 3);

    int32_t y[3] = {1, 2, 3};
    ck_assert_int_eq(kiln_dataset_add_source(d, "y", KILN_DTYPE_I32, 3, 0, NULL, y), KILN_OK);
    ck_assert_int_eq(kiln_dataset_source_count(d), 2);
    ck_assert_int_eq(kiln_dataset_source_index(d, "y"), 1);
    ck_assert_int_eq(kiln_dataset_source_index(d, "z"), -1);
    ck_assert_int_eq(kiln_dataset_source_index(d, NULL), -1);
    ck_assert_int_eq(kiln_dataset_source_example_size(d, 1), 1);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(add_source_name_longer_than_max_is_rejected)
{
    kiln_dataset *d = kiln_dataset_create();
    char name[KILN_MAX_NAME + 2];
    memset(name, 'n', KILN_MAX_NAME);
    name[KILN_MAX_NAME] = '\0';
    int32_t y[1] = {0};
    ck_assert_int_eq(kiln_dataset_add_source(d, name, KILN_DTYPE_I32, 1, 0, NULL, y), KILN_OK);
    ck_assert_str_eq(kiln_dataset_source_name(d, 0), name);
    name[0] = 'm';
    name[KILN_MAX_NAME] = 'n';
    name[KILN_MAX_NAME + 1] = '\0';
    ck_assert_int_eq(kiln_dataset_add_source(d, name, KILN_DTYPE_I32, 1, 0, NULL, y), KILN_ERR_ARG);
    assert_msg_has(kiln_dataset_errmsg(d), "128 characters, the limit is 127");
    ck_assert_int_eq(kiln_dataset_source_count(d), 1);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(add_source_duplicate_name_is_rejected)
{
    kiln_dataset *d = kiln_dataset_create();
    int32_t y[2] = {0, 1};
    ck_assert_int_eq(kiln_dataset_add_source(d, "targets", KILN_DTYPE_I32, 2, 0, NULL, y), KILN_OK);
    ck_assert_int_eq(kiln_dataset_add_source(d, "targets", KILN_DTYPE_I32, 2, 0, NULL, y),
                     KILN_ERR_ARG);
    assert_msg_has(kiln_dataset_errmsg(d), "'targets' already exists");
    ck_assert_int_eq(kiln_dataset_source_count(d), 1);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(add_source_count_disagreement_is_shape_error)
{
    kiln_dataset *d = kiln_dataset_create();
    int32_t y[5] = {0};
    float x[4] = {0};
    ck_assert_int_eq(kiln_dataset_add_source(d, "targets", KILN_DTYPE_I32, 5, 0, NULL, y), KILN_OK);
    ck_assert_int_eq(kiln_dataset_add_source(d, "features", KILN_DTYPE_F32, 4, 0, NULL, x),
                     KILN_ERR_SHAPE);
    assert_msg_has(kiln_dataset_errmsg(d), "'features' has 4 examples");
    assert_msg_has(kiln_dataset_errmsg(d), "have 5");
    ck_assert_int_eq(kiln_dataset_example_count(d), 5);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(add_source_bad_arguments_are_rejected)
{
    kiln_dataset *d = kiln_dataset_create();
    float x[4] = {0};
    int64_t dims[2] = {2, 2}, zero[1] = {0};
    ck_assert_int_eq(kiln_dataset_add_source(d, NULL, KILN_DTYPE_F32, 1, 0, NULL, x), KILN_ERR_ARG);
    ck_assert_int_eq(kiln_dataset_add_source(d, "", KILN_DTYPE_F32, 1, 0, NULL, x), KILN_ERR_ARG);
    ck_assert_int_eq(kiln_dataset_add_source(d, "x", (enum kiln_dtype)9, 1, 0, NULL, x),
                     KILN_ERR_ARG);
    ck_assert_int_eq(kiln_dataset_add_source(d, "x", KILN_DTYPE_F32, -1, 0, NULL, x), KILN_ERR_ARG);
    assert_msg_has(kiln_dataset_errmsg(d), "example count is -1");
    ck_assert_int_eq(kiln_dataset_add_source(d, "x", KILN_DTYPE_F32, 1, -1, dims, x), KILN_ERR_ARG);
    ck_assert_int_eq(kiln_dataset_add_source(d, "x", KILN_DTYPE_F32, 1, KILN_MAX_RANK, dims, x),
                     KILN_ERR_ARG);
    ck_assert_int_eq(kiln_dataset_add_source(d, "x", KILN_DTYPE_F32, 1, 2, NULL, x), KILN_ERR_ARG);
    ck_assert_int_eq(kiln_dataset_add_source(d, "x", KILN_DTYPE_F32, 1, 1, zero, x),
                     KILN_ERR_SHAPE);
    assert_msg_has(kiln_dataset_errmsg(d), "example dim 0 is 0");
    ck_assert_int_eq(kiln_dataset_add_source(d, "x", KILN_DTYPE_F32, 1, 2, dims, NULL),
                     KILN_ERR_ARG);
    ck_assert_int_eq(kiln_dataset_source_count(d), 0);
    /* An empty source needs no data. */
    ck_assert_int_eq(kiln_dataset_add_source(d, "x", KILN_DTYPE_F32, 0, 2, dims, NULL), KILN_OK);
    kiln_dataset_destroy(d);
}
END_TEST

/* ---- streams ------------------------------------------------------------ */

/* n examples: "index" int32 (i) and "pair" float64 (2 per example: i, -i). */
static kiln_dataset *indexed_dataset(int n)
{
    kiln_dataset *d = kiln_dataset_create();
    ck_assert_ptr_nonnull(d);
    int32_t *idx = malloc((size_t)n * sizeof *idx);
    double *pair = malloc((size_t)n * 2 * sizeof *pair);
    ck_assert(idx && pair);
    for (int i = 0; i < n; i++) {
        idx[i] = i;
        pair[2 * i] = i;
        pair[2 * i + 1] = -i;
    }
    int64_t two = 2;
    ck_assert_int_eq(kiln_dataset_add_source(d, "index", KILN_DTYPE_I32, n, 0, NULL, idx), KILN_OK);
    ck_assert_int_eq(kiln_dataset_add_source(d, "pair", KILN_DTYPE_F64, n, 1, &two, pair), KILN_OK);
    free(idx);
    free(pair);
    return d;
}

/* Read one epoch into order[] (capacity cap), checking that both sources
** agree; returns the number of examples seen, batch sizes into sizes[]. */
static int read_epoch(kiln_stream *s, int *order, int cap, int64_t *sizes, int *n_batches)
{
    kiln_batch b;
    int seen = 0;
    *n_batches = 0;
    while (kiln_stream_next(s, &b)) {
        ck_assert_int_eq(b.n_sources, 2);
        const int32_t *idx = b.sources[0];
        const double *pair = b.sources[1];
        for (int64_t k = 0; k < b.size; k++) {
            ck_assert_int_lt(seen, cap);
            ck_assert(pair[2 * k] == idx[k] && pair[2 * k + 1] == -idx[k]);
            order[seen++] = idx[k];
        }
        sizes[(*n_batches)++] = b.size;
    }
    return seen;
}

START_TEST(sequential_batches_in_order_with_short_last)
{
    kiln_dataset *d = indexed_dataset(10);
    kiln_stream *s = NULL;
    ck_assert_int_eq(kiln_stream_create(d, KILN_SCHEME_SEQUENTIAL, 4, 0, &s), KILN_OK);
    ck_assert_int_eq(kiln_stream_batch_count(s), 3);
    ck_assert_int_eq(kiln_stream_batch_size(s), 4);
    ck_assert_ptr_eq(kiln_stream_dataset(s), d);
    for (int epoch = 0; epoch < 2; epoch++) {
        int order[16], nb;
        int64_t sizes[8];
        ck_assert_int_eq(read_epoch(s, order, 16, sizes, &nb), 10);
        ck_assert_int_eq(nb, 3);
        ck_assert_int_eq(sizes[0], 4);
        ck_assert_int_eq(sizes[1], 4);
        ck_assert_int_eq(sizes[2], 2);
        for (int i = 0; i < 10; i++)
            ck_assert_int_eq(order[i], i);
        kiln_batch b;
        ck_assert(!kiln_stream_next(s, &b)); /* stays at the end until reset */
        ck_assert_int_eq(kiln_stream_reset(s), KILN_OK);
    }
    /* Sequential batches point into the dataset itself. */
    kiln_batch b;
    ck_assert(kiln_stream_next(s, &b));
    ck_assert(kiln_stream_next(s, &b));
    ck_assert_ptr_eq(b.sources[0], (const int32_t *)kiln_dataset_source_data(d, 0) + 4);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(batch_larger_than_dataset_is_one_short_batch)
{
    kiln_dataset *d = indexed_dataset(10);
    for (int sch = 0; sch <= 1; sch++) {
        kiln_stream *s = NULL;
        ck_assert_int_eq(kiln_stream_create(d, (enum kiln_scheme)sch, 1000, 3, &s), KILN_OK);
        ck_assert_int_eq(kiln_stream_batch_count(s), 1);
        int order[16], nb;
        int64_t sizes[4];
        ck_assert_int_eq(read_epoch(s, order, 16, sizes, &nb), 10);
        ck_assert_int_eq(nb, 1);
        kiln_stream_destroy(s);
    }
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(shuffled_covers_each_example_once_per_epoch_as_fuel)
{
    /* Fuel's ShuffledScheme with RandomState(1): each epoch is
    ** rng.permutation(10) -- hard-coded from numpy. */
    static const int epoch1[] = {2, 9, 6, 4, 0, 3, 1, 7, 8, 5};
    static const int epoch2[] = {9, 5, 3, 0, 8, 4, 2, 1, 6, 7};
    kiln_dataset *d = indexed_dataset(10);
    kiln_stream *s = NULL;
    ck_assert_int_eq(kiln_stream_create(d, KILN_SCHEME_SHUFFLED, 4, 1, &s), KILN_OK);
    int order[3][16], nb;
    int64_t sizes[8];
    for (int e = 0; e < 3; e++) {
        ck_assert_int_eq(kiln_stream_reset(s), KILN_OK);
        ck_assert_int_eq(read_epoch(s, order[e], 16, sizes, &nb), 10);
        ck_assert_int_eq(nb, 3);
        ck_assert_int_eq(sizes[2], 2);
        int seen[10] = {0};
        for (int i = 0; i < 10; i++)
            seen[order[e][i]]++;
        for (int i = 0; i < 10; i++)
            ck_assert_msg(seen[i] == 1, "epoch %d: example %d seen %d times", e, i, seen[i]);
    }
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(order[0][i], epoch1[i]);
        ck_assert_int_eq(order[1][i], epoch2[i]);
    }
    ck_assert(memcmp(order[1], order[2], 10 * sizeof(int)) != 0);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(shuffled_is_deterministic_for_a_seed)
{
    enum { M = 100 };
    kiln_dataset *d = indexed_dataset(M);
    kiln_stream *a = NULL, *b = NULL, *c = NULL;
    ck_assert_int_eq(kiln_stream_create(d, KILN_SCHEME_SHUFFLED, 7, 12345, &a), KILN_OK);
    ck_assert_int_eq(kiln_stream_create(d, KILN_SCHEME_SHUFFLED, 7, 12345, &b), KILN_OK);
    ck_assert_int_eq(kiln_stream_create(d, KILN_SCHEME_SHUFFLED, 7, 12346, &c), KILN_OK);
    for (int e = 0; e < 3; e++) {
        int oa[M], ob[M], oc[M], nb;
        int64_t sizes[M];
        ck_assert_int_eq(read_epoch(a, oa, M, sizes, &nb), M);
        ck_assert_int_eq(nb, 15);
        ck_assert_int_eq(read_epoch(b, ob, M, sizes, &nb), M);
        ck_assert_int_eq(read_epoch(c, oc, M, sizes, &nb), M);
        ck_assert(memcmp(oa, ob, sizeof oa) == 0);
        ck_assert(memcmp(oa, oc, sizeof oa) != 0);
        kiln_stream_reset(a);
        kiln_stream_reset(b);
        kiln_stream_reset(c);
    }
    kiln_stream_destroy(a);
    kiln_stream_destroy(b);
    kiln_stream_destroy(c);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(reset_mid_epoch_reshuffles_reset_before_any_batch_does_not)
{
    kiln_dataset *d = indexed_dataset(10);
    kiln_stream *s = NULL;
    ck_assert_int_eq(kiln_stream_create(d, KILN_SCHEME_SHUFFLED, 4, 1, &s), KILN_OK);
    kiln_batch b;
    ck_assert_int_eq(kiln_stream_reset(s), KILN_OK);
    ck_assert_int_eq(kiln_stream_reset(s), KILN_OK);
    ck_assert(kiln_stream_next(s, &b));
    ck_assert_int_eq(((const int32_t *)b.sources[0])[0], 2); /* epoch 1 still */
    ck_assert_int_eq(kiln_stream_reset(s), KILN_OK);
    ck_assert(kiln_stream_next(s, &b));
    ck_assert_int_eq(((const int32_t *)b.sources[0])[0], 9); /* epoch 2 */
    ck_assert_int_eq(b.size, 4);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(stream_bad_batch_size_is_arg_error)
{
    kiln_dataset *d = indexed_dataset(10);
    const int64_t bad[] = {0, -3};
    for (int i = 0; i < 2; i++) {
        kiln_stream *s = NULL;
        ck_assert_int_eq(kiln_stream_create(d, KILN_SCHEME_SHUFFLED, bad[i], 0, &s), KILN_ERR_ARG);
        ck_assert_ptr_nonnull(s);
        assert_msg_has(kiln_stream_errmsg(s), i ? "batch_size is -3" : "batch_size is 0");
        kiln_batch b;
        ck_assert(!kiln_stream_next(s, &b));
        ck_assert_int_eq(kiln_stream_reset(s), KILN_ERR_ARG);
        ck_assert_int_eq(kiln_stream_batch_count(s), 0);
        kiln_stream_destroy(s);
    }
    kiln_stream *s = NULL;
    ck_assert_int_eq(kiln_stream_create(d, (enum kiln_scheme)7, 4, 0, &s), KILN_ERR_ARG);
    assert_msg_has(kiln_stream_errmsg(s), "scheme 7");
    kiln_stream_destroy(s);
    kiln_stream_destroy(NULL);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(stream_over_empty_dataset_fails_clearly)
{
    kiln_dataset *d = kiln_dataset_create();
    kiln_stream *s = NULL;
    ck_assert_int_eq(kiln_stream_create(d, KILN_SCHEME_SEQUENTIAL, 4, 0, &s), KILN_ERR_ARG);
    assert_msg_has(kiln_stream_errmsg(s), "no examples");
    kiln_stream_destroy(s);
    int64_t two = 2;
    ck_assert_int_eq(kiln_dataset_add_source(d, "x", KILN_DTYPE_F32, 0, 1, &two, NULL), KILN_OK);
    ck_assert_int_eq(kiln_stream_create(d, KILN_SCHEME_SHUFFLED, 4, 0, &s), KILN_ERR_ARG);
    assert_msg_has(kiln_stream_errmsg(s), "1 sources, 0 examples");
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(stream_notices_a_changed_dataset)
{
    kiln_dataset *d = indexed_dataset(4);
    kiln_stream *s = NULL;
    ck_assert_int_eq(kiln_stream_create(d, KILN_SCHEME_SHUFFLED, 2, 0, &s), KILN_OK);
    int32_t z[4] = {0};
    ck_assert_int_eq(kiln_dataset_add_source(d, "z", KILN_DTYPE_I32, 4, 0, NULL, z), KILN_OK);
    kiln_batch b;
    ck_assert(!kiln_stream_next(s, &b));
    assert_msg_has(kiln_stream_errmsg(s), "dataset changed");
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(shuffled_stream_gathers_idx_features)
{
    char images[PATH_MAX], labels[PATH_MAX];
    write_pair(images, labels, true);
    kiln_dataset *d = NULL;
    ck_assert_int_eq(kiln_dataset_open_idx(images, labels, &d), KILN_OK);
    kiln_stream *s = NULL;
    ck_assert_int_eq(kiln_stream_create(d, KILN_SCHEME_SHUFFLED, 3, 1, &s), KILN_OK);
    const float *x = kiln_dataset_source_data(d, 0);
    const int32_t *y = kiln_dataset_source_data(d, 1);
    kiln_batch b;
    int total = 0;
    while (kiln_stream_next(s, &b)) {
        const float *bx = b.sources[0];
        const int32_t *by = b.sources[1];
        for (int64_t k = 0; k < b.size; k++) {
            /* Find the example by its pixels; its label must come with it. */
            int found = -1;
            for (int i = 0; i < N; i++)
                if (memcmp(bx + k * PIX, x + i * PIX, PIX * sizeof *x) == 0)
                    found = i;
            ck_assert_int_ge(found, 0);
            ck_assert_int_eq(by[k], y[found]);
            total++;
        }
    }
    ck_assert_int_eq(total, N);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
}
END_TEST

/* ---- the real Fashion-MNIST --------------------------------------------- */

static void check_fashion_mnist(const char *prefix, int64_t n_expected)
{
    const char *dir = getenv("KILN_DATA_DIR");
    if (!dir || !dir[0])
        dir = DEFAULT_DATA_DIR;
    struct stat st;
    ck_assert_msg(stat(dir, &st) == 0 && S_ISDIR(st.st_mode),
                  "Fashion-MNIST directory %s not found (%s): %s", dir, strerror(errno),
                  SETUP_HINT);
    char images[PATH_MAX], labels[PATH_MAX];
    ck_assert(snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", dir, prefix) <
              (int)sizeof images);
    ck_assert(snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", dir, prefix) <
              (int)sizeof labels);

    kiln_dataset *d = NULL;
    enum kiln_status status = kiln_dataset_open_idx(images, labels, &d);
    ck_assert_msg(status == KILN_OK, "%s (%s)", kiln_dataset_errmsg(d), SETUP_HINT);
    ck_assert_int_eq(kiln_dataset_example_count(d), n_expected);
    ck_assert_int_eq(kiln_dataset_source_example_size(d, 0), 784);
    const float *x = kiln_dataset_source_data(d, 0);
    const int32_t *y = kiln_dataset_source_data(d, 1);
    /* Plain loops, one assert after: every passing ck_assert costs a write
    ** to Check's pipe, minutes over 47M pixels. */
    double sum = 0;
    float lo = 1, hi = 0;
    for (int64_t k = 0; k < n_expected * 784; k++) {
        sum += x[k];
        lo = x[k] < lo ? x[k] : lo;
        hi = x[k] > hi ? x[k] : hi;
    }
    ck_assert_msg(lo == 0.0f && hi == 1.0f, "pixels span [%g, %g], expected [0, 1]", lo, hi);
    /* Fashion-MNIST's mean pixel is 0.286 (train) and 0.287 (test). */
    double mean = sum / ((double)n_expected * 784);
    ck_assert_msg(mean > 0.28 && mean < 0.29, "mean pixel %g", mean);
    /* Classes are balanced: n/10 of each. */
    int64_t count[10] = {0}, bad = -1;
    for (int64_t i = 0; i < n_expected && bad < 0; i++) {
        if (y[i] < 0 || y[i] > 9)
            bad = i;
        else
            count[y[i]]++;
    }
    ck_assert_msg(bad < 0, "label %lld is %d, expected 0..9", (long long)bad, bad < 0 ? 0 : y[bad]);
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(count[c], n_expected / 10);
    kiln_dataset_destroy(d);
}

START_TEST(fashion_mnist_train_has_60000_examples)
{
    check_fashion_mnist("train", 60000);
}
END_TEST

START_TEST(fashion_mnist_t10k_has_10000_examples)
{
    check_fashion_mnist("t10k", 10000);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("idx");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, idx_plain_files_load_scaled_and_flattened);
    tcase_add_test(tc, idx_gzipped_files_load_the_same);
    tcase_add_test(tc, idx_null_path_skips_that_source);
    tcase_add_test(tc, idx_missing_file_is_io_error_naming_path);
    tcase_add_test(tc, idx_directory_is_io_error);
    tcase_add_test(tc, idx_wrong_magic_names_file_and_both_magics);
    tcase_add_test(tc, idx_swapped_images_and_labels_say_so);
    tcase_add_test(tc, idx_truncated_images_name_offset_expected_and_got);
    tcase_add_test(tc, idx_truncated_header_names_offset);
    tcase_add_test(tc, idx_label_count_mismatch_names_both_files_and_counts);
    tcase_add_test(tc, idx_zero_dim_is_format_error);
    tcase_add_test(tc, idx_oversized_header_is_rejected_before_reading);
    tcase_add_test(tc, idx_trailing_data_is_format_error);
    tcase_add_test(tc, idx_cut_gzip_stream_is_truncation);
    tcase_add_test(tc, idx_bad_gzip_crc_is_format_error);
    tcase_add_test(tc, idx_open_without_files_is_an_empty_dataset);
    tcase_add_test(tc, regress_9_junk_after_gzip_stream_is_rejected);
    tcase_add_test(tc, regress_9_gzip_checksum_error_names_its_offset);
    tcase_add_test(tc, regress_9_long_path_keeps_the_reason);
    tcase_add_test(tc, idx_fuzz_corpus_loads_or_fails_cleanly);
    tcase_add_test(tc, shuffled_stream_gathers_idx_features);
    suite_add_tcase(s, tc);

    tc = tcase_create("sources");
    tcase_add_test(tc, add_source_copies_data_and_reports_shape);
    tcase_add_test(tc, add_source_name_longer_than_max_is_rejected);
    tcase_add_test(tc, add_source_duplicate_name_is_rejected);
    tcase_add_test(tc, add_source_count_disagreement_is_shape_error);
    tcase_add_test(tc, add_source_bad_arguments_are_rejected);
    suite_add_tcase(s, tc);

    tc = tcase_create("streams");
    tcase_add_test(tc, sequential_batches_in_order_with_short_last);
    tcase_add_test(tc, batch_larger_than_dataset_is_one_short_batch);
    tcase_add_test(tc, shuffled_covers_each_example_once_per_epoch_as_fuel);
    tcase_add_test(tc, shuffled_is_deterministic_for_a_seed);
    tcase_add_test(tc, reset_mid_epoch_reshuffles_reset_before_any_batch_does_not);
    tcase_add_test(tc, stream_bad_batch_size_is_arg_error);
    tcase_add_test(tc, stream_over_empty_dataset_fails_clearly);
    tcase_add_test(tc, stream_notices_a_changed_dataset);
    suite_add_tcase(s, tc);

    tc = tcase_create("fashion_mnist");
    tcase_set_timeout(tc, 300); /* 47 MB of gzip under the sanitizers */
    tcase_add_test(tc, fashion_mnist_train_has_60000_examples);
    tcase_add_test(tc, fashion_mnist_t10k_has_10000_examples);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kiln_test_run(data_suite());
}
