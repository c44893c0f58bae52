/* farm_fixture.c - see farm_fixture.h. */
#include "farm_fixture.h"

#include <czmq.h>
#include "nessai/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pid_t th_farm_spawn_worker(const char *endpoint, const char *const *args,
                           const char *const *env, const char *stderr_path)
{
    const char *argv[64];
    size_t na = 0;
    argv[na++] = NESSAI_WORKER_BIN;
    argv[na++] = "--connect";
    argv[na++] = endpoint;
    /* the test plugins and the examples may be loaded when announced */
    static char allow[8192];
    const char *slash = strrchr(FARMTEST_PLUGIN, '/');
    snprintf(allow, sizeof allow, "%.*s:%s", slash ? (int)(slash - FARMTEST_PLUGIN) : 1,
             slash ? FARMTEST_PLUGIN : ".", NESSAI_EXAMPLES_DIR);
    argv[na++] = "--allow-model-dir";
    argv[na++] = allow;
    for (size_t i = 0; args && args[i] && na < 62; i++)
        argv[na++] = args[i];
    argv[na] = NULL;
    return th_spawn_pid(argv, env, stderr_path, TH_STDERR_ONLY);
}

ns_config_t *th_farm_config(const char *first, ...)
{
    ns_config_t *cfg = ns_config_new(ns_farm_options, ns_farm_options_count);
    if (!cfg)
        return NULL;
    va_list ap;
    va_start(ap, first);
    for (const char *name = first; name; name = va_arg(ap, const char *)) {
        const char *value = va_arg(ap, const char *);
        char err[256];
        if (ns_config_set(cfg, name, value, err, sizeof err) != NS_OK) {
            fprintf(stderr, "th_farm_config: %s\n", err);
            ns_config_destroy(&cfg);
            break;
        }
    }
    va_end(ap);
    if (cfg && !ns_config_is_set(cfg, "worker-path")) {
        char err[256];
        ns_config_set(cfg, "worker-path", NESSAI_WORKER_BIN, err, sizeof err);
    }
    return cfg;
}

ns_model_t *th_farm_model(const char *args)
{
    ns_model_t *m = NULL;
    char err[512];
    if (ns_model_load(FARMTEST_PLUGIN, args, &m, err, sizeof err) != NS_OK) {
        fprintf(stderr, "th_farm_model: %s\n", err);
        return NULL;
    }
    return m;
}

double *th_farm_points(size_t n, size_t d, unsigned long long seed)
{
    double *x = malloc(n * d * sizeof *x + 1);
    unsigned long long s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; x && i < n * d; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = -5.0 + 10.0 * (double)(s >> 11) / 9007199254740992.0;
    }
    for (size_t i = 0; x && i < n; i += 97)
        x[i * d] = 4.95;
    return x;
}

void th_farm_inprocess(ns_model_t *model, const double *x, size_t n, double *logl)
{
    if (ns_model_log_likelihood(model, x, n, logl) != NS_OK)
        fprintf(stderr, "th_farm_inprocess: %s\n", ns_model_last_error(model));
}

int th_farm_matches_inprocess(ns_evaluator_t *ev, ns_model_t *model, const double *x, size_t n,
                              size_t d)
{
    double *want = malloc((n + 1) * sizeof *want), *got = malloc((n + 1) * sizeof *got);
    int ok = want && got;
    if (ok) {
        th_farm_inprocess(model, x, n, want);
        memset(got, 0xAB, n * sizeof *got);
        int rv = ns_evaluator_evaluate(ev, x, n, d, got);
        if (rv != NS_OK) {
            fprintf(stderr, "th_farm_matches_inprocess: the farm failed (%d)\n", rv);
            ok = 0;
        }
        for (size_t i = 0; ok && i < n; i++)
            if (memcmp(&got[i], &want[i], sizeof got[i]) != 0) {
                fprintf(stderr, "th_farm_matches_inprocess: point %zu: farm %.17g, in-process "
                                "%.17g\n", i, got[i], want[i]);
                ok = 0;
            }
    }
    free(want);
    free(got);
    return ok;
}

zframe_t *th_farm_frame(const ns_msg_t *m)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (ns_msg_encode(m, &bytes, &len) != NS_OK) {
        fprintf(stderr, "th_farm_frame: cannot encode a message of type %d\n", (int)m->type);
        exit(1);
    }
    zframe_t *f = zframe_new(bytes, len);
    free(bytes);
    return f;
}
