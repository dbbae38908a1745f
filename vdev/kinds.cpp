// What devhost-vdev says about its kinds: the options line of --help, the
// --kinds listing for people, and the --describe-kinds document that
// `devhost check` reads (host/virtual_kinds.hpp). All three come from each
// kind's option table (DEVHOST_VDEV_KIND in vdev/<kind>.cpp), so a key added
// there appears in each.
#include "vdev.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string_view>

namespace devhost::vdev {

namespace {

// The option main.cpp reads for every kind.
const Option name_option{"name", "NAME (default: the kind)", "string"};

std::vector<const Kind *> sorted_kinds()
{
    std::vector<const Kind *> sorted;
    for (const auto &k : kinds())
        sorted.push_back(&k);
    std::sort(sorted.begin(), sorted.end(),
              [](const Kind *a, const Kind *b) { return std::string_view(a->name) < b->name; });
    return sorted;
}

// (describe_kinds_test checks that every type is one of the four.)
nlohmann::json describe(const Option &o)
{
    return {{"key", o.key}, {"value", o.value}, {"type", o.type}, {"required", o.required}};
}

}  // namespace

std::vector<Option> serial_peer_options(std::vector<Option> own)
{
    for (const Option &o : {Option{"link", "PATH (default: DIR/NAME)", "string"}, Option{"delay", "D", "duration"},
                            Option{"garbage", "N", "int"}, Option{"hangup-after", "N", "int"},
                            Option{"hold", "BOOL", "bool"}})
        own.push_back(o);
    return own;
}

std::string options_line(const Kind &kind)
{
    std::string line;
    for (const Option &o : kind.options)
        line += (line.empty() ? "--" : " --") + std::string(o.key) + "=" + o.value;
    return line;
}

void list_kinds(std::ostream &out)
{
    for (const auto &k : kinds()) {
        out << k.name << ' ' << name_option.key;
        for (const Option &o : k.options)
            out << ' ' << o.key;
        out << '\n';
    }
}

// {"format": 1,
//  "common-options": [OPTION, ...],          (every kind: --name)
//  "kinds": [{"name": KIND, "help": TEXT, "options": [OPTION, ...]}, ...]}
// OPTION: {"key": KEY, "value": TEXT, "type": "string"|"int"|"bool"|"duration",
//          "required": BOOL}. Kinds sorted by name, options in --help order.
void describe_kinds(std::ostream &out)
{
    nlohmann::json doc = {{"format", 1}, {"common-options", nlohmann::json::array({describe(name_option)})}};
    nlohmann::json &list = doc["kinds"] = nlohmann::json::array();
    for (const Kind *k : sorted_kinds()) {
        nlohmann::json options = nlohmann::json::array();
        for (const Option &o : k->options)
            options.push_back(describe(o));
        list.push_back({{"name", k->name}, {"help", k->help}, {"options", std::move(options)}});
    }
    out << doc.dump(2) << '\n';
}

}  // namespace devhost::vdev
