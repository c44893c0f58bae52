/*
 * flow_layers_tmpl.c - LU linear, affine coupling and BatchNorm for one
 * floating-point type: forward, inverse and hand-written backward passes
 * (docs/algorithm.md §4.2). Included twice by flow_layers.c with NS_R, NS_T, NS_F
 * (flow_layers_tmpl.h) and
 *   NS_K(x)        the constant x in NS_R,
 *   NS_GEMM/NS_TRSM  cblas_dgemm/cblas_dtrsm or cblas_sgemm/cblas_strsm,
 *   NS_LOG_CHUNK   factors of s multiplied before one log (no underflow).
 * <tgmath.h> picks log/exp/sqrt for NS_R, so the double instance computes
 * exactly what a plain double implementation would.
 */

static inline NS_R NS_F(s_softplus)(NS_R x)
{
    return (x > 0 ? x : NS_K(0.0)) + log1p(exp(-fabs(x)));
}

static inline NS_R NS_F(s_sigmoid)(NS_R x)
{
    /* branch-free (signs are random: a branch mispredicts half the time) */
    NS_R e = exp(-fabs(x)), r = NS_K(1.0) / (NS_K(1.0) + e);
    return x >= 0 ? r : e * r;
}

/* ---- permutation ---- */

void NS_F(ns_perm_forward)(const size_t *perm, size_t d, const NS_R *x, size_t n, NS_R *y)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            y[i * d + j] = x[i * d + perm[j]];
}

void NS_F(ns_perm_inverse)(const size_t *perm, size_t d, const NS_R *y, size_t n, NS_R *x)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + perm[j]] = y[i * d + j];
}

/* Y (n x out) = X (n x in) W^T + b, W row-major out x in. */
NS_SIMD static void NS_F(s_linear)(const NS_R *X, size_t n, size_t in, const NS_R *W,
                     const NS_R *b, size_t out, NS_R *Y)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < out; k++)
            Y[i * out + k] = b[k];
    NS_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)in,
                NS_K(1.0), X, (int)in, W, (int)in, NS_K(1.0), Y, (int)out);
}

/* Y += X W^T (no bias). */
static void NS_F(s_linear_acc)(const NS_R *X, size_t n, size_t in, const NS_R *W,
                         size_t out, NS_R *Y)
{
    NS_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)in,
                NS_K(1.0), X, (int)in, W, (int)in, NS_K(1.0), Y, (int)out);
}

/* g[k] += sum_i A[i, k] (n x m row-major). Each column is summed over the
 * rows in order; blocks of NS_COLBLK columns (two 256-bit vectors) keep the
 * partial sums in registers (a row-by-row update of g would be bound by
 * store-to-load forwarding on g). */
#define NS_COLBLK (64 / sizeof(NS_R))
NS_SIMD static void NS_F(s_colsum_add)(const NS_R *A, size_t n, size_t m, NS_R *g)
{
    size_t k0 = 0;
    for (; k0 + NS_COLBLK <= m; k0 += NS_COLBLK) {
        NS_R a[NS_COLBLK] = {0};
        for (size_t i = 0; i < n; i++) {
            const NS_R *r = A + i * m + k0;
            for (size_t c = 0; c < NS_COLBLK; c++)
                a[c] += r[c];
        }
        for (size_t c = 0; c < NS_COLBLK; c++)
            g[k0 + c] += a[c];
    }
    for (; k0 + 4 <= m; k0 += 4) {
        NS_R a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (size_t i = 0; i < n; i++) {
            const NS_R *r = A + i * m + k0;
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
        NS_R a = 0;
        for (size_t i = 0; i < n; i++)
            a += A[i * m + k0];
        g[k0] += a;
    }
}

/* g[k] += sum_i (A[i, k] - mu[k]) * (B[i, k] - nu[k]) with the same column
 * blocking (B = A, nu = mu gives squared deviations; mu = nu = 0 a dot). */
NS_SIMD static void NS_F(s_coldot_add)(const NS_R *A, const NS_R *mu, const NS_R *B,
                                 const NS_R *nu, size_t n, size_t m, NS_R *g)
{
    size_t k0 = 0;
    for (; k0 + 4 <= m; k0 += 4) {
        NS_R a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        NS_R m0 = mu ? mu[k0] : 0, m1 = mu ? mu[k0 + 1] : 0, m2 = mu ? mu[k0 + 2] : 0,
               m3 = mu ? mu[k0 + 3] : 0;
        NS_R n0 = nu ? nu[k0] : 0, n1 = nu ? nu[k0 + 1] : 0, n2 = nu ? nu[k0 + 2] : 0,
               n3 = nu ? nu[k0 + 3] : 0;
        for (size_t i = 0; i < n; i++) {
            const NS_R *r = A + i * m + k0, *q = B + i * m + k0;
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
        NS_R a = 0, mk = mu ? mu[k0] : 0, nk = nu ? nu[k0] : 0;
        for (size_t i = 0; i < n; i++)
            a += (A[i * m + k0] - mk) * (B[i * m + k0] - nk);
        g[k0] += a;
    }
}

/* Backward of a linear layer: gW += dY^T X, gb += colsum dY and, when dX
 * is given, dX = dY W. */
NS_SIMD static void NS_F(s_linear_back)(const NS_R *X, const NS_R *dY, size_t n, size_t in,
                          const NS_R *W, size_t out, NS_R *gW, NS_R *gb,
                          NS_R *dX)
{
    NS_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)n,
                NS_K(1.0), dY, (int)out, X, (int)in, NS_K(1.0), gW, (int)in);
    NS_F(s_colsum_add)(dY, n, out, gb);
    if (dX)
        NS_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)in, (int)out,
                    NS_K(1.0), dY, (int)out, W, (int)in, NS_K(0.0), dX, (int)in);
}

