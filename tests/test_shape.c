/* test_shape.c: shape arithmetic never overflows (#9, item 3).
**
** Sizes are monomials whose constant is at most 2^53 (compiler/shape.c); a
** value's bytes at the maxima of its symbols, a program's arena, a
** parameter's values and a dataset source at most KILN_MAX_BYTES. Every
** case gives a shape past one of those limits to the call that makes it and
** wants a clear error naming the node (or input, parameter, source) and its
** shape: never a wrapped size, a huge allocation or a crash. The sanitizer
** build runs these under UBSan, which reports any signed overflow left. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/graph.h"
#include "kiln/kiln.h"
#include "testutil.h"

#define P(k) (INT64_C(1) << (k))

/* The graph's error is a shape error whose message has every one of want[]. */
static void assert_shape_error(const kiln_graph *g, kiln_node n, const char *const *want, int n_want)
{
    ck_assert_msg(!kiln_node_ok(n), "the builder made node %d", (int)n.id);
    ck_assert_msg(kiln_graph_status(g) == KILN_ERR_SHAPE, "%s: %s", kiln_status_string(kiln_graph_status(g)),
                  kiln_graph_errmsg(g));
    for (int i = 0; i < n_want; i++)
        ck_assert_msg(strstr(kiln_graph_errmsg(g), want[i]), "no '%s' in: %s", want[i], kiln_graph_errmsg(g));
}

static const struct input_case {
    int rank;
    int64_t dims[3];
    const char *shape;
} INPUT_CASES[] = {
    {2, {KILN_BATCH, P(62)}, "(B, 4611686018427387904)"},
    {2, {P(32), P(32)}, "(4294967296, 4294967296)"},
    {3, {P(40), P(40), P(40)}, "(1099511627776, 1099511627776, 1099511627776)"},
};

START_TEST(regress_9_shape_overflow_input)
{
    const struct input_case *c = &INPUT_CASES[_i];
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, c->rank, c->dims);
    assert_shape_error(g, x, (const char *[]){"input 'x'", c->shape}, 2);
    kiln_graph_destroy(g);
}
END_TEST

/* (2^27, 1) and (1, 2^27) broadcast to 2^54 elements. */
START_TEST(regress_9_shape_overflow_broadcast)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node a = kiln_graph_input(g, "a", KILN_DTYPE_F32, 2, (int64_t[]){P(27), 1});
    kiln_node b = kiln_graph_input(g, "b", KILN_DTYPE_F32, 2, (int64_t[]){1, P(27)});
    const char *want[] = {"'a' (134217728, 1)", "'b' (1, 134217728)", "(134217728, 134217728)", "2^53"};
    assert_shape_error(g, kiln_expr_add(g, a, b), want, 4);
    kiln_graph_clear_error(g);
    assert_shape_error(g, kiln_expr_greater(g, a, b), want, 4);
    kiln_graph_clear_error(g);
    assert_shape_error(g, kiln_expr_select(g, a, a, b), want, 4);
    kiln_graph_clear_error(g);
    kiln_shape big = {.rank = 2, .dims = {P(27), P(27)}};
    assert_shape_error(g, kiln_expr_broadcast_to(g, a, &big), want, 1);
    kiln_graph_destroy(g);
}
END_TEST

/* One row per builder that makes a larger value than its operands. */
enum builder { B_MATMUL, B_CONCAT, B_GATHER, B_ONEHOT, B_RANDOM, B_RESHAPE, B_RESHAPE_INFER };
static const struct builder_case {
    enum builder b;
    const char *name;
    const char *want[2];
} BUILDER_CASES[] = {
    {B_MATMUL, "matmul", {"matmul of 'a' (1073741824, 8) and 'b' (8, 1073741824)", "(1073741824, 1073741824)"}},
    {B_CONCAT, "concat", {"concat of 'v'", "(13510798882111488,)"}},
    {B_GATHER, "gather", {"gather of 't' (1024, 1073741824) and 'i' (B, 1073741824)", "2^53"}},
    {B_ONEHOT, "onehot", {"onehot of 'i'", "(B, 1073741824, 1073741824)"}},
    {B_RANDOM, "random", {"random_uniform of", "(1099511627776, 1099511627776)"}},
    {B_RESHAPE, "reshape", {"reshape of 'a' (1073741824, 8)", "dim 1 is 1099511627776"}},
    {B_RESHAPE_INFER, "reshape (inferred)", {"reshape of 'a' (1073741824, 8)", "dims 0 to 2"}},
};

