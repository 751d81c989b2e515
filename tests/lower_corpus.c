/* lower_corpus.c: compile a corpus of models through the public API and
** write each generated C unit to a folder, for comparing the code of two
** kiln versions byte for byte (a refactor of the lowering must not change
** it): `lower_corpus DIR` on each build, then `diff -r`.
**
** The corpus: the MLP of test_codegen.c at batch 16 and at batch 1 (the
** deferred update), a 784-100-10 MLP at batch 64 (kiln's own GEMM), a
** forward-only MLP, an LSTM trained through a scan (the backward scan and
** its transposed contexts), each with fast paths and with no_fast_paths,
** and the MLP exported (plain-C products and CBLAS). Public API only, so it
** builds against any version that has these calls (scripts/codegen-diff
** does both builds and the diff). Exit 0 when every
** program compiled and every file was written. tests/test_lower.c reuses
** the models (LOWER_CORPUS_NO_MAIN). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <kiln/kiln.h>

typedef struct net {
    kiln_graph *g;
    kiln_brick *bricks[2];
    kiln_node out, cost;
} net;

/* MLP(Rectifier, Softmax) over dims with a cross-entropy cost. */
static void mlp_make(net *n, const int64_t *dims)
{
    n->g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(n->g, "features", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, dims[0]});
    kiln_node y = kiln_graph_input(n->g, "targets", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    kiln_brick *acts[2] = {kiln_rectifier_create(NULL), kiln_softmax_create(NULL)};
    n->bricks[0] = kiln_mlp_create(NULL, acts, 2, dims);
    n->bricks[1] = kiln_categorical_cross_entropy_create(NULL);
    kiln_brick_set_weights_init(n->bricks[0], kiln_init_isotropic_gaussian(0.1, 0));
    kiln_brick_set_biases_init(n->bricks[0], kiln_init_constant(0));
    kiln_brick_apply(n->bricks[0], n->g, x, &n->out);
    kiln_cost_apply(n->bricks[1], n->g, y, n->out, &n->cost);
    kiln_brick_initialize(n->bricks[0]);
}

/* An LSTM over x (T, B, 4 * 8), its outputs summed as the cost. */
static void lstm_make(net *n)
{
    n->g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(n->g, "x", KILN_DTYPE_F32, 3, (int64_t[]){KILN_TIME, KILN_BATCH, 32});
    n->bricks[0] = kiln_lstm_create(NULL, 8, NULL);
    n->bricks[1] = NULL;
    kiln_brick_set_weights_init(n->bricks[0], kiln_init_isotropic_gaussian(0.4, 5));
    kiln_node outs[2];
    kiln_recurrent_call(n->bricks[0], "apply", n->g, (kiln_node[]){x, KILN_NODE_NONE, KILN_NODE_NONE, KILN_NODE_NONE},
                        4, NULL, outs, 2);
    kiln_brick_initialize(n->bricks[0]);
    n->out = outs[0];
    n->cost = kiln_expr_sum(n->g, kiln_expr_mul(n->g, outs[0], outs[0]), KILN_ALL_AXES);
}

static void net_free(net *n)
{
    kiln_graph_destroy(n->g);
    kiln_brick_destroy(n->bricks[0]);
    if (n->bricks[1])
        kiln_brick_destroy(n->bricks[1]);
}

/* n compiled (with its cost and Scale(0.1) unless forward_only), or NULL
** (the message on stderr). */
static kiln_program *compile_net(net *n, int64_t max_batch, int64_t max_t, bool forward_only, bool plain)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "m";
    o.outputs = &n->out;
    o.n_outputs = 1;
    o.max_batch = max_batch;
    o.no_fast_paths = plain;
    if (!forward_only) {
        o.cost = n->cost;
        o.step_rule = kiln_step_scale(0.1);
    }
    if (max_t)
        o.max_size[KILN_SYMBOL_INDEX(KILN_TIME)] = max_t;
    kiln_program *p;
    if (kiln_compile(n->g, &o, &p) != KILN_OK) {
        fprintf(stderr, "lower_corpus: %s\n", p ? kiln_program_errmsg(p) : "no program");
        kiln_program_destroy(p);
        return NULL;
    }
    return p;
}

#ifndef LOWER_CORPUS_NO_MAIN /* test_lower.c includes the models */
static const char *dir;
static int failures;

static void save(const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.c", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "lower_corpus: cannot write %s\n", path);
        failures++;
    }
}

/* Compile n and save the source as name, then, with export, its exports. */
static void compile_save(net *n, const char *name, int64_t max_batch, int64_t max_t, bool forward_only, bool plain,
                         bool export)
{
    kiln_program *p = compile_net(n, max_batch, max_t, forward_only, plain);
    if (!p) {
        failures++;
        return;
    }
    save(name, kiln_program_source(p));
    for (int blas = 0; export && blas < 2; blas++) {
        kiln_export_options e = kiln_export_options_default();
        e.name = blas ? "exported_blas" : "exported";
        e.dir = dir;
        e.blas = blas;
        e.compile = false;
        if (kiln_program_export(p, &e) != KILN_OK) {
            fprintf(stderr, "lower_corpus: export %s: %s\n", name, kiln_program_errmsg(p));
            failures++;
        }
    }
    kiln_program_destroy(p);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: lower_corpus DIR\n");
        return 2;
    }
    dir = argv[1];
    mkdir(dir, 0755); /* may exist: then the files are replaced */
    for (int plain = 0; plain < 2; plain++) {
        char name[64];
        net n;
        mlp_make(&n, (int64_t[]){6, 5, 3});
        snprintf(name, sizeof name, "mlp_b16%s", plain ? "_plain" : "");
        compile_save(&n, name, 16, 0, false, plain, false);
        snprintf(name, sizeof name, "mlp_b1%s", plain ? "_plain" : "");
        compile_save(&n, name, 1, 0, false, plain, false);
        snprintf(name, sizeof name, "mlp_forward%s", plain ? "_plain" : "");
        compile_save(&n, name, 16, 0, true, plain, false);
        net_free(&n);
        mlp_make(&n, (int64_t[]){784, 100, 10});
        snprintf(name, sizeof name, "mlp784_b64%s", plain ? "_plain" : "");
        compile_save(&n, name, 64, 0, false, plain, !plain);
        snprintf(name, sizeof name, "mlp784_b1%s", plain ? "_plain" : "");
        compile_save(&n, name, 1, 0, false, plain, false);
        net_free(&n);
        lstm_make(&n);
        snprintf(name, sizeof name, "lstm%s", plain ? "_plain" : "");
        compile_save(&n, name, 4, 5, false, plain, false);
        snprintf(name, sizeof name, "lstm_forward%s", plain ? "_plain" : "");
        compile_save(&n, name, 4, 5, true, plain, false);
        net_free(&n);
    }
    return failures != 0;
}
#endif
