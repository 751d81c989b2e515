/* test_plot.c: Blocks' Plot extension as a live HTML page (#11).
**
** The model is Blocks' plotting example: a = shared(3.), cost = mean(|x^2 -
** x^a|) over 150 scalars drawn from U[0, 1], Scale(0.1), batches of 1 (150
** iterations an epoch); an extension records `cost` and `a` after each batch
** (what TrainingDataMonitoring([cost, a], after_batch=True) does in Blocks),
** and Plot draws them.
**
** The page is checked twice: its files parsed here (a small strict JSON
** reader below), and the page rendered by headless Chromium, whose DOM the
** page's own script marks with the points it laid out and the pixels of each
** curve's colour in the plot area. Without chromium the rendering cases say
** so and pass; scripts/setup installs it, so CI renders. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/kiln.h"
#include "testutil.h"

#define N_EX 150

static char g_dir[256];

static void setup(void) { kiln_test_tmpdir(g_dir, sizeof g_dir, "kiln_plot"); }
static void teardown(void) { kiln_test_rmtree(g_dir); }

static void path_in_dir(char *path, size_t cap, const char *name)
{
    ck_assert_int_lt(snprintf(path, cap, "%s/%s", g_dir, name), (int)cap);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert(s);
    ck_assert_int_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- A strict JSON reader ------------------------------------------------- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
typedef struct jv {
    int type;
    double num;
    char *str; /* J_STR: decoded UTF-8 */
    int n;
    char **keys; /* J_OBJ */
    struct jv *items;
} jv;

typedef struct jparse {
    const char *p;
    char err[128];
} jparse;

