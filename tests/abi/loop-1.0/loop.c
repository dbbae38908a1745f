/*
 * loop: the smallest complete devhost plugin, and the fixture host tests use.
 *
 * A loop device is a byte buffer in memory. Its path is "loop:NAME": what a
 * device writes, it reads back. Devices opened on the same NAME share that
 * name's lock (and its exclusive-open rule) but each has its own buffer, so
 * nothing but the device itself ever fills or drains it: a read that finds
 * too little waits for its deadline or its cancel handle, then fails.
 *
 * Copy this file to start a plugin: the descriptor and hooks are here; the
 * process-wide state (the "backend": names, locks, counters) is in
 * loop_shared.c, as a real plugin keeps its OS code apart.
 *
 * Options (validated by the host against the schema before open)
 *   capacity      INT 1..16777216, default 4096   buffer size in bytes
 *   exclusive     BOOL, default false             refuse every other open
 *                                                 of NAME while this one is
 *                                                 open (DEVHOST_E_BUSY)
 *   open-delay    DURATION, default 0ms           open waits this long
 *                                                 (honours timeout, cancel)
 *
 * Descriptor flags
 *   DEVHOST_PLUGIN_SHARED_PATHS  several devices may open one loop:NAME (they
 *                                share its lock), so `devhost check` allows it
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
 * Transfer ops (all of DEVHOST_OP_WRITE..DEVHOST_OP_CONTROL)
 *   WRITE         append; a full buffer takes what fits, then waits for
 *                 space that never comes: DEVHOST_E_TIMEOUT, out_done set
 *   READ          1..in_capacity bytes as soon as any are buffered
 *   READ_EXACT    in_capacity bytes; on timeout, what there was
 *   READ_UNTIL    up to and including the delimiter; surplus stays buffered;
 *                 in_capacity bytes without it: DEVHOST_E_PROTOCOL
 *   REQUEST       a mirror: the reply is the request (up to and including
 *                 the delimiter's first occurrence, if one is given)
 *   GET_MESSAGE   the buffered bytes as one message, ids 1, 2, ... per device
 *   REPLY         to an issued, unanswered message id
 *   CONTROL       codes below
 *
 * Control codes
 *   1 stats       "open=N connected=N locked=N opened-total=N" (process-wide)
 *   2 clear       empty this device's buffer              (modifies)
 *   3 fill        append the input bytes, all or nothing  (modifies)
 *
 * Entry point: devhost_plugin_negotiate, at the end.
 */
#include "loop_shared.h"

#include <devhost/plugin.h>

#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define LOOP_PREFIX "loop:"

enum { LOOP_CONTROL_STATS = 1, LOOP_CONTROL_CLEAR = 2, LOOP_CONTROL_FILL = 3 };

/* The host's services, stored at negotiation; valid while we are loaded. */
static const devhost_host_services *services;

/* Per-device state: allocated in open, freed in close. */
struct devhost_device {
    /* identity, from open */
    const devhost_host_device *host_device; /* for log calls */
    int cancel_fd;                          /* host's eventfd; never closed here */
    char *device_name;                      /* config name, for messages */
    char *name;                             /* NAME of loop:NAME */
    loop_name *shared;                      /* NULL until registered: half-opened */
    int exclusive;
    int64_t open_delay_ms;

    /* the byte buffer */
    uint8_t *data;
    size_t len;
    size_t capacity;

    /* session */
    int connected;
    uint8_t *context;                       /* copy of the connect context */
    uint32_t context_size;
    char *connect_args;                     /* "k=v k=v", for info */
    int locked;

    /* messages issued by GET_MESSAGE and not yet replied to */
    uint64_t last_id;
    uint64_t *pending;
    size_t pending_count;
    size_t pending_capacity;
};

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    return services && services->monotonic_ns ? services->monotonic_ns() : loop_now_ns();
}

