// A device handle: one configured device driven through its plugin's hooks.
// It tracks which of open, connected and locked hold, checks every call's
// precondition before calling the plugin (refusing with DEVHOST_E_STATE), and
// answers DEVHOST_E_UNSUPPORTED for hooks the plugin leaves NULL. It keeps the
// plugin's library loaded while the device exists, and owns the device's
// cancel handle (an eventfd).
#pragma once

#include "deadlines.hpp"
#include "faults.hpp"
#include "lifecycle.hpp"
#include "loader.hpp"
#include "options.hpp"
#include "watch_table.hpp"

#include <devhost/plugin.h>
#include <devhost/unique_fd.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct devhost_host_device;

namespace devhost {

// What a hook call came to.
struct Outcome {
    devhost_status status = DEVHOST_OK;
    std::string message;  // empty on success
    int os_errno = 0;
    bool ok() const { return status == DEVHOST_OK; }
};

struct OpenRequest {
    std::string path;             // resolved Linux path (or class path)
    std::string configured_path;  // as written in the config
    // Configured option values by name, validated here against the plugin's
    // schema (unknown name or bad value: DEVHOST_E_INVALID, no hook called).
    std::map<std::string, std::string> options;
    bool inherit = false;
    int32_t timeout_ms = -1;
    // The values already resolved against the schema (check's plan carries
    // them); when NULL, `options` is resolved here.
    const OptionValues *values = nullptr;
};

struct ConnectRequest {
    std::optional<std::vector<uint8_t>> context;
    std::optional<uint32_t> context_size;  // default: the context's length
    // The step's other pairs. A value may hold NUL bytes (DATA's \x00): the
    // plugin gets it whole in sized_args, cut at the first NUL in args.
    std::vector<std::pair<std::string, std::string>> args;
    int32_t timeout_ms = -1;
};

using InfoList = std::vector<std::pair<std::string, std::string>>;

// "write", "read until", ...: a transfer op's name for messages.
const char *op_name(uint32_t op);

class Device {
public:
    Device(std::shared_ptr<const Plugin> plugin, std::string name);
    // Releases whatever is still held, in the lifecycle's unwind order.
    ~Device();
    Device(const Device &) = delete;
    Device &operator=(const Device &) = delete;

    const std::string &name() const { return name_; }
    const Plugin &plugin() const { return *plugin_; }

    // Every call has a deadline (deadlines.hpp): open, connect, lock and
    // transfer from their timeout_ms, the others from `timeout_ms` here
    // (-1: none). The plugin reads it through services->deadline_ns; a call
    // that returns past it (and its slack) comes to DEVHOST_E_TIMEOUT,
    // "plugin overran its deadline by N ms", whatever the plugin answered
    // (what it did still counts: a late but successful connect connected).
    Outcome open(const OpenRequest &request);
    Outcome connect(const ConnectRequest &request);
    Outcome info(InfoList &out, int32_t timeout_ms = default_hook_timeout_ms);
    Outcome lock(int32_t timeout_ms);
    // The caller fills op, buffers, timeout and the rest; struct_size is set
    // here. Checks the op is declared and the class's precondition holds.
    Outcome transfer(devhost_transfer &xfer);
    Outcome unlock(int32_t timeout_ms = default_hook_timeout_ms);
    Outcome disconnect(int32_t timeout_ms = default_hook_timeout_ms);
    Outcome close(int32_t timeout_ms = default_hook_timeout_ms);

    const DeviceState &state() const { return state_; }
    const ClassRules &rules() const { return rules_; }
    bool is_open() const { return state_.open; }
    bool is_connected() const { return state_.connected; }
    bool is_locked() const { return state_.locked; }
    bool was_closed() const { return state_.closed; }
    // Calls the release hook (unlock, disconnect or close) named by `hook`.
    Outcome release(Hook hook, int32_t timeout_ms = default_hook_timeout_ms);

    // Test mode: faults to inject into this device's hook calls, through a
    // FaultInjector wrapped around the plugin's hooks. Call before open.
    void set_faults(FaultSchedule faults);

    // Supervised (in a worker): each hook call is published in `watch` (the
    // supervisor's watch table), the plugin's share_fd calls go to the
    // supervisor as this device's `slot`, and the cancel handle is
    // `cancel_fd`, which the supervisor holds too and fires at a deadline.
    // Call before open.
    void supervise(HookWatch *watch, int32_t slot, UniqueFd cancel_fd);
    HookWatch *watch() const { return watch_; }

    // Makes the cancel handle readable: a hook blocked in the plugin returns
    // DEVHOST_E_CANCELLED. Thread-safe; cannot be undone.
    void cancel();
    bool cancelled() const { return cancelled_.load(); }
    int cancel_fd() const { return cancel_fd_.get(); }

private:
    // DEVHOST_E_STATE for a call the lifecycle does not allow, or nullopt.
    std::optional<Outcome> refuse(Hook hook, const char *call) const;
    Outcome call_failed(devhost_status status, const devhost_error &err, const char *hook) const;
    // What connect or lock came to: held only when the plugin said OK.
    Outcome acquired(Hook hook, devhost_status status, const devhost_error &err, const char *call);
    // Unlock or disconnect through the plugin's `slot`: released whatever the
    // plugin answers, and nothing to call when it left the hook NULL.
    Outcome release_by(Hook hook, const char *call, int32_t timeout_ms,
                       devhost_status (*devhost_hooks::*slot)(devhost_device *, devhost_error *));
    // Sets the deadline of the call about to be made (deadline_ns answers
    // it) and returns it.
    uint64_t arm(int64_t timeout_ms, Hook hook);
    // After a call armed with `deadline`: the deadline is cleared, and an
    // overrun turns `outcome` into DEVHOST_E_TIMEOUT. `enforced`: whether
    // this plugin is held to this hook's deadline.
    Outcome kept(uint64_t deadline, bool enforced, const char *call, Outcome outcome);
    // The hooks calls go through: the plugin's, or the fault injector's.
    const devhost_hooks &hooks() const { return faults_ ? faults_->hooks() : plugin_->hooks(); }

    std::shared_ptr<const Plugin> plugin_;
    std::string name_;
    std::unique_ptr<devhost_host_device> token_;  // what the plugin logs with
    devhost_device *handle_ = nullptr;
    ClassRules rules_;
    DeviceState state_;
    UniqueFd cancel_fd_;
    std::atomic<bool> cancelled_{false};
    std::unique_ptr<FaultInjector> faults_;  // test mode only
    HookWatch *watch_ = nullptr;             // supervised only
};

}  // namespace devhost
