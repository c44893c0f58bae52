/*
 * nessai/model.h - the model plugin ABI.
 *
 * A model is a shared object (lib<name>.so) that exports one function,
 *
 *     const nessai_model_t *nessai_model_entry(void);
 *
 * returning a pointer to a static, versioned description. The struct starts
 * with the ABI version and its own size so that later versions can append
 * fields: the loader reads only the fields that fit in struct_size.
 *
 * Life cycle (the coordinator and every worker do the same):
 *   desc = nessai_model_entry();
 *   desc->init(args, &ctx, &info, err, errlen);   args = --model-args string
 *   ... desc->log_likelihood(ctx, x, n, logl) ... many times ...
 *   desc->fini(ctx);
 *
 * Every function returns 0 on success and a non-zero code on failure. A
 * failing call is an error (the run stops or the chunk is retried on another
 * worker); a plugin must never signal failure with a NaN value.
 *
 * Likelihoods must be deterministic: the same point gives the same value,
 * bit for bit, in every process (checked at start-up and on every worker).
 *
 * Arrays are row-major: point i, parameter j is x[i * dim + j].
 * One ctx is only ever used by one thread at a time.
 */
#ifndef NESSAI_MODEL_H
#define NESSAI_MODEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this ABI. Bumped only for incompatible changes; appending
 * fields to the structs below does not bump it. */
#define NESSAI_MODEL_ABI_VERSION 1u

/* Name of the symbol the loader looks up with dlsym(). */
#define NESSAI_MODEL_ENTRY_SYMBOL "nessai_model_entry"

/* Random-number source handed to new_point(). Draws come from the sampler's
 * own generator so that runs are reproducible from --seed. */
typedef struct nessai_rng_api {
    void *state;                          /* opaque, pass back unchanged */
    double (*uniform)(void *state);       /* U(0, 1), never exactly 0 or 1 */
    double (*gaussian)(void *state);      /* N(0, 1) */
} nessai_rng_api_t;

/* Filled in by init(). Pointers stay owned by the model context and must
 * stay valid until fini(). */
typedef struct nessai_model_info {
    uint32_t struct_size;         /* set by the caller to sizeof(nessai_model_info_t) */
    int dim;                      /* number of parameters, >= 2 */
    const char *const *names;     /* dim parameter names, unique, non-empty */
    const double *lower;          /* dim lower bounds (inclusive, finite) */
    const double *upper;          /* dim upper bounds (inclusive, finite, > lower) */
    double truth_log_evidence;    /* known ln Z for test problems, NAN if unknown */
    /* Appended to ABI 1 (write it only if struct_size covers it): optional
     * methods of nessai_model_t this context does not have, NESSAI_MODEL_NO_*
     * bits; the loader then uses its defaults. 0 = use what the table has. */
    uint32_t absent_methods;

    /* Optional declarations for the samplers (appended; all may stay NULL).
     * A plugin built against an older header leaves them untouched, and the
     * loader also ignores them when init() sets struct_size smaller than
     * this struct. docs/flow.md says how they choose reparameterisations. */
    const int *periodic;          /* dim flags: non-zero = the parameter wraps around */
    const double *period;         /* dim periods of the periodic ones (0 = upper - lower) */
    const char *const *reparameterisations; /* dim preferred names, e.g. "angle-pair"
                                   * (NULL entries: no preference) */
} nessai_model_info_t;

#define NESSAI_MODEL_NO_LOG_PRIOR 1u   /* log_prior */
#define NESSAI_MODEL_NO_NEW_POINT 2u   /* the new_point / new_point_log_prob pair */
#define NESSAI_MODEL_NO_UNIT_HYPERCUBE 4u /* the to_ / from_unit_hypercube pair */

typedef struct nessai_model {
    uint32_t abi_version;         /* NESSAI_MODEL_ABI_VERSION */
    uint32_t struct_size;         /* sizeof(nessai_model_t) as compiled by the plugin */
    const char *name;             /* model name, used to match workers to the run */

    /* Build a model from the --model-args string (never NULL, may be "").
     * On failure return non-zero and write a one-line reason into err. */
    int (*init)(const char *args, void **ctx, nessai_model_info_t *info,
                char *err, size_t errlen);

    /* Release everything init() allocated. ctx may be NULL. */
    void (*fini)(void *ctx);

    /* Required. logl[i] = ln L(x_i) for n points. -INFINITY is a valid value
     * (zero likelihood); NaN is treated as an invalid point by the sampler. */
    int (*log_likelihood)(void *ctx, const double *x, size_t n, double *logl);

    /* Optional (NULL): uniform in the bounds, inclusive at both ends,
     * logp = -sum(log(upper - lower)) inside and -INFINITY outside. */
    int (*log_prior)(void *ctx, const double *x, size_t n, double *logp);

    /* Optional pair: provide both or neither. new_point draws n points from
     * some distribution q that covers the prior; new_point_log_prob returns
     * ln q(x) up to a constant. Default: uniform in the bounds, ln q = 0. */
    int (*new_point)(void *ctx, const nessai_rng_api_t *rng, size_t n, double *x);
    int (*new_point_log_prob)(void *ctx, const double *x, size_t n, double *logq);

    /* Optional: a human-readable message for the last failed call. */
    const char *(*last_error)(void *ctx);

    /* Fields below were appended to ABI 1; the loader reads them only when
     * struct_size covers them. */

    /* Optional: build the model from a source file instead of init(). The
     * loader calls it when --model names a Python file ("file.py" or
     * "file.py:Class", see docs/python.md), with source = that string with
     * the file made absolute. Same contract as init(). */
    int (*init_source)(const char *source, const char *args, void **ctx,
                       nessai_model_info_t *info, char *err, size_t errlen);

    /* Optional: a digest (a short printable string) of everything besides
     * the plugin file that the model's values depend on, e.g. the model's
     * source files. The loader mixes it into the model hash, so workers
     * with other sources are refused. Owned by ctx. */
    const char *(*identity)(void *ctx);

    /* Optional: the model's name once initialised (e.g. the class name);
     * replaces name from then on. Owned by ctx. */
    const char *(*context_name)(void *ctx);

    /* Optional pair (appended; provide both or neither): the prior as a map
     * of the unit hypercube, used by the importance nested sampler
     * (docs/algorithm.md §12.1). from_unit_hypercube maps n points u in
     * [0, 1]^dim to x so that x follows the prior when u is uniform (e.g.
     * inverse CDFs); to_unit_hypercube is its inverse. Default: the linear
     * map of the bounds, u = (x - lower) / (upper - lower), with a custom
     * log_prior entering as a density on the cube. */
    int (*to_unit_hypercube)(void *ctx, const double *x, size_t n, double *u);
    int (*from_unit_hypercube)(void *ctx, const double *u, size_t n, double *x);
} nessai_model_t;

/* Plugins export this (with C linkage and default visibility). */
typedef const nessai_model_t *(*nessai_model_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* NESSAI_MODEL_H */
