/*
 * eggbox - benchmark S4: ln L = (2 + cos(x1/2) cos(x2/2))^5 on U[0, 10 pi]^2.
 * Truth ln Z = 235.85594 (the often-quoted 235.88 is 0.024 nat high).
 * --model-args: delay_ms=X.
 */
#include "example_util.h"

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    if (ex_simple_init(args, 0, 2, 0.0, 10.0 * M_PI, out, info, err, errlen))
        return 1;
    info->truth_log_evidence = 235.85594;
    return 0;
}

static int s_log_likelihood(void *ctx, const double *x, size_t n, double *logl)
{
    ex_simple_t *c = ctx;
    for (size_t i = 0; i < n; i++)
        logl[i] = pow(2.0 + cos(0.5 * x[2 * i]) * cos(0.5 * x[2 * i + 1]), 5.0);
    ex_delay(c->delay_ms, n);
    return 0;
}

EX_DEFINE_MODEL("eggbox", s_init, ex_simple_fini, s_log_likelihood)
