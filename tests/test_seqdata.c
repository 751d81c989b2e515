/* test_seqdata.c: sequence sources and padded streams (runtime/data.c), and
** the main loop training a recurrent model on them (runtime/mainloop.c).
**
** The data cases use a dataset of 7 sequences whose lengths (3, 1, 4, 2, 5,
** 1, 2) and values are known functions of the example and step (token
** 100 * example + step; features 10 * example + step and its negative), so
** every cell of a padded batch and its mask is checked against what it must
** hold. The main-loop cases compile a SimpleRecurrent (identity, dim 1) that
** learns a running sum over masked, variable-length sequences, and read T
** back from the program each batch. Errors are asserted by their messages:
** the source, the example and the step offset for bad data; the example, T
** and the maximum for a sequence longer than the program's. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"
#include "runtime/mainloop.h"
#include "testutil.h"

enum { N = 7, FEAT = 2, MAX_LEN = 5 };
static const int64_t LENGTHS[N] = {3, 1, 4, 2, 5, 1, 2};

static int64_t total_steps(const int64_t *len, int n)
{
    int64_t t = 0;
    for (int i = 0; i < n; i++)
        t += len[i];
    return t;
}

static int32_t token(int64_t ex, int64_t t) { return (int32_t)(100 * ex + t); }
static float feature(int64_t ex, int64_t t, int f) { return (float)(10 * ex + t) * (f ? -1.0f : 1.0f); }

/* Sources: "tokens" (int32 per step), "frames" (FEAT floats per step),
** "label" (one int32 per example: 1000 + example). */
static kiln_dataset *toy_sequences(void)
{
    int64_t steps = total_steps(LENGTHS, N);
    int32_t tok[64], label[N];
    float fr[128];
    ck_assert_int_le(steps, 64);
    int64_t at = 0;
    for (int64_t i = 0; i < N; i++) {
        label[i] = (int32_t)(1000 + i);
        for (int64_t t = 0; t < LENGTHS[i]; t++, at++) {
            tok[at] = token(i, t);
            for (int f = 0; f < FEAT; f++)
                fr[at * FEAT + f] = feature(i, t, f);
        }
    }
    kiln_dataset *d = kiln_dataset_create();
    ck_assert_ptr_nonnull(d);
    ck_assert_msg(kiln_dataset_add_sequences(d, "tokens", KILN_DTYPE_I32, N, LENGTHS, 0, NULL, tok) == KILN_OK,
                  "%s", kiln_dataset_errmsg(d));
    ck_assert_msg(kiln_dataset_add_sequences(d, "frames", KILN_DTYPE_F32, N, LENGTHS, 1, (int64_t[]){FEAT}, fr) ==
                      KILN_OK,
                  "%s", kiln_dataset_errmsg(d));
    ck_assert_msg(kiln_dataset_add_source(d, "label", KILN_DTYPE_I32, N, 0, NULL, label) == KILN_OK, "%s",
                  kiln_dataset_errmsg(d));
    return d;
}

static kiln_stream *padded(kiln_dataset *d, enum kiln_scheme scheme, int64_t batch, int64_t sort, uint64_t seed)
{
    kiln_padded_options o = kiln_padded_options_default();
    o.scheme = scheme;
    o.batch_size = batch;
    o.sort_batches = sort;
    o.seed = seed;
    kiln_stream *s = NULL;
    enum kiln_status st = kiln_stream_create_padded(d, &o, &s);
    ck_assert_msg(st == KILN_OK, "%s", kiln_stream_errmsg(s));
    return s;
}

