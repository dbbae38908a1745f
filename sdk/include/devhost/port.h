/*
 * devhost filter-port server API, version 1 (libdevhost-port).
 *
 * The server side of a filter communication port: the role a minifilter
 * plays. A port is a Unix SOCK_SEQPACKET socket at a path (a config's
 * `\Name` is <port-dir>/Name, /run/devhost/ports/Name by default); clients
 * (the filterport plugin, or anything speaking devhost/port_wire.h) connect
 * to it with a context, send requests that the server answers, and answer
 * messages that the server sends them.
 *
 * C99, usable from C and C++. The rules of plugin.h hold here too: every
 * struct starts with `uint32_t struct_size`, fields are only appended, and
 * errors are 0 or a negative devhost_status with a devhost_error record.
 *
 * Threading: each port runs one service thread, started by
 * devhost_port_create and joined by devhost_port_close. It accepts
 * connections, reads every frame and runs every callback, one at a time, so
 * callbacks of one port never run concurrently. Callbacks must return
 * promptly (every client of the port waits meanwhile) and must not call
 * devhost_port_send or devhost_port_close (both refuse on the service thread
 * with DEVHOST_E_STATE). devhost_port_send, devhost_port_disconnect and
 * devhost_port_client_count may be called from any other thread at any time
 * before devhost_port_close.
 *
 * Clients are named by a uint64_t id (never 0, never reused by a port), so a
 * thread holding an id of a client that has gone just gets
 * DEVHOST_E_NOT_FOUND.
 *
 * Security: the port's directory, and every directory above it, must be
 * owned by root or by the server's effective uid and not writable by group
 * or others, unless sticky and owned by root (like /tmp); anything else is
 * refused with DEVHOST_E_ACCESS. The socket file gets `mode` exactly (it is
 * never wider, even while being created, and setting it never follows a
 * link). The peer's credentials (SO_PEERCRED) are checked against the
 * allowed uids and gids as soon as the connection is accepted, before it
 * may send anything: a refused client receives DEVHOST_E_ACCESS with a
 * message naming its uid and gid at once, and the connection is closed when
 * its HELLO arrives (so that a client that sends before it reads still gets
 * the answer), at its HELLO deadline, or at once when its uid already holds
 * max_pending_per_uid connections that have not said HELLO. A
 * connection that has not said HELLO within hello_timeout_ms is closed, and
 * each uid may hold at most max_pending_per_uid such connections, so that
 * idle connections cannot lock other clients out. A client refused for
 * capacity receives DEVHOST_E_BUSY ("port ... is full: ...").
 */
#ifndef DEVHOST_PORT_H
#define DEVHOST_PORT_H

#include <devhost/plugin.h>
#include <devhost/port_wire.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The default directory of named ports. */
#define DEVHOST_PORT_DEFAULT_DIR "/run/devhost/ports"

typedef struct devhost_port devhost_port;

/* The connecting process, from SO_PEERCRED at connect time. */
typedef struct devhost_port_peer {
    uint32_t struct_size;
    int32_t pid;
    uint32_t uid;
    uint32_t gid;
    uint32_t flags;                 /* DEVHOST_PORT_HELLO_SYNC if the client's
                                       handle is synchronous */
    uint32_t reserved;
    /* since v1.2: append here */
} devhost_port_peer;

/* The server's callbacks. All run on the port's service thread; `user` is
 * devhost_port_callbacks.user. Every pointer passed in is valid for the call
 * only. Any callback may be NULL. */
typedef struct devhost_port_callbacks {
    uint32_t struct_size;
    uint32_t reserved;
    void *user;

    /* A client passed the credential and connection-count checks and sent its
     * context (context_size bytes, 0..65535; NULL when 0). Return DEVHOST_OK
     * to accept, or a negative status (e.g. DEVHOST_E_ACCESS) to refuse: the
     * client's connect fails with that status and err->message as its
     * message. NULL callback: every client is accepted. */
    devhost_status (*connect)(void *user, uint64_t client, const devhost_port_peer *peer,
                              const void *context, uint32_t context_size, devhost_error *err);

    /* An accepted client went away: it disconnected, broke the protocol, was
     * disconnected by devhost_port_disconnect, or the port is closing. Runs
     * once per accepted client, after every devhost_port_send waiting on it
     * has failed with DEVHOST_E_REMOVED. */
    void (*disconnect)(void *user, uint64_t client);

    /* A client's request (request_len bytes, NULL when 0). Write the reply
     * into reply[0..reply_capacity) and its length into *reply_len; return
     * DEVHOST_OK, or a negative status (and err->message) that the client's
     * request fails with. NULL callback: requests fail with
     * DEVHOST_E_UNSUPPORTED. */
    devhost_status (*message)(void *user, uint64_t client, const void *request, size_t request_len,
                              void *reply, size_t reply_capacity, size_t *reply_len,
                              devhost_error *err);

    /* One log line from the library (refused clients, protocol errors),
     * `level` a DEVHOST_LOG_*. NULL: the library is silent. The library never
     * prints. May also run on the thread calling create or send. */
    void (*log)(void *user, int32_t level, const char *line);
    /* since v1.2: append here */
} devhost_port_callbacks;

