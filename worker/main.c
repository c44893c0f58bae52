/* main.c - nessai-worker: command line and the --slots launcher. */
#include "worker.h"
#include "nessai/wire.h"
#include "nessai/keys.h"
#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/options.h"
#include "nessai/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static const ns_option_t s_options[] = {
    {"connect", NS_OPT_STRING, NULL, 0, 0, NULL, NS_OPT_ALLOW_NONE, "Worker",
     "Coordinator endpoint, as given to its --bind with this host's view of the address "
     "(e.g. tcp://head-node:5555). This or --connect-file is required."},
    {"connect-file", NS_OPT_STRING, NULL, 0, 0, NULL, NS_OPT_ALLOW_NONE, "Worker",
     "Read the coordinator endpoint from this file, the coordinator's <output>/farm.address "
     "on a shared file system: wait for it to appear, and follow it when a restarted "
     "coordinator replaces it (docs/cluster.md). Instead of --connect."},
    {"max-wait", NS_OPT_DOUBLE, NULL, 0.1, 1e9, NULL, NS_OPT_ALLOW_NONE, "Worker",
     "Give up with exit code 3 after this many seconds without an answer from a coordinator "
     "(it was killed, or its address never appeared). Default: keep trying."},
    {"model", NS_OPT_STRING, NULL, 0, 0, NULL, NS_OPT_ALLOW_NONE, "Worker",
     "Model plugin to load (default: the path the coordinator announces). Must be the same "
     "build as the coordinator's."},
    {"keys", NS_OPT_STRING, NULL, 0, 0, NULL, NS_OPT_ALLOW_NONE, "Worker",
     "The farm's keys directory (the coordinator's <output>/farm-keys, or --farm-keys): "
     "authenticate and encrypt with CurveZMQ, talking only to the coordinator whose "
     "coordinator.key is there. Needed for a non-loopback --connect (docs/protocol.md "
     "section 8); with --connect-file, the farm-keys directory beside that file is used "
     "when it exists."},
    {"cert", NS_OPT_STRING, NULL, 0, 0, NULL, NS_OPT_ALLOW_NONE, "Worker",
     "This worker's secret key file (from nessai-keygen; default: worker.key_secret of "
     "--keys)."},
    {"insecure", NS_OPT_BOOL, "false", 0, 0, NULL, 0, "Worker",
     "Connect without CurveZMQ to a non-loopback address (only for a coordinator started "
     "with --insecure on a trusted network)."},
    {"allow-model-dir", NS_OPT_STRING, NULL, 0, 0, NULL, NS_OPT_ALLOW_NONE, "Worker",
     "Load a model the coordinator announces if it lies in one of these directories "
     "(separated by ':'). Without --model, only such a path or the one in the model file of "
     "--keys is loaded."},
    {"slots", NS_OPT_INT, "1", 1, 1024, NULL, 0, "Worker",
     "Start this many worker processes from this launcher."},
    {"persistent", NS_OPT_BOOL, "false", 0, 0, NULL, 0, "Worker",
     "Stay after the run ends and wait for the next coordinator (for services)."},
    {"log-level", NS_OPT_CHOICE, "info", 0, 0, "debug|info|warning|error|critical", 0,
     "Worker", "Logging threshold."},
    {"parent-pid", NS_OPT_INT, NULL, 1, 4194304, NULL, NS_OPT_ALLOW_NONE, "Internal",
     "Set by the coordinator for its local pool: exit when that process is gone."},
    {"help", NS_OPT_FLAG, NULL, 0, 0, NULL, 0, "Worker", "Show this help and exit."},
    {"version", NS_OPT_FLAG, NULL, 0, 0, NULL, 0, "Worker", "Show the version and exit."},
};

static volatile sig_atomic_t s_forward = 0;   /* launcher: signal to pass on */

static void s_launcher_signal(int sig)
{
    s_forward = sig;
}

