/*
 * sampler.c - nessai's nested-sampling loop (docs/algorithm.md §1.2-§1.7, §2.1-§2.3).
 *
 * One iteration is split in two phases so that an interrupt can stop it
 * at any moment and leave a saveable state:
 *   draw phase   - draw from the active proposal until a point beats the
 *                  worst live point, retraining (check_state) when the pool
 *                  runs dry; nothing but the draw counter and the proposals
 *                  changes, and both are saved (in_consume, pending_count,
 *                  need_check);
 *   commit phase - integrator, nested samples, stopping quantity,
 *                  insertion: never interrupted.
 * nessai increments the integrator before drawing; nothing in the draw
 * phase reads what the commit phase changes, except the iteration number,
 * which the draw phase takes as iteration + 1 exactly as nessai sees it.
 */
#define _GNU_SOURCE /* qsort_r */
#include "sampler_internal.h"

#include "kstest.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ns_history_names[NS_H__COUNT] = {
    "likelihood_evaluations", "sampling_time", "iterations", "min_log_likelihood",
    "max_log_likelihood", "logZ", "dlogZ", "mean_acceptance", "training_iterations",
    "population_acceptance", "population_radii", "population_iterations", "rolling_p",
    "checkpoint_iterations",
};

const char *const ns_nf_phase_names[NS_NF__PHASES] = {"initial_live_points", "uninformed_proposal",
                                                       "flow_proposal"};

/* Streams of the run seed: sampler, uninformed proposal, verification, flow. */
enum { S_STREAM_SAMPLER = 0, S_STREAM_UNINFORMED = 1, S_STREAM_VERIFY = 2, S_STREAM_FLOW = 16 };

/* ---- evaluation: the one place where likelihood calls are counted ---- */

static int s_evaluate(void *ctx, const double *x, size_t n, double *logl)
{
    ns_sampler_t *self = ctx;
    if (n == 0)
        return NS_OK;
    double t0 = ns_now();
    int rc = ns_evaluator_evaluate(self->evaluator, x, n, self->d, logl);
    self->likelihood_time += ns_now() - t0;
    if (rc == NS_OK)
        self->n_eval += n;
    return rc;
}

/* Packing buffers *x (n x d) and *l (n) of at least n points. */
static int s_grow(const ns_sampler_t *self, double **x, double **l, size_t *cap, size_t n)
{
    if (n <= *cap)
        return NS_OK;
    double *nx = realloc(*x, n * self->d * sizeof(double));
    if (!nx)
        return NS_ERR_NOMEM;
    *x = nx;
    double *nl = realloc(*l, n * sizeof(double));
    if (!nl)
        return NS_ERR_NOMEM;
    *l = nl;
    *cap = n;
    return NS_OK;
}

