#include "check.hpp"

#include "class_match.hpp"
#include "device_templates.hpp"
#include "device.hpp"
#include "identity.hpp"
#include "lifecycle.hpp"
#include "options.hpp"
#include "common/device_path.hpp"
#include "common/output_file.hpp"
#include "common/text.hpp"

#include <devhost/unique_fd.hpp>

#include <algorithm>
#include <cerrno>
#include <spdlog/spdlog.h>
#include <filesystem>
#include <map>
#include <set>
#include <sys/stat.h>

namespace devhost {

namespace {

std::string join(const std::vector<std::string> &v)
{
    std::string s;
    for (const auto &x : v)
        s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? "none" : s;
}

// A warning: something check foresees that only the plugin decides, when
// the step runs. One line, as long as an error line at most.
void warn(const std::string &file, int line, const std::string &message)
{
    spdlog::warn("{}", Diagnostic{file, line, message}.str());
}

// Whether the class has an option flagged DEVHOST_OPTION_WRITABLE (raw's
// allow-write) that this device leaves false (as configured, else its
// default): its plugin then refuses writes. The values are the plan's,
// parsed once.
const OptionSpec *read_only(const Plugin &plugin, const DevicePlan &plan)
{
    const OptionSpec *spec = plugin.writable_option();
    if (!spec || !plan.values)
        return nullptr;
    const OptionValue *v = option_value(plugin, *plan.values, spec->name);
    return v && v->is_set && v->integer == 0 ? spec : nullptr;
}

// A connect step's arguments, as far as check can judge them: the plugin
// validates them when the step runs, so what is wrong here is a warning.
// An argument named like an option of the class takes that option's values
// (parallel: mode=, fallback=; filterport: sync=).
void warn_connect(const DeviceConfig &d, const Plugin &plugin, const Step &s, const std::string &file)
{
    const std::string where = "[device " + text::excerpt(d.name) + "] step '" + text::excerpt(s.text) + "': ";
    const std::string decides = "; the plugin decides when it runs";
    std::vector<std::string> names;
    for (const auto &o : plugin.options())
        names.push_back(o.name);
    for (const auto &[key, value] : s.args) {
        std::string error;
        if (const OptionSpec *spec = plugin.find_option(key)) {
            if (!parse_option_value(*spec, value, error))
                warn(file, s.line, where + key + "=: " + error + " (as option '" + key + "')" + decides);
        } else if (auto hint = text::closest(key, names); !hint.empty()) {
            warn(file, s.line,
                 where + "'" + text::excerpt(key) + "' is not an option of class '" + plugin.device_class() +
                     "' (did you mean '" + hint + "'?)" + decides);
        }
    }
}

// What the plugin will refuse when the step runs, foreseen: an offset on a
// class that declares none (DEVHOST_PLUGIN_OFFSETS), a write or a modifying
// control on a device its class keeps read-only, doubtful connect arguments.
void warn_step(const DeviceConfig &d, const Plugin &plugin, const DevicePlan &plan, const Step &s, uint32_t code,
               const std::string &file)
{
    const std::string where = "[device " + text::excerpt(d.name) + "] step '" + text::excerpt(s.text) + "': ";
    const std::string cls = "class '" + plugin.device_class() + "'";
    if (s.offset && !(plugin.flags() & DEVHOST_PLUGIN_OFFSETS) && !s.file_transfer())  // else check_file_step's
        warn(file, s.line,
             where + "offset= on " + cls + ", which does not declare offsets (a stream has none); the plugin "
                     "decides when it runs");
    const ControlSpec *control = s.kind == StepKind::Control ? plugin.find_control(code) : nullptr;
    const bool writes = s.kind == StepKind::Write || (control && (control->flags & DEVHOST_CONTROL_MODIFIES));
    if (const OptionSpec *gate = writes ? read_only(plugin, plan) : nullptr)
        warn(file, s.line,
             where + cls + " is read-only unless " + gate->name + " = true, so the plugin will refuse this " +
                 (control ? "control" : "write"));
    if (s.kind == StepKind::Connect && plugin.has_hook(HookSlot::Connect))
        warn_connect(d, plugin, s, file);
}

// A file transfer (from=, to=) as far as check sees it: from= a regular
// file it may read now (opened as the run will, output::open_read), to= in
// a directory that exists and not a directory itself, and offset= only on a
// class that declares offsets (the host moves the offset on from chunk to
// chunk: a stream has none to move).
void check_file_step(const DeviceConfig &d, const Plugin &plugin, const Step &s, const std::string &file,
                     std::vector<Diagnostic> &diags)
{
    const std::string where = "[device " + text::excerpt(d.name) + "] step '" + text::excerpt(s.text) + "': ";
    std::string why;
    if (s.from_file && !UniqueFd(output::open_read(*s.from_file, why)))
        diags.push_back({file, s.line, where + "from=" + text::excerpt(*s.from_file) + ": " + why});
    std::error_code ec;
    const std::filesystem::path to = s.to_file.value_or(""), parent = to.parent_path();
    if (s.to_file && !parent.empty() && !std::filesystem::is_directory(parent, ec))
        diags.push_back(
            {file, s.line, where + "to=: directory '" + text::excerpt(parent.string()) + "' does not exist"});
    else if (s.to_file && std::filesystem::is_directory(to, ec))
        diags.push_back({file, s.line, where + "to=: '" + text::excerpt(to.string()) + "' is a directory, not a file"});
    if (s.file_transfer() && s.offset && !(plugin.flags() & DEVHOST_PLUGIN_OFFSETS))
        diags.push_back({file, s.line,
                         where + "offset= on class '" + plugin.device_class() +
                             "', which does not declare offsets (a file transfer moves its offset on chunk by chunk)"});
}

// What a refused step needed, as check says it.
std::string needed(Need need, const std::string &cls)
{
    switch (need) {
    case Need::None: return "";
    case Need::NotClosed: return "comes after close (a closed device cannot be used again)";
    case Need::Open: return "needs an open device: add 'step = open' before it";
    case Need::NotOpen: return "device is already open";
    case Need::NotConnected: return "device is already connected";
    case Need::NotLocked: return "device is already locked";
    case Need::Connected: return "device is not connected at this point";
    case Need::Locked: return "device is not locked at this point";
    case Need::ConnectedForLock: return cls + " needs connect before lock";
    case Need::ConnectedForTransfer: return cls + " needs connect before transfers";
    case Need::LockedForTransfer: return cls + " needs lock before transfers";
    }
    return "";
}

// Whether the plugin has the hook (or, for a transfer, the op) a step needs;
// the reason it does not otherwise.
std::optional<std::string> unsupported(const Step &s, Hook hook, const Plugin &plugin, const std::string &cls)
{
    switch (hook) {
    case Hook::Connect:
        return plugin.has_hook(HookSlot::Connect) ? std::nullopt : std::optional(cls + " does not support connect");
    case Hook::Info:
        return plugin.has_hook(HookSlot::Info) ? std::nullopt : std::optional(cls + " does not support info");
    case Hook::Lock:
        return plugin.has_hook(HookSlot::Lock) ? std::nullopt : std::optional(cls + " does not support lock");
    case Hook::Transfer: {
        const uint32_t op = transfer_op(s);
        if (!plugin.supports_op(op))
            return cls + " does not support " + op_name(op);
        return std::nullopt;
    }
    default: return std::nullopt;
    }
}

// The control code a control step names; a reason when it names none.
uint32_t control_code(const DeviceConfig &d, const Step &s, const Plugin &plugin, const std::string &file,
                      const std::string &cls, std::optional<std::string> &error)
{
    std::vector<std::string> names;
    for (const auto &c : plugin.controls())
        names.push_back(c.name);
    if (auto c = plugin.find_control(s.control))
        return c->code;
    if (auto n = text::parse_int(s.control); n && *n >= 0 && *n <= UINT32_MAX) {
        if (!plugin.find_control(static_cast<uint32_t>(*n)))  // the plugin may still know it: its call
            warn(file, s.line,
                 "[device " + text::excerpt(d.name) + "] step '" + text::excerpt(s.text) + "': control code " +
                     std::to_string(*n) + " is not one " + cls + " declares; the plugin decides when it runs");
        return static_cast<uint32_t>(*n);
    } else if (n) {
        error = "control code " + text::excerpt(s.control) + " is out of range (0 to " + std::to_string(UINT32_MAX) +
                ")";
    } else {
        std::string hint = text::closest(s.control, names);
        error = "unknown control code '" + text::excerpt(s.control) + "' for " + cls +
                (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; known: " + join(names);
    }
    return 0;
}

// Walks the steps in order through the device lifecycle (lifecycle.hpp), the
// same table Device enforces at run time. After a mistake it goes on as if
// the step had succeeded, so that one mistake does not hide the next.
void check_steps(const DeviceConfig &d, const Plugin &plugin, const std::string &file, DevicePlan &plan,
                 std::vector<Diagnostic> &diags)
{
    DeviceState state;
    const ClassRules rules{plugin.lock_requires(), plugin.transfer_requires()};
    bool got_message = false;
    auto fail = [&](const Step &s, const std::string &what) {
        diags.push_back(
            {file, s.line, "[device " + text::excerpt(d.name) + "] step '" + text::excerpt(s.text) + "': " + what});
    };
    const std::string cls = "class '" + plugin.device_class() + "'";
    uint64_t runs = 0;  // repetitions counted
    for (const Step &s : d.steps) {
        if (runs <= max_device_step_runs && (runs += s.repeat) > max_device_step_runs)
            fail(s, "the device's steps come to more than " + std::to_string(max_device_step_runs) +
                        " with their repetitions (repeat=); spread them over more devices or runs");
        uint32_t code = 0;
        const std::optional<Hook> hook = hook_of(s.kind);
        if (!hook) {  // sleep: no hook, any state
            plan.control_codes.push_back(0);
            continue;
        }
        const Need need = needs(*hook, state, rules);
        if (need == Need::NotClosed || need == Need::Open) {  // nothing else to say of this step
            fail(s, needed(need, cls));
            plan.control_codes.push_back(0);
            continue;
        }
        const std::optional<std::string> why = unsupported(s, *hook, plugin, cls);
        if (why)
            fail(s, *why);
        else if (need != Need::None)
            fail(s, needed(need, cls));
        if (!why || *hook != Hook::Transfer) {
            if (s.kind == StepKind::GetMessage)
                got_message = true;
            if (s.kind == StepKind::Reply && !s.message_id && !got_message)
                fail(s, "no get-message before it to reply to (or give id=N)");
            if (s.kind == StepKind::Control) {
                std::optional<std::string> error;
                code = control_code(d, s, plugin, file, cls, error);
                if (error)
                    fail(s, *error);
            }
        }
        apply(*hook, true, state);
        // Its next repetitions start where the first left the device; a
        // hook's effect is the same each time, so the second says it all.
        if (const Need again = s.repeat > 1 ? needs(*hook, state, rules) : Need::None; again != Need::None)
            fail(s, "repetition 2 of repeat=" + std::to_string(s.repeat) + ": " + needed(again, cls));
        plan.control_codes.push_back(code);
        warn_step(d, plugin, plan, s, code, file);
        check_file_step(d, plugin, s, file, diags);
    }
}

}  // namespace

namespace {

void check_virtuals(const Config &config, const VirtualKinds &kinds, std::vector<Diagnostic> &diags)
{
    const std::string file = config.file.string();
    std::vector<std::string> kind_names;
    for (const auto &[k, keys] : kinds)
        kind_names.push_back(k);
    for (const auto &v : config.virtuals) {
        if (v.kind.value.empty())
            continue;  // already reported by the config parser
        auto it = kinds.find(v.kind.value);
        if (it == kinds.end()) {
            std::string hint = text::closest(v.kind.value, kind_names);
            diags.push_back({file, v.kind.line,
                             "[virtual " + text::excerpt(v.name) + "] kind: unknown kind '" +
                                 text::excerpt(v.kind.value) + "'" +
                                 (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; known: " +
                                 join(kind_names)});
            continue;
        }
        std::vector<std::string> keys;
        for (const auto &o : it->second)
            if (o.key != "name")  // the section's own name; the host passes it
                keys.push_back(o.key);
        for (const auto &o : v.options) {
            if (std::find(keys.begin(), keys.end(), o.key) != keys.end())
                continue;
            if (o.key == "name") {
                diags.push_back({file, o.line,
                                 "[virtual " + text::excerpt(v.name) +
                                     "] name: not a key here; the section's name is the peer's name"});
                continue;
            }
            std::string hint = text::closest(o.key, keys);
            diags.push_back({file, o.line,
                             "[virtual " + text::excerpt(v.name) + "] " + text::excerpt(o.key) +
                                 ": not an option of kind '" + v.kind.value + "'" +
                                 (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; options: " +
                                 join(keys)});
        }
    }
}

}  // namespace

namespace {

// Records are appended to a file: its directory must be there.
void check_output(const Config &config, std::vector<Diagnostic> &diags)
{
    if (config.host.output == "-" || config.host.output_line == 0)
        return;
    const std::string file = config.file.string();
    std::filesystem::path parent = std::filesystem::path(config.host.output).parent_path();
    std::error_code ec;
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
        diags.push_back({file, config.host.output_line,
                         "[host] output: directory '" + text::excerpt(parent.string()) + "' does not exist"});
    else if (std::filesystem::is_directory(config.host.output, ec))
        diags.push_back({file, config.host.output_line,
                         "[host] output: '" + text::excerpt(config.host.output) + "' is a directory, not a file"});
}

// A [names] entry must lead to a Linux path, not round to itself: each
// cycle is reported once, on its first entry.
void check_names(const Config &config, std::vector<Diagnostic> &diags)
{
    const NameTable &names = config.names;
    for (const auto &cycle : names_cycles(names)) {
        const size_t first = cycle.front();
        diags.push_back({config.file.string(), first < names.override_lines.size() ? names.override_lines[first] : 0,
                         "[names] " + text::excerpt(names.overrides[first].first) + ": a cycle: " +
                             describe_names(names, cycle) + " (a name must lead to a Linux path)"});
    }
}

struct PathUse {
    std::string device;
    int line = 0;
    bool exclusive = true;
};

// The line refusing the device's filesystem path `resolved` (common/device_path.hpp).
std::string path_refusal(const DeviceConfig &d, const std::string &resolved, const std::string &refusal)
{
    return "[device " + text::excerpt(d.name) + "] path '" + text::excerpt(resolved) + "': " + refusal;
}

// Resolves the device's path into the plan, and refuses a second device on
// one path of a class that opens exclusively (however the path is spelt).
void check_path(const Config &config, const DeviceConfig &d, const std::set<std::string> &virtual_names,
                DevicePlan &dp, std::map<std::string, PathUse> &paths, std::vector<Diagnostic> &diags)
{
    const std::string file = config.file.string();
    const Plugin &p = *dp.plugin;
    const std::string where = "[device " + text::excerpt(d.name) + "] path: ";
    std::string error;
    if (d.path.value.rfind("virtual:", 0) == 0) {
        std::string vname = d.path.value.substr(8);
        if (!virtual_names.count(vname))
            diags.push_back({file, d.path.line, where + "no [virtual " + text::excerpt(vname) +
                                                    "] section declares '" + text::excerpt(d.path.value) + "'"});
        dp.path = d.path.value;
    } else if (is_identity(d.path.value)) {
        // Resolved at each attach (serve) or when the run starts, not now:
        // the device need not be plugged in for its config to be right.
        if (const std::string bad = identity_syntax_error(d.path.value); !bad.empty()) {
            diags.push_back({file, d.path.line, where + bad});
            return;
        }
        dp.path = d.path.value;
    } else if (auto resolved = resolve_device_name(d.path.value, config.names, error)) {
        dp.path = *resolved;
        if (auto refusal = output::device_path_refusal(dp.path)) {  // opened by name: no planted link or file
            diags.push_back({file, d.path.line, path_refusal(d, dp.path, *refusal)});
            return;
        }
    } else {
        diags.push_back({file, d.path.line, where + error});
    }
    if (dp.path.empty() || (p.flags() & DEVHOST_PLUGIN_SHARED_PATHS))
        return;
    // One device, however it is named: a link, ./ and .. lead to the same
    // file. Two devices that both set the class's exclusive option false
    // may share: the option the plugin flags DEVHOST_OPTION_EXCLUSIVE (ABI
    // 1.1), whatever its name. A plugin that flags none (one that
    // negotiated 1.0 among them) opens every device exclusively.
    const OptionSpec *flag = p.exclusive_option();
    bool exclusive = true;
    if (const OptionValue *v = flag && dp.values ? option_value(p, *dp.values, flag->name) : nullptr)
        exclusive = !(v->is_set && v->integer == 0);
    else
        for (const auto &o : d.options)  // the device's options have a mistake: as written
            if (flag && o.key == flag->name)
                exclusive = text::parse_bool(o.value).value_or(true);
    std::error_code ec;
    std::string key = dp.path;
    if (!key.empty() && key.front() == '/') {
        auto canonical = std::filesystem::weakly_canonical(key, ec);
        if (!ec)
            key = canonical.string();
    }
    auto [it, fresh] = paths.emplace(key, PathUse{d.name, d.path.line, exclusive});
    if (!fresh && (exclusive || it->second.exclusive))
        diags.push_back({file, d.path.line,
                         where + "'" + text::excerpt(dp.path) + "' is " +
                             (key == dp.path ? "" : "'" + text::excerpt(key) + "', ") + "already used by device '" +
                             it->second.device + "' (line " + std::to_string(it->second.line) + "); class '" +
                             p.device_class() + "' opens devices exclusively" +
                             (flag ? " unless both say " + flag->name + " = false" : "")});
}

// The class's own keys: each an option of its schema, with a value it takes.
void check_options(const Config &config, const DeviceConfig &d, DevicePlan &dp, std::vector<Diagnostic> &diags)
{
    const Plugin &p = *dp.plugin;
    std::vector<std::string> option_names, candidates = common_device_keys();
    for (const auto &o : p.options()) {
        option_names.push_back(o.name);
        candidates.push_back(o.name);
    }
    const std::string where = "[device " + text::excerpt(d.name) + "] ";
    std::map<std::string, OptionValue> parsed;
    for (const auto &o : d.options) {
        const OptionSpec *spec = p.find_option(o.key);
        if (!spec) {
            std::string hint = text::closest(o.key, candidates);
            diags.push_back({config.file.string(), o.line,
                             where + text::excerpt(o.key) + ": not an option of class '" + p.device_class() + "'" +
                                 (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; options: " +
                                 join(option_names) + ", and for every device: " + join(common_device_keys())});
            continue;
        }
        std::string e;
        auto integer = parse_option_value(*spec, o.value, e);
        if (integer)
            parsed[o.key] = OptionValue{o.value, *integer, true};
        else
            diags.push_back({config.file.string(), o.line, where + o.key + ": " + e});
        dp.options[o.key] = o.value;
    }
    // Options the class requires (DEVHOST_OPTION_REQUIRED) that the device
    // leaves out, named at its section's line.
    for (const auto &spec : p.options())
        if ((spec.flags & DEVHOST_OPTION_REQUIRED) && !dp.options.count(spec.name))
            diags.push_back({config.file.string(), d.line,
                             where + spec.name + ": required by class '" + p.device_class() +
                                 "' and not set (add '" + spec.name + " = ...' to the section at line " +
                                 std::to_string(d.line) + ")"});
    // Parsed once, above; the rest are the defaults the loader parsed. A
    // device with a mistake gets no values (every mistake reported above).
    if (parsed.size() == dp.options.size())
        dp.values = complete_options(p, parsed);
}

// Whether `resolved` is a port of [host] port-dir (\Name) with no socket
// yet: check runs before the port's server makes it, so its kind of file
// cannot tell the class either.
bool port_without_socket(const NameTable &names, const std::string &resolved)
{
    const std::string dir = names.port_dir + "/";
    struct stat st {};
    return resolved.size() > dir.size() && resolved.compare(0, dir.size(), dir) == 0 &&
           ::lstat(resolved.c_str(), &st) != 0 && errno == ENOENT;
}

// The class of a device without `class =`, from the plugins' path
// patterns or path types; nullopt after a diagnostic when no class or two
// serve the path.
std::optional<std::string> class_of_path(const Config &config, const DeviceConfig &d, const PluginRegistry &registry,
                                         std::vector<Diagnostic> &diags)
{
    const std::string file = config.file.string();
    const std::string where = "[device " + text::excerpt(d.name) + "]";
    std::string error;
    if (d.path.value.rfind("virtual:", 0) == 0) {
        diags.push_back({file, d.line, where + ": missing 'class = ...' (a virtual: path names no class)"});
        return std::nullopt;
    }
    if (is_identity(d.path.value)) {
        diags.push_back({file, d.line, where + ": missing 'class = ...' (an identity path names no class)"});
        return std::nullopt;
    }
    auto resolved = resolve_device_name(d.path.value, config.names, error);
    if (!resolved) {
        diags.push_back({file, d.path.line, where + " path: " + error});
        return std::nullopt;
    }
    if (auto refusal = output::device_path_refusal(*resolved)) {  // before its kind is guessed from it
        diags.push_back({file, d.path.line, path_refusal(d, *resolved, *refusal)});
        return std::nullopt;
    }
    auto cls = class_for_path(registry, d.path.value, *resolved, error);
    if (!cls && port_without_socket(config.names, *resolved))
        diags.push_back({file, d.line,
                         where + ": missing 'class = ...' and port '" + text::excerpt(d.path.value) + "' ('" +
                             text::excerpt(*resolved) +
                             "') has no socket yet to tell its class by: name the class with 'class = ...'"});
    else if (!cls)
        diags.push_back({file, d.line, where + ": missing 'class = ...' and " + error});
    return cls;
}

// `fault =` lines are a test mode: each one needs [host] allow-faults =
// true (or --allow-faults, which sets it), so that a stray line in a
// production config cannot fail, hang or crash a device.
void check_faults_allowed(const Config &config, std::vector<Diagnostic> &diags)
{
    if (config.host.allow_faults)
        return;
    for (const auto &d : config.devices)
        for (const auto &f : d.faults)
            diags.push_back({config.file.string(), f.line,
                             "[device " + text::excerpt(d.name) + "] fault: fault injection is a test mode: 'fault = " +
                                 text::excerpt(f.text) + "' needs [host] allow-faults = true (or --allow-faults)"});
}

}  // namespace

Plan check_config(const Config &config, const PluginRegistry &registry, std::vector<Diagnostic> &diags,
                  const VirtualKinds *kinds)
{
    Plan plan;
    const std::string file = config.file.string();
    if (kinds)
        check_virtuals(config, *kinds, diags);
    check_output(config, diags);
    check_names(config, diags);
    check_faults_allowed(config, diags);
    check_mqtt(config, diags);
    std::vector<std::string> classes;
    for (const auto &p : registry.plugins())
        classes.push_back(p->device_class());
    std::set<std::string> virtual_names;
    for (const auto &v : config.virtuals)
        virtual_names.insert(v.name);
    std::map<std::string, PathUse> paths;  // canonical path -> its first device

    for (const auto &d : config.devices) {
        DevicePlan dp;
        dp.config = &d;
        std::string cls = d.class_name.value;
        int class_line = d.class_name.line;
        if (cls.empty() && d.class_from_path) {
            auto from_path = class_of_path(config, d, registry, diags);
            if (!from_path)
                continue;
            cls = *from_path;
            class_line = d.path.line;
        }
        if (cls.empty())
            continue;  // already reported by the config parser
        dp.plugin = registry.find(cls);
        if (!dp.plugin) {
            std::string hint = text::closest(cls, classes);
            diags.push_back({file, class_line,
                             "[device " + text::excerpt(d.name) + "] class: no usable plugin for class '" +
                                 text::excerpt(cls) + "'" + (d.class_name.value.empty() ? " (from its path)" : "") +
                                 (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                                 "; loaded classes: " + join(classes), Diagnostic::Kind::MissingPlugin});
            plan.missing_plugin = true;
            continue;
        }
        // A device without a path (reported by the parser) still has its
        // options and steps checked: one mistake hides no other.
        check_options(config, d, dp, diags);  // first: the path's sharing rule reads the values
        if (!d.path.value.empty())
            check_path(config, d, virtual_names, dp, paths, diags);
        check_steps(d, *dp.plugin, file, dp, diags);
        if (!d.path.value.empty())
            plan.devices.push_back(std::move(dp));
    }
    // A template's mistake once, not once per instance.
    collapse_instance_diagnostics(config, diags);
    return plan;
}

}  // namespace devhost
