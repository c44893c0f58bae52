/* test_result_compare.c - the exact-continuation comparison of result.json
 * files: timings and farm counters ignored, everything else bit for bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "result_compare.h"

static void s_write(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

typedef struct {
    const char *b;   /* second file, compared with s_base */
    int rv;
    const char *needle;
} s_case_t;

static const char s_base[] =
    "{\"log_evidence\": -3.25, \"sampling_time\": 1.5, \"seed\": 7,"
    " \"history\": {\"logZ\": [1, 2], \"sampling_time\": [0.1],"
    " \"checkpoint_iterations\": []},"
    " \"farm\": {\"workers_seen\": 3}, \"nested_samples\": {\"x\": [0.1, -Infinity]},"
    " \"training_time\": 2.0, \"final_p_value\": null}";

static void test_table(void **state)
{
    (void)state;
    const s_case_t cases[] = {
        {s_base, 0, "identical"},
        /* timings, farm and signal checkpoints may differ */
        {"{\"log_evidence\": -3.25, \"sampling_time\": 9, \"seed\": 7,"
         " \"history\": {\"logZ\": [1, 2], \"sampling_time\": [5, 6],"
         " \"checkpoint_iterations\": [40]},"
         " \"farm\": {\"workers_seen\": 1}, \"nested_samples\": {\"x\": [0.1, -Infinity]},"
         " \"final_p_value\": null}", 0, "identical"},
        {"{\"log_evidence\": -3.2500000000000004, \"seed\": 7,"
         " \"history\": {\"logZ\": [1, 2]}, \"nested_samples\": {\"x\": [0.1, -Infinity]},"
         " \"final_p_value\": null}", 1, "log_evidence"},
        {"{\"log_evidence\": -3.25, \"seed\": 7,"
         " \"history\": {\"logZ\": [1, 2, 3]}, \"nested_samples\": {\"x\": [0.1, -Infinity]},"
         " \"final_p_value\": null}", 1, "history.logZ (lengths"},
        {"{\"log_evidence\": -3.25, \"seed\": 7,"
         " \"history\": {\"logZ\": [1, 2]}, \"nested_samples\": {\"x\": [0.1, -Infinity]},"
         " \"final_p_value\": null, \"extra\": 1}", 1, "extra (only in the second)"},
        {"{\"log_evidence\": -3.25, \"seed\": 7,"
         " \"history\": {\"logZ\": [1, 2]}, \"nested_samples\": {\"x\": [0.1, -Infinity]}}",
         1, "final_p_value (only in the first)"},
        {"not json", -1, "not valid JSON"},
    };
    char a[] = "/tmp/ns-rc-a-XXXXXX", b[] = "/tmp/ns-rc-b-XXXXXX";
    int fa = mkstemp(a), fb = mkstemp(b);
    assert_true(fa >= 0 && fb >= 0);
    close(fa);
    close(fb);
    s_write(a, s_base);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_write(b, cases[i].b);
        char why[1200];
        int rv = rc_compare_files(a, b, NULL, why, sizeof why);
        if (rv != cases[i].rv || !strstr(why, cases[i].needle))
            fail_msg("case %zu: rv %d (%s), expected %d with '%s'", i, rv, why, cases[i].rv,
                     cases[i].needle);
    }
    /* An extra ignored key. */
    s_write(b, "{\"log_evidence\": -3.25, \"seed\": 8,"
               " \"history\": {\"logZ\": [1, 2]}, \"nested_samples\": {\"x\": [0.1, -Infinity]},"
               " \"final_p_value\": null}");
    const char *extra[] = {"seed", NULL};
    char why[1200];
    assert_int_equal(rc_compare_files(a, b, extra, why, sizeof why), 0);
    assert_int_equal(rc_compare_files(a, "/nonexistent/x.json", NULL, why, sizeof why), -1);
    unlink(a);
    unlink(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
