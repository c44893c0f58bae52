/* options.c - one option table for command line, INI file, --help, config.json. */
#include "nessai/options.h"
#include "nessai/error.h"
#include "nessai/util.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { S_UNSET = 0, S_DEFAULT, S_FILE, S_CLI };

typedef struct {
    char *text;     /* value as given, NULL when unset */
    long i;         /* parsed INT / BOOL */
    double d;       /* parsed DOUBLE */
    int source;     /* S_* */
} s_value_t;

struct ns_config {
    const ns_option_t *table;   /* borrowed */
    size_t n;
    s_value_t *values;          /* one per table entry */
};

/* Index of an option by name; '_' and '-' are the same. -1 if unknown. */
static long s_find(const ns_config_t *self, const char *name, size_t len)
{
    for (size_t k = 0; k < self->n; k++) {
        const char *o = self->table[k].name;
        if (strlen(o) != len)
            continue;
        size_t i = 0;
        for (; i < len; i++) {
            char a = name[i] == '_' ? '-' : name[i], b = o[i];
            if (a != b)
                break;
        }
        if (i == len)
            return (long)k;
    }
    return -1;
}

static int s_parse_bool(const char *s, long *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) { *out = 1; return NS_OK; }
        if (strcasecmp(s, no[i]) == 0) { *out = 0; return NS_OK; }
    }
    return NS_ERR_INVAL;
}

static int s_in_choices(const char *choices, const char *s)
{
    size_t len = strlen(s);
    const char *p = choices;
    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, s, n) == 0)
            return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

static void s_bounds_text(const ns_option_t *o, char *buf, size_t len)
{
    buf[0] = '\0';
    if (o->type != NS_OPT_INT && o->type != NS_OPT_DOUBLE)
        return;
    int lo = !isnan(o->min) && !isinf(o->min), hi = !isnan(o->max) && !isinf(o->max);
    if (lo && hi)
        snprintf(buf, len, "between %.15g and %.15g", o->min, o->max);
    else if (lo)
        snprintf(buf, len, "at least %.15g", o->min);
    else if (hi)
        snprintf(buf, len, "at most %.15g", o->max);
}

/* Validate text for option k and store it with the given source. */
static int s_assign(ns_config_t *self, size_t k, const char *text, int source,
                    char *err, size_t errlen)
{
    const ns_option_t *o = &self->table[k];
    s_value_t v = {0};
    v.source = source;
    if (text == NULL || ((o->flags & NS_OPT_ALLOW_NONE) && strcasecmp(text, "none") == 0)) {
        free(self->values[k].text);
        self->values[k] = (s_value_t){NULL, 0, NAN, text ? source : S_UNSET};
        return NS_OK;
    }
    char bounds[96];
    s_bounds_text(o, bounds, sizeof bounds);
    switch (o->type) {
    case NS_OPT_INT: {
        double dv;
        if (ns_parse_long(text, &v.i) != NS_OK) {
            /* accept 1e3-style integers */
            if (ns_parse_double(text, &dv) != NS_OK || dv != floor(dv) || fabs(dv) > 9e15) {
                ns_errf(err, errlen, "--%s expects a whole number%s%s, got '%s'", o->name,
                        bounds[0] ? " " : "", bounds, text);
                return NS_ERR_INVAL;
            }
            v.i = (long)dv;
        }
        if ((!isnan(o->min) && (double)v.i < o->min) || (!isnan(o->max) && (double)v.i > o->max)) {
            ns_errf(err, errlen, "--%s must be %s, got %ld", o->name, bounds, v.i);
            return NS_ERR_INVAL;
        }
        v.d = (double)v.i;
        break;
    }
    case NS_OPT_DOUBLE:
        if (ns_parse_double(text, &v.d) != NS_OK || isnan(v.d)) {
            ns_errf(err, errlen, "--%s expects a number%s%s, got '%s'", o->name,
                    bounds[0] ? " " : "", bounds, text);
            return NS_ERR_INVAL;
        }
        if (isinf(v.d) && !(o->flags & NS_OPT_ALLOW_INF)) {
            ns_errf(err, errlen, "--%s must be finite, got '%s'", o->name, text);
            return NS_ERR_INVAL;
        }
        if (!isinf(v.d) && ((!isnan(o->min) && v.d < o->min) || (!isnan(o->max) && v.d > o->max))) {
            ns_errf(err, errlen, "--%s must be %s, got %s", o->name, bounds, text);
            return NS_ERR_INVAL;
        }
        if (isinf(v.d) && v.d < 0 && !isnan(o->min)) {
            ns_errf(err, errlen, "--%s must be %s, got %s", o->name, bounds, text);
            return NS_ERR_INVAL;
        }
        break;
    case NS_OPT_BOOL:
        if (s_parse_bool(text, &v.i) != NS_OK) {
            ns_errf(err, errlen, "--%s expects true or false, got '%s'", o->name, text);
            return NS_ERR_INVAL;
        }
        break;
    case NS_OPT_CHOICE:
        if (!s_in_choices(o->choices, text)) {
            ns_errf(err, errlen, "--%s must be one of %s, got '%s'", o->name, o->choices, text);
            return NS_ERR_INVAL;
        }
        break;
    case NS_OPT_FLAG:
        v.i = 1;
        break;
    case NS_OPT_STRING:
        break;
    }
    v.text = strdup(text);
    if (!v.text)
        return NS_ERR_NOMEM;
    free(self->values[k].text);
    self->values[k] = v;
    return NS_OK;
}

