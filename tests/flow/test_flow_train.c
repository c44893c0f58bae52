/* test_flow_train.c - AdamW and clipping against hand-computed answers, the
 * batch-size rule, the interrupt contract, determinism, and a flow trained
 * on a correlated 2-D Gaussian recovering its density (KL bound), and the
 * best-epoch state kept. Epoch times: bench/flow (nessai-bench-flow). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "flow_train.h"
#include "nessai/error.h"
#include "nessai/util.h"

static void test_adamw_known_answer(void **state)
{
    (void)state;
    ns_adamw_t *o = ns_adamw_new(2, 0.1, 0.01);
    double th[2] = {1.0, -2.0}, g[2] = {0.5, -0.25};
    ns_adamw_step(o, th, g);
    /* m = 0.1 g, v = 0.001 g^2, bias corrections 0.1 and 0.001:
     * theta = theta (1 - lr wd) - lr/0.1 * m / (sqrt(v)/sqrt(0.001) + 1e-8) */
    double e0 = 1.0 * 0.999 - 1.0 * 0.05 / (0.5 + 1e-8);
    double e1 = -2.0 * 0.999 + 1.0 * 0.025 / (0.25 + 1e-8);
    assert_true(fabs(th[0] - e0) < 1e-15);
    assert_true(fabs(th[1] - e1) < 1e-15);
    /* second step with the same gradient: m = 0.19 g, v = 0.001999 g^2 */
    ns_adamw_step(o, th, g);
    double bc1 = 1 - 0.81, bc2 = 1 - 0.998001;
    double m = 0.19 * 0.5, v = 0.001999 * 0.25;
    e0 = e0 * 0.999 - (0.1 / bc1) * m / (sqrt(v) / sqrt(bc2) + 1e-8);
    assert_true(fabs(th[0] - e0) < 1e-14);
    assert_int_equal(o->step, 2);
    /* save/load round trip, then reset */
    ns_buf_t b;
    ns_buf_init(&b);
    ns_adamw_save(o, &b);
    ns_adamw_t *o2 = ns_adamw_new(2, 1.0, 0.0);
    assert_int_equal(ns_adamw_load(o2, &b), 0);
    assert_int_equal(o2->step, 2);
    assert_memory_equal(o->m, o2->m, 2 * sizeof(double));
    assert_memory_equal(o->v, o2->v, 2 * sizeof(double));
    assert_true(o2->lr == 0.1 && o2->weight_decay == 0.01);
    ns_adamw_t *o3 = ns_adamw_new(3, 1.0, 0.0);
    b.pos = 0;
    assert_int_equal(ns_adamw_load(o3, &b), NS_ERR_CORRUPT);
    ns_adamw_reset(o2);
    assert_int_equal(o2->step, 0);
    assert_true(o2->m[0] == 0.0 && o2->v[1] == 0.0);
    ns_buf_free(&b);
    ns_adamw_destroy(&o);
    ns_adamw_destroy(&o2);
    ns_adamw_destroy(&o3);
    ns_adamw_destroy(&o3);
}

static void test_clip(void **state)
{
    (void)state;
    double g[2] = {3.0, 4.0};
    double n = ns_clip_grad_norm(g, 2, 5.0);
    assert_true(n == 5.0);
    /* 5/(5+1e-6) < 1: scaled */
    assert_true(fabs(g[0] - 3.0 * 5.0 / (5.0 + 1e-6)) < 1e-15);
    double h[2] = {30.0, 40.0};
    ns_clip_grad_norm(h, 2, 5.0);
    assert_true(fabs(sqrt(h[0] * h[0] + h[1] * h[1]) - 5.0) < 1e-6);
    double k[2] = {0.3, 0.4};
    ns_clip_grad_norm(k, 2, 5.0);
    assert_true(k[0] == 0.3 && k[1] == 0.4);
}

static void test_batch_rule(void **state)
{
    (void)state;
    assert_int_equal(ns_train_adjust_batch(1800, 1000), 1000); /* remainder 800 */
    assert_int_equal(ns_train_adjust_batch(2000, 1000), 1000);
    assert_int_equal(ns_train_adjust_batch(1005, 1000), 914);  /* 91 >= int(91.4) */
    assert_int_equal(ns_train_adjust_batch(90, 1000), 909);    /* 90 >= int(90.9): one batch */
    assert_int_equal(ns_train_adjust_batch(1, 1000), 19);     /* 1 >= int(1.9) */
    assert_int_equal(ns_train_adjust_batch(10, 1), 0);        /* below 2: error */
}

