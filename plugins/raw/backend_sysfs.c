/*
 * raw plugin: what sysfs tells about a block device, and what is built on
 * it (partitions, holders, loop devices), for info and for backend_mounts.c.
 *
 * /sys/dev/block/MAJ:MIN is the device's sysfs directory. A partition's
 * directory has a `partition` file and lives inside its whole disk's
 * directory, which holds queue/ and device/; partitions of a whole disk are
 * its subdirectories that have a `partition` file. holders/ links to the
 * devices stacked on it (device mapper, md). An attached loop device has
 * /sys/block/loopN/loop/backing_file.
 */
#include "raw_private.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define RAW_SYSFS_TEXT 1024

int raw_read_text(const char *file, char *buf, size_t size)
{
    FILE *f;
    size_t n;
    if (size == 0)
        return -1;
    f = fopen(file, "re");
    if (!f)
        return -1;
    n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    return 0;
}

static void device_dir(dev_t rdev, char *dir, size_t size)
{
    snprintf(dir, size, "/sys/dev/block/%u:%u", major(rdev), minor(rdev));
}

/* 1 if the sysfs directory `dir` is a partition. */
static int is_partition(const char *dir)
{
    char file[PATH_MAX + 16];
    struct stat st;
    snprintf(file, sizeof file, "%s/partition", dir);
    return stat(file, &st) == 0;
}

int raw_sysfs_read(dev_t rdev, const char *rel, char *buf, size_t size)
{
    char dir[PATH_MAX];
    char file[PATH_MAX + 256];
    device_dir(rdev, dir, sizeof dir);
    snprintf(file, sizeof file, "%s/%s", dir, rel);
    if (raw_read_text(file, buf, size) == 0)
        return 0;
    /* queue/ and device/ belong to the whole disk of a partition. */
    if (is_partition(dir)) {
        snprintf(file, sizeof file, "%s/../%s", dir, rel);
        return raw_read_text(file, buf, size);
    }
    return -1;
}

/* Reports `key` from the first of `rels` that exists and is not empty. */
static void report_first(dev_t rdev, const devhost_info_sink *sink, const char *key, const char *const *rels)
{
    char text[RAW_SYSFS_TEXT];
    for (; *rels; rels++)
        if (raw_sysfs_read(rdev, *rels, text, sizeof text) == 0 && text[0] != '\0') {
            sink->put(sink->context, key, text);
            return;
        }
}

/* Appends `item` to a comma-separated list in buf. */
static void list_append(char *buf, size_t size, const char *item)
{
    size_t used = strlen(buf);
    if (used + strlen(item) + 2 >= size)
        return;
    if (used > 0)
        buf[used++] = ',';
    strcpy(buf + used, item);
}

/* Parses "MAJ:MIN" into *rdev. 0 or -1. */
static int parse_dev(const char *text, dev_t *rdev)
{
    unsigned int maj = 0;
    unsigned int min = 0;
    char extra = 0;
    if (sscanf(text, "%u:%u%c", &maj, &min, &extra) != 2)
        return -1;
    *rdev = makedev(maj, min);
    return 0;
}

/* The device number in the sysfs directory `dir` (its `dev` file). */
static int dir_dev(const char *dir, dev_t *rdev)
{
    char file[PATH_MAX + 8];
    char number[32];
    if ((size_t)snprintf(file, sizeof file, "%s/dev", dir) >= sizeof file ||
        raw_read_text(file, number, sizeof number) != 0)
        return -1;
    return parse_dev(number, rdev);
}

int raw_sysfs_partitions(dev_t rdev, raw_sysfs_visit visit, void *context)
{
    char dir[PATH_MAX];
    DIR *d;
    struct dirent *e;
    int count = 0;
    device_dir(rdev, dir, sizeof dir);
    if (is_partition(dir) || !(d = opendir(dir)))
        return 0;
    while ((e = readdir(d)) != NULL) {
        char sub[PATH_MAX];
        dev_t part;
        if (e->d_name[0] == '.')
            continue;
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= sizeof sub || !is_partition(sub) ||
            dir_dev(sub, &part) != 0)
            continue;
        visit(context, part, e->d_name);
        count++;
    }
    closedir(d);
    return count;
}

