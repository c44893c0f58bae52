/* flow_serial.c - the "FLOW" section: config, permutations, masks,
 * parameters and running statistics (docs/flow.md, "Weights file"). */
#include "flow_impl.h"
#include "nessai/error.h"

#include <stdlib.h>
#include <string.h>

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

int ns_flow_copy(const ns_flow_t *src, ns_flow_t **out)
{
    *out = NULL;
    /* the new flow's own initialisation is overwritten by the load */
    ns_rng_t *scratch = ns_rng_new(0, 0);
    ns_flow_t *f = scratch ? ns_flow_new(&src->cfg, scratch) : NULL;
    ns_rng_destroy(&scratch);
    if (!f)
        return NS_ERR_NOMEM;
    ns_buf_t b;
    ns_buf_init(&b);
    ns_flow_save(src, &b);
    int rc = ns_buf_error(&b);
    if (rc == NS_OK) {
        ns_buf_t r;
        ns_buf_view(&r, b.data, b.len);
        rc = ns_flow_load(f, &r);
    }
    ns_buf_free(&b);
    if (rc != NS_OK)
        ns_flow_destroy(&f);
    *out = f;
    return rc;
}
