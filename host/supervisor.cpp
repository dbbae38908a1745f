#include "supervisor.hpp"

#include "deadlines.hpp"
#include "lifecycle.hpp"
#include "logging.hpp"
#include "plugin_cache.hpp"
#include "plugin_description.hpp"
#include "watch_table.hpp"
#include "worker_channel.hpp"
#include "worker_process.hpp"
#include "worker_protocol.hpp"

#include <algorithm>
#include <deque>
#include <cstring>
#include <cerrno>
#include <linux/futex.h>
#include <map>
#include <optional>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/parport.h>
#include <linux/ppdev.h>
#include <termios.h>
#include <unistd.h>

namespace devhost {

namespace {

using json = nlohmann::json;

constexpr uint64_t ms_ns = 1'000'000;
// The most descriptors one device may leave in the vault.
constexpr size_t max_vault_fds = 16;

// A worker's log line, written where the supervisor logs.
void relay_log(const json &body)
{
    const int level = body.value("level", static_cast<int>(spdlog::level::info));
    const auto lvl = level >= spdlog::level::trace && level < spdlog::level::off
                         ? static_cast<spdlog::level::level_enum>(level)
                         : spdlog::level::info;
    spdlog::log(lvl, "{}", body.value("text", std::string()));
}

}  // namespace

int PluginFiles::fd_of(const Plugin &plugin) const
{
    for (const auto &f : files_)
        if (f.st.st_dev == plugin.file_dev() && f.st.st_ino == plugin.file_ino())
            return f.fd.get();
    return -1;
}

// ---- describing ----------------------------------------------------------

namespace {

// What describing one file came to: a description or a refusal.
struct Described {
    std::shared_ptr<Plugin> plugin;
    std::string refusal;
};

// Describes the files numbered todo[first..] in one worker; returns how many
// of them were answered (a file whose loading killed or hung the worker
// counts, refused).
size_t describe_batch(std::vector<CheckedFile> &files, const std::vector<size_t> &todo, size_t first,
                      std::vector<Described> &out, const SupervisorSettings &settings)
{
    WorkerProcess worker("describe");
    json names = json::array();
    std::vector<int> fds;
    for (size_t k = first; k < todo.size() && fds.size() < max_message_fds - 1; k++) {
        names.push_back(files[todo[k]].file.string());
        fds.push_back(files[todo[k]].fd.get());
    }
    const size_t count = fds.size();
    send_message(worker.channel(), {{"op", "describe"}, {"files", names}, {"log_level", settings.log_level}}, fds);
    size_t current = 0;
    for (;;) {
        Message m;
        std::string error;
        const Received r = receive_message(worker.channel(), m, static_cast<int>(settings.describe_timeout_ms), error);
        if (r == Received::Timeout) {
            worker.kill();
            worker.reap();
            out[todo[first + current]].refusal = "did not finish loading within " +
                                                 std::to_string(settings.describe_timeout_ms) +
                                                 " ms (a constructor or negotiation that does not return); its "
                                                 "worker was killed";
            return current + 1;
        }
        if (r != Received::Message) {
            worker.kill();
            const std::string how = worker.reap();
            out[todo[first + current]].refusal =
                "its worker " + how + " while loading it" + (r == Received::Bad ? " (" + error + ")" : std::string());
            return current + 1;
        }
        const std::string ev = m.body.value("ev", "");
        const size_t i = m.body.value("i", size_t{0});
        if (ev == "log") {
            relay_log(m.body);
        } else if (ev == "loading" && i < count) {
            current = i;
        } else if (ev == "described" && i < count) {
            const CheckedFile &file = files[todo[first + i]];
            std::string why;
            auto plugin = PluginCodec::from_json(m.body.at("plugin"), why);
            if (!plugin || plugin->file_dev() != file.st.st_dev || plugin->file_ino() != file.st.st_ino)
                out[todo[first + i]].refusal = "its worker's description does not match: " + why;
            else
                out[todo[first + i]].plugin = plugin;
        } else if (ev == "refused" && i < count) {
            out[todo[first + i]].refusal = m.body.value("reason", std::string("refused"));
        } else if (ev == "done") {
            worker.reap();
            return count;
        }
    }
}

}  // namespace

void describe_in_workers(PluginRegistry &registry, PluginFiles &files, const SupervisorSettings &settings,
                         PluginCache &cache)
{
    auto &all = files.all();
    std::vector<Described> out(all.size());
    std::vector<size_t> todo;
    std::vector<bool> cached(all.size());
    for (size_t i = 0; i < all.size(); i++)
        if (!(cached[i] = bool(out[i].plugin = cache.find(all[i].file, all[i].st))))
            todo.push_back(i);
    for (size_t next = 0; next < todo.size();) {
        try {
            next += describe_batch(all, todo, next, out, settings);
        } catch (const NoWorker &e) {
            // No worker to load them in: each is refused, with the reason.
            for (; next < todo.size(); next++)
                out[todo[next]].refusal = e.what();
        }
    }
    // In file order, as one process loading them would: the first file of
    // a class serves it.
    for (size_t i = 0; i < all.size(); i++) {
        if (!out[i].plugin) {
            registry.refuse(all[i].file, out[i].refusal);
            continue;
        }
        if (!cached[i])
            cache.keep(*out[i].plugin, all[i].st);
        registry.add(out[i].plugin);
    }
    cache.save();
}

ClassScan scan_in_worker(const Plugin &plugin, const PluginFiles &files, uint32_t flags,
                         const SupervisorSettings &settings)
{
    ClassScan scan;
    scan.device_class = plugin.device_class();
    if (!plugin.has_hook(HookSlot::Enumerate))
        return scan;
    scan.listed = true;
    std::optional<WorkerProcess> started;
    try {
        started.emplace("scan " + plugin.device_class());
    } catch (const NoWorker &e) {
        scan.ok = false;
        scan.error = e.what();
        return scan;
    }
    WorkerProcess &worker = *started;
    send_message(worker.channel(),
                 {{"op", "enumerate"}, {"file", plugin.file().string()}, {"flags", flags}, {"log_level", settings.log_level}},
                 {files.fd_of(plugin)});
    const uint64_t until = monotonic_ns() + static_cast<uint64_t>(enumerate_timeout_ms + settings.kill_grace_ms) * ms_ns;
    for (;;) {
        const uint64_t now = monotonic_ns();
        Message m;
        std::string error;
        const Received r = now >= until ? Received::Timeout
                                         : receive_message(worker.channel(), m, static_cast<int>((until - now) / ms_ns + 1), error);
        if (r == Received::Message && m.body.value("ev", "") == "log") {
            relay_log(m.body);
            continue;
        }
        if (r == Received::Message && m.body.value("ev", "") == "scanned")
            return scan_from_json(m.body.at("scan"));
        worker.kill();
        const std::string how = worker.reap();
        scan.ok = false;
        scan.error = r == Received::Timeout
                         ? "enumerate did not return within its deadline and " + std::to_string(settings.kill_grace_ms) +
                               " ms more; its worker was killed"
                     : r == Received::Message && m.body.value("ev", "") == "failed"
                         ? "its worker could not load it: " + m.body.value("reason", std::string())
                         : "its worker " + how + " in enumerate";
        return scan;
    }
}

// ---- running -------------------------------------------------------------

struct Supervisor::Worker {
    std::string label;
    const Plugin *plugin = nullptr;
    std::vector<size_t> devices;  // plan indexes (= watch table slots)
    std::unique_ptr<WorkerProcess> process;
    bool finished = false;        // its result came, or its death was handled
    bool results_in = false;
    std::optional<size_t> killed_for;  // the device whose stuck call got it killed
    std::string killed_why;
    std::string failure;  // what it said when it could not go on
    bool started = false;  // its engine runs (it said so)
    uint64_t spawned_ns = 0;
};

struct Supervisor::Run {
    const std::vector<DevicePlan> *plans = nullptr;
    std::optional<WatchTable> table;
    std::vector<UniqueFd> cancels;                  // per device, the supervisor's copy
    std::vector<uint64_t> fired_call;               // per device: the call whose deadline fired cancel
    std::vector<Vault> vault;  // per device
    std::vector<PipelineResult> results;
    std::deque<Worker> workers;  // a deque: references stay valid as restarts are added
    struct Restart {
        Worker worker;
        uint64_t at_ns = 0;
    };
    std::vector<Restart> pending;  // workers to start again, each at its time
};

Supervisor::Supervisor(RecordWriter &records, const PluginFiles &files, SupervisorSettings settings)
    : records_(records), files_(files), settings_(std::move(settings))
{
    wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_)
        throw std::system_error(errno, std::generic_category(), "supervisor: eventfd");
}

