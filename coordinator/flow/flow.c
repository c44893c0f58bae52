/* flow.c - RealNVP composition: stages, eval/training passes, resets and
 * (de)serialisation (docs/algorithm.md §4.2). */
#include "flow.h"
#include "flow_f32.h"
#include "flow_layers.h"
#include "nessai/error.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

ns_flow_config_t ns_flow_config_default(size_t dim)
{
    ns_flow_config_t c = {dim, 4, 2, 2 * dim, NS_NET_RESNET, NS_FLOW_LINEAR_LU, 1};
    return c;
}

static int s_has_perm(const ns_flow_t *f) { return f->cfg.linear != NS_FLOW_LINEAR_NONE; }
static int s_has_lu(const ns_flow_t *f) { return f->cfg.linear == NS_FLOW_LINEAR_LU; }

static void s_init_params(ns_flow_t *f, ns_rng_t *rng, int all_default)
{
    for (size_t b = 0; b < f->cfg.n_blocks; b++) {
        s_block_t *B = &f->blk[b];
        if (s_has_lu(f))
            ns_lu_identity(f->d, f->theta + B->off_lu);
        ns_coupling_init_params(&B->cp, f->theta + B->off_cp, rng, all_default);
        if (f->cfg.batch_norm)
            ns_bnorm_init_params(f->d, f->theta + B->off_bn);
    }
}

static void s_new_permutations(ns_flow_t *f, ns_rng_t *rng)
{
    for (size_t b = 0; b < f->cfg.n_blocks; b++) {
        if (s_has_perm(f))
            ns_rng_permutation(rng, f->blk[b].perm, f->d);
        else
            for (size_t j = 0; j < f->d; j++)
                f->blk[b].perm[j] = j;
    }
}

ns_flow_t *ns_flow_new(const ns_flow_config_t *cfg, ns_rng_t *rng)
{
    if (!cfg || cfg->dim < 2 || cfg->n_blocks < 1 || cfg->net < 0 || cfg->net > 1 ||
        cfg->linear < 0 || cfg->linear > 2 || (cfg->net == NS_NET_MLP && cfg->n_layers < 1))
        return NULL;
    ns_flow_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->cfg = *cfg;
    f->cfg.batch_norm = cfg->batch_norm ? 1 : 0;
    if (f->cfg.n_neurons == 0)
        f->cfg.n_neurons = 2 * cfg->dim;
    f->d = cfg->dim;
    size_t d = f->d, nb = cfg->n_blocks;
    f->blk = calloc(nb, sizeof *f->blk);
    f->st = calloc(nb * 4, sizeof *f->st);
    if (!f->blk || !f->st)
        goto fail;
    /* block 0: m = +1, m[0::2] = -1; each next block negates */
    size_t P = 0;
    for (size_t b = 0; b < nb; b++) {
        s_block_t *B = &f->blk[b];
        B->perm = calloc(d, sizeof(size_t));
        B->mask = calloc(d, 1);
        if (!B->perm || !B->mask)
            goto fail;
        for (size_t j = 0; j < d; j++) {
            int8_t m0 = (j % 2 == 0) ? -1 : 1;
            B->mask[j] = (b % 2 == 0) ? m0 : (int8_t)-m0;
        }
        if (s_has_perm(f))
            f->st[f->K++] = (s_stage_t){ST_PERM, b};
        if (s_has_lu(f)) {
            if (ns_lu_init(&B->lu, d))
                goto fail;
            B->off_lu = P;
            P += ns_lu_n_params(d);
            f->st[f->K++] = (s_stage_t){ST_LU, b};
        }
        if (ns_coupling_init(&B->cp, d, B->mask, f->cfg.n_neurons, cfg->n_layers, cfg->net))
            goto fail;
        B->off_cp = P;
        P += ns_coupling_n_params(&B->cp);
        f->st[f->K++] = (s_stage_t){ST_COUP, b};
        if (f->cfg.batch_norm) {
            if (ns_bnorm_init(&B->bn, d))
                goto fail;
            B->off_bn = P;
            P += ns_bnorm_n_params(d);
            f->st[f->K++] = (s_stage_t){ST_BN, b};
        }
    }
    f->P = P;
    f->theta = calloc(P, sizeof(double));
    f->grad = calloc(P, sizeof(double));
    f->buf = calloc(f->K + 1, sizeof(double *));
    if (!f->theta || !f->grad || !f->buf)
        goto fail;
    s_new_permutations(f, rng);
    s_init_params(f, rng, 0);
    ns_flow_params_changed(f);
    if (ns_flow_reserve(f, 256))
        goto fail;
    return f;
fail:
    ns_flow_destroy(&f);
    return NULL;
}

