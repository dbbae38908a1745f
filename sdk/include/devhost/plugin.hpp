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
 * A member succeeds by returning and fails by throwing. A transfer that gets
 * partway sets out_done / in_len before it throws. The host's rules in
 * plugin.h (timeouts, cancel_fd, never print) hold as they do in C.
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
 *   static const devhost_plugin_descriptor descriptor = [] {
 *       auto d = devhost::describe<Echo>("echo", "echo", "1.0.0", "answers requests with their bytes");
 *       d.transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_REQUEST);
 *       return d;
 *   }();
 *   DEVHOST_PLUGIN_ENTRY(descriptor)
 *
 * Log with devhost::log(params.host_device, DEVHOST_LOG_DEBUG, "text"); keep
 * params.host_device and params.cancel_fd from the constructor's params, as
 * they stay valid until close.
 */
#ifndef DEVHOST_PLUGIN_HPP
#define DEVHOST_PLUGIN_HPP

#include <devhost/plugin.h>

#include <cerrno>
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

// What info() reports through; strings are copied by the host.
class info_sink {
public:
    explicit info_sink(const devhost_info_sink &sink) : sink_(sink) {}
    void put(const std::string &key, const std::string &value) const
    {
        sink_.put(sink_.context, key.c_str(), value.c_str());
    }

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

// Runs f and turns whatever it throws into a status and an error record.
template <class F>
devhost_status guard(devhost_error *err, F &&f) noexcept
{
    try {
        f();
        return DEVHOST_OK;
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

// Which optional members T has.
template <class T, class = void> struct has_connect : std::false_type {};
template <class T>
struct has_connect<T, std::void_t<decltype(std::declval<T &>().connect(std::declval<const devhost_connect_params &>()))>>
    : std::true_type {};
template <class T, class = void> struct has_disconnect : std::false_type {};
template <class T>
struct has_disconnect<T, std::void_t<decltype(std::declval<T &>().disconnect())>> : std::true_type {};
template <class T, class = void> struct has_lock : std::false_type {};
template <class T>
struct has_lock<T, std::void_t<decltype(std::declval<T &>().lock(std::declval<int32_t>()))>> : std::true_type {};
template <class T, class = void> struct has_unlock : std::false_type {};
template <class T>
struct has_unlock<T, std::void_t<decltype(std::declval<T &>().unlock())>> : std::true_type {};
template <class T, class = void> struct has_info : std::false_type {};
template <class T>
struct has_info<T, std::void_t<decltype(std::declval<T &>().info(std::declval<info_sink &>()))>> : std::true_type {};
template <class T, class = void> struct has_transfer : std::false_type {};
template <class T>
struct has_transfer<T, std::void_t<decltype(std::declval<T &>().transfer(std::declval<devhost_transfer &>()))>>
    : std::true_type {};
template <class T, class = void> struct has_close : std::false_type {};
template <class T>
struct has_close<T, std::void_t<decltype(std::declval<T &>().close())>> : std::true_type {};

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
        if constexpr (has_close<T>::value)
            status = guard(err, [&] { self(device).close(); });
        delete reinterpret_cast<T *>(device);
        return status;
    }
    static devhost_status connect(devhost_device *device, const devhost_connect_params *params,
                                  devhost_error *err) noexcept
    {
        return guard(err, [&] { self(device).connect(*params); });
    }
    static devhost_status disconnect(devhost_device *device, devhost_error *err) noexcept
    {
        return guard(err, [&] { self(device).disconnect(); });
    }
    static devhost_status lock(devhost_device *device, int32_t timeout_ms, devhost_error *err) noexcept
    {
        return guard(err, [&] { self(device).lock(timeout_ms); });
    }
    static devhost_status unlock(devhost_device *device, devhost_error *err) noexcept
    {
        return guard(err, [&] { self(device).unlock(); });
    }
    static devhost_status info(devhost_device *device, const devhost_info_sink *sink, devhost_error *err) noexcept
    {
        return guard(err, [&] {
            info_sink s(*sink);
            self(device).info(s);
        });
    }
    static devhost_status transfer(devhost_device *device, devhost_transfer *xfer, devhost_error *err) noexcept
    {
        return guard(err, [&] { self(device).transfer(*xfer); });
    }

    // Each optional hook, or NULL when T lacks the member. The trampoline of
    // a missing member is never instantiated.
    static constexpr decltype(devhost_hooks::connect) connect_hook()
    {
        if constexpr (has_connect<T>::value) return &connect; else return nullptr;
    }
    static constexpr decltype(devhost_hooks::disconnect) disconnect_hook()
    {
        if constexpr (has_disconnect<T>::value) return &disconnect; else return nullptr;
    }
    static constexpr decltype(devhost_hooks::lock) lock_hook()
    {
        if constexpr (has_lock<T>::value) return &lock; else return nullptr;
    }
    static constexpr decltype(devhost_hooks::unlock) unlock_hook()
    {
        if constexpr (has_unlock<T>::value) return &unlock; else return nullptr;
    }
    static constexpr decltype(devhost_hooks::info) info_hook()
    {
        if constexpr (has_info<T>::value) return &info; else return nullptr;
    }
    static constexpr decltype(devhost_hooks::transfer) transfer_hook()
    {
        if constexpr (has_transfer<T>::value) return &transfer; else return nullptr;
    }

    static constexpr devhost_hooks table = {
        sizeof(devhost_hooks), 0, &open, &close, connect_hook(), disconnect_hook(),
        lock_hook(), unlock_hook(), info_hook(), transfer_hook(),
    };
};

}  // namespace detail

// The hook table for T, valid while the library is loaded.
template <class T>
constexpr const devhost_hooks *hooks_for() noexcept
{
    return &detail::hooks<T>::table;
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

// The host's services (log, clock), or NULL before negotiation.
inline const devhost_host_services *host_services() noexcept { return detail::services_slot(); }

// Logs one line through the host, for the device whose host_device token
// was in its open params (NULL: not about a device).
inline void log(const devhost_host_device *device, devhost_log_level level, const std::string &message) noexcept
{
    const devhost_host_services *s = host_services();
    if (s && s->log)
        s->log(device, level, message.c_str());
}

// The negotiation for a plugin speaking ABI 1.x: answers the header's version
// (or the host's, if that is an older 1.x), stores the services and hands
// over `descriptor`. Refuses a host of another major.
inline devhost_status negotiate(devhost_negotiation *n, const devhost_plugin_descriptor &descriptor) noexcept
{
    if (!n)
        return DEVHOST_E_INVALID;
    if (DEVHOST_VERSION_MAJOR(n->host_abi_version) != DEVHOST_ABI_VERSION_MAJOR) {
        devhost_error_set(n->error, 0, "plugin speaks ABI %u.x, the host offers %u.%u",
                          static_cast<unsigned>(DEVHOST_ABI_VERSION_MAJOR),
                          static_cast<unsigned>(DEVHOST_VERSION_MAJOR(n->host_abi_version)),
                          static_cast<unsigned>(DEVHOST_VERSION_MINOR(n->host_abi_version)));
        return DEVHOST_E_UNSUPPORTED;
    }
    n->plugin_abi_version = n->host_abi_version < DEVHOST_ABI_VERSION ? n->host_abi_version : DEVHOST_ABI_VERSION;
    detail::services_slot() = n->services;
    n->descriptor = &descriptor;
    return DEVHOST_OK;
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
