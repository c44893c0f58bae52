/*
 * example_util.h - small helpers shared by the example plugins: parsing
 * the comma-separated key=value --model-args, the delay_ms cost knob, a
 * seeded generator for simulated data, and the usual allocation of names
 * and bounds. Header-only (static) so every plugin stays one .so.
 */
#ifndef NESSAI_EXAMPLE_UTIL_H
#define NESSAI_EXAMPLE_UTIL_H

#include "nessai/model.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EX_EXPORT __attribute__((visibility("default")))

/* Parsed --model-args: at most 16 key=value pairs. */
typedef struct {
    int n;
    char key[16][32];
    char val[16][64];
    int used[16];
} ex_args_t;

/* Split "a=1,b=2". Returns 0 or writes a reason into err. */
static inline int ex_args_parse(const char *args, ex_args_t *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    const char *p = args ? args : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            if (!eq || eq == p || a->n == 16) {
                snprintf(err, errlen, "--model-args must be comma-separated key=value pairs, got '%.*s'",
                         (int)len, p);
                return -1;
            }
            size_t kl = (size_t)(eq - p), vl = len - kl - 1;
            if (kl >= sizeof a->key[0] || vl >= sizeof a->val[0]) {
                snprintf(err, errlen, "model argument '%.*s' is too long", (int)len, p);
                return -1;
            }
            memcpy(a->key[a->n], p, kl);
            memcpy(a->val[a->n], eq + 1, vl);
            a->n++;
        }
        p += len + (comma ? 1 : 0);
    }
    return 0;
}

/* Read a numeric key (default def). Returns 0 or -1 with a reason. */
static inline int ex_args_double(ex_args_t *a, const char *key, double def, double lo, double hi,
                          double *out, char *err, size_t errlen)
{
    *out = def;
    for (int i = 0; i < a->n; i++) {
        if (strcmp(a->key[i], key) != 0)
            continue;
        a->used[i] = 1;
        char *end;
        errno = 0;
        double v = strtod(a->val[i], &end);
        if (errno || *end || end == a->val[i] || !(v >= lo && v <= hi)) {
            snprintf(err, errlen, "model argument %s=%s: expected a number between %g and %g", key,
                     a->val[i], lo, hi);
            return -1;
        }
        *out = v;
    }
    return 0;
}

