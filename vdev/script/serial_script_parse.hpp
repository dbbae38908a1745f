// The serial-script peer's script language, parsed from text with no I/O so
// that it can be unit-tested and fuzzed on its own:
//   # comment
//   send "HELLO\r\n"        send bytes (after --delay, with --garbage)
//   expect "PING\r\n"       wait until the received bytes contain this
//   sleep 250ms             wait before what follows is sent
// DATA is "C-escaped" or hex:0a0b, exactly as a step's DATA; D is a duration
// exactly as the config takes it (250ms, 2s, 1.5s, 1m, 100us, 0), at most
// one hour.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace devhost::vdev {

struct ScriptStep {
    enum Kind { send, expect, sleep } kind;
    std::string data;  // send/expect: the bytes (never empty for expect)
    int64_t ms = 0;    // sleep: milliseconds, 0 to max_script_sleep_ms
};

// The longest a `sleep` may be: a longer pause is a mistake, not a test.
inline constexpr int64_t max_script_sleep_ms = 3600 * 1000;
// The largest script file load_script() reads.
inline constexpr size_t max_script_bytes = 1 << 20;

// Parses a whole script. `file` names it in messages. Returns at least one
// step; throws std::invalid_argument with one line "FILE:LINE: reason" (or
// "--script=FILE: reason" for the script as a whole), and nothing else.
std::vector<ScriptStep> parse_serial_script(std::string_view text, const std::string &file);

}  // namespace devhost::vdev
