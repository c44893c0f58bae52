/* Plugin loader and in-process evaluator on the real example plugins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nessai/error.h"
#include "nessai/evaluator.h"
#include "nessai/plugin.h"

#define EX(name) NESSAI_EXAMPLES_DIR "/lib" name ".so"

static void test_gaussian_values(void **state)
{
    (void)state;
    ns_model_t *m = NULL;
    char err[512];
    assert_int_equal(ns_model_load(EX("gaussian"), "dim=3", &m, err, sizeof err), NS_OK);
    assert_string_equal(ns_model_name(m), "gaussian");
    assert_int_equal(ns_model_dim(m), 3);
    assert_string_equal(ns_model_param_names(m)[2], "x2");
    assert_true(ns_model_lower(m)[0] == -10.0 && ns_model_upper(m)[1] == 10.0);
    assert_true(fabs(ns_model_truth(m) + 3 * log(20.0)) < 1e-12);
    assert_int_equal(strlen(ns_model_hash(m)), 40);
    double x[6] = {0, 0, 0, 1, -2, 0.5}, logl[2], logp[2];
    assert_int_equal(ns_model_log_likelihood(m, x, 2, logl), NS_OK);
    double c = -1.5 * log(2 * M_PI);
    assert_true(fabs(logl[0] - c) < 1e-14);
    assert_true(fabs(logl[1] - (c - 0.5 * 5.25)) < 1e-14);
    /* default prior: uniform, inclusive bounds */
    double y[6] = {10, -10, 0, 10.0000001, 0, 0};
    assert_int_equal(ns_model_log_prior(m, y, 2, logp), NS_OK);
    assert_true(fabs(logp[0] + 3 * log(20.0)) < 1e-14);
    assert_true(logp[1] == -INFINITY);
    ns_model_destroy(&m);
    assert_null(m);
    ns_model_destroy(&m); /* safe twice */
}

static void test_load_errors(void **state)
{
    (void)state;
    static const struct {
        const char *path, *args, *expect;
    } cases[] = {
        {"/nonexistent/libx.so", "", "not found"},
        {EX("gaussian"), "dim=1", "between 2 and 1024"},
        {EX("gaussian"), "dimm=3", "unknown model argument 'dimm'"},
        {EX("gaussian"), "dim", "key=value"},
        {EX("rosenbrock"), "delay_ms=-1", "delay_ms"},
        {"/etc/hostname", "", "cannot load model plugin"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ns_model_t *m = NULL;
        char err[512] = "";
        assert_int_not_equal(ns_model_load(cases[i].path, cases[i].args, &m, err, sizeof err), NS_OK);
        assert_null(m);
        if (!strstr(err, cases[i].expect))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].expect);
    }
}

static void test_new_point_in_bounds(void **state)
{
    (void)state;
    ns_model_t *m = NULL;
    char err[512];
    assert_int_equal(ns_model_load(EX("parallel"), "", &m, err, sizeof err), NS_OK);
    ns_rng_t *rng = ns_rng_new(7, 0);
    double x[2 * 1000], logq[1000];
    assert_int_equal(ns_model_new_point(m, rng, 1000, x), NS_OK);
    double mean = 0;
    for (int i = 0; i < 1000; i++) {
        assert_true(ns_model_in_bounds(m, x + 2 * i));
        mean += x[2 * i] / 1000;
    }
    assert_true(fabs(mean) < 0.4); /* U[-3,3]: sd of mean 0.055 */
    assert_int_equal(ns_model_new_point_log_prob(m, x, 1000, logq), NS_OK);
    assert_true(logq[0] == 0.0 && logq[999] == 0.0);
    ns_rng_destroy(&rng);
    ns_model_destroy(&m);
}

static void test_inprocess_chunking_is_exact(void **state)
{
    (void)state;
    ns_model_t *m = NULL;
    char err[512];
    assert_int_equal(ns_model_load(EX("rosenbrock"), "dim=4", &m, err, sizeof err), NS_OK);
    ns_rng_t *rng = ns_rng_new(3, 0);
    enum { N = 997 };
    double *x = malloc(N * 4 * sizeof *x), a[N], b[N];
    assert_int_equal(ns_model_new_point(m, rng, N, x), NS_OK);
    ns_evaluator_t *whole = ns_evaluator_inprocess_new(m, 0);
    ns_evaluator_t *chunked = ns_evaluator_inprocess_new(m, 10);
    assert_string_equal(ns_evaluator_kind(whole), "in-process");
    assert_int_equal(ns_evaluator_evaluate(whole, x, N, 4, a), NS_OK);
    assert_int_equal(ns_evaluator_evaluate(chunked, x, N, 4, b), NS_OK);
    assert_memory_equal(a, b, sizeof a);
    ns_evaluator_destroy(&whole);
    ns_evaluator_destroy(&chunked);
    assert_null(whole);
    free(x);
    ns_rng_destroy(&rng);
    ns_model_destroy(&m);
}

static void test_delay_does_not_change_values(void **state)
{
    (void)state;
    ns_model_t *m0 = NULL, *m1 = NULL;
    char err[512];
    assert_int_equal(ns_model_load(EX("parallel"), "", &m0, err, sizeof err), NS_OK);
    assert_int_equal(ns_model_load(EX("parallel"), "delay_ms=1", &m1, err, sizeof err), NS_OK);
    double x[4] = {1.7, 0.7, -2, 2.5}, a[2], b[2];
    assert_int_equal(ns_model_log_likelihood(m0, x, 2, a), NS_OK);
    assert_int_equal(ns_model_log_likelihood(m1, x, 2, b), NS_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_true(a[0] > a[1]); /* the data were drawn near mu = 1.7, sigma = 0.7 */
    ns_model_destroy(&m0);
    ns_model_destroy(&m1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gaussian_values),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_new_point_in_bounds),
        cmocka_unit_test(test_inprocess_chunking_is_exact),
        cmocka_unit_test(test_delay_does_not_change_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
