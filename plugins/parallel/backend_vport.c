/*
 * The vport backend: a virtual parallel port served by devhost-vdev's
 * `parallel-port` kind over a Unix SOCK_SEQPACKET socket. The protocol and
 * where the socket lives are described in <devhost/vport_wire.h>. The server
 * arbitrates the claim between all its clients (FIFO), so a claim here is a
 * request and a wait for its grant; giving up sends CANCEL.
 */
#define _GNU_SOURCE

#include "parallel_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* What the stream still owes us: replies to requests a call stopped
 * waiting for (its deadline passed, or cancel fired). The server answers in
 * order, so the next call reads them first (drain_owed) before it sends its
 * own request; until then the stream is out of step. */
enum {
    OWED_NOTHING = 0,
    OWED_REPLY,  /* one reply, to whatever was asked */
    OWED_CANCEL  /* the reply to a CANCEL, maybe after a CLAIM grant it crossed */
};

typedef struct vport_state {
    int sock;
    int owed;    /* OWED_* */
    int broken;  /* the peer broke the protocol: nothing more is sent */
} vport_state;

typedef struct vport_reply {
    uint8_t cmd;
    uint8_t status;
    uint32_t value;
    size_t len;
    uint8_t payload[VPORT_MAX_PAYLOAD];
} vport_reply;

static vport_state *state_of(par_device *d) { return (vport_state *)d->backend_state; }

static devhost_status removed(par_device *d, int os_errno, devhost_error *err)
{
    d->removed = 1;
    return devhost_fail(err, DEVHOST_E_REMOVED, os_errno, "%s: the virtual port went away", d->path);
}

static devhost_status send_request(par_device *d, uint8_t cmd, uint32_t arg, const uint8_t *payload, size_t len,
                                   devhost_error *err)
{
    uint8_t msg[VPORT_HEADER_SIZE + VPORT_MAX_PAYLOAD];
    vport_state *s = state_of(d);
    memset(msg, 0, VPORT_HEADER_SIZE);
    msg[0] = cmd;
    vport_put_u32(msg + 4, arg);
    if (len)
        memcpy(msg + VPORT_HEADER_SIZE, payload, len);
    if (s->broken)
        return devhost_fail(err, DEVHOST_E_IO, 0, "%s: the virtual port broke the protocol earlier", d->path);
    if (send(s->sock, msg, VPORT_HEADER_SIZE + len, MSG_NOSIGNAL) < 0) {
        if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)
            return removed(d, errno, err);
        return devhost_fail(err, DEVHOST_E_IO, errno, "%s: send to the virtual port: %s", d->path, strerror(errno));
    }
    return DEVHOST_OK;
}

/* Receives one reply, waiting until the deadline (E_TIMEOUT) or cancel. */
static devhost_status recv_reply(par_device *d, vport_reply *r, uint64_t deadline, devhost_error *err)
{
    uint8_t msg[VPORT_HEADER_SIZE + VPORT_MAX_PAYLOAD + 1];
    vport_state *s = state_of(d);
    ssize_t n;
    devhost_status st = devhost_util_wait(s->sock, POLLIN, d->cancel_fd, deadline, NULL, err, d->path,
                                          "while waiting for the virtual port");
    if (st == DEVHOST_E_TIMEOUT)
        return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT, "%s: no answer from the virtual port in time", d->path);
    if (st != DEVHOST_OK)
        return st;
    n = recv(s->sock, msg, sizeof msg, MSG_TRUNC);
    if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == ENOTCONN)))
        return removed(d, n == 0 ? ENODEV : errno, err);
    if (n < 0)
        return devhost_fail(err, DEVHOST_E_IO, errno, "%s: recv from the virtual port: %s", d->path, strerror(errno));
    if ((size_t)n < VPORT_HEADER_SIZE || (size_t)n > VPORT_HEADER_SIZE + VPORT_MAX_PAYLOAD)
        return devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: virtual port sent a %zd-byte message (expected %d..%d)",
                            d->path, n, VPORT_HEADER_SIZE, VPORT_HEADER_SIZE + VPORT_MAX_PAYLOAD);
    r->cmd = msg[0];
    r->status = msg[1];
    r->value = vport_get_u32(msg + 4);
    r->len = (size_t)n - VPORT_HEADER_SIZE;
    memcpy(r->payload, msg + VPORT_HEADER_SIZE, r->len);
    if (r->status > VPORT_STATUS_LAST)
        return devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: virtual port replied with unknown status %u", d->path,
                            r->status);
    return DEVHOST_OK;
}

