/* test_farm_curve.c - CurveZMQ on the farm (docs/protocol.md §8): a peer
 * without a trusted key cannot register, take work or return results; a
 * worker pinned to the coordinator's key never talks to a rogue
 * coordinator; a worker never loads a model path it only heard on the
 * network; local pools with CURVE work with no user action. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nessai/codec.h"
#include "nessai/keys.h"
#include "farm_fixture.h"
#include "nessai/error.h"


/* A fresh scratch directory (the harness's), failing the test if none. */
static void s_tmpdir(char *out, size_t size, const char *tag)
{
    assert_int_equal(th_mkdtemp(out, size, tag), 0);
}

/* TCP ports this process listens on at 127.0.0.1 (its own sockets only,
 * so concurrent tests are never disturbed). */
static size_t s_own_listen_ports(unsigned *ports, size_t max)
{
    unsigned long inodes[256];
    size_t ni = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)) && ni < 256) {
        char p[300], link[128];
        snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(p, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        unsigned long ino;
        if (sscanf(link, "socket:[%lu]", &ino) == 1)
            inodes[ni++] = ino;
    }
    if (d)
        closedir(d);
    size_t np = 0;
    FILE *f = fopen("/proc/self/net/tcp", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f) && np < max) {
        unsigned addr, port, st;
        unsigned long ino;
        if (sscanf(line, " %*d: %x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*d %*d %lu", &addr, &port,
                   &st, &ino) != 4 || st != 0x0A)
            continue;
        for (size_t i = 0; i < ni; i++)
            if (inodes[i] == ino)
                ports[np++] = port;
    }
    if (f)
        fclose(f);
    return np;
}

static int s_has_curve(void)
{
    if (!ns_keys_available()) {
        fprintf(stderr, "libzmq without CURVE: the farm cannot be secured here\n");
        fail();
    }
    return 1;
}

/* A HELLO on a DEALER; 1 if anything came back within wait_ms. */
static int s_hello_answered(zsock_t *dealer, int wait_ms)
{
    ns_msg_t hello;
    ns_msg_init(&hello, NS_MSG_HELLO);
    hello.host = ns_str_of("intruder");
    zframe_t *f = th_farm_frame(&hello);
    zsock_set_sndtimeo(dealer, 500);
    zframe_send(&f, dealer, 0);
    zsock_set_rcvtimeo(dealer, wait_ms);
    zframe_t *r = zframe_recv(dealer);
    int got = r != NULL;
    zframe_destroy(&r);
    return got;
}

/* Control: without CURVE a plain HELLO is welcomed (so the checks below can
 * fail). */
static void test_plain_farm_answers_anyone(void **state)
{
    ns_model_t *model = th_farm_model("dim=2");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    zsock_t *dealer = zsock_new_dealer(ns_farm_endpoint(ev));
    assert_true(s_hello_answered(dealer, 5000));
    zsock_destroy(&dealer);
    ns_evaluator_destroy(&ev);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
}

