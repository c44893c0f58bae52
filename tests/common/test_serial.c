/* Serial buffers: round trips, and every truncation is detected, not read past. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nessai/error.h"
#include "nessai/serial.h"

static void s_write_sample(ns_buf_t *b)
{
    double v[3] = {1.5, -INFINITY, NAN};
    int64_t iv[2] = {-7, 1LL << 40};
    ns_buf_put_tag(b, "TEST", 3);
    ns_buf_put_u8(b, 200);
    ns_buf_put_u32(b, 0xdeadbeef);
    ns_buf_put_u64(b, 1ULL << 63);
    ns_buf_put_i64(b, -42);
    ns_buf_put_f64(b, M_PI);
    ns_buf_put_f64s(b, v, 3);
    ns_buf_put_i64s(b, iv, 2);
    ns_buf_put_str(b, "hello");
    ns_buf_put_str(b, NULL);
}

static int s_read_sample(ns_buf_t *b)
{
    uint32_t ver, u32;
    uint8_t u8;
    uint64_t u64;
    int64_t i64;
    double f, v[3];
    int64_t *iv = NULL;
    size_t niv;
    char *s1 = NULL, *s2 = NULL;
    int rc;
    if ((rc = ns_buf_get_tag(b, "TEST", &ver)) || (rc = ns_buf_get_u8(b, &u8)) ||
        (rc = ns_buf_get_u32(b, &u32)) || (rc = ns_buf_get_u64(b, &u64)) ||
        (rc = ns_buf_get_i64(b, &i64)) || (rc = ns_buf_get_f64(b, &f)) ||
        (rc = ns_buf_get_f64s_n(b, v, 3)) || (rc = ns_buf_get_i64s(b, &iv, &niv, 10)) ||
        (rc = ns_buf_get_str(b, &s1)) || (rc = ns_buf_get_str(b, &s2))) {
        free(iv);
        free(s1);
        return rc;
    }
    assert_int_equal(ver, 3);
    assert_int_equal(u8, 200);
    assert_int_equal(u32, 0xdeadbeef);
    assert_true(u64 == 1ULL << 63);
    assert_int_equal(i64, -42);
    assert_true(f == M_PI);
    assert_true(v[0] == 1.5 && v[1] == -INFINITY && isnan(v[2]));
    assert_int_equal(niv, 2);
    assert_true(iv[0] == -7 && iv[1] == 1LL << 40);
    assert_string_equal(s1, "hello");
    assert_null(s2);
    free(iv);
    free(s1);
    return NS_OK;
}

static void test_round_trip(void **state)
{
    (void)state;
    ns_buf_t b;
    ns_buf_init(&b);
    s_write_sample(&b);
    assert_int_equal(ns_buf_error(&b), NS_OK);
    ns_buf_t r;
    ns_buf_view(&r, b.data, b.len);
    assert_int_equal(s_read_sample(&r), NS_OK);
    assert_int_equal(ns_buf_remaining(&r), 0);
    ns_buf_free(&b);
}

static void test_every_truncation_detected(void **state)
{
    (void)state;
    ns_buf_t b;
    ns_buf_init(&b);
    s_write_sample(&b);
    for (size_t cut = 0; cut < b.len; cut++) {
        ns_buf_t r;
        ns_buf_view(&r, b.data, cut);
        int rc = s_read_sample(&r);
        if (rc != NS_ERR_CORRUPT)
            fail_msg("truncation at %zu of %zu not detected (rc=%d)", cut, b.len, rc);
    }
    ns_buf_free(&b);
}

static void test_bad_tag_and_lengths(void **state)
{
    (void)state;
    ns_buf_t b;
    ns_buf_init(&b);
    ns_buf_put_tag(&b, "ABCD", 1);
    ns_buf_put_u64(&b, 1ULL << 60); /* absurd array length */
    ns_buf_t r;
    uint32_t v;
    ns_buf_view(&r, b.data, b.len);
    assert_int_equal(ns_buf_get_tag(&r, "ABCE", &v), NS_ERR_CORRUPT);
    ns_buf_view(&r, b.data, b.len);
    assert_int_equal(ns_buf_get_tag(&r, "ABCD", &v), NS_OK);
    double *arr;
    size_t n;
    assert_int_equal(ns_buf_get_f64s(&r, &arr, &n, SIZE_MAX), NS_ERR_CORRUPT);
    assert_null(arr);
    ns_buf_free(&b);
}

static void test_crc32(void **state)
{
    (void)state;
    /* the standard check value of CRC-32/IEEE */
    assert_int_equal(ns_crc32("123456789", 9), 0xCBF43926u);
    assert_int_equal(ns_crc32("", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_truncation_detected),
        cmocka_unit_test(test_bad_tag_and_lengths),
        cmocka_unit_test(test_crc32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
