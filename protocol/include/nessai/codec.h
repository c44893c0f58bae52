/*
 * nessai/codec.h - the farm wire format (docs/protocol.md).
 *
 * One message is one msgpack array: signature, version, type, then the
 * type's fields in a fixed order. ns_msg_t holds the union of all fields;
 * each type reads and writes only its own. Decoding never trusts the bytes:
 * every field is checked (type, count, string and bin lengths) before the
 * message is handed back. Part of nessai_protocol (protocol/), shared by
 * the coordinator's farm and nessai-worker.
 */
#ifndef NESSAI_CODEC_H
#define NESSAI_CODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NS_FARM_SIGNATURE "NSFARM"
#define NS_FARM_PROTOCOL_VERSION 2u
#define NS_FARM_MAX_STR 4096        /* bytes per string field */
#define NS_FARM_MAX_FIELDS 24       /* elements per message array */
#define NS_FARM_CONTROL_MAX (1u << 20)  /* ZMQ_MAXMSGSIZE of control sockets */

typedef enum ns_msg_type {
    NS_MSG_HELLO = 1,
    NS_MSG_WELCOME = 2,
    NS_MSG_READY = 3,
    NS_MSG_ACCEPT = 4,
    NS_MSG_REFUSE = 5,
    NS_MSG_HEARTBEAT = 6,
    NS_MSG_BYE = 7,
    NS_MSG_STOP = 8,
    NS_MSG_CHUNK = 9,
    NS_MSG_ASK = 10,
    NS_MSG_RESULT = 11,
    NS_MSG__COUNT
} ns_msg_type_t;

/* A string field: points into the decoded bytes, not NUL-terminated. */
typedef struct ns_str {
    const char *ptr;
    size_t len;
} ns_str_t;

typedef struct ns_msg {
    uint32_t version;        /* set by decode; encode always writes ours */
    uint32_t type;           /* ns_msg_type_t */
    uint64_t run;            /* coordinator start id */
    uint64_t batch;          /* evaluate() call number */
    uint64_t max_message;    /* WELCOME: data-plane message limit, bytes */
    uint64_t token;          /* WELCOME/ASK: the worker's secret for binding its data connection */
    uint64_t received;       /* ASK: CHUNKs the worker received on its data connection */
    uint32_t chunk;          /* chunk index in its batch */
    uint32_t attempt;        /* 1 + number of re-sends */
    uint32_t pid;            /* HELLO: worker process id */
    uint32_t slot;           /* HELLO: slot index under one launcher */
    uint32_t dim;            /* WELCOME/READY: model dimension */
    uint32_t status;         /* READY/RESULT: 0 ok, 1 failed */
    uint32_t n;              /* CHUNK/RESULT: points */
    uint32_t d;              /* CHUNK: dimension of the points */
    uint32_t data_port;      /* WELCOME: coordinator data ROUTER port */
    uint32_t heartbeat_ms;   /* WELCOME: heartbeat interval */
    uint32_t liveness;       /* WELCOME: missed heartbeats before "lost" */
    uint32_t canary_n;       /* WELCOME: canary points */
    ns_str_t host;           /* HELLO */
    ns_str_t worker;         /* WELCOME/ASK/RESULT: worker id */
    ns_str_t model_path;     /* WELCOME */
    ns_str_t model_args;     /* WELCOME */
    ns_str_t model_name;     /* WELCOME/READY */
    ns_str_t model_hash;     /* WELCOME/READY */
    ns_str_t text;           /* HELLO model_override, READY/RESULT error, REFUSE/BYE/STOP reason */
    const uint8_t *data;     /* bin field: x, logl, canary_x or canary_logl */
    size_t data_len;         /* bytes */
    double cpu_s;            /* RESULT: worker CPU seconds for the chunk */
    double wall_s;           /* RESULT: worker wall seconds for the chunk */
} ns_msg_t;

/* Outcome of ns_msg_decode besides NS_OK / NS_ERR_PROTO. */
#define NS_MSG_OTHER_VERSION (-1)

/* Name of a message type ("HELLO"), "?" if unknown. Static. */
const char *ns_msg_type_name(uint32_t type);

/* A zeroed message of the given type. */
void ns_msg_init(ns_msg_t *msg, ns_msg_type_t type);

/* Encode msg (its type's fields) into a malloc'ed buffer.
 * Returns NS_OK and sets *out (caller frees) and *len, or NS_ERR_NOMEM /
 * NS_ERR_INVAL (a string longer than NS_FARM_MAX_STR, bad type). */
int ns_msg_encode(const ns_msg_t *msg, uint8_t **out, size_t *len);

/* Decode and validate len bytes. Returns
 *   NS_OK                 a valid message of this version (or any REFUSE);
 *   NS_MSG_OTHER_VERSION  signature and type readable, another version:
 *                         msg->version and msg->type are set, nothing else;
 *   NS_ERR_PROTO          anything else (msg contents undefined).
 * String and bin fields point into bytes, which must outlive msg. */
int ns_msg_decode(const void *bytes, size_t len, ns_msg_t *msg);

/* Copy count little-endian doubles from msg->data (which must hold exactly
 * count * 8 bytes, else NS_ERR_PROTO) into out. */
int ns_msg_get_doubles(const ns_msg_t *msg, double *out, size_t count);

/* Point msg->data at count doubles in little-endian order. On little-endian
 * hosts this borrows v; elsewhere it converts into scratch (count * 8 bytes). */
void ns_msg_set_doubles(ns_msg_t *msg, const double *v, size_t count, uint8_t *scratch);

/* 1 on little-endian hosts (where ns_msg_set_doubles needs no scratch). */
int ns_msg_host_little_endian(void);

/* NUL-terminated copy of a string field into buf (truncated to size). */
const char *ns_str_copy(ns_str_t s, char *buf, size_t size);
/* 1 if s equals the C string c. */
int ns_str_eq(ns_str_t s, const char *c);
/* A string field from a C string (NULL gives ""). */
ns_str_t ns_str_of(const char *c);

#ifdef __cplusplus
}
#endif
#endif
