/* The ABI anchor of devhost/plugin.h: a library built from the header alone
 * that exports one function per type crossing the plugin ABI, so that `abidw`
 * records each struct's layout and each named enum's values. It is never
 * installed or loaded; scripts/abi-check.sh builds it and compares it with
 * the baselines beside this file (README.md here). A type added to the
 * header gets its ANCHOR line here in the same change. */
#include <devhost/plugin.h>

#define ANCHOR(type)                                          \
    DEVHOST_EXPORT void devhost_abi_anchor_##type(type *p); \
    void devhost_abi_anchor_##type(type *p) { (void)p; }

ANCHOR(devhost_error)
ANCHOR(devhost_log_level)
ANCHOR(devhost_host_services)
ANCHOR(devhost_option_spec)
ANCHOR(devhost_control_spec)
ANCHOR(devhost_option_value)
ANCHOR(devhost_open_params)
ANCHOR(devhost_kv)
ANCHOR(devhost_connect_params)
ANCHOR(devhost_info_sink)
ANCHOR(devhost_transfer)
ANCHOR(devhost_hooks)
ANCHOR(devhost_plugin_descriptor)
ANCHOR(devhost_negotiation)
ANCHOR(devhost_negotiate_fn)
/* since v1.1 */
ANCHOR(devhost_arg)
ANCHOR(devhost_enumerate_params)
ANCHOR(devhost_found_device)
ANCHOR(devhost_found_sink)
