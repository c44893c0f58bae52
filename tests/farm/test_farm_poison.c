/* test_farm_poison.c - points that crash or hang every worker end the run
 * with one clear error in bounded time (docs/protocol.md §3, "Poison
 * chunks"); a local pool whose workers are all gone fails at once, without
 * advice meant for remote workers; +inf from the model is an error. The
 * crash is SIGSEGV (SIGABRT under AddressSanitizer). */
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
#include "nessai/log.h"
#include "nessai/util.h"

#define N 64
#define D 2

/* N points at the origin but one, row `poison`, at x0 = -4.95. */
static void s_points(double *x, size_t poison)
{
    for (size_t i = 0; i < N; i++) {
        x[i * D] = 0.01 * (double)i;
        x[i * D + 1] = -0.02 * (double)i;
    }
    x[poison * D] = -4.95;
}

typedef struct {
    char log[128];
    ns_model_t *model;
    ns_config_t *cfg;
    ns_evaluator_t *ev;
} s_fx_t;

static void s_open(s_fx_t *f, ns_config_t *cfg)
{
    th_tmpfile(f->log, sizeof f->log, "poison");
    assert_int_equal(ns_log_open_file(f->log), NS_OK);
    f->model = th_farm_model("dim=2");
    assert_non_null(f->model);
    f->cfg = cfg;
    assert_non_null(cfg);
    assert_int_equal(ns_farm_evaluator_new(cfg, f->model, NULL, &f->ev), NS_OK);
}

static void s_close(s_fx_t *f)
{
    ns_evaluator_shutdown(f->ev);
    ns_evaluator_destroy(&f->ev);
    ns_config_destroy(&f->cfg);
    ns_model_destroy(&f->model);
    ns_log_close_file();
    unlink(f->log);
}

/* Evaluate; the batch must fail within limit_s. */
static void s_expect_failure(s_fx_t *f, const double *x, double limit_s)
{
    double logl[N];
    double t0 = ns_now();
    assert_int_equal(ns_evaluator_evaluate(f->ev, x, N, D, logl), NS_ERR_FARM);
    double took = ns_now() - t0;
    fprintf(stderr, "the batch failed after %.2f s\n", took);
    assert_true(took < limit_s);
}

static void test_crashing_points_local_pool(void **state)
{
    setenv("NS_FARMTEST_CRASH", "1", 1);
    s_fx_t f;
    s_open(&f, th_farm_config("n-pool", "4", "worker-timeout", "300", NULL));
    assert_int_equal(ns_farm_wait_live(f.ev, 4, 30), NS_OK);
    double x[N * D];
    s_points(x, 40);   /* chunk 2: rows 32..47 */
    s_expect_failure(&f, x, 30);   /* replacements crash as well */
    unsetenv("NS_FARMTEST_CRASH");
    assert_true(th_file_contains(f.log, "batch 1, chunk 2 (points 32..47"));
    assert_true(th_file_contains(f.log, "killed by signal "));
    assert_true(th_file_contains(f.log, "3 workers lost or no result in time"));
    assert_false(th_file_contains(f.log, "nessai-worker --connect"));
    s_close(&f);
}

static void test_local_pool_all_gone(void **state)
{
    setenv("NS_FARMTEST_CRASH", "1", 1);
    s_fx_t f;
    s_open(&f, th_farm_config("n-pool", "2", "worker-timeout", "300", "max-respawns", "0", NULL));
    unsetenv("NS_FARMTEST_CRASH");
    assert_int_equal(ns_farm_wait_live(f.ev, 2, 30), NS_OK);
    double x[N * D];
    s_points(x, 3);
    s_expect_failure(&f, x, 30);
    assert_true(th_file_contains(f.log, "all 2 local workers have exited"));
    assert_true(th_file_contains(f.log, "killed by signal "));
    assert_false(th_file_contains(f.log, "nessai-worker --connect"));
    assert_false(th_file_contains(f.log, "--worker-timeout"));
    s_close(&f);
}

/* The first workers crash on the points, their replacements (started
 * without the crash switch) evaluate them: the batch is exact. */
static void test_local_workers_replaced(void **state)
{
    setenv("NS_FARMTEST_CRASH", "1", 1);
    s_fx_t f;
    s_open(&f, th_farm_config("n-pool", "2", "max-chunk-faults", "5", NULL));
    unsetenv("NS_FARMTEST_CRASH");
    assert_int_equal(ns_farm_wait_live(f.ev, 2, 30), NS_OK);
    ns_model_t *ref = th_farm_model("dim=2");
    double x[N * D], want[N], got[N];
    s_points(x, 3);
    th_farm_inprocess(ref, x, N, want);
    assert_int_equal(ns_evaluator_evaluate(f.ev, x, N, D, got), NS_OK);
    assert_memory_equal(got, want, sizeof got);
    assert_true(th_file_contains(f.log, "started pid="));
    ns_farm_stats_t st;
    ns_farm_stats(f.ev, &st);
    assert_true(st.workers_lost >= 1);
    ns_model_destroy(&ref);
    s_close(&f);
}

static void test_hanging_points(void **state)
{
    s_fx_t f;
    s_open(&f, th_farm_config("bind", "tcp://127.0.0.1:*", "chunk-timeout", "0.5", NULL));
    pid_t w[3];
    const char *const env[] = {"NS_FARMTEST_HANG_X=1", NULL};
    for (int i = 0; i < 3; i++)
        w[i] = th_farm_spawn_worker(ns_farm_endpoint(f.ev), NULL, env, NULL);
    assert_int_equal(ns_farm_wait_live(f.ev, 3, 30), NS_OK);
    double x[N * D];
    s_points(x, 10);
    s_expect_failure(&f, x, 30);
    assert_true(th_file_contains(f.log, "no result within 0.5 s"));
    assert_true(th_file_contains(f.log, "the model crashes or hangs on these points"));
    assert_true(th_file_contains(f.log, "batch 1, chunk 0 (points 0..21, first x = ("));
    s_close(&f);
    for (int i = 0; i < 3; i++)
        th_kill_pid(w[i]);
}

static void test_positive_infinity_is_an_error(void **state)
{
    setenv("NS_FARMTEST_POSINF", "1", 1);
    s_fx_t f;
    s_open(&f, th_farm_config("n-pool", "2", NULL));
    unsetenv("NS_FARMTEST_POSINF");
    assert_int_equal(ns_farm_wait_live(f.ev, 2, 30), NS_OK);
    double x[N * D];
    s_points(x, 0);
    s_expect_failure(&f, x, 30);
    assert_true(th_file_contains(f.log, "the model returned logL = +inf at point"));
    s_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crashing_points_local_pool),
        cmocka_unit_test(test_local_pool_all_gone),
        cmocka_unit_test(test_local_workers_replaced),
        cmocka_unit_test(test_hanging_points),
        cmocka_unit_test(test_positive_infinity_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
