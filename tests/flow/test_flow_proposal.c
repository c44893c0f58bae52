/* test_flow_proposal.c - FlowProposal on the real gaussian example plugin:
 * a population from a flow fitted to a known distribution passes a
 * two-sample goodness-of-fit test against an exact reference sample; pool
 * scaling, radius modes, the likelihood-threshold rule, exact save/load
 * continuation, the interrupt contract and the weights file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flow.h"
#include "flow_io.h"
#include "flow_proposal.h"
#include "livepoint.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/plugin.h"
#include "nessai/util.h"
#include "reparam.h"

#define EX(name) NESSAI_EXAMPLES_DIR "/lib" name ".so"

/* ---- harness: config table = the fragment + the coordinator's threads */
static ns_option_t *s_table;
static size_t s_ntable;

static ns_config_t *s_config(const char *const *kv)
{
    if (!s_table) {
        s_ntable = ns_flow_options_count + 1;
        s_table = calloc(s_ntable, sizeof *s_table);
        memcpy(s_table, ns_flow_options, ns_flow_options_count * sizeof *s_table);
        s_table[ns_flow_options_count] = (ns_option_t){"threads", NS_OPT_INT, "1", 1, 64, NULL,
                                                       0, "Run", "Training threads."};
    }
    ns_config_t *c = ns_config_new(s_table, s_ntable);
    char err[256];
    for (size_t i = 0; kv && kv[i]; i += 2)
        assert_int_equal(ns_config_set(c, kv[i], kv[i + 1], err, sizeof err), NS_OK);
    return c;
}

typedef struct {
    ns_model_t *m;
    size_t n_evals;
    size_t n_pops;
    ns_population_t last;
    size_t calls, interrupt_at; /* raise SIGTERM's flag on that evaluate call */
} s_ctx_t;

static int s_eval(void *ctx, const double *x, size_t n, double *logl)
{
    s_ctx_t *c = ctx;
    c->n_evals += n;
    if (++c->calls == c->interrupt_at)
        ns_interrupt_request(SIGTERM);
    return ns_model_log_likelihood(c->m, x, n, logl);
}

static void s_uncount(void *ctx, size_t n)
{
    s_ctx_t *c = ctx;
    c->n_evals -= n;
}

static int s_eval_rows(void *ctx, double *rows, size_t n)
{
    s_ctx_t *c = ctx;
    size_t d = (size_t)ns_model_dim(c->m);
    double *x = malloc(n * d * sizeof(double)), *l = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        memcpy(x + i * d, rows + i * (d + 3), d * sizeof(double));
    int rc = s_eval(ctx, x, n, l);
    for (size_t i = 0; i < n; i++)
        rows[i * (d + 3) + d + 1] = l[i];
    free(x);
    free(l);
    return rc;
}

static void s_report(void *ctx, const ns_population_t *p)
{
    s_ctx_t *c = ctx;
    c->n_pops++;
    c->last = *p;
}

static char s_outdir[256];

static ns_proposal_env_t s_env(s_ctx_t *c, size_t nlive, uint64_t seed)
{
    ns_proposal_env_t e = {c->m, (size_t)ns_model_dim(c->m), nlive, seed, 100, s_outdir,
                           s_eval, s_eval_rows, s_report, c, s_uncount, NULL, NULL, NULL};
    return e;
}

/* n live-point rows drawn from N(0, I) (the S1 posterior) with logP, logL. */
static double *s_live(ns_model_t *m, size_t n, uint64_t seed)
{
    size_t d = (size_t)ns_model_dim(m), st = d + 3;
    ns_rng_t *r = ns_rng_new(seed, 9);
    double *rows = malloc(n * st * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        double *row = rows + i * st;
        for (size_t j = 0; j < d; j++)
            row[j] = ns_rng_gaussian(r);
        ns_model_log_prior(m, row, 1, row + d);
        ns_model_log_likelihood(m, row, 1, row + d + 1);
        row[d + 2] = 0;
    }
    ns_rng_destroy(&r);
    return rows;
}

static int s_setup(void **state)
{
    (void)state;
    ns_log_set_level(NS_LOG_ERROR); /* the proposal's INFO lines are not under test */
    snprintf(s_outdir, sizeof s_outdir, "/tmp/ns_flow_test_%d", (int)getpid());
    return ns_mkdir_p(s_outdir);
}

