/*
 * raw plugin, control codes and info: what a device says about itself, as
 * decimal text (controls) or as info keys, and flush, the one control that
 * changes the device. plugin.c has checked the code, allow-write and the
 * input before a control gets here.
 */
#include "raw_private.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static devhost_status put_number(struct devhost_device *dev, devhost_transfer *xfer, const char *name,
                                 uint64_t value, devhost_error *err)
{
    char text[32];
    int n = snprintf(text, sizeof text, "%" PRIu64, value);
    if (n < 0 || (size_t)n > xfer->in_capacity || !xfer->in)
        return devhost_fail(err, DEVHOST_E_INVALID, 0,
                            "raw: %s: %s needs an output buffer of %d bytes, got %zu", dev->path, name, n,
                            xfer->in_capacity);
    memcpy(xfer->in, text, (size_t)n);
    xfer->in_len = (size_t)n;
    return DEVHOST_OK;
}

static devhost_status block_only(struct devhost_device *dev, const char *name, devhost_error *err)
{
    return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "raw: %s: %s applies to block devices, this is a %s",
                        dev->path, name, dev->kind == RAW_KIND_FILE ? "regular file" : "character device");
}

/* 1 if the device (not just our descriptor) is read-only. */
static devhost_status read_only_flag(struct devhost_device *dev, uint64_t *value, devhost_error *err)
{
    char proc[64];
    if (dev->kind == RAW_KIND_BLOCK) {
        int ro = 0;
        if (ioctl(dev->fd, BLKROGET, &ro) != 0)
            return raw_fail_errno(dev, "BLKROGET", err);
        *value = ro != 0;
        return DEVHOST_OK;
    }
    /* Files and character devices: can this process write to it? */
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", dev->fd);
    *value = access(proc, W_OK) != 0;
    return DEVHOST_OK;
}

/* A queue attribute of the block device as a number. */
static devhost_status queue_number(struct devhost_device *dev, const char *attr, uint64_t *value, devhost_error *err)
{
    char text[64];
    char *end = NULL;
    if (raw_sysfs_read(dev->rdev, attr, text, sizeof text) != 0)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "raw: %s: sysfs has no %s for device %u:%u", dev->path,
                            attr, major(dev->rdev), minor(dev->rdev));
    errno = 0;
    *value = strtoull(text, &end, 10);
    if (errno != 0 || end == text)
        return devhost_fail(err, DEVHOST_E_IO, 0, "raw: %s: sysfs %s holds '%s', not a number", dev->path, attr, text);
    return DEVHOST_OK;
}

static devhost_status flush_device(struct devhost_device *dev, devhost_error *err)
{
    /* Character devices usually have nothing to sync. */
    if (fsync(dev->fd) != 0 && !(dev->kind == RAW_KIND_CHAR && (errno == EINVAL || errno == EROFS)))
        return raw_fail_errno(dev, "fsync", err);
    if (dev->kind == RAW_KIND_BLOCK && ioctl(dev->fd, BLKFLSBUF, 0) != 0)
        return raw_fail_errno(dev, "BLKFLSBUF", err);
    return DEVHOST_OK;
}

devhost_status raw_control(struct devhost_device *dev, devhost_transfer *xfer, const char *name,
                           devhost_error *err)
{
    uint64_t value = 0;
    devhost_status status;

    switch (xfer->control_code) {
    case RAW_CONTROL_GET_LENGTH:
        if (dev->kind == RAW_KIND_CHAR)
            return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "raw: %s: a character device has no length",
                                dev->path);
        status = raw_device_refresh_size(dev, err);
        if (status != DEVHOST_OK)
            return status;
        return put_number(dev, xfer, name, dev->size, err);
    case RAW_CONTROL_GET_LOGICAL_SECTOR_SIZE:
    case RAW_CONTROL_GET_PHYSICAL_SECTOR_SIZE:
        if (dev->kind == RAW_KIND_CHAR)
            return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "raw: %s: a character device has no sectors",
                                dev->path);
        return put_number(dev, xfer, name,
                          xfer->control_code == RAW_CONTROL_GET_LOGICAL_SECTOR_SIZE ? dev->logical_sector
                                                                                   : dev->physical_sector,
                          err);
    case RAW_CONTROL_GET_READ_ONLY:
        status = read_only_flag(dev, &value, err);
        return status != DEVHOST_OK ? status : put_number(dev, xfer, name, value, err);
    case RAW_CONTROL_GET_ROTATIONAL:
    case RAW_CONTROL_GET_DISCARD:
        if (dev->kind != RAW_KIND_BLOCK)
            return block_only(dev, name, err);
        status = queue_number(dev,
                              xfer->control_code == RAW_CONTROL_GET_ROTATIONAL ? "queue/rotational"
                                                                              : "queue/discard_max_bytes",
                              &value, err);
        return status != DEVHOST_OK ? status : put_number(dev, xfer, name, value, err);
    default: /* RAW_CONTROL_FLUSH */
        return flush_device(dev, err);
    }
}

/* ------------------------------------------------------------------------
 * Info
 * ------------------------------------------------------------------------ */

static void put_u64(const devhost_info_sink *sink, const char *key, uint64_t value)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRIu64, value);
    sink->put(sink->context, key, text);
}

devhost_status raw_info_report(struct devhost_device *dev, const devhost_info_sink *sink, devhost_error *err)
{
    uint64_t ro = 0;
    devhost_error scratch;
    devhost_status status = raw_device_refresh_size(dev, err);
    if (status != DEVHOST_OK)
        return status;
    sink->put(sink->context, "path", dev->path);
    sink->put(sink->context, "type", raw_kind_name(dev->kind));
    if (dev->kind != RAW_KIND_FILE) {
        char text[32];
        snprintf(text, sizeof text, "%u:%u", major(dev->rdev), minor(dev->rdev));
        sink->put(sink->context, "major-minor", text);
    }
    if (dev->kind != RAW_KIND_CHAR) {
        put_u64(sink, "size", dev->size);
        put_u64(sink, "logical-sector-size", dev->logical_sector);
        put_u64(sink, "physical-sector-size", dev->physical_sector);
    }
    devhost_util_error_init(&scratch);
    if (read_only_flag(dev, &ro, &scratch) == DEVHOST_OK)
        sink->put(sink->context, "read-only", ro ? "1" : "0");
    sink->put(sink->context, "allow-write", dev->allow_write ? "true" : "false");
    sink->put(sink->context, "exclusive",
              dev->exclusive && dev->kind != RAW_KIND_CHAR ? "true" : "false");
    sink->put(sink->context, "direct", dev->direct ? "true" : "false");
    sink->put(sink->context, "allow-mounted-write", dev->allow_mounted_write ? "true" : "false");
    if (dev->kind == RAW_KIND_BLOCK)
        raw_sysfs_report(dev->rdev, sink);
    return DEVHOST_OK;
}
