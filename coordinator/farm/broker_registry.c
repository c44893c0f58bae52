/* broker_registry.c - the farm's worker registry: HELLO, WELCOME, READY
 * and the canary check, refusals, BYE, heartbeats and liveness, ASK and
 * the binding of data connections, local worker processes. Runs in the broker thread (broker.c); it never calls
 * batch code (broker_int.h: ns_reg_hooks_t). */
#include "broker_int.h"
#include "nessai/wire.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <sys/wait.h>

#define S_MOD "farm"
#define S_WELCOME_TIMEOUT_S 20.0  /* welcomed but no READY: dropped (the slot is freed) */
#define S_MISADDRESSED_WARN_S 10.0    /* at most one warning this often */
#define S_UNBOUND_WARN_S 10.0     /* live, but no data connection for this long: warned */

size_t ns_reg_live_count(const ns_bstate_t *s)
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

ns_bworker_t *ns_reg_find_data(ns_bstate_t *s, zframe_t *routing)
{
    for (size_t i = 0; i < s->nworkers; i++)
        if (s->workers[i]->data && zframe_eq(s->workers[i]->data, routing))
            return s->workers[i];
    return NULL;
}

ns_bworker_t *ns_reg_find_id(ns_bstate_t *s, ns_str_t id)
{
    for (size_t i = 0; i < s->nworkers; i++)
        if (ns_str_eq(id, s->workers[i]->id))
            return s->workers[i];
    return NULL;
}

ns_bworker_t *ns_reg_find_seq(ns_bstate_t *s, uint64_t seq)
{
    for (size_t i = 0; i < s->nworkers; i++)
        if (s->workers[i]->seq == seq)
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
    zframe_destroy(&w->data);
    free(w);
}

/* A worker's data token: 64 random bits, never 0 (docs/protocol.md §8). */
static uint64_t s_token(void)
{
    uint64_t t = 0;
    if (getrandom(&t, sizeof t, 0) != (ssize_t)sizeof t) {
        zuuid_t *u = zuuid_new();   /* no getrandom: CZMQ's random uuid */
        if (u)
            memcpy(&t, zuuid_data(u), sizeof t);
        zuuid_destroy(&u);
        t ^= (uint64_t)(ns_now() * 1e9);
    }
    return t ? t : 1;
}

/* ---- control channel -------------------------------------------------- */

