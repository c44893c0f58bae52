/* test_flow_model.c - the composed RealNVP flow: whole-model gradient
 * against central finite differences, inverse(forward(x)) = x, log|det J|
 * against a numerically computed Jacobian determinant for d up to 32,
 * weights save/load and the resets of docs/algorithm.md §2.4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <gsl/gsl_linalg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flow.h"
#include "flow_io.h"
#include "flow_train.h"
#include "flow_layers.h"
#include "nessai/error.h"

/* Move every parameter and running statistic away from its initial value
 * so that no layer is the identity. */
static void s_randomise(ns_flow_t *f, ns_rng_t *rng, double scale)
{
    double *p = ns_flow_params(f);
    for (size_t k = 0; k < ns_flow_n_params(f); k++)
        p[k] += scale * ns_rng_gaussian(rng);
    ns_flow_params_changed(f);
    size_t nb = ns_flow_n_buffers(f), d = ns_flow_dim(f);
    double *b = malloc((nb ? nb : 1) * sizeof(double));
    for (size_t q = 0; q < nb; q++)
        b[q] = ((q / d) % 2) ? 0.5 + ns_rng_uniform(rng) : 0.3 * ns_rng_gaussian(rng);
    ns_flow_set_buffers(f, b);
    free(b);
}

static double *s_gauss(ns_rng_t *rng, size_t n, double s)
{
    double *x = malloc(n * sizeof(double));
    for (size_t q = 0; q < n; q++)
        x[q] = s * ns_rng_gaussian(rng);
    return x;
}

static void test_model_gradient(void **state)
{
    (void)state;
    ns_rng_t *rng = ns_rng_new(21, 0);
    ns_flow_config_t cfgs[] = {
        {3, 2, 2, 5, NS_NET_RESNET, NS_FLOW_LINEAR_LU, 1},
        {4, 3, 1, 0, NS_NET_MLP, NS_FLOW_LINEAR_PERMUTATION, 1},
        {2, 2, 2, 3, NS_NET_RESNET, NS_FLOW_LINEAR_NONE, 0},
        {5, 2, 2, 0, NS_NET_RESNET, NS_FLOW_LINEAR_LU, 0},
    };
    for (size_t t = 0; t < sizeof cfgs / sizeof cfgs[0]; t++) {
        ns_flow_t *f = ns_flow_new(&cfgs[t], rng);
        assert_non_null(f);
        s_randomise(f, rng, 0.3);
        size_t d = cfgs[t].dim, n = 6, P = ns_flow_n_params(f);
        double *x = s_gauss(rng, n * d, 1.3);
        ns_flow_zero_grad(f);
        ns_flow_loss_grad(f, x, n, 0);
        double *g = malloc(P * sizeof(double));
        memcpy(g, ns_flow_grad(f), P * sizeof(double));
        double *p = ns_flow_params(f), worst = 0.0, h = 1e-5;
        for (size_t k = 0; k < P; k++) {
            double p0 = p[k];
            p[k] = p0 + h;
            ns_flow_params_changed(f);
            double fp = ns_flow_loss_train(f, x, n);
            p[k] = p0 - h;
            ns_flow_params_changed(f);
            double fm = ns_flow_loss_train(f, x, n);
            p[k] = p0;
            ns_flow_params_changed(f);
            double num = (fp - fm) / (2 * h);
            double e = fabs(g[k] - num) / fmax(1.0, fabs(num));
            if (e > worst)
                worst = e;
        }
        print_message("flow config %zu: %zu parameters, max rel gradient error %.2e\n", t,
                      P, worst);
        assert_true(worst < 1e-6);
        free(g);
        free(x);
        ns_flow_destroy(&f);
    }
    ns_rng_destroy(&rng);
}

/* The float32 training pass (ns_flow_set_train_f32) computes the same loss,
 * gradient and running-statistics update as the float64 one to float
 * precision, for every layer kind, and is really computed in float. */