/* timeout_ms (-1: none) as an absolute deadline; UINT64_MAX: none. */
static uint64_t deadline_after(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return UINT64_MAX;
    return now_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* Sleeps until `deadline` or until the cancel handle fires, whichever comes
 * first. Returns DEVHOST_E_TIMEOUT or DEVHOST_E_CANCELLED. A loop device's
 * buffer only changes through its own hooks, so there is nothing else to
 * wait for. */
static devhost_status wait_for_deadline(const devhost_device *dev, uint64_t deadline)
{
    for (;;) {
        struct pollfd p;
        int ms = -1;
        int n;
        uint64_t now = now_ns();
        if (deadline != UINT64_MAX) {
            uint64_t left;
            if (now >= deadline)
                return DEVHOST_E_TIMEOUT;
            left = (deadline - now + 999999u) / 1000000u;
            ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        p.fd = dev->cancel_fd;
        p.events = POLLIN;
        p.revents = 0;
        n = poll(&p, 1, ms);
        if (n > 0 && (p.revents & POLLIN))
            return DEVHOST_E_CANCELLED;
        /* n == 0: the poll timed out; EINTR: retry. Both recheck the clock. */
    }
}

/* "timed out" or "cancelled", for messages. */
static const char *wait_result(devhost_status s)
{
    return s == DEVHOST_E_CANCELLED ? "cancelled" : "timed out";
}

/* Moves the first n buffered bytes into `to` and drops them from the buffer. */
static void buffer_take(devhost_device *dev, uint8_t *to, size_t n)
{
    memcpy(to, dev->data, n);
    memmove(dev->data, dev->data + n, dev->len - n);
    dev->len -= n;
}

/* Appends what fits of from[0..n); returns how many bytes that was. */
static size_t buffer_append(devhost_device *dev, const uint8_t *from, size_t n)
{
    size_t room = dev->capacity - dev->len;
    if (n > room)
        n = room;
    if (n)
        memcpy(dev->data + dev->len, from, n);
    dev->len += n;
    return n;
}

/* Offset of the first `needle` in hay[0..hay_len), or SIZE_MAX. */
static size_t find_bytes(const uint8_t *hay, size_t hay_len, const uint8_t *needle, size_t needle_len)
{
    size_t i;
    if (needle_len == 0 || hay_len < needle_len)
        return SIZE_MAX;
    for (i = 0; i + needle_len <= hay_len; i++)
        if (memcmp(hay + i, needle, needle_len) == 0)
            return i;
    return SIZE_MAX;
}

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

/* ------------------------------------------------------------------------
 * Hooks
 * ------------------------------------------------------------------------ */

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
    const devhost_option_value *capacity = devhost_option_find(params, "capacity");
    const devhost_option_value *exclusive = devhost_option_find(params, "exclusive");
    const devhost_option_value *delay = devhost_option_find(params, "open-delay");
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
    if (capacity && capacity->is_set && (capacity->integer < 1 || capacity->integer > 16777216))
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "option 'capacity': %" PRId64
                            " is outside 1..16777216", capacity->integer);

    /* From here on a failure leaves *device half-opened for loop_close. */
    dev = calloc(1, sizeof *dev);
    if (!dev)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "%s: out of memory", path);
    *device = dev;
    dev->host_device = params->host_device;
    dev->cancel_fd = params->cancel_fd;
    dev->capacity = capacity && capacity->is_set ? (size_t)capacity->integer : 4096;
    dev->exclusive = exclusive && exclusive->is_set && exclusive->integer;
    dev->open_delay_ms = delay && delay->is_set ? delay->integer : 0;
    dev->device_name = loop_copy_string(params->device_name ? params->device_name : "?");
    dev->name = loop_copy_string(path + strlen(LOOP_PREFIX));
    dev->data = malloc(dev->capacity);
    if (!dev->device_name || !dev->name || !dev->data)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "%s: out of memory", path);

    if (dev->open_delay_ms > 0) {
        int too_slow = params->timeout_ms >= 0 && params->timeout_ms < dev->open_delay_ms;
        s = wait_for_deadline(dev, deadline_after(too_slow ? params->timeout_ms : dev->open_delay_ms));
        if (s == DEVHOST_E_CANCELLED)
            return devhost_fail(err, s, 0, "opening %s cancelled during its open-delay", path);
        if (too_slow)
            return devhost_fail(err, DEVHOST_E_TIMEOUT, 0,
                                "opening %s takes %" PRId64 " ms (open-delay), more than the %d ms timeout",
                                path, dev->open_delay_ms, (int)params->timeout_ms);
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
    s = loop_name_lock(dev->shared, dev, dev->device_name, dev->cancel_fd, deadline_after(timeout_ms), err);
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

/* The transfer ops, one function each; loop_transfer below dispatches.
 * Each: x is the host's, buffers included; it fills out_done, in_len,
 * message_id; a failure still reports how far it got. */

static devhost_status op_write(devhost_device *dev, devhost_transfer *x, devhost_error *err)
{
    devhost_status s;
    x->out_done = buffer_append(dev, x->out, x->out_len);
    if (x->out_done == x->out_len)
        return DEVHOST_OK;
    /* Full, and nobody else drains this buffer: wait out the deadline. */
    s = wait_for_deadline(dev, deadline_after(x->timeout_ms));
    return devhost_fail(err, s, 0, "write to loop:%s %s with the buffer full (%zu bytes): wrote %zu of %zu bytes",
                        dev->name, wait_result(s), dev->capacity, x->out_done, x->out_len);
}

static devhost_status op_read(devhost_device *dev, devhost_transfer *x, devhost_error *err)
{
    devhost_status s;
    if (x->in_capacity == 0)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "read from loop:%s needs room for at least 1 byte",
                            dev->name);
    if (dev->len > 0) {
        x->in_len = dev->len < x->in_capacity ? dev->len : x->in_capacity;
        buffer_take(dev, x->in, x->in_len);
        return DEVHOST_OK;
    }
    s = wait_for_deadline(dev, deadline_after(x->timeout_ms));
    return devhost_fail(err, s, 0, "read from loop:%s %s: nothing was written", dev->name, wait_result(s));
}

