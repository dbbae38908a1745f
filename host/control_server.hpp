// `devhost serve`'s control socket: the server end of the control API
// (control_wire.hpp has the wire format, control.hpp the Handler that
// answers). Single-threaded and non-blocking: the serve loop polls fd()
// and calls process() when it is readable; nothing here ever waits for a
// client.
//
// Who may connect: root, and the members of the control group (the
// socket's group, mode 0660); anyone else gets devhost.PermissionDenied
// and is closed, and the refusal is logged. A bad frame (not JSON, longer
// than max_frame, no method, an unknown method, a missing parameter) gets
// an error reply naming what was wrong, then the connection is closed.
// A client that does not read what it is sent (a monitor that falls
// behind by more than max_output bytes) is dropped, never waited for.
#pragma once

#include "control.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/types.h>

namespace devhost {
struct HostSettings;
}

namespace devhost::control {

struct ServerSettings {
    std::string path;                 // absolute; see listen_socket
    std::optional<gid_t> group;       // the control group; none: root only
    std::string group_name;           // as configured, for messages
    size_t max_clients = 64;          // connections at once; more are refused
    size_t max_output = 1024 * 1024;  // bytes queued for one client before it is dropped
};

// The settings a config's [host] control-socket and control-group give
// (config.hpp: the group already resolved when the config was read).
ServerSettings server_settings(const HostSettings &host);

// Why the server could not start (one line naming the socket).
struct ServerError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Server {
public:
    // Creates the socket (control_socket.hpp); throws ServerError.
    Server(Handler &handler, ServerSettings settings);
    ~Server();  // closes every client and removes the socket
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;

    // One epoll descriptor: readable when process() has something to do.
    int fd() const;
    // Accepts, reads, dispatches and writes what is ready, without blocking.
    void process();
    // Sends `event` to every devhost.Monitor subscriber as
    // {"parameters": event, "continues": true}. The serve loop's events:
    // {"event": "state", "device", "state", "generation", "message"} and
    // {"event": "record", "record": {...}}.
    void publish(const nlohmann::json &event);

    size_t clients() const;      // connections open now
    size_t subscribers() const;  // of which monitors

    struct State;

private:
    std::shared_ptr<State> state_;  // shared with the callbacks of calls still running
};

}  // namespace devhost::control
