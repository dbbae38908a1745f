/*
 * The raw plugin's private header: per-device state, and the backends
 * behind the hooks in plugin.c, one file per concern:
 *
 *   backend_device.c  the node itself: what it is (block, character, file),
 *                     opening it (open-existing, O_EXCL, O_DIRECT, the image
 *                     lock, the mounted-write refusal), its geometry and
 *                     size now, closing it; the status an errno means
 *   backend_io.c      reads and writes at an offset: pieces, direct I/O and
 *                     its bounce buffer, waits, removal detection
 *   backend_control.c the control codes and info
 *   backend_sysfs.c   what sysfs says about a block device: model, serial,
 *                     WWN, queue flags, partitions, holders, loop devices
 *   backend_mounts.c  which mounted filesystems a write to a block device or
 *                     an image file would reach (/proc/self/mountinfo)
 *   backend_enumerate.c  the block devices of this machine, for `devhost
 *                     scan` (sysfs, /dev/disk/by-id)
 *
 * Per-device state needs no lock: the host never calls two hooks of one
 * device at the same time, and the backends keep no process-wide state.
 *
 * Deadlines are absolute CLOCK_MONOTONIC ns, DEVHOST_DEADLINE_NONE for none
 * (devhost/plugin_util.h): a hook turns its timeout into one on entry.
 */
#ifndef DEVHOST_RAW_PRIVATE_H
#define DEVHOST_RAW_PRIVATE_H

#include <devhost/plugin.h>
#include <devhost/plugin_util.h>

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

/* Control codes (devhost_transfer.control_code). Numbers are part of the
 * plugin's interface: only append. Outputs are decimal ASCII text without a
 * newline (see README.md). */
enum {
    RAW_CONTROL_GET_LENGTH = 1,               /* bytes: BLKGETSIZE64 / st_size */
    RAW_CONTROL_GET_LOGICAL_SECTOR_SIZE = 2,  /* BLKSSZGET; files: 512 */
    RAW_CONTROL_GET_PHYSICAL_SECTOR_SIZE = 3, /* BLKPBSZGET; files: st_blksize */
    RAW_CONTROL_GET_READ_ONLY = 4,            /* 1 or 0: BLKROGET / file mode */
    RAW_CONTROL_GET_ROTATIONAL = 5,           /* 1 or 0: sysfs queue/rotational */
    RAW_CONTROL_GET_DISCARD = 6,              /* sysfs queue/discard_max_bytes */
    RAW_CONTROL_FLUSH = 7                     /* fsync + BLKFLSBUF; modifies */
};

typedef enum raw_kind {
    RAW_KIND_BLOCK = 1,
    RAW_KIND_CHAR = 2,
    RAW_KIND_FILE = 3
} raw_kind;

/* Per-device state: allocated zeroed by plugin.c's open (fd = -1), filled by
 * raw_device_open, released by raw_device_release. */
struct devhost_device {
    int fd;                  /* -1 until opened */
    raw_kind kind;
    dev_t rdev;              /* block and character devices */
    char path[PATH_MAX];     /* as the host passed it */
    int allow_write;         /* option allow-write */
    int exclusive;           /* option exclusive */
    int allow_mounted_write; /* option allow-mounted-write */
    int direct;              /* option direct: O_DIRECT */
    uint64_t size;           /* bytes, as last seen; 0 for char devices */
    uint64_t open_size;      /* bytes at open: a smaller size later means the
                                device shrank or went away */
    uint32_t logical_sector; /* direct I/O alignment */
    uint32_t physical_sector;
    uint64_t position;       /* next offset for transfers without one */
    int cancel_fd;           /* host's, never closed here */
    const devhost_host_device *host_device;
    uint8_t *bounce;         /* aligned buffer for direct I/O */
    size_t bounce_size;
    int shared;              /* the host holds a copy of fd (share_fd: "block"
                                or "file", when exclusive) */
};

/* Set by negotiation, read-only afterwards. */
extern const devhost_host_services *raw_services;

/* ------------------------------------------------------------------------
 * backend_device.c
 * ------------------------------------------------------------------------ */

/* Opens dev->path as configured in dev (allow_write, exclusive, direct,
 * allow_mounted_write) and reads its geometry. `inherit`: leave the
 * descriptor inheritable. Exclusive, the descriptor holds a claim (O_EXCL,
 * or an image file's flock) and the host gets a copy of it once open
 * (share_fd, role "block" or "file"). Returns OK, E_NOT_FOUND, E_BUSY,
 * E_ACCESS, E_INVALID, E_IO. On failure the state is still safe to pass to
 * raw_device_release. */
devhost_status raw_device_open(struct devhost_device *dev, int inherit, devhost_error *err);

/* Takes back the host's copy, closes the descriptor and frees buffers (not
 * `dev` itself). Returns OK or E_IO when close reported an error. */
devhost_status raw_device_release(struct devhost_device *dev, devhost_error *err);

/* The device's current size in bytes into *size (0 for a character
 * device). Returns OK, E_REMOVED (also: an image file deleted since open)
 * or E_IO. */
devhost_status raw_device_query_size(struct devhost_device *dev, uint64_t *size, devhost_error *err);

/* Refreshes dev->size; a size below the one seen at open means the device
 * shrank or went away: E_REMOVED naming both sizes. */
