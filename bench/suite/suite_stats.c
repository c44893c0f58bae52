/*
 * suite_stats.c - nessai-suite-stats: reads the result.json of k runs of one
 * benchmark problem and prints one row of the accuracy/cost table with the
 * pass criteria 1-4 of the benchmark plan (docs/benchmarks.md §3):
 *   1 bias       |mean D| <= 3 s / sqrt(k) + 0.02
 *   2 honesty    0.5 <= s / rms(sigma) <= 2, at most 1 run with |D| > 3 sigma,
 *                none with |D| > 5 sigma
 *   3 precision  s <= 2 sqrt(H / nlive)
 *   4 indices    Fisher-combined p of the final KS p-values > 1e-3 and at most
 *                10 % of the runs with p < 0.01
 *   5 posterior  with --unit-moments (problems whose every marginal is N(0, 1),
 *                S1 and S2): pooled posterior-sample mean and variance of each
 *                parameter within 4 standard errors of 0 and 1; with --modes
 *                (S3 shells, S4 eggbox, S6 mixture): the pooled posterior
 *                weight of every mode within 4 standard errors of its true
 *                weight, and no mode without samples
 * where D = ln Z_hat - ln Z_true and s is the sample standard deviation of D.
 *
 * Usage:
 *   nessai-suite-stats --header
 *   nessai-suite-stats --label S1-2 --info 3.1536 [--unit-moments | --modes KIND] [--runs]
 *                      result.json...
 * KIND: shells (two modes split by the sign of the first parameter, 0.5 each),
 * eggbox (18 peaks on [0, 10 pi]^2, nearest peak; 0.08 interior, 0.04 edge,
 * 0.02 corner), mixture (S6's four components; the weight of component k is
 * the posterior mean of its responsibility w_k N_k(x) / sum_j w_j N_j(x),
 * whose expectation is exactly w_k, so overlapping tails cause no bias).
 * --info is H in nats (criterion 3 is skipped without it); nlive and the truth
 * come from each result.json. --runs also prints one line per run. Results of
 * the importance nested sampler have no nlive and no insertion indices:
 * criteria 3 and 4 are n/a for them.
 */
#include <cjson/cJSON.h>
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_MODES 18

typedef struct {
    double log_z, sigma, truth, delta, p, ess, t_like, t_train, t_pop, t_other, wall;
    double evals, iterations, nlive;
    int dim;                      /* parameters seen in posterior_samples (at most 64) */
    double n_post;                /* posterior samples */
    double sum[64], sum2[64];     /* per parameter: sum and sum of squares */
    double msum[S_MAX_MODES], msum2[S_MAX_MODES]; /* per mode: sum of indicator or
                                                    responsibility, and of its square */
    double mhit[S_MAX_MODES];     /* samples assigned (nearest / most responsible) */
} s_run_t;

enum { MODES_NONE, MODES_SHELLS, MODES_EGGBOX, MODES_MIXTURE };
static int s_modes = MODES_NONE;

static int s_n_modes(void)
{
    return s_modes == MODES_SHELLS ? 2 : s_modes == MODES_EGGBOX ? 18 : s_modes == MODES_MIXTURE ? 4 : 0;
}

/* Eggbox peaks: both coordinates in {0, 4pi, 8pi} (cos = +1) or both in
 * {2pi, 6pi, 10pi} (cos = -1); 0 and 10pi lie on the prior's edge. */
static void s_egg_peak(int k, double *a, double *b, double *w)
{
    int set = k / 9, i = (k % 9) / 3, j = k % 3;
    double base = set ? 2.0 * M_PI : 0.0;
    *a = base + 4.0 * M_PI * i;
    *b = base + 4.0 * M_PI * j;
    double fa = (set == 0 && i == 0) || (set == 1 && i == 2) ? 0.5 : 1.0;
    double fb = (set == 0 && j == 0) || (set == 1 && j == 2) ? 0.5 : 1.0;
    *w = fa * fb / 12.5;
}

static const double s_mix_mean[4][2] = {{0, 4}, {0, -4}, {4, 0}, {-4, 0}};
static const double s_mix_w[4] = {0.4, 0.3, 0.2, 0.1};

static double s_mode_weight(int k)
{
    double a, b, w;
    switch (s_modes) {
    case MODES_SHELLS: return 0.5;
    case MODES_EGGBOX: s_egg_peak(k, &a, &b, &w); return w;
    case MODES_MIXTURE: return s_mix_w[k];
    default: return NAN;
    }
}

