/* sampler_options.c - the sampler's fragment of the coordinator's option table. */
#include "sampler.h"

#include <math.h>

#define G "Nested sampler"

const ns_option_t ns_sampler_options[] = {
    {"nlive", NS_OPT_INT, "2000", 2, NAN, NULL, 0, G, "Number of live points."},
    {"stopping", NS_OPT_DOUBLE, "0.1", 0, INFINITY, NULL, 0, G,
     "Stop when dlogZ = ln(Z + Lmax X) - ln Z is at most this value."},
    {"max-iteration", NS_OPT_INT, NULL, 1, NAN, NULL, NS_OPT_ALLOW_NONE, G,
     "Stop after this many iterations without adding the live points to the evidence "
     "(none = no limit); with --importance-nested-sampler: build at most this many levels, "
     "then finalise as usual."},
    {"maximum-uninformed", NS_OPT_DOUBLE, NULL, 0, INFINITY, NULL, NS_OPT_ALLOW_NONE | NS_OPT_ALLOW_INF, G,
     "Iterations drawn from the prior before switching to the flow proposal "
     "(none = 2 x nlive, inf = never by count, 0 = no uninformed stage)."},
    {"uninformed-acceptance-threshold", NS_OPT_DOUBLE, NULL, 0, 1, NULL, NS_OPT_ALLOW_NONE, G,
     "Switch to the flow proposal earlier when the mean acceptance falls below this "
     "(none = 10 x acceptance-threshold if that is below 0.1, else acceptance-threshold; "
     "0 = never by acceptance)."},
    {"acceptance-threshold", NS_OPT_DOUBLE, "0.01", 0, 1, NULL, 0, G,
     "Retrain the flow when the mean block acceptance falls below this."},
    {"analytic-priors", NS_OPT_BOOL, "false", NAN, NAN, NULL, 0, G,
     "The model's new_point samples the prior exactly: draw uninformed points without rejection "
     "(pools of 1000)."},
    {"cooldown", NS_OPT_INT, "200", 0, NAN, NULL, 0, G,
     "Minimum iterations between two trainings that are not forced."},
    {"training-frequency", NS_OPT_DOUBLE, NULL, 1, INFINITY, NULL, NS_OPT_ALLOW_NONE | NS_OPT_ALLOW_INF, G,
     "Retrain every this many iterations (none = only when the pool is empty or acceptance is low)."},
    {"train-on-empty", NS_OPT_BOOL, "true", NAN, NAN, NULL, 0, G,
     "Retrain the flow each time its pool of points is used up."},
    {"retrain-acceptance", NS_OPT_BOOL, "true", NAN, NAN, NULL, 0, G,
     "Retrain when the mean block acceptance falls below acceptance-threshold."},
    {"reset-acceptance", NS_OPT_BOOL, "false", NAN, NAN, NULL, 0, G,
     "Reset the flow completely before training when the block acceptance is below "
     "acceptance-threshold."},
    {"memory", NS_OPT_INT, "0", 0, NAN, NULL, 0, G,
     "Also train on this many of the latest nested samples (0 = live points only)."},
    {"shrinkage-expectation", NS_OPT_CHOICE, "logt", NAN, NAN, "logt|t", 0, G,
     "Volume shrinkage per iteration: logt = <ln t> = -1/nlive, t = ln<t> = -ln(1 + 1/nlive)."},
    {"posterior-method", NS_OPT_CHOICE, "rejection_sampling", NAN, NAN,
     "rejection_sampling|multinomial_resampling", 0, G,
     "How posterior samples are drawn from the weighted nested samples."},
    {"allow-multi-valued-likelihood", NS_OPT_BOOL, "false", NAN, NAN, NULL, 0, G,
     "Accept a likelihood that gives different values for the same point (not recommended)."},
    {"progress-interval", NS_OPT_DOUBLE, "60", 0, INFINITY, NULL, NS_OPT_ALLOW_INF, G,
     "Seconds between one-line progress summaries (iteration, ln Z, dlogZ against the target, "
     "evaluations and their rate, live workers, elapsed time, an estimate of the time left); "
     "0 or inf = off."},
    {"logging-interval", NS_OPT_INT, NULL, 1, NAN, NULL, NS_OPT_ALLOW_NONE, G,
     "Iterations between progress lines (none = nlive)."},
    {"nested-samples-csv", NS_OPT_BOOL, "false", NAN, NAN, NULL, 0, "Outputs",
     "Also write nested_samples.csv beside posterior.csv (same columns: the parameters, logP, "
     "logL, it)."},
    {"plot", NS_OPT_BOOL, "true", NAN, NAN, NULL, 0, "Outputs",
     "Draw nessai's plots at the end of the run (posterior_distribution.png, "
     "insertion_indices.png, diagnostics/, logXlogL.png, state.png, trace.png) with the "
     "nessai-plot program; skipped with a warning when Python or matplotlib is missing."},
    {"plot-python", NS_OPT_STRING, "/usr/bin/python3", NAN, NAN, NULL, 0, "Outputs",
     "Python interpreter (with numpy and matplotlib) that runs nessai-plot."},
};

const size_t ns_sampler_options_count = sizeof ns_sampler_options / sizeof ns_sampler_options[0];