static void s_free32(ns_flow_t *f)
{
    if (f->blk32)
        for (size_t b = 0; b < f->cfg.n_blocks; b++) {
            s_block32_t *T = &f->blk32[b];
            if (T->lu.d)
                ns_lu_free_f32(&T->lu);
            if (T->cp.d)
                ns_coupling_free_f32(&T->cp);
            if (T->bn.d)
                ns_bnorm_free_f32(&T->bn);
        }
    if (f->tbuf)
        for (size_t k = 0; k <= f->K; k++)
            free(f->tbuf[k]);
    free(f->blk32);
    free(f->tbuf);
    free(f->tdA);
    free(f->tdB);
    free(f->ttheta);
    free(f->tgrad);
    f->blk32 = NULL;
    f->tbuf = NULL;
    f->tdA = f->tdB = f->ttheta = f->tgrad = NULL;
    f->tcap = 0;
}

void ns_flow_destroy(ns_flow_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ns_flow_t *f = *self_p;
    if (f->blk)
        for (size_t b = 0; b < f->cfg.n_blocks; b++) {
            s_block_t *B = &f->blk[b];
            free(B->perm);
            free(B->mask);
            if (B->lu.d)
                ns_lu_free(&B->lu);
            if (B->cp.d)
                ns_coupling_free(&B->cp);
            if (B->bn.d)
                ns_bnorm_free(&B->bn);
        }
    if (f->buf)
        for (size_t k = 0; k <= f->K; k++)
            free(f->buf[k]);
    free(f->buf);
    free(f->blk);
    free(f->st);
    free(f->theta);
    free(f->grad);
    free(f->ld);
    free(f->gld);
    free(f->dA);
    free(f->dB);
    free(f->theta32);
    free(f->Wi32);
    free(f->bi32);
    free(f->bn_scale);
    free(f->bn_shift);
    free(f->lu_ld);
    free(f->bn_ld);
    free(f->a32);
    free(f->t32);
    ns_f32_work_free(&f->w32);
    s_free32(f);
    free(f);
    *self_p = NULL;
}

const ns_flow_config_t *ns_flow_config(const ns_flow_t *self) { return &self->cfg; }
size_t ns_flow_dim(const ns_flow_t *self) { return self->d; }
size_t ns_flow_n_params(const ns_flow_t *self) { return self->P; }
double *ns_flow_params(ns_flow_t *self) { return self->theta; }
double *ns_flow_grad(ns_flow_t *self) { return self->grad; }
size_t ns_flow_capacity(const ns_flow_t *self) { return self->cap; }

void ns_flow_params_changed(ns_flow_t *self)
{
    self->dirty32 = 1;
    if (!s_has_lu(self))
        return;
    for (size_t b = 0; b < self->cfg.n_blocks; b++)
        ns_lu_prepare(&self->blk[b].lu, self->theta + self->blk[b].off_lu);
}

void ns_flow_zero_grad(ns_flow_t *self) { memset(self->grad, 0, self->P * sizeof(double)); }

size_t ns_flow_n_buffers(const ns_flow_t *self)
{
    return self->cfg.batch_norm ? 2 * self->d * self->cfg.n_blocks : 0;
}

void ns_flow_get_buffers(const ns_flow_t *self, double *out)
{
    if (!self->cfg.batch_norm)
        return;
    size_t d = self->d;
    for (size_t b = 0; b < self->cfg.n_blocks; b++) {
        memcpy(out + 2 * d * b, self->blk[b].bn.rmean, d * sizeof(double));
        memcpy(out + 2 * d * b + d, self->blk[b].bn.rvar, d * sizeof(double));
    }
}

void ns_flow_set_buffers(ns_flow_t *self, const double *in)
{
    self->dirty32 = 1;
    if (!self->cfg.batch_norm)
        return;
    size_t d = self->d;
    for (size_t b = 0; b < self->cfg.n_blocks; b++) {
        memcpy(self->blk[b].bn.rmean, in + 2 * d * b, d * sizeof(double));
        memcpy(self->blk[b].bn.rvar, in + 2 * d * b + d, d * sizeof(double));
    }
}

static int s_grow(double **p, size_t n)
{
    double *q = realloc(*p, n * sizeof(double));
    if (!q)
        return NS_ERR_NOMEM;
    *p = q;
    return NS_OK;
}

