/*
 * nessai_python.c - the model plugin that runs a Python model class
 * (docs/python.md). The loader (common/src/plugin.c) loads it for
 * --model file.py[:Class] and calls init_source() with that string.
 *
 * The plugin embeds CPython once per process and never finalises it (numpy
 * cannot be initialised twice). The model file is imported and the class
 * built by nessai_farm._embed (python/nessai_farm/_embed.py); this file does
 * the per-call work: it writes the points into a new structured array of
 * nessai's live-point dtype (one float64 field per parameter, then logP and
 * logL float64 = NaN and it int32 = 0), calls the method, and reads the
 * float64 result. The copy is needed because the ABI passes only the d
 * coordinates of each point and nessai's it field is int32: a view of the
 * caller's rows could hold neither logP/logL/it nor that layout, and it would
 * dangle if the model kept a reference to its argument.
 *
 * Every entry point takes the GIL itself (PyGILState_Ensure): the worker
 * evaluates in a thread other than the one that loaded the model.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "nessai/model.h"

#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NP_EXPORT __attribute__((visibility("default")))

typedef struct {
    PyObject *embed;                   /* module nessai_farm._embed */
    PyObject *bridge;                  /* _embed.Bridge */
    PyObject *loglike, *logprior, *newpoint_lq;
    PyObject *empty, *dtype;           /* numpy.empty, the live-point dtype */
    int vectorised, vectorised_prior, has_new_point, has_cube;
    int dim;
    double truth;                      /* truth_log_evidence, NAN if unknown */
    size_t itemsize;                   /* 8 d + 20 */
    char **names;
    double *lower, *upper;
    int *periodic;                     /* the class's declarations (docs/python.md) */
    double *period;
    char **reparams;                   /* NULL entries: no preference */
    int declares;                      /* 1 if any parameter is declared */
    char name[128];
    char identity[128];
    char error[1024];
} py_ctx_t;

static int s_started;

static void s_copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

/* Start the interpreter: without its own signal handlers (SIGINT and
 * SIGTERM keep the meaning the programs give them), with libpython's
 * symbols made global so that extension modules (numpy) resolve them, and
 * with this plugin pinned in memory (the interpreter keeps pointers into
 * it once started). */
static int s_python_start(char *err, size_t errlen)
{
    if (s_started)
        return 0;
    if (Py_IsInitialized()) {
        snprintf(err, errlen, "a Python interpreter is already running in this process");
        return -1;
    }
    Dl_info info;
    void *py_fn = (void *)&Py_InitializeFromConfig;
    if (!dladdr(py_fn, &info) || !info.dli_fname ||
        !dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL)) {
        snprintf(err, errlen, "cannot make libpython's symbols global: %s", dlerror());
        return -1;
    }
    void *self_fn = (void *)&s_python_start;
    if (dladdr(self_fn, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);

    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    /* Nothing flushes Python's buffers at exit (no Py_Finalize): what a model
     * prints goes out at once. */
    config.buffered_stdio = 0;
    PyStatus st = PyConfig_SetBytesString(&config, &config.program_name, NESSAI_PYTHON_EXECUTABLE);
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        snprintf(err, errlen, "cannot start Python: %s", st.err_msg ? st.err_msg : "unknown error");
        return -1;
    }
    /* The project's package, after PYTHONPATH and the site directories: it
     * sits beside this plugin, in the build tree and when installed. */
    char pkgdir[4096];
    snprintf(pkgdir, sizeof pkgdir, "%s", NESSAI_PYTHON_PACKAGE_DIR);
    if (dladdr(self_fn, &info) && info.dli_fname && strrchr(info.dli_fname, '/'))
        snprintf(pkgdir, sizeof pkgdir, "%.*s", (int)(strrchr(info.dli_fname, '/') - info.dli_fname),
                 info.dli_fname);
    PyObject *path = PySys_GetObject("path");
    PyObject *pkg = PyUnicode_FromString(pkgdir);
    if (path && pkg)
        PyList_Append(path, pkg);
    Py_XDECREF(pkg);
    PyErr_Clear();
    PyEval_SaveThread();
    s_started = 1;
    return 0;
}

