/* plugin.c - load a model plugin, validate what it declares, call it safely. */
#include "nessai/plugin.h"
#include "nessai/error.h"
#include "nessai/util.h"

#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

/* The loader reads a field only if the plugin's struct is large enough to
 * contain it (struct_size), so older plugins keep working as fields are
 * appended. These are the fields ABI 1 requires. */
#define S_HAS(desc, field) \
    ((desc)->struct_size >= offsetof(nessai_model_t, field) + sizeof((desc)->field))

struct ns_model {
    void *dl;                          /* dlopen handle */
    const nessai_model_t *desc;        /* plugin's static description */
    void *ctx;                         /* plugin context from init() */
    nessai_model_info_t info;          /* what init() declared */
    char *path;                        /* absolute path of the plugin */
    char *args;                        /* --model-args */
    char hash[41];                     /* hex SHA-1 of the plugin file */
    double log_volume;                 /* sum log(upper - lower) */
    int (*new_point)(void *, const nessai_rng_api_t *, size_t, double *);
    int (*new_point_log_prob)(void *, const double *, size_t, double *);
    int (*log_prior)(void *, const double *, size_t, double *);
    const char *(*last_error)(void *);
    int (*to_cube)(void *, const double *, size_t, double *);
    int (*from_cube)(void *, const double *, size_t, double *);
    const char *context_name;          /* name given by the context, or NULL */
    char error[512];                   /* last failure message */
};

/* Lower-case hex SHA-1 (OpenSSL's EVP digest interface). A digest is begun
 * with s_sha1_begin, fed with s_sha1_update and written out (and freed) by
 * s_sha1_end, which also frees it when bad is set. */
static EVP_MD_CTX *s_sha1_begin(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

static int s_sha1_update(EVP_MD_CTX *ctx, const void *data, size_t n)
{
    return EVP_DigestUpdate(ctx, data, n) == 1 ? NS_OK : NS_ERR_IO;
}

static int s_sha1_end(EVP_MD_CTX *ctx, int bad, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!bad && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 20))
        bad = 1;
    EVP_MD_CTX_free(ctx);
    if (bad)
        return NS_ERR_IO;
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < 20; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[40] = '\0';
    return NS_OK;
}

/* Hex SHA-1 of the file's bytes. */
static int s_hash_file(const char *path, char out[41])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NS_ERR_IO;
    EVP_MD_CTX *ctx = s_sha1_begin();
    if (!ctx) {
        fclose(f);
        return NS_ERR_NOMEM;
    }
    unsigned char buf[65536];
    size_t n;
    int bad = 0;
    while (!bad && (n = fread(buf, 1, sizeof buf, f)) > 0)
        bad = s_sha1_update(ctx, buf, n) != NS_OK;
    bad = bad || ferror(f);
    fclose(f);
    return s_sha1_end(ctx, bad, out);
}

/* hash = SHA-1 of (hash, "\n", identity): the plugin build and what the
 * model declares its values depend on (nessai_model_t.identity). */
static int s_hash_mix(char hash[41], const char *identity)
{
    EVP_MD_CTX *ctx = s_sha1_begin();
    if (!ctx)
        return NS_ERR_NOMEM;
    int bad = s_sha1_update(ctx, hash, strlen(hash)) != NS_OK ||
              s_sha1_update(ctx, "\n", 1) != NS_OK ||
              s_sha1_update(ctx, identity, strlen(identity)) != NS_OK;
    return s_sha1_end(ctx, bad, hash);
}

/* A Python model, "file.py" or "file.py:Class" (docs/python.md), runs in the
 * Python plugin: $NESSAI_PYTHON_PLUGIN, else the one built with this program.
 * Returns 0 if path is no Python model; 1 with plugin = the plugin's path and
 * source = path with the file made absolute; -1 with a reason in err. */
