/* error.c - messages for ns_err_t, and the err buffers of failing calls. */
#include "nessai/error.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const s_messages[NS_ERR__COUNT] = {
    [NS_OK] = "success",
    [NS_ERR_NOMEM] = "out of memory",
    [NS_ERR_INVAL] = "invalid argument",
    [NS_ERR_IO] = "input/output error",
    [NS_ERR_MODEL] = "model plugin error",
    [NS_ERR_PROTO] = "protocol error",
    [NS_ERR_TIMEOUT] = "timed out",
    [NS_ERR_REFUSED] = "refused by peer",
    [NS_ERR_STATE] = "invalid state",
    [NS_ERR_CORRUPT] = "corrupt data",
    [NS_ERR_NUMERIC] = "numerical failure",
    [NS_ERR_INTERRUPTED] = "interrupted",
    [NS_ERR_FARM] = "worker farm failure",
};

const char *ns_strerror(int err)
{
    if (err < 0 || err >= NS_ERR__COUNT || !s_messages[err])
        return "unknown error";
    return s_messages[err];
}

void ns_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
