/*
 * devhost/vport_wire.h: the virtual parallel port protocol, spoken between
 * the parallel plugin's vport backend (client, plugins/parallel) and
 * devhost-vdev's `parallel-port` kind (server, vdev/parallel_port.cpp), or
 * any other program serving or driving a `vport:` path.
 *
 * Installed with the SDK's other headers (as devhost/port_wire.h is for the
 * filter-port protocol) so that both sides include one copy of the protocol,
 * and neither reaches into the other's folder. C99, header-only (static
 * inline helpers), compiles unchanged as C++. It is not part of the plugin
 * ABI (no struct crosses between host and plugin here); compatibility is the
 * protocol version HELLO answers (VPORT_PROTOCOL_VERSION): commands, statuses
 * and bits are only appended, never renumbered.
 *
 * Where: a device path `vport:NAME` names the Unix socket DIR/NAME.sock, NAME
 *   being 1..64 of [A-Za-z0-9._-] (not starting with a dot). DIR is
 *   $DEVHOST_VPORT_DIR when that is set and not empty; otherwise the first
 *   of these the server can create and write: /run/devhost/vport,
 *   $XDG_RUNTIME_DIR/devhost/vport (see vport_dir_candidate). Never a
 *   predictable place in a world-writable directory (such as
 *   /tmp/devhost-vport-UID, used before): anyone could create it first and
 *   receive another user's print job. The client tries the same list in the
 *   same order, uses the first DIR/NAME.sock that exists, and connects only
 *   when the socket and its directory are owned by root or by the client's
 *   uid and nobody else can write the directory.
 *   `vport:/ABS/PATH` (an absolute socket path, shorter than sun_path) names
 *   that socket as it is: a peer started by `devhost run` serves in the run's
 *   private directory ($DEVHOST_VDEV_DIR) and announces it so.
 *
 * Transport: SOCK_SEQPACKET, one message per request and per reply, so
 * message boundaries are kept by the kernel and every message is bounded.
 *
 * Every message starts with an 8-byte header, then 0..VPORT_MAX_PAYLOAD bytes:
 *   request: u8 command, u8 0, u8 0, u8 0, u32 argument (little endian)
 *   reply:   u8 command (echoed), u8 status, u8 0, u8 0, u32 value (LE)
 * A reply shorter than the header, echoing another command, with an unknown
 * status, or with a payload the command does not allow is a protocol error
 * (the plugin answers DEVHOST_E_PROTOCOL).
 *
 * Commands (request argument -> reply value, payload):
 *   HELLO      flags (VPORT_HELLO_EXCLUSIVE) -> protocol version; first
 *              request of a connection; BUSY when the exclusive rules refuse.
 *   CLAIM      0 -> 0. Queues the client (FIFO); the reply comes when the
 *              claim is granted, which may be much later.
 *   CANCEL     0 -> 1 if a claim had been granted (and is now released), 0
 *              if the client only left the queue. Sent by a client that gave
 *              up waiting for CLAIM; a CLAIM reply may arrive before it.
 *   RELEASE    0 -> 0; STATE when the client does not hold the claim.
 *   NEGOTIATE  VPORT_MODE_* -> 0; REFUSED when the peripheral refuses it.
 *   INFO       0 -> port modes (PARPORT_MODE_* bits of linux/parport.h);
 *              payload: status register, control register, current
 *              VPORT_MODE_*, 0, then the IEEE 1284 device ID text (may be
 *              empty), at most VPORT_MAX_PAYLOAD - 4 bytes.
 *   REG_READ   VPORT_REG_* -> register value (0..255). Needs the claim.
 *   REG_WRITE  VPORT_REG_* | value << 8 -> 0. Needs the claim. Writing the
 *              control register with STROBE rising while INIT and SELECT
 *              are set hands the data register to the peripheral.
 *   WRITE      payload: 1..VPORT_MAX_PAYLOAD bytes -> bytes accepted;
 *              NOT_READY (value: status register) when the peripheral
 *              cannot take data now. Needs the claim; compatibility mode.
 *   READ       max bytes (1..VPORT_MAX_PAYLOAD) -> 0, payload: 0..max bytes
 *              from the peripheral (reverse modes only). Needs the claim.
 *
 * Removal: the server closes every connection when the port is unplugged;
 * a client then sees end of file and reports DEVHOST_E_REMOVED.
 */
