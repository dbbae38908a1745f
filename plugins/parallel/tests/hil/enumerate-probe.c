/*
 * The parallel plugin's ABI 1.1 hooks on a real ppdev port, in the hil
 * guest (there is no `devhost scan` to call them yet): loads the plugin as
 * a 1.1 host does, prints what enumerate lists ("HIL-ENUM PATH|DESCRIPTION"),
 * then opens /dev/parport0 (which claims and releases it: the first claim
 * installs the plugin's claim-interrupt signal handler when the process has
 * none), closes it, calls unload, and prints whether the handler was there
 * before unload and gone after ("HIL-UNLOAD installed=1 restored=1").
 *
 * Its share_fd keeps what a supervisor keeps (a duplicate per role; fd -1
 * drops it) and prints each call ("HIL-SHARE ppdev char 99", "HIL-DROP
 * ppdev"). Before unload, a second device takes the claim (lock), the
 * plugin's own descriptor is lost as in a worker's death (made /dev/null):
 * the parport core still names a holder of the port ("HIL-DEAD held=1"),
 * and once the probe closes its copy nobody holds it ("HIL-RELEASED
 * held=0").
 *
 * Usage: enumerate-probe PATH/parallel.so. Exit 0 when it could run.
 */
#define _GNU_SOURCE

#include <devhost/plugin.h>

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void log_line(const devhost_host_device *device, int32_t level, const char *message)
{
    (void)device;
    (void)level;
    printf("HIL-LOG %s\n", message);
}

/* Every hook gets 5 s from when it asks. */
static uint64_t deadline_ns(const devhost_host_device *device)
{
    (void)device;
    return now_ns() + 5000000000u;
}

/* The supervisor's part: one copy, of the last descriptor shared. */
static int held_fd = -1;

static devhost_status share_fd(const devhost_host_device *device, int32_t fd, const char *role)
{
    struct stat st;
    (void)device;
    if (held_fd >= 0)
        close(held_fd);
    held_fd = -1;
    if (fd < 0) {
        printf("HIL-DROP %s\n", role);
        return DEVHOST_OK;
    }
    if (fstat(fd, &st) != 0 || (held_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return DEVHOST_E_IO;
    printf("HIL-SHARE %s %s %u\n", role, S_ISCHR(st.st_mode) ? "char" : "other", major(st.st_rdev));
    return DEVHOST_OK;
}

/* 1 when the parport core names a holder of parport0 (not "none"). */
static int port_held(void)
{
    char holder[64] = "";
    FILE *f = fopen("/proc/sys/dev/parport/parport0/devices/active", "re");
    if (f) {
        if (!fgets(holder, sizeof holder, f))
            holder[0] = '\0';
        fclose(f);
    }
    return strncmp(holder, "none", 4) != 0;
}

/* A worker's death, for the plugin's descriptors: every descriptor on the
 * copy's file but the copy is made /dev/null. */
static void lose_plugin_descriptors(void)
{
    struct stat copy, st;
    struct dirent *e;
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    DIR *dir = opendir("/proc/self/fd");
    if (!dir || null_fd < 0 || fstat(held_fd, &copy) != 0) {
        printf("HIL-PROBE-FAILED cannot lose the plugin's descriptors\n");
        exit(1);
    }
    while ((e = readdir(dir)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == held_fd || fd == dirfd(dir) || fstat(fd, &st) != 0)
            continue;
        if (st.st_dev == copy.st_dev && st.st_ino == copy.st_ino)
            dup3(null_fd, fd, O_CLOEXEC);
    }
    closedir(dir);
    close(null_fd);
}

/* A second device locks the port; its descriptor is lost, the copy alone
 * holds the claim; the copy closed, the port is free. */
static void claim_held_by_copy(const devhost_plugin_descriptor *d, devhost_open_params *op, devhost_error *err)
{
    devhost_device *dev = NULL;
    if (d->hooks->open(op, &dev, err) != DEVHOST_OK || held_fd < 0 ||
        d->hooks->lock(dev, 2000, err) != DEVHOST_OK) {
        printf("HIL-PROBE-FAILED open and lock: %s\n", err->message);
        exit(1);
    }
    printf("HIL-LOCKED held=%d\n", port_held());
    lose_plugin_descriptors();
    printf("HIL-DEAD held=%d\n", port_held());
    close(held_fd);
    held_fd = -1;
    printf("HIL-RELEASED held=%d\n", port_held());
    d->hooks->close(dev, err); /* on what is left of it: /dev/null */
}

static void found(void *context, const devhost_found_device *f)
{
    (void)context;
    printf("HIL-ENUM %s|%s\n", f->path ? f->path : "", f->description ? f->description : "");
}

/* 1 when SIGRTMAX-3 has a handler (not the default, not ignored). */
static int handler_installed(void)
{
    struct sigaction sa;
    return sigaction(SIGRTMAX - 3, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler != SIG_DFL &&
           sa.sa_handler != SIG_IGN;
}

static int drive(const devhost_plugin_descriptor *d)
{
    devhost_enumerate_params ep;
    devhost_found_sink sink;
    devhost_open_params op;
    devhost_device *dev = NULL;
    devhost_error err;
    int installed;
    memset(&ep, 0, sizeof ep);
    ep.struct_size = sizeof ep;
    memset(&sink, 0, sizeof sink);
    sink.struct_size = sizeof sink;
    sink.put = found;
    memset(&err, 0, sizeof err);
    err.struct_size = sizeof err;
    printf("HIL-ENUM-STATUS %s\n", devhost_status_name(d->hooks->enumerate(&ep, &sink, &err)));
    memset(&op, 0, sizeof op);
    op.struct_size = sizeof op;
    op.device_name = "probe";
    op.path = "/dev/parport0";
    op.configured_path = op.path;
    op.timeout_ms = 2000;
    op.cancel_fd = -1;
    printf("HIL-OPEN %s %s\n", devhost_status_name(d->hooks->open(&op, &dev, &err)), err.message);
    if (dev)
        d->hooks->close(dev, &err);
    claim_held_by_copy(d, &op, &err);
    installed = handler_installed();
    d->hooks->unload();
    printf("HIL-UNLOAD installed=%d restored=%d\n", installed, !handler_installed());
    return 0;
}

int main(int argc, char **argv)
{
    devhost_host_services services;
    devhost_negotiation n;
    devhost_error err;
    devhost_negotiate_fn negotiate;
    void *library;
    if (argc != 2)
        return 2;
    library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        printf("HIL-PROBE-FAILED %s\n", dlerror());
        return 1;
    }
    *(void **)&negotiate = dlsym(library, DEVHOST_ENTRY_POINT_NAME);
    memset(&services, 0, sizeof services);
    services.struct_size = sizeof services;
    services.host_abi_version = DEVHOST_ABI_VERSION;
    services.log = log_line;
    services.monotonic_ns = now_ns;
    services.deadline_ns = deadline_ns;
    services.share_fd = share_fd;
    memset(&err, 0, sizeof err);
    err.struct_size = sizeof err;
    memset(&n, 0, sizeof n);
    n.struct_size = sizeof n;
    n.host_abi_version = DEVHOST_ABI_VERSION;
    n.host_min_abi_version = DEVHOST_MAKE_VERSION(1, 0);
    n.services = &services;
    n.error = &err;
    if (!negotiate || negotiate(&n) != DEVHOST_OK || !n.descriptor->hooks->enumerate || !n.descriptor->hooks->unload) {
        printf("HIL-PROBE-FAILED negotiation or hooks: %s\n", err.message);
        return 1;
    }
    return drive(n.descriptor);
}