/* Two-sample Kolmogorov-Smirnov p-value (asymptotic, Stephens' correction). */
static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_ks2(double *a, size_t na, double *b, size_t nb)
{
    qsort(a, na, sizeof(double), s_cmp);
    qsort(b, nb, sizeof(double), s_cmp);
    size_t i = 0, j = 0;
    double D = 0;
    while (i < na && j < nb) {
        double v = a[i] < b[j] ? a[i] : b[j];
        while (i < na && a[i] <= v)
            i++;
        while (j < nb && b[j] <= v)
            j++;
        D = fmax(D, fabs((double)i / na - (double)j / nb));
    }
    double ne = (double)na * nb / (na + nb), sq = sqrt(ne);
    double lam = (sq + 0.12 + 0.11 / sq) * D, p = 0;
    for (int k = 1; k < 100; k++)
        p += 2 * ((k % 2) ? 1 : -1) * exp(-2.0 * k * k * lam * lam);
    return fmin(1.0, fmax(0.0, p));
}

/* The pool of a flow fitted to N(0, I) in d = 2 is uniform on the region
 * R = {x : |f(x')| <= r_cv} (uniform prior, rejection on p/q). Reference:
 * uniform draws around the pool kept when inside R, mapped with the flow
 * rebuilt from the weights file. Statistics: x0, x1 and |x|; each p-value
 * must exceed 1e-3. Control: raw flow samples (no rejection) fail. */
