#include "config.hpp"

#include "logging.hpp"
#include "text.hpp"
#include "text_file.hpp"

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/parsers.hpp>
#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

namespace devhost {

namespace po = boost::program_options;

std::string Diagnostic::str() const
{
    return line > 0 ? file + ":" + std::to_string(line) + ": " + message : file + ": " + message;
}

namespace {

std::string printable(std::string_view s)
{
    return text::to_printable(reinterpret_cast<const uint8_t *>(s.data()), s.size());
}

// One `key = value` line as Program_options will see it, with its line
// number, which Program_options does not report.
struct Entry {
    std::string section;  // as written between [ ], "" before any section
    std::string key;
    std::string value;
    int line = 0;
    int section_line = 0;
};

// Names (sections, keys) are printable: a NUL or other control byte there is
// a damaged file, not a name.
bool has_control_char(std::string_view s)
{
    return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Mirrors Program_options' config syntax (comments start at '#', white space
// trimmed, "[section]" headers, "key = value") to find each entry's line and
// to report syntax errors with their line, which Program_options cannot.
std::vector<Entry> scan(const std::string &content, const std::string &file, std::vector<Diagnostic> &diags)
{
    std::vector<Entry> entries;
    std::istringstream in(content);
    std::string raw, section;
    int line = 0, section_line = 0;
    bool damaged_section = false;
    while (std::getline(in, raw)) {
        line++;
        std::string s = raw;
        if (auto hash = s.find('#'); hash != std::string::npos)
            s.erase(hash);
        std::string_view t = text::trim(s);
        if (t.empty())
            continue;
        if (t.front() == '[') {
            if (t.back() != ']' || t.size() < 3) {
                diags.push_back({file, line, "malformed section header '" + printable(t) + "' (expected [name])"});
                continue;
            }
            section = std::string(text::trim(t.substr(1, t.size() - 2)));
            section_line = line;
            // A damaged header is reported once; its keys would only repeat it.
            damaged_section = has_control_char(section);
            if (damaged_section)
                diags.push_back({file, line, "section header '" + printable(t) + "' has a control character"});
            continue;
        }
        auto eq = t.find('=');
        if (eq == std::string_view::npos) {
            diags.push_back({file, line, "expected 'key = value' or '[section]', got '" + printable(t) + "'"});
            continue;
        }
        Entry e;
        e.section = section;
        e.key = std::string(text::trim(t.substr(0, eq)));
        e.value = std::string(text::trim(t.substr(eq + 1)));
        e.line = line;
        e.section_line = section_line;
        if (e.key.empty()) {
            diags.push_back({file, line, "missing key before '='"});
            continue;
        }
        if (has_control_char(e.key)) {
            diags.push_back({file, line, "key '" + printable(e.key) + "' has a control character"});
            continue;
        }
        if (!damaged_section)
            entries.push_back(std::move(e));
    }
    return entries;
}

// Cross-checks the scan against Program_options' own parse: the values come
// from Program_options, the lines from the scan.
void parse_with_program_options(const std::string &content, std::vector<Entry> &entries, const std::string &file,
                                std::vector<Diagnostic> &diags)
{
    std::istringstream in(content);
    po::options_description none;
    po::parsed_options parsed(&none);
    try {
        parsed = po::parse_config_file(in, none, true);
    } catch (const po::error &e) {
        diags.push_back({file, 0, std::string("cannot parse: ") + e.what()});
        return;
    }
    if (parsed.options.size() != entries.size()) {
        diags.push_back({file, 0, "internal: Program_options read " + std::to_string(parsed.options.size()) +
                                      " entries where the line scan found " + std::to_string(entries.size())});
        return;
    }
    for (size_t i = 0; i < entries.size(); i++) {
        const auto &opt = parsed.options[i];
        entries[i].value = opt.value.empty() ? std::string() : opt.value.front();
    }
}

std::string quoted(const std::string &s) { return "'" + s + "'"; }

}  // namespace

Config parse_config(const std::string &text, const std::string &file, std::vector<Diagnostic> &diags)
{
    // A UTF-8 byte order mark, as some Windows editors write, is not text.
    const std::string content = text.rfind("\xEF\xBB\xBF", 0) == 0 ? text.substr(3) : text;
    Config config;
    config.file = file;
    const size_t syntax_errors_before = diags.size();
    std::vector<Entry> entries = scan(content, file, diags);
    const bool syntax_ok = diags.size() == syntax_errors_before;
    if (syntax_ok)
        parse_with_program_options(content, entries, file, diags);

    std::map<std::string, int> seen;  // "section\nkey" -> first line, for single-valued keys
    auto once = [&](const Entry &e) {
        auto [it, fresh] = seen.emplace(e.section + "\n" + e.key, e.line);
        if (!fresh)
            diags.push_back({file, e.line, "[" + e.section + "] " + e.key + ": given twice (first on line " +
                                               std::to_string(it->second) + ")"});
        return fresh;
    };
    auto bad = [&](const Entry &e, const std::string &what) {
        diags.push_back({file, e.line, "[" + e.section + "] " + e.key + ": " + what});
    };

    std::map<std::string, size_t> device_index, virtual_index;
    std::set<int> bad_sections;  // header lines of [device ...] sections already reported
    for (const Entry &e : entries) {
        const std::string &sec = e.section;
        if (sec.empty()) {
            diags.push_back({file, e.line, "key '" + e.key + "' is outside any section"});
            continue;
        }
        if (sec == "host") {
            if (!once(e))
                continue;
            if (e.key == "plugin-path") {
                config.host.plugin_path = e.value;
            } else if (e.key == "log-level") {
                if (!logging::parse_level(e.value))
                    bad(e, "expected one of " + std::string(logging::level_names) + ", got " + quoted(e.value));
                config.host.log_level = e.value;
            } else if (e.key == "log-file") {
                config.host.log_file = e.value;
            } else if (e.key == "output") {
                if (e.value.empty())
                    bad(e, "expected - (stdout) or a file path");
                config.host.output = e.value;
                config.host.output_line = e.line;
            } else if (e.key == "timeout") {
                auto ms = text::parse_duration_ms(e.value);
                if (!ms)
                    bad(e, "expected a duration like 250ms or 2s, got " + quoted(e.value));
                else
                    config.host.timeout_ms = *ms;
            } else if (e.key == "port-dir") {
                config.host.port_dir = e.value;
            } else if (e.key == "physical-drives") {
                if (e.value == "all")
                    config.host.physical_drives_all = true;
                else if (e.value != "disks")
                    bad(e, "expected 'disks' (physical disks only) or 'all', got " + quoted(e.value));
            } else {
                bad(e, "unknown key (expected plugin-path, log-level, log-file, output, timeout, port-dir, "
                       "physical-drives)");
            }
            continue;
        }
        if (sec == "names") {
            if (!once(e))
                continue;
            if (e.value.empty())
                bad(e, "expected a Linux path");
            config.names.overrides.emplace_back(e.key, e.value);
            continue;
        }
        auto space = sec.find(' ');
        std::string kind = sec.substr(0, space);
        std::string name = space == std::string::npos ? "" : std::string(text::trim(sec.substr(space + 1)));
        if (kind == "device" || kind == "virtual") {
            if (name.empty() || name.find_first_of(" \t\"") != std::string::npos) {
                if (bad_sections.insert(e.section_line).second)  // once per section, not per key
                    diags.push_back(
                        {file, e.section_line, "[" + sec + "]: expected [" + kind + " NAME], NAME without spaces"});
                continue;
            }
        }
        if (kind == "device") {
            auto [it, fresh] = device_index.emplace(name, config.devices.size());
            if (fresh) {
                DeviceConfig d;
                d.name = name;
                d.line = e.section_line;
                config.devices.push_back(std::move(d));
            }
            DeviceConfig &d = config.devices[it->second];
            if (e.key == "step") {
                d.step_lines++;
                std::string error;
                auto step = parse_step(e.value, error);
                if (!step) {
                    bad(e, error);
                    continue;
                }
                step->line = e.line;
                d.steps.push_back(std::move(*step));
                continue;
            }
            if (e.key == "fault") {
                std::string error;
                auto fault = parse_fault(e.value, error);
                if (!fault)
                    bad(e, error);
                else
                    d.faults.push_back(std::move(*fault));
                continue;
            }
            if (!once(e))
                continue;
            if (e.key == "class") {
                d.class_name = {e.key, e.value, e.line};
            } else if (e.key == "path") {
                d.path = {e.key, e.value, e.line};
            } else if (e.key == "inherit") {
                auto b = text::parse_bool(e.value);
                if (!b)
                    bad(e, "expected true or false, got " + quoted(e.value));
                d.inherit = b.value_or(false);
            } else if (e.key == "timeout") {
                auto ms = text::parse_duration_ms(e.value);
                if (!ms)
                    bad(e, "expected a duration like 250ms or 2s, got " + quoted(e.value));
                d.timeout_ms = ms;
            } else {
                d.options.push_back({e.key, e.value, e.line});
            }
            continue;
        }
        if (kind == "virtual") {
            auto [it, fresh] = virtual_index.emplace(name, config.virtuals.size());
            if (fresh) {
                VirtualConfig v;
                v.name = name;
                v.line = e.section_line;
                config.virtuals.push_back(std::move(v));
            }
            VirtualConfig &v = config.virtuals[it->second];
            if (!once(e))
                continue;
            if (e.key == "kind") {
                v.kind = {e.key, e.value, e.line};
            } else if ((e.key == "script" || e.key == "answers") && !e.value.empty() &&
                       std::filesystem::path(e.value).is_relative()) {
                // Files a peer reads belong with the config, like an include:
                // a relative one is the config's, not the working directory's.
                const auto dir = std::filesystem::path(file).parent_path();
                v.options.push_back({e.key, (dir / e.value).string(), e.line});
            } else {
                v.options.push_back({e.key, e.value, e.line});
            }
            continue;
        }
        if (seen.emplace("[section]\n" + sec, e.line).second)
            diags.push_back({file, e.section_line,
                             "unknown section [" + sec + "] (expected [host], [names], [device NAME], [virtual NAME])"});
    }

    // Required keys are checked only in a file that parsed: after a syntax
    // error they would mostly repeat it.
    for (const auto &d : config.devices) {
        if (!syntax_ok)
            break;
        if (d.class_name.value.empty())
            diags.push_back({file, d.line, "[device " + d.name + "]: missing 'class = ...'"});
        if (d.path.value.empty())
            diags.push_back({file, d.line, "[device " + d.name + "]: missing 'path = ...'"});
        if (d.step_lines == 0)
            diags.push_back({file, d.line, "[device " + d.name + "]: no steps (add 'step = open' and so on)"});
    }
    for (const auto &v : config.virtuals)
        if (syntax_ok && v.kind.value.empty())
            diags.push_back({file, v.line, "[virtual " + v.name + "]: missing 'kind = ...' (see devhost-vdev --help)"});
    std::stable_sort(diags.begin() + static_cast<std::ptrdiff_t>(syntax_errors_before), diags.end(),
                     [](const Diagnostic &a, const Diagnostic &b) { return a.line < b.line; });
    config.names.port_dir = config.host.port_dir;
    config.names.physical_drives_all = config.host.physical_drives_all;
    return config;
}

Config load_config(const std::filesystem::path &file, std::vector<Diagnostic> &diagnostics)
{
    // A config is a regular file of sane size: never read a device, a FIFO
    // or a directory (/dev/zero would be read until memory runs out).
    using Kind = text::FileRefusal::Kind;
    text::FileRefusal why;
    auto text = text::read_small_file(file, max_config_bytes, why);
    if (text)
        return parse_config(*text, file.string(), diagnostics);
    std::string message;
    switch (why.kind) {
    case Kind::Directory: message = "is a directory, not a config file"; break;
    case Kind::NotRegular: message = "not a regular file (a config is read from a file)"; break;
    case Kind::TooLarge:
        if (why.size)
            message = "config file is " + std::to_string(why.size) + " bytes; the limit is " +
                      std::to_string(max_config_bytes);
        else  // grew while it was read
            message = "config file is over the limit of " + std::to_string(max_config_bytes) + " bytes";
        break;
    case Kind::Read: message = "cannot read config file: " + std::string(std::strerror(why.os_errno)); break;
    default: message = "cannot open config file: " + std::string(std::strerror(why.os_errno)); break;
    }
    diagnostics.push_back({file.string(), 0, message});
    Config c;
    c.file = file;
    return c;
}

}  // namespace devhost
