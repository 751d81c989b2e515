/* mine.c: a program of one's own, built against an installed kiln with
** nothing but `cc mine.c $(pkg-config --cflags --libs kiln)`
** (tests/install_check.sh). It builds a small MLP, saves it as a network
** file, loads the file, compiles the loaded graph and runs it: prints
** "mine: ok" and the outputs' sum, or says what failed on stderr.
**
**   mine NET.h5 */
#include <kiln/kiln.h>
#include <stdio.h>

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "mine: %s: %s\n", what, msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return fail("usage", "mine NET.h5");
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 4});
    kiln_brick *acts[2] = {kiln_tanh_create(NULL), kiln_softmax_create(NULL)};
    kiln_brick *mlp = kiln_mlp_create(NULL, acts, 2, (int64_t[]){4, 8, 3});
    kiln_brick_set_weights_init(mlp, kiln_init_isotropic_gaussian(0.5, 1));
    kiln_brick_set_biases_init(mlp, kiln_init_constant(0.1));
    kiln_node probs;
    if (kiln_brick_apply(mlp, g, x, &probs) || kiln_brick_initialize(mlp))
        return fail("mlp", kiln_brick_errmsg(mlp));
    if (kiln_network_save(g, &probs, (const char *const[]){"probs"}, 1, argv[1]))
        return fail("save", kiln_graph_errmsg(g));
    kiln_graph_destroy(g);
    kiln_brick_destroy(mlp);

    kiln_network *net;
    if (kiln_network_load(argv[1], &net)) {
        int rc = fail("load", kiln_network_errmsg(net));
        kiln_network_destroy(net);
        return rc;
    }
    kiln_node out = kiln_network_root(net, "probs");
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "mine";
    o.outputs = &out;
    o.n_outputs = 1;
    o.max_batch = 2;
    kiln_program *p;
    if (kiln_compile(kiln_network_graph(net), &o, &p))
        return fail("compile", kiln_program_errmsg(p));
    float xs[2 * 4] = {1, 0, -1, 0.5f, 0.25f, 2, 0, -1};
    double probs_v[2 * 3], sum = 0;
    if (kiln_program_bind_input_n(p, "x", xs, 2 * 4) || kiln_program_forward(p, 2) ||
        kiln_program_read(p, out, probs_v, 2 * 3))
        return fail("run", kiln_program_errmsg(p));
    for (int i = 0; i < 2 * 3; i++)
        sum += probs_v[i];
    printf("mine: ok, the probabilities of 2 examples sum to %.6f\n", sum);
    kiln_program_destroy(p);
    kiln_network_destroy(net);
    return 0;
}
