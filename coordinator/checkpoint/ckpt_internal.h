/* ckpt_internal.h - shared between the checkpoint module's own files. */
#ifndef NESSAI_CKPT_INTERNAL_H
#define NESSAI_CKPT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "checkpoint.h"

/* Encode only the header of a file whose payload has len bytes and CRC-32
 * crc into out (empty on entry). NS_OK, NS_ERR_INVAL or NS_ERR_NOMEM. */
int ns_ckpt__encode_header(const ns_ckpt_ident_t *id, uint64_t iteration,
                           size_t len, uint32_t crc, ns_buf_t *out);

#endif
