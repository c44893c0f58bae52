/* proc_util.h - start real processes, read their progress lines, signal
 * them and collect their exit status; shared by the process-level tests. */
#ifndef NESSAI_TEST_PROC_UTIL_H
#define NESSAI_TEST_PROC_UTIL_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;          /* the child, 0 once reaped */
    int out;            /* read end of its stdout, -1 when closed */
    char buf[8192];     /* unread stdout bytes */
    size_t len;
    char log[512];      /* copy of every line read, "" for none */
} tp_proc_t;

/* Start argv[0] with stdout to a pipe and stderr to stderr_path (NULL:
 * inherited; TP_MERGE: into the same pipe as stdout). 0 on success. */
#define TP_MERGE "<stdout>"
int tp_spawn(tp_proc_t *p, char *const argv[], const char *stderr_path);
/* Read stdout lines until one starts with prefix and its number is >=
 * min; returns that number, or -1 on EOF or after timeout seconds. */
long tp_wait_line(tp_proc_t *p, const char *prefix, long min, double timeout);
/* Read lines until one contains needle; 1 if found (copied into line
 * when line is not NULL), 0 on EOF or after timeout seconds. */
int tp_wait_text(tp_proc_t *p, const char *needle, char *line, size_t cap, double timeout);
/* Where tp_wait_* copy every line they read (NULL: nowhere). */
void tp_set_log(tp_proc_t *p, const char *path);
/* Wait for exit (timeout seconds, then SIGKILL). Returns the exit code,
 * or 128 + signal number when killed by a signal. */
int tp_wait_exit(tp_proc_t *p, double timeout);
/* Send sig, then wait as tp_wait_exit. */
int tp_signal_and_wait(tp_proc_t *p, int sig, double timeout);
/* 1 while the child runs; reaps it (and forgets it) once it has exited. */
int tp_alive(tp_proc_t *p);
/* SIGKILL and reap every child started with tp_spawn and not yet reaped
 * (for test teardown after a failure). Only unreaped children are
 * signalled, so a recycled pid is never hit. */
void tp_kill_all(void);
/* rm -rf dir (test scratch space). */
void tp_rm_rf(const char *dir);
/* 1 if path exists. */
int tp_exists(const char *path);
/* Flip bit (0-7) of the byte at offset at; 0 on success. */
int tp_flip_bit(const char *path, long at, int bit);
/* Whole file into a malloc'ed string (NULL if unreadable). */
char *tp_slurp(const char *path);
/* A fresh private directory $TMPDIR/<name>-?????? (or under /tmp), made
 * with mkdtemp; its path goes into buf. 0, or -1 when it cannot be made. */
int tp_mkdtemp(char *buf, size_t cap, const char *name);

#endif