static int s_evaluate_rows(void *ctx, double *rows, size_t n)
{
    ns_sampler_t *self = ctx;
    if (s_grow(self, &self->scratch_x, &self->scratch_l, &self->scratch_cap, n) != NS_OK)
        return NS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        memcpy(self->scratch_x + i * self->d, rows + i * self->st, self->d * sizeof(double));
    int rc = s_evaluate(ctx, self->scratch_x, n, self->scratch_l);
    if (rc != NS_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        rows[i * self->st + NS_LP_LOGL(self->d)] = self->scratch_l[i];
    return NS_OK;
}

/* evaluate_rows in the background (proposal.h rows_begin): the rows are
 * packed now, their logL written back, counted and timed by s_rows_end,
 * exactly as s_evaluate_rows would; the time charged is the time spent
 * starting and waiting, not the time the batch took. */
static int s_rows_begin(void *ctx, double *rows, size_t n)
{
    ns_sampler_t *self = ctx;
    if (self->bg_rows)
        return NS_ERR_STATE;
    if (n == 0)
        return NS_ERR_INVAL;
    if (s_grow(self, &self->bg_x, &self->bg_l, &self->bg_cap, n) != NS_OK)
        return NS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        memcpy(self->bg_x + i * self->d, rows + i * self->st, self->d * sizeof(double));
    double t0 = ns_now();
    int rc = ns_evaluator_begin(self->evaluator, self->bg_x, n, self->d, self->bg_l);
    self->likelihood_time += ns_now() - t0;
    if (rc != NS_OK)
        return rc;
    self->bg_rows = rows;
    self->bg_n = n;
    return NS_OK;
}

static int s_rows_poll(void *ctx)
{
    ns_sampler_t *self = ctx;
    return !self->bg_rows || ns_evaluator_poll(self->evaluator);
}

static int s_rows_end(void *ctx)
{
    ns_sampler_t *self = ctx;
    if (!self->bg_rows)
        return NS_ERR_STATE;
    double t0 = ns_now();
    int rc = ns_evaluator_end(self->evaluator);
    self->likelihood_time += ns_now() - t0;
    double *rows = self->bg_rows;
    size_t n = self->bg_n;
    self->bg_rows = NULL;
    self->bg_n = 0;
    if (rc != NS_OK)
        return rc;
    self->n_eval += n;
    for (size_t i = 0; i < n; i++)
        rows[i * self->st + NS_LP_LOGL(self->d)] = self->bg_l[i];
    return NS_OK;
}

static void s_uncount(void *ctx, size_t n)
{
    ns_sampler_t *self = ctx;
    self->n_eval -= n <= self->n_eval ? n : self->n_eval;
}

/* Keep the latest population; update_state moves it into the history
 * (nessai records one population per iteration, the last one). */
static void s_report_population(void *ctx, const ns_population_t *pop)
{
    ns_sampler_t *self = ctx;
    self->population_time += pop->time;
    if (pop->record) {
        self->pop = *pop;
        self->pop_pending = 1;
    }
}

/* ---- construction ---- */

int ns_sampler_new(const ns_config_t *cfg, ns_model_t *model, ns_evaluator_t *evaluator,
                   ns_proposal_factory_fn flow_factory, const char *output, ns_sampler_t **out)
{
    *out = NULL;
    ns_sampler_t *self = calloc(1, sizeof *self);
    if (!self)
        return NS_ERR_NOMEM;
    int rc = NS_ERR_NOMEM;
    self->model = model;
    self->evaluator = evaluator;
    self->output = ns_strdup(output ? output : ".");
    self->d = (size_t)ns_model_dim(model);
    self->st = NS_LP_STRIDE(self->d);
    self->nlive = (size_t)ns_config_int(cfg, "nlive");
    self->stopping = ns_config_double(cfg, "stopping");
    self->max_iteration = ns_config_is_set(cfg, "max-iteration") ? ns_config_int(cfg, "max-iteration") : 0;
    self->maximum_uninformed = ns_config_is_set(cfg, "maximum-uninformed")
                                   ? ns_config_double(cfg, "maximum-uninformed")
                                   : 2.0 * (double)self->nlive;
    self->acceptance_threshold = ns_config_double(cfg, "acceptance-threshold");
    if (ns_config_is_set(cfg, "uninformed-acceptance-threshold"))
        self->uninformed_threshold = ns_config_double(cfg, "uninformed-acceptance-threshold");
    else
        self->uninformed_threshold = self->acceptance_threshold < 0.1 ? 10.0 * self->acceptance_threshold
                                                                      : self->acceptance_threshold;
    self->analytic_priors = ns_config_bool(cfg, "analytic-priors");
    self->cooldown = ns_config_int(cfg, "cooldown");
    self->training_frequency = ns_config_is_set(cfg, "training-frequency")
                                   ? ns_config_double(cfg, "training-frequency")
                                   : INFINITY;
    self->train_on_empty = ns_config_bool(cfg, "train-on-empty");
    self->retrain_acceptance = ns_config_bool(cfg, "retrain-acceptance");
    self->reset_acceptance = ns_config_bool(cfg, "reset-acceptance");
    self->memory = ns_config_int(cfg, "memory");
    self->shrinkage = strcmp(ns_config_str(cfg, "shrinkage-expectation"), "t") == 0 ? NS_SHRINK_T
                                                                                     : NS_SHRINK_LOGT;
    self->multinomial = strcmp(ns_config_str(cfg, "posterior-method"), "multinomial_resampling") == 0;
    self->allow_multi_valued = ns_config_bool(cfg, "allow-multi-valued-likelihood");
    self->logging_interval = ns_config_is_set(cfg, "logging-interval") ? ns_config_int(cfg, "logging-interval")
                                                                       : (long)self->nlive;
    self->progress_interval = ns_config_double(cfg, "progress-interval");
    /* nessai uses nlive // 10 for both; at least 1 keeps tiny runs defined */
    self->history_every = self->nlive / 10 ? self->nlive / 10 : 1;
    self->acc_len = self->history_every;
    if (!ns_config_is_set(cfg, "seed")) {
        ns_error("sampler", "no seed in the configuration (internal: main sets one)");
        free(self->output);
        free(self);
        return NS_ERR_INVAL;
    }
    self->seed = (uint64_t)ns_config_int(cfg, "seed");

    self->live = malloc(self->nlive * self->st * sizeof(double));
    self->acc_ring = malloc(self->acc_len * sizeof(double));
    self->new_row = malloc(self->st * sizeof(double));
    self->ks_counts = malloc(self->nlive * sizeof(size_t));
    for (int ph = 0; ph < NS_NF__PHASES; ph++)
        if (!(self->nonfinite[ph].examples = malloc(NS_NF_EXAMPLES * self->d * sizeof(double))))
            goto fail;
    self->integ = ns_integrator_new(self->nlive, self->shrinkage);
    self->rng = ns_rng_new(self->seed, S_STREAM_SAMPLER);
    if (!self->output || !self->live || !self->acc_ring || !self->new_row || !self->ks_counts ||
        !self->integ || !self->rng)
        goto fail;

    self->condition = INFINITY;
    self->block_acceptance = 1.0;
    self->mean_block_acceptance = 1.0;
    self->mean_acceptance = NAN;
    self->logl_min = -INFINITY;
    self->logl_max = -INFINITY;
    self->completed_training = 1;
    self->final_ks_d = NAN;
    self->final_p = NAN;
    self->uninformed_sampling = self->maximum_uninformed > 0.0;

    self->env = (ns_proposal_env_t){
        .model = model,
        .dim = self->d,
        .nlive = self->nlive,
        .seed = self->seed,
        .stream = S_STREAM_UNINFORMED,
        .output = self->output,
        .evaluate = s_evaluate,
        .evaluate_rows = s_evaluate_rows,
        .uncount = s_uncount,
        .report_population = s_report_population,
        .ctx = self,
    };
    if (ns_evaluator_can_overlap(evaluator)) {
        self->env.rows_begin = s_rows_begin;
        self->env.rows_poll = s_rows_poll;
        self->env.rows_end = s_rows_end;
    }
    rc = self->analytic_priors ? ns_analytic_proposal_new(&self->env, 0, &self->uninformed)
                               : ns_rejection_proposal_new(&self->env, self->nlive, &self->uninformed);
    if (rc != NS_OK)
        goto fail;
    /* With an infinite uninformed stage and no acceptance switch the flow
     * can never be used: do not build it (nor check its rescaling). */
    int flow_needed = !(self->uninformed_sampling && isinf(self->maximum_uninformed) &&
                        self->uninformed_threshold <= 0.0);
    if (flow_factory && flow_needed) {
        ns_proposal_env_t fenv = self->env;
        fenv.stream = S_STREAM_FLOW;
        if ((rc = flow_factory(cfg, &fenv, &self->flow)) != NS_OK)
            goto fail;
    }
    if (!self->uninformed_sampling && self->flow)
        self->flow_active = 1;
    *out = self;
    return NS_OK;
fail:
    ns_sampler_destroy(&self);
    return rc;
}

void ns_sampler_destroy(ns_sampler_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ns_sampler_t *self = *self_p;
    ns_proposal_destroy(&self->uninformed);
    ns_proposal_destroy(&self->flow);
    ns_integrator_destroy(&self->integ);
    ns_rng_destroy(&self->rng);
    ns_dvec_free(&self->nested);
    ns_ivec_free(&self->insertion);
    for (int h = 0; h < NS_H__COUNT; h++)
        ns_dvec_free(&self->history[h]);
    free(self->live);
    free(self->acc_ring);
    free(self->new_row);
    free(self->ks_counts);
    for (int ph = 0; ph < NS_NF__PHASES; ph++)
        free(self->nonfinite[ph].examples);
    free(self->scratch_x);
    free(self->scratch_l);
    free(self->bg_x);
    free(self->bg_l);
    free(self->log_w);
    free(self->post_idx);
    free(self->output);
    free(self);
    *self_p = NULL;
}

void ns_sampler_set_hook(ns_sampler_t *self, ns_sampler_hook_fn fn, void *ctx)
{
    self->hook = fn;
    self->hook_ctx = ctx;
}

static ns_proposal_t *s_active(const ns_sampler_t *self) { return self->flow_active ? self->flow : self->uninformed; }

double ns_sampler_sampling_time(const ns_sampler_t *self)
{
    return self->sampling_time + (self->seg_start > 0 ? ns_now() - self->seg_start : 0.0);
}

/* Every draw goes through here: likelihood time spent inside an uninformed
 * refill is part of its population time (docs/algorithm.md §2.6 note e); keep that
 * share so the time split can count it once. */
static int s_draw(ns_sampler_t *self, ns_proposal_t *prop, const double *worst, double *out)
{
    double l0 = self->likelihood_time;
    int rc = prop->ops->draw(prop->impl, worst, out);
    if (prop == self->uninformed)
        self->population_likelihood_time += self->likelihood_time - l0;
    return rc;
}

/* ---- model verification (docs/algorithm.md §0): not counted as evaluations ---- */

static int s_verify_model(ns_sampler_t *self)
{
    const size_t d = self->d;
    ns_rng_t *rng = ns_rng_new(self->seed, S_STREAM_VERIFY);
    double *x = malloc(17 * d * sizeof(double));
    double logl[17], logp;
    int rc = (!rng || !x) ? NS_ERR_NOMEM : NS_OK, found = 0;
    for (int t = 0; rc == NS_OK && t < 1000 && !found; t++) {
        if ((rc = ns_model_new_point(self->model, rng, 1, x)) != NS_OK) {
            ns_error("sampler", "the model's new_point failed: %s", ns_model_last_error(self->model));
            break;
        }
        if (!ns_model_in_bounds(self->model, x))
            continue;
        if ((rc = ns_model_log_prior(self->model, x, 1, &logp)) != NS_OK) {
            ns_error("sampler", "the model's log_prior failed: %s", ns_model_last_error(self->model));
            break;
        }
        found = isfinite(logp);
    }
    if (rc == NS_OK && !found) {
        ns_error("sampler", "could not draw a point inside the prior bounds with a finite log-prior "
                 "in 1000 tries: check the model's bounds, log_prior and new_point");
        rc = NS_ERR_MODEL;
    }
    if (rc == NS_OK) {
        for (int k = 1; k < 17; k++)
            memcpy(x + (size_t)k * d, x, d * sizeof(double));
        unsigned long errors0 = ns_log_error_count();
        rc = ns_evaluator_evaluate(self->evaluator, x, 1, d, logl);
        if (rc == NS_OK)
            rc = ns_evaluator_evaluate(self->evaluator, x + d, 16, d, logl + 1);
        /* the evaluator normally says why itself: once is enough */
        if (rc != NS_OK && rc != NS_ERR_INTERRUPTED && ns_log_error_count() == errors0)
            ns_error("sampler", "evaluating the log-likelihood failed during model verification");
    }
    if (rc == NS_OK) {
        for (int k = 1; k < 17; k++) {
            if (memcmp(&logl[k], &logl[0], sizeof(double)) == 0)
                continue;
            if (self->allow_multi_valued) {
                ns_warn("sampler", "the log-likelihood gave %.17g then %.17g for the same point "
                        "(allowed by --allow-multi-valued-likelihood)", logl[0], logl[k]);
                break;
            }
            ns_error("sampler", "the log-likelihood is not deterministic: %.17g then %.17g for the same "
                     "point; make it return the same value every time (or pass "
                     "--allow-multi-valued-likelihood)", logl[0], logl[k]);
            rc = NS_ERR_MODEL;
            break;
        }
    }
    free(x);
    ns_rng_destroy(&rng);
    return rc;
}

/* ---- non-finite likelihoods: counted per stage, one warning per stage ---- */

/* One drawn point with a finite log-prior, of stage ph. Counts its logL if
 * it is not finite and keeps the first few coordinates for the warning.
 * Returns 1 if logL is not finite. */
static int s_nf_note(ns_sampler_t *self, int ph, const double *row)
{
    ns_nf_count_t *c = &self->nonfinite[ph];
    double logl = row[NS_LP_LOGL(self->d)];
    c->drawn++;
    if (isfinite(logl))
        return 0;
    if (isnan(logl))
        c->nan++;
    else if (logl < 0)
        c->neg_inf++;
    else
        c->pos_inf++;
    if (c->n_examples < NS_NF_EXAMPLES)
        memcpy(c->examples + c->n_examples++ * self->d, row, self->d * sizeof(double));
    return 1;
}

static uint64_t s_nf_total(const ns_nf_count_t *c) { return c->nan + c->neg_inf + c->pos_inf; }

/* The one warning of stage ph, when any of its likelihoods was not finite. */
static void s_nf_report(const ns_sampler_t *self, int ph)
{
    const ns_nf_count_t *c = &self->nonfinite[ph];
    uint64_t bad = s_nf_total(c);
    if (!bad)
        return;
    double pct = 100.0 * (double)bad / (double)c->drawn;
    char kinds[96] = "", ex[3 * 160 + 16] = "";
    size_t k = 0;
    if (c->nan)
        k += (size_t)snprintf(kinds + k, sizeof kinds - k, "%llu NaN", (unsigned long long)c->nan);
    if (c->neg_inf && k < sizeof kinds)
        k += (size_t)snprintf(kinds + k, sizeof kinds - k, "%s%llu -inf", k ? ", " : "",
                              (unsigned long long)c->neg_inf);
    if (c->pos_inf && k < sizeof kinds)
        snprintf(kinds + k, sizeof kinds - k, "%s%llu +inf", k ? ", " : "", (unsigned long long)c->pos_inf);
    size_t e = 0;
    for (size_t i = 0; i < c->n_examples && e < sizeof ex; i++) {
        char pt[160];
        ns_model_point_text(self->model, c->examples + i * self->d, pt, sizeof pt);
        e += (size_t)snprintf(ex + e, sizeof ex - e, "%s%s", i ? ", " : "", pt);
    }
    static const char *const where[NS_NF__PHASES] = {
        "while populating the initial live points", "by the uninformed proposal",
        "by the flow proposal"};
    char tail[256];
    if (ph == NS_NF_INITIAL)
        snprintf(tail, sizeof tail, "they were drawn again, so the evidence is computed over the region "
                 "where the likelihood is finite: it excludes about %.2f%% of the prior", pct);
    else if (ph == NS_NF_UNINFORMED)
        snprintf(tail, sizeof tail, "they were rejected (below every contour), so the evidence is computed "
                 "over the region where the likelihood is finite: it excludes about %.2f%% of the prior",
                 pct);
    else
        snprintf(tail, sizeof tail, "they were rejected (below every contour), so the evidence is computed "
                 "over the region where the likelihood is finite (%.2f%% of this proposal's draws, "
                 "not of the prior)", pct);
    ns_warn(NULL, "Non-finite log-likelihood for %llu of %llu points drawn %s (%.2f%%: %s), e.g. at %s; %s",
            (unsigned long long)bad, (unsigned long long)c->drawn, where[ph], pct, kinds,
            c->n_examples ? ex : "(none kept)", tail);
}

/* ---- initial live points (docs/algorithm.md §1.2) ---- */

typedef struct {
    const double *rows;   /* the live points */
    size_t st, col;       /* row stride, logL column */
} s_sort_ctx_t;

/* Ascending logL; ties keep their drawing order so the sort is reproducible. */
static int s_cmp_logl(const void *a, const void *b, void *arg)
{
    const s_sort_ctx_t *c = arg;
    const size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    double la = c->rows[ia * c->st + c->col], lb = c->rows[ib * c->st + c->col];
    if (la < lb)
        return -1;
    if (la > lb)
        return 1;
    return ia < ib ? -1 : (ia > ib);
}

static int s_sort_live(ns_sampler_t *self)
{
    size_t n = self->n_live;
    size_t *order = malloc(n * sizeof *order);
    double *copy = malloc(n * self->st * sizeof(double));
    if (!order || !copy) {
        free(order);
        free(copy);
        return NS_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    s_sort_ctx_t c = {self->live, self->st, NS_LP_LOGL(self->d)};
    qsort_r(order, n, sizeof *order, s_cmp_logl, &c);
    memcpy(copy, self->live, n * self->st * sizeof(double));
    for (size_t i = 0; i < n; i++)
        memcpy(self->live + i * self->st, copy + order[i] * self->st, self->st * sizeof(double));
    free(order);
    free(copy);
    return NS_OK;
}

static int s_populate_live_points(ns_sampler_t *self)
{
    const size_t d = self->d, step = (self->nlive + 9) / 10;
    if (self->n_live == 0)
        ns_info(NULL, "Populating initial live points");
    while (self->n_live < self->nlive) {
        double *row = self->new_row;
        int rc = s_draw(self, self->uninformed, NULL, row);
        if (rc != NS_OK)
            return rc;
        double logp = row[NS_LP_LOGP(d)], logl = row[NS_LP_LOGL(d)];
        /* NaN, +-inf logL and non-finite log-priors are drawn again; the
         * likelihood ones are counted for one warning below */
        if (isfinite(logp) && s_nf_note(self, NS_NF_INITIAL, row))
            ns_debug(NULL, "log-likelihood %g for a live point; the point is drawn again", logl);
        if (!isfinite(logp) || !isfinite(logl))
            continue;
        row[NS_LP_IT(d)] = 0.0;
        memcpy(self->live + self->n_live * self->st, row, self->st * sizeof(double));
        self->n_live++;
        if (self->n_live % step == 0)
            ns_info(NULL, "Populated %zu / %zu live points", self->n_live, self->nlive);
    }
    int rc = s_sort_live(self);
    if (rc != NS_OK)
        return rc;
    size_t dup = 0;
    for (size_t i = 1; i < self->nlive; i++) {
        double l = self->live[i * self->st + NS_LP_LOGL(d)];
        if (l == self->live[(i - 1) * self->st + NS_LP_LOGL(d)])
            dup++;
        if (l > self->logl_max)
            self->logl_max = l;
    }
    double l0 = self->live[NS_LP_LOGL(d)];
    if (l0 > self->logl_max)
        self->logl_max = l0;
    if (dup)
        ns_warn(NULL, "Initial live points contain %zu duplicated log-likelihood values", dup);
    s_nf_report(self, NS_NF_INITIAL);
    self->initialised = 1;
    return NS_OK;
}

/* ---- proposal schedule (docs/algorithm.md §2.2, §2.3) ---- */

/* Training data: the live points, plus the last `memory` nested samples
 * when enough exist. In the draw phase nessai has already appended the
 * dying point to the nested samples; count it the same way. */
static int s_train(ns_sampler_t *self, long it, int forced)
{
    const size_t st = self->st;
    size_t n_nested = self->nested.n / st + (self->in_consume ? 1 : 0);
    size_t extra = (self->memory > 0 && n_nested >= (size_t)self->memory) ? (size_t)self->memory : 0;
    size_t n = self->n_live + extra;
    double *data = malloc(n * st * sizeof(double));
    if (!data)
        return NS_ERR_NOMEM;
    memcpy(data, self->live, self->n_live * st * sizeof(double));
    if (extra) {
        /* the last `extra` of [nested..., worst (if in_consume)] */
        size_t from_nested = self->in_consume ? extra - 1 : extra;
        memcpy(data + self->n_live * st, self->nested.v + self->nested.n - from_nested * st,
               from_nested * st * sizeof(double));
        if (self->in_consume)
            memcpy(data + (n - 1) * st, self->live, st * sizeof(double));
    }
    ns_train_info_t info = {
        .iteration = it,
        .training_count = self->training_count,
        .mean_block_acceptance = self->mean_block_acceptance,
        .reset_full = self->training_count > 0 && self->reset_acceptance &&
                      self->mean_block_acceptance < self->acceptance_threshold,
        .forced = forced,
    };
    self->completed_training = 0;
    double t0 = ns_now();
    int rc = self->flow->ops->train(self->flow->impl, data, n, &info);
    self->training_time += ns_now() - t0;
    free(data);
    if (rc != NS_OK)
        return rc;
    self->training_count++;
    self->last_training_iteration = it;
    if ((rc = ns_dvec_push(&self->history[NS_H_TRAINING_ITERATIONS], (double)it)) != NS_OK)
        return rc;
    self->block_iteration = 0;
    self->block_acceptance = 0.0;
    self->completed_training = 1;
    return NS_OK;
}

/* check_state of nessai at iteration `it` (iteration + 1 in the draw phase). */
static int s_check_state(ns_sampler_t *self, long it)
{
    int force = 0;
    if (self->uninformed_sampling) {
        int want = self->mean_acceptance < self->uninformed_threshold ||
                   (double)it >= self->maximum_uninformed;
        if (!want)
            return NS_OK;
        if (!self->flow) {
            if (!self->no_flow_warned) {
                ns_warn(NULL, "No flow proposal is available: continuing with the uninformed proposal "
                        "(iteration %ld)", it);
                self->no_flow_warned = 1;
            }
            return NS_OK;
        }
        s_nf_report(self, NS_NF_UNINFORMED);
        ns_info(NULL, "Switching to FlowProposal");
        self->flow_active = 1;
        self->uninformed_sampling = 0;
        if (self->flow->ops->activate)
            self->flow->ops->activate(self->flow->impl);
        if (self->flow->ops->set_ns_acceptance)
            self->flow->ops->set_ns_acceptance(self->flow->impl, self->mean_block_acceptance);
        force = 1;
    }
    if (!self->flow_active || !self->flow->ops->train)
        return NS_OK;
    int train = 0;
    if (!self->completed_training) {
        train = force = 1;
    } else if (!self->flow->ops->is_populated(self->flow->impl) && self->train_on_empty) {
        train = force = 1;
    } else if (self->mean_block_acceptance < self->acceptance_threshold && self->retrain_acceptance) {
        train = 1;
    } else if ((double)(it - self->last_training_iteration) == self->training_frequency) {
        train = 1;
    }
    if (force)
        return s_train(self, it, 1);
    if (train) {
        if (it - self->last_training_iteration < self->cooldown) {
            ns_debug(NULL, "Not training, still cooling down!");
            return NS_OK;
        }
        return s_train(self, it, 0);
    }
    return NS_OK;
}

/* ---- one iteration (docs/algorithm.md §1.3, §1.4) ---- */

static int s_consume(ns_sampler_t *self)
{
    const size_t d = self->d, st = self->st;
    double *worst = self->live;
    const double logl_min = worst[NS_LP_LOGL(d)];
    ns_proposal_t *prop;
    double *nr = self->new_row;

    if (!self->in_consume) {
        self->in_consume = 1;
        self->pending_count = 0;
        self->need_check = 0;
    }
    for (;;) {
        if (self->need_check) {
            int rc = s_check_state(self, self->iteration + 1);
            if (rc != NS_OK)
                return rc;
            self->need_check = 0;
        }
        prop = s_active(self);
        int accepted = 0;
        for (;;) {
            int rc = s_draw(self, prop, worst, nr);
            if (rc != NS_OK)
                return rc;
            self->pending_count++;
            double logp = nr[NS_LP_LOGP(d)], logl = nr[NS_LP_LOGL(d)];
            /* NaN and -inf logL never beat the contour (counted for one
             * warning per stage); +inf always does and becomes a live point */
            if (logp != -INFINITY) {
                int ph = prop == self->flow ? NS_NF_FLOW : NS_NF_UNINFORMED;
                if (logl == INFINITY)
                    self->nonfinite[ph].drawn++;
                else
                    s_nf_note(self, ph, nr);
            }
            if (logp != -INFINITY && logl > logl_min) {
                accepted = 1;
                break;
            }
            if (!prop->ops->is_populated(prop->impl))
                break;
        }
        if (accepted)
            break;
        self->need_check = 1;
    }

    /* commit phase */
    int nonmono = ns_integrator_increment(self->integ, logl_min, 0);
    if (nonmono < 0)
        return -nonmono;
    if (nonmono)
        ns_warn(NULL, "Log-likelihood %.6f is not above the previous contour: the contours are not "
                "increasing", logl_min);
    int rc = ns_dvec_push_n(&self->nested, worst, st);
    if (rc != NS_OK)
        return rc;
    self->logl_min = logl_min;
    double log_z = ns_integrator_log_z(self->integ);
    /* iteration before the increment and logLmax before the new point (docs/algorithm.md §10.1) */
    self->condition = ns_logaddexp(log_z, self->logl_max - (double)self->iteration / (double)self->nlive) - log_z;
    self->iteration++;
    self->block_iteration++;
    nr[NS_LP_IT(d)] = (double)self->iteration;

    const double new_logl = nr[NS_LP_LOGL(d)];
    size_t index = ns_lp_insert(self->live, self->nlive, d, nr);
    if ((rc = ns_ivec_push(&self->insertion, (int64_t)index)) != NS_OK)
        return rc;

    double acc = 1.0 / (double)self->pending_count;
    self->block_acceptance += acc;
    self->acc_ring[self->acc_pos] = acc;
    self->acc_pos = (self->acc_pos + 1) % self->acc_len;
    if (self->acc_n < self->acc_len)
        self->acc_n++;
    if (new_logl > self->logl_max)
        self->logl_max = new_logl;
    self->mean_block_acceptance = self->block_acceptance / (double)self->block_iteration;
    double s = 0.0;
    for (size_t i = 0; i < self->acc_n; i++)
        s += self->acc_ring[i];
    self->mean_acceptance = s / (double)self->acc_n;
    self->in_consume = 0;

    if (ns_log_get_level() <= NS_LOG_DEBUG)
        ns_debug(NULL, "%5ld: n: %3lu b_acc: %.3f H: %.2f logL: %.5f --> %.5f dlogZ: %.3f logZ: %.3f "
                 "+/- %.3f logLmax: %.2f", self->iteration, (unsigned long)self->pending_count,
                 self->mean_block_acceptance, ns_integrator_information(self->integ), logl_min, new_logl,
                 self->condition, log_z, ns_integrator_error(self->integ), self->logl_max);
    return NS_OK;
}

/* ---- bookkeeping after an iteration (docs/algorithm.md §1.10 history, §1.9, §2.2) ---- */

static int s_ks_test(ns_sampler_t *self, int rolling)
{
    size_t n = self->insertion.n;
    const int64_t *idx = self->insertion.v;
    if (rolling && n > self->nlive) {
        idx += n - self->nlive;
        n = self->nlive;
    }
    double dstat, p;
    if (ns_ks_insertion_test(idx, n, self->nlive, self->ks_counts, &dstat, &p) != 0)
        return NS_OK;
    if (rolling) {
        ns_info(NULL, "it: %5ld: Rolling KS test: D=%.4g, p-value=%.4g", self->iteration, dstat, p);
        return ns_dvec_push(&self->history[NS_H_ROLLING_P], p);
    }
    self->final_ks_d = dstat;
    self->final_p = p;
    if (p < 0.05)
        ns_warn(NULL, "Final KS test: D=%.4g, p-value=%.4g", dstat, p);
    else
        ns_info(NULL, "Final KS test: D=%.4g, p-value=%.4g", dstat, p);
    return NS_OK;
}

static int s_update_state(ns_sampler_t *self, int force)
{
    int rc = NS_OK;
    if (self->pop_pending) {
        if ((rc = ns_dvec_push(&self->history[NS_H_POPULATION_ACCEPTANCE], self->pop.acceptance)) ||
            (rc = ns_dvec_push(&self->history[NS_H_POPULATION_RADII], self->pop.radius)) ||
            (rc = ns_dvec_push(&self->history[NS_H_POPULATION_ITERATIONS], (double)self->iteration)))
            return rc;
        self->pop_pending = 0;
    }
    if (self->iteration % (long)self->history_every == 0 || force) {
        double v[8] = {
            (double)self->n_eval, ns_sampler_sampling_time(self), (double)self->iteration, self->logl_min,
            self->logl_max, ns_integrator_log_z(self->integ), self->condition, self->mean_acceptance,
        };
        for (int h = 0; h < 8; h++)
            if ((rc = ns_dvec_push(&self->history[h], v[h])) != NS_OK)
                return rc;
    }
    if (self->iteration % (long)self->nlive == 0 || force) {
        if (!force && (rc = s_ks_test(self, 1)) != NS_OK)
            return rc;
        if (self->uninformed_sampling) {
            self->block_acceptance = 0.0;
            self->block_iteration = 0;
        }
    }
    ns_proposal_t *prop = s_active(self);
    if (prop->ops->set_ns_acceptance)
        prop->ops->set_ns_acceptance(prop->impl, self->mean_block_acceptance);
    return NS_OK;
}

static void s_log_state(const ns_sampler_t *self)
{
    ns_info(NULL, "it: %5ld: n eval: %llu H: %.2f dlogZ: %.3f logZ: %.3f +/- %.3f logLmax: %.2f",
            self->iteration, (unsigned long long)self->n_eval, ns_integrator_information(self->integ),
            self->condition, ns_integrator_log_z(self->integ), ns_integrator_error(self->integ),
            self->logl_max);
}

/* h:mm:ss of a number of seconds. */
static void s_hms(double sec, char *buf, size_t len)
{
    long t = sec > 0 ? (sec < 1e9 ? (long)(sec + 0.5) : 1000000000L) : 0;
    snprintf(buf, len, "%ld:%02d:%02d", t / 3600, (int)(t / 60 % 60), (int)(t % 60));
}

/* ln(exp(c) - 1) for c > 0, without overflow for large c. */
static double s_log_expm1(double c) { return c + log1p(-exp(-c)); }

/* The oldest history entry at or after iteration `from`: its iteration,
 * dlogZ and sampling time. 0 if there is none. */
static int s_history_at(const ns_sampler_t *self, double from, double *it, double *dlogz, double *t)
{
    const ns_dvec_t *hi = &self->history[NS_H_ITERATIONS], *hd = &self->history[NS_H_DLOGZ],
                    *ht = &self->history[NS_H_SAMPLING_TIME];
    size_t n = hi->n < hd->n ? hi->n : hd->n;
    if (ht->n < n)
        n = ht->n;
    size_t k = n;
    while (k > 0 && hi->v[k - 1] >= from)
        k--;
    if (k == n)
        return 0;
    *it = hi->v[k];
    *dlogz = hd->v[k];
    *t = ht->v[k];
    return 1;
}

/* Iterations and sampling seconds left until dlogZ reaches the stopping
 * value (docs/sampler.md, "Progress line"). dlogZ at iteration i is
 * ln(1 + exp(r)) with r = logLmax - i/nlive - lnZ, so the run stops when r
 * reaches r_stop = ln(exp(stopping) - 1), that is at
 *     i_end = nlive (logLmax - lnZ_end - r_stop).
 * lnZ_end is the evidence expected at the end: the sum so far plus the
 * live points' mean likelihood times the prior volume left; logLmax is
 * the largest likelihood found so far (an underestimate while the live
 * points still climb, so the estimate is low early and converges as the
 * run settles). The time is the iterations left at the pace of the last
 * nlive iterations. 0 (unknown) in the first nlive iterations and when a
 * quantity is not finite. */
static int s_remaining(const ns_sampler_t *self, double *its, double *secs)
{
    if (self->condition <= self->stopping) {
        *its = *secs = 0.0;
        return 1;
    }
    const size_t d = self->d;
    const double it = (double)self->iteration, nl = (double)self->nlive;
    double ia, ca, ta;
    if (self->iteration < (long)self->nlive || self->n_live == 0 || !(self->stopping > 0) ||
        !s_history_at(self, it - nl, &ia, &ca, &ta) || !(ia < it))
        return 0;
    double mx = -INFINITY, sum = 0.0;
    for (size_t i = 0; i < self->n_live; i++)
        mx = fmax(mx, self->live[i * self->st + NS_LP_LOGL(d)]);
    for (size_t i = 0; i < self->n_live; i++)
        sum += exp(self->live[i * self->st + NS_LP_LOGL(d)] - mx);
    double lz_end = ns_logaddexp(ns_integrator_log_z(self->integ),
                                 mx + log(sum / (double)self->n_live) - it / nl);
    double left = nl * (self->logl_max - lz_end - s_log_expm1(self->stopping)) - it;
    if (!isfinite(left))
        return 0;
    if (self->max_iteration > 0 && left > (double)(self->max_iteration - self->iteration))
        left = (double)(self->max_iteration - self->iteration);
    *its = ceil(left > 0 ? left : 0);
    *secs = *its * (ns_sampler_sampling_time(self) - ta) / (it - ia);
    (void)ca;
    return isfinite(*secs);
}

/* One line a person reads at a glance, on a wall-clock schedule, for long
 * runs where nlive iterations (nessai's state line) can take hours. */
static void s_log_progress(ns_sampler_t *self)
{
    double now = ns_now();
    if (!(self->progress_interval > 0.0) || isinf(self->progress_interval) ||
        now - self->last_progress < self->progress_interval)
        return;
    double dt = now - self->last_progress, ts = ns_sampler_sampling_time(self);
    double rate = dt > 0 ? (double)(self->n_eval - self->last_progress_eval) / dt : 0.0;
    double avg = ts > 0 ? (double)self->n_eval / ts : 0.0;
    self->last_progress = now;
    self->last_progress_eval = self->n_eval;
    char workers[32], elapsed[32], left[96], t_left[32];
    long live = ns_evaluator_live_workers(self->evaluator);
    if (live < 0)
        snprintf(workers, sizeof workers, "in-process");
    else
        snprintf(workers, sizeof workers, "workers %ld", live);
    s_hms(ts, elapsed, sizeof elapsed);
    double its, secs;
    if (s_remaining(self, &its, &secs)) {
        s_hms(secs, t_left, sizeof t_left);
        snprintf(left, sizeof left, "remaining ~%.0f it ~%s", its, t_left);
    } else {
        snprintf(left, sizeof left, "remaining unknown");
    }
    ns_info(NULL, "progress: it %ld, ln Z %.3f +/- %.3f, dlogZ %.3f (stop %g), %llu evals (%.0f/s, "
            "run %.0f/s), %s, elapsed %s, %s", self->iteration, ns_integrator_log_z(self->integ),
            ns_integrator_error(self->integ), self->condition, self->stopping,
            (unsigned long long)self->n_eval, rate, avg, workers, elapsed, left);
}

/* ---- finalisation (docs/algorithm.md §1.6) ---- */

static int s_finalise(ns_sampler_t *self)
{
    const size_t d = self->d, st = self->st;
    ns_info(NULL, "Sampling complete, finalising");
    for (size_t i = 0; i < self->n_live; i++) {
        const double *row = self->live + i * st;
        int nonmono = ns_integrator_increment(self->integ, row[NS_LP_LOGL(d)], self->nlive - i);
        if (nonmono < 0)
            return -nonmono;
        int rc = ns_dvec_push_n(&self->nested, row, st);
        if (rc != NS_OK)
            return rc;
    }
    self->n_live = 0;
    self->finalised = 1;
    int rc = s_update_state(self, 1);
    if (rc != NS_OK)
        return rc;
    ns_integrator_finalise(self->integ);
    ns_info(NULL, "Final ln-evidence: %.3f +/- %.3f", ns_integrator_log_z(self->integ),
            ns_integrator_error(self->integ));
    ns_info(NULL, "Information: %.2f", ns_integrator_information(self->integ));
    return NS_OK;
}

/* ---- the loop ---- */

static int s_loop(ns_sampler_t *self)
{
    int rc;
    if (!self->verified) {
        if ((rc = s_verify_model(self)) != NS_OK)
            return rc;
        self->verified = 1;
    }
    if (!self->initialised && (rc = s_populate_live_points(self)) != NS_OK)
        return rc;
    if (!self->uninformed_sampling && !self->flow)
        ns_warn(NULL, "No flow proposal is available: sampling with the uninformed proposal throughout");

    while (!(self->condition <= self->stopping)) {
        /* a run resumed at its --max-iteration (a new, lower limit) stops
         * before drawing anything more */
        if (self->max_iteration > 0 && self->iteration >= self->max_iteration) {
            ns_info(NULL, "Reached max iteration (%ld)", self->max_iteration);
            self->stopped_max = 1;
            break;
        }
        /* a pending interrupt is honoured before any new work, also before
         * the first iteration after a start or a resume */
        if (ns_interrupt_pending())
            return NS_ERR_INTERRUPTED;
        if (!self->in_consume && (rc = s_check_state(self, self->iteration)) != NS_OK)
            return rc;
        if ((rc = s_consume(self)) != NS_OK)
            return rc;
        if ((rc = s_update_state(self, 0)) != NS_OK)
            return rc;
        if (self->iteration % self->logging_interval == 0)
            s_log_state(self);
        s_log_progress(self);
        if (self->max_iteration > 0 && self->iteration >= self->max_iteration) {
            ns_info(NULL, "Reached max iteration (%ld)", self->max_iteration);
            self->stopped_max = 1;
            break;
        }
        if (self->hook && (rc = self->hook(self, NS_SAMPLER_EVENT_ITERATION, self->hook_ctx)) != NS_OK)
            return rc;
    }
    /* the stage still running reports its non-finite likelihoods (the
     * uninformed one did at the switch) */
    s_nf_report(self, self->flow_active ? NS_NF_FLOW : NS_NF_UNINFORMED);
    if (self->condition <= self->stopping) {
        ns_info(NULL, "Stopping with difference_log_evidence=%.3f (tolerance %g)", self->condition,
                self->stopping);
        if ((rc = s_finalise(self)) != NS_OK)
            return rc;
    }
    if ((rc = s_ks_test(self, 0)) != NS_OK)
        return rc;
    self->done = 1;
    return NS_OK;
}

int ns_sampler_run(ns_sampler_t *self)
{
    if (self->done)
        return NS_OK;
    self->seg_start = ns_now();
    self->last_progress = self->seg_start;
    self->last_progress_eval = self->n_eval;
    int rc = s_loop(self);
    self->sampling_time += ns_now() - self->seg_start;
    self->seg_start = 0;
    if (rc == NS_ERR_INTERRUPTED) {
        ns_info(NULL, "Sampling interrupted at iteration %ld", self->iteration);
        ns_evaluator_log_summary(self->evaluator);
        return rc;
    }
    if (rc != NS_OK)
        return rc;
    ns_info(NULL, "Total sampling time: %.3f s", self->sampling_time);
    ns_info(NULL, "Total training time: %.3f s", self->training_time);
    ns_info(NULL, "Total population time: %.3f s", self->population_time);
    ns_info(NULL, "Total likelihood evaluations: %llu", (unsigned long long)self->n_eval);
    ns_info(NULL, "Time spent evaluating likelihood: %.3f s", self->likelihood_time);
    ns_evaluator_log_summary(self->evaluator);
    if (self->hook)
        self->hook(self, NS_SAMPLER_EVENT_END, self->hook_ctx);
    return NS_OK;
}

void ns_sampler_note_checkpoint(ns_sampler_t *self)
{
    ns_dvec_push(&self->history[NS_H_CHECKPOINT_ITERATIONS], (double)self->iteration);
}

/* ---- read-only views ---- */

long ns_sampler_iteration(const ns_sampler_t *self) { return self->iteration; }
size_t ns_sampler_nlive(const ns_sampler_t *self) { return self->nlive; }
uint64_t ns_sampler_seed(const ns_sampler_t *self) { return self->seed; }
double ns_sampler_log_evidence(const ns_sampler_t *self) { return ns_integrator_log_z(self->integ); }
double ns_sampler_log_evidence_error(const ns_sampler_t *self) { return ns_integrator_error(self->integ); }
double ns_sampler_information(const ns_sampler_t *self) { return ns_integrator_information(self->integ); }
double ns_sampler_condition(const ns_sampler_t *self) { return self->condition; }
uint64_t ns_sampler_likelihood_evaluations(const ns_sampler_t *self) { return self->n_eval; }
double ns_sampler_likelihood_time(const ns_sampler_t *self) { return self->likelihood_time; }
double ns_sampler_training_time(const ns_sampler_t *self) { return self->training_time; }
double ns_sampler_population_time(const ns_sampler_t *self) { return self->population_time; }
double ns_sampler_population_likelihood_time(const ns_sampler_t *self)
{
    return self->population_likelihood_time;
}
int ns_sampler_finalised(const ns_sampler_t *self) { return self->finalised; }
int ns_sampler_done(const ns_sampler_t *self) { return self->done; }
double ns_sampler_final_p_value(const ns_sampler_t *self) { return self->final_p; }
double ns_sampler_final_ks_statistic(const ns_sampler_t *self) { return self->final_ks_d; }
double ns_sampler_ess(const ns_sampler_t *self) { return self->ess; }
size_t ns_sampler_n_posterior(const ns_sampler_t *self) { return self->n_post; }
size_t ns_sampler_n_nested(const ns_sampler_t *self) { return self->nested.n / self->st; }
const double *ns_sampler_nested_samples(const ns_sampler_t *self) { return self->nested.v; }

const double *ns_sampler_live_points(const ns_sampler_t *self, size_t *n)
{
    *n = self->n_live;
    return self->live;
}

const int64_t *ns_sampler_insertion_indices(const ns_sampler_t *self, size_t *n)
{
    *n = self->insertion.n;
    return self->insertion.v;
}

const char *ns_sampler_proposal_name(const ns_sampler_t *self) { return s_active(self)->ops->name; }