static int s_python_model(const char *path, char plugin[PATH_MAX], char *source, size_t srclen,
                          char *err, size_t errlen)
{
    const char *colon = strstr(path, ".py:");
    size_t flen = colon ? (size_t)(colon - path) + 3 : strlen(path);
    if (flen < 3 || strncmp(path + flen - 3, ".py", 3) != 0)
        return 0;
    char file[PATH_MAX], real[PATH_MAX];
    if (flen >= sizeof file) {
        ns_errf(err, errlen, "model file name '%s' is too long", path);
        return -1;
    }
    memcpy(file, path, flen);
    file[flen] = '\0';
    if (!realpath(file, real)) {
        ns_errf(err, errlen, "model file '%s' not found: check the --model path", file);
        return -1;
    }
    /* $NESSAI_PYTHON_PLUGIN, else the installed one (its place relative to
     * the running program is fixed at build time), else this build's. */
    const char *env = getenv("NESSAI_PYTHON_PLUGIN");
    char dir[PATH_MAX];
    char *installed = ns_exe_dir(dir, sizeof dir) == 0
                          ? ns_path_join(dir, NESSAI_PYTHON_PLUGIN_FROM_BIN) : NULL;
    const char *use = env && *env ? env
                      : installed && access(installed, R_OK) == 0 ? installed
                                                                  : NESSAI_PYTHON_PLUGIN_PATH;
    int found = realpath(use, plugin) != NULL;
    if (!found)
        ns_errf(err, errlen, "cannot run the Python model '%s': the Python plugin %s was not "
                "found (install nessai-farm, build the nessai_python target, or set "
                "NESSAI_PYTHON_PLUGIN)", path, use);
    free(installed);
    if (!found)
        return -1;
    if ((size_t)snprintf(source, srclen, "%s%s", real, colon ? colon + 3 : "") >= srclen) {
        ns_errf(err, errlen, "model file name '%s' is too long", path);
        return -1;
    }
    return 1;
}

static int s_validate_info(const nessai_model_info_t *info, char *err, size_t errlen)
{
    if (info->dim < 2) {
        ns_errf(err, errlen, "model declares dimension %d; nessai needs at least 2 parameters",
                info->dim);
        return NS_ERR_MODEL;
    }
    if (!info->names || !info->lower || !info->upper) {
        ns_errf(err, errlen, "model init left names or bounds unset");
        return NS_ERR_MODEL;
    }
    for (int i = 0; i < info->dim; i++) {
        if (!info->names[i] || !info->names[i][0]) {
            ns_errf(err, errlen, "model parameter %d has no name", i);
            return NS_ERR_MODEL;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(info->names[i], info->names[j]) == 0) {
                ns_errf(err, errlen, "model parameter name '%s' is used twice", info->names[i]);
                return NS_ERR_MODEL;
            }
        if (!isfinite(info->lower[i]) || !isfinite(info->upper[i]) ||
            !(info->upper[i] > info->lower[i])) {
            ns_errf(err, errlen,
                    "model parameter '%s' has bounds [%g, %g]; they must be finite with upper > lower",
                    info->names[i], info->lower[i], info->upper[i]);
            return NS_ERR_MODEL;
        }
    }
    return NS_OK;
}

