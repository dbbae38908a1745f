#include "common/text.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace devhost::text {

std::vector<std::string> split(const std::string &s, char sep)
{
    std::vector<std::string> parts;
    std::string part;
    std::istringstream in(s);
    while (std::getline(in, part, sep))
        parts.push_back(part);
    return parts;
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); i++)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

std::optional<int64_t> parse_duration_ms(std::string_view s)
{
    s = trim(s);
    if (s.empty())
        return std::nullopt;
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.'))
        i++;
    std::string number(s.substr(0, i));
    std::string_view unit = s.substr(i);
    if (number.empty() || number.front() == '.' || number.back() == '.' ||
        number.find('.') != number.rfind('.'))
        return std::nullopt;
    double value = std::strtod(number.c_str(), nullptr);
    double factor;
    if (unit == "ms")
        factor = 1;
    else if (unit == "s")
        factor = 1000;
    else if (unit == "m" || unit == "min")
        factor = 60000;
    else if (unit == "us")
        factor = 0.001;
    else if (unit.empty() && value == 0)
        factor = 0;
    else
        return std::nullopt;
    double ms = std::ceil(value * factor);
    if (ms > 365.0 * 24 * 3600 * 1000)
        return std::nullopt;
    return static_cast<int64_t>(ms);
}

std::string format_duration_ms(int64_t ms)
{
    if (ms >= 1000 && ms % 1000 == 0)
        return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

std::string excerpt(std::string_view s, size_t max)
{
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (char c : s.substr(0, max)) {
        const auto b = static_cast<unsigned char>(c);
        if (b < 0x20 || b == 0x7f) {
            out += "\\x";
            out.push_back(digits[b >> 4]);
            out.push_back(digits[b & 15]);
        } else {
            out.push_back(c);
        }
    }
    if (s.size() > max)
        out += "...(" + std::to_string(s.size()) + " bytes)";
    return out;
}

std::string closest(std::string_view word, const std::vector<std::string> &candidates)
{
    // Words this long are no misspelling of a name; and the table below
    // stays small.
    if (word.size() > 64)
        return "";
    std::string best;
    size_t best_distance = 3;
    for (const auto &c : candidates) {
        std::vector<size_t> prev(c.size() + 1), cur(c.size() + 1);
        for (size_t j = 0; j <= c.size(); j++)
            prev[j] = j;
        for (size_t i = 1; i <= word.size(); i++) {
            cur[0] = i;
            for (size_t j = 1; j <= c.size(); j++)
                cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (word[i - 1] != c[j - 1])});
            std::swap(prev, cur);
        }
        if (prev[c.size()] < best_distance) {
            best_distance = prev[c.size()];
            best = c;
        }
    }
    return best;
}

std::optional<int64_t> parse_int(std::string_view s)
{
    s = trim(s);
    bool negative = false;
    if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
        negative = s.front() == '-';
        s.remove_prefix(1);
    }
    int base = 10;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s.remove_prefix(2);
    }
    if (s.empty())
        return std::nullopt;
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
    if (ec != std::errc() || end != s.data() + s.size())
        return std::nullopt;
    if (value > static_cast<uint64_t>(INT64_MAX))
        return std::nullopt;
    int64_t v = static_cast<int64_t>(value);
    return negative ? -v : v;
}

std::optional<bool> parse_bool(std::string_view s)
{
    s = trim(s);
    for (auto t : {"true", "yes", "on", "1"})
        if (iequals(s, t))
            return true;
    for (auto f : {"false", "no", "off", "0"})
        if (iequals(s, f))
            return false;
    return std::nullopt;
}

