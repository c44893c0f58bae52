/*
 * parallel - problem E (nessai's parallelisation example): mean mu ~ U[-3, 3]
 * and width sigma ~ U[0.01, 3] of Gaussian data,
 * ln L = sum_k [-ln sigma - ((d_k - mu) / sigma)^2 / 2],
 * over n_data points d_k ~ N(1.7, 0.7) simulated from data_seed.
 * --model-args: n_data=N (default 1000), data_seed=S (default 1234),
 * delay_ms=X (default 0). Workers rebuild the same data from the same args.
 */
#include "example_util.h"

typedef struct {
    const char *names[2];
    double lower[2], upper[2];
    double *data;
    int n_data;
    double delay_ms;
} ctx_t;

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    ex_args_t a;
    int n_data, seed;
    double delay;
    if (ex_args_parse(args, &a, err, errlen) ||
        ex_args_int(&a, "n_data", 1000, 1, 100000000, &n_data, err, errlen) ||
        ex_args_int(&a, "data_seed", 1234, 0, 2147483647, &seed, err, errlen) ||
        ex_args_double(&a, "delay_ms", 0, 0, 1e7, &delay, err, errlen) ||
        ex_args_check_used(&a, "n_data, data_seed, delay_ms", err, errlen))
        return 1;
    ctx_t *c = calloc(1, sizeof *c);
    if (c)
        c->data = malloc((size_t)n_data * sizeof *c->data);
    if (!c || !c->data) {
        if (c)
            free(c->data);
        free(c);
        snprintf(err, errlen, "out of memory for %d data points", n_data);
        return 1;
    }
    ex_rng_t r = {(uint64_t)seed};
    for (int k = 0; k < n_data; k++)
        c->data[k] = 1.7 + 0.7 * ex_rng_gaussian(&r);
    c->n_data = n_data;
    c->delay_ms = delay;
    c->names[0] = "mu";
    c->names[1] = "sigma";
    c->lower[0] = -3.0;
    c->upper[0] = 3.0;
    c->lower[1] = 0.01;
    c->upper[1] = 3.0;
    info->dim = 2;
    info->names = c->names;
    info->lower = c->lower;
    info->upper = c->upper;
    info->truth_log_evidence = NAN;
    *out = c;
    return 0;
}

static void s_fini(void *ctx)
{
    ctx_t *c = ctx;
    if (!c)
        return;
    free(c->data);
    free(c);
}

static int s_log_likelihood(void *ctx, const double *x, size_t n, double *logl)
{
    ctx_t *c = ctx;
    for (size_t i = 0; i < n; i++) {
        double mu = x[2 * i], sigma = x[2 * i + 1];
        double s = 0.0;
        for (int k = 0; k < c->n_data; k++) {
            double z = (c->data[k] - mu) / sigma;
            s += z * z;
        }
        logl[i] = -(double)c->n_data * log(sigma) - 0.5 * s;
    }
    ex_delay(c->delay_ms, n);
    return 0;
}

EX_DEFINE_MODEL("parallel", s_init, s_fini, s_log_likelihood)
