/*
 * bench_util.h - helpers shared by the benchmark programs. Header-only
 * (static) so each program stays one source file.
 */
#ifndef NESSAI_BENCH_UTIL_H
#define NESSAI_BENCH_UTIL_H

#include <stddef.h>
#include <stdlib.h>

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n-1], n > 0; sorts v in place. */
static inline double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
