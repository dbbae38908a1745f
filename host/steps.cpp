#include "steps.hpp"

#include <devhost/plugin.h>

#include <map>

namespace devhost {

const char *step_name(StepKind kind)
{
    switch (kind) {
    case StepKind::Open: return "open";
    case StepKind::Connect: return "connect";
    case StepKind::Info: return "info";
    case StepKind::Lock: return "lock";
    case StepKind::Write: return "write";
    case StepKind::Read: return "read";
    case StepKind::Request: return "request";
    case StepKind::GetMessage: return "get-message";
    case StepKind::Reply: return "reply";
    case StepKind::Control: return "control";
    case StepKind::Sleep: return "sleep";
    case StepKind::Unlock: return "unlock";
    case StepKind::Disconnect: return "disconnect";
    case StepKind::Close: return "close";
    }
    return "?";
}

std::optional<std::vector<std::string>> split_words(std::string_view line)
{
    std::vector<std::string> words;
    std::string word;
    bool in_word = false, quoted = false;
    for (size_t i = 0; i < line.size(); i++) {
        char c = line[i];
        if (quoted) {
            word.push_back(c);
            if (c == '\\' && i + 1 < line.size()) {
                word.push_back(line[++i]);
            } else if (c == '"') {
                quoted = false;
            }
            continue;
        }
        if (c == ' ' || c == '\t') {
            if (in_word)
                words.push_back(std::move(word));
            word.clear();
            in_word = false;
            continue;
        }
        in_word = true;
        word.push_back(c);
        if (c == '"')
            quoted = true;
    }
    if (quoted)
        return std::nullopt;
    if (in_word)
        words.push_back(std::move(word));
    return words;
}

namespace {

struct Parser {
    Step step;
    std::string name;
    std::string &error;

    bool fail(const std::string &what)
    {
        error = "step '" + name + "': " + what;
        return false;
    }

    bool data(const std::string &word, const char *what, text::Bytes &out)
    {
        std::string e;
        auto bytes = text::parse_data(word, e);
        if (!bytes)
            return fail(std::string(what) + ": " + e);
        out = std::move(*bytes);
        return true;
    }

    bool number(const std::string &key, const std::string &value, uint64_t lo, uint64_t hi, uint64_t &out)
    {
        auto v = text::parse_int(value);
        if (!v || *v < 0 || static_cast<uint64_t>(*v) < lo || static_cast<uint64_t>(*v) > hi)
            return fail(key + "=" + text::excerpt(value) + ": expected an integer from " + std::to_string(lo) +
                        " to " + std::to_string(hi));
        out = static_cast<uint64_t>(*v);
        return true;
    }

    bool duration(const std::string &key, const std::string &value, int64_t &out)
    {
        auto v = text::parse_duration_ms(value);
        if (!v)
            return fail(key + "=" + text::excerpt(value) + ": expected a duration like 250ms or 2s");
        out = *v;
        return true;
    }

