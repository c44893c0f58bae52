/*
 * bench_farm.c - nessai-bench-farm: what the farm costs and what it gains
 * (docs/benchmarks.md §5). Prints one table:
 *   overhead  round trip of a 2000-point batch, d = 8/16/32, 1/2/4/8 local
 *             workers, trivial likelihood, median, against in-process;
 *             points per second through the farm;
 *   speedup   delay_ms = 1 and 10 per point, 1..32 workers, against ideal;
 *   memory    coordinator RSS with 256 connected workers, RSS per worker;
 *   curve     (--curve, alone) a 2000 x 16 batch with 4 workers, CurveZMQ
 *             off and on, for 0, 1, 2, 5 and 10 µs per point
 *             (docs/protocol.md §8).
 * Uses build/examples/libgaussian.so (S1) and local pools (--n-pool).
 */
#include "../bench_util.h"
#include "farm.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/options.h"
#include "nessai/plugin.h"
#include "nessai/util.h"

#include <dirent.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char plugin[4096];   /* libgaussian.so */
    int repeats;         /* timed batches for the overhead rows */
    int quick;           /* fewer rows, for a smoke run */
    int skip_memory;
    int curve;           /* only the CURVE on/off table */
} s_opts_t;

static ns_model_t *s_model(const s_opts_t *o, int dim, double delay_ms)
{
    char args[128], err[512];
    snprintf(args, sizeof args, "dim=%d,delay_ms=%g", dim, delay_ms);
    ns_model_t *m = NULL;
    if (ns_model_load(o->plugin, args, &m, err, sizeof err) != NS_OK) {
        fprintf(stderr, "nessai-bench-farm: %s\n", err);
        exit(1);
    }
    return m;
}

static ns_evaluator_t *s_farm_keys(ns_model_t *model, int workers, const char *keys)
{
    ns_config_t *cfg = ns_config_new(ns_farm_options, ns_farm_options_count);
    char err[256], k[32];
    snprintf(k, sizeof k, "%d", workers);
    ns_evaluator_t *ev = NULL;
    if (cfg && keys
        && (ns_config_set(cfg, "curve", "true", err, sizeof err) != NS_OK
            || ns_config_set(cfg, "farm-keys", keys, err, sizeof err) != NS_OK))
        ns_config_destroy(&cfg);
    if (!cfg || ns_config_set(cfg, "n-pool", k, err, sizeof err) != NS_OK
        || ns_farm_evaluator_new(cfg, model, NULL, &ev) != NS_OK
        || ns_farm_wait_live(ev, (size_t)workers, 180) != NS_OK) {
        fprintf(stderr, "nessai-bench-farm: could not start a farm of %d workers\n", workers);
        exit(1);
    }
    ns_config_destroy(&cfg);   /* the farm keeps copies of what it needs */
    return ev;
}

static ns_evaluator_t *s_farm(ns_model_t *model, int workers)
{
    return s_farm_keys(model, workers, NULL);
}

static double *s_points(size_t n, int d, unsigned seed)
{
    double *x = malloc(n * (size_t)d * sizeof *x);
    unsigned long long s = seed * 0x9E3779B97F4A7C15ull + 7;
    for (size_t i = 0; x && i < n * (size_t)d; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = -10.0 + 20.0 * (double)(s >> 11) / 9007199254740992.0;
    }
    return x;
}

static double s_time_batch(ns_evaluator_t *ev, ns_model_t *m, const double *x, size_t n, int d,
                           double *logl)
{
    double t0 = ns_now();
    int rv = ev ? ns_evaluator_evaluate(ev, x, n, (size_t)d, logl)
                : ns_model_log_likelihood(m, x, n, logl);
    if (rv != NS_OK) {
        fprintf(stderr, "nessai-bench-farm: evaluation failed\n");
        exit(1);
    }
    return ns_now() - t0;
}

