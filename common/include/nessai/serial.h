/*
 * nessai/serial.h - a growable byte buffer with typed, bounds-checked
 * little-endian put/get, used to save and restore state (checkpoints,
 * flow weights). Readers never trust the bytes: every get checks the
 * remaining length and returns NS_ERR_CORRUPT instead of reading past it.
 *
 * Writers: puts never fail individually; an allocation failure makes the
 * buffer "failed" and ns_buf_error() returns NS_ERR_NOMEM at the end.
 */
#ifndef NESSAI_SERIAL_H
#define NESSAI_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ns_buf {
    uint8_t *data;   /* owned */
    size_t len;      /* bytes written */
    size_t cap;      /* bytes allocated */
    size_t pos;      /* read cursor */
    int failed;      /* an allocation failed while writing */
} ns_buf_t;

void ns_buf_init(ns_buf_t *b);
/* Read-only view of existing bytes (not copied, not freed by ns_buf_free). */
void ns_buf_view(ns_buf_t *b, const void *data, size_t len);
void ns_buf_free(ns_buf_t *b);
int ns_buf_error(const ns_buf_t *b);          /* NS_OK or NS_ERR_NOMEM */
size_t ns_buf_remaining(const ns_buf_t *b);

void ns_buf_put_u8(ns_buf_t *b, uint8_t v);
void ns_buf_put_u32(ns_buf_t *b, uint32_t v);
void ns_buf_put_u64(ns_buf_t *b, uint64_t v);
void ns_buf_put_i64(ns_buf_t *b, int64_t v);
void ns_buf_put_f64(ns_buf_t *b, double v);
void ns_buf_put_bytes(ns_buf_t *b, const void *p, size_t n);
/* Length-prefixed (u64) arrays and strings (NULL string stored as absent). */
void ns_buf_put_f64s(ns_buf_t *b, const double *v, size_t n);
void ns_buf_put_i64s(ns_buf_t *b, const int64_t *v, size_t n);
void ns_buf_put_str(ns_buf_t *b, const char *s);
/* A section tag: 4 ASCII chars + u32 version; readers check both. */
void ns_buf_put_tag(ns_buf_t *b, const char tag[4], uint32_t version);

int ns_buf_get_u8(ns_buf_t *b, uint8_t *v);
int ns_buf_get_u32(ns_buf_t *b, uint32_t *v);
int ns_buf_get_u64(ns_buf_t *b, uint64_t *v);
int ns_buf_get_i64(ns_buf_t *b, int64_t *v);
int ns_buf_get_f64(ns_buf_t *b, double *v);
int ns_buf_get_bytes(ns_buf_t *b, void *p, size_t n);
/* Arrays with a known expected length: NS_ERR_CORRUPT if it differs. */
int ns_buf_get_f64s_n(ns_buf_t *b, double *v, size_t n);
int ns_buf_get_i64s_n(ns_buf_t *b, int64_t *v, size_t n);
/* Arrays of unknown length: *v is malloc'ed (caller frees), max_n bounds it. */
int ns_buf_get_f64s(ns_buf_t *b, double **v, size_t *n, size_t max_n);
int ns_buf_get_i64s(ns_buf_t *b, int64_t **v, size_t *n, size_t max_n);
/* *s is malloc'ed (caller frees) or NULL if stored absent. */
int ns_buf_get_str(ns_buf_t *b, char **s);
/* NS_ERR_CORRUPT unless the next tag is exactly tag; *version returned. */
int ns_buf_get_tag(ns_buf_t *b, const char tag[4], uint32_t *version);

/* CRC-32 (IEEE) of n bytes, for file checksums. */
uint32_t ns_crc32(const void *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