NS_SIMD static void NS_F(s_relu)(const NS_R *x, size_t m, NS_R *y)
{
    for (size_t k = 0; k < m; k++)
        y[k] = x[k] > 0 ? x[k] : NS_K(0.0);
}

/* d *= 1[x > 0] */
NS_SIMD static void NS_F(s_relu_mask)(const NS_R *x, size_t m, NS_R *dd)
{
    /* unconditional store so that the loop is if-converted and vectorised */
    for (size_t k = 0; k < m; k++)
        dd[k] = x[k] > 0 ? dd[k] : NS_K(0.0);
}

/* ======================================================================
 * LU linear
 * ==================================================================== */

int NS_F(ns_lu_init)(NS_T(ns_lu) *lu, size_t d)
{
    memset(lu, 0, sizeof *lu);
    lu->d = d;
    lu->L = calloc(d * d, sizeof(NS_R));
    lu->U = calloc(d * d, sizeof(NS_R));
    lu->W = calloc(d * d, sizeof(NS_R));
    lu->dW = calloc(d * d, sizeof(NS_R));
    lu->tmp = calloc(d * d, sizeof(NS_R));
    lu->diag = calloc(d, sizeof(NS_R));
    if (!lu->L || !lu->U || !lu->W || !lu->dW || !lu->tmp || !lu->diag) {
        NS_F(ns_lu_free)(lu);
        return NS_ERR_NOMEM;
    }
    return NS_OK;
}

void NS_F(ns_lu_free)(NS_T(ns_lu) *lu)
{
    free(lu->L);
    free(lu->U);
    free(lu->W);
    free(lu->dW);
    free(lu->tmp);
    free(lu->diag);
    memset(lu, 0, sizeof *lu);
}

void NS_F(ns_lu_prepare)(NS_T(ns_lu) *lu, const NS_R *p)
{
    size_t d = lu->d, ns = d * (d - 1) / 2;
    const NS_R *lo = p, *up = p + ns, *ud = p + 2 * ns;
    memset(lu->L, 0, d * d * sizeof(NS_R));
    memset(lu->U, 0, d * d * sizeof(NS_R));
    size_t kl = 0, ku = 0;
    lu->logdet = 0.0;
    for (size_t i = 0; i < d; i++) {
        for (size_t j = 0; j < i; j++)
            lu->L[i * d + j] = lo[kl++];
        lu->L[i * d + i] = NS_K(1.0);
        lu->diag[i] = NS_F(s_softplus)(ud[i]) + NS_K(LU_EPS);
        lu->U[i * d + i] = lu->diag[i];
        for (size_t j = i + 1; j < d; j++)
            lu->U[i * d + j] = up[ku++];
        lu->logdet += (double)log(lu->diag[i]);
    }
    NS_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)d, (int)d, NS_K(1.0),
                lu->L, (int)d, lu->U, (int)d, NS_K(0.0), lu->W, (int)d);
}

