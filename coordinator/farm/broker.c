/* broker.c - the farm's background thread: sockets, worker registry,
 * heartbeats, the caller's pipe. Batches are in broker_batch.c. */
#include "broker_int.h"
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
#define S_WELCOME_TIMEOUT_S 60.0  /* welcomed but no READY: dropped */
#define S_MAX_POLL_MS 200         /* upper bound on one poll while busy */

struct ns_broker {
    zactor_t *actor;              /* the thread */
    ns_broker_config_t *cfg;      /* borrowed */
    char err[256];                /* bind failure reason */
};

/* Port of a bound tcp socket, from its last endpoint. */
static unsigned s_port(zsock_t *sock)
{
    char *ep = zsock_last_endpoint(sock);
    const char *colon = ep ? strrchr(ep, ':') : NULL;
    unsigned port = colon ? (unsigned)atoi(colon + 1) : 0;
    zstr_free(&ep);
    return port;
}

size_t ns_broker_live_count(const ns_bstate_t *s)
{
    size_t live = 0;
    for (size_t i = 0; i < s->nworkers; i++)
        live += s->workers[i]->state == W_LIVE;
    return live;
}

static ns_bworker_t *s_find_routing(ns_bstate_t *s, zframe_t *routing)
{
    for (size_t i = 0; i < s->nworkers; i++)
        if (zframe_eq(s->workers[i]->routing, routing))
            return s->workers[i];
    return NULL;
}

ns_bworker_t *ns_broker_find_id(ns_bstate_t *s, ns_str_t id)
{
    for (size_t i = 0; i < s->nworkers; i++)
        if (ns_str_eq(id, s->workers[i]->id))
            return s->workers[i];
    return NULL;
}

static void s_send_control(ns_bstate_t *s, zframe_t *routing, const ns_msg_t *m)
{
    int rv = ns_wire_send(s->router, routing, m);
    if (rv != NS_OK)
        ns_debug(S_MOD, "could not send %s: %s", ns_msg_type_name(m->type), ns_strerror(rv));
}

static void s_refuse(ns_bstate_t *s, zframe_t *routing, const char *who, const char *reason)
{
    ns_msg_t m;
    ns_msg_init(&m, NS_MSG_REFUSE);
    m.text = ns_str_of(reason);
    s_send_control(s, routing, &m);
    s->stats.refused++;
    ns_warn(S_MOD, "refused worker %s reason=\"%s\"", who, reason);
}

static void s_remove_worker(ns_bstate_t *s, ns_bworker_t *w)
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

/* ---- control channel -------------------------------------------------- */

static void s_on_hello(ns_bstate_t *s, zframe_t *routing, const ns_msg_t *m)
{
    char host[128], who[256];
    ns_str_copy(m->host, host, sizeof host);
    snprintf(who, sizeof who, "host=%s pid=%u", host, m->pid);
    ns_bworker_t *old = s_find_routing(s, routing);
    if (old) {   /* the same peer registering again: forget the old session */
        ns_batch_requeue_orphans(s, old->seq);
        s_remove_worker(s, old);
    }
    ns_bworker_t *w = calloc(1, sizeof *w);
    if (!w || (s->nworkers == s->capworkers && s->capworkers >= 65536)) {
        free(w);
        s_refuse(s, routing, who, "the coordinator cannot take more workers");
        return;
    }
    if (s->nworkers == s->capworkers) {
        size_t cap = s->capworkers ? 2 * s->capworkers : 16;
        ns_bworker_t **p = realloc(s->workers, cap * sizeof *p);
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

static void s_on_ready(ns_bstate_t *s, ns_bworker_t *w, const ns_msg_t *m)
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
    ns_info(S_MOD, "worker joined %s live=%zu", who, ns_broker_live_count(s));
}

static void s_on_bye(ns_bstate_t *s, ns_bworker_t *w, const ns_msg_t *m)
{
    char reason[256];
    size_t own = ns_batch_requeue_orphans(s, w->seq);
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
    ns_batch_pump(s);
}

static void s_on_control(ns_bstate_t *s)
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
    ns_bworker_t *w = s_find_routing(s, routing);
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

/* ---- timers --------------------------------------------------------- */

/* Log local workers that died. Peeks with WNOWAIT: reaping belongs to
 * the pool (pool.c), which must never signal a recycled pid. */
static void s_watch_children(ns_bstate_t *s)
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

static void s_tick(ns_bstate_t *s, double now)
{
    double period = s->cfg->heartbeat_ms / 1000.0;
    double silence = period * s->cfg->liveness;
    ns_msg_t hb;
    ns_msg_init(&hb, NS_MSG_HEARTBEAT);
    hb.run = s->run;
    for (size_t i = 0; i < s->nworkers;) {
        ns_bworker_t *w = s->workers[i];
        if (w->state == W_LIVE && now - w->last_seen > silence) {
            size_t own = ns_batch_requeue_orphans(s, w->seq);
            s->stats.workers_lost++;
            ns_warn(S_MOD, "worker lost id=%s host=%s pid=%u silent=%.1fs resent=%zu live=%zu",
                    w->id, w->host, w->pid, now - w->last_seen, own, ns_broker_live_count(s) - 1);
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
    s_watch_children(s);
}

static void s_broadcast_stop(ns_bstate_t *s, const char *reason)
{
    ns_msg_t m;
    ns_msg_init(&m, NS_MSG_STOP);
    m.text = ns_str_of(reason);
    for (size_t i = 0; i < s->nworkers; i++)
        s_send_control(s, s->workers[i]->routing, &m);
}

/* ---- the caller's pipe --------------------------------------------------- */

static void s_on_pipe(ns_bstate_t *s)
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
            ns_batch_start(s, a.x, a.logl, a.n, a.d);
        } else
            zsock_send(s->pipe, "i", NS_ERR_INVAL);
        zframe_destroy(&f);
    } else if (streq(cmd, "STATS")) {
        s->stats.workers_live = ns_broker_live_count(s);
        zsock_send(s->pipe, "b", &s->stats, sizeof s->stats);
    } else if (streq(cmd, "STOP")) {
        s_broadcast_stop(s, "the run is over");
        zsock_send(s->pipe, "i", NS_OK);
    } else if (streq(cmd, "WATCH")) {
        char *pid = zmsg_popstr(msg);
        if (pid && s->npids < NS_BROKER_MAX_LOCAL)
            s->pids[s->npids++] = atoi(pid);
        free(pid);
        zsock_send(s->pipe, "i", NS_OK);
    }
    free(cmd);
    zmsg_destroy(&msg);
}

