/* test_network.c: network files (kiln_network_save / kiln_network_load,
** compiler/netjson.c, runtime/network.c).
**
** Round trips first: an MLP trained a few steps, an LSTM with dropout and
** a scan whose step draws random numbers, over symbolic T, B and a user
** symbol: the loaded graph prints as the saved one, and its compiled
** program computes the same outputs bit for bit (from the same generated
** C). Then names as data (crafted names and owners compile to a program
** that computes the same values), the file's layout (h5dump reads it, the
** same network gives the same bytes), and bad files: missing, not HDF5,
** truncated, bytes flipped, another version, and descriptions edited to
** break each of the IR's rules, each a clear error and never a crash
** (this suite runs under ASan and UBSan in scripts/test). */
#include <check.h>
#include <hdf5.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler/graph.h"
#include "compiler/netjson.h"
#include "compiler/store.h"
#include "testutil.h"

#define B 4

/* ---- helpers ------------------------------------------------------------------ */

static char *text_of(const kiln_graph *g)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(kiln_graph_write_text(g, f), KILN_OK);
    fclose(f);
    return buf;
}

/* The text of what kiln_network_save writes of g: the roots' pruned copy. */
static char *saved_text(kiln_graph *g, const kiln_node *roots, int n)
{
    kiln_graph *copy;
    kiln_node out[8];
    ck_assert_int_eq(kiln_graph_replace(g, roots, n, NULL, NULL, 0, &copy, out), KILN_OK);
    char *t = text_of(copy);
    kiln_graph_destroy(copy);
    return t;
}

typedef struct run_spec {
    const char *name;
    int64_t max_batch;
    int64_t max_t, max_l;      /* 0: the symbol is not used */
    int64_t t, l;              /* sizes to run at */
} run_spec;

static kiln_program *compile_outputs(kiln_graph *g, const kiln_node *outs, int n, const run_spec *rs)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.name = rs->name;
    o.outputs = outs;
    o.n_outputs = n;
    o.max_batch = rs->max_batch;
    if (rs->max_t)
        o.max_size[KILN_SYMBOL_INDEX(KILN_TIME)] = rs->max_t;
    if (rs->max_l)
        o.max_size[KILN_SYMBOL_INDEX(-3)] = rs->max_l;
    kiln_program *p;
    enum kiln_status st = kiln_compile(g, &o, &p);
    ck_assert_msg(st == KILN_OK, "compile: %s", kiln_program_errmsg(p));
    if (rs->max_t)
        ck_assert_int_eq(kiln_program_set_size(p, KILN_TIME, rs->t), KILN_OK);
    if (rs->max_l)
        ck_assert_int_eq(kiln_program_set_size(p, -3, rs->l), KILN_OK);
    return p;
}

/* Bind inputs by name, run forward, read outs (counts[k] values each) into dst. */
static void forward_read(kiln_program *p, const char *const *in_names, void *const *in_data, int n_in,
                         const kiln_node *outs, const int64_t *counts, int n_out, int64_t batch, double *dst)
{
    for (int k = 0; k < n_in; k++)
        ck_assert_msg(kiln_program_bind_input(p, in_names[k], in_data[k]) == KILN_OK, "%s", kiln_program_errmsg(p));
    ck_assert_msg(kiln_program_forward(p, batch) == KILN_OK, "forward: %s", kiln_program_errmsg(p));
    for (int k = 0; k < n_out; k++) {
        ck_assert_msg(kiln_program_read(p, outs[k], dst, counts[k]) == KILN_OK, "%s", kiln_program_errmsg(p));
        dst += counts[k];
    }
}

static kiln_network *load_ok(const char *path)
{
    kiln_network *net;
    enum kiln_status st = kiln_network_load(path, &net);
    ck_assert_msg(st == KILN_OK, "load: %s", kiln_network_errmsg(net));
    return net;
}

static kiln_node root_ok(const kiln_network *net, const char *name)
{
    kiln_node n = kiln_network_root(net, name);
    ck_assert_msg(kiln_node_ok(n), "no root %s", name);
    return n;
}

static void path_in(char *dst, size_t cap, const char *dir, const char *name)
{
    ck_assert_int_lt(snprintf(dst, cap, "%s/%s", dir, name), (int)cap);
}

/* ---- an MLP ------------------------------------------------------------------- */

#define MLP_IN 12
#define MLP_OUT 5

typedef struct mlp_net {
    kiln_graph *g;
    kiln_brick *mlp, *cce;
    kiln_node x, y, probs, cost;
} mlp_net;

static void mlp_make(mlp_net *m)
{
    m->g = kiln_graph_create(KILN_DTYPE_F32);
    m->x = kiln_graph_input(m->g, "features", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, MLP_IN});
    m->y = kiln_graph_input(m->g, "targets", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    kiln_brick *acts[2] = {kiln_rectifier_create(NULL), kiln_softmax_create(NULL)};
    m->mlp = kiln_mlp_create(NULL, acts, 2, (int64_t[]){MLP_IN, 16, MLP_OUT});
    m->cce = kiln_categorical_cross_entropy_create(NULL);
    kiln_brick_set_weights_init(m->mlp, kiln_init_isotropic_gaussian(0.3, 3));
    kiln_brick_set_biases_init(m->mlp, kiln_init_constant(0.01));
    ck_assert_int_eq(kiln_brick_apply(m->mlp, m->g, m->x, &m->probs), KILN_OK);
    ck_assert_int_eq(kiln_cost_apply(m->cce, m->g, m->y, m->probs, &m->cost), KILN_OK);
    ck_assert_int_eq(kiln_brick_initialize(m->mlp), KILN_OK);
}

static void mlp_free(mlp_net *m)
{
    kiln_graph_destroy(m->g);
    kiln_brick_destroy(m->mlp);
    kiln_brick_destroy(m->cce);
}

static float mlp_x[B * MLP_IN];
static int32_t mlp_y[B];

static void mlp_data(void)
{
    for (int i = 0; i < B * MLP_IN; i++)
        mlp_x[i] = (float)sin(0.37 * i + 1);
    for (int i = 0; i < B; i++)
        mlp_y[i] = (i * 3) % MLP_OUT;
}

