/*
 * The ppdev backend: /dev/parportN through Linux's ppdev driver.
 *
 * Claiming with a timeout. PPCLAIM has no timeout and no non-blocking form,
 * and ppdev runs every ioctl under one global mutex, so a PPCLAIM that
 * sleeps waiting for the port also stops every other ppdev ioctl on the
 * machine -- including the PPRELEASE of the client that holds the port. A
 * blocking PPCLAIM on a busy port can therefore deadlock two clients. So:
 *   1. never call PPCLAIM while the port is held: the parport core names
 *      the current holder in /proc/sys/dev/parport/parportN/devices/active
 *      ("none" when free); poll it (every 5 ms, watching cancel_fd) until
 *      free or the deadline;
 *   2. then PPCLAIM from a helper thread, and wait for it with the deadline
 *      and cancel_fd; if another client won the race and the thread
 *      sleeps, interrupt it with a signal (a realtime signal with an empty
 *      handler, installed once if the process has none, and given back by
 *      the unload hook), which makes PPCLAIM return EINTR and drops the
 *      global mutex;
 *   3. after an interrupted PPCLAIM the kernel keeps us in its queue and may
 *      grant us the port later behind our back, so reopen the port (closing
 *      the file unregisters us and leaves the queue).
 * Exclusive (PPEXCL) registration happens at the first PPCLAIM, which open
 * performs; an exclusive registration never waits (it fails when anyone
 * else is registered), so exclusivity is settled in open.
 *
 * Reads and writes use O_NONBLOCK so ppdev returns after one inactivity
 * period; the loops here apply the transfer's deadline and cancel_fd.
 */
#define _GNU_SOURCE

#include "parallel_private.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/parport.h>
#include <linux/ppdev.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define PPDEV_MAJOR 99

typedef struct ppdev_state {
    int fd;
    int open_flags;
    unsigned port;           /* N of /dev/parportN (the minor) */
    char active_path[96];    /* /proc/sys/dev/parport/parportN/devices/active */
} ppdev_state;

static ppdev_state *state_of(par_device *d) { return (ppdev_state *)d->backend_state; }

static const int ieee_modes[VPORT_MODE_COUNT] = {
    IEEE1284_MODE_COMPAT, IEEE1284_MODE_NIBBLE, IEEE1284_MODE_BYTE, IEEE1284_MODE_ECP, IEEE1284_MODE_EPP,
};

static devhost_status os_fail(par_device *d, int e, const char *what, devhost_error *err)
{
    if (e == ENODEV) {
        d->removed = 1;
        return devhost_fail(err, DEVHOST_E_REMOVED, e, "%s: %s: the port went away", d->path, what);
    }
    return devhost_fail(err, DEVHOST_E_IO, e, "%s: %s: %s", d->path, what, strerror(e));
}

/* ---- the claim-interrupt signal ---- */

/* The signal, whether this plugin installed its handler (and what it
 * replaced, given back by unload), under one lock: devices of several
 * threads claim at once, and the library may be loaded again after unload. */
static int claim_signal;
static pthread_mutex_t claim_signal_lock = PTHREAD_MUTEX_INITIALIZER;
static int claim_signal_set;       /* install_claim_signal ran */
static int claim_signal_ours;      /* our handler is installed */
static struct sigaction claim_signal_previous;

static void claim_signal_handler(int sig) { (void)sig; }

