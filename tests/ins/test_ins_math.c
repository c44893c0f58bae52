/* test_ins_math.c - the importance nested sampler's numerics on small
 * sets whose answers were computed by hand (or with numpy, as noted):
 * entropy threshold and its adjustments, mixture weights, log Q, evidence
 * and its error, ESS and the ratio stopping value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>

#include "harness.h"
#include "ins_math.h"
#include "nessai/error.h"

static void test_entropy_index(void **state)
{
    (void)state;
    /* all log-weights 0 (first level): c_i = i, c / 10 >= 0.5 first at 5 */
    double zero[11] = {0};
    assert_int_equal(ns_ins_entropy_index(zero, 11, 0.5), 5);
    /* m = 5000 gives ceil(0.5 * 4999) = 2500 */
    static double big[5000];
    assert_int_equal(ns_ins_entropy_index(big, 5000, 0.5), 2500);
    /* c = -1, -3, -6, -10; / -10 = 0.1, 0.3, 0.6, 1 */
    double w[4] = {-1, -2, -3, -4};
    assert_int_equal(ns_ins_entropy_index(w, 4, 0.5), 2);
    assert_int_equal(ns_ins_entropy_index(w, 4, 0.3), 1);
    assert_int_equal(ns_ins_entropy_index(w, 4, 0.05), 0);
    /* mixed signs: c / c_last = -0.094, 0.094, 0.4717, 0.4340, 1: the first
     * crossing of 0.45 is at 2 although c falls again at 3 */
    double mixed[5] = {0.5, -1, -2, 0.2, -3};
    assert_int_equal(ns_ins_entropy_index(mixed, 5, 0.45), 2);
    assert_int_equal(ns_ins_entropy_index(mixed, 5, 0.472), 4);
    /* sum of c exactly 0 with non-zero weights: c = 1, -1, 0 -> c_i = i */
    double flat[3] = {1, -2, 1};
    assert_int_equal(ns_ins_entropy_index(flat, 3, 0.5), 1);
    assert_int_equal(ns_ins_entropy_index(NULL, 0, 0.5), 0);
    /* a zero-weight sample (log W = -inf, e.g. a cube prior of 0) adds
     * nothing: c = 0, -1, -3, -6, -10 -> 0, 0.1, 0.3, 0.6, 1; without the
     * guard every c would be -inf or NaN and the index 0 */
    double zw[5] = {-INFINITY, -1, -2, -3, -4};
    assert_int_equal(ns_ins_entropy_index(zw, 5, 0.5), 3);
}

static void test_quantile_index(void **state)
{
    (void)state;
    /* equal weights, m = 3: n_eff = 3, a = b = 2 at q = 0.5, I_x(2, 2) =
     * 3x^2 - 2x^3 at t = 0, 1/3, 2/3, 1 -> shares 7/27, 13/27, 7/27 */
    double w0[3] = {0, 0, 0}, w1[3] = {-1, -1, -1};
    size_t n = 99;
    /* cutoff 7/27 + 26/27 + 28/27 = 2.259: first logL >= it is index 2 */
    double l1[3] = {1, 2, 4};
    assert_int_equal(ns_ins_quantile_index(l1, w0, 3, 0.5, &n), NS_OK);
    assert_int_equal(n, 2);
    /* cutoff 0 + 39/27 + 28/27 = 2.481: index 1; a common shift of the
     * log-weights changes nothing */
    double l2[3] = {0, 3, 4};
    assert_int_equal(ns_ins_quantile_index(l2, w1, 3, 0.5, &n), NS_OK);
    assert_int_equal(n, 1);
    /* a zero likelihood with a non-zero share: no finite cutoff */
    double l3[3] = {-INFINITY, 2, 4};
    assert_int_equal(ns_ins_quantile_index(l3, w0, 3, 0.5, &n), NS_ERR_NUMERIC);
    /* all the weight on the last point: the cutoff is its logL */
    double w4[3] = {-INFINITY, -INFINITY, 0};
    assert_int_equal(ns_ins_quantile_index(l3, w4, 3, 0.8, &n), NS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ns_ins_quantile_index(NULL, NULL, 0, 0.8, &n), NS_OK);
    assert_int_equal(n, 0);
}

