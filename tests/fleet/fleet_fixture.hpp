// What the fleet tests set up again and again: a real broker (Debian's
// mosquitto on a free loopback port), a real mosquitto_sub on devhost/#,
// and `devhost serve` started on a config written in the test's temporary
// directory. The caller skips first when broker_missing() says why.
#pragma once

#include "broker.hpp"
#include "devhost_test.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace devhost::test {

// `devhost serve DIR/INI.ini` (INI: `name` when empty), its records to
// DIR/NAME.jsonl, its control socket DIR/NAME.control, run in DIR.
std::unique_ptr<Child> start_serve(const TempDir &dir, const std::string &name = "fleet", const std::string &ini = "");

// A message's payload as JSON (discarded, not thrown, when it is not).
nlohmann::json payload(const Seen &s);

// How many messages came on `topic` (with "event": `event`, when given).
size_t count(const std::vector<Seen> &seen, const std::string &topic, const std::string &event = "");

// A temporary directory, a broker in it and a subscriber on devhost/#,
// made in that order (and gone in the reverse order).
struct Fleet {
    Fleet() : broker(dir.path()), sub(dir.path(), broker, "devhost/#") {}
    // Writes DIR/NAME.ini with `config` and starts serve on it.
    std::unique_ptr<Child> serve(const std::string &config, const std::string &name = "fleet");

    TempDir dir;
    Broker broker;
    Subscriber sub;
};

}  // namespace devhost::test