/* Train m a few steps, so the values saved are not the initial ones. */
static void mlp_train(mlp_net *m)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "net_mlp_train";
    o.cost = m->cost;
    o.step_rule = kiln_step_scale(0.5);
    o.max_batch = B;
    kiln_program *p;
    ck_assert_msg(kiln_compile(m->g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    ck_assert_int_eq(kiln_program_bind_input(p, "features", mlp_x), KILN_OK);
    ck_assert_int_eq(kiln_program_bind_input(p, "targets", mlp_y), KILN_OK);
    for (int s = 0; s < 3; s++)
        ck_assert_int_eq(kiln_program_train_step(p, B), KILN_OK);
    ck_assert_int_eq(kiln_program_store_params(p), KILN_OK);
    kiln_program_destroy(p);
}

static const char *const MLP_INPUTS[] = {"features", "targets"};

START_TEST(mlp_round_trip_same_outputs_bit_for_bit)
{
    char dir[256], path[320];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_net");
    path_in(path, sizeof path, dir, "mlp.h5");
    mlp_data();
    mlp_net m;
    mlp_make(&m);
    mlp_train(&m);
    /* 1. The outputs of the graph that built it. */
    kiln_node roots[2] = {m.probs, m.cost};
    const int64_t counts[2] = {B * MLP_OUT, 1};
    run_spec rs = {.name = "net_mlp", .max_batch = B};
    double want[B * MLP_OUT + 1], got[B * MLP_OUT + 1];
    kiln_program *p = compile_outputs(m.g, roots, 2, &rs);
    forward_read(p, MLP_INPUTS, (void *const[]){mlp_x, mlp_y}, 2, roots, counts, 2, B, want);
    char *src = strdup(kiln_program_source(p));
    kiln_program_destroy(p);
    ck_assert_int_eq(kiln_network_save(m.g, roots, (const char *const[]){"probs", "cost"}, 2, path), KILN_OK);
    char *text = saved_text(m.g, roots, 2);
    mlp_free(&m); /* no brick, no graph: the file alone */
    /* 2. The file's graph: the same nodes, the same program, the same bits. */
    kiln_network *net = load_ok(path);
    kiln_graph *g = kiln_network_graph(net);
    char *loaded = text_of(g);
    ck_assert_str_eq(loaded, text);
    ck_assert_int_eq(kiln_network_root_count(net), 2);
    ck_assert_str_eq(kiln_network_root_name(net, 1), "cost");
    kiln_node lr[2] = {root_ok(net, "probs"), root_ok(net, "cost")};
    ck_assert(kiln_graph_has_role(g, lr[1], KILN_ROLE_OUTPUT));
    ck_assert_str_eq(kiln_graph_node_owner(g, lr[1]), "/categoricalcrossentropy");
    ck_assert(kiln_node_ok(kiln_graph_input_by_name(g, "features")));
    p = compile_outputs(g, lr, 2, &rs);
    forward_read(p, MLP_INPUTS, (void *const[]){mlp_x, mlp_y}, 2, lr, counts, 2, B, got);
    ck_assert_str_eq(kiln_program_source(p), src);
    ck_assert_mem_eq(got, want, sizeof want);
    /* 3. Owner paths and roles came back: /mlp/linear_0's W is a weight. */
    kiln_node w[4];
    int nw = kiln_graph_filter(g, lr, 2, &(kiln_filter){.roles = KILN_ROLE_WEIGHT}, w, 4);
    ck_assert_int_eq(nw, 2);
    ck_assert_str_eq(kiln_graph_node_owner(g, w[0]), "/mlp/linear_0");
    ck_assert_str_eq(kiln_graph_node_name(g, w[0]), "W");
    ck_assert_int_eq(kiln_param_dim(kiln_graph_node_param(g, w[0]), 0), MLP_IN);
    kiln_program_destroy(p);
    kiln_network_destroy(net);
    free(loaded);
    free(text);
    free(src);
    kiln_test_rmtree(dir);
}
END_TEST

/* ---- an LSTM with dropout, a scan that draws, symbols T, B and L ------------- */

#define D 3
#define T_MAX 5

/* h_t = h_{t-1} + x_t * bernoulli(0.5): a step that draws (its state a context). */
static enum kiln_status noisy_step(kiln_graph *body, const kiln_node *args, kiln_node *res, void *user)
{
    kiln_node s = kiln_graph_random_state(body, 99);
    kiln_node mask = kiln_expr_random_bernoulli(body, s, 2, (int64_t[]){KILN_BATCH, D}, 0.5);
    res[0] = kiln_expr_add(body, args[1], kiln_expr_mul(body, args[0], mask));
    res[1] = kiln_expr_tanh(body, res[0]);
    (void)user;
    return kiln_graph_status(body);
}

typedef struct rnn_net {
    kiln_graph *g;    /* after dropout */
    kiln_brick *lstm;
    kiln_node roots[3];
} rnn_net;

static void rnn_make(rnn_net *n)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    int64_t L = kiln_graph_symbol(g, "L");
    ck_assert_int_eq(L, -3);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 3, (int64_t[]){KILN_TIME, KILN_BATCH, 4 * D});
    kiln_node extra = kiln_graph_input(g, "extra", KILN_DTYPE_F32, 2, (int64_t[]){L, D});
    n->lstm = kiln_lstm_create(NULL, D, NULL);
    kiln_brick_set_weights_init(n->lstm, kiln_init_isotropic_gaussian(0.4, 5));
    kiln_node outs[2];
    ck_assert_msg(kiln_recurrent_call(n->lstm, "apply", g, (kiln_node[]){x, KILN_NODE_NONE, KILN_NODE_NONE,
                                      KILN_NODE_NONE}, 4, NULL, outs, 2) == KILN_OK, "%s", kiln_brick_errmsg(n->lstm));
    ck_assert_int_eq(kiln_brick_initialize(n->lstm), KILN_OK);
    /* (T*B, D) rows, plus the mean of the L rows of extra */
    kiln_node rows = kiln_expr_reshape(g, outs[0], 2, (int64_t[]){KILN_INFER, D});
    kiln_node y = kiln_expr_add(g, rows, kiln_expr_mean(g, extra, 0));
    /* a scan that draws, over the states */
    kiln_node h0 = kiln_expr_broadcast(g, kiln_expr_constant(g, 0), 2, (int64_t[]){KILN_BATCH, D});
    kiln_node sc = kiln_expr_scan(g, &(kiln_scan_spec){.n_sequences = 1, .n_states = 1, .n_outputs = 1}, &outs[1],
                                  &h0, NULL, noisy_step, NULL);
    kiln_node noisy = kiln_expr_output(g, sc, 2);
    ck_assert_msg(kiln_graph_status(g) == KILN_OK, "%s", kiln_graph_errmsg(g));
    kiln_node kept[2] = {y, noisy}, dropped[2];
    ck_assert_int_eq(kiln_apply_dropout(g, kept, 2, &outs[0], 1, 0.5, 11, &n->g, dropped), KILN_OK);
    n->roots[0] = dropped[0];
    n->roots[1] = dropped[1];
    n->roots[2] = kiln_expr_sum(n->g, dropped[0], KILN_ALL_AXES);
    ck_assert_msg(kiln_graph_status(n->g) == KILN_OK, "%s", kiln_graph_errmsg(n->g));
    kiln_graph_destroy(g);
}

