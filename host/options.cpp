#include "options.hpp"

#include "common/text.hpp"

namespace devhost {

const char *option_type_name(uint32_t type)
{
    switch (type) {
    case DEVHOST_OPTION_STRING: return "string";
    case DEVHOST_OPTION_INT: return "int";
    case DEVHOST_OPTION_BOOL: return "bool";
    case DEVHOST_OPTION_ENUM: return "enum";
    case DEVHOST_OPTION_DURATION: return "duration";
    default: return "unknown";
    }
}

std::string option_expectation(const OptionSpec &spec)
{
    switch (spec.type) {
    case DEVHOST_OPTION_INT:
        return "an integer from " + std::to_string(spec.min) + " to " + std::to_string(spec.max);
    case DEVHOST_OPTION_BOOL:
        return "true or false";
    case DEVHOST_OPTION_ENUM: {
        std::string s = "one of ";
        for (size_t i = 0; i < spec.choices.size(); i++)
            s += (i ? "|" : "") + spec.choices[i];
        return s;
    }
    case DEVHOST_OPTION_DURATION:
        return "a duration like 250ms or 2s";
    default:
        return "text";
    }
}

std::optional<int64_t> parse_option_value(const OptionSpec &spec, std::string_view value, std::string &error)
{
    auto fail = [&]() -> std::optional<int64_t> {
        error = "expected " + option_expectation(spec) + ", got '" + text::excerpt(value) + "'";
        return std::nullopt;
    };
    switch (spec.type) {
    case DEVHOST_OPTION_STRING:
        return 0;
    case DEVHOST_OPTION_INT: {
        auto v = text::parse_int(value);
        if (!v || *v < spec.min || *v > spec.max)
            return fail();
        return *v;
    }
    case DEVHOST_OPTION_BOOL: {
        auto v = text::parse_bool(value);
        if (!v)
            return fail();
        return *v ? 1 : 0;
    }
    case DEVHOST_OPTION_ENUM:
        for (size_t i = 0; i < spec.choices.size(); i++)
            if (spec.choices[i] == value)
                return static_cast<int64_t>(i);
        return fail();
    case DEVHOST_OPTION_DURATION: {
        auto v = text::parse_duration_ms(value);
        if (!v)
            return fail();
        return *v;
    }
    default:
        error = "option has an unknown type";
        return std::nullopt;
    }
}

std::optional<OptionValues> resolve_options(const Plugin &plugin,
                                            const std::map<std::string, std::string> &configured,
                                            std::string &error)
{
    for (const auto &[key, value] : configured)
        if (!plugin.find_option(key)) {
            error = "unknown option '" + key + "' for class '" + plugin.device_class() + "'";
            return std::nullopt;
        }
    std::map<std::string, OptionValue> parsed;
    for (const auto &[key, text] : configured) {
        std::string why;
        auto integer = parse_option_value(*plugin.find_option(key), text, why);
        if (!integer) {
            error = "option '" + key + "': " + why;
            return std::nullopt;
        }
        parsed[key] = OptionValue{text, *integer, true};
    }
    return complete_options(plugin, parsed);
}

OptionValues complete_options(const Plugin &plugin, const std::map<std::string, OptionValue> &parsed)
{
    OptionValues values;
    values.reserve(plugin.options().size());
    for (const auto &spec : plugin.options()) {
        if (auto it = parsed.find(spec.name); it != parsed.end())
            values.push_back(it->second);
        else if (spec.default_value)
            values.push_back(OptionValue{*spec.default_value, spec.default_integer, true});
        else
            values.push_back(OptionValue{});
    }
    return values;
}

const OptionValue *option_value(const Plugin &plugin, const OptionValues &values, std::string_view name)
{
    const auto &specs = plugin.options();
    for (size_t i = 0; i < specs.size() && i < values.size(); i++)
        if (specs[i].name == name)
            return &values[i];
    return nullptr;
}

}  // namespace devhost
