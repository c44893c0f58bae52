/*
 * farmtest_model.c - a model plugin for the farm tests. Deterministic,
 * non-trivial logL; environment switches make one worker differ from the
 * coordinator (the tests set them only in worker processes):
 *   NS_FARMTEST_OFFSET=v     add v to every logL (canary mismatch)
 *   NS_FARMTEST_FAIL_INIT=1  init fails
 *   NS_FARMTEST_FAIL_BATCH=1 calls with more than 4 points fail
 *   NS_FARMTEST_HANG=1       calls with more than 4 points never return
 *   NS_FARMTEST_CRASH=1      calls with a point whose x0 < -4.9 raise SIGSEGV
 *   NS_FARMTEST_HANG_X=1     calls with a point whose x0 < -4.9 never return
 *   NS_FARMTEST_POSINF=1     calls with more than 4 points give +inf for their first point
 *   NS_FARMTEST_SLOW=f       multiply delay_ms by f
 *   NS_FARMTEST_LIE=v        add v to every logL of calls with more than 4 points
 *                            (passes the 4-point canary)
 *   NS_FARMTEST_HOLD=path    every call after the first (a worker's canary) waits
 *                            until path exists
 * --model-args: dim=N (default 4), delay_ms=X (sleep X ms per point).
 * Built twice: as "farmtest" and, with FARMTEST_NAME, as another model.
 */
#include "nessai/model.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FARMTEST_NAME
#define FARMTEST_NAME "farmtest"
#endif

typedef struct {
    int dim;
    double delay_ms, offset, lie;
    int fail_batch, hang, crash, hang_x, posinf;
    const char *hold;
    long calls;
    char **names;
    double *lower, *upper;
    char err[128];
} ctx_t;

static void s_fini(void *p)
{
    ctx_t *c = p;
    if (!c)
        return;
    for (int i = 0; c->names && i < c->dim; i++)
        free(c->names[i]);
    free(c->names);
    free(c->lower);
    free(c->upper);
    free(c);
}

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    if (getenv("NS_FARMTEST_FAIL_INIT")) {
        snprintf(err, errlen, "farmtest: init failure requested by NS_FARMTEST_FAIL_INIT");
        return 1;
    }
    ctx_t *c = calloc(1, sizeof *c);
    if (!c)
        return 1;
    c->dim = 4;
    const char *p = args;
    while (p && *p) {
        if (strncmp(p, "dim=", 4) == 0)
            c->dim = atoi(p + 4);
        else if (strncmp(p, "delay_ms=", 9) == 0)
            c->delay_ms = atof(p + 9);
        p = strchr(p, ',');
        if (p)
            p++;
    }
    if (c->dim < 2 || c->dim > 4096) {
        snprintf(err, errlen, "farmtest: dim must be 2..4096");
        free(c);
        return 1;
    }
    const char *e = getenv("NS_FARMTEST_OFFSET");
    c->offset = e ? atof(e) : 0.0;
    e = getenv("NS_FARMTEST_LIE");
    c->lie = e ? atof(e) : 0.0;
    c->fail_batch = getenv("NS_FARMTEST_FAIL_BATCH") != NULL;
    c->hang = getenv("NS_FARMTEST_HANG") != NULL;
    c->crash = getenv("NS_FARMTEST_CRASH") != NULL;
    c->hang_x = getenv("NS_FARMTEST_HANG_X") != NULL;
    c->posinf = getenv("NS_FARMTEST_POSINF") != NULL;
    c->hold = getenv("NS_FARMTEST_HOLD");
    if ((e = getenv("NS_FARMTEST_SLOW")) != NULL)
        c->delay_ms *= atof(e);
    c->names = calloc((size_t)c->dim, sizeof *c->names);
    c->lower = calloc((size_t)c->dim, sizeof *c->lower);
    c->upper = calloc((size_t)c->dim, sizeof *c->upper);
    if (!c->names || !c->lower || !c->upper) {
        s_fini(c);
        return 1;
    }
    for (int i = 0; i < c->dim; i++) {
        char name[32];
        snprintf(name, sizeof name, "x%d", i);
        c->names[i] = strdup(name);
        c->lower[i] = -5.0;
        c->upper[i] = 5.0;
    }
    info->dim = c->dim;
    info->names = (const char *const *)c->names;
    info->lower = c->lower;
    info->upper = c->upper;
    info->truth_log_evidence = NAN;
    *out = c;
    return 0;
}

static int s_logl(void *p, const double *x, size_t n, double *logl)
{
    ctx_t *c = p;
    if (c->fail_batch && n > 4) {
        snprintf(c->err, sizeof c->err, "farmtest: evaluation failure requested");
        return 1;
    }
    while (c->hang && n > 4)
        pause();
    while (c->hold && c->calls > 0 && access(c->hold, F_OK) != 0) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    c->calls++;
    for (size_t i = 0; (c->crash || c->hang_x) && i < n; i++) {
        if (x[i * (size_t)c->dim] >= -4.9)
            continue;
        while (c->hang_x)
            pause();
        raise(SIGSEGV);
    }
    if (c->delay_ms > 0) {
        double total = c->delay_ms * 1e-3 * (double)n;
        struct timespec ts = {(time_t)total, (long)((total - (double)(time_t)total) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < c->dim; j++) {
            double v = x[i * (size_t)c->dim + (size_t)j];
            s += -0.5 * v * v + 0.1 * sin(3.0 * v + j);
        }
        /* a zero-likelihood region, to carry -inf through the wire */
        logl[i] = x[i * (size_t)c->dim] > 4.9 ? -INFINITY : s + c->offset;
    }
    for (size_t i = 0; c->lie != 0 && n > 4 && i < n; i++)
        logl[i] += c->lie;
    if (c->posinf && n > 4)
        logl[0] = INFINITY;
    return 0;
}

static const char *s_last_error(void *p)
{
    return p ? ((ctx_t *)p)->err : "";
}

static const nessai_model_t s_model = {
    .abi_version = NESSAI_MODEL_ABI_VERSION,
    .struct_size = sizeof(nessai_model_t),
    .name = FARMTEST_NAME,
    .init = s_init,
    .fini = s_fini,
    .log_likelihood = s_logl,
    .last_error = s_last_error,
};

__attribute__((visibility("default"))) const nessai_model_t *nessai_model_entry(void)
{
    return &s_model;
}
