/*
 * A test plugin for what ABI 1.1 adds on the host's side, built into one .so
 * per variant (tests/abi/CMakeLists.txt passes ABI11_VARIANT_<NAME> and
 * ABI11_CLASS), never into the plugin directory:
 *
 *   timing       every hook; its options pick one hook that sleeps past its
 *                deadline (late=HOOK, late-by=D) and one that waits exactly
 *                until it (keep=HOOK); info reports the deadline it was
 *                given, the sized connect arguments it got, and what
 *                share_fd answered; unload appends a line to the file named
 *                by $ABI11_UNLOAD_MARKER
 *   timing_old   the same, answering ABI 1.0; declares path type SOCKET
 *                (which a plugin that answered 1.0 does not get to say)
 *   scan_fixed   enumerate lists two devices (three with ENUMERATE_ALL);
 *                path pattern /dev/scanfixed*
 *   scan_none    enumerate lists nothing
 *   scan_slow    enumerate lists one device, then returns 300 ms after its
 *                deadline
 *   scan_noenum  no enumerate
 *   scan_hang    enumerate returns 30 s after its deadline (the host must
 *                not wait for it)
 *   pat_a        path pattern /dev/pat/ *  (without the space)
 *   pat_b        path pattern /dev/pat/b*  (more specific than pat_a's)
 *   pat_tie      path pattern /dev/pat/b?  (as specific as pat_b's)
 *   required     option `name` (REQUIRED), option `share` (EXCLUSIVE);
 *                path pattern /dev/req*
 *   types        path types REGULAR and CHAR, and a bit no 1.1 host knows
 *                (ignored); no path pattern
 *   named_excl   a BOOL option named `exclusive` that is not flagged
 *                EXCLUSIVE (so devices never share a path)
 *
 * Written in C99 like any C plugin.
 */
#define _POSIX_C_SOURCE 200809L
#include <devhost/plugin.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef ABI11_CLASS
#error "define ABI11_CLASS"
#endif

static const devhost_host_services *services;
/* For unload: devices not closed yet. Devices of a plugin may be driven from
 * several threads at once, so it is counted atomically. */
static int open_devices;

/* The hooks the `late` and `keep` options name, in this order. */
enum { H_NONE, H_OPEN, H_CONNECT, H_INFO, H_LOCK, H_TRANSFER, H_UNLOCK, H_DISCONNECT, H_CLOSE };
#define HOOK_CHOICES "none|open|connect|info|lock|transfer|unlock|disconnect|close"

#define MAX_ARGS 8

struct devhost_device {
    const devhost_host_device *host;
    int late, keep;
    int64_t late_by_ms;
    uint64_t info_deadline;
    devhost_status share_fd;
    uint32_t arg_count;
    char arg_key[MAX_ARGS][32];
    unsigned char arg_value[MAX_ARGS][32];
    size_t arg_size[MAX_ARGS];
};

static void sleep_until(uint64_t ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

/* What hook `hook` of `d` does about its deadline before it returns OK:
 * nothing, sleep past it by late-by, or wait until it exactly. */
static void keep_time(const devhost_device *d, const devhost_host_device *host, int hook)
{
    const uint64_t deadline = devhost_hook_deadline(services, host);
    if (deadline == DEVHOST_DEADLINE_NONE)
        return;
    if (d->late == hook)
        sleep_until(deadline + (uint64_t)d->late_by_ms * 1000000u);
    else if (d->keep == hook)
        sleep_until(deadline);
}

static devhost_status t_open(const devhost_open_params *params, devhost_device **device, devhost_error *err)
{
    devhost_device *d = calloc(1, sizeof *d);
    const devhost_option_value *v;
    if (!d)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "out of memory");
    d->host = params->host_device;
    if ((v = devhost_option_find(params, "late")) != NULL)
        d->late = (int)v->integer;
    if ((v = devhost_option_find(params, "keep")) != NULL)
        d->keep = (int)v->integer;
    if ((v = devhost_option_find(params, "late-by")) != NULL)
        d->late_by_ms = v->integer;
    d->share_fd = DEVHOST_HAS_FIELD(devhost_host_services, services->struct_size, share_fd) && services->share_fd
                      ? services->share_fd(params->host_device, 0, "test")
                      : DEVHOST_E_UNSUPPORTED;
    *device = d;
    __atomic_add_fetch(&open_devices, 1, __ATOMIC_SEQ_CST);
    keep_time(d, d->host, H_OPEN);
    return DEVHOST_OK;
}

static devhost_status t_close(devhost_device *device, devhost_error *err)
{
    (void)err;
    keep_time(device, device->host, H_CLOSE);
    free(device);
    __atomic_sub_fetch(&open_devices, 1, __ATOMIC_SEQ_CST);
    return DEVHOST_OK;
}