ns_config_t *ns_config_new(const ns_option_t *table, size_t n)
{
    ns_config_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->table = table;
    self->n = n;
    self->values = calloc(n ? n : 1, sizeof *self->values);
    if (!self->values) {
        free(self);
        return NULL;
    }
    char err[256];
    for (size_t k = 0; k < n; k++) {
        if (table[k].def && s_assign(self, k, table[k].def, S_DEFAULT, err, sizeof err) != NS_OK) {
            /* a bad default is a programming error in the table */
            fprintf(stderr, "internal error: default of option --%s: %s\n", table[k].name, err);
            abort();
        }
    }
    return self;
}

void ns_config_destroy(ns_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ns_config_t *self = *self_p;
    for (size_t k = 0; k < self->n; k++)
        free(self->values[k].text);
    free(self->values);
    free(self);
    *self_p = NULL;
}

int ns_config_set(ns_config_t *self, const char *name, const char *value, char *err, size_t errlen)
{
    long k = s_find(self, name, strlen(name));
    if (k < 0) {
        ns_errf(err, errlen, "unknown option '%s'", name);
        return NS_ERR_INVAL;
    }
    return s_assign(self, (size_t)k, value, S_CLI, err, errlen);
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int ns_config_load_file(ns_config_t *self, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        ns_errf(err, errlen, "cannot read config file '%s': check the --config path", path);
        return NS_ERR_INVAL;
    }
    char line[4096];
    int lineno = 0, rc = NS_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = s_trim(line);
        if (!*s || *s == '#' || *s == ';' || *s == '[')
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            eq = strchr(s, ':');
        if (!eq) {
            ns_errf(err, errlen, "%s:%d: expected 'name = value', got '%s'", path, lineno, s);
            rc = NS_ERR_INVAL;
            break;
        }
        *eq = '\0';
        char *key = s_trim(s), *val = s_trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && ((val[0] == '"' && val[vl - 1] == '"') || (val[0] == '\'' && val[vl - 1] == '\''))) {
            val[vl - 1] = '\0';
            val++;
        }
        long k = s_find(self, key, strlen(key));
        if (k < 0) {
            ns_errf(err, errlen, "%s:%d: unknown setting '%s' (see --help for the names)", path, lineno, key);
            rc = NS_ERR_INVAL;
            break;
        }
        if (self->table[k].flags & NS_OPT_CLI_ONLY || self->table[k].type == NS_OPT_FLAG) {
            ns_errf(err, errlen, "%s:%d: '%s' can only be given on the command line", path, lineno, key);
            rc = NS_ERR_INVAL;
            break;
        }
        char sub[256];
        if (s_assign(self, (size_t)k, val, S_FILE, sub, sizeof sub) != NS_OK) {
            ns_errf(err, errlen, "%s:%d: %s", path, lineno, sub);
            rc = NS_ERR_INVAL;
            break;
        }
    }
    fclose(f);
    return rc;
}

