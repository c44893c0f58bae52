/*
 * coordinator/sampler/livepoint.h - the live-point row layout (docs/algorithm.md §0).
 *
 * Every point the sampler or a proposal handles is one row of d + 3
 * doubles, rows stored contiguously (row-major):
 *
 *     [ x_0 ... x_{d-1} | logP | logL | it ]
 *
 * x_j are the model parameters in the model's order; logP the log-prior,
 * logL the log-likelihood (NAN until evaluated), it the iteration at which
 * the point entered the live set (0 for the initial live points), stored
 * as a double (exact for any iteration count below 2^53).
 */
#ifndef NS_LIVEPOINT_H
#define NS_LIVEPOINT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Doubles per row for a model of dimension d. */
#define NS_LP_STRIDE(d) ((size_t)(d) + 3)
/* Column of logP, logL and it in a row of a d-dimensional model. */
#define NS_LP_LOGP(d) ((size_t)(d))
#define NS_LP_LOGL(d) ((size_t)(d) + 1)
#define NS_LP_IT(d) ((size_t)(d) + 2)

/* Row i of a block of rows for dimension d. */
static inline double *ns_lp_row(double *rows, size_t d, size_t i) { return rows + i * NS_LP_STRIDE(d); }
static inline const double *ns_lp_crow(const double *rows, size_t d, size_t i)
{
    return rows + i * NS_LP_STRIDE(d);
}

/* Replace the worst live point (row 0) of n rows sorted ascending by logL
 * with row, keeping the order (docs/algorithm.md §1.4): k = searchsorted-left of the new
 * logL on the array that still holds the worst point, rows 1..k-1 move
 * down one place, row lands at k - 1. Returns the insertion index k - 1.
 * Requires row's logL > the worst logL (then k >= 1). */
size_t ns_lp_insert(double *live, size_t n, size_t d, const double *row);

#ifdef __cplusplus
}
#endif
#endif
