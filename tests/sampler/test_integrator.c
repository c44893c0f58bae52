/* test_integrator.c - the evidence integrator against hand-computed sequences
 * (values from a 40-digit evaluation of docs/algorithm.md §1.5 written out longhand). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "harness.h"

#include <math.h>
#include <stdlib.h>

#include "integrator.h"
#include "nessai/serial.h"

#define TOL 1e-12

static const double s_logl[7] = {-3.0, -2.0, -1.5, -1.0, -0.5, -0.25, -0.125};
static const size_t s_n[7] = {4, 4, 4, 4, 3, 2, 1};

/* {logZ, H, ln X} after each increment, <ln t> expectation */
static const double s_logt_ref[7][3] = {
    {-4.5086915494460321, 0.0, -0.25},
    {-3.3718205433311322, 0.5669788570701572, -0.5},
    {-2.7447689823767453, 0.54776896322816194, -0.75},
    {-2.2759255832080897, 0.52693207036693314, -1.0},
    {-1.796055366808423, 0.52309861398789868, -1.3333333333333333},
    {-1.3994711729778369, 0.46141650340168268, -1.8333333333333333},
    {-1.0908958405101742, 0.36871318688452276, -2.8333333333333333},
};
static const double s_logt_trap = -1.0939926074399519;
static const double s_logt_w[7] = {-3.4146989420060803, -2.6646989420060803, -2.4146989420060803,
                                   -2.1646989420060803, -1.6666609974147047, -1.42209285546057,
                                   -1.3230158712804634};

/* ln <t> expectation */
static const double s_t_ref[7][3] = {
    {-4.6094379124341004, 0.0, -0.22314355131420976},
    {-3.4542482515305625, 0.63228107995766044, -0.44628710262841951},
    {-2.8105528129531143, 0.61606073928099074, -0.66943065394262927},
    {-2.324395476968302, 0.58980072075455546, -0.89257420525683902},
    {-1.8328857986724907, 0.57768144155826255, -1.18025627770862},
    {-1.4283649931658287, 0.50759564481990863, -1.5857213858167843},
    {-1.1084559888051698, 0.40555625880810723, -2.2788685663767296},
};
static const double s_t_trap = -0.99632234339248634;

static void s_check_sequence(ns_shrinkage_t e, const double ref[7][3], double trap)
{
    ns_integrator_t *it = ns_integrator_new(4, e);
    assert_non_null(it);
    assert_true(ns_integrator_log_z(it) == -INFINITY);
    for (int i = 0; i < 7; i++) {
        /* n = 4 is passed as 0 (the default) for the first four */
        assert_int_equal(ns_integrator_increment(it, s_logl[i], i < 4 ? 0 : s_n[i]), 0);
        th_assert_near(ns_integrator_log_z(it), ref[i][0], TOL);
        th_assert_near(ns_integrator_information(it), ref[i][1], TOL);
        th_assert_near(ns_integrator_log_w(it), ref[i][2], TOL);
    }
    assert_int_equal(ns_integrator_count(it), 7);
    th_assert_near(ns_integrator_error(it), sqrt(ref[6][1] / 4.0), TOL);
    th_assert_near(ns_integrator_log_z_trapezoid(it), trap, TOL);
    /* finalise replaces ln Z by the trapezoid value */
    ns_integrator_finalise(it);
    th_assert_near(ns_integrator_log_z(it), trap, TOL);
    ns_integrator_destroy(&it);
    assert_null(it);
    ns_integrator_destroy(&it);
}

static void test_logt_sequence(void **state)
{
    (void)state;
    s_check_sequence(NS_SHRINK_LOGT, s_logt_ref, s_logt_trap);
}

static void test_t_sequence(void **state)
{
    (void)state;
    s_check_sequence(NS_SHRINK_T, s_t_ref, s_t_trap);
}

/* The information term starts at the second increment (docs/algorithm.md §10.3): after
 * one increment H is 0 although the true information is -ln(1 - e^-1/n). */
static void test_information_starts_late(void **state)
{
    (void)state;
    ns_integrator_t *it = ns_integrator_new(10, NS_SHRINK_LOGT);
    ns_integrator_increment(it, 1.0, 0);
    assert_true(ns_integrator_information(it) == 0.0);
    ns_integrator_destroy(&it);
}

