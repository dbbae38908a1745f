/*
 * raw: the `\\.\` namespace on Linux. Opens block devices, character devices
 * and regular files (disk images) by the Linux path the host resolved, and
 * reads, writes and controls them (the DeviceIoControl analogue).
 *
 * This file holds the descriptor, its option schema and control table, the
 * hooks (which check state and arguments and hand the work to a backend),
 * the hook table and the entry point; the Linux work is in the backends
 * (raw_private.h lists them). Options, control codes and info keys are
 * listed in README.md.
 *
 * Hooks                          needs (host-checked)
 *   raw_open                     -
 *   raw_close                    open (also half-opened)
 *   raw_info                     open
 *   raw_transfer                 open (transfer_requires = 0): WRITE, READ,
 *                                READ_EXACT, CONTROL
 * There is no connect or lock: a raw device is ready once open, and
 * exclusivity is decided at open (O_EXCL, or a flock on an image file),
 * never by waiting. The descriptor that holds it is handed to the host
 * (share_fd: "block", "file") and taken back before close closes it.
 *
 * Descriptor flags
 *   DEVHOST_PLUGIN_OFFSETS       reads and writes take offset=
 *
 * ABI 1.1: transfer keeps to the earlier of its timeout_ms and the host's
 * deadline for the hook (deadline_ns), checked between 1 MiB pieces and in
 * every wait of a character device. open, info and close never wait for a
 * peer or a queue (they read sysfs and /proc and make ioctls that return at
 * once); what the kernel itself does inside a syscall (the write-back of
 * dirty pages at the last close of a block device, fsync in `flush`) no
 * deadline can cut short. enumerate lists the block devices
 * (backend_enumerate.c); there is no unload: the plugin changes nothing in
 * the process.
 */
#include "raw_private.h"

#include <stdlib.h>
#include <string.h>

const devhost_host_services *raw_services;

/* ------------------------------------------------------------------------
 * Descriptor: the option schema (looked up by these indexes) and the
 * control codes
 * ------------------------------------------------------------------------ */

enum { OPT_ALLOW_WRITE, OPT_EXCLUSIVE, OPT_ALLOW_MOUNTED_WRITE, OPT_DIRECT, OPT_COUNT };

#define OPTION_SIZE sizeof(devhost_option_spec)
static const devhost_option_spec raw_options[OPT_COUNT] = {
    [OPT_ALLOW_WRITE] = {.struct_size = OPTION_SIZE, .type = DEVHOST_OPTION_BOOL, .name = "allow-write",
                         .default_value = "false",
                         .help = "permit writes and flush; without it a write is refused before any I/O",
                         .flags = DEVHOST_OPTION_WRITABLE},
    [OPT_EXCLUSIVE] = {.struct_size = OPTION_SIZE, .type = DEVHOST_OPTION_BOOL, .name = "exclusive",
                       .default_value = "true",
                       .help = "open block devices with O_EXCL: a mounted or exclusively held device is busy",
                       .flags = DEVHOST_OPTION_EXCLUSIVE},
    [OPT_ALLOW_MOUNTED_WRITE] = {.struct_size = OPTION_SIZE, .type = DEVHOST_OPTION_BOOL,
                                 .name = "allow-mounted-write", .default_value = "false",
                                 .help = "with allow-write: open even when a filesystem on the device (or on a "
                                         "loop device over the image) is mounted, which writes can corrupt; block "
                                         "devices also need exclusive = false"},
    [OPT_DIRECT] = {.struct_size = OPTION_SIZE, .type = DEVHOST_OPTION_BOOL, .name = "direct",
                    .default_value = "false",
                    .help = "O_DIRECT: offsets and lengths must be multiples of the logical sector size"},
};

