/*
 * worker/worker.h - one nessai-worker slot: connect, register, evaluate
 * chunks, heartbeat, reconnect (docs/protocol.md).
 */
#ifndef NESSAI_WORKER_H
#define NESSAI_WORKER_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ns_worker_config {
    const char *connect;          /* coordinator control endpoint, tcp://host:port */
    const char *model_override;   /* --model, NULL: the path the coordinator announces */
    int persistent;               /* after STOP, reconnect for the next run */
    int parent_pid;               /* local pool: exit when this parent is gone, 0 = none */
    int slot;                     /* index under one --slots launcher */
    const char *keys;             /* --keys DIR: CURVE with DIR/coordinator.key pinned, NULL: none */
    const char *cert;             /* --cert FILE: own secret key, NULL: DIR/worker.key_secret */
    const char *allow_model_dirs; /* --allow-model-dir, ':'-separated, NULL: none */
} ns_worker_config_t;

/* Exit codes (README.md, "Exit codes"). */
#define NS_WORKER_EXIT_OK 0       /* told to stop, or SIGTERM/SIGINT */
#define NS_WORKER_EXIT_FAIL 1     /* refused, lost as a local worker, fatal error */
#define NS_WORKER_EXIT_USAGE 2

/* Install the SIGTERM/SIGINT handlers the worker loop waits on. Call once,
 * before ns_worker_run and before any thread is started. */
int ns_worker_signals_init(void);

/* Run one slot until told to stop, interrupted, refused or (local pool
 * only) orphaned. Returns an NS_WORKER_EXIT_* code. */
int ns_worker_run(const ns_worker_config_t *cfg);

#ifdef __cplusplus
}
#endif
#endif
