#include "worker.hpp"

#include "serve_worker.hpp"

#include "config.hpp"
#include "faults.hpp"
#include "loader.hpp"
#include "logging.hpp"
#include "pipeline.hpp"
#include "plugin_description.hpp"
#include "records.hpp"
#include "scan.hpp"
#include "steps.hpp"
#include "watch_table.hpp"
#include "worker_channel.hpp"
#include "worker_protocol.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <deque>
#include <linux/futex.h>
#include <mutex>
#include <spdlog/sinks/base_sink.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <thread>
#include <sys/syscall.h>
#include <unistd.h>

namespace devhost {

namespace {

using json = nlohmann::json;

int channel = worker_channel_fd;
WatchTable *watch_table = nullptr;  // while a run runs

// Log lines go to the supervisor, which writes them where the host logs.
class ChannelSink final : public spdlog::sinks::base_sink<std::mutex> {
protected:
    void sink_it_(const spdlog::details::log_msg &msg) override
    {
        send_message(channel, {{"ev", "log"},
                               {"level", static_cast<int>(msg.level)},
                               {"text", std::string(msg.payload.data(), msg.payload.size())}});
    }
    void flush_() override {}
};

void setup_worker_logging(const std::string &level)
{
    auto sink = std::make_shared<ChannelSink>();
    auto logger = std::make_shared<spdlog::logger>("devhost", sink);
    logger->set_level(logging::parse_level(level).value_or(spdlog::level::info));
    spdlog::set_default_logger(logger);
}

// Asks the supervisor to drop what device `device` shared (`role`, or
// everything when empty) and waits, bounded, for its word: the plugin's
// own close must stay the last one.
bool drop_in_vault(const devhost_host_device *device, const std::string &role)
{
    if (!watch_table || device->slot < 0 || static_cast<size_t>(device->slot) >= watch_table->size())
        return false;
    HookWatch &watch = watch_table->slot(static_cast<size_t>(device->slot));
    const uint32_t n = watch.vault_drops.fetch_add(1) + 1;
    json request = {{"ev", "drop"}, {"slot", device->slot}, {"n", n}};
    if (!role.empty())
        request["role"] = role;
    if (!send_message(channel, request))
        return false;
    const uint64_t until = monotonic_ns() + 2'000'000'000ULL;
    for (;;) {
        const uint32_t seen = watch.vault_ack.load(std::memory_order_acquire);
        if (seen >= n)
            return true;
        const uint64_t now = monotonic_ns();
        if (now >= until) {
            spdlog::warn("{}: the supervisor did not release its copy of the device within 2 s", device->name);
            return false;
        }
        timespec wait{0, static_cast<long>(std::min<uint64_t>(until - now, 100'000'000ULL))};
        syscall(SYS_futex, reinterpret_cast<uint32_t *>(&watch.vault_ack), FUTEX_WAIT, seen, &wait, nullptr, 0);
    }
}

// share_fd: a reference to the supervisor's vault, one per device and
// role (fd -1 drops the role's).
devhost_status share_with_supervisor(const devhost_host_device *device, int32_t fd, const char *role)
{
    if (!device || device->slot < 0 || !role || !valid_role(role))
        return DEVHOST_E_INVALID;
    auto *token = const_cast<devhost_host_device *>(device);
    auto &roles = token->shared_roles;
    const auto held = std::find(roles.begin(), roles.end(), role);
    if (fd == -1) {
        if (held == roles.end())
            return DEVHOST_OK;
        roles.erase(held);
        return drop_in_vault(device, role) ? DEVHOST_OK : DEVHOST_E_IO;
    }
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0)
        return DEVHOST_E_INVALID;
    if (!send_message(channel, {{"ev", "fd"}, {"slot", device->slot}, {"role", role}}, {fd}))
        return DEVHOST_E_IO;
    if (held == roles.end())
        roles.emplace_back(role);
    return DEVHOST_OK;
}

// After close returned: whatever the plugin still shared goes.
void drop_from_vault(const devhost_host_device *device)
{
    if (!device || device->shared_roles.empty())
        return;
    const_cast<devhost_host_device *>(device)->shared_roles.clear();
    drop_in_vault(device, "");
}

}  // namespace

