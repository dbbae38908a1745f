#include "device.hpp"

#include "logging.hpp"
#include "options.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <poll.h>
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
    cancel_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (cancel_fd_ < 0)
        throw std::system_error(errno, std::generic_category(), "cannot make its cancel handle (eventfd)");
}

Device::~Device()
{
    if (locked_)
        unlock();
    if (connected_)
        disconnect();
    if (open_)
        close();
    ::close(cancel_fd_);
}

void Device::cancel()
{
    cancelled_ = true;
    uint64_t one = 1;
    // Cannot fail short of a counter overflow: eventfd writes of 1 are atomic.
    [[maybe_unused]] ssize_t n = ::write(cancel_fd_, &one, sizeof one);
}

Outcome Device::refuse_state(const char *hook, const char *needs) const
{
    Outcome o;
    o.status = DEVHOST_E_STATE;
    if (closed_)
        o.message = std::string(hook) + " on device '" + name_ + "' after close";
    else
        o.message = std::string(hook) + " on device '" + name_ + "' needs " + needs;
    return o;
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

std::optional<Outcome> Device::fault_before(Hook hook, const Fault *&pending)
{
    pending = nullptr;
    if (faults_.empty())
        return std::nullopt;
    const Fault *f = faults_.next(hook);
    if (!f)
        return std::nullopt;
    spdlog::warn("{}: injecting fault '{}'", name_, f->text);
    switch (f->action) {
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
        return Outcome{DEVHOST_E_IO, "injected crash did not crash", 0};
    }
    case Fault::Action::Block: {
        pollfd p{cancel_fd_, POLLIN, 0};
        while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
        }
        return Outcome{DEVHOST_E_CANCELLED, "injected fault '" + f->text + "': blocked until cancelled", 0};
    }
    case Fault::Action::Fail:
        if (hook == Hook::Unlock || hook == Hook::Disconnect || hook == Hook::Close) {
            pending = f;  // release for real, then report the failure
            return std::nullopt;
        }
        return Outcome{f->status, "injected fault '" + f->text + "'", 0};
    case Fault::Action::Short:
        pending = f;
        return std::nullopt;
    }
    return std::nullopt;
}

Outcome Device::fault_after(const Fault *pending, Outcome real) const
{
    if (pending && pending->action == Fault::Action::Fail)
        return Outcome{pending->status, "injected fault '" + pending->text + "'", 0};
    return real;
}

static Outcome unsupported(const std::string &cls, const char *hook)
{
    return {DEVHOST_E_UNSUPPORTED, "class '" + cls + "' does not support " + hook, 0};
}

Outcome Device::open(const OpenRequest &request)
{
    if (closed_ || open_)
        return refuse_state("open", "a device that is not open yet");

    // One value per schema entry, in schema order; configured values are
    // validated, the rest take their defaults.
    std::vector<std::string> texts;
    std::vector<devhost_option_value> values;
    texts.reserve(plugin_->options().size());
    for (const auto &[key, value] : request.options)
        if (!plugin_->find_option(key))
            return {DEVHOST_E_INVALID, "unknown option '" + key + "' for class '" + plugin_->device_class() + "'", 0};
    for (const auto &spec : plugin_->options()) {
        devhost_option_value v{};
        v.struct_size = sizeof v;
        v.type = spec.type;
        auto it = request.options.find(spec.name);
        std::optional<std::string> text;
        if (it != request.options.end())
            text = it->second;
        else
            text = spec.default_value;
        if (text) {
            std::string error;
            auto parsed = parse_option_value(spec, *text, error);
            if (!parsed)
                return {DEVHOST_E_INVALID, "option '" + spec.name + "': " + error, 0};
            v.integer = *parsed;
            v.is_set = 1;
        }
        texts.push_back(text.value_or(""));
        values.push_back(v);
    }
    for (size_t i = 0; i < values.size(); i++) {
        values[i].name = plugin_->options()[i].name.c_str();
        values[i].text = texts[i].c_str();
    }

    const Fault *pending = nullptr;
    if (auto injected = fault_before(Hook::Open, pending))
        return *injected;

    devhost_open_params params{};
    params.struct_size = sizeof params;
    params.flags = request.inherit ? DEVHOST_OPEN_INHERIT : 0;
    params.device_name = name_.c_str();
    params.path = request.path.c_str();
    params.configured_path = request.configured_path.empty() ? request.path.c_str() : request.configured_path.c_str();
    params.options = values.empty() ? nullptr : values.data();
    params.option_count = static_cast<uint32_t>(values.size());
    params.timeout_ms = request.timeout_ms;
    params.cancel_fd = cancel_fd_;
    params.host_device = token_.get();

    devhost_error err = fresh_error();
    devhost_device *handle = nullptr;
    devhost_status status = plugin_->hooks().open(&params, &handle, &err);
    if (status != DEVHOST_OK) {
        if (handle) {
            // A half-built device: the contract says close can take it.
            devhost_error close_err = fresh_error();
            plugin_->hooks().close(handle, &close_err);
        }
        return call_failed(status, err, "open");
    }
    if (!handle)
        return {DEVHOST_E_INVALID, "plugin '" + plugin_->name() + "' reported a successful open without a device", 0};
    handle_ = handle;
    open_ = true;
    return {};
}