/* The pending exception as one line (type, message, innermost file:line). */
static void s_exception(py_ctx_t *c, char *out, size_t len)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb && v)
        PyException_SetTraceback(v, tb);
    PyObject *s = NULL;
    if (c && c->embed)
        s = PyObject_CallMethod(c->embed, "describe_exception", "OOO", t ? t : Py_None,
                                v ? v : Py_None, tb ? tb : Py_None);
    if (!s) {
        PyErr_Clear();
        s = v ? PyObject_Str(v) : NULL;
        if (s && t && PyType_Check(t)) {
            PyObject *line = PyUnicode_FromFormat("%s: %U", ((PyTypeObject *)t)->tp_name, s);
            Py_DECREF(s);
            s = line;
        }
    }
    const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
    if (!msg) {
        PyErr_Clear();
        msg = t && PyType_Check(t) ? ((PyTypeObject *)t)->tp_name : "unknown Python error";
    }
    s_copy(out, len, msg);
    Py_XDECREF(s);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    PyErr_Clear();
}

static void s_point_text(const py_ctx_t *c, const double *x, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int j = 0; j < c->dim && used + 1 < len; j++) {
        int k = snprintf(out + used, len - used, "%s%s=%.17g", j ? ", " : "", c->names[j], x[j]);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

/* Record a failed call: message, then the point it failed on if known. */
static void s_fail(py_ctx_t *c, const char *what, const char *msg, const double *x, size_t n, long at)
{
    char point[512];
    if (at >= 0) {
        s_point_text(c, x + (size_t)at * (size_t)c->dim, point, sizeof point);
        snprintf(c->error, sizeof c->error, "%s: %s (point %s)", what, msg, point);
    } else {
        s_point_text(c, x, point, sizeof point);
        snprintf(c->error, sizeof c->error, "%s: %s (batch of %zu points, the first %s)", what, msg, n,
                 point);
    }
}

/* A new structured array of n live points holding x. */
static PyObject *s_points(py_ctx_t *c, const double *x, size_t n)
{
    PyObject *count = PyLong_FromSize_t(n);
    if (!count)
        return NULL;
    PyObject *argv[2] = {count, c->dtype};
    PyObject *arr = PyObject_Vectorcall(c->empty, argv, 2, NULL);
    Py_DECREF(count);
    if (!arr)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(arr, &view, PyBUF_CONTIG) != 0) {
        Py_DECREF(arr);
        return NULL;
    }
    const size_t d = (size_t)c->dim, row = d * sizeof(double);
    const double nan = NAN;
    const int32_t zero = 0;
    char *p = view.buf;
    for (size_t i = 0; i < n; i++, p += c->itemsize) {
        memcpy(p, x + i * d, row);
        memcpy(p + row, &nan, sizeof nan);
        memcpy(p + row + 8, &nan, sizeof nan);
        memcpy(p + row + 16, &zero, sizeof zero);
    }
    PyBuffer_Release(&view);
    return arr;
}

static int s_is_f64(const Py_buffer *v)
{
    const char *f = v->format ? v->format : "B";
    if (*f == '<' || *f == '=' || *f == '@')
        f++;
    return v->itemsize == 8 && strcmp(f, "d") == 0;
}

/* Copy a returned value into out: n >= 0 wants a float64 array of shape
 * (n,); n < 0 (one point) a float or a float64 array of one element. */
