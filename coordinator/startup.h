/*
 * coordinator/startup.h - checks of the command line that need the file
 * system, made before anything is created: a bad --output is one line and
 * exit 2, with nothing left behind.
 */
#ifndef NESSAI_STARTUP_H
#define NESSAI_STARTUP_H

#include <stddef.h>

/* --output can be used: an existing directory this process can create
 * files in, or a path that can be created (its nearest existing ancestor
 * is a directory this process can create directories in). Both are tried
 * with a file or directory made and removed at once, so that what counts
 * is what the file system allows (root, read-only mounts, ACLs), not the
 * mode bits. NS_OK or NS_ERR_INVAL with one line in err naming the path
 * and the system's reason. */
int ns_startup_check_output(const char *output, char *err, size_t errlen);

#endif
