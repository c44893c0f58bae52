/*
 * sampler_result.c - posterior samples (docs/algorithm.md §1.8) and the result
 * dictionary of docs/algorithm.md §1.10 as JSON.
 *
 * The record arrays are laid out as in nessai's result.json: nested_samples
 * as rows (its JSON encoder's ndarray.tolist()), posterior_samples as
 * {field: [values]} (FlowSampler.save_results converts it with
 * live_points_to_dict first). ns_sampler_result_schema names their fields
 * and gives every integer key its type for result.hdf5, where both are
 * compound datasets.
 *
 * Non-finite numbers are written as NaN, Infinity and -Infinity, as
 * nessai's result.json (Python's json module) does: logL_birth is -inf for
 * the initial live points, rolling p-values can be NaN. Python's json and
 * pandas read these tokens; strict parsers need them mapped first.
 */
#include "sampler_internal.h"

#include "nessai/error.h"
#include "nessai/hdf5out.h"
#include "nessai/log.h"
#include "nessai/util.h"
#include "posterior.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ns_sampler_compute_posterior(ns_sampler_t *self)
{
    size_t n = self->nested.n / self->st;
    free(self->log_w);
    free(self->post_idx);
    self->log_w = malloc((n ? n : 1) * sizeof(double));
    self->post_idx = NULL;
    self->n_post = 0;
    if (!self->log_w)
        return NS_ERR_NOMEM;
    ns_integrator_log_posterior_weights(self->integ, self->log_w);
    self->ess = ns_posterior_ess(self->log_w, n);
    ns_info(NULL, "Effective sample size: %.1f", self->ess);
    if (n == 0) {
        self->have_posterior = 1;
        return NS_OK;
    }
    if (self->multinomial) {
        size_t m = (size_t)self->ess;
        self->post_idx = malloc((m ? m : 1) * sizeof(size_t));
        if (!self->post_idx)
            return NS_ERR_NOMEM;
        int rc = ns_posterior_multinomial(self->log_w, n, m, self->rng, self->post_idx);
        if (rc != NS_OK)
            return rc;
        self->n_post = m;
    } else {
        double mx = -INFINITY, expect = 0.0;
        for (size_t i = 0; i < n; i++)
            if (self->log_w[i] > mx)
                mx = self->log_w[i];
        for (size_t i = 0; i < n; i++)
            expect += exp(self->log_w[i] - mx);
        ns_info(NULL, "Expect %.0f samples from rejection sampling", expect);
        self->post_idx = malloc(n * sizeof(size_t));
        if (!self->post_idx)
            return NS_ERR_NOMEM;
        self->n_post = ns_posterior_rejection(self->log_w, n, self->rng, self->post_idx);
    }
    ns_info(NULL, "Returned %zu posterior samples", self->n_post);
    self->have_posterior = 1;
    return NS_OK;
}

/* ---- JSON ---- */

static cJSON *s_num(double v)
{
    if (isnan(v))
        return cJSON_CreateRaw("NaN");
    if (isinf(v))
        return cJSON_CreateRaw(v > 0 ? "Infinity" : "-Infinity");
    return cJSON_CreateNumber(v);
}

static void s_add_num(cJSON *obj, const char *key, double v) { cJSON_AddItemToObject(obj, key, s_num(v)); }

static cJSON *s_array(const double *v, size_t n, size_t stride)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, s_num(v[i * stride]));
    return a;
}

/* nested_samples as nessai's JSON encoder writes a structured array: one
 * row [parameters..., logP, logL, it] per sample. */
static cJSON *s_rows(const ns_sampler_t *self, const double *base, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *row = s_array(base + i * self->st, self->st, 1);
        if (!row) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, row);
    }
    return a;
}

/* posterior_samples as nessai's live_points_to_dict makes it for result.json:
 * {field: [values]}, the rows selected by rows[]. */
static cJSON *s_columns(const ns_sampler_t *self, const double *base, const size_t *rows, size_t n)
{
    cJSON *obj = cJSON_CreateObject();
    const char *const *names = ns_model_param_names(self->model);
    const char *core[3] = {"logP", "logL", "it"};
    for (size_t c = 0; obj && c < self->st; c++) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; a && i < n; i++)
            cJSON_AddItemToArray(a, s_num(base[rows[i] * self->st + c]));
        cJSON_AddItemToObject(obj, c < self->d ? names[c] : core[c - self->d], a);
    }
    return obj;
}

