#include "mqtt_publisher.hpp"

#include "mqtt_sparkplug.hpp"

#include <mosquitto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace devhost {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct MosqDeleter {
    void operator()(mosquitto *m) const { mosquitto_destroy(m); }
};

void init_library()
{
    static std::once_flag once;
    std::call_once(once, [] { mosquitto_lib_init(); });
}

class MqttPublisher : public EventSink {
public:
    MqttPublisher(const MqttSettings &m, std::string node, std::string client_id, std::optional<std::string> password)
        : settings_(m), node_(std::move(node)), state_(m.prefix, m.group, node_, DEVHOST_VERSION)
    {
        init_library();
        mosq_.reset(mosquitto_new(client_id.c_str(), true, this));
        if (!mosq_)
            throw std::runtime_error("cannot make an MQTT client (out of memory or a bad client id)");
        mosquitto_threaded_set(mosq_.get(), true);
        mosquitto_int_option(mosq_.get(), MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        mosquitto_connect_callback_set(mosq_.get(), &MqttPublisher::on_connect);
        mosquitto_disconnect_callback_set(mosq_.get(), &MqttPublisher::on_disconnect);
        mosquitto_publish_callback_set(mosq_.get(), &MqttPublisher::on_publish);
        if (m.username && password)
            mosquitto_username_pw_set(mosq_.get(), m.username->c_str(), password->c_str());
        if (m.tls) {
            const int rc = mosquitto_tls_set(mosq_.get(), m.ca_file ? m.ca_file->c_str() : nullptr,
                                             m.ca_file ? nullptr : "/etc/ssl/certs", nullptr, nullptr, nullptr);
            if (rc != MOSQ_ERR_SUCCESS)
                throw std::runtime_error(std::string("TLS: ") + mosquitto_strerror(rc));
        }
    }

    void start() override
    {
        if (!thread_.joinable())
            thread_ = std::thread([this] { run(); });
    }

    ~MqttPublisher() override
    {
        {
            std::lock_guard lock(wake_mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        if (thread_.joinable())
            thread_.join();
    }

    void publish(const json &event) override
    {
        std::lock_guard lock(mutex_);
        const auto messages = state_.event(event, fleet_now_ms(), connected_);
        for (const auto &m : messages)
            send(m);
        // A state is in the next births; a record is lost.
        if (!connected_ && event.value("event", "") == "record")
            unsent_++;
    }

private:
    // Queues one message (the caller holds mutex_).
    int send(const MqttMessage &m, int *mid = nullptr)
    {
        const int rc = mosquitto_publish(mosq_.get(), mid, m.topic.c_str(), static_cast<int>(m.payload.size()),
                                         m.payload.data(), settings_.qos, m.retain);
        if (rc != MOSQ_ERR_SUCCESS) {
            unsent_++;
            spdlog::debug("mqtt: {} not queued: {}", m.topic, mosquitto_strerror(rc));
        }
        return rc;
    }

    static void on_connect(mosquitto *, void *self, int rc) { static_cast<MqttPublisher *>(self)->connected(rc); }
    // No lock here: libmosquitto may hold its packet mutex around this
    // callback, which the serve thread's publish takes under mutex_.
    static void on_disconnect(mosquitto *, void *self, int)
    {
        static_cast<MqttPublisher *>(self)->connected_ = false;
    }
    static void on_publish(mosquitto *, void *self, int mid)
    {
        static_cast<MqttPublisher *>(self)->acked_mid_ = mid;
    }

    // CONNACK: refused (logged, and the thread reconnects after its
    // backoff), or accepted: the births, seq from 0.
    void connected(int rc)
    {
        if (rc != 0) {
            spdlog::error("mqtt: {}:{} refused the connection: {}", settings_.host, settings_.port,
                          mosquitto_connack_string(rc));
            return;
        }
        std::lock_guard lock(mutex_);
        connected_ = true;
        if (unsent_)
            spdlog::warn("mqtt: {} record(s) were not published while not connected (no spool in this version)",
                         unsent_);
        spdlog::info("mqtt: connected to {}:{} as node {}", settings_.host, settings_.port, node_);
        unsent_ = 0;
        for (const auto &m : state_.births(bd_seq_, fleet_now_ms()))
            send(m);
    }

    void set_will()
    {
        std::lock_guard lock(mutex_);
        const MqttMessage will = state_.will(bd_seq_);
        mosquitto_will_set(mosq_.get(), will.topic.c_str(), static_cast<int>(will.payload.size()),
                           will.payload.data(), std::max(settings_.qos, 1), true);
    }

    bool stopping()
    {
        std::lock_guard lock(wake_mutex_);
        return stop_;
    }

    // One connection, until it fails, times out before its CONNACK, or a
    // stop is asked.
    int session()
    {
        set_will();
        int rc = first_ ? mosquitto_connect_async(mosq_.get(), settings_.host.c_str(), settings_.port,
                                                  settings_.keepalive_s)
                        : mosquitto_reconnect_async(mosq_.get());
        first_ = false;
        if (rc != MOSQ_ERR_SUCCESS)
            return rc;
        const auto give_up = Clock::now() + std::chrono::seconds(std::max(10, settings_.keepalive_s));
        while (!stopping()) {
            rc = mosquitto_loop(mosq_.get(), 100, 1);
            if (rc != MOSQ_ERR_SUCCESS)
                return rc;
            std::lock_guard lock(mutex_);
            if (!connected_ && Clock::now() > give_up)
                return MOSQ_ERR_NO_CONN;
        }
        return MOSQ_ERR_SUCCESS;
    }

    void run()
    {
        auto delay = std::chrono::milliseconds(500);
        std::string last_error;
        while (!stopping()) {
            const int rc = session();
            bool was_connected;
            {
                std::lock_guard lock(mutex_);
                was_connected = connected_;
                connected_ = false;
                bd_seq_++;  // the next connection's birth and will
            }
            if (stopping()) {
                if (was_connected)
                    goodbye();
                break;
            }
            const std::string error = rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc);
            if (was_connected || error != last_error)
                spdlog::warn("mqtt: {}:{}: {}; retrying in {} ms", settings_.host, settings_.port, error,
                             delay.count());
            last_error = error;
            if (was_connected)
                delay = std::chrono::milliseconds(500);
            std::unique_lock lock(wake_mutex_);
            wake_.wait_for(lock, delay, [this] { return stop_; });
            delay = std::min<std::chrono::milliseconds>(delay * 2, std::chrono::seconds(30));
        }
    }

    // A clean stop: the death published by us (the broker drops the will on
    // a DISCONNECT), waited for up to 2 s, then DISCONNECT.
    void goodbye()
    {
        int mid = -1;
        {
            std::lock_guard lock(mutex_);
            if (send(state_.death(bd_seq_ - 1, fleet_now_ms()), &mid) != MOSQ_ERR_SUCCESS)
                mid = -1;
        }
        const auto until = Clock::now() + std::chrono::seconds(2);
        while (mid >= 0 && acked_mid_ != mid && Clock::now() < until)
            if (mosquitto_loop(mosq_.get(), 50, 1) != MOSQ_ERR_SUCCESS)
                break;
        mosquitto_disconnect(mosq_.get());
        mosquitto_loop(mosq_.get(), 50, 1);
        spdlog::info("mqtt: disconnected (node {} announced dead)", node_);
    }

    MqttSettings settings_;
    std::string node_;
    std::unique_ptr<mosquitto, MosqDeleter> mosq_;

    std::mutex mutex_;  // below: the device table, the session's state
    FleetState state_;
    // Set true under mutex_ (with the births queued in the same hold), so
    // that no DDATA goes out before them; set false anywhere.
    std::atomic<bool> connected_{false};
    uint64_t bd_seq_ = 0;
    uint64_t unsent_ = 0;

    std::atomic<int> acked_mid_{-1};
    bool first_ = true;  // client thread only
    std::mutex wake_mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace

std::unique_ptr<EventSink> make_mqtt_publisher(const MqttSettings &m, std::string &error)
{
    std::optional<std::string> password;
    if (m.password_file) {
        password = read_password_file(*m.password_file, error);
        if (!password) {
            error = "[mqtt] password-file: " + error;
            return nullptr;
        }
    }
    try {
        return std::make_unique<MqttPublisher>(m, mqtt_node(m), mqtt_client_id(m), password);
    } catch (const std::exception &e) {
        error = std::string("[mqtt]: ") + e.what();
        return nullptr;
    }
}

}  // namespace devhost
