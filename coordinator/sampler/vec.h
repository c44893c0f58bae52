/*
 * coordinator/sampler/vec.h - growable arrays of doubles and int64 used for
 * the nested samples, insertion indices and history (internal).
 */
#ifndef NS_VEC_H
#define NS_VEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nessai/error.h"

typedef struct {
    double *v;    /* owned */
    size_t n;     /* used entries */
    size_t cap;   /* allocated entries */
} ns_dvec_t;

typedef struct {
    int64_t *v;   /* owned */
    size_t n;
    size_t cap;
} ns_ivec_t;

static inline int ns_dvec_reserve(ns_dvec_t *a, size_t n)
{
    if (n <= a->cap)
        return NS_OK;
    size_t cap = a->cap ? a->cap : 64;
    while (cap < n)
        cap *= 2;
    double *p = realloc(a->v, cap * sizeof *p);
    if (!p)
        return NS_ERR_NOMEM;
    a->v = p;
    a->cap = cap;
    return NS_OK;
}

static inline int ns_dvec_push_n(ns_dvec_t *a, const double *x, size_t k)
{
    if (ns_dvec_reserve(a, a->n + k) != NS_OK)
        return NS_ERR_NOMEM;
    memcpy(a->v + a->n, x, k * sizeof *x);
    a->n += k;
    return NS_OK;
}

static inline int ns_dvec_push(ns_dvec_t *a, double x) { return ns_dvec_push_n(a, &x, 1); }

static inline void ns_dvec_free(ns_dvec_t *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

static inline int ns_ivec_push(ns_ivec_t *a, int64_t x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        int64_t *p = realloc(a->v, cap * sizeof *p);
        if (!p)
            return NS_ERR_NOMEM;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return NS_OK;
}

static inline void ns_ivec_free(ns_ivec_t *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

#endif
