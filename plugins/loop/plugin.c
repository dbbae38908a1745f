/*
 * loop: the smallest complete devhost plugin, and the fixture host tests use.
 *
 * A loop device is a byte buffer in memory. Its path is "loop:NAME": what a
 * device writes, it reads back. Devices opened on the same NAME share that
 * name's lock (and its exclusive-open rule) but each has its own buffer, so
 * nothing but the device itself ever fills or drains it: a read that finds
 * too little waits for its deadline or its cancel handle, then fails.
 *
 * Copy this folder to start a plugin; it has the shape every plugin folder
 * has (plugins/README.md):
 *   plugin.c          this file: the hooks, the option schema, the control
 *                     table, the hook table and descriptor (designated
 *                     initializers), the entry point
 *   backend_buffer.c  what a device does: its buffer and the transfer ops
 *   backend_names.c   process-wide state: names, locks, counters
 *   loop_private.h    per-device state and the backends' functions
 *   README.md         options, transfer ops, control codes, info keys
 *
 * Hooks                          needs (host-checked)
 *   loop_open                    -
 *   loop_close                   open (also half-opened); drops a forgotten
 *                                lock or connection
 *   loop_connect                 open; stores the context bytes
 *   loop_disconnect              connected
 *   loop_lock                    open (lock_requires = 0); NAME's lock
 *   loop_unlock                  locked
 *   loop_info                    open
 *   loop_transfer                open (transfer_requires = 0)
 *
 * Descriptor flags
 *   DEVHOST_PLUGIN_SHARED_PATHS  several devices may open one loop:NAME (they
 *                                share its lock), so `devhost check` allows it
 *
 * ABI 1.1: every hook keeps to its deadline, loop_deadline() below: the
 * host's deadline_ns for the running hook and, for open, lock and transfer,
 * their timeout_ms too, whichever comes first. Only open, lock and transfer
 * ever wait; the others finish at once. No enumerate (a loop device exists
 * by being opened: there is nothing to list) and no unload (the process-wide
 * state is a table that empties with the last close).
 */
#include "loop_private.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The host's services, stored at negotiation; valid while we are loaded. */
static const devhost_host_services *services;

/* `ms` after `now` (ns), DEVHOST_DEADLINE_NONE for a negative or too long
 * a time. */
static uint64_t loop_after(uint64_t now, int64_t ms)
{
    if (ms < 0 || (uint64_t)ms >= (DEVHOST_DEADLINE_NONE - now) / 1000000u)
        return DEVHOST_DEADLINE_NONE;
    return now + (uint64_t)ms * 1000000u;
}

/* The deadline of the hook now running for `dev`: the host's (deadline_ns,
 * DEVHOST_DEADLINE_NONE from a 1.0 host) or timeout_ms from now (-1: none),
 * whichever comes first. */
static uint64_t loop_deadline(const devhost_host_device *host_device, int64_t timeout_ms)
{
    return devhost_util_deadline_min(devhost_hook_deadline(services, host_device),
                                     devhost_util_deadline_ms(timeout_ms));
}

/* ------------------------------------------------------------------------
 * Descriptor: the option schema (looked up by these indexes) and the
 * control codes
 * ------------------------------------------------------------------------ */

enum { OPT_CAPACITY, OPT_EXCLUSIVE, OPT_OPEN_DELAY, OPT_COUNT };

static const devhost_option_spec loop_options[OPT_COUNT] = {
    [OPT_CAPACITY] = {.struct_size = sizeof(devhost_option_spec), .type = DEVHOST_OPTION_INT, .name = "capacity",
                      .default_value = "4096", .help = "buffer size in bytes", .min = 1, .max = 16777216},
    [OPT_EXCLUSIVE] = {.struct_size = sizeof(devhost_option_spec), .type = DEVHOST_OPTION_BOOL,
                       .name = "exclusive", .default_value = "false",
                       .help = "refuse other opens of the same loop:NAME while this device is open",
                       .flags = DEVHOST_OPTION_EXCLUSIVE},
    [OPT_OPEN_DELAY] = {.struct_size = sizeof(devhost_option_spec), .type = DEVHOST_OPTION_DURATION,
                        .name = "open-delay", .default_value = "0ms",
                        .help = "open waits this long first (to test timeouts and cancel)"},
};

