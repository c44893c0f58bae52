/* ckpt_file.c - writing checkpoints atomically and finding them again. */
#include "checkpoint.h"
#include "ckpt_internal.h"

#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const ns_buf_t *head;
    const void *payload;
    size_t len;
} s_image_t;

static int s_put_image(FILE *f, void *ctx)
{
    const s_image_t *im = ctx;
    return fwrite(im->head->data, 1, im->head->len, f) != im->head->len ||
           (im->len > 0 && fwrite(im->payload, 1, im->len, f) != im->len);
}

int ns_ckpt_write(const char *path, const ns_ckpt_ident_t *id, uint64_t iteration,
                  const void *payload, size_t len, char *err, size_t errlen)
{
    if (!path || !*path || (len > 0 && !payload)) {
        ns_errf(err, errlen, "no checkpoint path or payload");
        return NS_ERR_INVAL;
    }
    ns_buf_t head;
    ns_buf_init(&head);
    int rv = ns_ckpt__encode_header(id, iteration, len, ns_crc32(payload, len), &head);
    if (rv != NS_OK) {
        ns_buf_free(&head);
        ns_errf(err, errlen, "cannot encode the checkpoint header: %s", ns_strerror(rv));
        return rv;
    }
    /* The new file is complete and on disk before the old ones are touched. */
    const char *step = "write";
    s_image_t im = {.head = &head, .payload = payload, .len = len};
    rv = ns_write_file_atomic(path, 0644, NS_WRITE_FSYNC | NS_WRITE_KEEP_OLD, s_put_image, &im,
                              &step);
    if (rv == NS_ERR_NOMEM) {
        ns_errf(err, errlen, "out of memory");
    } else if (rv != NS_OK) {
        ns_errf(err, errlen, "cannot %s %s.temp: %s", step, path, strerror(errno));
    } else if (ns_fsync_dir(path) != 0) {
        /* The checkpoint is in place; only its durability across a power
         * cut is in doubt. Worth a warning, not a failed run. */
        ns_warn("checkpoint", "fsync of directory failed path=%s error=%s", path,
                strerror(errno));
    }
    ns_buf_free(&head);
    return rv;
}

int ns_ckpt_read(const char *path, ns_ckpt_loaded_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ns_errf(err, errlen, "cannot open: %s", strerror(errno));
        return NS_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ns_errf(err, errlen, "not a regular file");
        close(fd);
        return NS_ERR_IO;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (!data) {
        close(fd);
        ns_errf(err, errlen, "out of memory for %zu bytes", size);
        return NS_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ns_errf(err, errlen, "read failed: %s", strerror(errno));
            free(data);
            close(fd);
            return NS_ERR_IO;
        }
        if (r == 0)
            break;  /* shrank while we read: decode reports it truncated */
        got += (size_t)r;
    }
    close(fd);
    int rv = ns_ckpt_decode(data, got, out, err, errlen);
    free(data);
    return rv;
}

static int s_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int ns_ckpt_load(const char *path, const ns_ckpt_ident_t *id, int check_seed,
                 ns_ckpt_loaded_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *old = ns_str_concat(path, ".old");
    if (!old) {
        ns_errf(err, errlen, "out of memory");
        return NS_ERR_NOMEM;
    }
    char why_main[256] = "missing", why_old[256] = "missing";
    int have_main = s_exists(path), have_old = s_exists(old);
    int rv = NS_OK;
    if (!have_main && !have_old)
        goto done;  /* a fresh start: payload stays NULL */

    if (have_main) {
        rv = ns_ckpt_read(path, out, why_main, sizeof why_main);
        if (rv == NS_OK)
            goto check;
        if (rv == NS_ERR_NOMEM) {
            ns_errf(err, errlen, "%s: %s", path, why_main);
            goto fail;
        }
    }
    if (have_old) {
        rv = ns_ckpt_read(old, out, why_old, sizeof why_old);
        if (rv == NS_OK) {
            ns_warn("checkpoint", "%s is unusable (%s); resuming from the previous one %s",
                    path, why_main, old);
            out->from_old = 1;
            goto check;
        }
        if (rv == NS_ERR_NOMEM) {
            ns_errf(err, errlen, "%s: %s", old, why_old);
            goto fail;
        }
    }
    rv = NS_ERR_CORRUPT;
    ns_errf(err, errlen,
            "no usable checkpoint: %s: %s; %s: %s. Move them away to start afresh, "
            "or use --no-resume", path, why_main, old, why_old);
    goto fail;

check: {
        char why[384];
        rv = ns_ckpt_ident_check(out, id, check_seed, why, sizeof why);
        if (rv == NS_OK)
            goto done;
        ns_errf(err, errlen, "refusing to resume from %s: %s",
                out->from_old ? old : path, why);
    }
fail:
    ns_ckpt_loaded_clear(out);
done:
    free(old);
    return rv;
}
