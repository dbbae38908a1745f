// The serve loop's devices and workers (serve_loop.hpp): which phase each
// device runs next, the workers that run them, their messages, deadlines
// and deaths.
#include "serve_loop.hpp"

#include "deadlines.hpp"
#include "lifecycle.hpp"
#include "worker_protocol.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <unistd.h>

namespace devhost {

namespace {

using json = nlohmann::json;

// The wait before a failed setup is tried again: 1 s doubled per failure in
// a row, at most 60 s.
uint64_t setup_retry_ns(int failures)
{
    const int64_t ms = std::min<int64_t>(60000, int64_t{1000} << std::min(failures, 6));
    return static_cast<uint64_t>(ms) * serve_ms_ns;
}

}  // namespace

ServedDevice *ServeLoop::by_slot(int32_t slot)
{
    for (auto &d : devices_)
        if (d.slot == slot)
            return &d;
    return nullptr;
}

ServedDevice *ServeLoop::by_name(const std::string &name)
{
    for (auto &d : devices_)
        if (d.name == name && !d.leaving)
            return &d;
    return nullptr;
}

// What device `d` does next, if anything: called for every device at every
// turn of the loop.
void ServeLoop::schedule(ServedDevice &d, uint64_t now)
{
    const DeviceConfig &c = *d.plan->config;
    const uint64_t period = c.run.every_ms ? static_cast<uint64_t>(*c.run.every_ms) * serve_ms_ns : 0;
    if (!d.phase.empty()) {
        // A tick that finds the device busy is skipped and counted, never queued.
        for (; period && d.set_up && now >= d.next_tick_ns; d.next_tick_ns += period)
            d.ticks_skipped++;
        return;
    }
    if (d.leaving || (d.removed && d.set_up)) {
        if (d.set_up)
            send_phase(d, "teardown", now);
        return;
    }
    if (!d.set_up) {
        if (d.state == ServeState::Waiting) {
            if (d.attach_at_ns && now >= d.attach_at_ns)
                send_phase(d, "setup", now);
            return;
        }
        std::string why;
        if (d.state != ServeState::Failed && now >= d.retry_at_ns) {
            if (present(d, why))
                send_phase(d, "setup", now);
            else
                wait_for_device(d, why, now);
        }
        return;
    }
    bool due = !d.calls_waiting.empty() || d.pending_body;
    if (period && now >= d.next_tick_ns) {
        due = true;
        while (d.next_tick_ns <= now)
            d.next_tick_ns += period;
    }
    if (due) {
        d.pending_body = false;
        d.calls_running = std::move(d.calls_waiting);
        d.calls_waiting.clear();
        send_phase(d, "body", now);
        return;
    }
    if (c.stale_after_ms && d.state == ServeState::Idle &&
        now >= d.last_ok_ns + static_cast<uint64_t>(*c.stale_after_ms) * serve_ms_ns)
        set_state(d, ServeState::Stale, "no body succeeded for " + std::to_string(*c.stale_after_ms) + " ms");
}

bool ServeLoop::send_phase(ServedDevice &d, const std::string &phase, uint64_t now)
{
    ServeWorkerProc *w = worker_for(d);
    if (!w)
        return false;
    if (std::find(w->given.begin(), w->given.end(), d.slot) == w->given.end()) {
        json dev = device_config_to_json(*d.plan->config);
        dev["resolved"] = d.plan->path;
        dev["controls"] = d.plan->control_codes;
        dev["slot"] = d.slot;
        if (!send_message(w->process->channel(), {{"op", "device"}, {"device", dev}}, {d.cancel.get()}))
            return false;  // it is dying: its death is handled by the loop
        w->given.push_back(d.slot);
    }
    // A cancel fired for the last phase (its deadline, a stop) is spent.
    uint64_t spent = 0;
    [[maybe_unused]] ssize_t n = ::read(d.cancel.get(), &spent, sizeof spent);
    json request = {{"op", phase}, {"slot", d.slot}};
    if (phase == "setup") {
        d.generation++;
        d.attach_at_ns = 0;
        request["generation"] = d.generation;
        request["resolved"] = d.resolved;
        HookWatch &watch = table_->slot(static_cast<size_t>(d.slot));
        watch.phase.store(HookWatch::NotStarted, std::memory_order_release);
        watch.written_seq.store(0, std::memory_order_release);
        set_state(d, ServeState::Setup);
    } else if (phase == "body" && d.state != ServeState::Stale) {
        set_state(d, ServeState::Running);
    }
    if (phase == "body" && !d.calls_running.empty())
        request["reply"] = true;  // the records come back in "done", for the calls
    if (!send_message(w->process->channel(), request))
        return false;
    d.phase = phase;
    d.phase_since_ns = now;
    return true;
}

// The worker device `d` runs in, started when it is not running; nullptr
// (and the device's state says why) when there is none to be had.
ServeWorkerProc *ServeLoop::worker_for(ServedDevice &d)
{
    if (auto it = workers_.find(d.worker); it != workers_.end())
        return &it->second;
    const std::string cls = d.plan->plugin->device_class();
    if (ledger_->failed(cls)) {
        set_state(d, ServeState::Failed, ledger_->failed_reason(cls, setup_.settings.config_name));
        return nullptr;
    }
    ServeWorkerProc w;
    w.key = d.worker;
    w.source = d.source;
    w.plugin = d.plan->plugin;
    try {
        start_worker(w);
    } catch (const NoWorker &e) {
        d.setup_ran = true;  // READY does not wait for a process that cannot be had
        d.retry_at_ns = monotonic_ns() + setup_retry_ns(d.setup_failures++);
        set_state(d, ServeState::Setup, e.what());
        return nullptr;
    }
    return &workers_.emplace(w.key, std::move(w)).first->second;
}

void ServeLoop::start_worker(ServeWorkerProc &w)
{
    w.process = std::make_unique<WorkerProcess>(w.key);
    w.spawned_ns = monotonic_ns();
    const RecordData &data = setup_.config->config.host.record_data;
    const json request = {{"op", "serve"},
                          {"file", w.plugin->file().string()},
                          {"log_level", setup_.settings.log_level},
                          {"timeout_ms", setup_.settings.default_timeout_ms},
                          {"grace_ms", setup_.settings.stop_grace.count()},
                          {"record_mode", static_cast<int>(data.mode)},
                          {"record_head", data.head}};
    send_message(w.process->channel(), request, {w.source->files.fd_of(*w.plugin), records_.fd(), table_->fd()});
    tell_live(w, records_watched());
    spdlog::info("worker {} started (pid {})", w.key, w.process->pid());
}

bool ServeLoop::records_watched() const
{
    return (control_ && control_->watched()) || setup_.fleet || setup_.metrics;
}

// Tells worker `w` whether anyone watches records as they come (`live`:
// records_watched()), when that changed since it was last told: only then
// does it send each record as it is written.
void ServeLoop::tell_live(ServeWorkerProc &w, bool live)
{
    if (w.process && w.live != live && send_message(w.process->channel(), {{"op", "live"}, {"on", live}}))
        w.live = live;
}

void ServeLoop::drain(ServeWorkerProc &w)
{
    for (;;) {
        Message m;
        std::string error;
        const Received r = receive_message(w.process->channel(), m, 0, error);
        if (r == Received::Timeout)
            return;
        if (r == Received::Message) {
            handle(w, m);
            continue;
        }
        if (r == Received::Bad)
            spdlog::error("worker {} (pid {}) sent what is no message: {}; killing it", w.key, w.process->pid(), error);
        w.process->kill();  // its pidfd turns readable: handled as a death
        return;
    }
}

void ServeLoop::handle(ServeWorkerProc &w, Message &m)
{
    const std::string ev = m.body.value("ev", "");
    ServedDevice *d = by_slot(m.body.value("slot", int32_t{-1}));
    if (d && d->worker != w.key)
        d = nullptr;
    if (ev == "log") {
        const int level = m.body.value("level", static_cast<int>(spdlog::level::info));
        spdlog::log(level >= 0 && level < spdlog::level::off ? static_cast<spdlog::level::level_enum>(level)
                                                              : spdlog::level::info,
                    "{}", m.body.value("text", std::string()));
    } else if ((ev == "fd" || ev == "drop") && d) {
        vault_message(m, d->vault, table_->slot(static_cast<size_t>(d->slot)));
    } else if (ev == "started") {
        w.started = true;
    } else if (ev == "pong") {
        w.pongs = m.body.value("n", w.pongs);
    } else if (ev == "record" && d) {
        publish({{"event", "record"}, {"record", m.body.value("record", json::object())}});
    } else if (ev == "done" && d) {
        phase_done(*d, m.body, monotonic_ns());
    } else if (ev == "failed") {
        w.failure = m.body.value("reason", std::string());
        spdlog::error("worker {}: {}", w.key, w.failure);
    }
}

void ServeLoop::phase_done(ServedDevice &d, const json &body, uint64_t now)
{
    const std::string phase = d.phase;
    d.phase.clear();
    const bool ok = body.value("ok", false);
    const json records = body.value("records", json::array());  // published as they came ("record")
    const std::string failed = ok ? "" : phase + " failed: " + devhost_status_name(static_cast<devhost_status>(body.value("status", 0)));
    const uint64_t period = d.plan->config->run.every_ms ? static_cast<uint64_t>(*d.plan->config->run.every_ms) * serve_ms_ns : 0;
    const int status = body.value("status", 0);
    const bool gone = status == DEVHOST_E_REMOVED || status == DEVHOST_E_NOT_FOUND;
    if (phase == "setup") {
        d.setup_ran = true;
        std::string why;
        if (!ok && gone && !present(d, why)) {
            wait_for_device(d, failed + " (" + why + ")", now);
            return;
        }
        if (!ok) {
            setup_failed(d, failed, now);
            return;
        }
        d.set_up = true;
        d.setup_failures = 0;
        setup_ledger_->reset(d.name);  // a run of failed setups ends here
        d.attached_ns = now;
        watch_.watch(d.resolved);
        d.last_ok_ns = now;
        d.next_tick_ns = period ? now + period : 0;
        const RunTriggers &run = d.plan->config->run;
        const bool start = run.start || (!run.every_ms && !run.on_demand && !run.on_attach);
        d.pending_body = d.pending_body || run.on_attach || (start && !d.started);
        d.started = d.started || start;
        set_state(d, ServeState::Idle);
    } else if (phase == "body") {
        ok ? d.bodies_ok++ : d.bodies_failed++;
        if (ok) {
            d.last_ok_ns = now;
            d.last_success = std::chrono::system_clock::now();
            set_state(d, ServeState::Idle);
        } else {
            set_state(d, d.state == ServeState::Stale ? ServeState::Stale : ServeState::Idle, failed);
            std::string why;
            // The device went away: torn down (schedule), then waited for.
            // (A pipeline of `step =` lines that cannot open its path is
            // gone too, when the path is.)
            if (status == DEVHOST_E_REMOVED || (status == DEVHOST_E_NOT_FOUND && !present(d, why)))
                d.removed = true;
        }
        json reply = {{"records", records}};
        if (const size_t cut = body.value("records_cut", size_t{0}))
            reply["records_cut"] = cut;
        for (auto &done : d.calls_running)
            done(ok || !records.empty() ? reply : json{{"error", failed}});
        d.calls_running.clear();
    } else if (phase == "teardown") {
        d.set_up = false;
        if (d.removed && !d.leaving) {
            d.removed = false;
            wait_for_device(d, d.message.empty() ? "removed" : d.message, now);
        } else {
            set_state(d, ServeState::Setup, "torn down");
        }
    }
}

// A device's call past its deadline gets its cancel; still running
// kill-grace later, its worker is killed (as the supervisor does in a run).
void ServeLoop::watch_deadlines(ServeWorkerProc &w, uint64_t now)
{
    if (!w.process)
        return;
    if (stopping_ && now >= stop_at_ns_) {
        w.killed_why = "was killed: still running " + std::to_string(setup_.settings.stop_grace.count()) +
                       " ms after the stop";
        w.process->kill();
        return;
    }
    if (!w.started && now >= w.spawned_ns + static_cast<uint64_t>(setup_.settings.describe_timeout_ms) * serve_ms_ns) {
        w.killed_why = "was killed: it did not start within " + std::to_string(setup_.settings.describe_timeout_ms) +
                       " ms (loading its plugin)";
        w.process->kill();
        return;
    }
    const uint64_t slack = static_cast<uint64_t>(deadline_slack_ms) * serve_ms_ns;
    const uint64_t grace = static_cast<uint64_t>(setup_.settings.kill_grace_ms) * serve_ms_ns;
    for (auto &d : devices_) {
        if (d.worker != w.key || d.phase.empty())
            continue;
        const HookWatch &s = table_->slot(static_cast<size_t>(d.slot));
        const uint64_t call = s.calls.load(std::memory_order_acquire);
        const uint64_t deadline = s.deadline_ns.load(std::memory_order_acquire);
        const int32_t hook = s.hook.load(std::memory_order_acquire);
        if (deadline == 0 || hook < 0 || s.calls.load(std::memory_order_acquire) != call || now < deadline + slack)
            continue;
        const char *hook_text = hook_name(static_cast<Hook>(hook));
        if (d.fired_call != call) {
            d.fired_call = call;
            const uint64_t one = 1;
            [[maybe_unused]] ssize_t n = ::write(d.cancel.get(), &one, sizeof one);
            spdlog::warn("{}: its {} hook passed its deadline; cancel fired", d.name, hook_text);
        } else if (now >= deadline + slack + grace && !w.killed_for) {
            w.killed_for = d.slot;
            w.killed_why = "was killed: the " + std::string(hook_text) + " hook of device '" + d.name +
                           "' did not return within " + std::to_string(setup_.settings.kill_grace_ms) +
                           " ms after its deadline";
            spdlog::error("{}: killing worker {} (pid {}): {}", d.name, w.key, w.process->pid(), w.killed_why);
            w.process->kill();
            return;
        }
    }
}

void ServeLoop::worker_died(ServeWorkerProc &w)
{
    for (;;) {  // what it sent before it died counts
        Message m;
        std::string error;
        if (receive_message(w.process->channel(), m, 0, error) != Received::Message)
            break;
        handle(w, m);
    }
    w.process->kill();
    const std::string how = w.process->reap();
    const bool clean = w.process->exited_cleanly() && stopping_;
    const std::string cause = !w.killed_why.empty() ? w.killed_why : !w.failure.empty() ? how + ": " + w.failure : how;
    bool latched = false;
    if (!clean) {
        spdlog::error("worker {} (pid {}, plugin {}) {}", w.key, w.process->pid(), display_path(w.plugin->file()), cause);
        latched = ledger_->record_death(w.plugin->device_class(), RestartLedger::Clock::now(), cause);
    }
    for (auto &d : devices_)
        if (d.worker == w.key && std::find(w.given.begin(), w.given.end(), d.slot) != w.given.end())
            device_lost(w, d, cause, latched);
    const std::string key = w.key;
    workers_.erase(key);
}

// Device `d` lost its worker: its step in flight recorded lost, what it
// shared released, and (unless it was leaving) set up again after the
// backoff, or failed when its class is latched.
void ServeLoop::device_lost(ServeWorkerProc &w, ServedDevice &d, const std::string &cause, bool latched)
{
    d.worker_restarts++;
    const HookWatch &s = table_->slot(static_cast<size_t>(d.slot));
    int seq = s.written_seq.load(std::memory_order_acquire);
    if (!d.phase.empty()) {
        const DeviceConfig &cfg = *d.plan->config;
        const int32_t step = s.step.load(std::memory_order_acquire);
        const int32_t hook = s.hook.load(std::memory_order_acquire);
        Record rec;
        rec.device = d.name;
        rec.seq = ++seq;
        rec.generation = d.generation;
        const size_t k = step >= 0 ? static_cast<size_t>(step) : 0;
        rec.step = k < cfg.steps.size() ? cfg.steps[k].text : "(" + d.phase + ")";
        rec.line = k < cfg.steps.size() ? cfg.steps[k].line : 0;
        rec.phase = d.phase == "setup" ? "setup" : d.phase == "teardown" ? "teardown" : "body";
        rec.status = w.killed_for == d.slot ? DEVHOST_E_TIMEOUT : DEVHOST_E_HOST_FAILED;
        rec.message = "the worker running plugin '" + w.plugin->name() + "' (" + w.key + ", pid " +
                      std::to_string(w.process->pid()) + ") " + cause +
                      (hook >= 0 ? " while its " + std::string(hook_name(static_cast<Hook>(hook))) + " hook ran" : "");
        spdlog::error("{}: step '{}' failed: {}: {}", d.name, rec.step, devhost_status_name(rec.status), rec.message);
        write_record(rec);
        if (d.phase == "body")
            d.bodies_failed++;
        for (auto &done : d.calls_running)
            done({{"error", rec.message}});
        d.calls_running.clear();
    }
    if (!release_vault(d.vault, d.name, seq, records_, d.generation))
        spdlog::error("{}: records of its release could not all be written", d.name);
    d.phase.clear();
    d.set_up = false;
    d.setup_ran = true;
    if (d.leaving)
        return;
    if (latched) {
        set_state(d, ServeState::Failed, ledger_->failed_reason(w.plugin->device_class(), setup_.settings.config_name));
        return;
    }
    const auto wait = ledger_->backoff(w.plugin->device_class());
    d.retry_at_ns = monotonic_ns() + static_cast<uint64_t>(wait.count()) * serve_ms_ns;
    set_state(d, ServeState::Setup, "its worker " + cause + "; set up again in " + std::to_string(wait.count()) + " ms");
}

// A setup that failed with its device there: tried again after the
// device's backoff (with jitter), until its budget is spent; then the
// device is failed until `devhost reset DEVICE`.
void ServeLoop::setup_failed(ServedDevice &d, const std::string &failed, uint64_t now)
{
    if (setup_ledger_->record_death(d.name, RestartLedger::Clock::now(), failed)) {
        const RestartPolicy &p = setup_ledger_->policy();
        set_state(d, ServeState::Failed,
                  failed + "; " + std::to_string(p.budget) + " failed setups within " +
                      std::to_string(p.window_ms / 1000) + " s ([host] restart-budget): failed until 'devhost reset " +
                      d.name + "'");
        return;
    }
    const auto wait = setup_ledger_->backoff(d.name);
    d.retry_at_ns = now + static_cast<uint64_t>(wait.count()) * serve_ms_ns;
    set_state(d, ServeState::Setup, failed + "; tried again in " + std::to_string(wait.count()) + " ms");
}

void ServeLoop::write_record(const Record &rec)
{
    if (!records_.write(rec))
        spdlog::error("{}: a record could not be written", rec.device);
    publish({{"event", "record"}, {"record", json::parse(RecordWriter::format(rec, setup_.config->config.host.record_data), nullptr, false)}});
}

// Devices that left (torn down, or never set up) are forgotten; a changed
// device's new version takes its place.
void ServeLoop::forget_left()
{
    for (auto it = devices_.begin(); it != devices_.end();) {
        if (!it->leaving || it->set_up || !it->phase.empty()) {
            ++it;
            continue;
        }
        for (auto &done : it->calls_waiting)
            done({{"error", "device '" + it->name + "' was torn down"}});
        const std::string name = it->name;
        spdlog::info("{}: torn down (generation {}; bodies: {} ok, {} failed; {} ticks skipped)", name,
                     it->generation, it->bodies_ok, it->bodies_failed, it->ticks_skipped);
        // Its slot is given again once its worker has let it go (a worker
        // that is gone has nothing to let go).
        if (auto w = workers_.find(it->worker); w != workers_.end()) {
            auto &given = w->second.given;
            if (auto g = std::find(given.begin(), given.end(), it->slot); g != given.end()) {
                given.erase(g);
                send_message(w->second.process->channel(), {{"op", "forget"}, {"slot", it->slot}});
            }
        }
        free_slots_.push_back(it->slot);
        it = devices_.erase(it);
        for (auto r = replacements_.begin(); r != replacements_.end();)
            if (r->second == name) {
                add_devices(r->first, {name});
                r = replacements_.erase(r);
                it = devices_.begin();  // the deque changed
            } else {
                ++r;
            }
    }
}

}  // namespace devhost