static const devhost_control_spec loop_controls[] = {
    {.struct_size = sizeof(devhost_control_spec), .code = LOOP_CONTROL_STATS, .name = "stats",
     .help = "process-wide counters: open=N connected=N locked=N opened-total=N"},
    {.struct_size = sizeof(devhost_control_spec), .code = LOOP_CONTROL_CLEAR, .name = "clear",
     .help = "empty this device's buffer", .flags = DEVHOST_CONTROL_MODIFIES},
    {.struct_size = sizeof(devhost_control_spec), .code = LOOP_CONTROL_FILL, .name = "fill",
     .help = "append the input bytes to the buffer, all or nothing", .flags = DEVHOST_CONTROL_MODIFIES},
};

/* ------------------------------------------------------------------------
 * Hooks
 * ------------------------------------------------------------------------ */

static void free_device(devhost_device *dev)
{
    free(dev->device_name);
    free(dev->name);
    free(dev->data);
    free(dev->context);
    free(dev->connect_args);
    free(dev->pending);
    free(dev);
}

/* open: parses loop:NAME and the options, waits open-delay, registers NAME.
 * State: none. Returns: OK; E_NOT_FOUND (path not loop:NAME); E_INVALID
 * (option out of range); E_BUSY (exclusive rule, never waits); E_TIMEOUT
 * (open-delay longer than timeout_ms); E_CANCELLED; E_NO_MEMORY.
 * On failure after the state was allocated, *device is that half-opened
 * state, and the host hands it to loop_close. params is ours for this call
 * only; host_device and cancel_fd stay valid until close. */
static devhost_status loop_open(const devhost_open_params *params, devhost_device **device,
                                devhost_error *err)
{
    const int64_t capacity = devhost_util_option_int(params, loop_options, OPT_CAPACITY, 4096);
    const char *path = params->path;
    devhost_device *dev;
    devhost_status s;

    *device = NULL;
    if (!DEVHOST_HAS_FIELD(devhost_open_params, params->struct_size, host_device))
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "open parameters too small (%u bytes)",
                            (unsigned)params->struct_size);
    if (strncmp(path, LOOP_PREFIX, strlen(LOOP_PREFIX)) != 0 || path[strlen(LOOP_PREFIX)] == '\0')
        return devhost_fail(err, DEVHOST_E_NOT_FOUND, 0,
                            "no loop device at '%s': loop devices are named loop:NAME", path);
    if (capacity < 1 || capacity > 16777216)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "option 'capacity': %" PRId64 " is outside 1..16777216",
                            capacity);

    /* From here on a failure leaves *device half-opened for loop_close. */
    dev = calloc(1, sizeof *dev);
    if (!dev)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "%s: out of memory", path);
    *device = dev;
    dev->host_device = params->host_device;
    dev->cancel_fd = params->cancel_fd;
    dev->capacity = (size_t)capacity;
    dev->exclusive = devhost_util_option_int(params, loop_options, OPT_EXCLUSIVE, 0) != 0;
    dev->open_delay_ms = devhost_util_option_int(params, loop_options, OPT_OPEN_DELAY, 0);
    dev->device_name = devhost_util_copy_string(params->device_name ? params->device_name : "?");
    dev->name = devhost_util_copy_string(path + strlen(LOOP_PREFIX));
    dev->data = malloc(dev->capacity);
    if (!dev->device_name || !dev->name || !dev->data)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "%s: out of memory", path);

    if (dev->open_delay_ms > 0) {
        /* One clock reading for both ends, so a timeout equal to the delay
         * is enough, as it always was. */
        const uint64_t now = devhost_util_now_ns();
        const uint64_t ready = loop_after(now, dev->open_delay_ms);
        const uint64_t timeout = loop_after(now, params->timeout_ms);
        const uint64_t deadline = devhost_util_deadline_min(devhost_hook_deadline(services, dev->host_device), timeout);
        s = loop_wait(dev, devhost_util_deadline_min(deadline, ready));
        if (s == DEVHOST_E_CANCELLED)
            return devhost_fail(err, s, 0, "opening %s cancelled during its open-delay", path);
        if (deadline < ready && timeout == deadline)
            return devhost_fail(err, DEVHOST_E_TIMEOUT, 0,
                                "opening %s takes %" PRId64 " ms (open-delay), more than the %d ms timeout",
                                path, dev->open_delay_ms, (int)params->timeout_ms);
        if (deadline < ready)
            return devhost_fail(err, DEVHOST_E_TIMEOUT, 0,
                                "opening %s takes %" PRId64 " ms (open-delay), past the open's deadline", path,
                                dev->open_delay_ms);
    }

    s = loop_name_acquire(dev->name, dev->device_name, dev->exclusive, &dev->shared, err);
    if (s != DEVHOST_OK)
        return s;
    devhost_logf(services, dev->host_device, DEVHOST_LOG_DEBUG, "opened %s (capacity %zu%s)", path,
                 dev->capacity, dev->exclusive ? ", exclusive" : "");
    return DEVHOST_OK;
}

