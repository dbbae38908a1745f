/*
 * The filter-port frame codec (see devhost/port_wire.h): encode and a pure
 * decode, with no I/O, so that decode can be fuzzed on its own.
 */
#include <devhost/port_wire.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *devhost_port_frame_type_name(uint32_t type)
{
    switch (type) {
    case DEVHOST_PORT_FRAME_HELLO: return "HELLO";
    case DEVHOST_PORT_FRAME_WELCOME: return "WELCOME";
    case DEVHOST_PORT_FRAME_REQUEST: return "REQUEST";
    case DEVHOST_PORT_FRAME_RESPONSE: return "RESPONSE";
    case DEVHOST_PORT_FRAME_MESSAGE: return "MESSAGE";
    case DEVHOST_PORT_FRAME_REPLY: return "REPLY";
    case DEVHOST_PORT_FRAME_ERROR: return "ERROR";
    default: return "UNKNOWN";
    }
}

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    size_t i;
    for (i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

size_t devhost_port_frame_encode(uint8_t *buf, size_t capacity, uint32_t type, uint32_t flags,
                                 int32_t status, uint64_t id, const void *payload, uint32_t length)
{
    if (length > DEVHOST_PORT_MAX_PAYLOAD || capacity < (size_t)DEVHOST_PORT_HEADER_SIZE + length)
        return 0;
    if (length && !payload)
        return 0;
    buf[0] = DEVHOST_PORT_WIRE_VERSION;
    buf[1] = (uint8_t)type;
    put_le(buf + 2, flags & 0xffffu, 2);
    put_le(buf + 4, (uint32_t)status, 4);
    put_le(buf + 8, id, 8);
    put_le(buf + 16, length, 4);
    if (length)
        memcpy(buf + DEVHOST_PORT_HEADER_SIZE, payload, length);
    return (size_t)DEVHOST_PORT_HEADER_SIZE + length;
}

/* Fills `why` and returns DEVHOST_E_PROTOCOL. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static devhost_status refuse(char *why, size_t why_size, const char *fmt, ...)
{
    if (why && why_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return DEVHOST_E_PROTOCOL;
}

static int carries_status(uint32_t type)
{
    return type == DEVHOST_PORT_FRAME_WELCOME || type == DEVHOST_PORT_FRAME_RESPONSE ||
           type == DEVHOST_PORT_FRAME_ERROR;
}

devhost_status devhost_port_frame_decode(const uint8_t *buf, size_t size, uint32_t max_payload,
                                         devhost_port_frame *frame, char *why, size_t why_size)
{
    uint32_t bound = max_payload < DEVHOST_PORT_MAX_PAYLOAD ? max_payload : DEVHOST_PORT_MAX_PAYLOAD;
    devhost_port_frame f;
    if (why && why_size)
        why[0] = '\0';
    if (!buf || size < DEVHOST_PORT_HEADER_SIZE)
        return refuse(why, why_size, "short frame: %zu bytes, the header is %d", buf ? size : (size_t)0,
                      DEVHOST_PORT_HEADER_SIZE);
    f.version = buf[0];
    f.type = buf[1];
    f.flags = (uint16_t)get_le(buf + 2, 2);
    f.status = (int32_t)(uint32_t)get_le(buf + 4, 4);
    f.id = get_le(buf + 8, 8);
    f.length = (uint32_t)get_le(buf + 16, 4);
    f.payload = buf + DEVHOST_PORT_HEADER_SIZE;
    if (f.version != DEVHOST_PORT_WIRE_VERSION)
        return refuse(why, why_size, "wrong protocol version %u (expected %d)", (unsigned)f.version,
                      DEVHOST_PORT_WIRE_VERSION);
    if (f.type < DEVHOST_PORT_FRAME_HELLO || f.type > DEVHOST_PORT_FRAME_LAST)
        return refuse(why, why_size, "unknown frame type %u", (unsigned)f.type);
    if (f.type == DEVHOST_PORT_FRAME_HELLO ? (f.flags & ~(uint32_t)DEVHOST_PORT_HELLO_SYNC) != 0 : f.flags != 0)
        return refuse(why, why_size, "%s frame with unknown flags 0x%x", devhost_port_frame_type_name(f.type),
                      (unsigned)f.flags);
    if (carries_status(f.type) ? f.status > 0 : f.status != 0)
        return refuse(why, why_size, "%s frame with invalid status %d", devhost_port_frame_type_name(f.type),
                      (int)f.status);
    if ((f.type == DEVHOST_PORT_FRAME_WELCOME || f.type == DEVHOST_PORT_FRAME_ERROR) && bound < DEVHOST_PORT_MAX_TEXT)
        bound = DEVHOST_PORT_MAX_TEXT;
    if (f.length > bound)
        return refuse(why, why_size, "oversized %s frame: payload of %u bytes, the bound is %u",
                      devhost_port_frame_type_name(f.type), (unsigned)f.length, (unsigned)bound);
    if ((size_t)f.length != size - DEVHOST_PORT_HEADER_SIZE)
        return refuse(why, why_size, "%s frame length field says %u bytes but %zu follow the header",
                      devhost_port_frame_type_name(f.type), (unsigned)f.length,
                      size - DEVHOST_PORT_HEADER_SIZE);
    if (f.type == DEVHOST_PORT_FRAME_HELLO && f.length > DEVHOST_PORT_MAX_CONTEXT)
        return refuse(why, why_size, "HELLO context of %u bytes does not fit in 16 bits", (unsigned)f.length);
    if (f.length == 0)
        f.payload = NULL;
    if (frame)
        *frame = f;
    return DEVHOST_OK;
}

size_t devhost_port_failure_encode(char *buf, size_t capacity, const char *text, size_t text_len,
                                   int32_t os_errno)
{
    char tail[24];
    size_t tail_len = 0, limit, n;
    if (!buf || capacity == 0)
        return 0;
    if (os_errno != 0) {
        int w = snprintf(tail + 1, sizeof tail - 1, "errno=%ld", (long)os_errno);
        tail[0] = '\0';
        tail_len = w > 0 ? (size_t)w + 1 : 0;
    }
    limit = capacity < DEVHOST_PORT_MAX_TEXT ? capacity : DEVHOST_PORT_MAX_TEXT;
    if (tail_len > limit)
        tail_len = 0;
    n = text ? text_len : 0;
    if (n > limit - tail_len)
        n = limit - tail_len;
    if (n)
        memcpy(buf, text, n);
    if (tail_len)
        memcpy(buf + n, tail, tail_len);
    return n + tail_len;
}

int32_t devhost_port_failure_decode(const uint8_t *payload, size_t len, size_t *text_len)
{
    const uint8_t *nul = payload && len ? (const uint8_t *)memchr(payload, 0, len) : NULL;
    long v = 0;
    size_t i, digits = 0;
    int negative = 0;
    if (text_len)
        *text_len = nul ? (size_t)(nul - payload) : len;
    if (!nul)
        return 0;
    i = (size_t)(nul - payload) + 1;
    if (len - i < 7 || memcmp(payload + i, "errno=", 6) != 0)
        return 0;
    i += 6;
    if (payload[i] == '-') {
        negative = 1;
        i++;
    }
    for (; i < len && digits < 10; i++, digits++) {
        if (payload[i] < '0' || payload[i] > '9')
            return 0;
        v = v * 10 + (payload[i] - '0');
    }
    if (digits == 0 || i != len)
        return 0;
    return (int32_t)(negative ? -v : v);
}