static void test_unauthenticated_peers_get_nothing(void **state)
{
    s_has_curve();
    char keys[256], other[256], wlog[256];
    s_tmpdir(keys, sizeof keys, "keys");
    s_tmpdir(other, sizeof other, "other");
    th_tmpfile(wlog, sizeof wlog, "wlog");
    ns_model_t *model = th_farm_model("dim=3");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", "curve", "true", "farm-keys",
                                      keys, NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    const char *ep = ns_farm_endpoint(ev);
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/coordinator.key_secret", keys);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/worker.key_secret", keys);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* 1. a plain peer */
    zsock_t *plain = zsock_new_dealer(ep);
    assert_false(s_hello_answered(plain, 1500));
    /* 2. a CURVE peer with a key of its own, pinning the right server key */
    assert_int_equal(ns_keys_generate(other, "intruder", path, sizeof path), NS_OK);
    char err[512], file[512];
    snprintf(file, sizeof file, "%s/intruder.key_secret", other);
    zcert_t *mine = ns_keys_load_secret(file, err, sizeof err);
    assert_non_null(mine);
    snprintf(file, sizeof file, "%s/coordinator.key", keys);
    zcert_t *server = ns_keys_load_public(file, err, sizeof err);
    assert_non_null(server);
    zsock_t *stranger = zsock_new(ZMQ_DEALER);
    ns_keys_client(stranger, mine, server);
    assert_int_equal(zsock_connect(stranger, "%s", ep), 0);
    assert_false(s_hello_answered(stranger, 1500));

    /* 3. the data port: forged results and a thief on every port we listen on */
    unsigned ports[32];
    size_t np = s_own_listen_ports(ports, 32);
    assert_true(np >= 2);   /* control, data */
    zsock_t *push[32], *pull[32];
    ns_msg_t forged;
    ns_msg_init(&forged, NS_MSG_RESULT);
    forged.run = 1;
    forged.worker = ns_str_of("w1");
    forged.batch = 1;
    forged.attempt = 1;
    forged.status = 1;
    forged.text = ns_str_of("forged failure");
    for (size_t i = 0; i < np; i++) {
        /* the data socket's own peer type (a DEALER that asks for work),
         * and a PULL */
        push[i] = zsock_new_dealer(NULL);
        pull[i] = zsock_new_pull(NULL);
        zsock_set_sndtimeo(push[i], 200);
        zsock_set_rcvtimeo(pull[i], 10);
        zsock_connect(push[i], "tcp://127.0.0.1:%u", ports[i]);
        zsock_connect(pull[i], "tcp://127.0.0.1:%u", ports[i]);
        zframe_t *f = th_farm_frame(&forged);
        zframe_send(&f, push[i], ZFRAME_DONTWAIT);
        zframe_destroy(&f);
        ns_msg_t ask;
        ns_msg_init(&ask, NS_MSG_ASK);
        ask.run = 1;
        ask.worker = ns_str_of("w1");
        ask.token = 1;
        f = th_farm_frame(&ask);
        zframe_send(&f, push[i], ZFRAME_DONTWAIT);
        zframe_destroy(&f);
    }

    /* the honest worker, with the run's keys */
    pid_t good = th_farm_spawn_worker(ep, (const char *const[]){"--keys", keys, NULL}, NULL, wlog);
    assert_int_equal(ns_farm_wait_live(ev, 1, 30), NS_OK);
    size_t n = 400;
    double *x = th_farm_points(n, 3, 5), *want = malloc(n * 8), *got = malloc(n * 8);
    th_farm_inprocess(model, x, n, want);
    for (int b = 0; b < 3; b++) {
        assert_int_equal(ns_evaluator_evaluate(ev, x, n, 3, got), NS_OK);
        assert_memory_equal(got, want, n * 8);
    }
    /* nothing reached the thieves */
    for (size_t i = 0; i < np; i++) {
        zframe_t *f = zframe_recv(pull[i]);
        assert_null(f);
        zsock_set_rcvtimeo(push[i], 10);
        f = zframe_recv(push[i]);
        assert_null(f);
    }
    ns_farm_stats_t fs;
    ns_farm_stats(ev, &fs);
    assert_int_equal(fs.workers_seen, 1);
    assert_int_equal(fs.refused, 0);
    assert_int_equal(fs.stale_results, 0);
    assert_int_equal(fs.failed_chunks, 0);
    assert_int_equal(fs.malformed_dropped, 0);
    assert_int_equal(fs.misaddressed_dropped, 0);   /* they never got through CURVE */
    assert_int_equal(fs.duplicate_results, 0);
    assert_true(fs.chunks >= 3);

    for (size_t i = 0; i < np; i++) {
        zsock_destroy(&push[i]);
        zsock_destroy(&pull[i]);
    }
    zsock_destroy(&plain);
    zsock_destroy(&stranger);
    zcert_destroy(&mine);
    zcert_destroy(&server);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    int code = -1;
    assert_true(th_wait_pid(good, 10, &code));
    assert_int_equal(code, 0);
    free(x);
    free(want);
    free(got);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
    th_rm_rf(keys);
    th_rm_rf(other);
    remove(wlog);
}

/* A rogue coordinator: a ROUTER on a free port. */
static zsock_t *s_rogue(char *ep, size_t size, zcert_t *cert)
{
    zsock_t *r = zsock_new(ZMQ_ROUTER);
    if (cert)
        ns_keys_server(r, cert);
    assert_int_equal(zmq_bind(zsock_resolve(r), "tcp://127.0.0.1:*"), 0);
    char *last = zsock_last_endpoint(r);
    snprintf(ep, size, "%s", last);
    zstr_free(&last);
    return r;
}

/* A worker pinned to the run's coordinator key never completes a handshake
 * with a coordinator that lacks the secret key: it sends it nothing. */
