/*
 * nessai/plugin.h - loading a model plugin and calling it safely.
 *
 * ns_model_t wraps a dlopen()ed plugin and its initialised context. All
 * calls check the plugin's return codes and turn failures into NS_ERR_MODEL
 * with a message (ns_model_last_error). Nothing here counts evaluations:
 * counting belongs to the sampler (docs/algorithm.md §5.3).
 */
#ifndef NESSAI_PLUGIN_H
#define NESSAI_PLUGIN_H

#include <stddef.h>
#include "nessai/model.h"
#include "nessai/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ns_model ns_model_t;

/* Load the plugin at path and initialise it with args (NULL = "").
 * On success *out is an owned model (free with ns_model_destroy).
 * On failure returns NS_ERR_MODEL or NS_ERR_INVAL and writes a one-line
 * reason (what is wrong and what to do) into err. */
int ns_model_load(const char *path, const char *args, ns_model_t **out,
                  char *err, size_t errlen);
void ns_model_destroy(ns_model_t **self_p);

const char *ns_model_name(const ns_model_t *self);
int ns_model_dim(const ns_model_t *self);
const char *const *ns_model_param_names(const ns_model_t *self);
/* "(x=6.2, y=-1.3)": a point of the model with its parameter names, at most
 * 6 coordinates (then ", ..."), for log messages; truncated to len. */
void ns_model_point_text(const ns_model_t *self, const double *x, char *buf, size_t len);
const double *ns_model_lower(const ns_model_t *self);
const double *ns_model_upper(const ns_model_t *self);
double ns_model_truth(const ns_model_t *self);        /* NAN if unknown */
/* The model's optional declarations (model.h); NULL when not given. */
const int *ns_model_periodic(const ns_model_t *self);
const double *ns_model_period(const ns_model_t *self);
const char *const *ns_model_reparameterisations(const ns_model_t *self);
const char *ns_model_path(const ns_model_t *self);    /* absolute path */
const char *ns_model_args(const ns_model_t *self);
/* Hex SHA-1 of the plugin file (40 chars): identifies the build. */
const char *ns_model_hash(const ns_model_t *self);
/* Message of the last failed call, "" if none. */
const char *ns_model_last_error(const ns_model_t *self);

/* n points, row-major n x dim. */
int ns_model_log_likelihood(ns_model_t *self, const double *x, size_t n, double *logl);
int ns_model_log_prior(ns_model_t *self, const double *x, size_t n, double *logp);
/* 1 if every coordinate lies within [lower, upper]. */
int ns_model_in_bounds(const ns_model_t *self, const double *x);
/* Draw n points: plugin's new_point, else uniform in the bounds, redrawn
 * until the log-prior is finite (docs/algorithm.md §0). */
int ns_model_new_point(ns_model_t *self, ns_rng_t *rng, size_t n, double *x);
/* ln q of new_point's distribution; 0 for the default. */
int ns_model_new_point_log_prob(ns_model_t *self, const double *x, size_t n, double *logq);
int ns_model_has_custom_new_point(const ns_model_t *self);

/* The unit-hypercube maps (model.h): the plugin's pair, else the linear map
 * of the bounds. n points, row-major n x dim. */
int ns_model_to_unit_hypercube(ns_model_t *self, const double *x, size_t n, double *u);
int ns_model_from_unit_hypercube(ns_model_t *self, const double *u, size_t n, double *x);
int ns_model_has_unit_hypercube(const ns_model_t *self);
/* ln of the prior density on the cube at n points u whose physical prior
 * logp (ns_model_log_prior of from_unit_hypercube(u)) is given: -inf
 * outside [0, 1)^dim (upper faces excluded), else 0 with the plugin's
 * pair, and logp + sum ln(upper - lower) with the linear default (0 for
 * the box prior; a custom log_prior becomes a density on the cube). */
void ns_model_log_prior_unit_hypercube(const ns_model_t *self, const double *u,
                                       const double *logp, size_t n, double *logu);

#ifdef __cplusplus
}
#endif
#endif
