/*
 * sampler_state.c - save and restore the sampler's complete state for
 * checkpoints (docs/algorithm.md §6): everything a run needs to continue exactly,
 * including an iteration whose draw phase was interrupted.
 */
#include "sampler_internal.h"

#include "nessai/error.h"
#include "nessai/log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_VERSION 1u
/* Generous bound on stored arrays: refuse absurd lengths from damaged bytes. */
#define S_MAX_ARRAY ((size_t)1 << 34)

enum {
    F_COMPLETED_TRAINING = 1 << 0,
    F_UNINFORMED = 1 << 1,
    F_VERIFIED = 1 << 2,
    F_INITIALISED = 1 << 3,
    F_FINALISED = 1 << 4,
    F_DONE = 1 << 5,
    F_STOPPED_MAX = 1 << 6,
    F_IN_CONSUME = 1 << 7,
    F_NEED_CHECK = 1 << 8,
    F_POP_PENDING = 1 << 9,
    F_FLOW_ACTIVE = 1 << 10,
    F_NO_FLOW_WARNED = 1 << 11,
    F_POP_RECORD = 1 << 12,
};

/* The non-finite likelihood counts follow the rest as a tagged section; a
 * checkpoint without it (written before the counts existed) loads with
 * zero counts. */
static void s_nf_save(const ns_sampler_t *self, ns_buf_t *b)
{
    ns_buf_put_tag(b, "NONF", 1u);
    for (int ph = 0; ph < NS_NF__PHASES; ph++) {
        const ns_nf_count_t *c = &self->nonfinite[ph];
        ns_buf_put_u64(b, c->drawn);
        ns_buf_put_u64(b, c->nan);
        ns_buf_put_u64(b, c->neg_inf);
        ns_buf_put_u64(b, c->pos_inf);
        ns_buf_put_f64s(b, c->examples, c->n_examples * self->d);
    }
}

static int s_nf_load(ns_sampler_t *self, ns_buf_t *b)
{
    ns_nf_count_t got[NS_NF__PHASES];
    double *ex[NS_NF__PHASES] = {0};
    uint32_t version;
    int rc = ns_buf_get_tag(b, "NONF", &version);
    if (rc == NS_OK && version != 1u)
        rc = NS_ERR_CORRUPT;
    for (int ph = 0; rc == NS_OK && ph < NS_NF__PHASES; ph++) {
        size_t n = 0;
        if ((rc = ns_buf_get_u64(b, &got[ph].drawn)) || (rc = ns_buf_get_u64(b, &got[ph].nan)) ||
            (rc = ns_buf_get_u64(b, &got[ph].neg_inf)) || (rc = ns_buf_get_u64(b, &got[ph].pos_inf)) ||
            (rc = ns_buf_get_f64s(b, &ex[ph], &n, NS_NF_EXAMPLES * self->d)))
            break;
        if (n % self->d) {
            rc = NS_ERR_CORRUPT;
            break;
        }
        got[ph].n_examples = n / self->d;
    }
    for (int ph = 0; ph < NS_NF__PHASES; ph++) {
        if (rc == NS_OK) {
            ns_nf_count_t *c = &self->nonfinite[ph];
            double *keep = c->examples;
            *c = got[ph];
            c->examples = keep;
            if (c->n_examples)
                memcpy(keep, ex[ph], c->n_examples * self->d * sizeof(double));
        }
        free(ex[ph]);
    }
    return rc;
}

