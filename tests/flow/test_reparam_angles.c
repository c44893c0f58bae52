/* test_reparam_angles.c - the angle, angle-pair, to-cartesian, dequantise,
 * log-rescale and z-score-variant maps (docs/flow.md): inverses, Jacobians
 * against finite differences, nessai's reference values, the flow input
 * dimension d', the parser's forms and errors, the GW defaults, save/load
 * and the start-up verification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nessai/error.h"
#include "reparam.h"

static ns_reparam_t *s_new(size_t d, const char *const *nm, const double *lo, const double *hi,
                           const char *spec, const int *periodic, const char *const *prefer,
                           int gw, char *err)
{
    ns_rp_model_t m = {d, nm, lo, hi, periodic, NULL, prefer, gw};
    return ns_reparam_new_model(&m, spec, "zscore", err, 512);
}

/* forward then inverse of n rows; returns the largest |x - x_back| and
 * checks lj_fwd = -lj_inv */
static double s_round_trip(ns_reparam_t *rp, const double *x, size_t n, ns_rng_t *r)
{
    size_t d = ns_reparam_dim(rp), dp = ns_reparam_prime_dim(rp);
    double *xp = malloc(n * dp * sizeof(double)), *xb = malloc(n * d * sizeof(double));
    double *lf = calloc(n, sizeof(double)), *li = calloc(n, sizeof(double));
    assert_int_equal(ns_reparam_forward_rng(rp, x, n, d, xp, lf, r), NS_OK);
    assert_int_equal(ns_reparam_inverse(rp, xp, n, xb, li), NS_OK);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            worst = fmax(worst, fabs(x[i * d + j] - xb[i * d + j]));
        assert_true(fabs(lf[i] + li[i]) < 1e-9 * fmax(1.0, fabs(lf[i])));
    }
    free(xp);
    free(xb);
    free(lf);
    free(li);
    return worst;
}

static void test_angle_round_trip(void **state)
{
    (void)state;
    ns_rng_t *r = ns_rng_new(3, 0);
    char err[512];
    static const char *nm[2] = {"theta", "rho"};
    for (int s = 1; s <= 2; s++) {
        for (int zb = 0; zb < 2; zb++) {
            double lo[2] = {zb ? 0.0 : -M_PI / s, 0.0}, hi[2] = {zb ? 2 * M_PI / s : M_PI / s, 5.0};
            const char *spec1 = s == 1 ? "{\"theta\": \"angle\"}" : "{\"theta\": \"angle-pi\"}";
            const char *spec2 = s == 1 ? "{\"angle\": [\"theta\", \"rho\"]}"
                                       : "{\"angle-pi\": [\"theta\", \"rho\"]}";
            for (int with_r = 0; with_r < 2; with_r++) {
                ns_reparam_t *rp = s_new(2, nm, lo, hi, with_r ? spec2 : spec1, NULL, NULL, 0, err);
                assert_non_null(rp);
                /* one-input angle adds a column; with its radius it does not */
                assert_int_equal(ns_reparam_prime_dim(rp), with_r ? 2 : 3);
                assert_int_equal(ns_reparam_has_prior(rp), !with_r);
                assert_string_equal(ns_reparam_prime_name(rp, 0), "theta_x");
                assert_string_equal(ns_reparam_prime_name(rp, 1), "theta_y");
                double x[400];
                for (int i = 0; i < 200; i++) {
                    x[2 * i] = lo[0] + (hi[0] - lo[0]) * ns_rng_uniform(r);
                    x[2 * i + 1] = 5 * ns_rng_uniform(r);
                }
                ns_reparam_update(rp, x, 200, 2);
                double e = s_round_trip(rp, x, 200, r);
                print_message("angle s=%d zero_bound=%d radius=%d: round trip %.2e\n", s, zb,
                              with_r, e);
                assert_true(e < 1e-6);
                ns_reparam_destroy(&rp);
            }
        }
    }
    /* a negative radius is an error */
    double lo[2] = {0, -1}, hi[2] = {2 * M_PI, 1};
    ns_reparam_t *rp = s_new(2, nm, lo, hi, "{\"angle\": [\"theta\", \"rho\"]}", NULL, NULL, 0, err);
    assert_non_null(rp);
    double x[2] = {1.0, -0.5}, xp[2];
    assert_int_equal(ns_reparam_forward_rng(rp, x, 1, 2, xp, NULL, r), NS_ERR_NUMERIC);
    ns_reparam_destroy(&rp);
    ns_rng_destroy(&r);
}

/* nessai's references: periodic on [-1, 1] has scale pi; a = 0.5 maps to
 * (~0, r) and a = +-1 to (-r, ~0); atan2 just below 0 wraps to 2 pi / s. */
