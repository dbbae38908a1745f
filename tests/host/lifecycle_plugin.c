/*
 * A test plugin for the lifecycle property test (lifecycle_test.cpp), built
 * into one .so per class rule the host's lifecycle table knows
 * (tests/host/CMakeLists.txt passes the defines):
 *
 *   LIFECYCLE_LOCK_REQUIRES      the descriptor's lock_requires
 *   LIFECYCLE_TRANSFER_REQUIRES  the descriptor's transfer_requires
 *   LIFECYCLE_FEW_HOOKS          leave connect, lock, unlock, disconnect and
 *                                info NULL (the host answers UNSUPPORTED)
 *   LIFECYCLE_CLASS              the class name
 *
 * Every hook it has succeeds at once, so whatever fails in the test was
 * refused by the host. Written in C99 like any C plugin.
 */
#include <devhost/plugin.h>

#include <stdlib.h>

struct devhost_device {
    int unused;
};

static devhost_status lc_open(const devhost_open_params *params, devhost_device **device, devhost_error *err)
{
    (void)params;
    *device = calloc(1, sizeof **device);
    return *device ? DEVHOST_OK : devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "out of memory");
}

static devhost_status lc_close(devhost_device *device, devhost_error *err)
{
    (void)err;
    free(device);
    return DEVHOST_OK;
}

static devhost_status lc_transfer(devhost_device *device, devhost_transfer *xfer, devhost_error *err)
{
    (void)device;
    (void)err;
    xfer->out_done = xfer->out_len;
    if (xfer->op == DEVHOST_OP_READ && xfer->in_capacity > 0) {
        xfer->in[0] = 'x';
        xfer->in_len = 1;
    }
    return DEVHOST_OK;
}

#ifndef LIFECYCLE_FEW_HOOKS
static devhost_status lc_connect(devhost_device *device, const devhost_connect_params *params, devhost_error *err)
{
    (void)device, (void)params, (void)err;
    return DEVHOST_OK;
}

static devhost_status lc_release(devhost_device *device, devhost_error *err)
{
    (void)device, (void)err;
    return DEVHOST_OK;
}

static devhost_status lc_lock(devhost_device *device, int32_t timeout_ms, devhost_error *err)
{
    (void)device, (void)timeout_ms, (void)err;
    return DEVHOST_OK;
}

static devhost_status lc_info(devhost_device *device, const devhost_info_sink *sink, devhost_error *err)
{
    (void)device, (void)err;
    sink->put(sink->context, "class", LIFECYCLE_CLASS);
    return DEVHOST_OK;
}
#endif

static const devhost_hooks lc_hooks = {
    .struct_size = sizeof(devhost_hooks),
    .open = lc_open,
    .close = lc_close,
#ifndef LIFECYCLE_FEW_HOOKS
    .connect = lc_connect,
    .disconnect = lc_release,
    .lock = lc_lock,
    .unlock = lc_release,
    .info = lc_info,
#endif
    .transfer = lc_transfer,
};

static const devhost_plugin_descriptor lc_descriptor = {
    .struct_size = sizeof(devhost_plugin_descriptor),
    .name = "lifecycle-" LIFECYCLE_CLASS,
    .device_class = LIFECYCLE_CLASS,
    .version = "1.0.0",
    .description = "lifecycle property test plugin",
    .hooks = &lc_hooks,
    .transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_WRITE) | DEVHOST_OP_BIT(DEVHOST_OP_READ),
    .transfer_requires = LIFECYCLE_TRANSFER_REQUIRES,
    .lock_requires = LIFECYCLE_LOCK_REQUIRES,
};

DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    n->plugin_abi_version = DEVHOST_MAKE_VERSION(1, 0);
    n->descriptor = &lc_descriptor;
    return DEVHOST_OK;
}
