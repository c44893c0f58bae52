/* test_ckpt_coordinator.c - checkpoints of the real nessai-coordinator with
 * real signals, real kills and real workers, on S5 (rosenbrock, d = 4)
 * with 3 workers:
 *  - SIGTERM in the uninformed stage, in flow training and in a farm batch
 *    each give exit 130 and a checkpoint, and the resumed run ends with the
 *    uninterrupted run's result;
 *  - SIGKILL at five random moments, resumed each time, gives a result.json
 *    identical to the uninterrupted run (timings and farm counters aside);
 *  - truncated and bit-flipped checkpoints fall back to .old or are refused
 *    (exit 2); another model's checkpoint is refused with a clear message;
 *  - a finished run returns its result at once;
 *  - workers that lose the coordinator keep retrying and serve the resumed
 *    run without being restarted. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "cmocka_select.h"
#include "result_compare.h"

#if !defined(NS_COORDINATOR) || !defined(NS_WORKER) || !defined(NS_EXAMPLES_DIR)
#error "NS_COORDINATOR, NS_WORKER and NS_EXAMPLES_DIR must be defined"
#endif

#define ROSENBROCK NS_EXAMPLES_DIR "/librosenbrock.so"
#define GAUSSIAN NS_EXAMPLES_DIR "/libgaussian.so"
#define CKPT_NAME "nested_sampler_resume.ckpt"

static char s_ref_dir[256];      /* the uninterrupted S5 d=4 run */
static char s_ref_result[400];
static long s_ref_iterations;
static double s_ref_seconds;     /* its wall time */

typedef struct {
    char dir[256];
    char out[300];
    char ckpt[400];
    char old[410];
    int runs;            /* numbering of the per-run log copies */
    char log[400];       /* log copy of the latest run */
} s_fx_t;

/* ---- helpers ---- */

/* Start the coordinator on S5 d=4 with seed 7 (unless the extras give
 * --seed): base arguments, then the NULL-terminated extras. Its stderr and stdout go to a pipe the test
 * reads; a copy of what was read goes to log (if not NULL). */
static void s_start_v(th_proc_t *p, const char *log, const char *out, va_list ap)
{
    char *argv[48];
    int n = 0;
    argv[n++] = NS_COORDINATOR;
    argv[n++] = "--output";
    argv[n++] = (char *)out;
    argv[n++] = "--no-plot"; /* timings here are the sampler's, not matplotlib's */
    const char *a;
    int have_model = 0, have_seed = 0;
    while ((a = va_arg(ap, const char *)) && n < 40) {
        have_model |= strcmp(a, "--model") == 0;
        have_seed |= strcmp(a, "--seed") == 0;
        argv[n++] = (char *)a;
    }
    if (!have_seed) {
        argv[n++] = "--seed";
        argv[n++] = "7";
    }
    if (!have_model) {
        argv[n++] = "--model";
        argv[n++] = ROSENBROCK;
        argv[n++] = "--model-args";
        argv[n++] = "dim=4";
    }
    argv[n] = NULL;
    assert_int_equal(th_spawn(p, argv, TH_MERGE), 0);
    th_set_log(p, log);
}

static void s_start(th_proc_t *p, const char *log, const char *out, ...)
{
    va_list ap;
    va_start(ap, out);
    s_start_v(p, log, out, ap);
    va_end(ap);
}

/* A fresh log copy name for the next run of this fixture. */
static const char *s_next_log(s_fx_t *f)
{
    snprintf(f->log, sizeof f->log, "%s/run%02d.log", f->dir, ++f->runs);
    return f->log;
}

/* Read until the per-iteration DEBUG line of an iteration >= k; returns
 * that iteration or -1. */
static long s_wait_iteration(th_proc_t *p, long k, double timeout)
{
    char line[2048];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double left = timeout - (double)(t1.tv_sec - t0.tv_sec) - 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (left <= 0 || !th_wait_text(p, ": n: ", line, sizeof line, left))
            return -1;
        char *colon = strstr(line, ": n: ");
        char *q = colon;
        while (q > line && (q[-1] == ' ' || (q[-1] >= '0' && q[-1] <= '9')))
            q--;
        long it = strtol(q, NULL, 10);
        if (it >= k)
            return it;
    }
}

