/* flow_proposal.c - FlowProposal: training on the live points, pool
 * population from the truncated flow, draws (docs/algorithm.md §2.3-§2.7). */
#include "flow_proposal_impl.h"
#include "flow.h"
#include "flow_io.h"
#include "flow_train.h"
#include "reparam.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"

#include <cjson/cJSON.h>
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double s_opt_double_or(const ns_config_t *c, const char *name, double dflt)
{
    return ns_config_is_set(c, name) ? ns_config_double(c, name) : dflt;
}

static void s_destroy(void *impl)
{
    s_fp_t *s = impl;
    if (!s)
        return;
    ns_reparam_destroy(&s->rp);
    ns_flow_destroy(&s->flow);
    ns_adamw_destroy(&s->opt);
    ns_rng_destroy(&s->rng_train);
    ns_rng_destroy(&s->rng_pop);
    free(s->weights_path);
    free(s->radius_data);
    free(s->pool);
    free(s->order);
    free(s->z);
    free(s->xp);
    free(s->x);
    free(s->logq);
    free(s->logj);
    free(s->logp);
    free(s->logl);
    free(s->lpr);
    free(s->rng_snap);
    free(s);
}

/* ---------------------------------------------------------------- draw */


static int s_draw(void *impl, const double *worst, double *out)
{
    s_fp_t *s = impl;
    int rc;
    if (!s->populated && (rc = ns_fp_populate(s, worst)) != NS_OK)
        return rc;
    size_t i = s->order[--s->remaining];
    memcpy(out, s->pool + i * s->stride, s->stride * sizeof(double));
    if (s->remaining == 0)
        s->populated = 0;
    return NS_OK;
}

static int s_is_populated(const void *impl) { return ((const s_fp_t *)impl)->populated; }

static void s_set_acc(void *impl, double a) { ((s_fp_t *)impl)->ns_acceptance = a; }

/* ------------------------------------------------------------ training */

