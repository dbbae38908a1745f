#include "serve.hpp"

#include "deadlines.hpp"
#include "serve_loop.hpp"
#include "worker_protocol.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <sys/eventfd.h>
#include <cstring>
#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace devhost {

namespace {

using json = nlohmann::json;

// A device's section as it counts for a reload: everything but line numbers.
json section_identity(const DevicePlan &plan)
{
    const DeviceConfig &c = *plan.config;
    json j = device_config_to_json(c);
    j.erase("line");
    j.erase("path_line");
    for (auto &o : j["options"])
        o.erase(2);
    for (auto &s : j["steps"])
        s.erase("line");
    j["resolved"] = plan.path;
    j["run"] = {c.run.start, c.run.on_attach, c.run.on_demand, c.run.every_ms ? json(*c.run.every_ms) : json()};
    j["stale_after"] = c.stale_after_ms ? json(*c.stale_after_ms) : json();
    j["default_timeout"] = 0;  // [host] timeout counts through the worker's request, not here
    return j;
}

// The [host] keys whose values differ between `a` and `b`: serve keeps the
// settings it started with (its workers, socket, ledger and output were
// made from them), so a reload names these as needing a restart.
std::vector<std::string> host_changes(const HostSettings &a, const HostSettings &b)
{
    std::vector<std::string> keys;
    const auto differ = [&](const char *key, bool changed) {
        if (changed)
            keys.emplace_back(key);
    };
    differ("plugin-path", a.plugin_path != b.plugin_path);
    differ("log-level", a.log_level != b.log_level);
    differ("log-file", a.log_file != b.log_file);
    differ("output", a.output != b.output);
    differ("timeout", a.timeout_ms != b.timeout_ms);
    differ("port-dir", a.port_dir != b.port_dir);
    differ("physical-drives", a.physical_drives_all != b.physical_drives_all);
    differ("record-data", a.record_data.mode != b.record_data.mode || a.record_data.head != b.record_data.head);
    differ("isolation", a.isolation != b.isolation);
    differ("kill-grace", a.kill_grace_ms != b.kill_grace_ms);
    differ("describe-timeout", a.describe_timeout_ms != b.describe_timeout_ms);
    differ("allow-faults", a.allow_faults != b.allow_faults);
    differ("restart-budget", a.restart_budget != b.restart_budget);
    differ("restart-window", a.restart_window_ms != b.restart_window_ms);
    differ("state-dir", a.state_dir != b.state_dir);
    differ("cache-dir", a.cache_dir != b.cache_dir || a.cache_disabled != b.cache_disabled);
    differ("control-socket", a.control_socket != b.control_socket);
    differ("control-group", a.control_group != b.control_group);
    return keys;
}

// The same for [mqtt]: the publisher was made from it (its connection,
// will and births).
std::vector<std::string> mqtt_changes(const MqttSettings &a, const MqttSettings &b)
{
    std::vector<std::string> keys;
    const auto differ = [&](const char *key, bool changed) {
        if (changed)
            keys.emplace_back(key);
    };
    differ("broker", a.enabled != b.enabled || a.broker != b.broker);
    differ("protocol", a.mqtt5 != b.mqtt5);
    differ("client-id", a.client_id != b.client_id);
    differ("group", a.group != b.group);
    differ("node", a.node != b.node);
    differ("topic-prefix", a.prefix != b.prefix);
    differ("qos", a.qos != b.qos);
    differ("keepalive", a.keepalive_s != b.keepalive_s);
    differ("username", a.username != b.username);
    differ("password-file", a.password_file != b.password_file);
    differ("ca-file", a.ca_file != b.ca_file);
    differ("cert-file", a.cert_file != b.cert_file);
    differ("key-file", a.key_file != b.key_file);
    differ("allow-commands", a.allow_commands != b.allow_commands);
    differ("spool-max-bytes", a.spool_max_bytes != b.spool_max_bytes);
    differ("spool-max-age", a.spool_max_age_ms != b.spool_max_age_ms);
    return keys;
}

// One warning line for a section whose `keys` changed, "" when none did.
std::string kept_warning(const std::string &section, const std::vector<std::string> &keys)
{
    if (keys.empty())
        return "";
    std::string list;
    for (const auto &k : keys)
        list += (list.empty() ? "" : ", ") + k;
    return section + " " + list + " changed: serve keeps the values it started with until it is restarted "
                                  "(systemctl restart devhost)";
}

const DevicePlan *plan_of(const ServeConfig &config, const std::string &name)
{
    for (const auto &p : config.plan.devices)
        if (p.config->name == name)
            return &p;
    return nullptr;
}

}  // namespace