/* n values s N(0, 1) from rng; the caller frees them. */
static double *s_gauss(ns_rng_t *rng, size_t n, double s)
{
    double *x = malloc(n * sizeof(double));
    for (size_t q = 0; q < n; q++)
        x[q] = s * ns_rng_gaussian(rng);
    return x;
}

static double *s_corr_gauss(ns_rng_t *rng, size_t n, double *mu, double *sd, double rho)
{
    double *x = malloc(2 * n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        double a = ns_rng_gaussian(rng), b = ns_rng_gaussian(rng);
        x[2 * i] = mu[0] + sd[0] * a;
        x[2 * i + 1] = mu[1] + sd[1] * (rho * a + sqrt(1 - rho * rho) * b);
    }
    return x;
}

static double s_corr_logpdf(const double *x, double *mu, double *sd, double rho)
{
    double u = (x[0] - mu[0]) / sd[0], v = (x[1] - mu[1]) / sd[1];
    double q = (u * u - 2 * rho * u * v + v * v) / (1 - rho * rho);
    return -0.5 * q - log(2 * M_PI * sd[0] * sd[1] * sqrt(1 - rho * rho));
}

/* Defaults of docs/algorithm.md §4.1/§4.3, 2000 points: KL(p || q) estimated on 20000
 * fresh draws from p must be below 0.03 nats (the estimator's standard
 * error is ~0.002 here). Samples drawn through the inverse must have the
 * right correlation (within 0.03). */
static void s_density_recovery(int train_f32)
{
    ns_rng_t *rng = ns_rng_new(31, 0), *frng = ns_rng_new(31, 1);
    double mu[2] = {0.0, 0.0}, sd[2] = {1.0, 1.0}, rho = 0.8;
    size_t n = 2000, nt = 20000;
    double *x = s_corr_gauss(rng, n, mu, sd, rho);
    ns_flow_config_t cfg = ns_flow_config_default(2);
    ns_flow_t *f = ns_flow_new(&cfg, frng);
    assert_int_equal(ns_flow_set_train_f32(f, train_f32), NS_OK);
    ns_train_config_t tc = ns_train_config_default();
    ns_adamw_t *opt = ns_adamw_new(ns_flow_n_params(f), tc.lr, tc.weight_decay);
    ns_train_stats_t st;
    assert_int_equal(ns_flow_train(f, opt, &tc, x, n, frng, &st, NULL), 0);
    assert_int_equal(st.n_train, 1800);
    assert_int_equal(st.n_val, 200);
    double *xt = s_corr_gauss(rng, nt, mu, sd, rho);
    double *lq = malloc(nt * sizeof(double));
    ns_flow_log_prob(f, xt, nt, lq);
    double kl = 0.0, kl2 = 0.0;
    for (size_t i = 0; i < nt; i++) {
        double r = s_corr_logpdf(xt + 2 * i, mu, sd, rho) - lq[i];
        kl += r;
        kl2 += r * r;
    }
    kl /= (double)nt;
    double se = sqrt((kl2 / (double)nt - kl * kl) / (double)nt);
    /* samples from q */
    double *z = malloc(2 * nt * sizeof(double)), *xs = malloc(2 * nt * sizeof(double));
    for (size_t q = 0; q < 2 * nt; q++)
        z[q] = ns_rng_gaussian(rng);
    ns_flow_inverse(f, z, nt, xs, NULL);
    double m0 = 0, m1 = 0, s00 = 0, s11 = 0, s01 = 0;
    for (size_t i = 0; i < nt; i++) {
        m0 += xs[2 * i];
        m1 += xs[2 * i + 1];
    }
    m0 /= nt;
    m1 /= nt;
    for (size_t i = 0; i < nt; i++) {
        double a = xs[2 * i] - m0, b = xs[2 * i + 1] - m1;
        s00 += a * a;
        s11 += b * b;
        s01 += a * b;
    }
    double r = s01 / sqrt(s00 * s11);
    print_message("%s training: %zu epochs (best %zu, val loss %.4f, %.2f s); KL(p||q) = "
                  "%.4f +/- %.4f nats; sample corr %.3f, means %.3f %.3f, sds %.3f %.3f\n",
                  train_f32 ? "float32" : "float64", st.epochs, st.best_epoch, st.best_val_loss, st.time, kl, se, r, m0, m1,
                  sqrt(s00 / nt), sqrt(s11 / nt));
    assert_true(kl < 0.03);
    assert_true(fabs(r - rho) < 0.03);
    assert_true(fabs(m0) < 0.05 && fabs(m1) < 0.05);
    free(x);
    free(xt);
    free(lq);
    free(z);
    free(xs);
    ns_adamw_destroy(&opt);
    ns_flow_destroy(&f);
    ns_rng_destroy(&rng);
    ns_rng_destroy(&frng);
}

