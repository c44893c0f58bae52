/* flow_layers.c - LU linear, affine coupling and BatchNorm: forward,
 * inverse and hand-written backward passes (SPEC.md §4.2). */
#include "flow_layers.h"
#include "nessai/error.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LU_EPS 1e-3      /* diag(U) = softplus(u) + LU_EPS */
#define SCALE_EPS 1e-3   /* s = sigmoid(a + 2) + SCALE_EPS */
#define BN_W_EPS 1e-5    /* w = softplus(v) + BN_W_EPS */
/* sum log s as log of products of LOG_CHUNK factors: s > 1e-3, so a
 * product of 32 stays above 1e-96 (no underflow) and costs one log */
#define LOG_CHUNK 32

double ns_softplus(double x)
{
    return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x)));
}

double ns_sigmoid(double x)
{
    /* branch-free (signs are random: a branch mispredicts half the time) */
    double e = exp(-fabs(x)), r = 1.0 / (1.0 + e);
    return x >= 0 ? r : e * r;
}

double ns_softplus_inv(double y)
{
    /* log(e^y - 1) = y + log(1 - e^-y), stable for large y */
    return y + log(-expm1(-y));
}

/* Y (n x out) = X (n x in) W^T + b, W row-major out x in. */
NS_SIMD static void s_linear(const double *X, size_t n, size_t in, const double *W,
                     const double *b, size_t out, double *Y)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < out; k++)
            Y[i * out + k] = b[k];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)in,
                1.0, X, (int)in, W, (int)in, 1.0, Y, (int)out);
}

/* Y += X W^T (no bias). */
static void s_linear_acc(const double *X, size_t n, size_t in, const double *W,
                         size_t out, double *Y)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)in,
                1.0, X, (int)in, W, (int)in, 1.0, Y, (int)out);
}

/* g[k] += sum_i A[i, k] (n x m row-major). Column blocks of 4 keep the
 * partial sums in registers (a row-by-row update of g would be bound by
 * store-to-load forwarding on g). */
NS_SIMD static void s_colsum_add(const double *A, size_t n, size_t m, double *g)
{
    size_t k0 = 0;
    for (; k0 + 4 <= m; k0 += 4) {
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (size_t i = 0; i < n; i++) {
            const double *r = A + i * m + k0;
            a0 += r[0];
            a1 += r[1];
            a2 += r[2];
            a3 += r[3];
        }
        g[k0] += a0;
        g[k0 + 1] += a1;
        g[k0 + 2] += a2;
        g[k0 + 3] += a3;
    }
    for (; k0 < m; k0++) {
        double a = 0;
        for (size_t i = 0; i < n; i++)
            a += A[i * m + k0];
        g[k0] += a;
    }
}

/* g[k] += sum_i (A[i, k] - mu[k]) * (B[i, k] - nu[k]) with the same column
 * blocking (B = A, nu = mu gives squared deviations; mu = nu = 0 a dot). */
NS_SIMD static void s_coldot_add(const double *A, const double *mu, const double *B,
                                 const double *nu, size_t n, size_t m, double *g)
{
    size_t k0 = 0;
    for (; k0 + 4 <= m; k0 += 4) {
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        double m0 = mu ? mu[k0] : 0, m1 = mu ? mu[k0 + 1] : 0, m2 = mu ? mu[k0 + 2] : 0,
               m3 = mu ? mu[k0 + 3] : 0;
        double n0 = nu ? nu[k0] : 0, n1 = nu ? nu[k0 + 1] : 0, n2 = nu ? nu[k0 + 2] : 0,
               n3 = nu ? nu[k0 + 3] : 0;
        for (size_t i = 0; i < n; i++) {
            const double *r = A + i * m + k0, *q = B + i * m + k0;
            a0 += (r[0] - m0) * (q[0] - n0);
            a1 += (r[1] - m1) * (q[1] - n1);
            a2 += (r[2] - m2) * (q[2] - n2);
            a3 += (r[3] - m3) * (q[3] - n3);
        }
        g[k0] += a0;
        g[k0 + 1] += a1;
        g[k0 + 2] += a2;
        g[k0 + 3] += a3;
    }
    for (; k0 < m; k0++) {
        double a = 0, mk = mu ? mu[k0] : 0, nk = nu ? nu[k0] : 0;
        for (size_t i = 0; i < n; i++)
            a += (A[i * m + k0] - mk) * (B[i * m + k0] - nk);
        g[k0] += a;
    }
}