Supervisor::~Supervisor() = default;

void Supervisor::cancel_all()
{
    if (cancelled_.exchange(true))
        return;
    cancelled_at_ns_ = monotonic_ns();
    records_.stop_waiting(std::chrono::steady_clock::now() + settings_.stop_grace / 2);
    std::lock_guard lock(mutex_);
    const uint64_t one = 1;
    for (int fd : cancel_fds_)
        [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
    for (int channel : channels_)  // their record writes stop waiting for a slow reader, as ours do
        send_message(channel, {{"op", "stop"}});
    [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof one);
}

void Supervisor::start_worker(Run &run, Worker &w)
{
    w.process = std::make_unique<WorkerProcess>(w.label);
    w.spawned_ns = monotonic_ns();
    json devices = json::array();
    for (size_t i : w.devices) {
        const DevicePlan &p = (*run.plans)[i];
        json d = device_config_to_json(*p.config);
        d["resolved"] = p.path;
        d["controls"] = p.control_codes;
        d["slot"] = i;
        devices.push_back(std::move(d));
    }
    const json request = {{"op", "run"},
                          {"file", w.plugin->file().string()},
                          {"log_level", settings_.log_level},
                          {"timeout_ms", settings_.default_timeout_ms},
                          {"grace_ms", settings_.stop_grace.count()},
                          {"record_mode", static_cast<int>(run_data_.mode)},
                          {"record_head", run_data_.head},
                          {"devices", devices}};
    const int plugin_fd = files_.fd_of(*w.plugin);
    if (!send_message(w.process->channel(), request, {plugin_fd, records_.fd(), run.table->fd()}))
        return;  // it died already: its death is handled by the loop
    // The cancel handles, a batch per message.
    for (size_t first = 0; first < w.devices.size(); first += max_message_fds - 1) {
        std::vector<int> fds;
        for (size_t k = first; k < w.devices.size() && fds.size() < max_message_fds - 1; k++)
            fds.push_back(run.cancels[w.devices[k]].get());
        if (!send_message(w.process->channel(), {{"op", "cancel-fds"}}, fds))
            return;
    }
}

std::vector<PipelineResult> Supervisor::run_all(const std::vector<DevicePlan> &plans, const RecordData &data)
{
    Run run;
    run.plans = &plans;
    run_data_ = data;
    run.table.emplace(WatchTable::create(plans.size()));
    records_.share_lock(run.table->records_lock(), 2000);
    run.fired_call.assign(plans.size(), 0);
    run.vault.resize(plans.size());
    std::vector<bool> startable(plans.size(), true);
    for (size_t i = 0; i < plans.size(); i++) {
        run.results.push_back({plans[i].config->name, true, DEVHOST_OK});
        run.cancels.emplace_back(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!run.cancels.back()) {
            // Out of descriptors: this pipeline fails before its first step, the others go on.
            const int e = errno;
            not_started(run, i, DEVHOST_E_NO_MEMORY, e,
                        std::string("cannot make its cancel handle (eventfd): ") + std::strerror(e));
            startable[i] = false;
        }
    }
    {
        std::lock_guard lock(mutex_);
        for (const auto &fd : run.cancels)
            cancel_fds_.push_back(fd.get());
        if (cancelled_)
            for (const auto &fd : run.cancels) {
                const uint64_t one = 1;
                [[maybe_unused]] ssize_t n = ::write(fd.get(), &one, sizeof one);
            }
    }
    // The groups: one worker per plugin, or per device.
    std::map<const Plugin *, size_t> by_plugin;
    for (size_t i = 0; i < plans.size(); i++) {
        if (!startable[i])
            continue;
        const Plugin *plugin = plans[i].plugin.get();
        if (settings_.isolation == Isolation::Class && by_plugin.count(plugin)) {
            run.workers[by_plugin[plugin]].devices.push_back(i);
            continue;
        }
        by_plugin[plugin] = run.workers.size();
        Worker w;
        w.plugin = plugin;
        w.label = settings_.isolation == Isolation::Class ? "class " + plugin->device_class()
                                                           : "device " + plans[i].config->name;
        w.devices.push_back(i);
        run.workers.push_back(std::move(w));
    }
    for (auto &w : run.workers)
        launch(run, w);
    loop(run);
    std::lock_guard lock(mutex_);
    cancel_fds_.clear();
    channels_.clear();
    return run.results;
}

void Supervisor::launch(Run &run, Worker &w)
{
    const std::string &cls = w.plugin->device_class();
    if (settings_.ledger && settings_.ledger->failed(cls)) {
        // Latched failed after too many deaths: nothing of it runs until reset.
        for (size_t i : w.devices)
            not_started(run, i, DEVHOST_E_HOST_FAILED, 0, settings_.ledger->failed_reason(cls, settings_.config_name));
        w.finished = true;
        return;
    }
    try {
        start_worker(run, w);
        std::lock_guard lock(mutex_);
        channels_.push_back(w.process->channel());
        if (cancelled_)
            send_message(w.process->channel(), {{"op", "stop"}});
    } catch (const NoWorker &e) {
        w.process.reset();
        for (size_t i : w.devices)
            not_started(run, i, e.os_errno ? DEVHOST_E_NO_MEMORY : DEVHOST_E_HOST_FAILED, e.os_errno, e.what());
        w.finished = true;
    }
}

void Supervisor::start_due_restarts(Run &run, uint64_t now)
{
    for (size_t k = 0; k < run.pending.size();) {
        if (run.pending[k].at_ns > now && !cancelled_) {
            k++;
            continue;
        }
        Worker w = std::move(run.pending[k].worker);
        run.pending.erase(run.pending.begin() + static_cast<std::ptrdiff_t>(k));
        if (cancelled_) {  // stopped meanwhile: they never start
            for (size_t i : w.devices)
                not_started(run, i, DEVHOST_E_CANCELLED, 0, "stopped before its worker was restarted");
            continue;
        }
        spdlog::info("restarting worker {} for {} device(s) still to run", w.label, w.devices.size());
        run.workers.push_back(std::move(w));
        launch(run, run.workers.back());
    }
}

void Supervisor::loop(Run &run)
{
    for (;;) {
        start_due_restarts(run, monotonic_ns());
        std::vector<pollfd> fds{{wake_.get(), POLLIN, 0}};
        std::vector<Worker *> owners{nullptr};
        for (auto &w : run.workers)
            if (!w.finished) {
                fds.push_back({w.process->channel(), POLLIN, 0});
                fds.push_back({w.process->pidfd(), POLLIN, 0});
                owners.push_back(&w);
                owners.push_back(&w);
            }
        if (fds.size() == 1 && run.pending.empty())
            return;
        const uint64_t now = monotonic_ns();
        ::poll(fds.data(), fds.size(), poll_timeout(run, now));
        for (size_t k = 1; k < fds.size(); k++) {
            Worker &w = *owners[k];
            if (w.finished || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (fds[k].fd == w.process->channel())
                drain(run, w);
            else
                worker_died(run, w);
        }
        const uint64_t after = monotonic_ns();
        for (auto &w : run.workers)
            if (!w.finished)
                watch_deadlines(run, w, after);
    }
}

// Every message the worker has sent; a worker whose channel closed or
// broke is dead (or as good as): handled as a death.
void Supervisor::drain(Run &run, Worker &w)
{
    for (;;) {
        Message m;
        std::string error;
        const Received r = receive_message(w.process->channel(), m, 0, error);
        if (r == Received::Timeout)
            return;
        if (r == Received::Message) {
            handle_message(run, w, m);
            if (w.finished)
                return;
            continue;
        }
        if (r == Received::Bad)
            spdlog::error("worker {} (pid {}) sent what is no message: {}; killing it", w.label, w.process->pid(), error);
        w.process->kill();
        worker_died(run, w);
        return;
    }
}

void Supervisor::handle_message(Run &run, Worker &w, Message &m)
{
    const std::string ev = m.body.value("ev", "");
    const auto slot_of = [&]() -> std::optional<size_t> {
        const int64_t s = m.body.value("slot", int64_t{-1});
        for (size_t i : w.devices)
            if (static_cast<int64_t>(i) == s)
                return i;
        return std::nullopt;
    };
    if (ev == "log") {
        relay_log(m.body);
    } else if (ev == "fd" || ev == "drop") {
        if (auto slot = slot_of())
            vault_message(m, run.vault[*slot], run.table->slot(*slot));
        else if (ev == "fd")
            spdlog::warn("worker {}: a shared descriptor for no device of its own; closed", w.label);
    } else if (ev == "result") {
        for (const auto &r : m.body.at("results"))
            for (size_t i : w.devices)
                if (run.results[i].device == r.value("device", "")) {
                    run.results[i].ok = r.value("ok", false);
                    run.results[i].status = static_cast<devhost_status>(r.value("status", int{DEVHOST_E_IO}));
                }
        if (m.body.value("records_failed", false))
            records_failed_ = true;
        w.results_in = true;
    } else if (ev == "started") {
        w.started = true;
    } else if (ev == "failed") {
        spdlog::error("worker {}: {}", w.label, m.body.value("reason", std::string()));
        w.failure = m.body.value("reason", std::string());
    }
}

int Supervisor::poll_timeout(const Run &run, uint64_t now) const
{
    // Deadlines are read from the watch table, which says nothing when
    // they pass: looked at every 20 ms (so a cancel fires at most that late).
    int64_t ms = 20;
    for (const auto &r : run.pending)
        ms = std::min<int64_t>(ms, r.at_ns > now ? static_cast<int64_t>((r.at_ns - now) / ms_ns) + 1 : 0);
    if (cancelled_) {
        const uint64_t kill_at = cancelled_at_ns_ + static_cast<uint64_t>(settings_.stop_grace.count()) * ms_ns;
        ms = std::min<int64_t>(ms, kill_at > now ? static_cast<int64_t>((kill_at - now) / ms_ns) + 1 : 0);
    }
    return static_cast<int>(ms);
}

void Supervisor::watch_deadlines(Run &run, Worker &w, uint64_t now)
{
    if (cancelled_ && now >= cancelled_at_ns_ + static_cast<uint64_t>(settings_.stop_grace.count()) * ms_ns) {
        w.killed_why = "was killed: still running " + std::to_string(settings_.stop_grace.count()) +
                       " ms after the stop";
        w.process->kill();
        return;
    }
    // Loading the plugin again and starting the engine has the time a
    // worker has to describe a plugin.
    if (!w.started && now >= w.spawned_ns + static_cast<uint64_t>(settings_.describe_timeout_ms) * ms_ns) {
        w.killed_why = "was killed: it did not start within " + std::to_string(settings_.describe_timeout_ms) +
                       " ms (loading its plugin)";
        spdlog::error("worker {} (pid {}) {}", w.label, w.process->pid(), w.killed_why);
        w.process->kill();
        return;
    }
    const uint64_t slack = static_cast<uint64_t>(deadline_slack_ms) * ms_ns;
    const uint64_t grace = static_cast<uint64_t>(settings_.kill_grace_ms) * ms_ns;
    for (size_t i : w.devices) {
        const HookWatch &s = run.table->slot(i);
        const uint64_t call = s.calls.load(std::memory_order_acquire);
        const uint64_t deadline = s.deadline_ns.load(std::memory_order_acquire);
        const int32_t hook = s.hook.load(std::memory_order_acquire);
        if (deadline == 0 || hook < 0 || s.calls.load(std::memory_order_acquire) != call || now < deadline + slack)
            continue;
        const std::string &name = (*run.plans)[i].config->name;
        const char *hook_text = hook_name(static_cast<Hook>(hook));
        if (run.fired_call[i] != call) {
            run.fired_call[i] = call;
            const uint64_t one = 1;
            [[maybe_unused]] ssize_t n = ::write(run.cancels[i].get(), &one, sizeof one);
            spdlog::warn("{}: its {} hook passed its deadline; cancel fired (the worker is killed if it has not "
                         "returned {} ms later)",
                         name, hook_text, settings_.kill_grace_ms);
        } else if (now >= deadline + slack + grace && !w.killed_for) {
            w.killed_for = i;
            w.killed_why = "was killed: the " + std::string(hook_text) + " hook of device '" + name + "' did not return within " +
                           std::to_string(settings_.kill_grace_ms) + " ms after its deadline";
            spdlog::error("{}: its {} hook is still running {} ms after its deadline and cancel: killing worker {} "
                          "(pid {})",
                          name, hook_text, settings_.kill_grace_ms, w.label, w.process->pid());
            w.process->kill();
            return;
        }
    }
}

void Supervisor::worker_died(Run &run, Worker &w)
{
    if (w.finished)
        return;
    // What it sent before it died counts (its result, a descriptor, a log line).
    for (;;) {
        Message m;
        std::string error;
        if (receive_message(w.process->channel(), m, 0, error) != Received::Message)
            break;
        handle_message(run, w, m);
    }
    w.process->kill();
    const std::string how = w.process->reap();
    w.finished = true;
    const bool clean = w.results_in && w.process->exited_cleanly();
    if (!clean)
        spdlog::error("worker {} (pid {}, plugin {}) {}", w.label, w.process->pid(), display_path(w.plugin->file()),
                      w.killed_why.empty() ? how : w.killed_why);
    const std::string cause = !w.killed_why.empty() ? w.killed_why : !w.failure.empty() ? how + ": " + w.failure : how;
    bool latched = false;
    if (!clean && !w.results_in && settings_.ledger)
        latched = settings_.ledger->record_death(w.plugin->device_class(), RestartLedger::Clock::now(), cause);
    Worker again;  // the devices it never started, for a worker of their own
    for (size_t i : w.devices) {
        // A worker that answered its result accounted for every device;
        // what it still left shared is released all the same.
        if (w.results_in) {
            int seq = run.table->slot(i).written_seq.load(std::memory_order_acquire);
            release_vault(run, i, seq);
            continue;
        }
        // A device whose pipeline had ended (its unwind recorded) lost no
        // step: no record for it, but its result never came, so it counts
        // as failed.
        if (run.table->slot(i).phase.load(std::memory_order_acquire) == HookWatch::Done) {
            const std::string &name = (*run.plans)[i].config->name;
            spdlog::error("{}: its pipeline had ended, but its worker died before reporting the result", name);
            run.results[i] = {name, false, DEVHOST_E_HOST_FAILED};
            int seq = run.table->slot(i).written_seq.load(std::memory_order_acquire);
            release_vault(run, i, seq);
            continue;
        }
        const bool untouched = run.table->slot(i).phase.load(std::memory_order_acquire) == HookWatch::NotStarted &&
                               run.vault[i].empty();
        if (untouched && !latched && !cancelled_ && settings_.ledger) {
            again.devices.push_back(i);
            continue;
        }
        record_lost(run, w, i, cause);
    }
    if (!again.devices.empty()) {
        again.plugin = w.plugin;
        again.label = w.label;
        const auto wait = settings_.ledger->backoff(w.plugin->device_class());
        spdlog::warn("worker {} {}: restarting it in {} ms for the {} device(s) it had not started", w.label, cause,
                     wait.count(), again.devices.size());
        run.pending.push_back({std::move(again), monotonic_ns() + static_cast<uint64_t>(wait.count()) * ms_ns});
    }
}

void Supervisor::record_lost(Run &run, Worker &w, size_t i, const std::string &cause)
{
    const DeviceConfig &cfg = *(*run.plans)[i].config;
    const HookWatch &s = run.table->slot(i);
    const uint32_t phase = s.phase.load(std::memory_order_acquire);
    const int32_t hook = s.hook.load(std::memory_order_acquire);
    const int32_t step = s.step.load(std::memory_order_acquire);
    Record rec;
    rec.device = cfg.name;
    rec.seq = s.written_seq.load(std::memory_order_acquire) + 1;
    std::string where;
    if (phase == HookWatch::Unwind) {
        rec.step = hook >= 0 ? hook_name(static_cast<Hook>(hook)) : "unwind";
        rec.unwind = true;
    } else {
        const size_t k = phase == HookWatch::Steps && step >= 0 ? static_cast<size_t>(step) : 0;
        rec.step = k < cfg.steps.size() ? cfg.steps[k].text : "(pipeline)";
        rec.line = k < cfg.steps.size() ? cfg.steps[k].line : 0;
        if (phase == HookWatch::Steps)
            rec.repetition = s.repetition.load(std::memory_order_acquire);
    }
    if (hook >= 0 && phase != HookWatch::Done)
        where = " while its " + std::string(hook_name(static_cast<Hook>(hook))) + " hook ran";
    else if (phase == HookWatch::NotStarted)
        where = " before its first step";
    if (w.killed_for == i) {
        rec.status = DEVHOST_E_TIMEOUT;
        rec.message = std::string("the plugin's ") + (hook >= 0 ? hook_name(static_cast<Hook>(hook)) : "") +
                      " hook did not return within " + std::to_string(settings_.kill_grace_ms) +
                      " ms after its deadline and cancel: its worker (" + w.label + ", pid " +
                      std::to_string(w.process ? w.process->pid() : -1) + ") was killed";
    } else {
        rec.status = DEVHOST_E_HOST_FAILED;
        rec.message = w.process ? "the worker running plugin '" + w.plugin->name() + "' (" + w.label + ", pid " +
                                      std::to_string(w.process->pid()) + ") " + cause + where
                                : cause;
    }
    spdlog::error("{}: step '{}' failed: {}: {}", cfg.name, rec.step, devhost_status_name(rec.status), rec.message);
    if (!records_.write(rec))
        records_failed_ = true;
    run.results[i] = {cfg.name, false, rec.status};
    int seq = rec.seq;
    release_vault(run, i, seq);
}

void Supervisor::not_started(Run &run, size_t i, devhost_status status, int os_errno, const std::string &why)
{
    const DeviceConfig &cfg = *(*run.plans)[i].config;
    spdlog::error("{}: pipeline not started: {}", cfg.name, why);
    if (!records_.write(not_started_record(cfg, status, os_errno, why)))
        records_failed_ = true;
    run.results[i] = {cfg.name, false, status};
}

void Supervisor::release_vault(Run &run, size_t i, int &seq)
{
    if (!devhost::release_vault(run.vault[i], (*run.plans)[i].config->name, seq, records_))
        records_failed_ = true;
}

void vault_message(Message &m, Vault &vault, HookWatch &watch)
{
    const std::string role = m.body.value("role", std::string());
    const auto drop_role = [&] {
        vault.erase(std::remove_if(vault.begin(), vault.end(), [&](const auto &e) { return e.second == role; }),
                    vault.end());
    };
    if (m.body.value("ev", "") == "fd") {
        // One copy per device and role: sharing a role again replaces it.
        if (m.fds.size() != 1)
            return;
        drop_role();
        if (vault.size() < max_vault_fds)
            vault.emplace_back(std::move(m.fds[0]), role);
        return;
    }
    if (m.body.contains("role"))
        drop_role();
    else
        vault.clear();
    watch.vault_ack.store(m.body.value("n", 0u), std::memory_order_release);
    syscall(SYS_futex, reinterpret_cast<uint32_t *>(&watch.vault_ack), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

bool release_vault(Vault &vault, const std::string &device, int &seq, RecordWriter &records, int generation)
{
    bool written = true;
    for (auto &[fd, role] : vault) {
        const bool tty = ::isatty(fd.get());
        if (tty) {
            ::ioctl(fd.get(), TIOCNXCL);  // else another program that holds the tty keeps it exclusive
            ::tcflush(fd.get(), TCOFLUSH);  // a UART's last close would wait for output to drain
        } else if (role == "ppdev") {
            int compat = IEEE1284_MODE_COMPAT;  // closing in another mode can block in the kernel
            ::ioctl(fd.get(), PPSETMODE, &compat);
        }
        fd.reset();
        Record rec;
        rec.device = device;
        rec.seq = ++seq;
        rec.step = "close";
        rec.unwind = true;
        rec.generation = generation;
        rec.message = tty ? "released by the host after its worker died: TIOCNXCL and close of the tty the plugin "
                            "shared"
                          : "released by the host after its worker died: close of the " + role +
                                " descriptor the plugin shared";
        spdlog::info("{}: {}", rec.device, rec.message);
        written = records.write(rec) && written;
    }
    vault.clear();
    return written;
}

}  // namespace devhost