static void s_assert_identical(const char *result)
{
    char why[1200];
    int rv = rc_compare_files(s_ref_result, result, NULL, why, sizeof why);
    if (rv != 0)
        fail_msg("%s differs from the uninterrupted run: %s", result, why);
}

/* The result in f->out is the uninterrupted run's. */
static void s_assert_out_identical(const s_fx_t *f)
{
    char res[400];
    snprintf(res, sizeof res, "%s/result.json", f->out);
    s_assert_identical(res);
}

/* Resume in f->out until the end; exit 0 and the reference result. */
static void s_resume_to_end(s_fx_t *f)
{
    th_proc_t p;
    s_start(&p, s_next_log(f), f->out, "--n-pool", "3", NULL);
    int code = th_wait_exit(&p, 300);
    if (code != 0)
        fail_msg("resumed run exited %d (log %s)", code, f->log);
    assert_true(th_file_contains(f->log, "Resuming from iteration"));
    s_assert_out_identical(f);
}

/* ---- fixtures ---- */

/* The uninterrupted reference run into dir/out, its wall time into
 * dir/seconds. 0 on success. */
static int s_make_reference(const char *dir)
{
    th_rm_rf(dir);
    char out[300], log[320], secs[320];
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(log, sizeof log, "%s/ref.log", dir);
    snprintf(secs, sizeof secs, "%s/seconds", dir);
    if (mkdir(dir, 0755) != 0)
        return -1;
    th_proc_t p;
    double t0 = th_now();
    s_start(&p, log, out, "--n-pool", "3", "--no-resume", NULL);
    int code = th_wait_exit(&p, 300);
    double seconds = th_now() - t0;
    if (code != 0) {
        fprintf(stderr, "the reference run failed (exit %d); see %s\n", code, log);
        return -1;
    }
    FILE *fp = fopen(secs, "w");
    if (!fp || fprintf(fp, "%.3f\n", seconds) < 0 || fclose(fp) != 0)
        return -1;
    printf("reference run: %.1f s, in %s\n", seconds, out);
    return 0;
}

/* Directory of the reference run: given (--reference DIR), or made here
 * in a scratch directory (s_own_ref). */
static const char *s_ref_given;
static int s_own_ref;

static int s_group_setup(void **state)
{
    (void)state;
    if (s_ref_given) {
        snprintf(s_ref_dir, sizeof s_ref_dir, "%s", s_ref_given);
    } else {
        char tmp[200];
        if (th_mkdtemp(tmp, sizeof tmp, "ns-ckpt-coord-ref") != 0)
            return -1;
        snprintf(s_ref_dir, sizeof s_ref_dir, "%s/ref", tmp);
        s_own_ref = 1;
        if (s_make_reference(s_ref_dir) != 0)
            return -1;
    }
    snprintf(s_ref_result, sizeof s_ref_result, "%s/out/result.json", s_ref_dir);
    char secs[320];
    snprintf(secs, sizeof secs, "%s/seconds", s_ref_dir);
    char *text = th_slurp(secs);
    s_ref_seconds = text ? strtod(text, NULL) : 0;
    free(text);
    double it = rc_top_number(s_ref_result, "iterations");
    s_ref_iterations = isnan(it) ? 0 : (long)it;
    if (s_ref_seconds <= 0 || s_ref_iterations <= 1000) {
        print_error("no usable reference run in %s (%ld iterations, %.1f s)\n", s_ref_dir,
                    s_ref_iterations, s_ref_seconds);
        return -1;
    }
    print_message("reference run: %ld iterations, %.1f s\n", s_ref_iterations, s_ref_seconds);
    return 0;
}

static int s_group_teardown(void **state)
{
    (void)state;
    th_kill_all();
    if (s_own_ref) {
        char *slash = strrchr(s_ref_dir, '/');
        *slash = '\0';
        th_rm_rf(s_ref_dir);
    }
    return 0;
}

