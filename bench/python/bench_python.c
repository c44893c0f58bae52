/*
 * bench_python.c - what the Python bridge (python/nessai_python.c) costs.
 *
 *   nessai-bench-python [--dim 8] [--batch 2000] [--reps 3000] [--points 20000]
 *
 * 1. A vectorised numpy S1 model (bench/python/bench_models.py:Gaussian),
 *    2000-point batches: through the loader and the embedded interpreter,
 *    against the same numpy call made directly in that interpreter on a
 *    prepared structured array, against the C plugin (libgaussian.so).
 * 2. The same model written for one point at a time, through the bridge,
 *    against the same per-point loop run in Python.
 * The three are called in turn (interleaved); medians over --reps calls
 * after 50 untimed rounds. docs/benchmarks.md.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "../bench_util.h"
#include "nessai/plugin.h"
#include "nessai/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double s_call_model(ns_model_t *m, const double *x, size_t n, double *logl)
{
    double t0 = ns_now();
    if (ns_model_log_likelihood(m, x, n, logl) != 0) {
        fprintf(stderr, "bench: %s\n", ns_model_last_error(m));
        exit(1);
    }
    return ns_now() - t0;
}

/* In the interpreter the bridge runs: the model's own method (bound or a
 * per-point loop over it) and a prepared structured array of the same n
 * points, so that a call of it is the bare numpy (or Python) work. */
