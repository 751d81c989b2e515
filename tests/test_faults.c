/* test_faults.c: out of memory at every allocation (STYLE.md section 3).
** The test binary interposes malloc/calloc/realloc; allocation number N
** fails; the call under test must return a status (KILN_ERR_NOMEM or a
** consequence of it) and never crash; then the same call must succeed once
** memory is back. Runs for every N up to the count a clean run makes.
** Not under AddressSanitizer, which owns malloc: there it says so and
** passes no check. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kiln/kiln.h>

#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define FAULTS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAULTS 0
#endif
#endif
#ifndef FAULTS
#define FAULTS 1
#endif

#if FAULTS
static kiln_node g_cost = {-1}; /* the monitored cost, for data_run */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static long g_count, g_fail_at = -1; /* fail allocation number g_fail_at (from 1) */
static int fail_now(void) { return ++g_count == g_fail_at; }
void *malloc(size_t n) { return fail_now() ? NULL : __libc_malloc(n); }
void *calloc(size_t a, size_t b) { return fail_now() ? NULL : __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { return fail_now() ? NULL : __libc_realloc(p, n); }
#endif

#if FAULTS
typedef struct model {
    kiln_graph *g;
    kiln_brick *mlp, *cce;
    kiln_node probs, cost;
} model;

/* Builds the model; returns 0, or 1 when something failed cleanly. */
static int build(model *m)
{
    memset(m, 0, sizeof *m);
    m->g = kiln_graph_create(KILN_DTYPE_F32);
    if (!m->g)
        return 1;
    kiln_node x = kiln_graph_input(m->g, "features", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 6});
    kiln_node y = kiln_graph_input(m->g, "targets", KILN_DTYPE_I32, 1, (int64_t[]){KILN_BATCH});
    kiln_brick *acts[2] = {kiln_rectifier_create(NULL), kiln_softmax_create(NULL)};
    if (!acts[0] || !acts[1]) {
        kiln_brick_destroy(acts[0]);
        kiln_brick_destroy(acts[1]);
        return 1;
    }
    m->mlp = kiln_mlp_create(NULL, acts, 2, (int64_t[]){6, 5, 3});
    m->cce = kiln_categorical_cross_entropy_create(NULL);
    if (!m->mlp || !m->cce)
        return 1;
    kiln_brick_set_weights_init(m->mlp, kiln_init_isotropic_gaussian(0.1, 0));
    kiln_brick_set_biases_init(m->mlp, kiln_init_constant(0));
    if (kiln_brick_apply(m->mlp, m->g, x, &m->probs) || kiln_cost_apply(m->cce, m->g, y, m->probs, &m->cost) ||
        kiln_brick_initialize(m->mlp) || kiln_graph_status(m->g))
        return 1;
    return 0;
}

static void destroy(model *m)
{
    kiln_graph_destroy(m->g);
    kiln_brick_destroy(m->mlp);
    kiln_brick_destroy(m->cce);
}

/* Fork (an MLP prototype, copied) into Merge, applied and initialized;
** returns 0, or 1 when something failed cleanly. */
static int build_routing(kiln_graph **g, kiln_brick **fork, kiln_brick **merge)
{
    *fork = *merge = NULL;
    if (!(*g = kiln_graph_create(KILN_DTYPE_F32)))
        return 1;
    kiln_node x = kiln_graph_input(*g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 4}), yz[2], out;
    kiln_brick *act = kiln_tanh_create(NULL);
    kiln_brick *proto = act ? kiln_mlp_create(NULL, &act, 1, (int64_t[]){0, 0}) : NULL;
    *fork = kiln_fork_create(NULL, (const char *[]){"y", "z"}, 2, 4, (int64_t[]){3, 3}, proto);
    *merge = kiln_merge_create(NULL, (const char *[]){"a", "b"}, 2, (int64_t[]){3, 3}, 2, NULL, NULL);
    if (!*fork || !*merge)
        return 1;
    kiln_brick_set_weights_init(*fork, kiln_init_isotropic_gaussian(0.1, 0));
    kiln_brick_set_biases_init(*fork, kiln_init_constant(0));
    kiln_brick_set_weights_init(*merge, kiln_init_constant(1));
    if (kiln_brick_call(*fork, "apply", *g, &x, 1, yz, 2) || kiln_brick_call(*merge, "apply", *g, yz, 2, &out, 1) ||
        kiln_brick_initialize(*fork) || kiln_brick_initialize(*merge) || kiln_graph_status(*g))
        return 1;
    return 0;
}

