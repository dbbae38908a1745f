// Commands from the fleet (issue 16, item 3): what devhost serve does with
// the messages its broker delivers on the node's command topics.
//
//   PREFIX/GROUP/NCMD/NODE           {"command":"rebirth"[,"id":ID]}
//       NBIRTH and every DBIRTH published again (seq from 0, same bdSeq)
//   PREFIX/GROUP/DCMD/NODE/DEVICE    {"command":"call"[,"id":ID]}
//       DEVICE's body run now (as `devhost call`); its records are
//       published as DDATA like any others, and the reply carries them
//                                    {"command":"reset"[,"id":ID]}
//       a failed DEVICE set up again (as `devhost reset`)
//
// Only the commands `[mqtt] allow-commands` lists run. Every command gets
// one reply, not retained, on PREFIX/GROUP/NDATA/NODE:
//   {"timestamp","seq","event":"command","topic","command","device","id",
//    "ok":true[,"records":[...]]}  or  {... "ok":false,"error":"..."}
// ("command", "device" and "id" only when the message named them; "id" is
// echoed when it is a string of at most 128 bytes or an integer). A refused
// command (payload over 4 KiB, not JSON, not an object, no "command", an
// unknown command, a command not allowed, a device the config does not
// have, a topic of another shape, a retained message: the broker would give
// it again at every connect) is never run: its reply says why, and a
// warning is logged.
//
// Threading: received() is called on the MQTT client's thread and only
// queues (at most 64 waiting; more are dropped and logged) and signals an
// eventfd; the serve loop polls fd() and calls process() on its own
// thread, which runs the commands through the same control::Handler the
// control socket uses (control.hpp).
#pragma once

#include "control.hpp"
#include <devhost/unique_fd.hpp>

#include <nlohmann/json.hpp>

#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace devhost {

inline constexpr size_t max_command_bytes = 4096;
inline constexpr size_t max_commands_waiting = 64;

class FleetCommands {
public:
    struct Hooks {
        // Publishes one reply on the reply topic (the publisher adds
        // "timestamp" and "seq"); called on the loop's thread.
        std::function<void(nlohmann::json)> reply;
        // NBIRTH and every DBIRTH again; called on the loop's thread.
        std::function<void()> rebirth;
    };

    FleetCommands(std::string prefix, std::string group, std::string node, std::vector<std::string> allowed,
                  Hooks hooks);

    // The subscriptions: PREFIX/GROUP/NCMD/NODE and PREFIX/GROUP/DCMD/NODE/+.
    std::vector<std::string> filters() const;

    // Any thread: queues one message (only its first max_command_bytes
    // kept: a longer one is refused when processed) and wakes fd().
    void received(const std::string &topic, const void *payload, size_t size, bool retained);

    // Readable while commands wait (an eventfd).
    int fd() const { return wake_.get(); }
    // The loop's thread: runs (or refuses) every command waiting.
    void process(control::Handler &handler);

private:
    struct Waiting {
        std::string topic, payload;
        bool oversized = false, retained = false;
    };
    void run(const Waiting &w, control::Handler &handler);
    void refuse(nlohmann::json reply, const std::string &why);

    std::string prefix_, group_, node_;
    std::vector<std::string> allowed_;
    Hooks hooks_;
    UniqueFd wake_;
    std::mutex mutex_;
    std::deque<Waiting> waiting_;
    uint64_t dropped_ = 0;
};

// A string from the broker as it may be shown in a log line or reply:
// JSON-quoted (control characters escaped, bad UTF-8 replaced), at most
// `max` bytes of it.
std::string fleet_shown(const std::string &s, size_t max = 80);

}  // namespace devhost