/* Add one posterior sample (first two coordinates) to the mode sums. */
static void s_mode_add(s_run_t *r, double x0, double x1)
{
    int n = s_n_modes(), best = 0;
    double v[18] = {0};
    if (s_modes == MODES_SHELLS) {
        best = x0 < 0 ? 0 : 1;
        v[best] = 1.0;
    } else if (s_modes == MODES_EGGBOX) {
        double dmin = INFINITY, a, b, w;
        for (int k = 0; k < n; k++) {
            s_egg_peak(k, &a, &b, &w);
            double dd = (x0 - a) * (x0 - a) + (x1 - b) * (x1 - b);
            if (dd < dmin) {
                dmin = dd;
                best = k;
            }
        }
        v[best] = 1.0;
    } else {
        double t[4], m = -INFINITY, s = 0.0;
        for (int k = 0; k < 4; k++) {
            double a = x0 - s_mix_mean[k][0], b = x1 - s_mix_mean[k][1];
            t[k] = log(s_mix_w[k]) - 0.5 * (a * a + b * b);
            if (t[k] > m) {
                m = t[k];
                best = k;
            }
        }
        for (int k = 0; k < 4; k++)
            s += exp(t[k] - m);
        for (int k = 0; k < 4; k++)
            v[k] = exp(t[k] - m) / s;
    }
    for (int k = 0; k < n; k++) {
        r->msum[k] += v[k];
        r->msum2[k] += v[k] * v[k];
    }
    r->mhit[best] += 1.0;
}

/* result.json uses Python's NaN / Infinity / -Infinity tokens (as nessai);
 * cJSON is strict, so copy the text with bare tokens outside strings turned
 * into null. Caller frees. */
static char *s_strict_json(const char *t)
{
    size_t n = strlen(t);
    char *out = malloc(n + n / 2 + 8), *o = out;
    if (!out)
        return NULL;
    int in_str = 0;
    for (const char *p = t; *p; p++) {
        if (in_str) {
            *o++ = *p;
            if (*p == '\\' && p[1])
                *o++ = *++p;
            else if (*p == '"')
                in_str = 0;
            continue;
        }
        static const char *const tok[3] = {"-Infinity", "Infinity", "NaN"};
        int hit = 0;
        for (int k = 0; k < 3 && !hit; k++) {
            size_t l = strlen(tok[k]);
            if (strncmp(p, tok[k], l) == 0) {
                memcpy(o, "null", 4);
                o += 4;
                p += l - 1;
                hit = 1;
            }
        }
        if (hit)
            continue;
        if (*p == '"')
            in_str = 1;
        *o++ = *p;
    }
    *o = '\0';
    return out;
}

