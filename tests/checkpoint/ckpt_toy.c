/* ckpt_toy.c - a small stand-in for the coordinator, driven by the
 * checkpoint controller exactly as main.c drives it: its state is a random
 * walk whose result depends on every draw, so a resumed run that lost or
 * repeated anything ends with another result. Used by test_ckpt_process. */
#include "checkpoint.h"

#include "nessai/error.h"
#include "nessai/log.h"
#include "nessai/options.h"
#include "nessai/rng.h"
#include "nessai/util.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ns_option_t s_toy_options[] = {
    {"output", NS_OPT_STRING, "outdir", NAN, NAN, NULL, 0, "Toy", "output directory"},
    {"seed", NS_OPT_INT, "1", 0, 1e9, NULL, 0, "Toy", "seed"},
    {"iterations", NS_OPT_INT, "3000", 1, 1e9, NULL, 0, "Toy", "iterations"},
    {"work", NS_OPT_INT, "20000", 0, 1e9, NULL, 0, "Toy", "draws per iteration"},
    {"model-name", NS_OPT_STRING, "toy", NAN, NAN, NULL, 0, "Toy", "name in the ident"},
    {"startup-wait", NS_OPT_BOOL, "false", NAN, NAN, NULL, 0, "Toy",
     "wait for a signal before the state exists"},
};

typedef struct {
    ns_rng_t *rng;
    uint64_t iteration;
    double acc;
} s_state_t;

static int s_save(void *p, ns_buf_t *b)
{
    s_state_t *st = p;
    ns_buf_put_tag(b, "TOY_", 1);
    ns_buf_put_u64(b, st->iteration);
    ns_buf_put_f64(b, st->acc);
    size_t n = ns_rng_state_size(st->rng);
    uint8_t *tmp = malloc(n);
    if (!tmp)
        return NS_ERR_NOMEM;
    ns_rng_state_save(st->rng, tmp);
    ns_buf_put_u64(b, n);
    ns_buf_put_bytes(b, tmp, n);
    free(tmp);
    return NS_OK;
}

static int s_load(s_state_t *st, const uint8_t *data, size_t len)
{
    ns_buf_t b;
    ns_buf_view(&b, data, len);
    uint32_t version;
    uint64_t n;
    int rv;
    if ((rv = ns_buf_get_tag(&b, "TOY_", &version)) || (rv = ns_buf_get_u64(&b, &st->iteration))
        || (rv = ns_buf_get_f64(&b, &st->acc)) || (rv = ns_buf_get_u64(&b, &n)))
        return rv;
    if (n != ns_rng_state_size(st->rng) || ns_buf_remaining(&b) != n)
        return NS_ERR_CORRUPT;
    return ns_rng_state_load(st->rng, b.data + b.pos, n);
}

static int s_write_result(const char *output, const s_state_t *st)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/result.txt", output);
    FILE *fp = fopen(path, "w");
    if (!fp)
        return NS_ERR_IO;
    fprintf(fp, "iterations=%llu acc=%a\n", (unsigned long long)st->iteration, st->acc);
    return fclose(fp) == 0 ? NS_OK : NS_ERR_IO;
}

static void s_say(const char *fmt, unsigned long long v)
{
    printf(fmt, v);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    /* Signals first: one arriving before there is state gives exit 1. */
    if (ns_ckpt_signals_install() != NS_OK)
        return 1;
    size_t n = ns_checkpoint_options_count + sizeof s_toy_options / sizeof s_toy_options[0];
    ns_option_t *table = malloc(n * sizeof *table);
    if (!table)
        return 1;
    memcpy(table, ns_checkpoint_options, ns_checkpoint_options_count * sizeof *table);
    memcpy(table + ns_checkpoint_options_count, s_toy_options, sizeof s_toy_options);
    ns_config_t *cfg = ns_config_new(table, n);
    char err[1024];
    if (!cfg || ns_config_parse_args(cfg, argc, argv, err, sizeof err) != NS_OK) {
        fprintf(stderr, "ckpt_toy: %s\n", cfg ? err : "out of memory");
        return 2;
    }
    const char *output = ns_config_str(cfg, "output");
    if (ns_mkdir_p(output) != NS_OK)
        return 1;
    ns_ckpt_ident_t id = {ns_config_str(cfg, "model-name"), "", 
                          "00000000000000000000000000000000000000aa", 2,
                          (uint64_t)ns_config_int(cfg, "seed")};
    ns_ckpt_ctl_t *ctl = ns_ckpt_ctl_new(cfg, output, &id, ns_config_user_set(cfg, "seed"));
    if (!ctl)
        return 1;
    int status = 1;
    s_state_t st = {0};

    if (ns_config_bool(cfg, "startup-wait")) {
        s_say("startup %llu\n", 0);
        double end = ns_now() + 30;
        while (!ns_interrupt_pending() && ns_now() < end)
            ;
    }
    if (ns_interrupt_pending()) {
        status = ns_ckpt_ctl_interrupted(ctl, 0, NULL, NULL);
        goto done;
    }

    st.rng = ns_rng_new(id.seed, 0);
    if (!st.rng)
        goto done;
    ns_ckpt_loaded_t ck;
    int rv = ns_ckpt_ctl_load(ctl, &ck, err, sizeof err);
    if (rv != NS_OK) {
        fprintf(stderr, "ckpt_toy: %s\n", err);
        status = ns_ckpt_load_exit_status(rv);
        goto done;
    }
    if (ck.payload && s_load(&st, ck.payload, ck.payload_len) != NS_OK) {
        fprintf(stderr, "ckpt_toy: checkpoint payload unreadable\n");
        ns_ckpt_loaded_clear(&ck);
        status = 2;
        goto done;
    }
    ns_ckpt_loaded_clear(&ck);
    if (ns_ckpt_ctl_start(ctl, 0.0) != NS_OK)
        goto done;

    uint64_t iters = (uint64_t)ns_config_int(cfg, "iterations");
    long work = ns_config_int(cfg, "work");
    int fresh = st.iteration == 0;
    while (st.iteration < iters) {
        for (long k = 0; k < work; k++)
            st.acc = st.acc * 0.999 + ns_rng_uniform(st.rng);
        st.iteration++;
        if (fresh || st.iteration % 50 == 0)
            s_say("iteration %llu\n", (unsigned long long)st.iteration);
        fresh = 0;
        rv = ns_ckpt_ctl_iteration(ctl, st.iteration, s_save, &st);
        if (rv == NS_ERR_INTERRUPTED) {
            status = ns_ckpt_ctl_interrupted(ctl, st.iteration, s_save, &st);
            goto done;
        }
    }
    if (ns_ckpt_ctl_save(ctl, st.iteration, s_save, &st) != NS_OK)
        goto done;
    status = s_write_result(output, &st) == NS_OK ? 0 : 1;
    s_say("done %llu\n", (unsigned long long)st.iteration);
done:
    ns_rng_destroy(&st.rng);
    ns_ckpt_ctl_destroy(&ctl);
    ns_config_destroy(&cfg);
    free(table);
    return status;
}