START_TEST(lstm_dropout_and_symbols_round_trip)
{
    char dir[256], path[320];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_net");
    path_in(path, sizeof path, dir, "rnn.h5");
    enum { T = 4, Lv = 3 };
    static float x[T_MAX * B * 4 * D], extra[4 * D];
    for (size_t i = 0; i < KILN_ARRAY_LEN(x); i++)
        x[i] = (float)cos(0.21 * (double)i);
    for (size_t i = 0; i < KILN_ARRAY_LEN(extra); i++)
        extra[i] = (float)i / 7;
    rnn_net n;
    rnn_make(&n);
    const char *names[3] = {"rows", "noisy", "total"};
    const int64_t counts[3] = {T * B * D, T * B * D, 1};
    run_spec rs = {.name = "net_rnn", .max_batch = B, .max_t = T_MAX, .max_l = 4, .t = T, .l = Lv};
    double want[2 * 2 * T * B * D + 2], got[2 * 2 * T * B * D + 2];
    kiln_program *p = compile_outputs(n.g, n.roots, 3, &rs);
    forward_read(p, (const char *const[]){"x", "extra"}, (void *const[]){x, extra}, 2, n.roots, counts, 3, B, want);
    /* a second step draws again: the random state's counter is part of the file */
    forward_read(p, (const char *const[]){"x", "extra"}, (void *const[]){x, extra}, 2, n.roots, counts, 3, B,
                 want + 2 * T * B * D + 1);
    char *src = strdup(kiln_program_source(p));
    kiln_program_destroy(p);
    ck_assert_int_eq(kiln_network_save(n.g, n.roots, names, 3, path), KILN_OK);
    char *text = saved_text(n.g, n.roots, 3);
    kiln_graph_destroy(n.g);
    kiln_brick_destroy(n.lstm);

    kiln_network *net = load_ok(path);
    kiln_graph *g = kiln_network_graph(net);
    char *loaded = text_of(g);
    ck_assert_str_eq(loaded, text);
    ck_assert_ptr_nonnull(strstr(loaded, "scan"));
    ck_assert_ptr_nonnull(strstr(loaded, "dist=bernoulli"));
    ck_assert_ptr_nonnull(strstr(loaded, "(T*B, 3)"));
    ck_assert_ptr_nonnull(strstr(loaded, "(L, 3)"));
    kiln_node lr[3] = {root_ok(net, "rows"), root_ok(net, "noisy"), root_ok(net, "total")};
    p = compile_outputs(g, lr, 3, &rs);
    ck_assert_str_eq(kiln_program_source(p), src);
    forward_read(p, (const char *const[]){"x", "extra"}, (void *const[]){x, extra}, 2, lr, counts, 3, B, got);
    forward_read(p, (const char *const[]){"x", "extra"}, (void *const[]){x, extra}, 2, lr, counts, 3, B,
                 got + 2 * T * B * D + 1);
    ck_assert_mem_eq(got, want, sizeof want);
    ck_assert(memcmp(want, want + 2 * T * B * D + 1, sizeof(double) * T * B * D) != 0); /* dropout drew twice */
    kiln_program_destroy(p);
    kiln_network_destroy(net);
    free(loaded);
    free(text);
    free(src);
    kiln_test_rmtree(dir);
}
END_TEST

/* ---- names are data ------------------------------------------------------------ */

/* A graph of user parameters: out = tanh(x W + b), sum of it. */
typedef struct tiny {
    kiln_graph *g;
    kiln_param *w, *b;
    kiln_node out, total;
} tiny;

static void tiny_make(tiny *t, const char *wname, const char *bname, const char *owner)
{
    t->g = kiln_graph_create(KILN_DTYPE_F32);
    t->w = kiln_param_create(wname, 2, (int64_t[]){3, 2});
    t->b = kiln_param_create(bname, 1, (int64_t[]){2});
    ck_assert(kiln_store_set_owner(t->w, owner) && kiln_store_set_owner(t->b, owner));
    ck_assert_int_eq(kiln_param_set_values(t->w, (double[]){0.1, -0.2, 0.3, 0.4, -0.5, 0.6}, 6), KILN_OK);
    ck_assert_int_eq(kiln_param_set_values(t->b, (double[]){0.05, -0.05}, 2), KILN_OK);
    kiln_node x = kiln_graph_input(t->g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 3});
    t->out = kiln_expr_tanh(t->g, kiln_expr_add(t->g, kiln_expr_matmul(t->g, x, kiln_graph_param(t->g, t->w)),
                                                 kiln_graph_param(t->g, t->b)));
    t->total = kiln_expr_sum(t->g, t->out, KILN_ALL_AXES);
    ck_assert_msg(kiln_graph_status(t->g) == KILN_OK, "%s", kiln_graph_errmsg(t->g));
}

static void tiny_free(tiny *t)
{
    kiln_graph_destroy(t->g);
    kiln_param_destroy(t->w);
    kiln_param_destroy(t->b);
}