void NS_F(ns_lu_forward)(const NS_T(ns_lu) *lu, const NS_R *p, const NS_R *x, size_t n,
                   NS_R *y, double *logdet)
{
    size_t d = lu->d, ns = d * (d - 1) / 2;
    const NS_R *b = p + 2 * ns + d;
    NS_F(s_linear)(x, n, d, lu->W, b, d, y);
    for (size_t i = 0; i < n; i++)
        logdet[i] += lu->logdet;
}

void NS_F(ns_lu_inverse)(const NS_T(ns_lu) *lu, const NS_R *p, const NS_R *y, size_t n,
                   NS_R *x, double *logdet)
{
    size_t d = lu->d, ns = d * (d - 1) / 2;
    const NS_R *b = p + 2 * ns + d;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = y[i * d + j] - b[j];
    /* x W^T = y - b with W^T = U^T L^T: solve with L^T, then with U^T. */
    NS_TRSM(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasUnit, (int)n,
                (int)d, NS_K(1.0), lu->L, (int)d, x, (int)d);
    NS_TRSM(CblasRowMajor, CblasRight, CblasUpper, CblasTrans, CblasNonUnit, (int)n,
                (int)d, NS_K(1.0), lu->U, (int)d, x, (int)d);
    for (size_t i = 0; i < n; i++)
        logdet[i] -= lu->logdet;
}

void NS_F(ns_lu_backward)(NS_T(ns_lu) *lu, const NS_R *p, const NS_R *x, const NS_R *dy,
                    const double *gld, size_t n, NS_R *dx, NS_R *g)
{
    size_t d = lu->d, ns = d * (d - 1) / 2;
    NS_R *glo = g, *gup = g + ns, *gud = g + 2 * ns, *gb = g + 2 * ns + d;
    const NS_R *ud = p + 2 * ns;
    memset(lu->dW, 0, d * d * sizeof(NS_R));
    NS_F(s_linear_back)(x, dy, n, d, lu->W, d, lu->dW, gb, dx);
    double gsum = 0.0;
    for (size_t i = 0; i < n; i++)
        gsum += gld[i];
    /* dL = dW U^T (strict lower part) */
    NS_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)d, NS_K(1.0),
                lu->dW, (int)d, lu->U, (int)d, NS_K(0.0), lu->tmp, (int)d);
    size_t k = 0;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < i; j++)
            glo[k++] += lu->tmp[i * d + j];
    /* dU = L^T dW (upper part incl. diagonal) */
    NS_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)d, NS_K(1.0),
                lu->L, (int)d, lu->dW, (int)d, NS_K(0.0), lu->tmp, (int)d);
    k = 0;
    for (size_t i = 0; i < d; i++) {
        for (size_t j = i + 1; j < d; j++)
            gup[k++] += lu->tmp[i * d + j];
        NS_R dd = lu->tmp[i * d + i] + (NS_R)gsum / lu->diag[i];
        gud[i] += dd * NS_F(s_sigmoid)(ud[i]);
    }
}

/* ======================================================================
 * Affine coupling
 * ==================================================================== */

int NS_F(ns_coupling_init)(NS_T(ns_coupling) *c, size_t d, const int8_t *mask, size_t H,
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
        NS_F(ns_coupling_free)(c);
        return NS_ERR_NOMEM;
    }
    for (size_t j = 0; j < d; j++) {
        if (mask[j] > 0)
            c->idxT[c->nT++] = j;
        else
            c->idxI[c->nI++] = j;
    }
    if (c->nT == 0 || c->nI == 0) {
        NS_F(ns_coupling_free)(c);
        return NS_ERR_INVAL;
    }
    return NS_OK;
}

void NS_F(ns_coupling_free)(NS_T(ns_coupling) *c)
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

static int NS_F(s_realloc)(NS_R **p, size_t n)
{
    NS_R *q = realloc(*p, (n ? n : 1) * sizeof(NS_R));
    if (!q)
        return NS_ERR_NOMEM;
    *p = q;
    return NS_OK;
}

