#include "device_templates.hpp"

#include "common/text.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>

namespace devhost {

namespace {

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }

// The length of the placeholder starting at s[i]: '{', a letter, letters,
// digits, '_' or ':', then '}'; 0 if none starts there. Anything else in
// braces (`{"a":1}`, `{ n }`) is data, in a template too.
size_t placeholder_at(std::string_view s, size_t i)
{
    if (s[i] != '{' || i + 1 >= s.size() || !std::isalpha(static_cast<unsigned char>(s[i + 1])))
        return 0;
    size_t j = i + 1;
    while (j < s.size() && is_word_char(s[j]))
        j++;
    return j < s.size() && s[j] == '}' ? j - i + 1 : 0;
}

// The width a placeholder pads the number to (0: none) when it is {n} or
// {n:0W}; nullopt for any other.
std::optional<int> number_width(std::string_view placeholder)
{
    if (placeholder == "{n}")
        return 0;
    if (placeholder.size() == 6 && placeholder.rfind("{n:0", 0) == 0 && placeholder[4] >= '1' &&
        placeholder[4] <= '9')
        return placeholder[4] - '0';
    return std::nullopt;
}

struct Placeholders {
    bool number = false;  // {n} or {n:0W} somewhere
    std::string unknown;  // the first other placeholder, "" if none
};

Placeholders placeholders(std::string_view s)
{
    Placeholders found;
    for (size_t i = 0; i < s.size(); i++) {
        const size_t len = placeholder_at(s, i);
        if (!len)
            continue;
        const std::string_view ph = s.substr(i, len);
        if (number_width(ph))
            found.number = true;
        else if (found.unknown.empty())
            found.unknown = std::string(ph);
        i += len - 1;
    }
    return found;
}

// `s` with each {n} / {n:0W} made instance `n`'s number.
std::string substitute(std::string_view s, int n)
{
    if (s.find('{') == std::string_view::npos)
        return std::string(s);
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
        const size_t len = placeholder_at(s, i);
        const std::optional<int> width = len ? number_width(s.substr(i, len)) : std::nullopt;
        if (!width) {
            out += s[i];
            continue;
        }
        const std::string digits = std::to_string(n);
        out.append(static_cast<size_t>(std::max(0, *width - static_cast<int>(digits.size()))), '0');
        out += digits;
        i += len - 1;
    }
    return out;
}

// The NAME of a [device NAME] section as the filer takes it, or nullopt for
// any other section (and for a malformed NAME, which the filer reports).
std::optional<std::string> device_name(const std::string &section)
{
    const auto space = section.find(' ');
    if (space == std::string::npos || section.compare(0, space, "device") != 0)
        return std::nullopt;
    std::string name(text::trim(std::string_view(section).substr(space + 1)));
    if (name.empty() || name.find_first_of(" \t\"") != std::string::npos)
        return std::nullopt;
    return name;
}

// One [device NAME] section's entries (a section may be opened again later
// in the file: all of them).
struct Section {
    std::string name;
    int line = 0;                    // its first header
    std::vector<size_t> entries;     // but `instances =`, in order
    std::vector<size_t> instances;   // the `instances =` entries
    int count = 0;                   // devices it makes: 0 written out, -1 none (dropped)
    std::set<int> lines;             // headers and entries
};

class Expander {
public:
    Expander(std::vector<ConfigEntry> &entries, const std::string &file, std::vector<Diagnostic> &diags)
        : entries_(entries), file_(file), diags_(diags)
    {
    }

    std::vector<DeviceTemplate> run(size_t content_bytes)
    {
        group();
        if (std::none_of(sections_.begin(), sections_.end(), [&](const Section &s) {
                return !s.instances.empty() || placeholders(s.name).number || has_number_value(s);
            }))
            return {};  // nothing to do: no copy of the entries
        uint64_t bytes = content_bytes;
        for (Section &s : sections_)
            decide(s, bytes);
        check_names();
        emit();
        std::vector<DeviceTemplate> templates;
        for (const Section &s : sections_)
            if (s.count > 0)
                templates.push_back({s.name, s.line, s.count, std::vector<int>(s.lines.begin(), s.lines.end())});
        return templates;
    }

private:
    void fail(int line, const std::string &what) { diags_.push_back({file_, line, what}); }
    std::string where(const Section &s) const { return "[device " + text::excerpt(s.name) + "]"; }
    bool has_number_value(const Section &s) const
    {
        return std::any_of(s.entries.begin(), s.entries.end(),
                           [&](size_t k) { return placeholders(entries_[k].value).number; });
    }

    void group()
    {
        std::map<std::string, size_t> index;
        of_.assign(entries_.size(), -1);
        for (size_t k = 0; k < entries_.size(); k++) {
            const ConfigEntry &e = entries_[k];
            auto name = device_name(e.section);
            if (!name)
                continue;
            auto [it, fresh] = index.emplace(*name, sections_.size());
            if (fresh)
                sections_.push_back({*name, e.section_line, {}, {}, 0, {}});
            Section &s = sections_[it->second];
            (e.key == "instances" ? s.instances : s.entries).push_back(k);
            s.lines.insert(e.section_line);
            s.lines.insert(e.line);
            of_[k] = static_cast<int>(it->second);
        }
    }

