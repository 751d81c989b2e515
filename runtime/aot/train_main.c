/* main.c: a training program written by kiln (kiln build --train,
** kiln_program_write_aot; docs/aot.md). It trains the model of
** kiln_train.h with the program's own train_step (kiln_unit.c: the C that
** kiln's JIT compiled, the step rule inside it) on IDX data, and writes a
** network file of the trained parameters that kiln_network_load reads.
**
**   PROGRAM --images IMAGES --labels LABELS -o OUT.h5
**           [--batch N] [--batches N | --epochs N]
**
** IMAGES and LABELS are uncompressed IDX files (MNIST's format: gunzip a
** .gz first): ubyte images (N, rows, cols) scaled by 1/255 to float32 as
** kiln's data streams scale them, and ubyte labels (N). Batches run in the
** files' order, without shuffling, as kiln's sequential stream gives them:
** batch after batch of N examples, the last of an epoch short, then the
** next epoch from the first example. Default: one epoch at the batch size
** the program was built with. The output appears whole or not at all. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h> /* the arena: madvise */
#endif

#include "kiln_train.h"
#include "runtime/kernels.h"

/* OpenBLAS's thread control, as kiln's runtime uses it (weak: another
** CBLAS links too). */
extern void openblas_set_num_threads(int) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));

static const char USAGE[] = "usage: %s --images IMAGES --labels LABELS -o OUT.h5 [--batch N] [--batches N | --epochs N]\n"
                            "Trains on uncompressed IDX files in their order; writes a kiln network file.\n"
                            "See docs/aot.md in kiln.\n";

static int fail(const char *prog, const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An IDX file of ubytes with rank dims: its count of items (dims[0]) and
** the item size; the bytes after the header in *data (malloc'd). NULL
** message: ok. */
static const char *read_idx(const char *path, int rank, unsigned char **data, int64_t *n, int64_t *item)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strerror(errno);
    unsigned char h[16];
    size_t hn = 4 + 4 * (size_t)rank;
    const char *why = NULL;
    if (fread(h, 1, hn, f) != hn)
        why = "shorter than its header (not an uncompressed IDX file?)";
    else if (be32(h) != (0x800u | (uint32_t)rank))
        why = rank == 1 ? "magic is not 0x00000801 (uncompressed IDX labels of ubytes)"
                        : "magic is not 0x00000803 (uncompressed IDX images of ubytes)";
    *n = why ? 0 : be32(h + 4);
    *item = 1;
    for (int k = 1; !why && k < rank; k++)
        *item *= be32(h + 4 + 4 * k);
    if (!why && (*n < 1 || *item < 1 || *n > (int64_t)1 << 32 || *item > (int64_t)1 << 24))
        why = "no examples, or sizes out of range";
    size_t bytes = why ? 0 : (size_t)(*n * *item);
    if (!why && !(*data = malloc(bytes + 1)))
        why = "out of memory";
    if (!why && (fread(*data, 1, bytes, f) != bytes || fgetc(f) != EOF))
        why = "its size is not what its header says (truncated, or bytes after the data)";
    fclose(f);
    return why;
}

int main(int argc, char **argv)
{
    const char *prog = argv[0], *images = NULL, *labels = NULL, *out = NULL;
    long long batch = KILN_T_BATCH, batches = 0, epochs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf(USAGE, prog);
            return 0;
        }
        if (i + 1 == argc) {
            fprintf(stderr, USAGE, prog);
            return 2;
        }
        const char *v = argv[++i];
        char *end = NULL;
        if (strcmp(a, "--images") == 0)
            images = v;
        else if (strcmp(a, "--labels") == 0)
            labels = v;
        else if (strcmp(a, "-o") == 0)
            out = v;
        else if (strcmp(a, "--batch") == 0 || strcmp(a, "--batches") == 0 || strcmp(a, "--epochs") == 0) {
            long long x = strtoll(v, &end, 10);
            if (*end || x < 1 || (a[2] == 'b' && a[7] == 0 && x > KILN_T_MAX_BATCH)) {
                fprintf(stderr, "%s: %s %s: expected a whole number from 1%s\n", prog, a, v,
                        a[7] == 0 && a[2] == 'b' ? " to the program's largest batch" : "");
                return 2;
            }
            *(a[2] == 'e' ? &epochs : a[7] == 0 ? &batch : &batches) = x;
        } else {
            fprintf(stderr, "%s: unexpected argument '%s'\n", prog, a);
            fprintf(stderr, USAGE, prog);
            return 2;
        }
    }
    if (!images || !out || (KILN_T_TARGETS >= 0 && !labels) || (batches && epochs)) {
        fprintf(stderr, USAGE, prog);
        return 2;
    }

    /* the data, as kiln's IDX reader converts it */
    unsigned char *pix = NULL, *lab = NULL;
    int64_t n, item, n_labels = 0, one;
    const char *why = read_idx(images, 3, &pix, &n, &item);
    if (why)
        return fail(prog, "%s: %s", images, why);
    if (item != KILN_T_EXAMPLE_SIZE) {
        char msg[96];
        snprintf(msg, sizeof msg, "images of %lld values; the model's input takes %lld", (long long)item,
                 (long long)KILN_T_EXAMPLE_SIZE);
        return fail(prog, "%s: %s", images, msg);
    }
    if (KILN_T_TARGETS >= 0 && (why = read_idx(labels, 1, &lab, &n_labels, &one)))
        return fail(prog, "%s: %s", labels, why);
    if (KILN_T_TARGETS >= 0 && n_labels != n)
        return fail(prog, "%s: its count of labels is not %s's count of images", labels, images);
    float *features = malloc(sizeof(float) * (size_t)(n * item));
    int32_t *targets = malloc(sizeof(int32_t) * (size_t)n + 1);
    if (!features || !targets)
        return fail(prog, "%s%s", "out of memory", "");
    for (int64_t i = 0; i < n * item; i++)
        features[i] = pix[i] / 255.0f;
    for (int64_t i = 0; lab && i < n; i++)
        targets[i] = lab[i];
    free(pix);
    free(lab);

    /* the program: its arena as kiln had it when it wrote this program;
    ** from 2 MiB on 2 MiB boundaries, advised for huge pages before its
    ** first touch (kiln's runtime/executor.c, cpu_alloc, says why) */
    const size_t huge = (size_t)2 << 20;
    const size_t align = KILN_T_ARENA_BYTES >= huge ? huge : 64;
    const size_t arena_bytes = ((size_t)KILN_T_ARENA_BYTES + align - 1) / align * align;
    char *arena = aligned_alloc(align, arena_bytes ? arena_bytes : align);
    if (!arena)
        return fail(prog, "%s%s", "out of memory", "");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align == huge)
        (void)madvise(arena, arena_bytes, MADV_HUGEPAGE); /* advice: small pages if refused */
