/* proposal.c - the proposal wrapper shared by every proposal kind. */
#include "proposal.h"

#include <stdlib.h>

ns_proposal_t *ns_proposal_new(const ns_proposal_ops_t *ops, void *impl)
{
    ns_proposal_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ops = ops;
    self->impl = impl;
    return self;
}

void ns_proposal_destroy(ns_proposal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ns_proposal_t *self = *self_p;
    if (self->ops && self->ops->destroy)
        self->ops->destroy(self->impl);
    free(self);
    *self_p = NULL;
}
