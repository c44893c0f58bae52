/* util.c - clocks, log-space arithmetic, parsing, directories, interrupts. */
#include "nessai/util.h"
#include "nessai/error.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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
