/* test_attention.c: Blocks' attention and sequence generators
** (compiler/bricks_attention.c, compiler/bricks_seqgen.c).
**
** Programs run on the float64 reference interpreter (scanutil.c); the
** gradient cases also compile and check the C program's gradients by
** central differences (gradcheck.c). What is checked:
**   - SequenceContentAttention's glimpses against Blocks' formulas written
**     below as plain C (a partly masked row, a row masked whole), its
**     children and parameters named as Blocks names them;
**   - AttentionRecurrent over a sequence against plain C, its
**     return_initial_states (zero glimpses first);
**   - the gradient of every parameter through attention and the sequence
**     generator's cost, masked, interpreted and compiled (the attended of a
**     length of its own: a constant, or a symbol of its own compiled);
**   - SequenceGenerator's cost against plain C (Blocks' cost_matrix summed
**     over time and averaged over the batch), without attention too;
**   - generate: greedy outputs equal to a plain-C greedy decode with the
**     same parameters, interpreted and compiled; sampling the same for a
**     seed, different for another, and distributed as the softmax says
**     (a chi-square over many draws);
**   - bad input: errors name the brick's path and what was wrong. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

#include "gradcheck.h"
#include "scanutil.h"
#include "testutil.h"

/* dims: states, attended features, match, attended length, vocabulary,
** feedback */
enum { D = 3, A = 4, M = 5, S = 5, V = 6, F = 3 };

/* ---- helpers -------------------------------------------------------------------- */

static kiln_graph *graph64(void)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    ck_assert_ptr_nonnull(g);
    return g;
}

static kiln_node input(kiln_graph *g, const char *name, enum kiln_dtype t, int rank, const int64_t *dims)
{
    kiln_node n = kiln_graph_input(g, name, t, rank, dims);
    ck_assert_msg(kiln_node_ok(n), "%s", kiln_graph_errmsg(g));
    return n;
}

/* The brick at path below root ("att_trans/attention/preprocess"). */
static kiln_brick *at(kiln_brick *root, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    kiln_brick *b = root;
    for (char *part = strtok(buf, "/"); part; part = strtok(NULL, "/")) {
        b = kiln_brick_child_by_name(b, part);
        ck_assert_msg(b, "no brick %s in %s", part, path);
    }
    return b;
}

/* The values of parameter name of the brick at path (n of them). */
static void values_of(kiln_brick *root, const char *path, const char *name, double *v, int64_t n)
{
    kiln_param *p = kiln_brick_param_by_name(path ? at(root, path) : root, name);
    ck_assert_msg(p, "no parameter %s at %s", name, path ? path : "the root");
    ck_assert_int_eq(kiln_param_size(p), n);
    ck_assert_int_eq(kiln_param_get_values(p, v, n), KILN_OK);
}

/* Every parameter of the tree filled with distinct values in [-s, s]. */
static int fill_tree(kiln_brick *b, kiln_param **ps, int cap, double s)
{
    int np = tree_params(b, ps, 0, cap);
    for (int k = 0; k < np; k++) {
        int64_t n = kiln_param_size(ps[k]);
        double *v = malloc(sizeof *v * (size_t)n);
        values(v, n, -s, s, 100 + 7 * (unsigned)k);
        ck_assert_int_eq(kiln_param_set_values(ps[k], v, n), KILN_OK);
        free(v);
    }
    return np;
}

static void initialize_ok(kiln_brick *b)
{
    ck_assert_int_eq(kiln_brick_set_weights_init(b, kiln_init_isotropic_gaussian(0.5, 0)), KILN_OK);
    ck_assert_int_eq(kiln_brick_set_biases_init(b, kiln_init_constant(0)), KILN_OK);
    ck_assert_msg(kiln_brick_initialize(b) == KILN_OK, "%s", kiln_brick_errmsg(b));
}

/* Every parameter by central differences through the interpreter. */
static void check_params(prog *p, kiln_param **ps, int n, int64_t batch, int64_t t)
{
    for (int k = 0; k < n; k++) {
        char what[200];
        snprintf(what, sizeof what, "%s of %s", kiln_param_name(ps[k]), kiln_brick_path(kiln_param_brick(ps[k])));
        check_gradient_near(p, k, what, batch, t, 1e-2);
    }
}

/* The same, compiled: sizes by symbol (B, T, a user symbol's). */
static void check_compiled(kiln_graph *g, kiln_node cost, const kiln_node *wrt, int n, const gc_input *in, int n_in,
                           const int64_t *sizes)
{
    char why[512];
    double err = gc_check_sizes(g, cost, wrt, n, in, n_in, sizes, 1e-6, why, sizeof why);
    ck_assert_msg(err >= 0 && err < 1e-6, "compiled: error %g: %s", err, why);
}

/* The attended mask (S, B): row 1 loses its last two positions, row 2 (when
** there is one) everything. */
static void attended_mask(double *m, int s, int b)
{
    for (int t = 0; t < s; t++)
        for (int j = 0; j < b; j++)
            m[t * b + j] = (j == 1 && t >= s - 2) || j == 2 ? 0 : 1;
}

static double dot(const double *x, const double *w, int n, int stride)
{
    double a = 0;
    for (int k = 0; k < n; k++)
        a += x[k] * w[k * stride];
    return a;
}

/* ---- Blocks' formulas in plain C ------------------------------------------------------ */

/* SequenceContentAttention's parameters. */
typedef struct att_par {
    double ws[D * M], wp[A * M], bp[M], we[M];
} att_par;

static void att_par_of(kiln_brick *att, att_par *p)
{
    values_of(att, "state_trans/transform_states", "W", p->ws, D * M);
    values_of(att, "preprocess", "W", p->wp, A * M);
    values_of(att, "preprocess", "b", p->bp, M);
    values_of(att, "energy_comp/linear", "W", p->we, M);
}

/* Glimpses of row b: attended (s, B, A), mask (s, B) or NULL, state h (D,):
** weights (s,) and averages (A,). */
static void glimpse_ref(const att_par *p, int s, int B, int b, const double *att, const double *mask,
                        const double *h, double *weights, double *avg)
{
    double e[16], hs[M], mx = -INFINITY;
    for (int j = 0; j < M; j++)
        hs[j] = dot(h, p->ws + j, D, M);
    for (int t = 0; t < s; t++) {
        const double *x = att + (t * B + b) * A;
        e[t] = 0;
        for (int j = 0; j < M; j++)
            e[t] += tanh(dot(x, p->wp + j, A, M) + p->bp[j] + hs[j]) * p->we[j];
        mx = fmax(mx, e[t]);
    }
    double sum = 0;
    bool any = !mask;
    for (int t = 0; t < s; t++) {
        double m = mask ? mask[t * B + b] : 1;
        weights[t] = exp(e[t] - mx) * m;
        sum += weights[t];
        any |= m == 1;
    }
    for (int t = 0; t < s; t++)
        weights[t] /= sum + (any ? 0 : 1);
    for (int k = 0; k < A; k++) {
        avg[k] = 0;
        for (int t = 0; t < s; t++)
            avg[k] += weights[t] * att[(t * B + b) * A + k];
    }
}

