/*
 * coordinator/sampler/proposal.h - the proposal interface (docs/algorithm.md §2).
 *
 * A proposal hands the sampler new points, one at a time, from a pool it
 * fills in batches ("populations"). The sampler owns the schedule: when to
 * switch from the uninformed proposal (rejection / analytic, in this
 * folder) to the flow proposal (coordinator/flow), and when to train. A
 * proposal owns its pool, its random generator(s) and everything it needs
 * to continue exactly after a checkpoint.
 *
 * Points are rows in the layout of livepoint.h: d parameters, logP, logL,
 * it (d + 3 doubles).
 *
 * Likelihoods: a proposal never calls the model's likelihood or an
 * evaluator itself. It calls env->evaluate (or env->evaluate_rows), which
 * goes through the sampler so that every evaluation is counted and timed
 * in one place (docs/algorithm.md §5.3). Priors and new_point go to env->model
 * directly (they are not counted).
 *
 * Interrupts: long operations (population, training) may poll
 * ns_interrupt_pending() and return NS_ERR_INTERRUPTED. The proposal must
 * then be left so that repeating the same call gives what the
 * uninterrupted call would have given (e.g. restore the generator state
 * and weights saved at the start of the call), so that a run checkpointed
 * at that moment continues exactly.
 */
#ifndef NS_PROPOSAL_H
#define NS_PROPOSAL_H

#include <stddef.h>
#include <stdint.h>

#include "nessai/options.h"
#include "nessai/plugin.h"
#include "nessai/rng.h"
#include "nessai/serial.h"
#include "livepoint.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON;
struct ns_h5_schema;

/* One pool population, reported to the sampler for history and timers. */
typedef struct ns_population {
    double acceptance;   /* accepted / proposed of this population (history population_acceptance) */
    double radius;       /* latent radius used; NAN when not applicable (history population_radii) */
    double time;         /* wall seconds charged to population_time (docs/algorithm.md §2.6 note e) */
    size_t n_points;     /* points placed in the pool */
    int record;          /* 1: append to history population_* (Rejection, Flow), 0: not (Analytic) */
} ns_population_t;

/* What the sampler gives a proposal. Everything is borrowed and outlives
 * the proposal. */
typedef struct ns_proposal_env {
    ns_model_t *model;     /* priors, bounds, new_point; never its likelihood */
    size_t dim;            /* d = ns_model_dim(model) */
    size_t nlive;          /* number of live points (base pool size) */
    uint64_t seed;         /* run seed (--seed) */
    uint32_t stream;       /* first RNG stream reserved for this proposal: use
                            * ns_rng_new(seed, stream + k) for k in 0..15 */
    const char *output;    /* run output directory (exists) */

    /* Evaluate n points, row-major n x d parameters only, into logl[n].
     * Counted and timed by the sampler. Returns NS_OK or an error after
     * which the run stops (NS_ERR_INTERRUPTED when interrupted). */
    int (*evaluate)(void *ctx, const double *x, size_t n, double *logl);
    /* Same on n rows of the livepoint.h layout: fills each row's logL. */
    int (*evaluate_rows)(void *ctx, double *rows, size_t n);
    /* Report one population (call once per populate, after it is done). */
    void (*report_population)(void *ctx, const ns_population_t *pop);
    void *ctx;             /* first argument of the callbacks */
    /* Optional (may be NULL): take back n evaluations counted by evaluate
     * during a population that was then interrupted. Such a population is
     * repeated from the same generator state after a resume, so keeping the
     * count would count its points twice. */
    void (*uncount)(void *ctx, size_t n);
    /* Optional, all three or none (NULL when the evaluator cannot work in
     * the background, e.g. in-process): evaluate_rows in two halves, so
     * that the proposal goes on working while the likelihoods are
     * computed. rows_begin starts on n >= 1 rows and returns at once (the
     * rows must not move or be read for logL until rows_end); rows_poll
     * is 1 once rows_end will not block; rows_end waits and then counts
     * and fills the rows exactly as evaluate_rows would have, returning
     * its code. One batch at a time, and nothing else may be evaluated
     * while it is in flight. A batch begun must always be ended. */
    int (*rows_begin)(void *ctx, double *rows, size_t n);
    int (*rows_poll)(void *ctx);
    int (*rows_end)(void *ctx);
} ns_proposal_env_t;