static void test_adjust_index(void **state)
{
    (void)state;
    assert_int_equal(ns_ins_adjust_index(0, 10, 3, 1), 1);  /* n = 0 -> 1 */
    assert_int_equal(ns_ins_adjust_index(9, 10, 3, 1), 7);  /* keep min_samples */
    assert_int_equal(ns_ins_adjust_index(2, 10, 3, 5), 5);  /* remove min_remove */
    assert_int_equal(ns_ins_adjust_index(5, 10, 3, 1), 5);  /* unchanged */
    assert_int_equal(ns_ins_adjust_index(1, 3, 3, 1), 0);   /* m = min_samples: none */
    assert_int_equal(ns_ins_adjust_index(5000, 6000, 500, 1), 5000);
    assert_int_equal(ns_ins_adjust_index(5800, 6000, 500, 1), 5500);
}

static void test_mixture(void **state)
{
    (void)state;
    size_t counts[3] = {100, 50, 50};
    double a[3], la[3];
    ns_ins_mixture_weights(counts, 3, a, la);
    assert_true(a[0] == 0.5 && a[1] == 0.25 && a[2] == 0.25);
    assert_true(la[0] == log(0.5) && la[1] == log(0.25));
    size_t eq[4] = {5000, 5000, 5000, 5000};
    double b[4], lb[4];
    ns_ins_mixture_weights(eq, 4, b, lb);
    for (int k = 0; k < 4; k++)
        assert_true(b[k] == 0.25);
    size_t zc[2] = {10, 0};
    ns_ins_mixture_weights(zc, 2, a, la);
    assert_true(a[1] == 0.0 && isinf(la[1]) && la[1] < 0);
    /* ln(0.5 + 0.25 e^1.2 + 0.25 e^-0.7) = 0.3744391122849506 (numpy) */
    double row[3] = {0.0, 1.2, -0.7};
    ns_ins_mixture_weights(counts, 3, a, la);
    th_assert_near(ns_ins_log_q(row, la, 3), 0.3744391122849506, 1e-15);
    /* a flow with zero density leaves the prior term: ln 0.5 */
    double row2[3] = {0.0, -INFINITY, -INFINITY};
    th_assert_near(ns_ins_log_q(row2, la, 3), log(0.5), 1e-15);
    /* large log-densities do not overflow: ln(0.5 + 0.5 e^800) = 800 + ln 0.5 */
    double row3[2] = {0.0, 800.0}, l2[2] = {log(0.5), log(0.5)};
    th_assert_near(ns_ins_log_q(row3, l2, 2), 800.0 + log(0.5), 1e-12);
    double row4[2] = {-INFINITY, -INFINITY};
    assert_true(isinf(ns_ins_log_q(row4, l2, 2)));
}

static void test_evidence(void **state)
{
    (void)state;
    /* ell = -1, -2, 0.5, -3: ln Z = ln(mean e^ell) = -0.597054096634116 and
     * sigma = sqrt(sum (Z_i - Zbar)^2 / (N (N-1))) / Zbar = 0.6762223393007533
     * (numpy, the linear formula) */
    double ell[4] = {-1, -2, 0.5, -3}, err;
    th_assert_near(ns_ins_evidence(ell, 4, &err), -0.597054096634116, 1e-14);
    th_assert_near(err, 0.6762223393007533, 1e-14);
    /* equal values: Z exact, error 0 */
    double same[3] = {-7.5, -7.5, -7.5};
    th_assert_near(ns_ins_evidence(same, 3, &err), -7.5, 1e-14);
    th_assert_near(err, 0.0, 1e-15);
    /* no overflow where e^ell does: shift every value by 1000 */
    double hi[4] = {999, 998, 1000.5, 997};
    th_assert_near(ns_ins_evidence(hi, 4, &err), 1000 - 0.597054096634116, 1e-11);
    th_assert_near(err, 0.6762223393007533, 1e-13);
    /* zero likelihoods count in N: ln(e^0 / 2) */
    double z[2] = {0.0, -INFINITY};
    th_assert_near(ns_ins_evidence(z, 2, &err), -log(2.0), 1e-15);
    th_assert_near(err, 1.0, 1e-15); /* sqrt((1 + 1) / 2) */
    assert_true(isnan((ns_ins_evidence(z, 1, &err), err)));
    assert_true(isinf(ns_ins_evidence(NULL, 0, &err)));
}

