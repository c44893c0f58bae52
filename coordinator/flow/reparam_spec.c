/* reparam_spec.c - choosing a reparameterisation for every parameter:
 * --reparameterisations in its three forms ("name:kind" list, a registry
 * name for all, nessai's JSON object), the GW defaults, the model's
 * declarations and the fallback (docs/flow.md). */
#include "reparam_impl.h"
#include "nessai/error.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <fnmatch.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ns_reparam_t *rp;
    const ns_rp_model_t *m;
    int *covered;
    char *err;
    size_t errlen;
} s_ctx_t;

static long s_index(const ns_rp_model_t *m, const char *name)
{
    for (size_t j = 0; j < m->d; j++)
        if (strcmp(m->names[j], name) == 0)
            return (long)j;
    return -1;
}

static int s_set_kwargs(s_ctx_t *c, s_unit_t *u, const cJSON *kw)
{
    for (const cJSON *it = kw ? kw->child : NULL; it; it = it->next) {
        const char *k = it->string;
        if (strcmp(k, "reparameterisation") == 0 || strcmp(k, "parameters") == 0 ||
            strcmp(k, "input_parameters") == 0)
            continue;
        if (strcmp(k, "scale") == 0 && u->kind == NS_RP_ANGLE) {
            if (cJSON_IsNull(it)) {
                u->scale = NAN;
            } else if (!cJSON_IsNumber(it) || !(it->valuedouble > 0)) {
                ns_errf(c->err, c->errlen, "%s: scale must be a positive number or null",
                        u->name);
                return NS_ERR_INVAL;
            } else {
                u->scale = it->valuedouble;
            }
        } else if (strcmp(k, "convention") == 0 && u->kind == NS_RP_ANGLE_PAIR) {
            const char *v = cJSON_GetStringValue(it);
            if (cJSON_IsNull(it))
                u->conv = -1;
            else if (v && strcmp(v, "ra-dec") == 0)
                u->conv = RP_CONV_RA_DEC;
            else if (v && strcmp(v, "az-zen") == 0)
                u->conv = RP_CONV_AZ_ZEN;
            else {
                ns_errf(c->err, c->errlen, "%s: unknown convention (use ra-dec or az-zen)",
                        u->name);
                return NS_ERR_INVAL;
            }
        } else if (strcmp(k, "mode") == 0 && u->kind == NS_RP_TO_CARTESIAN) {
            const char *v = cJSON_GetStringValue(it);
            if (v && strcmp(v, "split") == 0)
                u->mode = RP_MODE_SPLIT;
            else if (v && strcmp(v, "half") == 0)
                u->mode = RP_MODE_HALF;
            else if (v && strcmp(v, "duplicate") == 0)
                u->mode = RP_MODE_DUPLICATE;
            else {
                ns_errf(c->err, c->errlen, "%s: unknown mode (use split, duplicate or half)",
                        u->name);
                return NS_ERR_INVAL;
            }
        } else {
            ns_errf(c->err, c->errlen, "reparameterisation '%s' has no setting '%s'", u->name, k);
            return NS_ERR_INVAL;
        }
    }
    return NS_OK;
}

/* Add the map `name` over the model parameters in[0..nin-1]. One-input
 * kinds get one map per parameter; angle takes [theta, (radius)] and
 * angle-pair [a, b, (radius)]. */
