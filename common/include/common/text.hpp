// Text primitives shared by the config, the step language and option
// validation: durations, integers, booleans, quoted/hex data, and turning
// bytes back into hex and printable text for records.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devhost::text {

using Bytes = std::vector<uint8_t>;

// "250ms", "2s", "1.5s", "1m", "100us" (rounded up to whole ms), "0".
// Returns milliseconds, or nullopt if malformed.
std::optional<int64_t> parse_duration_ms(std::string_view s);

// Decimal, 0x hex or 0 octal-free integer with optional sign; whole string.
std::optional<int64_t> parse_int(std::string_view s);

// true/false, yes/no, on/off, 1/0.
std::optional<bool> parse_bool(std::string_view s);

// Data as written in a step: "C-escaped string" (\n \r \t \0 \\ \" \xHH \e)
// or hex:0a0B (pairs, optional spaces or ':' between bytes). On error,
// returns nullopt and sets `error` to what was wrong.
std::optional<Bytes> parse_data(std::string_view s, std::string &error);

// Lower-case hex of the bytes, no separators.
std::string to_hex(const uint8_t *data, size_t len);
// Printable rendering: ASCII 0x20..0x7e as is (backslash doubled), common
// escapes (\r \n \t \0), else \xHH.
std::string to_printable(const uint8_t *data, size_t len);

// The parts of s between each `sep` (empty parts kept, none after a
// trailing separator).
std::vector<std::string> split(const std::string &s, char sep);

// Trim ASCII white space at both ends.
std::string_view trim(std::string_view s);

// Case-insensitive ASCII equality.
bool iequals(std::string_view a, std::string_view b);

// Formats milliseconds as a duration string ("250ms", "2s").
std::string format_duration_ms(int64_t ms);

// What a message quotes of `s`: at most its first `max` bytes, then
// "...(N bytes)" if there were more, so that no error repeats a megabyte
// line; control bytes shown as \xHH, so that none reaches a terminal or a
// log raw. Everything else (a backslash, UTF-8) as it is.
std::string excerpt(std::string_view s, size_t max = 64);

// The candidate closest to `word` by edit distance, if at most 2 edits away
// (a did-you-mean hint), else "".
std::string closest(std::string_view word, const std::vector<std::string> &candidates);

}  // namespace devhost::text
