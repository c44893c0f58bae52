/*
 * reparam.h - reparameterisations between the physical space x and the
 * flow's prime space x' (docs/algorithm.md §3), one kind per model parameter:
 *
 *   zscore           x' = (x - mu)/sigma, mu and sigma (ddof 0) of the
 *                    training points, refitted at every update (fallback)
 *   rescaletobounds  x' = 2 (x - min)/(max - min) - 1, bounds = range of the
 *                    training points ("default" is the same)
 *   offset           as rescaletobounds after subtracting the prior midpoint
 *   logit            prior bounds to [0, 1], then logit
 *   inversion        training range to [0, 1]; the detected edge ("lower"
 *                    or "upper", flipped to 0) is mirrored: a random half of
 *                    the training points get x' -> -x' (split); with no edge
 *                    the parameter is rescaled to [-1, 1] like
 *                    rescaletobounds
 *   inversion-duplicate  the same but every point is duplicated mirrored
 *   none             x' = x
 *
 * and the maps of docs/flow.md "Angles, sky positions and other special
 * parameters": angle (angle-pi, angle-2pi, periodic), angle-pair,
 * to-cartesian, dequantise, log-rescale, the z-score variants and the GW
 * names. An angle adds a prime column (d' = d + 1 per one-input angle or
 * to-cartesian, + 1 per two-input angle pair), so x (d columns) and x'
 * (d' columns) differ in width. Log-Jacobians are log|det dx'/dx| forward
 * and log|det dx/dx'| inverse, summed over maps and ADDED to the caller's
 * array.
 */
#ifndef NS_REPARAM_H
#define NS_REPARAM_H

#include <stddef.h>
#include <stdint.h>

#include "nessai/rng.h"
#include "nessai/serial.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ns_rp_kind {
    NS_RP_NONE = 0,
    NS_RP_ZSCORE,
    NS_RP_RESCALE,
    NS_RP_OFFSET,
    NS_RP_LOGIT,
    NS_RP_INVERSION,
    NS_RP_INVERSION_DUP,
    NS_RP_ANGLE,          /* angle, angle-pi, angle-2pi, periodic */
    NS_RP_ANGLE_PAIR,     /* angle-pair, sky-ra-dec, sky-az-zen */
    NS_RP_TO_CARTESIAN,
    NS_RP_DEQUANTISE,
    NS_RP_DEQUANTISE_LOGIT,
    NS_RP_LOG_RESCALE,
    NS_RP_ZSCORE_GCDF,    /* z-score then Phi */
    NS_RP_ZSCORE_LOGIT,   /* logit then z-score */
    NS_RP_ZSCORE_INVGCDF, /* Phi^-1 then z-score */
    NS_RP_LOG_ZSCORE,     /* log then z-score */
    NS_RP_DISTANCE,       /* inversion-duplicate, upper edge only */
    NS_RP__COUNT
} ns_rp_kind_t;

enum { NS_EDGE_NONE = 0, NS_EDGE_LOWER = 1, NS_EDGE_UPPER = 2 };

typedef struct ns_reparam ns_reparam_t;

/* Parse a kind name (zscore, z-score, standardize, rescaletobounds,
 * rescale-to-bounds, default, offset, logit, inversion, inversion-duplicate,
 * none, null). NS_OK or NS_ERR_INVAL. */
int ns_rp_kind_parse(const char *s, ns_rp_kind_t *kind);
const char *ns_rp_kind_name(ns_rp_kind_t kind);

/* Build the reparameterisation for d parameters with the given names and
 * prior bounds. spec: "name:kind,name:kind" (NULL or "" = all fallback).
 * On error returns NULL and writes a one-line reason into err. Caller owns
 * the return value. */
ns_reparam_t *ns_reparam_new(size_t d, const char *const *names, const double *lower,
                             const double *upper, const char *spec, const char *fallback,
                             char *err, size_t errlen);
void ns_reparam_destroy(ns_reparam_t **self_p);

/* What a model declares about its parameters, and the switches that pick
 * defaults. periodic, period, prefer may be NULL (nothing declared). */
typedef struct {
    size_t d;
    const char *const *names;
    const double *lower, *upper;
    const int *periodic;              /* 1 = wraps around */
    const double *period;             /* 0 or NAN = upper - lower */
    const char *const *prefer;        /* preferred registry name, NULL = none */
    int gw;                           /* the GW defaults for bilby's CBC names */
} ns_rp_model_t;

/* As ns_reparam_new for a model with declarations. spec may be the
 * "name:kind" list or a JSON object of nessai's forms (docs/flow.md).
 * Parameters are covered by: spec, then the GW defaults, then the model's
 * preferred names, then "periodic" for periodic ones, then the fallback.
 * A periodic parameter whose map does not wrap with its period is an
 * error. */
ns_reparam_t *ns_reparam_new_model(const ns_rp_model_t *m, const char *spec, const char *fallback,
                                   char *err, size_t errlen);

