/* test_farm_cli.c - nessai-worker's command line, --slots, --persistent,
 * reconnection, and the farm end to end through nessai-coordinator. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "cmocka_select.h"
#include "farm_fixture.h"
#include "result_compare.h"
#include "nessai/error.h"
#include "nessai/util.h"

#define COORDINATOR NESSAI_COORDINATOR_BIN
#define GAUSSIAN NESSAI_EXAMPLES_DIR "/libgaussian.so"

static void test_worker_command_line(void **state)
{
    char out[128];
    assert_int_equal(th_tmpfile(out, sizeof out, "cli"), 0);
    assert_int_equal(th_run((const char *const[]){NESSAI_WORKER_BIN, "--help", NULL}, out, 10), 0);
    assert_true(th_file_contains(out, "--connect"));
    assert_true(th_file_contains(out, "--slots"));
    assert_int_equal(th_run((const char *const[]){NESSAI_WORKER_BIN, "--version", NULL}, out, 10), 0);
    assert_true(th_file_contains(out, "farm protocol 2"));
    assert_int_equal(th_run((const char *const[]){NESSAI_WORKER_BIN, NULL}, out, 10), 2);
    assert_true(th_file_contains(out, "--connect tcp://HOST:PORT"));
    assert_int_equal(th_run((const char *const[]){NESSAI_WORKER_BIN, "--connect", "nowhere", NULL},
                           out, 10), 2);
    assert_int_equal(th_run((const char *const[]){NESSAI_WORKER_BIN, "--connect",
                                                 "tcp://127.0.0.1:1", "--bogus", NULL}, out, 10), 2);
    assert_int_equal(th_run((const char *const[]){NESSAI_WORKER_BIN, "--connect",
                                                 "tcp://127.0.0.1:1", "--slots", "0", NULL}, out, 10),
                     2);
    assert_int_equal(th_run((const char *const[]){NESSAI_WORKER_BIN, "--connect",
                                                 "tcp://127.0.0.1:1", "--model", "/nonexistent.so",
                                                 NULL}, out, 10), 2);
    unlink(out);
}

typedef struct {
    ns_evaluator_t *ev;
    uint64_t left;
} s_left_t;

static int s_all_left(void *arg)
{
    s_left_t *l = arg;
    ns_farm_stats_t st;
    ns_farm_stats(l->ev, &st);
    return st.workers_left >= l->left;
}

/* --slots 3: three registrations from one launcher; SIGTERM to the
 * launcher makes all three leave gracefully, exit 0. */
static void test_slots_and_sigterm(void **state)
{
    ns_model_t *model = th_farm_model("dim=4");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    pid_t launcher = th_farm_spawn_worker(ns_farm_endpoint(ev),
                                     (const char *const[]){"--slots", "3", NULL}, NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, 3, 30), NS_OK);
    double x[400];
    for (int i = 0; i < 400; i++)
        x[i] = 0.01 * i - 2.0;
    assert_true(th_farm_matches_inprocess(ev, model, x, 100, 4));
    kill(launcher, SIGTERM);
    s_left_t l = {ev, 3};
    assert_true(th_wait_for(s_all_left, &l, 10));
    int code = -1;
    assert_true(th_wait_pid(launcher, 10, &code));
    assert_int_equal(code, 0);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

/* A farm bound on a fixed port. libzmq closes listeners asynchronously,
 * so the port of a farm just destroyed may take a moment to be free:
 * retry for a few seconds. NULL on failure (no cmocka asserts: this also
 * runs in forked children). */
static ns_evaluator_t *s_farm_on(int port, ns_model_t *model, ns_config_t **cfg)
{
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    *cfg = th_farm_config("bind", ep, NULL);
    ns_evaluator_t *ev = NULL;
    double until = ns_now() + 5;
    while (ns_farm_evaluator_new(*cfg, model, NULL, &ev) != NS_OK && ns_now() < until)
        usleep(50000);
    return ev;
}

/* A worker whose coordinator vanishes (SIGKILL, no STOP) keeps retrying
 * and registers with the coordinator that comes back on the same address;
 * a --persistent worker stays after STOP and joins the next run. */