START_TEST(regress_9_shape_overflow_builders)
{
    const struct builder_case *c = &BUILDER_CASES[_i];
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node a = kiln_graph_input(g, "a", KILN_DTYPE_F32, 2, (int64_t[]){P(30), 8});
    kiln_node b = kiln_graph_input(g, "b", KILN_DTYPE_F32, 2, (int64_t[]){8, P(30)});
    kiln_node v = kiln_graph_input(g, "v", KILN_DTYPE_F32, 1, (int64_t[]){P(52)});
    kiln_node t = kiln_graph_input(g, "t", KILN_DTYPE_F32, 2, (int64_t[]){1024, P(30)});
    kiln_node i = kiln_graph_input(g, "i", KILN_DTYPE_I32, 2, (int64_t[]){KILN_BATCH, P(30)});
    ck_assert_msg(kiln_graph_status(g) == KILN_OK, "%s", kiln_graph_errmsg(g));
    kiln_node r = KILN_NODE_NONE;
    switch (c->b) {
    case B_MATMUL: r = kiln_expr_matmul(g, a, b); break;
    case B_CONCAT: r = kiln_expr_concat(g, (kiln_node[]){v, v, v}, 3, 0); break;
    case B_GATHER: r = kiln_expr_gather(g, t, i); break;
    case B_ONEHOT: r = kiln_expr_onehot(g, i, P(30)); break;
    case B_RANDOM:
        r = kiln_expr_random_uniform(g, kiln_graph_random_state(g, 1), 2, (int64_t[]){P(40), P(40)}, 0, 1);
        break;
    case B_RESHAPE: r = kiln_expr_reshape(g, a, 2, (int64_t[]){P(40), P(40)}); break;
    case B_RESHAPE_INFER: r = kiln_expr_reshape(g, a, 3, (int64_t[]){KILN_INFER, P(40), P(40)}); break;
    }
    assert_shape_error(g, r, c->want, 2);
    kiln_graph_destroy(g);
}
END_TEST

/* Compile outputs = {tanh(x)} of x (shape dims) with the maxima given; the
** status, the message in msg. */
static enum kiln_status compile_tanh(int rank, const int64_t *dims, int64_t max_batch, int64_t max_time,
                                     char *msg, size_t cap)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, rank, dims);
    kiln_node y = kiln_expr_tanh(g, x);
    ck_assert_msg(kiln_node_ok(y), "%s", kiln_graph_errmsg(g));
    kiln_graph_set_name(g, y, "y");
    kiln_compile_options o = kiln_compile_options_default();
    o.outputs = &y;
    o.n_outputs = 1;
    o.max_batch = max_batch;
    o.max_size[KILN_SYMBOL_INDEX(KILN_TIME)] = max_time;
    kiln_program *p = NULL;
    enum kiln_status st = kiln_compile(g, &o, &p);
    snprintf(msg, cap, "%s", kiln_program_errmsg(p));
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
    return st;
}

/* 2^28 floats an example, 2^24 examples: 2^54 bytes of arena (issue #9: a
** compile error, not an allocation the sanitizers abort on). */
START_TEST(regress_9_shape_overflow_arena_at_maxima)
{
    char msg[KILN_MAX_NAME * 8];
    enum kiln_status st = compile_tanh(2, (int64_t[]){KILN_BATCH, P(28)}, P(24), 0, msg, sizeof msg);
    ck_assert_msg(st == KILN_ERR_SHAPE, "%s: %s", kiln_status_string(st), msg);
    ck_assert_msg(strstr(msg, "(B, 268435456)") && strstr(msg, "B = 16777216") && strstr(msg, "1099511627776"),
                  "%s", msg);
    /* a model within the limits compiles */
    st = compile_tanh(2, (int64_t[]){KILN_BATCH, 1024}, 4096, 0, msg, sizeof msg);
    ck_assert_msg(st == KILN_OK, "%s", msg);
}
END_TEST

