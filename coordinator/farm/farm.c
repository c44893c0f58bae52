/* farm.c - the farm behind the evaluator interface; options; local pools. */
#include "farm.h"
#include "broker.h"
#include "nessai/codec.h"
#include "nessai/keys.h"
#include "pool.h"
#include "nessai/error.h"
#include "nessai/hdf5out.h"
#include "nessai/log.h"
#include "nessai/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <stddef.h>
#include <limits.h>
#include <sys/resource.h>
#include <unistd.h>

#define S_MOD "farm"
#define S_CANARY_N 4
#define S_FD_RESERVE 64           /* descriptors kept for checkpoints, results, plots */
#define S_FD_PER_WORKER 2         /* control and data connections */
#define S_IO_THREADS_MIN 4        /* libzmq I/O threads of the farm's process */
#define S_IO_THREADS_MAX 16

const ns_option_t ns_farm_options[] = {
    {"n-pool", NS_OPT_INT, NULL, 1, 4096, NULL, NS_OPT_ALLOW_NONE, "Likelihood farm",
     "Split every batch into this many chunks; without --bind, also start this many local "
     "nessai-worker processes."},
    {"bind", NS_OPT_STRING, NULL, 0, 0, NULL, NS_OPT_ALLOW_NONE, "Likelihood farm",
     "Open the farm on this endpoint (e.g. tcp://*:5555); workers join with "
     "nessai-worker --connect tcp://THIS-HOST:5555. Port 0 or * takes a free port; the "
     "endpoint is also written to <output>/farm.address (nessai-worker --connect-file). "
     "Checked at start-up, before anything is created: a value that cannot work is exit 2, a "
     "port in use exit 1."},
    {"chunksize", NS_OPT_INT, NULL, 1, 1e9, NULL, NS_OPT_ALLOW_NONE, "Likelihood farm",
     "At most this many points per chunk sent to a worker."},
    {"worker-timeout", NS_OPT_DOUBLE, "300", 1, 1e7, NULL, 0, "Likelihood farm",
     "Give up with an error after this many seconds without any connected worker."},
    {"chunk-timeout", NS_OPT_DOUBLE, "60", 0.01, 1e7, NULL, 0, "Likelihood farm",
     "Minimum deadline per chunk in seconds (grows with the observed cost per point); a "
     "chunk not done by then is sent again."},
    {"max-retries", NS_OPT_INT, "3", 0, 1000, NULL, 0, "Likelihood farm",
     "Re-send a chunk whose evaluation failed at most this many times, then stop the run."},
    {"max-chunk-faults", NS_OPT_INT, "2", 0, 1000, NULL, 0, "Likelihood farm",
     "Stop the run when a chunk's worker was lost (crashed, killed, silent) or gave no result "
     "by the deadline more than this many times: the model crashes or hangs on its points."},
    {"spot-check", NS_OPT_DOUBLE, "0.01", 0, 1, NULL, 0, "Likelihood farm",
     "Share of each worker result's points the coordinator evaluates again and compares bit "
     "for bit (at least one point per result; skipped when that would take more than 20 ms, "
     "and for Python models); a worker that differs is refused and its chunks of the batch "
     "redone. 0 turns the checks off."},
    {"max-respawns", NS_OPT_INT, NULL, 0, 100000, NULL, NS_OPT_ALLOW_NONE, "Likelihood farm",
     "A local pool starts at most this many replacements for worker processes that exited "
     "(none = --n-pool)."},
    {"max-message-size", NS_OPT_INT, "256", 1, 2047, NULL, 0, "Likelihood farm",
     "Largest farm message in MiB; bigger batches are cut into more chunks."},
    {"heartbeat-interval", NS_OPT_DOUBLE, "1", 0.05, 600, NULL, 0, "Likelihood farm",
     "Seconds between heartbeats, both ways; workers take the value when they join."},
    {"heartbeat-liveness", NS_OPT_INT, "3", 2, 1000, NULL, 0, "Likelihood farm",
     "A peer silent for this many heartbeat intervals is counted as lost: its chunks are sent "
     "again (coordinator side) or it reconnects (worker side). Raise both on congested "
     "networks; lower them to notice dead nodes sooner."},
    {"insecure", NS_OPT_BOOL, "false", 0, 0, NULL, 0, "Likelihood farm",
     "No CurveZMQ authentication and encryption, also on a non-loopback --bind (anyone who "
     "can reach the port can then join the farm: docs/protocol.md section 8)."},
    {"curve", NS_OPT_BOOL, "false", 0, 0, NULL, 0, "Likelihood farm",
     "CurveZMQ also on a loopback farm (--bind tcp://127.0.0.1:..., local pools): for "
     "machines shared with other users. Always on for other addresses."},
    {"farm-keys", NS_OPT_STRING, NULL, 0, 0, NULL, NS_OPT_ALLOW_NONE, "Likelihood farm",
     "Directory of the farm's key files (default: <output>/farm-keys); missing keys are "
     "created. Workers join with nessai-worker --keys DIR."},
    {"worker-keys", NS_OPT_STRING, NULL, 0, 0, NULL, NS_OPT_ALLOW_NONE, "Likelihood farm",
     "Accept only the workers whose public key (nessai-keygen) is in this directory "
     "(default: the shared worker key of --farm-keys)."},
    {"worker-path", NS_OPT_STRING, NULL, 0, 0, NULL, NS_OPT_ALLOW_NONE, "Likelihood farm",
     "nessai-worker program for local pools (default: next to this program)."},
};
const size_t ns_farm_options_count = sizeof ns_farm_options / sizeof ns_farm_options[0];

