/* evaluator.c - the evaluator wrapper and the in-process implementation. */
#include "nessai/evaluator.h"
#include "nessai/error.h"
#include "nessai/log.h"

#include <stdlib.h>

ns_evaluator_t *ns_evaluator_new(const ns_evaluator_ops_t *ops, void *impl)
{
    ns_evaluator_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ops = ops;
    self->impl = impl;
    return self;
}

void ns_evaluator_destroy(ns_evaluator_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ns_evaluator_t *self = *self_p;
    if (self->ops && self->ops->destroy)
        self->ops->destroy(self->impl);
    free(self);
    *self_p = NULL;
}

int ns_evaluator_evaluate(ns_evaluator_t *self, const double *x, size_t n, size_t d, double *logl)
{
    if (n == 0)
        return NS_OK;
    return self->ops->evaluate(self->impl, x, n, d, logl);
}

void ns_evaluator_stats_json(ns_evaluator_t *self, struct cJSON *obj)
{
    if (self && self->ops->stats_json)
        self->ops->stats_json(self->impl, obj);
}

int ns_evaluator_stats_schema(ns_evaluator_t *self, struct ns_h5_schema *schema, const char *prefix)
{
    if (self && self->ops->stats_schema)
        return self->ops->stats_schema(self->impl, schema, prefix);
    return NS_OK;
}

long ns_evaluator_live_workers(ns_evaluator_t *self)
{
    if (self && self->ops->live_workers)
        return self->ops->live_workers(self->impl);
    return -1;
}

void ns_evaluator_log_summary(ns_evaluator_t *self)
{
    if (self && self->ops->log_summary)
        self->ops->log_summary(self->impl);
}

void ns_evaluator_shutdown(ns_evaluator_t *self)
{
    if (self && self->ops->shutdown)
        self->ops->shutdown(self->impl);
}

const char *ns_evaluator_kind(const ns_evaluator_t *self) { return self->ops->kind; }

int ns_evaluator_can_overlap(const ns_evaluator_t *self)
{
    return self && self->ops->begin && self->ops->poll && self->ops->end;
}

int ns_evaluator_begin(ns_evaluator_t *self, const double *x, size_t n, size_t d, double *logl)
{
    if (!ns_evaluator_can_overlap(self))
        return NS_ERR_STATE;
    return self->ops->begin(self->impl, x, n, d, logl);
}

int ns_evaluator_poll(ns_evaluator_t *self)
{
    return ns_evaluator_can_overlap(self) ? self->ops->poll(self->impl) : 1;
}

int ns_evaluator_end(ns_evaluator_t *self)
{
    return ns_evaluator_can_overlap(self) ? self->ops->end(self->impl) : NS_ERR_STATE;
}

typedef struct {
    ns_model_t *model;   /* borrowed */
    size_t chunksize;    /* 0 = whole batch per call */
} s_inprocess_t;

static int s_inprocess_evaluate(void *impl, const double *x, size_t n, size_t d, double *logl)
{
    s_inprocess_t *self = impl;
    size_t step = self->chunksize ? self->chunksize : n;
    for (size_t i = 0; i < n; i += step) {
        size_t m = n - i < step ? n - i : step;
        int rc = ns_model_log_likelihood(self->model, x + i * d, m, logl + i);
        if (rc) {
            ns_error("evaluator", "%s", ns_model_last_error(self->model));
            return rc;
        }
    }
    return NS_OK;
}

static void s_inprocess_destroy(void *impl) { free(impl); }

static const ns_evaluator_ops_t s_inprocess_ops = {
    .kind = "in-process",
    .evaluate = s_inprocess_evaluate,
    .destroy = s_inprocess_destroy,
};

ns_evaluator_t *ns_evaluator_inprocess_new(ns_model_t *model, size_t chunksize)
{
    s_inprocess_t *impl = calloc(1, sizeof *impl);
    if (!impl)
        return NULL;
    impl->model = model;
    impl->chunksize = chunksize;
    ns_evaluator_t *ev = ns_evaluator_new(&s_inprocess_ops, impl);
    if (!ev)
        free(impl);
    return ev;
}