static void test_population_goodness_of_fit(void **state)
{
    (void)state;
    s_ctx_t c = {0};
    char err[512];
    assert_int_equal(ns_model_load(EX("gaussian"), "dim=2", &c.m, err, sizeof err), NS_OK);
    size_t nlive = 2000, d = 2, st = 5;
    ns_config_t *cfg = s_config(NULL);
    ns_proposal_env_t env = s_env(&c, nlive, 5);
    ns_proposal_t *p = NULL;
    assert_int_equal(ns_flow_proposal_new(cfg, &env, &p), NS_OK);
    double *live = s_live(c.m, nlive, 5);
    ns_train_info_t ti = {2000, 0, 0.5, 0, 1};
    assert_int_equal(p->ops->train(p->impl, live, nlive, &ti), NS_OK);
    assert_false(p->ops->is_populated(p->impl));
    p->ops->set_ns_acceptance(p->impl, 1.0);
    double worst[5] = {0, 0, 0, -INFINITY, 0};
    size_t npool = 0, cap = 2 * nlive;
    double *pool = malloc(cap * d * sizeof(double));
    double row[5];
    assert_int_equal(p->ops->draw(p->impl, worst, row), NS_OK);
    memcpy(pool, row, d * sizeof(double));
    npool = 1;
    while (p->ops->is_populated(p->impl)) {
        assert_int_equal(p->ops->draw(p->impl, worst, row), NS_OK);
        assert_true(isfinite(row[3]) && isfinite(row[4]));
        memcpy(pool + npool++ * d, row, d * sizeof(double));
    }
    assert_int_equal(npool, nlive);
    assert_int_equal(c.n_pops, 1);
    assert_true(fabs(c.last.radius - 2.4477) < 1e-4); /* chi_ppf(0.95, 2) */
    assert_int_equal(c.n_evals, nlive);
    /* rebuild f: weights file + the same z-score fit */
    char path[512];
    snprintf(path, sizeof path, "%s/proposal/model.flow", s_outdir);
    ns_rng_t *r = ns_rng_new(77, 0);
    ns_flow_config_t fc = ns_flow_config_default(2);
    ns_flow_t *f = ns_flow_new(&fc, r);
    assert_int_equal(ns_flow_weights_read(path, f, NULL), NS_OK);
    char cpath[512];
    snprintf(cpath, sizeof cpath, "%s/proposal/flow_config.json", s_outdir);
    assert_int_equal(access(cpath, R_OK), 0);
    snprintf(cpath, sizeof cpath, "%s/proposal/training_config.json", s_outdir);
    assert_int_equal(access(cpath, R_OK), 0);
    const char *nm[] = {"x0", "x1"};
    double lo[] = {-10, -10}, hi[] = {10, 10};
    ns_reparam_t *rp = ns_reparam_new(2, nm, lo, hi, NULL, "zscore", err, sizeof err);
    ns_reparam_update(rp, live, nlive, st);
    /* reference: uniform in the pool's bounding box (+20 %), kept inside R */
    double bl[2], bh[2];
    for (size_t j = 0; j < 2; j++) {
        bl[j] = INFINITY;
        bh[j] = -INFINITY;
        for (size_t i = 0; i < npool; i++) {
            bl[j] = fmin(bl[j], pool[i * 2 + j]);
            bh[j] = fmax(bh[j], pool[i * 2 + j]);
        }
        double w = bh[j] - bl[j];
        bl[j] -= 0.2 * w;
        bh[j] += 0.2 * w;
    }
    size_t nref = 0, want = 20000, B = 4096;
    double *ref = malloc(want * 2 * sizeof(double)), *u = malloc(B * 2 * sizeof(double));
    double *up = malloc(B * 2 * sizeof(double)), *z = malloc(B * 2 * sizeof(double));
    size_t on_box_edge = 0;
    while (nref < want) {
        for (size_t i = 0; i < B; i++)
            for (size_t j = 0; j < 2; j++)
                u[i * 2 + j] = bl[j] + (bh[j] - bl[j]) * ns_rng_uniform(r);
        ns_reparam_forward(rp, u, B, 2, up, NULL);
        ns_flow_forward(f, up, B, z, NULL);
        for (size_t i = 0; i < B && nref < want; i++) {
            double rr = sqrt(z[2 * i] * z[2 * i] + z[2 * i + 1] * z[2 * i + 1]);
            if (rr <= 2.4477470315) {
                memcpy(ref + 2 * nref++, u + 2 * i, 2 * sizeof(double));
                for (size_t j = 0; j < 2; j++)
                    if (fabs(u[2 * i + j] - bl[j]) < 1e-3 * (bh[j] - bl[j]) ||
                        fabs(u[2 * i + j] - bh[j]) < 1e-3 * (bh[j] - bl[j]))
                        on_box_edge++;
            }
        }
    }
    assert_true(on_box_edge < 10); /* the box contains R */
    double *a = malloc(npool * sizeof(double)), *b = malloc(nref * sizeof(double));
    double pv[3];
    for (int s = 0; s < 3; s++) {
        for (size_t i = 0; i < npool; i++)
            a[i] = s < 2 ? pool[2 * i + s] : hypot(pool[2 * i], pool[2 * i + 1]);
        for (size_t i = 0; i < nref; i++)
            b[i] = s < 2 ? ref[2 * i + s] : hypot(ref[2 * i], ref[2 * i + 1]);
        pv[s] = s_ks2(a, npool, b, nref);
    }
    /* control: raw flow samples (Gaussian-like, no rejection) vs R-uniform */
    for (size_t i = 0; i < B; i++)
        for (size_t j = 0; j < 2; j++)
            z[i * 2 + j] = ns_rng_gaussian(r);
    ns_flow_inverse(f, z, npool, up, NULL);
    ns_reparam_inverse(rp, up, npool, u, NULL);
    for (size_t i = 0; i < npool; i++)
        a[i] = hypot(u[2 * i], u[2 * i + 1]);
    for (size_t i = 0; i < nref; i++)
        b[i] = hypot(ref[2 * i], ref[2 * i + 1]);
    double pc = s_ks2(a, npool, b, nref);
    print_message("pool vs exact reference: KS p(x0)=%.3f p(x1)=%.3f p(|x|)=%.3f; "
                  "control (no rejection) p(|x|)=%.2e\n", pv[0], pv[1], pv[2], pc);
    assert_true(pv[0] > 1e-3 && pv[1] > 1e-3 && pv[2] > 1e-3);
    assert_true(pc < 1e-6);
    free(a);
    free(b);
    free(ref);
    free(u);
    free(up);
    free(z);
    free(pool);
    free(live);
    ns_reparam_destroy(&rp);
    ns_flow_destroy(&f);
    ns_rng_destroy(&r);
    ns_proposal_destroy(&p);
    ns_config_destroy(&cfg);
    ns_model_destroy(&c.m);
}

static const char *FAST[] = {"max-epochs", "30", "poolsize", "200", NULL};

/* Pool size follows 1/acceptance within [1, max-poolsize-scale]; the
 * likelihood-threshold rule only keeps points above the worst logL; the
 * radius modes report the radius they used. */