int NS_F(ns_coupling_reserve)(NS_T(ns_coupling) *c, size_t cap)
{
    if (cap <= c->cap)
        return NS_OK;
    size_t H = c->H, nh = c->net == NS_NET_RESNET ? c->nl + 1 : c->nl;
    if (NS_F(s_realloc)(&c->xI, cap * c->nI) || NS_F(s_realloc)(&c->h, nh * cap * H) ||
        NS_F(s_realloc)(&c->u, (c->nl ? c->nl : 1) * cap * H) ||
        NS_F(s_realloc)(&c->out, cap * 2 * c->nT) || NS_F(s_realloc)(&c->sig, cap * c->nT) ||
        NS_F(s_realloc)(&c->dh, cap * H) || NS_F(s_realloc)(&c->da, cap * H) ||
        NS_F(s_realloc)(&c->act, cap * H) || NS_F(s_realloc)(&c->dout, cap * 2 * c->nT) ||
        NS_F(s_realloc)(&c->dxI, cap * c->nI))
        return NS_ERR_NOMEM;
    c->cap = cap;
    return NS_OK;
}

size_t NS_F(ns_coupling_n_params)(const NS_T(ns_coupling) *c)
{
    size_t H = c->H, nout = 2 * c->nT;
    size_t np = H * c->nI + H + nout * H + nout;
    if (c->net == NS_NET_RESNET)
        np += c->nl * 2 * (H * H + H);
    else
        np += (c->nl - 1) * (H * H + H);
    return np;
}

/* Network: xI (n x nI) -> out (n x 2nT), caching what backward needs. */
NS_SIMD static void NS_F(s_net_forward)(NS_T(ns_coupling) *c, const NS_R *p, size_t n)
{
    size_t H = c->H, nI = c->nI, nout = 2 * c->nT, m = n * H;
    const NS_R *W0 = p, *b0 = p + H * nI;
    p += H * nI + H;
    if (c->net == NS_NET_RESNET) {
        NS_R *h = c->h;
        NS_F(s_linear)(c->xI, n, nI, W0, b0, H, h);
        for (size_t k = 0; k < c->nl; k++) {
            const NS_R *W1 = p, *b1 = p + H * H, *W2 = p + H * H + H,
                         *b2 = p + 2 * H * H + H;
            p += 2 * (H * H + H);
            NS_R *hk = h + k * c->cap * H, *hn = hk + c->cap * H;
            NS_R *uk = c->u + k * c->cap * H;
            NS_F(s_relu)(hk, m, c->act);
            NS_F(s_linear)(c->act, n, H, W1, b1, H, uk);
            NS_F(s_relu)(uk, m, c->act);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < H; j++)
                    hn[i * H + j] = hk[i * H + j] + b2[j];
            NS_F(s_linear_acc)(c->act, n, H, W2, H, hn);
        }
        NS_F(s_linear)(h + c->nl * c->cap * H, n, H, p, p + nout * H, nout, c->out);
    } else {
        NS_F(s_linear)(c->xI, n, nI, W0, b0, H, c->h);
        for (size_t k = 1; k < c->nl; k++) {
            NS_F(s_relu)(c->h + (k - 1) * c->cap * H, m, c->act);
            NS_F(s_linear)(c->act, n, H, p, p + H * H, H, c->h + k * c->cap * H);
            p += H * H + H;
        }
        NS_F(s_relu)(c->h + (c->nl - 1) * c->cap * H, m, c->act);
        NS_F(s_linear)(c->act, n, H, p, p + nout * H, nout, c->out);
    }
}