static void test_pinned_worker_ignores_rogue_coordinator(void **state)
{
    s_has_curve();
    char keys[256], rogue_keys[256], wlog[256], err[512], ep[256];
    s_tmpdir(keys, sizeof keys, "keys");
    s_tmpdir(rogue_keys, sizeof rogue_keys, "rogue");
    th_tmpfile(wlog, sizeof wlog, "wlog");
    assert_int_equal(ns_keys_prepare_run(keys, FARMTEST_PLUGIN, err, sizeof err), NS_OK);
    assert_int_equal(ns_keys_generate(rogue_keys, "coordinator", err, sizeof err), NS_OK);
    char file[512];
    snprintf(file, sizeof file, "%s/coordinator.key_secret", rogue_keys);
    zcert_t *rc = ns_keys_load_secret(file, err, sizeof err);
    assert_non_null(rc);
    /* the rogue accepts any client key */
    zactor_t *auth = zactor_new(zauth, NULL);
    zstr_sendx(auth, "CURVE", CURVE_ALLOW_ANY, NULL);
    zsock_wait(auth);
    zsock_t *curve_rogue = s_rogue(ep, sizeof ep, rc);
    pid_t w = th_farm_spawn_worker(ep, (const char *const[]){"--keys", keys, NULL}, NULL, wlog);
    zsock_set_rcvtimeo(curve_rogue, 4000);
    zmsg_t *m = zmsg_recv(curve_rogue);
    assert_null(m);   /* no HELLO: the handshake failed on the worker's side */
    th_kill_pid(w);
    zsock_destroy(&curve_rogue);
    /* a plain rogue gets nothing from a --keys worker either */
    zsock_t *plain_rogue = s_rogue(ep, sizeof ep, NULL);
    w = th_farm_spawn_worker(ep, (const char *const[]){"--keys", keys, NULL}, NULL, wlog);
    zsock_set_rcvtimeo(plain_rogue, 3000);
    m = zmsg_recv(plain_rogue);
    assert_null(m);
    th_kill_pid(w);
    assert_false(th_file_contains(wlog, "loaded model"));
    zsock_destroy(&plain_rogue);
    zactor_destroy(&auth);
    zcert_destroy(&rc);
    th_rm_rf(keys);
    th_rm_rf(rogue_keys);
    remove(wlog);
}

/* A coordinator that can talk to the worker (plain loopback) announces a
 * library outside the worker's allowed directories: it is not loaded, and
 * READY says why. */
static void test_announced_model_not_loaded(void **state)
{
    char dir[256], lib[512], wlog[256], ep[256];
    s_tmpdir(dir, sizeof dir, "lib");
    th_tmpfile(wlog, sizeof wlog, "wlog");
    snprintf(lib, sizeof lib, "%s/librogue.so", dir);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", FARMOTHER_PLUGIN, lib);
    assert_int_equal(system(cmd), 0);
    zsock_t *rogue = s_rogue(ep, sizeof ep, NULL);
    pid_t w = th_farm_spawn_worker(ep, (const char *const[]){"--log-level", "debug", NULL}, NULL, wlog);
    zsock_set_rcvtimeo(rogue, 10000);
    zmsg_t *m = zmsg_recv(rogue);
    assert_non_null(m);
    zframe_t *id = zmsg_pop(m);
    zmsg_destroy(&m);
    ns_msg_t wel;
    ns_msg_init(&wel, NS_MSG_WELCOME);
    wel.run = 77;
    wel.worker = ns_str_of("w1");
    wel.model_path = ns_str_of(lib);
    wel.model_args = ns_str_of("dim=2");
    wel.model_name = ns_str_of("farmother");
    wel.model_hash = ns_str_of("x");
    wel.dim = 2;
    wel.data_port = 1;
    wel.token = 1;
    wel.heartbeat_ms = 1000;
    wel.liveness = 3;
    wel.max_message = 1u << 20;
    wel.canary_n = 1;
    double cx[2] = {0.5, 0.5};
    ns_msg_set_doubles(&wel, cx, 2, NULL);
    zframe_t *f = th_farm_frame(&wel);
    zframe_send(&id, rogue, ZFRAME_MORE | ZFRAME_REUSE);
    zframe_send(&f, rogue, 0);
    int ready_seen = 0;
    for (int i = 0; i < 10 && !ready_seen; i++) {
        m = zmsg_recv(rogue);
        if (!m)
            break;
        zframe_t *body = zmsg_last(m);
        ns_msg_t r;
        if (ns_msg_decode(zframe_data(body), zframe_size(body), &r) == NS_OK
            && r.type == NS_MSG_READY) {
            ready_seen = 1;
            assert_int_equal(r.status, 1);
            char text[1024];
            ns_str_copy(r.text, text, sizeof text);
            assert_non_null(strstr(text, "does not trust the model path"));
        }
        zmsg_destroy(&m);
    }
    assert_true(ready_seen);
    th_kill_pid(w);
    assert_false(th_file_contains(wlog, "loaded model"));
    zframe_destroy(&id);
    zsock_destroy(&rogue);
    th_rm_rf(dir);
    remove(wlog);
}

