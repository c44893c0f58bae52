/* flow_reset.c - initial weights and permutations, and the resets of
 * docs/algorithm.md §2.4. */
#include "flow_impl.h"

void ns_flow_init_params(ns_flow_t *f, ns_rng_t *rng, int all_default)
{
    for (size_t b = 0; b < f->cfg.n_blocks; b++) {
        s_block_t *B = &f->blk[b];
        if (ns_flow_has_lu(f))
            ns_lu_identity(f->d, f->theta + B->off_lu);
        ns_coupling_init_params(&B->cp, f->theta + B->off_cp, rng, all_default);
        if (f->cfg.batch_norm)
            ns_bnorm_init_params(f->d, f->theta + B->off_bn);
    }
}

void ns_flow_draw_permutations(ns_flow_t *f, ns_rng_t *rng)
{
    for (size_t b = 0; b < f->cfg.n_blocks; b++) {
        if (ns_flow_has_perm(f))
            ns_rng_permutation(rng, f->blk[b].perm, f->d);
        else
            for (size_t j = 0; j < f->d; j++)
                f->blk[b].perm[j] = j;
    }
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
    ns_flow_draw_permutations(self, rng);
    if (ns_flow_has_lu(self))
        for (size_t b = 0; b < self->cfg.n_blocks; b++)
            ns_lu_identity(self->d, self->theta + self->blk[b].off_lu);
    ns_flow_params_changed(self);
}

void ns_flow_reset_full(ns_flow_t *self, ns_rng_t *rng)
{
    ns_flow_draw_permutations(self, rng);
    ns_flow_init_params(self, rng, 0);
    s_bn_reset(self, 0.0);
    ns_flow_params_changed(self);
}

