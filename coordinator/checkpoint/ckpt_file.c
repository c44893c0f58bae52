/* ckpt_file.c - writing checkpoints atomically and finding them again. */
#include "checkpoint.h"
#include "ckpt_internal.h"

#include "nessai/error.h"
#include "nessai/log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* path + suffix, malloc'ed; NULL on allocation failure. */
static char *s_with_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path), m = strlen(suffix);
    char *s = malloc(n + m + 1);
    if (s) {
        memcpy(s, path, n);
        memcpy(s + n, suffix, m + 1);
    }
    return s;
}

static int s_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync the directory holding path, so the renames survive a power cut. */
static int s_sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Make old a copy of path's current content, if path exists. A hard link
 * keeps path in place, so there is no moment without <path>; where links
 * are not supported the file is moved (load then finds the .old one). */
static int s_keep_previous(const char *path, const char *old)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (unlink(old) != 0 && errno != ENOENT)
        return -1;
    if (link(path, old) == 0)
        return 0;
    return rename(path, old);
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
    char *tmp = s_with_suffix(path, ".temp");
    char *old = s_with_suffix(path, ".old");
    if (!tmp || !old) {
        rv = NS_ERR_NOMEM;
        ns_errf(err, errlen, "out of memory");
        goto done;
    }

    const char *step = "create";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto io_error;
    step = "write";
    if (s_write_all(fd, head.data, head.len) != 0 || s_write_all(fd, payload, len) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        goto io_error;
    }
    step = "fsync";
    if (fsync(fd) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        goto io_error;
    }
    step = "close";
    if (close(fd) != 0)
        goto io_error;
    /* The new file is complete and on disk; only now touch the old ones. */
    step = "keep the previous checkpoint as .old for";
    if (s_keep_previous(path, old) != 0)
        goto io_error;
    step = "rename into place";
    if (rename(tmp, path) != 0)
        goto io_error;
    step = "fsync the directory of";
    if (s_sync_dir(path) != 0) {
        /* The checkpoint is in place; only its durability across a power
         * cut is in doubt. Worth a warning, not a failed run. */
        ns_warn("checkpoint", "fsync of directory failed path=%s error=%s", path,
                strerror(errno));
    }
    rv = NS_OK;
    goto done;

io_error:
    rv = NS_ERR_IO;
    ns_errf(err, errlen, "cannot %s %s: %s", step, tmp ? tmp : path, strerror(errno));
    if (tmp)
        unlink(tmp);
done:
    free(tmp);
    free(old);
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
    char *old = s_with_suffix(path, ".old");
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