Outcome Device::close()
{
    if (!open_)
        return refuse_state("close", "an open device");
    const Fault *pending = nullptr;
    std::optional<Outcome> injected = fault_before(Hook::Close, pending);
    devhost_error err = fresh_error();
    devhost_status status = plugin_->hooks().close(handle_, &err);
    handle_ = nullptr;
    open_ = connected_ = locked_ = false;
    closed_ = true;
    if (injected)  // block or crash: the plugin's close still ran, above
        return *injected;
    return fault_after(pending, status == DEVHOST_OK ? Outcome{} : call_failed(status, err, "close"));
}

Outcome Device::connect(const ConnectRequest &request)
{
    if (!open_)
        return refuse_state("connect", "an open device");
    if (connected_)
        return refuse_state("connect", "a device that is not connected yet");
    if (!plugin_->hooks().connect)
        return unsupported(plugin_->device_class(), "connect");
    const Fault *pending = nullptr;
    if (auto injected = fault_before(Hook::Connect, pending))
        return *injected;
    std::vector<devhost_kv> args;
    for (const auto &[k, v] : request.args)
        args.push_back({k.c_str(), v.c_str()});
    devhost_connect_params params{};
    params.struct_size = sizeof params;
    if (request.context) {
        if (request.context_size && *request.context_size > request.context->size())
            return {DEVHOST_E_INVALID,
                    "connect: context-size " + std::to_string(*request.context_size) + " is larger than the context (" +
                        std::to_string(request.context->size()) + " bytes)",
                    0};
        params.context = request.context->data();
        params.context_size = request.context_size.value_or(static_cast<uint32_t>(request.context->size()));
    } else {
        params.context = nullptr;
        params.context_size = request.context_size.value_or(0);
    }
    params.arg_count = static_cast<uint32_t>(args.size());
    params.args = args.empty() ? nullptr : args.data();
    params.timeout_ms = request.timeout_ms;
    devhost_error err = fresh_error();
    devhost_status status = plugin_->hooks().connect(handle_, &params, &err);
    if (status != DEVHOST_OK)
        return call_failed(status, err, "connect");
    connected_ = true;
    return {};
}

Outcome Device::disconnect()
{
    if (!connected_)
        return refuse_state("disconnect", "a connected device");
    connected_ = false;
    const Fault *pending = nullptr;
    std::optional<Outcome> injected = fault_before(Hook::Disconnect, pending);
    Outcome real;
    if (plugin_->hooks().disconnect) {
        devhost_error err = fresh_error();
        devhost_status status = plugin_->hooks().disconnect(handle_, &err);
        real = status == DEVHOST_OK ? Outcome{} : call_failed(status, err, "disconnect");
    }
    return injected ? *injected : fault_after(pending, real);
}

