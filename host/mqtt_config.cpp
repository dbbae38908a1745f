#include "mqtt_config.hpp"

#include "config.hpp"

#include "common/text.hpp"
#include "trusted_file.hpp"

#include <cerrno>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace devhost {

namespace {

std::string q(const std::string &s) { return "'" + text::excerpt(s) + "'"; }

// mqtt://HOST[:PORT] or mqtts://HOST[:PORT], a trailing '/' allowed; no
// user or password in it (a config file is readable by more than root:
// the password comes from password-file).
bool parse_broker(MqttSettings &m, const std::string &url, std::string &error)
{
    const auto expected = [&](const std::string &why) {
        error = why + " (expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]), got " + q(url);
        return false;
    };
    std::string rest;
    if (url.rfind("mqtt://", 0) == 0) {
        m.tls = false;
        rest = url.substr(7);
    } else if (url.rfind("mqtts://", 0) == 0) {
        m.tls = true;
        rest = url.substr(8);
    } else {
        return expected("unknown scheme");
    }
    if (!rest.empty() && rest.back() == '/')
        rest.pop_back();
    if (rest.find('@') != std::string::npos)
        return expected("no user or password in the URL: use username and password-file");
    if (rest.find_first_of("/?# \t") != std::string::npos)
        return expected("no path, query or space");
    std::string host = rest, port;
    if (!rest.empty() && rest.front() == '[') {  // [v6 address]
        const size_t close = rest.find(']');
        if (close == std::string::npos)
            return expected("an unclosed '['");
        host = rest.substr(1, close - 1);
        if (close + 1 < rest.size()) {
            if (rest[close + 1] != ':')
                return expected("something after ']'");
            port = rest.substr(close + 2);
        }
    } else if (const size_t colon = rest.find(':'); colon != std::string::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    if (host.empty())
        return expected("no host");
    m.host = host;
    m.port = m.tls ? 8883 : 1883;
    if (rest.find(':') != std::string::npos && !(rest.front() == '[' && rest.back() == ']')) {
        const auto n = text::parse_int(port);
        if (!n || *n < 1 || *n > 65535)
            return expected("a port from 1 to 65535");
        m.port = static_cast<int>(*n);
    }
    return true;
}

bool parse_allow_commands(MqttSettings &m, const std::string &value, std::string &error)
{
    static const std::vector<std::string> known = {"call", "reset", "rebirth"};
    std::istringstream words(value);
    std::string word;
    while (words >> word) {
        if (!word.empty() && word.back() == ',')
            word.pop_back();
        if (word.empty())
            continue;
        bool ok = false;
        for (const auto &k : known)
            ok = ok || k == word;
        if (!ok) {
            const std::string hint = text::closest(word, known);
            error = "expected call, reset or rebirth, got " + q(word) +
                    (hint.empty() ? "" : " (did you mean '" + hint + "'?)");
            return false;
        }
        m.allow_commands.push_back(word);
    }
    return true;
}

bool absolute_file(const std::string &value, std::optional<std::string> &out, std::string &error)
{
    if (value.empty() || value.front() != '/') {
        error = "expected an absolute file path, got " + q(value);
        return false;
    }
    out = value;
    return true;
}

// Keys whose value is a topic level or a client id.
bool level_value(const std::string &value, std::string &out, std::string &error, const char *what)
{
    if (auto problem = topic_level_problem(value); !problem.empty()) {
        error = std::string("expected ") + what + ", got " + q(value) + ": " + problem;
        return false;
    }
    out = value;
    return true;
}

bool prefix_value(const std::string &value, std::string &out, std::string &error)
{
    const auto levels = text::split(value, '/');
    for (const auto &level : levels)
        if (auto problem = topic_level_problem(level); !problem.empty()) {
            error = "expected topic levels separated by '/', like devhost or site/devhost, got " + q(value) +
                    ": a level " + problem;
            return false;
        }
    if (!value.empty() && value.front() == '$') {
        error = "expected a prefix not starting with '$' (the broker's own topics), got " + q(value);
        return false;
    }
    out = value;
    return true;
}

// "30s", "15m", "12h", "7d": a whole number and its unit.
std::optional<int64_t> parse_age_ms(const std::string &value)
{
    if (value.size() < 2 || value.size() > 12)
        return std::nullopt;
    const std::string digits = value.substr(0, value.size() - 1);
    if (digits.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    static const std::string units = "smhd";
    static const int64_t factors[] = {1000, 60000, 3600000, 86400000};
    const size_t unit = units.find(value.back());
    if (unit == std::string::npos)
        return std::nullopt;
    return std::stoll(digits) * factors[unit];
}

bool set_value(MqttSettings &m, const std::string &key, const std::string &value, int line, std::string &error)
{
    std::string s;
    if (key == "broker") {
        m.broker = value;
        m.broker_line = line;
        return parse_broker(m, value, error);
    }
    if (key == "protocol") {
        if (value != "3.1.1" && value != "5") {
            error = "expected 3.1.1 or 5, got " + q(value);
            return false;
        }
        m.mqtt5 = value == "5";
    } else if (key == "client-id") {
        if (!level_value(value, s, error, "a client id"))
            return false;
        m.client_id = s;
    } else if (key == "group") {
        return level_value(value, m.group, error, "a group name");
    } else if (key == "node") {
        m.node_line = line;
        if (!level_value(value, s, error, "a node name"))
            return false;
        m.node = s;
    } else if (key == "topic-prefix") {
        return prefix_value(value, m.prefix, error);
    } else if (key == "qos") {
        if (value != "0" && value != "1" && value != "2") {
            error = "expected 0, 1 or 2, got " + q(value);
            return false;
        }
        m.qos = value[0] - '0';
    } else if (key == "keepalive") {
        const auto ms = text::parse_duration_ms(value);
        if (!ms || *ms < 5000 || *ms > 65535000 || *ms % 1000) {
            error = "expected whole seconds from 5s to 65535s, like 30s, got " + q(value);
            return false;
        }
        m.keepalive_s = static_cast<int>(*ms / 1000);
    } else if (key == "username") {
        m.username_line = line;
        if (value.empty() || value.size() > 256 || value.find_first_of(std::string("\0", 1)) != std::string::npos) {
            error = "expected a user name of 1 to 256 bytes";
            return false;
        }
        m.username = value;
    } else if (key == "password-file") {
        m.password_file_line = line;
        return absolute_file(value, m.password_file, error);
    } else if (key == "ca-file") {
        m.ca_file_line = line;
        return absolute_file(value, m.ca_file, error);
    } else if (key == "cert-file") {
        m.cert_file_line = line;
        return absolute_file(value, m.cert_file, error);
    } else if (key == "key-file") {
        m.key_file_line = line;
        return absolute_file(value, m.key_file, error);
    } else if (key == "allow-commands") {
        return parse_allow_commands(m, value, error);
    } else if (key == "spool-max-bytes") {
        const auto n = parse_byte_size(value);
        if (!n || *n < 4096 || *n > (1024ull << 30)) {
            error = "expected a size from 4K to 1024G, like 64M, got " + q(value);
            return false;
        }
        m.spool_max_bytes = *n;
    } else if (key == "spool-max-age") {
        const auto ms = parse_age_ms(value);
        if (!ms || *ms < 1000 || *ms > 3650ll * 24 * 3600 * 1000) {
            error = "expected whole seconds, minutes, hours or days from 1s to 3650d, like 7d or 12h, got " +
                    q(value);
            return false;
        }
        m.spool_max_age_ms = *ms;
    }
    return true;
}

std::string machine_id()
{
    int fd = ::open("/etc/machine-id", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return "";
    char buf[64] = {};
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    std::string id(buf, n > 0 ? static_cast<size_t>(n) : 0);
    id = std::string(text::trim(id));
    return topic_level_problem(id).empty() ? id : "";
}

}  // namespace

const std::vector<std::string> &mqtt_keys()
{
    static const std::vector<std::string> keys = {
        "broker",   "protocol", "client-id", "group",         "node",    "topic-prefix",  "qos",
        "keepalive", "username", "password-file", "ca-file", "cert-file", "key-file", "allow-commands", "spool-max-bytes", "spool-max-age"};
    return keys;
}

bool mqtt_setting(MqttSettings &m, const std::string &key, const std::string &value, int line, std::string &error)
{
    m.enabled = true;
    m.line = m.line ? m.line : line;
    bool known = false;
    for (const auto &k : mqtt_keys())
        known = known || k == key;
    if (!known) {
        const std::string hint = text::closest(key, mqtt_keys());
        std::string list;
        for (const auto &k : mqtt_keys())
            list += (list.empty() ? "" : ", ") + k;
        error = hint.empty() ? "unknown key (expected " + list + ")" : "unknown key (did you mean '" + hint + "'?)";
        return false;
    }
    return set_value(m, key, value, line, error);
}

void mqtt_finish(const MqttSettings &m, const std::string &file, std::vector<Diagnostic> &diags)
{
    if (!m.enabled)
        return;
    if (m.broker.empty())
        diags.push_back({file, m.line, "[mqtt]: missing 'broker = mqtt://HOST[:PORT]'"});
    const auto tls_only = [&](const std::optional<std::string> &key, int line, const char *name, const char *what) {
        if (key && !m.tls && !m.broker.empty())
            diags.push_back({file, line, std::string("[mqtt] ") + name + ": " + what +
                                             " is for an mqtts:// broker; broker is " + q(m.broker)});
    };
    tls_only(m.ca_file, m.ca_file_line, "ca-file", "a CA file");
    tls_only(m.cert_file, m.cert_file_line, "cert-file", "a client certificate");
    tls_only(m.key_file, m.key_file_line, "key-file", "a client key");
    if (m.cert_file && !m.key_file)
        diags.push_back({file, m.cert_file_line, "[mqtt] cert-file: needs 'key-file = ...' (its private key)"});
    if (m.key_file && !m.cert_file)
        diags.push_back({file, m.key_file_line, "[mqtt] key-file: needs 'cert-file = ...' (its certificate)"});
    if (m.password_file && !m.username)
        diags.push_back({file, m.password_file_line, "[mqtt] password-file: needs 'username = ...'"});
    if (m.username && !m.password_file)
        diags.push_back({file, m.username_line, "[mqtt] username: needs 'password-file = ...' (no password in the "
                                                "config: it is readable by more than root)"});
}

std::string topic_level_problem(const std::string &name)
{
    if (name.empty())
        return "is empty";
    if (name.size() > 128)
        return "is longer than 128 bytes";
    for (char c : name) {
        if (c == '/' || c == '+' || c == '#')
            return std::string("has a '") + c + "' (MQTT topic syntax)";
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return "has a control character";
    }
    return "";
}

namespace {

// Whose a file devhost trusts may be: root's, or the user's devhost runs as.
std::string trusted_owners()
{
    const uid_t me = ::geteuid();
    return me == 0 ? "root's" : "root's or devhost's own (uid " + std::to_string(me) + ")";
}

}  // namespace

UniqueFd open_private_file(const std::string &path, const std::string &what, int64_t max_bytes,
                           std::string &error)
{
    const std::string shown = what + " " + q(path);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd) {
        error = "cannot open " + shown + ": " + std::strerror(errno);
        return fd;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        error = "cannot stat " + shown + ": " + std::strerror(errno);
        return UniqueFd();
    }
    if (!S_ISREG(st.st_mode)) {
        error = shown + " is not a regular file";
        return UniqueFd();
    }
    if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
        error = shown + " is owned by uid " + std::to_string(st.st_uid) + ": it must be " + trusted_owners();
        return UniqueFd();
    }
    if (st.st_mode & 077) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        error = shown + " has mode " + mode + ": others may read it (chmod 600 it)";
        return UniqueFd();
    }
    if (st.st_size > max_bytes) {
        error = shown + " is over " + std::to_string(max_bytes) + " bytes";
        return UniqueFd();
    }
    return fd;
}

