/* reparam.c - the reparameterisations: registry, maps, edge detection,
 * save/load and the start-up verification (docs/algorithm.md §3, docs/flow.md). */
#include "flow_layers.h" /* ns_sigmoid */
#include "nessai/error.h"
#include "nessai/util.h"

#include <gsl/gsl_cdf.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reparam_impl.h"

static const char *s_kind_names[NS_RP__COUNT] = {
    "none", "zscore", "rescaletobounds", "offset", "logit", "inversion",
    "inversion-duplicate", "angle", "angle-pair", "to-cartesian", "dequantise",
    "dequantise-logit", "log-rescale", "zscore-gaussian-cdf", "z-score-logit",
    "z-score-inv-gaussian-cdf", "log-z-score", "distance"};

/* The kinds the fallback and the "name:kind" list of ns_reparam_new take
 * (one parameter in, one column out, no draws). */
static const struct { const char *name; ns_rp_kind_t kind; } s_names[] = {
    {"zscore", NS_RP_ZSCORE}, {"z-score", NS_RP_ZSCORE}, {"standardize", NS_RP_ZSCORE},
    {"rescaletobounds", NS_RP_RESCALE}, {"rescale-to-bounds", NS_RP_RESCALE},
    {"default", NS_RP_RESCALE}, {"offset", NS_RP_OFFSET}, {"logit", NS_RP_LOGIT},
    {"inversion", NS_RP_INVERSION}, {"inversion-duplicate", NS_RP_INVERSION_DUP},
    {"none", NS_RP_NONE}, {"null", NS_RP_NONE},
};

int ns_rp_kind_parse(const char *s, ns_rp_kind_t *kind)
{
    for (size_t k = 0; k < sizeof s_names / sizeof s_names[0]; k++)
        if (strcmp(s, s_names[k].name) == 0) {
            *kind = s_names[k].kind;
            return NS_OK;
        }
    return NS_ERR_INVAL;
}

const char *ns_rp_kind_name(ns_rp_kind_t kind)
{
    return kind < NS_RP__COUNT ? s_kind_names[kind] : "?";
}

/* The registry: every name --reparameterisations accepts. */
static const ns_rp_entry_t s_registry[] = {
    {"zscore", NS_RP_ZSCORE, 0, -1}, {"z-score", NS_RP_ZSCORE, 0, -1},
    {"standardize", NS_RP_ZSCORE, 0, -1}, {"scaleandshift", NS_RP_ZSCORE, 0, -1},
    {"rescaletobounds", NS_RP_RESCALE, 0, -1}, {"rescale-to-bounds", NS_RP_RESCALE, 0, -1},
    {"default", NS_RP_RESCALE, 0, -1}, {"offset", NS_RP_OFFSET, 0, -1},
    {"logit", NS_RP_LOGIT, 0, -1}, {"inversion", NS_RP_INVERSION, 0, -1},
    {"inversion-duplicate", NS_RP_INVERSION_DUP, 0, -1}, {"none", NS_RP_NONE, 0, -1},
    {"null", NS_RP_NONE, 0, -1},
    {"angle", NS_RP_ANGLE, 1.0, -1}, {"angle-pi", NS_RP_ANGLE, 2.0, -1},
    {"angle-2pi", NS_RP_ANGLE, 1.0, -1}, {"periodic", NS_RP_ANGLE, NAN, -1},
    {"angle-sine", NS_RP_RESCALE, 0, -1}, {"angle-cosine", NS_RP_RESCALE, 0, -1},
    {"angle-pair", NS_RP_ANGLE_PAIR, 0, -1},
    {"sky-ra-dec", NS_RP_ANGLE_PAIR, 0, RP_CONV_RA_DEC},
    {"sky-az-zen", NS_RP_ANGLE_PAIR, 0, RP_CONV_AZ_ZEN},
    {"to-cartesian", NS_RP_TO_CARTESIAN, 0, -1},
    {"dequantise", NS_RP_DEQUANTISE, 0, -1}, {"dequantise-logit", NS_RP_DEQUANTISE_LOGIT, 0, -1},
    {"log-rescale", NS_RP_LOG_RESCALE, 0, -1},
    {"zscore-gaussian-cdf", NS_RP_ZSCORE_GCDF, 0, -1},
    {"z-score-gaussian-cdf", NS_RP_ZSCORE_GCDF, 0, -1},
    {"z-score-logit", NS_RP_ZSCORE_LOGIT, 0, -1}, {"zscore-logit", NS_RP_ZSCORE_LOGIT, 0, -1},
    {"z-score-inv-gaussian-cdf", NS_RP_ZSCORE_INVGCDF, 0, -1},
    {"zscore-inv-gaussian-cdf", NS_RP_ZSCORE_INVGCDF, 0, -1},
    {"log-z-score", NS_RP_LOG_ZSCORE, 0, -1}, {"log-standardise", NS_RP_LOG_ZSCORE, 0, -1},
    /* GW names */
    {"distance", NS_RP_DISTANCE, 0, -1}, {"time", NS_RP_OFFSET, 0, -1},
    {"mass", NS_RP_RESCALE, 0, -1}, {"mass_ratio", NS_RP_INVERSION_DUP, 0, -1},
};

