/* test_farm_addressed.c - addressed work (docs/protocol.md §3, "Asking for
 * work"; §8, "Workers cannot speak for each other"): a worker holding the
 * run's shared key that answers under another worker's id, for attempts it
 * was not sent, or on a connection bound to nobody changes nothing; a
 * stopped worker, once declared lost, is sent nothing more and the others
 * carry the run; an accepted worker that never opens its data connection
 * is named in a warning. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "farm_fixture.h"
#include "nessai/error.h"
#include "nessai/keys.h"
#include "nessai/log.h"
#include "nessai/wire.h"
#include "nessai/util.h"

#define S_N 400          /* points per batch */
#define S_K 4            /* chunks per batch: 3 honest workers and the impostor */

/* ---- a hostile worker with the shared client key --------------------------- */

typedef struct {
    const char *endpoint;
    const char *keys;
    int never_bind;             /* accepted, but never opens its data connection */
    atomic_int stop;
    atomic_int registered;      /* accepted and bound */
    atomic_int failed;          /* 1: something went wrong (the test fails) */
    char why[256];
    atomic_ulong forged;        /* misaddressed messages sent */
    atomic_ulong chunks;        /* CHUNKs it was sent */
    char id[32];
} s_impostor_t;

static void s_send(zsock_t *sock, const ns_msg_t *m)
{
    zframe_t *f = th_farm_frame(m);
    zframe_send(&f, sock, 0);
}

/* The next message of a type on sock, skipping heartbeats; 0 on timeout. */
static int s_recv_type(zsock_t *sock, uint32_t type, ns_msg_t *m, zframe_t **keep, int ms)
{
    double until = ns_now() + ms / 1000.0;
    while (ns_now() < until) {
        zsock_set_rcvtimeo(sock, (int)((until - ns_now()) * 1000.0) + 1);
        zframe_t *f = zframe_recv(sock);
        if (!f)
            return 0;
        if (ns_msg_decode(zframe_data(f), zframe_size(f), m) == NS_OK && m->type == type) {
            *keep = f;
            return 1;
        }
        zframe_destroy(&f);
    }
    return 0;
}

static zsock_t *s_curve_dealer(s_impostor_t *im, zcert_t *mine, zcert_t *server, const char *ep)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    ns_keys_client(d, mine, server);
    zsock_set_linger(d, 0);
    if (zsock_connect(d, "%s", ep) != 0) {
        snprintf(im->why, sizeof im->why, "cannot connect to %s", ep);
        im->failed = 1;
    }
    return d;
}

/* A RESULT of n values 1234.5 (not what the model gives anywhere). */
static void s_forge(zsock_t *sock, uint64_t run, const char *who, uint64_t batch, uint32_t chunk,
                    uint32_t attempt, uint32_t n, atomic_ulong *count)
{
    double *v = malloc(n * sizeof *v);
    for (uint32_t i = 0; i < n; i++)
        v[i] = 1234.5;
    ns_msg_t r;
    ns_msg_init(&r, NS_MSG_RESULT);
    r.run = run;
    r.worker = ns_str_of(who);
    r.batch = batch;
    r.chunk = chunk;
    r.attempt = attempt;
    r.n = n;
    r.wall_s = 1e-6;
    ns_msg_set_doubles(&r, v, n, NULL);
    s_send(sock, &r);
    free(v);
    (*count)++;
}

