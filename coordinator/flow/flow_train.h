/*
 * flow_train.h - AdamW with decoupled weight decay, global-norm gradient
 * clipping and the training procedure of docs/algorithm.md §4.3.
 */
#ifndef NS_FLOW_TRAIN_H
#define NS_FLOW_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "flow.h"
#include "nessai/rng.h"
#include "nessai/serial.h"

#ifdef __cplusplus
extern "C" {
#endif

/* AdamW: theta <- theta - lr*wd*theta, then the Adam step with bias
 * corrections (beta1 0.9, beta2 0.999, eps 1e-8). Moments and step count
 * persist across trainings until ns_adamw_reset. */
typedef struct ns_adamw {
    size_t n;              /* parameters */
    double *m, *v;         /* first and second moments (n each) */
    uint64_t step;         /* steps taken since the last reset */
    double lr, beta1, beta2, eps, weight_decay;
} ns_adamw_t;

/* Caller owns the return value; NULL on no memory. */
ns_adamw_t *ns_adamw_new(size_t n, double lr, double weight_decay);
void ns_adamw_destroy(ns_adamw_t **self_p);
/* Fresh moments, step 0 (the optimiser is "re-created"). */
void ns_adamw_reset(ns_adamw_t *self);
void ns_adamw_step(ns_adamw_t *self, double *theta, const double *grad);
/* Section "ADAM": step, hyper-parameters, m, v. Load needs the same n. */
void ns_adamw_save(const ns_adamw_t *self, ns_buf_t *b);
int ns_adamw_load(ns_adamw_t *self, ns_buf_t *b);

/* Scale grad so its L2 norm is at most max_norm (factor max_norm/(norm +
 * 1e-6) when below 1). Returns the norm before clipping. */
double ns_clip_grad_norm(double *grad, size_t n, double max_norm);

typedef struct ns_train_config {
    double lr;             /* 1e-3 */
    double weight_decay;   /* 0.01 */
    size_t batch_size;     /* 1000 */
    double val_size;       /* 0.1; 0 = no validation, keep the final state */
    size_t max_epochs;     /* 500 */
    size_t patience;       /* 20 */
    double clip_grad_norm; /* 5.0; <= 0 disables */
} ns_train_config_t;

ns_train_config_t ns_train_config_default(void);

/* What one training did (the caller logs it; numeric code never logs). */
typedef struct ns_train_stats {
    size_t n_input, n_rejected;  /* rows given, non-finite rows dropped */
    size_t n_train, n_val;       /* split sizes */
    size_t batch_size;           /* after the remainder adjustment */
    size_t epochs;               /* epochs run */
    size_t best_epoch;           /* epoch whose state was kept (0 = initial) */
    size_t skipped_steps;        /* batches with a non-finite loss or gradient, not applied */
    double best_val_loss;        /* at best_epoch (NAN without validation) */
    double final_train_loss;     /* mean batch loss of the last epoch */
    double time;                 /* wall seconds */
} ns_train_stats_t;

/* Train flow on n rows of x (n x dim, prime space) per docs/algorithm.md §4.3, using rng
 * for the split and the per-epoch shuffles. Polls ns_interrupt_pending()
 * between epochs: on an interrupt the flow, optimiser and rng are restored
 * to their state at entry and NS_ERR_INTERRUPTED is returned. loss_hist,
 * when not NULL, receives 2*max_epochs values (train, val per epoch).
 * Returns NS_OK, NS_ERR_INVAL (too few points, batch size < 2),
 * NS_ERR_NOMEM or NS_ERR_INTERRUPTED. */
int ns_flow_train(ns_flow_t *flow, ns_adamw_t *opt, const ns_train_config_t *cfg,
                  const double *x, size_t n, ns_rng_t *rng, ns_train_stats_t *stats,
                  double *loss_hist);

/* Observer of a training: called after every epoch (from 1) with the flow
 * in its state after that epoch's steps (before any restore; read it, do not
 * change it) and the epoch's mean training loss and validation loss (NAN
 * without validation). For tests and diagnostics. */
typedef void (*ns_train_epoch_fn)(void *ctx, size_t epoch, ns_flow_t *flow, double train_loss,
                                  double val_loss);
/* ns_flow_train calling on_epoch (may be NULL) after every epoch. */
int ns_flow_train_observed(ns_flow_t *flow, ns_adamw_t *opt, const ns_train_config_t *cfg,
                           const double *x, size_t n, ns_rng_t *rng, ns_train_stats_t *stats,
                           double *loss_hist, ns_train_epoch_fn on_epoch, void *ctx);

/* ns_flow_train_observed with row weights w (n, >= 0 and finite; NULL =
 * unweighted): rows and weights are shuffled and split together, a batch's
 * loss is -sum w log q / sum w over its rows (weights renormalised within
 * the batch) and the validation loss the same weighted mean over the
 * validation rows (docs/algorithm.md §12.4). */
int ns_flow_train_weighted(ns_flow_t *flow, ns_adamw_t *opt, const ns_train_config_t *cfg,
                           const double *x, const double *w, size_t n, ns_rng_t *rng,
                           ns_train_stats_t *stats, double *loss_hist, ns_train_epoch_fn on_epoch,
                           void *ctx);

/* The batch size rule of docs/algorithm.md §4.3 step 2; 0 if it falls below 2. */
size_t ns_train_adjust_batch(size_t n_train, size_t batch_size);

#ifdef __cplusplus
}
#endif
#endif
