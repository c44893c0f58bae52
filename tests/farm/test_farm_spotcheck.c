/* test_farm_spotcheck.c - a worker that passes the canary but then returns
 * wrong values is caught by the coordinator's spot checks (docs/protocol.md
 * §3, "Spot checks"): it is refused, its chunks are evaluated again, and the
 * batch is bit-identical to an honest run. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "farm_fixture.h"
#include "nessai/error.h"

static void s_run(const char *fraction, int expect_caught)
{
    ns_model_t *model = th_farm_model("dim=3");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", "spot-check", fraction, NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    char wlog[128];
    th_tmpfile(wlog, sizeof wlog, "liar");
    pid_t w[4];
    const char *const lie[] = {"NS_FARMTEST_LIE=1e-9", NULL};
    for (int i = 0; i < 4; i++)
        w[i] = th_farm_spawn_worker(ns_farm_endpoint(ev), NULL, i == 0 ? lie : NULL,
                               i == 0 ? wlog : NULL);
    assert_int_equal(ns_farm_wait_live(ev, 4, 30), NS_OK);
    size_t n = 1000;
    double *x = th_farm_points(n, 3, 21), *want = malloc(n * 8), *got = malloc(n * 8);
    th_farm_inprocess(model, x, n, want);
    int differs = 0;
    for (int b = 0; b < 10; b++) {
        assert_int_equal(ns_evaluator_evaluate(ev, x, n, 3, got), NS_OK);
        differs |= memcmp(got, want, n * 8) != 0;
    }
    ns_farm_stats_t st;
    ns_farm_stats(ev, &st);
    fprintf(stderr, "checked %llu skipped %llu failures %llu refused %llu\n", (unsigned long long)st.spot_checked, (unsigned long long)st.spot_skipped, (unsigned long long)st.spot_failures, (unsigned long long)st.refused);
    if (expect_caught) {
        assert_false(differs);
        assert_int_equal(st.spot_failures, 1);
        assert_int_equal(st.refused, 1);
        assert_true(st.spot_checked >= 4);
        int code = -1;
        assert_true(th_wait_pid(w[0], 10, &code));
        assert_int_equal(code, 1);
        assert_true(th_file_contains(wlog, "spot check failed"));
        w[0] = 0;
    } else {
        assert_true(differs);   /* without checks the liar's values are used */
        assert_int_equal(st.spot_checked, 0);
    }
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    for (int i = 0; i < 4; i++)
        if (w[i] > 0 && !th_wait_pid(w[i], 10, NULL))
            th_kill_pid(w[i]);
    free(x);
    free(want);
    free(got);
    unlink(wlog);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

static void test_liar_caught(void **state)
{
    s_run("0.01", 1);
}

static void test_liar_unseen_without_checks(void **state)
{
    s_run("0", 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_liar_caught),
        cmocka_unit_test(test_liar_unseen_without_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
