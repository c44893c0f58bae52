/*
 * coordinator/farm/broker.h - the farm's background thread (a zactor).
 *
 * The broker owns the two coordinator sockets (control ROUTER, data
 * ROUTER), the worker registry, chunking, deadlines and re-sends
 * (broker.c, broker_registry.c, broker_batch.c; seams in broker_int.h). It
 * keeps answering workers while the sampler trains its flow; evaluate()
 * hands it a batch and blocks until the batch is complete or failed.
 * Protocol: docs/protocol.md.
 */
#ifndef NESSAI_FARM_BROKER_H
#define NESSAI_FARM_BROKER_H

#include <czmq.h>
#include <stddef.h>
#include <stdint.h>
#include "farm_stats.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Everything the broker needs; the caller fills it and keeps it alive
 * until ns_broker_destroy. Strings are borrowed. */
typedef struct ns_broker_config {
    const char *bind;            /* control endpoint to bind, tcp:// */
    const char *model_name;
    const char *model_path;      /* absolute path announced to workers */
    const char *model_args;
    const char *model_hash;
    int dim;
    const double *canary_x;      /* canary_n x dim points */
    const double *canary_logl;   /* their logL from the coordinator's model */
    size_t canary_n;
    long n_pool;                 /* fixed chunk count, 0 = live worker count */
    long chunksize;              /* max points per chunk, 0 = no cap */
    double worker_timeout;       /* s without workers before a batch fails */
    double chunk_timeout;        /* minimum per-chunk deadline, s */
    long max_retries;            /* evaluation failures tolerated per chunk */
    int64_t max_message;         /* data-plane message limit, bytes */
    int heartbeat_ms;            /* heartbeat interval */
    int liveness;                /* missed heartbeats before a peer is lost */
    struct ns_model *spot_model; /* the coordinator's model for spot checks, NULL: none */
    double spot_fraction;        /* share of each result's points re-evaluated here */
    size_t max_workers;          /* registrations the descriptor limit allows, 0 = no limit */
    long fd_limit;               /* the soft RLIMIT_NOFILE behind max_workers, for messages */
    int local_pool;              /* workers are this process's children (--n-pool, no --bind) */
    /* Local pool: start a replacement for the worker process old_pid, which
     * has exited (the broker has not reaped it). Returns the new pid, or -1.
     * Called from the broker thread, at most max_respawns times. */
    int (*respawn)(void *ctx, int old_pid);
    void *respawn_ctx;
    long max_respawns;
    long max_chunk_faults;       /* holders lost / deadlines missed per chunk before the run stops */
    zcert_t *curve_cert;         /* CURVE server key pair, NULL: no CURVE (borrowed) */
    const char *curve_allow;     /* directory of accepted worker public keys */
    char endpoint[256];          /* out: bound control endpoint (tcp://host:port) */
} ns_broker_config_t;

typedef struct ns_broker ns_broker_t;

/* Start the broker thread and bind its sockets. Returns NULL with a
 * one-line reason in err if binding failed. Caller owns the return value. */
ns_broker_t *ns_broker_new(ns_broker_config_t *cfg, char *err, size_t errlen);
/* Stop the thread (no STOP to workers: see ns_broker_stop). NULL-safe. */
void ns_broker_destroy(ns_broker_t **self_p);

/* Evaluate a batch (see evaluator.h). Blocks. Returns NS_OK, or
 * NS_ERR_FARM / NS_ERR_INTERRUPTED with the reason already logged. */
int ns_broker_evaluate(ns_broker_t *self, const double *x, size_t n, size_t d, double *logl);
/* The same in two halves: begin sends the batch to the broker thread and
 * returns at once (NS_OK, NS_ERR_FARM if the pipe failed, NS_ERR_STATE if
 * one is already in flight); poll is 1 once its reply is there (or none is
 * in flight); end waits for the reply and returns what evaluate would
 * have. x and logl must stay valid until end. While a batch is in flight
 * no other command may be sent down the pipe (its reply would be taken
 * for the batch's): call end first. */
int ns_broker_begin(ns_broker_t *self, const double *x, size_t n, size_t d, double *logl);
int ns_broker_poll(ns_broker_t *self);
int ns_broker_end(ns_broker_t *self);
/* Copy of the current statistics. */
void ns_broker_stats(ns_broker_t *self, ns_farm_stats_t *out);
/* Tell every known worker the run is over (STOP). */
void ns_broker_stop(ns_broker_t *self);
/* Register local worker pids: the broker logs their exits. */
void ns_broker_watch_pid(ns_broker_t *self, int pid);
/* Send a command without arguments down the broker's pipe and return its
 * reply (the commands: broker.c, "the caller's pipe"). Every command is
 * answered; one the broker does not know, or one that needs arguments,
 * with NS_ERR_INVAL. NS_ERR_FARM if the pipe failed. */
int ns_broker_call(ns_broker_t *self, const char *command);

#ifdef __cplusplus
}
#endif
#endif
