/* ckpt_ctl.c - the checkpoint controller: periodic, forced and on-signal
 * checkpoints, resume, and the exit status that follows an interrupt. */
#include "checkpoint.h"
#include "ckpt_internal.h"

#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct ns_ckpt_ctl {
    char *path;            /* <output>/<resume-file> */
    char *model_name;      /* owned copies for ident */
    char *model_args;
    char *plugin_hash;
    ns_ckpt_ident_t ident; /* points at the copies above */
    int seed_given;        /* compare seeds on load */
    int resume;            /* --resume */
    double interval;       /* --checkpoint-interval, s; inf = never */
    int exit_code;         /* --checkpoint-exit-code */
    double max_runtime;    /* --max-runtime, s; NAN = none */
    double last;           /* ns_now() of the last checkpoint or start */
    int started;           /* signals installed, timer armed */
    int lock_fd;           /* holds the flock on <path>.lock, -1 if none */
    uint64_t count;        /* checkpoints written */
    int resumed;           /* this run continued from a checkpoint */
    uint64_t resumed_at;   /* the iteration it continued from */
    double startup;        /* seconds from process start to ns_ckpt_ctl_start */
};

ns_ckpt_ctl_t *ns_ckpt_ctl_new(const ns_config_t *cfg, const char *output,
                               const ns_ckpt_ident_t *id, int seed_given)
{
    ns_ckpt_ctl_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    const char *file = ns_config_str(cfg, "resume-file");
    if (!output || !*output)
        output = ".";
    if (!file || !*file)
        file = "nested_sampler_resume.ckpt";
    self->path = ns_path_join(output, file);
    self->model_name = ns_strdup(id->model_name);
    self->model_args = ns_strdup(id->model_args ? id->model_args : "");
    self->plugin_hash = ns_strdup(id->plugin_hash);
    if (!self->path || !self->model_name || !self->model_args || !self->plugin_hash) {
        ns_ckpt_ctl_destroy(&self);
        return NULL;
    }
    self->lock_fd = -1;
    self->ident = *id;
    self->ident.model_name = self->model_name;
    self->ident.model_args = self->model_args;
    self->ident.plugin_hash = self->plugin_hash;
    self->seed_given = seed_given;
    self->resume = ns_config_bool(cfg, "resume");
    self->interval = ns_config_double(cfg, "checkpoint-interval");
    self->exit_code = (int)ns_config_int(cfg, "checkpoint-exit-code");
    self->max_runtime = ns_config_is_set(cfg, "max-runtime")
                            ? ns_config_double(cfg, "max-runtime") : NAN;
    self->last = ns_now();
    return self;
}

void ns_ckpt_ctl_destroy(ns_ckpt_ctl_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ns_ckpt_ctl_t *self = *self_p;
    if (self->started) {
        ns_ckpt_max_runtime_arm(NAN);
        ns_ckpt_signals_restore();
    }
    if (self->lock_fd >= 0)
        close(self->lock_fd);  /* releases the lock */
    free(self->path);
    free(self->model_name);
    free(self->model_args);
    free(self->plugin_hash);
    free(self);
    *self_p = NULL;
}

const char *ns_ckpt_ctl_path(const ns_ckpt_ctl_t *self)
{
    return self->path;
}

uint64_t ns_ckpt_ctl_count(const ns_ckpt_ctl_t *self)
{
    return self->count;
}

/* Two coordinators on one checkpoint (a scheduler restarting a job whose
 * first instance still runs) would overwrite each other's state: the
 * first holds an exclusive lock on <path>.lock for its lifetime. The
 * kernel drops it when the process dies, SIGKILL included. */
