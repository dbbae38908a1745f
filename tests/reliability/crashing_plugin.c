/*
 * A test-only plugin, class "crashing", that really crashes: its transfer
 * hook writes through a null pointer on its N-th call (option crash-at,
 * counted per device), so faults_test can prove that the records a host
 * wrote before a plugin killed it survive intact on disk. Until then it is a
 * tiny echo device: a write keeps the bytes, a read hands them back.
 *
 * Built into tests/reliability-plugins/ in the build tree, never into the
 * plugin directory, so no ordinary run can load it.
 */
#include <devhost/plugin.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CRASHING_BUFFER 256

struct devhost_device {
    int64_t crash_at;   /* the transfer call that crashes, 1-based */
    int64_t calls;      /* transfer calls so far */
    uint8_t buffer[CRASHING_BUFFER];
    size_t buffered;
};

/* Read through a volatile object so that no compiler can see it is null and
 * turn the store into a trap instruction: the plugin must die by SIGSEGV. */
static int *volatile crash_target = NULL;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((no_sanitize("undefined")))
#endif
static void crash_now(void)
{
    *crash_target = 1;
}

/* open: called on a device that is not open; any path (nothing is opened).
 * Returns OK or E_NO_MEMORY. *device is the plugin's until close. */
static devhost_status crashing_open(const devhost_open_params *params, devhost_device **device, devhost_error *err)
{
    const devhost_option_value *at = devhost_option_find(params, "crash-at");
    *device = calloc(1, sizeof **device);
    if (!*device)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "crashing: out of memory");
    (*device)->crash_at = at ? at->integer : 1;
    return DEVHOST_OK;
}

/* close: called on an open (or half-opened) device; frees it. Returns OK. */
static devhost_status crashing_close(devhost_device *device, devhost_error *err)
{
    (void)err;
    free(device);
    return DEVHOST_OK;
}

/* transfer: called on an open device. WRITE keeps up to 256 bytes (E_INVALID
 * past that); READ and READ_EXACT hand the kept bytes back (E_IO if fewer
 * than READ_EXACT wants). The crash-at-th call crashes instead of returning.
 * The buffers are the host's. */
static devhost_status crashing_transfer(devhost_device *device, devhost_transfer *xfer, devhost_error *err)
{
    size_t n;
    if (++device->calls == device->crash_at)
        crash_now();
    if (xfer->op == DEVHOST_OP_WRITE) {
        if (xfer->out_len > CRASHING_BUFFER - device->buffered)
            return devhost_fail(err, DEVHOST_E_INVALID, 0, "crashing: holds at most %d bytes", CRASHING_BUFFER);
        memcpy(device->buffer + device->buffered, xfer->out, xfer->out_len);
        device->buffered += xfer->out_len;
        xfer->out_done = xfer->out_len;
        return DEVHOST_OK;
    }
    n = device->buffered < xfer->in_capacity ? device->buffered : xfer->in_capacity;
    if (xfer->op == DEVHOST_OP_READ_EXACT && n < xfer->in_capacity)
        return devhost_fail(err, DEVHOST_E_IO, 0, "crashing: only %zu bytes kept", device->buffered);
    memcpy(xfer->in, device->buffer, n);
    memmove(device->buffer, device->buffer + n, device->buffered - n);
    device->buffered -= n;
    xfer->in_len = n;
    return DEVHOST_OK;
}

static const devhost_hooks crashing_hooks = {
    sizeof(devhost_hooks), 0, crashing_open, crashing_close, NULL, NULL, NULL, NULL, NULL, crashing_transfer,
};

static const devhost_option_spec crashing_options[] = {
    {sizeof(devhost_option_spec), DEVHOST_OPTION_INT, "crash-at", "1", "the transfer call that crashes", NULL, 1,
     1000000},
};

static const devhost_plugin_descriptor crashing_descriptor = {
    sizeof(devhost_plugin_descriptor),
    0,
    "crashing",
    "crashing",
    "1.0.0",
    "test plugin whose transfer hook crashes on its N-th call",
    crashing_options, 1,
    0, NULL,
    &crashing_hooks,
    DEVHOST_OP_BIT(DEVHOST_OP_WRITE) | DEVHOST_OP_BIT(DEVHOST_OP_READ) | DEVHOST_OP_BIT(DEVHOST_OP_READ_EXACT),
    0,
    0,
    0,
};

DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    n->plugin_abi_version = DEVHOST_ABI_VERSION;
    n->descriptor = &crashing_descriptor;
    return DEVHOST_OK;
}
