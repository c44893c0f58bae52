/*
 * sampler_outputs.c - the files written beside result.json at the end of a
 * run (docs/sampler.md, "Outputs"): posterior.csv, nested_samples.csv on
 * request, and nessai's plots, drawn by the nessai-plot program (Python
 * with matplotlib) installed next to the coordinator.
 *
 * Plots are a convenience: a machine without the interpreter or without
 * matplotlib still finishes the run, with one warning saying the plots were
 * skipped and how to draw them later.
 */
#include "sampler_internal.h"

#include "nessai/error.h"
#include "nessai/evaluator.h"
#include "nessai/log.h"
#include "nessai/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* nessai-plot exits with this status when numpy or matplotlib is missing. */
enum { S_PLOT_MISSING_MODULES = 3 };

/* The plotting program: NESSAI_PLOT_PROGRAM, else nessai-plot in the
 * directory of the running executable. */
static char *s_plot_program(void)
{
    const char *env = getenv("NESSAI_PLOT_PROGRAM");
    if (env && *env)
        return strdup(env);
    char dir[PATH_MAX];
    return ns_exe_dir(dir, sizeof dir) == 0 ? ns_path_join(dir, "nessai-plot") : NULL;
}

void ns_sampler_plot(const char *python, const char *output)
{
    char *prog = s_plot_program();
    if (!prog || access(prog, R_OK) != 0) {
        ns_warn(NULL, "Plots skipped: the plotting program %s was not found (it is built next "
                      "to nessai-coordinator; NESSAI_PLOT_PROGRAM names another path)",
                prog ? prog : "nessai-plot");
        free(prog);
        return;
    }
    ns_info(NULL, "Producing plots in %s (%s %s)", output, python, prog);
    char *argv[] = {(char *)python, prog, (char *)"--from-coordinator", (char *)output, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, python, NULL, NULL, argv, environ);
    if (rc != 0) {
        ns_warn(NULL, "Plots skipped: cannot run %s (%s); install python3 and python3-matplotlib, "
                      "or set --plot-python, then run: nessai-plot %s", python, strerror(rc), output);
        free(prog);
        return;
    }
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (w < 0 || !WIFEXITED(status) || WEXITSTATUS(status) == 127)
        ns_warn(NULL, "Plots skipped: %s did not run the plotting program (%s)", python,
                w < 0 ? strerror(errno) : WIFEXITED(status) ? "exit 127" : "killed by a signal");
    else if (WEXITSTATUS(status) == S_PLOT_MISSING_MODULES)
        ns_warn(NULL, "Plots skipped: %s has no numpy or matplotlib (Debian: apt-get install "
                      "python3-numpy python3-matplotlib), or choose another with --plot-python; "
                      "then run: nessai-plot %s", python, output);
    else if (WEXITSTATUS(status) != 0)
        ns_warn(NULL, "Some plots failed (nessai-plot exit %d, messages above); the results are "
                      "complete", WEXITSTATUS(status));
    free(prog);
}

int ns_sampler_write_outputs(const ns_sampler_t *self, const ns_config_t *cfg, const char *output)
{
    const char *files[2] = {"posterior.csv", "nested_samples.csv"};
    for (int nested = 0; nested < 2; nested++) {
        if (nested && !ns_config_bool(cfg, "nested-samples-csv"))
            continue;
        char *path = ns_path_join(output, files[nested]);
        int rc = path ? ns_sampler_write_csv(self, path, nested) : NS_ERR_NOMEM;
        if (rc == NS_OK)
            ns_info(NULL, "Samples saved to %s", path);
        free(path);
        if (rc != NS_OK)
            return rc;
    }
    if (ns_config_bool(cfg, "plot"))
        ns_sampler_plot(ns_config_str(cfg, "plot-python"), output);
    return NS_OK;
}

cJSON *ns_result_add_run(cJSON *r, ns_model_t *model, const ns_evaluator_t *ev, int argc,
                         char **argv)
{
    cJSON *run = cJSON_AddObjectToObject(r, "run");
    if (!run)
        return NULL;
    cJSON_AddStringToObject(run, "program", "nessai-coordinator");
    cJSON_AddStringToObject(run, "program_version", NESSAI_VERSION);
    cJSON_AddStringToObject(run, "model_name", ns_model_name(model));
    cJSON_AddStringToObject(run, "model_path", ns_model_path(model));
    cJSON_AddStringToObject(run, "model_args", ns_model_args(model));
    cJSON_AddStringToObject(run, "model_hash", ns_model_hash(model));
    cJSON_AddNumberToObject(run, "dim", ns_model_dim(model));
    cJSON *names = cJSON_AddArrayToObject(run, "parameters");
    for (int j = 0; names && j < ns_model_dim(model); j++)
        cJSON_AddItemToArray(names, cJSON_CreateString(ns_model_param_names(model)[j]));
    cJSON_AddStringToObject(run, "evaluator", ns_evaluator_kind(ev));
    cJSON *cmd = cJSON_AddArrayToObject(run, "command_line");
    for (int i = 0; cmd && i < argc; i++)
        cJSON_AddItemToArray(cmd, cJSON_CreateString(argv[i]));
    return run;
}

void ns_result_add_truth(cJSON *run, ns_model_t *model, double log_z, double log_z_err)
{
    double truth = ns_model_truth(model);
    if (isnan(truth) || !run)
        return;
    cJSON_AddNumberToObject(run, "delta_log_evidence", log_z - truth);
    if (log_z_err > 0)
        cJSON_AddNumberToObject(run, "delta_in_sigma", (log_z - truth) / log_z_err);
}
