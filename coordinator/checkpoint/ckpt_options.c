/* ckpt_options.c - the checkpoint options fragment of the coordinator's table. */
#include "checkpoint.h"

#include <math.h>

#define G "Checkpointing"

const ns_option_t ns_checkpoint_options[] = {
    {"resume", NS_OPT_BOOL, "true", NAN, NAN, NULL, 0, G,
     "Continue from the checkpoint in --output if there is one; a finished run "
     "returns its result at once. Settings that would change the run's path (--nlive, "
     "the flow's, ...) must be the ones it was written with; allowed changes (--stopping, "
     "--max-iteration, the farm's, ...) are logged. --no-resume starts afresh and "
     "overwrites it."},
    {"resume-file", NS_OPT_STRING, "nested_sampler_resume.ckpt", NAN, NAN, NULL, 0, G,
     "Name of the checkpoint file inside --output (the previous one is kept with "
     "the suffix .old)."},
    {"checkpoint-interval", NS_OPT_DOUBLE, "600", 0, NAN, NULL, NS_OPT_ALLOW_INF, G,
     "Seconds of wall time between periodic checkpoints, taken at iteration "
     "boundaries; inf turns periodic checkpoints off (signals and the end of "
     "the run still write one)."},
    {"checkpoint-exit-code", NS_OPT_INT, "130", 3, 255, NULL, 0, G,
     "Exit code after a signal or --max-runtime once the checkpoint is written "
     "(HTCondor: 77 with +SuccessCheckpointExitCode). 0-2 are taken by success, "
     "failure and usage errors."},
    {"max-runtime", NS_OPT_DOUBLE, NULL, 0.001, 1e9, NULL, NS_OPT_ALLOW_NONE, G,
     "Checkpoint and exit with --checkpoint-exit-code by itself after this many "
     "seconds of wall time (e.g. before a cluster's wall-time limit). Unset: no "
     "limit."},
};

const size_t ns_checkpoint_options_count =
    sizeof ns_checkpoint_options / sizeof ns_checkpoint_options[0];
