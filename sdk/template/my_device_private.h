/*
 * my_plugin's private header: the per-device state and the backend's
 * functions, shared by plugin.c (the hooks) and backend_counter.c (what a
 * device does; where your OS code goes).
 */
#ifndef MY_DEVICE_PRIVATE_H
#define MY_DEVICE_PRIVATE_H

#include <devhost/plugin.h>
#include <devhost/plugin_util.h>

#include <stddef.h>
#include <stdint.h>

/* Per-device state: allocated in open, freed in close. */
struct devhost_device {
    const devhost_host_device *host_device; /* for log calls */
    int cancel_fd;                          /* the host's; poll it, never close it */
    unsigned long long written;             /* bytes counted, from `start` */
};

/* The backend (backend_counter.c). Takes data[0..len) before `deadline`
 * (absolute CLOCK_MONOTONIC ns, DEVHOST_DEADLINE_NONE: none) and sets *done
 * to the bytes taken. Returns DEVHOST_OK, or DEVHOST_E_CANCELLED with err
 * filled when the device's cancel handle has fired. */
devhost_status my_device_write(devhost_device *dev, const uint8_t *data, size_t len, uint64_t deadline,
                               size_t *done, devhost_error *err);

#endif /* MY_DEVICE_PRIVATE_H */
