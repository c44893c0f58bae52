/*
 * farm_testutil.h - helpers for the farm tests: real worker processes on
 * loopback, waiting on conditions with timeouts.
 */
#ifndef FARM_TESTUTIL_H
#define FARM_TESTUTIL_H

#include <stddef.h>
#include <sys/types.h>
#include "farm.h"
#include "nessai/options.h"
#include "nessai/plugin.h"

/* Start build/bin/nessai-worker --connect endpoint plus extra arguments
 * (NULL-terminated, may be NULL) with extra "NAME=value" environment
 * entries (NULL-terminated, may be NULL); stderr goes to stderr_path (NULL:
 * inherited). Returns the pid, or -1. */
pid_t ft_spawn_worker(const char *endpoint, const char *const *args, const char *const *env,
                      const char *stderr_path);

/* Wait for pid to exit. Returns 1 and its exit code in *code (128 + signal
 * if killed), or 0 on timeout. */
int ft_wait_exit(pid_t pid, double timeout_s, int *code);

/* SIGKILL and reap, ignoring errors. */
void ft_kill(pid_t pid);

/* 1 if the file contains needle. */
int ft_file_contains(const char *path, const char *needle);

/* A fresh temporary file name (the file exists, empty). */
void ft_tmpfile(char *out, size_t size, const char *tag);

/* Remove a directory tree (test output), ignoring errors. */
void ft_rmtree(const char *path);

/* A farm option set: pairs name, value, ..., NULL. Caller owns. */
ns_config_t *ft_farm_config(const char *first, ...);

/* Load the test model (farmtest) with these --model-args. */
ns_model_t *ft_model(const char *args);

/* n x d points uniform in [-5, 5] from a fixed-seed generator, with some
 * rows at x0 = 4.95 (logL = -inf). Caller frees. */
double *ft_points(size_t n, size_t d, unsigned long long seed);

/* Evaluate in-process, for the reference values. */
void ft_inprocess(ns_model_t *model, const double *x, size_t n, double *logl);

/* Wait until cond(arg) != 0, polling every 10 ms. 1 if it held in time. */
int ft_wait_for(int (*cond)(void *), void *arg, double timeout_s);

#endif
