/* fuzz_endpoint.c - libFuzzer harness for ns_wire_endpoint_with_port, the
 * parser that turns the worker's --connect address and a port from WELCOME
 * into a data-socket endpoint. Input: two bytes of port (big-endian), then
 * the endpoint text. On success the result must be "tcp://<host>:<port>"
 * with the host part of the input, NUL-terminated inside the buffer.
 * Built and run by scripts/fuzz.sh. */
#include "nessai/wire.h"
#include "nessai/error.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned port = (unsigned)data[0] << 8 | data[1];
    size_t n = size - 2;
    char *ep = malloc(n + 1);   /* exactly the text and its NUL */
    if (!ep)
        return 0;
    memcpy(ep, data + 2, n);
    ep[n] = '\0';
    size_t cap = 1 + (size_t)(data[0] ^ data[1]) % 300;   /* small buffers too */
    char *out = malloc(cap);
    if (!out) {
        free(ep);
        return 0;
    }
    int rv = ns_wire_endpoint_with_port(ep, port, out, cap);
    CHECK(rv == NS_OK || rv == NS_ERR_INVAL);
    if (rv == NS_OK) {
        size_t len = strnlen(out, cap);
        CHECK(len < cap);
        CHECK(strncmp(ep, "tcp://", 6) == 0 && strncmp(out, "tcp://", 6) == 0);
        const char *colon = strrchr(ep + 6, ':');
        CHECK(colon != NULL && colon > ep + 6);
        size_t host = (size_t)(colon - (ep + 6));
        char tail[16];
        snprintf(tail, sizeof tail, ":%u", port);
        CHECK(len == 6 + host + strlen(tail));
        CHECK(memcmp(out + 6, ep + 6, host) == 0 && strcmp(out + 6 + host, tail) == 0);
    }
    free(out);
    free(ep);
    return 0;
}
