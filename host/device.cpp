#include "device.hpp"

#include "logging.hpp"
#include "options.hpp"
#include "steps.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <sys/eventfd.h>
#include <unistd.h>

namespace devhost {

namespace {

devhost_error fresh_error()
{
    devhost_error err{};
    err.struct_size = sizeof err;
    return err;
}

}  // namespace

Device::Device(std::shared_ptr<const Plugin> plugin, std::string name)
    : plugin_(std::move(plugin)), name_(std::move(name)), token_(std::make_unique<devhost_host_device>())
{
    token_->name = name_;
    rules_ = {plugin_->lock_requires(), plugin_->transfer_requires()};
    cancel_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!cancel_fd_)
        throw std::system_error(errno, std::generic_category(), "cannot make its cancel handle (eventfd)");
}

Device::~Device()
{
    for (Hook hook : unwind_order(state_, rules_))
        release(hook);
}

Outcome Device::release(Hook hook, int32_t timeout_ms)
{
    switch (hook) {
    case Hook::Unlock: return unlock(timeout_ms);
    case Hook::Disconnect: return disconnect(timeout_ms);
    case Hook::Close: return close(timeout_ms);
    default: return {DEVHOST_E_INVALID, std::string(hook_name(hook)) + " is not a release", 0};
    }
}

void Device::supervise(HookWatch *watch, int32_t slot, UniqueFd cancel_fd)
{
    watch_ = watch;
    token_->slot = slot;
    if (cancel_fd)
        cancel_fd_ = std::move(cancel_fd);
}

void Device::cancel()
{
    cancelled_ = true;
    uint64_t one = 1;
    // Cannot fail short of a counter overflow: eventfd writes of 1 are atomic.
    [[maybe_unused]] ssize_t n = ::write(cancel_fd_.get(), &one, sizeof one);
}

namespace {

// What a refused call needed, as Device's messages say it.
const char *needed(Need need)
{
    switch (need) {
    case Need::None:
    case Need::NotClosed: return "";
    case Need::Open: return "an open device";
    case Need::NotOpen: return "a device that is not open yet";
    case Need::NotConnected: return "a device that is not connected yet";
    case Need::NotLocked: return "a device that is not locked yet";
    case Need::Connected: return "a connected device";
    case Need::Locked: return "a locked device";
    case Need::ConnectedForLock: return "a connected device (class requires connect before lock)";
    case Need::ConnectedForTransfer: return "a connected device (class requires connect before transfers)";
    case Need::LockedForTransfer: return "a locked device (class requires lock before transfers)";
    }
    return "";
}

}  // namespace

std::optional<Outcome> Device::refuse(Hook hook, const char *call) const
{
    const Need need = needs(hook, state_, rules_);
    if (need == Need::None)
        return std::nullopt;
    if (need == Need::NotClosed)
        return Outcome{DEVHOST_E_STATE, std::string(call) + " on device '" + name_ + "' after close", 0};
    return Outcome{DEVHOST_E_STATE, std::string(call) + " on device '" + name_ + "' needs " + needed(need), 0};
}

Outcome Device::call_failed(devhost_status status, const devhost_error &err, const char *hook) const
{
    Outcome o;
    o.status = status;
    o.os_errno = err.os_errno;
    std::string message(err.message, strnlen(err.message, sizeof err.message));
    o.message = message.empty() ? std::string(hook) + " failed: " + devhost_status_name(status) : message;
    return o;
}

Outcome Device::acquired(Hook hook, devhost_status status, const devhost_error &err, const char *call)
{
    apply(hook, status == DEVHOST_OK, state_);
    return status == DEVHOST_OK ? Outcome{} : call_failed(status, err, call);
}

uint64_t Device::arm(int64_t timeout_ms, Hook hook)
{
    token_->deadline_ns = deadline_after(timeout_ms);
    if (watch_)
        watch_->begin(static_cast<int32_t>(hook), token_->deadline_ns);
    return token_->deadline_ns;
}

