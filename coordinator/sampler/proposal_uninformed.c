/*
 * proposal_uninformed.c - the uninformed proposals of docs/algorithm.md §2.1:
 * RejectionProposal (pool of nlive prior draws thinned by rejection against
 * the model's new_point density) and AnalyticProposal (new_point assumed to
 * be the exact prior, no rejection). Both batch-evaluate the likelihood of
 * the whole pool when they populate it.
 */
#include "proposal.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/serial.h"
#include "nessai/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ns_proposal_env_t env;   /* borrowed environment (copied struct) */
    int analytic;            /* 1: AnalyticProposal, 0: RejectionProposal */
    size_t poolsize;         /* points drawn per population */
    ns_rng_t *rng;           /* own stream */
    double *rows;            /* pool, poolsize rows of d + 3 */
    double *x;               /* workspace: poolsize x d parameters */
    double *tmp;             /* workspace: poolsize values */
    double *tmp2;            /* workspace: poolsize values */
    size_t *indices;         /* remaining pool order; draws pop from the end */
    size_t n_pool;           /* points in the pool */
    size_t n_left;           /* indices not yet handed out */
    uint8_t *rng_snap;       /* generator state at the start of a population */
} s_uninformed_t;

static void s_destroy(void *impl)
{
    s_uninformed_t *self = impl;
    if (!self)
        return;
    ns_rng_destroy(&self->rng);
    free(self->rows);
    free(self->x);
    free(self->tmp);
    free(self->tmp2);
    free(self->indices);
    free(self->rng_snap);
    free(self);
}

/* Pool row `slot` from drawn point i: x, its log prior, no likelihood yet. */
static void s_put_row(s_uninformed_t *self, size_t slot, size_t i)
{
    const size_t d = self->env.dim;
    double *r = self->rows + slot * NS_LP_STRIDE(d);
    memcpy(r, self->x + i * d, d * sizeof(double));
    r[NS_LP_LOGP(d)] = self->tmp[i];
    r[NS_LP_LOGL(d)] = NAN;
    r[NS_LP_IT(d)] = 0.0;
}

/* Fill the pool once. On failure the generator is rewound, so the same
 * population is repeated exactly when the call is retried (resume). */
static int s_populate(s_uninformed_t *self)
{
    const size_t n = self->poolsize;
    double t0 = ns_now();
    ns_rng_state_save(self->rng, self->rng_snap);
    int rc = ns_model_new_point(self->env.model, self->rng, n, self->x);
    if (rc == NS_OK)
        rc = ns_model_log_prior(self->env.model, self->x, n, self->tmp);
    size_t m = 0;
    if (rc == NS_OK && !self->analytic) {
        rc = ns_model_new_point_log_prob(self->env.model, self->x, n, self->tmp2);
        if (rc == NS_OK) {
            double mx = -INFINITY;
            for (size_t i = 0; i < n; i++) {
                self->tmp2[i] = self->tmp[i] - self->tmp2[i];
                if (self->tmp2[i] > mx)
                    mx = self->tmp2[i];
            }
            /* accept iff log_w - log u >= 0 (>= here, > in the flow: docs/algorithm.md §10.5) */
            for (size_t i = 0; i < n; i++) {
                double log_u = log(ns_rng_uniform(self->rng));
                if (self->tmp2[i] - mx - log_u >= 0.0)
                    s_put_row(self, m++, i);
            }
        }
    } else if (rc == NS_OK) {
        for (size_t i = 0; i < n; i++)
            s_put_row(self, i, i);
        m = n;
    }
    if (rc != NS_OK) {
        ns_error("proposal", "drawing from the prior failed: %s", ns_model_last_error(self->env.model));
        ns_rng_state_load(self->rng, self->rng_snap, ns_rng_state_size(self->rng));
        return rc;
    }
    if (m > 0)
        ns_rng_permutation(self->rng, self->indices, m);
    rc = self->env.evaluate_rows(self->env.ctx, self->rows, m);
    if (rc != NS_OK) {
        ns_rng_state_load(self->rng, self->rng_snap, ns_rng_state_size(self->rng));
        self->n_pool = self->n_left = 0;
        return rc;
    }
    self->n_pool = self->n_left = m;
    ns_population_t pop = {
        .acceptance = (double)m / (double)n,
        .radius = NAN,
        .time = ns_now() - t0,
        .n_points = m,
        .record = !self->analytic,
    };
    self->env.report_population(self->env.ctx, &pop);
    return NS_OK;
}

static int s_draw(void *impl, const double *worst, double *out)
{
    s_uninformed_t *self = impl;
    (void)worst;
    /* A population may accept nothing with a custom new_point density;
     * nessai would fail there, we draw again. */
    int tries = 0;
    while (self->n_left == 0) {
        int rc = s_populate(self);
        if (rc != NS_OK)
            return rc;
        if (self->n_left == 0 && ++tries >= 1000) {
            ns_error("proposal", "%d populations in a row accepted no point: check new_point and "
                     "new_point_log_prob of the model", tries);
            return NS_ERR_MODEL;
        }
    }
    size_t i = self->indices[--self->n_left];
    memcpy(out, self->rows + i * NS_LP_STRIDE(self->env.dim), NS_LP_STRIDE(self->env.dim) * sizeof(double));
    return NS_OK;
}