/* Allocate the float32 training mirror (layers on first use) for rows. */
static int s_reserve32(ns_flow_t *f, size_t rows)
{
    size_t d = f->d, nb = f->cfg.n_blocks;
    if (!f->blk32) {
        f->blk32 = calloc(nb, sizeof *f->blk32);
        f->tbuf = calloc(f->K + 1, sizeof(float *));
        f->ttheta = malloc(f->P * sizeof(float));
        f->tgrad = malloc(f->P * sizeof(float));
        int rc = (!f->blk32 || !f->tbuf || !f->ttheta || !f->tgrad) ? NS_ERR_NOMEM : NS_OK;
        for (size_t b = 0; rc == NS_OK && b < nb; b++) {
            s_block32_t *T = &f->blk32[b];
            if (s_has_lu(f))
                rc = ns_lu_init_f32(&T->lu, d);
            if (rc == NS_OK)
                rc = ns_coupling_init_f32(&T->cp, d, f->blk[b].mask, f->cfg.n_neurons,
                                          f->cfg.n_layers, f->cfg.net);
            if (rc == NS_OK && f->cfg.batch_norm)
                rc = ns_bnorm_init_f32(&T->bn, d);
        }
        if (rc != NS_OK) {
            s_free32(f);
            return rc;
        }
    }
    if (rows <= f->tcap)
        return NS_OK;
    for (size_t k = 0; k <= f->K; k++) {
        float *q = realloc(f->tbuf[k], rows * d * sizeof(float));
        if (!q)
            return NS_ERR_NOMEM;
        f->tbuf[k] = q;
    }
    float *a = realloc(f->tdA, rows * d * sizeof(float));
    if (a)
        f->tdA = a;
    float *c = realloc(f->tdB, rows * d * sizeof(float));
    if (c)
        f->tdB = c;
    if (!a || !c)
        return NS_ERR_NOMEM;
    for (size_t b = 0; b < nb; b++) {
        if (ns_coupling_reserve_f32(&f->blk32[b].cp, rows))
            return NS_ERR_NOMEM;
        if (f->cfg.batch_norm && ns_bnorm_reserve_f32(&f->blk32[b].bn, rows))
            return NS_ERR_NOMEM;
    }
    f->tcap = rows;
    return NS_OK;
}

int ns_flow_reserve(ns_flow_t *self, size_t rows)
{
    if (rows <= self->cap)
        return NS_OK;
    size_t d = self->d;
    for (size_t k = 0; k <= self->K; k++)
        if (s_grow(&self->buf[k], rows * d))
            return NS_ERR_NOMEM;
    if (s_grow(&self->ld, rows) || s_grow(&self->gld, rows) ||
        s_grow(&self->dA, rows * d) || s_grow(&self->dB, rows * d))
        return NS_ERR_NOMEM;
    for (size_t b = 0; b < self->cfg.n_blocks; b++) {
        if (ns_coupling_reserve(&self->blk[b].cp, rows))
            return NS_ERR_NOMEM;
        if (self->cfg.batch_norm && ns_bnorm_reserve(&self->blk[b].bn, rows))
            return NS_ERR_NOMEM;
    }
    self->cap = rows;
    return self->train32 ? s_reserve32(self, rows) : NS_OK;
}

int ns_flow_set_train_f32(ns_flow_t *self, int on)
{
    self->train32 = on ? 1 : 0;
    if (!self->train32) {
        s_free32(self);
        return NS_OK;
    }
    return s_reserve32(self, self->cap);
}

int ns_flow_train_f32(const ns_flow_t *self) { return self->train32; }

double ns_flow_log_normal(const double *z, size_t d)
{
    double r2 = 0.0;
    for (size_t j = 0; j < d; j++)
        r2 += z[j] * z[j];
    return -0.5 * r2 - 0.5 * (double)d * NS_LOG_2PI;
}

/* train: 0 eval, 1 training without running update, 2 training with update.
 * Input must already be in buf[0]; n <= cap. Leaves z in buf[K], log-det in ld. */
static void s_forward(ns_flow_t *f, size_t n, int train)
{
    size_t d = f->d;
    memset(f->ld, 0, n * sizeof(double));
    for (size_t k = 0; k < f->K; k++) {
        const double *x = f->buf[k];
        double *y = f->buf[k + 1];
        s_block_t *B = &f->blk[f->st[k].blk];
        switch (f->st[k].kind) {
        case ST_PERM:
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < d; j++)
                    y[i * d + j] = x[i * d + B->perm[j]];
            break;
        case ST_LU:
            ns_lu_forward(&B->lu, f->theta + B->off_lu, x, n, y, f->ld);
            break;
        case ST_COUP:
            ns_coupling_forward(&B->cp, f->theta + B->off_cp, x, n, y, f->ld);
            break;
        case ST_BN:
            if (train) {
                ns_bnorm_forward_train(&B->bn, f->theta + B->off_bn, x, n, y, f->ld,
                                       train == 2);
                f->dirty32 |= train == 2;
            }
            else
                ns_bnorm_forward_eval(&B->bn, f->theta + B->off_bn, x, n, y, f->ld);
            break;
        }
    }
}