static void s_overhead(const s_opts_t *o)
{
    const int dims[] = {8, 16, 32};
    const int pools[] = {1, 2, 4, 8};
    const size_t n = 2000;
    printf("\n(a, b) farm overhead: %zu-point batch, trivial likelihood (S1), median of %d\n\n",
           n, o->repeats);
    printf("| d | workers | in-process µs | farm µs | overhead µs | points/s through the farm |\n");
    printf("|---|---|---|---|---|---|\n");
    double *t = malloc((size_t)o->repeats * sizeof *t);
    for (size_t a = 0; a < sizeof dims / sizeof dims[0]; a++) {
        int d = dims[a];
        ns_model_t *m = s_model(o, d, 0);
        double *x = s_points(n, d, (unsigned)d), *logl = malloc(n * sizeof *logl);
        double *ref = malloc(n * sizeof *ref);
        for (int r = 0; r < o->repeats; r++)
            t[r] = s_time_batch(NULL, m, x, n, d, ref);
        double inproc = bench_median(t, o->repeats);
        for (size_t b = 0; b < sizeof pools / sizeof pools[0]; b++) {
            if (o->quick && pools[b] != 4)
                continue;
            ns_evaluator_t *ev = s_farm(m, pools[b]);
            for (int r = 0; r < 5; r++)   /* warm up connections and caches */
                s_time_batch(ev, m, x, n, d, logl);
            for (int r = 0; r < o->repeats; r++)
                t[r] = s_time_batch(ev, m, x, n, d, logl);
            if (memcmp(logl, ref, n * sizeof *ref) != 0) {
                fprintf(stderr, "nessai-bench-farm: farm results differ from in-process\n");
                exit(1);
            }
            double farm = bench_median(t, o->repeats);
            printf("| %d | %d | %.1f | %.1f | %.1f | %.3g |\n", d, pools[b], inproc * 1e6,
                   farm * 1e6, (farm - inproc) * 1e6, (double)n / farm);
            fflush(stdout);
            ns_evaluator_destroy(&ev);
        }
        free(x);
        free(logl);
        free(ref);
        ns_model_destroy(&m);
    }
    free(t);
}

static void s_speedup(const s_opts_t *o)
{
    const double delays[] = {1, 10};
    const int pools[] = {1, 2, 4, 8, 16, 32};
    const int d = 16;
    const size_t n = 640;
    const int reps = 3;
    printf("\n(c) speed-up: S1 d=%d, %zu-point batches, sleep per point, median of %d\n\n", d, n,
           reps);
    printf("| delay ms | workers | serial s | farm s | ideal s | speed-up | efficiency |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (size_t a = 0; a < sizeof delays / sizeof delays[0]; a++) {
        ns_model_t *m = s_model(o, d, delays[a]);
        double *x = s_points(n, d, 3), *logl = malloc(n * sizeof *logl);
        /* serial reference: measured once in-process */
        double serial = s_time_batch(NULL, m, x, n, d, logl);
        for (size_t b = 0; b < sizeof pools / sizeof pools[0]; b++) {
            if (o->quick && pools[b] != 1 && pools[b] != 32)
                continue;
            ns_evaluator_t *ev = s_farm(m, pools[b]);
            s_time_batch(ev, m, x, (size_t)pools[b], d, logl);   /* warm-up, one point each */
            double t[3];
            for (int r = 0; r < reps; r++)
                t[r] = s_time_batch(ev, m, x, n, d, logl);
            double farm = bench_median(t, reps);
            double speedup = serial / farm;
            printf("| %g | %d | %.3f | %.3f | %.3f | %.2f | %.3f |\n", delays[a], pools[b],
                   serial, farm, serial / pools[b], speedup, speedup / pools[b]);
            fflush(stdout);
            ns_evaluator_destroy(&ev);
        }
        free(x);
        free(logl);
        ns_model_destroy(&m);
    }
}

static double s_rss_mib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    double kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atof(line + 6);
    if (f)
        fclose(f);
    return kib / 1024.0;
}

/* Pids of our live child processes, from the parent field of each
 * /proc/PID/stat (after the command name's last ')'), up to max. */
static size_t s_children(int *out, size_t max)
{
    size_t n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        char path[64], buf[512], state;
        int pid = atoi(e->d_name), ppid = 0;
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *f = pid > 0 ? fopen(path, "r") : NULL;
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        if (rp && sscanf(rp + 2, "%c %d", &state, &ppid) == 2 && ppid == (int)getpid())
            out[n++] = pid;
    }
    if (d)
        closedir(d);
    return n;
}

/* Sum of the RSS of our child processes (the local workers). */
static double s_children_rss(int *count)
{
    int pids[4096];
    size_t n = s_children(pids, sizeof pids / sizeof pids[0]);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += s_rss_mib(pids[i]);
    *count = (int)n;
    return sum;
}

