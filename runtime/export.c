/* export.c: an inference-only C unit, its header, and optionally its
** weights file and shared object, from a compiled program (#12).
**
** The program graph is planned again for the outputs alone (no cost, no
** gradients, no updates: memplan gives only the forward nodes a mode), and
** codegen/emit_c.c prints it in export mode: names from kiln's namespace,
** parameters and states read from one read-only blob, an arena of values
** only, products in plain C loops (or CBLAS when asked), no call back into
** libkiln. This file writes the ABI around that: the weights (embedded as
** exact hex float literals, or a side file with a checked header), the
** context (its own arena; the weights shared), forward with every argument
** checked, and the header declaring it all.
**
** All or nothing: the files are written, and NAME.so built, in a fresh
** folder made inside dir (mkdtemp), then renamed into place, the library
** last, once each exists and no target is a folder; the folder and what is
** left in it are removed on every path out. A failed export (a write, the
** compiler, an output path that is a folder) leaves no new file and no
** partial one; only a rename failing after the first (the checks passed)
** can leave some new files beside old ones.
**
** kiln_network_export compiles a loaded network's roots as a forward-only
** program (kiln_compile) and exports that: the program is the exporter's
** input either way, so both paths print the same code.
**
** Decisions, written down in docs/export.md:
**   - the largest batch is fixed at export (NAME_MAX_BATCH): a context's
**     scratch is allocated once, in NAME_create, never in NAME_forward;
**   - NAME_forward copies each output into the caller's array (outputs are
**     small; the caller owns where they live);
**   - the weights file is little-endian with a 32-byte header: "KILNWTS1",
**     u32 ABI version, u32 header bytes (32), u64 payload bytes, u64
**     FNV-1a-64 of the payload; NAME_weights_load checks each, and that
**     nothing follows the payload. FNV-1a catches corruption, not forgery
**     (a weights file is trusted as the .so is).
** The model's names reach the files only as escaped string literals and
** sanitised comments (kiln_strbuf_put_literal, emit_c.c's put_comment_text).
** Rejected: generating the ABI inside emit_c.c (it would grow a second job);
** a global weights pointer loaded on first use (hidden mutable state, a
** lock in the generated code). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/emit_c.h"
#include "compiler/memplan.h"
#include "compiler/util.h"
#include "kiln/export.h"
#include "kiln_config.h"
#include "runtime/jit.h"
#include "runtime/network_internal.h"
#include "runtime/program_internal.h"

#define EXPORT_NAME_MAX 48
#define EXPORT_WEIGHTS_MAGIC "KILNWTS1"
#define EXPORT_HEADER_BYTES 32
#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

kiln_export_options kiln_export_options_default(void)
{
    kiln_export_options o;
    memset(&o, 0, sizeof o);
    o.name = "model";
    return o;
}

/* ---- text ------------------------------------------------------------------ */

typedef kiln_strbuf xbuf;
#define xput kiln_strbuf_put

/* A float as an exact C literal: hex, or a <math.h> macro. */
static void put_float(xbuf *b, float v)
{
    if (isnan(v))
        xput(b, "NAN");
    else if (isinf(v))
        xput(b, v < 0 ? "-INFINITY" : "INFINITY");
    else
        xput(b, "%af", (double)v);
}

#define fnv1a kiln_fnv1a

/* ---- what is exported -------------------------------------------------------- */

typedef struct port {
    int32_t node;
    int plan_input; /* inputs: the plan's index (the generated code's inputs[]) */
    const char *name;
    int rank;
    int64_t dims[KILN_MAX_RANK]; /* -1: the batch */
    bool batched;
    int64_t size;                /* floats per example, or in all when not batched */
} port;

typedef struct exporter {
    kiln_program *p;
    kiln_err *err;
    const kiln_graph *g;
    const kiln_plan *prog;   /* the program's plan (where the parameters are) */
    kiln_plan plan;          /* the forward alone */
    bool planned;
    const kiln_export_options *o;
    const char *name, *dir;
    char *work;              /* the fresh folder in dir the files are made in */
    port *in, *out;
    int n_in, n_out;
    char *blob;              /* the weights */
    int64_t blob_bytes;
    int64_t max_batch;
} exporter;

/* Shape of node id as a port: constants, and the batch on axis 0 at most. */
static enum kiln_status make_port(exporter *x, port *pt, int32_t id, const char *what, int k)
{
    const kiln_node_rec *r = kiln_graph_cnode(x->g, id);
    pt->node = id;
    pt->name = r->name ? r->name : "";
    pt->rank = r->shape.rank;
    pt->size = 1;
    if (r->dtype != KILN_DTYPE_F32)
        return kiln_err_set(x->err, KILN_ERR_UNSUPPORTED, "export: %s %d '%s' is %s; an export takes and gives float32",
                            what, k, pt->name, kiln_dtype_name(r->dtype));
    for (int a = 0; a < r->shape.rank; a++) {
        int64_t d = r->shape.dims[a];
        if (d == KILN_BATCH && a == 0) {
            pt->batched = true;
            pt->dims[a] = -1;
            continue;
        }
        if (d <= 0) {
            char sh[KILN_SHAPE_STR_MAX];
            return kiln_err_set(x->err, KILN_ERR_UNSUPPORTED,
                                "export: %s %d '%s' has shape %s; an export's only symbolic dim is the batch, on "
                                "axis 0", what, k, pt->name, kiln_shape_str(x->g, &r->shape, sh, sizeof sh));
        }
        pt->dims[a] = d;
        pt->size *= d;
    }
    return KILN_OK;
}

