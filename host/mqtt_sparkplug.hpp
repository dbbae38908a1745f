// What devhost serve publishes to its broker (issue 16), shaped like
// Sparkplug's topic namespace and state rules, with JSON payloads (not
// Sparkplug B's protobuf: any MQTT client can read them):
//
//   PREFIX/GROUP/NBIRTH/NODE         retained, first after each connect:
//       {"timestamp","seq":0,"bdSeq","online":true,"version","node",
//        "devices":[{"device","class","path","generation","state","message"}]}
//   PREFIX/GROUP/NDEATH/NODE         retained; the broker's last will,
//       registered at connect: {"bdSeq","online":false} (no seq: the will is
//       written before the session's first message); on a clean stop devhost
//       publishes it itself, with "seq" and "timestamp"
//   PREFIX/GROUP/DBIRTH/NODE/DEVICE  retained: after NBIRTH for every
//       device, and when a device comes back to life:
//       {"timestamp","seq","device","class","path","generation","state","message"}
//   PREFIX/GROUP/DDEATH/NODE/DEVICE  retained: the device went stale,
//       waiting-for-device or failed, or a reload removed it (state
//       "removed"; nothing of it is published after) (same fields as DBIRTH)
//   PREFIX/GROUP/DDATA/NODE/DEVICE   not retained: each other state change
//       {"timestamp","seq","event":"state","device","state","generation","message"}
//       and every step record {"timestamp","seq","event":"record","device",
//       "generation","record":{...the record line...}}
//
// seq counts every message of a session (one connection) from 0 at its
// NBIRTH, without wrapping (Sparkplug B wraps at 256; JSON needs not);
// bdSeq pairs an NBIRTH with the NDEATH registered for the same connection,
// so a subscriber can tell a late will of the last session from the death
// of this one. Not thread-safe: the publisher (mqtt_publisher.hpp) locks.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace devhost {

struct MqttMessage {
    std::string topic;
    std::string payload;
    bool retain = false;
};

class FleetState {
public:
    FleetState(std::string prefix, std::string group, std::string node, std::string version);

    // PREFIX/GROUP/TYPE/NODE[/DEVICE].
    std::string topic(const std::string &type, const std::string &device = {}) const;

    // A new session: seq back to 0; NBIRTH, each device's DBIRTH, and a
    // DDEATH after the birth of each device that is not alive.
    std::vector<MqttMessage> births(uint64_t bd_seq, int64_t now_ms);

    // The will for the session numbered bd_seq.
    MqttMessage will(uint64_t bd_seq) const;
    // The death devhost publishes itself on a clean stop (with seq).
    MqttMessage death(uint64_t bd_seq, int64_t now_ms);

    // One event of the serve loop ({"event":"state"}, {"event":"record"} or
    // {"event":"removed"} and {"event":"added"}, serve.hpp): the device table is updated, and
    // with `emit` the messages it makes are returned (each taking the next
    // seq); without, none.
    std::vector<MqttMessage> event(const nlohmann::json &ev, int64_t now_ms, bool emit);

    // PREFIX/GROUP/NDATA/NODE, not retained: `payload` with "timestamp"
    // and the next "seq" (a command's reply, mqtt_commands.hpp); strings
    // that are not UTF-8 are replaced, never thrown over.
    MqttMessage node_data(nlohmann::json payload, int64_t now_ms);
    // Like event() with emit, but the messages carry no "seq": the
    // publisher stamps each as it sends it (stamp()), so that messages it
    // spooled keep the session's seq in sending order.
    std::vector<MqttMessage> event_unstamped(const nlohmann::json &ev, int64_t now_ms);
    // `payload` (a JSON object without "seq") with the session's next seq
    // put first, then `extra` (members, each with its ',' after it).
    std::string stamp(const std::string &payload, const std::string &extra = "");

    // Devices not alive: stale, waiting for their device, failed.
    static bool alive_state(const std::string &state);

private:
    struct Device {
        std::string cls, path, state, message;
        int64_t generation = 0;
        bool alive = false;
    };
    nlohmann::json device_json(const std::string &name, const Device &d) const;
    MqttMessage device_message(const std::string &type, const std::string &name, const Device &d, int64_t now_ms);
    std::vector<MqttMessage> state_event(const nlohmann::json &ev, int64_t now_ms, bool emit);
    std::vector<MqttMessage> removed(const std::string &name, int64_t now_ms, bool emit);

    std::string prefix_, group_, node_, version_;
    std::vector<std::string> order_;  // device names, first seen first
    std::map<std::string, Device> devices_;
    std::set<std::string> removed_;  // removed by a reload, until one adds it again
    uint64_t seq_ = 0;
};

// Milliseconds since the epoch (the payloads' "timestamp").
int64_t fleet_now_ms();

}  // namespace devhost
