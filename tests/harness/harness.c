/* harness.c - see harness.h. */
#define _GNU_SOURCE   /* pipe2, nftw */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- children started and not reaped yet: safe to signal (a pid is
 * only recycled after it was reaped) ---- */

#define S_MAX_CHILDREN 256
static pid_t s_children[S_MAX_CHILDREN];
static int s_atexit_set;

static void s_track(pid_t pid)
{
    if (!s_atexit_set) {
        s_atexit_set = 1;
        atexit(th_kill_all);
    }
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

void th_kill_all(void)
{
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] > 0) {
            kill(s_children[i], SIGKILL);
            waitpid(s_children[i], NULL, 0);
            s_children[i] = 0;
        }
}

double th_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void s_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* In the child, after fork: default signal mask, then exec; a program
 * that cannot be started is named on stderr, exit 127. */
static void s_exec(const char *const *argv, char *const *envp)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (envp)
        execve(argv[0], (char *const *)argv, envp);
    else
        execv(argv[0], (char *const *)argv);
    dprintf(2, "harness: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* ---- a child with its stdout on a pipe ---- */

int th_spawn(th_proc_t *p, char *const argv[], const char *stderr_path)
{
    memset(p, 0, sizeof *p);
    p->out = -1;
    if (access(argv[0], X_OK) != 0) {
        fprintf(stderr, "harness: cannot run %s: %s\n", argv[0], strerror(errno));
        return -1;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        if (stderr_path && strcmp(stderr_path, TH_MERGE) == 0) {
            dup2(fds[1], 2);
        } else if (stderr_path) {
            int fd = open(stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0)
                dup2(fd, 2);
        }
        s_exec((const char *const *)argv, NULL);
    }
    close(fds[1]);
    p->pid = pid;
    p->out = fds[0];
    s_track(pid);
    return 0;
}

void th_set_log(th_proc_t *p, const char *path)
{
    snprintf(p->log, sizeof p->log, "%s", path ? path : "");
}

/* One complete line from the buffer into line; 1 if found. */
static int s_take_line(th_proc_t *p, char *line, size_t cap)
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
static int s_fill(th_proc_t *p, double end)
{
    if (p->out < 0)
        return 0;
    double left = end - th_now();
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

int th_wait_text(th_proc_t *p, const char *needle, char *out, size_t cap, double timeout)
{
    double end = th_now() + timeout;
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

long th_wait_line(th_proc_t *p, const char *prefix, long min, double timeout)
{
    double end = th_now() + timeout;
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

static int s_status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int th_wait_exit(th_proc_t *p, double timeout)
{
    if (p->pid <= 0)
        return -1;
    double end = th_now() + timeout;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid)
            break;
        if (th_now() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            break;
        }
        /* Drain stdout so the child never blocks on a full pipe; the read
         * also paces this loop (poll with a short timeout). */
        if (p->out >= 0) {
            char line[2048];
            s_fill(p, th_now() + 0.02);
            while (s_take_line(p, line, sizeof line))
                ;
        } else {
            s_sleep_ms(5);
        }
    }
    s_untrack(p->pid);
    p->pid = 0;
    if (p->out >= 0) {
        close(p->out);
        p->out = -1;
    }
    return s_status_code(status);
}

int th_alive(th_proc_t *p)
{
    if (p->pid <= 0)
        return 0;
    if (waitpid(p->pid, NULL, WNOHANG) == 0)
        return 1;
    s_untrack(p->pid);
    p->pid = 0;
    return 0;
}

int th_signal_and_wait(th_proc_t *p, int sig, double timeout)
{
    if (p->pid > 0)
        kill(p->pid, sig);
    return th_wait_exit(p, timeout);
}

/* ---- a child without a pipe ---- */

pid_t th_spawn_pid(const char *const *argv, const char *const *env, const char *out_path,
                   int flags)
{
    if (access(argv[0], X_OK) != 0) {
        fprintf(stderr, "harness: cannot run %s: %s\n", argv[0], strerror(errno));
        return -1;
    }
    char **envp = NULL;
    if (env && env[0]) {
        size_t ne = 0, nx = 0;
        while (environ[ne])
            ne++;
        while (env[nx])
            nx++;
        envp = calloc(ne + nx + 1, sizeof *envp);
        if (!envp)
            return -1;
        for (size_t i = 0; i < ne; i++)
            envp[i] = environ[i];
        for (size_t i = 0; i < nx; i++)
            envp[ne + i] = (char *)env[i];
    }
    int fd = -1;
    if (out_path && (fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
        fprintf(stderr, "harness: cannot write %s: %s\n", out_path, strerror(errno));
        free(envp);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (fd >= 0) {
            if (!(flags & TH_STDERR_ONLY))
                dup2(fd, 1);
            dup2(fd, 2);
        }
        s_exec(argv, envp);
    }
    if (fd >= 0)
        close(fd);
    free(envp);
    if (pid > 0)
        s_track(pid);
    return pid;
}

int th_wait_pid(pid_t pid, double timeout_s, int *code)
{
    double until = th_now() + timeout_s;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            s_untrack(pid);
            if (code)
                *code = s_status_code(status);
            return 1;
        }
        if (r < 0 || th_now() > until)
            return 0;
        s_sleep_ms(10);
    }
}

void th_kill_pid(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s_untrack(pid);
}

int th_run(const char *const *argv, const char *out_path, double timeout_s)
{
    pid_t pid = th_spawn_pid(argv, NULL, out_path, 0);
    if (pid < 0)
        return -1;
    int code = -1;
    if (!th_wait_pid(pid, timeout_s, &code)) {
        th_kill_pid(pid);
        return -1;
    }
    return code;
}

int th_wait_for(int (*cond)(void *), void *arg, double timeout_s)
{
    double until = th_now() + timeout_s;
    while (!cond(arg)) {
        if (th_now() > until)
            return 0;
        s_sleep_ms(10);
    }
    return 1;
}

/* ---- /proc ---- */

/* State letter and parent of pid from /proc/PID/stat; 0 if it is gone. The
 * command name may hold spaces and parentheses: parse after the last ')'. */
static char s_proc_stat(int pid, int *ppid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *rp = strrchr(buf, ')');
    char state;
    int pp;
    if (!rp || sscanf(rp + 2, "%c %d", &state, &pp) != 2)
        return 0;
    if (ppid)
        *ppid = pp;
    return state;
}

char th_proc_state(int pid) { return s_proc_stat(pid, NULL); }

size_t th_proc_children(int parent, int *out, size_t max)
{
    size_t n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        int pid = atoi(e->d_name), ppid = 0;
        if (pid > 0 && s_proc_stat(pid, &ppid) && ppid == parent)
            out[n++] = pid;
    }
    if (d)
        closedir(d);
    return n;
}