    // How many devices `s` makes, each mistake reported; `bytes`: the config
    // written out so far.
    void decide(Section &s, uint64_t &bytes)
    {
        const Placeholders in_name = placeholders(s.name);
        if (s.instances.empty()) {
            if (in_name.number)
                return fail(s.line, where(s) + ": {n} in the name needs 'instances = N' in the section");
            for (size_t k : s.entries)
                if (placeholders(entries_[k].value).number)
                    return fail(entries_[k].line, where(s) + " " + text::excerpt(entries_[k].key) +
                                                      ": {n} needs 'instances = N' in the section");
            return;
        }
        const ConfigEntry &first = entries_[s.instances[0]];
        for (size_t i = 1; i < s.instances.size(); i++)
            fail(entries_[s.instances[i]].line,
                 where(s) + " instances: given twice (first on line " + std::to_string(first.line) + ")");
        if (!in_name.number)
            return fail(first.line, where(s) + " instances: the name needs {n} where each device's number goes "
                                               "(e.g. [device " + text::excerpt(s.name) + "{n}])");
        const auto n = text::parse_int(first.value);
        s.count = 1;  // whatever is wrong, one instance still has its other mistakes found
        if (!n || *n < 1 || *n > max_instances)
            fail(first.line, where(s) + " instances: expected a number of devices from 1 to " +
                                 std::to_string(max_instances) + ", got '" + text::excerpt(first.value) + "'");
        else
            s.count = static_cast<int>(*n);
        if (!in_name.unknown.empty())
            fail(s.line, where(s) + ": unknown placeholder '" + text::excerpt(in_name.unknown) +
                             "' in the name (expected {n} or {n:0W}, W from 1 to 9)");
        uint64_t section_bytes = s.name.size() + 10;  // "[device NAME]\n", a number's digits
        for (size_t k : s.entries) {
            const ConfigEntry &e = entries_[k];
            section_bytes += e.key.size() + e.value.size() + 4;
            const std::string unknown = placeholders(e.value).unknown;
            if (!unknown.empty())
                fail(e.line, where(s) + " " + text::excerpt(e.key) + ": unknown placeholder '" +
                                 text::excerpt(unknown) + "' (expected {n} or {n:0W}, W from 1 to 9)");
        }
        const uint64_t more = section_bytes * static_cast<uint64_t>(s.count - 1);
        if (bytes + more > max_config_bytes) {
            fail(first.line, where(s) + " instances: " + std::to_string(s.count) + " devices come to about " +
                                 std::to_string(bytes + more) + " bytes written out, over the " +
                                 std::to_string(max_config_bytes) + " a config may have");
            s.count = 1;
        } else {
            bytes += more;
        }
    }

    // An expanded name that another section has (written, or made by an
    // earlier template): that template makes none (its devices would merge
    // with the other's, key by key).
    void check_names()
    {
        std::map<std::string, const Section *> taken;  // name -> the section that has it
        for (const Section &s : sections_)
            if (s.count == 0)
                taken.emplace(s.name, &s);
        for (Section &s : sections_) {
            if (s.count <= 0)
                continue;
            std::vector<std::string> names;
            for (int i = 0; i < s.count; i++)
                names.push_back(instance_name(s.name, i));
            auto clash = std::find_if(names.begin(), names.end(), [&](const std::string &n) { return taken.count(n); });
            if (clash != names.end()) {
                const Section &other = *taken.at(*clash);
                fail(s.line, where(s) + ": instance " + text::excerpt(*clash) + " has the name of " +
                                 (other.count == 0 ? "" : "an instance of ") + where(other) + " (line " +
                                 std::to_string(other.line) + ")");
                s.count = -1;
            }
            // Its names stay taken either way: a later clash with them is
            // reported too.
            for (auto &n : names)
                taken.emplace(std::move(n), &s);
        }
    }

    // The entries with each template's written out in the place of its
    // first, instance by instance.
    void emit()
    {
        std::vector<ConfigEntry> out;
        out.reserve(entries_.size());
        for (size_t k = 0; k < entries_.size(); k++) {
            if (of_[k] < 0) {
                out.push_back(std::move(entries_[k]));
                continue;
            }
            const Section &s = sections_[static_cast<size_t>(of_[k])];
            if (entries_[k].key == "instances" || s.count < 0)
                continue;
            if (s.count == 0) {
                out.push_back(std::move(entries_[k]));
            } else if (k == s.entries.front()) {
                for (int i = 0; i < s.count; i++)
                    for (size_t j : s.entries) {
                        ConfigEntry e = entries_[j];
                        e.section = "device " + instance_name(s.name, i);
                        e.value = substitute(e.value, i);
                        out.push_back(std::move(e));
                    }
            }
        }
        entries_ = std::move(out);
    }

    std::vector<ConfigEntry> &entries_;
    const std::string &file_;
    std::vector<Diagnostic> &diags_;
    std::vector<Section> sections_;
    std::vector<int> of_;  // per entry: its [device] section in sections_, -1 for none
};

// A message with each run of digits made one '#': what two instances' same
// mistake still have in common.
std::string without_numbers(const std::string &message)
{
    std::string out;
    for (char c : message)
        if (!std::isdigit(static_cast<unsigned char>(c)))
            out += c;
        else if (out.empty() || out.back() != '#')
            out += '#';
    return out;
}

}  // namespace

std::string instance_name(const std::string &name, int n) { return substitute(name, n); }

std::vector<DeviceTemplate> expand_device_templates(std::vector<ConfigEntry> &entries, size_t content_bytes,
                                                    const std::string &file, std::vector<Diagnostic> &diags)
{
    return Expander(entries, file, diags).run(content_bytes);
}

void collapse_instance_diagnostics(const Config &config, std::vector<Diagnostic> &diags)
{
    if (config.templates.empty())
        return;
    std::set<int> lines;
    for (const auto &t : config.templates)
        lines.insert(t.lines.begin(), t.lines.end());
    std::set<std::tuple<std::string, int, std::string>> kept;
    diags.erase(std::remove_if(diags.begin(), diags.end(),
                               [&](const Diagnostic &d) {
                                   return lines.count(d.line) &&
                                          !kept.emplace(d.file, d.line, without_numbers(d.message)).second;
                               }),
                diags.end());
}

}  // namespace devhost