[[noreturn]] void worker_fail(const std::string &why)
{
    send_message(channel, {{"ev", "failed"}, {"reason", why}});
    std::_Exit(1);
}

std::shared_ptr<const Plugin> worker_load(PluginRegistry &registry, const std::string &file, UniqueFd fd)
{
    CheckedFile checked;
    checked.file = file;
    if (::fstat(fd.get(), &checked.st) != 0)
        worker_fail("cannot stat the plugin file handed over");
    checked.fd = std::move(fd);
    return registry.load_checked(std::move(checked));
}

void worker_set_watch_table(WatchTable *table) { watch_table = table; }

namespace {

[[noreturn]] void fail(const std::string &why) { worker_fail(why); }

std::shared_ptr<const Plugin> load(PluginRegistry &registry, const std::string &file, UniqueFd fd)
{
    return worker_load(registry, file, std::move(fd));
}

int describe(Message &msg)
{
    const json &files = msg.body.at("files");
    if (files.size() != msg.fds.size())
        fail("describe: files and descriptors do not match");
    PluginRegistry registry;
    registry.set_quiet(true);
    for (size_t i = 0; i < files.size(); i++) {
        send_message(channel, {{"ev", "loading"}, {"i", i}});
        auto plugin = load(registry, files[i].get<std::string>(), std::move(msg.fds[i]));
        if (plugin)
            send_message(channel, {{"ev", "described"}, {"i", i}, {"plugin", PluginCodec::to_json(*plugin)}});
        else
            send_message(channel, {{"ev", "refused"}, {"i", i}, {"reason", registry.refusals().back().reason}});
    }
    send_message(channel, {{"ev", "done"}});
    return 0;
}

int enumerate(Message &msg)
{
    if (msg.fds.size() != 1)
        fail("enumerate: expected one plugin descriptor");
    PluginRegistry registry;
    auto plugin = load(registry, msg.body.at("file").get<std::string>(), std::move(msg.fds[0]));
    if (!plugin)
        fail(registry.refusals().back().reason);
    const ClassScan scan = scan_class(plugin, msg.body.at("flags").get<uint32_t>());
    send_message(channel, {{"ev", "scanned"}, {"scan", scan_to_json(scan)}});
    if (scan.abandoned)
        std::_Exit(1);  // enumerate still runs: the library must stay
    return 0;
}

// The devices of a run request, rebuilt as the supervisor planned them.
struct RunPlan {
    std::deque<DeviceConfig> configs;
    std::vector<DevicePlan> plans;
    std::vector<int32_t> slots;
};

RunPlan plan_devices(const json &devices, const std::shared_ptr<const Plugin> &plugin)
{
    RunPlan run;
    for (const auto &d : devices) {
        std::string error;
        DeviceConfig c = device_config_from_json(d, error);
        if (!error.empty())
            fail("run: " + error);
        run.configs.push_back(std::move(c));
        DevicePlan p;
        p.config = &run.configs.back();
        p.plugin = plugin;
        p.path = d.at("resolved").get<std::string>();
        for (const auto &o : run.configs.back().options)
            p.options[o.key] = o.value;
        p.control_codes = d.at("controls").get<std::vector<uint32_t>>();
        run.plans.push_back(std::move(p));
        run.slots.push_back(d.at("slot").get<int32_t>());
    }
    return run;
}

// While a run runs: the supervisor's "stop" (a stop signal came; it fired
// every cancel handle itself) makes a record write waiting for a slow
// reader give up half-way through the grace, as in one process.
class StopListener {
public:
    StopListener(RecordWriter &records, int64_t grace_ms) : records_(records), grace_ms_(grace_ms)
    {
        quit_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (quit_)
            thread_ = std::thread([this] { listen(); });
    }
    ~StopListener()
    {
        const uint64_t one = 1;
        if (quit_ && ::write(quit_.get(), &one, sizeof one) == sizeof one && thread_.joinable())
            thread_.join();
        else if (thread_.joinable())
            thread_.detach();
    }
    StopListener(const StopListener &) = delete;
    StopListener &operator=(const StopListener &) = delete;

private:
    void listen()
    {
        for (;;) {
            pollfd p[2] = {{channel, POLLIN, 0}, {quit_.get(), POLLIN, 0}};
            if (::poll(p, 2, -1) < 0 && errno != EINTR)
                return;
            if (p[1].revents)
                return;
            if (!p[0].revents)
                continue;
            Message m;
            std::string error;
            const Received r = receive_message(channel, m, 0, error);
            if (r == Received::Closed || r == Received::Bad)
                return;
            if (r == Received::Message && m.body.value("op", "") == "stop")
                records_.stop_waiting(std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms_ / 2));
        }
    }

