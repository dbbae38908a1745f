#include "mqtt_publisher.hpp"

#include "mqtt_commands.hpp"
#include "mqtt_sparkplug.hpp"
#include "mqtt_spool.hpp"

#include <mosquitto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
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

// The TLS files checked at start and kept open (set_tls).
struct TlsFiles {
    UniqueFd key;  // [mqtt] key-file (open_private_file)
    UniqueFd ca;   // [mqtt] ca-file (open_ca_file)
};

class MqttPublisher : public EventSink {
public:
    MqttPublisher(const MqttSettings &m, std::string node, std::string client_id, std::optional<std::string> password,
                  TlsFiles tls, std::unique_ptr<MqttSpool> spool)
        : settings_(m), node_(std::move(node)), client_id_(std::move(client_id)), password_(std::move(password)),
          tls_(std::move(tls)), state_(m.prefix, m.group, node_, DEVHOST_VERSION), spool_(std::move(spool)),
          commands_(m.prefix, m.group, node_, m.allow_commands,
                    {[this](json r) { reply(std::move(r)); }, [this] { rebirth(); }})
    {
        init_library();
        // Sparkplug: bdSeq counts on across restarts (kept in the spool's
        // directory); without [host] state-dir, from 0 at each start.
        if (const auto last = spool_->last_bd_seq())
            bd_seq_ = *last + 1;
        mosq_ = make_client();  // the first connection's; its mistakes are found now
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
        std::lock_guard lock(mutex_);
        report_dropped(fleet_now_ms(), true);  // kept for the next serve
    }

    // DDATA (records, state changes) goes through the spool, and out in
    // rseq order when connected; births and deaths only when connected (the
    // next connection's births say the state anyway).
    void publish(const json &event) override
    {
        std::lock_guard lock(mutex_);
        const int64_t now = fleet_now_ms();
        for (const auto &m : state_.event_unstamped(event, now)) {
            if (m.topic.rfind(data_prefix_, 0) == 0) {
                spool_->append(m.topic, m.payload, now);
                report_dropped(now);
            } else if (connected_) {
                drain();
                send({m.topic, state_.stamp(m.payload), m.retain});
            }
        }
        drain();
    }

    SpoolStats spool_stats()
    {
        std::lock_guard lock(mutex_);
        return spool_->stats();
    }

    // Commands from the fleet (mqtt_commands.hpp): queued by the client
    // thread, run on the loop's.
    int fd() const override { return commands_.fd(); }
    void process(control::Handler &handler) override { commands_.process(handler); }

private:
    // A command's reply and a rebirth (the loop's thread).
    void reply(json r)
    {
        std::lock_guard lock(mutex_);
        if (connected_)
            send(state_.node_data(std::move(r), fleet_now_ms()));
    }
    void rebirth()
    {
        std::lock_guard lock(mutex_);
        if (connected_)
            for (const auto &m : state_.births(bd_seq_, fleet_now_ms()))
                send(m);
    }
    static void on_message(mosquitto *, void *self, const mosquitto_message *m)
    {
        const size_t size = m->payloadlen > 0 ? static_cast<size_t>(m->payloadlen) : 0;
        static_cast<MqttPublisher *>(self)->commands_.received(m->topic ? m->topic : "", m->payload, size, m->retain);
    }

    // The spool dropped messages (over a bound): a log line, and an NDATA
    // {"event":"dropped","dropped":N} spooled after what is left, so the
    // fleet sees it in order (mutex_ held). At most one every 10 s (a long
    // outage drops one message per new one: a notice each would fill the
    // spool with notices), but `now_too` at each connect and at a stop.
    void report_dropped(int64_t now, bool now_too = false)
    {
        if (spool_->unreported() == 0 || (!now_too && now - last_report_ms_ < 10000))
            return;
        last_report_ms_ = now;
        for (int i = 0; i < 3; i++) {  // its own append may drop once more
            const uint64_t n = spool_->take_dropped();
            if (n == 0)
                return;
            spdlog::warn("mqtt: spool: dropped the {} oldest message(s) (over spool-max-bytes or spool-max-age)", n);
            spool_->append(state_.topic("NDATA"), json{{"timestamp", now}, {"event", "dropped"}, {"dropped", n}}.dump(),
                           now, n);
        }
    }

