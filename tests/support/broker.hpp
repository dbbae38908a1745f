// A real MQTT broker and subscriber for the fleet tests (and the bench's
// mqtt group, which compiles this file with devhost_test.cpp): Debian's
// mosquitto on 127.0.0.1 at a free port, with a config written in the
// test's directory, and mosquitto_sub printing "TOPIC PAYLOAD" lines. Both
// are killed when they go out of scope, whatever the test's outcome.
#pragma once

#include "devhost_test.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace devhost::test {

// Why the broker cannot run here ("" when mosquitto and mosquitto_sub are
// installed).
std::string broker_missing();

class Broker {
public:
    // Starts mosquitto in `dir` on a free port (or on `port`), waiting up to
    // 5 s for it to accept connections; throws if it does not. `listener`:
    // lines for its listener (TLS files, a password file; "persistence
    // true" and its location); none: anonymous.
    explicit Broker(const fs::path &dir, int port = 0, const std::string &listener = "");
    int port() const { return port_; }
    // What it logged so far (log_dest stderr): who connected, with which
    // protocol ("(p5, c1, k5)" for MQTT 5), and why a TLS handshake failed.
    std::string log() const;
    std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }
    // Kills it (SIGKILL) and waits for its end.
    void kill();
    // Stops it (SIGTERM: with persistence, its database is saved), waiting
    // up to 10 s, then kills it.
    void stop();

private:
    fs::path dir_;
    int port_ = 0;
    std::unique_ptr<Child> process_;
};

// One message as mosquitto_sub -v printed it.
struct Seen {
    std::string topic;
    std::string payload;
};

class Subscriber {
public:
    // mosquitto_sub on `topic` (a filter), started and given up to 5 s to
    // subscribe (it is known subscribed once a probe message it asked for
    // arrives). `options`: for it and the probe's mosquitto_pub (TLS, a
    // user); `sub_options`: for it only (a client id, a persistent session).
    Subscriber(const fs::path &dir, const Broker &broker, const std::string &topic,
               const std::vector<std::string> &options = {}, const std::vector<std::string> &sub_options = {});
    std::vector<Seen> messages() const;
    // Waits up to `timeout` until `pred` holds for the messages seen so far.
    bool wait(const std::function<bool(const std::vector<Seen> &)> &pred, std::chrono::milliseconds timeout);

private:
    std::unique_ptr<Child> process_;
};

// A CA and a certificate of it for localhost and 127.0.0.1, made with
// openssl in `dir`: ca.pem, server.pem, server.key. False if openssl failed.
bool make_certificates(const fs::path &dir);
// A client certificate of the CA `ca` (CA.pem and CA.key in `dir`, from
// make_certificates) with CN `name`: NAME.pem and NAME.key (mode 0600) in
// `dir`. False if openssl failed.
bool make_client_certificate(const fs::path &dir, const std::string &ca, const std::string &name);

// A port nothing listens on now (bound, read, closed).
int free_port();

}  // namespace devhost::test
