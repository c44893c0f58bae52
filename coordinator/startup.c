/* startup.c - file-system checks of the command line (startup.h). */
#define _GNU_SOURCE
#include "startup.h"

#include "nessai/error.h"
#include "nessai/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Make and remove a file (or a directory) in dir: 0, or the errno. */
static int s_try_create(const char *dir, int as_dir)
{
    char name[64];
    snprintf(name, sizeof name, ".nessai-write-check-%ld", (long)getpid());
    char *path = ns_path_join(dir, name);
    if (!path)
        return ENOMEM;
    int e = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        e = 0;
        if (as_dir) {
            if (mkdir(path, 0700) != 0)
                e = errno;
            else
                rmdir(path);
        } else {
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0)
                e = errno;
            else {
                close(fd);
                unlink(path);
            }
        }
        if (e != EEXIST)
            break;
        /* left by a killed process with this pid: remove it, try again */
        if (as_dir ? rmdir(path) : unlink(path))
            break;
    }
    free(path);
    return e;
}

int ns_startup_check_output(const char *output, char *err, size_t errlen)
{
    if (!output || !*output) {
        ns_errf(err, errlen, "--output is empty: give the run's output directory");
        return NS_ERR_INVAL;
    }
    struct stat st;
    if (stat(output, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            ns_errf(err, errlen, "--output %s exists and is not a directory; give a directory "
                    "(it is created if missing)", output);
            return NS_ERR_INVAL;
        }
        int e = s_try_create(output, 0);
        if (e) {
            ns_errf(err, errlen, "--output %s: cannot write in this directory: %s", output,
                    strerror(e));
            return NS_ERR_INVAL;
        }
        return NS_OK;
    }
    if (errno != ENOENT) {
        ns_errf(err, errlen, "--output %s: %s", output, strerror(errno));
        return NS_ERR_INVAL;
    }
    /* Missing: the nearest existing ancestor must take a new directory. */
    char *up = ns_strdup(output);
    if (!up) {
        ns_errf(err, errlen, "out of memory");
        return NS_ERR_NOMEM;
    }
    int rv = NS_OK;
    for (;;) {
        size_t n = strlen(up);
        while (n > 1 && up[n - 1] == '/')
            up[--n] = '\0';
        char *slash = strrchr(up, '/');
        if (!slash)
            snprintf(up, n + 1, ".");
        else if (slash == up)
            up[1] = '\0';
        else
            *slash = '\0';
        if (stat(up, &st) == 0)
            break;
        if (errno != ENOENT || strcmp(up, ".") == 0 || strcmp(up, "/") == 0) {
            ns_errf(err, errlen, "--output %s: %s: %s", output, up, strerror(errno));
            rv = NS_ERR_INVAL;
            break;
        }
    }
    if (rv == NS_OK) {
        int e = S_ISDIR(st.st_mode) ? s_try_create(up, 1) : ENOTDIR;
        if (e) {
            ns_errf(err, errlen, "--output %s: cannot create it in %s: %s", output, up,
                    strerror(e));
            rv = NS_ERR_INVAL;
        }
    }
    free(up);
    return rv;
}
