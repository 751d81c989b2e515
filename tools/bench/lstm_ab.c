/* lstm_ab.c: the LSTM benchmark's training step (bench_lstm.c: 256 units,
** T 50, batch 32) compiled in several ways in one process, the variants'
** steps alternating, so that a change of a few tenths of a millisecond
** shows through a machine's drift: alternating processes resolve ~1 ms of
** a 43 ms step on a shared VM, this ~0.1 ms (an A/A run agrees within
** that; docs/performance.md, "Reproduce").
**
**     lstm_ab [--steps N] VARIANT VARIANT...
**
** A VARIANT is a comma-separated list of settings, or "default":
**     isa=avx512|avx2|blas  kiln's kernels (the compile option isa)
**     plain                 no fast paths
**     cache=DIR             the JIT cache folder: a hand-edited build of the
**                           generated C placed there (docs/performance.md
**                           says how) is what that variant runs
** Each variant trains its own copy of the model; each round runs every
** variant once, starting one further along each time. Printed per variant:
** the minimum, lower quartile and median of its N step times, and the
** median of its step minus the first variant's step of the same round
** (they ran close together, so drift cancels). Run it with OPENBLAS_NUM_THREADS=1
** for the 1-thread figures. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_lstm.h"
#include "bench_model.h"

enum { MAX_VARIANTS = 8, SETTING_MAX = 256 };

typedef struct variant {
    const char *spec;
    char isa[16];
    char cache[SETTING_MAX];
    bool plain, has_isa, has_cache;
    lstm_net net;
    kiln_program *p;
    double *t; /* per round, seconds */
} variant;

/* v's settings from its spec; false (saying why) on a bad one. */
static bool parse(variant *v)
{
    if (strcmp(v->spec, "default") == 0)
        return true;
    char buf[1024];
    if (strlen(v->spec) >= sizeof buf) {
        fprintf(stderr, "lstm_ab: variant '%.40s...' too long\n", v->spec);
        return false;
    }
    strcpy(buf, v->spec);
    for (char *save = NULL, *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        if (strcmp(s, "plain") == 0) {
            v->plain = true;
        } else if (strncmp(s, "isa=", 4) == 0 && strlen(s + 4) < sizeof v->isa) {
            strcpy(v->isa, s + 4);
            v->has_isa = true;
        } else if (strncmp(s, "cache=", 6) == 0 && s[6] && strlen(s + 6) < sizeof v->cache) {
            strcpy(v->cache, s + 6);
            v->has_cache = true;
        } else {
            fprintf(stderr, "lstm_ab: variant '%s': unknown setting '%s' (isa=NAME, plain, cache=DIR, default)\n",
                    v->spec, s);
            return false;
        }
    }
    return true;
}

static void usage(void)
{
    fprintf(stderr, "usage: lstm_ab [--steps N] VARIANT VARIANT...\n"
                    "  VARIANT: default, or settings joined by commas: isa=avx512|avx2|blas, plain, cache=DIR\n");
}

int main(int argc, char **argv)
{
    int steps = 60, a = 1;
    if (a + 1 < argc && strcmp(argv[a], "--steps") == 0) {
        char *end;
        errno = 0;
        long s = strtol(argv[a + 1], &end, 10);
        if (errno || *end || s < 4 || s > 100000) {
            fprintf(stderr, "lstm_ab: --steps '%s': expected a whole number from 4 to 100000\n", argv[a + 1]);
            return 2;
        }
        steps = (int)s;
        a += 2;
    }
    int nv = argc - a;
    if (nv < 1 || nv > MAX_VARIANTS) {
        usage();
        return 2;
    }
    static variant v[MAX_VARIANTS];
    for (int i = 0; i < nv; i++) {
        v[i].spec = argv[a + i];
        if (!parse(&v[i]))
            return 2;
    }
    for (int i = 0; i < nv; i++) {
        bench_lstm_build(&v[i].net, 256, 50, 32);
        v[i].p = bench_lstm_compile_as(&v[i].net, v[i].has_cache ? v[i].cache : NULL, v[i].has_isa ? v[i].isa : NULL,
                                       v[i].plain);
        bench_lstm_step(&v[i].net, v[i].p); /* warm: first touch of the arena, the library loaded */
        v[i].t = malloc(sizeof *v[i].t * (size_t)steps);
        if (!v[i].t)
            bench_die("lstm_ab", "out of memory");
        printf("variant %d: %s (kernels %s)\n", i, v[i].spec, kiln_program_isa(v[i].p));
    }
    /* the order rotates each round: a step runs colder after a variant that
    ** evicts more (an A/A pair after a plain variant differed by 0.5 ms
    ** when the order was fixed) */
    for (int r = 0; r < steps; r++)
        for (int q = 0; q < nv; q++) {
            const int i = (r + q) % nv;
            double t0 = bench_now();
            bench_lstm_step(&v[i].net, v[i].p);
            v[i].t[r] = bench_now() - t0;
        }
    double *d = malloc(sizeof *d * (size_t)steps), *s = malloc(sizeof *s * (size_t)steps);
    if (!d || !s)
        bench_die("lstm_ab", "out of memory");
    printf("%-40s %9s %9s %9s %14s\n", "ms a step", "min", "q1", "median", "median diff");
    for (int i = 0; i < nv; i++) {
        for (int r = 0; r < steps; r++) {
            d[r] = v[i].t[r] - v[0].t[r];
            s[r] = v[i].t[r];
        }
        qsort(s, (size_t)steps, sizeof *s, bench_cmp_double);
        qsort(d, (size_t)steps, sizeof *d, bench_cmp_double);
        printf("%-40.40s %9.2f %9.2f %9.2f %+14.2f\n", v[i].spec, 1e3 * s[0], 1e3 * s[steps / 4], 1e3 * s[steps / 2],
               1e3 * d[steps / 2]);
    }
    free(d);
    free(s);
    for (int i = 0; i < nv; i++) {
        kiln_program_destroy(v[i].p);
        bench_lstm_free(&v[i].net);
        free(v[i].t);
    }
    return 0;
}
