/*
 * coordinator/farm/broker_int.h - the seams between the broker's three
 * parts. All of them run in the broker thread; none of this is part of the
 * farm's interface (broker.h is).
 *
 *   broker.c           the thread: sockets, the poll loop, the caller's pipe
 *   broker_registry.c  the worker registry: HELLO, READY, BYE, refusals,
 *                      heartbeats, liveness, local worker processes
 *   broker_batch.c     one batch: chunking, dispatch, results, deadlines,
 *                      re-sends
 *
 * Calls go one way: broker.c -> broker_batch.c -> broker_registry.c. The
 * registry never calls batch code; what it has to say about a worker that
 * went away it says through ns_reg_hooks_t, which broker.c fills with the
 * batch's functions.
 */
#ifndef NESSAI_FARM_BROKER_INT_H
#define NESSAI_FARM_BROKER_INT_H

#include "broker.h"
#include "nessai/codec.h"

#define NS_BROKER_MAX_LOCAL 4096

typedef struct ns_bstate ns_bstate_t;

/* ---- registry (broker_registry.c) ------------------------------------------ */

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
    int taken;                    /* chunks of this batch taken, not yet answered (batch) */
    int stuck;                    /* holds an attempt past its deadline (batch) */
    uint64_t spot_checked;        /* its points re-evaluated by the coordinator */
    int evaluating;               /* took a chunk (TAKE) and has not answered it (batch) */
    uint64_t cur_batch;           /* that chunk: batch and index */
    uint32_t cur_chunk;
} ns_bworker_t;

/* What the registry tells the batch side. */
typedef struct {
    /* Worker seq is gone (lost, left, or registering again): hand its work
     * back. fault says how it ended when that counts against the chunks it
     * held ("killed by signal 11"), NULL for a clean leave. Returns how many
     * of the chunks it had taken went back. */
    size_t (*worker_gone)(ns_bstate_t *s, uint64_t seq, const char *fault);
    /* A worker left cleanly: send what can be sent now. */
    void (*can_send)(ns_bstate_t *s);
} ns_reg_hooks_t;

/* Accepted (LIVE) workers. */
size_t ns_reg_live_count(const ns_bstate_t *s);
/* The worker with this id ("w3"), NULL if unknown. */
ns_bworker_t *ns_reg_find_id(ns_bstate_t *s, ns_str_t id);
/* The worker with this id number, NULL if gone. */
ns_bworker_t *ns_reg_find_seq(ns_bstate_t *s, uint64_t seq);
/* Live workers holding no chunk of the current batch. */
size_t ns_reg_idle_count(const ns_bstate_t *s);
/* 1 if some live worker holds no chunk of the current batch. */
int ns_reg_any_idle(const ns_bstate_t *s);
/* A new batch: no worker holds any of its chunks. */
void ns_reg_reset_taken(ns_bstate_t *s);
/* Up to max live workers evaluating chunk i of the current batch (any
 * attempt) and not yet marked stuck; returns how many. */
size_t ns_reg_evaluating(ns_bstate_t *s, size_t i, ns_bworker_t **out, size_t max);
/* 1 if every live worker holds an attempt past its deadline. */
int ns_reg_all_stuck(const ns_bstate_t *s);
/* How local workers ended, "pid 123 killed by signal 11; ...", "" if none. */
void ns_reg_exits(const ns_bstate_t *s, char *out, size_t size);
/* Local pool processes not yet seen to exit. */
size_t ns_reg_local_count(const ns_bstate_t *s);
/* Watch a local worker's pid: its exit is logged. */
void ns_reg_watch_pid(ns_bstate_t *s, int pid);
/* Read and answer one message from the control ROUTER. */
void ns_reg_on_control(ns_bstate_t *s);
/* Every heartbeat interval: send HEARTBEATs, drop silent or never-ready
 * workers, log local workers that exited. */
void ns_reg_tick(ns_bstate_t *s, double now);
/* Refuse an accepted worker now (REFUSE with reason, its work handed back). */
void ns_reg_refuse(ns_bstate_t *s, ns_bworker_t *w, const char *reason);
/* STOP to every known worker. */
void ns_reg_broadcast_stop(ns_bstate_t *s, const char *reason);
/* Forget every worker (the thread is ending). */
void ns_reg_clear(ns_bstate_t *s);

