/*
 * raw: the `\\.\` namespace on Linux. Opens block devices, character devices
 * and regular files (disk images) by the Linux path the host resolved, and
 * reads, writes and controls them (the DeviceIoControl analogue).
 *
 * This file is the hook table, the option schema, the control table and the
 * negotiation; the Linux work is in raw_linux.c and raw_sysfs.c.
 *
 * Hooks: open, close, info, transfer (WRITE, READ, READ_EXACT, CONTROL).
 * There is no connect or lock: a raw device is ready once open, and
 * exclusivity is decided at open (O_EXCL), never by waiting.
 *
 * Controls (decimal text output, see README.md):
 *   1 get-length                 bytes
 *   2 get-logical-sector-size    bytes; the direct I/O alignment
 *   3 get-physical-sector-size   bytes
 *   4 get-read-only              1 or 0
 *   5 get-rotational             1 or 0 (block devices)
 *   6 get-discard                discard_max_bytes, 0: no discard (block)
 *   7 flush                      fsync and BLKFLSBUF; needs allow-write
 */
#include "raw_linux.h"

#include <stdlib.h>

const devhost_host_services *raw_services;

#define RAW_OPTION(type_, name_, default_, help_) \
    { sizeof(devhost_option_spec), (type_), (name_), (default_), (help_), NULL, 0, 0 }

static const devhost_option_spec raw_options[] = {
    RAW_OPTION(DEVHOST_OPTION_BOOL, "allow-write", "false",
               "permit writes and flush; without it a write is refused before any I/O"),
    RAW_OPTION(DEVHOST_OPTION_BOOL, "exclusive", "true",
               "open block devices with O_EXCL: a mounted or exclusively held device is busy"),
    RAW_OPTION(DEVHOST_OPTION_BOOL, "allow-mounted-write", "false",
               "with allow-write: open even when a filesystem on the device (or on a loop device over "
               "the image) is mounted, which writes can corrupt; block devices also need exclusive = false"),
    RAW_OPTION(DEVHOST_OPTION_BOOL, "direct", "false",
               "O_DIRECT: offsets and lengths must be multiples of the logical sector size"),
};

#define RAW_CONTROL(code_, name_, help_, flags_) \
    { sizeof(devhost_control_spec), (code_), (name_), (help_), (flags_) }

static const devhost_control_spec raw_controls[] = {
    RAW_CONTROL(RAW_CONTROL_GET_LENGTH, "get-length",
                "size in bytes (BLKGETSIZE64, or the file's size)", 0),
    RAW_CONTROL(RAW_CONTROL_GET_LOGICAL_SECTOR_SIZE, "get-logical-sector-size",
                "logical sector size in bytes (the direct I/O alignment)", 0),
    RAW_CONTROL(RAW_CONTROL_GET_PHYSICAL_SECTOR_SIZE, "get-physical-sector-size",
                "physical sector size in bytes", 0),
    RAW_CONTROL(RAW_CONTROL_GET_READ_ONLY, "get-read-only",
                "1 if the device is read-only, else 0", 0),
    RAW_CONTROL(RAW_CONTROL_GET_ROTATIONAL, "get-rotational",
                "1 if the block device is rotational, else 0 (sysfs queue/rotational)", 0),
    RAW_CONTROL(RAW_CONTROL_GET_DISCARD, "get-discard",
                "largest discard in bytes, 0 if none (sysfs queue/discard_max_bytes)", 0),
    RAW_CONTROL(RAW_CONTROL_FLUSH, "flush",
                "write cached data to the device (fsync, then BLKFLSBUF)", DEVHOST_CONTROL_MODIFIES),
};

/* An option's 0/1 value, or `fallback` when the host did not pass it. */
static int option_bool(const devhost_open_params *params, const char *name, int fallback)
{
    const devhost_option_value *v;
    if (!params->options || params->option_count == 0)
        return fallback;
    v = devhost_option_find(params, name);
    if (!v || !v->is_set)
        return fallback;
    return v->integer != 0;
}

/* open: called first for a device; allocates its state and opens the path.
 * State: none. Returns OK; E_NOT_FOUND (missing path: nothing is created);
 * E_BUSY (block device mounted or held with O_EXCL; with allow-write and
 * without allow-mounted-write, a mounted filesystem that writes would reach:
 * on the device, a partition of it, a device built on it, or a loop device
 * over the image file; an image file locked by another client); E_ACCESS
 * (permission, or allow-write on a read-only device); E_INVALID (not a
 * device or file; direct on a character device); E_IO (also when
 * /proc/self/mountinfo cannot be read for that check); E_NO_MEMORY. On
 * failure *device may hold a half-opened state for close. `params` is
 * borrowed for the call; host_device and cancel_fd are kept until close. */
