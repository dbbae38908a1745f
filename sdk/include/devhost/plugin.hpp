/*
 * devhost/plugin.hpp: write a devhost plugin as a C++ class.
 *
 * Optional, header-only, C++17. The ABI stays the C one in plugin.h; this
 * header generates the C hook functions for your class and catches every
 * exception at that boundary, so no C++ exception or type ever reaches the
 * host:
 *
 *   thrown                                  hook returns
 *   devhost::error(status, errno, message)  status, with errno and message
 *   std::bad_alloc                          DEVHOST_E_NO_MEMORY "out of memory"
 *   std::system_error                       DEVHOST_E_IO, its errno and what()
 *   any other std::exception                DEVHOST_E_IO with what()
 *   anything else                           DEVHOST_E_IO "unknown exception"
 *
 * Your class T, one object per device:
 *   T(const devhost_open_params &)   open (required). Throw to refuse; only
 *                                    what the constructor finished is
 *                                    cleaned up, so no half-opened device.
 *   ~T()                             close (must not throw)
 * and any of these members, found at compile time. One you leave out becomes
 * a NULL hook, which the host answers with DEVHOST_E_UNSUPPORTED:
 *   void connect(const devhost_connect_params &);
 *   void disconnect();
 *   void lock(int32_t timeout_ms);
 *   void unlock();
 *   void info(devhost::info_sink &);
 *   void transfer(devhost_transfer &);
 *   void close();      called before ~T(); may throw to report a problem
 *                      (the object is destroyed either way)
 * and, since ABI 1.1, these static members (the hooks without a device):
 *   static void enumerate(const devhost_enumerate_params &, devhost::found_sink &);
 *                      list the devices of the class (devhost scan)
 *   static void unload();   undo process-wide state before dlclose; what
 *                      it throws is logged, never passed on
 * A class whose enumerate is a free function names it with a static member
 * pointer: `static constexpr auto enumerate = &list_my_devices;`.
 * A member succeeds by returning and fails by throwing. A transfer that gets
 * partway sets out_done / in_len before it throws. The host's rules in
 * plugin.h (timeouts, cancel_fd, never print) hold as they do in C.
 *
 * Each member may instead be written the C way, for code that already
 * reports like a C hook: one more parameter, the host's error record, and a
 * status returned, e.g.
 *   devhost_status transfer(devhost_transfer &, devhost_error &);
 *   devhost_status close(devhost_error &);
 * It fills the record on failure as plugin.h asks; what it throws is still
 * caught. devhost::check(status, record) goes the other way: it throws the
 * status and message of a record such code filled (for the constructor).
 *
 * Deadlines (ABI 1.1): every hook, info, unlock, disconnect and close
 * included, keeps to the deadline the host gives it. devhost::deadline(
 * host_device) is that deadline (absolute CLOCK_MONOTONIC ns, or
 * DEVHOST_DEADLINE_NONE from a 1.0 host), devhost::deadline(host_device,
 * timeout_ms) the earlier of it and a hook's timeout argument; keep
 * params.host_device from the constructor to ask for it (enumerate asks
 * with nullptr). Read it inside the hook, on the hook's thread.
 *
 * The descriptor: devhost::describe<T>() fills identity and hooks;
 * devhost::set_options() and set_controls() take the schema arrays (an
 * option spec's flags, DEVHOST_OPTION_REQUIRED and _EXCLUSIVE, go with it);
 * devhost::set_path_patterns() the paths the class serves, made with
 * devhost::path_patterns("/dev/ttyS*", ...) (NULL-terminated for you;
 * fnmatch(3) patterns matched without FNM_PATHNAME, so "vport:*" takes any
 * depth); set the flags, transfer_ops, path_types (the kinds of file served
 * at paths no pattern names: d.path_types = DEVHOST_PATH_SOCKET) and the
 * requires fields on the copy. Deadlines, waits,
 * options by schema index and text parsing come from <devhost/plugin_util.h>,
 * included here. So does devhost::UniqueFd (<devhost/unique_fd.hpp>): hold
 * each descriptor the device opens in one, and ~T() and every early throw
 * close it (it never crosses the ABI; hand a descriptor on with release()).
 *
 * Example (a plugin whose devices answer every request with its bytes):
 *
 *   #include <devhost/plugin.hpp>
 *   #include <cstring>
 *   #include <string>
 *
 *   class Echo {
 *   public:
 *       explicit Echo(const devhost_open_params &p) : path_(p.path)
 *       {
 *           if (path_.rfind("echo:", 0) != 0)
 *               throw devhost::error(DEVHOST_E_NOT_FOUND, 0, "echo devices are named echo:NAME");
 *       }
 *       void info(devhost::info_sink &sink) { sink.put("path", path_); }
 *       void transfer(devhost_transfer &x)
 *       {
 *           if (x.out_len > x.in_capacity)
 *               throw devhost::error(DEVHOST_E_INVALID, 0, "reply does not fit");
 *           if (x.out_len)
 *               std::memcpy(x.in, x.out, x.out_len);
 *           x.out_done = x.in_len = x.out_len;
 *       }
 *   private:
 *       std::string path_;
 *   };
 *
 *   constexpr auto paths = devhost::path_patterns("echo:*");
 *   static const devhost_plugin_descriptor descriptor = [] {
 *       auto d = devhost::describe<Echo>("echo", "echo", "1.0.0", "answers requests with their bytes");
 *       devhost::set_path_patterns(d, paths);
 *       d.transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_REQUEST);
 *       return d;
 *   }();
 *   DEVHOST_PLUGIN_ENTRY(descriptor)
 *
 * Log with devhost::log(params.host_device, DEVHOST_LOG_DEBUG, "text"); keep
 * params.host_device and params.cancel_fd from the constructor's params, as
 * they stay valid until close.
 *
 * A descriptor that holds the device (an exclusive tty, a claim, a lock) is
 * handed to the host with devhost::share_fd(host_device, fd, "tty", who)
 * once it is set up, and taken back with devhost::unshare_fd before it is
 * closed (devhost/plugin_util.h, section 6).
 */