static void s_memory(const s_opts_t *o)
{
    const int workers = o->quick ? 32 : 256;
    ns_model_t *m = s_model(o, 16, 0);
    double before = s_rss_mib(getpid());
    double t0 = ns_now();
    ns_evaluator_t *ev = s_farm(m, workers);
    double joined = ns_now() - t0;
    size_t n = 2000;
    double *x = s_points(n, 16, 5), *logl = malloc(n * sizeof *logl);
    double t[5];
    for (int r = 0; r < 5; r++)
        t[r] = s_time_batch(ev, m, x, n, 16, logl);
    double after = s_rss_mib(getpid());
    int count = 0;
    double wsum = s_children_rss(&count);
    printf("\n(d) memory with %d connected local workers (all joined in %.1f s)\n\n", workers,
           joined);
    printf("| coordinator RSS MiB (before farm) | coordinator RSS MiB (%d workers) | "
           "RSS per worker MiB | 2000x16 round trip with %d workers µs |\n", workers, workers);
    printf("|---|---|---|---|\n");
    printf("| %.1f | %.1f | %.1f | %.0f |\n", before, after, count ? wsum / count : 0.0,
           bench_median(t, 5) * 1e6);
    free(x);
    free(logl);
    ns_evaluator_destroy(&ev);
    ns_model_destroy(&m);
}

/* CurveZMQ off and on: a 2000 x 16 batch with 4 local workers, for a
 * likelihood that costs nothing and for 1-10 µs per point. */
static void s_curve(const s_opts_t *o)
{
    const size_t n = 2000;
    const int d = 16, workers = 4;
    const double us[] = {0, 1, 2, 5, 10};
    char keys[] = "/tmp/nessai-bench-keys-XXXXXX";
    if (!mkdtemp(keys)) {
        fprintf(stderr, "nessai-bench-farm: cannot make a keys directory\n");
        exit(1);
    }
    printf("\n(f) CurveZMQ: %zu x %d batch, %d local workers, S1 likelihood with a sleep per "
           "point, median of %d\n\n| µs per point | CURVE off µs | CURVE on µs | added µs | "
           "added %% |\n|---|---|---|---|---|\n", n, d, workers, o->repeats);
    double *x = s_points(n, d, 16), *logl = malloc(n * sizeof *logl);
    double *t = malloc((size_t)o->repeats * sizeof *t);
    for (size_t k = 0; k < sizeof us / sizeof us[0]; k++) {
        ns_model_t *m = s_model(o, d, us[k] / 1000.0);
        double med[2];
        for (int on = 0; on < 2; on++) {
            ns_evaluator_t *ev = s_farm_keys(m, workers, on ? keys : NULL);
            for (int r = 0; r < 5; r++)
                s_time_batch(ev, m, x, n, d, logl);
            for (int r = 0; r < o->repeats; r++)
                t[r] = s_time_batch(ev, m, x, n, d, logl);
            med[on] = bench_median(t, o->repeats);
            ns_evaluator_destroy(&ev);
        }
        printf("| %g | %.1f | %.1f | %.1f | %+.0f %% |\n", us[k], med[0] * 1e6, med[1] * 1e6,
               (med[1] - med[0]) * 1e6, 100.0 * (med[1] / med[0] - 1.0));
        fflush(stdout);
        ns_model_destroy(&m);
    }
    free(t);
    free(x);
    free(logl);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", keys);
    if (system(cmd) != 0)
        fprintf(stderr, "nessai-bench-farm: could not remove %s\n", keys);
}

int main(int argc, char **argv)
{
    s_opts_t o;
    memset(&o, 0, sizeof o);
    o.repeats = 51;
    const char *plugin = NULL;
    int repeats = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            o.quick = 1;
        else if (strcmp(argv[i], "--no-memory") == 0)
            o.skip_memory = 1;
        else if (strcmp(argv[i], "--curve") == 0)
            o.curve = 1;
        else if (strcmp(argv[i], "--plugin") == 0 && i + 1 < argc)
            plugin = argv[++i];
        else if (strcmp(argv[i], "--repeats") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0)
            repeats = atoi(argv[++i]);
        else {
            printf("usage: nessai-bench-farm [--quick] [--no-memory] [--curve] "
                   "[--repeats N] [--plugin libgaussian.so]\n"
                   "Farm overhead, throughput, speed-up and memory (docs/benchmarks.md, Farm).\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (plugin)
        snprintf(o.plugin, sizeof o.plugin, "%s", plugin);
    else {
        char self[4096];
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        self[len > 0 ? len : 0] = '\0';
        snprintf(o.plugin, sizeof o.plugin, "%s/../examples/libgaussian.so", dirname(self));
    }
    if (o.quick)
        o.repeats = 11;
    if (repeats)
        o.repeats = repeats;
    ns_log_set_level(NS_LOG_WARNING);
    printf("nessai-bench-farm: %s, %ld CPUs online\n", o.plugin, sysconf(_SC_NPROCESSORS_ONLN));
    if (o.curve) {
        s_curve(&o);
        return 0;
    }
    s_overhead(&o);
    s_speedup(&o);
    if (!o.skip_memory)
        s_memory(&o);
    return 0;
}
