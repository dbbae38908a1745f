/*
 * raw plugin: which mounted filesystems a write would reach.
 *
 * A write to a block device reaches everything built on it: its partitions,
 * the devices stacked on them (device mapper, md: sysfs holders/), and loop
 * devices whose backing file is one of these. A write to an image file
 * reaches the loop devices backed by it, and what is built on those.
 *
 * Everything is matched by device number, never by path (a config may name
 * a device through a symlink or \\.\PhysicalDriveN): the set of device
 * numbers comes from sysfs and from the loop devices themselves
 * (LOOP_GET_STATUS64: the backing file's st_dev, st_ino and st_rdev), and is
 * compared with the MAJ:MIN field of /proc/self/mountinfo. Filesystems that
 * show an anonymous device number there (major 0: btrfs) are matched by
 * their mount source's device number instead.
 *
 * Only this process's mount namespace is visible in /proc/self/mountinfo.
 */
#define _GNU_SOURCE 1 /* getline, strtok_r */
#include "raw_private.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Devices built on one device that are followed; more are never seen in
 * practice (the walk stops there rather than growing without bound). */
#define RAW_MOUNTS_MAX_DEVICES 64

/* Device numbers a write reaches, each with a name for messages
 * ("/dev/loop0p1"). */
struct devset {
    size_t count;
    dev_t rdev[RAW_MOUNTS_MAX_DEVICES];
    char name[RAW_MOUNTS_MAX_DEVICES][48];
};

static int devset_find(const struct devset *set, dev_t rdev)
{
    size_t i;
    for (i = 0; i < set->count; i++)
        if (set->rdev[i] == rdev)
            return (int)i;
    return -1;
}

/* Adds a device with the name messages give it. */
static void devset_put(struct devset *set, dev_t rdev, const char *display)
{
    if (devset_find(set, rdev) >= 0 || set->count == RAW_MOUNTS_MAX_DEVICES)
        return;
    set->rdev[set->count] = rdev;
    snprintf(set->name[set->count], sizeof set->name[0], "%s", display);
    set->count++;
}

/* Adds a device by its kernel name ("loop0p1"); a raw_sysfs_visit. */
static void devset_add(void *context, dev_t rdev, const char *name)
{
    char display[48];
    snprintf(display, sizeof display, "/dev/%s", name);
    devset_put(context, rdev, display);
}

/* A device number as the kernel encodes it in loop_info64
 * (new_encode_dev: minor bits 0-7 and 20-31, major bits 8-19). */
static dev_t kernel_dev(uint64_t value)
{
    return makedev((unsigned int)((value & 0xfff00u) >> 8),
                   (unsigned int)((value & 0xffu) | ((value >> 12) & 0xfff00u)));
}

/* What loop device `rdev` (kernel name `name`) is backed by, asked of the
 * loop device itself on /dev/NAME after checking that node is `rdev`. The
 * backing file's path is never looked up. 0 or -1. */
static int loop_status(dev_t rdev, const char *name, struct loop_info64 *info)
{
    char node[64];
    struct stat st;
    int fd;
    int rc = -1;
    if ((size_t)snprintf(node, sizeof node, "/dev/%s", name) >= sizeof node)
        return -1;
    fd = open(node, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    memset(info, 0, sizeof *info);
    if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == rdev && ioctl(fd, LOOP_GET_STATUS64, info) == 0)
        rc = 0;
    close(fd);
    return rc;
}

/* Which loop devices to add: those backed by the file (file_dev, file_ino)
 * when by_file, else those backed by a block device already in `set`. */
struct loop_scan {
    struct devset *set;
    int by_file;
    dev_t file_dev;
    ino_t file_ino;
};

static void match_loop(void *context, dev_t loop, const char *name)
{
    struct loop_scan *scan = context;
    struct loop_info64 info;
    if (devset_find(scan->set, loop) >= 0 || loop_status(loop, name, &info) != 0)
        return;
    if (scan->by_file ? kernel_dev(info.lo_device) == scan->file_dev && info.lo_inode == (uint64_t)scan->file_ino
                      : info.lo_rdevice != 0 && devset_find(scan->set, kernel_dev(info.lo_rdevice)) >= 0)
        devset_add(scan->set, loop, name);
}

/* Grows `set` until nothing more is built on it: partitions and holders of
 * every member, then loop devices backed by a member, and again. */
static void expand(struct devset *set)
{
    struct loop_scan scan = {set, 0, 0, 0};
    size_t before;
    if (set->count == 0)
        return;
    do {
        size_t i;
        for (i = 0; i < set->count; i++) {
            raw_sysfs_partitions(set->rdev[i], devset_add, set);
            raw_sysfs_holders(set->rdev[i], devset_add, set);
        }
        before = set->count;
        raw_sysfs_loops(match_loop, &scan);
    } while (set->count > before && set->count < RAW_MOUNTS_MAX_DEVICES);
}

