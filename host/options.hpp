// Validation of device option values against a plugin's option schema, used
// by `devhost check` (no device touched) and when a device is opened.
#pragma once

#include "loader.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devhost {

// The type's name as shown to users ("int", "duration", ...).
const char *option_type_name(uint32_t type);

// Parses `text` as a value of `spec`. Returns the integer form (INT: value,
// BOOL: 0/1, DURATION: ms, ENUM: choice index, STRING: 0), or nullopt with
// `error` saying what was expected.
std::optional<int64_t> parse_option_value(const OptionSpec &spec, std::string_view text, std::string &error);

// A device's option values, one per entry of its plugin's schema, in schema
// order: the configured value or else the default, parsed once (by
// resolve_options) and handed to the plugin's open as they are.
struct OptionValue {
    std::string text;     // as configured, or the default; "" when neither
    int64_t integer = 0;  // as parse_option_value gives it
    bool is_set = false;  // configured or defaulted
};
using OptionValues = std::vector<OptionValue>;

// The schema-ordered values of a device from configured values already
// parsed (name -> value; every name an option of the class) and the
// defaults the loader parsed: nothing is parsed again.
OptionValues complete_options(const Plugin &plugin, const std::map<std::string, OptionValue> &parsed);

// The value of the option named `name` among `values` (schema order), or
// nullptr when the class has no such option.
const OptionValue *option_value(const Plugin &plugin, const OptionValues &values, std::string_view name);

// Resolves configured values (name -> text) against the plugin's schema:
// every name must be an option of the class and every value must parse.
// nullopt with `error` ("unknown option 'x' for class 'c'", "option 'baud':
// ...") otherwise.
std::optional<OptionValues> resolve_options(const Plugin &plugin,
                                            const std::map<std::string, std::string> &configured,
                                            std::string &error);

// What a spec accepts, for messages: "an integer from 50 to 4000000",
// "one of none|odd|even", ...
std::string option_expectation(const OptionSpec &spec);

}  // namespace devhost
