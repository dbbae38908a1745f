#include "cli_help.hpp"

#include <boost/program_options.hpp>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace devhost {

namespace po = boost::program_options;

const char *const command_list =
    "run, serve, check, plugins, probe, scan, reset-failed, status, call, reset, reload or monitor";

namespace {

// One option of the command line: its Boost spec ("output,o"), the name of
// its value (nullptr: a flag) and the text the global help shows.
struct OptionDef {
    const char *spec;
    const char *value;
    const char *text;
};

const std::vector<OptionDef> &option_defs()
{
    static const std::vector<OptionDef> defs = {
        {"help,h", nullptr, "show this help and exit; after a COMMAND, that command's help"},
        {"version", nullptr, "show the version and exit"},
        {"plugin-path", "DIRS", "directories to load plugins from, ':'-separated"},
        {"log-level", "LEVEL", "trace, debug, info, warn, error or off (default info)"},
        {"log-file", "FILE", "also log to this file (rotated at 5 MiB, 3 kept)"},
        {"output,o", "FILE", "where step records go: - (stdout) or a file; overrides [host] output"},
        {"json", nullptr, "plugins, scan, status, monitor: print JSON"},
        {"all", nullptr, "scan: also list what is normally left out (pseudo-terminals...)"},
        {"class", "CLASS",
         "probe: the device class (default: from the plugins' path patterns and types); "
         "scan: list this class's devices only"},
        {"allow-faults", nullptr,
         "run, check, probe: accept the config's 'fault =' lines (fault injection, a test mode; as "
         "[host] allow-faults = true)"},
        {"socket", "PATH",
         "serve, status, call, reset, reload, monitor: devhost serve's control socket (default /run/devhost/control)"},
    };
    return defs;
}

void add_option(po::options_description &d, const OptionDef &o, const char *text)
{
    if (o.value)
        d.add_options()(o.spec, po::value<std::string>()->value_name(o.value), text);
    else
        d.add_options()(o.spec, text);
}

// The option whose long name is `name`; a name no definition has is a
// mistake in a help table below, found by any test that prints that help.
const OptionDef &option_def(const std::string &name)
{
    for (const auto &o : option_defs()) {
        const std::string spec = o.spec;
        if (spec.substr(0, spec.find(',')) == name)
            return o;
    }
    throw std::logic_error("help names an option devhost does not have: --" + name);
}

// One command's help. Its options are {long name, text for this command};
// a null text is the global help's. The logging and plugin options, which
// every command but help takes, are added by print_command_help.
struct CommandHelp {
    const char *name;
    const char *usage;
    const char *text;
    std::vector<std::pair<const char *, const char *>> options;
    const char *exits;
};

const char *const run_text =
    "Runs the pipeline of every [device] of CONFIG (no CONFIG: the default config,\n"
    "which needs no hardware). The config is checked first, as check does; then\n"
    "its [virtual] peers start, each device is driven through its steps in its own\n"
    "thread, one JSON record per step goes to stdout (or [host] output, or\n"
    "--output), and what a failed or interrupted pipeline holds is released,\n"
    "each release recorded as an unwind step. The peers are stopped at the end.\n";

const char *const check_text =
    "Finds every mistake in CONFIG without touching a device: syntax, sections,\n"
    "keys, each step, each device's class and options against its plugin, device\n"
    "names, [virtual] kinds. Each mistake is one line on stderr naming the file\n"
    "and line; warnings say what only the plugin decides when the step runs.\n";

const char *const plugins_text =
    "Loads the plugins from the search path and lists each one: its class,\n"
    "version, ABI, hooks, transfers, path patterns and types, options and\n"
    "control codes, then every file that was refused, with the reason.\n";

const char *const probe_text =
    "Opens the device NAME (a path, \\\\.\\COMn, \\\\.\\LPTn, \\\\.\\PhysicalDriveN,\n"
    "\\Name), reports its info and closes it, one record per step. The class is\n"
    "taken from the plugins' path patterns or, at a path none matches, from\n"
    "the kind of file their path types take, unless --class says it.\n";

const char *const scan_text =
    "Lists the devices each plugin (or class CLASS's) could drive here, without\n"
    "opening them, one line per device: CLASS PATH [by-id=LINK] [usb=VVVV:PPPP]\n"
    "[usb-serial=S] [\"description\"]. Each plugin's enumerate has 5 s.\n";

const char *const reset_failed_text =
    "Forgets what the restart ledger in CONFIG's [host] state-dir holds of each\n"
    "CLASS (without CLASS, of every class): its workers' deaths, and its mark\n"
    "failed, which a class gets after too many deaths in a while and keeps\n"
    "across runs until reset. Prints one line per class, 'CLASS: reset (was\n"
    "failed: ...)' or 'CLASS: nothing to reset'; without CLASS, 'nothing to\n"
    "reset' when the ledger is empty. Only [host] of CONFIG is read.\n";

const char *const status_text =
    "Asks the running devhost serve for its devices and prints one row each:\n"
    "device, class, state (setup, idle, running, stale, waiting-for-device,\n"
    "failed), generation (the attach count), the last body that succeeded, the\n"
    "bodies that succeeded and failed, the ticks skipped because a body was\n"
    "still running, and the last message.\n";

const char *const call_text =
    "Asks the running devhost serve to run DEVICE's body now, waits for it and\n"
    "prints its step records, one JSON line each.\n";

const char *const reset_text =
    "Asks the running devhost serve to clear DEVICE's failed state: its\n"
    "restarts begin again. Prints 'DEVICE: reset'.\n";

const char *const reload_text =
    "Asks the running devhost serve to reload its config (as SIGHUP does): the\n"
    "new config is checked whole first, and a bad one is refused while the old\n"
    "one keeps running. Prints 'reloaded'.\n";

const char *const monitor_text =
    "Prints the running devhost serve's devices and their states, then every\n"
    "state change ('DEVICE: STATE (generation N): message') and every step\n"
    "record (its JSON line) as they happen, until interrupted or until serve\n"
    "stops. A monitor that does not read fast enough is dropped by serve.\n"
    "SIGINT or SIGTERM ends it (exit 0).\n";

// The exit codes every client of the control socket shares.
#define DEVHOST_CONTROL_EXITS                                                  \
    "  2  usage error\n"                                                      \
    "  5  devhost serve is not running (no socket, or nothing listens on it)\n" \
    "  6  permission denied: not root and not in [host] control-group\n"
const char *const serve_text =
    "Serves CONFIG's devices until SIGTERM or SIGINT (no CONFIG:\n"
    "/etc/devhost/devhost.ini): each device's setup steps once, its body at\n"
    "each trigger of its 'run =' (start, every D, on-attach, on-demand), its\n"
    "teardown at the stop. A device of 'step =' lines only runs its whole\n"
    "pipeline at each trigger. A worker that dies costs its devices a record\n"
    "and a new setup (generation + 1) after a backoff. SIGHUP reloads CONFIG:\n"
    "a bad one is refused and the old one keeps running; only the devices whose\n"
    "sections changed are torn down and set up again. Tells systemd READY,\n"
    "STATUS, WATCHDOG, RELOADING and STOPPING (Type=notify).\n";

const char *const help_text =
    "Prints COMMAND's usage, options and exit codes, as 'devhost COMMAND --help'\n"
    "does; without COMMAND, the global help (devhost --help).\n";

const char *const allow_faults_text =
    "accept the config's 'fault =' lines (fault injection, a test mode; as [host] allow-faults = true)";

const std::vector<CommandHelp> &command_helps()
{
    static const std::vector<CommandHelp> helps = {
        {"run", "devhost run [OPTIONS] [CONFIG]", run_text, {{"output", nullptr}, {"allow-faults", allow_faults_text}},
         "  0  every pipeline succeeded\n"
         "  1  a pipeline failed, or step records could not be written\n"
         "  2  usage or config error\n"
         "  3  no usable plugin for a configured device\n"
         "  4  interrupted by SIGINT, SIGTERM or SIGHUP (held devices were released)\n"},
        {"serve", "devhost serve [--socket PATH] [OPTIONS] [CONFIG]", serve_text,
         {{"output", nullptr},
          {"allow-faults", allow_faults_text},
          {"socket", "the control socket to serve (default: [host] control-socket, else /run/devhost/control)"}},
         "  0  stopped by SIGTERM or SIGINT (every device torn down)\n"
         "  1  step records could not be written\n"
         "  2  usage or config error\n"
         "  3  no usable plugin for a configured device, or [mqtt]/[metrics] without a\n"
         "     usable fleet module (lib/devhost/fleet.so)\n"},
        {"check", "devhost check [OPTIONS] CONFIG", check_text, {{"allow-faults", allow_faults_text}},
         "  0  the config is valid\n"
         "  2  usage error, or a mistake in the config (an unknown class too)\n"
         "  3  [mqtt]/[metrics] without a usable fleet module (lib/devhost/fleet.so)\n"},
        {"plugins", "devhost plugins [OPTIONS] [--json]", plugins_text,
         {{"json", "print one JSON document: {\"host_abi\", \"plugins\", \"refused\"}"}},
         "  0  at least one plugin loaded\n"
         "  2  usage error\n"
         "  3  no plugin loaded\n"},
        {"probe", "devhost probe [OPTIONS] [--class CLASS] NAME", probe_text,
         {{"class", "the device class (default: from the plugins' path patterns and types)"},
          {"output", "where step records go: - (stdout, the default) or a file"},
          {"allow-faults", "accepted as for run, so one command line serves both (probe's steps inject no fault)"}},
         "  0  open, info and close succeeded\n"
         "  1  a step failed, or step records could not be written\n"
         "  2  usage error: NAME maps to nothing, or its class cannot be told\n"
         "  3  no plugin for the class\n"
         "  4  interrupted by SIGINT, SIGTERM or SIGHUP\n"},
        {"scan", "devhost scan [OPTIONS] [--class CLASS] [--json] [--all]", scan_text,
         {{"class", "list this class's devices only"},
          {"json", "print one JSON document: {\"devices\": [...], \"classes\": [...]}"},
          {"all", "also list what is normally left out (pseudo-terminals...)"}},
         "  0  the scan finished (finding nothing too)\n"
         "  1  a plugin's enumerate failed or overran its deadline (what it found\n"
         "     is listed)\n"
         "  2  usage error\n"
         "  3  no plugin for --class CLASS, or no plugins at all\n"},
        {"reset-failed", "devhost reset-failed [OPTIONS] CONFIG [CLASS...]", reset_failed_text, {},
         "  0  the classes were reset, or there was nothing to reset\n"
         "  1  the restart ledger could not be used (its directory or file refused,\n"
         "     or not writable); the line says what was not reset\n"
         "  2  usage error, a mistake in CONFIG, or CONFIG sets no [host] state-dir\n"},
        {"status", "devhost status [--socket PATH] [--json]", status_text,
         {{"socket", nullptr}, {"json", "print one JSON document: {\"devices\": [...]}"}},
         "  0  the devices were listed\n"
         "  1  devhost serve did not answer, or closed the connection\n" DEVHOST_CONTROL_EXITS},
        {"call", "devhost call [--socket PATH] DEVICE", call_text, {{"socket", nullptr}},
         "  0  every step of the body succeeded\n"
         "  1  the body failed (a step failed, or it could not run)\n" DEVHOST_CONTROL_EXITS
         "  7  devhost serve has no device DEVICE\n"},
        {"reset", "devhost reset [--socket PATH] DEVICE", reset_text, {{"socket", nullptr}},
         "  0  the device was reset\n"
         "  1  devhost serve could not reset it\n" DEVHOST_CONTROL_EXITS
         "  7  devhost serve has no device DEVICE\n"},
        {"reload", "devhost reload [--socket PATH]", reload_text, {{"socket", nullptr}},
         "  0  the new config was checked and applied\n"
         "  1  the new config was refused (the old one keeps running)\n" DEVHOST_CONTROL_EXITS},
        {"monitor", "devhost monitor [--socket PATH] [--json]", monitor_text,
         {{"socket", nullptr}, {"json", "print each message's parameters as one JSON line"}},
         "  0  stopped by SIGINT or SIGTERM\n"
         "  1  devhost serve stopped, or dropped this monitor\n" DEVHOST_CONTROL_EXITS},
        {"help", "devhost help [COMMAND]", help_text, {},
         "  0  the help was printed\n"
         "  2  there is no command COMMAND\n"},
    };
    return helps;
}

const char *const usage_text =
    "usage: devhost [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "devhost drives devices through plugins, one plugin per device class, as a\n"
    "config's pipelines say (open, connect, lock, transfer, unlock, disconnect,\n"
    "close). Step records go to stdout as JSON lines; the log goes to stderr.\n"
    "\n"
    "commands:\n"
    "  run [CONFIG]          run every device's pipeline (no CONFIG: the default\n"
    "                        config, which needs no hardware)\n"
    "  serve [CONFIG]        serve the devices until stopped: setup once, body at\n"
    "                        each trigger, teardown at the end (no CONFIG:\n"
    "                        /etc/devhost/devhost.ini)\n"
    "  check CONFIG          find every mistake in CONFIG without touching a device\n"
    "  plugins [--json]      list loaded plugins, their options and refused files\n"
    "  probe [--class C] NAME\n"
    "                        open NAME, report its info, close it (the class\n"
    "                        from the plugins' path patterns and types unless\n"
    "                        --class)\n"
    "  scan [--class C] [--json] [--all]\n"
    "                        list the devices each plugin (or class C's) could\n"
    "                        drive here, without opening them; --all also lists\n"
    "                        what is normally left out (pseudo-terminals...)\n"
    "  reset-failed CONFIG [CLASS...]\n"
    "                        forget the worker deaths of CLASS (or of every\n"
    "                        class) and its mark failed, in the restart ledger\n"
    "                        of CONFIG's [host] state-dir\n"
    "  status [--json]       the devices of the running devhost serve and their\n"
    "                        states\n"
    "  call DEVICE           run DEVICE's body in devhost serve now, print its\n"
    "                        records\n"
    "  reset DEVICE          clear DEVICE's failed state in devhost serve\n"
    "  reload                make devhost serve reload its config\n"
    "  monitor [--json]      stream devhost serve's state changes and records\n"
    "  help [COMMAND]        COMMAND's usage, options and exit codes (also:\n"
    "                        devhost COMMAND --help)\n";

const char *const exit_text =
    "\n"
    "exit codes:\n"
    "  0  every pipeline succeeded (check: the config is valid)\n"
    "  1  a pipeline failed, or step records could not be written; scan: a\n"
    "     plugin's enumerate failed or overran its deadline (what it found is\n"
    "     listed); reset-failed: the restart ledger could not be used\n"
    "  2  usage or config error\n"
    "  3  run, probe: no usable plugin for a device's class (check: 2); scan: no\n"
    "     plugin for --class C; plugins, scan: no plugin loaded; serve, check:\n"
    "     [mqtt]/[metrics] without a usable fleet module (lib/devhost/fleet.so)\n"
    "  4  interrupted by SIGINT, SIGTERM or SIGHUP (held devices were released)\n"
    "  5  status, call, reset, reload, monitor: devhost serve is not running\n"
    "  6  status, call, reset, reload, monitor: permission denied\n"
    "  7  call, reset: devhost serve has no such device\n"
    "\n"
    "signals: SIGINT, SIGTERM and SIGHUP stop the run: pipelines are cancelled and\n"
    "unwind, recording every step, however many stop signals come. Only the same\n"
    "SIGINT or SIGTERM again, a second or more after it first came, skips the\n"
    "rest of the unwind (exit 4 at once); SIGHUP never does.\n"
    "\n"
    "plugin search order: --plugin-path, $DEVHOST_PLUGIN_PATH, the config's\n"
    "[host] plugin-path, then ../lib/devhost/plugins next to the executable.\n"
    "\n"
    "more: devhost(1), devhost.ini(5), devhost-plugin(7)\n";

}  // namespace