#ifndef DEVHOST_PLUGIN_HPP
#define DEVHOST_PLUGIN_HPP

#include <devhost/plugin.h>
#include <devhost/plugin_util.h>
#include <devhost/unique_fd.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace devhost {

// Throw this from a member to fail with a particular status.
class error : public std::runtime_error {
public:
    error(devhost_status status, int os_errno, const std::string &message)
        : std::runtime_error(message), status_(status), os_errno_(os_errno)
    {
    }
    error(devhost_status status, const std::string &message) : error(status, 0, message) {}
    devhost_status status() const noexcept { return status_; }
    int os_errno() const noexcept { return os_errno_; }

private:
    devhost_status status_;
    int os_errno_;
};

// An empty error record, for calling code that reports the C way.
inline devhost_error error_record() noexcept
{
    devhost_error record;
    devhost_util_error_init(&record);
    return record;
}

// Throws the status, errno and message of `record` unless status is OK.
inline void check(devhost_status status, const devhost_error &record)
{
    if (status != DEVHOST_OK)
        throw error(status, record.os_errno, record.message);
}

// One device enumerate() found; an empty string is "not known" (NULL to
// the host).
struct found {
    std::string path, by_id, description, usb_vendor, usb_product, usb_serial;
};

// What enumerate() reports through; strings are copied by the host.
class found_sink {
public:
    explicit found_sink(const devhost_found_sink &sink) : sink_(sink) {}
    void put(const found &f) const
    {
        auto c = [](const std::string &s) { return s.empty() ? nullptr : s.c_str(); };
        devhost_found_device d{};
        d.struct_size = sizeof d;
        d.path = c(f.path);
        d.by_id = c(f.by_id);
        d.description = c(f.description);
        d.usb_vendor = c(f.usb_vendor);
        d.usb_product = c(f.usb_product);
        d.usb_serial = c(f.usb_serial);
        sink_.put(sink_.context, &d);
    }
    // The host's sink, for code that reports through the C interface.
    const devhost_found_sink &c_sink() const noexcept { return sink_; }

private:
    const devhost_found_sink &sink_;
};

// What info() reports through; strings are copied by the host.
class info_sink {
public:
    explicit info_sink(const devhost_info_sink &sink) : sink_(sink) {}
    void put(const std::string &key, const std::string &value) const
    {
        sink_.put(sink_.context, key.c_str(), value.c_str());
    }
    void put(const char *key, const char *value) const { sink_.put(sink_.context, key, value); }
    // The host's sink, for code that reports through the C interface.
    const devhost_info_sink &c_sink() const noexcept { return sink_; }

private:
    const devhost_info_sink &sink_;
};

