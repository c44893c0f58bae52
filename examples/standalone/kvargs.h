/*
 * kvargs.h - read --model-args strings such as "dim=4,sigma=0.5".
 *
 * Copy this file into your model project. It is header-only and uses the C
 * library alone. Pairs are separated by commas; keys are compared exactly;
 * a key given twice takes its last value.
 *
 *   double sigma;
 *   if (kv_double(args, "sigma", 1.0, 1e-6, 1e6, &sigma, err, errlen)) return 1;
 *   if (kv_only(args, (const char *[]){"dim", "sigma", NULL}, err, errlen)) return 1;
 */
#ifndef KVARGS_H
#define KVARGS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Find the value of key: 1 and its text in val (at most vallen-1 bytes),
 * 0 if the key is absent, -1 with a reason in err for a malformed string. */
static inline int kv_find(const char *args, const char *key, char *val, size_t vallen,
                          char *err, size_t errlen)
{
    int found = 0;
    size_t klen = strlen(key);
    for (const char *p = args ? args : ""; *p;) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        if (len > 0 && (!eq || eq == p)) {
            snprintf(err, errlen, "model arguments are key=value pairs separated by commas; "
                     "got '%.*s'", (int)len, p);
            return -1;
        }
        if (eq && (size_t)(eq - p) == klen && strncmp(p, key, klen) == 0) {
            size_t vl = len - klen - 1;
            if (vl >= vallen) {
                snprintf(err, errlen, "model argument %s: value too long", key);
                return -1;
            }
            memcpy(val, eq + 1, vl);
            val[vl] = '\0';
            found = 1;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return found;
}

/* A number in [lo, hi], def when the key is absent. 0, or -1 with a reason. */
static inline int kv_double(const char *args, const char *key, double def, double lo, double hi,
                            double *out, char *err, size_t errlen)
{
    char text[64], *end;
    int r = kv_find(args, key, text, sizeof text, err, errlen);
    *out = def;
    if (r <= 0)
        return r;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= lo && v <= hi)) {
        snprintf(err, errlen, "model argument %s=%s: give a number from %g to %g", key, text, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* An integer in [lo, hi], def when the key is absent. 0, or -1 with a reason. */
static inline int kv_long(const char *args, const char *key, long def, long lo, long hi,
                          long *out, char *err, size_t errlen)
{
    char text[64], *end;
    int r = kv_find(args, key, text, sizeof text, err, errlen);
    *out = def;
    if (r <= 0)
        return r;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi) {
        snprintf(err, errlen, "model argument %s=%s: give an integer from %ld to %ld", key, text,
                 lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Refuse keys not in the NULL-terminated list known (typing mistakes). */
static inline int kv_only(const char *args, const char *const *known, char *err, size_t errlen)
{
    for (const char *p = args ? args : ""; *p;) {
        size_t len = strcspn(p, ",");
        size_t kl = strcspn(p, "=,");
        int ok = len == 0;
        for (const char *const *k = known; !ok && *k; k++)
            ok = strlen(*k) == kl && strncmp(p, *k, kl) == 0;
        if (!ok) {
            snprintf(err, errlen, "unknown model argument '%.*s'", (int)len, p);
            return -1;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

#endif /* KVARGS_H */
