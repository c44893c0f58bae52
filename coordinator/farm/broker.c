/* broker.c - the farm's background thread: sockets, the poll loop, the
 * caller's pipe. The worker registry is broker_registry.c, batches are
 * broker_batch.c (broker_int.h). */
#include "broker_int.h"
#include "nessai/wire.h"
#include "nessai/keys.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"

#include <errno.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MOD "farm"
#define S_MAX_POLL_MS 200         /* upper bound on one poll while busy */
#define S_STRAGGLER_POLL_MS 20    /* ... while chunks of it are done and others held */

/* zauth binds one process-wide ZAP endpoint: one CURVE farm at a time. */
static atomic_int s_auth_in_use = 0;

struct ns_broker {
    zactor_t *actor;              /* the thread */
    ns_broker_config_t *cfg;      /* borrowed */
    char err[256];                /* bind failure reason */
    int inflight;                 /* an EVAL's reply is still to be read (ns_broker_begin) */
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

/* ---- the caller's pipe ------------------------------------------------------
 *
 * One command per message, written with zsock_send: the first frame names
 * it, the others are its arguments in this order ('p' a pointer, '8' a
 * uint64 and 'i' an int; CZMQ sends numbers as decimal text):
 *
 *   EVAL   x:p logl:p n:8 d:8   evaluate the n x d points at x into logl
 *                               (the caller's buffers: it blocks until the
 *                               reply, which comes when the batch is done)
 *   STATS  out:p                copy the counters into *out (ns_farm_stats_t)
 *   STOP                        send STOP to every known worker
 *   WATCH  pid:i                log the exit of this local worker process
 *
 * Every command gets exactly one reply, an 'i' frame: NS_OK or an NS_ERR_*
 * code. A command the broker does not know, or one with other frames than
 * these, gets NS_ERR_INVAL, so a caller never waits for nothing. $TERM
 * (zactor_destroy) ends the thread without a reply.
 */

/* Take exactly the frames of picture ('p', '8', 'i' as above) from msg,
 * storing through the pointers that follow. NS_ERR_INVAL if a frame is
 * missing, malformed or left over. */
static int s_args(zmsg_t *msg, const char *picture, ...)
{
    va_list ap;
    va_start(ap, picture);
    int rv = zmsg_size(msg) == strlen(picture) ? NS_OK : NS_ERR_INVAL;
    for (const char *c = picture; rv == NS_OK && *c; c++) {
        zframe_t *f = zmsg_pop(msg);
        size_t len = zframe_size(f);
        char text[32], *end = NULL;
        if (*c != 'p' && len > 0 && len < sizeof text) {
            memcpy(text, zframe_data(f), len);
            text[len] = '\0';
        } else
            text[0] = '\0';
        errno = 0;
        if (*c == 'p') {
            void **out = va_arg(ap, void **);
            if (len == sizeof *out)
                memcpy(out, zframe_data(f), sizeof *out);
            else
                rv = NS_ERR_INVAL;
        } else if (*c == '8') {
            uint64_t *out = va_arg(ap, uint64_t *);
            unsigned long long v = strtoull(text, &end, 10);
            if (!text[0] || text[0] == '-' || *end || errno)
                rv = NS_ERR_INVAL;
            else
                *out = v;
        } else {
            int *out = va_arg(ap, int *);
            long v = strtol(text, &end, 10);
            if (!text[0] || *end || errno || v < INT_MIN || v > INT_MAX)
                rv = NS_ERR_INVAL;
            else
                *out = (int)v;
        }
        zframe_destroy(&f);
    }
    va_end(ap);
    return rv;
}

/* EVAL: answered by ns_batch_finish when the batch ends, at once if the
 * command is malformed. */
static void s_cmd_eval(ns_bstate_t *s, zmsg_t *args)
{
    void *x = NULL, *logl = NULL;
    uint64_t n = 0, d = 0;
    int rv = s_args(args, "pp88", &x, &logl, &n, &d);
    if (rv == NS_OK && (n > SIZE_MAX || d > SIZE_MAX || (n > 0 && (!x || !logl))))
        rv = NS_ERR_INVAL;
    if (rv == NS_OK && s->active)
        rv = NS_ERR_STATE;   /* one batch at a time */
    if (rv != NS_OK) {
        zsock_send(s->pipe, "i", rv);
        return;
    }
    ns_batch_start(s, x, logl, (size_t)n, (size_t)d);
}

static void s_on_pipe(ns_bstate_t *s)
{
    zmsg_t *msg = zmsg_recv(s->pipe);
    if (!msg) {
        s->terminated = 1;
        return;
    }
    char *cmd = zmsg_popstr(msg);
    void *out = NULL;
    int pid = 0;
    if (cmd && streq(cmd, "$TERM")) {
        s->terminated = 1;
    } else if (cmd && streq(cmd, "EVAL")) {
        s_cmd_eval(s, msg);
    } else if (cmd && streq(cmd, "STATS")) {
        int rv = s_args(msg, "p", &out);
        if (rv == NS_OK && out) {
            s->stats.workers_live = ns_reg_live_count(s);
            memcpy(out, &s->stats, sizeof s->stats);
        }
        zsock_send(s->pipe, "i", rv == NS_OK && !out ? NS_ERR_INVAL : rv);
    } else if (cmd && streq(cmd, "STOP")) {
        int rv = s_args(msg, "");
        if (rv == NS_OK) {
            s->stopping = 1;   /* the pool is the caller's again */
            ns_reg_broadcast_stop(s, "the run is over");
        }
        zsock_send(s->pipe, "i", rv);
    } else if (cmd && streq(cmd, "WATCH")) {
        int rv = s_args(msg, "i", &pid);
        if (rv == NS_OK)
            ns_reg_watch_pid(s, pid);
        zsock_send(s->pipe, "i", rv);
    } else {
        ns_warn(S_MOD, "the farm thread got an unknown command \"%.40s\"", cmd ? cmd : "");
        zsock_send(s->pipe, "i", NS_ERR_INVAL);
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
    s->data = zsock_new(ZMQ_ROUTER);
    if (!s->router || !s->data) {
        snprintf(err, errlen, "cannot create ZeroMQ sockets");
        return NS_ERR_IO;
    }
    if (cfg->curve_cert) {
        /* docs/protocol.md §8: the ZAP handler accepts the clients whose
         * public key is in curve_allow; every socket is a CURVE server. */
        int expected = 0;
        if (!atomic_compare_exchange_strong(&s_auth_in_use, &expected, 1)) {
            snprintf(err, errlen, "another farm with CURVE is open in this process");
            return NS_ERR_STATE;
        }
        s->auth_held = 1;
        s->auth = zactor_new(zauth, NULL);
        if (!s->auth || zstr_sendx(s->auth, "CURVE", cfg->curve_allow, NULL) != 0
            || zsock_wait(s->auth) != 0) {
            snprintf(err, errlen, "cannot start the farm's authentication handler (one farm "
                     "with CURVE per process)");
            return NS_ERR_IO;
        }
        ns_keys_server(s->router, cfg->curve_cert);
        ns_keys_server(s->data, cfg->curve_cert);
    }
    ns_wire_tune(s->router, NS_FARM_CONTROL_MAX, 0);
    zsock_set_router_handover(s->router, 1);
    /* data (docs/protocol.md §1): chunks out, results (never more points
     * than we send) in. A chunk for a connection that has gone fails at
     * once instead of being dropped, so it stays queued for another worker. */
    ns_wire_tune(s->data, cfg->max_message, 0);
    zsock_set_router_mandatory(s->data, 1);
    /* libzmq's own wildcard (not CZMQ's sequential range): the kernel
     * picks a free port, so farms started side by side do not race. */
    if (zmq_bind(zsock_resolve(s->router), ep) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", ep, zmq_strerror(zmq_errno()));
        return NS_ERR_IO;
    }
    char data_ep[300];
    snprintf(data_ep, sizeof data_ep, "%.*s:*", (int)(colon - ep), ep);
    if (zmq_bind(zsock_resolve(s->data), data_ep) != 0) {
        snprintf(err, errlen, "cannot bind the data port on %.200s: %s", data_ep,
                 zmq_strerror(zmq_errno()));
        return NS_ERR_IO;
    }
    s->data_port = s_port(s->data);
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

static void s_auth_release(ns_bstate_t *s)
{
    if (!s->auth_held)
        return;
    zactor_destroy(&s->auth);
    s->auth_held = 0;
    atomic_store(&s_auth_in_use, 0);
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
    s->hooks.worker_gone = ns_batch_requeue_orphans;
    s->hooks.can_send = ns_batch_pump;
    zuuid_t *uuid = zuuid_new();   /* random bytes for the run id */
    if (uuid)
        memcpy(&s->run, zuuid_data(uuid), sizeof s->run);
    zuuid_destroy(&uuid);
    s->run ^= (uint64_t)getpid() << 16 ^ (uint64_t)(ns_now() * 1e9);
    if (s->run == 0)
        s->run = 1;
    s->spot_rng = s->run;
    if (s_bind(s, owner->err, sizeof owner->err) != NS_OK) {
        zsock_destroy(&s->router);
        zsock_destroy(&s->data);
        s_auth_release(s);
        zsock_signal(pipe, 1);
        return;
    }
    zsock_signal(pipe, 0);
    s->next_tick = ns_now();
    while (!s->terminated) {
        /* no POLLOUT: chunks go to workers that asked, and a ROUTER send
         * never blocks */
        zmq_pollitem_t items[3] = {
            {zsock_resolve(pipe), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(s->router), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(s->data), 0, ZMQ_POLLIN, 0},
        };
        double now = ns_now();
        long timeout = (long)((s->next_tick - now) * 1000.0) + 1;
        if (timeout < 0)
            timeout = 0;
        if (s->active && timeout > S_MAX_POLL_MS)
            timeout = S_MAX_POLL_MS;
        /* stragglers are judged against the batch's done chunks: look often */
        if (s->active && s->chunked && s->ndurations > 0 && timeout > S_STRAGGLER_POLL_MS)
            timeout = S_STRAGGLER_POLL_MS;
        int rc = zmq_poll(items, 3, timeout);
        if (rc < 0 && zmq_errno() != EINTR)
            break;
        if (rc > 0) {
            if (items[0].revents & ZMQ_POLLIN)
                s_on_pipe(s);
            if (items[1].revents & ZMQ_POLLIN)
                ns_reg_on_control(s);
            if (items[2].revents & ZMQ_POLLIN)
                ns_batch_on_data(s);
        }
        now = ns_now();
        if (now >= s->next_tick) {
            s->next_tick = now + s->cfg->heartbeat_ms / 1000.0;
            ns_reg_tick(s, now);
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
    ns_reg_clear(s);
    zsock_destroy(&s->router);
    zsock_destroy(&s->data);
    s_auth_release(s);
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
    int rv = ns_broker_begin(self, x, n, d, logl);
    return rv == NS_OK ? ns_broker_end(self) : rv;
}

int ns_broker_begin(ns_broker_t *self, const double *x, size_t n, size_t d, double *logl)
{
    if (self->inflight)
        return NS_ERR_STATE;
    if (zsock_send(self->actor, "spp88", "EVAL", (const void *)x, (void *)logl, (uint64_t)n,
                   (uint64_t)d) != 0)
        return NS_ERR_FARM;
    self->inflight = 1;
    return NS_OK;
}

int ns_broker_poll(ns_broker_t *self)
{
    if (!self->inflight)
        return 1;
    zmq_pollitem_t item = {zsock_resolve(self->actor), 0, ZMQ_POLLIN, 0};
    return zmq_poll(&item, 1, 0) != 0;   /* a failed poll: end says why */
}

int ns_broker_end(ns_broker_t *self)
{
    if (!self->inflight)
        return NS_ERR_STATE;
    self->inflight = 0;
    int rv = NS_ERR_FARM;
    if (s_recv_int(self, &rv) != NS_OK)
        return NS_ERR_FARM;
    return rv;
}


void ns_broker_stats(ns_broker_t *self, ns_farm_stats_t *out)
{
    int rv = NS_ERR_FARM;
    memset(out, 0, sizeof *out);
    if (zsock_send(self->actor, "sp", "STATS", (void *)out) == 0)
        s_recv_int(self, &rv);
}

void ns_broker_stop(ns_broker_t *self)
{
    int rv;
    if (zsock_send(self->actor, "s", "STOP") == 0)
        s_recv_int(self, &rv);
}

void ns_broker_watch_pid(ns_broker_t *self, int pid)
{
    int rv;
    if (zsock_send(self->actor, "si", "WATCH", pid) == 0)
        s_recv_int(self, &rv);
}

int ns_broker_call(ns_broker_t *self, const char *command)
{
    int rv = NS_ERR_FARM;
    if (zsock_send(self->actor, "s", command) != 0 || s_recv_int(self, &rv) != NS_OK)
        return NS_ERR_FARM;
    return rv;
}