/* ---- endpoints ---- */

int th_connect_endpoint(const char *line, char *ep, size_t cap)
{
    const char *p = strstr(line, "--connect tcp://");
    if (!p || cap == 0)
        return 0;
    p += strlen("--connect ");
    size_t n = strcspn(p, " \t\r\n");
    if (n == 0 || n >= cap)
        return 0;
    memcpy(ep, p, n);
    ep[n] = '\0';
    return 1;
}

int th_wait_endpoint(th_proc_t *p, char *ep, size_t cap, double timeout)
{
    char line[2048];
    double end = th_now() + timeout;
    while (th_wait_text(p, "--connect tcp://", line, sizeof line, end - th_now()))
        if (th_connect_endpoint(line, ep, cap))
            return 1;
    return 0;
}

int th_wait_endpoint_in_file(const char *path, char *ep, size_t cap, double timeout)
{
    double end = th_now() + timeout;
    for (;;) {
        char line[2048];
        int found = 0;
        FILE *f = fopen(path, "r");
        while (f && !found && fgets(line, sizeof line, f))
            found = th_connect_endpoint(line, ep, cap);
        if (f)
            fclose(f);
        if (found)
            return 1;
        if (th_now() > end)
            return 0;
        s_sleep_ms(10);
    }
}

int th_endpoint_port(const char *ep)
{
    const char *colon = ep ? strrchr(ep, ':') : NULL;
    if (!colon || strncmp(ep, "tcp://", 6) != 0)
        return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return (end != colon + 1 && *end == '\0' && port > 0 && port < 65536) ? (int)port : -1;
}

/* ---- files and directories ---- */

static int s_template(char *buf, size_t cap, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(buf, cap, "%s/%s-", tmp && *tmp ? tmp : "/tmp", name);
    if (n < 0 || (size_t)n + 7 > cap)
        return -1;
    memset(buf + n, 'X', 6); /* mkdtemp's and mkstemp's template: six trailing X */
    buf[n + 6] = '\0';
    return 0;
}

int th_mkdtemp(char *buf, size_t cap, const char *name)
{
    return s_template(buf, cap, name) == 0 && mkdtemp(buf) ? 0 : -1;
}

int th_tmpfile(char *buf, size_t cap, const char *tag)
{
    char name[128];
    snprintf(name, sizeof name, "nessai-%s", tag);
    if (s_template(buf, cap, name) != 0)
        return -1;
    int fd = mkstemp(buf);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void th_rm_rf(const char *path)
{
    nftw(path, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

int th_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

long th_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

char *th_slurp(const char *path)
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

int th_file_contains(const char *path, const char *needle)
{
    char *s = th_slurp(path);
    int found = s && strstr(s, needle) != NULL;
    free(s);
    return found;
}

int th_file_line(const char *path, const char *prefix, char *line, size_t cap)
{
    FILE *f = fopen(path, "r");
    int found = 0;
    while (f && fgets(line, (int)cap, f))
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            found = 1;
            break;
        }
    if (f)
        fclose(f);
    return found;
}

int th_flip_bit(const char *path, long at, int bit)
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

/* ---- randomised tests ---- */

unsigned th_seed(const char *what)
{
    const char *e = getenv("NESSAI_TEST_SEED");
    unsigned seed;
    if (e && *e) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(e, &end, 10);
        if (errno || *end || v > 0xffffffffUL || e[0] == '-') {
            fprintf(stderr, "NESSAI_TEST_SEED must be a whole number from 0 to 4294967295, "
                            "got '%s'\n", e);
            exit(2);
        }
        seed = (unsigned)v;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (unsigned)(ts.tv_sec ^ (ts.tv_nsec >> 10) ^ ((long)getpid() << 16));
    }
    fprintf(stderr, "%s: seed %u%s (NESSAI_TEST_SEED=%u repeats it)\n", what, seed,
            e && *e ? " from NESSAI_TEST_SEED" : "", seed);
    return seed;
}

/* ---- tolerances ---- */

/* Doubles mapped onto a line of integers that keeps their order. */
static int64_t s_ordered(double x)
{
    int64_t i;
    memcpy(&i, &x, sizeof i);
    return i < 0 ? INT64_MIN - i : i;
}

uint64_t th_ulp_distance(double a, double b)
{
    if (isnan(a) || isnan(b))
        return UINT64_MAX;
    int64_t x = s_ordered(a), y = s_ordered(b);
    return x > y ? (uint64_t)x - (uint64_t)y : (uint64_t)y - (uint64_t)x;
}
