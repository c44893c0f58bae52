/* broker.c - the farm's background thread: registry, chunking, deadlines. */
#include "broker.h"
#include "wire.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_MOD "farm"
#define S_WAIT_LOG_S 5.0          /* "waiting for workers" every this often */
#define S_WELCOME_TIMEOUT_S 60.0  /* welcomed but no READY: dropped */
#define S_MAX_POLL_MS 200         /* upper bound on one poll while busy */
#define S_MAX_LOCAL 4096

struct ns_broker {
    zactor_t *actor;              /* the thread */
    ns_broker_config_t *cfg;      /* borrowed */
    char err[256];                /* bind failure reason */
};

typedef enum { W_WELCOMED, W_LIVE } s_wstate_t;

typedef struct {
    uint64_t seq;                 /* id number: "w<seq>" */
    char id[24];                  /* "w<seq>" */
    zframe_t *routing;            /* ROUTER identity */
    char host[128];               /* from HELLO */
    uint32_t pid;                 /* from HELLO */
    s_wstate_t state;
    double last_seen;             /* any message, for heartbeat expiry */
    double welcomed_at;           /* WELCOME sent */
    int taken;                    /* chunks of this batch taken, not yet answered */
} s_worker_t;

typedef struct {
    size_t start, n;              /* rows [start, start + n) of the batch */
    int done;                     /* a valid result was placed */
    int queued;                   /* waiting in the send queue */
    uint32_t attempt;             /* latest attempt sent, 0 before the first */
    uint64_t holder;              /* seq of the worker that took the latest attempt, 0 none */
    double deadline;              /* of the latest attempt, 0 when not in flight */
    double sent_at;               /* when the latest attempt was sent */
    uint32_t failures;            /* RESULTs with status 1 */
} s_chunk_t;

typedef struct {
    zsock_t *pipe;                /* to the caller */
    ns_broker_t *owner;
    ns_broker_config_t *cfg;
    zsock_t *router, *push, *pull;
    uint64_t run;                 /* random per start */
    uint64_t next_seq;            /* worker id numbers */
    s_worker_t **workers;         /* registry */
    size_t nworkers, capworkers;
    int pids[S_MAX_LOCAL];        /* local pool children still running */
    size_t npids;
    double next_tick;             /* heartbeat / expiry / deadline scan */
    double sec_per_point;         /* running estimate from results, 0 = unknown */
    ns_farm_stats_t stats;
    int terminated;
    /* the batch in progress */
    int active;
    uint64_t batch;               /* id of the current (or last) batch */
    const double *x;
    double *logl;
    size_t n, d, k;
    s_chunk_t *chunks;
    size_t *queue;                /* chunk indices to send, FIFO */
    size_t qhead, qlen;
    size_t remaining;             /* chunks not done */
    int chunked;                  /* chunks laid out (k known) */
    double t_start;
    double waiting_since;         /* no live workers since, 0 = not waiting */
    double last_wait_log;
} s_state_t;

/* Port of a bound tcp socket, from its last endpoint. */
static unsigned s_port(zsock_t *sock)
{
    char *ep = zsock_last_endpoint(sock);
    const char *colon = ep ? strrchr(ep, ':') : NULL;
    unsigned port = colon ? (unsigned)atoi(colon + 1) : 0;
    zstr_free(&ep);
    return port;
}

static size_t s_live(const s_state_t *s)
{
    size_t live = 0;
    for (size_t i = 0; i < s->nworkers; i++)
        live += s->workers[i]->state == W_LIVE;
    return live;
}

static s_worker_t *s_find_routing(s_state_t *s, zframe_t *routing)
{
    for (size_t i = 0; i < s->nworkers; i++)
        if (zframe_eq(s->workers[i]->routing, routing))
            return s->workers[i];
    return NULL;
}

static s_worker_t *s_find_id(s_state_t *s, ns_str_t id)
{
    for (size_t i = 0; i < s->nworkers; i++)
        if (ns_str_eq(id, s->workers[i]->id))
            return s->workers[i];
    return NULL;
}

static void s_send_control(s_state_t *s, zframe_t *routing, const ns_msg_t *m)
{
    int rv = ns_wire_send(s->router, routing, m);
    if (rv != NS_OK)
        ns_debug(S_MOD, "could not send %s: %s", ns_msg_type_name(m->type), ns_strerror(rv));
}

static void s_refuse(s_state_t *s, zframe_t *routing, const char *who, const char *reason)
{
    ns_msg_t m;
    ns_msg_init(&m, NS_MSG_REFUSE);
    m.text = ns_str_of(reason);
    s_send_control(s, routing, &m);
    s->stats.refused++;
    ns_warn(S_MOD, "refused worker %s reason=\"%s\"", who, reason);
}

