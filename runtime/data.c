/* data.c: in-memory datasets, IDX loading, and batch streams (Fuel's role),
** padded sequence streams included.
**
** A kiln_dataset is an array of sources; each source owns one malloc'd block
** holding all its examples back to back, (N, example dims...) in C order.
** Every source has the same N (checked on add), so example i of every source
** is at i * example_bytes of its block.
**
** IDX files (MNIST, Fashion-MNIST) are untrusted. A file that starts with
** gzip's magic (1f 8b) is inflated, any other is read as it is, in fixed
** chunks that are converted as they arrive (ubyte -> float32 / 255 or
** int32), so a 47 MB file never sits in memory twice. kiln drives zlib's
** inflate itself rather than gzread, which ignores junk after the last gzip
** member and reports a bad CRC at whatever offset its read-ahead had reached
** (#9): here gzip members may follow one another (gzip -d reads them as one
** stream), anything else after them is refused like junk after a plain file,
** and a corrupt stream is reported at its compressed (file) offset and
** after how many bytes of data. The output grows by doubling up to the
** size the header claims, rather than being allocated whole up front: a
** 16-byte file claiming 2^34 bytes costs one small block before the
** truncation is found, not 64 GiB. Every header field is checked before
** use: magic, dims > 0, the product of dims without overflow and under
** IDX_MAX_BYTES; reading past the claimed end must find EOF, which is also
** where inflate checks the gzip trailer. Errors name the file (a long path
** shortened to its tail, so the reason shows) and the byte offset in the
** uncompressed stream. fuzz/fuzz_idx.c runs this reader under libFuzzer.
** Rejected: mmap of plain files (gzipped files are the common case) and
** reading the whole file then parsing (twice the memory, no early checks).
**
** A kiln_stream walks a dataset in batches. Sequential batches point straight
** into the dataset's blocks (examples are contiguous); shuffled batches are
** gathered into per-source buffers the stream allocates once at create,
** sized min(batch_size, N) examples, so kiln_stream_next never allocates.
** Shuffling follows Fuel's ShuffledScheme: each epoch numpy-shuffles the
** identity order with the stream's own RandomState (kiln_rng), so a seed
** gives the same epochs as Fuel with that seed. The permutation is drawn at
** an epoch's first batch: a reset before any batch of an epoch is drawn
** changes nothing, so "create; reset; next" and "create; next" agree.
** Invariants: 0 <= pos <= n_examples; a stream whose create failed is inert
** (next returns false, its message stays).
**
** Sequences. A sequence source stores its examples' steps back to back; the
** dataset keeps one lengths array (and each example's first step) for all
** its sequence sources, which must agree example by example, so a batch has
** one T and one mask. Lengths are untrusted like IDX headers: each >= 1 and
** the running total under KILN_MAX_BYTES, checked before anything is
** copied. A padded stream always gathers: sequence sources are laid out
** time-major (T, B, step..) with zeros after each end, the others (B, ..),
** then the mask (T, B), into buffers sized at create for the dataset's
** longest sequence, so next() still never allocates. Its epoch order is the
** plain stream's (identity or Fuel's shuffle, same draws), then, with
** sort_batches > 1, each window of sort_batches * batch_size examples is
** sorted by length (qsort on (length, position): stable, so a seed gives
** one order) and, shuffled, the epoch's batches are shuffled with the same
** generator: Blocks' machine-translation recipe (Batch of k batches,
** SortMapping, Unpack, Batch) with its batches in random order. Rejected:
** bucketing by fixed lengths (needs bucket bounds from the user; sorting
** windows adapts to the data) and padding to the dataset's longest length
** (T per batch is what the program's KILN_TIME is for).
**
** Lifetimes (#9): a stream keeps its dataset alive, and a main loop or a
** DataStreamMonitoring keeps its stream alive (kiln_stream_retain), by the
** reference counts of util.h: kiln_dataset_destroy and kiln_stream_destroy
** drop the caller's reference, and the object goes with the last one. So a
** dataset destroyed before its stream still feeds the stream's batches.
** Rejected: refusing to destroy (a destroy cannot report), and a stream that
** notices its dataset is gone (it cannot, once the memory is freed). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "compiler/rng.h"
#include "compiler/util.h"
#include "kiln/data.h"
#include "runtime/config.h"
#include "runtime/refs.h"
#include "runtime/stream_state.h"

/* Largest IDX payload accepted, in file bytes (16 GiB; MNIST is 47 MB). */
#define IDX_MAX_BYTES (UINT64_C(1) << 34)
/* Magic numbers: 0, 0, type code, number of dims. */
#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_TYPE_UBYTE 0x08u
#define IDX_MAX_DIMS 3
/* Pixels are scaled by 1/IDX_PIXEL_MAX to [0, 1] (Fuel's MNIST does the same). */
#define IDX_PIXEL_MAX 255.0f
/* Bytes converted per read, and bytes of the file read at a time. */
#define IDX_CHUNK (32 * 1024)
#define IDX_GZ_BUFFER (128 * 1024)
/* First output allocation, in elements; it doubles up to the claimed size. */
#define IDX_FIRST_ELEMS (UINT64_C(1) << 22)

/* ---- datasets ----------------------------------------------------------- */

struct kiln_source {
    char name[KILN_MAX_NAME + 1];
    enum kiln_dtype dtype;
    int example_rank;
    int64_t example_dims[KILN_MAX_RANK];
    int64_t example_size; /* elements per example (per step for a sequence) */
    size_t example_bytes;
    bool sequence;        /* steps of d->lengths[i] per example, back to back */
    void *data; /* n_examples * example_bytes (a sequence: total_steps *), owned */
};

struct kiln_dataset {
    kiln_err err;
    kiln_refs refs;  /* the caller's and one per stream */
    struct kiln_source *sources;
    int n_sources, cap_sources;
    int64_t n_examples; /* of every source; 0 while there are none */
    /* Sequence sources share these; NULL while there is none. */
    int64_t *lengths;   /* steps of each example */
    int64_t *starts;    /* step offset of each example's first step */
    int64_t total_steps;
    int64_t max_length, longest; /* the longest sequence, the first example that long */
};

kiln_dataset *kiln_dataset_create(void)
{
    kiln_dataset *d = calloc(1, sizeof *d);
    if (d) {
        kiln_err_clear(&d->err);
        kiln_refs_init(&d->refs);
    }
    return d;
}

static void dataset_clear(kiln_dataset *d)
{
    for (int i = 0; i < d->n_sources; i++)
        free(d->sources[i].data);
    free(d->sources);
    free(d->lengths);
    free(d->starts);
    d->sources = NULL;
    d->lengths = d->starts = NULL;
    d->n_sources = d->cap_sources = 0;
    d->n_examples = d->total_steps = d->max_length = d->longest = 0;
}

static void dataset_free(kiln_dataset *d)
{
    dataset_clear(d);
    free(d);
}

void kiln_dataset_destroy(kiln_dataset *d)
{
    if (d && kiln_refs_drop_caller(&d->refs)) /* streams may keep it alive */
        dataset_free(d);
}

const char *kiln_dataset_errmsg(const kiln_dataset *d)
{
    return d ? d->err.msg : "out of memory";
}

static bool dtype_valid(enum kiln_dtype t)
{
    return t == KILN_DTYPE_F32 || t == KILN_DTYPE_F64 || t == KILN_DTYPE_I32;
}