typedef struct {
    ns_broker_t *broker;          /* the farm thread */
    ns_broker_config_t cfg;       /* borrowed by the broker */
    double *canary;               /* canary_n x dim points, then canary_n logL */
    char *model_name, *model_path, *model_args, *model_hash;   /* owned copies */
    ns_pool_t *pool;              /* local workers, NULL with --bind */
    zcert_t *curve;               /* CURVE key pair, NULL without CURVE */
    char keys[4096];              /* keys directory, "" without CURVE */
    char allow[4200];             /* accepted worker keys directory */
    int stopped;                  /* STOP sent */
    int inflight;                 /* a batch started by s_begin is not ended */
    int settled;                  /* ... and its reply is already in settled_rc */
    int settled_rc;
    uint64_t overlapped;          /* batches evaluated in the background (s_begin) */
} s_farm_t;

static char s_output_dir[3900];

void ns_farm_set_output(const char *dir)
{
    snprintf(s_output_dir, sizeof s_output_dir, "%s", dir ? dir : "");
}

/* CURVE (docs/protocol.md §8): on unless the farm is loopback only or
 * --insecure; the keys directory ready, the server key loaded. */
static int s_security(s_farm_t *f, const ns_config_t *cfg, const char *bind)
{
    int loopback = ns_keys_loopback(bind);
    int on = ns_config_bool(cfg, "curve") || !loopback;
    if (ns_config_bool(cfg, "insecure")) {
        if (!loopback)
            ns_warn(S_MOD, "--insecure: the farm on %s has no authentication; anyone who can "
                    "reach it can join and return results", bind);
        return NS_OK;
    }
    if (!on)
        return NS_OK;
    if (!ns_keys_available()) {
        ns_error(S_MOD, "this libzmq has no CURVE support, needed to open the farm on %s; "
                 "install libzmq with libsodium, or give --insecure on a trusted network", bind);
        return NS_ERR_INVAL;
    }
    if (ns_config_is_set(cfg, "farm-keys"))
        snprintf(f->keys, sizeof f->keys, "%s", ns_config_str(cfg, "farm-keys"));
    else if (s_output_dir[0])
        snprintf(f->keys, sizeof f->keys, "%s/farm-keys", s_output_dir);
    else {
        ns_error(S_MOD, "give the farm's keys directory with --farm-keys DIR");
        return NS_ERR_INVAL;
    }
    char err[1024], path[4200];
    if (ns_keys_prepare_run(f->keys, f->model_path, err, sizeof err) != NS_OK) {
        ns_error(S_MOD, "%s", err);
        return NS_ERR_IO;
    }
    char real[PATH_MAX];
    if (realpath(f->keys, real))   /* workers elsewhere are told an absolute path */
        snprintf(f->keys, sizeof f->keys, "%s", real);
    snprintf(path, sizeof path, "%s/%s.key_secret", f->keys, NS_KEYS_COORDINATOR);
    if (!(f->curve = ns_keys_load_secret(path, err, sizeof err))) {
        ns_error(S_MOD, "%s", err);
        return NS_ERR_IO;
    }
    if (ns_config_is_set(cfg, "worker-keys"))
        snprintf(f->allow, sizeof f->allow, "%s", ns_config_str(cfg, "worker-keys"));
    else
        snprintf(f->allow, sizeof f->allow, "%s/%s", f->keys, NS_KEYS_ALLOWED);
    if (access(f->allow, R_OK | X_OK) != 0) {
        ns_error(S_MOD, "--worker-keys %s: not a readable directory", f->allow);
        return NS_ERR_INVAL;
    }
    ns_info(S_MOD, "farm keys in %s (CurveZMQ on); accepted worker keys in %s", f->keys,
            f->allow);
    return NS_OK;
}

