/* test_print.c: a graph as text and as Graphviz dot, and a program's graph.
**
** The text form is checked byte for byte on a small graph that has one of
** each kind of line (leaves, attributes, names, owners, roles, a tuple, a
** random node, an update). The dot form is parsed here by a small parser of
** the subset kiln writes (statements, attribute lists, quoted strings with
** escapes): it must be well formed, define every node once and have every
** edge name defined nodes, and a hostile name must stay inside its label. */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

#include "compiler/graph.h"
#include "testutil.h"

/* What f printed into a memory stream, as a string (caller frees). */
typedef enum kiln_status (*writer)(const kiln_graph *, FILE *);
static char *print_to_string(const kiln_graph *g, writer w)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(w(g, f), KILN_OK);
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

/* ---- a parser for the dot kiln writes ---------------------------------------- */

typedef struct dot_parser {
    const char *s;
    char tok[4096]; /* the current token; a string's text without its quotes */
    bool is_string;
    int defined[1024]; /* nodes nK defined (count) */
    int n_edges, max_node;
    char err[256];
} dot_parser;

static void dot_fail(dot_parser *d, const char *what)
{
    if (!d->err[0])
        snprintf(d->err, sizeof d->err, "%s near '%.20s'", what, d->s);
}

/* Next token: an identifier, a quoted string, "->" or one punctuation mark;
** false at the end or on an error (unterminated string, raw newline in it). */
static bool dot_next(dot_parser *d)
{
    while (isspace((unsigned char)*d->s))
        d->s++;
    d->is_string = false;
    size_t n = 0;
    if (!*d->s)
        return false;
    if (*d->s == '"') {
        d->is_string = true;
        for (d->s++; *d->s != '"'; d->s++) {
            if (!*d->s || *d->s == '\n') {
                dot_fail(d, *d->s ? "raw newline in a string" : "unterminated string");
                return false;
            }
            if (*d->s == '\\' && d->s[1]) /* an escape: the next character is taken as is */
                d->tok[n++] = *d->s++;
            if (n + 2 >= sizeof d->tok) {
                dot_fail(d, "string too long");
                return false;
            }
            d->tok[n++] = *d->s;
        }
        d->s++;
    } else if (isalnum((unsigned char)*d->s) || *d->s == '_') {
        while ((isalnum((unsigned char)*d->s) || *d->s == '_') && n + 1 < sizeof d->tok)
            d->tok[n++] = *d->s++;
    } else if (d->s[0] == '-' && d->s[1] == '>') {
        d->tok[n++] = *d->s++;
        d->tok[n++] = *d->s++;
    } else if (strchr("{}[];,=", *d->s)) {
        d->tok[n++] = *d->s++;
    } else {
        dot_fail(d, "unexpected character");
        return false;
    }
    d->tok[n] = '\0';
    return true;
}

static bool dot_is(const dot_parser *d, const char *t) { return !d->is_string && strcmp(d->tok, t) == 0; }

/* A node id nK; returns K or -1. */
static int dot_node_id(const dot_parser *d)
{
    if (d->is_string || d->tok[0] != 'n' || !isdigit((unsigned char)d->tok[1]))
        return -1;
    int k = atoi(d->tok + 1);
    return k >= 0 && k < 1024 ? k : -1;
}

/* [key=value, ...] after the '[' */
static bool dot_attrs(dot_parser *d)
{
    for (;;) {
        if (!dot_next(d))
            return false;
        if (dot_is(d, "]"))
            return dot_next(d);
        if (d->is_string || !isalpha((unsigned char)d->tok[0]))
            return dot_fail(d, "attribute name expected"), false;
        if (!dot_next(d) || !dot_is(d, "="))
            return dot_fail(d, "'=' expected"), false;
        if (!dot_next(d) || (!d->is_string && !isalnum((unsigned char)d->tok[0])))
            return dot_fail(d, "attribute value expected"), false;
        if (!dot_next(d))
            return false;
        if (dot_is(d, "]"))
            return dot_next(d);
        if (!dot_is(d, ","))
            return dot_fail(d, "',' or ']' expected"), false;
    }
}