static void jskip(jparse *j)
{
    while (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r')
        j->p++;
}

static bool jfail(jparse *j, const char *what)
{
    if (!j->err[0])
        snprintf(j->err, sizeof j->err, "%s at '%.20s'", what, j->p);
    return false;
}

static void utf8_put(char **o, unsigned c)
{
    unsigned char *u = (unsigned char *)*o;
    if (c < 0x80)
        *u++ = (unsigned char)c;
    else if (c < 0x800)
        *u++ = (unsigned char)(0xC0 | c >> 6), *u++ = (unsigned char)(0x80 | (c & 0x3F));
    else if (c < 0x10000)
        *u++ = (unsigned char)(0xE0 | c >> 12), *u++ = (unsigned char)(0x80 | (c >> 6 & 0x3F)),
        *u++ = (unsigned char)(0x80 | (c & 0x3F));
    else
        *u++ = (unsigned char)(0xF0 | c >> 18), *u++ = (unsigned char)(0x80 | (c >> 12 & 0x3F)),
        *u++ = (unsigned char)(0x80 | (c >> 6 & 0x3F)), *u++ = (unsigned char)(0x80 | (c & 0x3F));
    *o = (char *)u;
}

static bool jhex4(jparse *j, unsigned *out)
{
    char buf[5] = {0};
    for (int i = 0; i < 4; i++) {
        if (!strchr("0123456789abcdefABCDEF", j->p[i]) || !j->p[i])
            return jfail(j, "bad \\u escape");
        buf[i] = j->p[i];
    }
    j->p += 4;
    *out = (unsigned)strtoul(buf, NULL, 16);
    return true;
}

static bool jstring(jparse *j, char **out)
{
    if (*j->p != '"')
        return jfail(j, "expected a string");
    j->p++;
    char *s = malloc(4 * strlen(j->p) + 1), *o = s;
    ck_assert(s);
    while (*j->p != '"') {
        unsigned char c = (unsigned char)*j->p;
        if (c == 0 || c < 0x20) {
            free(s);
            return jfail(j, "raw control character in a string");
        }
        if (c != '\\') {
            *o++ = *j->p++;
            continue;
        }
        j->p++;
        char e = *j->p++;
        const char *m = strchr("\"\\/bfnrt", e);
        if (e && m) {
            *o++ = "\"\\/\b\f\n\r\t"[m - "\"\\/bfnrt"];
            continue;
        }
        unsigned u, lo;
        if (e != 'u' || !jhex4(j, &u)) {
            free(s);
            return jfail(j, "bad escape");
        }
        if (u >= 0xD800 && u < 0xDC00) {
            if (j->p[0] != '\\' || j->p[1] != 'u' || (j->p += 2, !jhex4(j, &lo)) || lo < 0xDC00 ||
                lo > 0xDFFF) {
                free(s);
                return jfail(j, "lone surrogate");
            }
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        }
        utf8_put(&o, u);
    }
    j->p++;
    *o = '\0';
    *out = s;
    return true;
}

static bool jvalue(jparse *j, jv *v);

static bool jlist(jparse *j, jv *v, bool object)
{
    char close = object ? '}' : ']';
    j->p++;
    jskip(j);
    if (*j->p == close) {
        j->p++;
        return true;
    }
    for (;;) {
        v->items = realloc(v->items, (size_t)(v->n + 1) * sizeof *v->items);
        v->keys = realloc(v->keys, (size_t)(v->n + 1) * sizeof *v->keys);
        ck_assert(v->items && v->keys);
        v->keys[v->n] = NULL;
        memset(&v->items[v->n], 0, sizeof *v->items);
        v->n++;
        jskip(j);
        if (object) {
            if (!jstring(j, &v->keys[v->n - 1]))
                return false;
            jskip(j);
            if (*j->p++ != ':')
                return jfail(j, "expected ':'");
        }
        if (!jvalue(j, &v->items[v->n - 1]))
            return false;
        jskip(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p++ == close)
            return true;
        return jfail(j, "expected ',' or the end of a list");
    }
}

static bool jvalue(jparse *j, jv *v)
{
    memset(v, 0, sizeof *v);
    jskip(j);
    const char *p = j->p;
    if (*p == '{' || *p == '[') {
        v->type = *p == '{' ? J_OBJ : J_ARR;
        return jlist(j, v, *p == '{');
    }
    if (*p == '"') {
        v->type = J_STR;
        return jstring(j, &v->str);
    }
    if (strncmp(p, "null", 4) == 0 || strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
        v->type = *p == 'n' ? J_NULL : J_BOOL;
        v->num = *p == 't';
        j->p += *p == 'f' ? 5 : 4;
        return true;
    }
    /* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
    const char *q = p;
    if (*q == '-')
        q++;
    if (*q == '0')
        q++;
    else if (*q >= '1' && *q <= '9')
        while (*q >= '0' && *q <= '9')
            q++;
    else
        return jfail(j, "expected a value");
    if (*q == '.') {
        if (!(*++q >= '0' && *q <= '9'))
            return jfail(j, "bad fraction");
        while (*q >= '0' && *q <= '9')
            q++;
    }
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-')
            q++;
        if (!(*q >= '0' && *q <= '9'))
            return jfail(j, "bad exponent");
        while (*q >= '0' && *q <= '9')
            q++;
    }
    v->type = J_NUM;
    v->num = strtod(p, NULL);
    j->p = q;
    return true;
}

static void jfree(jv *v)
{
    for (int i = 0; i < v->n; i++) {
        jfree(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

static const jv *jget(const jv *o, const char *key)
{
    ck_assert_int_eq(o->type, J_OBJ);
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0)
            return &o->items[i];
    ck_abort_msg("no key '%s'", key);
    return NULL;
}

/* The data file: a comment, then kiln_plot_data(JSON); and nothing else.
** Checks it is ASCII with no '<' or '>' (inert in any HTML context). */
static void read_data(const char *path, jv *out)
{
    char *text = read_text(path);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        ck_assert_msg(*c < 0x80 && *c != '<' && *c != '>', "%s: byte 0x%02x at %ld", path, *c,
                      (long)((const char *)c - text));
    const char *call = strstr(text, "*/\nkiln_plot_data(");
    ck_assert_msg(strncmp(text, "/* ", 3) == 0 && call, "%s: no kiln_plot_data call", path);
    jparse j = {call + strlen("*/\nkiln_plot_data("), ""};
    bool ok = jvalue(&j, out);
    ck_assert_msg(ok, "%s: %s", path, j.err);
    ck_assert_msg(strcmp(j.p, ");\n") == 0, "%s: after the JSON: '%.20s'", path, j.p);
    ck_assert_int_eq(out->type, J_OBJ);
    ck_assert_str_eq(jget(out, "format")->str, "kiln-plot 1");
    free(text);
}

/* The series of data named name. */
static const jv *series_named(const jv *data, const char *name)
{
    const jv *series = jget(data, "series");
    for (int i = 0; i < series->n; i++)
        if (strcmp(jget(&series->items[i], "name")->str, name) == 0)
            return &series->items[i];
    ck_abort_msg("no series '%s'", name);
    return NULL;
}

/* ---- The model ------------------------------------------------------------- */

typedef struct demo {
    kiln_graph *g;
    kiln_param *a;
    kiln_node a_node, cost;
    kiln_program *p;
    kiln_dataset *d;
    kiln_stream *s;
} demo;

static void demo_build(demo *t, int64_t batch)
{
    memset(t, 0, sizeof *t);
    t->g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(t->g, "x", KILN_DTYPE_F32, 1, (int64_t[]){KILN_BATCH});
    t->a = kiln_param_create("a", 0, NULL);
    ck_assert(t->a && kiln_param_set_values(t->a, (double[]){3.0}, 1) == KILN_OK);
    t->a_node = kiln_graph_param(t->g, t->a);
    t->cost = kiln_expr_mean(t->g,
                             kiln_expr_abs(t->g, kiln_expr_sub(t->g, kiln_expr_square(t->g, x),
                                                               kiln_expr_pow(t->g, x, t->a_node))),
                             KILN_ALL_AXES);
    ck_assert_msg(kiln_graph_set_name(t->g, t->cost, "cost") == KILN_OK, "%s",
                  kiln_graph_errmsg(t->g));
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "plot_demo";
    o.cost = t->cost;
    o.step_rule = kiln_step_scale(0.1);
    o.monitors = &t->cost;
    o.n_monitors = 1;
    o.max_batch = batch;
    enum kiln_status st = kiln_compile(t->g, &o, &t->p);
    ck_assert_msg(st == KILN_OK, "compile: %s", t->p ? kiln_program_errmsg(t->p) : "out of memory");

    float xs[N_EX];
    uint64_t r = 88172645463325252u; /* xorshift64: U[0, 1) */
    for (int i = 0; i < N_EX; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        xs[i] = (float)((double)(r >> 11) / 9007199254740992.0);
    }
    t->d = kiln_dataset_create();
    ck_assert(kiln_dataset_add_source(t->d, "x", KILN_DTYPE_F32, N_EX, 0, NULL, xs) == KILN_OK);
    ck_assert(kiln_stream_create(t->d, KILN_SCHEME_SEQUENTIAL, batch, 0, &t->s) == KILN_OK);
}

static void demo_free(demo *t)
{
    kiln_stream_destroy(t->s);
    kiln_dataset_destroy(t->d);
    kiln_program_destroy(t->p);
    kiln_param_destroy(t->a);
    kiln_graph_destroy(t->g);
}

/* After each batch: records `cost` (the step's, before the update) and `a`. */
static enum kiln_status monitor_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                   void *user)
{
    demo *t = user;
    double cost, a;
    kiln_program *p = kiln_main_loop_program(m);
    if (kiln_program_read_scalar(p, t->cost, &cost) || kiln_program_get_param(p, t->a_node, &a, 1))
        return kiln_extension_fail(e, KILN_ERR_STATE, "%s", kiln_program_errmsg(p));
    enum kiln_status st = kiln_main_loop_set_record(m, "cost", cost);
    return st ? st : kiln_main_loop_set_record(m, "a", a);
}

static kiln_extension *monitor(demo *t)
{
    kiln_extension *e = kiln_extension_create("monitor", monitor_fn, t, NULL);
    ck_assert(e && kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_BATCH, 0) == KILN_OK);
    return e;
}

