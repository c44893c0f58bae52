/* test_hdf5out.c - ns_hdf5_write_json: nessai's result.hdf5 layout read
 * back through the HDF5 C API (groups, int64 / float64 / string / bool
 * datasets typed by the schema and never by the values, record arrays as
 * packed compound datasets, NaN tokens, None), values that do not fit the
 * schema, and a clean failure on an unwritable path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nessai/error.h"
#include "nessai/hdf5out.h"

static char s_path[256];

typedef struct {
    double x0, logl;
    int32_t it;
} s_row_t;

/* Class, rank and size of a dataset. */
static H5T_class_t s_info(hid_t f, const char *name, int *rank, hsize_t *n, size_t *size)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    H5T_class_t c = H5Tget_class(t);
    *rank = H5Sget_simple_extent_ndims(s);
    *n = 1;
    if (*rank == 1)
        H5Sget_simple_extent_dims(s, n, NULL);
    *size = H5Tget_size(t);
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    return c;
}

static void s_read(hid_t f, const char *name, hid_t mem, void *buf)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dread(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Dclose(d);
}

static char *s_read_string(hid_t f, const char *name)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    char *s = NULL;
    s_read(f, name, t, &s);
    char *copy = strdup(s);
    H5free_memory(s);
    H5Tclose(t);
    return copy;
}

