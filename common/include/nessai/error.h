/*
 * nessai/error.h - the one error enum of the project.
 *
 * Functions return 0 (NS_OK) or a negative-free positive NS_ERR_* code;
 * the idiom is  if ((rv = f()) != NS_OK) return rv;
 * Anything caused from outside the program (a peer's bytes, a model's
 * output, a config value, an allocation) is an error code, never an assert.
 */
#ifndef NESSAI_ERROR_H
#define NESSAI_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ns_err {
    NS_OK = 0,
    NS_ERR_NOMEM,       /* allocation failed */
    NS_ERR_INVAL,       /* invalid argument or configuration value */
    NS_ERR_IO,          /* file or socket I/O failed */
    NS_ERR_MODEL,       /* the model plugin failed (load, init or evaluation) */
    NS_ERR_PROTO,       /* malformed or incompatible message */
    NS_ERR_TIMEOUT,     /* a deadline passed */
    NS_ERR_REFUSED,     /* the peer refused us (model/protocol mismatch) */
    NS_ERR_STATE,       /* operation not valid in the current state */
    NS_ERR_CORRUPT,     /* stored data failed its checks (checkpoint, weights) */
    NS_ERR_NUMERIC,     /* a numerical failure (non-finite where finite needed) */
    NS_ERR_INTERRUPTED, /* stopped by a signal or a requested shutdown */
    NS_ERR_FARM,        /* the worker farm could not complete a batch */
    NS_ERR__COUNT
} ns_err_t;

/* Static, never NULL. */
const char *ns_strerror(int err);

/* Format the message of a failure into err, the (err, errlen) pair that
 * functions fill to say why they failed: truncated to errlen bytes,
 * always terminated; nothing happens when err is NULL or errlen is 0. */
void ns_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