/* Reads the replies an earlier call stopped waiting for (see OWED_*),
 * until `deadline`: OK once the stream is in step again; E_TIMEOUT (the
 * peer has still not answered: "an earlier request"), E_CANCELLED,
 * E_REMOVED, E_IO; E_PROTOCOL for a reply that cannot be owed (the
 * connection is then given up). */
static devhost_status drain_owed(par_device *d, vport_reply *r, uint64_t deadline, devhost_error *err)
{
    vport_state *s = state_of(d);
    while (s->owed != OWED_NOTHING) {
        devhost_status st = recv_reply(d, r, deadline, err);
        if (st == DEVHOST_E_TIMEOUT)
            return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT,
                                "%s: no answer from the virtual port in time (it has not answered an earlier "
                                "request either)",
                                d->path);
        if (st != DEVHOST_OK)
            return st;
        if (s->owed == OWED_REPLY || r->cmd == VPORT_CMD_CANCEL) {
            s->owed = OWED_NOTHING;
        } else if (r->cmd != VPORT_CMD_CLAIM) { /* a grant the CANCEL crossed is skipped */
            s->broken = 1;
            return devhost_fail(err, DEVHOST_E_PROTOCOL, 0,
                                "%s: virtual port answered command %u while a cancelled claim was pending", d->path,
                                r->cmd);
        }
    }
    return DEVHOST_OK;
}

/* Sends a request (after the replies still owed) and receives its reply; a
 * reply to another command is a protocol error. A reply not there by the
 * deadline is owed: the next call reads it first. */
static devhost_status exchange(par_device *d, uint8_t cmd, uint32_t arg, const uint8_t *payload, size_t len,
                               vport_reply *r, uint64_t deadline, devhost_error *err)
{
    devhost_status st = drain_owed(d, r, deadline, err);
    if (st == DEVHOST_OK)
        st = send_request(d, cmd, arg, payload, len, err);
    if (st != DEVHOST_OK)
        return st;
    st = recv_reply(d, r, deadline, err);
    if (st == DEVHOST_E_TIMEOUT || st == DEVHOST_E_CANCELLED)
        state_of(d)->owed = OWED_REPLY;
    if (st != DEVHOST_OK)
        return st;
    if (r->cmd != cmd)
        return devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: virtual port answered command %u to command %u", d->path,
                            r->cmd, cmd);
    return DEVHOST_OK;
}

/* How long past the running hook's deadline a request already sent may
 * still wait for its answer (a serving peer answers over a local socket in
 * well under a millisecond), so that a request sent just before the
 * deadline is not cut off; an answer later than that is owed (the next
 * call reads it first). Well inside what the host allows a hook past its
 * deadline. */
#define VPORT_ANSWER_GRACE_MS 10

/* The running hook's deadline plus the grace (none when it has none). */
static uint64_t hook_deadline_graced(const par_device *d)
{
    uint64_t now;
    if (d->deadline == DEVHOST_DEADLINE_NONE)
        return DEVHOST_DEADLINE_NONE;
    now = devhost_util_now_ns();
    return (d->deadline > now ? d->deadline : now) + VPORT_ANSWER_GRACE_MS * 1000000ull;
}

/* Requests other than CLAIM are answered at once; this bounds the wait for
 * a server that hangs: `deadline`, 5 s at most, and the running hook's
 * deadline (plus the grace): a hook without a timeout argument has only
 * that one. */
static uint64_t answer_deadline(const par_device *d, uint64_t deadline)
{
    return devhost_util_deadline_min(devhost_util_deadline_min(deadline, devhost_util_deadline_ms(5000)),
                                     hook_deadline_graced(d));
}

