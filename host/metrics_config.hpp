// The [metrics] section (issue 16, item 4): where `devhost serve` exposes
// its per-device counters and gauges in Prometheus' text format
// (metrics.hpp).
//
//   listen = ADDRESS:PORT   an IPv4 address or a [bracketed] IPv6 address,
//                           and a port from 1 to 65535, e.g. 127.0.0.1:9464;
//                           GET /metrics is served there (prometheus-cpp's
//                           exposer). Required in the section.
//
// No host names: the address is bound as written (no DNS at start, no
// surprise interface). Parsing checks the form; binding is tried when
// serve starts (a port in use ends it with a one-line error).
#pragma once

#include <string>
#include <vector>

namespace devhost {

struct Diagnostic;

struct MetricsSettings {
    bool enabled = false;  // the config has a [metrics] section
    int line = 0;          // its first entry
    std::string listen;    // as written, e.g. 127.0.0.1:9464
    int listen_line = 0;
};

// The [metrics] keys, in the order devhost.ini(5) lists them.
const std::vector<std::string> &metrics_keys();

// Files one `key = value` of [metrics]; false with `error` (one line,
// without the "[metrics] key: " the caller puts before it) when the key is
// unknown or its value malformed.
bool metrics_setting(MetricsSettings &m, const std::string &key, const std::string &value, int line,
                     std::string &error);

// After the last entry: a [metrics] section needs listen.
void metrics_finish(const MetricsSettings &m, const std::string &file, std::vector<Diagnostic> &diags);

}  // namespace devhost
