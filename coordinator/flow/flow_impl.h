/*
 * flow_impl.h - the flow's state and the functions its files share
 * (internal to the flow library; the public contract is flow.h).
 *
 *   flow.c         construction, layout, parameter vector, running
 *                  statistics, row capacity, OpenBLAS settings
 *   flow_eval.c    the float64 stage pass, eval-mode passes and losses
 *   flow_grad.c    training-mode loss and gradient, float64 and float32
 *   flow_f32.c     the float32 mirror and inverse pass of populations
 *   flow_reset.c   initial weights, permutations, the resets
 *   flow_serial.c  the "FLOW" section (save, load, peek)
 */
#ifndef NS_FLOW_IMPL_H
#define NS_FLOW_IMPL_H

#include "flow.h"
#include "flow_f32.h"
#include "flow_layers.h"

enum { ST_PERM, ST_LU, ST_COUP, ST_BN };

#define NS_LOG_2PI 1.8378770664093454836 /* log(2 pi) */

typedef struct {
    int kind;    /* ST_* */
    size_t blk;  /* block index */
} s_stage_t;

typedef struct {
    size_t *perm;     /* d: y[:, j] = x[:, perm[j]] */
    int8_t *mask;     /* d: +1 transformed, -1 passed through */
    ns_lu_t lu;
    ns_coupling_t cp;
    ns_bnorm_t bn;
    size_t off_lu, off_cp, off_bn;  /* offsets into theta */
} s_block_t;

typedef struct {
    ns_lu_f32_t lu;
    ns_coupling_f32_t cp;
    ns_bnorm_f32_t bn;
} s_block32_t;

struct ns_flow {
    ns_flow_config_t cfg;   /* effective config (n_neurons resolved) */
    size_t d;               /* dimension */
    size_t P;               /* number of parameters */
    double *theta, *grad;   /* P each */
    s_block_t *blk;         /* n_blocks */
    s_stage_t *st;          /* K stages in forward order */
    size_t K;
    size_t cap;             /* row capacity of the buffers below */
    double **buf;           /* K+1 stage outputs (buf[0] = input), cap*d each */
    double *ld, *gld;       /* cap */
    double *dA, *dB;        /* cap*d backward ping-pong */
    /* float32 mirror for ns_flow_inverse_f32 (flow_f32.h), rebuilt when dirty */
    int dirty32;            /* parameters or running statistics changed */
    size_t cap32;           /* rows of a32/t32/w32 */
    float *theta32;         /* P */
    float *Wi32;            /* n_blocks * d * d: (L U)^-1, computed in double */
    float *bi32;            /* n_blocks * d: -(L U)^-1 b */
    float *bn_scale, *bn_shift; /* n_blocks * d: x = scale * y + shift */
    double *lu_ld, *bn_ld;  /* n_blocks: forward log-dets */
    float *a32, *t32;       /* cap32 * d */
    ns_f32_work_t w32;
    /* float32 training passes (ns_flow_set_train_f32): layer mirrors with
     * their own caches, allocated on first use; parameters are converted
     * from theta before every batch and gradients added back into grad */
    int train32;
    s_block32_t *blk32;     /* n_blocks, NULL until first use */
    size_t tcap;            /* rows of the buffers below */
    float **tbuf;           /* K+1 stage outputs, tcap*d each */
    float *tdA, *tdB;       /* tcap*d backward ping-pong */
    float *ttheta, *tgrad;  /* P each */
};

/* The blocks have a permutation stage (linear transform permutation or LU)
 * and an LU stage (linear transform LU). */
static inline int ns_flow_has_perm(const ns_flow_t *f)
{
    return f->cfg.linear != NS_FLOW_LINEAR_NONE;
}
static inline int ns_flow_has_lu(const ns_flow_t *f)
{
    return f->cfg.linear == NS_FLOW_LINEAR_LU;
}

/* flow_eval.c. The float64 pass through every stage on the n <= cap rows
 * in buf[0]; train: 0 eval, 1 training mode without running-statistics
 * update, 2 training mode with it. Leaves z in buf[K], log-det in ld. */
void ns_flow_stage_forward(ns_flow_t *f, size_t n, int train);
/* flow_eval.c. -mean log q of the n rows left by ns_flow_stage_forward. */
double ns_flow_mean_nll(ns_flow_t *f, size_t n);

/* flow_grad.c. Allocate the float32 training mirror (its layers on first
 * use) for rows rows; NS_OK or NS_ERR_NOMEM. Free it (idempotent). */
int ns_flow_train32_reserve(ns_flow_t *f, size_t rows);
void ns_flow_train32_free(ns_flow_t *f);

/* flow_f32.c. Free the float32 inverse-pass mirror (idempotent). */
void ns_flow_inverse32_free(ns_flow_t *f);

/* flow_reset.c. Initial parameters (all_default: the near-zero residual
 * layers too drawn with the default init), drawn from rng in block order;
 * new random permutations (identity without a linear transform). */
void ns_flow_init_params(ns_flow_t *f, ns_rng_t *rng, int all_default);
void ns_flow_draw_permutations(ns_flow_t *f, ns_rng_t *rng);

#endif
