/* test_codec.c - every message type round-trips; valid messages of every
 * kind, mutated (bit flips, truncation, extension, fields of another type,
 * wrong counts and lengths, huge declared sizes), are rejected or decode to
 * a message that re-encodes consistently, and never read out of bounds
 * (the suite runs under ASan too). tests/fuzz does the same at random. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "nessai/codec.h"
#include "nessai/error.h"
#include "../fuzz/msg_same.h"

static ns_msg_t s_sample(uint32_t type, const double *v, size_t nv)
{
    ns_msg_t m;
    ns_msg_init(&m, (ns_msg_type_t)type);
    m.run = 0x0123456789abcdefull;
    m.batch = 77;
    m.chunk = 3;
    m.attempt = 2;
    m.pid = 4242;
    m.slot = 1;
    m.dim = 2;
    m.n = (uint32_t)nv;
    m.d = 1;
    m.data_port = 5556;
    m.token = 0xfedcba9876543210ull;
    m.received = 12;
    m.heartbeat_ms = 1000;
    m.liveness = 3;
    m.max_message = 1u << 28;
    m.canary_n = (uint32_t)(nv / 2);
    m.host = ns_str_of("node-7");
    m.worker = ns_str_of("w9");
    m.model_path = ns_str_of("/opt/libgaussian.so");
    m.model_args = ns_str_of("dim=2,delay_ms=1");
    m.model_name = ns_str_of("gaussian");
    m.model_hash = ns_str_of("da39a3ee5e6b4b0d3255bfef95601890afd80709");
    m.text = ns_str_of("why");
    m.cpu_s = 0.25;
    m.wall_s = 0.5;
    if (type == NS_MSG_WELCOME || type == NS_MSG_READY || type == NS_MSG_CHUNK
        || type == NS_MSG_RESULT) {
        m.data = (const uint8_t *)v;
        m.data_len = nv * 8;
    }
    if (type == NS_MSG_READY)
        m.data_len = 2 * 8;
    return m;
}

static void test_round_trip_every_type(void **state)
{
    double v[4] = {1.5, -INFINITY, 0x1.fffffffffffffp+1023, -0.0};
    for (uint32_t t = 1; t < NS_MSG__COUNT; t++) {
        ns_msg_t m = s_sample(t, v, 4), r;
        uint8_t *bytes = NULL;
        size_t len = 0;
        assert_int_equal(ns_msg_encode(&m, &bytes, &len), NS_OK);
        assert_int_equal(ns_msg_decode(bytes, len, &r), NS_OK);
        assert_int_equal(r.type, t);
        assert_int_equal(r.version, NS_FARM_PROTOCOL_VERSION);
        if (t == NS_MSG_CHUNK || t == NS_MSG_RESULT) {
            double back[4];
            assert_int_equal(ns_msg_get_doubles(&r, back, 4), NS_OK);
            assert_memory_equal(back, v, sizeof v);   /* bit-exact, -0.0 and inf too */
            assert_int_equal(r.batch, 77);
            assert_int_equal(r.chunk, 3);
            assert_int_equal(r.attempt, 2);
        }
        if (t == NS_MSG_WELCOME) {
            assert_true(ns_str_eq(r.model_args, "dim=2,delay_ms=1"));
            assert_int_equal(r.max_message, 1u << 28);
            assert_int_equal(r.run, 0x0123456789abcdefull);
        }
        if (t == NS_MSG_RESULT)
            assert_true(r.wall_s == 0.5);
        if (t == NS_MSG_HELLO)
            assert_true(ns_str_eq(r.host, "node-7"));
        free(bytes);
    }
}