int ns_flow_forward(ns_flow_t *self, const double *x, size_t n, double *z, double *logdet)
{
    size_t d = self->d;
    for (size_t i0 = 0; i0 < n; i0 += self->cap) {
        size_t m = n - i0 < self->cap ? n - i0 : self->cap;
        memcpy(self->buf[0], x + i0 * d, m * d * sizeof(double));
        s_forward(self, m, 0);
        if (z)
            memcpy(z + i0 * d, self->buf[self->K], m * d * sizeof(double));
        if (logdet)
            memcpy(logdet + i0, self->ld, m * sizeof(double));
    }
    return NS_OK;
}

int ns_flow_log_prob(ns_flow_t *self, const double *x, size_t n, double *logq)
{
    size_t d = self->d;
    for (size_t i0 = 0; i0 < n; i0 += self->cap) {
        size_t m = n - i0 < self->cap ? n - i0 : self->cap;
        memcpy(self->buf[0], x + i0 * d, m * d * sizeof(double));
        s_forward(self, m, 0);
        const double *z = self->buf[self->K];
        for (size_t i = 0; i < m; i++)
            logq[i0 + i] = ns_flow_log_normal(z + i * d, d) + self->ld[i];
    }
    return NS_OK;
}

int ns_flow_inverse(ns_flow_t *self, const double *z, size_t n, double *x, double *logdet)
{
    size_t d = self->d;
    double *a = self->dA, *t = self->dB;
    for (size_t i0 = 0; i0 < n; i0 += self->cap) {
        size_t m = n - i0 < self->cap ? n - i0 : self->cap;
        memcpy(a, z + i0 * d, m * d * sizeof(double));
        memset(self->ld, 0, m * sizeof(double));
        for (size_t k = self->K; k-- > 0;) {
            s_block_t *B = &self->blk[self->st[k].blk];
            switch (self->st[k].kind) {
            case ST_PERM:
                for (size_t i = 0; i < m; i++)
                    for (size_t j = 0; j < d; j++)
                        t[i * d + B->perm[j]] = a[i * d + j];
                memcpy(a, t, m * d * sizeof(double));
                break;
            case ST_LU:
                ns_lu_inverse(&B->lu, self->theta + B->off_lu, a, m, a, self->ld);
                break;
            case ST_COUP:
                ns_coupling_inverse(&B->cp, self->theta + B->off_cp, a, m, a, self->ld);
                break;
            case ST_BN:
                ns_bnorm_inverse(&B->bn, self->theta + B->off_bn, a, m, a, self->ld);
                break;
            }
        }
        if (x)
            memcpy(x + i0 * d, a, m * d * sizeof(double));
        if (logdet)
            memcpy(logdet + i0, self->ld, m * sizeof(double));
    }
    return NS_OK;
}