/* Backward of the network from c->dout into c->dxI and g. */
NS_SIMD static void NS_F(s_net_backward)(NS_T(ns_coupling) *c, const NS_R *p, size_t n, NS_R *g)
{
    size_t H = c->H, nI = c->nI, nout = 2 * c->nT, m = n * H;
    size_t off_f = NS_F(ns_coupling_n_params)(c) - (nout * H + nout);
    const NS_R *Wf = p + off_f;
    NS_R *gWf = g + off_f, *gbf = g + off_f + nout * H;
    if (c->net == NS_NET_RESNET) {
        NS_R *h = c->h;
        NS_F(s_linear_back)(h + c->nl * c->cap * H, c->dout, n, H, Wf, nout, gWf, gbf, c->dh);
        for (size_t kk = c->nl; kk-- > 0;) {
            size_t off = H * nI + H + kk * 2 * (H * H + H);
            const NS_R *W1 = p + off, *W2 = p + off + H * H + H;
            NS_R *gW1 = g + off, *gb1 = g + off + H * H;
            NS_R *gW2 = g + off + H * H + H, *gb2 = g + off + 2 * H * H + H;
            NS_R *hk = h + kk * c->cap * H, *uk = c->u + kk * c->cap * H;
            NS_F(s_relu)(uk, m, c->act);
            NS_F(s_linear_back)(c->act, c->dh, n, H, W2, H, gW2, gb2, c->da);
            NS_F(s_relu_mask)(uk, m, c->da);
            NS_F(s_relu)(hk, m, c->act);
            NS_F(s_linear_back)(c->act, c->da, n, H, W1, H, gW1, gb1, c->act);
            NS_F(s_relu_mask)(hk, m, c->act);
            for (size_t q = 0; q < m; q++)
                c->dh[q] += c->act[q];
        }
    } else {
        NS_R *hl = c->h + (c->nl - 1) * c->cap * H;
        NS_F(s_relu)(hl, m, c->act);
        NS_F(s_linear_back)(c->act, c->dout, n, H, Wf, nout, gWf, gbf, c->dh);
        NS_F(s_relu_mask)(hl, m, c->dh);
        for (size_t k = c->nl - 1; k >= 1; k--) {
            size_t off = H * nI + H + (k - 1) * (H * H + H);
            NS_R *hp = c->h + (k - 1) * c->cap * H;
            NS_F(s_relu)(hp, m, c->act);
            NS_F(s_linear_back)(c->act, c->dh, n, H, p + off, H, g + off, g + off + H * H, c->da);
            NS_F(s_relu_mask)(hp, m, c->da);
            memcpy(c->dh, c->da, m * sizeof(NS_R));
        }
    }
    NS_F(s_linear_back)(c->xI, c->dh, n, nI, p, H, g, g + H * nI, c->dxI);
}

static void NS_F(s_gather_I)(NS_T(ns_coupling) *c, const NS_R *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < c->nI; k++)
            c->xI[i * c->nI + k] = x[i * c->d + c->idxI[k]];
}

/* y = x * s + t on the transformed dimensions (forward), or its inverse
 * x = (y - t) / s; the forward pass keeps the sigmoids for the backward
 * one. logdet gains sum ln s (forward) or loses it (inverse), summed as
 * logs of products of NS_LOG_CHUNK factors. */
static void NS_F(s_coupling_apply)(NS_T(ns_coupling) *c, const NS_R *p, const NS_R *in, size_t n,
                                   NS_R *out, double *logdet, int inverse)
{
    size_t d = c->d, nT = c->nT;
    NS_F(s_gather_I)(c, in, n);
    NS_F(s_net_forward)(c, p, n);
    if (out != in)
        memcpy(out, in, n * d * sizeof(NS_R));
    for (size_t i = 0; i < n; i++) {
        const NS_R *o = c->out + i * 2 * nT;
        double ld = 0.0;
        NS_R prod = NS_K(1.0);
        for (size_t k = 0; k < nT; k++) {
            NS_R sg = NS_F(s_sigmoid)(o[nT + k] + NS_K(2.0)), s = sg + NS_K(SCALE_EPS);
            size_t j = c->idxT[k];
            if (inverse) {
                out[i * d + j] = (in[i * d + j] - o[k]) / s;
            } else {
                c->sig[i * nT + k] = sg;
                out[i * d + j] = in[i * d + j] * s + o[k];
            }
            prod *= s;
            if ((k + 1) % NS_LOG_CHUNK == 0) {
                ld += (double)log(prod);
                prod = NS_K(1.0);
            }
        }
        if (inverse)
            logdet[i] -= ld + (double)log(prod);
        else
            logdet[i] += ld + (double)log(prod);
    }
}

void NS_F(ns_coupling_forward)(NS_T(ns_coupling) *c, const NS_R *p, const NS_R *x, size_t n,
                         NS_R *y, double *logdet)
{
    NS_F(s_coupling_apply)(c, p, x, n, y, logdet, 0);
}