static devhost_status op_read_exact(devhost_device *dev, devhost_transfer *x, devhost_error *err)
{
    devhost_status s;
    if (dev->len >= x->in_capacity) {
        buffer_take(dev, x->in, x->in_capacity);
        x->in_len = x->in_capacity;
        return DEVHOST_OK;
    }
    s = wait_for_deadline(dev, deadline_after(x->timeout_ms));
    /* Hand over what there is: the caller sees how far it got. */
    x->in_len = dev->len;
    buffer_take(dev, x->in, x->in_len);
    return devhost_fail(err, s, 0, "read of exactly %zu bytes from loop:%s %s with %zu bytes",
                        x->in_capacity, dev->name, wait_result(s), x->in_len);
}

static devhost_status op_read_until(devhost_device *dev, devhost_transfer *x, devhost_error *err)
{
    size_t window = dev->len < x->in_capacity ? dev->len : x->in_capacity;
    size_t at;
    devhost_status s;
    if (!x->delimiter || x->delimiter_len == 0)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "read until from loop:%s needs a delimiter", dev->name);
    if (x->in_capacity == 0)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "read until from loop:%s needs room for at least 1 byte",
                            dev->name);
    at = find_bytes(dev->data, window, x->delimiter, x->delimiter_len);
    if (at != SIZE_MAX) {
        x->in_len = at + x->delimiter_len;
        buffer_take(dev, x->in, x->in_len);
        return DEVHOST_OK;
    }
    if (dev->len >= x->in_capacity) {
        x->in_len = x->in_capacity;
        buffer_take(dev, x->in, x->in_len);
        return devhost_fail(err, DEVHOST_E_PROTOCOL, 0,
                            "read until from loop:%s: no delimiter within the %zu-byte buffer",
                            dev->name, x->in_capacity);
    }
    s = wait_for_deadline(dev, deadline_after(x->timeout_ms));
    x->in_len = dev->len;
    buffer_take(dev, x->in, x->in_len);
    return devhost_fail(err, s, 0, "read until from loop:%s %s: no delimiter in %zu bytes",
                        dev->name, wait_result(s), x->in_len);
}

static devhost_status op_request(devhost_device *dev, devhost_transfer *x, devhost_error *err)
{
    size_t reply = x->out_len;
    size_t at = find_bytes(x->out, x->out_len, x->delimiter, x->delimiter ? x->delimiter_len : 0);
    if (at != SIZE_MAX)
        reply = at + x->delimiter_len;
    x->out_done = x->out_len;
    if (reply > x->in_capacity) {
        x->in_len = x->in_capacity;
        if (x->in_len)
            memcpy(x->in, x->out, x->in_len);
        return devhost_fail(err, DEVHOST_E_PROTOCOL, 0,
                            "request to loop:%s: the %zu-byte reply does not fit the %zu-byte buffer",
                            dev->name, reply, x->in_capacity);
    }
    if (reply)
        memcpy(x->in, x->out, reply);
    x->in_len = reply;
    return DEVHOST_OK;
}

