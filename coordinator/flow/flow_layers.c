/* flow_layers.c - LU linear, affine coupling and BatchNorm: forward,
 * inverse and hand-written backward passes (docs/algorithm.md §4.2). */
#include "flow_layers.h"
#include "nessai/error.h"

#include <cblas.h>
#include <math.h>
#include <tgmath.h>
#include <stdlib.h>
#include <string.h>

#define LU_EPS 1e-3      /* diag(U) = softplus(u) + LU_EPS */
#define SCALE_EPS 1e-3   /* s = sigmoid(a + 2) + SCALE_EPS */
#define BN_W_EPS 1e-5    /* w = softplus(v) + BN_W_EPS */
/* sum log s as log of products of LOG_CHUNK factors: s > 1e-3, so a
 * product of 32 stays above 1e-96 (no underflow) and costs one log */
#define LOG_CHUNK 32
/* in float: s > 1e-3, a product of 8 stays above 1e-24 */
#define LOG_CHUNK_F32 8

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

/* ---- the layers in double, then in float (flow_layers_tmpl.c) ---- */
#define NS_R double
#define NS_T(n) n##_t
#define NS_F(n) n
#define NS_K(x) ((double)(x))
#define NS_GEMM cblas_dgemm
#define NS_TRSM cblas_dtrsm
#define NS_LOG_CHUNK LOG_CHUNK
#include "flow_layers_tmpl.c"

#define NS_R float
#define NS_T(n) n##_f32_t
#define NS_F(n) n##_f32
#define NS_K(x) ((float)(x))
#define NS_GEMM cblas_sgemm
#define NS_TRSM cblas_strsm
#define NS_LOG_CHUNK LOG_CHUNK_F32
#include "flow_layers_tmpl.c"

/* ---- double only: sizes and initialisation ---- */
size_t ns_lu_n_params(size_t d) { return d * d + d; }

size_t ns_bnorm_n_params(size_t d) { return 2 * d; }

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

void ns_bnorm_init_params(size_t d, double *p)
{
    double v0 = ns_softplus_inv(1.0 - BN_W_EPS);
    for (size_t j = 0; j < d; j++) {
        p[j] = v0;
        p[d + j] = 0.0;
    }
}