static void test_density_recovery(void **state)
{
    (void)state;
    s_density_recovery(0);
}

/* The same with the training passes in float32 (--training-precision). */
static void test_density_recovery_f32(void **state)
{
    (void)state;
    s_density_recovery(1);
}

/* Same seed, same data: bit-identical weights. An interrupt pending at
 * entry leaves flow, optimiser and generator exactly as they were. */
static void test_determinism_and_interrupt(void **state)
{
    (void)state;
    ns_rng_t *drng = ns_rng_new(41, 0);
    size_t d = 3, n = 300;
    double *x = s_gauss(drng, n * d, 1.0);
    ns_train_config_t tc = ns_train_config_default();
    tc.max_epochs = 15;
    tc.batch_size = 100;
    ns_flow_config_t cfg = ns_flow_config_default(d);
    double *w[2];
    for (int rep = 0; rep < 2; rep++) {
        ns_rng_t *r = ns_rng_new(7, 3);
        ns_flow_t *f = ns_flow_new(&cfg, r);
        ns_adamw_t *o = ns_adamw_new(ns_flow_n_params(f), tc.lr, tc.weight_decay);
        ns_train_stats_t st;
        assert_int_equal(ns_flow_train(f, o, &tc, x, n, r, &st, NULL), 0);
        assert_int_equal(st.epochs, 15);
        w[rep] = malloc(ns_flow_n_params(f) * sizeof(double));
        memcpy(w[rep], ns_flow_params(f), ns_flow_n_params(f) * sizeof(double));
        if (rep == 1) {
            assert_memory_equal(w[0], w[1], ns_flow_n_params(f) * sizeof(double));
            /* interrupt contract */
            size_t rs = ns_rng_state_size(r);
            unsigned char *s0 = malloc(rs), *s1 = malloc(rs);
            ns_rng_state_save(r, s0);
            uint64_t step = o->step;
            ns_interrupt_request(SIGINT);
            assert_int_equal(ns_flow_train(f, o, &tc, x, n, r, &st, NULL),
                             NS_ERR_INTERRUPTED);
            ns_interrupt_clear();
            ns_rng_state_save(r, s1);
            assert_memory_equal(s0, s1, rs);
            assert_int_equal(o->step, step);
            assert_memory_equal(w[0], ns_flow_params(f), ns_flow_n_params(f) * sizeof(double));
            free(s0);
            free(s1);
        }
        ns_adamw_destroy(&o);
        ns_flow_destroy(&f);
        ns_rng_destroy(&r);
    }
    free(w[0]);
    free(w[1]);
    free(x);
    ns_rng_destroy(&drng);
}

/* What an observer of the training records after every epoch. */
typedef struct {
    size_t n, P, nbuf;
    double *theta, *bufs; /* per epoch: P parameters, nbuf running statistics */
    double val[64];       /* validation loss the training reported */
} s_epochs_t;

static void s_record_epoch(void *ctx, size_t epoch, ns_flow_t *flow, double train_loss,
                           double val_loss)
{
    (void)train_loss;
    s_epochs_t *e = ctx;
    assert_int_equal(epoch, e->n + 1);
    assert_true(e->n < 64);
    memcpy(e->theta + e->n * e->P, ns_flow_params(flow), e->P * sizeof(double));
    ns_flow_get_buffers(flow, e->bufs + e->n * e->nbuf);
    e->val[e->n++] = val_loss;
}

/* The state kept after training is, bit for bit, the state after the epoch
 * with the lowest validation loss, an epoch before the last (patience 4
 * stops the training after it). The validation loss of every recorded
 * epoch is recomputed here, in a second flow, on the validation rows the
 * training's split takes (its first draws shuffle the rows: reproduced
 * from a copy of the generator). With val_size 0 the final state is kept. */
