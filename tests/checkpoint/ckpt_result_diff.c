/* ckpt_result_diff.c - compare two result.json files as an exact
 * continuation must match (see result_compare.h). Exit 0 identical,
 * 1 different, 2 unreadable.
 *   ckpt_result_diff A.json B.json [--ignore KEY]... */
#include "result_compare.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *files[2] = {NULL, NULL};
    const char *extra[64] = {NULL};
    int nf = 0, ne = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ignore") == 0 && i + 1 < argc && ne < 63)
            extra[ne++] = argv[++i];
        else if (nf < 2)
            files[nf++] = argv[i];
    }
    if (nf != 2) {
        fprintf(stderr, "usage: ckpt_result_diff A.json B.json [--ignore KEY]...\n");
        return 2;
    }
    char why[1200];
    int rv = rc_compare_files(files[0], files[1], extra, why, sizeof why);
    printf("%s\n", why);
    return rv < 0 ? 2 : rv;
}