sigset_t serve_signals()
{
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGHUP})
        sigaddset(&set, sig);
    return set;
}

const char *serve_state_name(ServeState state)
{
    switch (state) {
    case ServeState::Setup: return "setup";
    case ServeState::Idle: return "idle";
    case ServeState::Running: return "running";
    case ServeState::Stale: return "stale";
    case ServeState::Waiting: return "waiting-for-device";
    case ServeState::Failed: return "failed";
    }
    return "setup";
}

ServeLoop::ServeLoop(ServeSetup setup) : setup_(std::move(setup)), records_(*setup_.records)
{
    const Config &config = setup_.config->config;
    RestartPolicy policy;
    policy.budget = config.host.restart_budget;
    policy.window_ms = config.host.restart_window_ms;
    std::optional<std::filesystem::path> state;
    if (config.host.state_dir)
        state = std::filesystem::path(*config.host.state_dir);
    ledger_.emplace(policy, state);
    // A device's failed setups: the same budget and window, a slower start
    // (a device that is there but refuses is rarely fixed in 100 ms).
    RestartPolicy device_policy = policy;
    device_policy.backoff_initial_ms = 1000;
    device_policy.backoff_max_ms = 60000;
    setup_ledger_.emplace(device_policy);
    table_.emplace(WatchTable::create(serve_max_slots));
    records_.share_lock(table_->records_lock(), 2000);
    const sigset_t set = serve_signals();
    signals_.reset(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals_)
        throw std::system_error(errno, std::generic_category(), "serve: signalfd");
    std::vector<std::string> names;
    for (const auto &p : setup_.config->plan.devices)
        names.push_back(p.config->name);
    add_devices(setup_.config, names);
    if (setup_.control)
        control_ = setup_.control(*this);
}

void ServeLoop::add_devices(const std::shared_ptr<ServeConfig> &config, const std::vector<std::string> &names)
{
    for (const auto &name : names) {
        const DevicePlan *plan = plan_of(*config, name);
        if (!plan)
            continue;
        if (free_slots_.empty() && static_cast<size_t>(next_slot_) >= serve_max_slots) {
            spdlog::error("{}: not set up: serve holds {} devices, its most", name, serve_max_slots);
            continue;
        }
        ServedDevice &d = devices_.emplace_back();
        d.source = config;
        d.plan = plan;
        d.name = name;
        if (!free_slots_.empty()) {
            d.slot = free_slots_.back();
            free_slots_.pop_back();
        } else {
            d.slot = next_slot_++;
        }
        d.cancel.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        d.worker = setup_.settings.isolation == Isolation::Device ? "device " + name
                                                                  : "class " + plan->plugin->device_class();
        d.pending_body = plan->config->run.on_attach;
        publish_state(d);
    }
}