/* Backward of a linear layer: gW += dY^T X, gb += colsum dY and, when dX
 * is given, dX = dY W. */
NS_SIMD static void s_linear_back(const double *X, const double *dY, size_t n, size_t in,
                          const double *W, size_t out, double *gW, double *gb,
                          double *dX)
{
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)n,
                1.0, dY, (int)out, X, (int)in, 1.0, gW, (int)in);
    s_colsum_add(dY, n, out, gb);
    if (dX)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)in, (int)out,
                    1.0, dY, (int)out, W, (int)in, 0.0, dX, (int)in);
}

NS_SIMD static void s_relu(const double *x, size_t m, double *y)
{
    for (size_t k = 0; k < m; k++)
        y[k] = x[k] > 0 ? x[k] : 0.0;
}

/* d *= 1[x > 0] */
NS_SIMD static void s_relu_mask(const double *x, size_t m, double *dd)
{
    /* unconditional store so that the loop is if-converted and vectorised */
    for (size_t k = 0; k < m; k++)
        dd[k] = x[k] > 0 ? dd[k] : 0.0;
}

/* ======================================================================
 * LU linear
 * ==================================================================== */

size_t ns_lu_n_params(size_t d) { return d * d + d; }

int ns_lu_init(ns_lu_t *lu, size_t d)
{
    memset(lu, 0, sizeof *lu);
    lu->d = d;
    lu->L = calloc(d * d, sizeof(double));
    lu->U = calloc(d * d, sizeof(double));
    lu->W = calloc(d * d, sizeof(double));
    lu->dW = calloc(d * d, sizeof(double));
    lu->tmp = calloc(d * d, sizeof(double));
    lu->diag = calloc(d, sizeof(double));
    if (!lu->L || !lu->U || !lu->W || !lu->dW || !lu->tmp || !lu->diag) {
        ns_lu_free(lu);
        return NS_ERR_NOMEM;
    }
    return NS_OK;
}

void ns_lu_free(ns_lu_t *lu)
{
    free(lu->L);
    free(lu->U);
    free(lu->W);
    free(lu->dW);
    free(lu->tmp);
    free(lu->diag);
    memset(lu, 0, sizeof *lu);
}

void ns_lu_identity(size_t d, double *p)
{
    size_t ns = d * (d - 1) / 2;
    memset(p, 0, (2 * ns) * sizeof *p);
    double u0 = ns_softplus_inv(1.0 - LU_EPS);
    for (size_t i = 0; i < d; i++) {
        p[2 * ns + i] = u0;
        p[2 * ns + d + i] = 0.0;
    }
}

void ns_lu_prepare(ns_lu_t *lu, const double *p)
{
    size_t d = lu->d, ns = d * (d - 1) / 2;
    const double *lo = p, *up = p + ns, *ud = p + 2 * ns;
    memset(lu->L, 0, d * d * sizeof(double));
    memset(lu->U, 0, d * d * sizeof(double));
    size_t kl = 0, ku = 0;
    lu->logdet = 0.0;
    for (size_t i = 0; i < d; i++) {
        for (size_t j = 0; j < i; j++)
            lu->L[i * d + j] = lo[kl++];
        lu->L[i * d + i] = 1.0;
        lu->diag[i] = ns_softplus(ud[i]) + LU_EPS;
        lu->U[i * d + i] = lu->diag[i];
        for (size_t j = i + 1; j < d; j++)
            lu->U[i * d + j] = up[ku++];
        lu->logdet += log(lu->diag[i]);
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)d, (int)d, 1.0,
                lu->L, (int)d, lu->U, (int)d, 0.0, lu->W, (int)d);
}