/* close: drops a lock or connection the pipeline left behind (and says so in
 * the log), unregisters NAME, frees everything. State: any, including
 * half-opened (dev->shared NULL). Returns OK. `dev` is freed. */
static devhost_status loop_close(devhost_device *dev, devhost_error *err)
{
    (void)err;
    if (dev->locked) {
        devhost_logf(services, dev->host_device, DEVHOST_LOG_INFO,
                     "close: releasing the lock on loop:%s that was not unlocked", dev->name);
        loop_name_unlock(dev->shared, dev);
    }
    if (dev->connected) {
        devhost_logf(services, dev->host_device, DEVHOST_LOG_INFO,
                     "close: dropping the connection to loop:%s that was not disconnected", dev->name);
        loop_count_connected(-1);
    }
    if (dev->shared) {
        loop_name_release(dev->shared);
        devhost_logf(services, dev->host_device, DEVHOST_LOG_DEBUG, "closed loop:%s", dev->name);
    }
    free_device(dev);
    return DEVHOST_OK;
}

/* connect: validates the context pair, keeps a copy of the context and the
 * step's key=value arguments (info shows both). State: open, not connected.
 * Returns: OK; E_INVALID (context without size, or size without context);
 * E_STATE (already connected); E_NO_MEMORY. params is ours for this call. */
static devhost_status loop_connect(devhost_device *dev, const devhost_connect_params *params,
                                   devhost_error *err)
{
    size_t args_len = 1;
    uint32_t i;
    if (dev->connected)
        return devhost_fail(err, DEVHOST_E_STATE, 0, "loop:%s is already connected", dev->name);
    if (params->context && params->context_size == 0)
        return devhost_fail(err, DEVHOST_E_INVALID, 0,
                            "connect to loop:%s: a context was given with context-size 0", dev->name);
    if (!params->context && params->context_size != 0)
        return devhost_fail(err, DEVHOST_E_INVALID, 0,
                            "connect to loop:%s: context-size is %u but no context was given",
                            dev->name, (unsigned)params->context_size);

    for (i = 0; i < params->arg_count; i++)
        args_len += strlen(params->args[i].key) + strlen(params->args[i].value) + 2;
    dev->connect_args = malloc(args_len);
    if (params->context_size)
        dev->context = malloc(params->context_size);
    if (!dev->connect_args || (params->context_size && !dev->context)) {
        free(dev->connect_args);
        free(dev->context);
        dev->connect_args = NULL;
        dev->context = NULL;
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "connect to loop:%s: out of memory", dev->name);
    }
    dev->connect_args[0] = '\0';
    for (i = 0; i < params->arg_count; i++) {
        if (i)
            strcat(dev->connect_args, " ");
        strcat(dev->connect_args, params->args[i].key);
        strcat(dev->connect_args, "=");
        strcat(dev->connect_args, params->args[i].value);
    }
    if (params->context_size)
        memcpy(dev->context, params->context, params->context_size);
    dev->context_size = params->context_size;
    dev->connected = 1;
    loop_count_connected(+1);
    return DEVHOST_OK;
}

