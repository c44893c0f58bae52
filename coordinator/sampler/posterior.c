/* posterior.c - effective sample size and posterior resampling. */
#include "posterior.h"
#include "nessai/error.h"
#include "nessai/util.h"

#include <math.h>
#include <stdlib.h>

double ns_posterior_ess(const double *logw, size_t n)
{
    if (n == 0)
        return 0.0;
    double lse = ns_logsumexp(logw, n);
    if (!isfinite(lse))
        return 0.0;
    /* logsumexp of 2 (w - lse), accumulated without a buffer */
    double mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (2.0 * (logw[i] - lse) > mx)
            mx = 2.0 * (logw[i] - lse);
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += exp(2.0 * (logw[i] - lse) - mx);
    return exp(-(mx + log(s)));
}

size_t ns_posterior_rejection(const double *logw, size_t n, ns_rng_t *rng, size_t *idx)
{
    double mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (logw[i] > mx)
            mx = logw[i];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double log_u = log(ns_rng_uniform(rng));
        if (logw[i] - mx > log_u)
            idx[k++] = i;
    }
    return k;
}

int ns_posterior_multinomial(const double *logw, size_t n, size_t m, ns_rng_t *rng, size_t *idx)
{
    double lse = ns_logsumexp(logw, n);
    if (!isfinite(lse))
        return NS_ERR_NUMERIC;
    double *cdf = malloc((n ? n : 1) * sizeof *cdf);
    if (!cdf)
        return NS_ERR_NOMEM;
    double c = 0.0;
    for (size_t i = 0; i < n; i++) {
        c += exp(logw[i] - lse);
        cdf[i] = c;
    }
    /* Normalise by the accumulated total so rounding never leaves a gap. */
    for (size_t k = 0; k < m; k++) {
        double u = ns_rng_uniform(rng) * c;
        size_t lo = 0, hi = n - 1;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        idx[k] = lo;
    }
    free(cdf);
    return NS_OK;
}