/* Allocate the float32 mirror for the current capacity and refresh it. */
static int s_sync32(ns_flow_t *f)
{
    size_t d = f->d, nb = f->cfg.n_blocks;
    if (!f->theta32) {
        f->theta32 = malloc(f->P * sizeof(float));
        f->Wi32 = malloc(nb * d * d * sizeof(float));
        f->bi32 = malloc(nb * d * sizeof(float));
        f->bn_scale = malloc(nb * d * sizeof(float));
        f->bn_shift = malloc(nb * d * sizeof(float));
        f->lu_ld = malloc(nb * sizeof(double));
        f->bn_ld = malloc(nb * sizeof(double));
        if (!f->theta32 || !f->Wi32 || !f->bi32 || !f->bn_scale || !f->bn_shift || !f->lu_ld ||
            !f->bn_ld)
            return NS_ERR_NOMEM;
        f->dirty32 = 1;
    }
    if (f->cap32 < f->cap) {
        free(f->a32);
        free(f->t32);
        ns_f32_work_free(&f->w32);
        f->a32 = malloc(f->cap * d * sizeof(float));
        f->t32 = malloc(f->cap * d * sizeof(float));
        if (!f->a32 || !f->t32 || ns_f32_work_init(&f->w32, f->cap, f->cfg.n_neurons, d, d))
            return NS_ERR_NOMEM;
        f->cap32 = f->cap;
    }
    if (!f->dirty32)
        return NS_OK;
    for (size_t k = 0; k < f->P; k++)
        f->theta32[k] = (float)f->theta[k];
    for (size_t b = 0; b < nb; b++) {
        s_block_t *B = &f->blk[b];
        if (s_has_lu(f)) {
            /* x = W^-1 (y - b) as one float product: W^-1 = U^-1 L^-1 by two
             * triangular solves on the identity, in double (inv is d*d) */
            double *inv = B->lu.tmp;
            const double *bias = f->theta + B->off_lu + d * (d - 1) + d;
            memset(inv, 0, d * d * sizeof(double));
            for (size_t j = 0; j < d; j++)
                inv[j * d + j] = 1.0;
            cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasUnit, (int)d,
                        (int)d, 1.0, B->lu.L, (int)d, inv, (int)d);
            cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit,
                        (int)d, (int)d, 1.0, B->lu.U, (int)d, inv, (int)d);
            for (size_t i = 0; i < d; i++) {
                double s = 0.0;
                for (size_t j = 0; j < d; j++) {
                    f->Wi32[b * d * d + i * d + j] = (float)inv[i * d + j];
                    s += inv[i * d + j] * bias[j];
                }
                f->bi32[b * d + i] = (float)-s;
            }
            f->lu_ld[b] = B->lu.logdet;
        }
        if (f->cfg.batch_norm) {
            const double *v = f->theta + B->off_bn, *beta = v + d;
            double ld = 0.0;
            for (size_t j = 0; j < d; j++) {
                double w = ns_softplus(v[j]) + 1e-5, sd = sqrt(B->bn.rvar[j] + NS_BN_EPS);
                f->bn_scale[b * d + j] = (float)(sd / w);
                f->bn_shift[b * d + j] = (float)(B->bn.rmean[j] - beta[j] * sd / w);
                ld += log(w) - log(sd);
            }
            f->bn_ld[b] = ld;
        }
    }
    f->dirty32 = 0;
    return NS_OK;
}

NS_SIMD int ns_flow_inverse_f32(ns_flow_t *self, const double *z, size_t n, double *x, double *logdet)
{
    int rc = s_sync32(self);
    if (rc != NS_OK)
        return rc;
    size_t d = self->d;
    float *a = self->a32, *t = self->t32;
    for (size_t i0 = 0; i0 < n; i0 += self->cap32) {
        size_t m = n - i0 < self->cap32 ? n - i0 : self->cap32;
        for (size_t q = 0; q < m * d; q++)
            a[q] = (float)z[i0 * d + q];
        memset(self->ld, 0, m * sizeof(double));
        for (size_t k = self->K; k-- > 0;) {
            size_t b = self->st[k].blk;
            s_block_t *B = &self->blk[b];
            switch (self->st[k].kind) {
            case ST_PERM:
                for (size_t i = 0; i < m; i++)
                    for (size_t j = 0; j < d; j++)
                        t[i * d + B->perm[j]] = a[i * d + j];
                memcpy(a, t, m * d * sizeof(float));
                break;
            case ST_LU:
                ns_f32_linear(a, m, d, self->Wi32 + b * d * d, self->bi32 + b * d, d, t);
                memcpy(a, t, m * d * sizeof(float));
                for (size_t i = 0; i < m; i++)
                    self->ld[i] -= self->lu_ld[b];
                break;
            case ST_COUP: {
                ns_f32_coupling_t c = {d, B->cp.nI, B->cp.nT, B->cp.H, B->cp.nl, B->cp.net,
                                       B->cp.idxI, B->cp.idxT};
                ns_f32_coupling_inverse(&c, self->theta32 + B->off_cp, a, m, self->ld,
                                        &self->w32);
                break;
            }
            case ST_BN: {
                const float *sc = self->bn_scale + b * d, *sh = self->bn_shift + b * d;
                for (size_t i = 0; i < m; i++)
                    for (size_t j = 0; j < d; j++)
                        a[i * d + j] = sc[j] * a[i * d + j] + sh[j];
                for (size_t i = 0; i < m; i++)
                    self->ld[i] -= self->bn_ld[b];
                break;
            }
            }
        }
        if (x)
            for (size_t q = 0; q < m * d; q++)
                x[i0 * d + q] = (double)a[q];
        if (logdet)
            memcpy(logdet + i0, self->ld, m * sizeof(double));
    }
    return NS_OK;
}

