#include "config.hpp"

#include "control_socket.hpp"
#include "device_templates.hpp"
#include "serve_config.hpp"

#include "logging.hpp"
#include "common/text.hpp"
#include "common/text_file.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

namespace devhost {

namespace {

std::string printable(std::string_view s)
{
    return text::to_printable(reinterpret_cast<const uint8_t *>(s.data()), s.size());
}

// A line that may be any bytes, as a syntax error quotes it: printable
// (text::to_printable), and cut short as text::excerpt cuts, so that no
// error repeats a megabyte line.
std::string shown_line(std::string_view s)
{
    const size_t max = 64;
    return printable(s.substr(0, max)) + (s.size() > max ? "...(" + std::to_string(s.size()) + " bytes)" : "");
}

// One `key = value` line, with its section and its line number.
using Entry = ConfigEntry;

// Names (sections, keys) are printable: a NUL or other control byte there is
// a damaged file, not a name.
bool has_control_char(std::string_view s)
{
    return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// White space around names and values (not \v or \f, which stay part of
// what they border: the INI syntax of Boost.Program_options' config files,
// which configs were first read with).
bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim_blanks(std::string_view s)
{
    while (!s.empty() && is_blank(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_blank(s.back()))
        s.remove_suffix(1);
    return s;
}

// Where a line's comment starts: at a '#' that begins the line or follows
// white space, outside a "quoted string" (backslash escapes inside). Any
// other '#' is data: `write "ATD*99#\r"` sends its '#', and `hex:41#42`
// reaches the step parser whole (an error there, not a silent hex:41).
size_t comment_start(std::string_view s)
{
    bool quoted = false;
    for (size_t i = 0; i < s.size(); i++) {
        const char c = s[i];
        if (quoted) {
            if (c == '\\')
                i++;
            else if (c == '"')
                quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (c == '#' && (i == 0 || is_blank(s[i - 1]))) {
            return i;
        }
    }
    return std::string_view::npos;
}

// What a section or key name may not hold; "" if it is sound.
std::string name_problem(std::string_view name)
{
    if (has_control_char(name))
        return "has a control character";
    if (name.find('#') != std::string_view::npos)
        return "has a '#' (a comment starts at the beginning of a line or after white space)";
    return "";
}

struct Scan {
    std::vector<Entry> entries;
    std::set<int> broken_sections;  // header lines of sections holding a syntax error (0: before any)
    bool device_header = false;     // a [device ...] header, even a malformed one
};

// The one parse of a config's text: comments, white space trimmed,
// "[section]" headers, "key = value" lines, each entry with its line, and
// every syntax error with its line. A syntax error never stops the scan:
// every line is read.
Scan scan(std::string_view content, const std::string &file, std::vector<Diagnostic> &diags)
{
    Scan out;
    std::string section;
    int line = 0, section_line = 0;
    bool damaged_section = false;
    auto syntax_error = [&](const std::string &what) {
        diags.push_back({file, line, what});
        out.broken_sections.insert(section_line);
    };
    for (size_t at = 0; at < content.size();) {  // each line, as std::getline splits them
        const size_t end = std::min(content.find('\n', at), content.size());
        const std::string_view raw = content.substr(at, end - at);
        at = end + 1;
        line++;
        std::string_view t = trim_blanks(raw.substr(0, comment_start(raw)));
        if (t.empty())
            continue;
        if (t.front() == '[') {
            out.device_header = out.device_header || t.rfind("[device", 0) == 0;
            section_line = line;
            // A damaged header is reported once; its keys, which belong to
            // no section we know, are skipped (not filed under the one before).
            damaged_section = true;
            if (t.back() != ']' || t.size() < 3) {
                syntax_error("malformed section header '" + shown_line(t) + "' (expected [name])");
                continue;
            }
            section = std::string(text::trim(t.substr(1, t.size() - 2)));
            if (auto problem = name_problem(section); !problem.empty()) {
                syntax_error("section header '" + shown_line(t) + "' " + problem);
                continue;
            }
            damaged_section = false;
            continue;
        }
        auto eq = t.find('=');
        if (eq == std::string_view::npos) {
            syntax_error("expected 'key = value' or '[section]', got '" + shown_line(t) + "'");
            continue;
        }
        Entry e;
        e.section = section;
        e.key = std::string(trim_blanks(t.substr(0, eq)));
        e.value = std::string(trim_blanks(t.substr(eq + 1)));
        e.line = line;
        e.section_line = section_line;
        if (e.key.empty()) {
            syntax_error("missing key before '='");
            continue;
        }
        if (auto problem = name_problem(e.key); !problem.empty()) {
            syntax_error("key '" + shown_line(e.key) + "' " + problem);
            continue;
        }
        if (!damaged_section)
            out.entries.push_back(std::move(e));
    }
    return out;
}

std::string quoted(const std::string &s) { return "'" + text::excerpt(s) + "'"; }

// The most worker deaths [host] restart-budget may allow in its window.
constexpr int64_t max_restart_budget = 1000;

const std::vector<std::string> &host_keys()
{
    static const std::vector<std::string> keys = {
        "plugin-path", "log-level", "log-file", "output", "timeout", "port-dir", "physical-drives", "record-data",
        // the plugin workers (worker_setting)
        "isolation", "kill-grace", "describe-timeout", "allow-faults", "restart-budget", "restart-window",
        "state-dir", "cache-dir",
        // devhost serve's control socket (control_setting)
        "control-socket", "control-group"};
    return keys;
}

std::string did_you_mean(const std::string &word, const std::vector<std::string> &candidates)
{
    const std::string hint = text::closest(word, candidates);
    return hint.empty() ? "" : "(did you mean '" + hint + "'?)";
}

// The [device NAME] or [virtual NAME] section `e` belongs to: the one filed
// under NAME so far, or a new one at the end of `sections`, in the order of
// their first entries.
template <class Section>
Section &section_of(const Entry &e, const std::string &name, std::vector<Section> &sections,
                    std::map<std::string, size_t> &index)
{
    auto [it, fresh] = index.emplace(name, sections.size());
    if (fresh) {
        Section s;
        s.name = name;
        s.line = e.section_line;
        sections.push_back(std::move(s));
    }
    return sections[it->second];
}

// Files the entries of the scan into a Config, reporting each mistake.
class Filer {
public:
    Filer(Config &config, const std::string &file, std::vector<Diagnostic> &diags)
        : config_(config), file_(file), diags_(diags)
    {
    }

    void entry(const Entry &e)
    {
        const std::string &sec = e.section;
        if (sec.empty()) {
            diags_.push_back({file_, e.line, "key '" + text::excerpt(e.key) + "' is outside any section"});
            return;
        }
        if (sec == "host")
            return host(e);
        if (sec == "names")
            return names(e);
        if (sec == "mqtt")
            return mqtt(e);
        if (sec == "metrics")
            return metrics(e);
        auto space = sec.find(' ');
        std::string kind = sec.substr(0, space);
        std::string name = space == std::string::npos ? "" : std::string(text::trim(sec.substr(space + 1)));
        if (kind == "device" || kind == "virtual") {
            if (name.empty() || name.find_first_of(" \t\"") != std::string::npos) {
                if (bad_sections_.insert(e.section_line).second)  // once per section, not per key
                    diags_.push_back({file_, e.section_line,
                                      "[" + text::excerpt(sec) + "]: expected [" + kind +
                                          " NAME], NAME without spaces"});
                return;
            }
            return kind == "device" ? device(e, name) : virtual_device(e, name);
        }
        if (seen_.emplace("[section]\n" + sec, e.line).second)
            diags_.push_back({file_, e.section_line,
                              "unknown section [" + text::excerpt(sec) +
                                  "] (expected [host], [names], [device NAME], [virtual NAME], [mqtt], [metrics])"});
    }

private:
    // Single-valued keys: a second one is a mistake.
    bool once(const Entry &e)
    {
        auto [it, fresh] = seen_.emplace(e.section + "\n" + e.key, e.line);
        if (!fresh)
            bad(e, "given twice (first on line " + std::to_string(it->second) + ")");
        return fresh;
    }
    void bad(const Entry &e, const std::string &what)
    {
        diags_.push_back({file_, e.line, "[" + text::excerpt(e.section) + "] " + text::excerpt(e.key) + ": " + what});
    }

    void host(const Entry &e)
    {
        if (!once(e))
            return;
        HostSettings &h = config_.host;
        if (e.key == "plugin-path") {
            h.plugin_path = e.value;
        } else if (e.key == "log-level") {
            if (!logging::parse_level(e.value))
                bad(e, "expected one of " + std::string(logging::level_names) + ", got " + quoted(e.value));
            h.log_level = e.value;
        } else if (e.key == "log-file") {
            h.log_file = e.value;
        } else if (e.key == "output") {
            if (e.value.empty())
                bad(e, "expected - (stdout) or a file path");
            h.output = e.value;
            h.output_line = e.line;
        } else if (e.key == "timeout") {
            auto ms = text::parse_duration_ms(e.value);
            if (!ms)
                bad(e, "expected a duration like 250ms or 2s, got " + quoted(e.value));
            else
                h.timeout_ms = *ms;
        } else if (e.key == "port-dir") {
            h.port_dir = e.value;
        } else if (e.key == "physical-drives") {
            if (e.value == "all")
                h.physical_drives_all = true;
            else if (e.value != "disks")
                bad(e, "expected 'disks' (physical disks only) or 'all', got " + quoted(e.value));
        } else if (e.key == "record-data") {
            if (auto data = parse_record_data(e.value))
                h.record_data = *data;
            else
                bad(e, "expected full, none or head:N (N from 1 to " + std::to_string(max_record_data_head) +
                           "), got " + quoted(e.value));
        } else if (!worker_setting(e, h) && !control_setting(e, h)) {
            unknown_host_key(e);
        }
    }

    // A misspelt key gets the key it resembles; any other the list of
    // [host] keys, or where to read it when the list would not fit the line
    // (an error line stays within 300 characters, and the file's name may be
    // long). Not both: the list is long.
    void unknown_host_key(const Entry &e)
    {
        const std::string hint = did_you_mean(e.key, host_keys());
        if (!hint.empty())
            return bad(e, "unknown key " + hint);
        std::string list;
        for (const auto &k : host_keys())
            list += (list.empty() ? "" : ", ") + k;
        const std::string listed = "unknown key (expected " + list + ")";
        const Diagnostic whole{file_, e.line, "[host] " + text::excerpt(e.key) + ": " + listed};
        bad(e, whole.str().size() < Diagnostic::max_chars ? listed
                                                           : "unknown key (devhost.ini(5) lists the [host] keys)");
    }

    // The [host] keys of the plugin workers and their supervisor (isolation,
    // deadlines past which a worker is killed, its restarts, where its state
    // and cache live, the fault test mode); false for any other key.
    bool worker_setting(const Entry &e, HostSettings &h)
    {
        if (e.key == "isolation") {
            if (auto isolation = parse_isolation(e.value))
                h.isolation = *isolation;
            else
                bad(e, "expected none, class or device, got " + quoted(e.value));
            h.isolation_line = e.line;
        } else if (e.key == "kill-grace") {
            bounded_duration(e, 60 * 60 * 1000, "60m", h.kill_grace_ms);
        } else if (e.key == "describe-timeout") {
            bounded_duration(e, 10 * 60 * 1000, "10m", h.describe_timeout_ms);
        } else if (e.key == "restart-window") {
            bounded_duration(e, 24 * 60 * 60 * 1000, "1440m", h.restart_window_ms);
        } else if (e.key == "allow-faults") {
            auto b = text::parse_bool(e.value);
            if (!b)
                bad(e, "expected true or false, got " + quoted(e.value));
            h.allow_faults = b.value_or(false);
        } else if (e.key == "restart-budget") {
            auto n = text::parse_int(e.value);
            if (!n || *n < 1 || *n > max_restart_budget)
                bad(e, "expected a number of worker deaths from 1 to " + std::to_string(max_restart_budget) +
                           ", got " + quoted(e.value));
            else
                h.restart_budget = static_cast<int>(*n);
        } else if (e.key == "state-dir") {
            directory(e, h.state_dir, h.state_dir_line);
        } else if (e.key == "cache-dir") {
            h.cache_disabled = e.value == "none";
            if (h.cache_disabled)
                h.cache_dir_line = e.line;
            else
                directory(e, h.cache_dir, h.cache_dir_line, " or none");
        } else {
            return false;
        }
        return true;
    }

    // The [host] keys of devhost serve's control socket; false for any
    // other key. The group must exist here: a socket nobody can be given
    // to is a mistake to find before serve starts.
    bool control_setting(const Entry &e, HostSettings &h)
    {
        if (e.key == "control-socket") {
            std::optional<std::string> path;
            directory(e, path, h.control_socket_line, "", "socket");
            if (path && path->size() >= 108)
                bad(e, "expected a socket path of at most 107 bytes, got " + std::to_string(path->size()));
            else if (path)
                h.control_socket = *path;
        } else if (e.key == "control-group") {
            h.control_group_line = e.line;
            if (auto gid = control::group_id(e.value)) {
                h.control_group = e.value;
                h.control_gid = *gid;
            } else {
                bad(e, "no group " + quoted(e.value) + " on this system");
            }
        } else {
            return false;
        }
        return true;
    }

    // A duration above 0 and at most `max_ms` (`max` as written), into `out`.
    void bounded_duration(const Entry &e, int64_t max_ms, const char *max, int64_t &out)
    {
        auto ms = text::parse_duration_ms(e.value);
        if (ms && *ms > 0 && *ms <= max_ms)
            out = *ms;
        else
            bad(e, "expected a duration above 0 and at most " + std::string(max) + ", like 500ms or 2s, got " +
                       quoted(e.value));
    }

    // A directory devhost keeps its own files in: an absolute path, so that
    // what root writes never depends on the directory it was started in.
    void directory(const Entry &e, std::optional<std::string> &out, int &line, const char *alternative = "",
                   const char *what = "directory")
    {
        if (e.value.empty() || e.value.front() != '/')
            bad(e, "expected an absolute " + std::string(what) + " path" + alternative + ", got " + quoted(e.value));
        else
            out = e.value;
        line = e.line;
    }

    void mqtt(const Entry &e)
    {
        std::string error;
        if (once(e) && !mqtt_setting(config_.mqtt, e.key, e.value, e.line, error))
            bad(e, error);
    }

    void metrics(const Entry &e)
    {
        std::string error;
        if (once(e) && !metrics_setting(config_.metrics, e.key, e.value, e.line, error))
            bad(e, error);
    }

    void names(const Entry &e)
    {
        if (!once(e))
            return;
        if (e.value.empty())
            bad(e, "expected a Linux path");
        config_.names.overrides.emplace_back(e.key, e.value);
        config_.names.override_lines.push_back(e.line);
    }

    void device(const Entry &e, const std::string &name)
    {
        DeviceConfig &d = section_of(e, name, config_.devices, device_index_);
        std::string error;
        const std::optional<Phase> phase = phase_of_key(e.key);
        if (e.key == "step" || phase) {
            d.step_lines++;
            PhaseSteps &phases = phases_[d.name];
            int &first = phase ? phases.first_phase_line : phases.first_step_line;
            first = first ? first : e.line;
            d.phased = d.phased || phase;
            auto step = parse_step(e.value, error);
            if (!step)
                return bad(e, error);
            step->line = e.line;
            // A file a step reads belongs with the config, like a peer's
            // script: a relative from= is the config's.
            if (step->from_file && std::filesystem::path(*step->from_file).is_relative())
                step->from_file = (std::filesystem::path(file_).parent_path() / *step->from_file).string();
            (phase ? phases.of[static_cast<int>(*phase)] : d.steps).push_back(std::move(*step));
            return;
        }
        if (e.key == "run") {
            if (!parse_run(e.value, d.run, error))
                bad(e, error);
            d.run.line = d.run.line ? d.run.line : e.line;
            return;
        }
        if (e.key == "fault") {
            auto fault = parse_fault(e.value, error);
            if (!fault)
                return bad(e, error);
            fault->line = e.line;  // check refuses it unless faults are allowed
            d.faults.push_back(std::move(*fault));
            return;
        }
        if (!once(e))
            return;
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
        } else if (e.key == "stale-after") {
            auto ms = text::parse_duration_ms(e.value);
            if (!ms || *ms < 1)
                bad(e, "expected a duration of 1ms or more like 30s, got " + quoted(e.value));
            else
                d.stale_after_ms = ms;
        } else {
            d.options.push_back({e.key, e.value, e.line});
        }
    }

    void virtual_device(const Entry &e, const std::string &name)
    {
        VirtualConfig &v = section_of(e, name, config_.virtuals, virtual_index_);
        if (!once(e))
            return;
        if (e.key == "kind") {
            v.kind = {e.key, e.value, e.line};
        } else if ((e.key == "script" || e.key == "answers") && !e.value.empty() &&
                   std::filesystem::path(e.value).is_relative()) {
            // Files a peer reads belong with the config, like an include:
            // a relative one is the config's, not the working directory's.
            const auto dir = std::filesystem::path(file_).parent_path();
            v.options.push_back({e.key, (dir / e.value).string(), e.line});
        } else {
            v.options.push_back({e.key, e.value, e.line});
        }
    }

public:
    // After the last entry: each device's phases in running order.
    void finish()
    {
        for (auto &d : config_.devices) {
            assemble_phases(d, phases_[d.name], file_, diags_);
            check_body_repeats(d, file_, diags_);
        }
        mqtt_finish(config_.mqtt, file_, diags_);
        metrics_finish(config_.metrics, file_, diags_);
    }

private:
    Config &config_;
    const std::string &file_;
    std::vector<Diagnostic> &diags_;
    std::map<std::string, PhaseSteps> phases_;  // per device: setup/body/teardown lines
    std::map<std::string, int> seen_;  // "section\nkey" -> first line, for single-valued keys
    std::map<std::string, size_t> device_index_, virtual_index_;
    std::set<int> bad_sections_;  // header lines of [device ...] sections already reported
};

// The keys every device and peer needs. A section holding a syntax error is
// not asked: the broken line may be the key.
void check_required_keys(Config &config, const Scan &scanned, std::vector<Diagnostic> &diags)
{
    const std::string file = config.file.string();
    for (auto &d : config.devices) {
        if (scanned.broken_sections.count(d.line))
            continue;
        const std::string where = "[device " + text::excerpt(d.name) + "]: ";
        if (d.class_name.value.empty()) {
            // A misspelt class is filed as an option, which cannot be checked
            // without a class: name it here.
            std::string hint;
            for (const auto &o : d.options)
                if (hint.empty() && text::closest(o.key, {"class"}) == "class")
                    hint = " (line " + std::to_string(o.line) + " has '" + text::excerpt(o.key) +
                           "': did you mean 'class'?)";
            // With a path and no sign of a misspelt key, the class comes from
            // the plugins' path patterns and types (check.cpp, class_match.hpp).
            if (hint.empty() && !d.path.value.empty())
                d.class_from_path = true;
            else
                diags.push_back({file, d.line, where + "missing 'class = ...'" + hint});
        }
        if (d.path.value.empty())
            diags.push_back({file, d.line, where + "missing 'path = ...'"});
        if (d.step_lines == 0)
            diags.push_back({file, d.line, where + "no steps (add 'step = open' and so on)"});
    }
    for (const auto &v : config.virtuals)
        if (!scanned.broken_sections.count(v.line) && v.kind.value.empty())
            diags.push_back({file, v.line,
                             "[virtual " + text::excerpt(v.name) +
                                 "]: missing 'kind = ...' (see devhost-vdev --help)"});
    if (!scanned.device_header)
        diags.push_back({file, 0, "no [device] sections: nothing to check or run (add [device NAME] with class, "
                                  "path and steps)"});
}

// Each device a template made gets its instance number.
void number_instances(Config &config)
{
    if (config.templates.empty())
        return;
    std::map<std::string, DeviceConfig *> by_name;
    for (auto &d : config.devices)
        by_name.emplace(d.name, &d);
    for (const auto &t : config.templates)
        for (int i = 0; i < t.instances; i++)
            if (auto it = by_name.find(instance_name(t.name, i)); it != by_name.end())
                it->second->instance = i;
}

}  // namespace

std::optional<Isolation> parse_isolation(std::string_view word)
{
    for (Isolation i : {Isolation::None, Isolation::Class, Isolation::Device})
        if (word == isolation_name(i))
            return i;
    return std::nullopt;
}

const char *isolation_name(Isolation isolation)
{
    switch (isolation) {
    case Isolation::None: return "none";
    case Isolation::Class: return "class";
    case Isolation::Device: return "device";
    }
    return "unknown";
}

const std::vector<std::string> &common_device_keys()
{
    static const std::vector<std::string> keys = {"class", "path", "inherit",  "timeout", "step",        "fault",
                                                  "setup", "body", "teardown", "run",     "stale-after", "instances"};
    return keys;
}

std::string Diagnostic::str() const
{
    std::string s = line > 0 ? file + ":" + std::to_string(line) + ": " + message : file + ": " + message;
    if (s.size() > max_chars)  // each message cuts what it quotes short; this is the last guard
        s = s.substr(0, max_chars - 3) + "...";
    return s;
}

Config parse_config(const std::string &text, const std::string &file, std::vector<Diagnostic> &diags)
{
    // A UTF-8 byte order mark, as some Windows editors write, is not text.
    const std::string_view content =
        std::string_view(text).substr(text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0);
    Config config;
    config.file = file;
    const size_t diags_before = diags.size();
    Scan scanned = scan(content, file, diags);
    // Templates first: everything after sees their devices written out.
    config.templates = expand_device_templates(scanned.entries, content.size(), file, diags);
    Filer filer(config, file, diags);
    for (const Entry &e : scanned.entries)
        filer.entry(e);
    filer.finish();
    number_instances(config);
    check_required_keys(config, scanned, diags);
    std::stable_sort(diags.begin() + static_cast<std::ptrdiff_t>(diags_before), diags.end(),
                     [](const Diagnostic &a, const Diagnostic &b) { return a.line < b.line; });
    collapse_instance_diagnostics(config, diags);
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
