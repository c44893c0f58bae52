/* test_farm_pool.c - local pool workers never outlive the coordinator,
 * even when it is killed with SIGKILL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "farm_fixture.h"
#include "nessai/error.h"
#include "nessai/util.h"

/* 1 if pid is gone or a zombie (dead, waiting for its new parent to reap it). */
static int s_dead(pid_t pid)
{
    char st = th_proc_state((int)pid);
    return st == 0 || st == 'Z' || st == 'X';
}

static void s_coordinator(int fd)
{
    ns_model_t *model = th_farm_model("dim=4");
    ns_config_t *cfg = th_farm_config("n-pool", "3", NULL);
    ns_evaluator_t *ev = NULL;
    if (!model || !cfg || ns_farm_evaluator_new(cfg, model, NULL, &ev) != NS_OK
        || ns_farm_wait_live(ev, 3, 30) != NS_OK)
        _exit(1);
    double x[400], logl[100];
    for (int i = 0; i < 400; i++)
        x[i] = (i % 9) - 4.0;
    if (ns_evaluator_evaluate(ev, x, 100, 4, logl) != NS_OK)
        _exit(1);
    if (write(fd, "R", 1) != 1)
        _exit(1);
    for (;;)
        pause();   /* until SIGKILL */
}

static void test_local_workers_die_with_sigkilled_coordinator(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t coord = fork();
    assert_true(coord >= 0);
    if (coord == 0) {
        close(p[0]);
        s_coordinator(p[1]);
    }
    close(p[1]);
    char c = 0;
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(c, 'R');
    close(p[0]);
    int workers[16];
    size_t n = th_proc_children((int)coord, workers, 16);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_false(s_dead(workers[i]));
    kill(coord, SIGKILL);
    waitpid(coord, NULL, 0);
    /* PR_SET_PDEATHSIG acts at once; the 3 s heartbeat silence would be
     * too slow for this bound, so the test tells the two apart. */
    double until = ns_now() + 1.5;
    size_t alive = n;
    while (alive > 0 && ns_now() < until) {
        alive = 0;
        for (size_t i = 0; i < n; i++)
            alive += !s_dead(workers[i]);
        if (alive)
            usleep(10000);
    }
    assert_int_equal(alive, 0);
}

/* A normal end of run: STOP, the workers exit by themselves. */
static void test_local_workers_exit_at_end_of_run(void **state)
{
    ns_model_t *model = th_farm_model("dim=4");
    ns_config_t *cfg = th_farm_config("n-pool", "2", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    assert_int_equal(ns_farm_wait_live(ev, 2, 30), NS_OK);
    int workers[16];
    assert_int_equal(th_proc_children((int)getpid(), workers, 16), 2);
    double t0 = ns_now();
    ns_evaluator_shutdown(ev);
    assert_true(ns_now() - t0 < 3.0);   /* they left on STOP, not on the 5 s kill */
    for (int i = 0; i < 2; i++)
        assert_true(s_dead(workers[i]));
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_workers_die_with_sigkilled_coordinator),
        cmocka_unit_test(test_local_workers_exit_at_end_of_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
