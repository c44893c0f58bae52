/*
 * coordinator/sampler/sampler_internal.h - the sampler's state, shared by
 * sampler.c (loop), sampler_state.c (save/load) and sampler_result.c
 * (posterior, result.json). Not part of the public interface.
 */
#ifndef NS_SAMPLER_INTERNAL_H
#define NS_SAMPLER_INTERNAL_H

#include "integrator.h"
#include "nessai/rng.h"
#include "sampler.h"
#include "vec.h"

/* History series of docs/algorithm.md §1.10, in result.json order. */
enum {
    NS_H_LIKELIHOOD_EVALUATIONS,
    NS_H_SAMPLING_TIME,
    NS_H_ITERATIONS,
    NS_H_MIN_LOG_LIKELIHOOD,
    NS_H_MAX_LOG_LIKELIHOOD,
    NS_H_LOGZ,
    NS_H_DLOGZ,
    NS_H_MEAN_ACCEPTANCE,
    NS_H_TRAINING_ITERATIONS,
    NS_H_POPULATION_ACCEPTANCE,
    NS_H_POPULATION_RADII,
    NS_H_POPULATION_ITERATIONS,
    NS_H_ROLLING_P,
    NS_H_CHECKPOINT_ITERATIONS,
    NS_H__COUNT
};
extern const char *const ns_history_names[NS_H__COUNT];

/* Stages whose non-finite likelihoods are counted and reported apart
 * (docs/sampler.md, "Non-finite likelihoods"), in result.json order. */
enum { NS_NF_INITIAL, NS_NF_UNINFORMED, NS_NF_FLOW, NS_NF__PHASES };
extern const char *const ns_nf_phase_names[NS_NF__PHASES];
#define NS_NF_EXAMPLES 3

typedef struct ns_nf_count {
    uint64_t drawn;        /* points drawn with a finite log-prior (their logL was looked at) */
    uint64_t nan;          /* of those, logL NaN */
    uint64_t neg_inf;      /* logL -inf */
    uint64_t pos_inf;      /* logL +inf (skipped only while populating the initial live points) */
    size_t n_examples;     /* coordinates kept of the first non-finite points */
    double *examples;      /* NS_NF_EXAMPLES x d, owned */
} ns_nf_count_t;

struct ns_sampler {
    /* --- configuration (from the option table; not saved) --- */
    ns_model_t *model;             /* borrowed */
    ns_evaluator_t *evaluator;     /* borrowed */
    char *output;                  /* owned copy of the run directory */
    size_t d;                      /* model dimension */
    size_t st;                     /* row stride d + 3 */
    size_t nlive;                  /* live points */
    double stopping;               /* dlogZ tolerance */
    long max_iteration;            /* 0 = none */
    double maximum_uninformed;     /* iterations on the prior (may be inf); 0 = stage off */
    double uninformed_threshold;   /* switch when mean acceptance falls below */
    double acceptance_threshold;   /* retrain / reset threshold */
    int analytic_priors;           /* AnalyticProposal instead of RejectionProposal */
    long cooldown;                 /* iterations between non-forced trainings */
    double training_frequency;     /* train every this many iterations (inf = never) */
    int train_on_empty;            /* retrain when the pool is exhausted */
    int retrain_acceptance;        /* retrain on low block acceptance */
    int reset_acceptance;          /* full flow reset on low block acceptance */
    long memory;                   /* nested samples added to the training data (0 = off) */
    ns_shrinkage_t shrinkage;      /* integrator expectation */
    int multinomial;               /* posterior by multinomial resampling */
    int allow_multi_valued;        /* skip the determinism check failure */
    long logging_interval;         /* iterations between state lines */
    double progress_interval;      /* seconds between progress lines (0 / inf = off) */
    size_t history_every;          /* nlive // 10, at least 1 */
    size_t acc_len;                /* acceptance ring length, nlive // 10, at least 1 */
    uint64_t seed;                 /* run seed */

    /* --- proposals --- */
    ns_proposal_env_t env;             /* environment handed to proposals */
    ns_proposal_t *uninformed;         /* owned: rejection or analytic */
    ns_proposal_t *flow;               /* owned, NULL without a flow factory */
    int flow_active;                   /* 1 once switched to the flow proposal */
    int no_flow_warned;                /* the missing-flow warning was given */

    /* --- state (saved) --- */
    double *live;                  /* nlive rows, ascending logL */
    size_t n_live;                 /* rows filled (< nlive while populating, 0 after finalise) */
    ns_dvec_t nested;              /* nested samples, rows */
    ns_integrator_t *integ;        /* evidence */
    ns_ivec_t insertion;           /* insertion indices */
    ns_dvec_t history[NS_H__COUNT];
    long iteration;
    long block_iteration;
    double block_acceptance;
    double mean_block_acceptance;
    double mean_acceptance;        /* NAN while the ring is empty */
    double *acc_ring;              /* last acc_len values of 1/count */
    size_t acc_n, acc_pos;         /* entries used, next slot */
    double logl_min, logl_max;
    double condition;              /* dlogZ stopping quantity, +inf at the start */
    uint64_t n_eval;               /* likelihood evaluations (docs/algorithm.md §5.4) */
    double likelihood_time;        /* wall seconds inside the evaluator */
    double training_time;
    double population_time;
    double population_likelihood_time; /* part of population_time spent in likelihood calls
                                        * (uninformed refills include their batch) */
    double sampling_time;          /* accumulated over finished run segments */
    long last_training_iteration;
    long training_count;
    int completed_training;        /* 0 while a training has not finished */
    int uninformed_sampling;       /* 1 during the uninformed stage */
    int verified;                  /* model verification done */
    int initialised;               /* initial live points complete */
    int finalised;                 /* live points added to the integral */
    int done;                      /* run finished (finalised or max iteration) */
    int stopped_max;               /* left the loop on --max-iteration */
    int in_consume;                /* an iteration's draw phase is under way */
    uint64_t pending_count;        /* draws consumed in that phase so far */
    int need_check;                /* the pool ran dry: check_state before drawing */
    int pop_pending;               /* a population waits to enter the history */
    ns_population_t pop;           /* that population */
    double final_ks_d, final_p;    /* final KS test, NAN before */
    ns_nf_count_t nonfinite[NS_NF__PHASES]; /* non-finite likelihoods per stage */
    ns_rng_t *rng;                 /* sampler stream (posterior draws) */

    /* --- transient --- */
    double seg_start;              /* start of the current run segment, 0 when not running */
    double last_progress;          /* ns_now() of the last progress line */
    uint64_t last_progress_eval;   /* n_eval at the last progress line */
    ns_sampler_hook_fn hook;
    void *hook_ctx;
    double *scratch_x;             /* packing buffer for evaluate_rows */
    size_t scratch_cap;            /* its size in points */
    double *scratch_l;             /* logL buffer for evaluate_rows */
    double *bg_x, *bg_l;           /* the same for the batch in the background (rows_begin) */
    size_t bg_cap;                 /* their size in points */
    double *bg_rows;               /* rows of that batch, NULL when none is in flight */
    size_t bg_n;                   /* its number of rows */
    double *new_row;               /* one row */
    size_t *ks_counts;             /* nlive counts for the KS tests */

    /* --- posterior (after ns_sampler_compute_posterior) --- */
    double *log_w;                 /* nested-sample log weights */
    size_t *post_idx;              /* posterior sample indices into nested */
    size_t n_post;
    double ess;
    int have_posterior;
};

#endif
