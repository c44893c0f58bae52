/*
 * ins.c - the importance nested sampler's loop (docs/algorithm.md §12.2):
 * the training and i.i.d. sample sets, one flow per level, the mixture,
 * the evidence and the posterior.
 *
 * Random streams, all from --seed (§12.9): the prior draws and the
 * rescaling check, the flows' initial weights and permutations, the
 * training splits and shuffles, the flows' draws, the posterior
 * resampling.
 */
#include "ins.h"
#include "ins_math.h"
#include "reparam.h"
#include "sampler.h"

#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/rng.h"
#include "nessai/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define M "ins"

enum {
    S_STREAM_PRIOR = 200, /* initial cube draws, then the rescaling check */
    S_STREAM_FLOW,        /* initial weights and permutations of each level's flow */
    S_STREAM_TRAIN,       /* training/validation splits and epoch shuffles */
    S_STREAM_DRAW,        /* latent draws of the flows */
    S_STREAM_POST,        /* posterior resampling */
    S_STREAM_VERIFY,      /* the point of the start-up determinism check */
};

/* The history series, one value per level (result.json "history"). */
enum {
    H_LIKELIHOOD_EVALUATIONS, H_THRESHOLD, H_LOGZ, H_LOGDZ, H_ESS, H_RATIO, H_N_REMOVED,
    H_N_ADDED, H_N_LIVE, H_N_TRAIN, H_MIN_LOGL, H_MEDIAN_LOGL, H_MAX_LOGL, H_SAMPLES_ENTROPY,
    H_LIVE_ESS, H_TRAINING_LOGZ, H__COUNT
};
static const char *const s_hist_names[H__COUNT] = {
    "likelihood_evaluations", "logL_threshold", "logZ", "logdZ", "n_post",
    "stopping_criteria_ratio", "n_removed", "n_added", "n_live", "n_training",
    "min_log_likelihood", "median_logL", "max_log_likelihood", "samples_entropy",
    "live_points_ess", "training_logZ"};

/* One sample set: rows sorted by ascending logL; log_q has kc columns per
 * row, the first nc (prior, then one per flow) in use. */
typedef struct {
    size_t n, cap, kc;
    double *u, *x;                     /* n x d */
    double *logL, *logP, *logU, *logQ, *logW, *it;
    unsigned char *live;
    double *log_q;                     /* n x kc */
    double log_z, log_z_err, log_z_prev;
} s_set_t;

struct ns_ins {
    ns_ins_config_t cfg;
    ns_model_t *model;
    ns_evaluator_t *ev;
    size_t d;
    ns_reparam_t *rp;                  /* logit on [0, 1]^d */
    ns_rng_t *rng_prior, *rng_flow, *rng_train, *rng_draw, *rng_post;
    s_set_t sets[2];                   /* training, i.i.d. */
    s_set_t *ts, *is;                  /* is == ts without draw_iid_live */
    ns_flow_t **flows;                 /* one per level */
    size_t n_flows, flows_cap;
    size_t *counts;                    /* samples per component (prior first) */
    double *alpha, *log_alpha;
    long iteration;
    double threshold, criterion;
    uint64_t n_likelihood;
    uint64_t nf_nan, nf_neg_inf;       /* NaN and -inf likelihoods so far */
    int nf_warned;                     /* the first NaN batch has been reported */
    double t_sampling, t_likelihood, t_training, t_draw, t_update;
    double *hist[H__COUNT];
    size_t n_hist, hist_cap;
    int finalised;
    double ess;
    double *post_logw;                 /* IS posterior log-weights, sorted order */
    size_t *post_idx, n_post;          /* posterior draw: IS rows */
    double *tmp, *tmp2, *tmp3;         /* scratch, tmp_cap rows x d each */
    size_t tmp_cap;
    ns_ins_hook_fn hook;               /* called at every level boundary */
    void *hook_ctx;
    ns_buf_t snap;                     /* the state at the last boundary (hook set) */
    int have_snap, loaded;
    int released;                      /* ns_ins_release_densities was called */
};

static const char *const s_crit_names[] = {"ratio", "ratio_ns", "dlogZ", "ess", "Z_err",
                                            "fractional_error"};
static const char *const s_crit_keys[] = {"log_evidence_ratio", "log_evidence_ratio_ns",
                                           "difference_log_evidence", "ess", "evidence_error",
                                           "fractional_error"};

ns_ins_criterion_t ns_ins_criterion_from_name(const char *name)
{
    for (int c = 0; name && c <= NS_INS_FRACTIONAL_ERROR; c++)
        if (strcmp(name, s_crit_names[c]) == 0)
            return (ns_ins_criterion_t)c;
    return NS_INS_RATIO;
}

const char *ns_ins_criterion_name(ns_ins_criterion_t c)
{
    return c <= NS_INS_FRACTIONAL_ERROR ? s_crit_names[c] : "?";
}

const char *ns_ins_criterion_key(ns_ins_criterion_t c)
{
    return c <= NS_INS_FRACTIONAL_ERROR ? s_crit_keys[c] : "?";
}

int ns_ins_criterion_met(ns_ins_criterion_t c, double value, double tol)
{
    return c == NS_INS_ESS ? value >= tol : value <= tol;
}

ns_ins_config_t ns_ins_config_default(size_t d, uint64_t seed)
{
    ns_ins_config_t c;
    memset(&c, 0, sizeof c);
    c.nlive = 5000;
    c.n_initial = 5000;
    c.q = 0.5;
    c.min_samples = 500;
    c.min_remove = 1;
    c.reset_flow = 1;
    c.tolerance = 0.0;
    c.min_iteration = -1;
    c.max_iteration = -1;
    c.draw_iid_live = 1;
    c.eps = 1e-8;
    c.seed = seed;
    c.flow = ns_flow_config_default(d);
    c.train = ns_train_config_default();
    c.train_f32 = 1;
    c.threads = 1;
    return c;
}

/* ---- sample sets ---- */

void ns_ins_release_densities(ns_ins_t *self)
{
    if (!self || !self->finalised)
        return;
    for (int k = 0; k < 2; k++) {
        free(self->sets[k].log_q);
        self->sets[k].log_q = NULL;
    }
    self->released = 1;
}

static void s_set_free(s_set_t *s)
{
    free(s->u);
    free(s->x);
    free(s->logL);
    free(s->logP);
    free(s->logU);
    free(s->logQ);
    free(s->logW);
    free(s->it);
    free(s->live);
    free(s->log_q);
    memset(s, 0, sizeof *s);
}

static int s_grow(void *pp, size_t n, size_t size)
{
    void **p = pp;
    void *q = realloc(*p, (n ? n : 1) * size);
    if (!q)
        return NS_ERR_NOMEM;
    *p = q;
    return NS_OK;
}

/* Room for n rows of d parameters and kc log_q columns. */
static int s_set_reserve(s_set_t *s, size_t n, size_t d, size_t kc)
{
    if (kc > s->kc) {
        size_t nk = kc > 2 * s->kc ? kc : 2 * s->kc;
        double *q = malloc((s->cap ? s->cap : 1) * nk * sizeof *q);
        if (!q)
            return NS_ERR_NOMEM;
        for (size_t i = 0; i < s->n; i++)
            memcpy(q + i * nk, s->log_q + i * s->kc, s->kc * sizeof *q);
        free(s->log_q);
        s->log_q = q;
        s->kc = nk;
    }
    if (n <= s->cap)
        return NS_OK;
    size_t c = n > 2 * s->cap ? n : 2 * s->cap;
    if (s_grow(&s->u, c * d, sizeof(double)) || s_grow(&s->x, c * d, sizeof(double)) ||
        s_grow(&s->logL, c, sizeof(double)) || s_grow(&s->logP, c, sizeof(double)) ||
        s_grow(&s->logU, c, sizeof(double)) || s_grow(&s->logQ, c, sizeof(double)) ||
        s_grow(&s->logW, c, sizeof(double)) || s_grow(&s->it, c, sizeof(double)) ||
        s_grow(&s->live, c, 1) || s_grow(&s->log_q, c * s->kc, sizeof(double)))
        return NS_ERR_NOMEM;
    s->cap = c;
    return NS_OK;
}

/* Reorder rows so that row i becomes old row perm[i]. */
static int s_set_permute(s_set_t *s, const size_t *perm, size_t d)
{
    size_t n = s->n, w = d > s->kc ? d : s->kc;
    double *t = malloc((n ? n : 1) * w * sizeof *t);
    unsigned char *tl = malloc(n ? n : 1);
    if (!t || !tl) {
        free(t);
        free(tl);
        return NS_ERR_NOMEM;
    }
    double *mats[2] = {s->u, s->x};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < n; i++)
            memcpy(t + i * d, mats[k] + perm[i] * d, d * sizeof *t);
        memcpy(mats[k], t, n * d * sizeof *t);
    }
    for (size_t i = 0; i < n; i++)
        memcpy(t + i * s->kc, s->log_q + perm[i] * s->kc, s->kc * sizeof *t);
    memcpy(s->log_q, t, n * s->kc * sizeof *t);
    double *vecs[7] = {s->logL, s->logP, s->logU, s->logQ, s->logW, s->it, NULL};
    for (int k = 0; vecs[k]; k++) {
        for (size_t i = 0; i < n; i++)
            t[i] = vecs[k][perm[i]];
        memcpy(vecs[k], t, n * sizeof *t);
    }
    for (size_t i = 0; i < n; i++)
        tl[i] = s->live[perm[i]];
    memcpy(s->live, tl, n);
    free(t);
    free(tl);
    return NS_OK;
}