static devhost_status t_connect(devhost_device *device, const devhost_connect_params *params, devhost_error *err)
{
    devhost_arg scratch;
    uint32_t i;
    (void)err;
    device->arg_count = 0;
    for (i = 0; i < params->arg_count && i < MAX_ARGS; i++) {
        const devhost_arg *a = devhost_connect_arg(params, i, &scratch);
        snprintf(device->arg_key[i], sizeof device->arg_key[i], "%s", a->key);
        device->arg_size[i] = a->value_size;
        memcpy(device->arg_value[i], a->value, a->value_size < 32 ? a->value_size : 32);
        device->arg_count++;
    }
    keep_time(device, device->host, H_CONNECT);
    return DEVHOST_OK;
}

static devhost_status t_disconnect(devhost_device *device, devhost_error *err)
{
    (void)err;
    keep_time(device, device->host, H_DISCONNECT);
    return DEVHOST_OK;
}

static devhost_status t_lock(devhost_device *device, int32_t timeout_ms, devhost_error *err)
{
    (void)timeout_ms, (void)err;
    keep_time(device, device->host, H_LOCK);
    return DEVHOST_OK;
}

static devhost_status t_unlock(devhost_device *device, devhost_error *err)
{
    (void)err;
    keep_time(device, device->host, H_UNLOCK);
    return DEVHOST_OK;
}

/* info: variant, deadline-ms (what was left of the deadline on entry, or
 * "none"), share-fd (what the service answered at open), and arg-N
 * ("KEY:SIZE:HEX") for each sized connect argument. */
static devhost_status t_info(devhost_device *device, const devhost_info_sink *sink, devhost_error *err)
{
    char text[160];
    uint32_t i;
    const uint64_t deadline = devhost_hook_deadline(services, device->host);
    (void)err;
    sink->put(sink->context, "variant", ABI11_CLASS);
    if (deadline == DEVHOST_DEADLINE_NONE) {
        sink->put(sink->context, "deadline-ms", "none");
    } else {
        const uint64_t now = services->monotonic_ns();
        snprintf(text, sizeof text, "%lld", deadline > now ? (long long)((deadline - now) / 1000000u) : -1LL);
        sink->put(sink->context, "deadline-ms", text);
    }
    sink->put(sink->context, "share-fd", devhost_status_name(device->share_fd));
    for (i = 0; i < device->arg_count; i++) {
        char key[16];
        size_t j, n = (size_t)snprintf(text, sizeof text, "%s:%zu:", device->arg_key[i], device->arg_size[i]);
        for (j = 0; j < device->arg_size[i] && j < 32 && n + 3 < sizeof text; j++)
            n += (size_t)snprintf(text + n, sizeof text - n, "%02x", device->arg_value[i][j]);
        snprintf(key, sizeof key, "arg-%u", (unsigned)i);
        sink->put(sink->context, key, text);
    }
    keep_time(device, device->host, H_INFO);
    return DEVHOST_OK;
}

static devhost_status t_transfer(devhost_device *device, devhost_transfer *xfer, devhost_error *err)
{
    (void)err;
    xfer->out_done = xfer->out_len;
    keep_time(device, device->host, H_TRANSFER);
    return DEVHOST_OK;
}

#if defined(ABI11_VARIANT_SCAN_FIXED) || defined(ABI11_VARIANT_SCAN_NONE) || defined(ABI11_VARIANT_SCAN_SLOW) || \
    defined(ABI11_VARIANT_SCAN_HANG)
#define HAS_ENUMERATE 1
static void put_found(const devhost_found_sink *sink, const char *path, const char *by_id, const char *description,
                      const char *vendor, const char *product, const char *serial)
{
    devhost_found_device f;
    memset(&f, 0, sizeof f);
    f.struct_size = sizeof f;
    f.path = path;
    f.by_id = by_id;
    f.description = description;
    f.usb_vendor = vendor;
    f.usb_product = product;
    f.usb_serial = serial;
    sink->put(sink->context, &f);
}

static devhost_status t_enumerate(const devhost_enumerate_params *params, const devhost_found_sink *sink,
                                  devhost_error *err)
{
    (void)err, (void)put_found;
#if defined(ABI11_VARIANT_SCAN_FIXED)
    put_found(sink, "/dev/scanfixed0", "/dev/disk/by-id/scanfixed-zero", "fixed device zero", "0403", "6001",
              "A1B2C3");
    put_found(sink, "/dev/scanfixed1", NULL, NULL, NULL, NULL, NULL);
    if (params->flags & DEVHOST_ENUMERATE_ALL)
        put_found(sink, "/dev/scanfixed-hidden", NULL, "left out unless --all", NULL, NULL, NULL);
    {
        /* A reserved field written nonzero: the host leaves the entry out. */
        devhost_found_device bad;
        memset(&bad, 0, sizeof bad);
        bad.struct_size = sizeof bad;
        bad.reserved = 1;
        bad.path = "/dev/scanfixed-reserved";
        sink->put(sink->context, &bad);
    }
#elif defined(ABI11_VARIANT_SCAN_SLOW)
    (void)params;
    put_found(sink, "/dev/scanslow0", NULL, "found before the deadline", NULL, NULL, NULL);
    sleep_until(devhost_hook_deadline(services, NULL) + 300u * 1000000u);
#elif defined(ABI11_VARIANT_SCAN_HANG)
    (void)params, (void)sink;
    sleep_until(devhost_hook_deadline(services, NULL) + 30000u * 1000000ull);
#else
    (void)params, (void)sink;
#endif
    return DEVHOST_OK;
}
#endif

