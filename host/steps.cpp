#include "steps.hpp"

#include <devhost/plugin.h>

#include <algorithm>
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

// The step a line's first word names; nullopt with the error (and a
// did-you-mean) when it names none.
std::optional<StepKind> step_kind(const std::string &word, std::string &error)
{
    auto it = step_table().find(word);
    if (it != step_table().end())
        return it->second;
    std::string list;
    std::vector<std::string> names;
    for (const auto &[n, k] : step_table()) {
        list += (list.empty() ? "" : ", ") + n;
        names.push_back(n);
    }
    const std::string hint = text::closest(word, names);
    error = "unknown step '" + text::excerpt(word) + "'" +
            (hint.empty() ? " (expected one of " + list + ")"
                          : " (did you mean '" + hint + "'?); expected one of " + list);
    return std::nullopt;
}

// Parses one step's arguments into `step`: the positional words, then the
// key=value pairs, each step kind taking its own.
struct Parser {
    Step step;
    std::string name;
    std::string &error;
    std::vector<std::string> positional;
    std::vector<std::pair<std::string, std::string>> pairs;
    bool file = false;  // from= or to=: a transfer through a file, N unbounded

    // The largest N (read N, exactly=N) this step may ask for.
    uint64_t max_count() const { return file ? max_file_transfer : max_step_buffer; }

    bool has(const char *key) const
    {
        return std::any_of(pairs.begin(), pairs.end(), [&](const auto &p) { return p.first == key; });
    }

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

    // A DATA argument given as key=DATA.
    bool data_option(const std::string &key, const std::string &value, std::optional<text::Bytes> &out)
    {
        text::Bytes b;
        if (!data(value, key.c_str(), b))
            return false;
        out = std::move(b);
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

    // Whether this step takes `key` (every step takes repeat=); the error
    // naming those it takes if not.
    bool allowed(const std::string &key, const std::vector<std::string> &keys)
    {
        if (key == "repeat")
            return true;
        for (const auto &a : keys)
            if (a == key)
                return true;
        if (key == "from" && step.kind == StepKind::Read)
            return fail("from= is write's (a read saves what it reads with to=FILE)");
        std::string list;
        for (const auto &a : keys)
            list += a + "=, ";
        return fail("unknown argument '" + text::excerpt(key) + "' (expected " + list + "repeat=)");
    }

    // Applies one key=value option common to several steps; `keys` names
    // the keys this step takes, for the error message.
    bool option(const std::string &key, const std::string &value, const std::vector<std::string> &keys)
    {
        if (!allowed(key, keys))
            return false;
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
            return data_option(key, value, step.expect);
        } else if (key == "until") {
            if (!data_option(key, value, step.until))
                return false;
            if (step.until->empty())
                return fail("until= needs at least one byte");
        } else if (key == "exactly") {
            if (!number(key, value, 1, max_count(), n))
                return false;
            step.count = n;
            step.read_mode = ReadMode::Exactly;
        } else if (key == "context") {
            return data_option(key, value, step.context);
        } else if (key == "context-size") {
            if (!number(key, value, 0, UINT32_MAX, n))
                return false;
            step.context_size = static_cast<uint32_t>(n);
        } else if (key == "repeat") {
            if (!number(key, value, 1, max_step_repeat, n))
                return false;
            step.repeat = static_cast<uint32_t>(n);
        } else if (key == "from" || key == "to") {
            if (value.empty())
                return fail(key + "= needs a file name");
            (key == "from" ? step.from_file : step.to_file) = value;
        }
        return true;
    }

    // Sorts the words after the step's name: positional words come first,
    // then key=value pairs, each key once.
    bool sort_words(const std::vector<std::string> &words)
    {
        for (size_t i = 1; i < words.size(); i++) {
            std::string k, v;
            if (split_pair(words[i], k, v)) {
                for (const auto &seen : pairs)
                    if (seen.first == k)
                        return fail(text::excerpt(k) + "= is given twice");
                pairs.emplace_back(k, v);
            } else {
                if (!pairs.empty())
                    return fail("'" + text::excerpt(words[i]) + "' must come before the key=value arguments");
                positional.push_back(words[i]);
            }
        }
        return true;
    }

    bool want_positional(size_t lo, size_t hi, const char *what)
    {
        if (positional.size() < lo)
            return fail(std::string("missing ") + what);
        if (positional.size() > hi)
            return fail("unexpected '" + text::excerpt(positional[hi]) + "'");
        return true;
    }

    bool options(const std::vector<std::string> &keys)
    {
        for (const auto &[k, v] : pairs)
            if (!option(k, v, keys))
                return false;
        return true;
    }

