/* test_farm_refuse.c - workers with another model, another protocol
 * version, a failing model or other canary values are refused, and both
 * sides say why. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nessai/codec.h"
#include "farm_fixture.h"
#include "nessai/error.h"
#include "nessai/log.h"

typedef struct {
    const char *name;
    const char *const *args;   /* extra worker arguments */
    const char *const *env;    /* extra worker environment */
    const char *why;           /* in both logs */
} s_case_t;

static void test_refusals(void **state)
{
    char clog[128];
    assert_int_equal(th_tmpfile(clog, sizeof clog, "coord"), 0);
    assert_int_equal(ns_log_open_file(clog), NS_OK);
    ns_model_t *model = th_farm_model("dim=4");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    const s_case_t cases[] = {
        {"other model", (const char *const[]){"--model", FARMOTHER_PLUGIN, NULL}, NULL,
         "another model: worker has name=farmother"},
        {"canary", NULL, (const char *const[]){"NS_FARMTEST_OFFSET=1e-9", NULL},
         "canary check failed: point 0"},
        {"init", NULL, (const char *const[]){"NS_FARMTEST_FAIL_INIT=1", NULL},
         "the model failed to initialise on the worker"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char wlog[128];
        assert_int_equal(th_tmpfile(wlog, sizeof wlog, "worker"), 0);
        pid_t pid = th_farm_spawn_worker(ns_farm_endpoint(ev), cases[i].args, cases[i].env, wlog);
        int code = -1;
        assert_true(th_wait_pid(pid, 20, &code));
        assert_int_equal(code, 1);
        if (!th_file_contains(wlog, cases[i].why))
            fail_msg("case %s: worker log lacks '%s'", cases[i].name, cases[i].why);
        assert_true(th_file_contains(wlog, "refused by the coordinator"));
        if (!th_file_contains(clog, cases[i].why))
            fail_msg("case %s: coordinator log lacks '%s'", cases[i].name, cases[i].why);
        unlink(wlog);
    }
    ns_farm_stats_t st;
    ns_farm_stats(ev, &st);
    assert_int_equal(st.refused, 3);
    assert_int_equal(st.workers_seen, 0);
    /* the farm still works with a proper worker */
    pid_t good = th_farm_spawn_worker(ns_farm_endpoint(ev), NULL, NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, 1, 30), NS_OK);
    double x[40];
    for (int i = 0; i < 40; i++)
        x[i] = (i % 7) - 3.0;
    assert_true(th_farm_matches_inprocess(ev, model, x, 10, 4));
    ns_log_close_file();
    unlink(clog);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    assert_true(th_wait_pid(good, 10, NULL));
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

/* A message header of another version, hand-built: [sig, version, type]. */
static zframe_t *s_other_version(uint32_t version, uint32_t type)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_str(&pk, 6);
    msgpack_pack_str_body(&pk, NS_FARM_SIGNATURE, 6);
    msgpack_pack_uint32(&pk, version);
    msgpack_pack_uint32(&pk, type);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "host", 4);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_uint32(&pk, 0);
    msgpack_pack_str(&pk, 0);
    zframe_t *f = zframe_new(sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return f;
}

/* The coordinator refuses a HELLO of another version (version 1, the
 * previous one, whose HELLO has the same fields, and a future one) and
 * says why. */
static void test_coordinator_refuses_other_version(void **state)
{
    ns_model_t *model = th_farm_model("dim=4");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    const uint32_t versions[] = {1, 99};
    for (size_t i = 0; i < 2; i++) {
        zsock_t *dealer = zsock_new_dealer(ns_farm_endpoint(ev));
        assert_non_null(dealer);
        zsock_set_rcvtimeo(dealer, 10000);
        zframe_t *hello = s_other_version(versions[i], NS_MSG_HELLO);
        assert_int_equal(zframe_send(&hello, dealer, 0), 0);
        zframe_t *reply = zframe_recv(dealer);
        assert_non_null(reply);
        ns_msg_t m;
        assert_int_equal(ns_msg_decode(zframe_data(reply), zframe_size(reply), &m), NS_OK);
        assert_int_equal(m.type, NS_MSG_REFUSE);
        char text[512], want[64];
        ns_str_copy(m.text, text, sizeof text);
        snprintf(want, sizeof want, "protocol version %u is not the coordinator's version %u",
                 versions[i], NS_FARM_PROTOCOL_VERSION);
        if (!strstr(text, want))
            fail_msg("REFUSE says \"%s\", not \"%s\"", text, want);
        zframe_destroy(&reply);
        zsock_destroy(&dealer);
    }
    assert_int_equal(NS_FARM_PROTOCOL_VERSION, 2);
    ns_farm_stats_t st;
    ns_farm_stats(ev, &st);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.workers_seen, 0);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

/* A worker facing a coordinator of another version exits 1 and says why. */
static void test_worker_refuses_other_version(void **state)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    int port = zsock_bind(router, "tcp://127.0.0.1:*");
    assert_true(port > 0);
    zsock_set_rcvtimeo(router, 10000);
    char ep[64], wlog[128];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    assert_int_equal(th_tmpfile(wlog, sizeof wlog, "worker"), 0);
    pid_t pid = th_farm_spawn_worker(ep, NULL, NULL, wlog);
    zmsg_t *hello = zmsg_recv(router);
    assert_non_null(hello);
    zframe_t *routing = zmsg_pop(hello);
    zframe_t *body = zmsg_pop(hello);
    ns_msg_t m;
    assert_int_equal(ns_msg_decode(zframe_data(body), zframe_size(body), &m), NS_OK);
    assert_int_equal(m.type, NS_MSG_HELLO);
    assert_int_equal(m.version, NS_FARM_PROTOCOL_VERSION);
    zframe_destroy(&body);
    zmsg_destroy(&hello);
    /* malformed control messages first: dropped, the worker stays */
    const char *junk[] = {"", "\x93", "garbage that is not msgpack"};
    for (int i = 0; i < 3; i++) {
        zframe_send(&routing, router, ZFRAME_MORE | ZFRAME_REUSE);
        zstr_send(router, junk[i]);
    }
    zframe_t *welcome = s_other_version(1, NS_MSG_WELCOME);
    zframe_send(&routing, router, ZFRAME_MORE | ZFRAME_REUSE);
    zframe_send(&welcome, router, 0);
    int code = -1;
    assert_true(th_wait_pid(pid, 10, &code));
    assert_int_equal(code, 1);
    assert_true(th_file_contains(wlog, "speaks farm protocol version 1, this worker version 2"));
    unlink(wlog);
    zframe_destroy(&routing);
    zsock_destroy(&router);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_coordinator_refuses_other_version),
        cmocka_unit_test(test_worker_refuses_other_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
