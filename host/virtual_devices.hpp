// Virtual devices declared in a config's [virtual NAME] sections: started as
// devhost-vdev child processes before the pipelines, and stopped after.
// A device whose path is virtual:NAME gets the path the peer announced.
#pragma once

#include "config.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

namespace devhost {

class VirtualDevices {
public:
    // The devhost-vdev next to the running executable.
    static std::filesystem::path default_tool();

    explicit VirtualDevices(std::filesystem::path tool = default_tool());
    // Stops every peer still running.
    ~VirtualDevices();
    VirtualDevices(const VirtualDevices &) = delete;
    VirtualDevices &operator=(const VirtualDevices &) = delete;

    // Starts one peer and waits (up to `timeout_ms`) for its READY line.
    // Returns false with `error` set (one line) when it does not come up;
    // `usage_error` is set when the peer refused its options (exit code 2).
    bool start(const VirtualConfig &v, int timeout_ms, std::string &error, bool &usage_error);

    // The announced path for virtual:NAME, or "" if NAME was not started.
    std::string path_of(const std::string &name) const;

    // SIGTERM to every peer, SIGKILL after `grace_ms`, reaped.
    void stop_all(int grace_ms = 3000);

private:
    struct Peer {
        std::string name;
        pid_t pid = -1;
        std::string path;
    };
    std::filesystem::path tool_;
    std::vector<Peer> peers_;
};

}  // namespace devhost