/* Maps a non-OK server status to a devhost status with a message. */
static devhost_status server_status(par_device *d, const vport_reply *r, const char *what, devhost_error *err)
{
    switch (r->status) {
    case VPORT_OK: return DEVHOST_OK;
    case VPORT_E_BUSY:
        return devhost_fail(err, DEVHOST_E_BUSY, EBUSY, "%s: %s: the port is held exclusively by another client", d->path,
                            what);
    case VPORT_E_STATE:
        return devhost_fail(err, DEVHOST_E_STATE, 0, "%s: %s: not allowed without the claim", d->path, what);
    case VPORT_E_REFUSED:
        return devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: %s: refused by the peripheral", d->path, what);
    case VPORT_E_INVALID:
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s: %s: the virtual port rejected the request", d->path, what);
    case VPORT_E_UNSUPPORTED:
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "%s: %s: not supported by the virtual port", d->path, what);
    default:
        return devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: %s: unexpected status %u", d->path, what, r->status);
    }
}

/* The socket for vport:/ABS/PATH.sock: that path as it is; for vport:NAME:
 * DIR/NAME.sock in the first candidate directory where it exists (else the
 * first candidate it fits in, for the error). */
static devhost_status socket_path(par_device *d, struct sockaddr_un *addr, devhost_error *err)
{
    const char *name = d->path + strlen(VPORT_PATH_PREFIX);
    char dir[sizeof addr->sun_path];
    size_t i, n = strlen(name);
    int index;
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (name[0] == '/') {
        /* vport:/abs/path.sock: the socket a peer of `devhost run` announced
         * in the run's private directory, used as it is. */
        if (n >= sizeof addr->sun_path)
            return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s: the vport socket path is too long (at most %d bytes)",
                                d->path, (int)(sizeof addr->sun_path - 1));
        memcpy(addr->sun_path, name, n + 1);
        return DEVHOST_OK;
    }
    if (n == 0 || n > VPORT_NAME_MAX)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s: a vport name has 1 to %d characters", d->path,
                            VPORT_NAME_MAX);
    for (i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-') || (i == 0 && c == '.'))
            return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s: a vport name uses only A-Z a-z 0-9 . _ -", d->path);
    }
    for (index = 0; vport_dir_candidate(index, dir, sizeof dir); index++) {
        char path[sizeof addr->sun_path];
        int written = snprintf(path, sizeof path, "%s/%s.sock", dir, name);
        if (written < 0 || (size_t)written >= sizeof path)
            continue;
        if (access(path, F_OK) == 0) {
            memcpy(addr->sun_path, path, (size_t)written + 1);
            break;
        }
        if (!addr->sun_path[0])
            memcpy(addr->sun_path, path, (size_t)written + 1);
    }
    if (!addr->sun_path[0])
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s: the vport socket path is too long", d->path);
    return DEVHOST_OK;
}

/* A uid this process trusts to serve it: root or its own effective uid. */
static int trusted_uid(uid_t uid) { return uid == 0 || uid == geteuid(); }

/* Refuses a socket that someone else could have put there: the socket must be
 * owned by root or us, in a directory owned by root or us that nobody else can
 * write (a sticky directory owned by root, like /tmp, only when the socket is
 * ours or root's). Checked through the directory's descriptor, without
 * following a link at the socket's name. Returns OK, E_NOT_FOUND (nothing
 * there) or E_ACCESS; messages start with `who`. */
devhost_status par_vport_check_socket(const char *who, const char *path, devhost_error *err)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const char *slash = strrchr(path, '/');
    struct stat ds, ss;
    int dfd;
    if (!slash || (size_t)(slash - path) >= sizeof dir)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s: %s is not an absolute socket path", who, path);
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    if (!dir[0])
        strcpy(dir, "/");
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return devhost_fail(err, errno == EACCES ? DEVHOST_E_ACCESS : DEVHOST_E_NOT_FOUND, errno,
                            "%s: no virtual port is served at %s (%s)", who, path, strerror(errno));
    if (fstat(dfd, &ds) != 0 || fstatat(dfd, slash + 1, &ss, AT_SYMLINK_NOFOLLOW) != 0) {
        int e = errno;
        close(dfd);
        return devhost_fail(err, DEVHOST_E_NOT_FOUND, e, "%s: no virtual port is served at %s (%s)", who, path,
                            strerror(e));
    }
    close(dfd);
    if (!trusted_uid(ds.st_uid))
        return devhost_fail(err, DEVHOST_E_ACCESS, 0,
                            "%s: not connecting to %s: its directory is owned by uid %lu (not root or uid %lu)",
                            who, path, (unsigned long)ds.st_uid, (unsigned long)geteuid());
    if ((ds.st_mode & (S_IWGRP | S_IWOTH)) && !((ds.st_mode & S_ISVTX) && ds.st_uid == 0))
        return devhost_fail(err, DEVHOST_E_ACCESS, 0,
                            "%s: not connecting to %s: its directory is writable by group or others (mode %04o)",
                            who, path, (unsigned)(ds.st_mode & 07777));
    if (!S_ISSOCK(ss.st_mode))
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s: %s is not a socket", who, path);
    if (!trusted_uid(ss.st_uid))
        return devhost_fail(err, DEVHOST_E_ACCESS, 0,
                            "%s: not connecting to %s: it is owned by uid %lu (not root or uid %lu)", who, path,
                            (unsigned long)ss.st_uid, (unsigned long)geteuid());
    return DEVHOST_OK;
}

