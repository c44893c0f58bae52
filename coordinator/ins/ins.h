/*
 * ins.h - the importance nested sampler (docs/algorithm.md §12): levels of
 * normalising flows in the logit space of the unit hypercube, a mixture of
 * the prior and every flow as the proposal, importance weights pi_U / Q,
 * and the evidence as their mean over all samples.
 *
 * It reuses the project's RealNVP flow and its training (coordinator/flow)
 * and the logit reparameterisation, and sends every likelihood through
 * the evaluator interface (nessai/evaluator.h) in one batch per level, so
 * in-process runs, local pools and remote farms give the same result.
 */
#ifndef NS_INS_H
#define NS_INS_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "flow.h"
#include "flow_train.h"
#include "nessai/evaluator.h"
#include "nessai/options.h"
#include "nessai/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON;

/* The option-table fragment (joined by the coordinator). */
extern const ns_option_t ns_ins_options[];
extern const size_t ns_ins_options_count;

/* The stopping rules (nessai's names, docs/sampler.md). */
typedef enum {
    NS_INS_RATIO,            /* ln Z_live - ln Z <= tol */
    NS_INS_RATIO_NS,         /* ln Z_live - ln Z_nested <= tol */
    NS_INS_DLOGZ,            /* |ln Z - previous ln Z| <= tol */
    NS_INS_ESS,              /* ESS >= tol */
    NS_INS_Z_ERR,            /* sigma_Z (linear) <= tol */
    NS_INS_FRACTIONAL_ERROR  /* sigma_Z / Z <= tol */
} ns_ins_criterion_t;

/* "ratio", "ratio_ns", "dlogZ", "ess", "Z_err", "fractional_error" (the
 * option's choices; anything else is ratio) and back; the second gives
 * nessai's internal name (history/stopping_criteria/<name>). */
ns_ins_criterion_t ns_ins_criterion_from_name(const char *name);
const char *ns_ins_criterion_name(ns_ins_criterion_t c);
const char *ns_ins_criterion_key(ns_ins_criterion_t c);
/* Whether value meets criterion c at tolerance tol (NaN never does). */
int ns_ins_criterion_met(ns_ins_criterion_t c, double value, double tol);

typedef struct ns_ins_config {
    size_t nlive;          /* samples drawn per level and per set (5000) */
    size_t n_initial;      /* prior samples per set (nlive) */
    double q;              /* entropy fraction discarded per level, nessai's rho (0.5);
                            * with quantile: the logL quantile (0.8) */
    int quantile;          /* threshold by nessai's "quantile" rule, not "entropy" (0) */
    size_t min_samples;    /* live points kept and training-set size, at least (500) */
    size_t min_remove;     /* points removed per level, at least (1) */
    size_t reset_flow;     /* a fresh flow every reset_flow-th level, 0 = only the first (1) */
    ns_ins_criterion_t criterion; /* the stopping rule (ratio) */
    double tolerance;      /* its tolerance (0) */
    long min_iteration;    /* levels before the rule may stop the run (-1 = none) */
    long max_iteration;    /* levels at most (-1 = no limit) */
    int draw_iid_live;     /* an independent i.i.d. set for the estimates (1) */
    double eps;            /* logit clipping (1e-8) */
    uint64_t seed;
    ns_flow_config_t flow; /* flow architecture (dim set from the model) */
    ns_train_config_t train;
    int train_f32;         /* float32 training passes (1) */
    int threads;           /* training threads (1) */
    int allow_multi_valued; /* a non-deterministic likelihood only warns (0) */
} ns_ins_config_t;

/* nessai's defaults for a model of dimension d with the given seed. */
ns_ins_config_t ns_ins_config_default(size_t d, uint64_t seed);

/* The configuration from the coordinator's options (--nlive defaults to
 * 5000 here unless given). NS_OK or NS_ERR_INVAL with a reason in err. */
int ns_ins_config_from_options(const ns_config_t *cfg, size_t d, ns_ins_config_t *out,
                               char *err, size_t errlen);

/* The same check from the coordinator before its output directory opens:
 * NS_OK, or NS_ERR_INVAL after one line "nessai-coordinator: error: ..." on
 * stderr. */
