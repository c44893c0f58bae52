/* integrator.c - nested-sampling evidence integrator (docs/algorithm.md §1.5). */
#include "integrator.h"
#include "logacc.h"
#include "nessai/error.h"
#include "nessai/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ns_integrator {
    size_t nlive;            /* base number of live points */
    ns_shrinkage_t expect;   /* shrinkage expectation */
    double log_z;            /* running ln Z (rectangle rule until finalised) */
    double log_w;            /* ln X of the current contour */
    double info;             /* last information value H (nats) */
    size_t n_info;           /* information values appended (nessai's len(info) - 1) */
    double *logls;           /* contour logL, count + 1 entries, logls[0] = -inf */
    double *log_vols;        /* contour ln X, count + 1 entries, log_vols[0] = 0 */
    size_t count;            /* increments so far */
    size_t cap;              /* allocated entries of the two arrays */
};

ns_integrator_t *ns_integrator_new(size_t nlive, ns_shrinkage_t expectation)
{
    ns_integrator_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->nlive = nlive;
    self->expect = expectation;
    self->cap = 1024;
    self->logls = malloc(self->cap * sizeof(double));
    self->log_vols = malloc(self->cap * sizeof(double));
    if (!self->logls || !self->log_vols) {
        ns_integrator_destroy(&self);
        return NULL;
    }
    self->log_z = -INFINITY;
    self->log_w = 0.0;
    self->logls[0] = -INFINITY;
    self->log_vols[0] = 0.0;
    return self;
}

void ns_integrator_destroy(ns_integrator_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ns_integrator_t *self = *self_p;
    free(self->logls);
    free(self->log_vols);
    free(self);
    *self_p = NULL;
}

static int s_reserve(ns_integrator_t *self, size_t entries)
{
    if (entries <= self->cap)
        return NS_OK;
    size_t cap = self->cap;
    while (cap < entries)
        cap *= 2;
    double *a = realloc(self->logls, cap * sizeof(double));
    if (!a)
        return NS_ERR_NOMEM;
    self->logls = a;
    double *b = realloc(self->log_vols, cap * sizeof(double));
    if (!b)
        return NS_ERR_NOMEM;
    self->log_vols = b;
    self->cap = cap;
    return NS_OK;
}

int ns_integrator_increment(ns_integrator_t *self, double logl, size_t n)
{
    if (s_reserve(self, self->count + 2) != NS_OK)
        return -NS_ERR_NOMEM;
    if (n == 0)
        n = self->nlive;
    int nonmonotonic = logl <= self->logls[self->count];
    double logt = self->expect == NS_SHRINK_T ? -log1p(1.0 / (double)n) : -1.0 / (double)n;
    /* Wt = ln[L (X_{i-1} - X_i)] with X_i = X_{i-1} t */
    double wt = self->log_w + logl + log(-expm1(logt));
    double old_z = self->log_z;
    self->log_z = ns_logaddexp(self->log_z, wt);
    /* The information term needs a previous finite Z: nessai appends it
     * from the second finite increment on (docs/algorithm.md §10.3). */
    if (isfinite(old_z) && isfinite(self->log_z) && isfinite(logl)) {
        self->info = exp(wt - self->log_z) * logl + exp(old_z - self->log_z) * (self->info + old_z) -
                     self->log_z;
        self->n_info++;
    }
    self->log_w += logt;
    self->count++;
    self->logls[self->count] = logl;
    self->log_vols[self->count] = self->log_w;
    return nonmonotonic;
}

/* Trapezoid over the contours, L flat and X -> 0 after the last one. */
double ns_integrator_log_z_trapezoid(const ns_integrator_t *self)
{
    size_t m = self->count;
    if (m == 0)
        return -INFINITY;
    ns_logacc_t acc;
    ns_logacc_init(&acc);
    for (size_t i = 1; i <= m + 1; i++) {
        double l_prev = self->logls[i - 1];
        double l_cur = i <= m ? self->logls[i] : self->logls[m];
        double v_prev = self->log_vols[i - 1];
        double v_cur = i <= m ? self->log_vols[i] : -INFINITY;
        ns_logacc_add(&acc, ns_logaddexp(l_prev, l_cur) - M_LN2 + ns_logsubexp(v_prev, v_cur));
    }
    return ns_logacc_value(&acc);
}

void ns_integrator_finalise(ns_integrator_t *self) { self->log_z = ns_integrator_log_z_trapezoid(self); }

void ns_integrator_log_posterior_weights(const ns_integrator_t *self, double *w)
{
    double log_z = ns_integrator_log_z_trapezoid(self);
    for (size_t i = 1; i <= self->count; i++)
        w[i - 1] = self->logls[i] + ns_logsubexp(self->log_vols[i - 1], self->log_vols[i]) - log_z;
}

double ns_integrator_log_z(const ns_integrator_t *self) { return self->log_z; }
double ns_integrator_information(const ns_integrator_t *self) { return self->info; }
double ns_integrator_error(const ns_integrator_t *self) { return sqrt(self->info / (double)self->nlive); }
double ns_integrator_log_w(const ns_integrator_t *self) { return self->log_w; }
size_t ns_integrator_count(const ns_integrator_t *self) { return self->count; }
const double *ns_integrator_logls(const ns_integrator_t *self) { return self->logls; }
const double *ns_integrator_log_vols(const ns_integrator_t *self) { return self->log_vols; }

void ns_integrator_save(const ns_integrator_t *self, ns_buf_t *b)
{
    ns_buf_put_tag(b, "INTG", 1);
    ns_buf_put_u64(b, self->nlive);
    ns_buf_put_u32(b, (uint32_t)self->expect);
    ns_buf_put_f64(b, self->log_z);
    ns_buf_put_f64(b, self->log_w);
    ns_buf_put_f64(b, self->info);
    ns_buf_put_u64(b, self->n_info);
    ns_buf_put_f64s(b, self->logls, self->count + 1);
    ns_buf_put_f64s(b, self->log_vols, self->count + 1);
}

int ns_integrator_load(ns_integrator_t *self, ns_buf_t *b)
{
    uint32_t version, expect;
    uint64_t nlive, n_info;
    double log_z, log_w, info, *logls = NULL, *log_vols = NULL;
    size_t n1 = 0, n2 = 0;
    int rc;
    if ((rc = ns_buf_get_tag(b, "INTG", &version)) || (rc = ns_buf_get_u64(b, &nlive)) ||
        (rc = ns_buf_get_u32(b, &expect)) || (rc = ns_buf_get_f64(b, &log_z)) ||
        (rc = ns_buf_get_f64(b, &log_w)) || (rc = ns_buf_get_f64(b, &info)) ||
        (rc = ns_buf_get_u64(b, &n_info)))
        return rc;
    if (version != 1 || nlive != self->nlive || expect != (uint32_t)self->expect)
        return NS_ERR_CORRUPT;
    if ((rc = ns_buf_get_f64s(b, &logls, &n1, SIZE_MAX / sizeof(double))) != NS_OK)
        return rc;
    if ((rc = ns_buf_get_f64s(b, &log_vols, &n2, SIZE_MAX / sizeof(double))) != NS_OK || n1 != n2 ||
        n1 == 0) {
        free(logls);
        free(log_vols);
        return rc ? rc : NS_ERR_CORRUPT;
    }
    free(self->logls);
    free(self->log_vols);
    self->logls = logls;
    self->log_vols = log_vols;
    self->cap = n1;
    self->count = n1 - 1;
    self->log_z = log_z;
    self->log_w = log_w;
    self->info = info;
    self->n_info = n_info;
    return NS_OK;
}