static void test_poolsize_rules_and_radius(void **state)
{
    (void)state;
    s_ctx_t c = {0};
    char err[512];
    assert_int_equal(ns_model_load(EX("gaussian"), "dim=3", &c.m, err, sizeof err), NS_OK);
    size_t nlive = 500, d = 3;
    double *live = s_live(c.m, nlive, 6);
    struct {
        const char *kv[12];
        double acc;
        size_t want;
        double radius; /* NAN: only check finiteness */
    } cases[] = {
        {{"max-epochs", "30", "poolsize", "200", NULL}, 0.25, 800, 2.7955},
        {{"max-epochs", "30", "poolsize", "200", NULL}, 0.0, 2000, 2.7955},
        {{"max-epochs", "30", "poolsize", "200", NULL}, 2.0, 200, 2.7955},
        {{"max-epochs", "30", "poolsize", "200", "update-poolsize", "false", NULL}, 0.1, 200,
         2.7955},
        {{"max-epochs", "30", "poolsize", "200", "radius-mode", "fixed", "fixed-radius", "1.5",
          NULL}, 1.0, 200, 1.5},
        {{"max-epochs", "30", "poolsize", "200", "radius-mode", "adaptive", NULL}, 1.0, 200, NAN},
        {{"max-epochs", "30", "poolsize", "200", "likelihood-threshold", "true", "min-log-q",
          "true", NULL}, 1.0, 200, 2.7955},
        {{"max-epochs", "30", "poolsize", "200", "truncation", "none", "latent-temperature",
          "0.5", NULL}, 1.0, 200, NAN},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        ns_config_t *cfg = s_config(cases[t].kv);
        ns_proposal_env_t env = s_env(&c, nlive, 6);
        ns_proposal_t *p = NULL;
        assert_int_equal(ns_flow_proposal_new(cfg, &env, &p), NS_OK);
        ns_train_info_t ti = {1000, 0, 0.5, 0, 1};
        assert_int_equal(p->ops->train(p->impl, live, nlive, &ti), NS_OK);
        p->ops->set_ns_acceptance(p->impl, cases[t].acc);
        /* worst: the live point with the median logL */
        double worst[6];
        memcpy(worst, live, sizeof worst);
        worst[d + 1] = -3.6; /* logL of |x| ~ 1.1 in 3-D */
        double row[6];
        c.n_pops = 0;
        assert_int_equal(p->ops->draw(p->impl, worst, row), NS_OK);
        size_t n = 1;
        int above = row[d + 1] > worst[d + 1];
        while (p->ops->is_populated(p->impl)) {
            p->ops->draw(p->impl, worst, row);
            above += row[d + 1] > worst[d + 1];
            n++;
        }
        print_message("case %zu: pool %zu (want %zu), radius %.4f, acceptance %.4f, "
                      "above threshold %d\n", t, n, cases[t].want, c.last.radius,
                      c.last.acceptance, above);
        assert_int_equal(n, cases[t].want);
        assert_int_equal(c.last.n_points, n);
        if (!isnan(cases[t].radius))
            assert_true(fabs(c.last.radius - cases[t].radius) < 1e-4);
        if (t == 5)
            assert_true(isfinite(c.last.radius) && c.last.radius > 0);
        if (t == 6)
            assert_int_equal(above, (int)n);
        else
            assert_true(above < (int)n); /* the plain pool reaches below the threshold */
        ns_proposal_destroy(&p);
        ns_config_destroy(&cfg);
    }
    free(live);
    ns_model_destroy(&c.m);
}

/* Save half-way through a pool, load into a fresh proposal: the remaining
 * draws and the next population (after retraining) are identical. */