/* Every cell of batch b of the toy stream s: tokens and frames time-major,
** zero past each end, the mask, the labels, T the longest. */
static void check_batch(const kiln_stream *s, const kiln_batch *b)
{
    int64_t B = b->size, T = 0;
    for (int64_t k = 0; k < B; k++)
        T = LENGTHS[b->examples[k]] > T ? LENGTHS[b->examples[k]] : T;
    ck_assert_int_eq(b->time, T);
    ck_assert_int_eq(b->n_sources, 4);
    const int32_t *tok = b->sources[kiln_stream_source_index(s, "tokens")];
    const float *fr = b->sources[kiln_stream_source_index(s, "frames")];
    const int32_t *label = b->sources[kiln_stream_source_index(s, "label")];
    const float *mask = b->sources[kiln_stream_source_index(s, "mask")];
    for (int64_t k = 0; k < B; k++) {
        int64_t ex = b->examples[k];
        ck_assert_int_eq(label[k], 1000 + ex);
        for (int64_t t = 0; t < T; t++) {
            bool on = t < LENGTHS[ex];
            ck_assert_msg(tok[t * B + k] == (on ? token(ex, t) : 0), "tokens[%lld, %lld] = %d (example %lld)",
                          (long long)t, (long long)k, tok[t * B + k], (long long)ex);
            for (int f = 0; f < FEAT; f++)
                ck_assert_msg(fr[(t * B + k) * FEAT + f] == (on ? feature(ex, t, f) : 0.0f),
                              "frames[%lld, %lld, %d] = %g", (long long)t, (long long)k, f,
                              fr[(t * B + k) * FEAT + f]);
            ck_assert_msg(mask[t * B + k] == (on ? 1.0f : 0.0f), "mask[%lld, %lld] = %g", (long long)t,
                          (long long)k, mask[t * B + k]);
        }
    }
}

/* One epoch of s: the examples in order of appearance into order[] and the
** batches' T into times[]; returns the number of batches. */
static int epoch(kiln_stream *s, int64_t *order, int64_t *times)
{
    kiln_batch b;
    int n = 0, at = 0;
    while (kiln_stream_next(s, &b)) {
        check_batch(s, &b);
        for (int64_t k = 0; k < b.size; k++)
            order[at++] = b.examples[k];
        times[n++] = b.time;
    }
    ck_assert_msg(kiln_stream_status(s) == KILN_OK, "%s", kiln_stream_errmsg(s));
    ck_assert_int_eq(at, N);
    return n;
}

static void assert_each_example_once(const int64_t *order)
{
    int seen[N] = {0};
    for (int i = 0; i < N; i++) {
        ck_assert(order[i] >= 0 && order[i] < N);
        ck_assert_msg(!seen[order[i]]++, "example %lld twice in an epoch", (long long)order[i]);
    }
}

/* ---- datasets and padded batches ------------------------------------------------ */

