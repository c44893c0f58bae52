/*
 * coordinator/sampler/logacc.h - one-pass log-sum-exp accumulator: adds
 * terms given as logs without a buffer, rescaling the running sum whenever
 * a new maximum arrives, so no term overflows or underflows early.
 */
#ifndef NS_LOGACC_H
#define NS_LOGACC_H

#include <math.h>

typedef struct {
    double max;   /* largest log term so far, -inf before any */
    double sum;   /* sum of exp(term - max) */
} ns_logacc_t;

static inline void ns_logacc_init(ns_logacc_t *a)
{
    a->max = -INFINITY;
    a->sum = 0.0;
}

/* -inf (a zero term) and NaN terms are skipped. */
static inline void ns_logacc_add(ns_logacc_t *a, double t)
{
    if (t == -INFINITY || isnan(t))
        return;
    if (t > a->max) {
        a->sum = a->sum * exp(a->max - t) + 1.0;
        a->max = t;
    } else {
        a->sum += exp(t - a->max);
    }
}

/* log of the sum; -inf when nothing was added. */
static inline double ns_logacc_value(const ns_logacc_t *a)
{
    return a->max == -INFINITY ? -INFINITY : a->max + log(a->sum);
}

#endif
