/* char_lm.c: a character-level language model, as a C program: an LSTM
** learns the spelling of English words, prints its cross-entropy per
** character on held-out words as it trains, then writes words of its own.
**
** Data: Debian's word list (package wamerican, /usr/share/dict/words): one
** word a line, real English, the same file on every Debian machine, and
** short sequences (a word is a handful of letters), so the model trains in
** seconds on a laptop's CPU. The words made only of the letters a-z, at
** most MAX_WORD long, are kept; every tenth is held out. A word w is the
** sequence "\n w" read one character at a time, each step predicting the
** next character: targets "w \n" (token 0 is the word boundary, 1..26 the
** letters). docs/recurrent.md walks through this program.
**
** Model (Blocks' SequenceGenerator cost convention): LookupTable (27, DIM)
** -> Linear to 4 DIM -> LSTM (DIM) -> Linear to 27 -> softmax cross-entropy
** at every step, masked, summed over time and averaged over the batch.
** Trained with Adam by kiln's main loop over a padded, sorted, shuffled
** stream (each batch at its own T); then a one-step program (the LSTM
** called with one_step) samples characters from the softmax with a seeded
** generator, feeding its state back.
**
**   char_lm [--words PATH] [--steps N] [--seed S] [--max-xent X]
**
** Exits 1 when the last held-out cross-entropy is above X nats a character
** (default MAX_XENT): the test suite runs it so. */
#include <kiln/kiln.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_WORDS "/usr/share/dict/words"
#define MAX_WORD 20   /* letters; longer words are skipped */
#define VOCAB 27      /* 0: the word boundary; 1..26: a..z */
#define DIM 96        /* LSTM units */
#define BATCH 64
#define SORT_BATCHES 20
#define EVAL_EVERY 250 /* training steps between held-out evaluations */
#define DEFAULT_STEPS 2000
#define MAX_XENT 2.00  /* nats a character: 1.886 measured at 2000 steps (docs/recurrent.md) */
#define N_SAMPLES 12   /* words generated at the end */
#define HELD_OUT_EVERY 10

static int die(const char *what, const char *msg)
{
    fprintf(stderr, "char_lm: %s: %s\n", what, msg);
    return 1;
}

/* ---- data ------------------------------------------------------------------------ */

/* Words as token sequences: chars (the boundary, then the letters) and
** targets (the letters, then the boundary), each word's length + 1 steps. */
typedef struct words {
    int64_t n, steps, cap_n, cap_steps;
    int64_t *lengths;
    int32_t *chars, *targets;
} words;

static bool words_add(words *w, const char *word, size_t len)
{
    if (w->n == w->cap_n) {
        w->cap_n = w->cap_n ? 2 * w->cap_n : 1024;
        int64_t *l = realloc(w->lengths, (size_t)w->cap_n * sizeof *l);
        if (!l)
            return false;
        w->lengths = l;
    }
    while (w->steps + (int64_t)len + 1 > w->cap_steps) {
        w->cap_steps = w->cap_steps ? 2 * w->cap_steps : 8192;
        int32_t *c = realloc(w->chars, (size_t)w->cap_steps * sizeof *c);
        if (c)
            w->chars = c;
        int32_t *t = realloc(w->targets, (size_t)w->cap_steps * sizeof *t);
        if (t)
            w->targets = t;
        if (!c || !t)
            return false;
    }
    int32_t *c = w->chars + w->steps, *t = w->targets + w->steps;
    c[0] = 0;
    for (size_t i = 0; i < len; i++)
        c[i + 1] = t[i] = word[i] - 'a' + 1;
    t[len] = 0;
    w->lengths[w->n++] = (int64_t)len + 1;
    w->steps += (int64_t)len + 1;
    return true;
}

static void words_free(words *w)
{
    free(w->lengths);
    free(w->chars);
    free(w->targets);
}

/* Read path: the words of 1..MAX_WORD letters a-z, every HELD_OUT_EVERY-th
** into held, the others into train. A line too long for the buffer is
** skipped whole. */
static int read_words(const char *path, words *train, words *held)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        fprintf(stderr, "char_lm: the word list comes with Debian's wamerican package "
                        "(scripts/setup installs it), or pass --words PATH\n");
        return 1;
    }
    char line[256];
    int64_t kept = 0;
    bool cut = false;
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\n");
        bool whole = line[len] == '\n' || feof(f);
        bool skip = cut || !whole || len == 0 || len > MAX_WORD;
        cut = !whole;
        for (size_t i = 0; i < len && !skip; i++)
            skip = line[i] < 'a' || line[i] > 'z';
        if (skip)
            continue;
        if (!words_add(kept++ % HELD_OUT_EVERY == 0 ? held : train, line, len)) {
            fclose(f);
            return die(path, "out of memory");
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad)
        return die(path, "read error");
    if (train->n < BATCH || held->n == 0)
        return die(path, "too few words of a-z only");
    return 0;
}