static devhost_status vport_open(par_device *d, const devhost_open_params *params, devhost_error *err)
{
    struct sockaddr_un addr;
    vport_reply *r;
    vport_state *s;
    devhost_status st;
    uint64_t deadline;
    int type = SOCK_SEQPACKET | ((params->flags & DEVHOST_OPEN_INHERIT) ? 0 : SOCK_CLOEXEC);
    if ((st = socket_path(d, &addr, err)) != DEVHOST_OK)
        return st;
    if ((st = par_vport_check_socket(d->path, addr.sun_path, err)) != DEVHOST_OK)
        return st;
    s = calloc(1, sizeof *s);
    if (!s)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "%s: out of memory", d->path);
    s->sock = -1;
    d->backend_state = s;
    s->sock = socket(AF_UNIX, type, 0);
    if (s->sock < 0)
        return devhost_fail(err, DEVHOST_E_IO, errno, "%s: socket: %s", d->path, strerror(errno));
    if (connect(s->sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
        int e = errno;
        if (e == ENOENT || e == ECONNREFUSED)
            return devhost_fail(err, DEVHOST_E_NOT_FOUND, e, "%s: no virtual port is served at %s (%s)", d->path,
                                addr.sun_path, strerror(e));
        if (e == EACCES || e == EPERM)
            return devhost_fail(err, DEVHOST_E_ACCESS, e, "%s: %s: %s", d->path, addr.sun_path, strerror(e));
        return devhost_fail(err, DEVHOST_E_IO, e, "%s: connect %s: %s", d->path, addr.sun_path, strerror(e));
    }
    r = malloc(sizeof *r);
    if (!r)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "%s: out of memory", d->path);
    deadline = answer_deadline(d, devhost_util_deadline_ms(params->timeout_ms));
    st = exchange(d, VPORT_CMD_HELLO, d->exclusive ? VPORT_HELLO_EXCLUSIVE : 0, (const uint8_t *)params->device_name,
                  params->device_name ? strnlen(params->device_name, 64) : 0, r, deadline, err);
    if (st == DEVHOST_OK && r->status == VPORT_E_BUSY)
        st = devhost_fail(err, DEVHOST_E_BUSY, EBUSY,
                          d->exclusive ? "%s: exclusive open refused: the port is open by another client"
                                       : "%s: the port is held exclusively by another client",
                          d->path);
    else if (st == DEVHOST_OK)
        st = server_status(d, r, "open", err);
    if (st == DEVHOST_OK && r->value != VPORT_PROTOCOL_VERSION)
        st = devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: virtual port speaks protocol %u, expected %d", d->path,
                          r->value, VPORT_PROTOCOL_VERSION);
    free(r);
    /* The server keeps our place, exclusivity and claims on this
     * connection: the host gets a copy, so that they last until it lets go
     * if this process dies. */
    if (st == DEVHOST_OK)
        par_share_fd(d, s->sock);
    return st;
}

static void vport_close(par_device *d)
{
    vport_state *s = state_of(d);
    if (!s)
        return;
    if (s->sock >= 0) {
        par_unshare_fd(d);  /* the host's copy first: ours is the last close */
        close(s->sock);     /* the server drops our claim and place in line */
    }
    free(s);
    d->backend_state = NULL;
}

