/*
 * One test plugin source, built into one .so per negotiation path the loader
 * must handle (tests/abi/CMakeLists.txt passes ABI_VARIANT_<NAME>):
 *
 *   good               class "abitest", loads and works
 *   no_entry           exports no devhost_plugin_negotiate
 *   abi_major2         answers ABI 2.0
 *   abi_too_new_minor  answers ABI 1.99, newer than the host's 1.0
 *   small_descriptor   descriptor struct_size 16
 *   no_hooks           descriptor without a hook table
 *   refuses            negotiate fails with DEVHOST_E_UNSUPPORTED and a message
 *   dup_class          a second, otherwise good, plugin claiming "abitest"
 *   bad_option         an option spec of unknown type 99
 *   v1_0               good, built from plugin.h as released at 1.0
 *                      (tests/abi/headers-1.0): answers 1.0
 *   future             good, built from a header of a later minor (1.2:
 *                      every struct larger, a hook slot set that this host
 *                      does not know, see future_header.cmake): answers the
 *                      host's version, as a plugin from a newer header must
 *
 * Written in C99 like any C plugin; the variant only changes what
 * negotiation answers.
 */
#include <devhost/plugin.h>

#include <stdint.h>
#include <stdlib.h>

#if defined(ABI_VARIANT_GOOD)
#define VARIANT "good"
#elif defined(ABI_VARIANT_NO_ENTRY)
#define VARIANT "no_entry"
#elif defined(ABI_VARIANT_ABI_MAJOR2)
#define VARIANT "abi_major2"
#elif defined(ABI_VARIANT_ABI_TOO_NEW_MINOR)
#define VARIANT "abi_too_new_minor"
#elif defined(ABI_VARIANT_SMALL_DESCRIPTOR)
#define VARIANT "small_descriptor"
#elif defined(ABI_VARIANT_NO_HOOKS)
#define VARIANT "no_hooks"
#elif defined(ABI_VARIANT_REFUSES)
#define VARIANT "refuses"
#elif defined(ABI_VARIANT_DUP_CLASS)
#define VARIANT "dup_class"
#elif defined(ABI_VARIANT_BAD_OPTION)
#define VARIANT "bad_option"
#elif defined(ABI_VARIANT_V1_0)
#define VARIANT "v1_0"
#elif defined(ABI_VARIANT_FUTURE)
#define VARIANT "future"
#else
#error "define one ABI_VARIANT_<NAME>"
#endif

/* Some variants leave parts unused on purpose. */
#if defined(__GNUC__) || defined(__clang__)
#define MAYBE_UNUSED __attribute__((unused))
#else
#define MAYBE_UNUSED
#endif

struct devhost_device {
    unsigned long written;
};

/* open: any path. Returns OK or E_NO_MEMORY. */
MAYBE_UNUSED static devhost_status abitest_open(const devhost_open_params *params, devhost_device **device, devhost_error *err)
{
    (void)params;
    *device = calloc(1, sizeof **device);
    if (!*device)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "out of memory");
    return DEVHOST_OK;
}

/* close: frees the device. Returns OK. */
MAYBE_UNUSED static devhost_status abitest_close(devhost_device *device, devhost_error *err)
{
    (void)err;
    free(device);
    return DEVHOST_OK;
}

/* info: reports which variant this is. Returns OK. */
MAYBE_UNUSED static devhost_status abitest_info(devhost_device *device, const devhost_info_sink *sink, devhost_error *err)
{
    (void)device;
    (void)err;
    sink->put(sink->context, "variant", VARIANT);
    return DEVHOST_OK;
}

/* transfer: WRITE only, swallows the bytes. Returns OK. */
MAYBE_UNUSED static devhost_status abitest_transfer(devhost_device *device, devhost_transfer *xfer, devhost_error *err)
{
    (void)err;
    device->written += xfer->out_len;
    xfer->out_done = xfer->out_len;
    return DEVHOST_OK;
}

#if defined(ABI_VARIANT_FUTURE)
/* The hook of a minor this host does not know: the host must never call
 * it, so calling it ends the process where the test sees it. */
static void abitest_future_hook(void)
{
    abort();
}

static const devhost_hooks abitest_hooks = {
    .struct_size = sizeof(devhost_hooks),
    .open = abitest_open,
    .close = abitest_close,
    .info = abitest_info,
    .transfer = abitest_transfer,
    .future_since_1_2 = (uint64_t)(uintptr_t)abitest_future_hook,
};
#else
MAYBE_UNUSED static const devhost_hooks abitest_hooks = {
    sizeof(devhost_hooks), 0, abitest_open, abitest_close, NULL, NULL, NULL, NULL, abitest_info, abitest_transfer,
};
#endif

MAYBE_UNUSED static const devhost_option_spec abitest_options[] = {
#if defined(ABI_VARIANT_BAD_OPTION)
    {sizeof(devhost_option_spec), 99, "x", NULL, "an option of a type no host knows", NULL, 0, 0},
#else
    {sizeof(devhost_option_spec), DEVHOST_OPTION_INT, "x", "1", "an option", NULL, 0, 10},
#endif
};

MAYBE_UNUSED static const devhost_plugin_descriptor abitest_descriptor = {
#if defined(ABI_VARIANT_SMALL_DESCRIPTOR)
    16,
#else
    sizeof(devhost_plugin_descriptor),
#endif
    0,
    "abitest-" VARIANT,
    "abitest",
    "1.0.0",
    "loader test plugin, variant " VARIANT,
    abitest_options, 1,
    0, NULL,
#if defined(ABI_VARIANT_NO_HOOKS)
    NULL,
#else
    &abitest_hooks,
#endif
    DEVHOST_OP_BIT(DEVHOST_OP_WRITE),
    0,
    0,
    0,
};

#if defined(ABI_VARIANT_NO_ENTRY)

/* A library that looks like a plugin but exports the wrong name. */
DEVHOST_EXPORT devhost_status devhost_plugin_negotiate_v0(devhost_negotiation *n);
DEVHOST_EXPORT devhost_status devhost_plugin_negotiate_v0(devhost_negotiation *n)
{
    n->descriptor = &abitest_descriptor;
    return DEVHOST_OK;
}

#else

DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
#if defined(ABI_VARIANT_REFUSES)
    return devhost_fail(n->error, DEVHOST_E_UNSUPPORTED, 0, "abitest refuses this host on purpose");
#else
#if defined(ABI_VARIANT_ABI_MAJOR2)
    n->plugin_abi_version = DEVHOST_MAKE_VERSION(2, 0);
#elif defined(ABI_VARIANT_ABI_TOO_NEW_MINOR)
    n->plugin_abi_version = DEVHOST_MAKE_VERSION(1, 99);
#elif defined(ABI_VARIANT_FUTURE)
    n->plugin_abi_version = n->host_abi_version < DEVHOST_ABI_VERSION ? n->host_abi_version : DEVHOST_ABI_VERSION;
#else
    n->plugin_abi_version = DEVHOST_ABI_VERSION;
#endif
    n->descriptor = &abitest_descriptor;
    return DEVHOST_OK;
#endif
}

#endif