int ns_model_load(const char *path, const char *args, ns_model_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !*path) {
        ns_errf(err, errlen, "no model given: pass --model PATH to a model plugin (lib<name>.so)");
        return NS_ERR_INVAL;
    }
    char real[PATH_MAX], source[PATH_MAX + 256] = "";
    int py = s_python_model(path, real, source, sizeof source, err, errlen);
    if (py < 0)
        return NS_ERR_INVAL;
    if (!py && !realpath(path, real)) {
        ns_errf(err, errlen, "model plugin '%s' not found: check the --model path", path);
        return NS_ERR_INVAL;
    }
    ns_model_t *self = calloc(1, sizeof *self);
    if (!self)
        return NS_ERR_NOMEM;
    self->path = strdup(py ? source : real);
    self->args = strdup(args ? args : "");
    if (!self->path || !self->args) {
        ns_model_destroy(&self);
        return NS_ERR_NOMEM;
    }
    if (s_hash_file(real, self->hash) != NS_OK) {
        ns_errf(err, errlen, "cannot read model plugin '%s'", real);
        ns_model_destroy(&self);
        return NS_ERR_MODEL;
    }
    self->dl = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!self->dl) {
        ns_errf(err, errlen, "cannot load model plugin '%s': %s", real, dlerror());
        ns_model_destroy(&self);
        return NS_ERR_MODEL;
    }
    void *sym = dlsym(self->dl, NESSAI_MODEL_ENTRY_SYMBOL);
    if (!sym) {
        ns_errf(err, errlen, "'%s' is not a nessai model plugin: it does not export %s()",
                real, NESSAI_MODEL_ENTRY_SYMBOL);
        ns_model_destroy(&self);
        return NS_ERR_MODEL;
    }
    nessai_model_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    const nessai_model_t *desc = entry();
    if (!desc) {
        ns_errf(err, errlen, "model plugin '%s' returned no description", real);
        ns_model_destroy(&self);
        return NS_ERR_MODEL;
    }
    if (desc->abi_version != NESSAI_MODEL_ABI_VERSION) {
        ns_errf(err, errlen, "model plugin '%s' was built for ABI version %u, this program uses %u: rebuild it against this nessai/model.h",
                real, desc->abi_version, NESSAI_MODEL_ABI_VERSION);
        ns_model_destroy(&self);
        return NS_ERR_MODEL;
    }
    if (!S_HAS(desc, log_likelihood) || !desc->name || !desc->init || !desc->log_likelihood) {
        ns_errf(err, errlen, "model plugin '%s' lacks a name, init() or log_likelihood()", real);
        ns_model_destroy(&self);
        return NS_ERR_MODEL;
    }
    self->desc = desc;
    if (S_HAS(desc, log_prior))
        self->log_prior = desc->log_prior;
    if (S_HAS(desc, new_point_log_prob)) {
        self->new_point = desc->new_point;
        self->new_point_log_prob = desc->new_point_log_prob;
    }
    if (S_HAS(desc, last_error))
        self->last_error = desc->last_error;
    if (S_HAS(desc, from_unit_hypercube)) {
        self->to_cube = desc->to_unit_hypercube;
        self->from_cube = desc->from_unit_hypercube;
    }
    if ((self->new_point == NULL) != (self->new_point_log_prob == NULL)) {
        ns_errf(err, errlen, "model '%s' defines only one of new_point and new_point_log_prob: define both or neither",
                desc->name);
        self->desc = NULL;
        ns_model_destroy(&self);
        return NS_ERR_MODEL;
    }
    if ((self->to_cube == NULL) != (self->from_cube == NULL)) {
        ns_errf(err, errlen, "model '%s' defines only one of to_unit_hypercube and from_unit_hypercube: "
                "define both or neither", desc->name);
        self->desc = NULL;
        ns_model_destroy(&self);
        return NS_ERR_MODEL;
    }
    self->info.struct_size = sizeof self->info;
    self->info.truth_log_evidence = NAN;
    char perr[512] = "";
    int rc;
    if (!py)
        rc = desc->init(self->args, &self->ctx, &self->info, perr, sizeof perr);
    else if (S_HAS(desc, init_source) && desc->init_source)
        rc = desc->init_source(source, self->args, &self->ctx, &self->info, perr, sizeof perr);
    else
        rc = snprintf(perr, sizeof perr, "plugin '%s' cannot load source files", real) > 0;
    if (rc != 0) {
        ns_errf(err, errlen, "model '%s' failed to initialise with args '%s': %s",
                    py ? source : desc->name, self->args, perr[0] ? perr : "no reason given");
        self->ctx = NULL;
        self->desc = NULL;
        ns_model_destroy(&self);
        return NS_ERR_MODEL;
    }
    /* declarations past what the plugin says it filled in are absent */
    if (self->info.struct_size < offsetof(nessai_model_info_t, reparameterisations) +
                                     sizeof self->info.reparameterisations) {
        self->info.periodic = NULL;
        self->info.period = NULL;
        self->info.reparameterisations = NULL;
    }
    if ((rc = s_validate_info(&self->info, err, errlen)) != NS_OK) {
        ns_model_destroy(&self);
        return rc;
    }
    if (self->info.absent_methods & NESSAI_MODEL_NO_LOG_PRIOR)
        self->log_prior = NULL;
    if (self->info.absent_methods & NESSAI_MODEL_NO_NEW_POINT) {
        self->new_point = NULL;
        self->new_point_log_prob = NULL;
    }
    if (self->info.absent_methods & NESSAI_MODEL_NO_UNIT_HYPERCUBE) {
        self->to_cube = NULL;
        self->from_cube = NULL;
    }
    if (S_HAS(desc, context_name) && desc->context_name)
        self->context_name = desc->context_name(self->ctx);
    const char *identity = S_HAS(desc, identity) && desc->identity ? desc->identity(self->ctx) : NULL;
    if (identity && s_hash_mix(self->hash, identity) != NS_OK) {
        ns_model_destroy(&self);
        return NS_ERR_NOMEM;
    }
    self->log_volume = 0.0;
    for (int i = 0; i < self->info.dim; i++)
        self->log_volume += log(self->info.upper[i] - self->info.lower[i]);
    *out = self;
    return NS_OK;
}

