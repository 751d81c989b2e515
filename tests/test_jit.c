/* test_jit.c: the JIT cache: compile and call, cache hits in this and in a
** fresh process (nothing spawned), keys, compile errors, compiler choice,
** recovery from a truncated library, concurrent builders, bad cache folders,
** and the attacks of issue #9 (regress_9_cache_attacks: damaged and foreign
** entries, folders others can write, noexec mounts, killed compiles), loads
** without a compiler, full disks, long paths and kiln_jit_prune.
** Each test gets its own cache folder (mkdtemp). Load times are printed, not
** asserted: they depend on the machine and on sanitizers.
**
** The binary re-executes itself (/proc/self/exe --load-child ...) to load in
** a process whose dynamic loader and libcrypto have never seen the library. */
#include "runtime/jit.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kiln/kiln.h"
#include "testutil.h"

static const char SRC_ADD[] = "/* test */\nint kiln_test_add(int a, int b) { return a + b; }\n";
static const char SRC_MUL[] = "int kiln_test_mul(int a, int b) { return a * b; }\n";
static const char SRC_BAD[] = "int kiln_test_bad(void)\n{\n    return 1\n}\n";

typedef int (*binop_fn)(int, int);

/* Exit codes of a child that loads SRC_ADD. */
enum {
    CHILD_HIT = 0,         /* loaded, compiler did not run */
    CHILD_RAN = 10,        /* loaded, compiler ran */
    CHILD_LOAD_FAILED = 20,
    CHILD_BAD_RESULT = 30,
    CHILD_EXEC_FAILED = 40
};

static char g_tmp[64]; /* this test's temp folder; the cache is g_tmp/cache */
static char g_cache[128];

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void setup(void)
{
    kiln_test_tmpdir(g_tmp, sizeof g_tmp, "kiln_test_jit");
    ck_assert_int_eq(snprintf(g_cache, sizeof g_cache, "%s/cache", g_tmp) < (int)sizeof g_cache, 1);
}

static void teardown(void)
{
    kiln_test_rmtree(g_tmp);
}

static kiln_jit_options opts(const char *cc)
{
    kiln_jit_options o = {0};
    o.cc = cc;
    o.cache_dir = g_cache;
    return o;
}

static kiln_jit *load_ok(const char *src, const kiln_jit_options *o)
{
    kiln_jit *j = NULL;
    enum kiln_status st = kiln_jit_load(src, strlen(src), o, &j);
    ck_assert_ptr_nonnull(j);
    ck_assert_msg(st == KILN_OK, "load: status %d: %s", st, kiln_jit_errmsg(j));
    return j;
}

static int call_binop(kiln_jit *j, const char *name, int a, int b)
{
    void *sym = kiln_jit_symbol(j, name);
    ck_assert_msg(sym != NULL, "%s", kiln_jit_errmsg(j));
    binop_fn f;
    memcpy(&f, &sym, sizeof f);
    return f(a, b);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 16);
    size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static int count_lines(const char *path)
{
    char *s = read_file(path, NULL);
    int n = 0;
    for (const char *p = s; p && *p; p++)
        n += *p == '\n';
    free(s);
    return n;
}

/* Is name an executable in PATH? */
static bool on_path(const char *name)
{
    const char *path = getenv("PATH");
    char *copy = strdup(path ? path : "/usr/bin:/bin");
    bool found = false;
    for (char *save, *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char cand[4096];
        if (snprintf(cand, sizeof cand, "%s/%s", d, name) < (int)sizeof cand)
            found = access(cand, X_OK) == 0;
    }
    free(copy);
    return found;
}

/* A compiler that appends its arguments to g_tmp/cc.log, then runs gcc: the
** log shows every process kiln started. */
static void make_logging_cc(char *cc, size_t cap, char *log, size_t log_cap)
{
    ck_assert_int_lt(snprintf(cc, cap, "%s/logcc", g_tmp), (int)cap);
    ck_assert_int_lt(snprintf(log, log_cap, "%s/cc.log", g_tmp), (int)log_cap);
    FILE *f = fopen(cc, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\necho \"$*\" >> '%s'\nexec gcc \"$@\"\n", log);
    fclose(f);
    ck_assert_int_eq(chmod(cc, 0755), 0);
}

/* The child side: load SRC_ADD from cache with cc ("-": default), call it;
** print the load time when timed. */
static int child_load(const char *cache, const char *cc, bool timed)
{
    kiln_jit_options o = {0};
    o.cache_dir = cache;
    o.cc = strcmp(cc, "-") ? cc : NULL;
    kiln_jit *j = NULL;
    double t0 = now_ms();
    enum kiln_status st = kiln_jit_load(SRC_ADD, strlen(SRC_ADD), &o, &j);
    double t1 = now_ms();
    int rc;
    if (st != KILN_OK) {
        fprintf(stderr, "child load failed: %s\n", kiln_jit_errmsg(j));
        rc = CHILD_LOAD_FAILED;
    } else {
        void *sym = kiln_jit_symbol(j, "kiln_test_add");
        binop_fn f = NULL;
        if (sym)
            memcpy(&f, &sym, sizeof f);
        if (!f || f(40, 2) != 42)
            rc = CHILD_BAD_RESULT;
        else
            rc = kiln_jit_compiler_ran(j) ? CHILD_RAN : CHILD_HIT;
        if (timed)
            printf("  [timing] %s load in a new process: %.3f ms\n",
                   kiln_jit_compiler_ran(j) ? "cold" : "warm", t1 - t0);
        fflush(stdout);
    }
    kiln_jit_close(j);
    return rc;
}

/* Run child_load in a fresh process image; returns its exit code. */
static int exec_child(const char *cache, const char *cc)
{
    fflush(stdout);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *argv[] = {(char *)"test_jit", (char *)"--load-child", (char *)cache, (char *)cc, NULL};
        execv("/proc/self/exe", argv);
        _exit(CHILD_EXEC_FAILED);
    }
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert_msg(WIFEXITED(ws), "child wait status %d", ws);
    return WEXITSTATUS(ws);
}