/* Plan the outputs alone and check that every node on their path can be
** exported. */
static enum kiln_status plan_forward(exporter *x)
{
    kiln_program_roots roots;
    if (!kiln_program_get_roots(x->p, &roots) || !x->prog)
        return kiln_err_set(x->err, KILN_ERR_STATE, "export: the program is not compiled");
    if (roots.n_outputs == 0)
        return kiln_err_set(x->err, KILN_ERR_ARG,
                            "export: the program has no outputs (kiln_compile_options.outputs): nothing to export");
    if (x->g->floatx != KILN_DTYPE_F32)
        return kiln_err_set(x->err, KILN_ERR_UNSUPPORTED, "export: the program computes in %s; exports are float32",
                            kiln_dtype_name(x->g->floatx));
    int64_t max[KILN_MAX_SYMBOLS];
    memcpy(max, x->prog->max_sizes, sizeof max);
    x->max_batch = x->o->max_batch ? x->o->max_batch : kiln_program_max_batch(x->p);
    max[0] = x->max_batch;
    kiln_plan_request req = {.cost = -1, .outputs = roots.outputs, .n_outputs = roots.n_outputs,
                             .params = x->prog->param_node, .n_params = x->prog->n_params, .max_sizes = max};
    enum kiln_status st = kiln_plan_build(&x->plan, x->g, &req, x->err);
    if (st)
        return st;
    x->planned = true;
    for (int32_t id = 0; id < x->plan.n; id++) {
        const kiln_node_rec *r = kiln_graph_cnode(x->g, id);
        if (!x->plan.modes[id])
            continue;
        if (r->op == KILN_OP_SCAN || r->op == KILN_OP_RANDOM || r->op == KILN_OP_RNG_NEXT)
            return kiln_err_set(x->err, KILN_ERR_UNSUPPORTED, "export: node %d (%s%s%s) is on the outputs' path; "
                                "scans and random draws are not exported yet", (int)id, kiln_op_info_of(r->op)->name,
                                r->name ? " " : "", r->name ? r->name : "");
        for (int a = 0; a < r->shape.rank; a++) {
            kiln_mono m;
            bool ok = kiln_dim_mono(x->g, r->shape.dims[a], &m);
            for (int k = 1; ok && k < KILN_MAX_SYMBOLS; k++)
                ok = m.e[k] == 0;
            if (!ok) {
                char sh[KILN_SHAPE_STR_MAX];
                return kiln_err_set(x->err, KILN_ERR_UNSUPPORTED,
                                    "export: node %d (%s) has shape %s; an export's only symbol is the batch", (int)id,
                                    kiln_op_info_of(r->op)->name, kiln_shape_str(x->g, &r->shape, sh, sizeof sh));
            }
        }
    }
    x->in = calloc((size_t)x->plan.n_inputs + 1, sizeof *x->in);
    x->out = calloc((size_t)roots.n_outputs + 1, sizeof *x->out);
    if (!x->in || !x->out)
        return kiln_err_set(x->err, KILN_ERR_NOMEM, "export: no memory");
    for (int i = 0; i < x->plan.n_inputs; i++) {
        int32_t id = x->plan.input_node[i];
        if (!(x->plan.modes[id] & KILN_MODE_FORWARD))
            continue;
        x->in[x->n_in].plan_input = i;
        if ((st = make_port(x, &x->in[x->n_in], id, "input", x->n_in)))
            return st;
        x->n_in++;
    }
    for (int k = 0; k < roots.n_outputs; k++, x->n_out++)
        if ((st = make_port(x, &x->out[k], roots.outputs[k], "output", k)))
            return st;
    return KILN_OK;
}

