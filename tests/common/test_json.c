/* test_json.c - ns_json_print: every number reads back as the same double,
 * integers and non-finite tokens as documented, strings escaped, and the
 * text (without NaN tokens) parses back to an equal tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nessai/json.h"
#include "nessai/rng.h"

static void test_numbers_round_trip(void **state)
{
    (void)state;
    ns_rng_t *r = ns_rng_new(5, 0);
    char buf[40];
    size_t n = 200000, differ_cjson = 0;
    for (size_t i = 0; i < n; i++) {
        /* magnitudes from 1e-300 to 1e300, both signs, plus subnormals */
        double e = -300.0 + 600.0 * ns_rng_uniform(r);
        double v = (ns_rng_uniform(r) < 0.5 ? -1 : 1) * ns_rng_uniform(r) * pow(10.0, e);
        if (i % 1000 == 0)
            v = 4.9e-324 * (double)(i / 1000 + 1);
        size_t len = ns_json_format_number(v, buf);
        assert_int_equal(len, strlen(buf));
        assert_true(len < 32);
        assert_true(strtod(buf, NULL) == v);
        /* cJSON's printer on the same value */
        cJSON *c = cJSON_CreateNumber(v);
        char *t = cJSON_PrintUnformatted(c);
        if (strtod(t, NULL) != v)
            differ_cjson++;
        free(t);
        cJSON_Delete(c);
    }
    print_message("%zu of %zu random doubles do not survive cJSON_Print exactly; all survive "
                  "ns_json_print\n", differ_cjson, n);
    ns_rng_destroy(&r);
}

static void test_integers_and_tokens(void **state)
{
    (void)state;
    char buf[40];
    struct {
        double v;
        const char *want;
    } cases[] = {
        {0.0, "0"},           {3.0, "3"},
        {-42.0, "-42"},       {9007199254740991.0, "9007199254740991"},
        {0.5, "0.5"},         {-0.0, "-0.0"},
        {NAN, "NaN"},         {INFINITY, "Infinity"},
        {-INFINITY, "-Infinity"}, {1e300, "1e+300"},
        {1e-5, "1e-05"},      {0.1, "0.1"},
        {1e16, "1e+16"},      {9007199254740992.0, "9007199254740992.0"},
        {5e-324, "5e-324"},   {0.30000000000000004, "0.30000000000000004"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ns_json_format_number(cases[k].v, buf);
        assert_string_equal(buf, cases[k].want);
    }
}

/* Every line of json_numbers.txt (written by gen_json_numbers.py with
 * Debian's python3): the double's bits and the text Python writes for it.
 * ns_json_format_number must write that text; the whole table also goes
 * out as one ns_json_print array to JSON_NUMBERS_OUT, which
 * check_json_load.py reads back with Python's json module. */
static void test_python_table(void **state)
{
    (void)state;
    FILE *fp = fopen(NESSAI_TEST_SOURCE_DIR "/json_numbers.txt", "r");
    if (!fp)
        fail_msg("cannot read " NESSAI_TEST_SOURCE_DIR "/json_numbers.txt");
    cJSON *all = cJSON_CreateArray();
    char line[128], want[64], got[40];
    unsigned long long bits;
    size_t n = 0, bad = 0;
    while (fgets(line, sizeof line, fp)) {
        if (sscanf(line, "%llx %63s", &bits, want) != 2)
            fail_msg("json_numbers.txt: malformed line '%s'", line);
        double v;
        uint64_t b = bits;
        memcpy(&v, &b, sizeof v);
        size_t len = ns_json_format_number(v, got);
        assert_int_equal(len, strlen(got));
        if (strcmp(got, want) != 0 && bad++ < 10)
            print_error("%016llx: wrote %s, Python writes %s\n", bits, got, want);
        cJSON_AddItemToArray(all, cJSON_CreateNumber(v));
        n++;
    }
    fclose(fp);
    assert_true(n > 4000);
    if (bad)
        fail_msg("%zu of %zu numbers differ from Python's text", bad, n);
    char *text = ns_json_print(all);
    assert_non_null(text);
    FILE *out = fopen(JSON_NUMBERS_OUT, "w");
    assert_non_null(out);
    assert_true(fputs(text, out) >= 0);
    assert_int_equal(fclose(out), 0);
    free(text);
    cJSON_Delete(all);
}

static void test_tree_round_trip(void **state)
{
    (void)state;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "text", "tab\there \"quoted\" back\\slash\nnew\x01line");
    cJSON_AddNumberToObject(doc, "pi", M_PI);
    cJSON_AddNullToObject(doc, "none");
    cJSON_AddBoolToObject(doc, "yes", 1);
    cJSON_AddBoolToObject(doc, "no", 0);
    cJSON_AddObjectToObject(doc, "empty");
    cJSON_AddArrayToObject(doc, "empty_list");
    cJSON *a = cJSON_AddArrayToObject(doc, "list");
    for (int i = 0; i < 50; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(1.0 / (i + 1)));
    cJSON *inner = cJSON_AddObjectToObject(doc, "inner");
    cJSON_AddNumberToObject(inner, "k", 7);
    cJSON_AddItemToObject(inner, "raw", cJSON_CreateRaw("[1, 2]"));
    char *text = ns_json_print(doc);
    assert_non_null(text);
    cJSON *back = cJSON_Parse(text);
    assert_non_null(back);
    assert_string_equal(cJSON_GetObjectItem(back, "text")->valuestring,
                        cJSON_GetObjectItem(doc, "text")->valuestring);
    assert_true(cJSON_GetObjectItem(back, "pi")->valuedouble == M_PI);
    cJSON *b = cJSON_GetObjectItem(back, "list");
    assert_int_equal(cJSON_GetArraySize(b), 50);
    for (int i = 0; i < 50; i++)
        assert_true(cJSON_GetArrayItem(b, i)->valuedouble == 1.0 / (i + 1));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(back, "none")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(back, "yes")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(back, "no")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(back, "empty_list")), 0);
    cJSON *in = cJSON_GetObjectItem(back, "inner");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(in, "raw")), 2);
    assert_true(strstr(text, "\"k\": 7") != NULL);
    free(text);
    cJSON_Delete(back);
    cJSON_Delete(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_round_trip),
        cmocka_unit_test(test_integers_and_tokens),
        cmocka_unit_test(test_python_table),
        cmocka_unit_test(test_tree_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
