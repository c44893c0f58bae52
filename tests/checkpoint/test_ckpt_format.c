/* test_ckpt_format.c - the checkpoint file image: round trip, and every
 * truncation and every single-bit flip detected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "nessai/error.h"

static const char s_hash[] = "0123456789abcdef0123456789abcdef01234567";

static ns_ckpt_ident_t s_ident(void)
{
    ns_ckpt_ident_t id = {"rosenbrock", "dim=4", s_hash, 4, 1234};
    return id;
}

static void s_payload(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 37u + 11u);
}

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t payload[300];
    s_payload(payload, sizeof payload);
    ns_ckpt_ident_t id = s_ident();
    ns_buf_t img;
    ns_buf_init(&img);
    assert_int_equal(ns_ckpt_encode(&id, 987, payload, sizeof payload, &img), NS_OK);
    assert_memory_equal(img.data, NS_CKPT_MAGIC, 8);

    ns_ckpt_loaded_t got;
    char err[256] = "";
    assert_int_equal(ns_ckpt_decode(img.data, img.len, &got, err, sizeof err), NS_OK);
    assert_int_equal(got.version, NS_CKPT_FORMAT_VERSION);
    assert_string_equal(got.model_name, "rosenbrock");
    assert_string_equal(got.model_args, "dim=4");
    assert_string_equal(got.plugin_hash, s_hash);
    assert_int_equal(got.dim, 4);
    assert_int_equal(got.seed, 1234);
    assert_int_equal(got.iteration, 987);
    assert_true(got.created > 1.5e9);
    assert_int_equal(got.payload_len, sizeof payload);
    assert_memory_equal(got.payload, payload, sizeof payload);
    assert_int_equal(got.from_old, 0);
    assert_int_equal(ns_ckpt_ident_check(&got, &id, 1, err, sizeof err), NS_OK);
    ns_ckpt_loaded_clear(&got);
    ns_ckpt_loaded_clear(&got);  /* safe twice */
    ns_buf_free(&img);
}

static void test_empty_payload_and_null_args(void **state)
{
    (void)state;
    ns_ckpt_ident_t id = s_ident();
    id.model_args = NULL;  /* stored as "" */
    ns_buf_t img;
    ns_buf_init(&img);
    assert_int_equal(ns_ckpt_encode(&id, 0, NULL, 0, &img), NS_OK);
    ns_ckpt_loaded_t got;
    char err[256];
    assert_int_equal(ns_ckpt_decode(img.data, img.len, &got, err, sizeof err), NS_OK);
    assert_int_equal(got.payload_len, 0);
    assert_non_null(got.payload);
    assert_string_equal(got.model_args, "");
    ns_ckpt_loaded_clear(&got);
    ns_buf_free(&img);
}

static void test_bad_ident_rejected(void **state)
{
    (void)state;
    ns_buf_t img;
    ns_buf_init(&img);
    ns_ckpt_ident_t id = s_ident();
    id.model_name = NULL;
    assert_int_equal(ns_ckpt_encode(&id, 0, "x", 1, &img), NS_ERR_INVAL);
    id = s_ident();
    id.dim = 0;
    assert_int_equal(ns_ckpt_encode(&id, 0, "x", 1, &img), NS_ERR_INVAL);
    id = s_ident();
    assert_int_equal(ns_ckpt_encode(&id, 0, NULL, 5, &img), NS_ERR_INVAL);
    ns_buf_free(&img);
}

/* A valid file image with a 64-byte payload (caller frees). */
static void s_small_image(ns_buf_t *img)
{
    uint8_t payload[64];
    s_payload(payload, sizeof payload);
    ns_ckpt_ident_t id = s_ident();
    ns_buf_init(img);
    assert_int_equal(ns_ckpt_encode(&id, 5, payload, sizeof payload, img), NS_OK);
}

/* Every proper prefix of a valid file, including the empty file, is refused. */
static void test_every_truncation_detected(void **state)
{
    (void)state;
    ns_buf_t img;
    s_small_image(&img);
    for (size_t n = 0; n < img.len; n++) {
        ns_ckpt_loaded_t got;
        char err[256] = "";
        assert_int_equal(ns_ckpt_decode(img.data, n, &got, err, sizeof err), NS_ERR_CORRUPT);
        assert_null(got.payload);
        assert_true(strlen(err) > 0);
        if (n > 0 && !strstr(err, "truncated"))
            fail_msg("prefix of %zu bytes: '%s' does not say truncated", n, err);
    }
    ns_buf_free(&img);
}

/* Every single-bit flip anywhere in the file is refused (CRC-32 catches
 * all single-bit errors; the header fields are checked before use). */
static void test_every_bit_flip_detected(void **state)
{
    (void)state;
    ns_buf_t img;
    s_small_image(&img);
    uint8_t *copy = malloc(img.len);
    assert_non_null(copy);
    for (size_t bit = 0; bit < img.len * 8; bit++) {
        memcpy(copy, img.data, img.len);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ns_ckpt_loaded_t got;
        char err[256] = "";
        int rv = ns_ckpt_decode(copy, img.len, &got, err, sizeof err);
        if (rv != NS_ERR_CORRUPT)
            fail_msg("bit %zu flipped was not detected (rv=%d)", bit, rv);
        assert_null(got.payload);
    }
    free(copy);
    ns_buf_free(&img);
}

