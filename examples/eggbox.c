/*
 * eggbox - benchmark S4: ln L = (2 + cos(x1/2) cos(x2/2))^5 on U[0, 10 pi]^2.
 * Truth ln Z = 235.85594 (the often-quoted 235.88 is 0.024 nat high).
 * --model-args: delay_ms=X.
 */
#include "example_util.h"

typedef struct {
    ex_box_t box;
    double delay_ms;
} ctx_t;

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    ex_args_t p;
    double delay;
    if (ex_args_parse(args, &p, err, errlen) || ex_args_double(&p, "delay_ms", 0, 0, 1e7, &delay, err, errlen) ||
        ex_args_check_used(&p, "delay_ms", err, errlen))
        return 1;
    ctx_t *c = calloc(1, sizeof *c);
    if (!c || ex_box_init(&c->box, 2, 0.0, 10.0 * M_PI, "x")) {
        if (c)
            ex_box_free(&c->box);
        free(c);
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    c->delay_ms = delay;
    ex_box_info(&c->box, info);
    info->truth_log_evidence = 235.85594;
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
    for (size_t i = 0; i < n; i++)
        logl[i] = pow(2.0 + cos(0.5 * x[2 * i]) * cos(0.5 * x[2 * i + 1]), 5.0);
    ex_delay(c->delay_ms, n);
    return 0;
}

static const nessai_model_t s_model = {
    .abi_version = NESSAI_MODEL_ABI_VERSION,
    .struct_size = sizeof(nessai_model_t),
    .name = "eggbox",
    .init = s_init,
    .fini = s_fini,
    .log_likelihood = s_log_likelihood,
};

EX_EXPORT const nessai_model_t *nessai_model_entry(void) { return &s_model; }
