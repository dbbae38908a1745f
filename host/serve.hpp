// `devhost serve`: the long-running host (README, "Serving"). Each device's
// setup steps run once in a worker that keeps the device open, its body at
// each trigger (`run =`, serve_config.hpp), its teardown on stop, reload or
// a worker's death (then the vault is released as in a run, supervisor.hpp,
// and the device is set up again after the restart ledger's backoff, with
// generation + 1; a class latched failed waits for a reset). A device that
// goes away is torn down and waits for its device to return
// (serve_attach.cpp, device_watch.hpp); a setup that fails with the device
// there is retried with backoff until the restart budget, then the device
// is failed until reset. One loop on one thread: it polls the workers'
// channels and pidfds, a signalfd (SIGTERM and SIGINT stop, SIGHUP
// reloads), the device watch and the control server's descriptor, and
// wakes for the next tick, retry, settle or watchdog ping. It tells systemd
// (notify.hpp) READY once every device's setup has run, STATUS on change,
// WATCHDOG while the loop and every worker answer, RELOADING and READY
// around a reload, STOPPING on stop.
//
// Reload: the new config is loaded and checked whole; a bad one is refused
// (its errors logged and returned) and the old keeps running. Devices whose
// section is unchanged (ignoring line numbers) are not touched; removed and
// changed ones are torn down; added and changed ones are set up.
#pragma once

#include "check.hpp"
#include "control.hpp"
#include "records.hpp"
#include "supervisor.hpp"

#include <csignal>
#include <functional>
#include <memory>
#include <string>

namespace devhost {

// One config, loaded and checked, with the plugins it was checked against.
struct ServeConfig {
    Config config;
    PluginRegistry registry;
    PluginFiles files;
    Plan plan;
};

// Loads and checks the config again (SIGHUP, reload): the new one, or
// nullptr with `error` holding its errors, one per line.
using ServeLoader = std::function<std::shared_ptr<ServeConfig>(std::string &error)>;

// The control server as the loop sees it (control_server.hpp's Server
// behind it): a descriptor to poll, what to do when it is readable, and
// where records ({"record":{...}}) and state changes go.
class ControlPort {
public:
    virtual ~ControlPort() = default;
    virtual int fd() const = 0;
    virtual void process() = 0;
    virtual void publish(const nlohmann::json &event) = 0;
    // Whether a client watches the events (devhost.Monitor): records are
    // sent to the loop as they come only while one does, or a sink listens.
    virtual bool watched() const = 0;
};

// Another listener of the loop's events (the same {"event":"state"} and
// {"event":"record"} the control port gets; a state event also carries the
// device's "class" and "path"), and {"event":"removed","device":NAME} when
// a reload drops a device (its teardown's events follow),
// {"event":"added","device":NAME} before a reload adds one: the MQTT
// publisher, mqtt_publisher.hpp.
// The metrics (metrics.hpp) listen the same way.
// publish() is called on the loop's thread and must not block; start()
// once, when the loop starts, after the first state of every device.
class EventSink {
public:
    virtual ~EventSink() = default;
    virtual void start() = 0;
    virtual void publish(const nlohmann::json &event) = 0;
    // Work from outside for the loop's thread (the fleet's commands,
    // mqtt_commands.hpp): a descriptor the loop polls (-1: none), and
    // process() when it is readable, with the loop's Handler.
    virtual int fd() const { return -1; }
    virtual void process(control::Handler &) {}
};

// The signals serve handles, blocked (in every thread made after) before
// anything starts.
sigset_t serve_signals();

// Serves until SIGTERM or SIGINT; its exit code (0 after a stop).
// `control`, when given, is attached to the loop's Handler by `attach`
// (the server is made with the handler) and polled.
struct ServeSetup {
    std::shared_ptr<ServeConfig> config;
    ServeLoader reload;
    SupervisorSettings settings;
    RecordWriter *records = nullptr;
    std::function<std::unique_ptr<ControlPort>(control::Handler &)> control;
    std::unique_ptr<EventSink> fleet;  // [mqtt]: every event goes to it too
    std::unique_ptr<EventSink> metrics;  // [metrics] (metrics.hpp): and to it
};
int run_serve(ServeSetup setup);

}  // namespace devhost