UniqueFd open_ca_file(const std::string &path, std::string &error)
{
    using Kind = TrustRefusal::Kind;
    const std::string shown = "CA file " + q(path);
    struct stat st {};
    TrustRefusal why;
    UniqueFd fd = open_trusted_file(path, st, why);
    if (fd)
        return fd;
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(why.mode & 07777));
    const std::string whose = trusted_owners();
    const std::string dir = "the directory " + q(why.path) + " of " + shown;
    switch (why.kind) {
    case Kind::Open:
        error = "cannot open " + shown + (why.path.empty() || why.path == path ? "" : " (at " + q(why.path) + ")") +
                ": " + std::strerror(why.os_errno);
        break;
    case Kind::NotRegular:
        error = shown + " is not a regular file";
        break;
    case Kind::FileWritable:
        error = shown + " has mode " + mode + ": others may change it, and with it which brokers devhost trusts";
        break;
    case Kind::FileOwner:
        error = shown + " is owned by uid " + std::to_string(why.uid) + ": it must be " + whose;
        break;
    case Kind::DirWritable:
        error = dir + " has mode " + mode + ": others may replace the CA file in it";
        break;
    case Kind::DirOwner:
        error = dir + " is owned by uid " + std::to_string(why.uid) + ": it must be " + whose;
        break;
    case Kind::LinkOwner:
        error = "the symlink " + q(why.path) + " on the way to " + shown + " is owned by uid " +
                std::to_string(why.uid) + " in a directory others may write to";
        break;
    case Kind::Changed:
    case Kind::None:
        error = shown + " was replaced while it was checked";
        break;
    }
    return fd;
}