static void *s_impostor(void *arg)
{
    s_impostor_t *im = arg;
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/worker.key_secret", im->keys);
    zcert_t *mine = ns_keys_load_secret(path, err, sizeof err);
    snprintf(path, sizeof path, "%s/coordinator.key", im->keys);
    zcert_t *server = ns_keys_load_public(path, err, sizeof err);
    ns_model_t *model = th_farm_model("dim=2,delay_ms=2");   /* the run's model */
    if (!mine || !server || !model) {
        snprintf(im->why, sizeof im->why, "keys or model: %.200s", err);
        im->failed = 1;
        return NULL;
    }
    /* register like a worker: HELLO, WELCOME, READY with the right canary, ACCEPT */
    zsock_t *control = s_curve_dealer(im, mine, server, im->endpoint);
    ns_msg_t m;
    ns_msg_init(&m, NS_MSG_HELLO);
    m.host = ns_str_of("impostor");
    m.pid = (uint32_t)getpid();
    s_send(control, &m);
    zframe_t *wf = NULL;
    if (!s_recv_type(control, NS_MSG_WELCOME, &m, &wf, 10000)) {
        snprintf(im->why, sizeof im->why, "no WELCOME");
        im->failed = 1;
        goto out;
    }
    uint64_t run = m.run, token = m.token;
    ns_str_copy(m.worker, im->id, sizeof im->id);
    double cx[64 * 2], cl[64];
    ns_msg_get_doubles(&m, cx, (size_t)m.canary_n * m.dim);
    size_t ncanary = m.canary_n;
    char data_ep[128];
    ns_wire_endpoint_with_port(im->endpoint, m.data_port, data_ep, sizeof data_ep);
    zframe_destroy(&wf);
    th_farm_inprocess(model, cx, ncanary, cl);
    ns_msg_init(&m, NS_MSG_READY);
    m.run = run;
    m.model_name = ns_str_of(ns_model_name(model));
    m.model_hash = ns_str_of(ns_model_hash(model));
    m.dim = (uint32_t)ns_model_dim(model);
    ns_msg_set_doubles(&m, cl, ncanary, NULL);
    s_send(control, &m);
    zframe_t *af = NULL;
    if (!s_recv_type(control, NS_MSG_ACCEPT, &m, &af, 10000)) {
        snprintf(im->why, sizeof im->why, "not accepted");
        im->failed = 1;
        goto out;
    }
    zframe_destroy(&af);
    while (im->never_bind && !im->stop) {
        im->registered = 1;
        ns_msg_init(&m, NS_MSG_HEARTBEAT);
        m.run = run;
        s_send(control, &m);
        zsock_set_rcvtimeo(control, 300);
        zframe_t *f = zframe_recv(control);
        zframe_destroy(&f);
    }
    if (im->never_bind)
        goto out;
    /* its own data connection, bound with its token, and a second one
     * that it never binds */
    zsock_t *data = s_curve_dealer(im, mine, server, data_ep);
    zsock_t *other = s_curve_dealer(im, mine, server, data_ep);
    uint64_t received = 0;
    ns_msg_t ask;
    ns_msg_init(&ask, NS_MSG_ASK);
    ask.run = run;
    ask.worker = ns_str_of(im->id);
    ask.token = token;
    s_send(data, &ask);
    /* the second connection tries to pass for w1 with the token it has */
    ns_msg_t steal = ask;
    steal.worker = ns_str_of("w1");
    s_send(other, &steal);
    im->forged++;
    im->registered = 1;
    double next_hb = 0;
    while (!im->stop) {
        if (ns_now() >= next_hb) {   /* stay live */
            ns_msg_init(&m, NS_MSG_HEARTBEAT);
            m.run = run;
            s_send(control, &m);
            next_hb = ns_now() + 0.3;
        }
        zmq_pollitem_t items[2] = {{zsock_resolve(control), 0, ZMQ_POLLIN, 0},
                                   {zsock_resolve(data), 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, 50) <= 0)
            continue;
        if (items[0].revents & ZMQ_POLLIN) {
            zframe_t *f = zframe_recv(control);
            zframe_destroy(&f);
        }
        if (!(items[1].revents & ZMQ_POLLIN))
            continue;
        zframe_t *f = zframe_recv(data);
        received++;
        ns_msg_t c;
        if (!f || ns_msg_decode(zframe_data(f), zframe_size(f), &c) != NS_OK
            || c.type != NS_MSG_CHUNK) {
            zframe_destroy(&f);
            continue;
        }
        im->chunks++;
        /* every other chunk of the batch, under every other id, and
         * under its own id for what it was not sent; then the same on the
         * connection bound to nobody */
        for (uint32_t j = 0; j < S_K; j++) {
            uint32_t n = (S_N - j + S_K - 1) / S_K;   /* array_split sizes */
            for (uint32_t a = 1; a <= 2; a++) {
                for (int w = 1; w <= S_K; w++) {
                    char who[16];
                    snprintf(who, sizeof who, "w%d", w);
                    if (strcmp(who, im->id) != 0)
                        s_forge(data, run, who, c.batch, j, a, n, &im->forged);
                }
                if (j != c.chunk || a != c.attempt)
                    s_forge(data, run, im->id, c.batch, j, a, n, &im->forged);
                s_forge(other, run, im->id, c.batch, j, a, n, &im->forged);
                s_forge(other, run, "w1", c.batch, j, a, n, &im->forged);
            }
        }
        /* and its own chunk, honestly, as the first valid result may be */
        double *x = malloc((size_t)c.n * c.d * sizeof *x), *l = malloc(c.n * sizeof *l);
        ns_msg_get_doubles(&c, x, (size_t)c.n * c.d);
        th_farm_inprocess(model, x, c.n, l);
        ns_msg_t r;
        ns_msg_init(&r, NS_MSG_RESULT);
        r.run = run;
        r.worker = ns_str_of(im->id);
        r.batch = c.batch;
        r.chunk = c.chunk;
        r.attempt = c.attempt;
        r.n = c.n;
        ns_msg_set_doubles(&r, l, c.n, NULL);
        s_send(data, &r);
        free(x);
        free(l);
        zframe_destroy(&f);
        ask.received = received;
        s_send(data, &ask);
    }
    zsock_destroy(&data);
    zsock_destroy(&other);
out:
    zsock_destroy(&control);
    zcert_destroy(&mine);
    zcert_destroy(&server);
    ns_model_destroy(&model);
    return NULL;
}

