/* ins_main.c - the importance nested sampler's options and its run from
 * the coordinator (--importance-nested-sampler): result.json, posterior.csv
 * and ln Z on stdout (docs/sampler.md, "Importance nested sampler"). */
#include "ins.h"

#include "checkpoint.h"
#include "sampler.h"
#include "nessai/error.h"
#include "nessai/hdf5out.h"
#include "nessai/json.h"
#include "nessai/log.h"
#include "nessai/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define G "Importance nested sampler"

const ns_option_t ns_ins_options[] = {
    {"importance-nested-sampler", NS_OPT_BOOL, "false", NAN, NAN, NULL, 0, G,
     "Run nessai's importance nested sampler instead of the standard one: levels of flows in the "
     "logit space of the unit hypercube, evidence by importance weights (--nlive defaults to "
     "5000 here)."},
    {"threshold-method", NS_OPT_CHOICE, "entropy", NAN, NAN, "entropy|quantile", 0, G,
     "How a level's log-likelihood threshold is chosen (nessai's threshold_method): entropy = "
     "discard the share --threshold-q of the live points' entropy; quantile = the weighted "
     "(Harrell-Davis) --threshold-q quantile of their log-likelihoods."},
    {"threshold-q", NS_OPT_DOUBLE, "0.5", 1e-9, 0.999999999, NULL, 0, G,
     "Fraction of the live points' entropy discarded per level (nessai's q, the paper's rho); "
     "with --threshold-method quantile the quantile, 0.8 unless given."},
    {"min-samples", NS_OPT_INT, "500", 1, NAN, NULL, 0, G,
     "Live points kept and training samples used per level, at least."},
    {"min-remove", NS_OPT_INT, "1", 1, NAN, NULL, 0, G, "Points removed per level, at least."},
    {"n-initial", NS_OPT_INT, NULL, 2, NAN, NULL, NS_OPT_ALLOW_NONE, G,
     "Prior samples drawn per sample set at the start (none = nlive)."},
    {"stopping-criterion", NS_OPT_CHOICE, "ratio", NAN, NAN,
     "ratio|ratio_ns|dlogZ|ess|Z_err|fractional_error", 0, G,
     "The stopping rule (nessai's names): ratio = ln Z_live - ln Z, ratio_ns = ln Z_live - "
     "ln Z_nested, dlogZ = |change of ln Z| in the last level, Z_err = the evidence's standard "
     "error, fractional_error = its relative error (each stops at most --tolerance); ess = the "
     "posterior ESS (stops at least --tolerance)."},
    {"tolerance", NS_OPT_DOUBLE, "0", -INFINITY, INFINITY, NULL, 0, G,
     "The tolerance of --stopping-criterion (nessai's 0 for every rule; ess needs a positive "
     "one)."},
    {"min-iteration", NS_OPT_INT, NULL, 0, NAN, NULL, NS_OPT_ALLOW_NONE, G,
     "Levels to build before the stopping rule may end the run (none = no minimum); "
     "--max-iteration caps them."},
    {"draw-iid-live", NS_OPT_BOOL, "true", NAN, NAN, NULL, 0, G,
     "Draw a second, independent sample set per level for the evidence and posterior (twice the "
     "likelihoods, no training bias); off = the training samples serve both."},
};
const size_t ns_ins_options_count = sizeof ns_ins_options / sizeof ns_ins_options[0];

