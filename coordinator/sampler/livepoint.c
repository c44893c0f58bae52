/* livepoint.c - keeping the live points sorted (docs/algorithm.md §1.4). */
#include "livepoint.h"

#include <string.h>

size_t ns_lp_insert(double *live, size_t n, size_t d, const double *row)
{
    const size_t st = NS_LP_STRIDE(d), col = NS_LP_LOGL(d);
    const double logl = row[col];
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (live[mid * st + col] < logl)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t k = lo ? lo : 1;   /* lo >= 1 whenever logl beats the worst point */
    memmove(live, live + st, (k - 1) * st * sizeof(double));
    memcpy(live + (k - 1) * st, row, st * sizeof(double));
    return k - 1;
}