static devhost_status vport_claim(par_device *d, uint64_t deadline, devhost_error *err)
{
    vport_reply *r = malloc(sizeof *r);
    devhost_status st, cancel_st;
    devhost_error cancel_err;
    if (!r)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "%s: out of memory", d->path);
    st = drain_owed(d, r, deadline, err);
    if (st == DEVHOST_OK)
        st = send_request(d, VPORT_CMD_CLAIM, 0, NULL, 0, err);
    if (st == DEVHOST_OK)
        st = recv_reply(d, r, deadline, err);
    else if (st == DEVHOST_E_TIMEOUT || st == DEVHOST_E_CANCELLED) {
        free(r); /* the CLAIM was never sent: nothing to leave */
        return st;
    }
    if (st == DEVHOST_OK) {
        if (r->cmd != VPORT_CMD_CLAIM)
            st = devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: virtual port answered command %u to a claim", d->path,
                              r->cmd);
        else
            st = server_status(d, r, "claim", err);
        free(r);
        return st;
    }
    if (st != DEVHOST_E_TIMEOUT && st != DEVHOST_E_CANCELLED) {
        free(r);
        return st;
    }
    if (st == DEVHOST_E_TIMEOUT)
        devhost_error_set(err, ETIMEDOUT, "%s: the port is still claimed by another client (timed out waiting)",
                          d->path);
    /* Leave the line. A grant may cross our CANCEL; the server then takes
     * it back, and we skip the stale CLAIM reply. The CANCEL's answer is
     * waited for within the hook's deadline (and its grace); if it has not
     * come by then, the next call reads it first. */
    devhost_util_error_init(&cancel_err);
    cancel_st = send_request(d, VPORT_CMD_CANCEL, 0, NULL, 0, &cancel_err);
    if (cancel_st == DEVHOST_OK) {
        state_of(d)->owed = OWED_CANCEL;
        cancel_st = drain_owed(d, r, answer_deadline(d, DEVHOST_DEADLINE_NONE), &cancel_err);
    }
    if (cancel_st != DEVHOST_OK && cancel_st != DEVHOST_E_REMOVED)
        PAR_LOG(d, DEVHOST_LOG_WARN, "%s: leaving the claim queue is not confirmed yet: %s", d->path,
                cancel_err.message);
    free(r);
    return st;
}

static devhost_status simple(par_device *d, uint8_t cmd, uint32_t arg, const char *what, vport_reply *r,
                             devhost_error *err)
{
    devhost_status st = exchange(d, cmd, arg, NULL, 0, r, answer_deadline(d, DEVHOST_DEADLINE_NONE), err);
    if (st != DEVHOST_OK)
        return st;
    return server_status(d, r, what, err);
}

static devhost_status vport_release(par_device *d, devhost_error *err)
{
    vport_reply r;
    devhost_status st = simple(d, VPORT_CMD_RELEASE, 0, "release", &r, err);
    if (st == DEVHOST_OK && r.len)
        return devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: release reply carries %zu unexpected bytes", d->path, r.len);
    return st;
}

static devhost_status vport_negotiate(par_device *d, int mode, devhost_error *err)
{
    vport_reply r;
    devhost_status st = exchange(d, VPORT_CMD_NEGOTIATE, (uint32_t)mode, NULL, 0, &r,
                                 answer_deadline(d, DEVHOST_DEADLINE_NONE), err);
    if (st != DEVHOST_OK)
        return st;
    if (r.status == VPORT_E_REFUSED)
        return devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: the peripheral refused IEEE 1284 mode '%s'", d->path,
                            par_mode_name(mode));
    return server_status(d, &r, "negotiate", err);
}

static devhost_status vport_query(par_device *d, par_port_info *info, devhost_error *err)
{
    vport_reply *r = malloc(sizeof *r);
    devhost_status st;
    size_t id_len;
    if (!r)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "%s: out of memory", d->path);
    st = simple(d, VPORT_CMD_INFO, 0, "info", r, err);
    if (st == DEVHOST_OK && (r->len < 4 || r->payload[2] >= VPORT_MODE_COUNT || r->value > 0xff))
        st = devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: malformed info reply (%zu bytes, mode %u, modes 0x%x)",
                          d->path, r->len, r->len >= 3 ? r->payload[2] : 0, r->value);
    if (st == DEVHOST_OK) {
        info->caps = r->value;
        info->have_lines = 1;
        info->status = r->payload[0];
        info->control = r->payload[1];
        info->mode = r->payload[2];
        id_len = r->len - 4;
        if (id_len >= sizeof info->device_id)
            id_len = sizeof info->device_id - 1;
        if (memchr(r->payload + 4, '\0', id_len))
            st = devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: device ID contains a NUL byte", d->path);
        memcpy(info->device_id, r->payload + 4, id_len);
        info->device_id[id_len] = '\0';
    }
    free(r);
    return st;
}

