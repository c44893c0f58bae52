/*
 * coordinator/sampler/sampler.h - nessai's standard nested sampler
 * (docs/algorithm.md §0-§2.3): model verification, initial live points, the
 * consume/insert loop, evidence and stopping, the proposal schedule
 * (uninformed stage, switch to the flow proposal, training triggers),
 * insertion-index KS tests, finalisation and posterior samples.
 *
 * Likelihoods come only from the evaluator given at construction; every
 * call is counted and timed here (docs/algorithm.md §5.3). The sampler includes no
 * transport code, so in-process and farm evaluation give the same run.
 *
 * Checkpoints: ns_sampler_save/ns_sampler_load capture every piece of
 * state needed to continue exactly. The loop calls a hook at iteration
 * boundaries (the only points where a periodic checkpoint is taken) and
 * polls ns_interrupt_pending(); an interrupted loop returns
 * NS_ERR_INTERRUPTED with the sampler in a saveable state (also when the
 * interrupt arrives inside a training or a pool population).
 */
#ifndef NS_SAMPLER_H
#define NS_SAMPLER_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "nessai/evaluator.h"
#include "nessai/options.h"
#include "nessai/plugin.h"
#include "nessai/serial.h"
#include "proposal.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON;

/* The sampler's options (nlive, stopping, max-iteration, the uninformed
 * stage, training triggers, shrinkage, posterior method, ...) as a fragment
 * that main.c joins into the coordinator's table. The sampler also reads
 * "seed" (must be set) from the joined table. */
extern const ns_option_t ns_sampler_options[];
extern const size_t ns_sampler_options_count;

typedef struct ns_sampler ns_sampler_t;

/* Build a sampler from the effective configuration. model and evaluator are
 * borrowed and must outlive it. flow_factory may be NULL: the run then stays
 * on the uninformed proposal and warns once where it would have switched.
 * output: run directory (must exist). Returns NS_OK and an owned sampler,
 * or NS_ERR_INVAL (bad combination of options, logged) / NS_ERR_NOMEM /
 * the flow factory's error. */
int ns_sampler_new(const ns_config_t *cfg, ns_model_t *model, ns_evaluator_t *evaluator,
                   ns_proposal_factory_fn flow_factory, const char *output, ns_sampler_t **out);
void ns_sampler_destroy(ns_sampler_t **self_p);

typedef enum ns_sampler_event {
    NS_SAMPLER_EVENT_ITERATION = 1,   /* an iteration finished (state is consistent) */
    NS_SAMPLER_EVENT_END = 2          /* sampling finished (after finalisation and the final KS test) */
} ns_sampler_event_t;

/* Called by ns_sampler_run at every iteration boundary and once at the end.
 * Returning non-zero at an iteration boundary stops the loop with that code
 * (NS_ERR_INTERRUPTED for a clean stop); the return value at the end is
 * ignored. */
typedef int (*ns_sampler_hook_fn)(ns_sampler_t *sampler, ns_sampler_event_t event, void *ctx);
void ns_sampler_set_hook(ns_sampler_t *self, ns_sampler_hook_fn fn, void *ctx);

/* Run (or continue) sampling until the stopping criterion or
 * --max-iteration: verifies the model and draws the initial live points if
 * not done yet, loops, finalises when the criterion is met, runs the final
 * KS test. Returns NS_OK, NS_ERR_INTERRUPTED (saveable, run again or save),
 * or the error that stopped the run (logged). A finished sampler returns
 * NS_OK at once. */
int ns_sampler_run(ns_sampler_t *self);

/* After ns_sampler_run: log posterior weights, ESS and posterior samples
 * (--posterior-method). Logs nessai's post-processing lines. */
int ns_sampler_compute_posterior(ns_sampler_t *self);

/* The result dictionary of docs/algorithm.md §1.10 (history included) as a new cJSON
 * object; ns_sampler_compute_posterior must have run. Caller owns it. */
struct cJSON *ns_sampler_result_json(const ns_sampler_t *self);

/* Add the types of the result dictionary's integer keys and record arrays
 * to schema, for ns_hdf5_write_json (nessai's dtypes: parameters, logP and
 * logL float64, it int32, Python ints int64). NS_OK or NS_ERR_NOMEM. */
struct ns_h5_schema;
int ns_sampler_result_schema(const ns_sampler_t *self, struct ns_h5_schema *schema);

/* Write the posterior samples (nested = 0; ns_sampler_compute_posterior
 * must have run) or the nested samples (nested = 1) to path as CSV: a
 * header "<parameters>,logP,logL,it", then one row per sample, each value
 * the shortest text that reads back as the same double (nan, inf, -inf
 * for non-finite ones). Atomic (path.temp, then rename). NS_OK, or
 * NS_ERR_IO (logged). */