/* Extra information for a training call. */
typedef struct ns_train_info {
    long iteration;                 /* sampler iteration at the training */
    long training_count;            /* trainings done before this one */
    double mean_block_acceptance;   /* sampler's current value */
    int reset_full;                 /* 1: reset_acceptance rule fired, reset the flow fully (docs/algorithm.md §2.4) */
    int forced;                     /* 1 if the training was forced (pool empty, switch, resume) */
} ns_train_info_t;

typedef struct ns_proposal_ops {
    const char *name;    /* "rejection", "analytic", "flow": logs, checkpoints */

    /* Put one new point into out (one row, d + 3 doubles: parameters, logP
     * and logL filled; it is set by the sampler). If the pool is empty it
     * is populated first (worst = current worst live row, used by e.g. an
     * adaptive radius or a likelihood threshold; NULL before any live
     * points exist). After the last pool point is handed out the pool is
     * empty (is_populated returns 0). NS_OK or an error code. */
    int (*draw)(void *impl, const double *worst, double *out);

    /* 1 while the pool holds points that have not been handed out. */
    int (*is_populated)(const void *impl);

    /* Optional (NULL for uninformed proposals): train on n rows (live points,
     * plus nested samples with --memory). Discards any remaining pool points
     * (is_populated becomes 0). NS_OK, NS_ERR_INTERRUPTED, or an error. */
    int (*train)(void *impl, const double *rows, size_t n, const ns_train_info_t *info);

    /* Optional: the sampler's mean block acceptance after each iteration
     * (docs/algorithm.md §2.5 ns_acceptance; sizes the next pool). */
    void (*set_ns_acceptance)(void *impl, double acceptance);

    /* Optional: called once when the sampler makes this the active proposal
     * (the switch of docs/algorithm.md §2.2), before the forced training. */
    void (*activate)(void *impl);

    /* Save / restore everything needed for an exact continuation (pool with
     * its logL values and remaining order, RNG states, training state).
     * load is called on a freshly made proposal of the same configuration. */
    int (*save)(const void *impl, ns_buf_t *b);
    int (*load)(void *impl, ns_buf_t *b);

    /* Optional: add "key": value pairs describing the proposal to a cJSON
     * object (result.json "proposal" section). */
    void (*stats_json)(const void *impl, struct cJSON *obj);

    /* Optional: give the integer keys that stats_json adds their HDF5 type
     * (ns_h5_schema_add of prefix + key, prefix "proposal_stats/<name>/"),
     * so that result.hdf5 stores counters as int64. NS_OK or NS_ERR_NOMEM. */
    int (*stats_schema)(const void *impl, struct ns_h5_schema *schema, const char *prefix);

    void (*destroy)(void *impl);
} ns_proposal_ops_t;

typedef struct ns_proposal {
    const ns_proposal_ops_t *ops;
    void *impl;
} ns_proposal_t;

/* Makes a proposal from the effective configuration and the environment.
 * On success *out is owned by the caller (ns_proposal_destroy). On failure
 * returns an error and logs a one-line reason. */
typedef int (*ns_proposal_factory_fn)(const ns_config_t *cfg, const ns_proposal_env_t *env,
                                      ns_proposal_t **out);

/* Wrap an implementation. Caller owns the return value; NULL on no memory
 * (impl is not destroyed then). */
ns_proposal_t *ns_proposal_new(const ns_proposal_ops_t *ops, void *impl);
/* ops->destroy(impl) and free; NULL-safe, nulls *self_p. */
void ns_proposal_destroy(ns_proposal_t **self_p);

/* The uninformed proposals of docs/algorithm.md §2.1 (proposal_rejection.c,
 * proposal_analytic.c). poolsize 0 picks the default (nlive / 1000). */
int ns_rejection_proposal_new(const ns_proposal_env_t *env, size_t poolsize, ns_proposal_t **out);
int ns_analytic_proposal_new(const ns_proposal_env_t *env, size_t poolsize, ns_proposal_t **out);

#ifdef __cplusplus
}
#endif
#endif