static void test_train_f32_matches_f64(void **state)
{
    (void)state;
    ns_rng_t *rng = ns_rng_new(22, 0);
    ns_flow_config_t cfgs[] = {
        {2, 4, 2, 0, NS_NET_RESNET, NS_FLOW_LINEAR_LU, 1},
        {8, 4, 2, 0, NS_NET_RESNET, NS_FLOW_LINEAR_LU, 1},
        {5, 3, 2, 0, NS_NET_MLP, NS_FLOW_LINEAR_PERMUTATION, 1},
        {4, 2, 1, 6, NS_NET_RESNET, NS_FLOW_LINEAR_NONE, 0},
        {32, 4, 2, 0, NS_NET_RESNET, NS_FLOW_LINEAR_LU, 1},
    };
    for (size_t t = 0; t < sizeof cfgs / sizeof cfgs[0]; t++) {
        ns_flow_t *f = ns_flow_new(&cfgs[t], rng);
        assert_non_null(f);
        s_randomise(f, rng, 0.1);
        size_t d = cfgs[t].dim, n = 300, P = ns_flow_n_params(f);
        size_t nb = ns_flow_n_buffers(f);
        assert_int_equal(ns_flow_reserve(f, n), NS_OK);
        double *x = s_gauss(rng, n * d, 1.0);
        double *g64 = malloc(P * sizeof(double)), *b0 = malloc((nb + 1) * sizeof(double));
        double *b64 = malloc((nb + 1) * sizeof(double)), *b32 = malloc((nb + 1) * sizeof(double));
        ns_flow_get_buffers(f, b0);
        ns_flow_zero_grad(f);
        double l64 = ns_flow_loss_grad(f, x, n, 1);
        memcpy(g64, ns_flow_grad(f), P * sizeof(double));
        ns_flow_get_buffers(f, b64);
        ns_flow_set_buffers(f, b0);
        assert_int_equal(ns_flow_set_train_f32(f, 1), NS_OK);
        assert_int_equal(ns_flow_train_f32(f), 1);
        ns_flow_zero_grad(f);
        double l32 = ns_flow_loss_grad(f, x, n, 1);
        const double *g32 = ns_flow_grad(f);
        ns_flow_get_buffers(f, b32);
        double dn = 0.0, gn = 0.0, eb = 0.0;
        for (size_t k = 0; k < P; k++) {
            dn += (g32[k] - g64[k]) * (g32[k] - g64[k]);
            gn += g64[k] * g64[k];
        }
        for (size_t q = 0; q < nb; q++)
            eb = fmax(eb, fabs(b32[q] - b64[q]) / fmax(1.0, fabs(b64[q])));
        double el = fabs(l32 - l64) / fmax(1.0, fabs(l64)), eg = sqrt(dn / gn);
        print_message("config %zu (d=%zu, %zu parameters): float32 training pass: loss rel "
                      "error %.1e, gradient rel error %.1e, running stats %.1e\n",
                      t, d, P, el, eg, eb);
        assert_true(el < 1e-5);
        assert_true(eg < 1e-4);
        assert_true(eb < 1e-5);
        assert_true(el > 0.0 || eg > 0.0); /* it really is float32 */
        /* switching back gives the float64 pass again, bit for bit */
        assert_int_equal(ns_flow_set_train_f32(f, 0), NS_OK);
        ns_flow_set_buffers(f, b0);
        ns_flow_zero_grad(f);
        assert_true(ns_flow_loss_grad(f, x, n, 1) == l64);
        assert_memory_equal(ns_flow_grad(f), g64, P * sizeof(double));
        free(x);
        free(g64);
        free(b0);
        free(b64);
        free(b32);
        ns_flow_destroy(&f);
    }
    ns_rng_destroy(&rng);
}

/* log|det| of the forward map at one point from a central-difference
 * Jacobian (step 1e-6) and GSL's LU. */
