/*
 * my_plugin's test: loads the built plugin the way the host does (dlopen,
 * the entry point, negotiation), opens a device with a real eventfd as its
 * cancel handle, and checks what it does: a write is counted, info reports
 * the count, the `start` option counts from there, a cancelled device
 * refuses to write, and the hooks it leaves out are NULL. ABI 1.1: it
 * answers a 1.1 host with 1.1 and a 1.0 host with 1.0, declares its path
 * patterns, asks the host's deadline_ns service for a write's deadline
 * (not a 1.0 host's smaller services table, which has none), and refuses an
 * op it does not know with DEVHOST_E_UNSUPPORTED.
 *
 * Usage: my_plugin_test PATH/my_plugin.so. Exit 0 when every check passed.
 */
#define _GNU_SOURCE

#include <devhost/plugin.h>
#include <devhost/plugin_util.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int failures;

#define CHECK(cond)                                                  \
    do {                                                             \
        if (!(cond)) {                                               \
            printf("FAILED: %s (line %d)\n", #cond, __LINE__);       \
            failures++;                                              \
        }                                                            \
    } while (0)

/* The host's side: services and an info sink that keeps "written". */
static void log_line(const devhost_host_device *device, int32_t level, const char *message)
{
    (void)device;
    (void)level;
    (void)message;
}

static uint64_t now_ns(void) { return devhost_util_now_ns(); }

/* What deadline_ns answers (the host's deadline for the running hook), and
 * how often it was asked. */
static uint64_t hook_deadline = DEVHOST_DEADLINE_NONE;
static int deadline_asked;

static uint64_t deadline_ns(const devhost_host_device *device)
{
    (void)device;
    deadline_asked++;
    return hook_deadline;
}

static char written[64];

static void put(void *context, const char *key, const char *value)
{
    (void)context;
    if (strcmp(key, "written") == 0)
        snprintf(written, sizeof written, "%s", value);
}

static devhost_error fresh_error(void)
{
    devhost_error err;
    devhost_util_error_init(&err);
    return err;
}

/* Opens a device with `start` as configured (NULL: the schema's default). */
static devhost_device *open_device(const devhost_plugin_descriptor *d, const char *start, int cancel_fd)
{
    devhost_option_value value;
    devhost_open_params params;
    devhost_device *dev = NULL;
    devhost_error err = fresh_error();
    memset(&value, 0, sizeof value);
    value.struct_size = sizeof value;
    value.type = d->options[0].type;
    value.name = d->options[0].name;
    value.text = start ? start : d->options[0].default_value;
    value.integer = strtoll(value.text, NULL, 10);
    value.is_set = 1;
    memset(&params, 0, sizeof params);
    params.struct_size = sizeof params;
    params.device_name = "test";
    params.path = "anything";
    params.configured_path = "anything";
    params.options = &value;
    params.option_count = 1;
    params.timeout_ms = -1;
    params.cancel_fd = cancel_fd;
    CHECK(d->hooks->open(&params, &dev, &err) == DEVHOST_OK);
    return dev;
}

static devhost_status transfer_op(const devhost_plugin_descriptor *d, devhost_device *dev, uint32_t op,
                                  const char *data, size_t *done)
{
    devhost_transfer x;
    devhost_error err = fresh_error();
    devhost_status s;
    memset(&x, 0, sizeof x);
    x.struct_size = sizeof x;
    x.op = op;
    x.timeout_ms = 1000;
    x.out = (const uint8_t *)data;
    x.out_len = strlen(data);
    s = d->hooks->transfer(dev, &x, &err);
    *done = x.out_done;
    return s;
}

static devhost_status write_bytes(const devhost_plugin_descriptor *d, devhost_device *dev, const char *data,
                                  size_t *done)
{
    return transfer_op(d, dev, DEVHOST_OP_WRITE, data, done);
}

/* Negotiates as a host of `version` would, its services table of `size`
 * bytes; returns the status and the version the plugin answered. */
static devhost_status negotiate_as(devhost_negotiate_fn negotiate, devhost_host_services *services, uint32_t version,
                                   uint32_t size, uint32_t *answered, const devhost_plugin_descriptor **d)
{
    devhost_negotiation n;
    devhost_error err = fresh_error();
    devhost_status s;
    services->struct_size = size;
    services->host_abi_version = version;
    memset(&n, 0, sizeof n);
    n.struct_size = sizeof n;
    n.host_abi_version = version;
    n.host_min_abi_version = DEVHOST_MAKE_VERSION(1, 0);
    n.services = services;
    n.error = &err;
    s = negotiate(&n);
    *answered = n.plugin_abi_version;
    *d = n.descriptor;
    return s;
}

static const char *info_written(const devhost_plugin_descriptor *d, devhost_device *dev)
{
    devhost_info_sink sink;
    devhost_error err = fresh_error();
    memset(&sink, 0, sizeof sink);
    sink.struct_size = sizeof sink;
    sink.put = put;
    written[0] = '\0';
    CHECK(d->hooks->info(dev, &sink, &err) == DEVHOST_OK);
    return written;
}

int main(int argc, char **argv)
{
    devhost_host_services services;
    devhost_error err = fresh_error();
    uint32_t answered = 0;
    devhost_negotiate_fn negotiate;
    const devhost_plugin_descriptor *d;
    devhost_device *dev;
    uint64_t one = 1;
    size_t done = 0;
    int cancel = eventfd(0, EFD_CLOEXEC);
    void *library;

    if (argc != 2 || cancel < 0) {
        fprintf(stderr, "usage: my_plugin_test PATH/my_plugin.so\n");
        return 2;
    }
    library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        fprintf(stderr, "my_plugin_test: %s\n", dlerror());
        return 1;
    }
    *(void **)&negotiate = dlsym(library, DEVHOST_ENTRY_POINT_NAME);
    CHECK(negotiate != NULL);
    if (!negotiate)
        return 1;

    memset(&services, 0, sizeof services);
    services.log = log_line;
    services.monotonic_ns = now_ns;
    services.deadline_ns = deadline_ns;

    /* A 1.0 host (its services end before deadline_ns) gets 1.0, and the
     * plugin works without a deadline service. */
    CHECK(negotiate_as(negotiate, &services, DEVHOST_MAKE_VERSION(1, 0),
                       (uint32_t)offsetof(devhost_host_services, deadline_ns), &answered, &d) == DEVHOST_OK);
    CHECK(answered == DEVHOST_MAKE_VERSION(1, 0));
    if (!d)
        return 1;
    deadline_asked = 0;
    dev = open_device(d, NULL, cancel);
    CHECK(write_bytes(d, dev, "abc", &done) == DEVHOST_OK && done == 3);
    CHECK(deadline_asked == 0); /* beyond the 1.0 host's table: never called */
    CHECK(d->hooks->close(dev, &err) == DEVHOST_OK);

    /* The 1.1 host. */
    CHECK(negotiate_as(negotiate, &services, DEVHOST_ABI_VERSION, (uint32_t)sizeof services, &answered, &d) ==
          DEVHOST_OK);
    CHECK(answered == DEVHOST_ABI_VERSION);
    CHECK(d && strcmp(d->device_class, "my-device") == 0 && d->option_count == 1);
    if (!d)
        return 1;
    CHECK(d->hooks->lock == NULL && d->hooks->connect == NULL);
    CHECK(d->hooks->enumerate == NULL && d->hooks->unload == NULL);
    CHECK(d->path_patterns && strcmp(d->path_patterns[0], "mydev:*") == 0 && d->path_patterns[1] == NULL);
    CHECK(d->path_types == 0);
    CHECK(d->options[0].flags == 0);

    /* A write is counted; info reports the count. */
    dev = open_device(d, NULL, cancel);
    CHECK(write_bytes(d, dev, "12345", &done) == DEVHOST_OK && done == 5);
    CHECK(strcmp(info_written(d, dev), "5") == 0);
    CHECK(d->hooks->close(dev, &err) == DEVHOST_OK);

    /* A 1.1 host's deadline is asked for by the write; counting never
     * waits, so even a deadline already passed (or a timeout of 0) counts. */
    dev = open_device(d, NULL, cancel);
    deadline_asked = 0;
    hook_deadline = devhost_util_now_ns() - 1;
    CHECK(write_bytes(d, dev, "late", &done) == DEVHOST_OK && done == 4);
    CHECK(deadline_asked == 1);
    hook_deadline = DEVHOST_DEADLINE_NONE;
    CHECK(strcmp(info_written(d, dev), "4") == 0);
    /* An op it does not know (a control code) is DEVHOST_E_UNSUPPORTED. */
    CHECK(transfer_op(d, dev, DEVHOST_OP_CONTROL, "", &done) == DEVHOST_E_UNSUPPORTED && done == 0);
    CHECK(d->hooks->close(dev, &err) == DEVHOST_OK);

    /* `start` is where the count begins. */
    dev = open_device(d, "100", cancel);
    CHECK(write_bytes(d, dev, "ab", &done) == DEVHOST_OK);
    CHECK(strcmp(info_written(d, dev), "102") == 0);

    /* Once the host cancels the device, a write is refused. */
    CHECK(write(cancel, &one, sizeof one) == (ssize_t)sizeof one);
    CHECK(write_bytes(d, dev, "x", &done) == DEVHOST_E_CANCELLED && done == 0);
    CHECK(d->hooks->close(dev, &err) == DEVHOST_OK);

    close(cancel);
    dlclose(library);
    if (failures)
        printf("my_plugin_test: %d check(s) failed\n", failures);
    else
        printf("my_plugin_test: all checks passed\n");
    return failures ? 1 : 0;
}