/* Raise the soft descriptor limit to the hard one; how many workers fit,
 * keeping S_FD_RESERVE for the files of the run. */
static void s_fd_capacity(ns_broker_config_t *bc)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = rl;
        up.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 1048576 : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        return;
    long used = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        used += e->d_name[0] != '.';
    if (d)
        closedir(d);
    long room = (long)rl.rlim_cur - used - S_FD_RESERVE;
    bc->fd_limit = (long)rl.rlim_cur;
    bc->max_workers = room > S_FD_PER_WORKER ? (size_t)(room / S_FD_PER_WORKER) : 1;
    ns_info(S_MOD, "file descriptors: limit %ld (hard %s), %ld in use: room for %zu workers "
            "(%d descriptors each, %d kept for the run's files)", bc->fd_limit,
            rl.rlim_max == RLIM_INFINITY ? "unlimited" : "the same", used, bc->max_workers,
            S_FD_PER_WORKER, S_FD_RESERVE);
}

/* The port part of a tcp:// endpoint: "*" or "0" (a free port), or 1-65535.
 * 1 if it is one of those. */
static int s_port_ok(const char *port)
{
    if (strcmp(port, "*") == 0)
        return 1;
    if (!*port || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port))
        return 0;
    return atol(port) <= 65535;
}

int ns_farm_check_bind(const ns_config_t *cfg, char *err, size_t errlen)
{
    if (!ns_config_is_set(cfg, "bind"))
        return NS_OK;
    const char *ep = ns_config_str(cfg, "bind");
    if (strncmp(ep, "tcp://", 6) != 0) {
        ns_errf(err, errlen, "--bind %s: the farm needs a tcp:// endpoint, e.g. tcp://*:5555 or "
                "tcp://127.0.0.1:5555", ep);
        return NS_ERR_INVAL;
    }
    const char *colon = strrchr(ep + 6, ':');
    if (!colon || colon == ep + 6) {
        ns_errf(err, errlen, "--bind %s: give the endpoint as tcp://HOST:PORT, e.g. tcp://*:5555 "
                "(HOST: *, an address of this machine or an interface name)", ep);
        return NS_ERR_INVAL;
    }
    if (!s_port_ok(colon + 1)) {
        ns_errf(err, errlen, "--bind %s: port '%s' is not 1-65535 (or * or 0 for a free port)", ep,
                colon + 1);
        return NS_ERR_INVAL;
    }
    /* A trial bind with libzmq itself, so that host, interface and port
     * are judged exactly as the farm's own bind will judge them. */
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
    int rv = NS_OK;
    if (!sock) {
        ns_errf(err, errlen, "cannot bind %s: cannot create a ZeroMQ socket (%s)", ep,
                zmq_strerror(zmq_errno()));
        rv = NS_ERR_IO;
    } else {
        int linger = 0;
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
        if (zmq_bind(sock, ep) != 0) {
            int e = zmq_errno();
            if (e == ENODEV || e == EADDRNOTAVAIL || e == EINVAL || e == EPROTONOSUPPORT) {
                ns_errf(err, errlen, "--bind %s: no such interface or address on this machine (%s); "
                        "use *, an address of this machine or an interface name", ep,
                        zmq_strerror(e));
                rv = NS_ERR_INVAL;
            } else {
                ns_errf(err, errlen, "cannot bind %s: %s", ep, zmq_strerror(e));
                rv = NS_ERR_IO;
            }
        }
    }
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);   /* waits until the socket is closed: the port is free again */
    return rv;
}

