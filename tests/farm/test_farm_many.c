/* test_farm_many.c - 500 worker processes on loopback against a
 * nessai-coordinator started under `ulimit -n 1024` (docs/protocol.md §3,
 * "Capacity"): with a higher hard limit the coordinator raises its soft
 * limit and takes all 500; with a hard limit of 1024 it says how many it
 * has room for, refuses the rest with a message on both sides, and the run
 * still ends with its result, checkpoint and flow, equal to the run without
 * a farm. The workers hold every evaluation after their canary until all
 * have joined or been refused, so the run cannot end before. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cmocka_select.h"
#include "farm_fixture.h"

#define COORDINATOR NESSAI_COORDINATOR_BIN
#define WORKERS 500

/* Lines of path that contain needle. */
static size_t s_count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    size_t n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* The number after "room for " in the coordinator's log, 0 if none. */
static size_t s_room(const char *log)
{
    char line[1024];
    FILE *f = fopen(log, "r");
    size_t room = 0;
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "room for ");
        if (p)
            room = (size_t)strtoul(p + 9, NULL, 10);
    }
    if (f)
        fclose(f);
    return room;
}

typedef struct {
    const char *log;
    size_t want;
} s_settled_t;

/* Every worker has joined or been refused. */
static int s_settled(void *arg)
{
    const s_settled_t *s = arg;
    return s_count(s->log, "worker joined") + s_count(s->log, "refused worker") >= s->want;
}

typedef struct {
    pid_t launcher;
    size_t want;
} s_slots_t;

/* The launcher has exactly want slots left (the refused ones exited). */
static int s_slots_left(void *arg)
{
    const s_slots_t *s = arg;
    int pids[WORKERS + 8];
    return th_proc_children(s->launcher, pids, sizeof pids / sizeof pids[0]) == s->want;
}

/* Summed resident memory of the launcher's slots, MiB; their count in *n. */
static double s_slots_rss(pid_t launcher, size_t *n)
{
    int pids[WORKERS + 8];
    *n = th_proc_children(launcher, pids, sizeof pids / sizeof pids[0]);
    double kib = 0;
    for (size_t i = 0; i < *n; i++) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/status", pids[i]);
        if (th_file_line(path, "VmRSS:", line, sizeof line))
            kib += atof(line + 6);
    }
    return kib / 1024.0;
}

/* ln Z of the same run without a farm. */
static void s_reference(const char *dir, char *lnz, size_t cap)
{
    char out[300], run[300];
    snprintf(out, sizeof out, "%s/ref.log", dir);
    snprintf(run, sizeof run, "%s/ref", dir);
    const char *argv[] = {COORDINATOR, "--model", FARMTEST_PLUGIN, "--model-args", "dim=2",
                          "--nlive", "200", "--max-iteration", "800", "--seed", "7",
                          "--no-plot", "--output", run, NULL};
    assert_int_equal(th_run(argv, out, 120), 0);
    assert_true(th_file_line(out, "ln Z =", lnz, cap));
}

/* One coordinator under `ulimit` (the sh command), WORKERS slots of one
 * launcher. */
