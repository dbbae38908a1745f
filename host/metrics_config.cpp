#include "metrics_config.hpp"

#include "config.hpp"

#include "common/text.hpp"

#include <arpa/inet.h>
#include <charconv>

namespace devhost {

namespace {

std::string q(const std::string &s) { return "'" + text::excerpt(s) + "'"; }

// ADDRESS:PORT with an IPv4 literal or a [bracketed] IPv6 literal.
bool valid_listen(const std::string &value)
{
    std::string host, port;
    if (!value.empty() && value.front() == '[') {
        const auto close = value.find("]:");
        if (close == std::string::npos)
            return false;
        host = value.substr(1, close - 1);
        port = value.substr(close + 2);
        in6_addr a6{};
        if (inet_pton(AF_INET6, host.c_str(), &a6) != 1)
            return false;
    } else {
        const auto colon = value.rfind(':');
        if (colon == std::string::npos)
            return false;
        host = value.substr(0, colon);
        port = value.substr(colon + 1);
        in_addr a4{};
        if (inet_pton(AF_INET, host.c_str(), &a4) != 1)
            return false;
    }
    int n = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    return ec == std::errc() && end == port.data() + port.size() && n >= 1 && n <= 65535;
}

}  // namespace

const std::vector<std::string> &metrics_keys()
{
    static const std::vector<std::string> keys = {"listen"};
    return keys;
}

bool metrics_setting(MetricsSettings &m, const std::string &key, const std::string &value, int line,
                     std::string &error)
{
    m.enabled = true;
    m.line = m.line ? m.line : line;
    if (key != "listen") {
        const std::string hint = text::closest(key, metrics_keys());
        error = hint.empty() ? "unknown key (expected listen)" : "unknown key (did you mean '" + hint + "'?)";
        return false;
    }
    m.listen_line = line;  // given, even if malformed: not also "missing"
    if (!valid_listen(value)) {
        error = "expected ADDRESS:PORT (an IPv4 address or [IPv6 address], a port from 1 to 65535), like "
                "127.0.0.1:9464, got " +
                q(value);
        return false;
    }
    m.listen = value;
    return true;
}

void metrics_finish(const MetricsSettings &m, const std::string &file, std::vector<Diagnostic> &diags)
{
    if (m.enabled && !m.listen_line)
        diags.push_back({file, m.line, "[metrics]: missing 'listen = ADDRESS:PORT'"});
}

}  // namespace devhost