static void test_layout_round_trip(void **state)
{
    (void)state;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "seed", 1234);
    cJSON_AddNumberToObject(doc, "log_evidence", -23.902538801150071);
    cJSON_AddItemToObject(doc, "final_p_value", cJSON_CreateRaw("NaN"));
    cJSON_AddStringToObject(doc, "version", "0.1.0");
    cJSON_AddNullToObject(doc, "glasflow_version");
    cJSON_AddBoolToObject(doc, "finalised", 1);
    /* rows [x0, logL, it]; x0 of row 2 is a whole number and stays float64 */
    cJSON *ns = cJSON_AddArrayToObject(doc, "nested_samples");
    for (int i = 0; i < 6; i++) {
        cJSON *row = cJSON_CreateArray();
        cJSON_AddItemToArray(row, i == 5 ? cJSON_CreateRaw("-Infinity")
                                         : cJSON_CreateNumber(i == 2 ? 3.0 : 0.1 * i + 1e-17));
        cJSON_AddItemToArray(row, cJSON_CreateNumber(-0.5 * i));
        cJSON_AddItemToArray(row, cJSON_CreateNumber(i == 5 ? 7 : i - 1));
        cJSON_AddItemToArray(ns, row);
    }
    /* columns {field: [values]}, in another order than the schema's */
    cJSON *ps = cJSON_AddObjectToObject(doc, "posterior_samples");
    const double pit[2] = {4, 9}, plogl[2] = {-1.25, -2.0}, px0[2] = {0.5, -7.0};
    cJSON_AddItemToObject(ps, "it", cJSON_CreateDoubleArray(pit, 2));
    cJSON_AddItemToObject(ps, "logL", cJSON_CreateDoubleArray(plogl, 2));
    cJSON_AddItemToObject(ps, "x0", cJSON_CreateDoubleArray(px0, 2));
    cJSON_AddArrayToObject(doc, "empty_samples");
    cJSON_AddNumberToObject(doc, "sampling_time", 12.0); /* whole, untyped: float64 */
    cJSON *idx = cJSON_AddArrayToObject(doc, "insertion_indices");
    cJSON_AddItemToArray(idx, cJSON_CreateNumber(4));
    cJSON_AddItemToArray(idx, cJSON_CreateNumber(0));
    cJSON *h = cJSON_AddObjectToObject(doc, "history");
    cJSON_AddArrayToObject(h, "checkpoint_iterations");
    cJSON *ml = cJSON_AddArrayToObject(h, "min_log_likelihood"); /* whole values, float64 */
    cJSON_AddItemToArray(ml, cJSON_CreateNumber(-3));
    cJSON_AddItemToArray(ml, cJSON_CreateNumber(-2));
    cJSON *cmd = cJSON_AddArrayToObject(doc, "command_line");
    cJSON_AddItemToArray(cmd, cJSON_CreateString("nessai-coordinator"));
    cJSON_AddItemToArray(cmd, cJSON_CreateString("--seed=\xc3\xa9"));
    cJSON *mixed = cJSON_AddArrayToObject(doc, "mixed");
    cJSON_AddItemToArray(mixed, cJSON_CreateNumber(1));
    cJSON_AddItemToArray(mixed, cJSON_CreateString("a"));
    cJSON_AddNumberToObject(doc, "a/b", 2.5);

    ns_h5_schema_t *schema = ns_h5_schema_new();
    assert_non_null(schema);
    const char *fields[3] = {"x0", "logL", "it"};
    const ns_h5_dtype_t types[3] = {NS_H5_FLOAT64, NS_H5_FLOAT64, NS_H5_INT32};
    assert_int_equal(ns_h5_schema_add_records(schema, "nested_samples", fields, types, 3), NS_OK);
    assert_int_equal(ns_h5_schema_add_records(schema, "posterior_samples", fields, types, 3), NS_OK);
    assert_int_equal(ns_h5_schema_add_records(schema, "empty_samples", fields, types, 3), NS_OK);
    assert_int_equal(ns_h5_schema_add(schema, "seed", NS_H5_INT64), NS_OK);
    assert_int_equal(ns_h5_schema_add(schema, "insertion_indices", NS_H5_INT64), NS_OK);
    assert_int_equal(ns_h5_schema_add(schema, "history/checkpoint_iterations", NS_H5_INT64), NS_OK);
    char err[256] = "";
    assert_int_equal(ns_hdf5_write_json(doc, schema, s_path, err, sizeof err), NS_OK);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.temp", s_path);
    assert_int_not_equal(access(tmp, F_OK), 0);

    hid_t f = H5Fopen(s_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    int rank;
    hsize_t n;
    size_t size;
    assert_int_equal(s_info(f, "seed", &rank, &n, &size), H5T_INTEGER);
    assert_int_equal(rank, 0);
    assert_int_equal(size, 8);
    int64_t seed;
    s_read(f, "seed", H5T_NATIVE_INT64, &seed);
    assert_int_equal(seed, 1234);
    double v;
    assert_int_equal(s_info(f, "log_evidence", &rank, &n, &size), H5T_FLOAT);
    s_read(f, "log_evidence", H5T_NATIVE_DOUBLE, &v);
    assert_true(v == -23.902538801150071);
    s_read(f, "final_p_value", H5T_NATIVE_DOUBLE, &v);
    assert_true(isnan(v));
    char *s = s_read_string(f, "version");
    assert_string_equal(s, "0.1.0");
    free(s);
    s = s_read_string(f, "glasflow_version");
    assert_string_equal(s, "__none__");
    free(s);
    assert_int_equal(s_info(f, "finalised", &rank, &n, &size), H5T_ENUM);
    /* h5py's bool: an int8 enum with FALSE = 0 and TRUE = 1 */
    int8_t b = 0;
    hid_t d = H5Dopen2(f, "finalised", H5P_DEFAULT), t = H5Dget_type(d);
    char *name = H5Tget_member_name(t, 1);
    assert_string_equal(name, "TRUE");
    H5free_memory(name);
    assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &b) >= 0);
    assert_int_equal(b, 1);
    H5Tclose(t);
    H5Dclose(d);
    /* a record array: one packed compound dataset x0 <f8, logL <f8, it <i4 */
    assert_int_equal(s_info(f, "nested_samples", &rank, &n, &size), H5T_COMPOUND);
    assert_int_equal(rank, 1);
    assert_int_equal(n, 6);
    assert_int_equal(size, 20);
    d = H5Dopen2(f, "nested_samples", H5P_DEFAULT);
    t = H5Dget_type(d);
    assert_int_equal(H5Tget_nmembers(t), 3);
    for (int m = 0; m < 3; m++) {
        char *mn = H5Tget_member_name(t, (unsigned)m);
        assert_string_equal(mn, fields[m]);
        H5free_memory(mn);
        assert_int_equal(H5Tget_member_offset(t, (unsigned)m), (size_t)(8 * m));
        hid_t mt = H5Tget_member_type(t, (unsigned)m);
        assert_true(H5Tequal(mt, m == 2 ? H5T_STD_I32LE : H5T_IEEE_F64LE) > 0);
        H5Tclose(mt);
    }
    H5Tclose(t);
    s_row_t rows[6];
    hid_t mem = H5Tcreate(H5T_COMPOUND, sizeof rows[0]);
    H5Tinsert(mem, "x0", offsetof(s_row_t, x0), H5T_NATIVE_DOUBLE);
    H5Tinsert(mem, "logL", offsetof(s_row_t, logl), H5T_NATIVE_DOUBLE);
    H5Tinsert(mem, "it", offsetof(s_row_t, it), H5T_NATIVE_INT32);
    assert_true(H5Dread(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
    H5Tclose(mem);
    H5Dclose(d);
    for (int i = 0; i < 5; i++) {
        assert_true(rows[i].x0 == (i == 2 ? 3.0 : 0.1 * i + 1e-17));
        assert_true(rows[i].logl == -0.5 * i);
        assert_int_equal(rows[i].it, i - 1);
    }
    assert_true(isinf(rows[5].x0) && rows[5].x0 < 0);
    assert_int_equal(rows[5].it, 7);
    /* columns: the same compound type, fields in the schema's order */
    assert_int_equal(s_info(f, "posterior_samples", &rank, &n, &size), H5T_COMPOUND);
    assert_int_equal(n, 2);
    assert_int_equal(size, 20);
    d = H5Dopen2(f, "posterior_samples", H5P_DEFAULT);
    t = H5Dget_type(d);
    char *m0 = H5Tget_member_name(t, 0);
    assert_string_equal(m0, "x0");
    H5free_memory(m0);
    H5Tclose(t);
    mem = H5Tcreate(H5T_COMPOUND, sizeof rows[0]);
    H5Tinsert(mem, "x0", offsetof(s_row_t, x0), H5T_NATIVE_DOUBLE);
    H5Tinsert(mem, "logL", offsetof(s_row_t, logl), H5T_NATIVE_DOUBLE);
    H5Tinsert(mem, "it", offsetof(s_row_t, it), H5T_NATIVE_INT32);
    assert_true(H5Dread(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
    H5Tclose(mem);
    H5Dclose(d);
    for (int i = 0; i < 2; i++) {
        assert_true(rows[i].x0 == px0[i] && rows[i].logl == plogl[i]);
        assert_int_equal(rows[i].it, (int)pit[i]);
    }
    /* an empty record array keeps its fields */
    assert_int_equal(s_info(f, "empty_samples", &rank, &n, &size), H5T_COMPOUND);
    assert_int_equal(n, 0);
    /* untyped numbers are float64 even when whole; typed ones int64 */
    assert_int_equal(s_info(f, "sampling_time", &rank, &n, &size), H5T_FLOAT);
    assert_int_equal(s_info(f, "history/min_log_likelihood", &rank, &n, &size), H5T_FLOAT);
    assert_int_equal(size, 8);
    assert_int_equal(s_info(f, "insertion_indices", &rank, &n, &size), H5T_INTEGER);
    assert_int_equal(size, 8);
    assert_int_equal(s_info(f, "history/checkpoint_iterations", &rank, &n, &size), H5T_INTEGER);
    assert_int_equal(rank, 1);
    assert_int_equal(n, 0);
    assert_int_equal(s_info(f, "command_line", &rank, &n, &size), H5T_STRING);
    assert_int_equal(n, 2);
    /* mixed kinds keep their JSON text; '/' in a key becomes '_' */
    s = s_read_string(f, "mixed");
    assert_string_equal(s, "[1, \"a\"]");
    free(s);
    s_read(f, "a_b", H5T_NATIVE_DOUBLE, &v);
    assert_true(v == 2.5);
    H5Fclose(f);
    ns_h5_schema_destroy(&schema);
    assert_null(schema);
    cJSON_Delete(doc);
    unlink(s_path);
}

/* Values that do not fit their schema entry fail with the key's path and leave no file. */
static void test_schema_misfit(void **state)
{
    (void)state;
    ns_h5_schema_t *schema = ns_h5_schema_new();
    const char *fields[2] = {"x", "it"};
    const ns_h5_dtype_t types[2] = {NS_H5_FLOAT64, NS_H5_INT32};
    assert_int_equal(ns_h5_schema_add_records(schema, "rec", fields, types, 2), NS_OK);
    assert_int_equal(ns_h5_schema_add(schema, "g/count", NS_H5_INT64), NS_OK);
    const char *bad[] = {
        "{\"rec\": [[1.5, 2], [1.5]]}",         /* short row */
        "{\"rec\": [[1.5, 2.5]]}",              /* non-integral in an int32 field */
        "{\"rec\": [[1.5, 3000000000]]}",       /* out of int32 range */
        "{\"rec\": {\"x\": [1]}}",              /* a column missing */
        "{\"rec\": {\"x\": [1], \"it\": [1, 2]}}", /* columns of different lengths */
        "{\"rec\": {\"x\": [1], \"it\": [1], \"y\": [1]}}", /* a field the schema lacks */
        "{\"rec\": 3}",                        /* neither rows nor columns */
        "{\"g\": {\"count\": 0.25}}",           /* non-integral int64 scalar */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cJSON *doc = cJSON_Parse(bad[k]);
        assert_non_null(doc);
        char err[256] = "";
        assert_int_equal(ns_hdf5_write_json(doc, schema, s_path, err, sizeof err), NS_ERR_INVAL);
        assert_non_null(strstr(err, k == 7 ? "g/count" : "rec"));
        assert_int_not_equal(access(s_path, F_OK), 0);
        cJSON_Delete(doc);
    }
    ns_h5_schema_destroy(&schema);
}

static void test_unwritable_path(void **state)
{
    (void)state;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "x", 1);
    char err[256] = "";
    assert_int_equal(ns_hdf5_write_json(doc, NULL, "/nonexistent-dir/result.hdf5", err, sizeof err),
                     NS_ERR_IO);
    assert_non_null(strstr(err, "cannot create /nonexistent-dir/result.hdf5.temp"));
    cJSON_Delete(doc);
}

int main(void)
{
    snprintf(s_path, sizeof s_path, "/tmp/ns_hdf5_test_%d.hdf5", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_round_trip),
        cmocka_unit_test(test_schema_misfit),
        cmocka_unit_test(test_unwritable_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