static devhost_status op_get_message(devhost_device *dev, devhost_transfer *x, devhost_error *err)
{
    devhost_status s;
    if (x->in_capacity == 0)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "get-message from loop:%s needs room for at least 1 byte",
                            dev->name);
    if (dev->len == 0) {
        s = wait_for_deadline(dev, deadline_after(x->timeout_ms));
        return devhost_fail(err, s, 0, "get-message from loop:%s %s: nothing was written", dev->name,
                            wait_result(s));
    }
    if (dev->pending_count == dev->pending_capacity) {
        size_t n = dev->pending_capacity ? 2 * dev->pending_capacity : 8;
        uint64_t *grown = realloc(dev->pending, n * sizeof *grown);
        if (!grown)
            return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "get-message from loop:%s: out of memory", dev->name);
        dev->pending = grown;
        dev->pending_capacity = n;
    }
    x->in_len = dev->len < x->in_capacity ? dev->len : x->in_capacity;
    buffer_take(dev, x->in, x->in_len);
    x->message_id = ++dev->last_id;
    dev->pending[dev->pending_count++] = x->message_id;
    return DEVHOST_OK;
}

static devhost_status op_reply(devhost_device *dev, devhost_transfer *x, devhost_error *err)
{
    size_t i;
    if (x->message_id == 0 || x->message_id > dev->last_id)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "reply on loop:%s: message id %" PRIu64 " was never issued",
                            dev->name, x->message_id);
    for (i = 0; i < dev->pending_count; i++) {
        if (dev->pending[i] == x->message_id) {
            dev->pending[i] = dev->pending[--dev->pending_count];
            x->out_done = x->out_len; /* a mirror has nobody to read replies */
            return DEVHOST_OK;
        }
    }
    return devhost_fail(err, DEVHOST_E_INVALID, 0, "reply on loop:%s: message id %" PRIu64 " was already replied to",
                        dev->name, x->message_id);
}

static devhost_status op_control(devhost_device *dev, devhost_transfer *x, devhost_error *err)
{
    switch (x->control_code) {
    case LOOP_CONTROL_STATS: {
        char text[160];
        loop_counters c;
        size_t n;
        loop_counters_get(&c);
        snprintf(text, sizeof text, "open=%lu connected=%lu locked=%lu opened-total=%lu", c.open, c.connected,
                 c.locked, c.opened_total);
        n = strlen(text);
        if (n > x->in_capacity)
            return devhost_fail(err, DEVHOST_E_INVALID, 0, "control stats needs a %zu-byte output buffer, got %zu",
                                n, x->in_capacity);
        memcpy(x->in, text, n);
        x->in_len = n;
        return DEVHOST_OK;
    }
    case LOOP_CONTROL_CLEAR:
        dev->len = 0;
        return DEVHOST_OK;
    case LOOP_CONTROL_FILL:
        if (x->out_len > dev->capacity - dev->len)
            return devhost_fail(err, DEVHOST_E_INVALID, 0,
                                "control fill on loop:%s: %zu bytes do not fit, %zu of %zu bytes are free",
                                dev->name, x->out_len, dev->capacity - dev->len, dev->capacity);
        x->out_done = buffer_append(dev, x->out, x->out_len);
        return DEVHOST_OK;
    default:
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0,
                            "loop has no control code %u (it has 1 stats, 2 clear, 3 fill)",
                            (unsigned)x->control_code);
    }
}

/* transfer: one op, see the table at the top. State: open (transfer_requires
 * = 0). Returns per op: OK; E_TIMEOUT / E_CANCELLED (a wait ended; in_len or
 * out_done tell how far it got); E_INVALID (no room, no delimiter, unknown
 * message id, fill too big); E_PROTOCOL (no delimiter within in_capacity, or
 * a reply larger than in_capacity); E_UNSUPPORTED (unknown control code or
 * op, or an offset: a stream has none). x and its buffers belong to the host. */
