/* test_ckpt_signal.c - real signals raise the interrupt flag, --max-runtime
 * delivers SIGALRM, the exit-code rule, and the options fragment. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "nessai/error.h"
#include "nessai/options.h"
#include "nessai/util.h"

/* Block until the interrupt flag is set or limit seconds pass; returns the
 * flag. sigsuspend wakes on every delivered signal, so no polling sleep. */
static int s_wait_interrupt(double limit)
{
    double end = ns_now() + limit;
    sigset_t none;
    sigemptyset(&none);
    while (!ns_interrupt_pending() && ns_now() < end) {
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGALRM);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        sigprocmask(SIG_BLOCK, &block, &old);
        if (!ns_interrupt_pending())
            sigsuspend(&old);
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    return ns_interrupt_pending();
}

static void test_signals_raise_the_flag(void **state)
{
    (void)state;
    assert_int_equal(ns_ckpt_signals_install(), NS_OK);
    assert_true(ns_ckpt_signals_installed());
    const int sigs[] = {SIGTERM, SIGINT, SIGALRM};
    for (size_t i = 0; i < 3; i++) {
        ns_interrupt_clear();
        assert_int_equal(kill(getpid(), sigs[i]), 0);
        /* kill() to ourselves delivers before it returns (POSIX), but wait
         * on the condition anyway. */
        assert_int_equal(s_wait_interrupt(5.0), sigs[i]);
    }
    ns_interrupt_clear();
    ns_ckpt_signals_restore();
    assert_false(ns_ckpt_signals_installed());
}

static volatile sig_atomic_t s_custom_hits = 0;
static void s_custom(int signum)
{
    (void)signum;
    s_custom_hits++;
}

static void test_restore_puts_back_previous_handlers(void **state)
{
    (void)state;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_custom;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGINT, &sa, NULL), 0);
    assert_int_equal(ns_ckpt_signals_install(), NS_OK);
    assert_int_equal(ns_ckpt_signals_install(), NS_OK);  /* twice keeps the first previous */
    ns_ckpt_signals_restore();
    s_custom_hits = 0;
    kill(getpid(), SIGINT);
    assert_int_equal(s_custom_hits, 1);
    assert_int_equal(ns_interrupt_pending(), 0);
    signal(SIGINT, SIG_DFL);
}

/* Someone installing a handler over ours (CZMQ does, for SIGINT/SIGTERM)
 * is detectable, so the coordinator can re-install. */
static void test_overridden_handler_detected(void **state)
{
    (void)state;
    assert_int_equal(ns_ckpt_signals_install(), NS_OK);
    signal(SIGTERM, s_custom);
    assert_false(ns_ckpt_signals_installed());
    assert_int_equal(ns_ckpt_signals_install(), NS_OK);
    assert_true(ns_ckpt_signals_installed());
    ns_ckpt_signals_restore();
}

static void test_max_runtime_delivers_sigalrm(void **state)
{
    (void)state;
    ns_interrupt_clear();
    assert_int_equal(ns_ckpt_signals_install(), NS_OK);
    double t0 = ns_now();
    assert_int_equal(ns_ckpt_max_runtime_arm(0.2), NS_OK);
    assert_int_equal(s_wait_interrupt(10.0), SIGALRM);
    assert_true(ns_now() - t0 >= 0.19);
    ns_interrupt_clear();

    /* Disarming leaves no timer running. */
    assert_int_equal(ns_ckpt_max_runtime_arm(100.0), NS_OK);
    assert_int_equal(ns_ckpt_max_runtime_arm(NAN), NS_OK);
    struct itimerval it;
    assert_int_equal(getitimer(ITIMER_REAL, &it), 0);
    assert_int_equal(it.it_value.tv_sec, 0);
    assert_int_equal(it.it_value.tv_usec, 0);
    assert_int_equal(ns_ckpt_max_runtime_arm(INFINITY), NS_ERR_INVAL);
    ns_ckpt_signals_restore();
}

/* A real SIGTERM from another process reaches a process that is busy in a
 * loop and lets it finish its step: the child reports back through its
 * exit status which signal it saw. */