static const double *s_sort_key;
static int s_cmp_rows(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    double x = s_sort_key[i], y = s_sort_key[j];
    if (x < y)
        return -1;
    if (x > y)
        return 1;
    return i < j ? -1 : i > j; /* ties keep their order */
}

/* Rows [n_old, n) were appended: sort them by logL (ties in draw order) and
 * merge them into the sorted rows [0, n_old); a new row goes before old
 * rows with an equal logL (§12.5). */
static int s_set_merge(s_set_t *s, size_t n_old, size_t d)
{
    size_t n = s->n, n_new = n - n_old;
    size_t *fresh = malloc((n_new ? n_new : 1) * sizeof *fresh);
    size_t *perm = malloc((n ? n : 1) * sizeof *perm);
    if (!fresh || !perm) {
        free(fresh);
        free(perm);
        return NS_ERR_NOMEM;
    }
    for (size_t i = 0; i < n_new; i++)
        fresh[i] = n_old + i;
    s_sort_key = s->logL;
    qsort(fresh, n_new, sizeof *fresh, s_cmp_rows);
    size_t a = 0, b = 0, k = 0;
    while (a < n_old || b < n_new) {
        if (b < n_new && (a >= n_old || s->logL[fresh[b]] <= s->logL[a]))
            perm[k++] = fresh[b++];
        else
            perm[k++] = a++;
    }
    int rc = s_set_permute(s, perm, d);
    free(fresh);
    free(perm);
    return rc;
}

/* ---- the logit map of the cube (§12.1) ---- */

static int s_tmp(ns_ins_t *self, size_t n)
{
    if (n <= self->tmp_cap)
        return NS_OK;
    size_t c = n > 2 * self->tmp_cap ? n : 2 * self->tmp_cap, d = self->d;
    if (s_grow(&self->tmp, c * d, sizeof(double)) || s_grow(&self->tmp2, c * d, sizeof(double)) ||
        s_grow(&self->tmp3, c * (d > 4 ? d : 4), sizeof(double)))
        return NS_ERR_NOMEM;
    self->tmp_cap = c;
    return NS_OK;
}

/* up = logit(clip(u, eps, 1 - eps)), lj = log|du'/du| at the clipped point.
 * Uses self->tmp3. */
static int s_to_prime(ns_ins_t *self, const double *u, size_t n, double *up, double *lj)
{
    size_t d = self->d;
    double *c = self->tmp3, lo = self->cfg.eps, hi = 1.0 - self->cfg.eps;
    for (size_t i = 0; i < n * d; i++)
        c[i] = u[i] < lo ? lo : u[i] > hi ? hi : u[i];
    for (size_t i = 0; i < n; i++)
        lj[i] = 0.0;
    return ns_reparam_forward(self->rp, c, n, d, up, lj);
}

/* log q_k(u) of flow k for n cube points (log_prob of the flow at the
 * logit, plus the logit's log-Jacobian), into out with stride. */