Outcome Device::kept(uint64_t deadline, bool enforced, const char *call, Outcome outcome)
{
    token_->deadline_ns = DEVHOST_DEADLINE_NONE;
    if (watch_)
        watch_->end();
    if (!enforced)
        return outcome;
    if (auto late = overrun(deadline)) {
        const std::string answered =
            outcome.ok() ? "DEVHOST_OK" : std::string(devhost_status_name(outcome.status)) + ": " + outcome.message;
        spdlog::warn("{}: {}: {} (it returned {})", name_, call, *late, answered);
        return {DEVHOST_E_TIMEOUT, std::string(call) + ": " + *late + " (it returned " + answered + ")",
                outcome.os_errno};
    }
    return outcome;
}

void Device::set_faults(FaultSchedule faults)
{
    if (faults.empty() || handle_)
        return;
    faults_ = std::make_unique<FaultInjector>(plugin_->hooks(), std::move(faults), name_, cancel_fd_.get());
    token_->faults = faults_.get();
}

static Outcome unsupported(const std::string &cls, const char *hook)
{
    return {DEVHOST_E_UNSUPPORTED, "class '" + cls + "' does not support " + hook, 0};
}

Outcome Device::open(const OpenRequest &request)
{
    if (auto refused = refuse(Hook::Open, "open"))
        return *refused;

    // One value per schema entry, in schema order, parsed once.
    std::optional<OptionValues> resolved;
    const OptionValues *options = request.values;
    if (!options) {
        std::string error;
        resolved = resolve_options(*plugin_, request.options, error);
        if (!resolved)
            return {DEVHOST_E_INVALID, error, 0};
        options = &*resolved;
    }
    if (options->size() != plugin_->options().size())
        return {DEVHOST_E_INVALID, "open: " + std::to_string(options->size()) + " option values for a schema of " +
                                       std::to_string(plugin_->options().size()), 0};
    std::vector<devhost_option_value> values;
    values.reserve(options->size());
    for (size_t i = 0; i < options->size(); i++) {
        const OptionSpec &spec = plugin_->options()[i];
        const OptionValue &o = (*options)[i];
        devhost_option_value v{};
        v.struct_size = sizeof v;
        v.type = spec.type;
        v.name = spec.name.c_str();
        v.text = o.text.c_str();
        v.integer = o.integer;
        v.is_set = o.is_set ? 1 : 0;
        values.push_back(v);
    }

    devhost_open_params params{};
    params.struct_size = sizeof params;
    params.flags = request.inherit ? DEVHOST_OPEN_INHERIT : 0;
    params.device_name = name_.c_str();
    params.path = request.path.c_str();
    params.configured_path = request.configured_path.empty() ? request.path.c_str() : request.configured_path.c_str();
    params.options = values.empty() ? nullptr : values.data();
    params.option_count = static_cast<uint32_t>(values.size());
    params.timeout_ms = request.timeout_ms;
    params.cancel_fd = cancel_fd_.get();
    params.host_device = token_.get();

    devhost_error err = fresh_error();
    devhost_device *handle = nullptr;
    const uint64_t deadline = arm(request.timeout_ms, Hook::Open);
    devhost_status status = hooks().open(&params, &handle, &err);
    if (status != DEVHOST_OK) {
        const Outcome failed = kept(deadline, true, "open", call_failed(status, err, "open"));
        if (handle) {
            // A half-built device: the contract says close can take it.
            devhost_error close_err = fresh_error();
            arm(default_hook_timeout_ms, Hook::Close);
            hooks().close(handle, &close_err);
            kept(DEVHOST_DEADLINE_NONE, false, "close", {});
        }
        logging::drop_shared(token_.get());  // whatever it shared before it failed
        return failed;
    }
    if (!handle)
        return kept(deadline, true, "open",
                    {DEVHOST_E_INVALID, "plugin '" + plugin_->name() + "' reported a successful open without a device",
                     0});
    handle_ = handle;
    apply(Hook::Open, true, state_);
    return kept(deadline, true, "open", {});
}

