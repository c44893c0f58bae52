/*
 * main.c - nessai-coordinator: command line, outputs and exit codes.
 *
 * One option table, joined from the fragments of each module (general
 * options here, then the sampler's, the farm's, the flow's and the
 * checkpoint's), drives --help, --config FILE and config.json.
 *
 * Exit codes (README.md, "Exit codes"): 0 success, 1 the run failed, 2 usage or
 * configuration error, 130 (--checkpoint-exit-code) stopped by a signal
 * after writing a checkpoint.
 */
#include "nessai/error.h"
#include "nessai/evaluator.h"
#include "nessai/hdf5out.h"
#include "nessai/json.h"
#include "nessai/log.h"
#include "nessai/options.h"
#include "nessai/plugin.h"
#include "nessai/rng.h"
#include "nessai/util.h"
#include "checkpoint.h"
#include "farm.h"
#include "flow_proposal.h"
#include "ins.h"
#include "sampler.h"
#include "startup.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

#define G "General"

static const ns_option_t s_general_options[] = {
    {"model", NS_OPT_STRING, NULL, NAN, NAN, NULL, NS_OPT_ALLOW_NONE, G,
     "Path of the model plugin (a lib<name>.so built from examples/ or your own code). Required."},
    {"model-args", NS_OPT_STRING, "", NAN, NAN, NULL, 0, G,
     "Argument string passed to the model's init (e.g. \"dim=8,delay_ms=1\"); every worker gets "
     "the same."},
    {"output", NS_OPT_STRING, "outdir", NAN, NAN, NULL, 0, G,
     "Output directory: result.json, config.json, nessai.log and the checkpoint go here."},
    {"seed", NS_OPT_INT, NULL, 0, 4294967295.0, NULL, NS_OPT_ALLOW_NONE, G,
     "Random seed; the same seed gives the same run with any number of workers (none = random, "
     "recorded in config.json and result.json)."},
    {"result-hdf5", NS_OPT_BOOL, "true", NAN, NAN, NULL, 0, G,
     "Also write result.hdf5: the same result in nessai's HDF5 layout (nessai's default "
     "result file; groups for dictionaries and record arrays, one dataset per key)."},
    {"threads", NS_OPT_INT, "1", 1, 1024, NULL, 0, G,
     "Threads for flow training (like nessai's pytorch_threads)."},
    {"log-level", NS_OPT_CHOICE, "info", NAN, NAN, "debug|info|warning|error|critical", 0, G,
     "Verbosity of nessai.log and stderr."},
    {"config", NS_OPT_STRING, NULL, NAN, NAN, NULL, NS_OPT_CLI_ONLY | NS_OPT_ALLOW_NONE, G,
     "Read settings from an INI-style file (\"name = value\" lines, same names as the options); "
     "the command line overrides it."},
    {"help", NS_OPT_FLAG, NULL, NAN, NAN, NULL, NS_OPT_NO_DUMP, G, "Show this help and exit."},
    {"version", NS_OPT_FLAG, NULL, NAN, NAN, NULL, NS_OPT_NO_DUMP, G, "Show the version and exit."},
};

static const char s_usage[] = "nessai-coordinator --model PATH [options]";
static const char s_description[] =
    "Nested sampling with normalising-flow proposals (nessai), with the likelihood\n"
    "evaluated in-process or on a farm of worker processes.\n"
    "\n"
    "Examples:\n"
    "  nessai-coordinator --model build/examples/libgaussian.so --output out\n"
    "  nessai-coordinator --model ./libmymodel.so --n-pool 4 --output out\n"
    "  nessai-coordinator --model ./libmymodel.so --bind 'tcp://*:5555'\n"
    "\n"
    "The evidence is printed at the end (\"ln Z = ... +/- ...\"); everything else\n"
    "is in <output>/result.json, <output>/nessai.log and <output>/config.json.\n"
    "Exit codes: 0 ok; 2 usage or configuration error, found before any work\n"
    "(nothing created); 1 the run failed (also: --bind port in use); 130\n"
    "(--checkpoint-exit-code) checkpointed on a signal or --max-runtime.";

/* Join the fragments; a later fragment may not redefine a name (first wins,
 * so a module repeating a general option keeps one entry). */