static void test_best_state_restored(void **state)
{
    (void)state;
    ns_rng_t *r = ns_rng_new(51, 0);
    size_t d = 2, n = 400;
    double *x = s_gauss(r, n * d, 2.0);
    ns_flow_config_t cfg = ns_flow_config_default(d);
    ns_flow_t *f = ns_flow_new(&cfg, r);
    ns_train_config_t tc = ns_train_config_default();
    tc.max_epochs = 60;
    tc.batch_size = 50;
    tc.lr = 2e-2;
    tc.patience = 4;
    ns_adamw_t *o = ns_adamw_new(ns_flow_n_params(f), tc.lr, tc.weight_decay);
    size_t P = ns_flow_n_params(f), nbuf = ns_flow_n_buffers(f);
    s_epochs_t rec = {0, P, nbuf, malloc(64 * P * sizeof(double)),
                      malloc(64 * nbuf * sizeof(double)), {0}};
    /* the validation rows: the training shuffles all (finite) rows first */
    size_t rs = ns_rng_state_size(r);
    unsigned char *rstate = malloc(rs);
    ns_rng_state_save(r, rstate);
    ns_rng_t *rc = ns_rng_new(0, 0);
    ns_rng_state_load(rc, rstate, rs);
    double *xs = malloc(n * d * sizeof(double));
    memcpy(xs, x, n * d * sizeof(double));
    ns_rng_shuffle(rc, xs, n, d * sizeof(double));
    size_t n_train = (size_t)((1.0 - tc.val_size) * (double)n), n_val = n - n_train;

    double hist[120];
    ns_train_stats_t st;
    assert_int_equal(
        ns_flow_train_observed(f, o, &tc, x, n, r, &st, hist, s_record_epoch, &rec), 0);
    assert_int_equal(rec.n, st.epochs);
    assert_int_equal(st.n_val, n_val);

    /* recompute every epoch's validation loss from its recorded state */
    ns_rng_t *r2 = ns_rng_new(99, 0);
    ns_flow_t *g = ns_flow_new(&cfg, r2);
    size_t argmin = 0;
    double vmin = INFINITY;
    for (size_t e = 0; e < rec.n; e++) {
        memcpy(ns_flow_params(g), rec.theta + e * P, P * sizeof(double));
        ns_flow_set_buffers(g, rec.bufs + e * nbuf);
        ns_flow_params_changed(g);
        double v = ns_flow_loss_eval(g, xs + n_train * d, n_val);
        assert_true(v == rec.val[e]);
        assert_true(v == hist[2 * e + 1]);
        if (v < vmin) {
            vmin = v;
            argmin = e;
        }
    }
    print_message("best epoch %zu of %zu, val loss %.6f (last %.6f)\n", argmin + 1, rec.n,
                  vmin, rec.val[rec.n - 1]);
    /* the setup stops on patience: the best epoch is not the last */
    assert_true(argmin + 1 < rec.n);
    assert_int_equal(rec.n, argmin + 1 + tc.patience + 1);
    assert_true(memcmp(rec.theta + argmin * P, rec.theta + (rec.n - 1) * P,
                       P * sizeof(double)) != 0);
    /* what was kept is that epoch's state, bit for bit */
    assert_int_equal(st.best_epoch, argmin + 1);
    assert_true(st.best_val_loss == vmin);
    assert_memory_equal(ns_flow_params(f), rec.theta + argmin * P, P * sizeof(double));
    double *kept = malloc((nbuf ? nbuf : 1) * sizeof(double));
    ns_flow_get_buffers(f, kept);
    assert_memory_equal(kept, rec.bufs + argmin * nbuf, nbuf * sizeof(double));
    assert_true(ns_flow_loss_eval(f, xs + n_train * d, n_val) == vmin);

    /* without validation the final state is kept */
    tc.val_size = 0.0;
    tc.max_epochs = 3;
    rec.n = 0;
    assert_int_equal(
        ns_flow_train_observed(f, o, &tc, x, n, r, &st, NULL, s_record_epoch, &rec), 0);
    assert_int_equal(st.n_train, n);
    assert_int_equal(st.epochs, 3);
    assert_int_equal(rec.n, 3);
    assert_true(isnan(rec.val[2]));
    assert_memory_equal(ns_flow_params(f), rec.theta + 2 * P, P * sizeof(double));
    free(kept);
    free(xs);
    free(rstate);
    free(rec.theta);
    free(rec.bufs);
    free(x);
    ns_adamw_destroy(&o);
    ns_flow_destroy(&f);
    ns_flow_destroy(&g);
    ns_rng_destroy(&r);
    ns_rng_destroy(&rc);
    ns_rng_destroy(&r2);
}

int main(void)
{
    ns_flow_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_known_answer),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_batch_rule),
        cmocka_unit_test(test_density_recovery),
        cmocka_unit_test(test_density_recovery_f32),
        cmocka_unit_test(test_determinism_and_interrupt),
        cmocka_unit_test(test_best_state_restored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
