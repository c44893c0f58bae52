/*
 * coordinator/checkpoint/checkpoint.h - checkpoint files, signals, resume.
 *
 * A checkpoint is one file, <output>/<resume-file>, made of a versioned,
 * checksummed header and an opaque payload (the sampler's saved state).
 * The format is documented in docs/checkpoint.md. This module knows
 * nothing about what the payload holds: it stores it atomically, finds
 * it again, and refuses anything damaged or made by another model.
 *
 * Signals: SIGTERM, SIGINT and SIGALRM only raise the process-wide
 * interrupt flag (nessai/util.h); the sampling loop notices it at a
 * consistent point, checkpoints and exits with --checkpoint-exit-code.
 */
#ifndef NESSAI_CHECKPOINT_H
#define NESSAI_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include "nessai/options.h"
#include "nessai/serial.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options --resume, --resume-file, --checkpoint-interval,
 * --checkpoint-exit-code and --max-runtime, as a fragment main.c joins
 * into the coordinator's table. */
extern const ns_option_t ns_checkpoint_options[];
extern const size_t ns_checkpoint_options_count;

/* Current file format version (written; the only one read). */
#define NS_CKPT_FORMAT_VERSION 1u
/* The 8 bytes every checkpoint starts with. */
#define NS_CKPT_MAGIC "NESSAICK"

/* What a checkpoint belongs to. Strings are borrowed. A checkpoint is
 * refused unless model name, dimension, plugin hash and model args all
 * match the running model. */
typedef struct ns_ckpt_ident {
    const char *model_name;   /* plugin's model name */
    const char *model_args;   /* --model-args ("" when none) */
    const char *plugin_hash;  /* hex SHA-1 of the plugin file */
    int dim;                  /* number of parameters */
    uint64_t seed;            /* --seed of the run that wrote it */
} ns_ckpt_ident_t;

/* A checkpoint read back and validated. Owns its strings and payload;
 * release with ns_ckpt_loaded_clear(). */
typedef struct ns_ckpt_loaded {
    uint32_t version;         /* format version of the file */
    char *model_name;         /* owned */
    char *model_args;         /* owned */
    char *plugin_hash;        /* owned */
    int dim;
    uint64_t seed;
    uint64_t iteration;       /* sampler iteration when written (for logs) */
    double created;           /* seconds since the epoch when written */
    uint8_t *payload;         /* owned; NULL when no checkpoint was found */
    size_t payload_len;
    int from_old;             /* 1 if it came from the .old fallback */
} ns_ckpt_loaded_t;

/* Free what a loaded checkpoint owns and zero it; safe on a zeroed struct. */
void ns_ckpt_loaded_clear(ns_ckpt_loaded_t *self);

/* Build the complete file image (header + payload) into out, which the
 * caller has initialised. NS_OK, NS_ERR_INVAL (bad ident) or NS_ERR_NOMEM. */
int ns_ckpt_encode(const ns_ckpt_ident_t *id, uint64_t iteration,
                   const void *payload, size_t len, ns_buf_t *out);

/* Validate a file image and copy it into out (caller clears it). Returns
 * NS_OK, NS_ERR_CORRUPT (not a checkpoint, unsupported version, bad
 * checksum, truncated or trailing bytes; err says which) or NS_ERR_NOMEM. */
int ns_ckpt_decode(const void *data, size_t len, ns_ckpt_loaded_t *out,
                   char *err, size_t errlen);

/* NS_OK if the checkpoint belongs to id's model, else NS_ERR_REFUSED with
 * a one-line message naming the difference and the way out. The seed is
 * compared only when check_seed is non-zero (the user gave --seed). */
int ns_ckpt_ident_check(const ns_ckpt_loaded_t *got, const ns_ckpt_ident_t *id,
                        int check_seed, char *err, size_t errlen);

