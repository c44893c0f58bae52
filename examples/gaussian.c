/*
 * gaussian - benchmark S1: unit Gaussian, ln L = sum_i ln N(x_i; 0, 1),
 * prior U[-10, 10]^d. Truth ln Z = -d ln 20 (the mass outside the box is
 * below 1e-22 per dimension).
 * --model-args: dim=N (2..1024, default 2), delay_ms=X (default 0).
 */
#include "example_util.h"

typedef struct {
    ex_box_t box;
    double delay_ms;
} ctx_t;

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    ex_args_t a;
    int dim;
    double delay;
    if (ex_args_parse(args, &a, err, errlen) || ex_args_int(&a, "dim", 2, 2, 1024, &dim, err, errlen) ||
        ex_args_double(&a, "delay_ms", 0, 0, 1e7, &delay, err, errlen) ||
        ex_args_check_used(&a, "dim, delay_ms", err, errlen))
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
        double s = 0.0;
        for (size_t j = 0; j < d; j++)
            s += x[i * d + j] * x[i * d + j];
        logl[i] = norm - 0.5 * s;
    }
    ex_delay(c->delay_ms, n);
    return 0;
}

static const nessai_model_t s_model = {
    .abi_version = NESSAI_MODEL_ABI_VERSION,
    .struct_size = sizeof(nessai_model_t),
    .name = "gaussian",
    .init = s_init,
    .fini = s_fini,
    .log_likelihood = s_log_likelihood,
};

EX_EXPORT const nessai_model_t *nessai_model_entry(void) { return &s_model; }
