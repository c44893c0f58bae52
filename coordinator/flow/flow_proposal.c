/* flow_proposal.c - FlowProposal: training on the live points, pool
 * population from the truncated flow, draws (SPEC.md §2.3-§2.7). */
#include "flow_proposal.h"
#include "flow.h"
#include "flow_io.h"
#include "flow_train.h"
#include "reparam.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"

#include <cjson/cJSON.h>
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "flow"

enum { RM_CONSTANT_VOLUME = 0, RM_ADAPTIVE = 1, RM_FIXED = 2 };

typedef struct {
    ns_proposal_env_t env;       /* borrowed callbacks and model */
    size_t d;                    /* parameters = flow inputs d' */
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
    unsigned char *rng_snap;     /* rng_pop state at the start of a population */

    /* counters */
    long populations;
    double total_draws, total_accepted;
    double last_radius, last_acceptance;
    double total_epochs;         /* epochs over all trainings */
    ns_train_stats_t last_train;
} s_fp_t;

static double s_opt_double_or(const ns_config_t *c, const char *name, double dflt)
{
    return ns_config_is_set(c, name) ? ns_config_double(c, name) : dflt;
}

static void s_destroy(void *impl)
{
    s_fp_t *s = impl;
    if (!s)
        return;
    ns_reparam_destroy(&s->rp);
    ns_flow_destroy(&s->flow);
    ns_adamw_destroy(&s->opt);
    ns_rng_destroy(&s->rng_train);
    ns_rng_destroy(&s->rng_pop);
    free(s->weights_path);
    free(s->radius_data);
    free(s->pool);
    free(s->order);
    free(s->z);
    free(s->xp);
    free(s->x);
    free(s->logq);
    free(s->logj);
    free(s->logp);
    free(s->logl);
    free(s->rng_snap);
    free(s);
}

/* ---------------------------------------------------------------- draw */

static int s_populate(s_fp_t *s, const double *worst);
static void s_put_rng(ns_buf_t *b, const ns_rng_t *r);
static int s_get_rng(ns_buf_t *b, ns_rng_t *r);

static int s_draw(void *impl, const double *worst, double *out)
{
    s_fp_t *s = impl;
    int rc;
    if (!s->populated && (rc = s_populate(s, worst)) != NS_OK)
        return rc;
    size_t i = s->order[--s->remaining];
    memcpy(out, s->pool + i * s->stride, s->stride * sizeof(double));
    if (s->remaining == 0)
        s->populated = 0;
    return NS_OK;
}

static int s_is_populated(const void *impl) { return ((const s_fp_t *)impl)->populated; }

static void s_set_acc(void *impl, double a) { ((s_fp_t *)impl)->ns_acceptance = a; }

/* ---------------------------------------------------------- population */

/* Latent radius for this population (SPEC §2.7); INFINITY without the rule. */
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

