// The supervisor: runs plugin code only in worker processes (worker.hpp),
// never in its own. It has workers describe the plugin files it checked,
// list a class's devices, and run pipelines: one worker per class, or per
// device (`[host] isolation`). While they run it watches every hook call
// through the watch table (watch_table.hpp): at a call's deadline (plus the
// 20 ms slack) it fires the device's cancel handle, and when the call has
// still not returned `kill-grace` later it kills the worker. It keeps the
// descriptors plugins share (the vault) and, when a worker dies, releases
// them (TIOCNXCL then close for a tty) and records for every device the
// worker left unfinished its pending step, DEVHOST_E_TIMEOUT for the call
// that was killed, DEVHOST_E_HOST_FAILED for the others, naming the plugin,
// the hook and the signal or exit status, then one unwind record per
// descriptor released. The other workers' devices are not disturbed.
#pragma once

#include "check.hpp"
#include "loader.hpp"
#include "pipeline.hpp"
#include "records.hpp"
#include "restart_policy.hpp"
#include "scan.hpp"
#include "signals.hpp"
#include "worker_channel.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace devhost {

struct SupervisorSettings {
    Isolation isolation = Isolation::Class;
    int64_t kill_grace_ms = 1000;
    int64_t describe_timeout_ms = 5000;
    int64_t default_timeout_ms = 5000;
    std::string log_level = "info";
    // After a stop signal: how long pipelines have to unwind before their
    // workers are killed.
    std::chrono::milliseconds stop_grace = Engine::default_grace;
    // Counts worker deaths per class (restart_policy.hpp): a worker that
    // dies before it started some devices is restarted for them after the
    // class's backoff; a class latched failed starts nothing. nullptr: no
    // restart, nothing counted.
    RestartLedger *ledger = nullptr;
    std::string config_name = "CONFIG";  // for "reset it with: devhost reset-failed CONFIG CLASS"
};

// The plugin files found and checked, open: a worker loads the very file
// the supervisor checked (by descriptor).
class PluginFiles {
public:
    void add(CheckedFile file) { files_.push_back(std::move(file)); }
    // The open file of `plugin` (by device and inode), or -1.
    int fd_of(const Plugin &plugin) const;
    std::vector<CheckedFile> &all() { return files_; }

private:
    std::vector<CheckedFile> files_;
};

// Has workers load and describe `files` (those `cache` does not know);
// adds each description to `registry`, in file order, or a refusal naming
// what happened (an exit, a signal, no answer within describe_timeout_ms).
void describe_in_workers(PluginRegistry &registry, PluginFiles &files, const SupervisorSettings &settings,
                         class PluginCache &cache);

// `devhost scan` of one described plugin, in a worker.
ClassScan scan_in_worker(const Plugin &plugin, const PluginFiles &files, uint32_t flags,
                         const SupervisorSettings &settings);

// The descriptors a device's plugin shared (share_fd), each with its role.
using Vault = std::vector<std::pair<UniqueFd, std::string>>;
// A worker's "fd" (keep it, one per role) or "drop" (of a role, or of all,
// acknowledged through the device's `watch`) for a device's vault.
void vault_message(Message &message, Vault &vault, struct HookWatch &watch);
// Releases what a dead worker's device still shared (TIOCNXCL for a tty,
// compatibility mode for a ppdev, then close), one unwind record each
// numbered after `seq`; false when a record could not be written.
bool release_vault(Vault &vault, const std::string &device, int &seq, RecordWriter &records, int generation = 0);

class Supervisor : public Stoppable {
public:
    Supervisor(RecordWriter &records, const PluginFiles &files, SupervisorSettings settings);
    ~Supervisor() override;

    // Runs every plan in workers and waits for them all.
    std::vector<PipelineResult> run_all(const std::vector<DevicePlan> &plans, const RecordData &data);
    // Whether a worker could not write all its records (or the supervisor its own).
    bool records_failed() const { return records_failed_; }

    // Cancels every pipeline; workers still running `stop_grace` later are
    // killed. Thread-safe.
    void cancel_all() override;

private:
    struct Worker;
    struct Run;
    void start_worker(Run &run, Worker &worker);
    // start_worker, or its devices recorded not started (a latched class,
    // no process to be had).
    void launch(Run &run, Worker &worker);
    void start_due_restarts(Run &run, uint64_t now);
    // Until every worker gave its result or died.
    void loop(Run &run);
    // Handles every message waiting from `worker`.
    void drain(Run &run, Worker &worker);
    void handle_message(Run &run, Worker &worker, Message &message);
    // Fires cancel at a passed deadline, kills a worker stuck past it.
    void watch_deadlines(Run &run, Worker &worker, uint64_t now);
    // Reaps the worker; records what it left unfinished.
    void worker_died(Run &run, Worker &worker);
    // Records device `i`'s pending step as lost, then releases its vault.
    void record_lost(Run &run, Worker &worker, size_t i, const std::string &cause);
    void release_vault(Run &run, size_t i, int &seq);
    // Device `i` fails before its first step (one record, as the engine's).
    void not_started(Run &run, size_t i, devhost_status status, int os_errno, const std::string &why);
    int poll_timeout(const Run &run, uint64_t now) const;

    RecordWriter &records_;
    const PluginFiles &files_;
    SupervisorSettings settings_;
    RecordData run_data_;
    bool records_failed_ = false;
    UniqueFd wake_;  // eventfd: cancel_all() was called
    std::atomic<bool> cancelled_{false};
    std::atomic<uint64_t> cancelled_at_ns_{0};
    std::mutex mutex_;
    std::vector<int> cancel_fds_;  // every device's, for cancel_all (under mutex_)
    std::vector<int> channels_;    // every running worker's (under mutex_)
};

}  // namespace devhost
