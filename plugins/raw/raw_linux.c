/*
 * raw plugin, Linux backend: opening, geometry, I/O and control codes.
 *
 * Removal: a size smaller than the one seen at open, an end of data inside
 * the device, or ENXIO/ENODEV means the device went away (a loop device
 * detached or resized, a backing file truncated): DEVHOST_E_REMOVED.
 */
#define _GNU_SOURCE 1 /* O_DIRECT */
#include "raw_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Transfers are done in chunks of this size so that cancel and deadline are
 * checked between them, and the direct I/O bounce buffer stays small. */
#define RAW_CHUNK ((size_t)1 << 20)

static const char *kind_name(raw_kind kind)
{
    switch (kind) {
    case RAW_KIND_BLOCK: return "block";
    case RAW_KIND_CHAR: return "character";
    case RAW_KIND_FILE: return "file";
    default: return "unknown";
    }
}

static int is_removal_errno(int e)
{
    return e == ENXIO || e == ENODEV;
}

/* Status for an errno met during I/O on a device. */
static devhost_status io_status(int e)
{
    if (is_removal_errno(e))
        return DEVHOST_E_REMOVED;
    if (e == EACCES || e == EPERM || e == EROFS)
        return DEVHOST_E_ACCESS;
    if (e == ENOMEM)
        return DEVHOST_E_NO_MEMORY;
    return DEVHOST_E_IO;
}

/* ------------------------------------------------------------------------
 * Geometry
 * ------------------------------------------------------------------------ */

/* The device's current size in bytes into *size. Returns OK, E_REMOVED or
 * E_IO. Character devices have no size (0). */
static devhost_status query_size(struct devhost_device *dev, uint64_t *size, devhost_error *err)
{
    struct stat st;
    *size = 0;
    if (dev->kind == RAW_KIND_BLOCK) {
        uint64_t bytes = 0;
        if (ioctl(dev->fd, BLKGETSIZE64, &bytes) != 0) {
            int e = errno;
            return devhost_fail(err, io_status(e), e, "raw: %s: BLKGETSIZE64: %s", dev->path, strerror(e));
        }
        *size = bytes;
        return DEVHOST_OK;
    }
    if (dev->kind == RAW_KIND_FILE) {
        if (fstat(dev->fd, &st) != 0) {
            int e = errno;
            return devhost_fail(err, io_status(e), e, "raw: %s: fstat: %s", dev->path, strerror(e));
        }
        *size = (uint64_t)st.st_size;
        if (st.st_nlink == 0 && dev->open_size > 0)
            return devhost_fail(err, DEVHOST_E_REMOVED, 0, "raw: %s: image file was deleted", dev->path);
    }
    return DEVHOST_OK;
}

/* Refreshes dev->size; a size below the one seen at open means the device
 * shrank or went away: E_REMOVED naming both sizes. */
static devhost_status refresh_size(struct devhost_device *dev, devhost_error *err)
{
    uint64_t size = 0;
    devhost_status status;
    if (dev->kind == RAW_KIND_CHAR)
        return DEVHOST_OK;
    status = query_size(dev, &size, err);
    if (status != DEVHOST_OK)
        return status;
    if (size < dev->open_size)
        return devhost_fail(err, DEVHOST_E_REMOVED, 0,
                            "raw: %s: device shrank from %" PRIu64 " to %" PRIu64
                            " bytes since open (detached, resized or backing file truncated)",
                            dev->path, dev->open_size, size);
    dev->size = size;
    return DEVHOST_OK;
}

static devhost_status read_geometry(struct devhost_device *dev, devhost_error *err)
{
    struct stat st;
    devhost_status status;
    dev->logical_sector = 512;
    dev->physical_sector = 512;
    if (dev->kind == RAW_KIND_BLOCK) {
        int logical = 0;
        unsigned int physical = 0;
        if (ioctl(dev->fd, BLKSSZGET, &logical) == 0 && logical > 0)
            dev->logical_sector = (uint32_t)logical;
        if (ioctl(dev->fd, BLKPBSZGET, &physical) == 0 && physical > 0)
            dev->physical_sector = physical;
    } else if (dev->kind == RAW_KIND_FILE) {
        if (fstat(dev->fd, &st) == 0 && st.st_blksize > 0)
            dev->physical_sector = (uint32_t)st.st_blksize;
    }
    status = query_size(dev, &dev->size, err);
    dev->open_size = dev->size;
    return status;
}

