/* flow_f32.c - the float32 inverse pass of populations: its kernels and the
 * float32 mirror of the flow they run on (see flow_f32.h for why). */
#include "flow_f32.h"
#include "flow_impl.h"
#include "flow_layers.h" /* NS_SIMD */
#include "nessai/error.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SCALE_EPS 1e-3f
#define LOG_CHUNK 8 /* s > 1e-3: a float product of 8 factors stays above 1e-24 */

int ns_f32_work_init(ns_f32_work_t *w, size_t cap, size_t H, size_t nI, size_t nT)
{
    memset(w, 0, sizeof *w);
    w->cap = cap;
    w->H = H;
    w->nI = nI;
    w->nT = nT;
    w->xI = malloc(cap * nI * sizeof(float));
    w->h = malloc(cap * H * sizeof(float));
    w->t = malloc(cap * H * sizeof(float));
    w->u = malloc(cap * H * sizeof(float));
    w->out = malloc(cap * 2 * nT * sizeof(float));
    if (!w->xI || !w->h || !w->t || !w->u || !w->out) {
        ns_f32_work_free(w);
        return NS_ERR_NOMEM;
    }
    return NS_OK;
}

void ns_f32_work_free(ns_f32_work_t *w)
{
    free(w->xI);
    free(w->h);
    free(w->t);
    free(w->u);
    free(w->out);
    memset(w, 0, sizeof *w);
}

/* Y (n x out) = X (n x in) W^T + b */
NS_SIMD void ns_f32_linear(const float *X, size_t n, size_t in, const float *W, const float *b,
                  size_t out, float *Y)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < out; k++)
            Y[i * out + k] = b[k];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)in, 1.0f, X,
                (int)in, W, (int)in, 1.0f, Y, (int)out);
}

NS_SIMD static void s_relu(const float *x, size_t m, float *y)
{
    for (size_t k = 0; k < m; k++)
        y[k] = x[k] > 0 ? x[k] : 0.0f;
}

NS_SIMD void ns_f32_coupling_inverse(const ns_f32_coupling_t *c, const float *p, float *a, size_t n,
                             double *logdet, ns_f32_work_t *w)
{
    size_t d = c->d, nI = c->nI, nT = c->nT, H = c->H, nout = 2 * nT, m = n * H;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < nI; k++)
            w->xI[i * nI + k] = a[i * d + c->idxI[k]];
    /* network: same layout as ns_coupling_n_params */
    const float *q = p;
    ns_f32_linear(w->xI, n, nI, q, q + H * nI, H, w->h);
    q += H * nI + H;
    if (c->net == 0) { /* resnet */
        for (size_t k = 0; k < c->nl; k++) {
            s_relu(w->h, m, w->t);
            ns_f32_linear(w->t, n, H, q, q + H * H, H, w->u);
            s_relu(w->u, m, w->t);
            const float *W2 = q + H * H + H, *b2 = q + 2 * H * H + H;
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < H; j++)
                    w->h[i * H + j] += b2[j];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)H, (int)H, 1.0f,
                        w->t, (int)H, W2, (int)H, 1.0f, w->h, (int)H);
            q += 2 * (H * H + H);
        }
        ns_f32_linear(w->h, n, H, q, q + nout * H, nout, w->out);
    } else {
        for (size_t k = 1; k < c->nl; k++) {
            s_relu(w->h, m, w->t);
            ns_f32_linear(w->t, n, H, q, q + H * H, H, w->h);
            q += H * H + H;
        }
        s_relu(w->h, m, w->t);
        ns_f32_linear(w->t, n, H, q, q + nout * H, nout, w->out);
    }
    for (size_t i = 0; i < n; i++) {
        const float *o = w->out + i * nout;
        double ld = 0.0;
        float prod = 1.0f;
        for (size_t k = 0; k < nT; k++) {
            float x = o[nT + k] + 2.0f, e = expf(-fabsf(x)), r = 1.0f / (1.0f + e);
            float s = (x >= 0 ? r : e * r) + SCALE_EPS;
            size_t j = c->idxT[k];
            a[i * d + j] = (a[i * d + j] - o[k]) / s;
            prod *= s;
            if ((k + 1) % LOG_CHUNK == 0) {
                ld += (double)logf(prod);
                prod = 1.0f;
            }
        }
        logdet[i] -= ld + (double)logf(prod);
    }
}

/* ---- the float32 mirror of the flow and ns_flow_inverse_f32 ---- */

/* The mirror of ns_flow_inverse_f32 (flow_impl.h). */
void ns_flow_inverse32_free(ns_flow_t *f)
{
    free(f->theta32);
    free(f->Wi32);
    free(f->bi32);
    free(f->bn_scale);
    free(f->bn_shift);
    free(f->lu_ld);
    free(f->bn_ld);
    free(f->a32);
    free(f->t32);
    ns_f32_work_free(&f->w32);
    f->theta32 = f->Wi32 = f->bi32 = f->bn_scale = f->bn_shift = f->a32 = f->t32 = NULL;
    f->lu_ld = f->bn_ld = NULL;
    f->cap32 = 0;
}

