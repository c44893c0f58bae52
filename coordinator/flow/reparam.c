/* reparam.c - per-parameter reparameterisations and edge detection (docs/algorithm.md §3). */
#include "reparam.h"
#include "flow_layers.h" /* ns_sigmoid */
#include "nessai/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ns_rp_kind_t kind;
    double plo, phi;   /* prior bounds */
    double mu, sigma;  /* zscore */
    double lo, hi;     /* rescale / offset / inversion bounds (offset: after the shift) */
    double off;        /* offset: prior midpoint */
    int edge;          /* inversion: NS_EDGE_* */
    int forced;        /* -1: detect; else forced edge */
} s_param_t;

struct ns_reparam {
    size_t d;
    s_param_t *p;      /* d */
    double *tmp;       /* scratch for update, grown as needed */
    size_t ntmp;
};

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
    static const char *n[] = {"none", "zscore", "rescaletobounds", "offset", "logit",
                              "inversion", "inversion-duplicate"};
    return kind < NS_RP__COUNT ? n[kind] : "?";
}

static int s_is_inv(ns_rp_kind_t k) { return k == NS_RP_INVERSION || k == NS_RP_INVERSION_DUP; }

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
    ns_rp_kind_t fb = NS_RP_ZSCORE;
    if (fallback && ns_rp_kind_parse(fallback, &fb) != NS_OK) {
        ns_errf(err, errlen, "unknown fallback reparameterisation '%s'", fallback);
        return NULL;
    }
    ns_reparam_t *self = calloc(1, sizeof *self);
    if (!self || !(self->p = calloc(d, sizeof *self->p))) {
        free(self);
        ns_errf(err, errlen, "out of memory");
        return NULL;
    }
    self->d = d;
    int *given = calloc(d, sizeof(int));
    char *s = spec ? strdup(spec) : NULL;
    if (!given || (spec && !s)) {
        ns_errf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t j = 0; j < d; j++) {
        self->p[j].kind = fb;
        self->p[j].plo = lower[j];
        self->p[j].phi = upper[j];
    }
    for (char *save = NULL, *tok = s ? strtok_r(s, ",", &save) : NULL; tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *colon = strchr(tok, ':');
        if (!colon) {
            ns_errf(err, errlen, "reparameterisation '%s' is not name:kind "
                    "(e.g. --reparameterisations \"x:zscore,y:inversion\")", tok);
            goto fail;
        }
        *colon = '\0';
        char *kname = colon + 1;
        while (*kname == ' ')
            kname++;
        for (char *e = kname + strlen(kname); e > kname && e[-1] == ' ';)
            *--e = '\0';
        for (char *e = tok + strlen(tok); e > tok && e[-1] == ' ';)
            *--e = '\0';
        size_t j = 0;
        while (j < d && strcmp(names[j], tok) != 0)
            j++;
        if (j == d) {
            ns_errf(err, errlen, "reparameterisation for unknown parameter '%s'", tok);
            goto fail;
        }
        if (given[j]) {
            ns_errf(err, errlen, "parameter '%s' has two reparameterisations", tok);
            goto fail;
        }
        if (ns_rp_kind_parse(kname, &self->p[j].kind) != NS_OK) {
            ns_errf(err, errlen, "unknown reparameterisation '%s' for '%s' (use zscore, "
                    "rescaletobounds, offset, logit, inversion, inversion-duplicate or none)",
                    kname, tok);
            goto fail;
        }
        given[j] = 1;
    }
    free(s);
    free(given);
    ns_reparam_reset(self);
    return self;
fail:
    free(s);
    free(given);
    ns_reparam_destroy(&self);
    return NULL;
}

void ns_reparam_destroy(ns_reparam_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->p);
    free((*self_p)->tmp);
    free(*self_p);
    *self_p = NULL;
}

size_t ns_reparam_dim(const ns_reparam_t *self) { return self->d; }
ns_rp_kind_t ns_reparam_kind(const ns_reparam_t *self, size_t j) { return self->p[j].kind; }
int ns_reparam_edge(const ns_reparam_t *self, size_t j) { return self->p[j].edge; }

