/* wire.c - farm messages on ZeroMQ sockets. */
#include "nessai/wire.h"
#include "nessai/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_free_bytes(void *data, void *hint)
{
    free(data);
}

int ns_wire_send(zsock_t *sock, zframe_t *routing, const ns_msg_t *msg)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rv = ns_msg_encode(msg, &bytes, &len);
    if (rv != NS_OK)
        return rv;
    void *s = zsock_resolve(sock);
    if (routing && zmq_send(s, zframe_data(routing), zframe_size(routing),
                            ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        /* EHOSTUNREACH: a ZMQ_ROUTER_MANDATORY socket has no such peer (any more) */
        int gone = errno == EAGAIN || errno == EHOSTUNREACH;
        free(bytes);
        return gone ? NS_ERR_STATE : NS_ERR_IO;
    }
    /* Hand the encoded bytes to libzmq without a copy; it frees them. After
     * a routing frame the message is committed: a ROUTER without
     * ZMQ_ROUTER_MANDATORY drops for unknown or full peers, one with it
     * refused the routing frame above already. */
    zmq_msg_t frame;
    if (zmq_msg_init_data(&frame, bytes, len, s_free_bytes, NULL) != 0) {
        free(bytes);
        return NS_ERR_NOMEM;
    }
    if (zmq_msg_send(&frame, s, ZMQ_DONTWAIT) < 0) {
        rv = errno == EAGAIN ? NS_ERR_STATE : NS_ERR_IO;
        zmq_msg_close(&frame);   /* frees bytes */
        return rv;
    }
    return NS_OK;
}

void ns_wire_tune(zsock_t *sock, int64_t max_message, int linger_ms)
{
    zsock_set_linger(sock, linger_ms);
    zmq_setsockopt(zsock_resolve(sock), ZMQ_MAXMSGSIZE, &max_message, sizeof max_message);
}

int ns_wire_endpoint_with_port(const char *endpoint, unsigned port, char *out, size_t size)
{
    if (!endpoint || strncmp(endpoint, "tcp://", 6) != 0)
        return NS_ERR_INVAL;
    const char *colon = strrchr(endpoint + 6, ':');
    if (!colon || colon == endpoint + 6)
        return NS_ERR_INVAL;
    int hostlen = (int)(colon - (endpoint + 6));
    int w = snprintf(out, size, "tcp://%.*s:%u", hostlen, endpoint + 6, port);
    return (w > 0 && (size_t)w < size) ? NS_OK : NS_ERR_INVAL;
}
