/*
 * bench_flow.c - nessai-bench-flow: time per training epoch of the flow
 * (docs/flow.md, "Verification"). For d = 2, 4, 8, 16: 1800 training + 200
 * validation points of N(0, I), the default flow and training settings
 * (batch 1000), float32 and float64 training passes; the time of an epoch
 * (its AdamW steps and its validation pass) is the mean over the epochs
 * after the first, and the table gives the median of the repetitions.
 * Every repetition trains a flow built from the same seed on the same data.
 */
#include "../bench_util.h"
#include "flow.h"
#include "flow_train.h"
#include "nessai/error.h"
#include "nessai/rng.h"
#include "nessai/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPS 101

typedef struct {
    size_t n;
    double first, last; /* wall clock at the end of epoch 1 and of the last */
} s_clock_t;

static void s_tick(void *ctx, size_t epoch, ns_flow_t *flow, double train_loss, double val_loss)
{
    (void)flow;
    (void)train_loss;
    (void)val_loss;
    s_clock_t *c = ctx;
    double t = ns_now();
    if (epoch == 1)
        c->first = t;
    c->last = t;
    c->n = epoch;
}

/* Seconds per epoch of one training; < 0 on failure. */
static double s_epoch_time(size_t d, int f32, size_t epochs, size_t *n_params)
{
    size_t n = 2000;
    ns_rng_t *r = ns_rng_new(61, 0);
    double *x = malloc(n * d * sizeof(double));
    if (!r || !x) {
        free(x);
        ns_rng_destroy(&r);
        return -1.0;
    }
    for (size_t q = 0; q < n * d; q++)
        x[q] = ns_rng_gaussian(r);
    ns_flow_config_t cfg = ns_flow_config_default(d);
    ns_flow_t *f = ns_flow_new(&cfg, r);
    ns_train_config_t tc = ns_train_config_default();
    tc.max_epochs = epochs;
    tc.patience = epochs; /* every epoch runs */
    ns_adamw_t *o = f ? ns_adamw_new(ns_flow_n_params(f), tc.lr, tc.weight_decay) : NULL;
    double t = -1.0;
    s_clock_t c = {0, 0.0, 0.0};
    if (o && ns_flow_set_train_f32(f, f32) == NS_OK &&
        ns_flow_train_observed(f, o, &tc, x, n, r, NULL, NULL, s_tick, &c) == NS_OK &&
        c.n == epochs) {
        t = (c.last - c.first) / (double)(epochs - 1);
        *n_params = ns_flow_n_params(f);
    }
    ns_adamw_destroy(&o);
    ns_flow_destroy(&f);
    ns_rng_destroy(&r);
    free(x);
    return t;
}

int main(int argc, char **argv)
{
    int reps = 7, threads = 1;
    long epochs = 50;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            reps = 3;
            epochs = 6;
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc)
            epochs = atol(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            printf("usage: nessai-bench-flow [--quick] [--reps N] [--epochs N] [--threads N]\n"
                   "Time per training epoch of the flow at d = 2, 4, 8, 16, float32 and\n"
                   "float64 passes, median of N repetitions (docs/flow.md, Verification).\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (reps < 1 || reps > MAX_REPS || epochs < 2 || threads < 1) {
        fprintf(stderr, "nessai-bench-flow: need 1 <= --reps <= %d, --epochs >= 2, "
                "--threads >= 1\n", MAX_REPS);
        return 2;
    }
    ns_flow_set_threads(threads);
    printf("nessai-bench-flow: 1800 + 200 points, batch 1000, %ld epochs, median of %d, "
           "%d thread(s), OpenBLAS %s\n", epochs, reps, threads, ns_flow_blas_core());
    printf("%-8s %10s %14s %14s %8s\n", "d", "parameters", "float32 ms", "float64 ms",
           "f64/f32");
    const size_t dims[] = {2, 4, 8, 16};
    for (size_t k = 0; k < sizeof dims / sizeof *dims; k++) {
        double med[2];
        size_t np = 0;
        for (int f32 = 1; f32 >= 0; f32--) {
            double t[MAX_REPS];
            for (int r = 0; r < reps; r++) {
                t[r] = s_epoch_time(dims[k], f32, (size_t)epochs, &np);
                if (t[r] < 0) {
                    fprintf(stderr, "nessai-bench-flow: training failed at d = %zu\n", dims[k]);
                    return 1;
                }
            }
            med[f32] = bench_median(t, reps);
        }
        printf("d = %-4zu %10zu %14.3f %14.3f %8.2f\n", dims[k], np, 1e3 * med[1], 1e3 * med[0],
               med[0] / med[1]);
    }
    return 0;
}