void ns_reparam_force_edges(ns_reparam_t *self, int edge)
{
    for (size_t j = 0; j < self->d; j++)
        if (s_is_inv(self->p[j].kind)) {
            self->p[j].forced = edge;
            if (edge >= 0)
                self->p[j].edge = edge;
        }
}

size_t ns_reparam_max_copies(const ns_reparam_t *self, int for_radius)
{
    size_t c = 1;
    for (size_t j = 0; j < self->d; j++)
        if (self->p[j].kind == NS_RP_INVERSION_DUP ||
            (for_radius && self->p[j].kind == NS_RP_INVERSION))
            c *= 2;
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
    case NS_RP_INVERSION_DUP: {
        double w = q->hi - q->lo, u = (v - q->lo) / w;
        if (q->edge == NS_EDGE_NONE) {
            *lj += M_LN2 - log(w);
            return 2.0 * u - 1.0;
        }
        *lj -= log(w);
        return q->edge == NS_EDGE_UPPER ? 1.0 - u : u;
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
    case NS_RP_INVERSION_DUP: {
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
    default:
        return NAN;
    }
}

int ns_reparam_forward(const ns_reparam_t *self, const double *x, size_t n, size_t stride,
                       double *xp, double *logj)
{
    size_t d = self->d;
    for (size_t i = 0; i < n; i++) {
        double lj = 0.0;
        for (size_t j = 0; j < d; j++)
            xp[i * d + j] = s_fwd1(&self->p[j], x[i * stride + j], &lj);
        if (logj)
            logj[i] += lj;
    }
    return NS_OK;
}

size_t ns_reparam_forward_mirror(const ns_reparam_t *self, const double *x, size_t n,
                                 size_t stride, double *xp, double *logj, size_t *src,
                                 ns_rng_t *rng, int for_radius)
{
    size_t d = self->d, m = n;
    if (logj) {
        /* forward adds: make the first n entries relative to the caller's */
        ns_reparam_forward(self, x, n, stride, xp, logj);
    } else {
        ns_reparam_forward(self, x, n, stride, xp, NULL);
    }
    if (src)
        for (size_t i = 0; i < n; i++)
            src[i] = i;
    for (size_t j = 0; j < d; j++) {
        const s_param_t *q = &self->p[j];
        if (!s_is_inv(q->kind) || q->edge == NS_EDGE_NONE)
            continue;
        if (q->kind == NS_RP_INVERSION_DUP || for_radius) {
            for (size_t i = 0; i < m; i++) {
                memcpy(xp + (m + i) * d, xp + i * d, d * sizeof(double));
                xp[(m + i) * d + j] = -xp[i * d + j];
                if (logj)
                    logj[m + i] = logj[i];
                if (src)
                    src[m + i] = src[i];
            }
            m *= 2;
        } else if (m > 0) {
            /* split: a uniformly random half (floor(m/2) rows, without
             * replacement) is mirrored; partial Fisher-Yates on indices */
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
                xp[idx[i] * d + j] = -xp[idx[i] * d + j];
            }
            free(idx);
        }
    }
    return m;
}

int ns_reparam_inverse(const ns_reparam_t *self, const double *xp, size_t n, double *x,
                       double *logj)
{
    size_t d = self->d;
    for (size_t i = 0; i < n; i++) {
        double lj = 0.0;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = s_inv1(&self->p[j], xp[i * d + j], &lj);
        if (logj)
            logj[i] += lj;
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
    size_t d = self->d, mc = ns_reparam_max_copies(self, 1);
    double *xp = malloc(n * mc * d * sizeof(double));
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
            ns_reparam_inverse(self, xp, m, xr, li);
            for (size_t i = 0; i < m; i++) {
                for (size_t j = 0; j < d; j++) {
                    double a = x[src[i] * d + j], b = xr[i * d + j];
                    double scale = fmax(1.0, fabs(self->p[j].phi - self->p[j].plo));
                    double r = fabs(a - b) / scale;
                    if (!(r <= 1e-9)) {
                        ns_errf(err, errlen, "reparameterisation of parameter %zu (%s, edge "
                                "%s) does not round-trip: %.17g -> %.17g", j,
                                ns_rp_kind_name(self->p[j].kind), en[e], a, b);
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
