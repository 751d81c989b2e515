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

#include <inttypes.h>

#include "compiler/graph.h"
#include "compiler/util.h"
#include "kiln/aot.h"
#include "kiln/export.h"
#include "runtime/aot_sources.h"
#include "kiln_config.h"
#include "runtime/jit.h"
#include "runtime/network_internal.h"
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
    const char *flags[KILN_CODEGEN_FLAGS_MAX]; /* the JIT's flags for the generated unit */
    int n_flags;
    const char *libs[24];
    int n_libs;
    char words[sizeof KILN_AOT_TRAIN_FLAGS]; /* libs' text, when split */
} build_plan;

/* The flags kiln was configured with for a training program's libraries
** (meson.build, KILN_AOT_TRAIN_FLAGS), split at spaces, then -lm. */
static void training_libs(build_plan *b)
{
    memcpy(b->words, KILN_AOT_TRAIN_FLAGS, sizeof b->words);
    for (char *w = strtok(b->words, " "); w && b->n_libs < 23; w = strtok(NULL, " "))
        b->libs[b->n_libs++] = w;
    b->libs[b->n_libs++] = "-lm";
}

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
    for (int i = 0; i < b->n_flags; i++)
        kiln_strbuf_put(&t, " %s", b->flags[i]);
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

static enum kiln_status build(aot *a, const build_plan *b)
{
    char inc[PATH_CAP + 4];
    char paths[16][PATH_CAP];
    const char *srcs[16];
    const char *extra[64];
    int n = 0;
    if (kiln_snprintf(inc, sizeof inc, "-I%s", a->dir) || a->o->n_cflags > 16)
        return kiln_err_set(a->err, KILN_ERR_ARG, "aot: folder name too long, or too many cflags");
    for (int i = 0; i < b->n_srcs; i++) {
        if (kiln_snprintf(paths[i], sizeof paths[i], "%s/%s", a->dir, b->srcs[i]))
            return kiln_err_set(a->err, KILN_ERR_ARG, "aot: folder name too long");
        srcs[i] = paths[i];
    }
    extra[n++] = inc;
    for (int i = 0; i < b->n_flags; i++)
        extra[n++] = b->flags[i];
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
    return a->o->program ? build(a, &b) : KILN_OK;
}

/* ---- training ------------------------------------------------------------------- */

#define DEFAULT_TRAIN_BATCH 32

/* kiln's sources a training program is built from, at their paths. */
static const char *const TRAIN_FILES[] = {
    "codegen/rt_table.h", "runtime/kernels.h", "runtime/kernels.c", "runtime/gemm.c",
    "runtime/gemm_avx2.c", "runtime/gemm_tile.h", "runtime/netfile.h", "runtime/netfile.c",
};

static const char TRAIN_USAGE[] =
    "Run it:\n\n```\n./program --images IMAGES --labels LABELS -o OUT.h5 [--batch N] [--batches N | --epochs N]\n```\n\n"
    "IMAGES and LABELS: uncompressed IDX files, used in their order (no shuffling). OUT.h5: a kiln\n"
    "network file of the trained parameters (docs/network-files.md in kiln).\n";

typedef struct trainer {
    aot *a;
    const kiln_plan *plan;
    const kiln_graph *g;
    kiln_program_build_facts f;
    int features, targets; /* plan input indices, -1 none */
    int64_t example_size, batch;
} trainer;

/* The inputs train_step reads: one float (B, D) and at most one int32 (B). */
static enum kiln_status find_inputs(trainer *t)
{
    t->features = t->targets = -1;
    for (int i = 0; i < t->plan->n_inputs; i++) {
        int32_t id = t->plan->input_node[i];
        const kiln_node_rec *r = kiln_graph_cnode(t->g, id);
        if (!(t->plan->modes[id] & KILN_MODE_TRAIN))
            continue;
        bool batched = r->shape.rank >= 1 && r->shape.dims[0] == KILN_BATCH;
        if (batched && r->dtype == KILN_DTYPE_F32 && r->shape.rank == 2 && r->shape.dims[1] > 0 && t->features < 0) {
            t->features = i;
            t->example_size = r->shape.dims[1];
        } else if (batched && r->dtype == KILN_DTYPE_I32 && r->shape.rank == 1 && t->targets < 0) {
            t->targets = i;
        } else {
            return kiln_err_set(t->a->err, KILN_ERR_UNSUPPORTED,
                                "aot: input %d (%s) is not what a training program feeds: one float32 (B, D) input "
                                "for the images and one int32 (B,) input for the labels", i, r->name ? r->name : "");
        }
    }
    if (t->features < 0)
        return kiln_err_set(t->a->err, KILN_ERR_UNSUPPORTED,
                            "aot: the training step reads no float32 (B, D) input to feed the images to");
    return KILN_OK;
}