/* Chunk i goes (back) into the send queue unless done or already there. */
static void s_enqueue(s_state_t *s, size_t i)
{
    s_chunk_t *c = &s->chunks[i];
    if (c->done || c->queued)
        return;
    if (c->attempt > 0)
        s->stats.chunks_resent++;
    c->queued = 1;
    c->deadline = 0;
    c->holder = 0;
    s->queue[(s->qhead + s->qlen) % s->k] = i;
    s->qlen++;
}

/* A worker is gone: its taken chunks and every chunk nobody has taken go
 * back to the queue (chunks in a dead worker's socket buffer are invisible).
 * Returns the number of its own chunks handed back. */
static size_t s_requeue_orphans(s_state_t *s, uint64_t seq)
{
    size_t own = 0;
    if (!s->active || !s->chunked)
        return 0;
    for (size_t i = 0; i < s->k; i++) {
        s_chunk_t *c = &s->chunks[i];
        if (c->done || c->queued || c->attempt == 0)
            continue;
        if (c->holder == seq)
            own++;
        if (c->holder == seq || c->holder == 0)
            s_enqueue(s, i);
    }
    return own;
}

static void s_remove_worker(s_state_t *s, s_worker_t *w)
{
    for (size_t i = 0; i < s->nworkers; i++) {
        if (s->workers[i] == w) {
            s->workers[i] = s->workers[--s->nworkers];
            break;
        }
    }
    zframe_destroy(&w->routing);
    free(w);
}

static double s_chunk_timeout(const s_state_t *s, size_t n)
{
    double t = s->cfg->chunk_timeout;
    double expect = 10.0 * (double)n * s->sec_per_point;
    return expect > t ? expect : t;
}

static void s_finish_batch(s_state_t *s, int rv)
{
    if (!s->active)
        return;
    if (rv == NS_OK) {
        s->stats.batches++;
        s->stats.chunks += s->k;
    }
    s->stats.likelihood_wall_s += ns_now() - s->t_start;
    s->active = 0;
    s->chunked = 0;
    free(s->chunks);
    free(s->queue);
    s->chunks = NULL;
    s->queue = NULL;
    s->qlen = s->qhead = 0;
    zsock_send(s->pipe, "i", rv);
}

/* Lay out k chunks with numpy array_split sizes. */
static int s_chunk_batch(s_state_t *s)
{
    size_t k = s->cfg->n_pool > 0 ? (size_t)s->cfg->n_pool : s_live(s);
    if (k == 0)
        return NS_ERR_STATE;
    if (s->cfg->chunksize > 0) {
        size_t need = (s->n + (size_t)s->cfg->chunksize - 1) / (size_t)s->cfg->chunksize;
        if (need > k)
            k = need;
    }
    /* Each chunk must fit the data-plane message limit (with room for the
     * envelope), so a huge batch is split further. */
    size_t max_points = (size_t)((s->cfg->max_message - 512) / (int64_t)(8 * s->d));
    if (max_points < 1)
        max_points = 1;
    if ((s->n + max_points - 1) / max_points > k)
        k = (s->n + max_points - 1) / max_points;
    if (k > s->n)
        k = s->n;
    s->chunks = calloc(k, sizeof *s->chunks);
    s->queue = calloc(k, sizeof *s->queue);
    if (!s->chunks || !s->queue)
        return NS_ERR_NOMEM;
    s->k = k;
    size_t base = s->n / k, extra = s->n % k, start = 0;
    for (size_t i = 0; i < k; i++) {
        s->chunks[i].start = start;
        s->chunks[i].n = base + (i < extra ? 1 : 0);
        start += s->chunks[i].n;
        s_enqueue(s, i);
    }
    s->remaining = k;
    s->chunked = 1;
    s->stats.last_k = k;
    ns_debug(S_MOD, "batch %llu: %zu points in k=%zu chunks (%zu live workers)",
             (unsigned long long)s->batch, s->n, k, s_live(s));
    return NS_OK;
}

/* Send queued chunks until PUSH would block. */
static void s_pump(s_state_t *s)
{
    double now = ns_now();
    while (s->active && s->chunked && s->qlen > 0) {
        size_t i = s->queue[s->qhead];
        s_chunk_t *c = &s->chunks[i];
        if (c->done) {   /* completed while it waited (an earlier attempt won) */
            c->queued = 0;
            s->qhead = (s->qhead + 1) % s->k;
            s->qlen--;
            continue;
        }
        ns_msg_t m;
        ns_msg_init(&m, NS_MSG_CHUNK);
        m.run = s->run;
        m.batch = s->batch;
        m.chunk = (uint32_t)i;
        m.attempt = c->attempt + 1;
        m.n = (uint32_t)c->n;
        m.d = (uint32_t)s->d;
        uint8_t *scratch = NULL;
        const double *rows = s->x + c->start * s->d;
        if (!ns_msg_host_little_endian() && !(scratch = malloc(c->n * s->d * 8)))
            return;   /* try again on the next pass */
        ns_msg_set_doubles(&m, rows, c->n * s->d, scratch);
        int rv = ns_wire_send(s->push, NULL, &m);
        free(scratch);
        if (rv == NS_ERR_STATE)
            return;   /* no connected worker can take more: poll for POLLOUT */
        if (rv != NS_OK) {
            ns_warn(S_MOD, "sending chunk %zu failed: %s", i, ns_strerror(rv));
            return;
        }
        c->attempt++;
        c->queued = 0;
        c->holder = 0;
        c->deadline = now + s_chunk_timeout(s, c->n);
        c->sent_at = now;
        s->qhead = (s->qhead + 1) % s->k;
        s->qlen--;
    }
}

