/*
 * flow.h - the RealNVP normalising flow of docs/algorithm.md §4.1-§4.2, float64.
 *
 * Direction: data x' (prime space) -> latent z is "forward". A flow is
 * n_blocks repetitions of [random permutation, LU linear, affine coupling,
 * BatchNorm] (the permutation/LU pair depends on linear_transform, the
 * BatchNorm on batch_norm). All parameters sit in one flat vector
 * (ns_flow_params) so that the optimiser, gradient clipping, best-state
 * copies and the weights file treat them uniformly.
 *
 * Mode: training-mode calls (ns_flow_loss_grad) use batch statistics in the
 * BatchNorm layers and update their running statistics; every other call is
 * eval mode (running statistics). Eval calls process any n in chunks of the
 * row capacity, so they never allocate; ns_flow_reserve grows it.
 *
 * A flow is single-threaded: one caller at a time (OpenBLAS may use
 * threads inside a matrix product, see ns_flow_set_threads).
 */
#ifndef NS_FLOW_H
#define NS_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include "nessai/rng.h"
#include "nessai/serial.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { NS_NET_RESNET = 0, NS_NET_MLP = 1 };
enum { NS_FLOW_LINEAR_NONE = 0, NS_FLOW_LINEAR_PERMUTATION = 1, NS_FLOW_LINEAR_LU = 2 };

typedef struct ns_flow_config {
    size_t dim;          /* d' >= 2: number of prime parameters */
    size_t n_blocks;     /* coupling transforms (nessai n_blocks, default 4) */
    size_t n_layers;     /* residual blocks / hidden layers per network (2) */
    size_t n_neurons;    /* hidden width; 0 = 2 * dim */
    int net;             /* NS_NET_RESNET (0, default) or NS_NET_MLP (1) */
    int linear;          /* NS_FLOW_LINEAR_* (default LU) */
    int batch_norm;      /* BatchNorm between blocks (default 1) */
} ns_flow_config_t;

/* nessai's defaults for dimension dim. */
ns_flow_config_t ns_flow_config_default(size_t dim);

typedef struct ns_flow ns_flow_t;

/* Build a flow with fresh random permutations and initial weights drawn
 * from rng. Caller owns the return value; NULL on a bad config or no memory. */
ns_flow_t *ns_flow_new(const ns_flow_config_t *cfg, ns_rng_t *rng);
void ns_flow_destroy(ns_flow_t **self_p);

const ns_flow_config_t *ns_flow_config(const ns_flow_t *self);
size_t ns_flow_dim(const ns_flow_t *self);
size_t ns_flow_n_params(const ns_flow_t *self);
/* The flat parameter and gradient vectors (n_params each). After writing
 * parameters directly call ns_flow_params_changed. */
double *ns_flow_params(ns_flow_t *self);
double *ns_flow_grad(ns_flow_t *self);
void ns_flow_params_changed(ns_flow_t *self);

/* BatchNorm running statistics, packed: for each BatchNorm layer its mean
 * then its variance (2*dim each). ns_flow_n_buffers returns the length. */
size_t ns_flow_n_buffers(const ns_flow_t *self);
void ns_flow_get_buffers(const ns_flow_t *self, double *out);
void ns_flow_set_buffers(ns_flow_t *self, const double *in);

/* Grow the row capacity (allocates; not for hot paths). */
int ns_flow_reserve(ns_flow_t *self, size_t rows);
size_t ns_flow_capacity(const ns_flow_t *self);

/* Eval mode, any n. z (n x d) and logdet (n) = log|det dz/dx'|. */
int ns_flow_forward(ns_flow_t *self, const double *x, size_t n, double *z, double *logdet);
/* Eval mode, any n. x (n x d) and logdet (n) = log|det dx'/dz|. */
int ns_flow_inverse(ns_flow_t *self, const double *z, size_t n, double *x, double *logdet);
/* As ns_flow_inverse with float32 matrix products and activations (the
 * log-det is accumulated in double): about twice as fast, relative error
 * ~1e-6. Used for pool populations (flow_f32.h says why). NS_OK or
 * NS_ERR_NOMEM (the float32 mirror is allocated on first use). */
