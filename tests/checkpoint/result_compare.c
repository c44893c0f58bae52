/* result_compare.c - see result_compare.h. */
#include "result_compare.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "run" is the invocation's metadata (command line, host, start and end
 * times), not a result. */
static const char *const s_ignored[] = {"farm", "checkpoint_iterations", "run", NULL};

static int s_ignored_key(const char *k, const char *const *extra)
{
    if (!k)
        return 0;
    if (strstr(k, "time"))
        return 1;
    for (size_t i = 0; s_ignored[i]; i++)
        if (strcmp(k, s_ignored[i]) == 0)
            return 1;
    for (size_t i = 0; extra && extra[i]; i++)
        if (strcmp(k, extra[i]) == 0)
            return 1;
    return 0;
}

static int s_num_equal(double x, double y)
{
    if (isnan(x) && isnan(y))
        return 1;
    return x == y;  /* exact on purpose: a continuation is bit for bit */
}

/* 0 if equal; else 1 and path filled with the first difference. */
static int s_cmp(const cJSON *a, const cJSON *b, const char *const *extra,
                 char *path, size_t len)
{
    size_t here = strlen(path);
    if ((a->type & 0xFF) != (b->type & 0xFF)) {
        snprintf(path + here, len - here, " (types differ)");
        return 1;
    }
    if (cJSON_IsNumber(a)) {
        if (!s_num_equal(a->valuedouble, b->valuedouble)) {
            snprintf(path + here, len - here, " (%.17g vs %.17g)", a->valuedouble,
                     b->valuedouble);
            return 1;
        }
        return 0;
    }
    if (cJSON_IsString(a)) {
        if (strcmp(a->valuestring, b->valuestring) != 0) {
            snprintf(path + here, len - here, " ('%.40s' vs '%.40s')", a->valuestring,
                     b->valuestring);
            return 1;
        }
        return 0;
    }
    if (cJSON_IsArray(a)) {
        int na = cJSON_GetArraySize(a), nb = cJSON_GetArraySize(b);
        if (na != nb) {
            snprintf(path + here, len - here, " (lengths %d vs %d)", na, nb);
            return 1;
        }
        const cJSON *x = a->child, *y = b->child;
        for (int i = 0; x && y; i++, x = x->next, y = y->next) {
            snprintf(path + here, len - here, "[%d]", i);
            if (s_cmp(x, y, extra, path, len))
                return 1;
            path[here] = '\0';
        }
        return 0;
    }
    if (cJSON_IsObject(a)) {
        for (const cJSON *x = a->child; x; x = x->next) {
            if (s_ignored_key(x->string, extra))
                continue;
            snprintf(path + here, len - here, "%s%s", here ? "." : "", x->string);
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
            if (!y) {
                snprintf(path + strlen(path), len - strlen(path), " (only in the first)");
                return 1;
            }
            if (s_cmp(x, y, extra, path, len))
                return 1;
            path[here] = '\0';
        }
        for (const cJSON *y = b->child; y; y = y->next) {
            if (!s_ignored_key(y->string, extra)
                && !cJSON_GetObjectItemCaseSensitive(a, y->string)) {
                snprintf(path + here, len - here, "%s%s (only in the second)",
                         here ? "." : "", y->string);
                return 1;
            }
        }
        return 0;
    }
    return 0;  /* true, false, null: equal types suffice */
}

/* Python's json (and nessai) writes NaN, Infinity and -Infinity as bare
 * words, which cJSON does not accept: quote them outside strings so they
 * compare as the strings "NaN", "Infinity", "-Infinity". Caller frees. */
static char *s_quote_nonfinite(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(3 * n + 1);  /* each word grows by 2 */
    if (!o)
        return NULL;
    static const char *const words[] = {"-Infinity", "Infinity", "NaN"};
    size_t j = 0;
    int in_str = 0;
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (in_str) {
            o[j++] = c;
            if (c == '\\' && i + 1 < n)
                o[j++] = s[++i];
            else if (c == '"')
                in_str = 0;
            i++;
            continue;
        }
        if (c == '"') {
            in_str = 1;
            o[j++] = s[i++];
            continue;
        }
        size_t k = 0;
        for (; k < 3; k++) {
            size_t w = strlen(words[k]);
            if (strncmp(s + i, words[k], w) == 0) {
                o[j++] = '"';
                memcpy(o + j, words[k], w);
                j += w;
                o[j++] = '"';
                i += w;
                break;
            }
        }
        if (k == 3)
            o[j++] = s[i++];
    }
    o[j] = '\0';
    return o;
}

static cJSON *s_parse_file(const char *p, char *why, size_t len)
{
    FILE *fp = fopen(p, "rb");
    if (!fp) {
        snprintf(why, len, "cannot open %s", p);
        return NULL;
    }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    size_t got = s ? fread(s, 1, (size_t)n, fp) : 0;
    fclose(fp);
    if (!s) {
        snprintf(why, len, "cannot read %s", p);
        return NULL;
    }
    s[got] = '\0';
    char *q = s_quote_nonfinite(s);
    free(s);
    cJSON *j = q ? cJSON_Parse(q) : NULL;
    free(q);
    if (!j)
        snprintf(why, len, "%s is not valid JSON", p);
    return j;
}

int rc_compare_files(const char *a, const char *b, const char *const *extra_ignore,
                     char *why, size_t len)
{
    cJSON *ja = s_parse_file(a, why, len);
    if (!ja)
        return -1;
    cJSON *jb = s_parse_file(b, why, len);
    if (!jb) {
        cJSON_Delete(ja);
        return -1;
    }
    char path[1024] = "";
    int rv = s_cmp(ja, jb, extra_ignore, path, sizeof path);
    if (rv)
        snprintf(why, len, "first difference at %s", path);
    else
        snprintf(why, len, "identical");
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    return rv;
}

double rc_top_number(const char *path, const char *key)
{
    char why[512];
    cJSON *j = s_parse_file(path, why, sizeof why);
    const cJSON *v = j ? cJSON_GetObjectItemCaseSensitive(j, key) : NULL;
    double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(j);
    return x;
}