void ns_lu_forward(const ns_lu_t *lu, const double *p, const double *x, size_t n,
                   double *y, double *logdet)
{
    size_t d = lu->d, ns = d * (d - 1) / 2;
    const double *b = p + 2 * ns + d;
    s_linear(x, n, d, lu->W, b, d, y);
    for (size_t i = 0; i < n; i++)
        logdet[i] += lu->logdet;
}

void ns_lu_inverse(const ns_lu_t *lu, const double *p, const double *y, size_t n,
                   double *x, double *logdet)
{
    size_t d = lu->d, ns = d * (d - 1) / 2;
    const double *b = p + 2 * ns + d;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = y[i * d + j] - b[j];
    /* x W^T = y - b with W^T = U^T L^T: solve with L^T, then with U^T. */
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasUnit, (int)n,
                (int)d, 1.0, lu->L, (int)d, x, (int)d);
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasUpper, CblasTrans, CblasNonUnit, (int)n,
                (int)d, 1.0, lu->U, (int)d, x, (int)d);
    for (size_t i = 0; i < n; i++)
        logdet[i] -= lu->logdet;
}

void ns_lu_backward(ns_lu_t *lu, const double *p, const double *x, const double *dy,
                    const double *gld, size_t n, double *dx, double *g)
{
    size_t d = lu->d, ns = d * (d - 1) / 2;
    double *glo = g, *gup = g + ns, *gud = g + 2 * ns, *gb = g + 2 * ns + d;
    const double *ud = p + 2 * ns;
    memset(lu->dW, 0, d * d * sizeof(double));
    s_linear_back(x, dy, n, d, lu->W, d, lu->dW, gb, dx);
    double gsum = 0.0;
    for (size_t i = 0; i < n; i++)
        gsum += gld[i];
    /* dL = dW U^T (strict lower part) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)d, 1.0,
                lu->dW, (int)d, lu->U, (int)d, 0.0, lu->tmp, (int)d);
    size_t k = 0;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < i; j++)
            glo[k++] += lu->tmp[i * d + j];
    /* dU = L^T dW (upper part incl. diagonal) */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)d, 1.0,
                lu->L, (int)d, lu->dW, (int)d, 0.0, lu->tmp, (int)d);
    k = 0;
    for (size_t i = 0; i < d; i++) {
        for (size_t j = i + 1; j < d; j++)
            gup[k++] += lu->tmp[i * d + j];
        double dd = lu->tmp[i * d + i] + gsum / lu->diag[i];
        gud[i] += dd * ns_sigmoid(ud[i]);
    }
}

/* ======================================================================
 * Affine coupling
 * ==================================================================== */

int ns_coupling_init(ns_coupling_t *c, size_t d, const int8_t *mask, size_t H,
                     size_t nl, int net)
{
    memset(c, 0, sizeof *c);
    if (H == 0 || (net == NS_NET_MLP && nl == 0))
        return NS_ERR_INVAL;
    c->d = d;
    c->H = H;
    c->nl = nl;
    c->net = net;
    c->idxI = calloc(d, sizeof(size_t));
    c->idxT = calloc(d, sizeof(size_t));
    if (!c->idxI || !c->idxT) {
        ns_coupling_free(c);
        return NS_ERR_NOMEM;
    }
    for (size_t j = 0; j < d; j++) {
        if (mask[j] > 0)
            c->idxT[c->nT++] = j;
        else
            c->idxI[c->nI++] = j;
    }
    if (c->nT == 0 || c->nI == 0) {
        ns_coupling_free(c);
        return NS_ERR_INVAL;
    }
    return NS_OK;
}

void ns_coupling_free(ns_coupling_t *c)
{
    free(c->idxI);
    free(c->idxT);
    free(c->xI);
    free(c->h);
    free(c->u);
    free(c->out);
    free(c->sig);
    free(c->dh);
    free(c->da);
    free(c->act);
    free(c->dout);
    free(c->dxI);
    memset(c, 0, sizeof *c);
}

static int s_realloc(double **p, size_t n)
{
    double *q = realloc(*p, (n ? n : 1) * sizeof(double));
    if (!q)
        return NS_ERR_NOMEM;
    *p = q;
    return NS_OK;
}

