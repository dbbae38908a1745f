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
 */
#include "my_device_private.h"

#include <stdio.h>
#include <stdlib.h>

/* The host's services (log, clock), stored at negotiation. */
static const devhost_host_services *services;

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

/* transfer: WRITE, through the backend, under the transfer's deadline.
 * State: open. Returns OK or E_CANCELLED. The transfer and its buffers
 * belong to the host. */
static devhost_status my_transfer(devhost_device *dev, devhost_transfer *xfer, devhost_error *err)
{
    uint64_t deadline = devhost_util_deadline_ms(xfer->timeout_ms);
    return my_device_write(dev, xfer->out, xfer->out_len, deadline, &xfer->out_done, err);
}

static const devhost_hooks my_hooks = {
    .struct_size = sizeof(devhost_hooks),
    .open = my_open,
    .close = my_close,
    .info = my_info,
    .transfer = my_transfer,
    /* connect, disconnect, lock, unlock: NULL, not supported */
};

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
};

/* Speaks ABI 1.x; refuses other majors, naming the plugin. */
DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    return devhost_util_negotiate(n, &my_descriptor, &services);
}