/* Borrowed generator for the radii ns_reparam_forward draws (angles). */
void ns_reparam_set_rng(ns_reparam_t *self, ns_rng_t *rng);
/* Number of prime columns d' (the flow's input dimension). */
size_t ns_reparam_prime_dim(const ns_reparam_t *self);
/* Prime column names (d'). */
const char *ns_reparam_prime_name(const ns_reparam_t *self, size_t c);
/* 1 if some map draws a radius (its chi log-density joins the weights). */
int ns_reparam_has_prior(const ns_reparam_t *self);
/* Registry name of the map parameter j got ("zscore", "angle-2pi", ...). */
const char *ns_reparam_name(const ns_reparam_t *self, size_t j);
/* One line "p=name ... (d' = N)" into buf. */
void ns_reparam_describe(const ns_reparam_t *self, const char *const *names, char *buf,
                         size_t len);

size_t ns_reparam_dim(const ns_reparam_t *self);
ns_rp_kind_t ns_reparam_kind(const ns_reparam_t *self, size_t j);
/* Detected edge of parameter j (NS_EDGE_*). */
int ns_reparam_edge(const ns_reparam_t *self, size_t j);
/* Force the edge of every inversion parameter (verification); -1 = detect
 * again at the next update. */
void ns_reparam_force_edges(ns_reparam_t *self, int edge);

/* Most rows one input row can become: 2^(duplicate inversions) for
 * training, 2^(all inversions) for a radius computation. */
size_t ns_reparam_max_copies(const ns_reparam_t *self, int for_radius);

/* Refit the statistics (z-score moments, bounds, edges) to n training rows
 * x (row stride `stride` doubles, first d are the parameters). */
int ns_reparam_update(ns_reparam_t *self, const double *x, size_t n, size_t stride);

/* Forward map of n rows (stride as above) into xp (n x d'), no mirroring
 * (inversion parameters land on the [0, 1] side); logj (may be NULL) +=
 * log|dx'/dx|. Deterministic unless a map draws radii or dequantisation
 * noise, which come from the generator of ns_reparam_set_rng. Returns
 * NS_OK, or NS_ERR_STATE if draws are needed and no generator is set. */
int ns_reparam_forward(const ns_reparam_t *self, const double *x, size_t n, size_t stride,
                       double *xp, double *logj);
/* The same with the draws from rng. */
int ns_reparam_forward_rng(const ns_reparam_t *self, const double *x, size_t n, size_t stride,
                           double *xp, double *logj, ns_rng_t *rng);

/* Training / radius forward map: as ns_reparam_forward (draws from rng)
 * followed by the mirroring of docs/algorithm.md §3 (split with rng, or duplicate; for_radius mirrors
 * every inversion parameter by duplication). xp must hold
 * n * ns_reparam_max_copies rows; logj likewise (may be NULL). src (may be
 * NULL) receives the input row of each output row. Returns the number of
 * output rows. */
size_t ns_reparam_forward_mirror(const ns_reparam_t *self, const double *x, size_t n,
                                 size_t stride, double *xp, double *logj, size_t *src,
                                 ns_rng_t *rng, int for_radius);

/* Inverse map of n rows xp (n x d') into x (n x d); logj (may be NULL) +=
 * log|dx/dx'|. */
int ns_reparam_inverse(const ns_reparam_t *self, const double *xp, size_t n, double *x,
                       double *logj);
/* The same, and lprior (may be NULL) += the chi_k log-density of every
 * drawn radius (the prime-space prior term of the weights). */
int ns_reparam_inverse_prior(const ns_reparam_t *self, const double *xp, size_t n, double *x,
                             double *logj, double *lprior);

/* Detect the edge of values u in [0, 1] (docs/algorithm.md §3 detect_edge, cutoff 0.5).
 * Returns NS_EDGE_*; tmp needs n doubles. */
int ns_detect_edge(const double *u, size_t n, double *tmp);

/* Section "RPRM": kinds, fitted statistics and edges. Load requires the
 * same dimension and kinds. */
void ns_reparam_save(const ns_reparam_t *self, ns_buf_t *b);
int ns_reparam_load(ns_reparam_t *self, ns_buf_t *b);

/* The start-up check of docs/algorithm.md §3 (verify_rescaling) on n draws x (n x d):
 * for each forced edge (lower, upper, none) fit, map forward (training and
 * radius mirroring) and back; every row must return to its source (relative
 * 1e-9 of the prior width) with log J_fwd = -log J_inv. Resets the state
 * afterwards. NS_OK or NS_ERR_NUMERIC with a reason in err. */
int ns_reparam_verify(ns_reparam_t *self, const double *x, size_t n, ns_rng_t *rng,
                      double *max_err, char *err, size_t errlen);

/* Reset the fitted state to the initial one (prior bounds, mu 0, sigma 1,
 * edges undetected). */
void ns_reparam_reset(ns_reparam_t *self);

#ifdef __cplusplus
}
#endif
#endif
