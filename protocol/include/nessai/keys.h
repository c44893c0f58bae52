/*
 * nessai/keys.h - CurveZMQ key files of the farm (docs/protocol.md §8).
 *
 * A key pair is two CZMQ certificate files: NAME.key (public key) and
 * NAME.key_secret (public and secret key, mode 0600). Part of
 * nessai_protocol (protocol/), shared by the coordinator's farm,
 * nessai-worker and nessai-keygen.
 */
#ifndef NESSAI_KEYS_H
#define NESSAI_KEYS_H

#include <czmq.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NS_KEYS_COORDINATOR "coordinator"   /* the coordinator's pair in a keys directory */
#define NS_KEYS_WORKER "worker"             /* the shared client pair */
#define NS_KEYS_ALLOWED "workers"           /* default allow-list subdirectory */
#define NS_KEYS_MODEL "model"               /* the announced model path */

/* 1 if libzmq supports CURVE. */
int ns_keys_available(void);

/* Create dir (mode 0700) if missing. NS_OK or NS_ERR_IO with a reason. */
int ns_keys_mkdir(const char *dir, char *err, size_t errlen);

/* Write a new pair dir/name.key and dir/name.key_secret (0600); dir must
 * exist. Existing files are replaced. */
int ns_keys_generate(const char *dir, const char *name, char *err, size_t errlen);

/* Load a secret key file (NAME.key_secret). Refused when the file is
 * readable by group or others, or holds no secret key. Caller destroys. */
zcert_t *ns_keys_load_secret(const char *path, char *err, size_t errlen);

/* Load a public key file (NAME.key). Caller destroys. */
zcert_t *ns_keys_load_public(const char *path, char *err, size_t errlen);

/* The coordinator's keys directory, ready for a run: dir (0700) with
 * coordinator and worker pairs, workers/worker.key and the model file
 * holding model_path; existing key files are kept. */
int ns_keys_prepare_run(const char *dir, const char *model_path, char *err, size_t errlen);

/* Make sock a CURVE server with this certificate. */
void ns_keys_server(zsock_t *sock, zcert_t *server);
/* Make sock a CURVE client with its own certificate, pinning the
 * server's public key. */
void ns_keys_client(zsock_t *sock, zcert_t *client, zcert_t *server_public);

/* 1 if the host of a tcp:// endpoint is a loopback address
 * (127.x.y.z, localhost, [::1]). */
int ns_keys_loopback(const char *endpoint);

#ifdef __cplusplus
}
#endif
#endif