static devhost_status vport_reg_read(par_device *d, int reg, uint8_t *value, devhost_error *err)
{
    vport_reply r;
    devhost_status st = simple(d, VPORT_CMD_REG_READ, (uint32_t)reg, "register read", &r, err);
    if (st != DEVHOST_OK)
        return st;
    if (r.value > 0xff || r.len)
        return devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: register read answered 0x%x with %zu bytes", d->path,
                            r.value, r.len);
    *value = (uint8_t)r.value;
    return DEVHOST_OK;
}

static devhost_status vport_reg_write(par_device *d, int reg, uint8_t value, devhost_error *err)
{
    vport_reply r;
    return simple(d, VPORT_CMD_REG_WRITE, (uint32_t)reg | (uint32_t)value << 8, "register write", &r, err);
}

static devhost_status vport_write(par_device *d, const uint8_t *data, size_t len, size_t *done, uint64_t deadline,
                                  devhost_error *err)
{
    vport_reply *r = malloc(sizeof *r);
    devhost_status st = DEVHOST_OK;
    if (!r)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "%s: out of memory", d->path);
    while (*done < len) {
        size_t chunk = len - *done > VPORT_MAX_PAYLOAD ? VPORT_MAX_PAYLOAD : len - *done;
        st = exchange(d, VPORT_CMD_WRITE, 0, data + *done, chunk, r, answer_deadline(d, DEVHOST_DEADLINE_NONE), err);
        if (st != DEVHOST_OK)
            break;
        if (r->status == VPORT_E_NOT_READY) {
            uint8_t s = (uint8_t)r->value;
            if ((st = par_printer_fault(d, s, *done, err)) != DEVHOST_OK)
                break;
            st = par_sleep(d, 2, deadline, err);
            if (st == DEVHOST_E_TIMEOUT)
                st = devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT,
                                  "%s: peripheral stayed busy (status 0x%02x) at byte %zu", d->path, s, *done);
            if (st != DEVHOST_OK)
                break;
            continue;
        }
        if ((st = server_status(d, r, "write", err)) != DEVHOST_OK)
            break;
        if (r->value == 0 || r->value > chunk || r->len) {
            st = devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: write of %zu bytes answered %u", d->path, chunk,
                              r->value);
            break;
        }
        *done += r->value;
    }
    free(r);
    return st;
}

static devhost_status vport_read(par_device *d, uint8_t *buf, size_t cap, int exact, size_t *got, uint64_t deadline,
                                 devhost_error *err)
{
    vport_reply *r = malloc(sizeof *r);
    devhost_status st = DEVHOST_OK;
    if (!r)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "%s: out of memory", d->path);
    while (*got < cap && !(*got > 0 && !exact)) {
        size_t want = cap - *got > VPORT_MAX_PAYLOAD ? VPORT_MAX_PAYLOAD : cap - *got;
        st = simple(d, VPORT_CMD_READ, (uint32_t)want, "read", r, err);
        if (st != DEVHOST_OK)
            break;
        if (r->len > want) {
            st = devhost_fail(err, DEVHOST_E_PROTOCOL, 0, "%s: asked for %zu bytes, virtual port sent %zu", d->path,
                              want, r->len);
            break;
        }
        memcpy(buf + *got, r->payload, r->len);
        *got += r->len;
        if (r->len == 0) {
            st = par_sleep(d, 2, deadline, err);
            if (st == DEVHOST_E_TIMEOUT)
                st = devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT, "%s: peripheral sent %zu of %zu bytes in time",
                                  d->path, *got, cap);
            if (st != DEVHOST_OK)
                break;
        }
    }
    free(r);
    return st;
}

const par_backend par_vport_backend = {
    .name = "vport",
    .open = vport_open,
    .close = vport_close,
    .claim = vport_claim,
    .release = vport_release,
    .negotiate = vport_negotiate,
    .query = vport_query,
    .reg_read = vport_reg_read,
    .reg_write = vport_reg_write,
    .write = vport_write,
    .read = vport_read,
    .query_needs_claim = 0, /* a vport answers info without the claim */
    .fd_role = "vport",
};
