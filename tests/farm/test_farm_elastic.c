/* test_farm_elastic.c - workers join at any time and the chunk count
 * follows; no workers means a clear error after --worker-timeout. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "farm_fixture.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"

static void s_batch(ns_evaluator_t *ev, ns_model_t *model, size_t n, unsigned long long seed)
{
    double *x = th_farm_points(n, 4, seed);
    assert_true(th_farm_matches_inprocess(ev, model, x, n, 4));
    free(x);
}

static void test_chunk_count_follows_joins(void **state)
{
    ns_model_t *model = th_farm_model("dim=4");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    pid_t w[4];
    w[0] = th_farm_spawn_worker(ns_farm_endpoint(ev), NULL, NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, 1, 30), NS_OK);
    ns_farm_stats_t st;
    for (int b = 0; b < 3; b++) {
        s_batch(ev, model, 400, (unsigned long long)b);
        ns_farm_stats(ev, &st);
        assert_int_equal(st.last_k, 1);
    }
    for (int i = 1; i < 4; i++)
        w[i] = th_farm_spawn_worker(ns_farm_endpoint(ev), NULL, NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, 4, 30), NS_OK);
    for (int b = 0; b < 3; b++) {
        s_batch(ev, model, 401, 10 + (unsigned long long)b);
        ns_farm_stats(ev, &st);
        assert_int_equal(st.last_k, 4);
    }
    assert_int_equal(st.workers_seen, 4);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    for (int i = 0; i < 4; i++) {
        int code = -1;
        assert_true(th_wait_pid(w[i], 10, &code));
        assert_int_equal(code, 0);
    }
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

static void test_no_workers_times_out(void **state)
{
    char logpath[128];
    assert_int_equal(th_tmpfile(logpath, sizeof logpath, "coord"), 0);
    assert_int_equal(ns_log_open_file(logpath), NS_OK);
    ns_model_t *model = th_farm_model("dim=4");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", "worker-timeout", "1", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    double x[8] = {0}, logl[2];
    double t0 = ns_now();
    assert_int_equal(ns_evaluator_evaluate(ev, x, 2, 4, logl), NS_ERR_FARM);
    double dt = ns_now() - t0;
    assert_true(dt >= 1.0);
    assert_true(dt < 5.0);
    ns_log_close_file();
    assert_true(th_file_contains(logpath, "waiting for workers"));
    assert_true(th_file_contains(logpath, "no workers for 1 s (--worker-timeout)"));
    assert_true(th_file_contains(logpath, ns_farm_endpoint(ev)));
    unlink(logpath);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

typedef struct {
    const char *log;
    const char *endpoint;
    pid_t pid;
} s_joiner_t;

static void *s_joiner(void *arg)
{
    s_joiner_t *j = arg;
    double until = ns_now() + 20;
    while (ns_now() < until && !th_file_contains(j->log, "waiting for workers"))
        usleep(5000);
    j->pid = th_farm_spawn_worker(j->endpoint, NULL, NULL, NULL);
    return NULL;
}

/* A batch that starts with no workers completes once one joins. */
static void test_batch_waits_for_a_worker(void **state)
{
    char logpath[128];
    assert_int_equal(th_tmpfile(logpath, sizeof logpath, "coord"), 0);
    assert_int_equal(ns_log_open_file(logpath), NS_OK);
    ns_model_t *model = th_farm_model("dim=4");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", "worker-timeout", "30", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    s_joiner_t j = {logpath, ns_farm_endpoint(ev), 0};
    pthread_t th;
    pthread_create(&th, NULL, s_joiner, &j);
    s_batch(ev, model, 123, 42);
    pthread_join(th, NULL);
    ns_farm_stats_t st;
    ns_farm_stats(ev, &st);
    assert_int_equal(st.last_k, 1);
    ns_log_close_file();
    unlink(logpath);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    int code = -1;
    assert_true(th_wait_pid(j.pid, 10, &code));
    assert_int_equal(code, 0);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_count_follows_joins),
        cmocka_unit_test(test_no_workers_times_out),
        cmocka_unit_test(test_batch_waits_for_a_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