namespace detail {

// The host's services, set by negotiate(); one slot per plugin library,
// since the header's inline functions are hidden in each plugin.
inline const devhost_host_services *&services_slot()
{
    static const devhost_host_services *services = nullptr;
    return services;
}

// Runs f and turns whatever it throws into a status and an error record. f
// returns nothing (success) or a status (a positive one, which is no
// status, counts as DEVHOST_E_IO).
template <class F>
devhost_status guard(devhost_error *err, F &&f) noexcept
{
    try {
        if constexpr (std::is_void_v<decltype(f())>) {
            f();
            return DEVHOST_OK;
        } else {
            devhost_status status = f();
            return status > 0 ? static_cast<devhost_status>(DEVHOST_E_IO) : status;
        }
    } catch (const devhost::error &e) {
        devhost_error_set(err, e.os_errno(), "%s", e.what());
        return e.status() < 0 ? e.status() : static_cast<devhost_status>(DEVHOST_E_IO);
    } catch (const std::bad_alloc &) {
        devhost_error_set(err, ENOMEM, "out of memory");
        return DEVHOST_E_NO_MEMORY;
    } catch (const std::system_error &e) {
        devhost_error_set(err, e.code().category() == std::system_category() ||
                                       e.code().category() == std::generic_category()
                                   ? e.code().value()
                                   : 0,
                          "%s", e.what());
        return DEVHOST_E_IO;
    } catch (const std::exception &e) {
        devhost_error_set(err, 0, "%s", e.what());
        return DEVHOST_E_IO;
    } catch (...) {
        devhost_error_set(err, 0, "unknown exception");
        return DEVHOST_E_IO;
    }
}

// One caller per optional member, so that the traits below can ask whether
// T has it, in either form: throwing (`member(args)`) or reporting the C way
// (`devhost_status member(args, devhost_error &)`).
#define DEVHOST_DETAIL_CALLER(member)                                                      \
    struct call_##member {                                                                 \
        template <class T, class... A>                                                     \
        auto operator()(T &t, A &&...a) const -> decltype(t.member(std::forward<A>(a)...)) \
        {                                                                                  \
            return t.member(std::forward<A>(a)...);                                        \
        }                                                                                  \
    };
DEVHOST_DETAIL_CALLER(connect)
DEVHOST_DETAIL_CALLER(disconnect)
DEVHOST_DETAIL_CALLER(lock)
DEVHOST_DETAIL_CALLER(unlock)
DEVHOST_DETAIL_CALLER(info)
DEVHOST_DETAIL_CALLER(transfer)
DEVHOST_DETAIL_CALLER(close)
#undef DEVHOST_DETAIL_CALLER

// The static members (hooks without a device): T::enumerate, a static
// function or a static pointer to a free function, in either form, and
// T::unload.
template <class T, class = void>
inline constexpr bool enumerate_throws = false;
template <class T>
inline constexpr bool enumerate_throws<
    T, std::void_t<decltype(T::enumerate(std::declval<const devhost_enumerate_params &>(), std::declval<found_sink &>()))>> =
    true;
template <class T, class = void>
inline constexpr bool enumerate_reports = false;
template <class T>
inline constexpr bool enumerate_reports<
    T, std::void_t<decltype(T::enumerate(std::declval<const devhost_enumerate_params &>(), std::declval<found_sink &>(),
                                         std::declval<devhost_error &>()))>> =
    std::is_convertible_v<decltype(T::enumerate(std::declval<const devhost_enumerate_params &>(),
                                                std::declval<found_sink &>(), std::declval<devhost_error &>())),
                          devhost_status>;
template <class T>
inline constexpr bool has_enumerate = enumerate_reports<T> || enumerate_throws<T>;
template <class T, class = void>
inline constexpr bool has_unload = false;
template <class T>
inline constexpr bool has_unload<T, std::void_t<decltype(T::unload())>> = true;

// T's member reports the C way: it takes the error record, returns a status.
template <class Call, class T, class... A>
inline constexpr bool reports = std::is_invocable_r_v<devhost_status, Call, T &, A..., devhost_error &>;
// T has the member in either form.
template <class Call, class T, class... A>
inline constexpr bool has = reports<Call, T, A...> || std::is_invocable_v<Call, T &, A...>;

// Calls T's member in whichever form it has, inside the exception guard.
template <class Call, class T, class... A>
devhost_status call(T &t, devhost_error *err, A &&...a) noexcept
{
    return guard(err, [&]() -> devhost_status {
        if constexpr (reports<Call, T, A...>) {
            return Call{}(t, std::forward<A>(a)..., *err);
        } else {
            Call{}(t, std::forward<A>(a)...);
            return DEVHOST_OK;
        }
    });
}

