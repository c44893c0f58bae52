/* hdf5out.c - cJSON tree -> HDF5 in nessai's layout, typed by a schema (nessai/hdf5out.h). */
#include "nessai/hdf5out.h"
#include "nessai/error.h"
#include "nessai/json.h"

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- schema ---- */

typedef struct {
    char *path;
    ns_h5_dtype_t dtype;
    char **names; /* records: n_fields names and types, else NULL */
    ns_h5_dtype_t *dtypes;
    size_t n_fields;
} s_entry_t;

struct ns_h5_schema {
    s_entry_t *e;
    size_t n, cap;
};

ns_h5_schema_t *ns_h5_schema_new(void) { return calloc(1, sizeof(ns_h5_schema_t)); }

static void s_entry_free(s_entry_t *e)
{
    for (size_t i = 0; e->names && i < e->n_fields; i++)
        free(e->names[i]);
    free(e->names);
    free(e->dtypes);
    free(e->path);
}

void ns_h5_schema_destroy(ns_h5_schema_t **schema)
{
    if (!schema || !*schema)
        return;
    for (size_t i = 0; i < (*schema)->n; i++)
        s_entry_free(&(*schema)->e[i]);
    free((*schema)->e);
    free(*schema);
    *schema = NULL;
}

static s_entry_t *s_push(ns_h5_schema_t *s, const char *path)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 32;
        s_entry_t *e = realloc(s->e, cap * sizeof *e);
        if (!e)
            return NULL;
        s->e = e;
        s->cap = cap;
    }
    s_entry_t *e = &s->e[s->n];
    memset(e, 0, sizeof *e);
    if (!(e->path = strdup(path)))
        return NULL;
    s->n++;
    return e;
}

int ns_h5_schema_add(ns_h5_schema_t *schema, const char *path, ns_h5_dtype_t dtype)
{
    s_entry_t *e = schema && path ? s_push(schema, path) : NULL;
    if (!e)
        return NS_ERR_NOMEM;
    e->dtype = dtype;
    return NS_OK;
}

int ns_h5_schema_add_records(ns_h5_schema_t *schema, const char *path, const char *const *names,
                             const ns_h5_dtype_t *dtypes, size_t n)
{
    s_entry_t *e = schema && path && n > 0 ? s_push(schema, path) : NULL;
    if (!e)
        return NS_ERR_NOMEM;
    e->names = calloc(n, sizeof *e->names);
    e->dtypes = malloc(n * sizeof *e->dtypes);
    if (!e->names || !e->dtypes)
        goto fail;
    e->n_fields = n;
    for (size_t i = 0; i < n; i++)
        if (!(e->names[i] = strdup(names[i])))
            goto fail;
    memcpy(e->dtypes, dtypes, n * sizeof *dtypes);
    return NS_OK;
fail:
    s_entry_free(e);
    schema->n--;
    return NS_ERR_NOMEM;
}

static const s_entry_t *s_lookup(const ns_h5_schema_t *s, const char *path)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(s->e[i].path, path) == 0)
            return &s->e[i];
    return NULL;
}

/* ---- writer ---- */

typedef struct {
    const ns_h5_schema_t *schema;
    char path[1024]; /* path of the key being written, "a/b/c" */
    char *err;
    size_t errlen;
    int rc; /* NS_ERR_INVAL once a value misfits the schema */
} s_ctx_t;

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

static hid_t s_file_type(ns_h5_dtype_t t)
{
    return t == NS_H5_INT64 ? H5T_STD_I64LE : t == NS_H5_INT32 ? H5T_STD_I32LE : H5T_IEEE_F64LE;
}

static hid_t s_mem_type(ns_h5_dtype_t t)
{
    return t == NS_H5_INT64 ? H5T_NATIVE_INT64 : t == NS_H5_INT32 ? H5T_NATIVE_INT32 : H5T_NATIVE_DOUBLE;
}

static size_t s_size(ns_h5_dtype_t t) { return t == NS_H5_INT32 ? 4 : 8; }

static int s_misfit(s_ctx_t *c, const char *what)
{
    snprintf(c->err, c->errlen, "internal: %s: %s", c->path, what);
    c->rc = NS_ERR_INVAL;
    return -1;
}