int ns_config_parse_args(ns_config_t *self, int argc, char **argv, char *err, size_t errlen)
{
    /* First pass: --config FILE, so the command line overrides the file. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *path = NULL;
        if (strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                ns_errf(err, errlen, "--config needs a file path");
                return NS_ERR_INVAL;
            }
            path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            path = a + 9;
        }
        if (path) {
            int rc = ns_config_load_file(self, path, err, errlen);
            if (rc)
                return rc;
            long k = s_find(self, "config", 6);
            if (k >= 0)
                s_assign(self, (size_t)k, path, S_CLI, err, errlen);
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            ns_errf(err, errlen, "unexpected argument '%s': options start with -- (see --help)", a);
            return NS_ERR_INVAL;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 6 && strncmp(name, "config", 6) == 0) {
            if (!eq)
                i++;
            continue;
        }
        long k = s_find(self, name, len);
        int negated = 0;
        if (k < 0 && len > 3 && strncmp(name, "no-", 3) == 0) {
            k = s_find(self, name + 3, len - 3);
            if (k >= 0 && self->table[k].type != NS_OPT_BOOL)
                k = -1;
            negated = 1;
        }
        if (k < 0) {
            ns_errf(err, errlen, "unknown option '--%.*s' (see --help)", (int)len, name);
            return NS_ERR_INVAL;
        }
        const ns_option_t *o = &self->table[k];
        const char *val = NULL;
        if (negated) {
            if (eq) {
                ns_errf(err, errlen, "--no-%s takes no value", o->name);
                return NS_ERR_INVAL;
            }
            val = "false";
        } else if (o->type == NS_OPT_FLAG) {
            if (eq) {
                ns_errf(err, errlen, "--%s takes no value", o->name);
                return NS_ERR_INVAL;
            }
            val = "1";
        } else if (eq) {
            val = eq + 1;
        } else if (o->type == NS_OPT_BOOL) {
            /* --flag alone means true; an explicit value may follow */
            long b;
            if (i + 1 < argc && s_parse_bool(argv[i + 1], &b) == NS_OK)
                val = argv[++i];
            else
                val = "true";
        } else {
            if (i + 1 >= argc) {
                ns_errf(err, errlen, "--%s needs a value", o->name);
                return NS_ERR_INVAL;
            }
            val = argv[++i];
        }
        int rc = s_assign(self, (size_t)k, val, S_CLI, err, errlen);
        if (rc)
            return rc;
    }
    return NS_OK;
}

static const s_value_t *s_get(const ns_config_t *self, const char *name)
{
    long k = s_find(self, name, strlen(name));
    if (k < 0) {
        fprintf(stderr, "internal error: option '%s' is not in the table\n", name);
        abort();
    }
    return &self->values[k];
}

int ns_config_is_set(const ns_config_t *self, const char *name) { return s_get(self, name)->text != NULL; }

int ns_config_user_set(const ns_config_t *self, const char *name)
{
    int s = s_get(self, name)->source;
    return s == S_FILE || s == S_CLI;
}

long ns_config_int(const ns_config_t *self, const char *name)
{
    const s_value_t *v = s_get(self, name);
    return v->text ? v->i : 0;
}

double ns_config_double(const ns_config_t *self, const char *name)
{
    const s_value_t *v = s_get(self, name);
    return v->text ? v->d : NAN;
}

int ns_config_bool(const ns_config_t *self, const char *name)
{
    const s_value_t *v = s_get(self, name);
    return v->text ? (int)v->i : 0;
}

const char *ns_config_str(const ns_config_t *self, const char *name) { return s_get(self, name)->text; }

static const char *s_metavar(const ns_option_t *o)
{
    switch (o->type) {
    case NS_OPT_INT: return " N";
    case NS_OPT_DOUBLE: return " X";
    case NS_OPT_STRING: return " STR";
    case NS_OPT_CHOICE: return " WORD";
    default: return "";
    }
}

/* Find the next hard line break: a newline followed by another newline or by
 * a space (an indented example line). A lone newline is just a space. */
static const char *s_hard_break(const char *p)
{
    for (const char *q = strchr(p, '\n'); q; q = strchr(q + 1, '\n'))
        if (q[1] == '\n' || q[1] == ' ' || q[1] == '\0')
            return q;
    return NULL;
}