static kiln_extension *plot_every_batch(const char *document, const char *path,
                                        const char *const *const *channels)
{
    kiln_extension *e = kiln_plot(document, path, channels);
    ck_assert(e);
    ck_assert_msg(kiln_extension_add_trigger(e, KILN_TRIGGER_AFTER_BATCH, 0) == KILN_OK, "%s",
                  kiln_extension_errmsg(e));
    return e;
}

/* Train t for `epochs` with extensions exts (taken). */
static void train(demo *t, int64_t epochs, kiln_extension **exts, int n)
{
    kiln_main_loop *m = NULL;
    enum kiln_status st = kiln_main_loop_create_with_config(t->p, t->s, NULL, &m);
    ck_assert_msg(st == KILN_OK, "%s", m ? kiln_main_loop_errmsg(m) : "out of memory");
    kiln_test_loop_add(m, kiln_finish_after(epochs, 0));
    for (int i = 0; i < n; i++)
        kiln_test_loop_add(m, exts[i]);
    kiln_test_loop_run(m);
    kiln_main_loop_destroy(m);
}

/* ---- Headless Chromium ------------------------------------------------------- */

/* Render page in headless Chromium ($KILN_CHROMIUM, default chromium) and
** return its DOM (caller frees), or NULL, saying why, when there is none. */
static char *render(const char *page)
{
    const char *bin = getenv("KILN_CHROMIUM") ? getenv("KILN_CHROMIUM") : "chromium";
    char dom[512], cmd[2048];
    ck_assert_int_lt(snprintf(cmd, sizeof cmd, "command -v '%s' >/dev/null 2>&1", bin),
                     (int)sizeof cmd);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_plot: SKIP rendering %s: %s is not installed (scripts/setup "
                        "installs Debian's chromium)\n", page, bin);
        return NULL;
    }
    path_in_dir(dom, sizeof dom, "dom.html");
    ck_assert_int_lt(snprintf(cmd, sizeof cmd,
                              "timeout 60 '%s' --headless --disable-gpu --no-sandbox "
                              "--no-first-run --user-data-dir='%s/chromium' "
                              "--window-size=1000,1200 --virtual-time-budget=4000 --dump-dom "
                              "'file://%s#kiln-selftest' >'%s' 2>'%s/chromium.log'",
                              bin, g_dir, page, dom, g_dir),
                     (int)sizeof cmd);
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "chromium exited with %d (log: %s/chromium.log)", rc, g_dir);
    return read_text(dom);
}

