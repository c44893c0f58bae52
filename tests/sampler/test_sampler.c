/* test_sampler.c - the nested-sampling loop end to end on the unit Gaussian
 * (S1, d = 2, truth ln Z = -ln 400): accuracy, bookkeeping invariants,
 * determinism, --max-iteration, NaN and non-deterministic likelihoods,
 * the analytic proposal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "livepoint.h"
#include "harness.h"
#include "sampler_fixture.h"
#include <cjson/cJSON.h>

#define UNINFORMED_ONLY "--maximum-uninformed", "inf", "--uninformed-acceptance-threshold", "0"

static void test_s1_end_to_end(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "500", "--seed", "1234", UNINFORMED_ONLY, NULL};
    assert_int_equal(th_sampler_setup(&r, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    assert_int_equal(ns_sampler_run(r.sampler), NS_OK);
    ns_sampler_t *s = r.sampler;
    double lz = ns_sampler_log_evidence(s), err = ns_sampler_log_evidence_error(s);
    double truth = -2.0 * log(20.0);
    assert_true(fabs(lz - truth) < 4.0 * err);
    /* sqrt(H / nlive) with H = 1.5768 d */
    assert_true(fabs(ns_sampler_information(s) - 3.1536) < 0.3);
    assert_true(ns_sampler_finalised(s));
    assert_true(ns_sampler_condition(s) <= 0.1);
    long it = ns_sampler_iteration(s);
    size_t n_ins, n_live;
    ns_sampler_insertion_indices(s, &n_ins);
    ns_sampler_live_points(s, &n_live);
    assert_int_equal(n_ins, (size_t)it);
    assert_int_equal(n_live, 0);
    assert_int_equal(ns_sampler_n_nested(s), (size_t)it + 500);
    /* every nested sample's it is at most the iteration; logL ascending */
    const double *ns = ns_sampler_nested_samples(s);
    for (size_t i = 1; i < ns_sampler_n_nested(s); i++) {
        assert_true(ns[i * 5 + NS_LP_LOGL(2)] >= ns[(i - 1) * 5 + NS_LP_LOGL(2)]);
        assert_true(ns[i * 5 + NS_LP_IT(2)] <= (double)it);
    }
    /* each iteration needed at least one new evaluated point */
    assert_true(ns_sampler_likelihood_evaluations(s) >= (uint64_t)(500 + it));
    assert_true(ns_sampler_final_p_value(s) > 0.0 && ns_sampler_final_p_value(s) <= 1.0);

    assert_int_equal(ns_sampler_compute_posterior(s), 0);
    assert_true(ns_sampler_ess(s) > 500.0);
    assert_true(ns_sampler_n_posterior(s) > 300);
    cJSON *j = ns_sampler_result_json(s);
    const char *keys[] = {"version", "glasflow_version", "seed", "sampling_time",
                          "total_likelihood_evaluations", "likelihood_evaluation_time", "history",
                          "truth", "insertion_indices", "final_p_value", "final_ks_statistic",
                          "nested_samples", "log_posterior_weights", "logL_birth", "log_evidence",
                          "log_evidence_error", "information", "training_time", "population_time",
                          "posterior_samples"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        assert_non_null(cJSON_GetObjectItemCaseSensitive(j, keys[k]));
    cJSON *hist = cJSON_GetObjectItemCaseSensitive(j, "history");
    /* history every nlive // 10 = 50 iterations plus the finalisation entry */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(hist, "logZ")), it / 50 + 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(hist, "rolling_p")), it / 500);
    /* nessai's result.json: posterior_samples {field: [values]}, nested_samples rows */
    cJSON *post = cJSON_GetObjectItemCaseSensitive(j, "posterior_samples");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(post, "x0")),
                     (int)ns_sampler_n_posterior(s));
    /* posterior mean and variance of x0: N(0, 1) within 5 standard errors */
    cJSON *x0 = cJSON_GetObjectItemCaseSensitive(post, "x0");
    double m = 0, v = 0;
    int np = cJSON_GetArraySize(x0);
    for (int i = 0; i < np; i++)
        m += cJSON_GetArrayItem(x0, i)->valuedouble / np;
    for (int i = 0; i < np; i++)
        v += pow(cJSON_GetArrayItem(x0, i)->valuedouble - m, 2) / np;
    assert_true(fabs(m) < 5.0 / sqrt(np));
    assert_true(fabs(v - 1.0) < 5.0 * sqrt(2.0 / np));
    /* logL_birth: -inf for initial points, below the point's own logL else */
    cJSON *birth = cJSON_GetObjectItemCaseSensitive(j, "logL_birth");
    cJSON *nested = cJSON_GetObjectItemCaseSensitive(j, "nested_samples");
    assert_int_equal(cJSON_GetArraySize(nested), (int)ns_sampler_n_nested(s));
    assert_int_equal(cJSON_GetArraySize(birth), (int)ns_sampler_n_nested(s));
    for (size_t i = 0; i < ns_sampler_n_nested(s); i++) {
        cJSON *b = cJSON_GetArrayItem(birth, (int)i);
        if (ns[i * 5 + NS_LP_IT(2)] == 0.0)
            assert_true(cJSON_IsRaw(b) && strcmp(b->valuestring, "-Infinity") == 0);
        else
            assert_true(b->valuedouble <
                        cJSON_GetArrayItem(cJSON_GetArrayItem(nested, (int)i), NS_LP_LOGL(2))->valuedouble);
    }
    cJSON_Delete(j);
    th_sampler_teardown(&r);
}