static int s_flow_column(ns_ins_t *self, size_t k, const double *u, size_t n, double *out,
                         size_t stride)
{
    int rc = s_tmp(self, n);
    if (rc != NS_OK)
        return rc;
    double *up = self->tmp, *lp = self->tmp2, *lj = self->tmp2 + n;
    if ((rc = s_to_prime(self, u, n, up, lj)) != NS_OK ||
        (rc = ns_flow_log_prob(self->flows[k], up, n, lp)) != NS_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        out[i * stride] = lp[i] + lj[i];
    return NS_OK;
}

/* logQ and logW of rows [i0, i1) from their log_q rows and the weights. */
static void s_update_weights(ns_ins_t *self, s_set_t *s, size_t i0, size_t i1)
{
    size_t nc = self->n_flows + 1;
    for (size_t i = i0; i < i1; i++) {
        s->logQ[i] = ns_ins_log_q(s->log_q + i * s->kc, self->log_alpha, nc);
        s->logW[i] = s->logU[i] - s->logQ[i];
    }
}

/* ---- construction ---- */

int ns_ins_new(const ns_ins_config_t *cfg, ns_model_t *model, ns_evaluator_t *ev,
               ns_ins_t **out, char *err, size_t errlen)
{
    *out = NULL;
    size_t d = (size_t)ns_model_dim(model);
    if (cfg->min_samples > cfg->nlive || cfg->min_remove > cfg->nlive) {
        ns_errf(err, errlen, "min-samples (%zu) and min-remove (%zu) must not exceed nlive (%zu)",
                cfg->min_samples, cfg->min_remove, cfg->nlive);
        return NS_ERR_INVAL;
    }
    if (cfg->n_initial < 2 || cfg->nlive < 2 || !(cfg->q > 0 && cfg->q < 1)) {
        ns_errf(err, errlen, "the importance nested sampler needs nlive and n-initial of at least "
                "2 and 0 < threshold-q < 1");
        return NS_ERR_INVAL;
    }
    if (cfg->min_samples > cfg->n_initial) {
        ns_errf(err, errlen, "min-samples (%zu) must not exceed n-initial (%zu)", cfg->min_samples,
                cfg->n_initial);
        return NS_ERR_INVAL;
    }
    ns_ins_t *self = calloc(1, sizeof *self);
    if (!self)
        return NS_ERR_NOMEM;
    self->cfg = *cfg;
    self->cfg.flow.dim = d;
    if (self->cfg.flow.n_neurons == 0)
        self->cfg.flow.n_neurons = 2 * d;
    self->model = model;
    self->ev = ev;
    self->d = d;
    self->threshold = -INFINITY;
    self->criterion = NAN;
    self->ess = NAN;
    double *zeros = calloc(d, sizeof *zeros), *ones = malloc(d * sizeof *ones);
    if (zeros && ones)
        for (size_t j = 0; j < d; j++)
            ones[j] = 1.0;
    char rerr[256] = "";
    if (zeros && ones)
        self->rp = ns_reparam_new(d, ns_model_param_names(model), zeros, ones, NULL, "logit",
                                  rerr, sizeof rerr);
    free(zeros);
    free(ones);
    self->rng_prior = ns_rng_new(cfg->seed, S_STREAM_PRIOR);
    self->rng_flow = ns_rng_new(cfg->seed, S_STREAM_FLOW);
    self->rng_train = ns_rng_new(cfg->seed, S_STREAM_TRAIN);
    self->rng_draw = ns_rng_new(cfg->seed, S_STREAM_DRAW);
    self->rng_post = ns_rng_new(cfg->seed, S_STREAM_POST);
    self->counts = calloc(1, sizeof *self->counts);
    self->alpha = calloc(1, sizeof *self->alpha);
    self->log_alpha = calloc(1, sizeof *self->log_alpha);
    if (!self->rp || !self->rng_prior || !self->rng_flow || !self->rng_train || !self->rng_draw ||
        !self->rng_post || !self->counts || !self->alpha || !self->log_alpha) {
        if (rerr[0])
            ns_errf(err, errlen, "logit map of the unit hypercube: %s", rerr);
        ns_ins_destroy(&self);
        return rerr[0] ? NS_ERR_INVAL : NS_ERR_NOMEM;
    }
    self->ts = &self->sets[0];
    self->is = cfg->draw_iid_live ? &self->sets[1] : &self->sets[0];
    ns_flow_set_threads(cfg->threads);
    *out = self;
    return NS_OK;
}

void ns_ins_destroy(ns_ins_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ns_ins_t *self = *self_p;
    ns_reparam_destroy(&self->rp);
    ns_rng_destroy(&self->rng_prior);
    ns_rng_destroy(&self->rng_flow);
    ns_rng_destroy(&self->rng_train);
    ns_rng_destroy(&self->rng_draw);
    ns_rng_destroy(&self->rng_post);
    s_set_free(&self->sets[0]);
    s_set_free(&self->sets[1]);
    for (size_t k = 0; k < self->n_flows; k++)
        ns_flow_destroy(&self->flows[k]);
    free(self->flows);
    free(self->counts);
    free(self->alpha);
    free(self->log_alpha);
    for (int h = 0; h < H__COUNT; h++)
        free(self->hist[h]);
    free(self->post_logw);
    free(self->post_idx);
    free(self->tmp);
    free(self->tmp2);
    free(self->tmp3);
    ns_buf_free(&self->snap);
    free(self);
    *self_p = NULL;
}

/* ---- likelihoods ---- */

/* One batch of n physical points through the evaluator (§12.8). +inf is an
 * error; NaN counts as a zero likelihood (-inf), as in the standard sampler
 * the region is then left out of the evidence: the first batch with NaNs is
 * reported with examples, the totals at the end of the run and in
 * result.json; -inf gets nessai's warning. */
static int s_likelihood(ns_ins_t *self, const double *x, size_t n, double *logl)
{
    double t0 = ns_now();
    int rc = ns_evaluator_evaluate(self->ev, x, n, self->d, logl);
    self->t_likelihood += ns_now() - t0;
    if (rc != NS_OK)
        return rc;
    self->n_likelihood += n;
    size_t zero = 0, nan = 0, ex[3], n_ex = 0;
    for (size_t i = 0; i < n; i++) {
        if (logl[i] == INFINITY) {
            char pt[160];
            ns_model_point_text(self->model, x + i * self->d, pt, sizeof pt);
            ns_error(M, "the model returned a log-likelihood of +inf at %s (point %zu of a batch "
                        "of %zu): a log-likelihood must be finite, -inf or NaN", pt, i, n);
            return NS_ERR_NUMERIC;
        }
        if (isnan(logl[i])) {
            logl[i] = -INFINITY;
            if (n_ex < 3)
                ex[n_ex++] = i;
            nan++;
        } else if (logl[i] == -INFINITY)
            zero++;
    }
    self->nf_nan += nan;
    self->nf_neg_inf += zero;
    if (nan && !self->nf_warned) {
        char txt[3 * 160 + 8] = "";
        size_t e = 0;
        for (size_t k = 0; k < n_ex && e < sizeof txt; k++) {
            char pt[160];
            ns_model_point_text(self->model, x + ex[k] * self->d, pt, sizeof pt);
            e += (size_t)snprintf(txt + e, sizeof txt - e, "%s%s", k ? ", " : "", pt);
        }
        ns_warn(M, "%zu of %zu likelihoods in this batch were NaN (%.1f%%), e.g. at %s; they count "
                   "as zero likelihood, so the evidence excludes that region (totals at the end "
                   "of the run and in result.json nonfinite_likelihood)",
                nan, n, 100.0 * (double)nan / (double)n, txt);
        self->nf_warned = 1;
    }
    if (zero)
        ns_warn(M, "New points contain points with zero likelihood (%zu of %zu)", zero, n);
    return NS_OK;
}

/* ---- initialisation (§12.2) ---- */

/* The start-up check of docs/algorithm.md §0: one point with a finite
 * log-prior, evaluated once and then as 16 copies in one batch through the
 * evaluator (on a farm this also checks that workers agree); any differing
 * value is an error unless multi-valued likelihoods are allowed. These
 * evaluations are not counted. */
static int s_verify_model(ns_ins_t *self)
{
    size_t d = self->d;
    ns_rng_t *rng = ns_rng_new(self->cfg.seed, S_STREAM_VERIFY);
    double *u = malloc(d * sizeof *u), *x = malloc(17 * d * sizeof *x), logl[17], logp = -INFINITY;
    int rc = rng && u && x ? NS_OK : NS_ERR_NOMEM;
    for (int t = 0; rc == NS_OK && t < 1000 && !isfinite(logp); t++) {
        for (size_t j = 0; j < d; j++)
            u[j] = ns_rng_uniform(rng);
        if ((rc = ns_model_from_unit_hypercube(self->model, u, 1, x)) != NS_OK ||
            (rc = ns_model_log_prior(self->model, x, 1, &logp)) != NS_OK)
            ns_error(M, "%s", ns_model_last_error(self->model));
    }
    if (rc == NS_OK && !isfinite(logp)) {
        ns_error(M, "no point of the unit hypercube has a finite log-prior in 1000 tries: check "
                    "the model's bounds, log_prior and from_unit_hypercube");
        rc = NS_ERR_MODEL;
    }
    if (rc == NS_OK) {
        for (int k = 1; k < 17; k++)
            memcpy(x + (size_t)k * d, x, d * sizeof *x);
        rc = ns_evaluator_evaluate(self->ev, x, 1, d, logl);
        if (rc == NS_OK)
            rc = ns_evaluator_evaluate(self->ev, x + d, 16, d, logl + 1);
        if (rc != NS_OK && rc != NS_ERR_INTERRUPTED)
            ns_error(M, "evaluating the log-likelihood failed during model verification");
    }
    for (int k = 1; rc == NS_OK && k < 17; k++) {
        if (memcmp(&logl[k], &logl[0], sizeof logl[0]) == 0)
            continue;
        if (self->cfg.allow_multi_valued) {
            ns_warn(M, "the log-likelihood gave %.17g then %.17g for the same point (allowed by "
                       "--allow-multi-valued-likelihood)", logl[0], logl[k]);
            break;
        }
        ns_error(M, "the log-likelihood is not deterministic: %.17g then %.17g for the same point; "
                    "make it return the same value every time (or pass "
                    "--allow-multi-valued-likelihood)", logl[0], logl[k]);
        rc = NS_ERR_MODEL;
    }
    free(u);
    free(x);
    ns_rng_destroy(&rng);
    return rc;
}

/* The forward-inverse check of the logit map on 1000 cube points. */
static int s_verify_rescaling(ns_ins_t *self)
{
    size_t n = 1000, d = self->d;
    int rc = s_tmp(self, n);
    if (rc != NS_OK)
        return rc;
    double *u = malloc(n * d * sizeof *u), *up = malloc(n * d * sizeof *up);
    double *u2 = malloc(n * d * sizeof *u2), *lf = malloc(n * sizeof *lf);
    double *li = calloc(n, sizeof *li);
    rc = u && up && u2 && lf && li ? NS_OK : NS_ERR_NOMEM;
    for (size_t i = 0; rc == NS_OK && i < n * d; i++)
        u[i] = ns_rng_uniform(self->rng_prior);
    if (rc == NS_OK)
        rc = s_to_prime(self, u, n, up, lf);
    if (rc == NS_OK)
        rc = ns_reparam_inverse(self->rp, up, n, u2, li);
    for (size_t i = 0; rc == NS_OK && i < n; i++) {
        for (size_t j = 0; j < d; j++)
            if (!(fabs(u2[i * d + j] - u[i * d + j]) <= 1e-8 + 1e-8 * fabs(u[i * d + j])))
                rc = NS_ERR_NUMERIC;
        if (!(fabs(lf[i] + li[i]) <= 1e-8 + 1e-8 * fabs(lf[i])))
            rc = NS_ERR_NUMERIC;
    }
    if (rc == NS_ERR_NUMERIC)
        ns_error(M, "the logit map of the unit hypercube does not invert within 1e-8");
    free(u);
    free(up);
    free(u2);
    free(lf);
    free(li);
    return rc;
}

static int s_initialise(ns_ins_t *self)
{
    size_t d = self->d, n0 = self->cfg.n_initial, nsets = self->cfg.draw_iid_live ? 2 : 1;
    size_t m = nsets * n0;
    double *u = malloc(m * d * sizeof *u), *x = malloc(m * d * sizeof *x);
    double *lp = malloc(m * sizeof *lp), *logl = malloc(m * sizeof *logl);
    double *cu = malloc(m * d * sizeof *cu), *cx = malloc(m * d * sizeof *cx);
    double *clp = malloc(m * sizeof *clp);
    int rc = u && x && lp && logl && cu && cx && clp ? NS_OK : NS_ERR_NOMEM;
    /* cube draws in batches of m, keeping those with a finite log-prior */
    size_t have = 0, passes = 0;
    while (rc == NS_OK && have < m) {
        for (size_t i = 0; i < m * d; i++)
            cu[i] = ns_rng_uniform(self->rng_prior);
        if ((rc = ns_model_from_unit_hypercube(self->model, cu, m, cx)) != NS_OK ||
            (rc = ns_model_log_prior(self->model, cx, m, clp)) != NS_OK) {
            ns_error(M, "%s", ns_model_last_error(self->model));
            break;
        }
        size_t got = 0;
        for (size_t i = 0; i < m && have < m; i++)
            if (isfinite(clp[i])) {
                memcpy(u + have * d, cu + i * d, d * sizeof *u);
                memcpy(x + have * d, cx + i * d, d * sizeof *x);
                lp[have++] = clp[i];
                got++;
            }
        if (got == 0 && ++passes >= 100) {
            ns_error(M, "no point of the unit hypercube has a finite log-prior in %zu draws: "
                        "check the model's from_unit_hypercube and log_prior", 100 * m);
            rc = NS_ERR_MODEL;
        }
    }
    if (rc == NS_OK)
        rc = s_likelihood(self, x, m, logl);
    for (size_t k = 0; rc == NS_OK && k < nsets; k++) {
        s_set_t *s = &self->sets[k];
        if ((rc = s_set_reserve(s, n0, d, 8)) != NS_OK)
            break;
        s->n = n0;
        memcpy(s->u, u + k * n0 * d, n0 * d * sizeof *u);
        memcpy(s->x, x + k * n0 * d, n0 * d * sizeof *x);
        memcpy(s->logP, lp + k * n0, n0 * sizeof *lp);
        memcpy(s->logL, logl + k * n0, n0 * sizeof *logl);
        ns_model_log_prior_unit_hypercube(self->model, s->u, s->logP, n0, s->logU);
        for (size_t i = 0; i < n0; i++) {
            s->it[i] = -1;
            s->logQ[i] = 0.0;
            s->logW[i] = s->logU[i];
            s->live[i] = 1;
            s->log_q[i * s->kc] = 0.0;
        }
        s->log_z = s->log_z_prev = s->log_z_err = NAN;
        rc = s_set_merge(s, 0, d);
    }
    self->counts[0] = n0;
    self->alpha[0] = 1.0;
    self->log_alpha[0] = 0.0;
    free(u);
    free(x);
    free(lp);
    free(logl);
    free(cu);
    free(cx);
    free(clp);
    if (rc == NS_OK)
        rc = s_verify_rescaling(self);
    return rc;
}

/* ---- one level (§12.2) ---- */

/* The IS threshold (§12.3) from its live points; NAN (logged) when the
 * quantile rule has no finite cutoff. */
static double s_threshold(ns_ins_t *self)
{
    s_set_t *s = self->is;
    size_t m = 0;
    double *lw = self->tmp, *ll = self->tmp2;
    for (size_t i = 0; i < s->n; i++)
        if (s->live[i]) {
            lw[m] = s->logW[i];
            ll[m++] = s->logL[i];
        }
    if (m == 0)
        return -INFINITY;
    size_t n;
    if (!self->cfg.quantile)
        n = ns_ins_entropy_index(lw, m, self->cfg.q);
    else if (ns_ins_quantile_index(ll, lw, m, self->cfg.q, &n) != NS_OK) {
        ns_error(M, "the %g quantile of the live points' log-likelihoods is not finite (a "
                    "zero likelihood carries weight, or the weights are not finite); use the "
                    "entropy threshold", self->cfg.q);
        return NAN;
    }
    size_t adj = ns_ins_adjust_index(n, m, self->cfg.min_samples, self->cfg.min_remove);
    if (adj != n && !(n == 0 && adj == 1))
        ns_warn(M, "Threshold index %zu adjusted to %zu (min-samples %zu, min-remove %zu)", n, adj,
                self->cfg.min_samples, self->cfg.min_remove);
    if (adj >= m)
        adj = m - 1;
    return ll[adj];
}

/* Live points below thr become nested, unless no live point reaches thr
 * (then none is removed, §12.3). Returns the number removed. */
static size_t s_remove_below(s_set_t *s, double thr)
{
    size_t above = 0, removed = 0;
    for (size_t i = 0; i < s->n; i++)
        above += s->live[i] && s->logL[i] >= thr;
    if (above == 0)
        return 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->live[i] && s->logL[i] < thr) {
            s->live[i] = 0;
            removed++;
        }
    return removed;
}

