#include "plugin_description.hpp"

#include <nlohmann/json.hpp>

namespace devhost {

using json = nlohmann::json;

json PluginCodec::to_json(const Plugin &p)
{
    json options = json::array();
    for (const auto &o : p.options_)
        options.push_back({{"name", o.name},
                           {"type", o.type},
                           {"default", o.default_value ? json(*o.default_value) : json()},
                           {"default_integer", o.default_integer},
                           {"help", o.help},
                           {"choices", o.choices},
                           {"min", o.min},
                           {"max", o.max},
                           {"flags", o.flags}});
    json controls = json::array();
    for (const auto &c : p.controls_)
        controls.push_back({{"name", c.name}, {"code", c.code}, {"help", c.help}, {"flags", c.flags}});
    return {{"file", p.file_.string()},
            {"dev", static_cast<uint64_t>(p.dev_)},
            {"ino", static_cast<uint64_t>(p.ino_)},
            {"name", p.name_},
            {"class", p.class_},
            {"version", p.version_},
            {"description", p.description_},
            {"abi", p.abi_version_},
            {"flags", p.flags_},
            {"transfer_ops", p.transfer_ops_},
            {"transfer_requires", p.transfer_requires_},
            {"lock_requires", p.lock_requires_},
            {"path_types", p.path_types_},
            {"hooks", p.hook_mask_},
            {"options", options},
            {"controls", controls},
            {"path_patterns", p.path_patterns_}};
}

std::shared_ptr<Plugin> PluginCodec::from_json(const json &j, std::string &error)
{
    try {
        auto p = std::make_shared<Plugin>();
        p->file_ = j.at("file").get<std::string>();
        p->dev_ = static_cast<dev_t>(j.at("dev").get<uint64_t>());
        p->ino_ = static_cast<ino_t>(j.at("ino").get<uint64_t>());
        p->name_ = j.at("name").get<std::string>();
        p->class_ = j.at("class").get<std::string>();
        p->version_ = j.at("version").get<std::string>();
        p->description_ = j.at("description").get<std::string>();
        p->abi_version_ = j.at("abi").get<uint32_t>();
        p->flags_ = j.at("flags").get<uint32_t>();
        p->transfer_ops_ = j.at("transfer_ops").get<uint32_t>();
        p->transfer_requires_ = j.at("transfer_requires").get<uint32_t>();
        p->lock_requires_ = j.at("lock_requires").get<uint32_t>();
        p->path_types_ = j.at("path_types").get<uint32_t>();
        p->hook_mask_ = j.at("hooks").get<uint32_t>();
        for (const auto &o : j.at("options")) {
            OptionSpec spec;
            spec.name = o.at("name").get<std::string>();
            spec.type = o.at("type").get<uint32_t>();
            if (!o.at("default").is_null())
                spec.default_value = o.at("default").get<std::string>();
            spec.default_integer = o.at("default_integer").get<int64_t>();
            spec.help = o.at("help").get<std::string>();
            spec.choices = o.at("choices").get<std::vector<std::string>>();
            spec.min = o.at("min").get<int64_t>();
            spec.max = o.at("max").get<int64_t>();
            spec.flags = o.at("flags").get<uint32_t>();
            p->options_.push_back(std::move(spec));
        }
        for (const auto &c : j.at("controls"))
            p->controls_.push_back({c.at("name").get<std::string>(), c.at("code").get<uint32_t>(),
                                    c.at("help").get<std::string>(), c.at("flags").get<uint32_t>()});
        p->path_patterns_ = j.at("path_patterns").get<std::vector<std::string>>();
        return p;
    } catch (const json::exception &e) {
        error = std::string("not a plugin description: ") + e.what();
        return nullptr;
    }
}

}  // namespace devhost
