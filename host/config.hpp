// The INI config: Boost.Program_options' config-file syntax ([section],
// key = value, repeated keys kept in order), with two additions of ours: a
// comment starts only at a '#' that begins a line or follows white space,
// outside a "quoted string", and every entry and mistake has its line.
// load_config reads the file once (one open, one read to the end) and
// parse_config parses that text once, with the host's own line scan;
// nothing reads or parses it again (Program_options serves the command line
// only: it reports no line numbers and cuts values at any '#'). Sections:
//
//   [host]          plugin-path, log-level, log-file, output, timeout,
//                   port-dir, physical-drives, record-data; and for the
//                   plugin workers: isolation, kill-grace, describe-timeout,
//                   allow-faults, restart-budget, restart-window, state-dir,
//                   cache-dir, control-socket, control-group
//   [names]         NAME = /linux/path (extends or overrides the name table)
//   [device NAME]   class, path, inherit, timeout, instances (a template of
//                   N devices, device_templates.hpp), step (repeated, in order),
//                   fault (repeated; test mode, see faults.hpp, accepted
//                   only with [host] allow-faults or --allow-faults), and the
//                   class's own options (checked against its schema); for
//                   `devhost serve` (serve.hpp): setup, body, teardown
//                   (repeated, in order; instead of step), run (repeated)
//                   and stale-after
//   [virtual NAME]  kind, and options passed to devhost-vdev as --key=value
//   [mqtt]          where devhost serve publishes (mqtt_config.hpp)
//   [metrics]       where devhost serve exposes its metrics (metrics_config.hpp)
//
// Loading reports every syntax and structure mistake it finds, each naming
// file, line and key; checks that need plugins are in check.hpp.
#pragma once

#include "faults.hpp"
#include "metrics_config.hpp"
#include "mqtt_config.hpp"
#include "names.hpp"
#include "record_data.hpp"
#include "steps.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devhost {

struct Diagnostic {
    // What kind of mistake it is: the exit code is chosen by this, never by
    // the message's text.
    enum class Kind {
        Config,         // anything wrong in the config (exit 2)
        MissingPlugin,  // a device's class has no usable plugin (run: exit 3)
    };
    std::string file;
    int line = 0;  // 0: no particular line
    std::string message;
    Kind kind = Kind::Config;

    // Printed after "devhost: error: " (16 characters), a line stays within
    // 300 characters.
    static constexpr size_t max_chars = 284;
    std::string str() const;  // "file:line: message", at most max_chars
};

struct Setting {
    std::string key;
    std::string value;
    int line = 0;
};

// When `devhost serve` runs a device's body (`run =`, repeated or several
// words on one line, e.g. `run = start every 1s`): once after its setup
// (start), every D after the end of the last (every D: a tick that finds
// the body still running is skipped and counted), after each attach
// (on-attach), on a control call (on-demand: the control API's call works
// whatever the triggers). No `run =` at all: start.
struct RunTriggers {
    bool start = false;
    bool on_attach = false;
    bool on_demand = false;
    std::optional<int64_t> every_ms;
    int line = 0;  // the first `run =` line, 0 if none
    bool operator==(const RunTriggers &o) const
    {
        return start == o.start && on_attach == o.on_attach && on_demand == o.on_demand && every_ms == o.every_ms;
    }
};

struct DeviceConfig {
    std::string name;
    int line = 0;                 // the section header
    int instance = -1;            // its number in a template (instances =), -1 if written out
    Setting class_name;
    // No `class =` but a path: check takes the class from the plugins' path
    // patterns (class_match.hpp) instead of calling it missing.
    bool class_from_path = false;
    Setting path;                 // as configured
    bool inherit = false;
    std::optional<int64_t> timeout_ms;
    std::vector<Setting> options; // the class's own keys
    // Every step in the order a pipeline runs them: with `setup =`,
    // `body =` and `teardown =` lines, the setup steps, then the body's,
    // then the teardown's (each phase in its lines' order); with `step =`
    // lines only, the whole pipeline, which is then the body (serve runs it
    // whole, unwind included, at each trigger).
    std::vector<Step> steps;
    int step_lines = 0;           // `step =`, `setup =`, `body =`, `teardown =` lines, parsed or not
    bool phased = false;          // any setup/body/teardown line
    size_t setup_steps = 0;       // steps[0, setup_steps)
    size_t body_steps = 0;        // steps[setup_steps, setup_steps + body_steps); the rest: teardown
    RunTriggers run;
    std::optional<int64_t> stale_after_ms;  // serve: stale when no body succeeded for this long
    std::vector<Fault> faults;    // test mode: `fault =` lines (faults.hpp)
};

