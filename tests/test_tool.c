/* test_tool.c: the `kiln` command (tools/kiln), run as a user runs it:
** its output, exit codes and messages, on a cache this test fills. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kiln/kiln.h"
#include "testutil.h"

/* Run `kiln args` with stdout and stderr into out (cap bytes); the exit code. */
static int run_tool(char *out, size_t cap, const char *args)
{
    const char *tool = getenv("KILN_TOOL");
    ck_assert_msg(tool, "KILN_TOOL is not set (tests/meson.build sets it)");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", tool, args);
    FILE *f = popen(cmd, "r");
    ck_assert(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int status = pclose(f);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Compile a one-layer model into cache_dir: one cache entry. */
static void compile_into(const char *cache_dir, double scale)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 3});
    kiln_node y = kiln_expr_mul(g, kiln_expr_tanh(g, x), kiln_expr_constant(g, scale));
    kiln_compile_options o = kiln_compile_options_default();
    o.outputs = &y;
    o.n_outputs = 1;
    o.cache_dir = cache_dir;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
}

START_TEST(cache_list_clear_prune)
{
    char dir[512], out[8192], args[1024];
    kiln_test_tmpdir(dir, sizeof dir, "tool_cache");
    compile_into(dir, 2.0);
    compile_into(dir, 3.0);

    snprintf(args, sizeof args, "cache list --dir '%s'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strstr(out, "2 entries"), "%s", out);
    int ok = 0;
    for (const char *s = out; (s = strstr(s, " ok source\n")); s++)
        ok++;
    ck_assert_msg(ok == 2, "%s", out);

    /* damage one library: list says so, and why */
    kiln_cache_report r;
    ck_assert_int_eq(kiln_cache_list(dir, NULL, NULL, &r), KILN_OK);
    ck_assert_int_eq(r.n_entries, 2);
    char so[1024];
    FILE *ls = NULL;
    snprintf(args, sizeof args, "ls '%s'/*/*.so | head -1", dir);
    ls = popen(args, "r");
    ck_assert(ls && fgets(so, sizeof so, ls));
    pclose(ls);
    so[strcspn(so, "\n")] = '\0';
    FILE *f = fopen(so, "r+b");
    ck_assert(f);
    fseek(f, 100, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 100, SEEK_SET);
    fputc(c ^ 0xff, f);
    fclose(f);
    snprintf(args, sizeof args, "cache list --dir '%s'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strstr(out, "unverified source: its SHA-256 differs from its record"), "%s", out);

    snprintf(args, sizeof args, "cache prune --dir '%s'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strstr(out, "removed 0 files"), "%s", out);

    snprintf(args, sizeof args, "cache clear --dir '%s'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strstr(out, "removed 2 entries"), "%s", out);
    snprintf(args, sizeof args, "cache list --dir '%s'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strstr(out, "0 entries, 0 bytes"), "%s", out);
    /* and a compile after a clear builds again */
    compile_into(dir, 2.0);
    ck_assert_int_eq(kiln_cache_list(dir, NULL, NULL, &r), KILN_OK);
    ck_assert_int_eq(r.n_entries, 1);
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(cache_refuses_a_folder_others_may_write)
{
    char dir[512], out[4096], args[1024];
    kiln_test_tmpdir(dir, sizeof dir, "tool_open");
    ck_assert_int_eq(chmod(dir, 0777), 0);
    snprintf(args, sizeof args, "cache clear --dir '%s'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 1);
    ck_assert_msg(strstr(out, "kiln cache clear: ") && strstr(out, "writable by group and others"), "%s", out);
    kiln_cache_report r;
    ck_assert_int_eq(kiln_cache_list(dir, NULL, NULL, &r), KILN_ERR_IO);
    ck_assert_msg(strstr(r.msg, "refusing"), "%s", r.msg);
    chmod(dir, 0700);
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(inspect_and_graph_read_a_network_file)
{
    char dir[512], path[600], out[16384], args[1024];
    kiln_test_tmpdir(dir, sizeof dir, "tool_net");
    snprintf(path, sizeof path, "%s/net.h5", dir);
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_param *w = kiln_param_create("W", 2, (int64_t[]){3, 2});
    ck_assert_int_eq(kiln_param_set_values(w, (double[]){1, 2, 3, 4, 5, 6}, 6), KILN_OK);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 3});
    kiln_node y = kiln_expr_tanh(g, kiln_expr_matmul(g, x, kiln_graph_param(g, w)));
    ck_assert_msg(kiln_network_save(g, &y, (const char *const[]){"y"}, 1, path) == KILN_OK, "%s",
                  kiln_graph_errmsg(g));

    snprintf(args, sizeof args, "inspect '%s'", path);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strstr(out, "root y tanh float32 (B, 2)\n") && strstr(out, "input x float32 (B, 3)\n") &&
                      strstr(out, "param W (3, 2) 6\n") && strstr(out, "nodes "),
                  "%s", out);
    snprintf(args, sizeof args, "graph '%s'", path);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strncmp(out, "digraph kiln {", 14) == 0 && strstr(out, "tanh"), "%s", out);
    snprintf(args, sizeof args, "graph '%s' --after-passes", path);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 0);
    ck_assert_msg(strncmp(out, "digraph kiln {", 14) == 0 && strstr(out, "matmul"), "%s", out);

    /* not a network file, a missing one: exit 1 naming it; no file: exit 2 */
    snprintf(args, sizeof args, "inspect '%s'", getenv("KILN_TOOL"));
    ck_assert_int_eq(run_tool(out, sizeof out, args), 1);
    ck_assert_msg(strstr(out, "kiln inspect: ") && strstr(out, "not a kiln network file"), "%s", out);
    snprintf(args, sizeof args, "graph '%s/missing.h5'", dir);
    ck_assert_int_eq(run_tool(out, sizeof out, args), 1);
    ck_assert_msg(strstr(out, "kiln graph: ") && strstr(out, "missing.h5"), "%s", out);
    ck_assert_int_eq(run_tool(out, sizeof out, "inspect"), 2);
    ck_assert_int_eq(run_tool(out, sizeof out, "graph --bogus x.h5"), 2);
    kiln_graph_destroy(g);
    kiln_param_destroy(w);
    kiln_test_rmtree(dir);
}
END_TEST

START_TEST(usage_errors_exit_2_and_help_exits_0)
{
    char out[4096];
    ck_assert_int_eq(run_tool(out, sizeof out, ""), 2);
    ck_assert_msg(strstr(out, "usage: kiln COMMAND"), "%s", out);
    ck_assert_int_eq(run_tool(out, sizeof out, "frobnicate"), 2);
    ck_assert_msg(strstr(out, "kiln: no command 'frobnicate'"), "%s", out);
    ck_assert_int_eq(run_tool(out, sizeof out, "cache"), 2);
    ck_assert_int_eq(run_tool(out, sizeof out, "cache list --dir"), 2);
    ck_assert_msg(strstr(out, "--dir needs a folder"), "%s", out);
    ck_assert_int_eq(run_tool(out, sizeof out, "cache sweep"), 2);
    ck_assert_msg(strstr(out, "unknown action 'sweep'"), "%s", out);
    ck_assert_int_eq(run_tool(out, sizeof out, "cache list --dir ''"), 1); /* "" is not a folder */
    ck_assert_int_eq(run_tool(out, sizeof out, "--help"), 0);
    ck_assert_int_eq(run_tool(out, sizeof out, "cache --help"), 0);
    ck_assert_msg(strstr(out, "usage: kiln cache list"), "%s", out);
    ck_assert_int_eq(run_tool(out, sizeof out, "help cache"), 0);
    ck_assert_int_eq(run_tool(out, sizeof out, "--version"), 0);
    ck_assert_msg(strncmp(out, "kiln " KILN_VERSION_STRING "\n", strlen(KILN_VERSION_STRING) + 6) == 0, "%s", out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tool");
    TCase *t = tcase_create("kiln");
    tcase_add_test(t, cache_list_clear_prune);
    tcase_add_test(t, cache_refuses_a_folder_others_may_write);
    tcase_add_test(t, inspect_and_graph_read_a_network_file);
    tcase_add_test(t, usage_errors_exit_2_and_help_exits_0);
    suite_add_tcase(s, t);
    return kiln_test_run(s);
}