const ns_rp_entry_t *ns_rp_lookup(const char *name)
{
    for (size_t k = 0; k < sizeof s_registry / sizeof s_registry[0]; k++)
        if (strcmp(name, s_registry[k].name) == 0)
            return &s_registry[k];
    return NULL;
}

static int s_is_inv(ns_rp_kind_t k)
{
    return k == NS_RP_INVERSION || k == NS_RP_INVERSION_DUP || k == NS_RP_DISTANCE;
}

static int s_is_zfamily(ns_rp_kind_t k)
{
    return k == NS_RP_ZSCORE_GCDF || k == NS_RP_ZSCORE_LOGIT || k == NS_RP_ZSCORE_INVGCDF ||
           k == NS_RP_LOG_ZSCORE;
}

void ns_reparam_reset(ns_reparam_t *self)
{
    for (size_t j = 0; j < self->d; j++) {
        s_param_t *q = &self->p[j];
        q->mu = 0.0;
        q->sigma = 1.0;
        q->off = q->kind == NS_RP_OFFSET ? 0.5 * (q->plo + q->phi) : 0.0;
        q->lo = q->plo - q->off;
        q->hi = q->phi - q->off;
        q->edge = NS_EDGE_NONE;
        q->forced = -1;
    }
}

ns_reparam_t *ns_reparam_new(size_t d, const char *const *names, const double *lower,
                             const double *upper, const char *spec, const char *fallback,
                             char *err, size_t errlen)
{
    ns_rp_model_t m = {d, names, lower, upper, NULL, NULL, NULL, 0};
    return ns_reparam_new_model(&m, spec, fallback, err, errlen);
}

void ns_reparam_destroy(ns_reparam_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ns_reparam_t *self = *self_p;
    if (self->pnames)
        for (size_t c = 0; c < self->dp; c++)
            free(self->pnames[c]);
    free(self->pnames);
    free(self->u);
    free(self->p);
    free(self->tmp);
    free(self);
    *self_p = NULL;
}

static int s_cmp_unit(const void *a, const void *b)
{
    const s_unit_t *x = a, *y = b;
    size_t mx = x->in[0], my = y->in[0];
    for (size_t k = 1; k < x->nin; k++)
        mx = x->in[k] < mx ? x->in[k] : mx;
    for (size_t k = 1; k < y->nin; k++)
        my = y->in[k] < my ? y->in[k] : my;
    return (mx > my) - (mx < my);
}

int ns_rp_finish(ns_reparam_t *self, const char *const *names, char *err, size_t errlen)
{
    qsort(self->u, self->nu, sizeof *self->u, s_cmp_unit);
    size_t dp = 0;
    self->has_prior = 0;
    for (size_t k = 0; k < self->nu; k++) {
        s_unit_t *u = &self->u[k];
        u->out = dp;
        for (size_t i = 0; i < u->nin; i++) {
            self->p[u->in[i]].kind = u->kind;
            self->p[u->in[i]].unit = k;
        }
        const s_param_t *q0 = &self->p[u->in[0]];
        switch (u->kind) {
        case NS_RP_ANGLE:
            if (isnan(u->scale))
                u->scale = 2 * M_PI / (q0->phi - q0->plo);
            if (!(u->scale > 0) || !isfinite(u->scale)) {
                ns_errf(err, errlen, "%s: the angle scale must be positive", names[u->in[0]]);
                return NS_ERR_INVAL;
            }
            u->zero_bound = q0->plo == 0.0;
            u->radial = u->nin == 1;
            u->nout = 2;
            break;
        case NS_RP_TO_CARTESIAN:
            u->radial = 1;
            u->nout = 2;
            break;
        case NS_RP_ANGLE_PAIR: {
            /* order [h, v, (rho)]: h the first input with range 2 pi, v the
             * first other with range pi, exactly */
            size_t h = SIZE_MAX, v = SIZE_MAX;
            for (size_t i = 0; i < u->nin; i++) {
                const s_param_t *q = &self->p[u->in[i]];
                if (h == SIZE_MAX && q->phi - q->plo == 2 * M_PI)
                    h = i;
            }
            for (size_t i = 0; i < u->nin; i++) {
                const s_param_t *q = &self->p[u->in[i]];
                if (i != h && v == SIZE_MAX && q->phi - q->plo == M_PI)
                    v = i;
            }
            if (h == SIZE_MAX || v == SIZE_MAX) {
                ns_errf(err, errlen, "angle-pair %s,%s: invalid prior ranges (one parameter "
                        "needs a range of exactly 2 pi, the other exactly pi)",
                        names[u->in[0]], names[u->in[1]]);
                return NS_ERR_INVAL;
            }
            size_t in[3] = {u->in[h], u->in[v], 0};
            if (u->nin == 3)
                in[2] = u->in[3 - h - v];
            memcpy(u->in, in, sizeof in);
            const s_param_t *qh = &self->p[u->in[0]], *qv = &self->p[u->in[1]];
            if (qh->plo == 0.0 && qh->phi == 2 * M_PI) {
                u->modulo_2pi = 1;
            } else if (qh->plo == -M_PI && qh->phi == M_PI) {
                u->modulo_2pi = 0;
            } else {
                ns_errf(err, errlen, "angle-pair: prior bounds for %s must be [0, 2 pi] or "
                        "[-pi, pi]", names[u->in[0]]);
                return NS_ERR_INVAL;
            }
            int conv = qv->plo == 0.0 && qv->phi == M_PI             ? RP_CONV_AZ_ZEN
                       : qv->plo == -M_PI / 2 && qv->phi == M_PI / 2 ? RP_CONV_RA_DEC
                                                                   : -1;
            if (u->conv >= 0 && conv >= 0 && conv != u->conv) {
                ns_errf(err, errlen, "angle-pair: the %s convention does not match the bounds "
                        "of %s", u->conv == RP_CONV_RA_DEC ? "ra-dec" : "az-zen",
                        names[u->in[1]]);
                return NS_ERR_INVAL;
            }
            if (conv < 0) {
                ns_errf(err, errlen, "angle-pair: cannot tell the convention from the bounds of "
                        "%s (need [0, pi] or [-pi/2, pi/2])", names[u->in[1]]);
                return NS_ERR_INVAL;
            }
            u->conv = conv;
            u->radial = u->nin == 2;
            u->nout = 3;
            break;
        }
        default:
            u->nout = 1;
            break;
        }
        if (u->radial)
            self->has_prior = 1;
        dp += u->nout;
    }
    self->dp = dp;
    self->pnames = calloc(dp ? dp : 1, sizeof(char *));
    if (!self->pnames)
        return NS_ERR_NOMEM;
    for (size_t k = 0; k < self->nu; k++) {
        const s_unit_t *u = &self->u[k];
        char stem[256];
        if (u->kind == NS_RP_ANGLE_PAIR && u->nin == 3)
            snprintf(stem, sizeof stem, "%s_%s_%s", names[u->in[0]], names[u->in[1]],
                     names[u->in[2]]);
        else if (u->kind == NS_RP_ANGLE_PAIR)
            snprintf(stem, sizeof stem, "%s_%s", names[u->in[0]], names[u->in[1]]);
        else
            snprintf(stem, sizeof stem, "%s", names[u->in[0]]);
        static const char *sfx[3] = {"_x", "_y", "_z"};
        for (size_t c = 0; c < u->nout; c++) {
            self->pnames[u->out + c] =
                ns_str_concat(stem, u->nout == 1 ? (u->kind == NS_RP_NONE ? "" : "_prime") : sfx[c]);
            if (!self->pnames[u->out + c])
                return NS_ERR_NOMEM;
        }
    }
    return NS_OK;
}