// The C hook functions for T. A devhost_device* is a T*.
template <class T>
struct hooks {
    static_assert(std::is_constructible_v<T, const devhost_open_params &>,
                  "a devhost plugin class needs a constructor taking const devhost_open_params &");
    static_assert(std::is_nothrow_destructible_v<T>, "a devhost plugin class's destructor must not throw");

    static T &self(devhost_device *device) { return *reinterpret_cast<T *>(device); }

    static devhost_status open(const devhost_open_params *params, devhost_device **device,
                               devhost_error *err) noexcept
    {
        *device = nullptr;
        return guard(err, [&] { *device = reinterpret_cast<devhost_device *>(new T(*params)); });
    }
    static devhost_status close(devhost_device *device, devhost_error *err) noexcept
    {
        devhost_status status = DEVHOST_OK;
        if constexpr (has<call_close, T>)
            status = call<call_close>(self(device), err);
        delete reinterpret_cast<T *>(device);
        return status;
    }
    static devhost_status connect(devhost_device *device, const devhost_connect_params *params,
                                  devhost_error *err) noexcept
    {
        return call<call_connect>(self(device), err, *params);
    }
    static devhost_status disconnect(devhost_device *device, devhost_error *err) noexcept
    {
        return call<call_disconnect>(self(device), err);
    }
    static devhost_status lock(devhost_device *device, int32_t timeout_ms, devhost_error *err) noexcept
    {
        return call<call_lock>(self(device), err, timeout_ms);
    }
    static devhost_status unlock(devhost_device *device, devhost_error *err) noexcept
    {
        return call<call_unlock>(self(device), err);
    }
    static devhost_status info(devhost_device *device, const devhost_info_sink *sink, devhost_error *err) noexcept
    {
        info_sink s(*sink);
        return call<call_info>(self(device), err, s);
    }
    static devhost_status transfer(devhost_device *device, devhost_transfer *xfer, devhost_error *err) noexcept
    {
        return call<call_transfer>(self(device), err, *xfer);
    }
    static devhost_status enumerate(const devhost_enumerate_params *params, const devhost_found_sink *sink,
                                    devhost_error *err) noexcept
    {
        return guard(err, [&]() -> devhost_status {
            found_sink s(*sink);
            if constexpr (enumerate_reports<T>) {
                return T::enumerate(*params, s, *err);
            } else {
                T::enumerate(*params, s);
                return DEVHOST_OK;
            }
        });
    }
    // unload has no error record: what it throws is logged, never passed on.
    static void unload() noexcept
    {
        devhost_error err = error_record();
        if (guard(&err, [] { T::unload(); }) != DEVHOST_OK)
            devhost_logf(services_slot(), nullptr, DEVHOST_LOG_ERROR, "unload failed: %s", err.message);
    }
};

// T's hook table: each optional hook, or NULL when T lacks the member. The
// trampoline of a missing member is never instantiated.
template <class T>
constexpr devhost_hooks make_table()
{
    using H = hooks<T>;
    devhost_hooks h{};
    h.struct_size = sizeof(devhost_hooks);
    h.open = &H::open;
    h.close = &H::close;
    if constexpr (has<call_connect, T, const devhost_connect_params &>)
        h.connect = &H::connect;
    if constexpr (has<call_disconnect, T>)
        h.disconnect = &H::disconnect;
    if constexpr (has<call_lock, T, int32_t &>)
        h.lock = &H::lock;
    if constexpr (has<call_unlock, T>)
        h.unlock = &H::unlock;
    if constexpr (has<call_info, T, info_sink &>)
        h.info = &H::info;
    if constexpr (has<call_transfer, T, devhost_transfer &>)
        h.transfer = &H::transfer;
    if constexpr (has_enumerate<T>)
        h.enumerate = &H::enumerate;
    if constexpr (has_unload<T>)
        h.unload = &H::unload;
    return h;
}

template <class T>
inline constexpr devhost_hooks table = make_table<T>();

}  // namespace detail

// The hook table for T, valid while the library is loaded.
template <class T>
constexpr const devhost_hooks *hooks_for() noexcept
{
    return &detail::table<T>;
}

// A descriptor for T with struct_size, identity and hooks filled in. Set
// options, controls, transfer_ops and the requires fields on the copy.
template <class T>
constexpr devhost_plugin_descriptor describe(const char *name, const char *device_class, const char *version,
                                             const char *description) noexcept
{
    devhost_plugin_descriptor d{};
    d.struct_size = sizeof d;
    d.name = name;
    d.device_class = device_class;
    d.version = version;
    d.description = description;
    d.hooks = hooks_for<T>();
    return d;
}

