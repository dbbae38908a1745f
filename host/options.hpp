// Validation of device option values against a plugin's option schema, used
// by `devhost check` (no device touched) and when a device is opened.
#pragma once

#include "loader.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace devhost {

// The type's name as shown to users ("int", "duration", ...).
const char *option_type_name(uint32_t type);

// Parses `text` as a value of `spec`. Returns the integer form (INT: value,
// BOOL: 0/1, DURATION: ms, ENUM: choice index, STRING: 0), or nullopt with
// `error` saying what was expected.
std::optional<int64_t> parse_option_value(const OptionSpec &spec, std::string_view text, std::string &error);

// What a spec accepts, for messages: "an integer from 50 to 4000000",
// "one of none|odd|even", ...
std::string option_expectation(const OptionSpec &spec);

}  // namespace devhost