static double s_mean_nll(ns_flow_t *f, size_t n)
{
    const double *z = f->buf[f->K];
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += ns_flow_log_normal(z + i * f->d, f->d) + f->ld[i];
    return -s / (double)n;
}

/* The backward pass through every stage, in double and in float
 * (flow_backward_tmpl.c). */
#define NS_R double
#define NS_F(n) n
#define NS_LAYER(f, b) (&(f)->blk[b])
#include "flow_backward_tmpl.c"
#define NS_R float
#define NS_F(n) n##_f32
#define NS_LAYER(f, b) (&(f)->blk32[b])
#include "flow_backward_tmpl.c"

/* ns_flow_loss_grad in float32: the same passes on float copies of the
 * parameters and data; log-dets, the loss and the gradient sums in double.
 * Running statistics are updated in double from the float batch moments. */
static double s_loss_grad32(ns_flow_t *f, const double *x, size_t n, int update)
{
    size_t d = f->d;
    for (size_t k = 0; k < f->P; k++) {
        f->ttheta[k] = (float)f->theta[k];
        f->tgrad[k] = 0.0f;
    }
    float *in = f->tbuf[0];
    for (size_t q = 0; q < n * d; q++)
        in[q] = (float)x[q];
    memset(f->ld, 0, n * sizeof(double));
    for (size_t k = 0; k < f->K; k++) {
        const float *xs = f->tbuf[k];
        float *ys = f->tbuf[k + 1];
        size_t b = f->st[k].blk;
        s_block_t *B = &f->blk[b];
        s_block32_t *T = &f->blk32[b];
        switch (f->st[k].kind) {
        case ST_PERM:
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < d; j++)
                    ys[i * d + j] = xs[i * d + B->perm[j]];
            break;
        case ST_LU:
            ns_lu_prepare_f32(&T->lu, f->ttheta + B->off_lu);
            ns_lu_forward_f32(&T->lu, f->ttheta + B->off_lu, xs, n, ys, f->ld);
            break;
        case ST_COUP:
            ns_coupling_forward_f32(&T->cp, f->ttheta + B->off_cp, xs, n, ys, f->ld);
            break;
        case ST_BN:
            ns_bnorm_forward_train_f32(&T->bn, f->ttheta + B->off_bn, xs, n, ys, f->ld, 0);
            if (update) {
                for (size_t j = 0; j < d; j++) {
                    B->bn.rmean[j] = (1.0 - NS_BN_MOMENTUM) * B->bn.rmean[j] +
                                     NS_BN_MOMENTUM * (double)T->bn.mean[j];
                    B->bn.rvar[j] = (1.0 - NS_BN_MOMENTUM) * B->bn.rvar[j] +
                                    NS_BN_MOMENTUM * (double)T->bn.var[j];
                }
                f->dirty32 = 1;
            }
            break;
        }
    }
    const float *z = f->tbuf[f->K];
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double r2 = 0.0;
        for (size_t j = 0; j < d; j++)
            r2 += (double)z[i * d + j] * (double)z[i * d + j];
        s += -0.5 * r2 - 0.5 * (double)d * NS_LOG_2PI + f->ld[i];
    }
    double loss = -s / (double)n;
    /* dLoss/dz = z/n, dLoss/dlogdet_i = -1/n */
    float *dy = f->tdA, *dx = f->tdB, inv_n = 1.0f / (float)n;
    for (size_t q = 0; q < n * d; q++)
        dy[q] = z[q] * inv_n;
    for (size_t i = 0; i < n; i++)
        f->gld[i] = -1.0 / (double)n;
    s_backward_f32(f, n, f->tbuf, f->ttheta, f->tgrad, dy, dx);
    for (size_t k = 0; k < f->P; k++)
        f->grad[k] += (double)f->tgrad[k];
    return loss;
}

double ns_flow_loss_grad(ns_flow_t *self, const double *x, size_t n, int update_running)
{
    if (self->train32)
        return s_loss_grad32(self, x, n, update_running);
    size_t d = self->d;
    memcpy(self->buf[0], x, n * d * sizeof(double));
    s_forward(self, n, update_running ? 2 : 1);
    double loss = s_mean_nll(self, n);
    /* dLoss/dz = z/n, dLoss/dlogdet_i = -1/n */
    double *dy = self->dA, *dx = self->dB;
    const double *z = self->buf[self->K];
    for (size_t q = 0; q < n * d; q++)
        dy[q] = z[q] / (double)n;
    for (size_t i = 0; i < n; i++)
        self->gld[i] = -1.0 / (double)n;
    s_backward(self, n, self->buf, self->theta, self->grad, dy, dx);
    return loss;
}

