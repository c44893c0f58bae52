/* test_farm_overlap.c - the farm evaluates a batch in the background while
 * the sampler goes on working (evaluator begin / poll / end), and the flow
 * proposal uses that to evaluate its pool while it is still being drawn
 * (docs/algorithm.md §2.6):
 *  - a background batch gives the in-process values bit for bit; a second
 *    one while the first is in flight is refused; statistics asked for in
 *    the meantime wait for it; poison points fail it as a plain batch;
 *  - a whole run with a local pool overlaps its populations and gives the
 *    in-process result.json;
 *  - SIGTERM during an overlapped population checkpoints, and the resumed
 *    run gives the same result.json again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmocka_select.h"
#include "farm_fixture.h"
#include "result_compare.h"
#include "nessai/error.h"
#include "nessai/evaluator.h"
#include "nessai/log.h"
#include "nessai/util.h"

#define COORDINATOR NESSAI_COORDINATOR_BIN
#define GAUSSIAN NESSAI_EXAMPLES_DIR "/libgaussian.so"

#define N 300
#define D 2

typedef struct {
    char log[128];
    ns_model_t *model;
    ns_config_t *cfg;
    ns_evaluator_t *ev;
} s_fx_t;

static void s_open(s_fx_t *f, ns_config_t *cfg)
{
    th_tmpfile(f->log, sizeof f->log, "overlap");
    assert_int_equal(ns_log_open_file(f->log), NS_OK);
    f->model = th_farm_model("dim=2");
    assert_non_null(f->model);
    f->cfg = cfg;
    assert_non_null(cfg);
    assert_int_equal(ns_farm_evaluator_new(cfg, f->model, NULL, &f->ev), NS_OK);
}

static void s_close(s_fx_t *f)
{
    ns_evaluator_shutdown(f->ev);
    ns_evaluator_destroy(&f->ev);
    ns_config_destroy(&f->cfg);
    ns_model_destroy(&f->model);
    ns_log_close_file();
    unlink(f->log);
}

/* result.json "farm" "overlapped_batches" of the evaluator, -1 if absent. */
static long s_overlapped(ns_evaluator_t *ev)
{
    cJSON *obj = cJSON_CreateObject();
    assert_non_null(obj);
    ns_evaluator_stats_json(ev, obj);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "overlapped_batches");
    long n = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
    cJSON_Delete(obj);
    return n;
}

static void test_background_batch_exact(void **state)
{
    (void)state;
    s_fx_t f;
    s_open(&f, th_farm_config("n-pool", "3", "worker-timeout", "60", NULL));
    assert_int_equal(ns_farm_wait_live(f.ev, 3, 30), NS_OK);
    assert_true(ns_evaluator_can_overlap(f.ev));
    double *x = th_farm_points(N, D, 42);
    double ref[N], logl[N], other[N];
    th_farm_inprocess(f.model, x, N, ref);

    /* begin returns before the batch is done; poll turns 1 within bounds */
    assert_int_equal(ns_evaluator_begin(f.ev, x, N, D, logl), NS_OK);
    assert_int_equal(ns_evaluator_begin(f.ev, x, N, D, other), NS_ERR_STATE);
    double t0 = ns_now();
    while (!ns_evaluator_poll(f.ev) && ns_now() - t0 < 30)
        usleep(1000);
    assert_true(ns_evaluator_poll(f.ev));
    assert_int_equal(ns_evaluator_end(f.ev), NS_OK);
    assert_memory_equal(logl, ref, sizeof ref);
    assert_int_equal(ns_evaluator_end(f.ev), NS_ERR_STATE);

    /* statistics asked for while a batch is in flight wait for it, and
     * end still gives its result */
    memset(logl, 0, sizeof logl);
    assert_int_equal(ns_evaluator_begin(f.ev, x, N, D, logl), NS_OK);
    assert_int_equal(s_overlapped(f.ev), 2);
    assert_true(ns_evaluator_live_workers(f.ev) == 3);
    assert_true(ns_evaluator_poll(f.ev));
    assert_int_equal(ns_evaluator_end(f.ev), NS_OK);
    assert_memory_equal(logl, ref, sizeof ref);

    /* a plain evaluation after background ones is unchanged */
    assert_true(th_farm_matches_inprocess(f.ev, f.model, x, N, D));
    assert_int_equal(s_overlapped(f.ev), 2);
    free(x);
    s_close(&f);
}

/* Points that crash every worker fail a background batch exactly as they
 * fail a plain one: NS_ERR_FARM from end, the chunk named in the log. */
static void test_background_poison(void **state)
{
    (void)state;
    setenv("NS_FARMTEST_CRASH", "1", 1);
    s_fx_t f;
    s_open(&f, th_farm_config("n-pool", "2", "worker-timeout", "300", "max-respawns", "0", NULL));
    unsetenv("NS_FARMTEST_CRASH");
    assert_int_equal(ns_farm_wait_live(f.ev, 2, 30), NS_OK);
    double x[64 * D], logl[64];
    for (size_t i = 0; i < 64; i++) {
        x[i * D] = 0.01 * (double)i;
        x[i * D + 1] = -0.02 * (double)i;
    }
    x[3 * D] = -4.95;
    assert_int_equal(ns_evaluator_begin(f.ev, x, 64, D, logl), NS_OK);
    double t0 = ns_now();
    assert_int_equal(ns_evaluator_end(f.ev), NS_ERR_FARM);
    assert_true(ns_now() - t0 < 30);
    assert_true(th_file_contains(f.log, "all 2 local workers have exited"));
    s_close(&f);
}

