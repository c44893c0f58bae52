/*
 * flow_layers.h - the layers of the RealNVP flow (docs/algorithm.md §4.2):
 * permutation and the three parametrised ones, LU linear, affine coupling,
 * flow BatchNorm. Internal to the flow library; the public surface is flow.h.
 *
 * Conventions shared by every layer:
 *  - data are row-major n x d buffers (double, or float for _f32); n never exceeds the row
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

/* ---- Layer types and functions in double (ns_lu_t, ns_lu_forward, ...)
 * and in float (ns_lu_f32_t, ns_lu_forward_f32, ...): flow_layers_tmpl.h.
 * The float32 set computes training passes in single precision (the
 * parameters and their gradients stay double in the flow, flow.h). */
#define NS_BN_EPS 1e-5
#define NS_BN_MOMENTUM 0.1

#define NS_R double
#define NS_T(n) n##_t
#define NS_F(n) n
#include "flow_layers_tmpl.h"

#define NS_R float
#define NS_T(n) n##_f32_t
#define NS_F(n) n##_f32
#include "flow_layers_tmpl.h"

/* Double-precision only: parameter initialisation. */
size_t ns_lu_n_params(size_t d);
/* Identity initialisation of an LU parameter slice. */
void ns_lu_identity(size_t d, double *p);
/* PyTorch-default init (U(-1/sqrt(fan_in), +)), the second linear of each
 * residual block U(-1e-3, 1e-3) unless all_default (weight reset, §2.4). */
void ns_coupling_init_params(const ns_coupling_t *c, double *p, ns_rng_t *rng,
                             int all_default);
size_t ns_bnorm_n_params(size_t d);
/* BatchNorm parameters w = 1, beta = 0. */
void ns_bnorm_init_params(size_t d, double *p);

#endif
