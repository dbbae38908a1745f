/*
 * raw plugin, the node itself: what it is (block device, character device,
 * image file), opening it as the options say (open-existing, O_EXCL,
 * O_DIRECT, the image file's lock, the refusal of a write that would reach
 * a mounted filesystem), its geometry and its size now, and closing it.
 *
 * Removal: a size smaller than the one seen at open, or ENXIO/ENODEV, means
 * the device went away (a loop device detached or resized, a backing file
 * truncated): DEVHOST_E_REMOVED.
 */
#define _GNU_SOURCE 1 /* O_DIRECT */
#include "raw_private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

const char *raw_kind_name(raw_kind kind)
{
    switch (kind) {
    case RAW_KIND_BLOCK: return "block";
    case RAW_KIND_CHAR: return "character";
    case RAW_KIND_FILE: return "file";
    default: return "unknown";
    }
}

int raw_is_removal_errno(int e)
{
    return e == ENXIO || e == ENODEV;
}

devhost_status raw_io_status(int e)
{
    if (raw_is_removal_errno(e))
        return DEVHOST_E_REMOVED;
    if (e == EACCES || e == EPERM || e == EROFS)
        return DEVHOST_E_ACCESS;
    if (e == ENOMEM)
        return DEVHOST_E_NO_MEMORY;
    return DEVHOST_E_IO;
}

devhost_status raw_fail_errno(const struct devhost_device *dev, const char *what, devhost_error *err)
{
    int e = errno;
    return devhost_fail(err, raw_io_status(e), e, "raw: %s: %s: %s", dev->path, what, strerror(e));
}

/* ------------------------------------------------------------------------
 * Geometry
 * ------------------------------------------------------------------------ */

devhost_status raw_device_query_size(struct devhost_device *dev, uint64_t *size, devhost_error *err)
{
    struct stat st;
    *size = 0;
    if (dev->kind == RAW_KIND_BLOCK) {
        uint64_t bytes = 0;
        if (ioctl(dev->fd, BLKGETSIZE64, &bytes) != 0)
            return raw_fail_errno(dev, "BLKGETSIZE64", err);
        *size = bytes;
        return DEVHOST_OK;
    }
    if (dev->kind == RAW_KIND_FILE) {
        if (fstat(dev->fd, &st) != 0)
            return raw_fail_errno(dev, "fstat", err);
        *size = (uint64_t)st.st_size;
        if (st.st_nlink == 0 && dev->open_size > 0)
            return devhost_fail(err, DEVHOST_E_REMOVED, 0, "raw: %s: image file was deleted", dev->path);
    }
    return DEVHOST_OK;
}

devhost_status raw_device_refresh_size(struct devhost_device *dev, devhost_error *err)
{
    uint64_t size = 0;
    devhost_status status;
    if (dev->kind == RAW_KIND_CHAR)
        return DEVHOST_OK;
    status = raw_device_query_size(dev, &size, err);
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

/* Sector sizes and the size at open. */
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
    status = raw_device_query_size(dev, &dev->size, err);
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
 * by it (backend_mounts.c), found from the opened descriptor's numbers. On a
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

/* The descriptor holds a claim when exclusive: O_EXCL on a block device,
 * the flock on an image file. The host gets a copy ("block", "file"), so
 * that if this process dies the claim lasts until the host lets it go,
 * and no other program takes the device in the gap. Without a claim there
 * is nothing to hold. */
static const char *claim_role(const struct devhost_device *dev)
{
    if (!dev->exclusive)
        return NULL;
    return dev->kind == RAW_KIND_BLOCK ? "block" : dev->kind == RAW_KIND_FILE ? "file" : NULL;
}

static void share_claim(struct devhost_device *dev)
{
    char who[PATH_MAX + 8];
    if (!claim_role(dev))
        return;
    snprintf(who, sizeof who, "raw: %s", dev->path);
    dev->shared = devhost_util_share_fd_or_warn(raw_services, dev->host_device, dev->fd, claim_role(dev), who);
}

/* Takes the host's copy back, before our close: ours is then the last one
 * (the block device's write-back happens there, its error reported). */
static void unshare_claim(struct devhost_device *dev)
{
    char who[PATH_MAX + 8];
    if (!dev->shared)
        return;
    snprintf(who, sizeof who, "raw: %s", dev->path);
    devhost_util_unshare_fd(raw_services, dev->host_device, claim_role(dev), who);
    dev->shared = 0;
}

devhost_status raw_device_open(struct devhost_device *dev, int inherit, devhost_error *err)
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
                 "opened %s (%s, %" PRIu64 " bytes, sectors %u/%u, %s%s%s)", dev->path, raw_kind_name(dev->kind),
                 dev->size, dev->logical_sector, dev->physical_sector, dev->allow_write ? "read-write" : "read-only",
                 (flags & O_EXCL) ? ", exclusive" : "", dev->direct ? ", direct" : "");
    share_claim(dev);
    return DEVHOST_OK;
}

devhost_status raw_device_release(struct devhost_device *dev, devhost_error *err)
{
    devhost_status status = DEVHOST_OK;
    free(dev->bounce);
    dev->bounce = NULL;
    dev->bounce_size = 0;
    if (dev->fd >= 0) {
        unshare_claim(dev);
        /* close(2) may report a deferred write error; the fd is gone anyway. */
        if (close(dev->fd) != 0 && errno != EINTR)
            status = raw_fail_errno(dev, "close", err);
        dev->fd = -1;
    }
    return status;
}