static void install_claim_signal(void)
{
    struct sigaction old, sa;
    pthread_mutex_lock(&claim_signal_lock);
    if (claim_signal_set) {
        pthread_mutex_unlock(&claim_signal_lock);
        return;
    }
    claim_signal_set = 1;
    claim_signal = SIGRTMAX - 3;
    if (sigaction(claim_signal, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
        (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = claim_signal_handler;
        sigemptyset(&sa.sa_mask);
        if (sigaction(claim_signal, &sa, NULL) == 0) {
            claim_signal_previous = old;
            claim_signal_ours = 1;
        }
    }
    /* Otherwise the process has its own handler, which interrupts PPCLAIM
     * just as well (PPCLAIM returns EINTR whatever SA_RESTART says). */
    pthread_mutex_unlock(&claim_signal_lock);
}

void par_ppdev_unload(void)
{
    struct sigaction now;
    pthread_mutex_lock(&claim_signal_lock);
    /* Every device is closed, so no claim thread runs. Give the disposition
     * back only while our handler is still the one installed: a handler the
     * program set since is its own. */
    if (claim_signal_ours && sigaction(claim_signal, NULL, &now) == 0 && !(now.sa_flags & SA_SIGINFO) &&
        now.sa_handler == claim_signal_handler)
        sigaction(claim_signal, &claim_signal_previous, NULL);
    claim_signal_ours = 0;
    claim_signal_set = 0;
    pthread_mutex_unlock(&claim_signal_lock);
}

typedef struct claim_job {
    int fd;
    int event_fd;
    int result;  /* 0 or errno */
} claim_job;

static void *claim_thread(void *arg)
{
    claim_job *job = arg;
    sigset_t set;
    uint64_t one = 1;
    sigemptyset(&set);
    sigaddset(&set, claim_signal);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    job->result = ioctl(job->fd, PPCLAIM) == 0 ? 0 : errno;
    if (write(job->event_fd, &one, sizeof one) < 0) {
        /* cannot fail for an eventfd of ours; the joiner also checks */
    }
    return NULL;
}

/* Reopens the port after an interrupted PPCLAIM, leaving the kernel's queue. */
static devhost_status reopen(par_device *d, devhost_error *err)
{
    ppdev_state *s = state_of(d);
    int mode = IEEE1284_MODE_COMPAT, fd, was_shared = d->shared;
    /* Closing an unclaimed port in a non-compat mode makes ppdev wait for
     * the port inside close(); set compat first, restore after. */
    ioctl(s->fd, PPSETMODE, &mode);
    /* The host's copy first: while it is open the old file stays
     * registered and queued, and may be granted the port. The new file
     * is shared in its place (open shares it the first time). */
    par_unshare_fd(d);
    close(s->fd);
    s->fd = -1;
    fd = open(d->path, s->open_flags);
    if (fd < 0)
        return os_fail(d, errno, "reopen after an interrupted claim", err);
    s->fd = fd;
    mode = ieee_modes[d->mode];
    ioctl(s->fd, PPSETMODE, &mode);
    if (was_shared)
        par_share_fd(d, s->fd);
    return DEVHOST_OK;
}

/* PPCLAIM from a helper thread, waiting for it until deadline or cancel. */
static devhost_status claim_now(par_device *d, uint64_t deadline, devhost_error *err)
{
    ppdev_state *s = state_of(d);
    claim_job job;
    pthread_t thread;
    sigset_t all, old;
    devhost_status gave_up;
    int rc;
    install_claim_signal();
    job.fd = s->fd;
    job.result = -1;
    job.event_fd = eventfd(0, EFD_CLOEXEC);
    if (job.event_fd < 0)
        return os_fail(d, errno, "eventfd", err);
    /* The thread starts with every signal blocked and unblocks only ours. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&thread, NULL, claim_thread, &job);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(job.event_fd);
        return os_fail(d, rc, "pthread_create", err);
    }
    /* The thread's eventfd, the cancel handle and the deadline: OK when the
     * thread is out; else interrupt it, every 10 ms until it is out (a
     * signal that lands before the ioctl starts does not interrupt it). */
    gave_up = devhost_util_wait(job.event_fd, POLLIN, d->cancel_fd, deadline, NULL, NULL, NULL, NULL);
    if (gave_up != DEVHOST_OK) {
        do
            pthread_kill(thread, claim_signal);
        while (devhost_util_wait(job.event_fd, POLLIN, -1, devhost_util_deadline_ms(10), NULL, NULL, NULL, NULL) !=
               DEVHOST_OK);
    }
    pthread_join(thread, NULL);
    close(job.event_fd);
    if (job.result == 0) {
        if (!gave_up)
            return DEVHOST_OK;
        ioctl(s->fd, PPRELEASE);  /* got it just as we gave up */
    } else if (job.result == EINTR) {
        devhost_error ignored;
        devhost_util_error_init(&ignored);
        if (reopen(d, &ignored) != DEVHOST_OK)
            PAR_LOG(d, DEVHOST_LOG_WARN, "%s", ignored.message);
    } else if (!gave_up) {
        if (job.result == ENXIO)
            return devhost_fail(err, DEVHOST_E_BUSY, EBUSY,
                                d->exclusive
                                    ? "%s: exclusive access refused: another client or driver (e.g. lp) uses the port"
                                    : "%s: the port is held exclusively by another client or driver",
                                d->path);
        return os_fail(d, job.result, "PPCLAIM", err);
    }
    if (gave_up == DEVHOST_E_TIMEOUT)
        return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT, "%s: the port is still claimed by another client",
                            d->path);
    if (gave_up == DEVHOST_E_CANCELLED)
        return devhost_fail(err, DEVHOST_E_CANCELLED, 0, "%s: cancelled while waiting for the port", d->path);
    return devhost_fail(err, DEVHOST_E_IO, errno, "%s: poll while claiming: %s", d->path, strerror(errno));
}

/* 1: the port is free (or the holder cannot be read), 0: held. */
static int port_free(par_device *d)
{
    ppdev_state *s = state_of(d);
    char holder[64];
    size_t n;
    FILE *f = fopen(s->active_path, "re");
    if (!f)
        return 1;
    n = fread(holder, 1, sizeof holder - 1, f);
    fclose(f);
    holder[n] = '\0';
    return strncmp(holder, "none", 4) == 0;
}

static devhost_status ppdev_claim(par_device *d, uint64_t deadline, devhost_error *err)
{
    for (;;) {
        devhost_status st;
        if (devhost_util_cancelled(d->cancel_fd))
            return devhost_fail(err, DEVHOST_E_CANCELLED, 0, "%s: cancelled while waiting for the port", d->path);
        if (port_free(d)) {
            st = claim_now(d, deadline, err);
            if (st != DEVHOST_E_TIMEOUT || devhost_util_deadline_passed(deadline))
                return st;
            continue;  /* lost a race; the deadline has not passed */
        }
        st = par_sleep(d, 5, deadline, err);
        if (st == DEVHOST_E_TIMEOUT)
            return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT,
                                "%s: the port is still claimed by another client", d->path);
        if (st != DEVHOST_OK)
            return st;
    }
}