static int s_add(s_ctx_t *c, const char *name, const size_t *in, size_t nin, const cJSON *kw,
                 double scale)
{
    const ns_rp_entry_t *e = ns_rp_lookup(name);
    if (!e) {
        ns_errf(c->err, c->errlen, "unknown reparameterisation '%s'", name);
        return NS_ERR_INVAL;
    }
    for (size_t i = 0; i < nin; i++) {
        if (c->covered[in[i]]) {
            ns_errf(c->err, c->errlen, "parameter '%s' has two reparameterisations",
                    c->m->names[in[i]]);
            return NS_ERR_INVAL;
        }
        for (size_t k = 0; k < i; k++)
            if (in[k] == in[i]) {
                ns_errf(c->err, c->errlen, "parameter '%s' is listed twice for '%s'",
                        c->m->names[in[i]], name);
                return NS_ERR_INVAL;
            }
    }
    int multi = e->kind == NS_RP_ANGLE || e->kind == NS_RP_ANGLE_PAIR;
    size_t lo = 1, hi = 1;
    if (e->kind == NS_RP_ANGLE)
        hi = 2;
    if (e->kind == NS_RP_ANGLE_PAIR)
        lo = 2, hi = 3;
    if (multi && (nin < lo || nin > hi)) {
        if (e->kind == NS_RP_ANGLE)
            ns_errf(c->err, c->errlen, "%s takes one parameter (or an angle and its radius), "
                    "got %zu", name, nin);
        else
            ns_errf(c->err, c->errlen, "%s must use a pair of parameters (and optionally a "
                    "radius), got %zu", name, nin);
        return NS_ERR_INVAL;
    }
    if (e->kind == NS_RP_TO_CARTESIAN && nin != 1) {
        ns_errf(c->err, c->errlen, "%s takes one parameter per map, got %zu", name, nin);
        return NS_ERR_INVAL;
    }
    size_t count = multi ? 1 : nin;
    for (size_t k = 0; k < count; k++) {
        s_unit_t *u = &c->rp->u[c->rp->nu++];
        memset(u, 0, sizeof *u);
        u->kind = e->kind;
        snprintf(u->name, sizeof u->name, "%s", name);
        u->scale = isnan(scale) ? e->scale : scale;
        u->conv = e->conv;
        u->mode = RP_MODE_SPLIT;
        u->nin = multi ? nin : 1;
        for (size_t i = 0; i < u->nin; i++)
            u->in[i] = multi ? in[i] : in[k];
        int rc = s_set_kwargs(c, u, kw);
        if (rc != NS_OK)
            return rc;
        for (size_t i = 0; i < u->nin; i++)
            c->covered[u->in[i]] = 1;
    }
    return NS_OK;
}

/* Model names matching pattern: the name itself, else a full regular
 * expression match (POSIX extended), else a shell pattern (fnmatch). */
static size_t s_match(const ns_rp_model_t *m, const char *pat, size_t *out, size_t nout)
{
    long j = s_index(m, pat);
    if (j >= 0) {
        out[nout++] = (size_t)j;
        return nout;
    }
    size_t n0 = nout, len = strlen(pat) + 8;
    char *re = malloc(len);
    regex_t rx;
    int ok = 0;
    if (re) {
        snprintf(re, len, "^(%s)$", pat);
        ok = regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) == 0;
        free(re);
    }
    for (size_t k = 0; ok && k < m->d; k++)
        if (regexec(&rx, m->names[k], 0, NULL, 0) == 0)
            out[nout++] = k;
    if (ok)
        regfree(&rx);
    if (nout == n0)
        for (size_t k = 0; k < m->d; k++)
            if (fnmatch(pat, m->names[k], 0) == 0)
                out[nout++] = k;
    return nout;
}

/* Parameter list of a JSON value: a string or an array of strings. With
 * patterns, entries are matched as s_match does; without, they must be
 * parameter names. Duplicates are dropped. */