Outcome Device::close(int32_t timeout_ms)
{
    if (auto refused = refuse(Hook::Close, "close"))
        return *refused;
    devhost_error err = fresh_error();
    const uint64_t deadline = arm(timeout_ms, Hook::Close);
    devhost_status status = hooks().close(handle_, &err);
    handle_ = nullptr;  // freed either way, late or not
    logging::drop_shared(token_.get());  // the supervisor's copy goes too
    apply(Hook::Close, status == DEVHOST_OK, state_);
    return kept(deadline, plugin_->speaks_1_1(), "close",
                status == DEVHOST_OK ? Outcome{} : call_failed(status, err, "close"));
}

Outcome Device::connect(const ConnectRequest &request)
{
    if (auto refused = refuse(Hook::Connect, "connect"))
        return *refused;
    if (!hooks().connect)
        return unsupported(plugin_->device_class(), "connect");
    // The pairs twice: as text (cut at a NUL, 1.0's view) and sized (1.1).
    std::vector<devhost_kv> args;
    std::vector<devhost_arg> sized;
    for (const auto &[k, v] : request.args) {
        args.push_back({k.c_str(), v.c_str()});
        devhost_arg a{};
        a.struct_size = sizeof a;
        a.key = k.c_str();
        a.value = reinterpret_cast<const uint8_t *>(v.c_str());  // NUL-terminated past value_size
        a.value_size = v.size();
        sized.push_back(a);
    }
    devhost_connect_params params{};
    params.struct_size = sizeof params;
    if (request.context) {
        if (request.context_size)
            if (auto why = context_size_error(request.context->size(), *request.context_size))
                return {DEVHOST_E_INVALID, "connect: " + *why, 0};
        params.context = request.context->data();
        params.context_size = request.context_size.value_or(static_cast<uint32_t>(request.context->size()));
    } else {
        params.context = nullptr;
        params.context_size = request.context_size.value_or(0);
    }
    params.arg_count = static_cast<uint32_t>(args.size());
    params.args = args.empty() ? nullptr : args.data();
    params.sized_args = sized.empty() ? nullptr : sized.data();
    params.timeout_ms = request.timeout_ms;
    devhost_error err = fresh_error();
    const uint64_t deadline = arm(request.timeout_ms, Hook::Connect);
    const devhost_status status = hooks().connect(handle_, &params, &err);
    return kept(deadline, true, "connect", acquired(Hook::Connect, status, err, "connect"));
}

Outcome Device::release_by(Hook hook, const char *call, int32_t timeout_ms,
                           devhost_status (*devhost_hooks::*slot)(devhost_device *, devhost_error *))
{
    if (auto refused = refuse(hook, call))
        return *refused;
    apply(hook, true, state_);  // released whatever the plugin answers
    if (!(hooks().*slot))
        return {};
    devhost_error err = fresh_error();
    const uint64_t deadline = arm(timeout_ms, hook);
    devhost_status status = (hooks().*slot)(handle_, &err);
    return kept(deadline, plugin_->speaks_1_1(), call,
                status == DEVHOST_OK ? Outcome{} : call_failed(status, err, call));
}

Outcome Device::disconnect(int32_t timeout_ms)
{
    return release_by(Hook::Disconnect, "disconnect", timeout_ms, &devhost_hooks::disconnect);
}

Outcome Device::lock(int32_t timeout_ms)
{
    if (auto refused = refuse(Hook::Lock, "lock"))
        return *refused;
    if (!hooks().lock)
        return unsupported(plugin_->device_class(), "lock");
    devhost_error err = fresh_error();
    const uint64_t deadline = arm(timeout_ms, Hook::Lock);
    const devhost_status status = hooks().lock(handle_, timeout_ms, &err);
    return kept(deadline, true, "lock", acquired(Hook::Lock, status, err, "lock"));
}

Outcome Device::unlock(int32_t timeout_ms)
{
    return release_by(Hook::Unlock, "unlock", timeout_ms, &devhost_hooks::unlock);
}

