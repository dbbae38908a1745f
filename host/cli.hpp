// The devhost command line: run, check, plugins, probe.
#pragma once

namespace devhost {

// Exit codes, documented in `devhost --help` and the README.
enum ExitCode {
    exit_ok = 0,           // every pipeline succeeded (check: config is valid)
    exit_failed = 1,       // a pipeline failed (a step returned an error)
    exit_usage = 2,        // bad command line or config
    exit_no_plugin = 3,    // no usable plugin for a configured device
    exit_interrupted = 4,  // stopped by SIGINT/SIGTERM; held devices were released
    // The control socket's clients (status, call, reset, reload, monitor):
    exit_no_server = 5,    // devhost serve is not running (no socket, nothing listening)
    exit_denied = 6,       // not root and not in the control group
    exit_no_device = 7,    // serve has no such device
};

int run_cli(int argc, char **argv);

}  // namespace devhost
