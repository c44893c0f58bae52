/*
 * coordinator/farm/pool.h - a local pool: N nessai-worker processes started
 * by the coordinator, which never outlive it (docs/protocol.md §5).
 */
#ifndef NESSAI_FARM_POOL_H
#define NESSAI_FARM_POOL_H

#include <stddef.h>

typedef struct ns_pool ns_pool_t;

/* Locate nessai-worker: given (if not NULL), else next to /proc/self/exe,
 * else next to argv0. Writes the path to out. NS_OK or NS_ERR_INVAL with a
 * one-line reason in err. */
int ns_pool_find_worker(const char *given, const char *argv0, char *out, size_t size,
                        char *err, size_t errlen);

/* Start n workers connecting to endpoint, loading model (--model: a local
 * worker never loads a path it hears on the network), with --keys keys when
 * not NULL (CURVE). Caller owns *out. */
int ns_pool_new(const char *worker_path, const char *endpoint, const char *model,
                const char *keys, size_t n, ns_pool_t **out, char *err, size_t errlen);

/* Replace the worker process old_pid, which has exited: reap it and start
 * another with the same arguments. Returns the new pid, or -1. */
int ns_pool_respawn(ns_pool_t *self, int old_pid);

/* Wait up to timeout_s for the workers to exit (after STOP), then SIGKILL
 * the rest. */
void ns_pool_wait(ns_pool_t *self, double timeout_s);

/* SIGKILL and reap whatever still runs, free. NULL-safe. */
void ns_pool_destroy(ns_pool_t **self_p);

size_t ns_pool_size(const ns_pool_t *self);
int ns_pool_pid(const ns_pool_t *self, size_t i);

#endif
