/* testutil.c: see testutil.h. */
#define _XOPEN_SOURCE 700
#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

int kiln_test_run(Suite *s)
{
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void kiln_test_tmpdir(char *dir, size_t cap, const char *name)
{
    int n = snprintf(dir, cap, "/tmp/%s_XXXXXX", name);
    ck_assert_msg(n > 0 && (size_t)n < cap, "folder name /tmp/%s_XXXXXX does not fit %zu bytes", name, cap);
    ck_assert_msg(mkdtemp(dir) != NULL, "cannot make %s", dir);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void kiln_test_rmtree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

kiln_main_loop *kiln_test_loop(kiln_program *p, kiln_stream *s)
{
    kiln_main_loop *m = NULL;
    enum kiln_status st = kiln_main_loop_create(p, s, &m);
    ck_assert_msg(st == KILN_OK, "main loop: %s", m ? kiln_main_loop_errmsg(m) : "out of memory");
    return m;
}

void kiln_test_loop_add(kiln_main_loop *m, kiln_extension *e)
{
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(kiln_main_loop_add_extension(m, e) == KILN_OK, "%s", kiln_main_loop_errmsg(m));
}

void kiln_test_loop_run(kiln_main_loop *m)
{
    enum kiln_status st = kiln_main_loop_run(m);
    ck_assert_msg(st == KILN_OK, "run: %s: %s", kiln_status_string(st), kiln_main_loop_errmsg(m));
}
