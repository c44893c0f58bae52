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
            ns_flow_forward(s->flow, src + i0 * s->d, m, zz, NULL);
            for (size_t i = 0; i < m; i++) {
                double r2 = 0.0;
                for (size_t j = 0; j < s->d; j++)
                    r2 += zz[i * s->d + j] * zz[i * s->d + j];
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

int ns_fp_populate(s_fp_t *s, const double *worst)
{
    if (!s->trainings) {
        ns_error(NS_FP_MOD, "the flow proposal was asked for points before its first training");
        return NS_ERR_STATE;
    }
    double t0 = ns_now(), t_like = 0.0;
    size_t d = s->d, st = s->stride, D = s->drawsize;
    /* an interrupted population is repeated from the same generator state */
    ns_rng_state_save(s->rng_pop, s->rng_snap);
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
    double radius;
    double thr = s_radius(s, worst, &radius);
    double lthr = -INFINITY;
    if (s->use_lthreshold && worst && isfinite(worst[NS_LP_LOGL(d)]))
        lthr = worst[NS_LP_LOGL(d)];
    double sqT = sqrt(s->temperature), lsqT = (double)d * log(sqT);
    size_t accepted = 0, proposed = 0, lt_evals = 0;
    int rc = NS_OK;
    while (accepted < N) {
        if (ns_interrupt_pending()) {
            rc = NS_ERR_INTERRUPTED;
            break;
        }
        /* 1. latent draws inside the radius */
        size_t m = 0;
        for (size_t i = 0; i < D; i++) {
            double r2 = 0.0, *zi = s->z + m * d;
            for (size_t j = 0; j < d; j++) {
                zi[j] = sqT * ns_rng_gaussian(s->rng_pop);
                r2 += zi[j] * zi[j];
            }
            if (sqrt(r2) <= thr)
                m++;
        }
        proposed += D;
        if (m > 0) {
            /* 2. through the flow and the inverse reparameterisation */
            double ti = ns_now();
            rc = s->pop_f32 ? ns_flow_inverse_f32(s->flow, s->z, m, s->xp, s->logj)
                            : ns_flow_inverse(s->flow, s->z, m, s->xp, s->logj);
            s->time_inverse += ns_now() - ti;
            if (rc != NS_OK)
                break;
            for (size_t i = 0; i < m; i++) {
                double lz = ns_flow_log_normal(s->z + i * d, d);
                if (s->temperature != 1.0) {
                    double r2 = 0.0;
                    for (size_t j = 0; j < d; j++)
                        r2 += s->z[i * d + j] * s->z[i * d + j];
                    lz = -0.5 * r2 / s->temperature - 0.5 * (double)d * log(2 * M_PI) - lsqT;
                }
                s->logq[i] = lz - s->logj[i];
                s->logj[i] = 0.0;
            }
            ns_reparam_inverse(s->rp, s->xp, m, s->x, s->logj);
            /* 3. filters: finite, in bounds, min log q */
            size_t k = 0;
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
                s->logq[k++] = lq;
            }
            m = k;
        }
        if (m > 0) {
            if ((rc = ns_model_log_prior(s->env.model, s->x, m, s->logp)) != NS_OK) {
                ns_error(NS_FP_MOD, "log-prior failed during population: %s",
                         ns_model_last_error(s->env.model));
                break;
            }
            if (s->use_lthreshold) {
                double tl = ns_now();
                rc = s->env.evaluate(s->env.ctx, s->x, m, s->logl);
                t_like += ns_now() - tl; /* charged to population time (§2.6 e) */
                if (rc != NS_OK)
                    break;
                lt_evals += m;
                size_t k = 0;
                for (size_t i = 0; i < m; i++) {
                    if (!(s->logl[i] > lthr))
                        continue;
                    if (k != i) {
                        memmove(s->x + k * d, s->x + i * d, d * sizeof(double));
                        s->logq[k] = s->logq[i];
                        s->logp[k] = s->logp[i];
                        s->logl[k] = s->logl[i];
                    }
                    k++;
                }
                m = k;
            }
            /* 4. rejection sampling with the per-batch maximum weight */
            double wmax = -INFINITY;
            for (size_t i = 0; i < m; i++) {
                s->logq[i] = s->logp[i] - s->logq[i]; /* now log w */
                if (s->logq[i] > wmax)
                    wmax = s->logq[i];
            }
            size_t acc = 0;
            for (size_t i = 0; i < m; i++) {
                double lw = s->logq[i] - wmax;
                if (!isfinite(wmax) || !(lw > log(ns_rng_uniform(s->rng_pop))))
                    continue;
                if (accepted + acc < N) {
                    double *row = s->pool + (accepted + acc) * st;
                    memcpy(row, s->x + i * d, d * sizeof(double));
                    row[NS_LP_LOGP(d)] = s->logp[i];
                    row[NS_LP_LOGL(d)] = s->use_lthreshold ? s->logl[i] : NAN;
                    row[NS_LP_IT(d)] = 0.0;
                }
                acc++;
            }
            accepted += acc;
        }
        if (proposed > s->max_draws) {
            if (accepted < N)
                ns_warn(NS_FP_MOD, "population stopped after %zu latent draws with %zu of %zu "
                        "points", proposed, accepted, N);
            break;
        }
    }
    if (rc != NS_OK) {
        if (rc == NS_ERR_INTERRUPTED) {
            /* repeated from the same state on resume: its evaluations too */
            ns_rng_state_load(s->rng_pop, s->rng_snap, ns_rng_state_size(s->rng_pop));
            if (lt_evals && s->env.uncount)
                s->env.uncount(s->env.ctx, lt_evals);
        }
        return rc;
    }
    size_t n = accepted < N ? accepted : N;
    if (n == 0) {
        ns_error(NS_FP_MOD, "population accepted no points after %zu latent draws; the flow "
                 "does not cover the prior region above the likelihood contour", proposed);
        return NS_ERR_NUMERIC;
    }
    double t_pop = ns_now() - t0;
    if (!s->use_lthreshold && (rc = s->env.evaluate_rows(s->env.ctx, s->pool, n)) != NS_OK) {
        if (rc == NS_ERR_INTERRUPTED)
            ns_rng_state_load(s->rng_pop, s->rng_snap, ns_rng_state_size(s->rng_pop));
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        s->order[i] = i;
    ns_rng_shuffle(s->rng_pop, s->order, n, sizeof *s->order);
    s->pool_n = n;
    s->remaining = n;
    s->populated = 1;
    s->populations++;
    s->total_draws += (double)proposed;
    s->total_accepted += (double)accepted;
    s->last_radius = radius;
    s->last_acceptance = (double)accepted / (double)proposed;
    s->time_pop += t_pop - t_like;
    ns_debug(NS_FP_MOD, "population %ld: %zu points, acceptance %.4f, radius %.4f, scale %.2f",
             s->populations, n, s->last_acceptance, radius, scale);
    if (s->env.report_population) {
        ns_population_t pop = {s->last_acceptance, radius, t_pop, n, 1};
        s->env.report_population(s->env.ctx, &pop);
    }
    return NS_OK;
}