static void test_save_load_continues_exactly(void **state)
{
    (void)state;
    s_ctx_t c = {0};
    char err[512];
    assert_int_equal(ns_model_load(EX("gaussian"), "dim=2", &c.m, err, sizeof err), NS_OK);
    size_t nlive = 400;
    double *live = s_live(c.m, nlive, 7);
    ns_config_t *cfg = s_config(FAST);
    ns_proposal_env_t env = s_env(&c, nlive, 7);
    ns_proposal_t *a = NULL, *b = NULL;
    assert_int_equal(ns_flow_proposal_new(cfg, &env, &a), NS_OK);
    assert_int_equal(ns_flow_proposal_new(cfg, &env, &b), NS_OK);
    ns_train_info_t ti = {800, 0, 0.5, 0, 1};
    assert_int_equal(a->ops->train(a->impl, live, nlive, &ti), NS_OK);
    a->ops->set_ns_acceptance(a->impl, 0.5);
    double worst[5] = {0, 0, 0, -INFINITY, 0}, ra[5], rb[5];
    for (int i = 0; i < 150; i++)
        a->ops->draw(a->impl, worst, ra);
    ns_buf_t buf;
    ns_buf_init(&buf);
    assert_int_equal(a->ops->save(a->impl, &buf), NS_OK);
    buf.pos = 0;
    assert_int_equal(b->ops->load(b->impl, &buf), NS_OK);
    assert_int_equal(buf.pos, buf.len);
    assert_true(b->ops->is_populated(b->impl));
    int k = 0;
    while (a->ops->is_populated(a->impl)) {
        a->ops->draw(a->impl, worst, ra);
        b->ops->draw(b->impl, worst, rb);
        assert_memory_equal(ra, rb, sizeof ra);
        k++;
    }
    assert_int_equal(k, 250); /* pool of 400 = poolsize 200 x 1/0.5 */
    assert_false(b->ops->is_populated(b->impl));
    ti.training_count = 1;
    assert_int_equal(a->ops->train(a->impl, live, nlive, &ti), NS_OK);
    assert_int_equal(b->ops->train(b->impl, live, nlive, &ti), NS_OK);
    for (int i = 0; i < 50; i++) {
        a->ops->draw(a->impl, worst, ra);
        b->ops->draw(b->impl, worst, rb);
        assert_memory_equal(ra, rb, sizeof ra);
    }
    /* truncated state is refused */
    for (size_t cut = 0; cut < buf.len; cut += buf.len / 40 + 1) {
        ns_buf_t v;
        ns_buf_view(&v, buf.data, cut);
        assert_int_not_equal(b->ops->load(b->impl, &v), NS_OK);
    }
    ns_buf_free(&buf);
    free(live);
    ns_proposal_destroy(&a);
    ns_proposal_destroy(&b);
    ns_config_destroy(&cfg);
    ns_model_destroy(&c.m);
}

/* An interrupted training leaves the proposal so that repeating it gives
 * what the uninterrupted training gives. */
static void test_interrupted_training_repeats_exactly(void **state)
{
    (void)state;
    s_ctx_t c = {0};
    char err[512];
    assert_int_equal(ns_model_load(EX("gaussian"), "dim=2", &c.m, err, sizeof err), NS_OK);
    size_t nlive = 300;
    double *live = s_live(c.m, nlive, 8);
    /* the second training resets the flow first (reset-flow 1): an interrupt
     * must undo the reset too */
    const char *kv[] = {"max-epochs", "30", "poolsize", "200", "reset-flow", "1", NULL};
    ns_config_t *cfg = s_config(kv);
    ns_proposal_env_t env = s_env(&c, nlive, 8);
    ns_proposal_t *a = NULL, *b = NULL;
    assert_int_equal(ns_flow_proposal_new(cfg, &env, &a), NS_OK);
    assert_int_equal(ns_flow_proposal_new(cfg, &env, &b), NS_OK);
    double worst[5] = {0, 0, 0, -INFINITY, 0}, ra[5], rb[5];
    for (long k = 0; k < 2; k++) {
        ns_train_info_t ti = {600 + k, k, 0.5, 0, 1};
        ns_interrupt_request(SIGTERM);
        assert_int_equal(b->ops->train(b->impl, live, nlive, &ti), NS_ERR_INTERRUPTED);
        ns_interrupt_clear();
        assert_int_equal(a->ops->train(a->impl, live, nlive, &ti), NS_OK);
        assert_int_equal(b->ops->train(b->impl, live, nlive, &ti), NS_OK);
        for (int i = 0; i < 100; i++) {
            a->ops->draw(a->impl, worst, ra);
            b->ops->draw(b->impl, worst, rb);
            assert_memory_equal(ra, rb, sizeof ra);
        }
    }
    free(live);
    ns_proposal_destroy(&a);
    ns_proposal_destroy(&b);
    ns_config_destroy(&cfg);
    ns_model_destroy(&c.m);
}