/* From the DOM's marker, "figure F dataset D points P drawn N pixels X". */
static void drawn(const char *dom, int figure, int dataset, long *points, long *laid_out,
                  long *pixels)
{
    char key[64];
    snprintf(key, sizeof key, "figure %d dataset %d points ", figure, dataset);
    const char *at = strstr(dom, key);
    ck_assert_msg(at, "no '%s' in the rendered page's marker:\n%.2000s", key,
                  strstr(dom, "<body") ? strstr(dom, "<body") : dom);
    ck_assert_int_eq(sscanf(at + strlen(key), "%ld drawn %ld pixels %ld", points, laid_out, pixels),
                     3);
}

/* ---- Cases ---------------------------------------------------------------------- */

static const char *const COST[] = {"cost", NULL};
static const char *const A[] = {"a", NULL};
static const char *const *const DEMO_FIGURES[] = {COST, A, NULL};

/* Blocks' plotting example: the page shows both curves, every point of
** them, in the colours the data gives. */
START_TEST(plot_page_draws_the_curves_in_chromium)
{
    demo t;
    demo_build(&t, 1);
    char page[512], data[512];
    path_in_dir(page, sizeof page, "demo.html");
    path_in_dir(data, sizeof data, "demo.data.js");
    kiln_extension *exts[] = {monitor(&t), plot_every_batch("Plotting example", page, DEMO_FIGURES)};
    train(&t, 1, exts, 2);

    jv d;
    read_data(data, &d);
    ck_assert_str_eq(jget(&d, "state")->str, "finished");
    ck_assert_int_eq(jget(series_named(&d, "cost"), "x")->n, N_EX);
    const jv *ys = jget(series_named(&d, "a"), "y");
    ck_assert_int_eq(ys->n, N_EX);
    ck_assert_msg(ys->items[N_EX - 1].num < 2.9, "a = %g after one epoch", ys->items[N_EX - 1].num);
    jfree(&d);

    char *dom = render(page);
    if (dom) {
        for (int f = 1; f <= 2; f++) {
            long points, laid_out, pixels;
            drawn(dom, f, 1, &points, &laid_out, &pixels);
            ck_assert_int_eq(points, N_EX);
            ck_assert_int_eq(laid_out, N_EX);
            ck_assert_msg(pixels > 100, "figure %d: %ld pixels of the curve's colour", f, pixels);
        }
        ck_assert_ptr_nonnull(strstr(dom, "<title>Plotting example</title>"));
        ck_assert_ptr_nonnull(strstr(dom, "finished, data version"));
        free(dom);
    }
    demo_free(&t);
}
END_TEST

/* After every epoch the files are whole and hold every point so far: a user
** extension added after Plot reads them at each after_epoch. */
typedef struct reader {
    char page[512], data[512];
    int epochs_seen;
} reader;