static double s_numeric_logdet(ns_flow_t *f, const double *x0, size_t d)
{
    double *xp = malloc(d * sizeof(double)), *zp = malloc(d * sizeof(double)),
           *zm = malloc(d * sizeof(double));
    gsl_matrix *J = gsl_matrix_alloc(d, d);
    gsl_permutation *perm = gsl_permutation_alloc(d);
    double h = 1e-6;
    for (size_t j = 0; j < d; j++) {
        memcpy(xp, x0, d * sizeof(double));
        xp[j] += h;
        ns_flow_forward(f, xp, 1, zp, NULL);
        xp[j] -= 2 * h;
        ns_flow_forward(f, xp, 1, zm, NULL);
        for (size_t i = 0; i < d; i++)
            gsl_matrix_set(J, i, j, (zp[i] - zm[i]) / (2 * h));
    }
    int sgn;
    gsl_linalg_LU_decomp(J, perm, &sgn);
    double ld = gsl_linalg_LU_lndet(J);
    gsl_matrix_free(J);
    gsl_permutation_free(perm);
    free(xp);
    free(zp);
    free(zm);
    return ld;
}

static void test_inverse_and_logdet(void **state)
{
    (void)state;
    ns_rng_t *rng = ns_rng_new(22, 0);
    size_t dims[] = {2, 3, 8, 16, 32};
    int nets[] = {NS_NET_RESNET, NS_NET_MLP, NS_NET_RESNET, NS_NET_RESNET, NS_NET_RESNET};
    for (size_t t = 0; t < 5; t++) {
        size_t d = dims[t], n = 300; /* > initial capacity 256: exercises chunking */
        ns_flow_config_t cfg = ns_flow_config_default(d);
        cfg.net = nets[t];
        ns_flow_t *f = ns_flow_new(&cfg, rng);
        assert_non_null(f);
        s_randomise(f, rng, 0.1);
        double *x = s_gauss(rng, n * d, 1.0);
        double *z = malloc(n * d * sizeof(double)), *xr = malloc(n * d * sizeof(double));
        double *ldf = malloc(n * sizeof(double)), *ldi = malloc(n * sizeof(double));
        ns_flow_forward(f, x, n, z, ldf);
        ns_flow_inverse(f, z, n, xr, ldi);
        double ex = 0.0, el = 0.0, en = 0.0;
        for (size_t q = 0; q < n * d; q++)
            ex = fmax(ex, fabs(xr[q] - x[q]));
        for (size_t i = 0; i < n; i++)
            el = fmax(el, fabs(ldf[i] + ldi[i]));
        for (size_t i = 0; i < 5; i++)
            en = fmax(en, fabs(s_numeric_logdet(f, x + i * d, d) - ldf[i]));
        /* log_prob is consistent with forward */
        double lq;
        ns_flow_log_prob(f, x, 1, &lq);
        assert_true(fabs(lq - (ns_flow_log_normal(z, d) + ldf[0])) < 1e-12);
        print_message("d=%zu: max |x - inv(fwd(x))| %.1e, max |ld_f + ld_i| %.1e, "
                      "max |ld - numeric| %.1e\n", d, ex, el, en);
        assert_true(ex < 1e-9);
        assert_true(el < 1e-9);
        assert_true(en < 1e-5);
        free(x);
        free(z);
        free(xr);
        free(ldf);
        free(ldi);
        ns_flow_destroy(&f);
    }
    ns_rng_destroy(&rng);
}

/* Initial flow: LU identity, BatchNorm weight 1 and running var 0, masks
 * alternate starting with even indices passed through. */
static void test_initial_state(void **state)
{
    (void)state;
    ns_rng_t *rng = ns_rng_new(23, 0);
    ns_flow_config_t cfg = ns_flow_config_default(5);
    ns_flow_t *f = ns_flow_new(&cfg, rng);
    assert_int_equal(ns_flow_config(f)->n_neurons, 10);
    const int8_t *m0 = ns_flow_mask(f, 0), *m1 = ns_flow_mask(f, 1);
    for (size_t j = 0; j < 5; j++) {
        assert_int_equal(m0[j], j % 2 == 0 ? -1 : 1);
        assert_int_equal(m1[j], -m0[j]);
    }
    double buf[40];
    assert_int_equal(ns_flow_n_buffers(f), 40);
    ns_flow_get_buffers(f, buf);
    for (size_t q = 0; q < 40; q++)
        assert_true(buf[q] == 0.0);
    /* each permutation is a permutation */
    for (size_t b = 0; b < 4; b++) {
        int seen[5] = {0};
        for (size_t j = 0; j < 5; j++)
            seen[ns_flow_permutation(f, b)[j]]++;
        for (size_t j = 0; j < 5; j++)
            assert_int_equal(seen[j], 1);
    }
    ns_flow_destroy(&f);
    ns_rng_destroy(&rng);
}