/* unload: one line to $ABI11_UNLOAD_MARKER, saying how many devices were
 * still open (the host promises none). */
static void t_unload(void)
{
    const char *file = getenv("ABI11_UNLOAD_MARKER");
    char line[64];
    int fd, n;
    if (!file)
        return;
    fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    n = snprintf(line, sizeof line, "unload " ABI11_CLASS " open-devices=%d\n",
                 __atomic_load_n(&open_devices, __ATOMIC_SEQ_CST));
    if (write(fd, line, (size_t)n) != n) {
        /* nothing to do: the test sees the line missing */
    }
    close(fd);
}

static const devhost_hooks hooks = {
    .struct_size = sizeof(devhost_hooks),
    .open = t_open,
    .close = t_close,
    .connect = t_connect,
    .disconnect = t_disconnect,
    .lock = t_lock,
    .unlock = t_unlock,
    .info = t_info,
    .transfer = t_transfer,
#ifdef HAS_ENUMERATE
    .enumerate = t_enumerate,
#endif
    .unload = t_unload,
};

static const devhost_option_spec options[] = {
#if defined(ABI11_VARIANT_REQUIRED)
    {.struct_size = sizeof(devhost_option_spec), .type = DEVHOST_OPTION_STRING, .name = "name",
     .help = "a required option", .flags = DEVHOST_OPTION_REQUIRED},
    {.struct_size = sizeof(devhost_option_spec), .type = DEVHOST_OPTION_BOOL, .name = "share",
     .default_value = "true", .help = "false: share the path", .flags = DEVHOST_OPTION_EXCLUSIVE},
#elif defined(ABI11_VARIANT_NAMED_EXCL)
    {.struct_size = sizeof(devhost_option_spec), .type = DEVHOST_OPTION_BOOL, .name = "exclusive",
     .default_value = "true", .help = "named so, but not flagged: the host does not go by names"},
#else
    {.struct_size = sizeof(devhost_option_spec), .type = DEVHOST_OPTION_ENUM, .name = "late", .default_value = "none",
     .help = "the hook that returns late-by after its deadline", .choices = HOOK_CHOICES},
    {.struct_size = sizeof(devhost_option_spec), .type = DEVHOST_OPTION_DURATION, .name = "late-by",
     .default_value = "200ms", .help = "how late", .min = 0, .max = 0},
    {.struct_size = sizeof(devhost_option_spec), .type = DEVHOST_OPTION_ENUM, .name = "keep", .default_value = "none",
     .help = "the hook that returns at its deadline", .choices = HOOK_CHOICES},
#endif
};

#if defined(ABI11_VARIANT_SCAN_FIXED)
static const char *const patterns[] = {"/dev/scanfixed*", NULL};
#elif defined(ABI11_VARIANT_PAT_A)
static const char *const patterns[] = {"/dev/pat/*", NULL};
#elif defined(ABI11_VARIANT_PAT_B)
static const char *const patterns[] = {"/dev/pat/b*", NULL};
#elif defined(ABI11_VARIANT_PAT_TIE)
static const char *const patterns[] = {"/dev/pat/b?", NULL};
#elif defined(ABI11_VARIANT_REQUIRED)
static const char *const patterns[] = {"/dev/req*", NULL};
#else
#define patterns NULL
#endif

#if defined(ABI11_VARIANT_TYPES)
#define PATH_TYPES (DEVHOST_PATH_REGULAR | DEVHOST_PATH_CHAR | (1u << 20))
#elif defined(ABI11_VARIANT_TIMING_OLD)
#define PATH_TYPES DEVHOST_PATH_SOCKET
#else
#define PATH_TYPES 0
#endif

static const devhost_plugin_descriptor descriptor = {
    .struct_size = sizeof(devhost_plugin_descriptor),
    .name = "abi11-" ABI11_CLASS,
    .device_class = ABI11_CLASS,
    .version = "1.1.0",
    .description = "ABI 1.1 host test plugin, class " ABI11_CLASS,
    .options = options,
    .option_count = sizeof options / sizeof options[0],
    .hooks = &hooks,
    .transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_WRITE),
    .path_patterns = patterns,
    .path_types = PATH_TYPES,
};

DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    devhost_status status = devhost_negotiate(n, &descriptor, &services);
#if defined(ABI11_VARIANT_TIMING_OLD)
    /* Keeps to 1.0's rules: the host does not hold it to the deadlines of
     * the hooks without a timeout argument. */
    if (status == DEVHOST_OK)
        n->plugin_abi_version = DEVHOST_MAKE_VERSION(1, 0);
#endif
    return status;
}
