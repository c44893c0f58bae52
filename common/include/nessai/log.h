/*
 * nessai/log.h - logging in nessai's format.
 *
 * Lines look like nessai's:  "11-24 15:04 nessai INFO    : message"
 * and go to stderr and, once ns_log_open_file() was called, to a file
 * (normally <output>/nessai.log). Thread-safe: the farm thread logs too.
 *
 * Convention: module-tagged events start with the module name,
 *   ns_log(NS_LOG_INFO, "farm", "worker joined id=%s slots=%d", ...)
 * prints "farm: worker joined id=... slots=...". module NULL prints the
 * message alone (used for nessai's own lines such as the state line).
 * Numeric code never logs: it fills a stats struct that its caller logs.
 */
#ifndef NESSAI_LOG_H
#define NESSAI_LOG_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ns_log_level {
    NS_LOG_DEBUG = 10,
    NS_LOG_INFO = 20,
    NS_LOG_WARNING = 30,
    NS_LOG_ERROR = 40,
    NS_LOG_CRITICAL = 50
} ns_log_level_t;

/* Parse "debug", "info", "warning", "error", "critical" (any case).
 * Returns 0 and sets *level, or NS_ERR_INVAL. */
int ns_log_level_parse(const char *s, ns_log_level_t *level);

/* Threshold for both sinks; default NS_LOG_INFO. */
void ns_log_set_level(ns_log_level_t level);
ns_log_level_t ns_log_get_level(void);

/* Also append to the file at path (created if missing). Returns NS_OK or
 * NS_ERR_IO. A second call replaces the file. */
int ns_log_open_file(const char *path);
void ns_log_close_file(void);

/* Silence stderr output (the file still receives lines). */
void ns_log_set_stderr(int enabled);

/* Label used in the line instead of "nessai" (the worker uses "nessai-worker"). */
void ns_log_set_label(const char *label);

/* How many ERROR and CRITICAL lines were written so far (lines below the
 * threshold are not counted): a caller whose callee failed can tell
 * whether the reason was already reported, and so report it only once. */
unsigned long ns_log_error_count(void);

void ns_log(ns_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ns_vlog(ns_log_level_t level, const char *module, const char *fmt, va_list ap);

#define ns_debug(mod, ...) ns_log(NS_LOG_DEBUG, mod, __VA_ARGS__)
#define ns_info(mod, ...) ns_log(NS_LOG_INFO, mod, __VA_ARGS__)
#define ns_warn(mod, ...) ns_log(NS_LOG_WARNING, mod, __VA_ARGS__)
#define ns_error(mod, ...) ns_log(NS_LOG_ERROR, mod, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
