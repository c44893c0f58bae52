/* flow_train.c - AdamW, gradient clipping and the training loop (docs/algorithm.md §4.3). */
#include "flow_train.h"
#include "nessai/error.h"
#include "nessai/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ns_adamw_t *ns_adamw_new(size_t n, double lr, double weight_decay)
{
    ns_adamw_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->n = n;
    self->m = calloc(n ? n : 1, sizeof(double));
    self->v = calloc(n ? n : 1, sizeof(double));
    if (!self->m || !self->v) {
        ns_adamw_destroy(&self);
        return NULL;
    }
    self->lr = lr;
    self->beta1 = 0.9;
    self->beta2 = 0.999;
    self->eps = 1e-8;
    self->weight_decay = weight_decay;
    return self;
}

void ns_adamw_destroy(ns_adamw_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->m);
    free((*self_p)->v);
    free(*self_p);
    *self_p = NULL;
}

void ns_adamw_reset(ns_adamw_t *self)
{
    memset(self->m, 0, self->n * sizeof(double));
    memset(self->v, 0, self->n * sizeof(double));
    self->step = 0;
}

void ns_adamw_step(ns_adamw_t *self, double *theta, const double *grad)
{
    self->step++;
    double t = (double)self->step;
    double bc1 = 1.0 - pow(self->beta1, t), bc2 = 1.0 - pow(self->beta2, t);
    double step_size = self->lr / bc1, sbc2 = sqrt(bc2);
    double decay = 1.0 - self->lr * self->weight_decay;
    double b1 = self->beta1, b2 = self->beta2;
    for (size_t k = 0; k < self->n; k++) {
        double g = grad[k];
        theta[k] *= decay; /* decoupled weight decay */
        self->m[k] = b1 * self->m[k] + (1.0 - b1) * g;
        self->v[k] = b2 * self->v[k] + (1.0 - b2) * g * g;
        theta[k] -= step_size * self->m[k] / (sqrt(self->v[k]) / sbc2 + self->eps);
    }
}

#define ADAM_TAG "ADAM"
#define ADAM_VERSION 1u

void ns_adamw_save(const ns_adamw_t *self, ns_buf_t *b)
{
    ns_buf_put_tag(b, ADAM_TAG, ADAM_VERSION);
    ns_buf_put_u64(b, self->step);
    ns_buf_put_f64(b, self->lr);
    ns_buf_put_f64(b, self->beta1);
    ns_buf_put_f64(b, self->beta2);
    ns_buf_put_f64(b, self->eps);
    ns_buf_put_f64(b, self->weight_decay);
    ns_buf_put_f64s(b, self->m, self->n);
    ns_buf_put_f64s(b, self->v, self->n);
}

int ns_adamw_load(ns_adamw_t *self, ns_buf_t *b)
{
    uint32_t ver;
    int rc;
    if ((rc = ns_buf_get_tag(b, ADAM_TAG, &ver)) != NS_OK)
        return rc;
    if (ver != ADAM_VERSION)
        return NS_ERR_CORRUPT;
    uint64_t step;
    double h[5];
    if ((rc = ns_buf_get_u64(b, &step)) != NS_OK)
        return rc;
    for (int k = 0; k < 5; k++)
        if ((rc = ns_buf_get_f64(b, &h[k])) != NS_OK)
            return rc;
    double *m = malloc((self->n ? self->n : 1) * sizeof(double));
    double *v = malloc((self->n ? self->n : 1) * sizeof(double));
    if (!m || !v) {
        free(m);
        free(v);
        return NS_ERR_NOMEM;
    }
    rc = ns_buf_get_f64s_n(b, m, self->n);
    if (rc == NS_OK)
        rc = ns_buf_get_f64s_n(b, v, self->n);
    if (rc == NS_OK) {
        memcpy(self->m, m, self->n * sizeof(double));
        memcpy(self->v, v, self->n * sizeof(double));
        self->step = step;
        self->lr = h[0];
        self->beta1 = h[1];
        self->beta2 = h[2];
        self->eps = h[3];
        self->weight_decay = h[4];
    }
    free(m);
    free(v);
    return rc;
}