static devhost_status ppdev_release(par_device *d, devhost_error *err)
{
    if (ioctl(state_of(d)->fd, PPRELEASE) != 0)
        return os_fail(d, errno, "PPRELEASE", err);
    return DEVHOST_OK;
}

/* Opens the port and applies `exclusive` (ppdev_open's work). */
static devhost_status ppdev_open_port(par_device *d, const devhost_open_params *params, devhost_error *err)
{
    ppdev_state *s;
    struct stat st;
    devhost_status rc;
    if (stat(d->path, &st) != 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return devhost_fail(err, DEVHOST_E_NOT_FOUND, e, "%s: no such parallel port", d->path);
        return devhost_fail(err, e == EACCES ? DEVHOST_E_ACCESS : DEVHOST_E_IO, e, "%s: %s", d->path, strerror(e));
    }
    if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != PPDEV_MAJOR)
        return devhost_fail(err, DEVHOST_E_INVALID, 0,
                            "%s: not a ppdev port (expected a character device with major %d, like /dev/parport0)",
                            d->path, PPDEV_MAJOR);
    s = calloc(1, sizeof *s);
    if (!s)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "%s: out of memory", d->path);
    d->backend_state = s;
    s->port = minor(st.st_rdev);
    snprintf(s->active_path, sizeof s->active_path, "/proc/sys/dev/parport/parport%u/devices/active", s->port);
    s->open_flags = O_RDWR | O_NONBLOCK | ((params->flags & DEVHOST_OPEN_INHERIT) ? 0 : O_CLOEXEC);
    s->fd = open(d->path, s->open_flags);
    if (s->fd < 0) {
        int e = errno;
        if (e == ENXIO || e == ENODEV || e == ENOENT)
            return devhost_fail(err, DEVHOST_E_NOT_FOUND, e, "%s: no parallel port behind it (%s)", d->path,
                                strerror(e));
        if (e == EACCES || e == EPERM)
            return devhost_fail(err, DEVHOST_E_ACCESS, e, "%s: %s", d->path, strerror(e));
        return devhost_fail(err, DEVHOST_E_IO, e, "%s: open: %s", d->path, strerror(e));
    }
    if (d->exclusive && ioctl(s->fd, PPEXCL) != 0)
        return os_fail(d, errno, "PPEXCL", err);
    /* Register with the parport core now (a claim and a release), so that
     * the exclusive rules are settled at open. A non-exclusive open of a
     * port someone holds right now cannot register without waiting; it
     * registers at its first lock instead. */
    if (d->exclusive || port_free(d)) {
        int32_t ms = params->timeout_ms >= 0 && params->timeout_ms < 2000 ? params->timeout_ms : 2000;
        rc = claim_now(d, par_bounded(d, devhost_util_deadline_ms(ms)), err);
        if (rc == DEVHOST_E_TIMEOUT && !d->exclusive)
            return DEVHOST_OK; /* someone took it meanwhile: registers at lock */
        if (rc != DEVHOST_OK)
            return rc;
        return ppdev_release(d, err);
    }
    return DEVHOST_OK;
}

