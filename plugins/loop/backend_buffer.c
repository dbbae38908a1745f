/*
 * The loop device's backend: its byte buffer, its messages, and the transfer
 * ops on them, one function each (plugin.c's loop_transfer dispatches). A
 * real plugin's OS code sits in a file like this one.
 */
#include "loop_private.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

devhost_status loop_wait(const devhost_device *dev, uint64_t deadline)
{
    return devhost_util_wait(-1, 0, dev->cancel_fd, deadline, NULL, NULL, NULL, NULL);
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

/* The transfer ops: see loop_private.h. */

devhost_status loop_op_write(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err)
{
    devhost_status s;
    x->out_done = buffer_append(dev, x->out, x->out_len);
    if (x->out_done == x->out_len)
        return DEVHOST_OK;
    /* Full, and nobody else drains this buffer: wait out the deadline. */
    s = loop_wait(dev, deadline);
    return devhost_fail(err, s, 0, "write to loop:%s %s with the buffer full (%zu bytes): wrote %zu of %zu bytes",
                        dev->name, wait_result(s), dev->capacity, x->out_done, x->out_len);
}

devhost_status loop_op_read(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err)
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
    s = loop_wait(dev, deadline);
    return devhost_fail(err, s, 0, "read from loop:%s %s: nothing was written", dev->name, wait_result(s));
}

devhost_status loop_op_read_exact(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err)
{
    devhost_status s;
    if (dev->len >= x->in_capacity) {
        buffer_take(dev, x->in, x->in_capacity);
        x->in_len = x->in_capacity;
        return DEVHOST_OK;
    }
    s = loop_wait(dev, deadline);
    /* Hand over what there is: the caller sees how far it got. */
    x->in_len = dev->len;
    buffer_take(dev, x->in, x->in_len);
    return devhost_fail(err, s, 0, "read of exactly %zu bytes from loop:%s %s with %zu bytes",
                        x->in_capacity, dev->name, wait_result(s), x->in_len);
}

devhost_status loop_op_read_until(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err)
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
    s = loop_wait(dev, deadline);
    x->in_len = dev->len;
    buffer_take(dev, x->in, x->in_len);
    return devhost_fail(err, s, 0, "read until from loop:%s %s: no delimiter in %zu bytes",
                        dev->name, wait_result(s), x->in_len);
}

devhost_status loop_op_request(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err)
{
    (void)deadline; /* never waits */
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

devhost_status loop_op_get_message(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err)
{
    devhost_status s;
    if (x->in_capacity == 0)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "get-message from loop:%s needs room for at least 1 byte",
                            dev->name);
    if (dev->len == 0) {
        s = loop_wait(dev, deadline);
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

devhost_status loop_op_reply(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err)
{
    (void)deadline; /* never waits */
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

devhost_status loop_op_control(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err)
{
    (void)deadline; /* never waits */
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
