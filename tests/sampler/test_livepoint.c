/* test_livepoint.c - insertion into the sorted live points and the
 * insertion index (docs/algorithm.md §1.4: searchsorted-left on the array that still
 * holds the worst point, minus one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "livepoint.h"

enum { D = 2, ST = D + 3, N = 5 };

static void s_fill(double *live, const double *logl)
{
    for (int i = 0; i < N; i++) {
        live[i * ST + 0] = 10.0 * i;       /* x0 tags the row */
        live[i * ST + 1] = -1.0 * i;
        live[i * ST + NS_LP_LOGP(D)] = -3.0;
        live[i * ST + NS_LP_LOGL(D)] = logl[i];
        live[i * ST + NS_LP_IT(D)] = 0.0;
    }
}

static void s_row(double *row, double logl, double tag)
{
    row[0] = tag;
    row[1] = tag;
    row[NS_LP_LOGP(D)] = -3.0;
    row[NS_LP_LOGL(D)] = logl;
    row[NS_LP_IT(D)] = 7.0;
}

static void test_insert_positions(void **state)
{
    (void)state;
    const double logl[N] = {1.0, 2.0, 3.0, 4.0, 5.0};
    const struct {
        double new_logl;
        size_t index;
        double expect[N];
    } cases[] = {
        {1.5, 0, {1.5, 2.0, 3.0, 4.0, 5.0}},   /* just above the worst: bottom */
        {2.0, 0, {2.0, 2.0, 3.0, 4.0, 5.0}},   /* a tie goes below the equal point (left) */
        {2.5, 1, {2.0, 2.5, 3.0, 4.0, 5.0}},
        {4.5, 3, {2.0, 3.0, 4.0, 4.5, 5.0}},
        {5.0, 3, {2.0, 3.0, 4.0, 5.0, 5.0}},
        {9.0, 4, {2.0, 3.0, 4.0, 5.0, 9.0}},   /* new maximum: top, index nlive - 1 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double live[N * ST], row[ST];
        s_fill(live, logl);
        s_row(row, cases[c].new_logl, 99.0);
        size_t k = ns_lp_insert(live, N, D, row);
        assert_int_equal(k, cases[c].index);
        for (int i = 0; i < N; i++)
            assert_true(live[i * ST + NS_LP_LOGL(D)] == cases[c].expect[i]);
        /* the whole row moved, not only logL */
        assert_true(live[k * ST + 0] == 99.0);
        assert_true(live[k * ST + NS_LP_IT(D)] == 7.0);
        /* the worst point (tag 0) is gone, the others kept their rows */
        for (int i = 0; i < N; i++)
            if (i != (int)k)
                assert_true(live[i * ST + 0] != 0.0 && live[i * ST + 1] == -live[i * ST + 0] / 10.0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_insert_positions)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