size_t ns_reparam_dim(const ns_reparam_t *self) { return self->d; }
size_t ns_reparam_prime_dim(const ns_reparam_t *self) { return self->dp; }
const char *ns_reparam_prime_name(const ns_reparam_t *self, size_t c) { return self->pnames[c]; }
int ns_reparam_has_prior(const ns_reparam_t *self) { return self->has_prior; }
void ns_reparam_set_rng(ns_reparam_t *self, ns_rng_t *rng) { self->rng = rng; }
ns_rp_kind_t ns_reparam_kind(const ns_reparam_t *self, size_t j) { return self->p[j].kind; }
int ns_reparam_edge(const ns_reparam_t *self, size_t j) { return self->p[j].edge; }
const char *ns_reparam_name(const ns_reparam_t *self, size_t j)
{
    return self->u[self->p[j].unit].name;
}

void ns_reparam_describe(const ns_reparam_t *self, const char *const *names, char *buf,
                         size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < self->nu && n < len; k++) {
        const s_unit_t *u = &self->u[k];
        n += (size_t)snprintf(buf + n, len - n, "%s%s", k ? " " : "", names[u->in[0]]);
        for (size_t i = 1; i < u->nin && n < len; i++)
            n += (size_t)snprintf(buf + n, len - n, "+%s", names[u->in[i]]);
        if (n < len)
            n += (size_t)snprintf(buf + n, len - n, "=%s", u->name);
    }
}

void ns_reparam_force_edges(ns_reparam_t *self, int edge)
{
    for (size_t j = 0; j < self->d; j++)
        if (s_is_inv(self->p[j].kind)) {
            int e = edge;
            if (self->p[j].kind == NS_RP_DISTANCE && e == NS_EDGE_LOWER)
                e = NS_EDGE_NONE; /* only the upper edge is allowed */
            self->p[j].forced = e;
            if (e >= 0)
                self->p[j].edge = e;
        }
}