static void test_posterior_weights(void **state)
{
    (void)state;
    ns_integrator_t *it = ns_integrator_new(4, NS_SHRINK_LOGT);
    for (int i = 0; i < 7; i++)
        ns_integrator_increment(it, s_logl[i], s_n[i]);
    double w[7], s = 0.0;
    ns_integrator_log_posterior_weights(it, w);
    for (int i = 0; i < 7; i++) {
        th_assert_near(w[i], s_logt_w[i], TOL);
        s += exp(w[i]);
    }
    /* weights are rectangle slabs over the trapezoid evidence: they sum to
     * Z_rectangle / Z_trapezoid, not exactly 1 */
    th_assert_near(s, 1.0031015668659686, TOL);
    th_assert_near(log(s), s_logt_ref[6][0] - s_logt_trap, TOL);
    ns_integrator_destroy(&it);
}

static void test_nonmonotonic_flag(void **state)
{
    (void)state;
    ns_integrator_t *it = ns_integrator_new(5, NS_SHRINK_LOGT);
    assert_int_equal(ns_integrator_increment(it, -1.0, 0), 0);
    assert_int_equal(ns_integrator_increment(it, -1.0, 0), 1);
    assert_int_equal(ns_integrator_increment(it, -2.0, 0), 1);
    assert_int_equal(ns_integrator_increment(it, 0.5, 0), 0);
    ns_integrator_destroy(&it);
}

/* -inf contours add nothing and keep everything finite afterwards. */
static void test_zero_likelihood_contours(void **state)
{
    (void)state;
    ns_integrator_t *it = ns_integrator_new(2, NS_SHRINK_LOGT);
    ns_integrator_increment(it, -INFINITY, 0);
    assert_true(ns_integrator_log_z(it) == -INFINITY);
    ns_integrator_increment(it, 0.0, 0);
    /* Z = 1 * (e^-1/2 - e^-1) */
    th_assert_near(ns_integrator_log_z(it), log(exp(-0.5) - exp(-1.0)), TOL);
    assert_true(ns_integrator_information(it) == 0.0);
    ns_integrator_destroy(&it);
}

static void test_save_load(void **state)
{
    (void)state;
    ns_integrator_t *a = ns_integrator_new(4, NS_SHRINK_LOGT), *b = ns_integrator_new(4, NS_SHRINK_LOGT);
    for (int i = 0; i < 3; i++)
        ns_integrator_increment(a, s_logl[i], 0);
    ns_buf_t buf;
    ns_buf_init(&buf);
    ns_integrator_save(a, &buf);
    assert_int_equal(ns_buf_error(&buf), 0);
    ns_buf_t view;
    ns_buf_view(&view, buf.data, buf.len);
    assert_int_equal(ns_integrator_load(b, &view), 0);
    for (int i = 3; i < 7; i++) {
        ns_integrator_increment(a, s_logl[i], s_n[i]);
        ns_integrator_increment(b, s_logl[i], s_n[i]);
    }
    assert_true(ns_integrator_log_z(a) == ns_integrator_log_z(b));
    assert_true(ns_integrator_information(a) == ns_integrator_information(b));
    assert_true(ns_integrator_log_z_trapezoid(a) == ns_integrator_log_z_trapezoid(b));
    /* another nlive is refused, and truncated bytes are refused */
    ns_integrator_t *c = ns_integrator_new(5, NS_SHRINK_LOGT);
    ns_buf_view(&view, buf.data, buf.len);
    assert_int_not_equal(ns_integrator_load(c, &view), 0);
    ns_buf_view(&view, buf.data, buf.len - 3);
    assert_int_not_equal(ns_integrator_load(b, &view), 0);
    ns_buf_free(&buf);
    ns_integrator_destroy(&a);
    ns_integrator_destroy(&b);
    ns_integrator_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logt_sequence),       cmocka_unit_test(test_t_sequence),
        cmocka_unit_test(test_information_starts_late), cmocka_unit_test(test_posterior_weights),
        cmocka_unit_test(test_nonmonotonic_flag),   cmocka_unit_test(test_zero_likelihood_contours),
        cmocka_unit_test(test_save_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