/* Opens the port; once registered (exclusive: PPEXCL and a first claim),
 * the host gets a copy of the descriptor, which holds the registration and
 * every claim taken later. */
static devhost_status ppdev_open(par_device *d, const devhost_open_params *params, devhost_error *err)
{
    devhost_status st = ppdev_open_port(d, params, err);
    if (st == DEVHOST_OK)
        par_share_fd(d, state_of(d)->fd);
    return st;
}

static void ppdev_close(par_device *d)
{
    ppdev_state *s = state_of(d);
    if (!s)
        return;
    if (s->fd >= 0) {
        /* An unclaimed port left in a non-compat mode makes ppdev's release
         * wait for the port; go back to compat briefly if we can, else
         * just tell ppdev the mode is compat. */
        if (d->mode != VPORT_MODE_COMPAT && !d->removed) {
            devhost_error ignored;
            int compat = IEEE1284_MODE_COMPAT;
            devhost_util_error_init(&ignored);
            if (ppdev_claim(d, par_bounded(d, devhost_util_deadline_ms(d->claim_timeout_ms)), &ignored) ==
                DEVHOST_OK) {
                ioctl(s->fd, PPNEGOT, &compat);
                ioctl(s->fd, PPRELEASE);
            } else {
                ioctl(s->fd, PPSETMODE, &compat);
            }
        }
        par_unshare_fd(d);
        close(s->fd);
    }
    free(s);
    d->backend_state = NULL;
}

static devhost_status ppdev_negotiate(par_device *d, int mode, devhost_error *err)
{
    ppdev_state *s = state_of(d);
    int m = ieee_modes[mode];
    if (ioctl(s->fd, PPNEGOT, &m) != 0) {
        int e = errno;
        if (e == ENXIO)
            return devhost_fail(err, DEVHOST_E_PROTOCOL, e, "%s: the peripheral refused IEEE 1284 mode '%s'", d->path,
                                par_mode_name(mode));
        if (e == EIO)
            return devhost_fail(err, DEVHOST_E_IO, e,
                                "%s: IEEE 1284 negotiation of mode '%s' failed (no IEEE 1284 peripheral answered)",
                                d->path, par_mode_name(mode));
        return os_fail(d, e, "PPNEGOT", err);
    }
    if (ioctl(s->fd, PPSETMODE, &m) != 0)
        return os_fail(d, errno, "PPSETMODE", err);
    return DEVHOST_OK;
}

/* Reads the peripheral's IEEE 1284 device ID (nibble mode, device ID
 * request); leaves "" when it gives none. The claim is held. */
static void read_device_id(par_device *d, char *out, size_t size)
{
    ppdev_state *s = state_of(d);
    int m = IEEE1284_MODE_NIBBLE | IEEE1284_DEVICEID, back = ieee_modes[d->mode];
    unsigned char buf[PAR_DEVICE_ID_MAX];
    size_t got = 0, want = 2;
    uint64_t deadline = par_bounded(d, devhost_util_deadline_ms(500));
    out[0] = '\0';
    if (ioctl(s->fd, PPNEGOT, &m) != 0)
        return;
    ioctl(s->fd, PPSETMODE, &m);
    while (got < want && !devhost_util_deadline_passed(deadline)) {
        ssize_t n = read(s->fd, buf + got, want - got);
        if (n > 0) {
            got += (size_t)n;
            if (got == 2) {
                want = (size_t)buf[0] << 8 | buf[1];
                if (want < 2 || want > sizeof buf - 1)
                    break;
            }
        } else if (n < 0 && errno != EAGAIN) {
            break;
        }
    }
    if (got == want && want > 2) {
        size_t len = want - 2 < size - 1 ? want - 2 : size - 1;
        memcpy(out, buf + 2, len);
        out[len] = '\0';
    }
    m = IEEE1284_MODE_COMPAT;
    ioctl(s->fd, PPNEGOT, &m);
    if (back != IEEE1284_MODE_COMPAT)
        ioctl(s->fd, PPNEGOT, &back);
    ioctl(s->fd, PPSETMODE, &back);
}

