/* test_farm_faults.c - killed, leaving, stuck and failing workers: the
 * batch completes identically, or the run stops with a clear error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmocka_select.h"
#include "farm_fixture.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"

#define NW 4

typedef struct {
    ns_model_t *model;
    ns_config_t *cfg;
    ns_evaluator_t *ev;
    pid_t pids[NW];
    char logs[NW][128];
} s_farm_t;

/* A bound farm with nworkers workers (env only for worker 0) and one
 * optional farm option (name NULL: none). */
static void s_start(s_farm_t *f, const char *model_args, int nworkers, const char *const *env,
                    const char *name, const char *value)
{
    memset(f, 0, sizeof *f);
    f->model = th_farm_model(model_args);
    assert_non_null(f->model);
    f->cfg = th_farm_config("bind", "tcp://127.0.0.1:*", name, value, NULL);
    assert_non_null(f->cfg);
    assert_int_equal(ns_farm_evaluator_new(f->cfg, f->model, NULL, &f->ev), NS_OK);
    for (int i = 0; i < nworkers; i++) {
        assert_int_equal(th_tmpfile(f->logs[i], sizeof f->logs[i], "worker"), 0);
        f->pids[i] = th_farm_spawn_worker(ns_farm_endpoint(f->ev),
                                     (const char *const[]){"--log-level", "debug", NULL},
                                     i == 0 ? env : NULL, f->logs[i]);
        assert_true(f->pids[i] > 0);
    }
    assert_int_equal(ns_farm_wait_live(f->ev, (size_t)nworkers, 30), NS_OK);
}

static void s_stop(s_farm_t *f)
{
    ns_evaluator_shutdown(f->ev);
    ns_evaluator_destroy(&f->ev);
    for (int i = 0; i < NW; i++) {
        if (f->pids[i] > 0 && !th_wait_pid(f->pids[i], 10, NULL))
            th_kill_pid(f->pids[i]);
        if (f->logs[i][0])
            unlink(f->logs[i]);
    }
    ns_config_destroy(&f->cfg);
    ns_model_destroy(&f->model);
}

typedef struct {
    const char *log;      /* wait for this worker to start a chunk ... */
    pid_t pid;            /* ... then signal it */
    int sig;
    int fired;
} s_killer_t;

static void *s_killer(void *arg)
{
    s_killer_t *k = arg;
    double until = ns_now() + 20;
    while (ns_now() < until) {
        if (th_file_contains(k->log, "evaluating chunk")) {
            kill(k->pid, k->sig);
            k->fired = 1;
            return NULL;
        }
        usleep(2000);
    }
    return NULL;
}

/* Evaluate n points while a thread signals worker 0 once it is busy. */
static double s_batch_with_signal(s_farm_t *f, int sig, size_t n, int *fired)
{
    double *x = th_farm_points(n, 4, 7), *want = malloc(n * 8), *got = malloc(n * 8);
    th_farm_inprocess(f->model, x, n, want);
    s_killer_t k = {f->logs[0], f->pids[0], sig, 0};
    pthread_t th;
    pthread_create(&th, NULL, s_killer, &k);
    double t0 = ns_now();
    assert_int_equal(ns_evaluator_evaluate(f->ev, x, n, 4, got), NS_OK);
    double dt = ns_now() - t0;
    pthread_join(th, NULL);
    assert_memory_equal(got, want, n * 8);
    *fired = k.fired;
    free(x);
    free(want);
    free(got);
    return dt;
}

static int s_lost_one(void *ev)
{
    ns_farm_stats_t st;
    ns_farm_stats(ev, &st);
    return st.workers_lost >= 1;
}

static void test_sigkill_mid_batch(void **state)
{
    s_farm_t f;
    s_start(&f, "dim=4,delay_ms=2", NW, NULL, NULL, NULL);
    int fired = 0;
    double dt0 = s_batch_with_signal(&f, SIGKILL, 1000, &fired); /* 250 points x 2 ms per chunk */
    print_message("batch with a SIGKILLed worker, default heartbeats: %.2f s\n", dt0);
    assert_true(fired);
    ns_farm_stats_t st;
    /* the dead worker's chunk may be done already (sent again as a
     * straggler's): its loss is still noticed, by heartbeat silence */
    assert_true(th_wait_for(s_lost_one, f.ev, 10));
    ns_farm_stats(f.ev, &st);
    assert_int_equal(st.workers_lost, 1);
    assert_true(st.chunks_resent >= 1);
    assert_int_equal(st.workers_live, NW - 1);
    int code;
    assert_true(th_wait_pid(f.pids[0], 5, &code));
    assert_int_equal(code, 128 + SIGKILL);
    f.pids[0] = 0;
    s_stop(&f);
}

/* --heartbeat-interval: with 0.1 s beats (liveness 3) a SIGKILLed worker is
 * counted as lost after ~0.3 s of silence instead of 3 s, and its chunk is
 * re-sent at once; the killed worker's own beats stop with it. */
