#include "cli.hpp"

#include "serve.hpp"
#include "fleet_module.hpp"

#include "check.hpp"
#include "cli_help.hpp"
#include "cli_control.hpp"
#include "control_server.hpp"
#include "class_match.hpp"
#include "config.hpp"
#include "control_wire.hpp"
#include "identity.hpp"
#include "journal.hpp"
#include "loader.hpp"
#include "logging.hpp"
#include "names.hpp"
#include "options.hpp"
#include "pipeline.hpp"
#include "records.hpp"
#include "restart_policy.hpp"
#include "scan.hpp"
#include "signals.hpp"
#include "plugin_cache.hpp"
#include "supervisor.hpp"
#include "worker.hpp"
#include "worker_template.hpp"
#include "common/device_path.hpp"
#include "common/text.hpp"
#include "virtual_devices.hpp"

#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/program_options.hpp>
#include <csignal>
#include <optional>
#include <cstdlib>
#include <iostream>
#include <set>
#include <unistd.h>
#include <utility>

namespace devhost {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

struct Cli {
    std::string command;
    std::vector<std::string> args;
    std::optional<std::string> plugin_path, log_level, log_file, output, device_class, socket;
    bool json = false;
    bool all = false;
    bool allow_faults = false;  // --allow-faults: as [host] allow-faults = true
};

// Under systemd, "<3>" first: the journal files the line as an error.
void error_line(const std::string &message)
{
    std::cerr << logging::stderr_error_prefix() << "devhost: error: " << message << "\n";
}

fs::path default_config()
{
    if (const char *env = std::getenv("DEVHOST_DEFAULT_CONFIG"))
        return env;
    std::error_code ec;
    fs::path exe = boost::dll::program_location(ec);
    return (exe.parent_path() / ".." / "share" / "devhost" / "configs" / "default.ini").lexically_normal();
}

void setup_logging(const Cli &cli, const Config *config)
{
    logging::Settings s;
    if (cli.log_level)
        s.level = *cli.log_level;
    else if (config && config->host.log_level)
        s.level = *config->host.log_level;
    if (cli.log_file)
        s.file = *cli.log_file;
    else if (config && config->host.log_file)
        s.file = *config->host.log_file;
    logging::setup(s);
}

// How the supervisor runs workers, from the config (or the defaults).
SupervisorSettings supervisor_settings(const Cli &cli, const Config *config)
{
    SupervisorSettings s;
    if (config) {
        s.isolation = config->host.isolation;
        s.kill_grace_ms = config->host.kill_grace_ms;
        s.describe_timeout_ms = config->host.describe_timeout_ms;
        s.default_timeout_ms = config->host.timeout_ms;
    }
    s.log_level = cli.log_level.value_or(config && config->host.log_level ? *config->host.log_level : "info");
    return s;
}

// Finds the plugin files on the search path and loads them: in this
// process when `files` is null (isolation = none), else each checked here
// and described by workers (its open file kept in `files` for the workers
// that run it).
void load_plugins(PluginRegistry &registry, const Cli &cli, const Config *config, PluginFiles *files = nullptr)
{
    // A relative [host] plugin-path is relative to the config's directory.
    std::optional<std::string> config_path;
    if (config && config->host.plugin_path) {
        std::string joined;
        for (const auto &part : text::split(*config->host.plugin_path, ':')) {
            if (part.empty())
                continue;
            const fs::path dir = fs::path(part).is_relative() ? config->file.parent_path() / part : fs::path(part);
            joined += (joined.empty() ? "" : ":") + dir.string();
        }
        config_path = joined;
    }
    const auto dirs = plugin_search_path(cli.plugin_path, config_path);
    std::set<fs::path> seen;
    for (size_t i = 0; i < dirs.size(); i++) {
        const fs::path &dir = dirs[i];
        std::error_code ec;
        fs::path canonical = fs::weakly_canonical(dir, ec);
        if (!seen.insert(ec ? dir : canonical).second)
            continue;
        // A directory the user named that is not there is worth a word; the
        // built-in one (last) may be absent in an unusual install.
        if (i + 1 < dirs.size() && !fs::is_directory(dir, ec))
            spdlog::warn("plugin directory {} {}; skipped", dir.string(),
                         fs::exists(dir, ec) ? "is not a directory" : "does not exist");
        if (!files) {
            registry.load_directory(dir);
            continue;
        }
        for (const auto &file : PluginRegistry::directory_files(dir))
            if (auto checked = registry.open_file(file))
                files->add(std::move(*checked));
    }
    if (files) {
        PluginCache cache(config ? cache_dir(config->host.cache_dir, config->host.cache_disabled)
                                 : cache_dir(std::nullopt, false));
        describe_in_workers(registry, *files, supervisor_settings(cli, config), cache);
    }
}

void print_diagnostics(const std::vector<Diagnostic> &diags)
{
    for (const auto &d : diags)
        error_line(d.str());
}

// Loads and checks a config; returns the exit code to stop with, or -1 to go
// on.
int prepare(const Cli &cli, const fs::path &file, Config &config, PluginRegistry &registry, Plan &plan,
            PluginFiles &files, std::string *errors = nullptr)
{
    std::vector<Diagnostic> diags;
    config = load_config(file, diags);
    if (cli.allow_faults)
        config.host.allow_faults = true;
    setup_logging(cli, diags.empty() ? &config : nullptr);
    if (config.host.isolation == Isolation::None)
        worker_template::stop();
    load_plugins(registry, cli, &config, config.host.isolation == Isolation::None ? nullptr : &files);
    // One pass finds every mistake: what needs plugins is checked too, on
    // whatever the file gave, however much of it was wrong.
    // [virtual] sections are checked against what devhost-vdev serves.
    std::optional<VirtualKinds> kinds;
    if (!config.virtuals.empty()) {
        std::string error;
        kinds = describe_virtual_kinds(VirtualDevices::default_tool(), error);
        if (!kinds)
            spdlog::warn("cannot check [virtual] sections: {}; they are checked when they start", error);
    }
    plan = check_config(config, registry, diags, kinds ? &*kinds : nullptr);
    if (!diags.empty()) {
        std::stable_sort(diags.begin(), diags.end(),
                         [](const Diagnostic &a, const Diagnostic &b) { return a.line < b.line; });
        print_diagnostics(diags);
        for (const auto &d : diags)
            if (errors)
                *errors += (errors->empty() ? "" : "\n") + d.str();
        // A missing plugin stops a run (3); to check, an unknown class is a
        // config mistake like any other (2), and so is a run with any other
        // mistake besides.
        const bool only_plugins =
            plan.missing_plugin && cli.command == "run" && std::all_of(diags.begin(), diags.end(), [](const Diagnostic &d) {
                return d.kind == Diagnostic::Kind::MissingPlugin;
            });
        return only_plugins ? exit_no_plugin : exit_usage;
    }
    return -1;
}

int cmd_check(const Cli &cli)
{
    if (cli.args.size() != 1) {
        error_line("check needs exactly one CONFIG (see devhost --help)");
        return exit_usage;
    }
    Config config;
    PluginRegistry registry;
    PluginFiles files;
    Plan plan;
    int code = prepare(cli, cli.args[0], config, registry, plan, files);
    if (code >= 0)
        return code;
    // serve's [mqtt] and [metrics] need the fleet module: checked as serve
    // checks it (not loaded), so check does not pass what serve refuses.
    if (config.mqtt.enabled || config.metrics.enabled) {
        if (const std::string why = fleet_module_refusal(); !why.empty()) {
            const int line = config.mqtt.enabled ? config.mqtt.line : config.metrics.listen_line;
            error_line(cli.args[0] + ":" + std::to_string(line) + ": " + why);
            return exit_no_plugin;
        }
    }
    // The devices and the steps a run would record, repetitions (repeat=)
    // and instances (instances=) counted, and the sections and lines they
    // come from when that is fewer (a template's once).
    uint64_t steps = 0, lines = 0, sections = 0;
    for (const auto &d : config.devices) {
        steps += step_runs(d.steps);
        if (d.instance <= 0) {
            lines += d.steps.size();
            sections++;
        }
    }
    const std::string counted = config.templates.empty() ? "repeat=" : "repeat= and instances=";
    std::cout << cli.args[0] << ": ok: " << config.devices.size() << " device(s)"
              << (sections != config.devices.size() ? " (" + std::to_string(sections) + " written, instances= counted)"
                                                    : std::string())
              << ", " << steps << " step(s)"
              << (steps != lines ? " (" + std::to_string(lines) + " written, " + counted + " counted)" : std::string())
              << ", " << config.virtuals.size() << " virtual device(s)\n";
    return exit_ok;
}

// Starts the config's [virtual] peers, in order. When one does not come up,
// stops those started and returns the exit code (2 when the peer refused
// its options, else 1). A stop signal ends the starting early without a
// code: the caller sees it.
std::optional<int> start_virtuals(const Config &config, VirtualDevices &virtuals, const SignalWatcher &signals)
{
    for (const auto &v : config.virtuals) {
        std::string error;
        bool usage = false;
        if (signals.interrupted())
            break;
        if (!virtuals.start(v, 10000, error, usage)) {
            if (signals.interrupted())
                break;
            error_line(config.file.string() + ":" + std::to_string(v.line) + ": " + error);
            virtuals.stop_all();
            return usage ? exit_usage : exit_failed;
        }
    }
    return std::nullopt;
}

// The device each identity path (identity.hpp) names as the run starts;
// false after one line per identity that names none, or two.
bool resolve_identities(const Config &config, Plan &plan)
{
    bool all = true;
    for (auto &d : plan.devices) {
        if (!is_identity(d.path))
            continue;
        std::string error;
        if (auto node = resolve_identity(d.path, error)) {
            spdlog::info("{}: {} is {}", d.config->name, d.path, *node);
            d.path = *node;
        } else {
            error_line(config.file.string() + ":" + std::to_string(d.config->path.line) + ": [device " +
                       d.config->name + "] path: " + error);
            all = false;
        }
    }
    return all;
}

// What a run that went to its end exits with, said in the log: 4 after a
// stop signal, 1 when records are missing or a pipeline failed, else 0.
int run_exit_code(const std::vector<PipelineResult> &results, bool interrupted, bool records_failed)
{
    size_t failed = 0;
    for (const auto &r : results)
        failed += !r.ok;
    if (records_failed)
        spdlog::error("step records could not all be written: the run is not complete");
    if (interrupted)
        return exit_interrupted;
    if (records_failed)
        return exit_failed;
    if (failed) {
        spdlog::error("{} of {} pipeline(s) failed", failed, results.size());
        return exit_failed;
    }
    spdlog::info("{} pipeline(s) succeeded", results.size());
    return exit_ok;
}

struct RunOutcome {
    std::vector<PipelineResult> results;
    bool interrupted = false;
    bool records_failed = false;
    bool abandoned = false;  // a pipeline still inside a plugin in this process: _Exit
};

// isolation = none: the engine runs the plugins here.
RunOutcome run_in_process(RecordWriter &records, const Config &config, const Plan &plan, SignalWatcher &signals)
{
    RunOutcome out;
    Engine engine(records, config.host.timeout_ms);
    auto attached = signals.attach(engine);
    if (!signals.interrupted())
        out.results = engine.run_all(plan.devices);
    out.interrupted = signals.interrupted();
    out.abandoned = engine.abandoned();
    return out;
}

// isolation = class or device: workers run them, the supervisor watches.
RunOutcome run_supervised(RecordWriter &records, const Config &config, const Plan &plan, const PluginFiles &files,
                          const SupervisorSettings &settings, SignalWatcher &signals)
{
    RunOutcome out;
    RestartPolicy policy;
    policy.budget = config.host.restart_budget;
    policy.window_ms = config.host.restart_window_ms;
    std::optional<fs::path> state;
    if (config.host.state_dir)
        state = fs::path(*config.host.state_dir);
    RestartLedger ledger(policy, state);
    SupervisorSettings with = settings;
    with.ledger = &ledger;
    with.config_name = config.file.string();
    Supervisor supervisor(records, files, with);
    auto attached = signals.attach(supervisor);
    if (!signals.interrupted())
        out.results = supervisor.run_all(plan.devices, config.host.record_data);
    out.interrupted = signals.interrupted();
    out.records_failed = supervisor.records_failed();
    return out;
}

int cmd_run(const Cli &cli)
{
    if (cli.args.size() > 1) {
        error_line("run takes at most one CONFIG (see devhost --help)");
        return exit_usage;
    }
    fs::path file = cli.args.empty() ? default_config() : fs::path(cli.args[0]);
    // From here a stop signal interrupts the run: before it starts anything,
    // while the virtual devices start (they are stopped again), and while
    // the pipelines run.
    SignalWatcher signals;
    Config config;
    PluginRegistry registry;
    PluginFiles files;
    Plan plan;
    int code = prepare(cli, file, config, registry, plan, files);
    if (code >= 0)
        return code;
    if (signals.interrupted()) {
        spdlog::warn("stopped by a signal before any device was started");
        return exit_interrupted;
    }

    std::optional<RecordWriter> records;
    try {
        records.emplace(cli.output.value_or(config.host.output), config.host.record_data);
    } catch (const std::exception &e) {
        error_line((cli.output ? std::string("--output: ")
                               : config.file.string() + ":" + std::to_string(config.host.output_line) +
                                     ": [host] output: ") +
                   e.what());
        return exit_usage;
    }

    VirtualDevices virtuals;
    if (auto failed = start_virtuals(config, virtuals, signals))
        return *failed;
    for (auto &d : plan.devices)
        if (d.path.rfind("virtual:", 0) == 0)
            d.path = virtuals.path_of(d.path.substr(8));
    if (!resolve_identities(config, plan)) {
        virtuals.stop_all();
        return exit_failed;
    }
    const bool in_process = config.host.isolation == Isolation::None;
    RunOutcome outcome = in_process ? run_in_process(*records, config, plan, signals)
                                    : run_supervised(*records, config, plan, files, supervisor_settings(cli, &config), signals);
    virtuals.stop_all();
    if (outcome.abandoned)
        std::_Exit(outcome.interrupted ? exit_interrupted : exit_failed);
    return run_exit_code(outcome.results, outcome.interrupted, outcome.records_failed || records->failed());
}

std::string json_list(const std::vector<std::string> &v)
{
    std::string s = "[";
    for (size_t i = 0; i < v.size(); i++) {
        if (i)
            s += ',';
        s += json_string(v[i]);
    }
    return s + "]";
}

std::vector<std::string> op_names(const Plugin &p)
{
    std::vector<std::string> ops;
    for (uint32_t op = 1; op <= DEVHOST_OP_LAST; op++)
        if (p.supports_op(op))
            ops.push_back(op_name(op));
    return ops;
}

std::vector<std::string> hook_names(const Plugin &p)
{
    std::vector<std::string> names{"open", "close"};
    for (const auto &[slot, name] : {std::pair{HookSlot::Connect, "connect"}, {HookSlot::Disconnect, "disconnect"},
                                     {HookSlot::Lock, "lock"}, {HookSlot::Unlock, "unlock"},
                                     {HookSlot::Info, "info"}, {HookSlot::Transfer, "transfer"},
                                     {HookSlot::Enumerate, "enumerate"}, {HookSlot::Unload, "unload"}})
        if (p.has_hook(slot))
            names.push_back(name);
    return names;
}

// The kinds of file a plugin's path_types take, by name (unknown bits,
// which the host ignores, left out).
std::vector<std::string> path_type_names(const Plugin &p)
{
    std::vector<std::string> names;
    for (const auto &[bit, name] : {std::pair<uint32_t, const char *>{DEVHOST_PATH_REGULAR, "regular"},
                                    {DEVHOST_PATH_BLOCK, "block"},
                                    {DEVHOST_PATH_CHAR, "char"},
                                    {DEVHOST_PATH_SOCKET, "socket"}})
        if (p.path_types() & bit)
            names.push_back(name);
    return names;
}

std::string requires_text(uint32_t bits)
{
    std::vector<std::string> r{"open"};
    if (bits & DEVHOST_REQUIRES_CONNECTED) r.push_back("connected");
    if (bits & DEVHOST_REQUIRES_LOCKED) r.push_back("locked");
    std::string s;
    for (const auto &x : r)
        s += (s.empty() ? "" : "+") + x;
    return s;
}

// `devhost plugins --json`: one JSON object on stdout.
void print_plugins_json(const PluginRegistry &registry)
{
    std::string s = "{\"host_abi\":" + json_string(format_version(host_max_abi_version)) + ",\"plugins\":[";
    for (size_t i = 0; i < registry.plugins().size(); i++) {
        const Plugin &p = *registry.plugins()[i];
        s += (i ? "," : "");
        s += "{\"name\":" + json_string(p.name()) + ",\"class\":" + json_string(p.device_class()) +
             ",\"version\":" + json_string(p.version()) + ",\"abi\":" + json_string(format_version(p.abi_version())) +
             ",\"description\":" + json_string(p.description()) + ",\"file\":" + json_string(p.file().string()) +
             ",\"hooks\":" + json_list(hook_names(p)) + ",\"ops\":" + json_list(op_names(p)) +
             ",\"transfer_requires\":" + json_string(requires_text(p.transfer_requires())) +
             ",\"lock_requires\":" + json_string(requires_text(p.lock_requires())) +
             ",\"shared_paths\":" + (p.flags() & DEVHOST_PLUGIN_SHARED_PATHS ? "true" : "false") +
             ",\"path_patterns\":" + json_list(p.path_patterns()) +
             ",\"path_types\":" + json_list(path_type_names(p)) + ",\"options\":[";
        for (size_t j = 0; j < p.options().size(); j++) {
            const auto &o = p.options()[j];
            s += (j ? "," : "");
            s += "{\"name\":" + json_string(o.name) + ",\"type\":" + json_string(option_type_name(o.type)) +
                 ",\"default\":" + (o.default_value ? json_string(*o.default_value) : "null") +
                 ",\"accepts\":" + json_string(option_expectation(o)) + ",\"help\":" + json_string(o.help) +
                 ",\"required\":" + (o.flags & DEVHOST_OPTION_REQUIRED ? "true" : "false") +
                 ",\"exclusive\":" + (o.flags & DEVHOST_OPTION_EXCLUSIVE ? "true" : "false") +
                 ",\"writable\":" + (o.flags & DEVHOST_OPTION_WRITABLE ? "true" : "false") + "}";
        }
        s += "],\"controls\":[";
        for (size_t j = 0; j < p.controls().size(); j++) {
            const auto &c = p.controls()[j];
            s += (j ? "," : "");
            s += "{\"name\":" + json_string(c.name) + ",\"code\":" + std::to_string(c.code) +
                 ",\"modifies\":" + (c.flags & DEVHOST_CONTROL_MODIFIES ? "true" : "false") +
                 ",\"help\":" + json_string(c.help) + "}";
        }
        s += "]}";
    }
    s += "],\"refused\":[";
    for (size_t i = 0; i < registry.refusals().size(); i++) {
        const auto &r = registry.refusals()[i];
        s += (i ? "," : "");
        s += "{\"file\":" + json_string(r.file.string()) + ",\"reason\":" + json_string(r.reason) + "}";
    }
    std::cout << s << "]}\n";
}

// `devhost plugins`: the same for a reader.
void print_plugins_text(const PluginRegistry &registry)
{
    std::cout << "host ABI " << format_version(host_min_abi_version) << " to "
              << format_version(host_max_abi_version) << "\n";
    for (const auto &pp : registry.plugins()) {
        const Plugin &p = *pp;
        std::cout << "\n" << p.device_class() << ": " << p.name() << " " << p.version() << ", ABI "
                  << format_version(p.abi_version()) << ", " << display_path(p.file()) << "\n  " << p.description()
                  << "\n  hooks: ";
        for (const auto &h : hook_names(p))
            std::cout << h << " ";
        std::cout << "\n  transfers: ";
        for (const auto &o : op_names(p))
            std::cout << o << ", ";
        std::cout << "needing " << requires_text(p.transfer_requires()) << "\n";
        if (!p.path_patterns().empty()) {
            std::cout << "  paths:";
            for (const auto &pattern : p.path_patterns())
                std::cout << " " << text::to_printable(reinterpret_cast<const uint8_t *>(pattern.data()),
                                                       pattern.size());
            std::cout << "\n";
        }
        if (!path_type_names(p).empty()) {
            std::cout << "  path types:";
            for (const auto &type : path_type_names(p))
                std::cout << " " << type;
            std::cout << "\n";
        }
        if (!p.options().empty())
            std::cout << "  options:\n";
        for (const auto &o : p.options())
            std::cout << "    " << o.name << " (" << option_type_name(o.type)
                      << (o.default_value ? ", default " + *o.default_value : "")
                      << (o.flags & DEVHOST_OPTION_REQUIRED ? ", required" : "")
                      << (o.flags & DEVHOST_OPTION_EXCLUSIVE ? ", exclusive" : "")
                      << (o.flags & DEVHOST_OPTION_WRITABLE ? ", writable" : "") << "): " << o.help << " ["
                      << option_expectation(o) << "]\n";
        if (!p.controls().empty())
            std::cout << "  controls:\n";
        for (const auto &c : p.controls())
            std::cout << "    " << c.name << " (" << c.code
                      << (c.flags & DEVHOST_CONTROL_MODIFIES ? ", modifies" : "") << "): " << c.help << "\n";
    }
    for (const auto &r : registry.refusals())
        std::cout << "\nrefused: " << display_path(r.file) << ": " << r.reason << "\n";
}

int cmd_plugins(const Cli &cli)
{
    if (!cli.args.empty()) {
        error_line("plugins takes no arguments (see devhost --help)");
        return exit_usage;
    }
    setup_logging(cli, nullptr);
    PluginRegistry registry;
    PluginFiles files;
    load_plugins(registry, cli, nullptr, &files);
    if (cli.json)
        print_plugins_json(registry);
    else
        print_plugins_text(registry);
    return registry.plugins().empty() ? exit_no_plugin : exit_ok;
}

int cmd_probe(const Cli &cli)
{
    if (cli.args.size() != 1) {
        error_line("probe needs exactly one NAME (see devhost --help)");
        return exit_usage;
    }
    setup_logging(cli, nullptr);
    const std::string name = cli.args[0];
    NameTable table;
    std::string error;
    auto path = resolve_device_name(name, table, error);
    if (!path) {
        error_line(error);
        return exit_usage;
    }
    if (auto refusal = output::device_path_refusal(*path)) {  // opened by name: no planted link or file
        error_line("path '" + text::excerpt(*path) + "': " + refusal.value());
        return exit_usage;
    }
    PluginRegistry registry;
    PluginFiles files;
    load_plugins(registry, cli, nullptr, &files);
    // The class from the plugins' path patterns and types (class_match.hpp).
    std::optional<std::string> cls = cli.device_class ? cli.device_class : class_for_path(registry, name, *path, error);
    if (!cls) {
        error_line("cannot tell the class of '" + name + "': " + error + "; give --class");
        return exit_usage;
    }
    Config config;
    config.file = "probe";
    config.host.allow_faults = cli.allow_faults;
    DeviceConfig d;
    d.name = name;
    d.class_name = {"class", *cls, 0};
    d.path = {"path", name, 0};
    for (const char *s : {"open", "info", "close"}) {
        std::string e;
        d.steps.push_back(*parse_step(s, e));
    }
    config.devices.push_back(d);
    std::vector<Diagnostic> diags;
    Plan plan = check_config(config, registry, diags);
    if (!diags.empty()) {
        print_diagnostics(diags);
        return plan.missing_plugin ? exit_no_plugin : exit_usage;
    }
    std::optional<RecordWriter> records;
    try {
        records.emplace(cli.output.value_or("-"));
    } catch (const std::exception &e) {
        error_line(e.what());
        return exit_usage;
    }
    SignalWatcher signals;
    RunOutcome outcome = run_supervised(*records, config, plan, files, supervisor_settings(cli, nullptr), signals);
    if (outcome.interrupted)
        return exit_interrupted;
    const bool ok = !outcome.results.empty() && outcome.results[0].ok;
    return ok && !outcome.records_failed && !records->failed() ? exit_ok : exit_failed;
}

// `devhost scan`: every plugin's enumerate, or one class's.
int cmd_scan(const Cli &cli)
{
    if (!cli.args.empty()) {
        error_line("scan takes no arguments (see devhost --help)");
        return exit_usage;
    }
    setup_logging(cli, nullptr);
    PluginRegistry registry;
    PluginFiles files;
    load_plugins(registry, cli, nullptr, &files);
    std::vector<std::shared_ptr<const Plugin>> plugins = registry.plugins();
    if (cli.device_class) {
        auto plugin = registry.find(*cli.device_class);
        if (!plugin) {
            std::vector<std::string> classes;
            for (const auto &p : registry.plugins())
                classes.push_back(p->device_class());
            std::string list;
            for (const auto &c : classes)
                list += (list.empty() ? "" : ", ") + c;
            error_line("scan --class " + text::excerpt(*cli.device_class) + ": no plugin serves class '" +
                       text::excerpt(*cli.device_class) + "'; loaded classes: " + (list.empty() ? "none" : list));
            return exit_no_plugin;
        }
        plugins = {plugin};
    } else if (plugins.empty()) {
        error_line("scan: no plugins loaded (see devhost plugins)");
        return exit_no_plugin;
    }
    std::vector<ClassScan> scans;
    bool failed = false, abandoned = false;
    const SupervisorSettings settings = supervisor_settings(cli, nullptr);
    for (const auto &plugin : plugins) {
        scans.push_back(scan_in_worker(*plugin, files, cli.all ? DEVHOST_ENUMERATE_ALL : 0, settings));
        const ClassScan &s = scans.back();
        // Asked for by name, a class that cannot list is worth a warning;
        // in a scan of every class it is only the JSON's "listed": false.
        if (!s.listed && cli.device_class)
            spdlog::warn("{}: cannot list its devices (its plugin has no enumerate)", s.device_class);
        if (!s.ok)
            spdlog::error("{}: {}", s.device_class, s.error);
        failed |= !s.ok;
        abandoned |= s.abandoned;
    }
    if (cli.json)
        print_scan_json(scans, std::cout);
    else
        print_scan_text(scans, std::cout);
    std::cout.flush();
    if (abandoned)  // a plugin still runs enumerate: it must not be unloaded
        std::_Exit(exit_failed);
    return failed ? exit_failed : exit_ok;
}

// `devhost reset-failed CONFIG [CLASS...]`: forgets what the restart ledger
// in CONFIG's [host] state-dir holds of each CLASS (every class without
// one): its worker deaths and its mark failed. Only [host] of CONFIG
// matters, and no plugin is loaded. One line per class, printed once its
// reset is saved.
int cmd_reset_failed(const Cli &cli)
{
    if (cli.args.empty()) {
        error_line("reset-failed needs a CONFIG (see devhost --help)");
        return exit_usage;
    }
    const std::string &file = cli.args[0];
    std::vector<Diagnostic> diags;
    Config config = load_config(file, diags);
    setup_logging(cli, diags.empty() ? &config : nullptr);
    if (!diags.empty()) {
        print_diagnostics(diags);
        return exit_usage;
    }
    if (!config.host.state_dir) {
        error_line(file + ": [host] state-dir is not set: there is no restart ledger to reset");
        return exit_usage;
    }
    // The ledger's warnings are logged once a reset is saved; when it
    // cannot be, the error line says the same.
    std::vector<std::string> warnings;
    RestartLedger ledger(RestartPolicy{}, fs::path(*config.host.state_dir),
                         [&warnings](const std::string &w) { warnings.push_back(w); });
    auto saved = [&warnings](const std::string &line) {
        for (const auto &w : std::exchange(warnings, {}))
            spdlog::warn("{}", w);
        std::cout << line << "\n";
    };
    auto line = [](const std::string &cls, const std::optional<std::string> &had) {
        return text::excerpt(cls) + (had ? ": reset (" + *had + ")" : ": nothing to reset");
    };
    auto failed = [&ledger](const std::string &what) {
        error_line(ledger.error() + "; " + what);
        return exit_failed;
    };
    if (!ledger.persistent())
        return failed("nothing was reset");
    if (cli.args.size() == 1) {
        auto done = ledger.reset_all();
        if (!ledger.persistent())
            return failed("nothing was reset");
        for (const auto &[cls, had] : done)
            saved(line(cls, had));
        if (done.empty())
            saved("nothing to reset");
        return exit_ok;
    }
    for (size_t i = 1; i < cli.args.size(); i++) {
        auto had = ledger.reset(cli.args[i]);
        if (!ledger.persistent())
            return failed("'" + text::excerpt(cli.args[i]) + "' was not reset");
        saved(line(cli.args[i], had));
    }
    return exit_ok;
}

// `devhost serve [CONFIG]` (serve.hpp): the config checked as for run, its
// [virtual] peers started, then the serve loop until a stop signal.
std::shared_ptr<ServeConfig> load_for_serve(const Cli &cli, const fs::path &file, const VirtualDevices &virtuals,
                                            int &code, std::string &errors)
{
    auto loaded = std::make_shared<ServeConfig>();
    code = prepare(cli, file, loaded->config, loaded->registry, loaded->plan, loaded->files, &errors);
    if (code >= 0)
        return nullptr;
    if (loaded->config.host.isolation == Isolation::None) {
        errors = file.string() + ":" + std::to_string(loaded->config.host.isolation_line) +
                 ": [host] isolation: serve runs plugins in workers; 'none' is for devhost run only";
        error_line(errors);
        code = exit_usage;
        return nullptr;
    }
    for (auto &d : loaded->plan.devices) {
        if (d.path.rfind("virtual:", 0) != 0)
            continue;
        const std::string path = virtuals.path_of(d.path.substr(8));
        if (path.empty()) {
            errors = file.string() + ":" + std::to_string(d.config->path.line) + ": [device " + d.config->name +
                     "] path: [virtual " + d.path.substr(8) + "] is not running (peers start with serve, not on reload)";
            error_line(errors);  // only on reload: a config that names a peer serve did not start
            code = exit_usage;
            return nullptr;
        }
        d.path = path;
    }
    return loaded;
}

// The control socket (control_server.hpp) as serve's loop polls it.
class ControlSocket : public ControlPort {
public:
    ControlSocket(control::Handler &handler, control::ServerSettings settings) : server_(handler, std::move(settings))
    {
    }
    int fd() const override { return server_.fd(); }
    void process() override { server_.process(); }
    void publish(const nlohmann::json &event) override { server_.publish(event); }
    bool watched() const override { return server_.subscribers() > 0; }

private:
    control::Server server_;
};

// serve's [mqtt] publisher and [metrics] endpoint, from the fleet module
// (fleet_module.hpp), into `setup`; read at start (a reload does not change
// them). The exit code to stop with, or -1 to go on.
int start_fleet(const ServeConfig &loaded, const fs::path &file, ServeSetup &setup)
{
    const Config &config = loaded.config;
    const FleetModule *fleet_module = nullptr;
    if (config.mqtt.enabled || config.metrics.enabled) {
        std::string error;
        fleet_module = load_fleet_module(error);
        if (!fleet_module) {
            const int line = config.mqtt.enabled ? config.mqtt.line : config.metrics.listen_line;
            error_line(file.string() + ":" + std::to_string(line) + ": " + error);
            return exit_no_plugin;
        }
    }
    if (config.mqtt.enabled) {
        std::string error;
        MqttSettings mqtt = config.mqtt;
        if (config.host.state_dir)
            mqtt.spool_dir = *config.host.state_dir + "/" + MqttSpool::dir_name;
        setup.fleet = fleet_module->make_mqtt_publisher(mqtt, error);
        if (!setup.fleet) {
            error_line(file.string() + ":" + std::to_string(config.mqtt.line) + ": " + error);
            return exit_usage;
        }
    }
    if (config.metrics.enabled) {
        std::string error;
        std::function<SpoolStats()> spool;
        if (EventSink *fleet = setup.fleet.get())  // it outlives the metrics (ServeSetup's order)
            spool = [fleet, fleet_module] { return fleet_module->mqtt_spool_stats(*fleet); };
        setup.metrics = fleet_module->make_metrics(config.metrics, error, std::move(spool));
        if (!setup.metrics) {
            error_line(file.string() + ":" + std::to_string(config.metrics.listen_line) + ": " + error);
            return exit_usage;
        }
    }
    return -1;
}

int cmd_serve(const Cli &cli)
{
    if (cli.args.size() > 1) {
        error_line("serve takes at most one CONFIG (see devhost --help)");
        return exit_usage;
    }
    const fs::path file = cli.args.empty() ? fs::path("/etc/devhost/devhost.ini") : fs::path(cli.args[0]);
    // Before any thread or process: the loop takes them from its signalfd.
    const sigset_t set = serve_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    VirtualDevices virtuals;
    Config first;
    {
        std::vector<Diagnostic> diags;
        first = load_config(file, diags);
    }
    for (const auto &v : first.virtuals) {
        std::string error;
        bool usage = false;
        if (!virtuals.start(v, 10000, error, usage)) {
            error_line(first.file.string() + ":" + std::to_string(v.line) + ": " + error);
            virtuals.stop_all();
            return usage ? exit_usage : exit_failed;
        }
    }
    int code = -1;
    std::string errors;
    auto loaded = load_for_serve(cli, file, virtuals, code, errors);
    if (!loaded)
        return code;
    std::optional<RecordWriter> records;
    try {
        records.emplace(cli.output.value_or(loaded->config.host.output), loaded->config.host.record_data);
    } catch (const std::exception &e) {
        error_line((cli.output ? std::string("--output: ") : file.string() + ": [host] output: ") + e.what());
        return exit_usage;
    }
    ServeSetup setup;
    control::ServerSettings control_settings = control::server_settings(loaded->config.host);
    if (cli.socket)
        control_settings.path = *cli.socket;
    setup.control = [control_settings](control::Handler &handler) -> std::unique_ptr<ControlPort> {
        return std::make_unique<ControlSocket>(handler, control_settings);
    };
    if (const int stop = start_fleet(*loaded, file, setup); stop >= 0)
        return stop;
    setup.config = loaded;
    setup.settings = supervisor_settings(cli, &loaded->config);
    setup.settings.config_name = file.string();
    setup.records = &*records;
    setup.reload = [&cli, file, &virtuals](std::string &error) {
        int code = -1;
        return load_for_serve(cli, file, virtuals, code, error);
    };
    code = run_serve(std::move(setup));
    virtuals.stop_all();
    return code;
}

// Runs the command; an exception it lets out is one error line: a logging
// setup problem is a usage error (2), anything else a failure (1).
int dispatch(const Cli &cli)
{
    try {
        // The commands that start workers fork the worker template first,
        // while this process is still one thread (worker_template.hpp).
        // Not check: it starts one worker at most, to describe plugins the
        // describe cache does not know (after an install or an upgrade),
        // and then an exec costs about 2 ms once, where the template's fork
        // and exit would cost every check about half a millisecond.
        if (cli.command == "run" || cli.command == "serve" || cli.command == "plugins" || cli.command == "probe" ||
            cli.command == "scan")
            worker_template::start();
        if (cli.command == "run")
            return cmd_run(cli);
        if (cli.command == "check")
            return cmd_check(cli);
        if (cli.command == "serve")
            return cmd_serve(cli);
        if (cli.command == "plugins")
            return cmd_plugins(cli);
        if (cli.command == "probe")
            return cmd_probe(cli);
        if (cli.command == "scan")
            return cmd_scan(cli);
        if (cli.command == "reset-failed")
            return cmd_reset_failed(cli);
        if (is_control_command(cli.command))
            return run_control_command({cli.command, cli.args, cli.socket.value_or(control::default_socket), cli.json});
    } catch (const spdlog::spdlog_ex &e) {
        error_line(std::string("cannot set up logging: ") + e.what());
        return exit_usage;
    } catch (const std::exception &e) {
        error_line(e.what());
        return exit_failed;
    }
    error_line("unknown command '" + cli.command + "' (expected " + command_list + "; see devhost --help)");
    return exit_usage;
}

// `devhost [COMMAND] --help` and `devhost help [COMMAND]`: COMMAND's help, or
// without one the global help, on stdout (0); a command devhost does not
// have is a usage error (2), its one line prefixed with `prefix`.
int show_help(const std::optional<std::string> &command, const char *prefix)
{
    if (!command) {
        print_global_help(std::cout);
        return exit_ok;
    }
    if (print_command_help(*command, std::cout))
        return exit_ok;
    error_line(prefix + std::string("unknown command '") + text::excerpt(*command) + "' (expected " + command_list +
               "; see devhost --help)");
    return exit_usage;
}

}  // namespace

