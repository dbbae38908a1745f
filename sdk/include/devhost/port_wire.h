/*
 * devhost filter-port wire protocol, version 1: the frames a port server
 * (port.h) and its clients (the filterport plugin, or any program) exchange.
 *
 * Transport: one Unix domain SOCK_SEQPACKET connection per client, so every
 * frame is one datagram and arrives whole or not at all.
 *
 * Frame layout (all integers little-endian):
 *
 *   offset size field
 *   0      1    version   DEVHOST_PORT_WIRE_VERSION (1)
 *   1      1    type      DEVHOST_PORT_FRAME_* below
 *   2      2    flags     HELLO: DEVHOST_PORT_HELLO_SYNC; 0 for other types
 *   4      4    status    WELCOME, RESPONSE, ERROR: a devhost_status (0 or
 *                         negative); 0 for other types
 *   8      8    id        message id (REQUEST/RESPONSE: chosen by the client;
 *                         MESSAGE/REPLY: chosen by the server); 0 otherwise
 *   16     4    length    payload bytes that follow; must equal the datagram
 *                         size minus 20
 *   20     ...  payload
 *
 * Conversation:
 *   client -> HELLO (payload: the connect context, 0..65535 bytes)
 *   server -> WELCOME (status 0: connected; else the refusal, payload: one
 *             line of text saying why, then the server closes)
 *   client -> REQUEST id=N          server -> RESPONSE id=N (status, payload)
 *   server -> MESSAGE id=M          client -> REPLY id=M (payload)
 *   either -> ERROR (status DEVHOST_E_PROTOCOL, payload: what was wrong),
 *             then closes the connection.
 *
 * Since protocol v1.1 (same version byte; older peers interoperate):
 *   - A server checks the client's credentials, and its connection limits,
 *     when it accepts the connection, and may answer a refusing WELCOME
 *     before the client's HELLO, then close. A client whose HELLO cannot be
 *     sent (EPIPE) or whose read fails with ECONNRESET reads on: the
 *     refusing WELCOME is still queued for it.
 *   - A server closes a connection that has not said HELLO in time, with an
 *     ERROR of status DEVHOST_E_TIMEOUT.
 *   - The text of a failing WELCOME, RESPONSE or ERROR may be followed by
 *     one NUL byte and "errno=N" (N in decimal), the OS errno that goes with
 *     the failure (devhost_port_failure_encode/_decode). A v1.0 client shows
 *     it as text (".errno=N"); a v1.0 server never sends it.
 *
 * Rules: a receiver refuses with ERROR and closes the connection on any
 * malformed frame: shorter than the header, another version, an unknown type,
 * non-zero flags or status where the type carries none, a length field that
 * does not match the datagram, a payload over the receiver's bound, a frame
 * type that must not come from that side or at that point (anything before
 * HELLO; a second HELLO), and a RESPONSE or REPLY to an id that was never
 * sent. A REPLY that comes after the server gave up waiting for it (timeout)
 * is dropped, not an error. Payloads are bounded by
 * DEVHOST_PORT_MAX_PAYLOAD on both sides (a port or client may set a lower
 * bound); the text of a WELCOME or ERROR is at most DEVHOST_PORT_MAX_TEXT
 * bytes and always accepted.
 *
 * The codec below is pure: no I/O, no allocation, no global state.
 */
#ifndef DEVHOST_PORT_WIRE_H
#define DEVHOST_PORT_WIRE_H

#include <devhost/plugin.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Visibility of the port library's functions: exported from
 * libdevhost-port.so, hidden when compiled into something else. */
#if defined(DEVHOST_PORT_BUILDING_SHARED) && (defined(__GNUC__) || defined(__clang__))
#define DEVHOST_PORT_API __attribute__((visibility("default")))
#else
#define DEVHOST_PORT_API
#endif