static int s_take(py_ctx_t *c, const char *what, PyObject *res, long n, double *out, char *why,
                  size_t whylen)
{
    if (n < 0 && PyFloat_Check(res)) {
        *out = PyFloat_AS_DOUBLE(res);
        return 0;
    }
    Py_buffer v;
    if (PyObject_CheckBuffer(res) && !PyBytes_Check(res) &&
        PyObject_GetBuffer(res, &v, PyBUF_FORMAT | PyBUF_STRIDES) == 0) {
        int ok = s_is_f64(&v) && (n >= 0 ? v.ndim == 1 && v.shape[0] == (Py_ssize_t)n
                                          : v.len == 8);
        if (ok) {
            size_t m = n >= 0 ? (size_t)n : 1;
            Py_ssize_t stride = v.ndim == 1 ? v.strides[0] : 8;
            const char *p = v.buf;
            for (size_t i = 0; i < m; i++, p += stride)
                memcpy(out + i, p, sizeof(double));
        }
        PyBuffer_Release(&v);
        if (ok)
            return 0;
    }
    PyErr_Clear();
    PyObject *s = PyObject_CallMethod(c->bridge, "describe_result", "sOl", what, res, n);
    const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
    if (msg)
        s_copy(why, whylen, msg);
    else
        snprintf(why, whylen, "%s returned a value of the wrong type or shape", what);
    Py_XDECREF(s);
    PyErr_Clear();
    return -1;
}

/* Call func on the n points x: once on the whole array if vectorised, else
 * once per point (a numpy.void record, as nessai does). */
static int s_call(py_ctx_t *c, PyObject *func, int vectorised, const char *what, const double *x,
                  size_t n, double *out)
{
    if (n == 0)
        return 0;
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = 1;
    char msg[768];
    PyObject *arr = s_points(c, x, n);
    if (!arr) {
        s_exception(c, msg, sizeof msg);
        s_fail(c, what, msg, x, n, -1);
        goto done;
    }
    if (vectorised) {
        PyObject *res = PyObject_CallOneArg(func, arr);
        if (!res) {
            s_exception(c, msg, sizeof msg);
            long at = -1;
            PyObject *idx = PyObject_CallMethod(c->bridge, "locate", "OO", func, arr);
            if (idx)
                at = PyLong_AsLong(idx);
            Py_XDECREF(idx);
            PyErr_Clear();
            s_fail(c, what, msg, x, n, n == 1 ? 0 : at);
        } else {
            if (s_take(c, what, res, (long)n, out, msg, sizeof msg) == 0)
                rc = 0;
            else
                snprintf(c->error, sizeof c->error, "%s", msg);
            Py_DECREF(res);
        }
    } else {
        rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            PyObject *item = PySequence_GetItem(arr, (Py_ssize_t)i);
            PyObject *res = item ? PyObject_CallOneArg(func, item) : NULL;
            Py_XDECREF(item);
            if (!res) {
                s_exception(c, msg, sizeof msg);
                s_fail(c, what, msg, x, n, (long)i);
                rc = 1;
            } else {
                if (s_take(c, what, res, -1, out + i, msg, sizeof msg) != 0) {
                    s_fail(c, what, msg, x, n, (long)i);
                    rc = 1;
                }
                Py_DECREF(res);
            }
        }
    }
    Py_DECREF(arr);
done:
    PyGILState_Release(g);
    return rc;
}

static int s_log_likelihood(void *ctx, const double *x, size_t n, double *logl)
{
    py_ctx_t *c = ctx;
    return s_call(c, c->loglike, c->vectorised, "log_likelihood", x, n, logl);
}

static int s_log_prior(void *ctx, const double *x, size_t n, double *logp)
{
    py_ctx_t *c = ctx;
    return s_call(c, c->logprior, c->vectorised_prior, "log_prior", x, n, logp);
}

static int s_new_point(void *ctx, const nessai_rng_api_t *rng, size_t n, double *x)
{
    py_ctx_t *c = ctx;
    /* The model's rng is seeded from the sampler's generator: runs repeat from --seed. */
    unsigned long long seed = (unsigned long long)(rng->uniform(rng->state) * 9007199254740992.0);
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = 1;
    PyObject *res = PyObject_CallMethod(c->bridge, "draw", "Kn", seed, (Py_ssize_t)n);
    if (!res) {
        char msg[768];
        s_exception(c, msg, sizeof msg);
        snprintf(c->error, sizeof c->error, "new_point: %s", msg);
    } else {
        Py_buffer v;
        if (PyObject_GetBuffer(res, &v, PyBUF_CONTIG_RO) == 0) {
            if ((size_t)v.len == n * (size_t)c->dim * sizeof(double)) {
                memcpy(x, v.buf, (size_t)v.len);
                rc = 0;
            }
            PyBuffer_Release(&v);
        }
        PyErr_Clear();
        if (rc)
            snprintf(c->error, sizeof c->error, "new_point(N=%zu) did not return %zu points", n, n);
        Py_DECREF(res);
    }
    PyGILState_Release(g);
    return rc;
}