/* The weights blob (kiln_emit_weight_offset's layout) from p's arena. */
static enum kiln_status gather_weights(exporter *x)
{
    const kiln_plan *ep = &x->plan, *pp = x->prog;
    const char *arena = kiln_program_arena(x->p);
    if (!arena)
        return kiln_err_set(x->err, KILN_ERR_STATE, "export: the program has no parameters loaded");
    x->blob_bytes = kiln_emit_weight_bytes(ep);
    x->blob = calloc(1, (size_t)x->blob_bytes + 4);
    if (!x->blob)
        return kiln_err_set(x->err, KILN_ERR_NOMEM, "export: no memory for %" PRId64 " bytes of weights",
                            x->blob_bytes);
    for (int i = 0; i < ep->n_params; i++) /* the same parameters, in the same order */
        memcpy(x->blob + ep->param_offset[i], arena + pp->param_offset[i],
               (size_t)kiln_plan_value_bytes(ep, ep->param_node[i], ep->max_sizes));
    for (int i = 0; i < ep->n_states; i++) {
        int32_t id = ep->state_node[i];
        int j = kiln_plan_state_index(pp, id);
        const kiln_node_rec *r = kiln_graph_cnode(x->g, id);
        if (j < 0 || r->dtype != KILN_DTYPE_F32)
            return kiln_err_set(x->err, KILN_ERR_UNSUPPORTED, "export: state %d (%s) %s", (int)id,
                                r->name ? r->name : "", j < 0 ? "is not the program's" : "is not float32");
        memcpy(x->blob + kiln_emit_weight_offset(ep, ep->state_offset[i]), arena + pp->state_offset[j],
               (size_t)kiln_plan_value_bytes(ep, id, ep->max_sizes));
    }
    return KILN_OK;
}

/* ---- the files ----------------------------------------------------------------- */

static void header_port(xbuf *h, const char *nm, const char *kind, int k, const port *pt)
{
    xput(h, "/* %s %d: float32 (", kind, k);
    for (int a = 0; a < pt->rank; a++) {
        if (pt->dims[a] < 0)
            xput(h, "%sB", a ? ", " : "");
        else
            xput(h, "%s%" PRId64, a ? ", " : "", pt->dims[a]);
    }
    xput(h, "%s) */\n", pt->rank == 1 ? "," : "");
    xput(h, "#define %s_%s%d_NAME ", nm, kind[0] == 'i' ? "INPUT" : "OUTPUT", k);
    kiln_strbuf_put_literal(h, pt->name);
    xput(h, "\n#define %s_%s%d_RANK %d\n", nm, kind[0] == 'i' ? "INPUT" : "OUTPUT", k, pt->rank);
    xput(h, "#define %s_%s%d_SHAPE {", nm, kind[0] == 'i' ? "INPUT" : "OUTPUT", k);
    for (int a = 0; a < pt->rank; a++)
        xput(h, "%s%" PRId64, a ? ", " : "", pt->dims[a]);
    xput(h, "%s}\n", pt->rank ? "" : "0");
    xput(h, "#define %s_%s%d_BATCHED %d\n", nm, kind[0] == 'i' ? "INPUT" : "OUTPUT", k, pt->batched);
    xput(h, "#define %s_%s%d_SIZE %" PRId64 "%s\n", nm, kind[0] == 'i' ? "INPUT" : "OUTPUT", k, pt->size,
         pt->batched ? " /* floats per example: batch * this in all */" : " /* floats in all, whatever the batch */");
}

