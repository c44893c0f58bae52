/*
 * reparam_impl.h - the reparameterisation's internal state, shared by
 * reparam.c (the maps, update, save/load, verification) and reparam_spec.c
 * (parsing --reparameterisations and choosing a map for every parameter).
 * Internal to the flow library.
 */
#ifndef NS_REPARAM_IMPL_H
#define NS_REPARAM_IMPL_H

#include "reparam.h"

/* Per model parameter: the fitted statistics (the checkpointed state). */
typedef struct {
    ns_rp_kind_t kind;
    double plo, phi;   /* prior bounds */
    double mu, sigma;  /* zscore family */
    double lo, hi;     /* rescale / offset / inversion bounds (offset: after the shift) */
    double off;        /* offset: prior midpoint */
    int edge;          /* inversion: NS_EDGE_* */
    int forced;        /* -1: detect; else forced edge */
    size_t unit;       /* the map this parameter belongs to */
} s_param_t;

enum { RP_CONV_RA_DEC = 0, RP_CONV_AZ_ZEN = 1 };
enum { RP_MODE_SPLIT = 0, RP_MODE_HALF = 1, RP_MODE_DUPLICATE = 2 };

/* One map: nin model parameters in, nout prime columns out. */
typedef struct {
    ns_rp_kind_t kind;
    char name[32];     /* the registry name it was chosen by */
    size_t nin, in[3]; /* model indices; angle [theta, (rho)]; pair [h, v, (rho)] */
    size_t out, nout;  /* first prime column, count */
    double scale;      /* angle: phi = scale * theta */
    int zero_bound;    /* angle: lower bound exactly 0 (floored mod 2 pi) */
    int modulo_2pi;    /* pair: horizontal on [0, 2 pi] */
    int conv;          /* pair: RP_CONV_* */
    int mode;          /* to-cartesian: RP_MODE_* */
    int radial;        /* radius drawn from chi_k (not a model parameter) */
} s_unit_t;

struct ns_reparam {
    size_t d, dp;      /* model parameters, prime columns */
    s_param_t *p;      /* d */
    s_unit_t *u;       /* nu, ordered by their first model parameter */
    size_t nu;
    char **pnames;     /* dp prime names */
    int has_prior;     /* some unit draws its radius */
    ns_rng_t *rng;     /* borrowed, for ns_reparam_forward's radii */
    double *tmp;       /* scratch for update, grown as needed */
    size_t ntmp;
};

/* Kind table entry: a registry name and its default settings. */
typedef struct {
    const char *name;
    ns_rp_kind_t kind;
    double scale;      /* angle: scale (NAN: 2 pi / range) */
    int conv;          /* pair: -1 guess, else RP_CONV_* */
} ns_rp_entry_t;

const ns_rp_entry_t *ns_rp_lookup(const char *name);
/* Fill the units' derived fields and prime names after the units are
 * chosen; NS_OK or NS_ERR_INVAL with a reason. reparam.c */
int ns_rp_finish(ns_reparam_t *self, const char *const *names, char *err, size_t errlen);

#endif