static int s_train(void *impl, const double *rows, size_t n, const ns_train_info_t *info)
{
    s_fp_t *s = impl;
    size_t d = s->dp;
    double t_start = ns_now();
    /* pool points left over are discarded (their likelihoods were paid) */
    s->populated = 0;
    s->remaining = 0;
    /* everything this call changes, so that an interrupted call can be
     * undone and repeated with the identical result */
    ns_buf_t snap;
    ns_buf_init(&snap);
    ns_flow_save(s->flow, &snap);
    ns_adamw_save(s->opt, &snap);
    ns_reparam_save(s->rp, &snap);
    ns_rng_put(&snap, s->rng_train);
    size_t mc = ns_reparam_max_copies(s->rp, 0), mr = ns_reparam_max_copies(s->rp, 1);
    double *xp = malloc(n * (mc > mr ? mc : mr) * d * sizeof(double) + 1);
    double *lq = malloc(n * sizeof(double) + 1), *lj = calloc(n + 1, sizeof(double));
    int rc = ns_buf_error(&snap);
    if (rc == NS_OK && (!xp || !lq || !lj))
        rc = NS_ERR_NOMEM;
    if (rc != NS_OK)
        goto done;
    /* resets (docs/algorithm.md §2.4), never before the first training */
    if (s->trainings > 0) {
        long c = info ? info->training_count : s->trainings;
        long rw = s->reset_flow ? s->reset_flow : s->reset_weights;
        long rpm = s->reset_flow ? s->reset_flow : s->reset_perms;
        int full = info && info->reset_full;
        int w = rw && c % rw == 0, p = rpm && c % rpm == 0;
        if (full || (w && p))
            ns_flow_reset_full(s->flow, s->rng_train);
        else if (w)
            ns_flow_reset_weights(s->flow, s->rng_train);
        else if (p)
            ns_flow_reset_permutations(s->flow, s->rng_train);
        if (full || w || p) {
            ns_adamw_reset(s->opt);
            ns_debug(NS_FP_MOD, "flow reset before training %ld (%s)", c,
                     full || (w && p) ? "full" : w ? "weights" : "permutations");
        }
    }

    if ((rc = ns_reparam_update(s->rp, rows, n, s->stride)) != NS_OK)
        goto done;
    size_t m = ns_reparam_forward_mirror(s->rp, rows, n, s->stride, xp, NULL, NULL,
                                         s->rng_train, 0);
    /* --threads applies to training only: the population's small products
     * lose more to thread hand-offs than they gain */
    ns_flow_set_threads(s->threads);
    rc = ns_flow_train(s->flow, s->opt, &s->tcfg, xp, m, s->rng_train, &s->last_train, NULL);
    ns_flow_set_threads(1);
    if (rc != NS_OK) {
        if (rc == NS_ERR_INTERRUPTED) {
            snap.pos = 0;
            if (ns_flow_load(s->flow, &snap) != NS_OK || ns_adamw_load(s->opt, &snap) != NS_OK ||
                ns_reparam_load(s->rp, &snap) != NS_OK || ns_rng_get(&snap, s->rng_train) != NS_OK)
                ns_error(NS_FP_MOD, "could not restore the flow after an interrupted training");
        } else {
            ns_error(NS_FP_MOD, "training failed on %zu points: %s", m, ns_strerror(rc));
        }
        goto done;
    }
    s->trainings++;
    s->total_epochs += (double)s->last_train.epochs;
    s->time_fit += s->last_train.time;
    /* min log q of the training points (for the min-log-q rule) */
    if ((rc = ns_reparam_forward_rng(s->rp, rows, n, s->stride, xp, lj, s->rng_train)) != NS_OK)
        goto done;
    ns_flow_log_prob(s->flow, xp, n, lq);
    s->min_log_q = INFINITY;
    for (size_t i = 0; i < n; i++)
        if (isfinite(lq[i] + lj[i]) && lq[i] + lj[i] < s->min_log_q)
            s->min_log_q = lq[i] + lj[i];
    /* prime rows kept for compute_radius_with_all */
    if (s->radius_with_all) {
        size_t mrad = ns_reparam_forward_mirror(s->rp, rows, n, s->stride, xp, NULL, NULL,
                                                s->rng_train, 1);
        double *rdat = realloc(s->radius_data, mrad * d * sizeof(double) + 1);
        if (!rdat) {
            rc = NS_ERR_NOMEM;
            goto done;
        }
        memcpy(rdat, xp, mrad * d * sizeof(double));
        s->radius_data = rdat;
        s->radius_n = mrad;
    }
    if (s->weights_path) {
        int wrc = ns_flow_weights_write(s->weights_path, s->flow, s->opt);
        if (wrc != NS_OK)
            ns_warn(NS_FP_MOD, "could not write %s: %s", s->weights_path, ns_strerror(wrc));
    }
    ns_debug(NS_FP_MOD, "training %ld: %zu points, batch %zu, %zu epochs, best %zu, val loss %.5f, "
             "%.3f s", s->trainings, s->last_train.n_train + s->last_train.n_val,
             s->last_train.batch_size, s->last_train.epochs, s->last_train.best_epoch,
             s->last_train.best_val_loss, s->last_train.time);
    for (size_t j = 0; j < s->d; j++) {
        ns_rp_kind_t k = ns_reparam_kind(s->rp, j);
        if (k == NS_RP_INVERSION || k == NS_RP_INVERSION_DUP || k == NS_RP_DISTANCE) {
            static const char *en[] = {"none", "lower", "upper"};
            ns_debug(NS_FP_MOD, "inversion of %s: edge %s", ns_model_param_names(s->env.model)[j],
                     en[ns_reparam_edge(s->rp, j)]);
        }
    }
done:
    ns_buf_free(&snap);
    free(xp);
    free(lq);
    free(lj);
    s->time_train += ns_now() - t_start;
    return rc;
}