int ServeLoop::run()
{
    spdlog::info("serving {} device(s) from {}; devices coming and going seen through {}", devices_.size(),
                 setup_.config->config.file.string(), watch_.source());
    if (setup_.fleet)
        setup_.fleet->start();  // its births name every device
    for (;;) {
        uint64_t now = monotonic_ns();
        look_at_devices(now);
        const bool live = records_watched();  // a monitor may have come or gone (control_->process)
        for (auto &[key, w] : workers_)
            tell_live(w, live);
        for (auto &d : devices_)
            schedule(d, now);
        forget_left();
        if (stopping_ && devices_.empty())
            break;
        notify(now);
        std::vector<pollfd> fds{{signals_.get(), POLLIN, 0}, {watch_.fd(), POLLIN, 0}};
        if (control_)
            fds.push_back({control_->fd(), POLLIN, 0});
        // Work the sinks have for this thread (the fleet's commands,
        // mqtt_commands.hpp; the metrics' refresh, metrics.hpp): another
        // thread (or a timer) signals their descriptor; it runs here.
        const size_t sinks_at = fds.size();
        std::vector<EventSink *> sinks;
        for (EventSink *s : {setup_.fleet.get(), setup_.metrics.get()})
            if (s && s->fd() >= 0) {
                fds.push_back({s->fd(), POLLIN, 0});
                sinks.push_back(s);
            }
        std::vector<ServeWorkerProc *> owners;
        for (auto &[key, w] : workers_) {
            fds.push_back({w.process->channel(), POLLIN, 0});
            fds.push_back({w.process->pidfd(), POLLIN, 0});
            owners.push_back(&w);
        }
        ::poll(fds.data(), fds.size(), poll_timeout(now));
        if (fds[0].revents)
            on_signal();
        if (fds[1].revents && watch_.drain())
            look_ = true;
        if (control_ && fds[2].revents)
            control_->process();
        for (size_t k = 0; k < sinks.size(); k++)
            if (fds[sinks_at + k].revents)
                sinks[k]->process(*this);
        const size_t first = sinks_at + sinks.size();
        std::vector<std::string> dead;
        for (size_t k = 0; k < owners.size(); k++) {
            ServeWorkerProc &w = *owners[k];
            if (fds[first + 2 * k].revents)
                drain(w);
            if (fds[first + 2 * k + 1].revents || !w.process)
                dead.push_back(w.key);
        }
        for (const auto &key : dead)
            if (auto it = workers_.find(key); it != workers_.end())
                worker_died(it->second);
        if (reload_asked_) {
            reload_asked_ = false;
            reload();
        }
        now = monotonic_ns();
        for (auto &[key, w] : workers_)
            watch_deadlines(w, now);
    }
    for (auto &[key, w] : workers_)
        send_message(w.process->channel(), {{"op", "quit"}});
    for (auto &[key, w] : workers_) {
        w.process->reap();
    }
    spdlog::info("serve stopped");
    return records_.failed() ? 1 : 0;
}

void ServeLoop::on_signal()
{
    signalfd_siginfo info{};
    while (::read(signals_.get(), &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGHUP) {
            spdlog::info("SIGHUP: reloading {}", setup_.config->config.file.string());
            reload_asked_ = true;
        } else if (!stopping_) {
            spdlog::info("{}: stopping (tearing every device down)", strsignal(static_cast<int>(info.ssi_signo)));
            stop();
        }
    }
}

void ServeLoop::stop()
{
    stopping_ = true;
    stop_at_ns_ = monotonic_ns() + static_cast<uint64_t>(setup_.settings.stop_grace.count()) * serve_ms_ns;
    notifier_.stopping();
    // A phase in flight is cancelled (send_phase drains the handle before
    // the next phase, so the teardown after it is not).
    const uint64_t one = 1;
    for (auto &d : devices_) {
        d.leaving = true;
        if (!d.phase.empty())
            [[maybe_unused]] ssize_t n = ::write(d.cancel.get(), &one, sizeof one);
    }
    replacements_.clear();
    for (auto &[key, w] : workers_)
        send_message(w.process->channel(), {{"op", "stop"}});
}