/* Write path atomically: the image goes to <path>.temp, is fsync'ed, the
 * current <path> (if any) becomes <path>.old, <path>.temp is renamed onto
 * <path> and the directory is fsync'ed. At every moment <path> or
 * <path>.old holds a complete checkpoint once one was written. Returns
 * NS_OK, NS_ERR_IO (err says what failed; the previous checkpoint is left
 * in place) or NS_ERR_NOMEM. */
int ns_ckpt_write(const char *path, const ns_ckpt_ident_t *id, uint64_t iteration,
                  const void *payload, size_t len, char *err, size_t errlen);

/* Read and validate one file. NS_OK, NS_ERR_IO (missing or unreadable),
 * NS_ERR_CORRUPT or NS_ERR_NOMEM; err says which. */
int ns_ckpt_read(const char *path, ns_ckpt_loaded_t *out, char *err, size_t errlen);

/* Find the checkpoint for a resume: <path>, else <path>.old with a logged
 * warning. Returns
 *   NS_OK with out->payload != NULL   a valid checkpoint of this model;
 *   NS_OK with out->payload == NULL   neither file exists (fresh start);
 *   NS_ERR_CORRUPT                    files exist but none is valid;
 *   NS_ERR_REFUSED                    the valid one belongs to another model;
 *   NS_ERR_NOMEM.
 * On error err holds a one-line message and out is cleared. */
int ns_ckpt_load(const char *path, const ns_ckpt_ident_t *id, int check_seed,
                 ns_ckpt_loaded_t *out, char *err, size_t errlen);

/* The coordinator's exit status for a failed resume: 2 for a checkpoint
 * that is damaged or another model's, or in use by another coordinator
 * (problems the user must resolve), 1 otherwise. */
int ns_ckpt_load_exit_status(int rv);

/* --- the run's settings, stored at the start of the payload --------- */

/* Append the settings section to a payload: tag "CONF" version 1, then
 * cfg as JSON text (the keys and values of config.json). NS_OK or
 * NS_ERR_NOMEM. */
int ns_ckpt_settings_put(const ns_config_t *cfg, ns_buf_t *b);

/* If the payload b starts with a settings section, take it: *json is the
 * malloc'ed text and b is advanced past it. Else *json = NULL and b is
 * left alone (a checkpoint written before settings were stored). NS_OK,
 * NS_ERR_CORRUPT (a damaged section) or NS_ERR_NOMEM. */
int ns_ckpt_settings_take(ns_buf_t *b, char **json);

/* Compare the settings a checkpoint was written with (saved, from
 * ns_ckpt_settings_take) with this run's cfg. A changed setting that
 * would change the run's path is refused: NS_ERR_REFUSED and err names
 * the setting, both values and path. So is a --max-iteration below the
 * checkpoint's iteration. Changes that are allowed (stopping, limits,
 * reporting, outputs, the farm, checkpointing; docs/checkpoint.md) are
 * logged as "resume: --NAME changed from A to B" when log_changes is
 * non-zero. NS_OK, NS_ERR_REFUSED, NS_ERR_CORRUPT or NS_ERR_NOMEM. */
int ns_ckpt_settings_check(const char *saved, const ns_config_t *cfg, const char *path,
                           uint64_t iteration, int log_changes, char *err, size_t errlen);

/* --- signals --------------------------------------------------------- */

/* Route SIGTERM, SIGINT and SIGALRM to ns_interrupt_request() with
 * sigaction (SA_RESTART; the handler only stores the signal number), and
 * tell CZMQ not to install handlers of its own later. Safe to call again.
 * NS_OK or NS_ERR_STATE if sigaction failed. */
int ns_ckpt_signals_install(void);
/* Put the previous dispositions back. */
void ns_ckpt_signals_restore(void);
/* 1 if our handler is still installed for all three signals. */
int ns_ckpt_signals_installed(void);

