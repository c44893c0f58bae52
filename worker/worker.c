/* worker.c - the worker loop: one control DEALER, one data DEALER (ASK,
 * CHUNK, RESULT), and an evaluation thread so heartbeats never stop. */
#include "worker.h"
#include "nessai/wire.h"
#include "nessai/keys.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/plugin.h"
#include "nessai/util.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_MOD "worker"
#define S_BACKOFF_MIN_S 1.0      /* Paranoid Pirate reconnect back-off */
#define S_BACKOFF_MAX_S 4.0
#define S_DEFAULT_HB_MS 1000     /* until WELCOME says otherwise */
#define S_DEFAULT_LIVENESS 3
#define S_INLINE_MAX_S 0.05      /* chunks expected faster than this skip the eval thread */

static int s_sigpipe[2] = {-1, -1};   /* written by the signal handler */

static void s_on_signal(int sig)
{
    int saved = errno;
    ns_interrupt_request(sig);
    char b = 1;
    if (s_sigpipe[1] >= 0 && write(s_sigpipe[1], &b, 1) < 0) {
        /* the pipe is full: a wake-up is already pending */
    }
    errno = saved;
}

int ns_worker_signals_init(void)
{
    if (s_sigpipe[0] < 0) {
        if (pipe(s_sigpipe) != 0)
            return NS_ERR_IO;
        for (int i = 0; i < 2; i++) {
            fcntl(s_sigpipe[i], F_SETFL, fcntl(s_sigpipe[i], F_GETFL) | O_NONBLOCK);
            fcntl(s_sigpipe[i], F_SETFD, FD_CLOEXEC);
        }
    }
    zsys_handler_set(NULL);   /* ours, not CZMQ's */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    return NS_OK;
}

/* ---- the evaluation thread ----------------------------------------------- */

typedef struct {
    ns_model_t *model;
    const double *x;
    size_t n;
    double *logl;
} s_job_t;

typedef struct {
    int rv;
    double cpu_s, wall_s;
    char err[512];
} s_done_t;

static double s_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void s_run_job(const s_job_t *job, s_done_t *done)
{
    memset(done, 0, sizeof *done);
    double w0 = ns_now(), c0 = s_thread_cpu();
    done->rv = ns_model_log_likelihood(job->model, job->x, job->n, job->logl);
    done->wall_s = ns_now() - w0;
    done->cpu_s = s_thread_cpu() - c0;
    if (done->rv != NS_OK)
        snprintf(done->err, sizeof done->err, "%s", ns_model_last_error(job->model));
}

/* The evaluation thread's pipe carries one command:
 *   JOB model:p x:p n:8 logl:p done:p
 * evaluate n points of x with model into logl and fill *done (an s_done_t);
 * the reply, an 'i' frame (NS_OK, or NS_ERR_INVAL for anything else but
 * $TERM), comes when it is finished. The buffers are the slot's: it touches
 * none of them until the reply. */
static void s_eval_actor(zsock_t *pipe, void *args)
{
    zsock_signal(pipe, 0);
    for (;;) {
        char *cmd = NULL;
        void *model = NULL, *x = NULL, *logl = NULL, *done = NULL;
        uint64_t n = 0;
        if (zsock_recv(pipe, "spp8pp", &cmd, &model, &x, &n, &logl, &done) != 0
            || !cmd || streq(cmd, "$TERM")) {
            zstr_free(&cmd);
            break;
        }
        int rv = NS_OK;
        if (streq(cmd, "JOB") && model && done && n <= SIZE_MAX) {
            s_job_t job = {model, x, (size_t)n, logl};
            s_run_job(&job, done);
        } else
            rv = NS_ERR_INVAL;
        zstr_free(&cmd);
        if (zsock_send(pipe, "i", rv) != 0)
            break;
    }
}

/* ---- one slot ------------------------------------------------------------ */

typedef enum { S_CONTINUE = -1, S_STOPPED, S_REFUSED, S_LOST, S_INTERRUPTED, S_ORPHANED, S_FATAL, S_GAVE_UP } s_outcome_t;
typedef enum { P_HELLO, P_CANARY, P_READY, P_LIVE } s_phase_t;
typedef enum { B_IDLE, B_CANARY, B_CHUNK } s_busy_t;

