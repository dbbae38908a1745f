// The seam between the serve loop and the control server (control_server.hpp),
// as agreed between the two: the loop implements Handler; the server calls
// it from the loop's own thread. (This copy stands in until the control
// server's own control.hpp lands; the two must stay the same text.)
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace devhost::control {

// Implemented by the serve loop; the control server calls it from the serve loop's own thread
// (the server is polled by the loop through one fd: Server::fd(), then Server::process()).
class Handler {
public:
    virtual ~Handler() = default;
    virtual nlohmann::json list() = 0;  // array of {"device","class","state","generation","last_success" (ISO 8601 or null),"bodies_ok","bodies_failed","ticks_skipped","message"}
    // Runs DEVICE's body now; calls `done` exactly once later, from the loop, with {"records":[...]} or {"error":"..."}.
    virtual void call(const std::string &device, std::function<void(nlohmann::json)> done) = 0;
    virtual nlohmann::json reset(const std::string &device) = 0;  // {} or {"error":"..."}
    virtual nlohmann::json reload() = 0;                          // {} or {"error":"..."} (the config's errors)
};
// Server::publish(const nlohmann::json &event): the loop hands every record ({"record":{...}}) and state change ({"state":{"device":..,"state":..,"generation":..}}) to subscribers.

}  // namespace devhost::control