static void write_header(exporter *x, xbuf *h)
{
    const char *nm = x->name;
    xput(h, "/* %s.h: generated by kiln %s (%s), do not edit.\n"
            "**\n"
            "** An inference-only model: the forward pass of a kiln program, with its\n"
            "** weights %s%s%s. It needs libc and libm%s, nothing of kiln (docs/export.md).\n"
            "**\n"
            "** Use: %s_weights_load, then a context per thread (%s_create), then\n"
            "** %s_forward as often as wanted. A context holds its own scratch; contexts\n"
            "** share the weights, read-only, so two threads with two contexts may run\n"
            "** at once; one context serves one thread at a time. Every function returns\n"
            "** %s_OK (0) or an error status; %s_strerror names it. */\n",
         nm, KILN_VERSION, KILN_CODEGEN_VERSION, x->o->weights_file ? "in a side file (" : "compiled in",
         x->o->weights_file ? nm : "", x->o->weights_file ? ".weights)" : "", x->o->blas ? " and CBLAS" : "", nm, nm,
         nm, nm, nm);
    xput(h, "#ifndef KILN_EXPORT_%s_H\n#define KILN_EXPORT_%s_H\n\n#include <stdint.h>\n\n", nm, nm);
    xput(h, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    xput(h, "/* The ABI of this header; %s_abi_version() says which the library has. */\n", nm);
    xput(h, "#define %s_ABI_VERSION %d\n", nm, KILN_EXPORT_ABI_VERSION);
    xput(h, "/* Largest batch %s_forward takes (fixed at export; the scratch is sized for it). */\n", nm);
    xput(h, "#define %s_MAX_BATCH %" PRId64 "\n", nm, x->max_batch);
    xput(h, "/* 1: weights compiled in (%s_weights_load takes NULL); 0: in a file. */\n", nm);
    xput(h, "#define %s_WEIGHTS_EMBEDDED %d\n", nm, !x->o->weights_file);
    xput(h, "#define %s_WEIGHT_BYTES %" PRId64 "\n", nm, x->blob_bytes);
    xput(h, "#define %s_N_INPUTS %d\n#define %s_N_OUTPUTS %d\n\n", nm, x->n_in, nm, x->n_out);
    xput(h, "/* Inputs and outputs, in the order of %s_forward's arrays: name, rank,\n"
            "** shape (-1: the batch), whether the batch is axis 0, floats per example\n"
            "** (batched) or in all. Row-major, example after example. */\n", nm);
    for (int k = 0; k < x->n_in; k++)
        header_port(h, nm, "input", k, &x->in[k]);
    for (int k = 0; k < x->n_out; k++)
        header_port(h, nm, "output", k, &x->out[k]);
    xput(h, "\nenum %s_status {\n"
            "    %s_OK = 0,\n"
            "    %s_ERR_ARG = 1,    /* NULL where an array is needed, batch outside 1..MAX_BATCH */\n"
            "    %s_ERR_NOMEM = 2,  /* an allocation failed */\n"
            "    %s_ERR_IO = 3,     /* the weights file cannot be opened or read */\n"
            "    %s_ERR_FORMAT = 4, /* the weights file is not this model's: magic, ABI, size, hash, endianness */\n"
            "    %s_ERR_DATA = 5    /* an index read from the inputs is out of range */\n"
            "};\n\n", nm, nm, nm, nm, nm, nm, nm);
    xput(h, "typedef struct %s_weights %s_weights;\ntypedef struct %s_ctx %s_ctx;\n\n", nm, nm, nm, nm);
    xput(h, "/* %s_ABI_VERSION of the library (check it after dlopen). */\nint %s_abi_version(void);\n", nm, nm);
    xput(h, "/* A status as a short English phrase (static). */\nconst char *%s_strerror(int status);\n", nm);
    xput(h, "/* The weights: path NULL for weights compiled in (%s_WEIGHTS_EMBEDDED), else\n"
            "** the weights file, read and checked whole. *out set on success (else NULL);\n"
            "** free with %s_weights_free after the last context using it is destroyed. */\n"
            "int %s_weights_load(const char *path, %s_weights **out);\n"
            "void %s_weights_free(%s_weights *w);\n", nm, nm, nm, nm, nm, nm);
    xput(h, "/* A context over w (borrowed: it must outlive the context), with scratch\n"
            "** for %s_MAX_BATCH examples. *out set on success (else NULL). */\n"
            "int %s_create(const %s_weights *w, %s_ctx **out);\n"
            "void %s_destroy(%s_ctx *ctx); /* NULL: nothing */\n", nm, nm, nm, nm, nm, nm);
    xput(h, "/* The outputs of a batch: inputs[k] holds batch * %s_INPUTk_SIZE floats\n"
            "** (or SIZE when not batched); outputs[k] receives as many of output k's.\n"
            "** Never allocates. %s_ERR_ARG for a NULL array or a batch outside\n"
            "** 1..%s_MAX_BATCH (nothing written). */\n"
            "int %s_forward(%s_ctx *ctx, const float *const *inputs, float *const *outputs, int64_t batch);\n",
         nm, nm, nm, nm, nm);
    xput(h, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

/* NAME_weights_load for weights compiled in, or read from the side file. */
static void write_loader(exporter *x, xbuf *c)
{
    const char *nm = x->name;
    if (!x->o->weights_file) {
        xput(c, "\n/* The weights, in the blob's layout (parameter slab, then states). */\n"
                "static const float k_weight_data[%" PRId64 "] __attribute__((aligned(64))) = {",
             x->blob_bytes / 4 + 1);
        const float *f = (const float *)x->blob;
        for (int64_t i = 0; i < x->blob_bytes / 4; i++) {
            xput(c, "%s%s", i ? "," : "", i % 6 ? " " : "\n    ");
            put_float(c, f[i]);
        }
        xput(c, "%s0};\n", x->blob_bytes ? ",\n    " : "");
        xput(c, "static const %s_weights k_embedded = {(const char *)k_weight_data, 0};\n\n", nm);
        xput(c, "int %s_weights_load(const char *path, %s_weights **out)\n{\n"
                "    if (!out)\n        return %s_ERR_ARG;\n"
                "    *out = 0;\n"
                "    if (path)\n        return %s_ERR_ARG; /* the weights are compiled in */\n"
                "    *out = (%s_weights *)&k_embedded;\n    return %s_OK;\n}\n\n"
                "void %s_weights_free(%s_weights *w) { (void)w; }\n",
             nm, nm, nm, nm, nm, nm, nm, nm);
        return;
    }
    xput(c, "\nstatic uint64_t k_le(const unsigned char *p, int n)\n{\n"
            "    uint64_t v = 0;\n    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];\n    return v;\n}\n\n");
    xput(c, "/* Header: \"%s\", u32 ABI version, u32 header bytes, u64 payload bytes,\n"
            "** u64 FNV-1a-64 of the payload; then the payload, little-endian floats. */\n"
            "int %s_weights_load(const char *path, %s_weights **out)\n{\n"
            "    if (!out)\n        return %s_ERR_ARG;\n"
            "    *out = 0;\n"
            "    if (!path)\n        return %s_ERR_ARG;\n"
            "    const union { uint32_t u; unsigned char c[4]; } one = {1};\n"
            "    if (one.c[0] != 1)\n        return %s_ERR_FORMAT; /* the payload is little-endian */\n"
            "    FILE *f = fopen(path, \"rb\");\n"
            "    if (!f)\n        return %s_ERR_IO;\n"
            "    unsigned char h[%d];\n"
            "    int st = %s_OK;\n"
            "    if (fread(h, 1, sizeof h, f) != sizeof h || memcmp(h, \"%s\", 8) != 0 ||\n"
            "        k_le(h + 8, 4) != %s_ABI_VERSION || k_le(h + 12, 4) != sizeof h ||\n"
            "        k_le(h + 16, 8) != (uint64_t)%s_WEIGHT_BYTES)\n"
            "        st = %s_ERR_FORMAT;\n"
            "    %s_weights *w = st ? 0 : malloc(sizeof *w);\n"
            "    char *data = w ? aligned_alloc(64, (%s_WEIGHT_BYTES + 64) / 64 * 64) : 0;\n"
            "    if (!st && !data)\n        st = %s_ERR_NOMEM;\n"
            "    if (!st && (fread(data, 1, %s_WEIGHT_BYTES, f) != (size_t)%s_WEIGHT_BYTES || fgetc(f) != EOF))\n"
            "        st = ferror(f) ? %s_ERR_IO : %s_ERR_FORMAT; /* short, or bytes after the payload */\n"
            "    if (!st) {\n"
            "        uint64_t hash = UINT64_C(0x%016" PRIx64 ");\n"
            "        for (int64_t i = 0; i < %s_WEIGHT_BYTES; i++)\n"
            "            hash = (hash ^ (unsigned char)data[i]) * UINT64_C(0x%016" PRIx64 ");\n"
            "        if (hash != k_le(h + 24, 8))\n            st = %s_ERR_FORMAT;\n"
            "    }\n"
            "    fclose(f);\n"
            "    if (st) {\n        free(data);\n        free(w);\n        return st;\n    }\n"
            "    w->data = data;\n    w->owned = data;\n    *out = w;\n    return %s_OK;\n}\n\n"
            "void %s_weights_free(%s_weights *w)\n{\n    if (w) {\n        free(w->owned);\n        free(w);\n    }\n}\n",
         EXPORT_WEIGHTS_MAGIC, nm, nm, nm, nm, nm, nm, EXPORT_HEADER_BYTES, nm, EXPORT_WEIGHTS_MAGIC, nm, nm, nm,
         nm, nm, nm, nm, nm, nm, nm, FNV_OFFSET, nm, FNV_PRIME, nm, nm, nm, nm);
}

static void write_source(exporter *x, xbuf *c, const char *unit)
{
    const char *nm = x->name;
    xput(c, "%s", unit);
    xput(c, "\n/* ---- the ABI (%s.h) ---- */\n\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n"
            "#include \"%s.h\"\n\n", nm, nm);
    xput(c, "_Static_assert(ARENA_BYTES >= 0, \"arena\");\n");
    xput(c, "struct %s_weights {\n    const char *data; /* the blob: params, then states */\n    void *owned;\n};\n", nm);
    xput(c, "struct %s_ctx {\n    const char *weights;\n    char *arena; /* values only, for %s_MAX_BATCH */\n};\n", nm,
         nm);
    write_loader(x, c);
    xput(c, "\nint %s_abi_version(void) { return %s_ABI_VERSION; }\n\n", nm, nm);
    xput(c, "const char *%s_strerror(int status)\n{\n"
            "    switch (status) {\n"
            "    case %s_OK: return \"ok\";\n"
            "    case %s_ERR_ARG: return \"bad argument (NULL array, or batch outside 1..MAX_BATCH)\";\n"
            "    case %s_ERR_NOMEM: return \"out of memory\";\n"
            "    case %s_ERR_IO: return \"weights file: cannot open or read\";\n"
            "    case %s_ERR_FORMAT: return \"weights file: not this model's (magic, ABI version, size or hash)\";\n"
            "    case %s_ERR_DATA: return \"an index in the inputs is out of range\";\n"
            "    default: return \"unknown status\";\n    }\n}\n\n",
         nm, nm, nm, nm, nm, nm, nm);
    xput(c, "int %s_create(const %s_weights *w, %s_ctx **out)\n{\n"
            "    if (!out)\n        return %s_ERR_ARG;\n"
            "    *out = 0;\n"
            "    if (!w)\n        return %s_ERR_ARG;\n"
            "    %s_ctx *c = malloc(sizeof *c);\n"
            "    char *arena = c ? aligned_alloc(64, (ARENA_BYTES + 64) / 64 * 64) : 0;\n"
            "    if (!arena) {\n        free(c);\n        return %s_ERR_NOMEM;\n    }\n"
            "    memset(arena, 0, (ARENA_BYTES + 64) / 64 * 64);\n"
            "    c->weights = w->data;\n    c->arena = arena;\n    *out = c;\n    return %s_OK;\n}\n\n",
         nm, nm, nm, nm, nm, nm, nm, nm);
    xput(c, "void %s_destroy(%s_ctx *ctx)\n{\n    if (ctx) {\n        free(ctx->arena);\n        free(ctx);\n    }\n}\n\n",
         nm, nm);
    xput(c, "int %s_forward(%s_ctx *ctx, const float *const *inputs, float *const *outputs, int64_t batch)\n{\n"
            "    if (!ctx || !outputs || batch < 1 || batch > %s_MAX_BATCH)\n        return %s_ERR_ARG;\n",
         nm, nm, nm, nm);
    xput(c, "    if (%s_N_INPUTS > 0 && !inputs)\n        return %s_ERR_ARG;\n", nm, nm);
    xput(c, "    const void *in[%d] = {0}; /* by the plan's input index */\n", x->plan.n_inputs + 1);
    for (int k = 0; k < x->n_in; k++)
        xput(c, "    if (!(in[%d] = inputs[%d]))\n        return %s_ERR_ARG;\n", x->in[k].plan_input, k, nm);
    for (int k = 0; k < x->n_out; k++)
        xput(c, "    if (!outputs[%d])\n        return %s_ERR_ARG;\n", k, nm);
    xput(c, "    const int64_t sizes[%d] = {batch};\n", KILN_MAX_SYMBOLS);
    xput(c, "    return %s_run(ctx->arena, ctx->weights, in, outputs, sizes) ? %s_ERR_DATA : %s_OK;\n}\n", nm, nm, nm);
}

/* Write text to dir/name.ext whole: a temp file, renamed. */
static enum kiln_status write_file(exporter *x, const char *ext, const void *head, size_t head_n, const void *data,
                                   size_t n)
{
    char path[4096];
    if (kiln_snprintf(path, sizeof path, "%s/%s.%s", x->work, x->name, ext))
        return kiln_err_set(x->err, KILN_ERR_ARG, "export: folder name too long: %s", kiln_path_show(x->dir).s);
    if (kiln_write_whole(path, head, head_n, data, n) != 0) {
        int e = errno;
        return kiln_err_set(x->err, KILN_ERR_IO, "export: cannot write %s: %s", kiln_path_show(path).s, strerror(e));
    }
    return KILN_OK;
}

static enum kiln_status write_files(exporter *x)
{
    kiln_emit_options eo = {.model = x->name, .has_forward = true, .no_fast_paths = true, .exported = true,
                            .export_blas = x->o->blas, .n_outputs = x->n_out};
    int32_t *outs = malloc(sizeof *outs * ((size_t)x->n_out + 1));
    if (!outs)
        return kiln_err_set(x->err, KILN_ERR_NOMEM, "export: no memory");
    for (int k = 0; k < x->n_out; k++)
        outs[k] = x->out[k].node;
    eo.outputs = outs;
    char *unit = NULL;
    kiln_emit_info info;
    enum kiln_status st = kiln_emit_c(&x->plan, &eo, &unit, &info, x->err);
    free(outs);
    if (st)
        return st;
    xbuf h = {0}, c = {0};
    write_header(x, &h);
    write_source(x, &c, unit);
    free(unit);
    if (h.oom || c.oom) {
        free(h.s);
        free(c.s);
        return kiln_err_set(x->err, KILN_ERR_NOMEM, "export: no memory for the source");
    }
    st = write_file(x, "h", "", 0, h.s, h.n);
    if (!st)
        st = write_file(x, "c", "", 0, c.s, c.n);
    free(h.s);
    free(c.s);
    if (!st && x->o->weights_file) {
        unsigned char head[EXPORT_HEADER_BYTES];
        uint64_t fields[3] = {(uint64_t)KILN_EXPORT_ABI_VERSION | (uint64_t)EXPORT_HEADER_BYTES << 32,
                              (uint64_t)x->blob_bytes, fnv1a((const unsigned char *)x->blob, (size_t)x->blob_bytes)};
        memcpy(head, EXPORT_WEIGHTS_MAGIC, 8);
        for (int k = 0; k < 3; k++)
            for (int b = 0; b < 8; b++)
                head[8 + 8 * k + b] = (unsigned char)(fields[k] >> (8 * b));
        /* the payload as the host holds it: kiln runs on little-endian hosts */
        st = write_file(x, "weights", head, sizeof head, x->blob, (size_t)x->blob_bytes);
    }
    return st;
}

/* NAME.so from NAME.c with the JIT's compiler and flags. */
static enum kiln_status build_library(exporter *x)
{
    char src[4096], so[4096], inc[4096 + 4];
    if (kiln_snprintf(src, sizeof src, "%s/%s.c", x->work, x->name) ||
        kiln_snprintf(so, sizeof so, "%s/%s.so", x->work, x->name) ||
        kiln_snprintf(inc, sizeof inc, "-I%s", x->work))
        return kiln_err_set(x->err, KILN_ERR_ARG, "export: folder name too long");
    const char **extra = calloc((size_t)x->o->n_cflags + 5, sizeof *extra);
    if (!extra)
        return kiln_err_set(x->err, KILN_ERR_NOMEM, "export: no memory");
    int n = 0;
    extra[n++] = inc;
    extra[n++] = "-ffp-contract=off"; /* as the JIT: no FMA contraction where the products use AVX2 and FMA */
    for (int i = 0; i < x->o->n_cflags; i++)
        extra[n++] = x->o->cflags[i];
    if (x->o->blas)
        extra[n++] = "-lopenblas";
    extra[n++] = "-lm";
    enum kiln_status st = kiln_jit_build_file(x->o->cc, src, so, extra, n, x->err);
    free(extra);
    return st;
}

/* The files of an export, in the order they are put in place. */
static const char *const FILE_EXTS[] = {"h", "c", "weights", "so"};
enum { N_FILE_EXTS = 4 };

/* Where the file of extension FILE_EXTS[k] made in work goes. */
static int final_path(const exporter *x, int k, char *buf, size_t cap)
{
    if (k == N_FILE_EXTS - 1 && x->o->library && *x->o->library)
        return kiln_snprintf(buf, cap, "%s", x->o->library);
    return kiln_snprintf(buf, cap, "%s/%s.%s", x->dir, x->name, FILE_EXTS[k]);
}

/* A fresh folder in dir to make the files in. */
static enum kiln_status make_work(exporter *x)
{
    char tmpl[4096];
    if (kiln_snprintf(tmpl, sizeof tmpl, "%s/.kiln-export-XXXXXX", x->dir))
        return kiln_err_set(x->err, KILN_ERR_ARG, "export: folder name too long: %s", kiln_path_show(x->dir).s);
    if (!mkdtemp(tmpl)) {
        int e = errno;
        char first[4096 + 64];
        snprintf(first, sizeof first, "%s/%s.h", x->dir, x->name);
        return kiln_err_set(x->err, KILN_ERR_IO, "export: cannot write %s (nor any file in that folder): %s",
                            kiln_path_show(first).s, strerror(e));
    }
    if (!(x->work = kiln_strdup(tmpl))) {
        rmdir(tmpl);
        return kiln_err_set(x->err, KILN_ERR_NOMEM, "export: no memory");
    }
    return KILN_OK;
}

/* Put the files made in work in place: first check that no target is a
** folder, then rename them, the library last. */
static enum kiln_status commit_files(exporter *x)
{
    char from[4096], to[4096];
    bool made[N_FILE_EXTS];
    for (int k = 0; k < N_FILE_EXTS; k++) {
        struct stat sb;
        if (kiln_snprintf(from, sizeof from, "%s/%s.%s", x->work, x->name, FILE_EXTS[k]) ||
            final_path(x, k, to, sizeof to))
            return kiln_err_set(x->err, KILN_ERR_ARG, "export: output path too long");
        made[k] = lstat(from, &sb) == 0;
        if (made[k] && stat(to, &sb) == 0 && S_ISDIR(sb.st_mode))
            return kiln_err_set(x->err, KILN_ERR_IO, "export: cannot write %s: it is a folder",
                                kiln_path_show(to).s);
    }
    for (int k = 0; k < N_FILE_EXTS; k++) {
        if (!made[k])
            continue;
        if (kiln_snprintf(from, sizeof from, "%s/%s.%s", x->work, x->name, FILE_EXTS[k]) ||
            final_path(x, k, to, sizeof to))
            return kiln_err_set(x->err, KILN_ERR_ARG, "export: output path too long");
        if (rename(from, to) != 0) {
            int e = errno;
            return kiln_err_set(x->err, KILN_ERR_IO, "export: cannot write %s: %s", kiln_path_show(to).s,
                                strerror(e));
        }
    }
    return KILN_OK;
}

/* Remove work and what is left in it (only the files this export makes). */
static void remove_work(exporter *x)
{
    if (!x->work)
        return;
    char path[4096];
    for (int k = 0; k < N_FILE_EXTS; k++)
        if (!kiln_snprintf(path, sizeof path, "%s/%s.%s", x->work, x->name, FILE_EXTS[k]))
            unlink(path);
    rmdir(x->work);
    free(x->work);
    x->work = NULL;
}

static enum kiln_status check_options(exporter *x)
{
    const kiln_export_options *o = x->o;
    const char *nm = o->name ? o->name : "model";
    size_t n = strlen(nm);
    if (n == 0 || n > EXPORT_NAME_MAX)
        return kiln_err_set(x->err, KILN_ERR_ARG, "export: name '%.60s' must have 1 to %d characters", nm,
                            EXPORT_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = nm[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
            return kiln_err_set(x->err, KILN_ERR_ARG,
                                "export: name '%s': character %zu is not a letter, digit or '_' (it names C symbols "
                                "and files)", nm, i + 1);
    }
    if (o->max_batch < 0 || (o->max_batch > kiln_program_max_batch(x->p) && o->max_batch > 0))
        return kiln_err_set(x->err, KILN_ERR_ARG, "export: max_batch %" PRId64 " outside 1..%" PRId64
                            " (the program's)", o->max_batch, kiln_program_max_batch(x->p));
    if (o->n_cflags < 0 || (o->n_cflags && !o->cflags))
        return kiln_err_set(x->err, KILN_ERR_ARG, "export: bad cflags list");
    for (int i = 0; i < o->n_cflags; i++)
        if (!o->cflags[i])
            return kiln_err_set(x->err, KILN_ERR_ARG, "export: cflags[%d] is NULL", i);
    x->name = nm;
    x->dir = o->dir && *o->dir ? o->dir : ".";
    return KILN_OK;
}

enum kiln_status kiln_program_export(kiln_program *p, const kiln_export_options *o)
{
    if (!p)
        return KILN_ERR_ARG;
    exporter x = {.p = p, .err = kiln_program_err(p), .g = kiln_program_graph(p), .prog = kiln_program_plan(p), .o = o};
    if (!o)
        return kiln_err_set(x.err, KILN_ERR_ARG, "export: options are NULL");
    if (!x.g || !x.prog)
        return kiln_err_set(x.err, KILN_ERR_STATE, "export: the program is not compiled");
    enum kiln_status st = check_options(&x);
    if (!st)
        st = plan_forward(&x);
    if (!st)
        st = gather_weights(&x);
    if (!st)
        st = make_work(&x);
    if (!st)
        st = write_files(&x);
    if (!st && o->compile)
        st = build_library(&x);
    if (!st)
        st = commit_files(&x);
    remove_work(&x);
    if (x.planned)
        kiln_plan_free(&x.plan);
    free(x.in);
    free(x.out);
    free(x.blob);
    if (!st)
        kiln_err_clear(x.err);
    return st;
}

/* ---- from a network file ----------------------------------------------------- */

enum kiln_status kiln_network_export(kiln_network *net, const char *const *outputs, int n_outputs,
                                     const kiln_export_options *o)
{
    if (!net)
        return KILN_ERR_ARG;
    kiln_err *err = kiln_network_err(net);
    kiln_graph *g = kiln_network_graph(net);
    if (!g)
        return kiln_err_set(err, KILN_ERR_STATE, "export: the network is not loaded");
    if (!o || n_outputs < 0 || (n_outputs > 0 && !outputs))
        return kiln_err_set(err, KILN_ERR_ARG, "export: NULL options or a bad outputs list");
    int n_roots = kiln_network_root_count(net);
    int n = 0;
    kiln_node *roots = calloc((size_t)(n_outputs > n_roots ? n_outputs : n_roots) + 1, sizeof *roots);
    if (!roots)
        return kiln_err_set(err, KILN_ERR_NOMEM, "export: no memory");
    enum kiln_status st = KILN_OK;
    for (int k = 0; k < n_outputs && !st; k++) {
        roots[n] = outputs[k] ? kiln_network_root(net, outputs[k]) : KILN_NODE_NONE;
        if (!kiln_node_ok(roots[n++])) {
            kiln_strbuf names = {0};
            for (int i = 0; i < n_roots; i++)
                kiln_strbuf_put(&names, "%s%s", i ? ", " : "", kiln_network_root_name(net, i));
            st = kiln_err_set(err, KILN_ERR_ARG, "export: '%.200s' is not a root of the network (its roots: %.400s)",
                              outputs[k] ? outputs[k] : "(null)", names.s && !names.oom ? names.s : "none");
            free(names.s);
        }
    }
    for (int i = 0; n_outputs == 0 && i < n_roots; i++) {
        kiln_node r = kiln_network_root(net, kiln_network_root_name(net, i));
        if (kiln_graph_node_rank(g, r) >= 1)
            roots[n++] = r;
    }
    if (!st && n == 0)
        st = kiln_err_set(err, KILN_ERR_ARG, "export: the network has no root of rank 1 or more (only scalars, such "
                          "as a cost): name the outputs");
    kiln_program *p = NULL;
    if (!st) {
        kiln_compile_options co = kiln_compile_options_default();
        co.outputs = roots;
        co.n_outputs = n;
        co.no_fast_paths = true; /* the export prints its own products either way */
        co.max_batch = o->max_batch;
        co.cc = o->cc;
        for (int k = 1; k < KILN_MAX_SYMBOLS; k++) /* none is exported: the export says so, naming the node */
            co.max_size[k] = 1;
        st = kiln_compile(g, &co, &p);
        if (!st)
            st = kiln_program_export(p, o);
        if (st && !p)
            kiln_err_set(err, st, "export: out of memory");
        else if (st)
            kiln_err_copy(err, kiln_program_err(p), NULL);
    }
    kiln_program_destroy(p);
    free(roots);
    if (!st)
        kiln_err_clear(err);
    return st;
}