typedef struct {
    const ns_worker_config_t *cfg;
    char host[256];
    zactor_t *eval;               /* evaluation thread */
    s_busy_t busy;                /* what the evaluation thread is doing */
    s_done_t done;                /* its outcome, written by it while busy */
    ns_model_t *model;            /* loaded plugin, reused across sessions */
    char model_key[8400];         /* path \n args of the loaded model */
    double *x, *logl;             /* job buffers, owned */
    size_t cap_x, cap_logl;
    /* the current session */
    zsock_t *control, *data;
    zcert_t *cert, *server;       /* CURVE: our key pair, the coordinator's public key */
    s_phase_t phase;
    uint64_t run;
    char id[64];                  /* our id at the coordinator */
    uint64_t token;               /* from WELCOME: binds our data connection */
    uint64_t received;            /* CHUNKs received on the data connection */
    uint64_t batch;               /* chunk being evaluated */
    uint32_t chunk, attempt, n;
    unsigned hb_ms, liveness;
    int64_t max_message;
    double last_heard;
    double sec_per_point;         /* last chunk's evaluation speed, 0 = unknown */
    uint64_t malformed;           /* messages dropped */
    double answered;              /* last message from any coordinator (--max-wait) */
    char endpoint[512];           /* --connect-file: the endpoint read from it */
    ns_address_stamp_t stamp;     /* ... and the version of the file it came from */
    char keys_dir[4096];          /* keys_beside_address: the farm-keys found there */
} s_worker_t;

/* Room for n doubles in *buf, whose capacity is *cap. */
static int s_grow(double **buf, size_t *cap, size_t n)
{
    if (n <= *cap)
        return NS_OK;
    if (n > SIZE_MAX / sizeof **buf)
        return NS_ERR_NOMEM;
    double *p = realloc(*buf, n * sizeof *p);
    if (!p)
        return NS_ERR_NOMEM;
    *buf = p;
    *cap = n;
    return NS_OK;
}

static int s_reserve(s_worker_t *w, size_t nx, size_t nl)
{
    if (s_grow(&w->x, &w->cap_x, nx) != NS_OK)
        return NS_ERR_NOMEM;
    return s_grow(&w->logl, &w->cap_logl, nl);
}

static void s_submit(s_worker_t *w, size_t n, s_busy_t what)
{
    memset(&w->done, 0, sizeof w->done);
    zsock_send(w->eval, "spp8pp", "JOB", (void *)w->model, (void *)w->x, (uint64_t)n,
               (void *)w->logl, (void *)&w->done);
    w->busy = what;
}

/* Wait for the evaluation thread to finish (the buffers stay ours). */
static void s_drain_eval(s_worker_t *w)
{
    if (w->busy == B_IDLE)
        return;
    int rv;
    zsock_recv(w->eval, "i", &rv);
    w->busy = B_IDLE;
}

static void s_send(s_worker_t *w, zsock_t *sock, const ns_msg_t *m)
{
    int rv = ns_wire_send(sock, NULL, m);
    if (rv != NS_OK)
        ns_debug(S_MOD, "could not send %s: %s", ns_msg_type_name(m->type), ns_strerror(rv));
}

static void s_close_session(s_worker_t *w)
{
    zsock_destroy(&w->control);
    zsock_destroy(&w->data);
    zcert_destroy(&w->cert);
    zcert_destroy(&w->server);
}

/* --keys: our key pair and the pinned coordinator key, read for every
 * session (a resumed coordinator may have new keys in the same place). */
static int s_load_keys(s_worker_t *w)
{
    if (!w->cfg->keys)
        return NS_OK;
    char path[4200], err[1024];
    snprintf(path, sizeof path, "%s/%s.key", w->cfg->keys, NS_KEYS_COORDINATOR);
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        /* the coordinator has not written its keys yet: wait for it */
        ns_info(S_MOD, "waiting for the coordinator's key %s", path);
        return NS_ERR_STATE;
    }
    w->server = ns_keys_load_public(path, err, sizeof err);
    if (w->server) {
        if (w->cfg->cert)
            snprintf(path, sizeof path, "%s", w->cfg->cert);
        else
            snprintf(path, sizeof path, "%s/%s.key_secret", w->cfg->keys, NS_KEYS_WORKER);
        w->cert = ns_keys_load_secret(path, err, sizeof err);
    }
    if (!w->server || !w->cert) {
        ns_error(S_MOD, "%s", err);
        return NS_ERR_IO;
    }
    return NS_OK;
}

static void s_secure(s_worker_t *w, zsock_t *sock)
{
    if (w->cert)
        ns_keys_client(sock, w->cert, w->server);
}

