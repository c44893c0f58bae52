/* address.c - nessai-worker --connect-file: the coordinator's farm.address. */
#include "worker.h"
#include "nessai/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void s_stamp(const struct stat *st, ns_address_stamp_t *out)
{
    out->dev = (unsigned long long)st->st_dev;
    out->ino = (unsigned long long)st->st_ino;
    out->size = (unsigned long long)st->st_size;
    out->mtime_s = (long long)st->st_mtim.tv_sec;
    out->mtime_ns = st->st_mtim.tv_nsec;
}

int ns_address_read(const char *path, char *endpoint, size_t size, ns_address_stamp_t *stamp,
                    char *why, size_t whylen)
{
    FILE *fp = fopen(path, "r");
    struct stat st;
    if (!fp || fstat(fileno(fp), &st) != 0) {
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        if (fp)
            fclose(fp);
        return NS_ERR_IO;
    }
    char line[600];
    int got = fgets(line, sizeof line, fp) != NULL;
    fclose(fp);
    size_t len = got ? strcspn(line, "\r\n") : 0;
    line[len] = '\0';
    const char *colon = strrchr(line, ':');
    if (!got || strncmp(line, "tcp://", 6) != 0 || !colon || colon == line + 5
        || colon == line + 6 || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1)
        || len >= size) {
        snprintf(why, whylen, "%s does not hold a coordinator endpoint (tcp://host:port): '%.80s'",
                 path, got ? line : "");
        return NS_ERR_INVAL;
    }
    memcpy(endpoint, line, len + 1);
    s_stamp(&st, stamp);
    return NS_OK;
}

int ns_address_changed(const char *path, const ns_address_stamp_t *stamp)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 1;
    ns_address_stamp_t now;
    s_stamp(&st, &now);
    return now.dev != stamp->dev || now.ino != stamp->ino || now.size != stamp->size
           || now.mtime_s != stamp->mtime_s || now.mtime_ns != stamp->mtime_ns;
}