int ns_ins_check_options(const ns_config_t *cfg, ns_model_t *model);

typedef struct ns_ins ns_ins_t;

/* A sampler for model (borrowed) with likelihoods from ev (borrowed).
 * NS_OK, NS_ERR_INVAL (bad configuration, reason in err) or NS_ERR_NOMEM. */
int ns_ins_new(const ns_ins_config_t *cfg, ns_model_t *model, ns_evaluator_t *ev,
               ns_ins_t **out, char *err, size_t errlen);
void ns_ins_destroy(ns_ins_t **self_p);

/* After a finished run whose last checkpoint is written: free the sample
 * sets' per-component densities (N x levels doubles per set, the bulk of
 * the memory), which the results do not need. Later ns_ins_save calls
 * fail with NS_ERR_INVAL. */
void ns_ins_release_densities(ns_ins_t *self);

/* Run to the stopping rule (or max_iteration), then finalise: evidence,
 * posterior weights, ESS and the posterior draw. NS_OK, NS_ERR_MODEL /
 * NS_ERR_NUMERIC (bad likelihoods, reason logged), NS_ERR_FARM,
 * NS_ERR_INTERRUPTED (a signal; nothing is saved) or NS_ERR_NOMEM. */
int ns_ins_run(ns_ins_t *self);

/* Called at every level boundary (after the start, after each level, and
 * with end = 1 after the finalisation): NS_OK to go on, anything else
 * stops the run with that code (NS_ERR_INTERRUPTED for a signal). */
typedef int (*ns_ins_hook_fn)(ns_ins_t *self, int end, void *ctx);
void ns_ins_set_hook(ns_ins_t *self, ns_ins_hook_fn fn, void *ctx);

/* Section "INSS" (docs/algorithm.md §12.10): everything the run depends on
 * at a level boundary (settings that must match, iteration, counters,
 * every generator, every flow of the mixture, the sample counts, both
 * sets with their log q columns, the history, the posterior). Load into
 * a fresh sampler built with the same settings; NS_ERR_CORRUPT when they
 * differ. ns_ins_run then continues from the loaded boundary. */
int ns_ins_save(const ns_ins_t *self, ns_buf_t *b);
int ns_ins_load(ns_ins_t *self, ns_buf_t *b);
/* The state saved at the last boundary (with a hook set), for a signal
 * that arrives inside a level: NS_OK, or NS_ERR_STATE before the first. */
int ns_ins_save_snapshot(const ns_ins_t *self, ns_buf_t *out);

double ns_ins_log_evidence(const ns_ins_t *self);
double ns_ins_log_evidence_error(const ns_ins_t *self);
double ns_ins_ess_value(const ns_ins_t *self);
long ns_ins_iteration(const ns_ins_t *self);
uint64_t ns_ins_likelihood_evaluations(const ns_ins_t *self);

/* The result dictionary (docs/sampler.md, "Importance nested sampler"). */
struct cJSON *ns_ins_result_json(const ns_ins_t *self);
/* posterior.csv: <parameters>,logP,logL,it,logW,logQ,logU. */
int ns_ins_write_posterior_csv(const ns_ins_t *self, const char *path);

/* The coordinator's run with --importance-nested-sampler: build, resume
 * from the checkpoint payload the coordinator loaded (resume, may hold no
 * payload), start the checkpoint controller (startup_s: time before
 * sampling), run with checkpoints at level boundaries, write result.json
 * and posterior.csv and print ln Z. *keep_workers is set when a signal
 * paused the run (remote workers stay for the resumed run). Returns the
 * exit status (0, 1 failed, 2 configuration error or a checkpoint that
 * does not fit, the checkpoint exit code on a signal). */
int ns_ins_main(const ns_config_t *cfg, ns_model_t *model, ns_evaluator_t *ev,
                ns_ckpt_ctl_t *ckpt, const ns_ckpt_loaded_t *resume, double startup_s,
                const char *output, int argc, char **argv, int *keep_workers);

#ifdef __cplusplus
}
#endif
#endif
