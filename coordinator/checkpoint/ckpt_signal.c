/* ckpt_signal.c - SIGTERM, SIGINT and SIGALRM raise the interrupt flag. */
#include "checkpoint.h"

#include "nessai/error.h"
#include "nessai/util.h"

#include <czmq.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>

static const int s_signals[] = {SIGTERM, SIGINT, SIGALRM};
#define S_NSIG (sizeof s_signals / sizeof s_signals[0])

static struct sigaction s_previous[S_NSIG];  /* dispositions before install */
static int s_installed = 0;                  /* 1 between install and restore */

/* Async-signal-safe: ns_interrupt_request stores to a sig_atomic_t and
 * nothing else happens here; the sampling loop acts on the flag. */
static void s_on_signal(int signum)
{
    int saved = errno;
    ns_interrupt_request(signum);
    errno = saved;
}

int ns_ckpt_signals_install(void)
{
    /* CZMQ installs SIGINT/SIGTERM handlers of its own when the farm makes
     * its first socket, replacing these; told before, it leaves them. The
     * setting is this process's only (children are not affected). */
    zsys_handler_set(NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    /* SA_RESTART: file writes and reads in progress complete; waits that
     * must wake up early (zmq_poll) return EINTR regardless. */
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < S_NSIG; i++)
        sigaddset(&sa.sa_mask, s_signals[i]);
    for (size_t i = 0; i < S_NSIG; i++) {
        struct sigaction prev;
        if (sigaction(s_signals[i], &sa, &prev) != 0)
            return NS_ERR_STATE;
        if (!s_installed)
            s_previous[i] = prev;
    }
    s_installed = 1;
    /* A signal left blocked by whoever started us would never arrive. */
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < S_NSIG; i++)
        sigaddset(&set, s_signals[i]);
    if (sigprocmask(SIG_UNBLOCK, &set, NULL) != 0)
        return NS_ERR_STATE;
    return NS_OK;
}

void ns_ckpt_signals_restore(void)
{
    if (!s_installed)
        return;
    for (size_t i = 0; i < S_NSIG; i++)
        sigaction(s_signals[i], &s_previous[i], NULL);
    s_installed = 0;
}

int ns_ckpt_signals_installed(void)
{
    for (size_t i = 0; i < S_NSIG; i++) {
        struct sigaction cur;
        if (sigaction(s_signals[i], NULL, &cur) != 0 || cur.sa_handler != s_on_signal)
            return 0;
    }
    return 1;
}

int ns_ckpt_max_runtime_arm(double seconds)
{
    struct itimerval it;
    memset(&it, 0, sizeof it);
    if (!isnan(seconds) && seconds > 0) {
        if (isinf(seconds) || seconds > 1e9)
            return NS_ERR_INVAL;
        it.it_value.tv_sec = (time_t)seconds;
        it.it_value.tv_usec = (suseconds_t)((seconds - (double)it.it_value.tv_sec) * 1e6);
        if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
            it.it_value.tv_usec = 1;
    }
    return setitimer(ITIMER_REAL, &it, NULL) == 0 ? NS_OK : NS_ERR_INVAL;
}

int ns_ckpt_exit_status_after_signal(int checkpoint_written, int exit_code)
{
    return checkpoint_written ? exit_code : 1;
}