void ns_model_destroy(ns_model_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ns_model_t *self = *self_p;
    if (self->desc && self->desc->fini && self->ctx)
        self->desc->fini(self->ctx);
    if (self->dl)
        dlclose(self->dl);
    free(self->path);
    free(self->args);
    free(self);
    *self_p = NULL;
}

const char *ns_model_name(const ns_model_t *self)
{
    return self->context_name && *self->context_name ? self->context_name : self->desc->name;
}
int ns_model_dim(const ns_model_t *self) { return self->info.dim; }
const char *const *ns_model_param_names(const ns_model_t *self) { return self->info.names; }

void ns_model_point_text(const ns_model_t *self, const double *x, char *buf, size_t len)
{
    if (!len)
        return;
    size_t used = (size_t)snprintf(buf, len, "(");
    for (size_t j = 0; j < (size_t)self->info.dim && used < len; j++) {
        if (j == 6) {
            used += (size_t)snprintf(buf + used, len - used, ", ...");
            break;
        }
        used += (size_t)snprintf(buf + used, len - used, "%s%s=%.4g", j ? ", " : "",
                                 self->info.names[j], x[j]);
    }
    if (used < len)
        snprintf(buf + used, len - used, ")");
}
const double *ns_model_lower(const ns_model_t *self) { return self->info.lower; }
const double *ns_model_upper(const ns_model_t *self) { return self->info.upper; }
double ns_model_truth(const ns_model_t *self) { return self->info.truth_log_evidence; }
const int *ns_model_periodic(const ns_model_t *self) { return self->info.periodic; }
const double *ns_model_period(const ns_model_t *self) { return self->info.period; }
const char *const *ns_model_reparameterisations(const ns_model_t *self)
{
    return self->info.reparameterisations;
}
const char *ns_model_path(const ns_model_t *self) { return self->path; }
const char *ns_model_args(const ns_model_t *self) { return self->args; }
const char *ns_model_hash(const ns_model_t *self) { return self->hash; }
const char *ns_model_last_error(const ns_model_t *self) { return self->error; }
int ns_model_has_custom_new_point(const ns_model_t *self) { return self->new_point != NULL; }

static int s_failed(ns_model_t *self, const char *what, int rc)
{
    const char *why = self->last_error ? self->last_error(self->ctx) : NULL;
    snprintf(self->error, sizeof self->error, "model '%s': %s failed with code %d%s%s",
             ns_model_name(self), what, rc, why && *why ? ": " : "", why && *why ? why : "");
    return NS_ERR_MODEL;
}

int ns_model_log_likelihood(ns_model_t *self, const double *x, size_t n, double *logl)
{
    if (n == 0)
        return NS_OK;
    int rc = self->desc->log_likelihood(self->ctx, x, n, logl);
    return rc ? s_failed(self, "log_likelihood", rc) : NS_OK;
}

int ns_model_in_bounds(const ns_model_t *self, const double *x)
{
    for (int j = 0; j < self->info.dim; j++)
        if (!(x[j] >= self->info.lower[j] && x[j] <= self->info.upper[j]))
            return 0;
    return 1;
}