static int count_of(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

/* src without its comments (generated C: no comment markers in strings). */
static char *without_comments(const char *src)
{
    char *out = strdup(src), *o = out;
    ck_assert_ptr_nonnull(out);
    for (const char *p = src; *p;) {
        if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            ck_assert_ptr_nonnull(end);
            p = end + 2;
        } else if (p[0] == '/' && p[1] == '/') {
            p += strcspn(p, "\n");
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return out;
}

/* Values of tiny's outputs through a save and load at path. */
static char *tiny_run(tiny *t, const char *path, double *dst)
{
    static float x[B * 3] = {1, 2, 3, -1, 0.5f, 2, 0, 0, 1, 3, -2, 1};
    kiln_node roots[2] = {t->out, t->total};
    ck_assert_msg(kiln_network_save(t->g, roots, (const char *const[]){"out", "total"}, 2, path) == KILN_OK, "%s",
                  kiln_graph_errmsg(t->g));
    kiln_network *net = load_ok(path);
    kiln_graph *g = kiln_network_graph(net);
    kiln_node lr[2] = {root_ok(net, "out"), root_ok(net, "total")};
    run_spec rs = {.name = "net_names", .max_batch = B};
    kiln_program *p = compile_outputs(g, lr, 2, &rs);
    forward_read(p, (const char *const[]){"x"}, (void *const[]){x}, 1, lr, (const int64_t[]){B * 2, 1}, 2, B, dst);
    char *src = strdup(kiln_program_source(p));
    kiln_program_destroy(p);
    kiln_network_destroy(net);
    return src;
}

START_TEST(crafted_names_are_data)
{
    char dir[256], path[320];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_net");
    path_in(path, sizeof path, dir, "names.h5");
    char longname[KILN_MAX_NAME + 1];
    memset(longname, 'w', KILN_MAX_NAME);
    longname[KILN_MAX_NAME] = 0;
    /* the same network under sane names and under hostile ones */
    tiny sane, evil;
    tiny_make(&sane, "W", "b", "/layer");
    tiny_make(&evil, "W\"*/ exit(1); /*\n#include </etc/passwd>", longname, "/int/for/../..//%41/.");
    ck_assert_int_eq(kiln_graph_set_name(sane.g, sane.out, "out"), KILN_OK);
    ck_assert_int_eq(kiln_graph_set_name(evil.g, evil.out, "*/ } int main(void) { return 1; } /* \"\\"), KILN_OK);
    double want[B * 2 + 1], got[B * 2 + 1];
    char *a = tiny_run(&sane, path, want);
    char *b = tiny_run(&evil, path, got);
    ck_assert_mem_eq(got, want, sizeof want);
    /* the names reach the C only inside comments, escaped: as many comment
    ** ends and lines as with sane names */
    ck_assert_int_eq(count_of(b, "*/"), count_of(a, "*/"));
    ck_assert_int_eq(count_of(b, "\n"), count_of(a, "\n"));
    char *code = without_comments(b);
    ck_assert_ptr_null(strstr(code, "exit("));
    ck_assert_ptr_null(strstr(code, "/etc/passwd"));
    ck_assert_ptr_null(strstr(code, "main("));
    ck_assert_int_eq(count_of(code, "#include"), count_of(a, "#include"));
    ck_assert_int_eq(count_of(code, "\""), count_of(a, "\"")); /* no string the names opened */
    free(code);
    /* the entries' datasets: escaped segments, no "..", names intact */
    kiln_network *net = load_ok(path);
    kiln_graph *lg = kiln_network_graph(net);
    kiln_node params[2];
    ck_assert_int_eq(kiln_graph_filter(lg, NULL, 0, &(kiln_filter){.roles = KILN_ROLE_PARAMETER},
                                       params, 2), 2);
    int wi = strcmp(kiln_param_name(kiln_graph_node_param(lg, params[0])), longname) == 0; /* b may come first */
    ck_assert_str_eq(kiln_param_name(kiln_graph_node_param(lg, params[wi])), "W\"*/ exit(1); /*\n#include </etc/passwd>");
    ck_assert_str_eq(kiln_param_name(kiln_graph_node_param(lg, params[!wi])), longname);
    ck_assert_str_eq(kiln_graph_node_owner(lg, params[wi]), "/int/for/../..//%41/.");
    kiln_network_destroy(net);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    ck_assert_int_gt(H5Lexists(f, "/parameters/int/for/%2E%2E/%2E%2E/%2541/%2E", H5P_DEFAULT), 0);
    H5Fclose(f);
    free(a);
    free(b);
    tiny_free(&sane);
    tiny_free(&evil);
    kiln_test_rmtree(dir);
}
END_TEST

/* Two entries with one owner and name, and an entry whose path is another's
** group: each gets a dataset of its own. */
START_TEST(dataset_paths_never_collide)
{
    char dir[256], path[320];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_net");
    path_in(path, sizeof path, dir, "paths.h5");
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_param *p[3] = {kiln_param_create("W", 1, (int64_t[]){2}), kiln_param_create("W", 1, (int64_t[]){2}),
                        kiln_param_create("b", 1, (int64_t[]){2})};
    ck_assert(kiln_store_set_owner(p[0], "/a") && kiln_store_set_owner(p[1], "/a") &&
              kiln_store_set_owner(p[2], "/a/W"));
    kiln_node sum = kiln_expr_constant(g, 0);
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(kiln_param_set_values(p[k], (double[]){k + 1.0, -k - 1.0}, 2), KILN_OK);
        sum = kiln_expr_add(g, sum, kiln_graph_param(g, p[k]));
    }
    ck_assert_int_eq(kiln_network_save(g, &sum, (const char *const[]){"sum"}, 1, path), KILN_OK);
    kiln_network *net = load_ok(path);
    kiln_node ps[3];
    ck_assert_int_eq(kiln_graph_filter(kiln_network_graph(net), NULL, 0, &(kiln_filter){.roles = KILN_ROLE_PARAMETER},
                                       ps, 3), 3);
    for (int k = 0; k < 3; k++) {
        double v[2];
        ck_assert_int_eq(kiln_param_get_values(kiln_graph_node_param(kiln_network_graph(net), ps[k]), v, 2), KILN_OK);
        ck_assert(v[0] == k + 1.0 && v[1] == -k - 1.0);
    }
    kiln_network_destroy(net);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_gt(H5Lexists(f, "/parameters/a/W~1", H5P_DEFAULT), 0);
    ck_assert_int_gt(H5Lexists(f, "/parameters/a/W~2", H5P_DEFAULT), 0);
    ck_assert_int_gt(H5Lexists(f, "/parameters/a/W/b", H5P_DEFAULT), 0);
    H5Fclose(f);
    kiln_graph_destroy(g);
    for (int k = 0; k < 3; k++)
        kiln_param_destroy(p[k]);
    kiln_test_rmtree(dir);
}
END_TEST

/* ---- the file ----------------------------------------------------------------- */

static void save_mlp(const char *path)
{
    mlp_net m;
    mlp_make(&m);
    kiln_node roots[2] = {m.probs, m.cost};
    ck_assert_msg(kiln_network_save(m.g, roots, (const char *const[]){"probs", "cost"}, 2, path) == KILN_OK, "%s",
                  kiln_graph_errmsg(m.g));
    mlp_free(&m);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spill(const char *path, const char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* Give the file at path a kiln header that matches its bytes again, as
** kiln_network_save writes it (runtime/network.c, docs/network-files.md):
** a file edited with HDF5, or HDF5 bytes of any kind, that reaches HDF5's
** parser and kiln's checks behind the header. With a NULL body: the
** file's own bytes after its header. */
static void reseal(const char *path, const char *body, size_t body_len)
{
    size_t n;
    char *old = slurp(path, &n);
    if (!body) {
        ck_assert_uint_gt(n, 512);
        body = old + 512;
        body_len = n - 512;
    }
    unsigned char md[32];
    unsigned md_len = 0;
    ck_assert_int_eq(EVP_Digest(body, body_len, md, &md_len, EVP_sha256(), NULL), 1);
    char *file = calloc(1, 512 + body_len);
    ck_assert_ptr_nonnull(file);
    int k = snprintf(file, 512, "kiln-network-file\nsize %zu\nsha256 ", 512 + body_len);
    for (int i = 0; i < 32; i++)
        k += snprintf(file + k, 512 - (size_t)k, "%02x", md[i]);
    file[k] = '\n';
    memcpy(file + 512, body, body_len);
    spill(path, file, 512 + body_len);
    free(file);
    free(old);
}

START_TEST(same_network_same_bytes)
{
    char dir[256], a[320], b[320];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_net");
    path_in(a, sizeof a, dir, "a.h5");
    path_in(b, sizeof b, dir, "b.h5");
    save_mlp(a);
    save_mlp(b);
    size_t na, nb;
    char *ba = slurp(a, &na), *bb = slurp(b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(ba, bb, na);
    free(ba);
    free(bb);
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(h5dump_reads_a_network_file)
{
    if (system("command -v h5dump >/dev/null 2>&1") != 0)
        return; /* hdf5-tools not installed (scripts/setup installs it) */
    char dir[256], path[320], cmd[1024], out[320];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_net");
    path_in(path, sizeof path, dir, "mlp.h5");
    path_in(out, sizeof out, dir, "dump.txt");
    save_mlp(path);
    snprintf(cmd, sizeof cmd, "h5dump -A '%s' > '%s' 2>&1", path, out);
    ck_assert_int_eq(system(cmd), 0);
    size_t n;
    char *dump = slurp(out, &n);
    dump[n] = 0;
    ck_assert_ptr_nonnull(strstr(dump, "\"kiln-network\""));
    ck_assert_ptr_nonnull(strstr(dump, "kiln_format_version"));
    ck_assert_ptr_nonnull(strstr(dump, "DATASET \"W\""));
    free(dump);
    snprintf(cmd, sizeof cmd, "h5dump -d /parameters/mlp/linear_1/b '%s' > '%s' 2>&1", path, out);
    ck_assert_int_eq(system(cmd), 0);
    dump = slurp(out, &n);
    dump[n] = 0;
    ck_assert_ptr_nonnull(strstr(dump, "H5T_IEEE_F32LE"));
    ck_assert_ptr_nonnull(strstr(dump, "( 5 )"));
    free(dump);
    kiln_test_rmtree(dir);
}
END_TEST

/* ---- bad files ---------------------------------------------------------------- */

static void load_fails(const char *path, enum kiln_status want, const char *needle)
{
    kiln_network *net;
    enum kiln_status st = kiln_network_load(path, &net);
    ck_assert_msg(st == want, "status %s (%s), expected %s", kiln_status_string(st), kiln_network_errmsg(net),
                  kiln_status_string(want));
    ck_assert_msg(strstr(kiln_network_errmsg(net), needle), "message \"%s\" lacks \"%s\"", kiln_network_errmsg(net),
                  needle);
    ck_assert_ptr_null(kiln_network_graph(net));
    ck_assert_int_eq(kiln_network_root_count(net), 0);
    kiln_network_destroy(net);
}

START_TEST(missing_and_foreign_files_are_clear_errors)
{
    char dir[256], path[320];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_net");
    path_in(path, sizeof path, dir, "none.h5");
    load_fails(path, KILN_ERR_IO, "none.h5: cannot open: No such file");
    load_fails(dir, KILN_ERR_IO, "not a regular file");
    spill(path, "{\"format\": \"kiln-network\"}\n", 27);
    load_fails(path, KILN_ERR_FORMAT, "none.h5: 27 bytes, shorter than a network file's 512-byte header");
    /* kiln's header on bytes that are not HDF5 */
    reseal(path, "{\"format\": \"kiln-network\"}\n", 27);
    load_fails(path, KILN_ERR_FORMAT, "none.h5: not an HDF5 file, or a damaged one (HDF5: file signature not found)");
    /* an HDF5 file kiln did not write, then one that is not a network */
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    load_fails(path, KILN_ERR_FORMAT, "none.h5: byte 0: no \"kiln-network-file\" header: not a kiln network file (an "
                                      "HDF5 file kiln did not write)");
    size_t n;
    char *h5 = slurp(path, &n);
    reseal(path, h5, n); /* an HDF5 file behind kiln's header (its base address 0: HDF5 finds it at 512) */
    free(h5);
    load_fails(path, KILN_ERR_FORMAT, "none.h5: /: no attribute kiln_format: not a kiln network file");
    kiln_network *net;
    ck_assert_int_eq(kiln_network_load(NULL, &net), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_network_errmsg(net), "kiln_network_load: path is NULL");
    kiln_network_destroy(net);
    ck_assert_int_eq(kiln_network_load(path, NULL), KILN_ERR_ARG);
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(another_format_version_is_refused)
{
    char dir[256], path[320];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_net");
    path_in(path, sizeof path, dir, "v2.h5");
    save_mlp(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "kiln_format_version", H5P_DEFAULT);
    int v = 2;
    ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_INT, &v), 0);
    H5Aclose(a);
    H5Fclose(f);
    load_fails(path, KILN_ERR_FORMAT, "v2.h5: bytes 512 to "); /* changed after kiln wrote it */
    reseal(path, NULL, 0);
    load_fails(path, KILN_ERR_FORMAT, "v2.h5: /: format version 2; kiln 0.1.0 reads version 1");
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(truncated_files_are_errors)
{
    char dir[256], path[320], cut[320];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_net");
    path_in(path, sizeof path, dir, "mlp.h5");
    path_in(cut, sizeof cut, dir, "cut.h5");
    save_mlp(path);
    size_t n;
    char *buf = slurp(path, &n);
    for (size_t len = 0; len < n; len += n / 37 + 1) {
        spill(cut, buf, len);
        kiln_network *net;
        enum kiln_status st = kiln_network_load(cut, &net);
        ck_assert_msg(st == KILN_ERR_FORMAT, "%zu of %zu bytes: %s", len, n, kiln_network_errmsg(net));
        ck_assert_ptr_nonnull(strstr(kiln_network_errmsg(net), "cut.h5: "));
        ck_assert_msg(strstr(kiln_network_errmsg(net), len < 512 ? "shorter than a network file's" : ": truncated"),
                      "%zu bytes: %s", len, kiln_network_errmsg(net));
        kiln_network_destroy(net);
    }
    free(buf);
    kiln_test_rmtree(dir);
}
END_TEST

/* Every byte flipped in turn (a stride of them, and every byte of the
** header): a clear error, found by kiln's header before HDF5 reads a byte
** (HDF5 1.10's parser has memory errors on some damaged files). */
START_TEST(flipped_bytes_load_or_fail_cleanly)
{
    char dir[256], path[320], bad[320];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_net");
    path_in(path, sizeof path, dir, "mlp.h5");
    path_in(bad, sizeof bad, dir, "bad.h5");
    save_mlp(path);
    size_t n;
    char *buf = slurp(path, &n);
    int failed = 0, loaded = 0;
    for (size_t i = 0; i < n; i += i < 512 ? 1 : 7) {
        buf[i] ^= (char)0x5a;
        spill(bad, buf, n);
        buf[i] ^= (char)0x5a;
        kiln_network *net;
        enum kiln_status st = kiln_network_load(bad, &net);
        if (st == KILN_OK) {
            loaded++;
            free(text_of(kiln_network_graph(net)));
        } else {
            failed++;
            ck_assert_msg(st == KILN_ERR_FORMAT || st == KILN_ERR_IO, "byte %zu: %s: %s", i, kiln_status_string(st),
                          kiln_network_errmsg(net));
            ck_assert_ptr_nonnull(strstr(kiln_network_errmsg(net), "bad.h5: "));
            ck_assert_msg(i < 512 || strstr(kiln_network_errmsg(net), "SHA-256 is not the header's"), "byte %zu: %s",
                          i, kiln_network_errmsg(net));
        }
        kiln_network_destroy(net);
    }
    ck_assert_int_gt(failed, 0);
    ck_assert_int_eq(loaded, 0);
    free(buf);
    kiln_test_rmtree(dir);
}
END_TEST

/* The description of the MLP, as kiln_network_save writes it. */
static json_t *mlp_doc(void)
{
    mlp_net m;
    mlp_make(&m);
    kiln_node roots[2] = {m.probs, m.cost};
    kiln_netjson_out out;
    kiln_err err;
    ck_assert_int_eq(kiln_netjson_write(m.g, roots, (const char *const[]){"probs", "cost"}, 2, &out, &err), KILN_OK);
    json_error_t je;
    json_t *doc = json_loadb(out.text, out.len, 0, &je);
    ck_assert_ptr_nonnull(doc);
    kiln_netjson_out_free(&out);
    mlp_free(&m);
    return doc;
}

/* Read doc (a description) without a file: the status and message. */
static enum kiln_status read_doc(json_t *doc, kiln_err *err)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    kiln_netjson_reader r = {.where = "t.h5: /network.json", .max_value_bytes = 1 << 20};
    kiln_netjson_result res;
    enum kiln_status st = kiln_netjson_read(text, strlen(text), &r, &res, err);
    kiln_netjson_result_free(&res);
    free(text);
    return st;
}

static json_t *node_at(json_t *doc, const char *op, int nth)
{
    json_t *nodes = json_object_get(json_object_get(doc, "graph"), "nodes");
    for (size_t i = 0; i < json_array_size(nodes); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(nodes, i), "op")), op) == 0 && nth-- == 0)
            return json_array_get(nodes, i);
    ck_abort_msg("no %s node", op);
    return NULL;
}

static int index_of(json_t *doc, json_t *node)
{
    json_t *nodes = json_object_get(json_object_get(doc, "graph"), "nodes");
    for (size_t i = 0; i < json_array_size(nodes); i++)
        if (json_array_get(nodes, i) == node)
            return (int)i;
    return -1;
}

typedef void (*edit_fn)(json_t *doc);

static void e_input_later(json_t *d)
{
    json_t *n = node_at(d, "matmul", 0);
    json_array_set_new(json_object_get(n, "in"), 0, json_integer(index_of(d, n)));
}
static void e_unknown_op(json_t *d) { json_object_set_new(node_at(d, "relu", 0), "op", json_string("frobnicate")); }
static void e_zero_dim(json_t *d)
{
    json_array_set_new(json_object_get(node_at(d, "input", 0), "shape"), 1, json_integer(0));
}
static void e_unknown_symbol(json_t *d)
{
    json_array_set_new(json_object_get(node_at(d, "input", 0), "shape"), 0, json_string("Q"));
}
static void e_axis_out_of_range(json_t *d)
{
    json_t *sum = node_at(d, "sum", 0);
    json_object_set_new(json_object_get(sum, "attr"), "axes", json_pack("[i]", 5));
}
static void e_shape_mismatch(json_t *d)
{
    json_array_set_new(json_object_get(node_at(d, "matmul", 0), "shape"), 1, json_integer(17));
}
static void e_version(json_t *d) { json_object_set_new(d, "version", json_integer(2)); }
static void e_format(json_t *d) { json_object_set_new(d, "format", json_string("keras")); }
static void e_unknown_key(json_t *d) { json_object_set_new(node_at(d, "relu", 0), "colour", json_string("red")); }
static void e_param_index(json_t *d) { json_object_set_new(node_at(d, "param", 0), "param", json_integer(99)); }
/* The entry of the first layer's W (12, 16) becomes (13, 16). */
static void e_param_shape(json_t *d)
{
    json_t *e = json_array_get(json_object_get(d, "parameters"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(e, "name")), "W");
    json_array_set_new(json_object_get(e, "shape"), 0, json_integer(13));
}
/* More than read_doc's budget of 1 MiB, less than one entry's limit. */
static void e_big_param(json_t *d)
{
    json_object_set_new(json_array_get(json_object_get(d, "parameters"), 0), "shape", json_pack("[I, I]",
                        (json_int_t)1 << 10, (json_int_t)1 << 10));
}
static void e_huge_param(json_t *d)
{
    json_object_set_new(json_array_get(json_object_get(d, "parameters"), 0), "shape", json_pack("[I, I]",
                        (json_int_t)1 << 30, (json_int_t)1 << 20));
}
static void e_root_tuple(json_t *d)
{
    json_object_set_new(json_array_get(json_object_get(d, "roots"), 0), "node", json_integer(100000));
}
static void e_dataset(json_t *d)
{
    json_object_set_new(json_array_get(json_object_get(d, "parameters"), 0), "dataset",
                        json_string("/parameters/../../etc/passwd"));
}
static void e_symbols(json_t *d) { json_object_set_new(d, "symbols", json_pack("[s, s, s]", "B", "T", "1x")); }
static void e_replaces(json_t *d) { json_object_set_new(node_at(d, "relu", 0), "replaces", json_integer(1 << 30)); }
static void e_update(json_t *d)
{
    json_object_set_new(json_object_get(d, "graph"), "updates", json_pack("[{s:i, s:i}]", "target", 0, "value", 1));
}
static void e_long_name(json_t *d)
{
    char s[KILN_MAX_NAME + 2];
    memset(s, 'n', sizeof s - 1);
    s[sizeof s - 1] = 0;
    json_object_set_new(node_at(d, "relu", 0), "name", json_string(s));
}
static void e_not_json(json_t *d) { json_object_set_new(d, "graph", json_string("nodes")); }

static const struct edit_case {
    const char *what;
    edit_fn edit;
    const char *needle;
} EDITS[] = {
    /* what                       edit                  message holds */
    {"an input after its node",  e_input_later,        "/graph/nodes/10 (matmul): input 0 is node 10, expected an earlier node (0 to 9)"},
    {"an unknown op",            e_unknown_op,         "op is \"frobnicate\", not an op of kiln"},
    {"a zero dim",               e_zero_dim,           "shape[1] has the factor 0"},
    {"an unknown symbol",        e_unknown_symbol,     "names the symbol \"Q\", which \"symbols\" does not list"},
    {"an axis out of range",     e_axis_out_of_range,  "/graph/nodes/5 (sum): sum: axes 0x20 outside the 2 axes of the operand"},
    {"a shape not the inputs'",  e_shape_mismatch,     "(matmul): float32 (B, 17) in the file, float32 (B, 16) from its inputs"},
    {"another version",          e_version,            "t.h5: /network.json: /version: format version 2"},
    {"another format",           e_format,             "/format: \"keras\", expected \"kiln-network\""},
    {"an unknown key",           e_unknown_key,        "/graph/nodes/12: unknown key \"colour\""},
    {"a param index",            e_param_index,        "(param): param is 99, expected 0 to 3"},
    {"an entry's shape",         e_param_shape,        "/graph/nodes/3 (param): float32 (12, 16) in the file, float32 (13, 16) from its inputs"},
    {"entries too big together", e_big_param,          "/parameters/0: the entries up to this one hold more than"},
    {"an entry too big",         e_huge_param,         "/parameters/0: shape has more values than kiln allocates for one entry"},
    {"a root out of range",      e_root_tuple,         "/roots/0: node is 100000, expected 0 to"},
    {"a dataset path with ..",   e_dataset,            "/parameters/0: dataset \"/parameters/../../etc/passwd\" has"},
    {"a bad symbol name",        e_symbols,            "/symbols: entry 2 is \"1x\""},
    {"replaces out of range",    e_replaces,           "/graph/nodes/12: replaces node 1073741824, which the graph does not have"},
    {"an update of an input",    e_update,             "/graph/updates/0: update: the target (node 0, input)"},
    {"a name too long",          e_long_name,          "name 'nnnn"},
    {"a graph not an object",    e_not_json,           "/graph: not an object, expected an object"},
};

START_TEST(edited_descriptions_are_clear_errors)
{
    const struct edit_case *c = &EDITS[_i];
    json_t *doc = mlp_doc();
    kiln_err err;
    ck_assert_int_eq(read_doc(doc, &err), KILN_OK); /* as written, it reads */
    c->edit(doc);
    enum kiln_status st = read_doc(doc, &err);
    ck_assert_msg(st == KILN_ERR_FORMAT, "%s: %s (%s)", c->what, kiln_status_string(st), err.msg);
    ck_assert_msg(strstr(err.msg, c->needle), "%s: message \"%s\" lacks \"%s\"", c->what, err.msg, c->needle);
    ck_assert_msg(strncmp(err.msg, "t.h5: /network.json: ", 21) == 0, "%s: %s", c->what, err.msg);
    json_decref(doc);
}
END_TEST

/* The scan's rules, on the RNN's description. */
static json_t *rnn_doc(void)
{
    rnn_net n;
    rnn_make(&n);
    kiln_netjson_out out;
    kiln_err err;
    kiln_graph *copy;
    kiln_node roots[3];
    ck_assert_int_eq(kiln_graph_replace(n.g, n.roots, 3, NULL, NULL, 0, &copy, roots), KILN_OK);
    ck_assert_int_eq(kiln_netjson_write(copy, roots, (const char *const[]){"a", "b", "c"}, 3, &out, &err), KILN_OK);
    json_t *doc = json_loadb(out.text, out.len, 0, &(json_error_t){0});
    ck_assert_ptr_nonnull(doc);
    kiln_netjson_out_free(&out);
    kiln_graph_destroy(copy);
    kiln_graph_destroy(n.g);
    kiln_brick_destroy(n.lstm);
    return doc;
}

static json_t *body0(json_t *d) { return json_array_get(json_object_get(json_object_get(d, "graph"), "bodies"), 0); }

static void s_body_index(json_t *d)
{
    json_object_set_new(json_object_get(node_at(d, "scan", 0), "attr"), "body", json_integer(7));
}
static void s_body_twice(json_t *d)
{
    json_object_set_new(json_object_get(node_at(d, "scan", 1), "attr"), "body", json_integer(0));
}
static void s_counts(json_t *d)
{
    json_object_set_new(json_object_get(node_at(d, "scan", 0), "attr"), "states", json_integer(3));
}
static void s_state_type(json_t *d)
{
    /* the first result of body 0 (a state's new value) becomes an ARG of another type */
    json_t *res = json_object_get(body0(d), "results");
    json_array_set_new(res, 0, json_integer(0));
}
static void s_arg_index(json_t *d)
{
    json_t *nodes = json_object_get(body0(d), "nodes");
    json_object_set_new(json_object_get(json_array_get(nodes, 0), "attr"), "index", json_integer(40));
}
static void s_body_input(json_t *d)
{
    json_t *nodes = json_object_get(body0(d), "nodes");
    json_object_set_new(json_array_get(nodes, 0), "op", json_string("input"));
    json_object_del(json_array_get(nodes, 0), "attr");
    json_object_set_new(json_array_get(nodes, 0), "name", json_string("sneaky"));
}
/* The body's random node takes the stream of dropout's (outside). */
static void s_stream_twice(json_t *d)
{
    json_t *bodies = json_object_get(json_object_get(d, "graph"), "bodies"), *b = NULL;
    for (size_t k = 0; k < json_array_size(bodies) && !b; k++) {
        json_t *nodes = json_object_get(json_array_get(bodies, k), "nodes");
        for (size_t i = 0; i < json_array_size(nodes) && !b; i++)
            if (strcmp(json_string_value(json_object_get(json_array_get(nodes, i), "op")), "random") == 0)
                b = json_object_get(json_array_get(nodes, i), "attr");
    }
    ck_assert_ptr_nonnull(b);
    json_object_set(b, "stream", json_object_get(json_object_get(node_at(d, "random", 0), "attr"), "stream"));
}
static void s_random_state_float(json_t *d)
{
    json_t *rs = json_array_get(json_object_get(d, "parameters"), 0);
    for (size_t k = 0; !json_object_get(rs, "roles") || strcmp(json_string_value(json_object_get(rs, "kind")), "state");)
        rs = json_array_get(json_object_get(d, "parameters"), ++k);
    json_object_set_new(rs, "dtype", json_string("float32"));
}
static void s_unused_body(json_t *d)
{
    json_array_append(json_object_get(json_object_get(d, "graph"), "bodies"), body0(d));
}
static void s_nested_too_deep(json_t *d)
{
    json_object_set_new(json_object_get(d, "graph"), "bodies", json_string("x"));
}

static const struct edit_case SCAN_EDITS[] = {
    {"a body index out of range", s_body_index,        "(scan): attr.body is 7, but the graph has 2 bodies"},
    {"one body for two scans",    s_body_twice,        "(scan): attr.body 0 is another scan's body too"},
    {"counts not the inputs'",    s_counts,            "(scan): "},
    {"a state's type",            s_state_type,        "/graph/bodies/0: result 0 (a state's new value) is"},
    {"an argument out of range",  s_arg_index,         "/graph/bodies/0/nodes/0 (arg): attr.index 40"},
    {"an input in a body",        s_body_input,        "/graph/bodies/0/nodes/0 (input): a scan body reads inputs only through"},
    {"a stream twice",            s_stream_twice,      "attr.stream"},
    {"a float random state",      s_random_state_float,"a random state is a state of 4 int32"},
    {"a body no scan reads",      s_unused_body,       "/graph: body 2 is no scan's body"},
    {"bodies not an array",       s_nested_too_deep,   "/graph: nodes or bodies is not an array"},
};

START_TEST(edited_scans_are_clear_errors)
{
    const struct edit_case *c = &SCAN_EDITS[_i];
    json_t *doc = rnn_doc();
    kiln_err err;
    ck_assert_msg(read_doc(doc, &err) == KILN_OK, "%s", err.msg);
    c->edit(doc);
    enum kiln_status st = read_doc(doc, &err);
    ck_assert_msg(st == KILN_ERR_FORMAT, "%s: %s (%s)", c->what, kiln_status_string(st), err.msg);
    ck_assert_msg(strstr(err.msg, c->needle), "%s: message \"%s\" lacks \"%s\"", c->what, err.msg, c->needle);
    json_decref(doc);
}
END_TEST

/* A description swapped into a real file: the message names the file; a
** parameter's dataset of the wrong shape names the dataset. */
static void replace_json(const char *path, const char *text)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    ck_assert_int_ge(H5Ldelete(f, "/network.json", H5P_DEFAULT), 0);
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
    H5Tset_size(t, strlen(text));
    hid_t d = H5Dcreate2(f, "/network.json", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, text), 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Tclose(t);
    H5Fclose(f);
    reseal(path, NULL, 0);
}

