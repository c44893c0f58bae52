/*
 * gaussian - benchmark S1: unit Gaussian, ln L = sum_i ln N(x_i; 0, 1),
 * prior U[-10, 10]^d. Truth ln Z = -d ln 20 (the mass outside the box is
 * below 1e-22 per dimension).
 * --model-args: dim=N (2..1024, default 2), delay_ms=X (default 0).
 */
#include "example_util.h"

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    return ex_simple_init_normalised(args, 2, -10.0, 10.0, out, info, err, errlen);
}

static int s_log_likelihood(void *ctx, const double *x, size_t n, double *logl)
{
    ex_simple_t *c = ctx;
    size_t d = (size_t)c->box.dim;
    const double norm = -0.5 * log(2.0 * M_PI) * (double)d;
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t j = 0; j < d; j++)
            s += x[i * d + j] * x[i * d + j];
        logl[i] = norm - 0.5 * s;
    }
    ex_delay(c->delay_ms, n);
    return 0;
}

EX_DEFINE_MODEL("gaussian", s_init, ex_simple_fini, s_log_likelihood)
