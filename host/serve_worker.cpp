#include "serve_worker.hpp"

#include "device.hpp"
#include "loader.hpp"
#include "pipeline.hpp"
#include "records.hpp"
#include "watch_table.hpp"
#include "worker.hpp"
#include "worker_protocol.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <deque>
#include <fcntl.h>
#include <map>
#include <thread>
#include <unistd.h>

namespace devhost {

namespace {

using json = nlohmann::json;

const int channel = worker_channel_fd;

// One device of the worker: its config and plan, its cancel handle, and,
// between a setup and its teardown, its open Device.
struct Served {
    DeviceConfig config;
    DevicePlan plan;
    int32_t slot = -1;
    UniqueFd cancel;
    std::unique_ptr<Device> device;
    int seq = 0;         // the last record's, in this generation
    int generation = 0;
    std::thread thread;  // the phase running or last run
    // The records of the phase running (its thread's alone), as written,
    // for the supervisor's "done": a call's reply. Kept only when the phase
    // was asked with "reply" (a call waits for it).
    bool reply = false;
    nlohmann::json records = nlohmann::json::array();
    size_t records_bytes = 0;
    size_t records_cut = 0;  // past the bound: not in "done" (the output has them)
};

// The most record text one "done" message carries; more is cut (the output
// has them all).
constexpr size_t max_done_records_bytes = 512u << 10;

// The device whose phase this thread runs.
thread_local Served *running = nullptr;

class ServeWorker {
public:
    ServeWorker(std::shared_ptr<const Plugin> plugin, WatchTable &table, RecordWriter &records, RecordData data,
                int64_t timeout_ms)
        : plugin_(std::move(plugin)), table_(table), records_(records), data_(data),
          engine_(records, timeout_ms)
    {
        engine_.observe([this](const Record &r) { keep(r); });
    }
    ~ServeWorker()
    {
        for (auto &[slot, s] : devices_)
            if (s.thread.joinable())
                s.thread.join();
    }
    ServeWorker(const ServeWorker &) = delete;
    ServeWorker &operator=(const ServeWorker &) = delete;

    // Obeys the supervisor until "quit" or the channel closes.
    void obey(int64_t grace_ms)
    {
        for (;;) {
            Message m;
            std::string error;
            const Received r = receive_message(channel, m, -1, error);
            if (r == Received::Closed)
                return;
            if (r != Received::Message)
                worker_fail("serve: " + (r == Received::Bad ? error : std::string("the channel broke")));
            const std::string op = m.body.value("op", "");
            if (op == "quit")
                return;
            if (op == "ping")  // the watchdog's: this thread still answers
                send_message(channel, {{"ev", "pong"}, {"n", m.body.value("n", 0)}});
            else if (op == "live")  // whether anyone watches records as they come
                live_.store(m.body.value("on", false), std::memory_order_relaxed);
            else if (op == "stop")
                records_.stop_waiting(std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms / 2));
            else if (op == "device")
                add(m);
            else if (op == "forget")
                forget(m.body.at("slot").get<int32_t>());
            else if (op == "setup" || op == "body" || op == "teardown")
                start_phase(op, m.body.at("slot").get<int32_t>(), m.body.value("generation", 0),
                            m.body.value("resolved", std::string()), m.body.value("reply", false));
            else
                worker_fail("serve: unknown request '" + op + "'");
        }
    }

private:
    void add(Message &m)
    {
        const json &d = m.body.at("device");
        const int32_t slot = d.at("slot").get<int32_t>();
        if (slot < 0 || static_cast<size_t>(slot) >= table_.size() || m.fds.size() != 1 || devices_.count(slot))
            worker_fail("serve: a device without its slot or cancel handle");
        std::string error;
        Served &s = devices_[slot];
        s.config = device_config_from_json(d, error);
        if (!error.empty())
            worker_fail("serve: " + error);
        s.slot = slot;
        s.cancel = std::move(m.fds[0]);
        s.plan.plugin = plugin_;
        s.plan.path = d.at("resolved").get<std::string>();
        for (const auto &o : s.config.options)
            s.plan.options[o.key] = o.value;
        s.plan.control_codes = d.at("controls").get<std::vector<uint32_t>>();
    }

    // A device that left serve (torn down, its phases ended): its slot may
    // be given to another device.
    void forget(int32_t slot)
    {
        auto it = devices_.find(slot);
        if (it == devices_.end())
            return;
        if (it->second.thread.joinable())
            it->second.thread.join();
        if (it->second.device)
            worker_fail("serve: forget of a device that is still set up");
        devices_.erase(it);
    }

    // `resolved`, for a setup, is the device this attach uses (an identity
    // resolved again), "" to keep the one it was given.
    void start_phase(const std::string &phase, int32_t slot, int generation, const std::string &resolved,
                     bool reply)
    {
        auto it = devices_.find(slot);
        if (it == devices_.end())
            worker_fail("serve: " + phase + " of a device it was not given");
        Served &s = it->second;
        if (s.thread.joinable())
            s.thread.join();  // the supervisor asks one phase at a time: it has ended
        if (phase == "setup" && !resolved.empty())
            s.plan.path = resolved;
        s.plan.config = &s.config;  // the map's node is stable
        s.reply = reply;
        s.thread = std::thread([this, &s, phase, generation] {
            running = &s;
            s.records = json::array();
            s.records_bytes = 0;
            s.records_cut = 0;
            const PipelineResult r = run_phase(s, phase, generation);
            send_message(channel, {{"ev", "done"},
                                   {"slot", s.slot},
                                   {"phase", phase},
                                   {"ok", r.ok},
                                   {"status", r.status},
                                   {"records", std::move(s.records)},
                                   {"records_cut", s.records_cut}});
        });
    }