/* 1 if the directory dir (resolved) contains the resolved file real. */
static int s_inside(const char *dir, size_t dlen, const char *real)
{
    char d[PATH_MAX], rd[PATH_MAX];
    if (dlen == 0 || dlen >= sizeof d)
        return 0;
    memcpy(d, dir, dlen);
    d[dlen] = '\0';
    if (!realpath(d, rd))
        return 0;
    size_t n = strlen(rd);
    if (n == 1 && rd[0] == '/')
        return 1;
    return strncmp(real, rd, n) == 0 && real[n] == '/';
}

/* 1 if the address file (--connect-file) names real as the run's model on
 * its "model PATH" line. */
static int s_model_in_address_file(const char *file, const char *real)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return 0;
    char line[PATH_MAX + 16], named[PATH_MAX];
    int ok = 0;
    while (!ok && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "model ", 6) != 0)
            continue;
        char *m = line + 6, *py = strstr(m, ".py:");
        if (py)
            py[3] = '\0';
        ok = realpath(m, named) && strcmp(named, real) == 0;
    }
    fclose(f);
    return ok;
}

/* docs/protocol.md §8, "Models": may we load the announced path? */
static int s_model_trusted(const s_worker_t *w, const char *announced, char *why, size_t whylen)
{
    const char *py = strstr(announced, ".py:");
    char file[PATH_MAX], real[PATH_MAX];
    size_t flen = py ? (size_t)(py - announced) + 3 : strlen(announced);
    if (flen == 0 || flen >= sizeof file) {
        snprintf(why, whylen, "the announced model path is empty or too long");
        return 0;
    }
    memcpy(file, announced, flen);
    file[flen] = '\0';
    if (!realpath(file, real)) {
        snprintf(why, whylen, "the announced model %.400s is not on this host: %s", file,
                 strerror(errno));
        return 0;
    }
    for (const char *p = w->cfg->allow_model_dirs; p && *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (s_inside(p, len, real))
            return 1;
        p = colon ? colon + 1 : p + len;
    }
    if (w->cfg->keys) {
        char path[4200], line[PATH_MAX + 2], pinned[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", w->cfg->keys, NS_KEYS_MODEL);
        FILE *f = fopen(path, "r");
        if (f && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = '\0';
            const char *lpy = strstr(line, ".py:");
            if (lpy)
                line[lpy - line + 3] = '\0';
            if (realpath(line, pinned) && strcmp(pinned, real) == 0) {
                fclose(f);
                return 1;
            }
        }
        if (f)
            fclose(f);
    }
    if (w->cfg->connect_file && s_model_in_address_file(w->cfg->connect_file, real))
        return 1;
    snprintf(why, whylen, "the worker does not trust the model path %.400s announced by the "
             "coordinator: start it with --model PATH, or --allow-model-dir DIR%s",
             announced, w->cfg->keys ? "" : ", or --keys DIR of the run");
    return 0;
}

/* Load the announced model, or reuse the one already loaded for it. */
static int s_load_model(s_worker_t *w, const ns_msg_t *m, char *err, size_t errlen)
{
    char path[NS_FARM_MAX_STR + 1], args[NS_FARM_MAX_STR + 1], key[sizeof w->model_key];
    ns_str_copy(m->model_path, path, sizeof path);
    ns_str_copy(m->model_args, args, sizeof args);
    const char *use = w->cfg->model_override ? w->cfg->model_override : path;
    snprintf(key, sizeof key, "%s\n%s", use, args);
    if (w->model && strcmp(key, w->model_key) == 0)
        return NS_OK;
    if (!w->cfg->model_override && !s_model_trusted(w, path, err, errlen))
        return NS_ERR_INVAL;
    ns_model_destroy(&w->model);
    w->model_key[0] = '\0';
    int rv = ns_model_load(use, args, &w->model, err, errlen);
    if (rv != NS_OK)
        return rv;
    snprintf(w->model_key, sizeof w->model_key, "%s", key);
    ns_info(S_MOD, "loaded model %s (dim %d) from %s", ns_model_name(w->model),
            ns_model_dim(w->model), use);
    return NS_OK;
}

static void s_on_welcome(s_worker_t *w, const ns_msg_t *m)
{
    w->run = m->run;
    ns_str_copy(m->worker, w->id, sizeof w->id);
    w->token = m->token;
    w->hb_ms = m->heartbeat_ms;
    w->liveness = m->liveness;
    w->max_message = (int64_t)m->max_message;
    ns_msg_t r;
    ns_msg_init(&r, NS_MSG_READY);
    r.run = w->run;
    char err[1024] = "";
    int rv = s_load_model(w, m, err, sizeof err);
    if (rv == NS_OK && (uint32_t)ns_model_dim(w->model) == m->dim
        && s_reserve(w, (size_t)m->canary_n * m->dim, m->canary_n) == NS_OK) {
        ns_msg_get_doubles(m, w->x, (size_t)m->canary_n * m->dim);
        w->n = m->canary_n;
        w->phase = P_CANARY;
        s_submit(w, m->canary_n, B_CANARY);
        return;
    }
    if (rv == NS_OK) {   /* loaded, but another dimension: let the coordinator say so */
        r.model_name = ns_str_of(ns_model_name(w->model));
        r.model_hash = ns_str_of(ns_model_hash(w->model));
        r.dim = (uint32_t)ns_model_dim(w->model);
        r.data_len = 0;
        r.status = 0;
    } else {
        ns_error(S_MOD, "cannot load the model: %s", err);
        r.status = 1;
        r.text = ns_str_of(err);
    }
    s_send(w, w->control, &r);
    w->phase = P_READY;
}

static void s_on_canary_done(s_worker_t *w, const s_done_t *done)
{
    ns_msg_t r;
    ns_msg_init(&r, NS_MSG_READY);
    r.run = w->run;
    r.model_name = ns_str_of(ns_model_name(w->model));
    r.model_hash = ns_str_of(ns_model_hash(w->model));
    r.dim = (uint32_t)ns_model_dim(w->model);
    uint8_t scratch[64 * 8];
    if (done->rv != NS_OK) {
        r.status = 1;
        r.text = ns_str_of(done->err);
    } else if (w->n <= 64)
        ns_msg_set_doubles(&r, w->logl, w->n, scratch);
    s_send(w, w->control, &r);
    w->phase = P_READY;
}

/* ASK (docs/protocol.md §3): we are idle, send one chunk; the token binds
 * this connection to our id. */
static void s_ask(s_worker_t *w)
{
    if (!w->data)
        return;
    ns_msg_t m;
    ns_msg_init(&m, NS_MSG_ASK);
    m.run = w->run;
    m.worker = ns_str_of(w->id);
    m.token = w->token;
    m.received = w->received;
    s_send(w, w->data, &m);
}

static int s_on_accept(s_worker_t *w)
{
    w->data = zsock_new(ZMQ_DEALER);
    if (!w->data)
        return NS_ERR_IO;
    w->received = 0;
    s_secure(w, w->data);
    /* chunks in, results out: the linger lets a last RESULT leave */
    ns_wire_tune(w->data, w->max_message, 2000);
    return NS_OK;
}

static void s_on_chunk_done(s_worker_t *w, const s_done_t *done);

/* A RESULT about the chunk in hand: run, our id, batch, chunk, attempt. */
static void s_chunk_msg(const s_worker_t *w, ns_msg_type_t type, ns_msg_t *m)
{
    ns_msg_init(m, type);
    m->run = w->run;
    m->worker = ns_str_of(w->id);
    m->batch = w->batch;
    m->chunk = w->chunk;
    m->attempt = w->attempt;
}

static void s_on_chunk(s_worker_t *w)
{
    zframe_t *f = zframe_recv(w->data);
    if (!f)
        return;
    w->received++;
    ns_msg_t m;
    if (zframe_more(f) || ns_msg_decode(zframe_data(f), zframe_size(f), &m) != NS_OK
        || m.type != NS_MSG_CHUNK || m.d != (uint32_t)ns_model_dim(w->model)) {
        w->malformed++;
        ns_debug(S_MOD, "dropped a malformed data message (%zu bytes)", zframe_size(f));
        while (zframe_more(f)) {   /* the rest of a multi-part message */
            zframe_destroy(&f);
            if (!(f = zframe_recv(w->data)))
                break;
        }
        zframe_destroy(&f);
        s_ask(w);   /* still idle: the coordinator re-queues what it sent */
        return;
    }
    if (m.run != w->run || s_reserve(w, (size_t)m.n * m.d, m.n) != NS_OK) {
        zframe_destroy(&f);
        s_ask(w);
        return;
    }
    ns_msg_get_doubles(&m, w->x, (size_t)m.n * m.d);
    w->batch = m.batch;
    w->chunk = m.chunk;
    w->attempt = m.attempt;
    w->n = m.n;
    zframe_destroy(&f);
    ns_debug(S_MOD, "evaluating chunk %u of batch %llu attempt %u (%u points)", w->chunk,
             (unsigned long long)w->batch, w->attempt, w->n);
    /* A chunk known to be quick is evaluated right here: heartbeats can
     * wait 50 ms, and two thread hand-offs are most of a small chunk's
     * round trip. Anything slower or unknown goes to the evaluation thread. */
    double inline_max = 0.25 * w->hb_ms / 1000.0; /* a quarter beat at most */
    if (inline_max > S_INLINE_MAX_S)
        inline_max = S_INLINE_MAX_S;
    if (w->sec_per_point > 0 && w->sec_per_point * (double)m.n < inline_max) {
        s_job_t job = {w->model, w->x, m.n, w->logl};
        s_done_t done;
        s_run_job(&job, &done);
        s_on_chunk_done(w, &done);
        return;
    }
    s_submit(w, m.n, B_CHUNK);
}

static void s_on_chunk_done(s_worker_t *w, const s_done_t *done)
{
    if (done->rv == NS_OK && w->n > 0)
        w->sec_per_point = done->wall_s / (double)w->n;
    ns_msg_t r;
    s_chunk_msg(w, NS_MSG_RESULT, &r);
    r.n = w->n;
    r.cpu_s = done->cpu_s;
    r.wall_s = done->wall_s;
    uint8_t *scratch = NULL;
    if (done->rv == NS_OK) {
        if (!ns_msg_host_little_endian() && !(scratch = malloc((size_t)w->n * 8))) {
            s_ask(w);   /* idle without an answer: the coordinator re-sends it */
            return;
        }
        ns_msg_set_doubles(&r, w->logl, w->n, scratch);
    } else {
        r.status = 1;
        r.text = ns_str_of(done->err);
        ns_warn(S_MOD, "chunk %u of batch %llu failed: %s", w->chunk,
                (unsigned long long)w->batch, done->err);
    }
    s_send(w, w->data, &r);
    free(scratch);
    s_ask(w);
}

static void s_on_eval_done(s_worker_t *w)
{
    int rv = NS_ERR_STATE;
    s_done_t done;
    memset(&done, 0, sizeof done);
    if (zsock_recv(w->eval, "i", &rv) == 0 && rv == NS_OK)
        done = w->done;
    else
        done.rv = NS_ERR_STATE;
    s_busy_t was = w->busy;
    w->busy = B_IDLE;
    if (was == B_CANARY && w->phase == P_CANARY)
        s_on_canary_done(w, &done);
    else if (was == B_CHUNK && w->phase == P_LIVE)
        s_on_chunk_done(w, &done);
}

static int s_connect_data(s_worker_t *w, unsigned data_port)
{
    char ep[512];
    if (s_on_accept(w) != NS_OK)
        return NS_ERR_IO;
    if (ns_wire_endpoint_with_port(w->cfg->connect, data_port, ep, sizeof ep) != NS_OK
        || zsock_connect(w->data, "%s", ep) != 0)
        return NS_ERR_IO;
    s_ask(w);   /* binds the connection, and we are idle */
    return NS_OK;
}

/* SIGTERM: say BYE at once (the coordinator re-sends our work), wait up to
 * one heartbeat for its STOP so the BYE is known to have arrived. */
static void s_leave(s_worker_t *w)
{
    if (w->phase == P_HELLO)
        return;
    /* Close the data socket first, so that a chunk sent after the
     * coordinator has re-sent what we hand back fails on its side; give its
     * I/O thread a moment to see the connection go before the BYE arrives.
     * Nothing on it needs to get out any more. */
    if (w->data)
        zsock_set_linger(w->data, 0);
    zsock_destroy(&w->data);
    zclock_sleep(100);
    ns_msg_t m;
    ns_msg_init(&m, NS_MSG_BYE);
    m.run = w->run;
    m.text = ns_str_of(w->busy == B_CHUNK ? "signal received; handing back the chunk in progress"
                                          : "signal received");
    ns_info(S_MOD, "leaving the farm: %.*s", (int)m.text.len, m.text.ptr);
    s_send(w, w->control, &m);
    zpoller_t *p = zpoller_new(w->control, NULL);
    double until = ns_now() + w->hb_ms / 1000.0;
    while (p && ns_now() < until) {
        void *which = zpoller_wait(p, (int)((until - ns_now()) * 1000.0) + 1);
        if (which != w->control)
            continue;
        zframe_t *f = zframe_recv(w->control);
        ns_msg_t r;
        int stop = f && ns_msg_decode(zframe_data(f), zframe_size(f), &r) == NS_OK
                   && r.type == NS_MSG_STOP;
        zframe_destroy(&f);
        if (stop)
            break;
    }
    zpoller_destroy(&p);
}

static s_outcome_t s_on_control(s_worker_t *w, unsigned *data_port)
{
    zframe_t *f = zframe_recv(w->control);
    if (!f)
        return S_FATAL;
    ns_msg_t m;
    int rv = ns_msg_decode(zframe_data(f), zframe_size(f), &m);
    s_outcome_t out = S_CONTINUE;
    char text[NS_FARM_MAX_STR + 1];
    if (rv == NS_MSG_OTHER_VERSION) {
        ns_error(S_MOD, "the coordinator at %s speaks farm protocol version %u, this worker "
                 "version %u; use a nessai-worker from the coordinator's release",
                 w->cfg->connect, m.version, NS_FARM_PROTOCOL_VERSION);
        out = S_REFUSED;
        goto done;
    }
    if (rv != NS_OK) {
        w->malformed++;
        ns_debug(S_MOD, "dropped a malformed control message (%zu bytes)", zframe_size(f));
        goto done;
    }
    w->answered = w->last_heard = ns_now();
    switch (m.type) {
    case NS_MSG_WELCOME:
        if (w->phase == P_HELLO) {
            *data_port = m.data_port;
            s_on_welcome(w, &m);
        }
        break;
    case NS_MSG_ACCEPT:
        if (w->phase == P_READY && m.run == w->run) {
            if (s_connect_data(w, *data_port) != NS_OK) {
                ns_error(S_MOD, "cannot connect the data socket to %s", w->cfg->connect);
                out = S_FATAL;
                break;
            }
            w->phase = P_LIVE;
            ns_info(S_MOD, "registered id=%s coordinator=%s model=%s dim=%d", w->id,
                    w->cfg->connect, ns_model_name(w->model), ns_model_dim(w->model));
        }
        break;
    case NS_MSG_REFUSE:
        ns_error(S_MOD, "refused by the coordinator at %s: %s", w->cfg->connect,
                 ns_str_copy(m.text, text, sizeof text));
        out = S_REFUSED;
        break;
    case NS_MSG_STOP:
        ns_info(S_MOD, "the coordinator ended the run (%s)", ns_str_copy(m.text, text, sizeof text));
        out = S_STOPPED;
        break;
    case NS_MSG_HEARTBEAT:
        break;
    default:
        w->malformed++;   /* a worker-only type sent to us */
        break;
    }
done:
    zframe_destroy(&f);
    return out;
}

static int s_sigpipe_drain(void)
{
    char b[64];
    while (read(s_sigpipe[0], b, sizeof b) > 0) {
    }
    return ns_interrupt_pending();
}

/* --connect-file: 1 if the file now names another endpoint than the one in use. */
static int s_address_moved(s_worker_t *w)
{
    if (!ns_address_changed(w->cfg->connect_file, &w->stamp))
        return 0;
    char ep[sizeof w->endpoint], why[700];
    ns_address_stamp_t st;
    if (ns_address_read(w->cfg->connect_file, ep, sizeof ep, &st, why, sizeof why) != NS_OK)
        return 0;   /* removed or unreadable: keep trying the one we have */
    if (strcmp(ep, w->endpoint) == 0) {
        w->stamp = st;
        return 0;
    }
    ns_info(S_MOD, "%s now names %s (was %s)", w->cfg->connect_file, ep, w->endpoint);
    return 1;
}

static int s_gave_up(const s_worker_t *w)
{
    return w->cfg->max_wait > 0 && ns_now() - w->answered >= w->cfg->max_wait;
}

/* One connection to the coordinator, from HELLO to STOP, loss or signal. */
static s_outcome_t s_session(s_worker_t *w, int *accepted)
{
    *accepted = 0;
    w->phase = P_HELLO;
    w->hb_ms = S_DEFAULT_HB_MS;
    w->liveness = S_DEFAULT_LIVENESS;
    int keys = s_load_keys(w);
    if (keys != NS_OK)
        return keys == NS_ERR_STATE ? S_LOST : S_FATAL;
    w->control = zsock_new(ZMQ_DEALER);
    if (!w->control)
        return S_FATAL;
    s_secure(w, w->control);
    ns_wire_tune(w->control, NS_FARM_CONTROL_MAX, 0);
    if (zsock_connect(w->control, "%s", w->cfg->connect) != 0) {
        ns_error(S_MOD, "cannot connect to %s: give an endpoint such as tcp://host:5555",
                 w->cfg->connect);
        return S_FATAL;
    }
    ns_msg_t hello;
    ns_msg_init(&hello, NS_MSG_HELLO);
    hello.host = ns_str_of(w->host);
    hello.pid = (uint32_t)getpid();
    hello.slot = (uint32_t)w->cfg->slot;
    hello.text = ns_str_of(w->cfg->model_override);
    s_send(w, w->control, &hello);
    w->last_heard = ns_now();
    double next_hb = ns_now() + w->hb_ms / 1000.0;
    unsigned data_port = 0;
    for (;;) {
        zmq_pollitem_t items[4] = {
            {NULL, s_sigpipe[0], ZMQ_POLLIN, 0},
            {zsock_resolve(w->control), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(w->eval), 0, ZMQ_POLLIN, 0},
            {w->data ? zsock_resolve(w->data) : NULL, 0, ZMQ_POLLIN, 0},
        };
        int nitems = (w->phase == P_LIVE && w->busy == B_IDLE) ? 4 : 3;
        long timeout = (long)((next_hb - ns_now()) * 1000.0) + 1;
        if (timeout < 0)
            timeout = 0;
        int rc = zmq_poll(items, nitems, timeout);
        if (rc < 0 && zmq_errno() != EINTR)
            return S_FATAL;
        if (ns_interrupt_pending() || (rc > 0 && (items[0].revents & ZMQ_POLLIN) && s_sigpipe_drain())) {
            ns_info(S_MOD, "signal %d: leaving", ns_interrupt_pending());
            s_leave(w);
            return S_INTERRUPTED;
        }
        if (rc > 0 && (items[1].revents & ZMQ_POLLIN)) {
            int was_live = w->phase == P_LIVE;
            s_outcome_t out = s_on_control(w, &data_port);
            if (!was_live && w->phase == P_LIVE)
                *accepted = 1;
            if (out != S_CONTINUE)
                return out;
            /* WELCOME may have set a shorter interval than the one the
             * next beat was scheduled with */
            if (next_hb > ns_now() + w->hb_ms / 1000.0)
                next_hb = ns_now() + w->hb_ms / 1000.0;
        }
        if (rc > 0 && (items[2].revents & ZMQ_POLLIN))
            s_on_eval_done(w);
        if (rc > 0 && nitems == 4 && (items[3].revents & ZMQ_POLLIN) && w->busy == B_IDLE)
            s_on_chunk(w);
        double now = ns_now();
        if (now >= next_hb) {
            next_hb = now + w->hb_ms / 1000.0;
            ns_msg_t hb;
            ns_msg_init(&hb, NS_MSG_HEARTBEAT);
            hb.run = w->run;
            s_send(w, w->control, &hb);
            /* idle: ask again, so that a data connection libzmq re-opened
             * is bound again (a repeated ASK changes nothing otherwise) */
            if (w->phase == P_LIVE && w->busy == B_IDLE)
                s_ask(w);
            if (w->cfg->parent_pid > 0 && getppid() != w->cfg->parent_pid)
                return S_ORPHANED;
            if ((w->cfg->connect_file && s_address_moved(w)) || s_gave_up(w))
                return S_LOST;
            if (now - w->last_heard > (w->hb_ms / 1000.0) * w->liveness) {
                ns_warn(S_MOD, "the coordinator at %s has been silent for %.1f s",
                        w->cfg->connect, now - w->last_heard);
                return S_LOST;
            }
        }
    }
}

/* Sleep for the back-off, waking early on a signal. */
static void s_backoff_sleep(double seconds)
{
    zmq_pollitem_t item = {NULL, s_sigpipe[0], ZMQ_POLLIN, 0};
    zmq_poll(&item, 1, (long)(seconds * 1000.0));
}

/* The back-off before reconnecting: cut short by a signal, by --connect-file
 * naming a new endpoint, and by --max-wait. */
static void s_retry_sleep(s_worker_t *w, double seconds)
{
    double until = ns_now() + seconds;
    if (w->cfg->max_wait > 0 && w->answered + w->cfg->max_wait < until)
        until = w->answered + w->cfg->max_wait;
    for (;;) {
        double left = until - ns_now();
        if (left <= 0 || ns_interrupt_pending())
            return;
        s_backoff_sleep(w->cfg->connect_file && left > 1.0 ? 1.0 : left);
        if (w->cfg->connect_file && s_address_moved(w))
            return;
    }
}

/* The farm-keys directory beside the address file, if there is one: the
 * coordinator writes its keys there before the address, so once the file
 * names an endpoint the keys of a CurveZMQ farm are in place. */
static const char *s_keys_beside(const char *file, char *dir, size_t size)
{
    const char *slash = strrchr(file, '/');
    struct stat st;
    snprintf(dir, size, "%.*s%sfarm-keys", slash ? (int)(slash - file) : 0, file,
             slash ? "/" : "");
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? dir : NULL;
}

/* --connect-file: wait until the file names an endpoint and use it. */
static s_outcome_t s_await_address(s_worker_t *w, ns_worker_config_t *own)
{
    char why[700], said[700] = "";
    for (;;) {
        if (ns_address_read(own->connect_file, w->endpoint, sizeof w->endpoint, &w->stamp, why,
                            sizeof why) == NS_OK) {
            own->connect = w->endpoint;
            if (own->keys_beside_address)
                own->keys = s_keys_beside(own->connect_file, w->keys_dir, sizeof w->keys_dir);
            return S_CONTINUE;
        }
        if (strcmp(why, said) != 0) {
            ns_info(S_MOD, "waiting for the coordinator's address: %s", why);
            snprintf(said, sizeof said, "%s", why);
        }
        if (s_gave_up(w))
            return S_GAVE_UP;
        double left = w->cfg->max_wait > 0 ? w->answered + w->cfg->max_wait - ns_now() : 1.0;
        s_backoff_sleep(left < 0.0 ? 0.0 : left < 1.0 ? left : 1.0);
        if (ns_interrupt_pending())
            return S_INTERRUPTED;
    }
}

int ns_worker_run(const ns_worker_config_t *cfg)
{
    s_worker_t w;
    memset(&w, 0, sizeof w);
    ns_worker_config_t own = *cfg;   /* its connect follows --connect-file */
    w.cfg = &own;
    w.answered = ns_now();
    if (gethostname(w.host, sizeof w.host) != 0)
        snprintf(w.host, sizeof w.host, "unknown");
    w.host[sizeof w.host - 1] = '\0';
    w.eval = zactor_new(s_eval_actor, NULL);
    if (!w.eval) {
        ns_error(S_MOD, "cannot start the evaluation thread");
        return NS_WORKER_EXIT_FAIL;
    }
    double backoff = S_BACKOFF_MIN_S;
    int code = NS_WORKER_EXIT_FAIL;
    for (;;) {
        s_outcome_t found = own.connect_file ? s_await_address(&w, &own) : S_CONTINUE;
        if (found != S_CONTINUE) {
            code = found == S_GAVE_UP ? NS_WORKER_EXIT_NO_COORDINATOR : NS_WORKER_EXIT_OK;
            break;
        }
        int accepted = 0;
        s_outcome_t out = s_session(&w, &accepted);
        if (accepted)
            backoff = S_BACKOFF_MIN_S;
        if (out != S_LOST && !(out == S_STOPPED && cfg->persistent) && w.busy != B_IDLE) {
            /* Leaving while the plugin still runs a chunk (handed back, or
             * the run is over): nothing to wait for, no way to stop it. */
            s_close_session(&w);
            fflush(stderr);
            _exit(out == S_STOPPED || out == S_INTERRUPTED ? NS_WORKER_EXIT_OK
                                                           : NS_WORKER_EXIT_FAIL);
        }
        s_drain_eval(&w);
        s_close_session(&w);
        if (out == S_STOPPED && !cfg->persistent) {
            code = NS_WORKER_EXIT_OK;
            break;
        }
        if (out == S_INTERRUPTED) {
            code = NS_WORKER_EXIT_OK;
            break;
        }
        if (out == S_REFUSED || out == S_FATAL) {
            code = NS_WORKER_EXIT_FAIL;
            break;
        }
        if (out == S_ORPHANED || (cfg->parent_pid > 0 && out == S_LOST && w.phase != P_HELLO)) {
            ns_error(S_MOD, "the coordinator (pid %d) is gone; a local worker does not outlive it",
                     cfg->parent_pid);
            code = NS_WORKER_EXIT_FAIL;
            break;
        }
        if (out == S_STOPPED) {   /* persistent: wait for the next run */
            s_backoff_sleep(S_BACKOFF_MIN_S);
            if (ns_interrupt_pending()) {
                code = NS_WORKER_EXIT_OK;
                break;
            }
            continue;
        }
        if (s_gave_up(&w)) {
            code = NS_WORKER_EXIT_NO_COORDINATOR;
            break;
        }
        ns_info(S_MOD, "reconnecting to %s in %.0f s", own.connect, backoff);
        s_retry_sleep(&w, backoff);
        if (ns_interrupt_pending()) {
            code = NS_WORKER_EXIT_OK;
            break;
        }
        backoff = backoff * 2 > S_BACKOFF_MAX_S ? S_BACKOFF_MAX_S : backoff * 2;
    }
    zactor_destroy(&w.eval);
    ns_model_destroy(&w.model);
    free(w.x);
    free(w.logl);
    return code;
}