static void test_periodic_references(void **state)
{
    (void)state;
    char err[512];
    static const char *nm[2] = {"a", "r"};
    double lo[2] = {-1, 0}, hi[2] = {1, 3};
    ns_reparam_t *rp = s_new(2, nm, lo, hi, "{\"periodic\": [\"a\", \"r\"]}", NULL, NULL, 0, err);
    assert_non_null(rp);
    double x[6] = {0.5, 2.0, 1.0, 2.0, -1.0, 2.0}, xp[6], xb[6];
    assert_int_equal(ns_reparam_forward(rp, x, 3, 2, xp, NULL), NS_OK);
    assert_true(fabs(xp[0]) < 1e-15 && fabs(xp[1] - 2.0) < 1e-15);
    assert_true(fabs(xp[2] + 2.0) < 1e-15 && fabs(xp[3]) < 1e-15);
    assert_true(fabs(xp[4] + 2.0) < 1e-15 && fabs(xp[5]) < 1e-15);
    ns_reparam_inverse(rp, xp, 3, xb, NULL);
    assert_true(fabs(xb[0] - 0.5) < 1e-15 && fabs(xb[1] - 2.0) < 1e-15);
    ns_reparam_destroy(&rp);
    /* zero-bound angle-pi: a tiny negative atan2 gives exactly 2 pi / 2 */
    double lo2[2] = {0, 0}, hi2[2] = {M_PI, 3};
    rp = s_new(2, nm, lo2, hi2, "{\"angle-pi\": [\"a\", \"r\"]}", NULL, NULL, 0, err);
    assert_non_null(rp);
    double p[2] = {1.0, -1e-17}, b[2];
    ns_reparam_inverse(rp, p, 1, b, NULL);
    assert_true(b[0] == M_PI);
    ns_reparam_destroy(&rp);
}

static void test_angle_pair_references(void **state)
{
    (void)state;
    char err[512];
    static const char *nm[3] = {"h", "v", "r"};
    const double s2 = sqrt(2.0);
    static const double pts[9][3] = {{1, 0, 0}, {-1, 0, 0}, {0, 1, 0}, {0, -1, 0}, {0, 0, 1},
                                     {0, 0, -1}, {0, 0, 0}, {1, 1, 0}, {-1, -1, 0}};
    /* (h, v az-zen, v ra-dec, r) */
    const double want[9][4] = {{0, M_PI / 2, 0, 1},           {M_PI, M_PI / 2, 0, 1},
                               {M_PI / 2, M_PI / 2, 0, 1},    {3 * M_PI / 2, M_PI / 2, 0, 1},
                               {0, 0, M_PI / 2, 1},           {0, M_PI, -M_PI / 2, 1},
                               {0, 0, 0, 0},                  {M_PI / 4, M_PI / 4, M_PI / 4, 2},
                               {5 * M_PI / 4, 3 * M_PI / 4, -M_PI / 4, 2}};
    for (int conv = 0; conv < 2; conv++) {
        double lo[3] = {0, conv ? 0 : -M_PI / 2, 0}, hi[3] = {2 * M_PI, conv ? M_PI : M_PI / 2, 5};
        ns_reparam_t *rp = s_new(3, nm, lo, hi, "{\"angle-pair\": [\"h\", \"v\", \"r\"]}", NULL,
                                 NULL, 0, err);
        assert_non_null(rp);
        assert_int_equal(ns_reparam_prime_dim(rp), 3);
        assert_string_equal(ns_reparam_prime_name(rp, 2), "h_v_r_z");
        for (int k = 0; k < 9; k++) {
            double p[3] = {pts[k][0], pts[k][1], pts[k][2]}, x[3];
            if (k >= 7)
                p[2] = (k == 7 ? 1 : -1) * s2;
            ns_reparam_inverse(rp, p, 1, x, NULL);
            double vw = conv ? want[k][1] : want[k][2];
            if (fabs(x[0] - want[k][0]) > 1e-12 || fabs(x[1] - vw) > 1e-12 ||
                fabs(x[2] - want[k][3]) > 1e-12)
                fail_msg("conv %d point %d: got (%g, %g, %g)", conv, k, x[0], x[1], x[2]);
        }
        ns_reparam_destroy(&rp);
    }
    /* ra on [-pi, pi]: no modulo */
    double lo[3] = {-M_PI, -M_PI / 2, 0}, hi[3] = {M_PI, M_PI / 2, 5};
    ns_reparam_t *rp = s_new(3, nm, lo, hi, "{\"angle-pair\": [\"h\", \"v\", \"r\"]}", NULL, NULL,
                             0, err);
    assert_non_null(rp);
    double p[3] = {0, -1, 0}, x[3];
    ns_reparam_inverse(rp, p, 1, x, NULL);
    assert_true(fabs(x[0] + M_PI / 2) < 1e-12);
    double q[3] = {-1, -1, -s2};
    ns_reparam_inverse(rp, q, 1, x, NULL);
    assert_true(fabs(x[0] + 3 * M_PI / 4) < 1e-12);
    ns_reparam_destroy(&rp);
}

