/* test_broker_pipe.c - every command on the broker's pipe is answered:
 * unknown commands and known ones with missing arguments get NS_ERR_INVAL,
 * and the broker goes on working afterwards. A command left unanswered
 * would hang the caller: the alarm turns that into a failure. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "nessai/error.h"

static ns_broker_config_t s_cfg;

static int s_setup(void **state)
{
    memset(&s_cfg, 0, sizeof s_cfg);
    s_cfg.bind = "tcp://127.0.0.1:*";
    s_cfg.model_name = "pipetest";
    s_cfg.model_path = "/nonexistent/libpipetest.so";
    s_cfg.model_args = "";
    s_cfg.model_hash = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
    s_cfg.dim = 2;
    s_cfg.worker_timeout = 0.5;
    s_cfg.chunk_timeout = 1.0;
    s_cfg.max_retries = 1;
    s_cfg.max_message = 1 << 20;
    s_cfg.heartbeat_ms = 100;
    s_cfg.liveness = 3;
    char err[256] = "";
    ns_broker_t *b = ns_broker_new(&s_cfg, err, sizeof err);
    if (!b)
        fail_msg("broker: %s", err);
    *state = b;
    alarm(60);   /* an unanswered command must fail the test, not hang it */
    return 0;
}

static int s_teardown(void **state)
{
    ns_broker_t *b = *state;
    ns_broker_destroy(&b);
    alarm(0);
    return 0;
}

static void test_unknown_commands_answered(void **state)
{
    ns_broker_t *b = *state;
    assert_int_equal(ns_broker_call(b, "NOSUCH"), NS_ERR_INVAL);
    assert_int_equal(ns_broker_call(b, ""), NS_ERR_INVAL);
    assert_int_equal(ns_broker_call(b, "eval"), NS_ERR_INVAL);   /* names are exact */
    assert_int_equal(ns_broker_call(b, "EVALX"), NS_ERR_INVAL);
}

static void test_missing_arguments_answered(void **state)
{
    ns_broker_t *b = *state;
    assert_int_equal(ns_broker_call(b, "EVAL"), NS_ERR_INVAL);
    assert_int_equal(ns_broker_call(b, "STATS"), NS_ERR_INVAL);
    assert_int_equal(ns_broker_call(b, "WATCH"), NS_ERR_INVAL);
    assert_int_equal(ns_broker_call(b, "STOP"), NS_OK);   /* takes none */
}

static void test_commands_after_bad_ones(void **state)
{
    ns_broker_t *b = *state;
    ns_farm_stats_t st;
    assert_int_equal(ns_broker_call(b, "NOSUCH"), NS_ERR_INVAL);
    assert_int_equal(ns_broker_call(b, "EVAL"), NS_ERR_INVAL);
    /* an empty batch completes at once and is counted */
    assert_int_equal(ns_broker_evaluate(b, NULL, 0, 2, NULL), NS_OK);
    ns_broker_stats(b, &st);
    assert_int_equal(st.batches, 1);
    assert_int_equal(st.workers_live, 0);
    /* the arguments arrive as sent: a wrong dimension is refused by name */
    double x[6] = {0}, logl[3];
    assert_int_equal(ns_broker_evaluate(b, x, 3, 2 + 1, logl), NS_ERR_INVAL);
    /* no workers: the batch fails after --worker-timeout, still answered */
    assert_int_equal(ns_broker_evaluate(b, x, 3, 2, logl), NS_ERR_FARM);
    ns_broker_stats(b, &st);
    assert_int_equal(st.batches, 1);
    ns_broker_watch_pid(b, 1);   /* pid 1 is never our child: forgotten at once */
    ns_broker_stop(b);
    assert_int_equal(ns_broker_call(b, "STOP"), NS_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unknown_commands_answered, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_missing_arguments_answered, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_commands_after_bad_ones, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