static int s_new_point_log_prob(void *ctx, const double *x, size_t n, double *logq)
{
    py_ctx_t *c = ctx;
    return s_call(c, c->newpoint_lq, 1, "new_point_log_prob", x, n, logq);
}

/* The class's to_/from_unit_hypercube on n points (bridge.cube). */
static int s_cube(py_ctx_t *c, int to_cube, const double *in, size_t n, double *out)
{
    const char *what = to_cube ? "to_unit_hypercube" : "from_unit_hypercube";
    size_t bytes = n * (size_t)c->dim * sizeof(double);
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = 1;
    PyObject *mv = PyMemoryView_FromMemory((char *)in, (Py_ssize_t)bytes, PyBUF_READ);
    PyObject *res = mv ? PyObject_CallMethod(c->bridge, "cube", "iO", to_cube, mv) : NULL;
    Py_XDECREF(mv);
    if (!res) {
        char msg[768];
        s_exception(c, msg, sizeof msg);
        snprintf(c->error, sizeof c->error, "%s: %s", what, msg);
    } else {
        Py_buffer v;
        if (PyObject_GetBuffer(res, &v, PyBUF_CONTIG_RO) == 0) {
            if ((size_t)v.len == bytes) {
                memcpy(out, v.buf, bytes);
                rc = 0;
            }
            PyBuffer_Release(&v);
        }
        PyErr_Clear();
        if (rc)
            snprintf(c->error, sizeof c->error, "%s did not return %zu points", what, n);
        Py_DECREF(res);
    }
    PyGILState_Release(g);
    return rc;
}

static int s_to_unit_hypercube(void *ctx, const double *x, size_t n, double *u)
{
    return s_cube(ctx, 1, x, n, u);
}

static int s_from_unit_hypercube(void *ctx, const double *u, size_t n, double *x)
{
    return s_cube(ctx, 0, u, n, x);
}

static const char *s_last_error(void *ctx) { return ((py_ctx_t *)ctx)->error; }
static const char *s_identity(void *ctx) { return ((py_ctx_t *)ctx)->identity; }
static const char *s_context_name(void *ctx) { return ((py_ctx_t *)ctx)->name; }

static void s_fini(void *ctx)
{
    py_ctx_t *c = ctx;
    if (!c)
        return;
    if (s_started) {
        PyGILState_STATE g = PyGILState_Ensure();
        Py_XDECREF(c->loglike);
        Py_XDECREF(c->logprior);
        Py_XDECREF(c->newpoint_lq);
        Py_XDECREF(c->empty);
        Py_XDECREF(c->dtype);
        Py_XDECREF(c->bridge);
        Py_XDECREF(c->embed);
        PyGILState_Release(g);
    }
    if (c->names)
        for (int j = 0; j < c->dim; j++)
            free(c->names[j]);
    free(c->names);
    free(c->lower);
    free(c->upper);
    if (c->reparams)
        for (int j = 0; j < c->dim; j++)
            free(c->reparams[j]);
    free(c->reparams);
    free(c->periodic);
    free(c->period);
    free(c);
}

/* A new reference to bridge.<attr>, None mapped to NULL without error. */
static PyObject *s_attr(PyObject *o, const char *attr, int *failed)
{
    PyObject *v = PyObject_GetAttrString(o, attr);
    if (!v) {
        *failed = 1;
        return NULL;
    }
    if (v == Py_None) {
        Py_DECREF(v);
        return NULL;
    }
    return v;
}