static int s_bind(ns_bstate_t *s, char *err, size_t errlen)
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
    ns_bstate_t st;
    memset(&st, 0, sizeof st);
    ns_bstate_t *s = &st;
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
                ns_batch_on_results(s);
            if (nitems == 4 && (items[3].revents & ZMQ_POLLOUT))
                ns_batch_pump(s);
        }
        now = ns_now();
        if (now >= s->next_tick) {
            s->next_tick = now + s->cfg->heartbeat_ms / 1000.0;
            s_tick(s, now);
            ns_batch_pump(s);
        }
        if (s->active) {
            if (ns_interrupt_pending()) {
                ns_warn(S_MOD, "interrupted while evaluating batch %llu",
                        (unsigned long long)s->batch);
                ns_batch_finish(s, NS_ERR_INTERRUPTED);
            } else
                ns_batch_check(s, now);
            if (s->active && s->chunked && s->qlen > 0)
                ns_batch_pump(s);
        }
    }
    if (s->active)
        ns_batch_finish(s, NS_ERR_INTERRUPTED);
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

/* One reply from the broker thread. A signal interrupts the receive
 * (EINTR) but not the broker: it sees the interrupt flag within
 * S_MAX_POLL_MS and ends the batch with NS_ERR_INTERRUPTED, so waiting
 * again always gets the one reply each command has, and the caller's
 * buffers are never in use after we return. */
static int s_recv_int(ns_broker_t *self, int *rv)
{
    for (;;) {
        if (zsock_recv(self->actor, "i", rv) == 0)
            return NS_OK;
        if (zmq_errno() != EINTR)
            return NS_ERR_FARM;
    }
}

int ns_broker_evaluate(ns_broker_t *self, const double *x, size_t n, size_t d, double *logl)
{
    struct { const double *x; double *logl; size_t n, d; } a = {x, logl, n, d};
    if (zsock_send(self->actor, "sb", "EVAL", &a, sizeof a) != 0)
        return NS_ERR_FARM;
    int rv = NS_ERR_FARM;
    if (s_recv_int(self, &rv) != NS_OK)
        return NS_ERR_FARM;
    return rv;
}

void ns_broker_stats(ns_broker_t *self, ns_farm_stats_t *out)
{
    memset(out, 0, sizeof *out);
    zsock_send(self->actor, "s", "STATS");
    zframe_t *f;
    while (!(f = zframe_recv(self->actor)) && zmq_errno() == EINTR) {
    }
    if (f && zframe_size(f) == sizeof *out)
        memcpy(out, zframe_data(f), sizeof *out);
    zframe_destroy(&f);
}

void ns_broker_stop(ns_broker_t *self)
{
    int rv;
    zsock_send(self->actor, "s", "STOP");
    s_recv_int(self, &rv);
}

void ns_broker_watch_pid(ns_broker_t *self, int pid)
{
    int rv;
    zsock_send(self->actor, "si", "WATCH", pid);
    s_recv_int(self, &rv);
}