int ns_farm_check_paths(const ns_config_t *cfg, const char *argv0, char *err, size_t errlen)
{
    if (!ns_farm_wanted(cfg))
        return NS_OK;
    if (!ns_config_is_set(cfg, "bind")) {
        char path[4096];
        const char *given = ns_config_is_set(cfg, "worker-path") ? ns_config_str(cfg, "worker-path")
                                                                  : NULL;
        int rv = ns_pool_find_worker(given, argv0, path, sizeof path, err, errlen);
        if (rv != NS_OK)
            return rv;
    }
    /* used with CurveZMQ only (s_security) */
    const char *bind = ns_config_is_set(cfg, "bind") ? ns_config_str(cfg, "bind") : "tcp://127.0.0.1:*";
    int curve = !ns_config_bool(cfg, "insecure") &&
                (ns_config_bool(cfg, "curve") || !ns_keys_loopback(bind));
    if (curve && ns_config_is_set(cfg, "worker-keys")) {
        const char *dir = ns_config_str(cfg, "worker-keys");
        if (access(dir, R_OK | X_OK) != 0) {
            ns_errf(err, errlen, "--worker-keys %s: not a readable directory (%s)", dir,
                    strerror(errno));
            return NS_ERR_INVAL;
        }
    }
    return NS_OK;
}

/* libzmq encrypts (CURVE) and frames each connection on the I/O thread it
 * was given; with several, the chunks of one batch going to different
 * workers are encrypted side by side instead of one after another
 * (docs/protocol.md §8). Only the process's first ZeroMQ socket starts the
 * context, so this takes effect for the first farm only, and a
 * ZSYS_IO_THREADS the user set wins. */
static void s_io_threads(void)
{
    if (getenv("ZSYS_IO_THREADS"))
        return;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n = cpus > S_IO_THREADS_MAX ? S_IO_THREADS_MAX
                                    : cpus > S_IO_THREADS_MIN ? (int)cpus : S_IO_THREADS_MIN;
    zmq_ctx_set(zsys_init(), ZMQ_IO_THREADS, n);
}

int ns_farm_wanted(const ns_config_t *cfg)
{
    if (ns_config_is_set(cfg, "bind"))
        return 1;
    return ns_config_is_set(cfg, "n-pool") && ns_config_int(cfg, "n-pool") >= 1;
}

/* Canary points: a fixed low-discrepancy set inside the prior box, away
 * from its edges, the same in every run. */
static void s_canary_points(const ns_model_t *model, double *x, size_t n)
{
    int d = ns_model_dim(model);
    const double *lo = ns_model_lower(model), *hi = ns_model_upper(model);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            double u = fmod(0.3183098861837907 + (double)(i + 1) * 0.6180339887498949
                            + (double)j * 0.4142135623730951, 1.0);
            x[i * (size_t)d + (size_t)j] = lo[j] + (hi[j] - lo[j]) * (0.05 + 0.9 * u);
        }
}

/* A batch still in flight is waited for before anything else goes down
 * the broker's pipe; s_end then returns its kept reply. */
static void s_settle(s_farm_t *f)
{
    if (f->inflight && !f->settled) {
        f->settled_rc = ns_broker_end(f->broker);
        f->settled = 1;
    }
}

static void s_shutdown(void *impl)
{
    s_farm_t *f = impl;
    s_settle(f);
    if (f->stopped)
        return;
    f->stopped = 1;
    ns_broker_stop(f->broker);
    if (f->pool)
        ns_pool_wait(f->pool, 5.0);
}

static void s_destroy(void *impl)
{
    s_farm_t *f = impl;
    if (!f)
        return;
    /* Without shutdown (e.g. the run stopped to checkpoint), remote workers
     * are not told to stop: they hear silence, retry with back-off and
     * register with the resumed run. Local workers never outlive us. */
    ns_broker_destroy(&f->broker);
    ns_pool_destroy(&f->pool);   /* kills anything still running */
    zcert_destroy(&f->curve);
    free(f->canary);
    free(f->model_name);
    free(f->model_path);
    free(f->model_args);
    free(f->model_hash);
    free(f);
}

static int s_respawn(void *ctx, int old_pid)
{
    return ns_pool_respawn(ctx, old_pid);
}

