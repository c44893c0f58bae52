/* test_ins_run.c - the importance nested sampler through its API on the
 * example plugins: ln Z within 4 sigma of the truth (2-D Gaussian, the sky
 * with its own hypercube maps, a custom log_prior on the linear map), the
 * likelihood count 2 n_initial + 2 nlive K, equal mixture weights, the
 * posterior draw of int(ESS) samples, the same run from the same seed;
 * and the weighted flow loss and training against their unweighted forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "flow_train.h"
#include "harness.h"
#include "ins.h"
#include "nessai/error.h"
#include "nessai/evaluator.h"
#include "nessai/plugin.h"

typedef struct {
    double lz, err, ess;
    long levels;
    uint64_t n_like;
    size_t n_post, n_hist;
    int weights_equal, added_ok;
} s_out_t;

static void s_run(const char *name, const char *args, size_t nlive, int iid, uint64_t seed,
                  s_out_t *o, double *truth)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/lib%s.so", NESSAI_EXAMPLES_DIR, name);
    ns_model_t *m = NULL;
    assert_int_equal(ns_model_load(path, args, &m, err, sizeof err), NS_OK);
    ns_evaluator_t *ev = ns_evaluator_inprocess_new(m, 0);
    ns_ins_config_t c = ns_ins_config_default((size_t)ns_model_dim(m), seed);
    c.nlive = c.n_initial = nlive;
    c.min_samples = nlive / 5;
    c.draw_iid_live = iid;
    ns_ins_t *ins = NULL;
    assert_int_equal(ns_ins_new(&c, m, ev, &ins, err, sizeof err), NS_OK);
    assert_int_equal(ns_ins_run(ins), NS_OK);
    o->lz = ns_ins_log_evidence(ins);
    o->err = ns_ins_log_evidence_error(ins);
    o->ess = ns_ins_ess_value(ins);
    o->levels = ns_ins_iteration(ins);
    o->n_like = ns_ins_likelihood_evaluations(ins);
    cJSON *r = ns_ins_result_json(ins);
    assert_non_null(r);
    cJSON *mw = cJSON_GetObjectItem(r, "mixture_weights");
    int K1 = cJSON_GetArraySize(mw);
    o->weights_equal = K1 == o->levels + 1;
    for (int k = 0; k < K1; k++)
        o->weights_equal &= fabs(cJSON_GetArrayItem(mw, k)->valuedouble - 1.0 / K1) < 1e-15;
    cJSON *post = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "posterior_samples"), "logL");
    o->n_post = (size_t)cJSON_GetArraySize(post);
    cJSON *added = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "history"), "n_added");
    o->n_hist = (size_t)cJSON_GetArraySize(added);
    o->added_ok = 1;
    for (int k = 0; k < cJSON_GetArraySize(added); k++)
        o->added_ok &= cJSON_GetArrayItem(added, k)->valuedouble == (double)nlive;
    cJSON_Delete(r);
    *truth = ns_model_truth(m);
    ns_ins_destroy(&ins);
    ns_evaluator_destroy(&ev);
    ns_model_destroy(&m);
}

static void s_check(const char *what, const s_out_t *o, double truth, size_t nlive, int iid)
{
    print_message("%s: ln Z %.4f +/- %.4f (truth %.4f, %+.2f sigma), %ld levels, ESS %.1f, "
                  "%llu likelihoods\n", what, o->lz, o->err, truth, (o->lz - truth) / o->err,
                  o->levels, o->ess, (unsigned long long)o->n_like);
    assert_true(o->err > 0 && o->err < 0.1);
    if (!(fabs(o->lz - truth) < 4 * o->err))
        fail_msg("%s: ln Z %.5f is %.2f sigma from the truth %.5f", what, o->lz,
                 (o->lz - truth) / o->err, truth);
    uint64_t sets = iid ? 2 : 1;
    assert_true(o->levels >= 1);
    assert_true(o->n_like == sets * nlive + sets * nlive * (uint64_t)o->levels);
    assert_true(o->weights_equal);
    assert_true(o->added_ok);
    assert_int_equal(o->n_hist, (size_t)o->levels);
    assert_int_equal(o->n_post, (size_t)o->ess);
}

static void test_gaussian(void **state)
{
    (void)state;
    s_out_t a, b, c;
    double truth;
    s_run("gaussian", "dim=2", 1000, 1, 11, &a, &truth);
    s_check("gaussian d=2", &a, truth, 1000, 1);
    /* the same seed: the same run, bit for bit */
    s_run("gaussian", "dim=2", 1000, 1, 11, &b, &truth);
    assert_true(memcmp(&a.lz, &b.lz, sizeof a.lz) == 0 && a.n_like == b.n_like);
    assert_true(memcmp(&a.err, &b.err, sizeof a.err) == 0);
    /* another seed: another run */
    s_run("gaussian", "dim=2", 1000, 1, 12, &c, &truth);
    assert_true(c.lz != a.lz);
    s_check("gaussian d=2, seed 12", &c, truth, 1000, 1);
}

static void test_no_iid_set(void **state)
{
    (void)state;
    s_out_t a;
    double truth;
    s_run("gaussian", "dim=2", 1000, 0, 3, &a, &truth);
    s_check("gaussian d=2, training set only", &a, truth, 1000, 0);
}

