#include "serial_script_parse.hpp"

#include "common/text.hpp"

#include <stdexcept>

namespace devhost::vdev {

namespace {

// Throws "'TEXT': reason" for malformed DATA.
std::string parse_data_arg(const std::string &arg)
{
    std::string error;
    auto bytes = text::parse_data(arg, error);
    if (!bytes)
        throw std::invalid_argument("'" + arg + "': " + error);
    return std::string(bytes->begin(), bytes->end());
}

// One line, without its end of line; appends a step unless it is blank or a
// comment.
void parse_line(std::string_view line, const std::string &where, std::vector<ScriptStep> &steps)
{
    size_t a = line.find_first_not_of(" \t\r");
    if (a == std::string_view::npos || line[a] == '#')
        return;
    size_t b = line.find_last_not_of(" \t\r");
    std::string t(line.substr(a, b - a + 1));
    size_t sp = t.find_first_of(" \t");
    std::string word = t.substr(0, sp);
    std::string arg = sp == std::string::npos ? "" : t.substr(t.find_first_not_of(" \t", sp));
    if (word != "send" && word != "expect" && word != "sleep")
        throw std::invalid_argument(where + "expected 'send DATA', 'expect DATA' or 'sleep D', got '" + word + "'");
    if (arg.empty())
        throw std::invalid_argument(where + "'" + word + "' needs an argument");
    ScriptStep s{word == "send" ? ScriptStep::send : word == "expect" ? ScriptStep::expect : ScriptStep::sleep, {}, 0};
    if (s.kind == ScriptStep::sleep) {
        auto ms = text::parse_duration_ms(arg);
        if (!ms)
            throw std::invalid_argument(where + "'" + arg + "' is not a duration like 250ms or 2s");
        if (*ms > max_script_sleep_ms)
            throw std::invalid_argument(where + "'" + arg + "' is longer than 1h, the longest sleep");
        s.ms = *ms;
    } else {
        if (arg[0] != '"' && arg.rfind("hex:", 0) != 0)
            throw std::invalid_argument(where + "DATA must be \"quoted\" or hex:..., got '" + arg + "'");
        try {
            s.data = parse_data_arg(arg);
        } catch (const std::invalid_argument &e) {
            throw std::invalid_argument(where + e.what());
        }
        if (s.kind == ScriptStep::expect && s.data.empty())
            throw std::invalid_argument(where + "'expect' needs non-empty data");
    }
    steps.push_back(std::move(s));
}

}  // namespace

std::vector<ScriptStep> parse_serial_script(std::string_view text, const std::string &file)
{
    std::vector<ScriptStep> steps;
    size_t no = 1;
    for (size_t at = 0; at < text.size(); no++) {
        size_t nl = text.find('\n', at);
        std::string_view line = text.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
        if (line.find('\0') != std::string_view::npos)
            throw std::invalid_argument(file + ":" + std::to_string(no) + ": a NUL byte; a script is text");
        parse_line(line, file + ":" + std::to_string(no) + ": ", steps);
        if (nl == std::string_view::npos)
            break;
        at = nl + 1;
    }
    if (steps.empty())
        throw std::invalid_argument("--script=" + file + ": no steps in the script");
    return steps;
}

}  // namespace devhost::vdev
