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

/* The correctly rounded decimal of v with prec significant digits, as
 * digits (no point, no sign, trailing zeros removed) and the decimal
 * exponent of the first digit; 1 if it reads back as v. */
static int s_digits(double v, int prec, char *digits, int *exp10)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
    if (strtod(buf, NULL) != v)
        return 0;
    const char *p = buf + (buf[0] == '-');
    size_t n = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    *exp10 = atoi(p + 1);
    return 1;
}

size_t ns_json_format_number(double v, char *out)
{
    if (isnan(v))
        return (size_t)snprintf(out, 32, "NaN");
    if (isinf(v))
        return (size_t)snprintf(out, 32, v > 0 ? "Infinity" : "-Infinity");
    if (v == 0)
        return (size_t)snprintf(out, 32, signbit(v) ? "-0.0" : "0");
    if (fabs(v) < 9007199254740992.0 && v == (double)(long long)v)
        return (size_t)snprintf(out, 32, "%lld", (long long)v);
    /* The fewest significant digits that read back as v, as Python's repr
     * finds them: 17 always do; most doubles need 16 or 17, and short
     * decimals (0.1, 2.5e-08) fewer. */
    char digits[24];
    int e = 0;
    if (s_digits(v, 15, digits, &e)) {
        char d[24];
        int de;
        for (int prec = 14; prec >= 1 && s_digits(v, prec, d, &de); prec--) {
            memcpy(digits, d, sizeof d);
            e = de;
        }
    } else if (!s_digits(v, 16, digits, &e)) {
        s_digits(v, 17, digits, &e);
    }
    /* Python's layout: positional for exponents -4 to 15 (with ".0" when
     * nothing follows the point), otherwise d.ddde+XX with at least two
     * exponent digits. */
    char *o = out;
    if (v < 0)
        *o++ = '-';
    int n = (int)strlen(digits);
    if (e >= -4 && e < 16) {
        if (e < 0) {
            o += sprintf(o, "0.");
            for (int i = -1; i > e; i--)
                *o++ = '0';
            o += sprintf(o, "%s", digits);
        } else {
            for (int i = 0; i <= e; i++)
                *o++ = i < n ? digits[i] : '0';
            *o++ = '.';
            if (n > e + 1)
                o += sprintf(o, "%s", digits + e + 1);
            else
                *o++ = '0';
        }
    } else {
        *o++ = digits[0];
        if (n > 1) {
            *o++ = '.';
            o += sprintf(o, "%s", digits + 1);
        }
        o += sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    *o = '\0';
    return (size_t)(o - out);
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
