/* Option table: parsing, bounds, booleans, config files, precedence, JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nessai/error.h"
#include "nessai/options.h"

static const ns_option_t s_table[] = {
    {"nlive", NS_OPT_INT, "2000", 2, NAN, NULL, 0, "Sampler", "Live points."},
    {"stopping", NS_OPT_DOUBLE, "0.1", 0, NAN, NULL, 0, "Sampler", "dlogZ tolerance."},
    {"maximum-uninformed", NS_OPT_DOUBLE, NULL, 0, NAN, NULL, NS_OPT_ALLOW_INF | NS_OPT_ALLOW_NONE,
     "Sampler", "Uninformed iterations."},
    {"resume", NS_OPT_BOOL, "true", NAN, NAN, NULL, 0, "Checkpoint", "Resume."},
    {"shrinkage-expectation", NS_OPT_CHOICE, "logt", NAN, NAN, "logt|t", 0, "Sampler", "Shrinkage."},
    {"output", NS_OPT_STRING, "outdir", NAN, NAN, NULL, 0, "Output", "Output dir."},
    {"config", NS_OPT_STRING, NULL, NAN, NAN, NULL, NS_OPT_CLI_ONLY, "Output", "Config file."},
    {"help", NS_OPT_FLAG, NULL, NAN, NAN, NULL, 0, "Output", "Help."},
};
#define N_OPT (sizeof s_table / sizeof s_table[0])

static int s_parse(ns_config_t *c, char *err, int argc, ...)
{
    char *argv[32] = {"prog"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return ns_config_parse_args(c, argc, argv, err, 256);
}

static void test_defaults_and_types(void **state)
{
    (void)state;
    ns_config_t *c = ns_config_new(s_table, N_OPT);
    char err[256];
    assert_int_equal(ns_config_int(c, "nlive"), 2000);
    assert_true(fabs(ns_config_double(c, "stopping") - 0.1) < 1e-15);
    assert_false(ns_config_is_set(c, "maximum-uninformed"));
    assert_true(ns_config_bool(c, "resume"));
    assert_int_equal(s_parse(c, err, 7, "--nlive", "500", "--maximum-uninformed=inf", "--no-resume",
                             "--shrinkage-expectation", "t"),
                     NS_OK);
    assert_int_equal(ns_config_int(c, "nlive"), 500);
    assert_true(isinf(ns_config_double(c, "maximum-uninformed")));
    assert_false(ns_config_bool(c, "resume"));
    assert_string_equal(ns_config_str(c, "shrinkage-expectation"), "t");
    assert_true(ns_config_user_set(c, "nlive"));
    assert_false(ns_config_user_set(c, "stopping"));
    ns_config_destroy(&c);
    assert_null(c);
}

static void test_rejections(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b, *expect;
    } cases[] = {
        {"--nlive", "1", "--nlive must be at least 2"},
        {"--nlive", "ten", "--nlive expects a whole number"},
        {"--nlive", "2.5", "--nlive expects a whole number"},
        {"--stopping", "-1", "--stopping must be at least 0"},
        {"--stopping", "inf", "--stopping must be finite"},
        {"--stopping", "nan", "--stopping expects a number"},
        {"--shrinkage-expectation", "x", "must be one of logt|t"},
        {"--resume", "maybe", "unexpected argument 'maybe'"},
        {"--bogus", "1", "unknown option '--bogus'"},
        {"nlive", "1", "unexpected argument 'nlive'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ns_config_t *c = ns_config_new(s_table, N_OPT);
        char err[256] = "";
        assert_int_equal(s_parse(c, err, 3, cases[i].a, cases[i].b), NS_ERR_INVAL);
        if (!strstr(err, cases[i].expect))
            fail_msg("case %zu: '%s' does not contain '%s'", i, err, cases[i].expect);
        ns_config_destroy(&c);
    }
    ns_config_t *c = ns_config_new(s_table, N_OPT);
    char err[256];
    assert_int_equal(s_parse(c, err, 2, "--nlive"), NS_ERR_INVAL);
    assert_non_null(strstr(err, "needs a value"));
    ns_config_destroy(&c);
}

static void test_config_file_precedence(void **state)
{
    (void)state;
    char path[] = "/tmp/ns_cfg_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# comment\n[sampler]\nnlive = 300\nstopping: 0.5\nshrinkage_expectation = \"t\"\n");
    fclose(f);
    ns_config_t *c = ns_config_new(s_table, N_OPT);
    char err[256];
    assert_int_equal(s_parse(c, err, 5, "--nlive", "400", "--config", path), NS_OK);
    assert_int_equal(ns_config_int(c, "nlive"), 400); /* command line wins */
    assert_true(fabs(ns_config_double(c, "stopping") - 0.5) < 1e-15);
    assert_string_equal(ns_config_str(c, "shrinkage-expectation"), "t");
    assert_string_equal(ns_config_str(c, "config"), path);
    ns_config_destroy(&c);

    f = fopen(path, "w");
    fprintf(f, "nlive = 300\nmystery = 1\n");
    fclose(f);
    c = ns_config_new(s_table, N_OPT);
    assert_int_equal(s_parse(c, err, 3, "--config", path), NS_ERR_INVAL);
    assert_non_null(strstr(err, ":2: unknown setting 'mystery'"));
    ns_config_destroy(&c);

    f = fopen(path, "w");
    fprintf(f, "nlive = 1\n");
    fclose(f);
    c = ns_config_new(s_table, N_OPT);
    assert_int_equal(s_parse(c, err, 3, "--config", path), NS_ERR_INVAL);
    assert_non_null(strstr(err, ":1: --nlive must be at least 2"));
    ns_config_destroy(&c);
    unlink(path);

    c = ns_config_new(s_table, N_OPT);
    assert_int_equal(s_parse(c, err, 3, "--config", "/nonexistent/cfg.ini"), NS_ERR_INVAL);
    assert_non_null(strstr(err, "cannot read config file"));
    ns_config_destroy(&c);
}

static void test_json_and_help(void **state)
{
    (void)state;
    ns_config_t *c = ns_config_new(s_table, N_OPT);
    char err[256];
    assert_int_equal(s_parse(c, err, 3, "--maximum-uninformed", "inf"), NS_OK);
    cJSON *j = ns_config_to_json(c);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "nlive")->valuedouble, 2000);
    assert_string_equal(cJSON_GetObjectItem(j, "maximum_uninformed")->valuestring, "inf");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "resume")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "config")));
    assert_null(cJSON_GetObjectItem(j, "help"));
    cJSON_Delete(j);

    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    ns_config_print_help(c, m, "usage: prog [options]", "Does things.");
    fclose(m);
    assert_non_null(strstr(buf, "Sampler:"));
    assert_non_null(strstr(buf, "--nlive N"));
    assert_non_null(strstr(buf, "[default: 2000]"));
    assert_non_null(strstr(buf, "--resume, --no-resume"));
    assert_non_null(strstr(buf, "One of: logt|t."));
    /* each group printed once */
    assert_null(strstr(strstr(buf, "Sampler:") + 1, "Sampler:"));
    free(buf);
    ns_config_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_types),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_config_file_precedence),
        cmocka_unit_test(test_json_and_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