/* A dataset of sources "chars" and "targets" (int32 sequences). */
static kiln_dataset *words_dataset(const words *w)
{
    kiln_dataset *d = kiln_dataset_create();
    if (!d)
        return NULL;
    if (kiln_dataset_add_sequences(d, "chars", KILN_DTYPE_I32, w->n, w->lengths, 0, NULL, w->chars) ||
        kiln_dataset_add_sequences(d, "targets", KILN_DTYPE_I32, w->n, w->lengths, 0, NULL, w->targets))
        fprintf(stderr, "char_lm: %s\n", kiln_dataset_errmsg(d));
    return d;
}

/* ---- the model -------------------------------------------------------------------- */

typedef struct model {
    kiln_brick *embed, *to_gates, *lstm, *to_chars;
} model;

static kiln_brick *brick_of(const model *m, int i)
{
    kiln_brick *const all[4] = {m->embed, m->to_gates, m->lstm, m->to_chars};
    return all[i];
}

/* The bricks, each with its own seed (a root brick seeds with 1: four
** roots would draw the same numbers). */
static int model_create(model *m)
{
    m->embed = kiln_lookup_table_create("embed", VOCAB, DIM);
    m->to_gates = kiln_linear_create("to_gates", DIM, 4 * DIM);
    m->lstm = kiln_lstm_create("lstm", DIM, NULL);
    m->to_chars = kiln_linear_create("to_chars", DIM, VOCAB);
    for (int i = 0; i < 4; i++) {
        kiln_brick *b = brick_of(m, i);
        if (!b)
            return die("bricks", "out of memory");
        kiln_brick_set_seed(b, (uint64_t)i + 1);
        kiln_brick_set_weights_init(b, kiln_init_isotropic_gaussian(0.1, 0));
        kiln_brick_set_biases_init(b, kiln_init_constant(0));
    }
    return 0;
}

static int model_initialize(model *m)
{
    for (int i = 0; i < 4; i++)
        if (kiln_brick_initialize(brick_of(m, i)))
            return die("initialize", kiln_brick_errmsg(brick_of(m, i)));
    return 0;
}

static void model_destroy(model *m)
{
    for (int i = 0; i < 4; i++)
        kiln_brick_destroy(brick_of(m, i));
}

/* The training graph: inputs chars, targets (T, B) int32 and mask (T, B);
** cost (per batch), nll (summed over every real step) and n_chars. */
typedef struct train_graph {
    kiln_graph *g;
    kiln_node cost, nll, n_chars;
} train_graph;

static int build_training(model *m, train_graph *t)
{
    kiln_graph *g = t->g = kiln_graph_create(KILN_DTYPE_F32);
    if (!g)
        return die("graph", "out of memory");
    const int64_t tb[2] = {KILN_TIME, KILN_BATCH};
    kiln_node chars = kiln_graph_input(g, "chars", KILN_DTYPE_I32, 2, tb);
    kiln_node targets = kiln_graph_input(g, "targets", KILN_DTYPE_I32, 2, tb);
    kiln_node mask = kiln_graph_input(g, "mask", KILN_DTYPE_F32, 2, tb);

    /* embed (T, B, DIM); a Linear takes a matrix: fold T and B around it */
    kiln_node e, gates, h[2], logits, xent;
    if (kiln_brick_apply(m->embed, g, chars, &e))
        return die("embed", kiln_brick_errmsg(m->embed));
    kiln_node rows = kiln_expr_reshape(g, e, 2, (int64_t[]){KILN_INFER, DIM});
    if (kiln_brick_apply(m->to_gates, g, rows, &gates))
        return die("to_gates", kiln_brick_errmsg(m->to_gates));
    gates = kiln_expr_reshape(g, gates, 3, (int64_t[]){KILN_TIME, KILN_BATCH, 4 * DIM});

    /* LSTM over T with the mask; states and cells from its initial ones */
    kiln_node in[4] = {gates, mask, KILN_NODE_NONE, KILN_NODE_NONE};
    if (kiln_recurrent_call(m->lstm, "apply", g, in, 4, NULL, h, 2))
        return die("lstm", kiln_brick_errmsg(m->lstm));
    rows = kiln_expr_reshape(g, h[0], 2, (int64_t[]){KILN_INFER, DIM});
    if (kiln_brick_apply(m->to_chars, g, rows, &logits))
        return die("to_chars", kiln_brick_errmsg(m->to_chars));

    /* cross-entropy at each step (T*B,), masked, summed over T, mean over B */
    kiln_brick *softmax = kiln_softmax_create(NULL);
    kiln_node flat_targets = kiln_expr_reshape(g, targets, 1, (int64_t[]){KILN_INFER});
    enum kiln_status st = kiln_softmax_categorical_cross_entropy(softmax, g, flat_targets, logits, &xent);
    if (st)
        die("softmax", kiln_brick_errmsg(softmax));
    kiln_brick_destroy(softmax);
    if (st)
        return 1;
    kiln_node masked = kiln_expr_mul(g, kiln_expr_reshape(g, xent, 2, tb), mask);
    t->cost = kiln_expr_mean(g, kiln_expr_sum(g, masked, 0), 0);
    t->nll = kiln_expr_sum(g, masked, KILN_ALL_AXES);
    t->n_chars = kiln_expr_sum(g, mask, KILN_ALL_AXES);
    kiln_graph_set_name(g, t->cost, "sequence_cost");
    kiln_graph_set_name(g, t->nll, "nll");
    kiln_graph_set_name(g, t->n_chars, "n_chars");
    if (kiln_graph_status(g))
        return die("graph", kiln_graph_errmsg(g));
    return 0;
}

