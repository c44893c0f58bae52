/*
 * rosenbrock - benchmark S5: ln L = -sum_{i<d} [100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2],
 * prior U[-5, 5]^d. Truth known for d = 2, 4, 8 (BENCHMARKS.md), else unknown.
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
    if (!c || ex_box_init(&c->box, dim, -5.0, 5.0, "x")) {
        if (c)
            ex_box_free(&c->box);
        free(c);
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    c->delay_ms = delay;
    ex_box_info(&c->box, info);
    info->truth_log_evidence = dim == 2 ? -5.80413 : dim == 4 ? -15.10169 : dim == 8 ? -33.72162 : NAN;
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

static const nessai_model_t s_model = {
    .abi_version = NESSAI_MODEL_ABI_VERSION,
    .struct_size = sizeof(nessai_model_t),
    .name = "rosenbrock",
    .init = s_init,
    .fini = s_fini,
    .log_likelihood = s_log_likelihood,
};

EX_EXPORT const nessai_model_t *nessai_model_entry(void) { return &s_model; }
