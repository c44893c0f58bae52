/* json.c - exact, fast JSON printing of cJSON trees (nessai/json.h). */
#include "nessai/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    size_t len, cap;
    int err;
} s_out_t;

static char *s_room(s_out_t *o, size_t n)
{
    if (o->err)
        return NULL;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (o->len + n + 1 > cap)
            cap *= 2;
        char *q = realloc(o->p, cap);
        if (!q) {
            o->err = 1;
            return NULL;
        }
        o->p = q;
        o->cap = cap;
    }
    return o->p + o->len;
}

static void s_put(s_out_t *o, const char *s, size_t n)
{
    char *d = s_room(o, n);
    if (!d)
        return;
    memcpy(d, s, n);
    o->len += n;
}

static void s_puts(s_out_t *o, const char *s) { s_put(o, s, strlen(s)); }

static void s_tabs(s_out_t *o, int depth)
{
    for (int i = 0; i < depth; i++)
        s_put(o, "\t", 1);
}

size_t ns_json_format_number(double v, char *out)
{
    if (isnan(v))
        return (size_t)snprintf(out, 32, "NaN");
    if (isinf(v))
        return (size_t)snprintf(out, 32, v > 0 ? "Infinity" : "-Infinity");
    if (fabs(v) < 9007199254740992.0 && v == (double)(long long)v && !(v == 0 && signbit(v)))
        return (size_t)snprintf(out, 32, "%lld", (long long)v);
    return (size_t)snprintf(out, 32, "%.17g", v);
}

static void s_string(s_out_t *o, const char *s)
{
    s_put(o, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        char esc[8];
        switch (*c) {
        case '"': s_put(o, "\\\"", 2); break;
        case '\\': s_put(o, "\\\\", 2); break;
        case '\b': s_put(o, "\\b", 2); break;
        case '\f': s_put(o, "\\f", 2); break;
        case '\n': s_put(o, "\\n", 2); break;
        case '\r': s_put(o, "\\r", 2); break;
        case '\t': s_put(o, "\\t", 2); break;
        default:
            if (*c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *c);
                s_put(o, esc, 6);
            } else {
                s_put(o, (const char *)c, 1);
            }
        }
    }
    s_put(o, "\"", 1);
}

static void s_value(s_out_t *o, const cJSON *it, int depth)
{
    switch (it->type & 0xFF) {
    case cJSON_NULL:
        s_puts(o, "null");
        break;
    case cJSON_False:
        s_puts(o, "false");
        break;
    case cJSON_True:
        s_puts(o, "true");
        break;
    case cJSON_Number: {
        char *d = s_room(o, 32);
        if (d)
            o->len += ns_json_format_number(it->valuedouble, d);
        break;
    }
    case cJSON_Raw:
        s_puts(o, it->valuestring ? it->valuestring : "null");
        break;
    case cJSON_String:
        s_string(o, it->valuestring);
        break;
    case cJSON_Array:
        s_put(o, "[", 1);
        for (const cJSON *c = it->child; c; c = c->next) {
            s_value(o, c, depth + 1);
            if (c->next)
                s_put(o, ", ", 2);
        }
        s_put(o, "]", 1);
        break;
    case cJSON_Object:
        if (!it->child) {
            s_put(o, "{}", 2);
            break;
        }
        s_put(o, "{\n", 2);
        for (const cJSON *c = it->child; c; c = c->next) {
            s_tabs(o, depth + 1);
            s_string(o, c->string);
            s_put(o, ": ", 2);
            s_value(o, c, depth + 1);
            s_puts(o, c->next ? ",\n" : "\n");
        }
        s_tabs(o, depth);
        s_put(o, "}", 1);
        break;
    default:
        s_puts(o, "null");
    }
}

char *ns_json_print(const cJSON *item)
{
    s_out_t o = {0};
    if (item)
        s_value(&o, item, 0);
    else
        s_puts(&o, "null");
    if (o.err || !s_room(&o, 0)) {
        free(o.p);
        return NULL;
    }
    o.p[o.len] = '\0';
    return o.p;
}