void ServeLoop::notify(uint64_t now)
{
    size_t counts[6] = {};
    bool all_ran = true;
    for (const auto &d : devices_) {
        counts[static_cast<int>(d.state)]++;
        all_ran = all_ran && (d.setup_ran || d.state == ServeState::Failed || d.state == ServeState::Waiting);
    }
    if (!ready_sent_ && all_ran && !stopping_) {
        ready_sent_ = true;
        notifier_.ready();
    }
    std::string line = std::to_string(devices_.size()) + " devices:";
    const char *sep = " ";
    for (int s = 0; s < 6; s++)
        if (counts[s]) {
            line += sep + std::to_string(counts[s]) + " " + serve_state_name(static_cast<ServeState>(s));
            sep = ", ";
        }
    notifier_.status(stopping_ ? "stopping: " + line : line);
    // Pings from READY on (before it, systemd's start timeout watches).
    const auto interval = notifier_.ping_interval();
    if (!interval || !ready_sent_ || now < next_ping_ns_)
        return;
    next_ping_ns_ = now + static_cast<uint64_t>(interval->count()) * 1000u;
    // Only while every worker answered the last ping: a wedged worker (or
    // loop) stops the pings and systemd restarts the service.
    bool answered = true;
    for (auto &[key, w] : workers_)
        answered = answered && w.pongs == w.pings;
    if (answered)
        notifier_.watchdog();
    else
        spdlog::warn("watchdog: a worker did not answer within {} ms; no ping sent", interval->count() / 1000);
    for (auto &[key, w] : workers_)
        if (w.started && send_message(w.process->channel(), {{"op", "ping"}, {"n", w.pings + 1}}))
            w.pings++;
}

int ServeLoop::poll_timeout(uint64_t now) const
{
    int64_t ms = 1000;
    const auto until = [&](uint64_t at) {
        if (at)
            ms = std::min<int64_t>(ms, at > now ? static_cast<int64_t>((at - now) / serve_ms_ns) + 1 : 0);
    };
    for (const auto &d : devices_) {
        if (!d.phase.empty()) {
            ms = std::min<int64_t>(ms, 20);  // the watch table's deadlines, read every 20 ms
            continue;
        }
        // Only what schedule() would act on: a time it leaves in the past
        // would make the loop spin.
        if (d.set_up) {
            until(d.next_tick_ns);
            if (d.plan->config->stale_after_ms && d.state == ServeState::Idle)
                until(d.last_ok_ns + static_cast<uint64_t>(*d.plan->config->stale_after_ms) * serve_ms_ns);
        } else if (d.state == ServeState::Waiting) {
            until(d.attach_at_ns);
            until(next_look_ns_);
        } else if (d.state != ServeState::Failed) {
            until(d.retry_at_ns);
        }
    }
    if (notifier_.ping_interval())
        until(next_ping_ns_);
    if (stopping_)
        until(stop_at_ns_);
    return static_cast<int>(std::max<int64_t>(ms, 0));
}

void ServeLoop::publish(const json &event)
{
    if (control_)
        control_->publish(event);
    if (setup_.fleet)
        setup_.fleet->publish(event);
    if (setup_.metrics)
        setup_.metrics->publish(event);
}

void ServeLoop::publish_state(const ServedDevice &d)
{
    publish({{"event", "state"},
             {"device", d.name},
             {"state", serve_state_name(d.state)},
             {"generation", d.generation},
             {"message", d.message},
             {"class", d.plan->plugin->device_class()},
             {"path", d.plan->path}});
}

void ServeLoop::set_state(ServedDevice &d, ServeState state, const std::string &message)
{
    if (!message.empty() || state == ServeState::Idle)
        d.message = message;
    if (d.state == state)
        return;
    d.state = state;
    publish_state(d);
}

// ---- the control Handler ---------------------------------------------------

json ServeLoop::list()
{
    json out = json::array();
    for (const auto &d : devices_) {
        json last = nullptr;
        if (d.last_success) {
            const std::time_t t = std::chrono::system_clock::to_time_t(*d.last_success);
            std::tm tm{};
            gmtime_r(&t, &tm);
            char buf[32];
            std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
            last = buf;
        }
        out.push_back({{"device", d.name},
                       {"class", d.plan->plugin->device_class()},
                       {"state", serve_state_name(d.state)},
                       {"generation", d.generation},
                       {"last_success", last},
                       {"bodies_ok", d.bodies_ok},
                       {"bodies_failed", d.bodies_failed},
                       {"ticks_skipped", d.ticks_skipped},
                       {"worker_restarts", d.worker_restarts},
                       {"message", d.message}});
    }
    return out;
}

