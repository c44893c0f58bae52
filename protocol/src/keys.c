/* keys.c - CurveZMQ key files of the farm (docs/protocol.md §8). */
#include "nessai/keys.h"
#include "nessai/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

int ns_keys_available(void)
{
    return zsys_has_curve() ? 1 : 0;
}

int ns_keys_mkdir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s is not a directory", dir);
            return NS_ERR_IO;
        }
        return NS_OK;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the keys directory %s: %s", dir, strerror(errno));
        return NS_ERR_IO;
    }
    return NS_OK;
}

int ns_keys_generate(const char *dir, const char *name, char *err, size_t errlen)
{
    char path[4096], secret[4200];
    int w = snprintf(path, sizeof path, "%s/%s.key", dir, name);
    if (w <= 0 || (size_t)w >= sizeof path) {
        snprintf(err, errlen, "key file name too long");
        return NS_ERR_INVAL;
    }
    snprintf(secret, sizeof secret, "%s_secret", path);
    zcert_t *cert = zcert_new();
    if (!cert) {
        snprintf(err, errlen, "cannot make a key pair");
        return NS_ERR_NOMEM;
    }
    zcert_set_meta(cert, "name", "%s", name);
    /* The secret file is created owner-only (umask), then checked. */
    mode_t old = umask(077);
    unlink(secret);
    int rc = zcert_save_secret(cert, secret);
    umask(old);
    if (rc == 0)
        rc = chmod(secret, 0600);
    if (rc == 0)
        rc = zcert_save_public(cert, path);
    zcert_destroy(&cert);
    if (rc != 0) {
        snprintf(err, errlen, "cannot write the key files %s and %s: %s", path, secret,
                 strerror(errno));
        return NS_ERR_IO;
    }
    chmod(path, 0644);
    return NS_OK;
}

static int s_has_key(zcert_t *cert, int secret)
{
    const byte *k = secret ? zcert_secret_key(cert) : zcert_public_key(cert);
    for (int i = 0; i < 32; i++)
        if (k[i])
            return 1;
    return 0;
}

zcert_t *ns_keys_load_secret(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "cannot read the key file %s: %s", path, strerror(errno));
        return NULL;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "the secret key file %s is readable by other users (mode %03o); "
                 "chmod 600 it", path, (unsigned)(st.st_mode & 0777));
        return NULL;
    }
    zcert_t *cert = zcert_load(path);
    if (!cert || !s_has_key(cert, 1) || !s_has_key(cert, 0)) {
        snprintf(err, errlen, "%s is not a secret key file (make one with nessai-keygen)", path);
        zcert_destroy(&cert);
        return NULL;
    }
    return cert;
}

zcert_t *ns_keys_load_public(const char *path, char *err, size_t errlen)
{
    if (access(path, R_OK) != 0) {
        snprintf(err, errlen, "cannot read the key file %s: %s", path, strerror(errno));
        return NULL;
    }
    zcert_t *cert = zcert_load(path);
    if (!cert || !s_has_key(cert, 0)) {
        snprintf(err, errlen, "%s is not a public key file (make one with nessai-keygen)", path);
        zcert_destroy(&cert);
        return NULL;
    }
    return cert;
}

static int s_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static int s_write_text(const char *path, const char *text, char *err, size_t errlen)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0 || fclose(f) != 0
        || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return NS_ERR_IO;
    }
    return NS_OK;
}

int ns_keys_prepare_run(const char *dir, const char *model_path, char *err, size_t errlen)
{
    char path[4200], allowed[4096];
    int rv = ns_keys_mkdir(dir, err, errlen);
    if (rv != NS_OK)
        return rv;
    const char *pairs[] = {NS_KEYS_COORDINATOR, NS_KEYS_WORKER};
    for (int i = 0; i < 2; i++) {
        char pub[4096];
        snprintf(path, sizeof path, "%s/%s.key_secret", dir, pairs[i]);
        snprintf(pub, sizeof pub, "%s/%s.key", dir, pairs[i]);
        if (!s_exists(path) || !s_exists(pub)) {
            if ((rv = ns_keys_generate(dir, pairs[i], err, errlen)) != NS_OK)
                return rv;
        }
    }
    snprintf(allowed, sizeof allowed, "%s/%s", dir, NS_KEYS_ALLOWED);
    if ((rv = ns_keys_mkdir(allowed, err, errlen)) != NS_OK)
        return rv;
    /* the shared client key's public half, the default allow-list */
    snprintf(path, sizeof path, "%s/%s.key_secret", dir, NS_KEYS_WORKER);
    zcert_t *worker = ns_keys_load_secret(path, err, errlen);
    if (!worker)
        return NS_ERR_IO;
    snprintf(path, sizeof path, "%s/%s.key", allowed, NS_KEYS_WORKER);
    int rc = zcert_save_public(worker, path);
    zcert_destroy(&worker);
    if (rc != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return NS_ERR_IO;
    }
    if (model_path) {
        snprintf(path, sizeof path, "%s/%s", dir, NS_KEYS_MODEL);
        if ((rv = s_write_text(path, model_path, err, errlen)) != NS_OK)
            return rv;
    }
    return NS_OK;
}

void ns_keys_server(zsock_t *sock, zcert_t *server)
{
    zcert_apply(server, sock);
    zsock_set_curve_server(sock, 1);
}

void ns_keys_client(zsock_t *sock, zcert_t *client, zcert_t *server_public)
{
    zcert_apply(client, sock);
    zsock_set_curve_serverkey(sock, zcert_public_txt(server_public));
}

int ns_keys_loopback(const char *endpoint)
{
    if (!endpoint || strncmp(endpoint, "tcp://", 6) != 0)
        return 0;
    const char *host = endpoint + 6;
    const char *colon = strrchr(host, ':');
    size_t len = colon ? (size_t)(colon - host) : strlen(host);
    if (len >= 4 && strncmp(host, "127.", 4) == 0) {
        for (size_t i = 4; i < len; i++)
            if (!(host[i] == '.' || (host[i] >= '0' && host[i] <= '9')))
                return 0;
        return 1;
    }
    return (len == 9 && strncmp(host, "localhost", 9) == 0)
           || (len == 5 && strncmp(host, "[::1]", 5) == 0);
}