/* The plan's parameter or state that holds store entry e: its arena offset
** and type, or -1. */
static int64_t arena_place(trainer *t, const kiln_param *e, enum kiln_netfile_type *type)
{
    for (int i = 0; i < t->plan->n_params; i++)
        if (kiln_graph_cnode(t->g, t->plan->param_node[i])->param == e) {
            *type = t->g->floatx == KILN_DTYPE_F64 ? KILN_NETFILE_F64 : KILN_NETFILE_F32;
            return t->plan->param_offset[i];
        }
    for (int i = 0; i < t->plan->n_states; i++) {
        const kiln_node_rec *r = kiln_graph_cnode(t->g, t->plan->state_node[i]);
        if (r->param == e) {
            *type = r->dtype == KILN_DTYPE_I32 ? KILN_NETFILE_I32
                    : r->dtype == KILN_DTYPE_F64 ? KILN_NETFILE_F64 : KILN_NETFILE_F32;
            return t->plan->state_offset[i];
        }
    }
    return -1;
}

static void put_words(kiln_strbuf *b, const char *name, const char *arena, int64_t off, int64_t bytes)
{
    kiln_strbuf_put(b, "static const uint32_t %s[%" PRId64 "] = {", name, bytes / 4 + 1);
    for (int64_t k = 0; k < bytes / 4; k++) {
        uint32_t w;
        memcpy(&w, arena + off + 4 * k, 4);
        kiln_strbuf_put(b, "%s0x%08" PRIx32 ",", k % 8 ? "" : "\n    ", w);
    }
    kiln_strbuf_put(b, "\n};\n");
}

/* kiln_train.h and kiln_train_data.c: the program's facts, its arena's
** parameters and states, and the network's description. */
static enum kiln_status write_train_model(trainer *t, kiln_network_desc *d)
{
    aot *a = t->a;
    const kiln_plan *pl = t->plan;
    const char *m = t->f.model;
    const char *arena = kiln_program_arena(a->p); /* deferred updates applied */
    kiln_strbuf h = {0}, c = {0};
    kiln_strbuf_put(&h, "/* kiln_train.h: the model of this training program, written by kiln's\n"
                        "** kiln_program_write_aot (docs/aot.md). */\n"
                        "#ifndef KILN_TRAIN_H\n#define KILN_TRAIN_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n"
                        "#include \"codegen/rt_table.h\"\n#include \"runtime/netfile.h\"\n\n");
    kiln_strbuf_put(&h, "#define KILN_T_ARENA_BYTES INT64_C(%" PRId64 ")\n#define KILN_T_N_INPUTS %d\n"
                        "#define KILN_T_FEATURES %d\n#define KILN_T_TARGETS %d\n#define KILN_T_EXAMPLE_SIZE %" PRId64 "\n"
                        "#define KILN_T_MAX_BATCH %" PRId64 "\n#define KILN_T_BATCH %" PRId64 "\n",
                    t->f.arena_bytes, pl->n_inputs, t->features, t->targets, t->example_size,
                    kiln_program_max_batch(a->p), t->batch);
    kiln_strbuf_put(&h, "#define KILN_T_ISA ");
    kiln_strbuf_put_literal(&h, kiln_program_isa(a->p));
    kiln_strbuf_put(&h, "\n#define KILN_T_FAST_PATHS %d\n#define KILN_T_THREADS %d\n"
                        "#define KILN_T_SMALL_BATCH %" PRId64 "\n#define KILN_T_GEMM_N %d\n#define KILN_T_GEMM_K %d\n"
                        "#define KILN_T_N_SYMBOLS %d\n#define KILN_T_KILN_VERSION ",
                    t->f.fast_paths, t->f.threads, t->f.small_batch, t->f.gemm_n, t->f.gemm_k, KILN_MAX_SYMBOLS);
    kiln_strbuf_put_literal(&h, KILN_VERSION);
    kiln_strbuf_put(&h, "\n\n/* the generated unit's entry points (kiln_unit.c) */\n"
                        "int64_t %s_init(char *arena, int64_t bytes);\n"
                        "int64_t %s_train_step(char *arena, const void *const *inputs, const int64_t *sizes,\n"
                        "                      const kiln_codegen_runtime *rt);\n"
                        "int64_t %s_flush(char *arena, const kiln_codegen_runtime *rt);\n"
                        "#define KILN_T_INIT %s_init\n#define KILN_T_TRAIN_STEP %s_train_step\n#define KILN_T_FLUSH %s_flush\n\n",
                    m, m, m, m, m, m);
    kiln_strbuf_put(&h, "/* bytes of the arena as kiln had them: the parameters, the states */\n"
                        "typedef struct kiln_t_region {\n    int64_t off, bytes;\n    const void *data;\n} kiln_t_region;\n"
                        "extern const kiln_t_region kiln_t_regions[];\nextern const int kiln_t_n_regions;\n\n"
                        "/* the network file's datasets: from the arena at arena_off, or d.data */\n"
                        "typedef struct kiln_t_dataset {\n    kiln_netfile_dataset d;\n    int64_t arena_off;\n} kiln_t_dataset;\n"
                        "#define KILN_T_N_DATASETS %d\nextern const kiln_t_dataset kiln_t_datasets[];\n"
                        "extern const char kiln_t_json[];\nextern const size_t kiln_t_json_len;\n\n#endif\n",
                    d->out.n_entries);