static void s_start_batch(s_state_t *s, const double *x, double *logl, size_t n, size_t d)
{
    s->active = 1;
    s->batch++;
    s->x = x;
    s->logl = logl;
    s->n = n;
    s->d = d;
    s->t_start = ns_now();
    s->waiting_since = 0;
    s->chunked = 0;
    for (size_t i = 0; i < s->nworkers; i++)
        s->workers[i]->taken = 0;
    if (n == 0) {
        s_finish_batch(s, NS_OK);
        return;
    }
    if (d != (size_t)s->cfg->dim) {
        ns_error(S_MOD, "batch has dimension %zu but the model has %d", d, s->cfg->dim);
        s_finish_batch(s, NS_ERR_INVAL);
        return;
    }
    int rv = s_chunk_batch(s);
    if (rv == NS_ERR_NOMEM) {
        ns_error(S_MOD, "out of memory laying out a batch of %zu points", n);
        s_finish_batch(s, rv);
        return;
    }
    s_pump(s);
}

/* ---- control channel -------------------------------------------------- */

static void s_on_hello(s_state_t *s, zframe_t *routing, const ns_msg_t *m)
{
    char host[128], who[256];
    ns_str_copy(m->host, host, sizeof host);
    snprintf(who, sizeof who, "host=%s pid=%u", host, m->pid);
    s_worker_t *old = s_find_routing(s, routing);
    if (old) {   /* the same peer registering again: forget the old session */
        s_requeue_orphans(s, old->seq);
        s_remove_worker(s, old);
    }
    s_worker_t *w = calloc(1, sizeof *w);
    if (!w || (s->nworkers == s->capworkers && s->capworkers >= 65536)) {
        free(w);
        s_refuse(s, routing, who, "the coordinator cannot take more workers");
        return;
    }
    if (s->nworkers == s->capworkers) {
        size_t cap = s->capworkers ? 2 * s->capworkers : 16;
        s_worker_t **p = realloc(s->workers, cap * sizeof *p);
        if (!p) {
            free(w);
            s_refuse(s, routing, who, "the coordinator is out of memory");
            return;
        }
        s->workers = p;
        s->capworkers = cap;
    }
    w->seq = ++s->next_seq;
    snprintf(w->id, sizeof w->id, "w%llu", (unsigned long long)w->seq);
    w->routing = zframe_dup(routing);
    snprintf(w->host, sizeof w->host, "%s", host);
    w->pid = m->pid;
    w->state = W_WELCOMED;
    w->last_seen = w->welcomed_at = ns_now();
    s->workers[s->nworkers++] = w;

    ns_msg_t r;
    ns_msg_init(&r, NS_MSG_WELCOME);
    r.run = s->run;
    r.worker = ns_str_of(w->id);
    r.model_path = ns_str_of(s->cfg->model_path);
    r.model_args = ns_str_of(s->cfg->model_args);
    r.model_name = ns_str_of(s->cfg->model_name);
    r.model_hash = ns_str_of(s->cfg->model_hash);
    r.dim = (uint32_t)s->cfg->dim;
    r.work_port = s_port(s->push);
    r.results_port = s_port(s->pull);
    r.heartbeat_ms = (uint32_t)s->cfg->heartbeat_ms;
    r.liveness = (uint32_t)s->cfg->liveness;
    r.max_message = (uint64_t)s->cfg->max_message;
    r.canary_n = (uint32_t)s->cfg->canary_n;
    uint8_t *scratch = malloc(s->cfg->canary_n * (size_t)s->cfg->dim * 8 + 1);
    if (!scratch) {
        s_remove_worker(s, w);
        return;
    }
    ns_msg_set_doubles(&r, s->cfg->canary_x, s->cfg->canary_n * (size_t)s->cfg->dim, scratch);
    s_send_control(s, routing, &r);
    free(scratch);
    ns_debug(S_MOD, "worker hello id=%s %s", w->id, who);
}

