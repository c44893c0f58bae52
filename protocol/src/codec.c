/* codec.c - msgpack encoding and validating decoding of farm messages. */
#include "nessai/codec.h"
#include "nessai/error.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* Field identifiers; each message type is a list of them (the schema). */
enum {
    F_END = 0,
    F_RUN, F_BATCH, F_CHUNK, F_ATTEMPT, F_PID, F_SLOT, F_DIM, F_STATUS, F_N,
    F_D, F_DPORT, F_HB, F_LIVE, F_MAXMSG, F_TOKEN, F_RECEIVED, F_CANN,
    F_HOST, F_WORKER, F_MPATH, F_MARGS, F_MNAME, F_MHASH, F_TEXT,
    F_DATA, F_CPU, F_WALL
};

#define S_HEADER 3   /* signature, version, type */

/* Fields after the header, in wire order (docs/protocol.md §2). */
static const uint8_t s_schema[NS_MSG__COUNT][NS_FARM_MAX_FIELDS - S_HEADER + 1] = {
    [NS_MSG_HELLO] = {F_HOST, F_PID, F_SLOT, F_TEXT},
    [NS_MSG_WELCOME] = {F_RUN, F_WORKER, F_MPATH, F_MARGS, F_MNAME, F_DIM, F_MHASH,
                        F_DPORT, F_TOKEN, F_HB, F_LIVE, F_MAXMSG, F_CANN, F_DATA},
    [NS_MSG_READY] = {F_RUN, F_STATUS, F_MNAME, F_DIM, F_MHASH, F_TEXT, F_DATA},
    [NS_MSG_ACCEPT] = {F_RUN},
    [NS_MSG_REFUSE] = {F_TEXT},
    [NS_MSG_HEARTBEAT] = {F_RUN},
    [NS_MSG_BYE] = {F_RUN, F_TEXT},
    [NS_MSG_STOP] = {F_TEXT},
    [NS_MSG_CHUNK] = {F_RUN, F_BATCH, F_CHUNK, F_ATTEMPT, F_N, F_D, F_DATA},
    [NS_MSG_ASK] = {F_RUN, F_WORKER, F_TOKEN, F_RECEIVED},
    [NS_MSG_RESULT] = {F_RUN, F_WORKER, F_BATCH, F_CHUNK, F_ATTEMPT, F_STATUS, F_N,
                       F_DATA, F_TEXT, F_CPU, F_WALL},
};

static const char *s_names[NS_MSG__COUNT] = {
    NULL, "HELLO", "WELCOME", "READY", "ACCEPT", "REFUSE", "HEARTBEAT",
    "BYE", "STOP", "CHUNK", "ASK", "RESULT"
};

const char *ns_msg_type_name(uint32_t type)
{
    if (type == 0 || type >= NS_MSG__COUNT)
        return "?";
    return s_names[type];
}

void ns_msg_init(ns_msg_t *msg, ns_msg_type_t type)
{
    memset(msg, 0, sizeof *msg);
    msg->version = NS_FARM_PROTOCOL_VERSION;
    msg->type = type;
    msg->host = msg->worker = msg->model_path = msg->model_args = ns_str_of("");
    msg->model_name = msg->model_hash = msg->text = ns_str_of("");
}

static size_t s_schema_len(uint32_t type)
{
    size_t n = 0;
    while (s_schema[type][n] != F_END)
        n++;
    return n;
}

/* Where a field lives in ns_msg_t, by kind. */
static uint64_t *s_u64(ns_msg_t *m, int f)
{
    switch (f) {
    case F_RUN: return &m->run;
    case F_BATCH: return &m->batch;
    case F_MAXMSG: return &m->max_message;
    case F_TOKEN: return &m->token;
    case F_RECEIVED: return &m->received;
    default: return NULL;
    }
}

static uint32_t *s_u32(ns_msg_t *m, int f)
{
    switch (f) {
    case F_CHUNK: return &m->chunk;
    case F_ATTEMPT: return &m->attempt;
    case F_PID: return &m->pid;
    case F_SLOT: return &m->slot;
    case F_DIM: return &m->dim;
    case F_STATUS: return &m->status;
    case F_N: return &m->n;
    case F_D: return &m->d;
    case F_DPORT: return &m->data_port;
    case F_HB: return &m->heartbeat_ms;
    case F_LIVE: return &m->liveness;
    case F_CANN: return &m->canary_n;
    default: return NULL;
    }
}