    // A record written by one of the phases (on its thread): sent to the
    // supervisor at once while anyone watches ("live": its monitors, the
    // fleet, the metrics; every record, as it happens: a long body's are not
    // held until it ends), and kept for the phase's "done" when a call waits
    // for it, up to its bound. Neither: nothing to do (the output has it),
    // which spares a periodic body's every record a second formatting, a
    // parse and a message.
    void keep(const Record &r)
    {
        Served *s = running;
        const bool live = live_.load(std::memory_order_relaxed);
        if (!s || (!live && !s->reply))
            return;
        const std::string line = RecordWriter::format(r, data_);
        json record = json::parse(line, nullptr, false);
        if (live)
            send_message(channel, {{"ev", "record"}, {"slot", s->slot}, {"record", record}});
        if (!s->reply)
            return;
        s->records_bytes += line.size();
        if (s->records_bytes <= max_done_records_bytes)
            s->records.push_back(std::move(record));
        else
            s->records_cut++;
    }

    // A Device for a setup (or a whole pipeline), supervised as in a run;
    // nullptr with the reason recorded when it cannot be made.
    bool make_device(Served &s, PipelineResult &r)
    {
        UniqueFd cancel(::fcntl(s.cancel.get(), F_DUPFD_CLOEXEC, 3));
        if (!cancel) {
            r = {s.config.name, false, DEVHOST_E_NO_MEMORY};
            return false;
        }
        s.device = std::make_unique<Device>(s.plan.plugin, s.config.name);
        s.device->supervise(&table_.slot(static_cast<size_t>(s.slot)), s.slot, std::move(cancel));
        s.device->set_faults(FaultSchedule(s.config.faults));
        return true;
    }

    PipelineResult run_phase(Served &s, const std::string &phase, int generation)
    {
        // (The supervisor drains the cancel handle before it asks for a
        // phase: a cancel that comes after that is this phase's.)
        PipelineResult r{s.config.name, true, DEVHOST_OK};
        const DeviceConfig &c = s.config;
        if (phase == "setup") {
            s.generation = generation;
            s.seq = 0;
            if (!c.phased)
                return r;  // a whole pipeline per trigger: nothing to set up
            if (!make_device(s, r))
                return r;
            r = engine_.run_range(*s.device, s.plan, 0, c.setup_steps, s.seq, s.generation);
            if (!r.ok)
                close(s, "setup");
            return r;
        }
        if (phase == "body" && !c.phased) {
            s.seq = 0;
            if (!make_device(s, r))
                return r;
            r = engine_.run_range(*s.device, s.plan, 0, c.steps.size(), s.seq, s.generation);
            close(s, "body");
            return r;
        }
        if (phase == "teardown" && !c.phased)
            return r;  // its pipeline unwound at the end of each body
        if (!s.device)
            return {c.name, false, DEVHOST_E_INVALID};
        if (phase == "body")
            return engine_.run_range(*s.device, s.plan, c.setup_steps, c.body_steps, s.seq, s.generation);
        r = engine_.run_range(*s.device, s.plan, c.setup_steps + c.body_steps,
                              c.steps.size() - c.setup_steps - c.body_steps, s.seq, s.generation);
        close(s, "teardown");
        return r;
    }

    // Unwinds what the device holds and lets it go.
    void close(Served &s, const char *phase)
    {
        engine_.release(*s.device, s.plan, s.seq, s.generation, phase);
        HookWatch &w = table_.slot(static_cast<size_t>(s.slot));
        w.written_seq.store(s.seq, std::memory_order_release);
        s.device.reset();
        w.phase.store(HookWatch::Done, std::memory_order_release);
    }

    std::shared_ptr<const Plugin> plugin_;
    WatchTable &table_;
    RecordWriter &records_;
    RecordData data_;
    Engine engine_;
    std::map<int32_t, Served> devices_;
    std::atomic<bool> live_{false};  // the supervisor's "live": records sent as they come
};

}  // namespace

int serve_worker(Message &msg)
{
    const json &body = msg.body;
    if (msg.fds.size() != 3)
        worker_fail("serve: expected the plugin, records and watch table descriptors");
    PluginRegistry registry;
    auto plugin = worker_load(registry, body.at("file").get<std::string>(), std::move(msg.fds[0]));
    if (!plugin)
        worker_fail(registry.refusals().back().reason);
    // A stop signal sent to the whole process group is the supervisor's to
    // act on: it tears the devices down, then lets this worker go.
    std::signal(SIGTERM, SIG_IGN);
    WatchTable table = WatchTable::attach(std::move(msg.fds[2]));
    worker_set_watch_table(&table);
    RecordData data;
    data.mode = static_cast<RecordData::Mode>(body.at("record_mode").get<int>());
    data.head = body.at("record_head").get<size_t>();
    RecordWriter records(std::move(msg.fds[1]), data, table.records_lock());
    {
        ServeWorker worker(plugin, table, records, data, body.at("timeout_ms").get<int64_t>());
        send_message(channel, {{"ev", "started"}});
        worker.obey(body.at("grace_ms").get<int64_t>());
    }
    worker_set_watch_table(nullptr);
    return records.failed() ? 1 : 0;
}

}  // namespace devhost
