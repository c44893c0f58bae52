/* proc_util.c - see proc_util.h. */
#define _GNU_SOURCE
#include "proc_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Children started and not reaped yet: safe to signal (a pid is only
 * recycled after it was reaped). */
#define S_MAX_CHILDREN 64
static pid_t s_children[S_MAX_CHILDREN];

static void s_track(pid_t pid)
{
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] == 0) {
            s_children[i] = pid;
            return;
        }
}

static void s_untrack(pid_t pid)
{
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] == pid)
            s_children[i] = 0;
}

void tp_kill_all(void)
{
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] > 0) {
            kill(s_children[i], SIGKILL);
            waitpid(s_children[i], NULL, 0);
            s_children[i] = 0;
        }
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int tp_spawn(tp_proc_t *p, char *const argv[], const char *stderr_path)
{
    memset(p, 0, sizeof *p);
    p->out = -1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        if (stderr_path && strcmp(stderr_path, TP_MERGE) == 0) {
            dup2(fds[1], 2);
        } else if (stderr_path) {
            int fd = open(stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0)
                dup2(fd, 2);
        }
        /* Start with default dispositions and nothing blocked. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    p->pid = pid;
    p->out = fds[0];
    s_track(pid);
    return 0;
}

void tp_set_log(tp_proc_t *p, const char *path)
{
    snprintf(p->log, sizeof p->log, "%s", path ? path : "");
}

/* One complete line from the buffer into line; 1 if found. */
static int s_take_line(tp_proc_t *p, char *line, size_t cap)
{
    char *nl = memchr(p->buf, '\n', p->len);
    if (!nl)
        return 0;
    size_t n = (size_t)(nl - p->buf);
    size_t c = n < cap - 1 ? n : cap - 1;
    memcpy(line, p->buf, c);
    line[c] = '\0';
    memmove(p->buf, nl + 1, p->len - n - 1);
    p->len -= n + 1;
    if (p->log[0]) {
        FILE *fp = fopen(p->log, "a");
        if (fp) {
            fprintf(fp, "%s\n", line);
            fclose(fp);
        }
    }
    return 1;
}

/* Read more bytes into the buffer, waiting up to end; 0 on EOF/timeout. */
static int s_fill(tp_proc_t *p, double end)
{
    if (p->out < 0)
        return 0;
    double left = end - s_now();
    if (left <= 0)
        return 0;
    struct pollfd pfd = {p->out, POLLIN, 0};
    int r = poll(&pfd, 1, (int)(left * 1000) + 1);
    if (r <= 0)
        return 1;  /* EINTR or timeout: the caller checks the clock */
    if (p->len == sizeof p->buf)
        p->len = 0;  /* a line longer than the buffer: drop it */
    ssize_t got = read(p->out, p->buf + p->len, sizeof p->buf - p->len);
    if (got <= 0) {
        close(p->out);
        p->out = -1;
        return 0;
    }
    p->len += (size_t)got;
    return 1;
}

int tp_wait_text(tp_proc_t *p, const char *needle, char *out, size_t cap, double timeout)
{
    double end = s_now() + timeout;
    char line[2048];
    for (;;) {
        while (s_take_line(p, line, sizeof line))
            if (strstr(line, needle)) {
                if (out && cap)
                    snprintf(out, cap, "%s", line);
                return 1;
            }
        if (!s_fill(p, end))
            return 0;
    }
}

long tp_wait_line(tp_proc_t *p, const char *prefix, long min, double timeout)
{
    double end = s_now() + timeout;
    char line[512];
    size_t plen = strlen(prefix);
    for (;;) {
        while (s_take_line(p, line, sizeof line)) {
            if (strncmp(line, prefix, plen) == 0) {
                long v = strtol(line + plen, NULL, 10);
                if (v >= min)
                    return v;
            }
        }
        if (!s_fill(p, end))
            return -1;
    }
}

int tp_wait_exit(tp_proc_t *p, double timeout)
{
    if (p->pid <= 0)
        return -1;
    double end = s_now() + timeout;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid)
            break;
        if (s_now() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            break;
        }
        /* Drain stdout so the child never blocks on a full pipe; the read
         * also paces this loop (poll with a short timeout). */
        if (p->out >= 0) {
            char line[2048];
            s_fill(p, s_now() + 0.02);
            while (s_take_line(p, line, sizeof line))
                ;
        } else {
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
    }
    s_untrack(p->pid);
    p->pid = 0;
    if (p->out >= 0) {
        close(p->out);
        p->out = -1;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int tp_alive(tp_proc_t *p)
{
    if (p->pid <= 0)
        return 0;
    if (waitpid(p->pid, NULL, WNOHANG) == 0)
        return 1;
    s_untrack(p->pid);
    p->pid = 0;
    return 0;
}

int tp_signal_and_wait(tp_proc_t *p, int sig, double timeout)
{
    if (p->pid > 0)
        kill(p->pid, sig);
    return tp_wait_exit(p, timeout);
}

char *tp_slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        size_t got = fread(s, 1, (size_t)n, fp);
        s[got] = '\0';
    }
    fclose(fp);
    return s;
}

void tp_rm_rf(const char *dir)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int tp_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int tp_flip_bit(const char *path, long at, int bit)
{
    FILE *fp = fopen(path, "r+b");
    if (!fp)
        return -1;
    int rc = -1;
    if (fseek(fp, at, SEEK_SET) == 0) {
        int c = fgetc(fp);
        if (c != EOF && fseek(fp, at, SEEK_SET) == 0 && fputc(c ^ (1 << bit), fp) != EOF)
            rc = 0;
    }
    if (fclose(fp) != 0)
        rc = -1;
    return rc;
}

int tp_mkdtemp(char *buf, size_t cap, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(buf, cap, "%s/%s-", tmp && *tmp ? tmp : "/tmp", name);
    if (n < 0 || (size_t)n + 7 > cap)
        return -1;
    memset(buf + n, 'X', 6); /* mkdtemp's template: six trailing X */
    buf[n + 6] = '\0';
    return mkdtemp(buf) ? 0 : -1;
}
