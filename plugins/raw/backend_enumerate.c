/*
 * raw plugin, the enumerate hook (`devhost scan`): the block devices this
 * machine has, from sysfs, without opening any of them.
 *
 * Listed: every /sys/block/NAME whose sysfs node is a real device (not
 * under /sys/devices/virtual: disks such as sda, nvme0n1, vda, mmcblk0) and
 * has a medium (size > 0), and every loop device with a backing file; then
 * the partitions of each. With DEVHOST_ENUMERATE_ALL also the other virtual
 * block devices (ram, zram, device mapper, md, nbd) and the disks without a
 * medium. A loop device with nothing attached is never listed: nothing is
 * behind it. Only names whose node exists under /dev as a block device are
 * listed (the path a config's `path =` takes).
 *
 * Each has its size, and where sysfs has them its model (device/model, or
 * device/name for MMC cards) and a loop device's backing file, in the
 * description; by_id is a link of /dev/disk/by-id that resolves to it (the
 * most descriptive one: not a wwn-, nvme-eui.-like or uuid link when
 * another exists); a disk on USB (and its partitions) has the USB device's
 * idVendor, idProduct and serial, from the first ancestor of its sysfs node
 * that has them. Regular files (disk images) are not devices to list: a
 * config names one with `class = raw`.
 *
 * The deadline (deadline_ns(NULL)) is looked at before each device.
 */
#include "raw_private.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RAW_BY_ID_DIR "/dev/disk/by-id"
#define TEXT_MAX 512

/* What enumerate was asked, and where it reports. */
typedef struct scan {
    const devhost_found_sink *sink;
    uint64_t deadline;
    int all;
} scan;

/* Reads /sys/block/<rel> (a small attribute) without the trailing
 * whitespace into buf. 0 or -1. */
static int sys_read(const char *rel, char *buf, size_t size)
{
    char file[PATH_MAX];
    if ((size_t)snprintf(file, sizeof file, "/sys/block/%s", rel) >= sizeof file)
        return -1;
    return raw_read_text(file, buf, size);
}

/* "512 B", "8.0 MiB", "256.0 GiB". */
static void size_text(uint64_t bytes, char *out, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    int u = -1;
    if (bytes < 1024) {
        snprintf(out, size, "%llu B", (unsigned long long)bytes);
        return;
    }
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    snprintf(out, size, "%.1f %s", v, units[u]);
}

/* The /dev path of the device whose sysfs directory is /sys/block/<rel>:
 * its uevent's DEVNAME ("cciss/c0d0"), else `name`. 0 when that node
 * exists and is a block device, else -1. */
static int dev_path(const char *rel, const char *name, char *path, size_t size)
{
    char uevent[TEXT_MAX], file[PATH_MAX];
    const char *devname = name;
    char *line, *save = NULL;
    struct stat st;
    snprintf(file, sizeof file, "%s/uevent", rel);
    if (sys_read(file, uevent, sizeof uevent) == 0)
        for (line = strtok_r(uevent, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            if (strncmp(line, "DEVNAME=", 8) == 0 && line[8])
                devname = line + 8;
    if ((size_t)snprintf(path, size, "/dev/%s", devname) >= size)
        return -1;
    return stat(path, &st) == 0 && S_ISBLK(st.st_mode) ? 0 : -1;
}

/* How much a by-id link name says about the device: 0 for the opaque ones
 * (WWN, EUI, UUIDs), 1 for the others (bus, model and serial). */
static int by_id_rank(const char *link)
{
    static const char *const opaque[] = {"wwn-", "nvme-eui.", "nvme-nvme.", "dm-uuid-", "lvm-pv-uuid-", "md-uuid-",
                                         NULL};
    size_t i;
    for (i = 0; opaque[i]; i++)
        if (strncmp(link, opaque[i], strlen(opaque[i])) == 0)
            return 0;
    return 1;
}

/* The /dev/disk/by-id link that resolves to `path` (the best by by_id_rank,
 * then the first by name), into out; "" for none. */
static void find_by_id(const char *path, char *out, size_t size)
{
    DIR *d = opendir(RAW_BY_ID_DIR);
    struct dirent *e;
    char best[NAME_MAX + 1] = "";
    int best_rank = -1;
    out[0] = '\0';
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        char link[PATH_MAX], target[PATH_MAX];
        int rank;
        if (e->d_name[0] == '.')
            continue;
        snprintf(link, sizeof link, "%s/%s", RAW_BY_ID_DIR, e->d_name);
        if (!realpath(link, target) || strcmp(target, path) != 0)
            continue;
        rank = by_id_rank(e->d_name);
        if (rank > best_rank || (rank == best_rank && strcmp(e->d_name, best) < 0)) {
            best_rank = rank;
            snprintf(best, sizeof best, "%s", e->d_name);
        }
    }
    closedir(d);
    if (best[0])
        snprintf(out, size, "%s/%s", RAW_BY_ID_DIR, best);
}

/* The USB identity of disk NAME: the first ancestor of its sysfs node that
 * has idVendor (the USB device a mass-storage disk hangs below). */
typedef struct usb_ids {
    char vendor[16], product[16], serial[128];
} usb_ids;

static int find_usb_ids(const char *disk, usb_ids *ids)
{
    char node[PATH_MAX], file[PATH_MAX + 16];
    char *slash;
    memset(ids, 0, sizeof *ids);
    snprintf(file, sizeof file, "/sys/block/%s", disk);
    if (!realpath(file, node))
        return 0;
    while ((slash = strrchr(node, '/')) != NULL && slash != node && strcmp(node, "/sys/devices") != 0) {
        snprintf(file, sizeof file, "%s/idVendor", node);
        if (raw_read_text(file, ids->vendor, sizeof ids->vendor) == 0) {
            snprintf(file, sizeof file, "%s/idProduct", node);
            if (raw_read_text(file, ids->product, sizeof ids->product) != 0)
                ids->product[0] = '\0';
            snprintf(file, sizeof file, "%s/serial", node);
            if (raw_read_text(file, ids->serial, sizeof ids->serial) != 0)
                ids->serial[0] = '\0';
            return 1;
        }
        *slash = '\0';
    }
    return 0;
}

static void put(const scan *s, const char *disk, const char *path, const char *description)
{
    devhost_found_device found;
    char by_id[PATH_MAX];
    usb_ids usb;
    int on_usb = find_usb_ids(disk, &usb);
    find_by_id(path, by_id, sizeof by_id);
    memset(&found, 0, sizeof found);
    found.struct_size = sizeof found;
    found.path = path;
    found.by_id = by_id[0] ? by_id : NULL;
    found.description = description;
    found.usb_vendor = on_usb && usb.vendor[0] ? usb.vendor : NULL;
    found.usb_product = on_usb && usb.product[0] ? usb.product : NULL;
    found.usb_serial = on_usb && usb.serial[0] ? usb.serial : NULL;
    s->sink->put(s->sink->context, &found);
}

/* The size in bytes of /sys/block/<rel> (512-byte sectors in `size`). */
static uint64_t size_of(const char *rel)
{
    char file[PATH_MAX], text[32];
    snprintf(file, sizeof file, "%s/size", rel);
    return sys_read(file, text, sizeof text) == 0 ? strtoull(text, NULL, 10) * 512u : 0;
}

/* Lists the partitions of disk NAME (subdirectories with a `partition`
 * file). */
static devhost_status list_partitions(const scan *s, const char *disk, devhost_error *err)
{
    char dir[PATH_MAX];
    DIR *d;
    struct dirent *e;
    devhost_status st = DEVHOST_OK;
    snprintf(dir, sizeof dir, "/sys/block/%s", disk);
    if (!(d = opendir(dir)))
        return DEVHOST_OK;
    while (st == DEVHOST_OK && (e = readdir(d)) != NULL) {
        char rel[PATH_MAX], number[16], path[PATH_MAX], size[32], description[TEXT_MAX];
        if (e->d_name[0] == '.' || strncmp(e->d_name, disk, strlen(disk)) != 0)
            continue;
        snprintf(rel, sizeof rel, "%s/%s/partition", disk, e->d_name);
        if (sys_read(rel, number, sizeof number) != 0)
            continue;
        if (devhost_util_deadline_passed(s->deadline)) {
            st = devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT, "raw: enumerate: the deadline passed");
            break;
        }
        snprintf(rel, sizeof rel, "%s/%s", disk, e->d_name);
        if (dev_path(rel, e->d_name, path, sizeof path) != 0)
            continue;
        size_text(size_of(rel), size, sizeof size);
        snprintf(description, sizeof description, "partition %s of %s, %s", number, disk, size);
        put(s, disk, path, description);
    }
    closedir(d);
    return st;
}

