/* farm_testutil.c - see farm_testutil.h. */
#define _GNU_SOURCE   /* nftw */
#include "farm_testutil.h"
#include "nessai/error.h"
#include "nessai/util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Every worker a test started, killed at exit so that a failed assertion
 * never leaves processes behind (they would hold ctest's output pipe). */
static pid_t s_spawned[256];
static size_t s_nspawned;

static void s_kill_spawned(void)
{
    for (size_t i = 0; i < s_nspawned; i++)
        kill(s_spawned[i], SIGKILL);
}

pid_t ft_spawn_worker(const char *endpoint, const char *const *args, const char *const *env,
                      const char *stderr_path)
{
    const char *argv[64];
    size_t na = 0;
    argv[na++] = NESSAI_WORKER_BIN;
    argv[na++] = "--connect";
    argv[na++] = endpoint;
    /* the test plugins and the examples may be loaded when announced */
    static char allow[8192];
    const char *slash = strrchr(FARMTEST_PLUGIN, '/');
    snprintf(allow, sizeof allow, "%.*s:%s", slash ? (int)(slash - FARMTEST_PLUGIN) : 1,
             slash ? FARMTEST_PLUGIN : ".", NESSAI_EXAMPLES_DIR);
    argv[na++] = "--allow-model-dir";
    argv[na++] = allow;
    for (size_t i = 0; args && args[i] && na < 62; i++)
        argv[na++] = args[i];
    argv[na] = NULL;
    size_t ne = 0;
    while (environ[ne])
        ne++;
    const char **envp = calloc(ne + 32, sizeof *envp);
    if (!envp)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < ne; i++)
        envp[k++] = environ[i];
    for (size_t i = 0; env && env[i] && i < 30; i++)
        envp[k++] = env[i];
    envp[k] = NULL;
    int fd = -1;
    if (stderr_path)
        fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = fork();
    if (pid == 0) {
        if (fd >= 0)
            dup2(fd, 2);
        execve(argv[0], (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    if (fd >= 0)
        close(fd);
    free(envp);
    if (pid > 0 && s_nspawned < sizeof s_spawned / sizeof s_spawned[0]) {
        if (s_nspawned == 0)
            atexit(s_kill_spawned);
        s_spawned[s_nspawned++] = pid;
    }
    return pid;
}

int ft_wait_exit(pid_t pid, double timeout_s, int *code)
{
    double until = ns_now() + timeout_s;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            if (code)
                *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return 1;
        }
        if (r < 0 || ns_now() > until)
            return 0;
        usleep(10000);
    }
}

void ft_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int ft_file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

void ft_tmpfile(char *out, size_t size, const char *tag)
{
    /* mkstemp's template: six 'X' at the end, replaced by the call */
    int n = snprintf(out, size, "/tmp/nessai-farm-%s-", tag);
    for (int i = 0; i < 6 && n > 0 && (size_t)n + 1 < size; i++, n++)
        out[n] = 'X';
    out[n > 0 ? n : 0] = '\0';
    int fd = mkstemp(out);
    if (fd >= 0)
        close(fd);
}

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

void ft_rmtree(const char *path)
{
    nftw(path, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

ns_config_t *ft_farm_config(const char *first, ...)
{
    ns_config_t *cfg = ns_config_new(ns_farm_options, ns_farm_options_count);
    if (!cfg)
        return NULL;
    va_list ap;
    va_start(ap, first);
    for (const char *name = first; name; name = va_arg(ap, const char *)) {
        const char *value = va_arg(ap, const char *);
        char err[256];
        if (ns_config_set(cfg, name, value, err, sizeof err) != NS_OK) {
            fprintf(stderr, "ft_farm_config: %s\n", err);
            ns_config_destroy(&cfg);
            break;
        }
    }
    va_end(ap);
    if (cfg && !ns_config_is_set(cfg, "worker-path")) {
        char err[256];
        ns_config_set(cfg, "worker-path", NESSAI_WORKER_BIN, err, sizeof err);
    }
    return cfg;
}

ns_model_t *ft_model(const char *args)
{
    ns_model_t *m = NULL;
    char err[512];
    if (ns_model_load(FARMTEST_PLUGIN, args, &m, err, sizeof err) != NS_OK) {
        fprintf(stderr, "ft_model: %s\n", err);
        return NULL;
    }
    return m;
}

double *ft_points(size_t n, size_t d, unsigned long long seed)
{
    double *x = malloc(n * d * sizeof *x + 1);
    unsigned long long s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; x && i < n * d; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = -5.0 + 10.0 * (double)(s >> 11) / 9007199254740992.0;
    }
    for (size_t i = 0; x && i < n; i += 97)
        x[i * d] = 4.95;
    return x;
}

void ft_inprocess(ns_model_t *model, const double *x, size_t n, double *logl)
{
    if (ns_model_log_likelihood(model, x, n, logl) != NS_OK)
        fprintf(stderr, "ft_inprocess: %s\n", ns_model_last_error(model));
}

int ft_wait_for(int (*cond)(void *), void *arg, double timeout_s)
{
    double until = ns_now() + timeout_s;
    while (!cond(arg)) {
        if (ns_now() > until)
            return 0;
        usleep(10000);
    }
    return 1;
}