namespace {

struct InfoCollector {
    InfoList *list;
};

void info_put(void *context, const char *key, const char *value)
{
    auto *c = static_cast<InfoCollector *>(context);
    if (key && c->list->size() < 4096)
        c->list->emplace_back(key, value ? value : "");
}

}  // namespace

Outcome Device::info(InfoList &out, int32_t timeout_ms)
{
    if (auto refused = refuse(Hook::Info, "info"))
        return *refused;
    if (!hooks().info)
        return unsupported(plugin_->device_class(), "info");
    InfoCollector collector{&out};
    devhost_info_sink sink{};
    sink.struct_size = sizeof sink;
    sink.context = &collector;
    sink.put = info_put;
    devhost_error err = fresh_error();
    const uint64_t deadline = arm(timeout_ms, Hook::Info);
    devhost_status status = hooks().info(handle_, &sink, &err);
    return kept(deadline, plugin_->speaks_1_1(), "info",
                status == DEVHOST_OK ? Outcome{} : call_failed(status, err, "info"));
}

const char *op_name(uint32_t op)
{
    switch (op) {
    case DEVHOST_OP_WRITE: return "write";
    case DEVHOST_OP_READ: return "read";
    case DEVHOST_OP_READ_EXACT: return "read exactly";
    case DEVHOST_OP_READ_UNTIL: return "read until";
    case DEVHOST_OP_REQUEST: return "request";
    case DEVHOST_OP_GET_MESSAGE: return "get-message";
    case DEVHOST_OP_REPLY: return "reply";
    case DEVHOST_OP_CONTROL: return "control";
    default: return "unknown op";
    }
}

namespace {

// What a transfer the plugin answered `status` to came to: a success must
// mean the whole op was done, since a plugin that reports OK for part of it
// broke the contract, and the pipeline must not go on as if every byte had
// moved.
Outcome transfer_outcome(const devhost_transfer &xfer, devhost_status status, const Outcome &failed,
                         const char *name)
{
    if (status != DEVHOST_OK)
        return failed;
    const bool sends_all = xfer.op == DEVHOST_OP_WRITE || xfer.op == DEVHOST_OP_REPLY;
    if (sends_all && xfer.out_done < xfer.out_len)
        return {DEVHOST_E_IO,
                std::string(name) + ": plugin reported success after sending " + std::to_string(xfer.out_done) +
                    " of " + std::to_string(xfer.out_len) + " bytes",
                0};
    if (xfer.op == DEVHOST_OP_READ_EXACT && xfer.in_len < xfer.in_capacity)
        return {DEVHOST_E_IO,
                std::string(name) + ": plugin reported success after reading " + std::to_string(xfer.in_len) +
                    " of " + std::to_string(xfer.in_capacity) + " bytes",
                0};
    return {};
}

}  // namespace

Outcome Device::transfer(devhost_transfer &xfer)
{
    const char *name = op_name(xfer.op);
    if (auto refused = refuse(Hook::Transfer, name))
        return *refused;
    if (!plugin_->supports_op(xfer.op) || !hooks().transfer)
        return unsupported(plugin_->device_class(), name);
    xfer.struct_size = sizeof xfer;
    xfer.out_done = 0;
    xfer.in_len = 0;
    devhost_error err = fresh_error();
    const uint64_t deadline = arm(xfer.timeout_ms, Hook::Transfer);
    devhost_status status = hooks().transfer(handle_, &xfer, &err);
    // Never trust a length past the buffer the host owns.
    if (xfer.in_len > xfer.in_capacity)
        xfer.in_len = xfer.in_capacity;
    if (xfer.out_done > xfer.out_len)
        xfer.out_done = xfer.out_len;
    // Late or not, what moved counts (in_len, out_done go to the record).
    const Outcome failed = status == DEVHOST_OK ? Outcome{} : call_failed(status, err, name);
    return kept(deadline, true, name, transfer_outcome(xfer, status, failed, name));
}

}  // namespace devhost