int ns_sampler_save(const ns_sampler_t *self, ns_buf_t *b)
{
    ns_buf_put_tag(b, "SMPL", S_VERSION);
    ns_buf_put_u64(b, self->nlive);
    ns_buf_put_u64(b, self->d);
    ns_buf_put_u64(b, self->n_live);
    ns_buf_put_f64s(b, self->live, self->n_live * self->st);
    ns_buf_put_f64s(b, self->nested.v, self->nested.n);
    ns_integrator_save(self->integ, b);
    ns_buf_put_i64s(b, self->insertion.v, self->insertion.n);
    for (int h = 0; h < NS_H__COUNT; h++)
        ns_buf_put_f64s(b, self->history[h].v, self->history[h].n);
    ns_buf_put_i64(b, self->iteration);
    ns_buf_put_i64(b, self->block_iteration);
    ns_buf_put_f64(b, self->block_acceptance);
    ns_buf_put_f64(b, self->mean_block_acceptance);
    ns_buf_put_f64(b, self->mean_acceptance);
    ns_buf_put_f64s(b, self->acc_ring, self->acc_len);
    ns_buf_put_u64(b, self->acc_n);
    ns_buf_put_u64(b, self->acc_pos);
    ns_buf_put_f64(b, self->logl_min);
    ns_buf_put_f64(b, self->logl_max);
    ns_buf_put_f64(b, self->condition);
    ns_buf_put_u64(b, self->n_eval);
    ns_buf_put_f64(b, self->likelihood_time);
    ns_buf_put_f64(b, self->training_time);
    ns_buf_put_f64(b, self->population_time);
    ns_buf_put_f64(b, self->population_likelihood_time);
    ns_buf_put_f64(b, ns_sampler_sampling_time(self));
    ns_buf_put_i64(b, self->last_training_iteration);
    ns_buf_put_i64(b, self->training_count);
    uint32_t flags = (self->completed_training ? F_COMPLETED_TRAINING : 0) |
                     (self->uninformed_sampling ? F_UNINFORMED : 0) | (self->verified ? F_VERIFIED : 0) |
                     (self->initialised ? F_INITIALISED : 0) | (self->finalised ? F_FINALISED : 0) |
                     (self->done ? F_DONE : 0) | (self->stopped_max ? F_STOPPED_MAX : 0) |
                     (self->in_consume ? F_IN_CONSUME : 0) | (self->need_check ? F_NEED_CHECK : 0) |
                     (self->pop_pending ? F_POP_PENDING : 0) | (self->flow_active ? F_FLOW_ACTIVE : 0) |
                     (self->no_flow_warned ? F_NO_FLOW_WARNED : 0) | (self->pop.record ? F_POP_RECORD : 0);
    ns_buf_put_u32(b, flags);
    ns_buf_put_u64(b, self->pending_count);
    ns_buf_put_f64(b, self->pop.acceptance);
    ns_buf_put_f64(b, self->pop.radius);
    ns_buf_put_f64(b, self->pop.time);
    ns_buf_put_u64(b, self->pop.n_points);
    ns_buf_put_f64(b, self->final_ks_d);
    ns_buf_put_f64(b, self->final_p);
    ns_rng_put(b, self->rng);
    int rc = self->uninformed->ops->save(self->uninformed->impl, b);
    if (rc != NS_OK)
        return rc;
    ns_buf_put_u8(b, self->flow ? 1 : 0);
    if (self->flow && (rc = self->flow->ops->save(self->flow->impl, b)) != NS_OK)
        return rc;
    s_nf_save(self, b);
    return ns_buf_error(b);
}