START_TEST(sequence_sources_keep_their_lengths)
{
    kiln_dataset *d = toy_sequences();
    ck_assert_int_eq(kiln_dataset_example_count(d), N);
    ck_assert(kiln_dataset_source_is_sequence(d, 0));
    ck_assert(kiln_dataset_source_is_sequence(d, 1));
    ck_assert(!kiln_dataset_source_is_sequence(d, 2));
    ck_assert(!kiln_dataset_source_is_sequence(d, 3));
    ck_assert_int_eq(kiln_dataset_source_example_size(d, 1), FEAT); /* per step */
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(kiln_dataset_sequence_length(d, i), LENGTHS[i]);
    ck_assert_int_eq(kiln_dataset_sequence_length(d, N), -1);
    ck_assert_int_eq(kiln_dataset_sequence_length(d, -1), -1);
    const int32_t *tok = kiln_dataset_source_data(d, 0);
    ck_assert_int_eq(tok[3], token(1, 0)); /* example 1 starts after example 0's 3 steps */
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(padded_batches_are_time_major_with_zeros_and_a_mask)
{
    kiln_dataset *d = toy_sequences();
    kiln_stream *s = padded(d, KILN_SCHEME_SEQUENTIAL, 3, 0, 0);
    /* the stream's sources: the dataset's, then the mask */
    ck_assert_int_eq(kiln_stream_source_count(s), 4);
    ck_assert_str_eq(kiln_stream_source_name(s, 3), "mask");
    ck_assert(kiln_stream_source_time_major(s, 0) && kiln_stream_source_time_major(s, 1));
    ck_assert(!kiln_stream_source_time_major(s, 2) && kiln_stream_source_time_major(s, 3));
    ck_assert_int_eq(kiln_stream_source_example_size(s, 1), FEAT);
    ck_assert_int_eq(kiln_stream_source_example_size(s, 3), 1);
    ck_assert_int_eq(kiln_stream_source_dtype(s, 3), KILN_DTYPE_F32);
    ck_assert_int_eq(kiln_stream_source_index(s, "label"), 2);
    ck_assert_ptr_null(kiln_stream_source_name(s, 4));
    int64_t longest;
    ck_assert_int_eq(kiln_stream_max_time(s, &longest), MAX_LEN);
    ck_assert_int_eq(longest, 4);
    ck_assert_int_eq(kiln_stream_batch_count(s), 3);

    kiln_batch b;
    ck_assert(kiln_stream_next(s, &b)); /* examples 0, 1, 2: lengths 3, 1, 4 */
    ck_assert_int_eq(b.size, 3);
    ck_assert_int_eq(b.time, 4);
    ck_assert_int_eq(b.examples[0], 0);
    ck_assert_int_eq(b.examples[2], 2);
    static const float want_mask[12] = {1, 1, 1, /* t = 0 */ 1, 0, 1, 1, 0, 1, 0, 0, 1};
    static const int32_t want_tok[12] = {0, 100, 200, 1, 0, 201, 2, 0, 202, 0, 0, 203};
    ck_assert_mem_eq(b.sources[3], want_mask, sizeof want_mask);
    ck_assert_mem_eq(b.sources[0], want_tok, sizeof want_tok);
    check_batch(s, &b);
    ck_assert(kiln_stream_next(s, &b)); /* 3, 4, 5: T = 5 */
    ck_assert_int_eq(b.time, 5);
    check_batch(s, &b);
    ck_assert(kiln_stream_next(s, &b)); /* 6 alone: T = 2 */
    ck_assert_int_eq(b.size, 1);
    ck_assert_int_eq(b.time, 2);
    check_batch(s, &b);
    ck_assert(!kiln_stream_next(s, &b));
    ck_assert_int_eq(kiln_stream_status(s), KILN_OK);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
}
END_TEST

START_TEST(a_float64_mask_and_its_name_are_options)
{
    kiln_dataset *d = toy_sequences();
    kiln_padded_options o = kiln_padded_options_default();
    o.batch_size = 2;
    o.mask_dtype = KILN_DTYPE_F64;
    o.mask_name = "tokens_mask";
    kiln_stream *s;
    ck_assert_int_eq(kiln_stream_create_padded(d, &o, &s), KILN_OK);
    ck_assert_str_eq(kiln_stream_source_name(s, 3), "tokens_mask");
    ck_assert_int_eq(kiln_stream_source_dtype(s, 3), KILN_DTYPE_F64);
    kiln_batch b;
    ck_assert(kiln_stream_next(s, &b)); /* lengths 3, 1 */
    static const double want[6] = {1, 1, 1, 0, 1, 0};
    ck_assert_mem_eq(b.sources[3], want, sizeof want);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
}
END_TEST

/* Sorting within windows of 2 batches of 2: the window's 4 examples by
** length (ties in order), then cut; the last window holds 3. */
START_TEST(sorted_batches_hold_similar_lengths)
{
    kiln_dataset *d = toy_sequences();
    kiln_stream *s = padded(d, KILN_SCHEME_SEQUENTIAL, 2, 2, 0);
    int64_t order[N], times[N];
    ck_assert_int_eq(epoch(s, order, times), 4);
    /* window 0..3 (lengths 3 1 4 2) -> 1 3 0 2; window 4..6 (5 1 2) -> 5 6 4 */
    static const int64_t want[N] = {1, 3, 0, 2, 5, 6, 4};
    ck_assert_mem_eq(order, want, sizeof want);
    ck_assert_int_eq(times[0], 2);
    ck_assert_int_eq(times[1], 4);
    ck_assert_int_eq(times[2], 2);
    ck_assert_int_eq(times[3], 5);
    /* padded cells: 2*2 + 4*2 + 2*2 + 5*1 = 21, against 3*2 + 4*2 + 5*2 + 2*1 = 26 unsorted */
    kiln_stream *u = padded(d, KILN_SCHEME_SEQUENTIAL, 2, 0, 0);
    int64_t uorder[N], utimes[N];
    ck_assert_int_eq(epoch(u, uorder, utimes), 4);
    int64_t cells = 0, ucells = 0;
    for (int i = 0; i < 4; i++) {
        cells += times[i] * (i < 3 ? 2 : 1);
        ucells += utimes[i] * (i < 3 ? 2 : 1);
    }
    ck_assert_int_eq(cells, 21);
    ck_assert_int_eq(ucells, 26);
    kiln_stream_destroy(u);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
}
END_TEST

/* Shuffled and sorted: each epoch covers every example once, each batch is
** sorted by length, the same seed gives the same epochs, another seed other
** ones, a reset before any batch changes nothing, and the batches of an
** epoch are shuffled after sorting. */
START_TEST(shuffled_sorted_stream_is_deterministic_by_seed)
{
    kiln_dataset *d = toy_sequences();
    kiln_stream *a = padded(d, KILN_SCHEME_SHUFFLED, 2, 3, 42);
    kiln_stream *b = padded(d, KILN_SCHEME_SHUFFLED, 2, 3, 42);
    kiln_stream *c = padded(d, KILN_SCHEME_SHUFFLED, 2, 3, 43);
    ck_assert_int_eq(kiln_stream_reset(b), KILN_OK);
    bool differs = false;
    int64_t first_epoch[N];
    for (int e = 0; e < 3; e++) {
        int64_t oa[N], ob[N], oc[N], ta[N], tb[N], tc[N];
        if (e) {
            kiln_stream_reset(a);
            kiln_stream_reset(b);
            kiln_stream_reset(c);
        }
        int na = epoch(a, oa, ta), nb = epoch(b, ob, tb);
        epoch(c, oc, tc);
        assert_each_example_once(oa);
        assert_each_example_once(oc);
        ck_assert_int_eq(na, nb);
        ck_assert_mem_eq(oa, ob, sizeof oa);
        ck_assert_mem_eq(ta, tb, (size_t)na * sizeof *ta);
        differs = differs || memcmp(oa, oc, sizeof oa) != 0;
        if (e == 0)
            memcpy(first_epoch, oa, sizeof oa);
        else
            differs = differs || memcmp(oa, first_epoch, sizeof oa) != 0;
    }
    ck_assert_msg(differs, "seeds 42 and 43 gave the same epochs, or epochs repeat");
    /* each batch of a sorted stream is in length order (ties in order) */
    kiln_stream_reset(a);
    kiln_batch bt;
    while (kiln_stream_next(a, &bt))
        for (int64_t k = 1; k < bt.size; k++)
            ck_assert_int_le(LENGTHS[bt.examples[k - 1]], LENGTHS[bt.examples[k]]);
    /* one window for the whole epoch: sorted, then the batches shuffled, so
    ** the epoch does not run from short to long */
    kiln_stream *w = padded(d, KILN_SCHEME_SHUFFLED, 2, 100, 42);
    bool ascending_always = true;
    for (int e = 0; e < 3; e++) {
        int64_t ow[N], tw[N];
        kiln_stream_reset(w);
        int nw = epoch(w, ow, tw);
        for (int i = 1; i < nw; i++)
            ascending_always = ascending_always && tw[i - 1] <= tw[i];
    }
    ck_assert_msg(!ascending_always, "the batches of a shuffled, sorted stream were not shuffled");
    kiln_stream_destroy(w);
    kiln_stream_destroy(a);
    kiln_stream_destroy(b);
    kiln_stream_destroy(c);
    kiln_dataset_destroy(d);
}
END_TEST

/* ---- bad input ------------------------------------------------------------------ */

static void expect_error(kiln_dataset *d, enum kiln_status got, enum kiln_status want, const char *msg)
{
    ck_assert_msg(got == want, "status %s, expected %s (%s)", kiln_status_string(got), kiln_status_string(want),
                  kiln_dataset_errmsg(d));
    ck_assert_str_eq(kiln_dataset_errmsg(d), msg);
}

START_TEST(bad_sequences_name_the_source_example_and_offset)
{
    kiln_dataset *d = kiln_dataset_create();
    int32_t v[16] = {0};
    static const int64_t zero_at_2[4] = {2, 3, 0, 1};
    expect_error(d, kiln_dataset_add_sequences(d, "chars", KILN_DTYPE_I32, 4, zero_at_2, 0, NULL, v),
                 KILN_ERR_SHAPE,
                 "source 'chars': example 2 (at step offset 5) has length 0; a sequence has at least one step");
    static const int64_t negative[2] = {1, -4};
    expect_error(d, kiln_dataset_add_sequences(d, "chars", KILN_DTYPE_I32, 2, negative, 0, NULL, v),
                 KILN_ERR_SHAPE,
                 "source 'chars': example 1 (at step offset 1) has length -4; a sequence has at least one step");
    /* a total past KILN_MAX_BYTES is refused before anything is read or copied */
    static const int64_t huge[3] = {1, INT64_C(1) << 34, INT64_C(1) << 34};
    expect_error(d, kiln_dataset_add_sequences(d, "chars", KILN_DTYPE_F64, 3, huge, 1, (int64_t[]){4}, v),
                 KILN_ERR_SHAPE,
                 "source 'chars': example 2 (at step offset 17179869185, 17179869184 steps) takes the source past "
                 "1099511627776 bytes (32 bytes a step)");
    expect_error(d, kiln_dataset_add_sequences(d, "chars", KILN_DTYPE_I32, 2, NULL, 0, NULL, v), KILN_ERR_ARG,
                 "source 'chars': lengths is NULL for 2 examples");
    expect_error(d, kiln_dataset_add_sequences(d, "chars", KILN_DTYPE_I32, 2, (int64_t[]){1, 1}, 1, (int64_t[]){0}, v),
                 KILN_ERR_SHAPE, "source 'chars': step dim 0 is 0, must be > 0");
    ck_assert_int_eq(kiln_dataset_source_count(d), 0); /* nothing was added */

    /* a second sequence source must have the first one's lengths */
    static const int64_t ok[3] = {2, 3, 1}, other[3] = {2, 4, 1};
    ck_assert_int_eq(kiln_dataset_add_sequences(d, "chars", KILN_DTYPE_I32, 3, ok, 0, NULL, v), KILN_OK);
    expect_error(d, kiln_dataset_add_sequences(d, "targets", KILN_DTYPE_I32, 3, other, 0, NULL, v), KILN_ERR_SHAPE,
                 "source 'targets': example 1 (at step offset 2) has 4 steps, the dataset's other sequence sources "
                 "have 3");
    expect_error(d, kiln_dataset_add_sequences(d, "targets", KILN_DTYPE_I32, 2, ok, 0, NULL, v), KILN_ERR_SHAPE,
                 "source 'targets' has 2 examples, the dataset's other sources have 3");
    ck_assert_int_eq(kiln_dataset_source_count(d), 1);

    /* a plain stream refuses sequences; a padded one needs them and good options */
    kiln_stream *s;
    ck_assert_int_eq(kiln_stream_create(d, KILN_SCHEME_SEQUENTIAL, 2, 0, &s), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_stream_errmsg(s), "stream: source 'chars' holds sequences of varying lengths; iterate "
                                            "the dataset with kiln_stream_create_padded");
    kiln_stream_destroy(s);
    kiln_padded_options o = kiln_padded_options_default();
    o.mask_name = "chars";
    ck_assert_int_eq(kiln_stream_create_padded(d, &o, &s), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_stream_errmsg(s), "stream: the dataset has a source named 'chars', the mask's name "
                                            "(set kiln_padded_options.mask_name)");
    kiln_stream_destroy(s);
    o = kiln_padded_options_default();
    o.mask_dtype = KILN_DTYPE_I32;
    ck_assert_int_eq(kiln_stream_create_padded(d, &o, &s), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_stream_errmsg(s), "stream: mask dtype 2, expected float32 or float64");
    kiln_stream_destroy(s);
    o = kiln_padded_options_default();
    o.sort_batches = -1;
    ck_assert_int_eq(kiln_stream_create_padded(d, &o, &s), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_stream_errmsg(s), "stream: sort_batches is -1, must be >= 0");
    kiln_stream_destroy(s);
    o = kiln_padded_options_default();
    o.batch_size = 0;
    ck_assert_int_eq(kiln_stream_create_padded(d, &o, &s), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_stream_errmsg(s), "stream: batch_size is 0, must be > 0");
    kiln_batch b;
    ck_assert(!kiln_stream_next(s, &b)); /* a failed stream is inert */
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);

    kiln_dataset *plain = kiln_dataset_create();
    ck_assert_int_eq(kiln_dataset_add_source(plain, "x", KILN_DTYPE_I32, 2, 0, NULL, v), KILN_OK);
    o = kiln_padded_options_default();
    ck_assert_int_eq(kiln_stream_create_padded(plain, &o, &s), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_stream_errmsg(s), "stream: the dataset has no sequence source to pad "
                                            "(kiln_dataset_add_sequences); use kiln_stream_create");
    kiln_stream_destroy(s);
    kiln_dataset_destroy(plain);
}
END_TEST

