/* test_cli_errors.c - the real nessai-coordinator on bad input: each error
 * is one line naming the reason, with the documented exit code, and
 * leaves nothing behind where that is promised (docs/sampler.md, "Errors
 * and exit codes"):
 *  - --bind on a port in use (a socket of the test holds it): exit 1,
 *    before the output directory is made;
 *  - --bind values that cannot work: exit 2, nothing made;
 *  - an --output that cannot be written, is a file or lies under one;
 *  - options, numbers, model plugins and config files that are wrong;
 *  - a checkpoint written with another --nlive or flow setting, or past a
 *    lower --max-iteration: exit 2, its directory untouched;
 *  - a finished run cannot sample on to a lower --stopping;
 *  - settings a resume may change are applied and logged, and a new
 *    --max-iteration is honoured exactly (the same result as a run made
 *    with that limit from the start);
 *  - a run-time failure is reported once, on stderr and in nessai.log. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "result_compare.h"

#if !defined(NS_COORDINATOR) || !defined(NESSAI_EXAMPLES_DIR) || !defined(NS_TESTMODEL)
#error "NS_COORDINATOR, NESSAI_EXAMPLES_DIR and NS_TESTMODEL must be defined"
#endif

#define GAUSSIAN NESSAI_EXAMPLES_DIR "/libgaussian.so"
#define CKPT "nested_sampler_resume.ckpt"

typedef struct {
    char dir[256];   /* scratch directory of the case */
    char out[512];   /* --output inside it (not made by the test) */
    char log[512];   /* stdout and stderr of the last run */
} s_fx_t;

static int s_setup(void **state)
{
    s_fx_t *f = calloc(1, sizeof *f);
    if (!f || th_mkdtemp(f->dir, sizeof f->dir, "ns-cli-errors") != 0)
        return -1;
    snprintf(f->out, sizeof f->out, "%s/out", f->dir);
    snprintf(f->log, sizeof f->log, "%s/run.log", f->dir);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fx_t *f = *state;
    if (f)
        th_rm_rf(f->dir);
    free(f);
    return 0;
}

/* Run the coordinator with --no-plot and the NULL-terminated arguments;
 * its exit code, its stdout and stderr in f->log. */
static int s_run(s_fx_t *f, ...)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = NS_COORDINATOR;
    argv[n++] = "--no-plot";
    va_list ap;
    va_start(ap, f);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 62)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return th_run(argv, f->log, 120);
}

/* f->log is exactly one line, "nessai-coordinator: error: ...", holding
 * needle. */
static void s_assert_one_line(const s_fx_t *f, const char *needle)
{
    char *text = th_slurp(f->log);
    assert_non_null(text);
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    if (lines != 1 || strncmp(text, "nessai-coordinator: error: ", 27) != 0 || !strstr(text, needle))
        fail_msg("expected one line 'nessai-coordinator: error: ...%s...', got:\n%s", needle, text);
    free(text);
}

/* The case: exit code, one line with needle, nothing at f->out. */
static void s_expect(s_fx_t *f, int code, const char *needle, int rc)
{
    if (rc != code) {
        char *text = th_slurp(f->log);
        fail_msg("exit %d, expected %d; output:\n%s", rc, code, text ? text : "");
    }
    s_assert_one_line(f, needle);
}

/* ---- --bind ---- */

static void test_bind_port_in_use(void **state)
{
    s_fx_t *f = *state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    char ep[64], want[128];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", ntohs(sa.sin_port));
    snprintf(want, sizeof want, "cannot bind %s: Address already in use", ep);
    int rc = s_run(f, "--model", GAUSSIAN, "--bind", ep, "--output", f->out, NULL);
    close(fd);
    s_expect(f, 1, want, rc);
    assert_false(th_exists(f->out));
}