/* ---- SequenceContentAttention ------------------------------------------------------------ */

static kiln_brick *attention(int64_t state_dim)
{
    const char *states[] = {"states"};
    kiln_brick *att = kiln_sequence_content_attention_create("attention", states, 1,
                                                             state_dim ? (int64_t[]){state_dim} : NULL, A, M, NULL,
                                                             NULL, NULL);
    ck_assert_ptr_nonnull(att);
    return att;
}

/* Children and parameters as Blocks names them; the glimpses of three
** rows (whole, partly masked, masked whole) against plain C; the
** gradient of every parameter. */
START_TEST(attention_glimpses_match_blocks_formulas)
{
    enum { B = 3 };
    kiln_brick *att = attention(D);
    initialize_ok(att);
    ck_assert_str_eq(kiln_brick_path(at(att, "state_trans/transform_states")),
                     "/attention/state_trans/transform_states");
    ck_assert_str_eq(kiln_brick_path(at(att, "energy_comp/tanh")), "/attention/energy_comp/tanh");
    ck_assert_int_eq(kiln_brick_param_count(at(att, "energy_comp/linear")), 1); /* no bias */
    ck_assert_int_eq(kiln_brick_param_count(at(att, "state_trans/transform_states")), 1);
    ck_assert_int_eq(kiln_brick_param_count(at(att, "preprocess")), 2);
    const char *ins[] = {"attended", "preprocessed_attended", "attended_mask", "states"};
    ck_assert_int_eq(kiln_brick_input_count(att, "take_glimpses"), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(kiln_brick_input_name(att, "take_glimpses", i), ins[i]);
    kiln_param *ps[8];
    int np = fill_tree(att, ps, 8, 0.8);
    ck_assert_int_eq(np, 4);
    kiln_graph *g = graph64();
    kiln_node xa = input(g, "attended", KILN_DTYPE_F64, 3, (int64_t[]){S, KILN_BATCH, A});
    kiln_node xm = input(g, "attended_mask", KILN_DTYPE_F64, 2, (int64_t[]){S, KILN_BATCH});
    kiln_node xs = input(g, "s", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, D}), gl[2];
    ck_assert_msg(kiln_brick_call(att, "take_glimpses", g, (kiln_node[]){xa, KILN_NODE_NONE, xm, xs}, 4, gl, 2) ==
                      KILN_OK, "%s", kiln_brick_errmsg(att));
    ck_assert_str_eq(kiln_graph_node_name(g, gl[0]), "attention_take_glimpses_weighted_averages");
    ck_assert_int_eq(kiln_graph_node_dim(g, gl[1], 1), S);
    kiln_node cost = kiln_expr_add(g, weighted_sum(g, gl[0], "r0"), weighted_sum(g, gl[1], "r1")), wrt[8];
    wrt_nodes(g, ps, np, wrt);
    prog p;
    prog_open(&p, g, cost, gl, 2, wrt, np);
    double av[S * B * A], mv[S * B], sv[B * D], r0[B * A], r1[B * S];
    values(av, S * B * A, -1, 1, 1);
    values(sv, B * D, -1, 1, 2);
    values(r0, B * A, -1, 1, 3);
    values(r1, B * S, -1, 1, 4);
    attended_mask(mv, S, B);
    prog_bind(&p, "attended", av);
    prog_bind(&p, "attended_mask", mv);
    prog_bind(&p, "s", sv);
    prog_bind(&p, "r0", r0);
    prog_bind(&p, "r1", r1);
    prog_run(&p, KILN_MODE_FORWARD, B, 1);
    att_par par;
    att_par_of(att, &par);
    double avg[B * A], w[B * S], got_a[B * A], got_w[B * S];
    for (int b = 0; b < B; b++)
        glimpse_ref(&par, S, B, b, av, mv, sv + b * D, w + b * S, avg + b * A);
    read_node(&p, p.outs[0], got_a, B * A);
    read_node(&p, p.outs[1], got_w, B * S);
    assert_values(got_a, avg, B * A, "weighted_averages");
    assert_values(got_w, w, B * S, "weights");
    for (int t = 0; t < S; t++) /* masked whole: no weight */
        ck_assert(got_w[2 * S + t] == 0);
    check_params(&p, ps, np, B, 1);
    prog_close(&p);
    kiln_graph_destroy(g);
    kiln_brick_destroy(att);
}
END_TEST

/* ---- AttentionRecurrent ---------------------------------------------------------------- */

/* SimpleRecurrent("transition", tanh) with the attention: states dim D. */
static kiln_brick *attention_recurrent(void)
{
    kiln_brick *t = kiln_simple_recurrent_create("transition", D, kiln_tanh_create(NULL));
    kiln_brick *ar = kiln_attention_recurrent_create(NULL, t, attention(0), NULL, true, NULL, NULL);
    ck_assert_ptr_nonnull(ar);
    return ar;
}

/* h_t = m tanh(x_t + wa_t W_d + h_{t-1} W) + (1 - m) h_{t-1}, wa_t the
** glimpse of h_{t-1}: states, averages and weights of every step. */
static void attention_recurrent_ref(kiln_brick *ar, int T, int B, const double *x, const double *mask,
                                    const double *att, const double *amask, double *hs, double *was, double *ws)
{
    att_par par;
    att_par_of(at(ar, "attention"), &par);
    double W[D * D], h0[D], Wd[A * D], h[8 * D], hn[8 * D];
    values_of(ar, "transition", "W", W, D * D);
    values_of(ar, "transition", "initial_state", h0, D);
    values_of(ar, "distribute/fork_inputs", "W", Wd, A * D);
    for (int b = 0; b < B; b++)
        memcpy(h + b * D, h0, sizeof h0);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            double *wa = was + (t * B + b) * A, *w = ws + (t * B + b) * S;
            glimpse_ref(&par, S, B, b, att, amask, h + b * D, w, wa);
            double m = mask[t * B + b];
            for (int j = 0; j < D; j++) {
                double a = x[(t * B + b) * D + j] + dot(wa, Wd + j, A, D) + dot(h + b * D, W + j, D, D);
                hn[b * D + j] = m * tanh(a) + (1 - m) * h[b * D + j];
            }
            if (b == B - 1) {
                memcpy(h, hn, sizeof(double) * (size_t)B * D);
                memcpy(hs + t * B * D, h, sizeof(double) * (size_t)B * D);
            }
        }
}

