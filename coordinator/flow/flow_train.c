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

int ns_flow_train(ns_flow_t *flow, ns_adamw_t *opt, const ns_train_config_t *cfg,
                  const double *x, size_t n, ns_rng_t *rng, ns_train_stats_t *stats,
                  double *loss_hist)
{
    double t0 = ns_now();
    size_t d = ns_flow_dim(flow), P = ns_flow_n_params(flow), nbuf = ns_flow_n_buffers(flow);
    int bn = ns_flow_config(flow)->batch_norm;
    ns_train_stats_t st;
    memset(&st, 0, sizeof st);
    st.best_val_loss = NAN;
    st.final_train_loss = NAN;
    st.n_input = n;
    if (opt->n != P)
        return NS_ERR_INVAL;

    int rc = NS_OK;
    double *data = malloc((n ? n : 1) * d * sizeof(double));
    double *batch = NULL;
    size_t *order = NULL;
    s_snap_t entry = {0}, best = {0};
    size_t rs = ns_rng_state_size(rng);
    entry.theta = malloc(P * sizeof(double));
    entry.bufs = malloc((nbuf ? nbuf : 1) * sizeof(double));
    entry.m = malloc(P * sizeof(double));
    entry.v = malloc(P * sizeof(double));
    entry.rng = malloc(rs);
    best.theta = malloc(P * sizeof(double));
    best.bufs = malloc((nbuf ? nbuf : 1) * sizeof(double));
    if (!data || !entry.theta || !entry.bufs || !entry.m || !entry.v || !entry.rng ||
        !best.theta || !best.bufs) {
        rc = NS_ERR_NOMEM;
        goto done;
    }
    memcpy(entry.theta, ns_flow_params(flow), P * sizeof(double));
    ns_flow_get_buffers(flow, entry.bufs);
    memcpy(entry.m, opt->m, P * sizeof(double));
    memcpy(entry.v, opt->v, P * sizeof(double));
    entry.step = opt->step;
    ns_rng_state_save(rng, entry.rng);

    /* 1. finite rows only, shuffled, split */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int ok = 1;
        for (size_t j = 0; j < d; j++)
            if (!isfinite(x[i * d + j]))
                ok = 0;
        if (ok)
            memcpy(data + m++ * d, x + i * d, d * sizeof(double));
    }
    st.n_rejected = n - m;
    ns_rng_shuffle(rng, data, m, d * sizeof(double));
    size_t n_train = cfg->val_size > 0 ? (size_t)((1.0 - cfg->val_size) * (double)m) : m;
    size_t n_val = m - n_train;
    int validate = cfg->val_size > 0 && n_val > 0;
    st.n_train = n_train;
    st.n_val = n_val;
    if (n_train < 2) {
        rc = NS_ERR_INVAL;
        goto done;
    }
    /* 2. batch size */
    size_t B = ns_train_adjust_batch(n_train, cfg->batch_size);
    if (B == 0) {
        rc = NS_ERR_INVAL;
        goto done;
    }
    st.batch_size = B;
    size_t rows = B > n_val ? B : n_val;
    if ((rc = ns_flow_reserve(flow, rows < 256 ? 256 : rows)) != NS_OK)
        goto done;
    batch = malloc(B * d * sizeof(double));
    order = malloc(n_train * sizeof(size_t));
    if (!batch || !order) {
        rc = NS_ERR_NOMEM;
        goto done;
    }
    const double *xtrain = data, *xval = data + n_train * d;
    double *theta = ns_flow_params(flow), *grad = ns_flow_grad(flow);

    /* best state starts as the entry state (kept if no epoch improves) */
    memcpy(best.theta, entry.theta, P * sizeof(double));
    memcpy(best.bufs, entry.bufs, (nbuf ? nbuf : 1) * sizeof(double));
    double best_val = INFINITY;
    size_t best_epoch = 0;
    for (size_t i = 0; i < n_train; i++)
        order[i] = i;

    /* 3. epochs */
    size_t epoch;
    for (epoch = 1; epoch <= cfg->max_epochs; epoch++) {
        if (ns_interrupt_pending()) {
            memcpy(theta, entry.theta, P * sizeof(double));
            ns_flow_set_buffers(flow, entry.bufs);
            ns_flow_params_changed(flow);
            memcpy(opt->m, entry.m, P * sizeof(double));
            memcpy(opt->v, entry.v, P * sizeof(double));
            opt->step = entry.step;
            ns_rng_state_load(rng, entry.rng, rs);
            rc = NS_ERR_INTERRUPTED;
            goto done;
        }
        ns_rng_shuffle(rng, order, n_train, sizeof *order);
        double loss_sum = 0.0;
        size_t nbatches = 0;
        for (size_t b0 = 0; b0 < n_train; b0 += B) {
            size_t nb = n_train - b0 < B ? n_train - b0 : B;
            if (bn && nb < 2)
                continue; /* batch statistics need two rows */
            for (size_t i = 0; i < nb; i++)
                memcpy(batch + i * d, xtrain + order[b0 + i] * d, d * sizeof(double));
            ns_flow_zero_grad(flow);
            double loss = ns_flow_loss_grad(flow, batch, nb, 1);
            double gn = ns_clip_grad_norm(grad, P, cfg->clip_grad_norm);
            if (!isfinite(loss) || !isfinite(gn)) {
                st.skipped_steps++;
                continue;
            }
            ns_adamw_step(opt, theta, grad);
            ns_flow_params_changed(flow);
            loss_sum += loss;
            nbatches++;
        }
        double train_loss = nbatches ? loss_sum / (double)nbatches : NAN;
        st.final_train_loss = train_loss;
        double val_loss = NAN;
        if (validate) {
            val_loss = ns_flow_loss_eval(flow, xval, n_val);
            if (val_loss < best_val) {
                best_val = val_loss;
                best_epoch = epoch;
                memcpy(best.theta, theta, P * sizeof(double));
                ns_flow_get_buffers(flow, best.bufs);
            }
        }
        if (loss_hist) {
            loss_hist[2 * (epoch - 1)] = train_loss;
            loss_hist[2 * (epoch - 1) + 1] = val_loss;
        }
        if (validate && epoch - best_epoch > cfg->patience) {
            epoch++;
            break;
        }
    }
    st.epochs = epoch - 1;
    /* 4. restore the best state (parameters and running statistics) */
    if (validate) {
        memcpy(theta, best.theta, P * sizeof(double));
        ns_flow_set_buffers(flow, best.bufs);
        ns_flow_params_changed(flow);
        st.best_epoch = best_epoch;
        st.best_val_loss = best_epoch ? best_val : NAN;
    } else {
        st.best_epoch = st.epochs;
    }
done:
    st.time = ns_now() - t0;
    if (stats)
        *stats = st;
    free(data);
    free(batch);
    free(order);
    free(entry.theta);
    free(entry.bufs);
    free(entry.m);
    free(entry.v);
    free(entry.rng);
    free(best.theta);
    free(best.bufs);
    return rc;
}