static ns_option_t *s_join_tables(size_t *n_out)
{
    struct {
        const ns_option_t *t;
        size_t n;
    } parts[] = {
        {s_general_options, sizeof s_general_options / sizeof s_general_options[0]},
        {ns_sampler_options, ns_sampler_options_count},
        {ns_farm_options, ns_farm_options_count},
        {ns_flow_options, ns_flow_options_count},
        {ns_checkpoint_options, ns_checkpoint_options_count},
        {ns_ins_options, ns_ins_options_count},
    };
    size_t total = 0;
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
        total += parts[p].n;
    ns_option_t *t = malloc(total * sizeof *t);
    if (!t)
        return NULL;
    size_t n = 0;
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
        for (size_t i = 0; i < parts[p].n; i++) {
            int dup = 0;
            for (size_t k = 0; k < n && !dup; k++)
                dup = strcmp(t[k].name, parts[p].t[i].name) == 0;
            if (!dup)
                t[n++] = parts[p].t[i];
        }
    *n_out = n;
    return t;
}

static int s_put_text(FILE *f, void *ctx)
{
    return fputs(ctx, f) < 0 || fputc('\n', f) == EOF;
}

/* Write a JSON document atomically (temp file, then rename). */
static int s_write_json(const char *path, const cJSON *doc)
{
    char *text = ns_json_print(doc);
    if (!text)
        return NS_ERR_NOMEM;
    int rc = ns_write_file_atomic(path, 0666, 0, s_put_text, text, NULL);
    if (rc == NS_ERR_IO)
        ns_error(NULL, "could not write %s: check that the output directory is writable", path);
    free(text);
    return rc;
}