/* ---- the main loop ----------------------------------------------------------------- */

/* A SimpleRecurrent (identity, dim 1, W = 0.1 to start) reading x (T, B, 1)
** with the mask; cost = sum over t and the batch of mask * (h - y)^2 / B,
** with y the running sum of x: W = 1 fits it exactly. Monitor "cells" is
** T * B, "steps" the real steps of the batch. */
typedef struct rnn_model {
    kiln_graph *g;
    kiln_brick *rnn;
    kiln_node cost, cells, steps;
    kiln_program *p;
} rnn_model;

static void rnn_build(rnn_model *m, int64_t max_t, int64_t max_batch)
{
    memset(m, 0, sizeof *m);
    m->g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_graph *g = m->g;
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 3, (int64_t[]){KILN_TIME, KILN_BATCH, 1});
    kiln_node y = kiln_graph_input(g, "y", KILN_DTYPE_F32, 3, (int64_t[]){KILN_TIME, KILN_BATCH, 1});
    kiln_node mask = kiln_graph_input(g, "mask", KILN_DTYPE_F32, 2, (int64_t[]){KILN_TIME, KILN_BATCH});
    m->rnn = kiln_simple_recurrent_create("rnn", 1, kiln_identity_create(NULL));
    ck_assert_int_eq(kiln_brick_set_weights_init(m->rnn, kiln_init_constant(0.1)), KILN_OK);
    kiln_node h;
    kiln_node in[3] = {x, mask, KILN_NODE_NONE};
    ck_assert_msg(kiln_recurrent_call(m->rnn, "apply", g, in, 3, NULL, &h, 1) == KILN_OK, "%s",
                  kiln_brick_errmsg(m->rnn));
    ck_assert_int_eq(kiln_brick_initialize(m->rnn), KILN_OK);
    kiln_node err = kiln_expr_sum(g, kiln_expr_square(g, kiln_expr_sub(g, h, y)), 2); /* (T, B) */
    kiln_node per = kiln_expr_sum(g, kiln_expr_mul(g, err, mask), 0);                 /* (B) */
    m->cost = kiln_expr_mean(g, per, 0);
    kiln_graph_set_name(g, m->cost, "cost");
    m->cells = kiln_expr_sum(
        g, kiln_expr_broadcast(g, kiln_expr_constant(g, 1), 2, (int64_t[]){KILN_TIME, KILN_BATCH}), KILN_ALL_AXES);
    kiln_graph_set_name(g, m->cells, "cells");
    m->steps = kiln_expr_sum(g, mask, KILN_ALL_AXES);
    kiln_graph_set_name(g, m->steps, "steps");
    ck_assert_msg(kiln_graph_status(g) == KILN_OK, "%s", kiln_graph_errmsg(g));
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "seqrnn";
    o.cost = m->cost;
    o.step_rule = kiln_step_scale(0.02);
    kiln_node mon[2] = {m->cells, m->steps};
    o.monitors = mon;
    o.n_monitors = 2;
    o.max_batch = max_batch;
    o.max_size[KILN_SYMBOL_INDEX(KILN_TIME)] = max_t;
    ck_assert_msg(kiln_compile(g, &o, &m->p) == KILN_OK, "%s", kiln_program_errmsg(m->p));
}

