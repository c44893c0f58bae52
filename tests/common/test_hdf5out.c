/* test_hdf5out.c - ns_hdf5_write_json: nessai's result.hdf5 layout read
 * back through the HDF5 C API (groups, int64 / float64 / string / bool
 * datasets, NaN tokens, None), and a clean failure on an unwritable path. */
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
    cJSON *ns = cJSON_AddObjectToObject(doc, "nested_samples");
    cJSON *x0 = cJSON_AddArrayToObject(ns, "x0");
    cJSON *it = cJSON_AddArrayToObject(ns, "it");
    for (int i = 0; i < 5; i++) {
        cJSON_AddItemToArray(x0, cJSON_CreateNumber(0.1 * i + 1e-17));
        cJSON_AddItemToArray(it, cJSON_CreateNumber(i - 1));
    }
    cJSON_AddItemToArray(x0, cJSON_CreateRaw("-Infinity"));
    cJSON_AddItemToArray(it, cJSON_CreateNumber(7));
    cJSON *h = cJSON_AddObjectToObject(doc, "history");
    cJSON_AddArrayToObject(h, "checkpoint_iterations");
    cJSON *cmd = cJSON_AddArrayToObject(doc, "command_line");
    cJSON_AddItemToArray(cmd, cJSON_CreateString("nessai-coordinator"));
    cJSON_AddItemToArray(cmd, cJSON_CreateString("--seed=\xc3\xa9"));
    cJSON *mixed = cJSON_AddArrayToObject(doc, "mixed");
    cJSON_AddItemToArray(mixed, cJSON_CreateNumber(1));
    cJSON_AddItemToArray(mixed, cJSON_CreateString("a"));
    cJSON_AddNumberToObject(doc, "a/b", 2.5);

    char err[256] = "";
    assert_int_equal(ns_hdf5_write_json(doc, s_path, err, sizeof err), NS_OK);
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
    /* a record array: a group with one dataset per field */
    assert_int_equal(s_info(f, "nested_samples/x0", &rank, &n, &size), H5T_FLOAT);
    assert_int_equal(n, 6);
    double xs[6];
    s_read(f, "nested_samples/x0", H5T_NATIVE_DOUBLE, xs);
    for (int i = 0; i < 5; i++)
        assert_true(xs[i] == 0.1 * i + 1e-17);
    assert_true(isinf(xs[5]) && xs[5] < 0);
    assert_int_equal(s_info(f, "nested_samples/it", &rank, &n, &size), H5T_INTEGER);
    int64_t its[6];
    s_read(f, "nested_samples/it", H5T_NATIVE_INT64, its);
    assert_int_equal(its[0], -1);
    assert_int_equal(its[5], 7);
    assert_int_equal(s_info(f, "history/checkpoint_iterations", &rank, &n, &size), H5T_FLOAT);
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
    cJSON_Delete(doc);
    unlink(s_path);
}

static void test_unwritable_path(void **state)
{
    (void)state;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "x", 1);
    char err[256] = "";
    assert_int_equal(ns_hdf5_write_json(doc, "/nonexistent-dir/result.hdf5", err, sizeof err),
                     NS_ERR_IO);
    assert_non_null(strstr(err, "cannot create /nonexistent-dir/result.hdf5.temp"));
    cJSON_Delete(doc);
}

int main(void)
{
    snprintf(s_path, sizeof s_path, "/tmp/ns_hdf5_test_%d.hdf5", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_round_trip),
        cmocka_unit_test(test_unwritable_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