static void test_save_load(void **state)
{
    (void)state;
    ns_rng_t *rng = ns_rng_new(24, 0);
    ns_flow_config_t cfg = ns_flow_config_default(4);
    ns_flow_t *a = ns_flow_new(&cfg, rng), *b = ns_flow_new(&cfg, rng);
    s_randomise(a, rng, 0.2);
    ns_buf_t buf;
    ns_buf_init(&buf);
    ns_flow_save(a, &buf);
    assert_int_equal(ns_buf_error(&buf), 0);
    ns_flow_config_t peek;
    assert_int_equal(ns_flow_peek_config(&buf, &peek), 0);
    assert_int_equal(peek.n_neurons, 8);
    assert_int_equal(buf.pos, 0);
    assert_int_equal(ns_flow_load(b, &buf), 0);
    assert_int_equal(buf.pos, buf.len);
    double x[40], za[40], zb[40], la[10], lb[10];
    for (int q = 0; q < 40; q++)
        x[q] = ns_rng_gaussian(rng);
    ns_flow_forward(a, x, 10, za, la);
    ns_flow_forward(b, x, 10, zb, lb);
    assert_memory_equal(za, zb, sizeof za);
    assert_memory_equal(la, lb, sizeof la);
    /* every truncation is refused and leaves the flow unchanged */
    for (size_t cut = 0; cut < buf.len; cut += 7) {
        ns_buf_t v;
        ns_buf_view(&v, buf.data, cut);
        assert_int_not_equal(ns_flow_load(b, &v), 0);
    }
    ns_flow_forward(b, x, 10, zb, lb);
    assert_memory_equal(za, zb, sizeof za);
    /* ns_flow_copy: the same passes bit for bit */
    ns_flow_t *cp = NULL;
    assert_int_equal(ns_flow_copy(a, &cp), NS_OK);
    ns_flow_forward(cp, x, 10, zb, lb);
    assert_memory_equal(za, zb, sizeof za);
    assert_memory_equal(la, lb, sizeof la);
    ns_flow_destroy(&cp);
    /* a different architecture is refused */
    ns_flow_config_t c2 = cfg;
    c2.n_blocks = 3;
    ns_flow_t *c = ns_flow_new(&c2, rng);
    buf.pos = 0;
    assert_int_equal(ns_flow_load(c, &buf), NS_ERR_INVAL);
    ns_buf_free(&buf);
    ns_flow_destroy(&a);
    ns_flow_destroy(&b);
    ns_flow_destroy(&c);
    ns_rng_destroy(&rng);
}

