/*
 * ins_math.h - the numerics of the importance nested sampler
 * (docs/algorithm.md §12), free of any sampler state so that each can be
 * tested on small hand-computed sets: the entropy threshold, the mixture
 * weights and log Q, the evidence with its error, the ESS and the ratio
 * stopping rule.
 */
#ifndef NS_INS_MATH_H
#define NS_INS_MATH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* §12.3: the entropy rule on m live points sorted by ascending logL with
 * log-weights logw: c_i = sum_{k <= i} logw_k (c_i = i when sum_i c_i is
 * exactly 0), normalised by c_{m-1}; the first index with c_i >= q, 0 if
 * none (and for m == 0). */
size_t ns_ins_entropy_index(const double *logw, size_t m, double q);

/* §12.3, nessai's "quantile" rule: the weighted Harrell-Davis estimate of
 * the q-quantile of logl (m values sorted ascending) with log-weights logw:
 * w = normalised weights, n_eff = 1 / sum w^2, a = q (n_eff + 1),
 * b = (1 - q)(n_eff + 1), t_i = sum_{k < i} w_k, and the cutoff
 * sum_i [I_{t_{i+1}}(a, b) - I_{t_i}(a, b)] logl_i with I the regularised
 * incomplete beta function. *n is the first index with logl >= cutoff.
 * NS_ERR_NUMERIC when the weights or the cutoff are not finite (e.g. a
 * logl of -inf with a non-zero share). */
int ns_ins_quantile_index(const double *logl, const double *logw, size_t m, double q, size_t *n);

/* §12.3 adjustments of that index n for m live points: n = 0 becomes 1;
 * then if m - n < min_samples, n = max(0, m - min_samples), else n is at
 * least min_remove. */
size_t ns_ins_adjust_index(size_t n, size_t m, size_t min_samples, size_t min_remove);

/* §12.5: alpha_k = counts_k / sum counts for the k = 0..nc-1 components
 * (prior first); log_alpha_k = ln alpha_k (-inf for a zero count). */
void ns_ins_mixture_weights(const size_t *counts, size_t nc, double *alpha, double *log_alpha);

/* §12.5: ln Q = ln sum_k alpha_k q_k of one row of nc log-densities,
 * computed about the row's maximum (-inf when every term is -inf). */
double ns_ins_log_q(const double *log_q_row, const double *log_alpha, size_t nc);

/* §12.6: ln Z = logsumexp(ell) - ln n for ell_i = logL_i + logW_i, and
 * sigma_lnZ = sqrt(sum (exp(ell_i - ln Z) - 1)^2 / (n (n - 1))) in *err
 * (NAN for n < 2). n == 0 gives -inf. */
double ns_ins_evidence(const double *ell, size_t n, double *err);

/* §12.6: Kish ESS exp(-logsumexp(2 (v - logsumexp v))) of log-weights v
 * (0 for n == 0). */
double ns_ins_ess(const double *v, size_t n);

/* §12.7: the ratio R = ln Z_live - ln Z: (logsumexp of ell over the live
 * points - ln n_live) - (logsumexp over all - ln n); live flags per point.
 * -inf without live points. */
double ns_ins_log_evidence_ratio(const double *ell, const unsigned char *live, size_t n);

/* §12.7: each component's share of the result, from n samples with
 * ell_i = logL_i + logW_i and comp_i = the component that drew sample i
 * (0 = prior, k = flow k - 1; nc components): posterior_k is the mean of
 * L W over the samples drawn by k, evidence_k the mean over the samples
 * drawn by k or any later component; each is normalised to sum 1 over k
 * (a component without samples has mean 0), and total_k = (evidence_k +
 * posterior_k) / 2. NS_OK, NS_ERR_NOMEM. */
int ns_ins_importance(const double *ell, const int *comp, size_t n, size_t nc, double *total,
                      double *posterior, double *evidence);

#ifdef __cplusplus
}
#endif
#endif
