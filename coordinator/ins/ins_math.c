/* ins_math.c - threshold, mixture, evidence and stopping numerics of the
 * importance nested sampler (docs/algorithm.md §12). */
#include "ins_math.h"
#include "nessai/error.h"
#include "nessai/util.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_sf_gamma.h>

#include <math.h>
#include <stdlib.h>

size_t ns_ins_entropy_index(const double *logw, size_t m, double q)
{
    if (m == 0)
        return 0;
    double *c = malloc(m * sizeof *c);
    if (!c)
        return 0;
    double s = 0.0, total = 0.0;
    for (size_t i = 0; i < m; i++) {
        if (isfinite(logw[i])) /* a zero-weight sample (log W = -inf) adds nothing */
            s += logw[i];
        c[i] = s;
        total += s;
    }
    if (total == 0.0) /* e.g. the first level: every log-weight is 0 */
        for (size_t i = 0; i < m; i++)
            c[i] = (double)i;
    double last = c[m - 1];
    size_t n = 0;
    for (size_t i = 0; i < m; i++)
        if (c[i] / last >= q) {
            n = i;
            break;
        }
    free(c);
    return n;
}

int ns_ins_quantile_index(const double *logl, const double *logw, size_t m, double q, size_t *n)
{
    *n = 0;
    if (m == 0)
        return NS_OK;
    double lse = ns_logsumexp(logw, m), s2 = 0.0;
    for (size_t i = 0; i < m; i++)
        s2 += exp(2.0 * (logw[i] - lse));
    double neff = 1.0 / s2;
    if (!isfinite(lse) || !isfinite(neff))
        return NS_ERR_NUMERIC;
    double a = q * (neff + 1.0), b = (1.0 - q) * (neff + 1.0);
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    double t = 0.0, il = 0.0, cutoff = 0.0;
    int rc = NS_OK;
    for (size_t i = 0; i < m && rc == NS_OK; i++) {
        t += exp(logw[i] - lse);
        double x = i + 1 == m || t > 1.0 ? 1.0 : t;
        gsl_sf_result r;
        int st = gsl_sf_beta_inc_e(a, b, x, &r);
        if (st == GSL_EUNDRFLW) /* far in the lower tail: 0 */
            r.val = 0.0;
        else if (st != GSL_SUCCESS)
            rc = NS_ERR_NUMERIC;
        double ws = r.val - il;
        il = r.val;
        if (ws != 0.0)
            cutoff += ws * logl[i];
    }
    gsl_set_error_handler(old);
    if (rc != NS_OK || !isfinite(cutoff))
        return NS_ERR_NUMERIC;
    size_t k = 0;
    while (k < m && logl[k] < cutoff)
        k++;
    *n = k < m ? k : 0; /* numpy's argmax of all-false is 0 */
    return NS_OK;
}

size_t ns_ins_adjust_index(size_t n, size_t m, size_t min_samples, size_t min_remove)
{
    if (n == 0)
        n = 1;
    if (n > m || m - n < min_samples)
        n = m > min_samples ? m - min_samples : 0;
    else if (n < min_remove)
        n = min_remove;
    return n;
}

void ns_ins_mixture_weights(const size_t *counts, size_t nc, double *alpha, double *log_alpha)
{
    double total = 0.0;
    for (size_t k = 0; k < nc; k++)
        total += (double)counts[k];
    for (size_t k = 0; k < nc; k++) {
        alpha[k] = total > 0 ? (double)counts[k] / total : 0.0;
        log_alpha[k] = alpha[k] > 0 ? log(alpha[k]) : -INFINITY;
    }
}

double ns_ins_log_q(const double *log_q_row, const double *log_alpha, size_t nc)
{
    double mx = -INFINITY;
    for (size_t k = 0; k < nc; k++) {
        double t = log_alpha[k] + log_q_row[k];
        if (t > mx)
            mx = t;
    }
    if (mx == -INFINITY || isnan(mx))
        return mx;
    double s = 0.0;
    for (size_t k = 0; k < nc; k++)
        s += exp(log_alpha[k] + log_q_row[k] - mx);
    return mx + log(s);
}