START_TEST(test_compile_and_call)
{
    kiln_jit_options o = opts(NULL);
    double t0 = now_ms();
    kiln_jit *j = load_ok(SRC_ADD, &o);
    double t1 = now_ms();
    printf("  [timing] cold load (compile, default compiler): %.1f ms\n", t1 - t0);
    ck_assert(kiln_jit_compiler_ran(j));
    ck_assert_int_eq(call_binop(j, "kiln_test_add", 2, 3), 5);
    ck_assert_str_eq(kiln_jit_errmsg(j), "");

    /* Layout: <cache>/<2 hex>/<62 hex>.so, the source beside it. */
    const char *key = kiln_jit_key(j);
    ck_assert_ptr_nonnull(key);
    ck_assert_uint_eq(strlen(key), KILN_JIT_KEY_HEX);
    ck_assert_uint_eq(strspn(key, "0123456789abcdef"), KILN_JIT_KEY_HEX);
    char want[256];
    ck_assert_int_lt(snprintf(want, sizeof want, "%s/%.2s/%s.so", g_cache, key, key + 2),
                     (int)sizeof want);
    ck_assert_str_eq(kiln_jit_path(j), want);
    ck_assert(file_exists(want));
    strcpy(want + strlen(want) - 2, "c");
    size_t n;
    char *src = read_file(want, &n);
    ck_assert_ptr_nonnull(src);
    ck_assert_uint_eq(n, strlen(SRC_ADD));
    ck_assert_str_eq(src, SRC_ADD);
    free(src);

    /* The folders are private. */
    struct stat st;
    ck_assert_int_eq(stat(g_cache, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    kiln_jit_close(j);
}
END_TEST

START_TEST(test_second_load_is_cache_hit)
{
    kiln_jit_options o = opts(NULL);
    kiln_jit *a = load_ok(SRC_ADD, &o);
    ck_assert(kiln_jit_compiler_ran(a));
    double t0 = now_ms();
    kiln_jit *b = load_ok(SRC_ADD, &o);
    double t1 = now_ms();
    printf("  [timing] warm load in the same process: %.3f ms\n", t1 - t0);
    ck_assert(!kiln_jit_compiler_ran(b));
    ck_assert_str_eq(kiln_jit_key(a), kiln_jit_key(b));
    ck_assert_str_eq(kiln_jit_path(a), kiln_jit_path(b));
    kiln_jit_close(a);
    ck_assert_int_eq(call_binop(b, "kiln_test_add", -1, 1), 0);
    kiln_jit_close(b);
}
END_TEST

START_TEST(test_cache_hit_in_new_process_starts_nothing)
{
    char cc[128], log[128];
    make_logging_cc(cc, sizeof cc, log, sizeof log);
    kiln_jit_options o = opts(cc);
    kiln_jit *j = load_ok(SRC_ADD, &o);
    ck_assert(kiln_jit_compiler_ran(j));
    kiln_jit_close(j);
    ck_assert_int_eq(count_lines(log), 2); /* --version, then the compile */

    /* Fresh processes: neither the compiler nor `cc --version` runs. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(exec_child(g_cache, cc), CHILD_HIT);
    ck_assert_int_eq(count_lines(log), 2);

    /* A new source compiles, but the compiler's identity is remembered. */
    j = load_ok(SRC_MUL, &o);
    ck_assert(kiln_jit_compiler_ran(j));
    ck_assert_int_eq(call_binop(j, "kiln_test_mul", 6, 7), 42);
    kiln_jit_close(j);
    ck_assert_int_eq(count_lines(log), 3);
}
END_TEST

START_TEST(test_cache_hit_in_new_process_default_compiler)
{
    ck_assert_int_eq(exec_child(g_cache, "-"), CHILD_RAN);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(exec_child(g_cache, "-"), CHILD_HIT);
}
END_TEST

START_TEST(test_different_source_different_key)
{
    kiln_jit_options o = opts(NULL);
    kiln_jit *a = load_ok(SRC_ADD, &o);
    kiln_jit *b = load_ok(SRC_MUL, &o);
    ck_assert(kiln_jit_compiler_ran(b));
    ck_assert_str_ne(kiln_jit_key(a), kiln_jit_key(b));
    ck_assert_str_ne(kiln_jit_path(a), kiln_jit_path(b));
    ck_assert_int_eq(call_binop(a, "kiln_test_add", 2, 2), 4);
    ck_assert_int_eq(call_binop(b, "kiln_test_mul", 3, 3), 9);
    kiln_jit_close(a);
    kiln_jit_close(b);
}
END_TEST

START_TEST(test_link_args_are_passed_and_keyed)
{
    static const char src[] =
        "#include <math.h>\ndouble kiln_test_cbrt(double x) { return cbrt(x); }\n";
    kiln_jit_options o = opts(NULL);
    kiln_jit *plain = load_ok(src, &o);
    const char *const args[] = {"-lm"};
    o.link_args = args;
    o.n_link_args = 1;
    kiln_jit *with_m = load_ok(src, &o);
    ck_assert(kiln_jit_compiler_ran(with_m));
    ck_assert_str_ne(kiln_jit_key(plain), kiln_jit_key(with_m));
    void *sym = kiln_jit_symbol(with_m, "kiln_test_cbrt");
    ck_assert_ptr_nonnull(sym);
    double (*f)(double);
    memcpy(&f, &sym, sizeof f);
    ck_assert_double_eq_tol(f(27.0), 3.0, 1e-12);
    kiln_jit_close(plain);
    kiln_jit_close(with_m);

    /* A bad link argument is a compile error quoting the linker. */
    const char *const bad[] = {"-lkiln_no_such_library"};
    o.link_args = bad;
    kiln_jit *j = NULL;
    ck_assert_int_eq(kiln_jit_load(src, strlen(src), &o, &j), KILN_ERR_COMPILE);
    ck_assert_msg(strstr(kiln_jit_errmsg(j), "kiln_no_such_library"), "%s", kiln_jit_errmsg(j));
    kiln_jit_close(j);
}
END_TEST

/* Files in the shard folder of path, other than an entry's (.so, .sum, .c,
** .log, .lock) and index records (.idx): temp files left behind. */
static int stray_files(const char *so_path)
{
    char dir[256];
    ck_assert_int_lt(snprintf(dir, sizeof dir, "%s", so_path), (int)sizeof dir);
    *strrchr(dir, '/') = '\0';
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        const char *dot = strrchr(e->d_name, '.');
        if (e->d_name[0] == '.' || !dot)
            continue;
        if (strcmp(dot, ".c") && strcmp(dot, ".log") && strcmp(dot, ".lock") && strcmp(dot, ".so") &&
            strcmp(dot, ".sum") && strcmp(dot, ".idx")) {
            printf("  stray file: %s/%s\n", dir, e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

START_TEST(test_syntax_error_quotes_compiler)
{
    const char *cc = _i == 0 ? "gcc" : "clang";
    if (!on_path(cc)) {
        printf("  skipped: %s not in PATH\n", cc);
        return;
    }
    kiln_jit_options o = opts(cc);
    kiln_jit *j = NULL;
    ck_assert_int_eq(kiln_jit_load(SRC_BAD, strlen(SRC_BAD), &o, &j), KILN_ERR_COMPILE);
    const char *msg = kiln_jit_errmsg(j);
    printf("  %s syntax error message:\n%s\n", cc, msg);
    ck_assert(kiln_jit_compiler_ran(j));
    ck_assert_uint_lt(strlen(msg), 512);
    ck_assert_msg(strncmp(msg, "C compiler failed: ", 19) == 0, "%s", msg);
    ck_assert_msg(strstr(msg, "error") && strstr(msg, "expected"), "%s", msg);
    ck_assert_msg(strstr(msg, ".c:4:") || strstr(msg, ".c:3:"), "no line number: %s", msg);
    ck_assert_msg(strstr(msg, "exited with status 1"), "%s", msg);

    /* The full log and the source are kept; no library, no temp files. */
    const char *so = kiln_jit_path(j);
    ck_assert_ptr_nonnull(so);
    ck_assert(!file_exists(so));
    char path[256];
    ck_assert_int_lt(snprintf(path, sizeof path, "%.*s.log", (int)strlen(so) - 3, so),
                     (int)sizeof path);
    ck_assert_msg(strstr(msg, path), "log path %s not in %s", path, msg);
    char *log = read_file(path, NULL);
    ck_assert_ptr_nonnull(log);
    ck_assert_ptr_nonnull(strstr(log, "expected"));
    free(log);
    ck_assert_int_eq(stray_files(so), 0);
    ck_assert_ptr_null(kiln_jit_symbol(j, "kiln_test_bad"));
    kiln_jit_close(j);
}
END_TEST

START_TEST(test_many_errors_fit_the_message)
{
    char src[8192] = "";
    size_t used = 0;
    for (int i = 0; i < 60; i++)
        used += (size_t)snprintf(src + used, sizeof src - used, "int f%d(void) { return x%d }\n",
                                 i, i);
    kiln_jit_options o = opts("gcc");
    kiln_jit *j = NULL;
    ck_assert_int_eq(kiln_jit_load(src, strlen(src), &o, &j), KILN_ERR_COMPILE);
    const char *msg = kiln_jit_errmsg(j);
    ck_assert_uint_lt(strlen(msg), 512);
    ck_assert_msg(strstr(msg, "x0") && strstr(msg, "undeclared"), "%s", msg);
    ck_assert_msg(strstr(msg, "\n...\n"), "no elision mark: %s", msg);
    ck_assert_msg(strstr(msg, ".log)") && strstr(msg, "exited with status 1"), "%s", msg);
    kiln_jit_close(j);
}
END_TEST

START_TEST(test_long_first_line_is_cut_visibly)
{
    char src[1024], name[601];
    memset(name, 'q', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    ck_assert_int_lt(snprintf(src, sizeof src, "int f(void) { return %s; }\n", name),
                     (int)sizeof src);
    kiln_jit_options o = opts("gcc");
    kiln_jit *j = NULL;
    ck_assert_int_eq(kiln_jit_load(src, strlen(src), &o, &j), KILN_ERR_COMPILE);
    const char *msg = kiln_jit_errmsg(j);
    ck_assert_uint_lt(strlen(msg), 512);
    ck_assert_msg(strstr(msg, "qqqq...\n("), "no cut mark: %s", msg);
    ck_assert_msg(strstr(msg, ".log)"), "log path lost: %s", msg);
    kiln_jit_close(j);
}
END_TEST

START_TEST(test_gcc_and_clang_keys_differ)
{
    kiln_jit_options o = opts("gcc");
    kiln_jit *g = load_ok(SRC_ADD, &o);
    ck_assert(kiln_jit_compiler_ran(g));
    ck_assert_int_eq(call_binop(g, "kiln_test_add", 20, 22), 42);
    if (!on_path("clang")) {
        printf("  clang not in PATH: only gcc checked\n");
        kiln_jit_close(g);
        return;
    }
    o.cc = "clang";
    kiln_jit *c = load_ok(SRC_ADD, &o);
    ck_assert(kiln_jit_compiler_ran(c));
    ck_assert_str_ne(kiln_jit_key(g), kiln_jit_key(c));
    ck_assert_int_eq(call_binop(c, "kiln_test_add", 20, 22), 42);
    /* The default (no cc, no $KILN_CC) is clang. */
    unsetenv("KILN_CC");
    o.cc = NULL;
    kiln_jit *d = load_ok(SRC_ADD, &o);
    ck_assert(!kiln_jit_compiler_ran(d));
    ck_assert_str_eq(kiln_jit_key(c), kiln_jit_key(d));
    kiln_jit_close(g);
    kiln_jit_close(c);
    kiln_jit_close(d);
}
END_TEST

START_TEST(test_kiln_cc_environment)
{
    kiln_jit_options o = opts(NULL);
    kiln_jit *g = load_ok(SRC_ADD, &(kiln_jit_options){.cc = "gcc", .cache_dir = g_cache});
    setenv("KILN_CC", "gcc", 1);
    kiln_jit *e = load_ok(SRC_ADD, &o);
    ck_assert(!kiln_jit_compiler_ran(e));
    ck_assert_str_eq(kiln_jit_key(g), kiln_jit_key(e));
    kiln_jit_close(g);
    kiln_jit_close(e);

    setenv("KILN_CC", "kiln-no-such-cc", 1);
    kiln_jit *j = NULL;
    ck_assert_int_eq(kiln_jit_load(SRC_ADD, strlen(SRC_ADD), &o, &j), KILN_ERR_COMPILE);
    ck_assert_msg(strstr(kiln_jit_errmsg(j), "$KILN_CC='kiln-no-such-cc'"), "%s",
                  kiln_jit_errmsg(j));
    kiln_jit_close(j);
    unsetenv("KILN_CC");
}
END_TEST

START_TEST(test_missing_compiler_is_clear)
{
    static const char *const names[] = {"kiln-no-such-cc", "/nonexistent/bin/cc"};
    for (int i = 0; i < 2; i++) {
        kiln_jit_options o = opts(names[i]);
        kiln_jit *j = NULL;
        ck_assert_int_eq(kiln_jit_load(SRC_ADD, strlen(SRC_ADD), &o, &j), KILN_ERR_COMPILE);
        const char *msg = kiln_jit_errmsg(j);
        printf("  missing compiler: %s\n", msg);
        ck_assert_msg(strstr(msg, "no C compiler found") && strstr(msg, names[i]), "%s", msg);
        ck_assert(!kiln_jit_compiler_ran(j));
        ck_assert_ptr_null(kiln_jit_path(j));
        ck_assert_ptr_null(kiln_jit_key(j));
        ck_assert_ptr_null(kiln_jit_symbol(j, "kiln_test_add"));
        kiln_jit_close(j);
    }

    /* Nothing in PATH: the message lists what was tried. */
    unsetenv("KILN_CC");
    char *path = strdup(getenv("PATH"));
    setenv("PATH", g_tmp, 1);
    kiln_jit_options o = opts(NULL);
    kiln_jit *j = NULL;
    ck_assert_int_eq(kiln_jit_load(SRC_ADD, strlen(SRC_ADD), &o, &j), KILN_ERR_COMPILE);
    printf("  no compiler at all: %s\n", kiln_jit_errmsg(j));
    ck_assert_msg(strstr(kiln_jit_errmsg(j), "tried $KILN_CC (unset), clang, gcc"), "%s",
                  kiln_jit_errmsg(j));
    kiln_jit_close(j);
    setenv("PATH", path, 1);
    free(path);
}
END_TEST

START_TEST(test_not_a_compiler)
{
    kiln_jit_options o = opts("/bin/false");
    kiln_jit *j = NULL;
    ck_assert_int_eq(kiln_jit_load(SRC_ADD, strlen(SRC_ADD), &o, &j), KILN_ERR_COMPILE);
    ck_assert_msg(strstr(kiln_jit_errmsg(j), "--version"), "%s", kiln_jit_errmsg(j));
    kiln_jit_close(j);
}
END_TEST

/* Load another source once, so that the compiler's identity is cached and
** the next cold load compiles the plain way (not speculatively beside the
** version probe, whose library differs in the source file name it records). */
static void prime_compiler_identity(void)
{
    kiln_jit_options o = opts(NULL);
    kiln_jit_close(load_ok(SRC_MUL, &o));
}

START_TEST(test_truncated_library_is_rebuilt)
{
    prime_compiler_identity();
    kiln_jit_options o = opts(NULL);
    kiln_jit *j = load_ok(SRC_ADD, &o);
    char so[256];
    ck_assert_int_lt(snprintf(so, sizeof so, "%s", kiln_jit_path(j)), (int)sizeof so);
    kiln_jit_close(j);
    struct stat st;
    ck_assert_int_eq(stat(so, &st), 0);
    off_t full = st.st_size;

    /* Cut it short, and in another case empty it: a fresh process rebuilds. */
    static const off_t cuts[] = {100, 0};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(truncate(so, cuts[i]), 0);
        ck_assert_int_eq(exec_child(g_cache, "-"), CHILD_RAN);
        ck_assert_int_eq(stat(so, &st), 0);
        ck_assert_int_eq(st.st_size, full);
        ck_assert_int_eq(exec_child(g_cache, "-"), CHILD_HIT);
    }
    ck_assert_int_eq(stray_files(so), 0);
}
END_TEST

/* A compiler not seen before by this cache: its version is asked while the
** source compiles; the library lands under the key all the same, and the
** next load (new process) is a hit with nothing left behind. */
START_TEST(test_unknown_compiler_compiles_while_probing)
{
    kiln_jit_options o = opts(NULL);
    kiln_jit *j = load_ok(SRC_ADD, &o);
    ck_assert(kiln_jit_compiler_ran(j));
    char so[256];
    ck_assert_int_lt(snprintf(so, sizeof so, "%s", kiln_jit_path(j)), (int)sizeof so);
    int (*add)(int, int) = (int (*)(int, int))kiln_jit_symbol(j, "kiln_test_add");
    ck_assert_ptr_nonnull(add);
    ck_assert_int_eq(add(2, 3), 5);
    kiln_jit_close(j);
    ck_assert_int_eq(exec_child(g_cache, "-"), CHILD_HIT);
    ck_assert_int_eq(stray_files(so), 0);
    char cmd[512];
    ck_assert_int_lt(snprintf(cmd, sizeof cmd, "ls %s | grep -c pending", g_cache), (int)sizeof cmd);
    FILE *f = popen(cmd, "r");
    int pending = -1;
    ck_assert_int_eq(fscanf(f, "%d", &pending), 1);
    pclose(f);
    ck_assert_int_eq(pending, 0);
}
END_TEST

/* The source cannot be written under its key (a directory is in the way):
** an I/O error naming it, not a crash (jit_build freed a job it had not
** initialised). */
START_TEST(regress_3_unwritable_source_is_an_io_error)
{
    kiln_jit_options o = opts(NULL);
    kiln_jit *j = load_ok(SRC_ADD, &o);
    char so[512], src[512];
    ck_assert_int_lt(snprintf(so, sizeof so, "%s", kiln_jit_path(j)), (int)sizeof so);
    kiln_jit_close(j);
    size_t n = strlen(so);
    ck_assert_int_lt(snprintf(src, sizeof src, "%.*s.c", (int)(n - 3), so), (int)sizeof src);
    ck_assert_int_eq(unlink(so), 0);
    ck_assert_int_eq(unlink(src), 0);
    ck_assert_int_eq(mkdir(src, 0700), 0);
    j = NULL;
    ck_assert_int_eq(kiln_jit_load(SRC_ADD, strlen(SRC_ADD), &o, &j), KILN_ERR_IO);
    ck_assert_msg(strstr(kiln_jit_errmsg(j), src) != NULL, "%s", kiln_jit_errmsg(j));
    kiln_jit_close(j);
    ck_assert_int_eq(rmdir(src), 0);
}
END_TEST

START_TEST(test_concurrent_builders_all_succeed)
{
    enum { N = 4 };
    prime_compiler_identity(); /* else every cold process compiles speculatively */
    int gate[2];
    ck_assert_int_eq(pipe(gate), 0);
    pid_t pids[N];
    fflush(stdout);
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            char c;
            close(gate[1]);
            while (read(gate[0], &c, 1) < 0 && errno == EINTR) {
            }
            _exit(child_load(g_cache, "-", false)); /* times include the wait */
        }
    }
    close(gate[0]);
    close(gate[1]); /* all start at once */
    int ran = 0;
    for (int i = 0; i < N; i++) {
        int ws;
        ck_assert_int_eq(waitpid(pids[i], &ws, 0), pids[i]);
        ck_assert(WIFEXITED(ws));
        int rc = WEXITSTATUS(ws);
        ck_assert_msg(rc == CHILD_HIT || rc == CHILD_RAN, "child %d exit %d", i, rc);
        ran += rc == CHILD_RAN;
    }
    ck_assert_int_eq(ran, 1); /* the lock lets one build; the others find it */

    kiln_jit_options o = opts(NULL);
    kiln_jit *j = load_ok(SRC_ADD, &o);
    ck_assert(!kiln_jit_compiler_ran(j));
    ck_assert_int_eq(stray_files(kiln_jit_path(j)), 0);
    kiln_jit_close(j);
}
END_TEST

START_TEST(test_cache_dir_under_a_file_is_io_error)
{
    char file[128], cache[160];
    ck_assert_int_lt(snprintf(file, sizeof file, "%s/file", g_tmp), (int)sizeof file);
    ck_assert_int_lt(snprintf(cache, sizeof cache, "%s/sub", file), (int)sizeof cache);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    kiln_jit_options o = opts(NULL);
    o.cache_dir = cache;
    kiln_jit *j = NULL;
    ck_assert_int_eq(kiln_jit_load(SRC_ADD, strlen(SRC_ADD), &o, &j), KILN_ERR_IO);
    const char *msg = kiln_jit_errmsg(j);
    printf("  bad cache folder: %s\n", msg);
    ck_assert_msg(strstr(msg, cache) && strstr(msg, strerror(ENOTDIR)), "%s", msg);
    ck_assert(!kiln_jit_compiler_ran(j));
    kiln_jit_close(j);
}
END_TEST

START_TEST(test_default_cache_dir)
{
    char xdg[128], home[128];
    ck_assert_int_lt(snprintf(xdg, sizeof xdg, "%s/xdg", g_tmp), (int)sizeof xdg);
    ck_assert_int_lt(snprintf(home, sizeof home, "%s/home", g_tmp), (int)sizeof home);
    kiln_jit_options o = {0};

    setenv("XDG_CACHE_HOME", xdg, 1);
    kiln_jit *j = load_ok(SRC_ADD, &o);
    ck_assert_msg(strncmp(kiln_jit_path(j), xdg, strlen(xdg)) == 0 &&
                      strncmp(kiln_jit_path(j) + strlen(xdg), "/kiln/", 6) == 0,
                  "%s", kiln_jit_path(j));
    kiln_jit_close(j);

    /* A relative XDG_CACHE_HOME is ignored, as the spec says. */
    setenv("XDG_CACHE_HOME", "relative/cache", 1);
    setenv("HOME", home, 1);
    j = load_ok(SRC_ADD, &o);
    ck_assert_msg(strncmp(kiln_jit_path(j), home, strlen(home)) == 0 &&
                      strncmp(kiln_jit_path(j) + strlen(home), "/.cache/kiln/", 13) == 0,
                  "%s", kiln_jit_path(j));
    kiln_jit_close(j);
}
END_TEST

START_TEST(test_absent_symbol_is_named)
{
    kiln_jit_options o = opts(NULL);
    kiln_jit *j = load_ok(SRC_ADD, &o);
    ck_assert_ptr_null(kiln_jit_symbol(j, "kiln_test_nope"));
    ck_assert_msg(strstr(kiln_jit_errmsg(j), "kiln_test_nope") &&
                      strstr(kiln_jit_errmsg(j), kiln_jit_path(j)),
                  "%s", kiln_jit_errmsg(j));
    ck_assert_ptr_nonnull(kiln_jit_symbol(j, "kiln_test_add"));
    ck_assert_str_eq(kiln_jit_errmsg(j), "");
    kiln_jit_close(j);
}
END_TEST

START_TEST(test_bad_arguments)
{
    kiln_jit_options o = opts(NULL);
    o.n_link_args = -1;
    kiln_jit *j = NULL;
    ck_assert_int_eq(kiln_jit_load(SRC_ADD, strlen(SRC_ADD), &o, &j), KILN_ERR_ARG);
    kiln_jit_close(j);

    const char *const args[] = {"-lm", NULL};
    o.link_args = args;
    o.n_link_args = 2;
    ck_assert_int_eq(kiln_jit_load(SRC_ADD, strlen(SRC_ADD), &o, &j), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_jit_errmsg(j), "link_args[1]"), "%s", kiln_jit_errmsg(j));
    kiln_jit_close(j);

    o = opts(NULL);
    ck_assert_int_eq(kiln_jit_load(NULL, 10, &o, &j), KILN_ERR_ARG);
    kiln_jit_close(j);

    /* An empty source is a valid (empty) library. */
    j = load_ok("", &o);
    kiln_jit_close(j);

    kiln_jit_close(NULL);
    ck_assert_str_eq(kiln_jit_errmsg(NULL), "out of memory");
}
END_TEST

/* ---- #9: a cache that verifies what it loads ------------------------------ */

/* A planted library's constructor creates this file: if it exists, kiln
** loaded a library it should not have. */
static char g_marker[160];

/* path with its last extension replaced by ext ("so" -> "sum"). */
static void sibling(char *out, size_t cap, const char *path, const char *ext)
{
    const char *dot = strrchr(path, '.');
    ck_assert_ptr_nonnull(dot);
    ck_assert_int_lt(snprintf(out, cap, "%.*s.%s", (int)(dot - path), path, ext), (int)cap);
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    char *buf = read_file(from, &n);
    ck_assert_ptr_nonnull(buf);
    FILE *f = fopen(to, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    free(buf);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* A shell script standing in for a compiler. */
static void write_script(const char *path, const char *text)
{
    write_text(path, text);
    ck_assert_int_eq(chmod(path, 0755), 0);
}

/* What an attacker plants: a library that says it is SRC_ADD but
** subtracts, and whose constructor creates g_marker. Built with gcc
** directly (loading it through kiln would run the constructor). */
static void make_planted(char *so, size_t cap)
{
    char src[160], text[512], cmd[512];
    ck_assert_int_lt(snprintf(g_marker, sizeof g_marker, "%s/PLANTED_CODE_RAN", g_tmp),
                     (int)sizeof g_marker);
    ck_assert_int_lt(snprintf(src, sizeof src, "%s/planted.c", g_tmp), (int)sizeof src);
    ck_assert_int_lt(snprintf(so, cap, "%s/planted.so", g_tmp), (int)cap);
    ck_assert_int_lt(snprintf(text, sizeof text,
                              "#include <fcntl.h>\n#include <unistd.h>\n"
                              "__attribute__((constructor)) static void planted(void)\n"
                              "{ int fd = open(\"%s\", O_CREAT | O_WRONLY, 0600); "
                              "if (fd >= 0) close(fd); }\n"
                              "int kiln_test_add(int a, int b) { return a - b; }\n",
                              g_marker),
                     (int)sizeof text);
    write_text(src, text);
    ck_assert_int_lt(snprintf(cmd, sizeof cmd, "gcc -shared -fPIC -o '%s' '%s'", so, src),
                     (int)sizeof cmd);
    ck_assert_int_eq(system(cmd), 0);
}

/* Put the planted library at so with a record that matches it, as someone
** who can write the cache would: only the folder check stands in the way. */
static void plant_with_record(const char *so, const char *key)
{
    char planted[160], sum[512], cmd[512], sha[65] = "", text[512];
    make_planted(planted, sizeof planted);
    copy_file(planted, so);
    ck_assert_int_lt(snprintf(cmd, sizeof cmd, "sha256sum '%s'", so), (int)sizeof cmd);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%64s", sha), 1);
    pclose(p);
    struct stat st;
    ck_assert_int_eq(stat(so, &st), 0);
    ck_assert_int_lt(snprintf(text, sizeof text, "kiln-jit-sum 1\nkey %s\nsize %lld\nsha256 %s\n",
                              key, (long long)st.st_size, sha),
                     (int)sizeof text);
    sibling(sum, sizeof sum, so, "sum");
    write_text(sum, text);
}

/* Load SRC_ADD into the cache; its library path into so, its key into key. */
static void build_add(char *so, size_t cap, char *key)
{
    kiln_jit_options o = opts(NULL);
    kiln_jit *j = load_ok(SRC_ADD, &o);
    ck_assert_int_lt(snprintf(so, cap, "%s", kiln_jit_path(j)), (int)cap);
    if (key)
        memcpy(key, kiln_jit_key(j), KILN_JIT_KEY_HEX + 1);
    kiln_jit_close(j);
}

/* Load SRC_ADD expecting refusal st whose message holds every needle. */
static void expect_refusal(const kiln_jit_options *o, enum kiln_status st, const char *const *needles,
                           int n)
{
    kiln_jit *j = NULL;
    ck_assert_int_eq(kiln_jit_load(SRC_ADD, strlen(SRC_ADD), o, &j), st);
    const char *msg = kiln_jit_errmsg(j);
    printf("    refused: %s\n", msg);
    for (int i = 0; i < n; i++)
        ck_assert_msg(strstr(msg, needles[i]), "\"%s\" lacks \"%s\"", msg, needles[i]);
    ck_assert(!kiln_jit_compiler_ran(j));
    ck_assert_ptr_null(kiln_jit_symbol(j, "kiln_test_add"));
    kiln_jit_close(j);
}

static void assert_marker_absent(void)
{
    ck_assert_msg(!g_marker[0] || !file_exists(g_marker), "a planted library ran (%s exists)",
                  g_marker);
}

/* Load SRC_ADD expecting a rebuild whose note holds needle. */
static void expect_rebuild(const char *needle)
{
    kiln_jit_options o = opts(NULL);
    kiln_jit *j = load_ok(SRC_ADD, &o);
    printf("    note: %s\n", kiln_jit_note(j));
    ck_assert(kiln_jit_compiler_ran(j));
    ck_assert_msg(strncmp(kiln_jit_note(j), "rebuilt ", 8) == 0 && strstr(kiln_jit_note(j), needle),
                  "note \"%s\" lacks \"%s\"", kiln_jit_note(j), needle);
    ck_assert_int_eq(call_binop(j, "kiln_test_add", 40, 2), 42);
    kiln_jit_close(j);
    assert_marker_absent();
}

/* Give this test process its own mount namespace (root only), so that
** mounts vanish with it whatever happens. False: not possible here. */
static bool private_mounts(void)
{
    return geteuid() == 0 && unshare(CLONE_NEWNS) == 0 &&
           mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

/* A tmpfs at g_tmp/mnt (flags: MS_NOEXEC or 0) holding the cache at
** g_tmp/mnt/cache, written into cache. False: cannot mount here. */
static bool mount_tmpfs(unsigned long flags, const char *size, char *mnt, char *cache, size_t cap)
{
    char opt[32];
    ck_assert_int_lt(snprintf(mnt, cap, "%s/mnt", g_tmp), (int)cap);
    ck_assert_int_lt(snprintf(cache, cap, "%s/cache", mnt), (int)cap);
    ck_assert_int_lt(snprintf(opt, sizeof opt, "size=%s,mode=0700", size), (int)sizeof opt);
    ck_assert_int_eq(mkdir(mnt, 0700), 0);
    if (!private_mounts() || mount("tmpfs", mnt, "tmpfs", flags, opt) != 0) {
        printf("    skipped: cannot mount a tmpfs here (%s; needs root and CAP_SYS_ADMIN)\n",
               strerror(errno));
        return false;
    }
    return true;
}

/* Temp files anywhere in the cache: "<x>.<ext>.XXXXXX" and pending-*. */
static int g_temps;
static int count_temp(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag;
    const char *name = path + ftw->base;
    size_t n = strlen(name);
    bool temp = strncmp(name, "pending-", 8) == 0;
    if (!temp && n > 8 && name[n - 7] == '.') {
        temp = true;
        for (size_t i = n - 6; i < n; i++)
            temp = temp && ((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
                            (name[i] >= '0' && name[i] <= '9'));
    }
    if (temp) {
        printf("    temp file: %s\n", path);
        fflush(stdout);
        g_temps++;
    }
    return 0;
}

static int temp_files(void)
{
    g_temps = 0;
    nftw(g_cache, count_temp, 16, FTW_PHYS);
    return g_temps;
}

/* A compiler that is gcc, except that while g_tmp/hang exists it writes its
** pid to g_tmp/cc.pid and g_tmp/started, then sleeps. */
static void make_hanging_cc(char *cc, size_t cap)
{
    char text[1024];
    ck_assert_int_lt(snprintf(cc, cap, "%s/hangcc", g_tmp), (int)cap);
    ck_assert_int_lt(snprintf(text, sizeof text,
                              "#!/bin/sh\n"
                              "if [ \"$1\" = --version ]; then exec gcc --version; fi\n"
                              "if [ -e '%s/hang' ]; then\n"
                              "  echo $$ > '%s/cc.pid'; touch '%s/started'; exec sleep 60\n"
                              "fi\n"
                              "exec gcc \"$@\"\n",
                              g_tmp, g_tmp, g_tmp),
                     (int)sizeof text);
    write_script(cc, text);
}

/* Load src with cc in a child process; once the compiler runs, kill the
** child with SIGKILL (then the orphaned compiler), leaving its temp files. */
static void kill_mid_compile(const char *src, const char *cc)
{
    char hang[160], started[160], pidfile[160];
    snprintf(hang, sizeof hang, "%s/hang", g_tmp);
    snprintf(started, sizeof started, "%s/started", g_tmp);
    snprintf(pidfile, sizeof pidfile, "%s/cc.pid", g_tmp);
    write_text(hang, "");
    unlink(started);
    fflush(stdout);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        kiln_jit_options o = opts(cc);
        kiln_jit *j = NULL;
        kiln_jit_load(src, strlen(src), &o, &j);
        _exit(0);
    }
    for (int i = 0; i < 2000 && !file_exists(started); i++)
        usleep(10000);
    ck_assert_msg(file_exists(started), "the compiler never started");
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    char *text = read_file(pidfile, NULL);
    ck_assert_ptr_nonnull(text);
    kill((pid_t)atoi(text), SIGKILL); /* the orphan: the test's own cleanup */
    free(text);
    unlink(hang);
}

/* 1. A library cut after its ELF headers: dlopen died of SIGBUS. */
static void attack_truncated(void)
{
    char so[256];
    prime_compiler_identity();
    build_add(so, sizeof so, NULL);
    struct stat st;
    ck_assert_int_eq(stat(so, &st), 0);
    ck_assert_int_gt(st.st_size, 5000);
    ck_assert_int_eq(truncate(so, 5000), 0);
    expect_rebuild("5000 bytes");
    ck_assert_int_eq(truncate(so, 5000), 0);
    ck_assert_int_eq(exec_child(g_cache, "-"), CHILD_RAN);
    ck_assert_int_eq(exec_child(g_cache, "-"), CHILD_HIT);
}

/* 2. Another model's library over the key: it loaded and ran. */
static void attack_foreign_entry(void)
{
    char so[256], sum[256], planted[160], mul_so[256], mul_sum[256];
    build_add(so, sizeof so, NULL);
    sibling(sum, sizeof sum, so, "sum");
    make_planted(planted, sizeof planted);
    copy_file(planted, so);
    expect_rebuild("another library copied over it?");

    /* the same size, one byte changed */
    size_t n;
    char *bytes = read_file(so, &n);
    ck_assert_ptr_nonnull(bytes);
    bytes[n / 2] ^= 0x20;
    FILE *f = fopen(so, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    free(bytes);
    expect_rebuild("SHA-256 differs");

    /* the library and its record together, from another key */
    kiln_jit_options o = opts(NULL);
    kiln_jit *m = load_ok(SRC_MUL, &o);
    ck_assert_int_lt(snprintf(mul_so, sizeof mul_so, "%s", kiln_jit_path(m)), (int)sizeof mul_so);
    kiln_jit_close(m);
    sibling(mul_sum, sizeof mul_sum, mul_so, "sum");
    copy_file(mul_so, so);
    copy_file(mul_sum, sum);
    expect_rebuild("another entry");

    /* no record at all (an entry of an older kiln) */
    ck_assert_int_eq(unlink(sum), 0);
    expect_rebuild("no checksum record");
}

/* 3. A cache folder others can write: a planted library (with a matching
** record) must not run. */
static void attack_writable_folders(void)
{
    char so[256], key[KILN_JIT_KEY_HEX + 1], shard[256], compilers[256];
    build_add(so, sizeof so, key);
    plant_with_record(so, key);
    ck_assert_int_lt(snprintf(shard, sizeof shard, "%s/%.2s", g_cache, key), (int)sizeof shard);
    ck_assert_int_lt(snprintf(compilers, sizeof compilers, "%s/compilers", g_cache),
                     (int)sizeof compilers);
    kiln_jit_options o = opts(NULL);
    static const struct {
        mode_t mode;
        const char *says;
    } modes[] = {{0777, "writable by group and others"}, {0770, "writable by its group"},
                 {0703, "writable by others"}};
    const char *const dirs[] = {g_cache, shard, compilers};
    for (int d = 0; d < 3; d++) {
        for (int i = 0; i < 3; i++) {
            ck_assert_int_eq(chmod(dirs[d], modes[i].mode), 0);
            const char *needles[] = {"refusing", dirs[d], modes[i].says};
            expect_refusal(&o, KILN_ERR_IO, needles, 3);
        }
        ck_assert_int_eq(chmod(dirs[d], 0700), 0);
    }
    ck_assert_int_eq(chmod(g_cache, 0777), 0);
    kiln_jit_prune_report r;
    ck_assert_int_eq(kiln_jit_prune(g_cache, &r), KILN_ERR_IO);
    ck_assert_msg(strstr(r.msg, "refusing"), "%s", r.msg);
    ck_assert_int_eq(chmod(g_cache, 0700), 0);
    assert_marker_absent();
    ck_assert_int_eq(unlink(so), 0); /* the record matches it: trusted once private */
}

/* 4. Folders owned by another user (root alone can make them). */
static void attack_foreign_owner(void)
{
    if (geteuid() != 0) {
        printf("    skipped: chown to another user needs root (uid %u)\n", (unsigned)geteuid());
        return;
    }
    char so[256], key[KILN_JIT_KEY_HEX + 1], shard[256];
    build_add(so, sizeof so, key);
    plant_with_record(so, key);
    ck_assert_int_lt(snprintf(shard, sizeof shard, "%s/%.2s", g_cache, key), (int)sizeof shard);
    kiln_jit_options o = opts(NULL);
    const char *const dirs[] = {g_cache, shard};
    for (int d = 0; d < 2; d++) {
        ck_assert_int_eq(chown(dirs[d], 65534, 65534), 0); /* nobody */
        const char *needles[] = {"refusing", dirs[d], "belongs to uid 65534"};
        expect_refusal(&o, KILN_ERR_IO, needles, 3);
        ck_assert_int_eq(chown(dirs[d], 0, 0), 0);
    }
    assert_marker_absent();
    ck_assert_int_eq(unlink(so), 0);
}

/* 5. A cache on a noexec mount: said so, never rebuilt on every run. */
static void attack_noexec(void)
{
    char mnt[160], cache[192];
    if (!mount_tmpfs(MS_NOEXEC, "64m", mnt, cache, sizeof mnt))
        return;
    kiln_jit_options o = opts(NULL);
    o.cache_dir = cache;
    const char *needles[] = {"mounted noexec", cache};
    expect_refusal(&o, KILN_ERR_IO, needles, 2); /* cold: before compiling */

    /* warm: built while the mount allowed it */
    ck_assert_int_eq(mount(NULL, mnt, NULL, MS_REMOUNT, "size=64m,mode=0700"), 0);
    kiln_jit *j = load_ok(SRC_ADD, &o);
    char so[256];
    ck_assert_int_lt(snprintf(so, sizeof so, "%s", kiln_jit_path(j)), (int)sizeof so);
    kiln_jit_close(j);
    ck_assert_int_eq(mount(NULL, mnt, NULL, MS_REMOUNT | MS_NOEXEC, "size=64m,mode=0700"), 0);
    for (int i = 0; i < 2; i++)
        expect_refusal(&o, KILN_ERR_IO, needles, 2);
    ck_assert(file_exists(so));
    ck_assert_int_eq(exec_child(cache, "-"), CHILD_LOAD_FAILED);
    ck_assert_int_eq(umount2(mnt, MNT_DETACH), 0);
}

/* 6. A process killed mid-compile: the next compile of the key (or of any
** key, for a speculative compile's files) removes what it left. */
static void attack_killed_compile(void)
{
    char cc[160];
    make_hanging_cc(cc, sizeof cc);
    kiln_jit_options o = opts(cc);
    /* an unknown compiler: killed during the speculative compile, then with
    ** its identity known, during the plain one */
    const char *const srcs[] = {SRC_ADD, SRC_MUL};
    const char *const fns[] = {"kiln_test_add", "kiln_test_mul"};
    for (int i = 0; i < 2; i++) {
        kill_mid_compile(srcs[i], cc);
        ck_assert_int_gt(temp_files(), 0);
        kiln_jit *j = load_ok(srcs[i], &o);
        ck_assert(kiln_jit_compiler_ran(j));
        ck_assert_int_eq(call_binop(j, fns[i], 6, 7), i == 0 ? 13 : 42);
        kiln_jit_close(j);
        ck_assert_int_eq(temp_files(), 0);
    }
}

static const struct {
    const char *name;
    void (*run)(void);
} CACHE_ATTACKS[] = {
    {"truncated entry (5000 bytes, ELF headers intact)", attack_truncated},
    {"another model's library over the key", attack_foreign_entry},
    {"cache folders writable by group or others", attack_writable_folders},
    {"cache folders owned by another user", attack_foreign_owner},
    {"cache on a noexec mount", attack_noexec},
    {"compile killed mid-way", attack_killed_compile},
};

START_TEST(regress_9_cache_attacks)
{
    printf("  attack %d: %s\n", _i, CACHE_ATTACKS[_i].name);
    g_marker[0] = '\0';
    CACHE_ATTACKS[_i].run();
    assert_marker_absent();
}
END_TEST

/* A warm cache needs no compiler: the index finds the verified entry. */
START_TEST(regress_9_warm_cache_needs_no_compiler)
{
    unsetenv("KILN_CC");
    kiln_jit_options o = opts(NULL), og = opts("gcc");
    char so[256];
    build_add(so, sizeof so, NULL);
    kiln_jit_close(load_ok(SRC_ADD, &og));
    char *path = strdup(getenv("PATH"));
    setenv("PATH", g_tmp, 1); /* no compiler in it */

    for (int i = 0; i < 2; i++) {
        kiln_jit *j = load_ok(SRC_ADD, i ? &og : &o);
        printf("  note: %s\n", kiln_jit_note(j));
        ck_assert(!kiln_jit_compiler_ran(j));
        ck_assert_msg(strstr(kiln_jit_note(j), "no C compiler found; loaded ") &&
                          strstr(kiln_jit_note(j), "built by ") &&
                          strstr(kiln_jit_note(j), i ? "gcc" : "clang"),
                      "%s", kiln_jit_note(j));
        ck_assert_int_eq(call_binop(j, "kiln_test_add", 40, 2), 42);
        if (!i)
            ck_assert_str_eq(kiln_jit_path(j), so);
        kiln_jit_close(j);
    }
    ck_assert_int_eq(exec_child(g_cache, "-"), CHILD_HIT);

    /* Nothing built for this source, or an entry that fails: the message
    ** says there is no compiler, and why the cache could not stand in. */
    kiln_jit *j = NULL;
    ck_assert_int_eq(kiln_jit_load(SRC_MUL, strlen(SRC_MUL), &o, &j), KILN_ERR_COMPILE);
    ck_assert_msg(strstr(kiln_jit_errmsg(j), "no C compiler found") &&
                      strstr(kiln_jit_errmsg(j), "nothing was built for this source"),
                  "%s", kiln_jit_errmsg(j));
    ck_assert_ptr_null(kiln_jit_key(j));
    kiln_jit_close(j);
    ck_assert_int_eq(truncate(so, 5000), 0);
    ck_assert_int_eq(kiln_jit_load(SRC_ADD, strlen(SRC_ADD), &o, &j), KILN_ERR_COMPILE);
    printf("  no compiler, damaged entry: %s\n", kiln_jit_errmsg(j));
    ck_assert_msg(strstr(kiln_jit_errmsg(j), "no C compiler found") &&
                      strstr(kiln_jit_errmsg(j), "5000 bytes"),
                  "%s", kiln_jit_errmsg(j));
    ck_assert_ptr_null(kiln_jit_path(j));
    kiln_jit_close(j);

    setenv("PATH", path, 1);
    free(path);
    j = load_ok(SRC_ADD, &o); /* a compiler again: rebuilt */
    ck_assert(kiln_jit_compiler_ran(j));
    kiln_jit_close(j);
}
END_TEST

/* A compile that fails for lack of disk space says the disk is full. */
START_TEST(regress_9_full_disk_says_so)
{
    /* the compiler says so */
    char cc[160], text[512];
    ck_assert_int_lt(snprintf(cc, sizeof cc, "%s/fullcc", g_tmp), (int)sizeof cc);
    ck_assert_int_lt(snprintf(text, sizeof text,
                              "#!/bin/sh\nif [ \"$1\" = --version ]; then exec gcc --version; fi\n"
                              "echo 'ld: final link failed: No space left on device' >&2\nexit 1\n"),
                     (int)sizeof text);
    write_script(cc, text);
    kiln_jit_options o = opts(cc);
    const char *needles[] = {"the disk is full", "No space left on device"};
    kiln_jit *j = NULL;
    ck_assert_int_eq(kiln_jit_load(SRC_ADD, strlen(SRC_ADD), &o, &j), KILN_ERR_COMPILE);
    printf("  compiler says so: %s\n", kiln_jit_errmsg(j));
    for (int i = 0; i < 2; i++)
        ck_assert_msg(strstr(kiln_jit_errmsg(j), needles[i]), "%s", kiln_jit_errmsg(j));
    kiln_jit_close(j);

    /* a file system that is full: the cache on a small tmpfs, filled */
    char mnt[160], cache[192], filler[224];
    if (!mount_tmpfs(0, "2m", mnt, cache, sizeof mnt))
        return;
    o = opts(NULL);
    o.cache_dir = cache;
    kiln_jit_close(load_ok(SRC_MUL, &o)); /* folders and the compiler's identity */
    ck_assert_int_lt(snprintf(filler, sizeof filler, "%s/filler", mnt), (int)sizeof filler);
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    static char page[4096];
    off_t size = 0;
    for (ssize_t n; (n = write(fd, page, sizeof page)) > 0;)
        size += n;
    /* no room at all, then one page (the source fits, the library not) */
    for (int room = 0; room < 2; room++) {
        ck_assert_int_eq(ftruncate(fd, size - room * (off_t)sizeof page), 0);
        ck_assert_int_ne(kiln_jit_load(SRC_ADD, strlen(SRC_ADD), &o, &j), KILN_OK);
        printf("  full disk, %d page free: %s\n", room, kiln_jit_errmsg(j));
        ck_assert_msg(strstr(kiln_jit_errmsg(j), "the disk is full"), "%s", kiln_jit_errmsg(j));
        kiln_jit_close(j);
    }
    close(fd);
    ck_assert_int_eq(unlink(filler), 0);
    j = load_ok(SRC_ADD, &o);
    ck_assert_int_eq(call_binop(j, "kiln_test_add", 40, 2), 42);
    kiln_jit_close(j);
    ck_assert_int_eq(umount2(mnt, MNT_DETACH), 0);
}
END_TEST

/* A long cache path is shortened in messages; the reason stays whole. */
START_TEST(regress_9_long_cache_path_keeps_the_reason)
{
    char cache[1024], part[101];
    memset(part, 'p', 100);
    part[100] = '\0';
    ck_assert_int_lt(snprintf(cache, sizeof cache, "%s/%s/%s/%s/%s/%s/%s/cache", g_tmp, part, part,
                              part, part, part, part),
                     (int)sizeof cache);
    kiln_jit_options o = opts("gcc");
    o.cache_dir = cache;
    kiln_jit *j = NULL;
    ck_assert_int_eq(kiln_jit_load(SRC_BAD, strlen(SRC_BAD), &o, &j), KILN_ERR_COMPILE);
    const char *msg = kiln_jit_errmsg(j);
    printf("  long path, compile error:\n%s\n", msg);
    ck_assert_uint_lt(strlen(msg), 511);
    ck_assert_msg(strstr(msg, "expected") && strstr(msg, "exited with status 1") &&
                      strstr(msg, ".log)"),
                  "%s", msg);
    kiln_jit_close(j);

    ck_assert_int_eq(chmod(cache, 0777), 0);
    ck_assert_int_eq(kiln_jit_load(SRC_ADD, strlen(SRC_ADD), &o, &j), KILN_ERR_IO);
    printf("  long path, refused: %s\n", kiln_jit_errmsg(j));
    ck_assert_msg(strstr(kiln_jit_errmsg(j), "/cache: it is writable by group and others"), "%s",
                  kiln_jit_errmsg(j));
    kiln_jit_close(j);
}
END_TEST

/* kiln_jit_prune removes what dead processes left, and nothing else. */
START_TEST(regress_9_prune_removes_dead_temp_files)
{
    char cc[160], so[256], key[KILN_JIT_KEY_HEX + 1], path[320], lock[320];
    make_hanging_cc(cc, sizeof cc);
    kill_mid_compile(SRC_ADD, cc); /* speculative: pending-* in the root */
    build_add(so, sizeof so, key);
    kill_mid_compile(SRC_MUL, cc); /* keyed temp files in its shard */
    int left = temp_files();
    printf("  %d temp files left\n", left);
    fflush(stdout);
    ck_assert_int_gt(left, 0);

    /* a live compile's temp file (its key's lock held) stays; so does a
    ** fresh temp file with no lock to ask; a stale one goes */
    ck_assert_int_lt(snprintf(path, sizeof path, "%s/%.2s/%s.so.AbC123", g_cache, key, key + 2),
                     (int)sizeof path);
    ck_assert_int_lt(snprintf(lock, sizeof lock, "%s/%.2s/%s.lock", g_cache, key, key + 2),
                     (int)sizeof lock);
    write_text(path, "live");
    int fd = open(lock, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(flock(fd, LOCK_EX), 0);
    char fresh[320], stale[320];
    ck_assert_int_lt(snprintf(fresh, sizeof fresh, "%s/%.2s/%s.idx.Fr3sh0", g_cache, key, key + 2),
                     (int)sizeof fresh);
    ck_assert_int_lt(snprintf(stale, sizeof stale, "%s/compilers/x.txt.St4le0", g_cache),
                     (int)sizeof stale);
    fresh[strlen(g_cache) + 4] ^= 1; /* a name with no lock file beside it */
    write_text(fresh, "fresh");
    write_text(stale, "stale");
    /* an identity file's temp whose writer died (its lock is free) */
    char id_tmp[320], id_lock[320];
    ck_assert_int_lt(snprintf(id_tmp, sizeof id_tmp, "%s/compilers/y.txt.Dead00", g_cache),
                     (int)sizeof id_tmp);
    ck_assert_int_lt(snprintf(id_lock, sizeof id_lock, "%s/compilers/y.lock", g_cache),
                     (int)sizeof id_lock);
    write_text(id_tmp, "dead");
    write_text(id_lock, "");
    struct timespec old[2] = {{.tv_sec = time(NULL) - 3600}, {.tv_sec = time(NULL) - 3600}};
    ck_assert_int_eq(utimensat(AT_FDCWD, stale, old, 0), 0);

    kiln_jit_prune_report r;
    ck_assert_int_eq(kiln_jit_prune(g_cache, &r), KILN_OK);
    printf("  pruned %d files, %lld bytes\n", r.n_removed, (long long)r.bytes_removed);
    ck_assert_str_eq(r.msg, "");
    ck_assert_int_eq(r.n_removed, left + 2);
    ck_assert(file_exists(path) && file_exists(fresh) && !file_exists(stale) &&
              !file_exists(id_tmp));
    close(fd); /* the compile "ends" */
    ck_assert_int_eq(kiln_jit_prune(g_cache, &r), KILN_OK);
    ck_assert_int_eq(r.n_removed, 1);
    ck_assert(!file_exists(path));
    ck_assert_int_eq(unlink(fresh), 0);
    ck_assert_int_eq(temp_files(), 0);

    /* the entries are untouched: a hit in a new process */
    ck_assert_int_eq(exec_child(g_cache, "-"), CHILD_HIT);
    /* a missing folder is nothing to do; "" is an argument error */
    ck_assert_int_eq(kiln_jit_prune("/nonexistent/kiln-cache", &r), KILN_OK);
    ck_assert_int_eq(r.n_removed, 0);
    ck_assert_int_eq(kiln_jit_prune("", &r), KILN_ERR_ARG);
}
END_TEST

/* Verification refuses a library that group or others can write; under
** umask 002 a linker may make one so (ld.bfd keeps the temp file's 0600
** and adds x bits; others need not), so kiln makes it private: a second
** load is a hit. */
START_TEST(test_umask_002_library_stays_cached)
{
    mode_t old = umask(002);
    kiln_jit_options o = opts(NULL);
    kiln_jit *a = load_ok(SRC_ADD, &o);
    struct stat st;
    ck_assert_int_eq(stat(kiln_jit_path(a), &st), 0);
    ck_assert_int_eq(st.st_mode & 077, 0);
    kiln_jit *b = load_ok(SRC_ADD, &o);
    ck_assert_msg(!kiln_jit_compiler_ran(b), "rebuilt: %s", kiln_jit_note(b));
    kiln_jit_close(a);
    kiln_jit_close(b);
    umask(old);
}
END_TEST

/* kiln_compile's user reads the note too: a truncated program library is
** rebuilt, and kiln_program_cache_note says so. */
START_TEST(regress_9_program_reports_a_rebuilt_library)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 3});
    kiln_node y = kiln_expr_add(g, x, x);
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "twice";
    o.outputs = &y;
    o.n_outputs = 1;
    o.max_batch = 4;
    o.cache_dir = g_cache;
    char so[256];
    for (int round = 0; round < 2; round++) {
        kiln_program *p = NULL;
        ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
        const char *note = kiln_program_cache_note(p);
        printf("  round %d note: \"%s\"\n", round, note);
        if (round == 0) {
            ck_assert_str_eq(note, "");
            ck_assert_int_lt(snprintf(so, sizeof so, "%s", kiln_program_library_path(p)),
                             (int)sizeof so);
        } else {
            ck_assert_msg(strncmp(note, "rebuilt ", 8) == 0 && strstr(note, "truncated?"), "%s",
                          note);
            ck_assert(kiln_program_compiler_ran(p));
        }
        const float in[3] = {1, 2, 3};
        double out[3];
        ck_assert_int_eq(kiln_program_bind_input(p, "x", in), KILN_OK);
        ck_assert_int_eq(kiln_program_forward(p, 1), KILN_OK);
        ck_assert_int_eq(kiln_program_read(p, y, out, 3), KILN_OK);
        ck_assert(out[0] == 2 && out[1] == 4 && out[2] == 6);
        kiln_program_destroy(p);
        if (round == 0) { /* cut short once nothing maps it */
            struct stat st;
            ck_assert_int_eq(stat(so, &st), 0);
            ck_assert_int_eq(truncate(so, st.st_size / 2), 0);
        }
    }
    kiln_graph_destroy(g);
}
END_TEST

static Suite *jit_suite(void)
{
    Suite *s = suite_create("jit");
    TCase *tc = tcase_create("jit");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_compile_and_call);
    tcase_add_test(tc, test_second_load_is_cache_hit);
    tcase_add_test(tc, test_cache_hit_in_new_process_starts_nothing);
    tcase_add_test(tc, test_cache_hit_in_new_process_default_compiler);
    tcase_add_test(tc, test_different_source_different_key);
    tcase_add_test(tc, test_link_args_are_passed_and_keyed);
    tcase_add_loop_test(tc, test_syntax_error_quotes_compiler, 0, 2);
    tcase_add_test(tc, test_many_errors_fit_the_message);
    tcase_add_test(tc, test_long_first_line_is_cut_visibly);
    tcase_add_test(tc, test_gcc_and_clang_keys_differ);
    tcase_add_test(tc, test_kiln_cc_environment);
    tcase_add_test(tc, test_missing_compiler_is_clear);
    tcase_add_test(tc, test_not_a_compiler);
    tcase_add_test(tc, test_truncated_library_is_rebuilt);
    tcase_add_test(tc, test_concurrent_builders_all_succeed);
    tcase_add_test(tc, test_cache_dir_under_a_file_is_io_error);
    tcase_add_test(tc, test_default_cache_dir);
    tcase_add_test(tc, test_unknown_compiler_compiles_while_probing);
    tcase_add_test(tc, regress_3_unwritable_source_is_an_io_error);
    tcase_add_test(tc, test_absent_symbol_is_named);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_loop_test(tc, regress_9_cache_attacks, 0, (int)(sizeof CACHE_ATTACKS / sizeof CACHE_ATTACKS[0]));
    tcase_add_test(tc, regress_9_warm_cache_needs_no_compiler);
    tcase_add_test(tc, regress_9_full_disk_says_so);
    tcase_add_test(tc, regress_9_long_cache_path_keeps_the_reason);
    tcase_add_test(tc, regress_9_prune_removes_dead_temp_files);
    tcase_add_test(tc, regress_9_program_reports_a_rebuilt_library);
    tcase_add_test(tc, test_umask_002_library_stays_cached);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--load-child") == 0)
        return child_load(argv[2], argv[3], true);
    return kiln_test_run(jit_suite());
}