static int s_attr_bool(PyObject *o, const char *attr, int *failed)
{
    PyObject *v = PyObject_GetAttrString(o, attr);
    int r = v ? PyObject_IsTrue(v) : -1;
    Py_XDECREF(v);
    if (r < 0)
        *failed = 1;
    return r > 0;
}

/* names, bounds and the per-parameter declarations (periodic, period,
 * preferred reparameterisation) from the bridge into C arrays. */
static int s_declared(py_ctx_t *c)
{
    static const char *const attrs[] = {"names", "lower", "upper", "periodic", "period",
                                        "reparameterisations"};
    enum { NAMES, LOWER, UPPER, PERIODIC, PERIOD, REPARAMS, N_ATTRS };
    PyObject *v[N_ATTRS] = {NULL};
    int rc = -1;
    for (int a = 0; a < N_ATTRS; a++)
        if (!(v[a] = PyObject_GetAttrString(c->bridge, attrs[a])) || !PyList_Check(v[a]))
            goto out;
    Py_ssize_t d = PyList_Size(v[NAMES]);
    if (d < 0 || d > 100000)
        goto out;
    for (int a = 0; a < N_ATTRS; a++)
        if (PyList_Size(v[a]) != d)
            goto out;
    c->dim = (int)d;
    c->names = calloc((size_t)d + 1, sizeof *c->names);
    c->lower = calloc((size_t)d + 1, sizeof *c->lower);
    c->upper = calloc((size_t)d + 1, sizeof *c->upper);
    c->periodic = calloc((size_t)d + 1, sizeof *c->periodic);
    c->period = calloc((size_t)d + 1, sizeof *c->period);
    c->reparams = calloc((size_t)d + 1, sizeof *c->reparams);
    if (!c->names || !c->lower || !c->upper || !c->periodic || !c->period || !c->reparams) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t j = 0; j < d; j++) {
        const char *s = PyUnicode_AsUTF8(PyList_GET_ITEM(v[NAMES], j));
        if (!s || !(c->names[j] = strdup(s)))
            goto out;
        c->lower[j] = PyFloat_AsDouble(PyList_GET_ITEM(v[LOWER], j));
        c->upper[j] = PyFloat_AsDouble(PyList_GET_ITEM(v[UPPER], j));
        c->periodic[j] = (int)PyLong_AsLong(PyList_GET_ITEM(v[PERIODIC], j));
        c->period[j] = PyFloat_AsDouble(PyList_GET_ITEM(v[PERIOD], j));
        const char *r = PyUnicode_AsUTF8(PyList_GET_ITEM(v[REPARAMS], j));
        if (PyErr_Occurred() || !r)
            goto out;
        if (*r && !(c->reparams[j] = strdup(r)))
            goto out;
        c->declares |= c->periodic[j] || *r;
    }
    c->itemsize = (size_t)d * 8 + 20;
    rc = 0;
out:
    for (int a = 0; a < N_ATTRS; a++)
        Py_XDECREF(v[a]);
    return rc;
}