/* ---- held-out evaluation, by hand -------------------------------------------------- */

/* Cross-entropy per character over one epoch of s: sum of nll / sum of
** n_chars. Binds each batch's sources by name and sets T, as the main loop
** does. */
static enum kiln_status evaluate(kiln_program *p, kiln_stream *s, const train_graph *t, double *xent)
{
    double nll = 0, chars = 0, v;
    kiln_batch b;
    enum kiln_status st = kiln_stream_reset(s);
    while (st == KILN_OK && kiln_stream_next(s, &b)) {
        for (int i = 0; i < b.n_sources && st == KILN_OK; i++)
            st = kiln_program_bind_input(p, kiln_stream_source_name(s, i), b.sources[i]);
        if (st == KILN_OK)
            st = kiln_program_set_size(p, KILN_TIME, b.time);
        if (st == KILN_OK)
            st = kiln_program_eval_step(p, b.size);
        if (st == KILN_OK && (st = kiln_program_read_scalar(p, t->nll, &v)) == KILN_OK)
            nll += v;
        if (st == KILN_OK && (st = kiln_program_read_scalar(p, t->n_chars, &v)) == KILN_OK)
            chars += v;
    }
    if (st == KILN_OK)
        st = kiln_stream_status(s);
    *xent = chars > 0 ? nll / chars : NAN;
    return st;
}

typedef struct monitor {
    kiln_stream *held;
    const train_graph *t;
    double last;
} monitor;

/* Before training and every EVAL_EVERY steps: the held-out cross-entropy,
** printed and recorded as held_out_xent. */
static enum kiln_status report(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which, void *user)
{
    (void)which;
    monitor *mon = user;
    kiln_program *p = kiln_main_loop_program(m);
    enum kiln_status st = evaluate(p, mon->held, mon->t, &mon->last);
    if (st)
        return kiln_extension_fail(e, st, "held-out words: %s / %s", kiln_program_errmsg(p),
                                   kiln_stream_errmsg(mon->held));
    printf("step %5lld  held-out cross-entropy %.3f nats/char (%.3f bits)\n",
           (long long)kiln_main_loop_iterations_done(m), mon->last, mon->last / log(2.0));
    fflush(stdout);
    return kiln_main_loop_set_record(m, "held_out_xent", mon->last);
}

/* The held-out cross-entropy of letter frequencies alone (a unigram model
** fitted on the training words): what the LSTM must beat. */
static double unigram_xent(const words *train, const words *held)
{
    double count[VOCAB] = {0}, xent = 0;
    for (int64_t i = 0; i < train->steps; i++)
        count[train->targets[i]] += 1;
    for (int64_t i = 0; i < held->steps; i++)
        xent -= log(count[held->targets[i]] / (double)train->steps);
    return xent / (double)held->steps;
}

/* ---- generation ------------------------------------------------------------------- */

/* xorshift64*: the sampling generator, seeded, so the words are the same
** run after run. */
static double uniform(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * UINT64_C(2685821657736338717)) >> 11) / 9007199254740992.0;
}