static enum kiln_status reader_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                  void *user)
{
    (void)e, (void)which;
    reader *r = user;
    jv d;
    read_data(r->data, &d);
    int64_t it = kiln_main_loop_iterations_done(m);
    const jv *cost = series_named(&d, "cost"), *x = jget(cost, "x");
    ck_assert_int_eq(x->n, it);
    for (int i = 0; i < x->n; i++)
        ck_assert(x->items[i].num == i + 1);
    ck_assert_str_eq(jget(&d, "state")->str, "training");
    ck_assert_int_eq(jget(&d, "figures")->n, 2);
    jfree(&d);
    r->epochs_seen++;
    return KILN_OK;
}

START_TEST(plot_files_are_whole_after_every_report)
{
    demo t;
    demo_build(&t, 50); /* 3 batches an epoch */
    reader r = {0};
    path_in_dir(r.page, sizeof r.page, "run.htm");
    path_in_dir(r.data, sizeof r.data, "run.data.js");
    kiln_extension *check = kiln_extension_create("reader", reader_fn, &r, NULL);
    ck_assert(check && kiln_extension_add_trigger(check, KILN_TRIGGER_AFTER_EPOCH, 0) == KILN_OK);
    kiln_extension *exts[] = {monitor(&t), plot_every_batch("run", r.page, DEMO_FIGURES), check};
    train(&t, 4, exts, 3);
    ck_assert_int_eq(r.epochs_seen, 4);

    /* The page: the library inlined once, the data file named, and exactly
    ** two script elements (the library's and the page's). */
    char *page = read_text(r.page);
    ck_assert_int_eq(strncmp(page, "<!DOCTYPE html>", 15), 0);
    ck_assert_int_eq(count_of(page, "Chart.js v3"), 1);
    ck_assert_int_eq(count_of(page, "<script"), 2);
    ck_assert_int_eq(count_of(page, "</script>"), 2);
    ck_assert_ptr_nonnull(strstr(page, "var DATA_FILE = \"run.data.js\";"));
    ck_assert_ptr_nonnull(strstr(page, "</html>\n"));
    free(page);
    /* No temporary file left behind. */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", r.data);
    ck_assert_int_ne(access(tmp, F_OK), 0);
    demo_free(&t);
}
END_TEST

/* A plotted run of t: the monitor and Plot (every batch, into page), then
** ck (may be NULL) and FinishAfter(epochs, batches); m, when not NULL, has
** loaded a checkpoint. */
static void train_plotted(demo *t, kiln_main_loop *m, const char *page, kiln_extension *ck, int64_t epochs,
                          int64_t batches)
{
    if (!m) {
        enum kiln_status st = kiln_main_loop_create_with_config(t->p, t->s, NULL, &m);
        ck_assert_msg(st == KILN_OK, "%s", m ? kiln_main_loop_errmsg(m) : "out of memory");
    }
    kiln_test_loop_add(m, monitor(t));
    kiln_test_loop_add(m, plot_every_batch("run", page, DEMO_FIGURES));
    if (ck)
        kiln_test_loop_add(m, ck);
    kiln_test_loop_add(m, kiln_finish_after(epochs, batches));
    kiln_test_loop_run(m);
    kiln_main_loop_destroy(m);
}