void NS_F(ns_coupling_inverse)(NS_T(ns_coupling) *c, const NS_R *p, const NS_R *y, size_t n,
                         NS_R *x, double *logdet)
{
    NS_F(s_coupling_apply)(c, p, y, n, x, logdet, 1);
}

NS_SIMD void NS_F(ns_coupling_backward)(NS_T(ns_coupling) *c, const NS_R *p, const NS_R *x,
                          const NS_R *dy, const double *gld, size_t n, NS_R *dx,
                          NS_R *g)
{
    size_t d = c->d, nT = c->nT, nI = c->nI;
    for (size_t i = 0; i < n; i++) {
        NS_R *dout = c->dout + i * 2 * nT;
        for (size_t k = 0; k < nT; k++) {
            size_t j = c->idxT[k];
            NS_R sg = c->sig[i * nT + k], s = sg + NS_K(SCALE_EPS);
            NS_R dyj = dy[i * d + j];
            NS_R ds = dyj * x[i * d + j] + (NS_R)gld[i] / s;
            dout[k] = dyj;                          /* shift */
            dout[nT + k] = ds * sg * (NS_K(1.0) - sg);    /* raw scale */
            dx[i * d + j] = dyj * s;
        }
    }
    NS_F(s_net_backward)(c, p, n, g);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < nI; k++) {
            size_t j = c->idxI[k];
            dx[i * d + j] = dy[i * d + j] + c->dxI[i * nI + k];
        }
}

/* ======================================================================
 * BatchNorm
 * ==================================================================== */

int NS_F(ns_bnorm_init)(NS_T(ns_bnorm) *b, size_t d)
{
    memset(b, 0, sizeof *b);
    b->d = d;
    b->rmean = calloc(d, sizeof(NS_R));
    b->rvar = calloc(d, sizeof(NS_R));
    b->mean = calloc(d, sizeof(NS_R));
    b->var = calloc(d, sizeof(NS_R));
    b->w = calloc(d, sizeof(NS_R));
    b->std = calloc(d, sizeof(NS_R));
    b->acc = calloc(3 * d, sizeof(NS_R));
    if (!b->rmean || !b->rvar || !b->mean || !b->var || !b->w || !b->std || !b->acc) {
        NS_F(ns_bnorm_free)(b);
        return NS_ERR_NOMEM;
    }
    return NS_OK;
}

void NS_F(ns_bnorm_free)(NS_T(ns_bnorm) *b)
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

int NS_F(ns_bnorm_reserve)(NS_T(ns_bnorm) *b, size_t cap)
{
    if (cap <= b->cap)
        return NS_OK;
    if (NS_F(s_realloc)(&b->xhat, cap * b->d))
        return NS_ERR_NOMEM;
    b->cap = cap;
    return NS_OK;
}

NS_SIMD void NS_F(ns_bnorm_forward_train)(NS_T(ns_bnorm) *b, const NS_R *p, const NS_R *x, size_t n,
                            NS_R *y, double *logdet, int update)
{
    size_t d = b->d;
    const NS_R *v = p, *beta = p + d;
    /* two-pass mean and unbiased variance */
    memset(b->mean, 0, d * sizeof(NS_R));
    memset(b->var, 0, d * sizeof(NS_R));
    NS_F(s_colsum_add)(x, n, d, b->mean);
    for (size_t j = 0; j < d; j++)
        b->mean[j] /= (NS_R)n;
    NS_F(s_coldot_add)(x, b->mean, x, b->mean, n, d, b->var);
    double ld = 0.0;
    NS_R *inv = b->acc; /* acc is free until backward */
    for (size_t j = 0; j < d; j++) {
        b->var[j] /= (NS_R)(n - 1);
        b->std[j] = sqrt(b->var[j] + NS_K(NS_BN_EPS));
        inv[j] = NS_K(1.0) / b->std[j];
        b->w[j] = NS_F(s_softplus)(v[j]) + NS_K(BN_W_EPS);
        ld += (double)(log(b->w[j]) - log(b->std[j]));
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++) {
            NS_R xh = (x[i * d + j] - b->mean[j]) * inv[j];
            b->xhat[i * d + j] = xh;
            y[i * d + j] = b->w[j] * xh + beta[j];
        }
        logdet[i] += ld;
    }
    if (update)
        for (size_t j = 0; j < d; j++) {
            b->rmean[j] = (NS_K(1.0) - NS_K(NS_BN_MOMENTUM)) * b->rmean[j] + NS_K(NS_BN_MOMENTUM) * b->mean[j];
            b->rvar[j] = (NS_K(1.0) - NS_K(NS_BN_MOMENTUM)) * b->rvar[j] + NS_K(NS_BN_MOMENTUM) * b->var[j];
        }
}

