/*
 * linreg - benchmark P: linear-Gaussian regression y = A theta + eps,
 * eps ~ N(0, sigma^2) with sigma known, A (n x d) and y simulated from
 * data_seed, prior U[-half_width, half_width]^d (default 3, i.e. more than
 * 40 posterior standard deviations from the estimate on each side).
 * ln L = -(n/2) ln(2 pi sigma^2) - |y - A theta|^2 / (2 sigma^2), and
 * ln Z = -sum ln w_i - ((n-d)/2) ln(2 pi sigma^2) - (1/2) ln|A^T A|
 *        - RSS_min / (2 sigma^2)   (box mass outside is negligible).
 * The posterior is N(theta_hat, sigma^2 (A^T A)^-1).
 * --model-args: dim=N (default 4), n_data=N (default 50), sigma=S (0.5),
 * data_seed=S (1), half_width=W (3), delay_ms=X.
 */
#include "example_util.h"

#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>

typedef struct {
    ex_box_t box;
    int n_data;
    double *a;      /* n x d design matrix, row-major */
    double *y;      /* n data */
    double sigma, norm, delay_ms;
} ctx_t;

static void s_fini(void *ctx)
{
    ctx_t *c = ctx;
    if (!c)
        return;
    ex_box_free(&c->box);
    free(c->a);
    free(c->y);
    free(c);
}

/* ln Z from the normal equations, via a Cholesky factor of A^T A. */
static int s_truth(const ctx_t *c, double *out)
{
    int d = c->box.dim, n = c->n_data;
    gsl_matrix *ata = gsl_matrix_calloc((size_t)d, (size_t)d);
    gsl_vector *aty = gsl_vector_calloc((size_t)d), *th = gsl_vector_alloc((size_t)d);
    if (!ata || !aty || !th) {
        gsl_matrix_free(ata);
        gsl_vector_free(aty);
        gsl_vector_free(th);
        return -1;
    }
    for (int i = 0; i < d; i++) {
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int k = 0; k < n; k++)
                s += c->a[k * d + i] * c->a[k * d + j];
            gsl_matrix_set(ata, (size_t)i, (size_t)j, s);
        }
        double s = 0;
        for (int k = 0; k < n; k++)
            s += c->a[k * d + i] * c->y[k];
        gsl_vector_set(aty, (size_t)i, s);
    }
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    int rc = gsl_linalg_cholesky_decomp1(ata);
    if (!rc)
        rc = gsl_linalg_cholesky_solve(ata, aty, th);
    gsl_set_error_handler(old);
    if (!rc) {
        double logdet = 0;
        for (int i = 0; i < d; i++)
            logdet += 2.0 * log(gsl_matrix_get(ata, (size_t)i, (size_t)i));
        double rss = 0;
        for (int k = 0; k < n; k++) {
            double r = c->y[k];
            for (int j = 0; j < d; j++)
                r -= c->a[k * d + j] * gsl_vector_get(th, (size_t)j);
            rss += r * r;
        }
        double logvol = 0;
        for (int j = 0; j < d; j++)
            logvol += log(c->box.upper[j] - c->box.lower[j]);
        *out = -logvol - 0.5 * (n - d) * log(2.0 * M_PI * c->sigma * c->sigma) - 0.5 * logdet -
               rss / (2.0 * c->sigma * c->sigma);
    }
    gsl_matrix_free(ata);
    gsl_vector_free(aty);
    gsl_vector_free(th);
    return rc ? -1 : 0;
}

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    ex_args_t p;
    int dim, n_data, seed;
    double sigma, hw, delay;
    if (ex_args_parse(args, &p, err, errlen) || ex_args_int(&p, "dim", 4, 2, 32, &dim, err, errlen) ||
        ex_args_int(&p, "n_data", 50, 2, 1000000, &n_data, err, errlen) ||
        ex_args_double(&p, "sigma", 0.5, 1e-6, 1e6, &sigma, err, errlen) ||
        ex_args_int(&p, "data_seed", 1, 0, 2147483647, &seed, err, errlen) ||
        ex_args_double(&p, "half_width", 3.0, 1e-6, 1e6, &hw, err, errlen) ||
        ex_args_double(&p, "delay_ms", 0, 0, 1e7, &delay, err, errlen) ||
        ex_args_check_used(&p, "dim, n_data, sigma, data_seed, half_width, delay_ms", err, errlen))
        return 1;
    if (n_data <= dim) {
        snprintf(err, errlen, "n_data (%d) must exceed dim (%d)", n_data, dim);
        return 1;
    }
    ctx_t *c = calloc(1, sizeof *c);
    if (c) {
        c->a = malloc((size_t)n_data * (size_t)dim * sizeof *c->a);
        c->y = malloc((size_t)n_data * sizeof *c->y);
    }
    if (!c || !c->a || !c->y || ex_box_init(&c->box, dim, -hw, hw, "theta")) {
        s_fini(c);
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    c->n_data = n_data;
    c->sigma = sigma;
    c->delay_ms = delay;
    c->norm = -0.5 * n_data * log(2.0 * M_PI * sigma * sigma);
    ex_rng_t r = {(uint64_t)seed * 2654435761u + 17};
    double theta[32];
    for (int j = 0; j < dim; j++)
        theta[j] = -1.0 + 2.0 * ex_rng_uniform(&r);
    for (int k = 0; k < n_data; k++) {
        double mu = 0;
        for (int j = 0; j < dim; j++) {
            c->a[k * dim + j] = ex_rng_gaussian(&r);
            mu += c->a[k * dim + j] * theta[j];
        }
        c->y[k] = mu + sigma * ex_rng_gaussian(&r);
    }
    ex_box_info(&c->box, info);
    if (s_truth(c, &info->truth_log_evidence))
        info->truth_log_evidence = NAN;
    *out = c;
    return 0;
}

static int s_log_likelihood(void *ctx, const double *x, size_t n, double *logl)
{
    ctx_t *c = ctx;
    size_t d = (size_t)c->box.dim;
    double inv = 1.0 / (2.0 * c->sigma * c->sigma);
    for (size_t i = 0; i < n; i++) {
        const double *th = x + i * d;
        double rss = 0;
        for (int k = 0; k < c->n_data; k++) {
            double r = c->y[k];
            for (size_t j = 0; j < d; j++)
                r -= c->a[(size_t)k * d + j] * th[j];
            rss += r * r;
        }
        logl[i] = c->norm - rss * inv;
    }
    ex_delay(c->delay_ms, n);
    return 0;
}

EX_DEFINE_MODEL("linreg", s_init, s_fini, s_log_likelihood)