int ns_coupling_reserve(ns_coupling_t *c, size_t cap)
{
    if (cap <= c->cap)
        return NS_OK;
    size_t H = c->H, nh = c->net == NS_NET_RESNET ? c->nl + 1 : c->nl;
    if (s_realloc(&c->xI, cap * c->nI) || s_realloc(&c->h, nh * cap * H) ||
        s_realloc(&c->u, (c->nl ? c->nl : 1) * cap * H) ||
        s_realloc(&c->out, cap * 2 * c->nT) || s_realloc(&c->sig, cap * c->nT) ||
        s_realloc(&c->dh, cap * H) || s_realloc(&c->da, cap * H) ||
        s_realloc(&c->act, cap * H) || s_realloc(&c->dout, cap * 2 * c->nT) ||
        s_realloc(&c->dxI, cap * c->nI))
        return NS_ERR_NOMEM;
    c->cap = cap;
    return NS_OK;
}

size_t ns_coupling_n_params(const ns_coupling_t *c)
{
    size_t H = c->H, nout = 2 * c->nT;
    size_t np = H * c->nI + H + nout * H + nout;
    if (c->net == NS_NET_RESNET)
        np += c->nl * 2 * (H * H + H);
    else
        np += (c->nl - 1) * (H * H + H);
    return np;
}

static void s_uniform_fill(double *p, size_t n, double bound, ns_rng_t *rng)
{
    for (size_t k = 0; k < n; k++)
        p[k] = bound * (2.0 * ns_rng_uniform(rng) - 1.0);
}

void ns_coupling_init_params(const ns_coupling_t *c, double *p, ns_rng_t *rng,
                             int all_default)
{
    size_t H = c->H, nout = 2 * c->nT;
    double bI = 1.0 / sqrt((double)c->nI), bH = 1.0 / sqrt((double)H);
    s_uniform_fill(p, H * c->nI + H, bI, rng); /* W0, b0 */
    p += H * c->nI + H;
    if (c->net == NS_NET_RESNET) {
        for (size_t k = 0; k < c->nl; k++) {
            s_uniform_fill(p, H * H + H, bH, rng); /* W1, b1 */
            p += H * H + H;
            s_uniform_fill(p, H * H + H, all_default ? bH : 1e-3, rng); /* W2, b2 */
            p += H * H + H;
        }
    } else {
        for (size_t k = 1; k < c->nl; k++) {
            s_uniform_fill(p, H * H + H, bH, rng);
            p += H * H + H;
        }
    }
    s_uniform_fill(p, nout * H + nout, bH, rng); /* Wf, bf */
}

/* Network: xI (n x nI) -> out (n x 2nT), caching what backward needs. */
NS_SIMD static void s_net_forward(ns_coupling_t *c, const double *p, size_t n)
{
    size_t H = c->H, nI = c->nI, nout = 2 * c->nT, m = n * H;
    const double *W0 = p, *b0 = p + H * nI;
    p += H * nI + H;
    if (c->net == NS_NET_RESNET) {
        double *h = c->h;
        s_linear(c->xI, n, nI, W0, b0, H, h);
        for (size_t k = 0; k < c->nl; k++) {
            const double *W1 = p, *b1 = p + H * H, *W2 = p + H * H + H,
                         *b2 = p + 2 * H * H + H;
            p += 2 * (H * H + H);
            double *hk = h + k * c->cap * H, *hn = hk + c->cap * H;
            double *uk = c->u + k * c->cap * H;
            s_relu(hk, m, c->act);
            s_linear(c->act, n, H, W1, b1, H, uk);
            s_relu(uk, m, c->act);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < H; j++)
                    hn[i * H + j] = hk[i * H + j] + b2[j];
            s_linear_acc(c->act, n, H, W2, H, hn);
        }
        s_linear(h + c->nl * c->cap * H, n, H, p, p + nout * H, nout, c->out);
    } else {
        s_linear(c->xI, n, nI, W0, b0, H, c->h);
        for (size_t k = 1; k < c->nl; k++) {
            s_relu(c->h + (k - 1) * c->cap * H, m, c->act);
            s_linear(c->act, n, H, p, p + H * H, H, c->h + k * c->cap * H);
            p += H * H + H;
        }
        s_relu(c->h + (c->nl - 1) * c->cap * H, m, c->act);
        s_linear(c->act, n, H, p, p + nout * H, nout, c->out);
    }
}

