/*
 * discrete - a model with an integer parameter: k in {0, ..., kmax}
 * (uniform) and y on U[-5, 5], with
 *   ln L = -(y - (k - kmax / 2) / 2)^2 / (2 s^2) - (k - k0)^2 / (2 w^2).
 * Non-integer k has zero prior (log prior -inf), new_point draws integers,
 * and the model prefers the dequantise map for k. ln Z is a sum over k of
 * Gaussian integrals (erf). --model-args: kmax (9), k0 (3), s (0.5),
 * w (1.5), delay_ms.
 */
#include "example_util.h"

typedef struct {
    const char *names[2];
    double lower[2], upper[2];
    const char *prefer[2];
    double k0, s, w, delay_ms;
    int kmax;
} ctx_t;

static void s_fini(void *ctx) { free(ctx); }

static int s_log_likelihood(void *ctx, const double *x, size_t n, double *logl)
{
    ctx_t *c = ctx;
    for (size_t i = 0; i < n; i++) {
        double k = x[2 * i], y = x[2 * i + 1], m = 0.5 * (k - 0.5 * c->kmax);
        logl[i] = -0.5 * (y - m) * (y - m) / (c->s * c->s) -
                  0.5 * (k - c->k0) * (k - c->k0) / (c->w * c->w);
    }
    ex_delay(c->delay_ms, n);
    return 0;
}

static int s_log_prior(void *ctx, const double *x, size_t n, double *logp)
{
    ctx_t *c = ctx;
    for (size_t i = 0; i < n; i++) {
        double k = x[2 * i], y = x[2 * i + 1];
        int in = k >= 0 && k <= c->kmax && k == floor(k) && y >= -5 && y <= 5;
        logp[i] = in ? -log(c->kmax + 1.0) - log(10.0) : -INFINITY;
    }
    return 0;
}

static int s_new_point(void *ctx, const nessai_rng_api_t *rng, size_t n, double *x)
{
    ctx_t *c = ctx;
    for (size_t i = 0; i < n; i++) {
        double k = floor((c->kmax + 1) * rng->uniform(rng->state));
        x[2 * i] = k > c->kmax ? c->kmax : k;
        x[2 * i + 1] = -5 + 10 * rng->uniform(rng->state);
    }
    return 0;
}

static int s_new_point_log_prob(void *ctx, const double *x, size_t n, double *logq)
{
    (void)ctx;
    (void)x;
    for (size_t i = 0; i < n; i++)
        logq[i] = 0.0;
    return 0;
}

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    ex_args_t a;
    double k0, s, w, delay;
    int kmax;
    if (ex_args_parse(args, &a, err, errlen) ||
        ex_args_int(&a, "kmax", 9, 1, 1000, &kmax, err, errlen) ||
        ex_args_double(&a, "k0", 3, -1e3, 1e3, &k0, err, errlen) ||
        ex_args_double(&a, "s", 0.5, 1e-3, 1e3, &s, err, errlen) ||
        ex_args_double(&a, "w", 1.5, 1e-3, 1e3, &w, err, errlen) ||
        ex_args_double(&a, "delay_ms", 0, 0, 1e7, &delay, err, errlen) ||
        ex_args_check_used(&a, "kmax, k0, s, w, delay_ms", err, errlen))
        return 1;
    ctx_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    c->names[0] = "k";
    c->names[1] = "y";
    c->lower[0] = 0;
    c->upper[0] = kmax;
    c->lower[1] = -5;
    c->upper[1] = 5;
    c->prefer[0] = "dequantise";
    c->kmax = kmax;
    c->k0 = k0;
    c->s = s;
    c->w = w;
    c->delay_ms = delay;
    double z = 0;
    for (int k = 0; k <= kmax; k++) {
        double m = 0.5 * (k - 0.5 * kmax);
        double iy = s * sqrt(M_PI / 2) * (erf((5 - m) / (M_SQRT2 * s)) - erf((-5 - m) / (M_SQRT2 * s)));
        z += exp(-0.5 * (k - k0) * (k - k0) / (w * w)) * iy;
    }
    info->dim = 2;
    info->names = c->names;
    info->lower = c->lower;
    info->upper = c->upper;
    info->truth_log_evidence = log(z) - log(kmax + 1.0) - log(10.0);
    if (info->struct_size >= sizeof *info)
        info->reparameterisations = c->prefer;
    *out = c;
    return 0;
}

EX_DEFINE_MODEL_WITH_PRIOR("discrete", s_init, s_fini, s_log_likelihood, s_log_prior, s_new_point,
                           s_new_point_log_prob)