static void rnn_free(rnn_model *m)
{
    kiln_program_destroy(m->p);
    kiln_graph_destroy(m->g);
    kiln_brick_destroy(m->rnn);
}

/* n sequences of lengths 1 + (i * 5) % max_len, x_t in (0, 0.5), y the
** running sum of x; and a per-example source the model does not read. */
static kiln_dataset *sum_sequences(int n, int max_len)
{
    int64_t *len = malloc((size_t)n * sizeof *len), steps = 0;
    for (int i = 0; i < n; i++)
        steps += len[i] = 1 + (i * 5) % max_len;
    float *x = malloc((size_t)steps * sizeof *x), *y = malloc((size_t)steps * sizeof *y);
    int32_t *id = malloc((size_t)n * sizeof *id);
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        float acc = 0;
        id[i] = i;
        for (int64_t t = 0; t < len[i]; t++, at++) {
            x[at] = (float)((i * 7 + t * 3) % 10) / 20.0f;
            acc += x[at];
            y[at] = acc;
        }
    }
    kiln_dataset *d = kiln_dataset_create();
    ck_assert_int_eq(kiln_dataset_add_sequences(d, "x", KILN_DTYPE_F32, n, len, 1, (int64_t[]){1}, x), KILN_OK);
    ck_assert_int_eq(kiln_dataset_add_sequences(d, "y", KILN_DTYPE_F32, n, len, 1, (int64_t[]){1}, y), KILN_OK);
    ck_assert_int_eq(kiln_dataset_add_source(d, "id", KILN_DTYPE_I32, n, 0, NULL, id), KILN_OK);
    free(len);
    free(x);
    free(y);
    free(id);
    return d;
}