static void test_sigkill_fast_heartbeat(void **state)
{
    s_farm_t f;
    s_start(&f, "dim=4,delay_ms=2", NW, NULL, "heartbeat-interval", "0.1");
    int fired = 0;
    double dt = s_batch_with_signal(&f, SIGKILL, 1000, &fired);
    assert_true(fired);
    /* two chunk times (0.5 s each) plus 0.3 s of silence, well below the
     * 3 s of silence the default heartbeat would need */
    print_message("batch with a SIGKILLed worker, 0.1 s heartbeats: %.2f s\n", dt);
    assert_true(dt < 2.5);
    ns_farm_stats_t st;
    ns_farm_stats(f.ev, &st);
    assert_int_equal(st.workers_lost, 1);
    assert_true(st.chunks_resent >= 1);
    /* the survivors heard the interval in WELCOME and keep beating at it */
    assert_int_equal(st.workers_live, NW - 1);
    assert_true(th_wait_pid(f.pids[0], 5, NULL));
    f.pids[0] = 0;
    s_stop(&f);
}

/* SIGTERM: the chunk comes back at once; no heartbeat expiry (3 s) and no
 * deadline (60 s) is waited for. */
static void test_sigterm_hands_back(void **state)
{
    s_farm_t f;
    s_start(&f, "dim=4,delay_ms=2", NW, NULL, NULL, NULL);
    int fired = 0;
    double dt = s_batch_with_signal(&f, SIGTERM, 1000, &fired);
    assert_true(fired);
    /* two chunk times (0.5 s each) plus slack: less than the 3 s of
     * heartbeat silence the loss path would need before re-sending */
    assert_true(dt < 2.9);
    ns_farm_stats_t st;
    ns_farm_stats(f.ev, &st);
    assert_int_equal(st.workers_left, 1);
    assert_int_equal(st.workers_lost, 0);
    assert_int_equal(st.handed_back, 1);
    assert_int_equal(st.deadline_misses, 0);
    int code = -1;
    assert_true(th_wait_pid(f.pids[0], 5, &code));
    assert_int_equal(code, 0);
    assert_true(th_file_contains(f.logs[0], "handing back"));
    f.pids[0] = 0;
    s_stop(&f);
}

/* A worker that heartbeats but never finishes: the chunk deadline re-sends. */
static void test_stuck_worker_deadline(void **state)
{
    s_farm_t f;
    const char *const env[] = {"NS_FARMTEST_HANG=1", NULL};
    s_start(&f, "dim=4", 2, env, "chunk-timeout", "0.5");
    size_t n = 64;
    double *x = th_farm_points(n, 4, 3);
    ns_farm_stats_t st;
    /* Only worker 0 hangs. Under load the other worker can ask for both
     * chunks of a batch before worker 0 asks for one; then nothing was stuck
     * yet, so batches are repeated (at most 10) until worker 0 held one. */
    for (int b = 0; b < 10; b++) {
        assert_true(th_farm_matches_inprocess(f.ev, f.model, x, n, 4));
        ns_farm_stats(f.ev, &st);
        if (st.deadline_misses + st.speculative >= 1)
            break;
    }
    /* re-sent by its deadline, or earlier as a straggler's chunk */
    assert_true(st.deadline_misses + st.speculative >= 1);
    assert_int_equal(st.workers_lost, 0);   /* it still heartbeats */
    free(x);
    s_stop(&f);
}

/* Every worker fails the evaluation: bounded retries, then a clear error. */
static void test_failing_chunks_stop_the_run(void **state)
{
    char logpath[128];
    assert_int_equal(th_tmpfile(logpath, sizeof logpath, "coord"), 0);
    assert_int_equal(ns_log_open_file(logpath), NS_OK);
    s_farm_t f;
    memset(&f, 0, sizeof f);
    f.model = th_farm_model("dim=4");
    f.cfg = th_farm_config("bind", "tcp://127.0.0.1:*", "max-retries", "2", NULL);
    assert_int_equal(ns_farm_evaluator_new(f.cfg, f.model, NULL, &f.ev), NS_OK);
    const char *const env[] = {"NS_FARMTEST_FAIL_BATCH=1", NULL};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(th_tmpfile(f.logs[i], sizeof f.logs[i], "worker"), 0);
        f.pids[i] = th_farm_spawn_worker(ns_farm_endpoint(f.ev), NULL, env, f.logs[i]);
    }
    assert_int_equal(ns_farm_wait_live(f.ev, 2, 30), NS_OK);
    size_t n = 50;
    double *x = th_farm_points(n, 4, 5), got[50];
    assert_int_equal(ns_evaluator_evaluate(f.ev, x, n, 4, got), NS_ERR_FARM);
    ns_farm_stats_t st;
    ns_farm_stats(f.ev, &st);
    assert_true(st.failed_chunks >= 3);
    assert_int_equal(st.batches, 0);
    ns_log_close_file();
    assert_true(th_file_contains(logpath, "failed 3 times"));
    assert_true(th_file_contains(logpath, "evaluation failure requested"));
    unlink(logpath);
    free(x);
    s_stop(&f);
}

/* With a case name as the argument, only that case runs (one ctest each). */
int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_mid_batch),
        cmocka_unit_test(test_sigkill_fast_heartbeat),
        cmocka_unit_test(test_sigterm_hands_back),
        cmocka_unit_test(test_stuck_worker_deadline),
        cmocka_unit_test(test_failing_chunks_stop_the_run),
    };
    return th_run_cases(argc, argv, tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