/* Sizes at the maxima T = 2^32, B = 2^24: T*B*2^20 is 2^76 elements, T*T*B
** 2^88 (its unit alone passes int64: undefined behaviour before #9). */
static const struct symbols_case {
    int rank;
    int64_t dims[4];
    const char *shape;
} SYMBOLS_CASES[] = {
    {3, {KILN_TIME, KILN_BATCH, P(20)}, "(T, B, 1048576)"},
    {4, {KILN_TIME, KILN_TIME, KILN_BATCH, 4}, "(T, T, B, 4)"},
};

START_TEST(regress_9_shape_overflow_symbols_at_maxima)
{
    const struct symbols_case *c = &SYMBOLS_CASES[_i];
    char msg[KILN_MAX_NAME * 8];
    enum kiln_status st = compile_tanh(c->rank, c->dims, P(24), P(32), msg, sizeof msg);
    ck_assert_msg(st == KILN_ERR_SHAPE, "%s: %s", kiln_status_string(st), msg);
    ck_assert_msg(strstr(msg, "input 'x'") && strstr(msg, c->shape) && strstr(msg, "T = 4294967296"), "%s", msg);
}
END_TEST

/* Parameters: 2^58 doubles (2^61 bytes) is past KILN_MAX_BYTES. */
START_TEST(regress_9_shape_overflow_param)
{
    ck_assert_ptr_null(kiln_param_create("w", 2, (int64_t[]){P(30), P(28)}));
    ck_assert_ptr_null(kiln_state_create("s", 2, (int64_t[]){P(32), P(32)}));
    kiln_brick *lin = kiln_linear_create("linear", P(30), P(28));
    ck_assert_ptr_nonnull(lin);
    enum kiln_status st = kiln_brick_allocate(lin);
    ck_assert_msg(st == KILN_ERR_SHAPE, "%s: %s", kiln_status_string(st), kiln_brick_errmsg(lin));
    ck_assert_msg(strstr(kiln_brick_errmsg(lin), "/linear: parameter W of shape (1073741824, 268435456)"), "%s",
                  kiln_brick_errmsg(lin));
    kiln_brick_destroy(lin);
}
END_TEST

/* A source of 2^40 examples of 4 KiB: the count is refused before any copy. */
START_TEST(regress_9_shape_overflow_dataset_source)
{
    kiln_dataset *d = kiln_dataset_create();
    float x[1024] = {0};
    enum kiln_status st = kiln_dataset_add_source(d, "x", KILN_DTYPE_F32, P(40), 1, (int64_t[]){1024}, x);
    ck_assert_msg(st == KILN_ERR_SHAPE, "%s: %s", kiln_status_string(st), kiln_dataset_errmsg(d));
    ck_assert_msg(strstr(kiln_dataset_errmsg(d), "source 'x'"), "%s", kiln_dataset_errmsg(d));
    st = kiln_dataset_add_source(d, "y", KILN_DTYPE_F32, 1, 2, (int64_t[]){P(32), P(32)}, x);
    ck_assert_msg(st == KILN_ERR_SHAPE, "%s: %s", kiln_status_string(st), kiln_dataset_errmsg(d));
    ck_assert_int_eq(kiln_dataset_source_count(d), 0);
    kiln_dataset_destroy(d);
}
END_TEST

static Suite *shape_suite(void)
{
    Suite *s = suite_create("shape");
    TCase *tc = tcase_create("overflow");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, regress_9_shape_overflow_input, 0, (int)(sizeof INPUT_CASES / sizeof *INPUT_CASES));
    tcase_add_test(tc, regress_9_shape_overflow_broadcast);
    tcase_add_loop_test(tc, regress_9_shape_overflow_builders, 0,
                        (int)(sizeof BUILDER_CASES / sizeof *BUILDER_CASES));
    tcase_add_test(tc, regress_9_shape_overflow_arena_at_maxima);
    tcase_add_loop_test(tc, regress_9_shape_overflow_symbols_at_maxima, 0,
                        (int)(sizeof SYMBOLS_CASES / sizeof *SYMBOLS_CASES));
    tcase_add_test(tc, regress_9_shape_overflow_param);
    tcase_add_test(tc, regress_9_shape_overflow_dataset_source);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return kiln_test_run(shape_suite()); }