static const ns_proposal_ops_t s_ops = {
    .name = "flow",
    .draw = s_draw,
    .is_populated = s_is_populated,
    .train = s_train,
    .set_ns_acceptance = s_set_acc,
    .activate = NULL,
    .save = ns_fp_save,
    .load = ns_fp_load,
    .stats_json = ns_fp_stats_json,
    .stats_schema = ns_fp_stats_schema,
    .destroy = s_destroy,
};

/* ------------------------------------------------------------- factory */

/* proposal/flow_config.json and training_config.json, as nessai writes them. */
static void s_write_configs(const s_fp_t *s, const char *dir, const ns_config_t *cfg)
{
    cJSON *fc = cJSON_CreateObject(), *tc = cJSON_CreateObject();
    if (!fc || !tc)
        goto done;
    cJSON_AddStringToObject(fc, "ftype", "RealNVP");
    cJSON_AddNumberToObject(fc, "n_inputs", (double)s->dp);
    cJSON_AddNumberToObject(fc, "n_blocks", (double)s->fcfg.n_blocks);
    cJSON_AddNumberToObject(fc, "n_layers", (double)s->fcfg.n_layers);
    cJSON_AddNumberToObject(fc, "n_neurons", (double)s->fcfg.n_neurons);
    cJSON_AddStringToObject(fc, "net", s->fcfg.net == NS_NET_MLP ? "mlp" : "resnet");
    cJSON_AddStringToObject(fc, "linear_transform", ns_config_str(cfg, "flow-linear-transform"));
    cJSON_AddBoolToObject(fc, "batch_norm_between_layers", s->fcfg.batch_norm);
    cJSON_AddStringToObject(fc, "dtype", "float64");
    cJSON_AddNumberToObject(fc, "n_parameters", (double)ns_flow_n_params(s->flow));
    cJSON_AddStringToObject(tc, "optimiser", "adamw");
    cJSON_AddNumberToObject(tc, "lr", s->tcfg.lr);
    cJSON_AddNumberToObject(tc, "weight_decay", s->tcfg.weight_decay);
    cJSON_AddNumberToObject(tc, "batch_size", (double)s->tcfg.batch_size);
    cJSON_AddNumberToObject(tc, "val_size", s->tcfg.val_size);
    cJSON_AddNumberToObject(tc, "max_epochs", (double)s->tcfg.max_epochs);
    cJSON_AddNumberToObject(tc, "patience", (double)s->tcfg.patience);
    cJSON_AddNumberToObject(tc, "clip_grad_norm", s->tcfg.clip_grad_norm);
    cJSON_AddNumberToObject(tc, "threads", (double)s->threads);
    const char *names[2] = {"flow_config.json", "training_config.json"};
    cJSON *objs[2] = {fc, tc};
    for (int k = 0; k < 2; k++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        char *txt = cJSON_Print(objs[k]);
        FILE *f = txt ? fopen(path, "w") : NULL;
        if (!f || fputs(txt, f) < 0 || fputc('\n', f) == EOF)
            ns_warn(NS_FP_MOD, "could not write %s", path);
        if (f)
            fclose(f);
        cJSON_free(txt);
    }
done:
    cJSON_Delete(fc);
    cJSON_Delete(tc);
}

