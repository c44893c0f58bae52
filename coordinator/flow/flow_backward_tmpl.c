/*
 * flow_backward_tmpl.c - the training-mode backward pass through every
 * stage of the flow, for one floating-point type. Included twice by
 * flow_grad.c with NS_R (double, float), NS_F(name) (name, name_f32) and
 * NS_LAYER(f, b) (the block holding the layers of that type).
 *
 * bufs[k] is the input of stage k from the forward pass; dy holds
 * dLoss/dz on entry; dy and dx are swapped after each stage (ping-pong);
 * gradients are added into grad (same layout as theta); f->gld holds
 * dLoss/dlogdet.
 */
static void NS_F(s_backward)(ns_flow_t *f, size_t n, NS_R *const *bufs, const NS_R *theta,
                             NS_R *grad, NS_R *dy, NS_R *dx)
{
    size_t d = f->d;
    for (size_t k = f->K; k-- > 0;) {
        const NS_R *xin = bufs[k];
        size_t b = f->st[k].blk;
        const s_block_t *B = &f->blk[b];
        switch (f->st[k].kind) {
        case ST_PERM:
            NS_F(ns_perm_inverse)(B->perm, d, dy, n, dx);
            break;
        case ST_LU:
            NS_F(ns_lu_backward)(&NS_LAYER(f, b)->lu, theta + B->off_lu, xin, dy, f->gld, n,
                                 dx, grad + B->off_lu);
            break;
        case ST_COUP:
            NS_F(ns_coupling_backward)(&NS_LAYER(f, b)->cp, theta + B->off_cp, xin, dy, f->gld,
                                       n, dx, grad + B->off_cp);
            break;
        case ST_BN:
            NS_F(ns_bnorm_backward)(&NS_LAYER(f, b)->bn, theta + B->off_bn, xin, dy, f->gld, n,
                                    dx, grad + B->off_bn);
            break;
        }
        NS_R *t = dy;
        dy = dx;
        dx = t;
    }
}

/* the instance is complete: the next one defines its own parameters */
#undef NS_R
#undef NS_F
#undef NS_LAYER