static char *s_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static double s_num(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int s_load(const char *path, s_run_t *r)
{
    char *text = s_read_file(path);
    if (!text) {
        fprintf(stderr, "nessai-suite-stats: cannot read %s\n", path);
        return -1;
    }
    char *strict = s_strict_json(text);
    free(text);
    cJSON *j = strict ? cJSON_Parse(strict) : NULL;
    free(strict);
    if (!j) {
        fprintf(stderr, "nessai-suite-stats: %s is not a result file\n", path);
        return -1;
    }
    r->log_z = s_num(j, "log_evidence");
    r->sigma = s_num(j, "log_evidence_error");
    r->truth = s_num(j, "truth");
    r->delta = r->log_z - r->truth;
    r->p = s_num(j, "final_p_value");
    r->ess = s_num(j, "effective_sample_size");
    r->evals = s_num(j, "total_likelihood_evaluations");
    r->iterations = s_num(j, "iterations");
    r->nlive = s_num(j, "nlive");
    r->t_like = s_num(j, "likelihood_evaluation_time");
    r->t_train = s_num(j, "training_time");
    double t_pop = s_num(j, "population_time"), t_samp = s_num(j, "sampling_time");
    /* uninformed refills include their likelihood batch: count it once */
    double t_pop_like = s_num(j, "population_likelihood_time");
    r->t_pop = fmax(0.0, t_pop - (isnan(t_pop_like) ? r->t_like : t_pop_like));
    r->t_other = fmax(0.0, t_samp - r->t_like - r->t_train - r->t_pop);
    /* posterior_samples is {name: [values]} with logP, logL, it at the end */
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(j, "posterior_samples"), *col;
    if (s_modes != MODES_NONE) {
        const cJSON *c0 = post ? post->child : NULL, *c1 = c0 ? c0->next : NULL;
        const cJSON *a = c0 ? c0->child : NULL, *b = c1 ? c1->child : NULL;
        for (; a && b; a = a->next, b = b->next)
            s_mode_add(r, a->valuedouble, b->valuedouble);
    }
    r->dim = 0;
    cJSON_ArrayForEach(col, post)
    {
        /* logW, logQ, logU: the importance sampler's extra fields */
        if (!strcmp(col->string, "logP") || !strcmp(col->string, "logL") || !strcmp(col->string, "it") ||
            !strcmp(col->string, "logW") || !strcmp(col->string, "logQ") ||
            !strcmp(col->string, "logU") || r->dim == 64)
            continue;
        const cJSON *v;
        r->n_post = cJSON_GetArraySize(col);
        cJSON_ArrayForEach(v, col)
        {
            r->sum[r->dim] += v->valuedouble;
            r->sum2[r->dim] += v->valuedouble * v->valuedouble;
        }
        r->dim++;
    }
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(j, "run");
    r->wall = s_num(run, "wall_time");
    if (isnan(r->wall)) /* the importance sampler's result: its sampling time */
        r->wall = t_samp;
    cJSON_Delete(j);
    if (isnan(r->log_z)) {
        fprintf(stderr, "nessai-suite-stats: %s has no log_evidence\n", path);
        return -1;
    }
    return 0;
}

static void s_header(void)
{
    printf("| problem | k | nlive | mean ln Ẑ | rms σ̂ | mean Δ | s = std Δ | s/rms σ̂ | runs Δ>3σ̂ / >5σ̂ "
           "| evals | iterations | ESS | KS p: Fisher / #<0.01 | time s: like / train / pop / other "
           "| 1 bias | 2 errors | 3 precision | 4 KS | 5 posterior |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
}

static const char *s_mark(int ok) { return ok ? "pass" : "**FAIL**"; }

int main(int argc, char **argv)
{
    const char *label = "?";
    double info = NAN;
    int per_run = 0, first = 1, unit_moments = 0;
    for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
        if (strcmp(argv[first], "--header") == 0) {
            s_header();
            return 0;
        } else if (strcmp(argv[first], "--label") == 0 && first + 1 < argc) {
            label = argv[++first];
        } else if (strcmp(argv[first], "--info") == 0 && first + 1 < argc) {
            info = atof(argv[++first]);
        } else if (strcmp(argv[first], "--unit-moments") == 0) {
            unit_moments = 1;
        } else if (strcmp(argv[first], "--modes") == 0 && first + 1 < argc) {
            const char *m = argv[++first];
            s_modes = !strcmp(m, "shells") ? MODES_SHELLS : !strcmp(m, "eggbox") ? MODES_EGGBOX
                    : !strcmp(m, "mixture") ? MODES_MIXTURE : -1;
            if (s_modes < 0) {
                fprintf(stderr, "nessai-suite-stats: --modes takes shells, eggbox or mixture, "
                                "not %s\n", m);
                return 2;
            }
        } else if (strcmp(argv[first], "--runs") == 0) {
            per_run = 1;
        } else {
            fprintf(stderr, "nessai-suite-stats: unknown option %s (usage: --header | --label L "
                            "[--info H] [--unit-moments | --modes KIND] [--runs] result.json...)\n", argv[first]);
            return 2;
        }
    }
    int k = argc - first;
    if (k < 2) {
        fprintf(stderr, "nessai-suite-stats: need at least two result.json files\n");
        return 2;
    }
    s_run_t *r = calloc((size_t)k, sizeof *r);
    for (int i = 0; i < k; i++)
        if (s_load(argv[first + i], &r[i]) != 0)
            return 1;

    double md = 0, ms2 = 0, mz = 0, ev = 0, it = 0, ess = 0, tl = 0, tt = 0, tp = 0, to = 0;
    double fisher = 0;
    int over3 = 0, over5 = 0, p_low = 0, have_truth = 1, have_p = 0;
    for (int i = 0; i < k; i++) {
        have_truth &= !isnan(r[i].truth);
        have_p |= !isnan(r[i].p);
        md += r[i].delta / k;
        mz += r[i].log_z / k;
        ms2 += r[i].sigma * r[i].sigma / k;
        ev += r[i].evals / k;
        it += r[i].iterations / k;
        ess += r[i].ess / k;
        tl += r[i].t_like / k;
        tt += r[i].t_train / k;
        tp += r[i].t_pop / k;
        to += r[i].t_other / k;
        over3 += fabs(r[i].delta) > 3 * r[i].sigma;
        over5 += fabs(r[i].delta) > 5 * r[i].sigma;
        p_low += r[i].p < 0.01;
        /* a p of exactly 0 would make the combined p 0: clamp to the smallest double */
        fisher += -2.0 * log(fmax(r[i].p, 1e-300));
    }
    /* without a truth (E) the spread of ln Z replaces that of Delta */
    double s = 0;
    for (int i = 0; i < k; i++) {
        double x = have_truth ? r[i].delta - md : r[i].log_z - mz;
        s += x * x / (k - 1);
    }
    s = sqrt(s);
    double rms = sqrt(ms2);
    double p_comb = gsl_cdf_chisq_Q(fisher, 2.0 * k);
    double nlive = r[0].nlive;

    int c1 = have_truth && fabs(md) <= 3 * s / sqrt(k) + 0.02;
    int c2 = have_truth && s / rms >= 0.5 && s / rms <= 2 && over3 <= 1 && over5 == 0;
    /* 3 and 4 need the standard sampler's nlive and insertion indices: the
     * importance sampler's result has neither, so they are n/a there */
    int have_info = !isnan(info) && !isnan(nlive);
    int c3 = have_info && s <= 2 * sqrt(info / nlive);
    int c4 = !have_p || (p_comb > 1e-3 && p_low <= 0.1 * k);
    /* 5: pooled moments; SE of the mean 1/sqrt(N), of the variance sqrt(2/N) */
    int c5 = 1;
    double worst5 = 0.0;
    if (unit_moments) {
        for (int q = 0; q < r[0].dim; q++) {
            double n = 0, s1 = 0, s2 = 0;
            for (int i = 0; i < k; i++) {
                n += r[i].n_post;
                s1 += r[i].sum[q];
                s2 += r[i].sum2[q];
            }
            double m = s1 / n, var = s2 / n - m * m;
            double zm = fabs(m) * sqrt(n), zv = fabs(var - 1.0) / sqrt(2.0 / n);
            worst5 = fmax(worst5, fmax(zm, zv));
        }
        c5 = r[0].dim > 0 && worst5 <= 4.0;
    }
    /* 5 (modes): pooled weight of each mode against its true weight, SE from
     * the per-sample spread of the indicator / responsibility */
    int empty_modes = 0;
    if (s_modes != MODES_NONE) {
        double n = 0;
        for (int i = 0; i < k; i++)
            n += r[i].n_post;
        for (int q = 0; q < s_n_modes(); q++) {
            double s1 = 0, s2 = 0, hits = 0;
            for (int i = 0; i < k; i++) {
                s1 += r[i].msum[q];
                s2 += r[i].msum2[q];
                hits += r[i].mhit[q];
            }
            double m = s1 / n, var = s2 / n - m * m, w = s_mode_weight(q);
            empty_modes += hits == 0;
            double se = sqrt(fmax(var, 0.0) / n);
            worst5 = fmax(worst5, se > 0 ? fabs(m - w) / se : INFINITY);
        }
        c5 = n > 0 && empty_modes == 0 && worst5 <= 4.0;
    }

    if (per_run) {
        for (int i = 0; i < k; i++)
            printf("# %s run %d: ln Z %.4f +/- %.4f  D %+.4f (%+.2f sigma)  evals %.0f  it %.0f  "
                   "ESS %.0f  KS p %.4g  wall %.2f s  (%s)\n",
                   label, i + 1, r[i].log_z, r[i].sigma, r[i].delta, r[i].delta / r[i].sigma,
                   r[i].evals, r[i].iterations, r[i].ess, r[i].p, r[i].wall, argv[first + i]);
    }
    if (isnan(nlive))
        printf("| %s | %d | - | %.4f | %.4f | ", label, k, mz, rms);
    else
        printf("| %s | %d | %.0f | %.4f | %.4f | ", label, k, nlive, mz, rms);
    if (have_truth)
        printf("%+.4f | %.4f | %.2f | %d / %d | ", md, s, s / rms, over3, over5);
    else
        printf("n/a | %.4f (of ln Ẑ) | %.2f | n/a | ", s, s / rms);
    if (have_p)
        printf("%.0f | %.0f | %.0f | %.3g / %d | ", ev, it, ess, p_comb, p_low);
    else
        printf("%.0f | %.0f | %.0f | n/a | ", ev, it, ess);
    printf("%.3f / %.3f / %.3f / %.3f | ", tl, tt, tp, to);
    printf("%s | %s | %s | %s | ", have_truth ? s_mark(c1) : "n/a", have_truth ? s_mark(c2) : "n/a",
           have_info ? s_mark(c3) : "n/a", have_p ? s_mark(c4) : "n/a");
    if (unit_moments || (s_modes != MODES_NONE && empty_modes == 0))
        printf("%s (max %.1f SE) |\n", s_mark(c5), worst5);
    else if (s_modes != MODES_NONE)
        printf("%s (%d modes without samples) |\n", s_mark(c5), empty_modes);
    else
        printf("n/a |\n");
    free(r);
    return (have_truth && !(c1 && c2)) || (have_info && !c3) || !c4 || !c5 ? 3 : 0;
}