static int s_configure(s_fp_t *s, const ns_config_t *cfg)
{
    size_t d = s->dp;
    s->fcfg = ns_flow_config_default(d);
    s->fcfg.n_blocks = (size_t)ns_config_int(cfg, "flow-n-blocks");
    s->fcfg.n_layers = (size_t)ns_config_int(cfg, "flow-n-layers");
    s->fcfg.n_neurons = ns_config_is_set(cfg, "flow-n-neurons")
                            ? (size_t)ns_config_int(cfg, "flow-n-neurons") : 2 * d;
    s->fcfg.net = strcmp(ns_config_str(cfg, "flow-net"), "mlp") == 0 ? NS_NET_MLP : NS_NET_RESNET;
    s->fcfg.batch_norm = ns_config_bool(cfg, "flow-batch-norm");
    const char *lt = ns_config_str(cfg, "flow-linear-transform");
    s->fcfg.linear = strcmp(lt, "lu") == 0 ? NS_FLOW_LINEAR_LU
                     : strcmp(lt, "permutation") == 0 ? NS_FLOW_LINEAR_PERMUTATION
                                                      : NS_FLOW_LINEAR_NONE;
    if (s->fcfg.net == NS_NET_MLP && s->fcfg.n_layers < 1) {
        ns_error(NS_FP_MOD, "--flow-net mlp needs --flow-n-layers >= 1");
        return NS_ERR_INVAL;
    }
    s->tcfg.lr = ns_config_double(cfg, "lr");
    s->tcfg.weight_decay = ns_config_double(cfg, "weight-decay");
    s->tcfg.batch_size = (size_t)ns_config_int(cfg, "batch-size");
    s->tcfg.val_size = ns_config_double(cfg, "val-size");
    s->tcfg.max_epochs = (size_t)ns_config_int(cfg, "max-epochs");
    s->tcfg.patience = (size_t)ns_config_int(cfg, "patience");
    s->tcfg.clip_grad_norm = ns_config_double(cfg, "clip-grad-norm");
    s->reset_weights = ns_config_int(cfg, "reset-weights");
    s->reset_perms = ns_config_int(cfg, "reset-permutations");
    s->reset_flow = ns_config_int(cfg, "reset-flow");

    s->truncate = strcmp(ns_config_str(cfg, "truncation"), "none") != 0;
    const char *rm = ns_config_str(cfg, "radius-mode");
    s->radius_mode = strcmp(rm, "adaptive") == 0 ? RM_ADAPTIVE
                     : strcmp(rm, "fixed") == 0  ? RM_FIXED
                                                 : RM_CONSTANT_VOLUME;
    s->fixed_radius = s_opt_double_or(cfg, "fixed-radius", NAN);
    if (s->truncate && s->radius_mode == RM_FIXED && isnan(s->fixed_radius)) {
        ns_error(NS_FP_MOD, "--radius-mode fixed needs --fixed-radius R");
        return NS_ERR_INVAL;
    }
    s->volume_fraction = ns_config_double(cfg, "volume-fraction");
    s->max_radius = s_opt_double_or(cfg, "max-radius", NAN);
    s->min_radius = s_opt_double_or(cfg, "min-radius", NAN);
    s->radius_with_all = ns_config_bool(cfg, "compute-radius-with-all");
    double ef = s_opt_double_or(cfg, "expansion-fraction", NAN);
    s->fuzz = isnan(ef) ? ns_config_double(cfg, "fuzz") : pow(1.0 + ef, 1.0 / (double)d);
    s->r_cv = sqrt(gsl_cdf_chisq_Pinv(s->volume_fraction, (double)d));
    if (s->radius_mode == RM_CONSTANT_VOLUME) {
        s->fuzz = 1.0;
        s->max_radius = NAN;
        s->min_radius = NAN;
    }
    s->use_min_log_q = ns_config_bool(cfg, "min-log-q");
    s->use_lthreshold = ns_config_bool(cfg, "likelihood-threshold");
    s->temperature = s_opt_double_or(cfg, "latent-temperature", 1.0);
    s->poolsize = ns_config_is_set(cfg, "poolsize") ? (size_t)ns_config_int(cfg, "poolsize")
                                                    : s->env.nlive;
    s->drawsize = ns_config_is_set(cfg, "drawsize") ? (size_t)ns_config_int(cfg, "drawsize")
                                                    : s->poolsize;
    s->update_poolsize = ns_config_bool(cfg, "update-poolsize");
    s->max_scale = ns_config_double(cfg, "max-poolsize-scale");
    s->max_draws = (size_t)ns_config_int(cfg, "max-population-draws");
    s->threads = (int)ns_config_int(cfg, "threads");
    s->pop_f32 = strcmp(ns_config_str(cfg, "population-precision"), "float32") == 0;
    s->train_f32 = strcmp(ns_config_str(cfg, "training-precision"), "float32") == 0;
    if (s->poolsize < 1 || s->drawsize < 1)
        return NS_ERR_INVAL;
    return NS_OK;
}

