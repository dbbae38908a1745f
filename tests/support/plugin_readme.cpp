// Checks a plugin's README against the plugin; see plugin_readme.hpp and
// the format in plugins/README.md.
#include "plugin_readme.hpp"

#include "common/text.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <iterator>
#include <map>
#include <sstream>
#include <vector>

namespace devhost::test {

namespace {

struct Row {
    std::vector<std::string> names;  // backticked names of the first cell
    std::map<std::string, std::string> cells;  // by column title
};

struct Section {
    bool found = false;
    bool none = false;  // the section says "None."
    std::vector<Row> rows;
};

std::string trim(const std::string &s)
{
    return std::string(text::trim(s));
}

// A table line's cells; "\|" is a literal bar inside a cell.
std::vector<std::string> cells_of(const std::string &line)
{
    std::vector<std::string> cells;
    std::string cell;
    for (size_t i = 1; i < line.size(); i++) {  // line[0] is the leading '|'
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
            cell += '|';
            i++;
        } else if (line[i] == '|') {
            cells.push_back(trim(cell));
            cell.clear();
        } else {
            cell += line[i];
        }
    }
    return cells;
}

std::vector<std::string> backticked(const std::string &cell)
{
    std::vector<std::string> names;
    size_t at = 0;
    while ((at = cell.find('`', at)) != std::string::npos) {
        size_t end = cell.find('`', at + 1);
        if (end == std::string::npos)
            break;
        names.push_back(cell.substr(at + 1, end - at - 1));
        at = end + 1;
    }
    return names;
}

std::string unquoted(const std::string &cell)
{
    std::string s;
    for (char c : cell)
        if (c != '`')
            s += c;
    return trim(s);
}

// The first table (or "None.") under "## <title>".
Section section(const std::string &readme, const std::string &title)
{
    Section out;
    std::istringstream in(readme);
    std::string line;
    bool inside = false;
    std::vector<std::string> header;
    while (std::getline(in, line)) {
        if (line.rfind("## ", 0) == 0) {
            if (inside)
                break;
            inside = trim(line.substr(3)) == title;
            out.found = out.found || inside;
            continue;
        }
        if (!inside)
            continue;
        if (trim(line) == "None." && header.empty()) {
            out.none = true;
            break;
        }
        if (line.rfind("|", 0) != 0) {
            if (!header.empty())
                break;  // the table ended
            continue;
        }
        std::vector<std::string> cells = cells_of(line);
        if (header.empty()) {
            header = cells;
            continue;
        }
        if (!cells.empty() && cells[0].find("---") == 0)
            continue;  // the separator
        Row row;
        row.names = backticked(cells.empty() ? "" : cells[0]);
        for (size_t i = 0; i < cells.size() && i < header.size(); i++)
            row.cells[header[i]] = cells[i];
        out.rows.push_back(row);
    }
    return out;
}

std::set<std::string> names_in(const Section &s)
{
    std::set<std::string> names;
    for (const Row &r : s.rows)
        names.insert(r.names.begin(), r.names.end());
    return names;
}

std::string joined(const std::set<std::string> &names)
{
    std::string s;
    for (const auto &n : names)
        s += (s.empty() ? "" : ", ") + n;
    return s.empty() ? "(none)" : s;
}

// a - b
std::set<std::string> minus(const std::set<std::string> &a, const std::set<std::string> &b)
{
    std::set<std::string> d;
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(d, d.end()));
    return d;
}

// ---- what the plugin declares ----

// The type cell a README must show for an option.
bool type_matches(const OptionSpec &o, const std::string &cell)
{
    std::string t = unquoted(cell);
    switch (o.type) {
    case DEVHOST_OPTION_STRING: return t == "string";
    case DEVHOST_OPTION_BOOL: return t == "bool";
    case DEVHOST_OPTION_DURATION: return t == "duration";
    case DEVHOST_OPTION_INT:
        return t == "int" || t == "int " + std::to_string(o.min) + ".." + std::to_string(o.max);
    case DEVHOST_OPTION_ENUM: {
        std::string choices;
        for (const auto &c : o.choices)
            choices += (choices.empty() ? "" : "|") + c;
        return t == choices;
    }
    default: return false;
    }
}

}  // namespace

void check_readme_declarations(const Plugin &plugin, const std::string &readme, const std::string &where)
{
    Section options = section(readme, "Options");
    INFO(where << ", ## Options");
    REQUIRE(options.found);
    std::set<std::string> declared;
    for (const auto &o : plugin.options())
        declared.insert(o.name);
    std::set<std::string> listed = names_in(options);
    CHECK(joined(minus(declared, listed)) == "(none)");  // declared, not listed
    CHECK(joined(minus(listed, declared)) == "(none)");  // listed, not declared
    for (const Row &row : options.rows) {
        for (const auto &name : row.names) {
            const OptionSpec *o = plugin.find_option(name);
            if (!o)
                continue;
            INFO("option `" << name << "`");
            REQUIRE(row.cells.count("type"));
            REQUIRE(row.cells.count("default"));
            CHECK(type_matches(*o, row.cells.at("type")));
            CHECK(unquoted(row.cells.at("default")) == o->default_value.value_or("-"));
        }
    }

    Section controls = section(readme, "Control codes");
    INFO(where << ", ## Control codes");
    REQUIRE(controls.found);
    declared.clear();
    for (const auto &c : plugin.controls())
        declared.insert(c.name);
    listed = names_in(controls);
    CHECK(controls.none == declared.empty());
    CHECK(joined(minus(declared, listed)) == "(none)");
    CHECK(joined(minus(listed, declared)) == "(none)");
}

void check_readme_info_keys(const std::string &readme, const std::string &where,
                            const std::set<std::string> &reported, const std::set<std::string> &unobservable)
{
    Section info = section(readme, "Info keys");
    INFO(where << ", ## Info keys");
    REQUIRE(info.found);
    std::set<std::string> listed = names_in(info);
    CHECK(joined(minus(reported, listed)) == "(none)");                     // reported, not listed
    CHECK(joined(minus(minus(listed, reported), unobservable)) == "(none)");  // listed, never reported
    CHECK(joined(minus(unobservable, listed)) == "(none)");                 // exceptions must be listed
}

}  // namespace devhost::test
