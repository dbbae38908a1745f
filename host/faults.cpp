#include "faults.hpp"

#include "logging.hpp"
#include "common/text.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <poll.h>

namespace devhost {

std::optional<devhost_status> parse_status(std::string_view name)
{
    std::string upper;
    for (char c : name)
        upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    for (devhost_status s = 0; s >= DEVHOST_STATUS_LAST; s--) {
        std::string full = devhost_status_name(s);
        if (upper == full || "DEVHOST_" + upper == full || "DEVHOST_E_" + upper == full)
            return s;
    }
    return std::nullopt;
}

std::optional<Fault> parse_fault(std::string_view text_in, std::string &error)
{
    Fault f;
    std::string_view t = text::trim(text_in);
    f.text = std::string(t);
    auto colon = t.find(':');
    if (colon == std::string_view::npos) {
        error = "fault '" + text::excerpt(f.text) + "': expected HOOK[@N]:ACTION";
        return std::nullopt;
    }
    std::string_view hook = t.substr(0, colon), action = t.substr(colon + 1);
    if (auto hash = hook.find('@'); hash != std::string_view::npos) {
        auto n = text::parse_int(hook.substr(hash + 1));
        if (!n || *n < 1 || *n > 1000000000) {
            error = "fault '" + text::excerpt(f.text) + "': @N must be a call number from 1";
            return std::nullopt;
        }
        f.call = static_cast<uint32_t>(*n);
        hook = hook.substr(0, hash);
    }
    bool found = false;
    for (Hook h : all_hooks)
        if (hook == hook_name(h)) {
            f.hook = h;
            found = true;
        }
    if (!found) {
        error = "fault '" + text::excerpt(f.text) + "': unknown hook '" + text::excerpt(hook) +
                "' (expected open, connect, lock, transfer, unlock, disconnect, close or info)";
        return std::nullopt;
    }
    if (action == "block") {
        f.action = Fault::Action::Block;
    } else if (action == "crash") {
        f.action = Fault::Action::Crash;
    } else if (action == "hang") {
        f.action = Fault::Action::Hang;
    } else if (action.rfind("fail=", 0) == 0) {
        f.action = Fault::Action::Fail;
        auto s = parse_status(action.substr(5));
        if (!s || *s == DEVHOST_OK) {
            error = "fault '" + text::excerpt(f.text) + "': unknown status '" + text::excerpt(action.substr(5)) +
                    "' (expected a failure such as io, busy, timeout, removed or DEVHOST_E_IO)";
            return std::nullopt;
        }
        f.status = *s;
    } else if (action.rfind("short=", 0) == 0) {
        f.action = Fault::Action::Short;
        auto n = text::parse_int(action.substr(6));
        if (!n || *n < 0) {
            error = "fault '" + text::excerpt(f.text) + "': short=N needs a byte count";
            return std::nullopt;
        }
        if (f.hook != Hook::Transfer) {
            error = "fault '" + text::excerpt(f.text) + "': short=N applies to transfer only";
            return std::nullopt;
        }
        f.limit = static_cast<size_t>(*n);
    } else {
        error = "fault '" + text::excerpt(f.text) + "': unknown action '" + text::excerpt(action) +
                "' (expected fail=STATUS, block, short=N, crash or hang)";
        return std::nullopt;
    }
    return f;
}

const Fault *FaultSchedule::next(Hook hook)
{
    const uint32_t n = ++calls_[static_cast<int>(hook)];
    for (const auto &f : faults_)
        if (f.hook == hook && (f.call == 0 || f.call == n))
            return &f;
    return nullptr;
}

namespace {

// A hook stuck for good: it sleeps forever, ignoring the cancel handle, the
// deadline and any signal that is handled (EINTR only sleeps again).
// nanosleep is an interruptible sleep, so SIGKILL ends the process at once.
[[noreturn]] void hang_forever()
{
    for (;;) {
        timespec hour{3600, 0};
        ::nanosleep(&hour, nullptr);
    }
}

// A device handle as the injector hands it out: the plugin's own, and the
// injector that wraps it.
struct Wrapped {
    devhost_device *real;
    FaultInjector *injector;
};

Wrapped *unwrap(devhost_device *handle) { return reinterpret_cast<Wrapped *>(handle); }

bool is_release(Hook hook) { return hook == Hook::Unlock || hook == Hook::Disconnect || hook == Hook::Close; }

// Runs `call` (the plugin's hook) under the fault due for this call of `hook`.
template <class Call>
devhost_status guarded(FaultInjector &inj, Hook hook, devhost_error *err, Call &&call)
{
    const Fault *f = inj.next(hook);
    if (!f || f->action == Fault::Action::Short)
        return call(err);
    if (!is_release(hook))
        return inj.inject(*f, hook, err);
    // A release: block (or crash) first if asked, then release for real so
    // that nothing leaks, then report the fault.
    const devhost_status injected = inj.inject(*f, hook, err);
    devhost_error real_err = *err;
    call(&real_err);
    return injected;
}

devhost_status w_open(const devhost_open_params *params, devhost_device **device, devhost_error *err)
{
    FaultInjector &inj = *params->host_device->faults;
    const Fault *f = inj.next(Hook::Open);
    if (f)
        return inj.inject(*f, Hook::Open, err);
    devhost_device *real = nullptr;
    devhost_status status = inj.real().open(params, &real, err);
    if (real)  // also half-opened on failure: the host's close takes it
        *device = reinterpret_cast<devhost_device *>(new Wrapped{real, &inj});
    return status;
}

// Calls the plugin's hook `slot` (a member of devhost_hooks) on the wrapped
// device under the fault due for this call of `hook`; `args` go between the
// device and the error record.
template <class Slot, class... Args>
devhost_status forward(devhost_device *device, Hook hook, Slot slot, devhost_error *err, Args... args)
{
    Wrapped *w = unwrap(device);
    return guarded(*w->injector, hook, err,
                   [&](devhost_error *e) { return (w->injector->real().*slot)(w->real, args..., e); });
}

devhost_status w_close(devhost_device *device, devhost_error *err)
{
    Wrapped *w = unwrap(device);
    devhost_status status = forward(device, Hook::Close, &devhost_hooks::close, err);
    delete w;
    return status;
}

devhost_status w_connect(devhost_device *device, const devhost_connect_params *params, devhost_error *err)
{
    return forward(device, Hook::Connect, &devhost_hooks::connect, err, params);
}

devhost_status w_disconnect(devhost_device *device, devhost_error *err)
{
    return forward(device, Hook::Disconnect, &devhost_hooks::disconnect, err);
}

devhost_status w_lock(devhost_device *device, int32_t timeout_ms, devhost_error *err)
{
    return forward(device, Hook::Lock, &devhost_hooks::lock, err, timeout_ms);
}

devhost_status w_unlock(devhost_device *device, devhost_error *err)
{
    return forward(device, Hook::Unlock, &devhost_hooks::unlock, err);
}

devhost_status w_info(devhost_device *device, const devhost_info_sink *sink, devhost_error *err)
{
    return forward(device, Hook::Info, &devhost_hooks::info, err, sink);
}

devhost_status w_transfer(devhost_device *device, devhost_transfer *x, devhost_error *err)
{
    Wrapped *w = unwrap(device);
    FaultInjector &inj = *w->injector;
    const Fault *f = inj.next(Hook::Transfer);
    if (f && f->action != Fault::Action::Short)
        return inj.inject(*f, Hook::Transfer, err);
    const size_t full_out = x->out_len, full_in = x->in_capacity;
    if (f) {  // short=N: the plugin sees at most N bytes each way
        x->out_len = std::min(x->out_len, f->limit);
        x->in_capacity = std::min(x->in_capacity, f->limit);
    }
    devhost_status status = inj.real().transfer(w->real, x, err);
    x->out_len = full_out;
    x->in_capacity = full_in;
    return status;
}

}  // namespace

FaultInjector::FaultInjector(const devhost_hooks &real, FaultSchedule schedule, std::string device, int cancel_fd)
    : real_(real), schedule_(std::move(schedule)), device_(std::move(device)), cancel_fd_(cancel_fd)
{
    table_ = devhost_hooks{};
    table_.struct_size = sizeof table_;
    table_.open = w_open;
    table_.close = w_close;
    table_.connect = real.connect ? w_connect : nullptr;
    table_.disconnect = real.disconnect ? w_disconnect : nullptr;
    table_.lock = real.lock ? w_lock : nullptr;
    table_.unlock = real.unlock ? w_unlock : nullptr;
    table_.info = real.info ? w_info : nullptr;
    table_.transfer = real.transfer ? w_transfer : nullptr;
}

const Fault *FaultInjector::next(Hook hook)
{
    const Fault *f = schedule_.next(hook);
    if (f)
        spdlog::warn("{}: injecting fault '{}'", device_, f->text);
    return f;
}

devhost_status FaultInjector::inject(const Fault &f, Hook hook, devhost_error *err) const
{
    (void)hook;
    switch (f.action) {
    case Fault::Action::Crash: {
        // Die the way a faulting plugin would kill an unprotected host: the
        // default action, whatever handler a sanitizer or the environment put
        // in place, and even if the signal was blocked or ignored.
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        ::sigaction(SIGSEGV, &dfl, nullptr);
        sigset_t segv;
        sigemptyset(&segv);
        sigaddset(&segv, SIGSEGV);
        ::pthread_sigmask(SIG_UNBLOCK, &segv, nullptr);
        std::raise(SIGSEGV);
        return devhost_fail(err, DEVHOST_E_IO, 0, "injected crash did not crash");
    }
    case Fault::Action::Block: {
        pollfd p{cancel_fd_, POLLIN, 0};
        while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
        }
        return devhost_fail(err, DEVHOST_E_CANCELLED, 0, "injected fault '%s': blocked until cancelled",
                            f.text.c_str());
    }
    case Fault::Action::Hang: hang_forever();
    case Fault::Action::Fail: return devhost_fail(err, f.status, 0, "injected fault '%s'", f.text.c_str());
    case Fault::Action::Short: break;
    }
    return DEVHOST_OK;
}

}  // namespace devhost