po::options_description cli_options()
{
    po::options_description visible("options");
    for (const auto &o : option_defs())
        add_option(visible, o, o.text);
    return visible;
}

void print_global_help(std::ostream &out) { out << usage_text << "\n" << cli_options() << exit_text; }

void print_short_usage(std::ostream &out)
{
    out << usage_text << "\nrun 'devhost --help' for options and exit codes\n";
}

bool print_command_help(const std::string &command, std::ostream &out)
{
    for (const auto &c : command_helps()) {
        if (command != c.name)
            continue;
        po::options_description options("options");
        for (const auto &[name, text] : c.options) {
            const OptionDef &o = option_def(name);
            add_option(options, o, text ? text : o.text);
        }
        // reset-failed loads no plugin: --plugin-path would mean nothing;
        // the control socket's clients neither load nor log.
        const bool client = command == "status" || command == "call" || command == "reset" ||
                            command == "reload" || command == "monitor";
        if (command != "help" && !client)
            for (const char *name : {"plugin-path", "log-level", "log-file"})
                if (command != "reset-failed" || std::string(name) != "plugin-path")
                    add_option(options, option_def(name), option_def(name).text);
        add_option(options, option_def("help"), "show this help and exit");
        out << "usage: " << c.usage << "\n\n"
            << c.text << "\n"
            << options << "\nexit codes:\n"
            << c.exits << "\nmore: devhost --help, devhost(1)"
            << (command == "run" || command == "check" || command == "reset-failed" ? ", devhost.ini(5)" : "")
            << "\n";
        return true;
    }
    return false;
}

}  // namespace devhost