/* Blocks' names for the inputs and outputs; the states and glimpses of
** every step against plain C; the gradient of every parameter,
** interpreted and compiled (the attended's length a symbol of its own). */
START_TEST(attention_recurrent_matches_plain_c)
{
    enum { T = 4, B = 2 };
    kiln_brick *ar = attention_recurrent();
    initialize_ok(ar);
    const char *ins[] = {"inputs", "mask", "states", "attended", "attended_mask"};
    const char *outs[] = {"states", "weighted_averages", "weights"};
    ck_assert_int_eq(kiln_brick_input_count(ar, "apply"), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(kiln_brick_input_name(ar, "apply", i), ins[i]);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(kiln_brick_output_name(ar, "apply", i), outs[i]);
    ck_assert_str_eq(kiln_brick_input_name(ar, "do_apply", 5), "preprocessed_attended");
    kiln_param *ps[16];
    int np = fill_tree(ar, ps, 16, 0.7);
    ck_assert_int_eq(np, 7); /* W, initial_state; 4 of the attention; the distribute's W */
    double xv[T * B * D], mv[T * B], av[S * B * A], amv[S * B], r[3][T * B * S];
    values(xv, T * B * D, -1, 1, 5);
    values(av, S * B * A, -1, 1, 6);
    for (int k = 0; k < 3; k++)
        values(r[k], T * B * S, -1, 1, 7 + (unsigned)k);
    for (int i = 0; i < T * B; i++)
        mv[i] = i == T * B - 1 ? 0 : 1;
    attended_mask(amv, S, B);
    for (int sym = 0; sym < 2; sym++) { /* the attended: S steps, then a symbol of its own */
        kiln_graph *g = graph64();
        int64_t s_dim = sym ? kiln_graph_symbol(g, "S") : S;
        kiln_node x = input(g, "x", KILN_DTYPE_F64, 3, (int64_t[]){KILN_TIME, KILN_BATCH, D});
        kiln_node m = input(g, "mask", KILN_DTYPE_F64, 2, (int64_t[]){KILN_TIME, KILN_BATCH});
        kiln_node xa = input(g, "attended", KILN_DTYPE_F64, 3, (int64_t[]){s_dim, KILN_BATCH, A});
        kiln_node xm = input(g, "attended_mask", KILN_DTYPE_F64, 2, (int64_t[]){s_dim, KILN_BATCH}), out[3];
        ck_assert_msg(kiln_brick_call(ar, "apply", g, (kiln_node[]){x, m, KILN_NODE_NONE, xa, xm}, 5, out, 3) ==
                          KILN_OK, "%s", kiln_brick_errmsg(ar));
        ck_assert_str_eq(kiln_graph_node_name(g, out[0]), "attentionrecurrent_apply_states");
        kiln_node cost = weighted_sum(g, out[0], "r0");
        cost = kiln_expr_add(g, cost, weighted_sum(g, out[1], "r1"));
        cost = kiln_expr_add(g, cost, weighted_sum(g, out[2], "r2"));
        kiln_node wrt[16];
        wrt_nodes(g, ps, np, wrt);
        gc_input gin[] = {{"x", xv}, {"mask", mv}, {"attended", av}, {"attended_mask", amv},
                          {"r0", r[0]}, {"r1", r[1]}, {"r2", r[2]}};
        if (sym) {
            check_compiled(g, cost, wrt, np, gin, 7, (int64_t[KILN_MAX_SYMBOLS]){B, T, S});
            kiln_graph_destroy(g);
            continue;
        }
        prog p;
        prog_open(&p, g, cost, out, 3, wrt, np);
        for (int i = 0; i < 7; i++)
            prog_bind(&p, gin[i].name, gin[i].data);
        prog_run(&p, KILN_MODE_FORWARD, B, T);
        double hs[T * B * D], was[T * B * A], ws[T * B * S], got[T * B * S];
        attention_recurrent_ref(ar, T, B, xv, mv, av, amv, hs, was, ws);
        read_node(&p, p.outs[0], got, T * B * D);
        assert_values(got, hs, T * B * D, "states");
        read_node(&p, p.outs[1], got, T * B * A);
        assert_values(got, was, T * B * A, "weighted_averages");
        read_node(&p, p.outs[2], got, T * B * S);
        assert_values(got, ws, T * B * S, "weights");
        check_params(&p, ps, np, B, T);
        prog_close(&p);
        check_compiled(g, cost, wrt, np, gin, 7, (int64_t[KILN_MAX_SYMBOLS]){B, T});
        kiln_graph_destroy(g);
    }
    kiln_brick_destroy(ar);
}
END_TEST

/* return_initial_states (a constant T): states and glimpses get T+1 rows,
** the glimpses' first zeros (Blocks' initial_glimpses). */
START_TEST(attention_recurrent_returns_initial_glimpses)
{
    enum { T = 3, B = 2 };
    kiln_brick *ar = attention_recurrent();
    initialize_ok(ar);
    fill_tree(ar, (kiln_param *[16]){0}, 16, 0.7);
    kiln_graph *g = graph64();
    kiln_node x = input(g, "x", KILN_DTYPE_F64, 3, (int64_t[]){T, KILN_BATCH, D});
    kiln_node xa = input(g, "attended", KILN_DTYPE_F64, 3, (int64_t[]){S, KILN_BATCH, A}), out[3];
    kiln_recurrent_options o = {.return_initial_states = true};
    ck_assert_msg(kiln_recurrent_call(ar, "apply", g, (kiln_node[]){x, KILN_NODE_NONE, KILN_NODE_NONE, xa,
                                                                    KILN_NODE_NONE}, 5, &o, out, 3) == KILN_OK,
                  "%s", kiln_brick_errmsg(ar));
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(kiln_graph_node_dim(g, out[k], 0), T + 1);
    prog p;
    prog_open(&p, g, kiln_expr_sum(g, out[0], KILN_ALL_AXES), out, 3, NULL, 0);
    double xv[T * B * D], av[S * B * A], got[(T + 1) * B * S], h0[D];
    values(xv, T * B * D, -1, 1, 5);
    values(av, S * B * A, -1, 1, 6);
    prog_bind(&p, "x", xv);
    prog_bind(&p, "attended", av);
    prog_run(&p, KILN_MODE_FORWARD, B, T);
    values_of(ar, "transition", "initial_state", h0, D);
    read_node(&p, p.outs[0], got, (T + 1) * B * D);
    for (int i = 0; i < B * D; i++)
        ck_assert(got[i] == h0[i % D]);
    read_node(&p, p.outs[1], got, (T + 1) * B * A);
    for (int i = 0; i < B * A; i++)
        ck_assert(got[i] == 0);
    ck_assert(got[B * A] != 0);
    read_node(&p, p.outs[2], got, (T + 1) * B * S);
    for (int i = 0; i < B * S; i++)
        ck_assert(got[i] == 0);
    double sum = 0;
    for (int i = 0; i < S; i++)
        sum += got[B * S + i];
    ck_assert(fabs(sum - 1) < 1e-12); /* no mask: the weights of a step sum to 1 */
    prog_close(&p);
    kiln_graph_destroy(g);
    kiln_brick_destroy(ar);
}
END_TEST

/* ---- SequenceGenerator -------------------------------------------------------------- */

/* Blocks' reverse-words generator, small: a SimpleRecurrent "transition"
** with the attention; the readout reads the states, the weighted averages
** and the feedback (a LookupFeedback); a SoftmaxEmitter "emitter" of V
** categories. */
static kiln_brick *generator(void)
{
    kiln_brick *t = kiln_simple_recurrent_create("transition", D, kiln_tanh_create(NULL));
    const char *sources[] = {"states", "weighted_averages", "feedback"};
    kiln_brick *ro = kiln_readout_create("readout", V, sources, 3, kiln_softmax_emitter_create("emitter", 0),
                                         kiln_lookup_feedback_create(NULL, V, F), NULL, NULL, NULL, 0);
    ck_assert_ptr_nonnull(ro);
    kiln_brick *gen = kiln_sequence_generator_create("generator", ro, t, attention(0), true, NULL);
    ck_assert_ptr_nonnull(gen);
    return gen;
}

/* The generator's parameters, by what they are. */
typedef struct gen_par {
    att_par att;
    double W[D * D], h0[D], Wd[A * D];                 /* transition, distribute */
    double Wl[V * F], Wrs[D * V], Wra[A * V], Wrf[F * V], br[V]; /* readout */
    double Wf[F * D], bf[D];                           /* fork */
} gen_par;

static void gen_par_of(kiln_brick *gen, gen_par *p)
{
    att_par_of(at(gen, "att_trans/attention"), &p->att);
    values_of(gen, "att_trans/transition", "W", p->W, D * D);
    values_of(gen, "att_trans/transition", "initial_state", p->h0, D);
    values_of(gen, "att_trans/distribute/fork_inputs", "W", p->Wd, A * D);
    values_of(gen, "readout/lookupfeedback/lookuptable", "W", p->Wl, V * F);
    values_of(gen, "readout/merge/transform_states", "W", p->Wrs, D * V);
    values_of(gen, "readout/merge/transform_weighted_averages", "W", p->Wra, A * V);
    values_of(gen, "readout/merge/transform_feedback", "W", p->Wrf, F * V);
    values_of(gen, "readout/bias", "b", p->br, V);
    values_of(gen, "fork/fork_inputs", "W", p->Wf, F * D);
    values_of(gen, "fork/fork_inputs", "b", p->bf, D);
}

/* Blocks' generation algorithm in plain C over T steps. y given (T, B):
** returns the cost (the masked costs summed over time, averaged over the
** batch); y NULL: greedy, the outputs into out (T, B). */
static double generator_ref(const gen_par *p, int T, int B, const int32_t *y, const double *mask, const double *att,
                            const double *amask, int32_t *out, double *r0)
{
    double *h = malloc(sizeof *h * (size_t)B * D), *f = malloc(sizeof *f * (size_t)B * F), total = 0;
    for (int b = 0; b < B; b++) {
        memcpy(h + b * D, p->h0, sizeof p->h0);
        memcpy(f + b * F, p->Wl, sizeof(double) * F); /* the feedback of the initial output, 0 */
    }
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            double w[S], wa[A], r[V], mx = -INFINITY, sum = 0;
            double *hb = h + b * D, *fb = f + b * F;
            glimpse_ref(&p->att, S, B, b, att, amask, hb, w, wa);
            int best = 0;
            for (int v = 0; v < V; v++) {
                r[v] = dot(hb, p->Wrs + v, D, V) + dot(wa, p->Wra + v, A, V) + dot(fb, p->Wrf + v, F, V) + p->br[v];
                if (r[v] > r[best])
                    best = v;
                mx = fmax(mx, r[v]);
            }
            for (int v = 0; v < V; v++)
                sum += exp(r[v] - mx);
            if (r0 && t == 0 && b == 0)
                memcpy(r0, r, sizeof r);
            int yt = y ? y[t * B + b] : best;
            double m = mask ? mask[t * B + b] : 1;
            total += m * (mx + log(sum) - r[yt]);
            if (out)
                out[t * B + b] = yt;
            memcpy(fb, p->Wl + yt * F, sizeof(double) * F);
            double hn[D];
            for (int j = 0; j < D; j++) {
                double x = dot(fb, p->Wf + j, F, D) + p->bf[j] + dot(wa, p->Wd + j, A, D);
                hn[j] = m * tanh(x + dot(hb, p->W + j, D, D)) + (1 - m) * hb[j];
            }
            memcpy(hb, hn, sizeof hn);
        }
    free(h);
    free(f);
    return total / B;
}