/* With the likelihood-threshold rule every latent batch is evaluated during
 * the population. An interrupt in the middle leaves the generator and the
 * evaluation count as they were, so the repeated population gives the same
 * pool and the same count as an uninterrupted one. */
static void test_interrupted_population_repeats_exactly(void **state)
{
    (void)state;
    s_ctx_t ca = {0}, cb = {0};
    char err[512];
    assert_int_equal(ns_model_load(EX("gaussian"), "dim=2", &ca.m, err, sizeof err), NS_OK);
    cb.m = ca.m;
    size_t nlive = 300;
    double *live = s_live(ca.m, nlive, 5);
    const char *kv[] = {"max-epochs", "30", "poolsize", "300", "drawsize", "40",
                        "likelihood-threshold", "true", NULL};
    ns_config_t *cfg = s_config(kv);
    ns_proposal_env_t ea = s_env(&ca, nlive, 5), eb = s_env(&cb, nlive, 5);
    ns_proposal_t *a = NULL, *b = NULL;
    assert_int_equal(ns_flow_proposal_new(cfg, &ea, &a), NS_OK);
    assert_int_equal(ns_flow_proposal_new(cfg, &eb, &b), NS_OK);
    ns_train_info_t ti = {600, 0, 0.5, 0, 1};
    assert_int_equal(a->ops->train(a->impl, live, nlive, &ti), NS_OK);
    assert_int_equal(b->ops->train(b->impl, live, nlive, &ti), NS_OK);
    a->ops->set_ns_acceptance(a->impl, 0.5);
    b->ops->set_ns_acceptance(b->impl, 0.5);
    /* worst logL of a point 1.5 sigma out: some candidates are below it */
    double worst[5] = {1.5, 0, 0, 0, 0}, ra[5], rb[5];
    ns_model_log_likelihood(ca.m, worst, 1, worst + 3);
    cb.interrupt_at = 3;
    assert_int_equal(b->ops->draw(b->impl, worst, rb), NS_ERR_INTERRUPTED);
    ns_interrupt_clear();
    assert_true(cb.calls >= 3);
    assert_int_equal(cb.n_evals, 0);
    assert_false(b->ops->is_populated(b->impl));
    size_t k = 0;
    do {
        assert_int_equal(a->ops->draw(a->impl, worst, ra), NS_OK);
        assert_int_equal(b->ops->draw(b->impl, worst, rb), NS_OK);
        assert_memory_equal(ra, rb, sizeof ra);
        assert_true(ra[3] > worst[3]);
        k++;
    } while (a->ops->is_populated(a->impl));
    assert_int_equal(k, 600); /* pool 300 x 1/0.5 */
    assert_true(ca.calls > 3);
    assert_int_equal(cb.n_evals, ca.n_evals);
    free(live);
    ns_proposal_destroy(&a);
    ns_proposal_destroy(&b);
    ns_config_destroy(&cfg);
    ns_model_destroy(&ca.m);
}

/* Bad configuration is refused with an error, never an abort. */
static void test_bad_configuration(void **state)
{
    (void)state;
    s_ctx_t c = {0};
    char err[512];
    assert_int_equal(ns_model_load(EX("gaussian"), "dim=2", &c.m, err, sizeof err), NS_OK);
    const char *bad[][5] = {
        {"reparameterisations", "q:zscore", NULL},
        {"radius-mode", "fixed", NULL},
        {"flow-net", "mlp", "flow-n-layers", "0", NULL},
    };
    for (size_t t = 0; t < 3; t++) {
        ns_config_t *cfg = s_config(bad[t]);
        ns_proposal_env_t env = s_env(&c, 100, 1);
        ns_proposal_t *p = NULL;
        assert_int_equal(ns_flow_proposal_new(cfg, &env, &p), NS_ERR_INVAL);
        assert_null(p);
        ns_config_destroy(&cfg);
    }
    ns_model_destroy(&c.m);
}

static int s_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_outdir);
    if (system(cmd) != 0)
        return 1;
    free(s_table);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_population_goodness_of_fit),
        cmocka_unit_test(test_poolsize_rules_and_radius),
        cmocka_unit_test(test_save_load_continues_exactly),
        cmocka_unit_test(test_interrupted_training_repeats_exactly),
        cmocka_unit_test(test_interrupted_population_repeats_exactly),
        cmocka_unit_test(test_bad_configuration),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