int ns_ins_config_from_options(const ns_config_t *cfg, size_t d, ns_ins_config_t *out,
                               char *err, size_t errlen)
{
    ns_ins_config_t c = ns_ins_config_default(d, (uint64_t)ns_config_int(cfg, "seed"));
    if (ns_config_user_set(cfg, "nlive"))
        c.nlive = (size_t)ns_config_int(cfg, "nlive");
    c.n_initial = ns_config_is_set(cfg, "n-initial") ? (size_t)ns_config_int(cfg, "n-initial")
                                                     : c.nlive;
    c.quantile = strcmp(ns_config_str(cfg, "threshold-method"), "quantile") == 0;
    c.q = c.quantile && !ns_config_user_set(cfg, "threshold-q") ? 0.8
                                                               : ns_config_double(cfg, "threshold-q");
    c.min_samples = (size_t)ns_config_int(cfg, "min-samples");
    c.min_remove = (size_t)ns_config_int(cfg, "min-remove");
    c.tolerance = ns_config_double(cfg, "tolerance");
    c.criterion = ns_ins_criterion_from_name(ns_config_str(cfg, "stopping-criterion"));
    c.min_iteration = ns_config_is_set(cfg, "min-iteration") ? ns_config_int(cfg, "min-iteration")
                                                             : -1;
    c.max_iteration = ns_config_is_set(cfg, "max-iteration") ? ns_config_int(cfg, "max-iteration")
                                                             : -1;
    c.draw_iid_live = ns_config_bool(cfg, "draw-iid-live");
    /* the flow option --reset-flow, whose default (0) is the standard
     * sampler's; nessai's importance sampler defaults to a fresh flow every
     * level */
    c.reset_flow = ns_config_user_set(cfg, "reset-flow") ? (size_t)ns_config_int(cfg, "reset-flow")
                                                        : 1;
    c.flow.n_blocks = (size_t)ns_config_int(cfg, "flow-n-blocks");
    c.flow.n_layers = (size_t)ns_config_int(cfg, "flow-n-layers");
    c.flow.n_neurons = ns_config_is_set(cfg, "flow-n-neurons")
                           ? (size_t)ns_config_int(cfg, "flow-n-neurons") : 2 * d;
    c.flow.net = strcmp(ns_config_str(cfg, "flow-net"), "mlp") == 0 ? NS_NET_MLP : NS_NET_RESNET;
    c.flow.batch_norm = ns_config_bool(cfg, "flow-batch-norm");
    const char *lt = ns_config_str(cfg, "flow-linear-transform");
    c.flow.linear = strcmp(lt, "lu") == 0 ? NS_FLOW_LINEAR_LU
                    : strcmp(lt, "permutation") == 0 ? NS_FLOW_LINEAR_PERMUTATION
                                                     : NS_FLOW_LINEAR_NONE;
    c.train.lr = ns_config_double(cfg, "lr");
    c.train.weight_decay = ns_config_double(cfg, "weight-decay");
    c.train.batch_size = (size_t)ns_config_int(cfg, "batch-size");
    c.train.val_size = ns_config_double(cfg, "val-size");
    c.train.max_epochs = (size_t)ns_config_int(cfg, "max-epochs");
    c.train.patience = (size_t)ns_config_int(cfg, "patience");
    c.train.clip_grad_norm = ns_config_double(cfg, "clip-grad-norm");
    c.train_f32 = strcmp(ns_config_str(cfg, "training-precision"), "float32") == 0;
    c.threads = (int)ns_config_int(cfg, "threads");
    c.allow_multi_valued = ns_config_bool(cfg, "allow-multi-valued-likelihood");
    if (c.min_samples > c.nlive || c.min_remove > c.nlive || c.min_samples > c.n_initial) {
        ns_errf(err, errlen, "--min-samples (%zu) and --min-remove (%zu) must not exceed --nlive "
                "(%zu) or --n-initial (%zu)", c.min_samples, c.min_remove, c.nlive, c.n_initial);
        return NS_ERR_INVAL;
    }
    *out = c;
    return NS_OK;
}

int ns_ins_check_options(const ns_config_t *cfg, ns_model_t *model)
{
    char err[512] = "";
    ns_ins_config_t c;
    int rc = ns_ins_config_from_options(cfg, (size_t)ns_model_dim(model), &c, err, sizeof err);
    if (rc != NS_OK)
        fprintf(stderr, "nessai-coordinator: error: %s\n", err);
    return rc;
}

static int s_put_text(FILE *f, void *ctx)
{
    return fputs(ctx, f) < 0 || fputc('\n', f) == EOF;
}

/* result.hdf5's types: the sample record arrays with nessai's dtype
 * (parameters, logP, logL f8, it i4, logW, logQ, logU f8) and the keys that
 * are Python ints in nessai. */
