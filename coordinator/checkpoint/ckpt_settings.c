/* ckpt_settings.c - the run's settings inside its checkpoint, and what a
 * resumed run may change (docs/checkpoint.md, "Changing settings on
 * resume"). */
#include "checkpoint.h"

#include "nessai/error.h"
#include "nessai/log.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TAG "CONF"
#define S_VERSION 1u

/* Settings a resumed run may change: they decide when the run stops, how
 * it reports, where its files go and how the likelihood is farmed out,
 * never which points are drawn (results are the same with any farm).
 * Every other setting (the sampler's, the flow's, --threads, which
 * changes the flow's arithmetic) must keep the checkpoint's value. --seed
 * and the model are checked with the checkpoint's identity. */
static const char *const s_safe[] = {
    "model", "output", "config", "result-hdf5", "log-level",
    "stopping", "max-iteration", "progress-interval", "logging-interval",
    "nested-samples-csv", "plot", "plot-python", "posterior-method",
    "n-pool", "bind", "chunksize", "worker-timeout", "chunk-timeout", "max-retries",
    "max-chunk-faults", "spot-check", "max-respawns", "max-message-size",
    "heartbeat-interval", "heartbeat-liveness", "insecure", "curve", "farm-keys",
    "worker-keys", "worker-path",
    "resume", "resume-file", "checkpoint-interval", "checkpoint-exit-code", "max-runtime",
};
static const char *const s_skip[] = {"seed", "model-args"};

static int s_in(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return 1;
    return 0;
}

int ns_ckpt_settings_put(const ns_config_t *cfg, ns_buf_t *b)
{
    cJSON *j = ns_config_to_json(cfg);
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!text)
        return NS_ERR_NOMEM;
    ns_buf_put_tag(b, S_TAG, S_VERSION);
    ns_buf_put_str(b, text);
    free(text);
    return ns_buf_error(b);
}

int ns_ckpt_settings_take(ns_buf_t *b, char **json)
{
    *json = NULL;
    if (ns_buf_remaining(b) < 4 || memcmp(b->data + b->pos, S_TAG, 4) != 0)
        return NS_OK;   /* written before settings were stored */
    ns_buf_t r = *b;
    uint32_t version;
    int rc = ns_buf_get_tag(&r, S_TAG, &version);
    if (rc == NS_OK && version != S_VERSION)
        rc = NS_ERR_CORRUPT;
    if (rc == NS_OK)
        rc = ns_buf_get_str(&r, json);
    if (rc != NS_OK) {
        free(*json);
        *json = NULL;
        return rc;
    }
    b->pos = r.pos;
    return NS_OK;
}

/* A setting's value as the command line spells it. */
static void s_value(const cJSON *v, char *buf, size_t len)
{
    if (!v || cJSON_IsNull(v))
        snprintf(buf, len, "none");
    else if (cJSON_IsBool(v))
        snprintf(buf, len, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 1e15)
            snprintf(buf, len, "%.0f", d);
        else
            snprintf(buf, len, "%.15g", d);
    } else if (cJSON_IsString(v))
        snprintf(buf, len, "%s", v->valuestring);
    else
        snprintf(buf, len, "?");
}

int ns_ckpt_settings_check(const char *saved, const ns_config_t *cfg, const char *path,
                           uint64_t iteration, int log_changes, char *err, size_t errlen)
{
    cJSON *old = cJSON_Parse(saved);
    cJSON *now = ns_config_to_json(cfg);
    int rv = NS_OK;
    if (!old || !cJSON_IsObject(old) || !now) {
        ns_errf(err, errlen, "checkpoint %s: its settings cannot be read%s", path,
                now ? "; move it away to start afresh, or use --no-resume" : " (out of memory)");
        rv = now ? NS_ERR_CORRUPT : NS_ERR_NOMEM;
        goto done;
    }
    /* Which sampler wrote it comes first: its other settings differ anyway. */
    const cJSON *was_ins = cJSON_GetObjectItemCaseSensitive(old, "importance_nested_sampler");
    const cJSON *now_ins = cJSON_GetObjectItemCaseSensitive(now, "importance_nested_sampler");
    if (was_ins && now_ins && cJSON_IsTrue(was_ins) != cJSON_IsTrue(now_ins)) {
        ns_errf(err, errlen, "checkpoint %s was written by the %s sampler; this run uses the %s "
                "sampler (%s --importance-nested-sampler, or use another --output)", path,
                cJSON_IsTrue(was_ins) ? "importance nested" : "standard nested",
                cJSON_IsTrue(now_ins) ? "importance nested" : "standard nested",
                cJSON_IsTrue(was_ins) ? "add" : "drop");
        rv = NS_ERR_REFUSED;
        goto done;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, now) {
        char name[128];
        snprintf(name, sizeof name, "%s", item->string);
        for (char *p = name; *p; p++)
            if (*p == '_')
                *p = '-';
        if (s_in(name, s_skip, sizeof s_skip / sizeof s_skip[0]))
            continue;
        const cJSON *was = cJSON_GetObjectItemCaseSensitive(old, item->string);
        if (!was)
            continue;   /* a setting the writing program did not have */
        char a[256], b[256];
        s_value(was, a, sizeof a);
        s_value(item, b, sizeof b);
        if (cJSON_Compare(was, item, 1) || strcmp(a, b) == 0)
            continue;
        if (!s_in(name, s_safe, sizeof s_safe / sizeof s_safe[0])) {
            ns_errf(err, errlen, "checkpoint %s was written with --%s %s; this run has --%s %s "
                    "(use the same value, or another --output)", path, name, a, name, b);
            rv = NS_ERR_REFUSED;
            goto done;
        }
        if (log_changes)
            ns_info(NULL, "resume: --%s changed from %s to %s", name, a, b);
    }
    /* A limit below what the checkpoint has done cannot be honoured. */
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(now, "max_iteration");
    if (cJSON_IsNumber(max) && (double)iteration > max->valuedouble) {
        ns_errf(err, errlen, "checkpoint %s is at iteration %llu, past this run's "
                "--max-iteration %.0f (give at least %llu, or another --output)", path,
                (unsigned long long)iteration, max->valuedouble, (unsigned long long)iteration);
        rv = NS_ERR_REFUSED;
    }
done:
    cJSON_Delete(old);
    cJSON_Delete(now);
    return rv;
}