struct VirtualConfig {
    std::string name;
    int line = 0;
    Setting kind;
    std::vector<Setting> options;
};

// Where plugin code runs (`[host] isolation`): never in the devhost
// process itself unless asked.
enum class Isolation {
    None,    // in the devhost process (debugging, the benchmark's floor)
    Class,   // one worker process per plugin class (the default)
    Device,  // one worker process per device
};

// "none", "class", "device"; nullopt for any other word.
std::optional<Isolation> parse_isolation(std::string_view word);
const char *isolation_name(Isolation isolation);

struct HostSettings {
    std::optional<std::string> plugin_path;
    std::optional<std::string> log_level;
    std::optional<std::string> log_file;
    std::string output = "-";
    int output_line = 0;          // where output was set, 0 if not
    int64_t timeout_ms = 5000;    // default step timeout
    std::string port_dir = default_port_dir;
    bool physical_drives_all = false;
    RecordData record_data;       // how much data a record carries

    // The plugin workers and their supervisor. Each value is checked when
    // the config is parsed; a *_line is where the key was set, 0 if not.
    Isolation isolation = Isolation::Class;
    int isolation_line = 0;
    int64_t kill_grace_ms = 1000;        // a missed deadline's cancel to SIGKILL of the worker
    int64_t describe_timeout_ms = 5000;  // a worker loading and describing one plugin file
    bool allow_faults = false;           // `fault =` lines accepted (a test mode; also --allow-faults)
    int restart_budget = 5;              // worker deaths of a class within restart_window_ms
    int64_t restart_window_ms = 30 * 60 * 1000;  // before the class is marked failed
    std::optional<std::string> state_dir;  // the restart ledger's directory (absolute); unset: none
    int state_dir_line = 0;
    // The describe cache's directory (absolute). Unset and not disabled: the
    // default (the supervisor's to choose); `cache-dir = none`: no cache.
    std::optional<std::string> cache_dir;
    bool cache_disabled = false;
    int cache_dir_line = 0;

    // devhost serve's control socket (control_server.hpp): its path
    // (absolute) and the group whose members may use it besides root
    // (resolved when the config is read; unset: root only).
    std::string control_socket = "/run/devhost/control";
    int control_socket_line = 0;
    std::optional<std::string> control_group;
    std::optional<unsigned> control_gid;
    int control_group_line = 0;
};

// A [device NAME] section with `instances = N` (device_templates.hpp): its
// N devices are in Config::devices like any other, instance by instance.
struct DeviceTemplate {
    std::string name;     // as written, with its {n}
    int line = 0;         // the section header
    int instances = 0;    // the devices it made
    std::vector<int> lines;  // its header and entry lines, ascending
};

struct Config {
    std::filesystem::path file;
    HostSettings host;
    NameTable names;
    std::vector<DeviceConfig> devices;
    std::vector<DeviceTemplate> templates;  // the sections some of the devices came from
    std::vector<VirtualConfig> virtuals;
    MqttSettings mqtt;
    MetricsSettings metrics;  // [metrics] (metrics_config.hpp)
};

// Reads and parses `file`. Problems are appended to `diagnostics`; the
// returned config holds everything that could be understood.
// The largest config file read (a config is a few kilobytes; this bounds
// the memory a wrong file can take).
inline constexpr uintmax_t max_config_bytes = 4u << 20;

Config load_config(const std::filesystem::path &file, std::vector<Diagnostic> &diagnostics);

// The keys of every [device] section besides its class's options.
const std::vector<std::string> &common_device_keys();

// Parses config text (for tests and fuzzing); `file` only names it.
Config parse_config(const std::string &content, const std::string &file, std::vector<Diagnostic> &diagnostics);

}  // namespace devhost