static int s_evaluate(void *impl, const double *x, size_t n, size_t d, double *logl)
{
    s_farm_t *f = impl;
    if (f->stopped) {
        ns_error(S_MOD, "evaluate() after the farm was shut down");
        return NS_ERR_STATE;
    }
    s_settle(f);
    return ns_broker_evaluate(f->broker, x, n, d, logl);
}

static int s_begin(void *impl, const double *x, size_t n, size_t d, double *logl)
{
    s_farm_t *f = impl;
    if (f->stopped) {
        ns_error(S_MOD, "evaluate() after the farm was shut down");
        return NS_ERR_STATE;
    }
    if (f->inflight) {
        ns_error(S_MOD, "a second background batch while one is in flight (internal)");
        return NS_ERR_STATE;
    }
    int rc = ns_broker_begin(f->broker, x, n, d, logl);
    if (rc == NS_OK) {
        f->inflight = 1;
        f->settled = 0;
        f->overlapped++;
    }
    return rc;
}

static int s_poll(void *impl)
{
    s_farm_t *f = impl;
    return !f->inflight || f->settled || ns_broker_poll(f->broker);
}

static int s_end(void *impl)
{
    s_farm_t *f = impl;
    if (!f->inflight)
        return NS_ERR_STATE;
    s_settle(f);
    f->inflight = 0;
    f->settled = 0;
    return f->settled_rc;
}

/* The integer counters of result.json "farm", in their order there; the
 * same table types them in result.hdf5 (s_stats_schema). */
static const struct {
    const char *key;
    size_t off;
} s_int_stats[] = {
    {"workers_seen", offsetof(ns_farm_stats_t, workers_seen)},
    {"workers_live", offsetof(ns_farm_stats_t, workers_live)},
    {"refused", offsetof(ns_farm_stats_t, refused)},
    {"workers_lost", offsetof(ns_farm_stats_t, workers_lost)},
    {"workers_left", offsetof(ns_farm_stats_t, workers_left)},
    {"batches", offsetof(ns_farm_stats_t, batches)},
    {"chunks", offsetof(ns_farm_stats_t, chunks)},
    {"last_k", offsetof(ns_farm_stats_t, last_k)},
    {"chunks_resent", offsetof(ns_farm_stats_t, chunks_resent)},
    {"deadline_misses", offsetof(ns_farm_stats_t, deadline_misses)},
    {"speculative", offsetof(ns_farm_stats_t, speculative)},
    {"spot_checked", offsetof(ns_farm_stats_t, spot_checked)},
    {"spot_skipped", offsetof(ns_farm_stats_t, spot_skipped)},
    {"spot_failures", offsetof(ns_farm_stats_t, spot_failures)},
    {"handed_back", offsetof(ns_farm_stats_t, handed_back)},
    {"failed_chunks", offsetof(ns_farm_stats_t, failed_chunks)},
    {"duplicate_results", offsetof(ns_farm_stats_t, duplicate_results)},
    {"stale_results", offsetof(ns_farm_stats_t, stale_results)},
    {"redone_evaluations", offsetof(ns_farm_stats_t, redone_evaluations)},
    {"malformed_dropped", offsetof(ns_farm_stats_t, malformed_dropped)},
    {"misaddressed_dropped", offsetof(ns_farm_stats_t, misaddressed_dropped)},
};

static void s_stats_json(void *impl, cJSON *obj)
{
    s_farm_t *f = impl;
    ns_farm_stats_t st;
    s_settle(f);
    ns_broker_stats(f->broker, &st);
    cJSON_AddStringToObject(obj, "endpoint", f->cfg.endpoint);
    cJSON_AddNumberToObject(obj, "local_workers", f->pool ? (double)ns_pool_size(f->pool) : 0);
    for (size_t i = 0; i < sizeof s_int_stats / sizeof s_int_stats[0]; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&st + s_int_stats[i].off, sizeof v);
        cJSON_AddNumberToObject(obj, s_int_stats[i].key, (double)v);
    }
    cJSON_AddNumberToObject(obj, "overlapped_batches", (double)f->overlapped);
    cJSON_AddNumberToObject(obj, "likelihood_wall_s", st.likelihood_wall_s);
    cJSON_AddNumberToObject(obj, "worker_cpu_s", st.worker_cpu_s);
    cJSON_AddNumberToObject(obj, "worker_eval_wall_s", st.worker_eval_wall_s);
}

