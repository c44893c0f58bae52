/*
 * flow_f32.h - float32 kernels for the flow's inverse pass (internal).
 *
 * Why: a pool population pushes ~30-40 latent draws through the inverse
 * flow for every accepted point (docs/algorithm.md §2.6: ~97 % are rejected), and at
 * d' >= 8 that pass is about half of the sampler's time outside the
 * likelihood. In float32 the matrix products run on twice as many SIMD
 * lanes (1.3x at d' = 2, 1.9x at d' = 8, 2.3x at d' = 32). The proposal density is then the push-forward of the float32 map,
 * with the log-determinant computed by the same float32 map (accumulated in
 * double), exactly as nessai's float32 flows do; training, gradients, the
 * stored weights and every other pass stay float64.
 *
 * The float32 state mirrors the float64 flow and is rebuilt from it
 * whenever the parameters or running statistics change (flow_f32.c holds
 * the mirror and ns_flow_inverse_f32 of flow.h, built on these kernels).
 */
#ifndef NS_FLOW_F32_H
#define NS_FLOW_F32_H

#include <stddef.h>

/* Network shape of one coupling layer (mirrors ns_coupling_t). */
typedef struct ns_f32_coupling {
    size_t d, nI, nT, H, nl;
    int net;
    const size_t *idxI, *idxT;
} ns_f32_coupling_t;

/* Scratch for one coupling evaluation on up to cap rows. */
typedef struct ns_f32_work {
    size_t cap, H, nI, nT;
    float *xI, *h, *t, *u, *out; /* cap*nI, cap*H x3, cap*2nT */
} ns_f32_work_t;

int ns_f32_work_init(ns_f32_work_t *w, size_t cap, size_t H, size_t nI, size_t nT);
void ns_f32_work_free(ns_f32_work_t *w);

/* Inverse affine coupling in place on a (n x d floats); logdet -= sum log s.
 * p: the coupling's parameters in float32, same layout as the float64 slice. */
void ns_f32_coupling_inverse(const ns_f32_coupling_t *c, const float *p, float *a, size_t n,
                             double *logdet, ns_f32_work_t *w);

/* Y (n x out) = X (n x in) W^T + b, W row-major out x in (the inverse LU
 * layer uses it with W = (L U)^-1 and b = -(L U)^-1 bias). */
void ns_f32_linear(const float *X, size_t n, size_t in, const float *W, const float *b,
                   size_t out, float *Y);

#endif