int raw_sysfs_holders(dev_t rdev, raw_sysfs_visit visit, void *context)
{
    char dir[PATH_MAX];
    char holders[PATH_MAX + 16];
    DIR *d;
    struct dirent *e;
    int count = 0;
    device_dir(rdev, dir, sizeof dir);
    snprintf(holders, sizeof holders, "%s/holders", dir);
    if (!(d = opendir(holders)))
        return 0;
    while ((e = readdir(d)) != NULL) {
        char sub[PATH_MAX + 16];
        dev_t holder;
        if (e->d_name[0] == '.')
            continue;
        /* Each entry links to the holder's own sysfs directory. */
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", holders, e->d_name) >= sizeof sub || dir_dev(sub, &holder) != 0)
            continue;
        visit(context, holder, e->d_name);
        count++;
    }
    closedir(d);
    return count;
}

int raw_sysfs_loops(raw_sysfs_visit visit, void *context)
{
    DIR *d = opendir("/sys/block");
    struct dirent *e;
    int count = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char sub[PATH_MAX];
        char file[PATH_MAX + 32];
        struct stat st;
        dev_t loop;
        if (strncmp(e->d_name, "loop", 4) != 0)
            continue;
        if ((size_t)snprintf(sub, sizeof sub, "/sys/block/%s", e->d_name) >= sizeof sub)
            continue;
        /* loop/backing_file exists only while a file is attached. */
        snprintf(file, sizeof file, "%s/loop/backing_file", sub);
        if (stat(file, &st) != 0 || dir_dev(sub, &loop) != 0)
            continue;
        visit(context, loop, e->d_name);
        count++;
    }
    closedir(d);
    return count;
}

int raw_sysfs_name(dev_t rdev, char *name, size_t size)
{
    char dir[PATH_MAX];
    char target[PATH_MAX];
    const char *base;
    ssize_t n;
    device_dir(rdev, dir, sizeof dir);
    n = readlink(dir, target, sizeof target - 1);
    if (n <= 0 || size == 0)
        return -1;
    target[n] = '\0';
    base = strrchr(target, '/');
    base = base ? base + 1 : target;
    if (strlen(base) >= size)
        return -1;
    strcpy(name, base);
    return 0;
}

/* Collects partition names as a comma list, for raw_sysfs_partitions. */
static void add_name(void *context, dev_t rdev, const char *name)
{
    (void)rdev;
    list_append((char *)context, RAW_SYSFS_TEXT, name);
}

void raw_sysfs_report(dev_t rdev, const devhost_info_sink *sink)
{
    static const char *const model[] = {"device/model", NULL};
    static const char *const vendor[] = {"device/vendor", NULL};
    static const char *const serial[] = {"device/serial", "serial", "device/vpd_pg80", NULL};
    static const char *const wwn[] = {"wwid", "device/wwid", NULL};
    static const char *const backing[] = {"loop/backing_file", NULL};
    static const char *const rotational[] = {"queue/rotational", NULL};
    static const char *const discard_max[] = {"queue/discard_max_bytes", NULL};
    static const char *const discard_gran[] = {"queue/discard_granularity", NULL};
    char dir[PATH_MAX];
    char names[RAW_SYSFS_TEXT];
    char count_text[16];
    int count;
    raw_mounts mounts;

    report_first(rdev, sink, "model", model);
    report_first(rdev, sink, "vendor", vendor);
    report_first(rdev, sink, "serial", serial);
    report_first(rdev, sink, "wwn", wwn);
    report_first(rdev, sink, "backing-file", backing);
    report_first(rdev, sink, "rotational", rotational);
    report_first(rdev, sink, "discard-max-bytes", discard_max);
    report_first(rdev, sink, "discard-granularity", discard_gran);

    device_dir(rdev, dir, sizeof dir);
    if (is_partition(dir)) {
        sink->put(sink->context, "partition", "true");
    } else {
        names[0] = '\0';
        count = raw_sysfs_partitions(rdev, add_name, names);
        snprintf(count_text, sizeof count_text, "%d", count);
        sink->put(sink->context, "partition-count", count_text);
        sink->put(sink->context, "partitions", names);
    }
    /* Mounted: the device, one of its partitions, or a device stacked on
     * them; the same walk that refuses writes (backend_mounts.c). */
    raw_mounts_of_device(rdev, &mounts);
    if (mounts.count >= 0) {
        sink->put(sink->context, "mounted", mounts.count > 0 ? "true" : "false");
        if (mounts.count > 0)
            sink->put(sink->context, "mount-points", mounts.points);
    }
}
