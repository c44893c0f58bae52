/* hdf5out.c - cJSON tree -> HDF5 in nessai's layout (nessai/hdf5out.h). */
#include "nessai/hdf5out.h"
#include "nessai/error.h"
#include "nessai/json.h"

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A number node or a raw NaN / Infinity token as a double; 0 if neither. */
static int s_number(const cJSON *it, double *v)
{
    if (cJSON_IsNumber(it)) {
        *v = it->valuedouble;
        return 1;
    }
    if (cJSON_IsRaw(it) && it->valuestring) {
        char *end;
        *v = strtod(it->valuestring, &end);
        return end != it->valuestring && *end == '\0';
    }
    return 0;
}

static int s_integral(double v)
{
    return isfinite(v) && fabs(v) < 9007199254740992.0 && v == floor(v);
}

static void s_key(const char *k, char *out, size_t len)
{
    snprintf(out, len, "%s", k && *k ? k : "_");
    for (char *c = out; *c; c++)
        if (*c == '/')
            *c = '_';
    if (strcmp(out, ".") == 0)
        out[0] = '_';
}

/* Write a dataset of n elements (rank 0 when scalar) of type mem. */
static int s_dataset(hid_t loc, const char *name, hid_t type, int scalar, hsize_t n,
                     const void *buf)
{
    hid_t space = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    if (space < 0)
        return -1;
    hid_t d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 ? -1 : 0;
    if (rc == 0 && (n > 0 || scalar) && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = -1;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(space);
    return rc;
}

static hid_t s_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* h5py's boolean: an int8 enum FALSE = 0, TRUE = 1. */
static hid_t s_bool_type(void)
{
    hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
    int8_t f = 0, tr = 1;
    if (t >= 0 && (H5Tenum_insert(t, "FALSE", &f) < 0 || H5Tenum_insert(t, "TRUE", &tr) < 0)) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

static int s_strings(hid_t loc, const char *name, const char **v, int scalar, hsize_t n)
{
    hid_t t = s_str_type();
    if (t < 0)
        return -1;
    int rc = s_dataset(loc, name, t, scalar, n, v);
    H5Tclose(t);
    return rc;
}

static int s_write(hid_t loc, const char *name, const cJSON *it);

static int s_group(hid_t loc, const char *name, const cJSON *obj)
{
    hid_t g = name ? H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : loc;
    if (g < 0)
        return -1;
    int rc = 0;
    char key[256];
    for (const cJSON *c = obj->child; c && rc == 0; c = c->next) {
        s_key(c->string, key, sizeof key);
        if (H5Lexists(g, key, H5P_DEFAULT) > 0)
            continue; /* a repeated key: the first one wins, as in a dict */
        rc = s_write(g, key, c);
    }
    if (name)
        H5Gclose(g);
    return rc;
}

static int s_array(hid_t loc, const char *name, const cJSON *a)
{
    size_t n = (size_t)cJSON_GetArraySize(a);
    int nums = 1, strs = 1, bools = 1, ints = 1;
    double v = 0.0;
    for (const cJSON *c = a->child; c; c = c->next) {
        int isnum = s_number(c, &v);
        nums &= isnum;
        ints &= isnum && s_integral(v);
        strs &= cJSON_IsString(c);
        bools &= cJSON_IsBool(c);
    }
    if (n == 0)
        return s_dataset(loc, name, H5T_NATIVE_DOUBLE, 0, 0, NULL);
    int rc = -1;
    if (nums) {
        void *buf = malloc(n * 8);
        if (!buf)
            return -1;
        size_t i = 0;
        for (const cJSON *c = a->child; c; c = c->next, i++) {
            s_number(c, &v);
            if (ints)
                ((int64_t *)buf)[i] = (int64_t)v;
            else
                ((double *)buf)[i] = v;
        }
        rc = s_dataset(loc, name, ints ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, 0, n, buf);
        free(buf);
    } else if (strs) {
        const char **buf = malloc(n * sizeof *buf);
        if (!buf)
            return -1;
        size_t i = 0;
        for (const cJSON *c = a->child; c; c = c->next)
            buf[i++] = c->valuestring;
        rc = s_strings(loc, name, buf, 0, n);
        free(buf);
    } else if (bools) {
        int8_t *buf = malloc(n);
        hid_t t = s_bool_type();
        if (buf && t >= 0) {
            size_t i = 0;
            for (const cJSON *c = a->child; c; c = c->next)
                buf[i++] = cJSON_IsTrue(c) ? 1 : 0;
            rc = s_dataset(loc, name, t, 0, n, buf);
        }
        if (t >= 0)
            H5Tclose(t);
        free(buf);
    } else {
        /* objects or mixed kinds: keep the JSON text, nothing is lost */
        char *text = ns_json_print(a);
        if (!text)
            return -1;
        const char *p = text;
        rc = s_strings(loc, name, &p, 1, 1);
        free(text);
    }
    return rc;
}

static int s_write(hid_t loc, const char *name, const cJSON *it)
{
    double v = 0.0;
    if (cJSON_IsObject(it))
        return s_group(loc, name, it);
    if (cJSON_IsArray(it))
        return s_array(loc, name, it);
    if (s_number(it, &v)) {
        if (s_integral(v)) {
            int64_t k = (int64_t)v;
            return s_dataset(loc, name, H5T_NATIVE_INT64, 1, 1, &k);
        }
        return s_dataset(loc, name, H5T_NATIVE_DOUBLE, 1, 1, &v);
    }
    if (cJSON_IsBool(it)) {
        int8_t b = cJSON_IsTrue(it) ? 1 : 0;
        hid_t t = s_bool_type();
        int rc = t < 0 ? -1 : s_dataset(loc, name, t, 1, 1, &b);
        if (t >= 0)
            H5Tclose(t);
        return rc;
    }
    const char *s = cJSON_IsString(it) ? it->valuestring
                  : cJSON_IsRaw(it)    ? it->valuestring
                                       : "__none__"; /* null, as nessai writes None */
    return s_strings(loc, name, &s, 1, 1);
}

int ns_hdf5_write_json(const cJSON *doc, const char *path, char *err, size_t errlen)
{
    if (!cJSON_IsObject(doc)) {
        snprintf(err, errlen, "internal: the result is not an object");
        return NS_ERR_INVAL;
    }
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n);
    if (!tmp) {
        snprintf(err, errlen, "out of memory");
        return NS_ERR_NOMEM;
    }
    snprintf(tmp, n, "%s.temp", path);
    /* errors are reported here, once, not as HDF5's stack dump on stderr */
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rc = NS_ERR_IO;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        snprintf(err, errlen, "cannot create %s: check that the output directory is writable",
                 tmp);
    } else {
        int w = s_group(f, NULL, doc);
        int c = H5Fclose(f);
        if (w == 0 && c >= 0 && rename(tmp, path) == 0)
            rc = NS_OK;
        else
            snprintf(err, errlen, "could not write %s (disk full or not writable?)", path);
    }
    if (rc != NS_OK)
        remove(tmp);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    free(tmp);
    return rc;
}
