/* flow_population.c - FlowProposal pool population: latent radius,
 * truncated latent draws, inverse flow and reparameterisation, filters and
 * rejection sampling (docs/algorithm.md §2.6-§2.7). */
#include "flow_proposal_impl.h"
#include "livepoint.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* Latent radius for this population (docs/algorithm.md §2.7); INFINITY without the rule. */
static double s_radius(s_fp_t *s, const double *worst, double *r_out)
{
    if (!s->truncate) {
        *r_out = NAN;
        return INFINITY;
    }
    double r;
    if (s->radius_mode == RM_CONSTANT_VOLUME) {
        *r_out = s->r_cv;
        return s->r_cv; /* fuzz is 1 in this mode */
    }
    if (s->radius_mode == RM_FIXED) {
        r = s->fixed_radius;
    } else {
        /* adaptive: largest latent norm of the worst point (mirrored), or of
         * all training points */
        const double *src = NULL;
        size_t n = 0;
        double *buf = s->xp, *zz = s->z;
        if (s->radius_with_all && s->radius_data) {
            src = s->radius_data;
            n = s->radius_n;
        } else if (worst) {
            n = ns_reparam_forward_mirror(s->rp, worst, 1, s->stride, buf, NULL, NULL,
                                          s->rng_pop, 1);
            src = buf;
        }
        r = 0.0;
        for (size_t i0 = 0; i0 < n; i0 += s->drawsize) {
            size_t m = n - i0 < s->drawsize ? n - i0 : s->drawsize;
            ns_flow_forward(s->flow, src + i0 * s->dp, m, zz, NULL);
            for (size_t i = 0; i < m; i++) {
                double r2 = 0.0;
                for (size_t j = 0; j < s->dp; j++)
                    r2 += zz[i * s->dp + j] * zz[i * s->dp + j];
                if (sqrt(r2) > r)
                    r = sqrt(r2);
            }
        }
        if (n == 0)
            r = s->r_cv;
    }
    if (!isnan(s->min_radius) && r < s->min_radius)
        r = s->min_radius;
    if (!isnan(s->max_radius) && r > s->max_radius)
        r = s->max_radius;
    *r_out = r;
    return s->fuzz * r;
}

/* One population in progress. */
typedef struct {
    size_t N;                  /* pool size wanted */
    double scale;              /* pool size scale of this population */
    double thr;                /* latent radius cut (fuzz included; INFINITY = none) */
    double radius;             /* the radius r reported */
    double lthr;               /* likelihood threshold (-INFINITY = none) */
    double sqT, lsqT;          /* sqrt(temperature), d log sqrt(temperature) */
    size_t accepted, proposed; /* points accepted, latent draws made */
    size_t lt_evals;           /* likelihood evaluations for the threshold */
    double t_like;             /* their wall seconds */
    int overlap;               /* pool rows are evaluated in the background */
    size_t submitted;          /* pool rows handed to the background so far */
    size_t inflight;           /* rows of the batch in flight, 0: none */
    size_t bg_evals;           /* evaluations of finished background batches */
    double t_wait;             /* wall seconds spent ending background batches */
} s_pop_t;

/* Pool size int(scale * poolsize) within [1, pool_cap], with scale =
 * clip(1 / ns_acceptance, 1, max_scale) (max_scale at acceptance 0) when
 * the pool size is updated, else 1. */
static size_t s_pool_size(const s_fp_t *s, double *scale_out)
{
    double scale = 1.0;
    if (s->update_poolsize) {
        scale = s->ns_acceptance > 0 ? 1.0 / s->ns_acceptance : s->max_scale;
        if (!(scale >= 1.0))
            scale = 1.0;
        if (scale > s->max_scale)
            scale = s->max_scale;
    }
    size_t N = (size_t)(scale * (double)s->poolsize);
    if (N < 1)
        N = 1;
    if (N > s->pool_cap)
        N = s->pool_cap;
    *scale_out = scale;
    return N;
}

/* Step 1: drawsize latent draws sqrt(T) N(0, I) from rng_pop; those with
 * norm <= thr are kept at the front of s->z. Returns how many. */
