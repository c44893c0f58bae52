/* test_posterior.c - effective sample size and the two resampling methods. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "harness.h"

#include <math.h>
#include <stdlib.h>

#include "nessai/rng.h"
#include "posterior.h"

static void test_ess(void **state)
{
    (void)state;
    double w[4] = {0.0, 0.0, 0.0, 0.0};
    th_assert_near(ns_posterior_ess(w, 4), 4.0, 1e-12);
    /* unnormalised weights give the same ESS */
    double w2[4] = {5.0, 5.0, 5.0, 5.0};
    th_assert_near(ns_posterior_ess(w2, 4), 4.0, 1e-12);
    /* weights 1/2, 1/4, 1/4: ESS = 1 / (1/4 + 1/16 + 1/16) = 8/3 */
    double w3[3] = {log(0.5), log(0.25), log(0.25)};
    th_assert_near(ns_posterior_ess(w3, 3), 8.0 / 3.0, 1e-12);
    /* -inf weights count for nothing */
    double w4[3] = {-INFINITY, 1.0, 1.0};
    th_assert_near(ns_posterior_ess(w4, 3), 2.0, 1e-12);
    assert_true(ns_posterior_ess(w4, 0) == 0.0);
}

/* Rejection keeps sample i with probability exp(w_i - max w). */
static void test_rejection_rates(void **state)
{
    (void)state;
    enum { N = 40000 };
    double *w = malloc(N * sizeof *w);
    size_t *idx = malloc(N * sizeof *idx);
    for (int i = 0; i < N; i++)
        w[i] = (i % 2) ? log(0.25) : 0.0; /* odd ones kept a quarter of the time */
    w[N - 1] = -INFINITY;                 /* never kept */
    ns_rng_t *rng = ns_rng_new(7, 0);
    size_t k = ns_posterior_rejection(w, N, rng, idx);
    size_t even = 0, odd = 0;
    for (size_t i = 0; i < k; i++) {
        assert_true(idx[i] != N - 1);
        if (i > 0)
            assert_true(idx[i] > idx[i - 1]);
        if (idx[i] % 2)
            odd++;
        else
            even++;
    }
    assert_int_equal(even, N / 2); /* weight equal to the maximum: always kept */
    /* binomial(19999, 1/4): mean 5000, sd 61 */
    assert_true(fabs((double)odd - 5000.0) < 5 * 61.3);
    ns_rng_destroy(&rng);
    free(w);
    free(idx);
}

static void test_multinomial(void **state)
{
    (void)state;
    enum { M = 60000 };
    double w[4] = {log(0.1), log(0.2), -INFINITY, log(0.7)};
    size_t *idx = malloc(M * sizeof *idx);
    ns_rng_t *rng = ns_rng_new(11, 0);
    assert_int_equal(ns_posterior_multinomial(w, 4, M, rng, idx), 0);
    size_t c[4] = {0};
    for (int i = 0; i < M; i++) {
        assert_true(idx[i] < 4);
        c[idx[i]]++;
    }
    assert_int_equal(c[2], 0);
    const double p[4] = {0.1, 0.2, 0.0, 0.7};
    for (int j = 0; j < 4; j++)
        assert_true(fabs((double)c[j] - M * p[j]) <= 5 * sqrt(M * p[j] * (1 - p[j])) + 1e-9);
    double bad[2] = {-INFINITY, -INFINITY};
    assert_int_not_equal(ns_posterior_multinomial(bad, 2, 3, rng, idx), 0);
    ns_rng_destroy(&rng);
    free(idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ess),
        cmocka_unit_test(test_rejection_rates),
        cmocka_unit_test(test_multinomial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