static void s_on_hello(ns_bstate_t *s, zframe_t *routing, const ns_msg_t *m)
{
    char host[128], who[256];
    ns_str_copy(m->host, host, sizeof host);
    snprintf(who, sizeof who, "host=%s pid=%u", host, m->pid);
    ns_bworker_t *old = s_find_routing(s, routing);
    if (old) {   /* the same peer registering again: forget the old session */
        s->hooks.worker_gone(s, old->seq, NULL);
        s_remove_worker(s, old);
    }
    if (s->cfg->max_workers > 0 && s->nworkers >= s->cfg->max_workers) {
        char reason[300];
        snprintf(reason, sizeof reason, "the coordinator is full: its file descriptor limit (%ld) "
                 "allows %zu workers; raise ulimit -n where the coordinator runs",
                 s->cfg->fd_limit, s->cfg->max_workers);
        s_refuse(s, routing, who, reason);
        return;
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
    w->token = s_token();
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
    r.data_port = s->data_port;
    r.token = w->token;
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
    w->unbound_since = ns_now();
    s->stats.workers_seen++;
    ns_msg_t r;
    ns_msg_init(&r, NS_MSG_ACCEPT);
    r.run = s->run;
    s_send_control(s, w->routing, &r);
    ns_info(S_MOD, "worker joined %s live=%zu", who, ns_reg_live_count(s));
}

static void s_on_bye(ns_bstate_t *s, ns_bworker_t *w, const ns_msg_t *m)
{
    char reason[256];
    size_t own = s->hooks.worker_gone(s, w->seq, NULL);
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
    s->hooks.can_send(s);
}

void ns_reg_on_control(ns_bstate_t *s)
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

/* ---- timers and local processes ------------------------------------------ */

/* A local worker process ended: remember how, and drop its registration
 * at once (its chunks go back now, not after the heartbeat silence). */
static void s_local_exit(ns_bstate_t *s, int pid, const char *how)
{
    if (s->nexits < sizeof s->exits / sizeof s->exits[0]) {
        s->exits[s->nexits].pid = pid;
        snprintf(s->exits[s->nexits].how, sizeof s->exits[s->nexits].how, "%s", how);
        s->nexits++;
    }
    if (!s->cfg->local_pool)
        return;
    if (s->cfg->respawn && !s->stopping && s->respawned < s->cfg->max_respawns
        && s->npids < NS_BROKER_MAX_LOCAL) {
        int np = s->cfg->respawn(s->cfg->respawn_ctx, pid);
        if (np > 0) {
            s->respawned++;
            s->pids[s->npids++] = np;
            ns_warn(S_MOD, "local worker pid=%d %s; started pid=%d in its place (%ld of %ld "
                    "replacements, --max-respawns)", pid, how, np, s->respawned,
                    s->cfg->max_respawns);
        }
    }
    for (size_t i = 0; i < s->nworkers; i++) {
        ns_bworker_t *w = s->workers[i];
        if (w->pid != (uint32_t)pid)
            continue;
        char fault[160];
        snprintf(fault, sizeof fault, "%s (pid %d) %s", w->id, pid, how);
        int live = w->state == W_LIVE;
        size_t own = s->hooks.worker_gone(s, w->seq, fault);
        if (live)
            s->stats.workers_lost++;
        ns_warn(S_MOD, "worker lost id=%s pid=%d: %s; resent=%zu", w->id, pid, how, own);
        s_remove_worker(s, w);
        break;
    }
}

/* Log local workers that died. Peeks with WNOWAIT: reaping belongs to
 * the pool (pool.c), which must never signal a recycled pid. */
static void s_watch_children(ns_bstate_t *s)
{
    for (size_t i = 0; i < s->npids;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = waitid(P_PID, (id_t)s->pids[i], &si, WEXITED | WNOHANG | WNOWAIT);
        if (r == 0 && si.si_pid == s->pids[i]) {
            char how[64] = "exited with status 0";
            if (si.si_code == CLD_EXITED && si.si_status != 0) {
                ns_warn(S_MOD, "local worker pid=%d exited with status %d", s->pids[i],
                        si.si_status);
                snprintf(how, sizeof how, "exited with status %d", si.si_status);
            } else if (si.si_code != CLD_EXITED) {
                ns_warn(S_MOD, "local worker pid=%d was killed by signal %d", s->pids[i],
                        si.si_status);
                snprintf(how, sizeof how, "killed by signal %d", si.si_status);
            }
            int pid = s->pids[i];
            s->pids[i] = s->pids[--s->npids];
            s_local_exit(s, pid, how);
            continue;
        }
        if (r < 0 && errno == ECHILD) {   /* already reaped by the pool */
            s->pids[i] = s->pids[--s->npids];
            continue;
        }
        i++;
    }
}

void ns_reg_tick(ns_bstate_t *s, double now)
{
    double period = s->cfg->heartbeat_ms / 1000.0;
    double silence = period * s->cfg->liveness;
    ns_msg_t hb;
    ns_msg_init(&hb, NS_MSG_HEARTBEAT);
    hb.run = s->run;
    for (size_t i = 0; i < s->nworkers;) {
        ns_bworker_t *w = s->workers[i];
        if (w->state == W_LIVE && now - w->last_seen > silence) {
            char fault[200];
            snprintf(fault, sizeof fault, "%s (host %s pid %u) silent for %.1f s", w->id, w->host,
                     w->pid, now - w->last_seen);
            size_t own = s->hooks.worker_gone(s, w->seq, fault);
            s->stats.workers_lost++;
            ns_warn(S_MOD, "worker lost id=%s host=%s pid=%u silent=%.1fs resent=%zu live=%zu",
                    w->id, w->host, w->pid, now - w->last_seen, own, ns_reg_live_count(s) - 1);
            s_remove_worker(s, w);
            continue;
        }
        if (w->state == W_LIVE && w->unbound_since > 0 && !w->unbound_warned
            && now - w->unbound_since > S_UNBOUND_WARN_S) {
            w->unbound_warned = 1;
            ns_warn(S_MOD, "worker %s (host %s pid %u) has not asked for work on the data port "
                    "%u for %.0f s; can it reach that port?", w->id, w->host, w->pid,
                    s->data_port, now - w->unbound_since);
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

void ns_reg_refuse(ns_bstate_t *s, ns_bworker_t *w, const char *reason)
{
    char who[256];
    snprintf(who, sizeof who, "id=%s host=%s pid=%u", w->id, w->host, w->pid);
    s->hooks.worker_gone(s, w->seq, NULL);
    s_refuse(s, w->routing, who, reason);
    s_remove_worker(s, w);
}

void ns_reg_broadcast_stop(ns_bstate_t *s, const char *reason)
{
    ns_msg_t m;
    ns_msg_init(&m, NS_MSG_STOP);
    m.text = ns_str_of(reason);
    for (size_t i = 0; i < s->nworkers; i++)
        s_send_control(s, s->workers[i]->routing, &m);
}

/* ---- what the batch side asks ---------------------------------------------- */

static int s_asking(const ns_bworker_t *w)
{
    return w->state == W_LIVE && w->data && w->asking && !w->evaluating;
}

size_t ns_reg_idle_count(const ns_bstate_t *s)
{
    size_t idle = 0;
    for (size_t i = 0; i < s->nworkers; i++)
        idle += s_asking(s->workers[i]);
    return idle;
}

int ns_reg_any_idle(const ns_bstate_t *s)
{
    for (size_t i = 0; i < s->nworkers; i++)
        if (s_asking(s->workers[i]))
            return 1;
    return 0;
}

ns_bworker_t *ns_reg_next_asking(ns_bstate_t *s)
{
    /* in turn, from where the last search stopped: one pass over the
     * registry serves every worker that asked */
    for (size_t j = 0; j < s->nworkers; j++) {
        size_t i = (s->ask_cursor + j) % s->nworkers;
        if (s_asking(s->workers[i])) {
            s->ask_cursor = i + 1;
            return s->workers[i];
        }
    }
    return NULL;
}

void ns_reg_new_batch(ns_bstate_t *s)
{
    for (size_t i = 0; i < s->nworkers; i++)
        s->workers[i]->stuck = 0;   /* evaluating: until it answers */
}

/* ---- the data connections (docs/protocol.md §3, "Asking for work") ------- */

void ns_reg_misaddressed(ns_bstate_t *s, const char *what)
{
    s->stats.misaddressed_dropped++;
    s->misaddressed_unwarned++;
    ns_debug(S_MOD, "dropped %s", what);
    double now = ns_now();
    if (s->misaddressed_warned > 0 && now - s->misaddressed_warned < S_MISADDRESSED_WARN_S)
        return;
    ns_warn(S_MOD, "dropped %llu data message(s) that did not come from the worker they name "
            "(%llu in all; the last: %s)", (unsigned long long)s->misaddressed_unwarned,
            (unsigned long long)s->stats.misaddressed_dropped, what);
    s->misaddressed_warned = now;
    s->misaddressed_unwarned = 0;
}

void ns_reg_unbind(ns_bstate_t *s, ns_bworker_t *w)
{
    ns_debug(S_MOD, "worker %s: its data connection has gone; waiting for its next ASK", w->id);
    zframe_destroy(&w->data);
    w->asking = 0;
    w->unbound_since = ns_now();
    w->unbound_warned = 0;
}

void ns_reg_on_ask(ns_bstate_t *s, zframe_t *routing, const ns_msg_t *m)
{
    char id[32], what[200];
    ns_str_copy(m->worker, id, sizeof id);
    ns_bworker_t *w = ns_reg_find_id(s, m->worker);
    ns_bworker_t *bound = ns_reg_find_data(s, routing);
    if (!w || w->state != W_LIVE || m->run != s->run || m->token != w->token) {
        snprintf(what, sizeof what, "an ASK naming %s%s", id,
                 !w || w->state != W_LIVE ? ", which is no accepted worker"
                 : m->run != s->run ? " for another run" : " with a wrong token");
        ns_reg_misaddressed(s, what);
        return;
    }
    if (bound && bound != w) {
        snprintf(what, sizeof what, "an ASK naming %s on the data connection of %s", id,
                 bound->id);
        ns_reg_misaddressed(s, what);
        return;
    }
    w->last_seen = ns_now();
    if (bound == w) {
        if (m->received > w->sent) {   /* more than was ever sent: nonsense */
            s->stats.malformed_dropped++;
            return;
        }
        if (m->received < w->sent)
            return;   /* a CHUNK is on its way to it: it answers that first */
        if (w->evaluating) {
            /* it received everything and holds nothing: it dropped the attempt */
            ns_debug(S_MOD, "worker %s dropped chunk %u of batch %llu; re-queued", w->id,
                     w->cur_chunk, (unsigned long long)w->cur_batch);
            w->evaluating = 0;
            s->hooks.worker_gone(s, w->seq, NULL);
        }
        w->asking = 1;
        return;
    }
    /* A new connection of w (the first, or libzmq re-opened it): whatever
     * went to the old one is given up. */
    ns_debug(S_MOD, "worker %s: data connection %s", w->id, w->data ? "bound again" : "bound");
    zframe_destroy(&w->data);
    w->data = zframe_dup(routing);
    w->sent = m->received;
    w->unbound_since = 0;
    if (w->evaluating) {
        w->evaluating = 0;
        s->hooks.worker_gone(s, w->seq, NULL);
    }
    w->asking = 1;
}

size_t ns_reg_evaluating(ns_bstate_t *s, size_t i, ns_bworker_t **out, size_t max)
{
    size_t n = 0;
    for (size_t j = 0; j < s->nworkers && n < max; j++) {
        ns_bworker_t *w = s->workers[j];
        if (w->state == W_LIVE && w->evaluating && !w->stuck && w->cur_batch == s->batch
            && w->cur_chunk == i)
            out[n++] = w;
    }
    return n;
}

int ns_reg_all_stuck(const ns_bstate_t *s)
{
    size_t live = 0;
    for (size_t i = 0; i < s->nworkers; i++) {
        if (s->workers[i]->state != W_LIVE)
            continue;
        live++;
        if (!s->workers[i]->stuck)
            return 0;
    }
    return live > 0;
}

void ns_reg_exits(const ns_bstate_t *s, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->nexits && used < size; i++) {
        int w = snprintf(out + used, size - used, "%spid %d %s", i ? "; " : "", s->exits[i].pid,
                         s->exits[i].how);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

size_t ns_reg_local_count(const ns_bstate_t *s)
{
    return s->npids;
}

void ns_reg_watch_pid(ns_bstate_t *s, int pid)
{
    if (s->npids < NS_BROKER_MAX_LOCAL) {
        s->pids[s->npids++] = pid;
        s->nwatched++;
    }
}

void ns_reg_clear(ns_bstate_t *s)
{
    while (s->nworkers > 0)
        s_remove_worker(s, s->workers[0]);
    free(s->workers);
    s->workers = NULL;
    s->capworkers = 0;
}