static size_t s_draw_latent(s_fp_t *s, const s_pop_t *p)
{
    size_t d = s->dp, m = 0;
    for (size_t i = 0; i < s->drawsize; i++) {
        double r2 = 0.0, *zi = s->z + m * d;
        for (size_t j = 0; j < d; j++) {
            zi[j] = p->sqT * ns_rng_gaussian(s->rng_pop);
            r2 += zi[j] * zi[j];
        }
        if (sqrt(r2) <= p->thr)
            m++;
    }
    return m;
}

/* Step 2: the m latent rows through the inverse flow (float32 or float64)
 * into s->xp, log q' = log N_T(z) - log|dx'/dz| into s->logq, then the
 * inverse reparameterisation into s->x with its log-Jacobian in s->logj. */
static int s_to_physical(s_fp_t *s, const s_pop_t *p, size_t m)
{
    size_t d = s->dp;
    double ti = ns_now();
    int rc = s->pop_f32 ? ns_flow_inverse_f32(s->flow, s->z, m, s->xp, s->logj)
                        : ns_flow_inverse(s->flow, s->z, m, s->xp, s->logj);
    s->time_inverse += ns_now() - ti;
    if (rc != NS_OK)
        return rc;
    for (size_t i = 0; i < m; i++) {
        double lz = ns_flow_log_normal(s->z + i * d, d);
        if (s->temperature != 1.0) {
            double r2 = 0.0;
            for (size_t j = 0; j < d; j++)
                r2 += s->z[i * d + j] * s->z[i * d + j];
            lz = -0.5 * r2 / s->temperature - 0.5 * (double)d * log(2 * M_PI) - p->lsqT;
        }
        s->logq[i] = lz - s->logj[i];
        s->logj[i] = 0.0;
    }
    if (s->has_lpr) {
        memset(s->lpr, 0, m * sizeof(double));
        ns_reparam_inverse_prior(s->rp, s->xp, m, s->x, s->logj, s->lpr);
    } else {
        ns_reparam_inverse(s->rp, s->xp, m, s->x, s->logj);
    }
    return NS_OK;
}

/* Step 3: keep the rows with a finite log q, finite coordinates inside the
 * prior bounds and (with --min-log-q) log q > min_log_q, compacted to the
 * front of s->x with their log q in s->logq. Returns how many. */
static size_t s_filter_valid(s_fp_t *s, size_t m)
{
    size_t d = s->d, k = 0;
    for (size_t i = 0; i < m; i++) {
        double lq = s->logq[i] - s->logj[i];
        const double *xi = s->x + i * d;
        if (!isfinite(lq))
            continue;
        int ok = 1;
        for (size_t j = 0; j < d && ok; j++)
            ok = isfinite(xi[j]);
        if (!ok || !ns_model_in_bounds(s->env.model, xi))
            continue;
        if (s->use_min_log_q && !(lq > s->min_log_q))
            continue;
        if (k != i)
            memmove(s->x + k * d, xi, d * sizeof(double));
        if (s->has_lpr)
            s->lpr[k] = s->lpr[i];
        s->logq[k++] = lq;
    }
    return k;
}

/* Step 3 (--likelihood-threshold): evaluate the m rows' likelihoods (time
 * charged to the population, docs/algorithm.md §2.6 e) and keep those above
 * lthr, compacted with their log q, log p and log L. Returns the rows kept
 * in *m_io; NS_OK or the evaluation's error. */
static int s_filter_likelihood(s_fp_t *s, s_pop_t *p, size_t *m_io)
{
    size_t d = s->d, m = *m_io;
    double tl = ns_now();
    int rc = s->env.evaluate(s->env.ctx, s->x, m, s->logl);
    p->t_like += ns_now() - tl;
    if (rc != NS_OK)
        return rc;
    p->lt_evals += m;
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        if (!(s->logl[i] > p->lthr))
            continue;
        if (k != i) {
            memmove(s->x + k * d, s->x + i * d, d * sizeof(double));
            s->logq[k] = s->logq[i];
            s->logp[k] = s->logp[i];
            s->logl[k] = s->logl[i];
            if (s->has_lpr)
                s->lpr[k] = s->lpr[i];
        }
        k++;
    }
    *m_io = k;
    return NS_OK;
}

/* Step 4: rejection sampling of the m rows on log w = log p - log q
 * normalised by the batch maximum (accept when log w - max > log u, u from
 * rng_pop); accepted rows are written to the pool while it has room. Returns
 * the number accepted (those past the pool's end included). */
