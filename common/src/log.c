/* log.c - nessai-format log lines to stderr and a file, thread-safe. */
#include "nessai/log.h"
#include "nessai/error.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static ns_log_level_t s_level = NS_LOG_INFO;
static FILE *s_file = NULL;
static int s_stderr = 1;
static char s_label[64] = "nessai";
static unsigned long s_errors;   /* ERROR and CRITICAL lines written */

static const struct {
    const char *name;
    ns_log_level_t level;
} s_levels[] = {
    {"debug", NS_LOG_DEBUG},     {"info", NS_LOG_INFO},   {"warning", NS_LOG_WARNING},
    {"warn", NS_LOG_WARNING},    {"error", NS_LOG_ERROR}, {"critical", NS_LOG_CRITICAL},
};

int ns_log_level_parse(const char *s, ns_log_level_t *level)
{
    if (!s)
        return NS_ERR_INVAL;
    for (size_t i = 0; i < sizeof s_levels / sizeof s_levels[0]; i++) {
        if (strcasecmp(s, s_levels[i].name) == 0) {
            *level = s_levels[i].level;
            return NS_OK;
        }
    }
    return NS_ERR_INVAL;
}

static const char *s_level_name(ns_log_level_t level)
{
    switch (level) {
    case NS_LOG_DEBUG: return "DEBUG";
    case NS_LOG_INFO: return "INFO";
    case NS_LOG_WARNING: return "WARNING";
    case NS_LOG_ERROR: return "ERROR";
    default: return "CRITICAL";
    }
}

void ns_log_set_level(ns_log_level_t level) { s_level = level; }
ns_log_level_t ns_log_get_level(void) { return s_level; }
void ns_log_set_stderr(int enabled) { s_stderr = enabled; }

void ns_log_set_label(const char *label)
{
    pthread_mutex_lock(&s_lock);
    snprintf(s_label, sizeof s_label, "%s", label ? label : "nessai");
    pthread_mutex_unlock(&s_lock);
}

int ns_log_open_file(const char *path)
{
    FILE *f = fopen(path, "a");
    if (!f)
        return NS_ERR_IO;
    setvbuf(f, NULL, _IOLBF, 0);
    pthread_mutex_lock(&s_lock);
    if (s_file)
        fclose(s_file);
    s_file = f;
    pthread_mutex_unlock(&s_lock);
    return NS_OK;
}

void ns_log_close_file(void)
{
    pthread_mutex_lock(&s_lock);
    if (s_file)
        fclose(s_file);
    s_file = NULL;
    pthread_mutex_unlock(&s_lock);
}

void ns_vlog(ns_log_level_t level, const char *module, const char *fmt, va_list ap)
{
    if (level < s_level)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char stamp[48];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    localtime_r(&now.tv_sec, &tm);
    /* seconds and milliseconds: farm events (heartbeats, deadlines) are
     * sub-second, and coordinator and worker logs are read side by side */
    size_t len = strftime(stamp, sizeof stamp, "%m-%d %H:%M:%S", &tm);
    snprintf(stamp + len, sizeof stamp - len, ".%03ld", (long)(now.tv_nsec / 1000000));
    pthread_mutex_lock(&s_lock);
    if (level >= NS_LOG_ERROR)
        s_errors++;
    /* nessai: "%(asctime)s nessai %(levelname)-8s: %(message)s" */
    if (s_stderr)
        fprintf(stderr, "%s %s %-8s: %s%s%s\n", stamp, s_label, s_level_name(level),
                module ? module : "", module ? ": " : "", msg);
    if (s_file)
        fprintf(s_file, "%s %s %-8s: %s%s%s\n", stamp, s_label, s_level_name(level),
                module ? module : "", module ? ": " : "", msg);
    pthread_mutex_unlock(&s_lock);
}

unsigned long ns_log_error_count(void)
{
    pthread_mutex_lock(&s_lock);
    unsigned long n = s_errors;
    pthread_mutex_unlock(&s_lock);
    return n;
}

void ns_log(ns_log_level_t level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ns_vlog(level, module, fmt, ap);
    va_end(ap);
}