/* Plan: 1. a one-step graph on the same bricks: char (B,), states and cells
** (B, DIM) in; probabilities (B, VOCAB) and the next states and cells out;
** 2. compile it (it copies the trained parameters); 3. from the LSTM's
** trained initial states and the boundary, sample a character per row and
** feed it and the state back, until every row has ended its word. */
static int generate(model *m, uint64_t seed)
{
    /* 1. */
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    if (!g)
        return die("graph", "out of memory");
    kiln_node ch = kiln_graph_input(g, "char", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    kiln_node h0 = kiln_graph_input(g, "states", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, DIM});
    kiln_node c0 = kiln_graph_input(g, "cells", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, DIM});
    kiln_node e = KILN_NODE_NONE, gates = KILN_NODE_NONE, next[2] = {KILN_NODE_NONE, KILN_NODE_NONE},
              logits = KILN_NODE_NONE; /* read below even when a step failed */
    kiln_recurrent_options one = {.one_step = true};
    int rc = 0;
    if (kiln_brick_apply(m->embed, g, ch, &e) || kiln_brick_apply(m->to_gates, g, e, &gates) ||
        kiln_recurrent_call(m->lstm, "apply", g, (kiln_node[]){gates, KILN_NODE_NONE, h0, c0}, 4, &one, next,
                            2) ||
        kiln_brick_apply(m->to_chars, g, next[0], &logits))
        rc = die("one-step graph", kiln_graph_errmsg(g));
    kiln_node outs[3] = {kiln_expr_softmax(g, logits), next[0], next[1]};
    if (!rc && kiln_graph_status(g))
        rc = die("one-step graph", kiln_graph_errmsg(g));

    /* 2. */
    kiln_program *p = NULL;
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "char_lm_step";
    o.outputs = outs;
    o.n_outputs = 3;
    o.max_batch = N_SAMPLES;
    if (!rc && kiln_compile(g, &o, &p))
        rc = die("compile one step", kiln_program_errmsg(p));

    /* 3. */
    static float states[N_SAMPLES * DIM], cells[N_SAMPLES * DIM];
    static double h[N_SAMPLES * DIM], c[N_SAMPLES * DIM], probs[N_SAMPLES * VOCAB], init[2][DIM];
    int32_t cur[N_SAMPLES] = {0};
    char text[N_SAMPLES][MAX_WORD + 2] = {{0}};
    bool done[N_SAMPLES] = {false};
    if (!rc && (kiln_param_get_values(kiln_brick_param_by_name(m->lstm, "initial_state"), init[0], DIM) ||
                kiln_param_get_values(kiln_brick_param_by_name(m->lstm, "initial_cells"), init[1], DIM)))
        rc = die("initial states", "cannot read the LSTM's parameters");
    for (int r = 0; r < N_SAMPLES && !rc; r++)
        for (int j = 0; j < DIM; j++) {
            states[r * DIM + j] = (float)init[0][j];
            cells[r * DIM + j] = (float)init[1][j];
        }
    for (int step = 0; step <= MAX_WORD && !rc; step++) {
        if (kiln_program_bind_input(p, "char", cur) || kiln_program_bind_input(p, "states", states) ||
            kiln_program_bind_input(p, "cells", cells) || kiln_program_forward(p, N_SAMPLES) ||
            kiln_program_read(p, outs[0], probs, N_SAMPLES * VOCAB) ||
            kiln_program_read(p, outs[1], h, N_SAMPLES * DIM) || kiln_program_read(p, outs[2], c, N_SAMPLES * DIM)) {
            rc = die("one step", kiln_program_errmsg(p));
            break;
        }
        for (int r = 0; r < N_SAMPLES; r++) {
            double u = uniform(&seed), acc = 0;
            int k = VOCAB - 1;
            for (int v = 0; v < VOCAB; v++)
                if ((acc += probs[r * VOCAB + v]) > u) {
                    k = v;
                    break;
                }
            if (!done[r] && (k == 0 || step == MAX_WORD))
                done[r] = true;
            else if (!done[r])
                text[r][step] = (char)('a' + k - 1);
            cur[r] = k;
        }
        for (int i = 0; i < N_SAMPLES * DIM; i++) {
            states[i] = (float)h[i];
            cells[i] = (float)c[i];
        }
    }
    if (!rc) {
        printf("sampled words:");
        for (int r = 0; r < N_SAMPLES; r++)
            printf(" %s", text[r]);
        printf("\n");
    }
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    return rc;
}

