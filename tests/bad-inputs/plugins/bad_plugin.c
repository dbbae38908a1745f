/*
 * Bad plugin files for the catalogue (tests/bad-inputs/plugins.tsv): one
 * source built into one .so per defect (tests/bad-inputs/CMakeLists.txt
 * passes -DBAD_CASE=BAD_<NAME> and -DBAD_CASE_<NAME>), each a plugin of class "abitest" that is
 * good except for that one defect, so the loader's refusal names exactly it.
 *
 * Written in C99 like any OEM plugin. negotiate() fills a good descriptor
 * and then breaks the one part the case names.
 */
#include <devhost/plugin.h>

#include <stdlib.h>
#include <string.h>

enum bad_case {
    BAD_NONE, /* a good plugin: the control row of the catalogue */
    BAD_NO_ENTRY,
    BAD_REFUSES,
    BAD_REFUSES_SILENTLY,
    BAD_ABI_MAJOR2,
    BAD_ABI_NEWER_MINOR,
    BAD_NO_DESCRIPTOR,
    BAD_SMALL_DESCRIPTOR,
    BAD_CLASS,
    BAD_NO_NAME,
    BAD_NO_HOOKS,
    BAD_SMALL_HOOKS,
    BAD_NO_CLOSE,
    BAD_UNKNOWN_OPS,
    BAD_OPS_WITHOUT_TRANSFER,
    BAD_OPTIONS_NO_TABLE,
    BAD_OPTIONS_TOO_MANY,
    BAD_OPTION_SMALL,
    BAD_OPTION_STRIDE,
    BAD_OPTION_NAME,
    BAD_OPTION_TYPE,
    BAD_OPTION_ENUM_EMPTY,
    BAD_OPTION_MIN_MAX,
    BAD_OPTION_DEFAULT,
    BAD_OPTION_TWICE,
    BAD_CONTROLS_NO_TABLE,
    BAD_CONTROLS_TOO_MANY,
    BAD_CONTROL_SMALL,
    BAD_CONTROL_STRIDE,
    BAD_CONTROL_NAME,
    BAD_CONTROL_REPEAT,
    /* ABI 1.1's rules */
    BAD_RESERVED_DESCRIPTOR,
    BAD_RESERVED_HOOKS,
    BAD_RESERVED_OPTION,
    BAD_UNKNOWN_REQUIRES,
    BAD_UNKNOWN_LOCK_REQUIRES,
    BAD_CLASS_UNDERSCORE,
    BAD_CLASS_DASH,
    BAD_CLASS_LONG,
    BAD_OPTION_UNDERSCORE,
    BAD_OPTION_RESERVED,
    BAD_OPTION_RESERVED_1_1,
    BAD_OPTION_EXCLUSIVE_NOT_BOOL,
    BAD_PATTERNS_TOO_MANY,
    BAD_PATTERN_TOO_LONG,
    BAD_PATTERN_EMPTY,
    BAD_FLAGS_UNKNOWN /* a good plugin: unknown flag bits are ignored */
};

#ifndef BAD_CASE
#error "define BAD_CASE=BAD_<NAME>"
#endif

struct devhost_device {
    int unused;
};

/* open: any path. Returns OK or E_NO_MEMORY. */
static devhost_status bad_open(const devhost_open_params *params, devhost_device **device, devhost_error *err)
{
    (void)params;
    *device = calloc(1, sizeof **device);
    if (!*device)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "out of memory");
    return DEVHOST_OK;
}

/* close: frees the device. Returns OK. */
static devhost_status bad_close(devhost_device *device, devhost_error *err)
{
    (void)err;
    free(device);
    return DEVHOST_OK;
}

/* transfer: WRITE only, swallows the bytes. Returns OK. */
static devhost_status bad_transfer(devhost_device *device, devhost_transfer *xfer, devhost_error *err)
{
    (void)device;
    (void)err;
    xfer->out_done = xfer->out_len;
    return DEVHOST_OK;
}

static devhost_hooks hooks;
static devhost_option_spec options[2];
static devhost_control_spec controls[2];
static devhost_plugin_descriptor descriptor;
static const char *patterns[66];
static char long_pattern[258];

/* The good plugin every case starts from. */
static void fill_good(void)
{
    hooks.struct_size = sizeof hooks;
    hooks.open = bad_open;
    hooks.close = bad_close;
    hooks.transfer = bad_transfer;

    options[0].struct_size = sizeof options[0];
    options[0].type = DEVHOST_OPTION_INT;
    options[0].name = "speed";
    options[0].default_value = "1";
    options[0].help = "an option";
    options[0].min = 0;
    options[0].max = 10;
    options[1] = options[0];
    options[1].type = DEVHOST_OPTION_ENUM;
    options[1].name = "mode";
    options[1].default_value = "a";
    options[1].choices = "a|b";

    controls[0].struct_size = sizeof controls[0];
    controls[0].code = 1;
    controls[0].name = "reset";
    controls[0].help = "a control";
    controls[1] = controls[0];
    controls[1].code = 2;
    controls[1].name = "flush";

    descriptor.struct_size = sizeof descriptor;
    descriptor.name = "abitest-bad";
    descriptor.device_class = "abitest";
    descriptor.version = "1.0.0";
    descriptor.description = "a catalogued bad plugin";
    descriptor.options = options;
    descriptor.option_count = 2;
    descriptor.controls = controls;
    descriptor.control_count = 2;
    descriptor.hooks = &hooks;
    descriptor.transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_WRITE);
}