typedef struct {
    ns_evaluator_t *ev;
    uint64_t want;
} s_count_t;

static int s_misaddressed_reached(void *arg)
{
    s_count_t *c = arg;
    ns_farm_stats_t st;
    ns_farm_stats(c->ev, &st);
    return st.misaddressed_dropped >= c->want;
}

static int s_registered(void *arg)
{
    s_impostor_t *im = arg;
    return im->registered || im->failed;
}

static void test_impostor_with_the_shared_key(void **state)
{
    if (!ns_keys_available()) {
        fprintf(stderr, "libzmq without CURVE: the farm cannot be secured here\n");
        fail();
    }
    char keys[256], clog[128];
    assert_int_equal(th_mkdtemp(keys, sizeof keys, "keys"), 0);
    assert_int_equal(th_tmpfile(clog, sizeof clog, "coord"), 0);
    assert_int_equal(ns_log_open_file(clog), NS_OK);
    /* 100-point chunks of 2 ms points: the forgeries arrive long before
     * any honest result */
    ns_model_t *model = th_farm_model("dim=2,delay_ms=2");
    /* no spot checks: the addressing alone must keep the forgeries out */
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", "curve", "true", "farm-keys",
                                      keys, "spot-check", "0", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    pid_t w[3];
    for (int i = 0; i < 3; i++)
        w[i] = th_farm_spawn_worker(ns_farm_endpoint(ev), (const char *const[]){"--keys", keys,
                                    NULL}, NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, 3, 30), NS_OK);
    s_impostor_t im;
    memset(&im, 0, sizeof im);
    im.endpoint = ns_farm_endpoint(ev);
    im.keys = keys;
    pthread_t th;
    pthread_create(&th, NULL, s_impostor, &im);
    assert_true(th_wait_for(s_registered, &im, 20));
    if (im.failed)
        fail_msg("the impostor could not register: %s", im.why);
    assert_int_equal(ns_farm_wait_live(ev, 4, 10), NS_OK);

    double *x = th_farm_points(S_N, 2, 23), *want = malloc(S_N * 8), *got = malloc(S_N * 8);
    th_farm_inprocess(model, x, S_N, want);
    for (int b = 0; b < 3; b++) {
        memset(got, 0, S_N * 8);
        assert_int_equal(ns_evaluator_evaluate(ev, x, S_N, 2, got), NS_OK);
        assert_memory_equal(got, want, S_N * 8);
    }
    im.stop = 1;
    pthread_join(th, NULL);
    assert_false(im.failed);
    fprintf(stderr, "impostor %s: %lu chunks, %lu forged messages\n", im.id,
            (unsigned long)im.chunks, (unsigned long)im.forged);
    assert_true(im.chunks >= 1);   /* it was given work, and forged for each */
    /* every forgery is dropped and counted, none is used */
    s_count_t c = {ev, im.forged};
    assert_true(th_wait_for(s_misaddressed_reached, &c, 10));
    ns_farm_stats_t st;
    ns_farm_stats(ev, &st);
    assert_int_equal(st.misaddressed_dropped, im.forged);
    assert_int_equal(st.workers_seen, 4);
    assert_int_equal(st.refused, 0);
    /* (stale and duplicate results may come from honest workers whose
     * chunk was also sent to another as a straggler's) */
    assert_int_equal(st.malformed_dropped, 0);
    assert_int_equal(st.failed_chunks, 0);
    assert_int_equal(st.batches, 3);
    ns_log_close_file();
    /* said at debug level each time, warned about at most every 10 s */
    char *text = th_slurp(clog);
    assert_non_null(text);
    size_t warned = 0;
    for (const char *p = text; (p = strstr(p, "did not come from the worker they name")); p++)
        warned++;
    fprintf(stderr, "%zu warnings\n", warned);
    assert_true(warned >= 1 && warned <= 2);
    assert_non_null(strstr(text, "that did not come from the worker they name (1 in all; "));
    free(text);
    unlink(clog);

    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    for (int i = 0; i < 3; i++)
        if (!th_wait_pid(w[i], 10, NULL))
            th_kill_pid(w[i]);
    free(x);
    free(want);
    free(got);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
    th_rm_rf(keys);
}

