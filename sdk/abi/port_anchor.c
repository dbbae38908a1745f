/* The ABI anchor of the filter-port server library (devhost/port.h) and its
 * frame codec (devhost/port_wire.h): one exported function per struct, and
 * one per library function taking a pointer of that function's own type, so
 * that `abidw` records every layout and signature. Built and compared by
 * scripts/abi-check.sh; never installed. A struct or function added to these
 * headers gets its line here in the same change. */
#include <devhost/port.h>
#include <devhost/port_wire.h>

#define ANCHOR_EXPORT __attribute__((visibility("default")))
#define ANCHOR(type)                                         \
    ANCHOR_EXPORT void devhost_abi_anchor_##type(type *p); \
    void devhost_abi_anchor_##type(type *p) { (void)p; }
#define ANCHOR_FUNCTION(fn)                                              \
    ANCHOR_EXPORT void devhost_abi_anchor_##fn(__typeof__(fn) *p); \
    void devhost_abi_anchor_##fn(__typeof__(fn) *p) { (void)p; }

ANCHOR(devhost_port_peer)
ANCHOR(devhost_port_callbacks)
ANCHOR(devhost_port_config)
ANCHOR(devhost_port_frame)
ANCHOR_FUNCTION(devhost_port_create)
ANCHOR_FUNCTION(devhost_port_send)
ANCHOR_FUNCTION(devhost_port_disconnect)
ANCHOR_FUNCTION(devhost_port_clients)
ANCHOR_FUNCTION(devhost_port_close)
ANCHOR_FUNCTION(devhost_port_frame_type_name)
ANCHOR_FUNCTION(devhost_port_frame_encode)
ANCHOR_FUNCTION(devhost_port_frame_decode)
ANCHOR_FUNCTION(devhost_port_failure_encode)
ANCHOR_FUNCTION(devhost_port_failure_decode)