/* Build an array message by hand to produce what our encoder never would. */
static size_t s_pack(uint8_t *out, size_t cap, const char *sig, uint32_t version, uint32_t type,
                     int nfields, int bin_len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3 + (size_t)nfields);
    msgpack_pack_str(&pk, strlen(sig));
    msgpack_pack_str_body(&pk, sig, strlen(sig));
    msgpack_pack_uint32(&pk, version);
    msgpack_pack_uint32(&pk, type);
    /* CHUNK fields: run batch chunk attempt n=2 d=2 bin */
    uint64_t ints[6] = {1, 1, 0, 1, 2, 2};
    for (int i = 0; i < nfields && i < 6; i++)
        msgpack_pack_uint64(&pk, ints[i]);
    if (nfields >= 7) {
        uint8_t zeros[64] = {0};
        msgpack_pack_bin(&pk, (size_t)bin_len);
        msgpack_pack_bin_body(&pk, zeros, (size_t)bin_len);
    }
    size_t len = sb.size < cap ? sb.size : cap;
    memcpy(out, sb.data, len);
    msgpack_sbuffer_destroy(&sb);
    return len;
}

static void test_malformed_kinds(void **state)
{
    uint8_t buf[512];
    ns_msg_t m;
    size_t len;
    len = s_pack(buf, sizeof buf, NS_FARM_SIGNATURE, NS_FARM_PROTOCOL_VERSION, NS_MSG_CHUNK, 7, 32);
    assert_int_equal(ns_msg_decode(buf, len, &m), NS_OK);   /* the valid baseline */
    len = s_pack(buf, sizeof buf, "NSFARX", NS_FARM_PROTOCOL_VERSION, NS_MSG_CHUNK, 7, 32);
    assert_int_equal(ns_msg_decode(buf, len, &m), NS_ERR_PROTO);   /* signature */
    len = s_pack(buf, sizeof buf, NS_FARM_SIGNATURE, 99, NS_MSG_CHUNK, 7, 32);
    assert_int_equal(ns_msg_decode(buf, len, &m), NS_MSG_OTHER_VERSION);
    assert_int_equal(m.version, 99);
    len = s_pack(buf, sizeof buf, NS_FARM_SIGNATURE, NS_FARM_PROTOCOL_VERSION, 42, 7, 32);
    assert_int_equal(ns_msg_decode(buf, len, &m), NS_ERR_PROTO);   /* unknown type */
    len = s_pack(buf, sizeof buf, NS_FARM_SIGNATURE, NS_FARM_PROTOCOL_VERSION, NS_MSG_CHUNK, 7, 24);
    assert_int_equal(ns_msg_decode(buf, len, &m), NS_ERR_PROTO);   /* n*d*8 != bin size */
    len = s_pack(buf, sizeof buf, NS_FARM_SIGNATURE, NS_FARM_PROTOCOL_VERSION, NS_MSG_CHUNK, 6, 0);
    assert_int_equal(ns_msg_decode(buf, len, &m), NS_ERR_PROTO);   /* a field missing */
    len = s_pack(buf, sizeof buf, NS_FARM_SIGNATURE, NS_FARM_PROTOCOL_VERSION, NS_MSG_RESULT, 7, 32);
    assert_int_equal(ns_msg_decode(buf, len, &m), NS_ERR_PROTO);   /* wrong field types */

    /* claimed sizes far beyond the bytes present: no allocation, rejected */
    const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(ns_msg_decode(huge_array, sizeof huge_array, &m), NS_ERR_PROTO);
    const uint8_t huge_bin[] = {0x94, 0xa6, 'N', 'S', 'F', 'A', 'R', 'M', 0x01, 0x09,
                                0xc6, 0xff, 0xff, 0xff, 0xf0};
    assert_int_equal(ns_msg_decode(huge_bin, sizeof huge_bin, &m), NS_ERR_PROTO);
    const uint8_t nested[] = {0x94, 0xa6, 'N', 'S', 'F', 'A', 'R', 'M', 0x01, 0x06,
                              0xdd, 0x7f, 0xff, 0xff, 0xff};
    assert_int_equal(ns_msg_decode(nested, sizeof nested, &m), NS_ERR_PROTO);
    const uint8_t not_array[] = {0x81, 0xa1, 'a', 0x01};
    assert_int_equal(ns_msg_decode(not_array, sizeof not_array, &m), NS_ERR_PROTO);
    assert_int_equal(ns_msg_decode(NULL, 0, &m), NS_ERR_PROTO);

    /* an over-long string cannot be encoded */
    char *big = malloc(NS_FARM_MAX_STR + 2);
    memset(big, 'x', NS_FARM_MAX_STR + 1);
    big[NS_FARM_MAX_STR + 1] = '\0';
    ns_msg_t r;
    ns_msg_init(&r, NS_MSG_REFUSE);
    r.text = ns_str_of(big);
    uint8_t *bytes = NULL;
    size_t blen;
    assert_int_equal(ns_msg_encode(&r, &bytes, &blen), NS_ERR_INVAL);
    free(big);
}

