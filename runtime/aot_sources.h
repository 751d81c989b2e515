/* aot_sources.h (internal): kiln's C sources that an AOT program is built
** from, embedded in libkiln at build time (tools/embed/embed.c makes
** aot_sources.c from the files meson.build lists), so that runtime/aot.c
** writes them out from a build tree or an installed kiln alike. */
#ifndef KILN_RUNTIME_AOT_SOURCES_H
#define KILN_RUNTIME_AOT_SOURCES_H

#include <stddef.h>

typedef struct kiln_aot_source {
    const char *path; /* under kiln's source tree: "runtime/gemm.c" */
    const char *text;
    size_t len;
} kiln_aot_source;

extern const kiln_aot_source kiln_aot_sources[];
extern const int kiln_aot_n_sources;

#endif