static int s_schema(ns_h5_schema_t *schema, ns_model_t *model)
{
    size_t d = (size_t)ns_model_dim(model), nf = d + 6;
    const char **names = malloc(nf * sizeof *names);
    ns_h5_dtype_t *types = malloc(nf * sizeof *types);
    int rc = names && types ? NS_OK : NS_ERR_NOMEM;
    static const char *const extra[6] = {"logP", "logL", "it", "logW", "logQ", "logU"};
    for (size_t c = 0; rc == NS_OK && c < nf; c++) {
        names[c] = c < d ? ns_model_param_names(model)[c] : extra[c - d];
        types[c] = c == d + 2 ? NS_H5_INT32 : NS_H5_FLOAT64;
    }
    static const char *const recs[] = {"samples", "training_samples", "posterior_samples"};
    for (size_t i = 0; rc == NS_OK && i < sizeof recs / sizeof recs[0]; i++)
        rc = ns_h5_schema_add_records(schema, recs[i], names, types, nf);
    free(names);
    free(types);
    static const char *const ints[] = {
        "seed", "total_likelihood_evaluations", "iterations", "history/likelihood_evaluations",
        "history/n_removed", "history/n_added", "history/n_live", "history/n_training", "run/dim",
        "nonfinite_likelihood/evaluated", "nonfinite_likelihood/nan", "nonfinite_likelihood/neg_inf",
    };
    for (size_t i = 0; rc == NS_OK && i < sizeof ints / sizeof ints[0]; i++)
        rc = ns_h5_schema_add(schema, ints[i], NS_H5_INT64);
    return rc;
}

static int s_write_result(const ns_ins_t *ins, ns_model_t *model, ns_evaluator_t *ev,
                          const char *output, int argc, char **argv, int hdf5)
{
    cJSON *r = ns_ins_result_json(ins);
    if (!r)
        return NS_ERR_NOMEM;
    cJSON *run = ns_result_add_run(r, model, ev, argc, argv);
    ns_result_add_truth(run, model, ns_ins_log_evidence(ins), ns_ins_log_evidence_error(ins));
    cJSON *farm = cJSON_AddObjectToObject(r, "farm");
    ns_evaluator_stats_json(ev, farm);
    char *text = ns_json_print(r);
    char *path = ns_path_join(output, "result.json");
    int rc = text && path ? ns_write_file_atomic(path, 0666, 0, s_put_text, text, NULL)
                          : NS_ERR_NOMEM;
    if (rc == NS_OK)
        ns_info(NULL, "Results saved to %s", path);
    else if (rc == NS_ERR_IO)
        ns_error(NULL, "could not write %s: check that the output directory is writable", path);
    free(text);
    free(path);
    if (rc == NS_OK && hdf5) {
        char herr[512] = "out of memory";
        path = ns_path_join(output, "result.hdf5");
        ns_h5_schema_t *schema = ns_h5_schema_new();
        rc = path && schema ? s_schema(schema, model) : NS_ERR_NOMEM;
        if (rc == NS_OK)
            rc = ns_hdf5_write_json(r, schema, path, herr, sizeof herr);
        ns_h5_schema_destroy(&schema);
        if (rc == NS_OK)
            ns_info(NULL, "Results saved to %s", path);
        else
            ns_error(NULL, "%s", herr);
        free(path);
    }
    cJSON_Delete(r);
    return rc;
}

/* The checkpoint's payload, as the standard sampler's: the run's settings
 * (checked on resume before anything is created), then the state. */
typedef struct {
    const ns_config_t *cfg;
    ns_ckpt_ctl_t *ckpt;
    ns_ins_t *ins;
} s_ckpt_ctx_t;

static int s_save_state(void *state, ns_buf_t *b)
{
    const s_ckpt_ctx_t *c = state;
    int rc = ns_ckpt_settings_put(c->cfg, b);
    return rc == NS_OK ? ns_ins_save(c->ins, b) : rc;
}

static int s_save_snapshot(void *state, ns_buf_t *b)
{
    const s_ckpt_ctx_t *c = state;
    int rc = ns_ckpt_settings_put(c->cfg, b);
    return rc == NS_OK ? ns_ins_save_snapshot(c->ins, b) : rc;
}

/* Periodic checkpoints at level boundaries, one at the end. */
static int s_hook(ns_ins_t *ins, int end, void *ctx)
{
    s_ckpt_ctx_t *c = ctx;
    uint64_t it = (uint64_t)ns_ins_iteration(ins);
    if (end)
        return ns_ckpt_ctl_save(c->ckpt, it, s_save_state, c);
    return ns_ckpt_ctl_iteration(c->ckpt, it, s_save_state, c);
}