static void test_resets(void **state)
{
    (void)state;
    ns_rng_t *rng = ns_rng_new(25, 0);
    ns_flow_config_t cfg = ns_flow_config_default(3);
    ns_flow_t *f = ns_flow_new(&cfg, rng);
    s_randomise(f, rng, 0.2);
    size_t P = ns_flow_n_params(f);
    double *before = malloc(P * sizeof(double));
    memcpy(before, ns_flow_params(f), P * sizeof(double));
    size_t perm0[3];
    memcpy(perm0, ns_flow_permutation(f, 0), sizeof perm0);
    /* weights: LU (first 12 params of block 0) unchanged, running var 1 */
    ns_flow_reset_weights(f, rng);
    assert_memory_equal(before, ns_flow_params(f), 12 * sizeof(double));
    assert_memory_not_equal(before + 12, ns_flow_params(f) + 12, 8 * sizeof(double));
    assert_memory_equal(perm0, ns_flow_permutation(f, 0), sizeof perm0);
    double bufs[24];
    ns_flow_get_buffers(f, bufs);
    assert_true(bufs[0] == 0.0 && bufs[3] == 1.0);
    /* permutations: LU back to identity (forward of the first LU is a
     * pure permutation when the coupling/BN are removed: check the params) */
    ns_flow_reset_permutations(f, rng);
    double id[12];
    ns_lu_identity(3, id);
    assert_memory_equal(id, ns_flow_params(f), sizeof id);
    ns_flow_reset_full(f, rng);
    ns_flow_get_buffers(f, bufs);
    assert_true(bufs[3] == 0.0);
    free(before);
    ns_flow_destroy(&f);
    ns_rng_destroy(&rng);
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The float32 inverse agrees with the float64 one to float precision and
 * follows parameter and running-statistic changes. */
static void test_inverse_f32(void **state)
{
    (void)state;
    ns_rng_t *rng = ns_rng_new(26, 0);
    size_t dims[] = {2, 8, 32};
    for (size_t t = 0; t < 3; t++) {
        size_t d = dims[t], n = 700;
        ns_flow_config_t cfg = ns_flow_config_default(d);
        cfg.net = t == 1 ? NS_NET_MLP : NS_NET_RESNET;
        ns_flow_t *f = ns_flow_new(&cfg, rng);
        double *z = s_gauss(rng, n * d, 1.0);
        double *x64 = malloc(n * d * sizeof(double)), *x32 = malloc(n * d * sizeof(double));
        double *l64 = malloc(n * sizeof(double)), *l32 = malloc(n * sizeof(double));
        for (int rep = 0; rep < 2; rep++) {
            s_randomise(f, rng, 0.1); /* marks the float32 mirror stale */
            ns_flow_inverse(f, z, n, x64, l64);
            assert_int_equal(ns_flow_inverse_f32(f, z, n, x32, l32), NS_OK);
            /* Rounding is amplified where the inverse map expands, so the
             * float32 error is judged against the float64 map's own response
             * to a relative input perturbation of float32 size (1e-7):
             * 99th percentiles within a factor 10. Log-dets likewise
             * against their own response to that perturbation. */
            double *zp = malloc(n * d * sizeof(double)), *xp = malloc(n * d * sizeof(double));
            for (size_t q = 0; q < n * d; q++)
                zp[q] = z[q] * (1.0 + 1e-7 * (ns_rng_uniform(rng) < 0.5 ? -1.0 : 1.0));
            double *lp = malloc(n * sizeof(double));
            ns_flow_inverse(f, zp, n, xp, lp);
            double *e = malloc(n * sizeof(double)), *c = malloc(n * sizeof(double));
            double el = 0.0, cl = 0.0;
            for (size_t i = 0; i < n; i++) {
                e[i] = c[i] = 0.0;
                for (size_t j = 0; j < d; j++) {
                    double den = fmax(1.0, fabs(x64[i * d + j]));
                    e[i] = fmax(e[i], fabs(x32[i * d + j] - x64[i * d + j]) / den);
                    c[i] = fmax(c[i], fabs(xp[i * d + j] - x64[i * d + j]) / den);
                }
                el = fmax(el, fabs(l32[i] - l64[i]) / fmax(1.0, fabs(l64[i])));
                cl = fmax(cl, fabs(lp[i] - l64[i]) / fmax(1.0, fabs(l64[i])));
            }
            qsort(e, n, sizeof(double), s_cmp_double);
            qsort(c, n, sizeof(double), s_cmp_double);
            double p99 = e[(size_t)(0.99 * (double)n)], c99 = c[(size_t)(0.99 * (double)n)];
            double ex = e[n - 1];
            print_message("d=%zu: float32 inverse rel error x p99 %.1e (map sensitivity %.1e), "
                          "logdet max %.1e (sensitivity %.1e)\n", d, p99, c99, el, cl);
            assert_true(p99 < 10.0 * c99 + 1e-6);
            assert_true(el < 10.0 * cl + 1e-5);
            free(e);
            free(c);
            free(zp);
            free(xp);
            free(lp);
            assert_true(ex > 0.0); /* it really is float32 */
        }
        free(z);
        free(x64);
        free(x32);
        free(l64);
        free(l32);
        ns_flow_destroy(&f);
    }
    ns_rng_destroy(&rng);
}

/* Weights file image: round trip with the optimiser; every single-bit flip
 * and every truncation is refused and leaves flow and optimiser unchanged. */
static void test_weights_file(void **state)
{
    (void)state;
    ns_rng_t *rng = ns_rng_new(27, 0);
    ns_flow_config_t cfg = ns_flow_config_default(3);
    ns_flow_t *a = ns_flow_new(&cfg, rng), *b = ns_flow_new(&cfg, rng);
    s_randomise(a, rng, 0.2);
    size_t P = ns_flow_n_params(a);
    ns_adamw_t *oa = ns_adamw_new(P, 1e-3, 0.01), *ob = ns_adamw_new(P, 1e-3, 0.01);
    double *g = s_gauss(rng, P, 1.0);
    ns_adamw_step(oa, ns_flow_params(a), g);
    ns_flow_params_changed(a);
    ns_buf_t img;
    ns_buf_init(&img);
    ns_flow_weights_encode(a, oa, &img);
    assert_int_equal(ns_buf_error(&img), NS_OK);
    /* b keeps its own state through every refused image */
    ns_buf_t bref;
    ns_buf_init(&bref);
    ns_flow_save(b, &bref);
    size_t flips = 0;
    for (size_t byte = 0; byte < img.len; byte += 1 + img.len / 300) {
        for (int bit = 0; bit < 8; bit += 3) {
            img.data[byte] ^= (uint8_t)(1u << bit);
            assert_int_equal(ns_flow_weights_decode(b, ob, img.data, img.len), NS_ERR_CORRUPT);
            img.data[byte] ^= (uint8_t)(1u << bit);
            flips++;
        }
    }
    for (size_t cut = 0; cut < img.len; cut += 1 + img.len / 100)
        assert_int_not_equal(ns_flow_weights_decode(b, ob, img.data, cut), NS_OK);
    ns_buf_t bnow;
    ns_buf_init(&bnow);
    ns_flow_save(b, &bnow);
    assert_int_equal(bnow.len, bref.len);
    assert_memory_equal(bnow.data, bref.data, bref.len);
    assert_int_equal(ob->step, 0);
    /* the intact image loads both */
    assert_int_equal(ns_flow_weights_decode(b, ob, img.data, img.len), NS_OK);
    assert_memory_equal(ns_flow_params(a), ns_flow_params(b), P * sizeof(double));
    assert_int_equal(ob->step, 1);
    assert_memory_equal(oa->m, ob->m, P * sizeof(double));
    /* file write/read with .old rotation */
    char path[] = "/tmp/ns_flow_weights_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ns_flow_weights_write(path, a, oa), NS_OK);
    assert_int_equal(ns_flow_weights_write(path, a, NULL), NS_OK);
    char old[64];
    snprintf(old, sizeof old, "%s.old", path);
    assert_int_equal(ns_flow_weights_read(path, b, ob), NS_OK);
    assert_int_equal(ns_flow_weights_read(old, b, ob), NS_OK);
    unlink(path);
    unlink(old);
    print_message("weights image %zu bytes, %zu bit flips refused\n", img.len, flips);
    free(g);
    ns_buf_free(&img);
    ns_buf_free(&bref);
    ns_buf_free(&bnow);
    ns_adamw_destroy(&oa);
    ns_adamw_destroy(&ob);
    ns_flow_destroy(&a);
    ns_flow_destroy(&b);
    ns_rng_destroy(&rng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_gradient),
        cmocka_unit_test(test_train_f32_matches_f64),
        cmocka_unit_test(test_inverse_and_logdet),
        cmocka_unit_test(test_initial_state),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_resets),
        cmocka_unit_test(test_inverse_f32),
        cmocka_unit_test(test_weights_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
