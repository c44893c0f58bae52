/* test_farm_capacity.c - the descriptor limit (docs/protocol.md §3,
 * "Capacity"): the farm says how many workers it has room for, refuses the
 * next one with a message on both sides, keeps evaluating exactly, and
 * keeps descriptors for the run's own files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "farm_fixture.h"
#include "nessai/error.h"
#include "nessai/log.h"

static long s_open_fds(void)
{
    long n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static size_t s_room(const char *log)
{
    FILE *f = fopen(log, "r");
    char line[1024];
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

static int s_refused(void *arg)
{
    ns_farm_stats_t st;
    ns_farm_stats(arg, &st);
    return st.refused >= 1;
}

static void test_workers_past_the_limit_are_refused(void **state)
{
    char log[128], wlog[128];
    th_tmpfile(log, sizeof log, "cap");
    th_tmpfile(wlog, sizeof wlog, "capw");
    assert_int_equal(ns_log_open_file(log), NS_OK);
    /* a hard limit the farm can only raise its soft limit to */
    struct rlimit rl = {.rlim_cur = 0, .rlim_max = 0};
    long limit = s_open_fds() + 64 + 2 * 3 + 4;   /* 2 descriptors per worker */
    rl.rlim_cur = rl.rlim_max = (rlim_t)limit;
    struct rlimit soft = rl;
    soft.rlim_cur = (rlim_t)(limit - 10);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &soft), 0);
    ns_model_t *model = th_farm_model("dim=2");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    struct rlimit now;
    getrlimit(RLIMIT_NOFILE, &now);
    assert_int_equal((long)now.rlim_cur, limit);   /* raised to the hard limit */
    size_t room = s_room(log);
    fprintf(stderr, "room for %zu workers under a limit of %ld\n", room, limit);
    assert_true(room >= 1 && room <= 5);
    pid_t w[8];
    for (size_t i = 0; i < room; i++)
        w[i] = th_farm_spawn_worker(ns_farm_endpoint(ev), NULL, NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, room, 30), NS_OK);
    pid_t extra = th_farm_spawn_worker(ns_farm_endpoint(ev), NULL, NULL, wlog);
    assert_true(th_wait_for(s_refused, ev, 20));
    int code = -1;
    assert_true(th_wait_pid(extra, 20, &code));
    assert_int_equal(code, 1);
    assert_true(th_file_contains(wlog, "the coordinator is full"));
    assert_true(th_file_contains(log, "the coordinator is full"));

    size_t n = 500;
    double *x = th_farm_points(n, 2, 3), *want = malloc(n * 8), *got = malloc(n * 8);
    th_farm_inprocess(model, x, n, want);
    assert_int_equal(ns_evaluator_evaluate(ev, x, n, 2, got), NS_OK);
    assert_memory_equal(got, want, n * 8);
    ns_farm_stats_t st;
    ns_farm_stats(ev, &st);
    assert_int_equal(st.workers_live, room);
    /* the run's own files still open: checkpoint, result, plots */
    int fds[40];
    for (int i = 0; i < 40; i++) {
        fds[i] = open("/dev/null", O_RDONLY);
        assert_true(fds[i] >= 0);
    }
    for (int i = 0; i < 40; i++)
        close(fds[i]);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    for (size_t i = 0; i < room; i++)
        assert_true(th_wait_pid(w[i], 10, NULL));
    free(x);
    free(want);
    free(got);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
    ns_log_close_file();
    unlink(log);
    unlink(wlog);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workers_past_the_limit_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
