/* test_schedule.c - the proposal schedule of docs/algorithm.md §2.2-§2.3 with a mock
 * flow proposal (prior draws, records every training): switch on
 * --maximum-uninformed and on acceptance, forced training at the switch
 * and whenever the pool is used up, --training-frequency against
 * --cooldown, --memory, the reset-acceptance flag, and no flow at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"
#include "sampler_fixture.h"
#include "nessai/rng.h"
#include <cjson/cJSON.h>

enum { MAX_TRAIN = 4096 };

typedef struct {
    ns_proposal_env_t env;
    ns_rng_t *rng;
    double *pool;       /* nlive rows */
    size_t left;        /* rows not yet handed out */
    int activated;
    int n_train;
    long train_it[MAX_TRAIN];
    size_t train_n[MAX_TRAIN];
    int train_reset[MAX_TRAIN];
    int train_while_populated;
    double last_ns_acceptance;
} s_mock_t;

static s_mock_t *s_last_mock;

static int s_mock_draw(void *impl, const double *worst, double *out)
{
    s_mock_t *m = impl;
    (void)worst;
    size_t d = m->env.dim, st = NS_LP_STRIDE(d);
    if (m->left == 0) {
        int rc = ns_model_new_point(m->env.model, m->rng, m->env.nlive, m->pool);
        /* new_point writes n x d; spread into rows from the end backwards */
        for (size_t i = m->env.nlive; i-- > 0;) {
            memmove(m->pool + i * st, m->pool + i * d, d * sizeof(double));
            m->pool[i * st + NS_LP_LOGP(d)] = -d * log(20.0);
            m->pool[i * st + NS_LP_IT(d)] = 0;
        }
        if (rc == NS_OK)
            rc = m->env.evaluate_rows(m->env.ctx, m->pool, m->env.nlive);
        if (rc != NS_OK)
            return rc;
        ns_population_t pop = {.acceptance = 0.5, .radius = 2.0, .time = 0.0, .n_points = m->env.nlive, .record = 1};
        m->env.report_population(m->env.ctx, &pop);
        m->left = m->env.nlive;
    }
    m->left--;
    memcpy(out, m->pool + m->left * st, st * sizeof(double));
    return NS_OK;
}

static int s_mock_populated(const void *impl) { return ((const s_mock_t *)impl)->left > 0; }

static int s_mock_train(void *impl, const double *rows, size_t n, const ns_train_info_t *info)
{
    s_mock_t *m = impl;
    (void)rows;
    if (m->left)
        m->train_while_populated++;
    if (m->n_train < MAX_TRAIN) {
        m->train_it[m->n_train] = info->iteration;
        m->train_n[m->n_train] = n;
        m->train_reset[m->n_train] = info->reset_full;
    }
    m->n_train++;
    m->left = 0; /* training discards the pool */
    return NS_OK;
}

static void s_mock_set_acc(void *impl, double a) { ((s_mock_t *)impl)->last_ns_acceptance = a; }
static void s_mock_activate(void *impl) { ((s_mock_t *)impl)->activated = 1; }
static int s_mock_save(const void *impl, ns_buf_t *b) { (void)impl; (void)b; return NS_OK; }
static int s_mock_load(void *impl, ns_buf_t *b) { (void)impl; (void)b; return NS_OK; }

static void s_mock_destroy(void *impl)
{
    s_mock_t *m = impl;
    ns_rng_destroy(&m->rng);
    free(m->pool);
    free(m);
}

static const ns_proposal_ops_t s_mock_ops = {
    .name = "mock",
    .draw = s_mock_draw,
    .is_populated = s_mock_populated,
    .train = s_mock_train,
    .set_ns_acceptance = s_mock_set_acc,
    .activate = s_mock_activate,
    .save = s_mock_save,
    .load = s_mock_load,
    .destroy = s_mock_destroy,
};

static int s_mock_factory(const ns_config_t *cfg, const ns_proposal_env_t *env, ns_proposal_t **out)
{
    (void)cfg;
    s_mock_t *m = calloc(1, sizeof *m);
    m->env = *env;
    m->rng = ns_rng_new(env->seed, env->stream);
    m->pool = malloc(env->nlive * NS_LP_STRIDE(env->dim) * sizeof(double));
    m->last_ns_acceptance = NAN;
    s_last_mock = m;
    *out = ns_proposal_new(&s_mock_ops, m);
    return NS_OK;
}

