/* kstest.c - insertion-index KS test with the exact one-sided distribution. */
#include "kstest.h"
#include "logacc.h"

#include <gsl/gsl_sf_gamma.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * p = d * sum_{j=0}^{floor(n(1-d))} C(n,j) (1-d-j/n)^(n-j) (d+j/n)^(j-1)
 *
 * Every term is positive, so summing in logs loses nothing to
 * cancellation; C(n, j) alone overflows a double near n = 1030, which is
 * why no factor is ever formed outside the exponent.
 */
double ns_ks_one_sided_sf(double d, size_t n)
{
    if (isnan(d) || n == 0)
        return NAN;
    if (d <= 0.0)
        return 1.0;
    if (d >= 1.0)
        return 0.0;
    double nn = (double)n;
    size_t jmax = (size_t)floor(nn * (1.0 - d));
    if (jmax > n)
        jmax = n;
    ns_logacc_t acc;
    ns_logacc_init(&acc);
    for (size_t j = 0; j <= jmax; j++) {
        double jj = (double)j;
        double a = 1.0 - d - jj / nn;   /* may round to <= 0 at the last term */
        double b = d + jj / nn;
        double t;
        if (a <= 0.0)
            t = (n - j == 0) ? gsl_sf_lnchoose((unsigned)n, (unsigned)j) + (jj - 1.0) * log(b)
                             : -INFINITY;
        else
            t = gsl_sf_lnchoose((unsigned)n, (unsigned)j) + (nn - jj) * log(a) + (jj - 1.0) * log(b);
        ns_logacc_add(&acc, t);
    }
    if (acc.max == -INFINITY)
        return 0.0;
    double p = exp(log(d) + ns_logacc_value(&acc));
    return p > 1.0 ? 1.0 : p;
}

int ns_ks_insertion_test(const int64_t *indices, size_t n, size_t nlive, size_t *counts, double *d,
                         double *p)
{
    *d = NAN;
    *p = NAN;
    if (n == 0 || nlive == 0)
        return -1;
    size_t *work = counts ? counts : malloc(nlive * sizeof *work);
    if (!work)
        return -1;
    memset(work, 0, nlive * sizeof *work);
    for (size_t i = 0; i < n; i++)
        if (indices[i] >= 0 && (uint64_t)indices[i] < nlive)
            work[indices[i]]++;
    double dmax = -INFINITY;
    size_t cum = 0;
    for (size_t k = 0; k < nlive; k++) {
        cum += work[k];
        double diff = (double)(k + 1) / (double)nlive - (double)cum / (double)n;
        if (diff > dmax)
            dmax = diff;
    }
    if (!counts)
        free(work);
    *d = dmax;
    *p = ns_ks_one_sided_sf(dmax, n);
    return 0;
}
