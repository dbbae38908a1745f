/*
 * my_plugin's test: loads the built plugin the way the host does (dlopen,
 * the entry point, negotiation), opens a device with a real eventfd as its
 * cancel handle, and checks what it does: a write is counted, info reports
 * the count, the `start` option counts from there, a cancelled device
 * refuses to write, and the hooks it leaves out are NULL.
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

static devhost_status write_bytes(const devhost_plugin_descriptor *d, devhost_device *dev, const char *data,
                                  size_t *done)
{
    devhost_transfer x;
    devhost_error err = fresh_error();
    devhost_status s;
    memset(&x, 0, sizeof x);
    x.struct_size = sizeof x;
    x.op = DEVHOST_OP_WRITE;
    x.timeout_ms = 1000;
    x.out = (const uint8_t *)data;
    x.out_len = strlen(data);
    s = d->hooks->transfer(dev, &x, &err);
    *done = x.out_done;
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
    devhost_negotiation n;
    devhost_error err = fresh_error();
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
    services.struct_size = sizeof services;
    services.host_abi_version = DEVHOST_ABI_VERSION;
    services.log = log_line;
    services.monotonic_ns = now_ns;
    memset(&n, 0, sizeof n);
    n.struct_size = sizeof n;
    n.host_abi_version = DEVHOST_ABI_VERSION;
    n.host_min_abi_version = DEVHOST_MAKE_VERSION(1, 0);
    n.services = &services;
    n.error = &err;
    CHECK(negotiate(&n) == DEVHOST_OK);
    d = n.descriptor;
    CHECK(d && strcmp(d->device_class, "my-device") == 0 && d->option_count == 1);
    if (!d)
        return 1;
    CHECK(d->hooks->lock == NULL && d->hooks->connect == NULL);

    /* A write is counted; info reports the count. */
    dev = open_device(d, NULL, cancel);
    CHECK(write_bytes(d, dev, "12345", &done) == DEVHOST_OK && done == 5);
    CHECK(strcmp(info_written(d, dev), "5") == 0);
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
