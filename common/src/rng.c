/* rng.c - seeded GSL mt19937 generators with byte-exact state save/restore. */
#include "nessai/rng.h"
#include "nessai/error.h"
#include "nessai/serial.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ns_rng {
    gsl_rng *r;   /* owned GSL generator */
};

/* splitmix64: spreads (seed, stream) into a well-mixed 32-bit GSL seed. */
static uint64_t s_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

ns_rng_t *ns_rng_new(uint64_t seed, uint32_t stream)
{
    ns_rng_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!self->r) {
        free(self);
        return NULL;
    }
    uint64_t s = stream == 0 ? seed : s_mix(seed ^ s_mix((uint64_t)stream));
    unsigned long gs = (unsigned long)(s & 0xffffffffUL);
    if (gs == 0)
        gs = 4357; /* GSL maps 0 to its default; keep streams distinct */
    gsl_rng_set(self->r, gs);
    return self;
}

void ns_rng_destroy(ns_rng_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gsl_rng_free((*self_p)->r);
    free(*self_p);
    *self_p = NULL;
}

double ns_rng_uniform(ns_rng_t *self) { return gsl_rng_uniform_pos(self->r); }
double ns_rng_gaussian(ns_rng_t *self) { return gsl_ran_gaussian_ziggurat(self->r, 1.0); }

uint64_t ns_rng_uint(ns_rng_t *self, uint64_t n)
{
    if (n <= 1)
        return 0;
    if (n <= 0xffffffffUL)
        return gsl_rng_uniform_int(self->r, (unsigned long)n);
    /* 64-bit range: combine two draws, rejection to avoid bias */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do {
        v = ((uint64_t)gsl_rng_get(self->r) << 32) | (uint64_t)gsl_rng_get(self->r);
    } while (v >= lim);
    return v % n;
}

void ns_rng_permutation(ns_rng_t *self, size_t *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] = i;
    ns_rng_shuffle(self, a, n, sizeof *a);
}

void ns_rng_shuffle(ns_rng_t *self, void *base, size_t n, size_t size)
{
    if (n < 2)
        return;
    unsigned char *p = base;
    unsigned char tmp[256];
    unsigned char *t = size <= sizeof tmp ? tmp : malloc(size);
    if (!t)
        return;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)ns_rng_uint(self, (uint64_t)i + 1);
        if (j != i) {
            memcpy(t, p + i * size, size);
            memcpy(p + i * size, p + j * size, size);
            memcpy(p + j * size, t, size);
        }
    }
    if (t != tmp)
        free(t);
}

static double s_api_uniform(void *state) { return ns_rng_uniform(state); }
static double s_api_gaussian(void *state) { return ns_rng_gaussian(state); }

nessai_rng_api_t ns_rng_api(ns_rng_t *self)
{
    nessai_rng_api_t api = {self, s_api_uniform, s_api_gaussian};
    return api;
}

size_t ns_rng_state_size(const ns_rng_t *self) { return gsl_rng_size(self->r); }

void ns_rng_state_save(const ns_rng_t *self, void *buf)
{
    memcpy(buf, gsl_rng_state(self->r), gsl_rng_size(self->r));
}

int ns_rng_state_load(ns_rng_t *self, const void *buf, size_t len)
{
    if (len != gsl_rng_size(self->r))
        return NS_ERR_CORRUPT;
    memcpy(gsl_rng_state(self->r), buf, len);
    return NS_OK;
}

uint64_t ns_rng_random_seed(void)
{
    uint32_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&v, sizeof v, 1, f) != 1)
            v = 0;
        fclose(f);
    }
    if (v == 0)
        v = (uint32_t)(time(NULL) ^ ((uint64_t)getpid() << 16));
    return v;
}

void ns_rng_put(ns_buf_t *b, const ns_rng_t *self)
{
    size_t n = ns_rng_state_size(self);
    unsigned char *t = malloc(n ? n : 1);
    if (!t) {
        b->failed = 1;
        return;
    }
    ns_rng_state_save(self, t);
    ns_buf_put_u64(b, n);
    ns_buf_put_bytes(b, t, n);
    free(t);
}

int ns_rng_get(ns_buf_t *b, ns_rng_t *self)
{
    uint64_t n;
    int rc = ns_buf_get_u64(b, &n);
    if (rc != NS_OK)
        return rc;
    if (n != ns_rng_state_size(self) || n > ns_buf_remaining(b))
        return NS_ERR_CORRUPT;
    unsigned char *t = malloc(n ? n : 1);
    if (!t)
        return NS_ERR_NOMEM;
    rc = ns_buf_get_bytes(b, t, n);
    if (rc == NS_OK)
        rc = ns_rng_state_load(self, t, n);
    free(t);
    return rc;
}