static devhost_status loop_transfer(devhost_device *dev, devhost_transfer *x, devhost_error *err)
{
    if (x->flags & DEVHOST_TRANSFER_HAS_OFFSET)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "loop: a loop device has no offsets");
    switch (x->op) {
    case DEVHOST_OP_WRITE: return op_write(dev, x, err);
    case DEVHOST_OP_READ: return op_read(dev, x, err);
    case DEVHOST_OP_READ_EXACT: return op_read_exact(dev, x, err);
    case DEVHOST_OP_READ_UNTIL: return op_read_until(dev, x, err);
    case DEVHOST_OP_REQUEST: return op_request(dev, x, err);
    case DEVHOST_OP_GET_MESSAGE: return op_get_message(dev, x, err);
    case DEVHOST_OP_REPLY: return op_reply(dev, x, err);
    case DEVHOST_OP_CONTROL: return op_control(dev, x, err);
    default:
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "loop has no transfer op %u", (unsigned)x->op);
    }
}

/* ------------------------------------------------------------------------
 * Descriptor and entry point
 * ------------------------------------------------------------------------ */

static const devhost_option_spec loop_options[] = {
    {sizeof(devhost_option_spec), DEVHOST_OPTION_INT, "capacity", "4096",
     "buffer size in bytes", NULL, 1, 16777216},
    {sizeof(devhost_option_spec), DEVHOST_OPTION_BOOL, "exclusive", "false",
     "refuse other opens of the same loop:NAME while this device is open", NULL, 0, 0},
    {sizeof(devhost_option_spec), DEVHOST_OPTION_DURATION, "open-delay", "0ms",
     "open waits this long first (to test timeouts and cancel)", NULL, 0, 0},
};

static const devhost_control_spec loop_controls[] = {
    {sizeof(devhost_control_spec), LOOP_CONTROL_STATS, "stats",
     "process-wide counters: open=N connected=N locked=N opened-total=N", 0},
    {sizeof(devhost_control_spec), LOOP_CONTROL_CLEAR, "clear",
     "empty this device's buffer", DEVHOST_CONTROL_MODIFIES},
    {sizeof(devhost_control_spec), LOOP_CONTROL_FILL, "fill",
     "append the input bytes to the buffer, all or nothing", DEVHOST_CONTROL_MODIFIES},
};

static const devhost_hooks loop_hooks = {
    sizeof(devhost_hooks), 0,
    loop_open, loop_close, loop_connect, loop_disconnect,
    loop_lock, loop_unlock, loop_info, loop_transfer,
};

static const devhost_plugin_descriptor loop_descriptor = {
    sizeof(devhost_plugin_descriptor),
    DEVHOST_PLUGIN_SHARED_PATHS,         /* flags: devices on one NAME share its lock */
    "loop",                              /* name */
    "loop",                              /* device class */
    "1.0.0",
    "in-memory loopback: bytes written can be read back; the example plugin",
    loop_options, sizeof loop_options / sizeof loop_options[0],
    sizeof loop_controls / sizeof loop_controls[0], loop_controls,
    &loop_hooks,
    DEVHOST_OP_BIT(DEVHOST_OP_WRITE) | DEVHOST_OP_BIT(DEVHOST_OP_READ) |
        DEVHOST_OP_BIT(DEVHOST_OP_READ_EXACT) | DEVHOST_OP_BIT(DEVHOST_OP_READ_UNTIL) |
        DEVHOST_OP_BIT(DEVHOST_OP_REQUEST) | DEVHOST_OP_BIT(DEVHOST_OP_GET_MESSAGE) |
        DEVHOST_OP_BIT(DEVHOST_OP_REPLY) | DEVHOST_OP_BIT(DEVHOST_OP_CONTROL),
    0,                                   /* transfer_requires: open is enough */
    0,                                   /* lock_requires: no connect needed */
    0,
};

/* Speaks ABI 1.0, which every 1.x host accepts; refuses other majors. */
DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    if (DEVHOST_VERSION_MAJOR(n->host_abi_version) != DEVHOST_ABI_VERSION_MAJOR)
        return devhost_fail(n->error, DEVHOST_E_UNSUPPORTED, 0, "loop speaks ABI 1.x, the host offers %u.%u",
                            (unsigned)DEVHOST_VERSION_MAJOR(n->host_abi_version),
                            (unsigned)DEVHOST_VERSION_MINOR(n->host_abi_version));
    n->plugin_abi_version = DEVHOST_ABI_VERSION;
    n->descriptor = &loop_descriptor;
    services = n->services;
    return DEVHOST_OK;
}
