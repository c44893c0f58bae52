/* broker_batch.c - one batch on the farm: array_split chunks, dispatch to
 * the workers that asked (data socket), results placed by index and taken
 * only from the worker each attempt went to, deadlines, re-sends. Runs in
 * the broker thread (broker.c); asks the worker registry
 * (broker_registry.c) about workers, never the other way round. */
#include "broker_int.h"
#include "nessai/wire.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"
#include "nessai/plugin.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD "farm"
#define S_WAIT_LOG_S 5.0          /* "waiting for workers" every this often */

/* Chunk i goes (back) into the send queue unless done or already there. */
static void s_enqueue(ns_bstate_t *s, size_t i)
{
    ns_bchunk_t *c = &s->chunks[i];
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

/* Up to three of the chunk's first coordinates, "(0.1, 2.3, ...)". */
static void s_coords(const ns_bstate_t *s, const ns_bchunk_t *c, char *out, size_t size)
{
    const double *row = s->x + c->start * s->d;
    size_t used = 0;
    out[0] = '\0';
    for (size_t j = 0; j < s->d && j < 3 && used < size; j++) {
        int w = snprintf(out + used, size - used, "%s%.6g", j ? ", " : "(", row[j]);
        if (w < 0)
            return;
        used += (size_t)w;
    }
    if (used < size)
        snprintf(out + used, size - used, "%s)", s->d > 3 ? ", ..." : "");
}

/* A worker was lost, or missed the deadline, while holding chunk i. Past
 * --max-chunk-faults the batch stops with everything known about the
 * chunk: it crashes or hangs whoever evaluates it. Returns 1 if the batch
 * ended. */
static int s_fault(ns_bstate_t *s, size_t i, const char *what)
{
    ns_bchunk_t *c = &s->chunks[i];
    if (c->faults < sizeof c->fault_log / sizeof c->fault_log[0])
        snprintf(c->fault_log[c->faults], sizeof c->fault_log[0], "%s", what);
    c->faults++;
    if (c->faults <= (uint32_t)s->cfg->max_chunk_faults)
        return 0;
    char coords[200], log[1000];
    s_coords(s, c, coords, sizeof coords);
    size_t used = 0;
    log[0] = '\0';
    for (uint32_t f = 0; f < c->faults && f < 4 && used < sizeof log; f++) {
        int w = snprintf(log + used, sizeof log - used, "%s%s", f ? "; " : "", c->fault_log[f]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    ns_error(S_MOD, "batch %llu, chunk %zu (points %zu..%zu, first x = %s): %u workers lost or "
             "no result in time while evaluating it: %s; stopping (the model crashes or hangs "
             "on these points; --max-chunk-faults %ld)",
             (unsigned long long)s->batch, i, c->start, c->start + c->n - 1, coords, c->faults,
             log, s->cfg->max_chunk_faults);
    ns_batch_finish(s, NS_ERR_FARM);
    return 1;
}

/* A worker is gone (or no longer holds what it was sent): the chunks whose
 * latest attempt went to it go back to the queue. Nothing else can be lost:
 * every attempt was sent to one known worker. Returns how many went back. */
size_t ns_batch_requeue_orphans(ns_bstate_t *s, uint64_t seq, const char *fault)
{
    size_t own = 0;
    if (!s->active || !s->chunked)
        return 0;
    /* the chunk it was evaluating (whichever attempt) counts the fault */
    ns_bworker_t *w = fault ? ns_reg_find_seq(s, seq) : NULL;
    if (w && w->evaluating && w->cur_batch == s->batch && w->cur_chunk < s->k
        && !s->chunks[w->cur_chunk].done && s_fault(s, w->cur_chunk, fault))
        return 0;   /* the batch is over */
    for (size_t i = 0; i < s->k; i++) {
        ns_bchunk_t *c = &s->chunks[i];
        if (c->done || c->queued || c->attempt == 0 || c->holder != seq)
            continue;
        own++;
        s_enqueue(s, i);
    }
    return own;
}

static double s_chunk_timeout(const ns_bstate_t *s, size_t n)
{
    double t = s->cfg->chunk_timeout;
    double expect = 10.0 * (double)n * s->sec_per_point;
    return expect > t ? expect : t;
}

void ns_batch_finish(ns_bstate_t *s, int rv)
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
    free(s->durations);
    s->chunks = NULL;
    s->queue = NULL;
    s->durations = NULL;
    s->ndurations = 0;
    s->qlen = s->qhead = 0;
    zsock_send(s->pipe, "i", rv);
}

/* Lay out k chunks with numpy array_split sizes. */
static int s_chunk_batch(ns_bstate_t *s)
{
    size_t k = s->cfg->n_pool > 0 ? (size_t)s->cfg->n_pool : ns_reg_live_count(s);
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
    s->durations = calloc(k, sizeof *s->durations);
    s->ndurations = 0;
    if (!s->chunks || !s->queue || !s->durations)
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
             (unsigned long long)s->batch, s->n, k, ns_reg_live_count(s));
    return NS_OK;
}

/* Send chunk i's next attempt to w, which asked for work. */
static int s_send_chunk(ns_bstate_t *s, ns_bworker_t *w, size_t i, double now)
{
    ns_bchunk_t *c = &s->chunks[i];
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
        return NS_ERR_NOMEM;   /* try again on the next pass */
    ns_msg_set_doubles(&m, rows, c->n * s->d, scratch);
    int rv = ns_wire_send(s->data, w->data, &m);
    free(scratch);
    if (rv != NS_OK)
        return rv;
    c->attempt++;
    c->queued = 0;
    c->holder = w->seq;
    c->deadline = now + s_chunk_timeout(s, c->n);
    c->sent_at = now;
    w->asking = 0;
    w->evaluating = 1;
    w->stuck = 0;
    w->sent++;
    w->cur_batch = s->batch;
    w->cur_chunk = (uint32_t)i;
    w->cur_attempt = c->attempt;
    w->cur_sent_at = now;
    ns_debug(S_MOD, "chunk %zu of batch %llu attempt %u sent to %s", i,
             (unsigned long long)s->batch, c->attempt, w->id);
    return NS_OK;
}

/* Send queued chunks, one to each worker that asked for work. */
void ns_batch_pump(ns_bstate_t *s)
{
    double now = ns_now();
    while (s->active && s->chunked && s->qlen > 0) {
        size_t i = s->queue[s->qhead];
        ns_bchunk_t *c = &s->chunks[i];
        if (!c->done) {
            ns_bworker_t *w = ns_reg_next_asking(s);
            if (!w)
                return;   /* sent when a worker asks */
            int rv = s_send_chunk(s, w, i, now);
            if (rv == NS_ERR_STATE) {   /* its connection has gone: the next one */
                ns_reg_unbind(s, w);
                continue;
            }
            if (rv != NS_OK) {
                ns_warn(S_MOD, "sending chunk %zu failed: %s", i, ns_strerror(rv));
                return;
            }
        }
        /* sent, or completed while it waited (an earlier attempt won) */
        c->queued = 0;
        s->qhead = (s->qhead + 1) % s->k;
        s->qlen--;
    }
}

void ns_batch_start(ns_bstate_t *s, const double *x, double *logl, size_t n, size_t d)
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
    ns_reg_new_batch(s);
    if (n == 0) {
        ns_batch_finish(s, NS_OK);
        return;
    }
    if (d != (size_t)s->cfg->dim) {
        ns_error(S_MOD, "batch has dimension %zu but the model has %d", d, s->cfg->dim);
        ns_batch_finish(s, NS_ERR_INVAL);
        return;
    }
    int rv = s_chunk_batch(s);
    if (rv == NS_ERR_NOMEM) {
        ns_error(S_MOD, "out of memory laying out a batch of %zu points", n);
        ns_batch_finish(s, rv);
        return;
    }
    ns_batch_pump(s);
}