static int s_params(s_ctx_t *c, const char *what, const cJSON *v, int patterns, size_t *out,
                    size_t *nout)
{
    size_t n = 0, cap = c->m->d;
    const cJSON *items = cJSON_IsArray(v) ? v->child : v;
    size_t *tmp = malloc((cap * (cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 1) + 1) *
                         sizeof(size_t));
    if (!tmp)
        return NS_ERR_NOMEM;
    size_t nt = 0;
    for (const cJSON *it = items; it; it = cJSON_IsArray(v) ? it->next : NULL) {
        const char *s = cJSON_GetStringValue(it);
        if (!s) {
            ns_errf(c->err, c->errlen, "%s: parameters must be names (strings)", what);
            free(tmp);
            return NS_ERR_INVAL;
        }
        if (patterns) {
            nt = s_match(c->m, s, tmp, nt);
        } else {
            long j = s_index(c->m, s);
            if (j < 0) {
                ns_errf(c->err, c->errlen, "%s: '%s' is not a parameter of the model", what, s);
                free(tmp);
                return NS_ERR_INVAL;
            }
            tmp[nt++] = (size_t)j;
        }
    }
    for (size_t i = 0; i < nt; i++) {
        size_t k = 0;
        while (k < n && out[k] != tmp[i])
            k++;
        if (k == n && n < cap)
            out[n++] = tmp[i];
    }
    free(tmp);
    if (n == 0) {
        ns_errf(c->err, c->errlen, "%s: no model parameter matches", what);
        return NS_ERR_INVAL;
    }
    *nout = n;
    return NS_OK;
}

static int s_parse_json(s_ctx_t *c, const char *spec)
{
    cJSON *root = cJSON_Parse(spec);
    int rc = NS_OK;
    size_t *in = malloc((c->m->d + 1) * sizeof(size_t)), nin = 0;
    if (!root || !in) {
        ns_errf(c->err, c->errlen, "--reparameterisations is not valid JSON near '%.40s'",
                cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : spec);
        cJSON_Delete(root);
        free(in);
        return NS_ERR_INVAL;
    }
    if (cJSON_IsString(root)) {
        for (size_t j = 0; j < c->m->d; j++)
            in[j] = j;
        rc = s_add(c, root->valuestring, in, c->m->d, NULL, NAN);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        ns_errf(c->err, c->errlen, "--reparameterisations must be a JSON object or a name");
        rc = NS_ERR_INVAL;
        goto done;
    }
    for (const cJSON *it = root->child; it && rc == NS_OK; it = it->next) {
        const char *key = it->string;
        long j = s_index(c->m, key);
        if (j >= 0) {
            /* a parameter name first (a parameter called "angle" is a parameter) */
            if (cJSON_IsNull(it)) {
                in[0] = (size_t)j;
                rc = s_add(c, "none", in, 1, NULL, NAN);
            } else if (cJSON_IsString(it)) {
                in[0] = (size_t)j;
                rc = s_add(c, it->valuestring, in, 1, NULL, NAN);
            } else if (cJSON_IsObject(it)) {
                const char *name =
                    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "reparameterisation"));
                const cJSON *pl = cJSON_GetObjectItemCaseSensitive(it, "parameters");
                if (!pl)
                    pl = cJSON_GetObjectItemCaseSensitive(it, "input_parameters");
                if (!name) {
                    ns_errf(c->err, c->errlen, "%s: no \"reparameterisation\" given", key);
                    rc = NS_ERR_INVAL;
                } else if (pl && !cJSON_IsNull(pl)) {
                    rc = s_params(c, key, pl, 0, in, &nin);
                    if (rc == NS_OK)
                        rc = s_add(c, name, in, nin, it, NAN);
                } else {
                    in[0] = (size_t)j;
                    rc = s_add(c, name, in, 1, it, NAN);
                }
            } else if (cJSON_IsArray(it)) {
                ns_errf(c->err, c->errlen, "%s: chains of reparameterisations are not supported",
                        key);
                rc = NS_ERR_INVAL;
            } else {
                ns_errf(c->err, c->errlen, "%s: expected a name, null or an object", key);
                rc = NS_ERR_INVAL;
            }
        } else if (ns_rp_lookup(key)) {
            const cJSON *pl = it;
            const cJSON *kw = NULL;
            if (cJSON_IsObject(it)) {
                kw = it;
                pl = cJSON_GetObjectItemCaseSensitive(it, "parameters");
                if (!pl)
                    pl = cJSON_GetObjectItemCaseSensitive(it, "input_parameters");
                if (!pl) {
                    ns_errf(c->err, c->errlen, "%s: no \"parameters\" given", key);
                    rc = NS_ERR_INVAL;
                    break;
                }
            }
            rc = s_params(c, key, pl, 1, in, &nin);
            if (rc == NS_OK)
                rc = s_add(c, key, in, nin, kw, NAN);
        } else {
            ns_errf(c->err, c->errlen, "'%s' is not a parameter in the model or a known "
                    "reparameterisation", key);
            rc = NS_ERR_INVAL;
        }
    }