int ns_sampler_write_csv(const ns_sampler_t *self, const char *path, int nested);

/* One CSV value: the shortest %g text that reads back as the same double;
 * nan, inf, -inf as such (posterior.csv of either sampler). */
void ns_csv_put_double(FILE *f, double v);

/* The files beside result.json (docs/sampler.md, "Outputs"): posterior.csv,
 * nested_samples.csv with --nested-samples-csv, and with --plot nessai's
 * plots by running --plot-python on the nessai-plot program next to the
 * executable (NESSAI_PLOT_PROGRAM overrides its path). A plot that cannot
 * be drawn is a warning, never an error. NS_OK, or the CSV error. */
int ns_sampler_write_outputs(const ns_sampler_t *self, const ns_config_t *cfg, const char *output);

/* The plots of the run in output (either sampler's result.json) by python
 * running nessai-plot, as above: warnings only. */
void ns_sampler_plot(const char *python, const char *output);

/* result.json's "run" object, added to r: program, model, parameters,
 * evaluator and command line (either sampler's). Returns it (NULL if out of
 * memory). */
struct cJSON *ns_result_add_run(struct cJSON *r, ns_model_t *model, const ns_evaluator_t *ev,
                                int argc, char **argv);

/* delta_log_evidence and delta_in_sigma in run, when the model knows its
 * true ln Z. */
void ns_result_add_truth(struct cJSON *run, ns_model_t *model, double log_z, double log_z_err);

/* Record a signal-triggered checkpoint at the current iteration
 * (history "checkpoint_iterations"). */
void ns_sampler_note_checkpoint(ns_sampler_t *self);

/* Serialise / restore the complete state (section "SMPL", with the
 * integrator, the RNG and both proposals inside). load expects a sampler
 * freshly built with the same configuration and model, before any run.
 * NS_OK, NS_ERR_NOMEM, or NS_ERR_CORRUPT for bytes that do not fit. */
int ns_sampler_save(const ns_sampler_t *self, ns_buf_t *b);
int ns_sampler_load(ns_sampler_t *self, ns_buf_t *b);

/* Read-only views for the caller (logs, checkpoints, tests). */
long ns_sampler_iteration(const ns_sampler_t *self);
size_t ns_sampler_nlive(const ns_sampler_t *self);
uint64_t ns_sampler_seed(const ns_sampler_t *self);
double ns_sampler_log_evidence(const ns_sampler_t *self);
double ns_sampler_log_evidence_error(const ns_sampler_t *self);
double ns_sampler_information(const ns_sampler_t *self);
double ns_sampler_condition(const ns_sampler_t *self);
uint64_t ns_sampler_likelihood_evaluations(const ns_sampler_t *self);
double ns_sampler_likelihood_time(const ns_sampler_t *self);
double ns_sampler_training_time(const ns_sampler_t *self);
double ns_sampler_population_time(const ns_sampler_t *self);
/* The part of the population time spent in likelihood calls (the uninformed
 * proposals time their whole refill, likelihood batch included). */
double ns_sampler_population_likelihood_time(const ns_sampler_t *self);
/* Wall time spent in ns_sampler_run, over all runs (resumes included). */
double ns_sampler_sampling_time(const ns_sampler_t *self);
/* 1 once the live points were added to the integral (criterion met). */
int ns_sampler_finalised(const ns_sampler_t *self);
/* 1 once ns_sampler_run completed (finalised or --max-iteration). */
int ns_sampler_done(const ns_sampler_t *self);
double ns_sampler_final_p_value(const ns_sampler_t *self);
double ns_sampler_final_ks_statistic(const ns_sampler_t *self);
double ns_sampler_ess(const ns_sampler_t *self);
size_t ns_sampler_n_posterior(const ns_sampler_t *self);
size_t ns_sampler_n_nested(const ns_sampler_t *self);
/* Nested samples, ns_sampler_n_nested rows in the livepoint.h layout. */
const double *ns_sampler_nested_samples(const ns_sampler_t *self);
/* Live points (nlive rows, ascending logL; none after finalisation). */
const double *ns_sampler_live_points(const ns_sampler_t *self, size_t *n);
/* Insertion indices so far. */
const int64_t *ns_sampler_insertion_indices(const ns_sampler_t *self, size_t *n);
/* Name of the proposal in use ("rejection", "analytic", "flow"). */
const char *ns_sampler_proposal_name(const ns_sampler_t *self);

#ifdef __cplusplus
}
#endif
#endif