cJSON *ns_sampler_result_json(const ns_sampler_t *self)
{
    cJSON *r = cJSON_CreateObject();
    if (!r)
        return NULL;
    size_t n = self->nested.n / self->st;
    cJSON_AddStringToObject(r, "version", NESSAI_VERSION);
    cJSON_AddNullToObject(r, "glasflow_version");
    cJSON_AddNumberToObject(r, "seed", (double)self->seed);
    s_add_num(r, "sampling_time", ns_sampler_sampling_time(self));
    cJSON_AddNumberToObject(r, "total_likelihood_evaluations", (double)self->n_eval);
    s_add_num(r, "likelihood_evaluation_time", self->likelihood_time);
    cJSON *h = cJSON_AddObjectToObject(r, "history");
    for (int k = 0; h && k < NS_H__COUNT; k++)
        cJSON_AddItemToObject(h, ns_history_names[k], s_array(self->history[k].v, self->history[k].n, 1));
    double truth = ns_model_truth(self->model);
    if (!isnan(truth))
        s_add_num(r, "truth", truth);
    cJSON *ins = cJSON_AddArrayToObject(r, "insertion_indices");
    for (size_t i = 0; ins && i < self->insertion.n; i++)
        cJSON_AddItemToArray(ins, cJSON_CreateNumber((double)self->insertion.v[i]));
    s_add_num(r, "final_p_value", self->final_p);
    s_add_num(r, "final_ks_statistic", self->final_ks_d);
    cJSON_AddItemToObject(r, "nested_samples", s_rows(self, self->nested.v, n));
    if (self->have_posterior)
        cJSON_AddItemToObject(r, "log_posterior_weights", s_array(self->log_w, n, 1));
    /* logL_birth = logLs[it]: the contour the point had to beat */
    cJSON *birth = cJSON_AddArrayToObject(r, "logL_birth");
    const double *logls = ns_integrator_logls(self->integ);
    size_t nl = ns_integrator_count(self->integ) + 1;
    for (size_t i = 0; birth && i < n; i++) {
        double it = self->nested.v[i * self->st + NS_LP_IT(self->d)];
        size_t k = it >= 0 && it < (double)nl ? (size_t)it : 0;
        cJSON_AddItemToArray(birth, s_num(logls[k]));
    }
    s_add_num(r, "log_evidence", ns_integrator_log_z(self->integ));
    s_add_num(r, "log_evidence_error", ns_integrator_error(self->integ));
    s_add_num(r, "information", ns_integrator_information(self->integ));
    s_add_num(r, "training_time", self->training_time);
    s_add_num(r, "population_time", self->population_time);
    s_add_num(r, "population_likelihood_time", self->population_likelihood_time);
    if (self->have_posterior)
        cJSON_AddItemToObject(r, "posterior_samples", s_columns(self, self->nested.v, self->post_idx, self->n_post));
    /* run summary beyond nessai's keys */
    cJSON_AddNumberToObject(r, "iterations", (double)self->iteration);
    cJSON_AddNumberToObject(r, "nlive", (double)self->nlive);
    s_add_num(r, "effective_sample_size", self->ess);
    cJSON_AddBoolToObject(r, "finalised", self->finalised);
    cJSON_AddBoolToObject(r, "stopped_at_max_iteration", self->stopped_max);
    s_add_num(r, "dlogZ", self->condition);
    cJSON_AddStringToObject(r, "proposal", ns_sampler_proposal_name(self));
    cJSON_AddNumberToObject(r, "training_count", (double)self->training_count);
    /* ln X of each nested sample (nessai's state.log_vols[1:]), for logXlogL.png and trace.png */
    const double *lv = ns_integrator_log_vols(self->integ);
    cJSON_AddItemToObject(r, "log_prior_volume", s_array(lv + 1, nl - 1 < n ? nl - 1 : n, 1));
    /* non-finite likelihoods per stage (docs/sampler.md, "Non-finite likelihoods") */
    cJSON *nf = cJSON_AddObjectToObject(r, "nonfinite_likelihood");
    for (int ph = 0; nf && ph < NS_NF__PHASES; ph++) {
        const ns_nf_count_t *c = &self->nonfinite[ph];
        cJSON *o = cJSON_AddObjectToObject(nf, ns_nf_phase_names[ph]);
        if (!o)
            break;
        uint64_t bad = c->nan + c->neg_inf + c->pos_inf;
        cJSON_AddNumberToObject(o, "drawn", (double)c->drawn);
        cJSON_AddNumberToObject(o, "nan", (double)c->nan);
        cJSON_AddNumberToObject(o, "neg_inf", (double)c->neg_inf);
        cJSON_AddNumberToObject(o, "pos_inf", (double)c->pos_inf);
        cJSON_AddNumberToObject(o, "fraction", c->drawn ? (double)bad / (double)c->drawn : 0.0);
    }
    /* each proposal's own statistics, under its name */
    cJSON *ps = cJSON_AddObjectToObject(r, "proposal_stats");
    const ns_proposal_t *props[2] = {self->uninformed, self->flow};
    for (int k = 0; ps && k < 2; k++) {
        if (!props[k] || !props[k]->ops->stats_json)
            continue;
        cJSON *o = cJSON_AddObjectToObject(ps, props[k]->ops->name);
        if (o)
            props[k]->ops->stats_json(props[k]->impl, o);
    }
    return r;
}

