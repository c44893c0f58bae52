/* util.c - clocks, log-space arithmetic, parsing, directories, interrupts. */
#include "nessai/util.h"
#include "nessai/error.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double ns_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double ns_cpu_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double ns_logaddexp(double a, double b)
{
    if (a == -INFINITY)
        return b;
    if (b == -INFINITY)
        return a;
    if (a == INFINITY || b == INFINITY)
        return INFINITY;
    double m = a > b ? a : b;
    return m + log1p(exp(-fabs(a - b)));
}

double ns_logsubexp(double a, double b)
{
    if (a < b)
        return NAN;
    if (b == -INFINITY)
        return a;
    return a + log1p(-exp(b - a));
}

double ns_logsumexp(const double *x, size_t n)
{
    double m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (x[i] > m)
            m = x[i];
    if (m == -INFINITY || isinf(m) || isnan(m))
        return m;
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += exp(x[i] - m);
    return m + log(s);
}

int ns_parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return NS_ERR_INVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE && fabs(v) == HUGE_VAL)
        return NS_ERR_INVAL;
    if (*end != '\0' || end == s)
        return NS_ERR_INVAL;
    *out = v;
    return NS_OK;
}

int ns_parse_long(const char *s, long *out)
{
    if (!s || !*s)
        return NS_ERR_INVAL;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno == ERANGE || *end != '\0' || end == s)
        return NS_ERR_INVAL;
    *out = v;
    return NS_OK;
}

char *ns_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int ns_mkdir_p(const char *path)
{
    if (!path || !*path)
        return NS_ERR_INVAL;
    char *tmp = strdup(path);
    if (!tmp)
        return NS_ERR_NOMEM;
    int rv = NS_OK;
    for (char *p = tmp + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
                rv = NS_ERR_IO;
                break;
            }
            *p = c;
            if (c == '\0')
                break;
        }
    }
    if (rv == NS_OK) {
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            rv = NS_ERR_IO;
    }
    free(tmp);
    return rv;
}

char *ns_path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char *ns_str_concat(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    char *s = malloc(n + m + 1);
    if (s) {
        memcpy(s, a, n);
        memcpy(s + n, b, m + 1);
    }
    return s;
}

/* Make old a copy of path's current content, if path exists. A hard link
 * keeps path in place, so there is no moment without it; where links are
 * not supported the file is moved. */
static int s_keep_previous(const char *path, const char *old)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (unlink(old) != 0 && errno != ENOENT)
        return -1;
    if (link(path, old) == 0)
        return 0;
    return rename(path, old);
}

int ns_write_file_atomic(const char *path, mode_t mode, unsigned flags,
                         int (*fill)(FILE *f, void *ctx), void *ctx, const char **step)
{
    char *tmp = ns_str_concat(path, ".temp");
    char *old = (flags & NS_WRITE_KEEP_OLD) ? ns_str_concat(path, ".old") : NULL;
    if (!tmp || ((flags & NS_WRITE_KEEP_OLD) && !old)) {
        free(tmp);
        free(old);
        return NS_ERR_NOMEM;
    }
    const char *at = "create";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        if (fd >= 0) {
            int saved = errno;
            close(fd);
            errno = saved;
        }
        goto fail;
    }
    at = "write";
    errno = 0;
    int bad = fill(f, ctx) != 0 || fflush(f) != 0 || ferror(f);
    if (!bad && (flags & NS_WRITE_FSYNC)) {
        at = "fsync";
        bad = fsync(fileno(f)) != 0;
    }
    if (bad) {
        int saved = errno ? errno : EIO;
        fclose(f);
        errno = saved;
        goto fail;
    }
    at = "close";
    if (fclose(f) != 0)
        goto fail;
    /* The new file is complete; only now touch the previous one. */
    at = "keep the previous file as .old for";
    if (old && s_keep_previous(path, old) != 0)
        goto fail;
    at = "rename into place";
    if (rename(tmp, path) != 0)
        goto fail;
    free(tmp);
    free(old);
    return NS_OK;

fail:;
    int saved = errno;
    unlink(tmp);
    free(tmp);
    free(old);
    errno = saved;
    if (step)
        *step = at;
    return NS_ERR_IO;
}

int ns_fsync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static volatile sig_atomic_t s_interrupt_signal = 0;

void ns_interrupt_request(int signum)
{
    s_interrupt_signal = signum ? signum : SIGTERM;
}

int ns_interrupt_pending(void)
{
    return (int)s_interrupt_signal;
}

void ns_interrupt_clear(void)
{
    s_interrupt_signal = 0;
}

int ns_exe_dir(char *buf, size_t size)
{
    if (size < 2)
        return -1;
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n <= 0 || (size_t)n >= size - 1)
        return -1;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return -1;
    *(slash == buf ? slash + 1 : slash) = '\0';
    return 0;
}