#define S_SPOT_MAX 64             /* points checked per result at most */
#define S_SPOT_MAX_S 0.02         /* coordinator time per result at most */

/* Spot check (docs/protocol.md §3): re-evaluate a few of the result's
 * points with the coordinator's model; the values are in s->logl at the
 * chunk's rows; seen is how long the chunk took as the coordinator saw it.
 * Returns 1 if they differ (the worker is then refused and its chunks of
 * this batch go back), else 0. */
static int s_spot_check(ns_bstate_t *s, ns_bworker_t *w, ns_bchunk_t *c, size_t ci, double now,
                        double seen)
{
    if (!s->cfg->spot_model || s->cfg->spot_fraction <= 0)
        return 0;
    size_t cnt = (size_t)ceil(s->cfg->spot_fraction * (double)c->n);
    if (cnt < 1)
        cnt = 1;
    if (cnt > c->n)
        cnt = c->n;
    if (cnt > S_SPOT_MAX)
        cnt = S_SPOT_MAX;
    /* the cost as the coordinator saw it (a worker cannot make it look dearer
     * without being that slow) */
    double per = seen / (double)c->n;
    /* The coordinator is one thread for all workers: checks share a budget
     * of --spot-check x the farm's likelihood wall time (plus 20 ms, so
     * that the first results are checked). */
    double wall = s->stats.likelihood_wall_s + (now - s->t_start);
    if (per * (double)cnt > S_SPOT_MAX_S
        || s->spot_s + per * (double)cnt > s->cfg->spot_fraction * wall + S_SPOT_MAX_S) {
        s->stats.spot_skipped++;
        return 0;
    }
    double t0 = ns_now();
    double ref[S_SPOT_MAX];
    size_t idx[S_SPOT_MAX];
    double *x = malloc(cnt * s->d * sizeof *x);
    if (!x) {
        s->stats.spot_skipped++;
        return 0;
    }
    s->spot_rng = s->spot_rng * 6364136223846793005ull + 1442695040888963407ull;
    size_t off = (size_t)(s->spot_rng >> 33) % c->n;
    for (size_t j = 0; j < cnt; j++) {
        idx[j] = (off + j * c->n / cnt) % c->n;
        memcpy(x + j * s->d, s->x + (c->start + idx[j]) * s->d, s->d * sizeof *x);
    }
    int rv = ns_model_log_likelihood(s->cfg->spot_model, x, cnt, ref);
    free(x);
    s->spot_s += ns_now() - t0;
    w->spot_checked += cnt;
    if (rv != NS_OK) {
        s->stats.spot_skipped++;
        return 0;
    }
    s->stats.spot_checked += cnt;
    for (size_t j = 0; j < cnt; j++) {
        const double *got = s->logl + c->start + idx[j];
        if (memcmp(got, &ref[j], sizeof *got) == 0)
            continue;
        char reason[512];
        snprintf(reason, sizeof reason, "spot check failed: point %zu of batch %llu gives "
                 "logL=%.17g on the worker but %.17g on the coordinator",
                 c->start + idx[j], (unsigned long long)s->batch, *got, ref[j]);
        s->stats.spot_failures++;
        uint64_t seq = w->seq;
        ns_error(S_MOD, "worker %s: %s; refusing it and evaluating its chunks again", w->id,
                 reason);
        ns_reg_refuse(s, w, reason);   /* hands back what it holds */
        for (size_t i = 0; i < s->k; i++) {   /* and what it returned */
            ns_bchunk_t *o = &s->chunks[i];
            if (o->done && o->placed_by == seq) {
                o->done = 0;
                s->remaining++;
                s_enqueue(s, i);
            }
        }
        s_enqueue(s, ci);
        return 1;
    }
    return 0;
}

