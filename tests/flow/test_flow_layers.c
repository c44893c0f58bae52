/* test_flow_layers.c - every layer's backward pass against central finite
 * differences; inverse(forward(x)) = x with opposite log-dets.
 *
 * Each check uses a random linear functional of the layer outputs,
 * loss = sum C .* y + sum g_i logdet_i, so dLoss/dy = C and dLoss/dlogdet = g
 * exercise every path of the backward pass. Finite differences are central
 * with step 1e-5; the tolerance is on |analytic - numeric| / max(1, |numeric|). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flow_layers.h"

#define FD_STEP 1e-5
#define FD_TOL 1e-6

typedef struct {
    size_t n, d;
    double *x, *y, *ld, *C, *g, *dx;
} s_case_t;

static void s_case_new(s_case_t *c, size_t n, size_t d, ns_rng_t *rng)
{
    c->n = n;
    c->d = d;
    c->x = malloc(n * d * sizeof(double));
    c->y = malloc(n * d * sizeof(double));
    c->dx = malloc(n * d * sizeof(double));
    c->C = malloc(n * d * sizeof(double));
    c->ld = malloc(n * sizeof(double));
    c->g = malloc(n * sizeof(double));
    for (size_t q = 0; q < n * d; q++) {
        c->x[q] = 1.5 * ns_rng_gaussian(rng);
        c->C[q] = ns_rng_gaussian(rng);
    }
    for (size_t i = 0; i < n; i++)
        c->g[i] = ns_rng_gaussian(rng);
}

static void s_case_free(s_case_t *c)
{
    free(c->x);
    free(c->y);
    free(c->dx);
    free(c->C);
    free(c->ld);
    free(c->g);
}

static double s_functional(const s_case_t *c)
{
    double s = 0.0;
    for (size_t q = 0; q < c->n * c->d; q++)
        s += c->C[q] * c->y[q];
    for (size_t i = 0; i < c->n; i++)
        s += c->g[i] * c->ld[i];
    return s;
}

/* A layer under test: forward fills y and ld from x; backward fills dx and
 * adds into grad. */
typedef struct {
    void (*fwd)(void *L, double *p, s_case_t *c);
    void (*bwd)(void *L, double *p, s_case_t *c, double *grad);
    void *L;
    double *p;
    size_t np;
} s_layer_t;

static double s_eval(s_layer_t *l, s_case_t *c)
{
    memset(c->ld, 0, c->n * sizeof(double));
    l->fwd(l->L, l->p, c);
    return s_functional(c);
}

static double s_check(s_layer_t *l, s_case_t *c)
{
    double *grad = calloc(l->np, sizeof(double));
    s_eval(l, c);
    l->bwd(l->L, l->p, c, grad);
    double *dx = malloc(c->n * c->d * sizeof(double));
    memcpy(dx, c->dx, c->n * c->d * sizeof(double));
    double worst = 0.0;
    for (size_t k = 0; k < l->np; k++) {
        double p0 = l->p[k];
        l->p[k] = p0 + FD_STEP;
        double fp = s_eval(l, c);
        l->p[k] = p0 - FD_STEP;
        double fm = s_eval(l, c);
        l->p[k] = p0;
        double num = (fp - fm) / (2 * FD_STEP);
        double e = fabs(grad[k] - num) / fmax(1.0, fabs(num));
        if (e > worst)
            worst = e;
    }
    for (size_t q = 0; q < c->n * c->d; q++) {
        double x0 = c->x[q];
        c->x[q] = x0 + FD_STEP;
        double fp = s_eval(l, c);
        c->x[q] = x0 - FD_STEP;
        double fm = s_eval(l, c);
        c->x[q] = x0;
        double num = (fp - fm) / (2 * FD_STEP);
        double e = fabs(dx[q] - num) / fmax(1.0, fabs(num));
        if (e > worst)
            worst = e;
    }
    s_eval(l, c); /* leave caches consistent */
    free(grad);
    free(dx);
    return worst;
}

/* The layer's inverse applied to c->y (as left by the last forward) gives
 * back c->x within tol and the opposite log-dets within 1e-12. */
typedef void (*s_inverse_fn)(void *L, double *p, const double *y, size_t n, double *x,
                             double *ld);

static void s_check_inverse(s_inverse_fn inv, void *L, double *p, const s_case_t *c,
                            double tol)
{
    size_t n = c->n, d = c->d;
    double *xr = malloc(n * d * sizeof(double)), *ldi = calloc(n, sizeof(double));
    inv(L, p, c->y, n, xr, ldi);
    for (size_t q = 0; q < n * d; q++)
        assert_true(fabs(xr[q] - c->x[q]) < tol);
    for (size_t i = 0; i < n; i++)
        assert_true(fabs(ldi[i] + c->ld[i]) < 1e-12);
    free(xr);
    free(ldi);
}

