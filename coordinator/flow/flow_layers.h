/*
 * flow_layers.h - the three parametrised layers of the RealNVP flow
 * (SPEC.md §4.2): LU linear, affine coupling, flow BatchNorm. Internal to
 * the flow library; the public surface is flow.h.
 *
 * Conventions shared by every layer:
 *  - data are row-major n x d float64 buffers; n never exceeds the row
 *    capacity the layer was reserved for (ns_*_reserve);
 *  - parameters live in one flat vector owned by the flow: each layer gets
 *    a pointer p to its slice and, for backward, g to the matching slice of
 *    the gradient vector; backward ADDS into g (callers zero it);
 *  - forward adds the per-sample log|det J| to logdet[i] (never overwrites);
 *  - backward receives dy = dLoss/dy and gld[i] = dLoss/dlogdet_i and
 *    writes dx = dLoss/dx (dx may alias nothing else).
 * No function here allocates except _reserve and _init.
 */
#ifndef NS_FLOW_LAYERS_H
#define NS_FLOW_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "nessai/rng.h"
#include "flow.h"

/* Element-wise kernels get an AVX2 clone picked at run time (ifunc), so the
 * binary still runs on any x86-64; "avx2" without "fma" keeps a*b+c
 * uncontracted, so both clones round identically. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NS_SIMD __attribute__((target_clones("avx2", "default")))
#else
#define NS_SIMD
#endif

/* Numerically stable helpers (shared with the flow). */
double ns_softplus(double x);
double ns_sigmoid(double x);
/* Inverse of softplus: the v with softplus(v) = y (y > 0). */
double ns_softplus_inv(double y);

/* ---- LU linear: y = L U x + b (SPEC §4.2 item 2) ----------------------
 * Parameter slice: lower strict entries (d(d-1)/2, row-major i > j), upper
 * strict entries (d(d-1)/2, row-major i < j), raw diagonal u (d), bias b
 * (d); diag(U) = softplus(u) + 1e-3.  n_params = d*d + d. */
typedef struct ns_lu {
    size_t d;
    double *L, *U, *W;   /* d*d each, rebuilt by ns_lu_prepare (W = L U) */
    double *diag;        /* d: diag(U) */
    double *dW, *tmp;    /* d*d backward workspace */
    double logdet;       /* sum log diag(U), same for every sample */
} ns_lu_t;

size_t ns_lu_n_params(size_t d);
int ns_lu_init(ns_lu_t *lu, size_t d);
void ns_lu_free(ns_lu_t *lu);
/* Identity initialisation of the parameter slice. */
void ns_lu_identity(size_t d, double *p);
/* Rebuild L, U, W, diag and logdet from p: call after p changes. */
void ns_lu_prepare(ns_lu_t *lu, const double *p);
void ns_lu_forward(const ns_lu_t *lu, const double *p, const double *x, size_t n,
                   double *y, double *logdet);
void ns_lu_inverse(const ns_lu_t *lu, const double *p, const double *y, size_t n,
                   double *x, double *logdet);
void ns_lu_backward(ns_lu_t *lu, const double *p, const double *x, const double *dy,
                    const double *gld, size_t n, double *dx, double *g);

/* ---- Affine coupling with a residual or MLP network (item 3) ---------- */
typedef struct ns_coupling {
    size_t d, nI, nT;    /* dimension, pass-through and transformed counts */
    size_t H, nl;        /* hidden width, residual blocks (resnet) / hidden layers (mlp) */
    int net;             /* NS_NET_* */
    size_t *idxI, *idxT; /* feature indices of the two sets */
    size_t cap;          /* rows the caches hold */
    /* caches written by forward (for backward) */
    double *xI;          /* cap*nI */
    double *h;           /* resnet: (nl+1) states; mlp: nl pre-activations; each cap*H */
    double *u;           /* resnet: nl inner pre-activations, cap*H each */
    double *out;         /* cap*2nT network output [shift | raw scale] */
    double *sig;         /* cap*nT sigmoid(a + 2) */
    /* backward / scratch */
    double *dh, *da, *act; /* cap*H each */
    double *dout;        /* cap*2nT */
    double *dxI;         /* cap*nI */
} ns_coupling_t;

/* mask: d entries; m_j > 0 transformed, m_j <= 0 passed through. */
int ns_coupling_init(ns_coupling_t *c, size_t d, const int8_t *mask, size_t H,
                     size_t nl, int net);
void ns_coupling_free(ns_coupling_t *c);
int ns_coupling_reserve(ns_coupling_t *c, size_t cap);
size_t ns_coupling_n_params(const ns_coupling_t *c);
/* PyTorch-default init (U(-1/sqrt(fan_in), +)), the second linear of each
 * residual block U(-1e-3, 1e-3) unless all_default (weight reset, §2.4). */
void ns_coupling_init_params(const ns_coupling_t *c, double *p, ns_rng_t *rng,
                             int all_default);
void ns_coupling_forward(ns_coupling_t *c, const double *p, const double *x, size_t n,
                         double *y, double *logdet);
void ns_coupling_inverse(ns_coupling_t *c, const double *p, const double *y, size_t n,
                         double *x, double *logdet);
/* Uses the caches of the last forward call on the same x. */
void ns_coupling_backward(ns_coupling_t *c, const double *p, const double *x,
                          const double *dy, const double *gld, size_t n, double *dx,
                          double *g);

/* ---- Flow BatchNorm (item 4) ------------------------------------------
 * Parameter slice: raw weight v (d), bias beta (d); w = softplus(v)+1e-5. */
typedef struct ns_bnorm {
    size_t d, cap;
    double *rmean, *rvar;  /* d: running statistics (buffers, saved with the flow) */
    double *mean, *var;    /* d: statistics of the last training batch */
    double *xhat;          /* cap*d normalised input of the last training batch */
    double *w, *std;       /* d scratch */
    double *acc;           /* 3d scratch for backward sums */
} ns_bnorm_t;

#define NS_BN_EPS 1e-5
#define NS_BN_MOMENTUM 0.1

size_t ns_bnorm_n_params(size_t d);
int ns_bnorm_init(ns_bnorm_t *b, size_t d);
void ns_bnorm_free(ns_bnorm_t *b);
int ns_bnorm_reserve(ns_bnorm_t *b, size_t cap);
/* Parameters w = 1, beta = 0. */
void ns_bnorm_init_params(size_t d, double *p);
/* Training mode: batch mean and unbiased variance (n >= 2); when update is
 * set the running statistics move by momentum 0.1. */
void ns_bnorm_forward_train(ns_bnorm_t *b, const double *p, const double *x, size_t n,
                            double *y, double *logdet, int update);
/* Eval mode: running statistics. */
void ns_bnorm_forward_eval(ns_bnorm_t *b, const double *p, const double *x, size_t n,
                           double *y, double *logdet);
void ns_bnorm_inverse(ns_bnorm_t *b, const double *p, const double *y, size_t n,
                      double *x, double *logdet);
/* Backward of the training-mode forward last run on x. */
void ns_bnorm_backward(ns_bnorm_t *b, const double *p, const double *x, const double *dy,
                       const double *gld, size_t n, double *dx, double *g);

#endif