/* Train flow j on the TS samples from the threshold up (at least
 * min_samples), weighted by pi_U / Q of the current mixture (§12.4). */
static int s_train_level(ns_ins_t *self, size_t *n_train_out)
{
    s_set_t *s = self->ts;
    size_t d = self->d, a = 0;
    while (a < s->n && s->logL[a] < self->threshold)
        a++;
    if (a == s->n)
        a = 0;
    size_t start = s->n > self->cfg.min_samples ? s->n - self->cfg.min_samples : 0;
    if (a < start)
        start = a;
    size_t n = s->n - start;
    *n_train_out = n;
    ns_info(M, "Training next proposal with %zu samples", n);
    double *up = malloc(n * d * sizeof *up), *lj = malloc(n * sizeof *lj);
    double *w = malloc(n * sizeof *w);
    int rc = up && lj && w ? s_tmp(self, n) : NS_ERR_NOMEM;
    if (rc == NS_OK)
        rc = s_to_prime(self, s->u + start * d, n, up, lj);
    double lse = rc == NS_OK ? ns_logsumexp(s->logW + start, n) : NAN;
    for (size_t i = 0; rc == NS_OK && i < n; i++) {
        w[i] = exp(s->logW[start + i] - lse);
        if (!isfinite(w[i])) {
            ns_error(M, "training weight %zu is not finite (log-weight %g, sum %g)", i,
                     s->logW[start + i], lse);
            rc = NS_ERR_NUMERIC;
        }
    }
    ns_flow_t *flow = NULL;
    ns_adamw_t *opt = NULL;
    size_t j = self->n_flows, k = self->cfg.reset_flow;
    int warm = j > 0 && (k == 0 || j % k != 0);
    if (rc == NS_OK && warm)
        rc = ns_flow_copy(self->flows[j - 1], &flow);
    else if (rc == NS_OK && !(flow = ns_flow_new(&self->cfg.flow, self->rng_flow)))
        rc = NS_ERR_NOMEM;
    if (rc == NS_OK && self->cfg.train_f32)
        rc = ns_flow_set_train_f32(flow, 1);
    if (rc == NS_OK && !(opt = ns_adamw_new(ns_flow_n_params(flow), self->cfg.train.lr,
                                            self->cfg.train.weight_decay)))
        rc = NS_ERR_NOMEM;
    ns_train_stats_t st;
    memset(&st, 0, sizeof st);
    double t0 = ns_now();
    if (rc == NS_OK)
        rc = ns_flow_train_weighted(flow, opt, &self->cfg.train, up, w, n, self->rng_train, &st,
                                    NULL, NULL, NULL);
    self->t_training += ns_now() - t0;
    if (rc == NS_ERR_INVAL)
        ns_error(M, "flow training refused %zu samples (batch size %zu)", n,
                 self->cfg.train.batch_size);
    if (rc == NS_OK) {
        ns_info(M, "Level %zu flow (%s): %zu epochs, best epoch %zu, validation loss %.4f",
                self->n_flows, warm ? "from the previous level's" : "fresh", st.epochs,
                st.best_epoch, st.best_val_loss);
        if (self->n_flows == self->flows_cap) {
            size_t c = self->flows_cap ? 2 * self->flows_cap : 8;
            ns_flow_t **f = realloc(self->flows, c * sizeof *f);
            if (!f)
                rc = NS_ERR_NOMEM;
            else {
                self->flows = f;
                self->flows_cap = c;
            }
        }
    }
    if (rc == NS_OK) {
        self->flows[self->n_flows] = flow;
        flow = NULL;
    }
    ns_flow_destroy(&flow);
    ns_adamw_destroy(&opt);
    free(up);
    free(lj);
    free(w);
    return rc;
}

/* Append n_add draws from the newest flow to s as rows [s->n, s->n + n_add)
 * with their log_q rows, logQ, logW, logP, logU and physical points; logL
 * is left for the caller (§12.5). */
