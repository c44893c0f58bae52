/*
 * coordinator/farm/farm_stats.h - counters the farm keeps for result.json
 * ("farm" section) and for tests. No ZeroMQ types here.
 */
#ifndef NESSAI_FARM_STATS_H
#define NESSAI_FARM_STATS_H

#include <stdint.h>

typedef struct ns_farm_stats {
    uint64_t workers_seen;        /* workers accepted since start */
    uint64_t workers_live;        /* accepted and not lost or gone */
    uint64_t refused;             /* registrations refused */
    uint64_t workers_lost;        /* dropped for heartbeat silence */
    uint64_t workers_left;        /* said BYE */
    uint64_t batches;             /* evaluate() calls completed */
    uint64_t chunks;              /* chunks completed */
    uint64_t last_k;              /* chunk count of the last batch */
    uint64_t chunks_resent;       /* re-sends for any reason */
    uint64_t deadline_misses;     /* re-sends because a deadline passed */
    uint64_t speculative;         /* re-sends of chunks held by a straggler */
    uint64_t spot_checked;        /* points re-evaluated by the coordinator */
    uint64_t spot_skipped;        /* results not checked (too costly to re-evaluate) */
    uint64_t spot_failures;       /* workers refused for a spot-check mismatch */
    uint64_t handed_back;         /* chunks re-sent because a worker left */
    uint64_t failed_chunks;       /* RESULTs reporting a failed evaluation */
    uint64_t duplicate_results;   /* RESULTs for chunks already done */
    uint64_t stale_results;       /* RESULTs of another run or batch */
    uint64_t redone_evaluations;  /* points evaluated again (duplicates, stale) */
    uint64_t malformed_dropped;   /* messages that failed validation */
    uint64_t misaddressed_dropped;    /* data messages not from the worker they name */
    double likelihood_wall_s;     /* wall time inside evaluate() */
    double worker_cpu_s;          /* worker CPU time over accepted results */
    double worker_eval_wall_s;    /* worker wall time over accepted results */
} ns_farm_stats_t;

#endif
