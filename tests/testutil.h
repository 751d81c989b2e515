/* testutil.h: what the test programs share: running a Check suite, scratch
** folders under /tmp, and checked calls of the main loop. */
#ifndef KILN_TESTS_TESTUTIL_H
#define KILN_TESTS_TESTUTIL_H

#include <check.h>
#include <stddef.h>

#include <kiln/kiln.h>

/* Run every test of s, free it, and return the process's exit status. */
int kiln_test_run(Suite *s);

/* Make a fresh folder /tmp/<name>_XXXXXX and write its path into dir (cap
** bytes); the test fails if it cannot. */
void kiln_test_tmpdir(char *dir, size_t cap, const char *name);

/* Remove dir and everything below it. */
void kiln_test_rmtree(const char *dir);

/* The main loop's calls, failing the test with the loop's message. */
kiln_main_loop *kiln_test_loop(kiln_program *p, kiln_stream *s);
void kiln_test_loop_add(kiln_main_loop *m, kiln_extension *e); /* e NULL fails */
void kiln_test_loop_run(kiln_main_loop *m);

#endif