#endif
    memset(arena, 0, KILN_T_ARENA_BYTES);
    if (KILN_T_INIT(arena, KILN_T_ARENA_BYTES) != 0)
        return fail(prog, "%s%s", "the generated init refused the arena", "");
    for (int r = 0; r < kiln_t_n_regions; r++)
        memcpy(arena + kiln_t_regions[r].off, kiln_t_regions[r].data, (size_t)kiln_t_regions[r].bytes);
    kiln_kernel_set ks;
    if (!kiln_kernel_set_of(KILN_T_ISA, &ks))
        fprintf(stderr, "%s: note: this CPU lacks the %s kernels kiln used; the results may differ in their bits\n",
                prog, KILN_T_ISA);
    kiln_codegen_runtime rt = {
        .sgemm = (void (*)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *,
                           int))cblas_sgemm,
        .dgemm = (void (*)(int, int, int, int, int, int, double, const double *, int, const double *, int, double,
                           double *, int))cblas_dgemm,
        .sgemv = (void (*)(int, int, int, int, float, const float *, int, const float *, int, float, float *,
                           int))cblas_sgemv,
        .dgemv = (void (*)(int, int, int, int, double, const double *, int, const double *, int, double, double *,
                           int))cblas_dgemv,
        .sger = (void (*)(int, int, int, float, const float *, int, const float *, int, float *, int))cblas_sger,
        .dger = (void (*)(int, int, int, double, const double *, int, const double *, int, double *, int))cblas_dger,
        .sger_gemv = ks.sger_gemv,
        .sgemm_nn = KILN_T_FAST_PATHS ? ks.sgemm_nn : NULL,
        .sgemm_tn = KILN_T_FAST_PATHS ? ks.sgemm_tn : NULL,
        .transpose = ks.transpose,
        .pack_nn = KILN_T_FAST_PATHS ? ks.pack_nn : NULL, /* both or neither */
        .sgemm_nn_packed = KILN_T_FAST_PATHS ? ks.sgemm_nn_packed : NULL,
    };
    kiln_codegen_runtime threaded = rt; /* kiln's kernels are single-threaded */
    threaded.sgemm_nn = NULL;
    threaded.sgemm_tn = NULL;
    threaded.pack_nn = NULL;
    threaded.sgemm_nn_packed = NULL;
    kiln_codegen_runtime rt_small = rt; /* a small step on a threaded BLAS: kiln's products at every shape */
    if (KILN_T_FAST_PATHS && ks.sgemm_nn_own && ks.sgemm_tn_own) {
        rt_small.sgemm_nn = ks.sgemm_nn_own;
        rt_small.sgemm_tn = ks.sgemm_tn_own;
    }
    /* BLAS threads: set once, as kiln_compile does when the program asked */
    if (KILN_T_THREADS > 0 && openblas_set_num_threads && openblas_get_num_threads &&
        openblas_get_num_threads() != KILN_T_THREADS)
        openblas_set_num_threads(KILN_T_THREADS);

    /* train: batches in the data's order, as kiln's sequential stream */
    int64_t per_epoch = (n + batch - 1) / batch;
    int64_t total = batches ? batches : (epochs ? epochs : 1) * per_epoch;
    const void *inputs[KILN_T_N_INPUTS + 1] = {0};
    int64_t sizes[KILN_T_N_SYMBOLS];
    for (int k = 0; k < KILN_T_N_SYMBOLS; k++)
        sizes[k] = 1;
    int64_t at = 0;
    for (int64_t step = 0; step < total; step++) {
        int64_t b = n - at < batch ? n - at : batch;
        inputs[KILN_T_FEATURES] = features + at * item;
        if (KILN_T_TARGETS >= 0)
            inputs[KILN_T_TARGETS > 0 ? KILN_T_TARGETS : 0] = targets + at;
        sizes[0] = b;
        /* the kernels for this step, as kiln's runtime picks them (program.c,
        ** run): the BLAS's thread count is read, never set per step */
        int blas = openblas_get_num_threads ? openblas_get_num_threads() : 1;
        bool small = b < KILN_T_SMALL_BATCH;
        bool own = small || blas <= 1 ||
                   (rt.sgemm_nn && b <= KILN_CODEGEN_GEMM_ROWS && ks.nn_wins((int)b, KILN_T_GEMM_N, KILN_T_GEMM_K));
        int64_t code = KILN_T_TRAIN_STEP(arena, inputs, sizes, !own ? &threaded : small && blas > 1 ? &rt_small : &rt);
        if (code) {
            char msg[160];
            snprintf(msg, sizeof msg, "batch %lld (examples %lld to %lld): an index in the data is out of range "
                     "(a label past the model's classes?)", (long long)step, (long long)at, (long long)(at + b - 1));
            return fail(prog, "%s%s", msg, "");
        }
        at = at + b == n ? 0 : at + b;
    }
    KILN_T_FLUSH(arena, &rt); /* the updates a batch-1 step deferred */

    /* the network file: the description kiln wrote, the trained values */
    kiln_netfile_dataset ds[KILN_T_N_DATASETS + 1];
    for (int k = 0; k < KILN_T_N_DATASETS; k++) {
        ds[k] = kiln_t_datasets[k].d;
        if (kiln_t_datasets[k].arena_off >= 0)
            ds[k].data = arena + kiln_t_datasets[k].arena_off;
    }
    char msg[512];
    kiln_h5quiet q;
    kiln_h5_quiet_begin(&q);
    int st = kiln_netfile_write(out, out, KILN_T_KILN_VERSION, kiln_t_json, kiln_t_json_len, ds, KILN_T_N_DATASETS,
                                msg, sizeof msg);
    kiln_h5_quiet_end(&q);
    free(arena);
    free(features);
    free(targets);
    if (st)
        return fail(prog, "%s%s", msg, "");
    return 0;
}
