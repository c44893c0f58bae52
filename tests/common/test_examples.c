/* The example plugins' stated ln Z truths, checked by 2-D midpoint-rule
 * quadrature over the prior box through the real loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nessai/error.h"
#include "nessai/plugin.h"
#include "nessai/util.h"

/* ln( (1/V) * integral of L over the box ) on an m x m midpoint grid. */
static double s_grid_log_z(ns_model_t *model, int m)
{
    const double *lo = ns_model_lower(model), *hi = ns_model_upper(model);
    double hx = (hi[0] - lo[0]) / m, hy = (hi[1] - lo[1]) / m;
    double *x = malloc(2 * (size_t)m * sizeof *x), *logl = malloc((size_t)m * sizeof *logl);
    double *rows = malloc((size_t)m * sizeof *rows);
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < m; j++) {
            x[2 * j] = lo[0] + (i + 0.5) * hx;
            x[2 * j + 1] = lo[1] + (j + 0.5) * hy;
        }
        assert_int_equal(ns_model_log_likelihood(model, x, (size_t)m, logl), NS_OK);
        rows[i] = ns_logsumexp(logl, (size_t)m);
    }
    double lz = ns_logsumexp(rows, (size_t)m) - 2.0 * log((double)m);
    free(x);
    free(logl);
    free(rows);
    return lz;
}

/* ln integral of L p over the box on an m x m midpoint grid, p the model's
 * log prior (for models whose prior is not uniform). With discrete0 the
 * first parameter takes the integers lo..hi instead (a sum over them). */
static double s_grid_log_z_prior(ns_model_t *model, int m, int discrete0)
{
    const double *lo = ns_model_lower(model), *hi = ns_model_upper(model);
    int m0 = discrete0 ? (int)(hi[0] - lo[0]) + 1 : m;
    double hx = discrete0 ? 1.0 : (hi[0] - lo[0]) / m, hy = (hi[1] - lo[1]) / m;
    double *x = malloc(2 * (size_t)m * sizeof *x), *logl = malloc((size_t)m * sizeof *logl);
    double *logp = malloc((size_t)m * sizeof *logp), *rows = malloc((size_t)m0 * sizeof *rows);
    for (int i = 0; i < m0; i++) {
        for (int j = 0; j < m; j++) {
            x[2 * j] = discrete0 ? lo[0] + i : lo[0] + (i + 0.5) * hx;
            x[2 * j + 1] = lo[1] + (j + 0.5) * hy;
        }
        assert_int_equal(ns_model_log_likelihood(model, x, (size_t)m, logl), NS_OK);
        assert_int_equal(ns_model_log_prior(model, x, (size_t)m, logp), NS_OK);
        for (int j = 0; j < m; j++)
            logl[j] += logp[j];
        rows[i] = ns_logsumexp(logl, (size_t)m);
    }
    /* a discrete axis sums the prior mass (prior density x 1) */
    double lz = ns_logsumexp(rows, (size_t)m0) + log(hx) + log(hy);
    free(x);
    free(logl);
    free(logp);
    free(rows);
    return lz;
}