/* ------------------------------------------------------------------------
 * Open and release
 * ------------------------------------------------------------------------ */

/* allow-write where a mounted filesystem would be written: BUSY naming
 * each device and where it is mounted, never suggesting exclusive = false. */
static devhost_status mounted_write_refused(struct devhost_device *dev, const raw_mounts *mounts, int e,
                                            devhost_error *err)
{
    return devhost_fail(err, DEVHOST_E_BUSY, e,
                        "raw: %s: busy: mounted (%s): a raw write would corrupt the mounted filesystem; "
                        "unmount it first", dev->path, mounts->where);
}

/* The open failed with EBUSY: O_EXCL on a block device that is mounted or
 * claimed, or a character device in exclusive use. The mounts are looked up
 * by the number stat saw before the open (there is no descriptor). */
static devhost_status busy(struct devhost_device *dev, int e, devhost_error *err)
{
    raw_mounts mounts;
    if (dev->kind != RAW_KIND_BLOCK)
        return devhost_fail(err, DEVHOST_E_BUSY, e, "raw: %s: busy: in use by another program", dev->path);
    raw_mounts_of_device(dev->rdev, &mounts);
    if (mounts.count > 0 && !dev->allow_write)
        return devhost_fail(err, DEVHOST_E_BUSY, e,
                            "raw: %s: busy: mounted (%s): exclusive = true wants it to itself; "
                            "exclusive = false reads it while mounted", dev->path, mounts.where);
    if (mounts.count > 0 && dev->allow_mounted_write)
        return devhost_fail(err, DEVHOST_E_BUSY, e,
                            "raw: %s: busy: mounted (%s): exclusive = true cannot open a mounted device; "
                            "allow-mounted-write needs exclusive = false", dev->path, mounts.where);
    if (mounts.count > 0)
        return mounted_write_refused(dev, &mounts, e, err);
    if (dev->allow_write)
        return devhost_fail(err, DEVHOST_E_BUSY, e,
                            "raw: %s: busy: held exclusively by another program, or by the kernel "
                            "(device mapper, RAID, swap)", dev->path);
    return devhost_fail(err, DEVHOST_E_BUSY, e,
                        "raw: %s: busy: held exclusively by another program, or by the kernel "
                        "(device mapper, RAID, swap); exclusive = false shares it for reading", dev->path);
}

/* With allow-write and without allow-mounted-write, refuses a block device
 * or image file through which a mounted filesystem would be written: the
 * device itself, a partition, a device stacked on it or a loop device backed
 * by it (raw_mounts.c), found from the opened descriptor's numbers. On a
 * block device opened with O_EXCL, the device, its partitions and stacked
 * devices cannot be mounted after this check (a loop device set up over it
 * later can); with exclusive = false a mount made later is not seen. */
static devhost_status refuse_mounted_write(struct devhost_device *dev, const struct stat *st, devhost_error *err)
{
    raw_mounts mounts;
    if (!dev->allow_write || dev->allow_mounted_write)
        return DEVHOST_OK;
    if (dev->kind == RAW_KIND_BLOCK)
        raw_mounts_of_device(st->st_rdev, &mounts);
    else if (dev->kind == RAW_KIND_FILE)
        raw_mounts_of_file(st->st_dev, st->st_ino, &mounts);
    else
        return DEVHOST_OK;
    if (mounts.count < 0)
        return devhost_fail(err, DEVHOST_E_IO, mounts.os_errno,
                            "raw: %s: cannot read /proc/self/mountinfo to make sure no mounted filesystem "
                            "would be written: %s", dev->path, strerror(mounts.os_errno));
    return mounts.count > 0 ? mounted_write_refused(dev, &mounts, 0, err) : DEVHOST_OK;
}