/* ---- a stopped worker ---------------------------------------------------------- */

typedef struct {
    const char *log;
    pid_t pid;
    int fired;
    size_t lines_at_stop;       /* "evaluating chunk" lines in its log then */
} s_stopper_t;

/* How often needle occurs in the file before the second occurrence of
 * until (NULL: in the whole file). */
static size_t s_count(const char *path, const char *needle, const char *until)
{
    char *text = th_slurp(path);
    size_t n = 0;
    if (!text)
        return 0;
    const char *end = until ? strstr(text, until) : NULL;
    if (end)
        end = strstr(end + 1, until);
    for (const char *p = text; (p = strstr(p, needle)) && (!end || p < end); p++)
        n++;
    free(text);
    return n;
}

static void *s_stopper(void *arg)
{
    s_stopper_t *k = arg;
    double until = ns_now() + 20;
    while (ns_now() < until) {
        if (th_file_contains(k->log, "evaluating chunk")) {
            kill(k->pid, SIGSTOP);
            k->fired = 1;
            usleep(20000);
            k->lines_at_stop = s_count(k->log, "evaluating chunk", NULL);
            return NULL;
        }
        usleep(2000);
    }
    return NULL;
}

static int s_lost(void *ev)
{
    ns_farm_stats_t st;
    ns_farm_stats(ev, &st);
    return st.workers_lost >= 1;
}

