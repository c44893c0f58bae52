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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truths_by_quadrature),
        cmocka_unit_test(test_truths_with_prior),
        cmocka_unit_test(test_declarations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
