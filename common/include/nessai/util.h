/*
 * nessai/util.h - small shared helpers: clocks, numerics on logs, strings.
 */
#ifndef NESSAI_UTIL_H
#define NESSAI_UTIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Monotonic wall clock in seconds. */
double ns_now(void);
/* CPU time of this process in seconds. */
double ns_cpu_time(void);

/* log(e^a + e^b), exact for -inf arguments. */
double ns_logaddexp(double a, double b);
/* log(e^a - e^b) for a >= b; NAN if a < b. */
double ns_logsubexp(double a, double b);
/* log(sum e^x_i) over n values; -inf for n = 0. */
double ns_logsumexp(const double *x, size_t n);

/* Parse a whole string as a number; 0 on success, NS_ERR_INVAL otherwise. */
int ns_parse_double(const char *s, double *out);
int ns_parse_long(const char *s, long *out);

/* strdup that returns NULL on NULL. */
char *ns_strdup(const char *s);

/* Create a directory and its parents (mkdir -p). NS_OK or NS_ERR_IO. */
int ns_mkdir_p(const char *path);

/* Process-wide stop request, set from signal handlers (async-signal-safe).
 * Long operations (flow training epochs, farm waits, the sampling loop)
 * poll ns_interrupt_pending() and return NS_ERR_INTERRUPTED promptly so the
 * caller can checkpoint at a consistent point. */
void ns_interrupt_request(int signum);
int ns_interrupt_pending(void);      /* the signal number, 0 if none */
void ns_interrupt_clear(void);

#ifdef __cplusplus
}
#endif
#endif
