/* flow.c - the composed RealNVP (docs/algorithm.md §4.2): construction,
 * stage layout, parameter vector, running statistics, row capacity. */
#include "flow_impl.h"
#include "nessai/error.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

ns_flow_config_t ns_flow_config_default(size_t dim)
{
    ns_flow_config_t c = {dim, 4, 2, 2 * dim, NS_NET_RESNET, NS_FLOW_LINEAR_LU, 1};
    return c;
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
        if (ns_flow_has_perm(f))
            f->st[f->K++] = (s_stage_t){ST_PERM, b};
        if (ns_flow_has_lu(f)) {
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
    ns_flow_draw_permutations(f, rng);
    ns_flow_init_params(f, rng, 0);
    ns_flow_params_changed(f);
    if (ns_flow_reserve(f, 256))
        goto fail;
    return f;
fail:
    ns_flow_destroy(&f);
    return NULL;
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
    ns_flow_inverse32_free(f);
    ns_flow_train32_free(f);
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
    if (!ns_flow_has_lu(self))
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
    return self->train32 ? ns_flow_train32_reserve(self, rows) : NS_OK;
}

const size_t *ns_flow_permutation(const ns_flow_t *self, size_t b) { return self->blk[b].perm; }
const int8_t *ns_flow_mask(const ns_flow_t *self, size_t b) { return self->blk[b].mask; }

void ns_flow_set_threads(int threads)
{
    openblas_set_num_threads(threads > 0 ? threads : 1);
}

const char *ns_flow_blas_core(void)
{
    const char *c = openblas_get_corename();
    return c && *c ? c : "unknown";
}