static int s_stats_schema(void *impl, ns_h5_schema_t *schema, const char *prefix)
{
    (void)impl;
    char path[128];
    int rc = NS_OK;
    snprintf(path, sizeof path, "%slocal_workers", prefix);
    rc = ns_h5_schema_add(schema, path, NS_H5_INT64);
    for (size_t i = 0; rc == NS_OK && i < sizeof s_int_stats / sizeof s_int_stats[0]; i++) {
        snprintf(path, sizeof path, "%s%s", prefix, s_int_stats[i].key);
        rc = ns_h5_schema_add(schema, path, NS_H5_INT64);
    }
    if (rc == NS_OK) {
        snprintf(path, sizeof path, "%soverlapped_batches", prefix);
        rc = ns_h5_schema_add(schema, path, NS_H5_INT64);
    }
    return rc;
}

static long s_live_workers(void *impl)
{
    s_farm_t *f = impl;
    ns_farm_stats_t st;
    s_settle(f);
    ns_broker_stats(f->broker, &st);
    return (long)st.workers_live;
}

/* The end-of-run account of the farm in nessai.log: who came and went,
 * what had to be sent again, what was checked, and the workers' CPU time. */
static void s_log_summary(void *impl)
{
    s_farm_t *f = impl;
    ns_farm_stats_t st;
    s_settle(f);
    ns_broker_stats(f->broker, &st);
    ns_info(NULL, "Farm summary: workers: %llu registered, %llu accepted, %llu refused, %llu lost, "
            "%llu left, %llu live at the end",
            (unsigned long long)(st.workers_seen + st.refused), (unsigned long long)st.workers_seen,
            (unsigned long long)st.refused, (unsigned long long)st.workers_lost,
            (unsigned long long)st.workers_left, (unsigned long long)st.workers_live);
    ns_info(NULL, "Farm summary: %llu batches (%llu while the flow drew its pool), %llu chunks "
            "done, %llu re-sent (%llu past a deadline, %llu from stragglers, %llu handed back), "
            "%llu evaluations redone, %llu failed chunks; %llu malformed and %llu misaddressed "
            "messages dropped",
            (unsigned long long)st.batches, (unsigned long long)f->overlapped,
            (unsigned long long)st.chunks,
            (unsigned long long)st.chunks_resent, (unsigned long long)st.deadline_misses,
            (unsigned long long)st.speculative, (unsigned long long)st.handed_back,
            (unsigned long long)st.redone_evaluations, (unsigned long long)st.failed_chunks,
            (unsigned long long)st.malformed_dropped, (unsigned long long)st.misaddressed_dropped);
    ns_info(NULL, "Farm summary: spot checks: %llu points checked, %llu skipped, %llu failed; "
            "likelihood CPU time on workers %.3f s (wall %.3f s), %.3f s waiting for the farm",
            (unsigned long long)st.spot_checked, (unsigned long long)st.spot_skipped,
            (unsigned long long)st.spot_failures, st.worker_cpu_s, st.worker_eval_wall_s,
            st.likelihood_wall_s);
}

static const ns_evaluator_ops_t s_farm_ops = {
    .kind = "farm",
    .evaluate = s_evaluate,
    .stats_json = s_stats_json,
    .stats_schema = s_stats_schema,
    .live_workers = s_live_workers,
    .log_summary = s_log_summary,
    .shutdown = s_shutdown,
    .destroy = s_destroy,
    .begin = s_begin,
    .poll = s_poll,
    .end = s_end,
};

static int s_copy_model(s_farm_t *f, ns_model_t *model)
{
    f->model_name = ns_strdup(ns_model_name(model));
    f->model_path = ns_strdup(ns_model_path(model));
    f->model_args = ns_strdup(ns_model_args(model) ? ns_model_args(model) : "");
    f->model_hash = ns_strdup(ns_model_hash(model));
    if (!f->model_name || !f->model_path || !f->model_args || !f->model_hash)
        return NS_ERR_NOMEM;
    if (strlen(f->model_args) > NS_FARM_MAX_STR || strlen(f->model_path) > NS_FARM_MAX_STR) {
        ns_error(S_MOD, "--model-args and the model path must be at most %d bytes for the farm",
                 NS_FARM_MAX_STR);
        return NS_ERR_INVAL;
    }
    return NS_OK;
}