/* ---- LU ---- */
static void s_lu_fwd(void *L, double *p, s_case_t *c)
{
    ns_lu_prepare(L, p);
    ns_lu_forward(L, p, c->x, c->n, c->y, c->ld);
}
static void s_lu_bwd(void *L, double *p, s_case_t *c, double *grad)
{
    ns_lu_backward(L, p, c->x, c->C, c->g, c->n, c->dx, grad);
}
static void s_lu_inv(void *L, double *p, const double *y, size_t n, double *x, double *ld)
{
    ns_lu_inverse(L, p, y, n, x, ld);
}

static void test_lu_gradient(void **state)
{
    (void)state;
    ns_rng_t *rng = ns_rng_new(11, 0);
    size_t sizes[] = {2, 3, 7};
    for (size_t t = 0; t < 3; t++) {
        size_t d = sizes[t];
        ns_lu_t lu;
        assert_int_equal(ns_lu_init(&lu, d), 0);
        size_t np = ns_lu_n_params(d);
        double *p = malloc(np * sizeof(double));
        for (size_t k = 0; k < np; k++)
            p[k] = 0.5 * ns_rng_gaussian(rng);
        s_case_t c;
        s_case_new(&c, 9, d, rng);
        s_layer_t l = {s_lu_fwd, s_lu_bwd, &lu, p, np};
        double e = s_check(&l, &c);
        print_message("LU d=%zu max rel error %.2e\n", d, e);
        assert_true(e < FD_TOL);
        s_check_inverse(s_lu_inv, &lu, p, &c, 1e-10);
        s_case_free(&c);
        free(p);
        ns_lu_free(&lu);
    }
    ns_rng_destroy(&rng);
}

static void test_lu_identity_init(void **state)
{
    (void)state;
    ns_lu_t lu;
    size_t d = 5;
    assert_int_equal(ns_lu_init(&lu, d), 0);
    double p[30];
    ns_lu_identity(d, p);
    ns_lu_prepare(&lu, p);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++)
            assert_true(fabs(lu.W[i * d + j] - (i == j)) < 1e-14);
    assert_true(fabs(lu.logdet) < 1e-13);
    ns_lu_free(&lu);
}

/* ---- coupling ---- */
static void s_cp_fwd(void *L, double *p, s_case_t *c)
{
    ns_coupling_forward(L, p, c->x, c->n, c->y, c->ld);
}
static void s_cp_bwd(void *L, double *p, s_case_t *c, double *grad)
{
    ns_coupling_backward(L, p, c->x, c->C, c->g, c->n, c->dx, grad);
}
static void s_cp_inv(void *L, double *p, const double *y, size_t n, double *x, double *ld)
{
    ns_coupling_inverse(L, p, y, n, x, ld);
}

static void test_coupling_gradient(void **state)
{
    (void)state;
    ns_rng_t *rng = ns_rng_new(12, 0);
    struct { size_t d, H, nl; int net; } cases[] = {
        {2, 4, 2, NS_NET_RESNET}, {5, 6, 1, NS_NET_RESNET}, {4, 5, 3, NS_NET_RESNET},
        {2, 4, 1, NS_NET_MLP}, {5, 6, 2, NS_NET_MLP}, {6, 3, 3, NS_NET_MLP}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        size_t d = cases[t].d, n = 7;
        int8_t mask[8];
        for (size_t j = 0; j < d; j++)
            mask[j] = (j % 2) ? 1 : -1;
        if (t % 2)
            for (size_t j = 0; j < d; j++)
                mask[j] = (int8_t)-mask[j];
        ns_coupling_t cp;
        assert_int_equal(ns_coupling_init(&cp, d, mask, cases[t].H, cases[t].nl, cases[t].net), 0);
        assert_int_equal(ns_coupling_reserve(&cp, n), 0);
        size_t np = ns_coupling_n_params(&cp);
        double *p = malloc(np * sizeof(double));
        ns_coupling_init_params(&cp, p, rng, 1); /* full-size weights: non-trivial */
        s_case_t c;
        s_case_new(&c, n, d, rng);
        s_layer_t l = {s_cp_fwd, s_cp_bwd, &cp, p, np};
        double e = s_check(&l, &c);
        print_message("coupling d=%zu H=%zu nl=%zu net=%d max rel error %.2e\n", d,
                      cases[t].H, cases[t].nl, cases[t].net, e);
        assert_true(e < FD_TOL);
        /* pass-through features are unchanged; inverse recovers x */
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                if (mask[j] <= 0)
                    assert_true(c.y[i * d + j] == c.x[i * d + j]);
        s_check_inverse(s_cp_inv, &cp, p, &c, 1e-12);
        s_case_free(&c);
        free(p);
        ns_coupling_free(&cp);
    }
    ns_rng_destroy(&rng);
}