static ns_str_t *s_str(ns_msg_t *m, int f)
{
    switch (f) {
    case F_HOST: return &m->host;
    case F_WORKER: return &m->worker;
    case F_MPATH: return &m->model_path;
    case F_MARGS: return &m->model_args;
    case F_MNAME: return &m->model_name;
    case F_MHASH: return &m->model_hash;
    case F_TEXT: return &m->text;
    default: return NULL;
    }
}

static double *s_f64(ns_msg_t *m, int f)
{
    switch (f) {
    case F_CPU: return &m->cpu_s;
    case F_WALL: return &m->wall_s;
    default: return NULL;
    }
}

static int s_pack_str(msgpack_packer *pk, const char *p, size_t len)
{
    return msgpack_pack_str(pk, len) | msgpack_pack_str_body(pk, p, len);
}

int ns_msg_encode(const ns_msg_t *msg, uint8_t **out, size_t *len)
{
    if (msg->type == 0 || msg->type >= NS_MSG__COUNT)
        return NS_ERR_INVAL;
    /* The accessors take a mutable message; encoding only reads through them. */
    ns_msg_t m = *msg;
    size_t nf = s_schema_len(m.type);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    /* Size the buffer once (header, strings, bin) so that a large chunk is
     * not copied by repeated growth. */
    size_t guess = 256 + m.data_len + m.host.len + m.worker.len + m.model_path.len
                   + m.model_args.len + m.model_name.len + m.model_hash.len + m.text.len;
    sb.data = malloc(guess);
    sb.alloc = sb.data ? guess : 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int bad = msgpack_pack_array(&pk, S_HEADER + nf);   /* non-zero once a write failed */
    bad |= s_pack_str(&pk, NS_FARM_SIGNATURE, strlen(NS_FARM_SIGNATURE));
    bad |= msgpack_pack_uint32(&pk, NS_FARM_PROTOCOL_VERSION);
    bad |= msgpack_pack_uint32(&pk, m.type);
    for (size_t i = 0; i < nf; i++) {
        int f = s_schema[m.type][i];
        uint64_t *u64;
        uint32_t *u32;
        ns_str_t *s;
        double *fl;
        if ((u64 = s_u64(&m, f)))
            bad |= msgpack_pack_uint64(&pk, *u64);
        else if ((u32 = s_u32(&m, f)))
            bad |= msgpack_pack_uint32(&pk, *u32);
        else if ((s = s_str(&m, f))) {
            if (s->len > NS_FARM_MAX_STR || (s->len && !s->ptr)) {
                msgpack_sbuffer_destroy(&sb);
                return NS_ERR_INVAL;
            }
            bad |= s_pack_str(&pk, s->ptr ? s->ptr : "", s->len);
        } else if ((fl = s_f64(&m, f)))
            bad |= msgpack_pack_double(&pk, *fl);
        else {  /* F_DATA */
            bad |= msgpack_pack_bin(&pk, m.data_len);
            if (m.data_len)
                bad |= msgpack_pack_bin_body(&pk, m.data, m.data_len);
        }
    }
    if (bad || !sb.data) {
        msgpack_sbuffer_destroy(&sb);
        return NS_ERR_NOMEM;
    }
    *out = (uint8_t *)sb.data;   /* sbuffer memory is malloc'ed: caller frees */
    *len = sb.size;
    return NS_OK;
}

/* Big-endian reads for the pre-scan. */
static uint64_t s_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Walk the top-level array and its elements without allocating: the
 * message must be one array of at most NS_FARM_MAX_FIELDS scalars, strings
 * or bins, with every length inside the bytes present and nothing after.
 * This keeps msgpack from allocating for sizes a peer merely claims. */
