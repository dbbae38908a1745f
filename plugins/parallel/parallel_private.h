/*
 * The parallel plugin's private header: per-device state, the backend
 * interface (one backend per path kind: ppdev for /dev/parportN, vport for
 * vport:NAME), and helpers shared by plugin.c and the backends. Deadlines
 * and waits are devhost/plugin_util.h's.
 */
#ifndef DEVHOST_PARALLEL_PRIVATE_H
#define DEVHOST_PARALLEL_PRIVATE_H

#include <devhost/plugin.h>
#include <devhost/plugin_util.h>

#include <devhost/vport_wire.h>

#include <stddef.h>
#include <stdint.h>

/* Longest IEEE 1284 device ID kept (the ID's own length field allows 64 KiB;
 * real ones are a few hundred bytes). */
#define PAR_DEVICE_ID_MAX 1024

typedef struct par_device par_device;

/* What a backend reports for info(). */
typedef struct par_port_info {
    uint32_t caps;             /* VPORT_CAP_* (= PARPORT_MODE_*) */
    int mode;                  /* VPORT_MODE_* in effect */
    int have_lines;            /* status and control below are valid */
    uint8_t status;
    uint8_t control;
    char device_id[PAR_DEVICE_ID_MAX]; /* "" when the peripheral gave none */
} par_port_info;

/*
 * A backend. Every function gets a device whose backend state it set up in
 * open; `deadline` is an absolute monotonic time in ns (DEVHOST_DEADLINE_NONE:
 * none, see devhost/plugin_util.h). Functions
 * that wait poll the device's cancel_fd. Statuses are devhost_status values
 * with err filled on failure.
 */
typedef struct par_backend {
    const char *name;
    /* Opens d->path; applies d->exclusive. E_BUSY when the exclusive rules
     * refuse. May leave partial state that close() takes. */
    devhost_status (*open)(par_device *d, const devhost_open_params *params, devhost_error *err);
    /* Frees backend state; the core has already released any claim. */
    void (*close)(par_device *d);
    /* Waits for the claim until the deadline (E_TIMEOUT) or cancel. */
    devhost_status (*claim)(par_device *d, uint64_t deadline, devhost_error *err);
    devhost_status (*release)(par_device *d, devhost_error *err);
    /* Negotiates VPORT_MODE_*; the claim is held. E_UNSUPPORTED (refused
     * by the port or peripheral) or E_IO (negotiation failed). */
    devhost_status (*negotiate)(par_device *d, int mode, devhost_error *err);
    /* Fills info; reads lines and device ID only when d->claimed. */
    devhost_status (*query)(par_device *d, par_port_info *info, devhost_error *err);
    /* Register access (VPORT_REG_*); the claim is held. */
    devhost_status (*reg_read)(par_device *d, int reg, uint8_t *value, devhost_error *err);
    devhost_status (*reg_write)(par_device *d, int reg, uint8_t value, devhost_error *err);
    /* The driver's own compatibility-mode write (write(2) on ppdev, WRITE on
     * a vport): sets *done to the bytes taken. */
    devhost_status (*write)(par_device *d, const uint8_t *data, size_t len, size_t *done,
                            uint64_t deadline, devhost_error *err);
    /* Reverse-channel read: 1..cap bytes (all cap when exact). */
    devhost_status (*read)(par_device *d, uint8_t *buf, size_t cap, int exact, size_t *got,
                           uint64_t deadline, devhost_error *err);
    /* query() reads the lines only under a claim (ppdev), so info takes a
     * brief one; a vport answers info without it. */
    int query_needs_claim;
    /* The role under which the backend's descriptor, which holds the
     * port's registration and claims, is shared with the host ("ppdev",
     * "vport"; see par_share_fd). */
    const char *fd_role;
} par_backend;

/* How a write goes out: option `write-method`, whose choices are these in
 * this order ("handshake|driver"; the host passes a choice as its index). */
enum { PAR_WRITE_HANDSHAKE = 0, PAR_WRITE_DRIVER = 1 };

