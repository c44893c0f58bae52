/*
 * coordinator/sampler/kstest.h - the insertion-index diagnostic of
 * docs/algorithm.md §1.9: one-sided KS statistic D+ of the insertion indices
 * against the uniform distribution on 0..nlive-1, and its exact p-value.
 */
#ifndef NS_KSTEST_H
#define NS_KSTEST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Survival function of the one-sided KS statistic for sample size n:
 * P(D+_n >= d), the exact Smirnov / Birnbaum-Tingey sum evaluated term by
 * term in logs (no overflow for any n). 1 for d <= 0, 0 for d >= 1. */
double ns_ks_one_sided_sf(double d, size_t n);

/* D+ = max_k ((k+1)/nlive - F_k) of n indices in [0, nlive) (F = empirical
 * CDF), and its p-value. Indices outside [0, nlive) are ignored in the
 * histogram but count in n. counts is a caller-provided workspace of nlive
 * entries (NULL: allocated here). Returns 0, or -1 for n == 0 or no memory
 * (then *d and *p are NAN). */
int ns_ks_insertion_test(const int64_t *indices, size_t n, size_t nlive, size_t *counts,
                         double *d, double *p);

#ifdef __cplusplus
}
#endif
#endif