// Points the descriptor at the option schema, `options` (static storage).
template <std::size_t N>
constexpr void set_options(devhost_plugin_descriptor &d, const devhost_option_spec (&options)[N]) noexcept
{
    d.options = options;
    d.option_count = static_cast<uint32_t>(N);
}

// A NULL-terminated list of fnmatch(3) patterns for the descriptor's
// path_patterns (matched without FNM_PATHNAME: a '*' also takes a '/'):
// `constexpr auto k_paths = devhost::path_patterns("/dev/ttyS*",
// "/dev/pts/*");` at namespace scope (static storage), then
// set_path_patterns(d, k_paths).
template <std::size_t N>
struct pattern_list {
    const char *list[N + 1];
};
template <class... S>
constexpr pattern_list<sizeof...(S)> path_patterns(S... patterns) noexcept
{
    static_assert((std::is_convertible_v<S, const char *> && ...), "path patterns are strings");
    return pattern_list<sizeof...(S)>{{patterns..., nullptr}};
}

// Points the descriptor at the patterns of the paths the class serves
// (since ABI 1.1; `patterns` has static storage).
template <std::size_t N>
constexpr void set_path_patterns(devhost_plugin_descriptor &d, const pattern_list<N> &patterns) noexcept
{
    d.path_patterns = patterns.list;
}

// Points the descriptor at the control-code table (static storage).
template <std::size_t N>
constexpr void set_controls(devhost_plugin_descriptor &d, const devhost_control_spec (&controls)[N]) noexcept
{
    d.controls = controls;
    d.control_count = static_cast<uint32_t>(N);
}

// The host's services (log, clock, deadline_ns), or NULL before negotiation.
inline const devhost_host_services *host_services() noexcept { return detail::services_slot(); }

// Logs one line through the host, for the device whose host_device token
// was in its open params (NULL: not about a device).
inline void log(const devhost_host_device *device, devhost_log_level level, const std::string &message) noexcept
{
    const devhost_host_services *s = host_services();
    if (s && s->log)
        s->log(device, level, message.c_str());
}

// The deadline of the hook now running for the device whose host_device
// token was in its open params (nullptr: enumerate), as an absolute
// CLOCK_MONOTONIC time in ns (devhost/plugin_util.h's convention), or
// DEVHOST_DEADLINE_NONE when the host gives none (a 1.0 host, for the
// hooks without a timeout argument). Ask inside the hook, on its thread.
inline uint64_t deadline(const devhost_host_device *device) noexcept
{
    return devhost_hook_deadline(host_services(), device);
}

// The earlier of the hook's deadline and `timeout_ms` from now (-1: none),
// for the hooks that take a timeout too (open, connect, lock, transfer).
inline uint64_t deadline(const devhost_host_device *device, int64_t timeout_ms) noexcept
{
    return devhost_util_deadline_min(deadline(device), devhost_util_deadline_ms(timeout_ms));
}

// Hands the host a reference to a descriptor that carries the device's
// state (devhost/plugin_util.h, section 6: which ones, and why), from the
// constructor or connect once the exclusive mode, claim or lock is taken:
// true when the host now holds a copy; false from a host that keeps none
// (in-process: silent) or that failed (one warning logged, naming `who`).
// The device keeps its own descriptor (in a UniqueFd) and, if this
// returned true, calls unshare_fd just before closing it.
inline bool share_fd(const devhost_host_device *device, int fd, const char *role, const char *who) noexcept
{
    return devhost_util_share_fd_or_warn(host_services(), device, fd, role, who) != 0;
}

// Drops the host's copy of `role`, which share_fd handed over; a failure is
// logged as a warning.
inline void unshare_fd(const devhost_host_device *device, const char *role, const char *who) noexcept
{
    devhost_util_unshare_fd(host_services(), device, role, who);
}

// The negotiation (plugin.h's devhost_negotiate): answers the older of the
// host's version and this header's, stores the services and hands over
// `descriptor`. Refuses a host of another major, naming the plugin.
inline devhost_status negotiate(devhost_negotiation *n, const devhost_plugin_descriptor &descriptor) noexcept
{
    return devhost_negotiate(n, &descriptor, &detail::services_slot());
}

}  // namespace devhost

// Defines the plugin's entry point, handing over `descriptor` (an object
// with static storage duration).
#define DEVHOST_PLUGIN_ENTRY(descriptor)                                                     \
    extern "C" DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n) \
    {                                                                                         \
        return ::devhost::negotiate(n, (descriptor));                                         \
    }

#endif /* DEVHOST_PLUGIN_HPP */
