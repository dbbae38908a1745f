// The control socket's commands: `devhost status`, `call`, `reset`,
// `reload` and `monitor`, clients of a running `devhost serve`
// (control_client.hpp).
#pragma once

#include <string>
#include <vector>

namespace devhost {

struct ControlCommand {
    std::string command;  // status, call, reset, reload, monitor
    std::vector<std::string> args;
    std::string socket;   // --socket, or control::default_socket
    bool json = false;
};

// True when `command` is one of these.
bool is_control_command(const std::string &command);

// Runs it; the exit code (cli.hpp), after one error line on failure.
int run_control_command(const ControlCommand &cmd);

}  // namespace devhost