done:
    cJSON_Delete(root);
    free(in);
    return rc;
}

/* Parameters given by name with a multi-input kind (angle-pair) in the
 * "name:kind" list or the model's preferences: grouped in model order. A
 * preferred pair whose partner is already covered is not used (skip). */
static int s_add_grouped(s_ctx_t *c, const char *const *kind_of, int skip)
{
    const ns_rp_model_t *m = c->m;
    for (size_t j = 0; j < m->d; j++) {
        if (!kind_of[j] || c->covered[j])
            continue;
        const ns_rp_entry_t *e = ns_rp_lookup(kind_of[j]);
        if (!e) {
            ns_errf(c->err, c->errlen, "unknown reparameterisation '%s' for '%s'", kind_of[j],
                    m->names[j]);
            return NS_ERR_INVAL;
        }
        size_t in[2] = {j, 0}, nin = 1;
        if (e->kind == NS_RP_ANGLE_PAIR) {
            for (size_t k = j + 1; k < m->d && nin < 2; k++)
                if (!c->covered[k] && kind_of[k] && strcmp(kind_of[k], kind_of[j]) == 0)
                    in[nin++] = k;
            if (skip && nin < 2)
                continue;
        }
        int rc = s_add(c, kind_of[j], in, nin, NULL, NAN);
        if (rc != NS_OK)
            return rc;
    }
    return NS_OK;
}

static int s_parse_list(s_ctx_t *c, const char *spec, const char **kind_of, char *buf)
{
    strcpy(buf, spec);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *colon = strchr(tok, ':');
        if (!colon) {
            ns_errf(c->err, c->errlen, "reparameterisation '%s' is not name:kind "
                    "(e.g. --reparameterisations \"x:zscore,y:inversion\")", tok);
            return NS_ERR_INVAL;
        }
        *colon = '\0';
        char *kname = colon + 1;
        while (*kname == ' ')
            kname++;
        for (char *e = kname + strlen(kname); e > kname && e[-1] == ' ';)
            *--e = '\0';
        for (char *e = tok + strlen(tok); e > tok && e[-1] == ' ';)
            *--e = '\0';
        long j = s_index(c->m, tok);
        if (j < 0) {
            ns_errf(c->err, c->errlen, "reparameterisation for unknown parameter '%s'", tok);
            return NS_ERR_INVAL;
        }
        if (kind_of[j]) {
            ns_errf(c->err, c->errlen, "parameter '%s' has two reparameterisations", tok);
            return NS_ERR_INVAL;
        }
        if (!ns_rp_lookup(kname)) {
            ns_errf(c->err, c->errlen, "unknown reparameterisation '%s' for '%s' (docs/flow.md "
                    "lists them: zscore, rescaletobounds, offset, logit, inversion, "
                    "inversion-duplicate, none, angle, periodic, angle-pair, ...)", kname, tok);
            return NS_ERR_INVAL;
        }
        kind_of[j] = kname;
    }
    return s_add_grouped(c, kind_of, 0);
}

