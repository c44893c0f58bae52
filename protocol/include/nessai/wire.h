/*
 * nessai/wire.h - sending and receiving farm messages on ZeroMQ
 * sockets (nessai/codec.h does the bytes, this does the frames). Part of
 * nessai_protocol (protocol/), shared by the coordinator's broker and
 * nessai-worker.
 */
#ifndef NESSAI_WIRE_H
#define NESSAI_WIRE_H

#include <czmq.h>
#include "nessai/codec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Encode msg and send it on sock without blocking, after the routing frame
 * when routing is not NULL (ROUTER sockets). Returns NS_OK, NS_ERR_STATE if
 * the socket would block (high-water mark, no peer) or, on a ROUTER with
 * ZMQ_ROUTER_MANDATORY, the routed peer is not connected; NS_ERR_IO
 * otherwise. */
int ns_wire_send(zsock_t *sock, zframe_t *routing, const ns_msg_t *msg);

/* Set the options every farm socket carries: linger, ZMQ_MAXMSGSIZE. */
void ns_wire_tune(zsock_t *sock, int64_t max_message, int linger_ms);

/* "tcp://host:port" from the host part of endpoint (tcp://host:port) and
 * another port. Returns NS_OK or NS_ERR_INVAL (not tcp://). */
int ns_wire_endpoint_with_port(const char *endpoint, unsigned port, char *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif
