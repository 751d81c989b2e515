/* manifest.c: write a unit's manifest (codegen/manifest.h) at its end.
**
** The manifest is data: one const kiln_manifest and an array of tensors, in
** the unit's own text, so that whoever loads the unit (runtime/executor.c)
** needs no compiler and no IR to run it. Everything comes from the plan and
** the emitter's facts; every name (model aside: a C identifier already) is
** a string literal escaped by kiln_strbuf_put_literal, so user text never
** becomes code. The hash covers the text before the manifest: the same
** program gives the same hash, and a manifest pasted onto other code would
** not carry that code's.
** Order of the tensors: inputs (plan order, which is the generated code's
** inputs[]), values (outputs in the options' order, the cost, monitors),
** parameters (slab order), states (arena order). */
#include <inttypes.h>
#include <string.h>

#include "codegen/emit_c.h"
#include "codegen/manifest.h"
#include "compiler/store.h"

_Static_assert(KILN_MANIFEST_SYMBOLS == KILN_MAX_SYMBOLS, "manifest.h's symbol count");
_Static_assert(KILN_MANIFEST_RANK == KILN_MAX_RANK, "manifest.h's rank");
_Static_assert(KILN_MANIFEST_F32 == (int)KILN_DTYPE_F32 && KILN_MANIFEST_F64 == (int)KILN_DTYPE_F64 &&
                   KILN_MANIFEST_I32 == (int)KILN_DTYPE_I32,
               "manifest.h's dtypes");
_Static_assert(sizeof(((kiln_manifest_mono *)0)->e) == KILN_MANIFEST_SYMBOLS, "KILN_MANIFEST_TYPES' symbols");
_Static_assert(sizeof(((kiln_manifest_tensor *)0)->dims) == KILN_MANIFEST_RANK * sizeof(kiln_manifest_mono),
               "KILN_MANIFEST_TYPES' rank");

#define STR_(...) #__VA_ARGS__
#define STR(...) STR_(__VA_ARGS__)

static void put_mono(kiln_strbuf *b, const kiln_mono *m)
{
    kiln_strbuf_put(b, "{%" PRId64 ", {", m->c);
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        kiln_strbuf_put(b, "%s%u", k ? ", " : "", (unsigned)m->e[k]);
    kiln_strbuf_put(b, "}}");
}

/* Entry bits of plan mode bits (enum kiln_mode). */
static unsigned entry_bits(unsigned modes)
{
    return (modes & KILN_MODE_FORWARD ? KILN_MANIFEST_FORWARD : 0) | (modes & KILN_MODE_EVAL ? KILN_MANIFEST_EVAL_STEP : 0) |
           (modes & KILN_MODE_GRADIENTS ? KILN_MANIFEST_GRADIENTS : 0) |
           (modes & KILN_MODE_TRAIN ? KILN_MANIFEST_TRAIN_STEP : 0);
}

/* One tensor: node id of the plan, as kind (index among its kind). */
static void put_tensor(kiln_strbuf *b, const kiln_plan *p, int32_t id, int kind, int index)
{
    const kiln_graph *g = p->g;
    const kiln_node_rec *r = &g->nodes[id];
    const char *owner = r->owner ? r->owner : "", *name = r->name ? r->name : "";
    if ((kind == KILN_MANIFEST_PARAM || kind == KILN_MANIFEST_STATE) && r->param) {
        owner = kiln_param_owner(r->param);
        name = kiln_param_name(r->param);
    }
    kiln_strbuf_put(b, "    {");
    kiln_strbuf_put_literal(b, owner);
    kiln_strbuf_put(b, ", ");
    kiln_strbuf_put_literal(b, name);
    kiln_strbuf_put(b, ", %d, %d, %d, %d,\n     {", kind, (int)r->dtype, r->shape.rank, index);
    for (int k = 0; k < KILN_MAX_RANK; k++) {
        kiln_mono m = {0};
        if (k < r->shape.rank && !kiln_dim_mono(g, r->shape.dims[k], &m))
            m.c = -1; /* never: a shape's dims are monomials (shape.c) */
        kiln_strbuf_put(b, "%s", k ? ", " : "");
        put_mono(b, &m);
    }
    /* where it lives: kiln_plan_arena_offset's cases */
    const kiln_buffer *buf = &p->buf[p->alias[id]];
    int place = KILN_MANIFEST_ARENA, bound = -1;
    int64_t offset = 0, stride = 0, grad = -1;
    kiln_mono unit = {0};
    switch (buf->zone) {
    case KILN_ZONE_INPUT: place = KILN_MANIFEST_BOUND, bound = buf->index; break;
    case KILN_ZONE_NONE: place = KILN_MANIFEST_NOWHERE; break;
    case KILN_ZONE_VALUE:
        offset = p->zones[buf->z].base;
        stride = buf->offset;
        unit = p->zones[buf->z].unit;
        break;
    default: offset = kiln_plan_arena_offset(p, id, p->max_sizes); break;
    }
    if (kind == KILN_MANIFEST_PARAM)
        grad = p->off_grads + p->param_offset[index];
    kiln_strbuf_put(b, "},\n     %d, %d, %uu, 0, %" PRId64 ", %" PRId64 ", ", place, bound,
                    entry_bits(id < p->n ? p->modes[id] : 0), offset, stride);
    put_mono(b, &unit);
    kiln_strbuf_put(b, ", %" PRId64 "},\n", grad);
}