START_TEST(file_and_description_must_agree)
{
    char dir[256], path[320];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_net");
    path_in(path, sizeof path, dir, "mlp.h5");
    save_mlp(path);
    json_t *doc = mlp_doc();
    e_param_shape(doc); /* W is (13, 16) in the description, (12, 16) in the file */
    char *text = json_dumps(doc, JSON_COMPACT);
    replace_json(path, text);
    load_fails(path, KILN_ERR_FORMAT, "mlp.h5: /parameters/mlp/linear_0/W: shape (12, 16), the description says (13, 16)");
    free(text);
    json_decref(doc);
    /* a soft link where a dataset should be */
    save_mlp(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(H5Ldelete(f, "/parameters/mlp/linear_0/W", H5P_DEFAULT), 0);
    ck_assert_int_ge(H5Lcreate_soft("/parameters/mlp/linear_1/W", f, "/parameters/mlp/linear_0/W", H5P_DEFAULT,
                                    H5P_DEFAULT), 0);
    H5Fclose(f);
    reseal(path, NULL, 0);
    load_fails(path, KILN_ERR_FORMAT, "/parameters/mlp/linear_0/W is a soft or external link; kiln follows none");
    /* a dataset missing */
    save_mlp(path);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(H5Ldelete(f, "/parameters/mlp/linear_1/b", H5P_DEFAULT), 0);
    H5Fclose(f);
    reseal(path, NULL, 0);
    load_fails(path, KILN_ERR_FORMAT, "mlp.h5: /parameters/mlp/linear_1/b: not in the file");
    kiln_test_rmtree(dir);
}
END_TEST

/* Files in dir, "." and ".." aside. */
static int files_in(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ---- saving ------------------------------------------------------------------- */

START_TEST(save_errors_leave_no_file)
{
    char dir[256], path[320];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_net");
    mlp_net m;
    mlp_make(&m);
    kiln_node roots[2] = {m.probs, m.cost};
    /* a folder that does not exist: an I/O error on the graph */
    path_in(path, sizeof path, dir, "no/such/net.h5");
    ck_assert_int_eq(kiln_network_save(m.g, roots, (const char *const[]){"p", "c"}, 2, path), KILN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(m.g), "net.h5: cannot create a file there: No such file"));
    kiln_graph_clear_error(m.g);
    /* names: twice, empty */
    path_in(path, sizeof path, dir, "net.h5");
    ck_assert_int_eq(kiln_network_save(m.g, roots, (const char *const[]){"p", "p"}, 2, path), KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(m.g), "roots 0 and 1 are both named 'p'"));
    kiln_graph_clear_error(m.g);
    ck_assert_int_eq(kiln_network_save(m.g, roots, (const char *const[]){"p", ""}, 2, path), KILN_ERR_ARG);
    kiln_graph_clear_error(m.g);
    ck_assert_int_eq(kiln_network_save(m.g, roots, (const char *const[]){"p", "c"}, 0, path), KILN_ERR_ARG);
    kiln_graph_clear_error(m.g);
    ck_assert_int_eq(kiln_network_save(m.g, (kiln_node[]){{999}}, (const char *const[]){"p"}, 1, path), KILN_ERR_ARG);
    kiln_graph_clear_error(m.g);
    ck_assert_int_eq(access(path, F_OK), -1);
    ck_assert_int_eq(files_in(dir), 0); /* nor a temporary file */
    /* an old file stays whole when a save fails */
    ck_assert_int_eq(kiln_network_save(m.g, roots, (const char *const[]){"p", "c"}, 2, path), KILN_OK);
    ck_assert_int_eq(kiln_network_save(m.g, roots, (const char *const[]){"p", "p"}, 2, path), KILN_ERR_ARG);
    kiln_graph_clear_error(m.g);
    kiln_network_destroy(load_ok(path));
    ck_assert_int_eq(kiln_network_save(NULL, roots, (const char *const[]){"p", "c"}, 2, path), KILN_ERR_ARG);
    ck_assert_int_eq(kiln_network_save(m.g, roots, NULL, 2, path), KILN_ERR_ARG);
    ck_assert_str_eq(kiln_graph_errmsg(m.g), "kiln_network_save: names is NULL");
    kiln_graph_clear_error(m.g);
    mlp_free(&m);
    kiln_test_rmtree(dir);
}
END_TEST