/* Store v as dtype at p; -1 (and the reason in c) when it does not fit. */
static int s_store(s_ctx_t *c, ns_h5_dtype_t t, double v, unsigned char *p)
{
    if (t == NS_H5_FLOAT64) {
        memcpy(p, &v, 8);
        return 0;
    }
    double lim = t == NS_H5_INT32 ? 2147483648.0 : 9223372036854775808.0;
    if (!(v == floor(v) && v >= -lim && v < lim))
        return s_misfit(c, "a value of an integer field is not an integer in range");
    if (t == NS_H5_INT32) {
        int32_t k = (int32_t)v;
        memcpy(p, &k, 4);
    } else {
        int64_t k = (int64_t)v;
        memcpy(p, &k, 8);
    }
    return 0;
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

/* Write a dataset of n elements (rank 0 when scalar): file type ftype, memory type mtype. */
static int s_dataset2(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int scalar, hsize_t n,
                      const void *buf)
{
    hid_t space = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    if (space < 0)
        return -1;
    hid_t d = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 ? -1 : 0;
    if (rc == 0 && (n > 0 || scalar) && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = -1;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(space);
    return rc;
}

static int s_dataset(hid_t loc, const char *name, hid_t type, int scalar, hsize_t n, const void *buf)
{
    return s_dataset2(loc, name, type, type, scalar, n, buf);
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

static int s_write(s_ctx_t *c, hid_t loc, const char *name, const cJSON *it);

/* Append "/key" to the context path for the duration of a child's write. */
static size_t s_path_push(s_ctx_t *c, const char *key)
{
    size_t len = strlen(c->path);
    snprintf(c->path + len, sizeof c->path - len, "%s%s", len ? "/" : "", key);
    return len;
}

static int s_group(s_ctx_t *c, hid_t loc, const char *name, const cJSON *obj)
{
    hid_t g = name ? H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : loc;
    if (g < 0)
        return -1;
    int rc = 0;
    char key[256];
    for (const cJSON *ch = obj->child; ch && rc == 0; ch = ch->next) {
        s_key(ch->string, key, sizeof key);
        if (H5Lexists(g, key, H5P_DEFAULT) > 0)
            continue; /* a repeated key: the first one wins, as in a dict */
        size_t len = s_path_push(c, key);
        rc = s_write(c, g, key, ch);
        c->path[len] = '\0';
    }
    if (name)
        H5Gclose(g);
    return rc;
}

/* One field value of a record into p; 0, or -1 (reported) when it is not a
 * number or does not fit the field's type. */
static int s_record_field(s_ctx_t *c, ns_h5_dtype_t t, const cJSON *x, unsigned char *p)
{
    double v = 0.0;
    if (!s_number(x, &v))
        return s_misfit(c, "a field value is not a number");
    return s_store(c, t, v, p) < 0 ? -1 : 0;
}

/* Pack the n records of a, rows ([[...], ...]) or columns ({field: [...]}),
 * into buf (width bytes per record, field f at off[f]). */
static int s_records_fill(s_ctx_t *c, const cJSON *a, const s_entry_t *e, size_t n,
                          const size_t *off, size_t width, unsigned char *buf)
{
    if (cJSON_IsObject(a)) {
        for (size_t f = 0; f < e->n_fields; f++) {
            const cJSON *col = cJSON_GetObjectItemCaseSensitive(a, e->names[f]);
            if (!cJSON_IsArray(col) || (size_t)cJSON_GetArraySize(col) != n)
                return s_misfit(c, "a field of the record array is missing or of another length");
            size_t i = 0;
            for (const cJSON *x = col->child; x; x = x->next, i++)
                if (s_record_field(c, e->dtypes[f], x, buf + i * width + off[f]) < 0)
                    return -1;
        }
        if ((size_t)cJSON_GetArraySize(a) != e->n_fields)
            return s_misfit(c, "the record array has fields the schema does not name");
        return 0;
    }
    size_t i = 0;
    for (const cJSON *row = a->child; row; row = row->next, i++) {
        if (!cJSON_IsArray(row) || (size_t)cJSON_GetArraySize(row) != e->n_fields)
            return s_misfit(c, "a row does not have one value per field");
        size_t f = 0;
        for (const cJSON *x = row->child; x; x = x->next, f++)
            if (s_record_field(c, e->dtypes[f], x, buf + i * width + off[f]) < 0)
                return -1;
    }
    return 0;
}

/* A record array, JSON rows or columns -> one packed compound dataset. */
static int s_records(s_ctx_t *c, hid_t loc, const char *name, const cJSON *a, const s_entry_t *e)
{
    if (!cJSON_IsArray(a) && !cJSON_IsObject(a))
        return s_misfit(c, "a record array is neither rows nor {field: [values]}");
    size_t n = 0, width = 0;
    if (cJSON_IsArray(a))
        n = (size_t)cJSON_GetArraySize(a);
    else if (a->child)
        n = (size_t)cJSON_GetArraySize(a->child);
    size_t *off = malloc(e->n_fields * sizeof *off);
    if (!off)
        return -1;
    for (size_t f = 0; f < e->n_fields; f++) {
        off[f] = width;
        width += s_size(e->dtypes[f]);
    }
    hid_t ft = H5Tcreate(H5T_COMPOUND, width), mt = H5Tcreate(H5T_COMPOUND, width);
    int rc = ft < 0 || mt < 0 ? -1 : 0;
    for (size_t f = 0; rc == 0 && f < e->n_fields; f++)
        if (H5Tinsert(ft, e->names[f], off[f], s_file_type(e->dtypes[f])) < 0 ||
            H5Tinsert(mt, e->names[f], off[f], s_mem_type(e->dtypes[f])) < 0)
            rc = -1;
    unsigned char *buf = rc == 0 ? malloc((n ? n : 1) * width) : NULL;
    if (!buf)
        rc = -1;
    if (rc == 0)
        rc = s_records_fill(c, a, e, n, off, width, buf);
    if (rc == 0)
        rc = s_dataset2(loc, name, ft, mt, 0, n, buf);
    free(buf);
    free(off);
    if (ft >= 0)
        H5Tclose(ft);
    if (mt >= 0)
        H5Tclose(mt);
    return rc;
}

static int s_array(s_ctx_t *c, hid_t loc, const char *name, const cJSON *a)
{
    const s_entry_t *e = s_lookup(c->schema, c->path);
    ns_h5_dtype_t t = e ? e->dtype : NS_H5_FLOAT64;
    size_t n = (size_t)cJSON_GetArraySize(a);
    int nums = 1, strs = 1, bools = 1;
    double v = 0.0;
    for (const cJSON *ch = a->child; ch; ch = ch->next) {
        nums &= s_number(ch, &v);
        strs &= cJSON_IsString(ch);
        bools &= cJSON_IsBool(ch);
    }
    if (n == 0) /* h5py writes an empty list as float64 */
        return s_dataset(loc, name, e ? s_file_type(t) : H5T_IEEE_F64LE, 0, 0, NULL);
    int rc = -1;
    if (nums) {
        unsigned char *buf = malloc(n * s_size(t));
        if (!buf)
            return -1;
        size_t i = 0;
        rc = 0;
        for (const cJSON *ch = a->child; rc == 0 && ch; ch = ch->next, i++) {
            s_number(ch, &v);
            rc = s_store(c, t, v, buf + i * s_size(t));
        }
        if (rc == 0)
            rc = s_dataset2(loc, name, s_file_type(t), s_mem_type(t), 0, n, buf);
        free(buf);
    } else if (strs) {
        const char **buf = malloc(n * sizeof *buf);
        if (!buf)
            return -1;
        size_t i = 0;
        for (const cJSON *ch = a->child; ch; ch = ch->next)
            buf[i++] = ch->valuestring;
        rc = s_strings(loc, name, buf, 0, n);
        free(buf);
    } else if (bools) {
        int8_t *buf = malloc(n);
        hid_t bt = s_bool_type();
        if (buf && bt >= 0) {
            size_t i = 0;
            for (const cJSON *ch = a->child; ch; ch = ch->next)
                buf[i++] = cJSON_IsTrue(ch) ? 1 : 0;
            rc = s_dataset(loc, name, bt, 0, n, buf);
        }
        if (bt >= 0)
            H5Tclose(bt);
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

static int s_write(s_ctx_t *c, hid_t loc, const char *name, const cJSON *it)
{
    double v = 0.0;
    const s_entry_t *e = s_lookup(c->schema, c->path);
    if (e && e->n_fields)
        return s_records(c, loc, name, it, e);
    if (cJSON_IsObject(it))
        return s_group(c, loc, name, it);
    if (cJSON_IsArray(it))
        return s_array(c, loc, name, it);
    if (s_number(it, &v)) {
        ns_h5_dtype_t t = e && !e->n_fields ? e->dtype : NS_H5_FLOAT64;
        unsigned char buf[8];
        if (s_store(c, t, v, buf) < 0)
            return -1;
        return s_dataset2(loc, name, s_file_type(t), s_mem_type(t), 1, 1, buf);
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

int ns_hdf5_write_json(const cJSON *doc, const ns_h5_schema_t *schema, const char *path, char *err,
                       size_t errlen)
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
        s_ctx_t c = {.schema = schema, .err = err, .errlen = errlen, .rc = NS_OK};
        int w = s_group(&c, f, NULL, doc);
        int cl = H5Fclose(f);
        if (w == 0 && cl >= 0 && rename(tmp, path) == 0)
            rc = NS_OK;
        else if (c.rc != NS_OK)
            rc = c.rc;
        else
            snprintf(err, errlen, "could not write %s (disk full or not writable?)", path);
    }
    if (rc != NS_OK)
        remove(tmp);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    free(tmp);
    return rc;
}
