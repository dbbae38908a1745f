/*
 * my_plugin: a minimal devhost plugin. Class "my-device": a device counts
 * the bytes written to it and reports the count through info.
 *
 * The folder has the shape of every devhost plugin:
 *   plugin.c              this file: the option schema, the hooks, the hook
 *                         table and descriptor (designated initializers), the
 *                         entry point
 *   backend_counter.c     what a device does (your OS code goes there)
 *   my_device_private.h   per-device state, the backend's functions
 *   README.md             options, control codes, info keys
 *   tests/                a test that loads the built plugin and drives it
 *
 * Hooks: open, close, info, transfer (WRITE only). connect, lock and the
 * others are NULL: the host answers DEVHOST_E_UNSUPPORTED for them.
 *
 * ABI 1.1 (what <devhost/plugin.h> marks "since v1.1"):
 *   - the entry point answers with devhost_negotiate(), which speaks the
 *     host's minor when the host is older and refuses another major;
 *   - every hook has a deadline: devhost_hook_deadline(services, device)
 *     (DEVHOST_DEADLINE_NONE from a 1.0 host), and for open, connect, lock
 *     and transfer the earlier of that and their timeout_ms (my_deadline
 *     below). A hook that waits passes it down to devhost_util_wait; a hook
 *     that never waits (close and info here) has nothing to bound;
 *   - path_patterns: the paths of this class, so the host can pick the class
 *     from a path; path_types: the kinds of file (a regular file, a block
 *     or character device, a socket) it serves at paths no pattern names;
 *   - option flags: DEVHOST_OPTION_REQUIRED for an option without a default
 *     that must be set, DEVHOST_OPTION_EXCLUSIVE for a BOOL `exclusive`;
 *   - enumerate (list your devices for `devhost scan`) and unload (undo
 *     process-wide state before the library goes): NULL here, as a counter
 *     has no devices to find and changes nothing in the process;
 *   - share_fd: a descriptor that holds the device (see my_open) is handed
 *     to the host, which then releases the device if this process dies.
 */
#include "my_device_private.h"

#include <stdio.h>
#include <stdlib.h>

/* The host's services (log, clock), stored at negotiation. */
static const devhost_host_services *services;

/* The deadline of the hook now running for `dev`: the host's, or
 * `timeout_ms` from now (-1: none) if that comes first. */
static uint64_t my_deadline(const devhost_device *dev, int64_t timeout_ms)
{
    return devhost_util_deadline_min(devhost_hook_deadline(services, dev->host_device),
                                     devhost_util_deadline_ms(timeout_ms));
}

/* The option schema, looked up by these indexes (devhost_util_option_int):
 * the host passes open one value per entry, in this order. */
enum { OPT_START, OPT_COUNT };

static const devhost_option_spec my_options[OPT_COUNT] = {
    [OPT_START] = {.struct_size = sizeof(devhost_option_spec), .type = DEVHOST_OPTION_INT, .name = "start",
                   .default_value = "0", .help = "the count a device starts from", .min = 0, .max = INT64_MAX},
};

/* open: any path. State: none. Returns OK or E_NO_MEMORY. params is valid
 * for this call only, except host_device and cancel_fd (until close). */
static devhost_status my_open(const devhost_open_params *params, devhost_device **device,
                              devhost_error *err)
{
    devhost_device *dev = calloc(1, sizeof *dev);
    *device = dev;
    if (!dev)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "%s: out of memory", params->path);
    dev->host_device = params->host_device;
    dev->cancel_fd = params->cancel_fd;
    dev->written = (unsigned long long)devhost_util_option_int(params, my_options, OPT_START, 0);
    /* A counter opens no descriptor. A device that does, and whose
     * descriptor holds the device (an exclusive tty, a claim, a flock),
     * hands the host a copy here, once the device is fully open and its
     * exclusive mode, claim or lock taken, so that if this process dies the
     * host still holds the device and releases it properly (a host that
     * runs plugins in its own process answers E_UNSUPPORTED: silent; any
     * other failure logs one warning, and the device works on):
     *     dev->shared = devhost_util_share_fd_or_warn(services, dev->host_device, dev->fd,
     *                                                 "tty", params->path);
     * and close, just before close(dev->fd), takes the copy back, so that
     * its own close stays the last one:
     *     if (dev->shared)
     *         devhost_util_unshare_fd(services, dev->host_device, "tty", dev->path);
     * (devhost/plugin_util.h, section 6, lists the roles.) */
    devhost_logf(services, dev->host_device, DEVHOST_LOG_DEBUG, "opened %s", params->path);
    return DEVHOST_OK;
}

/* close: frees the device. State: any. Returns OK. */
static devhost_status my_close(devhost_device *dev, devhost_error *err)
{
    (void)err;
    free(dev);
    return DEVHOST_OK;
}

/* info: reports "written". State: open. Returns OK. */
static devhost_status my_info(devhost_device *dev, const devhost_info_sink *sink, devhost_error *err)
{
    char text[32];
    (void)err;
    snprintf(text, sizeof text, "%llu", dev->written);
    sink->put(sink->context, "written", text);
    return DEVHOST_OK;
}

/* transfer: WRITE, through the backend, under the transfer's deadline (the
 * earlier of timeout_ms and the host's). State: open. Returns OK;
 * E_CANCELLED; E_UNSUPPORTED (another
 * op: the host only asks for those in transfer_ops, but a plugin refuses
 * what it does not know, a control code included, with this one status).
 * The transfer and its buffers belong to the host. */
static devhost_status my_transfer(devhost_device *dev, devhost_transfer *xfer, devhost_error *err)
{
    if (xfer->op != DEVHOST_OP_WRITE)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "my-device: transfer op %u is not supported",
                            (unsigned)xfer->op);
    return my_device_write(dev, xfer->out, xfer->out_len, my_deadline(dev, xfer->timeout_ms), &xfer->out_done,
                           err);
}

static const devhost_hooks my_hooks = {
    .struct_size = sizeof(devhost_hooks),
    .open = my_open,
    .close = my_close,
    .info = my_info,
    .transfer = my_transfer,
    /* connect, disconnect, lock, unlock: NULL, not supported;
     * enumerate, unload (since 1.1): NULL, see the top of this file */
};

/* The paths of this class, fnmatch(3) patterns (matched without
 * FNM_PATHNAME: a '*' also takes a '/'), ending with NULL: `devhost check`
 * and `probe` pick class my-device for a path that matches (replace with
 * your device nodes, e.g. "/dev/mydev[0-9]*"). A class that serves a kind
 * of file wherever it is (disk images, sockets) also sets the descriptor's
 * path_types (DEVHOST_PATH_REGULAR, ...); a counter serves none: 0. */
static const char *const my_path_patterns[] = {"mydev:*", NULL};

static const devhost_plugin_descriptor my_descriptor = {
    .struct_size = sizeof(devhost_plugin_descriptor),
    .name = "my_plugin",
    .device_class = "my-device",
    .version = "1.0.0",
    .description = "counts the bytes written to it",
    .options = my_options,
    .option_count = OPT_COUNT,
    .hooks = &my_hooks,
    .transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_WRITE),
    .transfer_requires = 0, /* open is enough */
    .path_patterns = my_path_patterns,
    .path_types = 0, /* no kind of file at other paths */
};

/* Speaks ABI 1.x (the host's minor when it is older than this header's);
 * refuses other majors, naming the plugin. */
DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    return devhost_negotiate(n, &my_descriptor, &services);
}
