// A test plugin that breaks the C ABI on purpose: its transfer hook throws a
// C++ exception into the host instead of returning a status. A write of
// "int" throws an int (not even a std::exception); any other write throws
// std::runtime_error. Every other hook succeeds. The host must turn either
// into a failed step, unwind the device and leave nothing behind that a
// later cancel could follow (engine_exception_test.cpp loads it for real).
#include <devhost/plugin.h>

#include <stdexcept>
#include <string>

struct devhost_device {
    int unused;
};

namespace {

devhost_status t_open(const devhost_open_params *, devhost_device **device, devhost_error *)
{
    *device = new devhost_device{};
    return DEVHOST_OK;
}

devhost_status t_close(devhost_device *device, devhost_error *)
{
    delete device;
    return DEVHOST_OK;
}

devhost_status t_lock(devhost_device *, int32_t, devhost_error *) { return DEVHOST_OK; }

devhost_status t_unlock(devhost_device *, devhost_error *) { return DEVHOST_OK; }

devhost_status t_transfer(devhost_device *, devhost_transfer *x, devhost_error *)
{
    const std::string data(reinterpret_cast<const char *>(x->out), x->out_len);
    if (data == "int")
        throw 42;
    throw std::runtime_error("the plugin threw through the C ABI");
}

const devhost_hooks hooks = [] {
    devhost_hooks h{};
    h.struct_size = sizeof h;
    h.open = t_open;
    h.close = t_close;
    h.lock = t_lock;
    h.unlock = t_unlock;
    h.transfer = t_transfer;
    return h;
}();

const devhost_plugin_descriptor descriptor = [] {
    devhost_plugin_descriptor d{};
    d.struct_size = sizeof d;
    d.name = "throwing";
    d.device_class = "throwing";
    d.version = "1.0.0";
    d.description = "throws through the C ABI from transfer (a test of the host)";
    d.hooks = &hooks;
    d.transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_WRITE);
    return d;
}();

}  // namespace

extern "C" DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    n->plugin_abi_version = DEVHOST_MAKE_VERSION(1, 0);
    n->descriptor = &descriptor;
    return DEVHOST_OK;
}