static void test_ess(void **state)
{
    (void)state;
    /* p = 1/6, 2/6, 3/6: 1 / sum p^2 = 36/14 */
    double v[3] = {0.0, log(2.0), log(3.0)};
    th_assert_near(ns_ins_ess(v, 3), 36.0 / 14.0, 1e-14);
    double u[5] = {-3, -3, -3, -3, -3};
    th_assert_near(ns_ins_ess(u, 5), 5.0, 1e-13);
    double one[3] = {0.0, -INFINITY, -INFINITY};
    th_assert_near(ns_ins_ess(one, 3), 1.0, 1e-15);
    assert_true(ns_ins_ess(NULL, 0) == 0.0);
}

static void test_ratio(void **state)
{
    (void)state;
    /* live = points 1, 2: ln((e^-2 + e^0.5)/2) - ln Z = 0.48279665036672026 */
    double ell[4] = {-1, -2, 0.5, -3};
    unsigned char live[4] = {0, 1, 1, 0};
    th_assert_near(ns_ins_log_evidence_ratio(ell, live, 4), 0.48279665036672026, 1e-14);
    /* every point live: 0 (meets the default tolerance) */
    unsigned char all[4] = {1, 1, 1, 1};
    th_assert_near(ns_ins_log_evidence_ratio(ell, all, 4), 0.0, 1e-15);
    /* only the lowest live: ln(e^-3) - ln Z < 0 */
    unsigned char low[4] = {0, 0, 0, 1};
    th_assert_near(ns_ins_log_evidence_ratio(ell, low, 4), -3.0 + 0.597054096634116, 1e-14);
    unsigned char none[4] = {0};
    assert_true(isinf(ns_ins_log_evidence_ratio(ell, none, 4)));
}

static void test_importance(void **state)
{
    (void)state;
    /* L W = 1, 3 (prior), 2, 4 (flow 0), 6 (flow 1): posterior means 2, 3, 6
     * -> 2/11, 3/11, 6/11; evidence means over "this or later" 16/5, 12/3,
     * 6 -> 8/33, 10/33, 15/33; total = the average: 7/33, 19/66, 1/2 */
    double ell[5] = {0.0, log(3.0), log(2.0), log(4.0), log(6.0)};
    int comp[5] = {0, 0, 1, 1, 2};
    double t[4], p[4], e[4];
    assert_int_equal(ns_ins_importance(ell, comp, 5, 3, t, p, e), 0);
    th_assert_near(p[0], 2.0 / 11, 1e-15);
    th_assert_near(p[1], 3.0 / 11, 1e-15);
    th_assert_near(p[2], 6.0 / 11, 1e-15);
    th_assert_near(e[0], 8.0 / 33, 1e-15);
    th_assert_near(e[1], 10.0 / 33, 1e-15);
    th_assert_near(e[2], 15.0 / 33, 1e-15);
    th_assert_near(t[0], 7.0 / 33, 1e-15);
    th_assert_near(t[1], 19.0 / 66, 1e-15);
    th_assert_near(t[2], 0.5, 1e-15);
    /* a fourth component without samples: share 0, the others unchanged */
    assert_int_equal(ns_ins_importance(ell, comp, 5, 4, t, p, e), 0);
    assert_true(p[3] == 0.0 && e[3] == 0.0 && t[3] == 0.0);
    th_assert_near(t[1], 19.0 / 66, 1e-15);
    /* zero likelihood everywhere: no share can be given */
    double zero[2] = {-INFINITY, -INFINITY};
    int c2[2] = {0, 1};
    assert_int_equal(ns_ins_importance(zero, c2, 2, 2, t, p, e), 0);
    assert_true(isnan(t[0]) && isnan(p[1]) && isnan(e[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entropy_index),
        cmocka_unit_test(test_quantile_index), cmocka_unit_test(test_adjust_index),
        cmocka_unit_test(test_mixture),       cmocka_unit_test(test_evidence),
        cmocka_unit_test(test_ess),           cmocka_unit_test(test_ratio),
        cmocka_unit_test(test_importance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
