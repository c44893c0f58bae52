/* test_sampler_state.c - save/load gives an exact continuation: a run
 * stopped at an iteration boundary, inside a pool population, or while the
 * initial live points are drawn, then saved, restored into a fresh sampler
 * and continued, ends bit for bit where the uninterrupted run ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"
#include "sampler_fixture.h"
#include "nessai/serial.h"
#include <cjson/cJSON.h>

static const char *const s_args[] = {"--nlive", "200", "--seed", "21", "--maximum-uninformed", "inf",
                                     "--uninformed-acceptance-threshold", "0", NULL};

/* An evaluator that reports an interrupt on its k-th call (once). */
typedef struct {
    ns_evaluator_t *inner;
    int calls;
    int fail_at;
} s_flaky_t;

static int s_flaky_eval(void *impl, const double *x, size_t n, size_t d, double *logl)
{
    s_flaky_t *f = impl;
    if (++f->calls == f->fail_at)
        return NS_ERR_INTERRUPTED;
    return ns_evaluator_evaluate(f->inner, x, n, d, logl);
}

static void s_flaky_destroy(void *impl) { (void)impl; }

static const ns_evaluator_ops_t s_flaky_ops = {.kind = "flaky", .evaluate = s_flaky_eval, .destroy = s_flaky_destroy};

typedef struct {
    double log_z, info, p;
    uint64_t n_eval;
    long it;
    size_t n_nested;
    double *nested;
    int64_t *ins;
    char *history;   /* history JSON without sampling_time */
} s_outcome_t;

static void s_capture(ns_sampler_t *s, s_outcome_t *o)
{
    o->log_z = ns_sampler_log_evidence(s);
    o->info = ns_sampler_information(s);
    o->p = ns_sampler_final_p_value(s);
    o->n_eval = ns_sampler_likelihood_evaluations(s);
    o->it = ns_sampler_iteration(s);
    o->n_nested = ns_sampler_n_nested(s);
    o->nested = malloc(o->n_nested * 5 * sizeof(double));
    memcpy(o->nested, ns_sampler_nested_samples(s), o->n_nested * 5 * sizeof(double));
    size_t n;
    const int64_t *ins = ns_sampler_insertion_indices(s, &n);
    o->ins = malloc(n * sizeof *ins);
    memcpy(o->ins, ins, n * sizeof *ins);
    assert_int_equal(ns_sampler_compute_posterior(s), 0);
    cJSON *j = ns_sampler_result_json(s);
    cJSON *h = cJSON_DetachItemFromObject(j, "history");
    cJSON_DeleteItemFromObject(h, "sampling_time");
    cJSON_DeleteItemFromObject(h, "checkpoint_iterations");
    o->history = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    cJSON_Delete(j);
}

static void s_compare(const s_outcome_t *a, const s_outcome_t *b)
{
    assert_memory_equal(&a->log_z, &b->log_z, sizeof(double));
    assert_memory_equal(&a->info, &b->info, sizeof(double));
    assert_memory_equal(&a->p, &b->p, sizeof(double));
    assert_true(a->n_eval == b->n_eval);
    assert_int_equal(a->it, b->it);
    assert_int_equal(a->n_nested, b->n_nested);
    assert_memory_equal(a->nested, b->nested, a->n_nested * 5 * sizeof(double));
    assert_memory_equal(a->ins, b->ins, (size_t)a->it * sizeof(int64_t));
    assert_string_equal(a->history, b->history);
}

static void s_free(s_outcome_t *o)
{
    free(o->nested);
    free(o->ins);
    free(o->history);
}

static s_outcome_t s_ref;