static enum kiln_status compile(model *m, kiln_program **p)
{
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "faults";
    o.cost = m->cost;
    o.step_rule = kiln_step_scale(0.1);
    o.outputs = &m->probs;
    o.n_outputs = 1;
    o.max_batch = 8;
    return kiln_compile(m->g, &o, p);
}

/* Small IDX files: 10 images of 2x3 and their labels, gzipped by zlib's
** gzopen so the gzip path is exercised too (plain files read the same way). */
static void write_idx(const char *dir, char *images, char *labels, size_t cap)
{
    snprintf(images, cap, "%s/img.idx", dir);
    snprintf(labels, cap, "%s/lbl.idx", dir);
    FILE *f = fopen(images, "wb");
    unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 2, 0, 0, 0, 3};
    fwrite(hdr, 1, 16, f);
    for (int i = 0; i < 60; i++)
        fputc(i * 4, f);
    fclose(f);
    f = fopen(labels, "wb");
    unsigned char lh[8] = {0, 0, 8, 1, 0, 0, 0, 10};
    fwrite(lh, 1, 8, f);
    for (int i = 0; i < 10; i++)
        fputc(i % 3, f);
    fclose(f);
}

/* Load, stream and train two epochs with monitoring and printing: 0 when
** everything worked, 1 when a step failed and said why (a constructor's
** NULL means out of memory, as documented), 2 when one failed silently. */
static int data_run(const char *images, const char *labels, kiln_program *p, FILE *sink)
{
    kiln_dataset *d = NULL;
    kiln_stream *s = NULL, *t = NULL;
    kiln_main_loop *m = NULL;
    int r = 1;
    enum kiln_status st = kiln_dataset_open_idx(images, labels, &d);
    if (st) {
        r = d && !kiln_dataset_errmsg(d)[0] ? 2 : 1;
        goto out;
    }
    if ((st = kiln_stream_create(d, KILN_SCHEME_SHUFFLED, 4, 7, &s)) ||
        (st = kiln_stream_create(d, KILN_SCHEME_SEQUENTIAL, 5, 0, &t)))
        goto out;
    if ((st = kiln_main_loop_create(p, s, &m))) {
        r = m && !kiln_main_loop_errmsg(m)[0] ? 2 : 1;
        goto out;
    }
    kiln_extension *ext[3] = {kiln_finish_after(2, 0), kiln_printing(sink),
                              kiln_data_stream_monitoring(&g_cost, 1, t, "valid")};
    bool all = ext[0] && ext[1] && ext[2];
    for (int i = 0; i < 3; i++) {
        if (!all) { /* a constructor ran out of memory: drop the others */
            kiln_extension_destroy(ext[i]);
            continue;
        }
        if (kiln_main_loop_add_extension(m, ext[i]) != KILN_OK) {
            all = false;
            r = kiln_main_loop_errmsg(m)[0] ? 1 : 2;
        }
    }
    if (!all)
        goto out;
    if (kiln_main_loop_run(m) == KILN_OK)
        r = kiln_main_loop_epochs_done(m) == 2 ? 0 : 2;
    else
        r = kiln_main_loop_errmsg(m)[0] ? 1 : 2;
out:
    kiln_main_loop_destroy(m);
    kiln_stream_destroy(s);
    kiln_stream_destroy(t);
    kiln_dataset_destroy(d);
    return r;
}

/* Sequences: a dataset of two sequence sources and a per-example one, a
** padded stream (shuffled, sorted), two epochs. 0 when everything worked,
** 1 when a call failed and said why, 2 when one failed silently. *during
** gets the allocations the epochs made (next() must make none). */
static int seq_run(long *during)
{
    static const int64_t len[6] = {3, 1, 4, 2, 5, 1};
    int32_t tok[16] = {0}, id[6] = {0};
    float fr[32] = {0};
    kiln_dataset *d = kiln_dataset_create();
    kiln_stream *s = NULL;
    if (!d)
        return 1;
    int r = 0;
    kiln_padded_options o = kiln_padded_options_default();
    o.scheme = KILN_SCHEME_SHUFFLED;
    o.batch_size = 2;
    o.sort_batches = 2;
    o.seed = 3;
    if (kiln_dataset_add_sequences(d, "tokens", KILN_DTYPE_I32, 6, len, 0, NULL, tok) ||
        kiln_dataset_add_sequences(d, "frames", KILN_DTYPE_F32, 6, len, 1, (int64_t[]){2}, fr) ||
        kiln_dataset_add_source(d, "id", KILN_DTYPE_I32, 6, 0, NULL, id))
        r = kiln_dataset_errmsg(d)[0] ? 1 : 2;
    else if (kiln_stream_create_padded(d, &o, &s) != KILN_OK)
        r = !s ? 1 : kiln_stream_errmsg(s)[0] ? 1 : 2;
    long before = g_count;
    kiln_batch b;
    for (int e = 0; e < 2 && r == 0; e++) {
        kiln_stream_reset(s);
        int n = 0;
        while (kiln_stream_next(s, &b))
            n++;
        r = n == 3 ? 0 : 2;
    }
    *during = g_count - before;
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    return r;
}
#endif

