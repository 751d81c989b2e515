/* fuzz_netjson.c: libFuzzer target for the reader of network files'
** descriptions (compiler/netjson.c), which rebuilds a graph from JSON that
** anyone may have written.
**
** Each input is read as a description with no file around it (parameters
** stay NaN). A description that reads must give a graph that prints and
** whose roots are its nodes; one that does not must leave a message that
** names where it was read. Anything else (a crash, a sanitizer report, a
** trap below) is a finding: add the input to fuzz/corpus/netjson/ and a
** regress_ test to tests/test_network.c.
**
** Build and run: see docs/security.md ("Fuzzing"); scripts/test runs it
** for a short while when clang has libFuzzer. The seeds are descriptions
** kiln_network_save wrote, taken out of their files with
** h5dump -d /network.json -b -o NAME.json NET.h5 (docs/network-files.md). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/netjson.h"

/* A property that does not hold: stop here, with a stack, for libFuzzer. */
#define FUZZ_CHECK(x) ((x) ? (void)0 : __builtin_trap())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kiln_netjson_reader r = {.where = "fuzz.h5: /network.json", .max_value_bytes = 64 << 20};
    kiln_netjson_result res;
    kiln_err err;
    enum kiln_status st = kiln_netjson_read((const char *)data, size, &r, &res, &err);
    if (st == KILN_OK) {
        FILE *f = fopen("/dev/null", "w");
        FUZZ_CHECK(f && kiln_graph_write_text(res.graph, f) == KILN_OK);
        fclose(f);
        for (int k = 0; k < res.n_roots; k++)
            FUZZ_CHECK(res.roots[k].id >= 0 && res.roots[k].id < kiln_graph_node_count(res.graph));
    } else {
        FUZZ_CHECK(st == KILN_ERR_FORMAT || st == KILN_ERR_NOMEM);
        FUZZ_CHECK(strncmp(err.msg, r.where, strlen(r.where)) == 0);
    }
    kiln_netjson_result_free(&res);
    return 0;
}
