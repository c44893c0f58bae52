/*
 * json.h - JSON text for result and configuration files.
 *
 * ns_json_print writes a cJSON tree as text whose numbers read back as the
 * exact doubles: integers below 2^53 as integers, other finite numbers as
 * Python's repr writes them (the fewest significant digits that read back
 * as the same double: 0.1, 1e+300, 2.5e-05, -0.0), NaN and +-Infinity as
 * the tokens Python's json
 * module writes and reads (nessai's result files contain them). cJSON's own
 * printer accepts 15 digits whenever they read back to within a relative
 * 2.2e-16, which changes the last bit of ~10 % of the values, and is ~2.7x
 * slower per number. Objects are indented with tabs, one member per line;
 * arrays stay on one line. Raw nodes are copied verbatim.
 */
#ifndef NESSAI_JSON_H
#define NESSAI_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The text of item (NUL-terminated, caller frees), or NULL if out of memory. */
char *ns_json_print(const cJSON *item);

/* One number as JSON text into out (at least 32 bytes); returns the length. */
size_t ns_json_format_number(double v, char *out);

#ifdef __cplusplus
}
#endif
#endif