size_t ns_reparam_max_copies(const ns_reparam_t *self, int for_radius)
{
    size_t c = 1;
    for (size_t k = 0; k < self->nu; k++) {
        const s_unit_t *u = &self->u[k];
        if (u->kind == NS_RP_INVERSION_DUP || u->kind == NS_RP_DISTANCE ||
            (for_radius && u->kind == NS_RP_INVERSION) ||
            (u->kind == NS_RP_TO_CARTESIAN && (for_radius || u->mode == RP_MODE_DUPLICATE)))
            c *= 2;
    }
    return c;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy percentile, linear interpolation, on sorted v */
static double s_pct(const double *v, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t i = (size_t)floor(h);
    if (i + 1 >= n)
        return v[n - 1];
    return v[i] + (h - (double)i) * (v[i + 1] - v[i]);
}

int ns_detect_edge(const double *u, size_t n, double *tmp)
{
    if (n < 2)
        return NS_EDGE_NONE;
    memcpy(tmp, u, n * sizeof(double));
    qsort(tmp, n, sizeof(double), s_cmp);
    double lo = tmp[0], hi = tmp[n - 1], range = hi - lo;
    if (!(range > 0))
        return NS_EDGE_NONE;
    /* bin width: min(Freedman-Diaconis, Sturges); count int(ceil(range)/w), <= 50 */
    double iqr = s_pct(tmp, n, 0.75) - s_pct(tmp, n, 0.25);
    double fd = 2.0 * iqr * pow((double)n, -1.0 / 3.0);
    double st = range / (log2((double)n) + 1.0);
    double w = fd > 0 ? fmin(fd, st) : st;
    size_t nb = (size_t)(ceil(range) / w);
    if (nb > 50)
        nb = 50;
    if (nb < 1)
        nb = 1;
    double counts[50] = {0};
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)((tmp[i] - lo) / range * (double)nb);
        if (k >= nb)
            k = nb - 1;
        counts[k] += 1.0;
    }
    size_t ne = (size_t)(0.1 * (double)(nb + 1));
    if (ne < 1)
        ne = 1;
    size_t imax = 0;
    for (size_t k = 1; k < nb; k++)
        if (counts[k] > counts[imax])
            imax = k;
    if (imax < ne)
        return NS_EDGE_LOWER;
    if (imax >= nb - ne)
        return NS_EDGE_UPPER;
    double fl = 0, fu = 0;
    for (size_t k = 0; k < ne; k++) {
        fl += counts[k];
        fu += counts[nb - 1 - k];
    }
    double cut = 0.5 * counts[imax];
    if (!(fl > cut) && !(fu > cut))
        return NS_EDGE_NONE;
    return fl >= fu ? NS_EDGE_LOWER : NS_EDGE_UPPER;
}

/* The pre-rescaling of the z-score variants; *lj += its log-derivative. */
static double s_zpre(ns_rp_kind_t k, double x, double *lj)
{
    switch (k) {
    case NS_RP_ZSCORE_LOGIT:
        *lj += -log(x) - log1p(-x);
        return log(x) - log1p(-x);
    case NS_RP_ZSCORE_INVGCDF: {
        double v = gsl_cdf_ugaussian_Pinv(x);
        *lj += 0.5 * log(2 * M_PI) + 0.5 * v * v;
        return v;
    }
    case NS_RP_LOG_ZSCORE:
        *lj -= log(x);
        return log(x);
    default:
        return x;
    }
}

static double s_zpre_inv(ns_rp_kind_t k, double v, double *lj)
{
    switch (k) {
    case NS_RP_ZSCORE_LOGIT:
        *lj += -ns_softplus(v) - ns_softplus(-v);
        return ns_sigmoid(v);
    case NS_RP_ZSCORE_INVGCDF:
        *lj += -0.5 * log(2 * M_PI) - 0.5 * v * v;
        return gsl_cdf_ugaussian_P(v);
    case NS_RP_LOG_ZSCORE:
        *lj += v;
        return exp(v);
    default:
        return v;
    }
}

int ns_reparam_update(ns_reparam_t *self, const double *x, size_t n, size_t stride)
{
    if (n == 0)
        return NS_ERR_INVAL;
    if (self->ntmp < 2 * n) {
        double *t = realloc(self->tmp, 2 * n * sizeof(double));
        if (!t)
            return NS_ERR_NOMEM;
        self->tmp = t;
        self->ntmp = 2 * n;
    }
    for (size_t j = 0; j < self->d; j++) {
        s_param_t *q = &self->p[j];
        if (s_is_zfamily(q->kind)) {
            double s = 0.0, ss = 0.0, lj = 0.0;
            for (size_t i = 0; i < n; i++)
                s += s_zpre(q->kind, x[i * stride + j], &lj);
            double mu = s / (double)n;
            for (size_t i = 0; i < n; i++) {
                double e = s_zpre(q->kind, x[i * stride + j], &lj) - mu;
                ss += e * e;
            }
            double sd = sqrt(ss / (double)n);
            q->mu = mu;
            q->sigma = sd > 0 && isfinite(sd) ? sd : 1.0;
            continue;
        }
        double s = 0.0, mn = INFINITY, mx = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            double v = x[i * stride + j] - q->off;
            s += v;
            mn = fmin(mn, v);
            mx = fmax(mx, v);
        }
        switch (q->kind) {
        case NS_RP_ZSCORE: {
            double mu = s / (double)n, ss = 0.0;
            for (size_t i = 0; i < n; i++) {
                double e = x[i * stride + j] - mu;
                ss += e * e;
            }
            double sd = sqrt(ss / (double)n);
            q->mu = mu;
            q->sigma = sd > 0 && isfinite(sd) ? sd : 1.0;
            break;
        }
        case NS_RP_RESCALE:
        case NS_RP_OFFSET:
        case NS_RP_INVERSION:
        case NS_RP_INVERSION_DUP:
        case NS_RP_DISTANCE:
            if (mx > mn && isfinite(mn) && isfinite(mx)) {
                q->lo = mn;
                q->hi = mx;
            }
            if (s_is_inv(q->kind)) {
                if (q->forced >= 0) {
                    q->edge = q->forced;
                } else {
                    double *u = self->tmp, w = q->hi - q->lo;
                    for (size_t i = 0; i < n; i++)
                        u[i] = (x[i * stride + j] - q->lo) / w;
                    q->edge = ns_detect_edge(u, n, self->tmp + n);
                    if (q->kind == NS_RP_DISTANCE && q->edge == NS_EDGE_LOWER)
                        q->edge = NS_EDGE_NONE;
                }
            }
            break;
        default:
            break;
        }
    }
    return NS_OK;
}

