/*
 * The loop plugin's private header: per-device state, and the two backends
 * behind the hooks in plugin.c:
 *
 *   backend_buffer.c  a device's byte buffer, its messages, and the transfer
 *                     ops on them (what a device *does*: a real plugin's OS
 *                     code sits here)
 *   backend_names.c   process-wide state: the table of open names (how many
 *                     devices have each NAME open, whether one holds it
 *                     exclusively, which device holds its lock) and the
 *                     counters the `stats` control reports
 *
 * Devices of one plugin may be driven from several threads at once, so the
 * process-wide state sits behind one mutex, taken inside each function of
 * backend_names.c. Per-device state needs no lock: the host never calls two
 * hooks of one device at the same time.
 *
 * Deadlines are absolute CLOCK_MONOTONIC ns, DEVHOST_DEADLINE_NONE for none
 * (devhost/plugin_util.h).
 */
#ifndef DEVHOST_LOOP_PRIVATE_H
#define DEVHOST_LOOP_PRIVATE_H

#include <devhost/plugin.h>
#include <devhost/plugin_util.h>

#include <stddef.h>
#include <stdint.h>

#define LOOP_PREFIX "loop:"

enum { LOOP_CONTROL_STATS = 1, LOOP_CONTROL_CLEAR = 2, LOOP_CONTROL_FILL = 3 };

/* One NAME that at least one device has open (backend_names.c). */
typedef struct loop_name loop_name;

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
 * backend_buffer.c: the transfer ops, one function each. Each: x is the
 * host's, buffers included; it fills out_done, in_len, message_id; a failure
 * still reports how far it got. `deadline` is the transfer's (the earlier of
 * its timeout_ms and the host's deadline for the hook): a wait ends there. Statuses as listed by loop_transfer in
 * plugin.c.
 * ------------------------------------------------------------------------ */

devhost_status loop_op_write(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err);
devhost_status loop_op_read(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err);
devhost_status loop_op_read_exact(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err);
devhost_status loop_op_read_until(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err);
devhost_status loop_op_request(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err);
devhost_status loop_op_get_message(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err);
devhost_status loop_op_reply(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err);
devhost_status loop_op_control(devhost_device *dev, devhost_transfer *x, uint64_t deadline, devhost_error *err);

/* Sleeps until `deadline` or until the device's cancel handle fires,
 * whichever comes first: DEVHOST_E_TIMEOUT or DEVHOST_E_CANCELLED. A loop
 * device's buffer only changes through its own hooks, so there is nothing
 * else to wait for. */
devhost_status loop_wait(const devhost_device *dev, uint64_t deadline);

/* ------------------------------------------------------------------------
 * backend_names.c: process-wide names, locks and counters
 * ------------------------------------------------------------------------ */

/* Snapshot of the process-wide counters. */
typedef struct loop_counters {
    unsigned long open;         /* devices open now */
    unsigned long connected;    /* devices connected now */
    unsigned long locked;       /* names whose lock is held now */
    unsigned long opened_total; /* successful opens since the plugin loaded */
} loop_counters;

/* Registers one more open of `name` (the part after "loop:") and counts the
 * device as open. `device_name` is the opener's config name, for messages.
 * Returns: OK with *entry set; E_BUSY when the name is held exclusively, or
 * when `exclusive` is asked and the name is already open (never waits);
 * E_NO_MEMORY. */
devhost_status loop_name_acquire(const char *name, const char *device_name, int exclusive,
                                 loop_name **entry, devhost_error *err);

/* Drops one open of `entry` (acquired earlier); the entry is freed with its
 * last open. The caller must have unlocked first. */
void loop_name_release(loop_name *entry);

/* Takes the name's lock for `owner` (an opaque pointer identifying the
 * device, `owner_name` its config name, which must stay valid while it holds
 * the lock). Waits while another owner holds it, until `deadline` or until
 * cancel_fd is readable. Returns: OK; E_TIMEOUT; E_CANCELLED. Messages name
 * the holder. */
devhost_status loop_name_lock(loop_name *entry, const void *owner, const char *owner_name,
                              int cancel_fd, uint64_t deadline, devhost_error *err);

/* Releases the name's lock held by `owner` and wakes the waiters. */
void loop_name_unlock(loop_name *entry, const void *owner);

/* Counts a device connecting (+1) or disconnecting (-1). */
void loop_count_connected(int delta);

/* Copies the counters into *out. */
void loop_counters_get(loop_counters *out);

#endif /* DEVHOST_LOOP_PRIVATE_H */