static int s_draw(ns_ins_t *self, s_set_t *s, size_t n_add)
{
    size_t d = self->d, nc = self->n_flows + 1, j = self->n_flows - 1;
    size_t nb = (size_t)(1.01 * (double)n_add);
    if (nb < 1)
        nb = 1;
    int rc = s_set_reserve(s, s->n + n_add + nb, d, nc);
    if (rc == NS_OK)
        rc = s_tmp(self, nb);
    double *z = malloc(nb * d * sizeof *z), *up = malloc(nb * d * sizeof *up);
    double *u = malloc(nb * d * sizeof *u), *upp = malloc(nb * d * sizeof *upp);
    double *ld = malloc(nb * sizeof *ld), *lji = malloc(nb * sizeof *lji);
    double *ljf = malloc(nb * sizeof *ljf), *lq = malloc(nb * nc * sizeof *lq);
    double *lp = malloc(nb * sizeof *lp), *x = malloc(nb * d * sizeof *x);
    double *lu = malloc(nb * sizeof *lu), *col = malloc(nb * sizeof *col);
    unsigned char *ok = malloc(nb);
    if (!z || !up || !u || !upp || !ld || !lji || !ljf || !lq || !lp || !x || !lu || !col || !ok)
        rc = NS_ERR_NOMEM;
    size_t have = 0, empty = 0, n0 = s->n;
    while (rc == NS_OK && have < n_add) {
        for (size_t i = 0; i < nb * d; i++)
            z[i] = ns_rng_gaussian(self->rng_draw);
        if ((rc = ns_flow_inverse(self->flows[j], z, nb, up, ld)) != NS_OK)
            break;
        memset(lji, 0, nb * sizeof *lji);
        if ((rc = ns_reparam_inverse(self->rp, up, nb, u, lji)) != NS_OK ||
            (rc = s_to_prime(self, u, nb, upp, ljf)) != NS_OK)
            break;
        for (size_t i = 0; i < nb; i++) {
            int good = isfinite(ljf[i]) && isfinite(lji[i]);
            for (size_t c = 0; c < d && good; c++) {
                double v = u[i * d + c];
                /* strictly inside: a coordinate that rounds to 0 or 1 has
                 * log u + log1p(-u) = -inf and a zero cube prior (§12.5) */
                good = v > 0.0 && v < 1.0 && isfinite(up[i * d + c]) && isfinite(upp[i * d + c]);
            }
            ok[i] = (unsigned char)good;
        }
        /* every flow on the drawn u' (the logit Jacobian from the clipped u) */
        for (size_t i = 0; i < nb; i++)
            lq[i * nc] = 0.0;
        for (size_t k = 0; rc == NS_OK && k + 1 < nc; k++) {
            rc = ns_flow_log_prob(self->flows[k], up, nb, col);
            for (size_t i = 0; i < nb; i++)
                lq[i * nc + k + 1] = col[i] + ljf[i];
        }
        if (rc != NS_OK)
            break;
        for (size_t i = 0; i < nb; i++)
            if (!ok[i])
                for (size_t c = 0; c < d; c++)
                    u[i * d + c] = 0.5; /* a harmless point for the model's maps */
        if ((rc = ns_model_from_unit_hypercube(self->model, u, nb, x)) != NS_OK ||
            (rc = ns_model_log_prior(self->model, x, nb, lp)) != NS_OK) {
            ns_error(M, "%s", ns_model_last_error(self->model));
            break;
        }
        ns_model_log_prior_unit_hypercube(self->model, u, lp, nb, lu);
        size_t got = 0;
        for (size_t i = 0; i < nb && have < n_add; i++) {
            if (!ok[i] || !isfinite(lp[i]))
                continue;
            double lQ = ns_ins_log_q(lq + i * nc, self->log_alpha, nc);
            if (isnan(lQ)) {
                ns_error(M, "the mixture density of a new sample is NaN");
                rc = NS_ERR_NUMERIC;
                break;
            }
            double lW = lu[i] - lQ;
            if (lW == INFINITY)
                continue;
            size_t r = s->n++;
            memcpy(s->u + r * d, u + i * d, d * sizeof *u);
            memcpy(s->x + r * d, x + i * d, d * sizeof *x);
            memcpy(s->log_q + r * s->kc, lq + i * nc, nc * sizeof *lq);
            s->logP[r] = lp[i];
            s->logU[r] = lu[i];
            s->logQ[r] = lQ;
            s->logW[r] = lW;
            s->logL[r] = NAN;
            s->it[r] = (double)j;
            s->live[r] = 1;
            have++;
            got++;
        }
        if (rc == NS_OK && got == 0 && ++empty >= 100) {
            ns_error(M, "the level-%zu flow drew no point inside the prior's support in 100 "
                        "batches of %zu", j, nb);
            rc = NS_ERR_NUMERIC;
        }
    }
    if (rc != NS_OK)
        s->n = n0;
    free(z);
    free(up);
    free(u);
    free(upp);
    free(ld);
    free(lji);
    free(ljf);
    free(lq);
    free(lp);
    free(x);
    free(lu);
    free(col);
    free(ok);
    return rc;
}

/* The newest flow's column for the old rows [0, n_old), then logQ and
 * logW of every row with the new weights (§12.5). */
static int s_update_old(ns_ins_t *self, s_set_t *s, size_t n_old)
{
    size_t nc = self->n_flows + 1;
    int rc = s_flow_column(self, nc - 2, s->u, n_old, s->log_q + (nc - 1), s->kc);
    if (rc == NS_OK)
        s_update_weights(self, s, 0, n_old);
    return rc;
}

/* ln Z and its error of a set over all its samples (§12.6). */
static int s_evidence(ns_ins_t *self, s_set_t *s)
{
    int rc = s_tmp(self, s->n);
    if (rc != NS_OK)
        return rc;
    double *ell = self->tmp;
    for (size_t i = 0; i < s->n; i++)
        ell[i] = s->logL[i] + s->logW[i];
    s->log_z_prev = s->log_z;
    s->log_z = ns_ins_evidence(ell, s->n, &s->log_z_err);
    return NS_OK;
}

static int s_hist_push(ns_ins_t *self, const double *v)
{
    if (self->n_hist == self->hist_cap) {
        size_t c = self->hist_cap ? 2 * self->hist_cap : 64;
        for (int h = 0; h < H__COUNT; h++)
            if (s_grow(&self->hist[h], c, sizeof(double)))
                return NS_ERR_NOMEM;
        self->hist_cap = c;
    }
    for (int h = 0; h < H__COUNT; h++)
        self->hist[h][self->n_hist] = v[h];
    self->n_hist++;
    return NS_OK;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The per-component arrays (counts, alpha, log alpha) for nc components;
 * NS_ERR_NOMEM leaves the ones not grown as they were. */
static int s_grow_mixture(ns_ins_t *self, size_t nc)
{
    size_t *cn = realloc(self->counts, nc * sizeof *cn);
    if (cn)
        self->counts = cn;
    double *al = realloc(self->alpha, nc * sizeof *al);
    if (al)
        self->alpha = al;
    double *la = realloc(self->log_alpha, nc * sizeof *la);
    if (la)
        self->log_alpha = la;
    return cn && al && la ? NS_OK : NS_ERR_NOMEM;
}

static int s_level(ns_ins_t *self)
{
    size_t d = self->d;
    int rc = s_tmp(self, self->is->n + self->ts->n);
    if (rc != NS_OK)
        return rc;
    self->threshold = s_threshold(self);
    if (isnan(self->threshold))
        return NS_ERR_NUMERIC;
    ns_info(M, "Log-likelihood threshold: %.6f", self->threshold);
    size_t n_removed = s_remove_below(self->is, self->threshold);
    if (self->ts != self->is)
        s_remove_below(self->ts, self->threshold);
    size_t n_train = 0;
    if ((rc = s_train_level(self, &n_train)) != NS_OK)
        return rc;
    /* mixture weights with the new flow's count (§12.5) */
    size_t nc = self->n_flows + 2, n_add = self->cfg.nlive;
    if (s_grow_mixture(self, nc) != NS_OK) {
        ns_flow_destroy(&self->flows[self->n_flows]);
        return NS_ERR_NOMEM;
    }
    self->n_flows++;
    self->counts[nc - 1] = n_add;
    ns_ins_mixture_weights(self->counts, nc, self->alpha, self->log_alpha);
    ns_info(M, "Drawing %zu new samples from the new proposal", n_add);
    /* TS draw, then IS draw, one likelihood batch for both (§12.8) */
    double t0 = ns_now();
    s_set_t *sets[2] = {self->ts, self->is};
    size_t nsets = self->ts != self->is ? 2 : 1, n_old[2];
    for (size_t k = 0; k < nsets; k++) {
        n_old[k] = sets[k]->n;
        if ((rc = s_draw(self, sets[k], n_add)) != NS_OK)
            return rc;
    }
    self->t_draw += ns_now() - t0;
    double *x = malloc(nsets * n_add * d * sizeof *x), *logl = malloc(nsets * n_add * sizeof *logl);
    rc = x && logl ? NS_OK : NS_ERR_NOMEM;
    for (size_t k = 0; rc == NS_OK && k < nsets; k++)
        memcpy(x + k * n_add * d, sets[k]->x + n_old[k] * d, n_add * d * sizeof *x);
    if (rc == NS_OK)
        rc = s_likelihood(self, x, nsets * n_add, logl);
    t0 = ns_now();
    for (size_t k = 0; rc == NS_OK && k < nsets; k++) {
        memcpy(sets[k]->logL + n_old[k], logl + k * n_add, n_add * sizeof *logl);
        if ((rc = s_update_old(self, sets[k], n_old[k])) == NS_OK)
            rc = s_set_merge(sets[k], n_old[k], d);
    }
    free(x);
    free(logl);
    for (size_t k = 0; rc == NS_OK && k < nsets; k++)
        rc = s_evidence(self, sets[k]);
    self->t_update += ns_now() - t0;
    if (rc != NS_OK)
        return rc;
    /* stopping value and diagnostics, from the IS set */
    s_set_t *s = self->is;
    if ((rc = s_tmp(self, s->n)) != NS_OK)
        return rc;
    double *ell = self->tmp, *v = self->tmp2;
    size_t n_live = 0;
    double went = 0.0;
    for (size_t i = 0; i < s->n; i++) {
        ell[i] = s->logL[i] + s->logW[i];
        v[i] = ell[i] - s->log_z;
        went += s->logW[i];
    }
    double ratio = ns_ins_log_evidence_ratio(ell, s->live, s->n);
    self->ess = ns_ins_ess(v, s->n);
    switch (self->cfg.criterion) {
    case NS_INS_RATIO_NS: {
        /* ln Z_live - ln Z_nested = (ln Z_live - ln Z) - (ln Z_nested - ln Z) */
        unsigned char *nested = (unsigned char *)self->tmp3;
        for (size_t i = 0; i < s->n; i++)
            nested[i] = !s->live[i];
        self->criterion = ratio - ns_ins_log_evidence_ratio(ell, nested, s->n);
        break;
    }
    case NS_INS_DLOGZ:
        self->criterion = fabs(s->log_z - s->log_z_prev);
        break;
    case NS_INS_ESS:
        self->criterion = self->ess;
        break;
    case NS_INS_Z_ERR:
        self->criterion = s->log_z_err * exp(s->log_z);
        break;
    case NS_INS_FRACTIONAL_ERROR:
        self->criterion = s->log_z_err;
        break;
    default:
        self->criterion = ratio;
    }
    double *ll = self->tmp2;
    for (size_t i = 0; i < s->n; i++)
        if (s->live[i]) {
            v[n_live] = s->logW[i];
            n_live++;
        }
    double live_ess = ns_ins_ess(v, n_live);
    n_live = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->live[i])
            ll[n_live++] = s->logL[i];
    qsort(ll, n_live, sizeof *ll, s_cmp_double);
    double hv[H__COUNT];
    hv[H_LIKELIHOOD_EVALUATIONS] = (double)self->n_likelihood;
    hv[H_THRESHOLD] = self->threshold;
    hv[H_LOGZ] = s->log_z;
    hv[H_LOGDZ] = fabs(s->log_z - s->log_z_prev);
    hv[H_ESS] = self->ess;
    hv[H_RATIO] = self->criterion;
    hv[H_N_REMOVED] = (double)n_removed;
    hv[H_N_ADDED] = (double)n_add;
    hv[H_N_LIVE] = (double)n_live;
    hv[H_N_TRAIN] = (double)n_train;
    hv[H_MIN_LOGL] = n_live ? ll[0] : NAN;
    hv[H_MEDIAN_LOGL] = n_live ? (n_live % 2 ? ll[n_live / 2]
                                              : 0.5 * (ll[n_live / 2 - 1] + ll[n_live / 2]))
                               : NAN;
    hv[H_MAX_LOGL] = n_live ? ll[n_live - 1] : NAN;
    hv[H_SAMPLES_ENTROPY] = -went / (double)s->n;
    hv[H_LIVE_ESS] = live_ess;
    hv[H_TRAINING_LOGZ] = self->ts->log_z;
    if ((rc = s_hist_push(self, hv)) != NS_OK)
        return rc;
    ns_info(M, "Current n samples: %zu", n_live);
    ns_info(M, "Stopping criteria: {%s: %.6g} - Tolerances: {%s: %g}",
            ns_ins_criterion_name(self->cfg.criterion), self->criterion,
            ns_ins_criterion_name(self->cfg.criterion), self->cfg.tolerance);
    ns_info(M, "Update %ld - log Z: %.3f +/- %.3f ESS: %.1f logL min: %.3f logL median: %.3f "
               "logL max: %.3f", self->iteration, s->log_z, s->log_z_err, self->ess,
            hv[H_MIN_LOGL], hv[H_MEDIAN_LOGL], hv[H_MAX_LOGL]);
    return NS_OK;
}

