/* RNG reproducibility and exact state restore; log-space helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nessai/error.h"
#include "nessai/rng.h"
#include "nessai/util.h"

static void test_streams_and_restore(void **state)
{
    (void)state;
    ns_rng_t *a = ns_rng_new(1234, 0), *b = ns_rng_new(1234, 0), *c = ns_rng_new(1234, 1);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        double x = ns_rng_uniform(a), y = ns_rng_uniform(b), z = ns_rng_uniform(c);
        assert_true(x == y);
        assert_true(x > 0 && x < 1);
        differ += x != z;
    }
    assert_true(differ > 95);
    size_t n = ns_rng_state_size(a);
    void *saved = malloc(n);
    ns_rng_state_save(a, saved);
    double seq[50];
    for (int i = 0; i < 50; i++)
        seq[i] = ns_rng_gaussian(a);
    assert_int_equal(ns_rng_state_load(b, saved, n), NS_OK);
    for (int i = 0; i < 50; i++)
        assert_true(seq[i] == ns_rng_gaussian(b));
    assert_int_equal(ns_rng_state_load(b, saved, n - 1), NS_ERR_CORRUPT);
    free(saved);
    ns_rng_destroy(&a);
    ns_rng_destroy(&b);
    ns_rng_destroy(&c);
}

static void test_gaussian_moments_and_permutation(void **state)
{
    (void)state;
    ns_rng_t *r = ns_rng_new(99, 0);
    double s = 0, s2 = 0;
    enum { N = 200000 };
    for (int i = 0; i < N; i++) {
        double g = ns_rng_gaussian(r);
        s += g;
        s2 += g * g;
    }
    assert_true(fabs(s / N) < 0.01);           /* 4.5 sigma */
    assert_true(fabs(s2 / N - 1.0) < 0.015);   /* 4.7 sigma */
    size_t p[100];
    int seen[100] = {0};
    ns_rng_permutation(r, p, 100);
    for (int i = 0; i < 100; i++)
        seen[p[i]]++;
    for (int i = 0; i < 100; i++)
        assert_int_equal(seen[i], 1);
    ns_rng_destroy(&r);
}

static void test_log_space(void **state)
{
    (void)state;
    assert_true(fabs(ns_logaddexp(log(2), log(3)) - log(5)) < 1e-15);
    assert_true(ns_logaddexp(-INFINITY, 1.5) == 1.5);
    assert_true(ns_logaddexp(-INFINITY, -INFINITY) == -INFINITY);
    assert_true(fabs(ns_logaddexp(1000, 1000) - (1000 + log(2))) < 1e-12);
    assert_true(fabs(ns_logsubexp(log(5), log(3)) - log(2)) < 1e-15);
    assert_true(ns_logsubexp(1, -INFINITY) == 1);
    assert_true(ns_logsubexp(2, 2) == -INFINITY);
    assert_true(isnan(ns_logsubexp(1, 2)));
    double v[3] = {-1000, -1000, -INFINITY};
    assert_true(fabs(ns_logsumexp(v, 3) - (-1000 + log(2))) < 1e-12);
    assert_true(ns_logsumexp(v, 0) == -INFINITY);
    double w[2] = {-INFINITY, -INFINITY};
    assert_true(ns_logsumexp(w, 2) == -INFINITY);
}

static void test_parse_and_interrupt(void **state)
{
    (void)state;
    double d;
    long l;
    assert_int_equal(ns_parse_double("1e-3", &d), NS_OK);
    assert_true(d == 1e-3);
    assert_int_equal(ns_parse_double("1e-3x", &d), NS_ERR_INVAL);
    assert_int_equal(ns_parse_double("", &d), NS_ERR_INVAL);
    assert_int_equal(ns_parse_long("-12", &l), NS_OK);
    assert_int_equal(l, -12);
    assert_int_equal(ns_parse_long("99999999999999999999", &l), NS_ERR_INVAL);
    assert_int_equal(ns_interrupt_pending(), 0);
    ns_interrupt_request(15);
    assert_int_equal(ns_interrupt_pending(), 15);
    ns_interrupt_clear();
    assert_int_equal(ns_interrupt_pending(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streams_and_restore),
        cmocka_unit_test(test_gaussian_moments_and_permutation),
        cmocka_unit_test(test_log_space),
        cmocka_unit_test(test_parse_and_interrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