/* A run checkpointed after batch k, stopped, and resumed by a new loop into
** a new page: the page holds the whole run, every point (iteration and
** value, to the bit) of the page of a run that never stopped (#8). */
static void check_plot_resume(int64_t k)
{
    char straight[512], first[512], resumed[512], ckpt[512], data[600];
    path_in_dir(straight, sizeof straight, "straight.html");
    path_in_dir(first, sizeof first, "first.html");
    path_in_dir(resumed, sizeof resumed, "resumed.html");
    path_in_dir(ckpt, sizeof ckpt, "run.h5");
    demo t;
    demo_build(&t, 50); /* 3 batches an epoch */
    train_plotted(&t, NULL, straight, NULL, 4, 0);
    demo_free(&t);

    demo_build(&t, 50);
    kiln_extension *ck = kiln_checkpoint(ckpt);
    ck_assert(ck);
    kiln_extension_clear_triggers(ck);
    ck_assert(kiln_extension_add_trigger(ck, KILN_TRIGGER_EVERY_N_BATCHES, k) == KILN_OK);
    train_plotted(&t, NULL, first, ck, 0, k);
    demo_free(&t);

    demo_build(&t, 50); /* a new process, as it were */
    kiln_main_loop *m = NULL;
    ck_assert(kiln_main_loop_create_with_config(t.p, t.s, NULL, &m) == KILN_OK);
    ck_assert_msg(kiln_checkpoint_load(m, ckpt) == KILN_OK, "%s", kiln_main_loop_errmsg(m));
    train_plotted(&t, m, resumed, NULL, 4, 0);
    demo_free(&t);

    jv a, b;
    snprintf(data, sizeof data, "%.*s.data.js", (int)(strlen(straight) - 5), straight);
    read_data(data, &a);
    snprintf(data, sizeof data, "%.*s.data.js", (int)(strlen(resumed) - 5), resumed);
    read_data(data, &b);
    for (int c = 0; c < 2; c++) {
        const char *name = c ? "a" : "cost";
        for (int q = 0; q < 2; q++) {
            const char *axis = q ? "y" : "x";
            const jv *pa = jget(series_named(&a, name), axis), *pb = jget(series_named(&b, name), axis);
            ck_assert_msg(pa->n == pb->n, "k = %lld: %s: %d points straight, %d resumed", (long long)k, name, pa->n,
                          pb->n);
            for (int i = 0; i < pa->n; i++)
                ck_assert_msg(pa->items[i].num == pb->items[i].num, "k = %lld: %s %s[%d]: %.17g straight, %.17g resumed",
                              (long long)k, name, axis, i, pa->items[i].num, pb->items[i].num);
        }
    }
    ck_assert_int_eq(jget(series_named(&b, "cost"), "x")->n, 12);
    jfree(&a);
    jfree(&b);
}

START_TEST(plot_of_a_resumed_run_holds_the_whole_run)
{
    check_plot_resume(7); /* mid-epoch */
    check_plot_resume(6); /* at an epoch's end */
}
END_TEST

/* Values read back as the same doubles; non-finite ones are named. */
static const double VALUES[] = {0.1, 1.0 / 3.0, -2.5e17, 5e-324, DBL_MAX, -0.0, 1e-300,
                                123456789.123456789, NAN, INFINITY, -INFINITY, 2.0};
#define N_VALUES ((int)(sizeof VALUES / sizeof VALUES[0]))

static enum kiln_status values_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                  void *user)
{
    (void)e, (void)which, (void)user;
    int64_t it = kiln_main_loop_iterations_done(m);
    return kiln_main_loop_set_record(m, "v", VALUES[(it - 1) % N_VALUES]);
}

START_TEST(plot_values_keep_full_precision_and_non_finite_ones_are_named)
{
    demo t;
    demo_build(&t, 10); /* 15 batches */
    char page[512], data[512];
    path_in_dir(page, sizeof page, "values.html");
    path_in_dir(data, sizeof data, "values.data.js");
    kiln_extension *v = kiln_extension_create("values", values_fn, NULL, NULL);
    ck_assert(v && kiln_extension_add_trigger(v, KILN_TRIGGER_AFTER_BATCH, 0) == KILN_OK);
    static const char *const V[] = {"v", NULL};
    static const char *const *const FIGS[] = {V, NULL};
    kiln_extension *exts[] = {v, plot_every_batch("values", page, FIGS)};
    train(&t, 1, exts, 2);

    jv d;
    read_data(data, &d);
    const jv *ys = jget(series_named(&d, "v"), "y");
    ck_assert_int_eq(ys->n, N_EX / 10);
    for (int i = 0; i < ys->n; i++) {
        double want = VALUES[i % N_VALUES];
        const jv *y = &ys->items[i];
        if (isnan(want))
            ck_assert(y->type == J_STR && strcmp(y->str, "NaN") == 0);
        else if (isinf(want))
            ck_assert(y->type == J_STR && strcmp(y->str, want > 0 ? "Infinity" : "-Infinity") == 0);
        else
            ck_assert_msg(y->type == J_NUM && memcmp(&y->num, &want, sizeof want) == 0,
                          "point %d: read %.17g, wrote %.17g", i, y->num, want);
    }
    jfree(&d);
    char *text = read_text(data);
    ck_assert_ptr_nonnull(strstr(text, "0.1, 0.3333333333333333, -2.5e+17, 4.94065645841247e-324, 1.7976931348623157e+308, -0, 1e-300, 123456789.12345679, \"NaN\", \"Infinity\", \"-Infinity\", 2, ")); /* shortest */
    free(text);

    char *dom = render(page);
    if (dom) {
        long points, laid_out, pixels;
        drawn(dom, 1, 1, &points, &laid_out, &pixels);
        ck_assert_int_eq(points, N_EX / 10);
        ck_assert_ptr_nonnull(strstr(dom, "4 not drawn (not finite or past \xc2\xb1" "1e+300), the last -Infinity at iteration 11"));
        free(dom);
    }
    demo_free(&t);
}
END_TEST

