/* test_symbols.c: symbolic dims beyond the batch: B and T on any axis,
** user symbols, reshape and flatten folding symbols into products (T*B)
** and back, the memory plan's zones at run-time sizes below the maxima,
** and a time-major (T, B, F) model that applies a Linear at every time step
** through a reshape, reduces over T, gradient-checks and trains. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <kiln/kiln.h>

#include "gradcheck.h"
#include "testutil.h"

enum { F = 3, H = 2, TMAX = 5, BMAX = 4 };

START_TEST(symbols_are_named_and_shared_by_name)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    char buf[64];
    ck_assert_str_eq(kiln_graph_dim_str(g, KILN_BATCH, buf, sizeof buf), "B");
    ck_assert_str_eq(kiln_graph_dim_str(g, KILN_TIME, buf, sizeof buf), "T");
    ck_assert_str_eq(kiln_graph_dim_str(g, 784, buf, sizeof buf), "784");
    int64_t l = kiln_graph_symbol(g, "L");
    ck_assert_int_lt(l, KILN_TIME);
    ck_assert_int_eq(kiln_graph_symbol(g, "L"), l);
    ck_assert_int_eq(KILN_SYMBOL_INDEX(l), 2);
    ck_assert_str_eq(kiln_graph_dim_str(g, l, buf, sizeof buf), "L");
    ck_assert_int_eq(kiln_graph_symbol(g, "9x"), 0);
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(g), "letters, digits"));
    kiln_graph_clear_error(g);
    for (int k = 0; k < 5; k++) {
        char name[8];
        snprintf(name, sizeof name, "S%d", k);
        ck_assert_int_lt(kiln_graph_symbol(g, name), 0);
    }
    ck_assert_int_eq(kiln_graph_symbol(g, "one_too_many"), 0);
    ck_assert_int_eq(kiln_graph_status(g), KILN_ERR_UNSUPPORTED);
    kiln_graph_destroy(g);
}
END_TEST

START_TEST(reshape_and_flatten_fold_symbols_and_unfold_them)
{
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 3, (int64_t[]){KILN_TIME, KILN_BATCH, F});
    ck_assert(kiln_node_ok(x));
    kiln_node flat = kiln_expr_reshape(g, x, 2, (int64_t[]){KILN_INFER, F});
    ck_assert_msg(kiln_node_ok(flat), "%s", kiln_graph_errmsg(g));
    char buf[64];
    ck_assert_str_eq(kiln_graph_dim_str(g, kiln_graph_node_dim(g, flat, 0), buf, sizeof buf), "T*B");
    ck_assert_int_eq(kiln_graph_node_dim(g, flat, 1), F);
    /* the same product is the same code */
    kiln_node flat2 = kiln_expr_reshape(g, x, 2, (int64_t[]){KILN_INFER, F});
    ck_assert_int_eq(kiln_graph_node_dim(g, flat2, 0), kiln_graph_node_dim(g, flat, 0));
    /* Theano's flatten keeps the leading axes and folds the rest: (T, B*3) */
    kiln_node tail = kiln_expr_flatten(g, x, 2);
    ck_assert_int_eq(kiln_graph_node_dim(g, tail, 0), KILN_TIME);
    ck_assert_str_eq(kiln_graph_dim_str(g, kiln_graph_node_dim(g, tail, 1), buf, sizeof buf), "B*3");
    kiln_node back = kiln_expr_reshape(g, flat, 3, (int64_t[]){KILN_TIME, KILN_BATCH, F});
    ck_assert_int_eq(kiln_graph_node_dim(g, back, 0), KILN_TIME);
    ck_assert_int_eq(kiln_graph_node_dim(g, back, 1), KILN_BATCH);
    kiln_node all = kiln_expr_flatten(g, x, 1);
    ck_assert_str_eq(kiln_graph_dim_str(g, kiln_graph_node_dim(g, all, 0), buf, sizeof buf), "T*B*3");
    /* element counts must agree as monomials */
    ck_assert(!kiln_node_ok(kiln_expr_reshape(g, x, 2, (int64_t[]){KILN_BATCH, F})));
    ck_assert_str_eq(kiln_graph_errmsg(g), "reshape: cannot reshape (T, B, 3) into (B, 3)");
    kiln_graph_clear_error(g);
    ck_assert(!kiln_node_ok(kiln_expr_reshape(g, x, 2, (int64_t[]){KILN_INFER, 2})));
    ck_assert_ptr_nonnull(strstr(kiln_graph_errmsg(g), "with axis 0 inferred"));
    kiln_graph_clear_error(g);
    /* symbols broadcast only against themselves or 1 */
    kiln_node y = kiln_graph_input(g, "y", KILN_DTYPE_F32, 2, (int64_t[]){KILN_TIME, F});
    ck_assert(!kiln_node_ok(kiln_expr_add(g, flat, y)));
    ck_assert_str_eq(kiln_graph_errmsg(g), "add: shapes (T*B, 3) and (T, 3) do not broadcast");
    kiln_graph_destroy(g);
}
END_TEST