static void test_trailing_bytes_and_foreign_files(void **state)
{
    (void)state;
    ns_ckpt_ident_t id = s_ident();
    ns_buf_t img;
    ns_buf_init(&img);
    assert_int_equal(ns_ckpt_encode(&id, 5, "abc", 3, &img), NS_OK);
    ns_buf_put_u8(&img, 0);
    ns_ckpt_loaded_t got;
    char err[256] = "";
    assert_int_equal(ns_ckpt_decode(img.data, img.len, &got, err, sizeof err), NS_ERR_CORRUPT);
    assert_non_null(strstr(err, "unexpected bytes"));

    const char *text = "{\"log_evidence\": -3.2}\n";
    assert_int_equal(ns_ckpt_decode(text, strlen(text), &got, err, sizeof err), NS_ERR_CORRUPT);
    assert_non_null(strstr(err, "not a nessai checkpoint"));
    ns_buf_free(&img);
}

/* A future format version is refused by name, not misread. */
static void test_other_version_refused(void **state)
{
    (void)state;
    ns_ckpt_ident_t id = s_ident();
    ns_buf_t img;
    ns_buf_init(&img);
    assert_int_equal(ns_ckpt_encode(&id, 5, "abc", 3, &img), NS_OK);
    img.data[8] = 2;
    ns_ckpt_loaded_t got;
    char err[256] = "";
    assert_int_equal(ns_ckpt_decode(img.data, img.len, &got, err, sizeof err), NS_ERR_CORRUPT);
    assert_non_null(strstr(err, "version 2"));
    ns_buf_free(&img);
}

typedef struct {
    ns_ckpt_ident_t want;  /* the running model */
    int check_seed;
    int rv;
    const char *needle;    /* expected in the message */
} s_ident_case_t;

static void test_ident_check_table(void **state)
{
    (void)state;
    ns_ckpt_ident_t id = s_ident();
    ns_buf_t img;
    ns_buf_init(&img);
    assert_int_equal(ns_ckpt_encode(&id, 5, "abc", 3, &img), NS_OK);
    ns_ckpt_loaded_t got;
    char err[512];
    assert_int_equal(ns_ckpt_decode(img.data, img.len, &got, err, sizeof err), NS_OK);

    const s_ident_case_t cases[] = {
        {{"rosenbrock", "dim=4", s_hash, 4, 1234}, 1, NS_OK, NULL},
        {{"rosenbrock", "dim=4", s_hash, 4, 99}, 0, NS_OK, NULL},
        {{"rosenbrock", "dim=4", s_hash, 4, 99}, 1, NS_ERR_REFUSED, "--seed 1234"},
        {{"gaussian", "dim=4", s_hash, 4, 1234}, 0, NS_ERR_REFUSED, "model 'rosenbrock'"},
        {{"rosenbrock", "dim=4", s_hash, 8, 1234}, 0, NS_ERR_REFUSED, "dim 4"},
        {{"rosenbrock", "dim=8", s_hash, 4, 1234}, 0, NS_ERR_REFUSED, "--model-args 'dim=4'"},
        {{"rosenbrock", NULL, s_hash, 4, 1234}, 0, NS_ERR_REFUSED, "--model-args"},
        {{"rosenbrock", "dim=4", "ffff456789abcdef0123456789abcdef01234567", 4, 1234}, 0,
         NS_ERR_REFUSED, "another build"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        int rv = ns_ckpt_ident_check(&got, &cases[i].want, cases[i].check_seed, err, sizeof err);
        if (rv != cases[i].rv)
            fail_msg("case %zu: rv %d, expected %d (%s)", i, rv, cases[i].rv, err);
        if (cases[i].needle && !strstr(err, cases[i].needle))
            fail_msg("case %zu: message '%s' lacks '%s'", i, err, cases[i].needle);
    }
    ns_ckpt_loaded_clear(&got);
    ns_buf_free(&img);
}

static void test_load_exit_status(void **state)
{
    (void)state;
    assert_int_equal(ns_ckpt_load_exit_status(NS_ERR_CORRUPT), 2);
    assert_int_equal(ns_ckpt_load_exit_status(NS_ERR_REFUSED), 2);
    assert_int_equal(ns_ckpt_load_exit_status(NS_ERR_STATE), 2);
    assert_int_equal(ns_ckpt_load_exit_status(NS_ERR_NOMEM), 1);
    assert_int_equal(ns_ckpt_load_exit_status(NS_ERR_IO), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_empty_payload_and_null_args),
        cmocka_unit_test(test_bad_ident_rejected),
        cmocka_unit_test(test_every_truncation_detected),
        cmocka_unit_test(test_every_bit_flip_detected),
        cmocka_unit_test(test_trailing_bytes_and_foreign_files),
        cmocka_unit_test(test_other_version_refused),
        cmocka_unit_test(test_ident_check_table),
        cmocka_unit_test(test_load_exit_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
