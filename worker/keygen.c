/* keygen.c - nessai-keygen: write a CurveZMQ key pair for the farm
 * (docs/protocol.md §8). */
#include "nessai/keys.h"
#include "nessai/error.h"

#include <stdio.h>
#include <string.h>

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: nessai-keygen DIR NAME\n"
            "Write a farm key pair: DIR/NAME.key (public) and DIR/NAME.key_secret (secret,\n"
            "mode 0600); DIR is created with mode 0700 if missing. Give the public file to\n"
            "the coordinator's --worker-keys directory and the secret one to\n"
            "nessai-worker --cert (see docs/protocol.md, section 8).\n");
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        s_usage(stdout);
        return 0;
    }
    if (argc != 3 || !argv[2][0] || strchr(argv[2], '/')) {
        s_usage(stderr);
        return 2;
    }
    if (!ns_keys_available()) {
        fprintf(stderr, "nessai-keygen: this libzmq has no CURVE support\n");
        return 1;
    }
    char err[512];
    char secret[4200];
    snprintf(secret, sizeof secret, "%s/%s.key_secret", argv[1], argv[2]);
    FILE *probe = fopen(secret, "r");
    if (probe) {
        fclose(probe);
        fprintf(stderr, "nessai-keygen: %s exists; remove it first to replace the pair\n", secret);
        return 1;
    }
    if (ns_keys_mkdir(argv[1], err, sizeof err) != NS_OK
        || ns_keys_generate(argv[1], argv[2], err, sizeof err) != NS_OK) {
        fprintf(stderr, "nessai-keygen: %s\n", err);
        return 1;
    }
    printf("%s/%s.key\n%s\n", argv[1], argv[2], secret);
    return 0;
}