#ifndef DEVHOST_VPORT_WIRE_H
#define DEVHOST_VPORT_WIRE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define VPORT_DEFAULT_DIR "/run/devhost/vport"
#define VPORT_DIR_ENV "DEVHOST_VPORT_DIR"
#define VPORT_PATH_PREFIX "vport:"
#define VPORT_NAME_MAX 64
#define VPORT_HEADER_SIZE 8
#define VPORT_MAX_PAYLOAD 4096
#define VPORT_PROTOCOL_VERSION 1

enum {
    VPORT_CMD_HELLO = 1,
    VPORT_CMD_CLAIM = 2,
    VPORT_CMD_CANCEL = 3,
    VPORT_CMD_RELEASE = 4,
    VPORT_CMD_NEGOTIATE = 5,
    VPORT_CMD_INFO = 6,
    VPORT_CMD_REG_READ = 7,
    VPORT_CMD_REG_WRITE = 8,
    VPORT_CMD_WRITE = 9,
    VPORT_CMD_READ = 10
};

enum {
    VPORT_OK = 0,
    VPORT_E_BUSY = 1,      /* exclusive rules refuse the connection */
    VPORT_E_STATE = 2,     /* needs the claim, or not allowed now */
    VPORT_E_REFUSED = 3,   /* the peripheral refused the mode */
    VPORT_E_NOT_READY = 4, /* the peripheral cannot take data now */
    VPORT_E_INVALID = 5,   /* bad argument or payload */
    VPORT_E_UNSUPPORTED = 6
};
#define VPORT_STATUS_LAST VPORT_E_UNSUPPORTED

enum { VPORT_HELLO_EXCLUSIVE = 1u << 0 };

/* Registers, as on a PC parallel port. */
enum { VPORT_REG_DATA = 0, VPORT_REG_STATUS = 1, VPORT_REG_CONTROL = 2 };

/* IEEE 1284 modes (the plugin's own numbering, shared with the server). */
enum {
    VPORT_MODE_COMPAT = 0,
    VPORT_MODE_NIBBLE = 1,
    VPORT_MODE_BYTE = 2,
    VPORT_MODE_ECP = 3,
    VPORT_MODE_EPP = 4
};
#define VPORT_MODE_COUNT 5

/* Status register bits (as linux/parport.h PARPORT_STATUS_*). BUSY and
 * ERROR are inverted lines: bit 7 set means "not busy", bit 3 clear means
 * "error". ACK is active low. */
#define VPORT_STATUS_ERROR 0x08
#define VPORT_STATUS_SELECT 0x10
#define VPORT_STATUS_PAPEROUT 0x20
#define VPORT_STATUS_ACK 0x40
#define VPORT_STATUS_BUSY 0x80

/* Control register bits (as PARPORT_CONTROL_*). */
#define VPORT_CONTROL_STROBE 0x01
#define VPORT_CONTROL_AUTOFD 0x02
#define VPORT_CONTROL_INIT 0x04
#define VPORT_CONTROL_SELECT 0x08

/* Port capability bits (as PARPORT_MODE_*). */
#define VPORT_CAP_PCSPP 0x01
#define VPORT_CAP_TRISTATE 0x02
#define VPORT_CAP_EPP 0x04
#define VPORT_CAP_ECP 0x08
#define VPORT_CAP_COMPAT 0x10
#define VPORT_CAP_DMA 0x20
#define VPORT_CAP_SAFEININT 0x40

/* The index-th directory where vport sockets may live (see "Where" above):
 * writes it to out and returns 1, or returns 0 when there are no more. */
static inline int vport_dir_candidate(int index, char *out, size_t size)
{
    const char *env = getenv(VPORT_DIR_ENV);
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    const int have_xdg = xdg && *xdg == '/';
    int n;
    if (env && *env) {
        if (index != 0)
            return 0;
        n = snprintf(out, size, "%s", env);
    } else if (index == 0) {
        n = snprintf(out, size, "%s", VPORT_DEFAULT_DIR);
    } else if (have_xdg && index == 1) {
        n = snprintf(out, size, "%s/devhost/vport", xdg);
    } else {
        return 0;
    }
    return n > 0 && (size_t)n < size;
}

static inline void vport_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t vport_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif /* DEVHOST_VPORT_WIRE_H */
