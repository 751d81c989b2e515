/* filter.c: Blocks' VariableFilter over a graph (kiln_graph_filter).
**
** A front-end concern: it matches nodes by role, by name and by brick. The
** IR knows owners only as paths, so "made by brick b or one of its
** descendants" is "owner path is b's path or starts with b's path and a
** '/'". Paths are taken when a brick applies itself, so a brick moved under
** another parent afterwards is matched by its old path (graph.h says so).
**
** Which nodes are seen: the ancestors of the outputs (all of the graph when
** there are none), plus the auxiliary variables of every owner that made
** one of them, as Blocks' ComputationGraph collects its bricks' auxiliary
** variables. */
#include <stdlib.h>
#include <string.h>

#include "compiler/graph.h"

static bool owner_within(const char *owner, const char *path)
{
    size_t n = strlen(path);
    return owner && strncmp(owner, path, n) == 0 && (owner[n] == '\0' || owner[n] == '/');
}

static bool filter_match(const kiln_graph *g, int32_t id, const kiln_filter *f)
{
    const kiln_node_rec *r = &g->nodes[id];
    if (f->roles && (kiln_role_closure(r->roles) & f->roles) != f->roles)
        return false;
    if (f->brick && !owner_within(r->owner, kiln_brick_path(f->brick)))
        return false;
    if (f->name && (!r->name || strcmp(r->name, f->name) != 0))
        return false;
    return true;
}

int kiln_graph_filter(kiln_graph *g, const kiln_node *outputs, int n_outputs, const kiln_filter *f,
                      kiln_node *out, int cap)
{
    static const kiln_filter all = {0};
    if (!g)
        return -1;
    if (!f)
        f = &all;
    if (n_outputs < 0 || (n_outputs > 0 && !outputs)) {
        kiln_graph_fail(g, KILN_ERR_ARG, "kiln_graph_filter: %d outputs%s", n_outputs,
                        n_outputs > 0 ? ", but outputs is NULL" : "");
        return -1;
    }
    if (cap < 0 || (cap > 0 && !out)) { /* out NULL with cap 0 only counts */
        kiln_graph_fail(g, KILN_ERR_ARG, "kiln_graph_filter: room for %d nodes%s", cap,
                        cap > 0 ? ", but out is NULL" : "");
        return -1;
    }
    /* Plan: mark ancestors of outputs (all nodes when none), then add the
    ** auxiliary variables of every owner that made a marked node. */
    unsigned char *in = calloc((size_t)g->n_nodes + 1, 1);
    if (!in) {
        kiln_graph_fail(g, KILN_ERR_NOMEM, "kiln_graph_filter: no memory");
        return -1;
    }
    if (n_outputs == 0) {
        memset(in, 1, (size_t)g->n_nodes);
    } else {
        for (int i = 0; i < n_outputs; i++) {
            if (!kiln_graph_check(g, outputs[i], "kiln_graph_filter")) {
                free(in);
                return -1;
            }
            in[outputs[i].id] = 1;
        }
        for (int32_t id = g->n_nodes - 1; id >= 0; id--)
            if (in[id])
                for (int k = 0; k < g->nodes[id].n_in; k++)
                    in[g->nodes[id].in[k]] = 1;
        for (int32_t id = 0; id < g->n_nodes; id++) {
            const kiln_node_rec *r = &g->nodes[id];
            if (in[id] || !(r->roles & KILN_ROLE_AUXILIARY) || !r->owner)
                continue;
            for (int32_t j = 0; j < g->n_nodes; j++) /* owners are interned: one pointer per path */
                if (in[j] && g->nodes[j].owner == r->owner && !(g->nodes[j].roles & KILN_ROLE_AUXILIARY)) {
                    in[id] = 1;
                    break;
                }
        }
    }
    int count = 0;
    for (int32_t id = 0; id < g->n_nodes; id++) {
        if (!in[id] || !filter_match(g, id, f))
            continue;
        if (count < cap)
            out[count] = (kiln_node){id};
        count++;
    }
    free(in);
    return count;
}