/* Deliver SIGALRM after seconds of wall time (--max-runtime), so the run
 * checkpoints and exits with the checkpoint code by itself. seconds <= 0
 * or NaN disarms. NS_OK or NS_ERR_INVAL. */
int ns_ckpt_max_runtime_arm(double seconds);

/* Exit status after an interrupt: exit_code (--checkpoint-exit-code) if a
 * checkpoint was written, otherwise 1, so that a scheduler never takes a
 * run that saved nothing for safely paused. */
int ns_ckpt_exit_status_after_signal(int checkpoint_written, int exit_code);

/* --- controller: when to checkpoint, and what exit status follows ----- */

/* Serialise the caller's whole state into out (initialised, empty).
 * NS_OK or an error code; the controller frees out. */
typedef int (*ns_ckpt_save_fn)(void *state, ns_buf_t *out);

typedef struct ns_ckpt_ctl ns_ckpt_ctl_t;

/* A controller for the checkpoint <output>/<--resume-file>, configured by
 * cfg (which holds ns_checkpoint_options). id's strings are copied.
 * seed_given: the user gave --seed (then a different checkpoint seed is
 * refused). Caller owns the return value; NULL on allocation failure. */
ns_ckpt_ctl_t *ns_ckpt_ctl_new(const ns_config_t *cfg, const char *output,
                               const ns_ckpt_ident_t *id, int seed_given);
/* Disarms --max-runtime and restores the signal dispositions. */
void ns_ckpt_ctl_destroy(ns_ckpt_ctl_t **self_p);
/* Full path of the checkpoint file. */
const char *ns_ckpt_ctl_path(const ns_ckpt_ctl_t *self);

/* Take the lock <path>.lock (held until destroy or exit; NS_ERR_STATE if
 * another process holds it), then with --resume find and validate the
 * checkpoint (ns_ckpt_load's returns, logged); with --no-resume, NS_OK
 * and no payload. When one is found and --seed was not given, the
 * controller adopts its seed (the caller should too: out->seed). */
int ns_ckpt_ctl_load(ns_ckpt_ctl_t *self, ns_ckpt_loaded_t *out, char *err, size_t errlen);

/* Install the signal handlers, arm --max-runtime and start the interval
 * clock. Call once the state exists and can be saved, after the farm has
 * started (CZMQ installs handlers of its own). startup_s: seconds the
 * process took to get here (for the --max-runtime warning). NS_OK or
 * NS_ERR_STATE. */
int ns_ckpt_ctl_start(ns_ckpt_ctl_t *self, double startup_s);

/* Call at every iteration boundary. If an interrupt is pending returns
 * NS_ERR_INTERRUPTED and writes nothing: the caller records the
 * checkpoint in its history and calls ns_ckpt_ctl_interrupted(). Else
 * writes a checkpoint when --checkpoint-interval has passed since the
 * last one and returns NS_OK; a failed periodic write is logged and the
 * run goes on (the previous checkpoint is intact). */
int ns_ckpt_ctl_iteration(ns_ckpt_ctl_t *self, uint64_t iteration,
                          ns_ckpt_save_fn save, void *state);

/* Write a checkpoint now (end of run). NS_OK or the error, logged. */
int ns_ckpt_ctl_save(ns_ckpt_ctl_t *self, uint64_t iteration,
                     ns_ckpt_save_fn save, void *state);

/* After an interrupt: write the checkpoint (save NULL: nothing to save
 * yet) and return the process exit status, --checkpoint-exit-code if
 * the checkpoint is on disk, 1 otherwise. Logs which signal it was. */
int ns_ckpt_ctl_interrupted(ns_ckpt_ctl_t *self, uint64_t iteration,
                            ns_ckpt_save_fn save, void *state);

/* Checkpoints written by this controller (periodic, forced, on signal). */
uint64_t ns_ckpt_ctl_count(const ns_ckpt_ctl_t *self);

#ifdef __cplusplus
}
#endif
#endif
