/* broker_batch.c - one batch on the farm: array_split chunks, dispatch on
 * the work socket, results placed by index, deadlines, re-sends. Runs in
 * the broker thread (broker.c); asks the worker registry
 * (broker_registry.c) about workers, never the other way round. */
#include "broker_int.h"
#include "nessai/wire.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"

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

/* A worker is gone: its taken chunks and every chunk nobody has taken go
 * back to the queue (chunks in a dead worker's socket buffer are invisible).
 * Returns the number of its own chunks handed back. */
size_t ns_batch_requeue_orphans(ns_bstate_t *s, uint64_t seq)
{
    size_t own = 0;
    if (!s->active || !s->chunked)
        return 0;
    for (size_t i = 0; i < s->k; i++) {
        ns_bchunk_t *c = &s->chunks[i];
        if (c->done || c->queued || c->attempt == 0)
            continue;
        if (c->holder == seq)
            own++;
        if (c->holder == seq || c->holder == 0)
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
    s->chunks = NULL;
    s->queue = NULL;
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
             (unsigned long long)s->batch, s->n, k, ns_reg_live_count(s));
    return NS_OK;
}

/* Send queued chunks until PUSH would block. */
void ns_batch_pump(ns_bstate_t *s)
{
    double now = ns_now();
    while (s->active && s->chunked && s->qlen > 0) {
        size_t i = s->queue[s->qhead];
        ns_bchunk_t *c = &s->chunks[i];
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
    ns_reg_reset_taken(s);
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

static void s_on_result(ns_bstate_t *s, const ns_msg_t *m)
{
    ns_bworker_t *w = ns_reg_find_id(s, m->worker);
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
                     c->failures, w ? w->id : "?", err);
            ns_batch_finish(s, NS_ERR_FARM);
            return;
        }
        ns_warn(S_MOD, "chunk %u of batch %llu failed on worker %s: %s; retrying (%u of %ld)",
                m->chunk, (unsigned long long)s->batch, w ? w->id : "?", err, c->failures,
                s->cfg->max_retries);
        if (m->attempt == c->attempt)
            s_enqueue(s, m->chunk);
        ns_batch_pump(s);
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
        ns_batch_finish(s, NS_OK);
}

static void s_on_take(ns_bstate_t *s, const ns_msg_t *m)
{
    ns_bworker_t *w = ns_reg_find_id(s, m->worker);
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
    ns_bchunk_t *c = &s->chunks[m->chunk];
    if (!w || c->done || c->queued || m->attempt != c->attempt)
        return;
    c->holder = w->seq;
    w->taken++;
    c->deadline = ns_now() + s_chunk_timeout(s, c->n);
}

void ns_batch_on_results(ns_bstate_t *s)
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
    ns_batch_pump(s);
}

/* A chunk nobody took while a worker sits idle was probably lost in the
 * socket buffer of a worker that went away (or waits behind a busy one):
 * send it again; the first valid result wins either way. */
static void s_check_claims(ns_bstate_t *s, double now)
{
    if (!s->active || !s->chunked)
        return;
    int idle = ns_reg_any_idle(s);
    for (size_t i = 0; idle && i < s->k; i++) {
        ns_bchunk_t *c = &s->chunks[i];
        double claim = 0.2 + 2.0 * (double)c->n * s->sec_per_point;
        if (c->done || c->queued || c->attempt == 0 || c->holder != 0 || now - c->sent_at < claim)
            continue;
        ns_debug(S_MOD, "chunk %zu of batch %llu not taken after %.2f s while a worker is idle; "
                 "re-sending", i, (unsigned long long)s->batch, now - c->sent_at);
        s_enqueue(s, i);
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
        s_enqueue(s, i);
    }
}

void ns_batch_check(ns_bstate_t *s, double now)
{
    s_check_waiting(s, now);
    s_check_claims(s, now);
    s_check_deadlines(s, now);
}