/* Forward of one value; *lj += log|dv'/dv|. Inversion lands on [0, 1]
 * (edge flipped to 0), or [-1, 1] without an edge. */
static double s_fwd1(const s_param_t *q, double v, double *lj)
{
    switch (q->kind) {
    case NS_RP_NONE:
        return v;
    case NS_RP_ZSCORE:
        *lj -= log(q->sigma);
        return (v - q->mu) / q->sigma;
    case NS_RP_RESCALE:
    case NS_RP_OFFSET:
        *lj += M_LN2 - log(q->hi - q->lo);
        return 2.0 * (v - q->off - q->lo) / (q->hi - q->lo) - 1.0;
    case NS_RP_LOGIT: {
        double w = q->phi - q->plo, u = (v - q->plo) / w;
        *lj += -log(w) - log(u) - log1p(-u);
        return log(u) - log1p(-u);
    }
    case NS_RP_INVERSION:
    case NS_RP_INVERSION_DUP:
    case NS_RP_DISTANCE: {
        double w = q->hi - q->lo, u = (v - q->lo) / w;
        if (q->edge == NS_EDGE_NONE) {
            *lj += M_LN2 - log(w);
            return 2.0 * u - 1.0;
        }
        *lj -= log(w);
        return q->edge == NS_EDGE_UPPER ? 1.0 - u : u;
    }
    case NS_RP_LOG_RESCALE: {
        double w = q->phi - q->plo, u = (v - q->plo) / w;
        *lj += -log(w) - log(u);
        return log(u);
    }
    case NS_RP_ZSCORE_GCDF: {
        double t = (v - q->mu) / q->sigma;
        *lj += -log(q->sigma) - 0.5 * log(2 * M_PI) - 0.5 * t * t;
        return 0.5 * erfc(-t / M_SQRT2);
    }
    case NS_RP_ZSCORE_LOGIT:
    case NS_RP_ZSCORE_INVGCDF:
    case NS_RP_LOG_ZSCORE: {
        double t = s_zpre(q->kind, v, lj);
        *lj -= log(q->sigma);
        return (t - q->mu) / q->sigma;
    }
    default:
        return NAN;
    }
}

static double s_inv1(const s_param_t *q, double vp, double *lj)
{
    switch (q->kind) {
    case NS_RP_NONE:
        return vp;
    case NS_RP_ZSCORE:
        *lj += log(q->sigma);
        return q->sigma * vp + q->mu;
    case NS_RP_RESCALE:
    case NS_RP_OFFSET:
        *lj += log(q->hi - q->lo) - M_LN2;
        return q->lo + 0.5 * (vp + 1.0) * (q->hi - q->lo) + q->off;
    case NS_RP_LOGIT: {
        double w = q->phi - q->plo, u = ns_sigmoid(vp);
        /* log(u (1 - u)) = -softplus(vp) - softplus(-vp) */
        *lj += log(w) - ns_softplus(vp) - ns_softplus(-vp);
        return q->plo + u * w;
    }
    case NS_RP_INVERSION:
    case NS_RP_INVERSION_DUP:
    case NS_RP_DISTANCE: {
        double w = q->hi - q->lo;
        if (q->edge == NS_EDGE_NONE) {
            *lj += log(w) - M_LN2;
            return q->lo + 0.5 * (vp + 1.0) * w;
        }
        double u = fabs(vp);
        if (q->edge == NS_EDGE_UPPER)
            u = 1.0 - u;
        *lj += log(w);
        return q->lo + u * w;
    }
    case NS_RP_LOG_RESCALE: {
        double w = q->phi - q->plo;
        *lj += log(w) + vp;
        return q->plo + exp(vp) * w;
    }
    case NS_RP_ZSCORE_GCDF: {
        double t = gsl_cdf_ugaussian_Pinv(vp);
        *lj += log(q->sigma) + 0.5 * log(2 * M_PI) + 0.5 * t * t;
        return q->sigma * t + q->mu;
    }
    case NS_RP_ZSCORE_LOGIT:
    case NS_RP_ZSCORE_INVGCDF:
    case NS_RP_LOG_ZSCORE:
        *lj += log(q->sigma);
        return s_zpre_inv(q->kind, q->sigma * vp + q->mu, lj);
    default:
        return NAN;
    }
}

/* chi_k radius: chi_2 = sqrt(-2 log U), chi_3 = |three standard normals| */
static double s_chi(ns_rng_t *rng, int k)
{
    if (k == 2)
        return sqrt(-2.0 * log(ns_rng_uniform(rng)));
    double a = ns_rng_gaussian(rng), b = ns_rng_gaussian(rng), c = ns_rng_gaussian(rng);
    return sqrt(a * a + b * b + c * c);
}