/* Print text wrapped at width, each line indented by indent. */
static void s_wrap(FILE *out, const char *text, int indent, int width)
{
    const char *p = text;
    for (;;) {
        const char *nl = s_hard_break(p);
        size_t plen = nl ? (size_t)(nl - p) : strlen(p);
        int col = indent;
        fprintf(out, "%*s", indent, "");
        size_t i = 0;
        /* keep a line's leading spaces (indented example lines) */
        while (i < plen && p[i] == ' ') {
            fputc(' ', out);
            col++;
            i++;
        }
        int line_start = col;
        while (i < plen) {
            while (i < plen && (p[i] == ' ' || p[i] == '\n'))
                i++;
            size_t w = i;
            while (i < plen && p[i] != ' ' && p[i] != '\n')
                i++;
            int n = (int)(i - w);
            if (n == 0)
                break;
            if (col > line_start && col + 1 + n > width) {
                fprintf(out, "\n%*s", line_start, "");
                col = line_start;
            }
            if (col > line_start) {
                fputc(' ', out);
                col++;
            }
            fprintf(out, "%.*s", n, p + w);
            col += n;
        }
        fputc('\n', out);
        if (!nl || nl[1] == '\0')
            break;
        p = nl + 1;
    }
}

void ns_config_print_help(const ns_config_t *self, FILE *out, const char *usage, const char *description)
{
    if (usage)
        fprintf(out, "%s\n", usage);
    if (description) {
        fputc('\n', out);
        s_wrap(out, description, 0, 78);
    }
    const char *group = NULL;
    for (size_t k = 0; k < self->n; k++) {
        const ns_option_t *o = &self->table[k];
        const char *g = o->group ? o->group : "Options";
        if (!group || strcmp(group, g) != 0) {
            /* print each group once, at its first entry, with all its members */
            int seen = 0;
            for (size_t j = 0; j < k; j++)
                if (strcmp(self->table[j].group ? self->table[j].group : "Options", g) == 0)
                    seen = 1;
            group = g;
            if (seen)
                continue;
            fprintf(out, "\n%s:\n", g);
            for (size_t j = k; j < self->n; j++) {
                const ns_option_t *m = &self->table[j];
                if (strcmp(m->group ? m->group : "Options", g) != 0)
                    continue;
                char head[128];
                if (m->type == NS_OPT_BOOL)
                    snprintf(head, sizeof head, "  --%s, --no-%s", m->name, m->name);
                else
                    snprintf(head, sizeof head, "  --%s%s", m->name, s_metavar(m));
                fprintf(out, "%s\n", head);
                char extra[512] = "";
                size_t used = 0;
                if (m->type == NS_OPT_CHOICE)
                    used += (size_t)snprintf(extra + used, sizeof extra - used, " One of: %s.", m->choices);
                char bounds[96];
                s_bounds_text(m, bounds, sizeof bounds);
                if (bounds[0] && used < sizeof extra)
                    used += (size_t)snprintf(extra + used, sizeof extra - used, " Must be %s.", bounds);
                if (m->type != NS_OPT_FLAG && used < sizeof extra)
                    snprintf(extra + used, sizeof extra - used, " [default: %s]", m->def ? m->def : "none");
                char full[1024];
                snprintf(full, sizeof full, "%s%s", m->help ? m->help : "", extra);
                s_wrap(out, full, 8, 78);
            }
        }
    }
}

cJSON *ns_config_to_json(const ns_config_t *self)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj)
        return NULL;
    for (size_t k = 0; k < self->n; k++) {
        const ns_option_t *o = &self->table[k];
        const s_value_t *v = &self->values[k];
        if (o->type == NS_OPT_FLAG || (o->flags & NS_OPT_NO_DUMP))
            continue;
        char key[128];
        snprintf(key, sizeof key, "%s", o->name);
        for (char *p = key; *p; p++)
            if (*p == '-')
                *p = '_';
        cJSON *item;
        if (!v->text)
            item = cJSON_CreateNull();
        else if (o->type == NS_OPT_INT)
            item = cJSON_CreateNumber((double)v->i);
        else if (o->type == NS_OPT_DOUBLE)
            item = isinf(v->d) ? cJSON_CreateString(v->d > 0 ? "inf" : "-inf") : cJSON_CreateNumber(v->d);
        else if (o->type == NS_OPT_BOOL)
            item = cJSON_CreateBool((int)v->i);
        else
            item = cJSON_CreateString(v->text);
        if (!item) {
            cJSON_Delete(obj);
            return NULL;
        }
        cJSON_AddItemToObject(obj, key, item);
    }
    return obj;
}