static int s_prescan(const uint8_t *p, size_t len)
{
    size_t off = 0;
    uint64_t count;
    if (len < 1)
        return NS_ERR_PROTO;
    uint8_t t = p[off++];
    if (t >= 0x90 && t <= 0x9f)
        count = t & 0x0f;
    else if (t == 0xdc && len >= 3) {
        count = s_be(p + 1, 2);
        off = 3;
    } else
        return NS_ERR_PROTO;
    if (count < S_HEADER || count > NS_FARM_MAX_FIELDS)
        return NS_ERR_PROTO;
    for (uint64_t i = 0; i < count; i++) {
        if (off >= len)
            return NS_ERR_PROTO;
        t = p[off++];
        uint64_t skip = 0;       /* payload bytes after the type byte(s) */
        int hdr = 0;             /* length bytes after the type byte */
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
            skip = 0;                           /* fixint, nil, bool */
        else if (t >= 0xa0 && t <= 0xbf)
            skip = t & 0x1f;                    /* fixstr */
        else if (t == 0xcc || t == 0xd0) skip = 1;
        else if (t == 0xcd || t == 0xd1) skip = 2;
        else if (t == 0xce || t == 0xd2 || t == 0xca) skip = 4;
        else if (t == 0xcf || t == 0xd3 || t == 0xcb) skip = 8;
        else if (t == 0xd9 || t == 0xc4) hdr = 1;  /* str8, bin8 */
        else if (t == 0xda || t == 0xc5) hdr = 2;  /* str16, bin16 */
        else if (t == 0xdb || t == 0xc6) hdr = 4;  /* str32, bin32 */
        else
            return NS_ERR_PROTO;                /* containers, ext, reserved */
        if (hdr) {
            if (len - off < (size_t)hdr)
                return NS_ERR_PROTO;
            skip = s_be(p + off, hdr);
            off += (size_t)hdr;
        }
        if (skip > len - off)
            return NS_ERR_PROTO;
        off += (size_t)skip;
    }
    return off == len ? NS_OK : NS_ERR_PROTO;
}

static int s_get_uint(const msgpack_object *o, uint64_t max, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return NS_ERR_PROTO;
    *v = o->via.u64;
    return NS_OK;
}

static int s_decode_fields(const msgpack_object_array *a, ns_msg_t *m)
{
    size_t nf = s_schema_len(m->type);
    if (a->size != S_HEADER + nf)
        return NS_ERR_PROTO;
    for (size_t i = 0; i < nf; i++) {
        const msgpack_object *o = &a->ptr[S_HEADER + i];
        int f = s_schema[m->type][i];
        uint64_t *u64;
        uint32_t *u32;
        ns_str_t *s;
        double *fl;
        uint64_t v;
        if ((u64 = s_u64(m, f))) {
            if (s_get_uint(o, UINT64_MAX, u64))
                return NS_ERR_PROTO;
        } else if ((u32 = s_u32(m, f))) {
            if (s_get_uint(o, UINT32_MAX, &v))
                return NS_ERR_PROTO;
            *u32 = (uint32_t)v;
        } else if ((s = s_str(m, f))) {
            if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > NS_FARM_MAX_STR)
                return NS_ERR_PROTO;
            s->ptr = o->via.str.size ? o->via.str.ptr : "";
            s->len = o->via.str.size;
        } else if ((fl = s_f64(m, f))) {
            if (o->type != MSGPACK_OBJECT_FLOAT64 && o->type != MSGPACK_OBJECT_FLOAT32)
                return NS_ERR_PROTO;
            *fl = o->via.f64;
        } else {
            if (o->type != MSGPACK_OBJECT_BIN)
                return NS_ERR_PROTO;
            m->data = (const uint8_t *)o->via.bin.ptr;
            m->data_len = o->via.bin.size;
        }
    }
    return NS_OK;
}

/* Cross-field rules: counts agree with bin lengths, sizes are sane. */
static int s_check(const ns_msg_t *m)
{
    switch (m->type) {
    case NS_MSG_WELCOME:
        if (m->dim < 1 || m->canary_n > 64 || m->heartbeat_ms < 1 || m->liveness < 1
            || m->data_port < 1 || m->data_port > 65535 || m->token < 1)
            return NS_ERR_PROTO;
        return m->data_len == (uint64_t)m->canary_n * m->dim * 8 ? NS_OK : NS_ERR_PROTO;
    case NS_MSG_READY:
        if (m->status > 1 || (m->status == 0 && m->data_len % 8 != 0)
            || (m->status == 1 && m->data_len != 0) || m->data_len > 64 * 8)
            return NS_ERR_PROTO;
        return NS_OK;
    case NS_MSG_CHUNK:
        if (m->n < 1 || m->d < 1 || m->attempt < 1)
            return NS_ERR_PROTO;
        /* n * d fits 64 bits; n * d * 8 need not (it would wrap to a small
         * length that matches a short bin) */
        if ((uint64_t)m->n * m->d > UINT64_MAX / 8)
            return NS_ERR_PROTO;
        return m->data_len == (uint64_t)m->n * m->d * 8 ? NS_OK : NS_ERR_PROTO;
    case NS_MSG_ASK:
        return m->token >= 1 ? NS_OK : NS_ERR_PROTO;
    case NS_MSG_RESULT:
        if (m->n < 1 || m->attempt < 1 || m->status > 1)
            return NS_ERR_PROTO;
        if (m->status == 0)
            return m->data_len == (uint64_t)m->n * 8 ? NS_OK : NS_ERR_PROTO;
        return m->data_len == 0 ? NS_OK : NS_ERR_PROTO;
    default:
        return NS_OK;
    }
}