static void s_on_ready(s_state_t *s, s_worker_t *w, const ns_msg_t *m)
{
    char who[256], reason[1024], text[512], name[256], hash[128];
    snprintf(who, sizeof who, "id=%s host=%s pid=%u", w->id, w->host, w->pid);
    if (w->state != W_WELCOMED || m->run != s->run)
        return;
    reason[0] = '\0';
    ns_str_copy(m->model_name, name, sizeof name);
    ns_str_copy(m->model_hash, hash, sizeof hash);
    if (m->status != 0) {
        snprintf(reason, sizeof reason, "the model failed to initialise on the worker: %s",
                 ns_str_copy(m->text, text, sizeof text));
    } else if (!ns_str_eq(m->model_name, s->cfg->model_name) || m->dim != (uint32_t)s->cfg->dim
               || !ns_str_eq(m->model_hash, s->cfg->model_hash)) {
        snprintf(reason, sizeof reason,
                 "another model: worker has name=%s dim=%u hash=%s, the run uses name=%s "
                 "dim=%d hash=%s; give the worker the same plugin build",
                 name, m->dim, hash, s->cfg->model_name, s->cfg->dim, s->cfg->model_hash);
    } else if (m->data_len != s->cfg->canary_n * 8) {
        snprintf(reason, sizeof reason, "canary check failed: %zu values for %zu points",
                 m->data_len / 8, s->cfg->canary_n);
    } else {
        double got[64];
        ns_msg_get_doubles(m, got, s->cfg->canary_n);
        for (size_t i = 0; i < s->cfg->canary_n; i++) {
            if (memcmp(&got[i], &s->cfg->canary_logl[i], sizeof(double)) != 0) {
                snprintf(reason, sizeof reason,
                         "canary check failed: point %zu gives logL=%.17g on the worker but "
                         "%.17g on the coordinator (other data, build or maths library)",
                         i, got[i], s->cfg->canary_logl[i]);
                break;
            }
        }
    }
    if (reason[0]) {
        s_refuse(s, w->routing, who, reason);
        s_remove_worker(s, w);
        return;
    }
    w->state = W_LIVE;
    s->stats.workers_seen++;
    ns_msg_t r;
    ns_msg_init(&r, NS_MSG_ACCEPT);
    r.run = s->run;
    s_send_control(s, w->routing, &r);
    ns_info(S_MOD, "worker joined %s live=%zu", who, s_live(s));
}

static void s_on_bye(s_state_t *s, s_worker_t *w, const ns_msg_t *m)
{
    char reason[256];
    size_t own = s_requeue_orphans(s, w->seq);
    s->stats.handed_back += own;
    if (w->state == W_LIVE)
        s->stats.workers_left++;
    ns_msg_t r;
    ns_msg_init(&r, NS_MSG_STOP);
    r.text = ns_str_of("goodbye");
    s_send_control(s, w->routing, &r);
    ns_info(S_MOD, "worker left id=%s host=%s pid=%u reason=\"%s\" handed_back=%zu",
            w->id, w->host, w->pid, ns_str_copy(m->text, reason, sizeof reason), own);
    s_remove_worker(s, w);
    s_pump(s);
}

static void s_on_control(s_state_t *s)
{
    zmsg_t *msg = zmsg_recv(s->router);
    if (!msg)
        return;
    zframe_t *routing = zmsg_pop(msg);
    zframe_t *body = zmsg_pop(msg);
    if (!routing || !body || zmsg_size(msg) != 0) {
        s->stats.malformed_dropped++;
        goto done;
    }
    ns_msg_t m;
    int rv = ns_msg_decode(zframe_data(body), zframe_size(body), &m);
    if (rv == NS_MSG_OTHER_VERSION && m.type == NS_MSG_HELLO) {
        char reason[256];
        snprintf(reason, sizeof reason,
                 "protocol version %u is not the coordinator's version %u; use a nessai-worker "
                 "from the same release as the coordinator",
                 m.version, NS_FARM_PROTOCOL_VERSION);
        s_refuse(s, routing, "(other version)", reason);
        goto done;
    }
    if (rv != NS_OK) {
        s->stats.malformed_dropped++;
        ns_debug(S_MOD, "dropped a malformed control message (%zu bytes)", zframe_size(body));
        goto done;
    }
    if (m.type == NS_MSG_HELLO) {
        s_on_hello(s, routing, &m);
        goto done;
    }
    s_worker_t *w = s_find_routing(s, routing);
    if (!w)
        goto done;   /* unknown peer: it re-registers once our silence tells it to */
    w->last_seen = ns_now();
    switch (m.type) {
    case NS_MSG_READY: s_on_ready(s, w, &m); break;
    case NS_MSG_HEARTBEAT: break;
    case NS_MSG_BYE: s_on_bye(s, w, &m); break;
    default:
        s->stats.malformed_dropped++;   /* a coordinator-only type from a worker */
        break;
    }
done:
    zframe_destroy(&routing);
    zframe_destroy(&body);
    zmsg_destroy(&msg);
}

