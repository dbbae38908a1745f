#include "metrics.hpp"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <mutex>
#include <sys/timerfd.h>
#include <system_error>
#include <unistd.h>

namespace devhost {

namespace {

using json = nlohmann::json;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

struct DeviceNumbers {
    std::string cls, state;
    std::map<std::string, uint64_t> steps;  // by status
    uint64_t bodies_ok = 0, bodies_failed = 0, worker_restarts = 0;
    int64_t generation = 0;
    double last_success = 0;
    bool listed = true;  // in the last list(): a device that is not leaves
};

// "2026-11-30T17:04:09Z" (list()'s last_success) as seconds since the epoch.
double epoch_seconds(const json &iso)
{
    if (!iso.is_string())
        return 0;
    std::tm tm{};
    const char *end = strptime(iso.get_ref<const std::string &>().c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return end && *end == '\0' ? static_cast<double>(timegm(&tm)) : 0;
}

// The snapshot, and the families a scrape reads from it.
class DeviceCollector : public prometheus::Collectable {
public:
    std::vector<MetricFamily> Collect() const override
    {
        std::lock_guard lock(mutex_);
        MetricFamily steps{"devhost_device_steps_total", "Step records by status", MetricType::Counter, {}};
        MetricFamily bodies{"devhost_device_bodies_total", "Bodies run, by result", MetricType::Counter, {}};
        MetricFamily last{"devhost_device_last_success_timestamp_seconds",
                          "When the device's last body succeeded (0: none yet)", MetricType::Gauge, {}};
        MetricFamily stale{"devhost_device_stale", "1 while the device is stale", MetricType::Gauge, {}};
        MetricFamily generation{"devhost_device_generation", "The device's setups since serve started",
                                MetricType::Gauge, {}};
        MetricFamily state{"devhost_device_state", "1 for the device's current state", MetricType::Gauge, {}};
        MetricFamily restarts{"devhost_device_worker_restarts_total", "Deaths of the device's worker under it",
                              MetricType::Counter, {}};
        MetricFamily count{"devhost_devices", "Devices served", MetricType::Gauge, {}};
        for (const auto &[name, d] : devices_) {
            const std::vector<ClientMetric::Label> labels{{"class", d.cls}, {"device", name}};
            const auto with = [&](const std::string &key, const std::string &value) {
                auto l = labels;
                l.push_back({key, value});
                return l;
            };
            for (const auto &[status, n] : d.steps)
                steps.metric.push_back(counter(with("status", status), n));
            bodies.metric.push_back(counter(with("result", "ok"), d.bodies_ok));
            bodies.metric.push_back(counter(with("result", "failed"), d.bodies_failed));
            last.metric.push_back(gauge(labels, d.last_success));
            stale.metric.push_back(gauge(labels, d.state == "stale"));
            generation.metric.push_back(gauge(labels, static_cast<double>(d.generation)));
            for (const char *s : control::device_states)
                state.metric.push_back(gauge(with("state", s), d.state == s));
            restarts.metric.push_back(counter(labels, d.worker_restarts));
        }
        count.metric.push_back(gauge({}, static_cast<double>(devices_.size())));
        std::vector<MetricFamily> all{steps, bodies, last, stale, generation, state, restarts, count};
        if (spool_) {  // [mqtt]: its spool
            MetricFamily depth{"devhost_mqtt_spool_messages", "Messages in the MQTT spool, not yet confirmed",
                               MetricType::Gauge, {gauge({}, static_cast<double>(spool_->depth))}};
            MetricFamily bytes{"devhost_mqtt_spool_bytes", "Their bytes", MetricType::Gauge,
                               {gauge({}, static_cast<double>(spool_->bytes))}};
            MetricFamily dropped{"devhost_mqtt_spool_dropped_total", "Messages the spool dropped (over a bound)",
                                 MetricType::Counter, {counter({}, spool_->dropped)}};
            all.insert(all.end(), {depth, bytes, dropped});
        }
        return all;
    }

    // A record counts a step; a state event sets the state at once.
    void event(const json &ev)
    {
        const std::string kind = ev.value("event", "");
        std::lock_guard lock(mutex_);
        if (kind == "record" && ev.contains("record") && ev["record"].is_object()) {
            const json &r = ev["record"];
            const std::string device = r.value("device", "");
            if (!device.empty())
                devices_[device].steps[r.value("status", "unknown")]++;
        } else if (kind == "state") {
            DeviceNumbers &d = devices_[ev.value("device", "")];
            d.state = ev.value("state", "");
            d.cls = ev.value("class", d.cls);
            d.generation = ev.value("generation", d.generation);
        }
    }

    void spool(SpoolStats stats)
    {
        std::lock_guard lock(mutex_);
        spool_ = stats;
    }

    // The loop's own numbers (Handler::list()); a device not listed leaves.
    void refresh(const json &list)
    {
        std::lock_guard lock(mutex_);
        for (auto &[name, d] : devices_)
            d.listed = false;
        for (const auto &l : list) {
            DeviceNumbers &d = devices_[l.value("device", "")];
            d.listed = true;
            d.cls = l.value("class", d.cls);
            d.state = l.value("state", d.state);
            d.generation = l.value("generation", d.generation);
            d.bodies_ok = l.value("bodies_ok", d.bodies_ok);
            d.bodies_failed = l.value("bodies_failed", d.bodies_failed);
            d.worker_restarts = l.value("worker_restarts", d.worker_restarts);
            d.last_success = epoch_seconds(l.value("last_success", json()));
        }
        std::erase_if(devices_, [](const auto &kv) { return !kv.second.listed; });
    }

private:
    static ClientMetric counter(std::vector<ClientMetric::Label> labels, uint64_t n)
    {
        ClientMetric m;
        m.label = std::move(labels);
        m.counter.value = static_cast<double>(n);
        return m;
    }
    static ClientMetric gauge(std::vector<ClientMetric::Label> labels, double v)
    {
        ClientMetric m;
        m.label = std::move(labels);
        m.gauge.value = v;
        return m;
    }

    mutable std::mutex mutex_;
    std::map<std::string, DeviceNumbers> devices_;
    std::optional<SpoolStats> spool_;
};

class Metrics : public EventSink {
public:
    Metrics(const MetricsSettings &m, std::function<SpoolStats()> spool)
        : spool_(std::move(spool)), exposer_(m.listen, 2), collector_(std::make_shared<DeviceCollector>()),
          timer_(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK))
    {
        if (!timer_)
            throw std::system_error(errno, std::generic_category(), "metrics: timerfd");
        exposer_.RegisterCollectable(collector_, "/metrics");
        const itimerspec every{{1, 0}, {0, 1}};  // now, then each second
        timerfd_settime(timer_.get(), 0, &every, nullptr);
    }
    void start() override {}
    void publish(const json &event) override { collector_->event(event); }
    int fd() const override { return timer_.get(); }
    void process(control::Handler &handler) override
    {
        uint64_t expirations = 0;
        [[maybe_unused]] ssize_t n = ::read(timer_.get(), &expirations, sizeof expirations);
        collector_->refresh(handler.list());
        if (spool_)
            collector_->spool(spool_());
    }

private:
    std::function<SpoolStats()> spool_;
    prometheus::Exposer exposer_;
    std::shared_ptr<DeviceCollector> collector_;
    UniqueFd timer_;
};

}  // namespace

std::unique_ptr<EventSink> make_metrics(const MetricsSettings &m, std::string &error,
                                        std::function<SpoolStats()> spool)
{
    try {
        auto metrics = std::make_unique<Metrics>(m, std::move(spool));
        spdlog::info("metrics: serving http://{}/metrics", m.listen);
        return metrics;
    } catch (const std::exception &e) {
        error = "[metrics] listen: cannot listen on " + m.listen + ": " + e.what();
        return nullptr;
    }
}

}  // namespace devhost
