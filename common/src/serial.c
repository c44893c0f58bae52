/* serial.c - bounds-checked little-endian byte buffers and CRC-32. */
#include "nessai/serial.h"
#include "nessai/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void ns_buf_init(ns_buf_t *b) { memset(b, 0, sizeof *b); }

void ns_buf_view(ns_buf_t *b, const void *data, size_t len)
{
    memset(b, 0, sizeof *b);
    b->data = (uint8_t *)data;
    b->len = len;
    b->cap = 0; /* cap 0 marks a view: never freed, never grown */
}

void ns_buf_free(ns_buf_t *b)
{
    if (b->cap)
        free(b->data);
    memset(b, 0, sizeof *b);
}

int ns_buf_error(const ns_buf_t *b) { return b->failed ? NS_ERR_NOMEM : NS_OK; }
size_t ns_buf_remaining(const ns_buf_t *b) { return b->len - b->pos; }

static int s_reserve(ns_buf_t *b, size_t more)
{
    if (b->failed)
        return 0;
    if (b->len + more <= b->cap)
        return 1;
    if (b->cap == 0 && b->data) { /* a view cannot be written */
        b->failed = 1;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more) {
        if (cap > SIZE_MAX / 2) {
            b->failed = 1;
            return 0;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

void ns_buf_put_bytes(ns_buf_t *b, const void *p, size_t n)
{
    if (n == 0 || !s_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void s_put_le(ns_buf_t *b, uint64_t v, int n)
{
    uint8_t tmp[8];
    for (int i = 0; i < n; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    ns_buf_put_bytes(b, tmp, (size_t)n);
}

void ns_buf_put_u8(ns_buf_t *b, uint8_t v) { s_put_le(b, v, 1); }
void ns_buf_put_u32(ns_buf_t *b, uint32_t v) { s_put_le(b, v, 4); }
void ns_buf_put_u64(ns_buf_t *b, uint64_t v) { s_put_le(b, v, 8); }
void ns_buf_put_i64(ns_buf_t *b, int64_t v) { s_put_le(b, (uint64_t)v, 8); }

void ns_buf_put_f64(ns_buf_t *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    s_put_le(b, u, 8);
}

void ns_buf_put_f64s(ns_buf_t *b, const double *v, size_t n)
{
    ns_buf_put_u64(b, n);
    for (size_t i = 0; i < n; i++)
        ns_buf_put_f64(b, v[i]);
}

void ns_buf_put_i64s(ns_buf_t *b, const int64_t *v, size_t n)
{
    ns_buf_put_u64(b, n);
    for (size_t i = 0; i < n; i++)
        ns_buf_put_i64(b, v[i]);
}

void ns_buf_put_str(ns_buf_t *b, const char *s)
{
    if (!s) {
        ns_buf_put_u8(b, 0);
        return;
    }
    size_t n = strlen(s);
    ns_buf_put_u8(b, 1);
    ns_buf_put_u64(b, n);
    ns_buf_put_bytes(b, s, n);
}

void ns_buf_put_tag(ns_buf_t *b, const char tag[4], uint32_t version)
{
    ns_buf_put_bytes(b, tag, 4);
    ns_buf_put_u32(b, version);
}

int ns_buf_get_bytes(ns_buf_t *b, void *p, size_t n)
{
    if (n > b->len - b->pos)
        return NS_ERR_CORRUPT;
    if (n)
        memcpy(p, b->data + b->pos, n);
    b->pos += n;
    return NS_OK;
}

static int s_get_le(ns_buf_t *b, uint64_t *v, int n)
{
    uint8_t tmp[8];
    int rc = ns_buf_get_bytes(b, tmp, (size_t)n);
    if (rc)
        return rc;
    uint64_t x = 0;
    for (int i = 0; i < n; i++)
        x |= (uint64_t)tmp[i] << (8 * i);
    *v = x;
    return NS_OK;
}

int ns_buf_get_u8(ns_buf_t *b, uint8_t *v)
{
    uint64_t x;
    int rc = s_get_le(b, &x, 1);
    if (!rc)
        *v = (uint8_t)x;
    return rc;
}

int ns_buf_get_u32(ns_buf_t *b, uint32_t *v)
{
    uint64_t x;
    int rc = s_get_le(b, &x, 4);
    if (!rc)
        *v = (uint32_t)x;
    return rc;
}

int ns_buf_get_u64(ns_buf_t *b, uint64_t *v) { return s_get_le(b, v, 8); }

int ns_buf_get_i64(ns_buf_t *b, int64_t *v)
{
    uint64_t x;
    int rc = s_get_le(b, &x, 8);
    if (!rc)
        *v = (int64_t)x;
    return rc;
}

int ns_buf_get_f64(ns_buf_t *b, double *v)
{
    uint64_t x;
    int rc = s_get_le(b, &x, 8);
    if (!rc)
        memcpy(v, &x, sizeof *v);
    return rc;
}

/* Fixed-length arrays of 8-byte elements into the caller's buffer (f64 and
 * i64 share the encoding); the stored length must be exactly n. */
static int s_get_array8_n(ns_buf_t *b, void *v, size_t n)
{
    uint64_t m;
    int rc = ns_buf_get_u64(b, &m);
    if (rc)
        return rc;
    if (m != n || n > ns_buf_remaining(b) / 8)
        return NS_ERR_CORRUPT;
    for (size_t i = 0; i < n; i++) {
        uint64_t x;
        ns_buf_get_u64(b, &x);
        memcpy((unsigned char *)v + 8 * i, &x, 8);
    }
    return NS_OK;
}

int ns_buf_get_f64s_n(ns_buf_t *b, double *v, size_t n) { return s_get_array8_n(b, v, n); }
int ns_buf_get_i64s_n(ns_buf_t *b, int64_t *v, size_t n) { return s_get_array8_n(b, v, n); }

/* Arrays of 8-byte little-endian elements: f64 and i64 share the encoding
 * (IEEE bits, two's complement), so one reader fills either. */
static int s_get_array8(ns_buf_t *b, void **v, size_t *n, size_t max_n)
{
    *v = NULL;
    *n = 0;
    uint64_t m;
    int rc = ns_buf_get_u64(b, &m);
    if (rc)
        return rc;
    if (m > max_n || m > ns_buf_remaining(b) / 8)
        return NS_ERR_CORRUPT;
    unsigned char *p = malloc((m ? m : 1) * 8);
    if (!p)
        return NS_ERR_NOMEM;
    for (size_t i = 0; i < m; i++) {
        uint64_t x;
        ns_buf_get_u64(b, &x);
        memcpy(p + 8 * i, &x, 8);
    }
    *v = p;
    *n = m;
    return NS_OK;
}

int ns_buf_get_f64s(ns_buf_t *b, double **v, size_t *n, size_t max_n)
{
    return s_get_array8(b, (void **)v, n, max_n);
}

int ns_buf_get_i64s(ns_buf_t *b, int64_t **v, size_t *n, size_t max_n)
{
    return s_get_array8(b, (void **)v, n, max_n);
}

int ns_buf_get_str(ns_buf_t *b, char **s)
{
    *s = NULL;
    uint8_t present;
    int rc = ns_buf_get_u8(b, &present);
    if (rc)
        return rc;
    if (present == 0)
        return NS_OK;
    if (present != 1)
        return NS_ERR_CORRUPT;
    uint64_t n;
    if ((rc = ns_buf_get_u64(b, &n)))
        return rc;
    if (n > ns_buf_remaining(b))
        return NS_ERR_CORRUPT;
    char *p = malloc((size_t)n + 1);
    if (!p)
        return NS_ERR_NOMEM;
    ns_buf_get_bytes(b, p, (size_t)n);
    p[n] = '\0';
    if (strlen(p) != n) { /* embedded NUL: not a string we wrote */
        free(p);
        return NS_ERR_CORRUPT;
    }
    *s = p;
    return NS_OK;
}

int ns_buf_get_tag(ns_buf_t *b, const char tag[4], uint32_t *version)
{
    char t[4];
    int rc = ns_buf_get_bytes(b, t, 4);
    if (rc)
        return rc;
    if (memcmp(t, tag, 4) != 0)
        return NS_ERR_CORRUPT;
    return ns_buf_get_u32(b, version);
}

static uint32_t s_crc_table[256];
static pthread_once_t s_crc_once = PTHREAD_ONCE_INIT;

static void s_crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        s_crc_table[i] = c;
    }
}

uint32_t ns_crc32(const void *p, size_t n)
{
    pthread_once(&s_crc_once, s_crc_init);
    const uint8_t *s = p;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = s_crc_table[(c ^ s[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}