/* Validate a new source against d and fill *src's metadata (not data).
** unit names what example_dims describe in messages: "example", or "step"
** for a sequence source. */
static enum kiln_status source_check(kiln_dataset *d, const char *name, enum kiln_dtype dtype,
                                     int64_t n_examples, int example_rank,
                                     const int64_t *example_dims, const char *unit,
                                     struct kiln_source *src)
{
    memset(src, 0, sizeof *src);
    if (!name || !name[0])
        return kiln_err_set(&d->err, KILN_ERR_ARG, "source name is %s", name ? "empty" : "NULL");
    size_t len = strlen(name);
    if (len > KILN_MAX_NAME)
        return kiln_err_set(&d->err, KILN_ERR_ARG,
                            "source name \"%.32s...\" has %zu characters, the limit is %d", name,
                            len, KILN_MAX_NAME);
    for (int i = 0; i < d->n_sources; i++)
        if (strcmp(d->sources[i].name, name) == 0)
            return kiln_err_set(&d->err, KILN_ERR_ARG, "source '%s' already exists in the dataset",
                                name);
    if (!dtype_valid(dtype))
        return kiln_err_set(&d->err, KILN_ERR_ARG, "source '%s': unknown dtype %d", name,
                            (int)dtype);
    if (n_examples < 0)
        return kiln_err_set(&d->err, KILN_ERR_ARG, "source '%s': example count is %lld, must be >= 0",
                            name, (long long)n_examples);
    /* The examples axis takes one of KILN_MAX_RANK dims. */
    if (example_rank < 0 || example_rank > KILN_MAX_RANK - 1)
        return kiln_err_set(&d->err, KILN_ERR_ARG,
                            "source '%s': %s rank %d, expected 0..%d", name, unit, example_rank,
                            KILN_MAX_RANK - 1);
    if (example_rank > 0 && !example_dims)
        return kiln_err_set(&d->err, KILN_ERR_ARG, "source '%s': %s_dims is NULL for rank %d",
                            name, unit, example_rank);
    if (d->n_sources > 0 && n_examples != d->n_examples)
        return kiln_err_set(&d->err, KILN_ERR_SHAPE,
                            "source '%s' has %lld examples, the dataset's other sources have %lld",
                            name, (long long)n_examples, (long long)d->n_examples);

    size_t esize = kiln_dtype_size(dtype), bytes = esize;
    int64_t size = 1;
    for (int k = 0; k < example_rank; k++) {
        int64_t dim = example_dims[k];
        if (dim <= 0)
            return kiln_err_set(&d->err, KILN_ERR_SHAPE,
                                "source '%s': %s dim %d is %lld, must be > 0", name, unit, k,
                                (long long)dim);
        if ((uint64_t)dim > (uint64_t)KILN_MAX_BYTES / bytes)
            return kiln_err_set(&d->err, KILN_ERR_SHAPE,
                                "source '%s': %s %s has more than %lld bytes (dim %d is %lld)",
                                name, unit[0] == 'e' ? "an" : "a", unit, (long long)KILN_MAX_BYTES,
                                k, (long long)dim);
        bytes *= (size_t)dim;
        size *= dim;
        src->example_dims[k] = dim;
    }
    if (n_examples > 0 && (uint64_t)n_examples > (uint64_t)KILN_MAX_BYTES / bytes)
        return kiln_err_set(&d->err, KILN_ERR_SHAPE,
                            "source '%s': %lld examples of %zu bytes are more than %lld bytes",
                            name, (long long)n_examples, bytes, (long long)KILN_MAX_BYTES);
    memcpy(src->name, name, len + 1);
    src->dtype = dtype;
    src->example_rank = example_rank;
    src->example_size = size;
    src->example_bytes = bytes;
    src->data = NULL;
    return KILN_OK;
}

/* Append src (its data now owned by d). On failure frees src->data. */
static enum kiln_status dataset_push(kiln_dataset *d, struct kiln_source *src, int64_t n_examples)
{
    if (d->n_sources == d->cap_sources) {
        int cap = d->cap_sources ? 2 * d->cap_sources : 4;
        struct kiln_source *s = d->cap_sources < INT_MAX / 2
                                    ? realloc(d->sources, (size_t)cap * sizeof *s)
                                    : NULL;
        if (!s) {
            free(src->data);
            return kiln_err_set(&d->err, KILN_ERR_NOMEM, "source '%s': out of memory", src->name);
        }
        d->sources = s;
        d->cap_sources = cap;
    }
    d->sources[d->n_sources++] = *src;
    d->n_examples = n_examples;
    kiln_err_clear(&d->err);
    return KILN_OK;
}

/* src->data = a copy of `bytes` bytes of data (NULL only when bytes is 0). */
static enum kiln_status source_copy(kiln_dataset *d, struct kiln_source *src, size_t bytes,
                                    const void *data)
{
    if (bytes > 0 && !data)
        return kiln_err_set(&d->err, KILN_ERR_ARG, "source '%s': data is NULL for %zu bytes",
                            src->name, bytes);
    src->data = malloc(bytes ? bytes : 1);
    if (!src->data)
        return kiln_err_set(&d->err, KILN_ERR_NOMEM, "source '%s': out of memory for %zu bytes",
                            src->name, bytes);
    if (bytes)
        memcpy(src->data, data, bytes);
    return KILN_OK;
}

enum kiln_status kiln_dataset_add_source(kiln_dataset *d, const char *name, enum kiln_dtype dtype,
                                         int64_t n_examples, int example_rank,
                                         const int64_t *example_dims, const void *data)
{
    KILN_API_CHECK(d);
    if (!d)
        return KILN_ERR_ARG;
    struct kiln_source src;
    enum kiln_status st =
        source_check(d, name, dtype, n_examples, example_rank, example_dims, "example", &src);
    if (st != KILN_OK)
        return st;
    if ((st = source_copy(d, &src, (size_t)n_examples * src.example_bytes, data)) != KILN_OK)
        return st;
    return dataset_push(d, &src, n_examples);
}

/* Check the lengths of a new sequence source against d (each >= 1, equal to
** the other sequence sources', the total under KILN_MAX_BYTES) and count
** its steps into *total. */
static enum kiln_status sequence_lengths_check(kiln_dataset *d, const char *name,
                                               int64_t n_examples, const int64_t *lengths,
                                               size_t step_bytes, int64_t *total)
{
    int64_t steps = 0, cap = (int64_t)((uint64_t)KILN_MAX_BYTES / step_bytes);
    *total = 0;
    if (n_examples > 0 && !lengths)
        return kiln_err_set(&d->err, KILN_ERR_ARG, "source '%s': lengths is NULL for %lld examples",
                            name, (long long)n_examples);
    for (int64_t i = 0; i < n_examples; i++) {
        int64_t len = lengths[i];
        if (len < 1)
            return kiln_err_set(&d->err, KILN_ERR_SHAPE,
                                "source '%s': example %lld (at step offset %lld) has length %lld; "
                                "a sequence has at least one step",
                                name, (long long)i, (long long)steps, (long long)len);
        if (d->lengths && len != d->lengths[i])
            return kiln_err_set(&d->err, KILN_ERR_SHAPE,
                                "source '%s': example %lld (at step offset %lld) has %lld steps, "
                                "the dataset's other sequence sources have %lld",
                                name, (long long)i, (long long)steps, (long long)len,
                                (long long)d->lengths[i]);
        if (len > cap - steps)
            return kiln_err_set(&d->err, KILN_ERR_SHAPE,
                                "source '%s': example %lld (at step offset %lld, %lld steps) takes "
                                "the source past %lld bytes (%zu bytes a step)",
                                name, (long long)i, (long long)steps, (long long)len,
                                (long long)KILN_MAX_BYTES, step_bytes);
        steps += len;
    }
    *total = steps;
    return KILN_OK;
}

