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
    /* Counting never waits; a device that does waits with devhost_util_wait
     * until `deadline`. Work that starts after its deadline is not begun. */
    if (devhost_util_deadline_passed(deadline))
        return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT, "my-device: the write's deadline had passed");
    dev->written += len;
    *done = len;
    return DEVHOST_OK;
}