    kiln_strbuf_put(&c, "/* kiln_train_data.c: the arena's parameters and states and the network's\n"
                        "** description, written by kiln (docs/aot.md). */\n#include \"kiln_train.h\"\n\n");
    if (pl->param_bytes % 4 || pl->state_bytes % 4 || pl->off_states % 4)
        return kiln_err_set(a->err, KILN_ERR_UNSUPPORTED, "aot: the arena's slabs are not whole words");
    put_words(&c, "k_params", arena, 0, pl->param_bytes);
    put_words(&c, "k_states", arena, pl->off_states, pl->state_bytes);
    kiln_strbuf_put(&c, "const kiln_t_region kiln_t_regions[] = {\n    {0, INT64_C(%" PRId64 "), k_params},\n"
                        "    {INT64_C(%" PRId64 "), INT64_C(%" PRId64 "), k_states},\n};\nconst int kiln_t_n_regions = 2;\n\n",
                    pl->param_bytes, pl->off_states, pl->state_bytes);
    enum kiln_status st = KILN_OK;
    kiln_strbuf ds = {0};
    kiln_strbuf_put(&ds, "const kiln_t_dataset kiln_t_datasets[] = {\n");
    for (int k = 0; k < d->out.n_entries && !st; k++) {
        const kiln_netjson_entry *e = &d->out.entries[k];
        kiln_netfile_dataset nd;
        enum kiln_netfile_type mem;
        int64_t off = arena_place(t, e->param, &mem);
        if (off < 0) { /* not the program's: its stored values, as constants */
            kiln_err err;
            if ((st = kiln_network_entry_dataset(e, &nd, &err))) {
                kiln_err_set(a->err, st, "aot: %s", err.msg);
                break;
            }
            kiln_strbuf_put(&c, "static const %s k_const%d[%" PRId64 "] = {", nd.mem_type == KILN_NETFILE_I32 ? "int32_t" : "double", k,
                            e->size + 1);
            for (int64_t i = 0; i < e->size; i++) {
                if (nd.mem_type == KILN_NETFILE_I32)
                    kiln_strbuf_put(&c, "%" PRId32 ",", ((const int32_t *)nd.data)[i]);
                else
                    kiln_strbuf_put(&c, "%a,", ((const double *)nd.data)[i]);
            }
            kiln_strbuf_put(&c, "};\n");
            if (nd.mem_type == KILN_NETFILE_I32)
                free((void *)nd.data);
            mem = nd.mem_type;
        }
        enum kiln_netfile_type file = e->dtype == KILN_DTYPE_I32 ? KILN_NETFILE_I32
                                      : e->dtype == KILN_DTYPE_F64 ? KILN_NETFILE_F64 : KILN_NETFILE_F32;
        kiln_strbuf_put(&ds, "    {{");
        kiln_strbuf_put_literal(&ds, e->dataset);
        kiln_strbuf_put(&ds, ", %d, %d, %d, {", (int)file, (int)mem, e->shape.rank);
        for (int i = 0; i < e->shape.rank; i++)
            kiln_strbuf_put(&ds, "%s%" PRId64, i ? ", " : "", e->shape.dims[i]);
        if (off >= 0)
            kiln_strbuf_put(&ds, "}, 0}, INT64_C(%" PRId64 ")},\n", off);
        else
            kiln_strbuf_put(&ds, "}, k_const%d}, -1},\n", k);
    }
    kiln_strbuf_put(&ds, "    {{0}, -1}\n};\n");
    kiln_strbuf_put(&c, "\n%s\nconst char kiln_t_json[] =\n", ds.s ? ds.s : "");
    free(ds.s);
    /* the description in pieces of a line each */
    const char *text = d->out.text;
    size_t len = d->out.len;
    char *piece = malloc(257);
    for (size_t at = 0; piece && at < len; at += 256) {
        size_t n = len - at < 256 ? len - at : 256;
        memcpy(piece, text + at, n);
        piece[n] = 0;
        kiln_strbuf_put(&c, "    ");
        kiln_strbuf_put_literal(&c, piece);
        kiln_strbuf_put(&c, "\n");
    }
    kiln_strbuf_put(&c, "    \"\";\nconst size_t kiln_t_json_len = %zu;\n", len);
    if (!piece || ds.oom || h.oom || c.oom) {
        if (!st)
            st = kiln_err_set(a->err, KILN_ERR_NOMEM, "aot: no memory");
    }
    free(piece);
    if (!st)
        st = put_file(a, "kiln_train.h", h.s, h.n);
    if (!st)
        st = put_file(a, "kiln_train_data.c", c.s, c.n);
    free(h.s);
    free(c.s);
    return st;
}

