/* flow_f32.c - float32 inverse-pass kernels (see flow_f32.h for why). */
#include "flow_f32.h"
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
