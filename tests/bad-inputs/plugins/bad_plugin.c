/*
 * The defective test plugins: one source built into one .so per defect,
 * each a plugin of class "abitest" that is good except for that one defect,
 * so the loader's refusal names exactly it. Two sets are built from it:
 *
 *   tests/bad-inputs/CMakeLists.txt  the catalogue (plugins.tsv), one .so
 *                                    per case below, named "abitest-bad";
 *   tests/abi/CMakeLists.txt         the loader test's negotiation paths
 *                                    (good, no_entry, abi_major2, ...,
 *                                    dup_class: a second good "abitest"),
 *                                    each named "abitest-<variant>".
 *
 * Each build passes -DBAD_CASE=BAD_<NAME> and -DBAD_CASE_<NAME>, and may
 * pass -DBAD_VARIANT="<variant>" (default "bad"): the descriptor's name is
 * "abitest-<variant>" and info reports variant=<variant>.
 *
 * Written in C99 like any OEM plugin. negotiate() fills a good descriptor
 * and then breaks the one part the case names.
 *
 * The ctor_* and negotiate_* cases are good plugins whose library
 * constructor, or negotiate() before it answers, misbehaves the way a
 * careless plugin can kill or hang the process loading it (issue 15; the
 * supervisor loads plugins only in workers): exit(0), abort(), a write
 * through a null pointer, a loop that never ends, or a line printed to
 * stdout (after which the plugin is good: it must load, run, and its
 * line must never reach the records).
 *
 * The loader test also builds the good plugin from other headers: plugin.h
 * as released at 1.0 (tests/abi/headers-1.0, variant v1_0) and a header of
 * a later minor (tests/abi/future_header.cmake, variant future, which
 * defines BAD_FUTURE_HEADER: every struct larger, and a hook slot this host
 * does not know set to a function that aborts if it is ever called).
 */
#include <devhost/plugin.h>

#include <stdint.h>
#include <stdio.h>
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
    BAD_RESERVED_1_1,
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
    BAD_OPTION_WRITABLE_NOT_BOOL,
    BAD_PATTERNS_TOO_MANY,
    BAD_PATTERN_TOO_LONG,
    BAD_PATTERN_EMPTY,
    BAD_FLAGS_UNKNOWN, /* a good plugin: unknown flag bits (path types too) are ignored */
    /* a misbehaving library constructor */
    BAD_CTOR_EXIT,
    BAD_CTOR_ABORT,
    BAD_CTOR_SEGV,
    BAD_CTOR_LOOP,
    BAD_CTOR_PRINT, /* a good plugin that prints */
    /* a misbehaving negotiate() */
    BAD_NEGOTIATE_EXIT,
    BAD_NEGOTIATE_ABORT,
    BAD_NEGOTIATE_SEGV,
    BAD_NEGOTIATE_LOOP,
    BAD_NEGOTIATE_PRINT /* a good plugin that prints */
};

#ifndef BAD_CASE
#error "define BAD_CASE=BAD_<NAME>"
#endif
#ifndef BAD_VARIANT
#define BAD_VARIANT "bad"
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

/* info: reports which variant this is. Returns OK. */
static devhost_status bad_info(devhost_device *device, const devhost_info_sink *sink, devhost_error *err)
{
    (void)device;
    (void)err;
    sink->put(sink->context, "variant", BAD_VARIANT);
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

#ifdef BAD_FUTURE_HEADER
/* The hook of a minor this host does not know: never to be called. */
static void bad_future_hook(void)
{
    abort();
}
#endif

static devhost_hooks hooks;
static devhost_option_spec options[2];
static devhost_control_spec controls[2];
static devhost_plugin_descriptor descriptor;
#if DEVHOST_ABI_VERSION_MINOR >= 1
static const char *patterns[66];
static char long_pattern[258];
#endif

/* The good plugin every case starts from. */
static void fill_good(void)
{
    hooks.struct_size = sizeof hooks;
    hooks.open = bad_open;
    hooks.close = bad_close;
    hooks.info = bad_info;
    hooks.transfer = bad_transfer;
#ifdef BAD_FUTURE_HEADER
    hooks.future_since_1_2 = (uint64_t)(uintptr_t)bad_future_hook;
#endif

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
    descriptor.name = "abitest-" BAD_VARIANT;
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
#if DEVHOST_ABI_VERSION_MINOR >= 1 /* not in the 1.0 header (variant v1_0) */
    case BAD_RESERVED_OPTION: options[1].reserved = 3; break;
    case BAD_RESERVED_1_1: descriptor.reserved_1_1 = 4; break;
#endif
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
#if DEVHOST_ABI_VERSION_MINOR >= 1
    case BAD_OPTION_EXCLUSIVE_NOT_BOOL: options[0].flags = DEVHOST_OPTION_EXCLUSIVE; break;
    case BAD_OPTION_WRITABLE_NOT_BOOL: options[1].flags = DEVHOST_OPTION_WRITABLE; break;
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
        descriptor.path_types |= 1u << 20;
        options[0].flags |= 1u << 20;
        controls[0].flags |= 1u << 20;
        break;
#endif
    default: break;
    }
}

/* Read through volatile objects so that no compiler can see the null
 * pointer or the endless loop and turn them into something else: the
 * segv cases must die by SIGSEGV, the loop cases spin. */
static int *volatile bad_null = NULL;
static volatile int bad_spinning = 1;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((no_sanitize("undefined")))
#endif
/* What a ctor_* or negotiate_* case does (`what` is 0 exit, 1 abort,
 * 2 segv, 3 loop, 4 print), `where` naming the place for the print. */
static void misbehave(int what, const char *where)
{
    switch (what) {
    case 0: exit(0);
    case 1: abort();
    case 2: *bad_null = 1; break;
    case 3:
        while (bad_spinning)
            ;
        break;
    default:
        printf("abitest-" BAD_VARIANT " %s: a line on stdout\n", where);
        fflush(stdout);
        break;
    }
}

#if defined(__GNUC__) || defined(__clang__)
/* The library constructor: runs while the library is being loaded. */
__attribute__((constructor)) static void bad_constructor(void)
{
    if (BAD_CASE >= BAD_CTOR_EXIT && BAD_CASE <= BAD_CTOR_PRINT)
        misbehave(BAD_CASE - BAD_CTOR_EXIT, "constructor");
}
#endif

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
    if (BAD_CASE >= BAD_NEGOTIATE_EXIT && BAD_CASE <= BAD_NEGOTIATE_PRINT)
        misbehave(BAD_CASE - BAD_NEGOTIATE_EXIT, "negotiate");
    fill_good();
    /* The older of the host's version and this header's, as every plugin
     * answers (plugin.h's devhost_negotiate does the same; this source also
     * builds from the 1.0 header, which has no such helper). */
    n->plugin_abi_version = n->host_abi_version < DEVHOST_ABI_VERSION ? n->host_abi_version : DEVHOST_ABI_VERSION;
    n->descriptor = &descriptor;
    break_it(n);
    return DEVHOST_OK;
}
