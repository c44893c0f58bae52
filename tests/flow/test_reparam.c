/* test_reparam.c - every reparameterisation round-trips, its forward
 * log-Jacobian matches a finite-difference derivative and equals minus the
 * inverse one; z-score statistics (ddof 0); edge detection; the spec
 * parser; the start-up verification; save/load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nessai/error.h"
#include "reparam.h"

static const char *NAMES[] = {"a", "b", "c", "d", "e", "f", "g"};
static const double LO[] = {-10, 0, -5, 1, 0, 2, -3};
static const double HI[] = {10, 10, 5, 3, 1, 12, 3};

/* n rows in the prior box, concentrated towards the lower edge for b and
 * towards the upper edge for e (so the inversions find an edge). */
static double *s_draws(ns_rng_t *r, size_t n)
{
    double *x = malloc(n * 7 * sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < 7; j++) {
            double u = ns_rng_uniform(r);
            if (j == 1)
                u = fmin(fabs(0.1 * ns_rng_gaussian(r)), 0.999);
            if (j == 4)
                u = 1.0 - fmin(fabs(0.1 * ns_rng_gaussian(r)), 0.999);
            x[i * 7 + j] = LO[j] + u * (HI[j] - LO[j]);
        }
    return x;
}

static void test_round_trip_and_jacobian(void **state)
{
    (void)state;
    ns_rng_t *r = ns_rng_new(71, 0);
    const char *spec = "a:zscore,b:inversion,c:offset,d:logit,e:inversion-duplicate,"
                       "f:rescaletobounds,g:none";
    char err[256] = "";
    ns_reparam_t *rp = ns_reparam_new(7, NAMES, LO, HI, spec, "zscore", err, sizeof err);
    assert_non_null(rp);
    size_t n = 500;
    double *x = s_draws(r, n);
    assert_int_equal(ns_reparam_update(rp, x, n, 7), 0);
    assert_int_equal(ns_reparam_edge(rp, 1), NS_EDGE_LOWER);
    assert_int_equal(ns_reparam_edge(rp, 4), NS_EDGE_UPPER);
    double *xp = malloc(4 * n * 7 * sizeof(double)), *xr = malloc(4 * n * 7 * sizeof(double));
    double *lf = calloc(4 * n, sizeof(double)), *li = calloc(4 * n, sizeof(double));
    size_t *src = malloc(4 * n * sizeof(size_t));
    /* deterministic forward: Jacobian against finite differences (maps are
     * element-wise, so log|det| = sum_j log|dx'_j/dx_j|) */
    double worst_j = 0.0, worst_x = 0.0;
    ns_reparam_forward(rp, x, n, 7, xp, lf);
    for (size_t i = 0; i < 50; i++) {
        double num = 0.0, h = 1e-6;
        for (size_t j = 0; j < 7; j++) {
            double row[7], p1[7], p2[7];
            memcpy(row, x + i * 7, sizeof row);
            row[j] += h * (HI[j] - LO[j]);
            ns_reparam_forward(rp, row, 1, 7, p1, NULL);
            row[j] -= 2 * h * (HI[j] - LO[j]);
            ns_reparam_forward(rp, row, 1, 7, p2, NULL);
            num += log(fabs(p1[j] - p2[j]) / (2 * h * (HI[j] - LO[j])));
        }
        worst_j = fmax(worst_j, fabs(num - lf[i]));
    }
    print_message("forward log-Jacobian vs finite differences: max error %.2e\n", worst_j);
    assert_true(worst_j < 1e-6);
    /* training map (split for b, duplicate for e): every output row maps
     * back to its source row, log J_inv = -log J_fwd */
    memset(lf, 0, 4 * n * sizeof(double));
    size_t m = ns_reparam_forward_mirror(rp, x, n, 7, xp, lf, src, r, 0);
    assert_int_equal(m, 2 * n);
    size_t neg_b = 0, neg_e = 0;
    for (size_t i = 0; i < m; i++) {
        neg_b += signbit(xp[i * 7 + 1]) != 0; /* -0.0 counts: the edge point */
        neg_e += signbit(xp[i * 7 + 4]) != 0;
    }
    assert_int_equal(neg_b, 2 * (n / 2)); /* half of each copy */
    assert_int_equal(neg_e, n);           /* the mirrored copy */
    ns_reparam_inverse(rp, xp, m, xr, li);
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < 7; j++)
            worst_x = fmax(worst_x, fabs(xr[i * 7 + j] - x[src[i] * 7 + j]));
        assert_true(fabs(lf[i] + li[i]) < 1e-10);
    }
    print_message("round trip: max |x - inv(fwd(x))| = %.2e\n", worst_x);
    assert_true(worst_x < 1e-11);
    /* radius map mirrors every inversion parameter */
    assert_int_equal(ns_reparam_forward_mirror(rp, x, n, 7, xp, NULL, NULL, r, 1), 4 * n);
    free(x);
    free(xp);
    free(xr);
    free(lf);
    free(li);
    free(src);
    ns_reparam_destroy(&rp);
    ns_rng_destroy(&r);
}

