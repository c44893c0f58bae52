/* flow_grad.c - training mode: the loss and its hand-written gradient in
 * float64 or, with ns_flow_set_train_f32, on a float32 mirror of the
 * layers (docs/flow.md, "Precision"). */
#include "flow_impl.h"
#include "nessai/error.h"

#include <stdlib.h>
#include <string.h>

void ns_flow_train32_free(ns_flow_t *f)
{
    if (f->blk32)
        for (size_t b = 0; b < f->cfg.n_blocks; b++) {
            s_block32_t *T = &f->blk32[b];
            if (T->lu.d)
                ns_lu_free_f32(&T->lu);
            if (T->cp.d)
                ns_coupling_free_f32(&T->cp);
            if (T->bn.d)
                ns_bnorm_free_f32(&T->bn);
        }
    if (f->tbuf)
        for (size_t k = 0; k <= f->K; k++)
            free(f->tbuf[k]);
    free(f->blk32);
    free(f->tbuf);
    free(f->tdA);
    free(f->tdB);
    free(f->ttheta);
    free(f->tgrad);
    f->blk32 = NULL;
    f->tbuf = NULL;
    f->tdA = f->tdB = f->ttheta = f->tgrad = NULL;
    f->tcap = 0;
}


/* Allocate the float32 training mirror (layers on first use) for rows. */
int ns_flow_train32_reserve(ns_flow_t *f, size_t rows)
{
    size_t d = f->d, nb = f->cfg.n_blocks;
    if (!f->blk32) {
        f->blk32 = calloc(nb, sizeof *f->blk32);
        f->tbuf = calloc(f->K + 1, sizeof(float *));
        f->ttheta = malloc(f->P * sizeof(float));
        f->tgrad = malloc(f->P * sizeof(float));
        int rc = (!f->blk32 || !f->tbuf || !f->ttheta || !f->tgrad) ? NS_ERR_NOMEM : NS_OK;
        for (size_t b = 0; rc == NS_OK && b < nb; b++) {
            s_block32_t *T = &f->blk32[b];
            if (ns_flow_has_lu(f))
                rc = ns_lu_init_f32(&T->lu, d);
            if (rc == NS_OK)
                rc = ns_coupling_init_f32(&T->cp, d, f->blk[b].mask, f->cfg.n_neurons,
                                          f->cfg.n_layers, f->cfg.net);
            if (rc == NS_OK && f->cfg.batch_norm)
                rc = ns_bnorm_init_f32(&T->bn, d);
        }
        if (rc != NS_OK) {
            ns_flow_train32_free(f);
            return rc;
        }
    }
    if (rows <= f->tcap)
        return NS_OK;
    for (size_t k = 0; k <= f->K; k++) {
        float *q = realloc(f->tbuf[k], rows * d * sizeof(float));
        if (!q)
            return NS_ERR_NOMEM;
        f->tbuf[k] = q;
    }
    float *a = realloc(f->tdA, rows * d * sizeof(float));
    if (a)
        f->tdA = a;
    float *c = realloc(f->tdB, rows * d * sizeof(float));
    if (c)
        f->tdB = c;
    if (!a || !c)
        return NS_ERR_NOMEM;
    for (size_t b = 0; b < nb; b++) {
        if (ns_coupling_reserve_f32(&f->blk32[b].cp, rows))
            return NS_ERR_NOMEM;
        if (f->cfg.batch_norm && ns_bnorm_reserve_f32(&f->blk32[b].bn, rows))
            return NS_ERR_NOMEM;
    }
    f->tcap = rows;
    return NS_OK;
}


int ns_flow_set_train_f32(ns_flow_t *self, int on)
{
    self->train32 = on ? 1 : 0;
    if (!self->train32) {
        ns_flow_train32_free(self);
        return NS_OK;
    }
    return ns_flow_train32_reserve(self, self->cap);
}

int ns_flow_train_f32(const ns_flow_t *self) { return self->train32; }

/* The backward pass through every stage, in double and in float
 * (flow_backward_tmpl.c). */
#define NS_R double
#define NS_F(n) n
#define NS_LAYER(f, b) (&(f)->blk[b])
#include "flow_backward_tmpl.c"
#define NS_R float
#define NS_F(n) n##_f32
#define NS_LAYER(f, b) (&(f)->blk32[b])
#include "flow_backward_tmpl.c"

/* ns_flow_loss_grad in float32: the same passes on float copies of the
 * parameters and data; log-dets, the loss and the gradient sums in double.
 * Running statistics are updated in double from the float batch moments. */