/* Plan: 1. check the name, dtype and step shape as any source's, then every
** length; 2. copy the data and, for the first sequence source, the lengths
** and their offsets; 3. append. Nothing of d changes on failure. */
enum kiln_status kiln_dataset_add_sequences(kiln_dataset *d, const char *name, enum kiln_dtype dtype,
                                            int64_t n_examples, const int64_t *lengths,
                                            int step_rank, const int64_t *step_dims,
                                            const void *data)
{
    KILN_API_CHECK(d);
    if (!d)
        return KILN_ERR_ARG;

    /* 1. */
    struct kiln_source src;
    int64_t total;
    enum kiln_status st =
        source_check(d, name, dtype, n_examples, step_rank, step_dims, "step", &src);
    if (st == KILN_OK)
        st = sequence_lengths_check(d, name, n_examples, lengths, src.example_bytes, &total);
    if (st != KILN_OK)
        return st;

    /* 2. */
    int64_t *own_lengths = NULL, *starts = NULL;
    src.sequence = true;
    if ((st = source_copy(d, &src, (size_t)total * src.example_bytes, data)) != KILN_OK)
        return st;
    if (!d->lengths) {
        size_t n = n_examples ? (size_t)n_examples : 1;
        own_lengths = malloc(n * sizeof *own_lengths);
        starts = malloc(n * sizeof *starts);
        if (!own_lengths || !starts) {
            free(src.data);
            free(own_lengths);
            free(starts);
            return kiln_err_set(&d->err, KILN_ERR_NOMEM, "source '%s': out of memory for %lld lengths",
                                name, (long long)n_examples);
        }
    }

    /* 3. */
    bool first = !d->lengths;
    if ((st = dataset_push(d, &src, n_examples)) != KILN_OK) {
        free(own_lengths);
        free(starts);
        return st;
    }
    if (first) {
        int64_t at = 0;
        d->max_length = 0;
        d->longest = -1;
        for (int64_t i = 0; i < n_examples; i++) {
            own_lengths[i] = lengths[i];
            starts[i] = at;
            at += lengths[i];
            if (lengths[i] > d->max_length) {
                d->max_length = lengths[i];
                d->longest = i;
            }
        }
        d->lengths = own_lengths;
        d->starts = starts;
        d->total_steps = total;
    }
    return KILN_OK;
}

bool kiln_dataset_source_is_sequence(const kiln_dataset *d, int i)
{
    KILN_API_CHECK(d);
    return d && i >= 0 && i < d->n_sources && d->sources[i].sequence;
}

int64_t kiln_dataset_sequence_length(const kiln_dataset *d, int64_t i)
{
    KILN_API_CHECK(d);
    if (!d || !d->lengths || i < 0 || i >= d->n_examples)
        return -1;
    return d->lengths[i];
}

int64_t kiln_dataset_example_count(const kiln_dataset *d)
{
    KILN_API_CHECK(d);
    return d ? d->n_examples : 0;
}

int kiln_dataset_source_count(const kiln_dataset *d)
{
    KILN_API_CHECK(d);
    return d ? d->n_sources : 0;
}

int kiln_dataset_source_index(const kiln_dataset *d, const char *name)
{
    KILN_API_CHECK(d);
    if (!d || !name)
        return -1;
    for (int i = 0; i < d->n_sources; i++)
        if (strcmp(d->sources[i].name, name) == 0)
            return i;
    return -1;
}

static const struct kiln_source *dataset_source(const kiln_dataset *d, int i)
{
    KILN_API_CHECK(d && i >= 0 && i < d->n_sources);
    return d && i >= 0 && i < d->n_sources ? &d->sources[i] : NULL;
}

const char *kiln_dataset_source_name(const kiln_dataset *d, int i)
{
    const struct kiln_source *s = dataset_source(d, i);
    return s ? s->name : NULL;
}

enum kiln_dtype kiln_dataset_source_dtype(const kiln_dataset *d, int i)
{
    const struct kiln_source *s = dataset_source(d, i);
    return s ? s->dtype : KILN_DTYPE_F32;
}

int64_t kiln_dataset_source_example_size(const kiln_dataset *d, int i)
{
    const struct kiln_source *s = dataset_source(d, i);
    return s ? s->example_size : -1;
}

const void *kiln_dataset_source_data(const kiln_dataset *d, int i)
{
    const struct kiln_source *s = dataset_source(d, i);
    return s ? s->data : NULL;
}

/* ---- IDX files ---------------------------------------------------------- */

/* One IDX file being read: where the errors go and how far we got. */
struct idx_file {
    int fd;
    kiln_shown_path shown; /* path as messages show it (#9: long paths) */
    kiln_err *err;
    bool gz;               /* gzip members; else the bytes as they are */
    bool z_live;           /* z holds inflate state (inflateEnd owed) */
    bool raw_eof;          /* read() has returned 0 */
    bool cut;              /* the gzip stream ended inside a member */
    bool done;             /* the last gzip member ended at the end of the file */
    z_stream z;            /* next_in/avail_in: unread bytes of in */
    unsigned char *in;     /* IDX_GZ_BUFFER bytes of the file */
    uint64_t raw_read;     /* file bytes read into in so far */
    uint64_t offset;       /* bytes delivered, uncompressed */
};

/* What an IDX file holds, converted to dtype. */
struct idx_array {
    uint32_t dims[IDX_MAX_DIMS];
    int n_dims;
    uint64_t n_elems;
    void *data; /* n_elems of dtype, caller frees */
};

/* File offset of the next unread byte (the compressed offset for gzip). */
static uint64_t idx_raw_offset(const struct idx_file *x)
{
    return x->raw_read - x->z.avail_in;
}

/* Make at least `want` unread bytes available, or all that remain; moves
** the unread tail to the front of the buffer first. */
static enum kiln_status idx_fill(struct idx_file *x, size_t want)
{
    if (x->z.avail_in >= want || x->raw_eof)
        return KILN_OK;
    if (x->z.avail_in > 0 && x->z.next_in != x->in)
        memmove(x->in, x->z.next_in, x->z.avail_in);
    x->z.next_in = x->in;
    while (x->z.avail_in < want && !x->raw_eof) {
        ssize_t n = read(x->fd, x->in + x->z.avail_in, IDX_GZ_BUFFER - x->z.avail_in);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            return kiln_err_set(x->err, KILN_ERR_IO, "%s: read error at byte offset %llu: %s",
                                x->shown.s, (unsigned long long)x->raw_read, strerror(e));
        }
        if (n == 0)
            x->raw_eof = true;
        x->z.avail_in += (uInt)n;
        x->raw_read += (uint64_t)n;
    }
    return KILN_OK;
}

/* inflate failed with ret: say where, in the file and in the data. A bad
** CRC-32 or length is found after reading the 4-byte field, so the offset
** named is that field's first byte. */
static enum kiln_status idx_inflate_error(struct idx_file *x, int ret)
{
    if (ret == Z_MEM_ERROR)
        return kiln_err_set(x->err, KILN_ERR_NOMEM, "%s: zlib out of memory", x->shown.s);
    const char *why = x->z.msg ? x->z.msg : "unknown zlib error";
    uint64_t at = idx_raw_offset(x);
    const char *hint = "";
    if (strcmp(why, "incorrect data check") == 0 || strcmp(why, "incorrect length check") == 0) {
        at = at >= 4 ? at - 4 : 0;
        hint = why[10] == 'd' ? " (the CRC-32 in the gzip trailer does not match the data: the "
                                "file is damaged)"
                              : " (the length in the gzip trailer does not match the data: the "
                                "file is damaged)";
    }
    return kiln_err_set(x->err, KILN_ERR_FORMAT,
                        "%s: corrupt gzip data at compressed byte offset %llu (after %llu bytes "
                        "of data): %s%s",
                        x->shown.s, (unsigned long long)at, (unsigned long long)x->offset, why,
                        hint);
}

/* A gzip member ended. Another member may follow (gzip -d reads them as
** one stream); anything else after it is junk, refused as junk after a
** plain file is. */
static enum kiln_status idx_member_end(struct idx_file *x)
{
    enum kiln_status st = idx_fill(x, 2);
    if (st != KILN_OK)
        return st;
    if (x->z.avail_in == 0) {
        x->done = true;
        return KILN_OK;
    }
    if (x->z.avail_in >= 2 && x->z.next_in[0] == 0x1f && x->z.next_in[1] == 0x8b) {
        inflateReset(&x->z);
        return KILN_OK;
    }
    return kiln_err_set(x->err, KILN_ERR_FORMAT,
                        "%s: unexpected data after the gzip stream, at compressed byte offset "
                        "%llu (the gzip data ended after %llu bytes)",
                        x->shown.s, (unsigned long long)idx_raw_offset(x),
                        (unsigned long long)x->offset);
}

