/*
 * coordinator/farm/farm.h - the worker farm as an evaluator.
 *
 * This header is the only farm surface the rest of the coordinator sees.
 * It includes no ZeroMQ or msgpack header.
 */
#ifndef NESSAI_FARM_H
#define NESSAI_FARM_H

#include <stddef.h>
#include "nessai/evaluator.h"
#include "nessai/options.h"
#include "nessai/plugin.h"
#include "farm_stats.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The farm's options (--bind, --n-pool, --chunksize, --worker-timeout, ...)
 * as a fragment that main.c joins into the coordinator's option table. */
extern const ns_option_t ns_farm_options[];
extern const size_t ns_farm_options_count;

/* The run's output directory: the default keys directory is
 * <dir>/farm-keys (docs/protocol.md §8). Call before ns_farm_evaluator_new. */
void ns_farm_set_output(const char *dir);

/* 1 if cfg asks for a farm (--bind given, or --n-pool >= 1), else 0: then
 * the caller uses ns_evaluator_inprocess_new(). */
int ns_farm_wanted(const ns_config_t *cfg);

/* Check --bind before anything is created: a tcp:// endpoint with a host
 * part and a port of 1-65535 (or * / 0 for a free one), then a trial bind
 * of that endpoint, released at once. NS_OK (also without --bind),
 * NS_ERR_INVAL for a value that cannot work (malformed, another scheme,
 * no such interface or address here) or NS_ERR_IO when the host refuses
 * the bind (port in use, permission); err holds one line, starting with
 * what was given. The farm binds again when it starts: the port can be
 * taken in between, which that bind then reports. */
int ns_farm_check_bind(const ns_config_t *cfg, char *err, size_t errlen);

/* The farm's paths, before anything is created: the nessai-worker program
 * of a local pool (--worker-path, or found next to argv0's program) and
 * --worker-keys, a readable directory when CurveZMQ is on. NS_OK or NS_ERR_INVAL with one
 * line in err. */
int ns_farm_check_paths(const ns_config_t *cfg, const char *argv0, char *err, size_t errlen);

/* Start the farm: bind (or start --n-pool local workers), announce the
 * model (path, args, name, dim, hash) and compute canary values with the
 * coordinator's own model. argv0 locates nessai-worker for local pools.
 * Returns NS_OK and an owned evaluator, or an error already logged. */
int ns_farm_evaluator_new(const ns_config_t *cfg, ns_model_t *model,
                          const char *argv0, ns_evaluator_t **out);

/* Statistics of a farm evaluator (NS_ERR_INVAL if ev is not one). */
int ns_farm_stats(ns_evaluator_t *ev, ns_farm_stats_t *out);

/* The control endpoint workers connect to (tcp://host:port), NULL if ev is
 * not a farm. Valid while ev lives. */
const char *ns_farm_endpoint(ns_evaluator_t *ev);

/* Wait until at least n workers are accepted and live. NS_OK, or
 * NS_ERR_TIMEOUT after timeout_s seconds. For tests and benchmarks. */
int ns_farm_wait_live(ns_evaluator_t *ev, size_t n, double timeout_s);

#ifdef __cplusplus
}
#endif
#endif
