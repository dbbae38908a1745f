// The fleet module: devhost serve's [mqtt] publisher and [metrics] endpoint
// (mqtt_publisher.hpp, metrics.hpp) live in lib/devhost/fleet.so, next to
// the plugins' directory, not in the devhost executable. They need
// libmosquitto (with libssl and libcrypto) and prometheus-cpp (with
// civetweb and zlib), and every devhost command would otherwise map and
// relocate those libraries at start: `devhost check` took about 2 ms of CPU
// and 2 MiB of RSS more for libraries it never calls (bench/README.md).
//
// serve loads the module only when the config has [mqtt] or [metrics], the
// way a plugin is loaded: the file and every directory on its way checked
// by descriptor (trusted_file.hpp), its ELF header checked, and dlopen'd
// through /proc/self/fd (loader.hpp's load_trusted_library).
//
// This is no ABI: C++ types cross it (the settings, EventSink, nlohmann
// json), so the module must come from the same build as the executable; the
// package installs both. The entry checks the version and a layout
// fingerprint of what crosses, and refuses a module from another build.
#pragma once

#include "metrics_config.hpp"
#include "mqtt_config.hpp"
#include "mqtt_spool.hpp"
#include "serve.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace devhost {

struct FleetModule {
    const char *version;   // DEVHOST_VERSION of the module's build
    uint64_t layout;       // fleet_layout() of the module's build
    std::unique_ptr<EventSink> (*make_mqtt_publisher)(const MqttSettings &m, std::string &error);
    SpoolStats (*mqtt_spool_stats)(EventSink &sink);
    std::unique_ptr<EventSink> (*make_metrics)(const MetricsSettings &m, std::string &error,
                                              std::function<SpoolStats()> spool);
};

// The module's one exported symbol: extern "C" const FleetModule *devhost_fleet_module(void).
inline constexpr const char *fleet_module_symbol = "devhost_fleet_module";

// A fingerprint of the sizes of what crosses between executable and module;
// both sides compute it from their own headers.
constexpr uint64_t fleet_layout()
{
    uint64_t h = 1469598103934665603ULL;  // FNV-1a over the sizes
    for (uint64_t s : {sizeof(FleetModule), sizeof(MqttSettings), sizeof(MetricsSettings), sizeof(SpoolStats),
                       sizeof(std::string), sizeof(std::function<SpoolStats()>), sizeof(nlohmann::json)}) {
        h ^= s;
        h *= 1099511628211ULL;
    }
    return h;
}

// Where the module is: ../lib/devhost/fleet.so relative to the executable
// (the build tree has the install tree's layout); empty with `error` when
// the executable's own path cannot be found.
std::filesystem::path fleet_module_path(std::string &error);

// Why the module cannot be used, without loading it (devhost check: the
// file and its directories checked as serve will), or "".
std::string fleet_module_refusal();

// The module, loaded once per process (later calls return the same);
// nullptr with `error`, one line naming the file and what is wrong with it.
const FleetModule *load_fleet_module(std::string &error);

}  // namespace devhost
