/*
 * cmocka_select.h - run one case of a cmocka group, named on the command
 * line, so that ctest can list the cases of a long test as entries of
 * their own. Include after cmocka.h.
 */
#ifndef NESSAI_TEST_CMOCKA_SELECT_H
#define NESSAI_TEST_CMOCKA_SELECT_H

#include <stdio.h>
#include <string.h>

/* Restrict the group to the case called name (NULL: all of them). 0 to
 * run; 1 when name is "--list" (the case names are printed, one a line,
 * for the ctest that keeps CMake's list of entries equal to them); -1 with
 * a message naming the cases when there is none of that name (a filter
 * that selects nothing would pass without testing anything). */
static inline int th_select_case(const char *name, const struct CMUnitTest *tests, size_t n)
{
    if (!name)
        return 0;
    if (strcmp(name, "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", tests[i].name);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(tests[i].name, name) == 0) {
            cmocka_set_test_filter(name);
            return 0;
        }
    fprintf(stderr, "no test case named '%s'; the cases are:\n", name);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  %s\n", tests[i].name);
    return -1;
}

/* main() of a test program whose cases ctest runs one by one: "PROGRAM"
 * runs them all, "PROGRAM CASE" one, "PROGRAM --list" names them (exit 0);
 * anything else is exit 2. */
static inline int th_run_cases(int argc, char **argv, const struct CMUnitTest *tests, size_t n,
                               CMFixtureFunction setup, CMFixtureFunction teardown)
{
    int sel = argc > 2 ? -1 : th_select_case(argc > 1 ? argv[1] : NULL, tests, n);
    if (sel != 0)
        return sel < 0 ? 2 : 0;
    return _cmocka_run_group_tests(argv[0], tests, n, setup, teardown);
}

#endif
