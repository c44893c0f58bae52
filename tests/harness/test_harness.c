/* test_harness.c - the test harness itself: /proc readers, endpoints,
 * ulp distances, seeds, processes and files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* th_proc_children finds forked children (and not others); th_proc_state
 * follows one from sleeping to zombie to gone. */
static void test_proc_children(void **state)
{
    (void)state;
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            pause();
            _exit(0);
        }
        assert_true(kids[i] > 0);
    }
    int found[8];
    size_t n = th_proc_children((int)getpid(), found, 8);
    int seen = 0;
    for (size_t i = 0; i < n; i++)
        seen += found[i] == kids[0] || found[i] == kids[1];
    assert_int_equal(seen, 2);
    assert_int_equal(th_proc_children(1, found, 8) > 0 && found[0] == kids[0], 0);
    char st = th_proc_state((int)kids[0]);
    assert_true(st == 'S' || st == 'R');
    kill(kids[0], SIGKILL);
    for (int k = 0; k < 200 && th_proc_state((int)kids[0]) != 'Z'; k++)
        usleep(5000);
    assert_int_equal(th_proc_state((int)kids[0]), 'Z');
    waitpid(kids[0], NULL, 0);
    assert_int_equal(th_proc_state((int)kids[0]), 0);
    kill(kids[1], SIGKILL);
    waitpid(kids[1], NULL, 0);
}

static void test_endpoints(void **state)
{
    (void)state;
    char ep[64];
    assert_true(th_connect_endpoint("farm: x; workers join with: nessai-worker --connect "
                                    "tcp://127.0.0.1:41234\n", ep, sizeof ep));
    assert_string_equal(ep, "tcp://127.0.0.1:41234");
    assert_int_equal(th_endpoint_port(ep), 41234);
    assert_false(th_connect_endpoint("no endpoint here", ep, sizeof ep));
    assert_int_equal(th_endpoint_port("tcp://127.0.0.1:*"), -1);
    assert_int_equal(th_endpoint_port("ipc://x:5"), -1);
}

static void test_ulp_distance(void **state)
{
    (void)state;
    assert_true(th_ulp_distance(1.0, 1.0) == 0);
    assert_true(th_ulp_distance(0.0, -0.0) == 0);
    assert_true(th_ulp_distance(1.0, nextafter(1.0, 2.0)) == 1);
    assert_true(th_ulp_distance(-DBL_TRUE_MIN, DBL_TRUE_MIN) == 2);
    assert_true(th_ulp_distance(1.0, 1.0 + 4 * DBL_EPSILON) == 4);
    assert_true(th_ulp_distance(NAN, 1.0) == UINT64_MAX);
    th_assert_ulp(0.1 + 0.2, 0.3, 1);
    th_assert_near(0.1 + 0.2, 0.3, 1e-15);
}

static void test_seed_from_the_environment(void **state)
{
    (void)state;
    setenv("NESSAI_TEST_SEED", "12345", 1);
    assert_int_equal(th_seed("test"), 12345);
    unsetenv("NESSAI_TEST_SEED");
    unsigned a = th_seed("test");
    (void)a;
}

static void test_processes_and_files(void **state)
{
    (void)state;
    char dir[256], path[300];
    assert_int_equal(th_mkdtemp(dir, sizeof dir, "ns-harness"), 0);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    assert_int_equal(th_run((const char *const[]){"/bin/sh", "-c", "echo hello; exit 3", NULL},
                            path, 10), 3);
    assert_true(th_file_contains(path, "hello"));
    assert_int_equal(th_run((const char *const[]){"/nonexistent/program", NULL}, path, 10), -1);
    th_proc_t p;
    char *argv[] = {"/bin/sh", "-c", "echo n: 5; echo done 7; sleep 30", NULL};
    assert_int_equal(th_spawn(&p, argv, TH_MERGE), 0);
    assert_true(th_wait_text(&p, "n: ", NULL, 0, 10));
    assert_int_equal(th_wait_line(&p, "done ", 7, 10), 7);
    assert_true(th_alive(&p));
    assert_int_equal(th_signal_and_wait(&p, SIGTERM, 10), 128 + SIGTERM);
    th_rm_rf(dir);
    assert_false(th_exists(dir));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proc_children),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_ulp_distance),
        cmocka_unit_test(test_seed_from_the_environment),
        cmocka_unit_test(test_processes_and_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