double ns_ins_evidence(const double *ell, size_t n, double *err)
{
    if (err)
        *err = NAN;
    if (n == 0)
        return -INFINITY;
    double lz = ns_logsumexp(ell, n) - log((double)n);
    if (err && n > 1 && isfinite(lz)) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) {
            double r = exp(ell[i] - lz) - 1.0;
            s += r * r;
        }
        *err = sqrt(s / ((double)n * (double)(n - 1)));
    }
    return lz;
}

double ns_ins_ess(const double *v, size_t n)
{
    if (n == 0)
        return 0.0;
    double lse = ns_logsumexp(v, n);
    double mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (2.0 * (v[i] - lse) > mx)
            mx = 2.0 * (v[i] - lse);
    if (mx == -INFINITY)
        return 0.0;
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += exp(2.0 * (v[i] - lse) - mx);
    return exp(-(mx + log(s)));
}

double ns_ins_log_evidence_ratio(const double *ell, const unsigned char *live, size_t n)
{
    double mx = -INFINITY;
    size_t nl = 0;
    for (size_t i = 0; i < n; i++)
        if (live[i]) {
            nl++;
            if (ell[i] > mx)
                mx = ell[i];
        }
    if (nl == 0)
        return -INFINITY;
    double s = 0.0;
    if (mx > -INFINITY)
        for (size_t i = 0; i < n; i++)
            if (live[i])
                s += exp(ell[i] - mx);
    double lz_live = (mx > -INFINITY ? mx + log(s) : -INFINITY) - log((double)nl);
    return lz_live - (ns_logsumexp(ell, n) - log((double)n));
}

/* exp(v_k - logsumexp v) in place; all -inf (or NaN) gives NaN */
static void s_normalise_log(double *v, size_t nc)
{
    double lse = ns_logsumexp(v, nc);
    for (size_t k = 0; k < nc; k++)
        v[k] = isfinite(lse) ? exp(v[k] - lse) : NAN;
}

static double s_logaddexp(double a, double b)
{
    if (a == -INFINITY)
        return b;
    if (b == -INFINITY)
        return a;
    double m = fmax(a, b);
    return m + log(exp(a - m) + exp(b - m));
}

int ns_ins_importance(const double *ell, const int *comp, size_t n, size_t nc, double *total,
                      double *posterior, double *evidence)
{
    double *lse = malloc((nc ? nc : 1) * sizeof *lse);
    size_t *cnt = calloc(nc ? nc : 1, sizeof *cnt);
    if (!lse || !cnt) {
        free(lse);
        free(cnt);
        return NS_ERR_NOMEM;
    }
    for (size_t k = 0; k < nc; k++)
        lse[k] = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (comp[i] < 0 || (size_t)comp[i] >= nc)
            continue;
        lse[comp[i]] = s_logaddexp(lse[comp[i]], ell[i]);
        cnt[comp[i]]++;
    }
    /* evidence: suffix sums over k, k + 1, ..., nc - 1 */
    double acc = -INFINITY;
    size_t acc_n = 0;
    for (size_t k = nc; k-- > 0;) {
        acc = s_logaddexp(acc, lse[k]);
        acc_n += cnt[k];
        evidence[k] = acc_n ? acc - log((double)acc_n) : -INFINITY;
        posterior[k] = cnt[k] ? lse[k] - log((double)cnt[k]) : -INFINITY;
    }
    s_normalise_log(posterior, nc);
    s_normalise_log(evidence, nc);
    for (size_t k = 0; k < nc; k++)
        total[k] = 0.5 * (evidence[k] + posterior[k]);
    free(lse);
    free(cnt);
    return NS_OK;
}