static PyObject *s_bare_setup(const char *cls, int dim, const double *x, size_t n, int pointwise,
                              PyObject **arr)
{
    char code[2048];
    snprintf(code, sizeof code,
             "import sys\n"
             "sys.path.insert(0, '%s')\n"
             "import bench_models\n"
             "from nessai_farm import empty_structured_array\n"
             "m = bench_models.%s(dim=%d)\n"
             "x = empty_structured_array(%zu, m.names)\n"
             "f = %s\n",
             BENCH_PY_DIR, cls, dim, n,
             pointwise ? "lambda x, g=m.log_likelihood: [g(xx) for xx in x]" : "m.log_likelihood");
    PyObject *globals = PyModule_GetDict(PyImport_AddModule("__main__"));
    PyObject *r = PyRun_String(code, Py_file_input, globals, globals);
    if (!r) {
        PyErr_Print();
        exit(1);
    }
    Py_DECREF(r);
    PyObject *f = PyDict_GetItemString(globals, "f");
    *arr = PyDict_GetItemString(globals, "x");
    Py_INCREF(f);
    Py_INCREF(*arr);
    /* the same coordinates as the C buffer */
    Py_buffer v;
    if (PyObject_GetBuffer(*arr, &v, PyBUF_CONTIG) != 0) {
        PyErr_Print();
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        memcpy((char *)v.buf + i * ((size_t)dim * 8 + 20), x + i * (size_t)dim, (size_t)dim * 8);
    PyBuffer_Release(&v);
    return f;
}

static double s_call_bare(PyObject *f, PyObject *arr)
{
    PyGILState_STATE g = PyGILState_Ensure();
    double t0 = ns_now();
    PyObject *r = PyObject_CallOneArg(f, arr);
    double t = ns_now() - t0;
    if (!r) {
        PyErr_Print();
        exit(1);
    }
    Py_DECREF(r);
    PyGILState_Release(g);
    return t;
}

static ns_model_t *s_load(const char *spec, const char *args)
{
    char err[1024];
    ns_model_t *m = NULL;
    if (ns_model_load(spec, args, &m, err, sizeof err) != 0) {
        fprintf(stderr, "bench: %s\n", err);
        exit(1);
    }
    return m;
}

int main(int argc, char **argv)
{
    int dim = 8, reps = 3000;
    size_t batch = 2000, points = 20000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dim") == 0)
            dim = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--batch") == 0)
            batch = (size_t)atol(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--points") == 0)
            points = (size_t)atol(argv[i + 1]);
        else {
            fprintf(stderr, "usage: nessai-bench-python [--dim N] [--batch N] [--reps N] [--points N]\n");
            return 2;
        }
    }
    char args[64];
    snprintf(args, sizeof args, "dim=%d", dim);
    size_t big = batch > points ? batch : points;
    double *x = malloc(big * (size_t)dim * sizeof *x), *l = malloc(big * sizeof *l);
    unsigned long long s = 88172645463325252ULL;
    for (size_t i = 0; i < big * (size_t)dim; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = -10.0 + 20.0 * (double)(s >> 11) / 9007199254740992.0;
    }
    ns_model_t *py = s_load(BENCH_PY_DIR "/bench_models.py:Gaussian", args);
    ns_model_t *pw = s_load(BENCH_PY_DIR "/bench_models.py:GaussianPointwise", args);
    ns_model_t *c = s_load(BENCH_C_PLUGIN, args);

    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *arr, *arr_pw;
    PyObject *f = s_bare_setup("Gaussian", dim, x, batch, 0, &arr);
    PyObject *f_pw = s_bare_setup("GaussianPointwise", dim, x, points, 1, &arr_pw);
    PyGILState_Release(g);
    int preps = reps / 30 > 5 ? reps / 30 : 5;
    double *tp = malloc((size_t)reps * sizeof *tp), *tb = malloc((size_t)reps * sizeof *tb),
           *tc = malloc((size_t)reps * sizeof *tc), *td = malloc((size_t)reps * sizeof *td);
    /* Interleaved, so that a change of machine load hits all three alike. */
    for (int i = -50; i < reps; i++) {
        double a = s_call_model(py, x, batch, l);
        double b = s_call_bare(f, arr);
        double cc = s_call_model(c, x, batch, l);
        if (i >= 0)
            tp[i] = a, tb[i] = b, tc[i] = cc, td[i] = a - b;
    }
    double t_py = bench_median(tp, (size_t)reps), t_bare = bench_median(tb, (size_t)reps);
    double t_c = bench_median(tc, (size_t)reps), t_diff = bench_median(td, (size_t)reps);
    for (int i = -2; i < preps; i++) {
        double a = s_call_model(pw, x, points, l);
        double b = s_call_bare(f_pw, arr_pw);
        if (i >= 0)
            tp[i] = a, tb[i] = b, td[i] = a - b;
    }
    double t_pw = bench_median(tp, (size_t)preps), t_pw_bare = bench_median(tb, (size_t)preps);
    double t_pw_diff = bench_median(td, (size_t)preps);
    free(tp);
    free(tb);
    free(tc);
    free(td);

    printf("vectorised numpy S1, d = %d, batches of %zu points (medians of %d calls)\n", dim, batch, reps);
    printf("  through the bridge     %9.2f us/batch  %8.2f Mpoints/s\n", 1e6 * t_py, 1e-6 * (double)batch / t_py);
    printf("  bare numpy call        %9.2f us/batch  %8.2f Mpoints/s\n", 1e6 * t_bare,
           1e-6 * (double)batch / t_bare);
    printf("  C plugin               %9.2f us/batch  %8.2f Mpoints/s\n", 1e6 * t_c, 1e-6 * (double)batch / t_c);
    printf("  bridge overhead        %9.2f us/batch  (median of the per-call differences; "
           "bridge / bare %.3f, bridge / C %.1f)\n", 1e6 * t_diff, t_py / t_bare, t_py / t_c);
    printf("point by point, %zu points per call (medians of %d calls)\n", points, preps);
    printf("  through the bridge     %9.3f us/point\n", 1e6 * t_pw / (double)points);
    printf("  bare Python loop       %9.3f us/point\n", 1e6 * t_pw_bare / (double)points);
    printf("  bridge overhead        %9.3f us/point  (bridge / bare %.3f)\n",
           1e6 * t_pw_diff / (double)points, t_pw / t_pw_bare);
    ns_model_destroy(&py);
    ns_model_destroy(&pw);
    ns_model_destroy(&c);
    free(x);
    free(l);
    return 0;
}