/* <output>/farm.address: the endpoint workers should use, one line, for
 * nessai-worker --connect-file (docs/cluster.md). Written to a temporary
 * file and renamed, so a reader sees the old file or the new one, whole. */
/* <output>/farm.address: the endpoint workers connect to, then "model PATH",
 * the model this run announces (a worker following the file may load it:
 * the file is the run's own, not something received over the network). */
typedef struct {
    const char *endpoint, *model;
} s_address_t;

static int s_fill_address(FILE *fp, void *ctx)
{
    const s_address_t *a = ctx;
    return fprintf(fp, "%s\nmodel %s\n", a->endpoint, a->model) > 0 ? 0 : -1;
}

static void s_write_address(const char *endpoint, const char *model)
{
    if (!s_output_dir[0])   /* no output directory (a farm without a run) */
        return;
    char *path = ns_path_join(s_output_dir, "farm.address");
    s_address_t a = {endpoint, model};
    const char *step = "write";
    if (path && ns_write_file_atomic(path, 0644, NS_WRITE_FSYNC, s_fill_address, &a, &step) == NS_OK)
        ns_info(S_MOD, "workers may also join with: nessai-worker --connect-file %s", path);
    else
        ns_warn(S_MOD, "cannot %s %s (%s); give workers --connect %s", step,
                path ? path : "farm.address", path ? strerror(errno) : "out of memory", endpoint);
    free(path);
}