/* Targets (T, B) in [0, V), a mask whose row 1 ends early. */
static void targets(int32_t *y, double *m, int T, int B)
{
    for (int i = 0; i < T * B; i++) {
        y[i] = (int32_t)((7 * i + 3) % V);
        m[i] = i % B == 1 && i / B >= T - 2 ? 0 : 1;
    }
}

/* Children and parameters as Blocks names them; the cost (T, B targets
** with a mask, an attended of S steps with its mask) against plain C, and
** the per_sequence_element auxiliary; the gradient of every parameter,
** interpreted and compiled, the attended's length a symbol of its own
** once. */
START_TEST(generator_cost_matches_plain_c_and_its_gradient)
{
    enum { T = 4, B = 3 };
    kiln_brick *gen = generator();
    initialize_ok(gen);
    const char *kids[] = {"readout", "fork", "att_trans"};
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(kiln_brick_name(kiln_brick_child(gen, i)), kids[i]);
    const char *ins[] = {"outputs", "mask", "states", "attended", "attended_mask"};
    ck_assert_int_eq(kiln_brick_input_count(gen, "cost"), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(kiln_brick_input_name(gen, "cost", i), ins[i]);
    kiln_param *ps[32];
    int np = fill_tree(gen, ps, 32, 0.6);
    ck_assert_int_eq(np, 14);
    int32_t yv[T * B];
    double mv[T * B], av[S * B * A], amv[S * B];
    targets(yv, mv, T, B);
    values(av, S * B * A, -1, 1, 11);
    attended_mask(amv, S, B);
    gen_par par;
    gen_par_of(gen, &par);
    double want = generator_ref(&par, T, B, yv, mv, av, amv, NULL, NULL);
    for (int sym = 0; sym < 2; sym++) {
        kiln_graph *g = graph64();
        int64_t s_dim = sym ? kiln_graph_symbol(g, "S") : S;
        kiln_node y = input(g, "y", KILN_DTYPE_I32, 2, (int64_t[]){KILN_TIME, KILN_BATCH});
        kiln_node m = input(g, "mask", KILN_DTYPE_F64, 2, (int64_t[]){KILN_TIME, KILN_BATCH});
        kiln_node xa = input(g, "attended", KILN_DTYPE_F64, 3, (int64_t[]){s_dim, KILN_BATCH, A});
        kiln_node xm = input(g, "attended_mask", KILN_DTYPE_F64, 2, (int64_t[]){s_dim, KILN_BATCH}), cost;
        ck_assert_msg(kiln_brick_call(gen, "cost", g, (kiln_node[]){y, m, KILN_NODE_NONE, xa, xm}, 5, &cost, 1) ==
                          KILN_OK, "%s", kiln_brick_errmsg(gen));
        ck_assert_str_eq(kiln_graph_node_name(g, cost), "generator_cost_output");
        ck_assert(kiln_graph_has_role(g, cost, KILN_ROLE_COST));
        kiln_node wrt[32];
        wrt_nodes(g, ps, np, wrt);
        gc_input gin[] = {{"y", yv}, {"mask", mv}, {"attended", av}, {"attended_mask", amv}};
        if (sym) {
            check_compiled(g, cost, wrt, np, gin, 4, (int64_t[KILN_MAX_SYMBOLS]){B, T, S});
            kiln_graph_destroy(g);
            continue;
        }
        kiln_filter f = {.roles = KILN_ROLE_AUXILIARY, .name = "per_sequence_element"};
        kiln_node per;
        ck_assert_int_eq(kiln_graph_filter(g, &cost, 1, &f, &per, 1), 1);
        prog p;
        prog_open(&p, g, cost, &per, 1, wrt, np);
        for (int i = 0; i < 4; i++)
            prog_bind(&p, gin[i].name, gin[i].data);
        prog_run(&p, KILN_MODE_EVAL, B, T);
        double got, per_v, msum = 0;
        read_node(&p, p.cost, &got, 1);
        assert_values(&got, &want, 1, "cost");
        prog_run(&p, KILN_MODE_FORWARD, B, T);
        read_node(&p, p.outs[0], &per_v, 1);
        for (int i = 0; i < T * B; i++)
            msum += mv[i];
        double want_per = want * B / msum;
        assert_values(&per_v, &want_per, 1, "per_sequence_element");
        check_params(&p, ps, np, B, T);
        prog_close(&p);
        check_compiled(g, cost, wrt, np, gin, 4, (int64_t[KILN_MAX_SYMBOLS]){B, T});
        kiln_graph_destroy(g);
    }
    kiln_brick_destroy(gen);
}
END_TEST

/* generate with emit_greedy: the outputs of every step equal a plain-C
** greedy decode, interpreted and compiled; its outputs are named and shaped
** as Blocks' (states, glimpses, outputs, costs over n_steps). */
START_TEST(greedy_generate_matches_plain_c)
{
    enum { N = 7, B = 3 };
    kiln_brick *gen = generator();
    initialize_ok(gen);
    fill_tree(gen, (kiln_param *[32]){0}, 32, 1.5);
    const char *outs[] = {"states", "weighted_averages", "weights", "outputs", "costs"};
    ck_assert_int_eq(kiln_brick_output_count(gen, "generate"), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(kiln_brick_output_name(gen, "generate", i), outs[i]);
    double av[S * B * A], amv[S * B];
    values(av, S * B * A, -1, 1, 12);
    attended_mask(amv, S, B);
    gen_par par;
    gen_par_of(gen, &par);
    int32_t want[N * B];
    generator_ref(&par, N, B, NULL, NULL, av, amv, want, NULL);
    int distinct = 0; /* the decode is not one symbol throughout */
    for (int i = 1; i < N * B; i++)
        distinct += want[i] != want[0];
    ck_assert_int_gt(distinct, 0);
    kiln_graph *g = graph64();
    kiln_node xa = input(g, "attended", KILN_DTYPE_F64, 3, (int64_t[]){S, KILN_BATCH, A});
    kiln_node xm = input(g, "attended_mask", KILN_DTYPE_F64, 2, (int64_t[]){S, KILN_BATCH}), res[5];
    kiln_generate_options o = {.n_steps = N, .greedy = true};
    ck_assert_msg(kiln_sequence_generator_generate(gen, g, (kiln_node[]){KILN_NODE_NONE, xa, xm}, 3, &o, res, 5) ==
                      KILN_OK, "%s", kiln_brick_errmsg(gen));
    ck_assert_str_eq(kiln_graph_node_name(g, res[3]), "generator_generate_outputs");
    ck_assert_int_eq(kiln_graph_node_dtype(g, res[3]), KILN_DTYPE_I32);
    ck_assert_int_eq(kiln_graph_node_dim(g, res[3], 0), N);
    ck_assert_int_eq(kiln_graph_node_dim(g, res[2], 2), S);
    /* interpreted */
    prog p;
    prog_open(&p, g, kiln_expr_sum(g, res[4], KILN_ALL_AXES), res, 5, NULL, 0);
    prog_bind(&p, "attended", av);
    prog_bind(&p, "attended_mask", amv);
    prog_run(&p, KILN_MODE_FORWARD, B, 1);
    double got[N * B];
    read_node(&p, p.outs[3], got, N * B);
    for (int i = 0; i < N * B; i++)
        ck_assert_msg(got[i] == want[i], "interpreted output %d: %g, expected %d", i, got[i], want[i]);
    prog_close(&p);
    /* compiled */
    kiln_compile_options co = kiln_compile_options_default();
    co.outputs = &res[3];
    co.n_outputs = 1;
    co.max_batch = B;
    kiln_program *cp;
    ck_assert_msg(kiln_compile(g, &co, &cp) == KILN_OK, "%s", kiln_program_errmsg(cp));
    ck_assert_int_eq(kiln_program_bind_input(cp, "attended", av), KILN_OK);
    ck_assert_int_eq(kiln_program_bind_input(cp, "attended_mask", amv), KILN_OK);
    ck_assert_msg(kiln_program_forward(cp, B) == KILN_OK, "%s", kiln_program_errmsg(cp));
    ck_assert_int_eq(kiln_program_read(cp, res[3], got, N * B), KILN_OK);
    for (int i = 0; i < N * B; i++)
        ck_assert_msg(got[i] == want[i], "compiled output %d: %g, expected %d", i, got[i], want[i]);
    kiln_program_destroy(cp);
    kiln_graph_destroy(g);
    kiln_brick_destroy(gen);
}
END_TEST

/* Without attention (a FakeAttentionRecurrent "with_fake_attention"): an
** LSTM generator reading its states and the feedback; the gradient of
** every parameter through the cost, interpreted and compiled. */
START_TEST(generator_without_attention_gradient)
{
    enum { T = 4, B = 2 };
    const char *sources[] = {"states", "feedback"};
    kiln_brick *ro = kiln_readout_create(NULL, V, sources, 2, kiln_softmax_emitter_create(NULL, 1),
                                         kiln_lookup_feedback_create(NULL, V, F), NULL, NULL, NULL, 0);
    kiln_brick *gen = kiln_sequence_generator_create(NULL, ro, kiln_lstm_create(NULL, D, NULL), NULL, true, NULL);
    ck_assert_ptr_nonnull(gen);
    ck_assert_str_eq(kiln_brick_path(kiln_brick_child(gen, 2)), "/sequencegenerator/with_fake_attention");
    ck_assert_str_eq(kiln_brick_name(kiln_brick_child(kiln_brick_child(gen, 0), 0)), "softmaxemitter");
    const char *ins[] = {"outputs", "mask", "states", "cells"};
    ck_assert_int_eq(kiln_brick_input_count(gen, "cost_matrix"), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(kiln_brick_input_name(gen, "cost_matrix", i), ins[i]);
    initialize_ok(gen);
    kiln_param *ps[32];
    int np = fill_tree(gen, ps, 32, 0.6);
    ck_assert_int_eq(np, 12); /* 6 of the LSTM, lookup W, merge 2 W, bias b, fork W b */
    kiln_graph *g = graph64();
    kiln_node y = input(g, "y", KILN_DTYPE_I32, 2, (int64_t[]){KILN_TIME, KILN_BATCH});
    kiln_node m = input(g, "mask", KILN_DTYPE_F64, 2, (int64_t[]){KILN_TIME, KILN_BATCH}), costs, cost;
    ck_assert_msg(kiln_brick_call(gen, "cost_matrix", g, (kiln_node[]){y, m, KILN_NODE_NONE, KILN_NODE_NONE}, 4,
                                  &costs, 1) == KILN_OK, "%s", kiln_brick_errmsg(gen));
    ck_assert_int_eq(kiln_graph_node_rank(g, costs), 2);
    cost = weighted_sum(g, costs, "r");
    kiln_node wrt[32];
    wrt_nodes(g, ps, np, wrt);
    int32_t yv[T * B];
    double mv[T * B], rv[T * B];
    targets(yv, mv, T, B);
    values(rv, T * B, 0.5, 1.5, 13);
    prog p;
    prog_open(&p, g, cost, &costs, 1, wrt, np);
    prog_bind(&p, "y", yv);
    prog_bind(&p, "mask", mv);
    prog_bind(&p, "r", rv);
    prog_run(&p, KILN_MODE_FORWARD, B, T);
    double got[T * B];
    read_node(&p, p.outs[0], got, T * B);
    for (int i = 0; i < T * B; i++) /* masked: no cost; else a cross-entropy */
        ck_assert(mv[i] == 0 ? got[i] == 0 : got[i] > 0);
    check_params(&p, ps, np, B, T);
    prog_close(&p);
    gc_input gin[] = {{"y", yv}, {"mask", mv}, {"r", rv}};
    check_compiled(g, cost, wrt, np, gin, 3, (int64_t[KILN_MAX_SYMBOLS]){B, T});
    kiln_graph_destroy(g);
    kiln_brick_destroy(gen);
}
END_TEST

/* TrivialEmitter and TrivialFeedback: the readouts are the outputs and are
** fed back; generate against plain C: y_t = s_{t-1} W_s + y_{t-1} W_y + b,
** s_t = tanh(y_t W_f + b_f + s_{t-1} W). */
START_TEST(trivial_emitter_generates_its_readouts)
{
    enum { N = 4, B = 2, R = 2 };
    const char *sources[] = {"states", "feedback"};
    kiln_brick *ro = kiln_readout_create(NULL, R, sources, 2, NULL, NULL, NULL, NULL, NULL, 0);
    kiln_brick *gen = kiln_sequence_generator_create(NULL, ro, kiln_simple_recurrent_create(NULL, D,
                                                                                             kiln_tanh_create(NULL)),
                                                     NULL, true, NULL);
    ck_assert_ptr_nonnull(gen);
    ck_assert_str_eq(kiln_brick_name(at(gen, "readout/trivialemitter")), "trivialemitter");
    initialize_ok(gen);
    fill_tree(gen, (kiln_param *[16]){0}, 16, 0.8);
    double W[D * D], h0[D], Ws[D * R], Wy[R * R], br[R], Wf[R * D], bf[D];
    values_of(gen, "with_fake_attention/simplerecurrent", "W", W, D * D);
    values_of(gen, "with_fake_attention/simplerecurrent", "initial_state", h0, D);
    values_of(gen, "readout/merge/transform_states", "W", Ws, D * R);
    values_of(gen, "readout/merge/transform_feedback", "W", Wy, R * R);
    values_of(gen, "readout/bias", "b", br, R);
    values_of(gen, "fork/fork_inputs", "W", Wf, R * D);
    values_of(gen, "fork/fork_inputs", "b", bf, D);
    double want[N * B * R];
    for (int b = 0; b < B; b++) {
        double h[D], y[R] = {0, 0}, hn[D];
        memcpy(h, h0, sizeof h);
        for (int t = 0; t < N; t++) {
            double yn[R];
            for (int k = 0; k < R; k++)
                yn[k] = dot(h, Ws + k, D, R) + dot(y, Wy + k, R, R) + br[k];
            memcpy(y, yn, sizeof y);
            memcpy(want + (t * B + b) * R, y, sizeof y);
            for (int j = 0; j < D; j++)
                hn[j] = tanh(dot(y, Wf + j, R, D) + bf[j] + dot(h, W + j, D, D));
            memcpy(h, hn, sizeof h);
        }
    }
    kiln_graph *g = graph64();
    kiln_node res[3];
    kiln_generate_options o = {.n_steps = N, .batch = KILN_BATCH};
    ck_assert_msg(kiln_sequence_generator_generate(gen, g, (kiln_node[]){KILN_NODE_NONE}, 1, &o, res, 3) == KILN_OK,
                  "%s", kiln_brick_errmsg(gen));
    prog p;
    prog_open(&p, g, kiln_expr_sum(g, res[2], KILN_ALL_AXES), res, 3, NULL, 0);
    prog_run(&p, KILN_MODE_FORWARD, B, 1);
    double got[N * B * R], costs[N * B];
    read_node(&p, p.outs[1], got, N * B * R);
    assert_values(got, want, N * B * R, "outputs");
    read_node(&p, p.outs[2], costs, N * B);
    for (int i = 0; i < N * B; i++)
        ck_assert(costs[i] == 0);
    prog_close(&p);
    kiln_graph_destroy(g);
    kiln_brick_destroy(gen);
}
END_TEST

/* ---- sampling ------------------------------------------------------------------------- */

/* Pearson's chi-square of counts[0..V) against n draws of softmax(r). */
static double chi_square(const int *counts, int n, const double *r)
{
    double mx = -INFINITY, sum = 0, chi = 0;
    for (int v = 0; v < V; v++)
        mx = fmax(mx, r[v]);
    for (int v = 0; v < V; v++)
        sum += exp(r[v] - mx);
    for (int v = 0; v < V; v++) {
        double want = n * exp(r[v] - mx) / sum;
        chi += (counts[v] - want) * (counts[v] - want) / want;
    }
    return chi;
}

/* The chi-square for V - 1 = 5 degrees of freedom at p = 0.001: a fair
** sampler stays below it but once in a thousand seeds (the seeds here are
** fixed, so the test is deterministic). */
#define CHI2_5_P001 20.515

/* SoftmaxEmitter.emit on N equal rows of readouts: the categories are
** distributed as the softmax says; the interpreter draws what the compiled
** program draws; another seed draws otherwise; a second step draws anew. */
START_TEST(softmax_emitter_samples_the_softmax)
{
    enum { N = 6000 };
    const double r[V] = {0.3, -1.2, 1.1, 0.0, 2.0, -0.4};
    double *rv = malloc(sizeof *rv * N * V), *a = malloc(sizeof *a * N), *b2 = malloc(sizeof *b2 * N);
    for (int i = 0; i < N * V; i++)
        rv[i] = r[i % V];
    double draws[3][N];
    for (int run = 0; run < 3; run++) { /* seed 7, seed 7 interpreted, seed 8 */
        kiln_brick *em = kiln_softmax_emitter_create(NULL, 0);
        ck_assert_int_eq(kiln_brick_set_dim(em, "readout_dim", V), KILN_OK);
        ck_assert_int_eq(kiln_brick_set_seed(em, run == 2 ? 8 : 7), KILN_OK);
        kiln_graph *g = graph64();
        kiln_node x = input(g, "readouts", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, V}), y;
        ck_assert_msg(kiln_brick_call(em, "emit", g, &x, 1, &y, 1) == KILN_OK, "%s", kiln_brick_errmsg(em));
        if (run == 1) {
            prog p;
            prog_open(&p, g, kiln_expr_sum(g, x, KILN_ALL_AXES), &y, 1, NULL, 0);
            prog_bind(&p, "readouts", rv);
            prog_run(&p, KILN_MODE_FORWARD, N, 1);
            read_node(&p, p.outs[0], draws[run], N);
            prog_close(&p);
        } else {
            kiln_compile_options o = kiln_compile_options_default();
            o.outputs = &y;
            o.n_outputs = 1;
            o.max_batch = N;
            kiln_program *cp;
            ck_assert_msg(kiln_compile(g, &o, &cp) == KILN_OK, "%s", kiln_program_errmsg(cp));
            ck_assert_int_eq(kiln_program_bind_input(cp, "readouts", rv), KILN_OK);
            ck_assert_int_eq(kiln_program_forward(cp, N), KILN_OK);
            ck_assert_int_eq(kiln_program_read(cp, y, draws[run], N), KILN_OK);
            if (run == 0) { /* the next step draws anew */
                ck_assert_int_eq(kiln_program_forward(cp, N), KILN_OK);
                ck_assert_int_eq(kiln_program_read(cp, y, a, N), KILN_OK);
            }
            kiln_program_destroy(cp);
        }
        kiln_graph_destroy(g);
        kiln_brick_destroy(em);
    }
    int same12 = 0, same01 = 0, same_next = 0;
    for (int i = 0; i < N; i++) {
        same01 += draws[0][i] == draws[1][i];
        same12 += draws[0][i] == draws[2][i];
        same_next += draws[0][i] == a[i];
    }
    ck_assert_int_eq(same01, N);
    ck_assert_int_lt(same12, N / 2); /* P(same) = sum p^2 < 0.4 here */
    ck_assert_int_lt(same_next, N / 2);
    for (int run = 0; run < 3; run += 2) {
        int counts[V] = {0};
        for (int i = 0; i < N; i++) {
            ck_assert(draws[run][i] >= 0 && draws[run][i] < V);
            counts[(int)draws[run][i]]++;
        }
        double chi = chi_square(counts, N, r);
        ck_assert_msg(chi < CHI2_5_P001, "run %d: chi-square %.2f: %d %d %d %d %d %d", run, chi, counts[0], counts[1],
                      counts[2], counts[3], counts[4], counts[5]);
    }
    free(rv);
    free(a);
    free(b2);
}
END_TEST

/* generate's sampling inside the scan: the same outputs for a seed, others
** for another; the first step's outputs, all rows alike (one attended
** repeated), distributed as the softmax of plain C's first readouts. */
START_TEST(generate_samples_reproducibly_as_the_softmax_says)
{
    enum { N = 3, B = 3000 };
    double *av = malloc(sizeof *av * S * B * A), one[S * A];
    values(one, S * A, -1, 1, 21);
    for (int t = 0; t < S; t++)
        for (int b = 0; b < B; b++)
            memcpy(av + (t * B + b) * A, one + t * A, sizeof(double) * A);
    double out[3][N * B], r0[V];
    for (int run = 0; run < 3; run++) { /* seed 3, seed 3 again, seed 4 */
        kiln_brick *gen = generator();
        initialize_ok(gen);
        fill_tree(gen, (kiln_param *[32]){0}, 32, 0.9);
        ck_assert_int_eq(kiln_brick_set_seed(at(gen, "readout/emitter"), run == 2 ? 4 : 3), KILN_OK);
        if (run == 0) {
            gen_par par;
            gen_par_of(gen, &par);
            generator_ref(&par, 1, B, NULL, NULL, av, NULL, NULL, r0);
        }
        kiln_graph *g = graph64();
        kiln_node xa = input(g, "attended", KILN_DTYPE_F64, 3, (int64_t[]){S, KILN_BATCH, A}), res[5];
        kiln_generate_options o = {.n_steps = N};
        ck_assert_msg(kiln_sequence_generator_generate(gen, g, (kiln_node[]){KILN_NODE_NONE, xa, KILN_NODE_NONE}, 3,
                                                       &o, res, 5) == KILN_OK, "%s", kiln_brick_errmsg(gen));
        kiln_compile_options co = kiln_compile_options_default();
        co.outputs = &res[3];
        co.n_outputs = 1;
        co.max_batch = B;
        kiln_program *cp;
        ck_assert_msg(kiln_compile(g, &co, &cp) == KILN_OK, "%s", kiln_program_errmsg(cp));
        ck_assert_int_eq(kiln_program_bind_input(cp, "attended", av), KILN_OK);
        ck_assert_msg(kiln_program_forward(cp, B) == KILN_OK, "%s", kiln_program_errmsg(cp));
        ck_assert_int_eq(kiln_program_read(cp, res[3], out[run], N * B), KILN_OK);
        kiln_program_destroy(cp);
        kiln_graph_destroy(g);
        kiln_brick_destroy(gen);
    }
    int same01 = 0, same02 = 0, counts[V] = {0};
    for (int i = 0; i < N * B; i++) {
        same01 += out[0][i] == out[1][i];
        same02 += out[0][i] == out[2][i];
    }
    ck_assert_int_eq(same01, N * B);
    ck_assert_int_lt(same02, N * B * 3 / 4);
    for (int b = 0; b < B; b++)
        counts[(int)out[0][b]]++;
    double chi = chi_square(counts, B, r0);
    ck_assert_msg(chi < CHI2_5_P001, "chi-square %.2f: %d %d %d %d %d %d", chi, counts[0], counts[1], counts[2],
                  counts[3], counts[4], counts[5]);
    free(av);
}
END_TEST

/* ---- bad input ----------------------------------------------------------------------- */

/* The call fails with status st and the brick's message is want. */
static void assert_refused(kiln_brick *b, const char *app, kiln_graph *g, const kiln_node *in, int n_in, int n_out,
                           enum kiln_status st, const char *want)
{
    kiln_node out[8];
    enum kiln_status got = kiln_brick_call(b, app, g, in, n_in, out, n_out);
    ck_assert_msg(got == st, "status %d, expected %d: %s", (int)got, (int)st, kiln_brick_errmsg(b));
    ck_assert_str_eq(kiln_brick_errmsg(b), want);
    for (int i = 0; i < n_out; i++)
        ck_assert(!kiln_node_ok(out[i]));
    kiln_graph_clear_error(g);
}

START_TEST(bad_input_names_the_brick_and_what_is_wrong)
{
    kiln_brick *att = attention(D), *gen = generator();
    initialize_ok(att);
    initialize_ok(gen);
    kiln_graph *g = graph64();
    kiln_node none = KILN_NODE_NONE;
    kiln_node xa = input(g, "attended", KILN_DTYPE_F64, 3, (int64_t[]){S, KILN_BATCH, A});
    kiln_node x7 = input(g, "a7", KILN_DTYPE_F64, 3, (int64_t[]){S, KILN_BATCH, 7});
    kiln_node xb = input(g, "a_batch", KILN_DTYPE_F64, 3, (int64_t[]){S, 7, A});
    kiln_node m5 = input(g, "m5", KILN_DTYPE_F64, 2, (int64_t[]){S, 5});
    kiln_node xs = input(g, "s", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, D});
    kiln_node s4 = input(g, "s4", KILN_DTYPE_F64, 2, (int64_t[]){KILN_BATCH, 4});
    kiln_node y = input(g, "y", KILN_DTYPE_I32, 2, (int64_t[]){KILN_TIME, KILN_BATCH});
    kiln_node yf = input(g, "yf", KILN_DTYPE_F64, 2, (int64_t[]){KILN_TIME, KILN_BATCH});
    kiln_node mt5 = input(g, "mt5", KILN_DTYPE_F64, 2, (int64_t[]){KILN_TIME, 5});
    /* the attention */
    assert_refused(att, "take_glimpses", g, (kiln_node[]){xa, none, m5, xs}, 4, 2, KILN_ERR_SHAPE,
                   "/attention: attended_mask is float64 (5, 5), expected (5, B): time and batch as the attended, "
                   "float64 (5, B, 4)");
    assert_refused(att, "take_glimpses", g, (kiln_node[]){x7, none, none, xs}, 4, 2, KILN_ERR_SHAPE,
                   "/attention: attended is float64 (5, B, 7), expected a last dim of 4");
    assert_refused(att, "take_glimpses", g, (kiln_node[]){xa, none, none, s4}, 4, 2, KILN_ERR_SHAPE,
                   "/attention: states has 4 features, expected 3");
    assert_refused(att, "take_glimpses", g, (kiln_node[]){xb, none, none, xs}, 4, 2, KILN_ERR_SHAPE,
                   "/attention: states is float64 (B, 3) but the attended is float64 (5, 7, 4): a state is (batch, "
                   "dim), the attended's batch");
    /* the generator */
    assert_refused(gen, "cost", g, (kiln_node[]){y, mt5, none, xa, none}, 5, 1, KILN_ERR_SHAPE,
                   "/generator: mask is float64 (T, 5), expected (T, B): time and batch as outputs, int32 (T, B)");
    assert_refused(gen, "cost", g, (kiln_node[]){yf, none, none, xa, none}, 5, 1, KILN_ERR_SHAPE,
                   "/generator: outputs is float64 (T, B), expected int32 (time, batch): /generator/readout/emitter "
                   "emits categories");
    assert_refused(gen, "cost", g, (kiln_node[]){y, none, none, xb, none}, 5, 1, KILN_ERR_SHAPE,
                   "/generator: attended is float64 (5, 7, 4), expected (time, B, attended_dim): the batch of int32 "
                   "(T, B)");
    assert_refused(gen, "cost", g, (kiln_node[]){y, none, none, xa, m5}, 5, 1, KILN_ERR_SHAPE,
                   "/generator/att_trans/attention: attended_mask is float64 (5, 5), expected (5, B): time and batch "
                   "as the attended, float64 (5, B, 4)");
    assert_refused(gen, "cost", g, (kiln_node[]){y, none, s4, xa, none}, 5, 1, KILN_ERR_SHAPE,
                   "/generator: states is float64 (B, 4), expected (B, 3): a state of the transition per row");
    kiln_node out[5];
    kiln_generate_options o = {.n_steps = 0};
    ck_assert_int_eq(kiln_sequence_generator_generate(gen, g, (kiln_node[]){none, xa, none}, 3, &o, out, 5),
                     KILN_ERR_ARG);
    ck_assert_str_eq(kiln_brick_errmsg(gen), "/generator: generate: n_steps 0 is neither > 0 nor a dim symbol");
    ck_assert_str_eq(kiln_graph_errmsg(g), "/generator: generate: n_steps 0 is neither > 0 nor a dim symbol");
    kiln_graph_clear_error(g);
    o.n_steps = 3;
    ck_assert_int_eq(kiln_sequence_generator_generate(att, g, (kiln_node[]){none, xa, none}, 3, &o, out, 5),
                     KILN_ERR_ARG);
    ck_assert_str_eq(kiln_brick_errmsg(att), "/attention: a SequenceContentAttention has no generate");
    kiln_graph_clear_error(g);
    /* construction: a readout of what the generator does not have; an
    ** attention of states the transition does not have */
    const char *bad[] = {"cells"};
    kiln_brick *ro = kiln_readout_create(NULL, V, bad, 1, NULL, NULL, NULL, NULL, NULL, 0);
    ck_assert_ptr_nonnull(ro);
    ck_assert_ptr_null(kiln_sequence_generator_create(NULL, ro, kiln_simple_recurrent_create(NULL, D,
                                                                                            kiln_tanh_create(NULL)),
                                                      attention(0), true, NULL));
    const char *cells[] = {"cells"};
    kiln_brick *att_cells = kiln_sequence_content_attention_create(NULL, cells, 1, NULL, A, M, NULL, NULL, NULL);
    ck_assert_ptr_null(kiln_attention_recurrent_create(NULL, kiln_gated_recurrent_create(NULL, D, NULL, NULL),
                                                       att_cells, NULL, true, NULL, NULL));
    kiln_graph_destroy(g);
    kiln_brick_destroy(att);
    kiln_brick_destroy(gen);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("attention");
    TCase *tc = tcase_create("attention");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, attention_glimpses_match_blocks_formulas);
    tcase_add_test(tc, attention_recurrent_matches_plain_c);
    tcase_add_test(tc, attention_recurrent_returns_initial_glimpses);
    tcase_add_test(tc, generator_cost_matches_plain_c_and_its_gradient);
    tcase_add_test(tc, greedy_generate_matches_plain_c);
    tcase_add_test(tc, generator_without_attention_gradient);
    tcase_add_test(tc, trivial_emitter_generates_its_readouts);
    tcase_add_test(tc, softmax_emitter_samples_the_softmax);
    tcase_add_test(tc, generate_samples_reproducibly_as_the_softmax_says);
    tcase_add_test(tc, bad_input_names_the_brick_and_what_is_wrong);
    suite_add_tcase(s, tc);
    return kiln_test_run(s);
}
