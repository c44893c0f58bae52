/* test_ckpt_process.c - the checkpoint controller in a real process (the
 * toy stand-in, ckpt_toy) under real signals: SIGTERM/SIGINT/--max-runtime
 * give the checkpoint exit code and a checkpoint, SIGKILL at random
 * moments plus resume gives the uninterrupted result bit for bit, a
 * signal with nothing to save gives 1, damaged or foreign checkpoints 2. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#ifndef CKPT_TOY
#error "CKPT_TOY must name the ckpt_toy binary"
#endif

typedef struct {
    char dir[256];      /* scratch directory */
    char out[300];      /* --output */
    char ckpt[400];     /* the checkpoint file */
    char errlog[400];   /* children's stderr */
    char *expected;     /* result of the uninterrupted run */
} s_fx_t;

static char s_ref_dir[256];
static char *s_reference;   /* computed once per test binary */

/* Run the toy with extra arguments (NULL-terminated) into out; returns the
 * started process. */
static void s_start(th_proc_t *p, const s_fx_t *f, const char *out, ...)
{
    char *argv[32];
    int n = 0;
    argv[n++] = CKPT_TOY;
    argv[n++] = "--output";
    argv[n++] = (char *)out;
    argv[n++] = "--seed";
    argv[n++] = "42";
    va_list ap;
    va_start(ap, out);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 31)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    assert_int_equal(th_spawn(p, argv, f ? f->errlog : NULL), 0);
}

static char *s_result(const char *out)
{
    char path[400];
    snprintf(path, sizeof path, "%s/result.txt", out);
    return th_slurp(path);
}

static int s_group_setup(void **state)
{
    (void)state;
    if (th_mkdtemp(s_ref_dir, sizeof s_ref_dir, "ns-ckpt-ref") != 0)
        return -1;
    th_proc_t p;
    s_start(&p, NULL, s_ref_dir, "--no-resume", "--checkpoint-interval", "inf", NULL);
    if (th_wait_exit(&p, 120) != 0)
        return -1;
    s_reference = s_result(s_ref_dir);
    return s_reference ? 0 : -1;
}

static int s_group_teardown(void **state)
{
    (void)state;
    free(s_reference);
    th_rm_rf(s_ref_dir);
    return 0;
}

static int s_setup(void **state)
{
    s_fx_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    if (th_mkdtemp(f->dir, sizeof f->dir, "ns-ckpt-proc") != 0)
        return -1;
    snprintf(f->out, sizeof f->out, "%s/out", f->dir);
    snprintf(f->ckpt, sizeof f->ckpt, "%s/nested_sampler_resume.ckpt", f->out);
    snprintf(f->errlog, sizeof f->errlog, "%s/stderr.log", f->dir);
    f->expected = s_reference;
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fx_t *f = *state;
    th_kill_all();  /* whatever a failed test left running */
    th_rm_rf(f->dir);
    free(f);
    return 0;
}

/* Resume to the end and check the result is the uninterrupted one. */
static void s_finish_and_compare(const s_fx_t *f)
{
    th_proc_t p;
    s_start(&p, f, f->out, NULL);
    assert_int_equal(th_wait_exit(&p, 120), 0);
    char *got = s_result(f->out);
    assert_non_null(got);
    assert_string_equal(got, f->expected);
    free(got);
}

typedef struct {
    int sig;
    const char *exit_code_arg;  /* --checkpoint-exit-code value, NULL: default */
    int expect;
} s_sig_case_t;

static void test_signals_checkpoint_and_exit_with_the_code(void **state)
{
    s_fx_t *f = *state;
    const s_sig_case_t cases[] = {
        {SIGTERM, NULL, 130},
        {SIGINT, NULL, 130},
        {SIGALRM, NULL, 130},
        {SIGTERM, "77", 77},
    };
    long at = 100;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        th_proc_t p;
        if (cases[i].exit_code_arg)
            s_start(&p, f, f->out, "--checkpoint-exit-code", cases[i].exit_code_arg, NULL);
        else
            s_start(&p, f, f->out, NULL);
        assert_true(th_wait_line(&p, "iteration ", at, 60) >= at);
        int code = th_signal_and_wait(&p, cases[i].sig, 60);
        if (code != cases[i].expect)
            fail_msg("case %zu: exit %d, expected %d", i, code, cases[i].expect);
        assert_true(th_exists(f->ckpt));
        at += 150;
    }
    s_finish_and_compare(f);
}

static void test_max_runtime_self_evicts(void **state)
{
    s_fx_t *f = *state;
    int rounds = 0;
    for (;;) {
        th_proc_t p;
        s_start(&p, f, f->out, "--max-runtime", "0.4", "--checkpoint-interval", "inf", NULL);
        int code = th_wait_exit(&p, 60);
        rounds++;
        if (code == 0)
            break;
        assert_int_equal(code, 130);
        assert_true(th_exists(f->ckpt));
        assert_true(rounds < 100);
    }
    assert_true(rounds > 1);  /* it really was evicted at least once */
    char *got = s_result(f->out);
    assert_non_null(got);
    assert_string_equal(got, f->expected);
    free(got);
}