/* Backward of the network from c->dout into c->dxI and g. */
NS_SIMD static void s_net_backward(ns_coupling_t *c, const double *p, size_t n, double *g)
{
    size_t H = c->H, nI = c->nI, nout = 2 * c->nT, m = n * H;
    size_t off_f = ns_coupling_n_params(c) - (nout * H + nout);
    const double *Wf = p + off_f;
    double *gWf = g + off_f, *gbf = g + off_f + nout * H;
    if (c->net == NS_NET_RESNET) {
        double *h = c->h;
        s_linear_back(h + c->nl * c->cap * H, c->dout, n, H, Wf, nout, gWf, gbf, c->dh);
        for (size_t kk = c->nl; kk-- > 0;) {
            size_t off = H * nI + H + kk * 2 * (H * H + H);
            const double *W1 = p + off, *W2 = p + off + H * H + H;
            double *gW1 = g + off, *gb1 = g + off + H * H;
            double *gW2 = g + off + H * H + H, *gb2 = g + off + 2 * H * H + H;
            double *hk = h + kk * c->cap * H, *uk = c->u + kk * c->cap * H;
            s_relu(uk, m, c->act);
            s_linear_back(c->act, c->dh, n, H, W2, H, gW2, gb2, c->da);
            s_relu_mask(uk, m, c->da);
            s_relu(hk, m, c->act);
            s_linear_back(c->act, c->da, n, H, W1, H, gW1, gb1, c->act);
            s_relu_mask(hk, m, c->act);
            for (size_t q = 0; q < m; q++)
                c->dh[q] += c->act[q];
        }
    } else {
        double *hl = c->h + (c->nl - 1) * c->cap * H;
        s_relu(hl, m, c->act);
        s_linear_back(c->act, c->dout, n, H, Wf, nout, gWf, gbf, c->dh);
        s_relu_mask(hl, m, c->dh);
        for (size_t k = c->nl - 1; k >= 1; k--) {
            size_t off = H * nI + H + (k - 1) * (H * H + H);
            double *hp = c->h + (k - 1) * c->cap * H;
            s_relu(hp, m, c->act);
            s_linear_back(c->act, c->dh, n, H, p + off, H, g + off, g + off + H * H, c->da);
            s_relu_mask(hp, m, c->da);
            memcpy(c->dh, c->da, m * sizeof(double));
        }
    }
    s_linear_back(c->xI, c->dh, n, nI, p, H, g, g + H * nI, c->dxI);
}

static void s_gather_I(ns_coupling_t *c, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < c->nI; k++)
            c->xI[i * c->nI + k] = x[i * c->d + c->idxI[k]];
}

void ns_coupling_forward(ns_coupling_t *c, const double *p, const double *x, size_t n,
                         double *y, double *logdet)
{
    size_t d = c->d, nT = c->nT;
    s_gather_I(c, x, n);
    s_net_forward(c, p, n);
    if (y != x)
        memcpy(y, x, n * d * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        const double *o = c->out + i * 2 * nT;
        double ld = 0.0, prod = 1.0;
        for (size_t k = 0; k < nT; k++) {
            double sg = ns_sigmoid(o[nT + k] + 2.0), s = sg + SCALE_EPS;
            c->sig[i * nT + k] = sg;
            size_t j = c->idxT[k];
            y[i * d + j] = x[i * d + j] * s + o[k];
            prod *= s;
            if ((k + 1) % LOG_CHUNK == 0) {
                ld += log(prod);
                prod = 1.0;
            }
        }
        logdet[i] += ld + log(prod);
    }
}