/* Names are data: quotes, backslashes, </script>, newlines and non-ASCII
** characters in channel and document names cannot break the page. */
static const char *const NASTY[] = {
    "q\"uote'", "</script><script>document.title='pwned'</script>", "back\\slash\nline",
    "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \xe2\x80\xa8", NULL};
#define N_NASTY 4

static enum kiln_status nasty_fn(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which,
                                 void *user)
{
    (void)e, (void)which, (void)user;
    int64_t it = kiln_main_loop_iterations_done(m);
    enum kiln_status st = KILN_OK;
    for (int i = 0; i < N_NASTY && st == KILN_OK; i++)
        st = kiln_main_loop_set_record(m, NASTY[i], (double)(it * (i + 1)));
    return st;
}

START_TEST(plot_names_cannot_break_the_page)
{
    demo t;
    demo_build(&t, 25); /* 6 batches */
    static const char DOC[] = "</title><script>document.title='pwned'</script> & \"doc\"";
    static const char *const *const FIGS[] = {NASTY, NULL};
    char page[512], data[512];
    path_in_dir(page, sizeof page, "nasty.html");
    path_in_dir(data, sizeof data, "nasty.data.js");
    kiln_extension *names = kiln_extension_create("names", nasty_fn, NULL, NULL);
    ck_assert(names && kiln_extension_add_trigger(names, KILN_TRIGGER_AFTER_BATCH, 0) == KILN_OK);
    kiln_extension *exts[] = {names, plot_every_batch(DOC, page, FIGS)};
    train(&t, 1, exts, 2);

    jv d;
    read_data(data, &d); /* ASCII, no '<' or '>' */
    ck_assert_str_eq(jget(&d, "document")->str, DOC);
    const jv *series = jget(&d, "series");
    ck_assert_int_eq(series->n, N_NASTY);
    for (int i = 0; i < N_NASTY; i++) {
        ck_assert_str_eq(jget(&series->items[i], "name")->str, NASTY[i]);
        ck_assert_int_eq(jget(&series->items[i], "y")->n, 6);
        ck_assert(jget(&series->items[i], "y")->items[5].num == 6.0 * (i + 1));
    }
    jfree(&d);
    char *html = read_text(page);
    ck_assert_int_eq(count_of(html, "<script"), 2);
    ck_assert_int_eq(count_of(html, "pwned"), 2); /* <title> and <h1>, escaped */
    ck_assert_int_eq(count_of(html, "&lt;/title&gt;&lt;script&gt;document.title=&#39;pwned&#39;"
                                    "&lt;/script&gt; &amp; &quot;doc&quot;"), 2);
    free(html);

    char *dom = render(page);
    if (dom) {
        for (int i = 1; i <= N_NASTY; i++) {
            long points, laid_out, pixels;
            drawn(dom, 1, i, &points, &laid_out, &pixels);
            ck_assert_int_eq(points, 6);
            ck_assert_msg(pixels > 20, "dataset %d: %ld pixels", i, pixels);
        }
        /* The title the page's script set is the name itself, as text. */
        ck_assert_ptr_nonnull(strstr(dom, "<title>&lt;/title&gt;&lt;script&gt;"));
        ck_assert_ptr_null(strstr(dom, "<script>document.title"));
        ck_assert_ptr_nonnull(strstr(dom, "&lt;/script&gt;&lt;script&gt;document.title='pwned'"
                                          "&lt;/script&gt;: 6 points"));
        free(dom);
    }
    demo_free(&t);
}
END_TEST