/* Decodes mountinfo's octal escapes (\040 space, \011 tab, \012 newline,
 * \134 backslash) in place. An escape of a byte that does not print stays as
 * it is, so a message naming the path stays on one line. */
static void decode_octal(char *s)
{
    char *in = s;
    char *out = s;
    while (*in) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' && in[3] >= '0' &&
            in[3] <= '7') {
            int value = (in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0');
            if (value >= 0x20 && value != 0x7f) {
                *out++ = (char)value;
                in += 4;
                continue;
            }
        }
        *out++ = *in++;
    }
    *out = '\0';
}

/* The fields of a mountinfo line this file needs:
 *   id parent MAJ:MIN root mount-point options [optional...] - fstype source super-options */
struct mount_line {
    const char *number;
    char *point;
    char *source;
};

static int parse_mount_line(char *line, struct mount_line *m)
{
    char *save = NULL;
    char *tok;
    int field = 0;
    int dash = -1; /* field number of the "-" separator */
    memset(m, 0, sizeof *m);
    for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
        field++;
        if (field == 3)
            m->number = tok;
        else if (field == 5)
            m->point = tok;
        else if (field > 6 && dash < 0 && strcmp(tok, "-") == 0)
            dash = field;
        else if (dash > 0 && field == dash + 2) {
            m->source = tok;
            break;
        }
    }
    return m->number && m->point ? 0 : -1;
}

/* The index in `set` of the device a mount is on, or -1. */
static int mount_device(const struct devset *set, struct mount_line *m)
{
    unsigned int maj = 0;
    unsigned int min = 0;
    struct stat st;
    if (sscanf(m->number, "%u:%u", &maj, &min) != 2)
        return -1;
    if (maj != 0)
        return devset_find(set, makedev(maj, min));
    /* An anonymous device (btrfs): the source names the block device. */
    if (!m->source || strncmp(m->source, "/dev/", 5) != 0)
        return -1;
    decode_octal(m->source);
    if (stat(m->source, &st) != 0 || !S_ISBLK(st.st_mode))
        return -1;
    return devset_find(set, st.st_rdev);
}

/* Appends `item` to a list in buf after `separator`; what does not fit is
 * left out, and the list then ends with "...". */
static void list_add(char *buf, size_t size, const char *separator, const char *item)
{
    size_t used = strlen(buf);
    size_t need = (used ? strlen(separator) : 0) + strlen(item);
    if (used >= 3 && strcmp(buf + used - 3, "...") == 0)
        return;
    if (used + need + 4 >= size) {
        if (used + 4 < size)
            strcat(buf, "...");
        return;
    }
    if (used)
        strcat(buf, separator);
    strcat(buf, item);
}

/* Fills `out` with the mounts of the devices in `set`. */
static void scan_mounts(const struct devset *set, raw_mounts *out)
{
    FILE *f;
    char *line = NULL;
    size_t capacity = 0;
    out->count = 0;
    out->os_errno = 0;
    out->points[0] = '\0';
    out->where[0] = '\0';
    if (set->count == 0)
        return;
    f = fopen("/proc/self/mountinfo", "re");
    if (!f) {
        out->count = -1;
        out->os_errno = errno;
        return;
    }
    while (getline(&line, &capacity, f) > 0) {
        struct mount_line m;
        char item[RAW_MOUNTS_TEXT];
        int i;
        if (parse_mount_line(line, &m) != 0 || (i = mount_device(set, &m)) < 0)
            continue;
        decode_octal(m.point);
        list_add(out->points, sizeof out->points, ",", m.point);
        snprintf(item, sizeof item, "%s on %s", set->name[i], m.point);
        list_add(out->where, sizeof out->where, ", ", item);
        out->count++;
    }
    free(line);
    fclose(f);
}

void raw_mounts_of_device(dev_t rdev, raw_mounts *out)
{
    struct devset set;
    char name[40];
    set.count = 0;
    if (raw_sysfs_name(rdev, name, sizeof name) == 0) {
        devset_add(&set, rdev, name);
    } else {
        snprintf(name, sizeof name, "block device %u:%u", major(rdev), minor(rdev));
        devset_put(&set, rdev, name);
    }
    expand(&set);
    scan_mounts(&set, out);
}

void raw_mounts_of_file(dev_t file_dev, ino_t file_ino, raw_mounts *out)
{
    struct devset set;
    struct loop_scan scan;
    set.count = 0;
    scan.set = &set;
    scan.by_file = 1;
    scan.file_dev = file_dev;
    scan.file_ino = file_ino;
    raw_sysfs_loops(match_loop, &scan);
    expand(&set);
    scan_mounts(&set, out);
}