/* ---- results channel --------------------------------------------------- */

static void s_on_result(s_state_t *s, const ns_msg_t *m)
{
    s_worker_t *w = s_find_id(s, m->worker);
    if (w)
        w->last_seen = ns_now();
    if (w && w->taken > 0 && m->run == s->run && m->batch == s->batch)
        w->taken--;
    if (m->run != s->run || !s->active || !s->chunked || m->batch != s->batch) {
        s->stats.stale_results++;
        if (m->status == 0)
            s->stats.redone_evaluations += m->n;
        return;
    }
    if (m->chunk >= s->k || m->n != s->chunks[m->chunk].n || m->attempt > s->chunks[m->chunk].attempt) {
        s->stats.malformed_dropped++;
        return;
    }
    s_chunk_t *c = &s->chunks[m->chunk];
    if (c->done) {
        s->stats.duplicate_results++;
        if (m->status == 0)
            s->stats.redone_evaluations += m->n;
        return;
    }
    if (m->status != 0) {
        char err[512];
        c->failures++;
        s->stats.failed_chunks++;
        ns_str_copy(m->text, err, sizeof err);
        if (c->failures > (uint32_t)s->cfg->max_retries) {
            ns_error(S_MOD, "chunk %u of batch %llu (points %zu..%zu) failed %u times, last on "
                     "worker %s: %s; stopping (the model cannot evaluate these points)",
                     m->chunk, (unsigned long long)s->batch, c->start, c->start + c->n - 1,
                     c->failures, w ? w->id : "?", err);
            s_finish_batch(s, NS_ERR_FARM);
            return;
        }
        ns_warn(S_MOD, "chunk %u of batch %llu failed on worker %s: %s; retrying (%u of %ld)",
                m->chunk, (unsigned long long)s->batch, w ? w->id : "?", err, c->failures,
                s->cfg->max_retries);
        if (m->attempt == c->attempt)
            s_enqueue(s, m->chunk);
        s_pump(s);
        return;
    }
    /* Place by index: the values are the worker's bits, unchanged. */
    ns_msg_get_doubles(m, s->logl + c->start, c->n);
    c->done = 1;
    c->deadline = 0;
    s->remaining--;
    s->stats.worker_cpu_s += m->cpu_s;
    s->stats.worker_eval_wall_s += m->wall_s;
    if (m->wall_s > 0 && isfinite(m->wall_s)) {
        double spp = m->wall_s / (double)m->n;
        s->sec_per_point = s->sec_per_point > 0 ? 0.8 * s->sec_per_point + 0.2 * spp : spp;
    }
    if (s->remaining == 0)
        s_finish_batch(s, NS_OK);
}

static void s_on_take(s_state_t *s, const ns_msg_t *m)
{
    s_worker_t *w = s_find_id(s, m->worker);
    if (w)
        w->last_seen = ns_now();
    if (m->run != s->run || !s->active || !s->chunked || m->batch != s->batch) {
        s->stats.stale_results++;
        return;
    }
    if (m->chunk >= s->k) {
        s->stats.malformed_dropped++;
        return;
    }
    s_chunk_t *c = &s->chunks[m->chunk];
    if (!w || c->done || c->queued || m->attempt != c->attempt)
        return;
    c->holder = w->seq;
    w->taken++;
    c->deadline = ns_now() + s_chunk_timeout(s, c->n);
}

static void s_on_results(s_state_t *s)
{
    zframe_t *f = zframe_recv(s->pull);
    if (!f)
        return;
    ns_msg_t m;
    if (zframe_more(f) || ns_msg_decode(zframe_data(f), zframe_size(f), &m) != NS_OK
        || (m.type != NS_MSG_TAKE && m.type != NS_MSG_RESULT)) {
        s->stats.malformed_dropped++;
        ns_debug(S_MOD, "dropped a malformed results message (%zu bytes)", zframe_size(f));
        /* drain any further parts of a multi-part message */
        while (zframe_more(f)) {
            zframe_destroy(&f);
            f = zframe_recv(s->pull);
            if (!f)
                return;
        }
        zframe_destroy(&f);
        return;
    }
    if (m.type == NS_MSG_TAKE)
        s_on_take(s, &m);
    else
        s_on_result(s, &m);
    zframe_destroy(&f);
    s_pump(s);
}

/* ---- timers --------------------------------------------------------- */

/* Log local workers that died. Peeks with WNOWAIT: reaping belongs to
 * the pool (pool.c), which must never signal a recycled pid. */