START_TEST(building_a_model_survives_every_failed_allocation)
{
#if FAULTS
    model m;
    g_fail_at = -1;
    g_count = 0;
    ck_assert_int_eq(build(&m), 0);
    long total = g_count;
    destroy(&m);
    int failures = 0;
    for (long n = 1; n <= total; n++) {
        g_count = 0;
        g_fail_at = n;
        failures += build(&m);
        g_fail_at = -1;
        destroy(&m);
    }
    printf("test_faults: building a model: %ld allocations, each failed once\n", total);
    ck_assert_int_gt(total, 10);
    ck_assert_int_gt(failures, 0);
#else
    printf("test_faults: skipped under AddressSanitizer (it owns malloc)\n");
#endif
}
END_TEST

START_TEST(routing_bricks_survive_every_failed_allocation)
{
#if FAULTS
    kiln_graph *g;
    kiln_brick *fork, *merge;
    g_fail_at = -1;
    g_count = 0;
    ck_assert_int_eq(build_routing(&g, &fork, &merge), 0);
    long total = g_count;
    kiln_graph_destroy(g);
    kiln_brick_destroy(fork);
    kiln_brick_destroy(merge);
    int failures = 0;
    for (long n = 1; n <= total; n++) {
        g_count = 0;
        g_fail_at = n;
        failures += build_routing(&g, &fork, &merge);
        g_fail_at = -1;
        kiln_graph_destroy(g);
        kiln_brick_destroy(fork);
        kiln_brick_destroy(merge);
    }
    printf("test_faults: routing bricks: %ld allocations, each failed once\n", total);
    ck_assert_int_gt(total, 10);
    ck_assert_int_gt(failures, 0);
#else
    printf("test_faults: skipped under AddressSanitizer (it owns malloc)\n");
#endif
}
END_TEST

START_TEST(compiling_survives_every_failed_allocation)
{
#if FAULTS
    model m;
    ck_assert_int_eq(build(&m), 0);
    kiln_program *p = NULL;
    g_fail_at = -1;
    ck_assert_int_eq(compile(&m, &p), KILN_OK); /* fills the cache: the loop below hits it */
    kiln_program_destroy(p);
    g_count = 0;
    ck_assert_int_eq(compile(&m, &p), KILN_OK);
    long total = g_count;
    kiln_program_destroy(p);
    int nomem = 0;
    for (long n = 1; n <= total; n++) {
        g_count = 0;
        g_fail_at = n;
        p = NULL;
        enum kiln_status st = compile(&m, &p);
        g_fail_at = -1;
        if (st != KILN_OK) {
            ck_assert_msg(p == NULL || kiln_program_errmsg(p)[0] != '\0', "allocation %ld: no message", n);
            nomem += st == KILN_ERR_NOMEM;
            if (p) /* NULL only when the program itself could not be allocated */
                ck_assert_int_eq(kiln_program_train_step(p, 1) == KILN_OK, 0);
        }
        kiln_program_destroy(p);
    }
    printf("test_faults: compiling (cache hit): %ld allocations, each failed once\n", total);
    ck_assert_int_gt(nomem, 0);
    /* and the graph and bricks are still usable */
    ck_assert_int_eq(compile(&m, &p), KILN_OK);
    float x[6] = {0};
    int32_t y[1] = {0};
    kiln_program_bind_input(p, "features", x);
    kiln_program_bind_input(p, "targets", y);
    ck_assert_int_eq(kiln_program_train_step(p, 1), KILN_OK);
    kiln_program_destroy(p);
    destroy(&m);
#else
    printf("test_faults: skipped under AddressSanitizer (it owns malloc)\n");
#endif
}
END_TEST

