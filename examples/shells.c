/*
 * shells - benchmark S3: two Gaussian shells of radius r = 2 and width
 * w = 0.1 centred at (-3.5, 0, ...) and (3.5, 0, ...), prior U[-6, 6]^d,
 * L = sum_k (2 pi w^2)^(-1/2) exp(-(|x - c_k| - r)^2 / (2 w^2)).
 * Truth ln Z: d=2 -1.74564, d=10 -14.59049; otherwise unknown.
 * --model-args: dim=N (default 2), delay_ms=X.
 */
#include "example_util.h"

static const double s_r = 2.0, s_w = 0.1, s_c = 3.5;

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    if (ex_simple_init(args, 2, 0, -6.0, 6.0, out, info, err, errlen))
        return 1;
    int dim = info->dim;
    info->truth_log_evidence = dim == 2 ? -1.74564 : dim == 10 ? -14.59049 : NAN;
    return 0;
}

static int s_log_likelihood(void *ctx, const double *x, size_t n, double *logl)
{
    ex_simple_t *c = ctx;
    size_t d = (size_t)c->box.dim;
    const double lnorm = -0.5 * log(2.0 * M_PI * s_w * s_w);
    for (size_t i = 0; i < n; i++) {
        const double *p = x + i * d;
        double rest = 0.0;
        for (size_t j = 1; j < d; j++)
            rest += p[j] * p[j];
        double a = p[0] + s_c, b = p[0] - s_c;
        double r1 = sqrt(a * a + rest), r2 = sqrt(b * b + rest);
        double t1 = lnorm - (r1 - s_r) * (r1 - s_r) / (2.0 * s_w * s_w);
        double t2 = lnorm - (r2 - s_r) * (r2 - s_r) / (2.0 * s_w * s_w);
        double m = t1 > t2 ? t1 : t2;
        logl[i] = m + log(exp(t1 - m) + exp(t2 - m));
    }
    ex_delay(c->delay_ms, n);
    return 0;
}

EX_DEFINE_MODEL("shells", s_init, ex_simple_fini, s_log_likelihood)