/* bilby's CBC names and nessai's GW choices (docs/flow.md). */
static const struct {
    const char *name, *rp, *extra[4];
} s_gw[] = {
    {"chirp_mass", "mass", {0}},        {"mass_ratio", "mass_ratio", {0}},
    {"a_1", "default", {0}},            {"a_2", "default", {0}},
    {"chi_1", "default", {0}},          {"chi_2", "default", {0}},
    {"tilt_1", "angle-sine", {0}},      {"tilt_2", "angle-sine", {0}},
    {"theta_1", "angle-sine", {0}},     {"theta_2", "angle-sine", {0}},
    {"theta_jn", "angle-sine", {0}},    {"iota", "angle-sine", {0}},
    {"phase", "angle-2pi", {0}},        {"phi_12", "angle-2pi", {0}},
    {"phi_jl", "angle-2pi", {0}},       {"psi", "angle-pi", {0}},
    {"time_jitter", "periodic", {0}},   {"geocent_time", "time", {0}},
    {"luminosity_distance", "distance", {0}},
    {"ra", "sky-ra-dec", {"DEC", "dec", "Dec", NULL}},
    {"dec", "sky-ra-dec", {"RA", "ra", NULL}},
    {"azimuth", "sky-az-zen", {"zenith", "zen", "Zen", "Zenith"}},
    {"zenith", "sky-az-zen", {"azimuth", "az", "Az", "Azimuth"}},
};

static int s_strcaseeq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

static int s_add_gw(s_ctx_t *c)
{
    const ns_rp_model_t *m = c->m;
    for (size_t j = 0; j < m->d; j++) {
        if (c->covered[j])
            continue;
        for (size_t a = 0; a < sizeof s_gw / sizeof s_gw[0]; a++) {
            if (!s_strcaseeq(m->names[j], s_gw[a].name))
                continue;
            size_t in[3] = {j, 0, 0}, nin = 1;
            for (size_t e = 0; e < 4 && s_gw[a].extra[e] && nin < 2; e++) {
                long k = s_index(m, s_gw[a].extra[e]);
                if (k >= 0 && !c->covered[k])
                    in[nin++] = (size_t)k;
            }
            const ns_rp_entry_t *en = ns_rp_lookup(s_gw[a].rp);
            if (en->kind == NS_RP_ANGLE_PAIR && nin < 2) {
                ns_errf(c->err, c->errlen, "--flow-proposal gw: '%s' needs its partner for %s "
                        "(%s)", m->names[j], s_gw[a].rp, s_gw[a].extra[0]);
                return NS_ERR_INVAL;
            }
            int rc = s_add(c, s_gw[a].rp, in, en->kind == NS_RP_ANGLE_PAIR ? nin : 1, NULL, NAN);
            if (rc != NS_OK)
                return rc;
            break;
        }
    }
    return NS_OK;
}

static double s_period(const ns_rp_model_t *m, size_t j)
{
    double p = m->period ? m->period[j] : 0.0;
    return p > 0 && isfinite(p) ? p : m->upper[j] - m->lower[j];
}

/* A periodic parameter must be the angle of an angle map (or the
 * horizontal angle of a pair) that wraps with its period. */
static int s_check_periodic(s_ctx_t *c)
{
    const ns_rp_model_t *m = c->m;
    ns_reparam_t *rp = c->rp;
    for (size_t j = 0; m->periodic && j < m->d; j++) {
        if (!m->periodic[j])
            continue;
        const s_unit_t *u = &rp->u[rp->p[j].unit];
        double P = s_period(m, j), lo = m->lower[j], hi = m->upper[j];
        int ok = 0;
        if (!(fabs(hi - lo - P) <= 1e-12 * P))
            ok = 0; /* several periods (or part of one) in the bounds: no one-to-one map */
        else if (u->kind == NS_RP_ANGLE && u->in[0] == j)
            ok = fabs(2 * M_PI / u->scale - P) <= 1e-12 * P && (lo == 0.0 || lo == -hi);
        else if (u->kind == NS_RP_ANGLE_PAIR && u->in[0] == j)
            ok = fabs(P - 2 * M_PI) <= 1e-12 * P;
        if (!ok) {
            ns_errf(c->err, c->errlen, "parameter '%s' is periodic (period %g on [%g, %g]) but "
                    "its reparameterisation '%s' does not wrap with that period; use periodic, "
                    "angle, angle-2pi, angle-pi or angle-pair (the bounds must span one period "
                    "and start at 0 or be symmetric about 0, docs/flow.md)", m->names[j], P, lo,
                    hi, u->name);
            return NS_ERR_INVAL;
        }
    }
    return NS_OK;
}