static void test_reconnect_and_persistent(void **state)
{
    char ep[64], wlog[128], plog[128];
    assert_int_equal(th_tmpfile(wlog, sizeof wlog, "worker"), 0);
    assert_int_equal(th_tmpfile(plog, sizeof plog, "persistent"), 0);
    int p[2], port = 0;
    assert_int_equal(pipe(p), 0);
    pid_t coord = fork();
    if (coord == 0) {   /* first coordinator, killed without a word */
        ns_model_t *m = th_farm_model("dim=4");
        ns_config_t *c = th_farm_config("bind", "tcp://127.0.0.1:*", NULL);
        ns_evaluator_t *ev = NULL;
        if (!m || !c || ns_farm_evaluator_new(c, m, NULL, &ev) != NS_OK)
            _exit(1);
        const char *colon = strrchr(ns_farm_endpoint(ev), ':');
        int bound = atoi(colon + 1);
        if (write(p[1], &bound, sizeof bound) != sizeof bound)
            _exit(1);
        for (;;)
            pause();
    }
    assert_int_equal(read(p[0], &port, sizeof port), sizeof port);
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    pid_t worker = th_farm_spawn_worker(ep, NULL, NULL, wlog);
    double until = ns_now() + 30;
    while (!th_file_contains(wlog, "registered id=") && ns_now() < until)
        usleep(10000);
    assert_true(th_file_contains(wlog, "registered id="));
    kill(coord, SIGKILL);
    waitpid(coord, NULL, 0);

    ns_model_t *model = th_farm_model("dim=4");
    ns_config_t *cfg = NULL;
    ns_evaluator_t *ev = s_farm_on(port, model, &cfg);
    assert_non_null(ev);
    pid_t persistent = th_farm_spawn_worker(ep, (const char *const[]){"--persistent", NULL}, NULL, plog);
    assert_int_equal(ns_farm_wait_live(ev, 2, 60), NS_OK);   /* silence 3 s + back-off */
    assert_true(th_file_contains(wlog, "has been silent"));
    assert_true(th_file_contains(wlog, "reconnecting"));
    double x[40];
    for (int i = 0; i < 40; i++)
        x[i] = 0.1 * i - 2.0;
    assert_true(th_farm_matches_inprocess(ev, model, x, 10, 4));
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    int code = -1;
    assert_true(th_wait_pid(worker, 10, &code));   /* STOP: the plain worker exits */
    assert_int_equal(code, 0);
    assert_false(th_wait_pid(persistent, 0.5, NULL));   /* the persistent one stays */

    ev = s_farm_on(port, model, &cfg);
    assert_non_null(ev);
    assert_int_equal(ns_farm_wait_live(ev, 1, 60), NS_OK);
    assert_true(th_farm_matches_inprocess(ev, model, x, 10, 4));
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    kill(persistent, SIGTERM);
    assert_true(th_wait_pid(persistent, 10, &code));
    assert_int_equal(code, 0);
    close(p[0]);
    close(p[1]);
    unlink(wlog);
    unlink(plog);
    ns_model_destroy(&model);
}

/* A farm destroyed without shutdown (the run stopped to checkpoint) does
 * not send STOP: a remote worker keeps retrying and joins the resumed run. */
static void test_destroy_without_shutdown_keeps_workers(void **state)
{
    ns_model_t *model = th_farm_model("dim=4");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    int port = atoi(strrchr(ns_farm_endpoint(ev), ':') + 1);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    pid_t worker = th_farm_spawn_worker(ep, NULL, NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, 1, 30), NS_OK);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    assert_false(th_wait_pid(worker, 1.0, NULL));   /* still there, retrying */
    ev = s_farm_on(port, model, &cfg);
    assert_non_null(ev);
    assert_int_equal(ns_farm_wait_live(ev, 1, 60), NS_OK);
    double x[40];
    for (int i = 0; i < 40; i++)
        x[i] = 0.05 * i - 1.0;
    assert_true(th_farm_matches_inprocess(ev, model, x, 10, 4));
    ns_evaluator_shutdown(ev);
    int code = -1;
    assert_true(th_wait_pid(worker, 10, &code));
    assert_int_equal(code, 0);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

/* End to end: no workers is exit 1 with a clear message. */
static void test_coordinator_no_workers(void **state)
{
    char out[128], dir[160];
    assert_int_equal(th_tmpfile(out, sizeof out, "e2e"), 0);
    snprintf(dir, sizeof dir, "%s.d", out);
    int code = th_run((const char *const[]){COORDINATOR, "--model", GAUSSIAN, "--bind",
                                           "tcp://127.0.0.1:*", "--worker-timeout", "1", "--nlive",
                                           "50", "--output", dir, NULL}, out, 60);
    assert_int_equal(code, 1);
    assert_true(th_file_contains(out, "no workers for 1 s (--worker-timeout)"));
    unlink(out);
    th_rm_rf(dir);
}

/* The whole result.json of two runs in these --output directories is the
 * same bit for bit (timings, farm counters and the evaluator aside). */
static void s_assert_same_result(const char *a, const char *b)
{
    char ra[320], rb[320], why[1200];
    snprintf(ra, sizeof ra, "%s/result.json", a);
    snprintf(rb, sizeof rb, "%s/result.json", b);
    const char *ignore[] = {"evaluator", NULL};
    if (rc_compare_files(ra, rb, ignore, why, sizeof why) != 0)
        fail_msg("%s and %s differ: %s", ra, rb, why);
}

/* End to end: the same seed gives the same evidence in-process and with a
 * local pool of 3 workers. */