double ns_flow_loss_train(ns_flow_t *self, const double *x, size_t n)
{
    memcpy(self->buf[0], x, n * self->d * sizeof(double));
    s_forward(self, n, 1);
    return s_mean_nll(self, n);
}

double ns_flow_loss_eval(ns_flow_t *self, const double *x, size_t n)
{
    size_t d = self->d;
    double s = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += self->cap) {
        size_t m = n - i0 < self->cap ? n - i0 : self->cap;
        memcpy(self->buf[0], x + i0 * d, m * d * sizeof(double));
        s_forward(self, m, 0);
        s += s_mean_nll(self, m) * (double)m;
    }
    return s / (double)n;
}

static void s_bn_reset(ns_flow_t *f, double rvar)
{
    f->dirty32 = 1;
    if (!f->cfg.batch_norm)
        return;
    for (size_t b = 0; b < f->cfg.n_blocks; b++) {
        ns_bnorm_init_params(f->d, f->theta + f->blk[b].off_bn);
        for (size_t j = 0; j < f->d; j++) {
            f->blk[b].bn.rmean[j] = 0.0;
            f->blk[b].bn.rvar[j] = rvar;
        }
    }
}

void ns_flow_reset_weights(ns_flow_t *self, ns_rng_t *rng)
{
    for (size_t b = 0; b < self->cfg.n_blocks; b++)
        ns_coupling_init_params(&self->blk[b].cp, self->theta + self->blk[b].off_cp, rng, 1);
    s_bn_reset(self, 1.0);
    ns_flow_params_changed(self);
}

void ns_flow_reset_permutations(ns_flow_t *self, ns_rng_t *rng)
{
    s_new_permutations(self, rng);
    if (s_has_lu(self))
        for (size_t b = 0; b < self->cfg.n_blocks; b++)
            ns_lu_identity(self->d, self->theta + self->blk[b].off_lu);
    ns_flow_params_changed(self);
}

void ns_flow_reset_full(ns_flow_t *self, ns_rng_t *rng)
{
    s_new_permutations(self, rng);
    s_init_params(self, rng, 0);
    s_bn_reset(self, 0.0);
    ns_flow_params_changed(self);
}

const size_t *ns_flow_permutation(const ns_flow_t *self, size_t b) { return self->blk[b].perm; }
const int8_t *ns_flow_mask(const ns_flow_t *self, size_t b) { return self->blk[b].mask; }

#define FLOW_TAG "FLOW"
#define FLOW_VERSION 1u

static void s_put_config(ns_buf_t *b, const ns_flow_config_t *c)
{
    ns_buf_put_u64(b, c->dim);
    ns_buf_put_u64(b, c->n_blocks);
    ns_buf_put_u64(b, c->n_layers);
    ns_buf_put_u64(b, c->n_neurons);
    ns_buf_put_u8(b, (uint8_t)c->net);
    ns_buf_put_u8(b, (uint8_t)c->linear);
    ns_buf_put_u8(b, (uint8_t)c->batch_norm);
}

static int s_get_config(ns_buf_t *b, ns_flow_config_t *c)
{
    uint64_t v[4];
    uint8_t u[3];
    int rc;
    for (int k = 0; k < 4; k++)
        if ((rc = ns_buf_get_u64(b, &v[k])) != NS_OK)
            return rc;
    for (int k = 0; k < 3; k++)
        if ((rc = ns_buf_get_u8(b, &u[k])) != NS_OK)
            return rc;
    if (v[0] < 2 || v[0] > 100000 || v[1] < 1 || v[1] > 10000 || v[2] > 10000 ||
        v[3] > 1000000 || u[0] > 1 || u[1] > 2 || u[2] > 1)
        return NS_ERR_CORRUPT;
    c->dim = v[0];
    c->n_blocks = v[1];
    c->n_layers = v[2];
    c->n_neurons = v[3];
    c->net = u[0];
    c->linear = u[1];
    c->batch_norm = u[2];
    return NS_OK;
}

void ns_flow_save(const ns_flow_t *self, ns_buf_t *b)
{
    size_t d = self->d;
    ns_buf_put_tag(b, FLOW_TAG, FLOW_VERSION);
    s_put_config(b, &self->cfg);
    for (size_t k = 0; k < self->cfg.n_blocks; k++) {
        for (size_t j = 0; j < d; j++)
            ns_buf_put_u32(b, (uint32_t)self->blk[k].perm[j]);
        ns_buf_put_bytes(b, self->blk[k].mask, d);
    }
    ns_buf_put_f64s(b, self->theta, self->P);
    size_t nbuf = ns_flow_n_buffers(self);
    ns_buf_put_u64(b, nbuf);
    if (self->cfg.batch_norm)
        for (size_t k = 0; k < self->cfg.n_blocks; k++) {
            for (size_t j = 0; j < d; j++)
                ns_buf_put_f64(b, self->blk[k].bn.rmean[j]);
            for (size_t j = 0; j < d; j++)
                ns_buf_put_f64(b, self->blk[k].bn.rvar[j]);
        }
}

