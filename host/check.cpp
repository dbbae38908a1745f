#include "check.hpp"

#include "device.hpp"
#include "options.hpp"
#include "text.hpp"

#include <algorithm>
#include <spdlog/spdlog.h>
#include <filesystem>
#include <set>

namespace devhost {

std::string closest(const std::string &word, const std::vector<std::string> &candidates)
{
    std::string best;
    size_t best_distance = 3;
    for (const auto &c : candidates) {
        std::vector<size_t> prev(c.size() + 1), cur(c.size() + 1);
        for (size_t j = 0; j <= c.size(); j++)
            prev[j] = j;
        for (size_t i = 1; i <= word.size(); i++) {
            cur[0] = i;
            for (size_t j = 1; j <= c.size(); j++)
                cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (word[i - 1] != c[j - 1])});
            std::swap(prev, cur);
        }
        if (prev[c.size()] < best_distance) {
            best_distance = prev[c.size()];
            best = c;
        }
    }
    return best;
}

namespace {

std::string join(const std::vector<std::string> &v)
{
    std::string s;
    for (const auto &x : v)
        s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? "none" : s;
}

uint32_t op_of(const Step &s)
{
    switch (s.kind) {
    case StepKind::Write: return DEVHOST_OP_WRITE;
    case StepKind::Read:
        return s.read_mode == ReadMode::UpTo ? DEVHOST_OP_READ
               : s.read_mode == ReadMode::Exactly ? DEVHOST_OP_READ_EXACT
                                                  : DEVHOST_OP_READ_UNTIL;
    case StepKind::Request: return DEVHOST_OP_REQUEST;
    case StepKind::GetMessage: return DEVHOST_OP_GET_MESSAGE;
    case StepKind::Reply: return DEVHOST_OP_REPLY;
    case StepKind::Control: return DEVHOST_OP_CONTROL;
    default: return 0;
    }
}

// Walks the steps in order through the states a device can be in, the same
// rules Device enforces at run time.
void check_steps(const DeviceConfig &d, const Plugin &plugin, const std::string &file, DevicePlan &plan,
                 std::vector<Diagnostic> &diags)
{
    bool open = false, connected = false, locked = false, closed = false, got_message = false;
    auto fail = [&](const Step &s, const std::string &what) {
        diags.push_back({file, s.line, "[device " + d.name + "] step '" + s.text + "': " + what});
    };
    const auto &h = plugin.hooks();
    const std::string cls = "class '" + plugin.device_class() + "'";
    for (const Step &s : d.steps) {
        uint32_t code = 0;
        if (closed && s.kind != StepKind::Sleep) {
            fail(s, "comes after close (a closed device cannot be used again)");
            plan.control_codes.push_back(0);
            continue;
        }
        if (!open && s.kind != StepKind::Open && s.kind != StepKind::Sleep) {
            fail(s, "needs an open device: add 'step = open' before it");
            plan.control_codes.push_back(0);
            continue;
        }
        switch (s.kind) {
        case StepKind::Open:
            if (open)
                fail(s, "device is already open");
            open = true;
            break;
        case StepKind::Connect:
            if (!h.connect)
                fail(s, cls + " does not support connect");
            else if (connected)
                fail(s, "device is already connected");
            connected = true;
            break;
        case StepKind::Info:
            if (!h.info)
                fail(s, cls + " does not support info");
            break;
        case StepKind::Lock:
            if (!h.lock)
                fail(s, cls + " does not support lock");
            else if ((plugin.lock_requires() & DEVHOST_REQUIRES_CONNECTED) && !connected)
                fail(s, cls + " needs connect before lock");
            else if (locked)
                fail(s, "device is already locked");
            locked = true;
            break;
        case StepKind::Unlock:
            if (!locked)
                fail(s, "device is not locked at this point");
            locked = false;
            break;
        case StepKind::Disconnect:
            if (!connected)
                fail(s, "device is not connected at this point");
            connected = false;
            break;
        case StepKind::Close:
            open = connected = locked = false;
            closed = true;
            break;
        case StepKind::Sleep:
            break;
        default: {
            const uint32_t op = op_of(s);
            if (!plugin.supports_op(op)) {
                fail(s, cls + " does not support " + op_name(op));
                break;
            }
            if ((plugin.transfer_requires() & DEVHOST_REQUIRES_CONNECTED) && !connected)
                fail(s, cls + " needs connect before transfers");
            else if ((plugin.transfer_requires() & DEVHOST_REQUIRES_LOCKED) && !locked)
                fail(s, cls + " needs lock before transfers");
            if (s.kind == StepKind::GetMessage)
                got_message = true;
            if (s.kind == StepKind::Reply && !s.message_id && !got_message)
                fail(s, "no get-message before it to reply to (or give id=N)");
            if (s.kind == StepKind::Control) {
                std::vector<std::string> names;
                for (const auto &c : plugin.controls())
                    names.push_back(c.name);
                if (auto c = plugin.find_control(s.control)) {
                    code = c->code;
                } else if (auto n = text::parse_int(s.control); n && *n >= 0 && *n <= UINT32_MAX) {
                    code = static_cast<uint32_t>(*n);
                    if (!plugin.find_control(code))  // the plugin may still know it: its call
                        spdlog::warn("{}:{}: [device {}] step '{}': control code {} is not one {} declares; "
                                     "the plugin decides when it runs",
                                     file, s.line, d.name, s.text, code, cls);
                } else if (n) {
                    fail(s, "control code " + s.control + " is out of range (0 to " + std::to_string(UINT32_MAX) +
                                ")");
                } else {
                    std::string hint = closest(s.control, names);
                    fail(s, "unknown control code '" + s.control + "' for " + cls +
                                (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; known: " + join(names));
                }
            }
        }
        }
        plan.control_codes.push_back(code);
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
            std::string hint = closest(v.kind.value, kind_names);
            diags.push_back({file, v.kind.line,
                             "[virtual " + v.name + "] kind: unknown kind '" + v.kind.value + "'" +
                                 (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; known: " +
                                 join(kind_names)});
            continue;
        }
        std::vector<std::string> keys;
        for (const auto &k : it->second)
            if (k != "name")  // the section's own name; the host passes it
                keys.push_back(k);
        for (const auto &o : v.options) {
            if (std::find(keys.begin(), keys.end(), o.key) != keys.end())
                continue;
            if (o.key == "name") {
                diags.push_back({file, o.line,
                                 "[virtual " + v.name + "] name: not a key here; the section's name is the peer's name"});
                continue;
            }
            std::string hint = closest(o.key, keys);
            diags.push_back({file, o.line,
                             "[virtual " + v.name + "] " + o.key + ": not an option of kind '" + v.kind.value + "'" +
                                 (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; options: " +
                                 join(keys)});
        }
    }
}

}  // namespace

Plan check_config(const Config &config, const PluginRegistry &registry, std::vector<Diagnostic> &diags,
                  const VirtualKinds *kinds)
{
    Plan plan;
    const std::string file = config.file.string();
    if (kinds)
        check_virtuals(config, *kinds, diags);
    if (config.host.output != "-" && config.host.output_line > 0) {
        // Records are appended to a file: its directory must be there.
        std::filesystem::path parent = std::filesystem::path(config.host.output).parent_path();
        std::error_code ec;
        if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
            diags.push_back({file, config.host.output_line,
                             "[host] output: directory '" + parent.string() + "' does not exist"});
        else if (std::filesystem::is_directory(config.host.output, ec))
            diags.push_back({file, config.host.output_line,
                             "[host] output: '" + config.host.output + "' is a directory, not a file"});
    }
    std::vector<std::string> classes;
    for (const auto &p : registry.plugins())
        classes.push_back(p->device_class());
    std::set<std::string> virtual_names;
    for (const auto &v : config.virtuals)
        virtual_names.insert(v.name);
    struct PathUse {
        std::string device;
        int line = 0;
        bool exclusive = true;
    };
    std::map<std::string, PathUse> paths;  // canonical path -> its first device

    for (const auto &d : config.devices) {
        DevicePlan dp;
        dp.config = &d;
        if (d.class_name.value.empty() || d.path.value.empty())
            continue;  // already reported by the config parser
        dp.plugin = registry.find(d.class_name.value);
        if (!dp.plugin) {
            std::string hint = closest(d.class_name.value, classes);
            diags.push_back({file, d.class_name.line,
                             "[device " + d.name + "] class: no usable plugin for class '" + d.class_name.value + "'" +
                                 (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                                 "; loaded classes: " + join(classes)});
            plan.missing_plugin = true;
            continue;
        }
        const Plugin &p = *dp.plugin;

        std::string error;
        if (d.path.value.rfind("virtual:", 0) == 0) {
            std::string vname = d.path.value.substr(8);
            if (!virtual_names.count(vname))
                diags.push_back({file, d.path.line,
                                 "[device " + d.name + "] path: no [virtual " + vname + "] section declares '" +
                                     d.path.value + "'"});
            dp.path = d.path.value;
        } else if (auto resolved = resolve_device_name(d.path.value, config.names, error)) {
            dp.path = *resolved;
        } else {
            diags.push_back({file, d.path.line, "[device " + d.name + "] path: " + error});
        }
        if (!dp.path.empty() && !(p.flags() & DEVHOST_PLUGIN_SHARED_PATHS)) {
            // One device, however it is named: a link, ./ and .. lead to the
            // same file. Two devices that both say exclusive = false may share.
            bool exclusive = true;
            for (const auto &o : d.options)
                if (o.key == "exclusive")
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
                                 "[device " + d.name + "] path: '" + dp.path + "' is " +
                                     (key == dp.path ? "" : "'" + key + "', ") + "already used by device '" +
                                     it->second.device + "' (line " + std::to_string(it->second.line) +
                                     "); class '" + p.device_class() + "' opens devices exclusively" +
                                     (p.find_option("exclusive") ? " unless both say exclusive = false" : "")});
        }

        std::vector<std::string> option_names;
        for (const auto &o : p.options())
            option_names.push_back(o.name);
        for (const auto &o : d.options) {
            const OptionSpec *spec = p.find_option(o.key);
            if (!spec) {
                std::string hint = closest(o.key, option_names);
                diags.push_back({file, o.line,
                                 "[device " + d.name + "] " + o.key + ": not an option of class '" +
                                     p.device_class() + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                                     "; options: " + join(option_names) +
                                     ", and for every device: class, path, inherit, timeout, step, fault"});
                continue;
            }
            std::string e;
            if (!parse_option_value(*spec, o.value, e))
                diags.push_back({file, o.line, "[device " + d.name + "] " + o.key + ": " + e});
            dp.options[o.key] = o.value;
        }
        check_steps(d, p, file, dp, diags);
        plan.devices.push_back(std::move(dp));
    }
    return plan;
}

}  // namespace devhost