static int s_setup(void **state)
{
    (void)state;
    th_sampler_run_t r;
    assert_int_equal(th_sampler_setup(&r, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", s_args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    assert_int_equal(ns_sampler_run(r.sampler), NS_OK);
    s_capture(r.sampler, &s_ref);
    th_sampler_teardown(&r);
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    s_free(&s_ref);
    return 0;
}

static long s_stop_at;

static int s_hook(ns_sampler_t *s, ns_sampler_event_t ev, void *ctx)
{
    (void)ctx;
    if (ev == NS_SAMPLER_EVENT_ITERATION && ns_sampler_iteration(s) == s_stop_at)
        return NS_ERR_INTERRUPTED;
    return NS_OK;
}

/* Save r's sampler, destroy it, build a fresh one with a plain evaluator,
 * load, continue to the end and compare with the reference. */
static void s_resume_and_compare(th_sampler_run_t *r)
{
    ns_buf_t buf;
    ns_buf_init(&buf);
    assert_int_equal(ns_sampler_save(r->sampler, &buf), NS_OK);
    ns_sampler_destroy(&r->sampler);
    ns_evaluator_t *plain = ns_evaluator_inprocess_new(r->model, 0);
    ns_sampler_t *s2 = NULL;
    assert_int_equal(ns_sampler_new(r->cfg, r->model, plain, NULL, "/tmp", &s2), 0);
    ns_buf_t view;
    ns_buf_view(&view, buf.data, buf.len);
    assert_int_equal(ns_sampler_load(s2, &view), NS_OK);
    assert_int_equal(ns_buf_remaining(&view), 0);
    assert_int_equal(ns_sampler_run(s2), NS_OK);
    s_outcome_t o;
    s_capture(s2, &o);
    s_compare(&s_ref, &o);
    s_free(&o);
    ns_sampler_destroy(&s2);
    ns_evaluator_destroy(&plain);
    ns_buf_free(&buf);
}

static void test_resume_at_iteration_boundary(void **state)
{
    (void)state;
    th_sampler_run_t r;
    assert_int_equal(th_sampler_setup(&r, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", s_args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    s_stop_at = 777;
    ns_sampler_set_hook(r.sampler, s_hook, NULL);
    assert_int_equal(ns_sampler_run(r.sampler), NS_ERR_INTERRUPTED);
    assert_int_equal(ns_sampler_iteration(r.sampler), 777);
    s_resume_and_compare(&r);
    th_sampler_teardown(&r);
}

/* fail_at 3: the first refill of the initial live points (calls 1-2 are
 * the model check); 40 and 400: refills in the middle of iterations. */
static void test_resume_inside_population(void **state)
{
    (void)state;
    const int fail_at[] = {3, 40, 400};
    for (size_t k = 0; k < sizeof fail_at / sizeof fail_at[0]; k++) {
        th_sampler_run_t r;
        assert_int_equal(th_sampler_setup(&r, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", s_args), 0);
        s_flaky_t f = {r.ev, 0, fail_at[k]};
        ns_evaluator_t *flaky = ns_evaluator_new(&s_flaky_ops, &f);
        assert_int_equal(ns_sampler_new(r.cfg, r.model, flaky, NULL, "/tmp", &r.sampler), 0);
        assert_int_equal(ns_sampler_run(r.sampler), NS_ERR_INTERRUPTED);
        s_resume_and_compare(&r);
        ns_evaluator_destroy(&flaky);
        th_sampler_teardown(&r);
    }
}

static void test_finished_run_round_trip(void **state)
{
    (void)state;
    th_sampler_run_t r;
    assert_int_equal(th_sampler_setup(&r, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", s_args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    assert_int_equal(ns_sampler_run(r.sampler), NS_OK);
    s_resume_and_compare(&r); /* the loaded sampler is done: run returns at once */
    th_sampler_teardown(&r);
}

static void test_damaged_state_refused(void **state)
{
    (void)state;
    th_sampler_run_t r;
    assert_int_equal(th_sampler_setup(&r, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", s_args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    s_stop_at = 50;
    ns_sampler_set_hook(r.sampler, s_hook, NULL);
    assert_int_equal(ns_sampler_run(r.sampler), NS_ERR_INTERRUPTED);
    ns_buf_t buf, view;
    ns_buf_init(&buf);
    assert_int_equal(ns_sampler_save(r.sampler, &buf), NS_OK);
    ns_sampler_t *s2 = NULL;
    /* truncated */
    assert_int_equal(ns_sampler_new(r.cfg, r.model, r.ev, NULL, "/tmp", &s2), 0);
    ns_buf_view(&view, buf.data, buf.len / 2);
    assert_int_not_equal(ns_sampler_load(s2, &view), NS_OK);
    ns_sampler_destroy(&s2);
    /* another nlive: refused (not damaged), naming both values */
    th_sampler_run_t r2;
    const char *other[] = {"--nlive", "300", NULL};
    assert_int_equal(th_sampler_setup(&r2, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", other), 0);
    assert_int_equal(th_sampler_make(&r2, NULL), 0);
    ns_buf_view(&view, buf.data, buf.len);
    assert_int_equal(ns_sampler_load(r2.sampler, &view), NS_ERR_REFUSED);
    th_sampler_teardown(&r2);
    ns_buf_free(&buf);
    th_sampler_teardown(&r);
}

/* result.json's "nonfinite_likelihood" of a finished sampler, as text. */
static char *s_nonfinite_json(ns_sampler_t *s)
{
    cJSON *j = ns_sampler_result_json(s);
    char *text = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "nonfinite_likelihood"));
    cJSON_Delete(j);
    return text;
}

/* The non-finite likelihood counts go through a checkpoint: a run resumed
 * in the uninformed stage reports what the uninterrupted run reports, and
 * a state saved without the counts' section (as before they existed)
 * still loads, with zero counts. */
static void test_nonfinite_counts_resume(void **state)
{
    (void)state;
    const char *args[] = {"--nlive", "200", "--seed", "5", "--maximum-uninformed", "inf",
                          "--uninformed-acceptance-threshold", "0", NULL};
    th_sampler_run_t r;
    ns_log_set_level(NS_LOG_ERROR); /* the warnings */
    assert_int_equal(th_sampler_setup(&r, NS_TESTMODEL, "mode=nan20", args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    assert_int_equal(ns_sampler_run(r.sampler), NS_OK);
    char *want = s_nonfinite_json(r.sampler);
    th_sampler_teardown(&r);
    assert_non_null(strstr(want, "\"initial_live_points\":{\"drawn\":"));
    assert_null(strstr(want, "\"nan\":0,\"neg_inf\":0,\"pos_inf\":0,\"fraction\":0},\"uninformed"));

    assert_int_equal(th_sampler_setup(&r, NS_TESTMODEL, "mode=nan20", args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    s_stop_at = 300;
    ns_sampler_set_hook(r.sampler, s_hook, NULL);
    assert_int_equal(ns_sampler_run(r.sampler), NS_ERR_INTERRUPTED);
    ns_buf_t buf, view;
    ns_buf_init(&buf);
    assert_int_equal(ns_sampler_save(r.sampler, &buf), NS_OK);
    ns_sampler_t *s2 = NULL;
    assert_int_equal(ns_sampler_new(r.cfg, r.model, r.ev, NULL, "/tmp", &s2), 0);
    ns_buf_view(&view, buf.data, buf.len);
    assert_int_equal(ns_sampler_load(s2, &view), NS_OK);
    assert_int_equal(ns_buf_remaining(&view), 0);
    assert_int_equal(ns_sampler_run(s2), NS_OK);
    char *got = s_nonfinite_json(s2);
    assert_string_equal(got, want);
    free(got);
    ns_sampler_destroy(&s2);

    /* without the section: 4 tag + version bytes, then per stage four u64
     * counts and an f64 array (u64 length + values) */
    size_t tail = 0;
    {
        ns_sampler_t *s3 = NULL;
        assert_int_equal(ns_sampler_new(r.cfg, r.model, r.ev, NULL, "/tmp", &s3), 0);
        ns_buf_t b3;
        ns_buf_init(&b3);
        ns_buf_view(&view, buf.data, buf.len);
        assert_int_equal(ns_sampler_load(s3, &view), NS_OK);
        assert_int_equal(ns_sampler_save(s3, &b3), NS_OK);
        assert_int_equal(b3.len, buf.len); /* the section round-trips */
        ns_buf_free(&b3);
        ns_sampler_destroy(&s3);
        const uint8_t *p = buf.data;
        for (size_t i = buf.len - 4; i > 0 && !tail; i--)
            if (memcmp(p + i, "NONF", 4) == 0)
                tail = buf.len - i;
    }
    assert_true(tail > 0);
    assert_int_equal(ns_sampler_new(r.cfg, r.model, r.ev, NULL, "/tmp", &s2), 0);
    ns_buf_view(&view, buf.data, buf.len - tail);
    assert_int_equal(ns_sampler_load(s2, &view), NS_OK);
    assert_int_equal(ns_buf_remaining(&view), 0);
    assert_int_equal(ns_sampler_run(s2), NS_OK);
    got = s_nonfinite_json(s2);
    assert_string_not_equal(got, want); /* counted since the resume only */
    free(got);
    ns_sampler_destroy(&s2);
    ns_buf_free(&buf);
    free(want);
    th_sampler_teardown(&r);
    ns_log_set_level(NS_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_at_iteration_boundary),
        cmocka_unit_test(test_resume_inside_population),
        cmocka_unit_test(test_finished_run_round_trip),
        cmocka_unit_test(test_damaged_state_refused),
        cmocka_unit_test(test_nonfinite_counts_resume),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