int ns_flow_peek_config(ns_buf_t *b, ns_flow_config_t *cfg)
{
    size_t pos = b->pos;
    uint32_t ver;
    int rc = ns_buf_get_tag(b, FLOW_TAG, &ver);
    if (rc == NS_OK && ver != FLOW_VERSION)
        rc = NS_ERR_CORRUPT;
    if (rc == NS_OK)
        rc = s_get_config(b, cfg);
    b->pos = pos;
    return rc;
}

int ns_flow_load(ns_flow_t *self, ns_buf_t *b)
{
    size_t d = self->d;
    uint32_t ver;
    ns_flow_config_t c;
    int rc;
    if ((rc = ns_buf_get_tag(b, FLOW_TAG, &ver)) != NS_OK)
        return rc;
    if (ver != FLOW_VERSION)
        return NS_ERR_CORRUPT;
    if ((rc = s_get_config(b, &c)) != NS_OK)
        return rc;
    if (c.dim != self->cfg.dim || c.n_blocks != self->cfg.n_blocks ||
        c.n_layers != self->cfg.n_layers || c.n_neurons != self->cfg.n_neurons ||
        c.net != self->cfg.net || c.linear != self->cfg.linear ||
        c.batch_norm != self->cfg.batch_norm)
        return NS_ERR_INVAL;
    /* read into temporaries first so a corrupt tail leaves the flow intact */
    size_t nb = self->cfg.n_blocks, nbuf = ns_flow_n_buffers(self);
    size_t *perm = malloc(nb * d * sizeof(size_t));
    int8_t *mask = malloc(nb * d);
    double *theta = malloc(self->P * sizeof(double));
    double *bufs = malloc((nbuf ? nbuf : 1) * sizeof(double));
    if (!perm || !mask || !theta || !bufs) {
        rc = NS_ERR_NOMEM;
        goto done;
    }
    for (size_t k = 0; k < nb && rc == NS_OK; k++) {
        uint8_t *seen = (uint8_t *)mask + k * d; /* reuse as scratch after check */
        for (size_t j = 0; j < d && rc == NS_OK; j++) {
            uint32_t v;
            rc = ns_buf_get_u32(b, &v);
            if (rc == NS_OK && v >= d)
                rc = NS_ERR_CORRUPT;
            if (rc == NS_OK)
                perm[k * d + j] = v;
        }
        /* a permutation must hit every index once */
        if (rc == NS_OK) {
            memset(seen, 0, d);
            for (size_t j = 0; j < d; j++)
                if (seen[perm[k * d + j]]++)
                    rc = NS_ERR_CORRUPT;
        }
        if (rc == NS_OK)
            rc = ns_buf_get_bytes(b, mask + k * d, d);
        if (rc == NS_OK)
            for (size_t j = 0; j < d; j++)
                if (mask[k * d + j] != self->blk[k].mask[j])
                    rc = NS_ERR_CORRUPT;
    }
    if (rc == NS_OK)
        rc = ns_buf_get_f64s_n(b, theta, self->P);
    uint64_t nb_in = 0;
    if (rc == NS_OK)
        rc = ns_buf_get_u64(b, &nb_in);
    if (rc == NS_OK && nb_in != nbuf)
        rc = NS_ERR_CORRUPT;
    for (size_t q = 0; q < nbuf && rc == NS_OK; q++)
        rc = ns_buf_get_f64(b, &bufs[q]);
    if (rc == NS_OK) {
        for (size_t k = 0; k < nb; k++)
            for (size_t j = 0; j < d; j++)
                self->blk[k].perm[j] = perm[k * d + j];
        memcpy(self->theta, theta, self->P * sizeof(double));
        ns_flow_set_buffers(self, bufs);
        ns_flow_params_changed(self);
    }
done:
    free(perm);
    free(mask);
    free(theta);
    free(bufs);
    return rc;
}

void ns_flow_set_threads(int threads)
{
    openblas_set_num_threads(threads > 0 ? threads : 1);
}

const char *ns_flow_blas_core(void)
{
    const char *c = openblas_get_corename();
    return c && *c ? c : "unknown";
}