double ns_clip_grad_norm(double *grad, size_t n, double max_norm)
{
    double s = 0.0;
    for (size_t k = 0; k < n; k++)
        s += grad[k] * grad[k];
    double norm = sqrt(s);
    if (max_norm > 0) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0)
            for (size_t k = 0; k < n; k++)
                grad[k] *= coef;
    }
    return norm;
}

ns_train_config_t ns_train_config_default(void)
{
    ns_train_config_t c = {1e-3, 0.01, 1000, 0.1, 500, 20, 5.0};
    return c;
}

size_t ns_train_adjust_batch(size_t n_train, size_t B)
{
    if (B > 0 && n_train % B) {
        while (B >= 2 && n_train % B && n_train % B < (size_t)(0.1 * (double)B))
            B--;
    }
    return B < 2 ? 0 : B;
}

/* Everything a training changes, to restore on interrupt or keep as best. */
typedef struct {
    double *theta, *bufs, *m, *v;
    uint64_t step;
    unsigned char *rng;
} s_snap_t;

/* One training: its inputs, the split data, the snapshots and the record. */
typedef struct {
    ns_flow_t *flow;
    ns_adamw_t *opt;
    const ns_train_config_t *cfg;
    ns_rng_t *rng;
    size_t d, P, nbuf, rs;     /* dimension, parameters, running statistics, rng state size */
    int bn;                    /* batch norm on: batches need two rows */
    double *data;              /* finite rows, shuffled: n_train training then n_val validation */
    const double *w_in;        /* row weights given (NULL: unweighted) */
    double *wdata;             /* their weights, in data's order (weighted only) */
    double *bw;                /* batch weights (B), validation log q (n_val) */
    double *batch;             /* B rows */
    size_t *order;             /* training-row indices, reshuffled every epoch */
    size_t n_train, n_val, B;
    int validate;              /* val_size > 0 and a validation row exists */
    s_snap_t entry, best;      /* state at entry; best state seen (theta, bufs only) */
    double best_val;
    size_t best_epoch;
    ns_train_stats_t st;
    ns_train_epoch_fn on_epoch; /* observer, or NULL */
    void *on_epoch_ctx;
} s_train_t;

/* Allocate the data copy and the snapshots, then record the entry state
 * (parameters, running statistics, optimiser moments and step, rng). */
static int s_snapshot_entry(s_train_t *t, size_t n)
{
    size_t P = t->P, nb1 = t->nbuf ? t->nbuf : 1;
    t->data = malloc((n ? n : 1) * t->d * sizeof(double));
    t->entry.theta = malloc(P * sizeof(double));
    t->entry.bufs = malloc(nb1 * sizeof(double));
    t->entry.m = malloc(P * sizeof(double));
    t->entry.v = malloc(P * sizeof(double));
    t->entry.rng = malloc(t->rs);
    t->best.theta = malloc(P * sizeof(double));
    t->best.bufs = malloc(nb1 * sizeof(double));
    if (!t->data || !t->entry.theta || !t->entry.bufs || !t->entry.m || !t->entry.v ||
        !t->entry.rng || !t->best.theta || !t->best.bufs)
        return NS_ERR_NOMEM;
    memcpy(t->entry.theta, ns_flow_params(t->flow), P * sizeof(double));
    ns_flow_get_buffers(t->flow, t->entry.bufs);
    memcpy(t->entry.m, t->opt->m, P * sizeof(double));
    memcpy(t->entry.v, t->opt->v, P * sizeof(double));
    t->entry.step = t->opt->step;
    ns_rng_state_save(t->rng, t->entry.rng);
    return NS_OK;
}

/* Step 1: keep the finite rows of x, shuffle them with the training rng and
 * split them into int((1 - val_size) m) training rows and the validation
 * rest. NS_ERR_INVAL with fewer than two training rows. */