#define DEVHOST_PORT_WIRE_VERSION 1
#define DEVHOST_PORT_HEADER_SIZE 20
/* The largest payload either side accepts. */
#define DEVHOST_PORT_MAX_PAYLOAD 65536u
/* The longest text a WELCOME or ERROR carries; receivers accept it whatever
 * their own payload bound. */
#define DEVHOST_PORT_MAX_TEXT 256u
/* The largest context a HELLO carries (the size fits in 16 bits). */
#define DEVHOST_PORT_MAX_CONTEXT 65535u

/* Frame types. Values are only appended. */
enum {
    DEVHOST_PORT_FRAME_HELLO = 1,
    DEVHOST_PORT_FRAME_WELCOME = 2,
    DEVHOST_PORT_FRAME_REQUEST = 3,
    DEVHOST_PORT_FRAME_RESPONSE = 4,
    DEVHOST_PORT_FRAME_MESSAGE = 5,
    DEVHOST_PORT_FRAME_REPLY = 6,
    DEVHOST_PORT_FRAME_ERROR = 7
};
#define DEVHOST_PORT_FRAME_LAST DEVHOST_PORT_FRAME_ERROR

/* HELLO flags. */
enum {
    /* The client's handle is synchronous: the server sends it at most one
     * MESSAGE at a time, the next only after the REPLY to the previous one. */
    DEVHOST_PORT_HELLO_SYNC = 1u << 0
};

/* A decoded frame. `payload` points into the buffer given to decode. */
typedef struct devhost_port_frame {
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    int32_t status;
    uint64_t id;
    uint32_t length;
    const uint8_t *payload;
} devhost_port_frame;

/* "HELLO", "WELCOME", ...; "UNKNOWN" for other values. */
DEVHOST_PORT_API const char *devhost_port_frame_type_name(uint32_t type);

/* Writes one frame into buf[0..capacity). Returns the frame's size, or 0 when
 * it does not fit or `length` exceeds DEVHOST_PORT_MAX_PAYLOAD. `payload` may
 * be NULL when length is 0. */
DEVHOST_PORT_API size_t devhost_port_frame_encode(uint8_t *buf, size_t capacity, uint32_t type,
                                                  uint32_t flags, int32_t status, uint64_t id,
                                                  const void *payload, uint32_t length);

/* Decodes the datagram buf[0..size) into *frame. A pure function: it checks
 * the frame on its own (layout, version, type, flags, status, length, the
 * payload bound `max_payload`, itself capped at DEVHOST_PORT_MAX_PAYLOAD, or
 * DEVHOST_PORT_MAX_TEXT for WELCOME and ERROR if that is larger) and
 * knows nothing of the conversation (which ids are pending, who may send
 * what). Returns DEVHOST_OK, or DEVHOST_E_PROTOCOL with one line in
 * why[0..why_size) naming what is wrong ("short frame: 7 bytes, the header
 * is 20"). `why` may be NULL. */
DEVHOST_PORT_API devhost_status devhost_port_frame_decode(const uint8_t *buf, size_t size,
                                                          uint32_t max_payload,
                                                          devhost_port_frame *frame,
                                                          char *why, size_t why_size);

/* since v1.1: the payload of a failing WELCOME, RESPONSE or ERROR. Writes
 * `text` (text_len bytes, cut to what fits) and, when os_errno is not 0, a NUL
 * byte and "errno=N" into buf[0..capacity), keeping the whole payload within
 * DEVHOST_PORT_MAX_TEXT bytes. Returns the payload's length. */
DEVHOST_PORT_API size_t devhost_port_failure_encode(char *buf, size_t capacity, const char *text,
                                                    size_t text_len, int32_t os_errno);

/* since v1.1: splits such a payload: *text_len gets the length of the text
 * (before the NUL, if any); returns the errno after it, or 0 when there is
 * none or it is malformed. */
DEVHOST_PORT_API int32_t devhost_port_failure_decode(const uint8_t *payload, size_t len, size_t *text_len);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DEVHOST_PORT_WIRE_H */