ns_reparam_t *ns_reparam_new_model(const ns_rp_model_t *m, const char *spec, const char *fallback,
                                   char *err, size_t errlen)
{
    size_t d = m->d;
    if (fallback) {
        ns_rp_kind_t fb;
        if (ns_rp_kind_parse(fallback, &fb) != NS_OK) {
            ns_errf(err, errlen, "unknown fallback reparameterisation '%s'", fallback);
            return NULL;
        }
    } else {
        fallback = "zscore";
    }
    ns_reparam_t *self = calloc(1, sizeof *self);
    int *covered = calloc(d + 1, sizeof(int));
    const char **kind_of = calloc(d + 1, sizeof(char *));
    char *buf = spec ? malloc(strlen(spec) + 1) : NULL;
    size_t *in = malloc((d + 1) * sizeof(size_t));
    int rc = NS_OK;
    if (!self || !covered || !kind_of || !in || (spec && !buf) ||
        !(self->p = calloc(d, sizeof *self->p)) || !(self->u = calloc(d, sizeof *self->u))) {
        ns_errf(err, errlen, "out of memory");
        rc = NS_ERR_NOMEM;
        goto done;
    }
    self->d = d;
    for (size_t j = 0; j < d; j++) {
        self->p[j].plo = m->lower[j];
        self->p[j].phi = m->upper[j];
    }
    s_ctx_t c = {self, m, covered, err, errlen};
    const char *sp = spec;
    while (sp && isspace((unsigned char)*sp))
        sp++;
    if (sp && (*sp == '{' || *sp == '"' || *sp == '['))
        rc = s_parse_json(&c, sp);
    else if (sp && strchr(sp, ':'))
        rc = s_parse_list(&c, sp, kind_of, buf);
    else if (sp && *sp) {
        strcpy(buf, sp);
        for (char *e = buf + strlen(buf); e > buf && isspace((unsigned char)e[-1]);)
            *--e = '\0';
        for (size_t j = 0; j < d; j++)
            in[j] = j;
        rc = s_add(&c, buf, in, d, NULL, NAN);
    }
    if (rc == NS_OK && m->gw)
        rc = s_add_gw(&c);
    if (rc == NS_OK && m->prefer)
        rc = s_add_grouped(&c, (const char *const *)m->prefer, 1);
    for (size_t j = 0; rc == NS_OK && m->periodic && j < d; j++)
        if (m->periodic[j] && !covered[j]) {
            in[0] = j;
            rc = s_add(&c, "periodic", in, 1, NULL, 2 * M_PI / s_period(m, j));
        }
    for (size_t j = 0; rc == NS_OK && j < d; j++)
        if (!covered[j]) {
            in[0] = j;
            /* the fallback: one of the one-to-one kinds */
            rc = s_add(&c, fallback, in, 1, NULL, NAN);
        }
    if (rc == NS_OK)
        rc = ns_rp_finish(self, m->names, err, errlen);
    if (rc == NS_OK)
        rc = s_check_periodic(&c);
    if (rc == NS_OK)
        ns_reparam_reset(self);
done:
    free(covered);
    free(kind_of);
    free(buf);
    free(in);
    if (rc != NS_OK) {
        if (rc == NS_ERR_NOMEM)
            ns_errf(err, errlen, "out of memory");
        ns_reparam_destroy(&self);
    }
    return self;
}
