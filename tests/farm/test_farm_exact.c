/* test_farm_exact.c - results through the farm equal in-process results
 * bit for bit, for any batch size, chunking and worker count. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "farm_fixture.h"
#include "nessai/error.h"

static void s_check_batches(ns_evaluator_t *ev, ns_model_t *model, size_t d, int batches)
{
    for (int b = 0; b < batches; b++) {
        size_t n = (size_t)(b == 0 ? 1 : (b * 379) % 3001 + 1);
        double *x = th_farm_points(n, d, (unsigned long long)b + 1);
        assert_non_null(x);
        assert_true(th_farm_matches_inprocess(ev, model, x, n, d));
        free(x);
    }
}

/* --n-pool 4 without --bind: four local processes, k = 4 for every batch. */
static void test_local_pool_bit_identical(void **state)
{
    ns_model_t *model = th_farm_model("dim=8");
    assert_non_null(model);
    ns_config_t *cfg = th_farm_config("n-pool", "4", NULL);
    assert_non_null(cfg);
    assert_true(ns_farm_wanted(cfg));
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    assert_string_equal(ns_evaluator_kind(ev), "farm");
    assert_int_equal(ns_farm_wait_live(ev, 4, 30), NS_OK);
    s_check_batches(ev, model, 8, 40);
    ns_farm_stats_t st;
    assert_int_equal(ns_farm_stats(ev, &st), NS_OK);
    assert_int_equal(st.batches, 40);
    assert_int_equal(st.last_k, 4);
    assert_int_equal(st.workers_seen, 4);
    assert_int_equal(st.malformed_dropped, 0);
    assert_true(st.worker_eval_wall_s > 0);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    assert_null(ev);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

/* --bind with workers started separately: k = live workers; --chunksize
 * raises k; the workers exit 0 at the end of the run. */
static void test_bind_chunksize_and_stop(void **state)
{
    ns_model_t *model = th_farm_model("dim=3");
    assert_non_null(model);
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    const char *ep = ns_farm_endpoint(ev);
    assert_non_null(ep);
    pid_t w[3];
    for (int i = 0; i < 3; i++)
        w[i] = th_farm_spawn_worker(ep, (const char *const[]){"--log-level", "warning", NULL}, NULL,
                               NULL);
    assert_int_equal(ns_farm_wait_live(ev, 3, 30), NS_OK);
    s_check_batches(ev, model, 3, 10);
    ns_farm_stats_t st;
    ns_farm_stats(ev, &st);
    assert_int_equal(st.last_k, 3);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);

    cfg = th_farm_config("bind", "tcp://127.0.0.1:*", "chunksize", "7", NULL);
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    /* the earlier workers were told to stop: they exit 0 */
    for (int i = 0; i < 3; i++) {
        int code = -1;
        assert_true(th_wait_pid(w[i], 10, &code));
        assert_int_equal(code, 0);
    }
    pid_t w2 = th_farm_spawn_worker(ns_farm_endpoint(ev), NULL, NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, 1, 30), NS_OK);
    size_t n = 100;
    double *x = th_farm_points(n, 3, 99);
    assert_true(th_farm_matches_inprocess(ev, model, x, n, 3));
    ns_farm_stats(ev, &st);
    assert_int_equal(st.last_k, 15);   /* ceil(100 / 7) */
    /* an empty batch is a no-op */
    double none[1];
    assert_int_equal(ns_evaluator_evaluate(ev, x, 0, 3, none), NS_OK);
    free(x);
    ns_evaluator_shutdown(ev);
    int code = -1;
    assert_true(th_wait_pid(w2, 10, &code));
    assert_int_equal(code, 0);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_pool_bit_identical),
        cmocka_unit_test(test_bind_chunksize_and_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