/* ---- finalisation (§12.7) ---- */

static int s_finalise(ns_ins_t *self)
{
    s_set_t *s = self->is;
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < self->sets[k].n; i++)
            self->sets[k].live[i] = 0;
    int rc = s_evidence(self, self->ts);
    if (rc == NS_OK && self->is != self->ts)
        rc = s_evidence(self, self->is);
    if (rc != NS_OK)
        return rc;
    free(self->post_logw);
    if (!(self->post_logw = malloc((s->n ? s->n : 1) * sizeof *self->post_logw)))
        return NS_ERR_NOMEM;
    for (size_t i = 0; i < s->n; i++)
        self->post_logw[i] = s->logL[i] + s->logW[i] - s->log_z;
    self->ess = ns_ins_ess(self->post_logw, s->n);
    /* multinomial resampling: int(ESS) draws with replacement, p_i ~ exp(v_i) */
    size_t np = isfinite(self->ess) ? (size_t)self->ess : 0;
    double *cdf = malloc((s->n ? s->n : 1) * sizeof *cdf);
    free(self->post_idx);
    self->post_idx = malloc((np ? np : 1) * sizeof *self->post_idx);
    if (!cdf || !self->post_idx) {
        free(cdf);
        return NS_ERR_NOMEM;
    }
    double lse = ns_logsumexp(self->post_logw, s->n), acc = 0.0;
    for (size_t i = 0; i < s->n; i++) {
        acc += exp(self->post_logw[i] - lse);
        cdf[i] = acc;
    }
    for (size_t k = 0; k < np; k++) {
        double r = ns_rng_uniform(self->rng_post) * acc;
        size_t lo = 0, hi = s->n - 1;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (cdf[mid] > r)
                hi = mid;
            else
                lo = mid + 1;
        }
        self->post_idx[k] = lo;
    }
    self->n_post = np;
    free(cdf);
    self->finalised = 1;
    if (self->nf_nan)
        ns_warn(M, "%llu of %llu likelihoods were NaN (%.2f%%) and counted as zero likelihood: "
                   "the evidence excludes that region",
                (unsigned long long)self->nf_nan, (unsigned long long)self->n_likelihood,
                100.0 * (double)self->nf_nan / (double)self->n_likelihood);
    ns_info(M, "Final log Z: %.4f +/- %.4f", s->log_z, s->log_z_err);
    ns_info(M, "Final ESS: %.1f", self->ess);
    ns_info(M, "Produced %zu posterior samples.", np);
    return NS_OK;
}

/* A level boundary: keep the state for a signal's checkpoint, then the
 * hook (periodic checkpoints, interrupts). */
static int s_boundary(ns_ins_t *self, int end)
{
    if (!self->hook)
        return NS_OK;
    ns_buf_free(&self->snap);
    ns_buf_init(&self->snap);
    int rc = ns_ins_save(self, &self->snap);
    if (rc != NS_OK)
        return rc;
    self->have_snap = 1;
    return self->hook(self, end, self->hook_ctx);
}

int ns_ins_run(ns_ins_t *self)
{
    if (self->finalised)
        return NS_OK;
    double t0 = ns_now();
    ns_info(M, "Importance nested sampling: nlive %zu, n_initial %zu, %s threshold q %g, "
               "min_samples %zu, i.i.d. set %s", self->cfg.nlive, self->cfg.n_initial,
            self->cfg.quantile ? "quantile" : "entropy", self->cfg.q,
            self->cfg.min_samples, self->cfg.draw_iid_live ? "yes" : "no");
    int rc = NS_OK;
    if (!self->loaded) {
        rc = s_verify_model(self);
        if (rc == NS_OK)
            rc = s_initialise(self);
        if (rc == NS_OK)
            rc = s_boundary(self, 0);
    }
    while (rc == NS_OK) {
        if (ns_ins_criterion_met(self->cfg.criterion, self->criterion, self->cfg.tolerance) &&
            self->iteration >= self->cfg.min_iteration)
            break;
        if (ns_interrupt_pending()) {
            rc = NS_ERR_INTERRUPTED;
            break;
        }
        rc = s_level(self);
        if (rc != NS_OK)
            break;
        self->iteration++;
        if ((rc = s_boundary(self, 0)) != NS_OK)
            break;
        if (self->cfg.max_iteration >= 0 && self->iteration >= self->cfg.max_iteration)
            break;
    }
    if (rc == NS_OK) {
        ns_info(M, "Finished nested sampling loop after %ld iterations with {%s: %.6g}",
                self->iteration, ns_ins_criterion_name(self->cfg.criterion), self->criterion);
        rc = s_finalise(self);
        if (rc == NS_OK)
            rc = s_boundary(self, 1);
    }
    self->t_sampling += ns_now() - t0;
    if (rc == NS_OK) {
        ns_info(M, "Training time: %.3f s", self->t_training);
        ns_info(M, "Draw samples time: %.3f s", self->t_draw);
        ns_info(M, "Add and update samples time: %.3f s", self->t_update);
        ns_info(M, "Log-likelihood time: %.3f s", self->t_likelihood);
    }
    return rc;
}

double ns_ins_log_evidence(const ns_ins_t *self) { return self->is->log_z; }
double ns_ins_log_evidence_error(const ns_ins_t *self) { return self->is->log_z_err; }
double ns_ins_ess_value(const ns_ins_t *self) { return self->ess; }
long ns_ins_iteration(const ns_ins_t *self) { return self->iteration; }
uint64_t ns_ins_likelihood_evaluations(const ns_ins_t *self) { return self->n_likelihood; }

/* ---- outputs ---- */

static cJSON *s_doubles(const double *v, size_t n, size_t stride)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i * stride]));
    return a;
}

/* {field: [values]} of rows (NULL = all) of a set: parameters, logP, logL,
 * it, logW, logQ, logU, as nessai's sample records. */
static cJSON *s_samples_json(const ns_ins_t *self, const s_set_t *s, const size_t *rows, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    const char *const *names = ns_model_param_names(self->model);
    size_t d = self->d;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!o || !v) {
        cJSON_Delete(o);
        free(v);
        return NULL;
    }
    for (size_t c = 0; c < d + 6; c++) {
        for (size_t i = 0; i < n; i++) {
            size_t r = rows ? rows[i] : i;
            const double *f[6] = {s->logP, s->logL, s->it, s->logW, s->logQ, s->logU};
            v[i] = c < d ? s->x[r * d + c] : f[c - d][r];
        }
        static const char *const extra[6] = {"logP", "logL", "it", "logW", "logQ", "logU"};
        cJSON_AddItemToObject(o, c < d ? names[c] : extra[c - d], s_doubles(v, n, 1));
    }
    free(v);
    return o;
}

