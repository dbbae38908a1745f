// RawDevice: the plugin's hooks, called as the host calls them.
#include "raw_device.hpp"

#include "deadlines.hpp"
#include "options.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <time.h>
#include <vector>

namespace devhost::conformance {

int64_t now_ms()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int open_fd_count()
{
    int n = 0;
    for ([[maybe_unused]] const auto &entry : std::filesystem::directory_iterator("/proc/self/fd"))
        n++;
    return n - 1;  // the iterator's own descriptor
}

namespace {

devhost_error fresh_error()
{
    devhost_error err{};
    err.struct_size = sizeof err;
    return err;
}

// Times one hook call, with the hook's deadline (deadline_ns(NULL)) set.
template <typename F>
Call timed(int64_t timeout_ms, F &&hook)
{
    devhost_error err = fresh_error();
    EnumerateDeadline deadline(deadline_after(timeout_ms));
    const int64_t start = now_ms();
    Call call;
    call.status = hook(&err);
    call.elapsed_ms = now_ms() - start;
    err.message[sizeof err.message - 1] = '\0';
    call.message = err.message;
    return call;
}

}  // namespace

RawDevice::RawDevice(const Context &ctx)
    : ctx_(ctx), hooks_(ctx.plugin->hooks()), cancel_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
{
    if (!cancel_)
        throw std::runtime_error("eventfd failed");
}

RawDevice::~RawDevice()
{
    if (handle_)
        close();
}

Call RawDevice::open(const std::string &path, int32_t timeout_ms)
{
    std::string error;
    auto values = resolve_options(*ctx_.plugin, ctx_.options, error);
    if (!values)
        return {DEVHOST_E_INVALID, "--option: " + error, 0};
    std::vector<devhost_option_value> raw;
    for (size_t i = 0; i < values->size(); i++) {
        devhost_option_value v{};
        v.struct_size = sizeof v;
        v.type = ctx_.plugin->options()[i].type;
        v.name = ctx_.plugin->options()[i].name.c_str();
        v.text = (*values)[i].text.c_str();
        v.integer = (*values)[i].integer;
        v.is_set = (*values)[i].is_set ? 1 : 0;
        raw.push_back(v);
    }
    devhost_open_params params{};
    params.struct_size = sizeof params;
    params.device_name = "conformance";
    params.path = path.c_str();
    params.configured_path = path.c_str();
    params.options = raw.empty() ? nullptr : raw.data();
    params.option_count = static_cast<uint32_t>(raw.size());
    params.timeout_ms = timeout_ms;
    params.cancel_fd = cancel_.get();
    return timed(timeout_ms, [&](devhost_error *err) { return hooks_.open(&params, &handle_, err); });
}

Call RawDevice::connect()
{
    if (!hooks_.connect)
        return {DEVHOST_E_UNSUPPORTED, "no connect hook", 0};
    devhost_connect_params params{};
    params.struct_size = sizeof params;
    params.timeout_ms = 5000;
    return timed(5000, [&](devhost_error *err) { return hooks_.connect(handle_, &params, err); });
}

Call RawDevice::lock(int32_t timeout_ms)
{
    if (!hooks_.lock)
        return {DEVHOST_E_UNSUPPORTED, "no lock hook", 0};
    return timed(timeout_ms, [&](devhost_error *err) { return hooks_.lock(handle_, timeout_ms, err); });
}

Call RawDevice::unlock()
{
    if (!hooks_.unlock)
        return {};
    return timed(5000, [&](devhost_error *err) { return hooks_.unlock(handle_, err); });
}

Call RawDevice::prepare()
{
    const uint32_t needs = ctx_.plugin->transfer_requires() | ctx_.plugin->lock_requires();
    if (needs & DEVHOST_REQUIRES_CONNECTED) {
        Call c = connect();
        if (c.status != DEVHOST_OK)
            return c;
    }
    if (ctx_.plugin->transfer_requires() & DEVHOST_REQUIRES_LOCKED)
        return lock(5000);
    return {};
}

Call RawDevice::transfer(devhost_transfer &xfer)
{
    if (!hooks_.transfer)
        return {DEVHOST_E_UNSUPPORTED, "no transfer hook", 0};
    xfer.struct_size = sizeof xfer;
    return timed(xfer.timeout_ms, [&](devhost_error *err) { return hooks_.transfer(handle_, &xfer, err); });
}

Call RawDevice::close()
{
    devhost_device *handle = handle_;
    if (!handle)
        return {};
    handle_ = nullptr;
    return timed(5000, [&](devhost_error *err) { return hooks_.close(handle, err); });
}

void RawDevice::cancel()
{
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(cancel_.get(), &one, sizeof one);
}

}  // namespace devhost::conformance