/* A message of one string field (REFUSE, STOP) packed by hand, with any
 * version and any string length. */
static void s_pack_text(msgpack_sbuffer *sb, uint32_t version, uint32_t type, const char *text,
                        size_t len)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_str(&pk, strlen(NS_FARM_SIGNATURE));
    msgpack_pack_str_body(&pk, NS_FARM_SIGNATURE, strlen(NS_FARM_SIGNATURE));
    msgpack_pack_uint32(&pk, version);
    msgpack_pack_uint32(&pk, type);
    msgpack_pack_str(&pk, len);
    msgpack_pack_str_body(&pk, text, len);
}

/* A REFUSE from any version is readable, so the reason always arrives. */
static void test_refuse_any_version(void **state)
{
    msgpack_sbuffer sb;
    s_pack_text(&sb, 7, NS_MSG_REFUSE, "nope", 4);
    ns_msg_t m;
    assert_int_equal(ns_msg_decode(sb.data, sb.size, &m), NS_OK);
    assert_int_equal(m.version, 7);
    assert_int_equal(m.type, NS_MSG_REFUSE);
    assert_true(ns_str_eq(m.text, "nope"));
    msgpack_sbuffer_destroy(&sb);
}

/* ---- mutations of valid messages ------------------------------------------ */

static const double s_vals[4] = {1.5, -INFINITY, 0x1.fffffffffffffp+1023, -0.0};

/* Valid encoding of the sample message of type t (caller frees). */
static uint8_t *s_valid(uint32_t t, size_t *len)
{
    ns_msg_t m = s_sample(t, s_vals, 4);
    uint8_t *bytes = NULL;
    assert_int_equal(ns_msg_encode(&m, &bytes, len), NS_OK);
    ns_msg_t back;
    assert_int_equal(ns_msg_decode(bytes, *len, &back), NS_OK);
    return bytes;
}

/* Decode exactly len bytes (a copy of that size, so ASan sees any read
 * beyond it). Either an error, or a message whose encoding decodes to the
 * same fields. Returns the decoder's result. */
static int s_decode_checked(const uint8_t *bytes, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, bytes, len);
    ns_msg_t m, r;
    int rv = ns_msg_decode(copy, len, &m);
    if (rv == NS_OK) {
        uint8_t *again = NULL;
        size_t alen = 0;
        assert_int_equal(ns_msg_encode(&m, &again, &alen), NS_OK);
        assert_int_equal(ns_msg_decode(again, alen, &r), NS_OK);
        assert_true(ns_test_msg_same(&m, &r));
        free(again);
    } else
        assert_true(rv == NS_ERR_PROTO || rv == NS_MSG_OTHER_VERSION);
    free(copy);
    return rv;
}

/* The elements of a valid message as msgpack objects. */
typedef struct {
    msgpack_unpacked up;
    msgpack_object_array a;
} s_elems_t;

static void s_elems(s_elems_t *e, const uint8_t *bytes, size_t len)
{
    msgpack_unpacked_init(&e->up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&e->up, (const char *)bytes, len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(e->up.data.type, MSGPACK_OBJECT_ARRAY);
    e->a = e->up.data.via.array;
}

/* Re-pack the elements with an array header of `count` elements, element
 * `at` replaced by the raw bytes raw[0..rawlen) (dropped if raw is NULL),
 * and extra raw bytes after the last element. */
static void s_repack(msgpack_sbuffer *sb, const msgpack_object_array *a, size_t count, size_t at,
                     const void *raw, size_t rawlen, const void *tail, size_t taillen)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, count);
    for (size_t i = 0; i < a->size; i++) {
        if (i != at)
            msgpack_pack_object(&pk, a->ptr[i]);
        else if (raw)
            msgpack_sbuffer_write(sb, raw, rawlen);
    }
    if (tail)
        msgpack_sbuffer_write(sb, tail, taillen);
}