cJSON *ns_ins_result_json(const ns_ins_t *self)
{
    cJSON *r = cJSON_CreateObject();
    if (!r)
        return NULL;
    const s_set_t *is = self->is, *ts = self->ts;
    cJSON_AddStringToObject(r, "sampler", "importance_nested_sampler");
    cJSON_AddNumberToObject(r, "seed", (double)self->cfg.seed);
    cJSON_AddNumberToObject(r, "log_evidence", is->log_z);
    cJSON_AddNumberToObject(r, "log_evidence_error", is->log_z_err);
    cJSON_AddNumberToObject(r, "iid_log_evidence", is->log_z);
    cJSON_AddNumberToObject(r, "iid_log_evidence_error", is->log_z_err);
    cJSON_AddNumberToObject(r, "training_log_evidence", ts->log_z);
    cJSON_AddNumberToObject(r, "training_log_evidence_error", ts->log_z_err);
    cJSON_AddNumberToObject(r, "effective_sample_size", self->ess);
    cJSON_AddNumberToObject(r, "iterations", (double)self->iteration);
    cJSON_AddNumberToObject(r, "total_likelihood_evaluations", (double)self->n_likelihood);
    cJSON *nf = cJSON_AddObjectToObject(r, "nonfinite_likelihood");
    if (nf) {
        cJSON_AddNumberToObject(nf, "evaluated", (double)self->n_likelihood);
        cJSON_AddNumberToObject(nf, "nan", (double)self->nf_nan);
        cJSON_AddNumberToObject(nf, "neg_inf", (double)self->nf_neg_inf);
    }
    cJSON_AddNumberToObject(r, "sampling_time", self->t_sampling);
    cJSON_AddNumberToObject(r, "likelihood_evaluation_time", self->t_likelihood);
    cJSON_AddNumberToObject(r, "training_time", self->t_training);
    cJSON_AddNumberToObject(r, "draw_samples_time", self->t_draw);
    cJSON_AddNumberToObject(r, "add_and_update_samples_time", self->t_update);
    double truth = ns_model_truth(self->model);
    if (!isnan(truth))
        cJSON_AddNumberToObject(r, "truth", truth);
    size_t nc = self->n_flows + 1;
    cJSON_AddItemToObject(r, "mixture_weights", s_doubles(self->alpha, nc, 1));
    cJSON *h = cJSON_AddObjectToObject(r, "history");
    for (int k = 0; h && k < H__COUNT; k++)
        if (k != H_RATIO)
            cJSON_AddItemToObject(h, s_hist_names[k], s_doubles(self->hist[k], self->n_hist, 1));
    /* nessai's history/stopping_criteria/<internal name> */
    cJSON *sc = h ? cJSON_AddObjectToObject(h, "stopping_criteria") : NULL;
    if (sc)
        cJSON_AddItemToObject(sc, ns_ins_criterion_key(self->cfg.criterion),
                              s_doubles(self->hist[H_RATIO], self->n_hist, 1));
    cJSON_AddItemToObject(r, "samples", s_samples_json(self, is, NULL, is->n));
    cJSON_AddItemToObject(r, "log_posterior_weights",
                          s_doubles(self->post_logw, self->finalised ? is->n : 0, 1));
    if (self->ts != self->is) {
        cJSON_AddItemToObject(r, "training_samples", s_samples_json(self, ts, NULL, ts->n));
        double *tw = malloc((ts->n ? ts->n : 1) * sizeof *tw);
        for (size_t i = 0; tw && i < ts->n; i++)
            tw[i] = ts->logL[i] + ts->logW[i] - ts->log_z;
        cJSON_AddItemToObject(r, "training_log_posterior_weights", s_doubles(tw, tw ? ts->n : 0, 1));
        free(tw);
    }
    cJSON_AddItemToObject(r, "posterior_samples",
                          s_samples_json(self, is, self->post_idx, self->n_post));
    /* each component's share of posterior and evidence (§12.7), from the
     * i.i.d. set; a pure function of its samples, so a resumed run gives it */
    double *ell = malloc((is->n ? is->n : 1) * sizeof *ell);
    int *comp = malloc((is->n ? is->n : 1) * sizeof *comp);
    double *imp = malloc(3 * nc * sizeof *imp);
    if (ell && comp && imp) {
        for (size_t i = 0; i < is->n; i++) {
            ell[i] = is->logL[i] + is->logW[i];
            comp[i] = (int)is->it[i] + 1;
        }
        if (ns_ins_importance(ell, comp, is->n, nc, imp, imp + nc, imp + 2 * nc) == NS_OK) {
            cJSON *pi = cJSON_AddObjectToObject(r, "proposal_importance");
            static const char *const keys[3] = {"total", "posterior", "evidence"};
            for (int k = 0; pi && k < 3; k++)
                cJSON_AddItemToObject(pi, keys[k], s_doubles(imp + (size_t)k * nc, nc, 1));
        }
    }
    free(ell);
    free(comp);
    free(imp);
    return r;
}

static int s_put_posterior(FILE *f, void *ctx)
{
    const ns_ins_t *self = ctx;
    const s_set_t *s = self->is;
    const char *const *names = ns_model_param_names(self->model);
    size_t d = self->d;
    for (size_t c = 0; c < d; c++)
        fprintf(f, "%s,", names[c]);
    fputs("logP,logL,it,logW,logQ,logU\n", f);
    for (size_t k = 0; k < self->n_post; k++) {
        size_t r = self->post_idx[k];
        for (size_t c = 0; c < d; c++) {
            ns_csv_put_double(f, s->x[r * d + c]);
            fputc(',', f);
        }
        const double v[6] = {s->logP[r], s->logL[r], s->it[r], s->logW[r], s->logQ[r], s->logU[r]};
        for (int c = 0; c < 6; c++) {
            if (c == 2)
                fprintf(f, "%.0f", v[c]);
            else
                ns_csv_put_double(f, v[c]);
            fputc(c < 5 ? ',' : '\n', f);
        }
    }
    return ferror(f);
}

int ns_ins_write_posterior_csv(const ns_ins_t *self, const char *path)
{
    if (!self->finalised)
        return NS_ERR_STATE;
    int rc = ns_write_file_atomic(path, 0666, 0, s_put_posterior, (void *)self, NULL);
    if (rc == NS_ERR_IO)
        ns_error(NULL, "could not write %s: check that the output directory is writable", path);
    return rc;
}

/* ---- checkpoints (§12.10) ---- */

void ns_ins_set_hook(ns_ins_t *self, ns_ins_hook_fn fn, void *ctx)
{
    self->hook = fn;
    self->hook_ctx = ctx;
}

int ns_ins_save_snapshot(const ns_ins_t *self, ns_buf_t *out)
{
    if (!self->have_snap)
        return NS_ERR_STATE;
    ns_buf_put_bytes(out, self->snap.data, self->snap.len);
    return ns_buf_error(out);
}

/* ns_buf_put_f64s with no data for an empty or unallocated array */
static void s_put_f64s(ns_buf_t *b, const double *v, size_t n)
{
    static const double none = 0.0;
    ns_buf_put_f64s(b, n && v ? v : &none, n && v ? n : 0);
}

#define S_TAG "INSS"
#define S_VERSION 2u /* 2: non-finite likelihood counts at the end */