static void test_angle_pair_round_trip_and_errors(void **state)
{
    (void)state;
    char err[512];
    ns_rng_t *r = ns_rng_new(5, 0);
    /* reversed names: the horizontal angle goes first */
    static const char *nm[2] = {"dec", "ra"};
    double lo[2] = {-M_PI / 2, 0}, hi[2] = {M_PI / 2, 2 * M_PI};
    ns_reparam_t *rp = s_new(2, nm, lo, hi, "{\"angle-pair\": [\"dec\", \"ra\"]}", NULL, NULL, 0, err);
    assert_non_null(rp);
    assert_int_equal(ns_reparam_prime_dim(rp), 3);
    assert_string_equal(ns_reparam_prime_name(rp, 0), "ra_dec_x");
    assert_true(ns_reparam_has_prior(rp));
    double x[600];
    for (int i = 0; i < 300; i++) {
        x[2 * i] = asin(2 * ns_rng_uniform(r) - 1);
        x[2 * i + 1] = 2 * M_PI * ns_rng_uniform(r);
    }
    double e = s_round_trip(rp, x, 300, r);
    print_message("angle-pair ra-dec round trip %.2e\n", e);
    assert_true(e < 1e-9);
    /* the chi_3 prime prior of the drawn radius: 2 log r - r^2/2 + log(2/pi)/2 */
    double p[3] = {0.3, -0.4, 1.2}, xb[2], lp = 0.0;
    ns_reparam_inverse_prior(rp, p, 1, xb, NULL, &lp);
    double rr = sqrt(0.09 + 0.16 + 1.44);
    assert_true(fabs(lp - (2 * log(rr) - 0.5 * rr * rr - 0.2257913526447274)) < 1e-12);
    ns_reparam_destroy(&rp);
    /* errors: one or four inputs, wrong ranges, wrong horizontal bounds,
     * a convention that does not match */
    static const char *n4[4] = {"a", "b", "c", "e"};
    double l4[4] = {0, -M_PI / 2, 0, 0}, h4[4] = {2 * M_PI, M_PI / 2, 1, 1};
    assert_null(s_new(4, n4, l4, h4, "{\"angle-pair\": [\"a\"]}", NULL, NULL, 0, err));
    assert_non_null(strstr(err, "pair"));
    assert_null(s_new(4, n4, l4, h4, "{\"angle-pair\": [\"a\", \"b\", \"c\", \"e\"]}", NULL, NULL,
                      0, err));
    double lb[2] = {0, 0}, hb[2] = {M_PI, M_PI};
    assert_null(s_new(2, nm, lb, hb, "{\"angle-pair\": [\"dec\", \"ra\"]}", NULL, NULL, 0, err));
    assert_non_null(strstr(err, "invalid prior ranges"));
    double lc[2] = {-M_PI / 2, M_PI}, hc[2] = {M_PI / 2, 3 * M_PI};
    assert_null(s_new(2, nm, lc, hc, "{\"angle-pair\": [\"dec\", \"ra\"]}", NULL, NULL, 0, err));
    assert_non_null(strstr(err, "prior bounds for ra"));
    double ld[2] = {0, 0}, hd[2] = {M_PI, 2 * M_PI};
    assert_null(s_new(2, nm, ld, hd, "{\"angle-pair\": {\"parameters\": [\"dec\", \"ra\"], "
                      "\"convention\": \"ra-dec\"}}", NULL, NULL, 0, err));
    assert_non_null(strstr(err, "convention"));
    assert_null(s_new(2, nm, ld, hd, "{\"angle-pair\": {\"parameters\": [\"dec\", \"ra\"], "
                      "\"convention\": \"galactic\"}}", NULL, NULL, 0, err));
    double le[2] = {0.1, 0}, he[2] = {0.1 + M_PI, 2 * M_PI};
    assert_null(s_new(2, nm, le, he, "{\"angle-pair\": [\"dec\", \"ra\"]}", NULL, NULL, 0, err));
    assert_non_null(strstr(err, "convention"));
    ns_rng_destroy(&r);
}

/* log|det| of a square map by central differences. */
static double s_fd_logdet(ns_reparam_t *rp, const double *x0, size_t d)
{
    double J[9], h = 1e-6;
    for (size_t k = 0; k < d; k++) {
        double a[3], b[3], pa[3], pb[3];
        memcpy(a, x0, d * sizeof(double));
        memcpy(b, x0, d * sizeof(double));
        a[k] += h;
        b[k] -= h;
        ns_reparam_forward(rp, a, 1, d, pa, NULL);
        ns_reparam_forward(rp, b, 1, d, pb, NULL);
        for (size_t i = 0; i < d; i++)
            J[i * d + k] = (pa[i] - pb[i]) / (2 * h);
    }
    double det = d == 2 ? J[0] * J[3] - J[1] * J[2]
                        : J[0] * (J[4] * J[8] - J[5] * J[7]) - J[1] * (J[3] * J[8] - J[5] * J[6]) +
                              J[2] * (J[3] * J[7] - J[4] * J[6]);
    return log(fabs(det));
}