static void test_bit_flips(void **state)
{
    size_t accepted = 0, rejected = 0;
    for (uint32_t t = 1; t < NS_MSG__COUNT; t++) {
        size_t len;
        uint8_t *bytes = s_valid(t, &len);
        uint8_t *flip = malloc(len);
        for (size_t i = 0; i < len; i++) {
            for (int bit = 0; bit < 8; bit++) {
                memcpy(flip, bytes, len);
                flip[i] ^= (uint8_t)(1u << bit);
                int rv = s_decode_checked(flip, len);
                if (i == 0 || (i >= 2 && i < 8))   /* array header, signature */
                    assert_int_equal(rv, NS_ERR_PROTO);
                if (rv == NS_OK)
                    accepted++;
                else
                    rejected++;
            }
        }
        free(flip);
        free(bytes);
    }
    /* both outcomes happen: flips in values pass, flips in structure fail */
    assert_true(accepted > 0);
    assert_true(rejected > 0);
}

static void test_truncation_and_extension(void **state)
{
    static const uint8_t tails[][3] = {{0xc0}, {0x00}, {0xa0}, {0xc4, 0x00}, {0x90}, {0x80},
                                       {0xa6, 'N', 'S'}};
    static const size_t tail_len[] = {1, 1, 1, 2, 1, 1, 3};
    for (uint32_t t = 1; t < NS_MSG__COUNT; t++) {
        size_t len;
        uint8_t *bytes = s_valid(t, &len);
        for (size_t cut = 0; cut < len; cut++)   /* every truncation */
            assert_int_equal(s_decode_checked(bytes, cut), NS_ERR_PROTO);
        s_elems_t e;
        s_elems(&e, bytes, len);
        msgpack_sbuffer sb;
        for (size_t k = 0; k < sizeof tails / sizeof tails[0]; k++) {
            /* bytes after the array */
            uint8_t *longer = malloc(len + tail_len[k]);
            memcpy(longer, bytes, len);
            memcpy(longer + len, tails[k], tail_len[k]);
            assert_int_equal(s_decode_checked(longer, len + tail_len[k]), NS_ERR_PROTO);
            free(longer);
            /* one element more, counted in the header */
            s_repack(&sb, &e.a, e.a.size + 1, SIZE_MAX, NULL, 0, tails[k], tail_len[k]);
            assert_int_equal(s_decode_checked((uint8_t *)sb.data, sb.size), NS_ERR_PROTO);
            msgpack_sbuffer_destroy(&sb);
        }
        /* the message twice */
        uint8_t *twice = malloc(2 * len);
        memcpy(twice, bytes, len);
        memcpy(twice + len, bytes, len);
        assert_int_equal(s_decode_checked(twice, 2 * len), NS_ERR_PROTO);
        free(twice);
        /* each element dropped, header counting one fewer */
        for (size_t i = 0; i < e.a.size; i++) {
            s_repack(&sb, &e.a, e.a.size - 1, i, NULL, 0, NULL, 0);
            assert_int_equal(s_decode_checked((uint8_t *)sb.data, sb.size), NS_ERR_PROTO);
            msgpack_sbuffer_destroy(&sb);
        }
        /* header counts off by one either way, elements unchanged */
        s_repack(&sb, &e.a, e.a.size - 1, SIZE_MAX, NULL, 0, NULL, 0);
        assert_int_equal(s_decode_checked((uint8_t *)sb.data, sb.size), NS_ERR_PROTO);
        msgpack_sbuffer_destroy(&sb);
        s_repack(&sb, &e.a, e.a.size + 1, SIZE_MAX, NULL, 0, NULL, 0);
        assert_int_equal(s_decode_checked((uint8_t *)sb.data, sb.size), NS_ERR_PROTO);
        msgpack_sbuffer_destroy(&sb);
        msgpack_unpacked_destroy(&e.up);
        free(bytes);
    }
}

