// Each plugin's README lists exactly what the plugin declares (the format is
// in plugins/README.md):
//   - options: from the descriptor, as the host's loader copied it: names,
//     types (with INT ranges and ENUM choices) and defaults;
//   - control codes: from the descriptor: names;
//   - info keys: the ABI declares none, so a real device of each class is
//     asked (a loop device, a pseudo-terminal, a devhost-vdev virtual
//     parallel port, a port served in this process by libdevhost-port), in
//     the states that report the most keys; every key reported must be
//     listed, and every key listed must have been reported, except the ones
//     no device here can report, named below with the reason.
#include "devhost_test.hpp"

#include "device.hpp"
#include "loader.hpp"

#include <devhost/port.h>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace devhost;
using namespace devhost::test;

namespace {

// ---- the README, parsed ----

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
    size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
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

// The plugin of class `cls`, loaded once (a registry serves a class once).
std::shared_ptr<const Plugin> load(const std::string &cls)
{
    static PluginRegistry registry;
    if (auto loaded = registry.find(cls))
        return loaded;
    auto plugin = registry.load_file(plugin_dir() / (cls + ".so"));
    INFO((registry.refusals().empty() ? std::string() : registry.refusals().back().reason));
    REQUIRE(plugin);
    return plugin;
}

std::string readme_of(const std::string &cls)
{
    return read_file(source_dir() / "plugins" / cls / "README.md");
}

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

void check_options_and_controls(const std::string &cls)
{
    auto plugin = load(cls);
    const std::string readme = readme_of(cls);
    const std::string where = "plugins/" + cls + "/README.md";

    Section options = section(readme, "Options");
    INFO(where << ", ## Options");
    REQUIRE(options.found);
    std::set<std::string> declared;
    for (const auto &o : plugin->options())
        declared.insert(o.name);
    std::set<std::string> listed = names_in(options);
    CHECK(joined(minus(declared, listed)) == "(none)");  // declared, not listed
    CHECK(joined(minus(listed, declared)) == "(none)");  // listed, not declared
    for (const Row &row : options.rows) {
        for (const auto &name : row.names) {
            const OptionSpec *o = plugin->find_option(name);
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
    for (const auto &c : plugin->controls())
        declared.insert(c.name);
    listed = names_in(controls);
    CHECK(controls.none == declared.empty());
    CHECK(joined(minus(declared, listed)) == "(none)");
    CHECK(joined(minus(listed, declared)) == "(none)");
}

// Collects info keys from a device, as many times as called.
class KeyCollector {
public:
    void add(Device &dev)
    {
        InfoList info;
        Outcome o = dev.info(info);
        INFO(o.message);
        REQUIRE(o.ok());
        for (const auto &[key, value] : info)
            keys_.insert(key);
    }
    const std::set<std::string> &keys() const { return keys_; }

private:
    std::set<std::string> keys_;
};

void check_info_keys(const std::string &cls, const std::set<std::string> &reported,
                     const std::set<std::string> &unobservable)
{
    Section info = section(readme_of(cls), "Info keys");
    INFO("plugins/" << cls << "/README.md, ## Info keys");
    REQUIRE(info.found);
    std::set<std::string> listed = names_in(info);
    CHECK(joined(minus(reported, listed)) == "(none)");                     // reported, not listed
    CHECK(joined(minus(minus(listed, reported), unobservable)) == "(none)");  // listed, never reported
    CHECK(joined(minus(unobservable, listed)) == "(none)");                 // exceptions must be listed
}

std::unique_ptr<Device> open_device(const std::string &cls, const std::string &path)
{
    auto dev = std::make_unique<Device>(load(cls), "readme");
    OpenRequest request;
    request.path = path;
    request.timeout_ms = 5000;
    Outcome o = dev->open(request);
    INFO(path << ": " << o.message);
    REQUIRE(o.ok());
    return dev;
}

}  // namespace

TEST_CASE("readme: loop lists its options, control codes and info keys", "[readme]")
{
    check_options_and_controls("loop");
    KeyCollector keys;
    auto dev = open_device("loop", "loop:readme");
    keys.add(*dev);
    ConnectRequest connect;
    connect.context = std::vector<uint8_t>{'c', 't', 'x'};
    connect.args = {{"k", "v"}};
    REQUIRE(dev->connect(connect).ok());
    keys.add(*dev);  // connected: the context keys too
    CHECK(dev->close().ok());
    check_info_keys("loop", keys.keys(), {});
}

TEST_CASE("readme: serial lists its options, control codes and info keys", "[readme]")
{
    check_options_and_controls("serial");
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(master >= 0);
    REQUIRE(grantpt(master) == 0);
    REQUIRE(unlockpt(master) == 0);
    const std::string slave = ptsname(master);
    KeyCollector keys;
    auto dev = open_device("serial", slave);
    keys.add(*dev);
    close(master);  // hang-up: the tty's settings cannot be read any more
    keys.add(*dev);
    dev->close();
    check_info_keys("serial", keys.keys(),
                    {// A USB tty's ids, from sysfs: no USB serial adapter here.
                     "usb-vendor", "usb-product", "usb-serial", "usb-manufacturer", "usb-product-name"});
}

TEST_CASE("readme: parallel lists its options, control codes and info keys", "[readme]")
{
    check_options_and_controls("parallel");
    TempDir dir;
    ProcessOptions options;
    options.env["DEVHOST_VPORT_DIR"] = dir.path().string();
    Child peer({(bin_dir() / "devhost-vdev").string(), "parallel-port", "--name=readme",
                "--output=" + (dir / "printed").string()},
               dir.path(), options);
    bool ready = peer.wait_for_output("READY vport:readme\n", 10s);
    INFO(peer.err());
    REQUIRE(ready);
    KeyCollector keys;
    {
        // A virtual port always answers with its lines and device ID, so
        // one info reports every key.
        auto dev = open_device("parallel", "vport:" + (dir / "readme.sock").string());
        keys.add(*dev);
        CHECK(dev->close().ok());
    }
    peer.signal(SIGTERM);
    peer.wait(5s);
    check_info_keys("parallel", keys.keys(), {});
}

TEST_CASE("readme: filterport lists its options, control codes and info keys", "[readme]")
{
    check_options_and_controls("filterport");
    TempDir dir;
    const std::string socket = (dir / "readme-port").string();
    devhost_port_config config{};
    config.struct_size = sizeof config;
    config.max_connections = 1;
    config.path = socket.c_str();
    devhost_port *port = nullptr;
    devhost_error err{};
    err.struct_size = sizeof err;
    REQUIRE(devhost_port_create(&config, &port, &err) == DEVHOST_OK);
    KeyCollector keys;
    {
        auto dev = open_device("filterport", socket);
        keys.add(*dev);
        ConnectRequest connect;
        connect.timeout_ms = 5000;
        Outcome o = dev->connect(connect);
        INFO(o.message);
        CHECK(o.ok());
        keys.add(*dev);  // connected: the server's credentials too
        CHECK(dev->close().ok());
    }
    devhost_port_close(port);
    check_info_keys("filterport", keys.keys(), {});
}
