/* flow_io.c - weights file: "NSFW" v1 | FLOW section | u8 has_opt |
 * [ADAM section] | u32 CRC-32 of every preceding byte. */
#include "flow_io.h"
#include "nessai/error.h"
#include "nessai/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_TAG "NSFW"
#define FILE_VERSION 1u

void ns_flow_weights_encode(const ns_flow_t *flow, const ns_adamw_t *opt, ns_buf_t *b)
{
    size_t start = b->len;
    ns_buf_put_tag(b, FILE_TAG, FILE_VERSION);
    ns_flow_save(flow, b);
    ns_buf_put_u8(b, opt ? 1 : 0);
    if (opt)
        ns_adamw_save(opt, b);
    uint32_t crc = b->failed ? 0 : ns_crc32(b->data + start, b->len - start);
    ns_buf_put_u32(b, crc);
}

int ns_flow_weights_decode(ns_flow_t *flow, ns_adamw_t *opt, const void *data, size_t len)
{
    if (len < 12)
        return NS_ERR_CORRUPT;
    ns_buf_t b;
    ns_buf_view(&b, data, len - 4);
    ns_buf_t t;
    ns_buf_view(&t, (const uint8_t *)data + len - 4, 4);
    uint32_t crc;
    int rc = ns_buf_get_u32(&t, &crc);
    if (rc != NS_OK || crc != ns_crc32(data, len - 4))
        return NS_ERR_CORRUPT;
    uint32_t ver;
    if ((rc = ns_buf_get_tag(&b, FILE_TAG, &ver)) != NS_OK)
        return rc;
    if (ver != FILE_VERSION)
        return NS_ERR_CORRUPT;
    /* all or nothing: keep the current flow to put back if the tail fails */
    ns_buf_t backup;
    ns_buf_init(&backup);
    ns_flow_save(flow, &backup);
    if ((rc = ns_buf_error(&backup)) != NS_OK || (rc = ns_flow_load(flow, &b)) != NS_OK) {
        ns_buf_free(&backup);
        return rc;
    }
    uint8_t has_opt = 0;
    rc = ns_buf_get_u8(&b, &has_opt);
    if (rc == NS_OK && has_opt > 1)
        rc = NS_ERR_CORRUPT;
    if (rc == NS_OK && has_opt && opt)
        rc = ns_adamw_load(opt, &b); /* itself all or nothing */
    if (rc != NS_OK) {
        backup.pos = 0;
        ns_flow_load(flow, &backup);
    }
    ns_buf_free(&backup);
    return rc;
}

static int s_put_bytes(FILE *f, void *ctx)
{
    const ns_buf_t *b = ctx;
    return fwrite(b->data, 1, b->len, f) != b->len;
}

int ns_flow_weights_write(const char *path, const ns_flow_t *flow, const ns_adamw_t *opt)
{
    ns_buf_t b;
    ns_buf_init(&b);
    ns_flow_weights_encode(flow, opt, &b);
    int rc = ns_buf_error(&b);
    if (rc == NS_OK)
        rc = ns_write_file_atomic(path, 0666, NS_WRITE_FSYNC | NS_WRITE_KEEP_OLD, s_put_bytes, &b,
                                  NULL);
    ns_buf_free(&b);
    return rc;
}

int ns_flow_weights_read(const char *path, ns_flow_t *flow, ns_adamw_t *opt)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NS_ERR_IO;
    int rc = NS_OK;
    uint8_t *data = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0)
        rc = NS_ERR_IO;
    if (rc == NS_OK && !(data = malloc(len ? (size_t)len : 1)))
        rc = NS_ERR_NOMEM;
    if (rc == NS_OK && fread(data, 1, (size_t)len, f) != (size_t)len)
        rc = NS_ERR_IO;
    fclose(f);
    if (rc == NS_OK)
        rc = ns_flow_weights_decode(flow, opt, data, (size_t)len);
    free(data);
    return rc;
}