/* Read up to n bytes; *got says how many. KILN_OK at EOF too: the caller
** decides whether a short read is truncation. */
static enum kiln_status idx_read(struct idx_file *x, void *buf, size_t n, size_t *got)
{
    enum kiln_status st;
    unsigned char *out = buf;
    *got = 0;
    while (*got < n && !x->done) {
        if ((st = idx_fill(x, 1)) != KILN_OK)
            return st;
        if (x->z.avail_in == 0) { /* the file ended */
            x->cut = x->gz;
            x->done = true;
            break;
        }
        size_t room = n - *got < UINT_MAX ? n - *got : UINT_MAX;
        if (!x->gz) {
            size_t k = x->z.avail_in < room ? x->z.avail_in : room;
            memcpy(out + *got, x->z.next_in, k);
            x->z.next_in += k;
            x->z.avail_in -= (uInt)k;
            *got += k;
            x->offset += k;
            continue;
        }
        x->z.next_out = out + *got;
        x->z.avail_out = (uInt)room;
        int ret = inflate(&x->z, Z_NO_FLUSH);
        size_t made = room - x->z.avail_out;
        *got += made;
        x->offset += made;
        if (ret == Z_STREAM_END) {
            if ((st = idx_member_end(x)) != KILN_OK)
                return st;
        } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
            return idx_inflate_error(x, ret == Z_NEED_DICT ? Z_DATA_ERROR : ret);
        }
    }
    return KILN_OK;
}

/* After a short read: say so when the gzip stream itself was cut, not just
** the IDX payload inside a complete one. */
static const char *idx_cut_hint(const struct idx_file *x)
{
    return x->cut ? " (the gzip stream ends early: download cut short?)" : "";
}

/* Open path and look at its first two bytes: gzip's magic, or plain. */
static enum kiln_status idx_open(struct idx_file *x, const char *path, kiln_err *err)
{
    memset(x, 0, sizeof *x);
    x->fd = -1;
    x->shown = kiln_path_show(path);
    x->err = err;
    x->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (x->fd < 0) {
        int e = errno;
        return kiln_err_set(err, KILN_ERR_IO, "%s: cannot open: %s", x->shown.s, strerror(e));
    }
    x->in = malloc(IDX_GZ_BUFFER);
    if (!x->in)
        return kiln_err_set(err, KILN_ERR_NOMEM, "%s: out of memory for the read buffer",
                            x->shown.s);
    x->z.next_in = x->in;
    enum kiln_status s = idx_fill(x, 2);
    if (s != KILN_OK)
        return s;
    x->gz = x->z.avail_in >= 2 && x->in[0] == 0x1f && x->in[1] == 0x8b;
    if (x->gz) {
        /* 16 + MAX_WBITS: gzip wrapper only; inflate checks the CRC-32 and
        ** the length in each member's trailer. */
        if (inflateInit2(&x->z, 16 + MAX_WBITS) != Z_OK)
            return kiln_err_set(err, KILN_ERR_NOMEM, "%s: zlib out of memory", x->shown.s);
        x->z_live = true;
    }
    return KILN_OK;
}

static void idx_close(struct idx_file *x)
{
    if (x->z_live)
        inflateEnd(&x->z);
    if (x->fd >= 0)
        close(x->fd);
    free(x->in);
    x->z_live = false;
    x->fd = -1;
    x->in = NULL;
}

