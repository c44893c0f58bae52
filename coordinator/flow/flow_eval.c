/* flow_eval.c - the float64 stage pass and the eval-mode passes: forward,
 * log q, inverse and the validation loss (running statistics in BatchNorm). */
#include "flow_impl.h"
#include "nessai/error.h"

#include <string.h>

double ns_flow_log_normal(const double *z, size_t d)
{
    double r2 = 0.0;
    for (size_t j = 0; j < d; j++)
        r2 += z[j] * z[j];
    return -0.5 * r2 - 0.5 * (double)d * NS_LOG_2PI;
}


/* train: 0 eval, 1 training without running update, 2 training with update.
 * Input must already be in buf[0]; n <= cap. Leaves z in buf[K], log-det in ld. */
void ns_flow_stage_forward(ns_flow_t *f, size_t n, int train)
{
    size_t d = f->d;
    memset(f->ld, 0, n * sizeof(double));
    for (size_t k = 0; k < f->K; k++) {
        const double *x = f->buf[k];
        double *y = f->buf[k + 1];
        s_block_t *B = &f->blk[f->st[k].blk];
        switch (f->st[k].kind) {
        case ST_PERM:
            ns_perm_forward(B->perm, d, x, n, y);
            break;
        case ST_LU:
            ns_lu_forward(&B->lu, f->theta + B->off_lu, x, n, y, f->ld);
            break;
        case ST_COUP:
            ns_coupling_forward(&B->cp, f->theta + B->off_cp, x, n, y, f->ld);
            break;
        case ST_BN:
            if (train) {
                ns_bnorm_forward_train(&B->bn, f->theta + B->off_bn, x, n, y, f->ld,
                                       train == 2);
                f->dirty32 |= train == 2;
            }
            else
                ns_bnorm_forward_eval(&B->bn, f->theta + B->off_bn, x, n, y, f->ld);
            break;
        }
    }
}

/* Eval-mode pass on the rows i0 .. i0 + m - 1 of x (n rows), m at most the
 * capacity: z in buf[K], log-det in ld. Returns m. */
static size_t s_eval_chunk(ns_flow_t *f, const double *x, size_t n, size_t i0)
{
    size_t m = n - i0 < f->cap ? n - i0 : f->cap;
    memcpy(f->buf[0], x + i0 * f->d, m * f->d * sizeof(double));
    ns_flow_stage_forward(f, m, 0);
    return m;
}

int ns_flow_forward(ns_flow_t *self, const double *x, size_t n, double *z, double *logdet)
{
    size_t d = self->d;
    for (size_t i0 = 0; i0 < n; i0 += self->cap) {
        size_t m = s_eval_chunk(self, x, n, i0);
        if (z)
            memcpy(z + i0 * d, self->buf[self->K], m * d * sizeof(double));
        if (logdet)
            memcpy(logdet + i0, self->ld, m * sizeof(double));
    }
    return NS_OK;
}

int ns_flow_log_prob(ns_flow_t *self, const double *x, size_t n, double *logq)
{
    size_t d = self->d;
    for (size_t i0 = 0; i0 < n; i0 += self->cap) {
        size_t m = s_eval_chunk(self, x, n, i0);
        const double *z = self->buf[self->K];
        for (size_t i = 0; i < m; i++)
            logq[i0 + i] = ns_flow_log_normal(z + i * d, d) + self->ld[i];
    }
    return NS_OK;
}

int ns_flow_inverse(ns_flow_t *self, const double *z, size_t n, double *x, double *logdet)
{
    size_t d = self->d;
    double *a = self->dA, *t = self->dB;
    for (size_t i0 = 0; i0 < n; i0 += self->cap) {
        size_t m = n - i0 < self->cap ? n - i0 : self->cap;
        memcpy(a, z + i0 * d, m * d * sizeof(double));
        memset(self->ld, 0, m * sizeof(double));
        for (size_t k = self->K; k-- > 0;) {
            s_block_t *B = &self->blk[self->st[k].blk];
            switch (self->st[k].kind) {
            case ST_PERM:
                ns_perm_inverse(B->perm, d, a, m, t);
                memcpy(a, t, m * d * sizeof(double));
                break;
            case ST_LU:
                ns_lu_inverse(&B->lu, self->theta + B->off_lu, a, m, a, self->ld);
                break;
            case ST_COUP:
                ns_coupling_inverse(&B->cp, self->theta + B->off_cp, a, m, a, self->ld);
                break;
            case ST_BN:
                ns_bnorm_inverse(&B->bn, self->theta + B->off_bn, a, m, a, self->ld);
                break;
            }
        }
        if (x)
            memcpy(x + i0 * d, a, m * d * sizeof(double));
        if (logdet)
            memcpy(logdet + i0, self->ld, m * sizeof(double));
    }
    return NS_OK;
}

double ns_flow_mean_nll(ns_flow_t *f, size_t n)
{
    const double *z = f->buf[f->K];
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += ns_flow_log_normal(z + i * f->d, f->d) + f->ld[i];
    return -s / (double)n;
}

double ns_flow_loss_eval(ns_flow_t *self, const double *x, size_t n)
{
    double s = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += self->cap) {
        size_t m = s_eval_chunk(self, x, n, i0);
        s += ns_flow_mean_nll(self, m) * (double)m;
    }
    return s / (double)n;
}