void kiln_manifest_emit(kiln_strbuf *out, const kiln_plan *p, const kiln_emit_options *o, const kiln_emit_info *info)
{
    const kiln_graph *g = p->g;
    uint64_t hash = kiln_fnv1a((const unsigned char *)(out->s ? out->s : ""), out->n);
    unsigned entries = KILN_MANIFEST_INIT | KILN_MANIFEST_FLUSH | (o->has_forward ? KILN_MANIFEST_FORWARD : 0) |
                       (o->has_train ? KILN_MANIFEST_EVAL_STEP | KILN_MANIFEST_GRADIENTS | KILN_MANIFEST_TRAIN_STEP
                                     : 0);
    int n_values = o->n_outputs + (p->cost >= 0) + o->n_monitors;
    int n = p->n_inputs + n_values + p->n_params + p->n_states;

    /* 1. The types, as manifest.h spells them. */
    kiln_strbuf_put(out, "\n/* The manifest (codegen/manifest.h, version %d): what this unit is, as data. */\n%s\n",
                    KILN_MANIFEST_VERSION, STR(KILN_MANIFEST_TYPES));
    /* 2. The tensors. */
    kiln_strbuf_put(out, "static const kiln_manifest_tensor %s_tensors[%d] = {\n", o->model, n > 0 ? n : 1);
    for (int i = 0; i < p->n_inputs; i++)
        put_tensor(out, p, p->input_node[i], KILN_MANIFEST_INPUT, i);
    for (int i = 0; i < o->n_outputs; i++)
        put_tensor(out, p, o->outputs[i], KILN_MANIFEST_OUTPUT, i);
    if (p->cost >= 0)
        put_tensor(out, p, p->cost, KILN_MANIFEST_COST, 0);
    for (int i = 0; i < o->n_monitors; i++)
        put_tensor(out, p, o->monitors[i], KILN_MANIFEST_MONITOR, i);
    for (int i = 0; i < p->n_params; i++)
        put_tensor(out, p, p->param_node[i], KILN_MANIFEST_PARAM, i);
    for (int i = 0; i < p->n_states; i++)
        put_tensor(out, p, p->state_node[i], KILN_MANIFEST_STATE, i);
    if (n == 0)
        kiln_strbuf_put(out, "    {0}\n");
    /* 3. The manifest. */
    kiln_strbuf_put(out, "};\n\nconst kiln_manifest %s_manifest = {\n    %" PRIu32 "u, %du, sizeof (kiln_manifest), "
                    "sizeof (kiln_manifest_tensor), \"%s\", UINT64_C(0x%016" PRIx64 "), %uu, %d,\n    {",
                    o->model, KILN_MANIFEST_MAGIC, KILN_MANIFEST_VERSION, o->model, hash, entries, (int)g->floatx);
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++) {
        kiln_strbuf_put(out, "%s", k ? ", " : "");
        if (g->symbol_names[k])
            kiln_strbuf_put_literal(out, g->symbol_names[k]);
        else
            kiln_strbuf_put(out, "0");
    }
    kiln_strbuf_put(out, "},\n    {");
    for (int k = 0; k < KILN_MAX_SYMBOLS; k++)
        kiln_strbuf_put(out, "%s%" PRId64, k ? ", " : "", p->max_sizes[k]);
    kiln_strbuf_put(out, "},\n    %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                    ", %d, %d,\n    %d, %d, %d, %d, %d, 0, %s_tensors};\n",
                    info->arena_bytes, p->param_bytes, p->off_grads, p->off_states, p->state_bytes, p->off_values,
                    info->gemm_n, info->gemm_k, n, p->n_inputs, n_values, p->n_params, p->n_states, o->model);
}