void NS_F(ns_bnorm_forward_eval)(NS_T(ns_bnorm) *b, const NS_R *p, const NS_R *x, size_t n,
                           NS_R *y, double *logdet)
{
    size_t d = b->d;
    const NS_R *v = p, *beta = p + d;
    double ld = 0.0;
    for (size_t j = 0; j < d; j++) {
        b->std[j] = sqrt(b->rvar[j] + NS_K(NS_BN_EPS));
        b->w[j] = NS_F(s_softplus)(v[j]) + NS_K(BN_W_EPS);
        ld += (double)(log(b->w[j]) - log(b->std[j]));
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            y[i * d + j] = b->w[j] * (x[i * d + j] - b->rmean[j]) / b->std[j] + beta[j];
        logdet[i] += ld;
    }
}

void NS_F(ns_bnorm_inverse)(NS_T(ns_bnorm) *b, const NS_R *p, const NS_R *y, size_t n,
                      NS_R *x, double *logdet)
{
    size_t d = b->d;
    const NS_R *v = p, *beta = p + d;
    double ld = 0.0;
    for (size_t j = 0; j < d; j++) {
        b->std[j] = sqrt(b->rvar[j] + NS_K(NS_BN_EPS));
        b->w[j] = NS_F(s_softplus)(v[j]) + NS_K(BN_W_EPS);
        ld += (double)(log(b->w[j]) - log(b->std[j]));
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = b->std[j] * (y[i * d + j] - beta[j]) / b->w[j] + b->rmean[j];
        logdet[i] -= ld;
    }
}

NS_SIMD void NS_F(ns_bnorm_backward)(NS_T(ns_bnorm) *b, const NS_R *p, const NS_R *x, const NS_R *dy,
                       const double *gld, size_t n, NS_R *dx, NS_R *g)
{
    size_t d = b->d;
    const NS_R *v = p;
    NS_R *gv = g, *gbeta = g + d;
    double G = 0.0;
    for (size_t i = 0; i < n; i++)
        G += gld[i];
    NS_R *sdx = b->acc, *sdxx = b->acc + d; /* sum dxhat, sum dxhat*(x-mu) */
    NS_R *ws = b->acc + 2 * d;              /* w / std */
    memset(b->acc, 0, 2 * d * sizeof(NS_R));
    NS_F(s_colsum_add)(dy, n, d, sdx);                               /* sum dy (times w below) */
    NS_F(s_coldot_add)(dy, NULL, b->xhat, NULL, n, d, sdxx);         /* sum dy xhat */
    for (size_t j = 0; j < d; j++) {
        gbeta[j] += sdx[j];
        /* sum dxhat = w sum dy; sum dxhat (x - mu) = w std sum dy xhat */
        NS_R sg = NS_F(s_sigmoid)(v[j]);
        gv[j] += (sdxx[j] + (NS_R)G / b->w[j]) * sg;
        sdx[j] *= b->w[j];
        sdxx[j] *= b->w[j] * b->std[j];
        NS_R ve = b->var[j] + NS_K(NS_BN_EPS);
        /* dLoss/dvar, then reuse the slots: sdxx <- 2 dvar/(n-1), sdx <- dmu/n */
        NS_R dvar = -NS_K(0.5) * sdxx[j] / (ve * b->std[j]) - NS_K(0.5) * (NS_R)G / ve;
        sdxx[j] = NS_K(2.0) * dvar / (NS_R)(n - 1);
        sdx[j] = -sdx[j] / b->std[j] / (NS_R)n;
        ws[j] = b->w[j] / b->std[j];
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            dx[i * d + j] = dy[i * d + j] * ws[j] + sdxx[j] * (x[i * d + j] - b->mean[j]) + sdx[j];
}

/* the instance is complete: the next one defines its own parameters */
#undef NS_R
#undef NS_T
#undef NS_F
#undef NS_K
#undef NS_GEMM
#undef NS_TRSM
#undef NS_LOG_CHUNK
