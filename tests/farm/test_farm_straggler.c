/* test_farm_straggler.c - one worker 20x slower than three others: its
 * chunk is sent again to an idle worker (docs/protocol.md §3,
 * "Stragglers"), so a batch costs about what the three fast workers cost,
 * with the same values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "farm_fixture.h"
#include "nessai/error.h"
#include "nessai/util.h"

static void test_one_slow_worker_of_four(void **state)
{
    ns_model_t *model = th_farm_model("dim=2,delay_ms=1");
    assert_non_null(model);
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    pid_t w[4];
    const char *const slow[] = {"NS_FARMTEST_SLOW=20", NULL};
    for (int i = 0; i < 4; i++)
        w[i] = th_farm_spawn_worker(ns_farm_endpoint(ev), NULL, i == 0 ? slow : NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, 4, 30), NS_OK);
    /* 4 chunks of 100 points: 0.1 s on a fast worker, 2 s on the slow one */
    size_t n = 400;
    double *x = th_farm_points(n, 2, 17), *want = malloc(n * 8), *got = malloc(n * 8);
    th_farm_inprocess(model, x, n, want);   /* 0.4 s */
    double worst = 0;
    for (int b = 0; b < 4; b++) {
        double t0 = ns_now();
        assert_int_equal(ns_evaluator_evaluate(ev, x, n, 2, got), NS_OK);
        double took = ns_now() - t0;
        assert_memory_equal(got, want, n * 8);
        fprintf(stderr, "batch %d: %.3f s\n", b + 1, took);
        if (took > worst)
            worst = took;
    }
    /* three workers: 2 rounds of 0.1 s; without re-sending, 2 s */
    assert_true(worst < 0.8);
    ns_farm_stats_t st;
    ns_farm_stats(ev, &st);
    assert_true(st.speculative >= 1);
    assert_int_equal(st.deadline_misses, 0);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    for (int i = 0; i < 4; i++)
        if (!th_wait_pid(w[i], 10, NULL))
            th_kill_pid(w[i]);
    free(x);
    free(want);
    free(got);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_slow_worker_of_four),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
