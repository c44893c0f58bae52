/* test_json.c - ns_json_print: every number reads back as the same double,
 * integers and non-finite tokens as documented, strings escaped, and the
 * text (without NaN tokens) parses back to an equal tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
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
        {0.5, "0.5"},         {-0.0, "-0"},
        {NAN, "NaN"},         {INFINITY, "Infinity"},
        {-INFINITY, "-Infinity"}, {1e300, "1.0000000000000001e+300"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ns_json_format_number(cases[k].v, buf);
        assert_string_equal(buf, cases[k].want);
    }
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
        cmocka_unit_test(test_tree_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