    RecordWriter &records_;
    int64_t grace_ms_;
    UniqueFd quit_;
    std::thread thread_;
};

// Collects the cancel handles the supervisor sends after the request.
std::vector<UniqueFd> receive_cancel_fds(size_t count)
{
    std::vector<UniqueFd> fds;
    while (fds.size() < count) {
        Message m;
        std::string error;
        if (receive_message(channel, m, 30000, error) != Received::Message || m.body.value("op", "") != "cancel-fds")
            fail("run: the cancel handles did not come");
        for (auto &fd : m.fds)
            fds.push_back(std::move(fd));
    }
    return fds;
}

int run(Message &msg)
{
    const json &body = msg.body;
    if (msg.fds.size() != 3)
        fail("run: expected the plugin, records and watch table descriptors");
    PluginRegistry registry;
    auto plugin = load(registry, body.at("file").get<std::string>(), std::move(msg.fds[0]));
    if (!plugin)
        fail(registry.refusals().back().reason);
    WatchTable table = WatchTable::attach(std::move(msg.fds[2]));
    watch_table = &table;
    RecordData data;
    data.mode = static_cast<RecordData::Mode>(body.at("record_mode").get<int>());
    data.head = body.at("record_head").get<size_t>();
    RecordWriter records(std::move(msg.fds[1]), data, table.records_lock());
    RunPlan plan = plan_devices(body.at("devices"), plugin);
    std::vector<UniqueFd> cancels = receive_cancel_fds(plan.plans.size());
    for (int32_t slot : plan.slots)
        if (slot < 0 || static_cast<size_t>(slot) >= table.size())
            fail("run: a device slot outside the watch table");

    Engine engine(records, body.at("timeout_ms").get<int64_t>());
    engine.on_device([&](Device &device, const DevicePlan &p) {
        const size_t i = static_cast<size_t>(&p - plan.plans.data());
        device.supervise(&table.slot(static_cast<size_t>(plan.slots[i])), plan.slots[i], std::move(cancels[i]));
    });
    const int64_t grace_ms = body.at("grace_ms").get<int64_t>();
    StopListener listener(records, grace_ms);
    send_message(channel, {{"ev", "started"}});
    const auto results = engine.run_all(plan.plans, std::chrono::milliseconds(grace_ms));
    json out = json::array();
    for (const auto &r : results)
        out.push_back({{"device", r.device}, {"ok", r.ok}, {"status", r.status}});
    send_message(channel, {{"ev", "result"}, {"results", out}, {"records_failed", records.failed()}});
    if (engine.abandoned())
        std::_Exit(1);
    watch_table = nullptr;
    return 0;
}

}  // namespace

int run_worker(int, char **)
{
    // Its name in ps, top and /proc/PID/comm, however it was started.
    prctl(PR_SET_NAME, "devhost-worker");
    // The supervisor's signals stop the run; a terminal's reach the whole
    // process group and must not kill the worker under it.
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGQUIT, SIG_IGN);
    std::signal(SIGHUP, SIG_IGN);
    std::signal(SIGPIPE, SIG_IGN);
    Message msg;
    std::string error;
    if (receive_message(channel, msg, 30000, error) != Received::Message)
        return 1;
    try {
        setup_worker_logging(msg.body.value("log_level", "info"));
        logging::set_share_fd(share_with_supervisor);
        logging::set_drop_shared(drop_from_vault);
        const std::string op = msg.body.value("op", "");
        if (op == "describe")
            return describe(msg);
        if (op == "enumerate")
            return enumerate(msg);
        if (op == "run")
            return run(msg);
        if (op == "serve")
            return serve_worker(msg);
        fail("unknown request '" + op + "'");
    } catch (const std::exception &e) {
        fail(std::string("bad request: ") + e.what());
    }
}

}  // namespace devhost