/* A save that fails while writing (the file size limit reached: a full
** disk) leaves the old file whole and no temporary file beside it. This
** test runs in a child of its own (Check forks), so the limit ends with it. */
START_TEST(save_failing_midway_leaves_old_file_whole)
{
    char dir[256], path[320];
    kiln_test_tmpdir(dir, sizeof dir, "kiln_net");
    path_in(path, sizeof path, dir, "net.h5");
    save_mlp(path);
    size_t n;
    char *before = slurp(path, &n);
    ck_assert_int_gt(n, 4096);
    rnn_net r;
    rnn_make(&r);
    signal(SIGXFSZ, SIG_IGN); /* a write past the limit fails with EFBIG */
    struct rlimit lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &lim), 0);
    struct rlimit small = {.rlim_cur = 4096, .rlim_max = lim.rlim_max};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    enum kiln_status st = kiln_network_save(r.g, r.roots, (const char *const[]){"a", "b", "c"}, 3, path);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ck_assert_msg(st == KILN_ERR_IO, "%s: %s", kiln_status_string(st), kiln_graph_errmsg(r.g));
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(r.g), "net.h5: "));
    size_t m;
    char *after = slurp(path, &m);
    ck_assert_uint_eq(m, n);
    ck_assert_mem_eq(after, before, n);
    ck_assert_int_eq(files_in(dir), 1);
    kiln_network_destroy(load_ok(path));
    free(before);
    free(after);
    kiln_graph_destroy(r.g);
    kiln_brick_destroy(r.lstm);
    kiln_test_rmtree(dir);
}
END_TEST

