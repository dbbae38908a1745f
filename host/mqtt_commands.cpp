#include "mqtt_commands.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <sys/eventfd.h>
#include <system_error>
#include <unistd.h>

namespace devhost {

namespace {

using json = nlohmann::json;

const char *const known_commands[] = {"call", "reset", "rebirth"};

bool known(const std::string &c)
{
    return std::find(std::begin(known_commands), std::end(known_commands), c) != std::end(known_commands);
}

// The command's "id", when it is one we echo (a short string or an integer).
json request_id(const json &j)
{
    const auto it = j.find("id");
    if (it == j.end())
        return nullptr;
    if (it->is_number_integer())
        return *it;
    if (it->is_string() && it->get_ref<const std::string &>().size() <= 128)
        return *it;
    return nullptr;
}

}  // namespace

std::string fleet_shown(const std::string &s, size_t max)
{
    std::string cut = s.substr(0, max);
    std::string out = json(cut).dump(-1, ' ', false, json::error_handler_t::replace);
    return s.size() > max ? out + "..." : out;
}

FleetCommands::FleetCommands(std::string prefix, std::string group, std::string node, std::vector<std::string> allowed,
                             Hooks hooks)
    : prefix_(std::move(prefix)), group_(std::move(group)), node_(std::move(node)), allowed_(std::move(allowed)),
      hooks_(std::move(hooks)), wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
{
    if (!wake_)
        throw std::system_error(errno, std::generic_category(), "mqtt commands: eventfd");
}

std::vector<std::string> FleetCommands::filters() const
{
    const std::string base = prefix_ + "/" + group_ + "/";
    return {base + "NCMD/" + node_, base + "DCMD/" + node_ + "/+"};
}

void FleetCommands::received(const std::string &topic, const void *payload, size_t size, bool retained)
{
    {
        std::lock_guard lock(mutex_);
        if (waiting_.size() >= max_commands_waiting) {
            dropped_++;
            return;
        }
        Waiting w;
        w.topic = topic.substr(0, 1024);  // a topic of ours is far shorter: a longer one is refused
        w.oversized = size > max_command_bytes;
        w.retained = retained;
        if (!w.oversized && payload)
            w.payload.assign(static_cast<const char *>(payload), size);
        waiting_.push_back(std::move(w));
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof one);
}

void FleetCommands::process(control::Handler &handler)
{
    uint64_t count = 0;
    [[maybe_unused]] ssize_t n = ::read(wake_.get(), &count, sizeof count);
    std::deque<Waiting> batch;
    uint64_t dropped = 0;
    {
        std::lock_guard lock(mutex_);
        batch.swap(waiting_);
        dropped = std::exchange(dropped_, 0);
    }
    if (dropped)
        spdlog::warn("mqtt: {} command(s) dropped unread: more than {} were waiting", dropped, max_commands_waiting);
    for (const auto &w : batch)
        run(w, handler);
}

void FleetCommands::refuse(json reply, const std::string &why)
{
    spdlog::warn("mqtt: command on {} refused: {}", fleet_shown(reply.value("topic", "")), why);
    reply["ok"] = false;
    reply["error"] = why;
    hooks_.reply(std::move(reply));
}

// One command: its topic's shape, its payload, the allow list, the device;
// then run through the Handler, or refused with the reason.
void FleetCommands::run(const Waiting &w, control::Handler &handler)
{
    // (Strings from the broker go out dumped with bad UTF-8 replaced.)
    json reply = {{"event", "command"}, {"topic", w.topic.substr(0, 200)}};
    const std::string base = prefix_ + "/" + group_ + "/";
    const std::string ncmd = base + "NCMD/" + node_, dcmd = base + "DCMD/" + node_ + "/";
    std::string device;
    const bool node_topic = w.topic == ncmd;
    if (!node_topic) {
        if (w.topic.compare(0, dcmd.size(), dcmd) != 0 || w.topic.size() == dcmd.size())
            return refuse(reply, "not a command topic of node " + fleet_shown(node_));
        device = w.topic.substr(dcmd.size());
    }
    if (w.oversized)
        return refuse(reply, "payload larger than " + std::to_string(max_command_bytes) + " bytes");
    const json j = json::parse(w.payload, nullptr, false);
    if (j.is_discarded())
        return refuse(reply, "payload is not JSON");
    if (!j.is_object() || !j.contains("command") || !j["command"].is_string())
        return refuse(reply, "payload is not an object with a \"command\" string");
    if (const json id = request_id(j); !id.is_null())
        reply["id"] = id;
    if (w.retained)
        return refuse(reply, "a retained command is not run (publish commands without the retain flag)");
    const std::string command = j["command"].get<std::string>();
    if (!known(command))
        return refuse(reply, "unknown command " + fleet_shown(command) + " (call, reset, rebirth)");
    reply["command"] = command;
    if (std::find(allowed_.begin(), allowed_.end(), command) == allowed_.end())
        return refuse(reply, "command '" + command + "' is not allowed ([mqtt] allow-commands)");
    if (node_topic != (command == "rebirth"))
        return refuse(reply, "command '" + command + "' is sent on " + (command == "rebirth" ? "NCMD" : "DCMD"));
    if (command == "rebirth") {
        spdlog::info("mqtt: rebirth asked on {}", fleet_shown(w.topic));
        hooks_.rebirth();
        reply["ok"] = true;
        return hooks_.reply(std::move(reply));
    }
    // Only a device of the config: the name is looked up among list()'s.
    const json devices = handler.list();
    const bool ours = std::any_of(devices.begin(), devices.end(),
                                  [&](const json &d) { return d.value("device", "") == device; });
    if (!ours)
        return refuse(reply, "no device " + fleet_shown(device));
    reply["device"] = device;
    spdlog::info("mqtt: {} of device {} asked on {}", command, device, fleet_shown(w.topic));
    auto answer = [reply, reply_hook = hooks_.reply](json result) mutable {
        if (result.contains("error")) {
            spdlog::warn("mqtt: {} of device {}: {}", reply.value("command", ""), reply.value("device", ""),
                         result["error"].dump(-1, ' ', false, json::error_handler_t::replace));
            reply["ok"] = false;
            reply["error"] = result["error"];
        } else {
            reply["ok"] = true;
            if (result.contains("records"))
                reply["records"] = result["records"];
        }
        reply_hook(std::move(reply));
    };
    if (command == "call")
        handler.call(device, answer);
    else
        answer(handler.reset(device));
}

}  // namespace devhost