static size_t s_reject(s_fp_t *s, const s_pop_t *p, size_t m)
{
    size_t d = s->d;
    double wmax = -INFINITY;
    for (size_t i = 0; i < m; i++) {
        /* now log w; drawn radii add their chi log-density to the prior */
        s->logq[i] = (s->has_lpr ? s->logp[i] + s->lpr[i] : s->logp[i]) - s->logq[i];
        if (s->logq[i] > wmax)
            wmax = s->logq[i];
    }
    size_t acc = 0;
    for (size_t i = 0; i < m; i++) {
        double lw = s->logq[i] - wmax;
        if (!isfinite(wmax) || !(lw > log(ns_rng_uniform(s->rng_pop))))
            continue;
        if (p->accepted + acc < p->N) {
            double *row = s->pool + (p->accepted + acc) * s->stride;
            memcpy(row, s->x + i * d, d * sizeof(double));
            row[NS_LP_LOGP(d)] = s->logp[i];
            row[NS_LP_LOGL(d)] = s->use_lthreshold ? s->logl[i] : NAN;
            row[NS_LP_IT(d)] = 0.0;
        }
        acc++;
    }
    return acc;
}

/* One latent batch through steps 1-4: draws, inverse pass, filters, log
 * prior (and the likelihood threshold), rejection into the pool. */
static int s_latent_batch(s_fp_t *s, s_pop_t *p)
{
    size_t m = s_draw_latent(s, p);
    p->proposed += s->drawsize;
    int rc;
    if (m > 0) {
        if ((rc = s_to_physical(s, p, m)) != NS_OK)
            return rc;
        m = s_filter_valid(s, m);
    }
    if (m == 0)
        return NS_OK;
    if ((rc = ns_model_log_prior(s->env.model, s->x, m, s->logp)) != NS_OK) {
        ns_error(NS_FP_MOD, "log-prior failed during population: %s",
                 ns_model_last_error(s->env.model));
        return rc;
    }
    if (s->use_lthreshold && (rc = s_filter_likelihood(s, p, &m)) != NS_OK)
        return rc;
    p->accepted += s_reject(s, p, m);
    return NS_OK;
}

/* End the background batch in flight (waiting for it if need be); its
 * evaluations are counted by then. NS_OK when none is in flight. */
static int s_bg_end(s_fp_t *s, s_pop_t *p)
{
    if (!p->inflight)
        return NS_OK;
    double t0 = ns_now();
    int rc = s->env.rows_end(s->env.ctx);
    p->t_wait += ns_now() - t0;
    if (rc == NS_OK)
        p->bg_evals += p->inflight;
    p->inflight = 0;
    return rc;
}

/* Overlap (docs/algorithm.md §2.6): once the batch in flight is done (or
 * none is), the rows accepted since the last hand-off go to the evaluator
 * in the background while the next latent batches are drawn. Accepted
 * rows are final, and nothing in the population reads their logL. */
static int s_bg_step(s_fp_t *s, s_pop_t *p)
{
    if (!p->overlap || p->accepted >= p->N)
        return NS_OK;   /* a full pool's last rows are evaluated at the end */
    if (p->inflight) {
        if (!s->env.rows_poll(s->env.ctx))
            return NS_OK;
        int rc = s_bg_end(s, p);
        if (rc != NS_OK)
            return rc;
    }
    /* at least an eighth of the pool per hand-off: with fast likelihoods
     * many tiny batches would cost more in messages than they hide */
    size_t min_rows = p->N / 8 > 0 ? p->N / 8 : 1;
    if (p->accepted < p->submitted + min_rows)
        return NS_OK;
    size_t m = p->accepted - p->submitted;
    int rc = s->env.rows_begin(s->env.ctx, s->pool + p->submitted * s->stride, m);
    if (rc != NS_OK)
        return rc;
    p->inflight = m;
    p->submitted = p->accepted;
    return NS_OK;
}

/* Latent batches until the pool is full or more than max_draws latent
 * draws were made (with a warning if short); an interrupt pending before a
 * batch stops with NS_ERR_INTERRUPTED. */
