/* test_codec.c - every message type round-trips; malformed bytes of every
 * kind are rejected without crashing. */
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
    m.work_port = 5556;
    m.results_port = 5557;
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
        /* every truncation is rejected */
        for (size_t cut = 0; cut < len; cut++)
            assert_int_equal(ns_msg_decode(bytes, cut, &r), NS_ERR_PROTO);
        /* trailing garbage is rejected */
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, bytes, len);
        longer[len] = 0xc0;
        assert_int_equal(ns_msg_decode(longer, len + 1, &r), NS_ERR_PROTO);
        /* flipping any single byte never crashes; most are rejected */
        for (size_t i = 0; i < len; i++) {
            memcpy(longer, bytes, len);
            longer[i] ^= 0xff;
            (void)ns_msg_decode(longer, len, &r);
        }
        free(longer);
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

/* A REFUSE from any version is readable, so the reason always arrives. */
static void test_refuse_any_version(void **state)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_str(&pk, 6);
    msgpack_pack_str_body(&pk, NS_FARM_SIGNATURE, 6);
    msgpack_pack_uint32(&pk, 7);
    msgpack_pack_uint32(&pk, NS_MSG_REFUSE);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "nope", 4);
    ns_msg_t m;
    assert_int_equal(ns_msg_decode(sb.data, sb.size, &m), NS_OK);
    assert_int_equal(m.version, 7);
    assert_int_equal(m.type, NS_MSG_REFUSE);
    assert_true(ns_str_eq(m.text, "nope"));
    msgpack_sbuffer_destroy(&sb);
}

/* Random bytes never crash the decoder. */
static void test_random_bytes(void **state)
{
    uint8_t buf[256];
    unsigned long long s = 12345;
    int accepted = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(s % sizeof buf);
        for (size_t i = 0; i < len; i++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            buf[i] = (uint8_t)s;
        }
        if (len > 0)
            buf[0] = (uint8_t)(0x90 | (s & 0x0f));   /* mostly plausible arrays */
        ns_msg_t m;
        accepted += ns_msg_decode(buf, len, &m) == NS_OK;
    }
    assert_int_equal(accepted, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_malformed_kinds),
        cmocka_unit_test(test_refuse_any_version),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