START_TEST(loading_and_training_survive_every_failed_allocation)
{
#if FAULTS
    model m;
    ck_assert_int_eq(build(&m), 0);
    kiln_program *p = NULL;
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "faults_data";
    o.cost = m.cost;
    o.monitors = &m.cost;
    o.n_monitors = 1;
    o.step_rule = kiln_step_scale(0.1);
    o.max_batch = 8;
    ck_assert_int_eq(kiln_compile(m.g, &o, &p), KILN_OK);
    g_cost = m.cost;
    char dir[] = "/tmp/kiln_faults_XXXXXX", images[256], labels[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_idx(dir, images, labels, sizeof images);
    FILE *sink = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(sink);
    g_fail_at = -1;
    g_count = 0;
    ck_assert_int_eq(data_run(images, labels, p, sink), 0);
    long total = g_count;
    int failed = 0;
    for (long n = 1; n <= total; n++) {
        g_count = 0;
        g_fail_at = n;
        int r = data_run(images, labels, p, sink);
        g_fail_at = -1;
        ck_assert_msg(r != 2, "allocation %ld: a failure without a message", n);
        failed += r != 0;
    }
    printf("test_faults: loading, streaming, training: %ld allocations, each failed once\n", total);
    ck_assert_int_gt(failed, 0);
    ck_assert_int_eq(data_run(images, labels, p, sink), 0);
    fclose(sink);
    kiln_program_destroy(p);
    destroy(&m);
    remove(images);
    remove(labels);
    rmdir(dir);
#else
    printf("test_faults: skipped under AddressSanitizer (it owns malloc)\n");
#endif
}
END_TEST

START_TEST(padded_streams_survive_every_failed_allocation)
{
#if FAULTS
    long during;
    g_fail_at = -1;
    g_count = 0;
    ck_assert_int_eq(seq_run(&during), 0);
    ck_assert_msg(during == 0, "two epochs of a padded stream made %ld allocations", during);
    long total = g_count;
    int failed = 0;
    for (long n = 1; n <= total; n++) {
        g_count = 0;
        g_fail_at = n;
        int r = seq_run(&during);
        g_fail_at = -1;
        ck_assert_msg(r != 2, "allocation %ld: a failure without a message", n);
        failed += r != 0;
    }
    printf("test_faults: padded streams: %ld allocations, each failed once\n", total);
    ck_assert_int_gt(failed, 0);
#else
    printf("test_faults: skipped under AddressSanitizer (it owns malloc)\n");
#endif
}
END_TEST

START_TEST(graph_transforms_survive_every_failed_allocation)
{
#if FAULTS
    model m;
    ck_assert_int_eq(build(&m), 0);
    kiln_node x = kiln_graph_input_by_name(m.g, "features"), ny;
    kiln_graph *ng = NULL;
    g_fail_at = -1;
    g_count = 0;
    ck_assert_int_eq(kiln_apply_dropout(m.g, &m.cost, 1, &x, 1, 0.5, 3, &ng, &ny), KILN_OK);
    long total = g_count;
    kiln_graph_destroy(ng);
    int nomem = 0;
    for (long n = 1; n <= total; n++) {
        g_count = 0;
        g_fail_at = n;
        enum kiln_status st = kiln_apply_dropout(m.g, &m.cost, 1, &x, 1, 0.5, 3, &ng, &ny);
        g_fail_at = -1;
        if (st != KILN_OK) {
            ck_assert_msg(ng == NULL, "allocation %ld: a new graph on failure", n);
            ck_assert_msg(kiln_graph_status(m.g) == st && strstr(kiln_graph_errmsg(m.g), "memory"),
                          "allocation %ld: status %d, message '%s'", n, st, kiln_graph_errmsg(m.g));
            nomem += st == KILN_ERR_NOMEM;
            kiln_graph_clear_error(m.g);
        }
        kiln_graph_destroy(ng);
    }
    printf("test_faults: apply_dropout: %ld allocations, each failed once\n", total);
    ck_assert_int_gt(nomem, 0);
    /* and the source is as it was: the transform still works and compiles */
    ck_assert_int_eq(kiln_apply_dropout(m.g, &m.cost, 1, &x, 1, 0.5, 3, &ng, &ny), KILN_OK);
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "faults_dropout";
    o.cost = ny;
    kiln_program *p;
    ck_assert_int_eq(kiln_compile(ng, &o, &p), KILN_OK);
    kiln_program_destroy(p);
    kiln_graph_destroy(ng);
    destroy(&m);
#else
    printf("test_faults: skipped under AddressSanitizer (it owns malloc)\n");
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("faults");
    TCase *t = tcase_create("faults");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, building_a_model_survives_every_failed_allocation);
    tcase_add_test(t, routing_bricks_survive_every_failed_allocation);
    tcase_add_test(t, compiling_survives_every_failed_allocation);
    tcase_add_test(t, loading_and_training_survive_every_failed_allocation);
    tcase_add_test(t, padded_streams_survive_every_failed_allocation);
    tcase_add_test(t, graph_transforms_survive_every_failed_allocation);
    suite_add_tcase(s, t);
    return kiln_test_run(s);
}