static void test_sigterm_from_another_process(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (ns_ckpt_signals_install() != NS_OK)
            _exit(90);
        char ready = 'r';
        if (write(fds[1], &ready, 1) != 1)
            _exit(91);
        double end = ns_now() + 20.0;
        volatile double x = 0;
        while (!ns_interrupt_pending() && ns_now() < end)
            for (int i = 0; i < 1000; i++)
                x += sqrt((double)i);
        _exit(ns_interrupt_pending());
    }
    close(fds[1]);
    char c;
    assert_int_equal(read(fds[0], &c, 1), 1);
    close(fds[0]);
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), SIGTERM);
}

static void test_exit_status_rule(void **state)
{
    (void)state;
    assert_int_equal(ns_ckpt_exit_status_after_signal(1, 130), 130);
    assert_int_equal(ns_ckpt_exit_status_after_signal(1, 77), 77);
    assert_int_equal(ns_ckpt_exit_status_after_signal(0, 130), 1);
    assert_int_equal(ns_ckpt_exit_status_after_signal(0, 77), 1);
}

static int s_parse(ns_config_t *cfg, const char *a, const char *b)
{
    char *argv[] = {"nessai-coordinator", (char *)a, (char *)b, NULL};
    char err[256];
    return ns_config_parse_args(cfg, b ? 3 : (a ? 2 : 1), argv, err, sizeof err);
}

static void test_options_fragment(void **state)
{
    (void)state;
    ns_config_t *cfg = ns_config_new(ns_checkpoint_options, ns_checkpoint_options_count);
    assert_non_null(cfg);
    assert_int_equal(s_parse(cfg, NULL, NULL), NS_OK);
    assert_true(ns_config_bool(cfg, "resume"));
    assert_true(ns_config_double(cfg, "checkpoint-interval") == 600.0);
    assert_int_equal(ns_config_int(cfg, "checkpoint-exit-code"), 130);
    assert_false(ns_config_is_set(cfg, "max-runtime"));
    assert_string_equal(ns_config_str(cfg, "resume-file"), "nested_sampler_resume.ckpt");
    ns_config_destroy(&cfg);

    typedef struct { const char *a, *b; int rv; } c_t;
    const c_t cases[] = {
        {"--no-resume", NULL, NS_OK},
        {"--checkpoint-exit-code", "77", NS_OK},
        {"--checkpoint-exit-code", "0", NS_ERR_INVAL},
        {"--checkpoint-exit-code", "1", NS_ERR_INVAL},
        {"--checkpoint-exit-code", "256", NS_ERR_INVAL},
        {"--checkpoint-interval", "inf", NS_OK},
        {"--checkpoint-interval", "0", NS_OK},
        {"--checkpoint-interval", "-1", NS_ERR_INVAL},
        {"--max-runtime", "3600", NS_OK},
        {"--max-runtime", "0", NS_ERR_INVAL},
        {"--max-runtime", "none", NS_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cfg = ns_config_new(ns_checkpoint_options, ns_checkpoint_options_count);
        assert_non_null(cfg);
        if (s_parse(cfg, cases[i].a, cases[i].b) != cases[i].rv)
            fail_msg("case %zu (%s %s) did not give %d", i, cases[i].a,
                     cases[i].b ? cases[i].b : "", cases[i].rv);
        ns_config_destroy(&cfg);
    }
    cfg = ns_config_new(ns_checkpoint_options, ns_checkpoint_options_count);
    assert_int_equal(s_parse(cfg, "--no-resume", NULL), NS_OK);
    assert_false(ns_config_bool(cfg, "resume"));
    ns_config_destroy(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signals_raise_the_flag),
        cmocka_unit_test(test_restore_puts_back_previous_handlers),
        cmocka_unit_test(test_overridden_handler_detected),
        cmocka_unit_test(test_max_runtime_delivers_sigalrm),
        cmocka_unit_test(test_sigterm_from_another_process),
        cmocka_unit_test(test_exit_status_rule),
        cmocka_unit_test(test_options_fragment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
