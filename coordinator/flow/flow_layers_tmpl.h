/*
 * flow_layers_tmpl.h - the layer types and functions of flow_layers.h for
 * one floating-point type. Included twice by flow_layers.h, with
 *   NS_R      the element type (double, float),
 *   NS_T(n)   the type name for n (ns_lu -> ns_lu_t, ns_lu_f32_t),
 *   NS_F(n)   the function name for n (ns_lu_forward -> ns_lu_forward,
 *             ns_lu_forward_f32).
 * Per-sample log-determinants and their gradients (logdet, gld) are double
 * in both precisions: they are sums over layers, accumulated in double.
 * No include guard on purpose.
 */

/* ---- Random permutation (docs/algorithm.md §4.2 item 1): no parameters, log-det 0 ----
 * Forward: y[i, j] = x[i, perm[j]]. Inverse, and the backward of forward
 * (dx from dy): x[i, perm[j]] = y[i, j]. x and y must not alias. */
void NS_F(ns_perm_forward)(const size_t *perm, size_t d, const NS_R *x, size_t n, NS_R *y);
void NS_F(ns_perm_inverse)(const size_t *perm, size_t d, const NS_R *y, size_t n, NS_R *x);

/* ---- LU linear: y = L U x + b (docs/algorithm.md §4.2 item 2) ----------------------
 * Parameter slice: lower strict entries (d(d-1)/2, row-major i > j), upper
 * strict entries (d(d-1)/2, row-major i < j), raw diagonal u (d), bias b
 * (d); diag(U) = softplus(u) + 1e-3.  n_params = d*d + d. */
typedef struct NS_F(ns_lu) {
    size_t d;
    NS_R *L, *U, *W;     /* d*d each, rebuilt by ns_lu_prepare (W = L U) */
    NS_R *diag;          /* d: diag(U) */
    NS_R *dW, *tmp;      /* d*d backward workspace */
    double logdet;       /* sum log diag(U), same for every sample */
} NS_T(ns_lu);

int NS_F(ns_lu_init)(NS_T(ns_lu) *lu, size_t d);
void NS_F(ns_lu_free)(NS_T(ns_lu) *lu);
/* Rebuild L, U, W, diag and logdet from p: call after p changes. */
void NS_F(ns_lu_prepare)(NS_T(ns_lu) *lu, const NS_R *p);
void NS_F(ns_lu_forward)(const NS_T(ns_lu) *lu, const NS_R *p, const NS_R *x, size_t n,
                         NS_R *y, double *logdet);
void NS_F(ns_lu_inverse)(const NS_T(ns_lu) *lu, const NS_R *p, const NS_R *y, size_t n,
                         NS_R *x, double *logdet);
void NS_F(ns_lu_backward)(NS_T(ns_lu) *lu, const NS_R *p, const NS_R *x, const NS_R *dy,
                          const double *gld, size_t n, NS_R *dx, NS_R *g);

/* ---- Affine coupling with a residual or MLP network (item 3) ---------- */
typedef struct NS_F(ns_coupling) {
    size_t d, nI, nT;    /* dimension, pass-through and transformed counts */
    size_t H, nl;        /* hidden width, residual blocks (resnet) / hidden layers (mlp) */
    int net;             /* NS_NET_* */
    size_t *idxI, *idxT; /* feature indices of the two sets */
    size_t cap;          /* rows the caches hold */
    /* caches written by forward (for backward) */
    NS_R *xI;            /* cap*nI */
    NS_R *h;             /* resnet: (nl+1) states; mlp: nl pre-activations; each cap*H */
    NS_R *u;             /* resnet: nl inner pre-activations, cap*H each */
    NS_R *out;           /* cap*2nT network output [shift | raw scale] */
    NS_R *sig;           /* cap*nT sigmoid(a + 2) */
    /* backward / scratch */
    NS_R *dh, *da, *act; /* cap*H each */
    NS_R *dout;          /* cap*2nT */
    NS_R *dxI;           /* cap*nI */
} NS_T(ns_coupling);

/* mask: d entries; m_j > 0 transformed, m_j <= 0 passed through. */
int NS_F(ns_coupling_init)(NS_T(ns_coupling) *c, size_t d, const int8_t *mask, size_t H,
                           size_t nl, int net);
void NS_F(ns_coupling_free)(NS_T(ns_coupling) *c);
int NS_F(ns_coupling_reserve)(NS_T(ns_coupling) *c, size_t cap);
size_t NS_F(ns_coupling_n_params)(const NS_T(ns_coupling) *c);
void NS_F(ns_coupling_forward)(NS_T(ns_coupling) *c, const NS_R *p, const NS_R *x, size_t n,
                               NS_R *y, double *logdet);
void NS_F(ns_coupling_inverse)(NS_T(ns_coupling) *c, const NS_R *p, const NS_R *y, size_t n,
                               NS_R *x, double *logdet);
/* Uses the caches of the last forward call on the same x. */
void NS_F(ns_coupling_backward)(NS_T(ns_coupling) *c, const NS_R *p, const NS_R *x,
                                const NS_R *dy, const double *gld, size_t n, NS_R *dx,
                                NS_R *g);

/* ---- Flow BatchNorm (item 4) ------------------------------------------
 * Parameter slice: raw weight v (d), bias beta (d); w = softplus(v)+1e-5. */
typedef struct NS_F(ns_bnorm) {
    size_t d, cap;
    NS_R *rmean, *rvar;  /* d: running statistics (buffers, saved with the flow) */
    NS_R *mean, *var;    /* d: statistics of the last training batch */
    NS_R *xhat;          /* cap*d normalised input of the last training batch */
    NS_R *w, *std;       /* d scratch */
    NS_R *acc;           /* 3d scratch for backward sums */
} NS_T(ns_bnorm);

int NS_F(ns_bnorm_init)(NS_T(ns_bnorm) *b, size_t d);
void NS_F(ns_bnorm_free)(NS_T(ns_bnorm) *b);
int NS_F(ns_bnorm_reserve)(NS_T(ns_bnorm) *b, size_t cap);
/* Training mode: batch mean and unbiased variance (n >= 2); when update is
 * set the running statistics move by momentum 0.1. */
void NS_F(ns_bnorm_forward_train)(NS_T(ns_bnorm) *b, const NS_R *p, const NS_R *x, size_t n,
                                  NS_R *y, double *logdet, int update);
/* Eval mode: running statistics. */
void NS_F(ns_bnorm_forward_eval)(NS_T(ns_bnorm) *b, const NS_R *p, const NS_R *x, size_t n,
                                 NS_R *y, double *logdet);
void NS_F(ns_bnorm_inverse)(NS_T(ns_bnorm) *b, const NS_R *p, const NS_R *y, size_t n,
                            NS_R *x, double *logdet);
/* Backward of the training-mode forward last run on x. */
void NS_F(ns_bnorm_backward)(NS_T(ns_bnorm) *b, const NS_R *p, const NS_R *x,
                             const NS_R *dy, const double *gld, size_t n, NS_R *dx, NS_R *g);

/* the instance is complete: the next one defines its own parameters */
#undef NS_R
#undef NS_T
#undef NS_F