static void test_truths_by_quadrature(void **state)
{
    (void)state;
    static const struct {
        const char *name, *args;
        int grid;
        double tol;
    } cases[] = {
        {"gaussian", "dim=2", 1000, 1e-4},
        {"rosenbrock", "dim=2", 4000, 2e-4},
        {"correlated", "dim=2", 2000, 1e-4},
        {"shells", "dim=2", 4000, 2e-4},
        {"eggbox", "", 4000, 2e-4},
        {"mixture", "dim=2", 1000, 1e-4},
        {"linreg", "dim=2", 4000, 1e-4},
        {"sinusoid", "", 2000, 1e-4},
        {"sinusoid", "phase0=3.14159", 2000, 1e-4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ns_model_t *m = NULL;
        char err[512];
        char path[512];
        snprintf(path, sizeof path, "%s/lib%s.so", NESSAI_EXAMPLES_DIR, cases[i].name);
        assert_int_equal(ns_model_load(path, cases[i].args, &m, err, sizeof err), NS_OK);
        double truth = ns_model_truth(m), lz = s_grid_log_z(m, cases[i].grid);
        print_message("%-10s truth %.5f quadrature %.5f\n", cases[i].name, truth, lz);
        if (!(fabs(lz - truth) < cases[i].tol))
            fail_msg("%s: truth %.6f but quadrature gives %.6f", cases[i].name, truth, lz);
        ns_model_destroy(&m);
    }
}

/* Models with a non-uniform or discrete prior: the quadrature weights L by
 * the model's own prior. */
static void test_truths_with_prior(void **state)
{
    (void)state;
    static const struct {
        const char *name, *args;
        int grid, discrete0;
        double tol;
    } cases[] = {
        {"sky", "", 2000, 0, 1e-4},
        {"sky", "kappa=5,ra0=3,dec0=-1.2", 1000, 0, 1e-4},
        {"discrete", "", 4000, 1, 1e-6},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ns_model_t *m = NULL;
        char err[512], path[512];
        snprintf(path, sizeof path, "%s/lib%s.so", NESSAI_EXAMPLES_DIR, cases[i].name);
        assert_int_equal(ns_model_load(path, cases[i].args, &m, err, sizeof err), NS_OK);
        double truth = ns_model_truth(m);
        double lz = s_grid_log_z_prior(m, cases[i].grid, cases[i].discrete0);
        print_message("%-10s truth %.6f quadrature %.6f\n", cases[i].name, truth, lz);
        if (!(fabs(lz - truth) < cases[i].tol))
            fail_msg("%s: truth %.6f but quadrature gives %.6f", cases[i].name, truth, lz);
        ns_model_destroy(&m);
    }
}

/* The declarations reach the loader: the sinusoid's phase and the sky's ra
 * are periodic, the sky prefers the angle pair and the discrete model
 * dequantise; periodic=0 declares nothing. */
static void test_declarations(void **state)
{
    (void)state;
    char err[512], path[512];
    ns_model_t *m = NULL;
    snprintf(path, sizeof path, "%s/libsky.so", NESSAI_EXAMPLES_DIR);
    assert_int_equal(ns_model_load(path, "", &m, err, sizeof err), NS_OK);
    assert_non_null(ns_model_periodic(m));
    assert_int_equal(ns_model_periodic(m)[0], 1);
    assert_int_equal(ns_model_periodic(m)[1], 0);
    assert_true(fabs(ns_model_period(m)[0] - 2 * M_PI) < 1e-15);
    assert_string_equal(ns_model_reparameterisations(m)[1], "angle-pair");
    ns_model_destroy(&m);
    assert_int_equal(ns_model_load(path, "periodic=0", &m, err, sizeof err), NS_OK);
    assert_int_equal(ns_model_periodic(m)[0], 0);
    assert_null(ns_model_reparameterisations(m)[0]);
    ns_model_destroy(&m);
    snprintf(path, sizeof path, "%s/libgaussian.so", NESSAI_EXAMPLES_DIR);
    assert_int_equal(ns_model_load(path, "", &m, err, sizeof err), NS_OK);
    assert_null(ns_model_periodic(m));
    assert_null(ns_model_period(m));
    assert_null(ns_model_reparameterisations(m));
    ns_model_destroy(&m);
}

/* The unit-hypercube maps: every example round-trips u -> x -> u (the
 * linear default of the bounds, or the sky's inverse CDFs), maps into its
 * bounds, and the cube prior is 0 for a box prior, the cube density of a
 * custom log_prior with the default map (discrete), 0 for the sky's own
 * map, and -inf on an upper face. */
static void test_unit_hypercube(void **state)
{
    (void)state;
    static const struct {
        const char *name, *args;
        int custom;
    } cases[] = {
        {"gaussian", "dim=3", 0}, {"rosenbrock", "dim=2", 0}, {"correlated", "dim=2", 0},
        {"shells", "dim=2", 0},   {"eggbox", "", 0},          {"mixture", "dim=2", 0},
        {"linreg", "dim=2", 0},   {"sinusoid", "", 0},        {"discrete", "", 0},
        {"sky", "", 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ns_model_t *m = NULL;
        char err[512], path[512];
        snprintf(path, sizeof path, "%s/lib%s.so", NESSAI_EXAMPLES_DIR, cases[c].name);
        assert_int_equal(ns_model_load(path, cases[c].args, &m, err, sizeof err), NS_OK);
        assert_int_equal(ns_model_has_unit_hypercube(m), cases[c].custom);
        size_t d = (size_t)ns_model_dim(m), n = 64;
        double *u = malloc(n * d * sizeof *u), *x = malloc(n * d * sizeof *x);
        double *u2 = malloc(n * d * sizeof *u2), *lp = malloc(n * sizeof *lp);
        double *lu = malloc(n * sizeof *lu);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                u[i * d + j] = (double)((i * 7 + j * 13) % n + 0.5) / (double)n;
        assert_int_equal(ns_model_from_unit_hypercube(m, u, n, x), NS_OK);
        assert_int_equal(ns_model_to_unit_hypercube(m, x, n, u2), NS_OK);
        for (size_t i = 0; i < n; i++) {
            assert_true(ns_model_in_bounds(m, x + i * d));
            for (size_t j = 0; j < d; j++)
                if (!(fabs(u2[i * d + j] - u[i * d + j]) < 1e-12))
                    fail_msg("%s: u %.17g -> %.17g", cases[c].name, u[i * d + j], u2[i * d + j]);
        }
        assert_int_equal(ns_model_log_prior(m, x, n, lp), NS_OK);
        ns_model_log_prior_unit_hypercube(m, u, lp, n, lu);
        const double *lo = ns_model_lower(m), *hi = ns_model_upper(m);
        for (size_t i = 0; i < n; i++) {
            double want = 0.0;
            if (!cases[c].custom) {
                want = lp[i];
                for (size_t j = 0; j < d; j++)
                    want += log(hi[j] - lo[j]);
            }
            if (!isfinite(lp[i]))
                want = -INFINITY;
            if (!(lu[i] == want || fabs(lu[i] - want) < 1e-12))
                fail_msg("%s: log prior on the cube %.17g, expected %.17g", cases[c].name, lu[i],
                         want);
        }
        u[d - 1] = 1.0;
        ns_model_log_prior_unit_hypercube(m, u, lp, 1, lu);
        assert_true(isinf(lu[0]) && lu[0] < 0);
        free(u);
        free(x);
        free(u2);
        free(lp);
        free(lu);
        ns_model_destroy(&m);
    }
    /* the sky's map: u = (0.25, 0.5) is ra = pi/2 on the equator */
    ns_model_t *m = NULL;
    char err[512], path[512];
    snprintf(path, sizeof path, "%s/libsky.so", NESSAI_EXAMPLES_DIR);
    assert_int_equal(ns_model_load(path, "", &m, err, sizeof err), NS_OK);
    double u[2] = {0.25, 0.5}, x[2];
    assert_int_equal(ns_model_from_unit_hypercube(m, u, 1, x), NS_OK);
    assert_true(fabs(x[0] - M_PI / 2) < 1e-15 && fabs(x[1]) < 1e-15);
    ns_model_destroy(&m);
    /* ... and integral of L(x(u)) over the cube is the sky's Z (midpoint grid) */
    assert_int_equal(ns_model_load(path, "kappa=5,ra0=3,dec0=-1.2", &m, err, sizeof err), NS_OK);
    int g = 1000;
    double *ug = malloc(2 * (size_t)g * sizeof *ug), *xg = malloc(2 * (size_t)g * sizeof *xg);
    double *lg = malloc((size_t)g * sizeof *lg), *rows = malloc((size_t)g * sizeof *rows);
    for (int i = 0; i < g; i++) {
        for (int j = 0; j < g; j++) {
            ug[2 * j] = (i + 0.5) / g;
            ug[2 * j + 1] = (j + 0.5) / g;
        }
        assert_int_equal(ns_model_from_unit_hypercube(m, ug, (size_t)g, xg), NS_OK);
        assert_int_equal(ns_model_log_likelihood(m, xg, (size_t)g, lg), NS_OK);
        rows[i] = ns_logsumexp(lg, (size_t)g);
    }
    double lz = ns_logsumexp(rows, (size_t)g) - 2.0 * log((double)g);
    print_message("sky through the cube: truth %.6f quadrature %.6f\n", ns_model_truth(m), lz);
    assert_true(fabs(lz - ns_model_truth(m)) < 1e-4);
    free(ug);
    free(xg);
    free(lg);
    free(rows);
    ns_model_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truths_by_quadrature),
        cmocka_unit_test(test_truths_with_prior),
        cmocka_unit_test(test_declarations),
        cmocka_unit_test(test_unit_hypercube),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
