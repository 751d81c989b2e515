/* refs.h (internal): the references a keeper takes on the runtime's
** handles (#9; compiler/util.h, kiln_refs).
**
** A main loop keeps its program and its stream alive, a DataStreamMonitoring
** extension its stream: each retains what it keeps when it is made and
** releases it when it is destroyed, so the caller may destroy them in any
** order. The caller's own reference is dropped by the public destroy. */
#ifndef KILN_RUNTIME_REFS_H
#define KILN_RUNTIME_REFS_H

#include "kiln/compile.h"
#include "kiln/data.h"

/* One more reference (not NULL); release drops one, and the object is freed
** with the last (NULL: nothing). */
void kiln_program_retain(kiln_program *p);
void kiln_program_release(kiln_program *p);
void kiln_stream_retain(kiln_stream *s);
void kiln_stream_release(kiln_stream *s);

#endif
