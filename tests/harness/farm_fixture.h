/*
 * farm_fixture.h - the farm tests' fixtures, on top of harness.h: real
 * nessai-worker processes on loopback, farm option sets, the test model
 * and its reference values.
 */
#ifndef NESSAI_TEST_FARM_FIXTURE_H
#define NESSAI_TEST_FARM_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>
#include "farm.h"
#include "harness.h"
#include "nessai/codec.h"
#include "nessai/options.h"
#include "nessai/plugin.h"

/* Start nessai-worker --connect endpoint plus extra arguments
 * (NULL-terminated, may be NULL) with extra "NAME=value" environment
 * entries (NULL-terminated, may be NULL); stderr goes to stderr_path (NULL:
 * inherited). Returns the pid, or -1. */
pid_t th_farm_spawn_worker(const char *endpoint, const char *const *args,
                           const char *const *env, const char *stderr_path);

/* A farm option set: pairs name, value, ..., NULL. Caller owns. */
ns_config_t *th_farm_config(const char *first, ...);

/* Load the test model (farmtest) with these --model-args. */
ns_model_t *th_farm_model(const char *args);

/* n x d points uniform in [-5, 5] from a fixed-seed generator, with some
 * rows at x0 = 4.95 (logL = -inf). Caller frees. */
double *th_farm_points(size_t n, size_t d, unsigned long long seed);

/* Evaluate in-process, for the reference values. */
void th_farm_inprocess(ns_model_t *model, const double *x, size_t n, double *logl);

/* 1 if the farm evaluates the n points x (d columns) without error to the
 * in-process values bit for bit; otherwise 0, after printing the error or
 * the first differing point. */
int th_farm_matches_inprocess(ns_evaluator_t *ev, ns_model_t *model, const double *x, size_t n,
                              size_t d);

/* m encoded as one ZeroMQ frame, for tests that speak the protocol as a
 * peer; exits the test program with a message if m cannot be encoded. */
struct _zframe_t;
struct _zframe_t *th_farm_frame(const ns_msg_t *m);

#endif