/* --slots N: one process per slot, so a crash or a refusal stays local. */
static int s_launch(ns_worker_config_t *wc, long slots)
{
    pid_t *pids = calloc((size_t)slots, sizeof *pids);
    if (!pids) {
        fprintf(stderr, "nessai-worker: out of memory\n");
        return NS_WORKER_EXIT_FAIL;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_launcher_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    pid_t launcher = getpid();
    long started = 0;
    for (long i = 0; i < slots; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            ns_error("worker", "cannot start slot %ld: %s", i, strerror(errno));
            break;
        }
        if (pid == 0) {
            /* A slot leaves (gracefully) when its launcher dies. */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != launcher)
                _exit(NS_WORKER_EXIT_OK);
            wc->slot = (int)i;
            if (ns_worker_signals_init() != NS_OK)
                _exit(NS_WORKER_EXIT_FAIL);
            int code = ns_worker_run(wc);
            zsys_shutdown();
            _exit(code);
        }
        pids[started++] = pid;
    }
    int worst = started == slots ? NS_WORKER_EXIT_OK : NS_WORKER_EXIT_FAIL;
    long alive = started;
    while (alive > 0) {
        int status;
        pid_t r = waitpid(-1, &status, 0);
        if (r < 0 && errno == EINTR) {
            if (s_forward) {
                for (long i = 0; i < started; i++)
                    if (pids[i] > 0)
                        kill(pids[i], SIGTERM);
                s_forward = 0;
            }
            continue;
        }
        if (r < 0)
            break;
        for (long i = 0; i < started; i++)
            if (pids[i] == r) {
                pids[i] = 0;
                alive--;
                int code = WIFEXITED(status) ? WEXITSTATUS(status) : NS_WORKER_EXIT_FAIL;
                if (code > worst)
                    worst = code;
            }
    }
    free(pids);
    return worst;
}

/* The phases of main() return RUN_ON to go on, or the exit status. */
enum { RUN_ON = -1 };

/* Options, --help and --version, and the log level. */
static int s_parse(ns_config_t *cfg, int argc, char **argv)
{
    char err[512];
    if (ns_config_parse_args(cfg, argc, argv, err, sizeof err) != NS_OK) {
        fprintf(stderr, "nessai-worker: %s\n", err);
        return NS_WORKER_EXIT_USAGE;
    }
    if (ns_config_is_set(cfg, "help")) {
        ns_config_print_help(cfg, stdout, "nessai-worker --connect tcp://HOST:PORT | --connect-file FILE [options]",
                             "Evaluate likelihoods for a nessai-coordinator farm.");
        return NS_WORKER_EXIT_OK;
    }
    if (ns_config_is_set(cfg, "version")) {
        printf("nessai-worker %s (farm protocol %u)\n", NESSAI_VERSION, NS_FARM_PROTOCOL_VERSION);
        return NS_WORKER_EXIT_OK;
    }
    ns_log_level_t level;
    if (ns_log_level_parse(ns_config_str(cfg, "log-level"), &level) == NS_OK)
        ns_log_set_level(level);
    return RUN_ON;
}