std::optional<std::string> read_password_file(const std::string &path, std::string &error)
{
    const UniqueFd fd = open_private_file(path, "password file", 4096, error);
    if (!fd)
        return std::nullopt;
    const std::string shown = "password file " + q(path);
    char buf[4097];
    const ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
    if (n < 0) {
        error = "cannot read " + shown + ": " + std::strerror(errno);
        return std::nullopt;
    }
    std::string content(buf, static_cast<size_t>(n));
    content = content.substr(0, content.find('\n'));
    if (!content.empty() && content.back() == '\r')
        content.pop_back();
    if (content.empty()) {
        error = shown + " is empty (its first line is the password)";
        return std::nullopt;
    }
    return content;
}

void check_mqtt(const Config &config, std::vector<Diagnostic> &diags)
{
    const MqttSettings &m = config.mqtt;
    if (!m.enabled)
        return;
    const std::string file = config.file.string();
    if (m.password_file) {
        std::string error;
        if (!read_password_file(*m.password_file, error))
            diags.push_back({file, m.password_file_line, "[mqtt] password-file: " + error});
    }
    if (m.key_file) {
        std::string error;
        if (!open_private_file(*m.key_file, "key file", max_key_file_bytes, error))
            diags.push_back({file, m.key_file_line, "[mqtt] key-file: " + error});
    }
    if (m.ca_file) {
        std::string error;
        if (!open_ca_file(*m.ca_file, error))
            diags.push_back({file, m.ca_file_line, "[mqtt] ca-file: " + error});
    }
    // The client's certificate is public: a regular file that opens is enough.
    const auto readable = [&](const std::optional<std::string> &path, int line, const char *key) {
        if (!path)
            return;
        const UniqueFd fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
        struct stat st {};
        if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
            diags.push_back({file, line, std::string("[mqtt] ") + key + ": " + q(*path) + ": " +
                                             (!fd ? std::strerror(errno) : "not a regular file")});
    };
    readable(m.cert_file, m.cert_file_line, "cert-file");
    if (!m.node) {
        const std::string node = mqtt_node(m);
        if (auto problem = topic_level_problem(node); !problem.empty())
            diags.push_back({file, m.line, "[mqtt]: the host name " + q(node) + " " + problem +
                                               ": set 'node = NAME'"});
    }
    for (const auto &d : config.devices)
        if (auto problem = topic_level_problem(d.name); !problem.empty())
            diags.push_back({file, d.line, "[device " + text::excerpt(d.name) + "]: its name " + problem +
                                               ", so it cannot be a topic level of [mqtt]"});
}

std::optional<uint64_t> parse_byte_size(const std::string &value)
{
    if (value.empty())
        return std::nullopt;
    std::string digits = value;
    unsigned shift = 0;
    switch (value.back()) {
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    default: break;
    }
    if (shift)
        digits.pop_back();
    if (digits.empty() || digits.size() > 12 || digits.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    return std::stoull(digits) << shift;
}

std::string mqtt_node(const MqttSettings &m)
{
    if (m.node)
        return *m.node;
    char host[HOST_NAME_MAX + 1] = {};
    if (::gethostname(host, sizeof host - 1) != 0)
        return "";
    return host;
}

std::string mqtt_client_id(const MqttSettings &m)
{
    if (m.client_id)
        return *m.client_id;
    const std::string id = machine_id();
    return "devhost-" + (id.empty() ? mqtt_node(m) : id);
}

}  // namespace devhost