static void s_watch_children(s_state_t *s)
{
    for (size_t i = 0; i < s->npids;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = waitid(P_PID, (id_t)s->pids[i], &si, WEXITED | WNOHANG | WNOWAIT);
        if (r == 0 && si.si_pid == s->pids[i]) {
            if (si.si_code == CLD_EXITED && si.si_status != 0)
                ns_warn(S_MOD, "local worker pid=%d exited with status %d", s->pids[i],
                        si.si_status);
            else if (si.si_code != CLD_EXITED)
                ns_warn(S_MOD, "local worker pid=%d was killed by signal %d", s->pids[i],
                        si.si_status);
            s->pids[i] = s->pids[--s->npids];
            continue;
        }
        if (r < 0 && errno == ECHILD) {   /* already reaped by the pool */
            s->pids[i] = s->pids[--s->npids];
            continue;
        }
        i++;
    }
}

/* A chunk nobody took while a worker sits idle was probably lost in the
 * socket buffer of a worker that went away (or waits behind a busy one):
 * send it again; the first valid result wins either way. */
static void s_check_claims(s_state_t *s, double now)
{
    if (!s->active || !s->chunked)
        return;
    int idle = 0;
    for (size_t i = 0; i < s->nworkers && !idle; i++)
        idle = s->workers[i]->state == W_LIVE && s->workers[i]->taken == 0;
    for (size_t i = 0; idle && i < s->k; i++) {
        s_chunk_t *c = &s->chunks[i];
        double claim = 0.2 + 2.0 * (double)c->n * s->sec_per_point;
        if (c->done || c->queued || c->attempt == 0 || c->holder != 0 || now - c->sent_at < claim)
            continue;
        ns_debug(S_MOD, "chunk %zu of batch %llu not taken after %.2f s while a worker is idle; "
                 "re-sending", i, (unsigned long long)s->batch, now - c->sent_at);
        s_enqueue(s, i);
    }
}

static void s_tick(s_state_t *s, double now)
{
    double period = s->cfg->heartbeat_ms / 1000.0;
    double silence = period * s->cfg->liveness;
    ns_msg_t hb;
    ns_msg_init(&hb, NS_MSG_HEARTBEAT);
    hb.run = s->run;
    for (size_t i = 0; i < s->nworkers;) {
        s_worker_t *w = s->workers[i];
        if (w->state == W_LIVE && now - w->last_seen > silence) {
            size_t own = s_requeue_orphans(s, w->seq);
            s->stats.workers_lost++;
            ns_warn(S_MOD, "worker lost id=%s host=%s pid=%u silent=%.1fs resent=%zu live=%zu",
                    w->id, w->host, w->pid, now - w->last_seen, own, s_live(s) - 1);
            s_remove_worker(s, w);
            continue;
        }
        if (w->state == W_WELCOMED && now - w->welcomed_at > S_WELCOME_TIMEOUT_S) {
            ns_warn(S_MOD, "worker id=%s host=%s pid=%u never answered the welcome; dropped",
                    w->id, w->host, w->pid);
            s_remove_worker(s, w);
            continue;
        }
        s_send_control(s, w->routing, &hb);
        i++;
    }
    if (s->active && s->chunked) {
        for (size_t i = 0; i < s->k; i++) {
            s_chunk_t *c = &s->chunks[i];
            if (c->done || c->queued || c->deadline == 0 || now < c->deadline)
                continue;
            s->stats.deadline_misses++;
            ns_warn(S_MOD, "chunk %zu of batch %llu missed its deadline (attempt %u, %.1f s); "
                    "re-sending", i, (unsigned long long)s->batch, c->attempt,
                    s_chunk_timeout(s, c->n));
            s_enqueue(s, i);
        }
    }
    s_watch_children(s);
}

/* While a batch waits: no workers means log every few seconds, then fail. */
static void s_check_waiting(s_state_t *s, double now)
{
    if (!s->active)
        return;
    if (s_live(s) > 0) {
        s->waiting_since = 0;
        if (!s->chunked) {
            int rv = s_chunk_batch(s);
            if (rv != NS_OK) {
                s_finish_batch(s, rv);
                return;
            }
        }
        return;
    }
    if (s->waiting_since == 0) {
        s->waiting_since = now;
        s->last_wait_log = now;
        ns_info(S_MOD, "waiting for workers: none connected; start some with "
                "nessai-worker --connect %s", s->cfg->endpoint);
        return;
    }
    if (now - s->waiting_since > s->cfg->worker_timeout) {
        ns_error(S_MOD, "no workers for %.0f s (--worker-timeout); start workers with "
                 "nessai-worker --connect %s, or raise --worker-timeout",
                 s->cfg->worker_timeout, s->cfg->endpoint);
        s_finish_batch(s, NS_ERR_FARM);
        return;
    }
    if (now - s->last_wait_log >= S_WAIT_LOG_S) {
        s->last_wait_log = now;
        ns_info(S_MOD, "still waiting for workers (%.0f s of %.0f s); nessai-worker --connect %s",
                now - s->waiting_since, s->cfg->worker_timeout, s->cfg->endpoint);
    }
}

