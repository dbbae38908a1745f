/*
 * raw plugin: what sysfs and /proc/self/mountinfo tell about a block device.
 *
 * /sys/dev/block/MAJ:MIN is the device's sysfs directory. A partition's
 * directory has a `partition` file and lives inside its whole disk's
 * directory, which holds queue/ and device/; partitions of a whole disk are
 * its subdirectories that have a `partition` file.
 */
#include "raw_linux.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define RAW_SYSFS_TEXT 1024

/* Reads a small text file, trimming trailing whitespace. 0 or -1. */
static int read_text(const char *file, char *buf, size_t size)
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
    if (read_text(file, buf, size) == 0)
        return 0;
    /* queue/ and device/ belong to the whole disk of a partition. */
    if (is_partition(dir)) {
        snprintf(file, sizeof file, "%s/../%s", dir, rel);
        return read_text(file, buf, size);
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

/* The partitions of the whole disk `dir`: names into `names` (comma list)
 * and their "MAJ:MIN" numbers into `numbers` (space separated, with leading
 * and trailing spaces so " 7:1 " can be searched for). Returns the count. */
static int list_partitions(const char *dir, char *names, size_t names_size, char *numbers, size_t numbers_size)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int count = 0;
    names[0] = '\0';
    snprintf(numbers, numbers_size, " ");
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char sub[PATH_MAX];
        char file[PATH_MAX + 8];
        char number[32];
        if (e->d_name[0] == '.')
            continue;
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= sizeof sub || !is_partition(sub))
            continue;
        snprintf(file, sizeof file, "%s/dev", sub);
        if (read_text(file, number, sizeof number) != 0)
            continue;
        list_append(names, names_size, e->d_name);
        if (strlen(numbers) + strlen(number) + 2 < numbers_size) {
            strcat(numbers, number);
            strcat(numbers, " ");
        }
        count++;
    }
    closedir(d);
    return count;
}

/* Mount points of any device whose "MAJ:MIN" appears in `numbers` (as
 * " MAJ:MIN "), as a comma list. Returns how many were found. */
static int find_mounts(const char *numbers, char *points, size_t size)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096];
    int count = 0;
    points[0] = '\0';
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        /* mount-id parent-id MAJ:MIN root mount-point ... */
        char number[40];
        char root[1024];
        char point[1024];
        char key[48];
        if (sscanf(line, "%*s %*s %39s %1023s %1023s", number, root, point) != 3)
            continue;
        snprintf(key, sizeof key, " %s ", number);
        if (strstr(numbers, key)) {
            list_append(points, size, point);
            count++;
        }
    }
    fclose(f);
    return count;
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
    char numbers[RAW_SYSFS_TEXT];
    char points[RAW_SYSFS_TEXT];
    char count_text[16];
    int count;
    int mounts;

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
        names[0] = '\0';
        snprintf(numbers, sizeof numbers, " ");
    } else {
        count = list_partitions(dir, names, sizeof names, numbers, sizeof numbers);
        snprintf(count_text, sizeof count_text, "%d", count);
        sink->put(sink->context, "partition-count", count_text);
        sink->put(sink->context, "partitions", names);
    }
    /* Mounted: the device itself or any of its partitions. */
    {
        char self[40];
        snprintf(self, sizeof self, "%u:%u ", major(rdev), minor(rdev));
        if (strlen(numbers) + strlen(self) < sizeof numbers)
            strcat(numbers, self);
    }
    mounts = find_mounts(numbers, points, sizeof points);
    if (mounts >= 0) {
        sink->put(sink->context, "mounted", mounts > 0 ? "true" : "false");
        if (mounts > 0)
            sink->put(sink->context, "mount-points", points);
    }
}
