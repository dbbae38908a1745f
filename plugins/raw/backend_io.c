/*
 * raw plugin, reads and writes: WRITE, READ and READ_EXACT at an offset (or
 * the device's running position), after the bounds and, for direct I/O,
 * the alignment are checked; in pieces, so that the cancel handle and the
 * deadline are looked at between them; short reads and writes completed.
 *
 * Removal: an end of data inside the device (it shrank under us), or
 * ENXIO/ENODEV, is DEVHOST_E_REMOVED.
 */
#define _GNU_SOURCE 1 /* O_DIRECT */
#include "raw_private.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Transfers are done in pieces of this size so that cancel and deadline are
 * checked between them, and the direct I/O bounce buffer stays small. */
#define RAW_CHUNK ((size_t)1 << 20)

/* Waits until a character device is ready for `events`. Returns OK (the
 * read or write that follows tells what happened), E_TIMEOUT, E_CANCELLED,
 * E_REMOVED (the descriptor is no longer valid) or E_IO. */
static devhost_status wait_ready(struct devhost_device *dev, short events, uint64_t deadline, devhost_error *err)
{
    char who[sizeof dev->path + 8];
    short revents = 0;
    devhost_status status;
    snprintf(who, sizeof who, "raw: %s", dev->path);
    status = devhost_util_wait(dev->fd, events, dev->cancel_fd, deadline, &revents, err, who,
                               "waiting for the device");
    if (status == DEVHOST_OK && (revents & POLLNVAL))
        return devhost_fail(err, DEVHOST_E_REMOVED, 0, "raw: %s: device descriptor is no longer valid", dev->path);
    return status;
}

/* The memory alignment this plugin gives O_DIRECT buffers: the logical
 * sector size, at least a page. */
static size_t direct_align(const struct devhost_device *dev)
{
    return dev->logical_sector > 4096 ? dev->logical_sector : 4096;
}

/* 1 if `len` bytes at `data` can go to O_DIRECT as they are (the length is
 * already a multiple of the logical sector, checked before any I/O). */
static int direct_ready(const struct devhost_device *dev, const uint8_t *data, size_t len)
{
    return (uintptr_t)data % direct_align(dev) == 0 && len % dev->logical_sector == 0;
}

/* A buffer aligned for O_DIRECT of at least `size` bytes, kept across
 * transfers. */
static uint8_t *bounce_buffer(struct devhost_device *dev, size_t size)
{
    size_t align = direct_align(dev);
    void *p = NULL;
    if (dev->bounce && dev->bounce_size >= size)
        return dev->bounce;
    free(dev->bounce);
    dev->bounce = NULL;
    dev->bounce_size = 0;
    if (posix_memalign(&p, align, size) != 0)
        return NULL;
    dev->bounce = p;
    dev->bounce_size = size;
    return dev->bounce;
}

/* One read or write syscall of `len` bytes at `offset` (or at the file
 * position when !use_offset). Returns what the syscall returned. */
static ssize_t one_io(struct devhost_device *dev, int writing, int use_offset, uint64_t offset,
                      uint8_t *data, size_t len)
{
    if (writing)
        return use_offset ? pwrite(dev->fd, data, len, (off_t)offset) : write(dev->fd, data, len);
    return use_offset ? pread(dev->fd, data, len, (off_t)offset) : read(dev->fd, data, len);
}

/* What an end of data, or an error, at `offset` means. */
static devhost_status io_failed(struct devhost_device *dev, int writing, uint64_t offset, int e,
                                devhost_error *err)
{
    const char *what = writing ? "write" : "read";
    if (e == 0) {
        /* End of data inside the device: it shrank under us. */
        uint64_t size = 0;
        devhost_error ignored;
        devhost_util_error_init(&ignored);
        if (raw_device_query_size(dev, &size, &ignored) == DEVHOST_OK && size <= offset)
            return devhost_fail(err, DEVHOST_E_REMOVED, 0,
                                "raw: %s: %s at offset %" PRIu64 " met the end of the device, which shrank from %"
                                PRIu64 " to %" PRIu64 " bytes (detached, resized or backing file truncated)",
                                dev->path, what, offset, dev->open_size, size);
        return devhost_fail(err, DEVHOST_E_IO, 0, "raw: %s: %s at offset %" PRIu64 " made no progress",
                            dev->path, what, offset);
    }
    if (raw_is_removal_errno(e))
        return devhost_fail(err, DEVHOST_E_REMOVED, e, "raw: %s: device removed during %s at offset %" PRIu64 " (%s)",
                            dev->path, what, offset, strerror(e));
    if (e == EINVAL && dev->direct)
        return devhost_fail(err, DEVHOST_E_INVALID, e,
                            "raw: %s: direct %s at offset %" PRIu64 " refused by the kernel (alignment %u bytes?): %s",
                            dev->path, what, offset, dev->logical_sector, strerror(e));
    if (e == ESPIPE)
        return devhost_fail(err, DEVHOST_E_INVALID, e, "raw: %s: this device does not take offsets", dev->path);
    return devhost_fail(err, raw_io_status(e), e, "raw: %s: %s at offset %" PRIu64 ": %s", dev->path, what, offset,
                        strerror(e));
}

/* Moves `len` bytes between `data` and the device, completing short reads
 * and writes. `once`: stop after the first successful syscall (READ on a
 * character device). *done counts bytes moved, also on failure. */