static void s_broadcast_stop(s_state_t *s, const char *reason)
{
    ns_msg_t m;
    ns_msg_init(&m, NS_MSG_STOP);
    m.text = ns_str_of(reason);
    for (size_t i = 0; i < s->nworkers; i++)
        s_send_control(s, s->workers[i]->routing, &m);
}

/* ---- the caller's pipe --------------------------------------------------- */

static void s_on_pipe(s_state_t *s)
{
    zmsg_t *msg = zmsg_recv(s->pipe);
    if (!msg) {
        s->terminated = 1;
        return;
    }
    char *cmd = zmsg_popstr(msg);
    if (!cmd || streq(cmd, "$TERM")) {
        s->terminated = 1;
    } else if (streq(cmd, "EVAL")) {
        zframe_t *f = zmsg_pop(msg);
        /* x, logl, n, d travel as one frame of a packed struct */
        struct { const double *x; double *logl; size_t n, d; } a;
        if (f && zframe_size(f) == sizeof a) {
            memcpy(&a, zframe_data(f), sizeof a);
            s_start_batch(s, a.x, a.logl, a.n, a.d);
        } else
            zsock_send(s->pipe, "i", NS_ERR_INVAL);
        zframe_destroy(&f);
    } else if (streq(cmd, "STATS")) {
        s->stats.workers_live = s_live(s);
        zsock_send(s->pipe, "b", &s->stats, sizeof s->stats);
    } else if (streq(cmd, "STOP")) {
        s_broadcast_stop(s, "the run is over");
        zsock_send(s->pipe, "i", NS_OK);
    } else if (streq(cmd, "WATCH")) {
        char *pid = zmsg_popstr(msg);
        if (pid && s->npids < S_MAX_LOCAL)
            s->pids[s->npids++] = atoi(pid);
        free(pid);
        zsock_send(s->pipe, "i", NS_OK);
    }
    free(cmd);
    zmsg_destroy(&msg);
}

static int s_bind(s_state_t *s, char *err, size_t errlen)
{
    ns_broker_config_t *cfg = s->cfg;
    const char *ep = cfg->bind;
    const char *colon = ep ? strrchr(ep, ':') : NULL;
    if (!ep || strncmp(ep, "tcp://", 6) != 0 || !colon || colon < ep + 6) {
        snprintf(err, errlen, "--bind %s: give a tcp:// endpoint such as tcp://*:5555",
                 ep ? ep : "(none)");
        return NS_ERR_INVAL;
    }
    s->router = zsock_new(ZMQ_ROUTER);
    s->push = zsock_new(ZMQ_PUSH);
    s->pull = zsock_new(ZMQ_PULL);
    if (!s->router || !s->push || !s->pull) {
        snprintf(err, errlen, "cannot create ZeroMQ sockets");
        return NS_ERR_IO;
    }
    ns_wire_tune(s->router, NS_FARM_CONTROL_MAX, 0);
    zsock_set_router_handover(s->router, 1);
    ns_wire_tune(s->push, cfg->max_message, 0);
    zsock_set_sndhwm(s->push, 1);
    /* results: n doubles per message, never more than the points we send */
    ns_wire_tune(s->pull, cfg->max_message, 0);
    /* libzmq's own wildcard (not CZMQ's sequential range): the kernel
     * picks a free port, so farms started side by side do not race. */
    if (zmq_bind(zsock_resolve(s->router), ep) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s; is the address or port in use?", ep,
                 zmq_strerror(zmq_errno()));
        return NS_ERR_IO;
    }
    char data_ep[300];
    snprintf(data_ep, sizeof data_ep, "%.*s:*", (int)(colon - ep), ep);
    if (zmq_bind(zsock_resolve(s->push), data_ep) != 0
        || zmq_bind(zsock_resolve(s->pull), data_ep) != 0) {
        snprintf(err, errlen, "cannot bind data ports on %.200s: %s", data_ep,
                 zmq_strerror(zmq_errno()));
        return NS_ERR_IO;
    }
    /* The endpoint workers connect to: wildcard hosts become this host's name. */
    unsigned port = s_port(s->router);
    const char *host = ep + 6;
    int hl = (int)(colon - host);
    if (hl == 1 && host[0] == '*') {
        char name[200];
        if (gethostname(name, sizeof name) != 0)
            snprintf(name, sizeof name, "localhost");
        name[sizeof name - 1] = '\0';
        snprintf(cfg->endpoint, sizeof cfg->endpoint, "tcp://%s:%u", name, port);
    } else
        snprintf(cfg->endpoint, sizeof cfg->endpoint, "tcp://%.*s:%u", hl, host, port);
    return NS_OK;
}