/* The description of whole device NAME into out; returns 1 when it is to
 * be listed (see the top of this file), 0 when not. */
static int describe_disk(const scan *s, const char *name, char *out, size_t size)
{
    char rel[PATH_MAX], node[PATH_MAX], text[TEXT_MAX], bytes[32];
    uint64_t total = size_of(name);
    int loop = strncmp(name, "loop", 4) == 0, is_virtual;
    snprintf(rel, sizeof rel, "/sys/block/%s", name);
    is_virtual = realpath(rel, node) && strstr(node, "/devices/virtual/") != NULL;
    size_text(total, bytes, sizeof bytes);
    if (loop) {
        snprintf(rel, sizeof rel, "%s/loop/backing_file", name);
        if (sys_read(rel, text, sizeof text) != 0)
            return 0; /* nothing attached */
        snprintf(out, size, "loop device, %s, backing file %s", bytes, text);
        return 1;
    }
    if (is_virtual) {
        snprintf(out, size, "virtual block device, %s", bytes);
        return s->all;
    }
    snprintf(rel, sizeof rel, "%s/device/model", name);
    if (sys_read(rel, text, sizeof text) != 0 || !text[0]) {
        snprintf(rel, sizeof rel, "%s/device/name", name);
        if (sys_read(rel, text, sizeof text) != 0)
            text[0] = '\0';
    }
    snprintf(out, size, "disk, %s%s%s", total ? bytes : "no medium", text[0] ? ", model " : "", text);
    return total > 0 || s->all;
}

devhost_status raw_enumerate(const devhost_enumerate_params *params, const devhost_found_sink *sink,
                             devhost_error *err)
{
    scan s;
    DIR *d = opendir("/sys/block");
    struct dirent *e;
    devhost_status st = DEVHOST_OK;
    s.sink = sink;
    s.deadline = devhost_hook_deadline(raw_services, NULL);
    s.all = params && DEVHOST_HAS_FIELD(devhost_enumerate_params, params->struct_size, flags) &&
            (params->flags & DEVHOST_ENUMERATE_ALL);
    if (!d)
        return DEVHOST_OK; /* no sysfs: nothing to list */
    while (st == DEVHOST_OK && (e = readdir(d)) != NULL) {
        char path[PATH_MAX], description[TEXT_MAX];
        if (e->d_name[0] == '.')
            continue;
        if (devhost_util_deadline_passed(s.deadline)) {
            st = devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT, "raw: enumerate: the deadline passed");
            break;
        }
        if (!describe_disk(&s, e->d_name, description, sizeof description) ||
            dev_path(e->d_name, e->d_name, path, sizeof path) != 0)
            continue;
        put(&s, e->d_name, path, description);
        st = list_partitions(&s, e->d_name, err);
    }
    closedir(d);
    return st;
}
