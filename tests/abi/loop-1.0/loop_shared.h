/*
 * Process-wide state of the loop plugin: the table of open names (how many
 * devices have each NAME open, whether one holds it exclusively, which device
 * holds its lock) and the counters the `stats` control reports.
 *
 * Devices of one plugin may be driven from several threads at once, so all of
 * this sits behind one mutex, taken inside each function here. Per-device
 * state (the byte buffer, messages, the connection) lives in loop.c and needs
 * no lock: the host never calls two hooks of one device at the same time.
 */
#ifndef DEVHOST_LOOP_SHARED_H
#define DEVHOST_LOOP_SHARED_H

#include <devhost/plugin.h>

#include <stdint.h>

/* One NAME that at least one device has open. */
typedef struct loop_name loop_name;

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
 * the lock). Waits while another owner holds it, until deadline_ns
 * (CLOCK_MONOTONIC; UINT64_MAX: no deadline) or until cancel_fd is readable.
 * Returns: OK; E_TIMEOUT; E_CANCELLED. Messages name the holder. */
devhost_status loop_name_lock(loop_name *entry, const void *owner, const char *owner_name,
                              int cancel_fd, uint64_t deadline_ns, devhost_error *err);

/* Releases the name's lock held by `owner` and wakes the waiters. */
void loop_name_unlock(loop_name *entry, const void *owner);

/* Counts a device connecting (+1) or disconnecting (-1). */
void loop_count_connected(int delta);

/* Copies the counters into *out. */
void loop_counters_get(loop_counters *out);

/* CLOCK_MONOTONIC now, in nanoseconds: the clock the host's monotonic_ns
 * service reads, so deadlines from either compare. */
uint64_t loop_now_ns(void);

/* A malloc'd copy of s (strdup is POSIX, not C99); NULL when out of memory. */
char *loop_copy_string(const char *s);

#endif /* DEVHOST_LOOP_SHARED_H */