#define CONTROL_SIZE sizeof(devhost_control_spec)
static const devhost_control_spec raw_controls[] = {
    {.struct_size = CONTROL_SIZE, .code = RAW_CONTROL_GET_LENGTH, .name = "get-length",
     .help = "size in bytes (BLKGETSIZE64, or the file's size)"},
    {.struct_size = CONTROL_SIZE, .code = RAW_CONTROL_GET_LOGICAL_SECTOR_SIZE, .name = "get-logical-sector-size",
     .help = "logical sector size in bytes (the direct I/O alignment)"},
    {.struct_size = CONTROL_SIZE, .code = RAW_CONTROL_GET_PHYSICAL_SECTOR_SIZE, .name = "get-physical-sector-size",
     .help = "physical sector size in bytes"},
    {.struct_size = CONTROL_SIZE, .code = RAW_CONTROL_GET_READ_ONLY, .name = "get-read-only",
     .help = "1 if the device is read-only, else 0"},
    {.struct_size = CONTROL_SIZE, .code = RAW_CONTROL_GET_ROTATIONAL, .name = "get-rotational",
     .help = "1 if the block device is rotational, else 0 (sysfs queue/rotational)"},
    {.struct_size = CONTROL_SIZE, .code = RAW_CONTROL_GET_DISCARD, .name = "get-discard",
     .help = "largest discard in bytes, 0 if none (sysfs queue/discard_max_bytes)"},
    {.struct_size = CONTROL_SIZE, .code = RAW_CONTROL_FLUSH, .name = "flush",
     .help = "write cached data to the device (fsync, then BLKFLSBUF)", .flags = DEVHOST_CONTROL_MODIFIES},
};
#define CONTROL_COUNT (sizeof raw_controls / sizeof raw_controls[0])

/* ------------------------------------------------------------------------
 * Hooks
 * ------------------------------------------------------------------------ */

/* open: called first for a device; allocates its state and opens the path.
 * State: none. Returns OK; E_NOT_FOUND (missing path: nothing is created);
 * E_BUSY (block device mounted or held with O_EXCL; with allow-write and
 * without allow-mounted-write, a mounted filesystem that writes would reach:
 * on the device, a partition of it, a device built on it, or a loop device
 * over the image file; an image file locked by another client); E_ACCESS
 * (permission, or allow-write on a read-only device); E_INVALID (empty or
 * too long a path, not a device or file; direct on a character device);
 * E_IO (also when /proc/self/mountinfo cannot be read for that check);
 * E_NO_MEMORY. On failure *device may hold a half-opened state for close.
 * `params` is borrowed for the call; host_device and cancel_fd are kept
 * until close. */
static devhost_status raw_open(const devhost_open_params *params, devhost_device **device, devhost_error *err)
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
    dev->allow_write = devhost_util_option_int(params, raw_options, OPT_ALLOW_WRITE, 0) != 0;
    dev->exclusive = devhost_util_option_int(params, raw_options, OPT_EXCLUSIVE, 1) != 0;
    dev->allow_mounted_write = devhost_util_option_int(params, raw_options, OPT_ALLOW_MOUNTED_WRITE, 0) != 0;
    dev->direct = devhost_util_option_int(params, raw_options, OPT_DIRECT, 0) != 0;
    dev->cancel_fd = params->cancel_fd;
    dev->host_device = params->host_device;
    *device = dev;
    return raw_device_open(dev, (params->flags & DEVHOST_OPEN_INHERIT) != 0, err);
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
    status = raw_device_release(device, err);
    free(device);
    return status;
}

/* info: size, sector sizes, flags, and for block devices what sysfs says
 * (model, serial, WWN, partitions, mounted). State: open. Returns OK; E_IO;
 * E_REMOVED (the device is gone). `sink` is borrowed for the call. */
static devhost_status raw_info(devhost_device *device, const devhost_info_sink *sink, devhost_error *err)
{
    return raw_info_report(device, sink, err);
}

/* WRITE, READ, READ_EXACT: what needs no look at the device is checked
 * here, before any I/O (permission, an empty transfer, a missing buffer);
 * bounds and alignment, which need the device's size, in backend_io.c. */
static devhost_status io_transfer(struct devhost_device *dev, devhost_transfer *xfer, devhost_error *err)
{
    int writing = xfer->op == DEVHOST_OP_WRITE;
    size_t len = writing ? xfer->out_len : xfer->in_capacity;
    if (writing && !dev->allow_write)
        return devhost_fail(err, DEVHOST_E_ACCESS, 0,
                            "raw: %s: write refused: the device is open read-only (set allow-write = true)",
                            dev->path);
    if (len == 0) {
        if (writing)
            return DEVHOST_OK;
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "raw: %s: read of 0 bytes", dev->path);
    }
    if ((writing && !xfer->out) || (!writing && !xfer->in))
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "raw: %s: %s without a buffer", dev->path,
                            writing ? "write" : "read");
    return raw_io_transfer(dev, xfer,
                           devhost_util_deadline_min(devhost_hook_deadline(raw_services, dev->host_device),
                                                     devhost_util_deadline_ms(xfer->timeout_ms)),
                           err);
}

