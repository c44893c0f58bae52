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
    zframe_t *routing;            /* control ROUTER identity */
    zframe_t *data;               /* data ROUTER identity of its bound connection, NULL: none */
    uint64_t token;               /* sent in WELCOME only; an ASK with it binds a connection */
    uint64_t sent;                /* CHUNKs sent on the bound connection (ASK's received) */
    int asking;                   /* asked for work, nothing sent since (bound, live) */
    double unbound_since;         /* live without a bound data connection since, 0: bound */
    int unbound_warned;           /* ... and said so */
    char host[128];               /* from HELLO */
    uint32_t pid;                 /* from HELLO */
    ns_bwstate_t state;
    double last_seen;             /* any message, for heartbeat expiry */
    double welcomed_at;           /* WELCOME sent */
    int stuck;                    /* holds an attempt past its deadline (batch) */
    uint64_t spot_checked;        /* its points re-evaluated by the coordinator */
    int evaluating;               /* was sent an attempt and has not answered it (batch) */
    uint64_t cur_batch;           /* that attempt: batch, chunk index, attempt number */
    uint32_t cur_chunk;
    uint32_t cur_attempt;
    double cur_sent_at;           /* when it was sent */
} ns_bworker_t;

/* What the registry tells the batch side. */
typedef struct {
    /* Worker seq is gone (lost, left, or registering again), or no longer
     * holds what was sent to it (it dropped the attempt, or its data
     * connection changed): hand its work back. fault says how it ended when
     * that counts against the chunk it held ("killed by signal 11"), NULL
     * otherwise. Returns how many of the chunks last sent to it went back. */
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
/* The worker whose data connection has this routing id, NULL if none is bound to it. */
ns_bworker_t *ns_reg_find_data(ns_bstate_t *s, zframe_t *routing);
/* Live workers that asked for work and hold nothing. */
size_t ns_reg_idle_count(const ns_bstate_t *s);
/* 1 if some live worker asked for work and holds nothing. */
int ns_reg_any_idle(const ns_bstate_t *s);
/* The next worker (in turn) that asked for work, NULL if none. */
ns_bworker_t *ns_reg_next_asking(ns_bstate_t *s);
/* A send on w's data connection failed (it is gone): forget the binding;
 * its next ASK binds again. */
void ns_reg_unbind(ns_bstate_t *s, ns_bworker_t *w);
/* An ASK from the data connection routing: bind it, or mark the worker idle. */
void ns_reg_on_ask(ns_bstate_t *s, zframe_t *routing, const ns_msg_t *m);
/* A data message that does not come from the worker it names: dropped,
 * counted, logged at debug and in a warning at most every 10 s. */
void ns_reg_misaddressed(ns_bstate_t *s, const char *what);
/* A new batch: no worker is stuck on it. */
void ns_reg_new_batch(ns_bstate_t *s);
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
    uint64_t holder;              /* seq of the worker the latest attempt went to, 0 none */
    double deadline;              /* of the latest attempt, 0 when not in flight */
    double sent_at;               /* when the latest attempt was sent */
    uint32_t failures;            /* RESULTs with status 1 */
    uint32_t faults;              /* holders lost, deadlines missed while held */
    uint32_t speculative;         /* copies sent while a slow holder still works on it */
    char fault_log[4][200];       /* the first of them: worker and how it ended */
    uint64_t placed_by;           /* seq of the worker whose values were placed */
} ns_bchunk_t;

/* Start evaluating n x d points into logl; the caller's pipe gets the
 * outcome (ns_batch_finish) when the batch completes or fails. */
void ns_batch_start(ns_bstate_t *s, const double *x, double *logl, size_t n, size_t d);
/* End the active batch with rv and answer the caller. */
void ns_batch_finish(ns_bstate_t *s, int rv);
/* Send queued chunks, one to each worker that asked, while both last. */
void ns_batch_pump(ns_bstate_t *s);
/* Worker seq is gone: re-queue the chunks last sent to it. Returns how
 * many went back. (An ns_reg_hooks_t worker_gone.) */
size_t ns_batch_requeue_orphans(ns_bstate_t *s, uint64_t seq, const char *fault);
/* Read one message from the data socket (ASK or RESULT). */
void ns_batch_on_data(ns_bstate_t *s);
/* Timers of the active batch: no workers, stragglers, deadlines. */
void ns_batch_check(ns_bstate_t *s, double now);

/* ---- the broker thread's state --------------------------------------------- */

struct ns_bstate {
    /* broker.c: set up once, read by all */
    zsock_t *pipe;                /* to the caller */
    ns_broker_t *owner;
    ns_broker_config_t *cfg;
    zsock_t *router;              /* control */
    zsock_t *data;                /* data: ASK, CHUNK, RESULT (ZMQ_ROUTER_MANDATORY) */
    zactor_t *auth;               /* ZAP handler (zauth) when CURVE is on */
    int auth_held;                /* this farm holds the process's ZAP endpoint */
    unsigned data_port;           /* bound port of data, announced in WELCOME */
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
    size_t ask_cursor;            /* where ns_reg_next_asking looks first */
    double misaddressed_warned;   /* last warning about misaddressed messages */
    uint64_t misaddressed_unwarned;   /* dropped since then */

    /* batch: the one in progress */
    int active;
    uint64_t batch;               /* id of the current (or last) batch */
    const double *x;
    double *logl;
    size_t n, d, k;
    ns_bchunk_t *chunks;
    size_t *queue;                /* chunk indices to send, FIFO (a chunk is queued at most once) */
    size_t qhead, qlen;
    size_t remaining;             /* chunks not done */
    int chunked;                  /* chunks laid out (k known) */
    double sec_per_point;         /* running estimate from results, 0 = unknown */
    double spot_s;                /* coordinator seconds spent on spot checks */
    uint64_t spot_rng;            /* which points are checked (not the sampler's) */
    double *durations;            /* send-to-RESULT seconds of this batch's done chunks */
    size_t ndurations;
    double t_start;
    double waiting_since;         /* no live workers since, 0 = not waiting */
    double last_wait_log;
};

#endif
