/* fuzz_msg_decode.c - libFuzzer harness for the farm message decoder
 * (ns_msg_decode, then ns_msg_get_doubles on what it accepted).
 *
 * Whatever the bytes, the decoder must return an error or a message that
 * keeps every rule of docs/protocol.md §4 and re-encodes to a message that
 * decodes to the same fields. A broken rule aborts (a finding); ASan and
 * UBSan catch reads out of bounds. Built and run by scripts/fuzz.sh. */
#include "nessai/codec.h"
#include "nessai/error.h"
#include "fuzz_check.h"
#include "msg_same.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_in(const ns_str_t s, const uint8_t *base, size_t len)
{
    if (s.len == 0)
        return 1;
    return (const uint8_t *)s.ptr >= base && s.len <= len
           && (size_t)((const uint8_t *)s.ptr - base) <= len - s.len;
}

/* The rules a decoded message keeps (docs/protocol.md §4). */
static void s_check_rules(const ns_msg_t *m, const uint8_t *bytes, size_t len)
{
    CHECK(m->type >= NS_MSG_HELLO && m->type < NS_MSG__COUNT);
    const ns_str_t strs[] = {m->host, m->worker, m->model_path, m->model_args,
                             m->model_name, m->model_hash, m->text};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        CHECK(strs[i].len <= NS_FARM_MAX_STR);
        CHECK(strs[i].ptr != NULL);
        CHECK(s_in(strs[i], bytes, len));
    }
    if (m->data_len > 0) {
        CHECK(m->data >= bytes && m->data_len <= len
              && (size_t)(m->data - bytes) <= len - m->data_len);
    }
    unsigned __int128 want;
    switch (m->type) {
    case NS_MSG_WELCOME:
        CHECK(m->dim >= 1 && m->canary_n <= 64 && m->heartbeat_ms >= 1 && m->liveness >= 1);
        CHECK(m->data_port >= 1 && m->data_port <= 65535 && m->token >= 1);
        want = (unsigned __int128)m->canary_n * m->dim * 8;
        CHECK(want == m->data_len);
        break;
    case NS_MSG_READY:
        CHECK(m->status <= 1 && m->data_len % 8 == 0 && m->data_len <= 64 * 8);
        CHECK(m->status == 0 || m->data_len == 0);
        break;
    case NS_MSG_CHUNK:
        CHECK(m->n >= 1 && m->d >= 1 && m->attempt >= 1);
        want = (unsigned __int128)m->n * m->d * 8;
        CHECK(want == m->data_len);
        break;
    case NS_MSG_ASK:
        CHECK(m->token >= 1 && m->data_len == 0);
        break;
    case NS_MSG_RESULT:
        CHECK(m->n >= 1 && m->attempt >= 1 && m->status <= 1);
        want = m->status == 0 ? (unsigned __int128)m->n * 8 : 0;
        CHECK(want == m->data_len);
        break;
    default:
        CHECK(m->data_len == 0);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes, so ASan sees any read past the end */
    uint8_t *bytes = malloc(size ? size : 1);
    if (!bytes)
        return 0;
    if (size)
        memcpy(bytes, data, size);
    ns_msg_t m;
    int rv = ns_msg_decode(bytes, size, &m);
    CHECK(rv == NS_OK || rv == NS_ERR_PROTO || rv == NS_MSG_OTHER_VERSION);
    if (rv == NS_MSG_OTHER_VERSION)
        CHECK(m.version != NS_FARM_PROTOCOL_VERSION && m.type >= 1 && m.type < NS_MSG__COUNT);
    if (rv == NS_OK && m.version != NS_FARM_PROTOCOL_VERSION)
        CHECK(m.type == NS_MSG_REFUSE);   /* only a REFUSE is read across versions */
    if (rv == NS_OK) {
        s_check_rules(&m, bytes, size);
        size_t count = m.data_len / 8;
        double *v = malloc(count ? count * sizeof *v : 1);
        CHECK(v != NULL);
        CHECK(ns_msg_get_doubles(&m, v, count) == (m.data_len % 8 ? NS_ERR_PROTO : NS_OK));
        if (count > 0)
            CHECK(ns_msg_get_doubles(&m, v, count - 1) == NS_ERR_PROTO);
        free(v);
        /* encode what was decoded: it must decode to the same fields */
        uint8_t *again = NULL;
        size_t again_len = 0;
        CHECK(ns_msg_encode(&m, &again, &again_len) == NS_OK);
        ns_msg_t r;
        CHECK(ns_msg_decode(again, again_len, &r) == NS_OK);
        CHECK(r.version == NS_FARM_PROTOCOL_VERSION);
        CHECK(ns_test_msg_same(&m, &r));
        /* and the canonical encoding is a fixed point */
        uint8_t *third = NULL;
        size_t third_len = 0;
        CHECK(ns_msg_encode(&r, &third, &third_len) == NS_OK);
        CHECK(third_len == again_len && memcmp(third, again, again_len) == 0);
        free(third);
        free(again);
    }
    free(bytes);
    return 0;
}