/* The model: h = tanh(x W + b) at every step t of x (T, B, F), applied as one
** product over (T*B, F); out = mean over T of h (B, H); cost = mean over
** the batch of sum((out - target)^2). */
typedef struct tbf {
    kiln_graph *g;
    kiln_param *w, *b;
    kiln_node x, t, wn, bn, out, cost;
} tbf;

static void make_tbf(tbf *m, enum kiln_dtype dt)
{
    memset(m, 0, sizeof *m);
    m->g = kiln_graph_create(dt);
    m->x = kiln_graph_input(m->g, "x", dt, 3, (int64_t[]){KILN_TIME, KILN_BATCH, F});
    m->t = kiln_graph_input(m->g, "target", dt, 2, (int64_t[]){KILN_BATCH, H});
    m->w = kiln_param_create("W", 2, (int64_t[]){F, H});
    m->b = kiln_param_create("b", 1, (int64_t[]){H});
    double w[F * H], b[H];
    gc_fill(w, F * H, -0.8, 0.8, 0, 11);
    gc_fill(b, H, -0.2, 0.2, 0, 12);
    kiln_param_set_values(m->w, w, F * H);
    kiln_param_set_values(m->b, b, H);
    m->wn = kiln_graph_param(m->g, m->w);
    m->bn = kiln_graph_param(m->g, m->b);
    kiln_node flat = kiln_expr_reshape(m->g, m->x, 2, (int64_t[]){KILN_INFER, F}); /* (T*B, F) */
    kiln_node h = kiln_expr_tanh(m->g, kiln_expr_add(m->g, kiln_expr_matmul(m->g, flat, m->wn), m->bn));
    kiln_node h3 = kiln_expr_reshape(m->g, h, 3, (int64_t[]){KILN_TIME, KILN_BATCH, H});
    m->out = kiln_expr_mean(m->g, h3, 0);
    kiln_node d = kiln_expr_sub(m->g, m->out, m->t);
    m->cost = kiln_expr_mean(m->g, kiln_expr_sum(m->g, kiln_expr_square(m->g, d), 1), 0);
    ck_assert_msg(kiln_node_ok(m->cost), "%s", kiln_graph_errmsg(m->g));
}

static void free_tbf(tbf *m)
{
    kiln_graph_destroy(m->g);
    kiln_param_destroy(m->w);
    kiln_param_destroy(m->b);
}

/* The model's output by hand, in double. */
static void tbf_reference(const double *w, const double *b, const double *x, int64_t T, int64_t B, double *out)
{
    for (int64_t i = 0; i < B; i++)
        for (int j = 0; j < H; j++) {
            double s = 0;
            for (int64_t t = 0; t < T; t++) {
                double a = b[j];
                for (int k = 0; k < F; k++)
                    a += x[(t * B + i) * F + k] * w[k * H + j];
                s += tanh(a);
            }
            out[i * H + j] = s / (double)T;
        }
}

START_TEST(time_major_model_gradient_checks)
{
    tbf m;
    make_tbf(&m, KILN_DTYPE_F64);
    static double x[TMAX * BMAX * F], t[BMAX * H];
    gc_fill(x, TMAX * BMAX * F, -1, 1, 0, 3);
    gc_fill(t, BMAX * H, -0.5, 0.5, 0, 4);
    gc_input in[2] = {{"x", x}, {"target", t}};
    kiln_node params[2] = {m.wn, m.bn};
    char why[512];
    int64_t sizes[KILN_MAX_SYMBOLS] = {BMAX, TMAX};
    double err = gc_check_sizes(m.g, m.cost, params, 2, in, 2, sizes, 1e-6, why, sizeof why);
    ck_assert_msg(err >= 0 && err < 1e-7, "error %g (%s)", err, why);
    free_tbf(&m);
}
END_TEST

