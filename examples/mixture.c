/*
 * mixture - benchmark S6: four unit-covariance Gaussians with means
 * (0,4,0..), (0,-4,0..), (4,0,0..), (-4,0,0..) and weights .4/.3/.2/.1,
 * prior U[-10, 10]^d. Truth ln Z = -d ln 20.
 * --model-args: dim=N (default 2), delay_ms=X.
 */
#include "example_util.h"

static const double s_mean[4][2] = {{0, 4}, {0, -4}, {4, 0}, {-4, 0}};
static const double s_weight[4] = {0.4, 0.3, 0.2, 0.1};

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
        const double *p = x + i * d;
        double rest = 0.0;
        for (size_t j = 2; j < d; j++)
            rest += p[j] * p[j];
        double t[4], m = -INFINITY;
        for (int k = 0; k < 4; k++) {
            double a = p[0] - s_mean[k][0], b = p[1] - s_mean[k][1];
            t[k] = log(s_weight[k]) + norm - 0.5 * (a * a + b * b + rest);
            if (t[k] > m)
                m = t[k];
        }
        double s = 0.0;
        for (int k = 0; k < 4; k++)
            s += exp(t[k] - m);
        logl[i] = m + log(s);
    }
    ex_delay(c->delay_ms, n);
    return 0;
}

EX_DEFINE_MODEL("mixture", s_init, ex_simple_fini, s_log_likelihood)