/* CONTROL: the code must be in the table; one that modifies the device
 * needs allow-write; none takes input. Then the backend answers it. */
static devhost_status control_transfer(struct devhost_device *dev, devhost_transfer *xfer, devhost_error *err)
{
    const devhost_control_spec *spec = NULL;
    size_t i;
    for (i = 0; i < CONTROL_COUNT && !spec; i++)
        if (raw_controls[i].code == xfer->control_code)
            spec = &raw_controls[i];
    if (!spec)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0,
                            "raw: %s: unknown control code %u (known: 1-7, see `devhost plugins`)", dev->path,
                            xfer->control_code);
    if ((spec->flags & DEVHOST_CONTROL_MODIFIES) && !dev->allow_write)
        return devhost_fail(err, DEVHOST_E_ACCESS, 0,
                            "raw: %s: control %s changes the device and is refused without allow-write = true",
                            dev->path, spec->name);
    if (xfer->out_len != 0)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "raw: %s: control %s takes no input (got %zu bytes)",
                            dev->path, spec->name, xfer->out_len);
    return raw_control(dev, xfer, spec->name, err);
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
        return io_transfer(device, xfer, err);
    case DEVHOST_OP_CONTROL:
        return control_transfer(device, xfer, err);
    default:
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "raw: transfer op %u is not supported", xfer->op);
    }
}

/* ------------------------------------------------------------------------
 * The hook table, the descriptor and the entry point
 * ------------------------------------------------------------------------ */

static const devhost_hooks raw_hooks = {
    .struct_size = sizeof(devhost_hooks),
    .open = raw_open,
    .close = raw_close,
    .info = raw_info,
    .transfer = raw_transfer,
    .enumerate = raw_enumerate,
    /* unload: NULL, nothing process-wide to undo */
};

/* The paths this class serves: the block devices \\.\PhysicalDriveN
 * resolves to (one of /sys/block's disks) by their usual kernel names, their
 * partitions, and the stable links to them (the host matches without
 * FNM_PATHNAME: a '*' also takes a '/'). A disk image anywhere and a block
 * device of any other name have the class by their kind of file
 * (path_types). A character device is still opened, with `class = raw`. */
static const char *const raw_path_patterns[] = {
    "/dev/sd*",   "/dev/hd*",   "/dev/vd*",           "/dev/xvd*",     "/dev/nvme[0-9]*n[0-9]*",
    "/dev/mmcblk*", "/dev/loop[0-9]*", "/dev/ram*",   "/dev/zram*",    "/dev/sr*",
    "/dev/md*",   "/dev/dm-*",  "/dev/nbd*",          "/dev/mapper/*", "/dev/disk/by-*/*",
    NULL,
};

static const devhost_plugin_descriptor raw_descriptor = {
    .struct_size = sizeof(devhost_plugin_descriptor),
    .flags = DEVHOST_PLUGIN_OFFSETS, /* reads and writes take offset= */
    .name = "raw",
    .device_class = "raw",
    .version = "1.0.0",
    .description = "block devices, character devices and disk images by path (the \\\\.\\ namespace)",
    .options = raw_options,
    .option_count = OPT_COUNT,
    .control_count = CONTROL_COUNT,
    .controls = raw_controls,
    .hooks = &raw_hooks,
    .transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_WRITE) | DEVHOST_OP_BIT(DEVHOST_OP_READ) |
                    DEVHOST_OP_BIT(DEVHOST_OP_READ_EXACT) | DEVHOST_OP_BIT(DEVHOST_OP_CONTROL),
    .transfer_requires = 0, /* transfers need only an open device */
    .path_patterns = raw_path_patterns,
    .path_types = DEVHOST_PATH_REGULAR | DEVHOST_PATH_BLOCK, /* disk images, block devices of any name */
};

/* Speaks ABI 1.x; refuses other majors. */
DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    return devhost_negotiate(n, &raw_descriptor, &raw_services);
}