devhost_status raw_device_refresh_size(struct devhost_device *dev, devhost_error *err);

/* The status an errno met on an open device means: E_REMOVED (ENXIO,
 * ENODEV), E_ACCESS, E_NO_MEMORY, else E_IO. */
devhost_status raw_io_status(int e);

/* 1 when errno `e` means the device went away. */
int raw_is_removal_errno(int e);

/* Fails with the current errno: "raw: PATH: WHAT: <strerror>", the status
 * raw_io_status gives it. */
devhost_status raw_fail_errno(const struct devhost_device *dev, const char *what, devhost_error *err);

/* "block", "character", "file". */
const char *raw_kind_name(raw_kind kind);

/* ------------------------------------------------------------------------
 * backend_io.c
 * ------------------------------------------------------------------------ */

/* WRITE, READ and READ_EXACT, after plugin.c checked permission and
 * buffers: checks bounds and alignment before any I/O, then moves the bytes
 * in pieces, checking `deadline` and the cancel handle between them. Sets
 * out_done or in_len, also on failure. */
devhost_status raw_io_transfer(struct devhost_device *dev, devhost_transfer *xfer, uint64_t deadline,
                               devhost_error *err);

/* ------------------------------------------------------------------------
 * backend_control.c
 * ------------------------------------------------------------------------ */

/* CONTROL: one of RAW_CONTROL_* (plugin.c checked the code, allow-write and
 * that there is no input; `name` is the code's name), output as decimal
 * text into xfer->in. */
devhost_status raw_control(struct devhost_device *dev, devhost_transfer *xfer, const char *name,
                           devhost_error *err);

/* info: reports type, size, sector sizes, flags and sysfs facts. */
devhost_status raw_info_report(struct devhost_device *dev, const devhost_info_sink *sink, devhost_error *err);

/* ------------------------------------------------------------------------
 * backend_sysfs.c
 * ------------------------------------------------------------------------ */

/* Reads /sys/dev/block/MAJ:MIN/<rel> (for a partition, queue/ and device/
 * come from its whole disk) into buf, without the trailing newline.
 * Returns 0, or -1 when the attribute does not exist. */
int raw_sysfs_read(dev_t rdev, const char *rel, char *buf, size_t size);

/* Reads a small text file (a sysfs attribute) into buf, without its
 * trailing whitespace. 0, or -1 when it cannot be read. */
int raw_read_text(const char *file, char *buf, size_t size);

/* Reports, through `sink`, the sysfs facts of a block device: model, vendor,
 * serial, wwn, backing-file (loop), rotational, discard, partitions, and
 * whether a filesystem on it is mounted (raw_mounts_of_device), and where. */
void raw_sysfs_report(dev_t rdev, const devhost_info_sink *sink);

/* Called with a device number and its kernel name (e.g. "loop0p1"). */
typedef void (*raw_sysfs_visit)(void *context, dev_t rdev, const char *name);

/* Visits the partitions of a whole disk (none for a partition). Returns
 * how many. */
int raw_sysfs_partitions(dev_t rdev, raw_sysfs_visit visit, void *context);

/* Visits the devices stacked directly on `rdev` (its sysfs holders/: device
 * mapper, md). Returns how many. */
int raw_sysfs_holders(dev_t rdev, raw_sysfs_visit visit, void *context);

/* Visits every loop device that has a backing file attached. Returns how
 * many. */
int raw_sysfs_loops(raw_sysfs_visit visit, void *context);

/* The kernel name of a block device ("loop0p1") into name. 0 or -1. */
int raw_sysfs_name(dev_t rdev, char *name, size_t size);

/* ------------------------------------------------------------------------
 * backend_enumerate.c
 * ------------------------------------------------------------------------ */

/* The enumerate hook: whole disks, partitions and loop devices with a
 * backing file from /sys/block (with DEVHOST_ENUMERATE_ALL also ram, zram,
 * device mapper and the like), by-id links from /dev/disk/by-id, size and
 * model in the description; nothing is opened. */
devhost_status raw_enumerate(const devhost_enumerate_params *params, const devhost_found_sink *sink,
                             devhost_error *err);

/* ------------------------------------------------------------------------
 * backend_mounts.c
 * ------------------------------------------------------------------------ */

#define RAW_MOUNTS_TEXT 1024

/* The mounted filesystems a write would reach. */
typedef struct raw_mounts {
    int count;                    /* mounts found; -1: mountinfo unreadable */
    int os_errno;                 /* why, when count is -1 */
    char points[RAW_MOUNTS_TEXT]; /* "/mnt/a,/mnt/b": mount points, decoded */
    char where[RAW_MOUNTS_TEXT];  /* "/dev/loop0p1 on /mnt/a, ...": each
                                     device and where it is mounted */
} raw_mounts;

/* Mounts of the block device `rdev`, of its partitions, of the devices
 * stacked on them (holders) and of loop devices backed by any of these,
 * found by device number in /proc/self/mountinfo. */
void raw_mounts_of_device(dev_t rdev, raw_mounts *out);

/* Mounts reached through a regular file (st_dev, st_ino): those of the loop
 * devices backed by it, as raw_mounts_of_device finds them. */
void raw_mounts_of_file(dev_t file_dev, ino_t file_ino, raw_mounts *out);

#endif /* DEVHOST_RAW_PRIVATE_H */
