/* pool.c - start and stop local nessai-worker processes. */
#include "pool.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"

#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct ns_pool {
    pid_t *pids;      /* started workers */
    int *running;     /* 1 until reaped */
    size_t n;
    char *argv[12];   /* how they were started: the farm's strings, but these two */
    char parent[32];
    char *path;       /* the worker program */
};

static int s_try(const char *dir, char *out, size_t size)
{
    int w = snprintf(out, size, "%s/nessai-worker", dir);
    return w > 0 && (size_t)w < size && access(out, X_OK) == 0;
}

int ns_pool_find_worker(const char *given, const char *argv0, char *out, size_t size,
                        char *err, size_t errlen)
{
    if (given) {
        if (access(given, X_OK) != 0) {
            snprintf(err, errlen, "--worker-path %s is not an executable file", given);
            return NS_ERR_INVAL;
        }
        snprintf(out, size, "%s", given);
        return NS_OK;
    }
    char self[4096];
    if (ns_exe_dir(self, sizeof self) == 0 && s_try(self, out, size))
        return NS_OK;
    if (argv0 && strchr(argv0, '/')) {
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", argv0);
        if (s_try(dirname(copy), out, size))
            return NS_OK;
    }
    snprintf(err, errlen, "cannot find nessai-worker next to this program; give its path "
             "with --worker-path");
    return NS_ERR_INVAL;
}

int ns_pool_new(const char *worker_path, const char *endpoint, const char *model,
                const char *keys, size_t n, ns_pool_t **out, char *err, size_t errlen)
{
    *out = NULL;
    ns_pool_t *self = calloc(1, sizeof *self);
    if (!self || !(self->pids = calloc(n, sizeof *self->pids))
        || !(self->running = calloc(n, sizeof *self->running))) {
        ns_pool_destroy(&self);
        snprintf(err, errlen, "out of memory starting %zu local workers", n);
        return NS_ERR_NOMEM;
    }
    snprintf(self->parent, sizeof self->parent, "%d", (int)getpid());
    if (!(self->path = ns_strdup(worker_path))) {
        ns_pool_destroy(&self);
        snprintf(err, errlen, "out of memory starting %zu local workers", n);
        return NS_ERR_NOMEM;
    }
    const char *level = ns_log_get_level() <= NS_LOG_DEBUG ? "debug" : "warning";
    char *argv[12] = {self->path, "--connect", (char *)endpoint, "--parent-pid",
                      self->parent, "--log-level", (char *)level, "--model", (char *)model, NULL};
    if (keys) {
        argv[9] = "--keys";
        argv[10] = (char *)keys;
    }
    memcpy(self->argv, argv, sizeof argv);
    for (size_t i = 0; i < n; i++) {
        pid_t pid;
        int rc = posix_spawn(&pid, self->path, NULL, NULL, argv, environ);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start %s: %s", worker_path, strerror(rc));
            ns_pool_destroy(&self);
            return NS_ERR_IO;
        }
        self->pids[self->n] = pid;
        self->running[self->n] = 1;
        self->n++;
    }
    *out = self;
    return NS_OK;
}

static size_t s_reap(ns_pool_t *self, int options)
{
    size_t left = 0;
    for (size_t i = 0; i < self->n; i++) {
        if (!self->running[i])
            continue;
        int status;
        pid_t r = waitpid(self->pids[i], &status, options);
        if (r == self->pids[i] || (r < 0 && errno == ECHILD))
            self->running[i] = 0;
        else
            left++;
    }
    return left;
}

int ns_pool_respawn(ns_pool_t *self, int old_pid)
{
    if (!self)
        return -1;
    for (size_t i = 0; i < self->n; i++) {
        if (self->pids[i] != old_pid || !self->running[i])
            continue;
        waitpid(self->pids[i], NULL, 0);   /* it has exited: this does not block */
        self->running[i] = 0;
        pid_t pid;
        if (posix_spawn(&pid, self->argv[0], NULL, NULL, self->argv, environ) != 0)
            return -1;
        self->pids[i] = pid;
        self->running[i] = 1;
        return (int)pid;
    }
    return -1;
}

void ns_pool_wait(ns_pool_t *self, double timeout_s)
{
    if (!self)
        return;
    double until = ns_now() + timeout_s;
    while (s_reap(self, WNOHANG) > 0 && ns_now() < until)
        usleep(10000);
    for (size_t i = 0; i < self->n; i++)
        if (self->running[i])
            kill(self->pids[i], SIGKILL);
    s_reap(self, 0);
}

void ns_pool_destroy(ns_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ns_pool_t *self = *self_p;
    if (self->pids && self->running)
        ns_pool_wait(self, 0);
    free(self->pids);
    free(self->running);
    free(self->path);
    free(self);
    *self_p = NULL;
}

size_t ns_pool_size(const ns_pool_t *self)
{
    return self ? self->n : 0;
}

int ns_pool_pid(const ns_pool_t *self, size_t i)
{
    return (self && i < self->n) ? (int)self->pids[i] : -1;
}