int ns_ins_save(const ns_ins_t *self, ns_buf_t *b)
{
    const ns_ins_config_t *c = &self->cfg;
    if (self->released)
        return NS_ERR_INVAL;
    ns_buf_put_tag(b, S_TAG, S_VERSION);
    /* what the state depends on; checked on load */
    uint64_t fixed[10] = {self->d, c->nlive, c->n_initial, c->min_samples, c->min_remove,
                          (uint64_t)c->draw_iid_live, c->flow.n_blocks, c->flow.n_layers,
                          c->flow.n_neurons, (uint64_t)c->flow.linear};
    for (int k = 0; k < 10; k++)
        ns_buf_put_u64(b, fixed[k]);
    ns_buf_put_f64(b, c->q);
    ns_buf_put_i64(b, self->iteration);
    ns_buf_put_f64(b, self->threshold);
    ns_buf_put_f64(b, self->criterion);
    ns_buf_put_f64(b, self->ess);
    ns_buf_put_u64(b, self->n_likelihood);
    const double t[5] = {self->t_sampling, self->t_likelihood, self->t_training, self->t_draw,
                         self->t_update};
    s_put_f64s(b, t, 5);
    ns_buf_put_u8(b, (uint8_t)self->finalised);
    const ns_rng_t *rngs[5] = {self->rng_prior, self->rng_flow, self->rng_train, self->rng_draw,
                               self->rng_post};
    for (int k = 0; k < 5; k++)
        ns_rng_put(b, rngs[k]);
    ns_buf_put_u64(b, self->n_flows);
    for (size_t k = 0; k < self->n_flows; k++)
        ns_flow_save(self->flows[k], b);
    for (size_t k = 0; k <= self->n_flows; k++)
        ns_buf_put_u64(b, self->counts[k]);
    size_t nsets = self->ts != self->is ? 2 : 1, nc = self->n_flows + 1, d = self->d;
    for (size_t k = 0; k < nsets; k++) {
        const s_set_t *s = &self->sets[k];
        ns_buf_put_u64(b, s->n);
        s_put_f64s(b, s->u, s->n * d);
        s_put_f64s(b, s->x, s->n * d);
        const double *v[8] = {s->logL, s->logP, s->logU, s->logQ, s->logW, s->it};
        for (int f = 0; f < 6; f++)
            s_put_f64s(b, v[f], s->n);
        ns_buf_put_bytes(b, s->live, s->n);
        for (size_t i = 0; i < s->n; i++)
            for (size_t j = 0; j < nc; j++)
                ns_buf_put_f64(b, s->log_q[i * s->kc + j]);
        ns_buf_put_f64(b, s->log_z);
        ns_buf_put_f64(b, s->log_z_err);
        ns_buf_put_f64(b, s->log_z_prev);
    }
    ns_buf_put_u64(b, self->n_hist);
    for (int h = 0; h < H__COUNT; h++)
        s_put_f64s(b, self->hist[h], self->n_hist);
    ns_buf_put_u64(b, self->finalised ? self->n_post : 0);
    for (size_t k = 0; self->finalised && k < self->n_post; k++)
        ns_buf_put_u64(b, self->post_idx[k]);
    s_put_f64s(b, self->post_logw, self->finalised ? self->is->n : 0);
    ns_buf_put_u64(b, self->nf_nan);
    ns_buf_put_u64(b, self->nf_neg_inf);
    ns_buf_put_u8(b, (uint8_t)self->nf_warned);
    return ns_buf_error(b);
}

/* A u64 count of items of item_size bytes that the buffer can hold. */
static int s_get_count(ns_buf_t *b, size_t item_size, size_t *out)
{
    uint64_t v;
    int rc = ns_buf_get_u64(b, &v);
    if (rc != NS_OK)
        return rc;
    if (item_size && v > ns_buf_remaining(b) / item_size)
        return NS_ERR_CORRUPT;
    *out = (size_t)v;
    return NS_OK;
}

int ns_ins_load(ns_ins_t *self, ns_buf_t *b)
{
    const ns_ins_config_t *c = &self->cfg;
    uint32_t ver;
    int rc = ns_buf_get_tag(b, S_TAG, &ver);
    if (rc != NS_OK)
        return rc;
    if (ver < 1 || ver > S_VERSION || self->n_flows || self->sets[0].n)
        return NS_ERR_CORRUPT;
    uint64_t want[10] = {self->d, c->nlive, c->n_initial, c->min_samples, c->min_remove,
                         (uint64_t)c->draw_iid_live, c->flow.n_blocks, c->flow.n_layers,
                         c->flow.n_neurons, (uint64_t)c->flow.linear};
    for (int k = 0; k < 10; k++) {
        uint64_t v;
        if ((rc = ns_buf_get_u64(b, &v)) != NS_OK)
            return rc;
        if (v != want[k])
            return NS_ERR_CORRUPT;
    }
    double q;
    int64_t it;
    uint8_t fin;
    double t[5];
    if ((rc = ns_buf_get_f64(b, &q)) || (rc = ns_buf_get_i64(b, &it)) ||
        (rc = ns_buf_get_f64(b, &self->threshold)) || (rc = ns_buf_get_f64(b, &self->criterion)) ||
        (rc = ns_buf_get_f64(b, &self->ess)) || (rc = ns_buf_get_u64(b, &self->n_likelihood)) ||
        (rc = ns_buf_get_f64s_n(b, t, 5)) || (rc = ns_buf_get_u8(b, &fin)))
        return rc ? rc : NS_ERR_CORRUPT;
    if (q != c->q || it < 0)
        return NS_ERR_CORRUPT;
    self->iteration = (long)it;
    self->t_sampling = t[0];
    self->t_likelihood = t[1];
    self->t_training = t[2];
    self->t_draw = t[3];
    self->t_update = t[4];
    ns_rng_t *rngs[5] = {self->rng_prior, self->rng_flow, self->rng_train, self->rng_draw,
                         self->rng_post};
    for (int k = 0; k < 5; k++)
        if ((rc = ns_rng_get(b, rngs[k])) != NS_OK)
            return rc;
    size_t nf;
    if ((rc = s_get_count(b, 8, &nf)) != NS_OK)
        return rc;
    if (nf && !(self->flows = calloc(nf, sizeof *self->flows)))
        return NS_ERR_NOMEM;
    self->flows_cap = nf;
    ns_rng_t *scratch = ns_rng_new(0, 0);
    if (!scratch)
        return NS_ERR_NOMEM;
    for (size_t k = 0; rc == NS_OK && k < nf; k++) {
        if (!(self->flows[k] = ns_flow_new(&self->cfg.flow, scratch)))
            rc = NS_ERR_NOMEM;
        else {
            self->n_flows = k + 1;
            rc = ns_flow_load(self->flows[k], b);
        }
    }
    ns_rng_destroy(&scratch);
    if (rc != NS_OK)
        return rc;
    size_t nc = nf + 1, d = self->d;
    if (s_grow_mixture(self, nc) != NS_OK)
        return NS_ERR_NOMEM;
    for (size_t k = 0; k < nc; k++) {
        uint64_t v;
        if ((rc = ns_buf_get_u64(b, &v)) != NS_OK)
            return rc;
        self->counts[k] = (size_t)v;
    }
    ns_ins_mixture_weights(self->counts, nc, self->alpha, self->log_alpha);
    size_t nsets = self->ts != self->is ? 2 : 1;
    for (size_t k = 0; k < nsets; k++) {
        s_set_t *s = &self->sets[k];
        size_t n;
        if ((rc = s_get_count(b, 8 * (2 * d + 6 + nc), &n)) != NS_OK ||
            (rc = s_set_reserve(s, n, d, nc + 1)) != NS_OK)
            return rc;
        s->n = n;
        double *v[8] = {s->logL, s->logP, s->logU, s->logQ, s->logW, s->it};
        if ((rc = ns_buf_get_f64s_n(b, s->u, n * d)) || (rc = ns_buf_get_f64s_n(b, s->x, n * d)))
            return rc;
        for (int f = 0; f < 6; f++)
            if ((rc = ns_buf_get_f64s_n(b, v[f], n)) != NS_OK)
                return rc;
        if ((rc = ns_buf_get_bytes(b, s->live, n)) != NS_OK)
            return rc;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < nc; j++)
                if ((rc = ns_buf_get_f64(b, &s->log_q[i * s->kc + j])) != NS_OK)
                    return rc;
        if ((rc = ns_buf_get_f64(b, &s->log_z)) || (rc = ns_buf_get_f64(b, &s->log_z_err)) ||
            (rc = ns_buf_get_f64(b, &s->log_z_prev)))
            return rc;
    }
    size_t nh;
    if ((rc = s_get_count(b, 8 * H__COUNT, &nh)) != NS_OK)
        return rc;
    self->n_hist = 0;
    for (int h = 0; h < H__COUNT; h++)
        if (s_grow(&self->hist[h], nh, sizeof(double)))
            return NS_ERR_NOMEM;
    self->hist_cap = nh ? nh : 1;
    for (int h = 0; h < H__COUNT; h++)
        if ((rc = ns_buf_get_f64s_n(b, self->hist[h], nh)) != NS_OK)
            return rc;
    self->n_hist = nh;
    size_t np;
    if ((rc = s_get_count(b, 8, &np)) != NS_OK)
        return rc;
    if (!(self->post_idx = malloc((np ? np : 1) * sizeof *self->post_idx)))
        return NS_ERR_NOMEM;
    for (size_t k = 0; k < np; k++) {
        uint64_t v;
        if ((rc = ns_buf_get_u64(b, &v)) != NS_OK)
            return rc;
        if (v >= self->is->n)
            return NS_ERR_CORRUPT;
        self->post_idx[k] = (size_t)v;
    }
    self->n_post = np;
    size_t nw = 0;
    free(self->post_logw);
    self->post_logw = NULL;
    if ((rc = ns_buf_get_f64s(b, &self->post_logw, &nw, self->is->n)) != NS_OK)
        return rc;
    if (fin && nw != self->is->n)
        return NS_ERR_CORRUPT;
    if (ver >= 2) { /* version 1 checkpoints had no NaN likelihoods (they stopped the run) */
        uint8_t w;
        if ((rc = ns_buf_get_u64(b, &self->nf_nan)) || (rc = ns_buf_get_u64(b, &self->nf_neg_inf)) ||
            (rc = ns_buf_get_u8(b, &w)))
            return rc;
        self->nf_warned = w != 0;
    }
    self->finalised = fin != 0;
    self->loaded = 1;
    return NS_OK;
}
