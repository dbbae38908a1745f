// The client end of the control socket (control_wire.hpp), for the CLI's
// status, call, reset, reload and monitor: connect, send one call, read its
// replies. Blocking, with a deadline per reply where one is asked for.
#pragma once

#include "control_wire.hpp"

#include <devhost/unique_fd.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <optional>
#include <string>

namespace devhost::control {

class Client {
public:
    // Why a connect or an exchange failed.
    enum class Failure {
        none,
        no_server,  // no socket at the path, or nothing listens on it
        denied,     // the socket's mode, or the server, refused us
        interrupted,
        other,
    };

    // Connects to the socket at `path`; false with failure() and error() set.
    bool connect(const std::string &path);
    // Sends one call {"method": METHOD, "parameters": PARAMETERS}.
    bool send(const std::string &method, const nlohmann::json &parameters);
    // The next reply, waiting up to timeout_ms (-1: no limit); nullopt when
    // the server closed the connection, the reply is not a message, or the
    // deadline passed (error() says which). A devhost.PermissionDenied
    // reply sets failure() to denied too. A signal that sets *interrupted
    // (when given) ends the wait: nullopt, failure() interrupted.
    std::optional<nlohmann::json> receive(int timeout_ms, const volatile std::sig_atomic_t *interrupted = nullptr);

    Failure failure() const { return failure_; }
    const std::string &error() const { return error_; }

private:
    bool fail(Failure f, const std::string &message);

    std::string path_;
    UniqueFd fd_;
    FrameReader reader_{max_reply};
    Failure failure_ = Failure::none;
    std::string error_;
};

}  // namespace devhost::control
