/*
 * coordinator/sampler/posterior.h - posterior samples from the weighted
 * nested samples (docs/algorithm.md §1.8): Kish effective sample size, rejection
 * sampling (nessai's default) and multinomial resampling.
 */
#ifndef NS_POSTERIOR_H
#define NS_POSTERIOR_H

#include <stddef.h>
#include "nessai/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kish ESS of n log weights: exp(-logsumexp(2 (w - logsumexp w))).
 * 0 when n == 0 or every weight is -inf. */
double ns_posterior_ess(const double *logw, size_t n);

/* Keep sample i iff logw_i - max(logw) > ln u_i, u_i ~ U(0,1), one draw
 * per sample in order. Writes the kept indices (ascending) to idx (room
 * for n) and returns their number. */
size_t ns_posterior_rejection(const double *logw, size_t n, ns_rng_t *rng, size_t *idx);

/* Draw m indices with replacement, P(i) proportional to exp(logw_i).
 * Returns NS_OK, NS_ERR_NOMEM, or NS_ERR_NUMERIC if no weight is finite. */
int ns_posterior_multinomial(const double *logw, size_t n, size_t m, ns_rng_t *rng, size_t *idx);

#ifdef __cplusplus
}
#endif
#endif