/* ---- types for result.hdf5 ---- */

/* the counters of each "nonfinite_likelihood" stage */
static const char *const s_nonfinite_ints[] = {"drawn", "nan", "neg_inf", "pos_inf"};

int ns_sampler_result_schema(const ns_sampler_t *self, ns_h5_schema_t *schema)
{
    /* nessai's live-point dtype: parameters f8, logP f8, logL f8, it i4 */
    const char *const *pn = ns_model_param_names(self->model);
    const char **names = malloc(self->st * sizeof *names);
    ns_h5_dtype_t *types = malloc(self->st * sizeof *types);
    int rc = names && types ? NS_OK : NS_ERR_NOMEM;
    for (size_t c = 0; rc == NS_OK && c < self->st; c++) {
        static const char *const core[3] = {"logP", "logL", "it"};
        names[c] = c < self->d ? pn[c] : core[c - self->d];
        types[c] = c == NS_LP_IT(self->d) ? NS_H5_INT32 : NS_H5_FLOAT64;
    }
    if (rc == NS_OK)
        rc = ns_h5_schema_add_records(schema, "nested_samples", names, types, self->st);
    if (rc == NS_OK)
        rc = ns_h5_schema_add_records(schema, "posterior_samples", names, types, self->st);
    free(names);
    free(types);
    /* Python ints in nessai's dictionary (h5py writes them int64) */
    static const char *const ints[] = {
        "seed", "total_likelihood_evaluations", "insertion_indices", "iterations", "nlive",
        "training_count", "history/likelihood_evaluations", "history/iterations",
        "history/training_iterations", "history/population_iterations",
        "history/checkpoint_iterations",
    };
    for (size_t i = 0; rc == NS_OK && i < sizeof ints / sizeof ints[0]; i++)
        rc = ns_h5_schema_add(schema, ints[i], NS_H5_INT64);
    for (size_t i = 0; rc == NS_OK && i < sizeof s_nonfinite_ints / sizeof s_nonfinite_ints[0]; i++)
        for (int ph = 0; rc == NS_OK && ph < NS_NF__PHASES; ph++) {
            char path[128];
            snprintf(path, sizeof path, "nonfinite_likelihood/%s/%s", ns_nf_phase_names[ph],
                     s_nonfinite_ints[i]);
            rc = ns_h5_schema_add(schema, path, NS_H5_INT64);
        }
    /* each proposal's integer counters, under its name */
    const ns_proposal_t *props[2] = {self->uninformed, self->flow};
    for (int k = 0; rc == NS_OK && k < 2; k++) {
        if (!props[k] || !props[k]->ops->stats_schema)
            continue;
        char prefix[96];
        snprintf(prefix, sizeof prefix, "proposal_stats/%s/", props[k]->ops->name);
        rc = props[k]->ops->stats_schema(props[k]->impl, schema, prefix);
    }
    return rc;
}

/* ---- CSV ---- */

/* One sample value as the shortest text that reads back as the same double. */
void ns_csv_put_double(FILE *f, double v)
{
    if (isnan(v)) {
        fputs("nan", f);
    } else if (isinf(v)) {
        fputs(v > 0 ? "inf" : "-inf", f);
    } else {
        char buf[40];
        for (int p = 1; p <= 17; p++) {
            snprintf(buf, sizeof buf, "%.*g", p, v);
            if (strtod(buf, NULL) == v)
                break;
        }
        fputs(buf, f);
    }
}

typedef struct {
    const ns_sampler_t *self;
    const size_t *rows;
    size_t n;
} s_csv_t;

static int s_put_csv(FILE *f, void *ctx)
{
    const s_csv_t *w = ctx;
    const ns_sampler_t *self = w->self;
    const char *const *pn = ns_model_param_names(self->model);
    for (size_t c = 0; c < self->d; c++)
        fprintf(f, "%s,", pn[c]);
    fputs("logP,logL,it\n", f);
    for (size_t i = 0; i < w->n; i++) {
        const double *x = self->nested.v + (w->rows ? w->rows[i] : i) * self->st;
        for (size_t c = 0; c < self->st; c++) {
            if (c == NS_LP_IT(self->d))
                fprintf(f, "%.0f", x[c]);
            else
                ns_csv_put_double(f, x[c]);
            fputc(c + 1 < self->st ? ',' : '\n', f);
        }
    }
    return ferror(f);
}

int ns_sampler_write_csv(const ns_sampler_t *self, const char *path, int nested)
{
    if (!nested && !self->have_posterior)
        return NS_ERR_STATE;
    s_csv_t w = {.self = self,
                 .rows = nested ? NULL : self->post_idx,
                 .n = nested ? self->nested.n / self->st : self->n_post};
    int rc = ns_write_file_atomic(path, 0666, 0, s_put_csv, &w, NULL);
    if (rc == NS_ERR_IO)
        ns_error(NULL, "could not write %s: check that the output directory is writable", path);
    return rc;
}
