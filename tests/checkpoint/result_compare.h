/* result_compare.h - compare two result.json files for an exact
 * continuation: every value equal bit for bit, except timings and the
 * farm's own counters, which differ between any two runs. */
#ifndef NESSAI_TEST_RESULT_COMPARE_H
#define NESSAI_TEST_RESULT_COMPARE_H

#include <stddef.h>

/* Keys skipped at any depth: every key containing "time", "farm" (worker
 * counts, retries, wall times), "run" (command line, host, start and
 * end of this invocation), "checkpoint_iterations" (signal
 * checkpoints are a property of how the run was stopped), plus the
 * NULL-terminated extra list (may be NULL). Returns 0 if equal, 1 if they
 * differ (why names the first differing key path), -1 if a file cannot be
 * read or parsed (why says which). */
int rc_compare_files(const char *a, const char *b, const char *const *extra_ignore,
                     char *why, size_t len);

/* A top-level number of a result.json (NaN, Infinity accepted), or NAN if
 * the file or the key is missing. */
double rc_top_number(const char *path, const char *key);

#endif