static void s_run(th_sampler_run_t *r, const char *const *args, ns_proposal_factory_fn f)
{
    assert_int_equal(th_sampler_setup(r, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", args), 0);
    s_last_mock = NULL;
    assert_int_equal(th_sampler_make(r, f), 0);
    assert_int_equal(ns_sampler_run(r->sampler), NS_OK);
}

static void test_switch_on_iterations(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "100", "--seed", "2", "--maximum-uninformed", "300",
                          "--uninformed-acceptance-threshold", "0", NULL};
    s_run(&r, args, s_mock_factory);
    s_mock_t *m = s_last_mock;
    assert_non_null(m);
    assert_true(m->activated);
    assert_string_equal(ns_sampler_proposal_name(r.sampler), "mock");
    /* the forced training at the switch, at the top of iteration 300 */
    assert_true(m->n_train >= 2);
    assert_int_equal(m->train_it[0], 300);
    /* every later training found the pool empty (train-on-empty, forced) */
    assert_int_equal(m->train_while_populated, 0);
    /* non-decreasing: late on a prior pool can run dry several times
     * within one iteration, each time forcing a training (as nessai) */
    for (int i = 1; i < m->n_train && i < MAX_TRAIN; i++)
        assert_true(m->train_it[i] >= m->train_it[i - 1]);
    /* the pool of nlive is used up between trainings: about one per 100
     * draws; every draw is accounted for */
    assert_true(m->train_n[0] == 100);
    assert_false(isnan(m->last_ns_acceptance));
    assert_true(fabs(ns_sampler_log_evidence(r.sampler) + log(400.0)) < 4 * ns_sampler_log_evidence_error(r.sampler));
    /* history: one training_iterations entry per training */
    assert_int_equal(ns_sampler_compute_posterior(r.sampler), 0);
    cJSON *j = ns_sampler_result_json(r.sampler);
    cJSON *ti = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "history"), "training_iterations");
    assert_int_equal(cJSON_GetArraySize(ti), m->n_train);
    assert_int_equal(cJSON_GetArrayItem(ti, 0)->valueint, 300);
    cJSON_Delete(j);
    th_sampler_teardown(&r);
}

static void test_switch_on_acceptance(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "100", "--seed", "2", "--maximum-uninformed", "inf",
                          "--uninformed-acceptance-threshold", "0.3", NULL};
    s_run(&r, args, s_mock_factory);
    s_mock_t *m = s_last_mock;
    assert_true(m->activated);
    /* prior acceptance of S1 falls below 0.3 long before the end */
    assert_true(m->train_it[0] > 0 && m->train_it[0] < ns_sampler_iteration(r.sampler) / 2);
    th_sampler_teardown(&r);
}

/* Infinite stage and zero threshold: the flow is never built. */
static void test_never_switch(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "100", "--seed", "2", "--maximum-uninformed", "inf",
                          "--uninformed-acceptance-threshold", "0", NULL};
    s_run(&r, args, s_mock_factory);
    assert_null(s_last_mock);
    assert_string_equal(ns_sampler_proposal_name(r.sampler), "rejection");
    th_sampler_teardown(&r);
}

static void test_no_flow_available(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "100", "--seed", "2", "--maximum-uninformed", "100", NULL};
    s_run(&r, args, NULL);
    assert_string_equal(ns_sampler_proposal_name(r.sampler), "rejection");
    assert_true(ns_sampler_finalised(r.sampler));
    th_sampler_teardown(&r);
}

static void test_frequency_and_cooldown(void **state)
{
    (void)state;
    th_sampler_run_t r;
    /* every 50 iterations, no cooldown, no retrain on empty: exactly on the grid */
    const char *a1[] = {"--nlive", "100", "--seed", "2", "--maximum-uninformed", "200",
                        "--uninformed-acceptance-threshold", "0", "--training-frequency", "50",
                        "--cooldown", "0", "--no-train-on-empty", "--no-retrain-acceptance",
                        "--max-iteration", "600", NULL};
    s_run(&r, a1, s_mock_factory);
    s_mock_t *m = s_last_mock;
    assert_int_equal(m->n_train, 9); /* 200, 250, ..., 600 */
    for (int i = 0; i < m->n_train; i++)
        assert_int_equal(m->train_it[i], 200 + 50 * i);
    th_sampler_teardown(&r);
    /* the same with cooldown 200: the non-forced trainings are all skipped */
    const char *a2[] = {"--nlive", "100", "--seed", "2", "--maximum-uninformed", "200",
                        "--uninformed-acceptance-threshold", "0", "--training-frequency", "50",
                        "--cooldown", "200", "--no-train-on-empty", "--no-retrain-acceptance",
                        "--max-iteration", "600", NULL};
    s_run(&r, a2, s_mock_factory);
    assert_int_equal(s_last_mock->n_train, 1);
    th_sampler_teardown(&r);
}

static void test_memory_and_reset(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "100", "--seed", "2", "--maximum-uninformed", "200",
                          "--uninformed-acceptance-threshold", "0", "--memory", "30",
                          "--reset-acceptance", "--acceptance-threshold", "1", "--max-iteration", "800", NULL};
    s_run(&r, args, s_mock_factory);
    s_mock_t *m = s_last_mock;
    assert_true(m->n_train >= 2);
    for (int i = 0; i < m->n_train && i < MAX_TRAIN; i++) {
        assert_int_equal(m->train_n[i], 130);             /* live points + 30 nested samples */
        assert_int_equal(m->train_reset[i], i > 0);       /* never before the first training */
    }
    th_sampler_teardown(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_switch_on_iterations), cmocka_unit_test(test_switch_on_acceptance),
        cmocka_unit_test(test_never_switch),         cmocka_unit_test(test_no_flow_available),
        cmocka_unit_test(test_frequency_and_cooldown), cmocka_unit_test(test_memory_and_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