/* Bad arguments are errors that name what is wrong. */
START_TEST(plot_refuses_bad_arguments)
{
    static const char *const EMPTY[] = {NULL};
    static const char *const TWICE[] = {"cost", "cost", NULL};
    static const char *const *const NO_FIGURE[] = {NULL};
    static const char *const *const EMPTY_FIGURE[] = {COST, EMPTY, NULL};
    static const char *const *const TWICE_FIGURE[] = {TWICE, NULL};
    char long_name[KILN_MAX_NAME + 2];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    const char *const LONG[] = {long_name, NULL};
    const char *const *const LONG_FIGURE[] = {LONG, NULL};
    struct {
        const char *doc, *path;
        const char *const *const *channels;
        const char *want;
    } rows[] = {
        {NULL, "p.html", DEMO_FIGURES, "document name is NULL"},
        {"d", NULL, DEMO_FIGURES, "path is NULL"},
        {"d", "", DEMO_FIGURES, "path is empty"},
        {"d", "p.html", NULL, "channels: NULL"},
        {"d", "p.html", NO_FIGURE, "channels: no figure"},
        {"d", "p.html", EMPTY_FIGURE, "figure 2 has no channel"},
        {"d", "p.html", TWICE_FIGURE, "figure 1 names channel 'cost' twice"},
        {"d", "p.html", LONG_FIGURE, "figure 1, channel 1: a log key has 1 to 127 characters, got 128"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        kiln_extension *e = kiln_plot(rows[i].doc, rows[i].path, rows[i].channels);
        ck_assert(e);
        ck_assert_str_eq(kiln_extension_name(e), "Plot");
        ck_assert_msg(strstr(kiln_extension_errmsg(e), rows[i].want), "row %zu: '%s'", i,
                      kiln_extension_errmsg(e));
        kiln_extension_destroy(e);
    }
    kiln_extension *f = kiln_finish_after(1, 0);
    ck_assert(kiln_plot_set_library(f, "x.js") == KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(kiln_extension_errmsg(f), "is not a Plot"));
    kiln_extension_destroy(f);
}
END_TEST

/* A missing folder, a missing library, a library that would end the page's
** <script>: adding the extension fails, naming the file. */
START_TEST(plot_file_errors_fail_when_added)
{
    demo t;
    demo_build(&t, 50);
    char page[512], lib[512];
    path_in_dir(page, sizeof page, "no/such/folder/p.html");
    path_in_dir(lib, sizeof lib, "bad.js");
    FILE *f = fopen(lib, "w");
    ck_assert(f);
    fputs("var s = '</SCRIPT>';\n", f);
    fclose(f);
    struct {
        const char *page, *library, *want;
    } rows[] = {
        {page, NULL, "no/such/folder/p.html.tmp: cannot create: No such file or directory"},
        {"p.html", "/no/such/chart.js", "/no/such/chart.js: cannot read the charting library"},
        {"p.html", lib, "bad.js: holds '</script' or '<!--'"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        kiln_main_loop *m = NULL;
        ck_assert(kiln_main_loop_create_with_config(t.p, t.s, NULL, &m) == KILN_OK);
        kiln_extension *e = kiln_plot("d", rows[i].page, DEMO_FIGURES);
        if (rows[i].library)
            ck_assert(kiln_plot_set_library(e, rows[i].library) == KILN_OK);
        ck_assert(kiln_main_loop_add_extension(m, e) != KILN_OK);
        ck_assert_msg(strstr(kiln_main_loop_errmsg(m), rows[i].want), "row %zu: '%s'", i,
                      kiln_main_loop_errmsg(m));
        kiln_main_loop_destroy(m);
    }
    ck_assert_int_ne(access("p.html", F_OK), 0); /* nothing written */
    demo_free(&t);
}
END_TEST

static Suite *plot_suite(void)
{
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("plot");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, plot_page_draws_the_curves_in_chromium);
    tcase_add_test(tc, plot_files_are_whole_after_every_report);
    tcase_add_test(tc, plot_of_a_resumed_run_holds_the_whole_run);
    tcase_add_test(tc, plot_values_keep_full_precision_and_non_finite_ones_are_named);
    tcase_add_test(tc, plot_names_cannot_break_the_page);
    tcase_add_test(tc, plot_refuses_bad_arguments);
    tcase_add_test(tc, plot_file_errors_fail_when_added);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return kiln_test_run(plot_suite()); }
