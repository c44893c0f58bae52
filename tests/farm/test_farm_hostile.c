/* test_farm_hostile.c - malformed messages of every kind on every
 * coordinator socket are dropped and counted; the farm keeps working.
 * (Well-formed messages from the wrong worker: test_farm_addressed.c.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "nessai/codec.h"
#include "farm_fixture.h"
#include "nessai/error.h"


typedef struct {
    ns_evaluator_t *ev;
    uint64_t want;
} s_wait_t;

static int s_malformed_at_least(void *arg)
{
    s_wait_t *w = arg;
    ns_farm_stats_t st;
    ns_farm_stats(w->ev, &st);
    return st.malformed_dropped >= w->want;
}

static void test_malformed_dropped_and_counted(void **state)
{
    ns_model_t *model = th_farm_model("dim=4");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", "max-message-size", "1", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);

    /* Register a fake worker far enough to learn the data port. */
    zsock_t *dealer = zsock_new_dealer(ns_farm_endpoint(ev));
    zsock_set_rcvtimeo(dealer, 10000);
    ns_msg_t hello;
    ns_msg_init(&hello, NS_MSG_HELLO);
    hello.host = ns_str_of("fake");
    zframe_t *f = th_farm_frame(&hello);
    zframe_send(&f, dealer, 0);
    zframe_t *wf = zframe_recv(dealer);
    assert_non_null(wf);
    ns_msg_t welcome;
    assert_int_equal(ns_msg_decode(zframe_data(wf), zframe_size(wf), &welcome), NS_OK);
    assert_int_equal(welcome.type, NS_MSG_WELCOME);
    assert_int_equal(welcome.max_message, 1u << 20);
    char ep[128];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", welcome.data_port);

    /* control channel junk */
    zstr_send(dealer, "");
    zstr_send(dealer, "not msgpack at all");
    ns_msg_t bad;
    ns_msg_init(&bad, NS_MSG_HEARTBEAT);
    f = th_farm_frame(&bad);
    zframe_t *cut = zframe_new(zframe_data(f), zframe_size(f) - 1);   /* truncated */
    zframe_send(&cut, dealer, 0);
    zframe_t *sig = zframe_dup(f);
    zframe_data(sig)[2] = 'X';                                          /* wrong signature */
    zframe_send(&sig, dealer, 0);
    zframe_send(&f, dealer, ZFRAME_MORE);                               /* two frames */
    zstr_send(dealer, "extra");
    ns_msg_t chunk;                                                     /* a coordinator-only type */
    ns_msg_init(&chunk, NS_MSG_STOP);
    f = th_farm_frame(&chunk);
    zframe_send(&f, dealer, 0);
    const uint64_t control_junk = 6;

    /* data channel junk */
    zsock_t *push = zsock_new_dealer(ep);
    assert_non_null(push);
    double v[4] = {1, 2, 3, 4};
    ns_msg_t r;
    ns_msg_init(&r, NS_MSG_RESULT);
    r.run = welcome.run;
    r.worker = ns_str_of("w1");
    r.batch = 1;
    r.attempt = 1;
    r.n = 4;
    ns_msg_set_doubles(&r, v, 4, NULL);
    f = th_farm_frame(&r);
    cut = zframe_new(zframe_data(f), zframe_size(f) / 2);
    zframe_send(&cut, push, 0);                                         /* truncated */
    zframe_t *lie = zframe_dup(f);
    zframe_send(&f, push, 0);   /* well-formed, on a connection bound to nobody */
    /* n = 5 with four doubles: lengths disagree (encoder does not check) */
    r.n = 5;
    f = th_farm_frame(&r);
    zframe_send(&f, push, 0);
    zstr_send(push, "\x9f");                                            /* array, no elements */
    zframe_send(&lie, push, ZFRAME_MORE);                               /* multi-part */
    zstr_send(push, "tail");
    /* a HELLO on the data socket */
    f = th_farm_frame(&hello);
    zframe_send(&f, push, 0);
    const uint64_t results_junk = 5;
    /* oversized (2 MiB > 1 MiB limit): libzmq drops the connection */
    zsock_t *push2 = zsock_new_dealer(ep);
    zframe_t *big = zframe_new(NULL, 2u << 20);
    memset(zframe_data(big), 0x90, zframe_size(big));
    zframe_send(&big, push2, 0);

    s_wait_t w = {ev, control_junk + results_junk};
    assert_true(th_wait_for(s_malformed_at_least, &w, 10));
    ns_farm_stats_t st;
    ns_farm_stats(ev, &st);
    assert_int_equal(st.misaddressed_dropped, 1);
    assert_int_equal(st.stale_results, 0);

    /* the farm still evaluates exactly with a real worker */
    pid_t good = th_farm_spawn_worker(ns_farm_endpoint(ev), NULL, NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, 1, 30), NS_OK);
    size_t n = 300;
    double *x = th_farm_points(n, 4, 11);
    assert_true(th_farm_matches_inprocess(ev, model, x, n, 4));
    ns_farm_stats(ev, &st);
    assert_int_equal(st.malformed_dropped, control_junk + results_junk);
    free(x);
    zframe_destroy(&wf);
    zsock_destroy(&push);
    zsock_destroy(&push2);
    zsock_destroy(&dealer);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    assert_true(th_wait_pid(good, 10, NULL));
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_dropped_and_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