static void s_iso_time(char *buf, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* result.json: the sampler's dictionary plus run metadata and the farm. */
static int s_write_result(const char *output, const ns_sampler_t *sampler, ns_model_t *model,
                          ns_evaluator_t *ev, int argc, char **argv, const char *started,
                          double wall, double cpu, int hdf5)
{
    cJSON *r = ns_sampler_result_json(sampler);
    if (!r)
        return NS_ERR_NOMEM;
    cJSON *run = ns_result_add_run(r, model, ev, argc, argv);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    cJSON_AddStringToObject(run, "host", host);
    cJSON_AddStringToObject(run, "started", started);
    char ended[32];
    s_iso_time(ended, sizeof ended);
    cJSON_AddStringToObject(run, "ended", ended);
    cJSON_AddNumberToObject(run, "wall_time", wall);
    cJSON_AddNumberToObject(run, "cpu_time", cpu);
    /* where the sampling time went: likelihood / training / population / other */
    double ts = ns_sampler_sampling_time(sampler), tl = ns_sampler_likelihood_time(sampler),
           tt = ns_sampler_training_time(sampler),
           tp = ns_sampler_population_time(sampler) - ns_sampler_population_likelihood_time(sampler);
    cJSON *split = cJSON_AddObjectToObject(run, "time_split");
    cJSON_AddNumberToObject(split, "likelihood", tl);
    cJSON_AddNumberToObject(split, "training", tt);
    cJSON_AddNumberToObject(split, "population_excluding_likelihood", fmax(0.0, tp));
    cJSON_AddNumberToObject(split, "other", fmax(0.0, ts - tl - tt - tp));
    ns_result_add_truth(run, model, ns_sampler_log_evidence(sampler),
                        ns_sampler_log_evidence_error(sampler));
    cJSON *farm = cJSON_AddObjectToObject(r, "farm");
    ns_evaluator_stats_json(ev, farm);
    char *path = ns_path_join(output, "result.json");
    int rc = path ? s_write_json(path, r) : NS_ERR_NOMEM;
    if (rc == NS_OK)
        ns_info(NULL, "Results saved to %s", path);
    free(path);
    if (rc == NS_OK && hdf5) {
        char herr[512];
        path = ns_path_join(output, "result.hdf5");
        ns_h5_schema_t *schema = ns_h5_schema_new();
        rc = path && schema ? ns_sampler_result_schema(sampler, schema) : NS_ERR_NOMEM;
        if (rc == NS_OK)
            rc = ns_h5_schema_add(schema, "run/dim", NS_H5_INT64);
        if (rc == NS_OK)
            rc = ns_evaluator_stats_schema(ev, schema, "farm/");
        if (rc == NS_OK)
            rc = ns_hdf5_write_json(r, schema, path, herr, sizeof herr);
        else
            snprintf(herr, sizeof herr, "out of memory");
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

/* ---------------------------------------------------------------------
 * The phases of a run, in the order main() calls them. Each returns
 * RUN_ON to go on to the next phase, or the exit status to stop with;
 * what they leave in s_run_t is freed by s_run_free() alone.
 */

enum { RUN_ON = -1 };

typedef struct s_run {
    int argc;                       /* the command line, for result.json */
    char **argv;
    double wall0, cpu0;             /* wall and CPU clocks at the start */
    char started[32];               /* ISO 8601 time of the start */
    char err[512];                  /* message of the last failed call */
    ns_option_t *table;             /* joined option table, owned */
    ns_config_t *cfg;               /* owned */
    const char *output;             /* --output, owned by cfg */
    int seed_given;                 /* --seed given by the user (command line or --config) */
    ns_model_t *model;              /* owned */
    ns_ckpt_ctl_t *ckpt;            /* owned */
    ns_ckpt_loaded_t resume_state;  /* the checkpoint to resume from; payload NULL if none */
    size_t state_offset;            /* where the sampler's state starts in its payload */
    char *saved_settings;           /* the checkpoint's settings (JSON), owned; NULL if none */
    ns_evaluator_t *ev;             /* owned */
    ns_sampler_t *sampler;          /* owned */
    int keep_workers;               /* paused by a signal: workers stay for the resumed run */
} s_run_t;

/* The checkpoint's payload: the run's settings (checked on resume), then
 * the sampler's state. */
static int s_save_sampler(void *state, ns_buf_t *b)
{
    const s_run_t *run = state;
    int rc = ns_ckpt_settings_put(run->cfg, b);
    return rc == NS_OK ? ns_sampler_save(run->sampler, b) : rc;
}

/* Periodic checkpoints at iteration boundaries (and the interrupt check),
 * one more at the end of the run (docs/checkpoint.md). */
static int s_checkpoint_hook(ns_sampler_t *sampler, ns_sampler_event_t event, void *ctx)
{
    s_run_t *run = ctx;
    uint64_t it = (uint64_t)ns_sampler_iteration(sampler);
    if (event == NS_SAMPLER_EVENT_END)
        return ns_ckpt_ctl_save(run->ckpt, it, s_save_sampler, run);
    return ns_ckpt_ctl_iteration(run->ckpt, it, s_save_sampler, run);
}

/* Options, config file, --help and --version, and the one option every
 * run needs. */
static int s_parse(s_run_t *run)
{
    size_t n_opts = 0;
    run->table = s_join_tables(&n_opts);
    run->cfg = run->table ? ns_config_new(run->table, n_opts) : NULL;
    if (!run->cfg) {
        fprintf(stderr, "nessai-coordinator: out of memory\n");
        return EXIT_FAILED;
    }
    ns_config_t *cfg = run->cfg;
    if (ns_config_parse_args(cfg, run->argc, run->argv, run->err, sizeof run->err) != NS_OK) {
        fprintf(stderr, "nessai-coordinator: error: %s\n", run->err);
        return EXIT_USAGE;
    }
    if (ns_config_bool(cfg, "help")) {
        ns_config_print_help(cfg, stdout, s_usage, s_description);
        return EXIT_OK;
    }
    if (ns_config_bool(cfg, "version")) {
        printf("nessai-coordinator %s\n", NESSAI_VERSION);
        return EXIT_OK;
    }
    const char *model_path = ns_config_str(cfg, "model");
    if (!model_path || !*model_path) {
        fprintf(stderr, "nessai-coordinator: error: --model is required: give the path of a model "
                        "plugin, e.g. --model build/examples/libgaussian.so (see --help)\n");
        return EXIT_USAGE;
    }
    return RUN_ON;
}

/* One line for a fatal error, unless the layer that failed has already
 * logged its reason since errors0 (ns_log_error_count): then the log
 * line, on stderr and in nessai.log, is the only one. */
static void s_fail(unsigned long errors0, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_fail(unsigned long errors0, const char *fmt, ...)
{
    if (ns_log_error_count() != errors0)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ns_log_get_level() <= NS_LOG_ERROR)
        ns_error(NULL, "%s", msg);
    else
        fprintf(stderr, "nessai-coordinator: error: %s\n", msg);
}

/* What the command line asks for and can be judged without loading the
 * model: --output can be made and written, --bind can be bound, the farm's
 * programs and key directories are there. Nothing
 * is created (docs/sampler.md, "Errors and exit codes"). */
static int s_check_args(s_run_t *run)
{
    int rc = ns_startup_check_output(ns_config_str(run->cfg, "output"), run->err, sizeof run->err);
    if (rc == NS_OK)
        rc = ns_farm_check_bind(run->cfg, run->err, sizeof run->err);
    if (rc == NS_OK)
        rc = ns_farm_check_paths(run->cfg, run->argv[0], run->err, sizeof run->err);
    if (rc != NS_OK) {
        fprintf(stderr, "nessai-coordinator: error: %s\n", run->err);
        return rc == NS_ERR_INVAL ? EXIT_USAGE : EXIT_FAILED;
    }
    return RUN_ON;
}

/* Load the model before anything is logged: a wrong path or argument is
 * a usage error reported in one line. */
static int s_load_model(s_run_t *run)
{
    if (ns_model_load(ns_config_str(run->cfg, "model"), ns_config_str(run->cfg, "model-args"),
                      &run->model, run->err, sizeof run->err) != NS_OK) {
        fprintf(stderr, "nessai-coordinator: error: %s\n", run->err);
        return EXIT_USAGE;
    }
    return RUN_ON;
}

/* The settings the checkpoint was written with against this run's
 * (ns_ckpt_settings_check); where the sampler's state starts goes to
 * run->state_offset. log_changes: log the settings a resume may change. */
static int s_check_settings(s_run_t *run, const ns_ckpt_loaded_t *got, const char *path,
                            int log_changes)
{
    ns_buf_t b;
    ns_buf_view(&b, got->payload, got->payload_len);
    char *saved = NULL;
    int rc = ns_ckpt_settings_take(&b, &saved);
    if (rc != NS_OK)
        ns_errf(run->err, sizeof run->err, "checkpoint %s: its settings section is damaged; "
                "move it away to start afresh, or use --no-resume", path);
    else if (saved)
        rc = ns_ckpt_settings_check(saved, run->cfg, path, got->iteration, log_changes, run->err,
                                    sizeof run->err);
    if (log_changes) {   /* the real load: kept for s_check_finished */
        free(run->saved_settings);
        run->saved_settings = saved;
        saved = NULL;
    }
    free(saved);
    run->state_offset = b.pos;
    return rc;
}

/* Before anything is created or logged: a checkpoint in --output that this
 * run cannot continue (damaged, another model's, other settings) is one
 * line and exit 2. Read again, under the lock, by s_open_checkpoint. */
static int s_check_resume(s_run_t *run)
{
    ns_config_t *cfg = run->cfg;
    const char *output = ns_config_str(cfg, "output");
    struct stat st;
    if (!ns_config_bool(cfg, "resume") || stat(output, &st) != 0)
        return RUN_ON;
    ns_model_t *model = run->model;
    int seed_given = ns_config_user_set(cfg, "seed") && ns_config_is_set(cfg, "seed");
    ns_ckpt_ident_t id = {ns_model_name(model), ns_model_args(model), ns_model_hash(model),
                          ns_model_dim(model),
                          seed_given ? (uint64_t)ns_config_int(cfg, "seed") : 0};
    ns_ckpt_ctl_t *ckpt = ns_ckpt_ctl_new(cfg, output, &id, seed_given);
    if (!ckpt) {
        fprintf(stderr, "nessai-coordinator: out of memory\n");
        return EXIT_FAILED;
    }
    ns_ckpt_loaded_t got;
    ns_log_set_stderr(0);   /* the .old fallback warning comes with the real load */
    int rc = ns_ckpt_load(ns_ckpt_ctl_path(ckpt), &id, seed_given, &got, run->err,
                          sizeof run->err);
    ns_log_set_stderr(1);
    if (rc == NS_OK && got.payload)
        rc = s_check_settings(run, &got, ns_ckpt_ctl_path(ckpt), 0);
    ns_ckpt_loaded_clear(&got);
    ns_ckpt_ctl_destroy(&ckpt);
    if (rc != NS_OK) {
        fprintf(stderr, "nessai-coordinator: error: %s\n", run->err);
        return ns_ckpt_load_exit_status(rc);
    }
    return RUN_ON;
}

/* Log level, signals and seed, then the output directory and nessai.log,
 * which opens with the run's header lines. */
static int s_open_output(s_run_t *run)
{
    ns_config_t *cfg = run->cfg;
    ns_log_level_t level;
    ns_log_level_parse(ns_config_str(cfg, "log-level"), &level);
    ns_log_set_level(level);
    run->seed_given = ns_config_user_set(cfg, "seed") && ns_config_is_set(cfg, "seed");
    /* From here a signal stops the run: with a checkpoint once sampling has
     * started (exit --checkpoint-exit-code), before that with exit 1. */
    ns_ckpt_signals_install();
    if (!ns_config_is_set(cfg, "seed")) {
        char seed[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)ns_rng_random_seed());
        ns_config_set(cfg, "seed", seed, run->err, sizeof run->err);
    }
    const char *output = run->output = ns_config_str(cfg, "output");
    if (ns_mkdir_p(output) != NS_OK) {   /* checked by s_check_args: a race */
        fprintf(stderr, "nessai-coordinator: error: cannot create the output directory %s: %s\n",
                output, strerror(errno));
        return EXIT_FAILED;
    }
    char *log_path = ns_path_join(output, "nessai.log");
    if (!log_path || ns_log_open_file(log_path) != NS_OK)
        fprintf(stderr, "nessai-coordinator: warning: cannot write %s; logging to stderr only\n",
                log_path ? log_path : "nessai.log");
    free(log_path);
    ns_info(NULL, "nessai-coordinator %s, seed %ld, output %s", NESSAI_VERSION,
            ns_config_int(cfg, "seed"), output);

    ns_model_t *model = run->model;
    ns_info(NULL, "Model %s: %d parameters, plugin %s", ns_model_name(model), ns_model_dim(model),
            ns_model_path(model));
    return RUN_ON;
}

/* The checkpoint of this output directory: read it when resuming, and take
 * its seed unless the user gave one. */
static int s_open_checkpoint(s_run_t *run)
{
    ns_model_t *model = run->model;
    ns_ckpt_ident_t id = {ns_model_name(model), ns_model_args(model), ns_model_hash(model),
                          ns_model_dim(model), (uint64_t)ns_config_int(run->cfg, "seed")};
    if (!(run->ckpt = ns_ckpt_ctl_new(run->cfg, run->output, &id, run->seed_given))) {
        s_fail(ns_log_error_count(), "out of memory");
        return EXIT_FAILED;
    }
    /* logs its errors itself */
    int lrc = ns_ckpt_ctl_load(run->ckpt, &run->resume_state, run->err, sizeof run->err);
    if (lrc == NS_OK && run->resume_state.payload) {
        lrc = s_check_settings(run, &run->resume_state, ns_ckpt_ctl_path(run->ckpt), 1);
        if (lrc != NS_OK)
            ns_error(NULL, "%s", run->err);
    }
    if (lrc != NS_OK)
        return ns_ckpt_load_exit_status(lrc);
    if (run->resume_state.payload && !run->seed_given) {
        char seed[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)run->resume_state.seed);
        ns_config_set(run->cfg, "seed", seed, run->err, sizeof run->err);
        ns_info(NULL, "Continuing with the checkpoint's seed %s", seed);
    }
    return RUN_ON;
}

/* config.json: the effective settings, seed included. */
static int s_write_config(s_run_t *run)
{
    cJSON *cj = ns_config_to_json(run->cfg);
    char *cfg_path = ns_path_join(run->output, "config.json");
    unsigned long errors0 = ns_log_error_count();
    int rc = cj && cfg_path ? s_write_json(cfg_path, cj) : NS_ERR_NOMEM;
    cJSON_Delete(cj);
    free(cfg_path);
    if (rc != NS_OK)
        s_fail(errors0, "cannot write config.json (%s)", ns_strerror(rc));
    return rc == NS_OK ? RUN_ON : EXIT_FAILED;
}

/* The likelihood evaluator: the worker farm if one is asked for, else
 * in-process. */
static int s_start_evaluator(s_run_t *run)
{
    if (ns_farm_wanted(run->cfg)) {
        ns_farm_set_output(run->output);
        unsigned long errors0 = ns_log_error_count();
        int rc = ns_farm_evaluator_new(run->cfg, run->model, run->argv[0], &run->ev);
        if (rc != NS_OK) {
            s_fail(errors0, "could not start the worker farm (%s)", ns_strerror(rc));
            return rc == NS_ERR_INVAL ? EXIT_USAGE : EXIT_FAILED;
        }
    }
    if (!run->ev && !(run->ev = ns_evaluator_inprocess_new(run->model, 0))) {
        s_fail(ns_log_error_count(), "out of memory");
        return EXIT_FAILED;
    }
    ns_info(NULL, "Likelihood evaluator: %s", ns_evaluator_kind(run->ev));
    return RUN_ON;
}

/* A run that finished on its stopping criterion has put its live points
 * into the evidence and cannot sample further: a lower --stopping than
 * the one it finished with is refused, a higher one changes nothing. */
static int s_check_finished(s_run_t *run)
{
    if (!ns_sampler_finalised(run->sampler) || !run->saved_settings)
        return RUN_ON;
    cJSON *old = cJSON_Parse(run->saved_settings);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(old, "stopping");
    double was = cJSON_IsNumber(st) ? st->valuedouble
                 : cJSON_IsString(st) && strcmp(st->valuestring, "inf") == 0 ? INFINITY : NAN;
    double now = ns_config_double(run->cfg, "stopping");
    cJSON_Delete(old);
    if (isnan(was) || now == was)
        return RUN_ON;
    if (now < was) {
        ns_error(NULL, "checkpoint %s holds a run that finished at --stopping %g; it cannot sample "
                 "on to --stopping %g (use another --output, or --no-resume)",
                 ns_ckpt_ctl_path(run->ckpt), was, now);
        return EXIT_USAGE;
    }
    ns_info(NULL, "resume: the run had already finished at --stopping %g; its result stands", was);
    return RUN_ON;
}

/* The sampler with its flow proposal, its state from the checkpoint when
 * resuming, and the checkpoint hook. */
static int s_setup_sampler(s_run_t *run)
{
    unsigned long errors0 = ns_log_error_count();
    int rc = ns_sampler_new(run->cfg, run->model, run->ev, ns_flow_proposal_new, run->output,
                            &run->sampler);
    if (rc != NS_OK) {
        s_fail(errors0, "could not set up the sampler (%s)", ns_strerror(rc));
        return rc == NS_ERR_INVAL ? EXIT_USAGE : EXIT_FAILED;
    }
    if (run->resume_state.payload) {
        ns_buf_t saved;
        ns_buf_view(&saved, run->resume_state.payload, run->resume_state.payload_len);
        saved.pos = run->state_offset;   /* past the settings */
        if ((rc = ns_sampler_load(run->sampler, &saved)) == NS_OK && ns_buf_remaining(&saved) != 0)
            rc = NS_ERR_CORRUPT;
        if (rc != NS_OK) {
            s_fail(errors0, "the checkpoint %s does not fit this run (%s); resume with the "
                   "settings of the original run, or use --no-resume",
                   ns_ckpt_ctl_path(run->ckpt), ns_strerror(rc));
            return EXIT_USAGE;
        }
        ns_ckpt_loaded_clear(&run->resume_state);
        ns_info(NULL, "Resuming from iteration %ld", ns_sampler_iteration(run->sampler));
        if ((rc = s_check_finished(run)) != RUN_ON)
            return rc;
    }
    ns_sampler_set_hook(run->sampler, s_checkpoint_hook, run);
    if (ns_ckpt_ctl_start(run->ckpt, ns_now() - run->wall0) != NS_OK)
        return EXIT_FAILED;
    return RUN_ON;
}

/* Sample; a signal pauses the run with a checkpoint. */
static int s_run(s_run_t *run)
{
    unsigned long errors0 = ns_log_error_count();
    int rc = ns_sampler_run(run->sampler);
    if (rc == NS_ERR_INTERRUPTED) {
        /* The run is paused, not over: remote workers must stay to serve
         * the resumed run, so no end-of-run STOP in s_run_free(). */
        run->keep_workers = 1;
        ns_sampler_note_checkpoint(run->sampler);
        return ns_ckpt_ctl_interrupted(run->ckpt, (uint64_t)ns_sampler_iteration(run->sampler),
                                       s_save_sampler, run);
    }
    if (rc != NS_OK) {
        s_fail(errors0, "the run failed (%s); see %s/nessai.log", ns_strerror(rc), run->output);
        return EXIT_FAILED;
    }
    return RUN_ON;
}

/* Posterior, result.json and result.hdf5, and the evidence on stdout. */
static int s_results(s_run_t *run)
{
    ns_sampler_t *sampler = run->sampler;
    unsigned long errors0 = ns_log_error_count();
    int rc;
    if ((rc = ns_sampler_compute_posterior(sampler)) != NS_OK ||
        (rc = s_write_result(run->output, sampler, run->model, run->ev, run->argc, run->argv,
                             run->started, ns_now() - run->wall0, ns_cpu_time() - run->cpu0,
                             ns_config_bool(run->cfg, "result-hdf5"))) != NS_OK ||
        (rc = ns_sampler_write_outputs(sampler, run->cfg, run->output)) != NS_OK) {
        s_fail(errors0, "writing the results failed (%s)", ns_strerror(rc));
        return EXIT_FAILED;
    }
    double lz = ns_sampler_log_evidence(sampler), lze = ns_sampler_log_evidence_error(sampler);
    printf("ln Z = %.4f +/- %.4f\n", lz, lze);
    double truth = ns_model_truth(run->model);
    if (!isnan(truth))
        printf("truth ln Z = %.5f, difference %+.4f (%+.2f sigma)\n", truth, lz - truth,
               lze > 0 ? (lz - truth) / lze : NAN);
    fflush(stdout);
    return EXIT_OK;
}

static void s_run_free(s_run_t *run)
{
    ns_sampler_destroy(&run->sampler);
    if (run->ev) {
        if (!run->keep_workers)
            ns_evaluator_shutdown(run->ev);
        ns_evaluator_destroy(&run->ev);
    }
    ns_model_destroy(&run->model);
    /* Last: a second signal during the shutdown above must not kill the
     * process with the signal's own status instead of ours. */
    ns_ckpt_ctl_destroy(&run->ckpt);
    ns_ckpt_loaded_clear(&run->resume_state);
    free(run->saved_settings);
    ns_log_close_file();
    ns_config_destroy(&run->cfg);
    free(run->table);
}

int main(int argc, char **argv)
{
    s_run_t run = {.argc = argc, .argv = argv};
    run.wall0 = ns_now();
    run.cpu0 = ns_cpu_time();
    s_iso_time(run.started, sizeof run.started);

    static int (*const phases[])(s_run_t *) = {
        s_parse,           /* options, --config, --help, --version */
        s_check_args,      /* --output and --bind usable; nothing created */
        s_load_model,      /* --model, --model-args */
        s_check_resume,    /* a checkpoint in --output this run can continue */
        s_open_output,     /* log level, signals, seed; output directory, nessai.log */
        s_open_checkpoint, /* resume state and seed */
        s_write_config,    /* config.json */
        s_start_evaluator, /* in-process or the worker farm */
        s_setup_sampler,   /* sampler, flow proposal, resumed state, checkpoint hook */
        s_run,             /* sampling */
        s_results,         /* result.json, result.hdf5, ln Z on stdout */
    };
    int status = RUN_ON;
    for (size_t i = 0; status == RUN_ON && i < sizeof phases / sizeof phases[0]; i++) {
        /* --importance-nested-sampler: its settings checked before the output
         * opens, then its own loop once the evaluator runs */
        if (i > 0 && ns_config_bool(run.cfg, "importance-nested-sampler")) {
            if (phases[i] == s_open_output && ns_ins_check_options(run.cfg, run.model) != NS_OK) {
                status = EXIT_USAGE;
                break;
            }
            if (phases[i] == s_setup_sampler) {
                status = ns_ins_main(run.cfg, run.model, run.ev, run.ckpt, &run.resume_state,
                                     ns_now() - run.wall0, run.output, argc, argv,
                                     &run.keep_workers);
                break;
            }
        }
        status = phases[i](&run);
    }
    s_run_free(&run);
    return status;
}
