/*
 * sinusoid - a damped sinusoid y(t) = exp(-t / tau) sin(2 pi f t + phase)
 * in Gaussian noise (sigma), with n_data samples at t = 0, dt, ...,
 * simulated from data_seed with the true frequency freq0 and phase phase0.
 * Parameters: frequency on U[0.5, 1.5], phase on U[0, 2 pi], declared
 * periodic (period 2 pi) unless periodic=0. With phase0 near 0 the
 * posterior wraps around the phase boundary; phase0 = pi keeps it inside.
 * ln Z by quadrature: for each frequency the log-likelihood is a quadratic
 * form in (cos phase, sin phase), so a fine 2-D grid costs O(grid^2).
 * --model-args: phase0 (0.1), freq0 (1), sigma (0.3), tau (2), dt (0.1),
 * n_data (40), data_seed (1), periodic (1), delay_ms.
 */
#include "example_util.h"

typedef struct {
    char *names[2];
    double lower[2], upper[2];
    int periodic[2];
    double period[2];
    int n;
    double *t, *y, *env; /* times, data, exp(-t / tau) */
    double sigma, norm, delay_ms;
} ctx_t;

static void s_fini(void *ctx)
{
    ctx_t *c = ctx;
    if (!c)
        return;
    free(c->t);
    free(c->y);
    free(c->env);
    free(c);
}

static int s_log_likelihood(void *ctx, const double *x, size_t n, double *logl)
{
    ctx_t *c = ctx;
    double k = -0.5 / (c->sigma * c->sigma);
    for (size_t i = 0; i < n; i++) {
        double f = x[2 * i], ph = x[2 * i + 1], s = 0.0;
        for (int j = 0; j < c->n; j++) {
            double r = c->y[j] - c->env[j] * sin(2 * M_PI * f * c->t[j] + ph);
            s += r * r;
        }
        logl[i] = c->norm + k * s;
    }
    ex_delay(c->delay_ms, n);
    return 0;
}

/* ln Z = ln (1 / V) integral of L on an m x m midpoint grid, with
 * sum r^2 = yy - 2 (a p + b q) + a^2 P + 2 a b R + b^2 Q, a = cos phase,
 * b = sin phase. */
static double s_truth(const ctx_t *c, int m)
{
    double hf = (c->upper[0] - c->lower[0]) / m, hp = 2 * M_PI / m, yy = 0.0;
    double k = -0.5 / (c->sigma * c->sigma), *ca = malloc(2 * (size_t)m * sizeof(double));
    double *row = malloc((size_t)m * sizeof(double)), *terms = malloc((size_t)m * sizeof(double));
    if (!ca || !row || !terms) {
        free(ca);
        free(row);
        free(terms);
        return NAN;
    }
    for (int j = 0; j < c->n; j++)
        yy += c->y[j] * c->y[j];
    for (int l = 0; l < m; l++) {
        ca[2 * l] = cos((l + 0.5) * hp);
        ca[2 * l + 1] = sin((l + 0.5) * hp);
    }
    for (int i = 0; i < m; i++) {
        double f = c->lower[0] + (i + 0.5) * hf, p = 0, q = 0, P = 0, Q = 0, R = 0;
        for (int j = 0; j < c->n; j++) {
            double w = 2 * M_PI * f * c->t[j];
            double s = c->env[j] * sin(w), co = c->env[j] * cos(w);
            p += c->y[j] * s;
            q += c->y[j] * co;
            P += s * s;
            Q += co * co;
            R += s * co;
        }
        double mx = -INFINITY;
        for (int l = 0; l < m; l++) {
            double a = ca[2 * l], b = ca[2 * l + 1];
            terms[l] = k * (yy - 2 * (a * p + b * q) + a * a * P + 2 * a * b * R + b * b * Q);
            mx = fmax(mx, terms[l]);
        }
        double s = 0;
        for (int l = 0; l < m; l++)
            s += exp(terms[l] - mx);
        row[i] = mx + log(s);
    }
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < m; i++)
        mx = fmax(mx, row[i]);
    for (int i = 0; i < m; i++)
        s += exp(row[i] - mx);
    free(ca);
    free(row);
    free(terms);
    return c->norm + mx + log(s) - 2.0 * log((double)m);
}

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    ex_args_t a;
    double ph0, f0, sigma, tau, dt, seed, delay;
    int n, periodic;
    if (ex_args_parse(args, &a, err, errlen) ||
        ex_args_double(&a, "phase0", 0.1, 0, 2 * M_PI, &ph0, err, errlen) ||
        ex_args_double(&a, "freq0", 1.0, 0.5, 1.5, &f0, err, errlen) ||
        ex_args_double(&a, "sigma", 0.3, 1e-3, 1e3, &sigma, err, errlen) ||
        ex_args_double(&a, "tau", 2.0, 1e-3, 1e3, &tau, err, errlen) ||
        ex_args_double(&a, "dt", 0.1, 1e-4, 10, &dt, err, errlen) ||
        ex_args_int(&a, "n_data", 40, 2, 100000, &n, err, errlen) ||
        ex_args_double(&a, "data_seed", 1, 0, 1e15, &seed, err, errlen) ||
        ex_args_int(&a, "periodic", 1, 0, 1, &periodic, err, errlen) ||
        ex_args_double(&a, "delay_ms", 0, 0, 1e7, &delay, err, errlen) ||
        ex_args_check_used(&a, "phase0, freq0, sigma, tau, dt, n_data, data_seed, periodic, "
                           "delay_ms", err, errlen))
        return 1;
    ctx_t *c = calloc(1, sizeof *c);
    if (!c || !(c->t = malloc((size_t)n * sizeof(double))) ||
        !(c->y = malloc((size_t)n * sizeof(double))) ||
        !(c->env = malloc((size_t)n * sizeof(double)))) {
        s_fini(c);
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    c->names[0] = "frequency";
    c->names[1] = "phase";
    c->lower[0] = 0.5;
    c->upper[0] = 1.5;
    c->lower[1] = 0.0;
    c->upper[1] = 2 * M_PI;
    c->periodic[1] = periodic;
    c->period[1] = 2 * M_PI;
    c->n = n;
    c->sigma = sigma;
    c->delay_ms = delay;
    c->norm = -0.5 * n * log(2 * M_PI * sigma * sigma);
    ex_rng_t r = {(uint64_t)seed};
    for (int j = 0; j < n; j++) {
        c->t[j] = j * dt;
        c->env[j] = exp(-c->t[j] / tau);
        c->y[j] = c->env[j] * sin(2 * M_PI * f0 * c->t[j] + ph0) + sigma * ex_rng_gaussian(&r);
    }
    info->dim = 2;
    info->names = (const char *const *)c->names;
    info->lower = c->lower;
    info->upper = c->upper;
    info->truth_log_evidence = s_truth(c, 3000);
    if (info->struct_size >= sizeof *info) {
        info->periodic = c->periodic;
        info->period = c->period;
    }
    *out = c;
    return 0;
}

EX_DEFINE_MODEL("sinusoid", s_init, s_fini, s_log_likelihood)
