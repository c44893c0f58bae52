/* flow_proposal_state.c - FlowProposal checkpoint state (section "FPRP",
 * docs/flow.md) and statistics for result.json. */
#include "flow_proposal_impl.h"
#include "nessai/error.h"
#include "nessai/hdf5out.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define FP_TAG "FPRP"
#define FP_VERSION 1u

int ns_fp_save(const void *impl, ns_buf_t *b)
{
    const s_fp_t *s = impl;
    ns_buf_put_tag(b, FP_TAG, FP_VERSION);
    ns_buf_put_u64(b, s->d);
    ns_flow_save(s->flow, b);
    ns_adamw_save(s->opt, b);
    ns_reparam_save(s->rp, b);
    ns_rng_put(b, s->rng_train);
    ns_rng_put(b, s->rng_pop);
    ns_buf_put_f64(b, s->ns_acceptance);
    ns_buf_put_i64(b, s->trainings);
    ns_buf_put_f64(b, s->min_log_q);
    ns_buf_put_i64(b, s->populations);
    ns_buf_put_f64(b, s->total_draws);
    ns_buf_put_f64(b, s->total_accepted);
    ns_buf_put_f64(b, s->last_radius);
    ns_buf_put_f64(b, s->last_acceptance);
    ns_buf_put_f64(b, s->total_epochs);
    ns_buf_put_f64s(b, s->radius_data, s->radius_data ? s->radius_n * s->dp : 0);
    /* pool: rows, then the remaining indices in pop order */
    ns_buf_put_u8(b, (uint8_t)s->populated);
    ns_buf_put_f64s(b, s->pool, s->populated ? s->pool_n * s->stride : 0);
    ns_buf_put_u64(b, s->populated ? s->remaining : 0);
    for (size_t i = 0; s->populated && i < s->remaining; i++)
        ns_buf_put_u64(b, s->order[i]);
    return ns_buf_error(b);
}

int ns_fp_load(void *impl, ns_buf_t *b)
{
    s_fp_t *s = impl;
    uint32_t ver;
    uint64_t d;
    int rc;
    if ((rc = ns_buf_get_tag(b, FP_TAG, &ver)) != NS_OK)
        return rc;
    if (ver != FP_VERSION)
        return NS_ERR_CORRUPT;
    if ((rc = ns_buf_get_u64(b, &d)) != NS_OK)
        return rc;
    if (d != s->d)
        return NS_ERR_CORRUPT;
    if ((rc = ns_flow_load(s->flow, b)) != NS_OK || (rc = ns_adamw_load(s->opt, b)) != NS_OK ||
        (rc = ns_reparam_load(s->rp, b)) != NS_OK || (rc = ns_rng_get(b, s->rng_train)) != NS_OK ||
        (rc = ns_rng_get(b, s->rng_pop)) != NS_OK)
        return rc;
    int64_t tr, pops;
    if ((rc = ns_buf_get_f64(b, &s->ns_acceptance)) || (rc = ns_buf_get_i64(b, &tr)) ||
        (rc = ns_buf_get_f64(b, &s->min_log_q)) || (rc = ns_buf_get_i64(b, &pops)) ||
        (rc = ns_buf_get_f64(b, &s->total_draws)) || (rc = ns_buf_get_f64(b, &s->total_accepted)) ||
        (rc = ns_buf_get_f64(b, &s->last_radius)) || (rc = ns_buf_get_f64(b, &s->last_acceptance)) ||
        (rc = ns_buf_get_f64(b, &s->total_epochs)))
        return rc;
    if (tr < 0 || pops < 0)
        return NS_ERR_CORRUPT;
    s->trainings = tr;
    s->populations = pops;
    double *rd = NULL;
    size_t nrd = 0;
    if ((rc = ns_buf_get_f64s(b, &rd, &nrd, (size_t)1 << 32)) != NS_OK)
        return rc;
    if (nrd % s->dp) {
        free(rd);
        return NS_ERR_CORRUPT;
    }
    free(s->radius_data);
    s->radius_data = nrd ? rd : NULL;
    if (!nrd)
        free(rd);
    s->radius_n = nrd / s->dp;
    uint8_t pop;
    if ((rc = ns_buf_get_u8(b, &pop)) != NS_OK)
        return rc;
    double *rows = NULL;
    size_t nr = 0;
    if ((rc = ns_buf_get_f64s(b, &rows, &nr, s->pool_cap * s->stride)) != NS_OK)
        return rc;
    uint64_t rem;
    if (nr % s->stride || (rc = ns_buf_get_u64(b, &rem)) != NS_OK || rem > nr / s->stride ||
        (pop && rem == 0) || (!pop && rem != 0)) {
        free(rows);
        return rc ? rc : NS_ERR_CORRUPT;
    }
    for (size_t i = 0; i < rem && rc == NS_OK; i++) {
        uint64_t v;
        rc = ns_buf_get_u64(b, &v);
        if (rc == NS_OK && v >= nr / s->stride)
            rc = NS_ERR_CORRUPT;
        if (rc == NS_OK)
            s->order[i] = v;
    }
    if (rc == NS_OK) {
        if (nr)
            memcpy(s->pool, rows, nr * sizeof(double));
        s->pool_n = nr / s->stride;
        s->remaining = rem;
        s->populated = pop ? 1 : 0;
    }
    free(rows);
    return rc;
}

/* The counters ns_fp_stats_json writes; kept as doubles in the state but
 * always whole numbers. */
static const char *const s_int_stats[] = {
    "flow_trainings", "flow_populations", "flow_latent_draws", "flow_accepted", "flow_parameters",
    "flow_epochs",
};

int ns_fp_stats_schema(const void *impl, struct ns_h5_schema *schema, const char *prefix)
{
    (void)impl;
    char path[128];
    int rc = NS_OK;
    for (size_t i = 0; rc == NS_OK && i < sizeof s_int_stats / sizeof s_int_stats[0]; i++) {
        snprintf(path, sizeof path, "%s%s", prefix, s_int_stats[i]);
        rc = ns_h5_schema_add(schema, path, NS_H5_INT64);
    }
    return rc;
}

void ns_fp_stats_json(const void *impl, struct cJSON *obj)
{
    const s_fp_t *s = impl;
    cJSON_AddNumberToObject(obj, "flow_trainings", (double)s->trainings);
    cJSON_AddNumberToObject(obj, "flow_populations", (double)s->populations);
    cJSON_AddNumberToObject(obj, "flow_latent_draws", s->total_draws);
    cJSON_AddNumberToObject(obj, "flow_accepted", s->total_accepted);
    cJSON_AddNumberToObject(obj, "flow_parameters", (double)ns_flow_n_params(s->flow));
    cJSON_AddNumberToObject(obj, "flow_epochs", s->total_epochs);
    cJSON_AddStringToObject(obj, "flow_population_precision", s->pop_f32 ? "float32" : "float64");
    cJSON_AddStringToObject(obj, "flow_training_precision", s->train_f32 ? "float32" : "float64");
    cJSON_AddStringToObject(obj, "flow_blas_core", ns_flow_blas_core());
    cJSON_AddNumberToObject(obj, "flow_training_time", s->time_train);
    cJSON_AddNumberToObject(obj, "flow_epoch_time", s->time_fit);
    cJSON_AddNumberToObject(obj, "flow_population_time", s->time_pop);
    cJSON_AddNumberToObject(obj, "flow_inverse_time", s->time_inverse);
}