struct par_device {
    const par_backend *backend;
    const devhost_host_device *host_device;
    char path[256];
    int cancel_fd;
    int exclusive;
    int write_method;          /* PAR_WRITE_* */
    int default_mode;          /* option `mode`: VPORT_MODE_* */
    int default_fallback;      /* option `fallback` */
    int32_t claim_timeout_ms;  /* for connect/info/disconnect's brief claims */
    int claimed;               /* lock() holds the claim */
    int connected;
    int mode;                  /* negotiated VPORT_MODE_* */
    int removed;               /* the port went away: every later call fails */
    void *backend_state;       /* the backend's, freed by its close() */
    /* The deadline of the hook now running (absolute CLOCK_MONOTONIC ns,
     * DEVHOST_DEADLINE_NONE: none), set by par_hook_begin on entry to every
     * hook: every wait in the core and the backends ends by it. */
    uint64_t deadline;
    int shared;                /* the host holds a copy of the backend's
                                  descriptor (par_share_fd) */
};

extern const par_backend par_ppdev_backend;
extern const par_backend par_vport_backend;

/* The host services, set at negotiation. */
extern const devhost_host_services *par_services;

#define PAR_LOG(d, level, ...) \
    devhost_logf(par_services, (d) ? (d)->host_device : NULL, (level), __VA_ARGS__)

/* Starts a hook: d->deadline = the earlier of the host's deadline for it
 * (deadline_ns; none from a 1.0 host) and timeout_ms from now (-1: none). */
void par_hook_begin(par_device *d, int64_t timeout_ms);

/* Hands the host a copy of the backend's descriptor `fd` (share_fd, role
 * d->backend->fd_role; devhost/plugin_util.h, section 6), once open has set
 * it up: if the process dies, the host still holds the port's registration
 * and claim and releases them. d->shared says whether the host took it; a
 * failure other than E_UNSUPPORTED (an in-process host) is logged as a
 * warning. par_unshare_fd takes the copy back: call it just before the
 * backend closes that descriptor (close, a reopen), so that the backend's
 * close stays the last one. */
void par_share_fd(par_device *d, int fd);
void par_unshare_fd(par_device *d);

/* The earlier of `deadline` and the running hook's (d->deadline). */
uint64_t par_bounded(const par_device *d, uint64_t deadline);

/* Sleeps up to `ms` (bounded by the deadline) watching cancel_fd, between
 * two looks at a register or a transfer. Returns OK, E_CANCELLED or
 * E_TIMEOUT (deadline already past; err left for the caller to word). */
devhost_status par_sleep(par_device *d, int ms, uint64_t deadline, devhost_error *err);

const char *par_mode_name(int mode);

/* Whether the socket at `path` is one this process may trust to serve it
 * (backend_vport.c): the socket and its directory owned by root or us, the
 * directory writable by nobody else (a sticky root-owned one only for a
 * socket of ours or root's). OK, E_NOT_FOUND, E_INVALID (not a socket) or
 * E_ACCESS, the message starting with `who`. */
devhost_status par_vport_check_socket(const char *who, const char *path, devhost_error *err);

/* The enumerate hook (backend_enumerate.c): /dev/parportN ppdev nodes; with
 * DEVHOST_ENUMERATE_ALL also the virtual ports served now (vport:NAME). */
devhost_status par_enumerate(const devhost_enumerate_params *params, const devhost_found_sink *sink,
                             devhost_error *err);

/* The unload hook (backend_ppdev.c): gives back the claim-interrupt
 * signal's disposition if the plugin installed its handler. */
void par_ppdev_unload(void);

/* What a printer's status register says against taking byte `index`:
 * paper out, or offline (SELECT low), each E_IO with a message naming the
 * status and the byte; OK otherwise (busy is for the caller to wait out). */
devhost_status par_printer_fault(par_device *d, uint8_t status, size_t index, devhost_error *err);

#endif /* DEVHOST_PARALLEL_PRIVATE_H */
