/*
 * rosenbrock - benchmark S5: ln L = -sum_{i<d} [100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2],
 * prior U[-5, 5]^d. Truth known for d = 2, 4, 8 (docs/benchmarks.md §1), else unknown.
 * --model-args: dim=N (2..1024, default 2), delay_ms=X (default 0).
 */
#include "example_util.h"

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    if (ex_simple_init(args, 2, 0, -5.0, 5.0, out, info, err, errlen))
        return 1;
    int dim = info->dim;
    info->truth_log_evidence = dim == 2 ? -5.80413 : dim == 4 ? -15.10169 : dim == 8 ? -33.72162 : NAN;
    return 0;
}

static int s_log_likelihood(void *ctx, const double *x, size_t n, double *logl)
{
    ex_simple_t *c = ctx;
    size_t d = (size_t)c->box.dim;
    for (size_t i = 0; i < n; i++) {
        const double *p = x + i * d;
        double s = 0.0;
        for (size_t j = 0; j + 1 < d; j++) {
            double a = p[j + 1] - p[j] * p[j], b = 1.0 - p[j];
            s += 100.0 * a * a + b * b;
        }
        logl[i] = -s;
    }
    ex_delay(c->delay_ms, n);
    return 0;
}

EX_DEFINE_MODEL("rosenbrock", s_init, ex_simple_fini, s_log_likelihood)
