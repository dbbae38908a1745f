// The serve loop's state (serve.hpp): its devices, its workers, and the
// loop that drives them. serve.cpp holds the loop, signals, notify, reload
// and the control Handler; serve_device.cpp each device's phases, the
// workers' messages, deadlines and deaths.
#pragma once

#include "device_watch.hpp"
#include "notify.hpp"
#include "restart_policy.hpp"
#include "serve.hpp"
#include "watch_table.hpp"
#include "worker_process.hpp"

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <vector>

namespace devhost {

enum class ServeState { Setup, Idle, Running, Stale, Waiting, Failed };
const char *serve_state_name(ServeState state);

struct ServedDevice {
    std::shared_ptr<ServeConfig> source;  // keeps its config and plugin alive
    const DevicePlan *plan = nullptr;
    std::string name;
    int32_t slot = -1;
    UniqueFd cancel;
    Vault vault;
    std::string worker;  // its worker's key
    ServeState state = ServeState::Setup;
    int generation = 0;
    bool set_up = false;    // its setup succeeded and no teardown ran since
    bool setup_ran = false; // READY waits for every device's first setup
    bool started = false;   // `run = start` ran its body
    std::string phase;      // in flight at its worker, "" if none
    uint64_t phase_since_ns = 0;
    uint64_t next_tick_ns = 0, retry_at_ns = 0, last_ok_ns = 0;
    std::optional<std::chrono::system_clock::time_point> last_success;
    uint64_t bodies_ok = 0, bodies_failed = 0, ticks_skipped = 0;
    uint64_t worker_restarts = 0;  // its worker died under it (device_lost)
    int setup_failures = 0;
    std::string message;
    bool pending_body = false;  // start or on-attach asked for one
    bool leaving = false;       // stop or reload: teardown, then forgotten
    // Removal and return (serve_attach.cpp): the device node this attach
    // uses (an identity resolved, or the path), a removal seen (a step's
    // DEVHOST_E_REMOVED, or its node gone) and not yet torn down, when a
    // device seen back is set up (after its settle time), when it was last
    // attached, and how many of its attaches in a row ended soon after.
    std::string resolved;
    bool removed = false;
    uint64_t attach_at_ns = 0, attached_ns = 0;
    int flaps = 0;
    std::vector<std::function<void(nlohmann::json)>> calls_waiting, calls_running;
    uint64_t fired_call = 0;
};

struct ServeWorkerProc {
    std::string key;  // "class NAME" or "device NAME"
    std::shared_ptr<ServeConfig> source;  // its plugin's file and description
    std::shared_ptr<const Plugin> plugin;
    std::unique_ptr<WorkerProcess> process;
    bool started = false;
    uint64_t spawned_ns = 0;
    std::vector<int32_t> given;  // the slots it was given
    std::optional<int32_t> killed_for;
    std::string killed_why, failure;
    uint64_t pings = 0, pongs = 0;
    std::optional<bool> live;  // what it was last told by "live" (serve_worker.cpp)
};

class ServeLoop : public control::Handler {
public:
    explicit ServeLoop(ServeSetup setup);
    int run();

    nlohmann::json list() override;
    void call(const std::string &device, std::function<void(nlohmann::json)> done) override;
    nlohmann::json reset(const std::string &device) override;
    nlohmann::json reload() override;

private:
    // serve.cpp
    void add_devices(const std::shared_ptr<ServeConfig> &config, const std::vector<std::string> &names);
    void on_signal();
    void stop();
    void notify(uint64_t now);
    int poll_timeout(uint64_t now) const;
    void publish(const nlohmann::json &event);
    void publish_state(const ServedDevice &d);
    void set_state(ServedDevice &d, ServeState state, const std::string &message = {});

    // serve_device.cpp
    void schedule(ServedDevice &d, uint64_t now);
    bool send_phase(ServedDevice &d, const std::string &phase, uint64_t now);
    ServeWorkerProc *worker_for(ServedDevice &d);
    void start_worker(ServeWorkerProc &w);
    bool records_watched() const;
    void tell_live(ServeWorkerProc &w, bool live);
    void drain(ServeWorkerProc &w);
    void handle(ServeWorkerProc &w, Message &m);
    void phase_done(ServedDevice &d, const nlohmann::json &body, uint64_t now);
    void watch_deadlines(ServeWorkerProc &w, uint64_t now);
    void worker_died(ServeWorkerProc &w);
    void device_lost(ServeWorkerProc &w, ServedDevice &d, const std::string &cause, bool latched);
    void write_record(const Record &rec);
    void setup_failed(ServedDevice &d, const std::string &failed, uint64_t now);

    // serve_attach.cpp
    bool present(ServedDevice &d, std::string &why);
    void wait_for_device(ServedDevice &d, const std::string &why, uint64_t now);
    void look_at_devices(uint64_t now);
    uint64_t settle_ns(const ServedDevice &d) const;
    ServedDevice *by_slot(int32_t slot);
    ServedDevice *by_name(const std::string &name);
    void forget_left();

    ServeSetup setup_;
    RecordWriter &records_;
    Notifier notifier_;
    std::optional<RestartLedger> ledger_;
    // Each device's failed setups (not removals), by device name: backoff
    // with jitter, and failed after [host] restart-budget within
    // restart-window until a reset (in memory: a restart of serve is one).
    std::optional<RestartLedger> setup_ledger_;
    DeviceWatch watch_;
    bool look_ = true;          // an event came: look at the devices again
    uint64_t next_look_ns_ = 0; // and every few seconds while any waits
    std::optional<WatchTable> table_;
    int32_t next_slot_ = 0;
    std::vector<int32_t> free_slots_;  // of devices forgotten, given again
    std::deque<ServedDevice> devices_;
    std::map<std::string, ServeWorkerProc> workers_;
    // Reload: a changed device's new version, set up once the old is gone.
    std::vector<std::pair<std::shared_ptr<ServeConfig>, std::string>> replacements_;
    std::unique_ptr<ControlPort> control_;
    UniqueFd signals_;
    bool stopping_ = false;
    uint64_t stop_at_ns_ = 0;
    bool ready_sent_ = false;
    uint64_t next_ping_ns_ = 0;
    bool reload_asked_ = false;
};

inline constexpr uint64_t serve_ms_ns = 1'000'000;
// The most devices one serve run holds at once (watch table slots; a
// device that leaves gives its slot back).
inline constexpr size_t serve_max_slots = 4096;

}  // namespace devhost
