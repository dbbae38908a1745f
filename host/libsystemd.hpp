// libsystemd (Debian's libsystemd0), loaded when serve first needs it rather
// than linked: sd_notify for Type=notify (notify.hpp), sd_journal_sendv
// for its log under systemd (journal.hpp) and sd-device for identities and
// hot-plug (identity.hpp, device_watch.hpp). Linked, it and
// the five libraries it needs (libgcrypt, liblzma, libzstd, liblz4, libcap)
// were mapped and relocated by every command at start, about 0.85 ms of CPU
// and 0.6 MiB of RSS of `devhost check` (bench/README.md, "Start-up").
//
// It is loaded by its soname, as the dynamic linker would have loaded it,
// from the system's library directories; the package depends on it.
#pragma once

#include <systemd/sd-daemon.h>
#include <systemd/sd-device.h>
#include <systemd/sd-event.h>
// The plain sd_journal_sendv, not the macro adding the caller's location.
#ifndef SD_JOURNAL_SUPPRESS_LOCATION
#define SD_JOURNAL_SUPPRESS_LOCATION
#endif
#include <systemd/sd-journal.h>

#include <string>

namespace devhost {

struct LibSystemd {
#define DEVHOST_SD_FUNCTIONS(X)                                                                                        \
    X(sd_notify)                                                                                                       \
    X(sd_watchdog_enabled)                                                                                             \
    X(sd_journal_sendv)                                                                                                \
    X(sd_device_unref)                                                                                                 \
    X(sd_device_get_sysattr_value)                                                                                     \
    X(sd_device_get_parent_with_subsystem_devtype)                                                                     \
    X(sd_device_get_devname)                                                                                           \
    X(sd_device_get_subsystem)                                                                                         \
    X(sd_device_get_devtype)                                                                                           \
    X(sd_device_enumerator_new)                                                                                        \
    X(sd_device_enumerator_unref)                                                                                      \
    X(sd_device_enumerator_add_match_subsystem)                                                                        \
    X(sd_device_enumerator_allow_uninitialized)                                                                        \
    X(sd_device_enumerator_get_device_first)                                                                           \
    X(sd_device_enumerator_get_device_next)                                                                            \
    X(sd_device_monitor_new)                                                                                           \
    X(sd_device_monitor_unref)                                                                                         \
    X(sd_device_monitor_attach_event)                                                                                  \
    X(sd_device_monitor_start)                                                                                         \
    X(sd_event_new)                                                                                                    \
    X(sd_event_unref)                                                                                                  \
    X(sd_event_get_fd)                                                                                                 \
    X(sd_event_run)
#define DEVHOST_SD_POINTER(name) decltype(&::name) name = nullptr;
    DEVHOST_SD_FUNCTIONS(DEVHOST_SD_POINTER)
#undef DEVHOST_SD_POINTER
};

// The library, loaded at the first call (thread-safe) and never unloaded;
// nullptr when it cannot be loaded or lacks a function, with `error` (one
// line) set. Later calls give the same answer.
const LibSystemd *libsystemd(std::string &error);

}  // namespace devhost
