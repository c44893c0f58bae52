/*
 * testmodel.c - a model plugin for the sampler tests: the 2-d unit Gaussian
 * on [-10, 10]^2 (truth ln Z = -ln 400) with a misbehaviour chosen by
 * --model-args mode=...:
 *   mode=ok      plain Gaussian;
 *   mode=nan     NaN log-likelihood whenever x0 > 3 (points to be skipped);
 *   mode=nan20   NaN whenever x0 > 6: 20% of the prior;
 *   mode=neginf20 -inf whenever x0 > 6: 20% of the prior;
 *   mode=random  a different value on every call (not deterministic);
 *   mode=fail    log_likelihood returns an error code after 3000 points.
 */
#include "nessai/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef struct {
    int mode;             /* 0 ok, 1 nan, 2 random, 3 fail, 4 nan20, 5 neginf20 */
    unsigned long calls;  /* points evaluated */
} ctx_t;

static const char *const s_names[2] = {"x", "y"};
static const double s_lower[2] = {-10.0, -10.0};
static const double s_upper[2] = {10.0, 10.0};

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    ctx_t *c = calloc(1, sizeof *c);
    if (!c)
        return 1;
    if (!args || !*args || strcmp(args, "mode=ok") == 0)
        c->mode = 0;
    else if (strcmp(args, "mode=nan") == 0)
        c->mode = 1;
    else if (strcmp(args, "mode=random") == 0)
        c->mode = 2;
    else if (strcmp(args, "mode=fail") == 0)
        c->mode = 3;
    else if (strcmp(args, "mode=nan20") == 0)
        c->mode = 4;
    else if (strcmp(args, "mode=neginf20") == 0)
        c->mode = 5;
    else {
        snprintf(err, errlen, "unknown --model-args '%s' (mode=ok|nan|random|fail|nan20|neginf20)", args);
        free(c);
        return 1;
    }
    info->dim = 2;
    info->names = s_names;
    info->lower = s_lower;
    info->upper = s_upper;
    info->truth_log_evidence = -log(400.0);
    *out = c;
    return 0;
}

static void s_fini(void *ctx) { free(ctx); }

static int s_log_likelihood(void *ctx, const double *x, size_t n, double *logl)
{
    ctx_t *c = ctx;
    if (c->mode == 3 && c->calls + n > 3000)
        return 1;
    for (size_t i = 0; i < n; i++) {
        double a = x[2 * i], b = x[2 * i + 1];
        logl[i] = -log(2.0 * M_PI) - 0.5 * (a * a + b * b);
        if (c->mode == 1 && a > 3.0)
            logl[i] = NAN;
        if (c->mode == 4 && a > 6.0)
            logl[i] = NAN;
        if (c->mode == 5 && a > 6.0)
            logl[i] = -INFINITY;
        if (c->mode == 2)
            logl[i] += 1e-9 * (double)(c->calls + i);
    }
    c->calls += n;
    return 0;
}

static const char *s_last_error(void *ctx)
{
    (void)ctx;
    return "the test model was told to fail";
}

static const nessai_model_t s_model = {
    .abi_version = NESSAI_MODEL_ABI_VERSION,
    .struct_size = sizeof(nessai_model_t),
    .name = "sampler-test",
    .init = s_init,
    .fini = s_fini,
    .log_likelihood = s_log_likelihood,
    .last_error = s_last_error,
};

EXPORT const nessai_model_t *nessai_model_entry(void) { return &s_model; }
