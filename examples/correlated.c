/*
 * correlated - benchmark S2: zero-mean Gaussian with unit variances and all
 * correlations rho (0.95), prior U[-10, 10]^d. Truth ln Z = -d ln 20.
 * Sigma = (1-rho) I + rho 11^T has the closed-form inverse
 * (I - rho/(1+(d-1)rho) 11^T) / (1-rho) and
 * ln|Sigma| = (d-1) ln(1-rho) + ln(1+(d-1)rho).
 * --model-args: dim=N (default 10), rho=R (default 0.95), delay_ms=X.
 */
#include "example_util.h"

typedef struct {
    ex_box_t box;
    double rho, a, norm, delay_ms;   /* a = rho/(1+(d-1)rho) */
} ctx_t;

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    ex_args_t p;
    int dim;
    double rho, delay;
    if (ex_args_parse(args, &p, err, errlen) || ex_args_int(&p, "dim", 10, 2, 1024, &dim, err, errlen) ||
        ex_args_double(&p, "rho", 0.95, 0.0, 0.999, &rho, err, errlen) ||
        ex_args_double(&p, "delay_ms", 0, 0, 1e7, &delay, err, errlen) ||
        ex_args_check_used(&p, "dim, rho, delay_ms", err, errlen))
        return 1;
    ctx_t *c = calloc(1, sizeof *c);
    if (!c || ex_box_init(&c->box, dim, -10.0, 10.0, "x")) {
        if (c)
            ex_box_free(&c->box);
        free(c);
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    c->rho = rho;
    c->a = rho / (1.0 + (dim - 1) * rho);
    double logdet = (dim - 1) * log(1.0 - rho) + log(1.0 + (dim - 1) * rho);
    c->norm = -0.5 * dim * log(2.0 * M_PI) - 0.5 * logdet;
    c->delay_ms = delay;
    ex_box_info(&c->box, info);
    info->truth_log_evidence = -dim * log(20.0);
    *out = c;
    return 0;
}

static void s_fini(void *ctx)
{
    ctx_t *c = ctx;
    if (!c)
        return;
    ex_box_free(&c->box);
    free(c);
}

static int s_log_likelihood(void *ctx, const double *x, size_t n, double *logl)
{
    ctx_t *c = ctx;
    size_t d = (size_t)c->box.dim;
    for (size_t i = 0; i < n; i++) {
        double ss = 0.0, s = 0.0;
        for (size_t j = 0; j < d; j++) {
            ss += x[i * d + j] * x[i * d + j];
            s += x[i * d + j];
        }
        double q = (ss - c->a * s * s) / (1.0 - c->rho);
        logl[i] = c->norm - 0.5 * q;
    }
    ex_delay(c->delay_ms, n);
    return 0;
}

EX_DEFINE_MODEL("correlated", s_init, s_fini, s_log_likelihood)
