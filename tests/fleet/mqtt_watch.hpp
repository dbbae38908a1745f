// A subscriber inside the test process, through libmosquitto, for runs
// whose message counts make re-reading mosquitto_sub's text output slow
// (the fleet simulation: thousands of messages from many hosts). It
// subscribes at QoS 1 (a broker started with max_queued_messages 0 drops
// nothing for it) and keeps every message in arrival order.
#pragma once

#include "broker.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

struct mosquitto;
struct mosquitto_message;

namespace devhost::test {

class Watcher {
public:
    // Connects to `broker` as `client_id`, subscribes to `filter` and waits
    // up to 5 s for the broker's SUBACK; throws if it does not come.
    Watcher(const Broker &broker, const std::string &filter, const std::string &client_id = "devhost-test-watch");
    ~Watcher();
    Watcher(const Watcher &) = delete;
    Watcher &operator=(const Watcher &) = delete;

    std::vector<Seen> messages() const;
    // Waits up to `timeout` until `pred` holds; pred sees every message so
    // far (under the watcher's lock: it must be quick, and may keep its own
    // place between calls).
    bool wait(const std::function<bool(const std::vector<Seen> &)> &pred, std::chrono::milliseconds timeout);

private:
    static void on_message(mosquitto *, void *self, const ::mosquitto_message *m);
    static void on_subscribe(mosquitto *, void *self, int, int, const int *);

    mosquitto *mosq_ = nullptr;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Seen> seen_;
    bool subscribed_ = false;
};

}  // namespace devhost::test
