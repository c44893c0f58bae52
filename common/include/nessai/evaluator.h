/*
 * nessai/evaluator.h - how the sampler gets likelihoods: "evaluate these n
 * points, give me n logL". Three implementations share this interface:
 * in-process (below), local pool and remote farm (coordinator/farm).
 *
 * Contract for every implementation: logl[i] is exactly (bit for bit) what
 * the model's log_likelihood returns for row i when called in-process,
 * whatever the chunking, worker count, arrival order or failures.
 * The evaluator does not count evaluations; the sampler does.
 */
#ifndef NESSAI_EVALUATOR_H
#define NESSAI_EVALUATOR_H

#include <stddef.h>
#include "nessai/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON;
struct ns_h5_schema;

typedef struct ns_evaluator_ops {
    const char *kind;   /* "in-process", "farm" */
    /* Evaluate n points (row-major n x d). Returns NS_OK, or an error code
     * after which the run should stop (the message is already logged). */
    int (*evaluate)(void *impl, const double *x, size_t n, size_t d, double *logl);
    /* Optional: add implementation statistics to obj (result.json "farm"). */
    void (*stats_json)(void *impl, struct cJSON *obj);
    /* Optional: give the integer keys that stats_json adds their HDF5 type,
     * each as prefix + key (prefix "farm/"). NS_OK or NS_ERR_NOMEM. */
    int (*stats_schema)(void *impl, struct ns_h5_schema *schema, const char *prefix);
    /* Optional: workers currently able to evaluate (progress line). */
    long (*live_workers)(void *impl);
    /* Optional: log a few lines summing up the implementation's statistics
     * (end of a run or of a run segment). */
    void (*log_summary)(void *impl);
    /* Optional: the run is over; tell workers to stop (before destroy). */
    void (*shutdown)(void *impl);
    void (*destroy)(void *impl);
    /* Optional, all three or none: one batch evaluated while the caller
     * goes on working. begin starts evaluating n points (x and logl stay
     * the caller's and untouched by it until end returns) and returns at
     * once: NS_OK, or an error (nothing in flight then). poll is 1 once
     * the batch is over (end will not block), else 0. end waits for the
     * batch and returns what evaluate would have. One batch at a time;
     * any other call made while one is in flight first waits for it. */
    int (*begin)(void *impl, const double *x, size_t n, size_t d, double *logl);
    int (*poll)(void *impl);
    int (*end)(void *impl);
} ns_evaluator_ops_t;

typedef struct ns_evaluator {
    const ns_evaluator_ops_t *ops;
    void *impl;
} ns_evaluator_t;

/* Wrap an implementation. Caller owns the return value. */
ns_evaluator_t *ns_evaluator_new(const ns_evaluator_ops_t *ops, void *impl);
/* Calls ops->destroy(impl) and frees; NULL-safe, nulls *self_p. */
void ns_evaluator_destroy(ns_evaluator_t **self_p);

int ns_evaluator_evaluate(ns_evaluator_t *self, const double *x, size_t n,
                          size_t d, double *logl);
void ns_evaluator_stats_json(ns_evaluator_t *self, struct cJSON *obj);
/* ops->stats_schema, NS_OK when there is none. */
int ns_evaluator_stats_schema(ns_evaluator_t *self, struct ns_h5_schema *schema, const char *prefix);
/* ops->live_workers, or -1 when the implementation has no workers (in-process). */
long ns_evaluator_live_workers(ns_evaluator_t *self);
/* ops->log_summary, nothing when there is none. */
void ns_evaluator_log_summary(ns_evaluator_t *self);
void ns_evaluator_shutdown(ns_evaluator_t *self);
const char *ns_evaluator_kind(const ns_evaluator_t *self);
/* 1 if the implementation evaluates a batch in the background (begin,
 * poll, end), else 0: the in-process evaluator does not. */
int ns_evaluator_can_overlap(const ns_evaluator_t *self);
/* ops->begin / poll / end (see above); only when ns_evaluator_can_overlap. */
int ns_evaluator_begin(ns_evaluator_t *self, const double *x, size_t n, size_t d, double *logl);
int ns_evaluator_poll(ns_evaluator_t *self);
int ns_evaluator_end(ns_evaluator_t *self);

/* In-process evaluator: calls the plugin directly, in chunks of at most
 * chunksize points (0 = all at once). Borrows model (must outlive it). */
ns_evaluator_t *ns_evaluator_inprocess_new(ns_model_t *model, size_t chunksize);

#ifdef __cplusplus
}
#endif
#endif