/* A cost node made by the rewrite's builder is one node (before #12 it
** left a pick node behind, which a network file would have had to hold). */
START_TEST(regress_12_softmax_xent_makes_one_node)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 5});
    kiln_node y = kiln_graph_input(g, "y", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    int before = kiln_graph_node_count(g);
    kiln_node c = kiln_expr_softmax_xent(g, x, y);
    ck_assert(kiln_node_ok(c));
    ck_assert_int_eq(kiln_graph_node_count(g), before + 1);
    ck_assert_str_eq(kiln_graph_node_op(g, c), "softmax_cross_entropy");
    ck_assert(!kiln_node_ok(kiln_expr_softmax_xent(g, y, x)));
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(g), "softmax_cross_entropy: needs"));
    kiln_graph_destroy(g);
}
END_TEST

/* Every file of the fuzz target's seed corpus reads or fails cleanly. */
START_TEST(netjson_fuzz_corpus_reads_or_fails_cleanly)
{
    const char *dir = getenv("KILN_NETJSON_CORPUS");
    ck_assert_ptr_nonnull(dir);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls '%s'", dir);
    FILE *ls = popen(cmd, "r");
    ck_assert_ptr_nonnull(ls);
    char name[256];
    int files = 0;
    while (fgets(name, sizeof name, ls)) {
        name[strcspn(name, "\n")] = 0;
        char path[800];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        size_t n;
        char *text = slurp(path, &n);
        kiln_netjson_reader r = {.where = name, .max_value_bytes = 64 << 20};
        kiln_netjson_result res;
        kiln_err err;
        enum kiln_status st = kiln_netjson_read(text, n, &r, &res, &err);
        ck_assert_msg(st == KILN_OK || st == KILN_ERR_FORMAT, "%s: %s", name, err.msg);
        if (st == KILN_OK)
            free(text_of(res.graph));
        kiln_netjson_result_free(&res);
        free(text);
        files++;
    }
    pclose(ls);
    ck_assert_int_gt(files, 3);
}
END_TEST