void ServeLoop::call(const std::string &device, std::function<void(json)> done)
{
    ServedDevice *d = by_name(device);
    if (!d || d->leaving) {
        done({{"error", "no device '" + device + "'"}});
        return;
    }
    if (!d->set_up || stopping_) {
        done({{"error", "device '" + device + "' is " + serve_state_name(d->state) + (d->message.empty() ? "" : ": " + d->message)}});
        return;
    }
    d->calls_waiting.push_back(std::move(done));
}

json ServeLoop::reset(const std::string &device)
{
    ServedDevice *d = by_name(device);
    if (!d)
        return {{"error", "no device '" + device + "'"}};
    if (d->state != ServeState::Failed)
        return {{"error", "device '" + device + "' is not failed (it is " + std::string(serve_state_name(d->state)) + ")"}};
    if (setup_ledger_->failed(d->name)) {  // its own setups failed, not its class's workers
        setup_ledger_->reset(d->name);
        d->retry_at_ns = monotonic_ns();
        set_state(*d, ServeState::Setup, "reset");
        return json::object();
    }
    const std::string cls = d->plan->plugin->device_class();
    ledger_->reset(cls);
    for (auto &other : devices_)  // the class's mark was theirs too
        if (other.state == ServeState::Failed && other.plan->plugin->device_class() == cls) {
            other.retry_at_ns = monotonic_ns();
            set_state(other, ServeState::Setup, "reset");
        }
    return json::object();
}

json ServeLoop::reload()
{
    notifier_.reloading();
    std::string error;
    std::shared_ptr<ServeConfig> next = setup_.reload ? setup_.reload(error) : nullptr;
    if (!next) {
        spdlog::error("reload refused; the running config stays: {}", error.empty() ? "no reload possible" : error);
        notifier_.ready();
        return {{"error", error.empty() ? "no reload possible" : error}};
    }
    // The running settings stay whole: the new config's devices run under
    // the [host] and [mqtt] serve started with.
    json reply = json::object();
    const Config &running = setup_.config->config;
    for (const std::string &warning : {kept_warning("[host]", host_changes(running.host, next->config.host)),
                                       kept_warning("[mqtt]", mqtt_changes(running.mqtt, next->config.mqtt)),
                                       kept_warning("[metrics]", running.metrics.enabled != next->config.metrics.enabled ||
                                                                         running.metrics.listen != next->config.metrics.listen
                                                                     ? std::vector<std::string>{"listen"}
                                                                     : std::vector<std::string>{})})
        if (!warning.empty()) {
            spdlog::warn("reload: {}", warning);
            reply["warnings"].push_back(warning);
        }
    next->config.host = running.host;
    next->config.mqtt = running.mqtt;
    next->config.metrics = running.metrics;
    std::vector<std::string> added, changed;
    for (auto &d : devices_) {
        if (d.leaving)
            continue;
        const DevicePlan *p = plan_of(*next, d.name);
        if (!p) {
            spdlog::info("reload: {} removed: tearing it down", d.name);
            d.leaving = true;
            if (setup_.fleet)  // its death now: nothing of it is published after
                setup_.fleet->publish({{"event", "removed"}, {"device", d.name}});
        } else if (section_identity(*p) != section_identity(*d.plan)) {
            spdlog::info("reload: {} changed: tearing it down, then setting it up again", d.name);
            d.leaving = true;
            replacements_.emplace_back(next, d.name);
        }
    }
    for (const auto &p : next->plan.devices)
        if (!by_name(p.config->name) &&
            std::none_of(replacements_.begin(), replacements_.end(), [&](const auto &r) { return r.second == p.config->name; })) {
            spdlog::info("reload: {} added", p.config->name);
            added.push_back(p.config->name);
        }
    if (setup_.fleet)  // a name a reload removed before may come back
        for (const auto &name : added)
            setup_.fleet->publish({{"event", "added"}, {"device", name}});
    add_devices(next, added);
    setup_.config = next;
    notifier_.ready();
    return reply;
}

// ---- entry -----------------------------------------------------------------

int run_serve(ServeSetup setup)
{
    ServeLoop loop(std::move(setup));
    return loop.run();
}

}  // namespace devhost