/* Read exactly n header bytes, or report where the file ran out. */
static enum kiln_status idx_read_header(struct idx_file *x, void *buf, size_t n, const char *what)
{
    size_t got;
    enum kiln_status st = idx_read(x, buf, n, &got);
    if (st != KILN_OK)
        return st;
    if (got < n)
        return kiln_err_set(x->err, KILN_ERR_FORMAT,
                            "%s: truncated at byte offset %llu: %s needs %zu bytes, got %zu%s",
                            x->shown.s, (unsigned long long)x->offset, what, n, got,
                            idx_cut_hint(x));
    return KILN_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *idx_magic_what(uint32_t magic)
{
    return magic == IDX_MAGIC_IMAGES ? "images: unsigned bytes, 3 dims"
                                     : "labels: unsigned bytes, 1 dim";
}

/* Check the magic number, naming what was expected and guessing what was found. */
static enum kiln_status idx_check_magic(const struct idx_file *x, uint32_t magic, uint32_t want)
{
    if (magic == want)
        return KILN_OK;
    const char *hint = "";
    if (magic == IDX_MAGIC_IMAGES || magic == IDX_MAGIC_LABELS)
        hint = magic == IDX_MAGIC_IMAGES ? "; this is an images file: images and labels swapped?"
                                         : "; this is a labels file: images and labels swapped?";
    else if ((magic >> 16) != 0)
        hint = "; not an IDX file";
    else if (((magic >> 8) & 0xffu) != IDX_TYPE_UBYTE)
        hint = "; only type code 0x08 (unsigned byte) is supported";
    return kiln_err_set(x->err, KILN_ERR_FORMAT, "%s: bad magic 0x%08X, expected 0x%08X (IDX %s)%s",
                        x->shown.s, (unsigned)magic, (unsigned)want, idx_magic_what(want), hint);
}

/* Convert n ubytes to dtype at dst (an element pointer). */
static void idx_convert(const unsigned char *src, size_t n, enum kiln_dtype dtype, void *dst)
{
    if (dtype == KILN_DTYPE_F32) {
        float *o = dst;
        for (size_t i = 0; i < n; i++)
            o[i] = src[i] / IDX_PIXEL_MAX;
    } else {
        int32_t *o = dst;
        for (size_t i = 0; i < n; i++)
            o[i] = src[i];
    }
}

/* Format "60000 x 28 x 28" into buf. */
static void idx_dims_string(const struct idx_array *a, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < a->n_dims && used < cap; k++) {
        int n = snprintf(buf + used, cap - used, k ? " x %u" : "%u", (unsigned)a->dims[k]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* Read the whole IDX file at path, whose magic must be want, into *a as dtype.
** On failure *a holds no memory and err says why. */
static enum kiln_status idx_load(const char *path, uint32_t want, enum kiln_dtype dtype,
                                 struct idx_array *a, kiln_err *err)
{
    static const char *const dim_names[IDX_MAX_DIMS] = {"examples", "rows", "columns"};
    unsigned char chunk[IDX_CHUNK];
    struct idx_file x;
    size_t esize = kiln_dtype_size(dtype), extra;
    uint64_t header, done = 0, cap = 0;
    enum kiln_status st;
    memset(a, 0, sizeof *a);

    /* 1. Open; gzip or plain. */
    st = idx_open(&x, path, err);
    if (st != KILN_OK)
        goto fail;

    /* 2. Magic, then one big-endian uint32 per dim. */
    st = idx_read_header(&x, chunk, 4, "magic number");
    if (st != KILN_OK)
        goto fail;
    st = idx_check_magic(&x, be32(chunk), want);
    if (st != KILN_OK)
        goto fail;
    a->n_dims = (int)(want & 0xffu);
    st = idx_read_header(&x, chunk, 4 * (size_t)a->n_dims, "dimension header");
    if (st != KILN_OK)
        goto fail;

    /* 3. Dims > 0 and their product under the cap, checked before multiplying. */
    for (int k = 0; k < a->n_dims; k++) {
        a->dims[k] = be32(chunk + 4 * k);
        if (a->dims[k] == 0) {
            st = kiln_err_set(err, KILN_ERR_FORMAT, "%s: dimension %d (%s) is 0 at byte offset %d",
                              x.shown.s, k, dim_names[k], 4 + 4 * k);
            goto fail;
        }
    }
    a->n_elems = 1;
    for (int k = 0; k < a->n_dims; k++) {
        if (a->dims[k] > IDX_MAX_BYTES / a->n_elems) {
            char dims[96];
            idx_dims_string(a, dims, sizeof dims);
            st = kiln_err_set(err, KILN_ERR_FORMAT,
                              "%s: header claims %s bytes of data, over the limit of %llu bytes",
                              x.shown.s, dims, (unsigned long long)IDX_MAX_BYTES);
            goto fail;
        }
        a->n_elems *= a->dims[k];
    }
    if (a->n_elems > SIZE_MAX / esize) {
        st = kiln_err_set(err, KILN_ERR_NOMEM, "%s: %llu elements do not fit in memory", x.shown.s,
                          (unsigned long long)a->n_elems);
        goto fail;
    }

    /* 4. Data, a chunk at a time, into an output that doubles as it fills. */
    header = x.offset;
    while (done < a->n_elems) {
        if (done == cap) {
            uint64_t ncap = cap ? 2 * cap : IDX_FIRST_ELEMS;
            if (ncap > a->n_elems)
                ncap = a->n_elems;
            void *p = realloc(a->data, (size_t)ncap * esize);
            if (!p) {
                st = kiln_err_set(err, KILN_ERR_NOMEM, "%s: out of memory for %llu bytes", x.shown.s,
                                  (unsigned long long)(ncap * esize));
                goto fail;
            }
            a->data = p;
            cap = ncap;
        }
        size_t want_n = cap - done < IDX_CHUNK ? (size_t)(cap - done) : IDX_CHUNK, got;
        st = idx_read(&x, chunk, want_n, &got);
        if (st != KILN_OK)
            goto fail;
        idx_convert(chunk, got, dtype, (char *)a->data + done * esize);
        done += got;
        if (got < want_n) {
            char dims[96];
            idx_dims_string(a, dims, sizeof dims);
            st = kiln_err_set(err, KILN_ERR_FORMAT,
                              "%s: truncated at byte offset %llu: data needs %llu bytes (%s) "
                              "after the %llu-byte header, got %llu%s",
                              x.shown.s, (unsigned long long)x.offset, (unsigned long long)a->n_elems,
                              dims, (unsigned long long)header, (unsigned long long)done,
                              idx_cut_hint(&x));
            goto fail;
        }
    }

    /* 5. The file must end here. Reading on also makes inflate check the
    ** gzip trailer (CRC-32 and length) and look for junk after the stream. */
    st = idx_read(&x, chunk, sizeof chunk, &extra);
    if (st != KILN_OK)
        goto fail;
    if (extra > 0) {
        st = kiln_err_set(err, KILN_ERR_FORMAT,
                          "%s: unexpected data after byte offset %llu, where the header says the "
                          "file ends",
                          x.shown.s, (unsigned long long)(x.offset - extra));
        goto fail;
    }
    idx_close(&x);
    return KILN_OK;

fail:
    idx_close(&x);
    free(a->data);
    a->data = NULL;
    return st;
}

/* Add a loaded IDX array as a source named name, flattening all dims after
** the first into one example dim (rank 0 for 1-dim files). Takes a->data. */
static enum kiln_status idx_add(kiln_dataset *d, const char *name, enum kiln_dtype dtype,
                                struct idx_array *a)
{
    int64_t example = (int64_t)(a->n_elems / a->dims[0]);
    struct kiln_source src;
    int rank = a->n_dims > 1 ? 1 : 0;
    enum kiln_status st = source_check(d, name, dtype, a->dims[0], rank, &example, "example", &src);
    if (st != KILN_OK) {
        free(a->data);
        a->data = NULL;
        return st;
    }
    src.data = a->data;
    a->data = NULL;
    return dataset_push(d, &src, a->dims[0]);
}

enum kiln_status kiln_dataset_open_idx(const char *images_path, const char *labels_path,
                                       kiln_dataset **out)
{
    KILN_API_CHECK(out);
    if (!out)
        return KILN_ERR_ARG;
    kiln_dataset *d = kiln_dataset_create();
    *out = d;
    if (!d)
        return KILN_ERR_NOMEM;

    struct idx_array img = {0}, lab = {0};
    enum kiln_status st = KILN_OK;
    if (images_path)
        st = idx_load(images_path, IDX_MAGIC_IMAGES, KILN_DTYPE_F32, &img, &d->err);
    if (st == KILN_OK && labels_path)
        st = idx_load(labels_path, IDX_MAGIC_LABELS, KILN_DTYPE_I32, &lab, &d->err);
    if (st == KILN_OK && images_path && labels_path && img.dims[0] != lab.dims[0])
        st = kiln_err_set(&d->err, KILN_ERR_FORMAT,
                          "%s has %u images but %s has %u labels; they must agree",
                          kiln_path_show(images_path).s, (unsigned)img.dims[0],
                          kiln_path_show(labels_path).s, (unsigned)lab.dims[0]);
    if (st == KILN_OK && images_path)
        st = idx_add(d, "features", KILN_DTYPE_F32, &img);
    if (st == KILN_OK && labels_path)
        st = idx_add(d, "targets", KILN_DTYPE_I32, &lab);
    if (st != KILN_OK) {
        /* A failed open leaves an empty dataset holding only the message. */
        free(img.data);
        free(lab.data);
        dataset_clear(d);
        return st;
    }
    kiln_err_clear(&d->err);
    return KILN_OK;
}

/* ---- streams ------------------------------------------------------------ */

/* A sort key of the sort-by-length trick: ties keep their order (pos). */
struct sort_key {
    int64_t length, pos, example;
};

struct kiln_stream {
    kiln_err err;
    kiln_refs refs;      /* the caller's and one per main loop or monitoring extension */
    kiln_dataset *d;     /* kept alive: one reference of d->refs */
    enum kiln_scheme scheme;
    bool ready;          /* create succeeded */
    bool epoch_pending;  /* draw (and sort) the order before the epoch's first batch */
    bool padded;         /* kiln_stream_create_padded */
    int n_sources;       /* of d at create: d must not change under a stream */
    int n_out;           /* sources of a batch: n_sources, + the mask when padded */
    int64_t n_examples;
    int64_t batch_size;
    int64_t pos;         /* examples handed out this epoch */
    int64_t *order;      /* shuffled or padded: this epoch's order of the examples */
    void **buffers;      /* shuffled or padded: a batch of each of the n_out sources */
    const void **batch;  /* n_out pointers handed out in kiln_batch */
    int64_t *examples;   /* min(batch_size, n): the batch's dataset indices */
    kiln_rng rng;
    /* Padded streams only. */
    int64_t sort_batches;  /* > 1: sort windows of this many batches by length */
    int64_t window;        /* examples in a sort window */
    struct sort_key *keys; /* window entries */
    int64_t n_batches, batch_no; /* batches of an epoch; the next one */
    int64_t *batch_order;  /* this epoch's order of the batches */
    char mask_name[KILN_MAX_NAME + 1];
    enum kiln_dtype mask_dtype;
};

/* Plan: 1. a handle that keeps d, whatever follows; 2. the checks both kinds
** of stream share; 3. the example order and index buffers. */
static enum kiln_status stream_begin(kiln_dataset *d, enum kiln_scheme scheme, int64_t batch_size,
                                     uint64_t seed, bool padded, kiln_stream **out)
{
    /* 1. */
    kiln_stream *s = calloc(1, sizeof *s);
    *out = s;
    if (!s)
        return KILN_ERR_NOMEM;
    kiln_err_clear(&s->err);
    kiln_refs_init(&s->refs);
    s->d = d;
    if (d)
        kiln_refs_retain(&d->refs);
    s->scheme = scheme;
    s->batch_size = batch_size;
    s->padded = padded;
    /* KILN_SEED_DEFAULT: the configuration's default_seed (#11). */
    kiln_err cfg;
    if (kiln_config_resolve_seed(seed, &seed, &cfg) != KILN_OK)
        return kiln_err_set(&s->err, cfg.status, "stream: %s", cfg.msg);
    kiln_rng_seed_u64(&s->rng, seed);

    /* 2. */
    if (!d)
        return kiln_err_set(&s->err, KILN_ERR_ARG, "stream: dataset is NULL");
    if (scheme != KILN_SCHEME_SEQUENTIAL && scheme != KILN_SCHEME_SHUFFLED)
        return kiln_err_set(&s->err, KILN_ERR_ARG, "stream: unknown scheme %d", (int)scheme);
    if (batch_size <= 0)
        return kiln_err_set(&s->err, KILN_ERR_ARG, "stream: batch_size is %lld, must be > 0",
                            (long long)batch_size);
    if (d->n_sources == 0 || d->n_examples == 0)
        return kiln_err_set(&s->err, KILN_ERR_ARG,
                            "stream: dataset has no examples (%d sources, %lld examples); "
                            "nothing to iterate",
                            d->n_sources, (long long)d->n_examples);
    s->n_sources = d->n_sources;
    s->n_out = d->n_sources + (padded ? 1 : 0);
    s->n_examples = d->n_examples;
    s->n_batches = s->n_examples / batch_size + (s->n_examples % batch_size != 0);

    /* 3. n fits: the sources already hold n examples of >= 4 bytes each. */
    int64_t per = batch_size < s->n_examples ? batch_size : s->n_examples;
    s->batch = calloc((size_t)s->n_out, sizeof *s->batch);
    s->examples = malloc((size_t)per * sizeof *s->examples);
    if (!s->batch || !s->examples)
        return kiln_err_set(&s->err, KILN_ERR_NOMEM, "stream: out of memory");
    if (scheme == KILN_SCHEME_SHUFFLED || padded) {
        s->order = malloc((size_t)s->n_examples * sizeof *s->order);
        s->buffers = calloc((size_t)s->n_out, sizeof *s->buffers);
        if (!s->order || !s->buffers)
            return kiln_err_set(&s->err, KILN_ERR_NOMEM, "stream: out of memory for %lld indices",
                                (long long)s->n_examples);
        s->epoch_pending = true;
    }
    return KILN_OK;
}

/* buffers[i] = bytes, or an error naming what it was for. */
static enum kiln_status stream_buffer(kiln_stream *s, int i, size_t bytes, const char *name)
{
    s->buffers[i] = malloc(bytes ? bytes : 1);
    if (!s->buffers[i])
        return kiln_err_set(&s->err, KILN_ERR_NOMEM,
                            "stream: out of memory for a %zu-byte batch of source '%s'", bytes, name);
    return KILN_OK;
}

enum kiln_status kiln_stream_create(kiln_dataset *d, enum kiln_scheme scheme, int64_t batch_size,
                                    uint64_t seed, kiln_stream **out)
{
    KILN_API_CHECK(out);
    if (!out)
        return KILN_ERR_ARG;
    enum kiln_status st = stream_begin(d, scheme, batch_size, seed, false, out);
    kiln_stream *s = *out;
    if (st != KILN_OK)
        return st;
    for (int i = 0; i < s->n_sources; i++)
        if (d->sources[i].sequence)
            return kiln_err_set(&s->err, KILN_ERR_ARG,
                                "stream: source '%s' holds sequences of varying lengths; iterate "
                                "the dataset with kiln_stream_create_padded",
                                d->sources[i].name);
    if (scheme == KILN_SCHEME_SHUFFLED) {
        int64_t per = batch_size < s->n_examples ? batch_size : s->n_examples;
        for (int i = 0; i < s->n_sources; i++)
            if ((st = stream_buffer(s, i, (size_t)per * d->sources[i].example_bytes,
                                    d->sources[i].name)) != KILN_OK)
                return st;
    }
    s->ready = true;
    return KILN_OK;
}

kiln_padded_options kiln_padded_options_default(void)
{
    kiln_padded_options o;
    memset(&o, 0, sizeof o);
    o.scheme = KILN_SCHEME_SEQUENTIAL;
    o.batch_size = 32;
    o.mask_dtype = KILN_DTYPE_F32;
    return o;
}

/* Plan: 1. the shared checks; 2. the options and the dataset's sequences;
** 3. buffers for a batch at the longest T, each source's size checked
** against KILN_MAX_BYTES before it is multiplied out. */
enum kiln_status kiln_stream_create_padded(kiln_dataset *d, const kiln_padded_options *o,
                                           kiln_stream **out)
{
    KILN_API_CHECK(out);
    if (!out)
        return KILN_ERR_ARG;
    if (!o) {
        enum kiln_status st = stream_begin(d, KILN_SCHEME_SEQUENTIAL, 1, 0, true, out);
        return *out ? kiln_err_set(&(*out)->err, KILN_ERR_ARG, "stream: options are NULL") : st;
    }

    /* 1. */
    enum kiln_status st = stream_begin(d, o->scheme, o->batch_size, o->seed, true, out);
    kiln_stream *s = *out;
    if (st != KILN_OK)
        return st;

    /* 2. */
    const char *mask = o->mask_name ? o->mask_name : "mask";
    size_t len = strlen(mask);
    if (len == 0 || len > KILN_MAX_NAME)
        return kiln_err_set(&s->err, KILN_ERR_ARG, "stream: mask name has %zu characters, expected 1..%d",
                            len, KILN_MAX_NAME);
    memcpy(s->mask_name, mask, len + 1);
    if (kiln_dataset_source_index(d, mask) >= 0)
        return kiln_err_set(&s->err, KILN_ERR_ARG,
                            "stream: the dataset has a source named '%s', the mask's name "
                            "(set kiln_padded_options.mask_name)",
                            mask);
    if (o->mask_dtype != KILN_DTYPE_F32 && o->mask_dtype != KILN_DTYPE_F64)
        return kiln_err_set(&s->err, KILN_ERR_ARG, "stream: mask dtype %d, expected float32 or float64",
                            (int)o->mask_dtype);
    s->mask_dtype = o->mask_dtype;
    if (o->sort_batches < 0)
        return kiln_err_set(&s->err, KILN_ERR_ARG, "stream: sort_batches is %lld, must be >= 0",
                            (long long)o->sort_batches);
    if (!d->lengths)
        return kiln_err_set(&s->err, KILN_ERR_ARG,
                            "stream: the dataset has no sequence source to pad "
                            "(kiln_dataset_add_sequences); use kiln_stream_create");
    s->sort_batches = o->sort_batches;
    if (s->sort_batches > 1) {
        s->window = s->sort_batches > s->n_batches ? s->n_examples : s->sort_batches * s->batch_size;
        if (s->window > s->n_examples)
            s->window = s->n_examples;
        s->keys = malloc((size_t)s->window * sizeof *s->keys);
    }
    s->batch_order = malloc((size_t)s->n_batches * sizeof *s->batch_order);
    if ((s->sort_batches > 1 && !s->keys) || !s->batch_order)
        return kiln_err_set(&s->err, KILN_ERR_NOMEM, "stream: out of memory for %lld batches",
                            (long long)s->n_batches);

    /* 3. */
    int64_t per = s->batch_size < s->n_examples ? s->batch_size : s->n_examples;
    uint64_t cells = (uint64_t)per * (uint64_t)d->max_length; /* both < 2^40 */
    for (int i = 0; i <= s->n_sources; i++) {
        bool is_mask = i == s->n_sources;
        const char *name = is_mask ? s->mask_name : d->sources[i].name;
        size_t eb = is_mask ? kiln_dtype_size(s->mask_dtype) : d->sources[i].example_bytes;
        uint64_t n = is_mask || d->sources[i].sequence ? cells : (uint64_t)per;
        if (n > (uint64_t)KILN_MAX_BYTES / eb)
            return kiln_err_set(&s->err, KILN_ERR_SHAPE,
                                "stream: a padded batch of source '%s' (%lld examples of up to "
                                "%lld steps, example %lld the longest) is past %lld bytes",
                                name, (long long)per, (long long)d->max_length,
                                (long long)d->longest, (long long)KILN_MAX_BYTES);
        if ((st = stream_buffer(s, i, (size_t)n * eb, name)) != KILN_OK)
            return st;
    }
    s->ready = true;
    return KILN_OK;
}

void kiln_stream_retain(kiln_stream *s) { kiln_refs_retain(&s->refs); }

static void stream_free(kiln_stream *s)
{
    if (s->d && kiln_refs_release(&s->d->refs))
        dataset_free(s->d);
    if (s->buffers)
        for (int i = 0; i < s->n_out; i++)
            free(s->buffers[i]);
    free(s->buffers);
    free(s->order);
    free(s->batch);
    free(s->examples);
    free(s->keys);
    free(s->batch_order);
    free(s);
}

void kiln_stream_release(kiln_stream *s)
{
    if (s && kiln_refs_release(&s->refs))
        stream_free(s);
}

void kiln_stream_destroy(kiln_stream *s)
{
    if (s && kiln_refs_drop_caller(&s->refs)) /* main loops may keep it alive */
        stream_free(s);
}

const char *kiln_stream_errmsg(const kiln_stream *s)
{
    return s ? s->err.msg : "out of memory";
}

enum kiln_status kiln_stream_status(const kiln_stream *s)
{
    return s ? s->err.status : KILN_ERR_NOMEM;
}

kiln_dataset *kiln_stream_dataset(const kiln_stream *s)
{
    KILN_API_CHECK(s);
    return s ? s->d : NULL;
}

int64_t kiln_stream_batch_size(const kiln_stream *s)
{
    KILN_API_CHECK(s);
    return s ? s->batch_size : 0;
}

int64_t kiln_stream_batch_count(const kiln_stream *s)
{
    KILN_API_CHECK(s);
    if (!s || !s->ready)
        return 0;
    return s->n_batches;
}

/* ---- a stream's sources ---- */

int kiln_stream_source_count(const kiln_stream *s)
{
    KILN_API_CHECK(s);
    return s && s->ready ? s->n_out : 0;
}

/* Source i of d under s, NULL for the mask (i == n_sources of a padded
** stream) and for a bad i (*ok false). */
static const struct kiln_source *stream_source(const kiln_stream *s, int i, bool *ok)
{
    KILN_API_CHECK(s);
    *ok = s && s->ready && i >= 0 && i < s->n_out;
    return *ok && i < s->n_sources ? &s->d->sources[i] : NULL;
}

const char *kiln_stream_source_name(const kiln_stream *s, int i)
{
    bool ok;
    const struct kiln_source *src = stream_source(s, i, &ok);
    return !ok ? NULL : src ? src->name : s->mask_name;
}

enum kiln_dtype kiln_stream_source_dtype(const kiln_stream *s, int i)
{
    bool ok;
    const struct kiln_source *src = stream_source(s, i, &ok);
    return !ok ? KILN_DTYPE_F32 : src ? src->dtype : s->mask_dtype;
}

int64_t kiln_stream_source_example_size(const kiln_stream *s, int i)
{
    bool ok;
    const struct kiln_source *src = stream_source(s, i, &ok);
    return !ok ? -1 : src ? src->example_size : 1;
}

bool kiln_stream_source_time_major(const kiln_stream *s, int i)
{
    bool ok;
    const struct kiln_source *src = stream_source(s, i, &ok);
    return ok && (!src || src->sequence);
}

int kiln_stream_source_index(const kiln_stream *s, const char *name)
{
    KILN_API_CHECK(s);
    if (!s || !name)
        return -1;
    for (int i = 0; i < kiln_stream_source_count(s); i++)
        if (strcmp(kiln_stream_source_name(s, i), name) == 0)
            return i;
    return -1;
}

int64_t kiln_stream_max_time(const kiln_stream *s, int64_t *example)
{
    KILN_API_CHECK(s);
    bool seq = s && s->ready && s->padded;
    if (example)
        *example = seq ? s->d->longest : -1;
    return seq ? s->d->max_length : 0;
}

/* ---- epochs and batches ---- */

enum kiln_status kiln_stream_reset(kiln_stream *s)
{
    KILN_API_CHECK(s);
    if (!s)
        return KILN_ERR_ARG;
    if (!s->ready)
        return s->err.status;
    if (s->order && s->pos > 0)
        s->epoch_pending = true;
    s->pos = 0;
    s->batch_no = 0;
    kiln_err_clear(&s->err);
    return KILN_OK;
}

/* Fuel's ShuffledScheme: numpy-shuffle the identity order of n (a[n]). */
static void shuffle_indices(kiln_rng *rng, int64_t *a, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        a[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)kiln_rng_below(rng, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static int sort_key_cmp(const void *a, const void *b)
{
    const struct sort_key *x = a, *y = b;
    if (x->length != y->length)
        return x->length < y->length ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sort each window of the epoch's order by length; ties keep their order. */
static void stream_sort_windows(kiln_stream *s)
{
    for (int64_t w = 0; w < s->n_examples; w += s->window) {
        int64_t n = s->n_examples - w < s->window ? s->n_examples - w : s->window;
        for (int64_t k = 0; k < n; k++)
            s->keys[k] = (struct sort_key){s->d->lengths[s->order[w + k]], k, s->order[w + k]};
        qsort(s->keys, (size_t)n, sizeof *s->keys, sort_key_cmp);
        for (int64_t k = 0; k < n; k++)
            s->order[w + k] = s->keys[k].example;
    }
}

/* The epoch's order: the examples (shuffled or not), then for a padded
** stream its sort windows and batch order (shuffled when sorted). */
static void stream_new_epoch(kiln_stream *s)
{
    if (s->scheme == KILN_SCHEME_SHUFFLED)
        shuffle_indices(&s->rng, s->order, s->n_examples);
    else
        for (int64_t i = 0; i < s->n_examples; i++)
            s->order[i] = i;
    if (!s->padded)
        return;
    if (s->sort_batches > 1)
        stream_sort_windows(s);
    if (s->scheme == KILN_SCHEME_SHUFFLED && s->sort_batches > 1)
        shuffle_indices(&s->rng, s->batch_order, s->n_batches);
    else
        for (int64_t i = 0; i < s->n_batches; i++)
            s->batch_order[i] = i;
}

/* Copy size examples (indices ex) of src into dst, (size, example dims..). */
static void gather_examples(char *dst, const struct kiln_source *src, const int64_t *ex, int64_t size)
{
    size_t eb = src->example_bytes;
    for (int64_t k = 0; k < size; k++)
        memcpy(dst + (size_t)k * eb, (const char *)src->data + (size_t)ex[k] * eb, eb);
}

/* Lay size sequences (indices ex) of src out time-major in dst, (T, size,
** step dims..), zeros after each one's end. */
static void pad_sequences(char *dst, const struct kiln_source *src, const int64_t *lengths,
                          const int64_t *starts, const int64_t *ex, int64_t size, int64_t T)
{
    size_t sb = src->example_bytes;
    memset(dst, 0, (size_t)T * (size_t)size * sb);
    for (int64_t k = 0; k < size; k++) {
        const char *from = (const char *)src->data + (size_t)starts[ex[k]] * sb;
        for (int64_t t = 0; t < lengths[ex[k]]; t++)
            memcpy(dst + ((size_t)t * (size_t)size + (size_t)k) * sb, from + (size_t)t * sb, sb);
    }
}

/* The (T, size) mask: 1 where step t of example k is real. */
static void fill_mask(void *dst, enum kiln_dtype dtype, const int64_t *lengths, const int64_t *ex,
                      int64_t size, int64_t T)
{
    for (int64_t t = 0; t < T; t++)
        for (int64_t k = 0; k < size; k++) {
            size_t at = (size_t)t * (size_t)size + (size_t)k;
            bool on = t < lengths[ex[k]];
            if (dtype == KILN_DTYPE_F64)
                ((double *)dst)[at] = on ? 1.0 : 0.0;
            else
                ((float *)dst)[at] = on ? 1.0f : 0.0f;
        }
}

/* Plan: 1. the epoch's order on its first batch; 2. which examples (and,
** padded, their longest length T); 3. each source's batch: pointers into
** the dataset (sequential plain stream) or gathered / padded copies. */
bool kiln_stream_next(kiln_stream *s, kiln_batch *b)
{
    KILN_API_CHECK(s && b);
    if (!s)
        return false;
    if (!b) {
        kiln_err_set(&s->err, KILN_ERR_ARG, "kiln_stream_next: b is NULL");
        return false;
    }
    if (!s->ready)
        return false;
    const kiln_dataset *d = s->d;
    if (d->n_sources != s->n_sources || d->n_examples != s->n_examples) {
        kiln_err_set(&s->err, KILN_ERR_STATE,
                     "stream: dataset changed after the stream was created (%d sources, %lld "
                     "examples then; %d, %lld now)",
                     s->n_sources, (long long)s->n_examples, d->n_sources,
                     (long long)d->n_examples);
        return false;
    }
    if (s->pos >= s->n_examples)
        return false;

    /* 1. */
    if (s->epoch_pending) {
        stream_new_epoch(s);
        s->epoch_pending = false;
    }

    /* 2. */
    int64_t first = s->padded ? s->batch_order[s->batch_no] * s->batch_size : s->pos;
    int64_t size = s->n_examples - first < s->batch_size ? s->n_examples - first : s->batch_size;
    int64_t T = 0;
    for (int64_t k = 0; k < size; k++) {
        s->examples[k] = s->order ? s->order[first + k] : first + k;
        if (s->padded && d->lengths[s->examples[k]] > T)
            T = d->lengths[s->examples[k]];
    }

    /* 3. */
    for (int i = 0; i < s->n_sources; i++) {
        const struct kiln_source *src = &d->sources[i];
        if (!s->order)
            s->batch[i] = (const char *)src->data + (size_t)first * src->example_bytes;
        else if (src->sequence)
            pad_sequences(s->buffers[i], src, d->lengths, d->starts, s->examples, size, T);
        else
            gather_examples(s->buffers[i], src, s->examples, size);
        if (s->order)
            s->batch[i] = s->buffers[i];
    }
    if (s->padded) {
        fill_mask(s->buffers[s->n_sources], s->mask_dtype, d->lengths, s->examples, size, T);
        s->batch[s->n_sources] = s->buffers[s->n_sources];
    }
    s->pos += size;
    s->batch_no++;
    b->size = size;
    b->n_sources = s->n_out;
    b->sources = s->batch;
    b->time = T;
    b->examples = s->examples;
    return true;
}

/* ---- the iteration state, for checkpoints (stream_state.h) ---- */

void kiln_stream_get_state(const kiln_stream *s, kiln_stream_state *out)
{
    memset(out, 0, sizeof *out);
    out->scheme = s->scheme;
    out->padded = s->padded;
    out->n_examples = s->n_examples;
    out->batch_size = s->batch_size;
    out->pos = s->pos;
    out->batch_no = s->batch_no;
    out->epoch_pending = s->epoch_pending;
    out->order = s->order;
    out->n_order = s->order ? s->n_examples : 0;
    out->batch_order = s->batch_order;
    out->n_batch_order = s->batch_order ? s->n_batches : 0;
    out->rng = s->rng;
}

/* Whether a[0..n) holds each of 0..n-1 once; seen[] is scratch of n bytes. */
static bool is_permutation(const int64_t *a, int64_t n, unsigned char *seen)
{
    memset(seen, 0, (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        if (a[i] < 0 || a[i] >= n || seen[a[i]])
            return false;
        seen[a[i]] = 1;
    }
    return true;
}

/* Plan: 1. the stream must be the one the state was taken from (scheme,
** padding, batch size, examples); 2. every count and index in range, the
** orders permutations, the generator's position valid; 3. copy. Nothing of
** s changes before 3. */
enum kiln_status kiln_stream_set_state(kiln_stream *s, const kiln_stream_state *in, kiln_err *err)
{
    if (!s->ready)
        return kiln_err_set(err, KILN_ERR_STATE, "the stream failed when created: %s", s->err.msg);
    /* 1. */
    if (in->scheme != s->scheme || in->padded != s->padded || in->batch_size != s->batch_size ||
        in->n_examples != s->n_examples)
        return kiln_err_set(err, KILN_ERR_SHAPE,
                            "data stream: saved from a %s%s stream of %lld examples in batches of "
                            "%lld, this one is %s%s, %lld examples in batches of %lld",
                            in->scheme == KILN_SCHEME_SHUFFLED ? "shuffled" : "sequential",
                            in->padded ? " padded" : "", (long long)in->n_examples,
                            (long long)in->batch_size,
                            s->scheme == KILN_SCHEME_SHUFFLED ? "shuffled" : "sequential",
                            s->padded ? " padded" : "", (long long)s->n_examples,
                            (long long)s->batch_size);
    /* 2. */
    int64_t n_order = s->order ? s->n_examples : 0, n_border = s->batch_order ? s->n_batches : 0;
    if (in->n_order != n_order || in->n_batch_order != n_border)
        return kiln_err_set(err, KILN_ERR_FORMAT,
                            "data stream: order of %lld examples and %lld batches, expected %lld "
                            "and %lld",
                            (long long)in->n_order, (long long)in->n_batch_order,
                            (long long)n_order, (long long)n_border);
    if (in->pos < 0 || in->pos > s->n_examples || in->batch_no < 0 ||
        in->batch_no > (s->padded ? s->n_batches : kiln_stream_batch_count(s)))
        return kiln_err_set(err, KILN_ERR_FORMAT,
                            "data stream: position %lld (batch %lld) outside an epoch of %lld "
                            "examples",
                            (long long)in->pos, (long long)in->batch_no, (long long)s->n_examples);
    if (in->rng.pos < 0 || in->rng.pos > KILN_RNG_N || (in->rng.has_gauss != 0 && in->rng.has_gauss != 1))
        return kiln_err_set(err, KILN_ERR_FORMAT,
                            "data stream: shuffle generator position %d (0..%d) or cached-gauss "
                            "flag %d (0 or 1) out of range",
                            in->rng.pos, KILN_RNG_N, in->rng.has_gauss);
    /* An order not drawn yet (epoch_pending) is drawn before it is used. */
    if (in->epoch_pending)
        n_order = n_border = 0;
    int64_t most = n_order > n_border ? n_order : n_border;
    unsigned char *seen = most > 0 ? malloc((size_t)most) : NULL;
    if (most > 0 && !seen)
        return kiln_err_set(err, KILN_ERR_NOMEM, "data stream: %lld bytes", (long long)most);
    bool ok = (n_order == 0 || is_permutation(in->order, n_order, seen)) &&
              (n_border == 0 || is_permutation(in->batch_order, n_border, seen));
    free(seen);
    if (!ok)
        return kiln_err_set(err, KILN_ERR_FORMAT,
                            "data stream: the saved order of examples or batches is not a "
                            "permutation");
    /* 3. */
    if (n_order)
        memcpy(s->order, in->order, (size_t)n_order * sizeof *s->order);
    if (n_border)
        memcpy(s->batch_order, in->batch_order, (size_t)n_border * sizeof *s->batch_order);
    s->pos = in->pos;
    s->batch_no = in->batch_no;
    s->epoch_pending = in->epoch_pending;
    s->rng = in->rng;
    kiln_err_clear(&s->err);
    return KILN_OK;
}