/* digraph NAME { statements } and nothing after; the counts in d. */
static bool dot_parse(dot_parser *d, const char *text)
{
    memset(d, 0, sizeof *d);
    d->s = text;
    d->max_node = -1;
    if (!dot_next(d) || !dot_is(d, "digraph") || !dot_next(d) || d->is_string || !dot_next(d) || !dot_is(d, "{"))
        return dot_fail(d, "'digraph name {' expected"), false;
    int edges_to[4096][2], n_edges = 0;
    if (!dot_next(d))
        return dot_fail(d, "'}' expected"), false;
    while (!dot_is(d, "}")) {
        if (dot_is(d, "node")) { /* node [defaults]; */
            if (!dot_next(d) || !dot_is(d, "[") || !dot_attrs(d))
                return dot_fail(d, "node defaults expected"), false;
        } else {
            int a = dot_node_id(d);
            if (a < 0)
                return dot_fail(d, "node id expected"), false;
            if (!dot_next(d))
                return dot_fail(d, "statement cut short"), false;
            if (dot_is(d, "->")) {
                if (!dot_next(d) || dot_node_id(d) < 0 || n_edges == 4096)
                    return dot_fail(d, "edge target expected"), false;
                edges_to[n_edges][0] = a;
                edges_to[n_edges++][1] = dot_node_id(d);
                if (!dot_next(d))
                    return dot_fail(d, "statement cut short"), false;
                if (dot_is(d, "[") && !dot_attrs(d))
                    return false;
            } else {
                d->defined[a]++;
                if (a > d->max_node)
                    d->max_node = a;
                if (!dot_is(d, "[") || !dot_attrs(d))
                    return dot_fail(d, "a node's attributes expected"), false;
            }
        }
        if (!dot_is(d, ";"))
            return dot_fail(d, "';' expected"), false;
        if (!dot_next(d))
            return dot_fail(d, "'}' expected"), false;
    }
    if (dot_next(d))
        return dot_fail(d, "text after the closing brace"), false;
    if (d->err[0])
        return false;
    for (int k = 0; k <= d->max_node; k++)
        if (d->defined[k] != 1) {
            snprintf(d->err, sizeof d->err, "node n%d defined %d times", k, d->defined[k]);
            return false;
        }
    for (int e = 0; e < n_edges; e++)
        for (int k = 0; k < 2; k++)
            if (edges_to[e][k] > d->max_node || !d->defined[edges_to[e][k]]) {
                snprintf(d->err, sizeof d->err, "edge %d names n%d, which is not defined", e, edges_to[e][k]);
                return false;
            }
    d->n_edges = n_edges;
    return true;
}

/* ---- the small graph ----------------------------------------------------------- */

typedef struct small {
    kiln_graph *g;
    kiln_brick *lin;
} small;

/* x (B, 2) -> Linear(2, 3) -> split into 1 + 2 columns -> sum of the second
** over axis 1, plus a uniform draw of (B,): one of each kind of line. */
static kiln_node small_make(small *m)
{
    kiln_graph *g = m->g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, 2});
    m->lin = kiln_linear_create("lin", 2, 3);
    kiln_brick_set_use_bias(m->lin, false);
    kiln_node h;
    ck_assert_int_eq(kiln_brick_apply(m->lin, g, x, &h), KILN_OK);
    kiln_node parts = kiln_expr_split(g, h, 1, 2, (int64_t[]){1, 2});
    kiln_node s = kiln_expr_sum(g, kiln_expr_output(g, parts, 1), 1);
    kiln_node r = kiln_expr_random_uniform(g, kiln_graph_random_state(g, 3), 1, (int64_t[]){KILN_BATCH}, -1, 0.25);
    kiln_node y = kiln_expr_add(g, kiln_expr_clip(g, s, 0, 1), r);
    ck_assert_int_eq(kiln_graph_set_name(g, y, "y"), KILN_OK);
    ck_assert_int_eq(kiln_graph_add_role(g, y, KILN_ROLE_COST), KILN_OK);
    ck_assert_int_eq(kiln_graph_status(g), KILN_OK);
    return y;
}

static void small_free(small *m)
{
    kiln_graph_destroy(m->g);
    kiln_brick_destroy(m->lin);
}

START_TEST(text_of_a_small_graph)
{
    small m;
    small_make(&m);
    char *t = print_to_string(m.g, kiln_graph_write_text);
    static const char want[] =
        "n0 = input float32 (B, 2) name=\"x\" roles=INPUT\n"
        "n1 = param float32 (2, 3) name=\"W\" owner=\"/lin\" roles=PARAMETER|WEIGHT\n"
        "n2 = square float32 (2, 3) (n1)\n"
        "n3 = sum float32 () (n2) axes=(0, 1)\n"
        "n4 = sqrt float32 () (n3) name=\"W_norm\" owner=\"/lin\" roles=AUXILIARY\n"
        "n5 = matmul float32 (B, 3) (n0, n1) name=\"lin_apply_output\" owner=\"/lin\" roles=OUTPUT\n"
        "n6 = split {float32 (B, 1); float32 (B, 2)} (n5) axis=1\n"
        "n7 = proj float32 (B, 2) (n6) index=1\n"
        "n8 = sum float32 (B,) (n7) axes=(1)\n"
        "n9 = state int32 (4,) name=\"random_state\" roles=RANDOM_STATE\n"
        "n10 = rng_next int32 (4,) (n9)\n"
        "n11 = random float32 (B,) (n9) dist=uniform lo=-1 hi=0.25 stream=0\n"
        "n12 = clip float32 (B,) (n8) lo=0 hi=1\n"
        "n13 = add float32 (B,) (n12, n11) name=\"y\" roles=COST\n"
        "update n9 <- n10\n";
    ck_assert_str_eq(t, want);
    free(t);
    small_free(&m);
}
END_TEST

