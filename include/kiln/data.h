/* kiln/data.h: datasets and data streams (Fuel's role in Blocks).
**
** A kiln_dataset holds named sources in memory, each an array whose first
** axis runs over examples: (N, example dims...). IDX files (MNIST's format,
** gzipped or not) load as sources `features` (float32, scaled to [0, 1],
** flattened to (N, rows*cols)) and `targets` (int32, (N)).
** A kiln_stream iterates a dataset in batches, sequentially or shuffled;
** the last batch of an epoch may be short. Files are untrusted: every size,
** count and offset is checked, and errors name the file and byte offset.
**
** Sequences (Fuel's Padding and Blocks' masks): a sequence source holds one
** sequence per example, each of its own length (token ids, feature frames).
** A padded stream (kiln_stream_create_padded) gives them time-major, as
** recurrent bricks read them: (T, B, step dims..) with T the batch's longest
** length, zeros after each sequence's end, and a (T, B) mask source that is
** 1 on a real step and 0 on padding; optionally sorted by length within
** windows of batches (fewer padded steps). The batch says its T; the main
** loop sets the program's KILN_TIME from it. */
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

/* Add a sequence source: example i is a sequence of lengths[i] >= 1 steps,
** each step of step_rank dims step_dims (rank 0: one value per step, e.g. a
** token id). data holds every example's steps back to back, example 0
** first: sum(lengths) * step size elements of dtype. Everything is copied
** (read during the call only). All sequence sources of a dataset have the
** same lengths, example by example (a token sequence and its next-token
** targets), so a batch has one T and one mask; a dataset may mix them with
** ordinary sources (one value per example: a class per sequence). Data is
** untrusted: a length < 1, a total past KILN_MAX_BYTES, or lengths that
** disagree with the other sequence sources are refused before any copy,
** naming the source, the example and the step offset where it starts
** (KILN_ERR_SHAPE; KILN_ERR_ARG for names, dtypes, NULL pointers, as
** kiln_dataset_add_source; KILN_ERR_NOMEM). */
KILN_API enum kiln_status kiln_dataset_add_sequences(kiln_dataset *d, const char *name,
                                                     enum kiln_dtype dtype, int64_t n_examples,
                                                     const int64_t *lengths, int step_rank,
                                                     const int64_t *step_dims, const void *data);
/* Whether source i holds sequences (false for a bad i or a NULL d). */
KILN_API bool kiln_dataset_source_is_sequence(const kiln_dataset *d, int i);
/* Steps of example i in every sequence source of d; -1 when d has no
** sequence source or i is out of range. */
KILN_API int64_t kiln_dataset_sequence_length(const kiln_dataset *d, int64_t i);

KILN_API int64_t kiln_dataset_example_count(const kiln_dataset *d);
KILN_API int kiln_dataset_source_count(const kiln_dataset *d);
/* -1 when there is no such source. */
KILN_API int kiln_dataset_source_index(const kiln_dataset *d, const char *name);
/* Facts of source i; for a bad i or a NULL d: NULL, float32, -1. The name is
** borrowed, valid until the next kiln_dataset_add_source on d. The example
** size of a sequence source is its size per step. */
KILN_API const char *kiln_dataset_source_name(const kiln_dataset *d, int i);
KILN_API enum kiln_dtype kiln_dataset_source_dtype(const kiln_dataset *d, int i);
KILN_API int64_t kiln_dataset_source_example_size(const kiln_dataset *d, int i);
/* Whole array of source i (borrowed, valid while d lives; NULL for a bad i);
** a sequence source's steps back to back. */
KILN_API const void *kiln_dataset_source_data(const kiln_dataset *d, int i);

enum kiln_scheme { KILN_SCHEME_SEQUENTIAL, KILN_SCHEME_SHUFFLED };

/* A batch: sources[i] holds source i of the stream (kiln_stream_source_*;
** a plain stream's are its dataset's): `size` contiguous examples, or for a
** time-major source (T, size, step dims..) with T = time. Borrowed from the
** stream: valid until its next kiln_stream_next or kiln_stream_reset, or
** its destroy; so is examples[0..size), the dataset index of each example
** in the batch's order. time is 0 for a stream without sequences. */
typedef struct kiln_batch {
    int64_t size;
    int n_sources;
    const void *const *sources;
    int64_t time;
    const int64_t *examples;
} kiln_batch;