int ns_msg_decode(const void *bytes, size_t len, ns_msg_t *msg)
{
    if (!bytes || s_prescan(bytes, len) != NS_OK)
        return NS_ERR_PROTO;
    memset(msg, 0, sizeof *msg);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rv = NS_ERR_PROTO;
    if (msgpack_unpack_next(&up, bytes, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len
        || up.data.type != MSGPACK_OBJECT_ARRAY)
        goto done;
    const msgpack_object_array *a = &up.data.via.array;
    const msgpack_object *sig = &a->ptr[0];
    uint64_t version, type;
    if (sig->type != MSGPACK_OBJECT_STR || sig->via.str.size != strlen(NS_FARM_SIGNATURE)
        || memcmp(sig->via.str.ptr, NS_FARM_SIGNATURE, sig->via.str.size) != 0)
        goto done;
    if (s_get_uint(&a->ptr[1], UINT32_MAX, &version)
        || s_get_uint(&a->ptr[2], NS_MSG__COUNT - 1, &type) || type == 0)
        goto done;
    msg->version = (uint32_t)version;
    msg->type = (uint32_t)type;
    /* Every string field is a valid (empty) string from here on, also in a
     * REFUSE of another version, which sets only its reason. */
    msg->host = msg->worker = msg->model_path = msg->model_args = ns_str_of("");
    msg->model_name = msg->model_hash = msg->text = ns_str_of("");
    if (version != NS_FARM_PROTOCOL_VERSION) {
        /* A REFUSE is readable from any version: its reason is the point. */
        if (type == NS_MSG_REFUSE && a->size == S_HEADER + 1
            && a->ptr[3].type == MSGPACK_OBJECT_STR && a->ptr[3].via.str.size <= NS_FARM_MAX_STR) {
            msg->text.ptr = a->ptr[3].via.str.size ? a->ptr[3].via.str.ptr : "";
            msg->text.len = a->ptr[3].via.str.size;
            rv = NS_OK;
        } else
            rv = NS_MSG_OTHER_VERSION;
        goto done;
    }
    if (s_decode_fields(a, msg) == NS_OK && s_check(msg) == NS_OK)
        rv = NS_OK;
done:
    /* Fields point into bytes, not into the zone: safe to free it now. */
    msgpack_unpacked_destroy(&up);
    return rv;
}

int ns_msg_host_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

#define s_little_endian ns_msg_host_little_endian

int ns_msg_get_doubles(const ns_msg_t *msg, double *out, size_t count)
{
    if (count > SIZE_MAX / 8 || msg->data_len != count * 8)
        return NS_ERR_PROTO;
    if (count == 0)
        return NS_OK;
    if (s_little_endian()) {
        memcpy(out, msg->data, count * 8);
        return NS_OK;
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t u = 0;
        for (int b = 7; b >= 0; b--)
            u = (u << 8) | msg->data[i * 8 + (size_t)b];
        memcpy(&out[i], &u, 8);
    }
    return NS_OK;
}

void ns_msg_set_doubles(ns_msg_t *msg, const double *v, size_t count, uint8_t *scratch)
{
    msg->data_len = count * 8;
    if (s_little_endian() || count == 0) {
        msg->data = (const uint8_t *)v;
        return;
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t u;
        memcpy(&u, &v[i], 8);
        for (int b = 0; b < 8; b++)
            scratch[i * 8 + (size_t)b] = (uint8_t)(u >> (8 * b));
    }
    msg->data = scratch;
}

const char *ns_str_copy(ns_str_t s, char *buf, size_t size)
{
    if (size == 0)
        return buf;
    size_t n = s.len < size - 1 ? s.len : size - 1;
    if (n)
        memcpy(buf, s.ptr, n);
    buf[n] = '\0';
    return buf;
}

int ns_str_eq(ns_str_t s, const char *c)
{
    size_t n = c ? strlen(c) : 0;
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

ns_str_t ns_str_of(const char *c)
{
    ns_str_t s = {c ? c : "", c ? strlen(c) : 0};
    return s;
}
