/*
 * nessai/util.h - small shared helpers: clocks, numerics on logs, strings.
 */
#ifndef NESSAI_UTIL_H
#define NESSAI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

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

/* a followed by b in a new allocation (free it); NULL when out of memory. */
char *ns_str_concat(const char *a, const char *b);
/* The directory of the running program (/proc/self/exe) into buf; 0, or
 * -1 when it cannot be read or does not fit. */
int ns_exe_dir(char *buf, size_t size);
/* "dir/name" in a new allocation (free it); NULL when out of memory. */
char *ns_path_join(const char *dir, const char *name);

/* Flags of ns_write_file_atomic. */
#define NS_WRITE_FSYNC 1u    /* fsync the new file before it replaces path */
#define NS_WRITE_KEEP_OLD 2u /* the file replaced stays as <path>.old */

/* Replace path atomically: fill(f, ctx) writes the content to <path>.temp
 * (created with mode, less the umask), which is then renamed onto path, so
 * a reader sees the previous file or the new one, never part of one. fill
 * returns 0, or nonzero when it could not write. With NS_WRITE_KEEP_OLD
 * the previous path (if any) is kept as <path>.old, by a hard link where
 * the file system has them (path never goes missing), else by a rename.
 * NS_OK; NS_ERR_NOMEM; or NS_ERR_IO with errno set and <path>.temp
 * removed, *step (if step is not NULL) then naming what failed: "create",
 * "write", "fsync", "close", "keep the previous file as .old for" or
 * "rename into place". The directory is not fsync'ed: ns_fsync_dir. */
int ns_write_file_atomic(const char *path, mode_t mode, unsigned flags,
                         int (*fill)(FILE *f, void *ctx), void *ctx, const char **step);
/* fsync the directory holding path (so that renames in it survive a power
 * cut); 0, or -1 with errno set. */
int ns_fsync_dir(const char *path);

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