/* Iterate d in batches of batch_size. The stream keeps d alive (d may be
** destroyed first); d must not gain sources meanwhile (the next batch then
** fails with KILN_ERR_STATE). Shuffled streams draw a new permutation every
** epoch from a deterministic RNG seeded with seed (KILN_SEED_DEFAULT: the
** configuration's default_seed, config.h). *out set even on failure
** (NULL only when OOM). A dataset with sequence sources needs a padded
** stream (KILN_ERR_ARG here). */
KILN_API enum kiln_status kiln_stream_create(kiln_dataset *d, enum kiln_scheme scheme,
                                             int64_t batch_size, uint64_t seed,
                                             kiln_stream **out);
/* How a padded stream batches sequences. Zeros are every field's default
** but batch_size's (kiln_padded_options_default gives them). */
typedef struct kiln_padded_options {
    enum kiln_scheme scheme; /* order of the examples, as kiln_stream_create */
    int64_t batch_size;      /* > 0 */
    uint64_t seed;           /* of the shuffled scheme's draws (KILN_SEED_DEFAULT: the configuration's) */
    /* Fuel's and Blocks' sort-by-length trick: cut the epoch's order into
    ** windows of sort_batches * batch_size examples, sort each window by
    ** length (ties keep their order), cut it into batches, and, with the
    ** shuffled scheme, shuffle the epoch's batches. Batches then hold
    ** sequences of similar lengths. 0 or 1: no sorting. */
    int64_t sort_batches;
    /* The mask source: its name (copied; NULL: "mask") and dtype (float32 or
    ** float64: the program's floats). */
    const char *mask_name;
    enum kiln_dtype mask_dtype;
} kiln_padded_options;

/* scheme sequential, batch_size 32, seed 0, no sorting, mask "mask" float32. */
KILN_API kiln_padded_options kiln_padded_options_default(void);

/* A stream of padded batches over d, which must hold at least one sequence
** source. Its sources are d's in order, sequence sources time-major and
** padded with zeros (T, B, step dims..), the others (B, example dims..),
** then the mask (T, B). Batches hold batch_size examples, the last one of
** an epoch fewer; each has T = its longest sequence. kiln_stream_next never
** allocates: buffers for the dataset's longest sequence are made here.
** Keeps d alive as kiln_stream_create does. *out set even on failure (NULL
** only when OOM). KILN_ERR_ARG (bad options, a mask name a source has, no
** sequence source), KILN_ERR_SHAPE (a padded batch past KILN_MAX_BYTES),
** KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_stream_create_padded(kiln_dataset *d, const kiln_padded_options *o,
                                                    kiln_stream **out);

/* Drops the caller's reference: main loops and DataStreamMonitoring
** extensions over s keep it until they go. NULL: nothing. */
KILN_API void kiln_stream_destroy(kiln_stream *s);
KILN_API const char *kiln_stream_errmsg(const kiln_stream *s);
/* s's dataset (borrowed, valid while s lives). */
KILN_API kiln_dataset *kiln_stream_dataset(const kiln_stream *s);
KILN_API int64_t kiln_stream_batch_size(const kiln_stream *s);
/* The stream's sources, as its batches hold them (for binding by name):
** count (0 for a NULL or failed stream), and per source i its name
** (borrowed, valid while s lives; NULL for a bad i), dtype, elements per
** example (per step for a time-major source; -1 for a bad i) and whether
** it is time-major ((T, B, ..): a padded sequence or the mask). */
KILN_API int kiln_stream_source_count(const kiln_stream *s);
KILN_API const char *kiln_stream_source_name(const kiln_stream *s, int i);
KILN_API enum kiln_dtype kiln_stream_source_dtype(const kiln_stream *s, int i);
KILN_API int64_t kiln_stream_source_example_size(const kiln_stream *s, int i);
KILN_API bool kiln_stream_source_time_major(const kiln_stream *s, int i);
/* -1 when there is no such source. */
KILN_API int kiln_stream_source_index(const kiln_stream *s, const char *name);
/* The longest T a batch of s can have: the dataset's longest sequence, and
** in *example (may be NULL) the first example that long; 0 (and -1) for a
** stream without sequences. */
KILN_API int64_t kiln_stream_max_time(const kiln_stream *s, int64_t *example);
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