static inline int ex_args_int(ex_args_t *a, const char *key, int def, int lo, int hi, int *out,
                       char *err, size_t errlen)
{
    double v;
    if (ex_args_double(a, key, def, lo, hi, &v, err, errlen))
        return -1;
    if (v != floor(v)) {
        snprintf(err, errlen, "model argument %s must be a whole number", key);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Every key must have been read: a typo is an error, not silently ignored. */
static inline int ex_args_check_used(const ex_args_t *a, const char *known, char *err, size_t errlen)
{
    for (int i = 0; i < a->n; i++)
        if (!a->used[i]) {
            snprintf(err, errlen, "unknown model argument '%s' (this model takes: %s)", a->key[i], known);
            return -1;
        }
    return 0;
}

/* The cost knob: sleep delay_ms per point. Never changes a value. */
static inline void ex_delay(double delay_ms, size_t n)
{
    if (delay_ms <= 0 || n == 0)
        return;
    double total = delay_ms * 1e-3 * (double)n;
    struct timespec ts;
    ts.tv_sec = (time_t)total;
    ts.tv_nsec = (long)((total - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Names "x0".."x{d-1}" and box bounds [lo, hi]^d in one allocation set. */
typedef struct {
    int dim;
    char **names;
    double *lower, *upper;
} ex_box_t;

static inline int ex_box_init(ex_box_t *b, int dim, double lo, double hi, const char *prefix)
{
    b->dim = dim;
    b->names = calloc((size_t)dim, sizeof *b->names);
    b->lower = calloc((size_t)dim, sizeof *b->lower);
    b->upper = calloc((size_t)dim, sizeof *b->upper);
    if (!b->names || !b->lower || !b->upper)
        return -1;
    for (int i = 0; i < dim; i++) {
        b->names[i] = malloc(24);
        if (!b->names[i])
            return -1;
        snprintf(b->names[i], 24, "%s%d", prefix, i);
        b->lower[i] = lo;
        b->upper[i] = hi;
    }
    return 0;
}

static inline void ex_box_free(ex_box_t *b)
{
    if (b->names)
        for (int i = 0; i < b->dim; i++)
            free(b->names[i]);
    free(b->names);
    free(b->lower);
    free(b->upper);
    memset(b, 0, sizeof *b);
}

static inline void ex_box_info(const ex_box_t *b, nessai_model_info_t *info)
{
    info->dim = b->dim;
    info->names = (const char *const *)b->names;
    info->lower = b->lower;
    info->upper = b->upper;
}

/* The common shape of a box-prior model: parameters x0..x{d-1} on
 * [lo, hi]^d and the delay_ms cost knob. dim_default 0 means the dimension
 * is fixed at fixed_dim and "dim" is not accepted. */
typedef struct {
    ex_box_t box;
    double delay_ms;
} ex_simple_t;

static inline void ex_simple_fini(void *ctx)
{
    ex_simple_t *c = ctx;
    if (!c)
        return;
    ex_box_free(&c->box);
    free(c);
}

static inline int ex_simple_init(const char *args, int dim_default, int fixed_dim, double lo,
                                 double hi, void **out, nessai_model_info_t *info, char *err,
                                 size_t errlen)
{
    ex_args_t a;
    int dim = fixed_dim;
    double delay;
    if (ex_args_parse(args, &a, err, errlen) ||
        (dim_default > 0 && ex_args_int(&a, "dim", dim_default, 2, 1024, &dim, err, errlen)) ||
        ex_args_double(&a, "delay_ms", 0, 0, 1e7, &delay, err, errlen) ||
        ex_args_check_used(&a, dim_default > 0 ? "dim, delay_ms" : "delay_ms", err, errlen))
        return 1;
    ex_simple_t *c = calloc(1, sizeof *c);
    if (!c || ex_box_init(&c->box, dim, lo, hi, "x")) {
        if (c)
            ex_box_free(&c->box);
        free(c);
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    c->delay_ms = delay;
    ex_box_info(&c->box, info);
    *out = c;
    return 0;
}

/* ex_simple_init for a likelihood normalised over R^d whose mass (to
 * double precision) lies inside the box: truth ln Z = -d ln(hi - lo). */
static inline int ex_simple_init_normalised(const char *args, int dim_default, double lo,
                                            double hi, void **out, nessai_model_info_t *info,
                                            char *err, size_t errlen)
{
    if (ex_simple_init(args, dim_default, 0, lo, hi, out, info, err, errlen))
        return 1;
    info->truth_log_evidence = -info->dim * log(hi - lo);
    return 0;
}

/* Define the plugin's description and entry point, for a model with its
 * own prior: log_prior, new_point and new_point_log_prob (NULL where the
 * loader's defaults serve). */
#define EX_DEFINE_MODEL_WITH_PRIOR(model_name, init_fn, fini_fn, loglike_fn, logprior_fn,     \
                                   newpoint_fn, newpointlogprob_fn)                            \
    static const nessai_model_t s_model = {                                                   \
        .abi_version = NESSAI_MODEL_ABI_VERSION,                                              \
        .struct_size = sizeof(nessai_model_t),                                                \
        .name = model_name,                                                                   \
        .init = init_fn,                                                                      \
        .fini = fini_fn,                                                                      \
        .log_likelihood = loglike_fn,                                                         \
        .log_prior = logprior_fn,                                                             \
        .new_point = newpoint_fn,                                                             \
        .new_point_log_prob = newpointlogprob_fn,                                             \
    };                                                                                        \
    EX_EXPORT const nessai_model_t *nessai_model_entry(void) { return &s_model; }

/* The same for a model with the box prior of its bounds. */
#define EX_DEFINE_MODEL(model_name, init_fn, fini_fn, loglike_fn)                             \
    EX_DEFINE_MODEL_WITH_PRIOR(model_name, init_fn, fini_fn, loglike_fn, NULL, NULL, NULL)

/* A tiny deterministic generator for simulated data (same on every
 * machine, independent of the sampler's RNG): splitmix64 + Box-Muller. */
typedef struct {
    uint64_t s;
} ex_rng_t;

static inline double ex_rng_uniform(ex_rng_t *r)
{
    uint64_t x = (r->s += 0x9E3779B97F4A7C15ULL);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return ((double)(x >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static inline double ex_rng_gaussian(ex_rng_t *r)
{
    double u1 = ex_rng_uniform(r), u2 = ex_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

#endif