/* Forward of one row; returns NS_OK, NS_ERR_STATE (draws without a
 * generator) or NS_ERR_NUMERIC (a negative radius). */
static int s_fwd_row(const ns_reparam_t *self, const double *xi, double *xpi, double *lj,
                     ns_rng_t *rng)
{
    for (size_t k = 0; k < self->nu; k++) {
        const s_unit_t *u = &self->u[k];
        const s_param_t *q = &self->p[u->in[0]];
        double *o = xpi + u->out;
        switch (u->kind) {
        case NS_RP_ANGLE:
        case NS_RP_TO_CARTESIAN: {
            double phi, r;
            if (u->kind == NS_RP_ANGLE) {
                phi = u->scale * xi[u->in[0]];
            } else {
                double w = q->phi - q->plo;
                *lj -= log(w);
                phi = M_PI * ((xi[u->in[0]] - q->plo) / w);
            }
            if (u->radial) {
                if (!rng)
                    return NS_ERR_STATE;
                r = s_chi(rng, 2);
            } else {
                r = xi[u->in[1]];
            }
            if (r < 0)
                return NS_ERR_NUMERIC;
            o[0] = r * cos(phi);
            o[1] = r * sin(phi);
            *lj += log(r);
            break;
        }
        case NS_RP_ANGLE_PAIR: {
            double r;
            if (u->radial) {
                if (!rng)
                    return NS_ERR_STATE;
                r = s_chi(rng, 3);
            } else {
                r = xi[u->in[2]];
            }
            if (r < 0)
                return NS_ERR_NUMERIC;
            double a = xi[u->in[0]], v = xi[u->in[1]];
            if (u->conv == RP_CONV_RA_DEC) {
                o[0] = r * cos(v) * cos(a);
                o[1] = r * cos(v) * sin(a);
                o[2] = r * sin(v);
                *lj += 2.0 * log(r) + log(cos(v));
            } else {
                o[0] = r * sin(v) * cos(a);
                o[1] = r * sin(v) * sin(a);
                o[2] = r * cos(v);
                *lj += 2.0 * log(r) + log(sin(v));
            }
            break;
        }
        case NS_RP_DEQUANTISE:
        case NS_RP_DEQUANTISE_LOGIT: {
            if (!rng)
                return NS_ERR_STATE;
            double w = q->phi + 1.0 - q->plo;
            double t = (xi[u->in[0]] + ns_rng_uniform(rng) - q->plo) / w;
            if (u->kind == NS_RP_DEQUANTISE) {
                *lj += M_LN2 - log(w);
                o[0] = 2.0 * t - 1.0;
            } else {
                *lj += -log(w) - log(t) - log1p(-t);
                o[0] = log(t) - log1p(-t);
            }
            break;
        }
        default:
            o[0] = s_fwd1(q, xi[u->in[0]], lj);
            break;
        }
    }
    return NS_OK;
}

static double s_mod_2pi(double a)
{
    double m = fmod(a, 2 * M_PI);
    if (m < 0)
        m += 2 * M_PI;
    return m;
}

static void s_inv_row(const ns_reparam_t *self, const double *xpi, double *xi, double *lj,
                      double *lpr)
{
    for (size_t k = 0; k < self->nu; k++) {
        const s_unit_t *u = &self->u[k];
        const s_param_t *q = &self->p[u->in[0]];
        const double *o = xpi + u->out;
        switch (u->kind) {
        case NS_RP_ANGLE:
        case NS_RP_TO_CARTESIAN: {
            double r = sqrt(o[0] * o[0] + o[1] * o[1]), a = atan2(o[1], o[0]);
            *lj -= log(r);
            if (u->radial)
                *lpr += log(r) - 0.5 * r * r;
            else
                xi[u->in[1]] = r;
            if (u->kind == NS_RP_ANGLE) {
                if (u->zero_bound)
                    a = s_mod_2pi(a);
                xi[u->in[0]] = a / u->scale;
            } else {
                double w = q->phi - q->plo;
                xi[u->in[0]] = q->plo + w * fabs(a / M_PI);
                *lj += log(w);
            }
            break;
        }
        case NS_RP_ANGLE_PAIR: {
            double rxy = sqrt(o[0] * o[0] + o[1] * o[1]);
            double r = sqrt(o[0] * o[0] + o[1] * o[1] + o[2] * o[2]);
            double a = atan2(o[1], o[0]);
            if (u->modulo_2pi)
                a = s_mod_2pi(a);
            double v;
            if (u->conv == RP_CONV_RA_DEC) {
                v = atan2(o[2], rxy);
                *lj += -2.0 * log(r) - log(cos(v));
            } else {
                v = atan2(rxy, o[2]);
                *lj += -2.0 * log(r) - log(sin(v));
            }
            if (u->radial)
                *lpr += 2.0 * log(r) - 0.5 * r * r + 0.5 * log(2.0 / M_PI);
            else
                xi[u->in[2]] = r;
            xi[u->in[0]] = a;
            xi[u->in[1]] = v;
            break;
        }
        case NS_RP_DEQUANTISE:
        case NS_RP_DEQUANTISE_LOGIT: {
            double w = q->phi + 1.0 - q->plo, t;
            if (u->kind == NS_RP_DEQUANTISE) {
                *lj += log(w) - M_LN2;
                t = 0.5 * (o[0] + 1.0);
            } else {
                *lj += log(w) - ns_softplus(o[0]) - ns_softplus(-o[0]);
                t = ns_sigmoid(o[0]);
            }
            xi[u->in[0]] = floor(q->plo + t * w);
            break;
        }
        default:
            xi[u->in[0]] = s_inv1(q, o[0], lj);
            break;
        }
    }
}

