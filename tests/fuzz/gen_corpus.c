/* gen_corpus.c - write the fuzzers' seed corpora: valid farm messages of
 * every kind (tests/fuzz/corpus/msg_decode/) and endpoints
 * (tests/fuzz/corpus/endpoint/). The corpora are committed; this program
 * regenerates them: scripts/fuzz.sh --seeds. Usage: gen_corpus CORPUS_DIR */
#include "nessai/codec.h"
#include "nessai/error.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_dir;
static int s_failed;

static void s_write(const char *sub, const char *name, const void *p, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", s_dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "gen_corpus: cannot write %s\n", path);
        s_failed = 1;
    }
}

/* Encode m; it must decode again (a seed that is not valid is no seed). */
static void s_msg(const char *name, const ns_msg_t *m)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    ns_msg_t back;
    if (ns_msg_encode(m, &bytes, &len) != NS_OK || ns_msg_decode(bytes, len, &back) != NS_OK) {
        fprintf(stderr, "gen_corpus: seed %s does not round-trip\n", name);
        s_failed = 1;
    } else
        s_write("msg_decode", name, bytes, len);
    free(bytes);
}

static ns_msg_t s_base(ns_msg_type_t type)
{
    ns_msg_t m;
    ns_msg_init(&m, type);
    m.run = 0x0123456789abcdefull;
    m.batch = 3;
    m.chunk = 1;
    m.attempt = 1;
    m.pid = 31337;
    m.slot = 0;
    m.dim = 2;
    m.data_port = 40001;
    m.token = 0x9e3779b97f4a7c15ull;
    m.heartbeat_ms = 1000;
    m.liveness = 3;
    m.max_message = 256u << 20;
    m.host = ns_str_of("node-7");
    m.worker = ns_str_of("w1");
    m.model_path = ns_str_of("/opt/nessai/libgaussian.so");
    m.model_args = ns_str_of("dim=2");
    m.model_name = ns_str_of("gaussian");
    m.model_hash = ns_str_of("ac913cf3f1dad5ac43167493cf3ad1d47b1e2415");
    return m;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus CORPUS_DIR\n");
        return 2;
    }
    s_dir = argv[1];
    double v[64];
    uint8_t scratch[64 * 8];   /* big-endian hosts: the little-endian copy */
    for (int i = 0; i < 64; i++)
        v[i] = (i % 2 ? -1.0 : 1.0) * (0.125 + i);
    v[1] = -INFINITY;
    v[2] = -0.0;
    ns_msg_t m;

    m = s_base(NS_MSG_HELLO);
    s_msg("hello", &m);
    m.text = ns_str_of("/home/user/models/libgaussian.so");
    m.slot = 7;
    s_msg("hello-override", &m);

    m = s_base(NS_MSG_WELCOME);
    m.canary_n = 4;
    ns_msg_set_doubles(&m, v, 8, scratch);
    s_msg("welcome", &m);
    m.canary_n = 0;
    ns_msg_set_doubles(&m, v, 0, scratch);
    s_msg("welcome-no-canary", &m);

    m = s_base(NS_MSG_READY);
    ns_msg_set_doubles(&m, v, 4, scratch);
    s_msg("ready", &m);
    m = s_base(NS_MSG_READY);
    m.status = 1;
    m.text = ns_str_of("cannot load model plugin: no such file");
    s_msg("ready-failed", &m);

    m = s_base(NS_MSG_ACCEPT);
    s_msg("accept", &m);
    m = s_base(NS_MSG_REFUSE);
    m.text = ns_str_of("canary check failed");
    s_msg("refuse", &m);
    m = s_base(NS_MSG_HEARTBEAT);
    s_msg("heartbeat", &m);
    m.run = 0;
    s_msg("heartbeat-unwelcomed", &m);
    m = s_base(NS_MSG_BYE);
    m.text = ns_str_of("signal received");
    s_msg("bye", &m);
    m = s_base(NS_MSG_STOP);
    m.text = ns_str_of("the run is over");
    s_msg("stop", &m);

    m = s_base(NS_MSG_CHUNK);
    m.n = 3;
    m.d = 2;
    ns_msg_set_doubles(&m, v, 6, scratch);
    s_msg("chunk", &m);
    m.n = 32;   /* 512 bytes: a bin16 */
    m.d = 2;
    m.attempt = 4;
    ns_msg_set_doubles(&m, v, 64, scratch);
    s_msg("chunk-bin16", &m);

    m = s_base(NS_MSG_ASK);
    s_msg("ask", &m);
    m.received = 1234567;
    s_msg("ask-received", &m);

    m = s_base(NS_MSG_RESULT);
    m.n = 3;
    m.cpu_s = 0.0025;
    m.wall_s = 0.003;
    ns_msg_set_doubles(&m, v, 3, scratch);
    s_msg("result", &m);
    m.status = 1;
    m.text = ns_str_of("log_likelihood returned NaN");
    ns_msg_set_doubles(&m, v, 0, scratch);
    s_msg("result-failed", &m);

    /* long strings: str8 and str16 forms */
    char longer[301];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    m = s_base(NS_MSG_STOP);
    m.text = ns_str_of(longer);
    s_msg("stop-str16", &m);
    longer[200] = '\0';
    m = s_base(NS_MSG_BYE);
    m.text = ns_str_of(longer);
    s_msg("bye-str8", &m);

    /* another version: a REFUSE is read, a HELLO is recognised as other
     * (version 1, the previous one, and version 3) */
    static const uint8_t refuse_v7[] = {0x94, 0xa6, 'N', 'S', 'F', 'A', 'R', 'M', 0x07, 0x05,
                                        0xa4, 'n', 'o', 'p', 'e'};
    s_write("msg_decode", "refuse-v7", refuse_v7, sizeof refuse_v7);
    static const uint8_t hello_v1[] = {0x97, 0xa6, 'N', 'S', 'F', 'A', 'R', 'M', 0x01, 0x01,
                                       0xa1, 'h', 0x01, 0x00, 0xa0};
    s_write("msg_decode", "hello-v1", hello_v1, sizeof hello_v1);
    static const uint8_t hello_v3[] = {0x97, 0xa6, 'N', 'S', 'F', 'A', 'R', 'M', 0x03, 0x01,
                                       0xa1, 'h', 0x01, 0x00, 0xa0};
    s_write("msg_decode", "hello-v3", hello_v3, sizeof hello_v3);
    /* version 1's TAKE (type 10 with five fields): not an ASK of ours */
    static const uint8_t take_v1[] = {0x98, 0xa6, 'N', 'S', 'F', 'A', 'R', 'M', 0x01, 0x0a,
                                      0x01, 0xa2, 'w', '1', 0x01, 0x00, 0x01};
    s_write("msg_decode", "take-v1", take_v1, sizeof take_v1);

    /* a regression: n * d * 8 wraps to 0 in 64 bits (must be rejected) */
    static const uint8_t chunk_wrap[] = {0x9a, 0xa6, 'N', 'S', 'F', 'A', 'R', 'M', 0x02, 0x09,
                                         0x01, 0x01, 0x00, 0x01, 0xce, 0x40, 0x00, 0x00, 0x00,
                                         0xce, 0x80, 0x00, 0x00, 0x00, 0xc4, 0x00};
    s_write("msg_decode", "regress-chunk-size-wrap", chunk_wrap, sizeof chunk_wrap);

    /* endpoints: two bytes of port, then the text */
    static const char *eps[] = {"tcp://head-node:5555", "tcp://*:5555", "tcp://127.0.0.1:5555",
                                "tcp://[::1]:5555", "ipc:///tmp/farm"};
    for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) {
        uint8_t buf[64] = {0x9c, 0x41};   /* port 40001 */
        size_t n = strlen(eps[i]);
        memcpy(buf + 2, eps[i], n);
        char name[32];
        snprintf(name, sizeof name, "endpoint-%zu", i);
        s_write("endpoint", name, buf, n + 2);
    }
    return s_failed;
}