static int s_lock(ns_ckpt_ctl_t *self, char *err, size_t errlen)
{
    size_t n = strlen(self->path) + 6;
    char *lock = malloc(n);
    if (!lock) {
        ns_errf(err, errlen, "out of memory");
        return NS_ERR_NOMEM;
    }
    snprintf(lock, n, "%s.lock", self->path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        /* No lock, no protection, but the run itself can go on; a failed
         * checkpoint write will say what is wrong with the directory. */
        ns_warn("checkpoint", "cannot create lock file path=%s error=%s", lock, strerror(errno));
        free(lock);
        return NS_OK;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            char pid[32] = "";
            ssize_t got = pread(fd, pid, sizeof pid - 1, 0);
            pid[got > 0 ? got : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            ns_errf(err, errlen,
                    "another nessai-coordinator (pid %s) is using the checkpoint %s; "
                    "wait for it to end, or give this run another --output",
                    pid[0] ? pid : "?", self->path);
            close(fd);
            free(lock);
            return NS_ERR_STATE;
        }
        ns_warn("checkpoint", "cannot lock path=%s error=%s", lock, strerror(e));
        close(fd);
        free(lock);
        return NS_OK;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        ns_debug("checkpoint", "cannot record the pid in path=%s", lock);
    self->lock_fd = fd;
    free(lock);
    return NS_OK;
}

int ns_ckpt_ctl_load(ns_ckpt_ctl_t *self, ns_ckpt_loaded_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rv = self->lock_fd >= 0 ? NS_OK : s_lock(self, err, errlen);
    if (rv != NS_OK) {
        ns_error("checkpoint", "%s", err);
        return rv;
    }
    if (!self->resume) {
        ns_info("checkpoint", "resume disabled; starting afresh path=%s", self->path);
        return NS_OK;
    }
    rv = ns_ckpt_load(self->path, &self->ident, self->seed_given, out, err, errlen);
    if (rv != NS_OK) {
        ns_error("checkpoint", "%s", err);
        return rv;
    }
    /* Without --seed the run continues with the checkpoint's seed, and
     * later checkpoints carry it too. */
    if (out->payload && !self->seed_given)
        self->ident.seed = out->seed;
    if (out->payload) {
        self->resumed = 1;
        self->resumed_at = out->iteration;
    }
    if (out->payload)
        ns_info("checkpoint", "resuming path=%s%s iteration=%llu bytes=%zu seed=%llu",
                self->path, out->from_old ? ".old" : "", (unsigned long long)out->iteration,
                out->payload_len, (unsigned long long)out->seed);
    else
        ns_info("checkpoint", "no checkpoint found; starting afresh path=%s", self->path);
    return NS_OK;
}

int ns_ckpt_ctl_start(ns_ckpt_ctl_t *self, double startup_s)
{
    self->startup = startup_s;
    int rv = ns_ckpt_signals_install();
    if (rv != NS_OK) {
        ns_error("checkpoint", "cannot install signal handlers");
        return rv;
    }
    self->started = 1;
    if (!isnan(self->max_runtime)) {
        if ((rv = ns_ckpt_max_runtime_arm(self->max_runtime)) != NS_OK) {
            ns_error("checkpoint", "cannot arm --max-runtime %g", self->max_runtime);
            return NS_ERR_STATE;
        }
        ns_info("checkpoint", "max-runtime armed seconds=%g exit_code=%d",
                self->max_runtime, self->exit_code);
    }
    self->last = ns_now();
    return NS_OK;
}

static int s_write(ns_ckpt_ctl_t *self, uint64_t iteration, ns_ckpt_save_fn save,
                   void *state, const char *why)
{
    double t0 = ns_now();
    ns_buf_t buf;
    ns_buf_init(&buf);
    int rv = save(state, &buf);
    if (rv == NS_OK)
        rv = ns_buf_error(&buf);
    if (rv != NS_OK) {
        ns_error("checkpoint", "cannot serialise the state reason=%s error=%s", why,
                 ns_strerror(rv));
        ns_buf_free(&buf);
        return rv;
    }
    char err[512];
    rv = ns_ckpt_write(self->path, &self->ident, iteration, buf.data, buf.len, err, sizeof err);
    if (rv != NS_OK) {
        ns_error("checkpoint", "write failed reason=%s: %s", why, err);
    } else {
        self->count++;
        ns_info("checkpoint", "written reason=%s iteration=%llu bytes=%zu seconds=%.3f path=%s",
                why, (unsigned long long)iteration, buf.len, ns_now() - t0, self->path);
    }
    self->last = ns_now();  /* also after a failure: retry one interval later */
    ns_buf_free(&buf);
    return rv;
}

int ns_ckpt_ctl_iteration(ns_ckpt_ctl_t *self, uint64_t iteration,
                          ns_ckpt_save_fn save, void *state)
{
    if (ns_interrupt_pending())
        return NS_ERR_INTERRUPTED;
    /* CZMQ installs SIGINT/SIGTERM handlers of its own when its first
     * socket is made, which may be after ns_ckpt_ctl_start(); a signal
     * would then be lost to us. Three sigaction calls per iteration are
     * cheap next to an iteration. */
    if (self->started && !ns_ckpt_signals_installed()) {
        ns_debug("checkpoint", "signal handlers were replaced; installing them again");
        if (ns_ckpt_signals_install() != NS_OK)
            ns_error("checkpoint", "cannot install signal handlers");
    }
    if (isinf(self->interval) || ns_now() - self->last < self->interval)
        return NS_OK;
    s_write(self, iteration, save, state, "periodic");
    return NS_OK;
}

int ns_ckpt_ctl_save(ns_ckpt_ctl_t *self, uint64_t iteration,
                     ns_ckpt_save_fn save, void *state)
{
    return s_write(self, iteration, save, state, "forced");
}

static const char *s_signame(int sig)
{
    switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGALRM: return "SIGALRM";
    default: return "signal";
    }
}

int ns_ckpt_ctl_interrupted(ns_ckpt_ctl_t *self, uint64_t iteration,
                            ns_ckpt_save_fn save, void *state)
{
    int sig = ns_interrupt_pending();
    ns_warn("checkpoint", "stopping on %s (%d)%s", s_signame(sig), sig,
            sig == SIGALRM && !isnan(self->max_runtime) ? " max-runtime reached" : "");
    /* A --max-runtime below start-up plus the longest single step (a flow
     * training is redone from its start) evicts forever without progress,
     * and one shorter than start-up spends most of every resume starting:
     * say so, so the user can raise it instead of burning the allocation. */
    if (sig == SIGALRM && !isnan(self->max_runtime) && self->resumed) {
        if (iteration <= self->resumed_at)
            ns_warn("checkpoint",
                    "no progress since the last resume (still iteration %llu): --max-runtime "
                    "%g s is too short for start-up plus one step; raise it or this job will "
                    "never finish", (unsigned long long)iteration, self->max_runtime);
        else if (self->startup > self->max_runtime)
            ns_warn("checkpoint",
                    "start-up took %.2f s, longer than the %g s of sampling --max-runtime "
                    "allows (%llu iterations since the last resume): --max-runtime %g s is "
                    "too short; raise it so that start-up is a small part of each resume",
                    self->startup, self->max_runtime,
                    (unsigned long long)(iteration - self->resumed_at), self->max_runtime);
    }
    int written = 0;
    if (save)
        written = s_write(self, iteration, save, state, "signal") == NS_OK;
    else
        ns_error("checkpoint", "nothing to checkpoint yet; the run is not resumable");
    int status = ns_ckpt_exit_status_after_signal(written, self->exit_code);
    ns_info("checkpoint", "exiting status=%d checkpoint=%s", status, written ? "yes" : "no");
    return status;
}