/* ---- batch (broker_batch.c) ------------------------------------------------ */

typedef struct {
    size_t start, n;              /* rows [start, start + n) of the batch */
    int done;                     /* a valid result was placed */
    int queued;                   /* waiting in the send queue */
    uint32_t attempt;             /* latest attempt sent, 0 before the first */
    uint64_t holder;              /* seq of the worker that took the latest attempt, 0 none */
    double deadline;              /* of the latest attempt, 0 when not in flight */
    double sent_at;               /* when the latest attempt was sent */
    uint32_t failures;            /* RESULTs with status 1 */
    uint32_t faults;              /* holders lost, deadlines missed while held */
    uint32_t speculative;         /* copies sent while a slow holder still works on it */
    double taken_at;              /* TAKE of the latest attempt */
    char fault_log[4][200];       /* the first of them: worker and how it ended */
    uint64_t placed_by;           /* seq of the worker whose values were placed */
} ns_bchunk_t;

/* Start evaluating n x d points into logl; the caller's pipe gets the
 * outcome (ns_batch_finish) when the batch completes or fails. */
void ns_batch_start(ns_bstate_t *s, const double *x, double *logl, size_t n, size_t d);
/* End the active batch with rv and answer the caller. */
void ns_batch_finish(ns_bstate_t *s, int rv);
/* Send queued chunks until the work socket would block. */
void ns_batch_pump(ns_bstate_t *s);
/* Worker seq is gone: re-queue its chunks and every untaken one. Returns
 * how many of its own chunks went back. (An ns_reg_hooks_t worker_gone.) */
size_t ns_batch_requeue_orphans(ns_bstate_t *s, uint64_t seq, const char *fault);
/* Read one message from the results socket (TAKE or RESULT). */
void ns_batch_on_results(ns_bstate_t *s);
/* Timers of the active batch: no workers, unclaimed chunks, deadlines. */
void ns_batch_check(ns_bstate_t *s, double now);

/* ---- the broker thread's state --------------------------------------------- */

struct ns_bstate {
    /* broker.c: set up once, read by all */
    zsock_t *pipe;                /* to the caller */
    ns_broker_t *owner;
    ns_broker_config_t *cfg;
    zsock_t *router, *push, *pull;
    zactor_t *auth;               /* ZAP handler (zauth) when CURVE is on */
    int auth_held;                /* this farm holds the process's ZAP endpoint */
    unsigned work_port;           /* bound port of push, announced in WELCOME */
    unsigned results_port;        /* bound port of pull */
    uint64_t run;                 /* random per start */
    double next_tick;             /* heartbeat / expiry / deadline scan */
    int terminated;
    ns_farm_stats_t stats;        /* counters; each part bumps its own */
    ns_reg_hooks_t hooks;         /* filled by broker.c, called by the registry */

    /* registry */
    uint64_t next_seq;            /* worker id numbers */
    ns_bworker_t **workers;
    size_t nworkers, capworkers;
    int pids[NS_BROKER_MAX_LOCAL];        /* local pool children still running */
    size_t npids;
    size_t nwatched;              /* local pool children ever watched */
    long respawned;               /* replacements started */
    int stopping;                 /* STOP sent: no more replacements */
    struct {
        int pid;
        char how[64];             /* "exited with status 1", "killed by signal 11" */
    } exits[16];                  /* the first local workers that ended */
    size_t nexits;

    /* batch: the one in progress */
    int active;
    uint64_t batch;               /* id of the current (or last) batch */
    const double *x;
    double *logl;
    size_t n, d, k;
    ns_bchunk_t *chunks;
    size_t *queue;                /* chunk indices to send, FIFO (room for 2k: a chunk may be queued twice, see stragglers) */
    size_t qhead, qlen;
    size_t remaining;             /* chunks not done */
    int chunked;                  /* chunks laid out (k known) */
    double sec_per_point;         /* running estimate from results, 0 = unknown */
    double spot_s;                /* coordinator seconds spent on spot checks */
    uint64_t spot_rng;            /* which points are checked (not the sampler's) */
    double *durations;            /* TAKE-to-RESULT seconds of this batch's done chunks */
    size_t ndurations;
    double t_start;
    double waiting_since;         /* no live workers since, 0 = not waiting */
    double last_wait_log;
};

#endif
