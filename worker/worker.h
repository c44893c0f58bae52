/*
 * worker/worker.h - one nessai-worker slot: connect, register, evaluate
 * chunks, heartbeat, reconnect (docs/protocol.md).
 */
#ifndef NESSAI_WORKER_H
#define NESSAI_WORKER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ns_worker_config {
    const char *connect;          /* coordinator control endpoint, tcp://host:port */
    const char *model_override;   /* --model, NULL: the path the coordinator announces */
    int persistent;               /* after STOP, reconnect for the next run */
    int parent_pid;               /* local pool: exit when this parent is gone, 0 = none */
    int slot;                     /* index under one --slots launcher */
    const char *connect_file;     /* --connect-file: read connect from it, follow its changes */
    double max_wait;              /* --max-wait: give up after this long unanswered, 0 = never */
    const char *keys;             /* --keys DIR: CURVE with DIR/coordinator.key pinned, NULL: none */
    const char *cert;             /* --cert FILE: own secret key, NULL: DIR/worker.key_secret */
    const char *allow_model_dirs; /* --allow-model-dir, ':'-separated, NULL: none */
    int keys_beside_address;      /* no --keys/--insecure with --connect-file: use the
                                   * farm-keys directory beside the file when there */
} ns_worker_config_t;

/* Exit codes (README.md, "Exit codes"). */
#define NS_WORKER_EXIT_OK 0       /* told to stop, or SIGTERM/SIGINT */
#define NS_WORKER_EXIT_FAIL 1     /* refused, lost as a local worker, fatal error */
#define NS_WORKER_EXIT_USAGE 2
#define NS_WORKER_EXIT_NO_COORDINATOR 3   /* no answer within --max-wait */

/* Install the SIGTERM/SIGINT handlers the worker loop waits on. Call once,
 * before ns_worker_run and before any thread is started. */
int ns_worker_signals_init(void);

/* Run one slot until told to stop, interrupted, refused or (local pool
 * only) orphaned. Returns an NS_WORKER_EXIT_* code. */
int ns_worker_run(const ns_worker_config_t *cfg);

/* --connect-file (address.c): the coordinator's <output>/farm.address,
 * one line "tcp://host:port". A stamp tells one version of the file from
 * the next (the coordinator replaces it by a rename). */
typedef struct ns_address_stamp {
    unsigned long long dev, ino, size;
    long long mtime_s;
    long mtime_ns;
} ns_address_stamp_t;

/* Read the endpoint from path: NS_OK with the endpoint and the file's stamp;
 * NS_ERR_IO when it cannot be read (not there yet), NS_ERR_INVAL when it
 * holds no tcp://host:port line; the reason is in why. */
int ns_address_read(const char *path, char *endpoint, size_t size, ns_address_stamp_t *stamp,
                    char *why, size_t whylen);

/* 1 if path is no longer the version stamp describes (replaced, changed or
 * removed), else 0. */
int ns_address_changed(const char *path, const ns_address_stamp_t *stamp);

#ifdef __cplusplus
}
#endif
#endif