static void test_zscore_and_rescale_known(void **state)
{
    (void)state;
    const char *nm[] = {"x", "y"};
    double lo[] = {-10, -10}, hi[] = {10, 10};
    ns_reparam_t *rp = ns_reparam_new(2, nm, lo, hi, "y:default", NULL, NULL, 0);
    assert_int_equal(ns_reparam_kind(rp, 0), NS_RP_ZSCORE);
    assert_int_equal(ns_reparam_kind(rp, 1), NS_RP_RESCALE);
    /* rows with a third column to check the stride */
    double x[] = {1, 2, 99, 2, 4, 99, 3, 8, 99, 6, 6, 99};
    ns_reparam_update(rp, x, 4, 3);
    double xp[8], lj[4] = {0};
    ns_reparam_forward(rp, x, 4, 3, xp, lj);
    /* x: mean 3, population sd sqrt((4+1+0+9)/4) = sqrt(3.5) */
    assert_true(fabs(xp[0] - (1 - 3) / sqrt(3.5)) < 1e-15);
    /* y: bounds [2, 8] -> 2(y-2)/6 - 1 */
    assert_true(xp[1] == -1.0 && xp[5] == 1.0 && fabs(xp[3] - (-1.0 / 3.0)) < 1e-15);
    assert_true(fabs(lj[0] - (-0.5 * log(3.5) + log(2.0 / 6.0))) < 1e-15);
    ns_reparam_destroy(&rp);
}

static void test_detect_edge(void **state)
{
    (void)state;
    ns_rng_t *r = ns_rng_new(72, 0);
    size_t n = 2000;
    double *u = malloc(n * sizeof(double)), *t = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        u[i] = fabs(ns_rng_gaussian(r));
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = fmax(mx, u[i]);
    for (size_t i = 0; i < n; i++)
        u[i] /= mx;
    assert_int_equal(ns_detect_edge(u, n, t), NS_EDGE_LOWER);
    for (size_t i = 0; i < n; i++)
        u[i] = 1.0 - u[i];
    assert_int_equal(ns_detect_edge(u, n, t), NS_EDGE_UPPER);
    for (size_t i = 0; i < n; i++)
        u[i] = 0.5 + 0.1 * ns_rng_gaussian(r);
    assert_int_equal(ns_detect_edge(u, n, t), NS_EDGE_NONE);
    free(u);
    free(t);
    ns_rng_destroy(&r);
}

static void test_spec_errors(void **state)
{
    (void)state;
    char err[256];
    const char *nm[] = {"x", "y"};
    double lo[] = {0, 0}, hi[] = {1, 1};
    assert_null(ns_reparam_new(2, nm, lo, hi, "z:zscore", NULL, err, sizeof err));
    assert_non_null(strstr(err, "unknown parameter"));
    assert_null(ns_reparam_new(2, nm, lo, hi, "x:banana", NULL, err, sizeof err));
    assert_non_null(strstr(err, "banana"));
    assert_null(ns_reparam_new(2, nm, lo, hi, "x", NULL, err, sizeof err));
    assert_null(ns_reparam_new(2, nm, lo, hi, "x:logit,x:none", NULL, err, sizeof err));
    assert_null(ns_reparam_new(2, nm, lo, hi, NULL, "nope", err, sizeof err));
    ns_reparam_t *rp = ns_reparam_new(2, nm, lo, hi, " x : logit , y:inversion ", "none",
                                      err, sizeof err);
    assert_non_null(rp);
    assert_int_equal(ns_reparam_kind(rp, 0), NS_RP_LOGIT);
    assert_int_equal(ns_reparam_kind(rp, 1), NS_RP_INVERSION);
    ns_reparam_destroy(&rp);
}

static void test_verify_and_save(void **state)
{
    (void)state;
    ns_rng_t *r = ns_rng_new(73, 0);
    char err[256] = "";
    ns_reparam_t *rp = ns_reparam_new(7, NAMES, LO, HI,
                                      "b:inversion,e:inversion-duplicate,c:offset,d:logit",
                                      "zscore", err, sizeof err);
    double *x = malloc(1000 * 7 * sizeof(double));
    for (size_t i = 0; i < 1000; i++)
        for (size_t j = 0; j < 7; j++)
            x[i * 7 + j] = LO[j] + ns_rng_uniform(r) * (HI[j] - LO[j]);
    double e = -1;
    assert_int_equal(ns_reparam_verify(rp, x, 1000, r, &e, err, sizeof err), 0);
    print_message("verification on 1000 prior draws: max error %.2e\n", e);
    assert_true(e >= 0 && e < 1e-9);
    /* save after a fit, load into a fresh one: identical maps */
    double *y = s_draws(r, 300);
    ns_reparam_update(rp, y, 300, 7);
    ns_buf_t b;
    ns_buf_init(&b);
    ns_reparam_save(rp, &b);
    ns_reparam_t *rq = ns_reparam_new(7, NAMES, LO, HI,
                                      "b:inversion,e:inversion-duplicate,c:offset,d:logit",
                                      "zscore", err, sizeof err);
    assert_int_equal(ns_reparam_load(rq, &b), 0);
    double pa[7], pb[7];
    ns_reparam_forward(rp, y, 1, 7, pa, NULL);
    ns_reparam_forward(rq, y, 1, 7, pb, NULL);
    assert_memory_equal(pa, pb, sizeof pa);
    for (size_t cut = 0; cut < b.len; cut += 5) {
        ns_buf_t v;
        ns_buf_view(&v, b.data, cut);
        assert_int_not_equal(ns_reparam_load(rq, &v), 0);
    }
    ns_buf_free(&b);
    free(x);
    free(y);
    ns_reparam_destroy(&rp);
    ns_reparam_destroy(&rq);
    ns_rng_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_jacobian),
        cmocka_unit_test(test_zscore_and_rescale_known),
        cmocka_unit_test(test_detect_edge),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_verify_and_save),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
