/*
 * my_plugin's backend: what a device does. This one counts the bytes written
 * to it; a real plugin talks to its device here (open it in the open hook,
 * keep the descriptor in struct devhost_device, and wait for it with
 * devhost_util_wait, which watches the cancel handle under the deadline).
 */
#include "my_device_private.h"

devhost_status my_device_write(devhost_device *dev, const uint8_t *data, size_t len, uint64_t deadline,
                               size_t *done, devhost_error *err)
{
    (void)data;
    *done = 0;
    if (devhost_util_cancelled(dev->cancel_fd))
        return devhost_fail(err, DEVHOST_E_CANCELLED, ECANCELED, "my-device: cancelled");
    /* Counting never waits, so `deadline` bounds nothing here. A device that
     * waits passes it to devhost_util_wait (with its descriptor and
     * dev->cancel_fd), which returns DEVHOST_E_TIMEOUT once it has passed;
     * like that wait, what is ready at once is done even then. */
    (void)deadline;
    dev->written += len;
    *done = len;
    return DEVHOST_OK;
}