    // Applies one key=value option common to several steps; `allowed` names
    // the keys this step takes, for the error message.
    bool option(const std::string &key, const std::string &value, const std::vector<std::string> &allowed)
    {
        bool ok = false;
        for (const auto &a : allowed)
            ok = ok || a == key;
        if (!ok) {
            std::string list;
            for (const auto &a : allowed)
                list += (list.empty() ? "" : ", ") + a + "=";
            return fail("unknown argument '" + text::excerpt(key) + "'" +
                        (list.empty() ? " (it takes no arguments)" : " (expected " + list + ")"));
        }
        uint64_t n = 0;
        int64_t ms = 0;
        if (key == "timeout") {
            if (!duration(key, value, ms))
                return false;
            step.timeout_ms = ms;
        } else if (key == "max") {
            if (!number(key, value, 1, max_step_buffer, n))
                return false;
            step.max = n;
        } else if (key == "offset") {
            if (!number(key, value, 0, UINT64_MAX >> 1, n))
                return false;
            step.offset = n;
        } else if (key == "id") {
            if (!number(key, value, 0, UINT64_MAX >> 1, n))
                return false;
            step.message_id = n;
        } else if (key == "expect") {
            text::Bytes b;
            if (!data(value, "expect", b))
                return false;
            step.expect = std::move(b);
        } else if (key == "until") {
            text::Bytes b;
            if (!data(value, "until", b))
                return false;
            if (b.empty())
                return fail("until= needs at least one byte");
            step.until = std::move(b);
        } else if (key == "exactly") {
            if (!number(key, value, 1, max_step_buffer, n))
                return false;
            step.count = n;
            step.read_mode = ReadMode::Exactly;
        } else if (key == "context") {
            text::Bytes b;
            if (!data(value, "context", b))
                return false;
            step.context = std::move(b);
        } else if (key == "context-size") {
            if (!number(key, value, 0, UINT32_MAX, n))
                return false;
            step.context_size = static_cast<uint32_t>(n);
        }
        return true;
    }
};

bool split_pair(const std::string &word, std::string &key, std::string &value)
{
    auto eq = word.find('=');
    if (eq == std::string::npos || eq == 0 || word[0] == '"')
        return false;
    key = word.substr(0, eq);
    value = word.substr(eq + 1);
    return true;
}

const std::map<std::string, StepKind> &step_table()
{
    static const std::map<std::string, StepKind> table = {
        {"open", StepKind::Open},       {"connect", StepKind::Connect},
        {"info", StepKind::Info},       {"lock", StepKind::Lock},
        {"write", StepKind::Write},     {"read", StepKind::Read},
        {"request", StepKind::Request}, {"get-message", StepKind::GetMessage},
        {"reply", StepKind::Reply},     {"control", StepKind::Control},
        {"sleep", StepKind::Sleep},     {"unlock", StepKind::Unlock},
        {"disconnect", StepKind::Disconnect}, {"close", StepKind::Close},
    };
    return table;
}

}  // namespace

std::optional<Step> parse_step(std::string_view line, std::string &error)
{
    auto maybe_words = split_words(line);
    if (!maybe_words) {
        error = "step '" + text::excerpt(text::trim(line)) + "': unterminated quoted string";
        return std::nullopt;
    }
    auto &words = *maybe_words;
    if (words.empty()) {
        error = "empty step";
        return std::nullopt;
    }
    auto it = step_table().find(words[0]);
    if (it == step_table().end()) {
        std::string list;
        std::vector<std::string> names;
        for (const auto &[n, k] : step_table()) {
            list += (list.empty() ? "" : ", ") + n;
            names.push_back(n);
        }
        const std::string hint = text::closest(words[0], names);
        error = "unknown step '" + text::excerpt(words[0]) + "'" +
                (hint.empty() ? " (expected one of " + list + ")"
                              : " (did you mean '" + hint + "'?); expected one of " + list);
        return std::nullopt;
    }
    Parser p{{}, words[0], error};
    p.step.kind = it->second;
    p.step.text = std::string(text::trim(line));

    // Positional words come first, then key=value pairs.
    std::vector<std::string> positional;
    std::vector<std::pair<std::string, std::string>> pairs;
    for (size_t i = 1; i < words.size(); i++) {
        std::string k, v;
        if (split_pair(words[i], k, v)) {
            for (const auto &seen : pairs)
                if (seen.first == k)
                    return p.fail(text::excerpt(k) + "= is given twice"), std::nullopt;
            pairs.emplace_back(k, v);
        } else {
            if (!pairs.empty())
                return p.fail("'" + text::excerpt(words[i]) + "' must come before the key=value arguments"),
                       std::nullopt;
            positional.push_back(words[i]);
        }
    }
    auto want_positional = [&](size_t lo, size_t hi, const char *what) {
        if (positional.size() < lo)
            return p.fail(std::string("missing ") + what);
        if (positional.size() > hi)
            return p.fail("unexpected '" + text::excerpt(positional[hi]) + "'");
        return true;
    };
    auto options = [&](const std::vector<std::string> &allowed) {
        for (const auto &[k, v] : pairs)
            if (!p.option(k, v, allowed))
                return false;
        return true;
    };

    Step &s = p.step;
    bool ok = true;
    switch (s.kind) {
    case StepKind::Open:
    case StepKind::Info:
    case StepKind::Unlock:
    case StepKind::Disconnect:
    case StepKind::Close:
        ok = want_positional(0, 0, "") && options({"timeout"});
        break;
    case StepKind::Lock:
        ok = want_positional(0, 0, "") && options({"timeout"});
        break;
    case StepKind::Connect:
        ok = want_positional(0, 0, "");
        for (const auto &[k, v] : pairs) {
            if (!ok)
                break;
            if (k == "timeout" || k == "context" || k == "context-size") {
                ok = p.option(k, v, {"timeout", "context", "context-size"});
            } else {
                std::string value = v;
                if (!v.empty() && v.front() == '"') {
                    text::Bytes b;
                    ok = p.data(v, text::excerpt(k).c_str(), b);
                    value.assign(b.begin(), b.end());
                }
                s.args.emplace_back(k, value);
            }
        }
        if (ok && s.context && s.context_size)
            if (auto why = context_size_error(s.context->size(), *s.context_size))
                ok = p.fail(*why);
        break;
    case StepKind::Write:
        ok = want_positional(1, 1, "DATA (a \"quoted string\" or hex:...)") && p.data(positional[0], "DATA", s.data) &&
             options({"timeout", "offset"});
        break;
    case StepKind::Read: {
        ok = want_positional(0, 1, "N") && options({"exactly", "until", "timeout", "max", "expect", "offset"});
        if (!ok)
            break;
        int modes = (positional.size() == 1) + (s.read_mode == ReadMode::Exactly) + (s.until.has_value());
        if (modes != 1) {
            ok = p.fail("give exactly one of N, exactly=N or until=DATA");
            break;
        }
        if (positional.size() == 1) {
            uint64_t n = 0;
            ok = p.number("N", positional[0], 1, max_step_buffer, n);
            s.count = n;
            s.read_mode = ReadMode::UpTo;
        } else if (s.until) {
            s.read_mode = ReadMode::Until;
        }
        break;
    }
    case StepKind::Request:
        ok = want_positional(1, 1, "DATA (a \"quoted string\" or hex:...)") && p.data(positional[0], "DATA", s.data) &&
             options({"until", "timeout", "max", "expect"});
        break;
    case StepKind::GetMessage:
        ok = want_positional(0, 0, "") && options({"timeout", "max", "expect"});
        break;
    case StepKind::Reply:
        ok = want_positional(1, 1, "DATA (a \"quoted string\" or hex:...)") && p.data(positional[0], "DATA", s.data) &&
             options({"id", "timeout"});
        break;
    case StepKind::Control:
        ok = want_positional(1, 2, "CODE (a control name or number)") && options({"timeout", "max", "expect"});
        if (ok) {
            s.control = positional[0];
            if (positional.size() == 2)
                ok = p.data(positional[1], "DATA", s.data);
        }
        break;
    case StepKind::Sleep: {
        ok = want_positional(1, 1, "duration") && options({});
        if (ok) {
            int64_t ms = 0;
            ok = p.duration("duration", positional[0], ms);
            s.sleep_ms = ms;
        }
        break;
    }
    }
    if (!ok)
        return std::nullopt;
    return std::move(p.step);
}

std::optional<std::string> context_size_error(size_t context_len, uint32_t context_size)
{
    if (context_size <= context_len)
        return std::nullopt;
    return "context-size=" + std::to_string(context_size) + " is larger than the context (" +
           std::to_string(context_len) + " bytes)";
}

uint32_t transfer_op(const Step &s)
{
    switch (s.kind) {
    case StepKind::Write: return DEVHOST_OP_WRITE;
    case StepKind::Read:
        return s.read_mode == ReadMode::UpTo      ? DEVHOST_OP_READ
               : s.read_mode == ReadMode::Exactly ? DEVHOST_OP_READ_EXACT
                                                  : DEVHOST_OP_READ_UNTIL;
    case StepKind::Request: return DEVHOST_OP_REQUEST;
    case StepKind::GetMessage: return DEVHOST_OP_GET_MESSAGE;
    case StepKind::Reply: return DEVHOST_OP_REPLY;
    case StepKind::Control: return DEVHOST_OP_CONTROL;
    default: return 0;
    }
}

}  // namespace devhost