static enum kiln_status write_train(aot *a)
{
    const kiln_aot_options *o = a->o;
    trainer t = {.a = a, .plan = kiln_program_plan(a->p), .g = kiln_program_graph(a->p)};
    if (!kiln_program_get_build_facts(a->p, &t.f) || !kiln_program_can_train(a->p))
        return kiln_err_set(a->err, KILN_ERR_STATE, "aot: a training program needs a program compiled with a cost");
    if (t.g->floatx != KILN_DTYPE_F32)
        return kiln_err_set(a->err, KILN_ERR_UNSUPPORTED, "aot: a training program computes in float32");
    if (!o->graph || !o->roots || !o->root_names || o->n_roots < 1)
        return kiln_err_set(a->err, KILN_ERR_ARG, "aot: a training program needs the network it writes (graph, roots, "
                            "root_names)");
    t.batch = o->batch ? o->batch : DEFAULT_TRAIN_BATCH;
    if (t.batch > kiln_program_max_batch(a->p))
        t.batch = o->batch ? -1 : kiln_program_max_batch(a->p);
    if (t.batch < 1)
        return kiln_err_set(a->err, KILN_ERR_ARG, "aot: batch %" PRId64 " is past the program's max_batch %" PRId64,
                            o->batch, kiln_program_max_batch(a->p));
    enum kiln_status st = find_inputs(&t);
    if (st)
        return st;
    kiln_network_desc d;
    if ((st = kiln_network_describe(o->graph, o->roots, o->root_names, o->n_roots, "aot", "(the program's network)",
                                    &d))) {
        kiln_err_set(a->err, st, "%s", kiln_graph_errmsg(o->graph));
        kiln_graph_clear_error(o->graph);
    }
    if (!st)
        st = write_train_model(&t, &d);
    kiln_network_desc_free(&d);
    if (st)
        return st;
    if ((st = put_file(a, "kiln_unit.c", t.f.source, strlen(t.f.source))) ||
        (st = put_embedded(a, "runtime/aot/train_main.c", "main.c")))
        return st;
    for (size_t i = 0; i < KILN_ARRAY_LEN(TRAIN_FILES); i++)
        if ((st = put_embedded(a, TRAIN_FILES[i], NULL)))
            return st;
    build_plan b = {.srcs = {"main.c", "kiln_unit.c", "kiln_train_data.c", "runtime/kernels.c", "runtime/gemm.c",
                             "runtime/gemm_avx2.c", "runtime/netfile.c"},
                    .n_srcs = 7};
    for (int i = 0; i < t.f.n_cflags; i++)
        b.flags[b.n_flags++] = t.f.cflags[i];
    training_libs(&b);
    if ((st = put_readme(a, &b, TRAIN_USAGE)))
        return st;
    return o->program ? build(a, &b) : KILN_OK;
}

/* ---- the entry point --------------------------------------------------------------- */

enum kiln_status kiln_program_write_aot(kiln_program *p, const kiln_aot_options *o)
{
    KILN_API_CHECK(p && o);
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
    case KILN_AOT_TRAIN:
        st = write_train(&a);
        break;
    default:
        st = kiln_err_set(a.err, KILN_ERR_ARG, "aot: unknown kind %d", (int)o->kind);
    }
    if (!st)
        kiln_err_clear(a.err);
    return st;
}
