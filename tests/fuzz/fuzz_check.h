/* fuzz_check.h - CHECK(cond): a broken rule aborts the fuzzer with the
 * condition and its place (libFuzzer then saves the input as a finding). */
#ifndef NESSAI_FUZZ_CHECK_H
#define NESSAI_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                             \
        }                                                                        \
    } while (0)

#endif