/* A RESULT counts only from the data connection of the worker it names,
 * for the attempt that was sent to that worker (docs/protocol.md §3,
 * "Accepted workers only, on their own connection"). */
static void s_on_result(ns_bstate_t *s, zframe_t *routing, const ns_msg_t *m)
{
    char id[32], what[240];
    ns_str_copy(m->worker, id, sizeof id);
    ns_bworker_t *w = ns_reg_find_data(s, routing);
    if (!w || !ns_str_eq(m->worker, w->id)) {
        /* nothing it says is counted or used */
        if (w)
            snprintf(what, sizeof what, "a RESULT naming %s on the data connection of %s", id,
                     w->id);
        else
            snprintf(what, sizeof what, "a RESULT naming %s on a data connection bound to no "
                     "worker", id);
        ns_reg_misaddressed(s, what);
        return;
    }
    if (m->run == s->run && (!w->evaluating || m->batch != w->cur_batch
                             || m->chunk != w->cur_chunk || m->attempt != w->cur_attempt)) {
        snprintf(what, sizeof what, "a RESULT from %s for chunk %u of batch %llu attempt %u, "
                 "which was not sent to it", id, m->chunk, (unsigned long long)m->batch,
                 m->attempt);
        ns_reg_misaddressed(s, what);
        return;
    }
    double now = ns_now();
    w->last_seen = now;
    if (m->run != s->run) {
        s->stats.stale_results++;
        return;
    }
    w->stuck = 0;
    w->evaluating = 0;
    /* how long the coordinator saw this attempt take on this worker */
    double seen = now - w->cur_sent_at;
    if (!s->active || !s->chunked || m->batch != s->batch) {
        s->stats.stale_results++;
        if (m->status == 0)
            s->stats.redone_evaluations += m->n;
        return;
    }
    if (m->chunk >= s->k || m->n != s->chunks[m->chunk].n) {
        s->stats.malformed_dropped++;
        return;
    }
    ns_bchunk_t *c = &s->chunks[m->chunk];
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
                     c->failures, w->id, err);
            ns_batch_finish(s, NS_ERR_FARM);
            return;
        }
        ns_warn(S_MOD, "chunk %u of batch %llu failed on worker %s: %s; retrying (%u of %ld)",
                m->chunk, (unsigned long long)s->batch, w->id, err, c->failures,
                s->cfg->max_retries);
        if (m->attempt == c->attempt)
            s_enqueue(s, m->chunk);
        ns_batch_pump(s);
        return;
    }
    /* Place by index: the values are the worker's bits, unchanged. */
    ns_msg_get_doubles(m, s->logl + c->start, c->n);
    for (size_t j = 0; j < c->n; j++) {
        double v = s->logl[c->start + j];
        if (isinf(v) && v > 0) {
            char coords[200];
            ns_bchunk_t row = {.start = c->start + j};
            s_coords(s, &row, coords, sizeof coords);
            ns_error(S_MOD, "the model returned logL = +inf at point %zu of batch %llu (x = %s, "
                     "worker %s); a log-likelihood must be finite or -inf: fix the model",
                     c->start + j, (unsigned long long)s->batch, coords, w->id);
            ns_batch_finish(s, NS_ERR_FARM);
            return;
        }
    }
    if (s_spot_check(s, w, c, m->chunk, now, seen)) {
        ns_batch_pump(s);
        return;
    }
    c->done = 1;
    c->placed_by = w->seq;
    c->deadline = 0;
    s->remaining--;
    if (s->ndurations < s->k)
        s->durations[s->ndurations++] = seen;
    /* Times as the worker reports them, but never more than the coordinator
     * saw pass since it sent this attempt to this worker. */
    double wall = isfinite(m->wall_s) && m->wall_s > 0 ? m->wall_s : 0;
    double cpu = isfinite(m->cpu_s) && m->cpu_s > 0 ? m->cpu_s : 0;
    if (wall > seen)
        wall = seen;
    if (cpu > 64.0 * wall + 1.0)
        cpu = 64.0 * wall + 1.0;
    s->stats.worker_cpu_s += cpu;
    s->stats.worker_eval_wall_s += wall;
    if (wall > 0) {
        double spp = wall / (double)m->n;
        s->sec_per_point = s->sec_per_point > 0 ? 0.8 * s->sec_per_point + 0.2 * spp : spp;
    }
    if (s->remaining == 0)
        ns_batch_finish(s, NS_OK);
}