static devhost_status ppdev_query(par_device *d, par_port_info *info, devhost_error *err)
{
    ppdev_state *s = state_of(d);
    unsigned int modes = 0;
    if (ioctl(s->fd, PPGETMODES, &modes) != 0)
        return os_fail(d, errno, "PPGETMODES", err);
    info->caps = modes;
    info->mode = d->mode;
    {
        /* Lines need the claim (ppdev refuses otherwise): without it they
         * are reported unavailable. */
        unsigned char st, ctl;
        if (ioctl(s->fd, PPRSTATUS, &st) == 0 && ioctl(s->fd, PPRCONTROL, &ctl) == 0) {
            info->have_lines = 1;
            info->status = st;
            info->control = ctl;
            read_device_id(d, info->device_id, sizeof info->device_id);
        }
    }
    return DEVHOST_OK;
}

static devhost_status ppdev_reg_read(par_device *d, int reg, uint8_t *value, devhost_error *err)
{
    unsigned char v = 0;
    unsigned long cmd = reg == VPORT_REG_STATUS ? PPRSTATUS : reg == VPORT_REG_CONTROL ? PPRCONTROL : PPRDATA;
    if (ioctl(state_of(d)->fd, cmd, &v) != 0)
        return os_fail(d, errno, "register read", err);
    *value = v;
    return DEVHOST_OK;
}

static devhost_status ppdev_reg_write(par_device *d, int reg, uint8_t value, devhost_error *err)
{
    unsigned char v = value;
    unsigned long cmd = reg == VPORT_REG_CONTROL ? PPWCONTROL : PPWDATA;
    if (reg == VPORT_REG_STATUS)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s: the status register is read-only", d->path);
    if (ioctl(state_of(d)->fd, cmd, &v) != 0)
        return os_fail(d, errno, "register write", err);
    return DEVHOST_OK;
}

/* The driver's own transfer, one direction: write(2) of `out`, or read(2)
 * into `in` (the other NULL), on the non-blocking port until `len` bytes
 * are done -- a read without `exact` stops once some came -- with a 1 ms
 * sleep, watching cancel_fd, after each try that moved nothing, until the
 * deadline. *done counts the bytes moved, also on failure. */
static devhost_status ppdev_transfer(par_device *d, const uint8_t *out, uint8_t *in, size_t len, int exact,
                                     size_t *done, uint64_t deadline, devhost_error *err)
{
    ppdev_state *s = state_of(d);
    while (*done < len && !(in && !exact && *done > 0)) {
        ssize_t n = out ? write(s->fd, out + *done, len - *done) : read(s->fd, in + *done, len - *done);
        devhost_status st;
        if (n > 0) {
            *done += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return os_fail(d, errno, out ? "write" : "read", err);
        st = par_sleep(d, 1, deadline, err);
        if (st == DEVHOST_E_TIMEOUT && out) {
            unsigned char status = 0;
            ioctl(s->fd, PPRSTATUS, &status);
            return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT,
                                "%s: peripheral took %zu of %zu bytes in time (status 0x%02x)", d->path, *done, len,
                                status);
        }
        if (st == DEVHOST_E_TIMEOUT)
            return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT, "%s: peripheral sent %zu of %zu bytes in time",
                                d->path, *done, len);
        if (st != DEVHOST_OK)
            return st;
    }
    return DEVHOST_OK;
}

static devhost_status ppdev_write(par_device *d, const uint8_t *data, size_t len, size_t *done, uint64_t deadline,
                                  devhost_error *err)
{
    return ppdev_transfer(d, data, NULL, len, 1, done, deadline, err);
}

static devhost_status ppdev_read(par_device *d, uint8_t *buf, size_t cap, int exact, size_t *got, uint64_t deadline,
                                 devhost_error *err)
{
    return ppdev_transfer(d, NULL, buf, cap, exact, got, deadline, err);
}

const par_backend par_ppdev_backend = {
    .name = "ppdev",
    .open = ppdev_open,
    .close = ppdev_close,
    .claim = ppdev_claim,
    .release = ppdev_release,
    .negotiate = ppdev_negotiate,
    .query = ppdev_query,
    .reg_read = ppdev_reg_read,
    .reg_write = ppdev_reg_write,
    .write = ppdev_write,
    .read = ppdev_read,
    .query_needs_claim = 1,
    .fd_role = "ppdev",
};
