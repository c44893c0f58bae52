/* test_kstest.c - the insertion-index KS test: statistic on small arrays and
 * exact one-sided p-values against 60-digit evaluations of the
 * Birnbaum-Tingey sum (mpmath), up to n = 50000 where a direct sum in
 * doubles overflows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "harness.h"

#include <math.h>
#include <stdlib.h>

#include "kstest.h"

static const struct {
    double d;
    size_t n;
    double p;
} s_ref[] = {
    {0.5, 1, 0.5},   /* n = 1: P(D+ >= d) = 1 - d */
    {0.3, 2, 0.61},
    {0.1, 10, 0.76420523089999998},
    {0.25, 10, 0.24491372483398437},
    {0.05, 100, 0.5871453380805337},
    {0.1, 100, 0.1265906584562817},
    {0.02, 1000, 0.44342498843949426},
    {0.05, 1000, 0.0065060373905451658},
    {0.01, 5000, 0.36544317503217304},
    {0.005, 20000, 0.36665725304626977},
    {0.01, 20000, 0.018193128957572092},
    {0.012, 20000, 0.0031256261420608754},
    {0.004, 50000, 0.20135912950638483},
    {0.008, 50000, 0.0016526156396670336},
    {0.25, 4, 0.51171875},
    {0.75, 4, 0.00390625},
    {0.5, 3, 0.16666666666666667},
    {0.999, 3, 1.0000000000000027e-9},
};

static void test_reference_p_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_ref / sizeof s_ref[0]; i++) {
        double p = ns_ks_one_sided_sf(s_ref[i].d, s_ref[i].n);
        /* relative 1e-9: the log-space sum loses a few digits at large n */
        assert_true(fabs(p - s_ref[i].p) <= 1e-9 * s_ref[i].p);
    }
}

static void test_edges(void **state)
{
    (void)state;
    assert_true(ns_ks_one_sided_sf(0.0, 100) == 1.0);
    assert_true(ns_ks_one_sided_sf(-0.1, 100) == 1.0);
    assert_true(ns_ks_one_sided_sf(1.0, 100) == 0.0);
    assert_true(isnan(ns_ks_one_sided_sf(NAN, 10)));
    /* large deviation at large n: tiny but positive, no overflow */
    double p = ns_ks_one_sided_sf(0.05, 100000);
    assert_true(p > 0.0 && p < 1e-200);
    /* asymptotically exp(-2 n d^2) */
    p = ns_ks_one_sided_sf(0.003, 500000);
    assert_true(fabs(log(p) - (-2.0 * 500000 * 0.003 * 0.003)) < 0.05);
}

static void test_statistic_small_arrays(void **state)
{
    (void)state;
    double d, p;
    /* nlive 4: counts [1,2,0,1], F = [.25,.75,.75,1], (k+1)/4 - F = [0,-.25,0,0] */
    int64_t a[] = {0, 1, 1, 3};
    assert_int_equal(ns_ks_insertion_test(a, 4, 4, NULL, &d, &p), 0);
    th_assert_near(d, 0.0, 1e-15);
    assert_true(p == 1.0);
    /* counts [1,0,1,2], F = [.25,.25,.5,1] -> D = .25 */
    int64_t b[] = {3, 3, 2, 0};
    size_t counts[4];
    assert_int_equal(ns_ks_insertion_test(b, 4, 4, counts, &d, &p), 0);
    th_assert_near(d, 0.25, 1e-15);
    th_assert_near(p, 0.51171875, 1e-12);
    /* every point inserted at the top: D = (nlive - 1) / nlive */
    int64_t c[] = {9, 9, 9};
    assert_int_equal(ns_ks_insertion_test(c, 3, 10, NULL, &d, &p), 0);
    th_assert_near(d, 0.9, 1e-15);
    th_assert_near(p, ns_ks_one_sided_sf(0.9, 3), 0);
    /* no indices: no test */
    assert_int_equal(ns_ks_insertion_test(c, 0, 10, NULL, &d, &p), -1);
    assert_true(isnan(d) && isnan(p));
}

/* Uniform indices pass; indices crowding the top (D+ looks there) fail. */
static void test_uniform_vs_biased(void **state)
{
    (void)state;
    enum { N = 20000, NLIVE = 500 };
    int64_t *idx = malloc(N * sizeof *idx);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        idx[i] = (int64_t)(x % NLIVE);
    }
    double d, p;
    ns_ks_insertion_test(idx, N, NLIVE, NULL, &d, &p);
    assert_true(p > 0.001);
    for (int i = 0; i < N; i++)
        idx[i] = (NLIVE - 1) - (NLIVE - 1 - idx[i]) * 9 / 10; /* squeeze towards the top */
    ns_ks_insertion_test(idx, N, NLIVE, NULL, &d, &p);
    assert_true(d > 0.09);
    assert_true(p < 1e-50);
    free(idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_p_values),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_statistic_small_arrays),
        cmocka_unit_test(test_uniform_vs_biased),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