START_TEST(text_shows_constants_symbols_and_replacements)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F64);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F64, 2, (int64_t[]){KILN_TIME, KILN_BATCH});
    kiln_node m = kiln_expr_mean(g, kiln_expr_mul(g, x, kiln_expr_constant(g, 0.1)), 1);
    kiln_node t = kiln_expr_transpose(g, kiln_expr_reshape(g, x, 2, (int64_t[]){KILN_INFER, 1}));
    kiln_node ng_out[2];
    kiln_graph *ng;
    kiln_node x2 = kiln_expr_mul(g, x, kiln_expr_constant(g, 2));
    ck_assert_int_eq(kiln_graph_replace(g, (kiln_node[]){m, t}, 2, &x, &x2, 1, &ng, ng_out), KILN_OK);
    char *s = print_to_string(ng, kiln_graph_write_text);
    ck_assert_msg(strstr(s, "= const float64 () value=0.1\n"), "%s", s); /* shortest form that reads back */
    ck_assert_msg(strstr(s, "= size float64 () symbol=B\n"), "%s", s);   /* the mean's count */
    ck_assert_msg(strstr(s, "= reshape float64 (T*B, 1) ("), "%s", s);
    ck_assert_msg(strstr(s, "= transpose float64 (1, T*B) (") && strstr(s, "perm=(1, 0)\n"), "%s", s);
    ck_assert_msg(strstr(s, "= mul float64 (T, B) (n0, n5) replaces=n0\n"), "%s", s);
    free(s);
    kiln_graph_destroy(ng);
    kiln_graph_destroy(g);
}
END_TEST

START_TEST(dot_is_well_formed)
{
    small m;
    small_make(&m);
    char *t = print_to_string(m.g, kiln_graph_write_dot);
    dot_parser d;
    ck_assert_msg(dot_parse(&d, t), "%s\n%s", d.err, t);
    ck_assert_int_eq(d.max_node, kiln_graph_node_count(m.g) - 1);
    ck_assert_int_eq(d.n_edges, 13 + 1); /* one per input, one per update */
    ck_assert_ptr_nonnull(strstr(t, "n5 [label=\"n5 = matmul\\lfloat32 (B, 3)\\l(n0, n1)\\lname=\\\"lin_apply_output\\\""));
    ck_assert_ptr_nonnull(strstr(t, "n10 -> n9 [style=dashed, label=\"update\"];"));
    free(t);
    small_free(&m);
}
END_TEST

START_TEST(hostile_names_stay_inside_their_label)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 1, (int64_t[]){3});
    kiln_node y = kiln_expr_exp(g, x);
    static const char evil[] = "a\"];\nn99 -> n0;\n} digraph x { \\\"\t\x01";
    ck_assert_int_eq(kiln_graph_set_name(g, y, evil), KILN_OK);
    kiln_graph_node(g, y.id)->owner = kiln_graph_intern(g, "/b\\\"\n{"); /* an owner path as a user might write one */
    /* text: still one line per node, the name escaped */
    char *t = print_to_string(g, kiln_graph_write_text);
    ck_assert_str_eq(t, "n0 = input float32 (3,) name=\"x\" roles=INPUT\n"
                        "n1 = exp float32 (3,) (n0) name=\"a\\\"];\\nn99 -> n0;\\n} digraph x { \\\\\\\"\\t\\x01\" "
                        "owner=\"/b\\\\\\\"\\n{\"\n");
    free(t);
    /* dot: parses, two nodes, one edge (no n99), the name inside n1's label */
    t = print_to_string(g, kiln_graph_write_dot);
    dot_parser d;
    ck_assert_msg(dot_parse(&d, t), "%s\n%s", d.err, t);
    ck_assert_int_eq(d.max_node, 1);
    ck_assert_int_eq(d.n_edges, 1);
    ck_assert_ptr_nonnull(strstr(t, "name=\\\"a\\\\\\\"];\\\\nn99 -> n0;\\\\n} digraph x { "));
    free(t);
    kiln_graph_destroy(g);
}
END_TEST