static void s_broker_actor(zsock_t *pipe, void *args)
{
    ns_broker_t *owner = args;
    s_state_t st;
    memset(&st, 0, sizeof st);
    s_state_t *s = &st;
    s->pipe = pipe;
    s->owner = owner;
    s->cfg = owner->cfg;
    zuuid_t *uuid = zuuid_new();   /* random bytes for the run id */
    if (uuid)
        memcpy(&s->run, zuuid_data(uuid), sizeof s->run);
    zuuid_destroy(&uuid);
    s->run ^= (uint64_t)getpid() << 16 ^ (uint64_t)(ns_now() * 1e9);
    if (s->run == 0)
        s->run = 1;
    if (s_bind(s, owner->err, sizeof owner->err) != NS_OK) {
        zsock_destroy(&s->router);
        zsock_destroy(&s->push);
        zsock_destroy(&s->pull);
        zsock_signal(pipe, 1);
        return;
    }
    zsock_signal(pipe, 0);
    s->next_tick = ns_now();
    while (!s->terminated) {
        zmq_pollitem_t items[4] = {
            {zsock_resolve(pipe), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(s->router), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(s->pull), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(s->push), 0, ZMQ_POLLOUT, 0},
        };
        int nitems = (s->active && s->chunked && s->qlen > 0) ? 4 : 3;
        double now = ns_now();
        long timeout = (long)((s->next_tick - now) * 1000.0) + 1;
        if (timeout < 0)
            timeout = 0;
        if (s->active && timeout > S_MAX_POLL_MS)
            timeout = S_MAX_POLL_MS;
        int rc = zmq_poll(items, nitems, timeout);
        if (rc < 0 && zmq_errno() != EINTR)
            break;
        if (rc > 0) {
            if (items[0].revents & ZMQ_POLLIN)
                s_on_pipe(s);
            if (items[1].revents & ZMQ_POLLIN)
                s_on_control(s);
            if (items[2].revents & ZMQ_POLLIN)
                s_on_results(s);
            if (nitems == 4 && (items[3].revents & ZMQ_POLLOUT))
                s_pump(s);
        }
        now = ns_now();
        if (now >= s->next_tick) {
            s->next_tick = now + s->cfg->heartbeat_ms / 1000.0;
            s_tick(s, now);
            s_pump(s);
        }
        if (s->active) {
            if (ns_interrupt_pending()) {
                ns_warn(S_MOD, "interrupted while evaluating batch %llu",
                        (unsigned long long)s->batch);
                s_finish_batch(s, NS_ERR_INTERRUPTED);
            } else {
                s_check_waiting(s, now);
                s_check_claims(s, now);
            }
            if (s->active && s->chunked && s->qlen > 0)
                s_pump(s);
        }
    }
    if (s->active)
        s_finish_batch(s, NS_ERR_INTERRUPTED);
    while (s->nworkers > 0)
        s_remove_worker(s, s->workers[0]);
    free(s->workers);
    zsock_destroy(&s->router);
    zsock_destroy(&s->push);
    zsock_destroy(&s->pull);
}

ns_broker_t *ns_broker_new(ns_broker_config_t *cfg, char *err, size_t errlen)
{
    ns_broker_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->actor = zactor_new(s_broker_actor, self);
    /* zactor_new waits for the signal; a failed bind leaves the reason. */
    if (!self->actor || self->err[0]) {
        snprintf(err, errlen, "%s", self->err[0] ? self->err : "cannot start the farm thread");
        zactor_destroy(&self->actor);
        free(self);
        return NULL;
    }
    return self;
}

void ns_broker_destroy(ns_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zactor_destroy(&(*self_p)->actor);
    free(*self_p);
    *self_p = NULL;
}

int ns_broker_evaluate(ns_broker_t *self, const double *x, size_t n, size_t d, double *logl)
{
    struct { const double *x; double *logl; size_t n, d; } a = {x, logl, n, d};
    if (zsock_send(self->actor, "sb", "EVAL", &a, sizeof a) != 0)
        return NS_ERR_FARM;
    int rv = NS_ERR_FARM;
    if (zsock_recv(self->actor, "i", &rv) != 0)
        return NS_ERR_FARM;
    return rv;
}

void ns_broker_stats(ns_broker_t *self, ns_farm_stats_t *out)
{
    memset(out, 0, sizeof *out);
    zsock_send(self->actor, "s", "STATS");
    zframe_t *f = zframe_recv(self->actor);
    if (f && zframe_size(f) == sizeof *out)
        memcpy(out, zframe_data(f), sizeof *out);
    zframe_destroy(&f);
}

void ns_broker_stop(ns_broker_t *self)
{
    int rv;
    zsock_send(self->actor, "s", "STOP");
    zsock_recv(self->actor, "i", &rv);
}

void ns_broker_watch_pid(ns_broker_t *self, int pid)
{
    int rv;
    zsock_send(self->actor, "si", "WATCH", pid);
    zsock_recv(self->actor, "i", &rv);
}