/* the sky's inverse-CDF maps (a non-uniform prior), and the discrete
 * model's custom log_prior through the linear map (a density on the cube) */
static void test_custom_priors(void **state)
{
    (void)state;
    s_out_t a;
    double truth;
    s_run("sky", "kappa=5,ra0=3,dec0=-0.7", 1000, 1, 4, &a, &truth);
    s_check("sky (own hypercube maps)", &a, truth, 1000, 1);
    s_run("correlated", "dim=2", 1000, 1, 5, &a, &truth);
    s_check("correlated d=2", &a, truth, 1000, 1);
}

/* weights 2, 1, 1 are the unweighted loss on the data with row 0 twice
 * (no batch norm, so rows do not interact) */
static void test_weighted_loss(void **state)
{
    (void)state;
    ns_flow_config_t cfg = ns_flow_config_default(2);
    cfg.batch_norm = 0;
    ns_rng_t *rng = ns_rng_new(7, 0);
    ns_flow_t *f = ns_flow_new(&cfg, rng);
    assert_non_null(f);
    ns_flow_reserve(f, 16);
    size_t P = ns_flow_n_params(f);
    double x[6] = {0.3, -1.2, 1.5, 0.4, -0.7, 2.0}, w[3] = {2, 1, 1};
    double xd[8] = {0.3, -1.2, 0.3, -1.2, 1.5, 0.4, -0.7, 2.0};
    ns_flow_zero_grad(f);
    double lw = ns_flow_loss_grad_weighted(f, x, w, 3, 0);
    double *gw = malloc(P * sizeof *gw);
    memcpy(gw, ns_flow_grad(f), P * sizeof *gw);
    ns_flow_zero_grad(f);
    double lu = ns_flow_loss_grad(f, xd, 4, 0);
    th_assert_near(lw, lu, 1e-13);
    for (size_t k = 0; k < P; k++)
        th_assert_near(gw[k], ns_flow_grad(f)[k], 1e-13);
    /* ... and in float32 */
    assert_int_equal(ns_flow_set_train_f32(f, 1), NS_OK);
    ns_flow_zero_grad(f);
    lw = ns_flow_loss_grad_weighted(f, x, w, 3, 0);
    memcpy(gw, ns_flow_grad(f), P * sizeof *gw);
    ns_flow_zero_grad(f);
    lu = ns_flow_loss_grad(f, xd, 4, 0);
    th_assert_near(lw, lu, 1e-5);
    for (size_t k = 0; k < P; k++)
        th_assert_near(gw[k], ns_flow_grad(f)[k], 1e-5 * (1 + fabs(gw[k])));
    free(gw);
    ns_flow_destroy(&f);
    ns_rng_destroy(&rng);
}

/* equal weights train as the unweighted procedure does (same shuffles,
 * splits and steps; only the rounding of 1/n differs, which Adam's
 * normalisation of near-zero gradients enlarges to ~1e-7 in 5 epochs) */
static void test_weighted_training_equal_weights(void **state)
{
    (void)state;
    ns_flow_config_t cfg = ns_flow_config_default(2);
    ns_train_config_t tc = ns_train_config_default();
    tc.max_epochs = 5;
    tc.batch_size = 100;
    size_t n = 400;
    double *x = malloc(2 * n * sizeof *x), *w = malloc(n * sizeof *w);
    ns_rng_t *g = ns_rng_new(3, 9);
    for (size_t i = 0; i < n; i++) {
        x[2 * i] = ns_rng_gaussian(g);
        x[2 * i + 1] = 0.5 * x[2 * i] + ns_rng_gaussian(g);
        w[i] = 1.0;
    }
    ns_flow_t *f[2];
    double *theta[2];
    for (int k = 0; k < 2; k++) {
        ns_rng_t *ri = ns_rng_new(5, 0), *rt = ns_rng_new(5, 1);
        f[k] = ns_flow_new(&cfg, ri);
        ns_adamw_t *o = ns_adamw_new(ns_flow_n_params(f[k]), tc.lr, tc.weight_decay);
        ns_train_stats_t st;
        int rc = k ? ns_flow_train_weighted(f[k], o, &tc, x, w, n, rt, &st, NULL, NULL, NULL)
                   : ns_flow_train(f[k], o, &tc, x, n, rt, &st, NULL);
        assert_int_equal(rc, NS_OK);
        assert_int_equal(st.epochs, 5);
        theta[k] = ns_flow_params(f[k]);
        ns_adamw_destroy(&o);
        ns_rng_destroy(&ri);
        ns_rng_destroy(&rt);
    }
    size_t P = ns_flow_n_params(f[0]);
    double maxd = 0;
    for (size_t k = 0; k < P; k++)
        maxd = fmax(maxd, fabs(theta[0][k] - theta[1][k]));
    print_message("equal weights vs unweighted: max parameter difference %.3g\n", maxd);
    assert_true(maxd < 1e-6);
    ns_flow_destroy(&f[0]);
    ns_flow_destroy(&f[1]);
    ns_rng_destroy(&g);
    free(x);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weighted_loss),
        cmocka_unit_test(test_weighted_training_equal_weights),
        cmocka_unit_test(test_gaussian),
        cmocka_unit_test(test_no_iid_set),
        cmocka_unit_test(test_custom_priors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