static double s_loss_grad32(ns_flow_t *f, const double *x, const double *w, double wsum,
                            size_t n, int update)
{
    size_t d = f->d;
    for (size_t k = 0; k < f->P; k++) {
        f->ttheta[k] = (float)f->theta[k];
        f->tgrad[k] = 0.0f;
    }
    float *in = f->tbuf[0];
    for (size_t q = 0; q < n * d; q++)
        in[q] = (float)x[q];
    memset(f->ld, 0, n * sizeof(double));
    for (size_t k = 0; k < f->K; k++) {
        const float *xs = f->tbuf[k];
        float *ys = f->tbuf[k + 1];
        size_t b = f->st[k].blk;
        s_block_t *B = &f->blk[b];
        s_block32_t *T = &f->blk32[b];
        switch (f->st[k].kind) {
        case ST_PERM:
            ns_perm_forward_f32(B->perm, d, xs, n, ys);
            break;
        case ST_LU:
            ns_lu_prepare_f32(&T->lu, f->ttheta + B->off_lu);
            ns_lu_forward_f32(&T->lu, f->ttheta + B->off_lu, xs, n, ys, f->ld);
            break;
        case ST_COUP:
            ns_coupling_forward_f32(&T->cp, f->ttheta + B->off_cp, xs, n, ys, f->ld);
            break;
        case ST_BN:
            ns_bnorm_forward_train_f32(&T->bn, f->ttheta + B->off_bn, xs, n, ys, f->ld, 0);
            if (update) {
                for (size_t j = 0; j < d; j++) {
                    B->bn.rmean[j] = (1.0 - NS_BN_MOMENTUM) * B->bn.rmean[j] +
                                     NS_BN_MOMENTUM * (double)T->bn.mean[j];
                    B->bn.rvar[j] = (1.0 - NS_BN_MOMENTUM) * B->bn.rvar[j] +
                                    NS_BN_MOMENTUM * (double)T->bn.var[j];
                }
                f->dirty32 = 1;
            }
            break;
        }
    }
    const float *z = f->tbuf[f->K];
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double r2 = 0.0;
        for (size_t j = 0; j < d; j++)
            r2 += (double)z[i * d + j] * (double)z[i * d + j];
        double lp = -0.5 * r2 - 0.5 * (double)d * NS_LOG_2PI + f->ld[i];
        s += w ? w[i] * lp : lp;
    }
    if (w) {
        /* weighted: dLoss/dz_i = c_i z_i, dLoss/dlogdet_i = -c_i, c_i = w_i / sum w */
        float *dy = f->tdA, *dx = f->tdB;
        for (size_t i = 0; i < n; i++) {
            float c = (float)(w[i] / wsum);
            for (size_t j = 0; j < d; j++)
                dy[i * d + j] = z[i * d + j] * c;
            f->gld[i] = -w[i] / wsum;
        }
        s_backward_f32(f, n, f->tbuf, f->ttheta, f->tgrad, dy, dx);
        for (size_t k = 0; k < f->P; k++)
            f->grad[k] += (double)f->tgrad[k];
        return -s / wsum;
    }
    double loss = -s / (double)n;
    /* dLoss/dz = z/n, dLoss/dlogdet_i = -1/n */
    float *dy = f->tdA, *dx = f->tdB, inv_n = 1.0f / (float)n;
    for (size_t q = 0; q < n * d; q++)
        dy[q] = z[q] * inv_n;
    for (size_t i = 0; i < n; i++)
        f->gld[i] = -1.0 / (double)n;
    s_backward_f32(f, n, f->tbuf, f->ttheta, f->tgrad, dy, dx);
    for (size_t k = 0; k < f->P; k++)
        f->grad[k] += (double)f->tgrad[k];
    return loss;
}

double ns_flow_loss_grad(ns_flow_t *self, const double *x, size_t n, int update_running)
{
    if (self->train32)
        return s_loss_grad32(self, x, NULL, 0.0, n, update_running);
    size_t d = self->d;
    memcpy(self->buf[0], x, n * d * sizeof(double));
    ns_flow_stage_forward(self, n, update_running ? 2 : 1);
    double loss = ns_flow_mean_nll(self, n);
    /* dLoss/dz = z/n, dLoss/dlogdet_i = -1/n */
    double *dy = self->dA, *dx = self->dB;
    const double *z = self->buf[self->K];
    for (size_t q = 0; q < n * d; q++)
        dy[q] = z[q] / (double)n;
    for (size_t i = 0; i < n; i++)
        self->gld[i] = -1.0 / (double)n;
    s_backward(self, n, self->buf, self->theta, self->grad, dy, dx);
    return loss;
}

double ns_flow_loss_train(ns_flow_t *self, const double *x, size_t n)
{
    memcpy(self->buf[0], x, n * self->d * sizeof(double));
    ns_flow_stage_forward(self, n, 1);
    return ns_flow_mean_nll(self, n);
}

double ns_flow_loss_grad_weighted(ns_flow_t *self, const double *x, const double *w, size_t n,
                                  int update_running)
{
    if (!w)
        return ns_flow_loss_grad(self, x, n, update_running);
    double wsum = 0.0;
    for (size_t i = 0; i < n; i++)
        wsum += w[i];
    if (self->train32)
        return s_loss_grad32(self, x, w, wsum, n, update_running);
    size_t d = self->d;
    memcpy(self->buf[0], x, n * d * sizeof(double));
    ns_flow_stage_forward(self, n, update_running ? 2 : 1);
    const double *z = self->buf[self->K];
    double s = 0.0, *dy = self->dA, *dx = self->dB;
    for (size_t i = 0; i < n; i++) {
        s += w[i] * (ns_flow_log_normal(z + i * d, d) + self->ld[i]);
        double c = w[i] / wsum;
        for (size_t j = 0; j < d; j++)
            dy[i * d + j] = z[i * d + j] * c;
        self->gld[i] = -c;
    }
    s_backward(self, n, self->buf, self->theta, self->grad, dy, dx);
    return -s / wsum;
}