void ns_batch_on_data(ns_bstate_t *s)
{
    zmsg_t *msg = zmsg_recv(s->data);
    if (!msg)
        return;
    zframe_t *routing = zmsg_pop(msg);
    zframe_t *body = zmsg_pop(msg);
    ns_msg_t m;
    if (!routing || !body || zmsg_size(msg) != 0
        || ns_msg_decode(zframe_data(body), zframe_size(body), &m) != NS_OK
        || (m.type != NS_MSG_ASK && m.type != NS_MSG_RESULT)) {
        s->stats.malformed_dropped++;
        ns_debug(S_MOD, "dropped a malformed data message (%zu bytes)",
                 body ? zframe_size(body) : 0);
    } else if (m.type == NS_MSG_ASK)
        ns_reg_on_ask(s, routing, &m);
    else
        s_on_result(s, routing, &m);
    zframe_destroy(&routing);
    zframe_destroy(&body);
    zmsg_destroy(&msg);
    ns_batch_pump(s);
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median send-to-RESULT time of the batch's done chunks, 0 if none. */
static double s_typical(const ns_bstate_t *s)
{
    if (s->ndurations == 0)
        return 0;
    double sorted[64], *d = s->ndurations <= 64 ? sorted : malloc(s->ndurations * sizeof *d);
    if (!d)
        return 0;
    memcpy(d, s->durations, s->ndurations * sizeof *d);
    qsort(d, s->ndurations, sizeof *d, s_cmp_double);
    double typical = d[s->ndurations / 2];
    if (d != sorted)
        free(d);
    return typical;
}

/* Stragglers: while a worker is idle, a chunk held well past the batch's
 * typical chunk time (2 x the median send-to-RESULT time of its done
 * chunks, + 20 ms) is sent once more, to one idle worker; the first valid
 * result wins and the values are the same bits either way. */
static void s_check_stragglers(ns_bstate_t *s, double now)
{
    if (!s->active || !s->chunked || s->ndurations == 0 || !ns_reg_any_idle(s))
        return;
    double typical = s_typical(s);
    size_t idle = ns_reg_idle_count(s);
    for (size_t i = 0; i < s->k && idle > 0; i++) {
        ns_bchunk_t *c = &s->chunks[i];
        if (c->done || c->queued || c->holder == 0 || c->speculative > 0
            || now - c->sent_at < 2.0 * typical + 0.02)
            continue;
        ns_debug(S_MOD, "chunk %zu of batch %llu held for %.3f s (typical %.3f s) while a "
                 "worker is idle; sending a copy", i, (unsigned long long)s->batch,
                 now - c->sent_at, typical);
        c->speculative++;
        s->stats.speculative++;
        s_enqueue(s, i);   /* the pump gives it to an idle worker */
        idle--;
    }
}

/* While a batch waits: no workers means log every few seconds, then fail. */
static void s_check_waiting(ns_bstate_t *s, double now)
{
    if (!s->active)
        return;
    if (ns_reg_live_count(s) > 0) {
        s->waiting_since = 0;
        if (!s->chunked) {
            int rv = s_chunk_batch(s);
            if (rv != NS_OK) {
                ns_batch_finish(s, rv);
                return;
            }
        }
        return;
    }
    if (s->cfg->local_pool && s->nwatched > 0 && ns_reg_local_count(s) == 0) {
        /* every local worker has exited: nobody else will come */
        char exits[1200];
        ns_reg_exits(s, exits, sizeof exits);
        ns_error(S_MOD, "all %zu local workers have exited (%s); stopping", s->nwatched, exits);
        ns_batch_finish(s, NS_ERR_FARM);
        return;
    }
    if (s->waiting_since == 0) {
        s->waiting_since = now;
        s->last_wait_log = now;
        if (ns_reg_local_count(s) > 0) /* the local pool is still starting */
            ns_info(S_MOD, "waiting for the %zu local workers to connect",
                    ns_reg_local_count(s));
        else
            ns_info(S_MOD, "waiting for workers: none connected; start some with "
                    "nessai-worker --connect %s", s->cfg->endpoint);
        return;
    }
    if (now - s->waiting_since > s->cfg->worker_timeout) {
        ns_error(S_MOD, "no workers for %.0f s (--worker-timeout); start workers with "
                 "nessai-worker --connect %s, or raise --worker-timeout",
                 s->cfg->worker_timeout, s->cfg->endpoint);
        ns_batch_finish(s, NS_ERR_FARM);
        return;
    }
    if (now - s->last_wait_log >= S_WAIT_LOG_S) {
        s->last_wait_log = now;
        if (ns_reg_local_count(s) > 0)
            ns_info(S_MOD, "still waiting for the %zu local workers (%.0f s of %.0f s)",
                    ns_reg_local_count(s), now - s->waiting_since, s->cfg->worker_timeout);
        else
            ns_info(S_MOD, "still waiting for workers (%.0f s of %.0f s); nessai-worker "
                    "--connect %s", now - s->waiting_since, s->cfg->worker_timeout,
                    s->cfg->endpoint);
    }
}

static void s_check_deadlines(ns_bstate_t *s, double now)
{
    if (!s->active || !s->chunked)
        return;
    for (size_t i = 0; i < s->k; i++) {
        ns_bchunk_t *c = &s->chunks[i];
        if (c->done || c->queued || c->deadline == 0 || now < c->deadline)
            continue;
        s->stats.deadline_misses++;
        ns_warn(S_MOD, "chunk %zu of batch %llu missed its deadline (attempt %u, %.1f s); "
                "re-sending", i, (unsigned long long)s->batch, c->attempt,
                s_chunk_timeout(s, c->n));
        /* every worker that took it (any attempt) and has not answered
         * counts once against the chunk */
        ns_bworker_t *late[16];
        size_t nlate = ns_reg_evaluating(s, i, late, 16);
        for (size_t j = 0; j < nlate; j++) {
            char what[200];
            snprintf(what, sizeof what, "%s (host %s pid %u) no result within %.1f s",
                     late[j]->id, late[j]->host, late[j]->pid, s_chunk_timeout(s, c->n));
            late[j]->stuck = 1;
            if (s_fault(s, i, what))
                return;
        }
        s_enqueue(s, i);
    }
    if (ns_reg_all_stuck(s)) {
        ns_error(S_MOD, "batch %llu: every worker is still evaluating a chunk past its deadline "
                 "(the model hangs?); stopping", (unsigned long long)s->batch);
        ns_batch_finish(s, NS_ERR_FARM);
    }
}

void ns_batch_check(ns_bstate_t *s, double now)
{
    s_check_waiting(s, now);
    s_check_stragglers(s, now);
    s_check_deadlines(s, now);
}