static void test_stopped_worker_gets_nothing_after_loss(void **state)
{
    char clog[128], wlog[4][128];
    assert_int_equal(th_tmpfile(clog, sizeof clog, "coord"), 0);
    assert_int_equal(ns_log_open_file(clog), NS_OK);
    ns_log_level_t level = ns_log_get_level();
    ns_log_set_level(NS_LOG_DEBUG);   /* the coordinator's "sent to" lines */
    ns_log_set_stderr(0);
    ns_model_t *model = th_farm_model("dim=2,delay_ms=1");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", "heartbeat-interval", "0.1",
                                      NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    pid_t w[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(th_tmpfile(wlog[i], sizeof wlog[i], "worker"), 0);
        w[i] = th_farm_spawn_worker(ns_farm_endpoint(ev), (const char *const[]){"--log-level",
                                    "debug", NULL}, NULL, wlog[i]);
    }
    assert_int_equal(ns_farm_wait_live(ev, 4, 30), NS_OK);
    /* 600 points of 1 ms: 0.15 s a batch on 4 workers, 0.2 s on 3 */
    const size_t n = 600;
    double *x = th_farm_points(n, 2, 29), *want = malloc(n * 8), *got = malloc(n * 8);
    th_farm_inprocess(model, x, n, want);
    s_stopper_t k = {wlog[0], w[0], 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, s_stopper, &k);
    assert_int_equal(ns_evaluator_evaluate(ev, x, n, 2, got), NS_OK);
    pthread_join(th, NULL);
    assert_true(k.fired);
    assert_memory_equal(got, want, n * 8);
    assert_true(th_wait_for(s_lost, ev, 10));   /* 0.3 s of silence */
    const int batches = 5;
    double t0 = ns_now();
    for (int b = 0; b < batches; b++) {
        memset(got, 0, n * 8);
        assert_int_equal(ns_evaluator_evaluate(ev, x, n, 2, got), NS_OK);
        assert_memory_equal(got, want, n * 8);
    }
    double took = ns_now() - t0, three = batches * (double)n * 1e-3 / 3.0;
    ns_farm_stats_t st;
    ns_farm_stats(ev, &st);
    assert_int_equal(st.workers_lost, 1);
    assert_int_equal(st.workers_live, 3);
    assert_int_equal(st.last_k, 3);
    fprintf(stderr, "%d batches on the 3 others: %.2f s (3 workers alone: %.2f s)\n", batches,
            took, three);
    assert_true(took < 3.0 * three);

    /* the coordinator sent it nothing once it had declared it lost */
    char *text = th_slurp(clog);
    assert_non_null(text);
    char lost[64], id[32] = "";
    snprintf(lost, sizeof lost, "pid=%d silent=", (int)w[0]);
    const char *at = strstr(text, lost);
    assert_non_null(at);
    const char *line = at;
    while (line > text && line[-1] != '\n')
        line--;
    const char *idp = strstr(line, "worker lost id=");
    assert_true(idp && idp < at);
    sscanf(idp + strlen("worker lost id="), "%31s", id);
    char sent[64];
    snprintf(sent, sizeof sent, "sent to %s\n", id);
    assert_non_null(strstr(text, sent));          /* it did get work before */
    assert_null(strstr(at, sent));                /* and none after */
    free(text);

    /* let it run again: it finishes what it held, hears no heartbeats, and
     * joins again under a new id; its old session evaluated nothing more */
    kill(w[0], SIGCONT);
    assert_int_equal(ns_farm_wait_live(ev, 4, 20), NS_OK);
    assert_int_equal(s_count(wlog[0], "registered id=", NULL), 2);
    assert_int_equal(s_count(wlog[0], "evaluating chunk", "registered id="), k.lines_at_stop);
    assert_true(th_farm_matches_inprocess(ev, model, x, n, 2));

    ns_log_close_file();
    ns_log_set_stderr(1);
    ns_log_set_level(level);
    unlink(clog);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    for (int i = 0; i < 4; i++) {
        if (!th_wait_pid(w[i], 10, NULL))
            th_kill_pid(w[i]);
        unlink(wlog[i]);
    }
    free(x);
    free(want);
    free(got);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

/* An accepted worker that never connects to the data port is named in a
 * warning (its node may not reach that port). */
static int s_warned_unbound(void *log)
{
    return th_file_contains(log, "has not asked for work on the data port");
}

static void test_worker_without_data_connection_is_named(void **state)
{
    if (!ns_keys_available()) {
        fprintf(stderr, "libzmq without CURVE: the farm cannot be secured here\n");
        fail();
    }
    char keys[256], clog[128];
    assert_int_equal(th_mkdtemp(keys, sizeof keys, "keys"), 0);
    assert_int_equal(th_tmpfile(clog, sizeof clog, "coord"), 0);
    assert_int_equal(ns_log_open_file(clog), NS_OK);
    ns_model_t *model = th_farm_model("dim=2,delay_ms=2");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", "curve", "true", "farm-keys",
                                      keys, "heartbeat-interval", "0.5", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    s_impostor_t im;
    memset(&im, 0, sizeof im);
    im.endpoint = ns_farm_endpoint(ev);
    im.keys = keys;
    im.never_bind = 1;
    pthread_t th;
    pthread_create(&th, NULL, s_impostor, &im);
    assert_true(th_wait_for(s_registered, &im, 20));
    assert_false(im.failed);
    assert_int_equal(ns_farm_wait_live(ev, 1, 10), NS_OK);
    double t0 = ns_now();
    assert_true(th_wait_for(s_warned_unbound, clog, 20));
    assert_true(ns_now() - t0 > 8.0);   /* 10 s after it was accepted, not at once */
    im.stop = 1;
    pthread_join(th, NULL);
    ns_log_close_file();
    assert_true(th_file_contains(clog, "host impostor"));
    unlink(clog);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
    th_rm_rf(keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_impostor_with_the_shared_key),
        cmocka_unit_test(test_stopped_worker_gets_nothing_after_loss),
        cmocka_unit_test(test_worker_without_data_connection_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