static int s_alloc(s_fp_t *s)
{
    size_t d = s->dp, D = s->drawsize;
    size_t mr = ns_reparam_max_copies(s->rp, 1);
    size_t rows = D > mr ? D : mr;
    s->pool_cap = (size_t)(s->max_scale * (double)s->poolsize) + 1;
    s->pool = malloc(s->pool_cap * s->stride * sizeof(double));
    s->order = malloc(s->pool_cap * sizeof(size_t));
    s->z = malloc(rows * d * sizeof(double));
    s->xp = malloc(rows * d * sizeof(double));
    s->x = malloc(rows * s->d * sizeof(double));
    s->lpr = malloc(rows * sizeof(double));
    s->logq = malloc(rows * sizeof(double));
    s->logj = malloc(rows * sizeof(double));
    s->logp = malloc(rows * sizeof(double));
    s->logl = malloc(rows * sizeof(double));
    s->rng_snap = malloc(ns_rng_state_size(s->rng_pop));
    if (!s->pool || !s->order || !s->z || !s->xp || !s->x || !s->logq || !s->logj ||
        !s->logp || !s->logl || !s->lpr || !s->rng_snap)
        return NS_ERR_NOMEM;
    return ns_flow_reserve(s->flow, rows);
}

int ns_flow_proposal_new(const ns_config_t *cfg, const ns_proposal_env_t *env,
                         ns_proposal_t **out)
{
    *out = NULL;
    s_fp_t *s = calloc(1, sizeof *s);
    if (!s)
        return NS_ERR_NOMEM;
    s->env = *env;
    s->d = env->dim;
    s->stride = NS_LP_STRIDE(env->dim);
    s->ns_acceptance = 1.0;
    s->last_radius = NAN;
    s->min_log_q = -INFINITY;
    int rc;
    char err[512] = "";
    ns_rp_model_t rpm = {s->d, ns_model_param_names(env->model), ns_model_lower(env->model),
                         ns_model_upper(env->model), ns_model_periodic(env->model),
                         ns_model_period(env->model), ns_model_reparameterisations(env->model),
                         strcmp(ns_config_str(cfg, "flow-proposal"), "gw") == 0};
    s->rp = ns_reparam_new_model(&rpm, ns_config_str(cfg, "reparameterisations"),
                                 ns_config_str(cfg, "fallback-reparameterisation"), err, sizeof err);
    if (!s->rp) {
        ns_error(NS_FP_MOD, "%s", err);
        rc = NS_ERR_INVAL;
        goto fail;
    }
    s->dp = ns_reparam_prime_dim(s->rp);
    s->has_lpr = ns_reparam_has_prior(s->rp);
    if ((rc = s_configure(s, cfg)) != NS_OK)
        goto fail;
    s->rng_train = ns_rng_new(env->seed, env->stream);
    s->rng_pop = ns_rng_new(env->seed, env->stream + 1);
    if (!s->rng_train || !s->rng_pop) {
        rc = NS_ERR_NOMEM;
        goto fail;
    }
    ns_reparam_set_rng(s->rp, s->rng_train);
    s->flow = ns_flow_new(&s->fcfg, s->rng_train);
    if (!s->flow) {
        ns_error(NS_FP_MOD, "could not build the flow (dimension %zu)", s->dp);
        rc = NS_ERR_INVAL;
        goto fail;
    }
    s->opt = ns_adamw_new(ns_flow_n_params(s->flow), s->tcfg.lr, s->tcfg.weight_decay);
    if (!s->opt || (rc = ns_flow_set_train_f32(s->flow, s->train_f32)) != NS_OK ||
        (rc = s_alloc(s)) != NS_OK) {
        rc = rc ? rc : NS_ERR_NOMEM;
        goto fail;
    }
    ns_flow_set_threads(1); /* populations are single-threaded; training sets --threads */
    /* verify the rescaling round trip on 1000 prior draws (docs/algorithm.md §3) */
    {
        ns_rng_t *vr = ns_rng_new(env->seed, env->stream + 2);
        double *xv = malloc(1000 * s->d * sizeof(double)), e = 0.0;
        rc = (!vr || !xv) ? NS_ERR_NOMEM : ns_model_new_point(env->model, vr, 1000, xv);
        if (rc == NS_OK)
            rc = ns_reparam_verify(s->rp, xv, 1000, vr, &e, err, sizeof err);
        if (rc != NS_OK)
            ns_error(NS_FP_MOD, "rescaling verification failed: %s",
                     err[0] ? err : rc == NS_ERR_MODEL ? ns_model_last_error(env->model) : ns_strerror(rc));
        free(xv);
        ns_rng_destroy(&vr);
        if (rc != NS_OK)
            goto fail;
    }
    if (env->output) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/proposal", env->output);
        if (ns_mkdir_p(dir) == NS_OK) {
            size_t n = strlen(dir) + 16;
            s->weights_path = malloc(n);
            if (s->weights_path)
                snprintf(s->weights_path, n, "%s/model.flow", dir);
            s_write_configs(s, dir, cfg);
        } else {
            ns_warn(NS_FP_MOD, "could not create %s; flow weights will not be written", dir);
        }
    }
    ns_info(NS_FP_MOD, "RealNVP d'=%zu blocks=%zu layers=%zu neurons=%zu net=%s linear=%s "
            "batch_norm=%d parameters=%zu", s->dp, s->fcfg.n_blocks, s->fcfg.n_layers,
            s->fcfg.n_neurons, s->fcfg.net == NS_NET_MLP ? "mlp" : "resnet",
            ns_config_str(cfg, "flow-linear-transform"), s->fcfg.batch_norm,
            ns_flow_n_params(s->flow));
    {
        char line[2048];
        ns_reparam_describe(s->rp, ns_model_param_names(env->model), line, sizeof line);
        ns_info(NS_FP_MOD, "reparameterisations %s (d'=%zu; verified on 1000 prior draws)", line,
                s->dp);
    }
    ns_info(NS_FP_MOD, "arithmetic: training %s, population %s; OpenBLAS kernels %s "
            "(OPENBLAS_CORETYPE selects others; results repeat bit for bit only with the same)",
            s->train_f32 ? "float32" : "float64", s->pop_f32 ? "float32" : "float64",
            ns_flow_blas_core());
    if (s->truncate)
        ns_info(NS_FP_MOD, "truncation latent_radius mode=%s radius=%.4f fuzz=%.4f "
                "volume_fraction=%.3f min_log_q=%d likelihood_threshold=%d",
                ns_config_str(cfg, "radius-mode"),
                s->radius_mode == RM_FIXED ? s->fixed_radius : s->r_cv, s->fuzz,
                s->volume_fraction, s->use_min_log_q, s->use_lthreshold);
    else
        ns_info(NS_FP_MOD, "truncation none min_log_q=%d likelihood_threshold=%d", s->use_min_log_q,
                s->use_lthreshold);
    *out = ns_proposal_new(&s_ops, s);
    if (!*out) {
        rc = NS_ERR_NOMEM;
        goto fail;
    }
    return NS_OK;
fail:
    s_destroy(s);
    return rc;
}
