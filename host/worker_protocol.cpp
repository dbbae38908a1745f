#include "worker_protocol.hpp"

#include "steps.hpp"

#include <cstring>

namespace devhost {

using json = nlohmann::json;

json device_config_to_json(const DeviceConfig &c)
{
    json options = json::array(), steps = json::array(), faults = json::array();
    for (const auto &o : c.options)
        options.push_back({o.key, o.value, o.line});
    for (const auto &s : c.steps)
        steps.push_back({{"text", s.text}, {"line", s.line}, {"from", s.from_file ? json(*s.from_file) : json()}});
    for (const auto &f : c.faults)
        faults.push_back(f.text);
    return {{"name", c.name},
            {"line", c.line},
            {"class", c.class_name.value},
            {"path", c.path.value},
            {"path_line", c.path.line},
            {"inherit", c.inherit},
            {"timeout_ms", c.timeout_ms ? json(*c.timeout_ms) : json()},
            {"options", options},
            {"steps", steps},
            {"phased", c.phased},
            {"setup_steps", c.setup_steps},
            {"body_steps", c.body_steps},
            {"faults", faults}};
}

DeviceConfig device_config_from_json(const json &j, std::string &error)
{
    DeviceConfig c;
    c.name = j.at("name").get<std::string>();
    c.line = j.at("line").get<int>();
    c.class_name = {"class", j.at("class").get<std::string>(), 0};
    c.path = {"path", j.at("path").get<std::string>(), j.at("path_line").get<int>()};
    c.inherit = j.at("inherit").get<bool>();
    if (!j.at("timeout_ms").is_null())
        c.timeout_ms = j.at("timeout_ms").get<int64_t>();
    for (const auto &o : j.at("options"))
        c.options.push_back({o.at(0).get<std::string>(), o.at(1).get<std::string>(), o.at(2).get<int>()});
    for (const auto &s : j.at("steps")) {
        auto step = parse_step(s.at("text").get<std::string>(), error);
        if (!step)
            return {};
        step->line = s.at("line").get<int>();
        if (!s.at("from").is_null())
            step->from_file = s.at("from").get<std::string>();
        c.steps.push_back(std::move(*step));
    }
    c.step_lines = static_cast<int>(c.steps.size());
    c.phased = j.value("phased", false);
    c.setup_steps = j.value("setup_steps", size_t{0});
    c.body_steps = j.value("body_steps", c.steps.size());
    if (c.setup_steps + c.body_steps > c.steps.size()) {
        error = "the phases name more steps than the device has";
        return {};
    }
    for (const auto &f : j.at("faults")) {
        auto fault = parse_fault(f.get<std::string>(), error);
        if (!fault)
            return {};
        c.faults.push_back(std::move(*fault));
    }
    return c;
}

json scan_to_json(const ClassScan &s)
{
    json found = json::array();
    for (const auto &f : s.found)
        found.push_back({f.device_class, f.path, f.by_id, f.description, f.usb_vendor, f.usb_product, f.usb_serial});
    return {{"class", s.device_class}, {"listed", s.listed}, {"ok", s.ok},
            {"abandoned", s.abandoned}, {"error", s.error}, {"found", found}};
}

ClassScan scan_from_json(const json &j)
{
    ClassScan s;
    s.device_class = j.at("class").get<std::string>();
    s.listed = j.at("listed").get<bool>();
    s.ok = j.at("ok").get<bool>();
    s.abandoned = j.at("abandoned").get<bool>();
    s.error = j.at("error").get<std::string>();
    for (const auto &f : j.at("found")) {
        FoundDevice d;
        d.device_class = f.at(0).get<std::string>();
        d.path = f.at(1).get<std::string>();
        d.by_id = f.at(2).get<std::string>();
        d.description = f.at(3).get<std::string>();
        d.usb_vendor = f.at(4).get<std::string>();
        d.usb_product = f.at(5).get<std::string>();
        d.usb_serial = f.at(6).get<std::string>();
        s.found.push_back(std::move(d));
    }
    return s;
}

bool valid_role(const char *role)
{
    const size_t n = strnlen(role, 33);
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char ch = role[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return false;
    }
    return true;
}

}  // namespace devhost
