/* ckpt_format.c - the checkpoint file image: header encode/decode and checks.
 *
 * Layout (little-endian; docs/checkpoint.md is the reference):
 *   0   8  magic "NESSAICK"
 *   8   4  u32 format version
 *   12  4  u32 header length H: offset of the payload
 *   16  .. u64 payload length, u32 payload CRC-32, u64 seed, u32 dim,
 *          u64 iteration, f64 created, str model name, str model args,
 *          str plugin hash (strings as ns_buf_put_str writes them)
 *   H-4 4  u32 CRC-32 of bytes [0, H-4)
 *   H   .. payload
 * The file is exactly H + payload length bytes long.
 */
#include "checkpoint.h"
#include "ckpt_internal.h"

#include "nessai/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_PREFIX_LEN 16u          /* magic, version, header length */
#define S_MAX_HEADER (1u << 20)   /* far above any real header; bounds garbage */

static uint32_t s_get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void s_set_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void ns_ckpt_loaded_clear(ns_ckpt_loaded_t *self)
{
    if (!self)
        return;
    free(self->model_name);
    free(self->model_args);
    free(self->plugin_hash);
    free(self->payload);
    memset(self, 0, sizeof *self);
}

int ns_ckpt__encode_header(const ns_ckpt_ident_t *id, uint64_t iteration,
                           size_t len, uint32_t crc, ns_buf_t *out)
{
    if (!id || !id->model_name || !id->plugin_hash || id->dim < 1 || out->len != 0)
        return NS_ERR_INVAL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);

    ns_buf_put_bytes(out, NS_CKPT_MAGIC, 8);
    ns_buf_put_u32(out, NS_CKPT_FORMAT_VERSION);
    ns_buf_put_u32(out, 0);                  /* header length, patched below */
    ns_buf_put_u64(out, (uint64_t)len);
    ns_buf_put_u32(out, crc);
    ns_buf_put_u64(out, id->seed);
    ns_buf_put_u32(out, (uint32_t)id->dim);
    ns_buf_put_u64(out, iteration);
    ns_buf_put_f64(out, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
    ns_buf_put_str(out, id->model_name);
    ns_buf_put_str(out, id->model_args ? id->model_args : "");
    ns_buf_put_str(out, id->plugin_hash);
    int rv = ns_buf_error(out);
    if (rv != NS_OK)
        return rv;
    if (out->len + 4 > S_MAX_HEADER)
        return NS_ERR_INVAL;                 /* absurdly long name or args */
    s_set_u32le(out->data + 12, (uint32_t)(out->len + 4));
    ns_buf_put_u32(out, ns_crc32(out->data, out->len));
    return ns_buf_error(out);
}

int ns_ckpt_encode(const ns_ckpt_ident_t *id, uint64_t iteration,
                   const void *payload, size_t len, ns_buf_t *out)
{
    if (len > 0 && !payload)
        return NS_ERR_INVAL;
    int rv = ns_ckpt__encode_header(id, iteration, len,
                                    ns_crc32(payload, len), out);
    if (rv != NS_OK)
        return rv;
    ns_buf_put_bytes(out, payload, len);
    return ns_buf_error(out);
}

/* Parse the header fields between the prefix and the header CRC. */
static int s_parse_fields(const uint8_t *p, size_t n, ns_ckpt_loaded_t *out,
                          uint64_t *payload_len, uint32_t *payload_crc)
{
    ns_buf_t b;
    ns_buf_view(&b, p, n);
    uint32_t dim;
    int rv;
    if ((rv = ns_buf_get_u64(&b, payload_len)) != NS_OK
        || (rv = ns_buf_get_u32(&b, payload_crc)) != NS_OK
        || (rv = ns_buf_get_u64(&b, &out->seed)) != NS_OK
        || (rv = ns_buf_get_u32(&b, &dim)) != NS_OK
        || (rv = ns_buf_get_u64(&b, &out->iteration)) != NS_OK
        || (rv = ns_buf_get_f64(&b, &out->created)) != NS_OK
        || (rv = ns_buf_get_str(&b, &out->model_name)) != NS_OK
        || (rv = ns_buf_get_str(&b, &out->model_args)) != NS_OK
        || (rv = ns_buf_get_str(&b, &out->plugin_hash)) != NS_OK)
        return rv == NS_ERR_NOMEM ? rv : NS_ERR_CORRUPT;
    if (ns_buf_remaining(&b) != 0 || dim < 1 || dim > (uint32_t)1 << 20
        || !out->model_name || !out->model_args || !out->plugin_hash)
        return NS_ERR_CORRUPT;
    out->dim = (int)dim;
    return NS_OK;
}