static void s_run_once(const char *seed, double *lz, uint64_t *nev, long *it)
{
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "200", "--seed", seed, UNINFORMED_ONLY, NULL};
    assert_int_equal(th_sampler_setup(&r, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    assert_int_equal(ns_sampler_run(r.sampler), NS_OK);
    *lz = ns_sampler_log_evidence(r.sampler);
    *nev = ns_sampler_likelihood_evaluations(r.sampler);
    *it = ns_sampler_iteration(r.sampler);
    th_sampler_teardown(&r);
}

static void test_determinism(void **state)
{
    (void)state;
    double a, b, c;
    uint64_t na, nb, nc;
    long ia, ib, ic;
    s_run_once("99", &a, &na, &ia);
    s_run_once("99", &b, &nb, &ib);
    s_run_once("100", &c, &nc, &ic);
    assert_memory_equal(&a, &b, sizeof a);
    assert_true(na == nb && ia == ib);
    assert_true(a != c);
}

/* --max-iteration stops without finalisation: the live points stay out of
 * the evidence and ln Z is the running rectangle sum (docs/algorithm.md §10.2). */
static void test_max_iteration(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "100", "--seed", "5", "--max-iteration", "300", UNINFORMED_ONLY, NULL};
    assert_int_equal(th_sampler_setup(&r, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    assert_int_equal(ns_sampler_run(r.sampler), NS_OK);
    ns_sampler_t *s = r.sampler;
    assert_int_equal(ns_sampler_iteration(s), 300);
    assert_false(ns_sampler_finalised(s));
    assert_true(ns_sampler_done(s));
    assert_int_equal(ns_sampler_n_nested(s), 300);
    size_t n_live;
    const double *live = ns_sampler_live_points(s, &n_live);
    assert_int_equal(n_live, 100);
    /* rectangle sum of the 300 slabs: sum L_i (X_{i-1} - X_i), X_i = e^{-i/100} */
    const double *ns = ns_sampler_nested_samples(s);
    double z = 0.0;
    for (int i = 1; i <= 300; i++)
        z += exp(ns[(i - 1) * 5 + NS_LP_LOGL(2)]) * (exp(-(i - 1) / 100.0) - exp(-i / 100.0));
    th_assert_near(ns_sampler_log_evidence(s), log(z), 1e-10);
    /* the final KS test still ran, on all 300 indices */
    assert_false(isnan(ns_sampler_final_p_value(s)));
    /* a second run call on a finished sampler does nothing */
    assert_int_equal(ns_sampler_run(s), NS_OK);
    assert_int_equal(ns_sampler_iteration(s), 300);
    (void)live;
    th_sampler_teardown(&r);
}

static void test_nan_points_skipped(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "200", "--seed", "3", UNINFORMED_ONLY, NULL};
    assert_int_equal(th_sampler_setup(&r, NS_TESTMODEL, "mode=nan", args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    ns_log_set_level(NS_LOG_CRITICAL); /* the NaN warnings */
    assert_int_equal(ns_sampler_run(r.sampler), NS_OK);
    ns_log_set_level(NS_LOG_INFO);
    const double *ns = ns_sampler_nested_samples(r.sampler);
    for (size_t i = 0; i < ns_sampler_n_nested(r.sampler); i++) {
        assert_false(isnan(ns[i * 5 + NS_LP_LOGL(2)]));
        assert_true(ns[i * 5 + 0] <= 3.0);
    }
    /* the evidence of the region x0 <= 3 (Phi(3) of the mass) */
    double truth = -log(400.0) + log(0.9986501019683699);
    assert_true(fabs(ns_sampler_log_evidence(r.sampler) - truth) < 5 * ns_sampler_log_evidence_error(r.sampler));
    th_sampler_teardown(&r);
}

static void test_nondeterministic_model_refused(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "50", NULL};
    assert_int_equal(th_sampler_setup(&r, NS_TESTMODEL, "mode=random", args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    assert_int_equal(ns_sampler_run(r.sampler), NS_ERR_MODEL);
    /* the verification calls are not counted */
    assert_int_equal(ns_sampler_likelihood_evaluations(r.sampler), 0);
    th_sampler_teardown(&r);
    const char *args2[] = {"--nlive", "50", "--max-iteration", "10", "--allow-multi-valued-likelihood", NULL};
    assert_int_equal(th_sampler_setup(&r, NS_TESTMODEL, "mode=random", args2), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    assert_int_equal(ns_sampler_run(r.sampler), NS_OK);
    th_sampler_teardown(&r);
}

static void test_failing_model_stops(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "100", UNINFORMED_ONLY, NULL};
    assert_int_equal(th_sampler_setup(&r, NS_TESTMODEL, "mode=fail", args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    assert_int_equal(ns_sampler_run(r.sampler), NS_ERR_MODEL);
    th_sampler_teardown(&r);
}

static void test_analytic_priors(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "400", "--seed", "8", "--analytic-priors", UNINFORMED_ONLY, NULL};
    assert_int_equal(th_sampler_setup(&r, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    assert_string_equal(ns_sampler_proposal_name(r.sampler), "analytic");
    assert_int_equal(ns_sampler_run(r.sampler), NS_OK);
    double lz = ns_sampler_log_evidence(r.sampler), err = ns_sampler_log_evidence_error(r.sampler);
    assert_true(fabs(lz + 2.0 * log(20.0)) < 4.0 * err);
    /* pools of 1000: evaluations are a multiple of 1000 */
    assert_int_equal(ns_sampler_likelihood_evaluations(r.sampler) % 1000, 0);
    /* AnalyticProposal populations are not recorded in the history */
    assert_int_equal(ns_sampler_compute_posterior(r.sampler), 0);
    cJSON *j = ns_sampler_result_json(r.sampler);
    cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "history");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(h, "population_acceptance")), 0);
    cJSON_Delete(j);
    th_sampler_teardown(&r);
}

/* The rejection proposal records one population per iteration in which
 * one happened; the initial population of nlive points comes first. */
static void test_population_history(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "100", "--seed", "4", "--max-iteration", "150", UNINFORMED_ONLY, NULL};
    assert_int_equal(th_sampler_setup(&r, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    assert_int_equal(ns_sampler_run(r.sampler), NS_OK);
    assert_int_equal(ns_sampler_compute_posterior(r.sampler), 0);
    cJSON *j = ns_sampler_result_json(r.sampler);
    cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "history");
    cJSON *acc = cJSON_GetObjectItemCaseSensitive(h, "population_acceptance");
    cJSON *its = cJSON_GetObjectItemCaseSensitive(h, "population_iterations");
    assert_true(cJSON_GetArraySize(acc) >= 2);
    assert_int_equal(cJSON_GetArraySize(acc), cJSON_GetArraySize(its));
    /* default new_point: every prior draw is accepted */
    assert_true(cJSON_GetArrayItem(acc, 0)->valuedouble == 1.0);
    for (int i = 1; i < cJSON_GetArraySize(its); i++)
        assert_true(cJSON_GetArrayItem(its, i)->valuedouble > cJSON_GetArrayItem(its, i - 1)->valuedouble);
    /* evaluations: one pool of nlive per population, initial ones included */
    assert_int_equal(ns_sampler_likelihood_evaluations(r.sampler) % 100, 0);
    cJSON_Delete(j);
    th_sampler_teardown(&r);
}

/* Finalisation (docs/algorithm.md §1.6): the live points enter with n = nlive, nlive-1,
 * ..., 1, then ln Z becomes the trapezoid over all contours; the posterior
 * weights are rectangle slabs over that evidence. Recomputed here in
 * linear space from the nested samples alone. */
static void test_finalisation(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "100", "--seed", "9", UNINFORMED_ONLY, NULL};
    assert_int_equal(th_sampler_setup(&r, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    assert_int_equal(ns_sampler_run(r.sampler), NS_OK);
    size_t n = ns_sampler_n_nested(r.sampler);
    long it = ns_sampler_iteration(r.sampler);
    assert_int_equal(n, (size_t)it + 100);
    const double *ns = ns_sampler_nested_samples(r.sampler);
    double *x = malloc((n + 2) * sizeof *x), *l = malloc((n + 2) * sizeof *l);
    x[0] = 1.0;
    l[0] = 0.0;
    double logx = 0.0;
    for (size_t i = 1; i <= n; i++) {
        size_t live = i <= (size_t)it ? 100 : 100 - (i - 1 - (size_t)it);
        logx -= 1.0 / (double)live;
        x[i] = exp(logx);
        l[i] = exp(ns[(i - 1) * 5 + NS_LP_LOGL(2)]);
    }
    x[n + 1] = 0.0;
    l[n + 1] = l[n];
    double z_trap = 0.0, z_rect = 0.0;
    for (size_t i = 1; i <= n + 1; i++)
        z_trap += 0.5 * (l[i - 1] + l[i]) * (x[i - 1] - x[i]);
    for (size_t i = 1; i <= n; i++)
        z_rect += l[i] * (x[i - 1] - x[i]);
    th_assert_near(ns_sampler_log_evidence(r.sampler), log(z_trap), 1e-9);
    assert_int_equal(ns_sampler_compute_posterior(r.sampler), 0);
    cJSON *j = ns_sampler_result_json(r.sampler);
    cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "log_posterior_weights");
    assert_int_equal(cJSON_GetArraySize(w), (int)n);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double wi = cJSON_GetArrayItem(w, (int)i)->valuedouble;
        th_assert_near(wi, log(l[i + 1] * (x[i] - x[i + 1]) / z_trap), 1e-9);
        sum += exp(wi);
    }
    th_assert_near(sum, z_rect / z_trap, 1e-9);
    assert_true(fabs(sum - 1.0) < 0.01); /* close to, but not exactly, one */
    cJSON_Delete(j);
    free(x);
    free(l);
    th_sampler_teardown(&r);
}

/* --posterior-method multinomial_resampling: int(ESS) draws with replacement. */
static void test_multinomial_posterior(void **state)
{
    (void)state;
    th_sampler_run_t r;
    const char *args[] = {"--nlive", "200", "--seed", "6", "--posterior-method", "multinomial_resampling",
                          UNINFORMED_ONLY, NULL};
    assert_int_equal(th_sampler_setup(&r, NESSAI_EXAMPLES_DIR "/libgaussian.so", "dim=2", args), 0);
    assert_int_equal(th_sampler_make(&r, NULL), 0);
    assert_int_equal(ns_sampler_run(r.sampler), NS_OK);
    assert_int_equal(ns_sampler_compute_posterior(r.sampler), 0);
    assert_int_equal(ns_sampler_n_posterior(r.sampler), (size_t)ns_sampler_ess(r.sampler));
    th_sampler_teardown(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s1_end_to_end),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_max_iteration),
        cmocka_unit_test(test_nan_points_skipped),
        cmocka_unit_test(test_nondeterministic_model_refused),
        cmocka_unit_test(test_failing_model_stops),
        cmocka_unit_test(test_analytic_priors),
        cmocka_unit_test(test_population_history),
        cmocka_unit_test(test_multinomial_posterior),
        cmocka_unit_test(test_finalisation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