static devhost_status open_failed(struct devhost_device *dev, int e, devhost_error *err)
{
    const char *mode = dev->allow_write ? "read-write" : "read-only";
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return devhost_fail(err, DEVHOST_E_NOT_FOUND, e, "raw: %s: no such device or file", dev->path);
    case ENXIO:
    case ENODEV:
        return devhost_fail(err, DEVHOST_E_NOT_FOUND, e, "raw: %s: no device behind this node (%s)",
                            dev->path, strerror(e));
    case EBUSY:
        return busy(dev, e, err);
    case EACCES:
    case EPERM:
        return devhost_fail(err, DEVHOST_E_ACCESS, e, "raw: %s: permission denied opening %s",
                            dev->path, mode);
    case EROFS:
        return devhost_fail(err, DEVHOST_E_ACCESS, e,
                            "raw: %s: device is read-only, cannot open for writing (allow-write = true)",
                            dev->path);
    case EINVAL:
        if (dev->direct)
            return devhost_fail(err, DEVHOST_E_INVALID, e,
                                "raw: %s: direct I/O (O_DIRECT) is not supported here", dev->path);
        return devhost_fail(err, DEVHOST_E_INVALID, e, "raw: %s: cannot open: %s", dev->path, strerror(e));
    default:
        return devhost_fail(err, DEVHOST_E_IO, e, "raw: %s: cannot open %s: %s", dev->path, mode, strerror(e));
    }
}

/* Looks before opening: opening a FIFO would block, and nothing but a
 * device or a regular file is ours to open. stat() follows symlinks
 * (/dev/disk/by-id/...). Sets dev->kind, and dev->rdev for busy(); the
 * opened descriptor's numbers replace it. */
static devhost_status classify(struct devhost_device *dev, devhost_error *err)
{
    struct stat st;
    if (stat(dev->path, &st) != 0)
        return open_failed(dev, errno, err);
    if (S_ISBLK(st.st_mode))
        dev->kind = RAW_KIND_BLOCK;
    else if (S_ISCHR(st.st_mode))
        dev->kind = RAW_KIND_CHAR;
    else if (S_ISREG(st.st_mode))
        dev->kind = RAW_KIND_FILE;
    else
        return devhost_fail(err, DEVHOST_E_INVALID, 0,
                            "raw: %s: not a block device, character device or regular file", dev->path);
    if (dev->direct && dev->kind == RAW_KIND_CHAR)
        return devhost_fail(err, DEVHOST_E_INVALID, 0,
                            "raw: %s: direct = true applies to block devices and image files, "
                            "not character devices", dev->path);
    dev->rdev = st.st_rdev;
    return DEVHOST_OK;
}

/* An image file has no O_EXCL; a non-blocking flock keeps two devhost
 * clients from driving it at once. */
