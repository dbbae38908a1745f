#include "mqtt_watch.hpp"

#include <mosquitto.h>

#include <stdexcept>
#include <thread>

namespace devhost::test {

Watcher::Watcher(const Broker &broker, const std::string &filter, const std::string &client_id)
{
    static std::once_flag once;
    std::call_once(once, [] { mosquitto_lib_init(); });
    mosq_ = mosquitto_new(client_id.c_str(), true, this);
    if (!mosq_)
        throw std::runtime_error("mosquitto_new failed");
    mosquitto_message_callback_set(mosq_, &Watcher::on_message);
    mosquitto_subscribe_callback_set(mosq_, &Watcher::on_subscribe);
    int rc = mosquitto_connect(mosq_, "127.0.0.1", broker.port(), 30);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_loop_start(mosq_);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_subscribe(mosq_, nullptr, filter.c_str(), 1);
    if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_destroy(mosq_);
        throw std::runtime_error(std::string("watcher: ") + mosquitto_strerror(rc));
    }
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, std::chrono::seconds(5), [this] { return subscribed_; })) {
        lock.unlock();
        mosquitto_disconnect(mosq_);
        mosquitto_loop_stop(mosq_, false);
        mosquitto_destroy(mosq_);
        throw std::runtime_error("watcher: no SUBACK for " + filter + " within 5 s");
    }
}

Watcher::~Watcher()
{
    mosquitto_disconnect(mosq_);     // ends the loop thread's session
    mosquitto_loop_stop(mosq_, false);  // joins it
    mosquitto_destroy(mosq_);
}

void Watcher::on_message(mosquitto *, void *self, const mosquitto_message *m)
{
    auto *w = static_cast<Watcher *>(self);
    {
        std::lock_guard lock(w->mutex_);
        w->seen_.push_back({m->topic, std::string(static_cast<const char *>(m->payload),
                                                  static_cast<size_t>(m->payloadlen))});
    }
    w->changed_.notify_all();
}

void Watcher::on_subscribe(mosquitto *, void *self, int, int, const int *)
{
    auto *w = static_cast<Watcher *>(self);
    {
        std::lock_guard lock(w->mutex_);
        w->subscribed_ = true;
    }
    w->changed_.notify_all();
}

std::vector<Seen> Watcher::messages() const
{
    std::lock_guard lock(mutex_);
    return seen_;
}

bool Watcher::wait(const std::function<bool(const std::vector<Seen> &)> &pred, std::chrono::milliseconds timeout)
{
    std::unique_lock lock(mutex_);
    // At most every 50 ms: a burst of messages need not call pred for each.
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!pred(seen_)) {
        if (std::chrono::steady_clock::now() >= until)
            return false;
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        lock.lock();
    }
    return true;
}

}  // namespace devhost::test