int run_cli(int argc, char **argv)
{
    if (argc >= 2 && std::string_view(argv[1]) == "__worker")
        return run_worker(argc, argv);
    std::signal(SIGPIPE, SIG_IGN);
    po::options_description visible = cli_options();
    po::options_description hidden;
    hidden.add_options()
        ("command", po::value<std::string>())
        ("args", po::value<std::vector<std::string>>());
    po::options_description all;
    all.add(visible).add(hidden);
    po::positional_options_description positional;
    positional.add("command", 1).add("args", -1);

    Cli cli;
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
        po::notify(vm);
    } catch (const po::error &e) {
        error_line(std::string(e.what()) + " (see devhost --help)");
        return exit_usage;
    }
    if (vm.count("help"))
        return show_help(vm.count("command") ? std::optional(vm["command"].as<std::string>()) : std::nullopt, "");
    if (vm.count("version")) {
        std::cout << "devhost " DEVHOST_VERSION ", plugin ABI " << format_version(host_min_abi_version) << " to "
                  << format_version(host_max_abi_version) << "\n";
        return exit_ok;
    }
    if (!vm.count("command")) {
        print_short_usage(std::cerr);
        return exit_usage;
    }
    cli.command = vm["command"].as<std::string>();
    if (vm.count("args"))
        cli.args = vm["args"].as<std::vector<std::string>>();
    if (cli.command == "help") {
        if (cli.args.size() > 1) {
            error_line("help takes at most one COMMAND (see devhost --help)");
            return exit_usage;
        }
        return show_help(cli.args.empty() ? std::nullopt : std::optional(cli.args[0]), "help: ");
    }
    auto opt = [&](const char *name, std::optional<std::string> &out) {
        if (vm.count(name))
            out = vm[name].as<std::string>();
    };
    opt("plugin-path", cli.plugin_path);
    opt("log-level", cli.log_level);
    opt("log-file", cli.log_file);
    opt("output", cli.output);
    opt("class", cli.device_class);
    opt("socket", cli.socket);
    cli.json = vm.count("json") > 0;
    cli.all = vm.count("all") > 0;
    cli.allow_faults = vm.count("allow-faults") > 0;
    if (cli.log_level && !logging::parse_level(*cli.log_level)) {
        error_line("--log-level " + *cli.log_level + ": expected one of " + logging::level_names);
        return exit_usage;
    }
    return dispatch(cli);
}

}  // namespace devhost
