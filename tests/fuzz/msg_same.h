/* msg_same.h - field-by-field equality of two decoded farm messages, for
 * the codec test (tests/farm/test_codec.c) and the decoder fuzzer
 * (fuzz_msg_decode.c). The version is not compared: encoding always writes
 * ours. Floats compare bit for bit (any NaN equals any NaN). */
#ifndef NESSAI_TEST_MSG_SAME_H
#define NESSAI_TEST_MSG_SAME_H

#include "nessai/codec.h"

#include <string.h>

static inline int ns_test_str_same(ns_str_t a, ns_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline int ns_test_f64_same(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b);
}

static inline int ns_test_msg_same(const ns_msg_t *a, const ns_msg_t *b)
{
    return a->type == b->type && a->run == b->run && a->batch == b->batch
           && a->max_message == b->max_message && a->chunk == b->chunk
           && a->attempt == b->attempt && a->pid == b->pid && a->slot == b->slot
           && a->dim == b->dim && a->status == b->status && a->n == b->n && a->d == b->d
           && a->data_port == b->data_port && a->token == b->token
           && a->received == b->received
           && a->heartbeat_ms == b->heartbeat_ms && a->liveness == b->liveness
           && a->canary_n == b->canary_n && ns_test_str_same(a->host, b->host)
           && ns_test_str_same(a->worker, b->worker)
           && ns_test_str_same(a->model_path, b->model_path)
           && ns_test_str_same(a->model_args, b->model_args)
           && ns_test_str_same(a->model_name, b->model_name)
           && ns_test_str_same(a->model_hash, b->model_hash)
           && ns_test_str_same(a->text, b->text) && a->data_len == b->data_len
           && (a->data_len == 0 || memcmp(a->data, b->data, a->data_len) == 0)
           && ns_test_f64_same(a->cpu_s, b->cpu_s) && ns_test_f64_same(a->wall_s, b->wall_s);
}

#endif
