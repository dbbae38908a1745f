/*
 * The parallel plugin's enumerate hook: the ports this machine has, found
 * without opening any of them (`devhost scan`).
 *
 *   /dev/parportN  every character device of ppdev's major (99) named so;
 *                  the description adds what the parport core tells under
 *                  /proc/sys/dev/parport/parportN (I/O base, modes)
 *   vport:NAME     with DEVHOST_ENUMERATE_ALL only (a virtual port is not
 *                  hardware, as a pty is not for serial): each NAME.sock
 *                  socket in the vport directories the plugin would open
 *                  vport:NAME from (<devhost/vport_wire.h>), the first
 *                  directory holding a NAME winning, as in open, and only
 *                  a socket open would trust (its owner and directory)
 *
 * Nothing is sent to a port or a peer; the deadline (deadline_ns(NULL)) is
 * looked at between entries.
 */
#define _GNU_SOURCE

#include "parallel_private.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

#define PPDEV_MAJOR 99

/* Reads a small /proc file into buf as one line: whitespace runs (tabs,
 * newlines) become one space, trailing ones go. 0 or -1. */
static int read_line(const char *file, char *buf, size_t size)
{
    FILE *f = fopen(file, "re");
    size_t n, i, o = 0;
    if (!f)
        return -1;
    n = fread(buf, 1, size - 1, f);
    fclose(f);
    for (i = 0; i < n; i++) {
        char c = buf[i] == '\t' || buf[i] == '\n' ? ' ' : buf[i];
        if (c == ' ' && (o == 0 || buf[o - 1] == ' '))
            continue;
        buf[o++] = c;
    }
    while (o > 0 && buf[o - 1] == ' ')
        o--;
    buf[o] = '\0';
    return 0;
}

static void put(const devhost_found_sink *sink, const char *path, const char *description)
{
    devhost_found_device found;
    memset(&found, 0, sizeof found);
    found.struct_size = sizeof found;
    found.path = path;
    found.description = description;
    sink->put(sink->context, &found);
}

static devhost_status timed_out(devhost_error *err)
{
    return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT, "parallel: enumerate: the deadline passed");
}

/* /dev/parportN, ppdev character devices. */
static devhost_status list_ppdev(uint64_t deadline, const devhost_found_sink *sink, devhost_error *err)
{
    DIR *dir = opendir("/dev");
    struct dirent *e;
    devhost_status st = DEVHOST_OK;
    if (!dir)
        return DEVHOST_OK; /* no /dev: nothing to list */
    while (st == DEVHOST_OK && (e = readdir(dir)) != NULL) {
        char path[300], description[256], base[64], modes[128], file[160];
        struct stat sb;
        if (fnmatch("parport[0-9]*", e->d_name, 0) != 0)
            continue;
        if (devhost_util_deadline_passed(deadline)) {
            st = timed_out(err);
            break;
        }
        snprintf(path, sizeof path, "/dev/%s", e->d_name);
        if (stat(path, &sb) != 0 || !S_ISCHR(sb.st_mode) || major(sb.st_rdev) != PPDEV_MAJOR)
            continue;
        /* base-addr holds the I/O base and ECR base, in decimal. */
        snprintf(file, sizeof file, "/proc/sys/dev/parport/parport%u/base-addr", minor(sb.st_rdev));
        if (read_line(file, base, sizeof base) == 0 && base[0] >= '0' && base[0] <= '9')
            snprintf(base, sizeof base, "0x%lx", strtoul(base, NULL, 10));
        else
            base[0] = '\0';
        snprintf(file, sizeof file, "/proc/sys/dev/parport/parport%u/modes", minor(sb.st_rdev));
        if (read_line(file, modes, sizeof modes) != 0)
            modes[0] = '\0';
        snprintf(description, sizeof description, "parallel port (ppdev)%s%s%s%s", base[0] ? ", base " : "", base,
                 modes[0] ? ", modes " : "", modes);
        put(sink, path, description);
    }
    closedir(dir);
    return st;
}

/* 1 when NAME.sock was already listed from an earlier directory. */
static int listed_before(int index, const char *file)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int i;
    for (i = 0; i < index; i++) {
        char path[sizeof dir + 300];
        struct stat sb;
        if (!vport_dir_candidate(i, dir, sizeof dir))
            break;
        snprintf(path, sizeof path, "%s/%s", dir, file);
        if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode))
            return 1;
    }
    return 0;
}

/* vport:NAME for each socket NAME.sock in the index-th vport directory. */
static devhost_status list_vports(int index, const char *dirname, uint64_t deadline, const devhost_found_sink *sink,
                                  devhost_error *err)
{
    DIR *dir = opendir(dirname);
    struct dirent *e;
    devhost_status st = DEVHOST_OK;
    if (!dir)
        return DEVHOST_OK;
    while (st == DEVHOST_OK && (e = readdir(dir)) != NULL) {
        size_t n = strlen(e->d_name);
        char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 300];
        char name[VPORT_NAME_MAX + 8], description[sizeof path + 64];
        devhost_error ignored;
        struct stat sb;
        if (n <= 5 || n - 5 > VPORT_NAME_MAX || strcmp(e->d_name + n - 5, ".sock") != 0 || e->d_name[0] == '.')
            continue;
        if (devhost_util_deadline_passed(deadline)) {
            st = timed_out(err);
            break;
        }
        snprintf(path, sizeof path, "%s/%s", dirname, e->d_name);
        if (lstat(path, &sb) != 0 || !S_ISSOCK(sb.st_mode) || listed_before(index, e->d_name))
            continue;
        devhost_util_error_init(&ignored);
        if (par_vport_check_socket("parallel: enumerate", path, &ignored) != DEVHOST_OK)
            continue; /* open would refuse it: not listed */
        snprintf(name, sizeof name, "%s%.*s", VPORT_PATH_PREFIX, (int)(n - 5), e->d_name);
        snprintf(description, sizeof description, "virtual parallel port (devhost-vdev parallel-port) at %s", path);
        put(sink, name, description);
    }
    closedir(dir);
    return st;
}

devhost_status par_enumerate(const devhost_enumerate_params *params, const devhost_found_sink *sink,
                             devhost_error *err)
{
    const uint64_t deadline = devhost_hook_deadline(par_services, NULL);
    const int all = params && DEVHOST_HAS_FIELD(devhost_enumerate_params, params->struct_size, flags) &&
                    (params->flags & DEVHOST_ENUMERATE_ALL);
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    devhost_status st = list_ppdev(deadline, sink, err);
    int index;
    for (index = 0; st == DEVHOST_OK && all && vport_dir_candidate(index, dir, sizeof dir); index++)
        st = list_vports(index, dir, deadline, sink, err);
    return st;
}