static devhost_status raw_open(const devhost_open_params *params, devhost_device **device,
                               devhost_error *err)
{
    struct devhost_device *dev;
    size_t len;

    *device = NULL;
    if (!params->path || params->path[0] == '\0')
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "raw: empty device path");
    len = strlen(params->path);
    if (len >= sizeof dev->path)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "raw: device path of %zu characters is too long", len);
    dev = calloc(1, sizeof *dev);
    if (!dev)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "raw: out of memory opening %s", params->path);
    dev->fd = -1;
    memcpy(dev->path, params->path, len + 1);
    dev->allow_write = option_bool(params, "allow-write", 0);
    dev->exclusive = option_bool(params, "exclusive", 1);
    dev->allow_mounted_write = option_bool(params, "allow-mounted-write", 0);
    dev->direct = option_bool(params, "direct", 0);
    dev->cancel_fd = params->cancel_fd;
    dev->host_device = params->host_device;
    *device = dev;
    return raw_linux_open(dev, (params->flags & DEVHOST_OPEN_INHERIT) != 0, err);
}

/* close: releases the descriptor (dropping O_EXCL and any file lock) and
 * frees the state. State: any, including half-opened. Returns OK, or E_IO
 * when close(2) reported a deferred write error; the device is freed either
 * way. */
static devhost_status raw_close(devhost_device *device, devhost_error *err)
{
    devhost_status status;
    if (!device)
        return DEVHOST_OK;
    status = raw_linux_release(device, err);
    free(device);
    return status;
}

/* info: size, sector sizes, flags, and for block devices what sysfs says
 * (model, serial, WWN, partitions, mounted). State: open. Returns OK; E_IO;
 * E_REMOVED (the device is gone). `sink` is borrowed for the call. */
static devhost_status raw_info(devhost_device *device, const devhost_info_sink *sink, devhost_error *err)
{
    return raw_linux_info(device, sink, err);
}

/* transfer: WRITE, READ, READ_EXACT at xfer->offset (with
 * DEVHOST_TRANSFER_HAS_OFFSET) or at the device's running position; CONTROL
 * with a code from the table. State: open. Returns OK; E_ACCESS (write or
 * modifying control without allow-write, refused before any I/O);
 * E_INVALID (past the end, misaligned for direct I/O, bad length or input);
 * E_UNSUPPORTED (unknown control code, or one the device type lacks);
 * E_REMOVED (device gone or shrank); E_IO; E_TIMEOUT; E_CANCELLED. Buffers
 * belong to the host; in_len and out_done tell how far it got even on
 * failure. */
static devhost_status raw_transfer(devhost_device *device, devhost_transfer *xfer, devhost_error *err)
{
    switch (xfer->op) {
    case DEVHOST_OP_WRITE:
    case DEVHOST_OP_READ:
    case DEVHOST_OP_READ_EXACT:
        return raw_linux_io(device, xfer, err);
    case DEVHOST_OP_CONTROL:
        return raw_linux_control(device, xfer, err);
    default:
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "raw: transfer op %u is not supported", xfer->op);
    }
}

static const devhost_hooks raw_hooks = {
    sizeof(devhost_hooks), 0,
    raw_open,
    raw_close,
    NULL, /* connect */
    NULL, /* disconnect */
    NULL, /* lock */
    NULL, /* unlock */
    raw_info,
    raw_transfer,
};

static const devhost_plugin_descriptor raw_descriptor = {
    sizeof(devhost_plugin_descriptor),
    DEVHOST_PLUGIN_OFFSETS, /* reads and writes take offset= */
    "raw",
    "raw",
    "1.0.0",
    "block devices, character devices and disk images by path (the \\\\.\\ namespace)",
    raw_options,
    (uint32_t)(sizeof raw_options / sizeof raw_options[0]),
    (uint32_t)(sizeof raw_controls / sizeof raw_controls[0]),
    raw_controls,
    &raw_hooks,
    DEVHOST_OP_BIT(DEVHOST_OP_WRITE) | DEVHOST_OP_BIT(DEVHOST_OP_READ) |
        DEVHOST_OP_BIT(DEVHOST_OP_READ_EXACT) | DEVHOST_OP_BIT(DEVHOST_OP_CONTROL),
    0, /* transfers need only an open device */
    0,
    0,
};

DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    if (DEVHOST_VERSION_MAJOR(n->host_abi_version) != DEVHOST_ABI_VERSION_MAJOR)
        return devhost_fail(n->error, DEVHOST_E_UNSUPPORTED, 0,
                            "raw speaks ABI %u.x, the host offers %u.%u", DEVHOST_ABI_VERSION_MAJOR,
                            DEVHOST_VERSION_MAJOR(n->host_abi_version),
                            DEVHOST_VERSION_MINOR(n->host_abi_version));
    raw_services = n->services;
    n->plugin_abi_version = DEVHOST_ABI_VERSION;
    n->descriptor = &raw_descriptor;
    return DEVHOST_OK;
}