static int s_fill_pool(s_fp_t *s, s_pop_t *p)
{
    while (p->accepted < p->N) {
        if (ns_interrupt_pending())
            return NS_ERR_INTERRUPTED;
        int rc = s_latent_batch(s, p);
        if (rc == NS_OK)
            rc = s_bg_step(s, p);
        if (rc != NS_OK)
            return rc;
        if (p->proposed > s->max_draws) {
            if (p->accepted < p->N)
                ns_warn(NS_FP_MOD, "population stopped after %zu latent draws with %zu of %zu "
                        "points", p->proposed, p->accepted, p->N);
            break;
        }
    }
    return NS_OK;
}

/* The generator back to its state at the start of the population, so that
 * an interrupted population is repeated exactly on resume. */
static void s_rewind_rng(s_fp_t *s)
{
    ns_rng_state_load(s->rng_pop, s->rng_snap, ns_rng_state_size(s->rng_pop));
}

/* The n pool rows become the pool: a random pop order, the counters and
 * the report. t_pop is the population's wall time, likelihoods included. */
static void s_publish_pool(s_fp_t *s, const s_pop_t *p, size_t n, double t_pop)
{
    for (size_t i = 0; i < n; i++)
        s->order[i] = i;
    ns_rng_shuffle(s->rng_pop, s->order, n, sizeof *s->order);
    s->pool_n = n;
    s->remaining = n;
    s->populated = 1;
    s->populations++;
    s->total_draws += (double)p->proposed;
    s->total_accepted += (double)p->accepted;
    s->last_radius = p->radius;
    s->last_acceptance = (double)p->accepted / (double)p->proposed;
    s->time_pop += t_pop - p->t_like;
    ns_debug(NS_FP_MOD, "population %ld: %zu points, acceptance %.4f, radius %.4f, scale %.2f",
             s->populations, n, s->last_acceptance, p->radius, p->scale);
    if (s->env.report_population) {
        ns_population_t pop = {s->last_acceptance, p->radius, t_pop, n, 1};
        s->env.report_population(s->env.ctx, &pop);
    }
}

int ns_fp_populate(s_fp_t *s, const double *worst)
{
    if (!s->trainings) {
        ns_error(NS_FP_MOD, "the flow proposal was asked for points before its first training");
        return NS_ERR_STATE;
    }
    double t0 = ns_now();
    size_t d = s->d;
    /* an interrupted population is repeated from the same generator state */
    ns_rng_state_save(s->rng_pop, s->rng_snap);
    s_pop_t p;
    memset(&p, 0, sizeof p);
    p.N = s_pool_size(s, &p.scale);
    p.thr = s_radius(s, worst, &p.radius);
    p.lthr = -INFINITY;
    if (s->use_lthreshold && worst && isfinite(worst[NS_LP_LOGL(d)]))
        p.lthr = worst[NS_LP_LOGL(d)];
    p.sqT = sqrt(s->temperature);
    p.lsqT = (double)s->dp * log(p.sqT);
    p.overlap = !s->use_lthreshold && s->env.rows_begin && s->env.rows_poll && s->env.rows_end;
    int rc = s_fill_pool(s, &p);
    /* whatever happened, the batch in flight is over before we go on */
    int rc_bg = s_bg_end(s, &p);
    if (rc == NS_OK)
        rc = rc_bg;
    size_t n = p.accepted < p.N ? p.accepted : p.N;
    if (rc == NS_OK && n == 0) {
        ns_error(NS_FP_MOD, "population accepted no points after %zu latent draws; the flow "
                 "does not cover the prior region above the likelihood contour", p.proposed);
        return NS_ERR_NUMERIC;
    }
    /* the population's own time: likelihoods of the pool not included */
    double t_pop = ns_now() - t0 - p.t_wait;
    if (rc == NS_OK && !s->use_lthreshold && n > p.submitted)
        rc = s->env.evaluate_rows(s->env.ctx, s->pool + p.submitted * s->stride, n - p.submitted);
    if (rc != NS_OK) {
        if (rc == NS_ERR_INTERRUPTED) {
            /* repeated from the same state on resume: its evaluations too */
            s_rewind_rng(s);
            size_t counted = p.lt_evals + p.bg_evals;
            if (counted && s->env.uncount)
                s->env.uncount(s->env.ctx, counted);
        }
        return rc;
    }
    if (p.submitted)
        ns_debug(NS_FP_MOD, "population %ld: %zu of %zu points evaluated while populating",
                 s->populations + 1, p.submitted, n);
    s_publish_pool(s, &p, n, t_pop);
    return NS_OK;
}
