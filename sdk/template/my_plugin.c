/*
 * my_plugin: a minimal devhost plugin. Class "my-device": a device counts
 * the bytes written to it and reports the count through info.
 *
 * Hooks: open, close, info, transfer (WRITE only). connect, lock and the
 * others are NULL: the host answers DEVHOST_E_UNSUPPORTED for them.
 * Entry point: devhost_plugin_negotiate, at the end.
 */
#include <devhost/plugin.h>

#include <stdlib.h>

static const devhost_host_services *services;

/* Per-device state: allocated in open, freed in close. */
struct devhost_device {
    const devhost_host_device *host_device; /* for log calls */
    unsigned long long written;
};

/* open: any path. State: none. Returns OK or E_NO_MEMORY. params is valid
 * for this call only, except host_device. */
static devhost_status my_open(const devhost_open_params *params, devhost_device **device,
                              devhost_error *err)
{
    devhost_device *dev = calloc(1, sizeof *dev);
    *device = dev;
    if (!dev)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "%s: out of memory", params->path);
    dev->host_device = params->host_device;
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

/* transfer: WRITE counts and drops the bytes. State: open. Returns OK. The
 * transfer and its buffers belong to the host. */
static devhost_status my_transfer(devhost_device *dev, devhost_transfer *xfer, devhost_error *err)
{
    (void)err;
    dev->written += xfer->out_len;
    xfer->out_done = xfer->out_len;
    return DEVHOST_OK;
}

static const devhost_hooks my_hooks = {
    sizeof(devhost_hooks), 0,
    my_open, my_close, NULL /* connect */, NULL /* disconnect */,
    NULL /* lock */, NULL /* unlock */, my_info, my_transfer,
};

static const devhost_plugin_descriptor my_descriptor = {
    sizeof(devhost_plugin_descriptor),
    0,                       /* flags */
    "my_plugin",             /* name */
    "my-device",             /* device class */
    "1.0.0",                 /* version */
    "counts the bytes written to it",
    NULL, 0,                 /* options */
    0, NULL,                 /* controls */
    &my_hooks,
    DEVHOST_OP_BIT(DEVHOST_OP_WRITE),
    0,                       /* transfer_requires */
    0,                       /* lock_requires */
    0,
};

DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    if (DEVHOST_VERSION_MAJOR(n->host_abi_version) != DEVHOST_ABI_VERSION_MAJOR)
        return devhost_fail(n->error, DEVHOST_E_UNSUPPORTED, 0, "my_plugin speaks ABI 1.x only");
    n->plugin_abi_version = DEVHOST_ABI_VERSION;
    n->descriptor = &my_descriptor;
    services = n->services;
    return DEVHOST_OK;
}