int ns_sampler_load(ns_sampler_t *self, ns_buf_t *b)
{
    uint32_t version, flags;
    uint64_t nlive, d, n_live, acc_n, acc_pos, pop_n, n_eval, pending;
    int64_t iteration, block_iteration, last_training, training_count;
    double *nested = NULL, *hist[NS_H__COUNT] = {0};
    size_t n_nested = 0, n_hist[NS_H__COUNT] = {0}, n_ins = 0;
    int64_t *ins = NULL;
    int rc;
    if ((rc = ns_buf_get_tag(b, "SMPL", &version)) || (rc = ns_buf_get_u64(b, &nlive)) ||
        (rc = ns_buf_get_u64(b, &d)) || (rc = ns_buf_get_u64(b, &n_live)))
        return rc;
    if (version == S_VERSION && nlive != self->nlive) {
        ns_error("sampler", "the checkpoint was written with --nlive %llu; this run has --nlive %zu "
                 "(use the same value, or another --output)", (unsigned long long)nlive,
                 self->nlive);
        return NS_ERR_REFUSED;
    }
    if (version != S_VERSION || d != self->d || n_live > nlive) {
        ns_error("sampler", "the saved state does not match this run (section version %u, "
                 "dimension %llu, %llu live points); resume with the settings of the original run",
                 version, (unsigned long long)d, (unsigned long long)n_live);
        return NS_ERR_CORRUPT;
    }
    if ((rc = ns_buf_get_f64s_n(b, self->live, n_live * self->st)) != NS_OK)
        return rc;
    if ((rc = ns_buf_get_f64s(b, &nested, &n_nested, S_MAX_ARRAY)) != NS_OK)
        return rc;
    if (n_nested % self->st) {
        rc = NS_ERR_CORRUPT;
        goto fail;
    }
    if ((rc = ns_integrator_load(self->integ, b)) != NS_OK ||
        (rc = ns_buf_get_i64s(b, &ins, &n_ins, S_MAX_ARRAY)) != NS_OK)
        goto fail;
    for (int h = 0; h < NS_H__COUNT; h++)
        if ((rc = ns_buf_get_f64s(b, &hist[h], &n_hist[h], S_MAX_ARRAY)) != NS_OK)
            goto fail;
    if ((rc = ns_buf_get_i64(b, &iteration)) || (rc = ns_buf_get_i64(b, &block_iteration)) ||
        (rc = ns_buf_get_f64(b, &self->block_acceptance)) ||
        (rc = ns_buf_get_f64(b, &self->mean_block_acceptance)) ||
        (rc = ns_buf_get_f64(b, &self->mean_acceptance)) ||
        (rc = ns_buf_get_f64s_n(b, self->acc_ring, self->acc_len)) || (rc = ns_buf_get_u64(b, &acc_n)) ||
        (rc = ns_buf_get_u64(b, &acc_pos)) || (rc = ns_buf_get_f64(b, &self->logl_min)) ||
        (rc = ns_buf_get_f64(b, &self->logl_max)) || (rc = ns_buf_get_f64(b, &self->condition)) ||
        (rc = ns_buf_get_u64(b, &n_eval)) || (rc = ns_buf_get_f64(b, &self->likelihood_time)) ||
        (rc = ns_buf_get_f64(b, &self->training_time)) || (rc = ns_buf_get_f64(b, &self->population_time)) ||
        (rc = ns_buf_get_f64(b, &self->population_likelihood_time)) ||
        (rc = ns_buf_get_f64(b, &self->sampling_time)) || (rc = ns_buf_get_i64(b, &last_training)) ||
        (rc = ns_buf_get_i64(b, &training_count)) || (rc = ns_buf_get_u32(b, &flags)) ||
        (rc = ns_buf_get_u64(b, &pending)) || (rc = ns_buf_get_f64(b, &self->pop.acceptance)) ||
        (rc = ns_buf_get_f64(b, &self->pop.radius)) || (rc = ns_buf_get_f64(b, &self->pop.time)) ||
        (rc = ns_buf_get_u64(b, &pop_n)) || (rc = ns_buf_get_f64(b, &self->final_ks_d)) ||
        (rc = ns_buf_get_f64(b, &self->final_p)) || (rc = ns_rng_get(b, self->rng)))
        goto fail;
    if (acc_n > self->acc_len || acc_pos >= self->acc_len || iteration < 0 ||
        n_ins != (size_t)iteration) {
        rc = NS_ERR_CORRUPT;
        goto fail;
    }
    if ((rc = self->uninformed->ops->load(self->uninformed->impl, b)) != NS_OK)
        goto fail;
    uint8_t has_flow;
    if ((rc = ns_buf_get_u8(b, &has_flow)) != NS_OK)
        goto fail;
    if (has_flow && !self->flow) {
        ns_error("sampler", "the saved run used a flow proposal, which this build does not have");
        rc = NS_ERR_STATE;
        goto fail;
    }
    if (has_flow && (rc = self->flow->ops->load(self->flow->impl, b)) != NS_OK)
        goto fail;
    for (int ph = 0; ph < NS_NF__PHASES; ph++) {
        ns_nf_count_t *c = &self->nonfinite[ph];
        c->drawn = c->nan = c->neg_inf = c->pos_inf = 0;
        c->n_examples = 0;
    }
    if (ns_buf_remaining(b) > 0 && (rc = s_nf_load(self, b)) != NS_OK)
        goto fail;

    ns_dvec_free(&self->nested);
    self->nested = (ns_dvec_t){nested, n_nested, n_nested};
    ns_ivec_free(&self->insertion);
    self->insertion = (ns_ivec_t){ins, n_ins, n_ins};
    for (int h = 0; h < NS_H__COUNT; h++) {
        ns_dvec_free(&self->history[h]);
        self->history[h] = (ns_dvec_t){hist[h], n_hist[h], n_hist[h]};
    }
    self->n_live = n_live;
    self->iteration = iteration;
    self->block_iteration = block_iteration;
    self->acc_n = acc_n;
    self->acc_pos = acc_pos;
    self->n_eval = n_eval;
    self->last_training_iteration = last_training;
    self->training_count = training_count;
    self->pending_count = pending;
    self->pop.n_points = pop_n;
    self->completed_training = !!(flags & F_COMPLETED_TRAINING);
    self->uninformed_sampling = !!(flags & F_UNINFORMED);
    self->verified = !!(flags & F_VERIFIED);
    self->initialised = !!(flags & F_INITIALISED);
    self->finalised = !!(flags & F_FINALISED);
    self->done = !!(flags & F_DONE);
    self->stopped_max = !!(flags & F_STOPPED_MAX);
    self->in_consume = !!(flags & F_IN_CONSUME);
    self->need_check = !!(flags & F_NEED_CHECK);
    self->pop_pending = !!(flags & F_POP_PENDING);
    self->flow_active = !!(flags & F_FLOW_ACTIVE) && self->flow;
    self->no_flow_warned = !!(flags & F_NO_FLOW_WARNED);
    self->pop.record = !!(flags & F_POP_RECORD);
    /* A run that stopped at its --max-iteration goes on when resumed with
     * a higher limit or none: the loop continues where it broke off, as
     * the run with the new limit would have. */
    if (self->done && self->stopped_max && !self->finalised &&
        (self->max_iteration <= 0 || self->iteration < self->max_iteration)) {
        ns_info("sampler", "continuing the run stopped at iteration %ld by --max-iteration",
                self->iteration);
        self->done = 0;
        self->stopped_max = 0;
    }
    return NS_OK;
fail:
    free(nested);
    free(ins);
    for (int h = 0; h < NS_H__COUNT; h++)
        free(hist[h]);
    return rc;
}