static int s_setup(void **state)
{
    s_fx_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    if (th_mkdtemp(f->dir, sizeof f->dir, "ns-ckpt-coord") != 0)
        return -1;
    snprintf(f->out, sizeof f->out, "%s/out", f->dir);
    snprintf(f->ckpt, sizeof f->ckpt, "%s/" CKPT_NAME, f->out);
    snprintf(f->old, sizeof f->old, "%s.old", f->ckpt);
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

/* ---- tests ---- */

static void test_sigterm_in_uninformed_stage(void **state)
{
    s_fx_t *f = *state;
    th_proc_t p;
    s_start(&p, s_next_log(f), f->out, "--n-pool", "3", "--log-level", "debug", NULL);
    assert_true(s_wait_iteration(&p, 300, 120) >= 300);
    assert_int_equal(th_signal_and_wait(&p, SIGTERM, 120), 130);
    assert_false(th_file_contains(f->log, "Switching to FlowProposal"));
    assert_true(th_file_contains(f->log, "checkpoint: written reason=signal"));
    assert_true(th_exists(f->ckpt));
    s_resume_to_end(f);
}

static void test_sigterm_in_flow_training(void **state)
{
    s_fx_t *f = *state;
    th_proc_t p;
    s_start(&p, s_next_log(f), f->out, "--n-pool", "3", "--log-level", "debug", NULL);
    /* The first training starts right after the switch and takes about a
     * second; it logs "flow: training 1: ..." only when it completes. */
    assert_true(th_wait_text(&p, "Switching to FlowProposal", NULL, 0, 120));
    assert_int_equal(th_signal_and_wait(&p, SIGTERM, 120), 130);
    assert_false(th_file_contains(f->log, "flow: training 1:"));
    assert_true(th_file_contains(f->log, "checkpoint: written reason=signal"));
    s_resume_to_end(f);
}

static void test_sigterm_in_farm_batch(void **state)
{
    s_fx_t *f = *state;
    /* Slow likelihoods (1 ms a point) so that a batch lasts long enough to
     * be interrupted; its own reference run. */
    char ref_out[400], ref_log[400];
    snprintf(ref_out, sizeof ref_out, "%s/ref", f->dir);
    snprintf(ref_log, sizeof ref_log, "%s/ref.log", f->dir);
    const char *args = "dim=4,delay_ms=1";
    th_proc_t p;
    s_start(&p, ref_log, ref_out, "--model", ROSENBROCK, "--model-args", args, "--n-pool", "3",
            "--nlive", "300", "--max-iteration", "1500", "--no-resume", NULL);
    assert_int_equal(th_wait_exit(&p, 300), 0);

    s_start(&p, s_next_log(f), f->out, "--model", ROSENBROCK, "--model-args", args, "--n-pool",
            "3", "--nlive", "300", "--max-iteration", "1500", "--log-level", "debug", NULL);
    for (int i = 0; i < 3; i++)
        assert_true(th_wait_text(&p, "farm: batch ", NULL, 0, 120));
    /* The batch (300 points at 1 ms on 3 workers) lasts about 100 ms: land
     * in its middle, while the coordinator waits for the results. */
    struct timespec mid = {0, 30 * 1000000L};
    nanosleep(&mid, NULL);
    assert_int_equal(th_signal_and_wait(&p, SIGTERM, 120), 130);
    assert_true(th_file_contains(f->log, "interrupted while evaluating batch"));
    assert_true(th_exists(f->ckpt));

    s_start(&p, s_next_log(f), f->out, "--model", ROSENBROCK, "--model-args", args, "--n-pool",
            "3", "--nlive", "300", "--max-iteration", "1500", NULL);
    assert_int_equal(th_wait_exit(&p, 300), 0);
    char a[450], b[450], why[1200];
    snprintf(a, sizeof a, "%s/result.json", ref_out);
    snprintf(b, sizeof b, "%s/result.json", f->out);
    if (rc_compare_files(a, b, NULL, why, sizeof why) != 0)
        fail_msg("resumed after a batch interrupt: %s", why);
}

/* SIGINT with HTCondor's convention (+SuccessCheckpointExitCode = 77). */
static void test_sigint_with_another_exit_code(void **state)
{
    s_fx_t *f = *state;
    th_proc_t p;
    s_start(&p, s_next_log(f), f->out, "--n-pool", "3", "--log-level", "debug",
            "--checkpoint-exit-code", "77", NULL);
    assert_true(s_wait_iteration(&p, 2000, 120) >= 2000);
    assert_int_equal(th_signal_and_wait(&p, SIGINT, 120), 77);
    assert_true(th_file_contains(f->log, "stopping on SIGINT"));
    /* Resumed without a seed (--seed none: a random one): the checkpoint's
     * seed is used, and the result is the seed-7 result. */
    s_start(&p, s_next_log(f), f->out, "--n-pool", "3", "--seed", "none", NULL);
    assert_int_equal(th_wait_exit(&p, 300), 0);
    assert_true(th_file_contains(f->log, "Continuing with the checkpoint's seed 7"));
    s_assert_out_identical(f);
}

/* The --max-runtime limit for a run that must stop by itself at least once:
 * half the reference run's wall time, halved again for each earlier attempt
 * that finished within the limit (the reference may have run on a busier
 * machine than this case: each is its own ctest). */
static void s_half_run_limit(char *limit, size_t cap, int attempt)
{
    snprintf(limit, cap, "%.3f", s_ref_seconds / 2 / (double)(1 << attempt));
    if (attempt > 0)
        print_message("the run ended within the limit (the machine is less busy than during the "
                      "reference run): again with --max-runtime %s\n", limit);
}

/* --max-runtime: the coordinator checkpoints and exits with 130 by itself,
 * again and again, until the run is done; the result is the same. */
static void test_max_runtime_self_eviction(void **state)
{
    s_fx_t *f = *state;
    int evictions = 0;
    /* Half the uninterrupted run: one or two evictions. Each resume pays
     * start-up again (model check, three workers) and redoes the step that
     * was interrupted, so a much smaller fraction can leave no progress per
     * round on a slow build (sanitizers) or a loaded machine. */
    for (int attempt = 0; attempt < 4 && evictions == 0; attempt++) {
        char limit[32];
        s_half_run_limit(limit, sizeof limit, attempt);
        th_rm_rf(f->out);
        for (int round = 0; round < 40; round++) {
            th_proc_t p;
            s_start(&p, s_next_log(f), f->out, "--n-pool", "3", "--max-runtime", limit, NULL);
            int code = th_wait_exit(&p, 120);
            if (code == 0)
                break;
            if (code != 130)
                fail_msg("round %d: exit %d (log %s)", round, code, f->log);
            assert_true(th_file_contains(f->log, "max-runtime reached"));
            evictions++;
        }
    }
    assert_true(evictions >= 1);
    print_message("%d self-evictions before the end\n", evictions);
    s_assert_out_identical(f);
}

/* A --max-runtime too short to get past start-up after a resume makes no
 * or almost no progress (a few iterations when the resumed pool still has
 * points): the coordinator still checkpoints and exits with the code, and
 * says plainly that the limit is too short. */
static void test_max_runtime_without_progress_warns(void **state)
{
    s_fx_t *f = *state;
    th_proc_t p;
    int code = 0;
    for (int attempt = 0; attempt < 4 && code == 0; attempt++) {
        char limit[32];
        s_half_run_limit(limit, sizeof limit, attempt);
        th_rm_rf(f->out);
        s_start(&p, s_next_log(f), f->out, "--max-runtime", limit, NULL);
        code = th_wait_exit(&p, 120);
    }
    assert_int_equal(code, 130);
    assert_false(th_file_contains(f->log, "is too short"));
    s_start(&p, s_next_log(f), f->out, "--max-runtime", "0.001", NULL);
    assert_int_equal(th_wait_exit(&p, 120), 130);
    assert_true(th_file_contains(f->log, "is too short"));
}

/* A signal when the checkpoint cannot be written ends with exit 1, never
 * the checkpoint code. */
static void test_signal_without_checkpoint_exits_1(void **state)
{
    s_fx_t *f = *state;
    th_proc_t p;
    s_start(&p, s_next_log(f), f->out, "--n-pool", "3", "--log-level", "debug",
            "--resume-file", "no/such/dir/resume.ckpt", NULL);
    assert_true(s_wait_iteration(&p, 500, 120) >= 500);
    assert_int_equal(th_signal_and_wait(&p, SIGTERM, 120), 1);
    assert_true(th_file_contains(f->log, "checkpoint: write failed"));
}

static int s_cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* The done-check: kills at five different moments, the first one
 * during start-up (model check, farm start, initial live points), the others
 * at random iterations of the whole run, each some random milliseconds into
 * the iteration (inside a population, a training or a batch). */
static void test_sigkill_at_five_moments_identical_result(void **state)
{
    s_fx_t *f = *state;
    unsigned seed = th_seed("kill moments");
    srand(seed);
    long at[5];
    at[0] = 0;
    for (int i = 1; i < 5; i++)
        at[i] = 1 + rand() % (s_ref_iterations - 1);
    qsort(at + 1, 4, sizeof at[0], s_cmp_long);
    print_message("kill seed %u: start-up, then iterations %ld %ld %ld %ld\n", seed, at[1], at[2],
                  at[3], at[4]);
    for (int i = 0; i < 5; i++) {
        th_proc_t p;
        s_start(&p, s_next_log(f), f->out, "--n-pool", "3", "--log-level", "debug",
                "--checkpoint-interval", "0.5", NULL);
        if (at[i] == 0)
            assert_true(th_wait_text(&p, "Populating initial live points", NULL, 0, 120));
        else
            assert_true(s_wait_iteration(&p, at[i], 300) >= at[i]);
        struct timespec ts = {0, (long)(rand() % 30) * 1000000L};
        nanosleep(&ts, NULL);
        int code = th_signal_and_wait(&p, SIGKILL, 60);
        if (code != 128 + SIGKILL)
            fail_msg("kill %d (iteration %ld): exit %d, log %s", i, at[i], code, f->log);
        print_message("killed at iteration >= %ld\n", at[i]);
    }
    s_resume_to_end(f);
    print_message("identical result.json after 5 kills\n");
}

static void test_truncated_and_bit_flipped_checkpoints(void **state)
{
    s_fx_t *f = *state;
    th_proc_t p;
    s_start(&p, s_next_log(f), f->out, "--n-pool", "3", "--log-level", "debug",
            "--checkpoint-interval", "0.2", NULL);
    assert_true(s_wait_iteration(&p, 6000, 120) >= 6000);
    assert_int_equal(th_signal_and_wait(&p, SIGTERM, 120), 130);
    assert_true(th_exists(f->old));

    /* Another model in the same --output is refused, naming both. */
    s_start(&p, s_next_log(f), f->out, "--model", GAUSSIAN, "--n-pool", "3", NULL);
    assert_int_equal(th_wait_exit(&p, 120), 2);
    assert_true(th_file_contains(f->log, "refusing to resume"));
    assert_true(th_file_contains(f->log, "'rosenbrock'"));
    assert_true(th_file_contains(f->log, "'gaussian'"));
    /* So is the same model with other arguments. */
    s_start(&p, s_next_log(f), f->out, "--model", ROSENBROCK, "--model-args", "dim=5", NULL);
    assert_int_equal(th_wait_exit(&p, 120), 2);
    assert_true(th_file_contains(f->log, "refusing to resume"));
    /* And a run with another --seed, or settings the saved state cannot
     * take (another --nlive). */
    s_start(&p, s_next_log(f), f->out, "--n-pool", "3", "--seed", "8", NULL);
    assert_int_equal(th_wait_exit(&p, 120), 2);
    assert_true(th_file_contains(f->log, "--seed 7"));
    s_start(&p, s_next_log(f), f->out, "--n-pool", "3", "--nlive", "1000", NULL);
    assert_int_equal(th_wait_exit(&p, 120), 2);
    assert_true(th_file_contains(f->log, "; this run has --nlive 1000 (use the same value"));

    /* Truncated: falls back to .old with a warning, and still continues
     * to the exact result. */
    assert_int_equal(truncate(f->ckpt, th_file_size(f->ckpt) - 100), 0);
    s_resume_to_end(f);
    assert_true(th_file_contains(f->log, "is unusable (truncated"));

    /* Both bad (a bit flip in each): exit 2, and the reason for each. */
    assert_int_equal(th_flip_bit(f->ckpt, th_file_size(f->ckpt) / 2, 2), 0);
    assert_true(th_exists(f->old));
    assert_int_equal(th_flip_bit(f->old, th_file_size(f->old) / 3, 2), 0);
    s_start(&p, s_next_log(f), f->out, "--n-pool", "3", NULL);
    assert_int_equal(th_wait_exit(&p, 120), 2);
    assert_true(th_file_contains(f->log, "no usable checkpoint"));
    assert_true(th_file_contains(f->log, "checksum mismatch"));
}

static void test_finished_run_returns_at_once(void **state)
{
    s_fx_t *f = *state;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cp -r '%s/out' '%s/'", s_ref_dir, f->dir);
    assert_int_equal(system(cmd), 0);
    th_proc_t p;
    s_start(&p, s_next_log(f), f->out, "--n-pool", "3", NULL);
    assert_int_equal(th_wait_exit(&p, 60), 0);
    assert_false(th_file_contains(f->log, "Populating initial live points"));
    s_assert_out_identical(f);
}

/* Workers started once, against --bind; the coordinator stops (killed, or
 * checkpointed on a signal) and is started again on the same endpoint: the
 * same worker processes keep retrying meanwhile, rejoin and finish the run,
 * with the uninterrupted result. */
static void s_workers_survive(s_fx_t *f, int sig, int expect_exit)
{
    /* The first coordinator binds a port the OS picks and names it; the
     * workers and the restarted coordinator use that endpoint. */
    th_proc_t p;
    s_start(&p, s_next_log(f), f->out, "--bind", "tcp://127.0.0.1:*", "--n-pool", "3",
            "--log-level", "debug", "--checkpoint-interval", "0.5", NULL);
    char ep[128];
    if (!th_wait_endpoint(&p, ep, sizeof ep, 60))
        fail_msg("the coordinator did not name its endpoint (log %s)", f->log);
    assert_true(th_endpoint_port(ep) > 0);
    th_proc_t w[3];
    char wlog[3][400];
    for (int i = 0; i < 3; i++) {
        char *argv[] = {NS_WORKER, "--connect", ep, "--allow-model-dir", NS_EXAMPLES_DIR, NULL};
        snprintf(wlog[i], sizeof wlog[i], "%s/worker%d.log", f->dir, i);
        assert_int_equal(th_spawn(&w[i], argv, TH_MERGE), 0);
        th_set_log(&w[i], wlog[i]);
    }
    assert_true(s_wait_iteration(&p, s_ref_iterations / 3, 300) > 0);
    assert_int_equal(th_signal_and_wait(&p, sig, 60), expect_exit);

    /* The workers notice, keep retrying, and stay alive meanwhile. */
    for (int i = 0; i < 3; i++)
        if (!th_wait_text(&w[i], "reconnecting", NULL, 0, 60))
            fail_msg("worker %d did not retry after the coordinator stopped (log %s)", i,
                     wlog[i]);
    for (int i = 0; i < 3; i++)
        assert_true(th_alive(&w[i]));

    s_start(&p, s_next_log(f), f->out, "--bind", ep, "--n-pool", "3", NULL);
    int joined = 0;
    char line[2048];
    while (joined < 3 && th_wait_text(&p, "farm: worker joined", line, sizeof line, 120)) {
        char *q = strstr(line, "pid=");
        long pid = q ? strtol(q + 4, NULL, 10) : 0;
        int ours = 0;
        for (int i = 0; i < 3; i++)
            ours |= pid == (long)w[i].pid;
        if (!ours)
            fail_msg("a worker that is not one of ours joined: %s", line);
        joined++;
    }
    assert_int_equal(joined, 3);
    assert_int_equal(th_wait_exit(&p, 300), 0);
    s_assert_out_identical(f);
    /* Told that the run is over, the workers leave. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(th_wait_exit(&w[i], 60), 0);
}

static void test_workers_survive_a_coordinator_kill(void **state)
{
    s_workers_survive(*state, SIGKILL, 128 + SIGKILL);
}

/* A checkpoint exit (pre-emption) is not the end of the run: remote
 * workers must not be sent away. */
static void test_workers_survive_a_checkpoint_exit(void **state)
{
    s_workers_survive(*state, SIGTERM, 130);
}

/* test_ckpt_coordinator [--reference DIR] [CASE]: the cases (or only
 * CASE) against the reference run in DIR (made first when not given);
 * test_ckpt_coordinator --make-reference DIR makes it; --list names the
 * cases. */
int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--make-reference") == 0)
        return s_make_reference(argv[2]) == 0 ? 0 : 1;
    int a = 1;
    if (a + 1 < argc && strcmp(argv[a], "--reference") == 0) {
        s_ref_given = argv[a + 1];
        a += 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigterm_in_uninformed_stage, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_in_flow_training, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_in_farm_batch, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_sigint_with_another_exit_code, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_max_runtime_self_eviction, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_max_runtime_without_progress_warns, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_signal_without_checkpoint_exits_1, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_at_five_moments_identical_result, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_bit_flipped_checkpoints, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_finished_run_returns_at_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_workers_survive_a_coordinator_kill, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_workers_survive_a_checkpoint_exit, s_setup, s_teardown),
    };
    argv[a - 1] = argv[0];
    return th_run_cases(argc - a + 1, argv + a - 1, tests, sizeof tests / sizeof tests[0],
                        s_group_setup, s_group_teardown);
}
