// The seam between `devhost serve`'s loop and its control socket
// (control_server.hpp): what the socket's calls ask of the loop. The serve
// loop implements Handler; the control server calls it from the loop's own
// thread (the server is polled by the loop through one fd, Server::fd(),
// then Server::process()), so a Handler needs no locking of its own.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace devhost::control {

// A device's states, as list() and the monitor events name them.
inline constexpr const char *device_states[] = {"setup", "idle", "running", "stale", "waiting-for-device", "failed"};

class Handler {
public:
    virtual ~Handler() = default;
    // An array of {"device","class","state","generation","last_success" (ISO
    // 8601 or null),"bodies_ok","bodies_failed","ticks_skipped","worker_restarts","message"}.
    virtual nlohmann::json list() = 0;
    // Runs DEVICE's body now; calls `done` exactly once later, from the
    // loop, with {"records":[...]} or {"error":"..."}.
    virtual void call(const std::string &device, std::function<void(nlohmann::json)> done) = 0;
    virtual nlohmann::json reset(const std::string &device) = 0;  // {} or {"error":"..."}
    virtual nlohmann::json reload() = 0;                          // {} or {"error":"..."}
};

}  // namespace devhost::control
