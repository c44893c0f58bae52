/*
 * mixture - benchmark S6: four unit-covariance Gaussians with means
 * (0,4,0..), (0,-4,0..), (4,0,0..), (-4,0,0..) and weights .4/.3/.2/.1,
 * prior U[-10, 10]^d. Truth ln Z = -d ln 20.
 * --model-args: dim=N (default 2), delay_ms=X.
 */
#include "example_util.h"

typedef struct {
    ex_box_t box;
    double delay_ms;
} ctx_t;

static const double s_mean[4][2] = {{0, 4}, {0, -4}, {4, 0}, {-4, 0}};
static const double s_weight[4] = {0.4, 0.3, 0.2, 0.1};

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    ex_args_t p;
    int dim;
    double delay;
    if (ex_args_parse(args, &p, err, errlen) || ex_args_int(&p, "dim", 2, 2, 1024, &dim, err, errlen) ||
        ex_args_double(&p, "delay_ms", 0, 0, 1e7, &delay, err, errlen) ||
        ex_args_check_used(&p, "dim, delay_ms", err, errlen))
        return 1;
    ctx_t *c = calloc(1, sizeof *c);
    if (!c || ex_box_init(&c->box, dim, -10.0, 10.0, "x")) {
        if (c)
            ex_box_free(&c->box);
        free(c);
        snprintf(err, errlen, "out of memory");
        return 1;
    }
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

static const nessai_model_t s_model = {
    .abi_version = NESSAI_MODEL_ABI_VERSION,
    .struct_size = sizeof(nessai_model_t),
    .name = "mixture",
    .init = s_init,
    .fini = s_fini,
    .log_likelihood = s_log_likelihood,
};

EX_EXPORT const nessai_model_t *nessai_model_entry(void) { return &s_model; }