static int s_split_finite_rows(s_train_t *t, const double *x, size_t n)
{
    size_t d = t->d, m = 0;
    for (size_t i = 0; i < n; i++) {
        int ok = 1;
        for (size_t j = 0; j < d; j++)
            if (!isfinite(x[i * d + j]))
                ok = 0;
        if (ok)
            memcpy(t->data + m++ * d, x + i * d, d * sizeof(double));
    }
    t->st.n_rejected = n - m;
    if (t->w_in) {
        /* rows and weights shuffled together: rows of d + 1 values (the
         * generator's draws depend only on m, as in the unweighted case) */
        double *packed = malloc((m ? m : 1) * (d + 1) * sizeof(double));
        t->wdata = malloc((m ? m : 1) * sizeof(double));
        if (!packed || !t->wdata) {
            free(packed);
            return NS_ERR_NOMEM;
        }
        for (size_t i = 0, k = 0; i < n; i++) {
            int ok = 1;
            for (size_t j = 0; j < d; j++)
                if (!isfinite(x[i * d + j]))
                    ok = 0;
            if (!ok)
                continue;
            memcpy(packed + k * (d + 1), x + i * d, d * sizeof(double));
            packed[k * (d + 1) + d] = t->w_in[i];
            k++;
        }
        ns_rng_shuffle(t->rng, packed, m, (d + 1) * sizeof(double));
        for (size_t k = 0; k < m; k++) {
            memcpy(t->data + k * d, packed + k * (d + 1), d * sizeof(double));
            t->wdata[k] = packed[k * (d + 1) + d];
        }
        free(packed);
    } else {
        ns_rng_shuffle(t->rng, t->data, m, d * sizeof(double));
    }
    double vs = t->cfg->val_size;
    t->n_train = vs > 0 ? (size_t)((1.0 - vs) * (double)m) : m;
    t->n_val = m - t->n_train;
    t->validate = vs > 0 && t->n_val > 0;
    t->st.n_train = t->n_train;
    t->st.n_val = t->n_val;
    return t->n_train < 2 ? NS_ERR_INVAL : NS_OK;
}

/* Step 2: the batch size (ns_train_adjust_batch; NS_ERR_INVAL below 2),
 * the flow's row capacity for a batch and the validation set, the batch
 * and order buffers; the best state starts as the entry state (kept if no
 * epoch improves). */
static int s_prepare_batches(s_train_t *t)
{
    size_t B = ns_train_adjust_batch(t->n_train, t->cfg->batch_size);
    if (B == 0)
        return NS_ERR_INVAL;
    t->B = B;
    t->st.batch_size = B;
    size_t rows = B > t->n_val ? B : t->n_val;
    int rc = ns_flow_reserve(t->flow, rows < 256 ? 256 : rows);
    if (rc != NS_OK)
        return rc;
    t->batch = malloc(B * t->d * sizeof(double));
    t->order = malloc(t->n_train * sizeof(size_t));
    if (!t->batch || !t->order)
        return NS_ERR_NOMEM;
    if (t->w_in && !(t->bw = malloc((B > t->n_val ? B : t->n_val) * sizeof(double))))
        return NS_ERR_NOMEM;
    memcpy(t->best.theta, t->entry.theta, t->P * sizeof(double));
    memcpy(t->best.bufs, t->entry.bufs, (t->nbuf ? t->nbuf : 1) * sizeof(double));
    t->best_val = INFINITY;
    t->best_epoch = 0;
    for (size_t i = 0; i < t->n_train; i++)
        t->order[i] = i;
    return NS_OK;
}

/* On an interrupt: flow, optimiser and rng back to their entry state. */
static void s_restore_entry(s_train_t *t)
{
    size_t P = t->P;
    memcpy(ns_flow_params(t->flow), t->entry.theta, P * sizeof(double));
    ns_flow_set_buffers(t->flow, t->entry.bufs);
    ns_flow_params_changed(t->flow);
    memcpy(t->opt->m, t->entry.m, P * sizeof(double));
    memcpy(t->opt->v, t->entry.v, P * sizeof(double));
    t->opt->step = t->entry.step;
    ns_rng_state_load(t->rng, t->entry.rng, t->rs);
}

