/* aot.c: standalone programs (kiln_program_write_aot, #12 deliverable 5):
** the sources of an executable that runs a compiled model with no libkiln,
** and optionally the executable.
**
** Inference reuses the export (runtime/export.c) whole: the forward unit
** with its small ABI, products through CBLAS (so the bits are the JIT's
** with no_fast_paths), and adds a fixed main.c (runtime/aot/infer_main.c)
** that reads examples and writes outputs through that ABI.
**
** The runtime files are kiln's own sources, embedded in libkiln at build
** time (runtime/aot_sources.h; tools/embed/embed.c), written under the
** folder at the paths they have in kiln's tree, so their #includes work
** with -I<folder>: one source of truth, from a build tree or an installed
** kiln alike. The program is built by the JIT's compiler and flags
** (runtime/jit.c, kiln_jit_build_program), with no build system, and the
** folder's README.md gives that command for people.
** Every file is written under a temporary name and renamed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler/util.h"
#include "kiln/aot.h"
#include "kiln/export.h"
#include "runtime/aot_sources.h"
#include "runtime/jit.h"
#include "runtime/program_internal.h"

#define MODEL "kiln_model"
#define PATH_CAP 4096

kiln_aot_options kiln_aot_options_default(void)
{
    kiln_aot_options o;
    memset(&o, 0, sizeof o);
    o.dir = ".";
    o.kind = KILN_AOT_INFER;
    return o;
}

typedef struct aot {
    kiln_program *p;
    kiln_err *err;
    const kiln_aot_options *o;
    const char *dir;
} aot;

static const kiln_aot_source *embedded(const char *path)
{
    for (int i = 0; i < kiln_aot_n_sources; i++)
        if (strcmp(kiln_aot_sources[i].path, path) == 0)
            return &kiln_aot_sources[i];
    return NULL;
}

/* dir/rel (rel's folders made as needed), whole: a temp name, renamed. */
static enum kiln_status put_file(aot *a, const char *rel, const char *text, size_t n)
{
    char path[PATH_CAP];
    if (kiln_snprintf(path, sizeof path, "%s/%s", a->dir, rel))
        return kiln_err_set(a->err, KILN_ERR_ARG, "aot: folder name too long: %s", kiln_path_show(a->dir).s);
    for (char *s = strchr(path + strlen(a->dir) + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        int r = mkdir(path, 0755);
        int e = errno;
        *s = '/';
        if (r != 0 && e != EEXIST)
            return kiln_err_set(a->err, KILN_ERR_IO, "aot: cannot make the folder of %s: %s", kiln_path_show(path).s,
                                strerror(e));
    }
    if (kiln_write_whole(path, "", 0, text, n) != 0) {
        int e = errno;
        return kiln_err_set(a->err, KILN_ERR_IO, "aot: cannot write %s: %s", kiln_path_show(path).s, strerror(e));
    }
    return KILN_OK;
}

/* An embedded source of kiln's, written at its path (or as rel). */
static enum kiln_status put_embedded(aot *a, const char *src, const char *rel)
{
    const kiln_aot_source *s = embedded(src);
    if (!s)
        return kiln_err_set(a->err, KILN_ERR_STATE, "aot: %s is not among libkiln's embedded sources", src);
    return put_file(a, rel ? rel : src, s->text, s->len);
}

/* ---- building ------------------------------------------------------------------ */

typedef struct build_plan {
    const char *srcs[16]; /* relative to the folder */
    int n_srcs;
    const char *libs[8];
    int n_libs;
} build_plan;

/* README.md: what the folder holds and the command that builds it. */
static enum kiln_status put_readme(aot *a, const build_plan *b, const char *usage)
{
    char *cmd = NULL;
    enum kiln_status st = kiln_jit_program_command(a->o->cc, &cmd, a->err);
    if (st)
        return st;
    kiln_strbuf t = {0};
    kiln_strbuf_put(&t, "# A standalone %s program written by kiln\n\n"
                        "Built with no build system and no libkiln (docs/aot.md in kiln). In this folder:\n\n```\n%s",
                    a->o->kind == KILN_AOT_TRAIN ? "training" : "inference", cmd);
    if (a->o->kind == KILN_AOT_TRAIN)
        kiln_strbuf_put(&t, " -ffp-contract=off");
    for (int i = 0; i < a->o->n_cflags; i++)
        kiln_strbuf_put(&t, " %s", a->o->cflags[i]);
    kiln_strbuf_put(&t, " -I. -o program");
    for (int i = 0; i < b->n_srcs; i++)
        kiln_strbuf_put(&t, " %s", b->srcs[i]);
    for (int i = 0; i < b->n_libs; i++)
        kiln_strbuf_put(&t, " %s", b->libs[i]);
    kiln_strbuf_put(&t, "\n```\n\n(the C compiler and flags kiln's JIT uses; any C11 compiler will do).\n\n%s", usage);
    free(cmd);
    if (t.oom) {
        free(t.s);
        return kiln_err_set(a->err, KILN_ERR_NOMEM, "aot: no memory");
    }
    st = put_file(a, "README.md", t.s, t.n);
    free(t.s);
    return st;
}

static enum kiln_status build(aot *a, const build_plan *b, const char *const *flags, int n_flags)
{
    char inc[PATH_CAP + 4];
    char paths[16][PATH_CAP];
    const char *srcs[16];
    const char *extra[40];
    int n = 0;
    if (kiln_snprintf(inc, sizeof inc, "-I%s", a->dir) || a->o->n_cflags > 16)
        return kiln_err_set(a->err, KILN_ERR_ARG, "aot: folder name too long, or too many cflags");
    for (int i = 0; i < b->n_srcs; i++) {
        if (kiln_snprintf(paths[i], sizeof paths[i], "%s/%s", a->dir, b->srcs[i]))
            return kiln_err_set(a->err, KILN_ERR_ARG, "aot: folder name too long");
        srcs[i] = paths[i];
    }
    extra[n++] = inc;
    for (int i = 0; i < n_flags; i++)
        extra[n++] = flags[i];
    for (int i = 0; i < a->o->n_cflags; i++)
        extra[n++] = a->o->cflags[i];
    for (int i = 0; i < b->n_libs; i++)
        extra[n++] = b->libs[i];
    return kiln_jit_build_program(a->o->cc, srcs, b->n_srcs, a->o->program, extra, n, a->err);
}

/* ---- inference ------------------------------------------------------------------ */

static const char INFER_USAGE[] =
    "Run it:\n\n```\n./program [--input FILE] [--output FILE] < examples.f32 > outputs.f32\n```\n\n"
    "Input: raw little-endian float32, example after example (" MODEL "_INPUT0_SIZE floats each,\n"
    "in " MODEL ".h). Output: each output in turn for every example, raw float32.\n";

static enum kiln_status write_infer(aot *a)
{
    kiln_export_options eo = kiln_export_options_default();
    eo.name = MODEL;
    eo.dir = a->dir;
    eo.blas = true;
    eo.max_batch = a->o->batch;
    eo.cc = a->o->cc;
    enum kiln_status st = kiln_program_export(a->p, &eo);
    if (st)
        return st; /* the message is on p */
    build_plan b = {.srcs = {"main.c", MODEL ".c"}, .n_srcs = 2, .libs = {"-lopenblas", "-lm"}, .n_libs = 2};
    if ((st = put_embedded(a, "runtime/aot/infer_main.c", "main.c")) || (st = put_readme(a, &b, INFER_USAGE)))
        return st;
    return a->o->program ? build(a, &b, NULL, 0) : KILN_OK;
}

/* ---- the entry point --------------------------------------------------------------- */

enum kiln_status kiln_program_write_aot(kiln_program *p, const kiln_aot_options *o)
{
    if (!p)
        return KILN_ERR_ARG;
    aot a = {.p = p, .err = kiln_program_err(p), .o = o};
    if (!o)
        return kiln_err_set(a.err, KILN_ERR_ARG, "aot: options are NULL");
    if (!kiln_program_plan(p))
        return kiln_err_set(a.err, KILN_ERR_STATE, "aot: the program is not compiled");
    if (o->n_cflags < 0 || (o->n_cflags && !o->cflags) || o->batch < 0)
        return kiln_err_set(a.err, KILN_ERR_ARG, "aot: bad cflags list or batch");
    a.dir = o->dir && *o->dir ? o->dir : ".";
    if (mkdir(a.dir, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        return kiln_err_set(a.err, KILN_ERR_IO, "aot: cannot make the folder %s: %s", kiln_path_show(a.dir).s,
                            strerror(e));
    }
    enum kiln_status st;
    switch (o->kind) {
    case KILN_AOT_INFER:
        st = write_infer(&a);
        break;
    default:
        st = kiln_err_set(a.err, KILN_ERR_ARG, "aot: unknown kind %d", (int)o->kind);
    }
    if (!st)
        kiln_err_clear(a.err);
    return st;
}