static devhost_status lock_image(struct devhost_device *dev, devhost_error *err)
{
    int e;
    if (dev->kind != RAW_KIND_FILE || !dev->exclusive ||
        flock(dev->fd, (dev->allow_write ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0)
        return DEVHOST_OK;
    e = errno;
    if (e == EWOULDBLOCK)
        return devhost_fail(err, DEVHOST_E_BUSY, e,
                            "raw: %s: image file is locked by another client (set exclusive = false to share it)",
                            dev->path);
    return devhost_fail(err, DEVHOST_E_IO, e, "raw: %s: flock: %s", dev->path, strerror(e));
}

devhost_status raw_linux_open(struct devhost_device *dev, int inherit, devhost_error *err)
{
    struct stat st;
    int flags;
    int fd_flags;
    devhost_status status = classify(dev, err);
    if (status != DEVHOST_OK)
        return status;

    /* Never O_CREAT or O_TRUNC: open what exists, as it is. */
    flags = (dev->allow_write ? O_RDWR : O_RDONLY) | O_NOCTTY;
    if (!inherit)
        flags |= O_CLOEXEC;
    if (dev->direct)
        flags |= O_DIRECT;
    if (dev->kind == RAW_KIND_BLOCK && dev->exclusive)
        flags |= O_EXCL; /* on a block device: fail EBUSY if mounted or held */
    if (dev->kind == RAW_KIND_CHAR)
        flags |= O_NONBLOCK; /* waits go through poll with the cancel handle */
    dev->fd = open(dev->path, flags);
    if (dev->fd < 0)
        return open_failed(dev, errno, err);
    fd_flags = fcntl(dev->fd, F_GETFD);
    if (fd_flags < 0 || fstat(dev->fd, &st) != 0) {
        int e = errno;
        return devhost_fail(err, DEVHOST_E_IO, e, "raw: %s: fstat after open: %s", dev->path, strerror(e));
    }
    /* The node may have been replaced between stat and open. */
    if ((dev->kind == RAW_KIND_BLOCK && !S_ISBLK(st.st_mode)) ||
        (dev->kind == RAW_KIND_CHAR && !S_ISCHR(st.st_mode)) ||
        (dev->kind == RAW_KIND_FILE && !S_ISREG(st.st_mode)))
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "raw: %s: changed type while being opened", dev->path);
    dev->rdev = st.st_rdev;
    status = refuse_mounted_write(dev, &st, err);
    if (status == DEVHOST_OK)
        status = lock_image(dev, err);
    if (status != DEVHOST_OK)
        return status;

    if (dev->kind == RAW_KIND_BLOCK && dev->allow_write) {
        int ro = 0;
        if (ioctl(dev->fd, BLKROGET, &ro) == 0 && ro)
            return devhost_fail(err, DEVHOST_E_ACCESS, EROFS,
                                "raw: %s: device is read-only, cannot honour allow-write = true", dev->path);
    }
    status = read_geometry(dev, err);
    if (status != DEVHOST_OK)
        return status;
    devhost_logf(raw_services, dev->host_device, DEVHOST_LOG_DEBUG,
                 "opened %s (%s, %" PRIu64 " bytes, sectors %u/%u, %s%s%s)", dev->path, kind_name(dev->kind),
                 dev->size, dev->logical_sector, dev->physical_sector, dev->allow_write ? "read-write" : "read-only",
                 (flags & O_EXCL) ? ", exclusive" : "", dev->direct ? ", direct" : "");
    return DEVHOST_OK;
}

devhost_status raw_linux_release(struct devhost_device *dev, devhost_error *err)
{
    devhost_status status = DEVHOST_OK;
    free(dev->bounce);
    dev->bounce = NULL;
    dev->bounce_size = 0;
    if (dev->fd >= 0) {
        /* close(2) may report a deferred write error; the fd is gone anyway. */
        if (close(dev->fd) != 0 && errno != EINTR) {
            int e = errno;
            status = devhost_fail(err, io_status(e), e, "raw: %s: close: %s", dev->path, strerror(e));
        }
        dev->fd = -1;
    }
    return status;
}

/* ------------------------------------------------------------------------
 * Waiting: cancel handle and deadline
 * ------------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    if (raw_services && raw_services->monotonic_ns)
        return raw_services->monotonic_ns();
    return 0;
}

/* 1 if the cancel handle is readable. */
static int cancelled(const struct devhost_device *dev)
{
    struct pollfd p;
    if (dev->cancel_fd < 0)
        return 0;
    p.fd = dev->cancel_fd;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* Milliseconds left before `deadline` (0: none), for poll: -1 without one. */
static int remaining_ms(uint64_t deadline)
{
    uint64_t now;
    if (deadline == 0)
        return -1;
    now = now_ns();
    if (now >= deadline)
        return 0;
    return (int)((deadline - now + 999999u) / 1000000u);
}

/* Waits until a character device is ready for `events`. Returns OK,
 * E_TIMEOUT, E_CANCELLED, E_REMOVED (hung up) or E_IO. */
static devhost_status wait_ready(struct devhost_device *dev, short events, uint64_t deadline, devhost_error *err)
{
    for (;;) {
        struct pollfd p[2];
        int n;
        int ms = remaining_ms(deadline);
        if (deadline != 0 && ms == 0)
            return devhost_fail(err, DEVHOST_E_TIMEOUT, 0, "raw: %s: timed out waiting for the device", dev->path);
        p[0].fd = dev->fd;
        p[0].events = events;
        p[0].revents = 0;
        p[1].fd = dev->cancel_fd;
        p[1].events = POLLIN;
        p[1].revents = 0;
        n = poll(p, dev->cancel_fd >= 0 ? 2 : 1, ms);
        if (n < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            return devhost_fail(err, DEVHOST_E_IO, e, "raw: %s: poll: %s", dev->path, strerror(e));
        }
        if (n > 0 && dev->cancel_fd >= 0 && (p[1].revents & POLLIN))
            return devhost_fail(err, DEVHOST_E_CANCELLED, 0, "raw: %s: cancelled", dev->path);
        if (p[0].revents & POLLNVAL)
            return devhost_fail(err, DEVHOST_E_REMOVED, 0, "raw: %s: device descriptor is no longer valid", dev->path);
        if (p[0].revents & (events | POLLERR | POLLHUP))
            return DEVHOST_OK; /* the read or write itself tells what happened */
    }
}

/* ------------------------------------------------------------------------
 * Reads and writes
 * ------------------------------------------------------------------------ */

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
        memset(&ignored, 0, sizeof ignored);
        ignored.struct_size = sizeof ignored;
        if (query_size(dev, &size, &ignored) == DEVHOST_OK && size <= offset)
            return devhost_fail(err, DEVHOST_E_REMOVED, 0,
                                "raw: %s: %s at offset %" PRIu64 " met the end of the device, which shrank from %"
                                PRIu64 " to %" PRIu64 " bytes (detached, resized or backing file truncated)",
                                dev->path, what, offset, dev->open_size, size);
        return devhost_fail(err, DEVHOST_E_IO, 0, "raw: %s: %s at offset %" PRIu64 " made no progress",
                            dev->path, what, offset);
    }
    if (is_removal_errno(e))
        return devhost_fail(err, DEVHOST_E_REMOVED, e, "raw: %s: device removed during %s at offset %" PRIu64 " (%s)",
                            dev->path, what, offset, strerror(e));
    if (e == EINVAL && dev->direct)
        return devhost_fail(err, DEVHOST_E_INVALID, e,
                            "raw: %s: direct %s at offset %" PRIu64 " refused by the kernel (alignment %u bytes?): %s",
                            dev->path, what, offset, dev->logical_sector, strerror(e));
    if (e == ESPIPE)
        return devhost_fail(err, DEVHOST_E_INVALID, e, "raw: %s: this device does not take offsets", dev->path);
    return devhost_fail(err, io_status(e), e, "raw: %s: %s at offset %" PRIu64 ": %s", dev->path, what, offset,
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
        if (cancelled(dev))
            return devhost_fail(err, DEVHOST_E_CANCELLED, 0, "raw: %s: cancelled after %zu of %zu bytes",
                                dev->path, *done, len);
        if (deadline != 0 && now_ns() >= deadline)
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

devhost_status raw_linux_io(struct devhost_device *dev, devhost_transfer *xfer, devhost_error *err)
{
    int writing = xfer->op == DEVHOST_OP_WRITE;
    int has_offset = (xfer->flags & DEVHOST_TRANSFER_HAS_OFFSET) != 0;
    uint64_t offset = has_offset ? xfer->offset : dev->position;
    size_t len = writing ? xfer->out_len : xfer->in_capacity;
    uint64_t deadline = 0;
    size_t done = 0;
    devhost_status status;

    /* Everything below is checked before any I/O. */
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
    status = refresh_size(dev, err);
    if (status != DEVHOST_OK)
        return status;
    if (dev->kind != RAW_KIND_CHAR) {
        if (offset >= dev->size)
            return devhost_fail(err, DEVHOST_E_INVALID, 0,
                                "raw: %s: offset %" PRIu64 " is at or past the end of the device (size %" PRIu64
                                " bytes)", dev->path, offset, dev->size);
        if (xfer->op == DEVHOST_OP_READ && len > dev->size - offset)
            len = (size_t)(dev->size - offset); /* READ may return fewer bytes */
        else if (len > dev->size - offset)
            return devhost_fail(err, DEVHOST_E_INVALID, 0,
                                "raw: %s: %zu bytes at offset %" PRIu64 " run past the end of the device (size %"
                                PRIu64 " bytes)", dev->path, len, offset, dev->size);
    }
    if (dev->direct && (offset % dev->logical_sector != 0 || len % dev->logical_sector != 0))
        return devhost_fail(err, DEVHOST_E_INVALID, 0,
                            "raw: %s: direct I/O needs offset and length aligned to %u bytes "
                            "(the logical sector size); got offset %" PRIu64 ", length %zu",
                            dev->path, dev->logical_sector, offset, len);

    if (xfer->timeout_ms >= 0 && now_ns() != 0)
        deadline = now_ns() + (uint64_t)xfer->timeout_ms * 1000000u;
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

/* ------------------------------------------------------------------------
 * Control codes
 * ------------------------------------------------------------------------ */

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
        if (ioctl(dev->fd, BLKROGET, &ro) != 0) {
            int e = errno;
            return devhost_fail(err, io_status(e), e, "raw: %s: BLKROGET: %s", dev->path, strerror(e));
        }
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
    if (fsync(dev->fd) != 0) {
        int e = errno;
        /* Character devices usually have nothing to sync. */
        if (!(dev->kind == RAW_KIND_CHAR && (e == EINVAL || e == EROFS)))
            return devhost_fail(err, io_status(e), e, "raw: %s: fsync: %s", dev->path, strerror(e));
    }
    if (dev->kind == RAW_KIND_BLOCK && ioctl(dev->fd, BLKFLSBUF, 0) != 0) {
        int e = errno;
        return devhost_fail(err, io_status(e), e, "raw: %s: BLKFLSBUF: %s", dev->path, strerror(e));
    }
    return DEVHOST_OK;
}

devhost_status raw_linux_control(struct devhost_device *dev, devhost_transfer *xfer, devhost_error *err)
{
    uint64_t value = 0;
    devhost_status status;
    const char *name;

    switch (xfer->control_code) {
    case RAW_CONTROL_GET_LENGTH: name = "get-length"; break;
    case RAW_CONTROL_GET_LOGICAL_SECTOR_SIZE: name = "get-logical-sector-size"; break;
    case RAW_CONTROL_GET_PHYSICAL_SECTOR_SIZE: name = "get-physical-sector-size"; break;
    case RAW_CONTROL_GET_READ_ONLY: name = "get-read-only"; break;
    case RAW_CONTROL_GET_ROTATIONAL: name = "get-rotational"; break;
    case RAW_CONTROL_GET_DISCARD: name = "get-discard"; break;
    case RAW_CONTROL_FLUSH: name = "flush"; break;
    default:
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0,
                            "raw: %s: unknown control code %u (known: 1-7, see `devhost plugins`)", dev->path,
                            xfer->control_code);
    }
    if (xfer->control_code == RAW_CONTROL_FLUSH && !dev->allow_write)
        return devhost_fail(err, DEVHOST_E_ACCESS, 0,
                            "raw: %s: control %s changes the device and is refused without allow-write = true",
                            dev->path, name);
    if (xfer->out_len != 0)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "raw: %s: control %s takes no input (got %zu bytes)",
                            dev->path, name, xfer->out_len);

    switch (xfer->control_code) {
    case RAW_CONTROL_GET_LENGTH:
        if (dev->kind == RAW_KIND_CHAR)
            return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "raw: %s: a character device has no length",
                                dev->path);
        status = refresh_size(dev, err);
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

devhost_status raw_linux_info(struct devhost_device *dev, const devhost_info_sink *sink, devhost_error *err)
{
    uint64_t ro = 0;
    devhost_error scratch;
    devhost_status status = refresh_size(dev, err);
    if (status != DEVHOST_OK)
        return status;
    sink->put(sink->context, "path", dev->path);
    sink->put(sink->context, "type", kind_name(dev->kind));
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
    memset(&scratch, 0, sizeof scratch);
    scratch.struct_size = sizeof scratch;
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
