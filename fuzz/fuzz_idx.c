/* fuzz_idx.c: libFuzzer target for the IDX reader (runtime/data.c), which
** reads files other people wrote (MNIST downloads, gzipped or not).
**
** Each input goes into a memfd and is opened through the public API, by its
** /proc/self/fd path, once as an images file and once as a labels file, so
** both magics and both conversions run. A file that loads is walked with a
** stream and its values are checked against their types' ranges; one that
** does not must leave a one-line message and an empty dataset. Anything
** else (a crash, a sanitizer report, a trap below) is a finding: add the
** input to fuzz/corpus/idx/ and a regress_ test to tests/test_data.c.
**
** Build and run: see docs/security.md ("Fuzzing"); scripts/test runs it
** for 30 seconds when clang has libFuzzer. The memfd is this harness's only
** state, made once: the library keeps none. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <kiln/kiln.h>

/* A property that does not hold: stop here, with a stack, for libFuzzer. */
#define FUZZ_CHECK(x) ((x) ? (void)0 : __builtin_trap())

static void check_loaded(kiln_dataset *d, int as_labels)
{
    FUZZ_CHECK(kiln_dataset_source_count(d) == 1);
    int64_t n = kiln_dataset_example_count(d);
    int64_t per = kiln_dataset_source_example_size(d, 0);
    FUZZ_CHECK(n > 0 && per > 0);
    FUZZ_CHECK(kiln_dataset_source_dtype(d, 0) == (as_labels ? KILN_DTYPE_I32 : KILN_DTYPE_F32));
    kiln_stream *s = NULL;
    FUZZ_CHECK(kiln_stream_create(d, KILN_SCHEME_SEQUENTIAL, 7, 0, &s) == KILN_OK);
    kiln_batch b;
    int64_t seen = 0;
    while (kiln_stream_next(s, &b)) {
        for (int64_t i = 0; i < b.size * per; i++) {
            if (as_labels) {
                int32_t v = ((const int32_t *)b.sources[0])[i];
                FUZZ_CHECK(v >= 0 && v <= 255);
            } else {
                float v = ((const float *)b.sources[0])[i];
                FUZZ_CHECK(v >= 0.0f && v <= 1.0f);
            }
        }
        seen += b.size;
    }
    FUZZ_CHECK(seen == n);
    kiln_stream_destroy(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("kiln_fuzz_idx", MFD_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(snprintf(path, sizeof path, "/proc/self/fd/%d", fd) < (int)sizeof path);
    }
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    FUZZ_CHECK(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size);

    for (int as_labels = 0; as_labels < 2; as_labels++) {
        kiln_dataset *d = NULL;
        enum kiln_status st =
            kiln_dataset_open_idx(as_labels ? NULL : path, as_labels ? path : NULL, &d);
        FUZZ_CHECK(d != NULL);
        if (st == KILN_OK) {
            check_loaded(d, as_labels);
        } else {
            const char *msg = kiln_dataset_errmsg(d);
            FUZZ_CHECK(st == KILN_ERR_FORMAT || st == KILN_ERR_IO || st == KILN_ERR_NOMEM);
            FUZZ_CHECK(msg[0] != '\0' && strchr(msg, '\n') == NULL && strstr(msg, path));
            FUZZ_CHECK(kiln_dataset_source_count(d) == 0);
        }
        kiln_dataset_destroy(d);
    }
    return 0;
}