/* ---- main -------------------------------------------------------------------------- */

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--words PATH] [--steps N] [--seed S] [--max-xent X]\n", argv0);
    return 2;
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_WORDS;
    long steps = DEFAULT_STEPS;
    unsigned long long seed = 1;
    double max_xent = MAX_XENT;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--words") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
            steps = strtol(argv[++i], &end, 10);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], &end, 10);
        else if (strcmp(argv[i], "--max-xent") == 0 && i + 1 < argc)
            max_xent = strtod(argv[++i], &end);
        else
            return usage(argv[0]);
        if ((end && *end) || steps < 1 || steps > 10000000)
            return usage(argv[0]);
    }

    /* data: words, their padded streams (training: shuffled and sorted) */
    words train = {0}, held = {0};
    int rc = read_words(path, &train, &held);
    kiln_dataset *dtrain = NULL, *dheld = NULL;
    kiln_stream *strain = NULL, *sheld = NULL;
    model m = {0};
    train_graph t = {0};
    kiln_program *p = NULL;
    kiln_main_loop *loop = NULL;
    if (rc)
        goto out;
    printf("%lld training words, %lld held out (%s); letter frequencies alone: %.3f nats/char\n",
           (long long)train.n, (long long)held.n, path, unigram_xent(&train, &held));
    dtrain = words_dataset(&train);
    dheld = words_dataset(&held);
    kiln_padded_options po = kiln_padded_options_default();
    po.scheme = KILN_SCHEME_SHUFFLED;
    po.batch_size = BATCH;
    po.sort_batches = SORT_BATCHES;
    po.seed = 1;
    kiln_stream_create_padded(dtrain, &po, &strain);
    po = kiln_padded_options_default();
    po.batch_size = 4 * BATCH;
    kiln_stream_create_padded(dheld, &po, &sheld);
    if ((rc = !strain || !sheld || kiln_stream_status(strain) || kiln_stream_status(sheld)) != 0) {
        die("streams", strain ? kiln_stream_errmsg(strain) : "out of memory");
        die("streams", sheld ? kiln_stream_errmsg(sheld) : "out of memory");
        goto out;
    }

    /* the model and its training program; T up to the longest word + 1 */
    if ((rc = model_create(&m)) || (rc = build_training(&m, &t)) || (rc = model_initialize(&m)))
        goto out;
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "char_lm";
    o.cost = t.cost;
    o.step_rule = kiln_step_adam(0.01, 0.1, 0.001, 1e-8, 1 - 1e-8);
    kiln_node monitors[2] = {t.nll, t.n_chars};
    o.monitors = monitors;
    o.n_monitors = 2;
    o.max_batch = 4 * BATCH;
    o.max_size[KILN_SYMBOL_INDEX(KILN_TIME)] = MAX_WORD + 1;
    if (kiln_compile(t.g, &o, &p)) {
        rc = die("compile", kiln_program_errmsg(p));
        goto out;
    }

    /* train: the main loop binds each padded batch and sets T */
    monitor mon = {sheld, &t, NAN};
    kiln_extension *ev = kiln_extension_create("held_out", report, &mon, NULL);
    kiln_extension_add_trigger(ev, KILN_TRIGGER_BEFORE_TRAINING, 0);
    kiln_extension_add_trigger(ev, KILN_TRIGGER_EVERY_N_BATCHES, EVAL_EVERY);
    if (kiln_main_loop_create(p, strain, &loop) || kiln_main_loop_add_extension(loop, ev) ||
        kiln_main_loop_add_extension(loop, kiln_finish_after(0, steps)) || kiln_main_loop_run(loop)) {
        rc = die("training", kiln_main_loop_errmsg(loop));
        goto out;
    }
    if (steps % EVAL_EVERY != 0 && (rc = report(ev, loop, KILN_CALLBACK_AFTER_TRAINING, &mon) != KILN_OK))
        goto out;

    /* generate from the trained parameters */
    if (kiln_program_store_params(p)) {
        rc = die("store params", kiln_program_errmsg(p));
        goto out;
    }
    if ((rc = generate(&m, seed ? seed : 1)) != 0)
        goto out;
    if (!(mon.last <= max_xent)) {
        fprintf(stderr, "char_lm: held-out cross-entropy %.3f nats/char is above %.3f\n", mon.last, max_xent);
        rc = 1;
    }

out:
    kiln_main_loop_destroy(loop);
    kiln_program_destroy(p);
    kiln_graph_destroy(t.g);
    model_destroy(&m);
    kiln_stream_destroy(strain);
    kiln_stream_destroy(sheld);
    kiln_dataset_destroy(dtrain);
    kiln_dataset_destroy(dheld);
    words_free(&train);
    words_free(&held);
    return rc;
}
