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

#ifdef __cplusplus
extern "C" {
#endif

/* The farm's options (--bind, --n-pool, --chunksize, --worker-timeout, ...)
 * as a fragment that main.c joins into the coordinator's option table. */
extern const ns_option_t ns_farm_options[];
extern const size_t ns_farm_options_count;

/* 1 if cfg asks for a farm (--bind given, or --n-pool >= 1), else 0: then
 * the caller uses ns_evaluator_inprocess_new(). */
int ns_farm_wanted(const ns_config_t *cfg);

/* Start the farm: bind (or start --n-pool local workers), announce the
 * model (path, args, name, dim, hash) and compute canary values with the
 * coordinator's own model. argv0 locates nessai-worker for local pools.
 * Returns NS_OK and an owned evaluator, or an error already logged. */
int ns_farm_evaluator_new(const ns_config_t *cfg, ns_model_t *model,
                          const char *argv0, ns_evaluator_t **out);

#ifdef __cplusplus
}
#endif
#endif