/* The default init has near-zero second residual layers: the initial
 * coupling is close to a fixed affine map and parameter count is as stated. */
static void test_coupling_param_count(void **state)
{
    (void)state;
    int8_t mask[4] = {-1, 1, -1, 1};
    ns_coupling_t cp;
    assert_int_equal(ns_coupling_init(&cp, 4, mask, 8, 2, NS_NET_RESNET), 0);
    /* W0 8x2+8, 2 blocks of 2x(8x8+8), Wf 4x8+4 */
    assert_int_equal(ns_coupling_n_params(&cp), 24 + 2 * 2 * 72 + 36);
    ns_coupling_free(&cp);
    assert_int_equal(ns_coupling_init(&cp, 4, mask, 8, 2, NS_NET_MLP), 0);
    assert_int_equal(ns_coupling_n_params(&cp), 24 + 72 + 36);
    ns_coupling_free(&cp);
}

/* ---- BatchNorm (training mode) ---- */
static void s_bn_fwd(void *L, double *p, s_case_t *c)
{
    ns_bnorm_forward_train(L, p, c->x, c->n, c->y, c->ld, 0);
}
static void s_bn_bwd(void *L, double *p, s_case_t *c, double *grad)
{
    ns_bnorm_backward(L, p, c->x, c->C, c->g, c->n, c->dx, grad);
}

static void test_bnorm_gradient(void **state)
{
    (void)state;
    ns_rng_t *rng = ns_rng_new(13, 0);
    size_t ns[] = {2, 5, 16};
    for (size_t t = 0; t < 3; t++) {
        size_t d = 3, n = ns[t];
        ns_bnorm_t bn;
        assert_int_equal(ns_bnorm_init(&bn, d), 0);
        assert_int_equal(ns_bnorm_reserve(&bn, n), 0);
        double p[6];
        for (size_t k = 0; k < 6; k++)
            p[k] = 0.7 * ns_rng_gaussian(rng);
        s_case_t c;
        s_case_new(&c, n, d, rng);
        s_layer_t l = {s_bn_fwd, s_bn_bwd, &bn, p, 6};
        double e = s_check(&l, &c);
        print_message("batchnorm n=%zu max rel error %.2e\n", n, e);
        assert_true(e < FD_TOL);
        ns_bnorm_free(&bn);
        s_case_free(&c);
    }
    ns_rng_destroy(&rng);
}

/* Training mode: batch statistics with the unbiased variance; running
 * statistics move by momentum 0.1 from (0, 0); eval uses them and the
 * inverse undoes eval. Known answer on a 4-row batch. */
static void test_bnorm_semantics(void **state)
{
    (void)state;
    ns_bnorm_t bn;
    assert_int_equal(ns_bnorm_init(&bn, 1), 0);
    assert_int_equal(ns_bnorm_reserve(&bn, 4), 0);
    double p[2];
    ns_bnorm_init_params(1, p);
    double x[4] = {1, 2, 3, 6}, y[4], ld[4] = {0};
    ns_bnorm_forward_train(&bn, p, x, 4, y, ld, 1);
    /* mean 3, unbiased var (4+1+0+9)/3 = 14/3 */
    double sd = sqrt(14.0 / 3.0 + 1e-5);
    assert_true(fabs(y[0] - (-2.0 / sd)) < 1e-12);
    assert_true(fabs(ld[0] - (-log(sd))) < 1e-12);
    assert_true(fabs(bn.rmean[0] - 0.3) < 1e-15);
    assert_true(fabs(bn.rvar[0] - 0.1 * 14.0 / 3.0) < 1e-15);
    double ye[4], lde[4] = {0}, xr[4], ldr[4] = {0};
    ns_bnorm_forward_eval(&bn, p, x, 4, ye, lde);
    double sde = sqrt(0.1 * 14.0 / 3.0 + 1e-5);
    assert_true(fabs(ye[3] - (6.0 - 0.3) / sde) < 1e-12);
    ns_bnorm_inverse(&bn, p, ye, 4, xr, ldr);
    for (int i = 0; i < 4; i++) {
        assert_true(fabs(xr[i] - x[i]) < 1e-12);
        assert_true(fabs(ldr[i] + lde[i]) < 1e-12);
    }
    ns_bnorm_free(&bn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lu_gradient),
        cmocka_unit_test(test_lu_identity_init),
        cmocka_unit_test(test_coupling_gradient),
        cmocka_unit_test(test_coupling_param_count),
        cmocka_unit_test(test_bnorm_gradient),
        cmocka_unit_test(test_bnorm_semantics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
