/*
 * flow_proposal_impl.h - the FlowProposal's state, shared by its three
 * files: flow_proposal.c (factory, draws, training), flow_population.c
 * (pool population and latent radius) and flow_proposal_state.c
 * (checkpoint save/load and statistics). Internal to the flow library.
 */
#ifndef NS_FLOW_PROPOSAL_IMPL_H
#define NS_FLOW_PROPOSAL_IMPL_H

#include "flow.h"
#include "flow_proposal.h"
#include "flow_train.h"
#include "reparam.h"

#define NS_FP_MOD "flow"

enum { RM_CONSTANT_VOLUME = 0, RM_ADAPTIVE = 1, RM_FIXED = 2 };

typedef struct {
    ns_proposal_env_t env;       /* borrowed callbacks and model */
    size_t d;                    /* model parameters */
    size_t dp;                   /* flow inputs d' (angles add columns) */
    size_t stride;               /* d + 3 */

    /* configuration */
    ns_flow_config_t fcfg;
    ns_train_config_t tcfg;
    int truncate;                /* latent-radius rule on */
    int radius_mode;             /* RM_* */
    double fixed_radius;         /* fixed mode (NAN unset) */
    double fuzz;                 /* radius multiplier (from expansion_fraction or --fuzz) */
    double r_cv;                 /* constant-volume radius chi_ppf(volume_fraction, d') */
    double volume_fraction;
    double max_radius, min_radius; /* NAN = no clip */
    int radius_with_all;
    int use_min_log_q, use_lthreshold;
    double temperature;          /* latent temperature (1 = none) */
    size_t poolsize, drawsize, max_draws;
    int update_poolsize;
    double max_scale;
    long reset_weights, reset_perms, reset_flow;
    int threads;
    int pop_f32;                 /* population inverse pass in float32 */
    int train_f32;               /* training passes in float32 */
    char *weights_path;          /* <output>/proposal/model.flow */

    /* state */
    ns_reparam_t *rp;
    ns_flow_t *flow;
    ns_adamw_t *opt;
    ns_rng_t *rng_train;         /* init, resets, split, shuffles */
    ns_rng_t *rng_pop;           /* latent draws, rejection, pool order */
    double ns_acceptance;
    long trainings;              /* completed trainings */
    double min_log_q;            /* of the last training points */
    double *radius_data;         /* prime rows for compute_radius_with_all */
    size_t radius_n;

    /* pool */
    double *pool;                /* rows of stride doubles, capacity pool_cap */
    size_t pool_cap, pool_n;
    size_t *order;               /* remaining indices, draws pop from the end */
    size_t remaining;
    int populated;

    /* population workspace (drawsize rows) */
    double *z, *xp, *x, *logq, *logj, *logp, *logl;
    double *lpr;                 /* prime-space prior of drawn radii (has_lpr) */
    int has_lpr;
    unsigned char *rng_snap;     /* rng_pop state at the start of a population */

    /* counters */
    long populations;
    double total_draws, total_accepted;
    double last_radius, last_acceptance;
    double total_epochs;         /* epochs over all trainings */
    /* wall seconds in this process (not checkpointed; result.json statistics) */
    double time_train;           /* whole training calls */
    double time_fit;             /* the epochs inside them */
    double time_pop;             /* populations, likelihood calls excluded */
    double time_inverse;         /* the inverse flow pass inside populations */
    ns_train_stats_t last_train;
} s_fp_t;

/* Fill the pool (docs/algorithm.md §2.6); worst may be NULL. flow_population.c */
int ns_fp_populate(s_fp_t *s, const double *worst);

/* ns_proposal_ops_t save / load / stats_json. flow_proposal_state.c */
int ns_fp_save(const void *impl, ns_buf_t *b);
int ns_fp_load(void *impl, ns_buf_t *b);
void ns_fp_stats_json(const void *impl, struct cJSON *obj);
int ns_fp_stats_schema(const void *impl, struct ns_h5_schema *schema, const char *prefix);

#endif
