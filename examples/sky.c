/*
 * sky - a sky-location toy: ra on [0, 2 pi] (periodic), dec on
 * [-pi/2, pi/2], isotropic prior cos(dec) / (4 pi), and a von Mises-Fisher
 * likelihood L = exp(kappa (mu . n - 1)) about the direction (ra0, dec0).
 * ln Z = ln((1 - exp(-2 kappa)) / (2 kappa)) exactly. The model declares
 * ra periodic and prefers the angle-pair map for (ra, dec); periodic=0
 * declares nothing. The default centre ra0 = 0.2 puts the posterior
 * across the ra = 0 = 2 pi seam.
 * The model also gives the prior as a map of the unit square (ra = 2 pi u0,
 * dec = asin(2 u1 - 1)) for the importance nested sampler.
 * --model-args: kappa (50), ra0 (0.2), dec0 (0.3), periodic (1), delay_ms.
 */
#include "example_util.h"

typedef struct {
    const char *names[2];
    double lower[2], upper[2];
    int periodic[2];
    double period[2];
    const char *prefer[2];
    double kappa, mu[3], delay_ms;
} ctx_t;

static void s_fini(void *ctx) { free(ctx); }

static int s_log_likelihood(void *ctx, const double *x, size_t n, double *logl)
{
    ctx_t *c = ctx;
    for (size_t i = 0; i < n; i++) {
        double ra = x[2 * i], dec = x[2 * i + 1];
        double dot = c->mu[0] * cos(dec) * cos(ra) + c->mu[1] * cos(dec) * sin(ra) +
                     c->mu[2] * sin(dec);
        logl[i] = c->kappa * (dot - 1.0);
    }
    ex_delay(c->delay_ms, n);
    return 0;
}

static int s_log_prior(void *ctx, const double *x, size_t n, double *logp)
{
    ctx_t *c = ctx;
    for (size_t i = 0; i < n; i++) {
        double ra = x[2 * i], dec = x[2 * i + 1];
        int in = ra >= c->lower[0] && ra <= c->upper[0] && dec >= c->lower[1] &&
                 dec <= c->upper[1];
        logp[i] = in ? log(cos(dec)) - log(4 * M_PI) : -INFINITY;
    }
    return 0;
}

static int s_new_point(void *ctx, const nessai_rng_api_t *rng, size_t n, double *x)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        x[2 * i] = 2 * M_PI * rng->uniform(rng->state);
        x[2 * i + 1] = asin(2 * rng->uniform(rng->state) - 1);
    }
    return 0;
}

static int s_new_point_log_prob(void *ctx, const double *x, size_t n, double *logq)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        logq[i] = log(cos(x[2 * i + 1]));
    return 0;
}

/* u -> x: the isotropic prior's inverse CDFs; x -> u inverts them. */
static int s_from_unit_hypercube(void *ctx, const double *u, size_t n, double *x)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        x[2 * i] = 2 * M_PI * u[2 * i];
        x[2 * i + 1] = asin(2 * u[2 * i + 1] - 1);
    }
    return 0;
}

static int s_to_unit_hypercube(void *ctx, const double *x, size_t n, double *u)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        u[2 * i] = x[2 * i] / (2 * M_PI);
        u[2 * i + 1] = 0.5 * (sin(x[2 * i + 1]) + 1);
    }
    return 0;
}

static int s_init(const char *args, void **out, nessai_model_info_t *info, char *err, size_t errlen)
{
    ex_args_t a;
    double kappa, ra0, dec0, delay;
    int periodic;
    if (ex_args_parse(args, &a, err, errlen) ||
        ex_args_double(&a, "kappa", 50, 1e-3, 1e6, &kappa, err, errlen) ||
        ex_args_double(&a, "ra0", 0.2, 0, 2 * M_PI, &ra0, err, errlen) ||
        ex_args_double(&a, "dec0", 0.3, -M_PI / 2, M_PI / 2, &dec0, err, errlen) ||
        ex_args_int(&a, "periodic", 1, 0, 1, &periodic, err, errlen) ||
        ex_args_double(&a, "delay_ms", 0, 0, 1e7, &delay, err, errlen) ||
        ex_args_check_used(&a, "kappa, ra0, dec0, periodic, delay_ms", err, errlen))
        return 1;
    ctx_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    c->names[0] = "ra";
    c->names[1] = "dec";
    c->lower[0] = 0.0;
    c->upper[0] = 2 * M_PI;
    c->lower[1] = -M_PI / 2;
    c->upper[1] = M_PI / 2;
    c->periodic[0] = periodic;
    c->period[0] = 2 * M_PI;
    c->prefer[0] = c->prefer[1] = periodic ? "angle-pair" : NULL;
    c->kappa = kappa;
    c->mu[0] = cos(dec0) * cos(ra0);
    c->mu[1] = cos(dec0) * sin(ra0);
    c->mu[2] = sin(dec0);
    c->delay_ms = delay;
    info->dim = 2;
    info->names = c->names;
    info->lower = c->lower;
    info->upper = c->upper;
    info->truth_log_evidence = log(-expm1(-2 * kappa) / (2 * kappa));
    if (info->struct_size >= sizeof *info) {
        info->periodic = c->periodic;
        info->period = c->period;
        info->reparameterisations = c->prefer;
    }
    *out = c;
    return 0;
}

static const nessai_model_t s_model = {
    .abi_version = NESSAI_MODEL_ABI_VERSION,
    .struct_size = sizeof(nessai_model_t),
    .name = "sky",
    .init = s_init,
    .fini = s_fini,
    .log_likelihood = s_log_likelihood,
    .log_prior = s_log_prior,
    .new_point = s_new_point,
    .new_point_log_prob = s_new_point_log_prob,
    .to_unit_hypercube = s_to_unit_hypercube,
    .from_unit_hypercube = s_from_unit_hypercube,
};
EX_EXPORT const nessai_model_t *nessai_model_entry(void) { return &s_model; }
