/* stream_state.h (internal): a data stream's iteration state, for
** checkpoints (runtime/checkpoint.c).
**
** A stream is resumed exactly by its position in the epoch, the epoch's
** order of examples (and of batches, padded), whether the next batch draws
** a new order, and the shuffle generator (Fuel's RandomState): with these a
** resumed stream hands out the batches the uninterrupted one would have. */
#ifndef KILN_RUNTIME_STREAM_STATE_H
#define KILN_RUNTIME_STREAM_STATE_H

#include "compiler/rng.h"
#include "compiler/util.h"
#include "kiln/data.h"

typedef struct kiln_stream_state {
    enum kiln_scheme scheme;
    bool padded;
    int64_t n_examples, batch_size;
    int64_t pos;          /* examples handed out this epoch */
    int64_t batch_no;     /* batches handed out this epoch */
    bool epoch_pending;   /* the next batch draws the epoch's order */
    const int64_t *order; /* n_order entries (0: a sequential plain stream keeps none) */
    int64_t n_order;
    const int64_t *batch_order; /* padded streams: n_batch_order entries */
    int64_t n_batch_order;
    kiln_rng rng;         /* the shuffle generator */
} kiln_stream_state;

/* s's state; the orders are borrowed from s (valid until its next call).
** s must have been created successfully. */
void kiln_stream_get_state(const kiln_stream *s, kiln_stream_state *out);
/* Make s continue from in (untrusted: read from a file), which must come
** from a stream like s (scheme, padding, batch size, examples): every count
** and index is checked, and the orders must be permutations, before s
** changes. KILN_ERR_SHAPE (another kind of stream), KILN_ERR_FORMAT (bad
** values), KILN_ERR_STATE, KILN_ERR_NOMEM; the message in *err. */
enum kiln_status kiln_stream_set_state(kiln_stream *s, const kiln_stream_state *in, kiln_err *err);

#endif
