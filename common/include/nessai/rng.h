/*
 * nessai/rng.h - seeded random numbers (GSL mt19937 underneath).
 *
 * Each consumer (sampler, flow, proposal) owns its generator, seeded from
 * --seed with ns_rng_new(seed, stream) so that streams never overlap in
 * practice and a run is reproducible. The full state can be saved and
 * restored byte for byte (checkpoints continue exactly).
 */
#ifndef NESSAI_RNG_H
#define NESSAI_RNG_H

#include <stddef.h>
#include <stdint.h>
#include "nessai/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ns_rng ns_rng_t;

/* New generator for (seed, stream). Caller owns the return value; NULL on
 * allocation failure. */
ns_rng_t *ns_rng_new(uint64_t seed, uint32_t stream);
void ns_rng_destroy(ns_rng_t **self_p);

/* U(0,1), excluding 0 and 1. */
double ns_rng_uniform(ns_rng_t *self);
/* N(0,1). */
double ns_rng_gaussian(ns_rng_t *self);
/* Uniform integer in [0, n), n >= 1. */
uint64_t ns_rng_uint(ns_rng_t *self, uint64_t n);
/* Fill a with a uniformly random permutation of 0..n-1. */
void ns_rng_permutation(ns_rng_t *self, size_t *a, size_t n);
/* Shuffle n elements of size bytes in place (Fisher-Yates). */
void ns_rng_shuffle(ns_rng_t *self, void *base, size_t n, size_t size);

/* The plugin-facing view of this generator (valid while self lives). */
nessai_rng_api_t ns_rng_api(ns_rng_t *self);

/* Serialised state: ns_rng_state_size() bytes. */
size_t ns_rng_state_size(const ns_rng_t *self);
void ns_rng_state_save(const ns_rng_t *self, void *buf);
/* Returns NS_OK or NS_ERR_CORRUPT if len does not match. */
int ns_rng_state_load(ns_rng_t *self, const void *buf, size_t len);

struct ns_buf;
/* The state into a checkpoint buffer (its length, then its bytes; a failed
 * allocation marks the buffer failed), and back: NS_ERR_CORRUPT when the
 * saved length is not this generator's. */
void ns_rng_put(struct ns_buf *b, const ns_rng_t *self);
int ns_rng_get(struct ns_buf *b, ns_rng_t *self);

/* A fresh 32-bit seed from the OS (used when --seed is not given). */
uint64_t ns_rng_random_seed(void);

#ifdef __cplusplus
}
#endif
#endif
