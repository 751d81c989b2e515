/* main.c: an inference program written by kiln (kiln build --infer,
** kiln_program_write_aot; docs/aot.md). It reads raw little-endian float32
** examples of the model's input (kiln_model_INPUT0_SIZE floats each, one
** after another), runs the model's forward pass on them in batches of at
** most kiln_model_MAX_BATCH, and writes each output in turn as raw float32
** (output 0 for every example, then output 1, ...).
**
**   PROGRAM [--input FILE] [--output FILE]      ("-" or absent: stdin, stdout)
**
** Input that is empty or not a whole number of examples is an error: exit
** 1, a message on stderr, and nothing written (an output file is written
** under a temporary name and renamed only when complete). kiln_model.c is
** the model (kiln_program_export's unit, docs/export.md); this file needs
** only libc. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln_model.h"

#if kiln_model_N_INPUTS != 1 || !kiln_model_INPUT0_BATCHED
#error "an inference program reads one batched input"
#endif

static const char USAGE[] = "usage: %s [--input FILE] [--output FILE]\n"
                            "Reads float32 examples of %d floats (stdin, or FILE), writes the outputs as float32\n"
                            "(stdout, or FILE). See docs/aot.md in kiln.\n";

static int fail(const char *prog, const char *what, const char *path, const char *why)
{
    fprintf(stderr, "%s: %s%s%s%s%s\n", prog, what, path ? " " : "", path ? path : "", why ? ": " : "",
            why ? why : "");
    return 1;
}

/* All of f into *buf (malloc'd), *n bytes. */
static int read_all(FILE *f, char **buf, size_t *n)
{
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    while (b) {
        size_t k = fread(b + len, 1, cap - len, f);
        len += k;
        if (len < cap) {
            if (ferror(f)) {
                free(b);
                return -1;
            }
            *buf = b;
            *n = len;
            return 0;
        }
        char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(b, cap * 2);
        if (!nb)
            free(b);
        b = nb;
        cap *= 2;
    }
    errno = ENOMEM;
    return -1;
}

int main(int argc, char **argv)
{
    const char *prog = argv[0], *in_path = NULL, *out_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf(USAGE, prog, (int)kiln_model_INPUT0_SIZE);
            return 0;
        } else if ((strcmp(argv[i], "--input") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc) {
            *(argv[i][2] == 'i' ? &in_path : &out_path) = argv[i + 1];
            i++;
        } else {
            fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[i]);
            fprintf(stderr, USAGE, prog, (int)kiln_model_INPUT0_SIZE);
            return 2;
        }
    }
    if (in_path && strcmp(in_path, "-") == 0)
        in_path = NULL;
    if (out_path && strcmp(out_path, "-") == 0)
        out_path = NULL;

    FILE *in = in_path ? fopen(in_path, "rb") : stdin;
    if (!in)
        return fail(prog, "cannot open", in_path, strerror(errno));
    char *data = NULL;
    size_t bytes = 0;
    int r = read_all(in, &data, &bytes);
    int e = errno;
    if (in_path)
        fclose(in);
    if (r)
        return fail(prog, "cannot read", in_path ? in_path : "stdin", strerror(e));
    const size_t example = sizeof(float) * (size_t)kiln_model_INPUT0_SIZE;
    if (bytes == 0 || bytes % example != 0) {
        char why[160];
        snprintf(why, sizeof why, "%zu bytes, not a whole number (at least 1) of examples of %zu bytes (%d float32)",
                 bytes, example, (int)kiln_model_INPUT0_SIZE);
        free(data);
        return fail(prog, "input", in_path ? in_path : "(stdin)", why);
    }
    int64_t n = (int64_t)(bytes / example);

    /* every output for every example, then written in order */
    static const int64_t out_size[kiln_model_N_OUTPUTS + 1] = {
#define OUT_SIZE(k) kiln_model_OUTPUT##k##_SIZE
        OUT_SIZE(0),
#if kiln_model_N_OUTPUTS > 1
        OUT_SIZE(1),
#endif
#if kiln_model_N_OUTPUTS > 2
        OUT_SIZE(2),
#endif
#if kiln_model_N_OUTPUTS > 3
#error "an inference program writes at most three outputs"
#endif
    };
    static const int out_batched[kiln_model_N_OUTPUTS + 1] = {
        kiln_model_OUTPUT0_BATCHED,
#if kiln_model_N_OUTPUTS > 1
        kiln_model_OUTPUT1_BATCHED,
#endif
#if kiln_model_N_OUTPUTS > 2
        kiln_model_OUTPUT2_BATCHED,
#endif
    };
    float *outs[kiln_model_N_OUTPUTS];
    size_t out_n[kiln_model_N_OUTPUTS];
    for (int k = 0; k < kiln_model_N_OUTPUTS; k++) {
        out_n[k] = (size_t)out_size[k] * (size_t)(out_batched[k] ? n : 1);
        if (!(outs[k] = malloc(sizeof(float) * out_n[k] + 1)))
            return fail(prog, "out of memory", NULL, NULL);
    }
    kiln_model_weights *w = NULL;
    kiln_model_ctx *ctx = NULL;
    int st = kiln_model_weights_load(NULL, &w);
    if (!st)
        st = kiln_model_create(w, &ctx);
    for (int64_t at = 0; !st && at < n; at += kiln_model_MAX_BATCH) {
        int64_t b = n - at < kiln_model_MAX_BATCH ? n - at : kiln_model_MAX_BATCH;
        const float *inputs[1] = {(const float *)data + at * kiln_model_INPUT0_SIZE};
        float *o[kiln_model_N_OUTPUTS];
        for (int k = 0; k < kiln_model_N_OUTPUTS; k++)
            o[k] = outs[k] + (out_batched[k] ? at * out_size[k] : 0);
        st = kiln_model_forward(ctx, inputs, o, b);
    }
    kiln_model_destroy(ctx);
    kiln_model_weights_free(w);
    free(data);
    if (st)
        return fail(prog, "forward:", NULL, kiln_model_strerror(st));

    /* the output, whole or not at all */
    char *tmp = NULL;
    FILE *out = stdout;
    if (out_path) {
        size_t len = strlen(out_path) + 16;
        int fd = -1;
        if ((tmp = malloc(len)) != NULL) {
            snprintf(tmp, len, "%s.XXXXXX", out_path);
            fd = mkstemp(tmp);
        }
        if (fd < 0 || !(out = fdopen(fd, "wb"))) {
            e = errno;
            if (fd >= 0) {
                close(fd);
                unlink(tmp);
            }
            free(tmp);
            return fail(prog, "cannot write", out_path, strerror(e));
        }
    }
    int ok = 1;
    for (int k = 0; k < kiln_model_N_OUTPUTS; k++) {
        ok = ok && fwrite(outs[k], sizeof(float), out_n[k], out) == out_n[k];
        free(outs[k]);
    }
    e = errno;
    if (out_path) {
        if (fflush(out) != 0 || fsync(fileno(out)) != 0)
            ok = 0;
        e = ok ? e : errno;
        if (fclose(out) != 0)
            ok = 0;
        if (ok && rename(tmp, out_path) != 0) {
            e = errno;
            ok = 0;
        }
        if (!ok)
            unlink(tmp);
        free(tmp);
    } else if (fflush(stdout) != 0) {
        ok = 0;
    }
    if (!ok)
        return fail(prog, "cannot write", out_path ? out_path : "stdout", strerror(e ? e : EIO));
    return 0;
}
