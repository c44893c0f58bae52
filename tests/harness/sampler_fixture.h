/* sampler_fixture.h - the sampler tests' fixture, on top of harness.h:
 * an option table (the sampler's fragment plus "seed"), the test plugin and
 * an in-process evaluator. Header-only: each test is one executable. */
#ifndef NESSAI_TEST_SAMPLER_FIXTURE_H
#define NESSAI_TEST_SAMPLER_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nessai/error.h"
#include "nessai/evaluator.h"
#include "nessai/log.h"
#include "nessai/options.h"
#include "nessai/plugin.h"
#include "sampler.h"

typedef struct {
    ns_option_t *table;
    ns_config_t *cfg;
    ns_model_t *model;
    ns_evaluator_t *ev;
    ns_sampler_t *sampler;
} th_sampler_run_t;

static const ns_option_t th_sampler_seed_option = {"seed", NS_OPT_INT, "1", 0, 4294967295.0, NULL, 0, "t", "seed"};

/* argv-style settings, NULL-terminated, e.g. {"--nlive", "200", NULL}. */
static inline int th_sampler_setup(th_sampler_run_t *r, const char *plugin, const char *model_args, const char *const *args)
{
    memset(r, 0, sizeof *r);
    size_t n = ns_sampler_options_count + 1;
    r->table = malloc(n * sizeof *r->table);
    memcpy(r->table, ns_sampler_options, ns_sampler_options_count * sizeof *r->table);
    r->table[n - 1] = th_sampler_seed_option;
    r->cfg = ns_config_new(r->table, n);
    char *argv[64] = {"test"};
    int argc = 1;
    for (; args && args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    char err[256];
    if (ns_config_parse_args(r->cfg, argc, argv, err, sizeof err) != NS_OK) {
        fprintf(stderr, "config: %s\n", err);
        return -1;
    }
    if (ns_model_load(plugin, model_args, &r->model, err, sizeof err) != NS_OK) {
        fprintf(stderr, "model: %s\n", err);
        return -1;
    }
    r->ev = ns_evaluator_inprocess_new(r->model, 0);
    return 0;
}

static inline int th_sampler_make(th_sampler_run_t *r, ns_proposal_factory_fn flow)
{
    return ns_sampler_new(r->cfg, r->model, r->ev, flow, "/tmp", &r->sampler);
}

static inline void th_sampler_teardown(th_sampler_run_t *r)
{
    ns_sampler_destroy(&r->sampler);
    ns_evaluator_destroy(&r->ev);
    ns_model_destroy(&r->model);
    ns_config_destroy(&r->cfg);
    free(r->table);
}

#endif
