/*
 * harness.h - the test harness shared by every test program: child
 * processes (start, read their output, signal, wait with a timeout, kill),
 * endpoints reported by children, temporary files and directories, file
 * contents, tolerance checks, /proc, and the seed of randomised tests.
 * Prefix th_. Never used by the programs under test.
 */
#ifndef NESSAI_TEST_HARNESS_H
#define NESSAI_TEST_HARNESS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* ---- processes ---- */

/* A child whose stdout is read line by line through a pipe. */
typedef struct {
    pid_t pid;          /* the child, 0 once reaped */
    int out;            /* read end of its stdout, -1 when closed */
    char buf[8192];     /* unread stdout bytes */
    size_t len;
    char log[512];      /* copy of every line read, "" for none */
} th_proc_t;

/* Start argv[0] with stdout to a pipe and stderr to stderr_path (NULL:
 * inherited; TH_MERGE: into the same pipe as stdout). 0 on success. A
 * program that cannot be started makes the child exit 127 and says so on
 * its stderr. */
#define TH_MERGE "<stdout>"
int th_spawn(th_proc_t *p, char *const argv[], const char *stderr_path);
/* Read stdout lines until one starts with prefix and its number is >=
 * min; returns that number, or -1 on EOF or after timeout seconds. */
long th_wait_line(th_proc_t *p, const char *prefix, long min, double timeout);
/* Read lines until one contains needle; 1 if found (copied into line
 * when line is not NULL), 0 on EOF or after timeout seconds. */
int th_wait_text(th_proc_t *p, const char *needle, char *line, size_t cap, double timeout);
/* Where th_wait_* copy every line they read (NULL: nowhere). */
void th_set_log(th_proc_t *p, const char *path);
/* Wait for exit (timeout seconds, then SIGKILL), reading and dropping its
 * output meanwhile. Returns the exit code, or 128 + signal number. */
int th_wait_exit(th_proc_t *p, double timeout);
/* Send sig, then wait as th_wait_exit. */
int th_signal_and_wait(th_proc_t *p, int sig, double timeout);
/* 1 while the child runs; reaps it (and forgets it) once it has exited. */
int th_alive(th_proc_t *p);

/* A child without a pipe: argv with extra "NAME=value" environment entries
 * (NULL-terminated, may be NULL); stdout and stderr to out_path (NULL:
 * inherited; stderr only with TH_STDERR_ONLY set in flags). Returns the
 * pid, or -1. */
#define TH_STDERR_ONLY 1
pid_t th_spawn_pid(const char *const *argv, const char *const *env, const char *out_path,
                   int flags);
/* Wait for pid to exit. 1 and its exit code in *code (128 + signal if
 * killed), or 0 on timeout (the child keeps running). */
int th_wait_pid(pid_t pid, double timeout_s, int *code);
/* SIGKILL and reap. */
void th_kill_pid(pid_t pid);
/* Run argv to the end with stdout and stderr to out_path: the exit code,
 * or -1 after timeout_s (the child is killed). */
int th_run(const char *const *argv, const char *out_path, double timeout_s);

/* SIGKILL and reap every child started by th_spawn or th_spawn_pid and not
 * reaped yet (only those: a recycled pid is never hit). Also runs at exit,
 * so that a failed assertion never leaves processes behind. */
void th_kill_all(void);

/* Wait until cond(arg) != 0, polling every 10 ms. 1 if it held in time. */
int th_wait_for(int (*cond)(void *), void *arg, double timeout_s);

/* Monotonic clock in seconds. */
double th_now(void);

/* ---- /proc ---- */

/* Pids of the live children of parent, up to max; the count. */
size_t th_proc_children(int parent, int *out, size_t max);
/* The state letter of pid from /proc/PID/stat ('R', 'S', 'Z', ...), 0 if
 * pid is gone. */
char th_proc_state(int pid);

/* ---- endpoints ----
 * Ports always come from the OS: in-process sockets bind tcp://127.0.0.1:*,
 * and a child coordinator binds the same and logs the endpoint workers join
 * with ("... nessai-worker --connect tcp://HOST:PORT"). */

/* The endpoint after "--connect " in line, into ep. 1 if found. */
int th_connect_endpoint(const char *line, char *ep, size_t cap);
/* Read p's output until the coordinator names its endpoint (see above);
 * 1 and the endpoint in ep, 0 on EOF or timeout. */
int th_wait_endpoint(th_proc_t *p, char *ep, size_t cap, double timeout);
/* The same from a log file that a child writes. */
int th_wait_endpoint_in_file(const char *path, char *ep, size_t cap, double timeout);
/* The port of a tcp:// endpoint, -1 if none. */
int th_endpoint_port(const char *ep);

/* ---- files and directories ---- */

/* A fresh private directory $TMPDIR/<name>-?????? (or under /tmp), made
 * with mkdtemp; its path goes into buf. 0, or -1 when it cannot be made. */
int th_mkdtemp(char *buf, size_t cap, const char *name);
/* A fresh empty file $TMPDIR/nessai-<tag>-?????? (mkstemp); 0 or -1. */
int th_tmpfile(char *buf, size_t cap, const char *tag);
/* rm -rf path (test scratch space), ignoring errors. */
void th_rm_rf(const char *path);
/* 1 if path exists. */
int th_exists(const char *path);
/* Whole file into a malloc'ed string (NULL if unreadable). */
char *th_slurp(const char *path);
/* 1 if the file contains needle. */
int th_file_contains(const char *path, const char *needle);
/* The first line of the file that starts with prefix, into line (newline
 * kept). 1 if found. */
int th_file_line(const char *path, const char *prefix, char *line, size_t cap);
/* Flip bit (0-7) of the byte at offset at; 0 on success. */
int th_flip_bit(const char *path, long at, int bit);
/* Size of a file, -1 if it cannot be read. */
long th_file_size(const char *path);

/* ---- randomised tests ---- */

/* The seed for what (a short name printed with it): NESSAI_TEST_SEED when
 * set, otherwise from the clock. Printed on every run, so that a failure
 * can be repeated with NESSAI_TEST_SEED=<seed>. A malformed value is a
 * clear error and exit 2. */
unsigned th_seed(const char *what);

/* ---- tolerances ---- */

/* Distance in units in the last place between two finite doubles of any
 * sign (0 for equal values, +0 and -0 included); UINT64_MAX for a NaN. */
uint64_t th_ulp_distance(double a, double b);

/* Tolerance checks that print both values when they fail (this cmocka has
 * no assert_double_equal). Use after cmocka.h. */
#define th_assert_near(a, b, tol)                                                                \
    do {                                                                                         \
        double a_ = (a), b_ = (b), t_ = (tol);                                                   \
        if (!(fabs(a_ - b_) <= t_)) {                                                            \
            print_error("%s = %.17g, expected %.17g (tolerance %g)\n", #a, a_, b_, t_);          \
            fail();                                                                              \
        }                                                                                        \
    } while (0)

#define th_assert_ulp(a, b, max_ulp)                                                             \
    do {                                                                                         \
        double a_ = (a), b_ = (b);                                                               \
        uint64_t d_ = th_ulp_distance(a_, b_);                                                   \
        if (d_ > (uint64_t)(max_ulp)) {                                                          \
            print_error("%s = %.17g, expected %.17g (%llu ulp apart, at most %llu)\n", #a, a_,   \
                        b_, (unsigned long long)d_, (unsigned long long)(max_ulp));              \
            fail();                                                                              \
        }                                                                                        \
    } while (0)

#endif