/* after_batch: the program ran at the batch's T: cells = T * B, steps = the
** batch's real steps. */
static enum kiln_status check_time(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which, void *user)
{
    rnn_model *r = user;
    const kiln_batch *b = kiln_main_loop_current_batch(m);
    kiln_dataset *d = kiln_stream_dataset(kiln_main_loop_stream(m));
    double cells, steps;
    kiln_program_read_scalar(r->p, r->cells, &cells);
    kiln_program_read_scalar(r->p, r->steps, &steps);
    int64_t want = 0;
    for (int64_t k = 0; k < b->size; k++)
        want += kiln_dataset_sequence_length(d, b->examples[k]);
    if (cells != (double)(b->time * b->size) || steps != (double)want)
        return kiln_extension_fail(e, KILN_ERR_STATE, "T %lld, B %lld: cells %g, steps %g (want %lld)",
                                   (long long)b->time, (long long)b->size, cells, steps, (long long)want);
    (void)which;
    return KILN_OK;
}

START_TEST(main_loop_trains_a_recurrent_model_at_each_batch_t)
{
    rnn_model m;
    rnn_build(&m, 8, 4);
    kiln_dataset *d = sum_sequences(22, 8), *v = sum_sequences(9, 6);
    kiln_stream *s = padded(d, KILN_SCHEME_SHUFFLED, 4, 2, 5), *vs = padded(v, KILN_SCHEME_SEQUENTIAL, 4, 0, 0);
    kiln_main_loop *loop = kiln_test_loop(m.p, s);
    kiln_extension *chk = kiln_extension_create("check_time", check_time, &m, NULL);
    ck_assert_int_eq(kiln_extension_add_trigger(chk, KILN_TRIGGER_AFTER_BATCH, 0), KILN_OK);
    kiln_test_loop_add(loop, chk);
    kiln_test_loop_add(loop, kiln_data_stream_monitoring(&m.cost, 1, vs, "valid"));
    kiln_test_loop_add(loop, kiln_finish_after(30, 0));
    kiln_test_loop_run(loop);
    double first, last;
    ck_assert_int_eq(kiln_main_loop_record(loop, 0, "valid_cost", &first), KILN_OK);
    ck_assert_int_eq(kiln_main_loop_last_record(loop, "valid_cost", &last), KILN_OK);
    ck_assert_msg(last < 0.05 * first, "valid cost %g -> %g", first, last);
    kiln_main_loop_destroy(loop);
    kiln_stream_destroy(s);
    kiln_stream_destroy(vs);
    kiln_dataset_destroy(d);
    kiln_dataset_destroy(v);
    rnn_free(&m);
}
END_TEST

