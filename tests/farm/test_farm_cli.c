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

#include "farm_testutil.h"
#include "nessai/error.h"
#include "nessai/util.h"

#define COORDINATOR NESSAI_BIN_DIR "/nessai-coordinator"
#define GAUSSIAN NESSAI_EXAMPLES_DIR "/libgaussian.so"

/* Run argv with stdout+stderr to path; returns the exit code (-1 on timeout). */
static int s_run(const char *const *argv, const char *path, double timeout_s)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int code = -1;
    if (!ft_wait_exit(pid, timeout_s, &code)) {
        ft_kill(pid);
        return -1;
    }
    return code;
}

static void test_worker_command_line(void **state)
{
    char out[128];
    ft_tmpfile(out, sizeof out, "cli");
    assert_int_equal(s_run((const char *const[]){NESSAI_WORKER_BIN, "--help", NULL}, out, 10), 0);
    assert_true(ft_file_contains(out, "--connect"));
    assert_true(ft_file_contains(out, "--slots"));
    assert_int_equal(s_run((const char *const[]){NESSAI_WORKER_BIN, "--version", NULL}, out, 10), 0);
    assert_true(ft_file_contains(out, "farm protocol 1"));
    assert_int_equal(s_run((const char *const[]){NESSAI_WORKER_BIN, NULL}, out, 10), 2);
    assert_true(ft_file_contains(out, "--connect tcp://HOST:PORT"));
    assert_int_equal(s_run((const char *const[]){NESSAI_WORKER_BIN, "--connect", "nowhere", NULL},
                           out, 10), 2);
    assert_int_equal(s_run((const char *const[]){NESSAI_WORKER_BIN, "--connect",
                                                 "tcp://127.0.0.1:1", "--bogus", NULL}, out, 10), 2);
    assert_int_equal(s_run((const char *const[]){NESSAI_WORKER_BIN, "--connect",
                                                 "tcp://127.0.0.1:1", "--slots", "0", NULL}, out, 10),
                     2);
    assert_int_equal(s_run((const char *const[]){NESSAI_WORKER_BIN, "--connect",
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
    ns_model_t *model = ft_model("dim=4");
    ns_config_t *cfg = ft_farm_config("bind", "tcp://127.0.0.1:*", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    pid_t launcher = ft_spawn_worker(ns_farm_endpoint(ev),
                                     (const char *const[]){"--slots", "3", NULL}, NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, 3, 30), NS_OK);
    double x[400], want[100], got[100];
    for (int i = 0; i < 400; i++)
        x[i] = 0.01 * i - 2.0;
    ft_inprocess(model, x, 100, want);
    assert_int_equal(ns_evaluator_evaluate(ev, x, 100, 4, got), NS_OK);
    assert_memory_equal(got, want, sizeof got);
    kill(launcher, SIGTERM);
    s_left_t l = {ev, 3};
    assert_true(ft_wait_for(s_all_left, &l, 10));
    int code = -1;
    assert_true(ft_wait_exit(launcher, 10, &code));
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
    *cfg = ft_farm_config("bind", ep, NULL);
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
    ft_tmpfile(wlog, sizeof wlog, "worker");
    ft_tmpfile(plog, sizeof plog, "persistent");
    int p[2], port = 0;
    assert_int_equal(pipe(p), 0);
    pid_t coord = fork();
    if (coord == 0) {   /* first coordinator, killed without a word */
        ns_model_t *m = ft_model("dim=4");
        ns_config_t *c = ft_farm_config("bind", "tcp://127.0.0.1:*", NULL);
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
    pid_t worker = ft_spawn_worker(ep, NULL, NULL, wlog);
    double until = ns_now() + 30;
    while (!ft_file_contains(wlog, "registered id=") && ns_now() < until)
        usleep(10000);
    assert_true(ft_file_contains(wlog, "registered id="));
    kill(coord, SIGKILL);
    waitpid(coord, NULL, 0);

    ns_model_t *model = ft_model("dim=4");
    ns_config_t *cfg = NULL;
    ns_evaluator_t *ev = s_farm_on(port, model, &cfg);
    assert_non_null(ev);
    pid_t persistent = ft_spawn_worker(ep, (const char *const[]){"--persistent", NULL}, NULL, plog);
    assert_int_equal(ns_farm_wait_live(ev, 2, 60), NS_OK);   /* silence 3 s + back-off */
    assert_true(ft_file_contains(wlog, "has been silent"));
    assert_true(ft_file_contains(wlog, "reconnecting"));
    double x[40], want[10], got[10];
    for (int i = 0; i < 40; i++)
        x[i] = 0.1 * i - 2.0;
    ft_inprocess(model, x, 10, want);
    assert_int_equal(ns_evaluator_evaluate(ev, x, 10, 4, got), NS_OK);
    assert_memory_equal(got, want, sizeof got);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    int code = -1;
    assert_true(ft_wait_exit(worker, 10, &code));   /* STOP: the plain worker exits */
    assert_int_equal(code, 0);
    assert_false(ft_wait_exit(persistent, 0.5, NULL));   /* the persistent one stays */

    ev = s_farm_on(port, model, &cfg);
    assert_non_null(ev);
    assert_int_equal(ns_farm_wait_live(ev, 1, 60), NS_OK);
    assert_int_equal(ns_evaluator_evaluate(ev, x, 10, 4, got), NS_OK);
    assert_memory_equal(got, want, sizeof got);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    kill(persistent, SIGTERM);
    assert_true(ft_wait_exit(persistent, 10, &code));
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
    ns_model_t *model = ft_model("dim=4");
    ns_config_t *cfg = ft_farm_config("bind", "tcp://127.0.0.1:*", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    int port = atoi(strrchr(ns_farm_endpoint(ev), ':') + 1);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    pid_t worker = ft_spawn_worker(ep, NULL, NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, 1, 30), NS_OK);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    assert_false(ft_wait_exit(worker, 1.0, NULL));   /* still there, retrying */
    ev = s_farm_on(port, model, &cfg);
    assert_non_null(ev);
    assert_int_equal(ns_farm_wait_live(ev, 1, 60), NS_OK);
    double x[40], want[10], got[10];
    for (int i = 0; i < 40; i++)
        x[i] = 0.05 * i - 1.0;
    ft_inprocess(model, x, 10, want);
    assert_int_equal(ns_evaluator_evaluate(ev, x, 10, 4, got), NS_OK);
    assert_memory_equal(got, want, sizeof got);
    ns_evaluator_shutdown(ev);
    int code = -1;
    assert_true(ft_wait_exit(worker, 10, &code));
    assert_int_equal(code, 0);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

static int s_have_coordinator(void)
{
    return access(COORDINATOR, X_OK) == 0 && access(GAUSSIAN, R_OK) == 0;
}

/* End to end: no workers is exit 1 with a clear message. */
static void test_coordinator_no_workers(void **state)
{
    if (!s_have_coordinator())
        skip();
    char out[128], dir[160];
    ft_tmpfile(out, sizeof out, "e2e");
    snprintf(dir, sizeof dir, "%s.d", out);
    int code = s_run((const char *const[]){COORDINATOR, "--model", GAUSSIAN, "--bind",
                                           "tcp://127.0.0.1:*", "--worker-timeout", "1", "--nlive",
                                           "50", "--output", dir, NULL}, out, 60);
    assert_int_equal(code, 1);
    assert_true(ft_file_contains(out, "no workers for 1 s (--worker-timeout)"));
    unlink(out);
    ft_rmtree(dir);
}

static int s_read_line(const char *path, const char *prefix, char *line, size_t size)
{
    FILE *f = fopen(path, "r");
    int found = 0;
    while (f && fgets(line, (int)size, f))
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            found = 1;
            break;
        }
    if (f)
        fclose(f);
    return found;
}

/* End to end: the same seed gives the same evidence in-process and with a
 * local pool of 3 workers. */
static void test_coordinator_same_result_with_pool(void **state)
{
    if (!s_have_coordinator())
        skip();
    char out[2][128], dir[2][160], lnz[2][256];
    for (int i = 0; i < 2; i++) {
        ft_tmpfile(out[i], sizeof out[i], "e2e");
        snprintf(dir[i], sizeof dir[i], "%s.d", out[i]);
        const char *argv[] = {COORDINATOR, "--model", GAUSSIAN, "--model-args", "dim=3",
                              "--nlive", "100", "--max-iteration", "300", "--seed", "11",
                              "--output", dir[i], i ? "--n-pool" : NULL, "3", NULL};
        assert_int_equal(s_run(argv, out[i], 120), 0);
        assert_true(s_read_line(out[i], "ln Z =", lnz[i], sizeof lnz[i]));
    }
    assert_string_equal(lnz[0], lnz[1]);
    char result[200];
    snprintf(result, sizeof result, "%s/result.json", dir[1]);
    /* every batch went out in k = --n-pool chunks, whoever had joined */
    assert_true(ft_file_contains(result, "\"local_workers\": 3"));
    assert_true(ft_file_contains(result, "\"last_k\": 3"));
    assert_true(ft_file_contains(result, "\"malformed_dropped\": 0"));
    /* while the local pool starts, the log says so instead of asking the user
     * to start remote workers */
    assert_false(ft_file_contains(out[1], "start some with nessai-worker"));
    for (int i = 0; i < 2; i++) {
        unlink(out[i]);
        ft_rmtree(dir[i]);
    }
}

/* End to end (docs/benchmarks.md §5, faults): workers killed with SIGKILL and
 * replaced at moments during a run; the evidence equals the undisturbed
 * in-process run with the same seed. */
static void test_coordinator_same_result_with_killed_workers(void **state)
{
    if (!s_have_coordinator())
        skip();
    char out[2][128], dir[2][160], lnz[2][256];
    for (int i = 0; i < 2; i++) {
        ft_tmpfile(out[i], sizeof out[i], "e2e");
        snprintf(dir[i], sizeof dir[i], "%s.d", out[i]);
    }
    const char *ref[] = {COORDINATOR, "--model", GAUSSIAN, "--model-args", "dim=3,delay_ms=3",
                         "--nlive", "100", "--max-iteration", "400", "--seed", "5", "--output",
                         dir[0], NULL};
    assert_int_equal(s_run(ref, out[0], 120), 0);
    assert_true(s_read_line(out[0], "ln Z =", lnz[0], sizeof lnz[0]));

    pid_t coord = fork();
    if (coord == 0) {
        int fd = open(out[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(COORDINATOR, COORDINATOR, "--model", GAUSSIAN, "--model-args", "dim=3,delay_ms=3",
              "--nlive", "100", "--max-iteration", "400", "--seed", "5", "--output", dir[1],
              "--bind", "tcp://127.0.0.1:*", "--worker-timeout", "60", (char *)NULL);
        _exit(127);
    }
    /* the endpoint is in the coordinator's log */
    char ep[128] = "";
    double until = ns_now() + 30;
    while (!ep[0] && ns_now() < until) {
        char line[512];
        if (s_read_line(out[1], "", line, sizeof line)) {
            FILE *f = fopen(out[1], "r");
            while (f && fgets(line, sizeof line, f)) {
                char *p = strstr(line, "--connect tcp://");
                if (p && sscanf(p + 10, "%127s", ep) == 1)
                    break;
                ep[0] = '\0';
            }
            if (f)
                fclose(f);
        }
        if (!ep[0])
            usleep(10000);
    }
    assert_true(ep[0] != '\0');
    pid_t w[3];
    for (int i = 0; i < 3; i++)
        w[i] = ft_spawn_worker(ep, (const char *const[]){"--log-level", "error", NULL}, NULL, NULL);
    int kills = 0, code = -1, done = 0;
    unsigned long long r = 12345;
    while (!(done = ft_wait_exit(coord, 0.25, &code)) && kills < 6) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int i = (int)((r >> 33) % 3);
        ft_kill(w[i]);
        w[i] = ft_spawn_worker(ep, (const char *const[]){"--log-level", "error", NULL}, NULL, NULL);
        kills++;
    }
    if (!done)
        assert_true(ft_wait_exit(coord, 120, &code));
    assert_int_equal(code, 0);
    assert_true(kills >= 1);
    assert_true(s_read_line(out[1], "ln Z =", lnz[1], sizeof lnz[1]));
    assert_string_equal(lnz[0], lnz[1]);
    char result[200];
    snprintf(result, sizeof result, "%s/result.json", dir[1]);
    assert_true(ft_file_contains(result, "\"workers_lost\":"));
    /* the kills were seen: workers lost, or their chunks sent again */
    assert_true(!ft_file_contains(result, "\"workers_lost\": 0,")
                || !ft_file_contains(result, "\"chunks_resent\": 0,"));
    for (int i = 0; i < 3; i++)
        ft_wait_exit(w[i], 10, NULL);
    for (int i = 0; i < 2; i++) {
        unlink(out[i]);
        ft_rmtree(dir[i]);
    }
}

int main(void)
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
    return cmocka_run_group_tests(tests, NULL, NULL);
}