START_TEST(program_graph_after_passes)
{
    small m;
    kiln_node y = small_make(&m);
    kiln_node cost = kiln_expr_sum(m.g, y, KILN_ALL_AXES);
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "printed";
    o.cost = cost;
    o.step_rule = kiln_step_momentum(0.1, 0.9);
    o.max_batch = 4;
    kiln_program *p;
    ck_assert_msg(kiln_compile(m.g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    char *buf = NULL;
    size_t len = 0;
    for (int dot = 0; dot < 2; dot++) {
        FILE *f = open_memstream(&buf, &len);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(kiln_program_write_graph(p, f, dot), KILN_OK);
        ck_assert_int_eq(fclose(f), 0);
        if (dot) {
            dot_parser d;
            ck_assert_msg(dot_parse(&d, buf), "%s\n%s", d.err, buf);
            ck_assert_ptr_nonnull(strstr(buf, "label=\"update (train_step)\""));
        } else {
            /* gradients, the step rule's updates (train_step only) and the random state's */
            ck_assert_msg(strstr(buf, "name=\"d_lin_apply_output\""), "%s", buf);
            ck_assert_msg(strstr(buf, "name=\"W_velocity\" owner=\"/lin\""), "%s", buf);
            ck_assert_msg(strstr(buf, "(train_step)\n"), "%s", buf);
            const char *u = strstr(buf, "update ");
            ck_assert_ptr_nonnull(u);
            int n_updates = 0, n_train = 0;
            for (; u; u = strstr(u + 1, "\nupdate ")) {
                n_updates++;
                const char *eol = strchr(u + 1, '\n');
                n_train += eol && memmem(u, (size_t)(eol - u), "(train_step)", 12) != NULL;
            }
            ck_assert_int_eq(n_updates, 3); /* W's velocity, W, the random state */
            ck_assert_int_eq(n_train, 2);
        }
        free(buf);
        buf = NULL;
    }
    ck_assert_int_eq(kiln_program_write_graph(p, NULL, false), KILN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(kiln_program_errmsg(p), "NULL"));
    kiln_program_destroy(p);
    small_free(&m);
}
END_TEST

/* A forward node that is also an adjoint (the mask m is d(h * m)/dh) was
** named d_<h> by autodiff, so the program graph and the generated code
** called the dropout mask a gradient. */
START_TEST(regress_8_dropout_mask_not_named_as_gradient)
{
    small m;
    small_make(&m);
    kiln_graph *g = m.g;
    kiln_node h = kiln_graph_input_by_name(g, "x");
    ck_assert_int_eq(kiln_brick_apply(m.lin, g, h, &h), KILN_OK);
    kiln_node mask = kiln_expr_random_bernoulli(g, kiln_graph_random_state(g, 3), 2, (int64_t[]){KILN_BATCH, 3}, 0.5);
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = kiln_expr_sum(g, kiln_expr_mul(g, h, mask), KILN_ALL_AXES);
    o.max_batch = 4;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(kiln_program_write_graph(p, f, false), KILN_OK);
    fclose(f);
    const char *line = strstr(buf, "= random float32 (B, 3)");
    ck_assert_ptr_nonnull(line);
    const char *eol = strchr(line, '\n');
    ck_assert_msg(!memmem(line, (size_t)(eol - line), "name=", 5), "%.*s", (int)(eol - line), line);
    ck_assert_msg(strstr(buf, "name=\"d_W\""), "%s", buf); /* real adjoints keep their names */
    free(buf);
    kiln_program_destroy(p);
    small_free(&m);
}
END_TEST

START_TEST(write_errors)
{
    small m;
    small_make(&m);
    ck_assert_int_eq(kiln_graph_write_text(NULL, stdout), KILN_ERR_ARG);
    ck_assert_int_eq(kiln_graph_write_dot(m.g, NULL), KILN_ERR_ARG);
    FILE *f = fopen("/dev/full", "w");
    if (f) { /* writing to a full device fails: reported, and the graph is untouched */
        setvbuf(f, NULL, _IONBF, 0);
        ck_assert_int_eq(kiln_graph_write_text(m.g, f), KILN_ERR_IO);
        fclose(f);
        ck_assert_int_eq(kiln_graph_status(m.g), KILN_OK);
    }
    small_free(&m);
}
END_TEST

static Suite *print_suite(void)
{
    Suite *s = suite_create("print");
    TCase *tc = tcase_create("print");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, text_of_a_small_graph);
    tcase_add_test(tc, text_shows_constants_symbols_and_replacements);
    tcase_add_test(tc, dot_is_well_formed);
    tcase_add_test(tc, hostile_names_stay_inside_their_label);
    tcase_add_test(tc, program_graph_after_passes);
    tcase_add_test(tc, regress_8_dropout_mask_not_named_as_gradient);
    tcase_add_test(tc, write_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return kiln_test_run(print_suite()); }
