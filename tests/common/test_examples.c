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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truths_by_quadrature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