    // Sends spooled messages not yet sent this session, oldest first, while
    // fewer than max_inflight await their confirmation (mutex_ held).
    void drain()
    {
        while (connected_ && inflight_.size() < max_inflight) {
            const uint64_t rseq = spool_->next_at_or_after(next_send_);
            const MqttSpool::Entry *e = rseq ? spool_->find(rseq) : nullptr;
            if (!e)
                return;
            int mid = -1;
            if (send({e->topic, state_.stamp(e->body, "\"rseq\":" + std::to_string(rseq) + ","), false}, &mid) !=
                MOSQ_ERR_SUCCESS)
                return;
            inflight_[mid] = rseq;
            next_send_ = rseq + 1;
            spool_->set_in_flight_below(next_send_);
        }
    }

    // The confirmations on_publish collected: their messages leave the
    // spool; with `more`, the next are sent. Old ones expire.
    void process_acks(bool more)
    {
        std::vector<int> mids;
        {
            std::lock_guard lock(acks_mutex_);
            mids.swap(acks_);
        }
        std::lock_guard lock(mutex_);
        for (int mid : mids)
            if (auto it = inflight_.find(mid); it != inflight_.end()) {
                spool_->confirm(it->second);
                inflight_.erase(it);
            }
        const int64_t now = fleet_now_ms();
        spool_->expire(now);
        report_dropped(now);
        if (more)
            drain();
    }