static int s_populate(s_fp_t *s, const double *worst)
{
    if (!s->trainings) {
        ns_error(MOD, "the flow proposal was asked for points before its first training");
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
    size_t accepted = 0, proposed = 0;
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
            rc = s->pop_f32 ? ns_flow_inverse_f32(s->flow, s->z, m, s->xp, s->logj)
                            : ns_flow_inverse(s->flow, s->z, m, s->xp, s->logj);
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
                ns_error(MOD, "log-prior failed during population: %s",
                         ns_model_last_error(s->env.model));
                break;
            }
            if (s->use_lthreshold) {
                double tl = ns_now();
                rc = s->env.evaluate(s->env.ctx, s->x, m, s->logl);
                t_like += ns_now() - tl; /* charged to population time (§2.6 e) */
                if (rc != NS_OK)
                    break;
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
                ns_warn(MOD, "population stopped after %zu latent draws with %zu of %zu "
                        "points", proposed, accepted, N);
            break;
        }
    }
    if (rc != NS_OK) {
        if (rc == NS_ERR_INTERRUPTED)
            ns_rng_state_load(s->rng_pop, s->rng_snap, ns_rng_state_size(s->rng_pop));
        return rc;
    }
    size_t n = accepted < N ? accepted : N;
    if (n == 0) {
        ns_error(MOD, "population accepted no points after %zu latent draws; the flow "
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
    ns_debug(MOD, "population %ld: %zu points, acceptance %.4f, radius %.4f, scale %.2f",
             s->populations, n, s->last_acceptance, radius, scale);
    if (s->env.report_population) {
        ns_population_t pop = {s->last_acceptance, radius, t_pop, n, 1};
        (void)t_like;
        s->env.report_population(s->env.ctx, &pop);
    }
    return NS_OK;
}

/* ------------------------------------------------------------ training */

static int s_train(void *impl, const double *rows, size_t n, const ns_train_info_t *info)
{
    s_fp_t *s = impl;
    size_t d = s->d;
    /* pool points left over are discarded (their likelihoods were paid) */
    s->populated = 0;
    s->remaining = 0;
    /* everything this call changes, so that an interrupted call can be
     * undone and repeated with the identical result */
    ns_buf_t snap;
    ns_buf_init(&snap);
    ns_flow_save(s->flow, &snap);
    ns_adamw_save(s->opt, &snap);
    ns_reparam_save(s->rp, &snap);
    s_put_rng(&snap, s->rng_train);
    size_t mc = ns_reparam_max_copies(s->rp, 0), mr = ns_reparam_max_copies(s->rp, 1);
    double *xp = malloc(n * (mc > mr ? mc : mr) * d * sizeof(double) + 1);
    double *lq = malloc(n * sizeof(double) + 1), *lj = calloc(n + 1, sizeof(double));
    int rc = ns_buf_error(&snap);
    if (rc == NS_OK && (!xp || !lq || !lj))
        rc = NS_ERR_NOMEM;
    if (rc != NS_OK)
        goto done;
    /* resets (SPEC §2.4), never before the first training */
    if (s->trainings > 0) {
        long c = info ? info->training_count : s->trainings;
        long rw = s->reset_flow ? s->reset_flow : s->reset_weights;
        long rpm = s->reset_flow ? s->reset_flow : s->reset_perms;
        int full = info && info->reset_full;
        int w = rw && c % rw == 0, p = rpm && c % rpm == 0;
        if (full || (w && p))
            ns_flow_reset_full(s->flow, s->rng_train);
        else if (w)
            ns_flow_reset_weights(s->flow, s->rng_train);
        else if (p)
            ns_flow_reset_permutations(s->flow, s->rng_train);
        if (full || w || p) {
            ns_adamw_reset(s->opt);
            ns_debug(MOD, "flow reset before training %ld (%s)", c,
                     full || (w && p) ? "full" : w ? "weights" : "permutations");
        }
    }

    if ((rc = ns_reparam_update(s->rp, rows, n, s->stride)) != NS_OK)
        goto done;
    size_t m = ns_reparam_forward_mirror(s->rp, rows, n, s->stride, xp, NULL, NULL,
                                         s->rng_train, 0);
    rc = ns_flow_train(s->flow, s->opt, &s->tcfg, xp, m, s->rng_train, &s->last_train, NULL);
    if (rc != NS_OK) {
        if (rc == NS_ERR_INTERRUPTED) {
            snap.pos = 0;
            if (ns_flow_load(s->flow, &snap) != NS_OK || ns_adamw_load(s->opt, &snap) != NS_OK ||
                ns_reparam_load(s->rp, &snap) != NS_OK || s_get_rng(&snap, s->rng_train) != NS_OK)
                ns_error(MOD, "could not restore the flow after an interrupted training");
        } else {
            ns_error(MOD, "training failed on %zu points: %s", m, ns_strerror(rc));
        }
        goto done;
    }
    s->trainings++;
    s->total_epochs += (double)s->last_train.epochs;
    /* min log q of the training points (for the min-log-q rule) */
    ns_reparam_forward(s->rp, rows, n, s->stride, xp, lj);
    ns_flow_log_prob(s->flow, xp, n, lq);
    s->min_log_q = INFINITY;
    for (size_t i = 0; i < n; i++)
        if (isfinite(lq[i] + lj[i]) && lq[i] + lj[i] < s->min_log_q)
            s->min_log_q = lq[i] + lj[i];
    /* prime rows kept for compute_radius_with_all */
    if (s->radius_with_all) {
        size_t mrad = ns_reparam_forward_mirror(s->rp, rows, n, s->stride, xp, NULL, NULL,
                                                s->rng_train, 1);
        double *rdat = realloc(s->radius_data, mrad * d * sizeof(double) + 1);
        if (!rdat) {
            rc = NS_ERR_NOMEM;
            goto done;
        }
        memcpy(rdat, xp, mrad * d * sizeof(double));
        s->radius_data = rdat;
        s->radius_n = mrad;
    }
    if (s->weights_path) {
        int wrc = ns_flow_weights_write(s->weights_path, s->flow, s->opt);
        if (wrc != NS_OK)
            ns_warn(MOD, "could not write %s: %s", s->weights_path, ns_strerror(wrc));
    }
    ns_debug(MOD, "training %ld: %zu points, batch %zu, %zu epochs, best %zu, val loss %.5f, "
             "%.3f s", s->trainings, s->last_train.n_train + s->last_train.n_val,
             s->last_train.batch_size, s->last_train.epochs, s->last_train.best_epoch,
             s->last_train.best_val_loss, s->last_train.time);
done:
    ns_buf_free(&snap);
    free(xp);
    free(lq);
    free(lj);
    return rc;
}

/* ---------------------------------------------------------- save / load */

#define FP_TAG "FPRP"
#define FP_VERSION 1u

static void s_put_rng(ns_buf_t *b, const ns_rng_t *r)
{
    size_t n = ns_rng_state_size(r);
    unsigned char *t = malloc(n);
    if (!t) {
        b->failed = 1;
        return;
    }
    ns_rng_state_save(r, t);
    ns_buf_put_u64(b, n);
    ns_buf_put_bytes(b, t, n);
    free(t);
}

static int s_get_rng(ns_buf_t *b, ns_rng_t *r)
{
    uint64_t n;
    int rc = ns_buf_get_u64(b, &n);
    if (rc != NS_OK)
        return rc;
    if (n != ns_rng_state_size(r) || n > ns_buf_remaining(b))
        return NS_ERR_CORRUPT;
    unsigned char *t = malloc(n ? n : 1);
    if (!t)
        return NS_ERR_NOMEM;
    rc = ns_buf_get_bytes(b, t, n);
    if (rc == NS_OK)
        rc = ns_rng_state_load(r, t, n);
    free(t);
    return rc;
}

static int s_save(const void *impl, ns_buf_t *b)
{
    const s_fp_t *s = impl;
    ns_buf_put_tag(b, FP_TAG, FP_VERSION);
    ns_buf_put_u64(b, s->d);
    ns_flow_save(s->flow, b);
    ns_adamw_save(s->opt, b);
    ns_reparam_save(s->rp, b);
    s_put_rng(b, s->rng_train);
    s_put_rng(b, s->rng_pop);
    ns_buf_put_f64(b, s->ns_acceptance);
    ns_buf_put_i64(b, s->trainings);
    ns_buf_put_f64(b, s->min_log_q);
    ns_buf_put_i64(b, s->populations);
    ns_buf_put_f64(b, s->total_draws);
    ns_buf_put_f64(b, s->total_accepted);
    ns_buf_put_f64(b, s->last_radius);
    ns_buf_put_f64(b, s->last_acceptance);
    ns_buf_put_f64(b, s->total_epochs);
    ns_buf_put_f64s(b, s->radius_data, s->radius_data ? s->radius_n * s->d : 0);
    /* pool: rows, then the remaining indices in pop order */
    ns_buf_put_u8(b, (uint8_t)s->populated);
    ns_buf_put_f64s(b, s->pool, s->populated ? s->pool_n * s->stride : 0);
    ns_buf_put_u64(b, s->populated ? s->remaining : 0);
    for (size_t i = 0; s->populated && i < s->remaining; i++)
        ns_buf_put_u64(b, s->order[i]);
    return ns_buf_error(b);
}

static int s_load(void *impl, ns_buf_t *b)
{
    s_fp_t *s = impl;
    uint32_t ver;
    uint64_t d;
    int rc;
    if ((rc = ns_buf_get_tag(b, FP_TAG, &ver)) != NS_OK)
        return rc;
    if (ver != FP_VERSION)
        return NS_ERR_CORRUPT;
    if ((rc = ns_buf_get_u64(b, &d)) != NS_OK)
        return rc;
    if (d != s->d)
        return NS_ERR_CORRUPT;
    if ((rc = ns_flow_load(s->flow, b)) != NS_OK || (rc = ns_adamw_load(s->opt, b)) != NS_OK ||
        (rc = ns_reparam_load(s->rp, b)) != NS_OK || (rc = s_get_rng(b, s->rng_train)) != NS_OK ||
        (rc = s_get_rng(b, s->rng_pop)) != NS_OK)
        return rc;
    int64_t tr, pops;
    if ((rc = ns_buf_get_f64(b, &s->ns_acceptance)) || (rc = ns_buf_get_i64(b, &tr)) ||
        (rc = ns_buf_get_f64(b, &s->min_log_q)) || (rc = ns_buf_get_i64(b, &pops)) ||
        (rc = ns_buf_get_f64(b, &s->total_draws)) || (rc = ns_buf_get_f64(b, &s->total_accepted)) ||
        (rc = ns_buf_get_f64(b, &s->last_radius)) || (rc = ns_buf_get_f64(b, &s->last_acceptance)) ||
        (rc = ns_buf_get_f64(b, &s->total_epochs)))
        return rc;
    if (tr < 0 || pops < 0)
        return NS_ERR_CORRUPT;
    s->trainings = tr;
    s->populations = pops;
    double *rd = NULL;
    size_t nrd = 0;
    if ((rc = ns_buf_get_f64s(b, &rd, &nrd, (size_t)1 << 32)) != NS_OK)
        return rc;
    if (nrd % s->d) {
        free(rd);
        return NS_ERR_CORRUPT;
    }
    free(s->radius_data);
    s->radius_data = nrd ? rd : NULL;
    if (!nrd)
        free(rd);
    s->radius_n = nrd / s->d;
    uint8_t pop;
    if ((rc = ns_buf_get_u8(b, &pop)) != NS_OK)
        return rc;
    double *rows = NULL;
    size_t nr = 0;
    if ((rc = ns_buf_get_f64s(b, &rows, &nr, s->pool_cap * s->stride)) != NS_OK)
        return rc;
    uint64_t rem;
    if (nr % s->stride || (rc = ns_buf_get_u64(b, &rem)) != NS_OK || rem > nr / s->stride ||
        (pop && rem == 0) || (!pop && rem != 0)) {
        free(rows);
        return rc ? rc : NS_ERR_CORRUPT;
    }
    for (size_t i = 0; i < rem && rc == NS_OK; i++) {
        uint64_t v;
        rc = ns_buf_get_u64(b, &v);
        if (rc == NS_OK && v >= nr / s->stride)
            rc = NS_ERR_CORRUPT;
        if (rc == NS_OK)
            s->order[i] = v;
    }
    if (rc == NS_OK) {
        if (nr)
            memcpy(s->pool, rows, nr * sizeof(double));
        s->pool_n = nr / s->stride;
        s->remaining = rem;
        s->populated = pop ? 1 : 0;
    }
    free(rows);
    return rc;
}

static void s_stats_json(const void *impl, struct cJSON *obj)
{
    const s_fp_t *s = impl;
    cJSON_AddNumberToObject(obj, "flow_trainings", (double)s->trainings);
    cJSON_AddNumberToObject(obj, "flow_populations", (double)s->populations);
    cJSON_AddNumberToObject(obj, "flow_latent_draws", s->total_draws);
    cJSON_AddNumberToObject(obj, "flow_accepted", s->total_accepted);
    cJSON_AddNumberToObject(obj, "flow_parameters", (double)ns_flow_n_params(s->flow));
    cJSON_AddNumberToObject(obj, "flow_last_epochs", (double)s->last_train.epochs);
    cJSON_AddNumberToObject(obj, "flow_epochs", s->total_epochs);
    cJSON_AddStringToObject(obj, "flow_population_precision", s->pop_f32 ? "float32" : "float64");
}

static const ns_proposal_ops_t s_ops = {
    .name = "flow",
    .draw = s_draw,
    .is_populated = s_is_populated,
    .train = s_train,
    .set_ns_acceptance = s_set_acc,
    .activate = NULL,
    .save = s_save,
    .load = s_load,
    .stats_json = s_stats_json,
    .destroy = s_destroy,
};

/* ------------------------------------------------------------- factory */

/* proposal/flow_config.json and training_config.json, as nessai writes them. */
static void s_write_configs(const s_fp_t *s, const char *dir, const ns_config_t *cfg)
{
    cJSON *fc = cJSON_CreateObject(), *tc = cJSON_CreateObject();
    if (!fc || !tc)
        goto done;
    cJSON_AddStringToObject(fc, "ftype", "RealNVP");
    cJSON_AddNumberToObject(fc, "n_inputs", (double)s->d);
    cJSON_AddNumberToObject(fc, "n_blocks", (double)s->fcfg.n_blocks);
    cJSON_AddNumberToObject(fc, "n_layers", (double)s->fcfg.n_layers);
    cJSON_AddNumberToObject(fc, "n_neurons", (double)s->fcfg.n_neurons);
    cJSON_AddStringToObject(fc, "net", s->fcfg.net == NS_NET_MLP ? "mlp" : "resnet");
    cJSON_AddStringToObject(fc, "linear_transform", ns_config_str(cfg, "flow-linear-transform"));
    cJSON_AddBoolToObject(fc, "batch_norm_between_layers", s->fcfg.batch_norm);
    cJSON_AddStringToObject(fc, "dtype", "float64");
    cJSON_AddNumberToObject(fc, "n_parameters", (double)ns_flow_n_params(s->flow));
    cJSON_AddStringToObject(tc, "optimiser", "adamw");
    cJSON_AddNumberToObject(tc, "lr", s->tcfg.lr);
    cJSON_AddNumberToObject(tc, "weight_decay", s->tcfg.weight_decay);
    cJSON_AddNumberToObject(tc, "batch_size", (double)s->tcfg.batch_size);
    cJSON_AddNumberToObject(tc, "val_size", s->tcfg.val_size);
    cJSON_AddNumberToObject(tc, "max_epochs", (double)s->tcfg.max_epochs);
    cJSON_AddNumberToObject(tc, "patience", (double)s->tcfg.patience);
    cJSON_AddNumberToObject(tc, "clip_grad_norm", s->tcfg.clip_grad_norm);
    cJSON_AddNumberToObject(tc, "threads", (double)s->threads);
    const char *names[2] = {"flow_config.json", "training_config.json"};
    cJSON *objs[2] = {fc, tc};
    for (int k = 0; k < 2; k++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        char *txt = cJSON_Print(objs[k]);
        FILE *f = txt ? fopen(path, "w") : NULL;
        if (!f || fputs(txt, f) < 0 || fputc('\n', f) == EOF)
            ns_warn(MOD, "could not write %s", path);
        if (f)
            fclose(f);
        cJSON_free(txt);
    }
done:
    cJSON_Delete(fc);
    cJSON_Delete(tc);
}

static int s_configure(s_fp_t *s, const ns_config_t *cfg)
{
    size_t d = s->d;
    s->fcfg = ns_flow_config_default(d);
    s->fcfg.n_blocks = (size_t)ns_config_int(cfg, "flow-n-blocks");
    s->fcfg.n_layers = (size_t)ns_config_int(cfg, "flow-n-layers");
    s->fcfg.n_neurons = ns_config_is_set(cfg, "flow-n-neurons")
                            ? (size_t)ns_config_int(cfg, "flow-n-neurons") : 2 * d;
    s->fcfg.net = strcmp(ns_config_str(cfg, "flow-net"), "mlp") == 0 ? NS_NET_MLP : NS_NET_RESNET;
    s->fcfg.batch_norm = ns_config_bool(cfg, "flow-batch-norm");
    const char *lt = ns_config_str(cfg, "flow-linear-transform");
    s->fcfg.linear = strcmp(lt, "lu") == 0 ? NS_FLOW_LINEAR_LU
                     : strcmp(lt, "permutation") == 0 ? NS_FLOW_LINEAR_PERMUTATION
                                                      : NS_FLOW_LINEAR_NONE;
    if (s->fcfg.net == NS_NET_MLP && s->fcfg.n_layers < 1) {
        ns_error(MOD, "--flow-net mlp needs --flow-n-layers >= 1");
        return NS_ERR_INVAL;
    }
    s->tcfg.lr = ns_config_double(cfg, "lr");
    s->tcfg.weight_decay = ns_config_double(cfg, "weight-decay");
    s->tcfg.batch_size = (size_t)ns_config_int(cfg, "batch-size");
    s->tcfg.val_size = ns_config_double(cfg, "val-size");
    s->tcfg.max_epochs = (size_t)ns_config_int(cfg, "max-epochs");
    s->tcfg.patience = (size_t)ns_config_int(cfg, "patience");
    s->tcfg.clip_grad_norm = ns_config_double(cfg, "clip-grad-norm");
    s->reset_weights = ns_config_int(cfg, "reset-weights");
    s->reset_perms = ns_config_int(cfg, "reset-permutations");
    s->reset_flow = ns_config_int(cfg, "reset-flow");

    s->truncate = strcmp(ns_config_str(cfg, "truncation"), "none") != 0;
    const char *rm = ns_config_str(cfg, "radius-mode");
    s->radius_mode = strcmp(rm, "adaptive") == 0 ? RM_ADAPTIVE
                     : strcmp(rm, "fixed") == 0  ? RM_FIXED
                                                 : RM_CONSTANT_VOLUME;
    s->fixed_radius = s_opt_double_or(cfg, "fixed-radius", NAN);
    if (s->truncate && s->radius_mode == RM_FIXED && isnan(s->fixed_radius)) {
        ns_error(MOD, "--radius-mode fixed needs --fixed-radius R");
        return NS_ERR_INVAL;
    }
    s->volume_fraction = ns_config_double(cfg, "volume-fraction");
    s->max_radius = s_opt_double_or(cfg, "max-radius", NAN);
    s->min_radius = s_opt_double_or(cfg, "min-radius", NAN);
    s->radius_with_all = ns_config_bool(cfg, "compute-radius-with-all");
    double ef = s_opt_double_or(cfg, "expansion-fraction", NAN);
    s->fuzz = isnan(ef) ? ns_config_double(cfg, "fuzz") : pow(1.0 + ef, 1.0 / (double)d);
    s->r_cv = sqrt(gsl_cdf_chisq_Pinv(s->volume_fraction, (double)d));
    if (s->radius_mode == RM_CONSTANT_VOLUME) {
        s->fuzz = 1.0;
        s->max_radius = NAN;
        s->min_radius = NAN;
    }
    s->use_min_log_q = ns_config_bool(cfg, "min-log-q");
    s->use_lthreshold = ns_config_bool(cfg, "likelihood-threshold");
    s->temperature = s_opt_double_or(cfg, "latent-temperature", 1.0);
    s->poolsize = ns_config_is_set(cfg, "poolsize") ? (size_t)ns_config_int(cfg, "poolsize")
                                                    : s->env.nlive;
    s->drawsize = ns_config_is_set(cfg, "drawsize") ? (size_t)ns_config_int(cfg, "drawsize")
                                                    : s->poolsize;
    s->update_poolsize = ns_config_bool(cfg, "update-poolsize");
    s->max_scale = ns_config_double(cfg, "max-poolsize-scale");
    s->max_draws = (size_t)ns_config_int(cfg, "max-population-draws");
    s->threads = (int)ns_config_int(cfg, "threads");
    s->pop_f32 = strcmp(ns_config_str(cfg, "population-precision"), "float32") == 0;
    if (s->poolsize < 1 || s->drawsize < 1)
        return NS_ERR_INVAL;
    return NS_OK;
}

static int s_alloc(s_fp_t *s)
{
    size_t d = s->d, D = s->drawsize;
    size_t mr = ns_reparam_max_copies(s->rp, 1);
    size_t rows = D > mr ? D : mr;
    s->pool_cap = (size_t)(s->max_scale * (double)s->poolsize) + 1;
    s->pool = malloc(s->pool_cap * s->stride * sizeof(double));
    s->order = malloc(s->pool_cap * sizeof(size_t));
    s->z = malloc(rows * d * sizeof(double));
    s->xp = malloc(rows * d * sizeof(double));
    s->x = malloc(rows * d * sizeof(double));
    s->logq = malloc(rows * sizeof(double));
    s->logj = malloc(rows * sizeof(double));
    s->logp = malloc(rows * sizeof(double));
    s->logl = malloc(rows * sizeof(double));
    s->rng_snap = malloc(ns_rng_state_size(s->rng_pop));
    if (!s->pool || !s->order || !s->z || !s->xp || !s->x || !s->logq || !s->logj ||
        !s->logp || !s->logl || !s->rng_snap)
        return NS_ERR_NOMEM;
    return ns_flow_reserve(s->flow, rows);
}

int ns_flow_proposal_new(const ns_config_t *cfg, const ns_proposal_env_t *env,
                         ns_proposal_t **out)
{
    *out = NULL;
    s_fp_t *s = calloc(1, sizeof *s);
    if (!s)
        return NS_ERR_NOMEM;
    s->env = *env;
    s->d = env->dim;
    s->stride = NS_LP_STRIDE(env->dim);
    s->ns_acceptance = 1.0;
    s->last_radius = NAN;
    s->min_log_q = -INFINITY;
    int rc = s_configure(s, cfg);
    if (rc != NS_OK)
        goto fail;
    char err[512] = "";
    s->rp = ns_reparam_new(s->d, ns_model_param_names(env->model), ns_model_lower(env->model),
                           ns_model_upper(env->model), ns_config_str(cfg, "reparameterisations"),
                           ns_config_str(cfg, "fallback-reparameterisation"), err, sizeof err);
    if (!s->rp) {
        ns_error(MOD, "%s", err);
        rc = NS_ERR_INVAL;
        goto fail;
    }
    s->rng_train = ns_rng_new(env->seed, env->stream);
    s->rng_pop = ns_rng_new(env->seed, env->stream + 1);
    if (!s->rng_train || !s->rng_pop) {
        rc = NS_ERR_NOMEM;
        goto fail;
    }
    s->flow = ns_flow_new(&s->fcfg, s->rng_train);
    if (!s->flow) {
        ns_error(MOD, "could not build the flow (dimension %zu)", s->d);
        rc = NS_ERR_INVAL;
        goto fail;
    }
    s->opt = ns_adamw_new(ns_flow_n_params(s->flow), s->tcfg.lr, s->tcfg.weight_decay);
    if (!s->opt || (rc = s_alloc(s)) != NS_OK) {
        rc = rc ? rc : NS_ERR_NOMEM;
        goto fail;
    }
    ns_flow_set_threads(s->threads);
    /* verify the rescaling round trip on 1000 prior draws (SPEC §3) */
    {
        ns_rng_t *vr = ns_rng_new(env->seed, env->stream + 2);
        double *xv = malloc(1000 * s->d * sizeof(double)), e = 0.0;
        rc = (!vr || !xv) ? NS_ERR_NOMEM : ns_model_new_point(env->model, vr, 1000, xv);
        if (rc == NS_OK)
            rc = ns_reparam_verify(s->rp, xv, 1000, vr, &e, err, sizeof err);
        if (rc != NS_OK)
            ns_error(MOD, "rescaling verification failed: %s", err[0] ? err : ns_strerror(rc));
        free(xv);
        ns_rng_destroy(&vr);
        if (rc != NS_OK)
            goto fail;
    }
    if (env->output) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/proposal", env->output);
        if (ns_mkdir_p(dir) == NS_OK) {
            size_t n = strlen(dir) + 16;
            s->weights_path = malloc(n);
            if (s->weights_path)
                snprintf(s->weights_path, n, "%s/model.flow", dir);
            s_write_configs(s, dir, cfg);
        } else {
            ns_warn(MOD, "could not create %s; flow weights will not be written", dir);
        }
    }
    ns_info(MOD, "RealNVP d'=%zu blocks=%zu layers=%zu neurons=%zu net=%s linear=%s "
            "batch_norm=%d parameters=%zu", s->d, s->fcfg.n_blocks, s->fcfg.n_layers,
            s->fcfg.n_neurons, s->fcfg.net == NS_NET_MLP ? "mlp" : "resnet",
            ns_config_str(cfg, "flow-linear-transform"), s->fcfg.batch_norm,
            ns_flow_n_params(s->flow));
    if (s->truncate)
        ns_info(MOD, "truncation latent_radius mode=%s radius=%.4f fuzz=%.4f "
                "volume_fraction=%.3f min_log_q=%d likelihood_threshold=%d",
                ns_config_str(cfg, "radius-mode"),
                s->radius_mode == RM_FIXED ? s->fixed_radius : s->r_cv, s->fuzz,
                s->volume_fraction, s->use_min_log_q, s->use_lthreshold);
    else
        ns_info(MOD, "truncation none min_log_q=%d likelihood_threshold=%d", s->use_min_log_q,
                s->use_lthreshold);
    *out = ns_proposal_new(&s_ops, s);
    if (!*out) {
        rc = NS_ERR_NOMEM;
        goto fail;
    }
    return NS_OK;
fail:
    s_destroy(s);
    return rc;
}