void ns_coupling_inverse(ns_coupling_t *c, const double *p, const double *y, size_t n,
                         double *x, double *logdet)
{
    size_t d = c->d, nT = c->nT;
    s_gather_I(c, y, n);
    s_net_forward(c, p, n);
    if (x != y)
        memcpy(x, y, n * d * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        const double *o = c->out + i * 2 * nT;
        double ld = 0.0, prod = 1.0;
        for (size_t k = 0; k < nT; k++) {
            double s = ns_sigmoid(o[nT + k] + 2.0) + SCALE_EPS;
            size_t j = c->idxT[k];
            x[i * d + j] = (y[i * d + j] - o[k]) / s;
            prod *= s;
            if ((k + 1) % LOG_CHUNK == 0) {
                ld += log(prod);
                prod = 1.0;
            }
        }
        logdet[i] -= ld + log(prod);
    }
}

NS_SIMD void ns_coupling_backward(ns_coupling_t *c, const double *p, const double *x,
                          const double *dy, const double *gld, size_t n, double *dx,
                          double *g)
{
    size_t d = c->d, nT = c->nT, nI = c->nI;
    for (size_t i = 0; i < n; i++) {
        double *dout = c->dout + i * 2 * nT;
        for (size_t k = 0; k < nT; k++) {
            size_t j = c->idxT[k];
            double sg = c->sig[i * nT + k], s = sg + SCALE_EPS;
            double dyj = dy[i * d + j];
            double ds = dyj * x[i * d + j] + gld[i] / s;
            dout[k] = dyj;                          /* shift */
            dout[nT + k] = ds * sg * (1.0 - sg);    /* raw scale */
            dx[i * d + j] = dyj * s;
        }
    }
    s_net_backward(c, p, n, g);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < nI; k++) {
            size_t j = c->idxI[k];
            dx[i * d + j] = dy[i * d + j] + c->dxI[i * nI + k];
        }
}

/* ======================================================================
 * BatchNorm
 * ==================================================================== */

size_t ns_bnorm_n_params(size_t d) { return 2 * d; }

int ns_bnorm_init(ns_bnorm_t *b, size_t d)
{
    memset(b, 0, sizeof *b);
    b->d = d;
    b->rmean = calloc(d, sizeof(double));
    b->rvar = calloc(d, sizeof(double));
    b->mean = calloc(d, sizeof(double));
    b->var = calloc(d, sizeof(double));
    b->w = calloc(d, sizeof(double));
    b->std = calloc(d, sizeof(double));
    b->acc = calloc(3 * d, sizeof(double));
    if (!b->rmean || !b->rvar || !b->mean || !b->var || !b->w || !b->std || !b->acc) {
        ns_bnorm_free(b);
        return NS_ERR_NOMEM;
    }
    return NS_OK;
}

void ns_bnorm_free(ns_bnorm_t *b)
{
    free(b->rmean);
    free(b->rvar);
    free(b->mean);
    free(b->var);
    free(b->xhat);
    free(b->w);
    free(b->std);
    free(b->acc);
    memset(b, 0, sizeof *b);
}

int ns_bnorm_reserve(ns_bnorm_t *b, size_t cap)
{
    if (cap <= b->cap)
        return NS_OK;
    if (s_realloc(&b->xhat, cap * b->d))
        return NS_ERR_NOMEM;
    b->cap = cap;
    return NS_OK;
}

void ns_bnorm_init_params(size_t d, double *p)
{
    double v0 = ns_softplus_inv(1.0 - BN_W_EPS);
    for (size_t j = 0; j < d; j++) {
        p[j] = v0;
        p[d + j] = 0.0;
    }
}