int ns_flow_inverse_f32(ns_flow_t *self, const double *z, size_t n, double *x, double *logdet);
/* Eval mode: log q(x') = log N(z; 0, I) + log|det dz/dx'|. */
int ns_flow_log_prob(ns_flow_t *self, const double *x, size_t n, double *logq);
/* log N(z; 0, I) of one row of length d. */
double ns_flow_log_normal(const double *z, size_t d);

/* Training mode on one batch (2 <= n <= capacity when batch_norm, else 1 <=
 * n): loss = -mean log q(x'); the gradient is ADDED to ns_flow_grad (zero it
 * first, ns_flow_zero_grad). update_running moves BatchNorm running
 * statistics. Returns the loss. */
double ns_flow_loss_grad(ns_flow_t *self, const double *x, size_t n, int update_running);
void ns_flow_zero_grad(ns_flow_t *self);
/* The same with the weighted loss -sum_i w_i log q(x'_i) / sum_i w_i
 * (weights >= 0, positive sum; w NULL = ns_flow_loss_grad). */
double ns_flow_loss_grad_weighted(ns_flow_t *self, const double *x, const double *w, size_t n,
                                  int update_running);
/* Compute ns_flow_loss_grad in float32 (on = 1) or float64 (on = 0, the
 * state after ns_flow_new). In float32 the passes run on float copies of
 * the parameters and the batch, as PyTorch's default float32 flows do; the
 * parameters, their gradients (accumulated in double), the optimiser, the
 * running statistics and every eval-mode pass stay float64. NS_OK or
 * NS_ERR_NOMEM (the float32 layers are allocated here). */
int ns_flow_set_train_f32(ns_flow_t *self, int on);
int ns_flow_train_f32(const ns_flow_t *self);
/* Training-mode loss only (no gradient, no running-statistics update). */
double ns_flow_loss_train(ns_flow_t *self, const double *x, size_t n);
/* Eval-mode loss -mean log q over any n (validation). */
double ns_flow_loss_eval(ns_flow_t *self, const double *x, size_t n);

/* Resets of docs/algorithm.md §2.4. Weights: every coupling linear re-drawn with the
 * default init (the near-zero layers included), BatchNorm w = 1, beta = 0,
 * running mean 0, running var 1; LU and permutations unchanged.
 * Permutations: new random permutations, LU back to identity.
 * Full: a fresh flow as from ns_flow_new (new permutations, initial weights,
 * running var 0). */
void ns_flow_reset_weights(ns_flow_t *self, ns_rng_t *rng);
void ns_flow_reset_permutations(ns_flow_t *self, ns_rng_t *rng);
void ns_flow_reset_full(ns_flow_t *self, ns_rng_t *rng);

/* Permutation of block b (dim entries) and mask (dim entries, +1/-1). */
const size_t *ns_flow_permutation(const ns_flow_t *self, size_t b);
const int8_t *ns_flow_mask(const ns_flow_t *self, size_t b);

/* Serialise config, permutations, masks, parameters and running statistics
 * (section "FLOW", docs/flow.md). Load requires an identical config. */
void ns_flow_save(const ns_flow_t *self, ns_buf_t *b);
int ns_flow_load(ns_flow_t *self, ns_buf_t *b);
/* An exact copy of src (config, permutations, masks, parameters, running
 * statistics) in *out; draws from no generator. */
int ns_flow_copy(const ns_flow_t *src, ns_flow_t **out);
/* Read only the config from a saved flow section, then rewind. */
int ns_flow_peek_config(ns_buf_t *b, ns_flow_config_t *cfg);

/* Training threads for the matrix products (openblas_set_num_threads). */
void ns_flow_set_threads(int threads);
/* The OpenBLAS kernel set in use (e.g. "Haswell", "Cooperlake"): results
 * are reproducible bit for bit only with the same one (docs/flow.md). */
const char *ns_flow_blas_core(void);

#ifdef __cplusplus
}
#endif
#endif