static int s_init_source(const char *source, const char *args, void **out, nessai_model_info_t *info,
                         char *err, size_t errlen)
{
    *out = NULL;
    if (s_python_start(err, errlen) != 0)
        return 1;
    py_ctx_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    PyGILState_STATE g = PyGILState_Ensure();
    int failed = 0;
    c->embed = PyImport_ImportModule("nessai_farm._embed");
    if (!c->embed) {
        char msg[768];
        s_exception(NULL, msg, sizeof msg);
        snprintf(err, errlen, "cannot import the nessai_farm package (%s): %s", NESSAI_PYTHON_PACKAGE_DIR,
                 msg);
        goto fail;
    }
    c->bridge = PyObject_CallMethod(c->embed, "load", "ss", source, args ? args : "");
    if (!c->bridge) {
        s_exception(c, err, errlen);
        goto fail;
    }
    c->loglike = s_attr(c->bridge, "log_likelihood", &failed);
    c->logprior = s_attr(c->bridge, "log_prior", &failed);
    c->newpoint_lq = s_attr(c->bridge, "new_point_log_prob", &failed);
    c->empty = s_attr(c->bridge, "empty", &failed);
    c->dtype = s_attr(c->bridge, "dtype", &failed);
    c->vectorised = s_attr_bool(c->bridge, "vectorised", &failed);
    c->vectorised_prior = s_attr_bool(c->bridge, "vectorised_prior", &failed);
    PyObject *np = s_attr(c->bridge, "new_point", &failed);
    c->has_new_point = np != NULL;
    Py_XDECREF(np);
    c->has_cube = s_attr_bool(c->bridge, "unit_hypercube", &failed);
    PyObject *truth = s_attr(c->bridge, "truth_log_evidence", &failed);
    c->truth = truth ? PyFloat_AsDouble(truth) : NAN;
    Py_XDECREF(truth);
    PyObject *name = s_attr(c->bridge, "name", &failed);
    PyObject *ident = s_attr(c->bridge, "identity", &failed);
    if (name && PyUnicode_Check(name))
        s_copy(c->name, sizeof c->name, PyUnicode_AsUTF8(name));
    if (ident && PyUnicode_Check(ident))
        s_copy(c->identity, sizeof c->identity, PyUnicode_AsUTF8(ident));
    Py_XDECREF(name);
    Py_XDECREF(ident);
    if (failed || !c->loglike || !c->empty || !c->dtype || !c->identity[0] || s_declared(c) != 0) {
        s_exception(c, err, errlen);
        goto fail;
    }
    PyGILState_Release(g);
    if (info->struct_size < offsetof(nessai_model_info_t, absent_methods) + sizeof info->absent_methods) {
        snprintf(err, errlen, "this program's model loader is too old for Python models");
        goto fail_nogil;
    }
    info->absent_methods = (c->logprior ? 0u : NESSAI_MODEL_NO_LOG_PRIOR) |
                           (c->has_new_point ? 0u : NESSAI_MODEL_NO_NEW_POINT) |
                           (c->has_cube ? 0u : NESSAI_MODEL_NO_UNIT_HYPERCUBE);
    info->truth_log_evidence = c->truth;
    info->dim = c->dim;
    info->names = (const char *const *)c->names;
    info->lower = c->lower;
    info->upper = c->upper;
    if (c->declares) {
        if (info->struct_size < offsetof(nessai_model_info_t, reparameterisations) +
                                    sizeof info->reparameterisations) {
            snprintf(err, errlen, "this program's model loader is too old for the model's "
                     "periodic or reparameterisations declarations");
            goto fail_nogil;
        }
        info->periodic = c->periodic;
        info->period = c->period;
        info->reparameterisations = (const char *const *)c->reparams;
    }
    *out = c;
    return 0;
fail:
    PyGILState_Release(g);
fail_nogil:
    s_fini(c);
    return 1;
}

static int s_init(const char *args, void **ctx, nessai_model_info_t *info, char *err, size_t errlen)
{
    snprintf(err, errlen, "this plugin runs Python models: give --model file.py or file.py:Class");
    return 1;
}

/* Models without a log_prior, new_point or from_unit_hypercube of their
 * own say so in info->absent_methods; the loader then uses its defaults. */
static const nessai_model_t s_model = {
    .abi_version = NESSAI_MODEL_ABI_VERSION,
    .struct_size = sizeof(nessai_model_t),
    .name = "python",
    .init = s_init,
    .fini = s_fini,
    .log_likelihood = s_log_likelihood,
    .log_prior = s_log_prior,
    .new_point = s_new_point,
    .new_point_log_prob = s_new_point_log_prob,
    .last_error = s_last_error,
    .init_source = s_init_source,
    .identity = s_identity,
    .context_name = s_context_name,
    .to_unit_hypercube = s_to_unit_hypercube,
    .from_unit_hypercube = s_from_unit_hypercube,
};

NP_EXPORT const nessai_model_t *nessai_model_entry(void) { return &s_model; }
