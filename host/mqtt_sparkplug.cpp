#include "mqtt_sparkplug.hpp"

#include <algorithm>
#include <chrono>

namespace devhost {

using json = nlohmann::json;

FleetState::FleetState(std::string prefix, std::string group, std::string node, std::string version)
    : prefix_(std::move(prefix)), group_(std::move(group)), node_(std::move(node)), version_(std::move(version))
{
}

std::string FleetState::topic(const std::string &type, const std::string &device) const
{
    return prefix_ + "/" + group_ + "/" + type + "/" + node_ + (device.empty() ? "" : "/" + device);
}

bool FleetState::alive_state(const std::string &state)
{
    return state != "stale" && state != "waiting-for-device" && state != "failed";
}

json FleetState::device_json(const std::string &name, const Device &d) const
{
    return {{"device", name},          {"class", d.cls},     {"path", d.path},
            {"generation", d.generation}, {"state", d.state}, {"message", d.message}};
}

MqttMessage FleetState::device_message(const std::string &type, const std::string &name, const Device &d,
                                       int64_t now_ms)
{
    json j = device_json(name, d);
    j["timestamp"] = now_ms;
    j["seq"] = seq_++;
    return {topic(type, name), j.dump(), true};
}

std::vector<MqttMessage> FleetState::births(uint64_t bd_seq, int64_t now_ms)
{
    seq_ = 0;
    json devices = json::array();
    for (const auto &name : order_)
        devices.push_back(device_json(name, devices_.at(name)));
    const json nbirth = {{"timestamp", now_ms}, {"seq", seq_++}, {"bdSeq", bd_seq}, {"online", true},
                         {"version", version_}, {"node", node_},  {"devices", devices}};
    std::vector<MqttMessage> out{{topic("NBIRTH"), nbirth.dump(), true}};
    for (const auto &name : order_) {
        const Device &d = devices_.at(name);
        out.push_back(device_message("DBIRTH", name, d, now_ms));
        if (!d.alive)
            out.push_back(device_message("DDEATH", name, d, now_ms));
    }
    return out;
}

MqttMessage FleetState::will(uint64_t bd_seq) const
{
    return {topic("NDEATH"), json{{"bdSeq", bd_seq}, {"online", false}}.dump(), true};
}

MqttMessage FleetState::death(uint64_t bd_seq, int64_t now_ms)
{
    const json j = {{"bdSeq", bd_seq}, {"online", false}, {"seq", seq_++}, {"timestamp", now_ms}};
    return {topic("NDEATH"), j.dump(), true};
}

std::vector<MqttMessage> FleetState::state_event(const json &ev, int64_t now_ms, bool emit)
{
    const std::string name = ev.value("device", "");
    if (name.empty())
        return {};
    const bool known = devices_.count(name) != 0;
    if (!known)
        order_.push_back(name);
    Device &d = devices_[name];
    const bool was_alive = known && d.alive;
    d.state = ev.value("state", "");
    d.generation = ev.value("generation", int64_t{0});
    d.message = ev.value("message", "");
    if (ev.contains("class"))
        d.cls = ev.value("class", "");
    if (ev.contains("path"))
        d.path = ev.value("path", "");
    d.alive = alive_state(d.state);
    if (!emit)
        return {};
    if (!known || (!was_alive && d.alive))
        return {device_message("DBIRTH", name, d, now_ms)};
    if (was_alive && !d.alive)
        return {device_message("DDEATH", name, d, now_ms)};
    json j = {{"timestamp", now_ms}, {"seq", seq_++},           {"event", "state"},       {"device", name},
              {"state", d.state},    {"generation", d.generation}, {"message", d.message}};
    return {{topic("DDATA", name), j.dump(), false}};
}

MqttMessage FleetState::node_data(json payload, int64_t now_ms)
{
    payload["timestamp"] = now_ms;
    payload["seq"] = seq_++;
    return {topic("NDATA"), payload.dump(-1, ' ', false, json::error_handler_t::replace), false};
}

std::vector<MqttMessage> FleetState::removed(const std::string &name, int64_t now_ms, bool emit)
{
    auto it = devices_.find(name);
    if (it == devices_.end())
        return {};
    Device d = it->second;
    devices_.erase(it);
    removed_.insert(name);  // its teardown's events are not published
    order_.erase(std::find(order_.begin(), order_.end(), name));
    d.state = "removed";
    d.message = "removed from the config";
    if (!emit)
        return {};
    return {device_message("DDEATH", name, d, now_ms)};
}

std::vector<MqttMessage> FleetState::event(const json &ev, int64_t now_ms, bool emit)
{
    const std::string kind = ev.value("event", "");
    if (kind == "removed")
        return removed(ev.value("device", ""), now_ms, emit);
    if (kind == "added")
        removed_.erase(ev.value("device", ""));
    if (removed_.count(ev.value("device", "")) ||
        (ev.contains("record") && ev["record"].is_object() && removed_.count(ev["record"].value("device", ""))))
        return {};
    if (kind == "state")
        return state_event(ev, now_ms, emit);
    if (kind != "record" || !emit || !ev.contains("record") || !ev["record"].is_object())
        return {};
    const json &rec = ev["record"];
    const std::string name = rec.value("device", "");
    if (name.empty() || !devices_.count(name))
        return {};  // a record of no device served here (none is expected)
    json j = {{"timestamp", now_ms}, {"seq", seq_++}, {"event", "record"}, {"device", name},
              {"generation", rec.value("generation", devices_[name].generation)}, {"record", rec}};
    return {{topic("DDATA", name), j.dump(), false}};
}

std::vector<MqttMessage> FleetState::event_unstamped(const json &ev, int64_t now_ms)
{
    const uint64_t seq = seq_;
    auto out = event(ev, now_ms, true);
    seq_ = seq;
    for (auto &m : out) {
        json j = json::parse(m.payload);
        j.erase("seq");
        m.payload = j.dump();
    }
    return out;
}

std::string FleetState::stamp(const std::string &payload, const std::string &extra)
{
    const std::string rest = payload.size() > 2 ? "," + payload.substr(1) : "}";
    std::string out = "{\"seq\":" + std::to_string(seq_++);
    if (!extra.empty())
        out += "," + extra.substr(0, extra.size() - 1);
    return out + rest;
}

int64_t fleet_now_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace devhost