static int s_is_populated(const void *impl) { return ((const s_uninformed_t *)impl)->n_left > 0; }

static int s_save(const void *impl, ns_buf_t *b)
{
    const s_uninformed_t *self = impl;
    size_t st = NS_LP_STRIDE(self->env.dim);
    ns_buf_put_tag(b, self->analytic ? "PANA" : "PREJ", 1);
    ns_buf_put_u64(b, self->poolsize);
    ns_buf_put_u64(b, self->n_pool);
    ns_buf_put_u64(b, self->n_left);
    ns_buf_put_f64s(b, self->rows, self->n_pool * st);
    for (size_t i = 0; i < self->n_left; i++)
        ns_buf_put_u64(b, self->indices[i]);
    size_t len = ns_rng_state_size(self->rng);
    uint8_t *tmp = malloc(len);
    if (!tmp)
        return NS_ERR_NOMEM;
    ns_rng_state_save(self->rng, tmp);
    ns_buf_put_u64(b, len);
    ns_buf_put_bytes(b, tmp, len);
    free(tmp);
    return ns_buf_error(b);
}

static int s_load(void *impl, ns_buf_t *b)
{
    s_uninformed_t *self = impl;
    size_t st = NS_LP_STRIDE(self->env.dim);
    uint32_t version;
    uint64_t poolsize, n_pool, n_left, len;
    int rc;
    if ((rc = ns_buf_get_tag(b, self->analytic ? "PANA" : "PREJ", &version)) ||
        (rc = ns_buf_get_u64(b, &poolsize)) || (rc = ns_buf_get_u64(b, &n_pool)) ||
        (rc = ns_buf_get_u64(b, &n_left)))
        return rc;
    if (version != 1 || poolsize != self->poolsize || n_pool > poolsize || n_left > n_pool)
        return NS_ERR_CORRUPT;
    if ((rc = ns_buf_get_f64s_n(b, self->rows, n_pool * st)) != NS_OK)
        return rc;
    for (size_t i = 0; i < n_left; i++) {
        uint64_t v;
        if ((rc = ns_buf_get_u64(b, &v)) != NS_OK)
            return rc;
        if (v >= n_pool)
            return NS_ERR_CORRUPT;
        self->indices[i] = v;
    }
    if ((rc = ns_buf_get_u64(b, &len)) != NS_OK)
        return rc;
    if (len != ns_rng_state_size(self->rng))
        return NS_ERR_CORRUPT;
    if ((rc = ns_buf_get_bytes(b, self->rng_snap, len)) != NS_OK ||
        (rc = ns_rng_state_load(self->rng, self->rng_snap, len)) != NS_OK)
        return rc;
    self->n_pool = n_pool;
    self->n_left = n_left;
    return NS_OK;
}

/* The two proposals differ only in their name and in self->analytic. */
#define S_UNINFORMED_OPS(proposal_name)                                                        \
    {                                                                                          \
        .name = proposal_name, .draw = s_draw, .is_populated = s_is_populated, .save = s_save, \
        .load = s_load, .destroy = s_destroy,                                                  \
    }
static const ns_proposal_ops_t s_rejection_ops = S_UNINFORMED_OPS("rejection");
static const ns_proposal_ops_t s_analytic_ops = S_UNINFORMED_OPS("analytic");

static int s_new(const ns_proposal_env_t *env, size_t poolsize, int analytic, ns_proposal_t **out)
{
    *out = NULL;
    s_uninformed_t *self = calloc(1, sizeof *self);
    if (!self)
        return NS_ERR_NOMEM;
    self->env = *env;
    self->analytic = analytic;
    self->poolsize = poolsize ? poolsize : (analytic ? 1000 : env->nlive);
    size_t n = self->poolsize, d = env->dim;
    self->rng = ns_rng_new(env->seed, env->stream);
    self->rows = malloc(n * NS_LP_STRIDE(d) * sizeof(double));
    self->x = malloc(n * d * sizeof(double));
    self->tmp = malloc(n * sizeof(double));
    self->tmp2 = malloc(n * sizeof(double));
    self->indices = malloc(n * sizeof(size_t));
    if (self->rng)
        self->rng_snap = malloc(ns_rng_state_size(self->rng));
    if (!self->rng || !self->rows || !self->x || !self->tmp || !self->tmp2 || !self->indices ||
        !self->rng_snap) {
        s_destroy(self);
        return NS_ERR_NOMEM;
    }
    *out = ns_proposal_new(analytic ? &s_analytic_ops : &s_rejection_ops, self);
    if (!*out) {
        s_destroy(self);
        return NS_ERR_NOMEM;
    }
    return NS_OK;
}

int ns_rejection_proposal_new(const ns_proposal_env_t *env, size_t poolsize, ns_proposal_t **out)
{
    return s_new(env, poolsize, 0, out);
}

int ns_analytic_proposal_new(const ns_proposal_env_t *env, size_t poolsize, ns_proposal_t **out)
{
    return s_new(env, poolsize, 1, out);
}