namespace {

int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

// The digits after "hex:": pairs, a space, ':' or '_' allowed between bytes.
std::optional<Bytes> parse_hex(std::string_view digits, std::string &error)
{
    Bytes out;
    int high = -1;
    for (char c : digits) {
        if (c == ' ' || c == ':' || c == '_') {
            if (high >= 0) {
                error = "hex data has an odd digit before a separator";
                return std::nullopt;
            }
            continue;
        }
        int v = hex_value(c);
        if (v < 0) {
            error = std::string("hex data has a non-hex character '") + c + "'";
            return std::nullopt;
        }
        if (high < 0) {
            high = v;
        } else {
            out.push_back(static_cast<uint8_t>(high << 4 | v));
            high = -1;
        }
    }
    if (high >= 0) {
        error = "hex data has an odd number of digits";
        return std::nullopt;
    }
    return out;
}

// Why `s`, which opens a quote, is not one quoted string: either the string
// never closes, or something follows its close.
std::string unclosed_quote_error(std::string_view s)
{
    for (size_t i = 1; i < s.size(); i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return "unexpected '" + excerpt(s.substr(i + 1)) + "' after the closing quote";
    }
    return "missing closing quote";
}

// One backslash escape of a quoted string; `i` is at the character after the
// backslash and is left at the escape's last character.
bool unescape(std::string_view s, size_t &i, Bytes &out, std::string &error)
{
    switch (s[i]) {
    case 'n': out.push_back('\n'); return true;
    case 'r': out.push_back('\r'); return true;
    case 't': out.push_back('\t'); return true;
    case '0': out.push_back('\0'); return true;
    case 'e': out.push_back(0x1b); return true;
    case 'a': out.push_back(0x07); return true;
    case 'b': out.push_back(0x08); return true;
    case 'f': out.push_back(0x0c); return true;
    case 'v': out.push_back(0x0b); return true;
    case '\\': out.push_back('\\'); return true;
    case '"': out.push_back('"'); return true;
    case '\'': out.push_back('\''); return true;
    case 'x': break;
    default: error = std::string("unknown escape '\\") + s[i] + "'"; return false;
    }
    int h = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
    int l = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
    if (h < 0 || l < 0) {
        error = "\\x needs two hex digits";
        return false;
    }
    out.push_back(static_cast<uint8_t>(h << 4 | l));
    i += 2;
    return true;
}

// A "C-escaped string", quotes included.
std::optional<Bytes> parse_quoted(std::string_view s, std::string &error)
{
    if (!s.empty() && s.front() == '"' && (s.size() < 2 || s.back() != '"')) {
        error = unclosed_quote_error(s);
        return std::nullopt;
    }
    if (s.size() < 2 || s.front() != '"' || s.back() != '"') {
        error = "data must be a \"quoted string\" or hex:...";
        return std::nullopt;
    }
    s = s.substr(1, s.size() - 2);
    Bytes out;
    for (size_t i = 0; i < s.size(); i++) {
        const char c = s[i];
        if (c == '"') {
            error = "unescaped '\"' inside a quoted string";
            return std::nullopt;
        }
        if (c != '\\') {
            out.push_back(static_cast<uint8_t>(c));
            continue;
        }
        if (++i >= s.size()) {
            error = "quoted string ends with a lone backslash";
            return std::nullopt;
        }
        if (!unescape(s, i, out, error))
            return std::nullopt;
    }
    return out;
}

}  // namespace

std::optional<Bytes> parse_data(std::string_view s, std::string &error)
{
    if (s.rfind("hex:", 0) == 0)
        return parse_hex(s.substr(4), error);
    return parse_quoted(s, error);
}

std::string to_hex(const uint8_t *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (size_t i = 0; i < len; i++) {
        out.push_back(digits[data[i] >> 4]);
        out.push_back(digits[data[i] & 15]);
    }
    return out;
}

std::string to_printable(const uint8_t *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(len);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = data[i];
        switch (c) {
        case '\r': out += "\\r"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\0': out += "\\0"; break;
        case '\\': out += "\\\\"; break;
        default:
            if (c >= 0x20 && c < 0x7f) {
                out.push_back(static_cast<char>(c));
            } else {
                out += "\\x";
                out.push_back(digits[c >> 4]);
                out.push_back(digits[c & 15]);
            }
        }
    }
    return out;
}

}  // namespace devhost::text