/* A run's result.json "overlapped_batches" (only the farm object has
 * it), -1 if absent. Read as text: result.json holds bare NaN, which
 * cJSON does not parse. */
static long s_result_overlapped(const char *dir)
{
    char path[400];
    snprintf(path, sizeof path, "%s/result.json", dir);
    char *text = th_slurp(path);
    assert_non_null(text);
    const char *key = strstr(text, "\"overlapped_batches\":");
    long n = key ? strtol(key + strlen("\"overlapped_batches\":"), NULL, 10) : -1;
    free(text);
    return n;
}

static void s_assert_same_result(const char *a, const char *b)
{
    char ra[400], rb[400], why[1200];
    snprintf(ra, sizeof ra, "%s/result.json", a);
    snprintf(rb, sizeof rb, "%s/result.json", b);
    const char *ignore[] = {"evaluator", NULL};
    if (rc_compare_files(ra, rb, ignore, why, sizeof why) != 0)
        fail_msg("%s and %s differ: %s", ra, rb, why);
}

/* S1 d=4 with 2 ms a point: populations take many latent batches, and
 * background batches last long enough to be caught in flight. */
#define RUN_ARGS "--model", GAUSSIAN, "--model-args", "dim=4,delay_ms=2", "--nlive", "150", \
                 "--seed", "23", "--no-plot"

/* The in-process reference run into dir. */
static void s_reference(const char *out, const char *dir)
{
    const char *argv[] = {COORDINATOR, RUN_ARGS, "--output", dir, NULL};
    assert_int_equal(th_run(argv, out, 300), 0);
}

static void test_run_overlaps_and_matches_in_process(void **state)
{
    (void)state;
    char out[2][256], dir[2][300];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(th_tmpfile(out[i], sizeof out[i], "overlap-run"), 0);
        snprintf(dir[i], sizeof dir[i], "%.250s.d", out[i]);
    }
    s_reference(out[0], dir[0]);
    const char *argv[] = {COORDINATOR, RUN_ARGS, "--n-pool", "3", "--log-level", "debug",
                          "--output", dir[1], NULL};
    assert_int_equal(th_run(argv, out[1], 300), 0);
    s_assert_same_result(dir[0], dir[1]);
    assert_true(s_result_overlapped(dir[1]) >= 1);
    assert_true(th_file_contains(out[1], "points evaluated while populating"));
    /* in-process: no background evaluation at all */
    assert_false(th_file_contains(out[0], "evaluated while populating"));
    for (int i = 0; i < 2; i++) {
        unlink(out[i]);
        th_rm_rf(dir[i]);
    }
}

static void test_sigterm_in_overlapped_population(void **state)
{
    (void)state;
    char ref_out[256], ref_dir[300], log[2][256], dir[300];
    assert_int_equal(th_tmpfile(ref_out, sizeof ref_out, "overlap-ref"), 0);
    snprintf(ref_dir, sizeof ref_dir, "%.250s.d", ref_out);
    s_reference(ref_out, ref_dir);
    for (int i = 0; i < 2; i++)
        assert_int_equal(th_tmpfile(log[i], sizeof log[i], "overlap-sig"), 0);
    snprintf(dir, sizeof dir, "%.250s.d", log[0]);

    char *argv[] = {COORDINATOR, RUN_ARGS, "--n-pool", "3", "--log-level", "debug",
                    "--output", dir, NULL};
    th_proc_t p;
    assert_int_equal(th_spawn(&p, argv, TH_MERGE), 0);
    th_set_log(&p, log[0]);
    /* the first population starts when the first training ends; its pool
     * (hundreds of points at 2 ms on 3 workers) takes a few hundred ms to
     * evaluate: land in it */
    assert_true(th_wait_text(&p, "flow: training 1:", NULL, 0, 120));
    struct timespec pause = {0, 40 * 1000000L};
    nanosleep(&pause, NULL);
    assert_int_equal(th_signal_and_wait(&p, SIGTERM, 120), 130);
    assert_true(th_file_contains(log[0], "interrupted while evaluating batch"));
    assert_false(th_file_contains(log[0], "flow: population 1: "));

    char *argv2[] = {COORDINATOR, RUN_ARGS, "--n-pool", "3", "--output", dir, NULL};
    assert_int_equal(th_spawn(&p, argv2, TH_MERGE), 0);
    th_set_log(&p, log[1]);
    assert_int_equal(th_wait_exit(&p, 300), 0);
    assert_true(th_file_contains(log[1], "Resuming from iteration"));
    s_assert_same_result(ref_dir, dir);
    unlink(ref_out);
    th_rm_rf(ref_dir);
    for (int i = 0; i < 2; i++)
        unlink(log[i]);
    th_rm_rf(dir);
}

static int s_teardown(void **state)
{
    (void)state;
    th_kill_all();
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_background_batch_exact, s_teardown),
        cmocka_unit_test_teardown(test_background_poison, s_teardown),
        cmocka_unit_test_teardown(test_run_overlaps_and_matches_in_process, s_teardown),
        cmocka_unit_test_teardown(test_sigterm_in_overlapped_population, s_teardown),
    };
    return th_run_cases(argc, argv, tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