static void test_jacobians_finite_differences(void **state)
{
    (void)state;
    char err[512];
    /* square forms: angle with its radius (log s is omitted, as nessai does),
     * the three-input pair in both conventions */
    static const char *nm[3] = {"h", "v", "r"};
    double lo2[2] = {0, 0}, hi2[2] = {M_PI, 4};
    ns_reparam_t *rp = s_new(2, nm, lo2, hi2, "{\"angle-pi\": [\"h\", \"v\"]}", NULL, NULL, 0, err);
    assert_non_null(rp);
    double x2[2] = {1.1, 2.3}, lj = 0;
    ns_reparam_forward(rp, x2, 1, 2, (double[2]){0}, &lj);
    assert_true(fabs(s_fd_logdet(rp, x2, 2) - (lj + log(2.0))) < 1e-7);
    ns_reparam_destroy(&rp);
    for (int conv = 0; conv < 2; conv++) {
        double lo[3] = {0, conv ? 0 : -M_PI / 2, 0}, hi[3] = {2 * M_PI, conv ? M_PI : M_PI / 2, 5};
        rp = s_new(3, nm, lo, hi, "{\"angle-pair\": [\"h\", \"v\", \"r\"]}", NULL, NULL, 0, err);
        assert_non_null(rp);
        double x[3] = {2.0, conv ? 1.0 : 0.4, 1.7};
        lj = 0;
        ns_reparam_forward(rp, x, 1, 3, (double[3]){0}, &lj);
        double fd = s_fd_logdet(rp, x, 3);
        print_message("angle-pair conv %d: log J %.9f, finite differences %.9f\n", conv, lj, fd);
        assert_true(fabs(fd - lj) < 1e-7);
        ns_reparam_destroy(&rp);
    }
    /* one-to-one maps: log-rescale, the z-score variants (after an update) */
    static const char *kinds[] = {"log-rescale", "zscore-gaussian-cdf", "z-score-logit",
                                  "z-score-inv-gaussian-cdf", "log-z-score", "logit"};
    static const char *n1[2] = {"a", "b"};
    double lo[2] = {0, 0}, hi[2] = {1, 1};
    ns_rng_t *r = ns_rng_new(9, 0);
    double x[400];
    for (int i = 0; i < 400; i++)
        x[i] = 0.05 + 0.9 * ns_rng_uniform(r);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        rp = s_new(2, n1, lo, hi, kinds[k], NULL, NULL, 0, err);
        assert_non_null(rp);
        assert_int_equal(ns_reparam_prime_dim(rp), 2);
        ns_reparam_update(rp, x, 200, 2);
        double worst = 0;
        for (int i = 0; i < 20; i++) {
            double l = 0;
            ns_reparam_forward(rp, x + 2 * i, 1, 2, (double[2]){0}, &l);
            worst = fmax(worst, fabs(s_fd_logdet(rp, x + 2 * i, 2) - l));
        }
        double e = s_round_trip(rp, x, 200, r);
        print_message("%-24s log J vs finite differences %.2e, round trip %.2e\n", kinds[k],
                      worst, e);
        assert_true(worst < 1e-6);
        assert_true(e < 1e-9);
        ns_reparam_destroy(&rp);
    }
    ns_rng_destroy(&r);
}

/* nessai's to-cartesian references on [0, 2]: the inverse of u = 0, -0.5,
 * 1 is 0, 1, 2 with log J = +log 2; the forward log J is -log 2 + log r;
 * split negates the y of floor(N/2) rows; the radius map duplicates. */
static void test_to_cartesian(void **state)
{
    (void)state;
    char err[512];
    static const char *nm[2] = {"p", "q"};
    double lo[2] = {0, 0}, hi[2] = {2, 1};
    ns_reparam_t *rp = s_new(2, nm, lo, hi, "{\"p\": \"to-cartesian\", \"q\": \"none\"}", NULL,
                             NULL, 0, err);
    assert_non_null(rp);
    assert_int_equal(ns_reparam_prime_dim(rp), 3);
    double u[3] = {0, -0.5, 1};
    for (int i = 0; i < 3; i++) {
        double p[3] = {2 * cos(M_PI * u[i]), 2 * sin(M_PI * u[i]), 0.5}, x[2], lj = 0;
        ns_reparam_inverse(rp, p, 1, x, &lj);
        assert_true(fabs(x[0] - i) < 1e-12);
        assert_true(fabs(lj - (log(2.0) - log(2.0))) < 1e-12); /* + log w - log r, r = 2 */
    }
    ns_rng_t *r = ns_rng_new(4, 0);
    double x[200], xp[600], lf[200] = {0};
    for (int i = 0; i < 100; i++) {
        x[2 * i] = 2 * ns_rng_uniform(r);
        x[2 * i + 1] = ns_rng_uniform(r);
    }
    ns_reparam_update(rp, x, 100, 2);
    assert_int_equal(ns_reparam_forward_rng(rp, x, 1, 2, xp, lf, r), NS_OK);
    double rad = hypot(xp[0], xp[1]);
    assert_true(fabs(lf[0] - (-log(2.0) + log(rad))) < 1e-12);
    size_t m = ns_reparam_forward_mirror(rp, x, 100, 2, xp, NULL, NULL, r, 0);
    assert_int_equal(m, 100);
    int neg = 0;
    for (int i = 0; i < 100; i++)
        neg += xp[3 * i + 1] < 0;
    assert_int_equal(neg, 50); /* the angles all lie in [0, pi]: y >= 0 before the split */
    assert_int_equal(ns_reparam_max_copies(rp, 1), 2);
    assert_int_equal(ns_reparam_forward_mirror(rp, x, 100, 2, xp, NULL, NULL, r, 1), 200);
    assert_true(s_round_trip(rp, x, 100, r) < 1e-12);
    ns_reparam_destroy(&rp);
    assert_null(s_new(2, nm, lo, hi, "{\"p\": {\"reparameterisation\": \"to-cartesian\", "
                      "\"mode\": \"double\"}}", NULL, NULL, 0, err));
    ns_rng_destroy(&r);
}