static void test_coordinator_same_result_with_pool(void **state)
{
    char out[2][256], dir[2][300], lnz[2][256];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(th_tmpfile(out[i], sizeof out[i], "e2e"), 0);
        snprintf(dir[i], sizeof dir[i], "%.250s.d", out[i]);
        const char *argv[] = {COORDINATOR, "--model", GAUSSIAN, "--model-args", "dim=3",
                              "--nlive", "100", "--max-iteration", "300", "--seed", "11",
                              "--output", dir[i], i ? "--n-pool" : NULL, "3", NULL};
        assert_int_equal(th_run(argv, out[i], 120), 0);
        assert_true(th_file_line(out[i], "ln Z =", lnz[i], sizeof lnz[i]));
    }
    assert_string_equal(lnz[0], lnz[1]);
    s_assert_same_result(dir[0], dir[1]);
    char result[320];
    snprintf(result, sizeof result, "%s/result.json", dir[1]);
    /* every batch went out in k = --n-pool chunks, whoever had joined */
    assert_true(th_file_contains(result, "\"local_workers\": 3"));
    assert_true(th_file_contains(result, "\"last_k\": 3"));
    assert_true(th_file_contains(result, "\"malformed_dropped\": 0"));
    /* while the local pool starts, the log says so instead of asking the user
     * to start remote workers */
    assert_false(th_file_contains(out[1], "start some with nessai-worker"));
    for (int i = 0; i < 2; i++) {
        unlink(out[i]);
        th_rm_rf(dir[i]);
    }
}

/* End to end (docs/benchmarks.md §5, faults): workers killed with SIGKILL and
 * replaced at moments during a run; the evidence equals the undisturbed
 * in-process run with the same seed. */
static void test_coordinator_same_result_with_killed_workers(void **state)
{
    char out[2][256], dir[2][300], lnz[2][256];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(th_tmpfile(out[i], sizeof out[i], "e2e"), 0);
        snprintf(dir[i], sizeof dir[i], "%.250s.d", out[i]);
    }
    const char *ref[] = {COORDINATOR, "--model", GAUSSIAN, "--model-args", "dim=3,delay_ms=3",
                         "--nlive", "100", "--max-iteration", "400", "--seed", "5", "--output",
                         dir[0], NULL};
    assert_int_equal(th_run(ref, out[0], 120), 0);
    assert_true(th_file_line(out[0], "ln Z =", lnz[0], sizeof lnz[0]));

    const char *run[] = {COORDINATOR, "--model", GAUSSIAN, "--model-args", "dim=3,delay_ms=3",
                         "--nlive", "100", "--max-iteration", "400", "--seed", "5", "--output",
                         dir[1], "--bind", "tcp://127.0.0.1:*", "--worker-timeout", "60", NULL};
    pid_t coord = th_spawn_pid(run, NULL, out[1], 0);
    assert_true(coord > 0);
    /* the endpoint (a port the OS picked) is in the coordinator's log */
    char ep[128] = "";
    assert_true(th_wait_endpoint_in_file(out[1], ep, sizeof ep, 30));
    pid_t w[3];
    for (int i = 0; i < 3; i++)
        w[i] = th_farm_spawn_worker(ep, (const char *const[]){"--log-level", "error", NULL}, NULL, NULL);
    int kills = 0, code = -1, done = 0;
    unsigned long long r = 12345;
    while (!(done = th_wait_pid(coord, 0.25, &code)) && kills < 6) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int i = (int)((r >> 33) % 3);
        th_kill_pid(w[i]);
        w[i] = th_farm_spawn_worker(ep, (const char *const[]){"--log-level", "error", NULL}, NULL, NULL);
        kills++;
    }
    if (!done)
        assert_true(th_wait_pid(coord, 120, &code));
    assert_int_equal(code, 0);
    assert_true(kills >= 1);
    assert_true(th_file_line(out[1], "ln Z =", lnz[1], sizeof lnz[1]));
    assert_string_equal(lnz[0], lnz[1]);
    s_assert_same_result(dir[0], dir[1]);
    char result[320];
    snprintf(result, sizeof result, "%s/result.json", dir[1]);
    assert_true(th_file_contains(result, "\"workers_lost\":"));
    /* the kills were seen: workers lost, or their chunks sent again */
    assert_true(!th_file_contains(result, "\"workers_lost\": 0,")
                || !th_file_contains(result, "\"chunks_resent\": 0,"));
    for (int i = 0; i < 3; i++)
        th_wait_pid(w[i], 10, NULL);
    for (int i = 0; i < 2; i++) {
        unlink(out[i]);
        th_rm_rf(dir[i]);
    }
}

/* With a case name as the argument, only that case runs (one ctest each). */
int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_command_line),
        cmocka_unit_test(test_slots_and_sigterm),
        cmocka_unit_test(test_reconnect_and_persistent),
        cmocka_unit_test(test_destroy_without_shutdown_keeps_workers),
        cmocka_unit_test(test_coordinator_no_workers),
        cmocka_unit_test(test_coordinator_same_result_with_pool),
        cmocka_unit_test(test_coordinator_same_result_with_killed_workers),
    };
    return th_run_cases(argc, argv, tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