int ns_reparam_forward(const ns_reparam_t *self, const double *x, size_t n, size_t stride,
                       double *xp, double *logj)
{
    return ns_reparam_forward_rng(self, x, n, stride, xp, logj, self->rng);
}

int ns_reparam_forward_rng(const ns_reparam_t *self, const double *x, size_t n, size_t stride,
                           double *xp, double *logj, ns_rng_t *rng)
{
    size_t dp = self->dp;
    for (size_t i = 0; i < n; i++) {
        double lj = 0.0;
        int rc = s_fwd_row(self, x + i * stride, xp + i * dp, &lj, rng);
        if (rc != NS_OK)
            return rc;
        if (logj)
            logj[i] += lj;
    }
    return NS_OK;
}

/* Mirror column c of the first m rows: duplicate (rows m..2m-1 are copies
 * with column c negated) or split (a uniformly random floor(m/2) rows,
 * without replacement, negated in place; partial Fisher-Yates). Returns
 * the new row count (0 on allocation failure). */
static size_t s_mirror(size_t dp, size_t c, size_t m, int dup, double *xp, double *logj,
                       size_t *src, ns_rng_t *rng)
{
    if (dup) {
        for (size_t i = 0; i < m; i++) {
            memcpy(xp + (m + i) * dp, xp + i * dp, dp * sizeof(double));
            xp[(m + i) * dp + c] = -xp[i * dp + c];
            if (logj)
                logj[m + i] = logj[i];
            if (src)
                src[m + i] = src[i];
        }
        return 2 * m;
    }
    if (m == 0)
        return 0;
    size_t k = m / 2;
    size_t *idx = malloc(m * sizeof(size_t));
    if (!idx)
        return 0;
    for (size_t i = 0; i < m; i++)
        idx[i] = i;
    for (size_t i = 0; i < k; i++) {
        size_t r = i + (size_t)ns_rng_uint(rng, (uint64_t)(m - i));
        size_t t = idx[i];
        idx[i] = idx[r];
        idx[r] = t;
        xp[idx[i] * dp + c] = -xp[idx[i] * dp + c];
    }
    free(idx);
    return m;
}

size_t ns_reparam_forward_mirror(const ns_reparam_t *self, const double *x, size_t n,
                                 size_t stride, double *xp, double *logj, size_t *src,
                                 ns_rng_t *rng, int for_radius)
{
    size_t dp = self->dp, m = n;
    if (ns_reparam_forward_rng(self, x, n, stride, xp, logj, rng) != NS_OK)
        return 0;
    if (src)
        for (size_t i = 0; i < n; i++)
            src[i] = i;
    for (size_t k = 0; k < self->nu; k++) {
        const s_unit_t *u = &self->u[k];
        const s_param_t *q = &self->p[u->in[0]];
        size_t c;
        int dup;
        if (s_is_inv(u->kind) && q->edge != NS_EDGE_NONE) {
            c = u->out;
            dup = u->kind != NS_RP_INVERSION || for_radius;
        } else if (u->kind == NS_RP_TO_CARTESIAN && u->mode != RP_MODE_HALF) {
            c = u->out + 1;
            dup = u->mode == RP_MODE_DUPLICATE || for_radius;
        } else {
            continue;
        }
        size_t m2 = s_mirror(dp, c, m, dup, xp, logj, src, rng);
        if (m2 == 0 && m > 0)
            return 0;
        m = m2;
    }
    return m;
}

int ns_reparam_inverse(const ns_reparam_t *self, const double *xp, size_t n, double *x,
                       double *logj)
{
    return ns_reparam_inverse_prior(self, xp, n, x, logj, NULL);
}

int ns_reparam_inverse_prior(const ns_reparam_t *self, const double *xp, size_t n, double *x,
                             double *logj, double *lprior)
{
    size_t d = self->d, dp = self->dp;
    for (size_t i = 0; i < n; i++) {
        double lj = 0.0, lp = 0.0;
        s_inv_row(self, xp + i * dp, x + i * d, &lj, &lp);
        if (logj)
            logj[i] += lj;
        if (lprior)
            lprior[i] += lp;
    }
    return NS_OK;
}

#define RP_TAG "RPRM"
#define RP_VERSION 1u

void ns_reparam_save(const ns_reparam_t *self, ns_buf_t *b)
{
    ns_buf_put_tag(b, RP_TAG, RP_VERSION);
    ns_buf_put_u64(b, self->d);
    for (size_t j = 0; j < self->d; j++) {
        const s_param_t *q = &self->p[j];
        ns_buf_put_u8(b, (uint8_t)q->kind);
        ns_buf_put_f64(b, q->mu);
        ns_buf_put_f64(b, q->sigma);
        ns_buf_put_f64(b, q->lo);
        ns_buf_put_f64(b, q->hi);
        ns_buf_put_f64(b, q->off);
        ns_buf_put_u8(b, (uint8_t)q->edge);
    }
}