/* dequantise on [0, 10]: the prime bounds are [0, 11]; 0 lands in (0, 1)
 * before the rescaling, the inverse rounds down, integers return exactly. */
static void test_dequantise(void **state)
{
    (void)state;
    char err[512];
    static const char *nm[2] = {"k", "y"};
    double lo[2] = {0, 0}, hi[2] = {10, 1};
    ns_rng_t *r = ns_rng_new(6, 0);
    for (int lg = 0; lg < 2; lg++) {
        ns_reparam_t *rp = s_new(2, nm, lo, hi, lg ? "{\"k\": \"dequantise-logit\"}"
                                                   : "{\"k\": \"dequantise\"}",
                                 NULL, NULL, 0, err);
        assert_non_null(rp);
        assert_int_equal(ns_reparam_prime_dim(rp), 2);
        double x[10] = {0, 0.5, 1, 0.5, 2, 0.5, 4, 0.5, 8, 0.5}, xp[10];
        assert_int_equal(ns_reparam_forward_rng(rp, x, 5, 2, xp, NULL, r), NS_OK);
        for (int i = 0; i < 5; i++) {
            double v = lg ? 11.0 / (1.0 + exp(-xp[2 * i])) : 5.5 * (xp[2 * i] + 1.0);
            assert_true(v > x[2 * i] && v < x[2 * i] + 1);
        }
        assert_true(s_round_trip(rp, x, 5, r) == 0.0);
        ns_reparam_update(rp, x, 5, 2);
        double p[6] = {2 * 0.5 / 11 - 1, 0, 2 * 1.1 / 11 - 1, 0, 2 * 2.3 / 11 - 1, 0}, xb[6];
        if (!lg) {
            ns_reparam_inverse(rp, p, 3, xb, NULL);
            assert_true(xb[0] == 0 && xb[2] == 1 && xb[4] == 2);
        }
        /* the verification needs integer draws */
        double xv[200];
        for (int i = 0; i < 100; i++) {
            xv[2 * i] = floor(11 * ns_rng_uniform(r));
            xv[2 * i + 1] = ns_rng_uniform(r);
        }
        assert_int_equal(ns_reparam_verify(rp, xv, 100, r, NULL, err, sizeof err), NS_OK);
        xv[0] = 0.5;
        assert_int_equal(ns_reparam_verify(rp, xv, 100, r, NULL, err, sizeof err), NS_ERR_NUMERIC);
        ns_reparam_destroy(&rp);
    }
    ns_rng_destroy(&r);
}

/* The parser: parameter-keyed and registry-keyed entries, patterns,
 * kwargs, and the errors. */
