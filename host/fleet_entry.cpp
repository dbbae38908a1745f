// The fleet module's entry (fleet_module.hpp): built into lib/devhost/fleet.so
// with the publisher and the metrics, never into the executable.
#include "fleet_module.hpp"
#include "metrics.hpp"
#include "mqtt_publisher.hpp"

namespace {

std::unique_ptr<devhost::EventSink> make_metrics(const devhost::MetricsSettings &m, std::string &error,
                                                 std::function<devhost::SpoolStats()> spool)
{
    return devhost::make_metrics(m, error, std::move(spool));
}

const devhost::FleetModule module{
    DEVHOST_VERSION, devhost::fleet_layout(), devhost::make_mqtt_publisher, devhost::mqtt_spool_stats, make_metrics,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const devhost::FleetModule *devhost_fleet_module(void)
{
    return &module;
}
