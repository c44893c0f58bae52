/* test_python_farm.c - a Python model on the farm: workers load the file the
 * coordinator names and give the same values bit for bit; a worker whose
 * model file, imported sibling module or declared data file differs is
 * refused with the reason, even when its values agree. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "farm_fixture.h"
#include "nessai/error.h"
#include "nessai/log.h"

static const char *const s_files[] = {"idmodel.py", "idhelper.py", "data.txt"};

/* Copy the model's three files into a new directory; append text to one. */
static void s_copy_model(char dir[256], size_t len, const char *change, const char *append)
{
    assert_int_equal(th_mkdtemp(dir, len, "pyfarm"), 0);
    for (size_t i = 0; i < sizeof s_files / sizeof s_files[0]; i++) {
        char src[1024], dst[1024];
        assert_true(snprintf(src, sizeof src, "%s/%s", PY_IDENTITY_DIR, s_files[i]) < (int)sizeof src);
        assert_true(snprintf(dst, sizeof dst, "%s/%s", dir, s_files[i]) < (int)sizeof dst);
        FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
        assert_non_null(in);
        assert_non_null(out);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            assert_int_equal(fwrite(buf, 1, n, out), n);
        if (change && strcmp(change, s_files[i]) == 0)
            fputs(append, out);
        fclose(in);
        fclose(out);
    }
}

static void s_model_spec(char *out, size_t len, const char dir[256])
{
    assert_true(snprintf(out, len, "%s/idmodel.py:IdModel", dir) < (int)len);
}

static void test_python_workers(void **state)
{
    char clog[128];
    th_tmpfile(clog, sizeof clog, "coord");
    assert_int_equal(ns_log_open_file(clog), NS_OK);
    char run_dir[256], spec[300], err[512] = "";
    s_copy_model(run_dir, sizeof run_dir, NULL, NULL);
    s_model_spec(spec, sizeof spec, run_dir);
    ns_model_t *model = NULL;
    if (ns_model_load(spec, "", &model, err, sizeof err) != NS_OK)
        fail_msg("cannot load %s: %s", spec, err);
    assert_string_equal(ns_model_name(model), "IdModel");
    assert_int_equal(ns_model_dim(model), 3);
    ns_config_t *cfg = th_farm_config("bind", "tcp://127.0.0.1:*", NULL);
    ns_evaluator_t *ev = NULL;
    assert_int_equal(ns_farm_evaluator_new(cfg, model, NULL, &ev), NS_OK);

    /* Each differs from the run's files only where its values do not. */
    struct {
        const char *file, *append;
    } changed[] = {
        {"idmodel.py", "\n# a comment\n"},
        {"idhelper.py", "\n# a comment\n"},
        {"data.txt", "\n"},
    };
    char dirs[4][256];
    for (size_t i = 0; i < 3; i++) {
        s_copy_model(dirs[i], sizeof dirs[i], changed[i].file, changed[i].append);
        char wspec[300], wlog[128];
        s_model_spec(wspec, sizeof wspec, dirs[i]);
        th_tmpfile(wlog, sizeof wlog, "worker");
        pid_t pid = th_farm_spawn_worker(ns_farm_endpoint(ev), (const char *const[]){"--model", wspec, NULL},
                                    NULL, wlog);
        int code = -1;
        assert_true(th_wait_pid(pid, 30, &code));
        assert_int_equal(code, 1);
        if (!th_file_contains(wlog, "another model: worker has name=IdModel dim=3 hash="))
            fail_msg("worker with a changed %s: its log lacks the reason", changed[i].file);
        assert_true(th_file_contains(wlog, "refused by the coordinator"));
        assert_true(th_file_contains(clog, ns_model_hash(model)));
        unlink(wlog);
    }
    ns_farm_stats_t st;
    ns_farm_stats(ev, &st);
    assert_int_equal(st.refused, 3);
    assert_int_equal(st.workers_seen, 0);

    /* An identical copy elsewhere is the same model; so is the run's own file. */
    s_copy_model(dirs[3], sizeof dirs[3], NULL, NULL);
    char same[300];
    s_model_spec(same, sizeof same, dirs[3]);
    pid_t w1 = th_farm_spawn_worker(ns_farm_endpoint(ev), (const char *const[]){"--model", same, NULL}, NULL,
                               NULL);
    pid_t w2 = th_farm_spawn_worker(ns_farm_endpoint(ev),
                               (const char *const[]){"--allow-model-dir", run_dir, NULL}, NULL, NULL);
    assert_int_equal(ns_farm_wait_live(ev, 2, 60), NS_OK);
    enum { N = 500 };
    double *x = th_farm_points(N, 3, 11), want[N], got[N];
    th_farm_inprocess(model, x, N, want);
    assert_int_equal(ns_evaluator_evaluate(ev, x, N, 3, got), NS_OK);
    assert_memory_equal(got, want, sizeof got);
    free(x);
    ns_log_close_file();
    unlink(clog);
    ns_evaluator_shutdown(ev);
    ns_evaluator_destroy(&ev);
    assert_true(th_wait_pid(w1, 20, NULL));
    assert_true(th_wait_pid(w2, 20, NULL));
    ns_config_destroy(&cfg);
    ns_model_destroy(&model);
    th_rm_rf(run_dir);
    for (int i = 0; i < 4; i++)
        th_rm_rf(dirs[i]);
}

/* The identity is the content: the same files give the same hash, one
 * changed byte in any of them another. */
static void test_python_hash(void **state)
{
    char a[256], b[256], c[256], sa[300], sb[300], sc[300], err[512];
    s_copy_model(a, sizeof a, NULL, NULL);
    s_copy_model(b, sizeof b, NULL, NULL);
    s_copy_model(c, sizeof c, "idhelper.py", "#");
    s_model_spec(sa, sizeof sa, a);
    s_model_spec(sb, sizeof sb, b);
    s_model_spec(sc, sizeof sc, c);
    ns_model_t *ma = NULL, *mb = NULL, *mc = NULL;
    assert_int_equal(ns_model_load(sa, "", &ma, err, sizeof err), NS_OK);
    assert_int_equal(ns_model_load(sb, "", &mb, err, sizeof err), NS_OK);
    assert_int_equal(ns_model_load(sc, "", &mc, err, sizeof err), NS_OK);
    assert_string_equal(ns_model_hash(ma), ns_model_hash(mb));
    assert_string_not_equal(ns_model_hash(ma), ns_model_hash(mc));
    assert_int_equal(strlen(ns_model_hash(ma)), 40);
    assert_string_equal(ns_model_path(ma), sa);
    ns_model_destroy(&ma);
    ns_model_destroy(&mb);
    ns_model_destroy(&mc);
    th_rm_rf(a);
    th_rm_rf(b);
    th_rm_rf(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_hash),
        cmocka_unit_test(test_python_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
