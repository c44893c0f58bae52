/*
 * coordinator/farm/broker_int.h - state shared by the broker's two halves:
 * broker.c (the thread, sockets, worker registry, heartbeats) and
 * broker_batch.c (chunking, dispatch, results, deadlines, re-sends).
 * Used only inside the broker thread; not part of the farm's interface.
 */
#ifndef NESSAI_FARM_BROKER_INT_H
#define NESSAI_FARM_BROKER_INT_H

#include "broker.h"
#include "codec.h"

#define NS_BROKER_MAX_LOCAL 4096

typedef enum { W_WELCOMED, W_LIVE } ns_bwstate_t;

typedef struct {
    uint64_t seq;                 /* id number: "w<seq>" */
    char id[24];                  /* "w<seq>" */
    zframe_t *routing;            /* ROUTER identity */
    char host[128];               /* from HELLO */
    uint32_t pid;                 /* from HELLO */
    ns_bwstate_t state;
    double last_seen;             /* any message, for heartbeat expiry */
    double welcomed_at;           /* WELCOME sent */
    int taken;                    /* chunks of this batch taken, not yet answered */
} ns_bworker_t;

typedef struct {
    size_t start, n;              /* rows [start, start + n) of the batch */
    int done;                     /* a valid result was placed */
    int queued;                   /* waiting in the send queue */
    uint32_t attempt;             /* latest attempt sent, 0 before the first */
    uint64_t holder;              /* seq of the worker that took the latest attempt, 0 none */
    double deadline;              /* of the latest attempt, 0 when not in flight */
    double sent_at;               /* when the latest attempt was sent */
    uint32_t failures;            /* RESULTs with status 1 */
} ns_bchunk_t;

typedef struct {
    zsock_t *pipe;                /* to the caller */
    ns_broker_t *owner;
    ns_broker_config_t *cfg;
    zsock_t *router, *push, *pull;
    uint64_t run;                 /* random per start */
    uint64_t next_seq;            /* worker id numbers */
    ns_bworker_t **workers;         /* registry */
    size_t nworkers, capworkers;
    int pids[NS_BROKER_MAX_LOCAL];        /* local pool children still running */
    size_t npids;
    double next_tick;             /* heartbeat / expiry / deadline scan */
    double sec_per_point;         /* running estimate from results, 0 = unknown */
    ns_farm_stats_t stats;
    int terminated;
    /* the batch in progress */
    int active;
    uint64_t batch;               /* id of the current (or last) batch */
    const double *x;
    double *logl;
    size_t n, d, k;
    ns_bchunk_t *chunks;
    size_t *queue;                /* chunk indices to send, FIFO */
    size_t qhead, qlen;
    size_t remaining;             /* chunks not done */
    int chunked;                  /* chunks laid out (k known) */
    double t_start;
    double waiting_since;         /* no live workers since, 0 = not waiting */
    double last_wait_log;
} ns_bstate_t;

/* Registry (broker.c). */
size_t ns_broker_live_count(const ns_bstate_t *s);
ns_bworker_t *ns_broker_find_id(ns_bstate_t *s, ns_str_t id);

/* Batches (broker_batch.c). */
/* Start evaluating n x d points into logl; the caller's pipe gets the
 * outcome (ns_batch_finish) when the batch completes or fails. */
void ns_batch_start(ns_bstate_t *s, const double *x, double *logl, size_t n, size_t d);
/* End the active batch with rv and answer the caller. */
void ns_batch_finish(ns_bstate_t *s, int rv);
/* Send queued chunks until the work socket would block. */
void ns_batch_pump(ns_bstate_t *s);
/* Worker seq is gone: re-queue its chunks and every untaken one. Returns
 * how many of its own chunks went back. */
size_t ns_batch_requeue_orphans(ns_bstate_t *s, uint64_t seq);
/* Read one message from the results socket (TAKE or RESULT). */
void ns_batch_on_results(ns_bstate_t *s);
/* Timers of the active batch: no workers, unclaimed chunks, deadlines. */
void ns_batch_check(ns_bstate_t *s, double now);

#endif