/* Step 3a: one epoch of training: reshuffle the training rows, then per
 * batch the training-mode loss and gradient, global-norm clipping and an
 * AdamW step; a batch with a non-finite loss or gradient norm is counted in
 * skipped_steps and not applied, and with batch norm a one-row batch is
 * skipped. Returns the mean loss of the applied batches (NAN if none). */
static double s_train_epoch(s_train_t *t)
{
    size_t d = t->d, P = t->P, B = t->B, n_train = t->n_train;
    const double *xtrain = t->data;
    double *theta = ns_flow_params(t->flow), *grad = ns_flow_grad(t->flow);
    ns_rng_shuffle(t->rng, t->order, n_train, sizeof *t->order);
    double loss_sum = 0.0;
    size_t nbatches = 0;
    for (size_t b0 = 0; b0 < n_train; b0 += B) {
        size_t nb = n_train - b0 < B ? n_train - b0 : B;
        if (t->bn && nb < 2)
            continue; /* batch statistics need two rows */
        for (size_t i = 0; i < nb; i++)
            memcpy(t->batch + i * d, xtrain + t->order[b0 + i] * d, d * sizeof(double));
        ns_flow_zero_grad(t->flow);
        double loss;
        if (t->w_in) {
            for (size_t i = 0; i < nb; i++)
                t->bw[i] = t->wdata[t->order[b0 + i]];
            loss = ns_flow_loss_grad_weighted(t->flow, t->batch, t->bw, nb, 1);
        } else {
            loss = ns_flow_loss_grad(t->flow, t->batch, nb, 1);
        }
        double gn = ns_clip_grad_norm(grad, P, t->cfg->clip_grad_norm);
        if (!isfinite(loss) || !isfinite(gn)) {
            t->st.skipped_steps++;
            continue;
        }
        ns_adamw_step(t->opt, theta, grad);
        ns_flow_params_changed(t->flow);
        loss_sum += loss;
        nbatches++;
    }
    return nbatches ? loss_sum / (double)nbatches : NAN;
}

/* Step 3b: the eval-mode validation loss after epoch; a strictly lower one
 * than any before keeps a copy of the parameters and running statistics.
 * Returns the loss (NAN without validation). */
static double s_validate_epoch(s_train_t *t, size_t epoch)
{
    if (!t->validate)
        return NAN;
    double val_loss;
    if (t->w_in) {
        /* weighted mean of -log q over the validation rows */
        const double *wv = t->wdata + t->n_train;
        ns_flow_log_prob(t->flow, t->data + t->n_train * t->d, t->n_val, t->bw);
        double s = 0.0, ws = 0.0;
        for (size_t i = 0; i < t->n_val; i++) {
            s += wv[i] * t->bw[i];
            ws += wv[i];
        }
        val_loss = ws > 0 ? -s / ws : NAN;
    } else {
        val_loss = ns_flow_loss_eval(t->flow, t->data + t->n_train * t->d, t->n_val);
    }
    if (val_loss < t->best_val) {
        t->best_val = val_loss;
        t->best_epoch = epoch;
        memcpy(t->best.theta, ns_flow_params(t->flow), t->P * sizeof(double));
        ns_flow_get_buffers(t->flow, t->best.bufs);
    }
    return val_loss;
}

/* Step 3: epochs until max_epochs or, with validation, until
 * epoch - best_epoch > patience; an interrupt pending before an epoch
 * restores the entry state and returns NS_ERR_INTERRUPTED. Records the
 * epochs run and, when loss_hist is not NULL, (train, val) per epoch;
 * calls the observer after every epoch. */