int ns_ckpt_decode(const void *data, size_t len, ns_ckpt_loaded_t *out,
                   char *err, size_t errlen)
{
    const uint8_t *p = data;
    memset(out, 0, sizeof *out);
    size_t m = len < 8 ? len : 8;
    if (len == 0 || memcmp(p, NS_CKPT_MAGIC, m) != 0) {
        ns_errf(err, errlen, "not a nessai checkpoint (no %s signature)", NS_CKPT_MAGIC);
        return NS_ERR_CORRUPT;
    }
    if (len < S_PREFIX_LEN) {
        ns_errf(err, errlen, "truncated: %zu bytes, shorter than the header", len);
        return NS_ERR_CORRUPT;
    }
    out->version = s_get_u32le(p + 8);
    if (out->version != NS_CKPT_FORMAT_VERSION) {
        ns_errf(err, errlen, "format version %u is not supported (this build reads %u)",
                out->version, NS_CKPT_FORMAT_VERSION);
        return NS_ERR_CORRUPT;
    }
    uint32_t hlen = s_get_u32le(p + 12);
    if (hlen < S_PREFIX_LEN + 4 || hlen > S_MAX_HEADER) {
        ns_errf(err, errlen, "corrupt header (header length %u)", hlen);
        return NS_ERR_CORRUPT;
    }
    if (hlen > len) {
        ns_errf(err, errlen, "truncated: %zu bytes, header needs %u", len, hlen);
        return NS_ERR_CORRUPT;
    }
    if (ns_crc32(p, hlen - 4) != s_get_u32le(p + hlen - 4)) {
        ns_errf(err, errlen, "corrupt header (checksum mismatch)");
        return NS_ERR_CORRUPT;
    }
    uint64_t plen;
    uint32_t pcrc;
    int rv = s_parse_fields(p + S_PREFIX_LEN, hlen - 4 - S_PREFIX_LEN, out, &plen, &pcrc);
    if (rv != NS_OK) {
        ns_ckpt_loaded_clear(out);
        ns_errf(err, errlen, rv == NS_ERR_NOMEM ? "out of memory reading the header"
                                                : "corrupt header (malformed fields)");
        return rv;
    }
    size_t have = len - hlen;
    if (plen != have) {
        ns_ckpt_loaded_clear(out);
        if (plen > have)
            ns_errf(err, errlen, "truncated: payload has %zu of %llu bytes", have,
                    (unsigned long long)plen);
        else
            ns_errf(err, errlen, "%zu unexpected bytes after the payload",
                    have - (size_t)plen);
        return NS_ERR_CORRUPT;
    }
    if (ns_crc32(p + hlen, have) != pcrc) {
        ns_ckpt_loaded_clear(out);
        ns_errf(err, errlen, "corrupt payload (checksum mismatch)");
        return NS_ERR_CORRUPT;
    }
    out->payload = malloc(have ? have : 1);
    if (!out->payload) {
        ns_ckpt_loaded_clear(out);
        ns_errf(err, errlen, "out of memory for a %zu-byte checkpoint", have);
        return NS_ERR_NOMEM;
    }
    memcpy(out->payload, p + hlen, have);
    out->payload_len = have;
    return NS_OK;
}

int ns_ckpt_ident_check(const ns_ckpt_loaded_t *got, const ns_ckpt_ident_t *id,
                        int check_seed, char *err, size_t errlen)
{
    const char *args = id->model_args ? id->model_args : "";
    if (strcmp(got->model_name, id->model_name) != 0 || got->dim != id->dim) {
        ns_errf(err, errlen,
                "it belongs to model '%s' (dim %d), this run is model '%s' (dim %d); "
                "use another --output or --no-resume",
                got->model_name, got->dim, id->model_name, id->dim);
        return NS_ERR_REFUSED;
    }
    if (strcmp(got->model_args, args) != 0) {
        ns_errf(err, errlen,
                "it was made with --model-args '%s', this run has '%s'; "
                "use the same arguments, another --output or --no-resume",
                got->model_args, args);
        return NS_ERR_REFUSED;
    }
    if (strcmp(got->plugin_hash, id->plugin_hash) != 0) {
        ns_errf(err, errlen,
                "it was made by another build of model '%s' (plugin sha1 %.12s, now %.12s); "
                "resume with the same plugin file, or use --no-resume",
                got->model_name, got->plugin_hash, id->plugin_hash);
        return NS_ERR_REFUSED;
    }
    if (check_seed && got->seed != id->seed) {
        ns_errf(err, errlen,
                "it was made with --seed %llu, this run asks for --seed %llu; "
                "drop --seed to continue it, or use --no-resume",
                (unsigned long long)got->seed, (unsigned long long)id->seed);
        return NS_ERR_REFUSED;
    }
    return NS_OK;
}

int ns_ckpt_load_exit_status(int rv)
{
    return rv == NS_ERR_CORRUPT || rv == NS_ERR_REFUSED || rv == NS_ERR_INVAL
                   || rv == NS_ERR_STATE ? 2 : 1;
}