    // Queues one message (the caller holds mutex_).
    int send(const MqttMessage &m, int *mid = nullptr)
    {
        // A broker that takes nothing (connected, but its window shut) must
        // not make the queue grow without end.
        if (queued_ >= max_queued) {
            unsent_++;
            return MOSQ_ERR_NOMEM;
        }
        queued_++;
        const int rc = mosquitto_publish(mosq_.get(), mid, m.topic.c_str(), static_cast<int>(m.payload.size()),
                                         m.payload.data(), settings_.qos, m.retain);
        if (rc != MOSQ_ERR_SUCCESS) {
            queued_--;
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
    // MQTT 5: a PUBACK or PUBREC may carry a failure (not authorised for
    // the topic, quota exceeded): logged, once per reason until a success;
    // the message leaves the spool all the same (sent again, it would be
    // refused again; a 3.1.1 broker drops such a message silently).
    static void on_publish_v5(mosquitto *mosq, void *self, int mid, int reason, const mosquitto_property *)
    {
        auto *p = static_cast<MqttPublisher *>(self);
        if (reason >= 0x80 && reason != p->last_publish_refusal_)
            spdlog::warn("mqtt: the broker refused a message (mid {}): {}", mid, mosquitto_reason_string(reason));
        p->last_publish_refusal_ = reason >= 0x80 ? reason : 0;
        on_publish(mosq, self, mid);
    }
    static void on_publish(mosquitto *, void *self, int mid)
    {
        auto *p = static_cast<MqttPublisher *>(self);
        p->acked_mid_ = mid;
        {
            std::lock_guard lock(p->acks_mutex_);  // never held around a libmosquitto call
            p->acks_.push_back(mid);
        }
        int64_t n = p->queued_;
        while (n > 0 && !p->queued_.compare_exchange_weak(n, n - 1)) {
        }
    }

    // CONNACK: refused (logged, and the thread reconnects after its
    // backoff), or accepted: the births, seq from 0. `rc` is the CONNACK's
    // return code (3.1.1) or its reason code (5): libmosquitto passes
    // either to the plain callback.
    void connected(int rc)
    {
        if (rc != 0) {
            if (rc != last_refusal_)  // once, not at every retry
                spdlog::error("mqtt: {}:{} refused the connection: {}", settings_.host, settings_.port,
                              settings_.mqtt5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc));
            last_refusal_ = rc;
            return;
        }
        last_refusal_ = 0;
        {
            std::lock_guard lock(log_mutex_);
            logged_.clear();
        }
        std::lock_guard lock(mutex_);
        connected_ = true;
        if (unsent_)
            spdlog::warn("mqtt: {} message(s) could not be handed to the client since the last connection", unsent_);
        spdlog::info("mqtt: connected to {}:{} as node {}", settings_.host, settings_.port, node_);
        unsent_ = 0;
        for (const auto &m : state_.births(bd_seq_, fleet_now_ms()))
            send(m);
        for (const auto &filter : commands_.filters())  // every command is answered, allowed or not
            mosquitto_subscribe(mosq_.get(), nullptr, filter.c_str(), settings_.qos);
        // Then what the spool holds, from its oldest.
        inflight_.clear();
        next_send_ = 0;
        spool_->set_in_flight_below(0);
        report_dropped(fleet_now_ms(), true);
        if (const uint64_t depth = spool_->stats().depth)
            spdlog::info("mqtt: sending {} spooled message(s)", depth);
        drain();
    }

    // A client for one connection: each connection starts with a fresh one,
    // so that nothing an earlier connection left unconfirmed is sent again
    // after the new births (libmosquitto would resend it, with its old seq).
    std::unique_ptr<mosquitto, MosqDeleter> make_client()
    {
        std::unique_ptr<mosquitto, MosqDeleter> mosq(mosquitto_new(client_id_.c_str(), true, this));
        if (!mosq)
            throw std::runtime_error("cannot make an MQTT client (out of memory or a bad client id)");
        mosquitto_threaded_set(mosq.get(), true);
        // [mqtt] protocol. With MQTT 5 the calls without _v5 (connect_async,
        // will_set, publish, subscribe, disconnect) are libmosquitto's _v5
        // ones without properties, which is all we need: no will delay
        // (the death is announced at once, as with 3.1.1), no session kept
        // after a disconnect (clean start), no message expiry (the spool
        // bounds ages). Only the PUBACK's reason code needs the v5 callback.
        mosquitto_int_option(mosq.get(), MOSQ_OPT_PROTOCOL_VERSION,
                             settings_.mqtt5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
        mosquitto_connect_callback_set(mosq.get(), &MqttPublisher::on_connect);
        mosquitto_disconnect_callback_set(mosq.get(), &MqttPublisher::on_disconnect);
        if (settings_.mqtt5)
            mosquitto_publish_v5_callback_set(mosq.get(), &MqttPublisher::on_publish_v5);
        else
            mosquitto_publish_callback_set(mosq.get(), &MqttPublisher::on_publish);
        mosquitto_message_callback_set(mosq.get(), &MqttPublisher::on_message);
        if (settings_.username && password_)
            mosquitto_username_pw_set(mosq.get(), settings_.username->c_str(), password_->c_str());
        mosquitto_log_callback_set(mosq.get(), &MqttPublisher::on_log);
        if (settings_.tls)
            set_tls(mosq.get());
        return mosq;
    }

    // The CA (or the system's), and with cert-file the client certificate
    // and its key. libmosquitto takes paths and OpenSSL opens them at each
    // connect; the key and the CA are given as /proc/self/fd/N of the
    // descriptors checked (open_private_file at start, open_ca_file before
    // each connection), which opens those same files again whatever has
    // been renamed or linked in their paths since (a file replaced in place
    // by its owner, root, is theirs to make).
    void set_tls(mosquitto *mosq)
    {
        // A CA file replaced since (rotated by renaming a new one into
        // place) is taken at the next connection, once it passes the same
        // checks; one that does not leaves the last good one in use.
        if (settings_.ca_file && !first_) {
            std::string error;
            if (UniqueFd ca = open_ca_file(*settings_.ca_file, error)) {
                tls_.ca = std::move(ca);
                ca_refused_.clear();
            } else if (error != ca_refused_) {
                spdlog::error("mqtt: [mqtt] ca-file: {}; connecting with the one checked before", error);
                ca_refused_ = error;
            }
        }
        const std::string key = by_descriptor(tls_.key), ca = by_descriptor(tls_.ca);
        const int rc = mosquitto_tls_set(mosq, tls_.ca ? ca.c_str() : nullptr, tls_.ca ? nullptr : "/etc/ssl/certs",
                                         settings_.cert_file ? settings_.cert_file->c_str() : nullptr,
                                         tls_.key ? key.c_str() : nullptr, &MqttPublisher::no_passphrase);
        if (rc != MOSQ_ERR_SUCCESS)
            throw std::runtime_error(std::string("TLS: ") + mosquitto_strerror(rc) +
                                     (rc == MOSQ_ERR_INVAL ? " (a CA, certificate or key file that cannot be read)"
                                                           : ""));
    }

    static std::string by_descriptor(const UniqueFd &fd) { return fd ? "/proc/self/fd/" + std::to_string(fd.get()) : ""; }

    // `text` with each file set_tls gave by its descriptor named as configured.
    std::string as_configured(std::string text) const
    {
        const std::pair<const UniqueFd *, const std::optional<std::string> *> files[] = {
            {&tls_.key, &settings_.key_file}, {&tls_.ca, &settings_.ca_file}};
        for (const auto &[fd, path] : files) {
            if (!*fd || !*path)
                continue;
            const std::string name = by_descriptor(*fd);
            for (size_t at = 0; (at = text.find(name, at)) != std::string::npos;) {
                const size_t end = at + name.size();
                if (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) {
                    at = end;  // another descriptor's name
                    continue;
                }
                text.replace(at, name.size(), **path);
                at += (*path)->size();
            }
        }
        return text;
    }

    // An encrypted key fails to load (logged through on_log) instead of
    // OpenSSL asking for its passphrase on a terminal.
    static int no_passphrase(char *, int, int, void *) { return 0; }

    // libmosquitto's own errors (why a TLS handshake failed: OpenSSL's
    // reason, such as the broker's "alert certificate required"): logged
    // once each until the next connection succeeds, not at every retry.
    static void on_log(mosquitto *, void *self, int level, const char *text)
    {
        if (level != MOSQ_LOG_ERR || !text)
            return;
        auto *p = static_cast<MqttPublisher *>(self);
        {
            std::lock_guard lock(p->log_mutex_);  // never held around a libmosquitto call
            if (p->logged_.size() >= 32 || !p->logged_.insert(text).second)
                return;
        }
        // The key and the CA are known to OpenSSL by their descriptors
        // (set_tls); the user knows them by the paths they configured.
        const std::string line = p->as_configured(text);
        spdlog::error("mqtt: {}", line);
    }

    void set_will()
    {
        // Kept before the broker may hold this will. Outside mutex_, so that
        // its fsync never holds up the serve thread: bd_seq_ is written by
        // this thread only, and keep_bd_seq touches only the spool's bdSeq
        // members, which nothing else does after its construction.
        spool_->keep_bd_seq(bd_seq_);
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
        if (!first_) {
            std::unique_ptr<mosquitto, MosqDeleter> fresh;
            try {
                fresh = make_client();
            } catch (const std::exception &e) {
                spdlog::error("mqtt: {}", e.what());
                return MOSQ_ERR_NOMEM;
            }
            std::lock_guard lock(mutex_);
            mosq_ = std::move(fresh);
        }
        first_ = false;
        set_will();
        int rc = mosquitto_connect_async(mosq_.get(), settings_.host.c_str(), settings_.port, settings_.keepalive_s);
        if (rc != MOSQ_ERR_SUCCESS)
            return rc;
        const auto give_up = Clock::now() + std::chrono::seconds(std::max(10, settings_.keepalive_s));
        while (!stopping()) {
            rc = mosquitto_loop(mosq_.get(), 100, 1);
            if (rc != MOSQ_ERR_SUCCESS)
                return rc;
            process_acks(true);
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
            const int os_errno = errno;  // for MOSQ_ERR_ERRNO, before anything else sets it
            bool was_connected;
            int64_t lost;
            {
                std::lock_guard lock(mutex_);
                was_connected = connected_;
                connected_ = false;
                bd_seq_++;  // the next connection's birth and will
                lost = stopping() ? 0 : queued_.exchange(0);
                if (!stopping()) {  // unconfirmed: spooled still, sent again next time
                    inflight_.clear();
                    spool_->set_in_flight_below(0);
                    std::lock_guard acks(acks_mutex_);
                    acks_.clear();
                }
            }
            if (lost > 0)
                spdlog::warn("mqtt: {} message(s) were not confirmed by the broker when the connection ended", lost);
            if (stopping()) {
                if (was_connected)
                    goodbye();
                break;
            }
            if (was_connected)
                delay = std::chrono::milliseconds(500);
            std::string error = rc == MOSQ_ERR_ERRNO ? std::strerror(os_errno) : mosquitto_strerror(rc);
            if (!error.empty() && error.back() == '.')
                error.pop_back();
            if (was_connected || error != last_error)
                spdlog::warn("mqtt: {}:{}: {}; retrying in {} ms", settings_.host, settings_.port, error,
                             delay.count());
            last_error = error;
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
        process_acks(false);  // what the broker confirmed leaves the spool
        mosquitto_disconnect(mosq_.get());
        mosquitto_loop(mosq_.get(), 50, 1);
        spdlog::info("mqtt: disconnected (node {} announced dead)", node_);
    }

    MqttSettings settings_;
    std::string node_, client_id_;
    std::optional<std::string> password_;
    TlsFiles tls_;  // [mqtt] key-file and ca-file, checked, open while we run
    std::string ca_refused_;  // the last refusal of a changed ca-file, said once
    std::mutex log_mutex_;  // below: libmosquitto's errors logged since the last connection
    std::set<std::string> logged_;
    // The connection's client: replaced by the client thread between
    // connections under mutex_; the serve thread uses it under mutex_ only
    // while connected_.
    std::unique_ptr<mosquitto, MosqDeleter> mosq_;

    std::mutex mutex_;  // below: the device table, the session's state
    FleetState state_;
    // Set true under mutex_ (with the births queued in the same hold), so
    // that no DDATA goes out before them; set false anywhere.
    std::atomic<bool> connected_{false};
    uint64_t bd_seq_ = 0;  // written by the client thread only (under mutex_: the serve thread reads it)
    uint64_t unsent_ = 0;

    // The spool of DDATA and NDATA (mqtt_spool.hpp), under mutex_: what
    // this session sent of it and awaits confirmation for (mid to rseq), at
    // most max_inflight, and the rseq to send next.
    std::unique_ptr<MqttSpool> spool_;
    const std::string data_prefix_ = state_.topic("DDATA") + "/";
    static constexpr size_t max_inflight = 1000;
    std::map<int, uint64_t> inflight_;
    uint64_t next_send_ = 0;
    int64_t last_report_ms_ = 0;  // the last drop notice
    // The mids on_publish saw, for the client thread to take (under
    // acks_mutex_ only: on_publish may run with libmosquitto's lock held).
    std::mutex acks_mutex_;
    std::vector<int> acks_;

    std::atomic<int> acked_mid_{-1};
    // Messages handed to libmosquitto and not yet confirmed (QoS 1, 2) or
    // written (QoS 0): at most max_queued; more are counted as unsent.
    static constexpr int64_t max_queued = 100000;
    std::atomic<int64_t> queued_{0};
    bool first_ = true;     // client thread only
    int last_refusal_ = 0;  // client thread only: the last CONNACK refusal logged
    int last_publish_refusal_ = 0;  // client thread only (MQTT 5): the last PUBACK refusal logged
    std::mutex wake_mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::thread thread_;
    FleetCommands commands_;
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
    TlsFiles tls;
    if (m.key_file) {
        tls.key = open_private_file(*m.key_file, "key file", max_key_file_bytes, error);
        if (!tls.key) {
            error = "[mqtt] key-file: " + error;
            return nullptr;
        }
    }
    if (m.ca_file) {
        tls.ca = open_ca_file(*m.ca_file, error);
        if (!tls.ca) {
            error = "[mqtt] ca-file: " + error;
            return nullptr;
        }
    }
    std::unique_ptr<MqttSpool> spool;
    if (m.spool_dir) {
        spool = MqttSpool::open(*m.spool_dir, m.spool_max_bytes, m.spool_max_age_ms, error);
        if (!spool) {
            error = "[mqtt]: cannot keep the spool: " + error;
            return nullptr;
        }
        if (const uint64_t depth = spool->stats().depth)
            spdlog::info("mqtt: spool {}: {} message(s) from before to send", *m.spool_dir, depth);
    } else {
        spool = std::make_unique<MqttSpool>(m.spool_max_bytes, m.spool_max_age_ms);
        spdlog::info("mqtt: no [host] state-dir: the spool is in memory only (lost when devhost stops)");
    }
    try {
        return std::make_unique<MqttPublisher>(m, mqtt_node(m), mqtt_client_id(m), password, std::move(tls),
                                               std::move(spool));
    } catch (const std::exception &e) {
        error = std::string("[mqtt]: ") + e.what();
        return nullptr;
    }
}

SpoolStats mqtt_spool_stats(EventSink &sink)
{
    auto *p = dynamic_cast<MqttPublisher *>(&sink);
    return p ? p->spool_stats() : SpoolStats{};
}

}  // namespace devhost