/* disconnect: forgets the context. State: connected. Returns OK; E_STATE
 * when not connected. */
static devhost_status loop_disconnect(devhost_device *dev, devhost_error *err)
{
    if (!dev->connected)
        return devhost_fail(err, DEVHOST_E_STATE, 0, "loop:%s is not connected", dev->name);
    free(dev->context);
    free(dev->connect_args);
    dev->context = NULL;
    dev->connect_args = NULL;
    dev->context_size = 0;
    dev->connected = 0;
    loop_count_connected(-1);
    return DEVHOST_OK;
}

/* lock: takes NAME's lock, shared by every device open on NAME in this
 * process, waiting up to timeout_ms (-1: until cancelled) for its holder.
 * State: open, not locked. Returns: OK; E_TIMEOUT and E_CANCELLED (naming the
 * holder); E_STATE (already locked). */
static devhost_status loop_lock(devhost_device *dev, int32_t timeout_ms, devhost_error *err)
{
    devhost_status s;
    if (dev->locked)
        return devhost_fail(err, DEVHOST_E_STATE, 0, "loop:%s is already locked by this device", dev->name);
    s = loop_name_lock(dev->shared, dev, dev->device_name, dev->cancel_fd, loop_deadline(dev->host_device, timeout_ms),
                       err);
    if (s == DEVHOST_OK)
        dev->locked = 1;
    return s;
}

/* unlock: releases NAME's lock. State: locked. Returns OK; E_STATE. */
static devhost_status loop_unlock(devhost_device *dev, devhost_error *err)
{
    if (!dev->locked)
        return devhost_fail(err, DEVHOST_E_STATE, 0, "loop:%s is not locked by this device", dev->name);
    loop_name_unlock(dev->shared, dev);
    dev->locked = 0;
    return DEVHOST_OK;
}

/* info: path, capacity, buffered bytes, flags, connection. State: open.
 * Returns OK. The sink copies each string before put() returns. */
static devhost_status loop_info(devhost_device *dev, const devhost_info_sink *sink, devhost_error *err)
{
    static const char hex[] = "0123456789abcdef";
    char number[32];
    char context[2 * 64 + 4];
    size_t i, shown;
    (void)err;

    sink->put(sink->context, "name", dev->name);
    snprintf(number, sizeof number, "%zu", dev->capacity);
    sink->put(sink->context, "capacity", number);
    snprintf(number, sizeof number, "%zu", dev->len);
    sink->put(sink->context, "buffered", number);
    sink->put(sink->context, "exclusive", dev->exclusive ? "yes" : "no");
    sink->put(sink->context, "locked", dev->locked ? "yes" : "no");
    sink->put(sink->context, "connected", dev->connected ? "yes" : "no");
    if (!dev->connected)
        return DEVHOST_OK;
    snprintf(number, sizeof number, "%u", (unsigned)dev->context_size);
    sink->put(sink->context, "context-size", number);
    /* The context as hex, its first 64 bytes at most. */
    shown = dev->context_size < 64 ? dev->context_size : 64;
    for (i = 0; i < shown; i++) {
        context[2 * i] = hex[dev->context[i] >> 4];
        context[2 * i + 1] = hex[dev->context[i] & 15];
    }
    strcpy(context + 2 * shown, shown < dev->context_size ? "..." : "");
    sink->put(sink->context, "context", context);
    sink->put(sink->context, "connect-args", dev->connect_args);
    return DEVHOST_OK;
}