/* Allocate the float32 mirror for the current capacity and refresh it. */
static int s_sync32(ns_flow_t *f)
{
    size_t d = f->d, nb = f->cfg.n_blocks;
    if (!f->theta32) {
        f->theta32 = malloc(f->P * sizeof(float));
        f->Wi32 = malloc(nb * d * d * sizeof(float));
        f->bi32 = malloc(nb * d * sizeof(float));
        f->bn_scale = malloc(nb * d * sizeof(float));
        f->bn_shift = malloc(nb * d * sizeof(float));
        f->lu_ld = malloc(nb * sizeof(double));
        f->bn_ld = malloc(nb * sizeof(double));
        if (!f->theta32 || !f->Wi32 || !f->bi32 || !f->bn_scale || !f->bn_shift || !f->lu_ld ||
            !f->bn_ld)
            return NS_ERR_NOMEM;
        f->dirty32 = 1;
    }
    if (f->cap32 < f->cap) {
        free(f->a32);
        free(f->t32);
        ns_f32_work_free(&f->w32);
        f->a32 = malloc(f->cap * d * sizeof(float));
        f->t32 = malloc(f->cap * d * sizeof(float));
        if (!f->a32 || !f->t32 || ns_f32_work_init(&f->w32, f->cap, f->cfg.n_neurons, d, d))
            return NS_ERR_NOMEM;
        f->cap32 = f->cap;
    }
    if (!f->dirty32)
        return NS_OK;
    for (size_t k = 0; k < f->P; k++)
        f->theta32[k] = (float)f->theta[k];
    for (size_t b = 0; b < nb; b++) {
        s_block_t *B = &f->blk[b];
        if (ns_flow_has_lu(f)) {
            /* x = W^-1 (y - b) as one float product: W^-1 = U^-1 L^-1 by two
             * triangular solves on the identity, in double (inv is d*d) */
            double *inv = B->lu.tmp;
            const double *bias = f->theta + B->off_lu + d * (d - 1) + d;
            memset(inv, 0, d * d * sizeof(double));
            for (size_t j = 0; j < d; j++)
                inv[j * d + j] = 1.0;
            cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasUnit, (int)d,
                        (int)d, 1.0, B->lu.L, (int)d, inv, (int)d);
            cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit,
                        (int)d, (int)d, 1.0, B->lu.U, (int)d, inv, (int)d);
            for (size_t i = 0; i < d; i++) {
                double s = 0.0;
                for (size_t j = 0; j < d; j++) {
                    f->Wi32[b * d * d + i * d + j] = (float)inv[i * d + j];
                    s += inv[i * d + j] * bias[j];
                }
                f->bi32[b * d + i] = (float)-s;
            }
            f->lu_ld[b] = B->lu.logdet;
        }
        if (f->cfg.batch_norm) {
            const double *v = f->theta + B->off_bn, *beta = v + d;
            double ld = 0.0;
            for (size_t j = 0; j < d; j++) {
                double w = ns_softplus(v[j]) + 1e-5, sd = sqrt(B->bn.rvar[j] + NS_BN_EPS);
                f->bn_scale[b * d + j] = (float)(sd / w);
                f->bn_shift[b * d + j] = (float)(B->bn.rmean[j] - beta[j] * sd / w);
                ld += log(w) - log(sd);
            }
            f->bn_ld[b] = ld;
        }
    }
    f->dirty32 = 0;
    return NS_OK;
}

NS_SIMD int ns_flow_inverse_f32(ns_flow_t *self, const double *z, size_t n, double *x, double *logdet)
{
    int rc = s_sync32(self);
    if (rc != NS_OK)
        return rc;
    size_t d = self->d;
    float *a = self->a32, *t = self->t32;
    for (size_t i0 = 0; i0 < n; i0 += self->cap32) {
        size_t m = n - i0 < self->cap32 ? n - i0 : self->cap32;
        for (size_t q = 0; q < m * d; q++)
            a[q] = (float)z[i0 * d + q];
        memset(self->ld, 0, m * sizeof(double));
        for (size_t k = self->K; k-- > 0;) {
            size_t b = self->st[k].blk;
            s_block_t *B = &self->blk[b];
            switch (self->st[k].kind) {
            case ST_PERM:
                ns_perm_inverse_f32(B->perm, d, a, m, t);
                memcpy(a, t, m * d * sizeof(float));
                break;
            case ST_LU:
                ns_f32_linear(a, m, d, self->Wi32 + b * d * d, self->bi32 + b * d, d, t);
                memcpy(a, t, m * d * sizeof(float));
                for (size_t i = 0; i < m; i++)
                    self->ld[i] -= self->lu_ld[b];
                break;
            case ST_COUP: {
                ns_f32_coupling_t c = {d, B->cp.nI, B->cp.nT, B->cp.H, B->cp.nl, B->cp.net,
                                       B->cp.idxI, B->cp.idxT};
                ns_f32_coupling_inverse(&c, self->theta32 + B->off_cp, a, m, self->ld,
                                        &self->w32);
                break;
            }
            case ST_BN: {
                const float *sc = self->bn_scale + b * d, *sh = self->bn_shift + b * d;
                for (size_t i = 0; i < m; i++)
                    for (size_t j = 0; j < d; j++)
                        a[i * d + j] = sc[j] * a[i * d + j] + sh[j];
                for (size_t i = 0; i < m; i++)
                    self->ld[i] -= self->bn_ld[b];
                break;
            }
            }
        }
        if (x)
            for (size_t q = 0; q < m * d; q++)
                x[i0 * d + q] = (double)a[q];
        if (logdet)
            memcpy(logdet + i0, self->ld, m * sizeof(double));
    }
    return NS_OK;
}