int ns_ins_main(const ns_config_t *cfg, ns_model_t *model, ns_evaluator_t *ev,
                ns_ckpt_ctl_t *ckpt, const ns_ckpt_loaded_t *resume, double startup_s,
                const char *output, int argc, char **argv, int *keep_workers)
{
    char err[512] = "";
    ns_ins_config_t c;
    ns_ins_t *ins = NULL;
    int rc = ns_ins_config_from_options(cfg, (size_t)ns_model_dim(model), &c, err, sizeof err);
    if (rc == NS_OK)
        rc = ns_ins_new(&c, model, ev, &ins, err, sizeof err);
    if (rc != NS_OK) {
        fprintf(stderr, "nessai-coordinator: error: %s\n",
                err[0] ? err : "could not set up the importance nested sampler (out of memory)");
        return rc == NS_ERR_INVAL ? 2 : 1;
    }
    if (resume && resume->payload) {
        ns_buf_t saved;
        ns_buf_view(&saved, resume->payload, resume->payload_len);
        char *settings = NULL;   /* compared with this run's by the coordinator */
        rc = ns_ckpt_settings_take(&saved, &settings);
        free(settings);
        if (rc == NS_OK && (rc = ns_ins_load(ins, &saved)) == NS_OK &&
            ns_buf_remaining(&saved) != 0)
            rc = NS_ERR_CORRUPT;
        if (rc != NS_OK) {
            fprintf(stderr, "nessai-coordinator: error: the checkpoint %s does not fit this run "
                            "(%s); resume with the settings of the original run, or use "
                            "--no-resume\n", ns_ckpt_ctl_path(ckpt), ns_strerror(rc));
            ns_ins_destroy(&ins);
            return 2;
        }
        ns_info(NULL, "Resuming from iteration %ld", ns_ins_iteration(ins));
    }
    s_ckpt_ctx_t cctx = {cfg, ckpt, ins};
    ns_ins_set_hook(ins, s_hook, &cctx);
    if (ns_ckpt_ctl_start(ckpt, startup_s) != NS_OK) {
        ns_ins_destroy(&ins);
        return 1;
    }
    rc = ns_ins_run(ins);
    int status = 0;
    if (rc == NS_ERR_INTERRUPTED) {
        /* paused, not over: remote workers stay for the resumed run; the
         * checkpoint is the state at the last level boundary */
        *keep_workers = 1;
        ns_buf_t probe;
        ns_buf_init(&probe);
        int have = ns_ins_save_snapshot(ins, &probe) == NS_OK;
        ns_buf_free(&probe);
        status = ns_ckpt_ctl_interrupted(ckpt, (uint64_t)ns_ins_iteration(ins),
                                         have ? s_save_snapshot : NULL, &cctx);
    } else if (rc != NS_OK) {
        fprintf(stderr, "nessai-coordinator: error: the run failed (%s); see %s/nessai.log\n",
                ns_strerror(rc), output);
        status = 1;
    } else {
        char *path = ns_path_join(output, "posterior.csv");
        /* the final checkpoint is written: the densities of every sample
         * under every level's flow are not needed for the results, and on
         * long runs they are most of the memory (N x levels per set) */
        ns_ins_release_densities(ins);
        rc = s_write_result(ins, model, ev, output, argc, argv,
                            ns_config_bool(cfg, "result-hdf5"));
        if (rc == NS_OK)
            rc = path ? ns_ins_write_posterior_csv(ins, path) : NS_ERR_NOMEM;
        if (rc == NS_OK)
            ns_info(NULL, "Samples saved to %s", path);
        free(path);
        if (rc != NS_OK) {
            fprintf(stderr, "nessai-coordinator: error: writing the results failed (%s)\n",
                    ns_strerror(rc));
            status = 1;
        } else {
            double lz = ns_ins_log_evidence(ins), lze = ns_ins_log_evidence_error(ins);
            printf("ln Z = %.4f +/- %.4f\n", lz, lze);
            double truth = ns_model_truth(model);
            if (!isnan(truth))
                printf("truth ln Z = %.5f, difference %+.4f (%+.2f sigma)\n", truth, lz - truth,
                       lze > 0 ? (lz - truth) / lze : NAN);
            fflush(stdout);
            if (ns_config_bool(cfg, "plot"))
                ns_sampler_plot(ns_config_str(cfg, "plot-python"), output);
        }
    }
    ns_ins_destroy(&ins);
    return status;
}