int ns_model_log_prior(ns_model_t *self, const double *x, size_t n, double *logp)
{
    if (n == 0)
        return NS_OK;
    if (self->log_prior) {
        int rc = self->log_prior(self->ctx, x, n, logp);
        return rc ? s_failed(self, "log_prior", rc) : NS_OK;
    }
    size_t d = (size_t)self->info.dim;
    for (size_t i = 0; i < n; i++)
        logp[i] = ns_model_in_bounds(self, x + i * d) ? -self->log_volume : -INFINITY;
    return NS_OK;
}

int ns_model_new_point(ns_model_t *self, ns_rng_t *rng, size_t n, double *x)
{
    if (n == 0)
        return NS_OK;
    size_t d = (size_t)self->info.dim;
    if (self->new_point) {
        nessai_rng_api_t api = ns_rng_api(rng);
        int rc = self->new_point(self->ctx, &api, n, x);
        return rc ? s_failed(self, "new_point", rc) : NS_OK;
    }
    /* Uniform in the bounds, redrawn until the log-prior is finite
     * (a user prior may be narrower than the bounds). */
    const double *lo = self->info.lower, *hi = self->info.upper;
    double logp;
    for (size_t i = 0; i < n; i++) {
        for (int tries = 0;; tries++) {
            for (size_t j = 0; j < d; j++)
                x[i * d + j] = lo[j] + (hi[j] - lo[j]) * ns_rng_uniform(rng);
            if (!self->log_prior)
                break;
            int rc = ns_model_log_prior(self, x + i * d, 1, &logp);
            if (rc)
                return rc;
            if (isfinite(logp))
                break;
            if (tries > 1000000) {
                snprintf(self->error, sizeof self->error,
                         "model '%s': no point with a finite log-prior in 1e6 draws from the bounds",
                         ns_model_name(self));
                return NS_ERR_MODEL;
            }
        }
    }
    return NS_OK;
}

int ns_model_new_point_log_prob(ns_model_t *self, const double *x, size_t n, double *logq)
{
    if (self->new_point_log_prob) {
        int rc = self->new_point_log_prob(self->ctx, x, n, logq);
        return rc ? s_failed(self, "new_point_log_prob", rc) : NS_OK;
    }
    for (size_t i = 0; i < n; i++)
        logq[i] = 0.0;
    return NS_OK;
}

int ns_model_has_unit_hypercube(const ns_model_t *self) { return self->from_cube != NULL; }

int ns_model_to_unit_hypercube(ns_model_t *self, const double *x, size_t n, double *u)
{
    if (n == 0)
        return NS_OK;
    if (self->to_cube) {
        int rc = self->to_cube(self->ctx, x, n, u);
        return rc ? s_failed(self, "to_unit_hypercube", rc) : NS_OK;
    }
    size_t d = (size_t)self->info.dim;
    const double *lo = self->info.lower, *hi = self->info.upper;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            u[i * d + j] = (x[i * d + j] - lo[j]) / (hi[j] - lo[j]);
    return NS_OK;
}

int ns_model_from_unit_hypercube(ns_model_t *self, const double *u, size_t n, double *x)
{
    if (n == 0)
        return NS_OK;
    if (self->from_cube) {
        int rc = self->from_cube(self->ctx, u, n, x);
        return rc ? s_failed(self, "from_unit_hypercube", rc) : NS_OK;
    }
    size_t d = (size_t)self->info.dim;
    const double *lo = self->info.lower, *hi = self->info.upper;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = lo[j] + (hi[j] - lo[j]) * u[i * d + j];
    return NS_OK;
}

void ns_model_log_prior_unit_hypercube(const ns_model_t *self, const double *u,
                                       const double *logp, size_t n, double *logu)
{
    size_t d = (size_t)self->info.dim;
    for (size_t i = 0; i < n; i++) {
        int in = 1;
        for (size_t j = 0; j < d && in; j++)
            in = u[i * d + j] >= 0.0 && u[i * d + j] < 1.0;
        if (!in)
            logu[i] = -INFINITY;
        else if (self->from_cube)
            logu[i] = 0.0;
        else
            logu[i] = isfinite(logp[i]) ? logp[i] + self->log_volume : -INFINITY;
    }
}
