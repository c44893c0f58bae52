/*
 * mymodel.c - a model plugin for nessai-coordinator / nessai-worker, built
 * against an installed nessai-farm (see README.md in this folder).
 *
 * The likelihood is a Gaussian of width sigma centred on mu in every
 * dimension, the prior uniform on [-half_width, half_width]^dim, so that
 * ln Z = -dim ln(2 half_width) while the box holds the Gaussian.
 * --model-args: dim=N (2..64, default 2), mu=M (default 0), sigma=S
 * (default 1), half_width=W (default 10).
 */
#include <nessai/model.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kvargs.h"

typedef struct {
    int dim;
    double mu, sigma;
    char **names;
    double *lower, *upper;
} mymodel_t;

static void s_fini(void *ctx)
{
    mymodel_t *m = ctx;
    if (!m)
        return;
    for (int j = 0; m->names && j < m->dim; j++)
        free(m->names[j]);
    free(m->names);
    free(m->lower);
    free(m->upper);
    free(m);
}

static int s_init(const char *args, void **ctx, nessai_model_info_t *info, char *err, size_t errlen)
{
    static const char *const known[] = {"dim", "mu", "sigma", "half_width", NULL};
    long dim;
    double mu, sigma, w;
    if (kv_only(args, known, err, errlen) || kv_long(args, "dim", 2, 2, 64, &dim, err, errlen)
        || kv_double(args, "mu", 0.0, -1e3, 1e3, &mu, err, errlen)
        || kv_double(args, "sigma", 1.0, 1e-6, 1e3, &sigma, err, errlen)
        || kv_double(args, "half_width", 10.0, 1e-3, 1e6, &w, err, errlen))
        return 1;
    mymodel_t *m = calloc(1, sizeof *m);
    if (!m || !(m->names = calloc((size_t)dim, sizeof *m->names))
        || !(m->lower = malloc((size_t)dim * sizeof(double)))
        || !(m->upper = malloc((size_t)dim * sizeof(double)))) {
        s_fini(m);
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    m->dim = (int)dim;
    m->mu = mu;
    m->sigma = sigma;
    for (int j = 0; j < m->dim; j++) {
        m->names[j] = malloc(16);
        if (!m->names[j]) {
            s_fini(m);
            snprintf(err, errlen, "out of memory");
            return 1;
        }
        snprintf(m->names[j], 16, "x_%d", j);
        m->lower[j] = -w;
        m->upper[j] = w;
    }
    info->dim = m->dim;
    info->names = (const char *const *)m->names;
    info->lower = m->lower;
    info->upper = m->upper;
    info->truth_log_evidence = -m->dim * log(2.0 * w);
    *ctx = m;
    return 0;
}

static int s_log_likelihood(void *ctx, const double *x, size_t n, double *logl)
{
    const mymodel_t *m = ctx;
    size_t d = (size_t)m->dim;
    const double log_2pi = 1.8378770664093453;   /* ln(2 pi) */
    double norm = -(double)d * (0.5 * log_2pi + log(m->sigma));
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t j = 0; j < d; j++) {
            double z = (x[i * d + j] - m->mu) / m->sigma;
            s += z * z;
        }
        logl[i] = norm - 0.5 * s;
    }
    return 0;
}

static const nessai_model_t s_model = {
    .abi_version = NESSAI_MODEL_ABI_VERSION,
    .struct_size = sizeof(nessai_model_t),
    .name = "mymodel",
    .init = s_init,
    .fini = s_fini,
    .log_likelihood = s_log_likelihood,
};

/* The one symbol the loader looks up (NESSAI_MODEL_ENTRY_SYMBOL). */
__attribute__((visibility("default"))) const nessai_model_t *nessai_model_entry(void)
{
    return &s_model;
}