    // write, request, reply: one DATA, then their options.
    bool data_step(const std::vector<std::string> &keys)
    {
        return want_positional(1, 1, "DATA (a \"quoted string\" or hex:...)") &&
               data(positional[0], "DATA", step.data) && options(keys);
    }

    // connect: its own options, and any other key=value for the plugin (a
    // quoted value unescaped).
    bool connect()
    {
        bool ok = want_positional(0, 0, "");
        for (const auto &[k, v] : pairs) {
            if (!ok)
                break;
            if (k == "timeout" || k == "context" || k == "context-size" || k == "repeat") {
                ok = option(k, v, {"timeout", "context", "context-size"});
            } else {
                std::string value = v;
                if (!v.empty() && v.front() == '"') {
                    text::Bytes b;
                    ok = data(v, text::excerpt(k).c_str(), b);
                    value.assign(b.begin(), b.end());
                }
                step.args.emplace_back(k, value);
            }
        }
        if (ok && step.context && step.context_size)
            if (auto why = context_size_error(step.context->size(), *step.context_size))
                ok = fail(*why);
        return ok;
    }

    // write DATA, or write from=FILE.
    bool write()
    {
        const std::vector<std::string> keys = {"timeout", "offset", "from"};
        if (has("to"))
            return fail("to= is read's (a write sends a file with from=FILE)");
        if (!has("from"))
            return data_step(keys);
        if (!positional.empty())
            return fail("give DATA or from=FILE, not both");
        return options(keys);
    }

    // read N | exactly=N | until=DATA: exactly one of the three; to=FILE
    // with N or exactly=N, without expect=.
    bool read()
    {
        if (!want_positional(0, 1, "N") ||
            !options({"exactly", "until", "timeout", "max", "expect", "offset", "to"}))
            return false;
        int modes = (positional.size() == 1) + (step.read_mode == ReadMode::Exactly) + (step.until.has_value());
        if (modes != 1)
            return fail("give exactly one of N, exactly=N or until=DATA");
        if (step.to_file && step.until)
            return fail("to= takes read N or read exactly=N, not until=");
        if (step.to_file && step.expect)
            return fail("expect= cannot be used with to= (the bytes go to the file, not to the record)");
        if (positional.size() == 1) {
            uint64_t n = 0;
            const bool ok = number("N", positional[0], 1, max_count(), n);
            step.count = n;
            step.read_mode = ReadMode::UpTo;
            return ok;
        }
        if (step.until)
            step.read_mode = ReadMode::Until;
        return true;
    }

    bool control()
    {
        if (!want_positional(1, 2, "CODE (a control name or number)") || !options({"timeout", "max", "expect"}))
            return false;
        step.control = positional[0];
        return positional.size() < 2 || data(positional[1], "DATA", step.data);
    }

    bool sleep()
    {
        if (!want_positional(1, 1, "duration") || !options({}))
            return false;
        int64_t ms = 0;
        const bool ok = duration("duration", positional[0], ms);
        step.sleep_ms = ms;
        return ok;
    }

    // The arguments each kind of step takes.
    bool arguments()
    {
        switch (step.kind) {
        case StepKind::Open:
        case StepKind::Info:
        case StepKind::Lock:
        case StepKind::Unlock:
        case StepKind::Disconnect:
        case StepKind::Close: return want_positional(0, 0, "") && options({"timeout"});
        case StepKind::Connect: return connect();
        case StepKind::Write: return write();
        case StepKind::Read: return read();
        case StepKind::Request: return data_step({"until", "timeout", "max", "expect"});
        case StepKind::GetMessage: return want_positional(0, 0, "") && options({"timeout", "max", "expect"});
        case StepKind::Reply: return data_step({"id", "timeout"});
        case StepKind::Control: return control();
        case StepKind::Sleep: return sleep();
        }
        return false;
    }
};

}  // namespace

std::optional<Step> parse_step(std::string_view line, std::string &error)
{
    auto words = split_words(line);
    if (!words) {
        error = "step '" + text::excerpt(text::trim(line)) + "': unterminated quoted string";
        return std::nullopt;
    }
    if (words->empty()) {
        error = "empty step";
        return std::nullopt;
    }
    const auto kind = step_kind(words->front(), error);
    if (!kind)
        return std::nullopt;
    Parser p{{}, words->front(), error, {}, {}};
    p.step.kind = *kind;
    p.step.text = std::string(text::trim(line));
    if (!p.sort_words(*words))
        return std::nullopt;
    p.file = p.has("from") || p.has("to");
    if (!p.arguments())
        return std::nullopt;
    return std::move(p.step);
}

uint64_t step_runs(const std::vector<Step> &steps)
{
    uint64_t runs = 0;
    for (const Step &s : steps)
        runs += s.repeat;
    return runs;
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
