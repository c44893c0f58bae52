/*
 * coordinator/sampler/integrator.h - the evidence integrator of nested
 * sampling (docs/algorithm.md §1.5): running ln Z, information, error, the log prior
 * volume of every contour, and the trapezoid refinement used at the end.
 *
 * Numeric code: it never logs. increment() reports a non-monotonic
 * likelihood through its return value so the caller can warn.
 */
#ifndef NS_INTEGRATOR_H
#define NS_INTEGRATOR_H

#include <stddef.h>
#include "nessai/serial.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Shrinkage expectation: <log t> = -1/n (nessai's default) or log<t>. */
typedef enum { NS_SHRINK_LOGT = 0, NS_SHRINK_T = 1 } ns_shrinkage_t;

typedef struct ns_integrator ns_integrator_t;

/* Caller owns the return value; NULL on no memory. */
ns_integrator_t *ns_integrator_new(size_t nlive, ns_shrinkage_t expectation);
void ns_integrator_destroy(ns_integrator_t **self_p);

/* Add the contour at logL with n live points (n = 0 means nlive).
 * Returns 1 if logL <= the previous contour (non-monotonic; the caller
 * warns), 0 otherwise, NS_ERR_NOMEM (negative: -NS_ERR_NOMEM) on no memory. */
int ns_integrator_increment(ns_integrator_t *self, double logl, size_t n);

/* Replace ln Z with the trapezoid rule over all contours, X = 0 after the
 * last one (docs/algorithm.md §1.5 finalise). */
void ns_integrator_finalise(ns_integrator_t *self);
/* The trapezoid ln Z of the current contours (does not change state). */
double ns_integrator_log_z_trapezoid(const ns_integrator_t *self);

double ns_integrator_log_z(const ns_integrator_t *self);
/* H (nats), the last information value; 0 before two finite increments. */
double ns_integrator_information(const ns_integrator_t *self);
/* sqrt(H / nlive). */
double ns_integrator_error(const ns_integrator_t *self);
/* ln X of the current contour. */
double ns_integrator_log_w(const ns_integrator_t *self);
/* Number of increments so far. */
size_t ns_integrator_count(const ns_integrator_t *self);
/* Contour arrays, count + 1 entries each: logLs[0] = -inf, log_vols[0] = 0. */
const double *ns_integrator_logls(const ns_integrator_t *self);
const double *ns_integrator_log_vols(const ns_integrator_t *self);

/* Log posterior weights of the count nested samples (docs/algorithm.md §1.8):
 * w_i = L_i + ln(X_{i-1} - X_i) - ln Z_trapezoid, into w[count]. */
void ns_integrator_log_posterior_weights(const ns_integrator_t *self, double *w);

/* State for checkpoints (section "INTG"). load needs an integrator made
 * with the same nlive. */
void ns_integrator_save(const ns_integrator_t *self, ns_buf_t *b);
int ns_integrator_load(ns_integrator_t *self, ns_buf_t *b);

#ifdef __cplusplus
}
#endif
#endif