int ns_reparam_load(ns_reparam_t *self, ns_buf_t *b)
{
    uint32_t ver;
    uint64_t d;
    int rc;
    if ((rc = ns_buf_get_tag(b, RP_TAG, &ver)) != NS_OK)
        return rc;
    if (ver != RP_VERSION)
        return NS_ERR_CORRUPT;
    if ((rc = ns_buf_get_u64(b, &d)) != NS_OK)
        return rc;
    if (d != self->d)
        return NS_ERR_CORRUPT;
    s_param_t *tmp = malloc(self->d * sizeof *tmp);
    if (!tmp)
        return NS_ERR_NOMEM;
    memcpy(tmp, self->p, self->d * sizeof *tmp);
    for (size_t j = 0; j < self->d && rc == NS_OK; j++) {
        s_param_t *q = &tmp[j];
        uint8_t kind = 0, edge = 0;
        rc = ns_buf_get_u8(b, &kind);
        if (rc == NS_OK && kind != (uint8_t)q->kind)
            rc = NS_ERR_CORRUPT;
        if (rc == NS_OK)
            rc = ns_buf_get_f64(b, &q->mu);
        if (rc == NS_OK)
            rc = ns_buf_get_f64(b, &q->sigma);
        if (rc == NS_OK)
            rc = ns_buf_get_f64(b, &q->lo);
        if (rc == NS_OK)
            rc = ns_buf_get_f64(b, &q->hi);
        if (rc == NS_OK)
            rc = ns_buf_get_f64(b, &q->off);
        if (rc == NS_OK)
            rc = ns_buf_get_u8(b, &edge);
        if (rc == NS_OK && edge > NS_EDGE_UPPER)
            rc = NS_ERR_CORRUPT;
        q->edge = edge;
    }
    if (rc == NS_OK)
        memcpy(self->p, tmp, self->d * sizeof *tmp);
    free(tmp);
    return rc;
}

int ns_reparam_verify(ns_reparam_t *self, const double *x, size_t n, ns_rng_t *rng,
                      double *max_err, char *err, size_t errlen)
{
    size_t d = self->d, dp = self->dp, mc = ns_reparam_max_copies(self, 1);
    double *xp = malloc(n * mc * dp * sizeof(double) + 1);
    double *xr = malloc(n * mc * d * sizeof(double));
    double *lf = calloc(n * mc, sizeof(double)), *li = calloc(n * mc, sizeof(double));
    size_t *src = malloc(n * mc * sizeof(size_t));
    int rc = NS_OK;
    double worst = 0.0;
    if (!xp || !xr || !lf || !li || !src) {
        rc = NS_ERR_NOMEM;
        goto done;
    }
    static const int edges[3] = {NS_EDGE_LOWER, NS_EDGE_UPPER, NS_EDGE_NONE};
    static const char *en[3] = {"lower", "upper", "none"};
    for (int e = 0; e < 3 && rc == NS_OK; e++) {
        for (int radius = 0; radius < 2 && rc == NS_OK; radius++) {
            ns_reparam_force_edges(self, edges[e]);
            if ((rc = ns_reparam_update(self, x, n, d)) != NS_OK)
                break;
            memset(lf, 0, n * mc * sizeof(double));
            memset(li, 0, n * mc * sizeof(double));
            size_t m = ns_reparam_forward_mirror(self, x, n, d, xp, lf, src, rng, radius);
            if (m == 0) {
                ns_errf(err, errlen, "the forward reparameterisation failed (a negative radius?)");
                rc = NS_ERR_NUMERIC;
                goto done;
            }
            ns_reparam_inverse(self, xp, m, xr, li);
            for (size_t i = 0; i < m; i++) {
                for (size_t j = 0; j < d; j++) {
                    double a = x[src[i] * d + j], b = xr[i * d + j];
                    double scale = fmax(1.0, fabs(self->p[j].phi - self->p[j].plo));
                    double r = fabs(a - b) / scale;
                    if (!(r <= 1e-9)) {
                        ns_errf(err, errlen, "reparameterisation of parameter %zu (%s, edge "
                                "%s) does not round-trip: %.17g -> %.17g", j,
                                ns_reparam_name(self, j), en[e], a, b);
                        rc = NS_ERR_NUMERIC;
                        goto done;
                    }
                    worst = fmax(worst, r);
                }
                double lj = fabs(lf[i] + li[i]);
                if (!(lj <= 1e-8 * fmax(1.0, fabs(lf[i])))) {
                    ns_errf(err, errlen, "reparameterisation Jacobians are inconsistent "
                            "(edge %s): forward %.17g, inverse %.17g", en[e], lf[i], li[i]);
                    rc = NS_ERR_NUMERIC;
                    goto done;
                }
                worst = fmax(worst, lj);
            }
        }
    }
done:
    ns_reparam_reset(self);
    if (max_err)
        *max_err = worst;
    free(xp);
    free(xr);
    free(lf);
    free(li);
    free(src);
    return rc;
}