int ns_farm_evaluator_new(const ns_config_t *cfg, ns_model_t *model, const char *argv0,
                          ns_evaluator_t **out)
{
    *out = NULL;
    s_farm_t *f = calloc(1, sizeof *f);
    if (!f)
        return NS_ERR_NOMEM;
    int rv = s_copy_model(f, model);
    if (rv != NS_OK) {
        s_destroy(f);
        return rv;
    }
    size_t d = (size_t)ns_model_dim(model);
    f->canary = malloc(S_CANARY_N * (d + 1) * sizeof(double));
    if (!f->canary) {
        s_destroy(f);
        return NS_ERR_NOMEM;
    }
    s_canary_points(model, f->canary, S_CANARY_N);
    double *canary_logl = f->canary + S_CANARY_N * d;
    if ((rv = ns_model_log_likelihood(model, f->canary, S_CANARY_N, canary_logl)) != NS_OK) {
        ns_error(S_MOD, "the model failed on the canary points: %s", ns_model_last_error(model));
        s_destroy(f);
        return rv;
    }

    int local = !ns_config_is_set(cfg, "bind");
    long n_pool = ns_config_is_set(cfg, "n-pool") ? ns_config_int(cfg, "n-pool") : 0;
    ns_broker_config_t *bc = &f->cfg;
    bc->bind = local ? "tcp://127.0.0.1:*" : ns_config_str(cfg, "bind");
    bc->model_name = f->model_name;
    bc->model_path = f->model_path;
    bc->model_args = f->model_args;
    bc->model_hash = f->model_hash;
    bc->dim = (int)d;
    bc->canary_x = f->canary;
    bc->canary_logl = canary_logl;
    bc->canary_n = S_CANARY_N;
    bc->n_pool = n_pool;
    bc->chunksize = ns_config_is_set(cfg, "chunksize") ? ns_config_int(cfg, "chunksize") : 0;
    bc->worker_timeout = ns_config_double(cfg, "worker-timeout");
    bc->chunk_timeout = ns_config_double(cfg, "chunk-timeout");
    bc->max_retries = ns_config_int(cfg, "max-retries");
    bc->max_chunk_faults = ns_config_int(cfg, "max-chunk-faults");
    bc->local_pool = local && n_pool > 0;
    bc->spot_fraction = ns_config_double(cfg, "spot-check");
    /* the model is idle while a batch runs (the sampler waits in evaluate());
     * Python models are called from their own thread only */
    bc->spot_model = bc->spot_fraction > 0 && !strstr(f->model_path, ".py") ? model : NULL;
    s_fd_capacity(bc);
    if (bc->local_pool && (size_t)n_pool > bc->max_workers && bc->max_workers > 0) {
        ns_error(S_MOD, "--n-pool %ld: the file descriptor limit (%ld) allows %zu workers; raise "
                 "ulimit -n or use fewer", n_pool, bc->fd_limit, bc->max_workers);
        s_destroy(f);
        return NS_ERR_INVAL;
    }
    bc->max_message = (int64_t)ns_config_int(cfg, "max-message-size") << 20;
    /* heartbeats both ways (docs/protocol.md §3): 1 s x 3 by default */
    bc->heartbeat_ms = (int)lround(1000.0 * ns_config_double(cfg, "heartbeat-interval"));
    bc->liveness = (int)ns_config_int(cfg, "heartbeat-liveness");

    if ((rv = s_security(f, cfg, bc->bind)) != NS_OK) {
        s_destroy(f);
        return rv;
    }
    bc->curve_cert = f->curve;
    bc->curve_allow = f->allow;
    s_io_threads();
    char err[512];
    f->broker = ns_broker_new(bc, err, sizeof err);
    if (!f->broker) {
        /* --bind was checked at start-up (ns_farm_check_bind): what is left
         * is the host refusing the bind, e.g. a port taken since then */
        ns_error(S_MOD, "%s", err);
        s_destroy(f);
        return NS_ERR_IO;
    }
    if (local && n_pool > 0) {
        char path[4096];
        const char *given = ns_config_is_set(cfg, "worker-path") ? ns_config_str(cfg, "worker-path")
                                                                  : NULL;
        if ((rv = ns_pool_find_worker(given, argv0, path, sizeof path, err, sizeof err)) != NS_OK
            || (rv = ns_pool_new(path, bc->endpoint, f->model_path, f->curve ? f->keys : NULL,
                                 (size_t)n_pool, &f->pool, err, sizeof err))
                   != NS_OK) {
            ns_error(S_MOD, "%s", err);
            s_destroy(f);
            return rv;
        }
        /* read by the broker thread only when a local worker exits, which
         * it can learn only after the WATCH round trips below */
        bc->respawn_ctx = f->pool;
        bc->max_respawns = ns_config_is_set(cfg, "max-respawns") ? ns_config_int(cfg, "max-respawns")
                                                                 : n_pool;
        bc->respawn = s_respawn;
        for (size_t i = 0; i < ns_pool_size(f->pool); i++)
            ns_broker_watch_pid(f->broker, ns_pool_pid(f->pool, i));
        ns_info(S_MOD, "started %ld local workers (%s) on %s", n_pool, path, bc->endpoint);
    } else {
        ns_info(S_MOD, "farm open (--bind %s); workers join with: nessai-worker --connect %s%s%s",
                bc->bind, bc->endpoint, f->curve ? " --keys " : " --insecure --model ",
                f->curve ? f->keys : f->model_path);
        s_write_address(bc->endpoint, f->model_path);
    }
    *out = ns_evaluator_new(&s_farm_ops, f);
    if (!*out) {
        s_destroy(f);
        return NS_ERR_NOMEM;
    }
    return NS_OK;
}

static s_farm_t *s_farm_of(ns_evaluator_t *ev)
{
    return (ev && ev->ops == &s_farm_ops) ? ev->impl : NULL;
}

int ns_farm_stats(ns_evaluator_t *ev, ns_farm_stats_t *out)
{
    s_farm_t *f = s_farm_of(ev);
    if (!f)
        return NS_ERR_INVAL;
    ns_broker_stats(f->broker, out);
    return NS_OK;
}

const char *ns_farm_endpoint(ns_evaluator_t *ev)
{
    s_farm_t *f = s_farm_of(ev);
    return f ? f->cfg.endpoint : NULL;
}

int ns_farm_wait_live(ns_evaluator_t *ev, size_t n, double timeout_s)
{
    s_farm_t *f = s_farm_of(ev);
    if (!f)
        return NS_ERR_INVAL;
    double until = ns_now() + timeout_s;
    for (;;) {
        ns_farm_stats_t st;
        ns_broker_stats(f->broker, &st);
        if (st.workers_live >= n)
            return NS_OK;
        if (ns_now() > until)
            return NS_ERR_TIMEOUT;
        usleep(10000);   /* polling a counter in tests and benchmarks only */
    }
}