static void test_sigkill_at_random_moments_then_resume(void **state)
{
    s_fx_t *f = *state;
    unsigned seed = th_seed("kill timing");
    srand(seed);
    int kills = 0;
    for (int k = 0; k < 6; k++) {
        th_proc_t p;
        s_start(&p, f, f->out, "--checkpoint-interval", "0.05", NULL);
        /* Wait until the run is sampling, then kill after a random while. */
        assert_true(th_wait_line(&p, "iteration ", 1, 60) >= 1);
        struct timespec ts = {0, (long)(rand() % 150) * 1000000L};
        nanosleep(&ts, NULL);
        int code = th_signal_and_wait(&p, SIGKILL, 60);
        if (code == 0)
            break;  /* finished before the kill */
        assert_int_equal(code, 128 + SIGKILL);
        kills++;
    }
    assert_true(kills >= 3);
    s_finish_and_compare(f);
}

static void test_finished_run_returns_at_once(void **state)
{
    s_fx_t *f = *state;
    s_finish_and_compare(f);
    th_proc_t p;
    s_start(&p, f, f->out, NULL);
    assert_int_equal(th_wait_line(&p, "done ", 0, 60), 3000);
    assert_int_equal(th_wait_exit(&p, 60), 0);
}

static void test_signal_with_nothing_to_save_exits_1(void **state)
{
    s_fx_t *f = *state;
    th_proc_t p;
    s_start(&p, f, f->out, "--startup-wait", NULL);
    assert_int_equal(th_wait_line(&p, "startup ", 0, 60), 0);
    assert_int_equal(th_signal_and_wait(&p, SIGTERM, 60), 1);
    assert_false(th_exists(f->ckpt));

    /* The checkpoint cannot be written (its directory does not exist). */
    s_start(&p, f, f->out, "--resume-file", "missing/dir/ck", NULL);
    assert_true(th_wait_line(&p, "iteration ", 1, 60) >= 1);
    assert_int_equal(th_signal_and_wait(&p, SIGTERM, 60), 1);
}

static void test_damaged_and_foreign_checkpoints(void **state)
{
    s_fx_t *f = *state;
    /* Two checkpoints (so a .old exists), then stop. */
    th_proc_t p;
    s_start(&p, f, f->out, "--checkpoint-interval", "0", NULL);
    assert_true(th_wait_line(&p, "iteration ", 100, 60) >= 100);
    assert_int_equal(th_signal_and_wait(&p, SIGTERM, 60), 130);
    char old[420];
    snprintf(old, sizeof old, "%s.old", f->ckpt);
    assert_true(th_exists(old));

    /* Another model's run is refused, with a message naming both. */
    s_start(&p, f, f->out, "--model-name", "other", NULL);
    assert_int_equal(th_wait_exit(&p, 60), 2);
    char *log = th_slurp(f->errlog);
    assert_non_null(log);
    assert_non_null(strstr(log, "refusing to resume"));
    assert_non_null(strstr(log, "'toy'"));
    free(log);

    /* The seed given on the command line must match. */
    s_start(&p, f, f->out, "--seed", "43", NULL);
    assert_int_equal(th_wait_exit(&p, 60), 2);

    /* A bit flip in the newest one: fallback to .old with a warning. */
    assert_int_equal(th_flip_bit(f->ckpt, 100, 4), 0);
    assert_int_equal(truncate(f->errlog, 0), 0);
    s_finish_and_compare(f);
    log = th_slurp(f->errlog);
    assert_non_null(log);
    assert_non_null(strstr(log, "unusable"));
    free(log);

    /* Both damaged: exit 2, never a resumed run. */
    s_start(&p, f, f->out, "--checkpoint-interval", "0", "--no-resume", NULL);
    assert_true(th_wait_line(&p, "iteration ", 100, 60) >= 100);
    assert_int_equal(th_signal_and_wait(&p, SIGTERM, 60), 130);
    assert_int_equal(th_flip_bit(f->ckpt, 60, 4), 0);
    assert_int_equal(truncate(old, 50), 0);
    s_start(&p, f, f->out, NULL);
    assert_int_equal(th_wait_exit(&p, 60), 2);
    log = th_slurp(f->errlog);
    assert_non_null(strstr(log, "no usable checkpoint"));
    free(log);
}

/* A second process on the same checkpoint is refused while the first
 * runs, and accepted once the first is gone (even killed with SIGKILL). */
static void test_second_process_on_the_same_checkpoint_refused(void **state)
{
    s_fx_t *f = *state;
    th_proc_t first, second;
    s_start(&first, f, f->out, "--checkpoint-interval", "0.05", NULL);
    assert_true(th_wait_line(&first, "iteration ", 1, 60) >= 1);
    s_start(&second, f, f->out, NULL);
    assert_int_equal(th_wait_exit(&second, 60), 2);
    char *log = th_slurp(f->errlog);
    assert_non_null(log);
    char needle[64];
    snprintf(needle, sizeof needle, "another nessai-coordinator (pid %d)", (int)first.pid);
    assert_non_null(strstr(log, needle));
    free(log);
    assert_int_equal(th_signal_and_wait(&first, SIGKILL, 60), 128 + SIGKILL);
    s_finish_and_compare(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signals_checkpoint_and_exit_with_the_code, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_max_runtime_self_evicts, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_at_random_moments_then_resume, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_finished_run_returns_at_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_signal_with_nothing_to_save_exits_1, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_and_foreign_checkpoints, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_second_process_on_the_same_checkpoint_refused, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