static void s_run(const char *ulimit_cmd, int hard_1024)
{
    char dir[256], log[300], wlog[300], run[300], go[300], ep[128] = "", lnz[256], want[256];
    assert_int_equal(th_mkdtemp(dir, sizeof dir, "many"), 0);
    snprintf(log, sizeof log, "%s/coordinator.log", dir);
    snprintf(wlog, sizeof wlog, "%s/workers.log", dir);
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(go, sizeof go, "%s/go", dir);
    s_reference(dir, want, sizeof want);

    char script[64];
    snprintf(script, sizeof script, "%s && exec \"$0\" \"$@\"", ulimit_cmd);
    const char *argv[] = {"/bin/sh", "-c", script, COORDINATOR, "--model", FARMTEST_PLUGIN,
                          "--model-args", "dim=2", "--nlive", "200", "--max-iteration", "800",
                          "--seed", "7", "--bind", "tcp://127.0.0.1:*", "--worker-timeout",
                          "120", "--chunk-timeout", "600", "--no-plot", "--output", run, NULL};
    pid_t coord = th_spawn_pid(argv, NULL, log, 0);
    assert_true(coord > 0);
    assert_true(th_wait_endpoint_in_file(log, ep, sizeof ep, 30));
    size_t room = s_room(log);
    fprintf(stderr, "coordinator under '%s': room for %zu workers\n", ulimit_cmd, room);
    if (hard_1024)
        assert_true(room >= 100 && room < WORKERS);
    else
        assert_true(room >= WORKERS);

    char hold[320];
    snprintf(hold, sizeof hold, "NS_FARMTEST_HOLD=%s", go);
    char slots[16];
    snprintf(slots, sizeof slots, "%d", WORKERS);
    double t0 = th_now();
    pid_t launcher = th_farm_spawn_worker(
        ep, (const char *const[]){"--slots", slots, "--log-level", "info", NULL},
        (const char *const[]){hold, NULL}, wlog);
    assert_true(launcher > 0);
    size_t accepted = hard_1024 ? room : WORKERS;
    s_settled_t settled = {log, WORKERS};
    assert_true(th_wait_for(s_settled, &settled, 180));
    s_slots_t left = {launcher, accepted};
    assert_true(th_wait_for(s_slots_left, &left, 30));
    size_t n = 0;
    double rss = s_slots_rss(launcher, &n);
    fprintf(stderr, "%zu joined, %zu refused in %.1f s; %zu worker processes, %.1f MiB resident "
            "(%.1f MiB each)\n", s_count(log, "worker joined"), s_count(log, "refused worker"),
            th_now() - t0, n, rss, n ? rss / (double)n : 0.0);
    assert_int_equal(s_count(log, "worker joined"), accepted);
    assert_int_equal(n, accepted);   /* the refused slots have exited */
    if (hard_1024) {
        /* both sides say why */
        assert_int_equal(s_count(log, "refused worker"), WORKERS - room);
        assert_int_equal(s_count(log, "the coordinator is full"), WORKERS - room);
        assert_int_equal(s_count(wlog, "refused by the coordinator"), WORKERS - room);
        assert_int_equal(s_count(wlog, "the coordinator is full"), WORKERS - room);
    } else
        assert_int_equal(s_count(log, "refused worker"), 0);

    FILE *f = fopen(go, "w");   /* let the evaluations run */
    assert_non_null(f);
    fclose(f);
    int code = -1;
    assert_true(th_wait_pid(coord, 180, &code));
    assert_int_equal(code, 0);
    assert_true(th_file_line(log, "ln Z =", lnz, sizeof lnz));
    assert_string_equal(lnz, want);
    char path[400];
    const char *files[] = {"result.json", "nested_sampler_resume.ckpt", "proposal/model.flow",
                           "posterior.csv"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", run, files[i]);
        if (th_file_size(path) <= 0)
            fail_msg("%s was not written", path);
    }
    snprintf(path, sizeof path, "%s/result.json", run);
    char expect[64];
    snprintf(expect, sizeof expect, "\"workers_seen\": %zu,", accepted);
    assert_true(th_file_contains(path, expect));
    snprintf(expect, sizeof expect, "\"refused\": %zu,", hard_1024 ? WORKERS - room : 0);
    assert_true(th_file_contains(path, expect));
    assert_true(th_file_contains(path, "\"failed_chunks\": 0,"));
    /* the run's end sends every slot away; the refused ones exited with 1 */
    assert_true(th_wait_pid(launcher, 60, &code));
    assert_int_equal(code, hard_1024 ? 1 : 0);
    th_rm_rf(dir);
}

/* Soft limit 1024, hard limit higher: the coordinator raises its soft limit
 * and takes all 500. */
static void test_500_workers_soft_limit_1024(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2048)
        fail_msg("this case needs a hard descriptor limit of at least 2048 (ulimit -Hn is %llu)",
                 (unsigned long long)rl.rlim_max);
    s_run("ulimit -Sn 1024", 0);
}

/* Soft and hard limit 1024: room for about 317; the rest refused. */
static void test_500_workers_hard_limit_1024(void **state)
{
    (void)state;
    s_run("ulimit -n 1024", 1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_500_workers_soft_limit_1024),
        cmocka_unit_test(test_500_workers_hard_limit_1024),
    };
    return th_run_cases(argc, argv, tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