static void test_parser_forms(void **state)
{
    (void)state;
    char err[512];
    static const char *nm[5] = {"w", "x_0", "x_1", "y", "angle"};
    double lo[5] = {0, 0, 0, 0, 0}, hi[5] = {1, 1, 1, 1, 2 * M_PI};
    ns_reparam_t *rp = s_new(5, nm, lo, hi,
                             "{\"rescaletobounds\": {\"parameters\": [\"w\"]}, \"x_.*\": null, "
                             "\"y\": {\"reparameterisation\": \"logit\"}, \"angle\": \"angle\"}",
                             NULL, NULL, 0, err);
    /* "x_.*" is neither a parameter nor a registry name */
    assert_null(rp);
    assert_non_null(strstr(err, "'x_.*' is not a parameter in the model or a known"));
    rp = s_new(5, nm, lo, hi,
               "{\"rescaletobounds\": {\"parameters\": [\"w\"]}, \"none\": \"x_.*\", "
               "\"y\": {\"reparameterisation\": \"logit\"}, \"angle\": \"angle\"}",
               NULL, NULL, 0, err);
    assert_non_null(rp);
    assert_int_equal(ns_reparam_kind(rp, 0), NS_RP_RESCALE);
    assert_int_equal(ns_reparam_kind(rp, 1), NS_RP_NONE);
    assert_int_equal(ns_reparam_kind(rp, 2), NS_RP_NONE);
    assert_int_equal(ns_reparam_kind(rp, 3), NS_RP_LOGIT);
    /* a parameter called "angle" is a parameter */
    assert_int_equal(ns_reparam_kind(rp, 4), NS_RP_ANGLE);
    assert_int_equal(ns_reparam_prime_dim(rp), 6);
    assert_string_equal(ns_reparam_prime_name(rp, 1), "x_0");
    assert_string_equal(ns_reparam_prime_name(rp, 4), "angle_x");
    char line[256];
    ns_reparam_describe(rp, nm, line, sizeof line);
    assert_string_equal(line, "w=rescaletobounds x_0=none x_1=none y=logit angle=angle");
    ns_reparam_destroy(&rp);
    /* shell patterns when no regular expression matches; a bare name is
     * for every parameter */
    rp = s_new(5, nm, lo, hi, "{\"logit\": [\"x_?\"]}", NULL, NULL, 0, err);
    assert_non_null(rp);
    assert_int_equal(ns_reparam_kind(rp, 1), NS_RP_LOGIT);
    assert_int_equal(ns_reparam_kind(rp, 2), NS_RP_LOGIT);
    assert_int_equal(ns_reparam_kind(rp, 0), NS_RP_ZSCORE);
    ns_reparam_destroy(&rp);
    rp = s_new(4, nm, lo, hi, "\"logit\"", NULL, NULL, 0, err);
    assert_non_null(rp);
    for (int j = 0; j < 4; j++)
        assert_int_equal(ns_reparam_kind(rp, j), NS_RP_LOGIT);
    ns_reparam_destroy(&rp);
    /* the "name:kind" list takes every name too */
    rp = s_new(5, nm, lo, hi, "angle:angle-2pi,y:log-rescale", NULL, NULL, 0, err);
    assert_non_null(rp);
    assert_int_equal(ns_reparam_kind(rp, 4), NS_RP_ANGLE);
    assert_int_equal(ns_reparam_kind(rp, 3), NS_RP_LOG_RESCALE);
    ns_reparam_destroy(&rp);
    /* errors */
    static const struct { const char *spec, *msg; } bad[] = {
        {"{\"z\": \"angle\"}", "'z' is not a parameter in the model or a known reparameterisation"},
        {"{\"logit\": [\"nomatch.*\"]}", "no model parameter matches"},
        {"{\"logit\": {\"parameters\": [\"q\"]}}", "no model parameter matches"},
        {"{\"y\": {\"parameters\": [\"w\"]}}", "no \"reparameterisation\" given"},
        {"{\"y\": {\"reparameterisation\": \"logit\", \"parameters\": [\"q\"]}}",
         "'q' is not a parameter"},
        {"{\"y\": [\"logit\", \"zscore\"]}", "chains"},
        {"{\"y\": {\"reparameterisation\": \"logit\", \"foo\": 1}}", "no setting 'foo'"},
        {"{\"y\": \"sine\"}", "unknown reparameterisation 'sine'"},
        {"{\"y\": \"logit\", \"logit\": \"y\"}", "two reparameterisations"},
        {"{\"angle-pi\": [\"w\", \"y\", \"x_0\"]}", "takes one parameter"},
        {"{\"angle\": [\"w\", \"y\"]}", "chains"},
        {"{\"y\": ", "not valid JSON"},
        {"q:zscore", "unknown parameter 'q'"},
        {"[1]", "must be a JSON object"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        err[0] = '\0';
        assert_null(s_new(5, nm, lo, hi, bad[k].spec, NULL, NULL, 0, err));
        if (!strstr(err, bad[k].msg))
            fail_msg("spec %s: error '%s' lacks '%s'", bad[k].spec, err, bad[k].msg);
    }
}

/* A periodic parameter gets "periodic" by default and must end up with a
 * map that wraps with its period. */
static void test_periodic_declarations(void **state)
{
    (void)state;
    char err[512];
    static const char *nm[2] = {"f", "phase"};
    double lo[2] = {0, 0}, hi[2] = {1, 2 * M_PI};
    int per[2] = {0, 1};
    ns_reparam_t *rp = s_new(2, nm, lo, hi, NULL, per, NULL, 0, err);
    assert_non_null(rp);
    assert_string_equal(ns_reparam_name(rp, 1), "periodic");
    assert_int_equal(ns_reparam_prime_dim(rp), 3);
    ns_reparam_destroy(&rp);
    rp = s_new(2, nm, lo, hi, "{\"phase\": \"angle-2pi\"}", per, NULL, 0, err);
    assert_non_null(rp);
    ns_reparam_destroy(&rp);
    assert_null(s_new(2, nm, lo, hi, "{\"phase\": \"zscore\"}", per, NULL, 0, err));
    assert_non_null(strstr(err, "'phase' is periodic"));
    assert_null(s_new(2, nm, lo, hi, "{\"phase\": \"angle-pi\"}", per, NULL, 0, err));
    assert_non_null(strstr(err, "does not wrap"));
    /* bounds that neither start at 0 nor are symmetric cannot wrap */
    double lo2[2] = {0, 1}, hi2[2] = {1, 1 + 2 * M_PI};
    assert_null(s_new(2, nm, lo2, hi2, NULL, per, NULL, 0, err));
    assert_non_null(strstr(err, "'phase' is periodic"));
    /* a period that differs from the range */
    ns_rp_model_t m = {2, nm, lo, hi, per, (const double[2]){0, M_PI}, NULL, 0};
    rp = ns_reparam_new_model(&m, NULL, "zscore", err, sizeof err);
    assert_null(rp);
    assert_non_null(strstr(err, "span one period"));
    /* preferences: the pair */
    static const char *sky[2] = {"ra", "dec"};
    double ls[2] = {0, -M_PI / 2}, hs[2] = {2 * M_PI, M_PI / 2};
    const char *pref[2] = {"angle-pair", "angle-pair"};
    int pers[2] = {1, 0};
    rp = s_new(2, sky, ls, hs, NULL, pers, pref, 0, err);
    assert_non_null(rp);
    assert_int_equal(ns_reparam_kind(rp, 0), NS_RP_ANGLE_PAIR);
    assert_int_equal(ns_reparam_kind(rp, 1), NS_RP_ANGLE_PAIR);
    assert_int_equal(ns_reparam_prime_dim(rp), 3);
    ns_reparam_destroy(&rp);
    const char *bad[2] = {"wobble", NULL};
    assert_null(s_new(2, sky, ls, hs, NULL, NULL, bad, 0, err));
    assert_non_null(strstr(err, "unknown reparameterisation 'wobble'"));
}

/* The GW defaults on bilby's precessing BBH: d' = 20, five radials. */
static void test_gw_defaults(void **state)
{
    (void)state;
    char err[512];
    static const char *nm[15] = {"chirp_mass", "mass_ratio", "a_1", "a_2", "tilt_1",
                                 "tilt_2", "phi_12", "phi_jl", "luminosity_distance", "dec",
                                 "ra", "theta_jn", "psi", "phase", "geocent_time"};
    double lo[15] = {25, 0.125, 0, 0, 0, 0, 0, 0, 100, -M_PI / 2, 0, 0, 0, 0, 1126259642.3};
    double hi[15] = {31, 1, 0.99, 0.99, M_PI, M_PI, 2 * M_PI, 2 * M_PI, 5000, M_PI / 2,
                     2 * M_PI, M_PI, M_PI, 2 * M_PI, 1126259642.5};
    ns_reparam_t *rp = s_new(15, nm, lo, hi, NULL, NULL, NULL, 1, err);
    assert_non_null(rp);
    assert_int_equal(ns_reparam_prime_dim(rp), 20);
    char line[1024];
    ns_reparam_describe(rp, nm, line, sizeof line);
    print_message("%s\n", line);
    assert_string_equal(line, "chirp_mass=mass mass_ratio=mass_ratio a_1=default a_2=default "
                        "tilt_1=angle-sine tilt_2=angle-sine phi_12=angle-2pi "
                        "phi_jl=angle-2pi luminosity_distance=distance ra+dec=sky-ra-dec "
                        "theta_jn=angle-sine psi=angle-pi phase=angle-2pi geocent_time=time");
    assert_string_equal(ns_reparam_prime_name(rp, 11), "ra_dec_x");
    /* verification on prior draws passes (distance and mass ratio edges
     * forced both ways) */
    ns_rng_t *r = ns_rng_new(8, 0);
    double *x = malloc(1000 * 15 * sizeof(double));
    for (int i = 0; i < 1000; i++)
        for (int j = 0; j < 15; j++)
            x[i * 15 + j] = j == 9 ? asin(2 * ns_rng_uniform(r) - 1)
                                   : lo[j] + (hi[j] - lo[j]) * ns_rng_uniform(r);
    assert_int_equal(ns_reparam_verify(rp, x, 1000, r, NULL, err, sizeof err), NS_OK);
    free(x);
    ns_reparam_destroy(&rp);
    /* the user's entries come first; unknown names fall back */
    static const char *n3[3] = {"mass_ratio", "theta_jn", "phase"};
    double l3[3] = {0.1, 0, 0}, h3[3] = {1, M_PI, 2 * M_PI};
    rp = s_new(3, n3, l3, h3, "{\"phase\": \"zscore\"}", NULL, NULL, 1, err);
    assert_non_null(rp);
    assert_string_equal(ns_reparam_name(rp, 2), "zscore");
    assert_string_equal(ns_reparam_name(rp, 1), "angle-sine");
    ns_reparam_destroy(&rp);
    /* ra without dec */
    static const char *n2[2] = {"ra", "x"};
    double l2[2] = {0, 0}, h2[2] = {2 * M_PI, 1};
    assert_null(s_new(2, n2, l2, h2, NULL, NULL, NULL, 1, err));
    assert_non_null(strstr(err, "partner"));
    ns_rng_destroy(&r);
}

/* Save / load: the fitted state of the new kinds comes back exactly, and
 * a different configuration is refused. */
static void test_save_load(void **state)
{
    (void)state;
    char err[512];
    static const char *nm[3] = {"a", "b", "c"};
    double lo[3] = {0, 0.01, 0}, hi[3] = {2 * M_PI, 1, 1};
    const char *spec = "{\"a\": \"angle\", \"b\": \"zscore-gaussian-cdf\", \"c\": \"log-z-score\"}";
    ns_reparam_t *rp = s_new(3, nm, lo, hi, spec, NULL, NULL, 0, err);
    ns_reparam_t *rq = s_new(3, nm, lo, hi, spec, NULL, NULL, 0, err);
    assert_non_null(rp);
    ns_rng_t *r = ns_rng_new(2, 0);
    double x[300];
    for (int i = 0; i < 300; i++)
        x[i] = (i % 3 == 0 ? 6 : 0.9) * ns_rng_uniform(r) + 0.05;
    ns_reparam_update(rp, x, 100, 3);
    ns_buf_t b;
    ns_buf_init(&b);
    ns_reparam_save(rp, &b);
    b.pos = 0;
    assert_int_equal(ns_reparam_load(rq, &b), NS_OK);
    double p1[4], p2[4];
    ns_rng_t *r1 = ns_rng_new(1, 0), *r2 = ns_rng_new(1, 0);
    ns_reparam_forward_rng(rp, x + 3, 1, 3, p1, NULL, r1);
    ns_reparam_forward_rng(rq, x + 3, 1, 3, p2, NULL, r2);
    assert_memory_equal(p1, p2, sizeof p1);
    ns_reparam_t *ro = s_new(3, nm, lo, hi, "{\"a\": \"angle\"}", NULL, NULL, 0, err);
    b.pos = 0;
    assert_int_equal(ns_reparam_load(ro, &b), NS_ERR_CORRUPT);
    ns_buf_free(&b);
    ns_reparam_destroy(&rp);
    ns_reparam_destroy(&rq);
    ns_reparam_destroy(&ro);
    ns_rng_destroy(&r);
    ns_rng_destroy(&r1);
    ns_rng_destroy(&r2);
}

/* The drawn radii: chi_2 has mean sqrt(pi/2), chi_3 mean 2 sqrt(2/pi);
 * the same generator state gives the same radii. */
static void test_radius_law(void **state)
{
    (void)state;
    char err[512];
    static const char *nm[2] = {"ra", "dec"};
    double lo[2] = {0, -M_PI / 2}, hi[2] = {2 * M_PI, M_PI / 2};
    ns_reparam_t *ra = s_new(2, nm, lo, hi, "{\"ra\": \"angle\"}", NULL, NULL, 0, err);
    ns_reparam_t *rp = s_new(2, nm, lo, hi, "{\"angle-pair\": [\"ra\", \"dec\"]}", NULL, NULL, 0, err);
    ns_rng_t *r = ns_rng_new(11, 0);
    size_t n = 20000;
    double *x = malloc(2 * n * sizeof(double)), *p = malloc(3 * n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        x[2 * i] = 1.0;
        x[2 * i + 1] = 0.2;
    }
    ns_reparam_forward_rng(ra, x, n, 2, p, NULL, r);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += hypot(p[3 * i], p[3 * i + 1]);
    assert_true(fabs(s / n - sqrt(M_PI / 2)) < 0.02);
    ns_reparam_forward_rng(rp, x, n, 2, p, NULL, r);
    s = 0;
    for (size_t i = 0; i < n; i++)
        s += sqrt(p[3 * i] * p[3 * i] + p[3 * i + 1] * p[3 * i + 1] + p[3 * i + 2] * p[3 * i + 2]);
    assert_true(fabs(s / n - 2 * sqrt(2 / M_PI)) < 0.02);
    /* without a generator the draw is refused */
    assert_int_equal(ns_reparam_forward(rp, x, 1, 2, p, NULL), NS_ERR_STATE);
    free(x);
    free(p);
    ns_reparam_destroy(&ra);
    ns_reparam_destroy(&rp);
    ns_rng_destroy(&r);
}

/* The weights with a perfect flow (x' ~ N(0, I)): log w = log p(x) +
 * log chi_k(r) - (log N(x') - log J_inv) is a constant, ln s for an angle
 * with a uniform prior on the full circle and 0 for the ra-dec pair with
 * the isotropic prior (the population's formula, flow_population.c). */
static void test_constant_weight_identity(void **state)
{
    (void)state;
    char err[512];
    ns_rng_t *r = ns_rng_new(12, 0);
    static const char *nm[2] = {"ra", "dec"};
    double lo[2] = {0, -M_PI / 2}, hi[2] = {2 * M_PI, M_PI / 2};
    for (int pair = 0; pair < 2; pair++) {
        const char *spec = pair ? "{\"angle-pair\": [\"ra\", \"dec\"]}"
                                : "{\"ra\": \"angle\", \"dec\": \"none\"}";
        ns_reparam_t *rp = s_new(2, nm, lo, hi, spec, NULL, NULL, 0, err);
        assert_non_null(rp);
        double wmin = INFINITY, wmax = -INFINITY;
        for (int i = 0; i < 1000; i++) {
            double p[3], x[2], lj = 0, lpr = 0, lz = 0;
            /* with the angle alone, dec passes through: two latent columns */
            for (int c = 0; c < 3; c++) {
                p[c] = c < 2 || pair ? ns_rng_gaussian(r) : 0.0;
                if (c < 2 || pair)
                    lz += -0.5 * p[c] * p[c] - 0.5 * log(2 * M_PI);
            }
            ns_reparam_inverse_prior(rp, p, 1, x, &lj, &lpr);
            double logp = pair ? log(cos(x[1])) - log(4 * M_PI) : -log(2 * M_PI);
            double w = logp + lpr - (lz - lj);
            wmin = fmin(wmin, w);
            wmax = fmax(wmax, w);
        }
        print_message("%s: log w in [%.3e, %.3e]\n", pair ? "angle-pair" : "angle", wmin, wmax);
        assert_true(wmax - wmin < 1e-9);
        assert_true(fabs(wmax - 0.0) < 1e-9); /* s = 1 for the angle, 1 for the pair */
        ns_reparam_destroy(&rp);
    }
    ns_rng_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_angle_round_trip),
        cmocka_unit_test(test_periodic_references),
        cmocka_unit_test(test_angle_pair_references),
        cmocka_unit_test(test_angle_pair_round_trip_and_errors),
        cmocka_unit_test(test_jacobians_finite_differences),
        cmocka_unit_test(test_to_cartesian),
        cmocka_unit_test(test_dequantise),
        cmocka_unit_test(test_parser_forms),
        cmocka_unit_test(test_periodic_declarations),
        cmocka_unit_test(test_gw_defaults),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_radius_law),
        cmocka_unit_test(test_constant_weight_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