/* The worker's settings; its strings stay owned by cfg. */
static int s_configure(const ns_config_t *cfg, ns_worker_config_t *wc)
{
    const char *connect = ns_config_is_set(cfg, "connect") ? ns_config_str(cfg, "connect") : NULL;
    const char *connect_file = ns_config_is_set(cfg, "connect-file")
                                   ? ns_config_str(cfg, "connect-file") : NULL;
    char probe[512];
    if (connect_file && (connect || !*connect_file)) {
        fprintf(stderr, "nessai-worker: give either --connect or --connect-file, not both\n");
        return NS_WORKER_EXIT_USAGE;
    }
    if (!connect_file &&
        (!connect || ns_wire_endpoint_with_port(connect, 1, probe, sizeof probe) != NS_OK)) {
        fprintf(stderr, "nessai-worker: give the coordinator's address with --connect "
                "tcp://HOST:PORT or --connect-file FILE (see --help)\n");
        return NS_WORKER_EXIT_USAGE;
    }
    memset(wc, 0, sizeof *wc);
    wc->connect = connect;
    wc->connect_file = connect_file;
    wc->max_wait = ns_config_is_set(cfg, "max-wait") ? ns_config_double(cfg, "max-wait") : 0.0;
    wc->model_override = ns_config_is_set(cfg, "model") ? ns_config_str(cfg, "model") : NULL;
    wc->persistent = ns_config_bool(cfg, "persistent");
    wc->keys = ns_config_is_set(cfg, "keys") ? ns_config_str(cfg, "keys") : NULL;
    wc->cert = ns_config_is_set(cfg, "cert") ? ns_config_str(cfg, "cert") : NULL;
    wc->allow_model_dirs = ns_config_is_set(cfg, "allow-model-dir")
                               ? ns_config_str(cfg, "allow-model-dir") : NULL;
    if (wc->cert && !wc->keys) {
        fprintf(stderr, "nessai-worker: --cert needs --keys DIR (where coordinator.key is)\n");
        return NS_WORKER_EXIT_USAGE;
    }
    if (wc->keys && !ns_keys_available()) {
        fprintf(stderr, "nessai-worker: --keys: this libzmq has no CURVE support\n");
        return NS_WORKER_EXIT_USAGE;
    }
    /* --connect-file: the coordinator writes farm.address and its keys
     * directory side by side; the worker looks for the keys there once the
     * file names an endpoint (worker.c, s_await_address). */
    wc->keys_beside_address = connect_file && !wc->keys && !ns_config_bool(cfg, "insecure");
    if (!wc->keys && !connect_file && !ns_config_bool(cfg, "insecure") &&
        !ns_keys_loopback(connect)) {
        fprintf(stderr, "nessai-worker: give the farm's keys directory with --keys DIR (the "
                "coordinator's <output>/farm-keys) to connect to %s, or --insecure if the "
                "coordinator runs with --insecure\n", connect);
        return NS_WORKER_EXIT_USAGE;
    }
    if (ns_config_is_set(cfg, "parent-pid")) {
        wc->parent_pid = (int)ns_config_int(cfg, "parent-pid");
        /* Die with the coordinator; check after the prctl in case it is
         * already gone (we would then have been re-parented). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != wc->parent_pid)
            return NS_WORKER_EXIT_FAIL;
    }
    /* A Python model is "file.py:Class" (docs/python.md): check the file. */
    const char *py_class = wc->model_override ? strstr(wc->model_override, ".py:") : NULL;
    char model_file[4096] = "";
    if (wc->model_override)
        snprintf(model_file, sizeof model_file, "%.*s",
                 py_class ? (int)(py_class - wc->model_override) + 3
                          : (int)strlen(wc->model_override),
                 wc->model_override);
    if (wc->model_override && access(model_file, R_OK) != 0) {
        fprintf(stderr, "nessai-worker: --model %s: %s\n", wc->model_override, strerror(errno));
        return NS_WORKER_EXIT_USAGE;
    }
    return RUN_ON;
}

/* One worker in this process, or a launcher of one process per slot. */
static int s_serve(ns_worker_config_t *wc, long slots)
{
    if (slots > 1)
        return s_launch(wc, slots);
    if (ns_worker_signals_init() != NS_OK)
        return NS_WORKER_EXIT_FAIL;
    return ns_worker_run(wc);
}

/* The one line a worker that gave up on its coordinator prints. */
static void s_report_exit(const ns_worker_config_t *wc, int code)
{
    if (code == NS_WORKER_EXIT_NO_COORDINATOR)
        fprintf(stderr, "nessai-worker: no coordinator answered at %s for %g s (--max-wait); "
                "giving up\n", wc->connect_file ? wc->connect_file : wc->connect, wc->max_wait);
}

int main(int argc, char **argv)
{
    ns_log_set_label("nessai-worker");
    ns_config_t *cfg = ns_config_new(s_options, sizeof s_options / sizeof s_options[0]);
    if (!cfg) {
        fprintf(stderr, "nessai-worker: out of memory\n");
        return NS_WORKER_EXIT_FAIL;
    }
    ns_worker_config_t wc;
    memset(&wc, 0, sizeof wc);
    int code = s_parse(cfg, argc, argv);
    if (code == RUN_ON)
        code = s_configure(cfg, &wc);
    if (code == RUN_ON)
        code = s_serve(&wc, ns_config_int(cfg, "slots"));
    s_report_exit(&wc, code);
    ns_config_destroy(&cfg);
    return code;
}
