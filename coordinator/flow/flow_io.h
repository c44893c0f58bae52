/*
 * flow_io.h - the weights file (docs/flow.md): a flow section, optionally
 * the optimiser section, and a CRC-32, written atomically.
 */
#ifndef NS_FLOW_IO_H
#define NS_FLOW_IO_H

#include "flow.h"
#include "flow_train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Append the file image (tag "NSFW", flow, optional optimiser, CRC) to b. */
void ns_flow_weights_encode(const ns_flow_t *flow, const ns_adamw_t *opt, ns_buf_t *b);
/* Decode a file image into flow (and opt when the image holds one and opt is
 * not NULL). NS_ERR_CORRUPT on a bad checksum or layout, NS_ERR_INVAL on a
 * different architecture; flow and opt are unchanged on error. */
int ns_flow_weights_decode(ns_flow_t *flow, ns_adamw_t *opt, const void *data, size_t len);

/* Write path atomically (path.temp, fsync'ed, then renamed); an existing
 * file is first kept as path.old. NS_OK, NS_ERR_IO or NS_ERR_NOMEM. */
int ns_flow_weights_write(const char *path, const ns_flow_t *flow, const ns_adamw_t *opt);
int ns_flow_weights_read(const char *path, ns_flow_t *flow, ns_adamw_t *opt);

#ifdef __cplusplus
}
#endif
#endif