/* The stream's longest sequence (example 1 of sum_sequences(3, 8), lengths
** 1, 6, 3) past the program's maximum T of 4: refused before any step,
** naming the example, its length, the maximum and the option to raise. */
START_TEST(a_sequence_longer_than_the_maximum_t_is_refused)
{
    rnn_model m;
    rnn_build(&m, 4, 4);
    kiln_dataset *d = sum_sequences(3, 8);
    kiln_stream *s = padded(d, KILN_SCHEME_SEQUENTIAL, 2, 0, 0);
    kiln_main_loop *loop;
    ck_assert_int_eq(kiln_main_loop_create(m.p, s, &loop), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_main_loop_errmsg(loop),
                     "the stream's longest sequence (example 1 of the dataset) has 6 steps, past the program's "
                     "maximum T of 4 (compile with max_size[KILN_SYMBOL_INDEX(KILN_TIME)] >= 6)");
    kiln_main_loop_destroy(loop);

    /* and per batch, should a batch be longer than the binding was told */
    kiln_input_binding bind = {0};
    kiln_err err;
    kiln_err_clear(&err);
    kiln_stream *s4 = padded(d, KILN_SCHEME_SEQUENTIAL, 2, 0, 0);
    kiln_batch b;
    ck_assert(kiln_stream_next(s4, &b)); /* examples 0, 1: lengths 1, 6 */
    bind.n_inputs = 0;
    bind.time_major = true;
    bind.d = d;
    ck_assert_int_eq(kiln_main_loop_bind_batch(&bind, m.p, &b, &err), KILN_ERR_SHAPE);
    ck_assert_str_eq(err.msg, "the batch's longest sequence (example 1 of the dataset) has 6 steps, outside the "
                              "program's T of 1 to 4 (compile with max_size[KILN_SYMBOL_INDEX(KILN_TIME)] >= 6)");
    kiln_stream_destroy(s4);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    rnn_free(&m);
}
END_TEST