/* --curve with a local pool: the workers get the keys from the
 * coordinator; the results are the in-process ones. */
static void test_local_pool_with_curve(void **state)
{
    s_has_curve();
    char keys[256];
    s_tmpdir(keys, sizeof keys, "keys");
    ns_model_t *model = th_farm_model("dim=2");
    ns_config_t *cfg = th_farm_config("n-pool", "3", "curve", "true", "farm-keys", keys, NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    assert_int_equal(ns_farm_wait_live(ev, 3, 30), NS_OK);
    size_t n = 301;
    double *x = th_farm_points(n, 2, 9), *want = malloc(n * 8), *got = malloc(n * 8);
    th_farm_inprocess(model, x, n, want);
    assert_int_equal(ns_evaluator_evaluate(ev, x, n, 2, got), NS_OK);
    assert_memory_equal(got, want, n * 8);
    zsock_t *plain = zsock_new_dealer(ns_farm_endpoint(ev));
    assert_false(s_hello_answered(plain, 1000));
    zsock_destroy(&plain);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    free(x);
    free(want);
    free(got);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
    th_rm_rf(keys);
}

/* --worker-keys: only the keys of that directory (made with nessai-keygen)
 * are accepted; the shared client key of the run is not. */
static void test_strict_allow_list(void **state)
{
    s_has_curve();
    char keys[256], allow[256], node[256], cmd[1200], wlog[128];
    s_tmpdir(keys, sizeof keys, "keys");
    s_tmpdir(allow, sizeof allow, "allow");
    s_tmpdir(node, sizeof node, "node");
    th_tmpfile(wlog, sizeof wlog, "wlog");
    snprintf(cmd, sizeof cmd, "%s/nessai-keygen '%s' node17 >/dev/null", NESSAI_BIN_DIR, node);
    assert_int_equal(system(cmd), 0);
    char secret[512];
    snprintf(secret, sizeof secret, "%s/node17.key_secret", node);
    struct stat st;
    assert_int_equal(stat(secret, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_not_equal(system(cmd), 0);   /* never overwrites a pair */
    snprintf(cmd, sizeof cmd, "cp '%s/node17.key' '%s/'", node, allow);
    assert_int_equal(system(cmd), 0);

    ns_model_t *model = th_farm_model("dim=2");
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", "curve", "true", "farm-keys",
                                      keys, "worker-keys", allow, NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);
    const char *ep = ns_farm_endpoint(ev);
    /* the run's shared key is not in the allow-list: never registered */
    pid_t shared = th_farm_spawn_worker(ep, (const char *const[]){"--keys", keys, NULL}, NULL, wlog);
    zclock_sleep(2500);   /* time to try (and to retry once) */
    ns_farm_stats_t fs;
    ns_farm_stats(ev, &fs);
    assert_int_equal(fs.workers_seen, 0);
    assert_false(th_file_contains(wlog, "registered"));
    th_kill_pid(shared);
    /* the node's own key is */
    pid_t good = th_farm_spawn_worker(ep, (const char *const[]){"--keys", keys, "--cert", secret, NULL},
                                 NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, 1, 30), NS_OK);
    size_t n = 100;
    double *x = th_farm_points(n, 2, 4), *want = malloc(n * 8), *got = malloc(n * 8);
    th_farm_inprocess(model, x, n, want);
    assert_int_equal(ns_evaluator_evaluate(ev, x, n, 2, got), NS_OK);
    assert_memory_equal(got, want, n * 8);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    assert_true(th_wait_pid(good, 10, NULL));
    /* a secret key readable by others is refused by the worker */
    chmod(secret, 0644);
    pid_t loose = th_farm_spawn_worker("tcp://127.0.0.1:1", (const char *const[]){"--keys", keys,
                                  "--cert", secret, NULL}, NULL, wlog);
    int code = -1;
    assert_true(th_wait_pid(loose, 10, &code));
    assert_int_equal(code, 1);
    assert_true(th_file_contains(wlog, "chmod 600"));
    free(x);
    free(want);
    free(got);
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
    th_rm_rf(keys);
    th_rm_rf(allow);
    th_rm_rf(node);
    remove(wlog);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_farm_answers_anyone),
        cmocka_unit_test(test_unauthenticated_peers_get_nothing),
        cmocka_unit_test(test_pinned_worker_ignores_rogue_coordinator),
        cmocka_unit_test(test_announced_model_not_loaded),
        cmocka_unit_test(test_local_pool_with_curve),
        cmocka_unit_test(test_strict_allow_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
