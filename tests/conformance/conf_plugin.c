/*
 * The conformance suite's test plugins: one source built into one .so per
 * variant (-DCONF_<VARIANT>), each a small loopback of class
 * "conftest-<variant>" (paths conftest:NAME, each device its own buffer:
 * what it writes it reads back) that keeps the contract except for the one
 * defect its variant names, so that devhost-conformance must fail exactly
 * the test for that MUST (bad_plugins_test.sh):
 *
 *   CONF_GOOD            no defect: every test passes (removed is skipped)
 *   CONF_IGNORES_CANCEL  a read waits for its deadline only, never for the
 *                        cancel handle                          (cancel)
 *   CONF_OVERRUNS        a read that returns data writes 8 bytes past
 *                        in_capacity                            (transfer-bounds)
 *   CONF_LEAKS_FD        open opens /dev/null, close forgets it (open-close-cycles,
 *                                                                close-half-open)
 *   CONF_SHORT_WRITE_OK  a write sends at most 32 bytes and answers OK
 *                                                               (transfer-bounds)
 */
#define _GNU_SOURCE
#include <devhost/plugin.h>
#include <devhost/plugin_util.h>

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef CONF_VARIANT
#define CONF_VARIANT "good"
#endif

#define CONF_CAPACITY 4096

struct devhost_device {
    uint8_t buf[CONF_CAPACITY];
    size_t len;
    int cancel_fd;
    int devnull; /* CONF_LEAKS_FD only */
    const devhost_host_device *host;
};

static const devhost_host_services *services;

/* Milliseconds until the earlier of timeout_ms and the hook's deadline; -1:
 * none. */
static int wait_ms(const devhost_device *d, int32_t timeout_ms, uint64_t start)
{
    uint64_t deadline = devhost_hook_deadline(services, d->host);
    uint64_t now = devhost_util_now_ns();
    if (timeout_ms >= 0 && start + (uint64_t)timeout_ms * 1000000u < deadline)
        deadline = start + (uint64_t)timeout_ms * 1000000u;
    if (deadline == DEVHOST_DEADLINE_NONE)
        return -1;
    return deadline <= now ? 0 : (int)((deadline - now + 999999u) / 1000000u);
}

static devhost_status conf_open(const devhost_open_params *p, devhost_device **out, devhost_error *err)
{
    devhost_device *d;
    if (strncmp(p->path, "conftest:", 9) != 0 || !p->path[9])
        return devhost_fail(err, DEVHOST_E_NOT_FOUND, 0, "no conftest device at '%s'", p->path);
    d = calloc(1, sizeof *d);
    if (!d)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "out of memory");
    d->cancel_fd = p->cancel_fd;
    d->host = p->host_device;
    d->devnull = -1;
#ifdef CONF_LEAKS_FD
    d->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
#endif
    *out = d;
    return DEVHOST_OK;
}

static devhost_status conf_close(devhost_device *d, devhost_error *err)
{
    (void)err;
#ifndef CONF_LEAKS_FD
    if (d->devnull >= 0)
        close(d->devnull);
#endif
    free(d);
    return DEVHOST_OK;
}

/* Waits until `need` bytes are buffered: they never arrive from elsewhere,
 * so this waits for the deadline or the cancel handle. */
static devhost_status wait_for(devhost_device *d, size_t need, int32_t timeout_ms, devhost_error *err)
{
    uint64_t start = devhost_util_now_ns();
    while (d->len < need) {
        int ms = wait_ms(d, timeout_ms, start);
        struct pollfd pfd = {d->cancel_fd, POLLIN, 0};
        int n;
        if (ms == 0)
            return devhost_fail(err, DEVHOST_E_TIMEOUT, 0, "%zu of %zu bytes before the deadline", d->len, need);
#ifdef CONF_IGNORES_CANCEL
        n = poll(NULL, 0, ms);
#else
        n = poll(&pfd, 1, ms);
#endif
        if (n > 0 && (pfd.revents & POLLIN))
            return devhost_fail(err, DEVHOST_E_CANCELLED, 0, "cancelled");
    }
    return DEVHOST_OK;
}

static devhost_status conf_read(devhost_device *d, devhost_transfer *x, devhost_error *err)
{
    size_t need = x->op == DEVHOST_OP_READ_EXACT ? x->in_capacity : 1;
    size_t n;
    devhost_status s;
    if (need > CONF_CAPACITY)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "more than %d bytes", CONF_CAPACITY);
    s = wait_for(d, need, x->timeout_ms, err);
    if (s != DEVHOST_OK)
        return s;
    n = d->len < x->in_capacity ? d->len : x->in_capacity;
    memcpy(x->in, d->buf, n);
#ifdef CONF_OVERRUNS
    if (x->op == DEVHOST_OP_READ)
        memset(x->in + x->in_capacity, 0, 8);
#endif
    memmove(d->buf, d->buf + n, d->len - n);
    d->len -= n;
    x->in_len = n;
    return DEVHOST_OK;
}

static devhost_status conf_transfer(devhost_device *d, devhost_transfer *x, devhost_error *err)
{
    size_t n = x->out_len;
    if (x->op == DEVHOST_OP_READ || x->op == DEVHOST_OP_READ_EXACT)
        return conf_read(d, x, err);
    if (x->op != DEVHOST_OP_WRITE)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "op %u", (unsigned)x->op);
#ifdef CONF_SHORT_WRITE_OK
    if (n > 32)
        n = 32;
#endif
    if (n > CONF_CAPACITY - d->len)
        return devhost_fail(err, DEVHOST_E_IO, 0, "buffer full");
    memcpy(d->buf + d->len, x->out, n);
    d->len += n;
    x->out_done = n;
    return DEVHOST_OK;
}

static const devhost_hooks conf_hooks = {
    .struct_size = sizeof(devhost_hooks),
    .open = conf_open,
    .close = conf_close,
    .transfer = conf_transfer,
};

static const char *const conf_patterns[] = {"conftest:*", NULL};

static const devhost_plugin_descriptor conf_descriptor = {
    .struct_size = sizeof(devhost_plugin_descriptor),
    .name = "conftest-" CONF_VARIANT,
    .device_class = "conftest-" CONF_VARIANT,
    .version = "1.0.0",
    .description = "devhost-conformance test plugin, variant " CONF_VARIANT,
    .hooks = &conf_hooks,
    .transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_WRITE) | DEVHOST_OP_BIT(DEVHOST_OP_READ) |
                    DEVHOST_OP_BIT(DEVHOST_OP_READ_EXACT),
    .path_patterns = conf_patterns,
};

DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    return devhost_negotiate(n, &conf_descriptor, &services);
}