static Suite *network_suite(void)
{
    Suite *s = suite_create("network");
    TCase *t = tcase_create("round_trip");
    tcase_add_test(t, mlp_round_trip_same_outputs_bit_for_bit);
    tcase_add_test(t, lstm_dropout_and_symbols_round_trip);
    tcase_add_test(t, crafted_names_are_data);
    tcase_add_test(t, dataset_paths_never_collide);
    suite_add_tcase(s, t);
    t = tcase_create("file");
    tcase_add_test(t, same_network_same_bytes);
    tcase_add_test(t, h5dump_reads_a_network_file);
    tcase_add_test(t, save_errors_leave_no_file);
    tcase_add_test(t, save_failing_midway_leaves_old_file_whole);
    tcase_add_test(t, regress_12_softmax_xent_makes_one_node);
    suite_add_tcase(s, t);
    t = tcase_create("bad_files");
    tcase_add_test(t, missing_and_foreign_files_are_clear_errors);
    tcase_add_test(t, another_format_version_is_refused);
    tcase_add_test(t, truncated_files_are_errors);
    tcase_add_test(t, flipped_bytes_load_or_fail_cleanly);
    tcase_add_loop_test(t, edited_descriptions_are_clear_errors, 0, (int)KILN_ARRAY_LEN(EDITS));
    tcase_add_loop_test(t, edited_scans_are_clear_errors, 0, (int)KILN_ARRAY_LEN(SCAN_EDITS));
    tcase_add_test(t, file_and_description_must_agree);
    tcase_add_test(t, netjson_fuzz_corpus_reads_or_fails_cleanly);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return kiln_test_run(network_suite()); }