typedef struct devhost_port_config {
    uint32_t struct_size;
    uint32_t max_connections;       /* >= 1: the next client gets
                                       DEVHOST_E_BUSY */
    const char *path;               /* the socket to create; its directory
                                       must exist. A stale socket there (no
                                       server answers) is replaced; a live one
                                       is DEVHOST_E_BUSY; anything not a
                                       socket is DEVHOST_E_INVALID. */
    uint32_t mode;                  /* socket file permissions, e.g. 0600;
                                       0 means 0600 */
    uint32_t max_message_size;      /* payload bound for both directions;
                                       0 or above DEVHOST_PORT_MAX_PAYLOAD
                                       means DEVHOST_PORT_MAX_PAYLOAD */
    /* Peers allowed to connect: a peer whose uid is in allowed_uids or whose
     * gid is in allowed_gids. Both counts 0: any peer that can open the
     * socket file. The arrays are copied by create. */
    const uint32_t *allowed_uids;
    uint32_t allowed_uid_count;
    uint32_t allowed_gid_count;
    const uint32_t *allowed_gids;
    const devhost_port_callbacks *callbacks; /* copied by create; may be NULL */
    /* since v1.1 (read only when struct_size covers them): */
    uint32_t hello_timeout_ms;      /* a connection that has not said HELLO
                                       within this time is closed; 0 means
                                       DEVHOST_PORT_DEFAULT_HELLO_TIMEOUT_MS */
    uint32_t max_pending_per_uid;   /* connections of one uid that have not
                                       said HELLO yet; the next one is refused
                                       with DEVHOST_E_BUSY. 0 means
                                       DEVHOST_PORT_DEFAULT_MAX_PENDING */
    /* since v1.2: append here */
} devhost_port_config;

/* Defaults of the v1.1 config fields, and the bound on connections of all
 * uids together that have not said HELLO yet. */
#define DEVHOST_PORT_DEFAULT_HELLO_TIMEOUT_MS 1000u
#define DEVHOST_PORT_DEFAULT_MAX_PENDING 8u
#define DEVHOST_PORT_MAX_PENDING_TOTAL 256u

/* Creates the port: binds the socket at config->path with the mode, stores
 * the port in *port, then starts the service thread (so callbacks may read
 * *port's variable). Returns: OK;
 * E_INVALID (bad config, path too long, path exists and is not a socket);
 * E_BUSY (another server serves the path); E_NOT_FOUND (no such directory);
 * E_ACCESS (the directory, or one above it, is not trusted: see Security
 * above; or bind was refused); E_IO; E_NO_MEMORY. On failure *port is NULL and nothing is left
 * behind. The caller owns the port and must pass it to devhost_port_close. */
DEVHOST_PORT_API devhost_status devhost_port_create(const devhost_port_config *config,
                                                    devhost_port **port, devhost_error *err);

/* Sends a message to a client and waits up to timeout_ms (-1: no limit) for
 * its reply, which is written into reply[0..reply_capacity) with its full
 * length in *reply_len. For a client with a synchronous handle, waits first
 * (within the same timeout) until no other message to it is unanswered.
 * Any thread but the service thread. Returns: OK; E_NOT_FOUND (no such
 * client); E_INVALID (message over max_message_size; or the reply did not fit
 * reply_capacity: the first reply_capacity bytes are kept and *reply_len is
 * the full size); E_TIMEOUT (a reply arriving later is dropped); E_REMOVED
 * (the client went away, or the port closed, before replying); E_STATE
 * (called on the service thread); E_IO. `reply` may be NULL when
 * reply_capacity is 0. */
DEVHOST_PORT_API devhost_status devhost_port_send(devhost_port *port, uint64_t client,
                                                  const void *message, size_t message_len,
                                                  void *reply, size_t reply_capacity,
                                                  size_t *reply_len, int32_t timeout_ms,
                                                  devhost_error *err);

/* Disconnects one client (its disconnect callback runs on the service
 * thread). Any thread. Returns OK or E_NOT_FOUND. */
DEVHOST_PORT_API devhost_status devhost_port_disconnect(devhost_port *port, uint64_t client);

/* Fills ids[0..capacity) with the ids of connected clients, oldest first, and
 * returns how many are connected (which may exceed capacity). Any thread. */
DEVHOST_PORT_API uint32_t devhost_port_clients(devhost_port *port, uint64_t *ids, uint32_t capacity);

/* Closes the port: stops accepting, disconnects every client (their
 * disconnect callbacks run, waiting senders get E_REMOVED), joins the
 * service thread, removes the socket file and frees the port. NULL is
 * accepted. Not from the service thread (a callback). */
DEVHOST_PORT_API void devhost_port_close(devhost_port *port);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DEVHOST_PORT_H */