Outcome Device::lock(int32_t timeout_ms)
{
    if (!open_)
        return refuse_state("lock", "an open device");
    if ((plugin_->lock_requires() & DEVHOST_REQUIRES_CONNECTED) && !connected_)
        return refuse_state("lock", "a connected device (class requires connect before lock)");
    if (locked_)
        return refuse_state("lock", "a device that is not locked yet");
    if (!plugin_->hooks().lock)
        return unsupported(plugin_->device_class(), "lock");
    const Fault *pending = nullptr;
    if (auto injected = fault_before(Hook::Lock, pending))
        return *injected;
    devhost_error err = fresh_error();
    devhost_status status = plugin_->hooks().lock(handle_, timeout_ms, &err);
    if (status != DEVHOST_OK)
        return call_failed(status, err, "lock");
    locked_ = true;
    return {};
}

Outcome Device::unlock()
{
    if (!locked_)
        return refuse_state("unlock", "a locked device");
    locked_ = false;
    const Fault *pending = nullptr;
    std::optional<Outcome> injected = fault_before(Hook::Unlock, pending);
    Outcome real;
    if (plugin_->hooks().unlock) {
        devhost_error err = fresh_error();
        devhost_status status = plugin_->hooks().unlock(handle_, &err);
        real = status == DEVHOST_OK ? Outcome{} : call_failed(status, err, "unlock");
    }
    return injected ? *injected : fault_after(pending, real);
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

Outcome Device::info(InfoList &out)
{
    if (!open_)
        return refuse_state("info", "an open device");
    if (!plugin_->hooks().info)
        return unsupported(plugin_->device_class(), "info");
    const Fault *pending = nullptr;
    if (auto injected = fault_before(Hook::Info, pending))
        return *injected;
    InfoCollector collector{&out};
    devhost_info_sink sink{};
    sink.struct_size = sizeof sink;
    sink.context = &collector;
    sink.put = info_put;
    devhost_error err = fresh_error();
    devhost_status status = plugin_->hooks().info(handle_, &sink, &err);
    return status == DEVHOST_OK ? Outcome{} : call_failed(status, err, "info");
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

Outcome Device::transfer(devhost_transfer &xfer)
{
    const char *name = op_name(xfer.op);
    if (!open_)
        return refuse_state(name, "an open device");
    if ((plugin_->transfer_requires() & DEVHOST_REQUIRES_CONNECTED) && !connected_)
        return refuse_state(name, "a connected device (class requires connect before transfers)");
    if ((plugin_->transfer_requires() & DEVHOST_REQUIRES_LOCKED) && !locked_)
        return refuse_state(name, "a locked device (class requires lock before transfers)");
    if (!plugin_->supports_op(xfer.op) || !plugin_->hooks().transfer)
        return unsupported(plugin_->device_class(), name);
    xfer.struct_size = sizeof xfer;
    xfer.out_done = 0;
    xfer.in_len = 0;
    const Fault *pending = nullptr;
    if (auto injected = fault_before(Hook::Transfer, pending))
        return *injected;
    const size_t full_out = xfer.out_len, full_in = xfer.in_capacity;
    if (pending && pending->action == Fault::Action::Short) {
        xfer.out_len = std::min(xfer.out_len, pending->limit);
        xfer.in_capacity = std::min(xfer.in_capacity, pending->limit);
    }
    devhost_error err = fresh_error();
    devhost_status status = plugin_->hooks().transfer(handle_, &xfer, &err);
    xfer.out_len = full_out;
    xfer.in_capacity = full_in;
    // Never trust a length past the buffer the host owns.
    if (xfer.in_len > xfer.in_capacity)
        xfer.in_len = xfer.in_capacity;
    if (xfer.out_done > xfer.out_len)
        xfer.out_done = xfer.out_len;
    if (status != DEVHOST_OK)
        return call_failed(status, err, name);
    // A success must mean the whole op was done: a plugin that reports OK
    // for part of it broke the contract, and the pipeline must not go on as
    // if every byte had moved.
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

}  // namespace devhost