NS_SIMD void ns_bnorm_forward_train(ns_bnorm_t *b, const double *p, const double *x, size_t n,
                            double *y, double *logdet, int update)
{
    size_t d = b->d;
    const double *v = p, *beta = p + d;
    /* two-pass mean and unbiased variance */
    memset(b->mean, 0, d * sizeof(double));
    memset(b->var, 0, d * sizeof(double));
    s_colsum_add(x, n, d, b->mean);
    for (size_t j = 0; j < d; j++)
        b->mean[j] /= (double)n;
    s_coldot_add(x, b->mean, x, b->mean, n, d, b->var);
    double ld = 0.0, *inv = b->acc; /* acc is free until backward */
    for (size_t j = 0; j < d; j++) {
        b->var[j] /= (double)(n - 1);
        b->std[j] = sqrt(b->var[j] + NS_BN_EPS);
        inv[j] = 1.0 / b->std[j];
        b->w[j] = ns_softplus(v[j]) + BN_W_EPS;
        ld += log(b->w[j]) - log(b->std[j]);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++) {
            double xh = (x[i * d + j] - b->mean[j]) * inv[j];
            b->xhat[i * d + j] = xh;
            y[i * d + j] = b->w[j] * xh + beta[j];
        }
        logdet[i] += ld;
    }
    if (update)
        for (size_t j = 0; j < d; j++) {
            b->rmean[j] = (1.0 - NS_BN_MOMENTUM) * b->rmean[j] + NS_BN_MOMENTUM * b->mean[j];
            b->rvar[j] = (1.0 - NS_BN_MOMENTUM) * b->rvar[j] + NS_BN_MOMENTUM * b->var[j];
        }
}

void ns_bnorm_forward_eval(ns_bnorm_t *b, const double *p, const double *x, size_t n,
                           double *y, double *logdet)
{
    size_t d = b->d;
    const double *v = p, *beta = p + d;
    double ld = 0.0;
    for (size_t j = 0; j < d; j++) {
        b->std[j] = sqrt(b->rvar[j] + NS_BN_EPS);
        b->w[j] = ns_softplus(v[j]) + BN_W_EPS;
        ld += log(b->w[j]) - log(b->std[j]);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            y[i * d + j] = b->w[j] * (x[i * d + j] - b->rmean[j]) / b->std[j] + beta[j];
        logdet[i] += ld;
    }
}

void ns_bnorm_inverse(ns_bnorm_t *b, const double *p, const double *y, size_t n,
                      double *x, double *logdet)
{
    size_t d = b->d;
    const double *v = p, *beta = p + d;
    double ld = 0.0;
    for (size_t j = 0; j < d; j++) {
        b->std[j] = sqrt(b->rvar[j] + NS_BN_EPS);
        b->w[j] = ns_softplus(v[j]) + BN_W_EPS;
        ld += log(b->w[j]) - log(b->std[j]);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = b->std[j] * (y[i * d + j] - beta[j]) / b->w[j] + b->rmean[j];
        logdet[i] -= ld;
    }
}

NS_SIMD void ns_bnorm_backward(ns_bnorm_t *b, const double *p, const double *x, const double *dy,
                       const double *gld, size_t n, double *dx, double *g)
{
    size_t d = b->d;
    const double *v = p;
    double *gv = g, *gbeta = g + d;
    double G = 0.0;
    for (size_t i = 0; i < n; i++)
        G += gld[i];
    double *sdx = b->acc, *sdxx = b->acc + d; /* sum dxhat, sum dxhat*(x-mu) */
    double *ws = b->acc + 2 * d;              /* w / std */
    memset(b->acc, 0, 2 * d * sizeof(double));
    s_colsum_add(dy, n, d, sdx);                               /* sum dy (times w below) */
    s_coldot_add(dy, NULL, b->xhat, NULL, n, d, sdxx);         /* sum dy xhat */
    for (size_t j = 0; j < d; j++) {
        gbeta[j] += sdx[j];
        /* sum dxhat = w sum dy; sum dxhat (x - mu) = w std sum dy xhat */
        double sg = ns_sigmoid(v[j]);
        gv[j] += (sdxx[j] + G / b->w[j]) * sg;
        sdx[j] *= b->w[j];
        sdxx[j] *= b->w[j] * b->std[j];
        double ve = b->var[j] + NS_BN_EPS;
        /* dLoss/dvar, then reuse the slots: sdxx <- 2 dvar/(n-1), sdx <- dmu/n */
        double dvar = -0.5 * sdxx[j] / (ve * b->std[j]) - 0.5 * G / ve;
        sdxx[j] = 2.0 * dvar / (double)(n - 1);
        sdx[j] = -sdx[j] / b->std[j] / (double)n;
        ws[j] = b->w[j] / b->std[j];
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            dx[i * d + j] = dy[i * d + j] * ws[j] + sdxx[j] * (x[i * d + j] - b->mean[j]) + sdx[j];
}