/* Breaks the one part BAD_CASE names. */
static void break_it(devhost_negotiation *n)
{
    switch (BAD_CASE) {
    case BAD_ABI_MAJOR2: n->plugin_abi_version = DEVHOST_MAKE_VERSION(2, 0); break;
    case BAD_ABI_NEWER_MINOR: n->plugin_abi_version = DEVHOST_MAKE_VERSION(1, 99); break;
    case BAD_NO_DESCRIPTOR: n->descriptor = NULL; break;
    case BAD_SMALL_DESCRIPTOR: descriptor.struct_size = 16; break;
    case BAD_CLASS: descriptor.device_class = "Abi Test"; break;
    case BAD_NO_NAME: descriptor.name = ""; break;
    case BAD_NO_HOOKS: descriptor.hooks = NULL; break;
    case BAD_SMALL_HOOKS: hooks.struct_size = 8; break;
    case BAD_NO_CLOSE: hooks.close = NULL; break;
    case BAD_UNKNOWN_OPS: descriptor.transfer_ops |= 1u << 30; break;
    case BAD_OPS_WITHOUT_TRANSFER: hooks.transfer = NULL; break;
    case BAD_OPTIONS_NO_TABLE: descriptor.options = NULL; break;
    case BAD_OPTIONS_TOO_MANY: descriptor.option_count = 257; break;
    case BAD_OPTION_SMALL: options[0].struct_size = 8; break;
    case BAD_OPTION_STRIDE: options[1].struct_size = sizeof options[1] + 8; break;
    case BAD_OPTION_NAME: options[1].name = "Mode!"; break;
    case BAD_OPTION_TYPE: options[1].type = 99; break;
    case BAD_OPTION_ENUM_EMPTY: options[1].choices = ""; break;
    case BAD_OPTION_MIN_MAX: options[0].min = 5, options[0].max = 4; break;
    case BAD_OPTION_DEFAULT: options[0].default_value = "11"; break;
    case BAD_OPTION_TWICE: options[1] = options[0]; break;
    case BAD_CONTROLS_NO_TABLE: descriptor.controls = NULL; break;
    case BAD_CONTROLS_TOO_MANY: descriptor.control_count = 1025; break;
    case BAD_CONTROL_SMALL: controls[0].struct_size = 8; break;
    case BAD_CONTROL_STRIDE: controls[1].struct_size = sizeof controls[1] + 8; break;
    case BAD_CONTROL_NAME: controls[1].name = ""; break;
    case BAD_CONTROL_REPEAT: controls[1].code = controls[0].code; break;
    case BAD_RESERVED_DESCRIPTOR: descriptor.reserved = 1; break;
    case BAD_RESERVED_HOOKS: hooks.reserved = 2; break;
    case BAD_RESERVED_OPTION: options[1].reserved = 3; break;
    case BAD_UNKNOWN_REQUIRES: descriptor.transfer_requires = 1u << 4; break;
    case BAD_UNKNOWN_LOCK_REQUIRES: descriptor.lock_requires = DEVHOST_REQUIRES_CONNECTED | 1u << 31; break;
    case BAD_CLASS_UNDERSCORE: descriptor.device_class = "abi_test"; break;
    case BAD_CLASS_DASH: descriptor.device_class = "-abitest"; break;
    case BAD_CLASS_LONG: /* 65 characters, one past DEVHOST_IDENTIFIER_MAX */
        descriptor.device_class = "abitest-abitest-abitest-abitest-abitest-abitest-abitest-abitest-x";
        break;
    case BAD_OPTION_UNDERSCORE: options[1].name = "my_mode"; break;
    case BAD_OPTION_RESERVED: options[1].name = "timeout"; break;
    case BAD_OPTION_RESERVED_1_1: options[1].name = "isolation"; break;
    case BAD_OPTION_EXCLUSIVE_NOT_BOOL: options[0].flags = DEVHOST_OPTION_EXCLUSIVE; break;
    case BAD_PATTERNS_TOO_MANY: {
        size_t i;
        for (i = 0; i < 65; i++)
            patterns[i] = "/dev/abitest*";
        descriptor.path_patterns = patterns;
        break;
    }
    case BAD_PATTERN_TOO_LONG:
        memset(long_pattern, 'x', 257);
        long_pattern[0] = '/';
        patterns[0] = "/dev/abitest*";
        patterns[1] = long_pattern;
        descriptor.path_patterns = patterns;
        break;
    case BAD_PATTERN_EMPTY:
        patterns[0] = "";
        descriptor.path_patterns = patterns;
        break;
    case BAD_FLAGS_UNKNOWN:
        descriptor.flags |= 1u << 20;
        options[0].flags |= 1u << 20;
        controls[0].flags |= 1u << 20;
        break;
    default: break;
    }
}

#ifdef BAD_CASE_NO_ENTRY
/* A library that looks like a plugin but exports the wrong name. */
DEVHOST_EXPORT devhost_status devhost_plugin_negotiate_v0(devhost_negotiation *n);
DEVHOST_EXPORT devhost_status devhost_plugin_negotiate_v0(devhost_negotiation *n)
#else
DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
#endif
{
    if (BAD_CASE == BAD_REFUSES)
        return devhost_fail(n->error, DEVHOST_E_UNSUPPORTED, 0, "this plugin refuses every host");
    if (BAD_CASE == BAD_REFUSES_SILENTLY)
        return DEVHOST_E_UNSUPPORTED;
    fill_good();
    n->plugin_abi_version = DEVHOST_ABI_VERSION;
    n->descriptor = &descriptor;
    break_it(n);
    return DEVHOST_OK;
}