/* transfer: one op (loop_op_* in backend_buffer.c; README.md lists them).
 * State: open (transfer_requires = 0). Returns per op: OK; E_TIMEOUT and
 * E_CANCELLED (a wait ended; in_len or out_done tell how far it got);
 * E_INVALID (no room, no delimiter, unknown message id, fill too big);
 * E_PROTOCOL (no delimiter within in_capacity, or a reply larger than
 * in_capacity); E_UNSUPPORTED (unknown control code or op, or an offset: a
 * stream has none). x and its buffers belong to the host. */
static devhost_status loop_transfer(devhost_device *dev, devhost_transfer *x, devhost_error *err)
{
    const uint64_t deadline = loop_deadline(dev->host_device, x->timeout_ms);
    if (x->flags & DEVHOST_TRANSFER_HAS_OFFSET)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "loop: a loop device has no offsets");
    switch (x->op) {
    case DEVHOST_OP_WRITE: return loop_op_write(dev, x, deadline, err);
    case DEVHOST_OP_READ: return loop_op_read(dev, x, deadline, err);
    case DEVHOST_OP_READ_EXACT: return loop_op_read_exact(dev, x, deadline, err);
    case DEVHOST_OP_READ_UNTIL: return loop_op_read_until(dev, x, deadline, err);
    case DEVHOST_OP_REQUEST: return loop_op_request(dev, x, deadline, err);
    case DEVHOST_OP_GET_MESSAGE: return loop_op_get_message(dev, x, deadline, err);
    case DEVHOST_OP_REPLY: return loop_op_reply(dev, x, deadline, err);
    case DEVHOST_OP_CONTROL: return loop_op_control(dev, x, deadline, err);
    default:
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "loop has no transfer op %u", (unsigned)x->op);
    }
}

/* ------------------------------------------------------------------------
 * The hook table, the descriptor and the entry point
 * ------------------------------------------------------------------------ */

static const devhost_hooks loop_hooks = {
    .struct_size = sizeof(devhost_hooks),
    .open = loop_open,
    .close = loop_close,
    .connect = loop_connect,
    .disconnect = loop_disconnect,
    .lock = loop_lock,
    .unlock = loop_unlock,
    .info = loop_info,
    .transfer = loop_transfer,
    /* enumerate and unload: NULL (see the top of this file) */
};

/* What a config's path may be for this class: loop:NAME (the host matches
 * without FNM_PATHNAME, so a NAME holding a '/' is this pattern's too). */
static const char *const loop_path_patterns[] = {LOOP_PREFIX "*", NULL};

static const devhost_plugin_descriptor loop_descriptor = {
    .struct_size = sizeof(devhost_plugin_descriptor),
    .flags = DEVHOST_PLUGIN_SHARED_PATHS, /* devices on one NAME share its lock */
    .name = "loop",
    .device_class = "loop",
    .version = "1.0.0",
    .description = "in-memory loopback: bytes written can be read back; the example plugin",
    .options = loop_options,
    .option_count = OPT_COUNT,
    .control_count = sizeof loop_controls / sizeof loop_controls[0],
    .controls = loop_controls,
    .hooks = &loop_hooks,
    .transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_WRITE) | DEVHOST_OP_BIT(DEVHOST_OP_READ) |
                    DEVHOST_OP_BIT(DEVHOST_OP_READ_EXACT) | DEVHOST_OP_BIT(DEVHOST_OP_READ_UNTIL) |
                    DEVHOST_OP_BIT(DEVHOST_OP_REQUEST) | DEVHOST_OP_BIT(DEVHOST_OP_GET_MESSAGE) |
                    DEVHOST_OP_BIT(DEVHOST_OP_REPLY) | DEVHOST_OP_BIT(DEVHOST_OP_CONTROL),
    .transfer_requires = 0, /* open is enough */
    .lock_requires = 0,     /* no connect needed */
    .path_patterns = loop_path_patterns,
};

/* Speaks ABI 1.x (1.1 when the host does, else the host's minor); refuses
 * other majors. */
DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    return devhost_negotiate(n, &loop_descriptor, &services);
}