START_TEST(time_major_model_runs_below_its_maxima_and_trains)
{
    tbf m;
    make_tbf(&m, KILN_DTYPE_F32);
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "tbf";
    o.cost = m.cost;
    o.outputs = &m.out;
    o.n_outputs = 1;
    o.step_rule = kiln_step_scale(0.5);
    o.max_batch = BMAX;
    /* T needs a maximum: the error names the symbol */
    kiln_program *p;
    ck_assert_int_eq(kiln_compile(m.g, &o, &p), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(p), "symbol T has no maximum size"), "%s", kiln_program_errmsg(p));
    kiln_program_destroy(p);
    o.max_size[KILN_SYMBOL_INDEX(KILN_TIME)] = TMAX;
    ck_assert_msg(kiln_compile(m.g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    static float x[TMAX * BMAX * F], t[BMAX * H];
    double xd[TMAX * BMAX * F], td[BMAX * H];
    gc_fill(xd, TMAX * BMAX * F, -1, 1, 0, 5);
    gc_fill(td, BMAX * H, -0.5, 0.5, 0, 6);
    for (int i = 0; i < TMAX * BMAX * F; i++) x[i] = (float)xd[i];
    for (int i = 0; i < BMAX * H; i++) t[i] = (float)td[i];
    ck_assert_int_eq(kiln_program_bind_input(p, "x", x), KILN_OK);
    ck_assert_int_eq(kiln_program_bind_input(p, "target", t), KILN_OK);
    /* sizes are checked */
    ck_assert_int_eq(kiln_program_set_size(p, KILN_TIME, TMAX + 1), KILN_ERR_ARG);
    ck_assert_msg(strstr(kiln_program_errmsg(p), "symbol T: size 6, expected 1 to 5"), "%s", kiln_program_errmsg(p));
    ck_assert_int_eq(kiln_program_set_size(p, KILN_BATCH, 2), KILN_ERR_ARG);
    /* forward at several (T, B) below the maxima, against the reference */
    static const int64_t shapes[][2] = {{TMAX, BMAX}, {3, 2}, {1, 1}, {4, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t T = shapes[s][0], B = shapes[s][1];
        double w[F * H], b[H], want[BMAX * H], got[BMAX * H];
        for (int i = 0; i < T * B * F; i++) xd[i] = x[i];
        ck_assert_int_eq(kiln_program_get_param(p, m.wn, w, F * H), KILN_OK);
        ck_assert_int_eq(kiln_program_get_param(p, m.bn, b, H), KILN_OK);
        ck_assert_int_eq(kiln_program_set_size(p, KILN_TIME, T), KILN_OK);
        ck_assert_int_eq(kiln_program_forward(p, B), KILN_OK);
        ck_assert_int_eq(kiln_program_read(p, m.out, got, B * H), KILN_OK);
        tbf_reference(w, b, xd, T, B, want);
        for (int64_t i = 0; i < B * H; i++)
            ck_assert_msg(fabs(got[i] - want[i]) < 1e-5, "T %lld B %lld [%lld]: %g, want %g", (long long)T,
                          (long long)B, (long long)i, got[i], want[i]);
    }
    /* training lowers the cost */
    ck_assert_int_eq(kiln_program_set_size(p, KILN_TIME, TMAX), KILN_OK);
    double first = 0, last = 0;
    for (int step = 0; step < 40; step++) {
        ck_assert_int_eq(kiln_program_train_step(p, BMAX), KILN_OK);
        ck_assert_int_eq(kiln_program_read_scalar(p, m.cost, step ? &last : &first), KILN_OK);
    }
    ck_assert_msg(last < 0.5 * first, "cost %g -> %g", first, last);
    kiln_program_destroy(p);
    free_tbf(&m);
}
END_TEST

/* The main loop's data streams feed inputs laid out example after example:
** a time-major input is refused with its shape, not read as B rows of F. */
START_TEST(a_data_stream_does_not_feed_a_time_major_input)
{
    tbf m;
    make_tbf(&m, KILN_DTYPE_F32);
    kiln_compile_options o = kiln_compile_options_default();
    o.cost = m.cost;
    o.max_batch = BMAX;
    o.max_size[KILN_SYMBOL_INDEX(KILN_TIME)] = TMAX;
    kiln_program *p;
    ck_assert_msg(kiln_compile(m.g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    kiln_dataset *d = kiln_dataset_create();
    float x[8 * F] = {0}, t[8 * H] = {0};
    ck_assert_int_eq(kiln_dataset_add_source(d, "x", KILN_DTYPE_F32, 8, 1, (int64_t[]){F}, x), KILN_OK);
    ck_assert_int_eq(kiln_dataset_add_source(d, "target", KILN_DTYPE_F32, 8, 1, (int64_t[]){H}, t), KILN_OK);
    kiln_stream *s;
    ck_assert_int_eq(kiln_stream_create(d, KILN_SCHEME_SEQUENTIAL, 4, 0, &s), KILN_OK);
    kiln_main_loop *ml;
    kiln_main_loop_create(p, s, &ml);
    kiln_main_loop_add_extension(ml, kiln_finish_after(1, 0));
    ck_assert_int_ne(kiln_main_loop_run(ml), KILN_OK);
    ck_assert_msg(strstr(kiln_main_loop_errmsg(ml), "program input 'x' is (T, B, 3): a data stream feeds"), "%s",
                  kiln_main_loop_errmsg(ml));
    kiln_main_loop_destroy(ml);
    kiln_stream_destroy(s);
    kiln_dataset_destroy(d);
    kiln_program_destroy(p);
    free_tbf(&m);
}
END_TEST

/* A chain of a thousand elementwise ops is one loop of a thousand
** statements: it used to be one nested expression, which clang refused at a
** depth of 200 and which crashed the library at 400. */
START_TEST(a_chain_of_a_thousand_fused_ops_compiles_and_runs)
{
    enum { OPS = 1002, COLS = 4 };
    kiln_graph *g = kiln_graph_create(KILN_DTYPE_F32);
    kiln_node x = kiln_graph_input(g, "x", KILN_DTYPE_F32, 2, (int64_t[]){KILN_BATCH, COLS});
    kiln_node y = x, a = kiln_expr_constant(g, 0.9), c = kiln_expr_constant(g, 0.1);
    for (int k = 0; k < OPS / 3; k++)
        y = kiln_expr_tanh(g, kiln_expr_add(g, kiln_expr_mul(g, y, a), c));
    ck_assert(kiln_node_ok(y));
    kiln_compile_options o = kiln_compile_options_default();
    o.name = "chain";
    o.outputs = &y;
    o.n_outputs = 1;
    o.max_batch = 2;
    kiln_program *p;
    ck_assert_msg(kiln_compile(g, &o, &p) == KILN_OK, "%s", kiln_program_errmsg(p));
    ck_assert_ptr_nonnull(strstr(kiln_program_source(p), "const float")); /* statements, one a value */
    float in[2 * COLS] = {-2, -0.5, 0, 0.3, 0.7, 1, 1.5, 3};
    ck_assert_int_eq(kiln_program_bind_input(p, "x", in), KILN_OK);
    ck_assert_int_eq(kiln_program_forward(p, 2), KILN_OK);
    double got[2 * COLS];
    ck_assert_int_eq(kiln_program_read(p, y, got, 2 * COLS), KILN_OK);
    for (int i = 0; i < 2 * COLS; i++) {
        float v = in[i];
        for (int k = 0; k < OPS / 3; k++)
            v = tanhf(v * 0.9f + 0.1f);
        ck_assert_msg(fabs(got[i] - v) < 1e-5, "[%d]: %g, want %g", i, got[i], (double)v);
    }
    kiln_program_destroy(p);
    kiln_graph_destroy(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("symbols");
    TCase *t = tcase_create("symbols");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, symbols_are_named_and_shared_by_name);
    tcase_add_test(t, reshape_and_flatten_fold_symbols_and_unfold_them);
    tcase_add_test(t, time_major_model_gradient_checks);
    tcase_add_test(t, time_major_model_runs_below_its_maxima_and_trains);
    tcase_add_test(t, a_data_stream_does_not_feed_a_time_major_input);
    tcase_add_test(t, a_chain_of_a_thousand_fused_ops_compiles_and_runs);
    suite_add_tcase(s, t);
    return kiln_test_run(s);
}