static int s_run_epochs(s_train_t *t, double *loss_hist)
{
    size_t epoch;
    for (epoch = 1; epoch <= t->cfg->max_epochs; epoch++) {
        if (ns_interrupt_pending()) {
            s_restore_entry(t);
            return NS_ERR_INTERRUPTED;
        }
        double train_loss = s_train_epoch(t);
        t->st.final_train_loss = train_loss;
        double val_loss = s_validate_epoch(t, epoch);
        if (loss_hist) {
            loss_hist[2 * (epoch - 1)] = train_loss;
            loss_hist[2 * (epoch - 1) + 1] = val_loss;
        }
        if (t->on_epoch)
            t->on_epoch(t->on_epoch_ctx, epoch, t->flow, train_loss, val_loss);
        if (t->validate && epoch - t->best_epoch > t->cfg->patience) {
            epoch++;
            break;
        }
    }
    t->st.epochs = epoch - 1;
    return NS_OK;
}

/* Step 4: with validation, put back the best state (parameters and running
 * statistics) and record its epoch and loss; without, the final state is
 * kept and is the "best". */
static void s_restore_best(s_train_t *t)
{
    if (t->validate) {
        memcpy(ns_flow_params(t->flow), t->best.theta, t->P * sizeof(double));
        ns_flow_set_buffers(t->flow, t->best.bufs);
        ns_flow_params_changed(t->flow);
        t->st.best_epoch = t->best_epoch;
        t->st.best_val_loss = t->best_epoch ? t->best_val : NAN;
    } else {
        t->st.best_epoch = t->st.epochs;
    }
}

static void s_train_free(s_train_t *t)
{
    free(t->data);
    free(t->wdata);
    free(t->bw);
    free(t->batch);
    free(t->order);
    free(t->entry.theta);
    free(t->entry.bufs);
    free(t->entry.m);
    free(t->entry.v);
    free(t->entry.rng);
    free(t->best.theta);
    free(t->best.bufs);
}

int ns_flow_train(ns_flow_t *flow, ns_adamw_t *opt, const ns_train_config_t *cfg,
                  const double *x, size_t n, ns_rng_t *rng, ns_train_stats_t *stats,
                  double *loss_hist)
{
    return ns_flow_train_observed(flow, opt, cfg, x, n, rng, stats, loss_hist, NULL, NULL);
}

int ns_flow_train_observed(ns_flow_t *flow, ns_adamw_t *opt, const ns_train_config_t *cfg,
                           const double *x, size_t n, ns_rng_t *rng, ns_train_stats_t *stats,
                           double *loss_hist, ns_train_epoch_fn on_epoch, void *ctx)
{
    return ns_flow_train_weighted(flow, opt, cfg, x, NULL, n, rng, stats, loss_hist, on_epoch,
                                  ctx);
}

int ns_flow_train_weighted(ns_flow_t *flow, ns_adamw_t *opt, const ns_train_config_t *cfg,
                           const double *x, const double *w, size_t n, ns_rng_t *rng,
                           ns_train_stats_t *stats, double *loss_hist, ns_train_epoch_fn on_epoch,
                           void *ctx)
{
    double t0 = ns_now();
    s_train_t t;
    memset(&t, 0, sizeof t);
    t.on_epoch = on_epoch;
    t.on_epoch_ctx = ctx;
    t.w_in = w;
    t.flow = flow;
    t.opt = opt;
    t.cfg = cfg;
    t.rng = rng;
    t.d = ns_flow_dim(flow);
    t.P = ns_flow_n_params(flow);
    t.nbuf = ns_flow_n_buffers(flow);
    t.bn = ns_flow_config(flow)->batch_norm;
    t.st.best_val_loss = NAN;
    t.st.final_train_loss = NAN;
    t.st.n_input = n;
    if (opt->n != t.P)
        return NS_ERR_INVAL;
    t.rs = ns_rng_state_size(rng);
    int rc = s_snapshot_entry(&t, n);
    if (rc == NS_OK)
        rc = s_split_finite_rows(&t, x, n);
    if (rc == NS_OK)
        rc = s_prepare_batches(&t);
    if (rc == NS_OK)
        rc = s_run_epochs(&t, loss_hist);
    if (rc == NS_OK)
        s_restore_best(&t);
    t.st.time = ns_now() - t0;
    if (stats)
        *stats = t.st;
    s_train_free(&t);
    return rc;
}
