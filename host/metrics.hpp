// devhost serve's metrics (issue 16, item 4): Prometheus' text format at
// http://[metrics] listen/metrics, served by Debian's prometheus-cpp
// (its civetweb-based exposer; no HTTP code of ours). Per device (labels
// device and class):
//
//   devhost_device_steps_total{status}        counter: step records by status
//                                             (DEVHOST_OK, DEVHOST_E_...)
//   devhost_device_bodies_total{result}       counter: bodies ok / failed
//   devhost_device_last_success_timestamp_seconds  gauge: the last good
//                                             body (0: none yet)
//   devhost_device_stale                      gauge: 1 while stale
//   devhost_device_generation                 gauge: setups since serve began
//   devhost_device_state{state}               gauge: 1 for the current state
//                                             (setup, idle, running, stale,
//                                             waiting-for-device, failed)
//   devhost_device_worker_restarts_total      counter: the device's worker
//                                             died under it
//
// and devhost_devices (gauge: devices served); with [mqtt], its spool:
// devhost_mqtt_spool_messages and devhost_mqtt_spool_bytes (gauges: what
// waits for the broker's confirmation) and devhost_mqtt_spool_dropped_total
// (counter: dropped over spool-max-bytes or spool-max-age).
//
// Threading: the loop's events (publish(), EventSink) and a 1 s timerfd
// the loop polls (fd(); process() reads the loop's Handler::list()) update
// a snapshot under a mutex; the exposer's threads read it at each scrape.
// A device a reload removes leaves the metrics at its next refresh.
#pragma once

#include "metrics_config.hpp"
#include "mqtt_spool.hpp"
#include "serve.hpp"

#include <functional>
#include <memory>
#include <string>

namespace devhost {

// The metrics for `m`, their endpoint listening already; nullptr with
// `error` (one line naming the address) when it cannot listen.
// `spool`, when given, is read each second for the spool's figures.
std::unique_ptr<EventSink> make_metrics(const MetricsSettings &m, std::string &error,
                                        std::function<SpoolStats()> spool = nullptr);

}  // namespace devhost