/* Values of every msgpack kind, and the object type each decodes to. */
typedef struct {
    uint8_t raw[12];
    size_t len;
    msgpack_object_type kind;
} s_value_t;

static const s_value_t s_values[] = {
    {{0xc0}, 1, MSGPACK_OBJECT_NIL},
    {{0xc2}, 1, MSGPACK_OBJECT_BOOLEAN},
    {{0xc3}, 1, MSGPACK_OBJECT_BOOLEAN},
    {{0xff}, 1, MSGPACK_OBJECT_NEGATIVE_INTEGER},                          /* -1 */
    {{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, MSGPACK_OBJECT_NEGATIVE_INTEGER}, /* INT64_MIN */
    {{0x00}, 1, MSGPACK_OBJECT_POSITIVE_INTEGER},
    {{0x07}, 1, MSGPACK_OBJECT_POSITIVE_INTEGER},
    {{0xce, 0xff, 0xff, 0xff, 0xff}, 5, MSGPACK_OBJECT_POSITIVE_INTEGER},   /* UINT32_MAX */
    {{0xcf, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0}, 9, MSGPACK_OBJECT_POSITIVE_INTEGER}, /* 2^32 */
    {{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, MSGPACK_OBJECT_POSITIVE_INTEGER},
    {{0xca, 0x3f, 0xc0, 0, 0}, 5, MSGPACK_OBJECT_FLOAT32},                   /* 1.5f */
    {{0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}, 9, MSGPACK_OBJECT_FLOAT64},       /* 1.5 */
    {{0xa0}, 1, MSGPACK_OBJECT_STR},
    {{0xa2, 'w', '1'}, 3, MSGPACK_OBJECT_STR},
    {{0xc4, 0x00}, 2, MSGPACK_OBJECT_BIN},
    {{0xc4, 0x08, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}, 10, MSGPACK_OBJECT_BIN},   /* 1.0 */
    {{0x90}, 1, MSGPACK_OBJECT_ARRAY},
    {{0x91, 0x01}, 2, MSGPACK_OBJECT_ARRAY},
    {{0x80}, 1, MSGPACK_OBJECT_MAP},
    {{0x81, 0x01, 0x02}, 3, MSGPACK_OBJECT_MAP},
    {{0xd4, 0x01, 0x00}, 3, MSGPACK_OBJECT_EXT},
};

static int s_same_kind(msgpack_object_type a, msgpack_object_type b)
{
    int fa = a == MSGPACK_OBJECT_FLOAT32 || a == MSGPACK_OBJECT_FLOAT64;
    int fb = b == MSGPACK_OBJECT_FLOAT32 || b == MSGPACK_OBJECT_FLOAT64;
    return a == b || (fa && fb);
}

static void test_type_confusion(void **state)
{
    size_t tried = 0;
    for (uint32_t t = 1; t < NS_MSG__COUNT; t++) {
        size_t len;
        uint8_t *bytes = s_valid(t, &len);
        s_elems_t e;
        s_elems(&e, bytes, len);
        for (size_t i = 0; i < e.a.size; i++) {   /* header fields too */
            for (size_t v = 0; v < sizeof s_values / sizeof s_values[0]; v++) {
                msgpack_sbuffer sb;
                s_repack(&sb, &e.a, e.a.size, i, s_values[v].raw, s_values[v].len, NULL, 0);
                int rv = s_decode_checked((uint8_t *)sb.data, sb.size);
                /* a value of another kind than the field's is always refused */
                if (!s_same_kind(e.a.ptr[i].type, s_values[v].kind))
                    assert_int_equal(rv, NS_ERR_PROTO);
                msgpack_sbuffer_destroy(&sb);
                tried++;
            }
        }
        msgpack_unpacked_destroy(&e.up);
        free(bytes);
    }
    assert_true(tried > 1000);
}

static int s_encode_decode(const ns_msg_t *m)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_int_equal(ns_msg_encode(m, &bytes, &len), NS_OK);
    int rv = s_decode_checked(bytes, len);
    free(bytes);
    return rv;
}

/* The sample message of type, with change applied, is refused. */
#define S_REFUSED(type, change)                                                  \
    do {                                                                         \
        m = s_sample(type, v, 4);                                                \
        change;                                                                  \
        assert_int_equal(s_encode_decode(&m), NS_ERR_PROTO);                     \
    } while (0)

static void test_wrong_counts_and_lengths(void **state)
{
    double v[8] = {0};
    static double many[65];
    ns_msg_t m;
    /* counts that disagree with the bin they describe (CHUNK n = 4, d = 1;
     * WELCOME canary_n = 2, dim = 2; RESULT n = 4) */
    for (int delta = -1; delta <= 1; delta += 2) {
        S_REFUSED(NS_MSG_CHUNK, m.n = (uint32_t)(4 + delta));
        S_REFUSED(NS_MSG_CHUNK, m.d = (uint32_t)(3 + delta));
        S_REFUSED(NS_MSG_WELCOME, m.canary_n = (uint32_t)(2 + delta));
        S_REFUSED(NS_MSG_WELCOME, m.dim = (uint32_t)(2 + delta));
        S_REFUSED(NS_MSG_RESULT, m.n = (uint32_t)(4 + delta));
        /* bins one byte short or long */
        S_REFUSED(NS_MSG_CHUNK, m.data_len = (size_t)((long)m.data_len + delta));
        S_REFUSED(NS_MSG_WELCOME, m.data_len = (size_t)((long)m.data_len + delta));
        S_REFUSED(NS_MSG_RESULT, m.data_len = (size_t)((long)m.data_len + delta));
        S_REFUSED(NS_MSG_READY, m.data_len = (size_t)((long)m.data_len + delta));
    }
    /* zero counts, out-of-range values */
    S_REFUSED(NS_MSG_CHUNK, m.n = 0; m.data_len = 0);
    S_REFUSED(NS_MSG_CHUNK, m.d = 0; m.data_len = 0);
    S_REFUSED(NS_MSG_CHUNK, m.attempt = 0);
    S_REFUSED(NS_MSG_ASK, m.token = 0);
    S_REFUSED(NS_MSG_RESULT, m.attempt = 0);
    S_REFUSED(NS_MSG_WELCOME, m.data_port = 65536);
    S_REFUSED(NS_MSG_WELCOME, m.data_port = 0);
    S_REFUSED(NS_MSG_WELCOME, m.token = 0);
    S_REFUSED(NS_MSG_WELCOME, m.heartbeat_ms = 0);
    S_REFUSED(NS_MSG_WELCOME, m.liveness = 0);
    /* more canary points than the protocol allows */
    S_REFUSED(NS_MSG_WELCOME, m.canary_n = 65; m.dim = 1; m.data = (const uint8_t *)many;
              m.data_len = sizeof many);
    S_REFUSED(NS_MSG_READY, m.status = 1);   /* a failed model sends no canary values */
    S_REFUSED(NS_MSG_READY, m.data_len = 12);
    S_REFUSED(NS_MSG_READY, m.status = 2);
    S_REFUSED(NS_MSG_RESULT, m.status = 2);
    S_REFUSED(NS_MSG_RESULT, m.status = 1);  /* failed, but values attached */
    /* n * d * 8 that wraps to 0 in 64 bits must not pass for an empty bin */
    S_REFUSED(NS_MSG_CHUNK, m.n = 1u << 30; m.d = 1u << 31; m.data_len = 0);
    S_REFUSED(NS_MSG_CHUNK, m.n = UINT32_MAX; m.d = UINT32_MAX; m.data_len = 0);
    /* ns_msg_get_doubles: the count must match the bin exactly, and a count
     * whose byte size wraps is refused */
    m = s_sample(NS_MSG_CHUNK, s_vals, 4);
    double out[5];
    assert_int_equal(ns_msg_get_doubles(&m, out, 3), NS_ERR_PROTO);
    assert_int_equal(ns_msg_get_doubles(&m, out, 5), NS_ERR_PROTO);
    assert_int_equal(ns_msg_get_doubles(&m, out, SIZE_MAX / 8 + 5), NS_ERR_PROTO);
    assert_int_equal(ns_msg_get_doubles(&m, out, 4), NS_OK);
}

static void test_huge_declared_sizes(void **state)
{
    /* headers claiming far more than the bytes present */
    static const s_value_t huge[] = {
        {{0xd9, 0xff}, 2, MSGPACK_OBJECT_STR},
        {{0xda, 0xff, 0xff}, 3, MSGPACK_OBJECT_STR},
        {{0xdb, 0xff, 0xff, 0xff, 0xff}, 5, MSGPACK_OBJECT_STR},
        {{0xdb, 0x7f, 0xff, 0xff, 0xf0}, 5, MSGPACK_OBJECT_STR},
        {{0xc4, 0xff}, 2, MSGPACK_OBJECT_BIN},
        {{0xc5, 0xff, 0xff}, 3, MSGPACK_OBJECT_BIN},
        {{0xc6, 0xff, 0xff, 0xff, 0xff}, 5, MSGPACK_OBJECT_BIN},
        {{0xdc, 0xff, 0xff}, 3, MSGPACK_OBJECT_ARRAY},
        {{0xdd, 0xff, 0xff, 0xff, 0xff}, 5, MSGPACK_OBJECT_ARRAY},
        {{0xde, 0xff, 0xff}, 3, MSGPACK_OBJECT_MAP},
        {{0xdf, 0xff, 0xff, 0xff, 0xff}, 5, MSGPACK_OBJECT_MAP},
        {{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}, 6, MSGPACK_OBJECT_EXT},
    };
    for (uint32_t t = 1; t < NS_MSG__COUNT; t++) {
        size_t len;
        uint8_t *bytes = s_valid(t, &len);
        s_elems_t e;
        s_elems(&e, bytes, len);
        for (size_t i = 0; i < e.a.size; i++) {
            for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++) {
                msgpack_sbuffer sb;
                s_repack(&sb, &e.a, e.a.size, i, huge[h].raw, huge[h].len, NULL, 0);
                assert_int_equal(s_decode_checked((uint8_t *)sb.data, sb.size), NS_ERR_PROTO);
                msgpack_sbuffer_destroy(&sb);
            }
        }
        /* the message's own array header claiming more elements */
        static const uint8_t big_arrays[][5] = {{0xdc, 0xff, 0xff}, {0xdc, 0x00, 0x19},
                                                {0xdd, 0xff, 0xff, 0xff, 0xff}};
        static const size_t big_len[] = {3, 3, 5};
        for (size_t h = 0; h < 3; h++) {
            size_t hdr = bytes[0] >= 0x90 && bytes[0] <= 0x9f ? 1 : 3;
            uint8_t *b = malloc(len - hdr + big_len[h]);
            memcpy(b, big_arrays[h], big_len[h]);
            memcpy(b + big_len[h], bytes + hdr, len - hdr);
            assert_int_equal(s_decode_checked(b, len - hdr + big_len[h]), NS_ERR_PROTO);
            free(b);
        }
        msgpack_unpacked_destroy(&e.up);
        free(bytes);
    }
    /* a string one byte over the limit is refused even when it is all there */
    char *big = malloc(NS_FARM_MAX_STR + 1);
    memset(big, 'x', NS_FARM_MAX_STR + 1);
    msgpack_sbuffer sb;
    s_pack_text(&sb, NS_FARM_PROTOCOL_VERSION, NS_MSG_STOP, big, NS_FARM_MAX_STR + 1);
    assert_int_equal(s_decode_checked((uint8_t *)sb.data, sb.size), NS_ERR_PROTO);
    msgpack_sbuffer_destroy(&sb);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_malformed_kinds),
        cmocka_unit_test(test_refuse_any_version),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_truncation_and_extension),
        cmocka_unit_test(test_type_confusion),
        cmocka_unit_test(test_wrong_counts_and_lengths),
        cmocka_unit_test(test_huge_declared_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