static devhost_status move_bytes(struct devhost_device *dev, int writing, int use_offset, uint64_t offset,
                                 uint8_t *data, size_t len, int once, uint64_t deadline, size_t *done,
                                 devhost_error *err)
{
    *done = 0;
    while (*done < len) {
        size_t want = len - *done;
        uint8_t *buf = data + *done;
        int bounced = 0;
        ssize_t n;
        if (want > RAW_CHUNK)
            want = RAW_CHUNK;
        if (devhost_util_cancelled(dev->cancel_fd))
            return devhost_fail(err, DEVHOST_E_CANCELLED, 0, "raw: %s: cancelled after %zu of %zu bytes",
                                dev->path, *done, len);
        if (devhost_util_deadline_passed(deadline))
            return devhost_fail(err, DEVHOST_E_TIMEOUT, 0, "raw: %s: timed out after %zu of %zu bytes",
                                dev->path, *done, len);
        /* Direct I/O goes straight to the caller's buffer when it is aligned
         * (no copy); otherwise through the aligned bounce buffer. */
        if (dev->direct && !direct_ready(dev, buf, want)) {
            bounced = 1;
            buf = bounce_buffer(dev, want);
            if (!buf)
                return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM,
                                    "raw: %s: cannot allocate a %zu-byte aligned buffer", dev->path, want);
            if (writing)
                memcpy(buf, data + *done, want);
        }
        n = one_io(dev, writing, use_offset, offset + *done, buf, want);
        if (n < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            if ((e == EAGAIN || e == EWOULDBLOCK) && dev->kind == RAW_KIND_CHAR) {
                devhost_status status = wait_ready(dev, writing ? POLLOUT : POLLIN, deadline, err);
                if (status != DEVHOST_OK)
                    return status;
                continue;
            }
            return io_failed(dev, writing, offset + *done, e, err);
        }
        if (n == 0) {
            if (dev->kind == RAW_KIND_CHAR && !writing)
                return devhost_fail(err, DEVHOST_E_REMOVED, 0, "raw: %s: end of data after %zu bytes",
                                    dev->path, *done);
            return io_failed(dev, writing, offset + *done, 0, err);
        }
        if (bounced && !writing)
            memcpy(data + *done, buf, (size_t)n);
        *done += (size_t)n;
        if (once)
            break;
    }
    return DEVHOST_OK;
}

/* Checks, before any I/O, that `*len` bytes at `offset` lie inside the
 * device (a READ that runs past the end is cut to the end) and, for direct
 * I/O, that both are aligned to the logical sector. A character device has
 * no size and no bounds. */
static devhost_status check_extent(struct devhost_device *dev, const devhost_transfer *xfer, uint64_t offset,
                                   size_t *len, devhost_error *err)
{
    if (dev->kind != RAW_KIND_CHAR) {
        if (offset >= dev->size)
            return devhost_fail(err, DEVHOST_E_INVALID, 0,
                                "raw: %s: offset %" PRIu64 " is at or past the end of the device (size %" PRIu64
                                " bytes)", dev->path, offset, dev->size);
        if (xfer->op == DEVHOST_OP_READ && *len > dev->size - offset)
            *len = (size_t)(dev->size - offset); /* READ may return fewer bytes */
        else if (*len > dev->size - offset)
            return devhost_fail(err, DEVHOST_E_INVALID, 0,
                                "raw: %s: %zu bytes at offset %" PRIu64 " run past the end of the device (size %"
                                PRIu64 " bytes)", dev->path, *len, offset, dev->size);
    }
    if (dev->direct && (offset % dev->logical_sector != 0 || *len % dev->logical_sector != 0))
        return devhost_fail(err, DEVHOST_E_INVALID, 0,
                            "raw: %s: direct I/O needs offset and length aligned to %u bytes "
                            "(the logical sector size); got offset %" PRIu64 ", length %zu",
                            dev->path, dev->logical_sector, offset, *len);
    return DEVHOST_OK;
}

devhost_status raw_io_transfer(struct devhost_device *dev, devhost_transfer *xfer, uint64_t deadline,
                               devhost_error *err)
{
    int writing = xfer->op == DEVHOST_OP_WRITE;
    int has_offset = (xfer->flags & DEVHOST_TRANSFER_HAS_OFFSET) != 0;
    uint64_t offset = has_offset ? xfer->offset : dev->position;
    size_t len = writing ? xfer->out_len : xfer->in_capacity;
    size_t done = 0;
    devhost_status status = raw_device_refresh_size(dev, err);
    if (status == DEVHOST_OK)
        status = check_extent(dev, xfer, offset, &len, err);
    if (status != DEVHOST_OK)
        return status;
    /* Character devices without an offset use read/write, which is what a
     * stream device understands; everything else takes pread/pwrite. */
    status = move_bytes(dev, writing, has_offset || dev->kind != RAW_KIND_CHAR, offset,
                        writing ? (uint8_t *)(uintptr_t)xfer->out : xfer->in, len,
                        xfer->op == DEVHOST_OP_READ && dev->kind == RAW_KIND_CHAR, deadline, &done, err);
    if (writing)
        xfer->out_done = done;
    else
        xfer->in_len = done;
    if (!has_offset)
        dev->position = offset + done;
    return status;
}