/* Layouts and dtypes that disagree name the input, the source and both. */
START_TEST(padded_sources_bind_only_to_matching_inputs)
{
    kiln_dataset *d = sum_sequences(6, 3);
    kiln_stream *s = padded(d, KILN_SCHEME_SEQUENTIAL, 2, 0, 0);
    kiln_main_loop *loop;

    /* a float64 mask for a float32 one */
    rnn_model m;
    rnn_build(&m, 4, 4);
    kiln_padded_options po = kiln_padded_options_default();
    po.batch_size = 2;
    po.mask_dtype = KILN_DTYPE_F64;
    kiln_stream *s64;
    ck_assert_int_eq(kiln_stream_create_padded(d, &po, &s64), KILN_OK);
    ck_assert_int_eq(kiln_main_loop_create(m.p, s64, &loop), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_main_loop_errmsg(loop), "program input 'mask' expects float32, data source 'mask' is float64");
    kiln_main_loop_destroy(loop);
    kiln_stream_destroy(s64);
    rnn_free(&m);

    /* a batch-first input fed a padded sequence */
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 1});
    kiln_param *w = kiln_param_create("w", 1, (int64_t[]){1});
    ck_assert_int_eq(kiln_param_set_values(w, (double[]){1}, 1), KILN_OK);
    kiln_node c = kiln_expr_sum(g, kiln_expr_mul(g, x, kiln_graph_param(g, w)), KILN_ALL_AXES);
    ck_assert_msg(kiln_graph_status(g) == KILN_OK, "%s", kiln_graph_errmsg(g));
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = c;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    ck_assert_int_eq(kiln_main_loop_create(p, s, &loop), KILN_ERR_SHAPE);
    ck_assert_str_eq(kiln_main_loop_errmsg(loop), "program input 'x' is (B, 1), data source 'x' is padded time-major "
                                                  "(T, B): declare the input (KILN_TIME, KILN_BATCH, ..)");
    kiln_main_loop_destroy(loop);
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    kiln_param_destroy(w);

    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
}
END_TEST

static Suite *seqdata_suite(void)
{
    Suite *s = suite_create("seqdata");
    TCase *tc = tcase_create("padded");
    tcase_add_test(tc, sequence_sources_keep_their_lengths);
    tcase_add_test(tc, padded_batches_are_time_major_with_zeros_and_a_mask);
    tcase_add_test(tc, a_float64_mask_and_its_name_are_options);
    tcase_add_test(tc, sorted_batches_hold_similar_lengths);
    tcase_add_test(tc, shuffled_sorted_stream_is_deterministic_by_seed);
    tcase_add_test(tc, bad_sequences_name_the_source_example_and_offset);
    suite_add_tcase(s, tc);
    tc = tcase_create("main_loop");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, main_loop_trains_a_recurrent_model_at_each_batch_t);
    tcase_add_test(tc, a_sequence_longer_than_the_maximum_t_is_refused);
    tcase_add_test(tc, padded_sources_bind_only_to_matching_inputs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return kiln_test_run(seqdata_suite()); }
