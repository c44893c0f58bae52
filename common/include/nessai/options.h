/*
 * nessai/options.h - one option table drives the command line, the INI
 * config file (--config FILE, same keys), --help and the config.json dump.
 *
 * A table is a static array of ns_option_t. Values are kept as text plus a
 * parsed value, with the source each came from (default, file, command line).
 *
 * Command line: --name VALUE, --name=VALUE; BOOL options also take --name
 * (true) and --no-name (false). Config file: "name = value" lines, '#' or
 * ';' comments, [section] headers ignored, names in kebab-case or
 * snake_case. Command-line values override the file.
 */
#ifndef NESSAI_OPTIONS_H
#define NESSAI_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON;

typedef enum ns_opt_type {
    NS_OPT_INT,      /* integer (long) within [min, max] */
    NS_OPT_DOUBLE,   /* real within [min, max]; "inf" only with NS_OPT_ALLOW_INF */
    NS_OPT_STRING,   /* any text */
    NS_OPT_BOOL,     /* true/false/yes/no/on/off/1/0 */
    NS_OPT_CHOICE,   /* one of the '|'-separated words in choices */
    NS_OPT_FLAG      /* command line only, takes no value (--help, --version) */
} ns_opt_type_t;

enum {
    NS_OPT_ALLOW_INF = 1 << 0,   /* DOUBLE accepts "inf" */
    NS_OPT_ALLOW_NONE = 1 << 1,  /* "none" (any type) means unset: use the derived default */
    NS_OPT_CLI_ONLY = 1 << 2,    /* not read from the config file (--config itself) */
    NS_OPT_NO_DUMP = 1 << 3      /* left out of config.json */
};

typedef struct ns_option {
    const char *name;        /* long name without dashes, kebab-case */
    ns_opt_type_t type;
    const char *def;         /* default as text; NULL = unset ("none") */
    double min, max;         /* inclusive bounds for INT/DOUBLE */
    const char *choices;     /* CHOICE: "a|b|c" */
    int flags;               /* NS_OPT_* */
    const char *group;       /* --help section heading */
    const char *help;        /* one or two sentences for --help */
} ns_option_t;

typedef struct ns_config ns_config_t;

/* The table must outlive the config. Caller owns the return value. */
ns_config_t *ns_config_new(const ns_option_t *table, size_t n);
void ns_config_destroy(ns_config_t **self_p);

/* Parse argv (argv[0] skipped). A --config FILE anywhere is read first,
 * then the rest of the command line overrides it. Returns NS_OK or
 * NS_ERR_INVAL with a one-line message in err (what and how to fix). */
int ns_config_parse_args(ns_config_t *self, int argc, char **argv,
                         char *err, size_t errlen);
/* Read an INI file (normally via --config). */
int ns_config_load_file(ns_config_t *self, const char *path, char *err, size_t errlen);
/* Set one value as if given on the command line (validated). */
int ns_config_set(ns_config_t *self, const char *name, const char *value,
                  char *err, size_t errlen);

/* 1 if the option has a value (from default, file or command line). */
int ns_config_is_set(const ns_config_t *self, const char *name);
/* 1 if the user gave it (file or command line), 0 if default/unset. */
int ns_config_user_set(const ns_config_t *self, const char *name);
/* Typed getters; the name must exist in the table (else abort: a
 * programming error). Unset values return 0 / NAN / NULL. */
long ns_config_int(const ns_config_t *self, const char *name);
double ns_config_double(const ns_config_t *self, const char *name);
int ns_config_bool(const ns_config_t *self, const char *name);
const char *ns_config_str(const ns_config_t *self, const char *name);

/* --help text, grouped by option group, with defaults and bounds. */
void ns_config_print_help(const ns_config_t *self, FILE *out,
                          const char *usage, const char *description);
/* Every effective value (typed JSON values, null when unset). Caller owns. */
struct cJSON *ns_config_to_json(const ns_config_t *self);

#ifdef __cplusplus
}
#endif
#endif
