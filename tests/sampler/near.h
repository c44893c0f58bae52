/* near.h - a tolerance check that prints both values when it fails
 * (this cmocka has no assert_double_equal). Include after cmocka.h. */
#ifndef NS_TEST_NEAR_H
#define NS_TEST_NEAR_H

#include <math.h>
#include <stdio.h>

#define assert_near(a, b, tol)                                                                   \
    do {                                                                                         \
        double a_ = (a), b_ = (b), t_ = (tol);                                                   \
        if (!(fabs(a_ - b_) <= t_)) {                                                            \
            print_error("%s = %.17g, expected %.17g (tolerance %g)\n", #a, a_, b_, t_);          \
            fail();                                                                              \
        }                                                                                        \
    } while (0)

#endif
