/* kiln/data.h: datasets and data streams (Fuel's role in Blocks).
**
** A kiln_dataset holds named sources in memory, each an array whose first
** axis runs over examples: (N, example dims...). IDX files (MNIST's format,
** gzipped or not) load as sources `features` (float32, scaled to [0, 1],
** flattened to (N, rows*cols)) and `targets` (int32, (N)).
** A kiln_stream iterates a dataset in batches, sequentially or shuffled;
** the last batch of an epoch may be short. Files are untrusted: every size,
** count and offset is checked, and errors name the file and byte offset. */
#ifndef KILN_DATA_H
#define KILN_DATA_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_dataset kiln_dataset;
typedef struct kiln_stream kiln_stream;

/* An empty in-memory dataset. NULL only when out of memory. */
KILN_API kiln_dataset *kiln_dataset_create(void);
/* Drops the caller's reference: streams over d keep it until they go.
** NULL: nothing. */
KILN_API void kiln_dataset_destroy(kiln_dataset *d);
KILN_API const char *kiln_dataset_errmsg(const kiln_dataset *d);

/* Add a source, copying name, example_dims and data (n_examples *
** example_size elements of dtype; read during the call only).
** All sources of a dataset have the same number of examples; a source has
** at most KILN_MAX_BYTES (else KILN_ERR_SHAPE, before any copy).
** example_rank/example_dims give the per-example shape (rank 0: scalar). */
KILN_API enum kiln_status kiln_dataset_add_source(kiln_dataset *d, const char *name,
                                                  enum kiln_dtype dtype, int64_t n_examples,
                                                  int example_rank, const int64_t *example_dims,
                                                  const void *data);

/* Load an IDX images file as `features` and an IDX labels file as `targets`
** (either path may be NULL to skip that source). *out is set even on failure
** (NULL only when out of memory); read the message from it.
** KILN_ERR_IO (missing/unreadable), KILN_ERR_FORMAT (bad magic, truncated,
** counts that disagree), KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_dataset_open_idx(const char *images_path, const char *labels_path,
                                                kiln_dataset **out);

KILN_API int64_t kiln_dataset_example_count(const kiln_dataset *d);
KILN_API int kiln_dataset_source_count(const kiln_dataset *d);
/* -1 when there is no such source. */
KILN_API int kiln_dataset_source_index(const kiln_dataset *d, const char *name);
/* Facts of source i; for a bad i or a NULL d: NULL, float32, -1. The name is
** borrowed, valid until the next kiln_dataset_add_source on d. */
KILN_API const char *kiln_dataset_source_name(const kiln_dataset *d, int i);
KILN_API enum kiln_dtype kiln_dataset_source_dtype(const kiln_dataset *d, int i);
KILN_API int64_t kiln_dataset_source_example_size(const kiln_dataset *d, int i);
/* Whole array of source i (borrowed, valid while d lives; NULL for a bad i). */
KILN_API const void *kiln_dataset_source_data(const kiln_dataset *d, int i);

enum kiln_scheme { KILN_SCHEME_SEQUENTIAL, KILN_SCHEME_SHUFFLED };

/* A batch: sources[i] points at batch_size contiguous examples of dataset
** source i (borrowed from the stream: valid until its next kiln_stream_next
** or kiln_stream_reset, or its destroy). */
typedef struct kiln_batch {
    int64_t size;
    int n_sources;
    const void *const *sources;
} kiln_batch;

/* Iterate d in batches of batch_size. The stream keeps d alive (d may be
** destroyed first); d must not gain sources meanwhile (the next batch then
** fails with KILN_ERR_STATE). Shuffled streams draw a new permutation every
** epoch from a deterministic RNG seeded with seed (KILN_SEED_DEFAULT: the
** configuration's default_seed, config.h). *out set even on failure
** (NULL only when OOM). */
KILN_API enum kiln_status kiln_stream_create(kiln_dataset *d, enum kiln_scheme scheme,
                                             int64_t batch_size, uint64_t seed,
                                             kiln_stream **out);
/* Drops the caller's reference: main loops and DataStreamMonitoring
** extensions over s keep it until they go. NULL: nothing. */
KILN_API void kiln_stream_destroy(kiln_stream *s);
KILN_API const char *kiln_stream_errmsg(const kiln_stream *s);
/* s's dataset (borrowed, valid while s lives). */
KILN_API kiln_dataset *kiln_stream_dataset(const kiln_stream *s);
KILN_API int64_t kiln_stream_batch_size(const kiln_stream *s);
/* ceil(examples / batch_size). */
KILN_API int64_t kiln_stream_batch_count(const kiln_stream *s);
/* Start a new epoch (reshuffles a shuffled stream). */
KILN_API enum kiln_status kiln_stream_reset(kiln_stream *s);
/* Next batch of the epoch: returns true and fills *b, or false at the end
** of the epoch or on an error (b NULL included); kiln_stream_status tells
** which. */
KILN_API bool kiln_stream_next(kiln_stream *s, kiln_batch *b);
/* KILN_OK, or the status of the stream's last failure (cleared by a
** successful kiln_stream_reset). */
KILN_API enum kiln_status kiln_stream_status(const kiln_stream *s);

#ifdef __cplusplus
}
#endif
#endif
