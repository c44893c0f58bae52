/* test_reparam_resume.c - runs with angle reparameterisations (drawn
 * radii) resume exactly: the real coordinator on the sinusoid (one-input
 * periodic angle) and the sky toy (ra/dec angle pair) is stopped with
 * SIGTERM (checkpoint, exit 130) or SIGKILL (periodic checkpoint) mid-run
 * and resumed; result.json equals the uninterrupted run's bit for bit.
 * Also: the command-line errors for an unknown parameter and a periodic
 * parameter without a wrapping map exit 2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "result_compare.h"

#if !defined(NS_COORDINATOR) || !defined(NS_EXAMPLES_DIR)
#error "NS_COORDINATOR and NS_EXAMPLES_DIR must be defined"
#endif

static char s_dir[256];

static void s_start(th_proc_t *p, const char *out, const char *model, const char *args,
                    const char *extra1, const char *extra2)
{
    char path[512];
    snprintf(path, sizeof path, NS_EXAMPLES_DIR "/lib%s.so", model);
    char *argv[24];
    int n = 0;
    argv[n++] = NS_COORDINATOR;
    argv[n++] = "--output";
    argv[n++] = (char *)out;
    argv[n++] = "--model";
    argv[n++] = path;
    argv[n++] = "--model-args";
    argv[n++] = (char *)args;
    argv[n++] = "--seed";
    argv[n++] = "3";
    argv[n++] = "--n-pool";
    argv[n++] = "2";
    argv[n++] = "--nlive";
    argv[n++] = "500";
    argv[n++] = "--log-level";
    argv[n++] = "debug";
    argv[n++] = "--checkpoint-interval";
    argv[n++] = "0.2";
    if (extra1)
        argv[n++] = (char *)extra1;
    if (extra2)
        argv[n++] = (char *)extra2;
    argv[n] = NULL;
    assert_int_equal(th_spawn(p, argv, TH_MERGE), 0);
}

/* Reference run, then a run stopped by sig at iteration `at` and
 * resumed; the two result.json files must agree exactly. */
static void s_check(const char *model, const char *args, int sig, long at, const char *flag)
{
    char ref[300], out[300], log[320], rres[340], res[340];
    snprintf(ref, sizeof ref, "%s/%s-%d-ref", s_dir, model, sig);
    snprintf(out, sizeof out, "%s/%s-%d-run", s_dir, model, sig);
    snprintf(rres, sizeof rres, "%s/result.json", ref);
    snprintf(res, sizeof res, "%s/result.json", out);
    th_proc_t p;
    snprintf(log, sizeof log, "%s.log", ref);
    s_start(&p, ref, model, args, "--no-resume", NULL);
    th_set_log(&p, log);
    assert_true(th_wait_text(&p, flag, NULL, 0, 120));
    assert_int_equal(th_wait_exit(&p, 300), 0);
    snprintf(log, sizeof log, "%s.log", out);
    s_start(&p, out, model, args, NULL, NULL);
    th_set_log(&p, log);
    char needle[32];
    snprintf(needle, sizeof needle, "%ld: n: ", at);
    if (!th_wait_text(&p, needle, NULL, 0, 300))
        fail_msg("%s: iteration %ld not reached (log %s)", model, at, log);
    int code = th_signal_and_wait(&p, sig, 120);
    assert_int_equal(code, sig == SIGKILL ? 128 + SIGKILL : 130);
    s_start(&p, out, model, args, NULL, NULL);
    th_set_log(&p, log);
    assert_true(th_wait_text(&p, "Resuming from iteration", NULL, 0, 120));
    assert_int_equal(th_wait_exit(&p, 300), 0);
    char why[1200];
    if (rc_compare_files(rres, res, NULL, why, sizeof why) != 0)
        fail_msg("%s resumed after signal %d differs from the uninterrupted run: %s", model, sig,
                 why);
    print_message("%s: stopped by signal %d at iteration %ld, resumed: identical result\n",
                  model, sig, at);
}

static void test_sinusoid_periodic_resume(void **state)
{
    (void)state;
    s_check("sinusoid", "", SIGTERM, 2500, "phase=periodic");
    s_check("sinusoid", "", SIGKILL, 4000, "phase=periodic");
}

static void test_sky_pair_resume(void **state)
{
    (void)state;
    s_check("sky", "", SIGTERM, 2000, "ra+dec=angle-pair");
}

static int s_run_code(const char *model, const char *args, const char *o1, const char *o2,
                      const char *needle)
{
    char out[300], log[320];
    snprintf(out, sizeof out, "%s/err", s_dir);
    snprintf(log, sizeof log, "%s/err.log", s_dir);
    th_proc_t p;
    s_start(&p, out, model, args, o1, o2);
    th_set_log(&p, log);
    int found = th_wait_text(&p, needle, NULL, 0, 60);
    int code = th_wait_exit(&p, 60);
    if (!found)
        fail_msg("no '%s' in %s", needle, log);
    return code;
}

static void test_configuration_errors_exit_2(void **state)
{
    (void)state;
    assert_int_equal(s_run_code("sinusoid", "", "--reparameterisations", "{\"amp\": \"angle\"}",
                                "'amp' is not a parameter in the model"), 2);
    assert_int_equal(s_run_code("sinusoid", "", "--reparameterisations", "{\"phase\": \"zscore\"}",
                                "'phase' is periodic"), 2);
    assert_int_equal(s_run_code("sinusoid", "", "--reparameterisations", "phase:logit",
                                "'phase' is periodic"), 2);
    assert_int_equal(s_run_code("sky", "", "--reparameterisations", "{\"ra\": \"zscore\"}",
                                "'ra' is periodic"), 2);
    /* not declared periodic: any map is accepted */
    char out[300];
    snprintf(out, sizeof out, "%s/ok", s_dir);
    th_proc_t p;
    s_start(&p, out, "sinusoid", "periodic=0", "--reparameterisations", "{\"phase\": \"zscore\"}");
    assert_true(th_wait_text(&p, "phase=zscore", NULL, 0, 60));
    assert_int_equal(th_signal_and_wait(&p, SIGTERM, 60), 130);
    /* --flow-proposal gw: bilby's ra/dec names get the sky pair, and the log says so */
    snprintf(out, sizeof out, "%s/gw", s_dir);
    s_start(&p, out, "sky", "periodic=0", "--flow-proposal", "gw");
    assert_true(th_wait_text(&p, "reparameterisations ra+dec=sky-ra-dec (d'=3", NULL, 0, 60));
    assert_int_equal(th_signal_and_wait(&p, SIGTERM, 60), 130);
}

static int s_setup(void **state)
{
    (void)state;
    return th_mkdtemp(s_dir, sizeof s_dir, "ns-reparam-resume");
}

static int s_teardown(void **state)
{
    (void)state;
    th_kill_all();
    th_rm_rf(s_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configuration_errors_exit_2),
        cmocka_unit_test(test_sinusoid_periodic_resume),
        cmocka_unit_test(test_sky_pair_resume),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