static void test_bind_values_that_cannot_work(void **state)
{
    s_fx_t *f = *state;
    static const struct {
        const char *bind, *needle;
    } cases[] = {
        {"127.0.0.1:5555", "--bind 127.0.0.1:5555: the farm needs a tcp:// endpoint"},
        {"ipc:///tmp/nessai-farm", "--bind ipc:///tmp/nessai-farm: the farm needs a tcp:// endpoint"},
        {"tcp://127.0.0.1", "--bind tcp://127.0.0.1: give the endpoint as tcp://HOST:PORT"},
        {"tcp://:5555", "--bind tcp://:5555: give the endpoint as tcp://HOST:PORT"},
        {"tcp://127.0.0.1:70000", "port '70000' is not 1-65535"},
        {"tcp://127.0.0.1:55x", "port '55x' is not 1-65535"},
        {"tcp://no-such-interface9:5555",
         "--bind tcp://no-such-interface9:5555: no such interface or address on this machine "
         "(No such device)"},
        {"tcp://192.0.2.77:5555",   /* TEST-NET-1: never an address of this machine */
         "--bind tcp://192.0.2.77:5555: no such interface or address on this machine "
         "(Cannot assign requested address)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = s_run(f, "--model", GAUSSIAN, "--bind", cases[i].bind, "--output", f->out, NULL);
        s_expect(f, 2, cases[i].needle, rc);
        assert_false(th_exists(f->out));
    }
}

/* ---- --output ---- */

static void test_output_unwritable(void **state)
{
    s_fx_t *f = *state;
    /* root writes through mode bits: take a directory no one can write in */
    char dir[512];
    if (geteuid() == 0)
        snprintf(dir, sizeof dir, "/sys");
    else {
        snprintf(dir, sizeof dir, "%s/readonly", f->dir);
        assert_int_equal(mkdir(dir, 0555), 0);
    }
    char want[1400];
    snprintf(want, sizeof want, "--output %s: cannot write in this directory: Permission denied", dir);
    int rc = s_run(f, "--model", GAUSSIAN, "--output", dir, NULL);
    s_expect(f, 2, want, rc);
    /* a missing directory under it cannot be made either */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/run1", dir);
    snprintf(want, sizeof want, "--output %s: cannot create it in %s: ", sub, dir);
    rc = s_run(f, "--model", GAUSSIAN, "--output", sub, NULL);
    s_expect(f, 2, want, rc);
    assert_false(th_exists(sub));
    if (geteuid() != 0)
        chmod(dir, 0755);
}

static void test_output_is_a_file(void **state)
{
    s_fx_t *f = *state;
    char file[512], under[600], want[1400];
    snprintf(file, sizeof file, "%s/a-file", f->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(want, sizeof want, "--output %s exists and is not a directory", file);
    s_expect(f, 2, want, s_run(f, "--model", GAUSSIAN, "--output", file, NULL));
    snprintf(under, sizeof under, "%s/sub", file);
    snprintf(want, sizeof want, "--output %s: Not a directory", under);
    s_expect(f, 2, want, s_run(f, "--model", GAUSSIAN, "--output", under, NULL));
    assert_int_equal(th_file_size(file), 0);
}

/* ---- options, numbers, plugins, config files ---- */

static void test_bad_options_and_values(void **state)
{
    s_fx_t *f = *state;
    char notso[512], badkey[512], badval[512];
    snprintf(notso, sizeof notso, "%s/libnot-a-plugin.so", f->dir);
    snprintf(badkey, sizeof badkey, "%s/badkey.ini", f->dir);
    snprintf(badval, sizeof badval, "%s/badval.ini", f->dir);
    FILE *fp = fopen(notso, "w");
    assert_non_null(fp);
    fputs("this is text, not a shared object\n", fp);
    fclose(fp);
    fp = fopen(badkey, "w");
    assert_non_null(fp);
    fputs("nlive = 100\nno_such_setting = 3\n", fp);
    fclose(fp);
    fp = fopen(badval, "w");
    assert_non_null(fp);
    fputs("nlive = 100\nstopping = small\n", fp);
    fclose(fp);

    s_expect(f, 2, "unknown option '--nlivee'",
             s_run(f, "--model", GAUSSIAN, "--nlivee", "100", "--output", f->out, NULL));
    s_expect(f, 2, "--nlive expects a whole number at least 2, got 'abc'",
             s_run(f, "--model", GAUSSIAN, "--nlive", "abc", "--output", f->out, NULL));
    s_expect(f, 2, "--nlive must be at least 2, got 0",
             s_run(f, "--model", GAUSSIAN, "--nlive", "0", "--output", f->out, NULL));
    s_expect(f, 2, "--nlive must be at least 2, got -5",
             s_run(f, "--model", GAUSSIAN, "--nlive", "-5", "--output", f->out, NULL));
    s_expect(f, 2, "--max-iteration must be at least 1, got -1",
             s_run(f, "--model", GAUSSIAN, "--max-iteration", "-1", "--output", f->out, NULL));
    s_expect(f, 2, "not found: check the --model path",
             s_run(f, "--model", "/nonexistent/libnone.so", "--output", f->out, NULL));
    /* dlopen's own reason */
    s_expect(f, 2, "file too short",
             s_run(f, "--model", notso, "--output", f->out, NULL));
    s_expect(f, 2, "unknown setting 'no_such_setting'",
             s_run(f, "--model", GAUSSIAN, "--config", badkey, "--output", f->out, NULL));
    s_expect(f, 2, "--stopping expects a number at least 0, got 'small'",
             s_run(f, "--model", GAUSSIAN, "--config", badval, "--output", f->out, NULL));
    s_expect(f, 2, "--worker-path /nonexistent/nessai-worker is not an executable file",
             s_run(f, "--model", GAUSSIAN, "--n-pool", "2", "--worker-path",
                   "/nonexistent/nessai-worker", "--output", f->out, NULL));
    s_expect(f, 2, "--worker-keys /nonexistent/keys: not a readable directory",
             s_run(f, "--model", GAUSSIAN, "--bind", "tcp://127.0.0.1:*", "--curve", "--worker-keys",
                   "/nonexistent/keys", "--output", f->out, NULL));
    assert_false(th_exists(f->out));
}

/* ---- resume ---- */

/* A finished run of --max-iteration its (seed 1, nlive 100, d = 2) into out. */
static void s_short_run(s_fx_t *f, const char *out, const char *its)
{
    int rc = s_run(f, "--model", GAUSSIAN, "--nlive", "100", "--max-iteration", its, "--seed", "1",
                   "--checkpoint-interval", "0", "--no-result-hdf5", "--output", out, NULL);
    if (rc != 0) {
        char *text = th_slurp(f->log);
        fail_msg("short run exit %d:\n%s", rc, text ? text : "");
    }
}

/* Names and sizes of the entries of dir, one a line. */
static char *s_listing(const char *dir)
{
    char cmd[1400], path[600];
    snprintf(path, sizeof path, "%s.listing", dir);
    snprintf(cmd, sizeof cmd, "ls -ln --time-style=+%%s.%%N '%s' | awk '{print $5, $6, $7}' > '%s'",
             dir, path);
    assert_int_equal(system(cmd), 0);
    char *text = th_slurp(path);
    unlink(path);
    return text;
}

static void test_resume_with_other_settings_refused(void **state)
{
    s_fx_t *f = *state;
    s_short_run(f, f->out, "150");
    char *before = s_listing(f->out);
    char want[1400];
    snprintf(want, sizeof want, "checkpoint %s/" CKPT " was written with --nlive 100; this run has "
             "--nlive 200 (use the same value, or another --output)", f->out);
    s_expect(f, 2, want, s_run(f, "--model", GAUSSIAN, "--nlive", "200", "--max-iteration", "150",
                               "--output", f->out, NULL));
    snprintf(want, sizeof want, "checkpoint %s/" CKPT " was written with --flow-n-blocks 4; this "
             "run has --flow-n-blocks 2", f->out);
    s_expect(f, 2, want, s_run(f, "--model", GAUSSIAN, "--nlive", "100", "--flow-n-blocks", "2",
                               "--output", f->out, NULL));
    snprintf(want, sizeof want, "checkpoint %s/" CKPT " was written with --threads 1; this run has "
             "--threads 2", f->out);
    s_expect(f, 2, want, s_run(f, "--model", GAUSSIAN, "--nlive", "100", "--threads", "2",
                               "--output", f->out, NULL));
    snprintf(want, sizeof want, "checkpoint %s/" CKPT " is at iteration 150, past this run's "
             "--max-iteration 120 (give at least 150, or another --output)", f->out);
    s_expect(f, 2, want, s_run(f, "--model", GAUSSIAN, "--nlive", "100", "--max-iteration", "120",
                               "--output", f->out, NULL));
    /* another model dimension: the checkpoint's identity, in one line too */
    s_expect(f, 2, "this run is model 'gaussian' (dim 3)",
             s_run(f, "--model", GAUSSIAN, "--model-args", "dim=3", "--nlive", "100",
                   "--output", f->out, NULL));
    char *after = s_listing(f->out);
    assert_string_equal(before, after);   /* nothing written, not even nessai.log */
    free(before);
    free(after);
    /* a damaged checkpoint and .old: one line, exit 2 */
    char ck[1400], old[1400];
    snprintf(ck, sizeof ck, "%s/" CKPT, f->out);
    snprintf(old, sizeof old, "%s/" CKPT ".old", f->out);
    assert_int_equal(th_flip_bit(ck, 30, 1), 0);
    assert_int_equal(th_flip_bit(old, 30, 1), 0);
    s_expect(f, 2, "no usable checkpoint",
             s_run(f, "--model", GAUSSIAN, "--nlive", "100", "--output", f->out, NULL));
}

static void test_resume_safe_changes_logged_and_max_iteration_honoured(void **state)
{
    s_fx_t *f = *state;
    char fresh[512], result[600], fresh_result[600], nlog[600];
    snprintf(fresh, sizeof fresh, "%s/fresh", f->dir);
    snprintf(result, sizeof result, "%s/result.json", f->out);
    snprintf(fresh_result, sizeof fresh_result, "%s/result.json", fresh);
    snprintf(nlog, sizeof nlog, "%s/nessai.log", f->out);
    s_short_run(f, fresh, "260");
    s_short_run(f, f->out, "150");
    int rc = s_run(f, "--model", GAUSSIAN, "--nlive", "100", "--max-iteration", "260",
                   "--stopping", "0.05", "--progress-interval", "30", "--log-level", "info",
                   "--checkpoint-interval", "inf", "--output", f->out, NULL);
    assert_int_equal(rc, 0);
    assert_true(th_file_contains(nlog, "resume: --stopping changed from 0.1 to 0.05"));
    assert_true(th_file_contains(nlog, "resume: --max-iteration changed from 150 to 260"));
    assert_true(th_file_contains(nlog, "resume: --progress-interval changed from 60 to 30"));
    assert_true(th_file_contains(nlog, "resume: --checkpoint-interval changed from 0 to inf"));
    assert_true(th_file_contains(nlog, "Reached max iteration (260)"));
    /* the stopping criterion is not part of the result: the run is the one
     * made with --max-iteration 260 from the start */
    const char *ignore[] = {"stopping", NULL};
    char why[1200];
    if (rc_compare_files(fresh_result, result, ignore, why, sizeof why) != 0)
        fail_msg("resumed to --max-iteration 260 differs from the run made with it: %s", why);
}

/* A run that finished on its criterion cannot sample on to a lower
 * --stopping (exit 2, said once); a higher one leaves its result. */
static void test_finished_run_and_lower_stopping(void **state)
{
    s_fx_t *f = *state;
    char nlog[600], result[600], kept[600], why[1200];
    snprintf(nlog, sizeof nlog, "%s/nessai.log", f->out);
    snprintf(result, sizeof result, "%s/result.json", f->out);
    snprintf(kept, sizeof kept, "%s/first.json", f->dir);
    assert_int_equal(s_run(f, "--model", GAUSSIAN, "--nlive", "100", "--stopping", "1", "--seed",
                           "2", "--no-result-hdf5", "--output", f->out, NULL), 0);
    assert_int_equal(rename(result, kept), 0);
    int rc = s_run(f, "--model", GAUSSIAN, "--nlive", "100", "--stopping", "0.5",
                   "--no-result-hdf5", "--output", f->out, NULL);
    assert_int_equal(rc, 2);
    char want[1400];
    snprintf(want, sizeof want, "checkpoint %s/" CKPT " holds a run that finished at --stopping 1; "
             "it cannot sample on to --stopping 0.5", f->out);
    char *text = th_slurp(f->log);
    assert_non_null(text);
    const char *hit = strstr(text, want);
    if (!hit || strstr(hit + 1, want) || strstr(text, "nessai-coordinator: error:"))
        fail_msg("expected the refusal once, as the only error:\n%s", text);
    free(text);
    assert_false(th_exists(result));
    assert_int_equal(s_run(f, "--model", GAUSSIAN, "--nlive", "100", "--stopping", "2",
                           "--no-result-hdf5", "--output", f->out, NULL), 0);
    assert_true(th_file_contains(nlog, "resume: the run had already finished at --stopping 1"));
    const char *ignore[] = {"stopping", NULL};
    if (rc_compare_files(kept, result, ignore, why, sizeof why) != 0)
        fail_msg("the finished run's result changed: %s", why);
}

/* A checkpoint taken at iteration k of a longer run (the .old one, from
 * --checkpoint-interval 0), resumed with --max-iteration k, stops at k
 * without drawing more: the result is the run of --max-iteration k. */
static void test_resume_at_max_iteration_stops_there(void **state)
{
    s_fx_t *f = *state;
    char longer[512], from[1400], to[1400], fresh[512], a[600], b[600];
    snprintf(longer, sizeof longer, "%s/longer", f->dir);
    snprintf(fresh, sizeof fresh, "%s/fresh", f->dir);
    s_short_run(f, longer, "140");
    s_short_run(f, fresh, "139");
    /* the last periodic checkpoint, at 139; the final one, at 140, is the main file */
    snprintf(from, sizeof from, "%s/" CKPT ".old", longer);
    assert_int_equal(mkdir(f->out, 0755), 0);
    snprintf(to, sizeof to, "%s/" CKPT, f->out);
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
    int rc = s_run(f, "--model", GAUSSIAN, "--nlive", "100", "--max-iteration", "139",
                   "--checkpoint-interval", "0", "--no-result-hdf5", "--output", f->out, NULL);
    assert_int_equal(rc, 0);
    snprintf(a, sizeof a, "%s/result.json", fresh);
    snprintf(b, sizeof b, "%s/result.json", f->out);
    assert_int_equal((long)rc_top_number(b, "iterations"), 139);
    char why[1200];
    if (rc_compare_files(a, b, NULL, why, sizeof why) != 0)
        fail_msg("resumed at --max-iteration 139 differs from the run made with it: %s", why);
}

/* ---- once ---- */

static void test_run_time_failure_reported_once(void **state)
{
    s_fx_t *f = *state;
    int rc = s_run(f, "--model", NS_TESTMODEL, "--model-args", "mode=fail", "--nlive", "100",
                   "--maximum-uninformed", "inf", "--uninformed-acceptance-threshold", "0",
                   "--seed", "1", "--output", f->out, NULL);
    assert_int_equal(rc, 1);
    char nlog[600];
    snprintf(nlog, sizeof nlog, "%s/nessai.log", f->out);
    const char *sources[] = {f->log, nlog};
    for (int s = 0; s < 2; s++) {
        char *text = th_slurp(sources[s]);
        assert_non_null(text);
        int errors = 0, reason = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            errors += strstr(line, "ERROR") != NULL || strstr(line, "error:") != NULL;
            reason += strstr(line, "told to fail") != NULL;
        }
        if (errors != 1 || reason != 1)
            fail_msg("%s: %d error lines, %d with the reason; expected one", sources[s], errors,
                     reason);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bind_port_in_use, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bind_values_that_cannot_work, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_output_unwritable, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_output_is_a_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_options_and_values, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_resume_with_other_settings_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_resume_safe_changes_logged_and_max_iteration_honoured,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_resume_at_max_iteration_stops_there, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_finished_run_and_lower_stopping, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_run_time_failure_reported_once, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
